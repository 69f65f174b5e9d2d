//! The storage layer: every SQL statement of the server lives under this module.
//!
//! SQLite (bundled) in WAL mode. One writer connection behind a mutex serialises writes; a small
//! pool of reader connections serves reads concurrently. All blocking work runs on
//! `tokio::task::spawn_blocking`, keeping the caller's tracing span. Handlers never see SQL: they
//! call the functions of the submodules, which take a `&Connection` (reads) or a [`Tx`] (writes).

pub mod alerts;
pub mod audit;
pub mod books;
pub mod canteens;
pub mod carers;
pub mod chain;
pub mod changes;
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

pub use rusqlite::Connection as Conn;
/// A write transaction. Functions that change data take one, so callers group changes atomically.
pub type Tx<'a> = rusqlite::Transaction<'a>;

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

/// The database handle the server shares between requests. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    /// The server's secret key, when opened with one: the `id_masked()` SQL function needs it
    /// to show a national ID number's masked form (see [`residents::MASKED_ID`]).
    key: Option<Arc<Vec<u8>>>,
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
    Postgres(deadpool_postgres::Pool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Db");
        match &self.backend {
            Backend::Sqlite { path, .. } => d.field("path", path),
            Backend::Postgres(_) => d.field("backend", &"postgres"),
        };
        d.finish_non_exhaustive()
    }
}

/// What the SQLite-only calls answer on PostgreSQL while the db modules are being ported
/// ([`Db::read_conn`], [`Db::write_conn`] run on both).
fn sqlite_only() -> Error {
    Error::other("this part of the server does not run on PostgreSQL yet")
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
/// migration) and the `id_masked(index, nonce, sealed)` SQL function. With `key`, it opens the
/// sealed number and gives its masked form; without, or for a row whose number does not open,
/// it gives eighteen stars. The database itself holds no digit of any number in clear: its
/// birth dates would complete them (see [`residents::MASKED_ID`]).
pub fn connect(path: &Path) -> Result<Connection> {
    connect_with(path, None)
}

fn connect_with(path: &Path, key: Option<&Arc<Vec<u8>>>) -> Result<Connection> {
    private_file(path)?;
    let conn = Connection::open(path)?;
    let key = key.cloned();
    let books_keyed = key
        .as_deref()
        .map(|k| books::mac_key(&crate::crypto::books_key(k)));
    conn.create_scalar_function(
        "id_masked",
        3,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let index: String = ctx.get(0)?;
            let nonce: Option<Vec<u8>> = ctx.get(1)?;
            let sealed: Option<Vec<u8>> = ctx.get(2)?;
            Ok(key
                .as_deref()
                .zip(nonce.zip(sealed))
                .and_then(|(key, (nonce, ct))| {
                    crate::crypto::open_national_id(key, &index, &nonce, &ct).ok()
                })
                .and_then(|n| zhucan_domain::NationalId::parse(&n).ok())
                .map_or_else(|| "*".repeat(18), |n| n.masked()))
        },
    )?;
    conn.create_scalar_function(
        "books_mac",
        -1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8
            | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let Some(keyed) = &books_keyed else {
                return Ok(None);
            };
            let args: Vec<_> = (0..ctx.len()).map(|i| ctx.get_raw(i)).collect();
            Ok(Some(books::mac_keyed(keyed, books::mac_values(&args))))
        },
    )?;
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
        let db = Db::open_with(path, Some(Arc::new(key.to_vec())))?;
        db.write_blocking(|tx| residents::seal_legacy(tx, key))?;
        let at = zhucan_platform::stamp(now);
        db.write_blocking(|tx| books::seal_legacy(tx, &at))?;
        Ok(db)
    }

    fn open_with(path: &Path, key: Option<Arc<Vec<u8>>>) -> Result<Db> {
        let mut writer = connect_with(path, key.as_ref())?;
        migrate::apply(&mut writer)?;
        Ok(Db {
            backend: Backend::Sqlite {
                path: path.to_owned(),
                writer: Arc::new(Mutex::new(writer)),
                readers: Arc::new(Mutex::new(Vec::new())),
            },
            key,
        })
    }

    /// Connects to the PostgreSQL database at `url` with a pool of `pool_size` connections and
    /// brings its schema up to date (refusing a newer one).
    pub async fn open_postgres(url: &str, key: &[u8], pool_size: usize) -> Result<Db> {
        let pool = postgres::pool(url, pool_size)?;
        let mut client = postgres::client(&pool).await?;
        postgres::migrate(&mut client).await?;
        Ok(Db {
            backend: Backend::Postgres(pool),
            key: Some(Arc::new(key.to_vec())),
        })
    }

    /// The SQLite file (tests that play an attacker with the file itself).
    ///
    /// # Panics
    /// On PostgreSQL.
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite { path, .. } => path,
            Backend::Postgres(_) => {
                panic!("Db::path is the SQLite file; this database is PostgreSQL")
            }
        }
    }

    /// Runs `f` inside one write transaction, on either database; commits if it returns `Ok`,
    /// rolls back otherwise. On PostgreSQL it waits for the one write lock first.
    pub async fn write_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&sql::Conn<'_>) -> Result<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite { .. } => self.write(move |tx| f(&sql::Conn::Sqlite(tx))).await,
            Backend::Postgres(pool) => postgres::transaction(pool, postgres::Mode::Write, f).await,
        }
    }

    /// Runs `f` on a read snapshot, on either database.
    pub async fn read_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&sql::Conn<'_>) -> Result<T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite { .. } => {
                self.read(move |c| snapshot(c, |c| f(&sql::Conn::Sqlite(c))))
                    .await
            }
            Backend::Postgres(pool) => postgres::transaction(pool, postgres::Mode::Read, f).await,
        }
    }

    /// Runs `f` inside one write transaction on the blocking pool; commits if it returns `Ok`,
    /// rolls back otherwise. Nothing is ever half-written.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let Backend::Sqlite { writer, .. } = &self.backend else {
            return Err(sqlite_only());
        };
        let writer = writer.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            let mut conn = writer
                .lock()
                .map_err(|_| Error::other("writer mutex poisoned"))?;
            write_sync(&mut conn, f)
        })
        .await
        .map_err(Error::other)?
    }

    /// Runs `f` with a reader connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
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

    /// The synchronous form of [`Db::read`], for the CLI and the blocking pool.
    pub fn read_sync<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let Backend::Sqlite { path, readers, .. } = &self.backend else {
            return Err(sqlite_only());
        };
        let conn = {
            let mut pool = readers.lock().map_err(|_| Error::other("pool poisoned"))?;
            pool.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => connect_with(path, self.key.as_ref())?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = readers.lock()
            && pool.len() < READERS
        {
            pool.push(conn);
        }
        out
    }

    /// The synchronous form of [`Db::write`].
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let Backend::Sqlite { writer, .. } = &self.backend else {
            return Err(sqlite_only());
        };
        let mut conn = writer
            .lock()
            .map_err(|_| Error::other("writer mutex poisoned"))?;
        write_sync(&mut conn, f)
    }
}

fn write_sync<T>(conn: &mut Connection, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Runs `f` inside one read transaction on `conn`, so every query sees the same snapshot.
pub fn snapshot<T, E: From<Error>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let tx = conn.unchecked_transaction().map_err(Error::from)?;
    let out = f(&tx)?;
    tx.commit().map_err(Error::from)?;
    Ok(out)
}

/// `true`/`false` from an SQLite integer.
pub(crate) fn flag(v: i64) -> bool {
    v != 0
}
