//! The change log behind incremental kiosk sync. Every write that changes what a kiosk holds
//! (roster, templates, policy, canteen, this month's meals, voids) calls [`record`] inside its
//! own transaction, so a change and its log row commit or roll back together. `seq` is
//! `INTEGER PRIMARY KEY AUTOINCREMENT`: it only grows and is never reused, which makes it the
//! cursor a kiosk passes back as `since`.

use rusqlite::{Connection, params};

use super::{Result, Tx};

/// What changed. Stored as its `as_str` in `changes.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A resident's roster data (status, categories, consent flags, balance, face_enrolled).
    Resident,
    /// Which templates of a resident exist, or which kiosks may hold them (templates replaced or
    /// purged, consent or sharing changed, death).
    Templates,
    Policy,
    Canteen,
    /// An accepted meal was settled.
    Meal,
    /// A meal was voided (or taken back by an adjustment).
    Void,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Resident => "resident",
            Kind::Templates => "templates",
            Kind::Policy => "policy",
            Kind::Canteen => "canteen",
            Kind::Meal => "meal",
            Kind::Void => "void",
        }
    }
}

/// The subject of a change: a numeric id (resident, canteen) or a text key (settlement, policy).
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Id(i64),
    Key(&'a str),
}

/// Appends one change in the caller's transaction; returns its sequence number.
pub fn record(tx: &Tx<'_>, kind: Kind, subject: Subject<'_>, at: &str) -> Result<i64> {
    let (id, key) = match subject {
        Subject::Id(i) => (Some(i), None),
        Subject::Key(k) => (None, Some(k)),
    };
    tx.prepare_cached(
        "INSERT INTO changes (kind, subject_id, subject_key, at) VALUES (?1,?2,?3,?4)",
    )?
    .execute(params![kind.as_str(), id, key, at])?;
    Ok(tx.last_insert_rowid())
}

/// The newest sequence number (0 when nothing was ever recorded).
pub fn latest(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM changes")?
        .query_row([], |r| r.get(0))?)
}

/// The text keys of changes of `kind` after `since`, oldest first, without repeats.
pub fn keys_since(conn: &Connection, kind: Kind, since: i64) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT subject_key FROM changes WHERE kind = ?1 AND seq > ?2 AND subject_key IS NOT NULL
         GROUP BY subject_key ORDER BY MIN(seq)",
    )?;
    let rows = st.query_map(params![kind.as_str(), since], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
