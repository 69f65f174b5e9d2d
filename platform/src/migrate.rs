//! The one SQLite migrator of the server and the kiosk: numbered SQL files embedded in the
//! binary, applied in order in ONE transaction, the schema version in `PRAGMA user_version`. A
//! database whose version is newer than the code's newest migration is refused (an older binary
//! must not write a newer schema).

use rusqlite::Connection;

/// A named migration: `("0003_dashboard", include_str!(...))`. Index `i` of a list brings the
/// schema to version `i + 1`.
pub type Migration = (&'static str, &'static str);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the {what} database schema is version {found}, newer than this code's {latest}; run a \
         newer zhucan-{what}"
    )]
    Newer {
        what: &'static str,
        found: i64,
        latest: i64,
    },
    #[error("migration {name}: {source}")]
    Failed {
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// The version `conn`'s schema is at.
pub fn current(conn: &Connection) -> Result<i64, Error> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Applies the migrations `conn` lacks, all in one transaction; returns the version before and
/// after. `what` names the program (`server`, `kiosk`) in the error for a newer schema.
pub fn apply(
    conn: &mut Connection,
    migrations: &[Migration],
    what: &'static str,
) -> Result<(i64, i64), Error> {
    let latest = migrations.len() as i64;
    let before = current(conn)?;
    if before > latest {
        return Err(Error::Newer {
            what,
            found: before,
            latest,
        });
    }
    if before == latest {
        return Ok((before, before));
    }
    let tx = conn.transaction()?;
    for (name, sql) in &migrations[before as usize..] {
        tx.execute_batch(sql)
            .map_err(|source| Error::Failed { name, source })?;
        tracing::info!(migration = name, "applied");
    }
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    Ok((before, latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &[Migration] = &[
        ("0001_a", "CREATE TABLE a (x INTEGER);"),
        ("0002_b", "CREATE TABLE b (y INTEGER);"),
    ];

    #[test]
    fn applies_what_is_missing_once_and_refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().expect("open");
        assert_eq!(apply(&mut conn, &TWO[..1], "test").expect("first"), (0, 1));
        assert_eq!(apply(&mut conn, TWO, "test").expect("second"), (1, 2));
        assert_eq!(apply(&mut conn, TWO, "test").expect("again"), (2, 2));
        let e = apply(&mut conn, &TWO[..1], "test").expect_err("newer");
        assert!(
            e.to_string()
                .contains("version 2, newer than this code's 1"),
            "{e}"
        );
    }

    #[test]
    fn a_failing_migration_leaves_nothing_half_written() {
        let mut conn = Connection::open_in_memory().expect("open");
        let bad: &[Migration] = &[
            ("0001_a", "CREATE TABLE a (x INTEGER);"),
            ("0002_bad", "CREATE TABLE b (y INTEGER); NOT SQL;"),
        ];
        let e = apply(&mut conn, bad, "test").expect_err("bad");
        assert!(e.to_string().contains("0002_bad"), "{e}");
        assert_eq!(current(&conn).expect("version"), 0);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(tables, 0, "the first migration was rolled back too");
    }
}
