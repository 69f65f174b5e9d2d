//! Crash safety: kill the real `zhucan-server serve` process (SIGKILL) while a kiosk is posting,
//! restart it, let the kiosk retry everything, and check nothing is lost or doubled.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::TimeZone;
use reqwest::Client;
use zhucan_domain::Method;
use zhucan_domain::api::{BatchResult, SettlementBatch, SettlementItem};
use zhucan_server::db::{self, Db};

use crate::helpers::ADMIN;

/// The server is killed and started again on this port: one no other test takes meanwhile.
fn free_port() -> u16 {
    zhucan_testkit::reserved_port()
}

async fn start(db: &std::path::Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhucan-server"))
        .arg("serve")
        .arg("--db")
        .arg(db)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("ZHUCAN_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zhucan-server");
    let client = Client::new();
    // generous: a debug server on a loaded machine may take long to start
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let health = client
            .get(format!("http://127.0.0.1:{port}/api/v1/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("zhucan-server did not come up on port {port}");
}

async fn post(client: &Client, port: u16, body: &[u8]) -> reqwest::Result<BatchResult> {
    client
        .post(format!("http://127.0.0.1:{port}/api/v1/settlements"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

#[tokio::test]
async fn killing_the_server_mid_write_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.sqlite");
    let (canteens, residents) = {
        let db = Db::open(&path).expect("db");
        zhucan_server::bench::setup(&db, 1, 300).expect("setup")
    };
    let tz = chrono_tz::Asia::Shanghai;
    // The server runs on the real clock: the meals are of the twelve days before today, within
    // the days a kiosk may send late.
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let mut bodies = Vec::new();
    for day in 1..=12 {
        let items: Vec<SettlementItem> = residents
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let local = today
                    .checked_sub_days(chrono::Days::new(day))
                    .and_then(|d| d.and_hms_opt(11, 0, (i % 60) as u32))
                    .expect("time");
                let served = tz.from_local_datetime(&local).single().expect("local");
                SettlementItem {
                    counter_price: None,
                    id: uuid::Uuid::now_v7(),
                    resident_id: *r,
                    canteen_id: canteens[0],
                    served_at: served.fixed_offset(),
                    method: Method::Staff,
                    match_score: None,
                    liveness_score: None,
                    delivered: false,
                    staff_reason: Some("entered on the server".into()),
                    proxy_carer_id: None,
                    signed: None,
                }
            })
            .collect();
        for chunk in items.chunks(100) {
            bodies.push(
                serde_json::to_vec(&SettlementBatch {
                    items: chunk.to_vec(),
                })
                .expect("json"),
            );
        }
    }
    let total = residents.len() * 12;

    // First run: post until a third of the batches are answered, then kill the process while the
    // next batches are in flight.
    let port = free_port();
    let mut child = start(&path, port).await;
    let client = Client::new();
    let mut answered = Vec::new();
    let kill_after = bodies.len() / 3;
    let mut inflight = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        if i < kill_after {
            answered.push(
                post(&client, port, body)
                    .await
                    .expect("answered before the kill"),
            );
        } else if i < kill_after + 4 {
            let (c, b) = (client.clone(), body.clone());
            inflight.push(tokio::spawn(async move { post(&c, port, &b).await }));
        }
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    for t in inflight {
        let _ = t.await;
    }

    // Second run: the kiosk retries every batch.
    let port = free_port();
    let mut child = start(&path, port).await;
    let mut replayed = Vec::new();
    for body in &bodies {
        replayed.push(
            post(&client, port, body)
                .await
                .expect("answered after restart"),
        );
    }
    child.kill().expect("stop");
    let _ = child.wait();

    for (before, after) in answered.iter().zip(&replayed) {
        assert_eq!(before, after, "an answer given before the crash changed");
    }
    let accepted = replayed
        .iter()
        .flat_map(|b| &b.results)
        .filter(|r| r.meal.is_some())
        .count();
    assert_eq!(accepted, total);
    let db = Db::open(&path).expect("reopen");
    assert_eq!(
        db.read_sync(db::settlements::counts).expect("counts"),
        (total as i64, 0)
    );
}
