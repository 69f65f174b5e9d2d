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

pub mod lock;
pub mod secret;
#[cfg(test)]
pub(crate) mod testing;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;
use zhucan_domain::api::{
    self, ItemResult, ItemStatus, KioskResident, SettlementItem, SyncResponse,
};
use zhucan_domain::settle::{Accepted, Decision};
use zhucan_domain::signing::{self, SigningKey};
use zhucan_domain::{Canteen, Fen, Policy, PriorMeal, ResidentId, Slot};

use crate::face::matcher::Gallery;
use crate::screen::ResidentHit;
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
    /// The data folder is locked by another process ([`lock::DataLock`]).
    #[error("{0}")]
    Busy(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The "server cursor" of a template deletion the server refused (the templates were enrolled
/// at another canteen): no sync answer reaches it, so they stay deleted here for good.
pub const REFUSED: i64 = i64::MAX;

/// The migrations of `migrations/kiosk/`, in order; index `i` brings the schema to `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
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

/// Applies missing migrations in one transaction; refuses a schema newer than this code.
pub fn migrate(conn: &mut Connection) -> Result<(i64, i64)> {
    let latest = MIGRATIONS.len() as i64;
    let before: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if before > latest {
        return Err(Error::Schema(format!(
            "the kiosk database schema is version {before}, newer than this code's {latest}; \
             run a newer zhucan-kiosk"
        )));
    }
    if before == latest {
        return Ok((before, before));
    }
    let tx = conn.transaction()?;
    for (name, sql) in &MIGRATIONS[before as usize..] {
        tx.execute_batch(sql)
            .map_err(|e| Error::Schema(format!("migration {name}: {e}")))?;
    }
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    Ok((before, latest))
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
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
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

    /// Applies one sync answer in one transaction and moves the cursor.
    pub fn apply_sync(&self, s: &SyncResponse, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if s.full {
            tx.execute("DELETE FROM residents", [])?;
            tx.execute("DELETE FROM templates", [])?;
            tx.execute("DELETE FROM policies", [])?;
            // keep the meals of settlements the server has not acknowledged yet
            tx.execute(
                "DELETE FROM meals WHERE id NOT IN
                   (SELECT id FROM outbox WHERE acked_at IS NULL AND parked_at IS NULL)",
                [],
            )?;
        }
        tx.execute(
            "INSERT INTO canteen (id, json) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET json = excluded.json",
            [serde_json::to_string(&s.canteen)?],
        )?;
        for p in &s.policies {
            tx.execute(
                "INSERT INTO policies (id, version, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id, version) DO UPDATE SET json = excluded.json",
                params![p.id, p.version, serde_json::to_string(p)?],
            )?;
        }
        if api::decode_key(&s.card_key).is_none() {
            return Err(Error::Schema("sync answer: card_key is not base64".into()));
        }
        for r in &s.residents {
            tx.execute(
                "INSERT INTO residents (id, name, card_index, json) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                   card_index = excluded.card_index, json = excluded.json",
                params![r.id().0, r.name, r.card, serde_json::to_string(r)?],
            )?;
        }
        // templates deleted here that this answer may predate (see migration 0003)
        let deleted_here: std::collections::HashSet<i64> = {
            let mut st = tx.prepare(
                "SELECT resident_id FROM template_deletions
                 WHERE server_cursor IS NULL OR server_cursor > ?1",
            )?;
            st.query_map([s.cursor], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        for t in &s.templates {
            let rid = t.resident_id.0;
            if deleted_here.contains(&rid) {
                tracing::info!(
                    resident = rid,
                    cursor = s.cursor,
                    "sync: ignored templates deleted here after the answer was built"
                );
                continue;
            }
            tx.execute("DELETE FROM templates WHERE resident_id = ?1", [rid])?;
            for e in &t.embeddings {
                let Some(v) = zhucan_domain::api::decode_embedding(e) else {
                    tracing::warn!(resident = rid, "sync: skipped a malformed template");
                    continue;
                };
                let (nonce, ct) = self.key.seal(rid, &v)?;
                tx.execute(
                    "INSERT INTO templates (resident_id, model, nonce, ciphertext)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![rid, t.model, nonce, ct],
                )?;
            }
        }
        for r in &s.purged {
            tx.execute("DELETE FROM templates WHERE resident_id = ?1", [r.0])?;
            tx.execute("DELETE FROM evidence WHERE resident_id = ?1", [r.0])?;
        }
        // face data of a resident who withdrew consent or died goes too, even when a full
        // snapshot (which lists no `purged`) is how the kiosk hears of it
        for r in &s.residents {
            let deceased = matches!(
                r.diner.status,
                zhucan_domain::ResidentStatus::Deceased { .. }
            );
            if deceased || !r.diner.face_ready {
                tx.execute("DELETE FROM evidence WHERE resident_id = ?1", [r.id().0])?;
            }
        }
        for m in &s.meals {
            tx.execute(
                "INSERT INTO meals (id, resident_id, date, slot, subsidy) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET resident_id = excluded.resident_id,
                   date = excluded.date, slot = excluded.slot, subsidy = excluded.subsidy",
                params![
                    m.id.to_string(),
                    m.resident_id.0,
                    m.date.to_string(),
                    m.slot.as_str(),
                    m.subsidy.0
                ],
            )?;
        }
        for v in &s.voided {
            tx.execute("DELETE FROM meals WHERE id = ?1", [v.to_string()])?;
        }
        // every answer lists every carer: what it does not list is gone (a link removed)
        tx.execute("DELETE FROM carers", [])?;
        for c in &s.carers {
            tx.execute(
                "INSERT INTO carers (id, name, card_index, json) VALUES (?1, ?2, ?3, ?4)",
                params![c.id, c.name, c.card, serde_json::to_string(c)?],
            )?;
        }
        // an answer at or past the server's deletion reflects it: nothing left to guard against
        tx.execute(
            "DELETE FROM template_deletions WHERE server_cursor <= ?1",
            [s.cursor],
        )?;
        for (k, v) in [
            ("sync_cursor", s.cursor.to_string()),
            ("card_key", s.card_key.clone()),
            ("kiosk_id", s.kiosk_id.to_string()),
            ("canteen_id", s.canteen.id.0.to_string()),
            ("last_sync_at", ts(now)),
        ] {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn canteen(&self) -> Result<Option<Canteen>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT json FROM canteen WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    pub fn policies(&self) -> Result<Vec<Policy>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT json FROM policies ORDER BY id, version")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for j in rows {
            out.push(serde_json::from_str(&j?)?);
        }
        Ok(out)
    }

    pub fn resident(&self, id: ResidentId) -> Result<Option<KioskResident>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT json FROM residents WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The resident whose card code is `code`, found by its keyed hash (the clear code is not
    /// stored here: [`api::card_index`]).
    pub fn resident_by_card(&self, code: &str) -> Result<Option<KioskResident>> {
        let Some(index) = self.card_index(code)? else {
            return Ok(None);
        };
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT json FROM residents WHERE card_index = ?1",
                [index],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The carer (代取人) whose card code is `code`, found by its keyed hash.
    pub fn carer_by_card(&self, code: &str) -> Result<Option<api::KioskCarer>> {
        let Some(index) = self.card_index(code)? else {
            return Ok(None);
        };
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT json FROM carers WHERE card_index = ?1",
                [index],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The keyed hash of a card code under the card key of the last sync (`None` before one).
    fn card_index(&self, code: &str) -> Result<Option<String>> {
        let key = self.setting("card_key")?;
        Ok(key
            .and_then(|k| api::decode_key(&k))
            .map(|k| api::card_index(&k, code)))
    }

    /// Operator search by (part of) the name, or by the exact card code, at most 20 hits.
    pub fn search(&self, query: &str, today: NaiveDate) -> Result<Vec<ResidentHit>> {
        let q = query.trim();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let like = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let index = self.card_index(q)?;
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT json, (SELECT COUNT(*) FROM templates t WHERE t.resident_id = r.id)
             FROM residents r
             WHERE card_index = ?1 OR name LIKE ?2 ESCAPE '\\'
             ORDER BY name, id LIMIT 20",
        )?;
        let rows = st.query_map(params![index, like], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (j, templates) = row?;
            let r: KioskResident = serde_json::from_str(&j)?;
            out.push(ResidentHit {
                id: r.id(),
                age: r.diner.age_on(today),
                has_card: r.card.is_some(),
                name: r.name,
                face_enrolled: templates > 0,
            });
        }
        Ok(out)
    }

    /// The resident's accepted, not voided meals known here (server history + own decisions).
    pub fn history(&self, id: ResidentId) -> Result<Vec<PriorMeal>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT date, slot, subsidy FROM meals WHERE resident_id = ?1")?;
        let rows = st.query_map([id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (d, s, fen) = row?;
            let (Ok(date), Some(slot)) = (d.parse::<NaiveDate>(), Slot::parse(&s)) else {
                continue;
            };
            out.push(PriorMeal {
                date,
                slot,
                subsidy: Fen(fen),
            });
        }
        Ok(out)
    }

    /// THE outbox invariant: the settlement item, the local decision and the local meal (and the
    /// prepaid balance after it) are committed together, before any send. In the same (immediate)
    /// transaction the item becomes the next record of this kiosk's chain: it is signed with `key`
    /// as `seq = head + 1` after the head's hash, stored signed, and the head advances to it. An
    /// evidence photo (JPEG, only when the option is on) is sealed into the same transaction.
    /// Returns the signed item as it will be sent.
    pub fn commit_checkin(
        &self,
        item: &SettlementItem,
        accepted: &Accepted,
        key: &SigningKey,
        evidence: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<SettlementItem> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = item.id.to_string();
        let (head_seq, head_hash) = read_head(&tx)?;
        let seq = head_seq + 1;
        let mut signed = item.clone();
        signing::sign(&mut signed, seq, &head_hash, key);
        tx.execute(
            "INSERT INTO outbox (id, item, local_decision, created_at, next_attempt_at, seq)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![
                id,
                serde_json::to_string(&signed)?,
                serde_json::to_string(&Decision::Accepted(accepted.clone()))?,
                ts(now),
                seq as i64
            ],
        )?;
        let moved = tx.execute(
            "UPDATE chain_head SET seq = ?1, hash = ?2 WHERE id = 1 AND seq = ?3",
            params![seq as i64, signing::record_hash(&signed), head_seq as i64],
        )?;
        if moved != 1 {
            return Err(Error::Schema(
                "the chain head moved during a check-in".into(),
            ));
        }
        tx.execute(
            "INSERT INTO meals (id, resident_id, date, slot, subsidy) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                item.resident_id.0,
                accepted.date.to_string(),
                accepted.slot.as_str(),
                accepted.tier_subsidy().0
            ],
        )?;
        if accepted.payment == zhucan_domain::Payment::Prepaid {
            let json: Option<String> = tx
                .query_row(
                    "SELECT json FROM residents WHERE id = ?1",
                    [item.resident_id.0],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(j) = json {
                let mut r: KioskResident = serde_json::from_str(&j)?;
                r.diner.prepaid_balance = r.diner.prepaid_balance.map(|b| b - accepted.self_pay);
                tx.execute(
                    "UPDATE residents SET json = ?2 WHERE id = ?1",
                    params![r.id().0, serde_json::to_string(&r)?],
                )?;
            }
        }
        if let Some(photo) = evidence {
            let (nonce, ct) = self.evidence.seal(item.resident_id.0, &id, photo)?;
            tx.execute(
                "INSERT INTO evidence (settlement_id, resident_id, created_at, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, item.resident_id.0, ts(now), nonce, ct],
            )?;
        }
        tx.commit()?;
        Ok(signed)
    }

    /// The chain head: the last assigned seq (0 before the first check-in) and its record hash
    /// ([`signing::GENESIS`] before the first).
    pub fn chain_head(&self) -> Result<(u64, String)> {
        read_head(&self.conn())
    }

    /// Up to `limit` unacknowledged, unparked items due at `now`, in chain order (seq).
    pub fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, item, attempts FROM outbox
             WHERE acked_at IS NULL AND parked_at IS NULL AND next_attempt_at <= ?1
             ORDER BY seq, id LIMIT ?2",
        )?;
        let rows = st.query_map(params![ts(now), limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, item, attempts) = row?;
            let Ok(id) = id.parse::<Uuid>() else { continue };
            out.push(Pending {
                id,
                item: serde_json::from_str(&item)?,
                attempts: attempts as u32,
            });
        }
        Ok(out)
    }

    /// Records the server's answer to one item. `accepted`/`rejected` acknowledge it (a differing
    /// decision is flagged and kept beside the local one; a refused meal leaves the local history);
    /// `error` is retried or parked per `retry`.
    pub fn record_answer(
        &self,
        answer: &ItemResult,
        now: DateTime<Utc>,
        retry: Retry,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = answer.id.to_string();
        let local: Option<String> = tx
            .query_row(
                "SELECT local_decision FROM outbox WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(local) = local else {
            return Ok(());
        };
        let local: Decision = serde_json::from_str(&local)?;
        let answer_json = serde_json::to_string(answer)?;
        match answer.status {
            ItemStatus::Accepted | ItemStatus::Rejected => {
                let differs = match (&local, answer.status, &answer.meal) {
                    (Decision::Accepted(a), ItemStatus::Accepted, Some(m)) => {
                        a.price != m.price
                            || a.subsidy != m.subsidy
                            || a.self_pay != m.self_pay
                            || a.slot != m.slot
                            || a.date != m.date
                            || a.payment != m.payment
                    }
                    (Decision::Accepted(_), ItemStatus::Accepted, None) => false,
                    _ => true,
                };
                tx.execute(
                    "UPDATE outbox SET acked_at = ?2, server_answer = ?3, differs = ?4,
                       attempts = attempts + 1, last_error = NULL
                     WHERE id = ?1",
                    params![id, ts(now), answer_json, differs],
                )?;
                if answer.status == ItemStatus::Rejected {
                    tx.execute("DELETE FROM meals WHERE id = ?1", [&id])?;
                } else if let Some(m) = &answer.meal {
                    tx.execute(
                        "UPDATE meals SET subsidy = ?2, slot = ?3, date = ?4 WHERE id = ?1",
                        params![id, m.subsidy.0, m.slot.as_str(), m.date.to_string()],
                    )?;
                }
                if differs {
                    tracing::warn!(settlement = %id, "server decision differs from the local one");
                }
            }
            ItemStatus::Error => {
                let code = answer
                    .error
                    .as_ref()
                    .map_or("error", |e| e.code.as_str())
                    .to_owned();
                match retry {
                    Retry::At(at) => tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                           last_error = ?3, server_answer = ?4 WHERE id = ?1",
                        params![id, ts(at), code, answer_json],
                    )?,
                    Retry::Park => {
                        tx.execute("DELETE FROM meals WHERE id = ?1", [&id])?;
                        tx.execute(
                            "UPDATE outbox SET attempts = attempts + 1, parked_at = ?2,
                               last_error = ?3, server_answer = ?4 WHERE id = ?1",
                            params![id, ts(now), code, answer_json],
                        )?
                    }
                };
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A whole batch failed to reach the server: try its items again at `at`.
    pub fn postpone(&self, ids: &[Uuid], at: DateTime<Utc>, error: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id.to_string(), ts(at), error],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*),
               COALESCE(SUM(acked_at IS NULL AND parked_at IS NULL), 0),
               COALESCE(SUM(acked_at IS NOT NULL), 0),
               COALESCE(SUM(parked_at IS NOT NULL), 0),
               COALESCE(SUM(differs), 0)
             FROM outbox",
            [],
            |r| {
                Ok(OutboxCounts {
                    total: r.get(0)?,
                    backlog: r.get(1)?,
                    acked: r.get(2)?,
                    parked: r.get(3)?,
                    differs: r.get(4)?,
                })
            },
        )?)
    }

    /// Replaces a resident's templates (enrolment here) and marks them enrolled with the consent
    /// given, so offline face decisions accept them.
    pub fn replace_templates(
        &self,
        resident: ResidentId,
        model: &str,
        embeddings: &[Vec<f32>],
        consent: zhucan_domain::resident::Consent,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM templates WHERE resident_id = ?1", [resident.0])?;
        // enrolled again here: the upload replaces the server's templates, nothing to delete
        tx.execute(
            "DELETE FROM template_deletions WHERE resident_id = ?1",
            [resident.0],
        )?;
        for e in embeddings {
            let (nonce, ct) = self.key.seal(resident.0, e)?;
            tx.execute(
                "INSERT INTO templates (resident_id, model, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                params![resident.0, model, nonce, ct],
            )?;
        }
        let json: Option<String> = tx
            .query_row(
                "SELECT json FROM residents WHERE id = ?1",
                [resident.0],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(j) = json {
            let mut r: KioskResident = serde_json::from_str(&j)?;
            r.diner.face_ready = consent.face_enrolment;
            tx.execute(
                "UPDATE residents SET json = ?2 WHERE id = ?1",
                params![r.id().0, serde_json::to_string(&r)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a resident's templates and evidence photos here (unenrol), and records the
    /// deletion in the same transaction, so that no sync answer built before the server deleted
    /// them too can bring them back ([`Store::apply_sync`]). The deletion stays pending until
    /// [`Store::confirm_template_deletion`].
    pub fn delete_templates(&self, resident: ResidentId, now: DateTime<Utc>) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM templates WHERE resident_id = ?1", [resident.0])?;
        tx.execute("DELETE FROM evidence WHERE resident_id = ?1", [resident.0])?;
        tx.execute(
            "INSERT INTO template_deletions (resident_id, deleted_at, server_cursor)
             VALUES (?1, ?2, NULL)
             ON CONFLICT (resident_id) DO UPDATE SET deleted_at = excluded.deleted_at,
               server_cursor = NULL",
            params![resident.0, ts(now)],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// The server deleted the resident's templates too, recorded at its sync cursor `cursor`
    /// ([`REFUSED`]: the server refused, so the deletion here stands for good).
    pub fn confirm_template_deletion(&self, resident: ResidentId, cursor: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE template_deletions SET server_cursor = ?2 WHERE resident_id = ?1",
            params![resident.0, cursor],
        )?;
        Ok(())
    }

    /// Residents whose templates were deleted here and not yet on the server, oldest first.
    pub fn pending_template_deletions(&self) -> Result<Vec<ResidentId>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT resident_id FROM template_deletions WHERE server_cursor IS NULL
             ORDER BY deleted_at, resident_id",
        )?;
        let rows = st.query_map([], |r| Ok(ResidentId(r.get(0)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of templates stored for a resident.
    pub fn template_count(&self, resident: ResidentId) -> Result<u32> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM templates WHERE resident_id = ?1",
            [resident.0],
            |r| r.get(0),
        )?)
    }

    /// Decrypts the templates of `model` into a gallery keyed by resident id.
    pub fn gallery(&self, model: &str, dim: usize) -> Result<Gallery> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT resident_id, nonce, ciphertext FROM templates WHERE model = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([model], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut g = Gallery::new(dim);
        for row in rows {
            let (rid, nonce, ct) = row?;
            let v = self.key.open(rid, &nonce, &ct)?;
            if let Err(e) = g.add(&rid.to_string(), &v) {
                tracing::warn!(resident = rid, error = %e, "skipped a template");
            }
        }
        Ok(g)
    }

    /// The decrypted evidence photo of a settlement, if one is kept (incident review).
    pub fn evidence_photo(&self, settlement: Uuid) -> Result<Option<Vec<u8>>> {
        let id = settlement.to_string();
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = self
            .conn()
            .query_row(
                "SELECT resident_id, nonce, ciphertext FROM evidence WHERE settlement_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(rid, nonce, ct)| self.evidence.open(rid, &id, &nonce, &ct))
            .transpose()
    }

    /// Number of evidence photos kept.
    pub fn evidence_count(&self) -> Result<u32> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM evidence", [], |r| r.get(0))?)
    }

    /// Deletes evidence photos taken more than `retention` before `now`; returns how many.
    pub fn sweep_evidence(&self, now: DateTime<Utc>, retention: chrono::Duration) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM evidence WHERE created_at < ?1",
            [ts(now - retention)],
        )?)
    }

    /// Copies the write-ahead log into the database file and empties it (tests that read the
    /// raw file bytes; also harmless in production).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Raw outbox rows (id, differs, acked) for tests and incident review.
    pub fn outbox_ids(&self) -> Result<Vec<(Uuid, bool, bool)>> {
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT id, differs, acked_at IS NOT NULL FROM outbox ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, d, a) = row?;
            if let Ok(id) = id.parse() {
                out.push((id, d, a));
            }
        }
        Ok(out)
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
    use super::testing::{
        accepted, contains, now, open, raw_bytes, signer, sync, sync_with, synced,
    };
    use super::*;
    use zhucan_domain::api::MealDecision;
    use zhucan_domain::signing::{GENESIS, record_hash, verify};

    #[test]
    fn sync_applies_templates_encrypted_and_purges_them() {
        let (_d, s) = open();
        let e = zhucan_domain::api::encode_embedding(&[0.6, 0.8]);
        let t = serde_json::json!([{"resident_id": 7, "enrolled_canteen": 1, "model": "m.onnx",
            "embeddings": [e]}]);
        s.apply_sync(&sync(true, t, serde_json::json!([])), now())
            .expect("apply");
        assert_eq!(s.cursor().expect("cursor"), 7);
        assert_eq!(s.gallery("m.onnx", 2).expect("gallery").len(), 1);
        assert_eq!(s.gallery("other.onnx", 2).expect("gallery").len(), 0);
        let raw: Vec<u8> = s
            .conn()
            .query_row("SELECT ciphertext FROM templates", [], |r| r.get(0))
            .expect("row");
        assert!(
            !raw.windows(4).any(|w| w == 0.6f32.to_le_bytes()),
            "encrypted at rest"
        );
        s.apply_sync(
            &sync(false, serde_json::json!([]), serde_json::json!([7])),
            now(),
        )
        .expect("purge");
        assert_eq!(s.template_count(ResidentId(7)).expect("count"), 0);
    }

    /// The race behind a flaky e2e run: a sync answer built before the server deleted a
    /// resident's templates is applied after the kiosk deleted them here. It must not bring the
    /// face data back, neither while the server has not confirmed the deletion nor after, until
    /// an answer built after the deletion arrives; a later enrolment then syncs as usual.
    #[test]
    fn a_sync_answer_older_than_an_unenrol_never_brings_the_templates_back() {
        let (_d, s) = open();
        let e = zhucan_domain::api::encode_embedding(&[0.6, 0.8]);
        let t = serde_json::json!([{"resident_id": 7, "enrolled_canteen": 1, "model": "m.onnx",
            "embeddings": [e, e]}]);
        let answer = |full: bool, cursor: i64, templates: &serde_json::Value, purged| {
            let mut a = sync(full, templates.clone(), purged);
            a.cursor = cursor;
            a
        };
        s.apply_sync(&answer(true, 7, &t, serde_json::json!([])), now())
            .expect("apply");
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 2);
        // the worker's pull was answered (cursor 8, templates still on the server) ...
        let stale = answer(false, 8, &t, serde_json::json!([]));
        // ... then the operator unenrols here, before that answer is applied
        assert_eq!(
            s.delete_templates(ResidentId(7), now()).expect("unenrol"),
            2
        );
        assert_eq!(
            s.pending_template_deletions().expect("p"),
            vec![ResidentId(7)]
        );
        s.apply_sync(&stale, now()).expect("apply stale");
        assert_eq!(
            s.template_count(ResidentId(7)).expect("n"),
            0,
            "a stale sync answer restored deleted templates (server not told yet)"
        );
        assert_eq!(s.gallery("m.onnx", 2).expect("gallery").len(), 0);
        // a full snapshot built before the deletion is just as stale
        s.apply_sync(&answer(true, 8, &t, serde_json::json!([])), now())
            .expect("apply stale snapshot");
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 0);
        // the server deletes them, recorded at its cursor 10; an answer of cursor 9 is still old
        s.confirm_template_deletion(ResidentId(7), 10)
            .expect("confirm");
        assert!(s.pending_template_deletions().expect("p").is_empty());
        s.apply_sync(&answer(false, 9, &t, serde_json::json!([])), now())
            .expect("apply stale");
        assert_eq!(
            s.template_count(ResidentId(7)).expect("n"),
            0,
            "a stale sync answer restored deleted templates (server confirmed)"
        );
        // the answer that reflects the deletion ends the guard ...
        s.apply_sync(
            &answer(false, 10, &serde_json::json!([]), serde_json::json!([7])),
            now(),
        )
        .expect("apply purge");
        let left: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM template_deletions", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 0);
        // ... and an enrolment after it (elsewhere, shared) syncs in as usual
        s.apply_sync(&answer(false, 12, &t, serde_json::json!([])), now())
            .expect("apply new enrolment");
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 2);
    }

    #[test]
    fn a_deletion_the_server_refused_stands_here_for_good() {
        let (_d, s) = open();
        let e = zhucan_domain::api::encode_embedding(&[0.6, 0.8]);
        let t = serde_json::json!([{"resident_id": 7, "enrolled_canteen": 2, "model": "m.onnx",
            "embeddings": [e]}]);
        s.apply_sync(&sync(true, t.clone(), serde_json::json!([])), now())
            .expect("apply");
        s.delete_templates(ResidentId(7), now()).expect("unenrol");
        s.confirm_template_deletion(ResidentId(7), REFUSED)
            .expect("refused");
        assert!(
            s.pending_template_deletions().expect("p").is_empty(),
            "not asked again"
        );
        let mut later = sync(false, t, serde_json::json!([]));
        later.cursor = 1_000_000;
        s.apply_sync(&later, now()).expect("apply");
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 0);
    }

    #[test]
    fn enrolling_again_here_ends_a_pending_deletion() {
        let (_d, s) = synced();
        s.delete_templates(ResidentId(7), now()).expect("unenrol");
        let consent = zhucan_domain::resident::Consent {
            face_enrolment: true,
            template_sharing: false,
        };
        s.replace_templates(ResidentId(7), "m.onnx", &[vec![0.6, 0.8]], consent)
            .expect("enrol");
        assert!(s.pending_template_deletions().expect("p").is_empty());
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 1);
    }

    #[test]
    fn checkin_commits_outbox_and_meal_together_and_answers_are_recorded() {
        let (_d, s) = synced();
        let (item, a) = accepted(&s, now());
        let a = &a;
        s.commit_checkin(&item, a, &signer(), None, now())
            .expect("commit");
        assert_eq!(s.history(ResidentId(7)).expect("h").len(), 1);
        assert_eq!(s.outbox_counts().expect("c").backlog, 1);
        let bal = s
            .resident(ResidentId(7))
            .expect("r")
            .expect("r")
            .diner
            .prepaid_balance;
        assert_eq!(bal, Some(Fen(10_000) - a.self_pay));
        // the same id twice is refused by the primary key: never two outbox rows for one meal
        assert!(s.commit_checkin(&item, a, &signer(), None, now()).is_err());
        assert_eq!(s.due(now(), 100).expect("due").len(), 1);
        // a transient error is postponed
        let err = ItemResult::error(item.id, "served_in_future", None, "later");
        let later = now() + chrono::Duration::seconds(5);
        s.record_answer(&err, now(), Retry::At(later))
            .expect("retry");
        assert!(s.due(now(), 100).expect("due").is_empty());
        assert_eq!(s.due(later, 100).expect("due").len(), 1);
        // the server accepts with a different subsidy: acked, flagged, history follows the server
        let mut meal = MealDecision::from(a);
        meal.subsidy = Fen(0);
        meal.self_pay = meal.price;
        let ok = ItemResult {
            id: item.id,
            status: ItemStatus::Accepted,
            meal: Some(meal),
            rejection: None,
            error: None,
        };
        s.record_answer(&ok, later, Retry::Park).expect("ack");
        let c = s.outbox_counts().expect("counts");
        assert_eq!((c.backlog, c.acked, c.differs), (0, 1, 1));
        assert_eq!(s.history(ResidentId(7)).expect("h")[0].subsidy, Fen(0));
    }

    /// Commits `n` more records of one chain (clones of one accepted meal with fresh ids).
    fn commit_n(s: &Store, n: usize) -> Vec<SettlementItem> {
        let (item, a) = accepted(s, now());
        (0..n)
            .map(|_| {
                let mut it = item.clone();
                it.id = Uuid::now_v7();
                s.commit_checkin(&it, &a, &signer(), None, now())
                    .expect("commit")
            })
            .collect()
    }

    /// Checks a whole chain as the server will: seq 1.., links by record_hash, signatures.
    fn assert_chain(items: &[SettlementItem], key: &SigningKey) {
        let mut prev = GENESIS.to_owned();
        for (i, it) in items.iter().enumerate() {
            let sg = it.signed.as_ref().expect("signed");
            assert_eq!(sg.seq, i as u64 + 1, "seq without gaps");
            assert_eq!(
                sg.prev_hash, prev,
                "record {} links to its predecessor",
                sg.seq
            );
            assert_eq!(verify(it, &key.verifying_key()), Ok(()));
            prev = record_hash(it);
        }
    }

    #[test]
    fn checkins_form_a_signed_hash_chain_and_are_sent_in_seq_order() {
        let (_d, s) = synced();
        assert_eq!(s.chain_head().expect("head"), (0, GENESIS.to_owned()));
        let items = commit_n(&s, 5);
        assert_chain(&items, &signer());
        assert_eq!(
            s.chain_head().expect("head"),
            (5, record_hash(&items[4])),
            "the head is the last record"
        );
        // what is stored and sent is exactly the signed item, in seq order
        let due = s.due(now(), 100).expect("due");
        let sent: Vec<SettlementItem> = due.into_iter().map(|p| p.item).collect();
        assert_eq!(sent, items);
        // a changed record no longer verifies (the server refuses it)
        let mut forged = items[2].clone();
        forged.resident_id = ResidentId(8);
        assert!(verify(&forged, &signer().verifying_key()).is_err());
    }

    #[test]
    fn a_failed_checkin_does_not_advance_the_head_or_burn_a_seq() {
        let (_d, s) = synced();
        let first = commit_n(&s, 1);
        let head = s.chain_head().expect("head");
        // the same settlement id again: the insert fails, the whole transaction rolls back
        let (_, a) = accepted(&s, now());
        let e = s.commit_checkin(&first[0], &a, &signer(), None, now());
        assert!(e.is_err());
        assert_eq!(s.chain_head().expect("head"), head);
        // a failure AFTER the outbox insert and the head update (here the meal's primary key)
        // rolls back all of it, the evidence photo included
        let mut clash = first[0].clone();
        clash.id = Uuid::now_v7();
        s.conn()
            .execute(
                "INSERT INTO meals (id, resident_id, date, slot, subsidy)
                 VALUES (?1, 7, '2026-03-15', 'lunch', 0)",
                [clash.id.to_string()],
            )
            .expect("plant a clashing meal");
        assert!(
            s.commit_checkin(&clash, &a, &signer(), Some(b"jpeg"), now())
                .is_err()
        );
        assert_eq!(s.chain_head().expect("head"), head);
        assert_eq!(s.outbox_counts().expect("c").total, 1);
        assert_eq!(s.evidence_count().expect("e"), 0);
        // the next good check-in takes seq 2 and links to seq 1
        let next = commit_n(&s, 1);
        assert_chain(&[first[0].clone(), next[0].clone()], &signer());
    }

    #[test]
    fn a_reopened_store_continues_the_chain() {
        let (d, s) = synced();
        let mut items = commit_n(&s, 3);
        drop(s);
        let s = Store::open(
            &d.path().join("kiosk.sqlite"),
            TemplateKey::from_bytes([1; 32]),
        )
        .expect("reopen");
        items.extend(commit_n(&s, 2));
        assert_chain(&items, &signer());
        assert_eq!(s.chain_head().expect("head").0, 5);
    }

    #[test]
    fn concurrent_checkins_from_two_connections_never_share_a_seq() {
        let (d, s) = synced();
        let (item, a) = accepted(&s, now());
        let path = d.path().join("kiosk.sqlite");
        // two threads, each with its OWN connection: only the transaction serialises them
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (item, a, path) = (item.clone(), a.clone(), path.clone());
                std::thread::spawn(move || {
                    let s = Store::open(&path, TemplateKey::from_bytes([1; 32])).expect("open");
                    (0..15)
                        .map(|_| {
                            let mut it = item.clone();
                            it.id = Uuid::now_v7();
                            s.commit_checkin(&it, &a, &signer(), None, now())
                                .expect("commit")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<SettlementItem> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        all.sort_by_key(|i| i.signed.as_ref().map(|s| s.seq));
        assert_eq!(all.len(), 30);
        assert_chain(&all, &signer());
        assert_eq!(s.chain_head().expect("head").0, 30);
    }

    #[test]
    fn evidence_photos_are_sealed_with_the_checkin_swept_after_retention_and_purged() {
        let (d, s) = synced();
        let jpeg = sample_jpeg();
        let (item, a) = accepted(&s, now());
        let signed = s
            .commit_checkin(&item, &a, &signer(), Some(&jpeg), now())
            .expect("commit");
        assert_eq!(s.evidence_count().expect("n"), 1);
        assert_eq!(
            s.evidence_photo(signed.id).expect("open"),
            Some(jpeg.clone())
        );
        // encrypted at rest: neither the JPEG header (FF D8 FF ...) nor a piece of its body is in
        // the database files
        let raw = raw_bytes(d.path(), &s);
        assert!(!contains(&raw, &jpeg[..20]), "JPEG header in the database");
        let mid = jpeg.len() / 2;
        assert!(
            !contains(&raw, &jpeg[mid..mid + 32]),
            "JPEG body in the database"
        );
        // the retention sweep runs on the injected clock: not yet at 29 days, gone after 30
        let keep = chrono::Duration::days(30);
        let sweep = |days: i64| {
            s.sweep_evidence(now() + chrono::Duration::days(days), keep)
                .expect("sweep")
        };
        assert_eq!(sweep(29), 0);
        assert_eq!(s.evidence_count().expect("n"), 1);
        assert_eq!(sweep(31), 1);
        assert_eq!(s.evidence_count().expect("n"), 0);
        assert_eq!(
            s.outbox_counts().expect("c").total,
            1,
            "the settlement stays"
        );

        // a purge from the server (consent withdrawn or death) deletes the resident's evidence,
        // and secure_delete leaves no ciphertext behind in the file
        let mut it = item.clone();
        it.id = Uuid::now_v7();
        s.commit_checkin(&it, &a, &signer(), Some(&jpeg), now())
            .expect("commit");
        let ct: Vec<u8> = s
            .conn()
            .query_row("SELECT ciphertext FROM evidence", [], |r| r.get(0))
            .expect("row");
        s.apply_sync(
            &sync(false, serde_json::json!([]), serde_json::json!([7])),
            now(),
        )
        .expect("purge");
        assert_eq!(s.evidence_count().expect("n"), 0);
        let raw = raw_bytes(d.path(), &s);
        assert!(!contains(&raw, &ct[..32]), "purged ciphertext overwritten");

        // a full snapshot that shows a withdrawn consent or a death purges as well
        for patch in [
            serde_json::json!({"face_ready": false}),
            serde_json::json!({"status": {"status": "deceased", "date": "2026-03-14"}}),
        ] {
            let mut it = item.clone();
            it.id = Uuid::now_v7();
            s.commit_checkin(&it, &a, &signer(), Some(&jpeg), now())
                .expect("commit");
            assert_eq!(s.evidence_count().expect("n"), 1);
            s.apply_sync(
                &sync_with(true, serde_json::json!([]), serde_json::json!([]), patch),
                now(),
            )
            .expect("snapshot");
            assert_eq!(s.evidence_count().expect("n"), 0);
            s.apply_sync(
                &sync(true, serde_json::json!([]), serde_json::json!([])),
                now(),
            )
            .expect("restore");
        }
    }

    #[test]
    fn without_a_photo_no_evidence_is_written() {
        let (_d, s) = synced();
        commit_n(&s, 2);
        assert_eq!(s.evidence_count().expect("n"), 0);
    }

    /// A real JPEG (what the face loop stores): a 112x112 gradient.
    fn sample_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(112, 112, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8])
        });
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 70)
            .encode_image(&img)
            .expect("jpeg");
        assert_eq!(&buf[..3], &[0xff, 0xd8, 0xff]);
        buf
    }

    #[test]
    fn templates_and_embeddings_are_not_readable_in_the_database_files() {
        // a known embedding, as the server sends it (base64 of little-endian f32)
        let known: Vec<f32> = (0..128).map(|i| ((i as f32) * 0.37).sin() / 8.0).collect();
        let b64 = zhucan_domain::api::encode_embedding(&known);
        let le: Vec<u8> = known.iter().flat_map(|x| x.to_le_bytes()).collect();
        let local: Vec<f32> = (0..128).map(|i| ((i as f32) * 0.11).cos() / 8.0).collect();
        let local_le: Vec<u8> = local.iter().flat_map(|x| x.to_le_bytes()).collect();

        let (d, s) = open();
        let t = serde_json::json!([{"resident_id": 7, "enrolled_canteen": 1, "model": "m.onnx",
            "embeddings": [b64]}]);
        s.apply_sync(&sync(true, t, serde_json::json!([])), now())
            .expect("sync");
        s.replace_templates(
            ResidentId(7),
            "m.onnx",
            std::slice::from_ref(&local),
            zhucan_domain::resident::Consent {
                face_enrolment: true,
                template_sharing: false,
            },
        )
        .expect("enrol here");
        // the synced template is replaced by the local one; enrol the synced one again as well
        s.apply_sync(
            &sync(
                false,
                serde_json::json!([{"resident_id": 7, "enrolled_canteen": 1, "model": "m.onnx",
                    "embeddings": [b64, zhucan_domain::api::encode_embedding(&local)]}]),
                serde_json::json!([]),
            ),
            now(),
        )
        .expect("sync again");
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 2);
        assert_eq!(
            s.gallery("m.onnx", 128).expect("g").len(),
            2,
            "still usable"
        );

        let raw = raw_bytes(d.path(), &s);
        // the search works: the resident's name is stored in plain text and is found
        assert!(
            contains(&raw, "王建国".as_bytes()),
            "name not found: the search is broken"
        );
        for (what, needle) in [
            ("synced embedding (f32 LE)", &le[..]),
            ("first 16 bytes of it", &le[..16]),
            ("synced embedding (base64)", b64.as_bytes()),
            ("first 24 characters of the base64", &b64.as_bytes()[..24]),
            ("local embedding (f32 LE)", &local_le[..]),
            ("first 16 bytes of it", &local_le[..16]),
        ] {
            assert!(
                !contains(&raw, needle),
                "{what} is readable in the database files"
            );
        }
    }

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

    /// A stolen kiosk's disk: residents are held as the decision needs them, card codes only as
    /// keyed hashes, yet the card box and the operator's search still find them by the code.
    #[test]
    fn card_codes_are_held_only_as_keyed_hashes_and_still_find_the_resident() {
        let (d, s) = synced();
        let by_card = s.resident_by_card(" CARD7 ").expect("card").expect("found");
        assert_eq!(
            (by_card.id(), by_card.name.as_str()),
            (ResidentId(7), "王建国")
        );
        assert!(s.resident_by_card("CARD8").expect("card").is_none());
        let hits = s.search("CARD7", now().date_naive()).expect("search");
        assert_eq!(hits.len(), 1);
        assert!(hits[0].has_card);
        let raw = raw_bytes(d.path(), &s);
        assert!(!contains(&raw, b"CARD7"), "no clear card code in the files");
        assert!(
            contains(&raw, "王建国".as_bytes()),
            "the name is there (the screen needs it)"
        );
        // a resident's JSON on disk is the kiosk's view: no sex, card code or consent flags
        let json: String = s
            .conn()
            .query_row("SELECT json FROM residents WHERE id = 7", [], |r| r.get(0))
            .expect("row");
        for absent in [
            "sex",
            "card_code",
            "designated_canteen",
            "consent",
            "national",
        ] {
            assert!(!json.contains(absent), "{absent} in {json}");
        }
    }

    /// A kiosk from before held whole residents with clear card codes: the migration drops them
    /// and the next sync is a full snapshot in the new shape.
    #[test]
    fn a_store_holding_whole_residents_drops_them_and_syncs_again_in_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kiosk.sqlite");
        {
            let mut c = Connection::open(&p).expect("open");
            let tx = c.transaction().expect("tx");
            for (_, sql) in &MIGRATIONS[..3] {
                tx.execute_batch(sql).expect("migration");
            }
            tx.pragma_update(None, "user_version", 3).expect("v3");
            tx.execute(
                "INSERT INTO residents (id, name, card_code, json) VALUES (7, '王建国', 'CARD7', '{}')",
                [],
            )
            .expect("old row");
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('sync_cursor', '42')",
                [],
            )
            .expect("cursor");
            tx.commit().expect("commit");
        }
        let s = Store::open(&p, TemplateKey::from_bytes([1; 32])).expect("migrate");
        assert_eq!(
            s.cursor().expect("cursor"),
            0,
            "the next pull is a full snapshot"
        );
        assert!(s.resident(ResidentId(7)).expect("r").is_none());
        let raw = raw_bytes(dir.path(), &s);
        assert!(
            !contains(&raw, b"CARD7"),
            "the old clear card code is overwritten"
        );
    }
}
