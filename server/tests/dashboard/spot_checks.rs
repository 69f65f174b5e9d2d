//! 抽查 (`/inspect`) and `/api/v1/spot-checks` with dashboard sessions: who may record and read a
//! check, and a check recorded through the page's form.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{item, spawn_app, v7};
use crate::{Session, add_cast, login};

/// A JSON call with the session cookie and its CSRF token, as the dashboard's scripts make it.
async fn api(
    s: &Session,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = s
        .client
        .request(method, format!("{}/api/v1{path}", s.base))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.expect("request")
}

fn body(canteen: i64) -> Value {
    json!({ "canteen_id": canteen, "date": "2026-03-15", "window_start": "11:30",
            "window_end": "12:00", "headcount": 1 })
}

#[tokio::test]
async fn operators_and_community_workers_of_another_town_may_not_record_or_read_spot_checks() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, c1) = (app.canteens[0], app.canteens[1]);
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // The operator of canteen 0 is the inspected side: not even for their own canteen.
    let op = login(&app, "op0").await;
    let r = api(&op, post.clone(), "/spot-checks", Some(body(c0))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api(&op, get.clone(), "/spot-checks?month=2026-03", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(op.page("/inspect").await.0, StatusCode::FORBIDDEN);
    assert!(!op.page("/operator").await.1.contains("href=\"/inspect\""));

    // The community worker of choucheng: canteen 0 (choucheng) yes, canteen 1 (fotang) no.
    let cw = login(&app, "cw").await;
    let r = api(&cw, post.clone(), "/spot-checks", Some(body(c1))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api(&cw, post.clone(), "/spot-checks", Some(body(c0))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mine: Value = r.json().await.expect("json");
    assert_eq!(mine["inspector"], "cw");
    // without the CSRF token, no
    let r = cw
        .client
        .post(format!("{}/api/v1/spot-checks", cw.base))
        .header("cookie", &cw.cookie)
        .json(&body(c0))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Finance records one at fotang; the community worker of choucheng does not see it.
    let fin = login(&app, "fin").await;
    let r = api(&fin, post, "/spot-checks", Some(body(c1))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let theirs: Value = r.json().await.expect("json");
    let r = api(
        &cw,
        get.clone(),
        &format!("/spot-checks?month=2026-03&canteen={c1}"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = api(&cw, get.clone(), "/spot-checks?month=2026-03", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.expect("json");
    assert_eq!(seen, json!([mine]));
    assert_eq!(
        cw.page(&format!("/inspect?check={}", theirs["id"])).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, html) = cw.page("/inspect").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("value=\"{c0}\"")) && !html.contains(&format!("value=\"{c1}\""))
    );
    // Finance sees both.
    let r = api(&fin, get, "/spot-checks?month=2026-03", None).await;
    let all: Value = r.json().await.expect("json");
    assert_eq!(all.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn finance_records_a_spot_check_on_the_page_and_sees_the_comparison_at_once() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c0, r) = (app.canteens[0], &app.residents);
    // Three meals at canteen 0 in the last half hour (now is 12:00), one of them by staff.
    let mut staff = item(v7(), r[2], c0, "2026-03-15T11:50:00");
    staff["method"] = json!("staff");
    staff["staff_reason"] = json!("卡丢失");
    app.settle_ok(
        0,
        vec![
            item(v7(), r[0], c0, "2026-03-15T11:35:00"),
            item(v7(), r[1], c0, "2026-03-15T11:40:00"),
            staff,
        ],
    )
    .await;

    let fin = login(&app, "fin").await;
    let (status, html) = fin.page("/inspect").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("href=\"/inspect\" class=\"active\""),
        "in the nav"
    );
    // today and the last 30 minutes on the server's clock are the defaults
    assert!(
        html.contains("name=\"date\" value=\"2026-03-15\""),
        "{html}"
    );
    assert!(html.contains("name=\"window_start\" value=\"11:30\""));
    assert!(html.contains("name=\"window_end\" value=\"12:00\""));
    assert!(html.contains("name=\"viewport\""));

    let c = c0.to_string();
    let send = |csrf: String, headcount: &'static str| {
        let (fin, c) = (&fin, c.clone());
        async move {
            fin.post_form(
                "/inspect",
                &[
                    ("csrf", csrf.as_str()),
                    ("canteen_id", c.as_str()),
                    ("date", "2026-03-15"),
                    ("window_start", "11:30"),
                    ("window_end", "12:00"),
                    ("headcount", headcount),
                    ("note", "午餐时段只见到一位老人"),
                ],
            )
            .await
        }
    };
    // a wrong token and a negative headcount are refused, and nothing is stored
    let resp = send("wrong".into(), "1").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = send(fin.csrf.clone(), "-1").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap_or_default().contains("headcount"));

    let resp = send(fin.csrf.clone(), "1").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(to.starts_with("/inspect?check="), "{to}");
    let id: i64 = to["/inspect?check=".len()..].parse().expect("id");
    let (status, html) = fin.page(&to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("data-check=\"{id}\"")));
    let cell = |name: &str| {
        let at = html.find(&format!("id=\"{name}\">")).expect(name) + name.len() + 6;
        html[at..].split('<').next().unwrap_or_default().to_owned()
    };
    assert_eq!(
        (
            cell("recorded-face"),
            cell("recorded-card"),
            cell("recorded-staff")
        ),
        ("0".to_owned(), "2".to_owned(), "1".to_owned())
    );
    assert_eq!(
        (cell("recorded"), cell("headcount")),
        ("3".to_owned(), "1".to_owned())
    );
    assert!(
        html.contains("class=\"n over\" id=\"difference\">+2<"),
        "the difference in red"
    );
    assert!(html.contains("午餐时段只见到一位老人"));
    // and it heads the month's list
    assert!(html.contains(&format!("<tr data-id=\"{id}\">")));

    // The audit log has it, by the finance user.
    let rows = app
        .server
        .db
        .read(|c| zhucan_server::db::audit::of_action(c, "spot_check.recorded"))
        .await
        .expect("audit");
    assert_eq!(rows.len(), 1, "only the accepted form was recorded");
    assert_eq!(
        (
            rows[0].actor.as_str(),
            rows[0].role.as_str(),
            rows[0].target.clone()
        ),
        ("fin", "finance", format!("spot_check:{id}"))
    );
    assert!(rows[0].detail.contains("\"recorded\":3"));
}
