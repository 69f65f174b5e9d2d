//! Wire types of the HTTP API (`/api/v1`), shared by the server and the kiosk's client.
//! Only this module's types are meant to cross a process boundary.
//!
//! Money fields are integer fen. Times are RFC 3339 with an offset; dates are `YYYY-MM-DD`.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::canteen::{CanteenKind, OperatorKind};
use crate::settle::{Accepted, Eligibility, Rejection};
use crate::{CanteenId, Fen, Method, Payment, ResidentId, Sex, Slot};

/// The most items one `POST /api/v1/settlements` may carry.
pub const MAX_BATCH: usize = 500;

/// The body of `POST /api/v1/settlements`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettlementBatch {
    /// At most 500 items.
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub items: Vec<SettlementItem>,
}

/// One meal as the kiosk saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettlementItem {
    /// Made on the kiosk; must be a UUIDv7. Posting the same id again is a no-op.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )
    )]
    pub id: Uuid,
    pub resident_id: ResidentId,
    pub canteen_id: CanteenId,
    /// RFC 3339 with an offset.
    pub served_at: DateTime<FixedOffset>,
    pub method: Method,
    /// Face match score in 0..=1; required for `face`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub match_score: Option<f64>,
    /// Liveness score in 0..=1; required for `face`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub liveness_score: Option<f64>,
    /// A delivered meal (送餐): settled by `card` or `staff`, never by `face` (an item error with
    /// code `delivered_face`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub delivered: bool,
    /// Required for `staff`: why staff confirmed the resident by hand (not blank).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub staff_reason: Option<String>,
    /// 代取: the registered carer who collected this resident's meal with their own card
    /// (method `card` or `staff`, never `face`). Signed (`signing::payload`); left out
    /// of the JSON when absent, so items without it keep their exact wire form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_carer_id: Option<i64>,
    /// The price of what was taken (fen), from the counter (set meals at several prices, weighed
    /// dishes), within the slot's `price_min`..=`price_max` (else rejected with
    /// `price_out_of_range`). Absent: the slot's set price. Signed like `proxy_carer_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0))]
    pub counter_price: Option<Fen>,
    /// The kiosk's signature and chain link (`signing`). Required from kiosks; absent
    /// only for meals the server itself enters (a staff check-in on the dashboard, demo history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Signed>,
}

/// The signature block of a settlement item: the kiosk's signature and chain link, required on
/// every item a kiosk posts. A missing, malformed or invalid one, or a record that forks the
/// kiosk's chain, answers that item with status `error` and code `signature_missing`,
/// `signature_malformed`, `signature_invalid` or `chain_fork`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// Position in the kiosk's chain: 1, 2, 3, ... with no gaps (0 is an item error).
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807i64))]
    pub seq: u64,
    /// The hash of the record with `seq - 1`: sha256 of its signed payload
    /// (`signing::record_hash`), 64 lower-case hex digits; 64 zeros for seq 1
    /// (`signing::GENESIS`).
    pub prev_hash: String,
    /// Ed25519 signature over the record's payload (`signing::payload`), base64 of 64 bytes.
    pub signature: String,
}

/// The answer to a batch: one result per item, in the order posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    pub results: Vec<ItemResult>,
}

/// `accepted` (with `meal`), `rejected` (with `rejection`) or `error` (with `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Accepted,
    Rejected,
    Error,
}

/// The answer for one item: `accepted` (with `meal`), `rejected` (with `rejection`) or `error`
/// (with `error`; nothing was stored, the item may be retried once the cause is fixed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemResult {
    pub id: Uuid,
    pub status: ItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meal: Option<MealDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<RejectionBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl ItemResult {
    pub fn error(id: Uuid, code: &str, field: Option<String>, message: impl Into<String>) -> Self {
        ItemResult {
            id,
            status: ItemStatus::Error,
            meal: None,
            rejection: None,
            error: Some(ErrorDetail {
                code: code.into(),
                field,
                message: message.into(),
                duplicate_of: None,
            }),
        }
    }
}

/// An accepted meal: what it costs and who pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MealDecision {
    /// The local date the meal was served.
    pub date: NaiveDate,
    pub slot: Slot,
    /// What the meal costs in all: `subsidy + self_pay`.
    pub price: Fen,
    /// All that is not the elder's: the tier's, the stacked subsidies' and the delivery subsidy.
    pub subsidy: Fen,
    /// What the elder pays.
    pub self_pay: Fen,
    pub payment: Payment,
    /// The subsidy split by funding source.
    pub funding: FundingDto,
    /// The town whose finance pays the town share.
    pub funding_town: String,
    /// `subsidised` or the code of the reason it is not (e.g. `not_local`).
    pub eligibility: String,
    pub eligibility_zh: String,
    /// The code and name of the tier the meal is subsidised under.
    pub tier: Option<String>,
    pub tier_name: Option<String>,
    /// The policy the meal was judged by.
    pub policy_id: String,
    pub policy_version: u32,
    /// The delivery fee as its own line (part of `price`); 0 unless the policy makes delivery
    /// its own line.
    #[serde(default)]
    pub delivery_fee: Fen,
    /// The part of the delivery fee a funder pays (part of `subsidy`).
    #[serde(default)]
    pub delivery_subsidy: Fen,
    /// The codes of the stacked subsidies on top of the tier that applied, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacked: Vec<String>,
    /// The sum of the stacked subsidies (part of `subsidy`).
    #[serde(default)]
    pub stacked_subsidy: Fen,
    /// The operating subsidy paid to the canteen for this meal (not part of `price`).
    #[serde(default)]
    pub operating: Fen,
}

impl MealDecision {
    /// The subsidy under the tier alone ([`Accepted::tier_subsidy`]).
    pub fn tier_subsidy(&self) -> Fen {
        self.subsidy - self.stacked_subsidy - self.delivery_subsidy
    }
}

impl From<&Accepted> for MealDecision {
    fn from(a: &Accepted) -> Self {
        let (eligibility, eligibility_zh, tier, tier_name) = match &a.eligibility {
            Eligibility::Subsidised { tier, tier_name } => (
                "subsidised".to_owned(),
                format!("享受补助：{tier_name}"),
                Some(tier.clone()),
                Some(tier_name.clone()),
            ),
            Eligibility::NotEligible { reason } => (
                reason.as_str().to_owned(),
                reason.label_zh().to_owned(),
                None,
                None,
            ),
        };
        MealDecision {
            date: a.date,
            slot: a.slot,
            price: a.price,
            subsidy: a.subsidy,
            self_pay: a.self_pay,
            payment: a.payment,
            funding: FundingDto {
                city: a.funding.city,
                town: a.funding.town,
                other: a.funding.other,
                county: a.funding.county,
                canteen: a.funding.canteen,
            },
            funding_town: a.funding_town.0.clone(),
            eligibility,
            eligibility_zh,
            tier,
            tier_name,
            policy_id: a.policy.id.clone(),
            policy_version: a.policy.version,
            delivery_fee: a.delivery_fee,
            delivery_subsidy: a.delivery_subsidy,
            stacked: a.stacked.clone(),
            stacked_subsidy: a.stacked_subsidy,
            operating: a.operating,
        }
    }
}

/// A meal's subsidy split by funding source; the parts add up to the subsidy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = FundingSplit))]
pub struct FundingDto {
    /// 市级财政 (the city).
    pub city: Fen,
    /// 镇（街道）财政 (the town named by `funding_town`).
    pub town: Fen,
    /// 其他: welfare lottery funds, charity, ...
    pub other: Fen,
    /// 县区财政 (a county or city district).
    #[serde(default)]
    pub county: Fen,
    /// 食堂让利: the canteen's own discount; no finance pays it.
    #[serde(default)]
    pub canteen: Fen,
}

/// Why a meal was refused: a stable code and a label for the counter screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectionBody {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::RejectionReason))]
    pub reason: String,
    pub label_zh: String,
    /// With `duplicate`: the slot already eaten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// With `deceased`: the date of death.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_on: Option<NaiveDate>,
}

impl From<&Rejection> for RejectionBody {
    fn from(r: &Rejection) -> Self {
        RejectionBody {
            reason: r.as_str().to_owned(),
            label_zh: r.label_zh().to_owned(),
            slot: match r {
                Rejection::Duplicate { slot } => Some(*slot),
                _ => None,
            },
            deceased_on: match r {
                Rejection::Deceased { date } => Some(*date),
                _ => None,
            },
        }
    }
}

/// The error body of every 4xx/5xx answer: `{ "error": { "code", "field", "message" } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Error))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code, the field to blame if any, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`missing`, `out_of_range`, `duplicate_face`, ...).
    pub code: String,
    /// The offending field of the request (a path such as `items[2].served_at`), if one is to
    /// blame.
    #[serde(default)]
    pub field: Option<String>,
    pub message: String,
    /// With code `duplicate_face` (409 on a template upload): the other resident whose stored
    /// face matches the uploaded one. Staff judge (twins exist) and may confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<DuplicateFace>,
}

/// The resident an uploaded face matches (`duplicate_of` of an error with code
/// `duplicate_face`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DuplicateFace {
    pub resident_id: ResidentId,
    pub name: String,
}

/// A town or street (镇/街道): the body of `POST /api/v1/towns`, and as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(as = Town))]
pub struct TownDto {
    /// A stable code: lower-case letters, digits and `_`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,32}$"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
    /// The district or county (区/县) above the town: a code from `POST /districts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,32}$"))]
    pub district: Option<String>,
}

/// `PUT /api/v1/towns/{code}/district`: the district a town belongs to (`null`: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TownDistrict {
    /// A district's code, or null for none.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,32}$"))]
    pub district: Option<String>,
}

/// A district or county (区/县), the level above towns: the body of `POST /api/v1/districts`,
/// and as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(as = District))]
pub struct DistrictDto {
    /// A stable code: lower-case letters, digits and `_`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,32}$"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
}

/// A slot a canteen serves, on the wire: the local time window `[start, end)` (`HH:MM` or
/// `HH:MM:SS` in; `HH:MM:SS` out) and the meal price. With `price_min` and `price_max` (both or neither, around
/// `price`) the counter may settle a meal at the price of what was taken within them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SlotWindow))]
#[serde(deny_unknown_fields)]
pub struct SlotDto {
    pub slot: Slot,
    /// Local time the window opens (inclusive), `HH:MM` or `HH:MM:SS`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub start: NaiveTime,
    /// Local time the window closes (exclusive), `HH:MM` or `HH:MM:SS`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub end: NaiveTime,
    /// The set price in fen: the price of a meal settled without a counter price.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 0))]
    pub price: Fen,
    /// The lowest counter price in fen (set meals, weighed dishes); at most `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0))]
    pub price_min: Option<Fen>,
    /// The highest counter price in fen; at least `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0))]
    pub price_max: Option<Fen>,
}

impl SlotDto {
    /// The slot as the decision sees it; `Err` names the field (`price_min`, `price_max`).
    pub fn window(&self) -> Result<crate::SlotWindow, (&'static str, &'static str)> {
        let price_range = match (self.price_min, self.price_max) {
            (None, None) => None,
            (Some(min), Some(max)) => Some(crate::PriceRange { min, max }),
            (None, Some(_)) => return Err(("price_min", "give both bounds of a counter price")),
            (Some(_), None) => return Err(("price_max", "give both bounds of a counter price")),
        };
        Ok(crate::SlotWindow {
            slot: self.slot,
            start: self.start,
            end: self.end,
            price: self.price,
            price_range,
        })
    }

    pub fn from_window(w: &crate::SlotWindow) -> SlotDto {
        SlotDto {
            slot: w.slot,
            start: w.start,
            end: w.end,
            price: w.price,
            price_min: w.price_range.map(|r| r.min),
            price_max: w.price_range.map(|r| r.max),
        }
    }
}

/// `POST /api/v1/canteens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCanteen {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub name: String,
    pub kind: CanteenKind,
    /// The code of the canteen's town.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub town: String,
    /// Who runs it.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub operator: String,
    pub operator_kind: OperatorKind,
    /// The slots it serves: windows that do not overlap, one per slot.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub slots: Vec<SlotDto>,
    /// Added to the price of a delivered meal (送餐), in fen, if the canteen delivers.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0))]
    pub delivery_surcharge: Option<Fen>,
}

/// A canteen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Canteen))]
pub struct CanteenDto {
    pub id: CanteenId,
    pub name: String,
    pub kind: CanteenKind,
    /// `kind` in Chinese.
    pub kind_zh: String,
    /// The code of the canteen's town.
    pub town: String,
    pub operator: String,
    pub operator_kind: OperatorKind,
    pub slots: Vec<SlotDto>,
    /// Added to the price of a delivered meal (送餐), if the canteen delivers.
    pub delivery_surcharge: Option<Fen>,
    /// The district of the canteen's town, if the geography names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
}

/// Resident status on the wire: `active`, `suspended`, or `deceased` with `deceased_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ResidentStatus))]
#[serde(rename_all = "snake_case")]
pub enum StatusDto {
    Active,
    Suspended,
    Deceased,
}

/// `POST /api/v1/residents`. Birth date and sex are read from the national ID number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewResident {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub name: String,
    /// 18 characters with the GB 11643 check digit; never returned.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^\s*[0-9]{17}[0-9Xx]\s*$"))]
    pub national_id: String,
    /// Local household registration (本地户籍).
    pub local_registration: bool,
    /// The code of the town of household registration (户籍地).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub registered_town: String,
    /// The code of the town where the resident lives (居住地).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub residence_town: String,
    /// Category codes (`dibao`, `tekun`, ...).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,32}$"))]
    pub categories: Vec<String>,
    /// The code printed on the resident card / QR code: the non-face way to check in.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub card_code: String,
    #[serde(default)]
    pub designated_canteen: Option<CanteenId>,
    /// Opens a prepaid account with this balance, in fen: self-pay is then taken from it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0))]
    pub prepaid_balance: Option<Fen>,
    #[serde(default)]
    pub consent: Option<ConsentDto>,
    #[serde(default)]
    pub face_enrolled: bool,
}

/// The resident's consent: separately to face enrolment (人脸识别单独同意), and to their face
/// templates being shared beyond the canteen where they were enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Consent))]
#[serde(deny_unknown_fields)]
pub struct ConsentDto {
    pub face_enrolment: bool,
    pub template_sharing: bool,
}

/// `PATCH /api/v1/residents/{id}`: every field optional; consent changes are recorded as history.
/// `deceased_on` alone means `deceased`; status `deceased` needs `deceased_on`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResidentUpdate {
    /// `deceased` needs `deceased_on`.
    #[serde(default)]
    pub status: Option<StatusDto>,
    /// The date of death; alone, it means `deceased`.
    #[serde(default)]
    pub deceased_on: Option<NaiveDate>,
    /// Replaces the resident's category codes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^\s*[a-z0-9_]{1,32}\s*$"))]
    pub categories: Option<Vec<String>>,
    #[serde(default)]
    pub consent: Option<ConsentDto>,
    #[serde(default)]
    pub face_enrolled: Option<bool>,
    /// Who made the change (recorded with consent history).
    #[serde(default)]
    pub by: Option<String>,
}

/// A resident as the API shows them: the national ID number only masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Resident))]
pub struct ResidentDto {
    pub id: ResidentId,
    pub name: String,
    pub sex: Sex,
    /// The year only: the full birth date is characters 7-14 of the national ID number, so
    /// beside the masked number it would give the whole number away.
    pub birth_year: i32,
    /// The first six and last four characters (`330782********1234`).
    pub national_id_masked: String,
    /// Local household registration (本地户籍).
    pub local_registration: bool,
    /// The code of the town of household registration (户籍地).
    pub registered_town: String,
    /// The code of the town where the resident lives (居住地).
    pub residence_town: String,
    pub categories: Vec<String>,
    pub status: StatusDto,
    /// The date of death, with status `deceased`.
    pub deceased_on: Option<NaiveDate>,
    /// The code printed on the resident card / QR code.
    pub card_code: String,
    pub designated_canteen: Option<CanteenId>,
    pub prepaid_balance: Option<Fen>,
    pub consent: ConsentDto,
    pub face_enrolled: bool,
}

/// `POST /api/v1/kiosks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKiosk {
    pub canteen_id: CanteenId,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub name: String,
    /// The kiosk's Ed25519 public key (base64 of its 32 bytes): every settlement it posts must be
    /// signed with the matching private key.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^\s*[A-Za-z0-9+/]{43}=*\s*$"))]
    pub public_key: String,
}

/// The answer to `POST /api/v1/kiosks`: the bearer token is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KioskCreated {
    pub id: i64,
    pub canteen_id: CanteenId,
    pub name: String,
    /// The kiosk's bearer token, shown once.
    pub token: String,
}

/// Counts and money of a set of meals.
///
/// `price = subsidy + self_pay`; `subsidy = city + county + town + other + canteen`. Of
/// `price`, `delivery_fee` is the delivery line; of `subsidy`, `delivery_subsidy` is the part
/// of that fee a funder pays. `operating` is paid to the canteen beside the meals' prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Amounts {
    pub meals: i64,
    /// Of `meals`, those with a subsidy.
    pub subsidised_meals: i64,
    pub price: Fen,
    pub subsidy: Fen,
    pub self_pay: Fen,
    /// Of `subsidy`, city finance's part (市级财政).
    pub city: Fen,
    /// Of `subsidy`, town finance's part (镇（街道）财政).
    pub town: Fen,
    /// Of `subsidy`, other funders' part (其他).
    pub other: Fen,
    /// Of `subsidy`, county or district finance's part (县区财政).
    #[serde(default)]
    pub county: Fen,
    /// Of `subsidy`, the canteens' own discount (食堂让利): no finance pays it.
    #[serde(default)]
    pub canteen: Fen,
    /// Of `price`: the delivery fee as its own line.
    #[serde(default)]
    pub delivery_fee: Fen,
    /// Of `subsidy`: the part of the delivery fee a funder pays.
    #[serde(default)]
    pub delivery_subsidy: Fen,
    /// The operating subsidy paid to the canteen beside the price.
    #[serde(default)]
    pub operating: Fen,
}

impl Amounts {
    pub fn add(&mut self, o: &Amounts) {
        self.meals += o.meals;
        self.subsidised_meals += o.subsidised_meals;
        self.price += o.price;
        self.subsidy += o.subsidy;
        self.self_pay += o.self_pay;
        self.city += o.city;
        self.town += o.town;
        self.other += o.other;
        self.county += o.county;
        self.canteen += o.canteen;
        self.delivery_fee += o.delivery_fee;
        self.delivery_subsidy += o.delivery_subsidy;
        self.operating += o.operating;
    }

    /// What finance pays for these meals: the subsidy but the canteens' own discounts.
    pub fn finance_pays(&self) -> Fen {
        self.subsidy - self.canteen
    }
}

/// `GET /api/v1/canteens/{id}/tally?date=`: the operator's day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    pub canteen_id: CanteenId,
    pub canteen_name: String,
    pub date: NaiveDate,
    pub slots: Vec<TallySlot>,
    pub totals: Amounts,
    pub meals: Vec<TallyMeal>,
}

/// One slot's meals of the day: `slot` and the amounts of its counted meals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TallySlot {
    pub slot: Slot,
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// One accepted meal of the day. Voided meals are listed (flagged) but not counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TallyMeal {
    /// The settlement id.
    pub id: Uuid,
    pub served_at: DateTime<FixedOffset>,
    pub slot: Slot,
    pub resident_id: ResidentId,
    pub resident_name: String,
    pub method: Method,
    pub price: Fen,
    pub subsidy: Fen,
    pub self_pay: Fen,
    pub payment: Payment,
    pub funding: FundingDto,
    /// The code of the tier the meal is subsidised under.
    pub tier: Option<String>,
    /// Voided meals are listed but not counted.
    pub voided: bool,
    #[serde(default)]
    pub delivery_fee: Fen,
    #[serde(default)]
    pub delivery_subsidy: Fen,
    #[serde(default)]
    pub operating: Fen,
}

/// `POST /api/v1/settlements/{id}/void`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 500, pattern = r"\S")
    )]
    pub reason: String,
    /// With the administrator's token: who voids it (default `admin`); a signed-in user is
    /// named by their account.
    #[serde(default)]
    pub by: Option<String>,
}

/// What a void did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VoidResult {
    pub settlement_id: Uuid,
    /// `voided` (open month) or `adjusted` (closed month: an adjustment line was added).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::VoidEffect))]
    pub effect: String,
    /// With `adjusted`: the line added to the next open month.
    pub adjustment: Option<AdjustmentLine>,
}

/// A correction that needs a second person (four-eyes): a void or adjustment whose subsidy is
/// above the configured limit, or of a meal older than the configured days. The 202 answer of
/// such a void, an item of `GET /api/v1/corrections`, and the record after a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Correction {
    pub id: i64,
    pub settlement_id: Uuid,
    /// `void` (the meal's month is open) or `adjustment` (closed: a line in the next open month).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::CorrectionKind))]
    pub kind: String,
    pub reason: String,
    /// `admin` (the administrator's token) or `user:<name>`.
    pub requested_by: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub requested_at: String,
    /// `pending`, `approved` or `rejected`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::CorrectionState))]
    pub state: String,
    pub decided_by: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    /// The day the meal was served (local date).
    #[cfg_attr(feature = "openapi", schema(format = Date))]
    pub local_date: String,
    pub price: Fen,
    pub subsidy: Fen,
}

/// `POST /api/v1/corrections/{id}/approve` (note optional) and `.../reject` (note required).
/// The schema is the approval's; the rejection's is [`crate::openapi::CorrectionRejection`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        as = CorrectionApproval,
        description = "`POST /api/v1/corrections/{id}/approve`: an optional note."
    )
)]
#[serde(deny_unknown_fields)]
pub struct CorrectionDecision {
    /// At most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub note: Option<String>,
}

/// The answer of an approval or a rejection: the decided record and, when approved, the void
/// (or adjustment) that was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionDecided {
    pub correction: Correction,
    /// When approved: the void or adjustment applied; null when rejected.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub applied: Option<VoidResult>,
}

/// A late correction: negative amounts in an open month, pointing at the original meal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdjustmentLine {
    pub id: i64,
    /// The original meal.
    pub settlement_id: Uuid,
    /// The month the line is counted in (`YYYY-MM`).
    pub period: String,
    /// The month of the original meal (`YYYY-MM`).
    pub original_period: String,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    /// The town whose finance paid the town share.
    pub funding_town: Option<String>,
    pub reason: String,
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// `POST /api/v1/months/{month}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CloseMonth {
    /// With the administrator's token: who closes it (default `admin`); a signed-in user is
    /// named by their account.
    #[serde(default)]
    pub by: Option<String>,
    /// Needed when the month still has red flags nobody reviewed: why it closes anyway.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub open_flags_reason: Option<String>,
}

/// A closed month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthClosed {
    /// `YYYY-MM`.
    pub month: String,
    pub closed_at: DateTime<chrono::Utc>,
    pub closed_by: String,
}

/// The monthly finance statement. Every section's `total` equals the sum of its lines to the fen,
/// and all sections agree on the grand total (meals plus adjustments of the month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statement {
    /// `YYYY-MM`.
    pub month: String,
    /// The canteen the statement is limited to, if any.
    pub canteen: Option<CanteenId>,
    /// The town the statement is limited to, if any.
    pub town: Option<String>,
    /// Whether the month is closed.
    pub closed: bool,
    /// Per canteen.
    pub canteens: Vec<CanteenLine>,
    pub canteens_total: Amounts,
    /// Per resident.
    pub residents: Vec<ResidentLine>,
    pub residents_total: Amounts,
    /// Per funding source (the town source per paying town).
    pub funding: Vec<FundingLine>,
    pub funding_total: Fen,
    /// Late corrections of earlier, closed months counted in this one.
    pub adjustments: Vec<AdjustmentLine>,
    pub adjustments_total: Amounts,
    /// Voided meals of the month: listed, not counted.
    pub voided: Vec<VoidedLine>,
    /// Counted meals that reached the server late: in the totals, listed apart.
    pub late: Vec<LateLine>,
    /// Subsidy withheld from the month's meals behind confirmed red flags: the meals stay in the
    /// totals above; `payable` is what finance pays.
    pub withheld: Vec<WithheldLine>,
    /// The subsidy withheld in all.
    pub withheld_total: Fen,
    /// What finance pays the canteens for the meals: `total.subsidy`, less the canteens' own
    /// discounts (`total.canteen`) and less the subsidy withheld (`withheld_total`, of which
    /// no canteen discount).
    pub payable: Fen,
    /// Operating subsidies (运营补贴) to the canteens, per canteen and funder, paid beside the
    /// meals (not in `payable`); `operating_total` equals `total.operating`.
    #[serde(default)]
    pub operating: Vec<OperatingLine>,
    /// The operating subsidies in all.
    #[serde(default)]
    pub operating_total: Fen,
    /// What finance pays the canteens in operating subsidies: `operating_total` less that of
    /// the meals whose subsidy is withheld.
    #[serde(default)]
    pub operating_payable: Fen,
    /// 人户分离 clearing: meals whose subsidy town (paying) is not the canteen's town (serving),
    /// per pair of towns, for the towns to settle between them.
    #[serde(default)]
    pub clearing: Vec<ClearingLine>,
    /// Per kiosk whose meals are in this statement: did its signed hash chain verify?
    pub chains: Vec<ChainLine>,
    /// Every row of the month against the server's MAC: edited or inserted outside the server?
    pub books: BooksCheck,
    /// Where the books end as this statement is made: keep them, and check later that nothing
    /// after them was removed (`GET /integrity/heads`).
    pub heads: Heads,
    /// The grand total: meals plus adjustments of the month.
    pub total: Amounts,
    /// Meals in `total` that a registered carer collected for the resident (代取), named on
    /// their rows and counted apart.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub proxy_meals: i64,
}

/// The operating subsidy one funder pays one canteen for the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatingLine {
    pub canteen_id: CanteenId,
    /// The funder.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::FundingSource))]
    pub source: String,
    pub source_zh: String,
    /// The meals (or diner-days) it is paid for.
    pub meals: i64,
    pub fen: Fen,
}

/// Meals served in one town and subsidised by another (人户分离): the paying town owes the
/// serving town's canteens `subsidy` (of which `town` is the town finance's own share).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClearingLine {
    pub paying_town: String,
    pub serving_town: String,
    pub meals: i64,
    pub subsidy: Fen,
    pub town: Fen,
}

/// A meal whose subsidy is withheld because a red flag over it was confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WithheldLine {
    pub settlement_id: Uuid,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    /// The confirmed flag's `key`.
    pub flag_key: String,
    /// The town whose finance would have paid the town share.
    pub funding_town: Option<String>,
    /// The meal's subsidy, withheld, and its parts by funder.
    pub subsidy: Fen,
    pub city: Fen,
    pub town: Fen,
    pub other: Fen,
    /// Who confirmed the flag.
    pub by: String,
    /// Of `subsidy`, the canteen's own discount (no finance pays it, so none is withheld).
    #[serde(default)]
    pub canteen: Fen,
    /// Of `subsidy`, the county's (县区) part.
    #[serde(default)]
    pub county: Fen,
    /// The meal's operating subsidy, withheld with it.
    #[serde(default)]
    pub operating: Fen,
}

/// The books check of one month: each settlement and adjustment row against the keyed MAC the
/// server made when it wrote (or voided) it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BooksCheck {
    /// Rows checked.
    pub checked: i64,
    /// Rows whose columns no longer match their MAC (changed, or written without the server's
    /// key).
    pub altered_count: i64,
    /// The first hundred altered rows: `settlement:<uuid>`, `adjustment:<id>`.
    pub altered: Vec<String>,
    /// Accepted staff meals the audit log records whose row is gone (`settlement:<uuid>`).
    pub missing: Vec<String>,
}

impl BooksCheck {
    pub fn verified(&self) -> bool {
        self.altered_count == 0 && self.missing.is_empty()
    }
}

/// The newest audit entry and each kiosk's newest signed record, as a statement is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heads {
    /// The newest audit entry's `seq` and `hash`.
    pub audit_seq: i64,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{64}$"))]
    pub audit_hash: String,
    pub kiosks: Vec<KioskHead>,
    /// All of it on one line, to copy from an export and check later:
    /// `zhucan-heads:v1;audit=<seq>:<hash>;kiosk=<id>:<seq>:<hash>;…`.
    pub token: String,
}

/// A kiosk's newest signed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KioskHead {
    pub kiosk_id: i64,
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807i64))]
    pub seq: u64,
    /// Hex sha256 of the record the kiosk signed.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{64}$"))]
    pub hash: String,
}

const HEADS_PREFIX: &str = "zhucan-heads:v1";

impl Heads {
    pub fn new(audit_seq: i64, audit_hash: String, kiosks: Vec<KioskHead>) -> Heads {
        let mut token = format!("{HEADS_PREFIX};audit={audit_seq}:{audit_hash}");
        for k in &kiosks {
            token.push_str(&format!(";kiosk={}:{}:{}", k.kiosk_id, k.seq, k.hash));
        }
        Heads {
            audit_seq,
            audit_hash,
            kiosks,
            token,
        }
    }

    /// Reads a [`Heads::token`] back; the error says which part is wrong.
    pub fn parse(token: &str) -> Result<Heads, String> {
        let mut parts = token.trim().split(';');
        if parts.next() != Some(HEADS_PREFIX) {
            return Err(format!("does not start with '{HEADS_PREFIX}'"));
        }
        let hash = |h: &str, part: &str| {
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(h.to_ascii_lowercase())
            } else {
                Err(format!("'{part}': the hash is not 64 hex digits"))
            }
        };
        let mut audit = None;
        let mut kiosks = Vec::new();
        for part in parts {
            if let Some(rest) = part.strip_prefix("audit=") {
                let (seq, h) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("'{part}': expected audit=<seq>:<hash>"))?;
                let seq: i64 = seq
                    .parse()
                    .map_err(|_| format!("'{part}': the seq is not a number"))?;
                audit = Some((seq, hash(h, part)?));
            } else if let Some(rest) = part.strip_prefix("kiosk=") {
                let mut f = rest.splitn(3, ':');
                let (Some(id), Some(seq), Some(h)) = (f.next(), f.next(), f.next()) else {
                    return Err(format!("'{part}': expected kiosk=<id>:<seq>:<hash>"));
                };
                kiosks.push(KioskHead {
                    kiosk_id: id
                        .parse()
                        .map_err(|_| format!("'{part}': the kiosk id is not a number"))?,
                    seq: seq
                        .parse()
                        .map_err(|_| format!("'{part}': the seq is not a number"))?,
                    hash: hash(h, part)?,
                });
            } else if !part.is_empty() {
                return Err(format!("'{part}': expected audit=… or kiosk=…"));
            }
        }
        let (seq, h) = audit.ok_or("no audit=<seq>:<hash> part")?;
        Ok(Heads::new(seq, h, kiosks))
    }
}

/// Whether the books still hold the heads of an earlier export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeadsCheck {
    /// Every head is still there, unchanged.
    pub ok: bool,
    pub audit: HeadVerdict,
    pub kiosks: Vec<HeadVerdict>,
    /// Where the books end now.
    pub now: Heads,
}

/// Whether one head of an earlier export is still in the books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeadVerdict {
    /// `audit` (the audit log's head) or `kiosk` (a kiosk's chain head).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HeadSubject))]
    pub what: String,
    /// With `kiosk`: which.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub kiosk_id: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807i64))]
    pub seq: u64,
    /// `present`, `removed` (the entry is gone: the log was cut) or `rewritten`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::HeadState))]
    pub verdict: String,
    pub verdict_zh: String,
    /// For a removed kiosk head: the kiosk's last seq now.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, maximum = 9223372036854775807i64)
    )]
    pub now_seq: Option<u64>,
}

impl HeadVerdict {
    pub fn present(what: &str, kiosk_id: Option<i64>, seq: u64) -> HeadVerdict {
        HeadVerdict {
            what: what.into(),
            kiosk_id,
            seq,
            verdict: "present".into(),
            verdict_zh: "仍在，未被改动".into(),
            now_seq: None,
        }
    }
}

/// One kiosk's chain check in a statement (meals entered on the server itself have
/// `kiosk_id: None` and status `unsigned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainLine {
    /// Null for meals entered on the server itself.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub kiosk_id: Option<i64>,
    pub kiosk_name: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub canteen_id: Option<CanteenId>,
    /// Counted meals of the month from this kiosk.
    pub meals: i64,
    /// Of `meals`, those staff confirmed by hand.
    pub staff_meals: i64,
    /// The chain's first `seq` seen so far (all time, not only this month).
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, maximum = 9223372036854775807i64)
    )]
    pub first_seq: Option<u64>,
    /// The chain's last `seq` seen so far (all time, not only this month).
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, maximum = 9223372036854775807i64)
    )]
    pub last_seq: Option<u64>,
    /// `verified`, `flagged` (whole, but face meals signed below the kiosk's own reported
    /// thresholds: problems of kind `below_threshold`), `broken` (gaps or forks below) or
    /// `unsigned`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ChainStatus))]
    pub status: String,
    pub status_zh: String,
    pub problems: Vec<ChainProblem>,
}

/// A flaw in a kiosk's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainProblem {
    /// `gap` (records `seq_from..=seq_to` never arrived), `fork` (a record at `seq_from` whose
    /// `prev_hash` does not match its predecessor, or two different records claimed one `seq`:
    /// refused), `bad_signature` (records refused for a signature that did not verify),
    /// `below_threshold` (a face meal accepted with a score below the kiosk's own reported
    /// threshold), `tampered` and `unsigned` (found only by the full re-verification: a stored
    /// record or settlement row changed; a settlement row with no signed record), `altered` (the
    /// server's decision or void on a settlement row no longer matches the books MAC).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ChainProblemKind))]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807i64))]
    pub seq_from: u64,
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807i64))]
    pub seq_to: u64,
    pub detail: String,
}

/// One canteen's meals of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CanteenLine {
    pub canteen_id: CanteenId,
    pub name: String,
    /// The canteen's town code (`town` is taken by the town-funded amount).
    pub town_code: String,
    #[serde(flatten)]
    pub amounts: Amounts,
    /// Of `meals`, those a registered carer collected (代取).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub proxy_meals: i64,
}

/// One resident's meals of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResidentLine {
    pub resident_id: ResidentId,
    pub name: String,
    pub national_id_masked: String,
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// One funding source's subsidy; the town source has one line per paying town.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FundingLine {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::FundingSource))]
    pub source: String,
    pub source_zh: String,
    /// The paying town (source `town`) or district (source `county`).
    pub town: Option<String>,
    pub fen: Fen,
}

/// A counted meal that reached the server late (more than the server's `--late-after-hours`
/// after it was served): in the totals, and listed here so finance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LateLine {
    pub settlement_id: Uuid,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    pub kiosk_id: Option<i64>,
    pub local_date: NaiveDate,
    pub served_at: DateTime<chrono::Utc>,
    pub received_at: DateTime<chrono::Utc>,
    /// Whole hours between serving and receipt.
    pub late_hours: i64,
    pub subsidy: Fen,
}

/// A voided meal of the month: listed, not counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VoidedLine {
    pub settlement_id: Uuid,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    pub local_date: NaiveDate,
    pub price: Fen,
    pub subsidy: Fen,
    pub reason: String,
}

/// A stored policy as listed by `GET /api/v1/policies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySummary {
    pub id: String,
    pub version: u32,
    pub name: String,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
    /// The policy document as stored.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::Policy))]
    pub document: serde_json::Value,
}

// ---------------------------------------------------------------------------------------------
// Kiosk enrolment and sync (issue: kiosk runtime). The kiosk pulls roster, policy and gallery
// changes incrementally with a cursor, uploads templates it enrols, and reports its health.
// ---------------------------------------------------------------------------------------------

/// `POST /api/v1/kiosks/enrolment-codes` (admin): a one-time code a new kiosk uses to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEnrolmentCode {
    /// The canteen the new kiosk will serve.
    pub canteen_id: CanteenId,
    /// The new kiosk's name.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub name: String,
}

/// A one-time kiosk enrolment code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolmentCode {
    /// 8 groups of 3 characters. Shown once; valid until `expires_at` and for one registration
    /// only.
    pub code: String,
    pub canteen_id: CanteenId,
    pub expires_at: DateTime<FixedOffset>,
}

/// `POST /api/v1/kiosks/enrol` (no token: the code is the credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KioskEnrol {
    /// The enrolment code: case, spaces and dashes are ignored; O reads as 0, I and L as 1.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub code: String,
    /// The Ed25519 public key the kiosk generated for itself (base64 of its 32 bytes).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^\s*[A-Za-z0-9+/]{43}=*\s*$"))]
    pub public_key: String,
}

/// `POST /api/v1/kiosk/rotate` (kiosk token): hand over to a new key pair and get a new token.
/// Records with `seq >= from_seq` must be signed by the new key; `signature` is the CURRENT key's
/// signature over `signing::rotation_payload``(kiosk_id, from_seq, public_key)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// The new Ed25519 public key (base64 of its 32 bytes).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^\s*[A-Za-z0-9+/]{43}=*\s*$"))]
    pub public_key: String,
    /// Records from this seq on are signed by the new key; after every record already sent.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 9223372036854775807i64)
    )]
    pub from_seq: u64,
    /// The CURRENT key's Ed25519 signature (base64) over the JSON text
    /// `["zhucan-rotate-v1", kiosk_id, from_seq, public_key]`.
    pub signature: String,
}

/// The answer to a rotation: the new bearer token (shown once; the old one stops working).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRotated {
    pub kiosk_id: i64,
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 9223372036854775807i64)
    )]
    pub from_seq: u64,
    /// The new bearer token, shown once; the old one stops working.
    pub token: String,
}

/// `GET /api/v1/kiosk/sync?since=CURSOR` (kiosk token). `since=0` (or absent) asks for a full
/// snapshot. Every list holds only what changed after `since`; apply them in order, then store
/// `cursor` and pass it next time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    /// Pass as `since` next time.
    pub cursor: i64,
    /// True when this is a full snapshot: drop local residents, templates and policies first.
    pub full: bool,
    pub kiosk_id: i64,
    /// The kiosk's own canteen, with its slots.
    pub canteen: crate::Canteen,
    /// Every policy version (they are small); the kiosk selects by date like the server.
    pub policies: Vec<crate::Policy>,
    /// Residents added or changed, as a kiosk holds them: the decision's facts, the name, a keyed
    /// hash of the card code; no ID number, sex or clear card code.
    pub residents: Vec<KioskResident>,
    /// This kiosk's card-index key (base64 of 32 bytes): a resident's or carer's `card` is the
    /// hex HMAC-SHA256 of the trimmed card code under it (`card_index`). Each kiosk has its own
    /// key, derived on the server.
    #[cfg_attr(feature = "openapi", schema(content_encoding = "base64"))]
    pub card_key: String,
    /// Templates added or replaced: all of a resident's templates, replacing what the kiosk holds.
    pub templates: Vec<TemplateSet>,
    /// Residents whose templates this kiosk must delete now (consent withdrawn, sharing withdrawn,
    /// death, deletion, re-enrolment elsewhere without sharing).
    pub purged: Vec<ResidentId>,
    /// Accepted, not voided meals of the current month (at any canteen) that the kiosk needs to
    /// decide offline with the same history as the server (caps, duplicates).
    pub meals: Vec<HistoryMeal>,
    /// Meals voided since `since`: drop them from the local history.
    pub voided: Vec<Uuid>,
    /// Every registered carer (代取人) with a linked resident, in every answer: the kiosk
    /// replaces what it holds. Absent from older servers' answers: no carers.
    #[serde(default)]
    pub carers: Vec<KioskCarer>,
}

/// A carer as a kiosk holds them: the name, the card code as a keyed hash under the kiosk's
/// card key (`card_index`), and the residents whose meals they may collect (代取).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SyncCarer))]
#[serde(deny_unknown_fields)]
pub struct KioskCarer {
    pub id: i64,
    pub name: String,
    /// Hex HMAC-SHA256 of the carer's card code under the kiosk's `card_key`.
    pub card: String,
    /// The residents whose meals the carer may collect.
    pub residents: Vec<ResidentId>,
}

/// A resident as a kiosk holds them: exactly what its offline decision and its screen need. The
/// kiosk holds every resident of the city (an elder may eat at any canteen), so a stolen kiosk's
/// disk leaks this and no more: name, the decision's facts (`diner`: birth date, categories,
/// status, towns, prepaid balance) and a keyed hash of the card code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SyncResident))]
#[serde(deny_unknown_fields)]
pub struct KioskResident {
    pub diner: crate::Diner,
    /// Shown on the screen and spoken.
    pub name: String,
    /// Hex HMAC-SHA256 of the card code under the kiosk's `card_key` (`card_index`); null
    /// without a card.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub card: Option<String>,
}

impl KioskResident {
    pub fn id(&self) -> ResidentId {
        self.diner.id
    }
}

/// The keyed hash by which a kiosk finds a resident from a card code typed or read at the counter:
/// hex HMAC-SHA256 of the trimmed code under the kiosk's card key. The clear code is not on the
/// kiosk; with the key (on the same disk) a short code can still be found by trying them all, so
/// the hash keeps the roster from being read, not from being searched.
pub fn card_index(key: &[u8], code: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(code.trim().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Decodes a base64 key of the wire ([`SyncResponse::card_key`]); `None` if it is not base64.
pub fn decode_key(s: &str) -> Option<Vec<u8>> {
    base64_decode(s)
}

/// Encodes a key for the wire.
pub fn encode_key(key: &[u8]) -> String {
    base64_encode(key)
}

/// A resident's face templates, as sent to a kiosk that may hold them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSet {
    pub resident_id: ResidentId,
    /// The canteen where they were enrolled.
    pub enrolled_canteen: CanteenId,
    /// The embedder they were made with (manifest `file` of the embedder); a kiosk ignores
    /// templates of another model.
    pub model: String,
    /// Unit-length embeddings, base64 of little-endian f32.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::Embedding>))]
    pub embeddings: Vec<String>,
}

/// An accepted, not voided meal of the month, as the kiosk's offline decision needs it (caps,
/// duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryMeal {
    /// The settlement id.
    pub id: Uuid,
    pub resident_id: ResidentId,
    pub date: NaiveDate,
    pub slot: Slot,
    /// The meal's subsidy under its tier (`PriorMeal::subsidy`): without stacked subsidies and
    /// the delivery subsidy.
    pub subsidy: Fen,
}

/// `PUT /api/v1/residents/{id}/templates` (kiosk token, or admin): replaces the resident's
/// templates after enrolment at the kiosk, recording the consent given at the counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplateUpload {
    /// Must be true: face enrolment needs separate consent.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::face_enrolment_consent))]
    pub consent_face_enrolment: bool,
    /// Whether the templates may leave the enrolling canteen.
    pub consent_template_sharing: bool,
    /// Who recorded the consent (operator name or id at the kiosk).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"\S")
    )]
    pub by: String,
    /// The embedder the templates were made with (manifest `file` of the embedder).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = r"\S")
    )]
    pub model: String,
    /// 1 to 5 unit-length embeddings, base64 of little-endian f32.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::Embedding>, min_items = 1, max_items = 5))]
    pub embeddings: Vec<String>,
    /// Staff judged that this face, which matches another resident's (409 `duplicate_face`), is
    /// nonetheless this resident's (twins, a look-alike): the enrolment goes ahead and the pair
    /// is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_confirmed: Option<DuplicateConfirmed>,
}

/// A staff confirmation in a template upload: the other resident the face matched, and why
/// the two are different people (1 to 200 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DuplicateConfirmed {
    /// The resident the face matched (`duplicate_of` of the 409 answer).
    pub other_resident_id: ResidentId,
    /// Why the two are different people.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub reason: String,
}

/// `GET /api/v1/lookalikes`, `POST /api/v1/lookalikes/scan` (administrator; listing also
/// finance): two residents whose face templates look like one person's. `state` is `confirmed`
/// (staff enrolled the second with a reason) or `found` (by a scan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Lookalike {
    pub resident_a: ResidentId,
    pub name_a: String,
    pub resident_b: ResidentId,
    pub name_b: String,
    /// The best cosine similarity between a template of each.
    #[cfg_attr(feature = "openapi", schema(minimum = -1, maximum = 1))]
    pub score: f64,
    /// `confirmed` (staff enrolled the second with a reason) or `found` (by a scan).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::LookalikeState))]
    pub state: String,
    /// With `confirmed`: the staff's reason.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    /// With `confirmed`: who confirmed.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub by: Option<String>,
    /// When the pair was confirmed or found.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub at: String,
}

/// The answer to `DELETE /api/v1/residents/{id}/templates`: how many templates were deleted and
/// the sync cursor (change-log `seq`) at which the deletion is recorded. A kiosk that deleted the
/// templates itself ignores template sets for the resident from any sync answer older than this
/// cursor, so a stale answer cannot bring the face data back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TemplatesDeleted {
    /// Templates deleted.
    pub deleted: i64,
    /// The sync cursor (change-log seq) that records the deletion.
    pub cursor: i64,
}

/// `POST /api/v1/kiosk/heartbeat` (kiosk token): what staff see as the kiosk's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Settlements waiting in the kiosk's outbox.
    pub outbox_backlog: u32,
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub software_version: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub model_version: String,
    /// The cursor of the kiosk's last sync.
    #[serde(default)]
    pub last_sync_cursor: Option<i64>,
    /// The match score the kiosk now requires to accept a face (its open-set threshold at its
    /// gallery size), 0..=1. A face meal it posts below this is flagged on its chain.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub match_threshold: Option<f64>,
    /// The liveness score the kiosk requires, 0..=1 (flagged the same way).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub liveness_threshold: Option<f64>,
}

/// A kiosk as `GET /api/v1/kiosks` (admin) lists it, with what its last heartbeat said.
/// (Additive to the kiosk-sync contract: the server's listing and revoke answer.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KioskStatus {
    pub id: i64,
    pub canteen_id: CanteenId,
    pub name: String,
    pub created_at: DateTime<chrono::Utc>,
    pub revoked_at: Option<DateTime<chrono::Utc>>,
    /// When the server last heard a heartbeat (server clock); null before the first one.
    pub last_seen_at: Option<DateTime<chrono::Utc>>,
    /// What the last heartbeat said.
    pub outbox_backlog: Option<u32>,
    pub software_version: Option<String>,
    pub model_version: Option<String>,
    pub last_sync_cursor: Option<i64>,
    /// The match threshold it last reported.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub match_threshold: Option<f64>,
    /// The liveness threshold it last reported.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub liveness_threshold: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Audit red flags (issue 12): patterns finance looks at before it closes a month.

/// How much a flag needs a look: `high`, `medium` or `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Severity::High => "高",
            Severity::Medium => "中",
            Severity::Low => "低",
        }
    }
}

/// One red flag of a month: a pattern that needs a look, with the evidence to decide it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Flag {
    /// Stable for the same finding in the same month (`<kind>:<subject>:<detail>`): reviews are
    /// keyed by it.
    pub key: String,
    /// `above_roster`, `jump`, `flat_count`, `closed_day`, `two_canteens`, `after_death`,
    /// `while_away`, `manual_share`, `manual_share_operator`, `late_upload`, `borderline_scores`,
    /// `score_drift`, `lookalike`, `spot_check`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FlagKind))]
    pub kind: String,
    pub severity: Severity,
    /// `YYYY-MM`.
    pub month: String,
    /// The canteen, resident or kiosk the flag is about, where it is about one.
    pub canteen_id: Option<CanteenId>,
    pub resident_id: Option<ResidentId>,
    pub kiosk_id: Option<i64>,
    /// What this is, in Chinese.
    pub title_zh: String,
    /// What this is, in English.
    pub title_en: String,
    /// What the rule expected (short, with the numbers).
    pub expected: String,
    /// What was seen (short, with the numbers).
    pub seen: String,
    /// The accepted meals behind the flag: at most 500 ids; `meals` counts them all.
    #[cfg_attr(feature = "openapi", schema(max_items = 500))]
    pub settlement_ids: Vec<Uuid>,
    /// The accepted meals behind the flag.
    pub meals: i64,
    /// Their subsidy: what confirming the flag withholds.
    pub subsidy: Fen,
    /// The dashboard page with the meals behind it.
    pub link: String,
    /// The review, once somebody looked.
    pub review: Option<FlagReview>,
}

/// `POST /api/v1/flags/review`: a decision on one flag of an open month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FlagDecision {
    /// The flag's month, `YYYY-MM`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{4}-[0-9]{2}$"))]
    pub month: String,
    /// The flag's `key`.
    pub key: String,
    /// `explained` (the meals stand) or `confirmed` (their subsidy is withheld).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FlagReviewState))]
    pub state: String,
    /// Why: 1 to 500 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 500, pattern = r"\S")
    )]
    pub note: String,
}

/// The answer to a flag decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagReviewed {
    pub flag: Flag,
    /// Meals whose subsidy this decision withheld.
    pub withheld_meals: u64,
    /// The subsidy this decision withheld.
    pub withheld: Fen,
    /// Meals an earlier confirmation had withheld that this decision released.
    pub released_meals: u64,
}

/// `PUT /api/v1/canteens/{id}/closed-days`: days the canteen does not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClosedDays {
    /// 1 to 366 local dates.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 366))]
    pub dates: Vec<NaiveDate>,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub reason: String,
}

/// `POST /api/v1/residents/{id}/absences`: the resident is away (hospital, family elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAbsence {
    /// The first day away.
    pub from: NaiveDate,
    /// The last day away.
    pub to: NaiveDate,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub reason: String,
}

/// A recorded absence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AbsenceCreated {
    pub id: i64,
}

/// What a reviewer decided about a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagReview {
    /// `explained` (the meals stand) or `confirmed` (their subsidy is withheld).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FlagReviewState))]
    pub state: String,
    pub note: String,
    /// Who reviewed it.
    pub by: String,
    pub at: DateTime<chrono::Utc>,
}

/// The body of `POST /api/v1/spot-checks`: an unannounced visit (抽查) where an auditor counted
/// the diners at a canteen during a window of one local day. The date and times are local, in
/// the configured zone; `window_start < window_end`; the date is not after today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSpotCheck {
    pub canteen_id: CanteenId,
    /// The local date of the visit (`YYYY-MM-DD`, configured zone); not after today.
    pub date: NaiveDate,
    /// Local times (`HH:MM` or `HH:MM:SS`) of that date; `window_start < window_end`. The window
    /// covers meals served at or after its start and before its end.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub window_start: NaiveTime,
    /// See `window_start`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub window_end: NaiveTime,
    /// Heads counted, at least 0.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100000))]
    pub headcount: i64,
    /// At most 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub note: String,
}

/// A recorded spot check and what the canteen recorded in its window: accepted, not voided
/// meals at that canteen served in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpotCheck {
    pub id: i64,
    pub canteen_id: CanteenId,
    pub canteen_name: String,
    pub date: NaiveDate,
    pub window_start: NaiveTime,
    pub window_end: NaiveTime,
    pub headcount: i64,
    /// The inspector: the dashboard user's name (or `admin-token`).
    pub inspector: String,
    pub note: String,
    pub created_at: DateTime<chrono::Utc>,
    /// Meals recorded in the window, in all and (`recorded_face`, `recorded_card`,
    /// `recorded_staff`) by method.
    pub recorded: i64,
    pub recorded_face: i64,
    pub recorded_card: i64,
    pub recorded_staff: i64,
    /// `recorded - headcount`: positive when more meals were recorded than heads counted.
    pub difference: i64,
    /// The subsidy of those meals.
    pub subsidy: Fen,
    /// The meals, in the order served.
    pub settlement_ids: Vec<Uuid>,
}

// ---------------------------------------------------------------------------------------------
// Audit log, face-data count and national-ID reveal (issue 6: integrity, security and privacy).

/// One entry of the append-only, hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    /// UTC RFC 3339, as stored.
    pub at: String,
    /// A dashboard user's name, `admin-token` or `kiosk:<id>`.
    pub actor: String,
    pub role: String,
    /// e.g. `settlement.void`, `month.close`, `login.failure`, `statement.export`.
    pub action: String,
    pub target: String,
    /// Any JSON: what the action was about.
    pub detail: serde_json::Value,
    /// The previous entry's `hash`.
    pub prev_hash: String,
    /// This entry's hash, over its fields and `prev_hash`.
    pub hash: String,
}

/// `GET /api/v1/audit?limit=&before=` (admin): a page of entries, newest first, and the verdict
/// of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The whole chain verified from the first entry to the last.
    pub verified: bool,
    /// The first `seq` at which it does not.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub broken_at: Option<i64>,
    /// Entries in the log.
    pub total: i64,
    pub entries: Vec<AuditEntry>,
    /// Pass as `before=` for the next (older) page; null on the last page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_before: Option<i64>,
}

/// `GET /api/v1/face-data` (admin): how many people's face data the server holds, against the
/// number at which the operator must file with the provincial regulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceDataSummary {
    /// Residents with face templates on the server.
    pub residents: i64,
    pub templates: i64,
    /// Of those, residents consenting to their templates being shared with other canteens.
    pub residents_sharing: i64,
    pub by_canteen: Vec<FaceDataCanteen>,
    /// 100,000 people: the filing threshold.
    pub filing_threshold: i64,
    /// 80,000: from here the page warns.
    pub warning_from: i64,
    /// `residents` as a percentage of the threshold.
    pub percent_of_threshold: f64,
    pub warning: bool,
    /// The local month the next counts cover (`YYYY-MM`).
    pub month: String,
    /// Residents who withdrew consent to face enrolment this month.
    pub withdrawals_this_month: i64,
    /// Residents whose templates were deleted this month, in all and (`purged_withdrawal`,
    /// `purged_death`, `purged_deletion`) by reason.
    pub purged_this_month: i64,
    pub purged_withdrawal: i64,
    pub purged_death: i64,
    pub purged_deletion: i64,
}

/// Face data held per canteen of enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceDataCanteen {
    pub canteen_id: CanteenId,
    pub name: String,
    pub residents: i64,
    pub templates: i64,
}

/// `GET /api/v1/residents/{id}/national-id` (admin; audited): the full number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NationalIdReveal {
    pub resident_id: ResidentId,
    pub national_id: String,
    pub national_id_masked: String,
}

/// Encodes unit-length embeddings for the wire (base64 of little-endian f32).
pub fn encode_embedding(v: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    base64_encode(&bytes)
}

/// Decodes [`encode_embedding`]'s output; `None` if it is not base64 of whole f32s.
pub fn decode_embedding(s: &str) -> Option<Vec<f32>> {
    let bytes = base64_decode(s)?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Standard base64 with padding (the `base64` crate), strict: a non-canonical encoding (one
/// whose unused trailing bits are not zero, as in `TWF=`) or missing padding is refused, so one
/// value has exactly one wire form.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// `POST /api/v1/carers`: a carer (family member, neighbour, volunteer) who collects meals for
/// homebound residents (代取) with their own card. `card_code` is unique among carers and never
/// a resident's card code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCarer {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub name: String,
    /// The code printed on the carer's own card.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = r"\S")
    )]
    pub card_code: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub note: Option<String>,
}

/// A carer as the administrator sees them, with the residents they may collect for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Carer))]
pub struct CarerDto {
    pub id: i64,
    pub name: String,
    pub card_code: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub note: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    /// The residents this carer may collect meals for (代取).
    pub residents: Vec<ResidentId>,
}

/// `POST /api/v1/residents/{id}/carers`: links a carer to the resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CarerLink {
    pub carer_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_index_is_the_trimmed_codes_hmac_under_the_kiosks_key() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        assert_eq!(
            card_index(b"Jefe", " what do ya want for nothing? "),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(card_index(&[1; 32], "CARD7"), card_index(&[2; 32], "CARD7"));
    }

    #[test]
    fn embeddings_round_trip_through_base64() {
        let v = vec![0.5f32, -0.25, 1.0e-7, 0.0, 0.333];
        let s = encode_embedding(&v);
        assert_eq!(decode_embedding(&s), Some(v));
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert_eq!(base64_decode("TWE="), Some(b"Ma".to_vec()));
        // one value, one wire form: non-zero unused bits and missing padding are refused
        assert_eq!(base64_decode("TWF="), None);
        assert_eq!(base64_decode("TWE"), None);
        assert_eq!(base64_decode("T WE="), None);
        assert_eq!(decode_embedding("TWE="), None);
        assert_eq!(decode_embedding("!!"), None);
    }
}
