//! The web dashboard over real HTTP and in a real headless Chromium: roles and scope, login
//! lock-out, CSRF, voids and month close, exports against the page and the API, alerts, the
//! kiosk page (终端), and the signed push to a local test receiver. Screenshots land in
//! `$CARGO_TARGET_DIR/screenshots/`.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod browser;
mod carers;
mod corrections;
mod guard;
mod http;
mod kiosks;
mod lookalikes;
mod push;
mod re_enrolment;
mod spot_checks;

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use zhucan_server::accounts::{NewUser, create_user};
use zhucan_server::db::users::Role;

use helpers::TestApp;

pub const PASSWORD: &str = "correct-horse-1";

/// Creates a dashboard user straight in the database.
pub async fn add_user(app: &TestApp, name: &str, role: Role, canteens: &[i64], town: Option<&str>) {
    let db = app.server.db.clone();
    let u = NewUser {
        name: name.into(),
        password: PASSWORD.into(),
        role,
        canteens: canteens
            .iter()
            .map(|c| zhucan_domain::CanteenId(*c))
            .collect(),
        town: town.map(str::to_owned),
    };
    let now = helpers::now();
    tokio::task::spawn_blocking(move || create_user(&db, &u, now))
        .await
        .expect("join")
        .expect("create user");
}

/// The usual cast: admin, an operator of canteen 0, finance, a community worker of choucheng.
pub async fn add_cast(app: &TestApp) {
    add_user(app, "admin", Role::Admin, &[], None).await;
    add_user(app, "op0", Role::Operator, &[app.canteens[0]], None).await;
    add_user(app, "fin", Role::Finance, &[], None).await;
    add_user(app, "cw", Role::Community, &[], Some("choucheng")).await;
}

/// A logged-in HTTP session: the cookie and the CSRF token.
pub struct Session {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
    pub client: Client,
}

pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", k, enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// POSTs the login form; returns the response (no redirects followed).
pub async fn post_login(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/login", app.server.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("name", name), ("password", password)]))
        .send()
        .await
        .expect("login")
}

pub async fn login(app: &TestApp, name: &str) -> Session {
    let resp = post_login(app, name, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login {name}");
    let set = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().expect("cookie").to_owned();
    let client = Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let mut s = Session {
        base: app.server.url(),
        cookie,
        csrf: String::new(),
        client,
    };
    let html = s.page("/admin/users").await.1;
    let html = if html.contains("name=\"csrf\"") {
        html
    } else {
        // every page has the log-out form; pick one each role may open
        let mut found = String::new();
        for p in ["/operator", "/finance", "/alerts"] {
            let (st, h) = s.page(p).await;
            if st == StatusCode::OK {
                found = h;
                break;
            }
        }
        found
    };
    s.csrf = csrf_of(&html).expect("a csrf token on the page");
    s
}

pub fn csrf_of(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[i..].split('"').next()?.to_owned())
}

impl Session {
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        (r.status(), r.text().await.unwrap_or_default())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(pairs))
            .send()
            .await
            .expect("POST")
    }
}
