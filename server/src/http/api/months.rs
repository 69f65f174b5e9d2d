//! Month close: after it, no settlement counted in the month changes. Recorded in the audit log
//! in the same transaction.

use axum::body::Bytes;
use axum::extract::{Path, State};
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{CloseMonth, MonthClosed};

use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::Access;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, parse_json};
use crate::period::parse_month;

#[utoipa::path(
    post, path = "/months/{month}/close", operation_id = "closeMonth", summary = "close a month", params(("month" = String, Path, pattern = "^2[0-9]{3}-(0[1-9]|1[0-2])$", description = "YYYY-MM")), request_body(content = Option<zhucan_domain::api::CloseMonth>), responses((status = 200, description = "closed", body = zhucan_domain::api::MonthClosed), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn close(
    State(st): State<AppState>,
    access: Access,
    Path(month): Path<String>,
    body: Bytes,
) -> Result<AppJson<MonthClosed>> {
    let may = match &access {
        Access::Admin => true,
        Access::Kiosk(_) => false,
        Access::User(u) => matches!(u.role, Role::Admin | Role::Finance),
    };
    if !may {
        return Err(Error::Forbidden("only finance closes months".into()));
    }
    if parse_month(&month).is_none() {
        return Err(Error::bad("invalid", "month", "must be YYYY-MM"));
    }
    let req: CloseMonth = if body.is_empty() {
        CloseMonth::default()
    } else {
        parse_json(&body)?
    };
    let by = match &access {
        Access::Admin => req
            .by
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "admin".into()),
        other => other.who(),
    };
    let now = st.clock.now();
    let at = zhucan_platform::stamp(now);
    let (m, b) = (month.clone(), by.clone());
    let actor = access.actor();
    let reason = req
        .open_flags_reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Error::bad(
            "too_long",
            "open_flags_reason",
            "at most 500 characters",
        ));
    }
    let rules = st.config.security.flags;
    st.db
        .write(move |tx| {
            crate::corrections::close_month(tx, &m, &at, &b, &actor, reason.as_deref(), &rules)
        })
        .await?;
    Ok(AppJson(MonthClosed {
        month,
        closed_at: now,
        closed_by: by,
    }))
}
