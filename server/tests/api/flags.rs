//! Audit red flags over real HTTP: each fraud pattern is built and flagged, and its honest twin
//! next to it is not; reviews withhold and release subsidy on the statement; a month with
//! unreviewed flags closes only with a reason.

use reqwest::StatusCode;
use serde_json::{Value, json};
use zhucan_server::config::Clock;

use crate::helpers::{
    TestApp, created, date, item, national_id, patch, spawn_app, spawn_app_with, v7,
};

/// Adds `n` residents living in `town` (70 years old, local, no category); returns their ids.
async fn residents(app: &TestApp, town: &str, n: usize, from: u32) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 0..n {
        let seq = from + i as u32;
        let r = created(
            app.post(
                "/residents",
                &json!({
                    "name": format!("{town}老人{seq}"),
                    "national_id": national_id(date(1956, 1, 1 + (seq % 28)), seq, seq.is_multiple_of(2)),
                    "local_registration": true,
                    "registered_town": town,
                    "residence_town": town,
                    "categories": [],
                    "card_code": format!("F{seq}"),
                }),
            )
            .await,
        )
        .await;
        out.push(r["id"].as_i64().expect("id"));
    }
    out
}

/// Lunches at kiosk `k`'s canteen on `day` for `who`, sent that evening.
async fn lunches(app: &TestApp, k: usize, day: &str, who: &[i64]) -> Vec<Value> {
    let items = who
        .iter()
        .enumerate()
        .map(|(i, r)| {
            item(
                v7(),
                *r,
                app.canteens[k],
                &format!("{day}T11:{:02}:00", i % 60),
            )
        })
        .collect();
    let res = app.settle_on_the_day(k, day, items).await;
    for r in &res {
        assert_eq!(r["status"], "accepted", "{r}");
    }
    res
}

async fn flags(app: &TestApp, month: &str) -> Vec<Value> {
    app.json(&format!("/flags?month={month}"))
        .await
        .as_array()
        .expect("flags")
        .clone()
}

fn of_kind<'a>(flags: &'a [Value], kind: &str) -> Vec<&'a Value> {
    flags.iter().filter(|f| f["kind"] == kind).collect()
}

fn ids_of(results: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = results
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    v.sort();
    v
}

fn flag_ids(f: &Value) -> Vec<String> {
    let mut v: Vec<String> = f["settlement_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_str().expect("id").to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn meals_above_a_canteens_roster_are_flagged_with_the_meals_behind_them() {
    let app = spawn_app().await;
    // canteen 0 is in choucheng, where the 5 fixture residents live; 3 fotang residents
    let fotang = residents(&app, "fotang", 3, 100).await;
    let mut padded: Vec<i64> = app.residents.clone();
    padded.extend(&fotang);
    let day = lunches(&app, 0, "2026-03-10", &padded).await;
    // the honest twin: canteen 1 in fotang feeds its own 3 residents the next day
    lunches(&app, 1, "2026-03-11", &fotang).await;

    let all = flags(&app, "2026-03").await;
    let over = of_kind(&all, "above_roster");
    assert_eq!(over.len(), 1, "{all:#?}");
    let f = over[0];
    assert_eq!(f["canteen_id"], app.canteens[0]);
    assert_eq!(f["severity"], "high");
    assert_eq!(f["meals"], 8);
    assert_eq!(flag_ids(f), ids_of(&day), "the meals behind it");
    assert!(f["expected"].as_str().expect("e").contains("5"), "{f}");
    assert_eq!(
        f["link"],
        format!("/finance/canteens/{}?month=2026-03", app.canteens[0])
    );
    // one canteen's view
    let one = app
        .json(&format!("/flags?month=2026-03&canteen={}", app.canteens[1]))
        .await;
    assert_eq!(one, json!([]), "the honest canteen has no flag");
}

#[tokio::test]
async fn a_sudden_jump_and_a_flat_week_are_flagged_and_ordinary_variation_is_not() {
    let app = spawn_app().await;
    let town = residents(&app, "choucheng", 30, 200).await;
    let fotang = residents(&app, "fotang", 8, 300).await;
    // four weeks of 6..9 lunches a day at canteen 0, then one day with 30
    for d in 1..=28 {
        let day = format!("2026-02-{d:02}");
        let n = 6 + (d % 4) as usize;
        lunches(&app, 0, &day, &town[..n]).await;
    }
    lunches(&app, 0, "2026-03-02", &town[..8]).await;
    lunches(&app, 0, "2026-03-03", &town).await;
    // canteen 1: exactly 6 lunches on 7 days running, then 5 and 7
    for d in 4..=10 {
        lunches(&app, 1, &format!("2026-03-{d:02}"), &fotang[..6]).await;
    }
    lunches(&app, 1, "2026-03-11", &fotang[..5]).await;
    lunches(&app, 1, "2026-03-12", &fotang[..7]).await;

    let march = flags(&app, "2026-03").await;
    let jump = of_kind(&march, "jump");
    assert_eq!(jump.len(), 1, "{march:#?}");
    assert_eq!(jump[0]["canteen_id"], app.canteens[0]);
    assert_eq!(jump[0]["meals"], 30, "the meals of the jump day");
    assert!(jump[0]["seen"].as_str().expect("s").contains("2026-03-03"));
    let flat = of_kind(&march, "flat_count");
    assert_eq!(flat.len(), 1, "{march:#?}");
    assert_eq!(flat[0]["canteen_id"], app.canteens[1]);
    assert_eq!(flat[0]["meals"], 42);
    // February: counts that vary are not flat, and no day jumps
    let feb = flags(&app, "2026-02").await;
    assert!(of_kind(&feb, "jump").is_empty(), "{feb:#?}");
    assert!(of_kind(&feb, "flat_count").is_empty(), "{feb:#?}");
}

#[tokio::test]
async fn meals_on_a_closed_day_after_a_death_or_while_away_are_flagged() {
    let app = spawn_app().await;
    let r = &app.residents;
    // canteen 0 is closed on 03-09 and still records lunches; canteen 1 closed that day is quiet
    for k in 0..2 {
        let resp = app
            .put(
                &format!("/canteens/{}/closed-days", app.canteens[k]),
                &json!({ "dates": ["2026-03-09"], "reason": "设备检修" }),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let closed = lunches(&app, 0, "2026-03-09", &[r[0], r[3]]).await;
    // resident 1 ate on 03-06..08 and is later recorded dead on 03-05; resident 2 died on 03-09
    let mut dead_meals = Vec::new();
    for d in 6..=8 {
        let day = format!("2026-03-{d:02}");
        dead_meals.extend(lunches(&app, 0, &day, &[r[1]]).await);
        lunches(&app, 0, &day, &[r[2]]).await;
    }
    patch(
        &app,
        r[1],
        json!({ "status": "deceased", "deceased_on": "2026-03-05" }),
    )
    .await;
    patch(
        &app,
        r[2],
        json!({ "status": "deceased", "deceased_on": "2026-03-09" }),
    )
    .await;
    // resident 0 was in hospital 03-01..03-04 and ate on 03-02; resident 3's absence is later
    let away = lunches(&app, 0, "2026-03-02", &[r[0], r[3]]).await;
    for (who, from, to) in [
        (r[0], "2026-03-01", "2026-03-04"),
        (r[3], "2026-03-20", "2026-03-25"),
    ] {
        let resp = app
            .post(
                &format!("/residents/{who}/absences"),
                &json!({ "from": from, "to": to, "reason": "住院" }),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let all = flags(&app, "2026-03").await;
    let closed_f = of_kind(&all, "closed_day");
    assert_eq!(closed_f.len(), 1, "{all:#?}");
    assert_eq!(flag_ids(closed_f[0]), ids_of(&closed));
    let dead = of_kind(&all, "after_death");
    assert_eq!(dead.len(), 1, "{all:#?}");
    assert_eq!(dead[0]["resident_id"], r[1]);
    assert_eq!(flag_ids(dead[0]), ids_of(&dead_meals));
    let away_f = of_kind(&all, "while_away");
    assert_eq!(away_f.len(), 1, "{all:#?}");
    assert_eq!(away_f[0]["resident_id"], r[0]);
    assert_eq!(flag_ids(away_f[0]), ids_of(&away[..1]));

    // bad input names the field
    let resp = app
        .put(
            &format!("/canteens/{}/closed-days", app.canteens[0]),
            &json!({ "dates": ["2026-03-09"], "reason": " " }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["field"], "reason");
    let resp = app
        .post(
            &format!("/residents/{}/absences", r[0]),
            &json!({ "from": "2026-03-04", "to": "2026-03-01", "reason": "住院" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["field"], "to");
}

#[tokio::test]
async fn one_resident_at_two_canteens_too_soon_is_flagged_and_a_later_visit_is_not() {
    let app = spawn_app().await;
    let r = &app.residents;
    app.settle_on_the_day(
        0,
        "2026-03-10",
        vec![item(v7(), r[0], app.canteens[0], "2026-03-10T11:00:00")],
    )
    .await;
    // 40 minutes later the same resident at canteen 1: refused as a duplicate lunch, flagged
    app.settle_on_the_day(
        1,
        "2026-03-10",
        vec![item(v7(), r[0], app.canteens[1], "2026-03-10T11:40:00")],
    )
    .await;
    // the honest twin: resident 2 at canteen 0 today and canteen 1 tomorrow
    app.settle_on_the_day(
        0,
        "2026-03-10",
        vec![item(v7(), r[2], app.canteens[0], "2026-03-10T11:05:00")],
    )
    .await;
    app.settle_on_the_day(
        1,
        "2026-03-11",
        vec![item(v7(), r[2], app.canteens[1], "2026-03-11T11:05:00")],
    )
    .await;
    let all = flags(&app, "2026-03").await;
    let two = of_kind(&all, "two_canteens");
    assert_eq!(two.len(), 1, "{all:#?}");
    assert_eq!(two[0]["resident_id"], r[0]);
    assert!(two[0]["seen"].as_str().expect("s").contains("40"));
}

#[tokio::test]
async fn a_heavy_manual_share_and_late_uploads_are_flagged_per_canteen_and_person() {
    let app = spawn_app().await;
    let choucheng = residents(&app, "choucheng", 20, 400).await;
    let fotang = residents(&app, "fotang", 20, 500).await;
    // canteen 0: 20 lunches, 6 of them staff-confirmed at the kiosk; canteen 1: 20, 2 staff
    for (k, who, staff) in [(0, &choucheng, 6), (1, &fotang, 2)] {
        let items: Vec<Value> = who
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut it = item(
                    v7(),
                    *r,
                    app.canteens[k],
                    &format!("2026-03-10T11:{i:02}:00"),
                );
                if i < staff {
                    it["method"] = json!("staff");
                    it["staff_reason"] = json!("老人忘带卡");
                }
                it
            })
            .collect();
        app.settle_on_the_day(k, "2026-03-10", items).await;
    }
    // February at canteen 1: 15 kiosk lunches and 5 staff meals entered on the server with
    // the admin token, that evening
    lunches(&app, 1, "2026-02-10", &fotang[5..]).await;
    let entered: Vec<Value> = fotang[..5]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut it = item(
                v7(),
                *r,
                app.canteens[1],
                &format!("2026-02-10T11:{i:02}:00"),
            );
            it["method"] = json!("staff");
            it["staff_reason"] = json!("终端故障，人工登记");
            it
        })
        .collect();
    let before = app.clock.now();
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-02-10T20:00:00+08:00")
            .expect("t")
            .to_utc(),
    );
    let resp = app.post("/settlements", &json!({ "items": entered })).await;
    app.clock.set(before);
    assert_eq!(resp.status(), StatusCode::OK);
    // canteen 0 sends a lunch three days late (the server's clock is 2026-03-15 12:00)
    let late = app
        .settle_ok(
            0,
            vec![item(
                v7(),
                choucheng[0],
                app.canteens[0],
                "2026-03-12T11:00:00",
            )],
        )
        .await;
    assert_eq!(late[0]["status"], "accepted");

    let all = flags(&app, "2026-03").await;
    let share = of_kind(&all, "manual_share");
    assert_eq!(share.len(), 1, "{all:#?}");
    assert_eq!(share[0]["canteen_id"], app.canteens[0]);
    assert_eq!(share[0]["meals"], 6);
    assert!(
        of_kind(&all, "manual_share_operator").is_empty(),
        "{all:#?}"
    );
    let feb = flags(&app, "2026-02").await;
    let person = of_kind(&feb, "manual_share_operator");
    assert_eq!(person.len(), 1, "{feb:#?}");
    assert_eq!(person[0]["canteen_id"], app.canteens[1]);
    assert_eq!(person[0]["meals"], 5);
    assert!(
        person[0]["key"]
            .as_str()
            .expect("k")
            .contains("admin-token")
    );
    let late_f = of_kind(&all, "late_upload");
    assert_eq!(late_f.len(), 1, "{all:#?}");
    assert_eq!(late_f[0]["canteen_id"], app.canteens[0]);
    assert_eq!(late_f[0]["meals"], 1);
}

/// Face meals of a resident that barely clear the kiosk's threshold, and a kiosk whose scores
/// fall; their twins with ordinary scores.
#[tokio::test]
async fn borderline_face_scores_and_a_drifting_kiosk_are_flagged() {
    let app = spawn_app_with(|c| {
        c.security.flags.borderline_min_meals = 4;
        c.security.flags.drift_min_meals = 4;
    })
    .await;
    let r4 = app.residents[4];
    let resp = crate::helpers::upload(
        &app,
        &app.kiosks[0],
        r4,
        &crate::helpers::upload_body(false, &[crate::helpers::embedding(4, 192)]),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let face = |day: &str, m: f64, l: f64| {
        let mut it = item(v7(), r4, app.canteens[0], &format!("{day}T11:30:00"));
        it["method"] = json!("face");
        it["match_score"] = json!(m);
        it["liveness_score"] = json!(l);
        it
    };
    // December to February: good scores; March: just above 0.62, liveness lower
    for (month, days) in [("2025-12", 1..=4), ("2026-01", 1..=4), ("2026-02", 1..=4)] {
        for d in days {
            let day = format!("{month}-{d:02}");
            app.settle_on_the_day(0, &day, vec![face(&day, 0.85, 0.97)])
                .await;
        }
    }
    for d in 1..=4 {
        let day = format!("2026-03-{d:02}");
        let res = app
            .settle_on_the_day(0, &day, vec![face(&day, 0.64, 0.80)])
            .await;
        assert_eq!(res[0]["status"], "accepted", "{}", res[0]);
    }
    let march = flags(&app, "2026-03").await;
    let close = of_kind(&march, "borderline_scores");
    assert_eq!(close.len(), 1, "{march:#?}");
    assert_eq!(close[0]["resident_id"], r4);
    assert_eq!(close[0]["meals"], 4);
    let drift = of_kind(&march, "score_drift");
    assert_eq!(drift.len(), 1, "{march:#?}");
    assert_eq!(drift[0]["kiosk_id"], app.kiosk_ids[0]);
    // the twin: February's scores are ordinary (and the months before it too few to compare)
    let feb = flags(&app, "2026-02").await;
    assert!(of_kind(&feb, "borderline_scores").is_empty(), "{feb:#?}");
    assert!(of_kind(&feb, "score_drift").is_empty(), "{feb:#?}");
}

#[tokio::test]
async fn confirming_a_flag_withholds_its_subsidy_and_explaining_it_releases_it() {
    let app = spawn_app().await;
    let fotang = residents(&app, "fotang", 3, 100).await;
    let mut padded: Vec<i64> = app.residents.clone();
    padded.extend(&fotang);
    let day = lunches(&app, 0, "2026-03-10", &padded).await;
    let flag = of_kind(&flags(&app, "2026-03").await, "above_roster")[0].clone();
    let key = flag["key"].as_str().expect("key").to_owned();
    let subsidy: i64 = day
        .iter()
        .map(|r| r["meal"]["subsidy"].as_i64().unwrap_or(0))
        .sum();
    // resident 3 is not local: a full-price meal, nothing to withhold
    let subsidised = day
        .iter()
        .filter(|r| r["meal"]["subsidy"].as_i64().unwrap_or(0) > 0)
        .count();
    assert_eq!(subsidised, 7);
    assert!(subsidy > 0);
    assert_eq!(flag["subsidy"], subsidy);

    // a note is required, the state must be known
    for (body, field) in [
        (
            json!({ "month": "2026-03", "key": key, "state": "confirmed", "note": "" }),
            "note",
        ),
        (
            json!({ "month": "2026-03", "key": key, "state": "maybe", "note": "x" }),
            "state",
        ),
        (
            json!({ "month": "2026-03", "key": "nope", "state": "confirmed", "note": "x" }),
            "key",
        ),
    ] {
        let resp = app.post("/flags/review", &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let e: Value = resp.json().await.expect("json");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let before = app.json("/statements?month=2026-03").await;
    assert_eq!(before["withheld_total"], 0);
    assert_eq!(before["payable"], before["total"]["subsidy"]);

    let resp = app
        .post(
            "/flags/review",
            &json!({ "month": "2026-03", "key": key, "state": "confirmed",
                "note": "抽查：3 名佛堂老人当天未到宾王就餐" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let done: Value = resp.json().await.expect("json");
    assert_eq!(done["withheld_meals"], 7);
    assert_eq!(done["withheld"], subsidy);
    assert_eq!(done["flag"]["review"]["state"], "confirmed");
    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["withheld_total"], subsidy);
    assert_eq!(
        s["payable"].as_i64(),
        Some(s["total"]["subsidy"].as_i64().expect("subsidy") - subsidy)
    );
    assert_eq!(s["withheld"].as_array().map(Vec::len), Some(7));
    assert!(
        s["books"]["altered"].as_array().expect("a").is_empty(),
        "{}",
        s["books"]
    );
    // the CSV and the XLSX say it too
    let csv = app
        .get("/statements?month=2026-03&format=csv")
        .await
        .text()
        .await
        .expect("csv");
    assert!(csv.contains("暂扣"), "{csv}");
    let xlsx = app
        .get("/statements?month=2026-03&format=xlsx")
        .await
        .bytes()
        .await
        .expect("xlsx");
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).expect("xlsx");
    let sheet = calamine::Reader::worksheet_range(&mut book, "预警暂扣").expect("sheet");
    assert_eq!(sheet.height(), 7 + 2, "header, 7 meals, total");

    // explained: released
    let resp = app
        .post(
            "/flags/review",
            &json!({ "month": "2026-03", "key": key, "state": "explained",
                "note": "核实：佛堂老人在宾王附近女儿家暂住" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let done: Value = resp.json().await.expect("json");
    assert_eq!(done["released_meals"], 7);
    let s = app.json("/statements?month=2026-03").await;
    assert_eq!(s["withheld_total"], 0);
    // both decisions are in the audit log
    let audit = app.json("/audit?limit=50").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"flag.confirmed") && actions.contains(&"flag.explained"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_month_with_unreviewed_flags_closes_only_with_a_reason_and_then_stays_as_it_is() {
    let app = spawn_app().await;
    let fotang = residents(&app, "fotang", 3, 100).await;
    let mut padded: Vec<i64> = app.residents.clone();
    padded.extend(&fotang);
    lunches(&app, 0, "2026-02-10", &padded).await;
    let resp = app.post("/months/2026-02/close", &json!({})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.expect("json");
    assert_eq!(e["error"]["field"], "open_flags_reason", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("m")
            .contains("above_roster")
    );
    let resp = app
        .post(
            "/months/2026-02/close",
            &json!({ "open_flags_reason": "抽查安排在下月，先结账" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // a closed month's flags can no longer change what it pays
    let key = of_kind(&flags(&app, "2026-02").await, "above_roster")[0]["key"].clone();
    let resp = app
        .post(
            "/flags/review",
            &json!({ "month": "2026-02", "key": key, "state": "confirmed", "note": "x" }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    // a month without flags closes as before
    let resp = app.post("/months/2026-01/close", &json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
}
