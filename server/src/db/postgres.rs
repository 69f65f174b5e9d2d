//! PostgreSQL: the connection pool and the migrator, for a province that outgrows one SQLite file
//! (ARCHITECTURE.md, "PostgreSQL"). The driver is `tokio-postgres` with the `deadpool-postgres`
//! pool. The schema is `migrations/postgres/`: it starts at version 15, the SQLite schema's
//! version when PostgreSQL was added, and every later migration has the same number in both
//! folders, so one version number means one schema on either database.
//!
//! Migrations run as on SQLite: all that are missing in ONE transaction, a newer schema refused.
//! Several server processes may start against one database at once: the migrating transaction
//! first takes an advisory lock, so the second waits and then finds nothing to do.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{Error, Result};

/// The migrations: (version, name, SQL). The first is the whole schema at version 15.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    15,
    "0015_schema",
    include_str!("../../../migrations/postgres/0015_schema.sql"),
)];

/// The advisory lock the migrator holds (any constant no other lock uses: "zhucan-m").
const MIGRATE_LOCK: i64 = 0x7a68_7563_616e_2d6d;

/// The schema version this code writes and understands.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// A pool of connections to the database at `url` (`postgres://user@host:port/db`).
pub fn pool(url: &str, size: usize) -> Result<Pool> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::invalid("db", format!("not a PostgreSQL URL: {e}")))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(Error::other)
}

/// A connection from the pool.
pub async fn client(pool: &Pool) -> Result<deadpool_postgres::Object> {
    pool.get().await.map_err(Error::other)
}

/// The version the database's schema is at (0: empty).
pub async fn current(client: &tokio_postgres::Client) -> Result<i64> {
    let row = client
        .query_one(
            "SELECT to_regclass('zhucan_schema_version') IS NOT NULL",
            &[],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM zhucan_schema_version",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Applies the server's migrations; see [`apply`].
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(i64, i64)> {
    apply(client, MIGRATIONS).await
}

/// Applies the migrations the database lacks, in one transaction; returns the version before and
/// after. A schema newer than the newest migration is refused; so is an empty database whose
/// first migration is not the baseline.
pub async fn apply(
    client: &mut tokio_postgres::Client,
    migrations: &[(i64, &'static str, &'static str)],
) -> Result<(i64, i64)> {
    let latest = migrations.last().map_or(0, |m| m.0);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS zhucan_schema_version (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await?;
    let before: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM zhucan_schema_version",
            &[],
        )
        .await?
        .get(0);
    if before > latest {
        return Err(Error::Conflict(
            zhucan_platform::migrate::Error::Newer {
                what: "server",
                found: before,
                latest,
            }
            .to_string(),
        ));
    }
    for (version, name, sql) in migrations.iter().filter(|m| m.0 > before) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| Error::other(format!("migration {name}: {}", describe(&e))))?;
        tx.execute(
            "INSERT INTO zhucan_schema_version (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
    }
    tx.commit().await?;
    Ok((before, latest.max(before)))
}

/// What went wrong, in words: the server's SQLSTATE and message of a database error
/// (tokio-postgres' `Display` says only "db error"), or the error and its causes (a parameter
/// that could not be bound names why).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => super::chain(e),
    }
}

impl From<tokio_postgres::Error> for Error {
    /// A broken integrity rule (SQLSTATE class 23: a CHECK, a unique key, a foreign key, the
    /// append-only and card triggers) is a conflict, as SQLite's constraint violation is.
    fn from(e: tokio_postgres::Error) -> Error {
        match e.as_db_error() {
            Some(db) if db.code().code().starts_with("23") => {
                Error::Conflict(db.message().to_owned())
            }
            _ => Error::other(describe(&e)),
        }
    }
}

/// The advisory lock every write transaction holds to its commit: one writer at a time across
/// all server processes, as SQLite has one writer (ARCHITECTURE.md, "PostgreSQL"). "zhucan-w".
pub const WRITE_LOCK: i64 = 0x7a68_7563_616e_2d77;

/// Whether a transaction writes (and so waits for [`WRITE_LOCK`]) or only reads (a read-only
/// snapshot: every query of it sees the same data, as `db::snapshot` gives on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    Read,
}

/// Runs `f` on one transaction of a connection from `pool` and commits if it returns `Ok` (rolls
/// back otherwise). `f` is the same synchronous code that runs on SQLite: each of its queries
/// blocks this thread on the async driver running on `rt`, so this is called from the blocking
/// pool or a plain thread, never from a runtime worker ([`super::Db::read`]).
pub fn transaction_blocking<T>(
    pool: &Pool,
    rt: &tokio::runtime::Handle,
    mode: Mode,
    keys: Option<&super::Keys>,
    f: impl FnOnce(&super::sql::Conn<'_>) -> Result<T>,
) -> Result<T> {
    use tokio_postgres::IsolationLevel;
    let mut client = rt.block_on(pool.get()).map_err(Error::other)?;
    let tx = rt.block_on(
        client
            .build_transaction()
            .isolation_level(match mode {
                Mode::Write => IsolationLevel::ReadCommitted,
                Mode::Read => IsolationLevel::RepeatableRead,
            })
            .read_only(mode == Mode::Read)
            .start(),
    )?;
    if mode == Mode::Write {
        rt.block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]))?;
    }
    let conn = super::sql::Conn::postgres(super::sql::Pg {
        tx: &tx,
        rt: rt.clone(),
    })
    .with_keys(keys);
    let out = f(&conn)?;
    rt.block_on(tx.commit())?;
    Ok(out)
}

/// [`transaction_blocking`] from async code, without keys: on the blocking pool.
pub async fn transaction<T, F>(pool: &Pool, mode: Mode, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&super::sql::Conn<'_>) -> Result<T> + Send + 'static,
{
    let pool = pool.clone();
    let rt = tokio::runtime::Handle::current();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _g = span.enter();
        transaction_blocking(&pool, &rt, mode, None, f)
    })
    .await
    .map_err(Error::other)?
}
