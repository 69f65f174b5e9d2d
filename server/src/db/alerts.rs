//! Alerts for finance, administrators and community workers, each one SQL query: meals after a
//! recorded death, one resident at two canteens within two hours, face matches that barely
//! cleared the threshold, canteens with many staff overrides, and regular diners who stopped
//! coming (the visit list, 定期巡访). `town` limits every alert to residents living in it.

use rusqlite::{Connection, params};

use super::Result;

/// One alert line: who, where, when, and what the numbers were.
#[derive(Debug, Clone)]
pub struct AlertRow {
    pub resident_id: i64,
    pub resident_name: String,
    pub town: String,
    pub canteen: String,
    /// A local date, or a UTC time, depending on the alert.
    pub when: String,
    pub detail: String,
}

fn rows(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<AlertRow>> {
    let mut st = conn.prepare_cached(sql)?;
    let it = st.query_map(p, |r| {
        Ok(AlertRow {
            resident_id: r.get(0)?,
            resident_name: r.get(1)?,
            town: r.get(2)?,
            canteen: r.get(3)?,
            when: r.get(4)?,
            detail: r.get(5)?,
        })
    })?;
    Ok(it.collect::<Result<_, _>>()?)
}

/// Accepted, not voided meals dated after the resident's recorded death.
pub fn after_death(conn: &Connection, town: Option<&str>) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        "SELECT r.id, r.name, r.residence_town, c.name, s.local_date, r.deceased_on
         FROM settlements s JOIN residents r ON r.id = s.resident_id
         JOIN canteens c ON c.id = s.canteen_id
         WHERE r.status = 'deceased' AND s.local_date > r.deceased_on
           AND s.outcome = 'accepted' AND s.voided_at IS NULL
           AND (?1 IS NULL OR r.residence_town = ?1)
         ORDER BY s.local_date DESC LIMIT 200",
        params![town],
    )
}

/// The same resident at two different canteens within two hours, since `since`: an accepted meal
/// followed by any attempt (accepted, or refused as a duplicate) elsewhere.
pub fn two_canteens(conn: &Connection, since: &str, town: Option<&str>) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        "SELECT r.id, r.name, r.residence_town, c1.name || ' → ' || c2.name, a.served_at,
            printf('%d min', CAST(round((julianday(b.served_at) - julianday(a.served_at)) * 1440) AS INTEGER))
         FROM settlements a
         JOIN settlements b ON b.resident_id = a.resident_id AND b.canteen_id <> a.canteen_id
              AND b.served_at >= a.served_at AND b.id <> a.id
              AND julianday(b.served_at) - julianday(a.served_at) <= 2.0 / 24
              AND b.voided_at IS NULL
         JOIN residents r ON r.id = a.resident_id
         JOIN canteens c1 ON c1.id = a.canteen_id
         JOIN canteens c2 ON c2.id = b.canteen_id
         WHERE a.local_date >= ?1 AND a.outcome = 'accepted' AND a.voided_at IS NULL
           AND (?2 IS NULL OR r.residence_town = ?2)
         ORDER BY a.served_at DESC LIMIT 200",
        params![since, town],
    )
}

/// Accepted face check-ins since `since` whose match score is below `below`.
pub fn low_match(
    conn: &Connection,
    since: &str,
    below: f64,
    town: Option<&str>,
) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        "SELECT r.id, r.name, r.residence_town, c.name, s.served_at,
            printf('%.3f', s.match_score)
         FROM settlements s JOIN residents r ON r.id = s.resident_id
         JOIN canteens c ON c.id = s.canteen_id
         WHERE s.local_date >= ?1 AND s.method = 'face' AND s.match_score < ?2
           AND s.outcome = 'accepted' AND s.voided_at IS NULL
           AND (?3 IS NULL OR r.residence_town = ?3)
         ORDER BY s.match_score, s.served_at DESC LIMIT 200",
        params![since, below, town],
    )
}

/// Canteens whose share of staff overrides among the month's accepted meals exceeds `share`:
/// (canteen, town, staff meals, all meals).
pub fn staff_share(
    conn: &Connection,
    period: &str,
    share: f64,
    town: Option<&str>,
) -> Result<Vec<(String, String, i64, i64)>> {
    let mut st = conn.prepare_cached(
        "SELECT c.name, c.town, sum(s.method = 'staff'), count(*)
         FROM settlements s JOIN canteens c ON c.id = s.canteen_id
         WHERE s.period = ?1 AND s.outcome = 'accepted' AND s.voided_at IS NULL
           AND (?3 IS NULL OR c.town = ?3)
         GROUP BY s.canteen_id
         HAVING CAST(sum(s.method = 'staff') AS REAL) / count(*) > ?2
         ORDER BY CAST(sum(s.method = 'staff') AS REAL) / count(*) DESC",
    )?;
    let it = st.query_map(params![period, share, town], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(it.collect::<Result<_, _>>()?)
}

/// Regular diners (at least `min_meals` accepted meals from `window_start` up to `today`) whose
/// last meal was on or before `absent_since`: the community workers' visit list.
pub fn absent_regulars(
    conn: &Connection,
    window_start: &str,
    absent_since: &str,
    min_meals: i64,
    town: Option<&str>,
) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        // SQLite takes the bare c.name from the row holding max(local_date): the last canteen.
        "SELECT r.id, r.name, r.residence_town, c.name, max(s.local_date),
            printf('%d', count(*))
         FROM settlements s JOIN residents r ON r.id = s.resident_id
         JOIN canteens c ON c.id = s.canteen_id
         WHERE s.local_date >= ?1 AND s.outcome = 'accepted' AND s.voided_at IS NULL
           AND r.status = 'active' AND (?4 IS NULL OR r.residence_town = ?4)
         GROUP BY s.resident_id
         HAVING count(*) >= ?3 AND max(s.local_date) <= ?2
         ORDER BY max(s.local_date), r.name LIMIT 500",
        params![window_start, absent_since, min_meals, town],
    )
}
