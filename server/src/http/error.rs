//! The HTTP layer's one error type. Every failure becomes `{ "error": { code, field, message } }`
//! with a 4xx status naming the field, or a bare 500 whose detail is only logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use zhucan_domain::api::{DuplicateFace, ErrorBody, ErrorDetail};

use crate::db;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    BadRequest {
        code: String,
        field: Option<String>,
        message: String,
    },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// 403 with its own code (`same_person`: four-eyes refuses the requester's own decision).
    #[error("{message}")]
    Refused { code: String, message: String },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// 409 `duplicate_face` on field `embeddings`: the uploaded face matches another resident's.
    #[error("{message}")]
    DuplicateFace {
        message: String,
        other: DuplicateFace,
    },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    TooLarge,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn bad(code: &str, field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::BadRequest {
            code: code.into(),
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<db::Error> for Error {
    fn from(e: db::Error) -> Error {
        match e {
            db::Error::NotFound => Error::NotFound,
            db::Error::Conflict(m) => Error::Conflict(m),
            db::Error::Forbidden(m) => Error::Forbidden(m),
            db::Error::Invalid { field, reason } => Error::bad("invalid", field, reason),
            db::Error::Other(m) => Error::Internal(db::chain(&*m)),
        }
    }
}

impl From<crate::templates::Error> for Error {
    fn from(e: crate::templates::Error) -> Error {
        match e {
            crate::templates::Error::Invalid { field, reason } => {
                Error::bad("invalid", field, reason)
            }
            crate::templates::Error::Db(e) => e.into(),
            crate::templates::Error::Seal(e) => Error::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut duplicate_of = None;
        let (status, code, field, message) = match self {
            Error::BadRequest {
                code,
                field,
                message,
            } => (StatusCode::BAD_REQUEST, code, field, message),
            Error::DuplicateFace { message, other } => {
                duplicate_of = Some(other);
                (
                    StatusCode::CONFLICT,
                    "duplicate_face".into(),
                    Some("embeddings".into()),
                    message,
                )
            }
            Error::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized".into(),
                None,
                "a valid bearer token is required".into(),
            ),
            Error::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden".into(), None, m),
            Error::Refused { code, message } => (StatusCode::FORBIDDEN, code, None, message),
            Error::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found".into(),
                None,
                "no such resource".into(),
            ),
            Error::Conflict(m) => (StatusCode::CONFLICT, "conflict".into(), None, m),
            Error::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed".into(),
                None,
                "this route does not take that method".into(),
            ),
            Error::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large".into(),
                None,
                "the request body is too large".into(),
            ),
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal".into(),
                    None,
                    "internal error; it has been logged".into(),
                )
            }
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    field,
                    message,
                    duplicate_of,
                },
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Bearer".parse()
        {
            resp.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
