//! Unannounced spot checks (抽查, issue 12): a city auditor counts the diners at a canteen during a
//! window of one local day; Zhucan compares the count with the meals the canteen recorded in that
//! window (accepted, not voided, by method). Used by the JSON API (`/api/v1/spot-checks`), the
//! dashboard page 抽查 (`/inspect`) and the month's red flags ([`flags`]).
//!
//! [`record`] validates, checks the caller's town scope inside the write transaction, stores the
//! check and appends `spot_check.recorded` to the audit log, all in one transaction.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;
use zhucan_domain::api::{Flag, NewSpotCheck, Severity, SpotCheck};
use zhucan_domain::{CanteenId, Fen};

use crate::db::audit::{self, Actor};
use crate::db::spot_checks::{self as store, NewRow};
use crate::db::{self, Conn, Error, Result, Tx};
use crate::period::parse_month;

/// The most heads one check may count.
pub const MAX_HEADCOUNT: i64 = 100_000;
/// The longest note, in characters.
pub const MAX_NOTE: usize = 500;
/// A flag lists at most this many meal ids (`Flag::meals` counts them all).
pub const MAX_FLAG_IDS: usize = 500;

/// The UTC instant of local `date` `time` in `tz`, in the settlements' `served_at` format.
/// A local time that does not exist (a DST gap) is an error naming `field`.
fn instant(tz: Tz, date: NaiveDate, time: NaiveTime, field: &str) -> Result<String> {
    let local = tz
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .ok_or_else(|| Error::invalid(field, "this local time does not exist on that date"))?;
    Ok(zhucan_platform::stamp(local.with_timezone(&Utc)))
}

/// Records a spot check by `actor` at `now`. `town` limits the canteen to one town (a community
/// worker's scope): a canteen elsewhere is refused (`Forbidden`). Errors name the field:
/// `canteen_id` (no such canteen), `date` (after today or before 2000), `window_end` (not after
/// `window_start`), `headcount` (negative or over [`MAX_HEADCOUNT`]), `note` (too long).
pub fn record(
    tx: &Tx<'_>,
    new: &NewSpotCheck,
    actor: &Actor,
    town: Option<&str>,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<SpotCheck> {
    let canteen = match db::canteens::get(tx, new.canteen_id) {
        Ok(c) => c,
        Err(Error::NotFound) => {
            return Err(Error::invalid(
                "canteen_id",
                format!("no canteen {}", new.canteen_id.0),
            ));
        }
        Err(e) => return Err(e),
    };
    if let Some(t) = town
        && canteen.town.0 != t
    {
        return Err(Error::Forbidden(format!(
            "canteen {} is not in your town",
            new.canteen_id.0
        )));
    }
    let today = now.with_timezone(&tz).date_naive();
    if new.date > today {
        return Err(Error::invalid("date", format!("after today ({today})")));
    }
    if new.date < NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(Error::invalid("date", "before 2000"));
    }
    if new.window_end <= new.window_start {
        return Err(Error::invalid(
            "window_end",
            "must be after window_start (one window within one day)",
        ));
    }
    if !(0..=MAX_HEADCOUNT).contains(&new.headcount) {
        return Err(Error::invalid(
            "headcount",
            format!("must be between 0 and {MAX_HEADCOUNT}"),
        ));
    }
    let note = new.note.trim();
    if note.chars().count() > MAX_NOTE {
        return Err(Error::invalid(
            "note",
            format!("at most {MAX_NOTE} characters"),
        ));
    }
    let starts_at = instant(tz, new.date, new.window_start, "window_start")?;
    let ends_at = instant(tz, new.date, new.window_end, "window_end")?;
    if ends_at <= starts_at {
        return Err(Error::invalid("window_end", "must be after window_start"));
    }
    let local_date = new.date.to_string();
    let (ws, we) = (hms(new.window_start), hms(new.window_end));
    let created_at = zhucan_platform::stamp(now);
    let id = store::insert(
        tx,
        &NewRow {
            canteen_id: new.canteen_id,
            local_date: &local_date,
            window_start: &ws,
            window_end: &we,
            starts_at: &starts_at,
            ends_at: &ends_at,
            headcount: new.headcount,
            inspector: &actor.name,
            inspector_role: &actor.role,
            note,
            created_at: &created_at,
        },
    )?;
    let check = with_meals(tx, store::get(tx, id)?)?;
    audit::append(
        tx,
        &created_at,
        actor,
        "spot_check.recorded",
        &format!("spot_check:{id}"),
        &json!({
            "canteen_id": new.canteen_id.0,
            "date": local_date,
            "window_start": ws,
            "window_end": we,
            "headcount": new.headcount,
            "recorded": check.recorded,
            "difference": check.difference,
            "note": note,
        }),
    )?;
    Ok(check)
}

fn hms(t: NaiveTime) -> String {
    t.format("%H:%M:%S").to_string()
}

/// A stored check with the meals recorded in its window.
fn with_meals(conn: &Conn, r: store::Row) -> Result<SpotCheck> {
    let meals =
        store::meals_in_window(conn, r.canteen_id, &r.local_date, &r.starts_at, &r.ends_at)?;
    let count = |m: &str| meals.iter().filter(|x| x.method == m).count() as i64;
    let recorded = meals.len() as i64;
    let bad = |what: &str| Error::other(format!("spot_checks row {}: bad {what}", r.id));
    Ok(SpotCheck {
        id: r.id,
        canteen_id: r.canteen_id,
        canteen_name: r.canteen_name,
        date: r.local_date.parse().map_err(|_| bad("local_date"))?,
        window_start: r.window_start.parse().map_err(|_| bad("window_start"))?,
        window_end: r.window_end.parse().map_err(|_| bad("window_end"))?,
        headcount: r.headcount,
        inspector: r.inspector,
        note: r.note,
        created_at: DateTime::parse_from_rfc3339(&r.created_at)
            .map_err(|_| bad("created_at"))?
            .with_timezone(&Utc),
        recorded,
        recorded_face: count("face"),
        recorded_card: count("card"),
        recorded_staff: count("staff"),
        difference: recorded - r.headcount,
        subsidy: Fen(meals.iter().map(|m| m.subsidy.0).sum()),
        settlement_ids: meals.iter().map(|m| m.id).collect(),
    })
}

/// One check with its comparison, and the town of its canteen (for the caller's scope check).
pub fn get(conn: &Conn, id: i64) -> Result<(SpotCheck, String)> {
    let row = store::get(conn, id)?;
    let town = row.town.clone();
    Ok((with_meals(conn, row)?, town))
}

/// The checks of local month `month` (`YYYY-MM`), newest visit first, each with what was
/// recorded in its window; only canteen `canteen` and only canteens of `town` when given.
pub fn list(
    conn: &Conn,
    month: &str,
    canteen: Option<CanteenId>,
    town: Option<&str>,
) -> Result<Vec<SpotCheck>> {
    if parse_month(month).is_none() {
        return Err(Error::invalid("month", "must be YYYY-MM"));
    }
    let read = |c: &Conn| -> Result<Vec<SpotCheck>> {
        store::of_month(c, month, canteen, town)?
            .into_iter()
            .map(|r| with_meals(c, r))
            .collect()
    };
    // `conn` is one snapshot (`Db::read`) or the caller's transaction: the checks and their
    // meals are of the same moment
    read(conn)
}

/// The spot-check red flags of local month `month` (`YYYY-MM`), for the month's flags
/// (issue 12), optionally for one canteen.
///
/// Every check of the month whose recorded meals exceed its headcount by more than `tolerance`
/// (config `--spot-check-tolerance`, `ZHUCAN_SPOT_CHECK_TOLERANCE`, default 2 meals) becomes one
/// [`Flag`] of kind `spot_check`, keyed `spot_check:<check id>`: severity
/// [`Severity::High`] when `recorded > 2 × headcount + tolerance`, else [`Severity::Medium`];
/// `expected` "counted N heads", `seen` "recorded M meals (face a, card b, staff c)";
/// `settlement_ids` the meals in the window (at most [`MAX_FLAG_IDS`]), `meals` their count and
/// `subsidy` their subsidy; `link` `/inspect?check=<id>`, where the page shows the check; `review`
/// `None` (reviews are the flags page's). Checks come newest visit first. A malformed `month` is
/// `Error::Invalid` naming `month`.
pub fn flags(
    conn: &Conn,
    month: &str,
    canteen: Option<CanteenId>,
    tolerance: u32,
) -> Result<Vec<Flag>> {
    let tolerance = i64::from(tolerance);
    Ok(list(conn, month, canteen, None)?
        .into_iter()
        .filter(|c| c.difference > tolerance)
        .map(|c| {
            let severity = if c.recorded > 2 * c.headcount + tolerance {
                Severity::High
            } else {
                Severity::Medium
            };
            let window = format!(
                "{} {}–{}",
                c.date,
                c.window_start.format("%H:%M"),
                c.window_end.format("%H:%M")
            );
            let mut ids = c.settlement_ids;
            ids.truncate(MAX_FLAG_IDS);
            Flag {
                key: format!("spot_check:{}", c.id),
                kind: "spot_check".into(),
                severity,
                month: month.to_owned(),
                canteen_id: Some(c.canteen_id),
                resident_id: None,
                kiosk_id: None,
                title_zh: format!(
                    "抽查：{} {} 记录就餐 {} 人次，现场清点 {} 人",
                    c.canteen_name, window, c.recorded, c.headcount
                ),
                title_en: format!(
                    "Spot check: {} {} recorded {} meals, {} heads counted",
                    c.canteen_name, window, c.recorded, c.headcount
                ),
                expected: format!("counted {} heads", c.headcount),
                seen: format!(
                    "recorded {} meals (face {}, card {}, staff {})",
                    c.recorded, c.recorded_face, c.recorded_card, c.recorded_staff
                ),
                settlement_ids: ids,
                meals: c.recorded,
                subsidy: c.subsidy,
                link: format!("/inspect?check={}", c.id),
                review: None,
            }
        })
        .collect())
}
