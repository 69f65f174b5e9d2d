//! The kiosk's local SQLite store (WAL): settings, the canteen, residents, policies, encrypted
//! face templates, the local meal history and the outbox.
//!
//! Invariant: a check-in is committed to the outbox together with its local meal in ONE
//! transaction ([`Store::commit_checkin`]) before anything is sent. The sync worker only reads
//! the outbox and records the server's answers. Templates are encrypted at rest
//! ([`secret::TemplateKey`]); the key is never in the database.

pub mod secret;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use zhucan_domain::api::{ItemResult, ItemStatus, SettlementItem, SyncResponse};
use zhucan_domain::settle::{Accepted, Decision};
use zhucan_domain::{Canteen, Fen, Policy, PriorMeal, Resident, ResidentId, Slot};

use crate::face::matcher::Gallery;
use crate::screen::ResidentHit;
use secret::TemplateKey;

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
}

pub type Result<T> = std::result::Result<T, Error>;

/// The migrations of `migrations/kiosk/`, in order; index `i` brings the schema to `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_init",
    include_str!("../../../migrations/kiosk/0001_init.sql"),
)];

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
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
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
        for r in &s.residents {
            tx.execute(
                "INSERT INTO residents (id, name, card_code, json) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                   card_code = excluded.card_code, json = excluded.json",
                params![r.id.0, r.name, r.card_code, serde_json::to_string(r)?],
            )?;
        }
        for t in &s.templates {
            let rid = t.resident_id.0;
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
        for (k, v) in [
            ("sync_cursor", s.cursor.to_string()),
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

    pub fn resident(&self, id: ResidentId) -> Result<Option<Resident>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT json FROM residents WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    pub fn resident_by_card(&self, code: &str) -> Result<Option<Resident>> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT json FROM residents WHERE card_code = ?1",
                [code.trim()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// Operator search by (part of) the name or the card code, at most 20 hits.
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
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT json, (SELECT COUNT(*) FROM templates t WHERE t.resident_id = r.id)
             FROM residents r
             WHERE card_code = ?1 OR name LIKE ?2 ESCAPE '\\'
             ORDER BY name, id LIMIT 20",
        )?;
        let rows = st.query_map(params![q, like], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (j, templates) = row?;
            let r: Resident = serde_json::from_str(&j)?;
            out.push(ResidentHit {
                id: r.id,
                age: r.age_on(today),
                name: r.name,
                card_code: r.card_code,
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
    /// prepaid balance after it) are committed together, before any send.
    pub fn commit_checkin(
        &self,
        item: &SettlementItem,
        accepted: &Accepted,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = item.id.to_string();
        tx.execute(
            "INSERT INTO outbox (id, item, local_decision, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![
                id,
                serde_json::to_string(item)?,
                serde_json::to_string(&Decision::Accepted(accepted.clone()))?,
                ts(now)
            ],
        )?;
        tx.execute(
            "INSERT INTO meals (id, resident_id, date, slot, subsidy) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id,
                item.resident_id.0,
                accepted.date.to_string(),
                accepted.slot.as_str(),
                accepted.subsidy.0
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
                let mut r: Resident = serde_json::from_str(&j)?;
                r.prepaid_balance = r.prepaid_balance.map(|b| b - accepted.self_pay);
                tx.execute(
                    "UPDATE residents SET json = ?2 WHERE id = ?1",
                    params![r.id.0, serde_json::to_string(&r)?],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` unacknowledged, unparked items due at `now`, oldest first.
    pub fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, item, attempts FROM outbox
             WHERE acked_at IS NULL AND parked_at IS NULL AND next_attempt_at <= ?1
             ORDER BY id LIMIT ?2",
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
            let mut r: Resident = serde_json::from_str(&j)?;
            r.face_enrolled = true;
            r.consent = consent;
            tx.execute(
                "UPDATE residents SET json = ?2 WHERE id = ?1",
                params![r.id.0, serde_json::to_string(&r)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a resident's templates here.
    pub fn delete_templates(&self, resident: ResidentId) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM templates WHERE resident_id = ?1", [resident.0])?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use zhucan_domain::api::{MealDecision, SyncResponse};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
            .single()
            .expect("time")
    }

    fn sync(full: bool, templates: serde_json::Value, purged: serde_json::Value) -> SyncResponse {
        serde_json::from_value(serde_json::json!({
            "cursor": 7, "full": full, "kiosk_id": 3,
            "canteen": {"id": 1, "name": "宾王", "kind": "care_centre", "town": "choucheng",
                "operator": "x", "operator_kind": "contracted", "delivery_surcharge": null,
                "slots": [{"slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1200}]},
            "policies": [Policy::example_yiwu()],
            "residents": [{"id": 7, "name": "王建国", "sex": "male", "birth_date": "1944-05-01",
                "local_registration": true, "registered_town": "choucheng",
                "residence_town": "choucheng", "categories": [], "status": {"status": "active"},
                "card_code": "CARD7", "designated_canteen": null, "prepaid_balance": 10000,
                "consent": {"face_enrolment": true, "template_sharing": false},
                "face_enrolled": true}],
            "templates": templates, "purged": purged, "meals": [], "voided": []
        }))
        .expect("sync answer")
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(
            &dir.path().join("k.sqlite"),
            TemplateKey::from_bytes([1; 32]),
        )
        .expect("open");
        (dir, s)
    }

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

    #[test]
    fn checkin_commits_outbox_and_meal_together_and_answers_are_recorded() {
        let (_d, s) = open();
        s.apply_sync(
            &sync(true, serde_json::json!([]), serde_json::json!([])),
            now(),
        )
        .expect("apply");
        let r = s.resident(ResidentId(7)).expect("r").expect("resident");
        let c = s.canteen().expect("c").expect("canteen");
        let p = crate::checkin::prepare(
            &r,
            &c,
            &s.policies().expect("p"),
            &[],
            &crate::checkin::How::Card,
            now(),
            Uuid::now_v7(),
        );
        let item = p.item.expect("accepted");
        let Decision::Accepted(a) = &p.decision else {
            panic!("accepted")
        };
        s.commit_checkin(&item, a, now()).expect("commit");
        assert_eq!(s.history(ResidentId(7)).expect("h").len(), 1);
        assert_eq!(s.outbox_counts().expect("c").backlog, 1);
        let bal = s
            .resident(ResidentId(7))
            .expect("r")
            .expect("r")
            .prepaid_balance;
        assert_eq!(bal, Some(Fen(10_000) - a.self_pay));
        // the same id twice is refused by the primary key: never two outbox rows for one meal
        assert!(s.commit_checkin(&item, a, now()).is_err());
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
}
