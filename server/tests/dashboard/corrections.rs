//! Four-eyes corrections between people: an operator (or an administrator) asks, finance or
//! another administrator decides on the 复核 / Approvals page or through the JSON API; the
//! requester never decides; both steps are in the audit log.

use reqwest::StatusCode;
use serde_json::{Value, json};
use zhucan_server::corrections::FourEyes;
use zhucan_server::db;
use zhucan_server::db::users::Role;

use crate::helpers::{TestApp, item, spawn_app_with, v7};
use crate::{Session, add_cast, add_user, form_body, login};

/// The cast plus a second finance user; the production age limit and a ¥5 amount limit (the
/// fixtures' largest subsidy is ¥8: resident 1's lunch needs a second person).
async fn app() -> TestApp {
    let app = spawn_app_with(|c| {
        c.security.four_eyes = FourEyes {
            above_fen: 500,
            ..FourEyes::default()
        }
    })
    .await;
    add_cast(&app).await;
    add_user(&app, "fin2", Role::Finance, &[], None).await;
    app
}

/// Resident 1's ¥8 lunch at canteen 0 yesterday (2026-03-14); its id.
async fn large_lunch(app: &TestApp) -> String {
    let id = v7();
    let res = app
        .settle_on_the_day(
            0,
            "2026-03-14",
            vec![item(
                id,
                app.residents[1],
                app.canteens[0],
                "2026-03-14T11:30:00",
            )],
        )
        .await;
    assert_eq!(res[0]["meal"]["subsidy"], 800, "{res:?}");
    id.to_string()
}

/// A JSON POST with the session cookie and its CSRF token.
async fn post_json(s: &Session, path: &str, body: &Value) -> (StatusCode, Value) {
    let resp = s
        .client
        .post(format!("{}{path}", s.base))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn meal_of(app: &TestApp, id: &str) -> Value {
    let t = app
        .json(&format!(
            "/canteens/{}/tally?date=2026-03-14",
            app.canteens[0]
        ))
        .await;
    t["meals"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["id"] == id))
        .cloned()
        .expect("the meal")
}

async fn audit(app: &TestApp, action: &'static str) -> Vec<db::audit::Row> {
    app.server
        .db
        .read(move |c| db::audit::of_action(c, action))
        .await
        .expect("audit")
}

#[tokio::test]
async fn another_finance_user_approves_a_large_void_that_its_requester_and_an_operator_cannot() {
    let app = app().await;
    let id = large_lunch(&app).await;
    let admin = login(&app, "admin").await;
    let (st, c) = post_json(
        &admin,
        &format!("/api/v1/settlements/{id}/void"),
        &json!({ "reason": "老人当天未到店" }),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{c}");
    assert_eq!(c["requested_by"], "user:admin");
    let cid = c["id"].as_i64().expect("id");
    let approve = format!("/api/v1/corrections/{cid}/approve");

    // The requester cannot approve; an operator may not approve at all.
    let (st, e) = post_json(&admin, &approve, &json!({})).await;
    assert_eq!(
        (st, &e["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("same_person"))
    );
    let op = login(&app, "op0").await;
    let (st, e) = post_json(&op, &approve, &json!({})).await;
    assert_eq!(
        (st, &e["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden"))
    );
    let list = op.get("/api/v1/corrections?state=pending").await;
    assert_eq!(list.status(), StatusCode::FORBIDDEN);
    assert_eq!(meal_of(&app, &id).await["voided"], false);

    // Finance, a second person, approves: the void is applied as it always was.
    let fin = login(&app, "fin").await;
    let (st, d) = post_json(&fin, &approve, &json!({ "note": "已核实" })).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["correction"]["state"], "approved");
    assert_eq!(d["correction"]["decided_by"], "user:fin");
    assert_eq!(d["applied"]["effect"], "voided");
    assert_eq!(meal_of(&app, &id).await["voided"], true);
    let (st, _) = post_json(&fin, &approve, &json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT, "decided once");
    let s = app.json("/statements?month=2026-03").await;
    let v = s["voided"].as_array().expect("voided");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["settlement_id"], json!(id));
    assert_eq!(s["total"]["subsidy"], 0);
    // voided_by names both people.
    let key = id.clone();
    let by: String = app
        .server
        .db
        .read(move |c| {
            c.query_row(
                "SELECT voided_by FROM settlements WHERE id = ?1",
                [key],
                |r| r.get(0),
            )
        })
        .await
        .expect("voided_by");
    assert!(by.contains("user:fin") && by.contains("user:admin"), "{by}");

    // Both steps, and the void itself, are in the audit log under their own people.
    let asked = audit(&app, "correction.requested").await;
    let approved = audit(&app, "correction.approved").await;
    let voids = audit(&app, "settlement.void").await;
    assert_eq!((asked.len(), approved.len(), voids.len()), (1, 1, 1));
    assert_eq!(
        (asked[0].actor.as_str(), asked[0].role.as_str()),
        ("admin", "admin")
    );
    assert_eq!(
        (approved[0].actor.as_str(), approved[0].role.as_str()),
        ("fin", "finance")
    );
    assert!(
        approved[0].detail.contains("user:admin"),
        "{}",
        approved[0].detail
    );
    assert_eq!(voids[0].actor, "fin");
    assert!(asked[0].seq < approved[0].seq && approved[0].seq < voids[0].seq);
}

#[tokio::test]
async fn a_rejected_correction_leaves_the_meal_standing_and_the_operator_sees_it_waiting() {
    let app = app().await;
    let id = large_lunch(&app).await;
    let op = login(&app, "op0").await;
    // The operator's void form: the page says it waits for a second approval.
    let resp = op
        .post_form(
            "/operator/void",
            &[
                ("csrf", &op.csrf),
                ("id", &id),
                ("reason", "误刷"),
                ("date", "2026-03-14"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let (_, html) = op.page(&to).await;
    assert!(html.contains("待复核"), "notice");
    assert!(!html.contains("已作废该餐"));
    let row = html
        .split(&format!("data-id=\"{id}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("the meal's row")
        .to_owned();
    assert!(
        row.contains("待复核") && !row.contains("void-button"),
        "{row}"
    );
    assert_eq!(meal_of(&app, &id).await["voided"], false);

    let fin = login(&app, "fin").await;
    let list: Value = fin
        .get("/api/v1/corrections?state=pending")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["requested_by"], "user:op0");
    let cid = list[0]["id"].as_i64().expect("id");
    let reject = format!("/api/v1/corrections/{cid}/reject");
    let (st, e) = post_json(&fin, &reject, &json!({})).await;
    assert_eq!(
        (st, &e["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("note"))
    );
    let (st, d) = post_json(&fin, &reject, &json!({ "note": "老人确实就餐，有签字" })).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["correction"]["state"], "rejected");
    assert_eq!(d["applied"], Value::Null);
    assert_eq!(meal_of(&app, &id).await["voided"], false);
    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["total"]["subsidy"], 800, "the meal still counts");
    assert_eq!(audit(&app, "correction.rejected").await[0].actor, "fin");
    assert!(audit(&app, "settlement.void").await.is_empty());
    // Nothing pending: the operator page has its void button back.
    let (_, html) = op.page("/operator?date=2026-03-14").await;
    assert!(html.contains("void-button") && !html.contains("待复核"));
}

#[tokio::test]
async fn the_approvals_page_lists_pending_corrections_and_its_form_approves() {
    let app = app().await;
    let id = large_lunch(&app).await;
    let op = login(&app, "op0").await;
    let (st, _) = post_json(
        &op,
        &format!("/api/v1/settlements/{id}/void"),
        &json!({ "reason": "测试原因甲" }),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    // Operators have no approvals page and no link to it.
    let (st, html) = op.page("/approvals").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        !op.page("/operator").await.1.contains("href=\"/approvals\""),
        "{html}"
    );

    let fin = login(&app, "fin2").await;
    let (st, html) = fin.page("/approvals").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("href=\"/approvals\""), "nav link");
    for want in [
        "测试原因甲",
        "user:op0",
        "¥8.00",
        "2026-03-14",
        "approve-button",
        "reject-button",
    ] {
        assert!(html.contains(want), "{want}");
    }
    let cid = html
        .split("<tr data-id=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a row")
        .to_owned();
    // Without the CSRF token the form is refused and nothing happens.
    let resp = fin.post_form("/approvals/approve", &[("id", &cid)]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(meal_of(&app, &id).await["voided"], false);
    let resp = fin
        .client
        .post(format!("{}/approvals/approve", fin.base))
        .header("cookie", &fin.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", &fin.csrf), ("id", &cid)]))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(meal_of(&app, &id).await["voided"], true);
    let (_, html) = fin.page("/approvals").await;
    assert!(!html.contains("测试原因甲") && !html.contains("approve-button"));
    assert_eq!(audit(&app, "correction.approved").await[0].actor, "fin2");
}

#[tokio::test]
async fn an_approved_correction_of_a_closed_month_lands_as_an_adjustment() {
    let app = app().await;
    let id = v7();
    let (c0, r0) = (app.canteens[0], app.residents[0]);
    app.settle_on_the_day(
        0,
        "2026-02-10",
        vec![item(id, r0, c0, "2026-02-10T11:30:00")],
    )
    .await;
    let fin = login(&app, "fin").await;
    let (st, _) = post_json(&fin, "/api/v1/months/2026-02/close", &json!({})).await;
    assert_eq!(st, StatusCode::OK);
    // A small (¥5) but old meal: the administrator asks, finance approves.
    let admin = login(&app, "admin").await;
    let (st, c) = post_json(
        &admin,
        &format!("/api/v1/settlements/{id}/void"),
        &json!({ "reason": "二月误刷" }),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{c}");
    assert_eq!(c["kind"], "adjustment");
    let march = app.json("/statements?month=2026-03").await;
    assert_eq!(march["adjustments"], json!([]), "nothing before approval");
    let (st, d) = post_json(
        &fin,
        &format!("/api/v1/corrections/{}/approve", c["id"]),
        &json!({}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["applied"]["effect"], "adjusted");
    let march = app.json("/statements?month=2026-03").await;
    assert_eq!(march["adjustments"][0]["subsidy"], -500);
    assert_eq!(
        march["adjustments"][0]["settlement_id"],
        json!(id.to_string())
    );
    assert_eq!(audit(&app, "settlement.adjust").await[0].actor, "fin");
}
