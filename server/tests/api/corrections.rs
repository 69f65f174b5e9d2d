//! Four-eyes corrections through the JSON API with the administrator's token: a small recent
//! void is applied at once; a large one, or one of an old meal, answers 202 and waits for a
//! second person; the token is one person and cannot decide its own request.
//! (Decisions by dashboard users are in `server/tests/dashboard/corrections.rs`.)

use reqwest::StatusCode;
use serde_json::{Value, json};
use zhucan_server::corrections::FourEyes;

use crate::helpers::{TestApp, item, spawn_app_with, v7};

/// The production age limit (7 days) and a lower amount limit: the Yiwu fixtures' largest
/// subsidy is ¥8, so ¥5 (resident 0's lunch) is "small" and ¥8 (resident 1's) is "large".
pub async fn four_eyes_app() -> TestApp {
    spawn_app_with(|c| {
        c.security.four_eyes = FourEyes {
            above_fen: 500,
            ..FourEyes::default()
        }
    })
    .await
}

/// Settles a lunch of resident `r` at canteen 0 on `day` (posted that evening); its id.
pub async fn lunch(app: &TestApp, r: usize, day: &str, time: &str) -> String {
    let id = v7();
    let res = app
        .settle_on_the_day(
            0,
            day,
            vec![item(
                id,
                app.residents[r],
                app.canteens[0],
                &format!("{day}T{time}"),
            )],
        )
        .await;
    assert_eq!(res[0]["status"], "accepted", "{res:?}");
    id.to_string()
}

async fn void(app: &TestApp, id: &str, reason: &str) -> (StatusCode, Value) {
    let resp = app
        .post(
            &format!("/settlements/{id}/void"),
            &json!({ "reason": reason }),
        )
        .await;
    (resp.status(), resp.json().await.expect("json"))
}

/// Whether the tally of `day` at canteen 0 shows meal `id` voided.
async fn voided(app: &TestApp, day: &str, id: &str) -> bool {
    let t = app
        .json(&format!("/canteens/{}/tally?date={day}", app.canteens[0]))
        .await;
    let meals = t["meals"].as_array().expect("meals");
    let m = meals.iter().find(|m| m["id"] == id).expect("the meal");
    m["voided"] == true
}

#[tokio::test]
async fn a_small_recent_void_is_applied_at_once_by_one_person() {
    let app = four_eyes_app().await;
    let id = lunch(&app, 0, "2026-03-14", "11:30:00").await;
    let (st, v) = void(&app, &id, "重复刷卡").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["effect"], "voided");
    assert!(voided(&app, "2026-03-14", &id).await);
    let pending = app.json("/corrections?state=pending").await;
    assert_eq!(pending, json!([]));
}

#[tokio::test]
async fn a_large_void_waits_for_a_second_person_and_the_admin_token_cannot_decide_its_own() {
    let app = four_eyes_app().await;
    let id = lunch(&app, 1, "2026-03-14", "11:30:00").await;
    let (st, c) = void(&app, &id, "误刷").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{c}");
    assert_eq!(
        (
            &c["state"],
            &c["kind"],
            &c["settlement_id"],
            &c["subsidy"],
            &c["requested_by"]
        ),
        (
            &json!("pending"),
            &json!("void"),
            &json!(id),
            &json!(800),
            &json!("admin")
        )
    );
    assert!(!voided(&app, "2026-03-14", &id).await, "not applied yet");
    // One pending correction per meal; the meal cannot be voided around it either.
    let (st, again) = void(&app, &id, "再来一次").await;
    assert_eq!(st, StatusCode::CONFLICT, "{again}");
    let list = app.json("/corrections?state=pending").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["id"], c["id"]);
    let bad = app.get("/corrections?state=maybe").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["field"], "state");

    // The token asked: it is one person and decides neither way.
    let cid = c["id"].as_i64().expect("id");
    for step in ["approve", "reject"] {
        let resp = app
            .post(
                &format!("/corrections/{cid}/{step}"),
                &json!({ "note": "自己批" }),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{step}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "same_person", "{step}");
    }
    assert!(!voided(&app, "2026-03-14", &id).await);
    assert_eq!(
        app.json("/corrections?state=pending").await[0]["state"],
        "pending"
    );
    // An unknown correction is 404.
    let resp = app.post("/corrections/999999/approve", &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_old_meals_void_needs_a_second_person_even_when_small() {
    let app = four_eyes_app().await;
    // "now" is 2026-03-15: the 8th is 7 days back (one person), the 7th is 8 days back.
    let seven = lunch(&app, 0, "2026-03-08", "11:30:00").await;
    let eight = lunch(&app, 0, "2026-03-07", "11:30:00").await;
    let (st, v) = void(&app, &seven, "录错").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, c) = void(&app, &eight, "录错").await;
    assert_eq!(st, StatusCode::ACCEPTED, "{c}");
    assert_eq!(
        (&c["subsidy"], &c["state"]),
        (&json!(500), &json!("pending"))
    );
    assert!(!voided(&app, "2026-03-07", &eight).await);
    // The request is in the audit log with why it waits.
    let rows = app
        .server
        .db
        .read(|c| zhucan_server::db::audit::of_action(c, "correction.requested"))
        .await
        .expect("audit");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target, format!("settlement:{eight}"));
    assert!(
        rows[0].detail.contains("older_than_days"),
        "{}",
        rows[0].detail
    );
}
