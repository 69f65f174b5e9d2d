//! Four-eyes corrections: `GET /corrections?state=pending` lists the voids and adjustments that
//! wait for a second person; `POST /corrections/{id}/approve` applies one, `.../reject` (with a
//! note) refuses it. Finance and administrators decide, never the person who asked.

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{Correction, CorrectionDecided, CorrectionDecision};

use super::{parse_id, required};
use crate::corrections::{self, Person};
use crate::db;
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::Access;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery, parse_json};

/// The most corrections one list answer holds.
const MAX_LIST: i64 = 500;

/// 403 unless finance or an administrator (the admin token counts as one person, `admin`).
pub(crate) fn require_decider(access: &Access) -> Result<()> {
    match access {
        Access::Admin => Ok(()),
        Access::User(u) if matches!(u.role, Role::Admin | Role::Finance) => Ok(()),
        _ => Err(Error::Forbidden(
            "only finance and administrators approve or reject corrections".into(),
        )),
    }
}

/// A use-case error as the API answers it: the requester's own decision is `same_person`.
pub(crate) fn decision_error(e: db::Error) -> Error {
    match e {
        db::Error::Forbidden(m) if m == corrections::SAME_PERSON => Error::Refused {
            code: "same_person".into(),
            message: m,
        },
        other => other.into(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only corrections in this state.
    #[param(value_type = Option<zhucan_domain::openapi::CorrectionState>, inline)]
    state: Option<String>,
}

#[utoipa::path(
    get, path = "/corrections", operation_id = "listCorrections", summary = "corrections that wait for (or had) a second person's decision (finance or administrator)", params(ListQuery), responses((status = 200, description = "oldest first", body = Vec<zhucan_domain::api::Correction>))
)]
pub async fn list(
    State(st): State<AppState>,
    access: Access,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<Vec<Correction>>> {
    require_decider(&access)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s @ ("pending" | "approved" | "rejected")) => Some(s.to_owned()),
        Some(_) => {
            return Err(Error::bad(
                "invalid",
                "state",
                "must be pending, approved or rejected",
            ));
        }
    };
    let rows = st
        .db
        .read(move |c| db::corrections::list(c, state.as_deref(), MAX_LIST))
        .await?;
    Ok(AppJson(rows.into_iter().map(|r| r.correction).collect()))
}

fn decision(body: &Bytes) -> Result<CorrectionDecision> {
    if body.is_empty() {
        Ok(CorrectionDecision::default())
    } else {
        parse_json(body)
    }
}

#[utoipa::path(
    post, path = "/corrections/{id}/approve", operation_id = "approveCorrection", summary = "approve a pending correction and apply it (finance or administrator, not the requester: 403 same_person)", params(("id" = i64, Path, description = "the id")), request_body(content = Option<zhucan_domain::api::CorrectionDecision>, description = "an optional note"), responses((status = 200, description = "approved and applied", body = zhucan_domain::api::CorrectionDecided), (status = 404, description = "no such resource", body = ErrorBody), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn approve(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<AppJson<CorrectionDecided>> {
    require_decider(&access)?;
    let id = parse_id(&id, "id")?;
    let note = match decision(&body)?.note {
        Some(n) if !n.trim().is_empty() => Some(required(&n, "note", 500)?),
        _ => None,
    };
    let (identity, actor, now) = (access.who(), access.actor(), st.clock.now());
    let out = st
        .db
        .write(move |tx| {
            let who = Person {
                identity: &identity,
                actor: &actor,
            };
            corrections::approve(tx, id, &who, note.as_deref(), now)
        })
        .await
        .map_err(decision_error)?;
    Ok(AppJson(out))
}

#[utoipa::path(
    post, path = "/corrections/{id}/reject", operation_id = "rejectCorrection", summary = "reject a pending correction with a note: the meal stands (finance or administrator, not the requester)", params(("id" = i64, Path, description = "the id")), request_body(content = zhucan_domain::openapi::CorrectionRejection, description = "`note` is required"), responses((status = 200, description = "rejected", body = zhucan_domain::api::CorrectionDecided), (status = 404, description = "no such resource", body = ErrorBody), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn reject(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<AppJson<CorrectionDecided>> {
    require_decider(&access)?;
    let id = parse_id(&id, "id")?;
    let note = required(decision(&body)?.note.as_deref().unwrap_or(""), "note", 500)?;
    let (identity, actor, now) = (access.who(), access.actor(), st.clock.now());
    let out = st
        .db
        .write(move |tx| {
            let who = Person {
                identity: &identity,
                actor: &actor,
            };
            corrections::reject(tx, id, &who, &note, now)
        })
        .await
        .map_err(decision_error)?;
    Ok(AppJson(out))
}
