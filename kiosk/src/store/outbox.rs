//! The local meal history and the outbox: a check-in is committed with its meal, signed and
//! chained, in one transaction; the sync worker reads it in seq order and records answers.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;
use zhucan_domain::api::{ItemResult, ItemStatus, KioskResident, SettlementItem};
use zhucan_domain::settle::{Accepted, Decision};
use zhucan_domain::signing::{self, SigningKey};
use zhucan_domain::{Fen, PriorMeal, ResidentId, Slot};

use super::*;

impl Store {
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
            let corrupt = |why: String| Error::Corrupt {
                table: "meals",
                why,
            };
            let date = d
                .parse::<NaiveDate>()
                .map_err(|e| corrupt(format!("date '{d}': {e}")))?;
            let slot = Slot::parse(&s).ok_or_else(|| corrupt(format!("slot '{s}'")))?;
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
            let id = id.parse::<Uuid>().map_err(|e| Error::Corrupt {
                table: "outbox",
                why: format!("id '{id}': {e}"),
            })?;
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
                            || a.delivery_subsidy != m.delivery_subsidy
                            || a.operating != m.operating
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
                        // the tier's part, as the decision counts it (`PriorMeal::subsidy`)
                        params![id, m.tier_subsidy().0, m.slot.as_str(), m.date.to_string()],
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
pub(crate) mod tests {
    use super::testing::{accepted, now, signer, synced};

    use uuid::Uuid;
    use zhucan_domain::api::{ItemResult, ItemStatus, SettlementItem};

    use zhucan_domain::signing::SigningKey;
    use zhucan_domain::{Fen, ResidentId};

    use secret::TemplateKey;

    use super::*;
    use zhucan_domain::api::MealDecision;
    use zhucan_domain::signing::{GENESIS, record_hash, verify};
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
    pub(crate) fn commit_n(s: &Store, n: usize) -> Vec<SettlementItem> {
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
    fn a_meal_or_outbox_row_that_does_not_parse_is_an_error_not_skipped() {
        let (_d, s) = synced();
        s.conn()
            .execute(
                "INSERT INTO meals (id, resident_id, date, slot, subsidy)
                 VALUES ('m1', 7, '2026-03-15', 'brunch', 300)",
                [],
            )
            .expect("insert");
        let e = s.history(ResidentId(7)).expect_err("a bad slot");
        assert!(
            e.to_string().contains("meals") && e.to_string().contains("brunch"),
            "{e}"
        );
        s.conn().execute("DELETE FROM meals", []).expect("delete");
        assert!(s.history(ResidentId(7)).expect("empty").is_empty());
        s.conn()
            .execute(
                "INSERT INTO outbox (id, item, local_decision, created_at, next_attempt_at, seq)
                 VALUES ('not-a-uuid', '{}', '{}', '2026-03-15T00:00:00.000Z',
                         '2026-03-15T00:00:00.000Z', 1)",
                [],
            )
            .expect("insert");
        let e = s.due(now(), 10).expect_err("a bad id");
        assert!(e.to_string().contains("outbox"), "{e}");
    }
}
