//! placeholder
use axum::Json;
pub async fn show() -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}
