//! Alerts for finance, administrators and community workers (who see only their own town):
//! meals after a recorded death, one resident at two canteens within two hours, face matches that
//! barely cleared the threshold, canteens with many staff overrides, and regular diners absent
//! for some days — the community workers' visit list (定期巡访).

use askama::Template;
use axum::extract::{Query, State};
use chrono::Duration;
use serde::Deserialize;

use super::{Chrome, PageResult, Viewer, local_time, today};
use crate::db;
use crate::db::alerts::AlertRow;
use crate::db::users::Role;
use crate::http::AppState;

/// Default threshold under which an accepted face match is "barely cleared".
pub const LOW_MATCH: f64 = 0.66;
/// A canteen is flagged when more than this share of its month's meals are staff overrides.
pub const STAFF_SHARE: f64 = 0.20;
/// Meals in the last 30 days that make a regular diner.
pub const REGULAR_MEALS: i64 = 8;

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    page: Chrome,
    town: String,
    days: i64,
    below: String,
    after_death: Vec<AlertRow>,
    two_canteens: Vec<AlertRow>,
    low_match: Vec<AlertRow>,
    staff: Vec<(String, String, i64, i64, String)>,
    absent: Vec<AlertRow>,
}

#[derive(Debug, Deserialize)]
pub struct AlertQuery {
    days: Option<i64>,
    below: Option<f64>,
}

pub async fn show(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<AlertQuery>,
) -> PageResult {
    v.require(&[Role::Admin, Role::Finance, Role::Community])?;
    let town = v.town_scope();
    let tz = st.config.timezone;
    let day = today(st.clock.now(), tz);
    let days = q.days.unwrap_or(3).clamp(1, 60);
    let below = q
        .below
        .filter(|b| (0.0..=1.0).contains(b))
        .unwrap_or(LOW_MATCH);
    let since = (day - Duration::days(30)).to_string();
    let absent_since = (day - Duration::days(days)).to_string();
    let month = day.format("%Y-%m").to_string();
    let t = town.clone();
    let (mut after_death, mut two, mut low, staff, mut absent) = st
        .db
        .read(move |c| {
            let t = t.as_deref();
            Ok((
                db::alerts::after_death(c, t)?,
                db::alerts::two_canteens(c, &since, t)?,
                db::alerts::low_match(c, &since, below, t)?,
                db::alerts::staff_share(c, &month, STAFF_SHARE, t)?,
                db::alerts::absent_regulars(c, &since, &absent_since, REGULAR_MEALS, t)?,
            ))
        })
        .await?;
    for r in two.iter_mut().chain(low.iter_mut()) {
        r.when = local_time(&r.when, tz, true);
    }
    let towns: std::collections::HashMap<String, String> = st
        .db
        .read(db::towns::list)
        .await?
        .into_iter()
        .map(|t| (t.code, t.name))
        .collect();
    let name = |code: &str| towns.get(code).cloned().unwrap_or_else(|| code.to_owned());
    for r in after_death
        .iter_mut()
        .chain(two.iter_mut())
        .chain(low.iter_mut())
        .chain(absent.iter_mut())
    {
        r.town = name(&r.town);
    }
    let staff = staff
        .into_iter()
        .map(|(canteen, t, s, n)| {
            let pct = format!("{:.0}%", s as f64 * 100.0 / n.max(1) as f64);
            (canteen, name(&t), s, n, pct)
        })
        .collect();
    super::render(&AlertsPage {
        page: v.chrome("预警与巡访", "Alerts and visits", "/alerts"),
        town: town.as_deref().map(&name).unwrap_or_default(),
        days,
        below: format!("{below:.2}"),
        after_death,
        two_canteens: two,
        low_match: low,
        staff,
        absent,
    })
}
