//! The books MAC and heads: an edit of the database file (amounts, a cleared void, an inserted
//! or deleted row) shows on the statement and in the chain check; heads printed on an export
//! tell later whether the audit log or a kiosk's chain was cut or rewritten after it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, item, spawn_app, v7};

/// Three kiosk lunches, one voided, and a staff dinner entered by the administrator; returns
/// (the kiosk meal ids, the staff meal id).
async fn books_of_march(app: &TestApp) -> (Vec<String>, String) {
    let meals: Vec<Value> = (0..3)
        .map(|i| {
            item(
                v7(),
                app.residents[i],
                app.canteens[0],
                "2026-03-15T11:00:00",
            )
        })
        .collect();
    let ids: Vec<String> = meals
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    let res = app.settle_ok(0, meals).await;
    assert!(res.iter().all(|r| r["status"] == "accepted"), "{res:?}");
    let resp = app
        .post(
            &format!("/settlements/{}/void", ids[2]),
            &json!({ "reason": "误刷", "by": "finance" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut staff = item(
        v7(),
        app.residents[3],
        app.canteens[0],
        "2026-03-14T17:00:00",
    );
    staff["method"] = json!("staff");
    staff["staff_reason"] = json!("老人忘带卡");
    let staff_id = staff["id"].as_str().expect("id").to_owned();
    let resp = app
        .post_as(
            crate::helpers::ADMIN,
            "/settlements",
            &json!({ "items": [staff] }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    (ids, staff_id)
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn rows_edited_inserted_or_deleted_in_the_database_file_are_named_on_the_statement() {
    let app = spawn_app().await;
    let (ids, staff_id) = books_of_march(&app).await;
    let before = app.json("/statements?month=2026-03").await;
    assert_eq!(before["books"]["checked"], 4, "{}", before["books"]);
    assert_eq!(before["books"]["altered_count"], 0);
    assert_eq!(before["books"]["missing"], json!([]));
    assert_eq!(
        app.json(&format!("/kiosks/{}/chain", app.kiosk_ids[0]))
            .await["status"],
        "verified"
    );

    // An insider with the database file: raises a subsidy, un-voids the voided meal, copies a
    // meal as a new one and deletes the staff meal.
    app.tamper(
        &[],
        &format!(
            "UPDATE settlements SET subsidy = subsidy + 500, city_fen = city_fen + 500,
                price = price + 500 WHERE id = '{a}';
             UPDATE settlements SET voided_at = NULL, void_reason = NULL, voided_by = NULL
             WHERE id = '{c}';
             INSERT INTO settlements SELECT 'copy-' || id, kiosk_id, canteen_id, resident_id,
                served_at, '2026-03-16', slot, method, match_score, liveness_score, delivered,
                staff_reason, outcome, rejection, price, subsidy, self_pay, payment, city_fen,
                town_fen, other_fen, funding_town, tier, eligibility, policy_id, policy_version,
                received_at, request_hash, voided_at, void_reason, voided_by, period,
                late_by_seconds, mac, proxy_carer_id, counter_price, delivery_fee,
                delivery_subsidy, stacked, stacked_fen, county_fen, canteen_fen, operating_fen,
                operating_source
             FROM settlements WHERE id = '{b}';
             DELETE FROM settlement_answers WHERE settlement_id = '{staff_id}';
             DELETE FROM settlements WHERE id = '{staff_id}';",
            a = ids[0],
            b = ids[1],
            c = ids[2],
        ),
    );
    let after = app.json("/statements?month=2026-03").await;
    let books = &after["books"];
    assert_eq!(books["altered_count"], 3, "{books}");
    assert_eq!(strings(&books["altered"]), {
        let mut want = vec![
            format!("settlement:copy-{}", ids[1]),
            format!("settlement:{}", ids[0]),
            format!("settlement:{}", ids[2]),
        ];
        want.sort();
        want
    });
    assert_eq!(
        strings(&books["missing"]),
        vec![format!("settlement:{staff_id}")]
    );
    // The kiosk's chain check names its edited rows too.
    let chain = app
        .json(&format!("/kiosks/{}/chain", app.kiosk_ids[0]))
        .await;
    assert_eq!(chain["status"], "broken");
    let altered: Vec<&Value> = chain["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["kind"] == "altered")
        .collect();
    assert_eq!(altered.len(), 3, "{chain}");
    // The exports say it in Chinese, and the finance page shows it.
    let csv = app
        .get("/statements?month=2026-03&format=csv")
        .await
        .text()
        .await
        .expect("csv");
    let line = csv
        .lines()
        .find(|l| l.starts_with("账目校验"))
        .expect("books line");
    assert!(line.contains("有改动：3 条记录"), "{line}");
    assert!(line.contains(&staff_id), "{line}");
}

#[tokio::test]
async fn heads_from_an_earlier_export_show_a_cut_or_rewritten_audit_log_and_kiosk_chain() {
    let app = spawn_app().await;
    books_of_march(&app).await;
    // The heads as printed on the CSV export (the last cell of the 校验锚点 line).
    let csv = app
        .get("/statements?month=2026-03&format=csv")
        .await
        .text()
        .await
        .expect("csv");
    let token = csv
        .lines()
        .find(|l| l.starts_with("校验锚点"))
        .and_then(|l| l.rsplit(',').next())
        .expect("heads line")
        .to_owned();
    assert!(token.starts_with("zhucan-heads:v1;audit="), "{token}");
    let check = |token: String| {
        let app = &app;
        async move {
            let resp = app
                .get_query_as(
                    crate::helpers::ADMIN,
                    "/integrity/heads",
                    &[("heads", &token)],
                )
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.expect("json")
        }
    };
    // More meals later: the earlier heads are still there.
    let later = item(
        v7(),
        app.residents[4],
        app.canteens[0],
        "2026-03-15T11:30:00",
    );
    assert_eq!(app.settle_ok(0, vec![later]).await[0]["status"], "accepted");
    let ok = check(token.clone()).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["audit"]["verdict"], "present");
    assert_eq!(ok["kiosks"][0]["verdict"], "present");

    let earlier = zhucan_domain::api::Heads::parse(&token).expect("parse");
    let kiosk = &earlier.kiosks[0];
    assert_eq!(kiosk.kiosk_id, app.kiosk_ids[0]);
    // The insider cuts the audit log and the kiosk's chain back to before the export.
    app.tamper(
        &["audit_log_no_delete", "audit_log_no_update"],
        &format!(
            "DELETE FROM audit_log WHERE seq >= {};
             DELETE FROM chain_links WHERE kiosk_id = {} AND seq >= {};",
            earlier.audit_seq, kiosk.kiosk_id, kiosk.seq
        ),
    );
    let cut = check(token.clone()).await;
    assert_eq!(cut["ok"], false);
    assert_eq!(cut["audit"]["verdict"], "removed", "{cut}");
    assert_eq!(cut["kiosks"][0]["verdict"], "removed");
    assert_eq!(cut["kiosks"][0]["now_seq"], kiosk.seq - 1);

    // A head whose entry is there with another hash: rewritten.
    let rewritten = token.replace(&earlier.kiosks[0].hash, &"0".repeat(64));
    let mut other = zhucan_domain::api::Heads::parse(&rewritten).expect("parse");
    other.kiosks[0].seq = 1;
    let other = zhucan_domain::api::Heads::new(other.audit_seq, other.audit_hash, other.kiosks);
    let r = check(other.token).await;
    assert_eq!(r["kiosks"][0]["verdict"], "rewritten", "{r}");

    // A malformed token names the field.
    let resp = app
        .get_query_as(
            crate::helpers::ADMIN,
            "/integrity/heads",
            &[("heads", "zhucan-heads:v1;audit=x:y")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["field"], "heads");
    // A kiosk may not ask.
    let resp = app
        .get_query_as(&app.kiosks[0], "/integrity/heads", &[("heads", &token)])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn rows_from_before_the_books_mac_are_sealed_once_and_the_seal_is_audited() {
    // rows from before the books MAC exist only in SQLite files (PostgreSQL starts after it)
    let app = crate::helpers::spawn_sqlite_app().await;
    let (ids, _) = books_of_march(&app).await;
    // The server sealed an empty database when it first opened it.
    let seals = app
        .server
        .db
        .read_sync(|c| zhucan_server::db::audit::of_action(c, "books.seal"))
        .expect("audit");
    assert_eq!(seals.len(), 1, "{seals:?}");
    // A NULL MAC (as rows from before migration 0008 had) is a finding, not sealed again by a
    // restart: the marker exists.
    app.tamper(
        &[],
        &format!("UPDATE settlements SET mac = NULL WHERE id = '{}'", ids[0]),
    );
    let path = app.server.db.path().to_owned();
    let key = vec![42u8; 32]; // the test server's key (helpers::config)
    let reopened =
        zhucan_server::db::Db::open_keyed(&path, &key, crate::helpers::now()).expect("reopen");
    let check = reopened
        .read_sync(|c| zhucan_server::db::books::check(c, "2026-03"))
        .expect("check");
    assert_eq!(check.altered, vec![format!("settlement:{}", ids[0])]);
}
