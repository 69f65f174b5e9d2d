//! Registered kiosks and their bearer-token hashes.

use rusqlite::{Connection, OptionalExtension, params};
use zhucan_domain::CanteenId;

use super::{Error, Result, Tx};

/// A kiosk as authenticated from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kiosk {
    pub id: i64,
    pub canteen_id: CanteenId,
}

pub fn insert(
    tx: &Tx<'_>,
    canteen: CanteenId,
    name: &str,
    token_hash: &str,
    now: &str,
) -> Result<i64> {
    let exists: i64 = tx
        .prepare_cached("SELECT count(*) FROM canteens WHERE id = ?1")?
        .query_row([canteen.0], |r| r.get(0))?;
    if exists == 0 {
        return Err(Error::invalid(
            "canteen_id",
            format!("no canteen {}", canteen.0),
        ));
    }
    tx.prepare_cached(
        "INSERT INTO kiosks (canteen_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![canteen.0, name, token_hash, now])?;
    Ok(tx.last_insert_rowid())
}

/// The live (not revoked) kiosk whose token hashes to `token_hash`.
pub fn by_token_hash(conn: &Connection, token_hash: &str) -> Result<Option<Kiosk>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, canteen_id FROM kiosks WHERE token_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([token_hash], |r| {
            Ok(Kiosk {
                id: r.get(0)?,
                canteen_id: CanteenId(r.get(1)?),
            })
        })
        .optional()?)
}
