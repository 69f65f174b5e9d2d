//! Schema-only types for the server's OpenAPI document (feature `openapi`).
//!
//! The wire types derive `utoipa::ToSchema` where they are declared. Some of their fields are
//! plain `String`s or maps on the Rust side but promise more on the wire: a closed set of codes,
//! base64 text, a slot-keyed object. The types here describe those shapes; the wire types point
//! at them with `#[schema(value_type = ...)]` or `schema_with`. Nothing here is serialized.
//!
//! Component names of the wire types that differ from their Rust names (the document keeps the
//! names it had before it was derived):
//!
//! | Rust type                    | component          |
//! |------------------------------|--------------------|
//! | `api::ErrorBody`             | `Error`            |
//! | `api::TownDto`               | `Town`             |
//! | `api::DistrictDto`           | `District`         |
//! | `api::SlotDto`               | `SlotWindow`       |
//! | `canteen::SlotWindow`        | `SyncSlotWindow`   |
//! | `api::CanteenDto`            | `Canteen`          |
//! | `canteen::Canteen`           | `SyncCanteen`      |
//! | `api::StatusDto`             | `ResidentStatus`   |
//! | `resident::ResidentStatus`   | `DinerStatus`      |
//! | `api::ConsentDto`            | `Consent`          |
//! | `api::ResidentDto`           | `Resident`         |
//! | `api::KioskResident`         | `SyncResident`     |
//! | `api::KioskCarer`            | `SyncCarer`        |
//! | `api::CarerDto`              | `Carer`            |
//! | `api::FundingDto`            | `FundingSplit`     |
//! | `api::CorrectionDecision`    | `CorrectionApproval` |
//!
//! [`CorrectionRejection`] is the schema of the same body when it rejects (the note required).

use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

/// Why a meal was refused (`RejectionBody::reason`): the codes of the decision's `Rejection`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RejectionReason {
    Duplicate,
    OutsideSlotWindow,
    Suspended,
    Deceased,
    NotEnrolled,
    PriceOutOfRange,
}

/// What a void did (`VoidResult::effect`): `voided` (open month) or `adjusted` (closed month: an
/// adjustment line was added to the next open month).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum VoidEffect {
    Voided,
    Adjusted,
}

/// What a correction does (`Correction::kind`): `void` (the meal's month is open) or
/// `adjustment` (closed: a line in the next open month).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CorrectionKind {
    Void,
    Adjustment,
}

/// Where a correction stands (`Correction::state`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CorrectionState {
    Pending,
    Approved,
    Rejected,
}

/// What a red flag is about (`Flag::kind`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FlagKind {
    AboveRoster,
    Jump,
    FlatCount,
    ClosedDay,
    TwoCanteens,
    AfterDeath,
    WhileAway,
    ManualShare,
    ManualShareOperator,
    LateUpload,
    BorderlineScores,
    ScoreDrift,
    Lookalike,
    SpotCheck,
}

/// A reviewer's decision on a red flag: `explained` (the meals stand) or `confirmed` (their
/// subsidy is withheld).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FlagReviewState {
    Explained,
    Confirmed,
}

/// A kiosk chain's verdict in a statement (`ChainLine::status`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ChainStatus {
    Verified,
    Flagged,
    Broken,
    Unsigned,
}

/// A kind of flaw in a kiosk's chain (`ChainProblem::kind`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ChainProblemKind {
    Gap,
    Fork,
    BadSignature,
    BelowThreshold,
    Tampered,
    Unsigned,
    Altered,
}

/// Which head a verdict is about (`HeadVerdict::what`): the audit log's or a kiosk's chain's.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HeadSubject {
    Audit,
    Kiosk,
}

/// Whether an earlier head is still in the books (`HeadVerdict::verdict`): `present`, `removed`
/// (the entry is gone: the log was cut) or `rewritten`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HeadState {
    Present,
    Removed,
    Rewritten,
}

/// How a look-alike pair was found (`Lookalike::state`): `found` (by a scan) or `confirmed`
/// (staff enrolled the second with a reason).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum LookalikeState {
    Found,
    Confirmed,
}

/// A face template: base64 of a unit-length embedding as little-endian f32 (64 to 1024 values,
/// all templates of one upload of one dimension, unit length within 1e-3).
#[derive(ToSchema)]
#[schema(content_encoding = "base64")]
pub struct Embedding(pub String);

/// A fixed subsidy per meal, in fen (more than 0), for each slot named; slots not named are not
/// subsidised. At least one slot.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct PerMealBenefit {
    #[serde(default)]
    #[schema(minimum = 1)]
    pub breakfast: i64,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub lunch: i64,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub dinner: i64,
}

/// `POST /api/v1/corrections/{id}/reject`: the note is required. (The server reads the body as
/// `CorrectionDecision`, like an approval's, and refuses a rejection without a note.)
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionRejection {
    /// Why: 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub note: String,
}

/// `TemplateUpload::consent_face_enrolment`: a boolean that must be `true`.
pub fn face_enrolment_consent() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
        .description(Some("Must be true: face enrolment needs separate consent."))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};
    use utoipa::openapi::{RefOr, schema::Schema};

    use super::*;
    use crate::api::*;

    /// Adds the schema of `T` and those of every schema it refers to, by component name.
    fn collect<T: ToSchema>(into: &mut Vec<(String, RefOr<Schema>)>) {
        into.push((T::name().into_owned(), T::schema()));
        T::schemas(into);
    }

    /// Every body the server answers or reads, and what they refer to, as JSON; a name may come
    /// more than once.
    fn all() -> Vec<(String, Value)> {
        let mut v = Vec::new();
        collect::<ErrorBody>(&mut v);
        collect::<TownDto>(&mut v);
        collect::<TownDistrict>(&mut v);
        collect::<DistrictDto>(&mut v);
        collect::<NewCanteen>(&mut v);
        collect::<CanteenDto>(&mut v);
        collect::<NewResident>(&mut v);
        collect::<ResidentUpdate>(&mut v);
        collect::<ResidentDto>(&mut v);
        collect::<NewKiosk>(&mut v);
        collect::<KioskCreated>(&mut v);
        collect::<NewEnrolmentCode>(&mut v);
        collect::<EnrolmentCode>(&mut v);
        collect::<KioskEnrol>(&mut v);
        collect::<KeyRotation>(&mut v);
        collect::<KeyRotated>(&mut v);
        collect::<AuditPage>(&mut v);
        collect::<FaceDataSummary>(&mut v);
        collect::<NewSpotCheck>(&mut v);
        collect::<SpotCheck>(&mut v);
        collect::<NationalIdReveal>(&mut v);
        collect::<KioskStatus>(&mut v);
        collect::<Heartbeat>(&mut v);
        collect::<TemplatesDeleted>(&mut v);
        collect::<TemplateUpload>(&mut v);
        collect::<Lookalike>(&mut v);
        collect::<SyncResponse>(&mut v);
        collect::<PolicySummary>(&mut v);
        collect::<crate::Policy>(&mut v);
        collect::<SettlementBatch>(&mut v);
        collect::<BatchResult>(&mut v);
        collect::<Tally>(&mut v);
        collect::<VoidRequest>(&mut v);
        collect::<VoidResult>(&mut v);
        collect::<Correction>(&mut v);
        collect::<CorrectionDecision>(&mut v);
        collect::<CorrectionRejection>(&mut v);
        collect::<CorrectionDecided>(&mut v);
        collect::<CloseMonth>(&mut v);
        collect::<MonthClosed>(&mut v);
        collect::<Flag>(&mut v);
        collect::<FlagDecision>(&mut v);
        collect::<FlagReviewed>(&mut v);
        collect::<ClosedDays>(&mut v);
        collect::<NewAbsence>(&mut v);
        collect::<AbsenceCreated>(&mut v);
        collect::<Statement>(&mut v);
        collect::<ChainLine>(&mut v);
        collect::<HeadsCheck>(&mut v);
        collect::<NewCarer>(&mut v);
        collect::<CarerDto>(&mut v);
        collect::<CarerLink>(&mut v);
        v.into_iter()
            .map(|(name, s)| (name, serde_json::to_value(s).expect("schema as JSON")))
            .collect()
    }

    /// The components as the server's document will hold them.
    fn components() -> BTreeMap<String, Value> {
        all().into_iter().collect()
    }

    fn at<'a>(c: &'a BTreeMap<String, Value>, component: &str, pointer: &str) -> &'a Value {
        let schema = c
            .get(component)
            .unwrap_or_else(|| panic!("no component {component}"));
        schema
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{component}{pointer} is not in {schema:#}"))
    }

    #[test]
    fn no_two_types_share_a_component_name() {
        let mut seen: BTreeMap<String, Value> = BTreeMap::new();
        for (name, schema) in all() {
            if let Some(earlier) = seen.insert(name.clone(), schema.clone()) {
                assert_eq!(
                    earlier, schema,
                    "two different schemas are named {name}: rename one with schema(as = ...)"
                );
            }
        }
        for renamed in [
            "Error",
            "Town",
            "District",
            "SlotWindow",
            "SyncSlotWindow",
            "Canteen",
            "SyncCanteen",
            "ResidentStatus",
            "DinerStatus",
            "Consent",
            "Resident",
            "SyncResident",
            "SyncCarer",
            "Carer",
            "FundingSplit",
            "CorrectionApproval",
            "CorrectionRejection",
        ] {
            assert!(seen.contains_key(renamed), "no component {renamed}");
        }
        assert!(
            !seen.keys().any(|k| k.ends_with("Dto")),
            "{:?}",
            seen.keys()
        );
    }

    #[test]
    fn every_reference_names_a_component() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let c = components();
        let mut found = Vec::new();
        c.values().for_each(|s| refs(s, &mut found));
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            assert!(c.contains_key(name), "{r} names no component");
        }
    }

    #[test]
    fn carried_over_constraints_stay() {
        let c = components();
        // requests
        assert_eq!(
            at(&c, "NewResident", "/properties/national_id/pattern"),
            r"^\s*[0-9]{17}[0-9Xx]\s*$"
        );
        assert_eq!(at(&c, "NewResident", "/additionalProperties"), false);
        assert_eq!(
            at(&c, "NewResident", "/properties/name"),
            &json!({ "type": "string", "minLength": 1, "maxLength": 32, "pattern": r"\S" })
        );
        assert_eq!(
            at(&c, "SettlementBatch", "/properties/items/maxItems"),
            MAX_BATCH
        );
        assert_eq!(
            at(&c, "SettlementItem", "/properties/id/pattern"),
            "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        );
        assert_eq!(at(&c, "SettlementItem", "/properties/id/format"), "uuid");
        assert_eq!(
            at(&c, "SettlementItem", "/properties/counter_price/minimum"),
            0
        );
        assert_eq!(
            at(&c, "SettlementItem", "/properties/liveness_score/maximum"),
            1
        );
        assert_eq!(at(&c, "SlotWindow", "/properties/price/minimum"), 0);
        assert_eq!(
            at(&c, "SlotWindow", "/properties/start/pattern"),
            "^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$"
        );
        assert_eq!(at(&c, "NewCanteen", "/properties/slots/minItems"), 1);
        assert_eq!(
            at(&c, "NewCanteen", "/properties/slots/items/$ref"),
            "#/components/schemas/SlotWindow"
        );
        assert_eq!(
            at(&c, "TemplateUpload", "/properties/embeddings/maxItems"),
            5
        );
        assert_eq!(
            at(
                &c,
                "TemplateUpload",
                "/properties/consent_face_enrolment/enum"
            ),
            &json!([true])
        );
        assert_eq!(at(&c, "Embedding", "/contentEncoding"), "base64");
        assert_eq!(
            at(&c, "SyncResponse", "/properties/card_key/contentEncoding"),
            "base64"
        );
        assert_eq!(at(&c, "ClosedDays", "/properties/dates/maxItems"), 366);
        assert_eq!(
            at(&c, "Heartbeat", "/properties/model_version/maxLength"),
            128
        );
        assert_eq!(at(&c, "KeyRotation", "/properties/from_seq/minimum"), 1);
        // the policy document
        assert_eq!(at(&c, "Policy", "/properties/tiers/minItems"), 1);
        assert_eq!(
            at(&c, "Policy", "/properties/proxy_subsidised/default"),
            true
        );
        assert_eq!(at(&c, "Tier", "/properties/funding/minItems"), 1);
        assert_eq!(at(&c, "PerMealBenefit", "/minProperties"), 1);
        assert_eq!(at(&c, "Caps", "/properties/per_slot_per_day/default"), 1);
        // codes the server promises
        assert_eq!(
            at(&c, "ChainProblemKind", "/enum"),
            &json!([
                "gap",
                "fork",
                "bad_signature",
                "below_threshold",
                "tampered",
                "unsigned",
                "altered"
            ])
        );
        assert_eq!(at(&c, "Fen", "/type"), "integer");
        assert_eq!(at(&c, "Fen", "/format"), "int64");
    }

    #[test]
    fn a_per_meal_benefit_names_the_slots() {
        let c = components();
        let props = at(&c, "PerMealBenefit", "/properties");
        let names: Vec<&str> = props
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        let mut slots: Vec<&str> = crate::Slot::ALL.iter().map(|s| s.as_str()).collect();
        let mut names = names;
        names.sort_unstable();
        slots.sort_unstable();
        assert_eq!(names, slots);
    }

    #[test]
    fn rejection_reasons_are_the_decisions() {
        use crate::{Fen, Rejection, Slot};
        let c = components();
        let listed = at(&c, "RejectionReason", "/enum");
        let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
        // A new kind of rejection fails to compile here: add it below and to `RejectionReason`.
        let _every_kind = |r: Rejection| match r {
            Rejection::Duplicate { .. }
            | Rejection::OutsideSlotWindow
            | Rejection::Suspended
            | Rejection::Deceased { .. }
            | Rejection::NotEnrolled
            | Rejection::PriceOutOfRange { .. } => (),
        };
        for r in [
            Rejection::Duplicate { slot: Slot::Lunch },
            Rejection::OutsideSlotWindow,
            Rejection::Suspended,
            Rejection::Deceased { date },
            Rejection::NotEnrolled,
            Rejection::PriceOutOfRange {
                min: Fen(1),
                max: Fen(2),
            },
        ] {
            assert!(
                listed
                    .as_array()
                    .expect("enum")
                    .contains(&json!(r.as_str())),
                "{} is not listed",
                r.as_str()
            );
        }
    }
}
