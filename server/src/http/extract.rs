//! Extractors that turn every malformed request into the house error shape, naming the field:
//! [`AppJson`] (JSON bodies, via `serde_path_to_error`) and [`AppQuery`] (query strings).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::Error;

/// A JSON body (request) or JSON answer (response).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(Error::BadRequest {
                code: "unsupported_media_type".into(),
                field: None,
                message: "expected Content-Type: application/json".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::TooLarge
            } else {
                Error::BadRequest {
                    code: "bad_body".into(),
                    field: None,
                    message: e.body_text(),
                }
            }
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Deserialises a JSON object, naming the failing field path (`items[3].served_at`). Every body
/// of this API is an object; an array is refused even where serde would map it onto a struct.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(Error::BadRequest {
            code: "invalid".into(),
            field: None,
            message: "the body must be a JSON object".into(),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let code = if inner.is_syntax() || inner.is_eof() {
            "malformed_json"
        } else {
            "invalid"
        };
        // A missing field is reported on its parent; name the field itself.
        let msg = inner.to_string();
        let field = match msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
        {
            Some((name, _)) if path == "." => name.to_owned(),
            Some((name, _)) => format!("{path}.{name}"),
            None => path,
        };
        Error::BadRequest {
            code: code.into(),
            field: (field != ".").then_some(field),
            message: msg,
        }
    })
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string, with failures in the house error shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| AppQuery(q))
            .map_err(|e| {
                let msg = e.body_text();
                // serde_urlencoded says e.g. "Failed to deserialize query string: missing field `date`".
                let field = msg
                    .split_once("field `")
                    .and_then(|(_, r)| r.split_once('`'))
                    .map(|(f, _)| f.to_owned());
                Error::BadRequest {
                    code: "invalid_query".into(),
                    field,
                    message: msg,
                }
            })
    }
}
