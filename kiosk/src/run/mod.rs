//! The kiosk runtime: [`start`] wires the face loop, the command handler, the sync worker and the
//! screen; [`run`] runs them until shutdown.
//!
//! - The **face loop** runs on a dedicated OS thread (it owns the ONNX sessions and the frame
//!   source): frame → `FacePipeline::process` → match against the shared gallery →
//!   [`checkin::Tracker`] → on confirmation [`Counter::checkin`]. Between frames it serves
//!   enrolment requests (which need the camera).
//! - **Commands** from the screen (card, staff, search, enrol, unenrol) are each handled in their
//!   own task; card and staff check-ins take the same decision path as faces.
//! - Every settlement is committed to the outbox (with its local meal) in one transaction before
//!   the sync worker is even woken; the worker ([`crate::sync`]) sends, pulls and heartbeats.
//!   The same transaction signs it with the kiosk's Ed25519 key as the next record of the
//!   kiosk's hash chain: a kiosk without a key (not registered) settles nothing.
//! - The screen state is one `watch` channel; the runtime publishes only real changes.
//!
//! Also here: the one-off commands on a data folder, [`enrol_kiosk`] (key pair, registration,
//! optional TLS pin) and [`rotate_key`]. They and a running kiosk exclude each other through the
//! folder's [`DataLock`]: **stop the kiosk before `rotate-key`** (it refuses otherwise).

//!
//! Along the flow, one file each: [`face_loop`] (frames to confirmed residents), [`counter`] (a
//! confirmed resident, a card or staff to a signed meal in the outbox), [`commands`] (the screen's
//! commands), [`provision`] (registering the kiosk, rotating its key, uploading templates).

mod commands;
mod counter;
mod face_loop;
mod provision;
#[cfg(test)]
mod tests;

use commands::Commands;
use face_loop::FaceLoop;

pub use commands::PinGuard;
pub use counter::{CheckinError, Counter, NO_SIGNING_KEY};
pub use face_loop::observe;
pub use provision::{
    abandon_rotation, client_for, enrol_kiosk, open_store, rotate_key, upload_templates,
};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::checkin::Rule;
use crate::config::{self, Config, SourceConfig};
use crate::screen::{Command, Preview, ScreenState};
use crate::source::{self, FrameSource, ReplaySource};
use crate::store::lock::DataLock;
use crate::store::{self, Store};
use crate::sync::{self, GallerySlot, Timing};
use crate::ui;
use zhucan_face::locate;
use zhucan_face::manifest::Role;
use zhucan_face::{self as face, FacePipeline, PipelineConfig};
use zhucan_platform::clock::{Clock, ShiftedClock, SystemClock};

/// Errors starting or running the kiosk.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Face(#[from] face::Error),
    #[error(transparent)]
    Source(#[from] source::Error),
    #[error(transparent)]
    Client(#[from] sync::client::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// Enrolment keeps this many good frames...
const ENROL_FRAMES: usize = 5;
/// ...and needs at least this many.
const ENROL_MIN: usize = 3;
/// Frames (or empty polls) an enrolment may take.
const ENROL_BUDGET: usize = 300;

/// An enrolment request to the face loop: capture good live frames, reply with embeddings.
struct EnrolRequest {
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
}

/// A running kiosk.
pub struct Kiosk {
    /// Where the screen is served.
    pub ui_addr: SocketAddr,
    pub store: Store,
    pub screen: watch::Receiver<ScreenState>,
    pub commands: mpsc::Sender<Command>,
    /// The embedder model (manifest file name) of this kiosk's templates.
    pub model: String,
    stop: watch::Sender<bool>,
    stop_flag: Arc<AtomicBool>,
    face: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    /// Held while the kiosk runs: no rotate-key or enrol-kiosk underneath it.
    _lock: DataLock,
}

impl std::fmt::Debug for Kiosk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kiosk")
            .field("ui_addr", &self.ui_addr)
            .finish_non_exhaustive()
    }
}

impl Kiosk {
    /// Stops every part and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.stop_flag.store(true, Ordering::SeqCst);
        if let Some(h) = self.face.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// The frame source a configuration names.
pub fn make_source(cfg: &SourceConfig) -> Result<Box<dyn FrameSource>, Error> {
    match cfg {
        SourceConfig::Replay {
            list,
            root,
            files,
            interval_ms,
            looping,
            repeat,
        } => {
            let mut entries = match list {
                Some(l) => source::read_list(l, root.as_deref())?,
                None => Vec::new(),
            };
            entries.extend(files.iter().cloned().map(source::Entry::File));
            if entries.is_empty() {
                return Err(Error::Usage(
                    "replay source: no images (set list or files)".into(),
                ));
            }
            Ok(Box::new(ReplaySource::new(
                entries,
                Duration::from_millis(*interval_ms),
                *looping,
                *repeat,
            )))
        }
        #[cfg(feature = "camera")]
        SourceConfig::Camera {
            device,
            width,
            height,
        } => Ok(Box::new(source::camera::CameraSource::open(
            *device, *width, *height,
        )?)),
        #[cfg(not(feature = "camera"))]
        SourceConfig::Camera { .. } => Err(Error::Usage(
            "this zhucan-kiosk was built without camera support; rebuild with `--features camera` \
             or use a replay source"
                .into(),
        )),
    }
}

/// The pipeline configuration a kiosk configuration implies.
pub fn pipeline_config(config: &Config) -> Result<PipelineConfig, Error> {
    let models = config
        .models_dir
        .clone()
        .or_else(locate::default_models_dir)
        .ok_or_else(|| Error::Usage("cannot find the models folder; set models_dir".into()))?;
    let mut p = PipelineConfig::new(models);
    p.ort_lib = config.ort_lib.clone();
    if let Some(t) = config.liveness_threshold {
        p.liveness_threshold = t;
    }
    Ok(p)
}

/// The clock a configuration implies.
pub fn clock_for(config: &Config) -> Arc<dyn Clock> {
    match config.clock_start {
        Some(t) => Arc::new(ShiftedClock::starting_at(t.to_utc())),
        None => Arc::new(SystemClock),
    }
}

/// Starts the kiosk with the given clock and frame source.
pub async fn start(
    config: Config,
    clock: Arc<dyn Clock>,
    source: Box<dyn FrameSource>,
) -> Result<Kiosk, Error> {
    config.validate()?;
    let data_dir = config.data_dir.clone();
    let lock = DataLock::acquire(&data_dir)?;
    let (store, secrets) = {
        let d = data_dir.clone();
        tokio::task::spawn_blocking(move || open_store(&d))
            .await
            .map_err(|e| Error::Usage(e.to_string()))??
    };
    let server_url = match &config.server_url {
        Some(u) => Some(u.clone()),
        None => store.setting("server_url")?,
    };
    if let Some((_, from_seq)) = secrets.pending_rotation()? {
        return Err(Error::Usage(format!(
            "a key rotation (from seq {from_seq}) was started and not finished: run \
             `zhucan-kiosk rotate-key --data {}` again, or add --abandon to keep the current key",
            data_dir.display()
        )));
    }
    let signer = secrets.signing_key()?;
    if signer.is_none() {
        tracing::warn!("no signing key: check-ins are refused until `zhucan-kiosk enrol-kiosk`");
    }
    let client = match (server_url, secrets.token.clone()) {
        (Some(u), Some(t)) => Some(client_for(&data_dir, &u, Some(t))?),
        _ => None,
    };
    let canteen_name = store.canteen()?.map(|c| c.name).unwrap_or_default();
    let (screen_tx, screen_rx) = watch::channel(ScreenState::idle(canteen_name));
    let screen = Arc::new(screen_tx);
    let notify = Arc::new(Notify::new());
    let counter = Counter::new(
        store.clone(),
        clock.clone(),
        config.tz()?,
        screen.clone(),
        notify.clone(),
        signer,
        config.evidence_photos,
    );
    let cohort = config
        .cohort
        .as_deref()
        .map(face::matcher::Cohort::read)
        .transpose()?;
    let cohort_dim = cohort.as_ref().map(|c| c.dim());
    let gallery = GallerySlot::with_cohort(cohort);
    let preview = Preview::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));

    // the face loop: load the models on its own thread, report model and dimension
    let pcfg = pipeline_config(&config)?;
    let (matching, liveness_threshold) = (pcfg.matching, pcfg.liveness_threshold);
    let rule = Rule::k_of_n(
        config.k,
        config.n,
        chrono::Duration::seconds(config.cooldown_s as i64),
    );
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(String, usize), face::Error>>();
    let (enrol_tx, enrol_rx) = std::sync::mpsc::channel::<EnrolRequest>();
    let face_loop = FaceLoop {
        counter: counter.clone(),
        gallery: gallery.clone(),
        preview: preview.clone(),
        stop: stop_flag.clone(),
        rule,
    };
    let face = std::thread::Builder::new()
        .name("face-loop".into())
        .spawn(move || {
            let pipeline = FacePipeline::load(pcfg).and_then(|p| {
                let model = p.manifest().one(Role::Embedder)?.file.clone();
                Ok((p, model))
            });
            match pipeline {
                Ok((p, model)) => {
                    let dim = p.embedding_dim();
                    let _ = ready_tx.send(Ok((model, dim)));
                    face_loop.run(p, source, enrol_rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::Io {
            context: "starting the face loop".into(),
            source: e,
        })?;
    let (model, dim) = ready_rx
        .await
        .map_err(|_| Error::Usage("the face loop ended while loading".into()))??;
    if let Some(d) = cohort_dim.filter(|d| *d != dim) {
        return Err(Error::Usage(format!(
            "cohort: the file holds {d}-d embeddings but the embedder {model} makes {dim}-d ones"
        )));
    }
    {
        let (s, g, m) = (store.clone(), gallery.clone(), model.clone());
        tokio::task::spawn_blocking(move || g.rebuild(&s, &m, dim))
            .await
            .map_err(|e| Error::Usage(e.to_string()))??;
    }

    let mut tasks = Vec::new();
    // the screen
    let listener = tokio::net::TcpListener::bind(config.ui_listen)
        .await
        .map_err(|e| Error::Io {
            context: format!("screen address {}", config.ui_listen),
            source: e,
        })?;
    let ui_addr = listener.local_addr().map_err(|e| Error::Io {
        context: "screen address".into(),
        source: e,
    })?;
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(32);
    let router = ui::router(screen_rx.clone(), cmd_tx.clone(), preview);
    let mut ui_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = ui_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = ui::serve(listener, router, shutdown).await {
            tracing::error!(error = %e, "screen server failed");
        }
    }));
    // commands
    let handler = Commands {
        counter: counter.clone(),
        gallery: gallery.clone(),
        client: client.clone(),
        pin: config.operator_pin.clone(),
        pin_guard: Arc::default(),
        model: model.clone(),
        dim,
        enrol: Arc::new(Mutex::new(enrol_tx)),
        held: Arc::default(),
    };
    tasks.push(tokio::spawn(handler.serve(cmd_rx, stop_rx.clone())));
    // sync
    let deps = sync::Deps {
        store: store.clone(),
        client,
        clock: clock.clone(),
        screen: screen.clone(),
        gallery,
        model: model.clone(),
        dim,
        notify,
        timing: Timing {
            pull_every: Duration::from_millis(config.sync_interval_ms.max(50)),
            heartbeat_every: Duration::from_millis(config.heartbeat_interval_ms.max(50)),
            backoff_cap: Duration::from_millis(config.backoff_cap_ms.max(50)),
        },
        evidence_retention: config.evidence_photos.retention(),
        matching,
        liveness_threshold,
    };
    tasks.push(tokio::spawn(sync::worker(deps, stop_rx)));
    tracing::info!(screen = %ui_addr, "kiosk running");
    Ok(Kiosk {
        ui_addr,
        store,
        screen: screen_rx,
        commands: cmd_tx,
        model,
        stop: stop_tx,
        stop_flag,
        face: Some(face),
        tasks,
        _lock: lock,
    })
}

/// `zhucan-kiosk run`: starts the kiosk from its configuration and runs until `shutdown`.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let source = make_source(&config.source)?;
    let clock = clock_for(&config);
    let kiosk = start(config, clock, source).await?;
    shutdown.await;
    kiosk.stop().await;
    Ok(())
}

/// The default data folder (`data/kiosk` under the current directory).
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data/kiosk")
}
