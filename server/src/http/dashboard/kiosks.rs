//! 终端 (Kiosks, administrators only): every registered kiosk with its canteen, last heartbeat,
//! versions, status and the verdict of the statement's chain check; issuing a one-time
//! registration code (shown once, with the command to run on the device); revoking a kiosk with
//! a reason. Issuing and revoking go through the same functions as the JSON API
//! ([`crate::kiosks::issue_code`], [`crate::kiosks::revoke`]), which audit them.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use zhucan_domain::CanteenId;
use zhucan_domain::api::{ChainLine, KioskStatus};

use super::finance::chain_problems;
use super::{Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, qs, see_other};
use crate::db;
use crate::db::users::Role;
use crate::http::AppState;

/// Where the page and its forms live.
pub const PATH: &str = "/admin/kiosks";

/// A kiosk as the table shows it.
pub struct KioskRow {
    pub id: i64,
    pub name: String,
    pub canteen: String,
    pub registered: String,
    pub last_seen: String,
    pub backlog: String,
    pub software: String,
    pub model: String,
    pub live: bool,
    /// `在用`, or `已吊销 <local time>`.
    pub status: String,
    /// `verified`, `broken` or `unsigned`.
    pub chain: String,
    pub chain_label: String,
    /// `first–last` seq received; empty before the first signed record.
    pub seqs: String,
    pub problems: Vec<String>,
    pub meals: i64,
    pub staff_meals: i64,
}

#[derive(Template)]
#[template(path = "kiosks.html")]
struct KiosksPage {
    page: Chrome,
    kiosks: Vec<KioskRow>,
    canteens: Vec<(i64, String)>,
    tz: String,
}

#[derive(Debug, Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

/// `YYYY-MM-DD HH:MM` in the configured zone.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

fn row(k: KioskStatus, l: &ChainLine, names: &BTreeMap<i64, String>, tz: Tz, en: bool) -> KioskRow {
    let none = || "—".to_owned();
    let chain_label = match (l.status.as_str(), en) {
        ("verified", false) => "✔ 已验证",
        ("verified", true) => "✔ verified",
        ("broken", false) => "✘ 链有缺口或分叉",
        ("broken", true) => "✘ gaps or forks",
        ("flagged", false) => "⚠ 链完整，有低于终端阈值的人脸记录待核查",
        ("flagged", true) => "⚠ whole, with face meals below the kiosk's threshold to check",
        (_, false) => "尚无签名记录",
        (_, true) => "no signed records yet",
    };
    let status = match (k.revoked_at, en) {
        (None, false) => "在用".to_owned(),
        (None, true) => "in use".to_owned(),
        (Some(t), false) => format!("已吊销 {}", local(t, tz)),
        (Some(t), true) => format!("revoked at {}", local(t, tz)),
    };
    KioskRow {
        id: k.id,
        canteen: names
            .get(&k.canteen_id.0)
            .cloned()
            .unwrap_or_else(|| format!("#{}", k.canteen_id.0)),
        registered: local(k.created_at, tz),
        last_seen: k.last_seen_at.map_or_else(
            || if en { "never" } else { "从未" }.to_owned(),
            |t| local(t, tz),
        ),
        backlog: k.outbox_backlog.map_or_else(none, |b| b.to_string()),
        software: k.software_version.unwrap_or_else(none),
        model: k.model_version.unwrap_or_else(none),
        live: k.revoked_at.is_none(),
        status,
        chain: l.status.clone(),
        chain_label: chain_label.into(),
        seqs: match (l.first_seq, l.last_seq) {
            (Some(a), Some(b)) => format!("{a}–{b}"),
            _ => String::new(),
        },
        problems: chain_problems(l, en),
        meals: l.meals,
        staff_meals: l.staff_meals,
        name: k.name,
    }
}

/// `GET /admin/kiosks`: the kiosks, the code form and a revoke form per live kiosk.
pub async fn list(State(st): State<AppState>, v: Viewer, Query(q): Query<MsgQuery>) -> PageResult {
    v.require(&[Role::Admin])?;
    let (kiosks, canteens) = st
        .db
        .read(|c| {
            let canteens = db::canteens::all(c)?;
            let mut kiosks = Vec::new();
            for k in db::kiosks::list(c)? {
                // The statement's chain check, over all time, one kiosk at a time.
                let line = db::chain::kiosk_line(c, k.id)?;
                kiosks.push((k, line));
            }
            Ok((kiosks, canteens))
        })
        .await?;
    let names: BTreeMap<i64, String> = canteens.iter().map(|c| (c.id.0, c.name.clone())).collect();
    let tz = st.config.timezone;
    let mut page = v.chrome("终端", "Kiosks", PATH);
    page.notice = q.msg.unwrap_or_default();
    super::render(&KiosksPage {
        kiosks: kiosks
            .into_iter()
            .map(|(k, l)| row(k, &l, &names, tz, v.en))
            .collect(),
        canteens: names.into_iter().collect(),
        tz: tz.name().to_owned(),
        page,
    })
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    canteen_id: String,
    name: String,
}

impl HasCsrf for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Template)]
#[template(path = "kiosk_code.html")]
struct CodePage {
    page: Chrome,
    code: String,
    name: String,
    canteen: String,
    expires: String,
    command: String,
    https: bool,
    tz: String,
}

/// The server's root URL as the administrator's browser reached it: the `Host` header (only
/// host-name characters; otherwise the listen address) and https whenever cookies are Secure
/// (the server speaks HTTPS or sits behind a proxy that does).
fn server_url(st: &AppState, headers: &HeaderMap) -> (String, bool) {
    let https = st.config.security.secure_cookies;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map_or_else(|| st.config.listen.to_string(), str::to_owned);
    let scheme = if https { "https" } else { "http" };
    (format!("{scheme}://{host}"), https)
}

/// `POST /admin/kiosks/codes`: issues a one-time registration code and shows it on this page
/// only (never stored in clear, never shown again), with its expiry and the command to run.
pub async fn issue_code(
    State(st): State<AppState>,
    headers: HeaderMap,
    p: Posted<CodeForm>,
) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin])?;
    let canteen = CanteenId(f.canteen_id.trim().parse().map_err(|_| {
        PageError::Bad(format!(
            "canteen_id: “{}”不是食堂编号 / is not a canteen id",
            f.canteen_id
        ))
    })?);
    let name = f.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(PageError::Bad(
            "name: 终端名称必填（最多64字）/ a kiosk name is required (at most 64 characters)"
                .into(),
        ));
    }
    let canteen_name = st
        .db
        .read(move |c| db::canteens::get(c, canteen))
        .await
        .map_err(|e| match e {
            db::Error::NotFound => PageError::Bad(format!(
                "canteen_id: 没有编号为 {0} 的食堂 / no canteen {0}",
                canteen.0
            )),
            e => e.into(),
        })?
        .name;
    let issued =
        crate::kiosks::issue_code(&st.db, &*st.clock, v.actor(), canteen, name.clone()).await?;
    let (url, https) = server_url(&st, &headers);
    let ca = if https { " --server-ca ca.pem" } else { "" };
    let command = format!(
        "zhucan-kiosk enrol-kiosk --server {url} --code {}{ca} --data data/kiosk",
        issued.code
    );
    let mut resp = super::render(&CodePage {
        page: v.chrome("发放注册码", "Registration code", PATH),
        expires: local(issued.expires_at.to_utc(), st.config.timezone),
        code: issued.code,
        name,
        canteen: canteen_name,
        command,
        https,
        tz: st.config.timezone.name().to_owned(),
    })?;
    // The code is a credential: no cache may keep this page.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    csrf: String,
    reason: String,
}

impl HasCsrf for RevokeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /admin/kiosks/{id}/revoke`: the kiosk's token stops working at once; audited with the
/// required reason.
pub async fn revoke(
    State(st): State<AppState>,
    Path(id): Path<String>,
    p: Posted<RevokeForm>,
) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin])?;
    let id: i64 = id.parse().map_err(|_| PageError::NotFound)?;
    let reason = f.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(PageError::Bad(
            "reason: 吊销原因必填（最多500字）/ a reason is required (at most 500 characters)"
                .into(),
        ));
    }
    let k = crate::kiosks::revoke(&st.db, &*st.clock, v.actor(), id, Some(reason)).await?;
    Ok(see_other(&format!(
        "{PATH}?msg={}",
        qs(&format!(
            "已吊销终端 {} (#{}) / kiosk revoked",
            k.name, k.id
        ))
    )))
}
