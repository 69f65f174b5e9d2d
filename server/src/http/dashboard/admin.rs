//! Administration: users (role and scope), the delivery log of the push to the city platform
//! ("就餐数据实时推送至平台"), the audit log with the verdict on its hash chain (审计日志), and how
//! much face data the system holds against the regulator's filing threshold (人脸数据).

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;
use zhucan_domain::CanteenId;

use super::{Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, local_time, qs, see_other};
use crate::accounts::{self, NewUser};
use crate::db;
use crate::db::push::LogRow;
use crate::db::users::{Role, User};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    page: Chrome,
    users: Vec<(User, String, String)>,
}

#[derive(Debug, Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

pub async fn users(State(st): State<AppState>, v: Viewer, Query(q): Query<MsgQuery>) -> PageResult {
    v.require(&[Role::Admin])?;
    let users = st.db.read(db::users::list).await?;
    let mut page = v.chrome("用户与角色", "Users and roles", "/admin/users");
    page.notice = q.msg.unwrap_or_default();
    super::render(&UsersPage {
        users: users
            .into_iter()
            .map(|u| {
                let role = if v.en {
                    u.role.as_str()
                } else {
                    u.role.label_zh()
                }
                .to_owned();
                let scope = match u.role {
                    Role::Operator => u
                        .canteens
                        .iter()
                        .map(|c| c.0.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    Role::Community => u.town.clone().unwrap_or_default(),
                    _ => "*".into(),
                };
                (u, role, scope)
            })
            .collect(),
        page,
    })
}

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    csrf: String,
    name: String,
    password: String,
    role: String,
    #[serde(default)]
    canteens: String,
    #[serde(default)]
    town: String,
}

impl HasCsrf for NewUserForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn create_user(State(st): State<AppState>, p: Posted<NewUserForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin])?;
    let role = Role::parse(&f.role).ok_or_else(|| PageError::Bad("role".into()))?;
    let mut canteens = Vec::new();
    for c in f.canteens.split([',', '，', ' ']).filter(|c| !c.is_empty()) {
        canteens.push(CanteenId(
            c.trim()
                .parse()
                .map_err(|_| PageError::Bad(format!("canteen '{c}' is not an id")))?,
        ));
    }
    let u = NewUser {
        name: f.name.clone(),
        password: f.password,
        role,
        canteens,
        town: Some(f.town.trim().to_owned()).filter(|t| !t.is_empty()),
    };
    let (db, now, actor) = (st.db.clone(), st.clock.now(), v.actor());
    tokio::task::spawn_blocking(move || accounts::create_user_as(&db, &u, &actor, now))
        .await
        .map_err(|e| PageError::Internal(e.to_string()))??;
    Ok(see_other(&format!(
        "/admin/users?msg={}",
        qs(&format!("已创建用户 {} / user created", f.name.trim()))
    )))
}

#[derive(Template)]
#[template(path = "push.html")]
struct PushPage {
    page: Chrome,
    target: String,
    pending: i64,
    delivered: i64,
    rows: Vec<(LogRow, String, String)>,
}

pub async fn push_log(State(st): State<AppState>, v: Viewer) -> PageResult {
    v.require(&[Role::Admin])?;
    let (rows, pending, delivered) = st.db.read(|c| db::push::log(c, 200)).await?;
    let tz = st.config.timezone;
    super::render(&PushPage {
        page: v.chrome(
            "就餐数据实时推送至平台",
            "Push to the city platform",
            "/admin/push",
        ),
        target: st
            .config
            .push
            .as_ref()
            .map(|p| p.url.clone())
            .unwrap_or_default(),
        pending,
        delivered,
        rows: rows
            .into_iter()
            .map(|r| {
                let created = local_time(&r.created_at, tz, true);
                let done = r.delivered_at.as_deref().map_or_else(
                    || format!("→ {}", local_time(&r.next_attempt_at, tz, true)),
                    |d| local_time(d, tz, true),
                );
                (r, created, done)
            })
            .collect(),
    })
}

/// An audit entry, display-ready.
pub struct AuditLine {
    pub seq: i64,
    pub when: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub hash: String,
    pub broken: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    page: Chrome,
    verified: bool,
    broken_at: String,
    total: i64,
    lines: Vec<AuditLine>,
    older: String,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

/// The audit log, newest first, 100 a page, under the verdict of walking the whole chain.
pub async fn audit(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    v.require(&[Role::Admin])?;
    let p = crate::audit::load(&st.db, q.before.filter(|b| *b > 0), 100).await?;
    let tz = st.config.timezone;
    let lines = p
        .entries
        .iter()
        .map(|e| AuditLine {
            seq: e.seq,
            when: local_time(&e.at, tz, true),
            actor: e.actor.clone(),
            role: e.role.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            detail: e.detail.to_string(),
            hash: e.hash.chars().take(12).collect(),
            broken: p.broken_at.is_some_and(|b| e.seq >= b),
        })
        .collect();
    super::render(&AuditPage {
        page: v.chrome("审计日志", "Audit log", "/admin/audit"),
        verified: p.verified,
        broken_at: p.broken_at.map(|b| b.to_string()).unwrap_or_default(),
        total: p.total,
        lines,
        older: p
            .next_before
            .map(|b| format!("/admin/audit?before={b}"))
            .unwrap_or_default(),
    })
}

#[derive(Template)]
#[template(path = "face_data.html")]
struct FaceDataPage {
    page: Chrome,
    f: zhucan_domain::api::FaceDataSummary,
    percent: String,
    /// The bar's width in per cent, at most 100.
    bar: String,
}

/// How many people's face data the system holds, against the 100,000 filing threshold.
pub async fn face_data(State(st): State<AppState>, v: Viewer) -> PageResult {
    v.require(&[Role::Admin])?;
    let f = crate::face_data::summary(&st.db, st.config.timezone, st.clock.now()).await?;
    super::render(&FaceDataPage {
        page: v.chrome("人脸数据", "Face data", "/admin/face-data"),
        percent: format!("{:.2}", f.percent_of_threshold),
        bar: format!("{:.2}", f.percent_of_threshold.min(100.0)),
        f,
    })
}
