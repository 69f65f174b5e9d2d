//! Property tests over the real storage and ingest path (no HTTP, so they stay fast): statement
//! totals equal the sum of their lines for random sets of settlements, and replaying any batch
//! changes nothing.

use chrono::{Duration, NaiveDate, TimeZone};
use proptest::prelude::*;
use serde_json::json;
use zhucan_domain::api::{BatchResult, NewCanteen, SettlementItem, SlotDto, TownDto};
use zhucan_domain::canteen::{CanteenKind, OperatorKind};
use zhucan_domain::resident::Consent;
use zhucan_domain::{CanteenId, Category, Fen, Method, Policy, ResidentId, ResidentStatus, Slot};
use zhucan_server::db::{self, Db, residents::NewResidentRow, statements::Filter};
use zhucan_server::{ingest, reports};

use crate::helpers::{date, national_id, now};

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
    canteens: Vec<CanteenId>,
    residents: Vec<ResidentId>,
}

fn t(h: u32, m: u32) -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(h, m, 0).expect("time")
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("p.sqlite")).expect("db");
    let (canteens, residents) = db
        .write_blocking(|tx| {
            for (code, name) in [("choucheng", "稠城街道"), ("fotang", "佛堂镇")] {
                db::towns::insert(
                    tx,
                    &TownDto {
                        district: None,
                        code: code.into(),
                        name: name.into(),
                    },
                )?;
            }
            let p = Policy::example_yiwu();
            db::policies::insert(
                tx,
                &p,
                &serde_json::to_string(&p).expect("json"),
                "2026-01-01T00:00:00Z",
            )?;
            let mut cs = Vec::new();
            for (i, town) in ["choucheng", "fotang", "fotang"].into_iter().enumerate() {
                cs.push(db::canteens::insert(
                    tx,
                    &NewCanteen {
                        name: format!("食堂{i}"),
                        kind: CanteenKind::Station,
                        town: town.into(),
                        operator: "o".into(),
                        operator_kind: OperatorKind::VillageRun,
                        slots: vec![
                            SlotDto {
                                price_min: None,
                                price_max: None,
                                slot: Slot::Breakfast,
                                start: t(6, 30),
                                end: t(8, 30),
                                price: Fen(400),
                            },
                            SlotDto {
                                price_min: None,
                                price_max: None,
                                slot: Slot::Lunch,
                                start: t(10, 30),
                                end: t(13, 0),
                                price: Fen(1200 + 100 * i as i64),
                            },
                            SlotDto {
                                price_min: None,
                                price_max: None,
                                slot: Slot::Dinner,
                                start: t(16, 30),
                                end: t(18, 30),
                                price: Fen(1000),
                            },
                        ],
                        delivery_surcharge: Some(Fen(300)),
                    },
                    "2026-01-01T00:00:00Z",
                )?);
            }
            let mut rs = Vec::new();
            let births = [
                date(1920, 3, 1),
                date(1933, 6, 6),
                date(1944, 9, 9),
                date(1958, 12, 12),
                date(1962, 1, 1),
                date(1926, 3, 20),
            ];
            for (i, birth) in births.into_iter().enumerate() {
                let nid =
                    zhucan_domain::NationalId::parse(&national_id(birth, i as u32, i % 2 == 0))
                        .expect("nid");
                rs.push(db::residents::insert(
                    tx,
                    &NewResidentRow {
                        name: format!("老人{i}"),
                        sex: nid.sex(),
                        birth_date: birth,
                        national_id_index: format!("idx{i}"),
                        national_id_sealed: None,
                        local_registration: i != 4,
                        registered_town: if i % 2 == 0 {
                            "choucheng".into()
                        } else {
                            "fotang".into()
                        },
                        residence_town: "choucheng".into(),
                        categories: if i == 3 {
                            [Category::new("tekun")].into()
                        } else {
                            Default::default()
                        },
                        status: ResidentStatus::Active,
                        card_code: format!("C{i}"),
                        designated_canteen: None,
                        prepaid_balance: (i == 1).then_some(Fen(5000)),
                        consent: Consent::default(),
                        face_enrolled: false,
                    },
                    "2026-01-01T00:00:00Z",
                    "test",
                )?);
            }
            Ok((cs, rs))
        })
        .expect("fixture");
    Fixture {
        _dir: dir,
        db,
        canteens,
        residents,
    }
}

/// A random meal attempt in February 2026 (some outside any slot window, some duplicates).
fn arb_item() -> impl Strategy<Value = (usize, usize, i64, i64, bool, u16)> {
    (
        0usize..6,
        0usize..3,
        0i64..28,
        6 * 60i64..19 * 60,
        any::<bool>(),
        any::<u16>(),
    )
}

fn to_item(
    f: &Fixture,
    (r, c, day, minute, delivered, salt): (usize, usize, i64, i64, bool, u16),
    n: usize,
) -> SettlementItem {
    let tz = chrono_tz::Asia::Shanghai;
    let local = (NaiveDate::from_ymd_opt(2026, 2, 1).expect("date") + Duration::days(day))
        .and_time(t(0, 0))
        + Duration::minutes(minute);
    let served = tz.from_local_datetime(&local).single().expect("local");
    let mut bytes = [0u8; 10];
    bytes[..2].copy_from_slice(&salt.to_be_bytes());
    bytes[2..10].copy_from_slice(&(n as u64).to_be_bytes());
    SettlementItem {
        counter_price: None,
        id: uuid::Builder::from_unix_timestamp_millis(served.timestamp_millis() as u64, &bytes)
            .into_uuid(),
        resident_id: f.residents[r],
        canteen_id: f.canteens[c],
        served_at: served.fixed_offset(),
        method: Method::Staff,
        match_score: None,
        liveness_score: None,
        delivered,
        staff_reason: Some("entered on the server".into()),
        proxy_carer_id: None,
        signed: None,
    }
}

fn settle(f: &Fixture, items: &[SettlementItem]) -> BatchResult {
    let caller = ingest::Caller::Staff {
        actor: zhucan_server::db::audit::Actor::new("proptest", "admin"),
        canteen: None,
    };
    f.db.write_blocking(|tx| {
        ingest::ingest(
            tx,
            caller,
            items,
            // February's meals, entered in March: not refused as backdated here
            &ingest::Rules {
                max_late_days: 365,
                ..ingest::Rules::default()
            },
            chrono_tz::Asia::Shanghai,
            now(),
        )
    })
    .expect("ingest")
}

fn statement(f: &Fixture, filter: &Filter) -> zhucan_domain::api::Statement {
    f.db.read_sync(|c| reports::statement(c, "2026-02", filter))
        .expect("statement")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn statement_totals_equal_the_sum_of_their_lines(
        raw in prop::collection::vec(arb_item(), 1..120),
        voids in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        close in any::<bool>(),
        town in prop::option::of(prop::sample::select(vec!["choucheng", "fotang"])),
    ) {
        let f = fixture();
        let items: Vec<SettlementItem> = raw.into_iter().enumerate().map(|(n, r)| to_item(&f, r, n)).collect();
        let res = settle(&f, &items);
        let accepted: Vec<_> = res.results.iter().filter(|r| r.meal.is_some()).map(|r| r.id).collect();
        if close {
            f.db.write_blocking(|tx| db::months::close(tx, "2026-02", "2026-03-01T00:00:00Z", "t")).expect("close");
        }
        for v in &voids {
            if accepted.is_empty() { break; }
            let id = accepted[v.index(accepted.len())];
            // Voiding twice is a conflict; that is fine here.
            let _ = f.db.write_blocking(|tx| zhucan_server::corrections::void(tx, id, "test", "t", &zhucan_server::db::audit::Actor::system("test"), now()));
        }
        for month in ["2026-02", "2026-03"] {
            let filter = Filter { canteen: None, town: town.map(str::to_owned) };
            let s = f.db.read_sync(|c| reports::statement(c, month, &filter)).expect("statement");
            let mut canteens = zhucan_domain::api::Amounts::default();
            for l in &s.canteens { canteens.add(&l.amounts); }
            let mut residents = zhucan_domain::api::Amounts::default();
            for l in &s.residents { residents.add(&l.amounts); }
            let mut adjustments = zhucan_domain::api::Amounts::default();
            for l in &s.adjustments { adjustments.add(&l.amounts); }
            let funding: Fen = s.funding.iter().map(|l| l.fen).sum();
            prop_assert_eq!(canteens, s.canteens_total);
            prop_assert_eq!(residents, s.residents_total);
            prop_assert_eq!(adjustments, s.adjustments_total);
            prop_assert_eq!(canteens, s.total);
            prop_assert_eq!(residents, s.total);
            prop_assert_eq!(funding, s.funding_total);
            prop_assert_eq!(funding, s.total.subsidy);
            prop_assert_eq!(s.total.subsidy + s.total.self_pay, s.total.price);
            prop_assert_eq!(s.total.city + s.total.town + s.total.other, s.total.subsidy);
            if month == "2026-02" && filter.town.is_none() {
                let expected: i64 = res.results.iter().filter_map(|r| r.meal.as_ref()).map(|m| m.subsidy.0).sum();
                let voided: i64 = if close { 0 } else { s.voided.iter().map(|v| v.subsidy.0).sum() };
                prop_assert_eq!(s.total.subsidy.0, expected - voided);
            }
        }
    }

    #[test]
    fn replaying_any_batch_changes_nothing(
        raw in prop::collection::vec(arb_item(), 1..80),
        cut in any::<prop::sample::Index>(),
    ) {
        let f = fixture();
        let items: Vec<SettlementItem> = raw.into_iter().enumerate().map(|(n, r)| to_item(&f, r, n)).collect();
        let first = settle(&f, &items);
        let counts = f.db.read_sync(db::settlements::counts).expect("counts");
        let s1 = statement(&f, &Filter::default());
        let balance = f.db.read_sync(|c| db::residents::get(c, f.residents[1])).expect("r").prepaid_balance;
        // The whole batch again, then a slice of it, in reverse order.
        let again = settle(&f, &items);
        prop_assert_eq!(&again, &first);
        let k = cut.index(items.len());
        let mut part: Vec<SettlementItem> = items[k..].to_vec();
        part.reverse();
        let partial = settle(&f, &part);
        let mut expected: Vec<_> = first.results[k..].to_vec();
        expected.reverse();
        prop_assert_eq!(partial.results, expected);
        prop_assert_eq!(f.db.read_sync(db::settlements::counts).expect("counts"), counts);
        prop_assert_eq!(statement(&f, &Filter::default()), s1);
        prop_assert_eq!(f.db.read_sync(|c| db::residents::get(c, f.residents[1])).expect("r").prepaid_balance, balance);
        let _ = json!({});
    }
}
