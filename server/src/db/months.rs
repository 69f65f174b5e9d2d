//! Closed months: once finance closes a month, no settlement counted in it changes.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Error, Result, Tx};

pub fn closed(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut st = conn.prepare_cached("SELECT month FROM closed_months")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn is_closed(conn: &Connection, month: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM closed_months WHERE month = ?1")?
        .query_row([month], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Closes `month`. Closing it twice is a conflict.
pub fn close(tx: &Tx<'_>, month: &str, at: &str, by: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO closed_months (month, closed_at, closed_by) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![month, at, by])
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(format!("month {month} is already closed")),
        other => other,
    })?;
    Ok(())
}
