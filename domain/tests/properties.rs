//! Property tests of the settlement decision: over random residents, canteens, prices and a month
//! of check-in attempts (each accepted meal fed back into the history), the money always adds
//! up, the caps are never exceeded, rejections change nothing and the decision is deterministic.

mod common;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use proptest::sample::subsequence;
use zhucan_domain::policy::{Benefit, FundingShare, SubsidyTown, Tier};
use zhucan_domain::resident::Consent;
use zhucan_domain::settle::{self, Accepted, Attempt, Funding};
use zhucan_domain::{
    Canteen, CanteenId, CanteenKind, Category, Decision, Eligibility, Fen, FundingSource, Method,
    OperatorKind, Payment, Policy, PriorMeal, Resident, ResidentId, ResidentStatus, Sex, Slot,
    TownCode,
};

use common::{d, t, window};

const TOWNS: [&str; 3] = ["choucheng", "futian", "fotang"];
const CATEGORIES: [&str; 9] = [
    "dibao",
    "dibao_edge",
    "tekun",
    "gugua",
    "disabled",
    "disabled_2",
    "severe_disability",
    "youfu",
    "shidu",
];
const YEAR: i32 = 2025;
const MONTH: u32 = 7;

const PER_DAY_POLICY: &str = r#"{
  "id": "per-day", "version": 1, "name": "每日定额", "effective_from": "2025-01-01",
  "subsidy_town": "residence",
  "tiers": [
    { "code": "daily", "name": "每日", "conditions": { "min_age": 60 },
      "benefit": { "per_day": { "fen": 1000, "slots": ["breakfast", "lunch", "dinner"] } },
      "funding": [ { "source": "town", "percent": 33 }, { "source": "city", "percent": 67 } ] },
    { "code": "tekun", "name": "特困", "conditions": { "any_categories": ["tekun"] },
      "benefit": { "per_meal": { "lunch": 1100, "dinner": 700 } },
      "funding": [ { "source": "other", "fen": 333 }, { "source": "city", "percent": 100 } ],
      "caps": { "per_day": 1 } }
  ]
}"#;

/// The policies the properties run under: the two examples and variants with other caps,
/// areas, switches and benefit kinds.
fn policies() -> Vec<Policy> {
    let yiwu = Policy::example_yiwu();
    let shenzhen = Policy::example_shenzhen();

    let mut yiwu_caps = yiwu.clone();
    for t in &mut yiwu_caps.tiers {
        t.caps.per_slot_per_day = 2;
        t.caps.per_day = Some(3);
        t.caps.per_month = Some(12);
    }
    let mut shenzhen_month = shenzhen.clone();
    for t in &mut shenzhen_month.tiers {
        t.caps.per_month = Some(5);
    }
    shenzhen_month.area_towns = vec![TownCode::new("choucheng"), TownCode::new("futian")];
    let mut yiwu_residence = yiwu.clone();
    yiwu_residence.subsidy_town = SubsidyTown::Residence;
    yiwu_residence.area_towns = vec![TownCode::new("choucheng")];
    if let Some(t) = yiwu_residence.tiers.iter_mut().find(|t| t.code == "age_80") {
        t.conditions.canteens = vec![CanteenId(1), CanteenId(2)];
    }

    let all = vec![
        yiwu,
        shenzhen,
        Policy::parse(PER_DAY_POLICY).unwrap(),
        yiwu_caps,
        shenzhen_month,
        yiwu_residence,
    ];
    for p in &all {
        p.validate().unwrap();
    }
    all
}

fn arb_status() -> impl Strategy<Value = ResidentStatus> {
    prop_oneof![
        8 => Just(ResidentStatus::Active),
        1 => Just(ResidentStatus::Suspended),
        1 => (1u32..=31).prop_map(|day| ResidentStatus::Deceased { date: d(YEAR, MONTH, day) }),
    ]
}

fn arb_town() -> impl Strategy<Value = TownCode> {
    prop::sample::select(&TOWNS[..]).prop_map(TownCode::new)
}

prop_compose! {
    fn arb_resident()(
        age in 50i32..=110,
        day_of_year in 0u64..366,
        categories in subsequence(&CATEGORIES[..], 0..=3),
        local in prop::bool::weighted(0.8),
        registered in arb_town(),
        residence in arb_town(),
        status in arb_status(),
        face_enrolled in any::<bool>(),
        face_consent in any::<bool>(),
        prepaid in prop::option::of(0i64..4000),
    ) -> Resident {
        let birth = d(YEAR - age, 1, 1) + Days::new(day_of_year);
        Resident {
            id: ResidentId(1),
            name: "李大爷".into(),
            sex: Sex::Male,
            birth_date: birth,
            local_registration: local,
            registered_town: registered,
            residence_town: residence,
            categories: categories.into_iter().map(Category::new).collect(),
            status,
            card_code: "c1".into(),
            designated_canteen: None,
            prepaid_balance: prepaid.map(Fen),
            consent: Consent { face_enrolment: face_consent, template_sharing: false },
            face_enrolled,
        }
    }
}

/// Prices run from 0 to ¥25, so many are below the benefits (up to ¥15).
fn arb_price() -> impl Strategy<Value = Option<i64>> {
    prop::option::weighted(
        0.85,
        prop_oneof![0i64..=2500, Just(0), Just(1), Just(1499), Just(1501)],
    )
}

prop_compose! {
    fn arb_canteen(id: i64)(
        town in arb_town(),
        breakfast in arb_price(),
        lunch in arb_price(),
        dinner in arb_price(),
        surcharge in prop::option::of(0i64..=500),
    ) -> Canteen {
        let mut slots = Vec::new();
        if let Some(p) = breakfast {
            slots.push(window(Slot::Breakfast, t(6, 30), t(8, 30), p));
        }
        if let Some(p) = lunch {
            slots.push(window(Slot::Lunch, t(10, 30), t(13, 0), p));
        }
        if let Some(p) = dinner {
            slots.push(window(Slot::Dinner, t(16, 30), t(18, 30), p));
        }
        Canteen {
            id: CanteenId(id),
            name: format!("canteen {id}"),
            kind: CanteenKind::Station,
            town,
            operator: "op".into(),
            operator_kind: OperatorKind::VillageRun,
            slots,
            delivery_surcharge: surcharge.map(Fen),
            district: None,
        }
    }
}

fn arb_canteens() -> impl Strategy<Value = Vec<Canteen>> {
    (arb_canteen(1), arb_canteen(2), arb_canteen(3)).prop_map(|(a, b, c)| vec![a, b, c])
}

fn arb_method() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::Face), Just(Method::Card), Just(Method::Staff)]
}

/// A time of day: mostly inside a usual window, sometimes anywhere from 05:00 to 21:00.
fn arb_minute() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => 390u32..510,
        3 => 630u32..780,
        2 => 990u32..1110,
        1 => 300u32..1260,
    ]
}

/// One attempt: which canteen, and when / how, within the month (late-posted ones included:
/// the order is random).
fn arb_attempt() -> impl Strategy<Value = (usize, Attempt)> {
    (
        0usize..3,
        1u32..=31,
        arb_minute(),
        arb_method(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(canteen, day, minute, method, delivered)| {
            let served_at: NaiveDateTime =
                d(YEAR, MONTH, day).and_time(t(minute / 60, minute % 60));
            (
                canteen,
                Attempt {
                    served_at,
                    method,
                    delivered,
                    proxy: false,
                    counter_price: None,
                },
            )
        })
}

/// A few days with several attempts each, to stress the same-slot rule.
fn arb_attempts() -> impl Strategy<Value = Vec<(usize, Attempt)>> {
    prop_oneof![
        prop::collection::vec(arb_attempt(), 1..80),
        prop::collection::vec(arb_attempt(), 1..40).prop_map(|v| {
            v.into_iter()
                .map(|(c, mut a)| {
                    let day = 1 + a.served_at.day() % 3;
                    a.served_at = d(YEAR, MONTH, day).and_time(a.served_at.time());
                    (c, a)
                })
                .collect()
        }),
    ]
}

fn tier<'p>(policy: &'p Policy, a: &Accepted) -> Option<&'p Tier> {
    match &a.eligibility {
        Eligibility::Subsidised { tier, .. } => policy.tiers.iter().find(|t| &t.code == tier),
        Eligibility::NotEligible { .. } => None,
    }
}

struct Run {
    decisions: Vec<Decision>,
    history: Vec<PriorMeal>,
}

fn run(policy: &Policy, r: &Resident, canteens: &[Canteen], attempts: &[(usize, Attempt)]) -> Run {
    let mut history = Vec::new();
    let mut decisions = Vec::new();
    for (c, a) in attempts {
        let decision = settle::decide(Some(policy), &r.diner(), &canteens[*c], a, &history);
        if let Decision::Accepted(acc) = &decision {
            history.push(PriorMeal {
                date: acc.date,
                slot: acc.slot,
                subsidy: acc.subsidy,
            });
        }
        decisions.push(decision);
    }
    Run { decisions, history }
}

fn max_cap(mut caps: impl Iterator<Item = Option<u32>>) -> Option<u32> {
    caps.try_fold(0, |acc, c| Some(acc.max(c?)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_month_of_attempts_keeps_every_invariant(
        policy_ix in 0usize..6,
        r in arb_resident(),
        canteens in arb_canteens(),
        attempts in arb_attempts(),
    ) {
        let all = policies();
        let policy = &all[policy_ix];
        let Run { decisions, history } = run(policy, &r, &canteens, &attempts);
        let mut accepted: Vec<(&Accepted, Option<&Tier>)> = Vec::new();
        let mut seen = Vec::new();

        for ((c, a), decision) in attempts.iter().zip(&decisions) {
            let canteen = &canteens[*c];
            // Determinism, and independence from the order of the history.
            let earlier = &history[..seen.len()];
            let again = settle::decide(Some(policy), &r.diner(), canteen, a, earlier);
            prop_assert_eq!(&again, decision);
            let mut reversed = earlier.to_vec();
            reversed.reverse();
            prop_assert_eq!(&settle::decide(Some(policy), &r.diner(), canteen, a, &reversed), decision);

            let Decision::Accepted(acc) = decision else { continue };
            seen.push(());
            let window = canteen.slot_at(a.served_at.time()).expect("accepted inside a window");
            let surcharge = if a.delivered { canteen.delivery_surcharge.unwrap_or(Fen::ZERO) } else { Fen::ZERO };
            prop_assert_eq!(acc.price, window.price + surcharge);
            prop_assert_eq!(acc.slot, window.slot);
            prop_assert_eq!(acc.date, a.served_at.date());
            prop_assert!(acc.subsidy >= Fen::ZERO, "subsidy {:?}", acc.subsidy);
            prop_assert!(acc.subsidy <= acc.price, "subsidy {:?} > price {:?}", acc.subsidy, acc.price);
            prop_assert_eq!(acc.subsidy + acc.self_pay, acc.price);
            prop_assert_eq!(acc.funding.total(), acc.subsidy);
            for s in FundingSource::ALL {
                prop_assert!(acc.funding.get(s) >= Fen::ZERO, "{:?} share negative", s);
            }
            let want_payment = match r.prepaid_balance {
                Some(b) if b >= acc.self_pay => Payment::Prepaid,
                _ => Payment::Cash,
            };
            prop_assert_eq!(acc.payment, want_payment);
            let want_town = match policy.subsidy_town {
                SubsidyTown::Registration => &r.registered_town,
                SubsidyTown::Residence => &r.residence_town,
            };
            prop_assert_eq!(&acc.funding_town, want_town);
            prop_assert_eq!(&acc.policy, &policy.reference());
            // Only active residents (or meals before the death date) are served.
            match r.status {
                ResidentStatus::Active => {}
                ResidentStatus::Deceased { date } => prop_assert!(acc.date < date),
                ResidentStatus::Suspended => prop_assert!(false, "a suspended resident was served"),
            }
            if a.method == Method::Face {
                prop_assert!(r.face_enrolled && r.consent.face_enrolment);
            }
            let t = tier(policy, acc);
            match t {
                Some(t) => {
                    let nominal = t.benefit.nominal(acc.slot, acc.price);
                    prop_assert!(nominal.is_some_and(|n| acc.subsidy <= n), "above the tier's benefit");
                }
                None => {
                    prop_assert_eq!(acc.subsidy, Fen::ZERO);
                    prop_assert_eq!(acc.funding, Funding::default());
                }
            }
            accepted.push((acc, t));
        }

        // The caps, over the whole month.
        let slot_cap = policy.tiers.iter().map(|t| t.caps.per_slot_per_day).max().unwrap_or(1).max(1);
        let default_slot_cap = slot_cap == 1;
        let mut by_slot: BTreeMap<(NaiveDate, Slot), (u32, u32)> = BTreeMap::new();
        let mut by_day: BTreeMap<NaiveDate, Vec<&(&Accepted, Option<&Tier>)>> = BTreeMap::new();
        for entry in &accepted {
            let (acc, _) = entry;
            let counts = by_slot.entry((acc.date, acc.slot)).or_default();
            counts.0 += 1;
            if acc.subsidy > Fen::ZERO {
                counts.1 += 1;
            }
            by_day.entry(acc.date).or_default().push(entry);
        }
        for ((date, slot), (meals, subsidised)) in &by_slot {
            prop_assert!(*meals <= slot_cap, "{} meals in {:?} on {}", meals, slot, date);
            if default_slot_cap {
                prop_assert!(*subsidised <= 1, "{} subsidised meals in {:?} on {}", subsidised, slot, date);
            }
        }
        for (date, meals) in &by_day {
            let subsidised: Vec<_> = meals.iter().filter(|(a, _)| a.subsidy > Fen::ZERO).collect();
            let cap = max_cap(subsidised.iter().map(|(_, t)| t.and_then(|t| t.caps.per_day)));
            if let Some(cap) = cap {
                prop_assert!(subsidised.len() as u32 <= cap, "{} subsidised meals on {}", subsidised.len(), date);
            }
            // A per-day amount is never exceeded.
            for (_, t) in &subsidised {
                if let Some(Benefit::PerDay { fen, .. }) = t.map(|t| &t.benefit) {
                    let total: Fen = meals.iter().map(|(a, _)| a.subsidy).sum();
                    prop_assert!(total <= *fen, "{:?} subsidy on {} above the daily {:?}", total, date, fen);
                }
            }
        }
        let subsidised: Vec<_> = accepted.iter().filter(|(a, _)| a.subsidy > Fen::ZERO).collect();
        if let Some(cap) = max_cap(subsidised.iter().map(|(_, t)| t.and_then(|t| t.caps.per_month))) {
            prop_assert!(subsidised.len() as u32 <= cap, "{} subsidised meals in the month", subsidised.len());
        }

        // A rejected attempt stays rejected, for the same reason, once the month is over.
        for ((c, a), decision) in attempts.iter().zip(&decisions) {
            if let Decision::Rejected(_) = decision {
                prop_assert_eq!(&settle::decide(Some(policy), &r.diner(), &canteens[*c], a, &history), decision);
            }
        }
        // Rejected attempts change nothing: without them, every other decision is the same.
        let kept: Vec<(usize, Attempt)> = attempts
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| matches!(d, Decision::Accepted(_)))
            .map(|(a, _)| *a)
            .collect();
        let replay = run(policy, &r, &canteens, &kept);
        let originally: Vec<&Decision> = decisions.iter().filter(|d| matches!(d, Decision::Accepted(_))).collect();
        prop_assert_eq!(replay.decisions.iter().collect::<Vec<_>>(), originally);
        prop_assert_eq!(replay.history, history);
    }
}

/// Valid funding shares: each source at most once, fixed amounts above 0, at least one percent
/// share, percents adding up to 100.
fn arb_shares() -> impl Strategy<Value = Vec<FundingShare>> {
    let sources = Just(FundingSource::ALL.to_vec()).prop_shuffle();
    (
        sources,
        1usize..=3,
        0usize..=2,
        prop::collection::vec(0u32..=100, 2),
        prop::collection::vec(1i64..2000, 3),
    )
        .prop_map(|(sources, n, fixed, cuts, amounts)| {
            let fixed = fixed.min(n - 1);
            let percents = n - fixed;
            let mut cuts: Vec<u32> = cuts[..percents - 1].to_vec();
            cuts.sort_unstable();
            let mut bounds = vec![0];
            bounds.extend(cuts);
            bounds.push(100);
            let mut shares = Vec::new();
            for (i, source) in sources.into_iter().take(n).enumerate() {
                if i < fixed {
                    shares.push(FundingShare {
                        source,
                        percent: None,
                        fen: Some(Fen(amounts[i])),
                    });
                } else {
                    let k = i - fixed;
                    shares.push(FundingShare {
                        source,
                        percent: Some(bounds[k + 1] - bounds[k]),
                        fen: None,
                    });
                }
            }
            shares
        })
        .prop_shuffle()
}

fn policy_with_funding(shares: &[FundingShare]) -> Policy {
    let mut p = Policy::example_yiwu();
    p.tiers.truncate(1);
    p.tiers[0].funding = shares.to_vec();
    p
}

proptest! {
    #[test]
    fn funding_split_adds_up_and_is_never_negative(shares in arb_shares(), subsidy in 0i64..100_000) {
        policy_with_funding(&shares).validate().expect("the strategy makes valid shares");
        let f = Funding::split(Fen(subsidy), &shares);
        prop_assert_eq!(f.total(), Fen(subsidy));
        for s in FundingSource::ALL {
            prop_assert!(f.get(s) >= Fen::ZERO, "{:?}: {:?}", s, f);
        }
        // Fixed amounts come first, never more than asked; percents share what is left.
        let fixed_total: Fen = shares.iter().filter_map(|s| s.fen).sum();
        let pool = Fen(subsidy) - fixed_total.min(Fen(subsidy));
        let first_percent = shares.iter().find(|s| s.percent.is_some()).unwrap().source;
        let percent_sources = shares.iter().filter(|s| s.percent.is_some()).count() as i64;
        for s in &shares {
            let got = f.get(s.source);
            if let Some(fixed) = s.fen {
                prop_assert!(got <= fixed);
                if Fen(subsidy) >= fixed_total {
                    prop_assert_eq!(got, fixed);
                }
            }
            if let Some(p) = s.percent {
                let exact = pool.percent(p);
                if s.source == first_percent {
                    prop_assert!(got >= exact && got - exact < Fen(percent_sources), "{:?}", f);
                } else {
                    prop_assert_eq!(got, exact);
                }
            }
        }
    }

    #[test]
    fn funding_split_of_the_shipped_tiers_adds_up(subsidy in 0i64..5000) {
        for p in [Policy::example_yiwu(), Policy::example_shenzhen()] {
            for t in &p.tiers {
                let f = Funding::split(Fen(subsidy), &t.funding);
                prop_assert_eq!(f.total(), Fen(subsidy));
                prop_assert!(f.city >= Fen::ZERO && f.town >= Fen::ZERO && f.other >= Fen::ZERO);
            }
        }
    }
}

#[test]
fn every_policy_under_test_subsidises_a_plain_lunch() {
    // A guard against policy variants that subsidise nothing, which would make the properties
    // above hold vacuously.
    let r = Resident {
        status: ResidentStatus::Active,
        local_registration: true,
        registered_town: TownCode::new("choucheng"),
        residence_town: TownCode::new("choucheng"),
        birth_date: d(1940, 1, 1),
        categories: Default::default(),
        id: ResidentId(1),
        name: "x".into(),
        sex: Sex::Female,
        card_code: "c".into(),
        designated_canteen: None,
        prepaid_balance: None,
        consent: Consent::default(),
        face_enrolled: false,
    };
    let c = common::canteen();
    let a = Attempt {
        served_at: d(YEAR, MONTH, 3).and_time(t(11, 0)),
        method: Method::Card,
        delivered: false,
        proxy: false,
        counter_price: None,
    };
    for p in policies() {
        let decision = settle::decide(Some(&p), &r.diner(), &c, &a, &[]);
        let subsidy = decision.accepted().map(|a| a.subsidy);
        assert!(
            subsidy.is_some_and(|s| s > Fen::ZERO),
            "{}: {decision:?}",
            p.id
        );
    }
}
