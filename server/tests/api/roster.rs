//! The civil-affairs roster import (all rows or none) and the schema guard.

use chrono::Utc;
use zhucan_server::db::{self, Db};
use zhucan_server::import::{self, Error};

use crate::helpers::{date, national_id, spawn_app};

#[tokio::test]
async fn a_roster_with_bad_rows_reports_every_one_and_imports_nothing() {
    let app = spawn_app().await;
    let db = app.server.db.clone();
    let before = db
        .read(|c| db::residents::list(c, None, 1000, 0))
        .await
        .expect("list")
        .len();
    let ok1 = national_id(date(1940, 3, 3), 11, true);
    let ok2 = national_id(date(1950, 4, 4), 12, false);
    let csv = format!(
        "\u{feff}姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,身故日期,卡号,指定食堂,预存余额\n\
         楼根土,男,{ok1},本地,稠城街道,choucheng,低保、孤寡,正常,,R001,,50.00\n\
         吴桂英,女,33078219500404001,本地,稠城街道,稠城街道,,正常,,R002,,\n\
         陈秀英,女,{ok2},外省,稠城街道,不存在镇,未知类别!,正常,,R001,99,1.234\n\
         金福生,男,{ok1},本地,稠城街道,稠城街道,,身故,,R004,,\n"
    );
    let key = vec![42u8; 32];
    let d = db.clone();
    let err = tokio::task::spawn_blocking(move || {
        import::residents(&d, &key, csv.as_bytes(), Utc::now())
    })
    .await
    .expect("join")
    .expect_err("bad rows");
    let Error::Rows(rows) = err else {
        panic!("expected row errors, got {err}")
    };
    let at = |line: u64, col: &str| rows.iter().any(|r| r.line == line && r.column == col);
    assert!(at(3, "身份证号"), "{rows:?}");
    assert!(at(4, "户籍"), "{rows:?}");
    assert!(at(4, "居住镇街"), "{rows:?}");
    assert!(at(4, "类别"), "{rows:?}");
    assert!(at(4, "卡号"), "duplicate card in the file: {rows:?}");
    assert!(at(4, "指定食堂"), "{rows:?}");
    assert!(at(4, "预存余额"), "{rows:?}");
    assert!(at(5, "身份证号"), "duplicate number in the file: {rows:?}");
    assert!(at(5, "身故日期"), "{rows:?}");
    assert!(
        !rows.iter().any(|r| r.line == 2),
        "line 2 is good: {rows:?}"
    );
    let after = db
        .read(|c| db::residents::list(c, None, 1000, 0))
        .await
        .expect("list")
        .len();
    assert_eq!(after, before, "nothing imported");

    // The same file fixed imports every row, in English headers too.
    let csv = format!(
        "name,sex,national_id,registration,registered_town,residence_town,categories,status,card_code\n\
         楼根土,男,{ok1},本地,稠城街道,choucheng,低保;孤寡,正常,R001\n\
         陈秀英,女,{ok2},外地,佛堂镇,fotang,,暂停,R003\n"
    );
    let key = vec![42u8; 32];
    let d = db.clone();
    let summary = tokio::task::spawn_blocking(move || {
        import::residents(&d, &key, csv.as_bytes(), Utc::now())
    })
    .await
    .expect("join")
    .expect("imports");
    assert_eq!(summary.imported, 2);
    let all = db
        .read(|c| db::residents::list(c, None, 1000, 0))
        .await
        .expect("list");
    let r = all
        .iter()
        .find(|r| r.card_code == "R001")
        .expect("imported");
    assert_eq!(r.categories, vec!["dibao".to_owned(), "gugua".to_owned()]);
    assert_eq!(r.birth_year, 1940);
    let id = r.id;
    let full = db
        .read(move |c| db::residents::get(c, id))
        .await
        .expect("resident");
    assert_eq!(full.birth_date, date(1940, 3, 3));
}

#[test]
fn a_database_newer_than_the_code_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("z.sqlite");
    drop(Db::open(&path).expect("fresh database"));
    let conn = db::connect(&path).expect("connect");
    conn.pragma_update(None, "user_version", db::migrate::latest() + 1)
        .expect("bump");
    drop(conn);
    let err = Db::open(&path).expect_err("refused");
    assert!(err.to_string().contains("newer"), "{err}");
    // And the current version opens fine and is not re-migrated.
    let conn = db::connect(&path).expect("connect");
    conn.pragma_update(None, "user_version", db::migrate::latest())
        .expect("reset");
    drop(conn);
    assert!(Db::open(&path).is_ok());
}
