//! Corrections never delete: a void marks a meal of an open month, or — when the meal's month is
//! closed — leaves it untouched and adds a negative adjustment line to the earliest open month
//! after it. Closing a month freezes every settlement counted in it. Every void (and the
//! adjustment it becomes) is written to the audit log in the same transaction.
//!
//! Four-eyes ([`FourEyes`], [`request_void`]): a correction whose subsidy is above a limit, or
//! of a meal older than a number of days, is not applied by the one who asks for it: it waits
//! as a pending correction until a second person, never the requester, approves it (the void
//! is then applied in the same transaction) or rejects it.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;
use uuid::Uuid;
use zhucan_domain::api::{AdjustmentLine, Amounts, Correction, CorrectionDecided, VoidResult};
use zhucan_domain::{Fen, Payment};

use crate::db::audit::{self, Actor};
use crate::db::{self, Tx};
use crate::period::parse_month;

fn next_month(s: &str) -> Option<String> {
    let (y, m) = parse_month(s)?;
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Some(format!("{y:04}-{m:02}"))
}

/// The earliest month after `month` that is not closed.
pub fn earliest_open_after(month: &str, closed: &BTreeSet<String>) -> Option<String> {
    let mut m = next_month(month)?;
    while closed.contains(&m) {
        m = next_month(&m)?;
    }
    Some(m)
}

/// Voids an accepted meal. Never deletes. In an open month the meal is marked voided (and a
/// prepaid self-pay goes back to the balance); in a closed month an adjustment lands in the
/// earliest open month after it. `by` goes in the `voided_by`/`created_by` column, `actor` in
/// the audit log.
pub fn void(
    tx: &Tx<'_>,
    id: Uuid,
    reason: &str,
    by: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> db::Result<VoidResult> {
    let out = void_unaudited(tx, id, reason, by, now)?;
    let at = zhucan_platform::stamp(now);
    let (action, detail) = match &out.adjustment {
        None => (
            "settlement.void",
            json!({ "reason": reason, "effect": out.effect }),
        ),
        Some(a) => (
            "settlement.adjust",
            json!({
                "reason": reason,
                "effect": out.effect,
                "adjustment": a.id,
                "period": a.period,
                "original_period": a.original_period,
                "subsidy": a.amounts.subsidy,
            }),
        ),
    };
    audit::append(tx, &at, actor, action, &format!("settlement:{id}"), &detail)?;
    Ok(out)
}

fn void_unaudited(
    tx: &Tx<'_>,
    id: Uuid,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> db::Result<VoidResult> {
    let t = voidable(tx, id)?;
    let at = zhucan_platform::stamp(now);
    let closed = db::months::closed(tx)?;
    if !closed.contains(&t.period) {
        db::settlements::mark_voided(tx, id, &at, reason, by)?;
        db::push::enqueue(tx, &id.to_string(), "void", &at)?;
        if t.payment == Some(Payment::Prepaid) && t.amounts.self_pay != Fen::ZERO {
            db::settlements::refund_prepaid(tx, t.resident_id, t.amounts.self_pay, &at)?;
        }
        return Ok(VoidResult {
            settlement_id: id,
            effect: "voided".into(),
            adjustment: None,
        });
    }
    let period = earliest_open_after(&t.period, &closed)
        .ok_or_else(|| db::Error::other("no open month after a closed one"))?;
    let a = t.amounts;
    let mut line = AdjustmentLine {
        id: 0,
        settlement_id: id,
        period,
        original_period: t.period.clone(),
        canteen_id: t.canteen_id,
        resident_id: t.resident_id,
        funding_town: t.funding_town.clone(),
        reason: reason.to_owned(),
        amounts: Amounts {
            county: -a.county,
            canteen: -a.canteen,
            delivery_fee: -a.delivery_fee,
            delivery_subsidy: -a.delivery_subsidy,
            operating: -a.operating,
            meals: -a.meals,
            subsidised_meals: -a.subsidised_meals,
            price: -a.price,
            subsidy: -a.subsidy,
            self_pay: -a.self_pay,
            city: -a.city,
            town: -a.town,
            other: -a.other,
        },
    };
    let source = t.operating_source.as_deref();
    line.id = db::settlements::insert_adjustment(tx, &line, source, &at, by)?;
    db::push::enqueue(tx, &id.to_string(), "void", &at)?;
    if t.payment == Some(Payment::Prepaid) && a.self_pay != Fen::ZERO {
        db::settlements::refund_prepaid(tx, t.resident_id, a.self_pay, &at)?;
    }
    Ok(VoidResult {
        settlement_id: id,
        effect: "adjusted".into(),
        adjustment: Some(line),
    })
}

/// Closes `month` in `tx`, audited (`month.close`). When red flags of the month were not
/// reviewed, the close needs `open_flags_reason`; the flags left open and the reason go into the
/// audit entry.
pub fn close_month(
    tx: &Tx<'_>,
    month: &str,
    at: &str,
    by: &str,
    actor: &Actor,
    open_flags_reason: Option<&str>,
    rules: &crate::flags::Rules,
) -> db::Result<()> {
    if db::months::is_closed(tx, month)? {
        return Err(db::Error::Conflict(format!(
            "month {month} is already closed"
        )));
    }
    let open: Vec<String> = crate::flags::compute(tx, month, None, rules)?
        .into_iter()
        .filter(|f| f.review.is_none())
        .map(|f| f.key)
        .collect();
    let reason = open_flags_reason.map(str::trim).filter(|r| !r.is_empty());
    if !open.is_empty() && reason.is_none() {
        return Err(db::Error::invalid(
            "open_flags_reason",
            format!(
                "{} red flags of {month} are not reviewed (first: {}): review them, or give \
                 the reason to close anyway",
                open.len(),
                open[0]
            ),
        ));
    }
    db::months::close(tx, month, at, by)?;
    audit::append(
        tx,
        at,
        actor,
        "month.close",
        &format!("month:{month}"),
        &json!({ "closed_by": by, "open_flags": open, "open_flags_reason": reason }),
    )?;
    Ok(())
}

/// The meal to void, if it may be voided: accepted, and neither voided nor adjusted yet.
fn voidable(tx: &Tx<'_>, id: Uuid) -> db::Result<db::settlements::VoidTarget> {
    let t = db::settlements::void_target(tx, id)?;
    if t.outcome != "accepted" {
        return Err(db::Error::Conflict(
            "only accepted meals can be voided".into(),
        ));
    }
    if t.voided || db::settlements::has_adjustment(tx, id)? {
        return Err(db::Error::Conflict("this meal is already voided".into()));
    }
    Ok(t)
}

/// Four-eyes: when a correction needs a second person. Either condition is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FourEyes {
    /// A correction whose subsidy is above this many fen.
    pub above_fen: i64,
    /// A correction of a meal served more than this many days before today (local dates).
    pub after_days: u32,
}

impl Default for FourEyes {
    fn default() -> FourEyes {
        FourEyes {
            above_fen: 5000,
            after_days: 7,
        }
    }
}

impl FourEyes {
    /// Why a correction of a meal with `subsidy`, served on `served`, needs a second person
    /// when today is `today`: `above_amount`, `older_than_days`, both or none.
    pub fn reasons(&self, subsidy: Fen, served: NaiveDate, today: NaiveDate) -> Vec<&'static str> {
        let mut why = Vec::new();
        if subsidy.0 > self.above_fen {
            why.push("above_amount");
        }
        if (today - served).num_days() > i64::from(self.after_days) {
            why.push("older_than_days");
        }
        why
    }
}

/// What became of a correction request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Small and recent: applied at once, as a one-person void always was.
    Applied(VoidResult),
    /// Waits for a second person.
    Pending(Correction),
}

/// The message of the refusal when the requester decides their own correction.
pub const SAME_PERSON: &str =
    "the person who asked for a correction cannot decide it; a second person must";

/// Who asks and who decides: `requester`/`decider` is the identity compared for four-eyes
/// (`admin` for the administrator's token, `user:<name>` for a dashboard user).
pub struct Person<'a> {
    pub identity: &'a str,
    pub actor: &'a Actor,
}

/// A void asked for by `who`. Small and recent (see [`FourEyes`]): applied at once with `by` in
/// `voided_by`. Otherwise recorded as a pending correction (audited `correction.requested`) that
/// a second person approves or rejects. A meal with a pending correction cannot be voided again.
#[allow(clippy::too_many_arguments)]
pub fn request_void(
    tx: &Tx<'_>,
    id: Uuid,
    reason: &str,
    by: &str,
    who: &Person<'_>,
    rules: &FourEyes,
    tz: Tz,
    now: DateTime<Utc>,
) -> db::Result<Requested> {
    if db::corrections::pending_for(tx, id)?.is_some() {
        return Err(db::Error::Conflict(
            "a correction of this meal is already awaiting a second approval".into(),
        ));
    }
    let t = voidable(tx, id)?;
    let facts = db::corrections::meal_facts(tx, id)?;
    let served: NaiveDate = facts
        .local_date
        .parse()
        .map_err(|_| db::Error::other(format!("settlement {id}: bad local_date")))?;
    let today = now.with_timezone(&tz).date_naive();
    let why = rules.reasons(facts.subsidy, served, today);
    if why.is_empty() {
        return void(tx, id, reason, by, who.actor, now).map(Requested::Applied);
    }
    let kind = if db::months::closed(tx)?.contains(&t.period) {
        "adjustment"
    } else {
        "void"
    };
    let at = zhucan_platform::stamp(now);
    let cid = db::corrections::insert(tx, id, kind, reason, who.identity, &at)?;
    audit::append(
        tx,
        &at,
        who.actor,
        "correction.requested",
        &format!("settlement:{id}"),
        &json!({
            "correction": cid, "kind": kind, "reason": reason, "requested_by": who.identity,
            "subsidy": facts.subsidy, "local_date": facts.local_date, "why": why,
        }),
    )?;
    Ok(Requested::Pending(
        db::corrections::get(tx, cid)?.correction,
    ))
}

/// Approves pending correction `cid` as `who`, a different person from the requester, and
/// applies the void (or adjustment) exactly as [`void`] does, in the same transaction. The
/// void's `voided_by` names both; the audit log has `correction.approved` (with the requester)
/// and then the void's own entry, both under the approver.
pub fn approve(
    tx: &Tx<'_>,
    cid: i64,
    who: &Person<'_>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> db::Result<CorrectionDecided> {
    let c = decide(tx, cid, "approved", who, note, now)?;
    let by = format!(
        "{}（复核 approved; requested by {}）",
        who.identity, c.requested_by
    );
    let applied = void(tx, c.settlement_id, &c.reason, &by, who.actor, now)?;
    let correction = db::corrections::get(tx, cid)?.correction;
    Ok(CorrectionDecided {
        correction,
        applied: Some(applied),
    })
}

/// Rejects pending correction `cid` as `who` (not the requester) with `note`: the meal stands.
pub fn reject(
    tx: &Tx<'_>,
    cid: i64,
    who: &Person<'_>,
    note: &str,
    now: DateTime<Utc>,
) -> db::Result<CorrectionDecided> {
    decide(tx, cid, "rejected", who, Some(note), now)?;
    Ok(CorrectionDecided {
        correction: db::corrections::get(tx, cid)?.correction,
        applied: None,
    })
}

fn decide(
    tx: &Tx<'_>,
    cid: i64,
    state: &str,
    who: &Person<'_>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> db::Result<Correction> {
    let c = db::corrections::get(tx, cid)?.correction;
    if c.state != "pending" {
        return Err(db::Error::Conflict(format!(
            "correction {cid} is already {}",
            c.state
        )));
    }
    if c.requested_by == who.identity {
        return Err(db::Error::Forbidden(SAME_PERSON.into()));
    }
    let at = zhucan_platform::stamp(now);
    if !db::corrections::decide(tx, cid, state, who.identity, &at, note)? {
        return Err(db::Error::Conflict(format!(
            "correction {cid} is no longer pending"
        )));
    }
    audit::append(
        tx,
        &at,
        who.actor,
        &format!("correction.{state}"),
        &format!("settlement:{}", c.settlement_id),
        &json!({
            "correction": cid, "kind": c.kind, "reason": c.reason,
            "requested_by": c.requested_by, "requested_at": c.requested_at,
            "decided_by": who.identity, "note": note, "subsidy": c.subsidy,
        }),
    )?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_roll_over() {
        assert_eq!(parse_month("2026-01"), Some((2026, 1)));
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("2026-1"), None);
        let closed: BTreeSet<String> = ["2026-01".to_owned(), "2026-02".to_owned()].into();
        assert_eq!(
            earliest_open_after("2025-12", &closed),
            Some("2026-03".into())
        );
        assert_eq!(
            earliest_open_after("2026-03", &closed),
            Some("2026-04".into())
        );
    }

    #[test]
    fn four_eyes_takes_a_subsidy_above_the_limit_or_a_meal_older_than_the_days() {
        let r = FourEyes::default();
        assert_eq!((r.above_fen, r.after_days), (5000, 7));
        let d = |s: &str| s.parse::<NaiveDate>().expect("date");
        let today = d("2026-03-15");
        assert!(r.reasons(Fen(5000), d("2026-03-08"), today).is_empty());
        assert_eq!(
            r.reasons(Fen(5001), d("2026-03-15"), today),
            ["above_amount"]
        );
        assert_eq!(
            r.reasons(Fen(800), d("2026-03-07"), today),
            ["older_than_days"]
        );
        assert_eq!(
            r.reasons(Fen(9000), d("2026-02-01"), today),
            ["above_amount", "older_than_days"]
        );
    }
}
