//! Liveness and readiness: answers when the database can be read.

use axum::extract::State;
use zhucan_domain::api::ErrorBody;

use crate::db;
use crate::http::AppState;
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;

#[utoipa::path(
    get, path = "/health", operation_id = "health", summary = "health", responses((status = 200, description = "ok", body = Health), (status = 500, description = "database unavailable", body = ErrorBody))
)]
pub async fn show(State(st): State<AppState>) -> Result<AppJson<Health>> {
    let schema_version = st.db.read(db::migrate::version).await?;
    Ok(AppJson(Health {
        status: "ok",
        schema_version,
    }))
}

/// The answer of `GET /api/v1/health`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The database schema's migration number.
    pub schema_version: i64,
}

pub async fn not_found() -> Error {
    Error::NotFound
}

pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
