//! The carer registry (代取人) is the administrator's: an operator's or finance's session gets 403.
//! Finance sees proxy meals counted apart on the statement page.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::{add_cast, login};

#[tokio::test]
async fn only_an_administrator_may_use_the_carer_registry() {
    let app = spawn_app().await;
    add_cast(&app).await;
    for (name, want) in [
        ("op0", StatusCode::FORBIDDEN),
        ("fin", StatusCode::FORBIDDEN),
        ("admin", StatusCode::CREATED),
    ] {
        let s = login(&app, name).await;
        let resp = s
            .client
            .post(format!("{}/api/v1/carers", s.base))
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf)
            .json(&json!({ "name": format!("代取人{name}"), "card_code": format!("C-{name}") }))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), want, "{name} POST /carers");
        let resp = s
            .client
            .post(format!(
                "{}/api/v1/residents/{}/carers",
                s.base, app.residents[0]
            ))
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf)
            .json(&json!({ "carer_id": 1 }))
            .send()
            .await
            .expect("post");
        let link_want = if name == "admin" {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(resp.status(), link_want, "{name} POST link");
        let resp = s
            .client
            .get(format!("{}/api/v1/carers", s.base))
            .header("cookie", &s.cookie)
            .send()
            .await
            .expect("get");
        let get_want = if name == "admin" {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(resp.status(), get_want, "{name} GET /carers");
    }
}

#[tokio::test]
async fn the_finance_page_counts_proxy_meals_per_canteen_and_in_total() {
    let app = spawn_app().await;
    add_cast(&app).await;
    let (c, r) = (app.canteens[0], app.residents[1]);
    let carer = crate::helpers::created(
        app.post(
            "/carers",
            &json!({ "name": "王小红", "card_code": "CARER-1" }),
        )
        .await,
    )
    .await["id"]
        .as_i64()
        .expect("id");
    crate::helpers::created(
        app.post(
            &format!("/residents/{r}/carers"),
            &json!({ "carer_id": carer }),
        )
        .await,
    )
    .await;
    let mut proxy = crate::helpers::item(crate::helpers::v7(), r, c, "2026-03-15T11:05:00");
    proxy["proxy_carer_id"] = json!(carer);
    let own = crate::helpers::item(
        crate::helpers::v7(),
        app.residents[0],
        c,
        "2026-03-15T11:00:00",
    );
    let results = app.settle_ok(0, vec![proxy, own]).await;
    assert!(
        results.iter().all(|r| r["status"] == "accepted"),
        "{results:?}"
    );
    let fin = login(&app, "fin").await;
    let (status, html) = fin.page("/finance?month=2026-03").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("其中代取"), "the column is there");
    // one line for the canteen and the total: 1 proxy meal each
    assert_eq!(
        html.matches(r#"<td class="n proxy">1</td>"#).count(),
        2,
        "{html}"
    );
}
