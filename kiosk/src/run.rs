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
//! - The screen state is one `watch` channel; the runtime publishes only real changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use zhucan_domain::api::{KioskCreated, TemplateUpload, encode_embedding};
use zhucan_domain::resident::Consent;
use zhucan_domain::settle::Decision;
use zhucan_domain::{Fen, ResidentId};

use crate::checkin::{self, Frame, How, Rule, Step, Tracker};
use crate::clock::{Clock, ShiftedClock, SystemClock};
use crate::config::{self, Config, SourceConfig};
use crate::face::manifest::Role;
use crate::face::matcher::{Identification, MatchConfig};
use crate::face::{self, FacePipeline, Outcome, PipelineConfig};
use crate::screen::{CheckinView, Command, FaceBox, Mode, Preview, ScreenState};
use crate::source::{self, FrameSource, ReplaySource};
use crate::store::secret::{self, Secrets};
use crate::store::{self, Store};
use crate::sync::{self, Client, GallerySlot, Timing, publish};
use crate::{locate, ui};

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

/// How long a result stays on screen before the face loop may replace it.
const HOLD: Duration = Duration::from_secs(3);
/// Enrolment keeps this many good frames...
const ENROL_FRAMES: usize = 5;
/// ...and needs at least this many.
const ENROL_MIN: usize = 3;
/// Frames (or empty polls) an enrolment may take.
const ENROL_BUDGET: usize = 300;

fn yuan(f: Fen) -> String {
    f.to_string()
}

/// The decision path shared by faces, cards and staff: decide with local data, commit to the
/// outbox, show the result, wake the sync worker.
#[derive(Clone)]
pub struct Counter {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub screen: Arc<watch::Sender<ScreenState>>,
    pub notify: Arc<Notify>,
    hold_until: Arc<Mutex<Option<Instant>>>,
}

impl Counter {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        screen: Arc<watch::Sender<ScreenState>>,
        notify: Arc<Notify>,
    ) -> Counter {
        Counter {
            store,
            clock,
            screen,
            notify,
            hold_until: Arc::new(Mutex::new(None)),
        }
    }

    fn held(&self) -> bool {
        self.hold_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }

    fn hold(&self) {
        *self.hold_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + HOLD);
    }

    /// Shows a passing state (idle, guiding, checking) unless a result is still being held.
    fn show_transient(
        &self,
        mode: Mode,
        zh: &str,
        en: &str,
        hint: Option<&str>,
        face: Option<FaceBox>,
    ) {
        if self.held() {
            publish(&self.screen, |s| s.face = face);
            return;
        }
        publish(&self.screen, |s| {
            s.mode = mode;
            s.message_zh = zh.into();
            s.message_en = en.into();
            s.hint = hint.map(Into::into);
            s.face = face;
            if !matches!(mode, Mode::Checking | Mode::Guiding) {
                s.checkin = None;
            }
        });
    }

    /// Shows a result (unknown, spoof, operator) and holds it for a moment.
    fn show_result(&self, mode: Mode, zh: &str, en: &str, checkin: Option<CheckinView>) {
        // a settled (or refused) meal stays readable for its hold: a face of somebody else
        // passing behind the elder does not replace it with "unknown"
        let shows_meal = matches!(self.screen.borrow().mode, Mode::Confirmed | Mode::Refused);
        if checkin.is_none() && mode != Mode::Operator && shows_meal && self.held() {
            return;
        }
        self.hold();
        publish(&self.screen, |s| {
            s.mode = mode;
            s.message_zh = zh.into();
            s.message_en = en.into();
            s.hint = None;
            if checkin.is_some() {
                s.event_seq += 1;
            }
            s.checkin = checkin;
        });
    }

    /// Decides and (when accepted) commits one check-in. Errors are for the operator's screen.
    pub fn checkin(&self, resident_id: ResidentId, how: How) -> Result<CheckinView, String> {
        let store_err = |e: store::Error| {
            tracing::error!(error = %e, "kiosk store");
            "本机数据库错误 / local database error".to_owned()
        };
        let canteen = self
            .store
            .canteen()
            .map_err(store_err)?
            .ok_or("尚未同步，请联网 / not synced with the server yet")?;
        let resident = self
            .store
            .resident(resident_id)
            .map_err(store_err)?
            .ok_or("未找到该老人 / resident not found")?;
        let policies = self.store.policies().map_err(store_err)?;
        let history = self.store.history(resident_id).map_err(store_err)?;
        let now = self.clock.now();
        let p = checkin::prepare(
            &resident,
            &canteen,
            &policies,
            &history,
            &how,
            now,
            Uuid::now_v7(),
        );
        if let (Some(item), Decision::Accepted(a)) = (&p.item, &p.decision) {
            self.store.commit_checkin(item, a, now).map_err(store_err)?;
            tracing::info!(settlement = %item.id, resident = resident_id.0, method = item.method.as_str(), "check-in committed to the outbox");
            self.notify.notify_one();
            let v = &p.view;
            let zh = format!(
                "{}，{}，补助{}元，自付{}元",
                v.name,
                v.slot_zh,
                yuan(v.subsidy),
                yuan(v.self_pay)
            );
            let en = format!(
                "{}: {}, subsidy {} yuan, you pay {} yuan",
                v.name,
                v.slot_en,
                yuan(v.subsidy),
                yuan(v.self_pay)
            );
            self.show_result(Mode::Confirmed, &zh, &en, Some(p.view.clone()));
            publish(&self.screen, |s| s.outbox_backlog += 1);
        } else {
            let v = &p.view;
            let zh = format!("{}：{}", v.name, v.rejection_zh.as_deref().unwrap_or(""));
            let en = format!("{}: {}", v.name, v.rejection.as_deref().unwrap_or(""));
            self.show_result(Mode::Refused, &zh, &en, Some(p.view.clone()));
        }
        Ok(p.view)
    }
}

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

/// Opens the kiosk's store with the key from its secret file (created on first use).
pub fn open_store(data_dir: &Path) -> Result<(Store, Secrets), Error> {
    let secrets = Secrets::load_or_create(&secret::path_in(data_dir))?;
    let store = Store::open(&data_dir.join("kiosk.sqlite"), secrets.template_key()?)?;
    Ok((store, secrets))
}

/// `zhucan-kiosk enrol-kiosk`: registers this device with a one-time code and keeps the token
/// in the secret file (never in the database).
pub async fn enrol_kiosk(server: &str, code: &str, data_dir: &Path) -> Result<KioskCreated, Error> {
    let (store, mut secrets) = open_store(data_dir)?;
    let created = Client::new(server, None)
        .enrol(code, "TODO-public-key")
        .await?;
    secrets.token = Some(created.token.clone());
    secrets.save(&secret::path_in(data_dir))?;
    store.set_setting("server_url", server.trim_end_matches('/'))?;
    store.set_setting("kiosk_id", &created.id.to_string())?;
    store.set_setting("canteen_id", &created.canteen_id.0.to_string())?;
    Ok(created)
}

/// `zhucan-kiosk enrol-photo`: uploads a resident's templates, with the consent recorded, as this
/// registered kiosk (the templates then reach the kiosk's gallery through sync like any other).
pub async fn upload_templates(
    data_dir: &Path,
    resident: ResidentId,
    sharing: bool,
    by: &str,
    model: &str,
    embeddings: &[Vec<f32>],
) -> Result<(), Error> {
    let (store, secrets) = open_store(data_dir)?;
    let server = store.setting("server_url")?.ok_or_else(|| {
        Error::Usage("this kiosk is not registered: run `zhucan-kiosk enrol-kiosk` first".into())
    })?;
    let up = TemplateUpload {
        consent_face_enrolment: true,
        consent_template_sharing: sharing,
        by: by.to_owned(),
        model: model.to_owned(),
        embeddings: embeddings.iter().map(|e| encode_embedding(e)).collect(),
    };
    Client::new(&server, secrets.token.clone())
        .put_templates(resident, &up)
        .await?;
    Ok(())
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
    let client = match (server_url, secrets.token.clone()) {
        (Some(u), Some(t)) => Some(Client::new(&u, Some(t))),
        _ => None,
    };
    let canteen_name = store.canteen()?.map(|c| c.name).unwrap_or_default();
    let (screen_tx, screen_rx) = watch::channel(ScreenState::idle(canteen_name));
    let screen = Arc::new(screen_tx);
    let notify = Arc::new(Notify::new());
    let counter = Counter::new(store.clone(), clock.clone(), screen.clone(), notify.clone());
    let gallery = GallerySlot::default();
    let preview = Preview::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));

    // the face loop: load the models on its own thread, report model and dimension
    let pcfg = pipeline_config(&config)?;
    let rule = Rule {
        k: config.k,
        n: config.n,
        cooldown: chrono::Duration::seconds(config.cooldown_s as i64),
        ..Rule::default()
    };
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
        model: model.clone(),
        dim,
        enrol: Arc::new(Mutex::new(enrol_tx)),
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

/// The face loop's state (lives on its own thread).
struct FaceLoop {
    counter: Counter,
    gallery: GallerySlot,
    preview: Preview,
    stop: Arc<AtomicBool>,
    rule: Rule,
}

fn face_box(res: &face::FrameResult, img: &RgbImage) -> Option<FaceBox> {
    res.face.map(|d| FaceBox {
        x: d.bbox[0],
        y: d.bbox[1],
        w: d.bbox[2],
        h: d.bbox[3],
        frame_w: img.width(),
        frame_h: img.height(),
    })
}

fn jpeg(img: &RgbImage) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 70)
        .encode_image(img)
        .ok()?;
    Some(buf)
}

/// What a processed frame means for the tracker.
pub fn observe(
    res: &face::FrameResult,
    gallery: &face::matcher::Gallery,
    m: &MatchConfig,
) -> Frame {
    let live = res.liveness.as_ref().map_or(0.0, |l| l.prob[1]);
    match &res.outcome {
        Outcome::NoFace => Frame::NoFace,
        Outcome::Rejected(r) => Frame::Poor(*r),
        Outcome::Spoof => Frame::Spoof,
        Outcome::Embedded(_) => match res.identify(gallery, m) {
            Some(Identification::Match {
                resident, score, ..
            }) => match resident.parse() {
                Ok(id) => Frame::Match {
                    resident: ResidentId(id),
                    score,
                    liveness: live,
                },
                Err(_) => Frame::Unknown,
            },
            _ => Frame::Unknown,
        },
    }
}

impl FaceLoop {
    fn run(
        self,
        mut pipeline: FacePipeline,
        mut source: Box<dyn FrameSource>,
        enrol_rx: std::sync::mpsc::Receiver<EnrolRequest>,
    ) {
        let matching = pipeline.config().matching;
        let mut tracker = Tracker::new(self.rule);
        let mut enrolling: Option<(EnrolRequest, Vec<Vec<f32>>, usize)> = None;
        while !self.stop.load(Ordering::SeqCst) {
            if enrolling.is_none()
                && let Ok(req) = enrol_rx.try_recv()
            {
                self.counter.show_result(
                    Mode::Operator,
                    "人脸登记：请正对摄像头",
                    "Enrolment: please look at the camera",
                    None,
                );
                enrolling = Some((req, Vec::new(), 0));
            }
            let frame = match source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    if let Some((_, _, tries)) = enrolling.as_mut() {
                        *tries += 1;
                    }
                    enrolling = self.finish_enrol(enrolling);
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "frame source");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            self.preview.set(jpeg(&frame));
            let res = match pipeline.process(&frame) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "face pipeline");
                    continue;
                }
            };
            let fb = face_box(&res, &frame);
            if let Some((_, got, tries)) = enrolling.as_mut() {
                *tries += 1;
                if let Outcome::Embedded(e) = &res.outcome {
                    // all frames must show the same face as the first good one
                    let same = got
                        .first()
                        .is_none_or(|f| face::matcher::dot_f32(f, e) >= 0.5);
                    if same {
                        got.push(e.clone());
                    }
                }
                publish(&self.counter.screen, |s| s.face = fb);
                enrolling = self.finish_enrol(enrolling);
                continue;
            }
            let gallery = self.gallery.get();
            let obs = observe(&res, &gallery, &matching);
            let step = tracker.observe(obs, self.counter.clock.now());
            self.show(step, fb);
        }
        if let Some((req, _, _)) = enrolling {
            let _ = req.reply.send(Err("kiosk stopping".into()));
        }
    }

    /// Replies to a finished enrolment (enough frames or out of budget); keeps it otherwise.
    fn finish_enrol(
        &self,
        enrolling: Option<(EnrolRequest, Vec<Vec<f32>>, usize)>,
    ) -> Option<(EnrolRequest, Vec<Vec<f32>>, usize)> {
        let (req, got, tries) = enrolling?;
        if got.len() >= ENROL_FRAMES || (tries >= ENROL_BUDGET && got.len() >= ENROL_MIN) {
            let _ = req.reply.send(Ok(got));
            None
        } else if tries >= ENROL_BUDGET {
            let _ = req.reply.send(Err(format!(
                "只采集到{}张合格的活体人脸，请重试 / only {} good live frames, try again",
                got.len(),
                got.len()
            )));
            None
        } else {
            Some((req, got, tries))
        }
    }

    fn show(&self, step: Step, fb: Option<FaceBox>) {
        let c = &self.counter;
        match step {
            Step::Idle => {
                let idle = ScreenState::idle("");
                c.show_transient(Mode::Idle, &idle.message_zh, &idle.message_en, None, None);
            }
            Step::Guiding(r) => c.show_transient(
                Mode::Guiding,
                r.message_zh(),
                r.message_en(),
                Some(r.code()),
                fb,
            ),
            Step::Checking { .. } => c.show_transient(
                Mode::Checking,
                "正在识别，请稍候",
                "Checking, please hold still",
                None,
                fb,
            ),
            Step::Cooldown(_) => publish(&c.screen, |s| s.face = fb),
            Step::Unknown => {
                c.show_result(
                    Mode::Unknown,
                    "未识别，请找工作人员",
                    "Not recognised — please see staff",
                    None,
                );
                publish(&c.screen, |s| s.face = fb);
            }
            Step::Spoof => {
                c.show_result(
                    Mode::Spoof,
                    "请本人刷脸",
                    "Not a live face — please look at the camera yourself",
                    None,
                );
                publish(&c.screen, |s| s.face = fb);
            }
            Step::Confirm {
                resident,
                score,
                liveness,
            } => {
                if let Err(e) = c.checkin(resident, How::Face { score, liveness }) {
                    tracing::warn!(resident = resident.0, error = %e, "face check-in failed");
                    c.show_result(Mode::Unknown, &e, &e, None);
                }
            }
        }
    }
}

/// Handles the screen's commands.
#[derive(Clone)]
struct Commands {
    counter: Counter,
    gallery: GallerySlot,
    client: Option<Client>,
    pin: String,
    model: String,
    dim: usize,
    enrol: Arc<Mutex<std::sync::mpsc::Sender<EnrolRequest>>>,
}

const BAD_PIN: &str = "操作密码错误 / wrong operator PIN";

impl Commands {
    async fn serve(self, mut rx: mpsc::Receiver<Command>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => { tokio::spawn(self.clone().handle(cmd)); }
                    None => break,
                },
            }
        }
    }

    fn pin_ok(&self, pin: &str) -> bool {
        let (a, b) = (pin.as_bytes(), self.pin.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Commands) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| e.to_string())?
    }

    async fn handle(self, cmd: Command) {
        match cmd {
            Command::Card { code, reply } => {
                let r = self
                    .blocking(move |c| {
                        let r = c
                            .counter
                            .store
                            .resident_by_card(&code)
                            .map_err(|e| e.to_string())?
                            .ok_or("未找到该卡 / card not found")?;
                        c.counter.checkin(r.id, How::Card)
                    })
                    .await;
                let _ = reply.send(r);
            }
            Command::Staff {
                pin,
                resident_id,
                reason,
                reply,
            } => {
                let r = if !self.pin_ok(&pin) {
                    Err(BAD_PIN.into())
                } else if reason.trim().is_empty() {
                    Err("请填写原因 / a reason is required".into())
                } else {
                    let reason = reason.trim().to_owned();
                    self.blocking(move |c| c.counter.checkin(resident_id, How::Staff { reason }))
                        .await
                };
                let _ = reply.send(r);
            }
            Command::Search { pin, query, reply } => {
                let r = if !self.pin_ok(&pin) {
                    Err(BAD_PIN.into())
                } else {
                    self.blocking(move |c| {
                        let today = c
                            .counter
                            .clock
                            .now()
                            .with_timezone(&chrono_tz::Asia::Shanghai)
                            .date_naive();
                        c.counter
                            .store
                            .search(&query, today)
                            .map_err(|e| e.to_string())
                    })
                    .await
                };
                let _ = reply.send(r);
            }
            Command::Enrol {
                pin,
                resident_id,
                consent_face,
                consent_sharing,
                reply,
            } => {
                let r = if !self.pin_ok(&pin) {
                    Err(BAD_PIN.into())
                } else if !consent_face {
                    Err(
                        "人脸登记需要本人单独同意 / face enrolment needs the resident's consent"
                            .into(),
                    )
                } else {
                    self.enrol(resident_id, consent_sharing).await
                };
                let _ = reply.send(r);
            }
            Command::Unenrol {
                pin,
                resident_id,
                reply,
            } => {
                let r = if !self.pin_ok(&pin) {
                    Err(BAD_PIN.into())
                } else {
                    self.unenrol(resident_id).await
                };
                let _ = reply.send(r);
            }
        }
    }

    async fn enrol(&self, resident: ResidentId, sharing: bool) -> Result<u32, String> {
        let known = self
            .blocking(move |c| {
                c.counter
                    .store
                    .resident(resident)
                    .map_err(|e| e.to_string())
            })
            .await?;
        if known.is_none() {
            return Err("未找到该老人 / resident not found".into());
        }
        let (tx, rx) = oneshot::channel();
        self.enrol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(EnrolRequest { reply: tx })
            .map_err(|_| "face loop stopped".to_owned())?;
        let embeddings = rx.await.map_err(|_| "face loop stopped".to_owned())??;
        let n = embeddings.len() as u32;
        let consent = Consent {
            face_enrolment: true,
            template_sharing: sharing,
        };
        let stored = embeddings.clone();
        self.blocking(move |c| {
            c.counter
                .store
                .replace_templates(resident, &c.model, &stored, consent)
                .and_then(|_| c.gallery.rebuild(&c.counter.store, &c.model, c.dim))
                .map_err(|e| e.to_string())
        })
        .await?;
        tracing::info!(resident = resident.0, templates = n, "enrolled locally");
        self.counter
            .show_result(Mode::Operator, "人脸登记完成", "Face enrolled", None);
        let Some(client) = &self.client else {
            return Err("已保存在本机，但本机尚未注册，未上传 / saved here; kiosk not registered, not uploaded".into());
        };
        let up = TemplateUpload {
            consent_face_enrolment: true,
            consent_template_sharing: sharing,
            by: "kiosk-operator".into(),
            model: self.model.clone(),
            embeddings: embeddings.iter().map(|e| encode_embedding(e)).collect(),
        };
        client
            .put_templates(resident, &up)
            .await
            .map_err(|e| format!("已保存在本机，上传失败 / saved here, upload failed: {e}"))?;
        Ok(n)
    }

    async fn unenrol(&self, resident: ResidentId) -> Result<(), String> {
        self.blocking(move |c| {
            c.counter
                .store
                .delete_templates(resident)
                .and_then(|_| c.gallery.rebuild(&c.counter.store, &c.model, c.dim))
                .map_err(|e| e.to_string())
        })
        .await?;
        match &self.client {
            Some(client) => client.delete_templates(resident).await.map_err(|e| {
                format!("已在本机删除，服务器删除失败 / deleted here, server failed: {e}")
            }),
            None => Ok(()),
        }
    }
}

/// The default data folder (`data/kiosk` under the current directory).
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data/kiosk")
}
