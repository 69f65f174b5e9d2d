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
    let client = crate::http::client::addr(&parts.extensions).map(|a| a.ip().to_string());
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
        // A locked account answers exactly like a wrong password (and like an unknown name,
        // which can never lock): the page must not tell which user names exist. The lock is
        // in the audit log (login.locked) for the administrator.
        Login::Refused | Login::Locked(_) => (
            StatusCode::UNAUTHORIZED,
            if en {
                format!(
                    "Wrong user name or password, or the account is locked: {MAX_FAILURES} failures in a row lock it for {LOCK_MINUTES} minutes."
                )
            } else {
                format!(
                    "用户名或密码错误，或账户已锁定：连续 {MAX_FAILURES} 次错误将锁定 {LOCK_MINUTES} 分钟。"
                )
            },
        ),
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

/// Whether `p` is a path on this site: one leading `/`, and nothing a browser could read as
/// another host (`//host`, `/\host`) or that could split the header (control characters).
fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(char::is_control)
}

/// The page to go back to: `back` without its `lang=` query parameters, if the RESULT is a
/// local path (checked after the change, so removing a parameter cannot make `//host`).
fn back_to(back: Option<&str>) -> String {
    let Some(b) = back else {
        return "/".into();
    };
    let (path, query) = b.split_once('?').unwrap_or((b, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
        .collect();
    let out = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if is_local_path(&out) { out } else { "/".into() }
}

/// Sets the language cookie and goes back to a local page.
pub async fn lang(Path(lang): Path<String>, Query(q): Query<LangQuery>) -> Response {
    let lang = if lang == "en" { "en" } else { "zh" };
    let back = back_to(q.back.as_deref());
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

#[cfg(test)]
mod tests {
    use super::back_to;

    #[test]
    fn the_language_switch_goes_back_only_to_a_local_page() {
        // keeps the page and its other parameters, drops lang=
        assert_eq!(
            back_to(Some("/finance?month=2026-03&lang=en")),
            "/finance?month=2026-03"
        );
        assert_eq!(back_to(Some("/operator?lang=zh")), "/operator");
        assert_eq!(back_to(None), "/");
        // never another host, also not once lang= is removed
        for (evil, to) in [
            ("/&lang=en/evil.example", "/&lang=en/evil.example"),
            ("/?lang=en/evil.example", "/"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("evil.example", "/"),
            ("/\r\nSet-Cookie: x=1", "/"),
            // an encoded slash is part of a local path, not a host
            ("/%2F/evil.example?lang=en", "/%2F/evil.example"),
        ] {
            assert_eq!(back_to(Some(evil)), to, "{evil:?}");
        }
    }
}
