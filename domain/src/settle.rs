//! The settlement decision: given the policy, the resident, the canteen, the attempt and the
//! resident's earlier meals, decide what the meal costs and who pays — or why it is refused.
//!
//! [`decide`] is a pure function. It never fails: every input it can be given has an answer.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::policy::{Benefit, Caps, FundingShare, SubsidyTown, Tier};
use crate::resident::Diner;
use crate::{Canteen, Fen, Policy, PolicyRef, ResidentStatus, Slot, TownCode};

pub use crate::policy::FundingSource;

/// How the resident was identified at the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

/// One of the resident's earlier accepted, not voided meals (at any canteen). The decision
/// only looks at the ones in the same calendar month as the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorMeal {
    pub date: NaiveDate,
    pub slot: Slot,
    pub subsidy: Fen,
}

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
}

/// Where the self-paid part comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl Funding {
    pub fn total(&self) -> Fen {
        self.city + self.town + self.other
    }
    pub fn get(&self, source: FundingSource) -> Fen {
        match source {
            FundingSource::City => self.city,
            FundingSource::Town => self.town,
            FundingSource::Other => self.other,
        }
    }
    fn slot_mut(&mut self, source: FundingSource) -> &mut Fen {
        match source {
            FundingSource::City => &mut self.city,
            FundingSource::Town => &mut self.town,
            FundingSource::Other => &mut self.other,
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
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Duplicate { .. } => "duplicate",
            Rejection::OutsideSlotWindow => "outside_slot_window",
            Rejection::Suspended => "suspended",
            Rejection::Deceased { .. } => "deceased",
            Rejection::NotEnrolled => "not_enrolled",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Rejection::Duplicate { .. } => "本餐次已就餐",
            Rejection::OutsideSlotWindow => "不在供餐时段",
            Rejection::Suspended => "资格已暂停",
            Rejection::Deceased { .. } => "老人已身故",
            Rejection::NotEnrolled => "未登记人脸",
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
    let mut price = window.price;
    if attempt.delivered {
        price += canteen.delivery_surcharge.unwrap_or(Fen::ZERO);
    }

    let same_month =
        |m: &&PriorMeal| m.date.year() == date.year() && m.date.month() == date.month();
    let month: Vec<&PriorMeal> = history.iter().filter(same_month).collect();
    let in_slot_today = month
        .iter()
        .filter(|m| m.date == date && m.slot == slot)
        .count() as u32;

    let subsidy_town = match policy.map(|p| p.subsidy_town) {
        Some(SubsidyTown::Residence) => resident.residence_town.clone(),
        _ => resident.registered_town.clone(),
    };
    let chosen = policy
        .ok_or(NotEligible::NoPolicyInForce)
        .and_then(|p| best_tier(p, resident, canteen, &subsidy_town, date, slot).map(|t| (p, t)));

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
    let (subsidy, funding, eligibility) = match chosen {
        Err(reason) => (
            Fen::ZERO,
            Funding::default(),
            Eligibility::NotEligible { reason },
        ),
        Ok((_, tier)) => match tier_subsidy(tier, &month, date, slot, price) {
            Err(reason) => (
                Fen::ZERO,
                Funding::default(),
                Eligibility::NotEligible { reason },
            ),
            // Would be subsidised, but a carer collected it and the policy does not pay for
            // proxy meals: full price, and the reason says why.
            Ok(_) if attempt.proxy && policy.is_some_and(|p| !p.proxy_subsidised) => (
                Fen::ZERO,
                Funding::default(),
                Eligibility::NotEligible {
                    reason: NotEligible::ProxyNotSubsidised,
                },
            ),
            Ok(subsidy) => (
                subsidy,
                Funding::split(subsidy, &tier.funding),
                Eligibility::Subsidised {
                    tier: tier.code.clone(),
                    tier_name: tier.name.clone(),
                },
            ),
        },
    };
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
        funding_town: subsidy_town,
        eligibility,
        policy: policy_ref,
    })
}

/// The single best tier the resident qualifies for (就高不重复): the highest nominal benefit for
/// this slot; on a tie, the tier listed first.
fn best_tier<'p>(
    policy: &'p Policy,
    resident: &Diner,
    canteen: &Canteen,
    subsidy_town: &TownCode,
    date: NaiveDate,
    slot: Slot,
) -> Result<&'p Tier, NotEligible> {
    if !policy.in_force_on(date) {
        return Err(NotEligible::NoPolicyInForce);
    }
    if !policy.area_towns.is_empty() {
        if !policy.area_towns.contains(&canteen.town) {
            return Err(NotEligible::CanteenOutsideArea);
        }
        if !policy.area_towns.contains(subsidy_town) {
            return Err(NotEligible::ResidentOutsideArea);
        }
    }
    let age = resident.age_on(date);
    let meets = |t: &Tier, ignore_local: bool| {
        let c = &t.conditions;
        c.min_age.is_none_or(|a| age >= a)
            && c.max_age.is_none_or(|a| age <= a)
            && (c.any_categories.is_empty() || resident.has_any_category(&c.any_categories))
            && (ignore_local || !c.local_registration || resident.local_registration)
            && (c.towns.is_empty() || c.towns.contains(subsidy_town))
            && (c.canteens.is_empty() || c.canteens.contains(&canteen.id))
    };
    let mut best: Option<&Tier> = None;
    for t in policy.tiers.iter().filter(|t| meets(t, false)) {
        let value = t.benefit.nominal(slot).unwrap_or(Fen::ZERO);
        if best.is_none_or(|b| value > b.benefit.nominal(slot).unwrap_or(Fen::ZERO)) {
            best = Some(t);
        }
    }
    match best {
        Some(t) if t.benefit.nominal(slot).is_some() => Ok(t),
        Some(_) => Err(NotEligible::SlotNotCovered),
        None if policy.tiers.iter().any(|t| meets(t, true)) => Err(NotEligible::NotLocal),
        None => Err(NotEligible::NoTier),
    }
}

/// The subsidy for this meal under `tier`, after its caps, never more than the price.
fn tier_subsidy(
    tier: &Tier,
    month: &[&PriorMeal],
    date: NaiveDate,
    slot: Slot,
    price: Fen,
) -> Result<Fen, NotEligible> {
    let Caps {
        per_day, per_month, ..
    } = tier.caps;
    let subsidised = |m: &&&PriorMeal| m.subsidy > Fen::ZERO;
    let today: Vec<&&PriorMeal> = month.iter().filter(|m| m.date == date).collect();
    let subsidised_today = today.iter().copied().filter(subsidised).count() as u32;
    let subsidised_month = month.iter().filter(subsidised).count() as u32;
    if per_day.is_some_and(|cap| subsidised_today >= cap) {
        return Err(NotEligible::DailyCapReached);
    }
    if per_month.is_some_and(|cap| subsidised_month >= cap) {
        return Err(NotEligible::MonthlyCapReached);
    }
    let amount = match &tier.benefit {
        Benefit::PerMeal(by_slot) => by_slot
            .get(&slot)
            .copied()
            .ok_or(NotEligible::SlotNotCovered)?,
        Benefit::PerDay { fen, slots } => {
            if !slots.contains(&slot) {
                return Err(NotEligible::SlotNotCovered);
            }
            let used: Fen = today.iter().map(|m| m.subsidy).sum();
            let left = *fen - used;
            if left <= Fen::ZERO {
                return Err(NotEligible::DailyCapReached);
            }
            left
        }
    };
    Ok(amount.min(price).max(Fen::ZERO))
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
                other: Fen(500)
            }
        );
        let f = Funding::split(Fen(300), &shares);
        assert_eq!(
            f,
            Funding {
                city: Fen(0),
                town: Fen(0),
                other: Fen(300)
            }
        );
        assert_eq!(Funding::split(Fen::ZERO, &shares), Funding::default());
    }
}
