//! Settlements: a kiosk posts a batch of meals and gets an answer per item; an operator voids a
//! meal (never deleted). A large or old meal's void waits for a second person (202 with the
//! pending correction; see `corrections::request_void`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracing::instrument;
use uuid::Uuid;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{BatchResult, SettlementBatch, VoidRequest};

use super::required;
use crate::corrections::{self, Person, Requested};
use crate::db;
use crate::http::AppState;
use crate::http::auth::{Access, Caller};
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;
use crate::ingest;

#[utoipa::path(
    post, path = "/settlements", operation_id = "createSettlements", summary = "settle a batch of meals (kiosk or admin)", request_body = zhucan_domain::api::SettlementBatch, responses((status = 200, description = "one result per item, in order", body = zhucan_domain::api::BatchResult), (status = 413, description = "body too large", body = ErrorBody))
)]
#[instrument(skip_all, fields(items = batch.items.len()))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    AppJson(batch): AppJson<SettlementBatch>,
) -> Result<AppJson<BatchResult>> {
    ingest::validate(&batch).map_err(|e| Error::BadRequest {
        code: e.code.into(),
        field: Some(e.field),
        message: e.message,
    })?;
    let who = match &caller {
        Caller::Admin => ingest::Caller::Staff {
            actor: caller.actor(),
            canteen: None,
        },
        Caller::Kiosk(k) => ingest::Caller::Kiosk {
            id: k.id,
            canteen: k.canteen_id,
        },
    };
    let tz = st.config.timezone;
    let now = st.clock.now();
    let rules = st.config.security.ingest;
    let out = st
        .db
        .write(move |tx| ingest::ingest(tx, who, &batch.items, &rules, tz, now))
        .await?;
    Ok(AppJson(out))
}

#[utoipa::path(
    post, path = "/settlements/{id}/void", operation_id = "voidSettlement", summary = "void a meal (never deletes)", params(("id" = uuid::Uuid, Path, description = "the meal's id")), request_body = zhucan_domain::api::VoidRequest, responses((status = 200, description = "voided or adjusted", body = zhucan_domain::api::VoidResult), (status = 202, description = "above the four-eyes amount or older than its days: waits for a second person (finance or admin)", body = zhucan_domain::api::Correction), (status = 404, description = "no such resource", body = ErrorBody), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
#[instrument(skip_all, fields(settlement = %id))]
pub async fn void(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    AppJson(req): AppJson<VoidRequest>,
) -> Result<Response> {
    let id: Uuid = id
        .parse()
        .map_err(|_| Error::bad("invalid", "id", "not a UUID"))?;
    let reason = required(&req.reason, "reason", 500)?;
    let by = match &access {
        Access::Admin => req
            .by
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "admin".into()),
        Access::Kiosk(_) => return Err(Error::Forbidden("kiosks cannot void meals".into())),
        Access::User(u) => {
            use crate::db::users::Role;
            if !matches!(u.role, Role::Admin | Role::Operator) {
                return Err(Error::Forbidden(
                    "only operators and administrators void meals".into(),
                ));
            }
            let key = id.to_string();
            let meal = st
                .db
                .read(move |c| db::dashboard::meal_by_id(c, &key))
                .await?;
            access.require_canteen(meal.canteen_id)?;
            if u.role == Role::Operator && meal.closed {
                return Err(Error::Conflict(format!(
                    "month {} is closed; finance corrects its meals",
                    meal.period
                )));
            }
            access.who()
        }
    };
    let now = st.clock.now();
    let actor = access.actor();
    let identity = access.who();
    let (rules, tz) = (st.config.security.four_eyes, st.config.timezone);
    let out = st
        .db
        .write(move |tx| {
            let who = Person {
                identity: &identity,
                actor: &actor,
            };
            corrections::request_void(tx, id, &reason, &by, &who, &rules, tz, now)
        })
        .await
        .map_err(|e| match e {
            db::Error::NotFound => Error::NotFound,
            other => other.into(),
        })?;
    Ok(match out {
        Requested::Applied(v) => AppJson(v).into_response(),
        Requested::Pending(c) => (StatusCode::ACCEPTED, AppJson(c)).into_response(),
    })
}
