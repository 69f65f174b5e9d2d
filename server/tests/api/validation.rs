//! Bad input gets a 4xx JSON error naming the field, and nothing is written.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, item, spawn_app, v7};

async fn expect_400(app: &TestApp, items: Vec<Value>, field: &str) -> Value {
    let resp = app.settle(0, items).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    body
}

#[tokio::test]
async fn bad_items_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[0]);
    let good = || item(v7(), r, c, "2026-03-10T11:00:00");

    let mut bad_uuid = good();
    bad_uuid["id"] = json!("not-a-uuid");
    expect_400(&app, vec![good(), bad_uuid], "items[1].id").await;

    let mut v4 = good();
    v4["id"] = json!("2f1b6c1e-8a53-4c8e-9a43-0c6d0f6f5e21");
    let body = expect_400(&app, vec![good(), good(), v4], "items[2].id").await;
    assert_eq!(body["error"]["code"], "invalid_id");

    let mut bad_time = good();
    bad_time["served_at"] = json!("2026-03-10 11:00");
    expect_400(&app, vec![bad_time], "items[0].served_at").await;

    let mut no_offset = good();
    no_offset["served_at"] = json!("2026-03-10T11:00:00");
    expect_400(&app, vec![no_offset], "items[0].served_at").await;

    let mut staff = good();
    staff["method"] = json!("staff");
    expect_400(
        &app,
        vec![good(), good(), good(), staff],
        "items[3].staff_reason",
    )
    .await;

    let mut method = good();
    method["method"] = json!("telepathy");
    expect_400(&app, vec![method], "items[0].method").await;

    let mut face = good();
    face["method"] = json!("face");
    face["match_score"] = json!(0.9);
    expect_400(&app, vec![face], "items[0].liveness_score").await;

    let mut score = good();
    score["method"] = json!("face");
    score["match_score"] = json!(1.5);
    score["liveness_score"] = json!(0.9);
    expect_400(&app, vec![score], "items[0].match_score").await;

    let mut missing = good();
    missing.as_object_mut().map(|o| o.remove("resident_id"));
    expect_400(&app, vec![missing], "items[0].resident_id").await;

    let mut extra = good();
    extra["colour"] = json!("red");
    expect_400(&app, vec![extra], "items[0].colour").await;

    let big: Vec<Value> = (0..501).map(|_| good()).collect();
    let body = expect_400(&app, big, "items").await;
    assert_eq!(body["error"]["code"], "batch_too_large");

    assert_eq!(app.counts().await, (0, 0), "nothing written");
}

#[tokio::test]
async fn malformed_bodies_and_queries_get_the_error_shape() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/settlements"))
        .bearer_auth(&app.kiosks[0])
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "malformed_json");

    let resp = app
        .client
        .post(app.url("/settlements"))
        .bearer_auth(&app.kiosks[0])
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let resp = app
        .get(&format!(
            "/canteens/{}/tally?date=2026-13-01",
            app.canteens[0]
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "date");
    let resp = app
        .get(&format!("/canteens/{}/tally", app.canteens[0]))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app.get("/statements?month=2026-3").await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "month");
    let resp = app.get("/statements?month=2026-03&format=pdf").await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "format");

    // A policy with a problem: Policy::parse's field comes back.
    let mut p: Value =
        serde_json::from_str(include_str!("../../../domain/policies/yiwu.json")).expect("policy");
    p["version"] = json!(2);
    p["tiers"][1]["funding"][0]["percent"] = json!(70);
    let resp = app.post("/policies", &p).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "tiers[1].funding");

    // Residents: a bad national ID, an unknown town, a duplicate.
    let resp = app
        .post(
            "/residents",
            &json!({
                "name": "某", "national_id": "330782194405010011", "local_registration": true,
                "registered_town": "choucheng", "residence_town": "choucheng", "card_code": "X1"
            }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "national_id");
    let resp = app.get("/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .expect("ops")
                .keys()
                .map(|m| (m.to_uppercase(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let routes = [
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/towns"),
        ("POST", "/api/v1/towns"),
        ("GET", "/api/v1/canteens"),
        ("POST", "/api/v1/canteens"),
        ("GET", "/api/v1/canteens/{id}"),
        ("GET", "/api/v1/canteens/{id}/tally"),
        ("GET", "/api/v1/residents"),
        ("POST", "/api/v1/residents"),
        ("GET", "/api/v1/residents/{id}"),
        ("PATCH", "/api/v1/residents/{id}"),
        ("GET", "/api/v1/kiosks"),
        ("POST", "/api/v1/kiosks"),
        ("POST", "/api/v1/kiosks/enrolment-codes"),
        ("POST", "/api/v1/kiosks/enrol"),
        ("POST", "/api/v1/kiosks/{id}/revoke"),
        ("GET", "/api/v1/kiosks/{id}/chain"),
        ("POST", "/api/v1/kiosk/rotate"),
        ("GET", "/api/v1/kiosk/sync"),
        ("POST", "/api/v1/kiosk/heartbeat"),
        ("PUT", "/api/v1/residents/{id}/templates"),
        ("DELETE", "/api/v1/residents/{id}/templates"),
        ("GET", "/api/v1/policies"),
        ("POST", "/api/v1/policies"),
        ("POST", "/api/v1/settlements"),
        ("POST", "/api/v1/settlements/{id}/void"),
        ("POST", "/api/v1/months/{month}/close"),
        ("GET", "/api/v1/statements"),
        ("GET", "/api/v1/flags"),
        ("POST", "/api/v1/flags/review"),
        ("PUT", "/api/v1/canteens/{id}/closed-days"),
        ("POST", "/api/v1/residents/{id}/absences"),
        ("GET", "/api/v1/integrity/heads"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/face-data"),
        ("GET", "/api/v1/residents/{id}/national-id"),
        ("GET", "/api/v1/lookalikes"),
        ("POST", "/api/v1/lookalikes/scan"),
        ("GET", "/api/v1/corrections"),
        ("POST", "/api/v1/corrections/{id}/approve"),
        ("POST", "/api/v1/corrections/{id}/reject"),
        ("GET", "/api/v1/spot-checks"),
        ("POST", "/api/v1/spot-checks"),
        ("GET", "/api/v1/carers"),
        ("POST", "/api/v1/carers"),
        ("POST", "/api/v1/residents/{id}/carers"),
        ("DELETE", "/api/v1/residents/{id}/carers/{carer_id}"),
        ("GET", "/api/v1/districts"),
        ("PUT", "/api/v1/towns/{code}/district"),
        ("POST", "/api/v1/districts"),
        ("GET", "/api/v1/canteens/{id}/re-enrolment"),
    ];
    assert_eq!(documented.len(), routes.len(), "{documented:?}");
    for (m, p) in routes {
        assert!(
            documented.contains(&(m.to_owned(), p.to_owned())),
            "{m} {p} is not documented"
        );
        // And the route exists: an unknown route would be a 404 `not_found` with no body checks.
        let url = app.url(
            &p.replace("/api/v1", "")
                .replace("{id}", "1")
                .replace("{carer_id}", "1")
                .replace("{month}", "2026-01"),
        );
        let resp = app
            .client
            .request(m.parse().expect("method"), url)
            .send()
            .await
            .expect("request");
        assert_ne!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{m} {p}");
        if resp.status() == StatusCode::NOT_FOUND {
            let body: Value = resp.json().await.expect("json");
            assert!(p.contains('{'), "{m} {p} is not routed: {body}");
        }
    }
}

#[tokio::test]
async fn resident_updates_change_decisions() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[1]);
    let resp = app
        .patch_admin(
            &format!("/residents/{r}"),
            &json!({ "status": "suspended", "categories": ["tekun"], "by": "clerk" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "suspended");
    assert_eq!(body["categories"], json!(["tekun"]));
    let results = app
        .settle_ok(0, vec![item(v7(), r, c, "2026-03-10T11:00:00")])
        .await;
    assert_eq!(results[0]["rejection"]["reason"], "suspended");
    let resp = app
        .patch_admin(&format!("/residents/{r}"), &json!({ "status": "deceased" }))
        .await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "deceased_on");
}
