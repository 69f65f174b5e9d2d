//! Table tests of the subsidy policy engine (`settle::decide`) against the two shipped example
//! policies, the edges of the rules, `Policy::parse`'s errors and `Policy::select`.

mod common;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rstest::rstest;
use serde_json::{Value, json};
use zhucan_domain::policy::{Benefit, Caps, SubsidyTown, Tier};
use zhucan_domain::settle::{self, Attempt, Funding, NotEligible};
use zhucan_domain::{
    Canteen, CanteenId, Decision, Eligibility, Fen, Method, Payment, Policy, PriorMeal, Rejection,
    Resident, ResidentStatus, Slot, TownCode,
};

use common::*;

/// The meal date most cases use (a date with no leap-day subtlety).
fn meal() -> NaiveDate {
    d(2025, 6, 10)
}

fn policy(name: &str) -> Policy {
    match name {
        "yiwu" => Policy::example_yiwu(),
        "shenzhen" => Policy::example_shenzhen(),
        other => panic!("no example policy {other}"),
    }
}

fn decide(p: &Policy, r: &Resident, c: &Canteen, a: &Attempt, history: &[PriorMeal]) -> Decision {
    settle::decide(Some(p), &r.diner(), c, a, history)
}

fn attempt(slot: Slot, date: NaiveDate) -> Attempt {
    match slot {
        Slot::Breakfast => breakfast_on(date),
        Slot::Lunch => lunch_on(date),
        Slot::Dinner => dinner_on(date),
    }
}

fn tier_mut<'p>(p: &'p mut Policy, code: &str) -> &'p mut Tier {
    p.tiers
        .iter_mut()
        .find(|t| t.code == code)
        .expect("tier exists")
}

fn prior(date: NaiveDate, slot: Slot, subsidy: i64) -> PriorMeal {
    PriorMeal {
        date,
        slot,
        subsidy: Fen(subsidy),
    }
}

/// What a decision should come to.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Subsidised under `code`: subsidy, self-pay and the split city / town / other, in fen.
    Tier {
        code: &'static str,
        subsidy: i64,
        self_pay: i64,
        split: [i64; 3],
    },
    /// Served at full price for this reason.
    Full(NotEligible),
}

fn tier(code: &'static str, subsidy: i64, self_pay: i64, split: [i64; 3]) -> Want {
    Want::Tier {
        code,
        subsidy,
        self_pay,
        split,
    }
}

#[track_caller]
fn check(decision: &Decision, want: Want, price: i64) {
    let a = accepted(decision);
    assert_eq!(a.price, Fen(price), "price");
    match want {
        Want::Tier {
            code,
            subsidy,
            self_pay,
            split: [city, town, other],
        } => {
            match &a.eligibility {
                Eligibility::Subsidised { tier, .. } => assert_eq!(tier, code, "tier"),
                e => panic!("expected tier {code}, got {e:?}"),
            }
            assert_eq!(a.subsidy, Fen(subsidy), "subsidy");
            assert_eq!(a.self_pay, Fen(self_pay), "self_pay");
            assert_eq!(
                a.funding,
                Funding {
                    city: Fen(city),
                    town: Fen(town),
                    other: Fen(other),
                    ..Funding::default()
                }
            );
            assert_eq!(a.subsidy + a.self_pay, a.price);
        }
        Want::Full(reason) => {
            assert_eq!(a.eligibility, Eligibility::NotEligible { reason });
            assert_eq!(a.subsidy, Fen::ZERO, "subsidy");
            assert_eq!(a.self_pay, Fen(price), "self_pay");
            assert_eq!(a.funding, Funding::default());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every tier of both example policies. Canteen prices: breakfast 600, lunch 2000, dinner 1800.

#[rstest]
// Yiwu-style: 65+ local, higher tiers for 低保/低保边缘/孤寡, 特困, 90+, 100+; lunch and dinner.
#[case::yiwu_64_too_young("yiwu", 64, &[], Slot::Lunch, Want::Full(NotEligible::NoTier))]
#[case::yiwu_65("yiwu", 65, &[], Slot::Lunch, tier("age_65", 300, 1700, [150, 150, 0]))]
#[case::yiwu_79_dinner("yiwu", 79, &[], Slot::Dinner, tier("age_65", 300, 1500, [150, 150, 0]))]
#[case::yiwu_80("yiwu", 80, &[], Slot::Lunch, tier("age_80", 500, 1500, [250, 250, 0]))]
#[case::yiwu_89_dinner("yiwu", 89, &[], Slot::Dinner, tier("age_80", 500, 1300, [250, 250, 0]))]
#[case::yiwu_90("yiwu", 90, &[], Slot::Lunch, tier("age_90", 800, 1200, [400, 400, 0]))]
#[case::yiwu_99_dinner("yiwu", 99, &[], Slot::Dinner, tier("age_90", 800, 1000, [400, 400, 0]))]
#[case::yiwu_100("yiwu", 100, &[], Slot::Lunch, tier("age_100", 1500, 500, [500, 500, 500]))]
#[case::yiwu_105_dinner("yiwu", 105, &[], Slot::Dinner, tier("age_100", 1500, 300, [500, 500, 500]))]
#[case::yiwu_tekun_60("yiwu", 60, &["tekun"], Slot::Lunch, tier("tekun", 1200, 800, [720, 480, 0]))]
#[case::yiwu_tekun_59("yiwu", 59, &["tekun"], Slot::Lunch, Want::Full(NotEligible::NoTier))]
#[case::yiwu_dibao_60("yiwu", 60, &["dibao"], Slot::Lunch, tier("dibao_gugua", 800, 1200, [400, 400, 0]))]
#[case::yiwu_dibao_edge_70("yiwu", 70, &["dibao_edge"], Slot::Dinner, tier("dibao_gugua", 800, 1000, [400, 400, 0]))]
#[case::yiwu_gugua_75("yiwu", 75, &["gugua"], Slot::Lunch, tier("dibao_gugua", 800, 1200, [400, 400, 0]))]
#[case::yiwu_dibao_59("yiwu", 59, &["dibao"], Slot::Lunch, Want::Full(NotEligible::NoTier))]
#[case::yiwu_dibao_85_beats_age_80("yiwu", 85, &["dibao"], Slot::Lunch, tier("dibao_gugua", 800, 1200, [400, 400, 0]))]
// 就高不重复: a 低保 90-year-old meets dibao_gugua (800) and age_90 (800): one 800, never 1600.
#[case::yiwu_dibao_90_not_summed("yiwu", 90, &["dibao"], Slot::Lunch, tier("dibao_gugua", 800, 1200, [400, 400, 0]))]
#[case::yiwu_many_categories_95("yiwu", 95, &["tekun", "dibao", "gugua"], Slot::Lunch, tier("tekun", 1200, 800, [720, 480, 0]))]
#[case::yiwu_tekun_100("yiwu", 100, &["tekun"], Slot::Lunch, tier("age_100", 1500, 500, [500, 500, 500]))]
#[case::yiwu_unknown_category_70("yiwu", 70, &["youfu"], Slot::Lunch, tier("age_65", 300, 1700, [150, 150, 0]))]
#[case::yiwu_breakfast_not_covered("yiwu", 70, &[], Slot::Breakfast, Want::Full(NotEligible::SlotNotCovered))]
// Shenzhen-style: lunch only; ¥15 for the priority group and 100+, ¥5 for 70–99.
#[case::sz_69("shenzhen", 69, &[], Slot::Lunch, Want::Full(NotEligible::NoTier))]
#[case::sz_70("shenzhen", 70, &[], Slot::Lunch, tier("age_70_99", 500, 1500, [250, 250, 0]))]
#[case::sz_99("shenzhen", 99, &[], Slot::Lunch, tier("age_70_99", 500, 1500, [250, 250, 0]))]
#[case::sz_100("shenzhen", 100, &[], Slot::Lunch, tier("age_100", 1500, 500, [750, 750, 0]))]
#[case::sz_dibao_60("shenzhen", 60, &["dibao"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_dibao_59("shenzhen", 59, &["dibao"], Slot::Lunch, Want::Full(NotEligible::NoTier))]
#[case::sz_tekun_65("shenzhen", 65, &["tekun"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_gugua_65("shenzhen", 65, &["gugua"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_disabled_80("shenzhen", 80, &["disabled"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
// The roster may record only the level of 失能; the policy's `disabled` means any level.
#[case::sz_disabled_level_80("shenzhen", 80, &["disabled_3"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_disabled_level_65("shenzhen", 65, &["disabled_1"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_severe_disability_75("shenzhen", 75, &["severe_disability"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
// 就高不重复: priority and age_100 both give 1500; the first listed wins, once.
#[case::sz_gugua_100_not_summed("shenzhen", 100, &["gugua"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_priority_beats_age_75("shenzhen", 75, &["dibao"], Slot::Lunch, tier("priority", 1500, 500, [750, 750, 0]))]
#[case::sz_dibao_edge_75("shenzhen", 75, &["dibao_edge"], Slot::Lunch, tier("age_70_99", 500, 1500, [250, 250, 0]))]
#[case::sz_dibao_edge_65("shenzhen", 65, &["dibao_edge"], Slot::Lunch, Want::Full(NotEligible::NoTier))]
#[case::sz_dinner_not_covered("shenzhen", 75, &[], Slot::Dinner, Want::Full(NotEligible::SlotNotCovered))]
#[case::sz_priority_dinner_not_covered("shenzhen", 75, &["dibao"], Slot::Dinner, Want::Full(NotEligible::SlotNotCovered))]
#[case::sz_breakfast_not_covered("shenzhen", 100, &[], Slot::Breakfast, Want::Full(NotEligible::SlotNotCovered))]
fn every_tier(
    #[case] name: &str,
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] slot: Slot,
    #[case] want: Want,
) {
    let p = policy(name);
    let r = resident_aged(age, meal(), categories);
    let c = canteen();
    let price = c.window(slot).unwrap().price.0;
    let decision = decide(&p, &r, &c, &attempt(slot, meal()), &[]);
    check(&decision, want, price);
    let a = accepted(&decision);
    assert_eq!(a.policy, p.reference());
    assert_eq!((a.date, a.slot), (meal(), slot));
}

// ---------------------------------------------------------------------------------------------
// Birthdays: the day before counts the lower age, the birthday itself the higher one.

#[rstest]
#[case::yiwu_65th_eve("yiwu", d(1960, 6, 10), d(2025, 6, 9), None, 0)]
#[case::yiwu_65th("yiwu", d(1960, 6, 10), d(2025, 6, 10), Some("age_65"), 300)]
#[case::yiwu_80th_eve("yiwu", d(1945, 6, 10), d(2025, 6, 9), Some("age_65"), 300)]
#[case::yiwu_80th("yiwu", d(1945, 6, 10), d(2025, 6, 10), Some("age_80"), 500)]
#[case::yiwu_90th_eve("yiwu", d(1935, 6, 10), d(2025, 6, 9), Some("age_80"), 500)]
#[case::yiwu_90th("yiwu", d(1935, 6, 10), d(2025, 6, 10), Some("age_90"), 800)]
#[case::yiwu_100th_eve("yiwu", d(1925, 6, 10), d(2025, 6, 9), Some("age_90"), 800)]
#[case::yiwu_100th("yiwu", d(1925, 6, 10), d(2025, 6, 10), Some("age_100"), 1500)]
#[case::yiwu_100th_new_year("yiwu", d(1925, 1, 1), d(2025, 1, 1), Some("age_100"), 1500)]
#[case::sz_70th_eve("shenzhen", d(1955, 6, 10), d(2025, 6, 9), None, 0)]
#[case::sz_70th("shenzhen", d(1955, 6, 10), d(2025, 6, 10), Some("age_70_99"), 500)]
#[case::sz_100th_eve("shenzhen", d(1925, 6, 10), d(2025, 6, 9), Some("age_70_99"), 500)]
#[case::sz_100th("shenzhen", d(1925, 6, 10), d(2025, 6, 10), Some("age_100"), 1500)]
// Born on 29 February: in a common year the birthday is 28 February (民法典 art. 202: a period
// in years ends on the month's last day when the month has no corresponding day); in a leap
// year, 29 February.
#[case::feb29_65th_common_year_27th("yiwu", d(1960, 2, 29), d(2025, 2, 27), None, 0)]
#[case::feb29_65th_common_year_28th("yiwu", d(1960, 2, 29), d(2025, 2, 28), Some("age_65"), 300)]
#[case::feb29_65th_common_year_1st("yiwu", d(1960, 2, 29), d(2025, 3, 1), Some("age_65"), 300)]
#[case::feb29_90th_common_year_27th("yiwu", d(1936, 2, 29), d(2026, 2, 27), Some("age_80"), 500)]
#[case::feb29_90th_common_year_28th("yiwu", d(1936, 2, 29), d(2026, 2, 28), Some("age_90"), 800)]
#[case::feb29_90th_common_year_1st("yiwu", d(1936, 2, 29), d(2026, 3, 1), Some("age_90"), 800)]
#[case::feb29_80th_leap_year_28th("yiwu", d(1948, 2, 29), d(2028, 2, 28), Some("age_65"), 300)]
#[case::feb29_80th_leap_year_29th("yiwu", d(1948, 2, 29), d(2028, 2, 29), Some("age_80"), 500)]
#[case::feb29_100th_leap_year_28th("yiwu", d(1928, 2, 29), d(2028, 2, 28), Some("age_90"), 800)]
#[case::feb29_100th_leap_year_29th("yiwu", d(1928, 2, 29), d(2028, 2, 29), Some("age_100"), 1500)]
#[case::sz_feb29_100th_leap_28th(
    "shenzhen",
    d(1928, 2, 29),
    d(2028, 2, 28),
    Some("age_70_99"),
    500
)]
#[case::sz_feb29_100th_leap_29th("shenzhen", d(1928, 2, 29), d(2028, 2, 29), Some("age_100"), 1500)]
fn birthday_on_the_meal_date(
    #[case] name: &str,
    #[case] birth: NaiveDate,
    #[case] date: NaiveDate,
    #[case] want_tier: Option<&str>,
    #[case] want_subsidy: i64,
) {
    let p = policy(name);
    let r = resident_born(birth, &[]);
    let decision = decide(&p, &r, &canteen(), &lunch_on(date), &[]);
    let a = accepted(&decision);
    match want_tier {
        Some(code) => assert!(
            matches!(&a.eligibility, Eligibility::Subsidised { tier, .. } if tier == code),
            "expected {code}, got {:?}",
            a.eligibility
        ),
        None => assert_eq!(
            a.eligibility,
            Eligibility::NotEligible {
                reason: NotEligible::NoTier
            }
        ),
    }
    assert_eq!(a.subsidy, Fen(want_subsidy));
    assert_eq!(a.self_pay, Fen(2000 - want_subsidy));
}

// ---------------------------------------------------------------------------------------------
// Caps.

#[test]
fn second_lunch_the_same_day_is_a_duplicate_but_dinner_and_tomorrow_are_fine() {
    let p = Policy::example_yiwu();
    let r = resident_aged(70, meal(), &[]);
    let c = canteen();
    let first = decide(&p, &r, &c, &lunch_on(meal()), &[]);
    check(&first, tier("age_65", 300, 1700, [150, 150, 0]), 2000);
    let history = [prior(meal(), Slot::Lunch, 300)];

    let again = card_at(at(meal(), 12, 45));
    assert_eq!(
        decide(&p, &r, &c, &again, &history),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
    // At another canteen, by another method, delivered: still the same slot of the same day.
    let elsewhere = canteen_in(2, "fotang");
    let by_staff = Attempt {
        served_at: at(meal(), 11, 0),
        method: Method::Staff,
        delivered: true,
        proxy: false,
        counter_price: None,
    };
    assert_eq!(
        decide(&p, &r, &elsewhere, &by_staff, &history),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );

    let dinner = decide(&p, &r, &c, &dinner_on(meal()), &history);
    check(&dinner, tier("age_65", 300, 1500, [150, 150, 0]), 1800);
    let tomorrow = decide(&p, &r, &c, &lunch_on(meal().succ_opt().unwrap()), &history);
    check(&tomorrow, tier("age_65", 300, 1700, [150, 150, 0]), 2000);
}

#[test]
fn a_per_slot_cap_of_two_allows_exactly_two_lunches() {
    let mut p = Policy::example_yiwu();
    tier_mut(&mut p, "age_65").caps = Caps {
        per_slot_per_day: 2,
        per_day: None,
        per_month: None,
    };
    p.validate().unwrap();
    let r = resident_aged(70, meal(), &[]);
    let c = canteen();
    let one = [prior(meal(), Slot::Lunch, 300)];
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &one),
        tier("age_65", 300, 1700, [150, 150, 0]),
        2000,
    );
    let two = [
        prior(meal(), Slot::Lunch, 300),
        prior(meal(), Slot::Lunch, 300),
    ];
    assert_eq!(
        decide(&p, &r, &c, &lunch_on(meal()), &two),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
}

#[test]
fn the_per_day_cap_stops_the_third_subsidised_meal() {
    let mut p = Policy::example_yiwu();
    let t = tier_mut(&mut p, "age_65");
    t.benefit = Benefit::PerMeal(BTreeMap::from([
        (Slot::Breakfast, Fen(200)),
        (Slot::Lunch, Fen(300)),
        (Slot::Dinner, Fen(300)),
    ]));
    assert_eq!(t.caps.per_day, Some(2), "the shipped cap");
    p.validate().unwrap();
    let r = resident_aged(70, meal(), &[]);
    let c = canteen();
    check(
        &decide(&p, &r, &c, &breakfast_on(meal()), &[]),
        tier("age_65", 200, 400, [100, 100, 0]),
        600,
    );
    let history = [prior(meal(), Slot::Breakfast, 200)];
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &history),
        tier("age_65", 300, 1700, [150, 150, 0]),
        2000,
    );
    let history = [
        prior(meal(), Slot::Breakfast, 200),
        prior(meal(), Slot::Lunch, 300),
    ];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &history),
        Want::Full(NotEligible::DailyCapReached),
        1800,
    );
    // Full-price meals do not use the cap.
    let history = [
        prior(meal(), Slot::Breakfast, 0),
        prior(meal(), Slot::Lunch, 300),
    ];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &history),
        tier("age_65", 300, 1500, [150, 150, 0]),
        1800,
    );
}

#[test]
fn shenzhen_allows_a_subsidised_lunch_every_day_of_a_31_day_month() {
    let p = Policy::example_shenzhen();
    let r = resident_aged(75, d(2025, 7, 31), &[]);
    let c = canteen();
    let mut history = Vec::new();
    for day in 1..=31 {
        let decision = decide(&p, &r, &c, &lunch_on(d(2025, 7, day)), &history);
        check(&decision, tier("age_70_99", 500, 1500, [250, 250, 0]), 2000);
        history.push(prior(d(2025, 7, day), Slot::Lunch, 500));
    }
}

#[test]
fn shenzhen_per_month_cap_counts_every_subsidised_meal_of_the_month() {
    // 31 subsidised meals already in July (e.g. lunches and dinners under an earlier policy).
    let p = Policy::example_shenzhen();
    let r = resident_aged(75, d(2025, 7, 20), &[]);
    let mut history: Vec<PriorMeal> = (1..=16)
        .map(|day| prior(d(2025, 7, day), Slot::Lunch, 500))
        .collect();
    history.extend((1..=15).map(|day| prior(d(2025, 7, day), Slot::Dinner, 300)));
    assert_eq!(history.len(), 31);
    check(
        &decide(&p, &r, &canteen(), &lunch_on(d(2025, 7, 20)), &history),
        Want::Full(NotEligible::MonthlyCapReached),
        2000,
    );
}

#[test]
fn a_small_per_month_cap_is_reached_and_resets_next_month() {
    let mut p = Policy::example_shenzhen();
    tier_mut(&mut p, "age_70_99").caps.per_month = Some(3);
    p.validate().unwrap();
    let r = resident_aged(75, meal(), &[]);
    let c = canteen();
    let june: Vec<PriorMeal> = (1..=3)
        .map(|day| prior(d(2025, 6, day), Slot::Lunch, 500))
        .collect();
    check(
        &decide(&p, &r, &c, &lunch_on(d(2025, 6, 4)), &june[..2]),
        tier("age_70_99", 500, 1500, [250, 250, 0]),
        2000,
    );
    check(
        &decide(&p, &r, &c, &lunch_on(d(2025, 6, 4)), &june),
        Want::Full(NotEligible::MonthlyCapReached),
        2000,
    );
    // Last month's meals do not count.
    check(
        &decide(&p, &r, &c, &lunch_on(d(2025, 7, 1)), &june),
        tier("age_70_99", 500, 1500, [250, 250, 0]),
        2000,
    );
    // Full-price meals do not count.
    let unsubsidised: Vec<PriorMeal> = (1..=3)
        .map(|day| prior(d(2025, 6, day), Slot::Lunch, 0))
        .collect();
    check(
        &decide(&p, &r, &c, &lunch_on(d(2025, 6, 4)), &unsubsidised),
        tier("age_70_99", 500, 1500, [250, 250, 0]),
        2000,
    );
}

// ---------------------------------------------------------------------------------------------
// Status, enrolment, locality.

#[rstest]
#[case::late_posted_meal_before_death(d(2025, 6, 9), None)]
#[case::on_the_day_of_death(d(2025, 6, 10), Some(Rejection::Deceased { date: d(2025, 6, 10) }))]
#[case::after_death(d(2025, 6, 11), Some(Rejection::Deceased { date: d(2025, 6, 10) }))]
fn deceased_residents(#[case] date: NaiveDate, #[case] want: Option<Rejection>) {
    let p = Policy::example_yiwu();
    let mut r = resident_aged(85, meal(), &[]);
    r.status = ResidentStatus::Deceased { date: meal() };
    let decision = decide(&p, &r, &canteen(), &lunch_on(date), &[]);
    match want {
        Some(rejection) => assert_eq!(decision, Decision::Rejected(rejection)),
        None => check(&decision, tier("age_80", 500, 1500, [250, 250, 0]), 2000),
    }
}

#[rstest]
#[case::card(Method::Card)]
#[case::staff(Method::Staff)]
#[case::face(Method::Face)]
fn suspended_residents_are_refused(#[case] method: Method) {
    let mut r = resident_aged(85, meal(), &["dibao"]);
    r.status = ResidentStatus::Suspended;
    let a = Attempt {
        served_at: at(meal(), 11, 30),
        method,
        delivered: false,
        proxy: false,
        counter_price: None,
    };
    for p in [Policy::example_yiwu(), Policy::example_shenzhen()] {
        assert_eq!(
            decide(&p, &r, &canteen(), &a, &[]),
            Decision::Rejected(Rejection::Suspended)
        );
    }
}

#[rstest]
#[case::yiwu_80("yiwu", 80, &[], NotEligible::NotLocal)]
#[case::yiwu_tekun_60("yiwu", 60, &["tekun"], NotEligible::NotLocal)]
#[case::yiwu_100("yiwu", 100, &[], NotEligible::NotLocal)]
#[case::yiwu_too_young_anyway("yiwu", 50, &[], NotEligible::NoTier)]
#[case::sz_100("shenzhen", 100, &[], NotEligible::NotLocal)]
#[case::sz_dibao_65("shenzhen", 65, &["dibao"], NotEligible::NotLocal)]
#[case::sz_too_young_anyway("shenzhen", 65, &[], NotEligible::NoTier)]
fn non_local_residents_pay_full_price(
    #[case] name: &str,
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] reason: NotEligible,
) {
    let mut r = resident_aged(age, meal(), categories);
    r.local_registration = false;
    check(
        &decide(&policy(name), &r, &canteen(), &lunch_on(meal()), &[]),
        Want::Full(reason),
        2000,
    );
}

#[rstest]
#[case::face_enrolled_with_consent(Method::Face, true, true, None)]
#[case::face_not_enrolled(Method::Face, false, true, Some(Rejection::NotEnrolled))]
#[case::face_no_consent(Method::Face, true, false, Some(Rejection::NotEnrolled))]
#[case::face_neither(Method::Face, false, false, Some(Rejection::NotEnrolled))]
#[case::card_without_face(Method::Card, false, false, None)]
#[case::staff_without_face(Method::Staff, false, false, None)]
fn face_check_in_needs_enrolment_and_consent(
    #[case] method: Method,
    #[case] enrolled: bool,
    #[case] consent: bool,
    #[case] want: Option<Rejection>,
) {
    let mut r = resident_aged(70, meal(), &[]);
    r.face_enrolled = enrolled;
    r.consent.face_enrolment = consent;
    let a = Attempt {
        served_at: at(meal(), 11, 30),
        method,
        delivered: false,
        proxy: false,
        counter_price: None,
    };
    let decision = decide(&Policy::example_yiwu(), &r, &canteen(), &a, &[]);
    match want {
        Some(rejection) => assert_eq!(decision, Decision::Rejected(rejection)),
        None => check(&decision, tier("age_65", 300, 1700, [150, 150, 0]), 2000),
    }
}

// ---------------------------------------------------------------------------------------------
// Towns and areas: registration vs residence.

fn with_area(mut p: Policy, towns: &[&str]) -> Policy {
    p.area_towns = towns.iter().map(|t| TownCode::new(*t)).collect();
    p.validate().unwrap();
    p
}

fn with_subsidy_town(mut p: Policy, s: SubsidyTown) -> Policy {
    p.subsidy_town = s;
    p
}

#[test]
fn the_funding_town_follows_the_policy_switch() {
    // Registered in choucheng, living in futian.
    let r = resident_aged(70, meal(), &[]);
    let c = canteen();
    let yiwu = decide(&Policy::example_yiwu(), &r, &c, &lunch_on(meal()), &[]);
    assert_eq!(accepted(&yiwu).funding_town, TownCode::new(REG_TOWN));
    let sz = decide(&Policy::example_shenzhen(), &r, &c, &lunch_on(meal()), &[]);
    assert_eq!(accepted(&sz).funding_town, TownCode::new(HOME_TOWN));

    let flipped = with_subsidy_town(Policy::example_yiwu(), SubsidyTown::Residence);
    let decision = decide(&flipped, &r, &c, &lunch_on(meal()), &[]);
    check(&decision, tier("age_65", 300, 1700, [150, 150, 0]), 2000);
    assert_eq!(accepted(&decision).funding_town, TownCode::new(HOME_TOWN));
}

#[test]
fn area_eligibility_follows_the_policy_switch() {
    let r = resident_aged(70, meal(), &[]);
    let c = canteen_in(1, REG_TOWN);
    let by_registration = with_area(Policy::example_yiwu(), &[REG_TOWN]);
    let decision = decide(&by_registration, &r, &c, &lunch_on(meal()), &[]);
    check(&decision, tier("age_65", 300, 1700, [150, 150, 0]), 2000);
    assert_eq!(accepted(&decision).funding_town, TownCode::new(REG_TOWN));

    let by_residence = with_subsidy_town(by_registration.clone(), SubsidyTown::Residence);
    let decision = decide(&by_residence, &r, &c, &lunch_on(meal()), &[]);
    check(
        &decision,
        Want::Full(NotEligible::ResidentOutsideArea),
        2000,
    );
    assert_eq!(accepted(&decision).funding_town, TownCode::new(HOME_TOWN));

    let wider = with_area(by_residence, &[REG_TOWN, HOME_TOWN]);
    check(
        &decide(&wider, &r, &c, &lunch_on(meal()), &[]),
        tier("age_65", 300, 1700, [150, 150, 0]),
        2000,
    );
}

#[test]
fn a_meal_at_a_canteen_outside_the_area_is_full_price() {
    let p = with_area(Policy::example_yiwu(), &[REG_TOWN, HOME_TOWN]);
    let r = resident_aged(100, meal(), &["tekun"]);
    let outside = canteen_in(2, "fotang");
    check(
        &decide(&p, &r, &outside, &lunch_on(meal()), &[]),
        Want::Full(NotEligible::CanteenOutsideArea),
        2000,
    );
    let inside = canteen_in(3, HOME_TOWN);
    check(
        &decide(&p, &r, &inside, &lunch_on(meal()), &[]),
        tier("age_100", 1500, 500, [500, 500, 500]),
        2000,
    );
    // With no area the whole city is covered.
    check(
        &decide(
            &Policy::example_yiwu(),
            &r,
            &outside,
            &lunch_on(meal()),
            &[],
        ),
        tier("age_100", 1500, 500, [500, 500, 500]),
        2000,
    );
}

#[test]
fn a_tier_restricted_to_towns_looks_at_the_subsidy_town() {
    let mut p = Policy::example_yiwu();
    tier_mut(&mut p, "age_65").conditions.towns = vec![TownCode::new(HOME_TOWN)];
    p.validate().unwrap();
    let r = resident_aged(70, meal(), &[]);
    let c = canteen();
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &[]),
        Want::Full(NotEligible::NoTier),
        2000,
    );
    let p = with_subsidy_town(p, SubsidyTown::Residence);
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &[]),
        tier("age_65", 300, 1700, [150, 150, 0]),
        2000,
    );
    // Unrestricted tiers are unaffected.
    let older = resident_aged(85, meal(), &[]);
    let p = with_subsidy_town(p, SubsidyTown::Registration);
    check(
        &decide(&p, &older, &c, &lunch_on(meal()), &[]),
        tier("age_80", 500, 1500, [250, 250, 0]),
        2000,
    );
}

#[test]
fn a_tier_restricted_to_canteens() {
    let mut p = Policy::example_yiwu();
    tier_mut(&mut p, "age_65").conditions.canteens = vec![CanteenId(1)];
    p.validate().unwrap();
    let r = resident_aged(70, meal(), &[]);
    check(
        &decide(&p, &r, &canteen_in(1, REG_TOWN), &lunch_on(meal()), &[]),
        tier("age_65", 300, 1700, [150, 150, 0]),
        2000,
    );
    check(
        &decide(&p, &r, &canteen_in(2, REG_TOWN), &lunch_on(meal()), &[]),
        Want::Full(NotEligible::NoTier),
        2000,
    );
}

// ---------------------------------------------------------------------------------------------
// Slots, price, payment.

#[rstest]
#[case::afternoon(14, 0)]
#[case::end_of_lunch_is_exclusive(13, 0)]
#[case::before_breakfast(5, 0)]
#[case::late_night(22, 30)]
fn outside_any_slot_window_is_refused(#[case] h: u32, #[case] m: u32) {
    let r = resident_aged(70, meal(), &[]);
    let decision = decide(
        &Policy::example_yiwu(),
        &r,
        &canteen(),
        &card_at(at(meal(), h, m)),
        &[],
    );
    assert_eq!(decision, Decision::Rejected(Rejection::OutsideSlotWindow));
}

#[test]
fn the_start_of_a_window_is_inside_it() {
    let r = resident_aged(70, meal(), &[]);
    let decision = decide(
        &Policy::example_yiwu(),
        &r,
        &canteen(),
        &card_at(at(meal(), 10, 30)),
        &[],
    );
    check(&decision, tier("age_65", 300, 1700, [150, 150, 0]), 2000);
}

#[test]
fn a_delivered_meal_adds_the_surcharge() {
    let r = resident_aged(70, meal(), &[]);
    let mut a = lunch_on(meal());
    a.delivered = true;
    check(
        &decide(&Policy::example_yiwu(), &r, &canteen(), &a, &[]),
        tier("age_65", 300, 2000, [150, 150, 0]),
        2300,
    );
    let mut no_delivery = canteen();
    no_delivery.delivery_surcharge = None;
    check(
        &decide(&Policy::example_yiwu(), &r, &no_delivery, &a, &[]),
        tier("age_65", 300, 1700, [150, 150, 0]),
        2000,
    );
}

#[rstest]
// Yiwu age_100: other 500 fen first, then 50/50 of the rest; the odd fen goes to city.
#[case::above("yiwu", 100, &[], 2000, tier("age_100", 1500, 500, [500, 500, 500]))]
#[case::equal("yiwu", 100, &[], 1500, tier("age_100", 1500, 0, [500, 500, 500]))]
#[case::odd_1001("yiwu", 100, &[], 1001, tier("age_100", 1001, 0, [251, 250, 500]))]
#[case::odd_999("yiwu", 100, &[], 999, tier("age_100", 999, 0, [250, 249, 500]))]
#[case::one_above_fixed("yiwu", 100, &[], 501, tier("age_100", 501, 0, [1, 0, 500]))]
#[case::below_fixed("yiwu", 100, &[], 333, tier("age_100", 333, 0, [0, 0, 333]))]
#[case::free_meal("yiwu", 100, &[], 0, tier("age_100", 0, 0, [0, 0, 0]))]
// Yiwu tekun 60/40.
#[case::tekun_1001("yiwu", 70, &["tekun"], 1001, tier("tekun", 1001, 0, [601, 400, 0]))]
#[case::tekun_777("yiwu", 70, &["tekun"], 777, tier("tekun", 777, 0, [467, 310, 0]))]
#[case::sz_1499("shenzhen", 100, &[], 1499, tier("age_100", 1499, 0, [750, 749, 0]))]
#[case::sz_age_70_301("shenzhen", 70, &[], 301, tier("age_70_99", 301, 0, [151, 150, 0]))]
fn subsidy_never_exceeds_the_price(
    #[case] name: &str,
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] price: i64,
    #[case] want: Want,
) {
    let r = resident_aged(age, meal(), categories);
    check(
        &decide(
            &policy(name),
            &r,
            &canteen_priced(price),
            &lunch_on(meal()),
            &[],
        ),
        want,
        price,
    );
}

#[rstest]
#[case::no_account(None, Payment::Cash)]
#[case::exactly_enough(Some(1700), Payment::Prepaid)]
#[case::plenty(Some(50_000), Payment::Prepaid)]
#[case::one_fen_short(Some(1699), Payment::Cash)]
#[case::empty(Some(0), Payment::Cash)]
fn self_pay_comes_from_the_prepaid_balance_when_it_is_enough(
    #[case] balance: Option<i64>,
    #[case] want: Payment,
) {
    let mut r = resident_aged(70, meal(), &[]);
    r.prepaid_balance = balance.map(Fen);
    let decision = decide(
        &Policy::example_yiwu(),
        &r,
        &canteen(),
        &lunch_on(meal()),
        &[],
    );
    let a = accepted(&decision);
    assert_eq!(a.self_pay, Fen(1700));
    assert_eq!(a.payment, want);
}

#[test]
fn without_a_policy_in_force_the_meal_is_full_price() {
    let r = resident_aged(100, meal(), &["tekun"]);
    let c = canteen();
    let none = settle::decide(None, &r.diner(), &c, &lunch_on(meal()), &[]);
    check(&none, Want::Full(NotEligible::NoPolicyInForce), 2000);
    assert_eq!(accepted(&none).policy.version, 0);
    assert_eq!(accepted(&none).funding_town, TownCode::new(REG_TOWN));
    // A policy handed in for a date it does not cover.
    let before = decide(
        &Policy::example_yiwu(),
        &r,
        &c,
        &lunch_on(d(2024, 12, 31)),
        &[],
    );
    check(&before, Want::Full(NotEligible::NoPolicyInForce), 2000);
    let mut ended = Policy::example_yiwu();
    ended.effective_to = Some(d(2025, 6, 9));
    check(
        &decide(&ended, &r, &c, &lunch_on(meal()), &[]),
        Want::Full(NotEligible::NoPolicyInForce),
        2000,
    );
    // The same-slot rule still applies.
    let history = [prior(meal(), Slot::Lunch, 0)];
    assert_eq!(
        settle::decide(None, &r.diner(), &c, &lunch_on(meal()), &history),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
}

const PER_DAY_POLICY: &str = r#"{
  "id": "per-day",
  "version": 1,
  "name": "每日定额",
  "effective_from": "2025-01-01",
  "subsidy_town": "registration",
  "tiers": [
    {
      "code": "daily",
      "name": "每日十元",
      "conditions": { "min_age": 60 },
      "benefit": { "per_day": { "fen": 1000, "slots": ["lunch", "dinner"] } },
      "funding": [ { "source": "city", "percent": 70 }, { "source": "town", "percent": 30 } ]
    }
  ]
}"#;

#[test]
fn a_per_day_benefit_is_shared_by_lunch_and_dinner() {
    let p = Policy::parse(PER_DAY_POLICY).unwrap();
    let r = resident_aged(70, meal(), &[]);
    let mut c = canteen();
    c.slots[1].price = Fen(600);
    // Lunch uses 600 of the 1000; dinner gets the remaining 400.
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &[]),
        tier("daily", 600, 0, [420, 180, 0]),
        600,
    );
    let history = [prior(meal(), Slot::Lunch, 600)];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &history),
        tier("daily", 400, 1400, [280, 120, 0]),
        1800,
    );
    // Breakfast is not one of the tier's slots.
    check(
        &decide(&p, &r, &c, &breakfast_on(meal()), &history),
        Want::Full(NotEligible::SlotNotCovered),
        600,
    );
    // A dearer lunch uses the whole day's amount; dinner is then full price.
    let c = canteen();
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &[]),
        tier("daily", 1000, 1000, [700, 300, 0]),
        2000,
    );
    let history = [prior(meal(), Slot::Lunch, 1000)];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &history),
        Want::Full(NotEligible::DailyCapReached),
        1800,
    );
    // The next day starts afresh.
    let next = meal().succ_opt().unwrap();
    check(
        &decide(&p, &r, &c, &dinner_on(next), &history),
        tier("daily", 1000, 800, [700, 300, 0]),
        1800,
    );
}

// ---------------------------------------------------------------------------------------------
// Policy::parse and Policy::select.

fn yiwu_json() -> Value {
    serde_json::from_str(include_str!("../policies/yiwu.json")).unwrap()
}

#[track_caller]
fn parse_err(v: &Value) -> (String, String) {
    let e = Policy::parse(&v.to_string()).expect_err("the policy should be refused");
    (e.field, e.reason)
}

#[test]
fn the_shipped_policies_parse() {
    let y = Policy::example_yiwu();
    assert_eq!(
        (y.id.as_str(), y.version, y.subsidy_town),
        ("yiwu-style", 1, SubsidyTown::Registration)
    );
    assert_eq!(y.tiers.len(), 6);
    let s = Policy::example_shenzhen();
    assert_eq!(
        (s.id.as_str(), s.version, s.subsidy_town),
        ("shenzhen-style", 1, SubsidyTown::Residence)
    );
    assert_eq!(s.tiers.len(), 3);
    assert!(Policy::parse(PER_DAY_POLICY).is_ok());
}

#[rstest]
#[case::in_conditions(|v: &mut Value| v["tiers"][2]["conditions"]["max_income"] = json!(1000),
    "tiers[2].conditions.max_income", "unknown field `max_income`")]
#[case::at_the_top(|v: &mut Value| v["bonus"] = json!(true), "bonus", "unknown field `bonus`")]
#[case::in_a_tier(|v: &mut Value| v["tiers"][0]["priority"] = json!(1),
    "tiers[0].priority", "unknown field `priority`")]
#[case::in_funding(|v: &mut Value| v["tiers"][1]["funding"][0]["share"] = json!(1),
    "tiers[1].funding[0].share", "unknown field `share`")]
#[case::in_caps(|v: &mut Value| v["tiers"][4]["caps"]["per_week"] = json!(5),
    "tiers[4].caps.per_week", "unknown field `per_week`")]
#[case::unknown_slot(|v: &mut Value| v["tiers"][3]["benefit"]["per_meal"]["brunch"] = json!(100),
    "tiers[3].benefit.per_meal", "unknown variant `brunch`")]
#[case::wrong_type(|v: &mut Value| v["version"] = json!("two"), "version", "invalid type: string \"two\"")]
#[case::bad_date(|v: &mut Value| v["effective_from"] = json!("2025-02-30"), "effective_from", "input is out of range")]
#[case::missing_field(|v: &mut Value| { v["tiers"][0].as_object_mut().unwrap().remove("funding"); },
    "tiers[0]", "missing field `funding`")]
fn parse_names_the_path_of_a_field_that_does_not_fit(
    #[case] edit: fn(&mut Value),
    #[case] field: &str,
    #[case] reason: &str,
) {
    let mut v = yiwu_json();
    edit(&mut v);
    let (got_field, got_reason) = parse_err(&v);
    assert_eq!(got_field, field);
    assert!(got_reason.contains(reason), "{got_reason}");
}

#[test]
fn parse_names_the_line_of_text_that_is_not_json() {
    let e = Policy::parse("{\n  \"id\": \"x\",\n  \"version\": 1,,\n}").unwrap_err();
    assert_eq!(e.field, "line 3 column 16");
    let e = Policy::parse(&format!("{} trailing", yiwu_json())).unwrap_err();
    assert!(e.field.starts_with("line 1 column "), "{}", e.field);
    assert!(e.reason.contains("trailing characters"), "{}", e.reason);
}

#[rstest]
#[case::percents_short(|v: &mut Value| v["tiers"][1]["funding"][1]["percent"] = json!(30),
    "tiers[1].funding", "percent shares add up to 90, not 100")]
#[case::percents_over(|v: &mut Value| v["tiers"][0]["funding"][2]["percent"] = json!(60),
    "tiers[0].funding", "percent shares add up to 110, not 100")]
// Percents are u32: two huge shares must not wrap around to 100.
#[case::percents_wrapping(|v: &mut Value| v["tiers"][3]["funding"] = json!([
        { "source": "city", "percent": 4_294_967_196_u32 }, { "source": "town", "percent": 200 }]),
    "tiers[3].funding", "city: a percent share must be between 0 and 100")]
#[case::no_percent(|v: &mut Value| v["tiers"][0]["funding"] = json!([{ "source": "city", "fen": 100 }]),
    "tiers[0].funding", "at least one source must take a percent share of the remainder")]
#[case::source_twice(|v: &mut Value| v["tiers"][3]["funding"][1]["source"] = json!("city"),
    "tiers[3].funding", "city appears twice")]
#[case::percent_and_fen(|v: &mut Value| v["tiers"][3]["funding"][0]["fen"] = json!(100),
    "tiers[3].funding", "city: give exactly one of percent or fen")]
#[case::zero_fixed(|v: &mut Value| v["tiers"][0]["funding"][0]["fen"] = json!(0),
    "tiers[0].funding", "other: fen must be more than 0")]
#[case::duplicate_code(|v: &mut Value| v["tiers"][4]["code"] = json!("age_90"),
    "tiers[4].code", "'age_90' is used by an earlier tier")]
#[case::empty_code(|v: &mut Value| v["tiers"][0]["code"] = json!(" "),
    "tiers[0].code", "must not be empty")]
#[case::max_below_min(|v: &mut Value| v["tiers"][5]["conditions"]["max_age"] = json!(64),
    "tiers[5].conditions.max_age", "is below min_age")]
#[case::no_tiers(|v: &mut Value| v["tiers"] = json!([]),
    "tiers", "a policy needs at least one tier")]
#[case::ends_before_it_starts(|v: &mut Value| v["effective_to"] = json!("2024-12-31"),
    "effective_to", "is before effective_from")]
#[case::zero_benefit(|v: &mut Value| v["tiers"][2]["benefit"]["per_meal"]["dinner"] = json!(0),
    "tiers[2].benefit.per_meal.dinner", "must be more than 0 fen")]
#[case::negative_benefit(|v: &mut Value| v["tiers"][0]["benefit"]["per_meal"]["lunch"] = json!(-5),
    "tiers[0].benefit.per_meal.lunch", "must be more than 0 fen")]
#[case::no_slot(|v: &mut Value| v["tiers"][0]["benefit"]["per_meal"] = json!({}),
    "tiers[0].benefit.per_meal", "names no slot")]
#[case::zero_per_day(|v: &mut Value| v["tiers"][1]["benefit"] = json!({ "per_day": { "fen": 0, "slots": ["lunch"] } }),
    "tiers[1].benefit.per_day.fen", "must be more than 0 fen")]
#[case::per_day_no_slot(|v: &mut Value| v["tiers"][1]["benefit"] = json!({ "per_day": { "fen": 900, "slots": [] } }),
    "tiers[1].benefit.per_day.slots", "names no slot")]
#[case::zero_slot_cap(|v: &mut Value| v["tiers"][0]["caps"]["per_slot_per_day"] = json!(0),
    "tiers[0].caps.per_slot_per_day", "must be 1 or more")]
#[case::zero_month_cap(|v: &mut Value| v["tiers"][0]["caps"]["per_month"] = json!(0),
    "tiers[0].caps", "a cap of 0 would subsidise nothing; leave it out")]
#[case::version_zero(|v: &mut Value| v["version"] = json!(0), "version", "must be 1 or more")]
#[case::empty_id(|v: &mut Value| v["id"] = json!(""), "id", "must not be empty")]
fn parse_names_the_field_and_the_reason(
    #[case] edit: fn(&mut Value),
    #[case] field: &str,
    #[case] reason: &str,
) {
    let mut v = yiwu_json();
    edit(&mut v);
    assert_eq!(parse_err(&v), (field.to_owned(), reason.to_owned()));
}

fn dated(version: u32, from: NaiveDate, to: Option<NaiveDate>) -> Policy {
    let mut p = Policy::example_yiwu();
    p.version = version;
    p.effective_from = from;
    p.effective_to = to;
    p.validate().unwrap();
    p
}

#[rstest]
#[case::before_any(d(2024, 12, 31), None)]
#[case::first_day(d(2025, 1, 1), Some(1))]
#[case::last_day_of_v1(d(2025, 6, 30), Some(1))]
// v2 and v3 both start on 1 July: the higher version wins while both are in force.
#[case::first_day_of_v2_and_v3(d(2025, 7, 1), Some(3))]
#[case::last_day_of_v3(d(2025, 12, 31), Some(3))]
#[case::after_v3_ends(d(2026, 1, 1), Some(2))]
fn select_picks_the_policy_in_force(#[case] date: NaiveDate, #[case] want: Option<u32>) {
    let policies = [
        dated(2, d(2025, 7, 1), None),
        dated(1, d(2025, 1, 1), Some(d(2025, 6, 30))),
        dated(3, d(2025, 7, 1), Some(d(2025, 12, 31))),
    ];
    assert_eq!(Policy::select(&policies, date).map(|p| p.version), want);
}

#[test]
fn select_prefers_the_later_start_over_the_higher_version() {
    let policies = [dated(5, d(2025, 1, 1), None), dated(2, d(2025, 3, 1), None)];
    assert_eq!(
        Policy::select(&policies, d(2025, 2, 1)).map(|p| p.version),
        Some(5)
    );
    assert_eq!(
        Policy::select(&policies, d(2025, 3, 1)).map(|p| p.version),
        Some(2)
    );
    assert!(Policy::select(&[], d(2025, 3, 1)).is_none());
}

#[test]
fn a_decision_records_the_policy_version_it_was_judged_by() {
    let policies = [
        dated(1, d(2025, 1, 1), Some(d(2025, 6, 30))),
        dated(2, d(2025, 7, 1), None),
    ];
    let r = resident_aged(70, meal(), &[]);
    for (date, version) in [(d(2025, 6, 30), 1), (d(2025, 7, 1), 2)] {
        let p = Policy::select(&policies, date);
        let decision = settle::decide(p, &r.diner(), &canteen(), &lunch_on(date), &[]);
        assert_eq!(accepted(&decision).policy.version, version);
    }
}

// ---------------------------------------------------------------------------------------------
// 代取: a meal a registered carer collects. Subsidised as the resident's own unless the policy
// says `proxy_subsidised: false`; then full price with its own reason. A meal that would not be
// subsidised anyway keeps its own reason.

#[rstest]
#[case::yiwu_own_meal("yiwu", None, 80, false, tier("age_80", 500, 1500, [250, 250, 0]))]
#[case::yiwu_proxy_default("yiwu", None, 80, true, tier("age_80", 500, 1500, [250, 250, 0]))]
#[case::yiwu_proxy_subsidised("yiwu", Some(true), 80, true, tier("age_80", 500, 1500, [250, 250, 0]))]
#[case::yiwu_proxy_not_subsidised(
    "yiwu",
    Some(false),
    80,
    true,
    Want::Full(NotEligible::ProxyNotSubsidised)
)]
#[case::yiwu_own_meal_not_subsidised_policy("yiwu", Some(false), 80, false, tier("age_80", 500, 1500, [250, 250, 0]))]
#[case::yiwu_proxy_too_young_keeps_reason(
    "yiwu",
    Some(false),
    64,
    true,
    Want::Full(NotEligible::NoTier)
)]
#[case::sz_proxy_default("shenzhen", None, 100, true, tier("age_100", 1500, 500, [750, 750, 0]))]
#[case::sz_proxy_not_subsidised(
    "shenzhen",
    Some(false),
    100,
    true,
    Want::Full(NotEligible::ProxyNotSubsidised)
)]
fn proxy_meals(
    #[case] name: &str,
    #[case] proxy_subsidised: Option<bool>,
    #[case] age: u32,
    #[case] proxy: bool,
    #[case] want: Want,
) {
    // The setting as a policy document says it (absent: as every document before it).
    let mut doc: Value = serde_json::to_value(policy(name)).unwrap();
    if let Some(v) = proxy_subsidised {
        doc["proxy_subsidised"] = json!(v);
    }
    let p = Policy::parse(&doc.to_string()).unwrap();
    assert_eq!(p.proxy_subsidised, proxy_subsidised.unwrap_or(true));
    let r = resident_aged(age, meal(), &[]);
    let c = canteen();
    let a = Attempt {
        proxy,
        counter_price: None,
        ..lunch_on(meal())
    };
    let decision = decide(&p, &r, &c, &a, &[]);
    check(&decision, want, 2000);
}

#[test]
fn documents_without_the_proxy_field_parse_and_write_back_as_before() {
    for name in ["yiwu", "shenzhen"] {
        let p = policy(name);
        assert!(p.proxy_subsidised, "{name}");
        let written = serde_json::to_value(&p).unwrap();
        assert!(
            written.get("proxy_subsidised").is_none(),
            "{name}: {written}"
        );
    }
    let mut doc: Value = serde_json::to_value(policy("yiwu")).unwrap();
    doc["proxy_subsidised"] = json!("no");
    let e = Policy::parse(&doc.to_string()).unwrap_err();
    assert_eq!(e.field, "proxy_subsidised", "{e}");
}
