//! 复核 / Approvals (finance and administrators): the corrections that wait for a second person
//! (four-eyes), with approve and reject buttons. Both go through the same use case as the JSON
//! API (`corrections::{approve, reject}`); the person who asked cannot decide.

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{
    Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, local_time, qs, see_other, yuan,
};
use crate::corrections::{self, Person};
use crate::db::users::Role;
use crate::http::AppState;
use crate::{db, reports};

/// The page's path.
pub const PATH: &str = "/approvals";

/// One pending correction, display-ready.
pub struct PendingView {
    pub id: i64,
    pub settlement_id: String,
    pub local_date: String,
    pub resident: String,
    pub resident_id: i64,
    pub canteen: String,
    pub kind: String,
    pub subsidy: String,
    pub price: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    /// The viewer asked for it: no buttons (a second person decides).
    pub own: bool,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    page: Chrome,
    pending: Vec<PendingView>,
}

#[derive(Debug, Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

fn may_decide(v: &Viewer) -> PageResult<()> {
    v.require(&[Role::Admin, Role::Finance])
}

pub async fn show(State(st): State<AppState>, v: Viewer, Query(q): Query<MsgQuery>) -> PageResult {
    may_decide(&v)?;
    let tz = st.config.timezone;
    let rows = st
        .db
        .read(|c| db::corrections::list(c, Some("pending"), 500))
        .await?;
    let me = format!("user:{}", v.user.name);
    let en = v.en;
    let pending = rows
        .into_iter()
        .map(|r| {
            let c = r.correction;
            PendingView {
                id: c.id,
                settlement_id: c.settlement_id.to_string(),
                local_date: c.local_date,
                resident: reports::mask_name(&r.resident_name),
                resident_id: c.resident_id.0,
                canteen: r.canteen_name,
                kind: match (c.kind.as_str(), en) {
                    ("adjustment", false) => "调整（已结账月份）".into(),
                    ("adjustment", true) => "adjustment (closed month)".into(),
                    (_, false) => "作废".into(),
                    (_, true) => "void".into(),
                },
                subsidy: yuan(c.subsidy),
                price: yuan(c.price),
                reason: c.reason,
                own: c.requested_by == me,
                requested_by: c.requested_by,
                requested_at: local_time(&c.requested_at, tz, true),
            }
        })
        .collect();
    let mut page = v.chrome("复核", "Approvals", PATH);
    page.notice = q.msg.unwrap_or_default();
    super::render(&ApprovalsPage { page, pending })
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    csrf: String,
    id: i64,
    #[serde(default)]
    note: String,
}

impl HasCsrf for DecideForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The requester's own decision is refused with its own words.
fn page_error(e: db::Error) -> PageError {
    match e {
        db::Error::Forbidden(m) if m == corrections::SAME_PERSON => PageError::Forbidden(
            "申请人不能复核自己的更正，须由另一人审批 / the person who asked cannot decide; a second person must"
                .into(),
        ),
        other => other.into(),
    }
}

fn note_of(f: &DecideForm, required: bool) -> PageResult<Option<String>> {
    let n = f.note.trim();
    if n.chars().count() > 500 {
        return Err(PageError::Bad(
            "备注最多500字 / the note is at most 500 characters".into(),
        ));
    }
    if n.is_empty() {
        return if required {
            Err(PageError::Bad(
                "驳回须填写原因 / a rejection needs a note".into(),
            ))
        } else {
            Ok(None)
        };
    }
    Ok(Some(n.to_owned()))
}

pub async fn approve(State(st): State<AppState>, p: Posted<DecideForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    may_decide(&v)?;
    let note = note_of(&f, false)?;
    let (identity, actor, now, id) = (
        format!("user:{}", v.user.name),
        v.actor(),
        st.clock.now(),
        f.id,
    );
    st.db
        .write(move |tx| {
            let who = Person {
                identity: &identity,
                actor: &actor,
            };
            corrections::approve(tx, id, &who, note.as_deref(), now)
        })
        .await
        .map_err(page_error)?;
    let msg = if v.en {
        "Approved: the correction is applied."
    } else {
        "已批准，更正已生效。"
    };
    Ok(see_other(&format!("{PATH}?msg={}", qs(msg))))
}

pub async fn reject(State(st): State<AppState>, p: Posted<DecideForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    may_decide(&v)?;
    let note = note_of(&f, true)?.unwrap_or_default();
    let (identity, actor, now, id) = (
        format!("user:{}", v.user.name),
        v.actor(),
        st.clock.now(),
        f.id,
    );
    st.db
        .write(move |tx| {
            let who = Person {
                identity: &identity,
                actor: &actor,
            };
            corrections::reject(tx, id, &who, &note, now)
        })
        .await
        .map_err(page_error)?;
    let msg = if v.en {
        "Rejected: the meal stands."
    } else {
        "已驳回，该餐保持不变。"
    };
    Ok(see_other(&format!("{PATH}?msg={}", qs(msg))))
}
