//! 终端 (`/admin/kiosks`): the kiosk list with each chain's verdict, issuing a one-time
//! registration code that a device then redeems, revoking with a reason; administrators only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, item, new_key, public_key, sign_item, spawn_app, v7};
use crate::{Session, add_cast, login};
use zhucan_domain::signing::GENESIS;

/// The `<tr>` of kiosk `id` in the kiosk table.
fn kiosk_row(html: &str, id: i64) -> String {
    let table = html
        .split("id=\"kiosks\"")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("the kiosk table");
    table
        .split(&format!("<tr data-id=\"{id}\""))
        .nth(1)
        .and_then(|s| s.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for kiosk {id} in {table}"))
        .to_owned()
}

/// The text of the element with `id` (up to its closing tag).
fn text_of(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id}"))
        + id.len()
        + 6;
    html[start..].split('<').next().expect("text").to_owned()
}

async fn heartbeat(app: &TestApp, token: &str) -> StatusCode {
    app.post_as(
        token,
        "/kiosk/heartbeat",
        &json!({ "outbox_backlog": 7, "software_version": "0.9.1", "model_version": "ms1m-r50" }),
    )
    .await
    .status()
}

#[tokio::test]
async fn the_admin_sees_every_kiosk_with_its_chain_verdict() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    let (k0, k1) = (app.kiosk_ids[0], app.kiosk_ids[1]);
    app.settle_ok(
        0,
        vec![
            item(v7(), r[0], c0, "2026-03-10T11:00:00"),
            item(v7(), r[1], c0, "2026-03-10T11:05:00"),
        ],
    )
    .await;
    // Kiosk 1 signs records 1 to 3, but only record 4 arrives: a gap 1–3.
    for (i, res) in [r[0], r[1], r[2]].into_iter().enumerate() {
        app.chains[1].lock().expect("chain").sign(&item(
            v7(),
            res,
            c1,
            &format!("2026-03-11T11:0{i}:00"),
        ));
    }
    app.settle_ok(1, vec![item(v7(), r[4], c1, "2026-03-11T11:10:00")])
        .await;
    assert_eq!(
        heartbeat(&app, &app.kiosks[0]).await,
        StatusCode::NO_CONTENT
    );

    let admin = login(&app, "admin").await;
    let (st, html) = admin.page("/admin/kiosks").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("href=\"/admin/kiosks\" class=\"active\">终端</a>"));
    let row0 = kiosk_row(&html, k0);
    for want in [
        "k0",
        "宾王社区居家养老照料中心老年食堂",
        // Registered and last seen at the fixed clock, 2026-03-15 04:00 UTC, in Shanghai.
        "2026-03-15 12:00",
        ">7<",
        "0.9.1 / ms1m-r50",
        "在用",
        "✔ 已验证",
        "序号 1–2",
        ">2<",
        "吊销",
    ] {
        assert!(row0.contains(want), "{want} in {row0}");
    }
    let row1 = kiosk_row(&html, k1);
    for want in [
        "塔下洲助餐服务站",
        "从未",
        "✘ 链有缺口或分叉",
        "缺口：第1至3条记录未收到",
        ">1<",
    ] {
        assert!(row1.contains(want), "{want} in {row1}");
    }
    // The same verdict as the full check of the API.
    let full: Value = app.json(&format!("/kiosks/{k1}/chain")).await;
    assert_eq!(
        (full["status"].as_str(), full["meals"].as_i64()),
        (Some("broken"), Some(1))
    );
    // In English.
    let (_, en) = admin.page("/admin/kiosks?lang=en").await;
    let row1 = kiosk_row(&en, k1);
    assert!(
        row1.contains("✘ gaps or forks") && row1.contains("gap："),
        "{row1}"
    );
    assert!(kiosk_row(&en, k0).contains("in use"));
}

/// Issues a code from the page; answers (status, page).
async fn issue(admin: &Session, canteen: i64, name: &str, csrf: &str) -> (StatusCode, String) {
    let c = canteen.to_string();
    let r = admin
        .post_form(
            "/admin/kiosks/codes",
            &[("csrf", csrf), ("canteen_id", &c), ("name", name)],
        )
        .await;
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let status = r.status();
    let html = r.text().await.expect("text");
    if status == StatusCode::OK {
        assert_eq!(cache.as_deref(), Some("no-store"));
    }
    (status, html)
}

#[tokio::test]
async fn a_code_issued_on_the_page_is_shown_once_and_registers_a_kiosk() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let c1 = app.canteens[1];
    let admin = login(&app, "admin").await;
    let (st, html) = issue(&admin, c1, "前台3号机", &admin.csrf).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let code = text_of(&html, "enrol-code");
    assert!(!code.is_empty());
    // Valid 24 h from the fixed clock, shown in Shanghai time.
    assert_eq!(
        text_of(&html, "enrol-expires"),
        "2026-03-16 12:00 (Asia/Shanghai)"
    );
    let command = text_of(&html, "enrol-command");
    assert_eq!(
        command,
        format!(
            "zhucan-kiosk enrol-kiosk --server {} --code {code} --data data/kiosk",
            app.server.url()
        )
    );
    assert!(html.contains("塔下洲助餐服务站"));
    // Issued and audited without the code; the list page never shows it.
    let (_, list) = admin.page("/admin/kiosks").await;
    assert!(!list.contains(&code));
    let (_, audit) = admin.page("/admin/audit").await;
    assert!(audit.contains("kiosk.enrolment_code") && !audit.contains(&code));
    // Bad input names the field; without CSRF nothing is issued.
    let (st, html) = issue(&admin, c1, "  ", &admin.csrf).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(html.contains("name:"), "{html}");
    let (st, html) = issue(&admin, 99_999, "x", &admin.csrf).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(html.contains("canteen_id:"), "{html}");
    let (st, _) = issue(&admin, c1, "x", "wrong").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, audit) = admin.page("/admin/audit").await;
    assert_eq!(audit.matches("kiosk.enrolment_code").count(), 1);

    // A device redeems it with its own key, then settles as a kiosk of that canteen.
    let key = new_key();
    let enrol = || {
        app.client
            .post(app.url("/kiosks/enrol"))
            .json(&json!({ "code": code, "public_key": public_key(&key) }))
            .send()
    };
    let resp = enrol().await.expect("enrol");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let k: Value = resp.json().await.expect("json");
    assert_eq!(
        (k["canteen_id"].as_i64(), k["name"].as_str()),
        (Some(c1), Some("前台3号机"))
    );
    let id = k["id"].as_i64().expect("id");
    let (signed, _) = sign_item(
        &item(v7(), app.residents[0], c1, "2026-03-15T11:00:00"),
        1,
        GENESIS,
        &key,
    );
    let resp = app
        .post_as(
            k["token"].as_str().expect("token"),
            "/settlements",
            &json!({ "items": [signed] }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, list) = admin.page("/admin/kiosks").await;
    let row = kiosk_row(&list, id);
    assert!(
        row.contains("前台3号机") && row.contains("✔ 已验证"),
        "{row}"
    );
    // One use only.
    assert_eq!(
        enrol().await.expect("enrol").status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn revoking_on_the_page_needs_csrf_and_a_reason_and_stops_the_token() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (k0, token) = (app.kiosk_ids[0], app.kiosks[0].clone());
    let path = format!("/admin/kiosks/{k0}/revoke");
    let admin = login(&app, "admin").await;
    assert_eq!(heartbeat(&app, &token).await, StatusCode::NO_CONTENT);

    let no_token = admin.post_form(&path, &[("reason", "丢失")]).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong = admin
        .post_form(&path, &[("csrf", "nope"), ("reason", "丢失")])
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let blank = admin
        .post_form(&path, &[("csrf", &admin.csrf), ("reason", "  ")])
        .await;
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
    assert!(blank.text().await.expect("text").contains("reason:"));
    assert_eq!(
        heartbeat(&app, &token).await,
        StatusCode::NO_CONTENT,
        "still live"
    );
    let missing = admin
        .post_form(
            "/admin/kiosks/99999/revoke",
            &[("csrf", &admin.csrf), ("reason", "x")],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let ok = admin
        .post_form(&path, &[("csrf", &admin.csrf), ("reason", "设备被盗")])
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let to = ok.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(to.starts_with("/admin/kiosks?msg="), "{to}");
    assert_eq!(heartbeat(&app, &token).await, StatusCode::UNAUTHORIZED);
    let resp = app.get_as(&token, "/kiosk/sync?since=0").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let (_, html) = admin.page(&to).await;
    assert!(html.contains("已吊销终端 k0"), "the notice");
    let row = kiosk_row(&html, k0);
    assert!(row.contains("已吊销 2026-03-15 12:00"), "{row}");
    assert!(
        !row.contains("revoke-button"),
        "no button for a revoked kiosk: {row}"
    );
    assert!(kiosk_row(&html, app.kiosk_ids[1]).contains("revoke-button"));
    // Audited once, by the administrator, with the reason.
    let audit: Value = app.json("/audit?limit=20").await;
    let revokes: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "kiosk.revoke")
        .collect();
    assert_eq!(revokes.len(), 1, "{audit}");
    assert_eq!(revokes[0]["actor"], "admin");
    assert_eq!(revokes[0]["target"], format!("kiosk:{k0}"));
    assert_eq!(revokes[0]["detail"]["reason"], "设备被盗");
    let (_, page) = admin.page("/admin/audit").await;
    assert!(page.contains("kiosk.revoke") && page.contains("设备被盗"));
}

#[tokio::test]
async fn only_administrators_reach_the_kiosk_page() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let k0 = app.kiosk_ids[0];
    for (who, home) in [("op0", "/operator"), ("fin", "/finance"), ("cw", "/alerts")] {
        let s = login(&app, who).await;
        let (st, html) = s.page("/admin/kiosks").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{who} GET");
        assert!(!html.contains("id=\"kiosks\""));
        let c = app.canteens[0].to_string();
        let r = s
            .post_form(
                "/admin/kiosks/codes",
                &[("csrf", &s.csrf), ("canteen_id", &c), ("name", "x")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who} code");
        let r = s
            .post_form(
                &format!("/admin/kiosks/{k0}/revoke"),
                &[("csrf", &s.csrf), ("reason", "x")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who} revoke");
        let (st, html) = s.page(home).await;
        assert_eq!(st, StatusCode::OK, "{who} {home}");
        assert!(!html.contains("/admin/kiosks"), "{who} has no nav link");
    }
    assert_eq!(
        heartbeat(&app, &app.kiosks[0]).await,
        StatusCode::NO_CONTENT
    );
    let (_, audit) = login(&app, "admin").await.page("/admin/audit").await;
    assert!(!audit.contains("kiosk.revoke") && !audit.contains("kiosk.enrolment_code"));
}
