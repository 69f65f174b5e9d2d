//! Duplicate enrolment (issue 12) over real HTTP: a face that matches another resident's stored
//! one is refused naming that resident unless staff confirm it with a reason (then the pair is
//! recorded and audited); the administrator's scan finds pairs enrolled before the check and
//! leaves confirmed pairs as staff confirmed them. Roles of the dashboard sessions are in
//! `tests/dashboard/lookalikes.rs`.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use zhucan_domain::ResidentId;
use zhucan_server::crypto::template_key;
use zhucan_server::db::templates::NewSet;
use zhucan_server::{db, templates};

use crate::helpers::{TestApp, embedding, spawn_app, spawn_app_with, upload, upload_body};

const DIM: usize = 192;

/// `base` seen again: a little noise added, unit length again (cosine to `base` about 0.95).
fn same_face(base: &[f32], seed: u32) -> Vec<f32> {
    let noise = embedding(seed, base.len());
    let v: Vec<f32> = base.iter().zip(&noise).map(|(b, n)| b + 0.3 * n).collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// An upload body carrying staff's confirmation.
fn confirmed(embeddings: &[Vec<f32>], other: i64, reason: &str) -> Value {
    let mut b = upload_body(false, embeddings);
    b["duplicate_confirmed"] = json!({ "other_resident_id": other, "reason": reason });
    b
}

async fn error_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON error body");
    (status, body["error"].clone())
}

async fn count(app: &TestApp, r: i64) -> i64 {
    app.server
        .db
        .read(move |c| db::templates::count(c, ResidentId(r)))
        .await
        .expect("count")
}

async fn audited(app: &TestApp, action: &'static str) -> Vec<Value> {
    app.server
        .db
        .read(move |c| db::audit::of_action(c, action))
        .await
        .expect("audit")
        .into_iter()
        .map(|r| {
            json!({ "actor": r.actor, "target": r.target,
                    "detail": serde_json::from_str::<Value>(&r.detail).expect("json") })
        })
        .collect()
}

/// Stores templates straight in the database, as enrolments from before this check did.
async fn insert_templates(app: &TestApp, r: i64, embeddings: Vec<Vec<f32>>) {
    let canteen = zhucan_domain::CanteenId(app.canteens[0]);
    app.server
        .db
        .write(move |tx| {
            let key = template_key(&[42; 32]);
            let sealed =
                templates::seal_all(&key, ResidentId(r), &embeddings).map_err(db::Error::other)?;
            db::templates::replace(
                tx,
                &NewSet {
                    resident_id: ResidentId(r),
                    enrolled_canteen: canteen,
                    model: "w600k_mbf.onnx",
                    dim: DIM,
                    sealed: &sealed,
                    kiosk_id: None,
                },
                "2025-01-01T00:00:00.000Z",
            )
        })
        .await
        .expect("insert templates");
}

#[test]
fn the_test_faces_are_what_they_claim() {
    let a = embedding(700, DIM);
    assert!(cosine(&a, &same_face(&a, 1)) > 0.9);
    assert!(cosine(&a, &embedding(701, DIM)).abs() < 0.3);
}

#[tokio::test]
async fn a_second_resident_with_the_first_ones_face_is_refused_naming_the_first() {
    let app = spawn_app().await;
    let (r0, r1) = (app.residents[0], app.residents[1]);
    let face = embedding(700, DIM);
    let resp = upload(
        &app,
        &app.kiosks[0],
        r0,
        &upload_body(false, std::slice::from_ref(&face)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // the same person again, as resident 1, among another face
    let body = upload_body(false, &[embedding(702, DIM), same_face(&face, 1)]);
    let (st, err) = error_of(upload(&app, &app.kiosks[0], r1, &body).await).await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "duplicate_face");
    assert_eq!(err["field"], "embeddings");
    assert_eq!(
        err["duplicate_of"],
        json!({ "resident_id": r0, "name": "测试老人0" })
    );
    let msg = err["message"].as_str().expect("message");
    assert!(
        msg.contains(&format!("居民 {r0}（测试老人0）")) && msg.contains(&format!("resident {r0}")),
        "{msg}"
    );
    // nothing stored: no templates, no consent change, no audit entry
    assert_eq!(count(&app, r1).await, 0);
    let r = app.json(&format!("/residents/{r1}")).await;
    assert_eq!(r["face_enrolled"], false);
    assert_eq!(r["consent"]["face_enrolment"], false);
    assert_eq!(audited(&app, "templates.upload").await.len(), 1);

    // the administrator is held to it too
    let (st, err) = error_of(
        app.put_as(
            crate::helpers::ADMIN,
            &format!("/residents/{r1}/templates?canteen={}", app.canteens[0]),
            &body,
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_face"))
    );

    // a different face is enrolled
    let resp = upload(
        &app,
        &app.kiosks[0],
        r1,
        &upload_body(false, &[embedding(703, DIM)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(count(&app, r1).await, 1);
    // and the first resident re-enrolling their own face is no duplicate of themselves
    let resp = upload(
        &app,
        &app.kiosks[0],
        r0,
        &upload_body(false, &[same_face(&face, 2)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_duplicate_threshold_is_the_configured_one() {
    let app = spawn_app_with(|c| c.security.duplicate_face_threshold = 0.99).await;
    let (r0, r1) = (app.residents[0], app.residents[1]);
    let face = embedding(710, DIM);
    let resp = upload(
        &app,
        &app.kiosks[0],
        r0,
        &upload_body(false, std::slice::from_ref(&face)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // about 0.95: below 0.99
    let resp = upload(
        &app,
        &app.kiosks[0],
        r1,
        &upload_body(false, &[same_face(&face, 1)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // the very same embedding: 1.0
    let (st, err) = error_of(
        upload(
            &app,
            &app.kiosks[0],
            app.residents[2],
            &upload_body(false, &[face]),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_face"))
    );
}

#[tokio::test]
async fn a_confirmed_duplicate_is_stored_listed_and_audited() {
    let app = spawn_app().await;
    let (r0, r1) = (app.residents[0], app.residents[1]);
    let face = embedding(720, DIM);
    let resp = upload(
        &app,
        &app.kiosks[0],
        r0,
        &upload_body(false, std::slice::from_ref(&face)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let twin = [same_face(&face, 3), same_face(&face, 4)];

    // the reason is required, and at most 200 characters
    for reason in ["  ", &"长".repeat(201)] {
        let (st, err) =
            error_of(upload(&app, &app.kiosks[0], r1, &confirmed(&twin, r0, reason)).await).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["field"], "duplicate_confirmed.reason");
    }
    // the confirmation names the other resident, not this one
    let (st, err) =
        error_of(upload(&app, &app.kiosks[0], r1, &confirmed(&twin, r1, "双胞胎")).await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "duplicate_confirmed.other_resident_id");
    assert_eq!(count(&app, r1).await, 0);

    let reason = "双胞胎姐妹，核对了户口本 / twin sisters, household register checked";
    let resp = upload(&app, &app.kiosks[0], r1, &confirmed(&twin, r0, reason)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(count(&app, r1).await, 2);

    let pairs = app.json("/lookalikes").await;
    let pairs = pairs.as_array().expect("a list");
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let p = &pairs[0];
    assert_eq!(
        (
            &p["resident_a"],
            &p["name_a"],
            &p["resident_b"],
            &p["name_b"]
        ),
        (
            &json!(r0.min(r1)),
            &json!(if r0 < r1 {
                "测试老人0"
            } else {
                "测试老人1"
            }),
            &json!(r0.max(r1)),
            &json!(if r0 < r1 {
                "测试老人1"
            } else {
                "测试老人0"
            })
        )
    );
    assert_eq!(p["state"], "confirmed");
    assert_eq!(p["reason"], reason);
    let by = p["by"].as_str().expect("by");
    assert!(
        by.contains("王芳") && by.contains(&format!("kiosk {}", app.kiosk_ids[0])),
        "{by}"
    );
    let score = p["score"].as_f64().expect("score");
    assert!(score > 0.9 && score <= 1.0, "{score}");
    assert_eq!(p["at"], "2026-03-15T04:00:00.000Z");

    let a = audited(&app, "templates.duplicate_confirmed").await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["actor"], format!("kiosk:{}", app.kiosk_ids[0]));
    assert_eq!(a[0]["target"], format!("resident:{r1}"));
    assert_eq!(a[0]["detail"]["other_resident_id"], r0);
    assert_eq!(a[0]["detail"]["reason"], reason);
    // the audit log still verifies
    let page = app.json("/audit").await;
    assert_eq!(page["verified"], true, "{page}");
}

#[tokio::test]
async fn a_confirmation_naming_the_wrong_resident_is_refused() {
    let app = spawn_app().await;
    let (r0, r1, r2) = (app.residents[0], app.residents[1], app.residents[2]);
    let face = embedding(730, DIM);
    let resp = upload(
        &app,
        &app.kiosks[0],
        r0,
        &upload_body(false, std::slice::from_ref(&face)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let body = confirmed(
        &[same_face(&face, 5)],
        r2,
        "不是同一人 / not the same person",
    );
    let (st, err) = error_of(upload(&app, &app.kiosks[0], r1, &body).await).await;
    assert_eq!(st, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "duplicate_face");
    assert_eq!(err["duplicate_of"]["resident_id"], r0);
    let msg = err["message"].as_str().expect("message");
    assert!(
        msg.contains(&format!("the confirmation names resident {r2}")),
        "{msg}"
    );
    assert_eq!(count(&app, r1).await, 0);
    assert_eq!(app.json("/lookalikes").await, json!([]));
    assert!(
        audited(&app, "templates.duplicate_confirmed")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_scan_finds_an_existing_pair_and_leaves_confirmed_pairs_alone() {
    let app = spawn_app().await;
    let r = app.residents.clone();
    // resident 0 and 2: one person enrolled twice before the check existed
    let face = embedding(740, DIM);
    insert_templates(&app, r[0], vec![face.clone(), embedding(741, DIM)]).await;
    insert_templates(&app, r[2], vec![same_face(&face, 6)]).await;
    // resident 1 and 3: twins, confirmed by staff at enrolment
    let twin = embedding(750, DIM);
    let resp = upload(
        &app,
        &app.kiosks[0],
        r[1],
        &upload_body(false, std::slice::from_ref(&twin)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = upload(
        &app,
        &app.kiosks[0],
        r[3],
        &confirmed(&[same_face(&twin, 7)], r[1], "双胞胎兄弟 / twin brothers"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // resident 4: nobody else's face
    insert_templates(&app, r[4], vec![embedding(760, DIM)]).await;

    for round in 0..2 {
        let resp = app.post("/lookalikes/scan", &json!(null)).await;
        assert_eq!(resp.status(), StatusCode::OK, "round {round}");
        let found: Value = resp.json().await.expect("json");
        let found = found.as_array().expect("a list");
        let pair = |a: i64, b: i64| {
            found
                .iter()
                .find(|p| p["resident_a"] == a.min(b) && p["resident_b"] == a.max(b))
                .cloned()
        };
        assert_eq!(found.len(), 2, "round {round}: {found:?}");
        let dup = pair(r[0], r[2]).expect("residents 0 and 2 found");
        assert_eq!(dup["state"], "found");
        assert_eq!((&dup["reason"], &dup["by"]), (&Value::Null, &Value::Null));
        let twins = pair(r[1], r[3]).expect("the twins found");
        assert_eq!(
            twins["state"], "confirmed",
            "a scan overwrote a confirmed pair"
        );
        assert_eq!(twins["reason"], "双胞胎兄弟 / twin brothers");
    }
    let listed = app.json("/lookalikes").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["state"], "confirmed");
    let scans = audited(&app, "lookalikes.scan").await;
    assert_eq!(scans.len(), 2);
    assert_eq!(scans[0]["detail"]["templates"], 6);
    assert_eq!(scans[0]["detail"]["pairs"], 2);
    assert_eq!(scans[0]["detail"]["recorded_found"], 1);
    // Both pairs are red flags of every month: the one the scan found is high, the twins that
    // staff confirmed low; resident 4, like nobody, is in none.
    let flags = app.json("/flags?month=2026-03").await;
    let alike: Vec<&Value> = flags
        .as_array()
        .expect("flags")
        .iter()
        .filter(|f| f["kind"] == "lookalike")
        .collect();
    assert_eq!(alike.len(), 2, "{flags:#}");
    let key = |a: i64, b: i64| format!("lookalike:{}:{}", a.min(b), a.max(b));
    let of = |k: String| alike.iter().find(|f| f["key"] == k.as_str()).cloned();
    assert_eq!(of(key(r[0], r[2])).expect("found pair")["severity"], "high");
    assert_eq!(of(key(r[1], r[3])).expect("twins")["severity"], "low");
    assert!(!flags.to_string().contains(&format!("lookalike:{}:", r[4])));
}

#[tokio::test]
async fn kiosks_may_not_read_or_scan_lookalikes() {
    let app = spawn_app().await;
    for (method, path) in [("GET", "/lookalikes"), ("POST", "/lookalikes/scan")] {
        let resp = app.request_as(&app.kiosks[0], method, path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let resp = app
            .client
            .request(method.parse().expect("method"), app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // the wire form of the upload still refuses unknown fields
    let mut body = upload_body(false, &[embedding(770, DIM)]);
    body["duplicate_confirmed"] = json!({ "other_resident_id": 1, "reason": "x", "extra": 1 });
    let (st, _) = error_of(upload(&app, &app.kiosks[0], app.residents[0], &body).await).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}
