//! The roster CSV importer, end to end against a real SQLite database with two towns: any bytes are either imported whole or refused with line/column reasons.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zhucan_domain::api::TownDto;
use zhucan_server::db::Db;

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(&dir.path().join("fuzz.sqlite")).expect("open db");
        db.write_blocking(|tx| {
            for (code, name) in [("choucheng", "稠城街道"), ("fotang", "佛堂镇")] {
                zhucan_server::db::towns::insert(
                    tx,
                    &TownDto {
                        code: code.into(),
                        name: name.into(),
                    },
                )?;
            }
            Ok(())
        })
        .expect("seed towns");
        Fixture { _dir: dir, db }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
    match zhucan_server::import::residents(&f.db, &[42; 32], data, now) {
        Ok(_) => {}
        Err(zhucan_server::import::Error::Rows(rows)) => assert!(!rows.is_empty()),
        Err(zhucan_server::import::Error::Read(_)) => {}
        Err(e) => panic!("the importer failed unexpectedly: {e}"),
    }
});
