//! `zhucan-server`: the command line. Thin on purpose; everything lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zhucan_server::config::{self, Clock, ServerArgs, SystemClock};
use zhucan_server::db::{Db, Location};
use zhucan_server::tls::TlsArgs;

#[derive(Parser)]
#[command(
    name = "zhucan-server",
    version,
    about = "Zhucan: subsidised meals at elder canteens"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the HTTP API (HTTPS with --tls-cert and --tls-key).
    Serve {
        #[command(flatten)]
        args: Box<ServerArgs>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Make a private CA and a server certificate signed by it (ca.pem, server.pem, server.key).
    /// Give ca.pem to kiosks (`zhucan-kiosk enrol-kiosk --server-ca`).
    GenCert {
        /// Folder to write the files into.
        #[arg(long, default_value = "data/tls")]
        out: PathBuf,
        /// DNS name or IP address the kiosks use to reach the server (repeat for several).
        #[arg(long = "host", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Create or upgrade the database schema (SQLite file or PostgreSQL URL), then exit.
    Migrate {
        #[arg(long, env = "ZHUCAN_DB", default_value = "data/zhucan.sqlite")]
        db: Location,
    },
    /// Copy a city's SQLite database into an empty PostgreSQL database, then compare the two:
    /// row counts, every month's statement, every kiosk's chain, the audit log. Stop the server
    /// first. Exits non-zero if anything differs.
    MigrateDb {
        /// The SQLite file (its schema is brought up to date first).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database, empty: `postgres://user:password@host:port/database`.
        #[arg(long)]
        to: String,
        /// The server's secret key file. Default: `<from>.key`. Serve PostgreSQL with the same
        /// file (`--secret-key-file`).
        #[arg(long, env = "ZHUCAN_SECRET_KEY_FILE")]
        secret_key_file: Option<PathBuf>,
    },
    /// Build a fresh demo city in a new database, print the credentials, and serve it.
    Demo {
        /// An SQLite file (made afresh) or an empty PostgreSQL database.
        #[arg(long, default_value = "data/demo.sqlite")]
        db: Location,
        /// The secret key file (made afresh). Default: `<db>.key`; required with PostgreSQL.
        #[arg(long)]
        secret_key_file: Option<PathBuf>,
        #[arg(long, env = "ZHUCAN_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, env = "ZHUCAN_TIMEZONE", default_value = "Asia/Shanghai")]
        timezone: String,
        #[arg(long, default_value_t = 20260101)]
        seed: u64,
        /// Build the database and exit without serving.
        #[arg(long)]
        no_serve: bool,
        /// Serve HTTPS with a fresh private CA and certificate written to this folder
        /// (ca.pem is what kiosks pin).
        #[arg(long)]
        tls_dir: Option<PathBuf>,
        /// Check every API answer against the OpenAPI document (as `serve --check-responses`).
        #[arg(long)]
        check_responses: bool,
    },
    /// Import the civil-affairs roster (CSV). All rows or none.
    ImportResidents {
        file: PathBuf,
        #[arg(long, env = "ZHUCAN_DB", default_value = "data/zhucan.sqlite")]
        db: Location,
        #[arg(long, env = "ZHUCAN_SECRET_KEY_FILE")]
        secret_key_file: Option<PathBuf>,
    },
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Measure ingestion over HTTP and the month statement over 1,000,000 settlements.
    Bench {
        #[arg(long, default_value_t = 5000)]
        residents: usize,
        #[arg(long, default_value_t = 10)]
        days: usize,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// An empty PostgreSQL database to measure too, side by side (its `public` schema is
        /// dropped and made again between runs): ingestion with 1, 2 and 4 server processes,
        /// and the statement of the same month. `scripts/bench --postgres` makes one.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A server for `bench` on PostgreSQL: the bench's fixed key, its clock stopped at `--at`.
    #[command(hide = true)]
    BenchServe {
        #[arg(long)]
        db: Location,
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        at: chrono::DateTime<chrono::Utc>,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user. The password is read from ZHUCAN_USER_PASSWORD, or generated and printed.
    Add {
        name: String,
        /// admin, operator, finance or community.
        #[arg(long)]
        role: String,
        /// A canteen id an operator runs (repeat for several).
        #[arg(long = "canteen")]
        canteens: Vec<i64>,
        /// The town code a community worker serves.
        #[arg(long)]
        town: Option<String>,
        #[arg(long, env = "ZHUCAN_DB", default_value = "data/zhucan.sqlite")]
        db: Location,
        #[arg(long, env = "ZHUCAN_SECRET_KEY_FILE")]
        secret_key_file: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match Cli::parse().cmd {
        Cmd::Serve { args, tls } => {
            let mut config = args.validate()?;
            let tls = tls
                .files()
                .map(|f| zhucan_server::tls::server_config(&f))
                .transpose()?;
            // Under HTTPS the session cookie is Secure (never sent over plain HTTP).
            config.security.secure_cookies |= tls.is_some();
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let db = Db::open_at(&config.db, &config.index_key.0, SystemClock.now()).await?;
            zhucan_server::serve_with(
                db,
                config,
                Arc::new(SystemClock),
                listener,
                zhucan_platform::shutdown::signal(),
                tls,
            )
            .await?;
        }
        Cmd::GenCert { out, hosts, days } => {
            let g = zhucan_server::tls::generate(&out, &hosts, days)?;
            println!("CA (give to kiosks):  {}", g.ca.display());
            println!("server certificate:   {}", g.cert.display());
            println!("server key (0600):    {}", g.key.display());
            println!(
                "serve with: zhucan-server serve --tls-cert {} --tls-key {}",
                g.cert.display(),
                g.key.display()
            );
        }
        Cmd::Migrate { db } => {
            let (before, after) = match &db {
                Location::Sqlite(path) => {
                    let mut conn = zhucan_server::db::connect(path)?;
                    zhucan_server::db::migrate::apply(&mut conn)?
                }
                Location::Postgres(url) => {
                    let pool = zhucan_server::db::postgres::pool(url, 1)?;
                    let mut client = zhucan_server::db::postgres::client(&pool).await?;
                    zhucan_server::db::postgres::migrate(&mut client).await?
                }
            };
            println!("{db}: schema version {before} -> {after}");
        }
        Cmd::MigrateDb {
            from,
            to,
            secret_key_file,
        } => {
            let key_path = secret_key_file.unwrap_or_else(|| config::default_key_path(&from));
            if !key_path.exists() {
                bail!(
                    "--secret-key-file: {} does not exist; give the city server's key file",
                    key_path.display()
                );
            }
            let key = config::load_or_create_key(&key_path)?;
            let report =
                zhucan_server::migrate_db::run(&from, &to, &key.0, SystemClock.now()).await?;
            for line in report.lines() {
                println!("{line}");
            }
            let to = to.parse::<Location>()?;
            if !report.ok() {
                bail!("{} differs from {}: do not use it", to, from.display());
            }
            println!(
                "verified: {to} holds the same books as {}; serve it with --db and \
                 --secret-key-file {}",
                from.display(),
                key_path.display()
            );
        }
        Cmd::Demo {
            db,
            secret_key_file,
            listen,
            timezone,
            seed,
            no_serve,
            tls_dir,
            check_responses,
        } => {
            let key_path = match (&secret_key_file, &db) {
                (Some(p), _) => p.clone(),
                (None, Location::Sqlite(p)) => config::default_key_path(p),
                (None, Location::Postgres(_)) => {
                    bail!("--secret-key-file is required with a PostgreSQL --db")
                }
            };
            let mut fresh = vec![key_path.clone()];
            if let Location::Sqlite(path) = &db {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    fresh.push(PathBuf::from(p));
                }
            }
            for p in fresh {
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
            }
            let admin = std::env::var("ZHUCAN_ADMIN_TOKEN")
                .unwrap_or_else(|_| zhucan_server::crypto::new_token());
            let args = ServerArgs {
                db: db.clone(),
                listen,
                admin_token: Some(admin.clone()),
                admin_token_file: None,
                timezone,
                secret_key_file: Some(key_path),
                body_limit: 2 * 1024 * 1024,
                push_url: None,
                push_secret_file: None,
                check_responses,
                security: Default::default(),
            };
            let mut config = args.validate()?;
            let store = Db::open_at(&db, &config.index_key.0, SystemClock.now()).await?;
            let (key, tz) = (config.index_key.0.clone(), config.timezone);
            let now = SystemClock.now();
            let s = store.clone();
            let summary = tokio::task::spawn_blocking(move || {
                zhucan_server::demo::populate(&s, &key, tz, now, seed)
            })
            .await??;
            println!(
                "demo city: {} towns, {} canteens, {} residents, {} settlements (30 days)",
                summary.towns, summary.canteens, summary.residents, summary.settlements
            );
            let tls = match &tls_dir {
                Some(dir) => {
                    let g = zhucan_server::tls::generate(
                        dir,
                        &[listen.ip().to_string(), "localhost".to_owned()],
                        825,
                    )?;
                    println!(
                        "TLS CA:      {}  (kiosks pin it: --server-ca)",
                        g.ca.display()
                    );
                    Some(zhucan_server::tls::server_config(
                        &zhucan_server::tls::TlsFiles {
                            cert: g.cert,
                            key: g.key,
                        },
                    )?)
                }
                None => None,
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            config.security.secure_cookies |= tls.is_some();
            println!("database:    {db}");
            println!("URL:         {scheme}://{listen}/api/v1/  (health: /api/v1/health)");
            println!("admin token: {admin}");
            // The demo's own kiosk has a throwaway key (it cannot sign meals): register a real
            // kiosk with an enrolment code (scripts/demo does) rather than use its token.
            let s = store.clone();
            let users = tokio::task::spawn_blocking(move || {
                zhucan_server::demo::users(&s, summary.kiosk_canteen, now)
            })
            .await??;
            println!("dashboard:   {scheme}://{listen}/login");
            for (name, role, password) in &users {
                println!("  user {name:<10} role {role:<10} password {password}");
            }
            if !no_serve {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                zhucan_server::serve_with(
                    store,
                    config,
                    Arc::new(SystemClock),
                    listener,
                    zhucan_platform::shutdown::signal(),
                    tls,
                )
                .await?;
            }
        }
        Cmd::ImportResidents {
            file,
            db,
            secret_key_file,
        } => {
            let key = config::load_or_create_key(&key_file(secret_key_file, &db)?)?;
            let store = Db::open_at(&db, &key.0, SystemClock.now()).await?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let k = key.0.clone();
            let imported = tokio::task::spawn_blocking(move || {
                zhucan_server::import::residents(&store, &k, f, SystemClock.now())
            })
            .await?;
            match imported {
                Ok(s) => println!("imported {} residents from {}", s.imported, file.display()),
                Err(zhucan_server::import::Error::Rows(rows)) => {
                    for r in &rows {
                        eprintln!("{}: {r}", file.display());
                    }
                    bail!(
                        "{} problem(s) in {}; nothing was imported",
                        rows.len(),
                        file.display()
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Cmd::User {
            cmd:
                UserCmd::Add {
                    name,
                    role,
                    canteens,
                    town,
                    db,
                    secret_key_file,
                },
        } => {
            let role = zhucan_server::db::users::Role::parse(&role).with_context(|| {
                format!("--role: '{role}' is not admin, operator, finance or community")
            })?;
            let (password, generated) = match std::env::var("ZHUCAN_USER_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (zhucan_server::crypto::new_token()[..16].to_owned(), true),
            };
            // keyed, like the server: a migration that seals rows needs the key
            let key = config::load_or_create_key(&key_file(secret_key_file, &db)?)?;
            let store = Db::open_at(&db, &key.0, SystemClock.now()).await?;
            let u = zhucan_server::accounts::NewUser {
                name: name.clone(),
                password: password.clone(),
                role,
                canteens: canteens.into_iter().map(zhucan_domain::CanteenId).collect(),
                town,
            };
            tokio::task::spawn_blocking(move || {
                zhucan_server::accounts::create_user(&store, &u, SystemClock.now())
            })
            .await??;
            println!("user {name} ({}) added", role.as_str());
            if generated {
                println!("password: {password}");
            }
        }
        Cmd::BenchServe { db, listen, at } => {
            let config = zhucan_server::bench::server_config(db, listen);
            let listener = tokio::net::TcpListener::bind(listen).await?;
            zhucan_server::run(
                config,
                Arc::new(zhucan_server::config::FixedClock::new(at)),
                listener,
                zhucan_platform::shutdown::signal(),
            )
            .await?;
        }
        Cmd::Bench {
            residents,
            days,
            rows,
            postgres,
        } => {
            let (f, pg) = zhucan_server::bench::run(residents, days, rows, postgres.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "ingest: {} signed settlements over HTTP in batches of 100 in {:.2} s = {:.0} settlements/s",
                f.ingested, f.ingest_secs, f.per_second
            );
            println!(
                "bulk insert: {} settlements in {:.1} s",
                f.bulk_rows, f.bulk_secs
            );
            println!(
                "statement: month of {} settlements built in {:.3} s; its books MAC check of every row runs alongside on a second connection and takes {:.3} s alone ({} canteen lines, {} resident lines, subsidy {} yuan)",
                f.bulk_rows,
                f.statement_secs,
                f.books_secs,
                f.statement_canteens,
                f.statement_residents,
                f.statement_total
            );
            println!(
                "chains: {} kiosk chains in the statement, all verified; full re-verification of one kiosk (signatures, hashes, rows): {} records in {:.2} s = {:.0} records/s",
                f.statement_chains,
                f.reverify_records,
                f.reverify_secs,
                f.reverify_records as f64 / f.reverify_secs.max(1e-9)
            );
            println!(
                "red flags: the month's flags over the same {} settlements computed in {:.3} s ({} flags)",
                f.bulk_rows, f.flags_secs, f.flags
            );
            if let Some(pg) = pg {
                println!("side by side, SQLite | PostgreSQL:");
                println!(
                    "  ingest, 1 process (SQLite, in-process server): {:.0}/s",
                    f.per_second
                );
                for (processes, n, secs) in &pg.ingest {
                    println!(
                        "  ingest on PostgreSQL, {processes} server process(es): {n} settlements in {secs:.2} s = {:.0}/s",
                        *n as f64 / secs
                    );
                }
                println!(
                    "  statement of {} settlements: SQLite {:.3} s | PostgreSQL {:.3} s (subsidy {} | {} yuan)",
                    f.bulk_rows,
                    f.statement_secs,
                    pg.statement_secs,
                    f.statement_total,
                    pg.statement_total
                );
                println!(
                    "  books MAC check alone: SQLite {:.3} s | PostgreSQL {:.3} s",
                    f.books_secs, pg.books_secs
                );
                println!(
                    "  migrate-db's copy of those {} settlements (and their chains, audit, residents) into PostgreSQL: {:.1} s",
                    f.bulk_rows, pg.copy_secs
                );
            }
        }
    }
    Ok(())
}

/// The secret key file: as given, or `<db>.key` beside an SQLite file (PostgreSQL has no file
/// to put it beside: then it must be given).
fn key_file(given: Option<PathBuf>, db: &Location) -> anyhow::Result<PathBuf> {
    match (given, db) {
        (Some(p), _) => Ok(p),
        (None, Location::Sqlite(p)) => Ok(config::default_key_path(p)),
        (None, Location::Postgres(_)) => {
            bail!("--secret-key-file (ZHUCAN_SECRET_KEY_FILE) is required with a PostgreSQL --db")
        }
    }
}
