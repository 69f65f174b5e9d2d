//! `GET /audit` (administrators): the audit log, newest first, a page at a time, with the verdict
//! of walking the whole hash chain.

use axum::extract::State;
use serde::Deserialize;
use zhucan_domain::api::AuditPage;

use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};

/// The most entries one page may hold.
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries per page (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Only entries with a smaller seq (the previous page's `next_before`).
    before: Option<i64>,
}

#[utoipa::path(
    get, path = "/audit", operation_id = "getAudit", summary = "the audit log, newest first, with the verdict of walking its hash chain (administrator)", params(AuditQuery), responses((status = 200, description = "a page of entries", body = zhucan_domain::api::AuditPage))
)]
pub async fn list(
    State(st): State<AppState>,
    _: Admin,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<AppJson<AuditPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::bad(
            "invalid",
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(Error::bad(
            "invalid",
            "before",
            "must be a seq of 1 or more",
        ));
    }
    Ok(AppJson(crate::audit::load(&st.db, q.before, limit).await?))
}
