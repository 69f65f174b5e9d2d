//! Spot checks (抽查, migration 0012): the heads an auditor counted at a canteen during a window of
//! one local day, and the meals the canteen recorded in that window. Rows are append-only (SQL
//! triggers refuse UPDATE and DELETE); [`insert`] is called by [`crate::spot_checks::record`],
//! which audits it in the same transaction. Runs on both databases (`db::sql`).

use uuid::Uuid;
use zhucan_domain::{CanteenId, Fen};

use super::sql::{self, Conn, params};
use super::{Error, Result, Tx};

/// A check to store: the window as entered (local) and as UTC instants (`served_at` format).
#[derive(Debug, Clone)]
pub struct NewRow<'a> {
    pub canteen_id: CanteenId,
    /// `YYYY-MM-DD`.
    pub local_date: &'a str,
    /// `HH:MM:SS`, local.
    pub window_start: &'a str,
    pub window_end: &'a str,
    /// UTC RFC 3339 with millis and `Z`, like `settlements.served_at`.
    pub starts_at: &'a str,
    pub ends_at: &'a str,
    pub headcount: i64,
    pub inspector: &'a str,
    pub inspector_role: &'a str,
    pub note: &'a str,
    pub created_at: &'a str,
}

/// A stored check, with its canteen's name and town.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub canteen_id: CanteenId,
    pub canteen_name: String,
    pub town: String,
    pub local_date: String,
    pub window_start: String,
    pub window_end: String,
    pub starts_at: String,
    pub ends_at: String,
    pub headcount: i64,
    pub inspector: String,
    pub note: String,
    pub created_at: String,
}

/// One meal recorded in a check's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meal {
    pub id: Uuid,
    /// `face`, `card` or `staff`.
    pub method: String,
    pub subsidy: Fen,
}

/// Stores a check; returns its id.
pub fn insert(tx: &Tx<'_>, r: &NewRow<'_>) -> Result<i64> {
    tx.query_row(
        "INSERT INTO spot_checks (canteen_id, local_date, window_start, window_end, starts_at,
             ends_at, headcount, inspector, inspector_role, note, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         RETURNING id",
        params![
            r.canteen_id.0,
            r.local_date,
            r.window_start,
            r.window_end,
            r.starts_at,
            r.ends_at,
            r.headcount,
            r.inspector,
            r.inspector_role,
            r.note,
            r.created_at
        ],
        |row| row.get(0),
    )
}

const COLS: &str = "s.id, s.canteen_id, c.name, c.town, s.local_date, s.window_start, s.window_end,
    s.starts_at, s.ends_at, s.headcount, s.inspector, s.note, s.created_at";

fn from_row(r: &sql::Row<'_>) -> Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        canteen_id: CanteenId(r.get(1)?),
        canteen_name: r.get(2)?,
        town: r.get(3)?,
        local_date: r.get(4)?,
        window_start: r.get(5)?,
        window_end: r.get(6)?,
        starts_at: r.get(7)?,
        ends_at: r.get(8)?,
        headcount: r.get(9)?,
        inspector: r.get(10)?,
        note: r.get(11)?,
        created_at: r.get(12)?,
    })
}

/// One check by id.
pub fn get(conn: &Conn<'_>, id: i64) -> Result<Row> {
    conn.query_row(
        &format!(
            "SELECT {COLS} FROM spot_checks s JOIN canteens c ON c.id = s.canteen_id
             WHERE s.id = ?1"
        ),
        [id],
        from_row,
    )
}

/// The checks of local month `month` (`YYYY-MM`), newest visit first; only canteen `canteen`
/// and only canteens of town `town` when given.
pub fn of_month(
    conn: &Conn<'_>,
    month: &str,
    canteen: Option<CanteenId>,
    town: Option<&str>,
) -> Result<Vec<Row>> {
    conn.query_map(
        &format!(
            "SELECT {COLS} FROM spot_checks s JOIN canteens c ON c.id = s.canteen_id
             WHERE s.local_date >= CAST(?1 AS TEXT) || '-01'
               AND s.local_date <= CAST(?1 AS TEXT) || '-31'
               AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR c.town = ?3)
             ORDER BY s.local_date DESC, s.window_start DESC, s.id DESC"
        ),
        params![month, canteen.map(|c| c.0), town],
        from_row,
    )
}

/// The accepted, not voided meals at `canteen` on local day `local_date` served in
/// `[starts_at, ends_at)` (UTC, `served_at` format), in the order served.
pub fn meals_in_window(
    conn: &Conn<'_>,
    canteen: CanteenId,
    local_date: &str,
    starts_at: &str,
    ends_at: &str,
) -> Result<Vec<Meal>> {
    conn.query_map(
        "SELECT id, method, subsidy FROM settlements
         WHERE canteen_id = ?1 AND local_date = ?2 AND served_at >= ?3 AND served_at < ?4
           AND outcome = 'accepted' AND voided_at IS NULL
         ORDER BY served_at, id",
        params![canteen.0, local_date, starts_at, ends_at],
        |r| {
            let id: String = r.get(0)?;
            Ok(Meal {
                id: id.parse().map_err(Error::other)?,
                method: r.get(1)?,
                subsidy: Fen(r.get(2)?),
            })
        },
    )
}
