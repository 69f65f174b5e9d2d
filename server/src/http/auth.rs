//! Bearer-token authentication: the administrator's token from the config, and per-kiosk tokens
//! (only their sha256 is stored).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::Error;
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::db;

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Kiosk(db::kiosks::Kiosk),
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = bearer(parts).ok_or(Error::Unauthorized)?.to_owned();
        if constant_time_eq(
            token.as_bytes(),
            state.config.admin_token.expose().as_bytes(),
        ) {
            return Ok(Caller::Admin);
        }
        let hash = sha256_hex(token.as_bytes());
        match state
            .db
            .read(move |c| db::kiosks::by_token_hash(c, &hash))
            .await?
        {
            Some(k) => Ok(Caller::Kiosk(k)),
            None => Err(Error::Unauthorized),
        }
    }
}

/// The administrator (guards the management routes).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(Admin),
            Caller::Kiosk(_) => Err(Error::Forbidden("administrator only".into())),
        }
    }
}

/// A registered kiosk.
#[derive(Debug, Clone, Copy)]
pub struct KioskCaller(pub db::kiosks::Kiosk);

impl FromRequestParts<AppState> for KioskCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Kiosk(k) => Ok(KioskCaller(k)),
            Caller::Admin => Err(Error::Forbidden("kiosk token required".into())),
        }
    }
}
