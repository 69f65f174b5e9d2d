//! Templates that age with the elder (issue 16): the operator page and its API twin suggest
//! re-enrolment for a resident whose face scores fell since enrolment or came close to the
//! kiosk's threshold, and for nobody else; only the canteen's operators and administrators see
//! it. Meals go through the kiosk's signed ingest, templates through the kiosk's upload, on the
//! test clock.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use zhucan_server::db::users::Role;

use crate::helpers::{TestApp, date, embedding, item, now, spawn_app, upload, upload_body, v7};
use crate::{add_cast, add_user, login};

fn local(at: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{at}+08:00"))
        .expect("a local time")
        .with_timezone(&Utc)
}

async fn enrol(app: &TestApp, resident: i64, seed: u32) {
    let resp = upload(
        app,
        &app.kiosks[0],
        resident,
        &upload_body(false, &[embedding(seed, 192)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "enrol {resident}");
}

/// A score that falls by 0.005 a meal, from 0.85.
fn declining(k: i64) -> f64 {
    0.85 - 0.005 * k as f64
}

/// Every resident's face enrolled at canteen 0's kiosk on 2026-01-10 10:00, then a lunch every
/// other day from 12 January to 13 March (meal k on 12 January + 2k days; "now" is 15 March, so
/// meals 0..=12 fall in the first 28 days after enrolment and 18..=30 in the last 28 days):
/// - 0 declines (0.85 → 0.70): baseline median 0.82 (meal 6), recent 0.73 (meal 24);
/// - 1 is stable (0.81 and 0.79 in turn);
/// - 2 fell hard but ate only 7 times in the recent weeks: too few to judge;
/// - 3 is steady at 0.66, 0.02 above the kiosk's threshold of 0.64;
/// - 4 declined as 0 did, then enrolled again on 3 March (meal 25): 6 meals since, no baseline.
async fn seed(app: &TestApp) {
    let r = app.residents.clone();
    app.clock.set(local("2026-01-10T10:00:00"));
    for (i, &res) in r.iter().enumerate() {
        enrol(app, res, 100 + i as u32).await;
    }
    for k in 0..=30i64 {
        let day = (date(2026, 1, 12) + Duration::days(2 * k)).to_string();
        if k == 25 {
            app.clock.set(local(&format!("{day}T09:00:00")));
            enrol(app, r[4], 200).await;
        }
        let face = |resident: i64, score: f64| {
            let mut it = item(v7(), resident, app.canteens[0], &format!("{day}T11:30:00"));
            it["method"] = json!("face");
            it["match_score"] = json!(score);
            it["liveness_score"] = json!(0.97);
            it
        };
        let mut items = vec![
            face(r[0], declining(k)),
            face(r[1], if k % 2 == 0 { 0.81 } else { 0.79 }),
            face(r[3], 0.66),
            face(r[4], if k < 25 { declining(k) } else { 0.80 }),
        ];
        if k <= 12 || k >= 24 {
            items.push(face(r[2], if k <= 12 { 0.85 } else { 0.60 }));
        }
        let n = items.len();
        let results = app.settle_on_the_day(0, &day, items).await;
        assert_eq!(results.len(), n);
        for res in &results {
            assert_eq!(res["status"], "accepted", "{day}: {res}");
        }
    }
    app.clock.set(now());
    let resp = app
        .post_as(
            &app.kiosks[0],
            "/kiosk/heartbeat",
            &json!({ "outbox_backlog": 0, "software_version": "0.1.0",
                "model_version": "w600k_mbf.onnx", "match_threshold": 0.64,
                "liveness_threshold": 0.8 }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

/// The re-enrolment table of the operator page.
fn table(html: &str) -> &str {
    let start = html
        .find("<table id=\"re-enrol\">")
        .expect("the re-enrolment table");
    let end = html[start..].find("</table>").expect("its end") + start;
    &html[start..end]
}

/// The table's row of resident `id`, if listed.
fn row(table: &str, id: i64) -> Option<&str> {
    let start = table.find(&format!("data-resident=\"{id}\""))?;
    let end = table[start..].find("</tr>")? + start;
    Some(&table[start..end])
}

#[tokio::test]
async fn only_the_resident_whose_scores_fell_or_near_the_threshold_is_prompted_to_enrol_again() {
    let app = spawn_app().await;
    add_cast(&app).await;
    seed(&app).await;
    let (c0, r) = (app.canteens[0], app.residents.clone());

    // the API twin, as the canteen's operator
    let op = login(&app, "op0").await;
    let resp = op.get(&format!("/api/v1/canteens/{c0}/re-enrolment")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["canteen_id"], c0);
    assert_eq!(body["as_of"], "2026-03-15");
    assert_eq!(body["recent_from"], "2026-02-16");
    let listed = body["residents"].as_array().expect("residents");
    let ids: Vec<i64> = listed
        .iter()
        .map(|s| s["resident_id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![r[0], r[3]], "{body:#}");

    let fell = &listed[0];
    assert_eq!(fell["name"], "测***0", "masked: {fell}");
    assert!(close(&fell["baseline"], 0.82), "{fell}");
    assert!(close(&fell["recent"], 0.73), "{fell}");
    assert!(close(&fell["drop"], 0.09), "{fell}");
    assert_eq!(fell["baseline_meals"], 13);
    assert_eq!(fell["recent_meals"], 13);
    assert!(close(&fell["threshold"], 0.64), "{fell}");
    assert_eq!(fell["reasons"], json!(["score_drop"]));
    assert_eq!(fell["reason_zh"], "近四周识别分数下降");
    assert_eq!(fell["enrolled_at"], "2026-01-10T02:00:00.000Z");

    let near = &listed[1];
    assert!(close(&near["baseline"], 0.66), "{near}");
    assert!(close(&near["recent"], 0.66), "{near}");
    assert!(close(&near["drop"], 0.0), "{near}");
    assert_eq!(near["reasons"], json!(["near_threshold"]));
    assert_eq!(near["reason_zh"], "接近识别阈值");

    // the operator page shows the same, in Chinese first
    let (status, html) = op.page(&format!("/operator?canteen={c0}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("建议重新采集人脸"), "the section");
    let t = table(&html);
    let fell = row(t, r[0]).expect("resident 0 is listed");
    for want in [
        "测***0",
        "2026-01-10",
        "0.82",
        "0.73",
        "0.09",
        "0.64",
        "13 / 13",
        "近四周识别分数下降",
    ] {
        assert!(fell.contains(want), "{want} in {fell}");
    }
    assert!(!t.contains("测试老人"), "names are masked: {t}");
    let near = row(t, r[3]).expect("resident 3 is listed");
    assert!(near.contains("接近识别阈值"), "{near}");
    for quiet in [r[1], r[2], r[4]] {
        assert!(
            row(t, quiet).is_none(),
            "resident {quiet} is not prompted: {t}"
        );
    }
    let (_, html) = op.page(&format!("/operator?canteen={c0}&lang=en")).await;
    assert!(html.contains("Re-enrolment suggested"));
    let fell = row(table(&html), r[0]).expect("resident 0 is listed");
    assert!(fell.contains("match scores fell"), "{fell}");

    // nothing was changed: every resident still has their templates (4: the new ones)
    for &res in &r {
        let n = app
            .server
            .db
            .read(move |c| zhucan_server::db::templates::count(c, zhucan_domain::ResidentId(res)))
            .await
            .expect("count");
        assert_eq!(n, 1, "resident {res}");
    }

    // enrolling resident 0 again starts a new baseline: the prompt goes away
    enrol(&app, r[0], 300).await;
    let body: Value = op
        .get(&format!("/api/v1/canteens/{c0}/re-enrolment"))
        .await
        .json()
        .await
        .expect("json");
    let ids: Vec<i64> = body["residents"]
        .as_array()
        .expect("residents")
        .iter()
        .map(|s| s["resident_id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![r[3]], "{body:#}");
}

#[tokio::test]
async fn another_canteens_operator_finance_and_the_kiosk_do_not_see_the_prompt() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1) = (app.canteens[0], app.canteens[1]);
    add_user(&app, "op1", Role::Operator, &[c1], None).await;
    seed(&app).await;
    // a session's path, and the same under the API's base (`TestApp::get_as` adds `/api/v1`)
    let api = |c: i64| format!("/api/v1/canteens/{c}/re-enrolment");
    let bare = |c: i64| format!("/canteens/{c}/re-enrolment");

    let op1 = login(&app, "op1").await;
    assert_eq!(op1.get(&api(c0)).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        op1.page(&format!("/operator?canteen={c0}")).await.0,
        StatusCode::FORBIDDEN
    );
    // their own canteen: nobody there to prompt
    let body: Value = op1.get(&api(c1)).await.json().await.expect("json");
    assert_eq!(body["residents"], json!([]), "{body:#}");
    let (_, html) = op1.page(&format!("/operator?canteen={c1}")).await;
    let t = table(&html);
    assert!(t.contains("暂无需要重新采集人脸的老人"), "{t}");
    assert!(!t.contains(&format!("data-resident=\"{}\"", app.residents[0])));

    // roles that do not see the canteen's residents on the operator page
    for name in ["fin", "cw"] {
        let s = login(&app, name).await;
        assert_eq!(
            s.get(&api(c0)).await.status(),
            StatusCode::FORBIDDEN,
            "{name}"
        );
    }
    assert_eq!(
        app.get_as(&app.kiosks[0], &bare(c0)).await.status(),
        StatusCode::FORBIDDEN
    );
    // the administrator sees it; an unknown canteen is 404
    let body = app.json(&bare(c0)).await;
    assert_eq!(
        body["residents"].as_array().map(Vec::len),
        Some(2),
        "{body:#}"
    );
    assert_eq!(
        app.get(&bare(c1)).await.status(),
        StatusCode::OK,
        "the route, with the token"
    );
    assert_eq!(app.get(&bare(9999)).await.status(), StatusCode::NOT_FOUND);
}
