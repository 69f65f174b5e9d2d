//! `zhucan-server bench`: (a) settlements ingested per second through real HTTP, in batches of
//! 100, into a file database, each item signed and chained like a kiosk does (signing happens
//! before the clock starts; the server's verification is timed); (b) the time to build a month's
//! statement, with its kiosk-chain section, over 1,000,000 signed settlements from 40 kiosks
//! (bulk-inserted first through the storage layer's own inserts), and the time of one kiosk's
//! full chain re-verification.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rand::SeedableRng;
use rand::rngs::StdRng;
use zhucan_domain::api::{
    BatchResult, ItemResult, ItemStatus, MealDecision, NewCanteen, SettlementBatch, SettlementItem,
    SlotDto, TownDto,
};
use zhucan_domain::canteen::{CanteenKind, OperatorKind};
use zhucan_domain::resident::Consent;
use zhucan_domain::settle::{Accepted, Decision, Eligibility, Funding};
use zhucan_domain::signing;
use zhucan_domain::{
    CanteenId, Category, Fen, Method, Payment, Policy, PolicyRef, ResidentId, ResidentStatus, Sex,
    Slot, TownCode,
};

use crate::config::{Clock, Config, IndexKey, Secret, SystemClock};
use crate::crypto::{new_token, sha256_hex};
use crate::db::{self, Db, residents::NewResidentRow, statements::Filter};
use crate::demo::{Signer, uuid_v7};
use crate::reports;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The figures the bench prints.
#[derive(Debug, Clone)]
pub struct Figures {
    pub ingested: usize,
    pub ingest_secs: f64,
    pub per_second: f64,
    pub bulk_rows: usize,
    pub bulk_secs: f64,
    pub statement_secs: f64,
    pub statement_canteens: usize,
    pub statement_residents: usize,
    pub statement_total: Fen,
    /// Kiosk chain lines in the statement, all verified.
    pub statement_chains: usize,
    /// One kiosk's full re-verification: records checked and seconds.
    pub reverify_records: u64,
    pub reverify_secs: f64,
    /// The month's audit red flags over the same settlements: seconds and how many.
    pub flags_secs: f64,
    pub flags: usize,
    /// The statement's books check (every row's MAC) alone.
    pub books_secs: f64,
}

fn t(h: u32, m: u32) -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// The bench databases' secret key: the numbers are sealed and the statement opens them, as in
/// production.
const BENCH_KEY: &[u8] = &[7; 32];

/// Sets up towns, `canteens` canteens, the Yiwu policy and `residents` residents.
pub fn setup(
    db: &Db,
    canteens: usize,
    residents: usize,
) -> db::Result<(Vec<CanteenId>, Vec<ResidentId>)> {
    // the residents' made-up face templates
    let mut faces = StdRng::seed_from_u64(8);
    let at = zhucan_platform::stamp(SystemClock.now());
    db.write_blocking(|tx| {
        db::towns::insert(
            tx,
            &TownDto {
                district: None,
                code: "choucheng".into(),
                name: "稠城街道".into(),
            },
        )?;
        let p = Policy::example_yiwu();
        db::policies::insert(
            tx,
            &p,
            &serde_json::to_string(&p).map_err(db::Error::other)?,
            &at,
        )?;
        let mut cids = Vec::new();
        for i in 0..canteens {
            cids.push(db::canteens::insert(
                tx,
                &NewCanteen {
                    name: format!("食堂{i}"),
                    kind: CanteenKind::CareCentre,
                    town: "choucheng".into(),
                    operator: "bench".into(),
                    operator_kind: OperatorKind::VillageRun,
                    slots: vec![
                        SlotDto {
                            price_min: None,
                            price_max: None,
                            slot: Slot::Lunch,
                            start: t(10, 30),
                            end: t(13, 0),
                            price: Fen(1200),
                        },
                        SlotDto {
                            price_min: None,
                            price_max: None,
                            slot: Slot::Dinner,
                            start: t(16, 30),
                            end: t(18, 30),
                            price: Fen(1000),
                        },
                    ],
                    delivery_surcharge: None,
                },
                &at,
            )?);
        }
        let mut rids = Vec::new();
        let birth0 = NaiveDate::from_ymd_opt(1935, 1, 1).unwrap_or_default();
        for i in 0..residents {
            let birth = birth0 + Duration::days((i % 9000) as i64);
            let sex = if i % 2 == 0 { Sex::Male } else { Sex::Female };
            // one number per resident: the birth date repeats every 9,000 residents, the
            // sequence number tells them apart (a random one collides in a city this size)
            let body = format!(
                "330782{}{:03}",
                birth.format("%Y%m%d"),
                (i / 9000) * 2 + usize::from(sex == Sex::Male)
            );
            let check = zhucan_domain::NationalId::check_digit(&body)
                .ok_or_else(|| db::Error::other("17 digits"))?;
            let nid = zhucan_domain::NationalId::parse(&format!("{body}{check}"))
                .map_err(db::Error::other)?;
            let (index, nonce, ciphertext) =
                crate::crypto::seal_national_id(BENCH_KEY, &nid).map_err(db::Error::other)?;
            let row = NewResidentRow {
                name: format!("老人{i}"),
                sex,
                birth_date: birth,
                national_id_index: index,
                national_id_sealed: Some(db::Sealed { nonce, ciphertext }),
                local_registration: true,
                registered_town: "choucheng".into(),
                residence_town: "choucheng".into(),
                categories: if i % 20 == 0 {
                    [Category::new(Category::DIBAO)].into()
                } else {
                    Default::default()
                },
                status: ResidentStatus::Active,
                card_code: format!("B{i:08}"),
                designated_canteen: None,
                prepaid_balance: (i % 10 == 0).then_some(Fen(1_000_000)),
                consent: Consent {
                    face_enrolment: true,
                    template_sharing: true,
                },
                face_enrolled: true,
            };
            let rid = db::residents::insert(tx, &row, &at, "bench")?;
            // the server settles a face meal only for a face it holds a template of
            let v: Vec<f32> = (0..192)
                .map(|_| rand::Rng::random_range(&mut faces, -1.0..1.0))
                .collect();
            let sealed =
                crate::templates::seal_all(&crate::crypto::template_key(BENCH_KEY), rid, &[v])
                    .map_err(db::Error::other)?;
            db::templates::replace(
                tx,
                &db::templates::NewSet {
                    resident_id: rid,
                    enrolled_canteen: cids[0],
                    model: crate::demo::DEMO_TEMPLATE_MODEL,
                    dim: 192,
                    sealed: &sealed,
                    kiosk_id: None,
                },
                &at,
            )?;
            rids.push(rid);
        }
        Ok((cids, rids))
    })
}

fn temp_dir() -> Result<PathBuf, BoxError> {
    let dir = std::env::temp_dir().join(format!("zhucan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The signed batches of (a), ready to post: one queue per kiosk, in chain order.
pub struct Prepared {
    pub kiosks: Vec<i64>,
    queues: Vec<Vec<Vec<u8>>>,
    tokens: Vec<String>,
    pub total: usize,
    /// 20:00 on the last day of meals: the servers' clock.
    pub evening: chrono::DateTime<Utc>,
}

/// The kiosks that post in (a), concurrently.
const KIOSKS: usize = 4;

/// Sets up (a)'s city on `db` (one canteen, `residents` residents, [`KIOSKS`] kiosks) and signs
/// `days` days of lunches for everyone, in batches of 100.
pub fn prepare(db: &Db, residents: usize, days: usize) -> Result<Prepared, BoxError> {
    let tz: Tz = chrono_tz::Asia::Shanghai;
    let (cids, rids) = setup(db, 1, residents)?;
    let mut rng = StdRng::seed_from_u64(11);
    let mut signers: Vec<Signer> = (0..KIOSKS).map(|_| Signer::new(&mut rng)).collect();
    let tokens: Vec<String> = (0..KIOSKS).map(|_| new_token()).collect();
    let at = zhucan_platform::stamp(SystemClock.now());
    let cid = cids[0];
    let kiosks = db.write_blocking(|tx| {
        let mut ids = Vec::new();
        for (i, (token, signer)) in tokens.iter().zip(&signers).enumerate() {
            let h = sha256_hex(token.as_bytes());
            let name = format!("bench{i}");
            ids.push(db::kiosks::insert(
                tx,
                cid,
                &name,
                &h,
                &signer.public_key(),
                &at,
            )?);
        }
        Ok(ids)
    })?;
    // The servers' clock stands at 20:00 on the last day of meals: the kiosks send the days'
    // meals within the lateness limits, as they do in a city (with the system clock, March's
    // meals would be refused as backdated).
    let evening = tz
        .from_local_datetime(
            &(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default()
                + Duration::days(days.saturating_sub(1) as i64))
            .and_time(t(20, 0)),
        )
        .earliest()
        .ok_or("bad local time")?
        .with_timezone(&chrono::Utc);
    // Kiosk w posts its batches in chain order, every item signed beforehand.
    let mut queues: Vec<Vec<Vec<u8>>> = (0..KIOSKS).map(|_| Vec::new()).collect();
    let mut batches = 0usize;
    let mut push = |items: Vec<SettlementItem>| -> Result<(), BoxError> {
        let w = batches % KIOSKS;
        let mut items = items;
        for it in &mut items {
            signers[w].sign(it);
        }
        queues[w].push(serde_json::to_vec(&SettlementBatch { items })?);
        batches += 1;
        Ok(())
    };
    let mut batch = Vec::with_capacity(100);
    let day0 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    for d in 0..days {
        for (i, rid) in rids.iter().enumerate() {
            let local = (day0 + Duration::days(d as i64)).and_time(t(11, 0))
                + Duration::seconds((i % 3600) as i64);
            let served = tz
                .from_local_datetime(&local)
                .earliest()
                .ok_or("bad local time")?;
            batch.push(SettlementItem {
                counter_price: None,
                id: uuid_v7(&mut rng, served.timestamp_millis() as u64),
                resident_id: *rid,
                canteen_id: cid,
                served_at: served.fixed_offset(),
                method: Method::Face,
                match_score: Some(0.8),
                liveness_score: Some(0.95),
                delivered: false,
                staff_reason: None,
                proxy_carer_id: None,
                signed: None,
            });
            if batch.len() == 100 {
                push(std::mem::take(&mut batch))?;
            }
        }
    }
    if !batch.is_empty() {
        push(batch)?;
    }
    Ok(Prepared {
        kiosks,
        queues,
        tokens,
        total: residents * days,
        evening,
    })
}

/// Posts the prepared batches, kiosk w to server `w % servers.len()`, all kiosks at once;
/// returns the seconds it took. Every meal must be accepted.
pub async fn post(p: Prepared, servers: &[String]) -> Result<f64, BoxError> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, (q, token)) in p.queues.into_iter().zip(p.tokens).enumerate() {
        let client = client.clone();
        let url = format!("{}/api/v1/settlements", servers[w % servers.len()]);
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0usize;
            for body in q {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?
                    .error_for_status()?;
                let r: BatchResult = resp.json().await?;
                accepted += r
                    .results
                    .iter()
                    .filter(|x| x.status == ItemStatus::Accepted)
                    .count();
            }
            Ok::<usize, reqwest::Error>(accepted)
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    if accepted != p.total {
        return Err(format!("expected {} accepted meals, got {accepted}", p.total).into());
    }
    Ok(secs)
}

/// Every kiosk's chain whole after (a).
async fn chains_whole(db: &Db, kiosks: Vec<i64>) -> Result<(), BoxError> {
    for k in kiosks {
        let problems = db.read(move |c| db::chain::problems(c, k)).await?;
        if !problems.is_empty() {
            return Err(format!("kiosk {k}'s chain is broken: {problems:?}").into());
        }
    }
    Ok(())
}

/// The bench servers' configuration.
pub fn server_config(db: db::Location, listen: std::net::SocketAddr) -> Config {
    Config {
        db,
        listen,
        admin_token: Secret::new(new_token()),
        timezone: chrono_tz::Asia::Shanghai,
        index_key: IndexKey(BENCH_KEY.to_vec()),
        body_limit: 4 * 1024 * 1024,
        push: None,
        // The bench measures ingestion: no per-kiosk rate limit.
        security: crate::config::SecurityConfig {
            kiosk_per_minute: 0,
            ..Default::default()
        },
        check_responses: false,
    }
}

/// (a) Settlements per second through HTTP, batches of 100, 4 kiosks posting at once, into an
/// SQLite file served by this process.
pub async fn ingest_over_http(
    dir: &Path,
    residents: usize,
    days: usize,
) -> Result<(usize, f64), BoxError> {
    let db_path = dir.join("ingest.sqlite");
    let db = Db::open_keyed(&db_path, BENCH_KEY, SystemClock.now())?;
    let p = tokio::task::spawn_blocking(move || prepare(&db, residents, days)).await??;
    let config = server_config(db_path.into(), "127.0.0.1:0".parse()?);
    let server = crate::spawn(config, Arc::new(crate::config::FixedClock::new(p.evening))).await?;
    let (kiosks, total) = (p.kiosks.clone(), p.total);
    let secs = post(p, &[server.url()]).await?;
    let db = server.db.clone();
    server.stop().await?;
    chains_whole(&db, kiosks).await?;
    Ok((total, secs))
}

/// Empties the PostgreSQL database at `url` (its `public` schema) for a fresh run.
pub async fn reset_postgres(url: &str) -> Result<(), BoxError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let conn = tokio::spawn(connection);
    client
        .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .await?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// (a) on PostgreSQL with `processes` server processes (`zhucan-server bench-serve`, this
/// binary) serving one database: returns the seconds.
pub async fn ingest_on_postgres(
    url: &str,
    processes: usize,
    residents: usize,
    days: usize,
) -> Result<f64, BoxError> {
    reset_postgres(url).await?;
    let db = Db::open_postgres(url, BENCH_KEY, 4).await?;
    let d = db.clone();
    let p = tokio::task::spawn_blocking(move || prepare(&d, residents, days)).await??;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..processes {
        // a free port, given back for the child to take
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = tokio::process::Command::new(&exe)
            .args(["bench-serve", "--db", url, "--listen"])
            .arg(addr.to_string())
            .arg("--at")
            .arg(p.evening.to_rfc3339())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        children.push(child);
        urls.push(format!("http://{addr}"));
    }
    let client = reqwest::Client::new();
    for u in &urls {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let up = client.get(format!("{u}/api/v1/health")).send().await;
            if up.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("bench server {u} did not start").into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let kiosks = p.kiosks.clone();
    let secs = post(p, &urls).await?;
    for mut c in children {
        let _ = c.kill().await;
    }
    chains_whole(&db, kiosks).await?;
    Ok(secs)
}

/// The PostgreSQL figures: (a) with 1, 2 and 4 server processes, and (b)'s month of
/// settlements copied from the SQLite bench database and its statement built there.
#[derive(Debug, Clone)]
pub struct PostgresFigures {
    /// (processes, settlements, seconds).
    pub ingest: Vec<(usize, usize, f64)>,
    pub copy_secs: f64,
    pub statement_secs: f64,
    pub books_secs: f64,
    pub statement_total: Fen,
}

/// Runs the PostgreSQL part against the empty database at `url`, with (b)'s SQLite database
/// in `dir`.
pub async fn run_postgres(
    url: &str,
    dir: &Path,
    residents: usize,
    days: usize,
    rows: usize,
) -> Result<PostgresFigures, BoxError> {
    let mut ingest = Vec::new();
    for processes in [1, 2, 4] {
        let secs = ingest_on_postgres(url, processes, residents, days).await?;
        ingest.push((processes, residents * days, secs));
    }
    reset_postgres(url).await?;
    let db = Db::open_postgres(url, BENCH_KEY, 4).await?;
    let start = Instant::now();
    let copied = crate::migrate_db::copy_only(&dir.join("statement.sqlite"), url).await?;
    let copy_secs = start.elapsed().as_secs_f64();
    if !copied.iter().all(|(_, a, b)| a == b) {
        return Err(format!("the copy differs: {copied:?}").into());
    }
    let start = Instant::now();
    let s = reports::statement_in_parallel(&db, "2026-03", &Filter::default()).await?;
    let statement_secs = start.elapsed().as_secs_f64();
    if s.total.meals != rows as i64 || !s.books.verified() {
        return Err(format!(
            "statement on PostgreSQL: {} meals, books verified {}",
            s.total.meals,
            s.books.verified()
        )
        .into());
    }
    if let Some(bad) = s.chains.iter().find(|c| c.status != "verified") {
        return Err(format!("chain of {} not verified on PostgreSQL", bad.kiosk_name).into());
    }
    let start = Instant::now();
    let books = db.read(|c| db::books::check(c, "2026-03")).await?;
    let books_secs = start.elapsed().as_secs_f64();
    if !books.verified() {
        return Err("books check failed on PostgreSQL".into());
    }
    Ok(PostgresFigures {
        ingest,
        copy_secs,
        statement_secs,
        books_secs,
        statement_total: s.total.subsidy,
    })
}

/// (b) Bulk-inserts `rows` accepted meals of March 2026 and times the statement.
pub fn statement_over(dir: &Path, rows: usize) -> Result<(f64, f64, StatementFigures), BoxError> {
    let db = Db::open_keyed(&dir.join("statement.sqlite"), BENCH_KEY, SystemClock.now())?;
    let (cids, rids) = setup(&db, 40, 20_000)?;
    let mut rng = StdRng::seed_from_u64(13);
    let tz: Tz = chrono_tz::Asia::Shanghai;
    let start = Instant::now();
    let day0 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    let received = zhucan_platform::stamp(SystemClock.now());
    // One kiosk per canteen; every meal is a signed record in its kiosk's chain.
    let mut signers: Vec<Signer> = cids.iter().map(|_| Signer::new(&mut rng)).collect();
    let kiosks: Vec<i64> = db.write_blocking(|tx| {
        cids.iter()
            .zip(&signers)
            .enumerate()
            .map(|(i, (c, sg))| {
                let token = sha256_hex(format!("bench-kiosk-{i}").as_bytes());
                db::kiosks::insert(
                    tx,
                    *c,
                    &format!("终端{i}"),
                    &token,
                    &sg.public_key(),
                    &received,
                )
            })
            .collect()
    })?;
    let policy = PolicyRef {
        id: "yiwu-style".into(),
        version: 1,
    };
    let chunk = 100_000;
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        db.write_blocking(|tx| {
            for k in done..done + n {
                let rid = rids[k % rids.len()];
                let ci = (k / 7) % cids.len();
                let cid = cids[ci];
                let day = day0 + Duration::days(((k / rids.len()) % 31) as i64);
                let dinner = (k / (rids.len() * 31)) % 2 == 1;
                let (slot, time, price) = if dinner {
                    (Slot::Dinner, t(17, 0), Fen(1000))
                } else {
                    (Slot::Lunch, t(11, 0), Fen(1200))
                };
                let local = day.and_time(time) + Duration::seconds((k % 3000) as i64);
                let served = tz
                    .from_local_datetime(&local)
                    .earliest()
                    .ok_or_else(|| db::Error::other("time"))?;
                let subsidy = Fen(if k % 20 == 0 { 800 } else { 300 });
                let decision = Decision::Accepted(Accepted {
                    delivery_fee: Fen::ZERO,
                    delivery_subsidy: Fen::ZERO,
                    stacked: Vec::new(),
                    stacked_subsidy: Fen::ZERO,
                    operating: Fen::ZERO,
                    operating_source: None,
                    date: day,
                    slot,
                    price,
                    subsidy,
                    self_pay: price - subsidy,
                    payment: Payment::Cash,
                    funding: Funding {
                        county: Fen::ZERO,
                        canteen: Fen::ZERO,
                        city: Fen(subsidy.0 / 2),
                        town: Fen(subsidy.0 - subsidy.0 / 2),
                        other: Fen::ZERO,
                    },
                    funding_town: TownCode::new("choucheng"),
                    eligibility: Eligibility::Subsidised {
                        tier: "age_65".into(),
                        tier_name: "65至79周岁老人".into(),
                    },
                    policy: policy.clone(),
                });
                let id = uuid_v7(&mut rng, served.timestamp_millis() as u64);
                let answer = serde_json::to_string(&ItemResult {
                    id,
                    status: ItemStatus::Accepted,
                    meal: decision.accepted().map(MealDecision::from),
                    rejection: None,
                    error: None,
                })
                .map_err(db::Error::other)?;
                let served_at = zhucan_platform::stamp(served.with_timezone(&Utc));
                let mut item = SettlementItem {
                    counter_price: None,
                    id,
                    resident_id: rid,
                    canteen_id: cid,
                    served_at: served.fixed_offset(),
                    method: Method::Card,
                    match_score: None,
                    liveness_score: None,
                    delivered: false,
                    staff_reason: None,
                    proxy_carer_id: None,
                    signed: None,
                };
                let signer = &mut signers[ci];
                let prev = signer.prev.clone();
                signer.sign(&mut item);
                let payload = signing::payload(&item);
                let hash_of = |h: &str| -> db::Result<[u8; 32]> {
                    hex::decode(h)
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| db::Error::other("hash"))
                };
                let id_text = id.to_string();
                db::chain::insert_link(
                    tx,
                    &db::chain::Link {
                        kiosk_id: kiosks[ci],
                        seq: signer.seq,
                        record_hash: hash_of(&signer.prev)?,
                        prev_hash: hash_of(&prev)?,
                        settlement_id: &id_text,
                        settled: true,
                        signature: item.signed.as_ref().map_or("", |x| x.signature.as_str()),
                        payload: std::str::from_utf8(&payload).map_err(db::Error::other)?,
                        received_at: &received,
                    },
                )?;
                db::settlements::insert(
                    tx,
                    &db::settlements::SettlementRow {
                        counter_price: None,
                        id,
                        kiosk_id: Some(kiosks[ci]),
                        canteen_id: cid,
                        resident_id: rid,
                        served_at: &served_at,
                        local_date: day,
                        method: Method::Card,
                        match_score: None,
                        liveness_score: None,
                        delivered: false,
                        staff_reason: None,
                        decision: &decision,
                        received_at: &received,
                        request_hash: "bench",
                        answer: &answer,
                        period: &crate::period::month_of(day),
                        late_by_seconds: None,
                        proxy_carer_id: None,
                    },
                )?;
            }
            Ok(())
        })?;
        done += n;
    }
    let bulk_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    // as the API builds it: the books check on a second reader connection at the same time
    let s = tokio::runtime::Handle::current().block_on(reports::statement_in_parallel(
        &db,
        "2026-03",
        &Filter::default(),
    ))?;
    let secs = start.elapsed().as_secs_f64();
    if s.total.meals != rows as i64 {
        return Err(format!("statement counts {} meals, expected {rows}", s.total.meals).into());
    }
    if let Some(bad) = s.chains.iter().find(|c| c.status != "verified") {
        return Err(format!(
            "chain of {} not verified: {:?}",
            bad.kiosk_name, bad.problems
        )
        .into());
    }
    // the part of the statement that checks every row's books MAC, on its own
    let start = Instant::now();
    let books = db.read_sync(|c| db::books::check(c, "2026-03"))?;
    let books_secs = start.elapsed().as_secs_f64();
    if !books.verified() {
        return Err(format!("books check failed: {} altered", books.altered_count).into());
    }
    let start = Instant::now();
    let flags = db.read_sync(|c| {
        crate::flags::compute(c, "2026-03", None, &crate::flags::Rules::default())
    })?;
    let flags_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let full = db.read_sync(|c| db::chain::reverify(c, kiosks[0]))?;
    let reverify_secs = start.elapsed().as_secs_f64();
    if full.status != "verified" {
        return Err(format!("re-verification failed: {:?}", full.problems).into());
    }
    Ok((
        bulk_secs,
        secs,
        StatementFigures {
            canteens: s.canteens.len(),
            residents: s.residents.len(),
            total: s.total.subsidy,
            chains: s.chains.len(),
            reverify_records: full.last_seq.unwrap_or(0),
            reverify_secs,
            flags_secs,
            flags: flags.len(),
            books_secs,
        },
    ))
}

/// What (b) reports about the statement it built: line counts and the subsidy total.
#[derive(Debug, Clone, Copy)]
pub struct StatementFigures {
    pub canteens: usize,
    pub residents: usize,
    pub total: Fen,
    pub chains: usize,
    pub reverify_records: u64,
    pub reverify_secs: f64,
    pub flags_secs: f64,
    pub flags: usize,
    pub books_secs: f64,
}

/// Runs both parts and returns the figures; with `postgres` (an empty database's URL), the
/// PostgreSQL part too.
pub async fn run(
    residents: usize,
    days: usize,
    rows: usize,
    postgres: Option<&str>,
) -> Result<(Figures, Option<PostgresFigures>), BoxError> {
    let dir = temp_dir()?;
    let (ingested, ingest_secs) = ingest_over_http(&dir, residents, days).await?;
    let d = dir.clone();
    let (bulk_secs, statement_secs, s) =
        tokio::task::spawn_blocking(move || statement_over(&d, rows)).await??;
    let pg = match postgres {
        Some(url) => Some(run_postgres(url, &dir, residents, days, rows).await?),
        None => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    tracing::info!(
        chains = s.chains,
        records = s.reverify_records,
        secs = format!("{:.3}", s.reverify_secs),
        "statement chain section: every kiosk verified; one kiosk's full re-verification timed"
    );
    Ok((
        Figures {
            ingested,
            ingest_secs,
            per_second: ingested as f64 / ingest_secs,
            bulk_rows: rows,
            bulk_secs,
            statement_secs,
            statement_canteens: s.canteens,
            statement_residents: s.residents,
            statement_total: s.total,
            statement_chains: s.chains,
            reverify_records: s.reverify_records,
            reverify_secs: s.reverify_secs,
            flags_secs: s.flags_secs,
            flags: s.flags,
            books_secs: s.books_secs,
        },
        pg,
    ))
}
