//! Sync with the server: the [`client`], and the [`worker`] task that
//! (a) sends the outbox in batches of up to [`BATCH`] oldest-first, idempotently (the server
//!     dedups by settlement id), with exponential backoff and jitter; item errors with transient
//!     codes are retried, the others parked (kept, counted, never resent);
//! (b) pulls `GET /kiosk/sync?since=cursor` periodically, applies it in one transaction and
//!     rebuilds the in-memory gallery (only templates of this kiosk's embedder model);
//!     Templates deleted here (unenrol) are kept out of every sync answer built before the server
//!     deleted them too, and a deletion the server has not heard of is sent again first;
//! (c) posts heartbeats;
//! (d) deletes evidence photos older than their retention ([`sweep_evidence`], on the injected
//!     clock), also while the kiosk is offline or unregistered.
//!
//! Outbox items go out in chain order (`seq`), already signed: the worker never signs.
//! All state is in SQLite, so the worker survives hours without the server and restarts. It
//! publishes `online`, `outbox_backlog` and `last_sync_at` into the screen state.

pub mod client;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use zhucan_domain::api::{Heartbeat, ItemStatus};

use crate::screen::ScreenState;
use crate::store::{self, Retry, Store};
pub use client::Client;
use zhucan_face::matcher::{Cohort, Gallery};
use zhucan_platform::clock::Clock;

/// Items per `POST /settlements`.
pub const BATCH: usize = 100;

/// Item error codes worth retrying (the cause may go away: clock skew, roster lag, server trouble).
pub const TRANSIENT_CODES: &[&str] = &[
    "served_in_future",
    "unknown_resident",
    "internal",
    "unavailable",
];

/// The gallery the face loop matches against; the worker swaps in a rebuilt one after a sync.
/// Each rebuilt gallery normalises against the configured cohort, if any.
#[derive(Clone, Default)]
pub struct GallerySlot {
    gallery: Arc<RwLock<Arc<Gallery>>>,
    cohort: Option<Arc<Cohort>>,
}

impl GallerySlot {
    /// A slot whose galleries normalise scores against `cohort`.
    pub fn with_cohort(cohort: Option<Cohort>) -> Self {
        Self {
            gallery: Default::default(),
            cohort: cohort.map(Arc::new),
        }
    }

    pub fn get(&self) -> Arc<Gallery> {
        self.gallery
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds from the store (decrypting the templates of `model`).
    pub fn rebuild(&self, store: &Store, model: &str, dim: usize) -> Result<usize, store::Error> {
        let mut g = store.gallery(model, dim)?;
        g.set_cohort(self.cohort.clone());
        let n = g.len();
        *self.gallery.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(g);
        Ok(n)
    }
}

/// Publishes a change of the screen state only if something changed.
pub fn publish(screen: &watch::Sender<ScreenState>, f: impl FnOnce(&mut ScreenState)) {
    screen.send_if_modified(|s| {
        let before = s.clone();
        f(s);
        *s != before
    });
}

/// Exponential backoff: 500 ms doubling per attempt, capped, times a jitter factor in 0.5..=1.
pub fn backoff(attempts: u32, cap: Duration, jitter: f64) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1u32 << attempts.min(16));
    base.min(cap).mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Timings of the worker.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub pull_every: Duration,
    pub heartbeat_every: Duration,
    pub backoff_cap: Duration,
}

/// What the worker needs.
#[derive(Clone)]
pub struct Deps {
    pub store: Store,
    pub client: Option<Client>,
    pub clock: Arc<dyn Clock>,
    pub screen: Arc<watch::Sender<ScreenState>>,
    pub gallery: GallerySlot,
    /// The embedder model file: templates of other models are ignored.
    pub model: String,
    pub dim: usize,
    /// Woken when a new settlement is in the outbox.
    pub notify: Arc<Notify>,
    pub timing: Timing,
    /// Evidence photos older than this are deleted.
    pub evidence_retention: chrono::Duration,
    /// The accept rule of the face loop, reported in every heartbeat.
    pub matching: zhucan_face::matcher::MatchConfig,
    pub liveness_threshold: f32,
}

/// Errors of one sync round.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] client::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("background task failed: {0}")]
    Join(String),
}

async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, store::Error> + Send + 'static,
) -> Result<T, Error> {
    let s = store.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| f(&s)))
        .await
        .map_err(|e| Error::Join(e.to_string()))?
        .map_err(Error::from)
}

/// Sends every due outbox item; returns how many were answered.
pub async fn send_outbox(d: &Deps, client: &Client) -> Result<usize, Error> {
    let mut answered = 0;
    loop {
        let now = d.clock.now();
        let due = blocking(&d.store, move |s| s.due(now, BATCH)).await?;
        if due.is_empty() {
            return Ok(answered);
        }
        let n = due.len();
        let ids: Vec<_> = due.iter().map(|p| p.id).collect();
        let attempts: Vec<u32> = due.iter().map(|p| p.attempts).collect();
        let items = due.into_iter().map(|p| p.item).collect();
        match client.settle(items).await {
            Ok(batch) => {
                let cap = d.timing.backoff_cap;
                let now = d.clock.now();
                let rows: Vec<_> = batch
                    .results
                    .into_iter()
                    .map(|r| {
                        let tries = ids
                            .iter()
                            .position(|id| *id == r.id)
                            .map_or(0, |i| attempts[i]);
                        let transient = r.status == ItemStatus::Error
                            && r.error
                                .as_ref()
                                .is_some_and(|e| TRANSIENT_CODES.contains(&e.code.as_str()));
                        let retry = if transient {
                            let wait = backoff(tries, cap, rand::random());
                            Retry::At(now + chrono::Duration::from_std(wait).unwrap_or_default())
                        } else {
                            Retry::Park
                        };
                        (r, retry)
                    })
                    .collect();
                answered += rows.len();
                blocking(&d.store, move |s| {
                    for (r, retry) in &rows {
                        s.record_answer(r, now, *retry)?;
                    }
                    Ok(())
                })
                .await?;
                if n < BATCH {
                    return Ok(answered);
                }
            }
            Err(e) => {
                let worst = attempts.iter().copied().max().unwrap_or(0);
                let wait = backoff(worst, d.timing.backoff_cap, rand::random());
                let at = d.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
                let msg = e.to_string();
                if e.is_transient() {
                    blocking(&d.store, move |s| s.postpone(&ids, at, &msg)).await?;
                }
                return Err(e.into());
            }
        }
    }
}

/// Tells the server of templates deleted here while it could not be told (unenrol offline, or
/// a failed DELETE), oldest first, and records each cursor the server answers. Stops at the
/// first transient error. A refusal (the templates were enrolled at another canteen, or the
/// resident is gone) is final: the deletion is kept here for good ([`store::REFUSED`]), so this
/// kiosk never takes those templates back from a sync answer and does not ask again.
pub async fn send_template_deletions(d: &Deps, client: &Client) -> Result<usize, Error> {
    let pending = blocking(&d.store, |s| s.pending_template_deletions()).await?;
    let mut sent = 0;
    for resident in pending {
        match client.delete_templates(resident).await {
            Ok(done) => {
                blocking(&d.store, move |s| {
                    s.confirm_template_deletion(resident, done.cursor)
                })
                .await?;
                tracing::info!(
                    resident = resident.0,
                    cursor = done.cursor,
                    "templates deleted on the server"
                );
                sent += 1;
            }
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(resident = resident.0, error = %e, "the server refused a template deletion; kept deleted here");
                blocking(&d.store, move |s| {
                    s.confirm_template_deletion(resident, store::REFUSED)
                })
                .await?;
            }
        }
    }
    Ok(sent)
}

/// Pulls changes since the stored cursor and applies them; rebuilds the gallery when templates
/// changed. Returns the new cursor.
pub async fn pull(d: &Deps, client: &Client) -> Result<i64, Error> {
    let since = blocking(&d.store, |s| s.cursor()).await?;
    let resp = client.sync(since).await?;
    let cursor = resp.cursor;
    let gallery_changed = resp.full || !resp.templates.is_empty() || !resp.purged.is_empty();
    let now = d.clock.now();
    let (model, dim, slot) = (d.model.clone(), d.dim, d.gallery.clone());
    let canteen_name = resp.canteen.name.clone();
    blocking(&d.store, move |s| {
        s.apply_sync(&resp, now)?;
        if gallery_changed {
            let n = slot.rebuild(s, &model, dim)?;
            tracing::info!(templates = n, "gallery rebuilt after sync");
        }
        Ok(())
    })
    .await?;
    publish(&d.screen, |st| {
        st.canteen_name = canteen_name;
        st.last_sync_at = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    });
    Ok(cursor)
}

async fn heartbeat(d: &Deps, client: &Client) -> Result<(), Error> {
    let (counts, cursor) = blocking(&d.store, |s| Ok((s.outbox_counts()?, s.cursor()?))).await?;
    client
        .heartbeat(&Heartbeat {
            outbox_backlog: counts.backlog,
            software_version: env!("CARGO_PKG_VERSION").into(),
            model_version: d.model.clone(),
            last_sync_cursor: Some(cursor),
            match_threshold: Some(crate::checkin::wire_score(
                d.matching.threshold(d.gallery.get().len()),
            )),
            liveness_threshold: Some(crate::checkin::wire_score(d.liveness_threshold)),
        })
        .await?;
    Ok(())
}

/// Publishes the outbox backlog.
pub async fn publish_backlog(d: &Deps) {
    if let Ok(c) = blocking(&d.store, |s| s.outbox_counts()).await {
        publish(&d.screen, |st| st.outbox_backlog = c.backlog);
    }
}

/// Deletes evidence photos past their retention, as of the injected clock's now.
pub async fn sweep_evidence(d: &Deps) {
    let (now, keep) = (d.clock.now(), d.evidence_retention);
    match blocking(&d.store, move |s| s.sweep_evidence(now, keep)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(photos = n, "evidence photos past their retention deleted"),
        Err(e) => tracing::error!(error = %e, "evidence retention sweep failed"),
    }
}

/// The worker: runs until `stop` turns true.
pub async fn worker(d: Deps, mut stop: watch::Receiver<bool>) {
    let Some(client) = d.client.clone() else {
        tracing::warn!("kiosk not registered: nothing is sent");
        publish(&d.screen, |st| st.online = false);
        loop {
            sweep_evidence(&d).await;
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = d.notify.notified() => {}
                _ = tokio::time::sleep(d.timing.pull_every) => {}
            }
        }
    };
    let mut failures: u32 = 0;
    let mut next_pull = Instant::now();
    let mut next_heartbeat = Instant::now();
    loop {
        let mut ok = true;
        if let Err(e) = send_outbox(&d, &client).await {
            tracing::warn!(error = %e, "sending the outbox failed");
            ok = false;
        }
        if ok && let Err(e) = send_template_deletions(&d, &client).await {
            tracing::warn!(error = %e, "telling the server of deleted templates failed");
            ok = false;
        }
        if ok && Instant::now() >= next_pull {
            match pull(&d, &client).await {
                Ok(_) => next_pull = Instant::now() + d.timing.pull_every,
                Err(e) => {
                    tracing::warn!(error = %e, "sync failed");
                    ok = false;
                }
            }
        }
        if ok && Instant::now() >= next_heartbeat {
            match heartbeat(&d, &client).await {
                Ok(()) => next_heartbeat = Instant::now() + d.timing.heartbeat_every,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
        sweep_evidence(&d).await;
        failures = if ok { 0 } else { failures.saturating_add(1) };
        publish(&d.screen, |st| st.online = ok);
        publish_backlog(&d).await;
        let wait = if ok {
            next_pull
                .min(next_heartbeat)
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50))
        } else {
            backoff(failures, d.timing.backoff_cap, rand::random())
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = d.notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{accepted, now, signer, synced};
    use zhucan_platform::clock::FixedClock;

    #[tokio::test]
    async fn the_worker_sweeps_evidence_past_retention_on_the_injected_clock() {
        // waits end when the condition holds; the deadline is for a loaded machine
        const WAIT: Duration = Duration::from_secs(120);
        let (_d, store) = synced();
        let (item, a) = accepted(&store, now());
        store
            .commit_checkin(&item, &a, &signer(), Some(b"\xff\xd8\xff photo"), now())
            .expect("commit");
        let clock = Arc::new(FixedClock::new(now()));
        let notify = Arc::new(Notify::new());
        let (screen, _rx) = watch::channel(ScreenState::idle(""));
        let d = Deps {
            store: store.clone(),
            client: None,
            clock: clock.clone(),
            screen: Arc::new(screen),
            gallery: GallerySlot::default(),
            model: "m.onnx".into(),
            dim: 2,
            notify: notify.clone(),
            timing: Timing {
                pull_every: Duration::from_secs(3600),
                heartbeat_every: Duration::from_secs(3600),
                backoff_cap: Duration::from_secs(1),
            },
            evidence_retention: chrono::Duration::days(30),
            matching: zhucan_face::matcher::MatchConfig::default(),
            liveness_threshold: 0.5,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(worker(d.clone(), stop_rx));
        let wait_count = |want: u32| {
            let store = store.clone();
            async move {
                let deadline = Instant::now() + WAIT;
                while Instant::now() < deadline {
                    if store.evidence_count().expect("count") == want {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            }
        };
        // within the retention the photo stays, however often the sweep runs (run here, not
        // by waiting on the worker: a sleep cannot tell that the worker ran)
        clock.advance(chrono::Duration::days(29));
        for _ in 0..3 {
            sweep_evidence(&d).await;
        }
        assert_eq!(store.evidence_count().expect("count"), 1);
        // past it, the next wake-up deletes it
        clock.advance(chrono::Duration::days(2));
        notify.notify_one();
        assert!(wait_count(0).await, "the photo outlived its retention");
        assert_eq!(store.outbox_counts().expect("c").total, 1, "the meal stays");
        stop_tx.send(true).expect("stop");
        task.await.expect("worker");
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let cap = Duration::from_secs(30);
        assert_eq!(backoff(0, cap, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(1, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, cap, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(20, cap, 1.0), cap);
        assert_eq!(backoff(20, cap, 0.0), cap / 2);
        for a in 0..40 {
            let d = backoff(a, cap, 0.37);
            assert!(d <= cap && d >= Duration::from_millis(250));
        }
    }
}
