//! `pending_corrections` (migration 0011): voids and adjustments that wait for a second person
//! (four-eyes). A request is a row in state `pending`; a decision sets `approved` or `rejected`
//! with who, when and a note. Rows are never deleted; at most one is pending per settlement.
//! Runs on both databases (`db::sql`).

use uuid::Uuid;
use zhucan_domain::api::Correction;
use zhucan_domain::{CanteenId, Fen, ResidentId};

use super::sql::{self, Conn, OptionalExtension, params};
use super::{Error, Result, Tx};

/// A correction with what the approvals page shows beside it.
#[derive(Debug, Clone)]
pub struct Row {
    pub correction: Correction,
    pub resident_name: String,
    pub canteen_name: String,
}

/// What the four-eyes rule reads of a meal: its subsidy and the day it was served.
#[derive(Debug, Clone)]
pub struct MealFacts {
    pub subsidy: Fen,
    pub local_date: String,
}

pub fn meal_facts(conn: &Conn<'_>, settlement: Uuid) -> Result<MealFacts> {
    conn.query_row(
        "SELECT subsidy, local_date FROM settlements WHERE id = ?1",
        [settlement.to_string()],
        |r| {
            Ok(MealFacts {
                subsidy: Fen(r.get(0)?),
                local_date: r.get(1)?,
            })
        },
    )
}

const COLS: &str = "p.id, p.settlement_id, p.kind, p.reason, p.requested_by, p.requested_at,
    p.state, p.decided_by, p.decided_at, p.decision_note, s.canteen_id, s.resident_id,
    s.local_date, s.price, s.subsidy, r.name, c.name";
const FROM: &str = "FROM pending_corrections p JOIN settlements s ON s.id = p.settlement_id
    JOIN residents r ON r.id = s.resident_id JOIN canteens c ON c.id = s.canteen_id";

fn row(r: &sql::Row<'_>) -> Result<Row> {
    let sid: String = r.get(1)?;
    Ok(Row {
        correction: Correction {
            id: r.get(0)?,
            settlement_id: sid
                .parse()
                .map_err(|e| Error::other(format!("column 1 (settlement_id): {e}")))?,
            kind: r.get(2)?,
            reason: r.get(3)?,
            requested_by: r.get(4)?,
            requested_at: r.get(5)?,
            state: r.get(6)?,
            decided_by: r.get(7)?,
            decided_at: r.get(8)?,
            decision_note: r.get(9)?,
            canteen_id: CanteenId(r.get(10)?),
            resident_id: ResidentId(r.get(11)?),
            local_date: r.get(12)?,
            price: Fen(r.get(13)?),
            subsidy: Fen(r.get(14)?),
        },
        resident_name: r.get(15)?,
        canteen_name: r.get(16)?,
    })
}

pub fn get(conn: &Conn<'_>, id: i64) -> Result<Row> {
    conn.query_row(&format!("SELECT {COLS} {FROM} WHERE p.id = ?1"), [id], row)
}

/// The corrections in `state` (all when `None`), oldest first, at most `limit`.
pub fn list(conn: &Conn<'_>, state: Option<&str>, limit: i64) -> Result<Vec<Row>> {
    conn.query_map(
        &format!(
            "SELECT {COLS} {FROM} WHERE CAST(?1 AS TEXT) IS NULL OR p.state = ?1
             ORDER BY p.id LIMIT ?2"
        ),
        params![state, limit],
        row,
    )
}

/// The pending request for a settlement, if any.
pub fn pending_for(conn: &Conn<'_>, settlement: Uuid) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM pending_corrections WHERE settlement_id = ?1 AND state = 'pending'",
        [settlement.to_string()],
        |r| r.get(0),
    )
    .optional()
}

/// The settlements of canteen `canteen` on `local_date` with a pending request.
pub fn pending_on_day(
    conn: &Conn<'_>,
    canteen: CanteenId,
    local_date: &str,
) -> Result<Vec<String>> {
    conn.query_map(
        "SELECT p.settlement_id FROM pending_corrections p JOIN settlements s ON s.id = p.settlement_id
         WHERE p.state = 'pending' AND s.canteen_id = ?1 AND s.local_date = ?2",
        params![canteen.0, local_date],
        |r| r.get(0),
    )
}

/// Records a pending request. A second pending request for the same settlement is a conflict.
pub fn insert(
    tx: &Tx<'_>,
    settlement: Uuid,
    kind: &str,
    reason: &str,
    requested_by: &str,
    at: &str,
) -> Result<i64> {
    tx.query_row(
        "INSERT INTO pending_corrections (settlement_id, kind, reason, requested_by, requested_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING id",
        params![settlement.to_string(), kind, reason, requested_by, at],
        |r| r.get(0),
    )
    .map_err(|e| match e {
        Error::Conflict(_) => {
            Error::Conflict("a correction of this meal is already awaiting approval".into())
        }
        other => other,
    })
}

/// Decides a pending request: `approved` or `rejected`. Returns false if it was not pending.
pub fn decide(
    tx: &Tx<'_>,
    id: i64,
    state: &str,
    by: &str,
    at: &str,
    note: Option<&str>,
) -> Result<bool> {
    let n = tx.execute(
        "UPDATE pending_corrections SET state = ?2, decided_by = ?3, decided_at = ?4,
            decision_note = ?5 WHERE id = ?1 AND state = 'pending'",
        params![id, state, by, at, note],
    )?;
    Ok(n == 1)
}
