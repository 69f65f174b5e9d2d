//! Settlement ingestion: check a kiosk's batch, verify every item's signature and place it in
//! the kiosk's hash chain, then decide and store every item in one transaction. This is the
//! single path by which meals enter the books (the HTTP handler, the dashboard's staff check-in,
//! the demo's history and the bench all come through here).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use tracing::instrument;
use zhucan_domain::api::{
    BatchResult, ItemResult, ItemStatus, MAX_BATCH, MealDecision, RejectionBody, SettlementBatch,
    SettlementItem,
};
use zhucan_domain::settle::{self, Attempt, Decision};
use zhucan_domain::signing::{self, SignatureError};
use zhucan_domain::{Canteen, CanteenId, Method, Payment, Policy, Resident, ResidentId};

use crate::crypto::sha256_hex;
use crate::db::chain::EventKind;
use crate::db::{self, Tx};

/// Who posts the batch.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A registered kiosk: every item signed with its key, in its chain, for its own canteen.
    /// The only source of face and card meals.
    Kiosk { id: i64, canteen: CanteenId },
    /// A person entering meals on the server (the dashboard's staff check-in, the admin
    /// token's API): staff meals only, each with a reason, each audited with who entered it
    /// (in the same transaction), counted apart on the statement's chain section. `canteen`:
    /// the only canteen they may enter meals for (`None`: any).
    Staff {
        actor: db::audit::Actor,
        canteen: Option<CanteenId>,
    },
}

impl Caller {
    fn kiosk_id(&self) -> Option<i64> {
        match self {
            Caller::Kiosk { id, .. } => Some(*id),
            Caller::Staff { .. } => None,
        }
    }

    fn canteen(&self) -> Option<CanteenId> {
        match self {
            Caller::Kiosk { canteen, .. } => Some(*canteen),
            Caller::Staff { canteen, .. } => *canteen,
        }
    }
}

/// What ingestion refuses or marks, beyond the policy: the score floors of face meals and how
/// late a meal may reach the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// A face meal below this match score is refused: no kiosk setting accepts it (the
    /// kiosk's threshold never goes below `MatchConfig::min_threshold`, 0.45).
    pub min_match_score: f64,
    /// A face meal below this liveness score is refused (the kiosk's threshold, 0.5).
    pub min_liveness_score: f64,
    /// Received more than this many hours after it was served: accepted, marked late (the
    /// statement lists late meals apart).
    pub late_after_hours: u32,
    /// Received more than this many days after it was served: refused as backdated.
    pub max_late_days: u32,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            min_match_score: 0.45,
            min_liveness_score: 0.5,
            late_after_hours: 24,
            max_late_days: 31,
        }
    }
}

/// A problem with the shape of a batch: the field (`items[3].staff_reason`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

pub use crate::period::month_of;

/// Checks what the types cannot: batch size, UUID version, scores, the staff reason.
/// Any problem refuses the whole batch before anything is written.
pub fn validate(batch: &SettlementBatch) -> Result<(), FieldError> {
    if batch.items.len() > MAX_BATCH {
        return Err(FieldError {
            code: "batch_too_large",
            field: "items".into(),
            message: format!(
                "at most {MAX_BATCH} items per batch, got {}",
                batch.items.len()
            ),
        });
    }
    for (i, it) in batch.items.iter().enumerate() {
        let bad = |field: &str, code: &'static str, message: String| FieldError {
            code,
            field: format!("items[{i}].{field}"),
            message,
        };
        if it.id.get_version_num() != 7 {
            return Err(bad(
                "id",
                "invalid_id",
                format!("must be a UUIDv7, got version {}", it.id.get_version_num()),
            ));
        }
        for (name, v) in [
            ("match_score", it.match_score),
            ("liveness_score", it.liveness_score),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && (0.0..=1.0).contains(&v))
            {
                return Err(bad(name, "out_of_range", "must be between 0 and 1".into()));
            }
        }
        match it.method {
            Method::Face => {
                if it.match_score.is_none() {
                    return Err(bad("match_score", "missing", "required for face".into()));
                }
                if it.liveness_score.is_none() {
                    return Err(bad("liveness_score", "missing", "required for face".into()));
                }
            }
            Method::Staff => {
                if it
                    .staff_reason
                    .as_deref()
                    .is_none_or(|s| s.trim().is_empty())
                {
                    return Err(bad("staff_reason", "missing", "required for staff".into()));
                }
            }
            Method::Card => {}
        }
        // A delivered meal (送餐) is eaten at home: the elder's face at the counter cannot
        // settle it. The deliverer's card or staff confirm it (or a carer collects it).
        if it.delivered && it.method == Method::Face {
            return Err(bad(
                "delivered",
                "delivered_face",
                "a delivered meal is not eaten at the counter: settle it by card or staff, \
                 not by the elder's face"
                    .into(),
            ));
        }
        if it.counter_price.is_some_and(|p| p.is_negative()) {
            return Err(bad(
                "counter_price",
                "out_of_range",
                "must be 0 or more fen".into(),
            ));
        }
        if let Some(s) = &it.signed
            && i64::try_from(s.seq).is_err()
        {
            return Err(bad(
                "signed.seq",
                "out_of_range",
                format!("at most {}", i64::MAX),
            ));
        }
        if it
            .staff_reason
            .as_deref()
            .is_some_and(|s| s.chars().count() > 500)
        {
            return Err(bad(
                "staff_reason",
                "too_long",
                "at most 500 characters".into(),
            ));
        }
    }
    Ok(())
}

/// The server's caches while it works through one batch.
struct Batch {
    caller: Caller,
    policies: Vec<Policy>,
    closed: BTreeSet<String>,
    received_at: String,
    canteens: HashMap<CanteenId, Option<Canteen>>,
    residents: HashMap<ResidentId, Option<Resident>>,
    /// Each town's district (read once per batch: the decision's `own_district`).
    districts: HashMap<String, String>,
    /// The calling kiosk's public keys (empty for the server itself).
    keys: Vec<db::chain::Key>,
    /// The (match, liveness) thresholds the calling kiosk last reported.
    kiosk_thresholds: (Option<f64>, Option<f64>),
    rules: Rules,
    tz: Tz,
    now: DateTime<Utc>,
}

/// Decides and stores a validated batch inside `tx`; answers per item.
///
/// A kiosk's items must be signed ([`zhucan_domain::signing`]): an item whose signature is
/// missing, malformed or does not verify with the kiosk's key for its `seq`, or that would fork
/// the kiosk's chain, is answered with an item error, nothing of it is stored, and the attempt is
/// recorded as an integrity event. A verified record is stored as a chain link with the
/// settlement (also when the meal is refused or errors, so the chain shows no false gap); the
/// same record again is a replay and changes nothing. Meals a person enters on the server
/// ([`Caller::Staff`]) are unsigned: staff meals only, each audited.
#[instrument(skip_all, fields(items = items.len(), kiosk = caller.kiosk_id()))]
pub fn ingest(
    tx: &Tx<'_>,
    caller: Caller,
    items: &[SettlementItem],
    rules: &Rules,
    tz: Tz,
    now: DateTime<Utc>,
) -> db::Result<BatchResult> {
    let kiosk_id = caller.kiosk_id();
    let mut b = Batch {
        caller,
        policies: db::policies::all(tx)?,
        closed: db::months::closed(tx)?,
        received_at: zhucan_platform::stamp(now),
        canteens: HashMap::new(),
        residents: HashMap::new(),
        districts: db::towns::districts_of_towns(tx)?,
        keys: match kiosk_id {
            Some(k) => db::chain::keys(tx, k)?,
            None => Vec::new(),
        },
        kiosk_thresholds: match kiosk_id {
            Some(k) => db::kiosks::thresholds(tx, k)?,
            None => (None, None),
        },
        rules: *rules,
        tz,
        now,
    };
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let canonical = serde_json::to_vec(item).map_err(db::Error::other)?;
        let hash = sha256_hex(&canonical);
        let Some(kiosk) = kiosk_id else {
            results.push(enter_by_staff(tx, &mut b, item, &hash)?);
            continue;
        };
        match check_link(tx, &b, kiosk, item)? {
            LinkCheck::Refused(result) => results.push(*result),
            LinkCheck::Replayed { seq } => {
                let (result, stored) = decide_and_store(tx, &mut b, item, &hash)?;
                if stored {
                    db::chain::mark_settled(tx, kiosk, seq)?;
                }
                results.push(result);
            }
            LinkCheck::New {
                seq,
                record_hash,
                prev_hash,
                payload,
            } => {
                let (result, stored) = decide_and_store(tx, &mut b, item, &hash)?;
                if stored && let Some(detail) = below_kiosk_threshold(&b, item) {
                    db::chain::record_event(
                        tx,
                        &db::chain::Event {
                            kiosk_id: kiosk,
                            kind: EventKind::BelowKioskThreshold,
                            seq: Some(seq),
                            settlement_id: Some(&item.id.to_string()),
                            detail: &detail,
                            at: &b.received_at,
                        },
                    )?;
                }
                let signature = item.signed.as_ref().map_or("", |s| s.signature.as_str());
                db::chain::insert_link(
                    tx,
                    &db::chain::Link {
                        kiosk_id: kiosk,
                        seq,
                        record_hash,
                        prev_hash,
                        settlement_id: &item.id.to_string(),
                        settled: stored,
                        signature,
                        payload: &payload,
                        received_at: &b.received_at,
                    },
                )?;
                results.push(result);
            }
        }
    }
    Ok(BatchResult { results })
}

/// A meal a person enters on the server: staff method only, audited with who and why.
fn enter_by_staff(
    tx: &Tx<'_>,
    b: &mut Batch,
    item: &SettlementItem,
    hash: &str,
) -> db::Result<ItemResult> {
    let Caller::Staff { actor, .. } = b.caller.clone() else {
        return Err(db::Error::other("a kiosk's item on the staff path"));
    };
    if item.method != Method::Staff {
        return Ok(ItemResult::error(
            item.id,
            "method_not_allowed",
            Some("method".into()),
            format!(
                "only a registered kiosk may settle {} meals (signed on the device); a meal \
                 entered on the server is a staff check-in (method staff, with a reason)",
                item.method.as_str()
            ),
        ));
    }
    let (result, stored) = decide_and_store(tx, b, item, hash)?;
    if stored {
        db::audit::append(
            tx,
            &b.received_at,
            &actor,
            "settlement.staff_entry",
            &format!("settlement:{}", item.id),
            &serde_json::json!({
                "resident_id": item.resident_id.0,
                "canteen_id": item.canteen_id.0,
                "served_at": item.served_at.to_rfc3339(),
                "reason": item.staff_reason,
                "status": result.status,
                "subsidy": result.meal.as_ref().map(|m| m.subsidy.0),
                // the month it counts in: the books check finds the row by it
                "period": month_of(item.served_at.with_timezone(&b.tz).date_naive()),
            }),
        )?;
    }
    Ok(result)
}

/// What the chain says about a kiosk's item.
enum LinkCheck {
    /// Not stored: the answer is an item error (and an integrity event was recorded).
    Refused(Box<ItemResult>),
    /// This very record is already in the chain.
    Replayed { seq: u64 },
    /// A new, verified record that fits the chain.
    New {
        seq: u64,
        record_hash: [u8; 32],
        prev_hash: [u8; 32],
        payload: String,
    },
}

fn hash_bytes(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Verifies a kiosk's item and places it in the kiosk's chain.
fn check_link(tx: &Tx<'_>, b: &Batch, kiosk: i64, item: &SettlementItem) -> db::Result<LinkCheck> {
    let refuse = |kind: EventKind, seq: Option<u64>, code: &str, field: &str, msg: String| {
        db::chain::record_event(
            tx,
            &db::chain::Event {
                kiosk_id: kiosk,
                kind,
                seq,
                settlement_id: Some(&item.id.to_string()),
                detail: &format!("{code}: {msg}"),
                at: &b.received_at,
            },
        )?;
        Ok(LinkCheck::Refused(Box::new(ItemResult::error(
            item.id,
            code,
            Some(field.into()),
            msg,
        ))))
    };
    let claimed = item.signed.as_ref().map(|s| s.seq);
    let verdict = match db::chain::key_for(&b.keys, claimed.unwrap_or(1).max(1)) {
        Some(key) => signing::verify_payload(item, key).map_err(|e| (e.to_string(), e)),
        None if item.signed.is_none() => {
            let e = SignatureError::Missing;
            Err((e.to_string(), e))
        }
        None => Err((
            "no public key is registered for this kiosk; enrol it again".to_owned(),
            SignatureError::Invalid,
        )),
    };
    let payload = match verdict {
        Ok(payload) => payload,
        Err((msg, e)) => {
            return refuse(
                EventKind::from_signature_code(e.code()),
                claimed,
                e.code(),
                e.field(),
                msg,
            );
        }
    };
    let Some(s) = item.signed.as_ref() else {
        return Err(db::Error::other("verified item without a signature block"));
    };
    let record_hash: [u8; 32] = Sha256::digest(&payload).into();
    let prev_hash = hash_bytes(&s.prev_hash)
        .ok_or_else(|| db::Error::other("verified prev_hash is not a hash"))?;
    let seq = s.seq;
    let fork = |msg: String| refuse(EventKind::Fork, Some(seq), "chain_fork", "signed.seq", msg);
    let around = db::chain::around(tx, kiosk, seq)?;
    if let Some(same) = around.iter().find(|n| n.seq == seq) {
        if same.record_hash.as_slice() == record_hash.as_slice() {
            return Ok(LinkCheck::Replayed { seq });
        }
        return fork(format!(
            "another record already holds seq {seq} of this kiosk's chain"
        ));
    }
    if seq == 1 && prev_hash != db::chain::GENESIS_BYTES {
        return fork("seq 1 must follow GENESIS (prev_hash of 64 zeros)".into());
    }
    for n in &around {
        if n.seq + 1 == seq && n.record_hash.as_slice() != prev_hash.as_slice() {
            return fork(format!(
                "prev_hash is not the hash of record {} already received",
                n.seq
            ));
        }
        if n.seq == seq + 1 && n.prev_hash.as_slice() != record_hash.as_slice() {
            return fork(format!(
                "record {} already received does not follow this record",
                n.seq
            ));
        }
    }
    Ok(LinkCheck::New {
        seq,
        record_hash,
        prev_hash,
        payload: String::from_utf8(payload).map_err(db::Error::other)?,
    })
}

/// Looks `id` up once per batch: the cached row, or `None` when it does not exist.
fn cached<K: Copy + Eq + std::hash::Hash, V: Clone>(
    cache: &mut HashMap<K, Option<V>>,
    id: K,
    load: impl FnOnce(K) -> db::Result<V>,
) -> db::Result<Option<V>> {
    if let Some(v) = cache.get(&id) {
        return Ok(v.clone());
    }
    let v = match load(id) {
        Ok(v) => Some(v),
        Err(db::Error::NotFound) => None,
        Err(e) => return Err(e),
    };
    cache.insert(id, v.clone());
    Ok(v)
}

/// A face meal the kiosk signed with a score below the threshold it reported itself: it passed
/// the server's floors, so it is settled, but its kiosk should not have accepted it (settings
/// changed with meals still queued, or a record not made by the kiosk's face loop).
fn below_kiosk_threshold(b: &Batch, item: &SettlementItem) -> Option<String> {
    if item.method != Method::Face {
        return None;
    }
    let (match_t, live_t) = b.kiosk_thresholds;
    let below = |score: Option<f64>, t: Option<f64>| match (score, t) {
        (Some(s), Some(t)) if s < t => Some((s, t)),
        _ => None,
    };
    if let Some((s, t)) = below(item.match_score, match_t) {
        return Some(format!(
            "below_kiosk_threshold: match_score {s:.4} < {t:.4}, the kiosk's reported threshold"
        ));
    }
    below(item.liveness_score, live_t).map(|(s, t)| {
        format!(
            "below_kiosk_threshold: liveness_score {s:.4} < {t:.4}, the kiosk's reported threshold"
        )
    })
}

/// Why a kiosk's face item cannot be a real match, if it cannot: scores below the floors the
/// kiosks apply, or a resident whose face templates this canteen's kiosks never held.
fn face_problem(
    tx: &Tx<'_>,
    b: &Batch,
    item: &SettlementItem,
) -> db::Result<Option<(&'static str, &'static str, String)>> {
    let (m, l) = (
        item.match_score.unwrap_or(0.0),
        item.liveness_score.unwrap_or(0.0),
    );
    if m < b.rules.min_match_score {
        return Ok(Some((
            "score_below_floor",
            "match_score",
            format!(
                "{m:.3} is below {:.2}, the lowest match threshold a kiosk applies",
                b.rules.min_match_score
            ),
        )));
    }
    if l < b.rules.min_liveness_score {
        return Ok(Some((
            "score_below_floor",
            "liveness_score",
            format!(
                "{l:.3} is below {:.2}, the liveness threshold a kiosk applies",
                b.rules.min_liveness_score
            ),
        )));
    }
    if !db::templates::canteen_could_match(tx, item.canteen_id, item.resident_id)? {
        return Ok(Some((
            "face_not_held",
            "resident_id",
            "this canteen's kiosks hold no face template of this resident, so no face of \
             theirs can have matched here"
                .into(),
        )));
    }
    Ok(None)
}

/// Decides and stores one item (or answers it as stored before). Returns the answer and whether
/// a new settlement row was written.
fn decide_and_store(
    tx: &Tx<'_>,
    b: &mut Batch,
    item: &SettlementItem,
    hash: &str,
) -> db::Result<(ItemResult, bool)> {
    let error = |code: &str, field: &str, message: String| {
        Ok((
            ItemResult::error(item.id, code, Some(field.into()), message),
            false,
        ))
    };
    if b.caller.canteen().is_some_and(|c| c != item.canteen_id) {
        return error(
            "canteen_not_allowed",
            "canteen_id",
            "this kiosk may only settle meals of its own canteen".into(),
        );
    }
    if let Some((stored_hash, answer)) = db::settlements::find_answer(tx, item.id)? {
        if stored_hash == hash {
            return Ok((
                serde_json::from_str(&answer).map_err(db::Error::other)?,
                false,
            ));
        }
        return error(
            "id_conflict",
            "id",
            "this id was already settled with a different payload".into(),
        );
    }
    let Some(canteen) = cached(&mut b.canteens, item.canteen_id, |id| {
        db::canteens::get(tx, id)
    })?
    else {
        return error(
            "unknown_canteen",
            "canteen_id",
            format!("no canteen {}", item.canteen_id.0),
        );
    };
    let Some(resident) = cached(&mut b.residents, item.resident_id, |id| {
        db::residents::get(tx, id)
    })?
    else {
        return error(
            "unknown_resident",
            "resident_id",
            format!("no resident {}", item.resident_id.0),
        );
    };
    if let Some(carer) = item.proxy_carer_id {
        if item.method == Method::Face {
            return error(
                "proxy_not_allowed",
                "method",
                "a meal a carer collects (代取) is settled by the carer's own card (method card) \
                 or confirmed by staff, never by the resident's face"
                    .into(),
            );
        }
        if !db::carers::is_linked(tx, carer, resident.id)? {
            return error(
                "proxy_not_linked",
                "proxy_carer_id",
                format!(
                    "carer {carer} is not registered to collect meals for resident {}",
                    resident.id.0
                ),
            );
        }
    }
    if item.served_at.with_timezone(&Utc) > b.now + Duration::hours(1) {
        return error(
            "served_in_future",
            "served_at",
            "more than an hour after the server's time; check the kiosk's clock".into(),
        );
    }
    if item.served_at.with_timezone(&Utc) < b.now - Duration::days(i64::from(b.rules.max_late_days))
    {
        return error(
            "served_too_long_ago",
            "served_at",
            format!(
                "more than {} days before the server's time: a kiosk sends its meals within \
                 days, older ones are not accepted (ask finance to enter a correction)",
                b.rules.max_late_days
            ),
        );
    }
    if item.method == Method::Face
        && let Some(problem) = face_problem(tx, b, item)?
    {
        return error(problem.0, problem.1, problem.2);
    }
    let local = item.served_at.with_timezone(&b.tz).naive_local();
    let period = month_of(local.date());
    if b.closed.contains(&period) {
        return error(
            "month_closed",
            "served_at",
            format!("month {period} is closed; no new meals may be settled in it"),
        );
    }
    let history = db::settlements::month_history(tx, resident.id, &period)?;
    let policy = Policy::select(&b.policies, local.date());
    let attempt = Attempt {
        served_at: local,
        method: item.method,
        delivered: item.delivered,
        proxy: item.proxy_carer_id.is_some(),
        counter_price: item.counter_price,
    };
    let diner = crate::residents::diner(&resident, &b.districts);
    let decision = settle::decide(policy, &diner, &canteen, &attempt, &history);
    let result = match &decision {
        Decision::Accepted(a) => ItemResult {
            id: item.id,
            status: ItemStatus::Accepted,
            meal: Some(MealDecision::from(a)),
            rejection: None,
            error: None,
        },
        Decision::Rejected(r) => ItemResult {
            id: item.id,
            status: ItemStatus::Rejected,
            meal: None,
            rejection: Some(RejectionBody::from(r)),
            error: None,
        },
    };
    let answer = serde_json::to_string(&result).map_err(db::Error::other)?;
    let served_at = zhucan_platform::stamp(item.served_at.with_timezone(&Utc));
    db::settlements::insert(
        tx,
        &db::settlements::SettlementRow {
            counter_price: item.counter_price,
            id: item.id,
            kiosk_id: b.caller.kiosk_id(),
            canteen_id: canteen.id,
            resident_id: resident.id,
            served_at: &served_at,
            local_date: local.date(),
            method: item.method,
            match_score: item.match_score,
            liveness_score: item.liveness_score,
            delivered: item.delivered,
            staff_reason: item.staff_reason.as_deref(),
            decision: &decision,
            received_at: &b.received_at,
            request_hash: hash,
            answer: &answer,
            period: &period,
            late_by_seconds: {
                let late = (b.now - item.served_at.with_timezone(&Utc)).num_seconds();
                (late > i64::from(b.rules.late_after_hours) * 3600).then_some(late)
            },
            proxy_carer_id: item.proxy_carer_id,
        },
    )?;
    if matches!(decision, Decision::Accepted(_)) {
        db::push::enqueue(tx, &item.id.to_string(), "settlement", &b.received_at)?;
    }
    if let Decision::Accepted(a) = &decision
        && a.payment == Payment::Prepaid
        && a.self_pay.0 != 0
    {
        db::residents::debit_prepaid(tx, resident.id, a.self_pay, &b.received_at)?;
        if let Some(Some(r)) = b.residents.get_mut(&resident.id)
            && let Some(bal) = r.prepaid_balance.as_mut()
        {
            *bal -= a.self_pay;
        }
    }
    Ok((result, true))
}
