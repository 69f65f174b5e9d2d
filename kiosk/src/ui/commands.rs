//! The screen's command endpoints: each turns its JSON into one [`Command`] for the runtime and
//! its reply into JSON.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;
use zhucan_domain::{Fen, ResidentId};

use crate::screen::{Command, EnrolError, Order};

use super::input::{AppJson, Error};
use super::{AppState, ENROL_TIMEOUT, REPLY_TIMEOUT};

// ---------------------------------------------------------------- commands

#[derive(Deserialize)]
pub(super) struct CardRequest {
    code: String,
    /// 代取: with a carer's card, the resident whose meal the carer collects.
    #[serde(default)]
    resident_id: Option<ResidentId>,
}

#[derive(Deserialize)]
pub(super) struct StaffRequest {
    pin: String,
    resident_id: ResidentId,
    reason: String,
}

#[derive(Deserialize)]
pub(super) struct SearchRequest {
    pin: String,
    query: String,
}

#[derive(Deserialize)]
pub(super) struct EnrolRequest {
    pin: String,
    resident_id: ResidentId,
    consent_face: bool,
    #[serde(default)]
    consent_sharing: bool,
}

#[derive(Deserialize)]
pub(super) struct ConfirmDuplicateRequest {
    pin: String,
    resident_id: ResidentId,
    other_resident_id: ResidentId,
    reason: String,
}

#[derive(Deserialize)]
pub(super) struct UnenrolRequest {
    pin: String,
    resident_id: ResidentId,
}

/// `POST /api/counter/order {price, delivered}`: what the counter rang up for the next
/// check-in (price in fen; absent: the slot's set price). `{}` with neither clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OrderRequest {
    #[serde(default)]
    price: Option<i64>,
    #[serde(default)]
    delivered: bool,
}

pub(super) async fn counter_order(
    State(app): State<AppState>,
    AppJson(req): AppJson<OrderRequest>,
) -> Result<Response, Error> {
    if req.price.is_some_and(|p| p < 0) {
        return Err(Error {
            status: StatusCode::BAD_REQUEST,
            field: Some("price".into()),
            message: "餐费不能为负 / the price must not be negative".into(),
        });
    }
    let order = (req.price.is_some() || req.delivered).then_some(Order {
        price: req.price.map(Fen),
        delivered: req.delivered,
    });
    let set = ask(&app, REPLY_TIMEOUT, "price", |reply| Command::Order {
        order,
        reply,
    })
    .await?;
    Ok(Json(set).into_response())
}

pub(super) async fn checkin_card(
    State(app): State<AppState>,
    AppJson(req): AppJson<CardRequest>,
) -> Result<Response, Error> {
    let code = required(
        "code",
        &req.code,
        64,
        "请刷卡或输入卡号",
        "Card code is empty",
    )?;
    // a carer's card (代取): the residents to choose from, or the chosen one's meal
    let carer = ask(&app, REPLY_TIMEOUT, "code", |reply| Command::Carer {
        code: code.clone(),
        resident_id: req.resident_id,
        reply,
    })
    .await?;
    if let Some(answer) = carer {
        return Ok(Json(answer).into_response());
    }
    let view = ask(&app, REPLY_TIMEOUT, "code", |reply| Command::Card {
        code,
        reply,
    })
    .await?;
    Ok(Json(view).into_response())
}

pub(super) async fn checkin_staff(
    State(app): State<AppState>,
    AppJson(req): AppJson<StaffRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let reason = required(
        "reason",
        &req.reason,
        200,
        "请填写原因",
        "A reason is required",
    )?;
    let resident_id = req.resident_id;
    let view = ask(&app, REPLY_TIMEOUT, "resident_id", |reply| Command::Staff {
        pin,
        resident_id,
        reason,
        reply,
    })
    .await?;
    Ok(Json(view).into_response())
}

pub(super) async fn operator_search(
    State(app): State<AppState>,
    AppJson(req): AppJson<SearchRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let query = required(
        "query",
        &req.query,
        64,
        "请输入姓名或卡号",
        "Enter a name or card code",
    )?;
    let hits = ask(&app, REPLY_TIMEOUT, "query", |reply| Command::Search {
        pin,
        query,
        reply,
    })
    .await?;
    Ok(Json(hits).into_response())
}

pub(super) async fn operator_enrol(
    State(app): State<AppState>,
    AppJson(req): AppJson<EnrolRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    if !req.consent_face {
        return Err(Error::invalid(
            "consent_face",
            "老人未同意采集人脸，不能录入 / Face enrolment needs the resident's consent",
        ));
    }
    let (resident_id, consent_sharing) = (req.resident_id, req.consent_sharing);
    let answer = send(&app, ENROL_TIMEOUT, |reply| Command::Enrol {
        pin,
        resident_id,
        consent_face: true,
        consent_sharing,
        reply,
    })
    .await?;
    enrolled(answer)
}

pub(super) async fn operator_confirm_duplicate(
    State(app): State<AppState>,
    AppJson(req): AppJson<ConfirmDuplicateRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let reason = required(
        "reason",
        &req.reason,
        200,
        "请填写为何不是同一人",
        "Say why they are two people",
    )?;
    let (resident_id, other_resident_id) = (req.resident_id, req.other_resident_id);
    let answer = send(&app, ENROL_TIMEOUT, |reply| Command::ConfirmDuplicate {
        pin,
        resident_id,
        other_resident_id,
        reason,
        reply,
    })
    .await?;
    enrolled(answer)
}

/// The page's answer to an enrolment: the templates stored, a refusal, or 409 `duplicate_face`
/// naming the other resident.
fn enrolled(answer: Result<u32, EnrolError>) -> Result<Response, Error> {
    match answer {
        Ok(templates) => Ok(Json(serde_json::json!({ "templates": templates })).into_response()),
        Err(EnrolError::Failed(message)) => Err(refusal(message, "resident_id")),
        Err(EnrolError::Duplicate {
            other_resident_id,
            other_name,
            message,
        }) => Ok((
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": {
                "code": "duplicate_face",
                "field": "resident_id",
                "message": message,
                "duplicate_of": { "resident_id": other_resident_id, "name": other_name },
            } })),
        )
            .into_response()),
    }
}

pub(super) async fn operator_unenrol(
    State(app): State<AppState>,
    AppJson(req): AppJson<UnenrolRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let resident_id = req.resident_id;
    ask(&app, REPLY_TIMEOUT, "resident_id", |reply| {
        Command::Unenrol {
            pin,
            resident_id,
            reply,
        }
    })
    .await?;
    Ok(Json(serde_json::json!({ "ok": true })).into_response())
}

/// A trimmed, non-empty value of at most `max` characters.
fn required(
    field: &'static str,
    value: &str,
    max: usize,
    empty_zh: &str,
    empty_en: &str,
) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(field, format!("{empty_zh} / {empty_en}")));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("太长 / Longer than {max} characters"),
        ));
    }
    Ok(value.to_string())
}

fn pin(value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.len() > 12 || !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(
            "pin",
            "请输入工作人员密码 / Enter the staff PIN",
        ));
    }
    Ok(value.to_string())
}

/// Sends one command and waits for its reply. A refusal from the runtime (`Err(String)`) becomes a
/// 4xx naming `field` — or `pin` with 403 when the runtime's message is about the PIN, since the
/// contract carries refusals as plain text.
async fn ask<T>(
    app: &AppState,
    timeout: Duration,
    field: &'static str,
    command: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T, Error> {
    send(app, timeout, command)
        .await?
        .map_err(|message| refusal(message, field))
}

/// A refusal from the runtime as a 4xx naming `field`, or `pin` with 403 when the message is
/// about the PIN.
fn refusal(message: String, field: &'static str) -> Error {
    let about_pin = message.to_lowercase().contains("pin") || message.contains("密码");
    Error {
        status: if about_pin {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        field: Some(if about_pin { "pin" } else { field }.to_string()),
        message,
    }
}

/// Sends one command and waits for its reply, whatever its type.
async fn send<R>(
    app: &AppState,
    timeout: Duration,
    command: impl FnOnce(oneshot::Sender<R>) -> Command,
) -> Result<R, Error> {
    let (reply, answer) = oneshot::channel();
    app.commands
        .send(command(reply))
        .await
        .map_err(|_| Error::unavailable())?;
    match tokio::time::timeout(timeout, answer).await {
        Err(_) => Err(Error {
            status: StatusCode::GATEWAY_TIMEOUT,
            field: None,
            message: "本机没有及时响应，请重试 / The kiosk did not answer in time".into(),
        }),
        Ok(Err(_)) => Err(Error::unavailable()),
        Ok(Ok(value)) => Ok(value),
    }
}
