//! The check-in, pure: [`tracker`] confirms a resident from the camera's frames; [`prepare`]
//! turns a confirmed resident (or a card, or staff) into the settlement: the attempt in the
//! configured local time, the policy in force ([`Policy::select`]), [`settle::decide`] with the
//! local history (the same rules as the server), and the [`CheckinView`] for the screen. Refused
//! attempts (duplicate, outside serving hours, suspended...) are shown but NOT sent as
//! settlements: the server would refuse them too and they carry no money.

mod tracker;

pub use tracker::{Frame, Rule, Step, Tracker};

use chrono::{DateTime, SubsecRound as _, Utc};
use chrono_tz::Tz;
use uuid::Uuid;
use zhucan_domain::api::KioskResident;
use zhucan_domain::api::SettlementItem;
use zhucan_domain::settle::{self, Accepted, Attempt, Decision, Eligibility};
use zhucan_domain::{Canteen, Method, Policy, PriorMeal};

use crate::screen::{CheckinView, Order};

/// A decided check-in: the decision, and the settlement item when it was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub decision: Decision,
    /// `Some` only for an accepted meal: what goes into the outbox.
    pub item: Option<SettlementItem>,
    pub view: CheckinView,
}

/// How the resident was identified, with what the server needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub enum How {
    Face {
        score: f32,
        liveness: f32,
    },
    Card,
    Staff {
        reason: String,
    },
    /// 代取: a registered carer's own card, collecting the meal of a resident linked to them.
    Proxy {
        carer_id: i64,
        carer_name: String,
    },
}

/// A score as sent: clamped to 0..=1 and rounded to 4 decimals. The item is signed over its
/// JSON-visible values, so they must survive a JSON round trip bit for bit; serde_json (without
/// its `float_roundtrip` feature) parses a long decimal like `0.9700000286102295` (0.97f32 as
/// f64) one ulp off, but a short one like `0.97` exactly.
pub fn wire_score(x: f32) -> f64 {
    (f64::from(x.clamp(0.0, 1.0)) * 10_000.0).round() / 10_000.0
}

/// Decides a check-in with the local data, exactly as the server will. `order` is what the
/// counter rang up (price of what was taken, delivery); its price is signed with the meal. `tz`:
/// the canteen's time zone (the kiosk's configuration).
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    resident: &KioskResident,
    canteen: &Canteen,
    policies: &[Policy],
    history: &[PriorMeal],
    how: &How,
    order: Order,
    tz: Tz,
    now: DateTime<Utc>,
    id: Uuid,
) -> Prepared {
    // whole milliseconds: the signed record survives any store that keeps milliseconds
    let served_at = now.trunc_subsecs(3).with_timezone(&tz).fixed_offset();
    let method = match how {
        How::Face { .. } => Method::Face,
        How::Card | How::Proxy { .. } => Method::Card,
        How::Staff { .. } => Method::Staff,
    };
    let proxy_carer_id = match how {
        How::Proxy { carer_id, .. } => Some(*carer_id),
        _ => None,
    };
    let attempt = Attempt {
        served_at: served_at.naive_local(),
        method,
        delivered: order.delivered,
        proxy: proxy_carer_id.is_some(),
        counter_price: order.price,
    };
    let policy = Policy::select(policies, served_at.date_naive());
    let decision = settle::decide(policy, &resident.diner, canteen, &attempt, history);
    let item = decision.accepted().map(|_| SettlementItem {
        id,
        resident_id: resident.id(),
        canteen_id: canteen.id,
        served_at,
        method,
        match_score: match how {
            How::Face { score, .. } => Some(wire_score(*score)),
            _ => None,
        },
        liveness_score: match how {
            How::Face { liveness, .. } => Some(wire_score(*liveness)),
            _ => None,
        },
        delivered: order.delivered,
        staff_reason: match how {
            How::Staff { reason } => Some(reason.clone()),
            _ => None,
        },
        proxy_carer_id,
        counter_price: order.price,
        signed: None,
    });
    let mut view = view(resident, method, &decision);
    if let How::Proxy { carer_name, .. } = how {
        view.proxy_carer = Some(carer_name.clone());
    }
    Prepared {
        decision,
        item,
        view,
    }
}

fn slot_en(slot: zhucan_domain::Slot) -> String {
    slot.as_str().to_owned()
}

/// What the screen shows for a decision.
pub fn view(resident: &KioskResident, method: Method, decision: &Decision) -> CheckinView {
    match decision {
        Decision::Accepted(a) => accepted_view(resident, method, a),
        Decision::Rejected(r) => {
            let slot = match r {
                settle::Rejection::Duplicate { slot } => Some(*slot),
                _ => None,
            };
            CheckinView {
                resident_id: resident.id(),
                name: resident.name.clone(),
                slot_zh: slot.map(|s| s.label_zh().to_owned()).unwrap_or_default(),
                slot_en: slot.map(slot_en).unwrap_or_default(),
                price: zhucan_domain::Fen::ZERO,
                subsidy: zhucan_domain::Fen::ZERO,
                self_pay: zhucan_domain::Fen::ZERO,
                payment: String::new(),
                prepaid_balance: resident.diner.prepaid_balance,
                tier_name: None,
                method: method.as_str().to_owned(),
                rejection: Some(r.as_str().to_owned()),
                rejection_zh: Some(r.label_zh().to_owned()),
                proxy_carer: None,
                delivery_fee: zhucan_domain::Fen::ZERO,
                delivery_subsidy: zhucan_domain::Fen::ZERO,
            }
        }
    }
}

fn accepted_view(resident: &KioskResident, method: Method, a: &Accepted) -> CheckinView {
    let prepaid_balance = match a.payment {
        zhucan_domain::Payment::Prepaid => resident.diner.prepaid_balance.map(|b| b - a.self_pay),
        zhucan_domain::Payment::Cash => resident.diner.prepaid_balance,
    };
    CheckinView {
        resident_id: resident.id(),
        name: resident.name.clone(),
        slot_zh: a.slot.label_zh().to_owned(),
        slot_en: slot_en(a.slot),
        price: a.price,
        subsidy: a.subsidy,
        self_pay: a.self_pay,
        payment: a.payment.as_str().to_owned(),
        prepaid_balance,
        tier_name: match &a.eligibility {
            Eligibility::Subsidised { tier_name, .. } => Some(tier_name.clone()),
            Eligibility::NotEligible { .. } => None,
        },
        method: method.as_str().to_owned(),
        rejection: None,
        rejection_zh: None,
        proxy_carer: None,
        delivery_fee: a.delivery_fee,
        delivery_subsidy: a.delivery_subsidy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Asia::Shanghai;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
            .single()
            .expect("time")
    }

    fn resident(prepaid: Option<i64>) -> KioskResident {
        crate::store::testing::resident(serde_json::json!({"prepaid_balance": prepaid}))
    }

    fn canteen() -> Canteen {
        serde_json::from_value(serde_json::json!({
            "id": 1, "name": "宾王", "kind": "care_centre", "town": "choucheng",
            "operator": "x", "operator_kind": "contracted",
            "slots": [{"slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1200}],
            "delivery_surcharge": null
        }))
        .expect("canteen")
    }

    #[test]
    fn prepare_decides_in_shanghai_time_with_local_history() {
        let policies = vec![Policy::example_yiwu()];
        let r = resident(Some(10_000));
        let c = canteen();
        let id = Uuid::now_v7();
        // 04:00 UTC = 12:00 in Shanghai: lunch
        let how = How::Face {
            score: 0.8,
            liveness: 0.99,
        };
        let p = prepare(
            &r,
            &c,
            &policies,
            &[],
            &how,
            Order::default(),
            Shanghai,
            t0(),
            id,
        );
        let item = p.item.expect("accepted");
        assert_eq!(item.id, id);
        assert_eq!(item.served_at.to_rfc3339(), "2026-03-15T12:00:00+08:00");
        assert_eq!(item.method, Method::Face);
        assert_eq!(p.view.slot_zh, "午餐");
        assert_eq!(p.view.price.0, 1200);
        assert_eq!(p.view.subsidy + p.view.self_pay, p.view.price);
        assert!(p.view.subsidy.0 > 0, "an 81-year-old is subsidised");
        assert_eq!(p.view.payment, "prepaid");
        assert_eq!(
            p.view.prepaid_balance,
            Some(zhucan_domain::Fen(10_000) - p.view.self_pay)
        );
        // the same meal again: refused as a duplicate, nothing to send
        let a = p.decision.accepted().expect("accepted");
        let hist = [PriorMeal {
            date: a.date,
            slot: a.slot,
            subsidy: a.subsidy,
        }];
        let again = prepare(
            &r,
            &c,
            &policies,
            &hist,
            &How::Card,
            Order::default(),
            Shanghai,
            t0(),
            Uuid::now_v7(),
        );
        assert!(again.item.is_none());
        assert_eq!(again.view.rejection.as_deref(), Some("duplicate"));
        // outside serving hours (20:00 in Shanghai)
        let late = t0() + chrono::Duration::hours(8);
        let p = prepare(
            &r,
            &c,
            &policies,
            &[],
            &How::Card,
            Order::default(),
            Shanghai,
            late,
            Uuid::now_v7(),
        );
        assert_eq!(p.view.rejection.as_deref(), Some("outside_slot_window"));
        // staff check-in carries the reason
        let how = How::Staff {
            reason: "camera broken".into(),
        };
        let p = prepare(
            &r,
            &c,
            &policies,
            &[],
            &how,
            Order::default(),
            Shanghai,
            t0(),
            Uuid::now_v7(),
        );
        assert_eq!(
            p.item.expect("accepted").staff_reason.as_deref(),
            Some("camera broken")
        );
    }

    #[test]
    fn scores_survive_the_json_round_trip_bit_for_bit() {
        // the signature covers the parsed values: what is read back must equal what was signed
        let mut n = 0;
        for i in 0..=20_000u32 {
            let x = i as f32 / 20_000.0 + 1.0e-7 * (i % 7) as f32;
            let w = wire_score(x);
            let back: f64 =
                serde_json::from_str(&serde_json::to_string(&w).expect("json")).expect("parse");
            assert_eq!(back.to_bits(), w.to_bits(), "score {x}");
            assert!((w - f64::from(x.clamp(0.0, 1.0))).abs() <= 0.5e-4);
            n += 1;
        }
        assert_eq!(n, 20_001);
        assert_eq!(wire_score(0.97), 0.97);
        // and the time is whole milliseconds
        let r = resident(None);
        let c: Canteen = serde_json::from_value(serde_json::json!({"id": 1, "name": "宾王",
            "kind": "care_centre", "town": "choucheng", "operator": "x",
            "operator_kind": "contracted", "delivery_surcharge": null,
            "slots": [{"slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1200}]}))
        .expect("canteen");
        let at = t0() + chrono::Duration::nanoseconds(123_456_789);
        let how = How::Face {
            score: 0.8123456,
            liveness: 0.97,
        };
        let p = prepare(
            &r,
            &c,
            &[Policy::example_yiwu()],
            &[],
            &how,
            Order::default(),
            Shanghai,
            at,
            Uuid::now_v7(),
        );
        let item = p.item.expect("accepted");
        assert_eq!(item.served_at.timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(item.match_score, Some(0.8123));
        let back: SettlementItem =
            serde_json::from_str(&serde_json::to_string(&item).expect("json")).expect("parse");
        assert_eq!(back, item);
        assert_eq!((wire_score(-1.0), wire_score(2.0)), (0.0, 1.0));
    }
}
