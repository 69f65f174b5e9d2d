//! In a real headless Chromium: log in as each role, void a meal and watch the tally change,
//! close a month and see the void buttons go; screenshots of the operator and finance pages.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use zhucan_server::config::FixedClock;
use zhucan_testkit::{Browser, Locator};

use crate::helpers::{item, spawn_app, v7};
use crate::{PASSWORD, add_cast};

const WAIT: Duration = zhucan_testkit::WAIT;

/// reqwest and fantoccini link different rustls providers; pick one for the process.
fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn browser_login(b: &Browser, base: &str, name: &str, password: &str) {
    b.client
        .goto(&format!("{base}/login"))
        .await
        .expect("goto login");
    b.client
        .find(Locator::Css("input[name=name]"))
        .await
        .expect("name")
        .send_keys(name)
        .await
        .expect("type");
    b.client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password")
        .send_keys(password)
        .await
        .expect("type");
    b.client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    b.wait_for_text("退出", WAIT).await.expect("logged in");
}

async fn logout(b: &Browser) {
    b.client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .expect("logout")
        .click()
        .await
        .expect("click");
    b.wait_for_text("登录", WAIT).await.expect("login page");
}

async fn count(b: &Browser, css: &str) -> usize {
    b.client
        .find_all(Locator::Css(css))
        .await
        .map_or(0, |v| v.len())
}

async fn text_of(b: &Browser, css: &str) -> String {
    b.client
        .find(Locator::Css(css))
        .await
        .expect("element")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn roles_in_the_browser_void_a_meal_then_close_the_month() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    app.settle_ok(
        0,
        vec![
            item(v7(), r[0], c0, "2026-03-15T11:00:00"),
            item(v7(), r[1], c0, "2026-03-15T11:05:00"),
        ],
    )
    .await;
    app.settle_ok(1, vec![item(v7(), r[2], c1, "2026-03-15T11:00:00")])
        .await;
    let beat = app.post_as(&app.kiosks[0], "/kiosk/heartbeat", &json!({ "outbox_backlog": 3, "software_version": "kiosk-9.9.9", "model_version": "arcface-r100" })).await;
    assert!(beat.status().is_success(), "heartbeat {}", beat.status());
    let base = app.server.url();
    crypto();
    let b = Browser::launch(1366, 768).await.expect("browser");

    // Operator: their canteen's day, no finance or admin links; not the other canteen.
    browser_login(&b, &base, "op0", PASSWORD).await;
    let body = b
        .wait_for_text("就餐记录", WAIT)
        .await
        .expect("operator page");
    assert!(body.contains("今日就餐") && !body.contains("月度结算") && !body.contains("用户"));
    assert_eq!(text_of(&b, "[data-total=meals]").await, "2");
    assert_eq!(count(&b, ".void-button").await, 2);
    let kiosks = text_of(&b, "#kiosks").await;
    assert!(
        kiosks.contains("kiosk-9.9.9") && kiosks.contains("0 分钟前"),
        "{kiosks}"
    );
    b.client
        .goto(&format!("{base}/operator?canteen={c1}"))
        .await
        .expect("goto");
    b.wait_for_text("无权", WAIT).await.expect("403 page");

    // Void one meal with a reason: the tally drops to 1.
    b.client
        .goto(&format!("{base}/operator"))
        .await
        .expect("goto");
    b.wait_for_text("就餐记录", WAIT).await.expect("page");
    b.client
        .find(Locator::Css("form.void input[name=reason]"))
        .await
        .expect("reason")
        .send_keys("老人未取餐")
        .await
        .expect("type");
    b.client
        .find(Locator::Css(".void-button"))
        .await
        .expect("void")
        .click()
        .await
        .expect("click");
    b.client.accept_alert().await.expect("confirm");
    b.wait_for_text("已作废该餐", WAIT).await.expect("voided");
    assert_eq!(text_of(&b, "[data-total=meals]").await, "1");
    assert_eq!(count(&b, ".void-button").await, 1);
    let t = app
        .json(&format!("/canteens/{c0}/tally?date=2026-03-15"))
        .await;
    assert_eq!(t["totals"]["meals"], 1);
    logout(&b).await;

    // Community worker: alerts and residents only.
    browser_login(&b, &base, "cw", PASSWORD).await;
    let body = b.wait_for_text("预警与巡访", WAIT).await.expect("alerts");
    assert!(!body.contains("月度结算") && !body.contains("今日就餐"));
    logout(&b).await;

    // Finance closes March.
    browser_login(&b, &base, "fin", PASSWORD).await;
    let body = b.wait_for_text("按食堂", WAIT).await.expect("finance");
    assert!(!body.contains("今日就餐") && !body.contains("用户"));
    b.client
        .find(Locator::Id("close-month"))
        .await
        .expect("close button")
        .click()
        .await
        .expect("click");
    b.client.accept_alert().await.expect("confirm");
    b.wait_for_text("本月已结账", WAIT).await.expect("closed");
    logout(&b).await;

    // The operator's void buttons are gone for the closed month.
    browser_login(&b, &base, "op0", PASSWORD).await;
    b.wait_for_text("本月已结账：不可作废", WAIT)
        .await
        .expect("closed banner");
    assert_eq!(count(&b, ".void-button").await, 0);
    b.close().await.expect("close");
}

#[tokio::test]
async fn screenshots_of_the_dashboard_pages_with_the_demo_city() {
    let dir = tempfile::tempdir().expect("dir");
    let now = crate::helpers::now();
    let clock = Arc::new(FixedClock::new(now));
    let cfg = crate::helpers::config(dir.path());
    let (key, tz) = (cfg.index_key.0.clone(), cfg.timezone);
    let server = zhucan_server::spawn(cfg, clock).await.expect("spawn");
    let db = server.db.clone();
    let (summary, users) = tokio::task::spawn_blocking(move || {
        let s = zhucan_server::demo::populate(&db, &key, tz, now, 7)?;
        let u = zhucan_server::demo::users(&db, s.kiosk_canteen, now)?;
        Ok::<_, zhucan_server::db::Error>((s, u))
    })
    .await
    .expect("join")
    .expect("demo");
    // This morning at the kiosk's canteen: a few face, card and staff check-ins.
    let client = reqwest::Client::new();
    let c = summary.kiosk_canteen.0;
    let mut items = Vec::new();
    for i in 0..14i64 {
        let (method, score) = match i % 5 {
            0 => ("card", None),
            4 => ("staff", None),
            _ => ("face", Some(0.64 + (i as f64) * 0.02)),
        };
        items.push(json!({
            "id": v7(), "resident_id": 1 + i * 7, "canteen_id": c,
            "served_at": format!("2026-03-15T{:02}:{:02}:00+08:00", 10 + (30 + i * 6) / 60, (30 + i * 6) % 60),
            "method": method, "match_score": score, "liveness_score": score.map(|_| 0.97),
            "staff_reason": (method == "staff").then_some("刷脸失败，工作人员核对身份证")
        }));
    }
    let resp = client
        .post(format!("{}/api/v1/settlements", server.url()))
        .bearer_auth(crate::helpers::ADMIN)
        .json(&json!({ "items": items }))
        .send()
        .await
        .expect("settle");
    assert!(resp.status().is_success());
    let pw = |role: &str| {
        users
            .iter()
            .find(|u| u.1 == role)
            .map(|u| u.2.clone())
            .expect("user")
    };
    let base = server.url();
    crypto();
    let b = Browser::launch(1366, 768).await.expect("browser");
    browser_login(&b, &base, "operator", &pw("operator")).await;
    b.wait_for_text("就餐记录", WAIT)
        .await
        .expect("operator page");
    let shot = b.screenshot("dashboard-operator").await.expect("shot");
    assert!(shot.exists());
    logout(&b).await;
    browser_login(&b, &base, "finance", &pw("finance")).await;
    b.client
        .goto(&format!("{base}/finance?month=2026-03"))
        .await
        .expect("goto");
    b.wait_for_text("按资金来源", WAIT)
        .await
        .expect("finance page");
    b.screenshot("dashboard-finance").await.expect("shot");
    logout(&b).await;
    browser_login(&b, &base, "community", &pw("community")).await;
    b.wait_for_text("定期巡访", WAIT)
        .await
        .expect("alerts page");
    b.screenshot("dashboard-alerts").await.expect("shot");
    logout(&b).await;
    browser_login(&b, &base, "admin", &pw("admin")).await;
    b.client
        .goto(&format!("{base}/admin/kiosks"))
        .await
        .expect("goto");
    b.wait_for_text("发放注册码", WAIT)
        .await
        .expect("kiosk page");
    assert!(count(&b, "#kiosks tbody tr[data-id]").await >= 1);
    b.screenshot("dashboard-kiosks").await.expect("shot");
    b.close().await.expect("close");
    server.stop().await.expect("stop");
}
