//! The policies of real cities (`domain/policies/*.json`, sources in `SOURCES.md`) against the
//! rules as published. Every expected number here is worked out by hand from the published rule
//! (or, where nothing is published, from the figure the issue gives), never read off the code.

mod common;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use rstest::rstest;
use serde_json::{Value, json};
use zhucan_domain::settle::{self, Accepted, Attempt, Funding, NotEligible};
use zhucan_domain::{
    Canteen, Decision, Diner, DistrictCode, Eligibility, Fen, FundingSource, Policy, PriceRange,
    PriorMeal, Rejection, Slot,
};

use NotEligible::*;
use Want::*;
use common::*;

// ---------------------------------------------------------------------------------------------
// Shared helpers.

fn jurong() -> Policy {
    Policy::parse(include_str!("../policies/jurong.json")).expect("jurong.json")
}
fn xuyi() -> Policy {
    Policy::parse(include_str!("../policies/xuyi.json")).expect("xuyi.json")
}
fn zhuhai() -> Policy {
    Policy::parse(include_str!("../policies/zhuhai.json")).expect("zhuhai.json")
}
fn shenzhen() -> Policy {
    Policy::parse(include_str!("../policies/shenzhen-2023.json")).expect("shenzhen-2023.json")
}
fn fang() -> Policy {
    Policy::parse(include_str!("../policies/fang-county.json")).expect("fang-county.json")
}
fn tongliang() -> Policy {
    Policy::parse(include_str!("../policies/tongliang.json")).expect("tongliang.json")
}

/// A Tuesday with no holiday and no leap-day subtlety.
fn meal() -> NaiveDate {
    d(2025, 6, 10)
}

fn elder(birth: NaiveDate, categories: &[&str]) -> Diner {
    resident_born(birth, categories).diner()
}

fn elder_aged(age: u32, date: NaiveDate, categories: &[&str]) -> Diner {
    resident_aged(age, date, categories).diner()
}

fn non_local(mut r: Diner) -> Diner {
    r.local_registration = false;
    r
}

/// Registered (户籍) in `district`, living there too.
fn registered_in(mut r: Diner, district: &str) -> Diner {
    r.registered_district = Some(DistrictCode::new(district));
    r.residence_district = Some(DistrictCode::new(district));
    r
}

fn at_s(date: NaiveDate, h: u32, m: u32, s: u32) -> NaiveDateTime {
    date.and_hms_opt(h, m, s).unwrap()
}

fn priced(mut a: Attempt, counter: Option<i64>) -> Attempt {
    a.counter_price = counter.map(Fen);
    a
}

fn delivered(mut a: Attempt) -> Attempt {
    a.delivered = true;
    a
}

fn set_slot(c: &mut Canteen, slot: Slot, price: i64, range: Option<(i64, i64)>) {
    let w = c.slots.iter_mut().find(|w| w.slot == slot).expect("slot");
    w.price = Fen(price);
    w.price_range = range.map(|(min, max)| PriceRange {
        min: Fen(min),
        max: Fen(max),
    });
}

fn prior(date: NaiveDate, slot: Slot, subsidy: i64) -> PriorMeal {
    PriorMeal {
        date,
        slot,
        subsidy: Fen(subsidy),
    }
}

/// The money rules every accepted meal keeps, whatever the city.
#[track_caller]
fn invariants(a: &Accepted) {
    assert_eq!(
        a.subsidy + a.self_pay,
        a.price,
        "subsidy + self_pay == price"
    );
    assert_eq!(a.funding.total(), a.subsidy, "funding.total() == subsidy");
    assert!(a.subsidy >= Fen::ZERO && a.self_pay >= Fen::ZERO, "{a:?}");
    assert!(a.delivery_subsidy >= Fen::ZERO && a.delivery_subsidy <= a.delivery_fee);
    assert!(a.stacked_subsidy >= Fen::ZERO && a.tier_subsidy() >= Fen::ZERO);
    // The meal's subsidies never reach into the delivery fee.
    assert!(a.tier_subsidy() + a.stacked_subsidy <= a.price - a.delivery_fee);
    assert_eq!(a.stacked.is_empty(), a.stacked_subsidy == Fen::ZERO);
    assert_eq!(a.operating > Fen::ZERO, a.operating_source.is_some());
    if let Eligibility::NotEligible { .. } = a.eligibility {
        assert_eq!(a.tier_subsidy(), Fen::ZERO, "no tier subsidy at full price");
        assert_eq!(
            a.stacked_subsidy,
            Fen::ZERO,
            "no stacked subsidy at full price"
        );
        assert_eq!(a.operating, Fen::ZERO, "no operating subsidy at full price");
    }
}

/// `settle::decide` under `p`, checking the invariants of every accepted meal.
#[track_caller]
fn decide(p: &Policy, r: &Diner, c: &Canteen, a: &Attempt, history: &[PriorMeal]) -> Decision {
    let decision = settle::decide(Some(p), r, c, a, history);
    if let Decision::Accepted(x) = &decision {
        invariants(x);
    }
    decision
}

/// What a meal should come to.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Subsidised under the tier: the subsidy and the self-pay, in fen.
    Sub(&'static str, i64, i64),
    /// Full price for this reason.
    Full(NotEligible),
}

/// Checks the price (all in, delivery fee included), the tier and the amounts.
#[track_caller]
fn check(decision: &Decision, price: i64, want: Want) -> Accepted {
    let a = accepted(decision).clone();
    assert_eq!(a.price, Fen(price), "price");
    match want {
        Sub(code, subsidy, self_pay) => {
            match &a.eligibility {
                Eligibility::Subsidised { tier, .. } => assert_eq!(tier, code, "tier"),
                e => panic!("expected tier {code}, got {e:?}"),
            }
            assert_eq!(a.subsidy, Fen(subsidy), "subsidy");
            assert_eq!(a.self_pay, Fen(self_pay), "self_pay");
        }
        Full(reason) => {
            assert_eq!(a.eligibility, Eligibility::NotEligible { reason });
            assert_eq!(a.subsidy, Fen::ZERO, "subsidy");
            assert_eq!(a.self_pay, Fen(price), "self_pay");
            assert_eq!(a.funding, Funding::default());
        }
    }
    a
}

fn only(source: FundingSource, fen: i64) -> Funding {
    let mut f = Funding::default();
    match source {
        FundingSource::City => f.city = Fen(fen),
        FundingSource::County => f.county = Fen(fen),
        FundingSource::Town => f.town = Fen(fen),
        FundingSource::Other => f.other = Fen(fen),
        FundingSource::Canteen => f.canteen = Fen(fen),
    }
    f
}

fn subsidy_of(want: Want) -> i64 {
    match want {
        Sub(_, s, _) => s,
        Full(_) => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Jurong 句容: lunch only. 60–74 ¥1; 75–84 ¥5; 85–94 or 60+ 低保/计生特扶/失独/重点优抚/困难残疾
// ¥8; 95+ or 分散供养特困 ¥9. Set meals ¥9/¥11/¥13; delivery ¥2 always the elder's.

/// Lunch ¥11 (set meals from ¥9 to ¥13 at the counter), delivery ¥2.
fn jurong_canteen() -> Canteen {
    let mut c = canteen_in(1, "huayang");
    set_slot(&mut c, Slot::Lunch, 1100, Some((900, 1300)));
    c.delivery_surcharge = Some(Fen(200));
    c
}

#[rstest]
#[case::age_59(59, &[], None, 1100, Full(NoTier))]
#[case::age_60(60, &[], None, 1100, Sub("age_60", 100, 1000))]
#[case::age_74(74, &[], None, 1100, Sub("age_60", 100, 1000))]
#[case::age_75(75, &[], None, 1100, Sub("age_75", 500, 600))]
#[case::age_84(84, &[], None, 1100, Sub("age_75", 500, 600))]
#[case::age_85(85, &[], None, 1100, Sub("age_85", 800, 300))]
#[case::age_94(94, &[], None, 1100, Sub("age_85", 800, 300))]
#[case::age_95(95, &[], None, 1100, Sub("age_95", 900, 200))]
#[case::age_103(103, &[], None, 1100, Sub("age_95", 900, 200))]
#[case::dibao_60(60, &["dibao"], None, 1100, Sub("priority", 800, 300))]
#[case::shidu_66(66, &["shidu"], None, 1100, Sub("priority", 800, 300))]
#[case::youfu_70(70, &["youfu"], None, 1100, Sub("priority", 800, 300))]
#[case::severe_disability_62(62, &["severe_disability"], None, 1100, Sub("priority", 800, 300))]
#[case::dibao_59(59, &["dibao"], None, 1100, Full(NoTier))]
#[case::dibao_80_beats_age_75(80, &["dibao"], None, 1100, Sub("priority", 800, 300))]
#[case::tekun_60(60, &["tekun"], None, 1100, Sub("tekun", 900, 200))]
#[case::tekun_59(59, &["tekun"], None, 1100, Full(NoTier))]
// 就高不重复: 95+ and 特困 both give ¥9, once.
#[case::tekun_97_not_summed(97, &["tekun", "dibao"], None, 1100, Sub("age_95", 900, 200))]
#[case::dibao_90_not_summed(90, &["dibao"], None, 1100, Sub("age_85", 800, 300))]
// 孤寡 and 低保边缘 are not among Jurong's categories: the age tier applies.
#[case::gugua_70(70, &["gugua", "dibao_edge"], None, 1100, Sub("age_60", 100, 1000))]
// The three set meals.
#[case::set_9_age_60(60, &[], Some(900), 900, Sub("age_60", 100, 800))]
#[case::set_13_age_75(75, &[], Some(1300), 1300, Sub("age_75", 500, 800))]
#[case::set_9_age_95(95, &[], Some(900), 900, Sub("age_95", 900, 0))]
#[case::set_13_tekun(61, &["tekun"], Some(1300), 1300, Sub("tekun", 900, 400))]
fn jurong_tiers(
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] counter: Option<i64>,
    #[case] price: i64,
    #[case] want: Want,
) {
    let p = jurong();
    let r = elder_aged(age, meal(), categories);
    let a = priced(lunch_on(meal()), counter);
    let got = check(&decide(&p, &r, &jurong_canteen(), &a, &[]), price, want);
    assert_eq!(got.funding, only(FundingSource::City, subsidy_of(want)));
    assert_eq!(got.operating, Fen::ZERO);
}

#[rstest]
#[case::eve_of_60(d(1965, 6, 10), d(2025, 6, 9), Full(NoTier))]
#[case::turns_60(d(1965, 6, 10), d(2025, 6, 10), Sub("age_60", 100, 1000))]
#[case::eve_of_75(d(1950, 6, 10), d(2025, 6, 9), Sub("age_60", 100, 1000))]
#[case::turns_75(d(1950, 6, 10), d(2025, 6, 10), Sub("age_75", 500, 600))]
#[case::eve_of_85(d(1940, 6, 10), d(2025, 6, 9), Sub("age_75", 500, 600))]
#[case::turns_85(d(1940, 6, 10), d(2025, 6, 10), Sub("age_85", 800, 300))]
#[case::eve_of_95(d(1930, 6, 10), d(2025, 6, 9), Sub("age_85", 800, 300))]
#[case::turns_95(d(1930, 6, 10), d(2025, 6, 10), Sub("age_95", 900, 200))]
// Born 29 Feb 1940: 2025 has no 29 Feb, so they are 85 on 28 Feb (民法典 art. 202).
#[case::leap_born_27_feb(d(1940, 2, 29), d(2025, 2, 27), Sub("age_75", 500, 600))]
#[case::leap_born_28_feb(d(1940, 2, 29), d(2025, 2, 28), Sub("age_85", 800, 300))]
#[case::leap_born_1_mar(d(1940, 2, 29), d(2025, 3, 1), Sub("age_85", 800, 300))]
// In a leap year the birthday is 29 Feb itself: still 83 on the 28th.
#[case::leap_born_leap_year(d(1940, 2, 29), d(2024, 2, 28), Sub("age_75", 500, 600))]
fn jurong_birthdays(#[case] birth: NaiveDate, #[case] date: NaiveDate, #[case] want: Want) {
    let decision = decide(
        &jurong(),
        &elder(birth, &[]),
        &jurong_canteen(),
        &lunch_on(date),
        &[],
    );
    check(&decision, 1100, want);
}

#[test]
fn jurong_delivery_fee_is_always_the_elders() {
    let p = jurong();
    let c = jurong_canteen();
    // An 85-year-old, the ¥11 set meal delivered: ¥8 off the meal, the ¥2 fee paid in full.
    let r = elder_aged(85, meal(), &[]);
    let a = delivered(priced(lunch_on(meal()), Some(1100)));
    let got = check(&decide(&p, &r, &c, &a, &[]), 1300, Sub("age_85", 800, 500));
    assert_eq!(
        (got.delivery_fee, got.delivery_subsidy),
        (Fen(200), Fen::ZERO)
    );
    assert_eq!(got.funding, only(FundingSource::City, 800));
    // ¥9 to a 95-year-old: the ¥9 subsidy takes the whole meal, never the fee.
    let r = elder_aged(95, meal(), &[]);
    let a = delivered(priced(lunch_on(meal()), Some(900)));
    let got = check(&decide(&p, &r, &c, &a, &[]), 1100, Sub("age_95", 900, 200));
    assert_eq!(
        (got.delivery_fee, got.delivery_subsidy),
        (Fen(200), Fen::ZERO)
    );
    // A 59-year-old pays meal and fee.
    let r = elder_aged(59, meal(), &[]);
    let got = check(&decide(&p, &r, &c, &a, &[]), 1100, Full(NoTier));
    assert_eq!(got.delivery_fee, Fen(200));
}

#[rstest]
#[case::below_the_cheapest_set(899)]
#[case::above_the_dearest_set(1301)]
#[case::nothing(0)]
fn jurong_counter_price_out_of_range_is_refused(#[case] counter: i64) {
    let a = priced(lunch_on(meal()), Some(counter));
    let r = elder_aged(85, meal(), &[]);
    assert_eq!(
        decide(&jurong(), &r, &jurong_canteen(), &a, &[]),
        Decision::Rejected(Rejection::PriceOutOfRange {
            min: Fen(900),
            max: Fen(1300)
        })
    );
}

#[test]
fn jurong_one_subsidised_lunch_a_day_and_no_dinner() {
    let p = jurong();
    let c = jurong_canteen();
    let r = elder_aged(85, meal(), &[]);
    let history = [prior(meal(), Slot::Lunch, 800)];
    assert_eq!(
        decide(&p, &r, &c, &lunch_on(meal()), &history),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
    // Dinner (¥18 at this canteen) is not subsidised in Jurong.
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &history),
        1800,
        Full(SlotNotCovered),
    );
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &[]),
        1800,
        Full(SlotNotCovered),
    );
    // The next day's lunch is subsidised again.
    let next = meal().succ_opt().unwrap();
    check(
        &decide(&p, &r, &c, &lunch_on(next), &history),
        1100,
        Sub("age_85", 800, 300),
    );
}

// ---------------------------------------------------------------------------------------------
// Xuyi 盱眙 (figures from the issue): ¥1 a meal, 60+ (assumed), only 6:00–9:00, 11:00–13:30,
// 17:30–19:30; outside those, full price. County finance.

/// Breakfast 05:30–10:00 ¥3, lunch 10:30–14:00 ¥12, dinner 17:00–20:30 ¥10: every slot is wider
/// than the subsidy window inside it.
fn xuyi_canteen() -> Canteen {
    let mut c = canteen_in(1, "xuyi_town");
    c.slots = vec![
        window(Slot::Breakfast, t(5, 30), t(10, 0), 300),
        window(Slot::Lunch, t(10, 30), t(14, 0), 1200),
        window(Slot::Dinner, t(17, 0), t(20, 30), 1000),
    ];
    c
}

#[rstest]
#[case::before_6(5, 59, 59, 300, Full(OutsideSubsidyWindow))]
#[case::at_6(6, 0, 0, 300, Sub("age_60", 100, 200))]
#[case::at_9(9, 0, 0, 300, Sub("age_60", 100, 200))]
#[case::at_9_00_59(9, 0, 59, 300, Sub("age_60", 100, 200))]
#[case::at_9_01(9, 1, 0, 300, Full(OutsideSubsidyWindow))]
#[case::breakfast_late(9, 45, 0, 300, Full(OutsideSubsidyWindow))]
#[case::at_10_59(10, 59, 0, 1200, Full(OutsideSubsidyWindow))]
#[case::at_10_59_59(10, 59, 59, 1200, Full(OutsideSubsidyWindow))]
#[case::at_11(11, 0, 0, 1200, Sub("age_60", 100, 1100))]
#[case::at_13_30(13, 30, 0, 1200, Sub("age_60", 100, 1100))]
#[case::at_13_30_59(13, 30, 59, 1200, Sub("age_60", 100, 1100))]
#[case::at_13_31(13, 31, 0, 1200, Full(OutsideSubsidyWindow))]
#[case::at_17_29(17, 29, 59, 1000, Full(OutsideSubsidyWindow))]
#[case::at_17_30(17, 30, 0, 1000, Sub("age_60", 100, 900))]
#[case::at_19_30(19, 30, 59, 1000, Sub("age_60", 100, 900))]
#[case::at_19_31(19, 31, 0, 1000, Full(OutsideSubsidyWindow))]
fn xuyi_windows(
    #[case] h: u32,
    #[case] m: u32,
    #[case] s: u32,
    #[case] price: i64,
    #[case] want: Want,
) {
    let r = elder_aged(70, meal(), &[]);
    let a = card_at(at_s(meal(), h, m, s));
    let got = check(&decide(&xuyi(), &r, &xuyi_canteen(), &a, &[]), price, want);
    assert_eq!(got.funding, only(FundingSource::County, subsidy_of(want)));
}

#[test]
fn xuyi_age_registration_and_three_meals_a_day() {
    let p = xuyi();
    let c = xuyi_canteen();
    let lunch = card_at(at_s(meal(), 12, 0, 0));
    check(
        &decide(&p, &elder_aged(59, meal(), &[]), &c, &lunch, &[]),
        1200,
        Full(NoTier),
    );
    check(
        &decide(&p, &elder_aged(60, meal(), &[]), &c, &lunch, &[]),
        1200,
        Sub("age_60", 100, 1100),
    );
    check(
        &decide(&p, &elder(d(1965, 6, 11), &[]), &c, &lunch, &[]),
        1200,
        Full(NoTier),
    );
    let outsider = non_local(elder_aged(70, meal(), &[]));
    check(
        &decide(&p, &outsider, &c, &lunch, &[]),
        1200,
        Full(NotLocal),
    );
    // ¥1 at each of the three meals of a day; a second lunch is refused.
    let r = elder_aged(70, meal(), &[]);
    let history = [
        prior(meal(), Slot::Breakfast, 100),
        prior(meal(), Slot::Lunch, 100),
    ];
    let dinner = card_at(at_s(meal(), 18, 0, 0));
    check(
        &decide(&p, &r, &c, &dinner, &history),
        1000,
        Sub("age_60", 100, 900),
    );
    assert_eq!(
        decide(&p, &r, &c, &lunch, &history),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
}

// ---------------------------------------------------------------------------------------------
// Zhuhai 珠海: Zhuhai-registered 60+: city ¥3 + ¥3 from the district of registration, once a day,
// only for a meal of ¥10 or more (delivery fee not counted, nor subsidised); 优特 canteens take
// 10% off what is left. Published example: ¥20 at a 优特 canteen ⇒ (20 − 3 − 3) × 0.9 = ¥12.60.

const XIANGZHOU: &str = "xiangzhou";
const DOUMEN: &str = "doumen";

/// Canteen 7: a 优特 canteen in Xiangzhou; 8: an ordinary one in Xiangzhou; 9: one in Doumen.
/// Lunch ¥20, counter prices ¥5–¥30; dinner ¥18; delivery ¥2.
fn zhuhai_canteen(id: i64) -> Canteen {
    let (town, district) = match id {
        7 => ("gongbei", XIANGZHOU),
        8 => ("xiangwan", XIANGZHOU),
        9 => ("baijiao", DOUMEN),
        _ => panic!("no Zhuhai canteen {id}"),
    };
    let mut c = canteen_in(id, town);
    c.district = Some(DistrictCode::new(district));
    set_slot(&mut c, Slot::Lunch, 2000, Some((500, 3000)));
    c.delivery_surcharge = Some(Fen(200));
    c
}

fn zhuhai_elder(district: Option<&str>) -> Diner {
    let r = elder_aged(70, meal(), &[]);
    match district {
        Some(dist) => registered_in(r, dist),
        None => r,
    }
}

#[rstest]
// The published example: 2000 − 300 − 300 = 1400, 10% = 140, self-pay 1260.
#[case::published_example(7, Some(XIANGZHOU), 2000, Sub("city", 740, 1260), [300, 300, 140], &["district", "youte"], 0)]
// ¥19.99: 1999 − 600 = 1399, 10% = 139.9 ⇒ 139 (down), self-pay 1399 − 139 = 1260.
#[case::odd_remainder(7, Some(XIANGZHOU), 1999, Sub("city", 739, 1260), [300, 300, 139], &["district", "youte"], 0)]
// ¥10.01: 1001 − 600 = 401, 10% = 40.1 ⇒ 40, self-pay 361.
#[case::odd_remainder_small(7, Some(XIANGZHOU), 1001, Sub("city", 640, 361), [300, 300, 40], &["district", "youte"], 0)]
#[case::ordinary_canteen(8, Some(XIANGZHOU), 2000, Sub("city", 600, 1400), [300, 300, 0], &["district"], 0)]
// Another district's canteen: the city's ¥3 only.
#[case::other_districts_canteen(9, Some(XIANGZHOU), 2000, Sub("city", 300, 1700), [300, 0, 0], &[], 0)]
// A Doumen elder at Xiangzhou's 优特 canteen: 2000 − 300 = 1700, 10% = 170.
#[case::youte_other_district(7, Some(DOUMEN), 2000, Sub("city", 470, 1530), [300, 0, 170], &["youte"], 0)]
#[case::youte_no_district_known(7, None, 2000, Sub("city", 470, 1530), [300, 0, 170], &["youte"], 0)]
// The ¥10 threshold.
#[case::below_minimum(8, Some(XIANGZHOU), 999, Full(BelowMinimumPrice), [0, 0, 0], &[], 0)]
#[case::at_minimum(8, Some(XIANGZHOU), 1000, Sub("city", 600, 400), [300, 300, 0], &["district"], 0)]
#[case::at_minimum_youte(7, Some(XIANGZHOU), 1000, Sub("city", 640, 360), [300, 300, 40], &["district", "youte"], 0)]
#[case::below_minimum_youte(7, Some(XIANGZHOU), 999, Full(BelowMinimumPrice), [0, 0, 0], &[], 0)]
// The delivery fee neither counts towards ¥10 nor is subsidised: ¥9 + ¥2 is still below.
#[case::nine_plus_delivery(8, Some(XIANGZHOU), 900, Full(BelowMinimumPrice), [0, 0, 0], &[], 200)]
#[case::ten_plus_delivery(8, Some(XIANGZHOU), 1000, Sub("city", 600, 600), [300, 300, 0], &["district"], 200)]
#[case::published_example_delivered(7, Some(XIANGZHOU), 2000, Sub("city", 740, 1460), [300, 300, 140], &["district", "youte"], 200)]
fn zhuhai_meals(
    #[case] canteen: i64,
    #[case] district: Option<&str>,
    #[case] counter: i64,
    #[case] want: Want,
    #[case] split: [i64; 3],
    #[case] stacked: &[&str],
    #[case] delivery_fee: i64,
) {
    let r = zhuhai_elder(district);
    let mut a = priced(lunch_on(meal()), Some(counter));
    a.delivered = delivery_fee > 0;
    // The fee is its own line of the price, on top of the meal.
    let price = counter + delivery_fee;
    let got = check(
        &decide(&zhuhai(), &r, &zhuhai_canteen(canteen), &a, &[]),
        price,
        want,
    );
    let [city, county, canteen_share] = split;
    assert_eq!(
        got.funding,
        Funding {
            city: Fen(city),
            county: Fen(county),
            canteen: Fen(canteen_share),
            ..Funding::default()
        }
    );
    assert_eq!(got.stacked, stacked.to_vec());
    assert_eq!(got.stacked_subsidy, Fen(county + canteen_share));
    assert_eq!(got.delivery_fee, Fen(delivery_fee));
    assert_eq!(got.delivery_subsidy, Fen::ZERO);
    if matches!(want, Sub(..)) {
        assert_eq!(got.tier_subsidy(), Fen(300));
    }
}

#[test]
fn zhuhai_eligibility_caps_and_counter_bounds() {
    let p = zhuhai();
    let c = zhuhai_canteen(7);
    let lunch = lunch_on(meal());
    let young = registered_in(elder_aged(59, meal(), &[]), XIANGZHOU);
    check(&decide(&p, &young, &c, &lunch, &[]), 2000, Full(NoTier));
    let outsider = non_local(zhuhai_elder(Some(XIANGZHOU)));
    check(
        &decide(&p, &outsider, &c, &lunch, &[]),
        2000,
        Full(NotLocal),
    );
    // Born 29 Feb 1964: 60 on 29 Feb 2024 (a leap year), not on the 28th.
    let leap = registered_in(elder(d(1964, 2, 29), &[]), XIANGZHOU);
    check(
        &decide(&p, &leap, &c, &lunch_on(d(2024, 2, 28)), &[]),
        2000,
        Full(NoTier),
    );
    check(
        &decide(&p, &leap, &c, &lunch_on(d(2024, 2, 29)), &[]),
        2000,
        Sub("city", 740, 1260),
    );
    // Lunch only; one subsidised lunch a day.
    let r = zhuhai_elder(Some(XIANGZHOU));
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &[]),
        1800,
        Full(SlotNotCovered),
    );
    assert_eq!(
        decide(&p, &r, &c, &lunch, &[prior(meal(), Slot::Lunch, 300)]),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
    assert_eq!(
        decide(&p, &r, &c, &priced(lunch, Some(3001)), &[]),
        Decision::Rejected(Rejection::PriceOutOfRange {
            min: Fen(500),
            max: Fen(3000)
        })
    );
    assert_eq!(
        decide(&p, &r, &c, &priced(lunch, Some(499)), &[]),
        Decision::Rejected(Rejection::PriceOutOfRange {
            min: Fen(500),
            max: Fen(3000)
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Shenzhen 2023 深圳: working-day lunch at a canteen in the district of household registration.
// Registered 60+ 特困/低保/低保边缘/三属五老/计生特殊家庭 up to ¥15 (capped at the spend), registered
// 100+ ¥15, registered 70–99 ¥5; once a day. Delivery: ¥2 for 100+ and 70+ moderately or more
// disabled. ¥2 operating subsidy per subsidised meal to the canteen.

const FUTIAN: &str = "futian";
const NANSHAN: &str = "nanshan";

/// Lunch ¥20 (actual spend ¥8–¥30 at the counter), delivery fee `fee`.
fn sz_canteen(district: &str, fee: i64) -> Canteen {
    let mut c = canteen_in(1, &format!("{district}_street"));
    c.district = Some(DistrictCode::new(district));
    set_slot(&mut c, Slot::Lunch, 2000, Some((800, 3000)));
    c.delivery_surcharge = Some(Fen(fee));
    c
}

fn sz_elder(age: u32, date: NaiveDate, categories: &[&str]) -> Diner {
    registered_in(elder_aged(age, date, categories), FUTIAN)
}

#[track_caller]
fn sz_operating(got: &Accepted, want: Want) {
    match want {
        Sub(..) => assert_eq!(
            (got.operating, got.operating_source),
            (Fen(200), Some(FundingSource::City))
        ),
        Full(_) => assert_eq!((got.operating, got.operating_source), (Fen::ZERO, None)),
    }
}

#[rstest]
#[case::age_69(69, &[], None, 2000, Full(NoTier))]
#[case::age_70(70, &[], None, 2000, Sub("age_70_99", 500, 1500))]
#[case::age_99(99, &[], None, 2000, Sub("age_70_99", 500, 1500))]
#[case::age_100(100, &[], None, 2000, Sub("age_100", 1500, 500))]
#[case::age_104(104, &[], None, 2000, Sub("age_100", 1500, 500))]
#[case::tekun_60(60, &["tekun"], None, 2000, Sub("priority", 1500, 500))]
#[case::dibao_60(60, &["dibao"], None, 2000, Sub("priority", 1500, 500))]
#[case::dibao_59(59, &["dibao"], None, 2000, Full(NoTier))]
#[case::dibao_edge_61(61, &["dibao_edge"], None, 2000, Sub("priority", 1500, 500))]
#[case::youfu_65(65, &["youfu"], None, 2000, Sub("priority", 1500, 500))]
#[case::shidu_68(68, &["shidu"], None, 2000, Sub("priority", 1500, 500))]
#[case::priority_beats_age_75(75, &["dibao"], None, 2000, Sub("priority", 1500, 500))]
// 孤寡 and disability alone are not in the 2023 priority group: nothing before 70.
#[case::gugua_65(65, &["gugua"], None, 2000, Full(NoTier))]
#[case::disabled_3_65(65, &["disabled_3"], None, 2000, Full(NoTier))]
#[case::gugua_75(75, &["gugua"], None, 2000, Sub("age_70_99", 500, 1500))]
// Up to ¥15, never more than the actual spend.
#[case::priority_spends_12(75, &["dibao"], Some(1200), 1200, Sub("priority", 1200, 0))]
#[case::priority_spends_15(62, &["tekun"], Some(1500), 1500, Sub("priority", 1500, 0))]
#[case::priority_spends_15_01(62, &["tekun"], Some(1501), 1501, Sub("priority", 1500, 1))]
#[case::centenarian_spends_8(100, &[], Some(800), 800, Sub("age_100", 800, 0))]
#[case::age_75_spends_8(75, &[], Some(800), 800, Sub("age_70_99", 500, 300))]
fn shenzhen_tiers(
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] counter: Option<i64>,
    #[case] price: i64,
    #[case] want: Want,
) {
    let r = sz_elder(age, meal(), categories);
    let a = priced(lunch_on(meal()), counter);
    let got = check(
        &decide(&shenzhen(), &r, &sz_canteen(FUTIAN, 200), &a, &[]),
        price,
        want,
    );
    assert_eq!(got.funding, only(FundingSource::City, subsidy_of(want)));
    sz_operating(&got, want);
}

#[rstest]
#[case::ordinary_tuesday(d(2025, 6, 10), Weekday::Tue, true)]
#[case::ordinary_saturday(d(2026, 3, 7), Weekday::Sat, false)]
#[case::ordinary_sunday(d(2026, 3, 8), Weekday::Sun, false)]
#[case::ordinary_friday(d(2026, 3, 6), Weekday::Fri, true)]
#[case::new_year_2025(d(2025, 1, 1), Weekday::Wed, false)]
#[case::make_up_sunday_before_spring_2025(d(2025, 1, 26), Weekday::Sun, true)]
#[case::spring_festival_2025(d(2025, 1, 28), Weekday::Tue, false)]
#[case::spring_festival_2025_last(d(2025, 2, 4), Weekday::Tue, false)]
#[case::make_up_saturday_2025(d(2025, 2, 8), Weekday::Sat, true)]
#[case::qingming_2025(d(2025, 4, 4), Weekday::Fri, false)]
#[case::make_up_27_apr_2025(d(2025, 4, 27), Weekday::Sun, true)]
#[case::labour_day_2025(d(2025, 5, 5), Weekday::Mon, false)]
#[case::dragon_boat_2025(d(2025, 6, 2), Weekday::Mon, false)]
#[case::make_up_28_sep_2025(d(2025, 9, 28), Weekday::Sun, true)]
#[case::national_day_2025_last(d(2025, 10, 8), Weekday::Wed, false)]
#[case::make_up_11_oct_2025(d(2025, 10, 11), Weekday::Sat, true)]
#[case::new_year_2026(d(2026, 1, 2), Weekday::Fri, false)]
#[case::make_up_sunday_2026(d(2026, 1, 4), Weekday::Sun, true)]
#[case::make_up_14_feb_2026(d(2026, 2, 14), Weekday::Sat, true)]
#[case::spring_festival_monday_2026(d(2026, 2, 16), Weekday::Mon, false)]
#[case::spring_festival_2026_last(d(2026, 2, 23), Weekday::Mon, false)]
#[case::after_spring_festival_2026(d(2026, 2, 24), Weekday::Tue, true)]
#[case::make_up_28_feb_2026(d(2026, 2, 28), Weekday::Sat, true)]
#[case::qingming_2026(d(2026, 4, 6), Weekday::Mon, false)]
#[case::labour_day_2026(d(2026, 5, 1), Weekday::Fri, false)]
#[case::make_up_9_may_2026(d(2026, 5, 9), Weekday::Sat, true)]
#[case::dragon_boat_2026(d(2026, 6, 19), Weekday::Fri, false)]
#[case::make_up_20_sep_2026(d(2026, 9, 20), Weekday::Sun, true)]
#[case::mid_autumn_2026(d(2026, 9, 25), Weekday::Fri, false)]
#[case::national_day_2026(d(2026, 10, 7), Weekday::Wed, false)]
#[case::make_up_10_oct_2026(d(2026, 10, 10), Weekday::Sat, true)]
fn shenzhen_working_days(#[case] date: NaiveDate, #[case] weekday: Weekday, #[case] working: bool) {
    assert_eq!(date.weekday(), weekday, "the case's weekday");
    let r = sz_elder(75, date, &[]);
    let want = match working {
        true => Sub("age_70_99", 500, 1500),
        false => Full(NotWorkingDay),
    };
    let got = check(
        &decide(
            &shenzhen(),
            &r,
            &sz_canteen(FUTIAN, 200),
            &lunch_on(date),
            &[],
        ),
        2000,
        want,
    );
    sz_operating(&got, want);
}

#[test]
fn shenzhen_calendar_has_every_published_day() {
    let p = shenzhen();
    let cal = p.calendar.as_ref().expect("calendar");
    let span = |from: NaiveDate, to: NaiveDate| from.iter_days().take_while(move |x| *x <= to);
    let holidays: Vec<NaiveDate> = [
        (d(2025, 1, 1), d(2025, 1, 1)),
        (d(2025, 1, 28), d(2025, 2, 4)),
        (d(2025, 4, 4), d(2025, 4, 6)),
        (d(2025, 5, 1), d(2025, 5, 5)),
        (d(2025, 5, 31), d(2025, 6, 2)),
        (d(2025, 10, 1), d(2025, 10, 8)),
        (d(2026, 1, 1), d(2026, 1, 3)),
        (d(2026, 2, 15), d(2026, 2, 23)),
        (d(2026, 4, 4), d(2026, 4, 6)),
        (d(2026, 5, 1), d(2026, 5, 5)),
        (d(2026, 6, 19), d(2026, 6, 21)),
        (d(2026, 9, 25), d(2026, 9, 27)),
        (d(2026, 10, 1), d(2026, 10, 7)),
    ]
    .into_iter()
    .flat_map(|(from, to)| span(from, to))
    .collect();
    assert_eq!(holidays.len(), 28 + 33);
    for h in &holidays {
        assert!(cal.holidays.contains(h), "{h} is a holiday");
        assert!(!cal.is_working_day(*h), "{h}");
    }
    assert_eq!(cal.holidays.len(), holidays.len(), "no other holiday");
    let workdays = [
        d(2025, 1, 26),
        d(2025, 2, 8),
        d(2025, 4, 27),
        d(2025, 9, 28),
        d(2025, 10, 11),
        d(2026, 1, 4),
        d(2026, 2, 14),
        d(2026, 2, 28),
        d(2026, 5, 9),
        d(2026, 9, 20),
        d(2026, 10, 10),
    ];
    for w in workdays {
        assert!(cal.workdays.contains(&w) && cal.is_working_day(w), "{w}");
    }
    assert_eq!(cal.workdays.len(), workdays.len(), "no other make-up day");
}

#[test]
fn shenzhen_only_in_the_district_of_registration() {
    let p = shenzhen();
    let lunch = lunch_on(meal());
    let r = sz_elder(75, meal(), &[]);
    check(
        &decide(&p, &r, &sz_canteen(NANSHAN, 200), &lunch, &[]),
        2000,
        Full(OutsideOwnDistrict),
    );
    // Registered in Futian, living in Nanshan: Futian's canteens, not Nanshan's.
    let mut moved = sz_elder(75, meal(), &["dibao"]);
    moved.residence_district = Some(DistrictCode::new(NANSHAN));
    check(
        &decide(&p, &moved, &sz_canteen(NANSHAN, 200), &lunch, &[]),
        2000,
        Full(OutsideOwnDistrict),
    );
    let got = check(
        &decide(&p, &moved, &sz_canteen(FUTIAN, 200), &lunch, &[]),
        2000,
        Sub("priority", 1500, 500),
    );
    assert_eq!(got.funding_town.as_str(), REG_TOWN);
    // No district known for the elder: no canteen is theirs.
    let unknown = elder_aged(75, meal(), &[]);
    check(
        &decide(&p, &unknown, &sz_canteen(FUTIAN, 200), &lunch, &[]),
        2000,
        Full(OutsideOwnDistrict),
    );
    // Not Shenzhen-registered.
    let outsider = non_local(sz_elder(75, meal(), &[]));
    check(
        &decide(&p, &outsider, &sz_canteen(FUTIAN, 200), &lunch, &[]),
        2000,
        Full(NotLocal),
    );
}

#[rstest]
#[case::eve_of_70(d(1955, 6, 10), d(2025, 6, 9), Full(NoTier))]
#[case::turns_70(d(1955, 6, 10), d(2025, 6, 10), Sub("age_70_99", 500, 1500))]
#[case::eve_of_100(d(1925, 6, 10), d(2025, 6, 9), Sub("age_70_99", 500, 1500))]
#[case::turns_100(d(1925, 6, 10), d(2025, 6, 10), Sub("age_100", 1500, 500))]
// Born 29 Feb 1956: 70 on Saturday 28 Feb 2026, a make-up working day.
#[case::leap_born_27_feb(d(1956, 2, 29), d(2026, 2, 27), Full(NoTier))]
#[case::leap_born_28_feb(d(1956, 2, 29), d(2026, 2, 28), Sub("age_70_99", 500, 1500))]
fn shenzhen_birthdays(#[case] birth: NaiveDate, #[case] date: NaiveDate, #[case] want: Want) {
    let r = registered_in(elder(birth, &[]), FUTIAN);
    let got = check(
        &decide(
            &shenzhen(),
            &r,
            &sz_canteen(FUTIAN, 200),
            &lunch_on(date),
            &[],
        ),
        2000,
        want,
    );
    sz_operating(&got, want);
}

#[rstest]
// A centenarian: ¥15 off the meal and the ¥2 fee paid: 2200 − 1500 − 200 = 500.
#[case::centenarian(100, &[], 200, 2200, Sub("age_100", 1700, 500), 200)]
// A ¥3 fee: ¥2 of it paid, the elder pays ¥1 of it: 500 + 100 = 600.
#[case::centenarian_fee_3(100, &[], 300, 2300, Sub("age_100", 1700, 600), 200)]
// A ¥1.50 fee: the subsidy is never more than the fee.
#[case::centenarian_fee_1_50(100, &[], 150, 2150, Sub("age_100", 1650, 500), 150)]
#[case::moderately_disabled_70(70, &["disabled_2"], 200, 2200, Sub("age_70_99", 700, 1500), 200)]
#[case::severely_disabled_85(85, &["disabled_3"], 300, 2300, Sub("age_70_99", 700, 1600), 200)]
// 轻度失能 is not moderately disabled: the elder pays the fee.
#[case::mildly_disabled_75(75, &["disabled_1"], 200, 2200, Sub("age_70_99", 500, 1700), 0)]
// A bare `disabled` (失能, level not recorded) is not known to be moderate: see SOURCES.md.
#[case::disability_level_unknown_75(75, &["disabled"], 200, 2200, Sub("age_70_99", 500, 1700), 0)]
#[case::disabled_3_aged_69(69, &["disabled_3"], 200, 2200, Full(NoTier), 0)]
#[case::age_99_not_disabled(99, &[], 200, 2200, Sub("age_70_99", 500, 1700), 0)]
#[case::priority_not_disabled(65, &["dibao"], 200, 2200, Sub("priority", 1500, 700), 0)]
fn shenzhen_delivery(
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] fee: i64,
    #[case] price: i64,
    #[case] want: Want,
    #[case] delivery_subsidy: i64,
) {
    let r = sz_elder(age, meal(), categories);
    let a = delivered(lunch_on(meal()));
    let got = check(
        &decide(&shenzhen(), &r, &sz_canteen(FUTIAN, fee), &a, &[]),
        price,
        want,
    );
    assert_eq!(got.delivery_fee, Fen(fee));
    assert_eq!(got.delivery_subsidy, Fen(delivery_subsidy));
    assert_eq!(got.funding, only(FundingSource::City, subsidy_of(want)));
    assert_eq!(got.tier_subsidy() + got.delivery_subsidy, got.subsidy);
    sz_operating(&got, want);
}

#[test]
fn shenzhen_once_a_day_and_lunch_only() {
    let p = shenzhen();
    let c = sz_canteen(FUTIAN, 200);
    let r = sz_elder(100, meal(), &[]);
    assert_eq!(
        decide(
            &p,
            &r,
            &c,
            &lunch_on(meal()),
            &[prior(meal(), Slot::Lunch, 1500)]
        ),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
    let got = check(
        &decide(&p, &r, &c, &dinner_on(meal()), &[]),
        1800,
        Full(SlotNotCovered),
    );
    sz_operating(&got, Full(SlotNotCovered));
    // A delivered dinner: the service is lunch only, so the ¥2 delivery subsidy is not paid
    // either (it comes with a subsidised meal).
    let got = check(
        &decide(&p, &r, &c, &delivered(dinner_on(meal())), &[]),
        1800 + 200,
        Full(SlotNotCovered),
    );
    assert_eq!(
        (got.delivery_fee, got.delivery_subsidy),
        (Fen(200), Fen::ZERO)
    );
    // A holiday: no meal subsidy, so no operating subsidy; the elder pays fee and meal.
    let holiday = d(2026, 2, 16);
    let r = sz_elder(100, holiday, &[]);
    let got = check(
        &decide(&p, &r, &c, &delivered(lunch_on(holiday)), &[]),
        2200,
        Full(NotWorkingDay),
    );
    assert_eq!(
        (got.delivery_fee, got.delivery_subsidy, got.operating),
        (Fen(200), Fen::ZERO, Fen::ZERO)
    );
}

// ---------------------------------------------------------------------------------------------
// Fang County 房县 (figure from the issue): ¥2 a person a day over the day's meals, 65+ (assumed).

/// Breakfast ¥1.50 (counter ¥1–¥5), lunch ¥10, dinner ¥8.
fn fang_canteen() -> Canteen {
    let mut c = canteen_in(1, "chengguan");
    set_slot(&mut c, Slot::Breakfast, 150, Some((100, 500)));
    set_slot(&mut c, Slot::Lunch, 1000, None);
    set_slot(&mut c, Slot::Dinner, 800, None);
    c
}

#[test]
fn fang_county_two_yuan_a_day_shared_by_the_days_meals() {
    let p = fang();
    let c = fang_canteen();
    let r = elder_aged(70, meal(), &[]);
    let county = |fen| only(FundingSource::County, fen);
    // ¥1.50 breakfast takes 150 of the 200; lunch the other 50; dinner nothing.
    let b = check(
        &decide(&p, &r, &c, &breakfast_on(meal()), &[]),
        150,
        Sub("age_65", 150, 0),
    );
    assert_eq!(b.funding, county(150));
    let h1 = [prior(meal(), Slot::Breakfast, 150)];
    let l = check(
        &decide(&p, &r, &c, &lunch_on(meal()), &h1),
        1000,
        Sub("age_65", 50, 950),
    );
    assert_eq!(l.funding, county(50));
    let h2 = [h1[0], prior(meal(), Slot::Lunch, 50)];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &h2),
        800,
        Full(DailyCapReached),
    );
    // ¥1.99 breakfast: 199, leaving one fen for lunch.
    let a = priced(breakfast_on(meal()), Some(199));
    check(&decide(&p, &r, &c, &a, &[]), 199, Sub("age_65", 199, 0));
    let h = [prior(meal(), Slot::Breakfast, 199)];
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &h),
        1000,
        Sub("age_65", 1, 999),
    );
    // ¥3 breakfast uses the whole ¥2; lunch then pays in full.
    let a = priced(breakfast_on(meal()), Some(300));
    check(&decide(&p, &r, &c, &a, &[]), 300, Sub("age_65", 200, 100));
    let h = [prior(meal(), Slot::Breakfast, 200)];
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &h),
        1000,
        Full(DailyCapReached),
    );
    // Lunch first: 200; dinner nothing.
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &[]),
        1000,
        Sub("age_65", 200, 800),
    );
    let h = [prior(meal(), Slot::Lunch, 200)];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &h),
        800,
        Full(DailyCapReached),
    );
    // An unsubsidised meal earlier in the day takes nothing of the ¥2.
    let h = [prior(meal(), Slot::Breakfast, 0)];
    check(
        &decide(&p, &r, &c, &lunch_on(meal()), &h),
        1000,
        Sub("age_65", 200, 800),
    );
    // The next day starts afresh.
    let next = meal().succ_opt().unwrap();
    check(
        &decide(&p, &r, &c, &breakfast_on(next), &h2),
        150,
        Sub("age_65", 150, 0),
    );
    // One breakfast a day.
    assert_eq!(
        decide(&p, &r, &c, &breakfast_on(meal()), &h1),
        Decision::Rejected(Rejection::Duplicate {
            slot: Slot::Breakfast
        })
    );
    assert_eq!(
        decide(&p, &r, &c, &priced(breakfast_on(meal()), Some(99)), &[]),
        Decision::Rejected(Rejection::PriceOutOfRange {
            min: Fen(100),
            max: Fen(500)
        })
    );
}

#[rstest]
#[case::age_64(elder_aged(64, meal(), &[]), meal(), Full(NoTier))]
#[case::age_65(elder_aged(65, meal(), &[]), meal(), Sub("age_65", 200, 800))]
#[case::eve_of_65(elder(d(1960, 6, 11), &[]), meal(), Full(NoTier))]
// Born 29 Feb 1960: 65 on 28 Feb 2025.
#[case::leap_born_27_feb(elder(d(1960, 2, 29), &[]), d(2025, 2, 27), Full(NoTier))]
#[case::leap_born_28_feb(elder(d(1960, 2, 29), &[]), d(2025, 2, 28), Sub("age_65", 200, 800))]
#[case::not_local(non_local(elder_aged(70, meal(), &[])), meal(), Full(NotLocal))]
fn fang_county_who(#[case] r: Diner, #[case] date: NaiveDate, #[case] want: Want) {
    let got = check(
        &decide(&fang(), &r, &fang_canteen(), &lunch_on(date), &[]),
        1000,
        want,
    );
    assert_eq!(got.funding, only(FundingSource::County, subsidy_of(want)));
}

// ---------------------------------------------------------------------------------------------
// Tongliang 铜梁 (rule from the issue, amounts placeholders): one subsidised meal a day, lunch or
// dinner; 60+ ¥3, 80+ ¥5, 特困/低保 ¥5. Canteen: lunch ¥20, dinner ¥18, breakfast ¥6.

#[rstest]
#[case::age_59(59, &[], Slot::Lunch, 2000, Full(NoTier))]
#[case::age_60(60, &[], Slot::Lunch, 2000, Sub("age_60", 300, 1700))]
#[case::age_79_dinner(79, &[], Slot::Dinner, 1800, Sub("age_60", 300, 1500))]
#[case::age_80(80, &[], Slot::Lunch, 2000, Sub("age_80", 500, 1500))]
#[case::tekun_60(60, &["tekun"], Slot::Lunch, 2000, Sub("tekun_dibao", 500, 1500))]
#[case::dibao_65_dinner(65, &["dibao"], Slot::Dinner, 1800, Sub("tekun_dibao", 500, 1300))]
#[case::dibao_90_not_summed(90, &["dibao"], Slot::Lunch, 2000, Sub("tekun_dibao", 500, 1500))]
#[case::dibao_edge_65(65, &["dibao_edge"], Slot::Lunch, 2000, Sub("age_60", 300, 1700))]
#[case::breakfast(70, &[], Slot::Breakfast, 600, Full(SlotNotCovered))]
fn tongliang_tiers(
    #[case] age: u32,
    #[case] categories: &[&str],
    #[case] slot: Slot,
    #[case] price: i64,
    #[case] want: Want,
) {
    let r = elder_aged(age, meal(), categories);
    let a = match slot {
        Slot::Breakfast => breakfast_on(meal()),
        Slot::Lunch => lunch_on(meal()),
        Slot::Dinner => dinner_on(meal()),
    };
    let got = check(&decide(&tongliang(), &r, &canteen(), &a, &[]), price, want);
    assert_eq!(got.funding, only(FundingSource::County, subsidy_of(want)));
}

#[test]
fn tongliang_one_subsidised_meal_a_day() {
    let p = tongliang();
    let c = canteen();
    let r = elder_aged(70, meal(), &[]);
    // Lunch subsidised, so dinner is full price.
    let h = [prior(meal(), Slot::Lunch, 300)];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &h),
        1800,
        Full(DailyCapReached),
    );
    // Dinner alone is subsidised.
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &[]),
        1800,
        Sub("age_60", 300, 1500),
    );
    // A full-price lunch leaves the day's subsidised meal for dinner.
    let h0 = [prior(meal(), Slot::Lunch, 0)];
    check(
        &decide(&p, &r, &c, &dinner_on(meal()), &h0),
        1800,
        Sub("age_60", 300, 1500),
    );
    // A second lunch is refused; the next day's lunch is subsidised.
    assert_eq!(
        decide(&p, &r, &c, &lunch_on(meal()), &h),
        Decision::Rejected(Rejection::Duplicate { slot: Slot::Lunch })
    );
    let next = meal().succ_opt().unwrap();
    check(
        &decide(&p, &r, &c, &lunch_on(next), &h),
        2000,
        Sub("age_60", 300, 1700),
    );
    // Born 29 Feb 1948: 80 on 29 Feb 2028 (a leap year), still 79 on the 28th.
    let leap = elder(d(1948, 2, 29), &[]);
    check(
        &decide(&p, &leap, &c, &lunch_on(d(2028, 2, 28)), &[]),
        2000,
        Sub("age_60", 300, 1700),
    );
    check(
        &decide(&p, &leap, &c, &lunch_on(d(2028, 2, 29)), &[]),
        2000,
        Sub("age_80", 500, 1500),
    );
}

// ---------------------------------------------------------------------------------------------
// Beijing 北京: ¥3 operating subsidy per diner per day (test-only policy; meal amounts made up).

const BEIJING_TEST: &str = r#"{
  "id": "beijing-operating-test",
  "version": 1,
  "name": "北京式运营补贴（测试用，餐补金额为虚构）",
  "effective_from": "2025-01-01",
  "subsidy_town": "residence",
  "tiers": [
    {
      "code": "age_60",
      "name": "60周岁以上",
      "conditions": { "min_age": 60 },
      "benefit": { "per_meal": { "lunch": 300, "dinner": 300 } },
      "funding": [{ "source": "city", "percent": 100 }]
    }
  ],
  "operating": { "fen": 300, "per": "diner_day", "source": "city" }
}"#;

#[test]
fn beijing_operating_subsidy_once_per_diner_per_day() {
    let p = Policy::parse(BEIJING_TEST).expect("test policy");
    let c = canteen();
    let r = elder_aged(70, meal(), &[]);
    let op = |a: &Accepted| (a.operating, a.operating_source);
    let paid = (Fen(300), Some(FundingSource::City));
    let none = (Fen::ZERO, None);
    let lunch = check(
        &decide(&p, &r, &c, &lunch_on(meal()), &[]),
        2000,
        Sub("age_60", 300, 1700),
    );
    assert_eq!(op(&lunch), paid);
    // Dinner after a subsidised lunch: the meal is subsidised, the diner-day already paid.
    let h = [prior(meal(), Slot::Lunch, 300)];
    let dinner = check(
        &decide(&p, &r, &c, &dinner_on(meal()), &h),
        1800,
        Sub("age_60", 300, 1500),
    );
    assert_eq!(op(&dinner), none);
    // After an unsubsidised lunch the dinner is the day's first subsidised meal.
    let h0 = [prior(meal(), Slot::Lunch, 0)];
    let dinner = check(
        &decide(&p, &r, &c, &dinner_on(meal()), &h0),
        1800,
        Sub("age_60", 300, 1500),
    );
    assert_eq!(op(&dinner), paid);
    // Next day: paid again. Too young: nothing.
    let next = meal().succ_opt().unwrap();
    let lunch = check(
        &decide(&p, &r, &c, &lunch_on(next), &h),
        2000,
        Sub("age_60", 300, 1700),
    );
    assert_eq!(op(&lunch), paid);
    let young = elder_aged(59, meal(), &[]);
    let lunch = check(
        &decide(&p, &young, &c, &lunch_on(meal()), &[]),
        2000,
        Full(NoTier),
    );
    assert_eq!(op(&lunch), none);
}

// ---------------------------------------------------------------------------------------------
// The documents themselves.

#[test]
fn every_shipped_policy_parses_and_writes_back() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("policies dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let p = Policy::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let again = serde_json::to_string(&p).expect("serialises");
        assert_eq!(
            Policy::parse(&again).as_ref(),
            Ok(&p),
            "{} writes back",
            path.display()
        );
        // a policy's versions share its id: (id, version) is unique
        assert!(
            !ids.contains(&(p.id.clone(), p.version)),
            "{}: id {} version {} used twice",
            path.display(),
            p.id,
            p.version
        );
        ids.push((p.id, p.version));
    }
    for id in [
        "jurong",
        "xuyi",
        "zhuhai",
        "shenzhen-2023",
        "fang-county",
        "tongliang",
    ] {
        assert!(ids.iter().any(|(i, _)| i == id), "{id} is shipped");
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[rstest]
#[case::workday_on_a_monday("shenzhen",
    |v: &mut Value| v["calendar"]["workdays"].as_array_mut().unwrap().push(json!("2026-01-05")),
    "calendar.workdays", "2026-01-05 is a Monday to Friday")]
#[case::holiday_and_workday("shenzhen",
    |v: &mut Value| v["calendar"]["holidays"].as_array_mut().unwrap().push(json!("2026-01-04")),
    "calendar.workdays", "2026-01-04 is also listed as a holiday")]
#[case::working_days_without_calendar("shenzhen",
    |v: &mut Value| { v.as_object_mut().unwrap().remove("calendar"); },
    "calendar", "working_days_only")]
#[case::bad_holiday_date("shenzhen",
    |v: &mut Value| v["calendar"]["holidays"][3] = json!("2025-02-30"),
    "calendar.holidays[3]", "out of range")]
#[case::unknown_calendar_field("shenzhen",
    |v: &mut Value| v["calendar"]["make_up"] = json!([]),
    "calendar.make_up", "unknown field `make_up`")]
#[case::zero_delivery_subsidy("shenzhen",
    |v: &mut Value| v["delivery"]["subsidies"][1]["fen"] = json!(0),
    "delivery.subsidies[1].fen", "must be more than 0 fen")]
#[case::delivery_code_twice("shenzhen",
    |v: &mut Value| v["delivery"]["subsidies"][1]["code"] = json!("age_100"),
    "delivery.subsidies[1].code", "'age_100' appears twice")]
#[case::delivery_funding_short("shenzhen",
    |v: &mut Value| v["delivery"]["subsidies"][0]["funding"][0]["percent"] = json!(90),
    "delivery.subsidies[0].funding", "percent shares add up to 90, not 100")]
#[case::operating_per_week("shenzhen",
    |v: &mut Value| v["operating"]["per"] = json!("week"),
    "operating.per", "unknown variant `week`")]
#[case::operating_zero("shenzhen",
    |v: &mut Value| v["operating"]["fen"] = json!(0),
    "operating.fen", "must be more than 0 fen")]
#[case::window_ends_before_start("xuyi",
    |v: &mut Value| v["windows"][0]["end"] = json!("05:00"),
    "windows[0].end", "must be after start")]
#[case::window_ends_at_start("xuyi",
    |v: &mut Value| v["windows"][2]["end"] = json!("17:30"),
    "windows[2].end", "must be after start")]
#[case::window_not_a_time("xuyi",
    |v: &mut Value| v["windows"][1]["start"] = json!("25:00"),
    "windows[1].start", "input is out of range")]
#[case::window_unknown_slot("xuyi",
    |v: &mut Value| v["windows"][1]["slot"] = json!("brunch"),
    "windows[1].slot", "unknown variant `brunch`")]
#[case::stacked_per_day("zhuhai",
    |v: &mut Value| v["stacked"][0]["benefit"] = json!({ "per_day": { "fen": 300, "slots": ["lunch"] } }),
    "stacked[0].benefit.per_day", "a daily amount is shared")]
#[case::tier_percent_of_remainder("zhuhai",
    |v: &mut Value| v["tiers"][0]["benefit"] = json!({ "percent": { "percent": 10, "slots": ["lunch"], "of": "remainder" } }),
    "tiers[0].benefit.percent.of", "a tier is the first subsidy")]
#[case::stacked_percent_zero("zhuhai",
    |v: &mut Value| v["stacked"][1]["benefit"]["percent"]["percent"] = json!(0),
    "stacked[1].benefit.percent.percent", "must be between 1 and 100")]
#[case::stacked_percent_of_what("zhuhai",
    |v: &mut Value| v["stacked"][1]["benefit"]["percent"]["of"] = json!("cost"),
    "stacked[1].benefit.percent.of", "unknown variant `cost`")]
#[case::stacked_code_of_a_tier("zhuhai",
    |v: &mut Value| v["stacked"][1]["code"] = json!("city"),
    "stacked[1].code", "'city' is used by an earlier tier")]
#[case::stacked_unknown_source("zhuhai",
    |v: &mut Value| v["stacked"][1]["funding"][0]["source"] = json!("shop"),
    "stacked[1].funding[0].source", "unknown variant `shop`")]
#[case::min_price_zero("zhuhai",
    |v: &mut Value| v["min_price"] = json!(0),
    "min_price", "must be more than 0 fen")]
#[case::unknown_condition("jurong",
    |v: &mut Value| v["tiers"][0]["conditions"]["own_town"] = json!(true),
    "tiers[0].conditions.own_town", "unknown field `own_town`")]
#[case::delivery_subsidy_without_funding("jurong",
    |v: &mut Value| v["delivery"]["subsidies"] = json!([{ "code": "x", "name": "x", "fen": 200, "funding": [] }]),
    "delivery.subsidies[0].funding", "at least one source")]
#[case::per_day_no_slots("fang",
    |v: &mut Value| v["tiers"][0]["benefit"]["per_day"]["slots"] = json!([]),
    "tiers[0].benefit.per_day.slots", "names no slot")]
#[case::per_day_cap_zero("tongliang",
    |v: &mut Value| v["tiers"][2]["caps"]["per_day"] = json!(0),
    "tiers[2].caps", "a cap of 0 would subsidise nothing")]
fn parse_names_the_field_of_a_bad_document(
    #[case] city: &str,
    #[case] edit: fn(&mut Value),
    #[case] field: &str,
    #[case] reason: &str,
) {
    let mut v = json_of(match city {
        "shenzhen" => include_str!("../policies/shenzhen-2023.json"),
        "xuyi" => include_str!("../policies/xuyi.json"),
        "zhuhai" => include_str!("../policies/zhuhai.json"),
        "jurong" => include_str!("../policies/jurong.json"),
        "fang" => include_str!("../policies/fang-county.json"),
        "tongliang" => include_str!("../policies/tongliang.json"),
        other => panic!("no city {other}"),
    });
    edit(&mut v);
    let e = Policy::parse(&v.to_string()).expect_err("the document should be refused");
    assert_eq!(e.field, field, "{e}");
    assert!(e.reason.contains(reason), "{e}");
}
