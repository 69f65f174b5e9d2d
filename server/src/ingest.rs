//! Settlement ingestion: check a kiosk's batch, then decide and store every item in one
//! transaction. This is the single path by which meals enter the books (the HTTP handler, the
//! demo's history and the bench all come through here).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use tracing::instrument;
use zhucan_domain::api::{
    BatchResult, ItemResult, ItemStatus, MAX_BATCH, MealDecision, RejectionBody, SettlementBatch,
    SettlementItem,
};
use zhucan_domain::settle::{self, Attempt, Decision};
use zhucan_domain::{Canteen, CanteenId, Method, Payment, Policy, Resident, ResidentId};

use crate::crypto::sha256_hex;
use crate::db::{self, Tx};

/// Who posts the batch.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The kiosk, or `None` for the server itself (demo history, bench).
    pub kiosk_id: Option<i64>,
    /// The only canteen the caller may post for; `None`: any.
    pub canteen: Option<CanteenId>,
}

/// A problem with the shape of a batch: the field (`items[3].staff_reason`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

/// `YYYY-MM` of a date: the period a meal's amounts count in.
pub fn month_of(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

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

/// Decides and stores a validated batch inside `tx`; answers per item.
#[instrument(skip_all, fields(items = items.len(), kiosk = caller.kiosk_id))]
pub fn ingest(
    tx: &Tx<'_>,
    caller: Caller,
    items: &[SettlementItem],
    tz: Tz,
    now: DateTime<Utc>,
) -> db::Result<BatchResult> {
    let policies = db::policies::all(tx)?;
    let closed: BTreeSet<String> = db::months::closed(tx)?;
    let received_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut canteens: HashMap<CanteenId, Option<Canteen>> = HashMap::new();
    let mut residents: HashMap<ResidentId, Option<Resident>> = HashMap::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let canonical = serde_json::to_vec(item).map_err(db::Error::other)?;
        let hash = sha256_hex(&canonical);
        if caller.canteen.is_some_and(|c| c != item.canteen_id) {
            results.push(ItemResult::error(
                item.id,
                "canteen_not_allowed",
                Some("canteen_id".into()),
                "this kiosk may only settle meals of its own canteen",
            ));
            continue;
        }
        if let Some((stored_hash, answer)) = db::settlements::find_answer(tx, item.id)? {
            if stored_hash == hash {
                results.push(serde_json::from_str(&answer).map_err(db::Error::other)?);
            } else {
                results.push(ItemResult::error(
                    item.id,
                    "id_conflict",
                    Some("id".into()),
                    "this id was already settled with a different payload",
                ));
            }
            continue;
        }
        let canteen = match canteens.get(&item.canteen_id) {
            Some(c) => c.clone(),
            None => {
                let c = match db::canteens::get(tx, item.canteen_id) {
                    Ok(c) => Some(c),
                    Err(db::Error::NotFound) => None,
                    Err(e) => return Err(e),
                };
                canteens.insert(item.canteen_id, c.clone());
                c
            }
        };
        let Some(canteen) = canteen else {
            results.push(ItemResult::error(
                item.id,
                "unknown_canteen",
                Some("canteen_id".into()),
                format!("no canteen {}", item.canteen_id.0),
            ));
            continue;
        };
        let resident = match residents.get(&item.resident_id) {
            Some(r) => r.clone(),
            None => {
                let r = match db::residents::get(tx, item.resident_id) {
                    Ok(r) => Some(r),
                    Err(db::Error::NotFound) => None,
                    Err(e) => return Err(e),
                };
                residents.insert(item.resident_id, r.clone());
                r
            }
        };
        let Some(resident) = resident else {
            results.push(ItemResult::error(
                item.id,
                "unknown_resident",
                Some("resident_id".into()),
                format!("no resident {}", item.resident_id.0),
            ));
            continue;
        };
        if item.served_at.with_timezone(&Utc) > now + Duration::hours(1) {
            results.push(ItemResult::error(
                item.id,
                "served_in_future",
                Some("served_at".into()),
                "more than an hour after the server's time; check the kiosk's clock",
            ));
            continue;
        }
        let local = item.served_at.with_timezone(&tz).naive_local();
        let period = month_of(local.date());
        if closed.contains(&period) {
            results.push(ItemResult::error(
                item.id,
                "month_closed",
                Some("served_at".into()),
                format!("month {period} is closed; no new meals may be settled in it"),
            ));
            continue;
        }
        let history = db::settlements::month_history(tx, resident.id, &period)?;
        let policy = Policy::select(&policies, local.date());
        let attempt = Attempt {
            served_at: local,
            method: item.method,
            delivered: item.delivered,
        };
        let decision = settle::decide(policy, &resident, &canteen, &attempt, &history);
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
        let served_at = item
            .served_at
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        db::settlements::insert(
            tx,
            &db::settlements::SettlementRow {
                id: item.id,
                kiosk_id: caller.kiosk_id,
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
                received_at: &received_at,
                request_hash: &hash,
                answer: &answer,
                period: &period,
            },
        )?;
        if matches!(decision, Decision::Accepted(_)) {
            db::push::enqueue(tx, &item.id.to_string(), "settlement", &received_at)?;
        }
        if let Decision::Accepted(a) = &decision
            && a.payment == Payment::Prepaid
            && a.self_pay.0 != 0
        {
            db::residents::debit_prepaid(tx, resident.id, a.self_pay, &received_at)?;
            if let Some(Some(r)) = residents.get_mut(&resident.id)
                && let Some(b) = r.prepaid_balance.as_mut()
            {
                *b -= a.self_pay;
            }
        }
        results.push(result);
    }
    Ok(BatchResult { results })
}
