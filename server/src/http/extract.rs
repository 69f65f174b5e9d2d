//! Extractors that turn every malformed request into the house error shape, naming the field:
//! [`AppJson`] (JSON bodies, via `serde_path_to_error`) and [`AppQuery`] (query strings). A
//! JSON body nested deeper than [`MAX_JSON_DEPTH`] is refused before it is parsed, so no body
//! can run the parser's recursion into the stack.

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

/// The deepest nesting of arrays and objects a JSON body may have (the deepest real body, a
/// policy document, needs fewer than 10).
pub const MAX_JSON_DEPTH: usize = 32;

/// Refuses a body whose arrays and objects nest deeper than [`MAX_JSON_DEPTH`]: one linear scan,
/// skipping strings, before any parser recurses.
pub fn check_depth(bytes: &[u8]) -> Result<(), Error> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::BadRequest {
                        code: "too_deep".into(),
                        field: Some("body".into()),
                        message: format!("the JSON body nests deeper than {MAX_JSON_DEPTH} levels"),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
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
    check_depth(bytes)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_but_not_strings() {
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(31), "]".repeat(31));
        assert!(check_depth(ok.as_bytes()).is_ok());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(32), "]".repeat(32));
        assert!(matches!(
            check_depth(deep.as_bytes()),
            Err(Error::BadRequest { ref code, .. }) if code == "too_deep"
        ));
        let in_string = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(check_depth(in_string.as_bytes()).is_ok());
    }
}
