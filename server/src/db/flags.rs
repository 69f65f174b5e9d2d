//! The SQL behind the audit red flags (`crate::flags` turns these rows into flags): the month's
//! meals per canteen and day, the rosters they are compared with, meals on closed days, after a
//! death or during an absence, staff shares, late uploads, face scores; and the reviews,
//! withholdings, closed days and absences finance records.
//!
//! Every query reads accepted, not voided meals only: a refused or voided meal costs nothing.
//! Runs on both databases (`db::sql`).

use std::collections::BTreeMap;

use uuid::Uuid;
use zhucan_domain::{CanteenId, Fen, ResidentId};

use super::sql::{Conn, OptionalExtension, ToSql, Value, params};
use super::{Error, Result, Tx, books};

/// The accepted, not voided meals of `period`, optionally of one canteen (as SQL over `s`).
const MEALS: &str = "s.outcome = 'accepted' AND s.voided_at IS NULL";

/// `INDEXED BY <index>` on SQLite (the covering index its planner would not always pick), nothing
/// on PostgreSQL (which has no index hints).
fn indexed_by(conn: &Conn<'_>, index: &str) -> String {
    conn.pick(format!("INDEXED BY {index}"), String::new())
}

/// `CROSS JOIN` on SQLite (which then keeps the join order as written), `JOIN` on PostgreSQL
/// (where a `CROSS JOIN` takes no `ON`).
fn cross_join(conn: &Conn<'_>) -> &'static str {
    conn.pick("CROSS JOIN", "JOIN")
}

/// SQLite's `julianday(x)` of a stored time (RFC 3339 text), as PostgreSQL computes the same
/// double: whole milliseconds since the Julian epoch over 86400000. So a difference of two, and
/// a comparison or a rounding of it, comes out bit for bit the same on both databases (an exact
/// interval would round some half minutes the other way).
fn julianday(conn: &Conn<'_>, x: &str) -> String {
    conn.pick(
        format!("julianday({x})"),
        format!(
            "(CAST(CAST(EXTRACT(EPOCH FROM CAST({x} AS timestamptz)) * 1000 AS BIGINT) \
             + 210866760000000 AS DOUBLE PRECISION) / CAST(86400000 AS DOUBLE PRECISION))"
        ),
    )
}

/// `to - from` (two stored times) in days, a double: SQLite's `julianday(to) - julianday(from)`
/// on both databases.
pub(super) fn days_between(conn: &Conn<'_>, from: &str, to: &str) -> String {
    format!("({} - {})", julianday(conn, to), julianday(conn, from))
}

/// `to - from` (two stored times) in whole minutes, rounded half away from zero as SQLite's
/// `round` rounds the double (PostgreSQL's `round` of a double rounds half to even).
pub(super) fn minutes_between(conn: &Conn<'_>, from: &str, to: &str) -> String {
    let minutes = format!("({} * 1440)", days_between(conn, from, to));
    conn.pick(
        format!("CAST(round({minutes}) AS INTEGER)"),
        format!("CAST(sign({minutes}) * floor(abs({minutes}) + 0.5) AS BIGINT)"),
    )
}

/// Meals per canteen and local date between `from` and `to` (inclusive), all periods.
pub fn daily_counts(
    conn: &Conn<'_>,
    from: &str,
    to: &str,
    canteen: Option<CanteenId>,
) -> Result<BTreeMap<i64, BTreeMap<String, i64>>> {
    let mut out: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    // (the window spans at most the month before and the month itself)
    conn.for_each(
        &format!(
            "SELECT s.canteen_id, s.local_date, count(*) FROM settlements s
             WHERE s.period IN (substr(?1, 1, 7), substr(?2, 1, 7))
               AND s.local_date BETWEEN ?1 AND ?2 AND {MEALS}
               AND (CAST(?3 AS BIGINT) IS NULL OR s.canteen_id = ?3)
             GROUP BY s.canteen_id, s.local_date"
        ),
        params![from, to, canteen.map(|c| c.0)],
        |r| {
            out.entry(r.get(0)?)
                .or_default()
                .insert(r.get(1)?, r.get(2)?);
            Ok(())
        },
    )?;
    Ok(out)
}

/// (resident, name, first meal id, first canteen, second canteen, second attempt id, minutes).
pub type TwoCanteens = (i64, String, String, i64, i64, String, i64);

/// The month's accepted meals per canteen, local date and slot, with how many were
/// staff-confirmed, entered on the server (staff meals without a kiosk) and late: one pass over
/// the covering index `settlements_flags`.
#[derive(Debug, Clone)]
pub struct SlotCount {
    pub canteen_id: i64,
    pub date: String,
    pub slot: String,
    pub meals: i64,
    pub staff: i64,
    pub server_staff: i64,
    pub late: i64,
    pub max_late_seconds: i64,
}

pub fn slot_counts(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<Vec<SlotCount>> {
    conn.query_map(
        &format!(
            "SELECT s.canteen_id, s.local_date, coalesce(s.slot, ''), count(*),
                CAST(SUM(CASE WHEN s.method = 'staff' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN s.method = 'staff' AND s.kiosk_id IS NULL THEN 1 ELSE 0 END)
                    AS BIGINT),
                count(s.late_by_seconds), coalesce(max(s.late_by_seconds), 0)
             FROM settlements s {}
             WHERE s.period = ?1 AND s.outcome = 'accepted' AND s.voided_at IS NULL
               AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
             GROUP BY s.canteen_id, s.local_date, s.slot",
            indexed_by(conn, "settlements_flags")
        ),
        params![period, canteen.map(|c| c.0)],
        |r| {
            Ok(SlotCount {
                canteen_id: r.get(0)?,
                date: r.get(1)?,
                slot: r.get(2)?,
                meals: r.get(3)?,
                staff: r.get(4)?,
                server_staff: r.get(5)?,
                late: r.get(6)?,
                max_late_seconds: r.get(7)?,
            })
        },
    )
}

/// Each canteen's roster: the residents who live in its town or are designated to it, and were
/// alive on `first_day`.
pub fn rosters(conn: &Conn<'_>, first_day: &str) -> Result<BTreeMap<i64, i64>> {
    let rows = conn.query_map(
        "SELECT c.id,
           (SELECT count(*) FROM residents r
            WHERE (r.residence_town = c.town OR r.designated_canteen = c.id)
              AND (r.deceased_on IS NULL OR r.deceased_on >= ?1))
         FROM canteens c",
        [first_day],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.into_iter().collect())
}

/// The ids and subsidy of the meals of `period` a flag stands on, by a filter over
/// `settlements s` (`filter` is SQL with a bare `?` for each of `args`, in order): at most
/// `limit` ids, all counted.
pub fn meals_where(
    conn: &Conn<'_>,
    period: &str,
    filter: &str,
    args: &[&dyn ToSql],
    limit: usize,
) -> Result<(Vec<Uuid>, i64, Fen)> {
    // The filter's bare `?`s are numbered 1.. on both databases (SQLite numbers a bare `?` one
    // above the largest number before it; `db::sql` numbers bare ones from 1 for PostgreSQL), so
    // they come first and the period is the number after them.
    let mut all: Vec<Value> = args.iter().map(|a| a.to_value()).collect();
    all.push(Value::Text(period.to_owned()));
    let (mut ids, mut n, mut fen) = (Vec::new(), 0i64, Fen::ZERO);
    conn.for_each(
        &format!(
            "SELECT s.id, s.subsidy FROM settlements s
             WHERE ({filter}) AND s.period = ?{} AND {MEALS}
             ORDER BY s.served_at, s.id",
            all.len()
        ),
        all,
        |r| {
            n += 1;
            fen += Fen(r.get(1)?);
            if ids.len() < limit {
                let id: String = r.get(0)?;
                ids.push(id.parse().map_err(Error::other)?);
            }
            Ok(())
        },
    )?;
    Ok((ids, n, fen))
}

/// Meals of `period` on a day their canteen was recorded closed: (canteen, date, reason, meals).
pub fn on_closed_days(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<Vec<(i64, String, String, i64)>> {
    // (one closed day per canteen and date: grouping by its reason too changes no group)
    conn.query_map(
        &format!(
            "SELECT s.canteen_id, s.local_date, d.reason, count(*)
             FROM canteen_closed_days d {} settlements s
               ON s.canteen_id = d.canteen_id AND s.local_date = d.date
             WHERE s.period = ?1 AND {MEALS} AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
             GROUP BY s.canteen_id, s.local_date, d.reason ORDER BY s.canteen_id, s.local_date",
            cross_join(conn)
        ),
        params![period, canteen.map(|c| c.0)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// A resident's meals that should not exist: after their death, or during a recorded absence.
#[derive(Debug, Clone)]
pub struct ResidentMeals {
    pub resident_id: i64,
    pub name: String,
    pub canteen_id: i64,
    /// The death date, or the absence's `from..to` and reason.
    pub why: String,
    /// The absence's id (`None` for a death).
    pub absence: Option<i64>,
    pub meals: i64,
}

/// Meals of `period` dated after the resident's recorded death, per resident and canteen.
pub fn after_death(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<Vec<ResidentMeals>> {
    conn.query_map(
        &format!(
            "SELECT r.id, r.name, s.canteen_id, r.deceased_on, count(*)
             FROM residents r {} settlements s ON s.resident_id = r.id
             WHERE s.period = ?1 AND {MEALS} AND r.deceased_on IS NOT NULL
               AND s.local_date > r.deceased_on AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
             GROUP BY r.id, s.canteen_id ORDER BY r.id, s.canteen_id",
            cross_join(conn)
        ),
        params![period, canteen.map(|c| c.0)],
        |r| {
            Ok(ResidentMeals {
                resident_id: r.get(0)?,
                name: r.get(1)?,
                canteen_id: r.get(2)?,
                why: r.get(3)?,
                absence: None,
                meals: r.get(4)?,
            })
        },
    )
}

/// Meals of `period` inside a recorded absence of the resident, per absence and canteen.
pub fn while_away(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<Vec<ResidentMeals>> {
    // (an absence has one resident: grouping by the resident too changes no group)
    conn.query_map(
        &format!(
            "SELECT r.id, r.name, s.canteen_id,
                a.from_date || '..' || a.to_date || ' ' || a.reason, a.id, count(*)
             FROM resident_absences a {} settlements s ON s.resident_id = a.resident_id
               AND s.local_date BETWEEN a.from_date AND a.to_date
             JOIN residents r ON r.id = s.resident_id
             WHERE s.period = ?1 AND {MEALS} AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
             GROUP BY a.id, s.canteen_id, r.id ORDER BY r.id, a.id, s.canteen_id",
            cross_join(conn)
        ),
        params![period, canteen.map(|c| c.0)],
        |r| {
            Ok(ResidentMeals {
                resident_id: r.get(0)?,
                name: r.get(1)?,
                canteen_id: r.get(2)?,
                why: r.get(3)?,
                absence: Some(r.get(4)?),
                meals: r.get(5)?,
            })
        },
    )
}

/// An accepted meal followed, within `minutes`, by an attempt (accepted, or refused as a
/// duplicate) for the same resident at another canteen: (resident, name, first meal id, first
/// canteen, second canteen, second attempt id, minutes between).
pub fn two_canteens(
    conn: &Conn<'_>,
    period: &str,
    minutes: i64,
    canteen: Option<CanteenId>,
) -> Result<Vec<TwoCanteens>> {
    // each attempt against the resident's next one (a window over the month, one sort), not a
    // self-join: the month's meals are sorted once by resident and time
    let between = minutes_between(conn, "t.served_at", "t.next_at");
    let within = days_between(conn, "t.served_at", "t.next_at");
    conn.query_map(
        &format!(
            "SELECT t.resident_id, r.name, t.id, t.canteen_id, t.next_canteen, t.next_id,
                {between}
             FROM (SELECT s.id, s.resident_id, s.canteen_id, s.served_at, s.outcome,
                     lead(s.canteen_id) OVER w AS next_canteen,
                     lead(s.served_at) OVER w AS next_at, lead(s.id) OVER w AS next_id
                   FROM settlements s {}
                   WHERE s.period = ?1 AND s.voided_at IS NULL
                   WINDOW w AS (PARTITION BY s.resident_id ORDER BY s.served_at)) t
             JOIN residents r ON r.id = t.resident_id
             WHERE t.outcome = 'accepted' AND t.next_canteen <> t.canteen_id
               AND {within} <= CAST(?2 AS DOUBLE PRECISION) / 1440
               AND (CAST(?3 AS BIGINT) IS NULL OR t.canteen_id = ?3 OR t.next_canteen = ?3)
             ORDER BY t.served_at LIMIT 500",
            indexed_by(conn, "settlements_flags_time")
        ),
        params![period, minutes, canteen.map(|c| c.0)],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )
}

/// Meals of `period` entered on the server, per person who entered them (from the audit log's
/// `settlement.staff_entry`) and canteen: (actor, canteen, meals).
pub fn staff_entries_by_actor(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<Vec<(String, i64, i64)>> {
    conn.query_map(
        &format!(
            "SELECT a.actor, s.canteen_id, count(*)
             FROM audit_log a JOIN settlements s ON 'settlement:' || s.id = a.target
             WHERE a.action = 'settlement.staff_entry' AND s.period = ?1 AND {MEALS}
               AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
             GROUP BY a.actor, s.canteen_id ORDER BY a.actor, s.canteen_id"
        ),
        params![period, canteen.map(|c| c.0)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// The month's accepted face meals per resident and kiosk: how many, how many scored below the
/// kiosk's reported match threshold (or `default`) plus `margin`, and the sums of the scores.
/// One pass over the covering index `settlements_flags_face`.
#[derive(Debug, Clone)]
pub struct FaceStat {
    pub resident_id: i64,
    pub kiosk_id: Option<i64>,
    pub canteen_id: i64,
    pub meals: i64,
    pub close: i64,
    pub match_sum: f64,
    pub liveness_sum: f64,
}

pub fn face_stats(
    conn: &Conn<'_>,
    period: &str,
    default: f64,
    margin: f64,
    canteen: Option<CanteenId>,
) -> Result<Vec<FaceStat>> {
    conn.query_map(
        &format!(
            "SELECT s.resident_id, s.kiosk_id, max(s.canteen_id), count(*),
                COALESCE(CAST(SUM(CASE WHEN s.match_score < coalesce(k.match_threshold, ?2) + ?3
                    THEN 1 ELSE 0 END) AS BIGINT), 0),
                coalesce(sum(s.match_score), 0.0), coalesce(sum(s.liveness_score), 0.0)
             FROM settlements s {}
             LEFT JOIN kiosks k ON k.id = s.kiosk_id
             WHERE s.period = ?1 AND s.outcome = 'accepted' AND s.voided_at IS NULL
               AND s.method = 'face' AND (CAST(?4 AS BIGINT) IS NULL OR s.canteen_id = ?4)
             GROUP BY s.resident_id, s.kiosk_id",
            indexed_by(conn, "settlements_flags_face")
        ),
        params![period, default, margin, canteen.map(|c| c.0)],
        |r| {
            Ok(FaceStat {
                resident_id: r.get(0)?,
                kiosk_id: r.get(1)?,
                canteen_id: r.get(2)?,
                meals: r.get(3)?,
                close: r.get(4)?,
                match_sum: r.get(5)?,
                liveness_sum: r.get(6)?,
            })
        },
    )
}

/// Per kiosk: (kiosk, canteen, face meals, mean match score, mean liveness score) of the face
/// meals in `periods`.
pub fn kiosk_scores(
    conn: &Conn<'_>,
    periods: &[String],
    canteen: Option<CanteenId>,
) -> Result<BTreeMap<i64, (i64, i64, f64, f64)>> {
    let mut out = BTreeMap::new();
    let sql = format!(
        "SELECT s.kiosk_id, max(s.canteen_id), count(*),
            CAST(avg(s.match_score) AS DOUBLE PRECISION),
            CAST(avg(s.liveness_score) AS DOUBLE PRECISION)
         FROM settlements s {}
         WHERE s.period = ?1 AND {MEALS} AND s.method = 'face' AND s.kiosk_id IS NOT NULL
           AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
         GROUP BY s.kiosk_id",
        indexed_by(conn, "settlements_flags_face")
    );
    for p in periods {
        conn.for_each(&sql, params![p, canteen.map(|c| c.0)], |r| {
            let (k, c, n, m, l): (i64, i64, i64, f64, f64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let e = out.entry(k).or_insert((c, 0i64, 0.0f64, 0.0f64));
            // running mean over the periods
            let total = e.1 + n;
            e.2 = (e.2 * e.1 as f64 + m * n as f64) / total as f64;
            e.3 = (e.3 * e.1 as f64 + l * n as f64) / total as f64;
            e.1 = total;
            Ok(())
        })?;
    }
    Ok(out)
}

// --- reviews and withholdings ------------------------------------------------------------------

/// A stored review of a flag.
#[derive(Debug, Clone)]
pub struct Review {
    pub flag_key: String,
    pub state: String,
    pub note: String,
    pub by: String,
    pub at: String,
}

/// The reviews of `month`, by flag key.
pub fn reviews(conn: &Conn<'_>, month: &str) -> Result<BTreeMap<String, Review>> {
    let rows = conn.query_map(
        "SELECT flag_key, state, note, by_user, at FROM flag_reviews WHERE month = ?1",
        [month],
        |r| {
            Ok(Review {
                flag_key: r.get(0)?,
                state: r.get(1)?,
                note: r.get(2)?,
                by: r.get(3)?,
                at: r.get(4)?,
            })
        },
    )?;
    Ok(rows.into_iter().map(|r| (r.flag_key.clone(), r)).collect())
}

/// Records (or replaces) the review of a flag. A confirmed flag stays confirmed: its meals'
/// subsidy is withheld, and only a new decision with a note can say otherwise (see
/// [`release`]).
pub fn put_review(tx: &Tx<'_>, month: &str, kind: &str, r: &Review) -> Result<()> {
    tx.execute(
        "INSERT INTO flag_reviews (month, flag_key, kind, state, note, by_user, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (month, flag_key) DO UPDATE SET state = excluded.state,
           note = excluded.note, by_user = excluded.by_user, at = excluded.at",
        params![month, r.flag_key, kind, r.state, r.note, r.by, r.at],
    )?;
    Ok(())
}

/// Withholds the subsidy of the given meals (accepted, not voided, of `period`, not withheld
/// already) under `flag_key`; returns how many rows were written. Each row is sealed with the
/// books MAC.
pub fn withhold(
    tx: &Tx<'_>,
    period: &str,
    flag_key: &str,
    ids: &[Uuid],
    at: &str,
    by: &str,
) -> Result<usize> {
    let mut n = 0;
    for id in ids {
        let id = id.to_string();
        let inserted = tx.execute(
            "INSERT INTO withholdings (settlement_id, period, flag_key, canteen_id, resident_id,
                subsidy, city_fen, town_fen, other_fen, funding_town, created_at, created_by)
             SELECT s.id, s.period, ?2, s.canteen_id, s.resident_id, s.subsidy, s.city_fen,
                s.town_fen, s.other_fen, s.funding_town, ?3, ?4
             FROM settlements s
             WHERE s.id = ?1 AND s.period = ?5 AND s.outcome = 'accepted' AND s.voided_at IS NULL
               AND s.subsidy > 0
               AND NOT EXISTS (SELECT 1 FROM withholdings w WHERE w.settlement_id = s.id)",
            params![id, flag_key, at, by, period],
        )?;
        if inserted == 1 {
            books::seal_withholding(tx, &id)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Releases what a flag withheld (its review changed to `explained`); returns the rows removed.
pub fn release(tx: &Tx<'_>, period: &str, flag_key: &str) -> Result<usize> {
    tx.execute(
        "DELETE FROM withholdings WHERE period = ?1 AND flag_key = ?2",
        params![period, flag_key],
    )
}

/// One withheld meal as the statement lists it.
#[derive(Debug, Clone)]
pub struct Withheld {
    pub settlement_id: String,
    pub flag_key: String,
    pub canteen_id: i64,
    pub resident_id: i64,
    pub funding_town: Option<String>,
    pub subsidy: Fen,
    pub city: Fen,
    pub town: Fen,
    pub other: Fen,
    pub by: String,
    pub at: String,
    /// Of `subsidy`, the county's and the canteen's parts.
    pub canteen: Fen,
    pub county: Fen,
    /// The meal's operating subsidy, withheld with it.
    pub operating: Fen,
}

/// The withholdings of `period`, optionally of one canteen or the canteens of one town.
pub fn withheld(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
    town: Option<&str>,
) -> Result<Vec<Withheld>> {
    conn.query_map(
        "SELECT w.settlement_id, w.flag_key, w.canteen_id, w.resident_id, w.funding_town,
            w.subsidy, w.city_fen, w.town_fen, w.other_fen, w.created_by, w.created_at,
            COALESCE((SELECT s.canteen_fen FROM settlements s WHERE s.id = w.settlement_id), 0),
            COALESCE((SELECT s.county_fen FROM settlements s WHERE s.id = w.settlement_id), 0),
            COALESCE((SELECT s.operating_fen FROM settlements s WHERE s.id = w.settlement_id), 0)
         FROM withholdings w JOIN canteens c ON c.id = w.canteen_id
         WHERE w.period = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR w.canteen_id = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR c.town = ?3)
         ORDER BY w.canteen_id, w.settlement_id",
        params![period, canteen.map(|c| c.0), town],
        |r| {
            Ok(Withheld {
                settlement_id: r.get(0)?,
                flag_key: r.get(1)?,
                canteen_id: r.get(2)?,
                resident_id: r.get(3)?,
                funding_town: r.get(4)?,
                subsidy: Fen(r.get(5)?),
                city: Fen(r.get(6)?),
                town: Fen(r.get(7)?),
                // the stored other_fen counts the county's and canteen's parts (migration 0015)
                other: Fen(r.get::<_, i64>(8)? - r.get::<_, i64>(11)? - r.get::<_, i64>(12)?),
                by: r.get(9)?,
                at: r.get(10)?,
                canteen: Fen(r.get(11)?),
                county: Fen(r.get(12)?),
                operating: Fen(r.get(13)?),
            })
        },
    )
}

// --- calendars ---------------------------------------------------------------------------------

/// Records a closed day of a canteen (replacing the reason of one recorded before).
pub fn close_day(tx: &Tx<'_>, canteen: CanteenId, date: &str, reason: &str) -> Result<()> {
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM canteens WHERE id = ?1)",
        [canteen.0],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(Error::NotFound);
    }
    tx.execute(
        "INSERT INTO canteen_closed_days (canteen_id, date, reason) VALUES (?1, ?2, ?3)
         ON CONFLICT (canteen_id, date) DO UPDATE SET reason = excluded.reason",
        params![canteen.0, date, reason],
    )?;
    Ok(())
}

/// The closed days of a canteen in `month` (`YYYY-MM`): (date, reason).
pub fn closed_days(
    conn: &Conn<'_>,
    canteen: CanteenId,
    month: &str,
) -> Result<Vec<(String, String)>> {
    conn.query_map(
        "SELECT date, reason FROM canteen_closed_days
         WHERE canteen_id = ?1 AND substr(date, 1, 7) = ?2 ORDER BY date",
        params![canteen.0, month],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Records an absence of a resident; returns its id.
pub fn add_absence(
    tx: &Tx<'_>,
    resident: ResidentId,
    from: &str,
    to: &str,
    reason: &str,
    at: &str,
    by: &str,
) -> Result<i64> {
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM residents WHERE id = ?1",
            [resident.0],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(Error::NotFound);
    }
    tx.query_row(
        "INSERT INTO resident_absences (resident_id, from_date, to_date, reason, created_at,
            created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        params![resident.0, from, to, reason, at, by],
        |r| r.get(0),
    )
}
