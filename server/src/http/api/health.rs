//! Liveness and readiness: answers when the database can be read.

use axum::extract::State;
use serde_json::{Value, json};

use crate::db;
use crate::http::AppState;
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;

pub async fn show(State(st): State<AppState>) -> Result<AppJson<Value>> {
    let version = st.db.read(db::migrate::current).await?;
    Ok(AppJson(
        json!({ "status": "ok", "schema_version": version }),
    ))
}

pub async fn not_found() -> Error {
    Error::NotFound
}

pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
