//! Pushes every accepted settlement and every void to the city platform ("就餐数据实时推送至平台").
//!
//! The messages sit in `push_outbox`, written in the transaction that settled or voided the
//! meal. This worker POSTs each body as JSON to the configured URL with
//! `X-Zhucan-Timestamp: <unix seconds>` and
//! `X-Zhucan-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the shared secret>`
//! (the timestamp is signed too, so a receiver can refuse a stale replay), and marks a message
//! delivered only on a 2xx. Failures are
//! retried with exponential backoff (2, 4, 8 … seconds, at most an hour), timed by the injected
//! clock. Every body carries the stable settlement `id` and its `kind`, so a receiver that sees a
//! message twice (a 2xx lost on the way back) can drop the copy.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Clock, PushConfig};
use crate::crypto::hmac_sha256;
use crate::db::{self, Db};

/// Messages sent per round.
const BATCH: i64 = 100;
/// The longest wait between two attempts at one message.
const MAX_BACKOFF_SECS: i64 = 3600;

/// `sha256=<hex>`: the signature header value of `body` sent at `timestamp` (unix seconds, as
/// in `X-Zhucan-Timestamp`): HMAC-SHA256 over `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut msg = format!("{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac_sha256(secret, &msg)))
}

/// When to try again after `attempts` failed attempts.
pub fn next_attempt(now: DateTime<Utc>, attempts: i64) -> DateTime<Utc> {
    let secs = 2i64
        .checked_pow(attempts.clamp(1, 30) as u32)
        .unwrap_or(MAX_BACKOFF_SECS)
        .min(MAX_BACKOFF_SECS);
    now + chrono::Duration::seconds(secs)
}

fn ts(t: DateTime<Utc>) -> String {
    zhucan_platform::stamp(t)
}

/// Delivers due messages forever (until the task is aborted).
pub async fn run(db: Db, cfg: PushConfig, clock: Arc<dyn Clock>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "push: cannot build an HTTP client; pushing is off");
            return;
        }
    };
    loop {
        let sent = match round(&db, &cfg, clock.as_ref(), &client).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "push: round failed");
                0
            }
        };
        if sent == 0 {
            tokio::time::sleep(cfg.poll).await;
        }
    }
}

/// One pass over the due messages; returns how many were delivered.
pub async fn round(
    db: &Db,
    cfg: &PushConfig,
    clock: &dyn Clock,
    client: &reqwest::Client,
) -> db::Result<usize> {
    let now = ts(clock.now());
    let due = db.read(move |c| db::push::due(c, &now, BATCH)).await?;
    let mut delivered = 0;
    for m in due {
        let stamp = clock.now().timestamp();
        let sig = signature(cfg.secret.expose().as_bytes(), stamp, m.body.as_bytes());
        let resp = client
            .post(&cfg.url)
            .header("content-type", "application/json")
            .header("x-zhucan-signature", sig)
            .header("x-zhucan-timestamp", stamp.to_string())
            .header("idempotency-key", format!("{}:{}", m.settlement_id, m.kind))
            .body(m.body.clone())
            .send()
            .await;
        let now = clock.now();
        let (ok, status, error) = match resp {
            Ok(r) if r.status().is_success() => (true, Some(r.status().as_u16()), String::new()),
            Ok(r) => (
                false,
                Some(r.status().as_u16()),
                format!("HTTP {}", r.status()),
            ),
            Err(e) => (false, None, e.to_string()),
        };
        let seq = m.seq;
        if ok {
            let at = ts(now);
            let code = status.unwrap_or(200);
            db.write(move |tx| db::push::delivered(tx, seq, &at, code))
                .await?;
            delivered += 1;
        } else {
            let next = ts(next_attempt(now, m.attempts + 1));
            tracing::debug!(seq, %error, "push: delivery failed; will retry");
            db.write(move |tx| db::push::failed(tx, seq, &next, status, &error))
                .await?;
            // The platform is down or refusing: stop this round, try the rest later.
            break;
        }
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!((next_attempt(t0, 1) - t0).num_seconds(), 2);
        assert_eq!((next_attempt(t0, 3) - t0).num_seconds(), 8);
        assert_eq!((next_attempt(t0, 40) - t0).num_seconds(), MAX_BACKOFF_SECS);
    }

    #[test]
    fn signature_is_hex_hmac_sha256_over_timestamp_and_body() {
        // RFC 4231 test case 2, split as "<timestamp>.<body>" would be.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = signature(b"Jefe", 1_773_547_200, b"{}");
        assert_eq!(
            sig,
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(b"Jefe", b"1773547200.{}"))
            )
        );
        assert_ne!(sig, signature(b"Jefe", 1_773_547_201, b"{}"));
    }
}
