//! The change log behind incremental kiosk sync. Every write that changes what a kiosk holds
//! (roster, templates, policy, canteen, this month's meals, voids) calls [`record`] inside its
//! own transaction, so a change and its log row commit or roll back together. `seq` is
//! `INTEGER PRIMARY KEY AUTOINCREMENT` (an identity column on PostgreSQL, where the one write lock
//! makes seq order commit order): it only grows and is never reused, which makes it the cursor a
//! kiosk passes back as `since`. Runs on both databases (`db::sql`).

use super::Result;
use super::sql::{Conn, params};

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
pub fn record(tx: &Conn<'_>, kind: Kind, subject: Subject<'_>, at: &str) -> Result<i64> {
    let (id, key) = match subject {
        Subject::Id(i) => (Some(i), None),
        Subject::Key(k) => (None, Some(k)),
    };
    tx.query_row(
        "INSERT INTO changes (kind, subject_id, subject_key, at) VALUES (?1,?2,?3,?4)
         RETURNING seq",
        params![kind.as_str(), id, key, at],
        |r| r.get(0),
    )
}

/// The newest sequence number (0 when nothing was ever recorded).
pub fn latest(conn: &Conn<'_>) -> Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", (), |r| {
        r.get(0)
    })
}

/// The text keys of changes of `kind` after `since`, oldest first, without repeats.
pub fn keys_since(conn: &Conn<'_>, kind: Kind, since: i64) -> Result<Vec<String>> {
    conn.query_map(
        "SELECT subject_key FROM changes WHERE kind = ?1 AND seq > ?2 AND subject_key IS NOT NULL
         GROUP BY subject_key ORDER BY MIN(seq)",
        params![kind.as_str(), since],
        |r| r.get(0),
    )
}
