//! Kiosk enrolment, incremental sync, templates (consent, sharing, purging, encryption at rest),
//! heartbeats and revocation, over real HTTP.

use chrono::Duration;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use zhucan_domain::api::{decode_embedding, encode_embedding};

use crate::helpers::{
    ADMIN, TestApp, embedding, item, now, patch, spawn_app, upload, upload_body, v7,
};

async fn sync_raw(app: &TestApp, token: &str, since: i64) -> Response {
    app.get_as(token, &format!("/kiosk/sync?since={since}"))
        .await
}

async fn sync(app: &TestApp, token: &str, since: i64) -> Value {
    let resp = sync_raw(app, token, since).await;
    let status = resp.status();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| {
            x.as_i64()
                .or_else(|| x["id"].as_i64())
                .or_else(|| x["diner"]["id"].as_i64())
                .or_else(|| x["resident_id"].as_i64())
                .expect("id")
        })
        .collect()
}

async fn error_field(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json");
    (status, body["error"].clone())
}

async fn new_code(app: &TestApp, canteen: i64) -> Value {
    let resp = app
        .post(
            "/kiosks/enrolment-codes",
            &json!({ "canteen_id": canteen, "name": "前台2号机" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.expect("json")
}

async fn enrol(app: &TestApp, code: &str) -> Response {
    app.client
        .post(app.url("/kiosks/enrol"))
        .json(&json!({ "code": code, "public_key": crate::helpers::public_key(&crate::helpers::new_key()) }))
        .send()
        .await
        .expect("enrol")
}

#[tokio::test]
async fn enrolment_code_registers_one_kiosk_once() {
    let app = spawn_app().await;
    let code = new_code(&app, app.canteens[1]).await;
    let text = code["code"].as_str().expect("code");
    assert_eq!(text.split('-').count(), 8);
    assert_eq!(code["canteen_id"], app.canteens[1]);
    let expires = chrono::DateTime::parse_from_rfc3339(code["expires_at"].as_str().expect("t"))
        .expect("rfc3339");
    assert_eq!(expires, now() + Duration::hours(24));

    // Typed in lower case without dashes: still the same code.
    let resp = enrol(&app, &text.replace('-', "").to_lowercase()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let kiosk: Value = resp.json().await.expect("json");
    assert_eq!(kiosk["canteen_id"], app.canteens[1]);
    assert_eq!(kiosk["name"], "前台2号机");
    let token = kiosk["token"].as_str().expect("token");
    let s = sync(&app, token, 0).await;
    assert_eq!(s["kiosk_id"], kiosk["id"]);
    assert_eq!(s["canteen"]["id"], app.canteens[1]);

    let (status, e) = error_field(enrol(&app, text).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some("code"), Some("code_used"))
    );
    let (status, e) = error_field(enrol(&app, "AAA-BBB-CCC-DDD-EEE-FFF-GGG-HHH").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some("code"), Some("invalid_code"))
    );

    // Only the administrator issues codes.
    let resp = app
        .post_as(
            &app.kiosks[0],
            "/kiosks/enrolment-codes",
            &json!({ "canteen_id": app.canteens[0], "name": "x" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn enrolment_code_expires_after_a_day() {
    let app = spawn_app().await;
    let fresh = new_code(&app, app.canteens[0]).await;
    let stale = new_code(&app, app.canteens[0]).await;
    app.clock
        .set(now() + Duration::hours(24) - Duration::seconds(1));
    let resp = enrol(&app, fresh["code"].as_str().expect("code")).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    app.clock.set(now() + Duration::hours(24));
    let (status, e) = error_field(enrol(&app, stale["code"].as_str().expect("code")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some("code"), Some("code_expired"))
    );
}

/// A stolen kiosk's disk holds what the kiosk was sent: of each resident only the name, the
/// decision's facts and a keyed hash of the card code, under a key of its own.
#[tokio::test]
async fn a_kiosk_is_sent_only_what_its_decisions_need_and_no_clear_card_code() {
    let app = spawn_app().await;
    let (a, b) = (&app.kiosks[0], &app.kiosks[1]);
    let full = sync(&app, a, 0).await;
    let r = &full["residents"][0];
    let fields: Vec<&str> = r
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["card", "diner", "name"], "{r}");
    let diner: Vec<&str> = r["diner"]
        .as_object()
        .expect("diner")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        diner,
        [
            "birth_date",
            "categories",
            "face_ready",
            "id",
            "local_registration",
            "prepaid_balance",
            "registered_town",
            "residence_town",
            "status"
        ],
        "no sex, card code, designated canteen, consent or ID number: {r}"
    );
    let body = full.to_string();
    assert!(
        !body.contains("CARD0"),
        "no clear card code anywhere in the answer"
    );
    // the card hash is the card code's HMAC under this kiosk's key ...
    let key_a =
        zhucan_domain::api::decode_key(full["card_key"].as_str().expect("key")).expect("b64");
    assert_eq!(key_a.len(), 32);
    let id0 = r["diner"]["id"].as_i64().expect("id");
    assert_eq!(id0, app.residents[0]);
    assert_eq!(
        r["card"].as_str(),
        Some(zhucan_domain::api::card_index(&key_a, "CARD0").as_str())
    );
    // ... and another kiosk has another key, so the hashes differ between kiosks
    let other = sync(&app, b, 0).await;
    assert_ne!(other["card_key"], full["card_key"]);
    assert_ne!(other["residents"][0]["card"], r["card"]);
    // an incremental answer carries the key too (a kiosk upgraded mid-cursor still finds cards)
    let quiet = sync(&app, a, full["cursor"].as_i64().expect("cursor")).await;
    assert_eq!(quiet["card_key"], full["card_key"]);
}

#[tokio::test]
async fn incremental_sync_returns_only_changes() {
    let app = spawn_app().await;
    let k = &app.kiosks[0];
    let full = sync(&app, k, 0).await;
    assert_eq!(full["full"], true);
    assert_eq!(ids(&full["residents"]), app.residents);
    assert_eq!(full["policies"].as_array().expect("policies").len(), 1);
    assert_eq!(full["canteen"]["id"], app.canteens[0]);
    assert!(full["residents"][0].get("national_id").is_none());
    assert!(full["residents"][0].get("national_id_masked").is_none());
    let c1 = full["cursor"].as_i64().expect("cursor");
    assert!(c1 > 0);

    let quiet = sync(&app, k, c1).await;
    assert_eq!(quiet["full"], false);
    assert_eq!(quiet["cursor"], c1);
    for list in ["residents", "templates", "purged", "meals", "voided"] {
        assert_eq!(quiet[list], json!([]), "{list}");
    }

    let r = app.residents[1];
    patch(&app, r, json!({ "categories": ["tekun"] })).await;
    patch(&app, r, json!({ "status": "suspended" })).await;
    let delta = sync(&app, k, c1).await;
    assert_eq!(
        ids(&delta["residents"]),
        vec![r],
        "changed twice, listed once"
    );
    assert_eq!(
        delta["residents"][0]["diner"]["categories"],
        json!(["tekun"])
    );
    assert_eq!(
        delta["residents"][0]["diner"]["status"]["status"],
        "suspended"
    );
    let c2 = delta["cursor"].as_i64().expect("cursor");
    assert!(c2 > c1);
    let again = sync(&app, k, c2).await;
    assert_eq!(again["residents"], json!([]));
    assert_eq!(again["cursor"], c2);

    // A cursor from the future (a restored server) gets a full snapshot.
    let reset = sync(&app, k, c2 + 1000).await;
    assert_eq!(reset["full"], true);
    assert_eq!(ids(&reset["residents"]), app.residents);
}

#[tokio::test]
async fn templates_stay_at_their_canteen_unless_sharing_is_consented() {
    let app = spawn_app().await;
    let (ka, kb) = (&app.kiosks[0], &app.kiosks[1]);
    let r = app.residents[2];
    let cur_a = sync(&app, ka, 0).await["cursor"].as_i64().expect("c");
    let cur_b = sync(&app, kb, 0).await["cursor"].as_i64().expect("c");
    let embs = vec![embedding(1, 128), embedding(2, 128), embedding(3, 128)];
    let resp = upload(&app, ka, r, &upload_body(false, &embs)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let a = sync(&app, ka, cur_a).await;
    assert_eq!(ids(&a["templates"]), vec![r]);
    let set = &a["templates"][0];
    assert_eq!(set["enrolled_canteen"], app.canteens[0]);
    assert_eq!(set["model"], "w600k_mbf.onnx");
    let got: Vec<Vec<f32>> = set["embeddings"]
        .as_array()
        .expect("embeddings")
        .iter()
        .map(|e| decode_embedding(e.as_str().expect("b64")).expect("decodes"))
        .collect();
    assert_eq!(got, embs);
    assert_eq!(ids(&a["residents"]), vec![r]);
    assert_eq!(a["residents"][0]["diner"]["face_ready"], true);
    assert!(!ids(&a["purged"]).contains(&r));

    let b = sync(&app, kb, cur_b).await;
    assert_eq!(
        b["templates"],
        json!([]),
        "not shared: canteen B never sees them"
    );
    let cur_b = b["cursor"].as_i64().expect("c");
    assert_eq!(sync(&app, kb, 0).await["templates"], json!([]));
    assert_eq!(ids(&sync(&app, ka, 0).await["templates"]), vec![r]);

    // Consent to sharing: canteen B gets them at its next sync.
    patch(
        &app,
        r,
        json!({ "consent": { "face_enrolment": true, "template_sharing": true }, "by": "社工" }),
    )
    .await;
    let b = sync(&app, kb, cur_b).await;
    assert_eq!(ids(&b["templates"]), vec![r]);
    assert_eq!(b["templates"][0]["enrolled_canteen"], app.canteens[0]);
    let cur_b = b["cursor"].as_i64().expect("c");

    // Sharing withdrawn: B must drop them, A keeps them.
    patch(
        &app,
        r,
        json!({ "consent": { "face_enrolment": true, "template_sharing": false } }),
    )
    .await;
    let b = sync(&app, kb, cur_b).await;
    assert_eq!(ids(&b["purged"]), vec![r]);
    assert_eq!(b["templates"], json!([]));
    assert_eq!(ids(&sync(&app, ka, 0).await["templates"]), vec![r]);
}

#[tokio::test]
async fn consent_withdrawal_and_death_purge_templates_everywhere() {
    let app = spawn_app().await;
    let (ka, kb) = (&app.kiosks[0], &app.kiosks[1]);
    let (r, dead) = (app.residents[4], app.residents[1]);
    for (i, who) in [r, dead].into_iter().enumerate() {
        let resp = upload(
            &app,
            ka,
            who,
            &upload_body(true, &[embedding(10 + i as u32, 256)]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let a = sync(&app, ka, 0).await;
    let b = sync(&app, kb, 0).await;
    assert_eq!(ids(&a["templates"]), vec![dead, r]);
    assert_eq!(ids(&b["templates"]), vec![dead, r], "shared with consent");
    let (ca, cb) = (
        a["cursor"].as_i64().expect("c"),
        b["cursor"].as_i64().expect("c"),
    );

    let body = patch(
        &app,
        r,
        json!({ "consent": { "face_enrolment": false, "template_sharing": false }, "by": "本人" }),
    )
    .await;
    assert_eq!(body["face_enrolled"], false);
    patch(
        &app,
        dead,
        json!({ "status": "deceased", "deceased_on": "2026-03-14" }),
    )
    .await;
    for who in [r, dead] {
        let n = app
            .server
            .db
            .read(move |c| zhucan_server::db::templates::count(c, zhucan_domain::ResidentId(who)))
            .await
            .expect("count");
        assert_eq!(n, 0, "purged on the server");
    }
    for (k, cur) in [(ka, ca), (kb, cb)] {
        let s = sync(&app, k, cur).await;
        assert_eq!(ids(&s["purged"]), vec![dead, r]);
        assert_eq!(s["templates"], json!([]));
        assert_eq!(sync(&app, k, 0).await["templates"], json!([]));
    }
}

#[tokio::test]
async fn deleting_templates_purges_them_from_kiosks() {
    let app = spawn_app().await;
    let r = app.residents[4];
    let resp = upload(
        &app,
        &app.kiosks[0],
        r,
        &upload_body(false, &[embedding(7, 512)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cur = sync(&app, &app.kiosks[0], 0).await["cursor"]
        .as_i64()
        .expect("c");
    let resp = app
        .delete_as(&app.kiosks[0], &format!("/residents/{r}/templates"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let done: serde_json::Value = resp.json().await.expect("json");
    let s = sync(&app, &app.kiosks[0], cur).await;
    // the answer names the cursor at which the deletion is recorded: the next sync reaches it
    assert_eq!(done["deleted"], 1);
    assert!(done["cursor"].as_i64().expect("cursor") > cur);
    assert_eq!(s["cursor"], done["cursor"]);
    assert_eq!(ids(&s["purged"]), vec![r]);
    assert_eq!(ids(&s["residents"]), vec![r]);
    assert_eq!(s["residents"][0]["diner"]["face_ready"], false);
}

#[tokio::test]
async fn prepaid_meal_changes_the_balance_and_reaches_meals() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[0]);
    // A meal of last month is not this month's history.
    let old = v7();
    let res = app
        .settle_ok(0, vec![item(old, r, c, "2026-02-20T11:30:00")])
        .await;
    assert_eq!(res[0]["status"], "accepted");
    let full = sync(&app, &app.kiosks[1], 0).await;
    assert_eq!(full["meals"], json!([]));
    let cur = full["cursor"].as_i64().expect("c");
    let balance = |s: &Value| {
        s["residents"]
            .as_array()
            .expect("residents")
            .iter()
            .find(|x| x["diner"]["id"] == r)
            .map(|x| x["diner"]["prepaid_balance"].clone())
    };
    let before = balance(&full).expect("listed");

    let id = v7();
    let res = app
        .settle_ok(0, vec![item(id, r, c, "2026-03-15T11:30:00")])
        .await;
    assert_eq!(res[0]["status"], "accepted");
    assert_eq!(res[0]["meal"]["payment"], "prepaid");
    let self_pay = res[0]["meal"]["self_pay"].as_i64().expect("fen");
    assert!(self_pay > 0);

    // Kiosk B (another canteen) needs the city-wide history too.
    let s = sync(&app, &app.kiosks[1], cur).await;
    assert_eq!(ids(&s["residents"]), vec![r]);
    assert_eq!(
        balance(&s).expect("listed"),
        json!(before.as_i64().expect("fen") - self_pay)
    );
    let meals = s["meals"].as_array().expect("meals");
    assert_eq!(meals.len(), 1);
    assert_eq!(meals[0]["id"], json!(id));
    assert_eq!(meals[0]["resident_id"], r);
    assert_eq!(meals[0]["date"], "2026-03-15");
    assert_eq!(meals[0]["slot"], "lunch");
    assert_eq!(meals[0]["subsidy"], res[0]["meal"]["subsidy"]);
    let full = sync(&app, &app.kiosks[0], 0).await;
    assert_eq!(full["meals"].as_array().expect("meals").len(), 1);

    // Replaying the batch changes nothing.
    let cur = s["cursor"].as_i64().expect("c");
    app.settle_ok(0, vec![item(id, r, c, "2026-03-15T11:30:00")])
        .await;
    assert_eq!(sync(&app, &app.kiosks[1], cur).await["cursor"], cur);
}

#[tokio::test]
async fn void_reaches_kiosks_as_voided() {
    let app = spawn_app().await;
    let (c, r) = (app.canteens[0], app.residents[0]);
    let id = v7();
    app.settle_ok(0, vec![item(id, r, c, "2026-03-14T11:30:00")])
        .await;
    let cur = sync(&app, &app.kiosks[0], 0).await["cursor"]
        .as_i64()
        .expect("c");
    let resp = app
        .post(
            &format!("/settlements/{id}/void"),
            &json!({ "reason": "录错人" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let s = sync(&app, &app.kiosks[0], cur).await;
    assert_eq!(s["voided"], json!([id]));
    assert_eq!(s["meals"], json!([]));
    assert_eq!(
        ids(&s["residents"]),
        vec![r],
        "the prepaid refund is a roster change"
    );
    assert_eq!(sync(&app, &app.kiosks[0], 0).await["meals"], json!([]));
}

#[tokio::test]
async fn template_upload_errors_name_the_field() {
    let app = spawn_app().await;
    let k = &app.kiosks[0];
    let r = app.residents[2];
    let good = upload_body(false, &[embedding(1, 128)]);
    let with = |f: &str, v: Value| {
        let mut b = good.clone();
        b[f] = v;
        b
    };
    let unit = |e: Vec<f32>| json!(encode_embedding(&e));
    let cases = [
        (
            with("consent_face_enrolment", json!(false)),
            "consent_face_enrolment",
        ),
        (with("by", json!("  ")), "by"),
        (with("model", json!("")), "model"),
        (with("embeddings", json!([])), "embeddings"),
        (
            with("embeddings", json!(vec![unit(embedding(1, 128)); 6])),
            "embeddings",
        ),
        (with("embeddings", json!(["***"])), "embeddings[0]"),
        (
            with("embeddings", json!([unit(embedding(1, 32))])),
            "embeddings[0]",
        ),
        (
            with("embeddings", json!([unit(vec![0.5; 128])])),
            "embeddings[0]",
        ),
        (
            with(
                "embeddings",
                json!([unit(embedding(1, 128)), unit(embedding(2, 256))]),
            ),
            "embeddings[1]",
        ),
        (with("extra", json!(1)), "extra"),
    ];
    for (body, field) in cases {
        let (status, e) = error_field(upload(&app, k, r, &body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {e}");
        assert!(
            e["field"].as_str().is_some_and(|f| f.contains(field)),
            "{field}: {e}"
        );
    }
    let resp = upload(&app, k, 99_999, &good).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    patch(&app, r, json!({ "deceased_on": "2026-03-01" })).await;
    let resp = upload(&app, k, r, &good).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    // Nothing was stored by any of them.
    let n = app
        .server
        .db
        .read(move |c| zhucan_server::db::templates::count(c, zhucan_domain::ResidentId(r)))
        .await
        .expect("count");
    assert_eq!(n, 0);
    // The administrator names the enrolling canteen when the resident has no designated one.
    let (status, e) = error_field(upload(&app, ADMIN, app.residents[3], &good).await).await;
    assert_eq!(
        (status, e["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("canteen"))
    );
    let resp = app
        .put_as(
            ADMIN,
            &format!(
                "/residents/{}/templates?canteen={}",
                app.residents[3], app.canteens[1]
            ),
            &good,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

/// Whether `needle` occurs anywhere in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn templates_are_encrypted_at_rest() {
    let app = spawn_app().await;
    let r = app.residents[4];
    let e = embedding(99, 512);
    let plain: Vec<u8> = e.iter().flat_map(|x| x.to_le_bytes()).collect();
    let resp = upload(
        &app,
        &app.kiosks[0],
        r,
        &upload_body(false, std::slice::from_ref(&e)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The server can still give it back to a kiosk that may hold it.
    let s = sync(&app, &app.kiosks[0], 0).await;
    let got = decode_embedding(s["templates"][0]["embeddings"][0].as_str().expect("b64"));
    assert_eq!(got, Some(e));
    // the database files (on PostgreSQL a dump of the database)
    let raw: Vec<u8> = app
        .database_files()
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    // Control: the search does see what is stored in the clear.
    assert!(contains(&raw, "测试老人4".as_bytes()), "read the database");
    // Not the whole vector, and not even its first 16 bytes (4 values).
    assert!(!contains(&raw, &plain), "template stored in the clear");
    assert!(
        !contains(&raw, &plain[..16]),
        "template bytes stored in the clear"
    );
}

#[tokio::test]
async fn heartbeat_is_stored_and_listed() {
    let app = spawn_app().await;
    app.clock.set(now() + Duration::minutes(5));
    let resp = app
        .post_as(
            &app.kiosks[1],
            "/kiosk/heartbeat",
            &json!({ "outbox_backlog": 17, "software_version": "0.1.0",
                "model_version": "w600k_mbf.onnx", "last_sync_cursor": 12,
                "match_threshold": 0.62, "liveness_threshold": 0.8 }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let list = app.json("/kiosks").await;
    let list = list.as_array().expect("kiosks");
    assert_eq!(list.len(), 2);
    let k = list
        .iter()
        .find(|k| k["canteen_id"] == app.canteens[1])
        .expect("kiosk B");
    assert_eq!(k["outbox_backlog"], 17);
    assert_eq!(k["software_version"], "0.1.0");
    assert_eq!(k["model_version"], "w600k_mbf.onnx");
    assert_eq!(k["last_sync_cursor"], 12);
    assert_eq!(
        (
            k["match_threshold"].as_f64(),
            k["liveness_threshold"].as_f64()
        ),
        (Some(0.62), Some(0.8))
    );
    // A threshold is a score: out of 0..=1 it is refused, naming the field.
    let resp = app
        .post_as(
            &app.kiosks[1],
            "/kiosk/heartbeat",
            &json!({ "outbox_backlog": 0, "software_version": "0.1.0",
                "model_version": "m", "liveness_threshold": 1.5 }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["field"], "liveness_threshold", "{e}");
    let seen = chrono::DateTime::parse_from_rfc3339(k["last_seen_at"].as_str().expect("seen"))
        .expect("rfc3339");
    assert_eq!(seen, now() + Duration::minutes(5));
    let other = list
        .iter()
        .find(|k| k["canteen_id"] == app.canteens[0])
        .expect("kiosk A");
    assert_eq!(other["last_seen_at"], Value::Null);
    // The administrator is not a kiosk.
    let resp = app
        .post(
            "/kiosk/heartbeat",
            &json!({ "outbox_backlog": 0, "software_version": "x", "model_version": "y" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoked_kiosk_gets_401() {
    let app = spawn_app().await;
    let list = app.json("/kiosks").await;
    let id = list
        .as_array()
        .expect("kiosks")
        .iter()
        .find(|k| k["canteen_id"] == app.canteens[1])
        .expect("kiosk B")["id"]
        .as_i64()
        .expect("id");
    let resp = app.post(&format!("/kiosks/{id}/revoke"), &json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert!(body["revoked_at"].is_string());
    assert_eq!(
        sync_raw(&app, &app.kiosks[1], 0).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app
        .settle(
            1,
            vec![item(
                v7(),
                app.residents[0],
                app.canteens[1],
                "2026-03-15T11:00:00",
            )],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sync_raw(&app, &app.kiosks[0], 0).await.status(),
        StatusCode::OK
    );
    let resp = app.post("/kiosks/99999/revoke", &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// DELETE /residents/{r}/templates with `token`.
async fn delete_templates(app: &TestApp, token: &str, r: i64) -> Response {
    app.delete_as(token, &format!("/residents/{r}/templates"))
        .await
}

/// The number of templates the server holds for `r`, as the face-data count sees it.
async fn held(app: &TestApp, r: i64) -> i64 {
    app.server
        .db
        .read(move |c| zhucan_server::db::templates::count(c, zhucan_domain::ResidentId(r)))
        .await
        .expect("count")
}

#[tokio::test]
async fn a_kiosk_changes_only_the_templates_its_own_canteen_enrolled() {
    let app = spawn_app().await;
    let r = app.residents[4];
    let (home, other) = (&app.kiosks[0], &app.kiosks[1]);
    let resp = upload(&app, home, r, &upload_body(true, &[embedding(5, 512)])).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(held(&app, r).await, 1);
    // another canteen's kiosk can neither replace nor delete them
    let resp = upload(
        &app,
        other,
        r,
        &upload_body(true, &[embedding(6, 512), embedding(7, 512)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = delete_templates(&app, other, r).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err: Value = resp.json().await.expect("json");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("enrolled at canteen"),
        "{err}"
    );
    assert_eq!(held(&app, r).await, 1, "the templates are untouched");
    let sync = sync(&app, home, 0).await;
    let set = sync["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["resident_id"] == r)
        .expect("still served to the home kiosk")
        .clone();
    assert_eq!(set["enrolled_canteen"], app.canteens[0]);
    // the home kiosk and the administrator can
    assert_eq!(
        delete_templates(&app, home, r).await.status(),
        StatusCode::OK
    );
    let resp = upload(&app, other, r, &upload_body(false, &[embedding(8, 512)])).await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "nothing enrolled elsewhere any more"
    );
    assert_eq!(
        delete_templates(&app, ADMIN, r).await.status(),
        StatusCode::OK
    );
    assert_eq!(held(&app, r).await, 0);
}

#[tokio::test]
async fn a_withdrawal_recorded_on_the_server_cannot_be_undone_by_a_kiosk() {
    let app = spawn_app().await;
    let r = app.residents[4];
    let kiosk = &app.kiosks[0];
    let resp = upload(&app, kiosk, r, &upload_body(true, &[embedding(5, 512)])).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    patch(
        &app,
        r,
        json!({ "consent": { "face_enrolment": false, "template_sharing": false }, "by": "社工" }),
    )
    .await;
    assert_eq!(held(&app, r).await, 0, "withdrawal purges");
    // the kiosk's upload would record consent again: refused, nothing stored, consent unchanged
    let resp = upload(&app, kiosk, r, &upload_body(true, &[embedding(9, 512)])).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(held(&app, r).await, 0);
    let dto = app.json(&format!("/residents/{r}")).await;
    assert_eq!(dto["consent"]["face_enrolment"], false, "{dto}");
    // granted again on the server (recorded with who), the kiosk may enrol the resident again
    patch(
        &app,
        r,
        json!({ "consent": { "face_enrolment": true, "template_sharing": false }, "by": "社工" }),
    )
    .await;
    let resp = upload(&app, kiosk, r, &upload_body(true, &[embedding(9, 512)])).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(held(&app, r).await, 1);
}
