//! The carer registry (代取人) is the administrator's: an operator's or finance's session gets 403.

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
