//! End-to-end: the real server (in-process, real HTTP on port 0) and the real kiosk (the library's
//! `run::start`, or the `zhucan-kiosk` binary), real models, LFW and NUAA photos.

mod helpers;

use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use helpers::*;
use serde_json::json;
use zhucan_domain::ResidentId;
use zhucan_kiosk::screen::Mode;

/// Enrols every person (first photo) and the NUAA subject (live webcam frame).
async fn enrol_all(k: &TestKiosk, s: &TestServer) {
    for (i, p) in people().iter().enumerate() {
        let n = k.enrol(s.residents[i], p.enrol).await.expect("enrol");
        assert!((3..=5).contains(&n), "{} templates for {}", n, p.key);
    }
    let nuaa = *s.residents.last().expect("nuaa");
    k.enrol(nuaa, NUAA_LIVE).await.expect("enrol NUAA subject");
}

fn expected(s: &TestServer) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = people()
        .iter()
        .enumerate()
        .map(|(i, p)| (s.residents[i], p.subsidy))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_faces_settle_with_the_right_subsidy_strangers_and_prints_do_not() {
    let s = server().await;
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    enrol_all(&k, &s).await;
    // the server holds the uploaded templates: the resident shows as enrolled
    let r = s.get(&format!("/residents/{}", s.residents[0])).await;
    assert_eq!(r["face_enrolled"], json!(true), "{r}");

    let mut screen = k.kiosk.screen.clone();
    let before = screen.borrow_and_update().event_seq;
    for stranger in STRANGERS {
        k.show(stranger, 5, 2);
    }
    k.settle_down(false).await;
    for print in NUAA_PRINTS {
        k.show(print, 5, 0);
    }
    // a printed photo of an enrolled person is refused as not live
    let seen_spoof = tokio::time::timeout(WAIT, async {
        screen.wait_for(|st| st.mode == Mode::Spoof).await.is_ok()
    })
    .await
    .unwrap_or(false);
    assert!(seen_spoof, "the screen never said 'not a live face'");
    k.show("lfw/images/Steve_Lavin_0002.jpg", 0, 2);
    k.settle_down(true).await;
    assert_eq!(
        k.kiosk.screen.borrow().event_seq,
        before,
        "strangers and prints produced a check-in result"
    );
    assert_eq!(k.kiosk.store.outbox_counts().expect("counts").total, 0);

    for p in people() {
        k.show(p.probe, 5, 2);
    }
    k.settle_down(true).await;
    assert_eq!(s.tally().await, expected(&s));
    let c = k.kiosk.store.outbox_counts().expect("counts");
    assert_eq!((c.total, c.acked, c.differs, c.parked), (4, 4, 0, 0));
    // the screen showed the last check-in with the local decision
    let st = k.kiosk.screen.borrow().clone();
    let v = st.checkin.expect("last check-in");
    assert_eq!(v.resident_id, ResidentId(s.residents[3]));
    assert_eq!((v.price.0, v.subsidy.0, v.self_pay.0), (1200, 0, 1200));
    k.kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_the_kiosk_keeps_deciding_and_every_settlement_arrives_once() {
    let mut s = server().await;
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    enrol_all(&k, &s).await;
    s.stop().await;
    for p in people() {
        k.show(p.probe, 5, 2);
    }
    k.settle_down(false).await;
    let c = k.kiosk.store.outbox_counts().expect("counts");
    assert_eq!((c.total, c.backlog), (4, 4), "decided and queued offline");
    let mut screen = k.kiosk.screen.clone();
    tokio::time::timeout(WAIT, screen.wait_for(|st| !st.online))
        .await
        .expect("offline shown")
        .expect("screen");
    // the same person again while offline, by card this time: refused locally as a duplicate,
    // nothing queued (by face, the 10 s cooldown would not even decide again)
    let (tx, rx) = tokio::sync::oneshot::channel();
    k.kiosk
        .commands
        .send(zhucan_kiosk::screen::Command::Card {
            code: format!("CARD-{}", people()[0].key),
            reply: tx,
        })
        .await
        .expect("card");
    let v = rx.await.expect("reply").expect("card check-in decided");
    assert_eq!(v.rejection.as_deref(), Some("duplicate"));
    assert_eq!(v.method, "card");
    assert_eq!(k.kiosk.store.outbox_counts().expect("counts").total, 4);

    s.restart().await;
    k.settle_down(true).await;
    assert_eq!(
        s.tally().await,
        expected(&s),
        "every settlement exactly once"
    );
    tokio::time::timeout(
        WAIT,
        screen.wait_for(|st| st.online && st.outbox_backlog == 0),
    )
    .await
    .expect("online again")
    .expect("screen");
    k.kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_withdrawn_on_the_server_purges_the_template_at_the_next_sync() {
    let s = server().await;
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    let who = s.residents[1];
    k.enrol(who, people()[1].enrol).await.expect("enrol");
    assert!(
        k.kiosk
            .store
            .template_count(ResidentId(who))
            .expect("count")
            > 0
    );
    s.patch(
        &format!("/residents/{who}"),
        &json!({ "consent": { "face_enrolment": false, "template_sharing": false }, "by": "e2e" }),
    )
    .await;
    let store = k.kiosk.store.clone();
    wait_for("the template to leave the kiosk", WAIT, || {
        store
            .template_count(ResidentId(who))
            .map(|n| n == 0)
            .unwrap_or(false)
    })
    .await;
    // and the face no longer checks in
    k.show(people()[1].probe, 5, 2);
    k.settle_down(true).await;
    assert_eq!(k.kiosk.store.outbox_counts().expect("counts").total, 0);
    assert!(s.tally().await.is_empty());
    k.kiosk.stop().await;
}

/// The `zhucan-kiosk` binary of this build (built on demand: a root-package test cannot name
/// another package's binary through `CARGO_BIN_EXE_*`).
fn kiosk_binary() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Process::new(cargo);
    build
        .args(["build", "-p", "zhucan-kiosk", "--bin", "zhucan-kiosk"])
        .current_dir(repo());
    // the variables cargo set for this test would make build scripts rerun (and thrash the
    // shared target dir): build as a plain `cargo build` would
    for (k, _) in std::env::vars() {
        let keep = matches!(k.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if (k.starts_with("CARGO_") && !keep) || k == "OUT_DIR" || k.starts_with("RUSTC") {
            build.env_remove(&k);
        }
    }
    let ok = build.status().expect("cargo build");
    assert!(ok.success(), "building zhucan-kiosk failed");
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("zhucan-kiosk");
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

/// Starts the kiosk binary; its log (check-in decisions at info level) goes to `log`.
fn spawn_kiosk(bin: &std::path::Path, config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Process::new(bin)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn,zhucan_kiosk::run=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn zhucan-kiosk")
}

/// Residents the kiosk binary's log shows refused as a duplicate meal.
fn refused_as_duplicate(log: &std::path::Path) -> std::collections::BTreeSet<i64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("check-in refused") && l.contains("reason=duplicate"))
        .filter_map(|l| {
            let v = l.split("resident=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect()
}

/// Kills the child for sure, also when the test fails.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_and_restart_loses_nothing_and_doubles_nothing() {
    let bin = tokio::task::spawn_blocking(kiosk_binary)
        .await
        .expect("build");
    let s = server().await;
    let data = tempfile::tempdir().expect("tempdir");
    // enrol with the in-process kiosk, then hand the same data folder to the binary
    {
        let k = kiosk(&s, data.path()).await;
        for (i, p) in people().iter().enumerate() {
            k.enrol(s.residents[i], p.enrol).await.expect("enrol");
        }
        k.kiosk.stop().await;
    }
    let list = data.path().join("probes.tsv");
    let mut lines = String::from("path\tidentity\n");
    for p in people() {
        lines.push_str(&format!(
            "{}\t{}\n-\n-\n",
            faces().join(p.probe).display(),
            p.key
        ));
    }
    std::fs::write(&list, lines).expect("list");
    let config = data.path().join("kiosk.json");
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&json!({
            "data_dir": data.path(),
            "models_dir": models(),
            "source": { "kind": "replay", "list": list, "interval_ms": 100, "loop": true, "repeat": 5 },
            "ui_listen": "127.0.0.1:0",
            "operator_pin": PIN,
            "sync_interval_ms": 200,
            "heartbeat_interval_ms": 1000,
            "backoff_cap_ms": 1000,
            "clock_start": KIOSK_CLOCK_START,
        }))
        .expect("json"),
    )
    .expect("config");

    let (log1, log2) = (data.path().join("run1.log"), data.path().join("run2.log"));
    let mut child = Reap(Some(spawn_kiosk(&bin, &config, &log1)));
    // mid-run: the first settlement reached the server, the others have not been seen yet
    let deadline = std::time::Instant::now() + WAIT;
    while s.tally().await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no settlement from the kiosk binary"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = child.0.as_mut().expect("child");
    c.kill().expect("SIGKILL");
    c.wait().expect("reaped");
    let at_kill = s.tally().await.len();
    assert!(
        at_kill < 4,
        "killed too late to be mid-run ({at_kill} settled)"
    );

    child.0 = Some(spawn_kiosk(&bin, &config, &log2));
    let deadline = std::time::Instant::now() + WAIT;
    while s.tally().await.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted kiosk did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // the looping list shows everyone again: each is refused as a duplicate, none settled twice
    let everyone: std::collections::BTreeSet<i64> = expected(&s).iter().map(|e| e.0).collect();
    wait_for(
        "the restarted kiosk to refuse everyone as a duplicate",
        WAIT,
        || refused_as_duplicate(&log2) == everyone,
    )
    .await;
    drop(child);
    assert_eq!(
        s.tally().await,
        expected(&s),
        "nothing lost, nothing doubled"
    );
    let (store, _) = zhucan_kiosk::run::open_store(data.path()).expect("store");
    let c = store.outbox_counts().expect("counts");
    assert_eq!(
        (c.total, c.parked, c.differs),
        (4, 0, 0),
        "one outbox row per meal"
    );
    // a SIGKILL neither skipped nor reused a place in the kiosk's signed chain
    assert_eq!(chain_lines(&s).await, vec![("verified".to_owned(), 4, 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_check_in_needs_pin_and_reason_and_unenrol_deletes_here_and_on_the_server() {
    use zhucan_kiosk::screen::Command;
    let s = server().await;
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    let who = ResidentId(s.residents[2]);
    let staff = |pin: &str, reason: &str| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cmd = Command::Staff {
            pin: pin.into(),
            resident_id: who,
            reason: reason.into(),
            reply: tx,
        };
        (cmd, rx)
    };
    let (cmd, rx) = staff("0000", "camera broken");
    k.kiosk.commands.send(cmd).await.expect("send");
    assert!(rx.await.expect("reply").is_err(), "wrong PIN accepted");
    let (cmd, rx) = staff(PIN, "  ");
    k.kiosk.commands.send(cmd).await.expect("send");
    assert!(rx.await.expect("reply").is_err(), "empty reason accepted");
    let (cmd, rx) = staff(PIN, "camera broken");
    k.kiosk.commands.send(cmd).await.expect("send");
    let v = rx.await.expect("reply").expect("staff check-in");
    assert_eq!((v.method.as_str(), v.subsidy.0), ("staff", 800));
    k.settle_down(true).await;
    assert_eq!(s.tally().await, vec![(who.0, 800)]);
    let t = s
        .get(&format!("/canteens/{}/tally?date=2026-03-15", s.canteen))
        .await;
    assert_eq!(t["meals"][0]["method"], json!("staff"));
    // signed by the kiosk like any meal, and still labelled staff-confirmed on the statement
    let st = s.get("/statements?month=2026-03").await;
    let line = st["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|c| !c["kiosk_id"].is_null())
        .expect("the kiosk's chain line")
        .clone();
    assert_eq!(
        (
            line["status"].clone(),
            line["meals"].clone(),
            line["staff_meals"].clone()
        ),
        (json!("verified"), json!(1), json!(1))
    );

    k.enrol(who.0, people()[2].enrol).await.expect("enrol");
    assert_eq!(
        s.get(&format!("/residents/{}", who.0)).await["face_enrolled"],
        json!(true)
    );
    unenrol(&k, who).await.expect("unenrol");
    assert_eq!(k.kiosk.store.template_count(who).expect("count"), 0);
    assert_eq!(
        s.get(&format!("/residents/{}", who.0)).await["face_enrolled"],
        json!(false)
    );
    k.kiosk.stop().await;
}

/// Unenrols a resident through the operator command.
async fn unenrol(k: &TestKiosk, who: ResidentId) -> Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    k.kiosk
        .commands
        .send(zhucan_kiosk::screen::Command::Unenrol {
            pin: PIN.into(),
            resident_id: who,
            reply: tx,
        })
        .await
        .expect("send");
    rx.await.expect("reply")
}

/// The interleaving behind a flaky run, forced: the sync worker's pull is answered while the
/// server still holds the templates, the operator unenrols, and only then is that answer applied.
/// The face data must not come back, whether the server heard of the unenrol at once or only
/// later (it was down), and the kiosk tells the server of an unenrol it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_answer_from_before_an_unenrol_does_not_bring_the_face_back() {
    let mut s = server().await;
    let data = tempfile::tempdir().expect("tempdir");
    // the worker pulls once at start and not again in this test: the test applies the answers
    let k = kiosk_with(&s, data.path(), |c| c.sync_interval_ms = 3_600_000).await;
    let (a, b) = (ResidentId(s.residents[0]), ResidentId(s.residents[1]));
    k.enrol(a.0, people()[0].enrol).await.expect("enrol");
    k.enrol(b.0, people()[1].enrol).await.expect("enrol");

    // the answer the worker's next pull would get now: both residents' templates
    let (_, secrets) = zhucan_kiosk::run::open_store(data.path()).expect("store");
    let client =
        zhucan_kiosk::run::client_for(data.path(), &s.url(), secrets.token).expect("client");
    let since = k.kiosk.store.cursor().expect("cursor");
    let stale = client.sync(since).await.expect("sync");
    let holds = |r: ResidentId| stale.templates.iter().any(|t| t.resident_id == r);
    assert!(
        holds(a) && holds(b),
        "the answer carries both template sets"
    );
    let count = |r: ResidentId| k.kiosk.store.template_count(r).expect("count");
    let apply_stale = || {
        k.kiosk
            .store
            .apply_sync(&stale, server_now())
            .expect("apply the stale answer")
    };

    // unenrol a (the server hears of it at once), then the stale answer is applied
    unenrol(&k, a).await.expect("unenrol");
    assert_eq!(
        s.get(&format!("/residents/{}", a.0)).await["face_enrolled"],
        json!(false)
    );
    apply_stale();
    assert_eq!(
        count(a),
        0,
        "a sync answer from before the unenrol restored the resident's templates"
    );
    assert!(count(b) > 0, "the other resident's templates stay");

    // unenrol b while the server is down: deleted here at once, on the server once it is back
    s.stop().await;
    let e = unenrol(&k, b).await.expect_err("the server is down");
    assert!(e.contains("the server will be told later"), "{e}");
    apply_stale();
    assert_eq!(
        (count(a), count(b)),
        (0, 0),
        "restored before the server knew"
    );
    s.restart().await;
    let deadline = std::time::Instant::now() + WAIT;
    while s.get(&format!("/residents/{}", b.0)).await["face_enrolled"] != json!(false) {
        assert!(
            std::time::Instant::now() < deadline,
            "the kiosk never told the server of the unenrol"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    apply_stale();
    assert_eq!(
        (count(a), count(b)),
        (0, 0),
        "restored after the server knew"
    );
    // the next real pull is built after both deletions: it lists them as purged, restores nothing
    let fresh = client.sync(since).await.expect("sync");
    assert!(
        !fresh
            .templates
            .iter()
            .any(|t| t.resident_id == a || t.resident_id == b)
    );
    k.kiosk
        .store
        .apply_sync(&fresh, server_now())
        .expect("apply");
    assert_eq!((count(a), count(b)), (0, 0));
    k.kiosk.stop().await;
}

/// The statement's chain line for the test canteen's kiosk(s): (status, meals, problems).
async fn chain_lines(s: &TestServer) -> Vec<(String, i64, usize)> {
    let st = s.get("/statements?month=2026-03").await;
    st["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .filter(|c| !c["kiosk_id"].is_null())
        .map(|c| {
            (
                c["status"].as_str().expect("status").to_owned(),
                c["meals"].as_i64().expect("meals"),
                c["problems"].as_array().expect("problems").len(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_kiosk_pins_the_ca_signs_every_meal_and_survives_a_key_rotation() {
    let s = tls_server().await;
    // A kiosk given some other CA refuses the server before anything is registered.
    let other = tempfile::tempdir().expect("tempdir");
    let wrong = zhucan_server::tls::generate(other.path(), &["127.0.0.1".into()], 2).expect("CA");
    let code = s.enrolment_code().await;
    let refused = zhucan_kiosk::run::enrol_kiosk(
        &s.url(),
        &code,
        &other.path().join("kiosk"),
        Some(&wrong.ca),
    )
    .await;
    assert!(refused.is_err(), "a kiosk pinned to another CA registered");
    assert_eq!(s.get("/kiosks").await.as_array().expect("kiosks").len(), 0);

    // The kiosk pinned to the right CA registers, settles, and its chain verifies.
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    let (a, b) = (&people()[0], &people()[1]);
    k.enrol(s.residents[0], a.enrol).await.expect("enrol");
    k.enrol(s.residents[1], b.enrol).await.expect("enrol");
    k.show(a.probe, 5, 3);
    k.settle_down(true).await;
    assert_eq!(s.tally().await, vec![(s.residents[0], a.subsidy)]);
    assert_eq!(chain_lines(&s).await, vec![("verified".to_owned(), 1, 0)]);

    // Rotate the kiosk's credential (kiosk stopped), start it again, settle another meal.
    k.kiosk.stop().await;
    let rotated = zhucan_kiosk::run::rotate_key(data.path())
        .await
        .expect("rotate");
    assert_eq!(rotated.from_seq, 2);
    let k = start_kiosk(data.path()).await;
    k.show(b.probe, 5, 3);
    k.settle_down(true).await;
    let mut want = vec![(s.residents[0], a.subsidy), (s.residents[1], b.subsidy)];
    want.sort();
    assert_eq!(s.tally().await, want);
    assert_eq!(chain_lines(&s).await, vec![("verified".to_owned(), 2, 0)]);
    k.kiosk.stop().await;
}

/// 代取 end to end: a carer registered and linked on the server reaches the kiosk by sync; their
/// own card at the kiosk settles the elder's meal, signed with the carer, and the server books it
/// to the elder and counts it as a proxy meal on the statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carers_card_at_the_kiosk_settles_the_elders_meal_as_proxy_on_the_server() {
    let s = server().await;
    let who = s.residents[1];
    let carer = s
        .post(
            "/carers",
            &json!({ "name": "王小红", "card_code": "CARER-E2E" }),
        )
        .await["id"]
        .as_i64()
        .expect("carer id");
    s.post(
        &format!("/residents/{who}/carers"),
        &json!({ "carer_id": carer }),
    )
    .await;
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    let store = k.kiosk.store.clone();
    wait_for("the carer to reach the kiosk", WAIT, || {
        store
            .carer_by_card("CARER-E2E")
            .map(|c| c.is_some())
            .unwrap_or(false)
    })
    .await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    k.kiosk
        .commands
        .send(zhucan_kiosk::screen::Command::Carer {
            code: "CARER-E2E".into(),
            resident_id: Some(ResidentId(who)),
            reply: tx,
        })
        .await
        .expect("carer card");
    let answer = rx.await.expect("reply").expect("decided");
    let Some(zhucan_kiosk::screen::CarerReply::Checkin(v)) = answer else {
        panic!("expected the elder's meal, got {answer:?}")
    };
    assert_eq!(v.proxy_carer.as_deref(), Some("王小红"));
    assert_eq!(v.rejection, None);
    k.settle_down(true).await;
    let c = k.kiosk.store.outbox_counts().expect("counts");
    assert_eq!((c.total, c.acked, c.differs), (1, 1, 0));
    assert_eq!(
        s.tally().await.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![who]
    );
    let st = s.get("/statements?month=2026-03").await;
    assert_eq!(st["proxy_meals"], 1, "{st}");
    assert_eq!(st["books"]["altered_count"], 0);
    k.kiosk.stop().await;
}

/// A Jurong-shaped policy from March 2026: 60+ get ¥5 on lunch, the delivery fee is its own
/// line the elder always pays, and the canteen gets ¥3 per diner per day (Beijing's operating
/// subsidy).
const COUNTER_POLICY: &str = r#"{
  "id": "counter-e2e", "version": 1, "name": "套餐价与送餐费（测试）",
  "effective_from": "2026-03-01", "subsidy_town": "registration",
  "tiers": [ { "code": "age_60", "name": "60岁以上", "conditions": { "min_age": 60 },
    "benefit": { "per_meal": { "lunch": 500 } }, "funding": [ { "source": "city", "percent": 100 } ] } ],
  "delivery": { "subsidies": [] },
  "operating": { "fen": 300, "per": "diner_day", "source": "city" }
}"#;

#[tokio::test]
async fn a_counter_priced_delivered_meal_settles_on_the_kiosk_arrives_signed_and_shows_on_the_statement()
 {
    let mut s = server().await;
    let resp = s
        .client
        .post(s.api("/policies"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(COUNTER_POLICY)
        .send()
        .await
        .expect("policy");
    assert!(resp.status().is_success());
    // set meals at ¥9, ¥11, ¥13; delivery ¥2
    let c = s
        .post(
            "/canteens",
            &json!({
                "name": "句容套餐食堂", "kind": "care_centre", "town": "choucheng",
                "operator": "社区", "operator_kind": "village_run",
                "slots": [{ "slot": "lunch", "start": "10:30:00", "end": "13:00:00", "price": 1100,
                            "price_min": 900, "price_max": 1300 }],
                "delivery_surcharge": 200
            }),
        )
        .await;
    s.canteen = c["id"].as_i64().expect("id");
    let data = tempfile::tempdir().expect("tempdir");
    let k = kiosk(&s, data.path()).await;
    let order = |price: i64, delivered: bool| {
        let commands = k.kiosk.commands.clone();
        async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            commands
                .send(zhucan_kiosk::screen::Command::Order {
                    order: Some(zhucan_kiosk::screen::Order {
                        price: Some(zhucan_domain::Fen(price)),
                        delivered,
                    }),
                    reply: tx,
                })
                .await
                .expect("order");
            rx.await.expect("reply")
        }
    };
    // A ¥14 meal is above the canteen's bounds: refused at the counter, nothing waits.
    let refused = order(1400, true).await.expect_err("above the bounds");
    assert!(
        refused.contains("9.00") && refused.contains("13.00"),
        "{refused}"
    );
    // The ¥13 set meal, delivered.
    order(1300, true).await.expect("order set");
    let (tx, rx) = tokio::sync::oneshot::channel();
    k.kiosk
        .commands
        .send(zhucan_kiosk::screen::Command::Card {
            code: "CARD-juanes".into(),
            reply: tx,
        })
        .await
        .expect("card");
    let v = rx.await.expect("reply").expect("decided");
    assert_eq!(v.rejection, None, "{v:?}");
    assert_eq!(
        (v.price.0, v.subsidy.0, v.self_pay.0, v.delivery_fee.0),
        (1500, 500, 1000, 200),
        "{v:?}"
    );
    // The order was used: the next elder's meal is at the set price, eaten in.
    let (tx, rx) = tokio::sync::oneshot::channel();
    k.kiosk
        .commands
        .send(zhucan_kiosk::screen::Command::Card {
            code: "CARD-okeefe".into(),
            reply: tx,
        })
        .await
        .expect("card");
    let v = rx.await.expect("reply").expect("decided");
    assert_eq!((v.price.0, v.delivery_fee.0), (1100, 0), "{v:?}");
    k.settle_down(true).await;
    // The server decided both meals exactly as the kiosk did, from the signed price.
    let counts = k.kiosk.store.outbox_counts().expect("counts");
    assert_eq!((counts.total, counts.acked, counts.differs), (2, 2, 0));
    let st = s.get("/statements?month=2026-03").await;
    let line = st["canteens"]
        .as_array()
        .expect("canteens")
        .iter()
        .find(|l| l["canteen_id"] == s.canteen)
        .expect("line")
        .clone();
    assert_eq!(
        (
            line["price"].as_i64(),
            line["subsidy"].as_i64(),
            line["delivery_fee"].as_i64(),
            line["delivery_subsidy"].as_i64(),
            line["operating"].as_i64()
        ),
        (Some(2600), Some(1000), Some(200), Some(0), Some(600)),
        "{line}"
    );
    assert_eq!(st["operating_total"], 600);
    assert_eq!(st["books"]["altered_count"], 0);
    assert!(
        st["chains"]
            .as_array()
            .expect("chains")
            .iter()
            .all(|c| c["status"] == "verified"),
        "{st}"
    );
    k.kiosk.stop().await;
}
