//! Tally, statements in three formats, voids, month close and late corrections.

use std::io::Cursor;

use calamine::{Data, DataType, Reader, Xlsx, open_workbook_from_rs};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, item, spawn_app, v7};

/// Some meals over two days at both canteens; returns the ids of the first day's meals.
async fn some_meals(app: &TestApp) -> Vec<String> {
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    let day1 = vec![
        item(v7(), r[0], c0, "2026-02-10T11:00:00"),
        item(v7(), r[1], c0, "2026-02-10T11:05:00"),
        item(v7(), r[2], c0, "2026-02-10T17:00:00"),
        item(v7(), r[3], c0, "2026-02-10T11:10:00"),
    ];
    let ids = day1
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    app.settle_on_the_day(0, "2026-02-10", day1).await;
    app.settle_on_the_day(
        1,
        "2026-02-11",
        vec![
            item(v7(), r[1], c1, "2026-02-11T11:00:00"),
            item(v7(), r[4], c1, "2026-02-11T11:05:00"),
        ],
    )
    .await;
    ids
}

fn fen(v: &Value) -> i64 {
    v.as_i64().unwrap_or(i64::MIN)
}

#[tokio::test]
async fn tally_counts_the_day_per_slot_and_a_void_changes_it() {
    let app = spawn_app().await;
    let ids = some_meals(&app).await;
    let path = format!("/canteens/{}/tally?date=2026-02-10", app.canteens[0]);
    let t = app.json(&path).await;
    let lunch = &t["slots"][0];
    assert_eq!(lunch["slot"], "lunch");
    assert_eq!(
        (fen(&lunch["meals"]), fen(&lunch["subsidised_meals"])),
        (3, 2)
    );
    assert_eq!(fen(&lunch["price"]), 3600);
    assert_eq!(fen(&lunch["subsidy"]), 500 + 800);
    assert_eq!(
        fen(&lunch["city"]) + fen(&lunch["town"]) + fen(&lunch["other"]),
        1300
    );
    let dinner = &t["slots"][1];
    assert_eq!((fen(&dinner["meals"]), fen(&dinner["subsidy"])), (1, 800));
    assert_eq!(fen(&t["totals"]["meals"]), 4);
    assert_eq!(fen(&t["totals"]["price"]), 4600);
    assert_eq!(t["meals"].as_array().map(Vec::len), Some(4));
    assert!(
        !t.to_string().contains("330782"),
        "no national ID numbers in the tally"
    );

    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[1]),
            &json!({ "reason": "重复刷卡", "by": "operator" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["effect"], "voided");
    let t = app.json(&path).await;
    assert_eq!(fen(&t["slots"][0]["meals"]), 2);
    assert_eq!(fen(&t["slots"][0]["subsidy"]), 500);
    assert_eq!(
        t["meals"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["voided"] == true).count()),
        Some(1)
    );
    // Voiding twice is a conflict; a void needs a reason.
    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[1]),
            &json!({ "reason": "again" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[0]),
            &json!({ "reason": "  " }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "reason");
    // The statement lists the voided meal but does not count it.
    let s = app.json("/statements?month=2026-02").await;
    // The canteen's town code and the town-funded amount are two keys (they once shared "town").
    for c in s["canteens"].as_array().expect("canteens") {
        assert!(c["town_code"].is_string(), "{c}");
        assert!(c["town"].is_i64(), "{c}");
    }
    assert_eq!(s["voided"].as_array().map(Vec::len), Some(1));
    assert_eq!(fen(&s["total"]["meals"]), 5);
}

/// The amounts of a statement section line, in the CSV's column order (yuan strings -> fen).
fn csv_fen(s: &str) -> i64 {
    zhucan_domain::Fen::parse_yuan(s)
        .map(|f| f.0)
        .unwrap_or(i64::MIN)
}

fn xlsx_fen(d: &Data) -> i64 {
    (d.get_float()
        .or_else(|| d.get_int().map(|i| i as f64))
        .unwrap_or(f64::NAN)
        * 100.0)
        .round() as i64
}

const AMOUNT_KEYS: [&str; 8] = [
    "meals",
    "subsidised_meals",
    "price",
    "subsidy",
    "self_pay",
    "city",
    "town",
    "other",
];

#[tokio::test]
async fn statement_in_json_csv_and_xlsx_agree_to_the_fen() {
    let app = spawn_app().await;
    some_meals(&app).await;
    let s = app.json("/statements?month=2026-02").await;
    // Every section's total is the sum of its lines, and they agree with the grand total.
    for (section, total) in [
        ("canteens", "canteens_total"),
        ("residents", "residents_total"),
    ] {
        for k in AMOUNT_KEYS {
            let sum: i64 = s[section]
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| fen(&l[k]))
                .sum();
            assert_eq!(sum, fen(&s[total][k]), "{section}.{k}");
            assert_eq!(sum, fen(&s["total"][k]), "{section}.{k} vs total");
        }
    }
    let funding: i64 = s["funding"]
        .as_array()
        .expect("funding")
        .iter()
        .map(|l| fen(&l["fen"]))
        .sum();
    assert_eq!(funding, fen(&s["funding_total"]));
    assert_eq!(funding, fen(&s["total"]["subsidy"]));
    assert_eq!(fen(&s["total"]["meals"]), 6);
    assert_eq!(fen(&s["total"]["subsidy"]), 500 + 800 + 800 + 800 + 300);

    // CSV: BOM, Chinese header, same numbers.
    let resp = app.get("/statements?month=2026-02&format=csv").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.expect("body");
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    let mut rdr = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(rdr.headers().expect("header").get(0), Some("分区"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).collect();
    let canteen_rows: Vec<_> = rows
        .iter()
        .filter(|r| &r[0] == "按食堂" && &r[1] == "明细")
        .collect();
    assert_eq!(
        canteen_rows.len(),
        s["canteens"].as_array().map_or(0, Vec::len)
    );
    for (row, line) in canteen_rows
        .iter()
        .zip(s["canteens"].as_array().expect("lines"))
    {
        assert_eq!(row[2].parse::<i64>().ok(), line["canteen_id"].as_i64());
        assert_eq!(row[5].parse::<i64>().ok(), line["meals"].as_i64());
        for (col, k) in [
            (7, "price"),
            (8, "subsidy"),
            (9, "self_pay"),
            (10, "city"),
            (11, "town"),
            (12, "other"),
        ] {
            assert_eq!(csv_fen(&row[col]), fen(&line[k]), "csv canteen {k}");
        }
    }
    let resident_rows = rows
        .iter()
        .filter(|r| &r[0] == "按老人" && &r[1] == "明细")
        .count();
    assert_eq!(resident_rows, s["residents"].as_array().map_or(0, Vec::len));
    let grand = rows
        .iter()
        .find(|r| &r[0] == "总计")
        .expect("grand total row");
    assert_eq!(csv_fen(&grand[8]), fen(&s["total"]["subsidy"]));
    assert_eq!(csv_fen(&grand[7]), fen(&s["total"]["price"]));
    let funding_total = rows
        .iter()
        .find(|r| &r[0] == "按资金来源" && &r[1] == "合计")
        .expect("row");
    assert_eq!(csv_fen(&funding_total[8]), fen(&s["funding_total"]));

    // XLSX: one sheet per section, Chinese headers, a totals row, same numbers.
    let resp = app.get("/statements?month=2026-02&format=xlsx").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.expect("body").to_vec();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("xlsx");
    let sheet = wb.worksheet_range("按食堂").expect("sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows[0][1].get_string(), Some("食堂名称"));
    let lines = s["canteens"].as_array().expect("lines");
    assert_eq!(rows.len(), lines.len() + 2, "header + lines + totals");
    for (row, line) in rows[1..].iter().zip(lines) {
        assert_eq!(row[1].get_string(), line["name"].as_str());
        for (i, k) in ["price", "subsidy", "self_pay", "city", "town", "other"]
            .iter()
            .enumerate()
        {
            assert_eq!(xlsx_fen(&row[5 + i]), fen(&line[*k]), "xlsx {k}");
        }
    }
    let totals = rows.last().expect("totals");
    assert_eq!(totals[0].get_string(), Some("合计"));
    assert_eq!(xlsx_fen(&totals[6]), fen(&s["canteens_total"]["subsidy"]));
    assert_eq!(xlsx_fen(&totals[5]), fen(&s["canteens_total"]["price"]));
    let residents = wb.worksheet_range("按老人").expect("sheet");
    assert_eq!(
        residents.rows().count(),
        s["residents"].as_array().map_or(0, Vec::len) + 2
    );
    let funding = wb.worksheet_range("按资金来源").expect("sheet");
    let last = funding.rows().next_back().expect("totals");
    assert_eq!(xlsx_fen(&last[3]), fen(&s["funding_total"]));

    // Filters: one canteen, one town.
    let one = app
        .json(&format!(
            "/statements?month=2026-02&canteen={}",
            app.canteens[1]
        ))
        .await;
    assert_eq!(fen(&one["total"]["meals"]), 2);
    let town = app.json("/statements?month=2026-02&town=choucheng").await;
    assert_eq!(fen(&town["total"]["meals"]), 4);
}

#[tokio::test]
async fn closed_month_is_frozen_and_a_late_void_lands_in_the_next_open_month() {
    let app = spawn_app().await;
    let ids = some_meals(&app).await;
    let resp = app
        .post(
            "/months/2026-02/close",
            // February's meals were sent in March: late-upload flags, closed over with a reason
            &json!({ "by": "finance", "open_flags_reason": "迟报已核实" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.post("/months/2026-02/close", &json!({})).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let before = app.json("/statements?month=2026-02").await;
    assert_eq!(before["closed"], true);

    // A meal of the closed month can no longer be settled.
    let results = app
        .settle_ok(
            0,
            vec![item(
                v7(),
                app.residents[4],
                app.canteens[0],
                "2026-02-20T11:00:00",
            )],
        )
        .await;
    assert_eq!(results[0]["error"]["code"], "month_closed");

    // Void a February meal (the 90+ resident's 8-yuan lunch) after the close.
    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[1]),
            &json!({ "reason": "误刷", "by": "finance" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["effect"], "adjusted");
    assert_eq!(v["adjustment"]["period"], "2026-03");
    assert_eq!(v["adjustment"]["subsidy"], -800);
    assert_eq!(v["adjustment"]["meals"], -1);

    // February's books are unchanged (its kiosk-chain section and the heads are live: they
    // move on with later records); March carries the adjustment as its own line and in its
    // totals.
    let books = |mut s: Value| {
        s.as_object_mut().map(|o| {
            o.remove("chains");
            o.remove("heads")
        });
        s
    };
    assert_eq!(
        books(app.json("/statements?month=2026-02").await),
        books(before)
    );
    let march = app.json("/statements?month=2026-03").await;
    assert_eq!(march["adjustments"].as_array().map(Vec::len), Some(1));
    assert_eq!(fen(&march["adjustments_total"]["subsidy"]), -800);
    assert_eq!(fen(&march["total"]["subsidy"]), -800);
    assert_eq!(fen(&march["funding_total"]), -800);
    assert_eq!(fen(&march["canteens_total"]["price"]), -1200);
    // A second void of the same meal is refused.
    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[1]),
            &json!({ "reason": "again" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    // Closing March too pushes the next correction into April.
    app.post("/months/2026-03/close", &json!({})).await;
    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[0]),
            &json!({ "reason": "退餐" }),
        )
        .await;
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["adjustment"]["period"], "2026-04");
    assert_eq!(app.counts().await, (6, 2));
    // Unknown settlement id.
    let resp = app
        .post(
            &format!("/settlements/{}/void", v7()),
            &json!({ "reason": "x" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_name_that_is_a_formula_stays_text_in_the_statement_csv() {
    let app = spawn_app().await;
    let evil = "=HYPERLINK(\"http://e.x\",\"点\")";
    let body = json!({
        "name": evil,
        "national_id": crate::helpers::national_id(crate::helpers::date(1950, 3, 3), 77, true),
        "local_registration": true, "registered_town": "choucheng", "residence_town": "choucheng",
        "categories": [], "card_code": "EVIL-1",
        "consent": { "face_enrolment": false, "template_sharing": false }
    });
    let r = crate::helpers::created(app.post("/residents", &body).await).await;
    let id = r["id"].as_i64().expect("id");
    app.settle_on_the_day(
        0,
        "2026-02-10",
        vec![item(v7(), id, app.canteens[0], "2026-02-10T11:00:00")],
    )
    .await;
    let bytes = app
        .get("/statements?month=2026-02&format=csv")
        .await
        .bytes()
        .await
        .expect("body");
    let mut rdr = csv::Reader::from_reader(&bytes[3..]);
    let names: Vec<String> = rdr
        .records()
        .map(|r| r.expect("row"))
        .filter(|r| &r[0] == "按老人" && &r[1] == "明细")
        .map(|r| r[3].to_owned())
        .collect();
    assert_eq!(
        names,
        vec![format!("'{evil}")],
        "a formula reaches the spreadsheet"
    );
}
