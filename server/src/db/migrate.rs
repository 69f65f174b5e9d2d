//! A small `PRAGMA user_version` migrator: the numbered files of `migrations/server/` are embedded
//! in the binary and applied in order, all in one transaction. A database whose version is newer
//! than the newest migration known to this code is refused.

use rusqlite::Connection;

use super::{Error, Result};

/// The migrations, in order. Index `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/server/0001_init.sql"),
    ),
    (
        "0002_kiosk_sync",
        include_str!("../../../migrations/server/0002_kiosk_sync.sql"),
    ),
    (
        "0003_dashboard",
        include_str!("../../../migrations/server/0003_dashboard.sql"),
    ),
    (
        "0004_chain",
        include_str!("../../../migrations/server/0004_chain.sql"),
    ),
    (
        "0005_guard",
        include_str!("../../../migrations/server/0005_guard.sql"),
    ),
    (
        "0006_no_clear_id_digits",
        include_str!("../../../migrations/server/0006_no_clear_id_digits.sql"),
    ),
    (
        "0007_late_meals",
        include_str!("../../../migrations/server/0007_late_meals.sql"),
    ),
    (
        "0008_books_mac",
        include_str!("../../../migrations/server/0008_books_mac.sql"),
    ),
    (
        "0009_kiosk_thresholds",
        include_str!("../../../migrations/server/0009_kiosk_thresholds.sql"),
    ),
    (
        "0010_lookalikes",
        include_str!("../../../migrations/server/0010_lookalikes.sql"),
    ),
    (
        "0011_four_eyes",
        include_str!("../../../migrations/server/0011_four_eyes.sql"),
    ),
    (
        "0012_spot_checks",
        include_str!("../../../migrations/server/0012_spot_checks.sql"),
    ),
    (
        "0013_proxy_pickup",
        include_str!("../../../migrations/server/0013_proxy_pickup.sql"),
    ),
    (
        "0014_flags",
        include_str!("../../../migrations/server/0014_flags.sql"),
    ),
    (
        "0015_city_rules",
        include_str!("../../../migrations/server/0015_city_rules.sql"),
    ),
];

/// The schema version this code writes and understands.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

pub fn current(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Applies the missing migrations. Returns the version before and after.
pub fn apply(conn: &mut Connection) -> Result<(i64, i64)> {
    let before = current(conn)?;
    if before > latest() {
        return Err(Error::Conflict(format!(
            "the database schema is version {before}, newer than this code's {}; \
             run a newer zhucan-server",
            latest()
        )));
    }
    if before == latest() {
        return Ok((before, before));
    }
    let tx = conn.transaction()?;
    for (name, sql) in &MIGRATIONS[before as usize..] {
        tx.execute_batch(sql)
            .map_err(|e| Error::other(format!("migration {name}: {e}")))?;
        tracing::info!(migration = name, "applied");
    }
    tx.pragma_update(None, "user_version", latest())?;
    tx.commit()?;
    Ok((before, latest()))
}
