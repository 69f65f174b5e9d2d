//! The server's migrations: the numbered files of `migrations/server/`, embedded in the binary and
//! applied by the one migrator ([`zhucan_platform::migrate`]): in order, all in one transaction,
//! a newer schema refused.

use rusqlite::Connection;

use super::Result;

/// The migrations, in order. Index `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[zhucan_platform::migrate::Migration] = &[
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

/// The schema version of an SQLite file.
pub fn current(conn: &Connection) -> Result<i64> {
    Ok(zhucan_platform::migrate::current(conn)?)
}

/// The schema version, on either database (SQLite's `user_version`, PostgreSQL's
/// `zhucan_schema_version`).
pub fn version(conn: &super::Conn<'_>) -> Result<i64> {
    conn.query_row(
        conn.pick(
            "SELECT user_version FROM pragma_user_version",
            "SELECT COALESCE(MAX(version), 0) FROM zhucan_schema_version",
        ),
        (),
        |r| r.get(0),
    )
}

/// Applies the missing migrations (the one migrator the kiosk uses too). Returns the version
/// before and after.
pub fn apply(conn: &mut Connection) -> Result<(i64, i64)> {
    Ok(zhucan_platform::migrate::apply(conn, MIGRATIONS, "server")?)
}
