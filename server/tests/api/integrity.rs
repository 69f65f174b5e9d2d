//! Signed, hash-chained settlements over real HTTP: a kiosk with a real Ed25519 key signs its
//! records in chain order; tampered, forged, unsigned and forked records are refused and
//! recorded; a dropped record shows as a gap until it arrives; a replay changes nothing; a
//! revoked kiosk is locked out while its signed meals stay verified; key rotation hands over to
//! a new key and token; and the full re-verification catches a settlement row edited in the
//! database file.

use reqwest::StatusCode;
use serde_json::{Value, json};
use zhucan_domain::signing::{self, GENESIS, SigningKey};

use crate::helpers::{ADMIN, TestApp, item, new_key, public_key, sign_item, spawn_app, v7};

/// Kiosk 0's key (the one registered for it).
fn key0(app: &TestApp) -> SigningKey {
    app.chains[0].lock().expect("chain").key.clone()
}

/// Signs `items` as records `first..` of a chain whose last record hash is `prev`: the signed
/// JSON and each record's hash.
fn chain_from(items: &[Value], first: u64, prev: &str, key: &SigningKey) -> Vec<(Value, String)> {
    let mut prev = prev.to_owned();
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let (v, h) = sign_item(it, first + i as u64, &prev, key);
            prev = h.clone();
            (v, h)
        })
        .collect()
}

/// Four card lunches at canteen 0 on different days, for residents 0..3.
fn meals(app: &TestApp) -> Vec<Value> {
    (0..4)
        .map(|i| {
            item(
                v7(),
                app.residents[i],
                app.canteens[0],
                &format!("2026-03-1{i}T11:30:00"),
            )
        })
        .collect()
}

async fn results(resp: reqwest::Response) -> Vec<Value> {
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    body["results"].as_array().expect("results").clone()
}

/// The statement's chain line of kiosk `k`.
async fn chain_line(app: &TestApp, k: usize) -> Value {
    let s = app.json("/statements?month=2026-03").await;
    s["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|l| l["kiosk_id"] == app.kiosk_ids[k])
        .cloned()
        .unwrap_or(Value::Null)
}

/// The full re-verification of kiosk `k`.
async fn full_check(app: &TestApp, k: usize) -> Value {
    app.json(&format!("/kiosks/{}/chain", app.kiosk_ids[k]))
        .await
}

fn kinds(line: &Value) -> Vec<(String, u64, u64)> {
    line["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or_default().to_owned(),
                p["seq_from"].as_u64().unwrap_or(u64::MAX),
                p["seq_to"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

fn error_of(r: &Value) -> (String, String) {
    assert_eq!(r["status"], "error", "{r}");
    (
        r["error"]["code"].as_str().unwrap_or_default().to_owned(),
        r["error"]["field"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn link_counts(app: &TestApp) -> std::collections::BTreeMap<i64, (i64, i64)> {
    app.server
        .db
        .read(zhucan_server::db::chain::counts)
        .await
        .expect("counts")
}

#[tokio::test]
async fn a_tampered_settlement_is_refused_and_recorded() {
    let app = spawn_app().await;
    let signed = chain_from(&meals(&app)[..1], 1, GENESIS, &key0(&app));
    // Changed after signing: another resident eats on this record.
    let mut tampered = signed[0].0.clone();
    tampered["resident_id"] = json!(app.residents[1]);
    let res = results(app.settle_raw(0, vec![tampered]).await).await;
    assert_eq!(
        error_of(&res[0]),
        ("signature_invalid".into(), "signed.signature".into())
    );
    assert_eq!(app.counts().await, (0, 0), "nothing stored");
    let full = full_check(&app, 0).await;
    assert_eq!(full["status"], "broken");
    assert_eq!(kinds(&full), vec![("bad_signature".into(), 1, 1)]);
    assert!(
        full["problems"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("signature_invalid")),
        "{full}"
    );
    // The untouched record still goes through.
    let res = results(app.settle_raw(0, vec![signed[0].0.clone()]).await).await;
    assert_eq!(res[0]["status"], "accepted");
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let app = spawn_app().await;
    let m = meals(&app);
    // Signed by a key that is not the kiosk's.
    let forged = chain_from(&m[..1], 1, GENESIS, &new_key());
    let res = results(app.settle_raw(0, vec![forged[0].0.clone()]).await).await;
    assert_eq!(error_of(&res[0]).0, "signature_invalid");
    // The other kiosk's genuine key does not help either.
    let other = app.chains[1].lock().expect("chain").key.clone();
    let forged = chain_from(&m[1..2], 1, GENESIS, &other);
    let res = results(app.settle_raw(0, vec![forged[0].0.clone()]).await).await;
    assert_eq!(error_of(&res[0]).0, "signature_invalid");
    assert_eq!(app.counts().await, (0, 0));
    // A garbled signature is malformed, naming the field.
    let mut garbled = chain_from(&m[..1], 1, GENESIS, &key0(&app))[0].0.clone();
    garbled["signed"]["signature"] = json!("not base64!");
    let res = results(app.settle_raw(0, vec![garbled]).await).await;
    assert_eq!(
        error_of(&res[0]),
        ("signature_malformed".into(), "signed.signature".into())
    );
    let full = full_check(&app, 0).await;
    assert_eq!(
        kinds(&full),
        vec![
            ("bad_signature".into(), 1, 1),
            ("bad_signature".into(), 1, 1)
        ]
    );
    // None of the refused records took seq 1: the genuine one is accepted.
    let genuine = chain_from(&m[..1], 1, GENESIS, &key0(&app));
    let res = results(app.settle_raw(0, vec![genuine[0].0.clone()]).await).await;
    assert_eq!(res[0]["status"], "accepted");
}

#[tokio::test]
async fn an_unsigned_item_from_a_kiosk_is_refused() {
    let app = spawn_app().await;
    let res = results(app.settle_raw(0, meals(&app)[..1].to_vec()).await).await;
    assert_eq!(
        error_of(&res[0]),
        ("signature_missing".into(), "signed".into())
    );
    assert_eq!(app.counts().await, (0, 0));
    let full = full_check(&app, 0).await;
    assert_eq!(kinds(&full), vec![("bad_signature".into(), 0, 0)]);
}

async fn staff_entries(app: &crate::helpers::TestApp) -> Vec<zhucan_server::db::audit::Row> {
    app.server
        .db
        .read(|c| zhucan_server::db::audit::of_action(c, "settlement.staff_entry"))
        .await
        .expect("audit")
}

#[tokio::test]
async fn a_meal_entered_on_the_server_is_a_staff_meal_with_a_reason_audited_and_counted_apart() {
    let app = spawn_app().await;
    // Face and card meals come only from a registered kiosk, signed: the admin token's
    // unsigned card and face items are refused, and nothing is written.
    let card = meals(&app)[1].clone();
    let mut face = meals(&app)[2].clone();
    face["method"] = json!("face");
    face["match_score"] = json!(0.99);
    face["liveness_score"] = json!(0.99);
    let res = results(
        app.post("/settlements", &json!({ "items": [card, face] }))
            .await,
    )
    .await;
    for r in &res {
        assert_eq!(
            error_of(r),
            ("method_not_allowed".into(), "method".into()),
            "{r}"
        );
    }
    assert_eq!(app.counts().await, (0, 0));
    // A staff meal with its reason is accepted, and the audit log says who entered it and why.
    let mut staff = meals(&app)[1].clone();
    staff["method"] = json!("staff");
    staff["staff_reason"] = json!("老人忘带卡，核对身份证后录入");
    let id = staff["id"].as_str().expect("id").to_owned();
    let res = results(
        app.post("/settlements", &json!({ "items": [staff.clone()] }))
            .await,
    )
    .await;
    assert_eq!(res[0]["status"], "accepted");
    let entries = staff_entries(&app).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "admin-token");
    assert_eq!(entries[0].target, format!("settlement:{id}"));
    let detail: Value = serde_json::from_str(&entries[0].detail).expect("json");
    assert_eq!(detail["reason"], "老人忘带卡，核对身份证后录入");
    // the same item again is a replay: no second meal, no second entry
    let again = results(app.post("/settlements", &json!({ "items": [staff] })).await).await;
    assert_eq!(again[0]["status"], "accepted");
    assert_eq!(staff_entries(&app).await.len(), 1);
    let s = app.json("/statements?month=2026-03").await;
    let server_line = s["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|l| l["kiosk_id"].is_null())
        .cloned()
        .expect("server line");
    assert_eq!(server_line["status"], "unsigned");
    assert_eq!(server_line["status_zh"], "未签名（服务器录入）");
    assert_eq!(
        (
            server_line["meals"].clone(),
            server_line["staff_meals"].clone()
        ),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn a_revoked_kiosk_is_locked_out_and_its_signed_meals_stay_verified() {
    let app = spawn_app().await;
    let m = meals(&app);
    let mut staff = m[1].clone();
    staff["method"] = json!("staff");
    staff["staff_reason"] = json!("刷脸失败，工作人员核对身份证");
    let res = app.settle_ok(0, vec![m[0].clone(), staff]).await;
    assert!(res.iter().all(|r| r["status"] == "accepted"), "{res:?}");
    let resp = app
        .post(&format!("/kiosks/{}/revoke", app.kiosk_ids[0]), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let audit = app.json("/audit?limit=5").await;
    assert_eq!(audit["entries"][0]["action"], json!("kiosk.revoke"));
    let token = &app.kiosks[0];
    assert_eq!(
        app.settle(0, vec![m[2].clone()]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let sync = app.get_as(token, "/kiosk/sync?since=0").await;
    assert_eq!(sync.status(), StatusCode::UNAUTHORIZED);
    let beat = app
        .post_as(
            token,
            "/kiosk/heartbeat",
            &json!({ "outbox_backlog": 0, "software_version": "x", "model_version": "y" }),
        )
        .await;
    assert_eq!(beat.status(), StatusCode::UNAUTHORIZED);
    let new = new_key();
    let pk = public_key(&new);
    let sig = signing::sign_bytes(
        &signing::rotation_payload(app.kiosk_ids[0], 3, &pk),
        &key0(&app),
    );
    let rotate = app
        .post_as(
            token,
            "/kiosk/rotate",
            &json!({ "public_key": pk, "from_seq": 3, "signature": sig }),
        )
        .await;
    assert_eq!(rotate.status(), StatusCode::UNAUTHORIZED);
    // What it signed before the revocation stays verified, staff-confirmed meals labelled.
    let line = chain_line(&app, 0).await;
    assert_eq!(line["status"], "verified", "{line}");
    assert_eq!(line["status_zh"], "已验证");
    assert_eq!(
        (line["meals"].as_i64(), line["staff_meals"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(full_check(&app, 0).await["status"], "verified");
}

#[tokio::test]
async fn a_dropped_record_is_a_gap_until_it_arrives() {
    let app = spawn_app().await;
    let signed = chain_from(&meals(&app), 1, GENESIS, &key0(&app));
    let batch: Vec<Value> = [0, 1, 3].iter().map(|&i| signed[i].0.clone()).collect();
    let res = results(app.settle_raw(0, batch).await).await;
    assert!(res.iter().all(|r| r["status"] == "accepted"), "{res:?}");
    let line = chain_line(&app, 0).await;
    assert_eq!(line["status"], "broken");
    assert_eq!(line["status_zh"], "链有缺口或分叉");
    assert_eq!(kinds(&line), vec![("gap".into(), 3, 3)]);
    assert_eq!(
        (line["first_seq"].as_u64(), line["last_seq"].as_u64()),
        (Some(1), Some(4))
    );
    // The exports carry the same verdict.
    let csv = app.get("/statements?month=2026-03&format=csv").await;
    let bytes = csv.bytes().await.expect("csv");
    let mut rdr = csv::Reader::from_reader(&bytes[3..]);
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).collect();
    let kiosk_id = app.kiosk_ids[0].to_string();
    let row = rows
        .iter()
        .find(|r| &r[0] == "终端签名链" && r[2] == *kiosk_id)
        .expect("chain row");
    assert_eq!((&row[4], &row[5]), ("链有缺口或分叉", "3"));
    assert!(row[row.len() - 1].contains("gap"), "{row:?}");
    // The late record arrives: the chain verifies.
    let res = results(app.settle_raw(0, vec![signed[2].0.clone()]).await).await;
    assert_eq!(res[0]["status"], "accepted");
    let line = chain_line(&app, 0).await;
    assert_eq!(line["status"], "verified", "{line}");
    assert_eq!(line["problems"], json!([]));
    assert_eq!(line["meals"], 4);
    let xlsx = app.get("/statements?month=2026-03&format=xlsx").await;
    let bytes = xlsx.bytes().await.expect("xlsx").to_vec();
    use calamine::Reader as _;
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let sheet = wb.worksheet_range("终端签名链").expect("chain sheet");
    let rows: Vec<_> = sheet.rows().collect();
    assert_eq!(rows[0][7].to_string(), "状态");
    let r = rows
        .iter()
        .find(|r| r[0].to_string() == kiosk_id)
        .expect("kiosk row");
    assert_eq!(r[7].to_string(), "已验证");
    assert_eq!(r[3].to_string(), "4");
}

#[tokio::test]
async fn replaying_a_signed_batch_changes_nothing() {
    let app = spawn_app().await;
    let mut m = meals(&app);
    // One refused meal (a second lunch) and one item error (unknown resident) are records too.
    m.push(item(
        v7(),
        app.residents[0],
        app.canteens[0],
        "2026-03-10T12:00:00",
    ));
    m.push(item(v7(), 99_999, app.canteens[0], "2026-03-10T12:00:00"));
    let batch: Vec<Value> = chain_from(&m, 1, GENESIS, &key0(&app))
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    let first = results(app.settle_raw(0, batch.clone()).await).await;
    assert_eq!(first[4]["status"], "rejected");
    assert_eq!(error_of(&first[5]).0, "unknown_resident");
    let counts = app.counts().await;
    let statement = app.books_of("2026-03").await;
    let links = link_counts(&app).await;
    assert_eq!(
        links.get(&app.kiosk_ids[0]),
        Some(&(6, 0)),
        "every record linked"
    );
    let second = results(app.settle_raw(0, batch.clone()).await).await;
    assert_eq!(first, second);
    assert_eq!(app.counts().await, counts);
    assert_eq!(app.books_of("2026-03").await, statement);
    assert_eq!(link_counts(&app).await, links);
    assert_eq!(chain_line(&app, 0).await["status"], "verified");
}

#[tokio::test]
async fn a_fork_is_refused_and_flagged() {
    let app = spawn_app().await;
    let key = key0(&app);
    let m = meals(&app);
    let signed = chain_from(&m[..2], 1, GENESIS, &key);
    results(
        app.settle_raw(0, signed.iter().map(|s| s.0.clone()).collect())
            .await,
    )
    .await;
    // A second, different record claiming seq 2.
    let (other, _) = sign_item(&m[2], 2, &signed[0].1, &key);
    let res = results(app.settle_raw(0, vec![other]).await).await;
    assert_eq!(
        error_of(&res[0]),
        ("chain_fork".into(), "signed.seq".into())
    );
    // And seq 3 that does not follow the record 2 received.
    let (stray, _) = sign_item(&m[3], 3, &signed[0].1, &key);
    let res = results(app.settle_raw(0, vec![stray]).await).await;
    assert_eq!(error_of(&res[0]).0, "chain_fork");
    assert_eq!(app.counts().await.0, 2);
    let line = chain_line(&app, 0).await;
    assert_eq!(line["status"], "broken");
    assert_eq!(
        kinds(&line),
        vec![("fork".into(), 2, 2), ("fork".into(), 3, 3)]
    );
}

#[tokio::test]
async fn rotation_hands_over_to_a_new_key_and_token() {
    let app = spawn_app().await;
    let (old, id) = (key0(&app), app.kiosk_ids[0]);
    let m = meals(&app);
    let signed = chain_from(&m[..2], 1, GENESIS, &old);
    results(
        app.settle_raw(0, signed.iter().map(|s| s.0.clone()).collect())
            .await,
    )
    .await;
    let new = new_key();
    let pk = public_key(&new);
    let rotate = |token: String, body: Value| {
        let app = &app;
        async move { app.post_as(&token, "/kiosk/rotate", &body).await }
    };
    let sign = |from: u64, key: &SigningKey| {
        signing::sign_bytes(&signing::rotation_payload(id, from, &pk), key)
    };
    let bad = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let b: Value = resp.json().await.expect("json");
        (
            b["error"]["code"].as_str().unwrap_or_default().to_owned(),
            b["error"]["field"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let token = app.kiosks[0].clone();
    // Signed by the new key instead of the current one.
    let r = rotate(
        token.clone(),
        json!({ "public_key": pk, "from_seq": 3, "signature": sign(3, &new) }),
    )
    .await;
    assert_eq!(
        bad(r).await,
        ("signature_invalid".into(), "signature".into())
    );
    // Not after every record already received.
    let r = rotate(
        token.clone(),
        json!({ "public_key": pk, "from_seq": 2, "signature": sign(2, &old) }),
    )
    .await;
    assert_eq!(bad(r).await, ("from_seq_too_low".into(), "from_seq".into()));
    let r = rotate(
        token.clone(),
        json!({ "public_key": "AAAA", "from_seq": 3, "signature": sign(3, &old) }),
    )
    .await;
    assert_eq!(bad(r).await.1, "public_key");
    // The real handover.
    let r = rotate(
        token.clone(),
        json!({ "public_key": pk, "from_seq": 3, "signature": sign(3, &old) }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.expect("json");
    assert_eq!(
        (rotated["kiosk_id"].as_i64(), rotated["from_seq"].as_u64()),
        (Some(id), Some(3))
    );
    let fresh = rotated["token"].as_str().expect("token").to_owned();
    assert_ne!(fresh, token);
    // Kiosk registration and the hand-over are in the audit log, with the new key.
    let audit = app.json("/audit?limit=500").await;
    let acts: Vec<(String, String)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["target"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let target = format!("kiosk:{id}");
    assert!(
        acts.contains(&("kiosk.create".into(), target.clone())),
        "{acts:?}"
    );
    assert!(acts.contains(&("kiosk.rotate".into(), target)), "{acts:?}");
    assert_eq!(audit["verified"], json!(true));
    let old_token = app.get_as(&token, "/kiosk/sync?since=0").await;
    assert_eq!(old_token.status(), StatusCode::UNAUTHORIZED);
    let post = |items: Vec<Value>| {
        let (app, fresh) = (&app, fresh.clone());
        async move {
            results(
                app.post_as(&fresh, "/settlements", &json!({ "items": items }))
                    .await,
            )
            .await
        }
    };
    // The new key signs seq 3 on, continuing the same chain.
    let (third, third_hash) = sign_item(&m[2], 3, &signed[1].1, &new);
    assert_eq!(post(vec![third]).await[0]["status"], "accepted");
    let full = full_check(&app, 0).await;
    assert_eq!(full["status"], "verified", "{full}");
    assert_eq!(full["last_seq"], 3);
    // The old key no longer signs anything from seq 3 on.
    let (late, _) = sign_item(&m[3], 4, &third_hash, &old);
    assert_eq!(error_of(&post(vec![late]).await[0]).0, "signature_invalid");
    let (fourth, _) = sign_item(&m[3], 4, &third_hash, &new);
    assert_eq!(post(vec![fourth]).await[0]["status"], "accepted");
    assert_eq!(app.counts().await.0, 4);
}

#[tokio::test]
async fn the_full_check_catches_a_row_edited_in_the_database_file() {
    let app = spawn_app().await;
    let res = app.settle_ok(0, meals(&app)[..2].to_vec()).await;
    assert!(res.iter().all(|r| r["status"] == "accepted"));
    assert_eq!(full_check(&app, 0).await["status"], "verified");
    let id = res[1]["id"].as_str().expect("id").to_owned();
    app.tamper(
        &[],
        &format!(
            "UPDATE settlements SET resident_id = {} WHERE id = '{id}'",
            app.residents[4]
        ),
    );
    // The statement's SQL check sees the chain intact; the full check sees the edit.
    assert_eq!(chain_line(&app, 0).await["status"], "verified");
    let full = full_check(&app, 0).await;
    assert_eq!(full["status"], "broken");
    // The signed fields differ from the record, and the row from the server's books MAC.
    assert_eq!(
        kinds(&full),
        vec![("tampered".into(), 2, 2), ("altered".into(), 0, 0)]
    );
}

#[tokio::test]
async fn registration_requires_a_valid_public_key() {
    let app = spawn_app().await;
    let c = app.canteens[0];
    for (body, what) in [
        (json!({ "canteen_id": c, "name": "x" }), "missing"),
        (
            json!({ "canteen_id": c, "name": "x", "public_key": "AAAA" }),
            "short",
        ),
        (
            json!({ "canteen_id": c, "name": "x", "public_key": "!".repeat(44) }),
            "not base64",
        ),
    ] {
        let resp = app.post("/kiosks", &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        let b: Value = resp.json().await.expect("json");
        assert_eq!(b["error"]["field"], "public_key", "{what}: {b}");
    }
    // Enrolment with a code: a bad key is refused before the code is used up.
    let resp = app
        .post(
            "/kiosks/enrolment-codes",
            &json!({ "canteen_id": c, "name": "前台3号机" }),
        )
        .await;
    let code: Value = resp.json().await.expect("json");
    let enrol = |key: String| {
        let (app, code) = (&app, code["code"].clone());
        async move {
            app.client
                .post(app.url("/kiosks/enrol"))
                .json(&json!({ "code": code, "public_key": key }))
                .send()
                .await
                .expect("enrol")
        }
    };
    let resp = enrol("AAAA".into()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let b: Value = resp.json().await.expect("json");
    assert_eq!(b["error"]["field"], "public_key");
    let key = new_key();
    let resp = enrol(public_key(&key)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let k: Value = resp.json().await.expect("json");
    // The enrolled kiosk signs with its own key from seq 1.
    let (signed, _) = sign_item(&meals(&app)[0], 1, GENESIS, &key);
    let resp = app
        .post_as(
            k["token"].as_str().expect("token"),
            "/settlements",
            &json!({ "items": [signed] }),
        )
        .await;
    assert_eq!(results(resp).await[0]["status"], "accepted");
}

#[tokio::test]
async fn only_administrators_and_finance_read_a_kiosk_chain() {
    let app = spawn_app().await;
    let path = format!("/kiosks/{}/chain", app.kiosk_ids[0]);
    let url = app.url(&path);
    let resp = app.get_as(&app.kiosks[0], &path).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app.client.get(&url).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.get_as(ADMIN, "/kiosks/99999/chain").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A kiosk that has not sent anything yet has no signed records.
    let line = full_check(&app, 1).await;
    assert_eq!(line["status"], "unsigned");
    assert_eq!(line["meals"], 0);
}

/// A face item of resident `r` at canteen `k`'s counter at local time `local`.
fn face(app: &TestApp, r: usize, k: usize, local: &str, m: f64, l: f64) -> Value {
    let mut it = item(v7(), app.residents[r], app.canteens[k], local);
    it["method"] = json!("face");
    it["match_score"] = json!(m);
    it["liveness_score"] = json!(l);
    it
}

/// Resident `r`'s face enrolled by kiosk `k` (at its canteen, not shared).
async fn enrol_face(app: &TestApp, r: usize, k: usize) {
    let resp = crate::helpers::upload(
        app,
        &app.kiosks[k],
        app.residents[r],
        &crate::helpers::upload_body(false, &[crate::helpers::embedding(r as u32, 192)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_face_meal_the_kiosk_could_not_have_matched_is_refused() {
    let app = spawn_app().await;
    // Resident 4's face is enrolled at canteen 0 by its kiosk, not shared.
    enrol_face(&app, 4, 0).await;
    let ok = results(
        app.settle(0, vec![face(&app, 4, 0, "2026-03-15T11:00:00", 0.8, 0.9)])
            .await,
    )
    .await;
    assert_eq!(ok[0]["status"], "accepted", "{}", ok[0]);
    // Scores below what any kiosk setting accepts; a face canteen 1 never held; a resident with
    // no face templates at all.
    let bad = results(
        app.settle(
            0,
            vec![
                face(&app, 4, 0, "2026-03-14T11:00:00", 0.01, 0.9),
                face(&app, 4, 0, "2026-03-13T11:00:00", 0.8, 0.01),
                face(&app, 2, 0, "2026-03-15T11:10:00", 0.9, 0.9),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        error_of(&bad[0]),
        ("score_below_floor".into(), "match_score".into())
    );
    assert_eq!(
        error_of(&bad[1]),
        ("score_below_floor".into(), "liveness_score".into())
    );
    assert_eq!(
        error_of(&bad[2]),
        ("face_not_held".into(), "resident_id".into())
    );
    let other = results(
        app.settle(1, vec![face(&app, 4, 1, "2026-03-15T11:20:00", 0.9, 0.9)])
            .await,
    )
    .await;
    assert_eq!(
        error_of(&other[0]),
        ("face_not_held".into(), "resident_id".into())
    );
    assert_eq!(
        app.counts().await.0,
        1,
        "only the real match is on the books"
    );
}

/// A kiosk reports the thresholds it accepts faces at; a face meal it signs below them passes the
/// server's floors and is settled, but its chain is `flagged` with the meal's seq.
#[tokio::test]
async fn a_face_meal_below_the_kiosks_own_reported_threshold_is_flagged_on_its_chain() {
    let app = spawn_app().await;
    enrol_face(&app, 4, 0).await;
    let beat = app
        .post_as(
            &app.kiosks[0],
            "/kiosk/heartbeat",
            &json!({ "outbox_backlog": 0, "software_version": "t", "model_version": "m",
            "match_threshold": 0.62, "liveness_threshold": 0.8 }),
        )
        .await;
    assert_eq!(beat.status(), StatusCode::NO_CONTENT);
    let got = results(
        app.settle(
            0,
            vec![
                face(&app, 4, 0, "2026-03-15T11:00:00", 0.9, 0.95),
                face(&app, 4, 0, "2026-03-14T11:00:00", 0.5, 0.95),
                face(&app, 4, 0, "2026-03-13T11:00:00", 0.9, 0.6),
            ],
        )
        .await,
    )
    .await;
    for r in &got {
        assert_eq!(r["status"], "accepted", "above the server's floors: {r}");
    }
    let chain = chain_line(&app, 0).await;
    assert_eq!(chain["status"], "flagged", "{chain}");
    assert_eq!(
        kinds(&chain),
        vec![
            ("below_threshold".to_owned(), 2, 2),
            ("below_threshold".to_owned(), 3, 3)
        ]
    );
    // the full re-verification lists the same flags and finds nothing broken
    let full = full_check(&app, 0).await;
    assert_eq!(full["status"], "flagged", "{full}");
    // a kiosk that never reported thresholds is held to the floors only
    let other = results(
        app.settle(0, vec![face(&app, 4, 0, "2026-03-12T11:00:00", 0.9, 0.95)])
            .await,
    )
    .await;
    assert_eq!(other[0]["status"], "accepted");
    assert_eq!(kinds(&chain_line(&app, 0).await).len(), 2);
}

#[tokio::test]
async fn a_late_meal_is_counted_and_listed_apart_and_a_backdated_one_is_refused() {
    let app = spawn_app().await;
    // The server's time is 2026-03-15 12:00 in Shanghai.
    let on_time = item(
        v7(),
        app.residents[0],
        app.canteens[0],
        "2026-03-15T11:30:00",
    );
    let late = item(
        v7(),
        app.residents[1],
        app.canteens[0],
        "2026-03-13T11:30:00",
    );
    let backdated = item(
        v7(),
        app.residents[2],
        app.canteens[0],
        "2026-02-10T11:30:00",
    );
    let late_id = late["id"].as_str().expect("id").to_owned();
    let res = results(app.settle(0, vec![on_time, late, backdated]).await).await;
    assert_eq!(res[0]["status"], "accepted");
    assert_eq!(res[1]["status"], "accepted");
    assert_eq!(
        error_of(&res[2]),
        ("served_too_long_ago".into(), "served_at".into())
    );
    let s = app.json("/statements?month=2026-03").await;
    let lines = s["late"].as_array().expect("late");
    assert_eq!(lines.len(), 1, "{}", s["late"]);
    assert_eq!(lines[0]["settlement_id"], late_id);
    assert_eq!(lines[0]["late_hours"], 48);
    assert_eq!(s["total"]["meals"], 2, "late meals are counted");
    let csv = app
        .get("/statements?month=2026-03&format=csv")
        .await
        .text()
        .await
        .expect("csv");
    let row = csv
        .lines()
        .find(|l| l.starts_with("迟报"))
        .expect("a late row in the CSV");
    assert!(row.contains(&late_id) && row.contains("48 小时"), "{row}");
    use calamine::Reader as _;
    let bytes = app
        .get("/statements?month=2026-03&format=xlsx")
        .await
        .bytes()
        .await
        .expect("xlsx")
        .to_vec();
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let sheet = wb.worksheet_range("迟报(已计入)").expect("late sheet");
    let rows: Vec<_> = sheet.rows().collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0].to_string(), late_id);
    assert_eq!(rows[1][7].to_string(), "48");
}
