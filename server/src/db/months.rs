//! Closed months: once finance closes a month, no settlement counted in it changes. Runs on
//! both databases (`db::sql`).

use std::collections::BTreeSet;

use super::sql::{Conn, OptionalExtension, params};
use super::{Error, Result, Tx};

pub fn closed(conn: &Conn<'_>) -> Result<BTreeSet<String>> {
    let months = conn.query_map("SELECT month FROM closed_months", (), |r| {
        r.get::<_, String>(0)
    })?;
    Ok(months.into_iter().collect())
}

pub fn is_closed(conn: &Conn<'_>, month: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM closed_months WHERE month = ?1",
            [month],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Closes `month`. Closing it twice is a conflict.
pub fn close(tx: &Tx<'_>, month: &str, at: &str, by: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO closed_months (month, closed_at, closed_by) VALUES (?1, ?2, ?3)",
        params![month, at, by],
    )
    .map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!("month {month} is already closed")),
        other => other,
    })?;
    Ok(())
}
