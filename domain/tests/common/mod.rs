//! Builders shared by the domain's table and property tests: a canteen, a resident, an attempt.

#![allow(dead_code)]

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use zhucan_domain::resident::Consent;
use zhucan_domain::settle::{Accepted, Attempt};
use zhucan_domain::{
    Canteen, CanteenId, CanteenKind, Category, Decision, Fen, Method, OperatorKind, Resident,
    ResidentId, ResidentStatus, Sex, Slot, SlotWindow, TownCode,
};

pub const REG_TOWN: &str = "choucheng";
pub const HOME_TOWN: &str = "futian";

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

pub fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

pub fn at(date: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
    date.and_time(t(h, m))
}

pub fn window(slot: Slot, start: NaiveTime, end: NaiveTime, price: i64) -> SlotWindow {
    SlotWindow {
        slot,
        start,
        end,
        price: Fen(price),
        price_range: None,
    }
}

/// A canteen in `town` serving breakfast 06:30–08:30 (600), lunch 10:30–13:00 (2000) and
/// dinner 16:30–18:30 (1800), delivering for 300 fen more.
pub fn canteen_in(id: i64, town: &str) -> Canteen {
    Canteen {
        id: CanteenId(id),
        name: format!("canteen {id}"),
        kind: CanteenKind::CareCentre,
        town: TownCode::new(town),
        operator: "operator".into(),
        operator_kind: OperatorKind::Contracted,
        slots: vec![
            window(Slot::Breakfast, t(6, 30), t(8, 30), 600),
            window(Slot::Lunch, t(10, 30), t(13, 0), 2000),
            window(Slot::Dinner, t(16, 30), t(18, 30), 1800),
        ],
        delivery_surcharge: Some(Fen(300)),
        district: None,
    }
}

pub fn canteen() -> Canteen {
    canteen_in(1, REG_TOWN)
}

/// The same canteen with every slot at `price`.
pub fn canteen_priced(price: i64) -> Canteen {
    let mut c = canteen();
    for w in &mut c.slots {
        w.price = Fen(price);
    }
    c
}

/// An active, local resident born on `birth`, registered in `REG_TOWN` and living in
/// `HOME_TOWN`, face-enrolled with consent, no prepaid account.
pub fn resident_born(birth: NaiveDate, categories: &[&str]) -> Resident {
    Resident {
        id: ResidentId(7),
        name: "王阿婆".into(),
        sex: Sex::Female,
        birth_date: birth,
        local_registration: true,
        registered_town: TownCode::new(REG_TOWN),
        residence_town: TownCode::new(HOME_TOWN),
        categories: categories
            .iter()
            .map(|c| Category::new(*c))
            .collect::<BTreeSet<_>>(),
        status: ResidentStatus::Active,
        card_code: "card-7".into(),
        designated_canteen: None,
        prepaid_balance: None,
        consent: Consent {
            face_enrolment: true,
            template_sharing: false,
        },
        face_enrolled: true,
    }
}

/// A resident who turns exactly `age` on `meal_date` (`meal_date` is not 29 February).
pub fn resident_aged(age: u32, meal_date: NaiveDate, categories: &[&str]) -> Resident {
    let birth = meal_date.with_year_minus(age);
    resident_born(birth, categories)
}

trait YearMinus {
    fn with_year_minus(self, years: u32) -> NaiveDate;
}

impl YearMinus for NaiveDate {
    fn with_year_minus(self, years: u32) -> NaiveDate {
        use chrono::Datelike;
        self.with_year(self.year() - years as i32)
            .expect("not 29 February")
    }
}

pub fn card_at(served_at: NaiveDateTime) -> Attempt {
    Attempt {
        served_at,
        method: Method::Card,
        delivered: false,
        proxy: false,
        counter_price: None,
    }
}

pub fn lunch_on(date: NaiveDate) -> Attempt {
    card_at(at(date, 11, 30))
}

pub fn dinner_on(date: NaiveDate) -> Attempt {
    card_at(at(date, 17, 0))
}

pub fn breakfast_on(date: NaiveDate) -> Attempt {
    card_at(at(date, 7, 0))
}

#[track_caller]
pub fn accepted(decision: &Decision) -> &Accepted {
    match decision {
        Decision::Accepted(a) => a,
        Decision::Rejected(r) => panic!("expected an accepted meal, got rejected: {r:?}"),
    }
}
