//! The push to the city platform: signed, retried while the receiver is down, de-duplicable.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use zhucan_server::config::{PushConfig, Secret};

use crate::helpers::{item, spawn_app_with, v7};
use zhucan_testkit::WAIT;

const SECRET: &str = "a-shared-secret-for-the-city";

type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver(listener: tokio::net::TcpListener, got: Got) {
    let app = Router::new().route(
        "/push",
        post(move |h: HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                if let Ok(mut g) = got.lock() {
                    g.push((h, body));
                }
                "ok"
            }
        }),
    );
    let _ = axum::serve(listener, app).await;
}

#[tokio::test]
async fn push_survives_the_receiver_being_down_and_signs_every_message() {
    // Reserve a port for the receiver, but do not listen on it yet (one no other test takes).
    let port = zhucan_testkit::reserved_port();
    let url = format!("http://127.0.0.1:{port}/push");
    let app = spawn_app_with(|c| {
        c.push = Some(PushConfig {
            url: url.clone(),
            secret: Secret::new(SECRET),
            poll: Duration::from_millis(50),
        });
    })
    .await;
    let (c0, r) = (app.canteens[0], &app.residents);
    let (a, b) = (v7(), v7());
    app.settle_ok(
        0,
        vec![
            item(a, r[0], c0, "2026-03-15T11:00:00"),
            item(b, r[1], c0, "2026-03-15T11:01:00"),
        ],
    )
    .await;
    let void = app
        .post(
            &format!("/settlements/{a}/void"),
            &serde_json::json!({ "reason": "录错" }),
        )
        .await;
    assert!(void.status().is_success());

    // The receiver is down: attempts fail and nothing is marked delivered.
    let start = std::time::Instant::now();
    loop {
        let (rows, pending, delivered) = app
            .server
            .db
            .read(|c| zhucan_server::db::push::log(c, 10))
            .await
            .expect("log");
        assert_eq!((pending, delivered), (3, 0));
        if rows
            .iter()
            .any(|r| r.attempts >= 1 && r.last_error.is_some())
        {
            break;
        }
        assert!(start.elapsed() < WAIT, "the push worker never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // It comes up; once the backoff has passed (the injected clock), everything arrives.
    let got: Got = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the reserved port");
    tokio::spawn(receiver(listener, got.clone()));
    app.clock
        .set(crate::helpers::now() + chrono::Duration::hours(2));
    let start = std::time::Instant::now();
    loop {
        let n = got.lock().map(|g| g.len()).unwrap_or(0);
        if n >= 3 {
            break;
        }
        assert!(start.elapsed() < WAIT, "only {n} messages arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = got.lock().expect("lock").clone();
    let mut seen = HashSet::new();
    for (h, body) in &got {
        let sig = h["x-zhucan-signature"].to_str().expect("sig");
        let stamp: i64 = h["x-zhucan-timestamp"]
            .to_str()
            .expect("timestamp")
            .parse()
            .expect("unix seconds");
        assert_eq!(
            sig,
            zhucan_server::push::signature(SECRET.as_bytes(), stamp, body)
        );
        assert_ne!(
            sig,
            zhucan_server::push::signature(SECRET.as_bytes(), stamp + 1, body),
            "the timestamp is signed"
        );
        let v: Value = serde_json::from_slice(body).expect("json");
        let id = v["id"].as_str().expect("stable id").to_owned();
        let kind = v["kind"].as_str().expect("kind").to_owned();
        assert!(id == a.to_string() || id == b.to_string());
        assert!(v["subsidy_fen"].is_i64());
        seen.insert((id, kind));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.contains(&(a.to_string(), "void".to_owned())));
    let (_, pending, delivered) = app
        .server
        .db
        .read(|c| zhucan_server::db::push::log(c, 10))
        .await
        .expect("log");
    assert_eq!((pending, delivered), (0, 3));
}
