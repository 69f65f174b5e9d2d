//! Roles and scope, lock-out, CSRF, exports and alerts over plain HTTP.

use std::io::Cursor;

use calamine::{Data, DataType, Reader, Xlsx, open_workbook_from_rs};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{item, spawn_app, v7};
use crate::{add_cast, login, post_login};

#[tokio::test]
async fn each_role_sees_its_pages_and_only_its_canteens() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (a, b) = (app.canteens[0], app.canteens[1]);
    let tally = |c: i64| format!("/api/v1/canteens/{c}/tally?date=2026-03-15");

    // Not logged in: pages go to the login page, the API says 401.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = anon
        .get(format!("{}/operator", app.server.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");

    let op = login(&app, "op0").await;
    assert_eq!(
        op.page(&format!("/operator?canteen={a}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        op.page(&format!("/operator?canteen={b}")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(op.get(&tally(a)).await.status(), StatusCode::OK);
    assert_eq!(op.get(&tally(b)).await.status(), StatusCode::FORBIDDEN);
    for p in [
        "/finance",
        "/alerts",
        "/residents",
        "/admin/users",
        "/admin/push",
    ] {
        assert_eq!(op.page(p).await.0, StatusCode::FORBIDDEN, "operator {p}");
    }
    assert_eq!(
        op.get("/api/v1/statements?month=2026-03").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        op.get(&format!("/api/v1/statements?month=2026-03&canteen={b}"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // Statements are finance's: not even an operator's own canteen (the tally is theirs).
    assert_eq!(
        op.get(&format!("/api/v1/statements?month=2026-03&canteen={a}"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let (_, html) = op.page("/operator").await;
    assert!(html.contains("今日就餐") && !html.contains("月度结算"));

    let fin = login(&app, "fin").await;
    assert_eq!(fin.page("/finance").await.0, StatusCode::OK);
    assert_eq!(fin.page("/alerts").await.0, StatusCode::OK);
    assert_eq!(fin.page("/operator").await.0, StatusCode::FORBIDDEN);
    assert_eq!(fin.page("/admin/users").await.0, StatusCode::FORBIDDEN);
    assert_eq!(fin.get(&tally(b)).await.status(), StatusCode::OK);

    let cw = login(&app, "cw").await;
    assert_eq!(cw.page("/alerts").await.0, StatusCode::OK);
    assert_eq!(cw.page("/residents").await.0, StatusCode::OK);
    assert_eq!(cw.page("/finance").await.0, StatusCode::FORBIDDEN);
    assert_eq!(cw.page("/operator").await.0, StatusCode::FORBIDDEN);
    assert_eq!(cw.get(&tally(a)).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        cw.get("/api/v1/statements?month=2026-03").await.status(),
        StatusCode::FORBIDDEN
    );

    let admin = login(&app, "admin").await;
    for p in [
        "/operator",
        "/finance",
        "/alerts",
        "/residents",
        "/admin/users",
        "/admin/push",
    ] {
        assert_eq!(admin.page(p).await.0, StatusCode::OK, "admin {p}");
    }
    // The machines' admin token still works.
    assert_eq!(
        app.get(&format!("/canteens/{b}/tally?date=2026-03-15"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_are_counted_before_the_password_is_checked() {
    let app = crate::helpers::spawn_app_with(|c| c.security.login_per_minute = 1_000).await;
    add_cast(&app).await;
    // 40 wrong passwords at once: each reads the counter before any writes it, unless the
    // attempt is counted atomically before argon2 runs
    let url = format!("{}/login", app.server.url());
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = url.clone();
        guesses.spawn(async move {
            let body = crate::form_body(&[("name", "fin"), ("password", &format!("guess-{i}"))]);
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("login")
                .status()
        });
    }
    let answers = guesses.join_all().await;
    assert!(answers.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    // the audit log tells checked guesses (login.failure) from refused ones (login.locked)
    let of = |action: &'static str| {
        let db = app.server.db.clone();
        async move {
            db.read(move |c| zhucan_server::db::audit::of_action(c, action))
                .await
                .expect("audit")
                .len()
        }
    };
    let (checked, refused) = (of("login.failure").await, of("login.locked").await);
    assert_eq!(
        (checked, refused),
        (5, 35),
        "only 5 passwords may be checked before the lock"
    );
    // locked: even the right password is refused
    let r = post_login(&app, "fin", crate::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(of("login.success").await, 0);
}

#[tokio::test]
async fn a_locked_account_answers_like_an_unknown_user_name() {
    let app = spawn_app().await;
    let known = "zhang-known-user";
    crate::add_user(
        &app,
        known,
        zhucan_server::db::users::Role::Finance,
        &[],
        None,
    )
    .await;
    for _ in 0..5 {
        post_login(&app, known, "wrong").await;
    }
    let answer = |name: &'static str| {
        let app = &app;
        async move {
            let r = post_login(app, name, "wrong").await;
            let status = r.status();
            let body = r.text().await.expect("body");
            (status, body.replace(name, "NAME"))
        }
    };
    let (locked, unknown) = (answer(known).await, answer("wang-no-such-user").await);
    assert_eq!(locked.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        locked, unknown,
        "the login page tells a locked account from an unknown name"
    );
}

#[tokio::test]
async fn five_failed_logins_lock_the_account_for_fifteen_minutes() {
    let app = spawn_app().await;
    add_cast(&app).await;
    for _ in 0..4 {
        assert_eq!(
            post_login(&app, "fin", "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let fifth = post_login(&app, "fin", "wrong").await;
    assert_eq!(fifth.status(), StatusCode::UNAUTHORIZED);
    // Locked: even the right password is refused, with the answer a wrong password gets.
    let r = post_login(&app, "fin", crate::PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap_or_default().contains("锁定"));
    app.clock
        .set(crate::helpers::now() + chrono::Duration::minutes(14));
    assert_eq!(
        post_login(&app, "fin", crate::PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.clock
        .set(crate::helpers::now() + chrono::Duration::minutes(16));
    assert_eq!(
        post_login(&app, "fin", crate::PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, r) = (app.canteens[0], &app.residents);
    let id = v7();
    app.settle_ok(0, vec![item(id, r[0], c0, "2026-03-15T11:00:00")])
        .await;
    let op = login(&app, "op0").await;
    let ids = id.to_string();
    let no_token = op
        .post_form("/operator/void", &[("id", &ids), ("reason", "test")])
        .await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong = op
        .post_form(
            "/operator/void",
            &[("csrf", "nope"), ("id", &ids), ("reason", "test")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // The JSON API with the cookie needs the X-CSRF-Token header on a POST.
    let api = |token: Option<&str>| {
        let mut rq = op
            .client
            .post(format!("{}/api/v1/settlements/{id}/void", op.base))
            .header("cookie", &op.cookie)
            .json(&json!({ "reason": "test" }));
        if let Some(t) = token {
            rq = rq.header("x-csrf-token", t);
        }
        rq.send()
    };
    assert_eq!(
        api(None).await.expect("post").status(),
        StatusCode::FORBIDDEN
    );
    let tally: Value = op
        .get(&format!("/api/v1/canteens/{c0}/tally?date=2026-03-15"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tally["totals"]["meals"], 1, "nothing was voided");
    // With the token it works.
    let ok = op
        .post_form(
            "/operator/void",
            &[("csrf", &op.csrf), ("id", &ids), ("reason", "录错了")],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let tally: Value = op
        .get(&format!("/api/v1/canteens/{c0}/tally?date=2026-03-15"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tally["totals"]["meals"], 0);
    // Log out needs the token too, then the session is gone.
    assert_eq!(
        op.post_form("/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        op.post_form("/logout", &[("csrf", &op.csrf)])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(op.page("/operator").await.0, StatusCode::SEE_OTHER);
}

fn fen_of_page(html: &str, id: &str) -> i64 {
    let start = html.find(&format!("id=\"{id}\">")).expect("element") + id.len() + 6;
    let text = &html[start..];
    let text = &text[..text.find('<').expect("end")];
    zhucan_domain::Fen::parse_yuan(&text.trim_start_matches('¥').replace(',', ""))
        .map(|f| f.0)
        .expect("yuan")
}

#[tokio::test]
async fn exports_equal_the_page_and_the_api_to_the_fen() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    app.settle_ok(
        0,
        vec![
            item(v7(), r[0], c0, "2026-03-10T11:00:00"),
            item(v7(), r[1], c0, "2026-03-10T11:05:00"),
            item(v7(), r[2], c0, "2026-03-10T17:00:00"),
            item(v7(), r[3], c0, "2026-03-11T11:10:00"),
        ],
    )
    .await;
    app.settle_ok(1, vec![item(v7(), r[4], c1, "2026-03-11T11:00:00")])
        .await;
    let fin = login(&app, "fin").await;
    let api: Value = fin
        .get("/api/v1/statements?month=2026-03")
        .await
        .json()
        .await
        .expect("json");
    let subsidy = api["total"]["subsidy"].as_i64().expect("subsidy");
    assert!(subsidy > 0);
    let (st, html) = fin.page("/finance?month=2026-03").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(fen_of_page(&html, "total-subsidy"), subsidy);
    assert!(html.contains("<svg"), "the chart");

    let csv = fin.get("/api/v1/statements?month=2026-03&format=csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    let bytes = csv.bytes().await.expect("body");
    let mut rdr = csv::Reader::from_reader(&bytes[3..]);
    let grand = rdr
        .records()
        .map(|r| r.expect("row"))
        .find(|r| &r[0] == "总计")
        .expect("grand total");
    assert_eq!(
        zhucan_domain::Fen::parse_yuan(&grand[8]).map(|f| f.0).ok(),
        Some(subsidy)
    );

    let xlsx = fin
        .get("/api/v1/statements?month=2026-03&format=xlsx")
        .await;
    assert_eq!(xlsx.status(), StatusCode::OK);
    let mut wb: Xlsx<_> =
        open_workbook_from_rs(Cursor::new(xlsx.bytes().await.expect("body").to_vec()))
            .expect("xlsx");
    let sheet = wb.worksheet_range("按食堂").expect("sheet");
    let totals: Vec<&[Data]> = sheet.rows().collect();
    let last = totals.last().expect("totals");
    let x = (last[6].get_float().unwrap_or(f64::NAN) * 100.0).round() as i64;
    assert_eq!(x, subsidy);
    // The canteen drill-down adds up to the same money.
    let (_, html) = fin
        .page(&format!("/finance/canteens/{c0}?month=2026-03"))
        .await;
    assert!(html.contains("测试老人0"));
}

#[tokio::test]
async fn alerts_show_a_meal_after_death_and_two_canteens_within_two_hours() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    app.settle_ok(0, vec![item(v7(), r[2], c0, "2026-03-14T11:00:00")])
        .await;
    app.settle_ok(0, vec![item(v7(), r[1], c0, "2026-03-14T11:00:00")])
        .await;
    app.settle_ok(1, vec![item(v7(), r[1], c1, "2026-03-14T12:10:00")])
        .await;
    let resp = app
        .patch_admin(
            &format!("/residents/{}", r[2]),
            &json!({ "status": "deceased", "deceased_on": "2026-03-10" }),
        )
        .await;
    assert!(
        resp.status().is_success(),
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let fin = login(&app, "fin").await;
    let (st, html) = fin.page("/alerts").await;
    assert_eq!(st, StatusCode::OK);
    let death = &html[html.find("id=\"alert-death\"").expect("section")..];
    let death = &death[..death.find("</table>").expect("table")];
    assert!(death.contains("测试老人2"), "{death}");
    let two = &html[html.find("id=\"alert-two\"").expect("table")..];
    let two = &two[..two.find("</table>").expect("end")];
    assert!(two.contains("测试老人1") && two.contains("70 min"), "{two}");
    // A community worker of another town sees neither.
    crate::add_user(
        &app,
        "cw-fotang",
        zhucan_server::db::users::Role::Community,
        &[],
        Some("fotang"),
    )
    .await;
    let other = login(&app, "cw-fotang").await;
    let (_, html) = other.page("/alerts").await;
    assert!(!html.contains("测试老人2") && !html.contains("测试老人1"));
}

#[tokio::test]
async fn staff_check_in_top_up_import_and_the_english_switch() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, r) = (app.canteens[0], &app.residents);

    // Staff check-in from the operator page goes through ingest and is recorded as staff.
    let op = login(&app, "op0").await;
    let (_, html) = op.page(&format!("/operator?canteen={c0}&q=CARD1")).await;
    assert!(html.contains("测试老人1") && html.contains("/operator/checkin"));
    let (c, rid) = (c0.to_string(), r[1].to_string());
    let resp = op
        .post_form(
            "/operator/checkin",
            &[
                ("csrf", &op.csrf),
                ("canteen", &c),
                ("resident", &rid),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "a reason is required"
    );
    let resp = op
        .post_form(
            "/operator/checkin",
            &[
                ("csrf", &op.csrf),
                ("canteen", &c),
                ("resident", &rid),
                ("reason", "刷脸失败，已核对身份证"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let t = app
        .json(&format!("/canteens/{c0}/tally?date=2026-03-15"))
        .await;
    assert_eq!(t["totals"]["meals"], 1);
    assert_eq!(t["meals"][0]["method"], "staff");
    let (_, html) = op.page(&format!("/operator?canteen={c0}")).await;
    assert!(html.contains("刷脸失败，已核对身份证（op0）"));
    // Not for another canteen.
    let other = app.canteens[1].to_string();
    let resp = op
        .post_form(
            "/operator/checkin",
            &[
                ("csrf", &op.csrf),
                ("canteen", &other),
                ("resident", &rid),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // A prepaid top-up: ledger row, balance and a printable receipt.
    let admin = login(&app, "admin").await;
    let resp = admin
        .post_form(
            &format!("/residents/{}/topup", r[0]),
            &[("csrf", &admin.csrf), ("amount", "50.5")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let receipt = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let (st, html) = admin.page(&receipt).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        html.contains("¥50.50") && html.contains("¥150.50"),
        "100 + 50.50"
    );
    let res = app.json(&format!("/residents/{}", r[0])).await;
    assert_eq!(res["prepaid_balance"], 15050);

    // The roster import shows every bad row and imports nothing.
    let csv = "姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,身故日期,卡号,指定食堂,预存余额\n\
               楼根土,男,330782194003030011,本地,choucheng,choucheng,,正常,,R001,,\n\
               吴桂英,女,33078219500404001,本地,choucheng,choucheng,,正常,,R002,,\n";
    let before = app.json("/residents").await.as_array().map_or(0, Vec::len);
    let resp = admin
        .post_form("/residents/import", &[("csrf", &admin.csrf), ("csv", csv)])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.expect("html");
    assert!(html.contains("id=\"import-errors\""), "{html}");
    assert!(html.contains("<td class=\"n\">3</td>"), "line 3 is named");
    assert_eq!(
        app.json("/residents").await.as_array().map_or(0, Vec::len),
        before
    );

    // Mark a resident deceased from the page.
    let resp = admin
        .post_form(
            &format!("/residents/{}", r[3]),
            &[
                ("csrf", &admin.csrf),
                ("categories", ""),
                ("status", "deceased"),
                ("deceased_on", "2026-03-01"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.json(&format!("/residents/{}", r[3])).await["status"],
        "deceased"
    );

    // English on request.
    let (_, html) = op.page("/operator?lang=en").await;
    assert!(
        html.contains("Today&#39;s meals")
            || html.contains("Today's meals")
            || html.contains("Today&#x27;s meals")
    );
    let (_, html) = op.page("/operator").await;
    assert!(html.contains("今日就餐"));
}

#[tokio::test]
async fn after_finance_closes_the_month_operators_cannot_void_its_meals() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, r) = (app.canteens[0], &app.residents);
    let id = v7();
    app.settle_ok(0, vec![item(id, r[0], c0, "2026-03-15T11:00:00")])
        .await;
    let op = login(&app, "op0").await;
    let fin = login(&app, "fin").await;
    // An operator cannot close a month; finance can.
    assert_eq!(
        op.post_form(
            "/finance/close",
            &[("csrf", &op.csrf), ("month", "2026-03")]
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        fin.post_form(
            "/finance/close",
            &[("csrf", &fin.csrf), ("month", "2026-03")]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    let (_, html) = op
        .page(&format!("/operator?canteen={c0}&date=2026-03-15"))
        .await;
    assert!(!html.contains("void-button"));
    let ids = id.to_string();
    let page = op
        .post_form(
            "/operator/void",
            &[("csrf", &op.csrf), ("id", &ids), ("reason", "迟到的更正")],
        )
        .await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let api = op
        .client
        .post(format!("{}/api/v1/settlements/{id}/void", op.base))
        .header("cookie", &op.cookie)
        .header("x-csrf-token", &op.csrf)
        .json(&json!({ "reason": "迟到的更正" }))
        .send()
        .await
        .expect("post");
    assert_eq!(api.status(), StatusCode::CONFLICT);
    let t = app
        .json(&format!("/canteens/{c0}/tally?date=2026-03-15"))
        .await;
    assert_eq!(t["totals"]["meals"], 1);
}

#[tokio::test]
async fn the_finance_page_shows_each_kiosk_chain() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    app.settle_ok(
        0,
        vec![
            item(v7(), r[0], c0, "2026-03-10T11:00:00"),
            item(v7(), r[1], c0, "2026-03-10T11:05:00"),
        ],
    )
    .await;
    app.settle_ok(1, vec![item(v7(), r[4], c1, "2026-03-11T11:00:00")])
        .await;
    let fin = login(&app, "fin").await;
    let (st, html) = fin.page("/finance?month=2026-03").await;
    assert_eq!(st, StatusCode::OK);
    let section = html
        .split("id=\"chains\"")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("the chain table");
    assert_eq!(section.matches("✔ 已验证").count(), 2, "{section}");
    // Kiosk 0 signs record 3 but it never arrives; record 4 does.
    app.chains[0]
        .lock()
        .expect("chain")
        .sign(&item(v7(), r[2], c0, "2026-03-12T11:00:00"));
    app.settle_ok(0, vec![item(v7(), r[3], c0, "2026-03-12T11:10:00")])
        .await;
    let (_, html) = fin.page("/finance?month=2026-03").await;
    let section = html
        .split("id=\"chains\"")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("the chain table");
    assert!(section.contains("✘ 链有缺口或分叉"), "{section}");
    assert!(section.contains("缺口：第3至3条记录未收到"), "{section}");
    assert_eq!(section.matches("✔ 已验证").count(), 1);
    let (_, html) = fin.page("/finance?month=2026-03&lang=en").await;
    assert!(html.contains("✘ gaps or forks"), "English");
    // The full re-verification: finance and administrators, not operators or community workers.
    let path = format!("/api/v1/kiosks/{}/chain", app.kiosk_ids[0]);
    let full: Value = fin.get(&path).await.json().await.expect("json");
    assert_eq!(full["status"], "broken");
    assert_eq!(full["problems"][0]["kind"], "gap");
    let admin = login(&app, "admin").await;
    assert_eq!(admin.get(&path).await.status(), StatusCode::OK);
    for who in ["op0", "cw"] {
        let s = login(&app, who).await;
        assert_eq!(s.get(&path).await.status(), StatusCode::FORBIDDEN, "{who}");
    }
}

#[tokio::test]
async fn the_language_switch_never_redirects_to_another_host() {
    let app = spawn_app().await;
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let location = |back: &'static str| {
        let anon = anon.clone();
        let url = format!("{}/lang/en?back={back}", app.server.url());
        async move {
            let r = anon.get(url).send().await.expect("get");
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            r.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned()
        }
    };
    // the page asked for, without lang=
    assert_eq!(
        location("/finance%3Fmonth%3D2026-03%26lang%3Dzh").await,
        "/finance?month=2026-03"
    );
    // removing lang= once turned these into //evil.example (another host)
    for back in [
        "/%26lang=en/evil.example",
        "/%3Flang=en/evil.example",
        "//evil.example",
        "/%5Cevil.example",
    ] {
        let to = location(back).await;
        assert!(
            to.starts_with('/') && !to.starts_with("//") && !to.contains('\\'),
            "{back} -> {to}"
        );
    }
}

#[tokio::test]
async fn an_operator_finds_by_name_only_the_residents_of_their_canteen() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1, r) = (app.canteens[0], app.canteens[1], &app.residents);
    // 测试老人1 ate at canteen 0; 测试老人4 only at canteen 1 (the operator's is canteen 0)
    app.settle_ok(0, vec![item(v7(), r[1], c0, "2026-03-15T11:00:00")])
        .await;
    app.settle_ok(1, vec![item(v7(), r[4], c1, "2026-03-15T11:00:00")])
        .await;
    let op = login(&app, "op0").await;
    let found = |q: &str| {
        let url = format!("/operator?canteen={c0}&q={q}");
        let op = &op;
        async move { op.page(&url).await.1 }
    };
    let html = found("%E6%B5%8B%E8%AF%95%E8%80%81%E4%BA%BA").await; // 测试老人: every fixture name
    assert!(
        html.contains("测试老人1"),
        "a resident who eats here is found by name"
    );
    for other in ["测试老人0", "测试老人2", "测试老人3", "测试老人4"] {
        assert!(
            !html.contains(other),
            "{other}: the city's roster is not browsable by name"
        );
    }
    assert!(
        !found(&r[4].to_string()).await.contains("测试老人4"),
        "nor by resident number"
    );
    // a visitor is found by the exact card code or the exact ID number
    assert!(found("CARD4").await.contains("测试老人4"));
    let number = crate::helpers::national_id(crate::helpers::date(1956, 6, 6), 4, true);
    let html = found(&number).await;
    assert!(html.contains("测试老人4"), "by the exact ID number");
    // the hit shows the masked form (the full number appears only where the operator typed it)
    let masked = zhucan_domain::NationalId::parse(&number)
        .expect("valid")
        .masked();
    assert!(html.contains(&masked), "the hit shows the masked number");
}

#[tokio::test]
async fn the_finance_page_shows_the_books_check_and_checks_earlier_heads() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, r) = (app.canteens[0], &app.residents);
    app.settle_ok(0, vec![item(v7(), r[0], c0, "2026-03-10T11:00:00")])
        .await;
    let fin = login(&app, "fin").await;
    let (st, html) = fin.page("/finance?month=2026-03").await;
    assert_eq!(st, StatusCode::OK);
    let books = html
        .split("id=\"books-check\">")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .expect("the books check");
    assert!(books.contains("已核验：1 条记录"), "{books}");
    let token = html
        .split("id=\"heads-token\">")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the heads")
        .to_owned();
    assert!(token.starts_with("zhucan-heads:v1;audit="), "{token}");
    // Later the heads are checked on the same page: intact.
    let (st, html) = fin
        .page(&format!(
            "/finance?month=2026-03&heads={}",
            token.replace(';', "%3B").replace(':', "%3A")
        ))
        .await;
    assert_eq!(st, StatusCode::OK);
    let verdict = html
        .split("id=\"heads-verdict\">")
        .nth(1)
        .and_then(|s| s.split("</div>").next())
        .expect("the verdict");
    assert!(verdict.contains("完整"), "{verdict}");
    // The database file is edited: the page says so and names the row.
    app.tamper(
        &[],
        "UPDATE settlements SET subsidy = subsidy + 100, city_fen = city_fen + 100, price = price + 100",
    );
    let (_, html) = fin.page("/finance?month=2026-03").await;
    assert!(html.contains("有改动：1 条记录"), "altered shown");
    assert!(html.contains("id=\"books-altered\""), "rows named");
    // A malformed heads line is a clear error, not a silent pass.
    let (st, _) = fin.page("/finance?month=2026-03&heads=nonsense").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// Finance sees a red flag on its page with the meals behind it, confirms it with a note, and
/// the statement withholds that meal's subsidy; the month then closes only with a reason.
#[tokio::test]
async fn finance_confirms_a_red_flag_on_its_page_and_the_statement_withholds_it() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let c0 = app.canteens[0];
    let resp = app
        .put(
            &format!("/canteens/{c0}/closed-days"),
            &json!({ "dates": ["2026-03-09"], "reason": "消防检查" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let res = app
        .settle_on_the_day(
            0,
            "2026-03-09",
            vec![item(v7(), app.residents[0], c0, "2026-03-09T11:30:00")],
        )
        .await;
    let subsidy = res[0]["meal"]["subsidy"].as_i64().expect("subsidy");
    let fin = login(&app, "fin").await;
    let (status, page) = fin.page("/finance/flags?month=2026-03").await;
    assert_eq!(status, StatusCode::OK);
    let key = format!("closed_day:canteen:{c0}:2026-03-09");
    assert!(
        page.contains(&key) && page.contains("闭餐日有就餐记录"),
        "{page}"
    );
    assert!(page.contains(&format!("/finance/canteens/{c0}?month=2026-03")));
    // the statement page counts it as open, and closing asks for a reason
    let (_, statement) = fin.page("/finance?month=2026-03").await;
    assert!(statement.contains("close-open-flags"), "{statement}");

    let resp = fin
        .post_form(
            "/finance/flags/review",
            &[
                ("csrf", &fin.csrf),
                ("month", "2026-03"),
                ("key", &key),
                ("state", "confirmed"),
                ("note", "闭餐日无人就餐，记录不实"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let (_, after) = fin.page(&to).await;
    assert!(after.contains("已核实"), "{after}");
    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["withheld_total"], subsidy);
    assert_eq!(
        s["payable"].as_i64(),
        Some(s["total"]["subsidy"].as_i64().expect("subsidy") - subsidy)
    );
    // reviewed: nothing open, the month closes without a reason
    let (_, statement) = fin.page("/finance?month=2026-03").await;
    assert!(!statement.contains("close-open-flags"), "{statement}");
    // a review without a note is refused
    let resp = fin
        .post_form(
            "/finance/flags/review",
            &[
                ("csrf", &fin.csrf),
                ("month", "2026-03"),
                ("key", &key),
                ("state", "explained"),
                ("note", " "),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// The finance page shows a meal's lines (delivery, county, operating) and the 人户分离
/// clearing table, to the fen of the API's statement.
#[tokio::test]
async fn the_finance_page_shows_delivery_operating_subsidies_and_the_clearing_table() {
    let mut app = spawn_app().await;
    add_cast(&app).await;
    let c = crate::helpers::city(&mut app).await;
    let own = crate::helpers::meal(
        c.same_district,
        c.canteen,
        "2026-03-13T11:30:00",
        json!({ "counter_price": 2200, "delivered": true }),
    );
    let other = crate::helpers::meal(
        c.other_district,
        c.canteen,
        "2026-03-13T11:40:00",
        json!({}),
    );
    app.settle_on_the_day(c.kiosk, "2026-03-13", vec![own, other])
        .await;
    let fin = login(&app, "fin").await;
    let (st, html) = fin.page("/finance?month=2026-03").await;
    assert_eq!(st, StatusCode::OK);
    // ¥3 delivery fee of which ¥2 subsidised; ¥2 operating subsidy for each of the two meals
    assert_eq!(fen_of_page(&html, "total-delivery"), 300);
    assert_eq!(fen_of_page(&html, "total-delivery-subsidy"), 200);
    assert_eq!(fen_of_page(&html, "total-operating"), 400);
    let table = |id: &str| {
        let start = html.find(&format!("id=\"{id}\"")).expect(id);
        let end = start + html[start..].find("</table>").expect("table end");
        html[start..end].to_owned()
    };
    let operating = table("operating");
    assert!(
        operating.contains("拱北长者饭堂")
            && operating.contains("市级财政")
            && operating.contains("4.00"),
        "{operating}"
    );
    let clearing = table("clearing");
    for want in ["吉大街道", "三灶镇", "拱北街道", "8.00", "3.00"] {
        assert!(clearing.contains(want), "{want} in {clearing}");
    }
    // the funding table names the district paying the county share
    let funding = table("by-funding");
    assert!(funding.contains("县区财政（香洲区）"), "{funding}");
}
