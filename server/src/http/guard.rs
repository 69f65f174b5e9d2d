//! The guard in front of every route: size limits and rate limits.
//!
//! - **Size.** A request target longer than `max_uri_bytes` gets 414, headers adding up to more
//!   than `max_header_bytes` get 431, and a body over `body_limit` gets 413 — refused from its
//!   `Content-Length` before it is read, and any 413 an extractor raises while reading (a
//!   chunked body) is rewritten the same way. API paths answer in the house JSON error shape
//!   naming the limit; dashboard paths with a small HTML page. (hyper itself refuses request
//!   heads above ~400 kB; JSON nesting depth is bounded in [`super::extract`].)
//! - **Rate.** Token buckets of our own, timed by the injected clock so tests are exact: the
//!   dashboard log-in POST and `POST /api/v1/kiosks/enrol` (unauthenticated) per client address,
//!   the kiosks' routes (`/api/v1/kiosk/*`, `/api/v1/settlements`) per kiosk token (or address
//!   without one). An empty bucket answers 429 with `Retry-After`; the log-in page says so in
//!   Chinese (or English).
//!
//! The client address is the TCP peer from `ConnectInfo<SocketAddr>` (the server is served
//! with `into_make_service_with_connect_info`); without it (a router driven directly) every
//! caller shares one bucket per route class rather than failing.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use zhucan_domain::api::{ErrorBody, ErrorDetail};

use super::AppState;
use crate::config::SecurityConfig;
use crate::crypto::sha256_hex;

/// Buckets kept before idle (full) ones are dropped.
const PRUNE_AT: usize = 10_000;
/// Buckets kept at most; beyond this (an address flood) the map starts over.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// A token bucket per key: `per_minute` requests in a burst, refilled evenly over a minute.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_minute == 0`: no limit.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, b: &mut Bucket, now: DateTime<Utc>) {
        let capacity = f64::from(self.per_minute);
        // A clock set back refills nothing (and does not move the bucket back).
        if now > b.at {
            let secs = (now - b.at).num_milliseconds() as f64 / 1000.0;
            b.tokens = (b.tokens + secs * capacity / 60.0).min(capacity);
            b.at = now;
        }
    }

    /// Takes a token for `key` at `now`; `Err(seconds)` says when the next one will be there.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PRUNE_AT && !map.contains_key(key) {
            map.retain(|_, b| {
                let mut b2 = *b;
                self.refill(&mut b2, now);
                b2.tokens < capacity
            });
            if map.len() >= MAX_BUCKETS {
                map.clear();
            }
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        self.refill(b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) * 60.0 / capacity;
            // (less a hair, so float noise never adds a second)
            Err(((wait - 1e-9).ceil() as u64).max(1))
        }
    }
}

/// The server's rate limiters, one per route class.
#[derive(Debug)]
pub struct Limiters {
    pub login: RateLimiter,
    pub enrol: RateLimiter,
    pub kiosk: RateLimiter,
}

impl Limiters {
    pub fn new(cfg: &SecurityConfig) -> Limiters {
        Limiters {
            login: RateLimiter::new(cfg.login_per_minute),
            enrol: RateLimiter::new(cfg.enrol_per_minute),
            kiosk: RateLimiter::new(cfg.kiosk_per_minute),
        }
    }
}

pub use super::client::addr as client_addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Login,
    Enrol,
    Kiosk,
}

fn classify(method: &Method, path: &str) -> Option<Class> {
    if method == Method::POST && path == "/login" {
        Some(Class::Login)
    } else if method == Method::POST && path == "/api/v1/kiosks/enrol" {
        Some(Class::Enrol)
    } else if path.starts_with("/api/v1/kiosk/") || path == "/api/v1/settlements" {
        Some(Class::Kiosk)
    } else {
        None
    }
}

/// The house JSON error with a status.
fn json_error(status: StatusCode, code: &str, field: Option<&str>, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                field: field.map(str::to_owned),
                message,
                duplicate_of: None,
            },
        }),
    )
        .into_response()
}

/// A refusal in the form the caller reads: JSON under `/api/`, an HTML page elsewhere.
fn refuse(
    api: bool,
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    zh: &str,
    en: String,
) -> Response {
    if api {
        json_error(status, code, field, en)
    } else {
        super::dashboard::error_page(status, &format!("{zh} / {en}"))
    }
}

fn too_large(api: bool, limit: usize) -> Response {
    refuse(
        api,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        Some("body"),
        &format!("提交的内容超过 {limit} 字节的上限"),
        format!("the request body is larger than the limit of {limit} bytes"),
    )
}

/// Size limits, then rate limits, then the route; a 413 from the route is rewritten to name the
/// limit.
pub async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let sec = &st.config.security;
    let path = req.uri().path().to_owned();
    let api = path.starts_with("/api/");

    let target = path.len() + req.uri().query().map_or(0, |q| q.len() + 1);
    if target > sec.max_uri_bytes {
        let field = if req.uri().query().is_some_and(|q| q.len() > path.len()) {
            "query"
        } else {
            "path"
        };
        return refuse(
            api,
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            Some(field),
            &format!(
                "网址长度 {target} 字节，超过 {} 字节的上限",
                sec.max_uri_bytes
            ),
            format!(
                "the URL is {target} bytes; the limit is {} bytes",
                sec.max_uri_bytes
            ),
        );
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if head > sec.max_header_bytes {
        return refuse(
            api,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            Some("headers"),
            &format!(
                "请求头共 {head} 字节，超过 {} 字节的上限",
                sec.max_header_bytes
            ),
            format!(
                "the request headers are {head} bytes; the limit is {} bytes",
                sec.max_header_bytes
            ),
        );
    }
    let limit = st.config.body_limit;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(api, limit);
    }

    if let Some(class) = classify(req.method(), &path) {
        let ip = client_addr(req.extensions())
            .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
        let (limiter, key) = match class {
            Class::Login => (&st.limits.login, ip),
            Class::Enrol => (&st.limits.enrol, ip),
            Class::Kiosk => {
                let token = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                let key = match token {
                    Some(t) => format!("token:{}", &sha256_hex(t.trim().as_bytes())[..32]),
                    None => format!("ip:{ip}"),
                };
                (&st.limits.kiosk, key)
            }
        };
        if let Err(wait) = limiter.check(&key, st.clock.now()) {
            tracing::warn!(?class, path = %path, "rate limited");
            let mut resp = if class == Class::Login {
                let (parts, _) = req.into_parts();
                super::dashboard::session::too_many_attempts(
                    super::dashboard::english(&parts),
                    wait,
                )
            } else {
                json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    None,
                    format!("too many requests; try again in {wait} s"),
                )
            };
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return resp;
        }
    }

    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(api, limit);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn a_bucket_empties_and_refills_with_the_clock() {
        let l = RateLimiter::new(10);
        for _ in 0..10 {
            assert_eq!(l.check("a", t(0)), Ok(()));
        }
        assert_eq!(l.check("a", t(0)), Err(6));
        // Another key has its own bucket.
        assert_eq!(l.check("b", t(0)), Ok(()));
        // One token every 6 s.
        assert_eq!(l.check("a", t(5)), Err(1));
        assert_eq!(l.check("a", t(6)), Ok(()));
        assert_eq!(l.check("a", t(6)), Err(6));
        // A minute refills the burst, no more.
        for _ in 0..10 {
            assert_eq!(l.check("a", t(600)), Ok(()));
        }
        assert!(l.check("a", t(600)).is_err());
        // A clock set back refills nothing.
        assert!(l.check("a", t(100)).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        let l = RateLimiter::new(0);
        for _ in 0..1000 {
            assert_eq!(l.check("a", t(0)), Ok(()));
        }
    }

    #[test]
    fn routes_fall_into_their_class() {
        assert_eq!(classify(&Method::POST, "/login"), Some(Class::Login));
        assert_eq!(classify(&Method::GET, "/login"), None);
        assert_eq!(
            classify(&Method::POST, "/api/v1/kiosks/enrol"),
            Some(Class::Enrol)
        );
        assert_eq!(
            classify(&Method::GET, "/api/v1/kiosk/sync"),
            Some(Class::Kiosk)
        );
        assert_eq!(
            classify(&Method::POST, "/api/v1/settlements"),
            Some(Class::Kiosk)
        );
        assert_eq!(classify(&Method::POST, "/api/v1/settlements/x/void"), None);
        assert_eq!(classify(&Method::GET, "/api/v1/kiosks"), None);
    }
}
