//! The decision path shared by faces, cards and staff: decide with local data, commit to the
//! outbox (signed, chained), show the result, wake the sync worker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use uuid::Uuid;
use zhucan_domain::settle::Decision;
use zhucan_domain::signing::SigningKey;
use zhucan_domain::{Fen, ResidentId};

use crate::checkin::{self, How};
use crate::config::EvidencePhotos;
use crate::screen::{
    CarerChoice, CarerReply, CheckinView, FaceBox, Mode, ORDER_TTL_SECS, Order, ScreenState,
};
use crate::store::{self, Store};
use crate::sync::publish;
use zhucan_platform::clock::Clock;

/// How long a result stays on screen before the face loop may replace it.
const HOLD: Duration = Duration::from_secs(3);

/// Why a check-in (or a counter order) could not be decided or committed. A refused meal is not
/// an error: it is a decision, shown as such. The text is for the operator's screen, in Chinese
/// and English.
#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    #[error("{NO_SIGNING_KEY}")]
    NotRegistered,
    #[error("尚未同步，请联网 / not synced with the server yet")]
    NotSynced,
    #[error("未找到该老人 / resident not found")]
    UnknownResident,
    #[error(
        "该代取人未登记为这位老人取餐 / this carer is not registered to collect for this resident"
    )]
    CarerNotLinked,
    #[error("现在不在供餐时段 / not serving now")]
    NotServing,
    #[error("餐费须在 {min}–{max} 元之间 / the price must be between {min} and {max} yuan")]
    PriceOutOfRange { min: Fen, max: Fen },
    /// The local database failed; the cause is logged, the screen says only that.
    #[error("本机数据库错误 / local database error")]
    Store(#[source] store::Error),
}

impl From<store::Error> for CheckinError {
    fn from(e: store::Error) -> CheckinError {
        tracing::error!(error = %e, "kiosk store");
        CheckinError::Store(e)
    }
}

/// At the screen's command boundary a check-in error is its text.
impl From<CheckinError> for String {
    fn from(e: CheckinError) -> String {
        e.to_string()
    }
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
    /// The time zone of the canteen's slots and meal dates (from the configuration).
    pub tz: chrono_tz::Tz,
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
        tz: chrono_tz::Tz,
        screen: Arc<watch::Sender<ScreenState>>,
        notify: Arc<Notify>,
        signer: Option<SigningKey>,
        evidence: EvidencePhotos,
    ) -> Counter {
        Counter {
            store,
            clock,
            tz,
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
    pub fn set_order(&self, order: Option<Order>) -> Result<Option<Order>, CheckinError> {
        if let Some(Order {
            price: Some(price), ..
        }) = order
        {
            let canteen = self.store.canteen()?.ok_or(CheckinError::NotSynced)?;
            let local = self.clock.now().with_timezone(&self.tz);
            let window = canteen
                .slot_at(local.time())
                .ok_or(CheckinError::NotServing)?;
            if let Err(r) = window.price_of(Some(price)) {
                return Err(CheckinError::PriceOutOfRange {
                    min: r.min,
                    max: r.max,
                });
            }
        }
        *self.order.lock().unwrap_or_else(|e| e.into_inner()) =
            order.map(|o| (o, Instant::now() + Duration::from_secs(ORDER_TTL_SECS)));
        publish(&self.screen, |s| s.order = order);
        Ok(order)
    }

    /// Takes the waiting order for a check-in by `how`, if it has not lapsed. A delivered meal is
    /// not eaten at the counter, so the elder's face never takes a delivered order: it waits for
    /// the deliverer's card or staff (the server refuses a delivered face meal too).
    fn take_order(&self, how: &How) -> Order {
        let mut waiting = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(how, How::Face { .. }) && waiting.is_some_and(|(o, _)| o.delivered) {
            return Order::default();
        }
        let taken = waiting.take();
        drop(waiting);
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

    pub(super) fn held(&self) -> bool {
        self.hold_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }

    pub(super) fn hold(&self) {
        *self.hold_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + HOLD);
    }

    /// Shows a passing state (idle, guiding, checking) unless a result is still being held.
    pub(super) fn show_transient(
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
    pub(super) fn show_result(&self, mode: Mode, zh: &str, en: &str, checkin: Option<CheckinView>) {
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
    ) -> Result<CheckinView, CheckinError> {
        let Some(signer) = self.signer.as_deref() else {
            tracing::warn!("check-in refused: no signing key (kiosk not registered)");
            return Err(CheckinError::NotRegistered);
        };
        let photo = photo.filter(|_| self.evidence.enabled);
        let canteen = self.store.canteen()?.ok_or(CheckinError::NotSynced)?;
        let resident = self
            .store
            .resident(resident_id)?
            .ok_or(CheckinError::UnknownResident)?;
        let policies = self.store.policies()?;
        let history = self.store.history(resident_id)?;
        let now = self.clock.now();
        let order = self.take_order(&how);
        let p = checkin::prepare(
            &resident,
            &canteen,
            &policies,
            &history,
            &how,
            order,
            self.tz,
            now,
            Uuid::now_v7(),
        );
        if let (Some(item), Decision::Accepted(a)) = (&p.item, &p.decision) {
            let signed = self
                .store
                .commit_checkin(item, a, signer, photo.as_deref(), now)?;
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
                    format!("（含送餐费{}元）", fee),
                    format!(" (incl. delivery {} yuan)", fee),
                ),
            };
            let zh = format!(
                "{who_zh}，{}，补助{}元，自付{}元{delivery_zh}",
                v.slot_zh, v.subsidy, v.self_pay
            );
            let en = format!(
                "{who_en}: {}, subsidy {} yuan, you pay {} yuan{delivery_en}",
                v.slot_en, v.subsidy, v.self_pay
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
    ) -> Result<Option<CarerReply>, CheckinError> {
        let Some(carer) = self.store.carer_by_card(code)? else {
            return Ok(None);
        };
        match resident_id {
            None => {
                let mut residents = Vec::new();
                for id in &carer.residents {
                    if let Some(r) = self.store.resident(*id)? {
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
                self.checkin(id, how, None)
                    .map(|v| Some(CarerReply::Checkin(Box::new(v))))
            }
            Some(_) => Err(CheckinError::CarerNotLinked),
        }
    }
}
