//! Who may see and scan look-alike pairs (duplicate enrolment): administrators both, finance
//! the list, operators and community workers neither.

use reqwest::StatusCode;

use crate::helpers::spawn_app;
use crate::{Session, add_cast, login};

async fn call(s: &Session, method: &str, path: &str) -> StatusCode {
    s.client
        .request(
            method.parse().expect("method"),
            format!("{}/api/v1{path}", s.base),
        )
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .expect("request")
        .status()
}

#[tokio::test]
async fn only_administrators_scan_and_only_they_and_finance_list_lookalikes() {
    let app = spawn_app().await;
    add_cast(&app).await;
    for (user, list, scan) in [
        ("admin", StatusCode::OK, StatusCode::OK),
        ("fin", StatusCode::OK, StatusCode::FORBIDDEN),
        ("op0", StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
        ("cw", StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
    ] {
        let s = login(&app, user).await;
        assert_eq!(call(&s, "GET", "/lookalikes").await, list, "{user} GET");
        assert_eq!(
            call(&s, "POST", "/lookalikes/scan").await,
            scan,
            "{user} POST scan"
        );
    }
}
