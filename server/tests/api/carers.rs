//! Named proxy pickup (代取): the carer registry, the carer's card meal booked to the elder, and
//! what ingestion refuses.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, created, spawn_app};

/// Registers a carer and returns its id.
pub async fn add_carer(app: &TestApp, name: &str, card: &str) -> i64 {
    let c = created(
        app.post(
            "/carers",
            &json!({ "name": name, "card_code": card, "note": "女儿" }),
        )
        .await,
    )
    .await;
    c["id"].as_i64().expect("id")
}

/// Links carer `carer` to resident `resident`.
pub async fn link(app: &TestApp, resident: i64, carer: i64) -> Value {
    created(
        app.post(
            &format!("/residents/{resident}/carers"),
            &json!({ "carer_id": carer }),
        )
        .await,
    )
    .await
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json");
    (status, body["error"].clone())
}

#[tokio::test]
async fn carers_are_registered_linked_and_unlinked_with_an_audit_entry_each() {
    let app = spawn_app().await;
    let r = app.residents[1];
    let carer = add_carer(&app, "王小红", "CARER-1").await;
    let linked = link(&app, r, carer).await;
    assert_eq!(linked["residents"], json!([r]), "{linked}");
    let all = app.json("/carers").await;
    assert_eq!(all[0]["name"], "王小红");
    assert_eq!(all[0]["card_code"], "CARER-1");
    assert_eq!(all[0]["note"], "女儿");
    assert_eq!(all[0]["residents"], json!([r]));

    // Linking twice is a conflict; a missing link cannot be removed.
    let (status, _) = error_of(
        app.post(
            &format!("/residents/{r}/carers"),
            &json!({ "carer_id": carer }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let unlink = |res: i64| {
        app.client
            .delete(app.url(&format!("/residents/{res}/carers/{carer}")))
            .bearer_auth(ADMIN)
            .send()
    };
    let resp = unlink(app.residents[2]).await.expect("DELETE");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = unlink(r).await.expect("DELETE");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["residents"], json!([]));

    let audit = app.json("/audit?limit=50").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("carer."))
        .collect();
    assert_eq!(actions, ["carer.unlink", "carer.link", "carer.create"]);
}

#[tokio::test]
async fn the_registry_names_the_field_of_every_problem() {
    let app = spawn_app().await;
    add_carer(&app, "王小红", "CARER-1").await;
    let cases = [
        (json!({ "name": " ", "card_code": "X9" }), "name"),
        (json!({ "name": "李", "card_code": "" }), "card_code"),
        (
            json!({ "name": "李", "card_code": "X".repeat(33) }),
            "card_code",
        ),
        // a resident's card, another carer's card
        (json!({ "name": "李", "card_code": "CARD0" }), "card_code"),
        (json!({ "name": "李", "card_code": "CARER-1" }), "card_code"),
        (
            json!({ "name": "李", "card_code": "X9", "note": "很".repeat(201) }),
            "note",
        ),
        (
            json!({ "name": "李", "card_code": "X9", "phone": "1" }),
            "phone",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = error_of(app.post("/carers", &body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    // A link to a carer that does not exist names carer_id; an unknown resident is 404.
    let (status, err) = error_of(
        app.post(
            &format!("/residents/{}/carers", app.residents[0]),
            &json!({ "carer_id": 999 }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("carer_id"))
    );
    let (status, _) = error_of(
        app.post("/residents/999/carers", &json!({ "carer_id": 1 }))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A new resident cannot take a carer's card code either.
    let resp = app
        .post(
            "/residents",
            &json!({
                "name": "新老人", "national_id": crate::helpers::national_id(crate::helpers::date(1940, 1, 1), 77, true),
                "local_registration": true, "registered_town": "choucheng",
                "residence_town": "choucheng", "card_code": "CARER-1"
            }),
        )
        .await;
    let (status, err) = error_of(resp).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("card_code"))
    );
    // Kiosks may not use the registry.
    let resp = app
        .client
        .get(app.url("/carers"))
        .bearer_auth(&app.kiosks[0])
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
