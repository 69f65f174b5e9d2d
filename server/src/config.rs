//! Configuration (command-line flags and `ZHUCAN_*` environment variables, parsed with clap and
//! then validated into a [`Config`]) and the injected [`Clock`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

/// Server settings as given on the command line or in the environment.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// The database: an SQLite file, or a PostgreSQL URL (`postgres://user@host:port/db`; then
    /// `--secret-key-file` is required).
    #[arg(long, env = "ZHUCAN_DB", default_value = "data/zhucan.sqlite")]
    pub db: crate::db::Location,
    /// Address to listen on.
    #[arg(long, env = "ZHUCAN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token of the administrator. Prefer `--admin-token-file` or the environment: a
    /// command-line argument is visible to every user of the machine (`ps`).
    #[arg(long, env = "ZHUCAN_ADMIN_TOKEN", conflicts_with = "admin_token_file")]
    pub admin_token: Option<String>,
    /// File holding the administrator's bearer token (mode 0600; surrounding whitespace ignored).
    #[arg(long, env = "ZHUCAN_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Time zone of the canteens (IANA name): meal dates and slots are local to it.
    #[arg(long, env = "ZHUCAN_TIMEZONE", default_value = "Asia/Shanghai")]
    pub timezone: String,
    /// File with the secret key of the national-ID blind index (created with 32 random bytes if
    /// missing). Default: `<db>.key`.
    #[arg(long, env = "ZHUCAN_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ZHUCAN_BODY_LIMIT", default_value_t = 2 * 1024 * 1024)]
    pub body_limit: usize,
    /// The city platform's endpoint: every settlement and void is POSTed there (off if unset).
    #[arg(long, env = "ZHUCAN_PUSH_URL", requires = "push_secret_file")]
    pub push_url: Option<String>,
    /// File holding the HMAC-SHA256 secret shared with the city platform.
    #[arg(long, env = "ZHUCAN_PUSH_SECRET_FILE")]
    pub push_secret_file: Option<PathBuf>,
    /// Check every API answer against the OpenAPI document; an answer that differs becomes a
    /// 500 with the difference in the log (tests, staging; it costs a re-parse per answer).
    #[arg(long, env = "ZHUCAN_CHECK_RESPONSES")]
    pub check_responses: bool,
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// Rate limits and cookie flags, as given on the command line or in the environment.
#[derive(clap::Args, Debug, Clone)]
pub struct SecurityArgs {
    /// Dashboard log-in attempts per minute per client address (0: no limit). On top of the
    /// per-account lock-out.
    #[arg(long, env = "ZHUCAN_LOGIN_RATE", default_value_t = SecurityConfig::default().login_per_minute)]
    pub login_rate: u32,
    /// Kiosk enrolments (`POST /api/v1/kiosks/enrol`, unauthenticated) per minute per address.
    #[arg(long, env = "ZHUCAN_ENROL_RATE", default_value_t = SecurityConfig::default().enrol_per_minute)]
    pub enrol_rate: u32,
    /// Kiosk requests (`/api/v1/kiosk/*`, `/api/v1/settlements`) per minute per kiosk token
    /// (or address, without one).
    #[arg(long, env = "ZHUCAN_KIOSK_RATE", default_value_t = SecurityConfig::default().kiosk_per_minute)]
    pub kiosk_rate: u32,
    /// Mark the session cookie `Secure` (the server is reached over HTTPS).
    #[arg(long, env = "ZHUCAN_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Face meals with a lower match score are refused: no kiosk setting accepts one (the
    /// kiosk's lowest threshold is 0.45). Lower it only with the kiosks' thresholds.
    #[arg(long, env = "ZHUCAN_MIN_MATCH_SCORE", default_value_t = crate::ingest::Rules::default().min_match_score)]
    pub min_match_score: f64,
    /// Face meals with a lower liveness score are refused (the kiosk's threshold is 0.5).
    #[arg(long, env = "ZHUCAN_MIN_LIVENESS_SCORE", default_value_t = crate::ingest::Rules::default().min_liveness_score)]
    pub min_liveness_score: f64,
    /// Meals that reach the server more than this many hours after they were served are
    /// accepted but marked late on the statement.
    #[arg(long, env = "ZHUCAN_LATE_AFTER_HOURS", default_value_t = crate::ingest::Rules::default().late_after_hours)]
    pub late_after_hours: u32,
    /// Meals that reach the server more than this many days after they were served are
    /// refused (an offline kiosk sends within days; older meals are backdating).
    #[arg(long, env = "ZHUCAN_MAX_LATE_DAYS", default_value_t = crate::ingest::Rules::default().max_late_days)]
    pub max_late_days: u32,
    /// The thresholds of the audit red flags.
    #[command(flatten)]
    pub flags: crate::flags::FlagArgs,
    /// A face enrolled for one resident that matches another resident's stored face with at
    /// least this cosine similarity is refused (409 `duplicate_face`) unless staff confirm it;
    /// the lookalike scan records pairs at or above it. 0.62 is the kiosk's open-set threshold
    /// at a 200-template gallery (about 0.1% of strangers reach it).
    #[arg(long, env = "ZHUCAN_DUPLICATE_FACE_THRESHOLD", value_parser = unit_interval,
          default_value_t = SecurityConfig::default().duplicate_face_threshold)]
    pub duplicate_face_threshold: f64,
    /// A void or adjustment whose subsidy is above this many fen (default 5000: ¥50) waits for
    /// a second person (finance or admin, not the requester) to approve it.
    #[arg(long, env = "ZHUCAN_FOUR_EYES_ABOVE_FEN", default_value_t = crate::corrections::FourEyes::default().above_fen)]
    pub four_eyes_above_fen: i64,
    /// A void or adjustment of a meal served more than this many days before today (in the
    /// configured zone; default 7) waits for a second person too.
    #[arg(long, env = "ZHUCAN_FOUR_EYES_AFTER_DAYS", default_value_t = crate::corrections::FourEyes::default().after_days)]
    pub four_eyes_after_days: u32,
    /// A spot check (抽查) is a red flag when the canteen recorded more than this many meals
    /// above the heads the auditor counted in its window.
    #[arg(long, env = "ZHUCAN_SPOT_CHECK_TOLERANCE", default_value_t = SecurityConfig::default().spot_check_tolerance)]
    pub spot_check_tolerance: u32,
}

/// A number in 0..=1 (a cosine similarity threshold).
fn unit_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..=1"))
    }
}

impl Default for SecurityArgs {
    fn default() -> SecurityArgs {
        let d = SecurityConfig::default();
        SecurityArgs {
            login_rate: d.login_per_minute,
            enrol_rate: d.enrol_per_minute,
            kiosk_rate: d.kiosk_per_minute,
            secure_cookies: d.secure_cookies,
            min_match_score: d.ingest.min_match_score,
            min_liveness_score: d.ingest.min_liveness_score,
            late_after_hours: d.ingest.late_after_hours,
            max_late_days: d.ingest.max_late_days,
            flags: crate::flags::FlagArgs::default(),
            duplicate_face_threshold: d.duplicate_face_threshold,
            four_eyes_above_fen: d.four_eyes.above_fen,
            four_eyes_after_days: d.four_eyes.after_days,
            spot_check_tolerance: d.spot_check_tolerance,
        }
    }
}

impl SecurityArgs {
    pub fn config(&self) -> SecurityConfig {
        SecurityConfig {
            login_per_minute: self.login_rate,
            enrol_per_minute: self.enrol_rate,
            kiosk_per_minute: self.kiosk_rate,
            secure_cookies: self.secure_cookies,
            ingest: crate::ingest::Rules {
                min_match_score: self.min_match_score,
                min_liveness_score: self.min_liveness_score,
                late_after_hours: self.late_after_hours,
                max_late_days: self.max_late_days,
            },
            flags: crate::flags::Rules {
                spot_check_tolerance: self.spot_check_tolerance,
                ..self.flags.rules()
            },
            duplicate_face_threshold: self.duplicate_face_threshold,
            four_eyes: crate::corrections::FourEyes {
                above_fen: self.four_eyes_above_fen,
                after_days: self.four_eyes_after_days,
            },
            spot_check_tolerance: self.spot_check_tolerance,
            ..SecurityConfig::default()
        }
    }
}

/// Abuse limits, cookie flags and what ingestion refuses. `Default` holds the production values.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityConfig {
    /// Log-in POSTs per minute per client address (token bucket; 0: no limit).
    pub login_per_minute: u32,
    /// `POST /api/v1/kiosks/enrol` per minute per client address.
    pub enrol_per_minute: u32,
    /// `/api/v1/kiosk/*` and `/api/v1/settlements` per minute per kiosk token (or address).
    pub kiosk_per_minute: u32,
    /// Longest request target (path and query), in bytes; longer gets 414.
    pub max_uri_bytes: usize,
    /// Largest total of header names and values, in bytes; more gets 431.
    pub max_header_bytes: usize,
    /// Add `Secure` to the session cookie (behind TLS).
    pub secure_cookies: bool,
    /// Score floors and lateness limits of settlement ingestion.
    pub ingest: crate::ingest::Rules,
    /// The thresholds of the audit red flags.
    pub flags: crate::flags::Rules,
    /// Cosine similarity from which an enrolled face counts as another resident's (duplicate
    /// enrolment; see `crate::lookalikes`).
    pub duplicate_face_threshold: f64,
    /// When a correction needs a second person.
    pub four_eyes: crate::corrections::FourEyes,
    /// Meals a canteen may record above a spot check's headcount before the check is a red
    /// flag (`spot_checks::flags`).
    pub spot_check_tolerance: u32,
}

impl Default for SecurityConfig {
    fn default() -> SecurityConfig {
        SecurityConfig {
            login_per_minute: 10,
            enrol_per_minute: 10,
            kiosk_per_minute: 600,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 32 * 1024,
            secure_cookies: false,
            ingest: crate::ingest::Rules::default(),
            flags: crate::flags::Rules::default(),
            duplicate_face_threshold: 0.62,
            four_eyes: crate::corrections::FourEyes::default(),
            spot_check_tolerance: 2,
        }
    }
}

impl std::fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerArgs")
            .field("db", &self.db)
            .field("listen", &self.listen)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field("timezone", &self.timezone)
            .field("secret_key_file", &self.secret_key_file)
            .field("security", &self.security)
            .finish()
    }
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The blind-index key: `Debug` never shows it.
#[derive(Clone)]
pub struct IndexKey(pub Vec<u8>);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey([redacted])")
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: crate::db::Location,
    pub listen: SocketAddr,
    pub admin_token: Secret,
    pub timezone: Tz,
    pub index_key: IndexKey,
    pub body_limit: usize,
    /// Delivery to the city platform; `None`: off.
    pub push: Option<PushConfig>,
    /// Rate and size limits, cookie flags.
    pub security: SecurityConfig,
    /// Check every API answer against the OpenAPI document (`http::conformance`).
    pub check_responses: bool,
}

/// Where and how to push settlements to the city platform.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub url: String,
    /// The HMAC-SHA256 key of the `X-Zhucan-Signature` header.
    pub secret: Secret,
    /// How long the worker sleeps when nothing is due.
    pub poll: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--timezone: '{0}' is not an IANA time zone name")]
    Timezone(String),
    #[error(
        "--admin-token-file (ZHUCAN_ADMIN_TOKEN_FILE) or ZHUCAN_ADMIN_TOKEN is required; the token must be at least 16 characters"
    )]
    AdminToken,
    #[error("--push-url: {0}")]
    Push(String),
    #[error("--secret-key-file (ZHUCAN_SECRET_KEY_FILE) is required with a PostgreSQL --db")]
    KeyFileRequired,
    #[error("secret key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("admin token file {path}: {reason}")]
    AdminTokenFile { path: PathBuf, reason: String },
}

impl ServerArgs {
    /// Checks the arguments and loads (or creates) the blind-index key.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let timezone: Tz = self
            .timezone
            .parse()
            .map_err(|_| ConfigError::Timezone(self.timezone.clone()))?;
        let from_file = match &self.admin_token_file {
            Some(p) => Some(
                read_private(p).map_err(|reason| ConfigError::AdminTokenFile {
                    path: p.clone(),
                    reason,
                })?,
            ),
            None => None,
        };
        let admin_token = match from_file.as_ref().or(self.admin_token.as_ref()) {
            Some(t) if t.len() >= 16 => Secret::new(t.clone()),
            _ => return Err(ConfigError::AdminToken),
        };
        let key_path = match (&self.secret_key_file, &self.db) {
            (Some(p), _) => p.clone(),
            (None, crate::db::Location::Sqlite(db)) => default_key_path(db),
            (None, crate::db::Location::Postgres(_)) => return Err(ConfigError::KeyFileRequired),
        };
        let index_key = load_or_create_key(&key_path)?;
        let push = match (&self.push_url, &self.push_secret_file) {
            (None, _) => None,
            (Some(url), secret_file) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Push(format!("'{url}' is not an http(s) URL")));
                }
                let file = secret_file
                    .as_ref()
                    .ok_or_else(|| ConfigError::Push("--push-secret-file is required".into()))?;
                let secret = std::fs::read_to_string(file)
                    .map_err(|e| ConfigError::Push(format!("{}: {e}", file.display())))?;
                let secret = secret.trim();
                if secret.len() < 16 {
                    return Err(ConfigError::Push(
                        "the push secret must be at least 16 characters".into(),
                    ));
                }
                Some(PushConfig {
                    url: url.clone(),
                    secret: Secret::new(secret),
                    poll: std::time::Duration::from_secs(1),
                })
            }
        };
        Ok(Config {
            db: self.db.clone(),
            listen: self.listen,
            admin_token,
            timezone,
            index_key,
            body_limit: self.body_limit,
            push,
            security: self.security.config(),
            check_responses: self.check_responses,
        })
    }
}

pub fn default_key_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

/// Reads a secret from a file that only its owner may read (the trimmed text).
fn read_private(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "group or others may read it (mode {:04o}); only the server's user may: run \
             `chmod 600 {}`",
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(std::fs::read_to_string(path)
        .map_err(|e| e.to_string())?
        .trim()
        .to_owned())
}

/// Reads the key file, or creates it (mode 0600) with 32 random bytes (hex) when it does not
/// exist. Refuses a key file that group or others may read: whoever reads it opens every sealed
/// ID number and face template.
pub fn load_or_create_key(path: &Path) -> Result<IndexKey, ConfigError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let e = |reason: String| ConfigError::Key {
        path: path.to_owned(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(_) => {
            let s = read_private(path).map_err(e)?;
            let bytes = hex::decode(s.trim()).map_err(|err| e(format!("not hex: {err}")))?;
            if bytes.len() < 16 {
                return Err(e("must hold at least 16 bytes (32 hex characters)".into()));
            }
            Ok(IndexKey(bytes))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|err| e(err.to_string()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|err| e(err.to_string()))?;
            f.write_all(hex::encode(bytes).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|err| e(err.to_string()))?;
            tracing::warn!(path = %path.display(), "created a new blind-index key; back it up");
            Ok(IndexKey(bytes.to_vec()))
        }
        Err(err) => Err(e(err.to_string())),
    }
}

/// Where the server reads the time (the one clock the kiosk uses too). Never call `Utc::now()`
/// deep in logic: take a clock.
pub use zhucan_platform::clock::{Clock, FixedClock, SystemClock};

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_key_file_is_owner_only_and_a_readable_one_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("zhucan.sqlite.key");
        let created = load_or_create_key(&p).expect("create");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(load_or_create_key(&p).expect("reload").0, created.0);
        for loose in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(loose)).expect("chmod");
            let e = load_or_create_key(&p)
                .expect_err("a readable key file")
                .to_string();
            assert!(
                e.contains(&format!("{loose:04o}")) && e.contains("chmod 600"),
                "{e}"
            );
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(load_or_create_key(&p).expect("fixed").0, created.0);
    }

    #[test]
    fn the_admin_token_comes_from_a_private_file_as_well() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ServerArgs,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, token) = (dir.path().join("z.sqlite"), dir.path().join("admin.token"));
        std::fs::write(&token, "  a-token-of-at-least-16-chars\n").expect("write");
        let parse = |extra: &[&str]| {
            let mut argv = vec!["zhucan-server", "--db", db.to_str().expect("utf-8")];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map(|c| c.args)
        };
        let file = ["--admin-token-file", token.to_str().expect("utf-8")];
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = parse(&file)
            .expect("args")
            .validate()
            .expect_err("loose file")
            .to_string();
        assert!(
            e.contains("chmod 600") && e.contains("admin token file"),
            "{e}"
        );
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = parse(&file).expect("args").validate().expect("valid");
        assert_eq!(c.admin_token.expose(), "a-token-of-at-least-16-chars");
        // four-eyes: documented defaults, and both flags change them
        let c = parse(&file).expect("args").validate().expect("valid");
        assert_eq!(
            c.security.four_eyes,
            crate::corrections::FourEyes {
                above_fen: 5000,
                after_days: 7
            }
        );
        let mut flags = file.to_vec();
        flags.extend([
            "--four-eyes-above-fen",
            "800",
            "--four-eyes-after-days",
            "3",
        ]);
        let c = parse(&flags).expect("args").validate().expect("valid");
        assert_eq!(
            (
                c.security.four_eyes.above_fen,
                c.security.four_eyes.after_days
            ),
            (800, 3)
        );
        // one source only: a token on the command line and a file conflict
        assert!(
            parse(&[
                "--admin-token",
                "another-token-0123456789",
                file[0],
                file[1]
            ])
            .is_err()
        );
    }

    #[test]
    fn the_spot_check_tolerance_is_two_meals_unless_given() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            security: SecurityArgs,
        }
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).map(|c| c.security.config());
        assert_eq!(SecurityConfig::default().spot_check_tolerance, 2);
        let given = parse(&["zhucan-server", "--spot-check-tolerance", "5"]).expect("args");
        assert_eq!(given.spot_check_tolerance, 5);
        assert!(parse(&["zhucan-server", "--spot-check-tolerance", "-1"]).is_err());
    }
}
