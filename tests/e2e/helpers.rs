//! The real server (in-process, port 0, temp database, seeded through its HTTP API) and the real
//! kiosk (in-process through `zhucan_kiosk::run::start`, or the `zhucan-kiosk` binary), with LFW
//! and NUAA photos from `../shared/testdata/faces`.
//!
//! The kiosk runs with the calibrated liveness threshold (0.5): the LFW photos used here were
//! checked to pass it (news photos, not camera frames, so not all of them do; the ones chosen
//! score 0.9+ live and 0.7+ against their enrolled photo).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use zhucan_kiosk::config::{Config as KioskConfig, SourceConfig};
use zhucan_kiosk::run::Kiosk;
use zhucan_kiosk::screen::{Command, EnrolError, Mode};
use zhucan_kiosk::source::{QueueHandle, QueueSource};
use zhucan_platform::clock::{Clock, ShiftedClock};
use zhucan_server::config::{Config, FixedClock, IndexKey, Secret};
use zhucan_server::tls::TlsFiles;
use zhucan_server::{Spawned, spawn, spawn_tls};

pub const ADMIN: &str = "e2e-admin-token-0123456789";
pub const PIN: &str = "2468";
/// How long a test waits for a condition before it fails: generous, because a loaded 2-core
/// machine is slow; a passing test never waits this long (waits end when the condition holds).
pub const WAIT: Duration = Duration::from_secs(180);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn faces() -> PathBuf {
    let p = repo().join("../shared/testdata/faces");
    assert!(
        p.join("lfw/images.tsv").exists(),
        "end-to-end tests need the sample faces in {} (see CONTRIBUTING.md)",
        p.display()
    );
    p
}

/// Models and ONNX Runtime are found as `face/tests/face.rs` finds them; fail clearly otherwise.
pub fn models() -> PathBuf {
    let dir = repo().join("models");
    let from = zhucan_face::manifest::FetchSource::Dir(repo().join("../shared/models"));
    if let Err(e) = zhucan_face::manifest::verified_or_fetched(&dir, &from) {
        panic!("{e}");
    }
    if let Err(e) = zhucan_face::runtime::init(None) {
        panic!("ONNX Runtime is not available ({e}); run scripts/install-onnxruntime.sh");
    }
    dir
}

/// Server "now": 2026-03-15 12:00 in Shanghai.
pub fn server_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
        .single()
        .expect("time")
}

/// The kiosk's clock starts at 11:00 in Shanghai (lunch) and runs in real time.
pub fn kiosk_clock() -> Arc<dyn Clock> {
    Arc::new(ShiftedClock::starting_at(
        Utc.with_ymd_and_hms(2026, 3, 15, 3, 0, 0)
            .single()
            .expect("time"),
    ))
}

pub const KIOSK_CLOCK_START: &str = "2026-03-15T11:00:00+08:00";

/// One test person: the resident on the server and the photos the camera will see.
#[derive(Debug, Clone)]
pub struct Person {
    pub key: &'static str,
    pub enrol: &'static str,
    pub probe: &'static str,
    /// birth date, categories, local, prepaid
    pub birth: (i32, u32, u32),
    pub categories: &'static [&'static str],
    pub local: bool,
    pub prepaid: Option<i64>,
    /// What the Yiwu-style policy gives them for lunch.
    pub subsidy: i64,
}

pub fn people() -> Vec<Person> {
    vec![
        Person {
            key: "juanes",
            enrol: "lfw/images/Juanes_0001.jpg",
            probe: "lfw/images/Juanes_0003.jpg",
            birth: (1944, 5, 1),
            categories: &[],
            local: true,
            prepaid: Some(10_000),
            subsidy: 500,
        },
        Person {
            key: "okeefe",
            enrol: "lfw/images/Sean_OKeefe_0001.jpg",
            probe: "lfw/images/Sean_OKeefe_0004.jpg",
            birth: (1930, 1, 1),
            categories: &[],
            local: true,
            prepaid: None,
            subsidy: 800,
        },
        Person {
            key: "aziz",
            enrol: "lfw/images/Tariq_Aziz_0001.jpg",
            probe: "lfw/images/Tariq_Aziz_0005.jpg",
            birth: (1960, 1, 1),
            categories: &["dibao"],
            local: true,
            prepaid: None,
            subsidy: 800,
        },
        Person {
            key: "thaksin",
            enrol: "lfw/images/Thaksin_Shinawatra_0001.jpg",
            probe: "lfw/images/Thaksin_Shinawatra_0002.jpg",
            birth: (1951, 2, 2),
            categories: &[],
            local: false,
            prepaid: None,
            subsidy: 0,
        },
    ]
}

/// Never enrolled anywhere.
pub const STRANGERS: &[&str] = &[
    "lfw/images/Steve_Lavin_0002.jpg",
    "lfw/images/Martha_Burk_0002.jpg",
    "lfw/images/Zinedine_Zidane_0001.jpg",
];

/// NUAA subject 0002: enrolled from a live webcam frame, attacked with printed photos.
pub const NUAA_LIVE: &str = "spoof/nuaa/ClientRaw/0002/0002_01_00_01_14.jpg";
pub const NUAA_PRINTS: &[&str] = &[
    "spoof/nuaa/ImposterRaw/0002/0002_01_01_02_0.jpg",
    "spoof/nuaa/ImposterRaw/0002/0002_01_02_02_0.jpg",
    "spoof/nuaa/ImposterRaw/0002/0002_01_04_02_0.jpg",
];

pub struct TestServer {
    pub server: Option<Spawned>,
    pub addr: SocketAddr,
    /// HTTPS: the server's certificate files and the private CA that signed them.
    pub tls: Option<(TlsFiles, PathBuf)>,
    pub dir: tempfile::TempDir,
    pub client: Client,
    pub canteen: i64,
    /// Resident ids by `Person::key` order, then the NUAA subject last.
    pub residents: Vec<i64>,
    /// The test's own PostgreSQL database, when the tests run on PostgreSQL
    /// (`ZHUCAN_TEST_POSTGRES`): a restart finds the same one.
    pub pg: Option<zhucan_testkit::postgres::Database>,
}

fn server_config(
    dir: &Path,
    listen: SocketAddr,
    pg: Option<&zhucan_testkit::postgres::Database>,
) -> Config {
    Config {
        db: match pg {
            Some(pg) => zhucan_server::db::Location::Postgres(pg.url().to_owned()),
            None => dir.join("zhucan.sqlite").into(),
        },
        listen,
        admin_token: Secret::new(ADMIN),
        timezone: chrono_tz::Asia::Shanghai,
        index_key: IndexKey(vec![42; 32]),
        body_limit: 1024 * 1024,
        push: None,
        // The server's clock is frozen here, so a kiosk token bucket would never refill.
        security: zhucan_server::config::SecurityConfig {
            kiosk_per_minute: 0,
            ..Default::default()
        },
        // Every answer the kiosk gets is checked against the OpenAPI document.
        check_responses: true,
    }
}

/// The e2e residents' ID numbers: men's numbers from the shared generator.
pub fn national_id(birth: NaiveDate, seq: u32) -> String {
    zhucan_testkit::national_id(birth, seq, true)
}

impl TestServer {
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The private CA's certificate when the server speaks HTTPS.
    pub fn ca(&self) -> Option<&Path> {
        self.tls.as_ref().map(|(_, ca)| ca.as_path())
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url())
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let resp = self
            .client
            .post(self.api(path))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    pub async fn patch(&self, path: &str, body: &Value) {
        let resp = self
            .client
            .patch(self.api(path))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .expect("PATCH");
        assert!(
            resp.status().is_success(),
            "PATCH {path}: {}",
            resp.status()
        );
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(self.api(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.expect("json")
    }

    /// The canteen's meals of the test day: (resident id, subsidy) for every not voided meal.
    pub async fn tally(&self) -> Vec<(i64, i64)> {
        let t = self
            .get(&format!("/canteens/{}/tally?date=2026-03-15", self.canteen))
            .await;
        let mut out: Vec<(i64, i64)> = t["meals"]
            .as_array()
            .expect("meals")
            .iter()
            .filter(|m| !m["voided"].as_bool().unwrap_or(false))
            .map(|m| {
                (
                    m["resident_id"].as_i64().expect("resident"),
                    m["subsidy"].as_i64().expect("subsidy"),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// A one-time enrolment code for a new kiosk of the canteen.
    pub async fn enrolment_code(&self) -> String {
        let v = self
            .post(
                "/kiosks/enrolment-codes",
                &json!({ "canteen_id": self.canteen, "name": "counter" }),
            )
            .await;
        v["code"].as_str().expect("code").to_owned()
    }

    /// Stops the server (the database stays).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("stop");
        }
    }

    /// Starts it again on the same address and database.
    pub async fn restart(&mut self) {
        let mut last = None;
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let config = server_config(self.dir.path(), self.addr, self.pg.as_ref());
            let clock = Arc::new(FixedClock::new(server_now()));
            let spawned = match &self.tls {
                None => spawn(config, clock).await,
                Some((files, _)) => spawn_tls(config, clock, files).await,
            };
            match spawned {
                Ok(s) => {
                    self.server = Some(s);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server restart failed: {last:?}");
    }
}

/// Starts the server and seeds a town, the policy, one canteen, the residents of [`people`] and
/// the NUAA subject.
pub async fn server() -> TestServer {
    server_with(false).await
}

/// [`server`] over HTTPS, with a certificate for 127.0.0.1 from a private CA made for the test
/// (`zhucan-server gen-cert`'s code); the test's HTTP client trusts only that CA.
pub async fn tls_server() -> TestServer {
    server_with(true).await
}

/// The test server's address: a port no other socket takes while the server is stopped for a
/// restart ([`zhucan_testkit::reserved_port`]).
fn listen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], zhucan_testkit::reserved_port()))
}

async fn server_with(https: bool) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = zhucan_testkit::postgres::Database::fresh().expect("a PostgreSQL test database");
    let config = server_config(dir.path(), listen_addr(), pg.as_ref());
    let clock = Arc::new(FixedClock::new(server_now()));
    let (s, tls, client) = if https {
        let g = zhucan_server::tls::generate(&dir.path().join("tls"), &["127.0.0.1".into()], 2)
            .expect("certificates");
        let files = TlsFiles {
            cert: g.cert.clone(),
            key: g.key.clone(),
        };
        let s = spawn_tls(config, clock, &files)
            .await
            .expect("spawn server");
        let pem = std::fs::read(&g.ca).expect("ca.pem");
        let client = Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"))
            .build()
            .expect("client");
        (s, Some((files, g.ca)), client)
    } else {
        let s = spawn(config, clock).await.expect("spawn server");
        (s, None, Client::new())
    };
    let mut t = TestServer {
        addr: s.addr,
        server: Some(s),
        tls,
        dir,
        client,
        canteen: 0,
        residents: vec![],
        pg,
    };
    let [choucheng, _] = zhucan_testkit::city::towns();
    t.post("/towns", &choucheng).await;
    let resp = t
        .client
        .post(t.api("/policies"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(zhucan_testkit::city::POLICY)
        .send()
        .await
        .expect("policy");
    assert!(resp.status().is_success());
    let c = t
        .post("/canteens", &zhucan_testkit::city::care_centre())
        .await;
    t.canteen = c["id"].as_i64().expect("id");
    let mut all = people();
    all.push(Person {
        key: "nuaa",
        enrol: NUAA_LIVE,
        probe: NUAA_LIVE,
        birth: (1956, 6, 6),
        categories: &[],
        local: true,
        prepaid: None,
        subsidy: 0,
    });
    for (i, p) in all.into_iter().enumerate() {
        let (y, m, d) = p.birth;
        let (key, cats, local, prepaid) = (p.key, p.categories, p.local, p.prepaid);
        let birth = NaiveDate::from_ymd_opt(y, m, d).expect("date");
        let body = zhucan_testkit::city::Resident {
            name: format!("测试{key}"),
            national_id: national_id(birth, i as u32),
            local,
            categories: cats,
            card: format!("CARD-{key}"),
            prepaid,
            face: false,
        }
        .body();
        let r = t.post("/residents", &body).await;
        t.residents.push(r["id"].as_i64().expect("id"));
    }
    t
}

/// Loads a test photo.
pub fn photo(rel: &str) -> image::RgbImage {
    zhucan_face::image_io::load_rgb(&faces().join(rel)).expect("photo")
}

pub fn kiosk_config(data: &Path) -> KioskConfig {
    let mut c = KioskConfig::new(
        data,
        SourceConfig::Replay {
            list: None,
            root: None,
            files: vec![],
            interval_ms: 100,
            looping: false,
            repeat: 1,
        },
        PIN,
    );
    c.models_dir = Some(models());
    c.ui_listen = "127.0.0.1:0".parse().expect("addr");
    c.sync_interval_ms = 200;
    c.heartbeat_interval_ms = 1_000;
    c.backoff_cap_ms = 1_000;
    c
}

/// A kiosk driven frame by frame.
pub struct TestKiosk {
    pub kiosk: Kiosk,
    pub frames: QueueHandle,
}

/// Registers a kiosk with the server (as `zhucan-kiosk enrol-kiosk` does) and starts it.
pub async fn kiosk(server: &TestServer, data: &Path) -> TestKiosk {
    kiosk_with(server, data, |_| {}).await
}

/// [`kiosk`] with a changed configuration.
pub async fn kiosk_with(
    server: &TestServer,
    data: &Path,
    change: impl FnOnce(&mut KioskConfig),
) -> TestKiosk {
    let code = server.enrolment_code().await;
    zhucan_kiosk::run::enrol_kiosk(&server.url(), &code, data, server.ca())
        .await
        .expect("enrol kiosk");
    let mut config = kiosk_config(data);
    change(&mut config);
    start_kiosk_from(config).await
}

/// Starts an already registered kiosk and waits for its first sync.
pub async fn start_kiosk(data: &Path) -> TestKiosk {
    start_kiosk_from(kiosk_config(data)).await
}

async fn start_kiosk_from(config: KioskConfig) -> TestKiosk {
    let (source, frames) = QueueSource::new();
    let k = zhucan_kiosk::run::start(config, kiosk_clock(), Box::new(source))
        .await
        .expect("start kiosk");
    let store = k.store.clone();
    wait_for("the kiosk's first sync", WAIT, || {
        store.canteen().ok().flatten().is_some()
    })
    .await;
    TestKiosk { kiosk: k, frames }
}

pub async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestKiosk {
    /// Shows a photo for `n` frames, then `gap` empty frames (the person walks away).
    pub fn show(&self, rel: &str, n: usize, gap: usize) {
        let img = photo(rel);
        for _ in 0..n {
            assert!(self.frames.push(img.clone()));
        }
        let blank = image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
        for _ in 0..gap {
            assert!(self.frames.push(blank.clone()));
        }
    }

    /// Enrols a resident through the operator command, the photo held in front of the camera.
    pub async fn enrol(&self, resident: i64, rel: &str) -> Result<u32, EnrolError> {
        let (tx, rx) = oneshot::channel();
        self.kiosk
            .commands
            .send(Command::Enrol {
                pin: PIN.into(),
                resident_id: zhucan_domain::ResidentId(resident),
                consent_face: true,
                consent_sharing: false,
                reply: tx,
            })
            .await
            .expect("send enrol");
        let mut screen = self.kiosk.screen.clone();
        tokio::time::timeout(
            WAIT,
            screen.wait_for(|s| s.mode == Mode::Operator && s.message_en.starts_with("Enrolment:")),
        )
        .await
        .expect("operator mode")
        .expect("screen");
        self.show(rel, 5, 0);
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("enrol reply in time")
            .expect("reply")
    }

    /// Waits until the face loop has processed every queued frame, then (if `drained`) until
    /// the outbox is empty.
    pub async fn settle_down(&self, drained: bool) {
        let marker = image::RgbImage::from_pixel(64, 48, image::Rgb([0, 0, 0]));
        assert!(self.frames.push(marker));
        let frames = self.frames.clone();
        wait_for("the face loop to take every frame", WAIT, || {
            frames.pending() == 0
        })
        .await;
        if drained {
            let store = self.kiosk.store.clone();
            wait_for("the outbox to drain", WAIT, || {
                store
                    .outbox_counts()
                    .map(|c| c.backlog == 0)
                    .unwrap_or(false)
            })
            .await;
        }
    }
}
