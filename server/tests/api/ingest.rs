//! Settlement ingestion over HTTP: decisions, idempotent replay, conflicts, canteen scoping.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{item, spawn_app, v7};

#[tokio::test]
async fn batch_is_decided_and_answered_per_item() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], &app.residents);
    // Resident 4's face is enrolled at this canteen, so its kiosk can have matched it.
    let enrolled = crate::helpers::upload(
        &app,
        &app.kiosks[0],
        r[4],
        &crate::helpers::upload_body(false, &[crate::helpers::embedding(4, 192)]),
    )
    .await;
    assert_eq!(enrolled.status(), StatusCode::NO_CONTENT);
    let mut face = item(v7(), r[4], c, "2026-03-14T11:00:00");
    face["method"] = json!("face");
    face["match_score"] = json!(0.81);
    face["liveness_score"] = json!(0.97);
    let mut staff = item(v7(), r[2], c, "2026-03-14T17:00:00");
    staff["method"] = json!("staff");
    staff["staff_reason"] = json!("老人忘带卡");
    let results = app
        .settle_ok(
            0,
            vec![
                item(v7(), r[0], c, "2026-03-14T11:30:00"),
                item(v7(), r[1], c, "2026-03-14T11:31:00"),
                staff,
                item(v7(), r[3], c, "2026-03-14T11:32:00"),
                face,
                item(v7(), r[0], c, "2026-03-14T12:30:00"),
                item(v7(), r[1], c, "2026-03-14T14:00:00"),
                item(v7(), 9999, c, "2026-03-14T11:00:00"),
            ],
        )
        .await;
    let st = |i: usize| results[i]["status"].as_str().unwrap_or_default().to_owned();
    // 81 years old, local: age_80, 5 yuan split 50/50, self-pay 7 yuan from the prepaid balance.
    assert_eq!(st(0), "accepted");
    let m = &results[0]["meal"];
    assert_eq!(
        (
            m["price"].as_i64(),
            m["subsidy"].as_i64(),
            m["self_pay"].as_i64()
        ),
        (Some(1200), Some(500), Some(700))
    );
    assert_eq!(m["tier"], "age_80");
    assert_eq!(m["payment"], "prepaid");
    assert_eq!(
        (m["funding"]["city"].as_i64(), m["funding"]["town"].as_i64()),
        (Some(250), Some(250))
    );
    assert_eq!(m["funding_town"], "choucheng");
    assert_eq!(m["slot"], "lunch");
    assert_eq!(results[1]["meal"]["tier"], "age_90");
    assert_eq!(results[1]["meal"]["payment"], "cash");
    // Dinner for the 低保 resident: 8 yuan of a 10 yuan dinner.
    assert_eq!(results[2]["meal"]["tier"], "dibao_gugua");
    assert_eq!(results[2]["meal"]["subsidy"], 800);
    // Not local: served at full price, with the reason.
    assert_eq!(results[3]["meal"]["eligibility"], "not_local");
    assert_eq!(results[3]["meal"]["subsidy"], 0);
    assert_eq!(results[3]["meal"]["self_pay"], 1200);
    assert_eq!(st(4), "accepted");
    assert_eq!(results[4]["meal"]["tier"], "age_65");
    // A second lunch the same day is refused as a duplicate, with a Chinese label.
    assert_eq!(st(5), "rejected");
    assert_eq!(results[5]["rejection"]["reason"], "duplicate");
    assert_eq!(results[5]["rejection"]["label_zh"], "本餐次已就餐");
    // 14:00 is outside every slot window.
    assert_eq!(results[6]["rejection"]["reason"], "outside_slot_window");
    // Unknown resident: an item error naming the field; nothing stored for it.
    assert_eq!(st(7), "error");
    assert_eq!(results[7]["error"]["code"], "unknown_resident");
    assert_eq!(results[7]["error"]["field"], "resident_id");
    assert_eq!(app.counts().await, (7, 0));
    // The prepaid balance was debited by the self-pay.
    let res = app.json(&format!("/residents/{}", r[0])).await;
    assert_eq!(res["prepaid_balance"], 10_000 - 700);
    assert!(
        res["national_id_masked"]
            .as_str()
            .is_some_and(|s| s.contains("********"))
    );
    assert!(res.get("national_id").is_none());
}

#[tokio::test]
async fn replaying_a_batch_returns_the_same_answers_and_changes_nothing() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], &app.residents);
    let batch: Vec<Value> = vec![
        item(v7(), r[0], c, "2026-03-10T11:00:00"),
        item(v7(), r[1], c, "2026-03-10T11:05:00"),
        item(v7(), r[0], c, "2026-03-10T11:10:00"),
        item(v7(), r[3], c, "2026-03-10T17:00:00"),
    ];
    let first = app.settle_ok(0, batch.clone()).await;
    let counts = app.counts().await;
    let statement = app.books_of("2026-03").await;
    let balance = app.json(&format!("/residents/{}", r[0])).await["prepaid_balance"].clone();
    let second = app.settle_ok(0, batch.clone()).await;
    assert_eq!(first, second);
    assert_eq!(app.counts().await, counts);
    assert_eq!(app.books_of("2026-03").await, statement);
    assert_eq!(
        app.json(&format!("/residents/{}", r[0])).await["prepaid_balance"],
        balance
    );
    // A replay mixed with new items: old ones answered as stored, new ones decided.
    let mut mixed = batch.clone();
    mixed.push(item(v7(), r[2], c, "2026-03-10T11:20:00"));
    let third = app.settle_ok(0, mixed).await;
    assert_eq!(&third[..4], &first[..]);
    assert_eq!(third[4]["status"], "accepted");
    assert_eq!(app.counts().await.0, counts.0 + 1);
}

#[tokio::test]
async fn same_id_with_a_different_payload_is_a_conflict() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], &app.residents);
    let id = v7();
    app.settle_ok(0, vec![item(id, r[0], c, "2026-03-10T11:00:00")])
        .await;
    let results = app
        .settle_ok(0, vec![item(id, r[1], c, "2026-03-10T11:00:00")])
        .await;
    assert_eq!(results[0]["status"], "error");
    assert_eq!(results[0]["error"]["code"], "id_conflict");
    assert_eq!(results[0]["error"]["field"], "id");
    // A meal from the future (a kiosk with a wrong clock) is an item error too.
    let results = app
        .settle_ok(0, vec![item(v7(), r[1], c, "2026-03-16T11:00:00")])
        .await;
    assert_eq!(results[0]["error"]["code"], "served_in_future");
    assert_eq!(results[0]["error"]["field"], "served_at");
    assert_eq!(app.counts().await, (1, 0));
}

#[tokio::test]
async fn a_kiosk_may_not_settle_or_read_another_canteen() {
    let app = spawn_app().await;
    let r = &app.residents;
    let results = app
        .settle_ok(
            0,
            vec![item(v7(), r[0], app.canteens[1], "2026-03-10T11:00:00")],
        )
        .await;
    assert_eq!(results[0]["status"], "error");
    assert_eq!(results[0]["error"]["code"], "canteen_not_allowed");
    assert_eq!(app.counts().await, (0, 0));
    let resp = app
        .get_as(
            &app.kiosks[0],
            &format!("/canteens/{}/tally?date=2026-03-10", app.canteens[1]),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Its own canteen's tally is allowed.
    let resp = app
        .get_as(
            &app.kiosks[0],
            &format!("/canteens/{}/tally?date=2026-03-10", app.canteens[0]),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // No token, a wrong token, and a kiosk on an admin route.
    let resp = app.client.get(app.url("/towns")).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.get_as("nope", "/towns").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.get_as(&app.kiosks[0], "/towns").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn delivered_meals_carry_the_surcharge_and_health_answers() {
    let app = spawn_app().await;
    let mut it = item(
        v7(),
        app.residents[1],
        app.canteens[1],
        "2026-03-10T11:00:00",
    );
    it["delivered"] = json!(true);
    let results = app.settle_ok(1, vec![it]).await;
    assert_eq!(results[0]["meal"]["price"], 1300);
    assert_eq!(results[0]["meal"]["subsidy"], 800);
    let health = app.json("/health").await;
    assert_eq!(health["status"], "ok");
}
