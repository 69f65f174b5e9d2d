//! 抽查 (Spot check, `/inspect`): for finance, administrators and community workers (canteens of
//! their own town). Made for a phone at the counter: pick the canteen, the date (today) and the
//! window (the last 30 minutes on the injected clock), enter the heads counted and a note; the
//! check is recorded through [`crate::spot_checks::record`] (audited) and the page shows at once
//! what the canteen recorded in that window by method against the count, then the month's
//! earlier checks. `?check=<id>` shows one check (the red flags link here).

use askama::Template;
use axum::extract::{Query, State};
use chrono::{Duration, NaiveDate, NaiveTime, Timelike};
use serde::Deserialize;
use zhucan_domain::CanteenId;
use zhucan_domain::api::{NewSpotCheck, SpotCheck};

use super::{Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, local_time, see_other, yuan};
use crate::db;
use crate::db::users::Role;
use crate::http::AppState;
use crate::spot_checks;

/// Where the page and its form live.
pub const PATH: &str = "/inspect";

const ROLES: &[Role] = &[Role::Admin, Role::Finance, Role::Community];

/// A check as the page shows it.
pub struct CheckView {
    pub id: i64,
    pub canteen: String,
    pub date: String,
    pub window: String,
    pub headcount: i64,
    pub recorded: i64,
    pub face: i64,
    pub card: i64,
    pub staff: i64,
    /// `+7`, `0`, `-2`.
    pub difference: String,
    /// More meals recorded than heads counted.
    pub over: bool,
    pub subsidy: String,
    pub inspector: String,
    pub note: String,
    pub created: String,
    pub meal_ids: Vec<String>,
}

fn view(c: SpotCheck, tz: chrono_tz::Tz) -> CheckView {
    CheckView {
        id: c.id,
        canteen: c.canteen_name,
        date: c.date.to_string(),
        window: format!(
            "{}–{}",
            c.window_start.format("%H:%M"),
            c.window_end.format("%H:%M")
        ),
        headcount: c.headcount,
        recorded: c.recorded,
        face: c.recorded_face,
        card: c.recorded_card,
        staff: c.recorded_staff,
        difference: if c.difference > 0 {
            format!("+{}", c.difference)
        } else {
            c.difference.to_string()
        },
        over: c.difference > 0,
        subsidy: yuan(c.subsidy),
        inspector: c.inspector,
        note: c.note,
        created: local_time(&zhucan_platform::stamp(c.created_at), tz, true),
        meal_ids: c.settlement_ids.iter().map(|u| u.to_string()).collect(),
    }
}

#[derive(Template)]
#[template(path = "inspect.html")]
struct InspectPage {
    page: Chrome,
    canteens: Vec<(i64, String)>,
    canteen: i64,
    date: String,
    today: String,
    window_start: String,
    window_end: String,
    month: String,
    shown: Option<CheckView>,
    checks: Vec<CheckView>,
    tz: String,
}

#[derive(Debug, Deserialize)]
pub struct InspectQuery {
    check: Option<i64>,
    month: Option<String>,
    canteen: Option<i64>,
}

/// `GET /inspect`: the form, the check asked for (`?check=`) and the month's checks.
pub async fn show(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<InspectQuery>,
) -> PageResult {
    v.require(ROLES)?;
    let town = v.town_scope();
    let tz = st.config.timezone;
    let now = st.clock.now().with_timezone(&tz);
    let today = now.date_naive();
    let shown = match q.check {
        Some(id) => {
            let (check, there) = st.db.read(move |c| spot_checks::get(c, id)).await?;
            if town.as_ref().is_some_and(|t| *t != there) {
                return Err(PageError::Forbidden(format!(
                    "无权查看该食堂的抽查 / no access to canteen {}",
                    check.canteen_id.0
                )));
            }
            Some(check)
        }
        None => None,
    };
    let month = match (&q.month, &shown) {
        (Some(m), _) => {
            if crate::period::parse_month(m).is_none() {
                return Err(PageError::Bad(
                    "month: 应为 YYYY-MM / must be YYYY-MM".into(),
                ));
            }
            m.clone()
        }
        (None, Some(c)) => c.date.format("%Y-%m").to_string(),
        (None, None) => today.format("%Y-%m").to_string(),
    };
    let t = town.clone();
    let canteens: Vec<(i64, String)> = st
        .db
        .read(db::canteens::all)
        .await?
        .into_iter()
        .filter(|c| t.as_ref().is_none_or(|t| c.town.0 == *t))
        .map(|c| (c.id.0, c.name))
        .collect();
    let canteen = q
        .canteen
        .filter(|c| canteens.iter().any(|(id, _)| id == c))
        .or(shown.as_ref().map(|c| c.canteen_id.0))
        .or(canteens.first().map(|c| c.0))
        .unwrap_or(0);
    let (m, t) = (month.clone(), town.clone());
    let checks = st
        .db
        .read(move |c| spot_checks::list(c, &m, None, t.as_deref()))
        .await?;
    // the last 30 minutes, within today
    let end = now.time().with_second(0).unwrap_or(now.time());
    let start = if end >= NaiveTime::MIN + Duration::minutes(30) {
        end - Duration::minutes(30)
    } else {
        NaiveTime::MIN
    };
    super::render(&InspectPage {
        page: v.chrome("抽查", "Spot check", PATH),
        canteens,
        canteen,
        date: today.to_string(),
        today: today.to_string(),
        window_start: start.format("%H:%M").to_string(),
        window_end: end.format("%H:%M").to_string(),
        month,
        shown: shown.map(|c| view(c, tz)),
        checks: checks.into_iter().map(|c| view(c, tz)).collect(),
        tz: tz.name().to_owned(),
    })
}

#[derive(Debug, Deserialize)]
pub struct CheckForm {
    csrf: String,
    canteen_id: String,
    date: String,
    window_start: String,
    window_end: String,
    headcount: String,
    #[serde(default)]
    note: String,
}

impl HasCsrf for CheckForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn bad(field: &str, zh: &str, en: &str) -> PageError {
    PageError::Bad(format!("{field}: {zh} / {en}"))
}

fn time(s: &str, field: &str) -> PageResult<NaiveTime> {
    s.trim()
        .parse()
        .map_err(|_| bad(field, "时间应为 HH:MM", "must be a time HH:MM"))
}

/// `POST /inspect`: records the check and shows it (303 to `/inspect?check=<id>`).
pub async fn create(State(st): State<AppState>, p: Posted<CheckForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(ROLES)?;
    let new = NewSpotCheck {
        canteen_id: CanteenId(
            f.canteen_id
                .trim()
                .parse()
                .map_err(|_| bad("canteen_id", "请选择食堂", "pick a canteen"))?,
        ),
        date: f
            .date
            .trim()
            .parse::<NaiveDate>()
            .map_err(|_| bad("date", "日期应为 YYYY-MM-DD", "must be a date YYYY-MM-DD"))?,
        window_start: time(&f.window_start, "window_start")?,
        window_end: time(&f.window_end, "window_end")?,
        headcount: f.headcount.trim().parse().map_err(|_| {
            bad(
                "headcount",
                "清点人数应为不小于 0 的整数",
                "must be a whole number, 0 or more",
            )
        })?,
        note: f.note,
    };
    let actor = v.actor();
    let town = v.town_scope();
    let tz = st.config.timezone;
    let now = st.clock.now();
    let check = st
        .db
        .write(move |tx| spot_checks::record(tx, &new, &actor, town.as_deref(), tz, now))
        .await?;
    Ok(see_other(&format!("{PATH}?check={}", check.id)))
}
