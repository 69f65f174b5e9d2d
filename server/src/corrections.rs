//! Corrections never delete: a void marks a meal of an open month, or — when the meal's month is
//! closed — leaves it untouched and adds a negative adjustment line to the earliest open month
//! after it. Closing a month freezes every settlement counted in it. Every void (and the
//! adjustment it becomes) is written to the audit log in the same transaction.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use uuid::Uuid;
use zhucan_domain::api::{AdjustmentLine, Amounts, VoidResult};
use zhucan_domain::{Fen, Payment};

use crate::db::audit::{self, Actor};
use crate::db::{self, Tx};

/// Parses `YYYY-MM` (a real month between 2000 and 2999).
pub fn parse_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    ((2000..3000).contains(&y) && (1..=12).contains(&m)).then_some((y, m))
}

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
    let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
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
    let t = db::settlements::void_target(tx, id)?;
    if t.outcome != "accepted" {
        return Err(db::Error::Conflict(
            "only accepted meals can be voided".into(),
        ));
    }
    if t.voided || db::settlements::has_adjustment(tx, id)? {
        return Err(db::Error::Conflict("this meal is already voided".into()));
    }
    let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
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
    line.id = db::settlements::insert_adjustment(tx, &line, &at, by)?;
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
}
