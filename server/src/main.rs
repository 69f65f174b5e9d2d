//! `zhucan-server`: the command line. Thin on purpose; everything lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zhucan_server::config::{self, Clock, ServerArgs, SystemClock};
use zhucan_server::db::Db;
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
    /// Create or upgrade the database schema, then exit.
    Migrate {
        #[arg(long, env = "ZHUCAN_DB", default_value = "data/zhucan.sqlite")]
        db: PathBuf,
    },
    /// Build a fresh demo city in a new database, print the credentials, and serve it.
    Demo {
        #[arg(long, default_value = "data/demo.sqlite")]
        db: PathBuf,
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
        db: PathBuf,
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
        db: PathBuf,
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
            let db = Db::open_keyed(&config.db, &config.index_key.0, SystemClock.now())?;
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
            let mut conn = zhucan_server::db::connect(&db)?;
            let (before, after) = zhucan_server::db::migrate::apply(&mut conn)?;
            println!("schema version {before} -> {after}");
        }
        Cmd::Demo {
            db,
            listen,
            timezone,
            seed,
            no_serve,
            tls_dir,
            check_responses,
        } => {
            for suffix in ["", "-wal", "-shm", ".key"] {
                let mut p = db.as_os_str().to_owned();
                p.push(suffix);
                match std::fs::remove_file(PathBuf::from(p)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let admin = std::env::var("ZHUCAN_ADMIN_TOKEN")
                .unwrap_or_else(|_| zhucan_server::crypto::new_token());
            let args = ServerArgs {
                db: db.clone(),
                listen,
                admin_token: Some(admin.clone()),
                admin_token_file: None,
                timezone,
                secret_key_file: None,
                body_limit: 2 * 1024 * 1024,
                push_url: None,
                push_secret_file: None,
                check_responses,
                security: Default::default(),
            };
            let mut config = args.validate()?;
            let store = Db::open_keyed(&db, &config.index_key.0, SystemClock.now())?;
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
            println!("database:    {}", db.display());
            println!("URL:         {scheme}://{listen}/api/v1/  (health: /api/v1/health)");
            println!("admin token: {admin}");
            // The demo's own kiosk has a throwaway key (it cannot sign meals): register a real
            // kiosk with an enrolment code (scripts/demo does) rather than use its token.
            let users = zhucan_server::demo::users(&store, summary.kiosk_canteen, now)?;
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
            let key_path = secret_key_file.unwrap_or_else(|| config::default_key_path(&db));
            let key = config::load_or_create_key(&key_path)?;
            let store = Db::open_keyed(&db, &key.0, SystemClock.now())?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            match zhucan_server::import::residents(&store, &key.0, f, SystemClock.now()) {
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
            let key = config::load_or_create_key(&config::default_key_path(&db))?;
            let store = Db::open_keyed(&db, &key.0, SystemClock.now())?;
            let u = zhucan_server::accounts::NewUser {
                name: name.clone(),
                password: password.clone(),
                role,
                canteens: canteens.into_iter().map(zhucan_domain::CanteenId).collect(),
                town,
            };
            zhucan_server::accounts::create_user(&store, &u, SystemClock.now())?;
            println!("user {name} ({}) added", role.as_str());
            if generated {
                println!("password: {password}");
            }
        }
        Cmd::Bench {
            residents,
            days,
            rows,
        } => {
            let f = zhucan_server::bench::run(residents, days, rows)
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
        }
    }
    Ok(())
}
