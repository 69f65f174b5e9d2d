//! The check-in decision, pure: per-frame observations go into a [`Tracker`] that confirms a
//! resident only when the same resident wins `k` of the last `n` frames, every one of them live
//! (a frame is only embedded and matched after it passed liveness) and no spoof frame in the
//! window; then a per-resident cooldown keeps an elder standing at the counter from being charged
//! twice. Unknown faces and spoofs never settle anything; they only change what the screen says.
//!
//! [`prepare`] turns a confirmed resident into the settlement: the attempt in the configured local
//! time, the policy in force ([`Policy::select`]), [`settle::decide`] with the local history (the
//! same rules as the server), and the [`CheckinView`] for the screen. Refused attempts (duplicate,
//! outside serving hours, suspended...) are shown but NOT sent as settlements: the server would
//! refuse them too and they carry no money.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, SubsecRound as _, Utc};
use chrono_tz::Tz;
use uuid::Uuid;
use zhucan_domain::api::KioskResident;
use zhucan_domain::api::SettlementItem;
use zhucan_domain::settle::{self, Accepted, Attempt, Decision, Eligibility};
use zhucan_domain::{Canteen, Method, Policy, PriorMeal, ResidentId};

use crate::screen::{CheckinView, Order};
use zhucan_face::quality::Reason;

/// The confirmation rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Frames the same resident must win...
    pub k: usize,
    /// ...out of the last `n` frames.
    pub n: usize,
    /// No second settlement for the same resident by face within this time.
    pub cooldown: chrono::Duration,
    /// Unknown frames in the window before the screen says "unknown".
    pub unknown_after: usize,
    /// Non-live frames in the window before the screen says "not a live face".
    pub spoof_after: usize,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            k: 3,
            n: 5,
            cooldown: chrono::Duration::seconds(10),
            unknown_after: 3,
            spoof_after: 2,
        }
    }
}

/// What one frame showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frame {
    NoFace,
    /// The quality gate refused the frame.
    Poor(Reason),
    /// A face that is not live.
    Spoof,
    /// A live face that matches nobody.
    Unknown,
    /// A live face matched to a resident.
    Match {
        resident: ResidentId,
        score: f32,
        liveness: f32,
    },
}

/// What the screen should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Idle,
    Guiding(Reason),
    /// A resident leads, `votes` of the `k` needed.
    Checking {
        resident: ResidentId,
        votes: usize,
    },
    Unknown,
    Spoof,
    /// Settle for this resident now (face method).
    Confirm {
        resident: ResidentId,
        score: f32,
        liveness: f32,
    },
    /// The resident was settled moments ago: keep the result on screen, settle nothing.
    Cooldown(ResidentId),
}

/// The sliding window of recent frames and the cooldowns.
#[derive(Debug, Clone)]
pub struct Tracker {
    rule: Rule,
    window: VecDeque<Frame>,
    until: HashMap<ResidentId, DateTime<Utc>>,
}

impl Tracker {
    pub fn new(rule: Rule) -> Tracker {
        Tracker {
            rule,
            window: VecDeque::with_capacity(rule.n),
            until: HashMap::new(),
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Feeds one frame observed at `now`.
    pub fn observe(&mut self, frame: Frame, now: DateTime<Utc>) -> Step {
        self.until.retain(|_, t| *t > now);
        if frame == Frame::NoFace {
            // nobody there: the next face is a new person
            self.window.clear();
            return Step::Idle;
        }
        if self.window.len() == self.rule.n.max(1) {
            self.window.pop_front();
        }
        self.window.push_back(frame);
        let spoofs = self
            .window
            .iter()
            .filter(|f| matches!(f, Frame::Spoof))
            .count();
        if let Frame::Match { resident, .. } = frame {
            if self.until.contains_key(&resident) {
                return Step::Cooldown(resident);
            }
            let wins: Vec<(f32, f32)> = self
                .window
                .iter()
                .filter_map(|f| match f {
                    Frame::Match {
                        resident: r,
                        score,
                        liveness,
                    } if *r == resident => Some((*score, *liveness)),
                    _ => None,
                })
                .collect();
            if wins.len() >= self.rule.k && spoofs == 0 {
                let n = wins.len() as f32;
                let score = wins.iter().map(|w| w.0).sum::<f32>() / n;
                let liveness = wins.iter().map(|w| w.1).fold(f32::INFINITY, f32::min);
                self.window.clear();
                self.until.insert(resident, now + self.rule.cooldown);
                return Step::Confirm {
                    resident,
                    score,
                    liveness,
                };
            }
            if spoofs >= self.rule.spoof_after {
                return Step::Spoof;
            }
            return Step::Checking {
                resident,
                votes: wins.len(),
            };
        }
        if spoofs >= self.rule.spoof_after {
            return Step::Spoof;
        }
        let unknown = self
            .window
            .iter()
            .filter(|f| matches!(f, Frame::Unknown))
            .count();
        match frame {
            Frame::Unknown if unknown >= self.rule.unknown_after => Step::Unknown,
            Frame::Poor(r) => Step::Guiding(r),
            Frame::Spoof | Frame::Unknown => Step::Checking {
                resident: ResidentId(0),
                votes: 0,
            },
            Frame::NoFace | Frame::Match { .. } => Step::Idle,
        }
    }
}

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

    fn m(r: i64) -> Frame {
        Frame::Match {
            resident: ResidentId(r),
            score: 0.8,
            liveness: 0.99,
        }
    }

    /// Feeds frames 100 ms apart; returns the steps.
    fn run(tr: &mut Tracker, start: DateTime<Utc>, frames: &[Frame]) -> Vec<Step> {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| tr.observe(*f, start + chrono::Duration::milliseconds(100 * i as i64)))
            .collect()
    }

    fn confirms(steps: &[Step]) -> Vec<i64> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Confirm { resident, .. } => Some(resident.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn table_of_frame_sequences() {
        use Frame::{NoFace, Spoof, Unknown};
        let poor = Frame::Poor(Reason::TooSmall);
        let conf = |r| Step::Confirm {
            resident: ResidentId(r),
            score: 0.8,
            liveness: 0.99,
        };
        let cases: Vec<(&str, Vec<Frame>, Vec<i64>, Step)> = vec![
            (
                "three wins confirm on the third",
                vec![m(1), m(1), m(1)],
                vec![1],
                conf(1),
            ),
            (
                "two wins are not enough",
                vec![m(1), m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 2,
                },
            ),
            (
                "3 of 5 with noise",
                vec![m(1), Unknown, m(2), m(1), m(1)],
                vec![1],
                conf(1),
            ),
            (
                "wins spread over more than 5 frames",
                vec![m(1), Unknown, Unknown, Unknown, m(1), Unknown, m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 2,
                },
            ),
            (
                "a spoof in the window blocks",
                vec![m(1), Spoof, m(1), m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 3,
                },
            ),
            (
                "persisting spoof",
                vec![Spoof, Spoof, Spoof],
                vec![],
                Step::Spoof,
            ),
            (
                "three unknown frames",
                vec![Unknown, Unknown, Unknown],
                vec![],
                Step::Unknown,
            ),
            (
                "poor quality guides",
                vec![poor],
                vec![],
                Step::Guiding(Reason::TooSmall),
            ),
            (
                "no face clears the window",
                vec![m(1), m(1), NoFace, m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 1,
                },
            ),
            (
                "standing on: one settlement",
                vec![m(1); 20],
                vec![1],
                Step::Cooldown(ResidentId(1)),
            ),
            (
                "two people in turn",
                vec![m(1), m(1), m(1), NoFace, m(2), m(2), m(2)],
                vec![1, 2],
                conf(2),
            ),
        ];
        for (name, frames, want, last) in cases {
            let mut tr = Tracker::new(Rule::default());
            let steps = run(&mut tr, t0(), &frames);
            assert_eq!(confirms(&steps), want, "{name}");
            assert_eq!(*steps.last().expect("steps"), last, "{name}");
        }
    }

    #[test]
    fn cooldown_expires_with_the_clock() {
        let mut tr = Tracker::new(Rule::default());
        let steps = run(&mut tr, t0(), &[m(1), m(1), m(1)]);
        assert_eq!(confirms(&steps), vec![1]);
        // 9 s later: still cooling down
        let s = run(
            &mut tr,
            t0() + chrono::Duration::seconds(9),
            &[m(1), m(1), m(1)],
        );
        assert_eq!(confirms(&s), Vec::<i64>::new());
        // 11 s later: a new confirmation (the domain's duplicate rule then refuses the meal)
        let s = run(
            &mut tr,
            t0() + chrono::Duration::seconds(11),
            &[m(1), m(1), m(1)],
        );
        assert_eq!(confirms(&s), vec![1]);
    }

    #[test]
    fn confirmation_reports_mean_score_and_lowest_liveness() {
        let mut tr = Tracker::new(Rule::default());
        let f = |s, l| Frame::Match {
            resident: ResidentId(5),
            score: s,
            liveness: l,
        };
        let steps = run(&mut tr, t0(), &[f(0.7, 0.9), f(0.8, 0.8), f(0.9, 0.95)]);
        match steps[2] {
            Step::Confirm {
                score, liveness, ..
            } => {
                assert!((score - 0.8).abs() < 1e-6);
                assert!((liveness - 0.8).abs() < 1e-6);
            }
            other => panic!("expected a confirmation, got {other:?}"),
        }
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
