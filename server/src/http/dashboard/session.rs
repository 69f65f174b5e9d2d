//! Log in, log out, the language switch, the home redirect and the static assets.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{HasCsrf, PageResult, Posted, Viewer, see_other};
use crate::accounts::{self, LOCK_MINUTES, Login, MAX_FAILURES, SESSION_HOURS};
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::{SESSION_COOKIE, cookie};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    en: bool,
    error: String,
    name: String,
}

/// `/`: each role's home page.
pub async fn home(v: Viewer) -> Response {
    let to = match v.user.role {
        Role::Admin | Role::Finance => "/finance",
        Role::Operator => "/operator",
        Role::Community => "/alerts",
    };
    see_other(to)
}

pub async fn login_page(parts: Parts) -> PageResult {
    super::render(&LoginPage {
        en: super::english(&parts),
        error: String::new(),
        name: String::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
}

/// `; Secure` when the server is told it is reached over HTTPS.
fn secure(st: &AppState) -> &'static str {
    if st.config.security.secure_cookies {
        "; Secure"
    } else {
        ""
    }
}

pub async fn login(
    State(st): State<AppState>,
    parts: Parts,
    Form(f): Form<LoginForm>,
) -> PageResult {
    let en = super::english(&parts);
    let now = st.clock.now();
    let name = f.name.trim().to_owned();
    let client = crate::http::guard::client_addr(&parts.extensions).map(|a| a.ip().to_string());
    let outcome = accounts::login(&st.db, name.clone(), f.password, client, now).await?;
    let (status, error) = match outcome {
        Login::Ok { token, .. } => {
            let c = format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                SESSION_HOURS * 3600,
                secure(&st)
            );
            let mut resp = see_other("/");
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            return Ok(resp);
        }
        Login::Refused => (
            StatusCode::UNAUTHORIZED,
            if en {
                format!(
                    "Wrong user name or password. {MAX_FAILURES} failures in a row lock the account for {LOCK_MINUTES} minutes."
                )
            } else {
                format!(
                    "用户名或密码错误。连续 {MAX_FAILURES} 次错误将锁定账户 {LOCK_MINUTES} 分钟。"
                )
            },
        ),
        Login::Locked(until) => {
            let t = until.with_timezone(&st.config.timezone).format("%H:%M");
            (
                StatusCode::TOO_MANY_REQUESTS,
                if en {
                    format!("Account locked after {MAX_FAILURES} failed logins, until {t}.")
                } else {
                    format!("连续 {MAX_FAILURES} 次密码错误，账户已锁定至 {t}。")
                },
            )
        }
    };
    let html = LoginPage { en, error, name }.render()?;
    Ok((status, Html(html)).into_response())
}

/// The login page with 429 and `Retry-After`, when one address tries too often (the rate limit
/// in front of the per-account lock-out).
pub fn too_many_attempts(en: bool, retry_after_secs: u64) -> Response {
    let error = if en {
        format!("Too many log-in attempts from this computer. Try again in {retry_after_secs} s.")
    } else {
        format!("登录尝试过于频繁，请 {retry_after_secs} 秒后再试。")
    };
    let page = LoginPage {
        en,
        error,
        name: String::new(),
    };
    let mut resp = match page.render() {
        Ok(html) => (StatusCode::TOO_MANY_REQUESTS, Html(html)).into_response(),
        Err(_) => StatusCode::TOO_MANY_REQUESTS.into_response(),
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

impl HasCsrf for LogoutForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn logout(State(st): State<AppState>, parts: Parts, p: Posted<LogoutForm>) -> PageResult {
    if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
        accounts::logout(&st.db, &token, p.viewer.actor(), st.clock.now()).await?;
    }
    let mut resp = see_other("/login");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(&st)
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    back: Option<String>,
}

/// Sets the language cookie and goes back to a local page.
pub async fn lang(Path(lang): Path<String>, Query(q): Query<LangQuery>) -> Response {
    let lang = if lang == "en" { "en" } else { "zh" };
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let back = back
        .replace("?lang=en", "?")
        .replace("?lang=zh", "?")
        .replace("&lang=en", "")
        .replace("&lang=zh", "");
    let mut resp = see_other(&back);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "zhucan_lang={lang}; Path=/; SameSite=Lax; Max-Age=31536000"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../static/app.css"),
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../static/app.js"),
    )
        .into_response()
}
