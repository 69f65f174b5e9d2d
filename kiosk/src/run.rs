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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use zhucan_domain::api::{
    DuplicateConfirmed, KeyRotated, KeyRotation, KioskCreated, TemplateUpload, encode_embedding,
};
use zhucan_domain::resident::Consent;
use zhucan_domain::settle::Decision;
use zhucan_domain::signing::{self, SigningKey};
use zhucan_domain::{Fen, ResidentId};

use crate::checkin::{self, Frame, How, Rule, Step, Tracker};
use crate::clock::{Clock, ShiftedClock, SystemClock};
use crate::config::{self, Config, EvidencePhotos, SourceConfig};
use crate::face::manifest::Role;
use crate::face::matcher::{Identification, MatchConfig};
use crate::face::{self, FacePipeline, Outcome, PipelineConfig};
use crate::screen::{
    CarerChoice, CarerReply, CheckinView, Command, EnrolError, FaceBox, Mode, ORDER_TTL_SECS,
    Order, Preview, ScreenState,
};
use crate::source::{self, FrameSource, ReplaySource};
use crate::store::lock::DataLock;
use crate::store::secret::{self, Secrets};
use crate::store::{self, Store};
use crate::sync::client::Pinned;
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

/// What the operator sees when an unregistered kiosk is asked to settle.
pub const NO_SIGNING_KEY: &str = "本机尚未注册，没有签名密钥，不能结算；请运行 zhucan-kiosk enrol-kiosk / \
     this kiosk has no signing key and cannot settle: register it with `zhucan-kiosk enrol-kiosk`";

/// The decision path shared by faces, cards and staff: decide with local data, commit to the
/// outbox (signed, chained), show the result, wake the sync worker.
#[derive(Clone)]
pub struct Counter {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub screen: Arc<watch::Sender<ScreenState>>,
    pub notify: Arc<Notify>,
    /// The kiosk's signing key; `None` before `enrol-kiosk` (then nothing is settled).
    signer: Option<Arc<SigningKey>>,
    evidence: EvidencePhotos,
    hold_until: Arc<Mutex<Option<Instant>>>,
    /// The counter's order for the next check-in, and when it lapses.
    order: Arc<Mutex<Option<(Order, Instant)>>>,
}

impl Counter {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        screen: Arc<watch::Sender<ScreenState>>,
        notify: Arc<Notify>,
        signer: Option<SigningKey>,
        evidence: EvidencePhotos,
    ) -> Counter {
        Counter {
            store,
            clock,
            screen,
            notify,
            signer: signer.map(Arc::new),
            evidence,
            hold_until: Arc::new(Mutex::new(None)),
            order: Arc::new(Mutex::new(None)),
        }
    }

    /// Sets (or with `None` clears) the counter's order for the next check-in. A price is
    /// checked against the bounds of the slot being served now: a price the decision would
    /// refuse is refused here, where staff can correct it.
    pub fn set_order(&self, order: Option<Order>) -> Result<Option<Order>, String> {
        if let Some(Order {
            price: Some(price), ..
        }) = order
        {
            let canteen = self
                .store
                .canteen()
                .map_err(|e| e.to_string())?
                .ok_or("尚未同步，请联网 / not synced with the server yet")?;
            let local = self.clock.now().with_timezone(&chrono_tz::Asia::Shanghai);
            let window = canteen
                .slot_at(local.time())
                .ok_or("现在不在供餐时段 / not serving now")?;
            if let Err(r) = window.price_of(Some(price)) {
                return Err(format!(
                    "餐费须在 {}–{} 元之间 / the price must be between {} and {} yuan",
                    yuan(r.min),
                    yuan(r.max),
                    yuan(r.min),
                    yuan(r.max)
                ));
            }
        }
        *self.order.lock().unwrap_or_else(|e| e.into_inner()) =
            order.map(|o| (o, Instant::now() + Duration::from_secs(ORDER_TTL_SECS)));
        publish(&self.screen, |s| s.order = order);
        Ok(order)
    }

    /// Takes the waiting order (the check-in being made uses it), if it has not lapsed.
    fn take_order(&self) -> Order {
        let taken = self.order.lock().unwrap_or_else(|e| e.into_inner()).take();
        if taken.is_some() {
            publish(&self.screen, |s| s.order = None);
        }
        taken
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(o, _)| o)
            .unwrap_or_default()
    }

    /// Whether evidence photos are kept.
    pub fn keeps_evidence(&self) -> bool {
        self.evidence.enabled
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

    /// Decides and (when accepted) commits one check-in, signed. `photo` is the JPEG evidence
    /// photo of a face check-in; it is dropped unless evidence photos are on. Errors are for the
    /// operator's screen.
    pub fn checkin(
        &self,
        resident_id: ResidentId,
        how: How,
        photo: Option<Vec<u8>>,
    ) -> Result<CheckinView, String> {
        let store_err = |e: store::Error| {
            tracing::error!(error = %e, "kiosk store");
            "本机数据库错误 / local database error".to_owned()
        };
        let Some(signer) = self.signer.as_deref() else {
            tracing::warn!("check-in refused: no signing key (kiosk not registered)");
            return Err(NO_SIGNING_KEY.to_owned());
        };
        let photo = photo.filter(|_| self.evidence.enabled);
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
        let order = self.take_order();
        let p = checkin::prepare(
            &resident,
            &canteen,
            &policies,
            &history,
            &how,
            order,
            now,
            Uuid::now_v7(),
        );
        if let (Some(item), Decision::Accepted(a)) = (&p.item, &p.decision) {
            let signed = self
                .store
                .commit_checkin(item, a, signer, photo.as_deref(), now)
                .map_err(store_err)?;
            let seq = signed.signed.as_ref().map_or(0, |s| s.seq);
            tracing::info!(settlement = %item.id, seq, resident = resident_id.0, method = item.method.as_str(), evidence = photo.is_some(), "check-in committed to the outbox");
            self.notify.notify_one();
            let v = &p.view;
            let (who_zh, who_en) = match &v.proxy_carer {
                Some(carer) => (
                    format!("代取：{carer} 为 {} 取餐", v.name),
                    format!("{carer} collects for {}", v.name),
                ),
                None => (v.name.clone(), v.name.clone()),
            };
            let (delivery_zh, delivery_en) = match v.delivery_fee {
                Fen::ZERO => (String::new(), String::new()),
                fee => (
                    format!("（含送餐费{}元）", yuan(fee)),
                    format!(" (incl. delivery {} yuan)", yuan(fee)),
                ),
            };
            let zh = format!(
                "{who_zh}，{}，补助{}元，自付{}元{delivery_zh}",
                v.slot_zh,
                yuan(v.subsidy),
                yuan(v.self_pay)
            );
            let en = format!(
                "{who_en}: {}, subsidy {} yuan, you pay {} yuan{delivery_en}",
                v.slot_en,
                yuan(v.subsidy),
                yuan(v.self_pay)
            );
            self.show_result(Mode::Confirmed, &zh, &en, Some(p.view.clone()));
            publish(&self.screen, |s| s.outbox_backlog += 1);
        } else {
            let v = &p.view;
            let method = match &how {
                How::Face { .. } => "face",
                How::Card | How::Proxy { .. } => "card",
                How::Staff { .. } => "staff",
            };
            tracing::info!(
                resident = resident_id.0,
                method = %method,
                reason = %v.rejection.as_deref().unwrap_or(""),
                "check-in refused"
            );
            let zh = format!("{}：{}", v.name, v.rejection_zh.as_deref().unwrap_or(""));
            let en = format!("{}: {}", v.name, v.rejection.as_deref().unwrap_or(""));
            self.show_result(Mode::Refused, &zh, &en, Some(p.view.clone()));
        }
        Ok(p.view)
    }
}

impl Counter {
    /// A card at the card box that may be a carer's (代取人): `None` when it is not. Without a
    /// chosen resident, the residents linked to the carer (that this kiosk knows); with one of
    /// them, that resident's meal through [`Counter::checkin`] as 代取.
    pub fn carer_card(
        &self,
        code: &str,
        resident_id: Option<ResidentId>,
    ) -> Result<Option<CarerReply>, String> {
        let store_err = |e: store::Error| {
            tracing::error!(error = %e, "kiosk store");
            "本机数据库错误 / local database error".to_owned()
        };
        let Some(carer) = self.store.carer_by_card(code).map_err(store_err)? else {
            return Ok(None);
        };
        match resident_id {
            None => {
                let mut residents = Vec::new();
                for id in &carer.residents {
                    if let Some(r) = self.store.resident(*id).map_err(store_err)? {
                        residents.push((r.id(), r.name));
                    }
                }
                Ok(Some(CarerReply::Choose {
                    carer: CarerChoice {
                        carer_id: carer.id,
                        name: carer.name,
                        residents,
                    },
                }))
            }
            Some(id) if carer.residents.contains(&id) => {
                let how = How::Proxy {
                    carer_id: carer.id,
                    carer_name: carer.name,
                };
                self.checkin(id, how, None).map(|v| Some(CarerReply::Checkin(Box::new(v))))
            }
            Some(_) => Err(
                "该代取人未登记为这位老人取餐 / this carer is not registered to collect for this resident"
                    .into(),
            ),
        }
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

/// Opens the kiosk's store with the key from its secret file (created on first use).
pub fn open_store(data_dir: &Path) -> Result<(Store, Secrets), Error> {
    let secrets = Secrets::load_or_create(&secret::path_in(data_dir))?;
    let store = Store::open(&data_dir.join("kiosk.sqlite"), secrets.template_key()?)?;
    Ok((store, secrets))
}

/// A client of `server` for this data folder: pinned when the folder holds a pin.
pub fn client_for(data_dir: &Path, server: &str, token: Option<String>) -> Result<Client, Error> {
    let pin = Pinned::load(data_dir)?;
    Ok(Client::new(server, token, pin.as_ref())?)
}

fn not_registered() -> Error {
    Error::Usage("this kiosk is not registered: run `zhucan-kiosk enrol-kiosk` first".into())
}

/// `zhucan-kiosk enrol-kiosk`: registers this device with a one-time code. A fresh Ed25519 key
/// pair is generated (the private key is saved in the secret file BEFORE the server hears the
/// public key) and the token is kept in the secret file (never in the database). With
/// `server_ca`, that PEM certificate or CA is checked, used for this call, and copied to
/// `<data>/server-ca.pem`: from then on every client of this kiosk trusts only it.
pub async fn enrol_kiosk(
    server: &str,
    code: &str,
    data_dir: &Path,
    server_ca: Option<&Path>,
) -> Result<KioskCreated, Error> {
    let _lock = DataLock::acquire(data_dir)?;
    let (store, mut secrets) = open_store(data_dir)?;
    if secrets.token.is_some() {
        let id = store.setting("kiosk_id")?.unwrap_or_default();
        return Err(Error::Usage(format!(
            "{} is already registered (kiosk {id}); `zhucan-kiosk rotate-key` changes its key, \
             a new registration needs a fresh --data folder",
            data_dir.display()
        )));
    }
    if store.chain_head()?.0 != 0 {
        return Err(Error::Usage(format!(
            "{} already holds signed settlements of another registration; use a fresh --data \
             folder",
            data_dir.display()
        )));
    }
    let pin = server_ca.map(Pinned::read).transpose()?;
    let client = Client::new(server, None, pin.as_ref())?;
    let key = secrets.generate_signing_key();
    let secret_path = secret::path_in(data_dir);
    secrets.save(&secret_path)?;
    let created = client
        .enrol(code, &signing::encode_public_key(&key.verifying_key()))
        .await?;
    match &pin {
        Some(p) => p.save(data_dir)?,
        None => match std::fs::remove_file(Pinned::path_in(data_dir)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    context: "removing a stale server-ca.pem".into(),
                    source: e,
                });
            }
        },
    }
    secrets.token = Some(created.token.clone());
    secrets.save(&secret_path)?;
    store.set_setting("server_url", server.trim().trim_end_matches('/'))?;
    store.set_setting("kiosk_id", &created.id.to_string())?;
    store.set_setting("canteen_id", &created.canteen_id.0.to_string())?;
    Ok(created)
}

/// `zhucan-kiosk rotate-key`: hands this kiosk's chain over to a new key pair and credential.
///
/// The kiosk must be stopped (the data folder's lock is taken; a running kiosk holds it). The
/// new key is saved as pending BEFORE the server is asked; records from `from_seq = head + 1`
/// on will be signed by it, the ones already in the outbox stay signed by the old key. On the
/// server's yes the new key and token replace the old ones. If the server cannot be reached the
/// rotation stays pending (the kiosk will not start) and running this again resumes it with the
/// same key; a definite refusal drops it and the old key stays in use.
pub async fn rotate_key(data_dir: &Path) -> Result<KeyRotated, Error> {
    let _lock = DataLock::acquire(data_dir)?;
    let (store, mut secrets) = open_store(data_dir)?;
    let secret_path = secret::path_in(data_dir);
    let current = secrets.signing_key()?.ok_or_else(not_registered)?;
    let token = secrets.token.clone().ok_or_else(not_registered)?;
    let server = store.setting("server_url")?.ok_or_else(not_registered)?;
    let kiosk_id: i64 = store
        .setting("kiosk_id")?
        .and_then(|v| v.parse().ok())
        .ok_or_else(not_registered)?;
    let client = client_for(data_dir, &server, Some(token))?;
    let from_seq = store.chain_head()?.0 + 1;
    let new_key = secrets.begin_rotation(from_seq)?;
    secrets.save(&secret_path)?;
    let public_key = signing::encode_public_key(&new_key.verifying_key());
    let rotation = KeyRotation {
        signature: signing::sign_bytes(
            &signing::rotation_payload(kiosk_id, from_seq, &public_key),
            &current,
        ),
        public_key,
        from_seq,
    };
    match client.rotate(&rotation).await {
        Ok(done) => {
            if (done.kiosk_id, done.from_seq) != (kiosk_id, from_seq) {
                tracing::warn!(
                    kiosk = done.kiosk_id,
                    from_seq = done.from_seq,
                    "the server's rotation answer names another kiosk or seq"
                );
            }
            secrets.finish_rotation(done.token.clone())?;
            secrets.save(&secret_path)?;
            tracing::info!(kiosk = kiosk_id, from_seq, "signing key rotated");
            Ok(done)
        }
        Err(e) if e.is_transient() => Err(Error::Usage(format!(
            "{e}; the new key is kept as pending (the kiosk will not start until this is \
             finished): run `zhucan-kiosk rotate-key` again"
        ))),
        Err(e @ sync::client::Error::Status { status, .. })
            if status == reqwest::StatusCode::UNAUTHORIZED =>
        {
            Err(Error::Usage(format!(
                "{e}; the server did not accept this kiosk's token (revoked, or an earlier \
                 attempt of this rotation went through and its answer was lost). The new key is \
                 kept as pending: ask the administrator, then run `zhucan-kiosk rotate-key` \
                 again, or `zhucan-kiosk rotate-key --abandon` to keep the current key"
            )))
        }
        Err(e @ sync::client::Error::Status { .. }) => {
            secrets.abandon_rotation();
            secrets.save(&secret_path)?;
            Err(Error::Usage(format!(
                "the server refused the rotation ({e}); the current key stays in use"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// `zhucan-kiosk rotate-key --abandon`: drops an unfinished rotation (the current key and token
/// stay). Returns whether there was one.
pub fn abandon_rotation(data_dir: &Path) -> Result<bool, Error> {
    let _lock = DataLock::acquire(data_dir)?;
    let (_store, mut secrets) = open_store(data_dir)?;
    let had = secrets.abandon_rotation();
    if had {
        secrets.save(&secret::path_in(data_dir))?;
    }
    Ok(had)
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
    let server = store.setting("server_url")?.ok_or_else(not_registered)?;
    let up = TemplateUpload {
        consent_face_enrolment: true,
        consent_template_sharing: sharing,
        by: by.to_owned(),
        model: model.to_owned(),
        embeddings: embeddings.iter().map(|e| encode_embedding(e)).collect(),
        duplicate_confirmed: None,
    };
    client_for(data_dir, &server, secrets.token.clone())?
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
        screen.clone(),
        notify.clone(),
        signer,
        config.evidence_photos,
    );
    let gallery = GallerySlot::default();
    let preview = Preview::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_flag = Arc::new(AtomicBool::new(false));

    // the face loop: load the models on its own thread, report model and dimension
    let pcfg = pipeline_config(&config)?;
    let (matching, liveness_threshold) = (pcfg.matching, pcfg.liveness_threshold);
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
            // the confirming frame was embedded, so the pipeline's crop is this face
            let photo = match step {
                Step::Confirm { .. } if self.counter.keeps_evidence() => jpeg(pipeline.aligned()),
                _ => None,
            };
            self.show(step, fb, photo);
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

    fn show(&self, step: Step, fb: Option<FaceBox>, photo: Option<Vec<u8>>) {
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
                if let Err(e) = c.checkin(resident, How::Face { score, liveness }, photo) {
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
    /// Wrong PINs so far and the lock they set: shared by every command, so parallel guesses
    /// count one by one.
    pin_guard: Arc<Mutex<PinGuard>>,
    model: String,
    dim: usize,
    enrol: Arc<Mutex<std::sync::mpsc::Sender<EnrolRequest>>>,
    /// A capture the server refused as another resident's face, held (in memory only) until
    /// staff confirm it or start another enrolment.
    held: Arc<Mutex<Option<HeldEnrolment>>>,
}

/// An enrolment the server refused as a duplicate of `other`'s face.
struct HeldEnrolment {
    resident: ResidentId,
    sharing: bool,
    embeddings: Vec<Vec<f32>>,
    other: ResidentId,
}

const BAD_PIN: &str = "操作密码错误 / wrong operator PIN";

/// Wrong operator PINs in a row before the PIN is locked, and for how long.
const PIN_TRIES: u32 = 5;
const PIN_LOCK: chrono::Duration = chrono::Duration::minutes(5);

/// Counts wrong operator PINs: after [`PIN_TRIES`] in a row, every PIN (the right one too) is
/// refused for [`PIN_LOCK`], so a 4-to-6-digit PIN cannot be guessed at the screen.
#[derive(Debug, Default)]
pub struct PinGuard {
    wrong: u32,
    locked_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl PinGuard {
    /// Checks `given` against `expected` at `now` (constant time), counting a wrong one.
    pub fn check(
        &mut self,
        given: &str,
        expected: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), String> {
        use subtle::ConstantTimeEq;
        if let Some(until) = self.locked_until {
            if now < until {
                let secs = (until - now).num_seconds().max(1);
                return Err(format!(
                    "操作密码错误次数过多，请 {secs} 秒后再试 / too many wrong PINs: try again in \
                     {secs} s"
                ));
            }
            self.locked_until = None;
        }
        let (a, b) = (given.as_bytes(), expected.as_bytes());
        if a.len() == b.len() && bool::from(a.ct_eq(b)) {
            self.wrong = 0;
            return Ok(());
        }
        self.wrong += 1;
        if self.wrong >= PIN_TRIES {
            self.wrong = 0;
            self.locked_until = Some(now + PIN_LOCK);
        }
        Err(BAD_PIN.into())
    }
}

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

    fn check_pin(&self, pin: &str) -> Result<(), String> {
        let now = self.counter.clock.now();
        self.pin_guard
            .lock()
            .map_err(|_| "PIN guard poisoned".to_owned())?
            .check(pin, &self.pin, now)
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
                        c.counter.checkin(r.id(), How::Card, None)
                    })
                    .await;
                let _ = reply.send(r);
            }
            Command::Order { order, reply } => {
                let r = self.blocking(move |c| c.counter.set_order(order)).await;
                let _ = reply.send(r);
            }
            Command::Carer {
                code,
                resident_id,
                reply,
            } => {
                let r = self
                    .blocking(move |c| c.counter.carer_card(&code, resident_id))
                    .await;
                let _ = reply.send(r);
            }
            Command::Staff {
                pin,
                resident_id,
                reason,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e)
                } else if reason.trim().is_empty() {
                    Err("请填写原因 / a reason is required".into())
                } else {
                    let reason = reason.trim().to_owned();
                    self.blocking(move |c| {
                        c.counter.checkin(resident_id, How::Staff { reason }, None)
                    })
                    .await
                };
                let _ = reply.send(r);
            }
            Command::Search { pin, query, reply } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e)
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
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e.into())
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
            Command::ConfirmDuplicate {
                pin,
                resident_id,
                other_resident_id,
                reason,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e.into())
                } else {
                    self.confirm_duplicate(resident_id, other_resident_id, reason)
                        .await
                };
                let _ = reply.send(r);
            }
            Command::Unenrol {
                pin,
                resident_id,
                reply,
            } => {
                let r = if let Err(e) = self.check_pin(&pin) {
                    Err(e)
                } else {
                    self.unenrol(resident_id).await
                };
                let _ = reply.send(r);
            }
        }
    }

    async fn enrol(&self, resident: ResidentId, sharing: bool) -> Result<u32, EnrolError> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
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
        self.upload(resident, sharing, embeddings, None).await
    }

    /// Sends the held capture again with staff's confirmation that the face is `resident`'s
    /// although it matches `other`'s.
    async fn confirm_duplicate(
        &self,
        resident: ResidentId,
        other: ResidentId,
        reason: String,
    ) -> Result<u32, EnrolError> {
        let held = {
            let mut slot = self.held.lock().unwrap_or_else(|e| e.into_inner());
            match slot.take() {
                Some(h) if h.resident == resident && h.other == other => h,
                kept => {
                    *slot = kept;
                    return Err(
                        "没有等待确认的登记，请重新录入 / no enrolment of this resident is waiting \
                         for confirmation: enrol again"
                            .into(),
                    );
                }
            }
        };
        let confirmed = DuplicateConfirmed {
            other_resident_id: other,
            reason,
        };
        self.upload(resident, held.sharing, held.embeddings, Some(confirmed))
            .await
    }

    /// Uploads a capture; only once the server has accepted it are the templates stored here.
    async fn upload(
        &self,
        resident: ResidentId,
        sharing: bool,
        embeddings: Vec<Vec<f32>>,
        confirmed: Option<DuplicateConfirmed>,
    ) -> Result<u32, EnrolError> {
        let n = embeddings.len() as u32;
        // The server first: it refuses a face meal for templates it never received (no face of
        // theirs can have matched here), so the gallery takes them only once the server has.
        let Some(client) = &self.client else {
            return Err("本机尚未注册，无法登记人脸 / kiosk not registered: cannot enrol".into());
        };
        let up = TemplateUpload {
            consent_face_enrolment: true,
            consent_template_sharing: sharing,
            by: "kiosk-operator".into(),
            model: self.model.clone(),
            embeddings: embeddings.iter().map(|e| encode_embedding(e)).collect(),
            duplicate_confirmed: confirmed,
        };
        match client.put_templates(resident, &up).await {
            Ok(()) => {}
            Err(sync::client::Error::DuplicateFace { other, message }) => {
                tracing::info!(
                    resident = resident.0,
                    other = other.resident_id.0,
                    "the server refused the face as another resident's"
                );
                self.counter.show_result(
                    Mode::Operator,
                    &format!("疑似与已登记的居民（{}）为同一人", other.name),
                    &format!(
                        "Possibly the same person as enrolled resident {}",
                        other.name
                    ),
                    None,
                );
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(HeldEnrolment {
                    resident,
                    sharing,
                    embeddings,
                    other: other.resident_id,
                });
                return Err(EnrolError::Duplicate {
                    other_resident_id: other.resident_id,
                    other_name: other.name,
                    message,
                });
            }
            Err(e) => {
                return Err(format!(
                    "上传失败，未登记，请联网后重试 / upload failed, not enrolled; retry online: {e}"
                )
                .into());
            }
        }
        let consent = Consent {
            face_enrolment: true,
            template_sharing: sharing,
        };
        self.blocking(move |c| {
            c.counter
                .store
                .replace_templates(resident, &c.model, &embeddings, consent)
                .and_then(|_| c.gallery.rebuild(&c.counter.store, &c.model, c.dim))
                .map_err(|e| e.to_string())
        })
        .await?;
        tracing::info!(resident = resident.0, templates = n, "enrolled");
        self.counter
            .show_result(Mode::Operator, "人脸登记完成", "Face enrolled", None);
        Ok(n)
    }

    /// Deletes here first (with a record that keeps stale sync answers from restoring them),
    /// then on the server; a deletion the server missed is sent again by the sync worker.
    async fn unenrol(&self, resident: ResidentId) -> Result<(), String> {
        let now = self.counter.clock.now();
        self.blocking(move |c| {
            c.counter
                .store
                .delete_templates(resident, now)
                .and_then(|_| c.gallery.rebuild(&c.counter.store, &c.model, c.dim))
                .map_err(|e| e.to_string())
        })
        .await?;
        let Some(client) = &self.client else {
            return Ok(());
        };
        let (cursor, answer) = match client.delete_templates(resident).await {
            Ok(done) => (done.cursor, Ok(())),
            Err(e) if e.is_transient() => {
                self.counter.notify.notify_one(); // the sync worker tries again
                return Err(format!(
                    "已在本机删除，服务器稍后删除 / deleted here; the server will be told later: {e}"
                ));
            }
            Err(e) => (
                crate::store::REFUSED,
                Err(format!(
                    "已在本机删除；服务器未删除 / deleted here; the server refused: {e}"
                )),
            ),
        };
        self.blocking(move |c| {
            c.counter
                .store
                .confirm_template_deletion(resident, cursor)
                .map_err(|e| e.to_string())
        })
        .await?;
        answer
    }
}

/// The default data folder (`data/kiosk` under the current directory).
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data/kiosk")
}

#[cfg(test)]
mod tests {
    use chrono::Duration as Days;
    use zhucan_domain::Method;
    use zhucan_domain::api::SettlementItem;
    use zhucan_domain::signing::{GENESIS, record_hash, verify};

    use super::*;
    use crate::clock::FixedClock;
    use crate::store::testing::{CARD_KEY, accepted, now, open, signer, sync, synced};

    #[test]
    fn five_wrong_pins_lock_the_pin_even_the_right_one_for_five_minutes() {
        let mut g = PinGuard::default();
        let t = now();
        for i in 0..4 {
            assert_eq!(g.check("0000", "2468", t), Err(BAD_PIN.into()), "try {i}");
        }
        // a right PIN before the fifth wrong one resets the count
        assert_eq!(g.check("2468", "2468", t), Ok(()));
        for _ in 0..5 {
            assert_eq!(g.check("1111", "2468", t), Err(BAD_PIN.into()));
        }
        let locked = g.check("2468", "2468", t + Days::seconds(10));
        assert!(
            locked.as_ref().is_err_and(|e| e.contains("290 秒后再试")),
            "{locked:?}"
        );
        assert!(g.check("2468", "2468", t + Days::seconds(299)).is_err());
        assert_eq!(g.check("2468", "2468", t + Days::minutes(5)), Ok(()));
        // a PIN of another length is wrong, not an error
        assert_eq!(
            g.check("24680", "2468", t + Days::minutes(5)),
            Err(BAD_PIN.into())
        );
    }

    fn counter(
        store: &Store,
        key: Option<SigningKey>,
        evidence: bool,
    ) -> (Counter, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(now()));
        let (screen, _) = watch::channel(ScreenState::idle(""));
        let c = Counter::new(
            store.clone(),
            clock.clone(),
            Arc::new(screen),
            Arc::new(Notify::new()),
            key,
            EvidencePhotos {
                enabled: evidence,
                retention_days: 30,
            },
        );
        (c, clock)
    }

    fn face() -> How {
        How::Face {
            score: 0.81,
            liveness: 0.97,
        }
    }

    fn photo() -> Vec<u8> {
        let img = RgbImage::from_fn(112, 112, |x, y| image::Rgb([x as u8, y as u8, 90]));
        jpeg(&img).expect("jpeg")
    }

    fn outbox(store: &Store) -> Vec<SettlementItem> {
        store
            .due(now() + Days::days(400), 100)
            .expect("due")
            .into_iter()
            .map(|p| p.item)
            .collect()
    }

    #[test]
    fn a_carers_card_at_the_card_box_lists_their_elders_and_settles_the_chosen_ones_meal_as_proxy()
    {
        let (_d, store) = open();
        let mut answer = sync(true, serde_json::json!([]), serde_json::json!([]));
        answer.carers = vec![zhucan_domain::api::KioskCarer {
            id: 31,
            name: "王小红".into(),
            card: zhucan_domain::api::card_index(&CARD_KEY, "CARER31"),
            residents: vec![ResidentId(7)],
        }];
        store.apply_sync(&answer, now()).expect("apply");
        let (c, _) = counter(&store, Some(signer()), false);
        // a resident's card is no carer's
        assert_eq!(c.carer_card("CARD7", None), Ok(None));
        // the carer's card: whose meal?
        let Ok(Some(CarerReply::Choose { carer })) = c.carer_card("CARER31", None) else {
            panic!("expected the carer's elders")
        };
        assert_eq!(carer.name, "王小红");
        assert_eq!(carer.residents, vec![(ResidentId(7), "王建国".to_owned())]);
        assert!(outbox(&store).is_empty(), "nothing settled before a choice");
        // not one of theirs
        let e = c
            .carer_card("CARER31", Some(ResidentId(8)))
            .expect_err("refused");
        assert!(e.contains("代取"), "{e}");
        // 王建国's meal, collected by 王小红: signed with the carer, decided as proxy
        let Ok(Some(CarerReply::Checkin(v))) = c.carer_card("CARER31", Some(ResidentId(7))) else {
            panic!("expected a settled meal")
        };
        assert_eq!(v.proxy_carer.as_deref(), Some("王小红"));
        assert_eq!(v.rejection, None);
        let shown = c.screen.borrow().message_zh.clone();
        assert!(shown.starts_with("代取：王小红 为 王建国 取餐"), "{shown}");
        assert!(shown.contains("自付"), "{shown}");
        let items = outbox(&store);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].resident_id, ResidentId(7));
        assert_eq!(items[0].method, Method::Card);
        assert_eq!(items[0].proxy_carer_id, Some(31));
        assert_eq!(verify(&items[0], &signer().verifying_key()), Ok(()));
        // a later answer without the carer (link removed) takes the card away
        store
            .apply_sync(
                &sync(false, serde_json::json!([]), serde_json::json!([])),
                now(),
            )
            .expect("apply");
        assert_eq!(c.carer_card("CARER31", None), Ok(None));
    }

    #[test]
    fn a_kiosk_without_a_key_cannot_settle_and_says_to_register() {
        let (_d, store) = synced();
        let (c, _) = counter(&store, None, true);
        for how in [face(), How::Card] {
            let e = c
                .checkin(ResidentId(7), how, Some(photo()))
                .expect_err("refused");
            assert!(e.contains("enrol-kiosk"), "{e}");
        }
        assert_eq!(store.outbox_counts().expect("c").total, 0);
        assert_eq!(store.evidence_count().expect("e"), 0);
        assert_eq!(store.chain_head().expect("head").0, 0);
    }

    #[test]
    fn face_card_and_staff_checkins_are_signed_in_one_chain_and_staff_stays_labelled() {
        let (_d, store) = synced();
        let (c, clock) = counter(&store, Some(signer()), false);
        // one lunch a day: a day apart each
        c.checkin(ResidentId(7), face(), None).expect("face");
        clock.advance(Days::days(1));
        c.checkin(ResidentId(7), How::Card, None).expect("card");
        clock.advance(Days::days(1));
        let staff = How::Staff {
            reason: "camera fogged".into(),
        };
        c.checkin(ResidentId(7), staff, None).expect("staff");
        let items = outbox(&store);
        assert_eq!(
            items.iter().map(|i| i.method).collect::<Vec<_>>(),
            vec![Method::Face, Method::Card, Method::Staff]
        );
        let vk = signer().verifying_key();
        let mut prev = GENESIS.to_owned();
        for (i, it) in items.iter().enumerate() {
            let s = it.signed.as_ref().expect("every check-in is signed");
            assert_eq!((s.seq, &s.prev_hash), (i as u64 + 1, &prev));
            assert_eq!(verify(it, &vk), Ok(()));
            prev = record_hash(it);
        }
        // the staff label is inside the signature: relabelling it as a face meal breaks it
        let staff = &items[2];
        assert_eq!(staff.staff_reason.as_deref(), Some("camera fogged"));
        let mut relabelled = staff.clone();
        relabelled.method = Method::Face;
        relabelled.staff_reason = None;
        assert!(verify(&relabelled, &vk).is_err());
        // a refused attempt (the same lunch again) is neither sent nor given a seq
        let v = c.checkin(ResidentId(7), How::Card, None).expect("shown");
        assert!(v.rejection.is_some());
        assert_eq!(store.chain_head().expect("head").0, 3);
    }

    #[test]
    fn evidence_off_writes_no_image_even_when_a_photo_is_offered() {
        let (_d, store) = synced();
        let (c, _) = counter(&store, Some(signer()), false);
        c.checkin(ResidentId(7), face(), Some(photo()))
            .expect("face");
        assert_eq!(store.outbox_counts().expect("c").total, 1);
        assert_eq!(store.evidence_count().expect("e"), 0);
    }

    #[test]
    fn evidence_on_keeps_one_encrypted_photo_with_the_face_checkin() {
        let (_d, store) = synced();
        let (c, clock) = counter(&store, Some(signer()), true);
        let jpg = photo();
        c.checkin(ResidentId(7), face(), Some(jpg.clone()))
            .expect("face");
        clock.advance(Days::days(1));
        c.checkin(ResidentId(7), How::Card, None).expect("card");
        let items = outbox(&store);
        assert_eq!(store.evidence_count().expect("e"), 1);
        assert_eq!(store.evidence_photo(items[0].id).expect("open"), Some(jpg));
        assert_eq!(store.evidence_photo(items[1].id).expect("open"), None);
    }

    /// A registered data folder whose server is a closed port (connection refused).
    fn registered_offline() -> (tempfile::TempDir, SigningKey) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, mut secrets) = open_store(dir.path()).expect("store");
        let key = secrets.generate_signing_key();
        secrets.token = Some("token-1".into());
        secrets.save(&secret::path_in(dir.path())).expect("save");
        store
            .set_setting("server_url", "http://127.0.0.1:1")
            .expect("url");
        store.set_setting("kiosk_id", "3").expect("id");
        store
            .apply_sync(
                &crate::store::testing::sync(true, serde_json::json!([]), serde_json::json!([])),
                now(),
            )
            .expect("sync");
        let (item, a) = accepted(&store, now());
        for _ in 0..2 {
            let mut it = item.clone();
            it.id = Uuid::now_v7();
            store
                .commit_checkin(&it, &a, &key, None, now())
                .expect("commit");
        }
        (dir, key)
    }

    fn reload(dir: &Path) -> Secrets {
        Secrets::load_or_create(&secret::path_in(dir)).expect("secrets")
    }

    #[tokio::test]
    async fn an_interrupted_rotation_is_pending_blocks_the_kiosk_and_resumes_with_the_same_key() {
        let (dir, old) = registered_offline();
        let e = rotate_key(dir.path())
            .await
            .expect_err("server unreachable");
        assert!(e.to_string().contains("rotate-key` again"), "{e}");
        let s = reload(dir.path());
        let (pending, from_seq) = s.pending_rotation().expect("p").expect("pending");
        assert_eq!(from_seq, 3, "hands over after the 2 records in the outbox");
        assert_eq!(
            s.signing_key().expect("k").expect("key").to_bytes(),
            old.to_bytes(),
            "the old key still signs"
        );
        assert_eq!(s.token.as_deref(), Some("token-1"));

        // the kiosk refuses to start while the rotation is unfinished
        let (source, _frames) = crate::source::QueueSource::new();
        let mut config = Config::new(
            dir.path(),
            SourceConfig::Camera {
                device: 0,
                width: 640,
                height: 480,
            },
            "2468",
        );
        config.ui_listen = "127.0.0.1:0".parse().expect("addr");
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
        let e = start(config, clock, Box::new(source))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("rotate-key"), "{e}");

        // running it again resumes with the same pending key
        rotate_key(dir.path()).await.expect_err("still unreachable");
        let (again, _) = reload(dir.path())
            .pending_rotation()
            .expect("p")
            .expect("pending");
        assert_eq!(again.to_bytes(), pending.to_bytes());

        // --abandon keeps the current key and credential
        assert!(abandon_rotation(dir.path()).expect("abandon"));
        let s = reload(dir.path());
        assert!(s.pending_rotation().expect("p").is_none());
        assert_eq!(
            s.signing_key().expect("k").expect("key").to_bytes(),
            old.to_bytes()
        );
        assert!(!abandon_rotation(dir.path()).expect("nothing left"));
    }

    #[tokio::test]
    async fn rotation_and_enrolment_refuse_while_the_kiosk_runs_or_when_misused() {
        let (dir, _) = registered_offline();
        // a running kiosk holds the lock
        let running = DataLock::acquire(dir.path()).expect("lock");
        let e = rotate_key(dir.path()).await.expect_err("busy");
        assert!(e.to_string().contains("stop the kiosk first"), "{e}");
        assert!(reload(dir.path()).pending_rotation().expect("p").is_none());
        drop(running);
        // a registered folder is not registered again
        let e = enrol_kiosk("http://127.0.0.1:1", "code", dir.path(), None)
            .await
            .expect_err("registered");
        assert!(e.to_string().contains("rotate-key"), "{e}");
        // an unregistered folder has nothing to rotate
        let fresh = tempfile::tempdir().expect("tempdir");
        let e = rotate_key(fresh.path()).await.expect_err("unregistered");
        assert!(e.to_string().contains("enrol-kiosk"), "{e}");
    }

    #[tokio::test]
    async fn enrol_refuses_a_bad_server_certificate_before_anything_is_registered() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let data = dir.path().join("kiosk");
        let e = enrol_kiosk("https://127.0.0.1:1", "code", &data, Some(&bad))
            .await
            .expect_err("bad PEM");
        let msg = e.to_string();
        assert!(
            msg.contains("server certificate") && msg.contains("bad.pem"),
            "{msg}"
        );
        let s = reload(&data);
        assert!(s.token.is_none() && s.signing_key().expect("k").is_none());
        assert!(!Pinned::path_in(&data).exists());
        // a good CA with a plain-http server URL is refused too
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
        let e = enrol_kiosk("http://127.0.0.1:1", "code", &data, Some(&ca))
            .await
            .expect_err("http with a pin");
        assert!(e.to_string().contains("https://"), "{e}");
        // an unreachable server: the key pair exists (saved before the call), no token, no pin
        let e = enrol_kiosk("https://127.0.0.1:1", "code", &data, Some(&ca))
            .await
            .expect_err("unreachable");
        assert!(matches!(e, Error::Client(_)), "{e}");
        let s = reload(&data);
        assert!(s.token.is_none());
        assert!(s.signing_key().expect("k").is_some());
        assert!(!Pinned::path_in(&data).exists());
    }

    /// A stand-in server for template uploads: refuses a face as resident 12's (李秀英) unless
    /// the upload confirms exactly that resident; records every body it gets.
    async fn duplicate_server() -> (String, Arc<Mutex<Vec<TemplateUpload>>>) {
        use axum::Json;
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        let seen: Arc<Mutex<Vec<TemplateUpload>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().route(
            "/api/v1/residents/{id}/templates",
            axum::routing::put(move |Json(up): Json<TemplateUpload>| {
                let log = log.clone();
                async move {
                    let ok = up
                        .duplicate_confirmed
                        .as_ref()
                        .is_some_and(|c| c.other_resident_id == ResidentId(12));
                    log.lock().expect("log").push(up);
                    if ok {
                        StatusCode::NO_CONTENT.into_response()
                    } else {
                        (
                            StatusCode::CONFLICT,
                            Json(serde_json::json!({ "error": {
                                "code": "duplicate_face", "field": "embeddings",
                                "message": "the face matches resident 12 (李秀英)",
                                "duplicate_of": { "resident_id": 12, "name": "李秀英" } } })),
                        )
                            .into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    #[tokio::test]
    async fn a_face_the_server_calls_a_duplicate_is_stored_only_after_staff_confirm_it() {
        let (_dir, store) = synced();
        let (c, _) = counter(&store, Some(signer()), false);
        let (url, seen) = duplicate_server().await;
        let (enrol_tx, enrol_rx) = std::sync::mpsc::channel::<EnrolRequest>();
        // the face loop's part: every capture is the same two embeddings
        let face: Vec<Vec<f32>> = vec![vec![0.6, 0.8, 0.0, 0.0], vec![0.0, 0.6, 0.8, 0.0]];
        let capture = face.clone();
        std::thread::spawn(move || {
            while let Ok(r) = enrol_rx.recv() {
                let _ = r.reply.send(Ok(capture.clone()));
            }
        });
        let cmds = Commands {
            counter: c,
            gallery: GallerySlot::default(),
            client: Some(Client::new(&url, Some("t".into()), None).expect("client")),
            pin: "2468".into(),
            pin_guard: Arc::default(),
            model: "m.onnx".into(),
            dim: 4,
            enrol: Arc::new(Mutex::new(enrol_tx)),
            held: Arc::default(),
        };
        let r7 = ResidentId(7);
        let refused = cmds.enrol(r7, false).await;
        assert_eq!(
            refused,
            Err(EnrolError::Duplicate {
                other_resident_id: ResidentId(12),
                other_name: "李秀英".into(),
                message: "the face matches resident 12 (李秀英)".into(),
            })
        );
        assert_eq!(
            store.template_count(r7).expect("count"),
            0,
            "stored before the server accepted"
        );
        let screen = cmds.counter.screen.borrow().clone();
        assert_eq!(screen.message_zh, "疑似与已登记的居民（李秀英）为同一人");
        // a confirmation naming another resident is not what the server matched
        let wrong = cmds
            .confirm_duplicate(r7, ResidentId(13), "双胞胎".into())
            .await;
        assert!(matches!(wrong, Err(EnrolError::Failed(_))), "{wrong:?}");
        assert_eq!(
            seen.lock().expect("seen").len(),
            1,
            "sent without a held capture"
        );
        // staff confirm: the same capture goes again, with the confirmation, and is stored
        let done = cmds
            .confirm_duplicate(r7, ResidentId(12), "双胞胎姐妹".into())
            .await;
        assert_eq!(done, Ok(2));
        assert_eq!(store.template_count(r7).expect("count"), 2);
        let seen = seen.lock().expect("seen").clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].embeddings, seen[1].embeddings);
        assert_eq!(seen[0].duplicate_confirmed, None);
        assert_eq!(
            seen[1].duplicate_confirmed,
            Some(DuplicateConfirmed {
                other_resident_id: ResidentId(12),
                reason: "双胞胎姐妹".into(),
            })
        );
        // the held capture is used once
        let again = cmds
            .confirm_duplicate(r7, ResidentId(12), "双胞胎姐妹".into())
            .await;
        assert!(matches!(again, Err(EnrolError::Failed(_))), "{again:?}");
    }
}
