//! The audit log: append-only (SQL triggers refuse UPDATE and DELETE) and hash-chained. Each
//! entry's `hash` is `sha256(prev_hash || canonical JSON of the entry)`, the first `prev_hash`
//! is 64 zeros, so changing, dropping or reordering any row shows in [`verify`] from that row on.
//!
//! [`append`] takes the caller's write transaction: the entry commits with the act it records,
//! or neither does.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::sql::{Conn, OptionalExtension, params};
use super::{Error, Result};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it: a dashboard user's name and role, `admin-token` (role `admin`), `kiosk:<id>`
/// (role `kiosk`), or the command line (`cli`, role `system`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

impl Actor {
    pub fn new(name: impl Into<String>, role: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            role: role.into(),
        }
    }

    /// The command line and other server-side jobs.
    pub fn system(name: &str) -> Actor {
        Actor::new(name, "system")
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    /// The JSON object as stored (hashed byte for byte).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical JSON of an entry's fields: fixed key order, no spaces, serde_json string
/// escaping. The detail is embedded as the JSON string of its stored text, so the hash covers
/// exactly the bytes in the database.
fn canonical(
    seq: i64,
    at: &str,
    actor: &str,
    role: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    let s = |v: &str| Value::String(v.to_owned()).to_string();
    format!(
        "{{\"seq\":{seq},\"at\":{},\"actor\":{},\"role\":{},\"action\":{},\"target\":{},\"detail\":{}}}",
        s(at),
        s(actor),
        s(role),
        s(action),
        s(target),
        s(detail)
    )
}

/// `sha256(prev_hash || canonical)`, hex.
pub fn entry_hash(prev_hash: &str, canonical_json: &str) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(prev_hash.as_bytes())
            .chain_update(canonical_json.as_bytes())
            .finalize(),
    )
}

fn row_hash(r: &Row) -> String {
    entry_hash(
        &r.prev_hash,
        &canonical(
            r.seq, &r.at, &r.actor, &r.role, &r.action, &r.target, &r.detail,
        ),
    )
}

/// Appends an entry in `tx`; returns its `seq`. `detail` should be a JSON object.
pub fn append(
    tx: &Conn<'_>,
    at: &str,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &Value,
) -> Result<i64> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_owned()),
    };
    let detail = serde_json::to_string(detail).map_err(Error::other)?;
    let hash = entry_hash(
        &prev,
        &canonical(seq, at, &actor.name, &actor.role, action, target, &detail),
    );
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, role, action, target, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            seq, at, actor.name, actor.role, action, target, detail, prev, hash
        ],
    )?;
    Ok(seq)
}

const COLS: &str = "seq, at, actor, role, action, target, detail, prev_hash, hash";

fn from_row(r: &super::sql::Row<'_>) -> Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        role: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        detail: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

/// Up to `limit` entries, newest first, with `seq < before` when given.
pub fn page(conn: &Conn<'_>, before: Option<i64>, limit: i64) -> Result<Vec<Row>> {
    conn.query_map(
        &format!(
            "SELECT {COLS} FROM audit_log WHERE (CAST(?1 AS BIGINT) IS NULL OR seq < ?1)
             ORDER BY seq DESC LIMIT ?2"
        ),
        params![before, limit],
        from_row,
    )
}

/// Entries of one action, oldest first.
pub fn of_action(conn: &Conn<'_>, action: &str) -> Result<Vec<Row>> {
    conn.query_map(
        &format!("SELECT {COLS} FROM audit_log WHERE action = ?1 ORDER BY seq"),
        [action],
        from_row,
    )
}

/// What [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Entries walked.
    pub entries: i64,
    /// The first `seq` at which the chain does not hold (a changed row, a row whose predecessor
    /// was dropped or changed, or a gap in `seq`); `None`: the whole chain verified.
    pub broken_at: Option<i64>,
}

impl Verdict {
    pub fn verified(&self) -> bool {
        self.broken_at.is_none()
    }
}

/// Walks the whole chain from the first entry and reports the first entry that breaks it.
pub fn verify(conn: &Conn<'_>) -> Result<Verdict> {
    let rows = conn.query_map(
        &format!("SELECT {COLS} FROM audit_log ORDER BY seq"),
        (),
        from_row,
    )?;
    let (mut prev, mut expect, mut entries) = (GENESIS.to_owned(), 1i64, 0i64);
    for row in rows {
        entries += 1;
        if row.seq != expect || row.prev_hash != prev || row_hash(&row) != row.hash {
            return Ok(Verdict {
                entries,
                broken_at: Some(row.seq),
            });
        }
        prev = row.hash;
        expect += 1;
    }
    Ok(Verdict {
        entries,
        broken_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_is_fixed_and_escaped() {
        let c = canonical(3, "t", "张三", "admin", "a.b", "x:\"1\"", "{\"k\":1}");
        assert_eq!(
            c,
            "{\"seq\":3,\"at\":\"t\",\"actor\":\"张三\",\"role\":\"admin\",\"action\":\"a.b\",\
             \"target\":\"x:\\\"1\\\"\",\"detail\":\"{\\\"k\\\":1}\"}"
        );
        assert_eq!(entry_hash(GENESIS, &c).len(), 64);
        assert_ne!(entry_hash(GENESIS, &c), entry_hash(&"1".repeat(64), &c));
    }
}
