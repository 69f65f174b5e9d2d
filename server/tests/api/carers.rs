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
    let app = &app;
    let unlink = |res: i64| {
        let path = format!("/residents/{res}/carers/{carer}");
        async move { app.delete_as(ADMIN, &path).await }
    };
    let resp = unlink(app.residents[2]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = unlink(r).await;
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
    let resp = app.get_as(&app.kiosks[0], "/carers").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

/// A kiosk card item for `resident` collected by `carer`.
fn proxy_item(resident: i64, canteen: i64, carer: i64, local: &str) -> Value {
    let mut it = crate::helpers::item(crate::helpers::v7(), resident, canteen, local);
    it["proxy_carer_id"] = json!(carer);
    it
}

#[tokio::test]
async fn a_linked_carers_card_meal_is_booked_to_the_elder_and_counted_as_proxy_on_the_statement() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[1]);
    let carer = add_carer(&app, "王小红", "CARER-1").await;
    link(&app, r, carer).await;
    let own = crate::helpers::item(
        crate::helpers::v7(),
        app.residents[0],
        c,
        "2026-03-15T11:00:00",
    );
    let results = app
        .settle_ok(0, vec![proxy_item(r, c, carer, "2026-03-15T11:05:00"), own])
        .await;
    assert_eq!(results[0]["status"], "accepted", "{}", results[0]);
    // booked to the elder, subsidised as the elder's own meal (the Yiwu policy pays 代取)
    assert_eq!(results[0]["meal"]["subsidy"], 800, "{}", results[0]);
    assert_eq!(results[1]["status"], "accepted", "{}", results[1]);

    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["proxy_meals"], 1, "{s}");
    assert_eq!(s["canteens"][0]["meals"], 2);
    assert_eq!(s["canteens"][0]["proxy_meals"], 1);
    assert_eq!(s["books"]["altered_count"], 0, "{}", s["books"]);
    let resp = app.get("/statements?month=2026-03&format=csv").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let csv = resp.text().await.expect("csv");
    assert!(csv.contains("其中代取 1 人次"), "{csv}");
    let resp = app.get("/statements?month=2026-03&format=xlsx").await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The kiosk's chain still verifies: the carer is in the signed record and on the row.
    let chain = app
        .json(&format!("/kiosks/{}/chain", app.kiosk_ids[0]))
        .await;
    assert_eq!(chain["status"], "verified", "{chain}");
}

#[tokio::test]
async fn unlinked_carers_and_proxy_face_meals_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[1]);
    let carer = add_carer(&app, "王小红", "CARER-1").await;
    link(&app, app.residents[2], carer).await;
    let mut linked_face = proxy_item(app.residents[2], c, carer, "2026-03-15T11:10:00");
    linked_face["method"] = json!("face");
    linked_face["match_score"] = json!(0.9);
    linked_face["liveness_score"] = json!(0.9);
    let results = app
        .settle_ok(
            0,
            vec![
                proxy_item(r, c, carer, "2026-03-15T11:05:00"),
                proxy_item(r, c, 999, "2026-03-15T11:06:00"),
                linked_face,
            ],
        )
        .await;
    for (i, (code, field)) in [
        ("proxy_not_linked", "proxy_carer_id"),
        ("proxy_not_linked", "proxy_carer_id"),
        ("proxy_not_allowed", "method"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(results[i]["status"], "error", "{}", results[i]);
        assert_eq!(results[i]["error"]["code"], code, "{}", results[i]);
        assert_eq!(results[i]["error"]["field"], field, "{}", results[i]);
    }
    assert_eq!(app.counts().await.0, 0, "nothing was stored");
    // Unlinked now: a carer whose link was removed can no longer collect.
    let resp = app
        .delete_as(
            ADMIN,
            &format!("/residents/{}/carers/{carer}", app.residents[2]),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let results = app
        .settle_ok(
            0,
            vec![proxy_item(
                app.residents[2],
                c,
                carer,
                "2026-03-15T11:20:00",
            )],
        )
        .await;
    assert_eq!(
        results[0]["error"]["code"], "proxy_not_linked",
        "{}",
        results[0]
    );
}

#[tokio::test]
async fn rows_without_a_carer_keep_their_mac_and_a_carer_edited_in_the_file_is_named() {
    use zhucan_server::db::books::SETTLEMENT_COLUMNS;
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[1]);
    let carer = add_carer(&app, "王小红", "CARER-1").await;
    link(&app, r, carer).await;
    let own_id = crate::helpers::v7();
    let own = crate::helpers::item(own_id, app.residents[0], c, "2026-03-15T11:00:00");
    let proxy = proxy_item(r, c, carer, "2026-03-15T11:05:00");
    let proxy_id = proxy["id"].as_str().expect("id").to_owned();
    app.settle_ok(0, vec![own, proxy]).await;
    // The MAC of a row without a carer is the MAC over the columns as they were before
    // migration 0013: rows sealed then still verify.
    let same = app
        .server
        .db
        .read(move |conn| {
            let keys = conn.keys().expect("the server's keys");
            conn.query_row(
                &format!("SELECT mac, {SETTLEMENT_COLUMNS} FROM settlements WHERE id = ?1"),
                [own_id.to_string()],
                |r| {
                    let mut values = vec![zhucan_server::db::sql::ValueRef::Text("settlement")];
                    for i in 1..r.len() {
                        values.push(r.get_ref(i)?);
                    }
                    let mac = zhucan_server::db::books::mac_keyed(&keys.books, values.into_iter());
                    Ok(r.get::<_, String>(0)? == mac)
                },
            )
        })
        .await
        .expect("read");
    assert!(same, "a row without a carer has its pre-0013 MAC");
    // An insider moves the proxy meal to another carer, and marks the own meal as proxy.
    app.tamper(
        &[],
        &format!(
            "UPDATE settlements SET proxy_carer_id = 77 WHERE id = '{proxy_id}';
             UPDATE settlements SET proxy_carer_id = {carer} WHERE id = '{own_id}';"
        ),
    );
    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["books"]["altered_count"], 2, "{}", s["books"]);
}

#[tokio::test]
async fn kiosks_hear_of_linked_carers_by_name_card_hash_and_residents() {
    let app = spawn_app().await;
    let r = app.residents[1];
    let carer = add_carer(&app, "王小红", "CARER-1").await;
    add_carer(&app, "未关联", "CARER-2").await;
    link(&app, r, carer).await;
    let resp = app.get_as(&app.kiosks[0], "/kiosk/sync?since=0").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let s: zhucan_domain::api::SyncResponse = resp.json().await.expect("sync answer");
    let key = zhucan_domain::api::decode_key(&s.card_key).expect("key");
    assert_eq!(
        s.carers,
        vec![zhucan_domain::api::KioskCarer {
            id: carer,
            name: "王小红".into(),
            card: zhucan_domain::api::card_index(&key, "CARER-1"),
            residents: vec![zhucan_domain::ResidentId(r)],
        }],
        "only carers with a link, the card code as its keyed hash"
    );
}

#[tokio::test]
async fn a_policy_that_does_not_subsidise_proxy_meals_sells_them_at_full_price_with_the_reason() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[1]);
    let carer = add_carer(&app, "王小红", "CARER-1").await;
    link(&app, r, carer).await;
    let mut p: Value =
        serde_json::from_str(include_str!("../../../domain/policies/yiwu.json")).expect("policy");
    p["version"] = json!(2);
    p["proxy_subsidised"] = json!(false);
    created(app.post("/policies", &p).await).await;
    let own = crate::helpers::item(
        crate::helpers::v7(),
        app.residents[0],
        c,
        "2026-03-15T11:00:00",
    );
    let results = app
        .settle_ok(0, vec![proxy_item(r, c, carer, "2026-03-15T11:05:00"), own])
        .await;
    let meal = &results[0]["meal"];
    assert_eq!(results[0]["status"], "accepted", "{}", results[0]);
    assert_eq!(meal["subsidy"], 0, "{meal}");
    assert_eq!(meal["self_pay"], meal["price"], "{meal}");
    assert_eq!(meal["eligibility"], "proxy_not_subsidised", "{meal}");
    assert_eq!(meal["policy_version"], 2, "{meal}");
    // the resident's own meal is subsidised as before
    assert!(
        results[1]["meal"]["subsidy"].as_i64().expect("subsidy") > 0,
        "{}",
        results[1]
    );
    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["proxy_meals"], 1, "{s}");
    assert_eq!(s["canteens"][0]["subsidised_meals"], 1, "{s}");
}
