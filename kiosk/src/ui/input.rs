//! Errors as the screen's JSON (`{"error": {"field", "message"}}`) and the JSON body extractor
//! that names the bad field.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------- errors and JSON input

/// An error for the page: a status and `{"error": {"field", "message"}}`.
#[derive(Debug)]
pub struct Error {
    pub(super) status: StatusCode,
    pub(super) field: Option<String>,
    pub(super) message: String,
}

impl Error {
    pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub(super) fn unavailable() -> Error {
        Error {
            status: StatusCode::SERVICE_UNAVAILABLE,
            field: None,
            message: "本机程序未运行，请找工作人员 / The kiosk runtime is not running".into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "field": self.field, "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}

/// `Json` whose rejection is our error shape, naming the offending field when serde can.
pub(super) struct AppJson<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // JSON only: a page elsewhere can post text/plain or a form to 127.0.0.1 without the
        // browser asking first (no CORS preflight); application/json it cannot.
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Error {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                field: Some("content-type".into()),
                message: "请求须为 application/json / the body must be application/json".into(),
            });
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Error {
                status: StatusCode::BAD_REQUEST,
                field: None,
                message: e.body_text(),
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(AppJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // "missing field `code`" has the field in the message, not the path
                let field = if path == "." {
                    missing_field(&inner.to_string())
                } else {
                    Some(path)
                };
                Error {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    field,
                    message: inner.to_string(),
                }
            })
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}
