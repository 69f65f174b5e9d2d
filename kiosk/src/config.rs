//! The kiosk's configuration file (JSON), read by `zhucan-kiosk run --config FILE` and validated
//! into a [`Config`]. The operator PIN is redacted in `Debug`.
//!
//! ```json
//! {
//!   "data_dir": "data/kiosk",
//!   "server_url": "http://127.0.0.1:8080",
//!   "models_dir": "models",
//!   "source": { "kind": "replay", "list": "faces.tsv", "interval_ms": 100, "loop": true, "repeat": 5 },
//!   "ui_listen": "127.0.0.1:8090",
//!   "operator_pin": "2468",
//!   "k": 3, "n": 5, "cooldown_s": 10,
//!   "language": "zh",
//!   "evidence_photos": { "enabled": false, "retention_days": 30 }
//! }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Image files played at an interval: a list file (TSV or text, first column the path) and/or
    /// files given directly.
    Replay {
        #[serde(default)]
        list: Option<PathBuf>,
        /// Folder relative list entries are resolved against (default: the list's folder).
        #[serde(default)]
        root: Option<PathBuf>,
        #[serde(default)]
        files: Vec<PathBuf>,
        #[serde(default = "default_interval")]
        interval_ms: u64,
        #[serde(default, rename = "loop")]
        looping: bool,
        /// Frames each image is shown for.
        #[serde(default = "one")]
        repeat: u32,
    },
    /// A V4L2 camera (needs the `camera` cargo feature).
    Camera {
        #[serde(default)]
        device: u32,
        #[serde(default = "default_width")]
        width: u32,
        #[serde(default = "default_height")]
        height: u32,
    },
}

/// Evidence photos: when enabled, the aligned face crop of the frame that confirmed a face
/// check-in is kept (JPEG, encrypted) with the settlement, and deleted after `retention_days`.
/// Off by default: then no image is ever written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidencePhotos {
    pub enabled: bool,
    /// 1 to 365.
    pub retention_days: u32,
}

impl Default for EvidencePhotos {
    fn default() -> Self {
        EvidencePhotos {
            enabled: false,
            retention_days: 30,
        }
    }
}

impl EvidencePhotos {
    /// How long a photo is kept.
    pub fn retention(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.retention_days))
    }
}

fn default_interval() -> u64 {
    100
}
fn one() -> u32 {
    1
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_listen() -> SocketAddr {
    crate::ui::DEFAULT_ADDR
}
fn default_k() -> usize {
    3
}
fn default_n() -> usize {
    5
}
fn default_cooldown() -> u64 {
    10
}
fn default_lang() -> String {
    "zh".into()
}
fn default_pull() -> u64 {
    5_000
}
fn default_heartbeat() -> u64 {
    30_000
}
fn default_cap() -> u64 {
    30_000
}

/// The configuration file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The kiosk's folder: `kiosk.sqlite` and `secret.json`.
    pub data_dir: PathBuf,
    /// The server's root URL; default: the one stored by `enrol-kiosk`.
    #[serde(default)]
    pub server_url: Option<String>,
    /// Models folder (default: found like the other commands find it).
    #[serde(default)]
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime library (default: found like the other commands find it).
    #[serde(default)]
    pub ort_lib: Option<PathBuf>,
    pub source: SourceConfig,
    /// The screen's address (loopback).
    #[serde(default = "default_listen")]
    pub ui_listen: SocketAddr,
    pub operator_pin: String,
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default = "default_n")]
    pub n: usize,
    #[serde(default = "default_cooldown")]
    pub cooldown_s: u64,
    /// `zh` or `en`: the language of log-facing messages; the screen shows both.
    #[serde(default = "default_lang")]
    pub language: String,
    /// A cohort file of never-enrolled faces (embeddings only, `zhucan-kiosk cohort build`) to
    /// normalise match scores against; default: the gallery's other residents, once there are
    /// 100 of them (see the face README).
    #[serde(default)]
    pub cohort: Option<PathBuf>,
    /// Liveness threshold override. Leave unset in production (the calibrated default applies);
    /// tests that replay news photos (LFW, not camera frames) set it low, see `tests/kiosk.rs`.
    #[serde(default)]
    pub liveness_threshold: Option<f32>,
    #[serde(default = "default_pull")]
    pub sync_interval_ms: u64,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "default_cap")]
    pub backoff_cap_ms: u64,
    /// Demo and tests only: the kiosk's clock starts at this instant and runs in real time.
    #[serde(default)]
    pub clock_start: Option<DateTime<FixedOffset>>,
    /// Keep an encrypted photo of each face check-in (off by default).
    #[serde(default)]
    pub evidence_photos: EvidencePhotos,
    /// The time zone the canteen's slots and meal dates are in (an IANA name, like the
    /// server's `--timezone`). Default `Asia/Shanghai`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("server_url", &self.server_url)
            .field("models_dir", &self.models_dir)
            .field("source", &self.source)
            .field("ui_listen", &self.ui_listen)
            .field("operator_pin", &"[redacted]")
            .field("k", &self.k)
            .field("n", &self.n)
            .field("cooldown_s", &self.cooldown_s)
            .field("evidence_photos", &self.evidence_photos)
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration with defaults (tests build on it).
    pub fn new(data_dir: impl Into<PathBuf>, source: SourceConfig, pin: &str) -> Config {
        Config {
            data_dir: data_dir.into(),
            server_url: None,
            models_dir: None,
            ort_lib: None,
            source,
            ui_listen: default_listen(),
            operator_pin: pin.into(),
            k: default_k(),
            n: default_n(),
            cooldown_s: default_cooldown(),
            language: default_lang(),
            cohort: None,
            liveness_threshold: None,
            sync_interval_ms: default_pull(),
            heartbeat_interval_ms: default_heartbeat(),
            backoff_cap_ms: default_cap(),
            clock_start: None,
            evidence_photos: EvidencePhotos::default(),
            timezone: default_timezone(),
        }
    }

    /// The configured time zone ([`Config::validate`] refuses a name it does not know).
    pub fn tz(&self) -> Result<chrono_tz::Tz, Error> {
        self.timezone.parse().map_err(|_| {
            Error::Invalid(format!(
                "timezone: '{}' is not an IANA time zone name (e.g. Asia/Shanghai)",
                self.timezone
            ))
        })
    }

    /// Reads and validates a JSON file; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut c: Config = serde_json::from_str(&text).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut c.data_dir);
        if let Some(m) = c.models_dir.as_mut() {
            abs(m);
        }
        if let Some(o) = c.ort_lib.as_mut() {
            abs(o);
        }
        if let SourceConfig::Replay {
            list, root, files, ..
        } = &mut c.source
        {
            if let Some(l) = list.as_mut() {
                abs(l);
            }
            if let Some(r) = root.as_mut() {
                abs(r);
            }
            files.iter_mut().for_each(abs);
        }
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.k == 0 || self.n < self.k {
            return Err(Error::Invalid(format!(
                "k must be at least 1 and at most n (k = {}, n = {})",
                self.k, self.n
            )));
        }
        if self.operator_pin.trim().len() < 4 {
            return Err(Error::Invalid(
                "operator_pin must have at least 4 characters".into(),
            ));
        }
        if !matches!(self.language.as_str(), "zh" | "en") {
            return Err(Error::Invalid("language must be zh or en".into()));
        }
        self.tz()?;
        let days = self.evidence_photos.retention_days;
        if !(1..=365).contains(&days) {
            return Err(Error::Invalid(format!(
                "evidence_photos.retention_days must be 1 to 365 days (got {days})"
            )));
        }
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("kiosk.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_file_and_resolves_relative_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kiosk.json");
        std::fs::write(
            &p,
            r#"{"data_dir": "data", "operator_pin": "2468",
                "source": {"kind": "replay", "list": "faces.tsv", "loop": true, "repeat": 5}}"#,
        )
        .expect("write");
        let c = Config::load(&p).expect("config");
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!((c.k, c.n, c.cooldown_s), (3, 5, 10));
        assert_eq!(c.ui_listen.to_string(), "127.0.0.1:8090");
        match c.source {
            SourceConfig::Replay {
                list,
                looping,
                repeat,
                interval_ms,
                ..
            } => {
                assert_eq!(list, Some(dir.path().join("faces.tsv")));
                assert!(looping);
                assert_eq!((repeat, interval_ms), (5, 100));
            }
            other => panic!("expected replay, got {other:?}"),
        }
        assert!(!format!("{:?}", Config::load(&p).expect("c")).contains("2468"));
        assert_eq!(
            c.evidence_photos,
            EvidencePhotos {
                enabled: false,
                retention_days: 30
            },
            "evidence photos are off unless switched on"
        );
    }

    #[test]
    fn evidence_photos_are_validated_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.json");
        let load = |ev: &str| {
            std::fs::write(
                &p,
                format!(
                    r#"{{"data_dir": "d", "operator_pin": "2468", "source": {{"kind": "camera"}},
                        "evidence_photos": {ev}}}"#
                ),
            )
            .expect("write");
            Config::load(&p)
        };
        let c = load(r#"{"enabled": true}"#).expect("on, default retention");
        assert_eq!(c.evidence_photos.retention_days, 30);
        assert!(c.evidence_photos.enabled);
        let c = load(r#"{"enabled": true, "retention_days": 365}"#).expect("a year");
        assert_eq!(c.evidence_photos.retention(), chrono::Duration::days(365));
        for bad in [
            r#"{"enabled": true, "retention_days": 0}"#,
            r#"{"enabled": true, "retention_days": 366}"#,
        ] {
            let e = load(bad).expect_err(bad).to_string();
            assert!(e.contains("evidence_photos.retention_days"), "{e}");
        }
        let e = load(r#"{"enabled": true, "keep_days": 3}"#)
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("keep_days"), "{e}");
    }

    #[test]
    fn refuses_bad_rules_and_unknown_fields() {
        let mut c = Config::new(
            "d",
            SourceConfig::Camera {
                device: 0,
                width: 640,
                height: 480,
            },
            "2468",
        );
        c.k = 6;
        assert!(c.validate().is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.json");
        std::fs::write(
            &p,
            r#"{"data_dir": "d", "operator_pin": "2468", "source": {"kind": "camera"}, "pinn": 1}"#,
        )
        .expect("write");
        assert!(Config::load(&p).is_err());
    }

    #[test]
    fn the_time_zone_comes_from_the_configuration_and_a_wrong_name_is_refused() {
        let source = SourceConfig::Camera {
            device: 0,
            width: 640,
            height: 480,
        };
        let mut c = Config::new("data", source, "2468");
        assert_eq!(c.tz().expect("default"), chrono_tz::Asia::Shanghai);
        c.timezone = "Asia/Urumqi".into();
        assert_eq!(c.tz().expect("urumqi"), chrono_tz::Asia::Urumqi);
        c.timezone = "Mars/Olympus".into();
        let e = c.validate().expect_err("unknown zone");
        assert!(e.to_string().contains("timezone"), "{e}");
    }
}
