//! Roles at every door (an operator's or community worker's session gets 403 on every finance
//! and admin endpoint and page; finance on every admin-only one), the log-in rate limit on the
//! clock, the dashboard's acts in the audit log and its two new pages (审计日志, 人脸数据), an
//! oversized log-in form, and the `Secure` cookie flag.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zhucan_server::db;

use crate::helpers::{TestApp, item, now, spawn_app, spawn_app_with, v7};
use crate::{PASSWORD, Session, add_cast, form_body, login, post_login};

/// What a session asks for.
enum Ask {
    /// A JSON API call (with the session's CSRF header on writes).
    Api(Method, String, Option<Value>),
    /// A dashboard page.
    Page(String),
    /// A dashboard form POST with the session's CSRF token.
    Form(String, Vec<(&'static str, String)>),
}

async fn status(s: &Session, ask: &Ask) -> StatusCode {
    match ask {
        Ask::Api(method, path, body) => {
            let mut rq = s
                .client
                .request(method.clone(), format!("{}{path}", s.base))
                .header("cookie", &s.cookie);
            if *method != Method::GET {
                rq = rq.header("x-csrf-token", &s.csrf);
            }
            if let Some(b) = body {
                rq = rq.json(b);
            }
            rq.send().await.expect("send").status()
        }
        Ask::Page(path) => s.page(path).await.0,
        Ask::Form(path, pairs) => {
            let mut all: Vec<(&str, &str)> = vec![("csrf", s.csrf.as_str())];
            all.extend(pairs.iter().map(|(k, v)| (*k, v.as_str())));
            s.post_form(path, &all).await.status()
        }
    }
}

fn api(method: Method, path: String, body: Option<Value>) -> Ask {
    Ask::Api(method, path, body)
}

/// Everything only an administrator may reach.
fn admin_only(app: &TestApp, kiosk: i64, topup: i64) -> Vec<Ask> {
    let (c, r) = (app.canteens[0], app.residents[0]);
    let policy: Value =
        serde_json::from_str(include_str!("../../../domain/policies/yiwu.json")).expect("policy");
    vec![
        api(Method::POST, "/api/v1/policies".into(), Some(policy)),
        api(Method::GET, "/api/v1/policies".into(), None),
        api(
            Method::POST,
            "/api/v1/residents".into(),
            Some(json!({ "name": "x", "national_id": "11010519491231002X",
                "local_registration": true, "registered_town": "choucheng",
                "residence_town": "choucheng", "categories": [], "card_code": "ROLE-1" })),
        ),
        api(Method::GET, "/api/v1/residents".into(), None),
        api(Method::GET, format!("/api/v1/residents/{r}"), None),
        api(
            Method::PATCH,
            format!("/api/v1/residents/{r}"),
            Some(json!({ "status": "suspended" })),
        ),
        api(
            Method::GET,
            format!("/api/v1/residents/{r}/national-id"),
            None,
        ),
        api(Method::GET, "/api/v1/kiosks".into(), None),
        api(
            Method::POST,
            "/api/v1/kiosks".into(),
            Some(json!({ "canteen_id": c, "name": "x", "public_key": "AAAA" })),
        ),
        api(Method::POST, format!("/api/v1/kiosks/{kiosk}/revoke"), None),
        api(
            Method::POST,
            "/api/v1/kiosks/enrolment-codes".into(),
            Some(json!({ "canteen_id": c, "name": "x" })),
        ),
        api(Method::GET, "/api/v1/audit".into(), None),
        api(Method::GET, "/api/v1/face-data".into(), None),
        api(
            Method::POST,
            "/api/v1/towns".into(),
            Some(json!({ "code": "x", "name": "x" })),
        ),
        api(Method::GET, "/api/v1/canteens".into(), None),
        Ask::Page("/admin/users".into()),
        Ask::Form(
            "/admin/users".into(),
            vec![
                ("name", "mallory".into()),
                ("password", "long-enough-1".into()),
                ("role", "admin".into()),
            ],
        ),
        Ask::Page("/admin/push".into()),
        Ask::Page("/admin/audit".into()),
        Ask::Page("/admin/face-data".into()),
        Ask::Page("/residents/import".into()),
        Ask::Form(
            "/residents/import".into(),
            vec![("csv", "姓名,性别\n".into())],
        ),
        Ask::Form(format!("/residents/{r}/national-id"), vec![]),
        Ask::Form(
            format!("/residents/{r}"),
            vec![
                ("categories", String::new()),
                ("status", "suspended".into()),
            ],
        ),
        Ask::Form(
            format!("/residents/{r}/topup"),
            vec![("amount", "10".into())],
        ),
        Ask::Page(format!("/topups/{topup}/receipt")),
    ]
}

/// What finance (and the administrator) may reach, and operators and community workers not.
fn finance(app: &TestApp) -> Vec<Ask> {
    let (c, r) = (app.canteens[0], app.residents[0]);
    let mut out: Vec<Ask> = ["json", "csv", "xlsx"]
        .into_iter()
        .flat_map(|f| {
            [
                api(
                    Method::GET,
                    format!("/api/v1/statements?month=2026-03&format={f}"),
                    None,
                ),
                api(
                    Method::GET,
                    format!("/api/v1/statements?month=2026-03&format={f}&canteen={c}"),
                    None,
                ),
            ]
        })
        .collect();
    out.extend([
        api(Method::POST, "/api/v1/months/2026-03/close".into(), None),
        Ask::Page("/finance".into()),
        Ask::Page(format!("/finance/canteens/{c}?month=2026-03")),
        Ask::Page(format!("/finance/residents/{r}?month=2026-03")),
        Ask::Form("/finance/close".into(), vec![("month", "2026-03".into())]),
        api(Method::GET, "/api/v1/flags?month=2026-03".into(), None),
        api(
            Method::POST,
            "/api/v1/flags/review".into(),
            Some(
                serde_json::json!({ "month": "2026-03", "key": "x", "state": "explained",
                "note": "x" }),
            ),
        ),
        api(
            Method::PUT,
            format!("/api/v1/canteens/{c}/closed-days"),
            Some(serde_json::json!({ "dates": ["2026-03-01"], "reason": "x" })),
        ),
        Ask::Page("/finance/flags?month=2026-03".into()),
    ]);
    out
}

fn name(ask: &Ask) -> String {
    match ask {
        Ask::Api(m, p, _) => format!("{m} {p}"),
        Ask::Page(p) => format!("page {p}"),
        Ask::Form(p, _) => format!("form POST {p}"),
    }
}

#[tokio::test]
async fn only_the_right_role_gets_past_each_finance_and_admin_door() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let c0 = app.canteens[0];
    app.settle_ok(
        0,
        vec![item(v7(), app.residents[0], c0, "2026-03-15T11:00:00")],
    )
    .await;
    let kiosk = app.json("/kiosks").await[0]["id"].as_i64().expect("kiosk");
    let admin = login(&app, "admin").await;
    let resp = admin
        .post_form(
            &format!("/residents/{}/topup", app.residents[0]),
            &[("csrf", &admin.csrf), ("amount", "5")],
        )
        .await;
    let receipt = resp.headers()["location"].to_str().expect("loc").to_owned();
    let topup: i64 = receipt
        .trim_start_matches("/topups/")
        .trim_end_matches("/receipt")
        .parse()
        .expect("topup id");
    let audit_before = app
        .server
        .db
        .read(db::audit::verify)
        .await
        .expect("verify")
        .entries;

    let op = login(&app, "op0").await;
    let cw = login(&app, "cw").await;
    let fin = login(&app, "fin").await;
    for (who, s) in [("operator", &op), ("community", &cw)] {
        for ask in admin_only(&app, kiosk, topup)
            .iter()
            .chain(finance(&app).iter())
        {
            assert_eq!(
                status(s, ask).await,
                StatusCode::FORBIDDEN,
                "{who}: {}",
                name(ask)
            );
        }
    }
    for ask in &admin_only(&app, kiosk, topup) {
        assert_eq!(
            status(&fin, ask).await,
            StatusCode::FORBIDDEN,
            "finance: {}",
            name(ask)
        );
    }
    // Nothing happened behind the refusals: no new user, resident, kiosk code, close or reveal.
    let after = app.server.db.read(db::audit::verify).await.expect("verify");
    assert_eq!(after.entries, audit_before + 3, "only the three logins");
    assert!(after.verified());
    let st = app.json("/statements?month=2026-03").await;
    assert_eq!(st["closed"], false);
    assert_eq!(app.json("/kiosks").await[0]["revoked_at"], Value::Null);
    assert_eq!(
        app.json(&format!("/residents/{}", app.residents[0])).await["status"],
        "active"
    );

    // Finance reaches its own doors; the administrator every one (the pages at least).
    for ask in finance(&app)
        .iter()
        .filter(|a| !matches!(a, Ask::Form(..) | Ask::Api(Method::POST | Method::PUT, ..)))
    {
        assert_eq!(
            status(&fin, ask).await,
            StatusCode::OK,
            "finance: {}",
            name(ask)
        );
    }
    for p in [
        "/admin/users",
        "/admin/push",
        "/admin/audit",
        "/admin/face-data",
        "/residents/import",
    ] {
        assert_eq!(admin.page(p).await.0, StatusCode::OK, "admin {p}");
    }
    // An admin user's session works on the admin API too (with its CSRF token on writes).
    assert_eq!(
        status(&admin, &api(Method::GET, "/api/v1/kiosks".into(), None)).await,
        StatusCode::OK
    );
    let code = api(
        Method::POST,
        "/api/v1/kiosks/enrolment-codes".into(),
        Some(json!({ "canteen_id": c0, "name": "前台" })),
    );
    assert_eq!(status(&admin, &code).await, StatusCode::CREATED);
    let e = app
        .server
        .db
        .read(|c| db::audit::of_action(c, "kiosk.enrolment_code"))
        .await
        .expect("audit");
    assert_eq!(
        (e[0].actor.as_str(), e[0].role.as_str()),
        ("admin", "admin")
    );
}

#[tokio::test]
async fn the_eleventh_login_in_a_minute_is_refused_until_the_clock_refills() {
    let app = spawn_app().await;
    add_cast(&app).await;
    for i in 0..10 {
        let r = post_login(&app, &format!("nobody{i}"), "wrong").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // The 11th, even with the right password, is refused with a Chinese message.
    let r = post_login(&app, "fin", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "6");
    assert!(r.headers().get("set-cookie").is_none());
    let html = r.text().await.expect("html");
    assert!(html.contains("登录尝试过于频繁，请 6 秒后再试"), "{html}");
    // In English on request.
    let r = reqwest::Client::new()
        .post(format!("{}/login?lang=en", app.server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("name", "fin"), ("password", PASSWORD)]))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("Too many log-in attempts")
    );
    // The account itself is not locked: six seconds on, the right password works.
    app.clock.set(now() + chrono::Duration::seconds(6));
    assert_eq!(
        post_login(&app, "fin", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post_login(&app, "fin", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A minute refills the whole burst.
    app.clock.set(now() + chrono::Duration::seconds(66));
    for _ in 0..10 {
        assert_eq!(
            post_login(&app, "fin", PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
    }
}

async fn actions(app: &TestApp) -> Vec<(String, String, String)> {
    app.server
        .db
        .read(|c| db::audit::page(c, None, 1000))
        .await
        .expect("audit")
        .into_iter()
        .rev()
        .map(|r| (r.action, r.actor, r.role))
        .collect()
}

fn has(all: &[(String, String, String)], action: &str, actor: &str, role: &str) -> bool {
    all.iter()
        .any(|(a, b, c)| a == action && b == actor && c == role)
}

#[tokio::test]
async fn the_dashboards_acts_are_audited_and_the_audit_and_face_data_pages_show_them() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, r) = (app.canteens[0], app.residents.clone());
    let meal = v7();
    app.settle_ok(0, vec![item(meal, r[0], c0, "2026-03-15T11:00:00")])
        .await;
    enrol_face(&app, r[4], 0.5).await;

    assert_eq!(
        post_login(&app, "fin", "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_login(&app, "who-is-this", "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let admin = login(&app, "admin").await;
    let op = login(&app, "op0").await;
    let fin = login(&app, "fin").await;
    // A void, a user, an edit with a death, a top-up, an import, a reveal, a close, exports.
    let ids = meal.to_string();
    let resp = op
        .post_form(
            "/operator/void",
            &[("csrf", &op.csrf), ("id", &ids), ("reason", "录错了")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf", &admin.csrf),
                ("name", "fin2"),
                ("password", "long-enough-2"),
                ("role", "finance"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = admin
        .post_form(
            &format!("/residents/{}", r[4]),
            &[
                ("csrf", &admin.csrf),
                ("categories", ""),
                ("status", "deceased"),
                ("deceased_on", "2026-03-10"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = admin
        .post_form(
            &format!("/residents/{}/topup", r[0]),
            &[("csrf", &admin.csrf), ("amount", "20")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let csv = format!(
        "姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,身故日期,卡号,指定食堂,预存余额\n\
         楼根土,男,{},本地,choucheng,choucheng,,正常,,R001,,\n",
        crate::helpers::national_id(crate::helpers::date(1940, 3, 3), 7, true)
    );
    let resp = admin
        .post_form("/residents/import", &[("csrf", &admin.csrf), ("csv", &csv)])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "import");
    let resp = admin
        .post_form(
            &format!("/residents/{}/national-id", r[1]),
            &[("csrf", &admin.csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.expect("html");
    let number = crate::helpers::national_id(crate::helpers::date(1930, 1, 1), 1, false);
    assert!(html.contains(&number), "the full number is shown");
    // The resident page offers the reveal to the admin only, as a POST.
    let (_, page) = admin.page(&format!("/residents/{}", r[1])).await;
    assert!(page.contains("/national-id") && !page.contains(&number));
    let cw = login(&app, "cw").await;
    let (_, page) = cw.page(&format!("/residents/{}", r[1])).await;
    assert!(!page.contains("/national-id"));
    let resp = fin
        .post_form(
            "/finance/close",
            &[("csrf", &fin.csrf), ("month", "2026-02")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for f in ["json", "csv"] {
        let resp = fin
            .get(&format!("/api/v1/statements?month=2026-03&format={f}"))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Viewing the finance page is not an export.
    assert_eq!(fin.page("/finance?month=2026-03").await.0, StatusCode::OK);
    assert_eq!(
        op.post_form("/logout", &[("csrf", &op.csrf)])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let all = actions(&app).await;
    for (action, actor, role) in [
        ("login.failure", "fin", "finance"),
        ("login.failure", "who-is-this", "unknown"),
        ("login.success", "admin", "admin"),
        ("login.success", "op0", "operator"),
        ("settlement.void", "op0", "operator"),
        ("user.create", "admin", "admin"),
        ("resident.update", "admin", "admin"),
        ("templates.purge", "admin", "admin"),
        ("prepaid.topup", "admin", "admin"),
        ("resident.import", "admin", "admin"),
        ("national_id.reveal", "admin", "admin"),
        ("month.close", "fin", "finance"),
        ("statement.export", "fin", "finance"),
        ("logout", "op0", "operator"),
    ] {
        assert!(
            has(&all, action, actor, role),
            "{action} by {actor} ({role}) in {all:?}"
        );
    }
    assert_eq!(
        all.iter().filter(|a| a.0 == "statement.export").count(),
        2,
        "JSON and CSV by finance; the page is not an export"
    );
    // The seeded users came from the command line.
    assert!(has(&all, "user.create", "cli", "system"));
    let fail = app
        .server
        .db
        .read(|c| db::audit::of_action(c, "login.failure"))
        .await
        .expect("audit");
    assert!(fail[0].detail.contains("127.0.0.1"), "{}", fail[0].detail);

    // The audit page: newest first, under the chain's verdict.
    let (st, html) = admin.page("/admin/audit").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("data-verified=\"true\""), "{html}");
    assert!(html.contains("审计日志") && html.contains("national_id.reveal"));
    let (_, en) = admin.page("/admin/audit?lang=en").await;
    assert!(en.contains("Hash chain verified"));
    // The face-data page: r[4] died with no templates on the server; enrol two people.
    enrol_face(&app, r[0], 1.0).await;
    enrol_face(&app, r[2], -1.0).await;
    let (st, html) = admin.page("/admin/face-data").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("id=\"face-residents\">2<"), "{html}");
    assert!(html.contains("2 / 100000 = 0.00%"), "{html}");
    assert!(!html.contains("id=\"face-warning\""));

    // Tamper with the database: the page says where the chain breaks.
    app.tamper(
        &["audit_log_no_update"],
        "UPDATE audit_log SET actor = 'nobody' WHERE seq = 2",
    );
    let (_, html) = admin.page("/admin/audit").await;
    assert!(html.contains("data-verified=\"false\""));
    assert!(html.contains("哈希链校验失败：从第 2 条"), "{html}");
}

/// Uploads one template for `who` at canteen 0 (admin token).
async fn enrol_face(app: &TestApp, who: i64, seed: f32) {
    let mut e = vec![0.0f32; 128];
    e[0] = seed.signum();
    e[1] = 0.0;
    let resp = app
        .put(
            &format!("/residents/{who}/templates?canteen={}", app.canteens[0]),
            &json!({
                "consent_face_enrolment": true, "consent_template_sharing": false,
                "by": "王芳", "model": "m",
                "embeddings": [zhucan_domain::api::encode_embedding(&e)]
            }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_face_data_page_warns_from_eighty_thousand_people() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let c0 = app.canteens[0];
    // 80,000 enrolled people, written straight into the database (the count is what is tested).
    let blob = if app.pg.is_some() {
        "'\\x00'::bytea"
    } else {
        "x'00'"
    };
    app.tamper(
        &[],
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80000)
             INSERT INTO residents (id, name, sex, birth_date, national_id_index,
                 national_id_masked, local_registration, registered_town, residence_town, status,
                 card_code, consent_face, face_enrolled, created_at)
             SELECT 1000 + i, 'p' || i, 'male', '1950-01-01', 'idx' || i, 'm', 1, 'choucheng',
                 'choucheng', 'active', 'bulk' || i, 1, 1, '2026-03-01T00:00:00.000Z' FROM n;
             INSERT INTO face_templates (resident_id, enrolled_canteen, model, dim, nonce,
                 ciphertext, created_at)
             SELECT id, {c0}, 'm', 128, {blob}, {blob}, '2026-03-01T00:00:00.000Z'
             FROM residents WHERE id > 1000;"
        ),
    );
    let admin = login(&app, "admin").await;
    let (_, html) = admin.page("/admin/face-data").await;
    assert!(html.contains("id=\"face-warning\""), "{html}");
    assert!(html.contains("80000 / 100000 = 80.00%"));
    assert!(html.contains("须向省级网信部门备案"));
    let fd = app.json("/face-data").await;
    assert_eq!(
        (fd["warning"].clone(), fd["percent_of_threshold"].clone()),
        (json!(true), json!(80.0))
    );
}

#[tokio::test]
async fn an_oversized_login_form_gets_413_naming_the_limit() {
    let app = spawn_app().await;
    let big = "x".repeat(1024 * 1024 + 10);
    let r = reqwest::Client::new()
        .post(format!("{}/login", app.server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("name", "admin"), ("password", &big)]))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let html = r.text().await.expect("html");
    assert!(html.contains("1048576") && html.contains("超过"), "{html}");
    // The roster import is a form like any other: a roster over the limit is refused whole.
    add_cast(&app).await;
    let admin = login(&app, "admin").await;
    let roster = format!("姓名,性别\n{}", "张三,男\n".repeat(100_000));
    let r = admin
        .post_form(
            "/residents/import",
            &[("csrf", &admin.csrf), ("csv", &roster)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.expect("html").contains("1048576"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_only_when_the_server_is_behind_tls() {
    let plain = spawn_app().await;
    add_cast(&plain).await;
    let r = post_login(&plain, "admin", PASSWORD).await;
    let c = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(c.contains("HttpOnly") && !c.contains("Secure"), "{c}");

    let tls = spawn_app_with(|c| c.security.secure_cookies = true).await;
    add_cast(&tls).await;
    let r = post_login(&tls, "admin", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("; Secure"),
        "{c}"
    );
}

/// Every way the resident's birth date could be written out.
fn birth_date_forms(d: chrono::NaiveDate) -> Vec<String> {
    [
        "%Y-%m-%d",
        "%Y%m%d",
        "%Y/%m/%d",
        "%Y年%-m月%-d日",
        "%Y-%-m-%-d",
        "%Y.%m.%d",
    ]
    .iter()
    .map(|f| d.format(f).to_string())
    .collect()
}

/// All the text of an XLSX workbook, cell by cell.
fn xlsx_text(bytes: Vec<u8>) -> String {
    use calamine::Reader as _;
    let mut wb: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let mut out = String::new();
    for name in wb.sheet_names() {
        let sheet = wb.worksheet_range(&name).expect("sheet");
        for row in sheet.rows() {
            for c in row {
                out.push_str(&c.to_string());
                out.push('\t');
            }
        }
    }
    out
}

#[tokio::test]
async fn no_role_can_assemble_a_full_id_number_from_any_page_export_or_endpoint() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (r0, c0) = (app.residents[0], app.canteens[0]);
    // resident 0 of the helpers: born 1944-05-01, number 330782 19440501 001 X
    let birth = chrono::NaiveDate::from_ymd_opt(1944, 5, 1).expect("date");
    let number = crate::helpers::national_id(birth, 0, true);
    let masked = zhucan_domain::NationalId::parse(&number)
        .expect("valid")
        .masked();
    // A meal, a top-up and a void, so the resident is on every tally, statement and log.
    app.settle_ok(0, vec![item(v7(), r0, c0, "2026-03-15T11:30:00")])
        .await;
    let admin = login(&app, "admin").await;
    let resp = admin
        .post_form(
            &format!("/residents/{r0}/topup"),
            &[("csrf", &admin.csrf), ("amount", "50")],
        )
        .await;
    assert!(resp.status().is_redirection() || resp.status().is_success());
    let forms = birth_date_forms(birth);
    let leaks = |where_: &str, text: &str| {
        for f in &forms {
            assert!(
                !text.contains(f.as_str()),
                "{where_} shows the birth date {f}; beside {masked} it is the whole number"
            );
        }
        assert!(!text.contains(&number), "{where_} shows the full number");
    };
    let pages = [
        "/".to_owned(),
        "/operator".into(),
        format!("/operator?q={}", "测试老人0"),
        "/operator?q=CARD0".into(),
        "/finance".into(),
        "/finance?month=2026-03".into(),
        format!("/finance/canteens/{c0}?month=2026-03"),
        format!("/finance/residents/{r0}?month=2026-03"),
        "/alerts".into(),
        "/residents".into(),
        format!("/residents?q={}", "测试老人0"),
        format!("/residents/{r0}"),
        "/admin/users".into(),
        "/admin/audit".into(),
        "/admin/face-data".into(),
        "/admin/kiosks".into(),
        "/topups/1/receipt".into(),
        "/api/v1/statements?month=2026-03".into(),
        "/api/v1/statements?month=2026-03&format=csv".into(),
        format!("/api/v1/residents/{r0}"),
        "/api/v1/residents".into(),
        "/api/v1/audit".into(),
        format!("/api/v1/canteens/{c0}/tally?date=2026-03-15"),
        format!("/api/v1/canteens/{c0}/re-enrolment"),
    ];
    let mut seen_masked = false;
    for name in ["admin", "op0", "fin", "cw"] {
        let s = if name == "admin" {
            login(&app, "admin").await
        } else {
            login(&app, name).await
        };
        for p in &pages {
            let (status, text) = s.page(p).await;
            if status == StatusCode::OK {
                seen_masked |= text.contains(&masked);
                leaks(&format!("{name} {p}"), &text);
            }
        }
        let x = s.get("/api/v1/statements?month=2026-03&format=xlsx").await;
        if x.status() == StatusCode::OK {
            let text = xlsx_text(x.bytes().await.expect("xlsx").to_vec());
            seen_masked |= text.contains(&masked);
            leaks(&format!("{name} statement xlsx"), &text);
        }
    }
    assert!(
        seen_masked,
        "the masked number is shown somewhere, so the search was real"
    );
    // The admin token's API, every read that names residents.
    for p in [
        format!("/residents/{r0}"),
        "/residents".into(),
        "/statements?month=2026-03".into(),
        "/statements?month=2026-03&format=csv".into(),
        "/audit".into(),
        format!("/canteens/{c0}/tally?date=2026-03-15"),
        format!("/canteens/{c0}/re-enrolment"),
    ] {
        let resp = app.get(&p).await;
        assert_eq!(resp.status(), StatusCode::OK, "{p}");
        leaks(
            &format!("admin token {p}"),
            &resp.text().await.expect("text"),
        );
    }
    let x = app.get("/statements?month=2026-03&format=xlsx").await;
    leaks(
        "admin token xlsx",
        &xlsx_text(x.bytes().await.expect("xlsx").to_vec()),
    );
    // A kiosk decides by age, so it holds the birth date: then it holds no digit of the number.
    let sync = app
        .get_as(&app.kiosks[0], "/kiosk/sync?since=0")
        .await
        .text()
        .await
        .expect("text");
    assert!(sync.contains("1944-05-01"), "the kiosk has the birth date");
    assert!(
        !sync.contains(&masked[8..]),
        "the kiosk has no digit of the number"
    );
    assert!(!sync.contains("national_id"), "{sync}");
    // Only the audited reveal gives the number.
    let (status, text) = admin.page(&format!("/residents/{r0}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(&masked) && text.contains("id=\"age\""),
        "{text}"
    );
}
