//! A throwaway PostgreSQL cluster for tests: Debian's PostgreSQL binaries (`initdb`, `pg_ctl`;
//! package `postgresql`, which `.ci/run` installs) run a fresh cluster in a temporary directory
//! on a local port, and stop it and delete it when dropped. As root (CI), the server runs as the
//! `postgres` user, since PostgreSQL refuses to run as root.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// A running cluster. `url()` is a `postgres://` URL of its `zhucan` database.
pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The newest PostgreSQL server binaries under `/usr/lib/postgresql/<version>/bin`.
pub fn binaries() -> anyhow::Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql: install Debian's `postgresql` package")?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql/*/bin: install Debian's `postgresql` package")
}

fn is_root() -> bool {
    // The effective user of this process, from /proc (no libc call, no unsafe).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl Cluster {
    /// Creates and starts a cluster; waits (up to [`crate::WAIT`]) until it accepts connections.
    pub fn start() -> anyhow::Result<Cluster> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new().prefix("zhucan-pg-").tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()?;
            if !status.success() {
                bail!("chown postgres {}", dir.path().display());
            }
        }
        let port = crate::reserved_port();
        let cluster = Cluster {
            dir,
            port,
            bin,
            as_postgres,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "zhucan",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            cluster.dir.path().display()
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-o",
                &options,
                "-l",
                &cluster.dir.path().join("server.log").to_string_lossy(),
                "-w",
                "-t",
                &crate::WAIT.as_secs().to_string(),
                "start",
            ],
        )?;
        cluster.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "zhucan",
                "zhucan",
            ],
        )?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let started = Instant::now();
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", path.display()))?;
        if !out.status.success() {
            bail!(
                "{program} failed after {:?}: {}{}\nserver log: {}",
                started.elapsed(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        Ok(())
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The `zhucan` database of this cluster.
    pub fn url(&self) -> String {
        format!("postgres://zhucan@127.0.0.1:{}/zhucan", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// The environment variable that names a running cluster for the whole test run (`postgres://`
/// URL of any database on it): set, the server's API, dashboard and end-to-end tests run on
/// PostgreSQL, each test in a database of its own ([`Database::fresh`]). `with-postgres` starts a
/// throwaway cluster and sets it (`scripts/test-postgres`, `.ci/run`).
pub const ENV: &str = "ZHUCAN_TEST_POSTGRES";

/// The cluster of this test run, if [`ENV`] names one.
pub fn shared() -> Option<String> {
    std::env::var(ENV).ok().filter(|s| !s.is_empty())
}

/// An empty database of its own on the test run's cluster, for one test; dropped (its
/// connections ended) when this is dropped.
#[derive(Debug)]
pub struct Database {
    url: String,
    name: String,
    host: String,
    port: String,
}

impl Database {
    /// A new database on the cluster [`ENV`] names; `None` when the tests run on SQLite.
    pub fn fresh() -> anyhow::Result<Option<Database>> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let Some(cluster) = shared() else {
            return Ok(None);
        };
        // postgres://user@host:port/db
        let rest = cluster
            .split_once("://")
            .map(|(_, r)| r)
            .context("ZHUCAN_TEST_POSTGRES: not a URL")?;
        let (user_host, _) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, host_port) = user_host
            .split_once('@')
            .context("ZHUCAN_TEST_POSTGRES: no user@")?;
        let (host, port) = host_port
            .split_once(':')
            .context("ZHUCAN_TEST_POSTGRES: no :port")?;
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let db = Database {
            url: format!("postgres://{user}@{host}:{port}/{name}"),
            name,
            host: host.to_owned(),
            port: port.to_owned(),
        };
        db.client("createdb", &[])?;
        Ok(Some(db))
    }

    /// The database's `postgres://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `sql` in this database as its owner, with every guard of the schema on (triggers,
    /// keys, CHECKs); the error names what refused it.
    pub fn sql(&self, sql: &str) -> anyhow::Result<String> {
        self.client("psql", &["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
    }

    /// Everything the database holds, as a leaked backup would: `pg_dump`'s plain output.
    pub fn dump(&self) -> anyhow::Result<Vec<u8>> {
        Ok(self.client("pg_dump", &[])?.into_bytes())
    }

    /// Runs `sql` in this database as the cluster's superuser with triggers off
    /// (`session_replication_role = replica`): an attacker who holds the database itself, as
    /// one who holds an SQLite file.
    pub fn tamper(&self, sql: &str) -> anyhow::Result<String> {
        let script = format!("SET session_replication_role = replica;\n{sql}");
        self.client("psql", &["-v", "ON_ERROR_STOP=1", "-qAt", "-c", &script])
    }

    fn client(&self, program: &str, extra: &[&str]) -> anyhow::Result<String> {
        let path = binaries()?.join(program);
        let mut cmd = Command::new(&path);
        cmd.args(["-h", &self.host, "-p", &self.port, "-U", "zhucan"]);
        if program == "dropdb" {
            cmd.arg("--force");
        }
        if program == "psql" || program == "pg_dump" {
            cmd.args(["-d", &self.name]).args(extra);
        } else {
            cmd.args(extra).arg(&self.name);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run {}", path.display()))?;
        if !out.status.success() {
            bail!(
                "{program} {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.client("dropdb", &[]);
    }
}
