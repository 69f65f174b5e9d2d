//! Policy for real cities, end to end through the server (issue 13): a district level above
//! towns, a counter price within the canteen's bounds and a delivery fee as its own line, both
//! signed with the meal; stacked subsidies with a county funder, an operating subsidy, and the
//! 人户分离 clearing table on the statement (JSON, CSV, XLSX).

use std::io::Cursor;

use calamine::{Data, DataType, Reader, Xlsx, open_workbook_from_rs};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{City, city, meal, spawn_app};

fn fen(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("fen: {v}"))
}

/// Friday 13 March 2026, lunch: a ¥22 set meal delivered to the elder of the canteen's own
/// district.
fn set_meal_delivered(c: &City) -> Value {
    meal(
        c.same_district,
        c.canteen,
        "2026-03-13T11:30:00",
        json!({ "counter_price": 2200, "delivered": true }),
    )
}

#[tokio::test]
async fn a_counter_priced_delivered_meal_settles_with_its_lines_and_the_statement_shows_them() {
    let mut app = spawn_app().await;
    let c = city(&mut app).await;
    // Friday 13 March 2026, lunch. A ¥22 set meal, delivered (¥3 fee), for the elder of the
    // canteen's own district: city ¥3 + district ¥3 on the meal, ¥2 of the fee.
    let own = set_meal_delivered(&c);
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
    // A negative price, and a delivered meal settled by the elder's face (a delivered meal is
    // eaten at home), are refused naming the field.
    for (extra, field) in [
        (json!({ "counter_price": -1 }), "items[0].counter_price"),
        (
            json!({ "method": "face", "match_score": 0.9, "liveness_score": 0.99, "delivered": true }),
            "items[0].delivered",
        ),
    ] {
        let item = meal(c.same_district, c.canteen, "2026-03-13T11:36:00", extra);
        let resp = app.settle(c.kiosk, vec![item]).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
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
    let own = set_meal_delivered(&c);
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
    app.tamper(
        &[],
        &format!("UPDATE settlements SET delivery_subsidy = 300 WHERE id = '{id}'"),
    );
    let books = &app.books_of("2026-03").await["books"];
    assert_eq!(
        books["altered"],
        json!([format!("settlement:{id}")]),
        "{books}"
    );
}

#[tokio::test]
async fn a_town_put_in_a_district_later_changes_its_residents_decisions_on_the_kiosks() {
    let mut app = spawn_app().await;
    let c = city(&mut app).await;
    // the fixtures' town 稠城 has no district; a kiosk's cursor from now on
    let sync = |since: i64| {
        let app = &app;
        async move {
            let resp = app
                .get_as(&app.kiosks[0], &format!("/kiosk/sync?since={since}"))
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.expect("json")
        }
    };
    let cursor = sync(0).await["cursor"].as_i64().expect("cursor");
    let resp = app
        .put(
            "/towns/choucheng/district",
            &json!({ "district": "xiangzhou" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let town: Value = resp.json().await.expect("json");
    assert_eq!(town["district"], "xiangzhou");
    // the town's residents and canteen go to the kiosks again, with their district
    let changed = sync(cursor).await;
    let residents = changed["residents"].as_array().expect("residents");
    assert_eq!(residents.len(), app.residents.len(), "{changed}");
    assert!(
        residents
            .iter()
            .all(|r| r["diner"]["registered_district"] == "xiangzhou"),
        "{residents:?}"
    );
    assert_eq!(changed["canteen"]["district"], "xiangzhou", "{changed}");
    let _ = c;
    // no such district, no such town: refused naming the field, 404
    let resp = app
        .put(
            "/towns/choucheng/district",
            &json!({ "district": "nowhere" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "district", "{body}");
    let resp = app
        .put("/towns/atlantis/district", &json!({ "district": null }))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // audited
    let audit = app.json("/audit").await;
    let entry = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "town.district")
        .expect("audited")
        .clone();
    assert_eq!(entry["target"], "town:choucheng", "{entry}");
}
