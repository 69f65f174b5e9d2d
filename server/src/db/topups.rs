//! Prepaid top-ups: a ledger row and the balance change, always together in one transaction.
//! Runs on both databases (`db::sql`).

use zhucan_domain::{Fen, ResidentId};

use super::sql::{self, Conn, params};
use super::{Error, Result, Tx};

/// A top-up as the receipt shows it.
#[derive(Debug, Clone)]
pub struct Topup {
    pub id: i64,
    pub resident_id: ResidentId,
    pub resident_name: String,
    pub card_code: String,
    pub amount: Fen,
    pub balance_after: Fen,
    pub at: String,
    pub by: String,
}

/// Adds `amount` to the resident's prepaid balance (starting one at zero if they had none) and
/// records it; returns the ledger id.
pub fn add(tx: &Tx<'_>, resident: ResidentId, amount: Fen, at: &str, by: &str) -> Result<i64> {
    if amount.0 <= 0 {
        return Err(Error::invalid("amount", "must be more than zero"));
    }
    let n = tx.execute(
        "UPDATE residents SET prepaid_balance = coalesce(prepaid_balance, 0) + ?2 WHERE id = ?1",
        [resident.0, amount.0],
    )?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    let balance: i64 = tx.query_row(
        "SELECT prepaid_balance FROM residents WHERE id = ?1",
        [resident.0],
        |r| r.get(0),
    )?;
    tx.query_row(
        "INSERT INTO topups (resident_id, amount, balance_after, at, by) VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING id",
        params![resident.0, amount.0, balance, at, by],
        |r| r.get(0),
    )
}

const COLS: &str = "t.id, t.resident_id, r.name, r.card_code, t.amount, t.balance_after, t.at, t.by
    FROM topups t JOIN residents r ON r.id = t.resident_id";

fn from_row(r: &sql::Row<'_>) -> Result<Topup> {
    Ok(Topup {
        id: r.get(0)?,
        resident_id: ResidentId(r.get(1)?),
        resident_name: r.get(2)?,
        card_code: r.get(3)?,
        amount: Fen(r.get(4)?),
        balance_after: Fen(r.get(5)?),
        at: r.get(6)?,
        by: r.get(7)?,
    })
}

pub fn get(conn: &Conn<'_>, id: i64) -> Result<Topup> {
    conn.query_row(&format!("SELECT {COLS} WHERE t.id = ?1"), [id], from_row)
}

pub fn of_resident(conn: &Conn<'_>, resident: ResidentId) -> Result<Vec<Topup>> {
    conn.query_map(
        &format!("SELECT {COLS} WHERE t.resident_id = ?1 ORDER BY t.id DESC"),
        [resident.0],
        from_row,
    )
}
