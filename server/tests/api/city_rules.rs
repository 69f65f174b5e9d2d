//! Policy for real cities, end to end through the server (issue 13): a district level above
//! towns, a counter price within the canteen's bounds and a delivery fee as its own line, both
//! signed with the meal; stacked subsidies with a county funder, an operating subsidy, and the
//! 人户分离 clearing table on the statement (JSON, CSV, XLSX).

use std::io::Cursor;

use calamine::{Data, DataType, Reader, Xlsx, open_workbook_from_rs};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, Chain, TestApp, created, date, national_id, new_key, public_key, spawn_app, v7,
};

/// A Zhuhai-shaped policy in force from March 2026 (it replaces the fixtures' Yiwu policy then):
/// city ¥3 per lunch, a district top-up of ¥3 at a canteen of the elder's own district
/// (county-funded), a ¥2 delivery subsidy for 60+, a minimum meal price of ¥10, and ¥2 per
/// subsidised meal to the canteen.
const POLICY: &str = r#"{
  "id": "city-rules", "version": 1, "name": "市区两级助餐补贴（测试）",
  "effective_from": "2026-03-01", "subsidy_town": "registration",
  "tiers": [
    { "code": "city", "name": "市级补贴", "conditions": { "min_age": 60 },
      "benefit": { "per_meal": { "lunch": 300 } },
      "funding": [ { "source": "city", "percent": 100 } ], "caps": { "per_day": 1 } }
  ],
  "stacked": [
    { "code": "district", "name": "区级补贴", "conditions": { "min_age": 60, "own_district": true },
      "benefit": { "per_meal": { "lunch": 300 } },
      "funding": [ { "source": "county", "percent": 100 } ], "caps": { "per_day": 1 } }
  ],
  "min_price": 1000,
  "delivery": { "subsidies": [
    { "code": "elder", "name": "60岁以上送餐补助", "conditions": { "min_age": 60 }, "fen": 200,
      "funding": [ { "source": "city", "percent": 100 } ] } ] },
  "operating": { "fen": 200, "per": "meal", "source": "city" }
}"#;

struct City {
    /// The canteen in 拱北 (香洲区), its kiosk's index in the app.
    canteen: i64,
    kiosk: usize,
    /// Registered in 吉大 (香洲区): eats in her own district, another town.
    same_district: i64,
    /// Registered in 三灶 (金湾区): eats in another district.
    other_district: i64,
}

async fn city(app: &mut TestApp) -> City {
    for (code, name) in [("xiangzhou", "香洲区"), ("jinwan", "金湾区")] {
        created(
            app.post("/districts", &json!({ "code": code, "name": name }))
                .await,
        )
        .await;
    }
    for (code, name, district) in [
        ("gongbei", "拱北街道", "xiangzhou"),
        ("jida", "吉大街道", "xiangzhou"),
        ("sanzao", "三灶镇", "jinwan"),
    ] {
        let town = json!({ "code": code, "name": name, "district": district });
        assert_eq!(created(app.post("/towns", &town).await).await, town);
    }
    let towns = app.json("/towns").await;
    assert!(
        towns
            .as_array()
            .expect("towns")
            .iter()
            .any(|t| t["code"] == "jida" && t["district"] == "xiangzhou"),
        "{towns}"
    );
    let resp = app
        .client
        .post(app.url("/policies"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(POLICY)
        .send()
        .await
        .expect("policy");
    created(resp).await;
    let canteen = created(
        app.post(
            "/canteens",
            &json!({
                "name": "拱北长者饭堂", "kind": "care_centre", "town": "gongbei",
                "operator": "拱北社区", "operator_kind": "village_run",
                "slots": [{ "slot": "lunch", "start": "10:30:00", "end": "13:00:00",
                            "price": 2000, "price_min": 1000, "price_max": 3000 }],
                "delivery_surcharge": 300
            }),
        )
        .await,
    )
    .await;
    assert_eq!(canteen["district"], "xiangzhou");
    assert_eq!(canteen["slots"][0]["price_max"], 3000);
    let canteen = canteen["id"].as_i64().expect("id");
    let mut residents = Vec::new();
    for (i, town) in ["jida", "sanzao"].into_iter().enumerate() {
        let birth = date(1950, 1, 1);
        let body = json!({
            "name": format!("珠海老人{i}"),
            "national_id": national_id(birth, 50 + i as u32, true),
            "local_registration": true,
            "registered_town": town, "residence_town": town,
            "card_code": format!("ZH{i}"),
            "consent": { "face_enrolment": false, "template_sharing": false }
        });
        residents.push(
            created(app.post("/residents", &body).await).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let key = new_key();
    let k = created(
        app.post(
            "/kiosks",
            &json!({ "canteen_id": canteen, "name": "拱北", "public_key": public_key(&key) }),
        )
        .await,
    )
    .await;
    app.kiosks
        .push(k["token"].as_str().expect("token").to_owned());
    app.kiosk_ids.push(k["id"].as_i64().expect("id"));
    app.chains.push(std::sync::Mutex::new(Chain::new(key)));
    City {
        canteen,
        kiosk: app.kiosks.len() - 1,
        same_district: residents[0],
        other_district: residents[1],
    }
}

fn meal(resident: i64, canteen: i64, local: &str, extra: Value) -> Value {
    let mut item = crate::helpers::item(v7(), resident, canteen, local);
    for (k, v) in extra.as_object().expect("object") {
        item[k] = v.clone();
    }
    item
}

fn fen(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("fen: {v}"))
}

#[tokio::test]
async fn a_counter_priced_delivered_meal_settles_with_its_lines_and_the_statement_shows_them() {
    let mut app = spawn_app().await;
    let c = city(&mut app).await;
    // Friday 13 March 2026, lunch. A ¥22 set meal, delivered (¥3 fee), for the elder of the
    // canteen's own district: city ¥3 + district ¥3 on the meal, ¥2 of the fee.
    let own = meal(
        c.same_district,
        c.canteen,
        "2026-03-13T11:30:00",
        json!({ "counter_price": 2200, "delivered": true }),
    );
    // The elder from another district, at the set price (¥20), eaten in: city ¥3 only.
    let other = meal(
        c.other_district,
        c.canteen,
        "2026-03-13T11:40:00",
        json!({}),
    );
    let res = app
        .settle_on_the_day(c.kiosk, "2026-03-13", vec![own, other])
        .await;
    let m = &res[0]["meal"];
    assert_eq!(res[0]["status"], "accepted", "{}", res[0]);
    assert_eq!(
        (fen(&m["price"]), fen(&m["delivery_fee"])),
        (2500, 300),
        "{m}"
    );
    assert_eq!(
        (fen(&m["subsidy"]), fen(&m["self_pay"])),
        (300 + 300 + 200, 2500 - 800)
    );
    assert_eq!(
        (fen(&m["delivery_subsidy"]), fen(&m["stacked_subsidy"])),
        (200, 300)
    );
    assert_eq!(m["stacked"], json!(["district"]));
    assert_eq!(
        (fen(&m["funding"]["city"]), fen(&m["funding"]["county"])),
        (500, 300)
    );
    assert_eq!(fen(&m["operating"]), 200);
    let m = &res[1]["meal"];
    assert_eq!(
        (
            fen(&m["price"]),
            fen(&m["subsidy"]),
            fen(&m["delivery_fee"])
        ),
        (2000, 300, 0),
        "{m}"
    );
    assert_eq!(
        m["stacked"],
        Value::Null,
        "no district top-up in another district"
    );

    let s = app.json("/statements?month=2026-03").await;
    let line = s["canteens"]
        .as_array()
        .expect("canteens")
        .iter()
        .find(|l| l["canteen_id"] == c.canteen)
        .expect("canteen line")
        .clone();
    for (k, want) in [
        ("meals", 2),
        ("price", 4500),
        ("subsidy", 1100),
        ("self_pay", 3400),
        ("city", 800),
        ("county", 300),
        ("delivery_fee", 300),
        ("delivery_subsidy", 200),
        ("operating", 400),
    ] {
        assert_eq!(fen(&line[k]), want, "canteen line {k}: {line}");
    }
    // The funding section names the county line by the district of the paying town, and
    // adds up to the subsidy.
    let funding = s["funding"].as_array().expect("funding");
    let county: Vec<&Value> = funding.iter().filter(|f| f["source"] == "county").collect();
    assert_eq!(county.len(), 1, "{funding:?}");
    assert_eq!(
        (county[0]["town"].as_str(), fen(&county[0]["fen"])),
        (Some("xiangzhou"), 300)
    );
    assert_eq!(fen(&s["funding_total"]), fen(&s["total"]["subsidy"]));
    assert_eq!(
        s["operating"],
        json!([{ "canteen_id": c.canteen, "source": "city", "source_zh": "市级财政",
                 "meals": 2, "fen": 400 }])
    );
    assert_eq!(fen(&s["operating_total"]), fen(&s["total"]["operating"]));
    // 人户分离: both elders are registered in another town than the canteen's.
    assert_eq!(
        s["clearing"],
        json!([
            { "paying_town": "jida", "serving_town": "gongbei", "meals": 1, "subsidy": 800, "town": 0 },
            { "paying_town": "sanzao", "serving_town": "gongbei", "meals": 1, "subsidy": 300, "town": 0 }
        ])
    );
    assert!(
        s["books"]["altered"]
            .as_array()
            .expect("altered")
            .is_empty()
    );

    // CSV: the lines' columns, the operating and clearing sections.
    let csv = app
        .get("/statements?month=2026-03&format=csv")
        .await
        .bytes()
        .await
        .expect("csv");
    let mut rdr = csv::Reader::from_reader(&csv[3..]);
    let header = rdr.headers().expect("header").clone();
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).collect();
    let canteen_row = rows
        .iter()
        .find(|r| &r[0] == "按食堂" && r[2] == *c.canteen.to_string())
        .expect("canteen row");
    assert_eq!(&canteen_row[col("其中送餐费(元)")], "3.00");
    assert_eq!(&canteen_row[col("其中送餐补助(元)")], "2.00");
    assert_eq!(&canteen_row[col("县区财政(元)")], "3.00");
    assert_eq!(&canteen_row[col("运营补贴(元)")], "4.00");
    let clearing: Vec<_> = rows.iter().filter(|r| &r[0] == "人户分离清算").collect();
    assert_eq!(clearing.len(), 2);
    assert_eq!(
        (
            &clearing[0][2],
            &clearing[0][3],
            &clearing[0][col("补助(元)")]
        ),
        ("jida", "gongbei", "8.00")
    );
    let operating = rows
        .iter()
        .find(|r| &r[0] == "运营补贴" && &r[1] == "合计")
        .expect("operating total");
    assert_eq!(&operating[col("运营补贴(元)")], "4.00");

    // XLSX: a sheet for each.
    let bytes = app
        .get("/statements?month=2026-03&format=xlsx")
        .await
        .bytes()
        .await
        .expect("xlsx")
        .to_vec();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("xlsx");
    let sheet = wb.worksheet_range("运营补贴").expect("operating sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 1 + 1 + 1, "header, one line, total");
    assert_eq!(rows[1][4].get_float(), Some(4.0));
    let sheet = wb.worksheet_range("人户分离清算").expect("clearing sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 1 + 2);
    assert_eq!(rows[2][0].get_string(), Some("sanzao"));
    assert_eq!(rows[2][3].get_float(), Some(3.0));
}

#[tokio::test]
async fn a_counter_price_out_of_bounds_is_refused_and_one_changed_after_signing_is_not_accepted() {
    let mut app = spawn_app().await;
    let c = city(&mut app).await;
    let low = meal(
        c.same_district,
        c.canteen,
        "2026-03-13T11:30:00",
        json!({ "counter_price": 999 }),
    );
    let res = app
        .settle_on_the_day(c.kiosk, "2026-03-13", vec![low])
        .await;
    assert_eq!(res[0]["status"], "rejected", "{}", res[0]);
    assert_eq!(res[0]["rejection"]["reason"], "price_out_of_range");
    // The price is signed: raised after signing, the record no longer verifies.
    let mut chain = app.chains[c.kiosk].lock().expect("chain").clone();
    let mut signed = chain.sign(&meal(
        c.same_district,
        c.canteen,
        "2026-03-13T11:35:00",
        json!({ "counter_price": 1000 }),
    ));
    signed["counter_price"] = json!(3000);
    let resp = app.settle_raw(c.kiosk, vec![signed]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["results"][0]["error"]["code"], "signature_invalid",
        "{body}"
    );
    // Without a range the set price is the only price (the fixtures' canteen: ¥12).
    let fixed = meal(
        app.residents[0],
        app.canteens[0],
        "2026-03-13T11:30:00",
        json!({ "counter_price": 1300 }),
    );
    let res = app.settle_on_the_day(0, "2026-03-13", vec![fixed]).await;
    assert_eq!(
        res[0]["rejection"]["reason"], "price_out_of_range",
        "{}",
        res[0]
    );
    // A slot with only one bound is refused, naming it.
    let resp = app
        .post(
            "/canteens",
            &json!({
                "name": "x", "kind": "station", "town": "gongbei", "operator": "o",
                "operator_kind": "village_run",
                "slots": [{ "slot": "lunch", "start": "10:30:00", "end": "13:00:00",
                            "price": 2000, "price_max": 3000 }]
            }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "slots[0].price_min", "{body}");
}

#[tokio::test]
async fn the_lines_of_a_meal_are_under_the_books_mac() {
    let mut app = spawn_app().await;
    let c = city(&mut app).await;
    let own = meal(
        c.same_district,
        c.canteen,
        "2026-03-13T11:30:00",
        json!({ "counter_price": 2200, "delivered": true }),
    );
    let id = own["id"].as_str().expect("id").to_owned();
    app.settle_on_the_day(c.kiosk, "2026-03-13", vec![own])
        .await;
    assert!(
        app.books_of("2026-03").await["books"]["altered"]
            .as_array()
            .expect("altered")
            .is_empty()
    );
    // An insider moves ¥1 from the elder's delivery fee to the district's subsidy in the file.
    {
        let conn = rusqlite::Connection::open(app.server.db.path()).expect("open");
        conn.execute(
            "UPDATE settlements SET delivery_subsidy = 300 WHERE id = ?1",
            [&id],
        )
        .expect("edit");
    }
    let books = &app.books_of("2026-03").await["books"];
    assert_eq!(
        books["altered"],
        json!([format!("settlement:{id}")]),
        "{books}"
    );
}
