//! The command line and the demo city: `import-residents` exits non-zero naming every bad line,
//! `migrate` reports the schema version, and the demo builds a plausible, deterministic city.

use std::process::Command;

use zhucan_domain::api::Amounts;
use zhucan_server::db::{self, Db, statements::Filter};
use zhucan_server::{demo, reports};

use crate::helpers::now;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zhucan-server"))
}

#[test]
fn import_residents_cli_reports_line_numbers_and_imports_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("z.sqlite");
    let out = bin()
        .arg("migrate")
        .arg("--db")
        .arg(&db_path)
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!(
        "schema version 0 -> {}",
        zhucan_server::db::migrate::latest()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&expected));
    let csv = dir.path().join("roster.csv");
    std::fs::write(
        &csv,
        "姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,卡号\n\
         楼根土,男,11010519491231002X,本地,稠城街道,稠城街道,,正常,R1\n\
         ,男,123,本地,稠城街道,稠城街道,,正常,R2\n",
    )
    .expect("write csv");
    let out = bin()
        .arg("import-residents")
        .arg(&csv)
        .arg("--db")
        .arg(&db_path)
        .output()
        .expect("run import");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2, column 户籍镇街"), "{err}");
    assert!(err.contains("line 3, column 姓名"), "{err}");
    assert!(err.contains("line 3, column 身份证号"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let db = Db::open(&db_path).expect("open");
    let n = db
        .read_sync(|c| db::residents::list(c, None, 10, 0))
        .expect("list")
        .len();
    assert_eq!(n, 0);
}

#[test]
fn the_demo_city_is_plausible_and_deterministic() {
    let mk = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("demo.sqlite")).expect("db");
        let s = demo::populate(&db, &[1; 32], chrono_tz::Asia::Shanghai, now(), 7).expect("demo");
        (dir, db, s)
    };
    let (_d1, db, s) = mk();
    assert_eq!((s.towns, s.canteens, s.residents), (14, 40, 2000));
    assert!(s.settlements > 20_000, "{}", s.settlements);
    let residents = db
        .read_sync(|c| db::residents::list(c, None, 1000, 0))
        .expect("list");
    let residents2 = db
        .read_sync(|c| db::residents::list(c, None, 1000, 1000))
        .expect("list");
    let all: Vec<_> = residents.iter().chain(&residents2).collect();
    assert_eq!(all.len(), 2000);
    let today = now().date_naive();
    let age = |r: &&zhucan_domain::api::ResidentDto| {
        db.read_sync(|c| db::residents::get(c, r.id))
            .expect("resident")
            .age_on(today)
    };
    assert!(all.iter().filter(|r| age(r) >= 100).count() >= 1);
    assert!(all.iter().filter(|r| (65..90).contains(&age(r))).count() > 1500);
    let dibao = all
        .iter()
        .filter(|r| r.categories.iter().any(|c| c == "dibao"))
        .count();
    assert!((50..200).contains(&dibao), "{dibao} on 低保");
    let nonlocal = all.iter().filter(|r| !r.local_registration).count();
    assert!((50..200).contains(&nonlocal), "{nonlocal} non-local");
    // The demo kiosk's full snapshot: 2,000 residents, this month's meals city-wide.
    let kiosk = db::kiosks::Kiosk {
        id: s.kiosk_id,
        canteen_id: s.kiosk_canteen,
    };
    let full = db
        .read_sync(|c| {
            zhucan_server::sync::build(c, kiosk, 0, &[1; 32], chrono_tz::Asia::Shanghai, now())
                .map_err(db::Error::other)
        })
        .expect("sync");
    assert_eq!(full.residents.len(), 2000);
    assert!(full.meals.len() > 5_000, "{} meals", full.meals.len());
    assert!(
        full.meals
            .iter()
            .all(|m| m.date.to_string().starts_with("2026-03"))
    );
    // (tests do not time things: how quick a full snapshot is belongs in `zhucan-server bench`)
    let delta = db
        .read_sync(|c| {
            zhucan_server::sync::build(
                c,
                kiosk,
                full.cursor,
                &[1; 32],
                chrono_tz::Asia::Shanghai,
                now(),
            )
            .map_err(db::Error::other)
        })
        .expect("sync");
    assert!(delta.residents.is_empty() && delta.meals.is_empty());
    // February and March 2026 (the 30 days before 2026-03-15) add up, and the same seed gives
    // the same books.
    let (_d2, db2, _) = mk();
    for month in ["2026-02", "2026-03"] {
        let a = db
            .read_sync(|c| reports::statement(c, month, &Filter::default()))
            .expect("s");
        let b = db2
            .read_sync(|c| reports::statement(c, month, &Filter::default()))
            .expect("s");
        assert_eq!(a, b);
        let mut sum = Amounts::default();
        for l in &a.canteens {
            sum.add(&l.amounts);
        }
        assert_eq!(sum, a.total);
        assert!(a.total.meals > 0);
    }
    // The planted fraud is flagged, and no honest canteen is: a padding canteen (above its
    // roster, a jump), a canteen confirming meals by hand, a diner whose death was recorded late.
    let mut ids: Vec<i64> = db
        .read_sync(db::canteens::all)
        .expect("canteens")
        .iter()
        .map(|c| c.id.0)
        .collect();
    ids.sort();
    let (pad, manual) = (ids[demo::PADDING_CANTEEN], ids[demo::MANUAL_CANTEEN]);
    let rules = zhucan_server::flags::Rules::default();
    let mut found = std::collections::BTreeSet::new();
    let mut dead = std::collections::BTreeSet::new();
    let mut twice = std::collections::BTreeSet::new();
    for month in ["2026-02", "2026-03"] {
        let flags = db
            .read_sync(|c| zhucan_server::flags::compute(c, month, None, &rules))
            .expect("flags");
        for f in flags {
            let c = f.canteen_id.map(|c| c.0);
            if f.kind == "after_death" {
                dead.insert(f.resident_id);
                continue;
            }
            if f.kind == "lookalike" {
                assert_eq!(f.severity, zhucan_domain::api::Severity::High);
                twice.insert(f.key);
                continue;
            }
            assert!(
                c == Some(pad) || c == Some(manual),
                "an honest canteen is flagged: {f:#?}"
            );
            found.insert((f.kind, c));
        }
    }
    let want: std::collections::BTreeSet<(String, Option<i64>)> = [
        ("above_roster", pad),
        ("jump", pad),
        ("manual_share", manual),
    ]
    .into_iter()
    .map(|(k, c)| (k.to_owned(), Some(c)))
    .collect();
    assert_eq!(found, want);
    assert_eq!(dead.len(), 1, "one diner recorded dead late: {dead:?}");
    assert_eq!(twice.len(), 1, "one person enrolled twice: {twice:?}");
}

/// systemd, Docker and `kill` stop a service with SIGTERM: the server stops taking requests,
/// drains the ones in flight and exits cleanly (it used to ignore SIGTERM until SIGKILL).
#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = zhucan_testkit::reserved_port();
    // `serve --db postgres://…` when the tests run on PostgreSQL (with its key file, required)
    let pg = zhucan_testkit::postgres::Database::fresh().expect("a PostgreSQL test database");
    let mut serve = bin();
    serve.arg("serve").arg("--db");
    match &pg {
        Some(pg) => serve
            .arg(pg.url())
            .arg("--secret-key-file")
            .arg(dir.path().join("z.key")),
        None => serve.arg(dir.path().join("z.sqlite")),
    };
    let mut child = serve
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-token", "sigterm-test-admin-token-0123456789"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn server");
    // The log, read to its end (the process's exit); `listening` says when it serves.
    let stdout = child.stdout.take().expect("stdout");
    let (listening, serving) = tokio::sync::oneshot::channel();
    let log = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        let mut listening = Some(listening);
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("listening")
                && let Some(tx) = listening.take()
            {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines.join("\n")
    });
    let wait = zhucan_testkit::WAIT;
    tokio::time::timeout(wait, serving)
        .await
        .expect("the server never said it was listening")
        .expect("its log ended before it listened");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/health"))
        .await
        .expect("health");
    assert!(health.status().is_success());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(wait, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("still running after SIGTERM")
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let log = log.await.expect("log");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    if let Some(pg) = &pg {
        assert!(
            log.contains(pg.url()),
            "the database it served is named: {log}"
        );
    }
}
