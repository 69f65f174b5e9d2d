//! The settlement decision: given the policy, the resident, the canteen, the attempt and the
//! resident's earlier meals, decide what the meal costs and who pays — or why it is refused.
//!
//! [`decide`] is a pure function. It never fails: every input it can be given has an answer.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::policy::{
    Benefit, Caps, Conditions, FundingShare, OperatingBasis, PercentOf, SubsidyTown, Tier,
};
use crate::resident::Diner;
use crate::{Canteen, DistrictCode, Fen, Policy, PolicyRef, ResidentStatus, Slot, TownCode};

pub use crate::policy::FundingSource;

/// How the resident was identified at the counter: `face` (刷脸, matched by the kiosk's face
/// pipeline), `card` (resident card or QR code, typed or scanned) or `staff` (confirmed by staff,
/// with a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// 刷脸: matched by the kiosk's face pipeline.
    Face,
    /// Resident card or QR code, typed or scanned.
    Card,
    /// Confirmed by staff, with a reason.
    Staff,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Face => "face",
            Method::Card => "card",
            Method::Staff => "staff",
        }
    }
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "face" => Some(Method::Face),
            "card" => Some(Method::Card),
            "staff" => Some(Method::Staff),
            _ => None,
        }
    }
}

/// What happened at the counter, in the canteen's local time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    pub served_at: NaiveDateTime,
    pub method: Method,
    /// A delivered meal (送餐) adds the canteen's delivery surcharge to the price.
    pub delivered: bool,
    /// 代取: a registered carer collects the meal for the resident. Subsidised only when the
    /// policy says so ([`Policy::proxy_subsidised`]).
    pub proxy: bool,
    /// The price of what was taken, from the counter (set meals, weighed dishes). `None`: the
    /// slot's set price. Must lie within the slot's `price_range`.
    pub counter_price: Option<Fen>,
}

/// One of the resident's earlier accepted, not voided meals (at any canteen). The decision
/// only looks at the ones in the same calendar month as the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorMeal {
    pub date: NaiveDate,
    pub slot: Slot,
    /// The meal's subsidy under its tier: without stacked subsidies and the delivery subsidy
    /// (`Accepted::tier_subsidy`). Caps and per-day amounts count this.
    pub subsidy: Fen,
}

// One decision per meal, moved once into the store: boxing `Accepted` would add an allocation to
// every decision to save a few hundred bytes on the rare rejection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    Accepted(Accepted),
    Rejected(Rejection),
}

impl Decision {
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            Decision::Accepted(a) => Some(a),
            Decision::Rejected(_) => None,
        }
    }
}

/// A meal that is served and settled. `subsidy + self_pay == price` and
/// `funding.total() == subsidy`, always.
///
/// `price` is what the meal costs in all: the meal and, where the policy makes it its own line,
/// the delivery fee (`delivery_fee`, part of `price`). `subsidy` is all that is not the elder's:
/// the tier's (`tier_subsidy`), the stacked subsidies' (`stacked_subsidy`) and the delivery
/// subsidy (`delivery_subsidy`). The operating subsidy is paid to the canteen beside the meal,
/// in none of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub date: NaiveDate,
    pub slot: Slot,
    pub price: Fen,
    pub subsidy: Fen,
    pub self_pay: Fen,
    pub payment: Payment,
    pub funding: Funding,
    /// The town whose finance pays the town share (registration or residence town, by policy).
    pub funding_town: TownCode,
    pub eligibility: Eligibility,
    pub policy: PolicyRef,
    #[serde(default)]
    pub delivery_fee: Fen,
    #[serde(default)]
    pub delivery_subsidy: Fen,
    /// The codes of the stacked subsidies that applied, in order, and their sum.
    #[serde(default)]
    pub stacked: Vec<String>,
    #[serde(default)]
    pub stacked_subsidy: Fen,
    /// 运营补贴 to the canteen for this meal, and who pays it.
    #[serde(default)]
    pub operating: Fen,
    #[serde(default)]
    pub operating_source: Option<FundingSource>,
}

impl Accepted {
    /// The subsidy under the tier alone (what [`PriorMeal::subsidy`] holds).
    pub fn tier_subsidy(&self) -> Fen {
        self.subsidy - self.stacked_subsidy - self.delivery_subsidy
    }
}

/// Where the self-paid part comes from: `prepaid` (taken from the resident's prepaid balance) or
/// `cash` (paid at the counter, in cash or the canteen's own means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    /// Taken from the resident's prepaid balance.
    Prepaid,
    /// Paid at the counter (cash or the canteen's own means).
    Cash,
}

impl Payment {
    pub fn as_str(self) -> &'static str {
        match self {
            Payment::Prepaid => "prepaid",
            Payment::Cash => "cash",
        }
    }
}

/// The subsidy split by funding source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Funding {
    pub city: Fen,
    pub town: Fen,
    pub other: Fen,
    #[serde(default)]
    pub county: Fen,
    #[serde(default)]
    pub canteen: Fen,
}

impl Funding {
    pub fn total(&self) -> Fen {
        self.city + self.town + self.other + self.county + self.canteen
    }
    pub fn get(&self, source: FundingSource) -> Fen {
        match source {
            FundingSource::City => self.city,
            FundingSource::Town => self.town,
            FundingSource::Other => self.other,
            FundingSource::County => self.county,
            FundingSource::Canteen => self.canteen,
        }
    }
    fn slot_mut(&mut self, source: FundingSource) -> &mut Fen {
        match source {
            FundingSource::City => &mut self.city,
            FundingSource::Town => &mut self.town,
            FundingSource::Other => &mut self.other,
            FundingSource::County => &mut self.county,
            FundingSource::Canteen => &mut self.canteen,
        }
    }
    /// Adds another split to this one, source by source.
    pub fn add(&mut self, o: &Funding) {
        for s in FundingSource::ALL {
            *self.slot_mut(s) += o.get(s);
        }
    }

    /// Splits `subsidy` by the shares: fixed amounts first (never more than what is left), then
    /// percentages of the remainder, rounded down; the rounding remainder goes to the first
    /// percentage source, so the parts always add up to `subsidy`.
    pub fn split(subsidy: Fen, shares: &[FundingShare]) -> Funding {
        let mut f = Funding::default();
        let mut left = subsidy;
        for s in shares {
            if let Some(fixed) = s.fen {
                let take = fixed.min(left);
                *f.slot_mut(s.source) += take;
                left -= take;
            }
        }
        let pool = left;
        let mut first_percent = None;
        for s in shares {
            if let Some(p) = s.percent {
                first_percent.get_or_insert(s.source);
                let take = pool.percent(p);
                *f.slot_mut(s.source) += take;
                left -= take;
            }
        }
        if let Some(src) = first_percent {
            *f.slot_mut(src) += left;
        }
        f
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Eligibility {
    /// Subsidised under this tier.
    Subsidised { tier: String, tier_name: String },
    /// Served at full price.
    NotEligible { reason: NotEligible },
}

/// Why a served meal gets no subsidy (the resident pays the full price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotEligible {
    /// No policy was in force on the meal date.
    NoPolicyInForce,
    /// The canteen is outside the policy's area.
    CanteenOutsideArea,
    /// The resident's subsidy town is outside the policy's area.
    ResidentOutsideArea,
    /// Every tier the resident's age and categories would meet requires local registration.
    NotLocal,
    /// No tier's conditions are met (too young, no qualifying category, wrong town or canteen).
    NoTier,
    /// The best tier does not subsidise this slot.
    SlotNotCovered,
    /// The tier's daily cap (meals or per-day amount) is used up.
    DailyCapReached,
    /// The tier's monthly cap is used up.
    MonthlyCapReached,
    /// A carer collected the meal (代取) and the policy does not subsidise proxy meals.
    ProxyNotSubsidised,
    /// Served outside the policy's subsidy windows: sold at full price.
    OutsideSubsidyWindow,
    /// The meal is priced below the policy's minimum for a subsidy.
    BelowMinimumPrice,
    /// The tiers the resident meets are for working days, and this is a holiday or weekend.
    NotWorkingDay,
    /// The tiers the resident meets need a canteen in their own district (or on a list).
    OutsideOwnDistrict,
}

impl NotEligible {
    pub fn as_str(self) -> &'static str {
        match self {
            NotEligible::NoPolicyInForce => "no_policy_in_force",
            NotEligible::CanteenOutsideArea => "canteen_outside_area",
            NotEligible::ResidentOutsideArea => "resident_outside_area",
            NotEligible::NotLocal => "not_local",
            NotEligible::NoTier => "no_tier",
            NotEligible::SlotNotCovered => "slot_not_covered",
            NotEligible::DailyCapReached => "daily_cap_reached",
            NotEligible::MonthlyCapReached => "monthly_cap_reached",
            NotEligible::ProxyNotSubsidised => "proxy_not_subsidised",
            NotEligible::OutsideSubsidyWindow => "outside_subsidy_window",
            NotEligible::BelowMinimumPrice => "below_minimum_price",
            NotEligible::NotWorkingDay => "not_working_day",
            NotEligible::OutsideOwnDistrict => "outside_own_district",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            NotEligible::NoPolicyInForce => "当日无有效补助政策",
            NotEligible::CanteenOutsideArea => "食堂不在政策范围内",
            NotEligible::ResidentOutsideArea => "老人所属镇街不在政策范围内",
            NotEligible::NotLocal => "非本地户籍",
            NotEligible::NoTier => "不符合补助条件",
            NotEligible::SlotNotCovered => "该餐次不补助",
            NotEligible::DailyCapReached => "已达每日补助上限",
            NotEligible::MonthlyCapReached => "已达每月补助上限",
            NotEligible::ProxyNotSubsidised => "代取餐不补助",
            NotEligible::OutsideSubsidyWindow => "不在补助时段",
            NotEligible::BelowMinimumPrice => "餐费低于补助起点",
            NotEligible::NotWorkingDay => "非工作日不补助",
            NotEligible::OutsideOwnDistrict => "非户籍所在区食堂",
        }
    }
}

/// Why no meal is settled at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    /// The resident already had their meal(s) in this slot today.
    Duplicate {
        slot: Slot,
    },
    /// The time is outside every slot window of the canteen.
    OutsideSlotWindow,
    Suspended,
    Deceased {
        date: NaiveDate,
    },
    /// A face check-in for a resident with no enrolled template or no face consent.
    NotEnrolled,
    /// The counter price is outside the bounds the canteen set for the slot.
    PriceOutOfRange {
        min: Fen,
        max: Fen,
    },
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Duplicate { .. } => "duplicate",
            Rejection::OutsideSlotWindow => "outside_slot_window",
            Rejection::Suspended => "suspended",
            Rejection::Deceased { .. } => "deceased",
            Rejection::NotEnrolled => "not_enrolled",
            Rejection::PriceOutOfRange { .. } => "price_out_of_range",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Rejection::Duplicate { .. } => "本餐次已就餐",
            Rejection::OutsideSlotWindow => "不在供餐时段",
            Rejection::Suspended => "资格已暂停",
            Rejection::Deceased { .. } => "老人已身故",
            Rejection::NotEnrolled => "未登记人脸",
            Rejection::PriceOutOfRange { .. } => "餐费超出食堂设定范围",
        }
    }
}

/// Decides one meal. `policy` is the policy in force on the meal date, if any; `history` holds
/// the resident's earlier accepted meals (others are ignored).
pub fn decide(
    policy: Option<&Policy>,
    resident: &Diner,
    canteen: &Canteen,
    attempt: &Attempt,
    history: &[PriorMeal],
) -> Decision {
    let date = attempt.served_at.date();
    match resident.status {
        ResidentStatus::Deceased { date: died } if died <= date => {
            return Decision::Rejected(Rejection::Deceased { date: died });
        }
        ResidentStatus::Suspended => return Decision::Rejected(Rejection::Suspended),
        _ => {}
    }
    if attempt.method == Method::Face && !resident.face_ready {
        return Decision::Rejected(Rejection::NotEnrolled);
    }
    let Some(window) = canteen.slot_at(attempt.served_at.time()) else {
        return Decision::Rejected(Rejection::OutsideSlotWindow);
    };
    let slot = window.slot;
    let meal_price = match window.price_of(attempt.counter_price) {
        Ok(p) => p,
        Err(r) => {
            return Decision::Rejected(Rejection::PriceOutOfRange {
                min: r.min,
                max: r.max,
            });
        }
    };
    let surcharge = match attempt.delivered {
        true => canteen.delivery_surcharge.unwrap_or(Fen::ZERO),
        false => Fen::ZERO,
    };
    // With a `delivery` rule the fee is its own line; without one it is part of the meal's
    // price, before the subsidy (as before the rule existed).
    let delivery = policy.and_then(|p| p.delivery.as_ref());
    let (price, delivery_fee) = match delivery {
        Some(_) => (meal_price, surcharge),
        None => (meal_price + surcharge, Fen::ZERO),
    };

    let same_month =
        |m: &&PriorMeal| m.date.year() == date.year() && m.date.month() == date.month();
    let month: Vec<&PriorMeal> = history.iter().filter(same_month).collect();
    let in_slot_today = month
        .iter()
        .filter(|m| m.date == date && m.slot == slot)
        .count() as u32;

    let (subsidy_town, subsidy_district) = match policy.map(|p| p.subsidy_town) {
        Some(SubsidyTown::Residence) => (&resident.residence_town, &resident.residence_district),
        _ => (&resident.registered_town, &resident.registered_district),
    };
    let who = Who {
        resident,
        canteen,
        town: subsidy_town,
        district: subsidy_district.as_ref(),
        date,
        calendar: policy.and_then(|p| p.calendar.as_ref()),
    };
    let chosen = policy
        .ok_or(NotEligible::NoPolicyInForce)
        .and_then(|p| best_tier(p, &who, slot, price).map(|t| (p, t)));

    // A second meal in the same slot on the same day is refused, unless the tier allows more.
    let per_slot_cap = chosen.as_ref().map_or(1, |(_, t)| t.caps.per_slot_per_day);
    if in_slot_today >= per_slot_cap {
        return Decision::Rejected(Rejection::Duplicate { slot });
    }

    let policy_ref = policy.map_or_else(
        || PolicyRef {
            id: String::new(),
            version: 0,
        },
        |p| p.reference(),
    );
    // The policy's own gates: its subsidy windows and its minimum price.
    let chosen = chosen.and_then(|(p, t)| {
        let time = attempt.served_at.time();
        if !p.windows.is_empty() && !p.windows.iter().any(|w| w.contains(slot, time)) {
            return Err(NotEligible::OutsideSubsidyWindow);
        }
        if p.min_price.is_some_and(|min| price < min) {
            return Err(NotEligible::BelowMinimumPrice);
        }
        Ok((p, t))
    });
    let mut funding = Funding::default();
    let mut stacked = Vec::new();
    let mut stacked_subsidy = Fen::ZERO;
    let tier = chosen.and_then(|(p, t)| {
        let fen = tier_subsidy(t, &month, date, slot, price)?;
        Ok((p, t, fen))
    });
    let (tier_fen, mut eligibility) = match &tier {
        Err(reason) => (Fen::ZERO, Eligibility::NotEligible { reason: *reason }),
        Ok((p, t, fen)) => {
            funding.add(&Funding::split(*fen, &t.funding));
            // Stacked subsidies top up a subsidised meal, in order, each on its own terms.
            let mut left = price - *fen;
            for s in p
                .stacked
                .iter()
                .filter(|s| meets(&s.conditions, &who, Relax::NONE))
            {
                let Ok(amount) = stacked_amount(s, &month, date, slot, price, left) else {
                    continue;
                };
                if amount > Fen::ZERO {
                    funding.add(&Funding::split(amount, &s.funding));
                    stacked.push(s.code.clone());
                    stacked_subsidy += amount;
                    left -= amount;
                }
            }
            let eligibility = Eligibility::Subsidised {
                tier: t.code.clone(),
                tier_name: t.name.clone(),
            };
            (*fen, eligibility)
        }
    };
    // The delivery subsidy comes with a subsidised meal (the tier's gates, caps, windows and
    // minimum price all passed): the largest the resident meets, never more than the fee.
    let delivery_best = delivery
        .filter(|_| tier_fen > Fen::ZERO && delivery_fee > Fen::ZERO)
        .and_then(|d| {
            d.subsidies
                .iter()
                .filter(|s| meets(&s.conditions, &who, Relax::NONE))
                .max_by_key(|s| s.fen)
        });
    let mut delivery_subsidy = Fen::ZERO;
    if let Some(s) = delivery_best {
        delivery_subsidy = s.fen.min(delivery_fee);
        funding.add(&Funding::split(delivery_subsidy, &s.funding));
    }
    let mut operating = Fen::ZERO;
    let mut operating_source = None;
    if let (Some(o), true) = (policy.and_then(|p| p.operating), tier_fen > Fen::ZERO) {
        let first_today = !month
            .iter()
            .any(|m| m.date == date && m.subsidy > Fen::ZERO);
        if o.per == OperatingBasis::Meal || first_today {
            operating = o.fen;
            operating_source = Some(o.source);
        }
    }
    let mut subsidy = tier_fen + stacked_subsidy + delivery_subsidy;
    // Would be subsidised, but a carer collected it and the policy does not pay for proxy
    // meals: full price, and the reason says why.
    if subsidy > Fen::ZERO && attempt.proxy && policy.is_some_and(|p| !p.proxy_subsidised) {
        subsidy = Fen::ZERO;
        funding = Funding::default();
        stacked.clear();
        stacked_subsidy = Fen::ZERO;
        delivery_subsidy = Fen::ZERO;
        operating = Fen::ZERO;
        operating_source = None;
        eligibility = Eligibility::NotEligible {
            reason: NotEligible::ProxyNotSubsidised,
        };
    }
    let price = price + delivery_fee;
    let self_pay = price - subsidy;
    let payment = match resident.prepaid_balance {
        Some(balance) if balance >= self_pay => Payment::Prepaid,
        _ => Payment::Cash,
    };
    Decision::Accepted(Accepted {
        date,
        slot,
        price,
        subsidy,
        self_pay,
        payment,
        funding,
        funding_town: subsidy_town.clone(),
        eligibility,
        policy: policy_ref,
        delivery_fee,
        delivery_subsidy,
        stacked,
        stacked_subsidy,
        operating,
        operating_source,
    })
}

/// Who eats where and when: what a tier's conditions look at.
struct Who<'a> {
    resident: &'a Diner,
    canteen: &'a Canteen,
    /// The resident's subsidy town (registration or residence, by policy) and its district.
    town: &'a TownCode,
    district: Option<&'a DistrictCode>,
    date: NaiveDate,
    calendar: Option<&'a crate::policy::Calendar>,
}

/// Conditions left out when looking for the reason no tier is met.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Relax {
    local: bool,
    working_day: bool,
    district: bool,
}

impl Relax {
    const NONE: Relax = Relax {
        local: false,
        working_day: false,
        district: false,
    };
}

fn meets(c: &Conditions, who: &Who, relax: Relax) -> bool {
    let age = who.resident.age_on(who.date);
    let listed = c.canteens.contains(&who.canteen.id);
    let own_district = who
        .canteen
        .district
        .as_ref()
        .is_some_and(|d| Some(d) == who.district);
    let canteen_ok = match (c.own_district, c.canteens.is_empty()) {
        (false, true) => true,
        (false, false) => listed,
        (true, _) => relax.district || listed || own_district,
    };
    let working_day = || who.calendar.is_some_and(|cal| cal.is_working_day(who.date));
    c.min_age.is_none_or(|a| age >= a)
        && c.max_age.is_none_or(|a| age <= a)
        && (c.any_categories.is_empty() || who.resident.has_any_category(&c.any_categories))
        && (relax.local || !c.local_registration || who.resident.local_registration)
        && (c.towns.is_empty() || c.towns.contains(who.town))
        && canteen_ok
        && (relax.working_day || !c.working_days_only || working_day())
}

/// The single best tier the resident qualifies for (就高不重复): the highest nominal benefit for
/// this slot; on a tie, the tier listed first.
fn best_tier<'p>(
    policy: &'p Policy,
    who: &Who,
    slot: Slot,
    price: Fen,
) -> Result<&'p Tier, NotEligible> {
    if !policy.in_force_on(who.date) {
        return Err(NotEligible::NoPolicyInForce);
    }
    if !policy.area_towns.is_empty() {
        if !policy.area_towns.contains(&who.canteen.town) {
            return Err(NotEligible::CanteenOutsideArea);
        }
        if !policy.area_towns.contains(who.town) {
            return Err(NotEligible::ResidentOutsideArea);
        }
    }
    let value = |t: &Tier| t.benefit.nominal(slot, price).unwrap_or(Fen::ZERO);
    let mut best: Option<&Tier> = None;
    for t in policy
        .tiers
        .iter()
        .filter(|t| meets(&t.conditions, who, Relax::NONE))
    {
        if best.is_none_or(|b| value(t) > value(b)) {
            best = Some(t);
        }
    }
    // No tier met: the reason is the first condition that, left out, would let one be met.
    let because = [
        (
            Relax {
                local: true,
                ..Relax::NONE
            },
            NotEligible::NotLocal,
        ),
        (
            Relax {
                working_day: true,
                ..Relax::NONE
            },
            NotEligible::NotWorkingDay,
        ),
        (
            Relax {
                district: true,
                ..Relax::NONE
            },
            NotEligible::OutsideOwnDistrict,
        ),
    ];
    match best {
        Some(t) if t.benefit.nominal(slot, price).is_some() => Ok(t),
        Some(_) => Err(NotEligible::SlotNotCovered),
        None => Err(because
            .into_iter()
            .find(|(relax, _)| {
                policy
                    .tiers
                    .iter()
                    .any(|t| meets(&t.conditions, who, *relax))
            })
            .map_or(NotEligible::NoTier, |(_, reason)| reason)),
    }
}

/// Whether the tier's daily and monthly meal caps leave room for one more subsidised meal.
fn within_caps(caps: Caps, month: &[&PriorMeal], date: NaiveDate) -> Result<(), NotEligible> {
    let subsidised = |m: &&&PriorMeal| m.subsidy > Fen::ZERO;
    let today = month.iter().filter(|m| m.date == date).filter(subsidised);
    if caps.per_day.is_some_and(|cap| today.count() as u32 >= cap) {
        return Err(NotEligible::DailyCapReached);
    }
    let subsidised_month = month.iter().filter(subsidised).count() as u32;
    if caps.per_month.is_some_and(|cap| subsidised_month >= cap) {
        return Err(NotEligible::MonthlyCapReached);
    }
    Ok(())
}

/// The subsidy for this meal under `tier`, after its caps, never more than the price.
fn tier_subsidy(
    tier: &Tier,
    month: &[&PriorMeal],
    date: NaiveDate,
    slot: Slot,
    price: Fen,
) -> Result<Fen, NotEligible> {
    within_caps(tier.caps, month, date)?;
    let amount = match &tier.benefit {
        Benefit::PerMeal(by_slot) => by_slot
            .get(&slot)
            .copied()
            .ok_or(NotEligible::SlotNotCovered)?,
        Benefit::PerDay { fen, slots } => {
            if !slots.contains(&slot) {
                return Err(NotEligible::SlotNotCovered);
            }
            let used: Fen = month
                .iter()
                .filter(|m| m.date == date)
                .map(|m| m.subsidy)
                .sum();
            let left = *fen - used;
            if left <= Fen::ZERO {
                return Err(NotEligible::DailyCapReached);
            }
            left
        }
        Benefit::Percent { .. } => tier
            .benefit
            .nominal(slot, price)
            .ok_or(NotEligible::SlotNotCovered)?,
    };
    Ok(amount.min(price).max(Fen::ZERO))
}

/// A stacked subsidy for this meal: its caps count the resident's subsidised meals like a
/// tier's; a percentage is of the price or of `left` (what the subsidies before it left).
fn stacked_amount(
    s: &Tier,
    month: &[&PriorMeal],
    date: NaiveDate,
    slot: Slot,
    price: Fen,
    left: Fen,
) -> Result<Fen, NotEligible> {
    within_caps(s.caps, month, date)?;
    let amount = match &s.benefit {
        Benefit::Percent {
            percent,
            slots,
            of: PercentOf::Remainder,
            max,
        } if slots.contains(&slot) => {
            let fen = left.percent(*percent);
            max.map_or(fen, |m| fen.min(m))
        }
        b => b.nominal(slot, price).ok_or(NotEligible::SlotNotCovered)?,
    };
    Ok(amount.min(left).max(Fen::ZERO))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn stored_codes_are_distinct_and_round_trip() {
        for m in [Method::Face, Method::Card, Method::Staff] {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
        assert_eq!(Method::parse("Face"), None);
        let reasons = [
            NotEligible::NoPolicyInForce,
            NotEligible::CanteenOutsideArea,
            NotEligible::ResidentOutsideArea,
            NotEligible::NotLocal,
            NotEligible::NoTier,
            NotEligible::SlotNotCovered,
            NotEligible::DailyCapReached,
            NotEligible::MonthlyCapReached,
        ];
        let codes: BTreeSet<_> = reasons.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), reasons.len());
        let date = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let rejections = [
            Rejection::Duplicate { slot: Slot::Lunch },
            Rejection::OutsideSlotWindow,
            Rejection::Suspended,
            Rejection::Deceased { date },
            Rejection::NotEnrolled,
        ];
        let codes: BTreeSet<_> = rejections.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), rejections.len());
    }

    #[test]
    fn split_takes_fixed_amounts_first_and_gives_the_odd_fen_to_the_first_percent_source() {
        let share = |source, percent, fen| FundingShare {
            source,
            percent,
            fen,
        };
        let shares = [
            share(FundingSource::Town, Some(50), None),
            share(FundingSource::Other, None, Some(Fen(500))),
            share(FundingSource::City, Some(50), None),
        ];
        let f = Funding::split(Fen(1001), &shares);
        assert_eq!(
            f,
            Funding {
                city: Fen(250),
                town: Fen(251),
                other: Fen(500),
                ..Funding::default()
            }
        );
        let f = Funding::split(Fen(300), &shares);
        assert_eq!(
            f,
            Funding {
                city: Fen(0),
                town: Fen(0),
                other: Fen(300),
                ..Funding::default()
            }
        );
        assert_eq!(Funding::split(Fen::ZERO, &shares), Funding::default());
    }
}
