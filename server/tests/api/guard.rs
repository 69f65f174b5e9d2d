//! Integrity, security and privacy over real HTTP and the real database files: the hash-chained,
//! append-only audit log; national ID numbers sealed and revealed only with an audit entry; the
//! face-data count; the raw bytes of the database holding neither an ID number nor an
//! embedding; size limits; rate limits on the clock.

use chrono::Duration;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use zhucan_domain::NationalId;
use zhucan_domain::api::encode_embedding;
use zhucan_server::db;

use crate::helpers::{
    ADMIN, TestApp, date, embedding, item, national_id, now, patch, spawn_app, spawn_app_with,
    upload, upload_body, v7,
};

async fn error_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON error body");
    (status, body["error"].clone())
}

/// The audit entries of one action, oldest first.
async fn entries(app: &TestApp, action: &'static str) -> Vec<db::audit::Row> {
    app.server
        .db
        .read(move |c| db::audit::of_action(c, action))
        .await
        .expect("audit")
}

async fn audit_page(app: &TestApp, query: &str) -> Value {
    app.json(&format!("/audit{query}")).await
}

#[tokio::test]
async fn api_acts_are_audited_with_who_and_what() {
    let app = spawn_app().await;
    let (c0, r) = (app.canteens[0], app.residents.clone());

    // The fixtures: the policy and five residents, by the admin token.
    let p = entries(&app, "policy.create").await;
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].actor.as_str(), p[0].role.as_str()),
        ("admin-token", "admin")
    );
    assert!(p[0].target.starts_with("policy:"), "{}", p[0].target);
    let created = entries(&app, "resident.create").await;
    assert_eq!(created.len(), 5);
    assert_eq!(created[0].target, format!("resident:{}", r[0]));
    assert!(
        !created[0]
            .detail
            .contains(&national_id(date(1944, 5, 1), 0, true))
    );

    // A void in an open month, then one in a closed month (an adjustment).
    let (a, b) = (v7(), v7());
    app.settle_ok(
        0,
        vec![
            item(a, r[0], c0, "2026-03-14T11:00:00"),
            item(b, r[1], c0, "2026-02-14T11:00:00"),
        ],
    )
    .await;
    let resp = app
        .post(
            &format!("/settlements/{a}/void"),
            &json!({ "reason": "录错了" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .post(
            "/months/2026-02/close",
            // the February meal was sent a month late: a red flag, closed over with a reason
            &json!({ "by": "财务张三", "open_flags_reason": "迟报已核实" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .post(
            &format!("/settlements/{b}/void"),
            &json!({ "reason": "重复" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = entries(&app, "settlement.void").await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].target, format!("settlement:{a}"));
    assert!(v[0].detail.contains("录错了"));
    let adj = entries(&app, "settlement.adjust").await;
    assert_eq!(adj.len(), 1);
    assert!(
        adj[0].detail.contains("\"period\":\"2026-03\""),
        "{}",
        adj[0].detail
    );
    let close = entries(&app, "month.close").await;
    assert_eq!(close.len(), 1);
    assert_eq!(close[0].target, "month:2026-02");

    // Consent: a kiosk's template upload, a withdrawal that purges, a deletion.
    let resp = upload(
        &app,
        &app.kiosks[0],
        r[2],
        &upload_body(true, &[embedding(1, 128)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let kiosks = app.json("/kiosks").await;
    let k0 = kiosks
        .as_array()
        .expect("kiosks")
        .iter()
        .find(|k| k["name"] == "k0")
        .expect("k0")["id"]
        .as_i64()
        .expect("id");
    let up = entries(&app, "templates.upload").await;
    assert_eq!(up.len(), 1);
    assert_eq!(
        (up[0].actor.clone(), up[0].role.as_str()),
        (format!("kiosk:{k0}"), "kiosk")
    );
    patch(
        &app,
        r[2],
        json!({ "consent": { "face_enrolment": false, "template_sharing": false } }),
    )
    .await;
    let consent = entries(&app, "consent.change").await;
    assert_eq!(
        consent.len(),
        2,
        "granted at the kiosk, withdrawn at the desk"
    );
    assert_eq!(consent[0].actor, format!("kiosk:{k0}"));
    assert_eq!(consent[1].actor, "admin-token");
    let purge = entries(&app, "templates.purge").await;
    assert_eq!(purge.len(), 1);
    assert!(
        purge[0].detail.contains("withdrawal"),
        "{}",
        purge[0].detail
    );
    assert_eq!(entries(&app, "resident.update").await.len(), 1);
    let resp = app
        .delete_as(ADMIN, &format!("/residents/{}/templates", r[4]))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(entries(&app, "templates.delete").await.len(), 1);

    // Exports: CSV, XLSX and JSON, each audited whoever asks.
    for format in ["csv", "xlsx", "json"] {
        let resp = app
            .get(&format!("/statements?month=2026-03&format={format}"))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let ex = entries(&app, "statement.export").await;
    assert_eq!(ex.len(), 3);
    assert!(ex[0].detail.contains("\"format\":\"csv\""));
    assert_eq!(ex[1].target, "statement:2026-03");

    // A kiosk enrolment code: recorded, the code itself not.
    let resp = app
        .post(
            "/kiosks/enrolment-codes",
            &json!({ "canteen_id": c0, "name": "前台2号机" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let code: Value = resp.json().await.expect("json");
    let e = entries(&app, "kiosk.enrolment_code").await;
    assert_eq!(e.len(), 1);
    assert!(!e[0].detail.contains(code["code"].as_str().expect("code")));

    // The command-line roster import.
    let csv = format!(
        "姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,身故日期,卡号,指定食堂,预存余额\n\
         楼根土,男,{},本地,choucheng,choucheng,,正常,,R001,,\n",
        national_id(date(1940, 3, 3), 7, true)
    );
    let (d, key) = (app.server.db.clone(), vec![42u8; 32]);
    tokio::task::spawn_blocking(move || {
        zhucan_server::import::residents(&d, &key, csv.as_bytes(), now())
    })
    .await
    .expect("join")
    .expect("import");
    let imp = entries(&app, "resident.import").await;
    assert_eq!((imp.len(), imp[0].actor.as_str()), (1, "cli"));
    assert!(imp[0].detail.contains("\"imported\":1"));

    // The whole chain verifies, and the API pages through it newest first.
    let page = audit_page(&app, "?limit=5").await;
    assert_eq!(page["verified"], true);
    assert_eq!(page["broken_at"], Value::Null);
    let total = page["total"].as_i64().expect("total");
    assert_eq!(
        total, 23,
        "the books seal, six fixtures, the two fixture kiosks' registrations and fourteen acts"
    );
    let seqs: Vec<i64> = page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (total - 4..=total).rev().collect::<Vec<_>>());
    let next = page["next_before"].as_i64().expect("more");
    let older = audit_page(&app, &format!("?limit=5&before={next}")).await;
    assert_eq!(older["entries"][0]["seq"], next - 1);
    let (st, err) = error_of(app.get("/audit?limit=0").await).await;
    assert_eq!(
        (st, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    // Kiosks cannot read it.
    let resp = app.get_as(&app.kiosks[0], "/audit").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_audit_log_refuses_changes_and_verify_names_a_tampered_row() {
    let app = spawn_app().await;
    // Append-only: the triggers refuse UPDATE and DELETE.
    let err = app
        .sql("UPDATE audit_log SET detail = '{}' WHERE seq = 3")
        .expect_err("UPDATE refused");
    assert!(err.contains("append-only"), "{err}");
    let err = app
        .sql("DELETE FROM audit_log WHERE seq = 3")
        .expect_err("DELETE refused");
    assert!(err.contains("append-only"), "{err}");
    assert_eq!(audit_page(&app, "").await["verified"], true);

    // Someone who holds the database turns the guard off and rewrites a row: verify names it.
    app.tamper(
        &["audit_log_no_update"],
        "UPDATE audit_log SET detail = '{\"name\":\"someone else\"}' WHERE seq = 3",
    );
    let page = audit_page(&app, "").await;
    assert_eq!(page["verified"], false);
    assert_eq!(page["broken_at"], 3);
    let verdict = app.server.db.read(db::audit::verify).await.expect("verify");
    assert_eq!(verdict.broken_at, Some(3));

    // On another server: a dropped row breaks the chain at the row after it.
    let other = spawn_app().await;
    other.tamper(
        &["audit_log_no_delete"],
        "DELETE FROM audit_log WHERE seq = 4",
    );
    let page = audit_page(&other, "").await;
    assert_eq!(
        (page["verified"].clone(), page["broken_at"].clone()),
        (json!(false), json!(5))
    );
}

#[tokio::test]
async fn full_national_ids_are_revealed_only_to_administrators_and_audited() {
    let app = spawn_app().await;
    let r0 = app.residents[0];
    let number = national_id(date(1944, 5, 1), 0, true);
    let resp = app.get(&format!("/residents/{r0}/national-id")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["national_id"], number);
    assert_eq!(
        v["national_id_masked"],
        NationalId::parse(&number).expect("id").masked()
    );
    let reveals = entries(&app, "national_id.reveal").await;
    assert_eq!(reveals.len(), 1);
    assert_eq!(
        (reveals[0].actor.as_str(), reveals[0].target.clone()),
        ("admin-token", format!("resident:{r0}"))
    );
    assert!(!reveals[0].detail.contains(&number));
    // The ordinary resident answer never carries it.
    let shown = app.json(&format!("/residents/{r0}")).await;
    assert!(!shown.to_string().contains(&number));
    // A kiosk gets 403; nobody gets 401; an unknown resident 404.
    let resp = app
        .get_as(&app.kiosks[0], &format!("/residents/{r0}/national-id"))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app
        .client
        .get(app.url(&format!("/residents/{r0}/national-id")))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/residents/999999/national-id").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(entries(&app, "national_id.reveal").await.len(), 1);
    // Look-up stays by blind index: the same number again is refused as a duplicate.
    let resp = app
        .post(
            "/residents",
            &json!({
                "name": "重复", "national_id": number, "local_registration": true,
                "registered_town": "choucheng", "residence_town": "choucheng",
                "categories": [], "card_code": "DUP1"
            }),
        )
        .await;
    let (st, err) = error_of(resp).await;
    assert_eq!(
        (st, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("national_id"))
    );
}

#[tokio::test]
async fn face_data_counts_follow_enrolment_withdrawal_and_death() {
    let app = spawn_app().await;
    let (r, k) = (app.residents.clone(), app.kiosks.clone());
    let fd = app.json("/face-data").await;
    assert_eq!(
        (fd["residents"].clone(), fd["templates"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(fd["filing_threshold"], 100_000);
    assert_eq!(fd["warning"], false);
    assert_eq!(fd["month"], "2026-03");

    // r1 at canteen 0 with sharing (3 templates), r2 at canteen 1 (2), r3 at canteen 0 (1).
    for (who, kiosk, sharing, n) in [
        (r[1], 0, true, 3u32),
        (r[2], 1, false, 2),
        (r[3], 0, false, 1),
    ] {
        let es: Vec<Vec<f32>> = (0..n)
            .map(|i| embedding(who as u32 * 10 + i, 128))
            .collect();
        let resp = upload(&app, &k[kiosk], who, &upload_body(sharing, &es)).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let fd = app.json("/face-data").await;
    assert_eq!(fd["residents"], 3);
    assert_eq!(fd["templates"], 6);
    assert_eq!(fd["residents_sharing"], 1);
    assert_eq!(fd["percent_of_threshold"], 0.0);
    let by: Vec<(i64, i64, i64)> = fd["by_canteen"]
        .as_array()
        .expect("by canteen")
        .iter()
        .map(|c| {
            (
                c["canteen_id"].as_i64().expect("id"),
                c["residents"].as_i64().expect("n"),
                c["templates"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(by, vec![(app.canteens[0], 2, 4), (app.canteens[1], 1, 2)]);
    assert_eq!(fd["withdrawals_this_month"], 0);

    // r1 withdraws consent; r2 dies; r3's templates are deleted on request.
    patch(
        &app,
        r[1],
        json!({ "consent": { "face_enrolment": false, "template_sharing": false } }),
    )
    .await;
    patch(
        &app,
        r[2],
        json!({ "status": "deceased", "deceased_on": "2026-03-14" }),
    )
    .await;
    let resp = app
        .delete_as(&k[0], &format!("/residents/{}/templates", r[3]))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let fd = app.json("/face-data").await;
    assert_eq!(
        (fd["residents"].clone(), fd["templates"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(fd["by_canteen"], json!([]));
    assert_eq!(fd["withdrawals_this_month"], 1);
    assert_eq!(fd["purged_this_month"], 3);
    assert_eq!(
        (
            fd["purged_withdrawal"].clone(),
            fd["purged_death"].clone(),
            fd["purged_deletion"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );

    // Next month the month's counts start again; what is held does not change.
    app.clock.set(now() + Duration::days(20));
    let fd = app.json("/face-data").await;
    assert_eq!(fd["month"], "2026-04");
    assert_eq!(
        (
            fd["withdrawals_this_month"].clone(),
            fd["purged_this_month"].clone()
        ),
        (json!(0), json!(0))
    );
    // Only administrators.
    let resp = app.get_as(&k[0], "/face-data").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the database file and its `-wal` and `-shm` companions.
fn database_bytes(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::read(&p)
                .ok()
                .map(|b| (format!("{}", std::path::Path::new(&p).display()), b))
        })
        .collect()
}

#[tokio::test]
async fn the_database_files_are_owner_only_and_a_loose_one_is_narrowed() {
    use std::os::unix::fs::PermissionsExt;
    // SQLite's own files (PostgreSQL's data directory is the cluster's, mode 0700 by initdb)
    let app = crate::helpers::spawn_sqlite_app().await;
    let path = app.server.db.path().to_owned();
    let mode = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(&p)
            .map(|m| m.permissions().mode() & 0o777)
            .expect("database file")
    };
    // the seed wrote through the WAL, so all three exist
    assert_eq!(
        (mode(""), mode("-wal"), mode("-shm")),
        (0o600, 0o600, 0o600)
    );
    // a database file someone loosened is narrowed when the server opens it
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(db::connect(&path).expect("connect"));
    assert_eq!(mode(""), 0o600);
}

#[tokio::test]
async fn purged_template_ciphertext_does_not_stay_in_the_database_files() {
    // SQLite's free pages (secure_delete); PostgreSQL's dead rows are its VACUUM's, not ours
    let app = crate::helpers::spawn_sqlite_app().await;
    let r = app.residents[4];
    let resp = upload(
        &app,
        &app.kiosks[0],
        r,
        &upload_body(true, &[embedding(777, 512)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let path = app.server.db.path().to_owned();
    let conn = db::connect(&path).expect("connect");
    let ct: Vec<u8> = conn
        .query_row(
            "SELECT ciphertext FROM face_templates WHERE resident_id = ?1",
            [r],
            |row| row.get(0),
        )
        .expect("stored ciphertext");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let all = |files: Vec<(String, Vec<u8>)>| -> Vec<u8> {
        files.into_iter().flat_map(|(_, b)| b).collect()
    };
    assert!(
        contains(&all(database_bytes(&path)), &ct[..32]),
        "the search finds it while stored"
    );
    let resp = app
        .delete_as(ADMIN, &format!("/residents/{r}/templates"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // once the deletion reached the main file, no page holds the old bytes
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    assert!(
        !contains(&all(database_bytes(&path)), &ct[..32]),
        "purged ciphertext left in free pages after a checkpoint"
    );
}

#[test]
fn rows_from_before_sealing_are_sealed_and_lose_their_clear_digits_when_the_server_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.sqlite");
    let key = [42u8; 32];
    let number = national_id(date(1943, 9, 19), 232, false);
    let nid = NationalId::parse(&number).expect("valid");
    // A database as schema version 5 left it: a row with the clear mask and no sealed number.
    {
        let mut conn = db::connect(&path).expect("connect");
        let tx = conn.transaction().expect("tx");
        for (_, sql) in &db::migrate::MIGRATIONS[..5] {
            tx.execute_batch(sql).expect("migration");
        }
        tx.execute_batch("PRAGMA user_version = 5")
            .expect("version");
        tx.execute(
            "INSERT INTO towns (code, name) VALUES ('choucheng', '稠城街道')",
            [],
        )
        .expect("town");
        tx.execute(
            "INSERT INTO residents (id, name, sex, birth_date, national_id_index,
                national_id_masked, local_registration, registered_town, residence_town, status,
                card_code, created_at)
             VALUES (1, '旧档', 'female', '1943-09-19', ?1, ?2, 1, 'choucheng', 'choucheng',
                'active', 'OLD-1', '2026-01-01T00:00:00.000Z')",
            rusqlite::params![zhucan_server::crypto::blind_index(&key, &nid), nid.masked()],
        )
        .expect("legacy row");
        tx.commit().expect("commit");
    }
    let store = db::Db::open_keyed(&path, &key, crate::helpers::now()).expect("open");
    let dto = store
        .read_sync(|c| db::residents::get_dto(c, zhucan_domain::ResidentId(1)))
        .expect("dto");
    assert_eq!(dto.national_id_masked, nid.masked(), "shown as before");
    let (index, sealed) = store
        .read_sync(|c| db::residents::sealed_national_id(c, zhucan_domain::ResidentId(1)))
        .expect("sealed");
    let sealed = sealed.expect("sealed now");
    let opened =
        zhucan_server::crypto::open_national_id(&key, &index, &sealed.nonce, &sealed.ciphertext)
            .expect("opens");
    assert_eq!(opened, number, "the admin reveal works for the old row");
    drop(store);
    let conn = db::connect(&path).expect("connect");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
        .expect("checkpoint");
    drop(conn);
    let all: Vec<u8> = database_bytes(&path)
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    assert!(
        !contains(&all, nid.masked().as_bytes()),
        "the clear mask is gone from the file"
    );
    // Opened without the key (a copied file), the number reads as stars.
    let bare = db::Db::open(&path).expect("open bare");
    let dto = bare
        .read_sync(|c| db::residents::get_dto(c, zhucan_domain::ResidentId(1)))
        .expect("dto");
    assert_eq!(dto.national_id_masked, "*".repeat(18));
}

#[tokio::test]
async fn the_database_files_hold_no_national_id_number_and_no_embedding() {
    let app = spawn_app().await;
    let number = national_id(date(1950, 7, 1), 321, false);
    let nid = NationalId::parse(&number).expect("valid");
    let resp = app
        .post(
            "/residents",
            &json!({
                "name": "明文检查", "national_id": number, "local_registration": true,
                "registered_town": "choucheng", "residence_town": "choucheng",
                "categories": [], "card_code": "RAW-1", "designated_canteen": app.canteens[0],
                "consent": { "face_enrolment": true, "template_sharing": true }
            }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let known = [embedding(4242, 512), embedding(4243, 512)];
    let resp = upload(&app, ADMIN, id, &upload_body(true, &known)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // And a kiosk at the other canteen receives it (sharing), so it really is stored.
    let sync: Value = app
        .get_as(&app.kiosks[1], "/kiosk/sync?since=0")
        .await
        .json()
        .await
        .expect("json");
    let b64 = encode_embedding(&known[0]);
    assert!(sync.to_string().contains(&b64), "the template is served");

    let le: Vec<u8> = known[0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let index = zhucan_server::crypto::blind_index(&[42; 32], &nid);
    let masked = nid.masked();
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("the national ID number", number.as_bytes().to_vec()),
        ("its 17-digit body", number.as_bytes()[..17].to_vec()),
        // beside the birth date column, the masked form is the whole number
        ("the masked number", masked.as_bytes().to_vec()),
        ("the digits after the mask", masked.as_bytes()[8..].to_vec()),
        ("the embedding as little-endian f32", le.clone()),
        ("the embedding's first four values", le[..16].to_vec()),
        ("the embedding in base64", b64.as_bytes().to_vec()),
        ("the start of its base64", b64.as_bytes()[..24].to_vec()),
    ];
    let check = |files: &[(String, Vec<u8>)]| {
        for (name, bytes) in files {
            for (what, needle) in &needles {
                assert!(!contains(bytes, needle), "{what} is readable in {name}");
            }
        }
        let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
        // The search would find what is there: the birth date and the blind index are.
        assert!(contains(&all, b"1950-07-01"), "birth date present");
        assert!(contains(&all, index.as_bytes()), "blind index present");
    };
    // As the server left them (on SQLite WAL and all; on PostgreSQL a dump of the database).
    check(&app.database_files());
    if app.pg.is_none() {
        // then checkpointed into the main file
        app.sql("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        let files = app.database_files();
        assert!(files[0].1.len() > 4096, "the main file holds the data");
        check(&files);
    }
}

#[tokio::test]
async fn oversized_bodies_long_urls_big_headers_and_deep_json_are_refused_clearly() {
    let app = spawn_app_with(|c| c.body_limit = 64 * 1024).await;
    let big = "x".repeat(80 * 1024);
    let limit = "65536";

    // Settlements (a kiosk), residents (admin), a template upload: 413 naming the limit.
    let resp = app
        .client
        .post(app.url("/settlements"))
        .bearer_auth(&app.kiosks[0])
        .header("content-type", "application/json")
        .body(format!("{{\"items\":[],\"pad\":\"{big}\"}}"))
        .send()
        .await
        .expect("POST");
    let (st, err) = error_of(resp).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(err["code"], "payload_too_large");
    assert_eq!(err["field"], "body");
    assert!(
        err["message"].as_str().expect("msg").contains(limit),
        "{err}"
    );
    let resp = app.post("/residents", &json!({ "name": big })).await;
    let (st, err) = error_of(resp).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        err["message"].as_str().expect("msg").contains(limit),
        "{err}"
    );
    let many: Vec<Vec<f32>> = (0..40).map(|i| embedding(i, 1024)).collect();
    let resp = upload(
        &app,
        &app.kiosks[0],
        app.residents[4],
        &upload_body(false, &many),
    )
    .await;
    assert_eq!(error_of(resp).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    // A body sent without Content-Length (chunked) is cut off while read: the same answer.
    let (st, body) = post_chunked(&app, "/api/v1/residents", big.as_bytes()).await;
    assert_eq!(st, 413, "{body}");
    assert!(
        body.contains("payload_too_large") && body.contains(limit),
        "{body}"
    );

    // A 20 kB query string.
    let q = "a".repeat(20 * 1024);
    let (st, err) = error_of(app.get(&format!("/statements?month=2026-03&x={q}")).await).await;
    assert_eq!(st, StatusCode::URI_TOO_LONG);
    assert_eq!(
        (err["code"].as_str(), err["field"].as_str()),
        (Some("uri_too_long"), Some("query"))
    );
    assert!(
        err["message"].as_str().expect("msg").contains("8192"),
        "{err}"
    );

    // 40 kB of headers.
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .expect("GET");
    let (st, err) = error_of(resp).await;
    assert_eq!(
        (st, err["code"].as_str()),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Some("headers_too_large")
        )
    );

    // JSON nested 10,000 deep is refused before any parser recurses; the server lives on.
    let deep = format!("{{\"items\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let resp = app
        .client
        .post(app.url("/settlements"))
        .bearer_auth(&app.kiosks[0])
        .header("content-type", "application/json")
        .body(deep.clone())
        .send()
        .await
        .expect("POST");
    let (st, err) = error_of(resp).await;
    assert_eq!(
        (st, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("too_deep"))
    );
    let resp = app
        .client
        .post(app.url("/policies"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("POST");
    assert_eq!(error_of(resp).await.1["code"], "too_deep");
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

/// POSTs `body` as JSON with `Transfer-Encoding: chunked` (no Content-Length) over a plain TCP
/// connection, as the admin; returns the status code and the response text.
async fn post_chunked(app: &TestApp, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.server.addr
    );
    s.write_all(head.as_bytes()).await.expect("head");
    for chunk in body.chunks(8192) {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(chunk);
        c.extend_from_slice(b"\r\n");
        // The server may answer and close before it has read everything.
        if s.write_all(&c).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn kiosk_enrolment_is_rate_limited_per_address_on_the_clock() {
    let app = spawn_app().await;
    let enrol = || {
        app.client
            .post(app.url("/kiosks/enrol"))
            .json(&json!({ "code": "NOT-A-REAL-CODE", "public_key": "AAAA" }))
            .send()
    };
    for i in 0..10 {
        let resp = enrol().await.expect("enrol");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "attempt {i}");
    }
    let resp = enrol().await.expect("enrol");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "6");
    let (_, err) = error_of(resp).await;
    assert_eq!(err["code"], "rate_limited");
    // Six seconds later one more attempt is allowed, and only one.
    app.clock.set(now() + Duration::seconds(6));
    assert_eq!(
        enrol().await.expect("enrol").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        enrol().await.expect("enrol").status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The administrator's routes are not affected.
    assert_eq!(app.get("/kiosks").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn kiosk_routes_are_rate_limited_per_kiosk_token() {
    let app = spawn_app_with(|c| c.security.kiosk_per_minute = 3).await;
    let sync = |k: usize| app.get_as(&app.kiosks[k], "/kiosk/sync?since=0");
    for _ in 0..3 {
        assert_eq!(sync(0).await.status(), StatusCode::OK);
    }
    let resp = sync(0).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "20");
    // Settlements share the kiosk's bucket; the other kiosk has its own.
    assert_eq!(
        app.settle(0, vec![]).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(sync(1).await.status(), StatusCode::OK);
    app.clock.set(now() + Duration::seconds(20));
    assert_eq!(sync(0).await.status(), StatusCode::OK);
    // Once the bucket has refilled, settling works as ever.
    app.clock.set(now() + Duration::minutes(5));
    let res = app
        .settle_ok(
            0,
            vec![item(
                v7(),
                app.residents[0],
                app.canteens[0],
                "2026-03-15T11:00:00",
            )],
        )
        .await;
    assert_eq!(res[0]["status"], "accepted");
    assert_eq!(app.counts().await.0, 1);
}

#[tokio::test]
async fn bulk_reads_with_the_admin_token_are_audited() {
    let app = spawn_app().await;
    assert!(entries(&app, "api.read").await.is_empty());
    let list = app.json("/residents?limit=3").await;
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    app.json(&format!("/residents/{}", app.residents[1])).await;
    app.json("/statements?month=2026-03").await;
    let reads = entries(&app, "api.read").await;
    let seen: Vec<(&str, &str)> = reads
        .iter()
        .map(|r| (r.actor.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("admin-token", "residents"),
            ("admin-token", &*format!("resident:{}", app.residents[1])),
        ]
    );
    assert!(
        reads[0].detail.contains("\"rows\":3"),
        "{}",
        reads[0].detail
    );
    // The JSON statement is an export like the CSV and XLSX, whoever asks.
    let exports = entries(&app, "statement.export").await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].actor, "admin-token");
}
