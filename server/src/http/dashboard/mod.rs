//! The web dashboard under `/`: server-rendered pages (askama templates in `server/templates/`,
//! escaped by default), one stylesheet and a little vanilla JavaScript, Chinese first with an
//! English switch (`?lang=en` or the `zhucan_lang` cookie).
//!
//! Every page takes a [`Viewer`] (the session cookie's user, or a redirect to the login page)
//! and checks role and scope itself; every POST takes a [`Posted`] form, which refuses a missing
//! or wrong CSRF token before the handler runs. Handlers call `db`, `reports`, `ingest`,
//! `corrections` and `accounts`; they hold no SQL.

pub mod admin;
pub mod alerts;
pub mod approvals;
pub mod finance;
pub mod flags;
pub mod inspect;
pub mod kiosks;
pub mod operator;
pub mod residents;
pub mod session;

use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use zhucan_domain::Fen;

use super::AppState;
use super::auth::{SESSION_COOKIE, cookie};
use crate::crypto::constant_time_eq;
use crate::db;
use crate::db::users::{Role, User};

/// The dashboard's routes (merged into the main router at `/`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(session::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang/{lang}", get(session::lang))
        .route("/static/app.css", get(session::css))
        .route("/static/app.js", get(session::js))
        .route("/operator", get(operator::show))
        .route("/operator/void", post(operator::void))
        .route("/operator/checkin", post(operator::checkin))
        .route("/finance", get(finance::show))
        .route("/finance/close", post(finance::close))
        .route("/finance/canteens/{id}", get(finance::canteen))
        .route("/finance/residents/{id}", get(finance::resident))
        .route("/finance/flags", get(flags::show))
        .route("/finance/flags/review", post(flags::review))
        .route("/alerts", get(alerts::show))
        .route(inspect::PATH, get(inspect::show).post(inspect::create))
        .route("/residents", get(residents::list))
        .route(
            "/residents/import",
            get(residents::import_page).post(residents::import),
        )
        .route(
            "/residents/{id}",
            get(residents::show).post(residents::edit),
        )
        .route("/residents/{id}/topup", post(residents::topup))
        .route("/topups/{id}/receipt", get(residents::receipt))
        .route("/residents/{id}/national-id", post(residents::national_id))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/push", get(admin::push_log))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/face-data", get(admin::face_data))
        .route(kiosks::PATH, get(kiosks::list))
        .route("/admin/kiosks/codes", post(kiosks::issue_code))
        .route("/admin/kiosks/{id}/revoke", post(kiosks::revoke))
        .route(approvals::PATH, get(approvals::show))
        .route("/approvals/approve", post(approvals::approve))
        .route("/approvals/reject", post(approvals::reject))
}

/// A page-level failure, rendered as a small HTML page (or a redirect to the login page).
#[derive(Debug)]
pub enum PageError {
    Login,
    Forbidden(String),
    NotFound,
    Bad(String),
    /// The form was larger than the body limit (the guard middleware names the limit).
    TooLarge,
    Internal(String),
}

impl From<db::Error> for PageError {
    fn from(e: db::Error) -> PageError {
        match e {
            db::Error::NotFound => PageError::NotFound,
            db::Error::Conflict(m) => PageError::Bad(m),
            db::Error::Forbidden(m) => PageError::Forbidden(m),
            db::Error::Invalid { field, reason } => PageError::Bad(format!("{field}: {reason}")),
            db::Error::Other(m) => PageError::Internal(db::chain(&*m)),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Internal(e.to_string())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::Login => return Redirect::to("/login").into_response(),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "无权访问 · Forbidden", m.as_str()),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "未找到 · Not found",
                "没有这个页面或记录 / no such page or record",
            ),
            PageError::Bad(m) => (
                StatusCode::BAD_REQUEST,
                "无法完成 · Cannot do that",
                m.as_str(),
            ),
            PageError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "内容过大 · Too large",
                "提交的内容超过大小上限 / the form is larger than the limit",
            ),
            PageError::Internal(detail) => {
                tracing::error!(%detail, "dashboard internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "系统错误 · Internal error",
                    "已记录 / it has been logged",
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => status.into_response(),
        }
    }
}

/// A bare error page with `status` (the guard's size refusals on dashboard paths).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => status.into_response(),
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// Renders a template into a response.
pub fn render(t: &impl Template) -> PageResult {
    Ok(Html(t.render()?).into_response())
}

/// The logged-in user of a page request, their session's CSRF token and the display language.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub csrf: String,
    pub en: bool,
    pub path: String,
}

/// The display language: `?lang=` first, then the cookie; Chinese by default.
pub fn english(parts: &Parts) -> bool {
    let q = parts.uri.query().unwrap_or("");
    for kv in q.split('&') {
        match kv {
            "lang=en" => return true,
            "lang=zh" => return false,
            _ => {}
        }
    }
    cookie(&parts.headers, "zhucan_lang").as_deref() == Some("en")
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, PageError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::Login)?;
        let (user, csrf) = crate::accounts::session(&st.db, &token, st.clock.now())
            .await?
            .ok_or(PageError::Login)?;
        Ok(Viewer {
            user,
            csrf,
            en: english(parts),
            path: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned()),
        })
    }
}

impl Viewer {
    /// 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> PageResult<()> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "“{}”角色不能使用此页面 / the {} role cannot use this page",
                self.user.role.label_zh(),
                self.user.role.as_str()
            )))
        }
    }

    /// 403 unless the user may see canteen `id` (admin and finance: all; operator: their own).
    pub fn require_canteen(&self, id: zhucan_domain::CanteenId) -> PageResult<()> {
        let ok = match self.user.role {
            Role::Admin | Role::Finance => true,
            Role::Operator => self.user.canteens.contains(&id),
            Role::Community => false,
        };
        if ok {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "无权查看食堂 {} / no access to canteen {}",
                id.0, id.0
            )))
        }
    }

    /// Who this is in the audit log.
    pub fn actor(&self) -> crate::db::audit::Actor {
        crate::db::audit::Actor::new(self.user.name.clone(), self.user.role.as_str())
    }

    /// The town a community worker is limited to.
    pub fn town_scope(&self) -> Option<String> {
        match self.user.role {
            Role::Community => self.user.town.clone(),
            _ => None,
        }
    }

    /// The page frame: title, navigation for the role, language, CSRF token.
    pub fn chrome(&self, title_zh: &str, title_en: &str, active: &str) -> Chrome {
        let en = self.en;
        let items: &[(&str, &str, &str, &[Role])] = &[
            (
                "/operator",
                "今日就餐",
                "Today",
                &[Role::Admin, Role::Operator],
            ),
            (
                "/finance",
                "月度结算",
                "Statement",
                &[Role::Admin, Role::Finance],
            ),
            (
                "/finance/flags",
                "预警核查",
                "Red flags",
                &[Role::Admin, Role::Finance],
            ),
            (
                "/approvals",
                "复核",
                "Approvals",
                &[Role::Admin, Role::Finance],
            ),
            (
                "/alerts",
                "预警与巡访",
                "Alerts",
                &[Role::Admin, Role::Finance, Role::Community],
            ),
            (
                "/inspect",
                "抽查",
                "Spot check",
                &[Role::Admin, Role::Finance, Role::Community],
            ),
            (
                "/residents",
                "老人档案",
                "Residents",
                &[Role::Admin, Role::Community],
            ),
            ("/admin/users", "用户", "Users", &[Role::Admin]),
            ("/admin/push", "平台推送", "Push", &[Role::Admin]),
            ("/admin/kiosks", "终端", "Kiosks", &[Role::Admin]),
            ("/admin/face-data", "人脸数据", "Face data", &[Role::Admin]),
            ("/admin/audit", "审计日志", "Audit log", &[Role::Admin]),
        ];
        let nav = items
            .iter()
            .filter(|(_, _, _, roles)| roles.contains(&self.user.role))
            .map(|(href, zh, en_label, _)| Nav {
                href: (*href).to_owned(),
                label: if en { en_label } else { zh }.to_string(),
                active: *href == active,
            })
            .collect();
        Chrome {
            en,
            title: if en { title_en } else { title_zh }.to_owned(),
            user: self.user.name.clone(),
            role: if en {
                self.user.role.as_str().to_owned()
            } else {
                self.user.role.label_zh().to_owned()
            },
            csrf: self.csrf.clone(),
            nav,
            back: self.path.clone(),
            notice: String::new(),
        }
    }
}

/// A navigation link.
#[derive(Debug, Clone)]
pub struct Nav {
    pub href: String,
    pub label: String,
    pub active: bool,
}

/// What the page layout (`base.html`) needs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub en: bool,
    pub title: String,
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub nav: Vec<Nav>,
    /// The current path and query, for the language switch to come back to.
    pub back: String,
    /// A one-line message after an action (escaped like everything else).
    pub notice: String,
}

impl Chrome {
    /// The Chinese or the English text.
    pub fn tr<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.en { en } else { zh }
    }
}

/// Something a form carries its CSRF token in.
pub trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// A form POST from a logged-in user whose CSRF token matched the session's. Anything else is
/// refused with 403 before the handler runs.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T> FromRequest<AppState> for Posted<T>
where
    T: DeserializeOwned + HasCsrf + Send,
{
    type Rejection = PageError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, st).await?;
        let req = Request::from_parts(parts, body);
        let Form(form) = Form::<T>::from_request(req, st).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                return PageError::TooLarge;
            }
            // A form without the token field fails here: that is a CSRF refusal too.
            if e.body_text().contains("csrf") {
                PageError::Forbidden("CSRF 校验失败 / CSRF check failed".into())
            } else {
                PageError::Bad(e.body_text())
            }
        })?;
        if !constant_time_eq(form.csrf().as_bytes(), viewer.csrf.as_bytes()) {
            return Err(PageError::Forbidden(
                "CSRF 校验失败 / CSRF check failed".into(),
            ));
        }
        Ok(Posted { viewer, form })
    }
}

/// `¥1,234.50` ([`Fen::grouped`]): how every page shows money.
pub fn yuan(f: Fen) -> String {
    f.grouped()
}

/// A stored UTC RFC 3339 time as local `MM-DD HH:MM`.
pub fn local_time(utc: &str, tz: Tz, with_date: bool) -> String {
    match DateTime::parse_from_rfc3339(utc) {
        Ok(t) => {
            let l = t.with_timezone(&tz);
            if with_date {
                l.format("%m-%d %H:%M").to_string()
            } else {
                l.format("%H:%M").to_string()
            }
        }
        Err(_) => utc.to_owned(),
    }
}

/// The local date and month of `now`.
pub fn today(now: DateTime<Utc>, tz: Tz) -> chrono::NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// A redirect after a POST (303, so the browser GETs the page).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// Percent-encodes a value for a query string.
pub fn qs(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Labels of stored codes, in both languages.
pub fn method_label(m: &str, en: bool) -> &'static str {
    match (m, en) {
        ("face", false) => "刷脸",
        ("face", true) => "face",
        ("card", false) => "刷卡",
        ("card", true) => "card",
        ("staff", false) => "人工核验",
        ("staff", true) => "staff",
        _ => "?",
    }
}

pub fn slot_label(s: Option<&str>, en: bool) -> &'static str {
    match (s, en) {
        (Some("breakfast"), false) => "早餐",
        (Some("breakfast"), true) => "breakfast",
        (Some("lunch"), false) => "午餐",
        (Some("lunch"), true) => "lunch",
        (Some("dinner"), false) => "晚餐",
        (Some("dinner"), true) => "dinner",
        (_, false) => "时段外",
        (_, true) => "no slot",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_has_separators_and_two_decimals() {
        assert_eq!(yuan(Fen(0)), "¥0.00");
        assert_eq!(yuan(Fen(1250)), "¥12.50");
        assert_eq!(yuan(Fen(12_136_200)), "¥121,362.00");
        assert_eq!(yuan(Fen(-100_007)), "-¥1,000.07");
    }
}
