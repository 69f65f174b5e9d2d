//! Authentication: bearer tokens (the administrator's token from the config — the superuser for
//! machines — and per-kiosk tokens, only their sha256 stored) and, through [`Access`], the
//! dashboard's session cookie with its role and scope. A cookie-authenticated write must carry the
//! session's CSRF token in `X-CSRF-Token`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::Error;
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::db;
use crate::db::audit::Actor;

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

/// The administrator (guards the management routes): the admin token, or the session of a
/// dashboard user with the admin role (a write needs its CSRF token). Any other caller gets 403;
/// no credentials at all, 401.
#[derive(Debug, Clone)]
pub struct Admin(pub Access);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let access = Access::from_request_parts(parts, state).await?;
        match &access {
            Access::Admin => Ok(Admin(access)),
            Access::User(u) if u.role == db::users::Role::Admin => Ok(Admin(access)),
            Access::User(_) | Access::Kiosk(_) => {
                Err(Error::Forbidden("administrator only".into()))
            }
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

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "zhucan_session";
/// The header a cookie-authenticated API call that changes data must carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whoever calls the API, with their scope: the administrator's token (superuser for machines),
/// a kiosk token, or a dashboard user's session cookie. A cookie-authenticated request that is
/// not a GET must carry the session's CSRF token in `X-CSRF-Token`.
#[derive(Debug, Clone)]
pub enum Access {
    Admin,
    Kiosk(db::kiosks::Kiosk),
    User(db::users::User),
}

impl Access {
    /// Whether this caller may read (and, where the role allows, act on) canteen `id`.
    pub fn sees_canteen(&self, id: zhucan_domain::CanteenId) -> bool {
        use db::users::Role;
        match self {
            Access::Admin => true,
            Access::Kiosk(k) => k.canteen_id == id,
            Access::User(u) => match u.role {
                Role::Admin | Role::Finance => true,
                Role::Operator => u.canteens.contains(&id),
                Role::Community => false,
            },
        }
    }

    /// 403 unless [`Access::sees_canteen`].
    pub fn require_canteen(&self, id: zhucan_domain::CanteenId) -> Result<(), Error> {
        if self.sees_canteen(id) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("no access to canteen {}", id.0)))
        }
    }

    /// The user's role, if a user.
    pub fn role(&self) -> Option<db::users::Role> {
        match self {
            Access::User(u) => Some(u.role),
            _ => None,
        }
    }

    /// A name for audit columns (`voided_by`, `closed_by`).
    pub fn who(&self) -> String {
        match self {
            Access::Admin => "admin".into(),
            Access::Kiosk(k) => format!("kiosk:{}", k.id),
            Access::User(u) => format!("user:{}", u.name),
        }
    }

    /// Who this is in the audit log: the user's name and role, `admin-token` or `kiosk:<id>`.
    pub fn actor(&self) -> Actor {
        match self {
            Access::Admin => Actor::new("admin-token", "admin"),
            Access::Kiosk(k) => Actor::new(format!("kiosk:{}", k.id), "kiosk"),
            Access::User(u) => Actor::new(u.name.clone(), u.role.as_str()),
        }
    }
}

impl Caller {
    /// Who this is in the audit log.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Admin => Access::Admin.actor(),
            Caller::Kiosk(k) => Access::Kiosk(*k).actor(),
        }
    }
}

impl FromRequestParts<AppState> for Access {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if bearer(parts).is_some() {
            return Ok(match Caller::from_request_parts(parts, state).await? {
                Caller::Admin => Access::Admin,
                Caller::Kiosk(k) => Access::Kiosk(k),
            });
        }
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(Error::Unauthorized)?;
        let (user, csrf) = crate::accounts::session(&state.db, &token, state.clock.now())
            .await?
            .ok_or(Error::Unauthorized)?;
        let safe = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
                return Err(Error::Forbidden("missing or wrong X-CSRF-Token".into()));
            }
        }
        Ok(Access::User(user))
    }
}
