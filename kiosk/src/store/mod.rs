//! The kiosk's local SQLite store (WAL): settings, the canteen, residents, policies, encrypted
//! face templates, the local meal history and the outbox.
//!
//! Invariant: a check-in is committed to the outbox together with its local meal in ONE
//! transaction ([`Store::commit_checkin`]) before anything is sent. The same transaction gives
//! the item its place in the kiosk's signed hash chain (`seq`, `prev_hash`, Ed25519 signature,
//! [`zhucan_domain::signing`]) and advances the chain head, so a crash can never leave a gap or
//! reuse a seq. The sync worker only reads the outbox (in seq order) and records the server's
//! answers. Templates and evidence photos are encrypted at rest ([`secret::TemplateKey`],
//! [`secret::EvidenceKey`]); the keys are never in the database. Deleted rows are overwritten
//! (`secure_delete`), so purged face data does not linger in free pages.

mod evidence;
pub mod lock;
mod outbox;
mod roster;
pub mod secret;
mod sync;
mod templates;
#[cfg(test)]
pub(crate) mod testing;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use zhucan_domain::api::SettlementItem;

use secret::{EvidenceKey, TemplateKey};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kiosk database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("kiosk database: stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("kiosk secret file: {0}")]
    Secret(String),
    #[error("a template could not be decrypted (wrong secret file or tampered row)")]
    Crypto,
    #[error("{0}")]
    Schema(String),
    /// A stored row that does not parse: an error, never skipped (a skipped meal would weaken
    /// the caps the decision counts).
    #[error("kiosk database: a row of {table} does not parse: {why}")]
    Corrupt { table: &'static str, why: String },
    /// The data folder is locked by another process ([`lock::DataLock`]).
    #[error("{0}")]
    Busy(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The "server cursor" of a template deletion the server refused (the templates were enrolled
/// at another canteen): no sync answer reaches it, so they stay deleted here for good.
pub const REFUSED: i64 = i64::MAX;

/// The migrations of `migrations/kiosk/`, in order; index `i` brings the schema to `i + 1`.
pub const MIGRATIONS: &[zhucan_platform::migrate::Migration] = &[
    (
        "0001_init",
        include_str!("../../../migrations/kiosk/0001_init.sql"),
    ),
    (
        "0002_signed_chain_and_evidence",
        include_str!("../../../migrations/kiosk/0002_signed_chain_and_evidence.sql"),
    ),
    (
        "0003_template_deletions",
        include_str!("../../../migrations/kiosk/0003_template_deletions.sql"),
    ),
    (
        "0004_slim_roster",
        include_str!("../../../migrations/kiosk/0004_slim_roster.sql"),
    ),
    (
        "0005_carers",
        include_str!("../../../migrations/kiosk/0005_carers.sql"),
    ),
];

/// Applies missing migrations (the one migrator the server uses too): in one transaction, a
/// schema newer than this code refused.
pub fn migrate(conn: &mut Connection) -> Result<(i64, i64)> {
    zhucan_platform::migrate::apply(conn, MIGRATIONS, "kiosk").map_err(|e| match e {
        zhucan_platform::migrate::Error::Sqlite(e) => Error::Sql(e),
        other => Error::Schema(other.to_string()),
    })
}

/// One outbox row to send.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: Uuid,
    pub item: SettlementItem,
    pub attempts: u32,
}

/// Counts of the outbox, for the screen and the heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub total: u32,
    /// Not acknowledged and not parked.
    pub backlog: u32,
    pub acked: u32,
    pub parked: u32,
    pub differs: u32,
}

/// What to do with an item the server answered `error` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time.
    At(DateTime<Utc>),
    /// Not retryable (malformed or refused for good): keep, count, never resend.
    Park,
}

/// The store: one connection behind a mutex (the kiosk is a single small process).
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    key: TemplateKey,
    evidence: EvidenceKey,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn ts(t: DateTime<Utc>) -> String {
    zhucan_platform::stamp(t)
}

impl Store {
    /// Opens (creating and migrating) the database.
    /// Opens (creating and migrating) the database.
    pub fn open(path: &Path, key: TemplateKey) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Schema(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            evidence: key.evidence_key(),
            key,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// The sync cursor (0 before the first sync).
    pub fn cursor(&self) -> Result<i64> {
        Ok(self
            .setting("sync_cursor")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Copies the write-ahead log into the database file and empties it (tests that read the
    /// raw file bytes; also harmless in production).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn read_head(conn: &Connection) -> Result<(u64, String)> {
    let (seq, hash): (i64, String) =
        conn.query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok((seq as u64, hash))
}

#[cfg(test)]
mod tests {
    use super::testing::{accepted, now, signer, sync};

    use rusqlite::{Connection, params};
    use uuid::Uuid;

    use secret::TemplateKey;

    use super::*;

    use zhucan_domain::signing::GENESIS;
    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.sqlite");
        let c = Connection::open(&p).expect("open");
        c.pragma_update(None, "user_version", 99).expect("pragma");
        drop(c);
        let e = Store::open(&p, TemplateKey::from_bytes([1; 32])).expect_err("refused");
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn a_store_from_before_the_chain_is_migrated_and_its_old_rows_go_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kiosk.sqlite");
        {
            let mut c = Connection::open(&p).expect("open");
            let tx = c.transaction().expect("tx");
            tx.execute_batch(MIGRATIONS[0].1).expect("0001");
            tx.pragma_update(None, "user_version", 1).expect("v1");
            tx.commit().expect("commit");
        }
        let s = Store::open(&p, TemplateKey::from_bytes([1; 32])).expect("migrate");
        assert_eq!(s.chain_head().expect("head"), (0, GENESIS.to_owned()));
        s.apply_sync(
            &sync(true, serde_json::json!([]), serde_json::json!([])),
            now(),
        )
        .expect("sync");
        let (old, a) = accepted(&s, now());
        s.conn()
            .execute(
                "INSERT INTO outbox (id, item, local_decision, created_at, next_attempt_at)
                 VALUES (?1, ?2, '{}', ?3, ?3)",
                params![
                    old.id.to_string(),
                    serde_json::to_string(&old).expect("json"),
                    ts(now())
                ],
            )
            .expect("an unsigned row from before");
        let mut it = old.clone();
        it.id = Uuid::now_v7();
        let signed = s
            .commit_checkin(&it, &a, &signer(), None, now())
            .expect("commit");
        assert_eq!(signed.signed.as_ref().map(|x| x.seq), Some(1));
        let due: Vec<Uuid> = s
            .due(now(), 10)
            .expect("due")
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(due, vec![old.id, signed.id]);
    }
}
