//! The subsidy policy: data, versioned, with effective dates. A policy is a list of tiers; a
//! resident gets the single best tier they qualify for (就高不重复).
//!
//! Policies are written as JSON (see `domain/policies/*.json`) and checked by [`Policy::parse`],
//! which names the field and the reason of every problem.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::{CanteenId, Category, Fen, Slot, TownCode};

/// The policy a settlement was judged by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: String,
    pub version: u32,
}

/// Which of the resident's towns the subsidy follows (cities differ): `registration` (户籍地,
/// the town of household registration) or `residence` (居住地, where the resident lives). It
/// decides whose town finance pays, and which town the area and tier conditions look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubsidyTown {
    /// 户籍地: the town of household registration.
    Registration,
    /// 居住地: the town where the resident lives.
    Residence,
}

/// A subsidy policy document (see `domain/policies/*.json`). Cross-field rules (funding
/// percentages add up to 100, unique tier codes, ...) are checked by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The policy's id, shared by its versions.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub version: u32,
    pub name: String,
    /// First day in force.
    pub effective_from: NaiveDate,
    /// Last day in force, inclusive. Absent or null: until replaced.
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
    pub subsidy_town: SubsidyTown,
    /// Towns the policy covers, both for the canteen and for the resident's subsidy town.
    /// Empty: the whole city.
    #[serde(default)]
    pub area_towns: Vec<TownCode>,
    /// A resident gets the single best tier they qualify for (就高不重复).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub tiers: Vec<Tier>,
    /// Whether a meal a registered carer collects for the resident (代取) is subsidised like
    /// the resident's own. Default `true` (and left out of the document when true), so every
    /// policy written before this field decides exactly as before. When `false`, a proxy meal
    /// that would be subsidised is sold at full price with the reason `proxy_not_subsidised`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    #[cfg_attr(feature = "openapi", schema(default = true))]
    pub proxy_subsidised: bool,
    // Fields below were added for the rules real cities publish (issue 13). Each is optional
    // and left out of the document when unused, so a document written before them parses,
    // writes back and decides exactly as before.
    /// Public holidays and 调休 make-up working days, for tiers with `working_days_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<Calendar>,
    /// Subsidy windows (Xuyi: 6:00–9:00, 11:00–13:30, 17:30–19:30). Empty: the whole of the
    /// canteen's slot. A meal served outside every window is sold at full price
    /// (`outside_subsidy_window`), not refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<SubsidyWindow>,
    /// A meal priced below this many fen (delivery fee not counted) gets no subsidy (Zhuhai:
    /// ¥10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1))]
    pub min_price: Option<Fen>,
    /// When present, the delivery fee is its own line: never subsidised by a tier, paid by the
    /// elder less the best delivery subsidy they meet. When absent, the canteen's surcharge is
    /// added to the meal price before the subsidy (as before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Independent subsidies added on top of the best tier, in order (a district top-up, a
    /// canteen discount), each with its own conditions, funder and caps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacked: Vec<Tier>,
    /// An operating subsidy paid to the canteen for subsidised meals (not part of the meal's
    /// price; the elder never sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating: Option<Operating>,
}

/// Public holidays and make-up working days (调休) as the State Council publishes them each
/// year. A working day is a Monday to Friday that is not a holiday, or a listed make-up day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Public holidays.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Saturdays and Sundays that are working days (调休上班).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

impl Calendar {
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.workdays.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date) && date.weekday().number_from_monday() <= 5
    }
}

/// A time window in which meals are subsidised, for one slot or (no slot) any. Both ends
/// belong to it, the end to the whole minute: "11:00–13:30" takes 13:30:59 and not 13:31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubsidyWindow {
    /// The slot the window is for; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// Local time, `HH:MM` or `HH:MM:SS`.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub start: NaiveTime,
    /// Local time, `HH:MM` or `HH:MM:SS`; the whole of its minute belongs to the window.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub end: NaiveTime,
}

impl SubsidyWindow {
    pub fn contains(&self, slot: Slot, time: NaiveTime) -> bool {
        let end = self.end + TimeDelta::minutes(1);
        self.slot.is_none_or(|s| s == slot) && self.start <= time && (time < end || end < self.end)
    }
}

/// The delivery fee as its own line (送餐费), and who may have it paid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Delivery subsidies, for a meal the tiers subsidise: the elder gets the largest one whose
    /// conditions they meet, never more than the fee. Empty: the elder always pays the fee
    /// (Jurong).
    #[serde(default)]
    pub subsidies: Vec<DeliverySubsidy>,
}

/// A delivery subsidy: a fixed amount towards the delivery fee, for elders who meet its
/// conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeliverySubsidy {
    /// Unique among the policy's delivery subsidies.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub conditions: Conditions,
    /// The amount, in fen (more than 0).
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1))]
    pub fen: Fen,
    /// Who pays it.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub funding: Vec<FundingShare>,
}

/// An operating subsidy (运营补贴) paid to the canteen by one funder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Operating {
    /// The amount, in fen (more than 0), per `per`.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1))]
    pub fen: Fen,
    pub per: OperatingBasis,
    /// Who pays it.
    pub source: FundingSource,
}

/// What an operating subsidy is paid for: `meal` (every subsidised meal) or `diner_day` (each
/// diner's first subsidised meal of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperatingBasis {
    /// For every subsidised meal (Shenzhen: ¥2 per meal).
    Meal,
    /// For each diner's first subsidised meal of the day (Beijing: ¥3 per diner per day).
    DinerDay,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A subsidy tier: who qualifies (`conditions`), what they get (`benefit`), who pays
/// (`funding`) and how often (`caps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Unique among the policy's tiers and stacked subsidies.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub conditions: Conditions,
    pub benefit: Benefit,
    /// Who pays the subsidy: fixed amounts first, then percentages of the rest (adding up to 100).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub funding: Vec<FundingShare>,
    #[serde(default)]
    pub caps: Caps,
}

/// All conditions must hold. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Minimum age on the meal date (the birthday counts).
    #[serde(default)]
    pub min_age: Option<u32>,
    /// Maximum age on the meal date, inclusive.
    #[serde(default)]
    pub max_age: Option<u32>,
    /// The resident must have at least one of these categories.
    #[serde(default)]
    pub any_categories: Vec<Category>,
    /// Local household registration (本地户籍) required.
    #[serde(default)]
    pub local_registration: bool,
    /// The resident's subsidy town must be one of these.
    #[serde(default)]
    pub towns: Vec<TownCode>,
    /// The meal must be served at one of these canteens (or, with `own_district`, in the
    /// district of the subsidy town: either will do).
    #[serde(default)]
    pub canteens: Vec<CanteenId>,
    /// The canteen must be in the district (区/县) of the resident's subsidy town (Shenzhen:
    /// the district of household registration).
    #[serde(default, skip_serializing_if = "is_false")]
    pub own_district: bool,
    /// Only on working days, by the policy's `calendar` (Shenzhen: working-day lunch).
    #[serde(default, skip_serializing_if = "is_false")]
    pub working_days_only: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a tier is worth: exactly one of `per_meal`, `per_day` or `percent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Benefit {
    /// A fixed subsidy per meal, per slot. Slots not listed are not subsidised.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::PerMealBenefit))]
    PerMeal(BTreeMap<Slot, Fen>),
    /// A daily amount shared by the day's meals in these slots, in the order they are eaten.
    PerDay {
        /// The daily amount, in fen (more than 0).
        #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1))]
        fen: Fen,
        #[cfg_attr(feature = "openapi", schema(min_items = 1))]
        slots: Vec<Slot>,
    },
    /// A percentage of the meal price, or (`of: remainder`, for a stacked subsidy) of what is
    /// left after the subsidies before it; rounded down to the fen, at most `max`.
    Percent {
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
        percent: u32,
        #[cfg_attr(feature = "openapi", schema(min_items = 1))]
        slots: Vec<Slot>,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(default = "price"))]
        of: PercentOf,
        /// At most this many fen (more than 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1))]
        max: Option<Fen>,
    },
}

/// What a `percent` benefit is a percentage of: `price` (the meal price) or `remainder` (what is
/// left after the subsidies before it; stacked subsidies only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PercentOf {
    #[default]
    Price,
    Remainder,
}

impl Benefit {
    /// What the tier is worth for a meal in `slot` at `price`, before caps: used to pick the
    /// best tier.
    pub fn nominal(&self, slot: Slot, price: Fen) -> Option<Fen> {
        match self {
            Benefit::PerMeal(by_slot) => by_slot.get(&slot).copied(),
            Benefit::PerDay { fen, slots } => slots.contains(&slot).then_some(*fen),
            Benefit::Percent {
                percent,
                slots,
                max,
                ..
            } => slots
                .contains(&slot)
                .then(|| cap(price.percent(*percent), *max)),
        }
    }
}

fn cap(fen: Fen, max: Option<Fen>) -> Fen {
    max.map_or(fen, |m| fen.min(m))
}

/// Who pays a part of a subsidy: `city` (市级财政), `county` (县（区）级财政, a county or a city
/// district), `town` (镇（街道）财政), `other` (其他: welfare lottery funds, charity, ...) or
/// `canteen` (食堂让利: the canteen's own discount, which no finance pays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FundingSource {
    /// 市级财政
    City,
    /// 镇（街道）财政
    Town,
    /// 其他（福彩公益金、慈善等）
    Other,
    /// 县（区）级财政: a county or a city district (Shenzhen's and Zhuhai's district top-up;
    /// Fang County's own finance).
    County,
    /// 食堂让利: the canteen's own discount (Zhuhai's 优特 canteens). Part of what the elder does
    /// not pay, but no finance pays it: the statement's `payable` leaves it out.
    Canteen,
}

impl FundingSource {
    pub const ALL: [FundingSource; 5] = [
        FundingSource::City,
        FundingSource::County,
        FundingSource::Town,
        FundingSource::Other,
        FundingSource::Canteen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FundingSource::City => "city",
            FundingSource::Town => "town",
            FundingSource::Other => "other",
            FundingSource::County => "county",
            FundingSource::Canteen => "canteen",
        }
    }

    pub fn parse(s: &str) -> Option<FundingSource> {
        FundingSource::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            FundingSource::City => "市级财政",
            FundingSource::Town => "镇街财政",
            FundingSource::Other => "其他资金",
            FundingSource::County => "县区财政",
            FundingSource::Canteen => "食堂让利",
        }
    }
}

/// One source's part of a tier's subsidy: a fixed amount (taken first) or a percentage of what
/// remains after the fixed amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FundingShare {
    pub source: FundingSource,
    /// A percentage of what remains after the fixed amounts (give this or `fen`).
    #[serde(default)]
    pub percent: Option<u32>,
    /// A fixed amount in fen, more than 0 (give this or `percent`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1))]
    pub fen: Option<Fen>,
}

/// How often a tier subsidises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Caps {
    /// Subsidised meals per slot per day. Default 1.
    #[serde(default = "one")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, default = 1))]
    pub per_slot_per_day: u32,
    /// Subsidised meals per day, all slots together.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub per_day: Option<u32>,
    /// Subsidised meals per calendar month.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub per_month: Option<u32>,
}

fn one() -> u32 {
    1
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            per_slot_per_day: 1,
            per_day: None,
            per_month: None,
        }
    }
}

/// A problem in a policy document: the field (a JSON path like `tiers[2].funding`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PolicyError {
    pub field: String,
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Policy {
    /// Parses and checks a policy document. A document that does not fit the schema is named
    /// by the JSON path of the offending field (`tiers[2].conditions.max_income`); one that is
    /// not JSON at all, by its line and column.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        let at_line = |e: &serde_json::Error| format!("line {} column {}", e.line(), e.column());
        let mut de = serde_json::Deserializer::from_str(json);
        let policy: Policy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            // A map key that failed to deserialize is an unknown segment, shown as `?`.
            let path = e.path().to_string();
            let path = path.strip_suffix(".?").unwrap_or(&path).to_owned();
            let e = e.into_inner();
            let root = matches!(path.as_str(), "" | "." | "?");
            let field = if root || e.is_syntax() || e.is_eof() {
                at_line(&e)
            } else {
                path
            };
            err(field, e.to_string())
        })?;
        de.end().map_err(|e| err(at_line(&e), e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.id.trim().is_empty() {
            return Err(err("id", "must not be empty"));
        }
        if self.version == 0 {
            return Err(err("version", "must be 1 or more"));
        }
        if let Some(to) = self.effective_to
            && to < self.effective_from
        {
            return Err(err("effective_to", "is before effective_from"));
        }
        if self.tiers.is_empty() {
            return Err(err("tiers", "a policy needs at least one tier"));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            let at = |f: &str| format!("tiers[{i}].{f}");
            if self.tiers[..i].iter().any(|o| o.code == t.code) {
                return Err(err(
                    at("code"),
                    format!("'{}' is used by an earlier tier", t.code),
                ));
            }
            validate_tier(t, &at, false)?;
        }
        for (i, t) in self.stacked.iter().enumerate() {
            let at = |f: &str| format!("stacked[{i}].{f}");
            let earlier = self.tiers.iter().chain(&self.stacked[..i]);
            if earlier.clone().any(|o| o.code == t.code) {
                return Err(err(
                    at("code"),
                    format!("'{}' is used by an earlier tier", t.code),
                ));
            }
            validate_tier(t, &at, true)?;
        }
        self.validate_rules()
    }

    /// The fields added for real cities' rules (issue 13).
    fn validate_rules(&self) -> Result<(), PolicyError> {
        let any_working_days = self
            .tiers
            .iter()
            .chain(&self.stacked)
            .map(|t| &t.conditions)
            .chain(
                self.delivery
                    .iter()
                    .flat_map(|d| d.subsidies.iter().map(|s| &s.conditions)),
            )
            .any(|c| c.working_days_only);
        match &self.calendar {
            None if any_working_days => {
                return Err(err(
                    "calendar",
                    "a condition has working_days_only: give the holidays and make-up working \
                     days (调休) it is judged by",
                ));
            }
            None => {}
            Some(c) => {
                if let Some(d) = c.holidays.iter().find(|d| c.workdays.contains(d)) {
                    return Err(err(
                        "calendar.workdays",
                        format!("{d} is also listed as a holiday"),
                    ));
                }
                if let Some(d) = c
                    .workdays
                    .iter()
                    .find(|d| d.weekday().number_from_monday() <= 5)
                {
                    return Err(err(
                        "calendar.workdays",
                        format!("{d} is a Monday to Friday, a working day already"),
                    ));
                }
            }
        }
        for (i, w) in self.windows.iter().enumerate() {
            if w.end <= w.start {
                return Err(err(format!("windows[{i}].end"), "must be after start"));
            }
        }
        if self.min_price.is_some_and(|f| f.0 <= 0) {
            return Err(err(
                "min_price",
                "must be more than 0 fen; leave it out for none",
            ));
        }
        if let Some(d) = &self.delivery {
            for (i, s) in d.subsidies.iter().enumerate() {
                let at = |f: &str| format!("delivery.subsidies[{i}].{f}");
                if s.code.trim().is_empty() {
                    return Err(err(at("code"), "must not be empty"));
                }
                if d.subsidies[..i].iter().any(|o| o.code == s.code) {
                    return Err(err(at("code"), format!("'{}' appears twice", s.code)));
                }
                if s.fen.0 <= 0 {
                    return Err(err(at("fen"), "must be more than 0 fen"));
                }
                validate_conditions(&s.conditions, &at)?;
                validate_funding(&s.funding).map_err(|reason| err(at("funding"), reason))?;
            }
        }
        if let Some(o) = &self.operating
            && o.fen.0 <= 0
        {
            return Err(err("operating.fen", "must be more than 0 fen"));
        }
        Ok(())
    }

    pub fn reference(&self) -> PolicyRef {
        PolicyRef {
            id: self.id.clone(),
            version: self.version,
        }
    }

    pub fn in_force_on(&self, date: NaiveDate) -> bool {
        self.effective_from <= date && self.effective_to.is_none_or(|to| date <= to)
    }

    /// The policy in force on `date`: of those whose window contains it, the one that started
    /// last (then the highest version).
    pub fn select(policies: &[Policy], date: NaiveDate) -> Option<&Policy> {
        policies
            .iter()
            .filter(|p| p.in_force_on(date))
            .max_by_key(|p| (p.effective_from, p.version))
    }

    /// The Yiwu-style example shipped with the code (`domain/policies/yiwu.json`).
    pub fn example_yiwu() -> Policy {
        Policy::parse(include_str!("../policies/yiwu.json")).expect("shipped policy is valid")
    }

    /// The Shenzhen-style example shipped with the code (`domain/policies/shenzhen.json`).
    pub fn example_shenzhen() -> Policy {
        Policy::parse(include_str!("../policies/shenzhen.json")).expect("shipped policy is valid")
    }
}

fn validate_conditions(c: &Conditions, at: &dyn Fn(&str) -> String) -> Result<(), PolicyError> {
    if let (Some(lo), Some(hi)) = (c.min_age, c.max_age)
        && hi < lo
    {
        return Err(err(at("conditions.max_age"), "is below min_age"));
    }
    Ok(())
}

/// One tier's checks; `stacked`: it is added on top of the best tier, so a percentage may be
/// of the remainder.
fn validate_tier(t: &Tier, at: &dyn Fn(&str) -> String, stacked: bool) -> Result<(), PolicyError> {
    if t.code.trim().is_empty() {
        return Err(err(at("code"), "must not be empty"));
    }
    validate_conditions(&t.conditions, at)?;
    match &t.benefit {
        Benefit::PerMeal(by_slot) => {
            if by_slot.is_empty() {
                return Err(err(at("benefit.per_meal"), "names no slot"));
            }
            if let Some((s, _)) = by_slot.iter().find(|(_, f)| f.0 <= 0) {
                return Err(err(
                    at(&format!("benefit.per_meal.{}", s.as_str())),
                    "must be more than 0 fen",
                ));
            }
        }
        Benefit::PerDay { .. } if stacked => {
            return Err(err(
                at("benefit.per_day"),
                "a daily amount is shared by the day's meals under one tier: give a stacked \
                 subsidy per_meal or percent",
            ));
        }
        Benefit::PerDay { fen, slots } => {
            if fen.0 <= 0 {
                return Err(err(at("benefit.per_day.fen"), "must be more than 0 fen"));
            }
            if slots.is_empty() {
                return Err(err(at("benefit.per_day.slots"), "names no slot"));
            }
        }
        Benefit::Percent {
            percent,
            slots,
            of,
            max,
        } => {
            if !(1..=100).contains(percent) {
                return Err(err(
                    at("benefit.percent.percent"),
                    "must be between 1 and 100",
                ));
            }
            if slots.is_empty() {
                return Err(err(at("benefit.percent.slots"), "names no slot"));
            }
            if max.is_some_and(|m| m.0 <= 0) {
                return Err(err(at("benefit.percent.max"), "must be more than 0 fen"));
            }
            if *of == PercentOf::Remainder && !stacked {
                return Err(err(
                    at("benefit.percent.of"),
                    "a tier is the first subsidy, so its remainder is the price: use \
                     \"price\", or move it to stacked",
                ));
            }
        }
    }
    validate_funding(&t.funding).map_err(|reason| err(at("funding"), reason))?;
    if t.caps.per_slot_per_day == 0 {
        return Err(err(at("caps.per_slot_per_day"), "must be 1 or more"));
    }
    if t.caps.per_day == Some(0) || t.caps.per_month == Some(0) {
        return Err(err(
            at("caps"),
            "a cap of 0 would subsidise nothing; leave it out",
        ));
    }
    Ok(())
}

fn validate_funding(shares: &[FundingShare]) -> Result<(), String> {
    let mut percent_total = 0;
    let mut any_percent = false;
    for (j, s) in shares.iter().enumerate() {
        if shares[..j].iter().any(|o| o.source == s.source) {
            return Err(format!("{} appears twice", s.source.as_str()));
        }
        match (s.percent, s.fen) {
            (Some(p), None) if p > 100 => {
                // Bounding each share also keeps the u32 total from wrapping round to 100.
                let source = s.source.as_str();
                return Err(format!(
                    "{source}: a percent share must be between 0 and 100"
                ));
            }
            (Some(p), None) => {
                any_percent = true;
                percent_total += p;
            }
            (None, Some(f)) if f.0 > 0 => {}
            (None, Some(_)) => {
                return Err(format!("{}: fen must be more than 0", s.source.as_str()));
            }
            _ => {
                return Err(format!(
                    "{}: give exactly one of percent or fen",
                    s.source.as_str()
                ));
            }
        }
    }
    if !any_percent {
        return Err("at least one source must take a percent share of the remainder".into());
    }
    if percent_total != 100 {
        return Err(format!("percent shares add up to {percent_total}, not 100"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn nominal_benefit_by_slot() {
        let per_meal = Benefit::PerMeal(BTreeMap::from([(Slot::Lunch, Fen(500))]));
        assert_eq!(per_meal.nominal(Slot::Lunch, Fen(900)), Some(Fen(500)));
        assert_eq!(per_meal.nominal(Slot::Dinner, Fen(900)), None);
        let per_day = Benefit::PerDay {
            fen: Fen(1000),
            slots: vec![Slot::Lunch, Slot::Dinner],
        };
        assert_eq!(per_day.nominal(Slot::Dinner, Fen(900)), Some(Fen(1000)));
        assert_eq!(per_day.nominal(Slot::Breakfast, Fen(900)), None);
    }

    #[test]
    fn in_force_includes_both_ends() {
        let mut p = Policy::example_yiwu();
        p.effective_to = Some(d(2025, 12, 31));
        assert!(!p.in_force_on(d(2024, 12, 31)));
        assert!(p.in_force_on(d(2025, 1, 1)));
        assert!(p.in_force_on(d(2025, 12, 31)));
        assert!(!p.in_force_on(d(2026, 1, 1)));
        p.effective_to = None;
        assert!(p.in_force_on(d(2099, 1, 1)));
    }

    #[test]
    fn a_percent_share_above_100_is_refused() {
        let share = |source, percent| FundingShare {
            source,
            percent: Some(percent),
            fen: None,
        };
        let wrapping = [
            share(FundingSource::City, u32::MAX),
            share(FundingSource::Town, 101),
        ];
        assert!(
            validate_funding(&wrapping)
                .unwrap_err()
                .contains("between 0 and 100")
        );
        let fine = [
            share(FundingSource::City, 0),
            share(FundingSource::Town, 100),
        ];
        assert_eq!(validate_funding(&fine), Ok(()));
    }
}
