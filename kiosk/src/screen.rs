//! What the elder-facing screen shows, and what the screen can ask the kiosk to do.
//!
//! The runtime (`run`) owns the state and publishes every change through a
//! `tokio::sync::watch` channel of [`ScreenState`]; the local web page (`ui`) renders it and sends
//! [`Command`]s back through an mpsc channel. Neither side knows the other's internals.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use zhucan_domain::{Fen, ResidentId};

/// The screen's mode: decides the colour, the big text and whether anything is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nobody in front of the camera: "请看摄像头 / 刷卡".
    Idle,
    /// A face is there but the frame is not good enough yet; `hint` says what to do.
    Guiding,
    /// A face is being confirmed (k of n frames).
    Checking,
    /// A meal was settled: name, meal, subsidy, self-pay (spoken).
    Confirmed,
    /// The face is not an enrolled resident: "未识别，请找工作人员".
    Unknown,
    /// Not a live face (photo or screen): "请本人刷脸".
    Spoof,
    /// Recognised, but no meal settled (already eaten this slot, outside serving hours,
    /// suspended...): `result.rejection` says why.
    Refused,
    /// Staff are operating the kiosk (enrolment, staff check-in).
    Operator,
}

/// A settled (or refused) check-in, as the screen shows it. Money in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinView {
    pub resident_id: ResidentId,
    /// Full name as on the roster; the screen shows it large.
    pub name: String,
    /// "午餐" / "lunch".
    pub slot_zh: String,
    pub slot_en: String,
    pub price: Fen,
    pub subsidy: Fen,
    pub self_pay: Fen,
    /// "prepaid" or "cash".
    pub payment: String,
    /// Balance after this meal, when the resident has a prepaid account.
    pub prepaid_balance: Option<Fen>,
    pub tier_name: Option<String>,
    /// face / card / staff.
    pub method: String,
    /// Set when no meal was settled: a reason code and its Chinese label.
    pub rejection: Option<String>,
    pub rejection_zh: Option<String>,
    /// 代取: the carer who collects the meal for the resident, by name.
    #[serde(default)]
    pub proxy_carer: Option<String>,
    /// The delivery fee as its own line (part of `price`) and the part of it subsidised.
    #[serde(default)]
    pub delivery_fee: Fen,
    #[serde(default)]
    pub delivery_subsidy: Fen,
}

/// What the counter rang up for the next meal: the price of what was taken (set meals at
/// several prices, weighed dishes; `None`: the slot's set price) and whether it is delivered.
/// The next check-in takes it, whatever its method; it lapses after [`ORDER_TTL_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Order {
    #[serde(default)]
    pub price: Option<Fen>,
    #[serde(default)]
    pub delivered: bool,
}

/// How long a counter order waits for its check-in.
pub const ORDER_TTL_SECS: u64 = 120;

/// The answer to a carer's card (代取).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CarerReply {
    /// Choose whose meal to collect.
    Choose { carer: CarerChoice },
    /// The chosen resident's meal, decided (and, when accepted, committed).
    Checkin(Box<CheckinView>),
}

/// A carer and the residents linked to them, for the screen to choose from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarerChoice {
    pub carer_id: i64,
    pub name: String,
    /// (resident id, name) of each linked resident this kiosk knows.
    pub residents: Vec<(ResidentId, String)>,
}

/// The face box in frame pixels, for the overlay on the preview.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub frame_w: u32,
    pub frame_h: u32,
}

/// Everything the screen shows. Published whole on every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenState {
    pub mode: Mode,
    /// The main line in Chinese and English (e.g. "请靠近一点" / "Please come closer").
    pub message_zh: String,
    pub message_en: String,
    /// Machine-readable hint for `Guiding` (quality reason code), else None.
    pub hint: Option<String>,
    pub face: Option<FaceBox>,
    pub checkin: Option<CheckinView>,
    /// Increases by one on every new check-in result, so the page speaks each result once.
    pub event_seq: u64,
    pub canteen_name: String,
    /// False while the server cannot be reached; decisions are then made locally.
    pub online: bool,
    /// Settlements written locally and not yet acknowledged by the server.
    pub outbox_backlog: u32,
    /// RFC 3339 time of the last successful sync, if any.
    pub last_sync_at: Option<String>,
    /// The counter order waiting for the next check-in, if any.
    #[serde(default)]
    pub order: Option<Order>,
}

impl ScreenState {
    pub fn idle(canteen_name: impl Into<String>) -> ScreenState {
        ScreenState {
            mode: Mode::Idle,
            message_zh: "请看摄像头，或刷卡".into(),
            message_en: "Look at the camera, or scan your card".into(),
            hint: None,
            face: None,
            checkin: None,
            event_seq: 0,
            canteen_name: canteen_name.into(),
            online: false,
            outbox_backlog: 0,
            last_sync_at: None,
            order: None,
        }
    }
}

/// A resident as the operator's search shows them (no national ID number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentHit {
    pub id: ResidentId,
    pub name: String,
    /// Whether the resident has a card (its code is not on the kiosk, only its keyed hash).
    pub has_card: bool,
    pub age: u32,
    pub face_enrolled: bool,
}

/// Why an operator's enrolment did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolError {
    /// Refused or failed; the text says why (Chinese / English).
    Failed(String),
    /// The server found this face on another resident's record ("疑似与已登记的居民（name）为同一人"):
    /// nothing was stored. Staff may judge them two people (twins) and confirm with a reason
    /// ([`Command::ConfirmDuplicate`]), which sends the same capture again.
    Duplicate {
        other_resident_id: ResidentId,
        other_name: String,
        /// The server's explanation.
        message: String,
    },
}

impl From<String> for EnrolError {
    fn from(s: String) -> EnrolError {
        EnrolError::Failed(s)
    }
}

impl From<&str> for EnrolError {
    fn from(s: &str) -> EnrolError {
        EnrolError::Failed(s.to_owned())
    }
}

/// What the screen asks the runtime to do. Each carries a reply channel.
#[derive(Debug)]
pub enum Command {
    /// A resident card / QR code typed or scanned (a scanner is a keyboard).
    Card {
        code: String,
        reply: oneshot::Sender<Result<CheckinView, String>>,
    },
    /// A card code that may be a carer's (代取人): `None` when it is not. Without
    /// `resident_id` the answer lists the residents the carer may collect for; with one of
    /// them, that resident's meal is settled as 代取 (method card, `proxy_carer_id` set).
    Carer {
        code: String,
        resident_id: Option<ResidentId>,
        reply: oneshot::Sender<Result<Option<CarerReply>, String>>,
    },
    /// The counter's order for the next check-in ([`Order`]); `None` clears it. A price must
    /// lie within the bounds the canteen set for the slot being served.
    Order {
        order: Option<Order>,
        reply: oneshot::Sender<Result<Option<Order>, String>>,
    },
    /// Staff confirm a resident by hand, with a reason. Needs the operator PIN.
    Staff {
        pin: String,
        resident_id: ResidentId,
        reason: String,
        reply: oneshot::Sender<Result<CheckinView, String>>,
    },
    /// Operator search by name or card code. Needs the operator PIN.
    Search {
        pin: String,
        query: String,
        reply: oneshot::Sender<Result<Vec<ResidentHit>, String>>,
    },
    /// Enrol (or re-enrol) a resident's face from the next good live frames, with the consent
    /// given at the counter. Needs the operator PIN.
    Enrol {
        pin: String,
        resident_id: ResidentId,
        consent_face: bool,
        consent_sharing: bool,
        reply: oneshot::Sender<Result<u32, EnrolError>>,
    },
    /// After [`EnrolError::Duplicate`]: staff judged the face to be `resident_id`'s although it
    /// matches `other_resident_id`'s, for `reason`; the held capture is uploaded again with the
    /// confirmation. Needs the operator PIN.
    ConfirmDuplicate {
        pin: String,
        resident_id: ResidentId,
        other_resident_id: ResidentId,
        reason: String,
        reply: oneshot::Sender<Result<u32, EnrolError>>,
    },
    /// Delete a resident's templates here and on the server. Needs the operator PIN.
    Unenrol {
        pin: String,
        resident_id: ResidentId,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The latest camera frame as JPEG, shared between the runtime (which sets it) and the screen
/// (which serves it as `/api/preview.jpg`). Cloning shares the same slot. Deliberately no `Debug`:
/// frames must never end up in logs.
#[derive(Clone, Default)]
pub struct Preview(pub std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>);

impl Preview {
    pub fn new() -> Preview {
        Preview::default()
    }

    /// Replaces the frame (`None` when the camera has nothing to show).
    pub fn set(&self, jpeg: Option<Vec<u8>>) {
        // A poisoned lock only means a writer panicked mid-assignment; the slot is still usable.
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = jpeg;
    }

    /// A copy of the latest frame, if any.
    pub fn get(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
