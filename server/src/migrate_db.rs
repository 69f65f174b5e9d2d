//! `zhucan-server migrate-db --from data.sqlite --to postgres://…`: moves a city's books from its
//! SQLite file into an empty PostgreSQL database, then proves the two hold the same books:
//! every table's row count, every month's whole statement (totals, lines, chain verdicts, the
//! books MAC check and the heads), every kiosk's chain re-verified, and the audit log's chain.
//!
//! The copy is one PostgreSQL transaction ([`crate::db::copy`]): it is all there or not at all.
//! It holds the servers' write lock, so no server process writes to the target meanwhile; stop
//! the city's server before starting, so the SQLite file does not change under the copy.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::db::{self, Db, Error, Result, statements::Filter};

/// What the copy moved and what the comparison found.
#[derive(Debug, Default)]
pub struct Report {
    /// Per table: (name, rows in SQLite, rows in PostgreSQL).
    pub tables: Vec<(String, i64, i64)>,
    /// Per month: (month, the statements are equal, the month's total subsidy in fen).
    pub months: Vec<(String, bool, i64)>,
    /// Per kiosk: (id, the re-verifications are equal, the verdict).
    pub kiosks: Vec<(i64, bool, String)>,
    /// The audit log's chain verdicts are equal, and the number of entries.
    pub audit: (bool, i64),
}

impl Report {
    /// Whether everything compared equal.
    pub fn ok(&self) -> bool {
        self.tables.iter().all(|(_, a, b)| a == b)
            && self.months.iter().all(|m| m.1)
            && self.kiosks.iter().all(|k| k.1)
            && self.audit.0
    }

    /// The report as the command prints it.
    pub fn lines(&self) -> Vec<String> {
        let mark = |ok: bool| if ok { "ok" } else { "DIFFERS" };
        let mut out = Vec::new();
        for (t, a, b) in &self.tables {
            out.push(format!(
                "table {t:<24} sqlite {a:>9}  postgres {b:>9}  {}",
                mark(a == b)
            ));
        }
        for (m, ok, subsidy) in &self.months {
            out.push(format!(
                "statement {m}  subsidy {}  {}",
                zhucan_domain::Fen(*subsidy).grouped(),
                mark(*ok)
            ));
        }
        for (k, ok, verdict) in &self.kiosks {
            out.push(format!("kiosk {k} chain {verdict}  {}", mark(*ok)));
        }
        out.push(format!(
            "audit log {} entries  {}",
            self.audit.1,
            mark(self.audit.0)
        ));
        out
    }
}

/// Copies `from` into the empty PostgreSQL database `to` and compares them. The SQLite schema
/// is brought up to date first (as the server does when it opens the file).
pub async fn run(from: &Path, to: &str, key: &[u8], now: DateTime<Utc>) -> Result<Report> {
    if !from.exists() {
        return Err(Error::invalid(
            "from",
            format!("{}: no such SQLite file", from.display()),
        ));
    }
    let source = Db::open_keyed(from, key, now)?;
    let target = Db::open_postgres(to, key, 4).await?;
    let (path, url) = (from.to_owned(), to.to_owned());
    let rt = tokio::runtime::Handle::current();
    let tables = tokio::task::spawn_blocking(move || copy(&rt, &path, &url))
        .await
        .map_err(Error::other)??;
    compare(&source, &target, tables).await
}

/// Copies `from` into the empty PostgreSQL database `to` (its schema made first), without the
/// comparison: the tables' row counts on both sides (the bench times this).
pub async fn copy_only(from: &Path, to: &str) -> Result<Vec<(String, i64, i64)>> {
    let pool = db::postgres::pool(to, 1)?;
    let mut client = db::postgres::client(&pool).await?;
    db::postgres::migrate(&mut client).await?;
    drop(client);
    let (path, url) = (from.to_owned(), to.to_owned());
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || copy(&rt, &path, &url))
        .await
        .map_err(Error::other)?
}

/// The copy itself, on a plain thread; the tables' row counts on both sides.
fn copy(rt: &tokio::runtime::Handle, from: &Path, to: &str) -> Result<Vec<(String, i64, i64)>> {
    let (mut client, connection) = rt
        .block_on(tokio_postgres::connect(to, tokio_postgres::NoTls))
        .map_err(|e| Error::invalid("to", format!("cannot connect: {e}")))?;
    rt.spawn(connection);
    let tables = db::copy::tables(rt, &client)?;
    for t in &tables {
        let n = db::copy::count_postgres(rt, &client, &t.name)?;
        if n > 0 {
            return Err(Error::invalid(
                "to",
                format!(
                    "the PostgreSQL database is not empty (table {} has {n} rows): migrate-db \
                     copies into an empty database only",
                    t.name
                ),
            ));
        }
    }
    let source = db::connect(from)?;
    // one read snapshot of the file for the whole copy
    let snapshot = source.unchecked_transaction()?;
    let tx = rt.block_on(client.transaction())?;
    db::copy::hold_write_lock(rt, &tx)?;
    let copied = db::copy::copy_all(rt, &snapshot, &tx, &tables)?;
    rt.block_on(tx.commit())?;
    db::copy::analyze(rt, &client)?;
    let mut counts = Vec::new();
    for (name, _) in copied {
        let a = db::copy::count_sqlite(&snapshot, &name)?;
        let b = db::copy::count_postgres(rt, &client, &name)?;
        counts.push((name, a, b));
    }
    Ok(counts)
}

/// Compares two databases that should hold the same books: every month's whole statement, every
/// kiosk's chain re-verified, the audit log's chain; `tables` are the row counts already taken.
pub async fn compare(source: &Db, target: &Db, tables: Vec<(String, i64, i64)>) -> Result<Report> {
    let mut report = Report {
        tables,
        ..Report::default()
    };
    let months = source.read(db::copy::periods).await?;
    for m in months {
        let (a, b) = (
            statement(source, m.clone()).await?,
            statement(target, m.clone()).await?,
        );
        let subsidy = a.total.subsidy.0;
        report.months.push((m, a == b, subsidy));
    }
    for k in source.read(db::copy::kiosk_ids).await? {
        let a = source.read(move |c| db::chain::reverify(c, k)).await?;
        let b = target.read(move |c| db::chain::reverify(c, k)).await?;
        report.kiosks.push((k, a == b, a.status.clone()));
    }
    let a = source.read(db::audit::verify).await?;
    let b = target.read(db::audit::verify).await?;
    report.audit = (a == b, a.entries);
    Ok(report)
}

async fn statement(db: &Db, month: String) -> Result<zhucan_domain::api::Statement> {
    db.read(move |c| crate::reports::statement(c, &month, &Filter::default()))
        .await
}
