//! Alerts for finance, administrators and community workers, each one SQL query: meals after a
//! recorded death, one resident at two canteens within two hours, face matches that barely
//! cleared the threshold, canteens with many staff overrides, and regular diners who stopped
//! coming (the visit list, 定期巡访). `town` limits every alert to residents living in it.
//! Runs on both databases (`db::sql`).

use super::Result;
use super::flags::{days_between, minutes_between};
use super::sql::{Conn, Params, params};

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

fn rows(conn: &Conn<'_>, sql: &str, p: impl Params) -> Result<Vec<AlertRow>> {
    conn.query_map(sql, p, |r| {
        Ok(AlertRow {
            resident_id: r.get(0)?,
            resident_name: r.get(1)?,
            town: r.get(2)?,
            canteen: r.get(3)?,
            when: r.get(4)?,
            detail: r.get(5)?,
        })
    })
}

/// Accepted, not voided meals dated after the resident's recorded death.
pub fn after_death(conn: &Conn<'_>, town: Option<&str>) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        "SELECT r.id, r.name, r.residence_town, c.name, s.local_date, r.deceased_on
         FROM settlements s JOIN residents r ON r.id = s.resident_id
         JOIN canteens c ON c.id = s.canteen_id
         WHERE r.status = 'deceased' AND s.local_date > r.deceased_on
           AND s.outcome = 'accepted' AND s.voided_at IS NULL
           AND (CAST(?1 AS TEXT) IS NULL OR r.residence_town = ?1)
         ORDER BY s.local_date DESC LIMIT 200",
        params![town],
    )
}

/// The same resident at two different canteens within two hours, since `since`: an accepted meal
/// followed by any attempt (accepted, or refused as a duplicate) elsewhere.
pub fn two_canteens(conn: &Conn<'_>, since: &str, town: Option<&str>) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        &format!(
            "SELECT r.id, r.name, r.residence_town, c1.name || ' → ' || c2.name, a.served_at,
                CAST({} AS TEXT) || ' min'
             FROM settlements a
             JOIN settlements b ON b.resident_id = a.resident_id AND b.canteen_id <> a.canteen_id
                  AND b.served_at >= a.served_at AND b.id <> a.id
                  AND {} <= CAST(2 AS DOUBLE PRECISION) / 24
                  AND b.voided_at IS NULL
             JOIN residents r ON r.id = a.resident_id
             JOIN canteens c1 ON c1.id = a.canteen_id
             JOIN canteens c2 ON c2.id = b.canteen_id
             WHERE a.local_date >= ?1 AND a.outcome = 'accepted' AND a.voided_at IS NULL
               AND (CAST(?2 AS TEXT) IS NULL OR r.residence_town = ?2)
             ORDER BY a.served_at DESC LIMIT 200",
            minutes_between(conn, "a.served_at", "b.served_at"),
            days_between(conn, "a.served_at", "b.served_at"),
        ),
        params![since, town],
    )
}

/// Accepted face check-ins since `since` whose match score is below `below`.
pub fn low_match(
    conn: &Conn<'_>,
    since: &str,
    below: f64,
    town: Option<&str>,
) -> Result<Vec<AlertRow>> {
    rows(
        conn,
        &format!(
            "SELECT r.id, r.name, r.residence_town, c.name, s.served_at, {}
             FROM settlements s JOIN residents r ON r.id = s.resident_id
             JOIN canteens c ON c.id = s.canteen_id
             WHERE s.local_date >= ?1 AND s.method = 'face' AND s.match_score < ?2
               AND s.outcome = 'accepted' AND s.voided_at IS NULL
               AND (CAST(?3 AS TEXT) IS NULL OR r.residence_town = ?3)
             ORDER BY s.match_score, s.served_at DESC LIMIT 200",
            // (three decimals, rounded half up from the score's first 15 or 16 decimal digits as
            // SQLite's printf rounds: 0.5115 is 0.512 on both, where `to_char` gives 0.511)
            conn.pick(
                "printf('%.3f', s.match_score)",
                "CAST(round(CAST(s.match_score AS NUMERIC), 3) AS TEXT)"
            ),
        ),
        params![since, below, town],
    )
}

/// Canteens whose share of staff overrides among the month's accepted meals exceeds `share`:
/// (canteen, town, staff meals, all meals).
pub fn staff_share(
    conn: &Conn<'_>,
    period: &str,
    share: f64,
    town: Option<&str>,
) -> Result<Vec<(String, String, i64, i64)>> {
    conn.query_map(
        "SELECT c.name, c.town,
            CAST(SUM(CASE WHEN s.method = 'staff' THEN 1 ELSE 0 END) AS BIGINT), count(*)
         FROM settlements s JOIN canteens c ON c.id = s.canteen_id
         WHERE s.period = ?1 AND s.outcome = 'accepted' AND s.voided_at IS NULL
           AND (CAST(?3 AS TEXT) IS NULL OR c.town = ?3)
         GROUP BY s.canteen_id, c.name, c.town
         HAVING CAST(SUM(CASE WHEN s.method = 'staff' THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
             / count(*) > ?2
         ORDER BY CAST(SUM(CASE WHEN s.method = 'staff' THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
             / count(*) DESC",
        params![period, share, town],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Regular diners (at least `min_meals` accepted meals from `window_start` up to `today`) whose
/// last meal was on or before `absent_since`: the community workers' visit list.
pub fn absent_regulars(
    conn: &Conn<'_>,
    window_start: &str,
    absent_since: &str,
    min_meals: i64,
    town: Option<&str>,
) -> Result<Vec<AlertRow>> {
    // The last canteen: SQLite takes the bare c.name from the row holding max(local_date);
    // PostgreSQL has no bare columns, so it looks up the canteen of the resident's last counted
    // meal of that date (the latest served).
    let (last_canteen, group) = conn.pick(
        ("c.name", "s.resident_id"),
        (
            "(SELECT lc.name FROM settlements l JOIN canteens lc ON lc.id = l.canteen_id
              WHERE l.resident_id = r.id AND l.local_date = max(s.local_date)
                AND l.outcome = 'accepted' AND l.voided_at IS NULL
              ORDER BY l.served_at DESC, l.id LIMIT 1)",
            "r.id",
        ),
    );
    rows(
        conn,
        &format!(
            "SELECT r.id, r.name, r.residence_town, {last_canteen}, max(s.local_date),
                CAST(count(*) AS TEXT)
             FROM settlements s JOIN residents r ON r.id = s.resident_id
             JOIN canteens c ON c.id = s.canteen_id
             WHERE s.local_date >= ?1 AND s.outcome = 'accepted' AND s.voided_at IS NULL
               AND r.status = 'active' AND (CAST(?4 AS TEXT) IS NULL OR r.residence_town = ?4)
             GROUP BY {group}
             HAVING count(*) >= ?3 AND max(s.local_date) <= ?2
             ORDER BY max(s.local_date), r.name LIMIT 500"
        ),
        params![window_start, absent_since, min_meals, town],
    )
}
