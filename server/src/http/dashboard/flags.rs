//! 预警 / Red flags: the month's audit red flags for finance, most severe first, each with what
//! was expected, what was seen, the meals behind it (a link to the drill-down) and a review form
//! (explained, or confirmed: the meals' subsidy is withheld from what the month pays).

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, qs, see_other, yuan};
use crate::db::users::Role;
use crate::flags;
use crate::http::AppState;
use crate::period::parse_month;

/// A flag, display-ready.
pub struct Row {
    pub key: String,
    pub kind: String,
    pub severity: String,
    pub severity_label: String,
    pub title: String,
    pub expected: String,
    pub seen: String,
    pub meals: i64,
    pub subsidy: String,
    pub link: String,
    /// `explained` / `confirmed`, with who and the note; empty while open.
    pub review: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "flags.html")]
struct FlagsPage {
    page: Chrome,
    month: String,
    closed: bool,
    open: usize,
    rows: Vec<Row>,
}

#[derive(Debug, Deserialize)]
pub struct FlagsQuery {
    month: Option<String>,
    msg: Option<String>,
}

pub async fn show(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<FlagsQuery>,
) -> PageResult {
    v.require(&[Role::Admin, Role::Finance])?;
    let month = super::finance::month_of(q.month.as_deref(), &st)?;
    let rules = st.config.security.flags;
    let m2 = month.clone();
    let (flags, closed) = st
        .db
        .read(move |c| {
            Ok((
                flags::compute(c, &m2, None, &rules)?,
                crate::db::months::is_closed(c, &m2)?,
            ))
        })
        .await?;
    let en = v.en;
    let open = flags.iter().filter(|f| f.review.is_none()).count();
    let rows = flags
        .into_iter()
        .map(|f| Row {
            severity: f.severity.as_str().to_owned(),
            severity_label: if en {
                f.severity.as_str().to_owned()
            } else {
                f.severity.label_zh().to_owned()
            },
            title: if en { f.title_en } else { f.title_zh },
            expected: f.expected,
            seen: f.seen,
            meals: f.meals,
            subsidy: yuan(f.subsidy),
            link: f.link,
            state: f
                .review
                .as_ref()
                .map(|r| r.state.clone())
                .unwrap_or_default(),
            review: f
                .review
                .map(|r| {
                    let s = match (r.state.as_str(), en) {
                        ("confirmed", false) => "已核实，补贴暂扣",
                        ("confirmed", true) => "confirmed, subsidy withheld",
                        (_, false) => "已说明",
                        (_, true) => "explained",
                    };
                    format!("{s} · {} · {}", r.by, r.note)
                })
                .unwrap_or_default(),
            kind: f.kind,
            key: f.key,
        })
        .collect();
    let mut page = v.chrome("预警核查", "Red flags", "/finance/flags");
    page.notice = q.msg.unwrap_or_default();
    super::render(&FlagsPage {
        page,
        month,
        closed,
        open,
        rows,
    })
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    month: String,
    key: String,
    state: String,
    note: String,
}

impl HasCsrf for ReviewForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The review form: the same use case as `POST /api/v1/flags/review`.
pub async fn review(State(st): State<AppState>, p: Posted<ReviewForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin, Role::Finance])?;
    if parse_month(&f.month).is_none() {
        return Err(PageError::Bad("month must be YYYY-MM".into()));
    }
    if !["explained", "confirmed"].contains(&f.state.as_str()) {
        return Err(PageError::Bad(
            "state must be explained or confirmed".into(),
        ));
    }
    let note = f.note.trim().to_owned();
    if note.is_empty() || note.chars().count() > 500 {
        return Err(PageError::Bad("note: 1 to 500 characters".into()));
    }
    let rules = st.config.security.flags;
    let at = zhucan_platform::stamp(st.clock.now());
    let actor = v.actor();
    let d = flags::Decision {
        month: f.month.clone(),
        key: f.key.clone(),
        state: f.state.clone(),
        note,
    };
    let (_, done) = st
        .db
        .write(move |tx| flags::review_by_key(tx, &d, &actor, &at, &rules))
        .await?;
    let msg = match (f.state.as_str(), v.en) {
        ("confirmed", false) => format!(
            "已核实：暂扣 {} 人次补贴 {} 元。",
            done.withheld,
            yuan(done.withheld_fen)
        ),
        ("confirmed", true) => format!(
            "Confirmed: subsidy of {} meals withheld ({}).",
            done.withheld,
            yuan(done.withheld_fen)
        ),
        (_, false) => format!("已说明，释放暂扣 {} 人次。", done.released),
        (_, true) => format!("Explained; {} withheld meals released.", done.released),
    };
    Ok(see_other(&format!(
        "/finance/flags?month={}&msg={}",
        qs(&f.month),
        qs(&msg)
    )))
}
