//! The storage layer: every SQL statement of the server lives under this module.
//!
//! Two databases, one set of db functions: SQLite (bundled) in WAL mode by default, PostgreSQL
//! for a province (ARCHITECTURE.md, "PostgreSQL"). On SQLite one writer connection behind a
//! mutex serialises writes and a small pool of reader connections serves reads concurrently; on
//! PostgreSQL a pool serves both, writes taking one advisory write lock. All blocking work runs
//! on `tokio::task::spawn_blocking`, keeping the caller's tracing span. Handlers never see SQL:
//! they call the functions of the submodules, which take a [`Conn`] (reads, a snapshot) or a
//! [`Tx`] (writes, one transaction): [`sql::Conn`] on either database.

pub mod ageing;
pub mod alerts;
pub mod audit;
pub mod books;
pub mod canteens;
pub mod carers;
pub mod chain;
pub mod changes;
pub mod copy;
pub mod corrections;
pub mod dashboard;
pub mod face_data;
pub mod flags;
pub mod kiosks;
pub mod lookalikes;
pub mod migrate;
pub mod months;
pub mod policies;
pub mod postgres;
pub mod push;
pub mod residents;
pub mod settlements;
pub mod spot_checks;
pub mod sql;
pub mod statements;
pub mod templates;
pub mod topups;
pub mod towns;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

pub use sql::Conn;
/// A write transaction. Functions that change data take one, so callers group changes atomically.
/// (The same type as a read's [`Conn`]; the name says the function writes.)
pub type Tx<'a> = sql::Conn<'a>;

/// The server's keys as the db functions use them: the secret key (masked national ID numbers)
/// and the books MAC key derived from it ([`books`]).
pub struct Keys {
    pub server: Vec<u8>,
    pub books: books::MacKey,
}

impl Keys {
    pub fn new(server: &[u8]) -> Keys {
        Keys {
            server: server.to_vec(),
            books: books::mac_key(&crate::crypto::books_key(server)),
        }
    }
}
/// The storage layer's error: what went wrong, in terms the HTTP layer can map to a status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller may not do this to these rows: decided inside the transaction that would
    /// have changed them, so no other write can slip between the check and the change.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// SQLite, I/O or a panicked task, with its cause (logged with its chain, never sent to
    /// the client).
    #[error("internal: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// An internal error from its cause: an error (kept as the source) or a message.
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Other(e.into())
    }
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One embedding sealed with XChaCha20-Poly1305.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// An error and every cause under it, `outer: inner: innermost`: what the log shows of an
/// internal error.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NotFound,
            rusqlite::Error::SqliteFailure(f, ref msg)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Conflict(msg.clone().unwrap_or_else(|| "constraint violated".into()))
            }
            other => Error::other(other),
        }
    }
}

impl From<zhucan_platform::migrate::Error> for Error {
    fn from(e: zhucan_platform::migrate::Error) -> Error {
        match e {
            newer @ zhucan_platform::migrate::Error::Newer { .. } => {
                Error::Conflict(newer.to_string())
            }
            other => Error::other(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const READERS: usize = 4;

/// Connections in a PostgreSQL server process's pool. Four processes take 64 of PostgreSQL's
/// default 100.
pub const POSTGRES_POOL: usize = 16;

/// Where the data is, as `--db` gives it: an SQLite file, or a PostgreSQL database
/// (`postgres://user:password@host:port/database`).
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Location, Self::Err> {
        Ok(
            if s.starts_with("postgres://") || s.starts_with("postgresql://") {
                Location::Postgres(s.to_owned())
            } else {
                Location::Sqlite(PathBuf::from(s))
            },
        )
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}

/// The file, or the URL without its password (logs, errors).
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({self})")
    }
}

/// A PostgreSQL URL with any password replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

impl Location {
    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

/// The database handle the server shares between requests. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    /// The server's keys, when opened with them: masked national ID numbers
    /// ([`residents::masked`]) and the books MAC ([`books`]) need them.
    keys: Option<Arc<Keys>>,
}

/// Where the data is: an SQLite file (one writer connection, a few readers) or a PostgreSQL
/// database (a pool; ARCHITECTURE.md, "PostgreSQL").
#[derive(Clone)]
enum Backend {
    Sqlite {
        path: PathBuf,
        writer: Arc<Mutex<Connection>>,
        readers: Arc<Mutex<Vec<Connection>>>,
    },
    Postgres {
        pool: deadpool_postgres::Pool,
        /// The runtime the driver runs on, for the synchronous calls (CLI, blocking pool).
        rt: tokio::runtime::Handle,
    },
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Db");
        match &self.backend {
            Backend::Sqlite { path, .. } => d.field("path", path),
            Backend::Postgres { .. } => d.field("backend", &"postgres"),
        };
        d.finish_non_exhaustive()
    }
}

/// Makes sure the database file exists with mode 0600 (owner only) before SQLite opens it;
/// SQLite gives its -wal and -shm files the database file's mode. A database file that group
/// or others may read is narrowed to 0600, with a warning. `:memory:` is left alone.
fn private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str() == ":memory:" {
        return Ok(());
    }
    let io = |e: std::io::Error| Error::other(format!("{}: {e}", path.display()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %Path::new(&p).display(), mode = format!("{:04o}", mode & 0o7777),
                "a database file was readable by others: narrowed to 0600");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

/// Opens a connection with the server's pragmas (these are per connection, so never in a
/// migration).
pub fn connect(path: &Path) -> Result<Connection> {
    private_file(path)?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -32000)?;
    // deleted rows (purged template ciphertext, sealed IDs) are overwritten, not left in free pages
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// Refuses a database whose schema is newer than this code.
    ///
    /// Without the server's key, masked national ID numbers read as eighteen stars: use
    /// [`Db::open_keyed`] wherever a person reads them.
    pub fn open(path: &Path) -> Result<Db> {
        Db::open_with(path, None)
    }

    /// [`Db::open`] with the server's secret key: masked numbers read as such, and rows from
    /// before national ID numbers were sealed are sealed now (`residents::seal_legacy`).
    ///
    /// Rows from before the books MAC are sealed too, once (`books::seal_legacy`, audited at
    /// `now`).
    pub fn open_keyed(path: &Path, key: &[u8], now: chrono::DateTime<chrono::Utc>) -> Result<Db> {
        let db = Db::open_with(path, Some(Arc::new(Keys::new(key))))?;
        db.write_blocking(|tx| residents::seal_legacy(tx, key))?;
        let at = zhucan_platform::stamp(now);
        db.write_blocking(|tx| books::seal_legacy(tx, &at))?;
        Ok(db)
    }

    fn open_with(path: &Path, keys: Option<Arc<Keys>>) -> Result<Db> {
        let mut writer = connect(path)?;
        migrate::apply(&mut writer)?;
        Ok(Db {
            backend: Backend::Sqlite {
                path: path.to_owned(),
                writer: Arc::new(Mutex::new(writer)),
                readers: Arc::new(Mutex::new(Vec::new())),
            },
            keys,
        })
    }

    /// Opens the database at `location` with the server's key (as [`Db::open_keyed`] on
    /// SQLite, [`Db::open_postgres`] on PostgreSQL).
    pub async fn open_at(
        location: &Location,
        key: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Db> {
        let db = match location {
            Location::Sqlite(path) => Db::open_keyed(path, key, now)?,
            Location::Postgres(url) => {
                let db = Db::open_postgres(url, key, POSTGRES_POOL).await?;
                // as on SQLite: the first opening records (audited) that the books are sealed
                // (nothing to seal on a new database; `migrate-db` copies the marker)
                let at = zhucan_platform::stamp(now);
                db.write(move |tx| books::seal_legacy(tx, &at)).await?;
                db
            }
        };
        tracing::info!(db = %location, "database open");
        Ok(db)
    }

    /// Connects to the PostgreSQL database at `url` with a pool of `pool_size` connections and
    /// brings its schema up to date (refusing a newer one).
    pub async fn open_postgres(url: &str, key: &[u8], pool_size: usize) -> Result<Db> {
        let pool = postgres::pool(url, pool_size)?;
        let mut client = postgres::client(&pool).await?;
        postgres::migrate(&mut client).await?;
        drop(client);
        // (Nothing sealed here: `migrate-db` copies into a database opened this way, which must
        // stay empty; `open_at` records the seal as on SQLite.)
        Ok(Db {
            backend: Backend::Postgres {
                pool,
                rt: tokio::runtime::Handle::current(),
            },
            keys: Some(Arc::new(Keys::new(key))),
        })
    }

    /// Which database this is.
    pub fn dialect(&self) -> sql::Dialect {
        match self.backend {
            Backend::Sqlite { .. } => sql::Dialect::Sqlite,
            Backend::Postgres { .. } => sql::Dialect::Postgres,
        }
    }

    /// The SQLite file (tests that play an attacker with the file itself).
    ///
    /// # Panics
    /// On PostgreSQL.
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite { path, .. } => path,
            Backend::Postgres { .. } => {
                panic!("Db::path is the SQLite file; this database is PostgreSQL")
            }
        }
    }

    /// Runs `f` inside one write transaction on the blocking pool; commits if it returns `Ok`,
    /// rolls back otherwise. Nothing is ever half-written. On PostgreSQL it waits for the one
    /// write lock first.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            this.write_blocking(f)
        })
        .await
        .map_err(Error::other)?
    }

    /// Runs `f` on a read snapshot (every query of it sees the same data) on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            this.read_sync(f)
        })
        .await
        .map_err(Error::other)?
    }

    /// The synchronous form of [`Db::read`], for the CLI and the blocking pool (never on a
    /// runtime worker: on PostgreSQL it blocks on the driver).
    pub fn read_sync<T>(&self, f: impl FnOnce(&Conn<'_>) -> Result<T>) -> Result<T> {
        let keys = self.keys.as_deref();
        match &self.backend {
            Backend::Sqlite { path, readers, .. } => {
                let conn = {
                    let mut pool = readers.lock().map_err(|_| Error::other("pool poisoned"))?;
                    pool.pop()
                };
                let conn = match conn {
                    Some(c) => c,
                    None => connect(path)?,
                };
                let out = snapshot(&conn, |c| f(&Conn::sqlite(c).with_keys(keys)));
                if let Ok(mut pool) = readers.lock()
                    && pool.len() < READERS
                {
                    pool.push(conn);
                }
                out
            }
            Backend::Postgres { pool, rt } => {
                postgres::transaction_blocking(pool, rt, postgres::Mode::Read, keys, f)
            }
        }
    }

    /// The synchronous form of [`Db::write`].
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let keys = self.keys.as_deref();
        match &self.backend {
            Backend::Sqlite { writer, .. } => {
                let mut conn = writer
                    .lock()
                    .map_err(|_| Error::other("writer mutex poisoned"))?;
                write_sync(&mut conn, |tx| f(&Conn::sqlite(tx).with_keys(keys)))
            }
            Backend::Postgres { pool, rt } => {
                postgres::transaction_blocking(pool, rt, postgres::Mode::Write, keys, f)
            }
        }
    }
}

fn write_sync<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Runs `f` inside one read transaction on `conn`, so every query sees the same snapshot.
fn snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let tx = conn.unchecked_transaction()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Whether a constraint violation's message is a foreign key's: SQLite says `FOREIGN KEY
/// constraint failed`, PostgreSQL `... violates foreign key constraint ...`.
pub(crate) fn foreign_key(message: &str) -> bool {
    message.contains("FOREIGN KEY") || message.contains("foreign key")
}

/// `true`/`false` from an SQLite integer.
pub(crate) fn flag(v: i64) -> bool {
    v != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_argument_is_a_file_or_a_postgres_url_shown_without_its_password() {
        let file: Location = "data/zhucan.sqlite".parse().expect("parse");
        assert_eq!(file, Location::Sqlite("data/zhucan.sqlite".into()));
        let url: Location = "postgres://zhucan:s3cret@db.example:5432/zhucan"
            .parse()
            .expect("parse");
        assert!(matches!(url, Location::Postgres(_)));
        assert_eq!(
            url.to_string(),
            "postgres://zhucan:***@db.example:5432/zhucan"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let other: Location = "postgresql://zhucan@127.0.0.1/z".parse().expect("parse");
        assert_eq!(other.to_string(), "postgresql://zhucan@127.0.0.1/z");
        assert_eq!(other.sqlite_path(), None);
    }
}
