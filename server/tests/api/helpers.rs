//! `spawn_app()` and the fixtures the tests share: a small town with two canteens, the Yiwu-style
//! policy, a few residents of known ages and categories, and a kiosk per canteen with its own
//! Ed25519 key pair. Posting as a kiosk signs every item in chain order, as a real kiosk does.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use zhucan_domain::api::encode_embedding;
use zhucan_server::config::{Clock, Config, FixedClock, IndexKey, Secret};
use zhucan_server::{Spawned, spawn};

pub const ADMIN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub server: Spawned,
    pub client: Client,
    /// The server's clock; tests may move it.
    #[allow(dead_code)]
    pub clock: Arc<FixedClock>,
    _dir: tempfile::TempDir,
    /// Canteen ids: [0] lunch+dinner in choucheng, [1] lunch only in fotang.
    pub canteens: Vec<i64>,
    /// Resident ids: see `seed`.
    pub residents: Vec<i64>,
    /// Kiosk tokens, one per canteen.
    pub kiosks: Vec<String>,
    /// Kiosk ids, one per canteen.
    #[allow(dead_code)]
    pub kiosk_ids: Vec<i64>,
    /// Each kiosk's key pair and chain position.
    pub chains: Vec<Mutex<Chain>>,
    /// The test's own PostgreSQL database, when the tests run on PostgreSQL
    /// (`ZHUCAN_TEST_POSTGRES`); dropped after the server (fields drop in order).
    pub pg: Option<zhucan_testkit::postgres::Database>,
}

use zhucan_testkit::city;
pub use zhucan_testkit::kiosk::{Chain, new_key, public_key, sign_item};
pub use zhucan_testkit::national_id;

/// "Now" for the tests: 2026-03-15 12:00 in Shanghai.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
        .single()
        .expect("valid time")
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        db: dir.join("zhucan.sqlite").into(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_token: Secret::new(ADMIN),
        timezone: chrono_tz::Asia::Shanghai,
        index_key: IndexKey(vec![42; 32]),
        body_limit: 1024 * 1024,
        push: None,
        // The fixtures' meals are weeks old ("now" is 2026-03-15, most meals February): the
        // default four-eyes age (7 days) would send every older test's void for approval. The
        // four-eyes tests (`corrections.rs`) set the rule they test.
        security: zhucan_server::config::SecurityConfig {
            four_eyes: zhucan_server::corrections::FourEyes {
                after_days: 3650,
                ..Default::default()
            },
            ..Default::default()
        },
        // Every answer of every API test is checked against the OpenAPI document.
        check_responses: true,
    }
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// A fresh UUIDv7.
pub fn v7() -> Uuid {
    Uuid::now_v7()
}

/// One kiosk item at local Shanghai time `local` ("2026-03-14T11:30:00").
pub fn item(id: Uuid, resident: i64, canteen: i64, local: &str) -> Value {
    json!({
        "id": id, "resident_id": resident, "canteen_id": canteen,
        "served_at": format!("{local}+08:00"), "method": "card"
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.url())
    }

    /// GET `path` as the administrator.
    pub async fn get(&self, path: &str) -> Response {
        self.get_as(ADMIN, path).await
    }

    /// POST `body` to `path` as the administrator.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(ADMIN, path, body).await
    }

    /// PATCH `path` with `body` as the administrator.
    pub async fn patch_admin(&self, path: &str, body: &Value) -> Response {
        self.send_as(ADMIN, self.client.patch(self.url(path)), Some(body))
            .await
    }

    /// GET `path` with `token` (a kiosk's, or any other credential).
    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        self.send_as(token, self.client.get(self.url(path)), None)
            .await
    }

    /// POST `body` to `path` with `token`.
    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.send_as(token, self.client.post(self.url(path)), Some(body))
            .await
    }

    /// PUT `body` to `path` as the administrator.
    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send_as(ADMIN, self.client.put(self.url(path)), Some(body))
            .await
    }

    /// PUT `body` to `path` with `token`.
    pub async fn put_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.send_as(token, self.client.put(self.url(path)), Some(body))
            .await
    }

    /// DELETE `path` with `token`.
    pub async fn delete_as(&self, token: &str, path: &str) -> Response {
        self.send_as(token, self.client.delete(self.url(path)), None)
            .await
    }

    /// `method` `path` with `token`, no body.
    pub async fn request_as(&self, token: &str, method: &str, path: &str) -> Response {
        let method = method.parse().expect("an HTTP method");
        self.send_as(token, self.client.request(method, self.url(path)), None)
            .await
    }

    /// GET `path` with `token` and the `query` pairs (encoded).
    pub async fn get_query_as(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Response {
        self.send_as(token, self.client.get(self.url(path)).query(query), None)
            .await
    }

    /// POST a JSON document as text (a policy, kept byte for byte) as the administrator.
    pub async fn post_text(&self, path: &str, body: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("POST")
    }

    async fn send_as(
        &self,
        token: &str,
        req: reqwest::RequestBuilder,
        body: Option<&Value>,
    ) -> Response {
        let req = req.bearer_auth(token);
        let req = match body {
            Some(b) => req.json(b),
            None => req,
        };
        req.send().await.expect("request")
    }

    /// Posts a batch as kiosk `k` (its canteen is `canteens[k]`), each item signed in chain
    /// order with the kiosk's key. The chain moves on only when the batch is answered (200).
    pub async fn settle(&self, k: usize, items: Vec<Value>) -> Response {
        let mut chain = self.chains[k].lock().expect("chain").clone();
        let items: Vec<Value> = items.iter().map(|i| chain.sign(i)).collect();
        let resp = self.settle_raw(k, items).await;
        if resp.status() == StatusCode::OK {
            *self.chains[k].lock().expect("chain") = chain;
        }
        resp
    }

    /// Posts items exactly as given (no signing) as kiosk `k`.
    pub async fn settle_raw(&self, k: usize, items: Vec<Value>) -> Response {
        self.client
            .post(self.url("/settlements"))
            .bearer_auth(&self.kiosks[k])
            .json(&json!({ "items": items }))
            .send()
            .await
            .expect("POST settlements")
    }

    /// Posts a batch and returns its results, asserting 200.
    pub async fn settle_ok(&self, k: usize, items: Vec<Value>) -> Vec<Value> {
        let resp = self.settle(k, items).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("json");
        body["results"].as_array().expect("results").clone()
    }

    /// Posts a batch the way a kiosk sends it, on the evening of the day its meals were
    /// served (`day`, "2026-02-10", 20:00 Shanghai), so it is neither late nor backdated; the
    /// clock goes back to where it was.
    pub async fn settle_on_the_day(&self, k: usize, day: &str, items: Vec<Value>) -> Vec<Value> {
        let before = self.clock.now();
        let evening = DateTime::parse_from_rfc3339(&format!("{day}T20:00:00+08:00"))
            .expect("day is YYYY-MM-DD")
            .with_timezone(&Utc);
        self.clock.set(evening);
        let results = self.settle_ok(k, items).await;
        self.clock.set(before);
        results
    }

    /// The statement of `month` without its heads: those are where the audit log ends, and
    /// reading a statement is itself audited, so they move on every read.
    #[allow(dead_code)]
    pub async fn books_of(&self, month: &str) -> Value {
        let mut s = self.json(&format!("/statements?month={month}")).await;
        s.as_object_mut().map(|o| o.remove("heads"));
        s
    }

    pub async fn json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.expect("json")
    }

    /// An insider who holds the database itself (the SQLite file; the PostgreSQL database as its
    /// superuser) runs `sql` with the database's own guards off: on SQLite the named
    /// `triggers` are dropped first (and stay dropped) and foreign keys are off; on PostgreSQL
    /// every trigger and foreign key is off for that session (`session_replication_role`), so
    /// the names are not needed there.
    pub fn tamper(&self, triggers: &[&str], sql: &str) {
        match &self.pg {
            Some(pg) => {
                pg.tamper(sql).expect("tamper");
            }
            None => {
                let conn = rusqlite::Connection::open(self.server.db.path()).expect("open");
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .expect("busy");
                conn.pragma_update(None, "foreign_keys", "OFF")
                    .expect("pragma");
                for t in triggers {
                    conn.execute_batch(&format!("DROP TRIGGER {t}"))
                        .expect("drop trigger");
                }
                conn.execute_batch(sql).expect("tamper");
            }
        }
    }

    /// Runs `sql` as the database's owner with every guard on: the error, if refused.
    pub fn sql(&self, sql: &str) -> Result<(), String> {
        match &self.pg {
            Some(pg) => pg.sql(sql).map(drop).map_err(|e| format!("{e:#}")),
            None => {
                let conn = rusqlite::Connection::open(self.server.db.path()).expect("open");
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .expect("busy");
                conn.execute_batch(sql).map_err(|e| e.to_string())
            }
        }
    }

    /// What a leaked copy of the database holds: each SQLite file (main, WAL, shared memory) as it is, or a
    /// `pg_dump` of the PostgreSQL database.
    pub fn database_files(&self) -> Vec<(String, Vec<u8>)> {
        match &self.pg {
            Some(pg) => vec![("pg_dump".to_owned(), pg.dump().expect("pg_dump"))],
            None => {
                let path = self.server.db.path();
                ["", "-wal", "-shm"]
                    .iter()
                    .filter_map(|suffix| {
                        let mut p = path.as_os_str().to_owned();
                        p.push(suffix);
                        let p = std::path::PathBuf::from(p);
                        std::fs::read(&p).ok().map(|b| (p.display().to_string(), b))
                    })
                    .collect()
            }
        }
    }

    /// (settlements, adjustments) row counts.
    pub async fn counts(&self) -> (i64, i64) {
        self.server
            .db
            .read(zhucan_server::db::settlements::counts)
            .await
            .expect("counts")
    }
}

pub async fn created(resp: Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The server's log goes to the test's captured output (shown when a test fails: a 500 shows its
/// logged cause, inside the span of the request's route). Once per test binary.
pub fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("zhucan_server=info,tower_http=info")
        .with_test_writer()
        .try_init();
}

/// When the tests run on PostgreSQL (`ZHUCAN_TEST_POSTGRES`, set by `scripts/test-postgres`):
/// a fresh database of the test's own in `cfg`, and its guard.
pub fn on_postgres(cfg: &mut Config) -> Option<zhucan_testkit::postgres::Database> {
    let pg = zhucan_testkit::postgres::Database::fresh().expect("a PostgreSQL test database")?;
    cfg.db = zhucan_server::db::Location::Postgres(pg.url().to_owned());
    Some(pg)
}

/// Starts the server with the fixtures in place, on the test run's database (SQLite, or
/// PostgreSQL under `scripts/test-postgres`).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] on an SQLite file whatever the run's database: for the tests of what only an
/// SQLite file has (its file modes, its free pages, its migrations from old versions).
#[allow(dead_code)]
pub async fn spawn_sqlite_app() -> TestApp {
    start(false, |_| {}).await
}

/// [`spawn_app`] with a changed configuration.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    start(true, change).await
}

async fn start(either: bool, change: impl FnOnce(&mut Config)) -> TestApp {
    capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(FixedClock::new(now()));
    let mut cfg = config(dir.path());
    let pg = if either { on_postgres(&mut cfg) } else { None };
    change(&mut cfg);
    let server = spawn(cfg, clock.clone()).await.expect("spawn");
    let mut app = TestApp {
        server,
        client: Client::new(),
        clock,
        _dir: dir,
        canteens: vec![],
        residents: vec![],
        kiosks: vec![],
        kiosk_ids: vec![],
        chains: vec![],
        pg,
    };
    for town in city::towns() {
        created(app.post("/towns", &town).await).await;
    }
    created(app.post_text("/policies", city::POLICY).await).await;
    let c1 = created(app.post("/canteens", &city::care_centre()).await).await;
    let c2 = created(app.post("/canteens", &city::station()).await).await;
    app.canteens = vec![
        c1["id"].as_i64().expect("id"),
        c2["id"].as_i64().expect("id"),
    ];
    // 0: 81 years old (age_80, 5 yuan), prepaid 100 yuan; 1: 96 (age_90, 8 yuan);
    // 2: 66 with 低保 (dibao_gugua, 8 yuan); 3: 75 but not local (no subsidy);
    // 4: 70, face enrolled with consent.
    let people = [
        (date(1944, 5, 1), true, vec![], true, Some(10_000), false),
        (date(1930, 1, 1), false, vec![], true, None, false),
        (date(1960, 1, 1), true, vec!["dibao"], true, None, false),
        (date(1951, 2, 2), false, vec![], false, None, false),
        (date(1956, 6, 6), true, vec![], true, None, true),
    ];
    for (i, (birth, male, cats, local, prepaid, face)) in people.into_iter().enumerate() {
        let body = city::Resident {
            name: format!("测试老人{i}"),
            national_id: national_id(birth, i as u32, male),
            local,
            categories: &cats,
            card: format!("CARD{i}"),
            prepaid,
            face,
        }
        .body();
        let r = created(app.post("/residents", &body).await).await;
        app.residents.push(r["id"].as_i64().expect("id"));
    }
    for (i, c) in app.canteens.clone().into_iter().enumerate() {
        let key = new_key();
        let k = created(
            app.post(
                "/kiosks",
                &json!({ "canteen_id": c, "name": format!("k{i}"), "public_key": public_key(&key) }),
            )
            .await,
        )
        .await;
        app.kiosks
            .push(k["token"].as_str().expect("token").to_owned());
        app.kiosk_ids.push(k["id"].as_i64().expect("id"));
        app.chains.push(Mutex::new(Chain::new(key)));
    }
    app
}

/// A deterministic unit-length embedding of `dim` values.
pub fn embedding(seed: u32, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    let v: Vec<f32> = (0..dim)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((x >> 8) as f32 / (1u32 << 24) as f32) - 0.5
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / n).collect()
}

/// The body of `PUT /residents/{id}/templates`: face consent given, sharing as asked.
pub fn upload_body(sharing: bool, embeddings: &[Vec<f32>]) -> Value {
    json!({
        "consent_face_enrolment": true,
        "consent_template_sharing": sharing,
        "by": "王芳",
        "model": "w600k_mbf.onnx",
        "embeddings": embeddings.iter().map(|e| encode_embedding(e)).collect::<Vec<_>>(),
    })
}

/// `PUT /residents/{resident}/templates` with `token`.
pub async fn upload(app: &TestApp, token: &str, resident: i64, body: &Value) -> Response {
    app.client
        .put(app.url(&format!("/residents/{resident}/templates")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("PUT templates")
}

/// `PATCH /residents/{resident}` as the administrator; the change must succeed.
pub async fn patch(app: &TestApp, resident: i64, body: Value) -> Value {
    let resp = app
        .patch_admin(&format!("/residents/{resident}"), &body)
        .await;
    let status = resp.status();
    let v: Value = resp.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

// --- policy for real cities (issue 13): a district level, counter prices, delivery lines ---

/// A Zhuhai-shaped policy in force from March 2026 (it replaces the fixtures' Yiwu policy then):
/// city ¥3 per lunch, a district top-up of ¥3 at a canteen of the elder's own district
/// (county-funded), a ¥2 delivery subsidy for 60+, a minimum meal price of ¥10, and ¥2 per
/// subsidised meal to the canteen.
pub const CITY_POLICY: &str = r#"{
  "id": "city-rules", "version": 1, "name": "市区两级助餐补贴（测试）",
  "effective_from": "2026-03-01", "subsidy_town": "registration",
  "tiers": [
    { "code": "city", "name": "市级补贴", "conditions": { "min_age": 60 },
      "benefit": { "per_meal": { "lunch": 300 } },
      "funding": [ { "source": "city", "percent": 100 } ], "caps": { "per_day": 1 } }
  ],
  "stacked": [
    { "code": "district", "name": "区级补贴", "conditions": { "min_age": 60, "own_district": true },
      "benefit": { "per_meal": { "lunch": 300 } },
      "funding": [ { "source": "county", "percent": 100 } ], "caps": { "per_day": 1 } }
  ],
  "min_price": 1000,
  "delivery": { "subsidies": [
    { "code": "elder", "name": "60岁以上送餐补助", "conditions": { "min_age": 60 }, "fen": 200,
      "funding": [ { "source": "city", "percent": 100 } ] } ] },
  "operating": { "fen": 200, "per": "meal", "source": "city" }
}"#;

pub struct City {
    /// The canteen in 拱北 (香洲区), its kiosk's index in the app.
    pub canteen: i64,
    pub kiosk: usize,
    /// Registered in 吉大 (香洲区): eats in her own district, another town.
    pub same_district: i64,
    /// Registered in 三灶 (金湾区): eats in another district.
    pub other_district: i64,
}

pub async fn city(app: &mut TestApp) -> City {
    for (code, name) in [("xiangzhou", "香洲区"), ("jinwan", "金湾区")] {
        created(
            app.post("/districts", &json!({ "code": code, "name": name }))
                .await,
        )
        .await;
    }
    for (code, name, district) in [
        ("gongbei", "拱北街道", "xiangzhou"),
        ("jida", "吉大街道", "xiangzhou"),
        ("sanzao", "三灶镇", "jinwan"),
    ] {
        let town = json!({ "code": code, "name": name, "district": district });
        assert_eq!(created(app.post("/towns", &town).await).await, town);
    }
    let towns = app.json("/towns").await;
    assert!(
        towns
            .as_array()
            .expect("towns")
            .iter()
            .any(|t| t["code"] == "jida" && t["district"] == "xiangzhou"),
        "{towns}"
    );
    let resp = app.post_text("/policies", CITY_POLICY).await;
    created(resp).await;
    let canteen = created(
        app.post(
            "/canteens",
            &json!({
                "name": "拱北长者饭堂", "kind": "care_centre", "town": "gongbei",
                "operator": "拱北社区", "operator_kind": "village_run",
                "slots": [{ "slot": "lunch", "start": "10:30:00", "end": "13:00:00",
                            "price": 2000, "price_min": 1000, "price_max": 3000 }],
                "delivery_surcharge": 300
            }),
        )
        .await,
    )
    .await;
    assert_eq!(canteen["district"], "xiangzhou");
    assert_eq!(canteen["slots"][0]["price_max"], 3000);
    let canteen = canteen["id"].as_i64().expect("id");
    let mut residents = Vec::new();
    for (i, town) in ["jida", "sanzao"].into_iter().enumerate() {
        let birth = date(1950, 1, 1);
        let body = json!({
            "name": format!("珠海老人{i}"),
            "national_id": national_id(birth, 50 + i as u32, true),
            "local_registration": true,
            "registered_town": town, "residence_town": town,
            "card_code": format!("ZH{i}"),
            "consent": { "face_enrolment": false, "template_sharing": false }
        });
        residents.push(
            created(app.post("/residents", &body).await).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let key = new_key();
    let k = created(
        app.post(
            "/kiosks",
            &json!({ "canteen_id": canteen, "name": "拱北", "public_key": public_key(&key) }),
        )
        .await,
    )
    .await;
    app.kiosks
        .push(k["token"].as_str().expect("token").to_owned());
    app.kiosk_ids.push(k["id"].as_i64().expect("id"));
    app.chains.push(std::sync::Mutex::new(Chain::new(key)));
    City {
        canteen,
        kiosk: app.kiosks.len() - 1,
        same_district: residents[0],
        other_district: residents[1],
    }
}

pub fn meal(resident: i64, canteen: i64, local: &str, extra: Value) -> Value {
    let mut item = item(v7(), resident, canteen, local);
    for (k, v) in extra.as_object().expect("object") {
        item[k] = v.clone();
    }
    item
}
