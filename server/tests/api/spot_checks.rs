//! Spot checks (抽查): the meals a canteen recorded in a window against the heads an auditor
//! counted, the red flags they raise, and the validation of a check.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;
use zhucan_domain::CanteenId;
use zhucan_domain::api::Severity;

use crate::helpers::{TestApp, created, date, item, national_id, spawn_app, v7};

/// `n` more local residents of choucheng, able to eat at canteen 0.
async fn more_residents(app: &TestApp, n: u32) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = json!({
            "name": format!("抽查老人{i}"),
            "national_id": national_id(date(1945, 3, 1), 100 + i, i % 2 == 0),
            "local_registration": true,
            "registered_town": "choucheng",
            "residence_town": "choucheng",
            "card_code": format!("SPOT{i}"),
        });
        let r = created(app.post("/residents", &body).await).await;
        out.push(r["id"].as_i64().expect("id"));
    }
    out
}

fn ids_of(items: &[Value]) -> Vec<Uuid> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").parse().expect("uuid"))
        .collect()
}

async fn check(app: &TestApp, body: Value) -> Value {
    created(app.post("/spot-checks", &body).await).await
}

#[tokio::test]
async fn a_check_that_counted_fewer_heads_than_meals_recorded_is_a_spot_check_flag() {
    let app = spawn_app().await;
    let (c0, c1) = (app.canteens[0], app.canteens[1]);
    let people = more_residents(&app, 15).await;

    // 2026-03-15 ("now" is 12:00): 12 meals at canteen 0 between 11:30 and 12:00, plus a
    // 13th that is voided, one before the window, one at its end and one at the other canteen.
    let inside: Vec<Value> = (0..12)
        .map(|i| {
            item(
                v7(),
                people[i],
                c0,
                &format!("2026-03-15T11:{:02}:00", 30 + i),
            )
        })
        .collect();
    let voided = item(v7(), people[12], c0, "2026-03-15T11:45:00");
    let before = item(v7(), people[13], c0, "2026-03-15T11:29:59");
    let at_end = item(v7(), people[14], c0, "2026-03-15T12:00:00");
    let elsewhere = item(v7(), app.residents[0], c1, "2026-03-15T11:40:00");
    let mut batch = inside.clone();
    batch.extend([voided.clone(), before, at_end]);
    let results = app.settle_ok(0, batch).await;
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    app.settle_ok(1, vec![elsewhere]).await;
    let resp = app
        .post(
            &format!("/settlements/{}/void", voided["id"].as_str().expect("id")),
            &json!({ "reason": "重复刷卡" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let subsidy: i64 = results[..12]
        .iter()
        .map(|r| r["meal"]["subsidy"].as_i64().expect("subsidy"))
        .sum();

    // Its honest twin, the day before: 6 meals in the same window, 5 heads counted.
    let twin: Vec<Value> = (0..6)
        .map(|i| {
            item(
                v7(),
                people[i],
                c0,
                &format!("2026-03-14T11:{:02}:00", 31 + i),
            )
        })
        .collect();
    app.settle_on_the_day(0, "2026-03-14", twin.clone()).await;

    let inflated = check(
        &app,
        json!({ "canteen_id": c0, "date": "2026-03-15", "window_start": "11:30",
                "window_end": "12:00", "headcount": 5, "note": "午餐抽查" }),
    )
    .await;
    assert_eq!(inflated["recorded"], 12);
    assert_eq!(
        (
            &inflated["recorded_face"],
            &inflated["recorded_card"],
            &inflated["recorded_staff"]
        ),
        (&json!(0), &json!(12), &json!(0))
    );
    assert_eq!(inflated["difference"], 7);
    assert_eq!(inflated["headcount"], 5);
    assert_eq!(inflated["inspector"], "admin-token");
    let listed: Vec<Uuid> =
        serde_json::from_value(inflated["settlement_ids"].clone()).expect("ids");
    assert_eq!(
        listed,
        ids_of(&inside),
        "exactly the 12 meals, in the order served"
    );

    let honest = check(
        &app,
        json!({ "canteen_id": c0, "date": "2026-03-14", "window_start": "11:30:00",
                "window_end": "12:00:00", "headcount": 5 }),
    )
    .await;
    assert_eq!(
        (&honest["recorded"], &honest["difference"]),
        (&json!(6), &json!(1))
    );

    let db = app.server.db.clone();
    let flags = db
        .read(|c| zhucan_server::spot_checks::flags(c, "2026-03", None, 2))
        .await
        .expect("flags");
    assert_eq!(
        flags.len(),
        1,
        "the honest twin is within the tolerance: {flags:?}"
    );
    let f = &flags[0];
    let id = inflated["id"].as_i64().expect("id");
    assert_eq!(f.kind, "spot_check");
    assert_eq!(f.key, format!("spot_check:{id}"));
    assert_eq!(
        f.severity,
        Severity::Medium,
        "12 is not more than 2 × 5 + 2"
    );
    assert_eq!(f.month, "2026-03");
    assert_eq!(f.canteen_id, Some(CanteenId(c0)));
    assert_eq!(f.expected, "counted 5 heads");
    assert_eq!(f.seen, "recorded 12 meals (face 0, card 12, staff 0)");
    assert_eq!(f.settlement_ids, ids_of(&inside));
    assert_eq!((f.meals, f.subsidy.0), (12, subsidy));
    assert!(subsidy > 0);
    assert_eq!(f.link, format!("/inspect?check={id}"));
    assert_eq!(f.review, None);

    // No tolerance: the twin is flagged too, and 12 > 2 × 5 + 0 makes the inflated one high.
    let strict = db
        .read(|c| zhucan_server::spot_checks::flags(c, "2026-03", None, 0))
        .await
        .expect("flags");
    let sev: Vec<(String, Severity)> = strict.iter().map(|f| (f.key.clone(), f.severity)).collect();
    assert_eq!(
        sev,
        vec![
            (format!("spot_check:{id}"), Severity::High),
            (format!("spot_check:{}", honest["id"]), Severity::Medium)
        ]
    );
    // Per canteen and per month.
    let other = db
        .read(move |c| zhucan_server::spot_checks::flags(c, "2026-03", Some(CanteenId(c1)), 0))
        .await
        .expect("flags");
    assert!(other.is_empty());
    let april = db
        .read(|c| zhucan_server::spot_checks::flags(c, "2026-04", None, 0))
        .await
        .expect("flags");
    assert!(april.is_empty());

    // The month's list answers the same comparison, newest visit first.
    let list = app.json("/spot-checks?month=2026-03").await;
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], inflated);
    assert_eq!(list[1], honest);
    let only = app
        .json(&format!("/spot-checks?month=2026-03&canteen={c1}"))
        .await;
    assert_eq!(only, json!([]));

    // Both are in the audit log, and the rows cannot be changed afterwards.
    let audited = db
        .read(|c| zhucan_server::db::audit::of_action(c, "spot_check.recorded"))
        .await
        .expect("audit");
    assert_eq!(
        audited.iter().map(|r| r.target.clone()).collect::<Vec<_>>(),
        vec![
            format!("spot_check:{id}"),
            format!("spot_check:{}", honest["id"])
        ]
    );
    assert!(audited[0].detail.contains("\"headcount\":5"));
    let changed = db
        .write(move |tx| tx.execute("UPDATE spot_checks SET headcount = 12 WHERE id = ?1", [id]))
        .await;
    assert!(changed.is_err(), "spot checks are append-only");
}

#[tokio::test]
async fn a_spot_check_names_the_field_it_refuses() {
    let app = spawn_app().await;
    let c0 = app.canteens[0];
    let ok = json!({ "canteen_id": c0, "date": "2026-03-15", "window_start": "11:30",
                     "window_end": "12:00", "headcount": 5 });
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("window_end", json!("11:30")), "window_end"),
        (with("window_end", json!("11:00")), "window_end"),
        (with("window_end", json!("25:00")), "window_end"),
        (with("headcount", json!(-1)), "headcount"),
        (with("headcount", json!(100_001)), "headcount"),
        (with("canteen_id", json!(999_999)), "canteen_id"),
        (with("date", json!("2026-03-16")), "date"),
        (with("note", json!("字".repeat(501))), "note"),
    ] {
        let resp = app.post("/spot-checks", &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let e: Value = resp.json().await.expect("json");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let resp = app.get("/spot-checks?month=2026-13").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["field"], "month");
    // Nothing was stored; the valid body is.
    assert_eq!(app.json("/spot-checks?month=2026-03").await, json!([]));
    let c = check(&app, ok).await;
    assert_eq!((&c["recorded"], &c["difference"]), (&json!(0), &json!(-5)));
    // A kiosk, the inspected side, may neither record nor read checks.
    let resp = app
        .get_as(&app.kiosks[0], "/spot-checks?month=2026-03")
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
