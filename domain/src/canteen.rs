//! Towns (镇/街道), canteens and their meal slots.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::Fen;

/// A town or street (镇/街道), named by a stable code such as `choucheng`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct TownCode(pub String);

impl TownCode {
    pub fn new(code: impl Into<String>) -> TownCode {
        TownCode(code.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A district or county (区/县), above towns, named by a stable code: the geography is
/// city → district → town.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct DistrictCode(pub String);

impl DistrictCode {
    pub fn new(code: impl Into<String>) -> DistrictCode {
        DistrictCode(code.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A canteen's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CanteenId(pub i64);

/// What kind of site serves the meal: `demonstration_centre` (示范型中心, with its own kitchen),
/// `care_centre` (照料中心, a community care centre with a canteen) or `station` (服务站, hands
/// out delivered meals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CanteenKind {
    /// 示范型中心: a demonstration centre with its own kitchen.
    DemonstrationCentre,
    /// 照料中心: a community care centre with a canteen.
    CareCentre,
    /// 服务站: a station that hands out delivered meals.
    Station,
}

impl CanteenKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            CanteenKind::DemonstrationCentre => "示范型中心",
            CanteenKind::CareCentre => "照料中心",
            CanteenKind::Station => "服务站",
        }
    }
}

/// Who runs the canteen: `village_run` (村（社区）自办) or `contracted` (委托社会组织运营).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperatorKind {
    /// 村（社区）自办
    VillageRun,
    /// 委托社会组织运营
    Contracted,
}

/// A meal of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Breakfast,
    Lunch,
    Dinner,
}

impl Slot {
    pub const ALL: [Slot; 3] = [Slot::Breakfast, Slot::Lunch, Slot::Dinner];

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Breakfast => "breakfast",
            Slot::Lunch => "lunch",
            Slot::Dinner => "dinner",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Slot::Breakfast => "早餐",
            Slot::Lunch => "午餐",
            Slot::Dinner => "晚餐",
        }
    }

    pub fn parse(s: &str) -> Option<Slot> {
        match s {
            "breakfast" => Some(Slot::Breakfast),
            "lunch" => Some(Slot::Lunch),
            "dinner" => Some(Slot::Dinner),
            _ => None,
        }
    }
}

/// One slot a canteen serves: its local time window `[start, end)` and the meal price. On the
/// wire (the kiosk sync) times are `HH:MM:SS`, and the counter-price bounds are `price_range`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SyncSlotWindow))]
pub struct SlotWindow {
    pub slot: Slot,
    /// Local time the window opens (inclusive).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub start: NaiveTime,
    /// Local time the window closes (exclusive).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-2][0-9]:[0-5][0-9](:[0-5][0-9])?$")
    )]
    pub end: NaiveTime,
    /// The set price; the price of a meal settled without a counter price.
    pub price: Fen,
    /// Set meals at several prices, weighed dishes, "actual spend": the counter may settle a
    /// meal at the price of what was taken, within these bounds (inclusive). Absent: every
    /// meal is at `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_range: Option<PriceRange>,
}

/// The bounds (inclusive) within which the counter may price a meal of the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PriceRange {
    pub min: Fen,
    pub max: Fen,
}

impl SlotWindow {
    /// The price of a meal in this slot: the counter's, if it gave one and it is allowed, or
    /// the set price. `Err` carries the bounds a counter price broke (without a range, the
    /// only allowed price is the set one).
    pub fn price_of(&self, counter: Option<Fen>) -> Result<Fen, PriceRange> {
        let bounds = self.price_range.unwrap_or(PriceRange {
            min: self.price,
            max: self.price,
        });
        match counter {
            None => Ok(self.price),
            Some(p) if bounds.min <= p && p <= bounds.max => Ok(p),
            Some(_) => Err(bounds),
        }
    }
}

/// A canteen as the decision sees it: the kiosk's own canteen in the sync answer (times as
/// `HH:MM:SS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SyncCanteen))]
pub struct Canteen {
    pub id: CanteenId,
    pub name: String,
    pub kind: CanteenKind,
    pub town: TownCode,
    pub operator: String,
    pub operator_kind: OperatorKind,
    pub slots: Vec<SlotWindow>,
    /// Added to the price of a delivered meal (送餐), if the canteen delivers.
    pub delivery_surcharge: Option<Fen>,
    /// The district (区/县) of the canteen's town, if the geography names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<DistrictCode>,
}

impl Canteen {
    /// The slot whose window contains `time`, if any.
    pub fn slot_at(&self, time: NaiveTime) -> Option<&SlotWindow> {
        self.slots.iter().find(|w| w.start <= time && time < w.end)
    }

    pub fn window(&self, slot: Slot) -> Option<&SlotWindow> {
        self.slots.iter().find(|w| w.slot == slot)
    }

    /// Checks the slots: windows non-empty, non-overlapping, one per slot, prices not negative.
    pub fn validate_slots(slots: &[SlotWindow]) -> Result<(), String> {
        for (i, w) in slots.iter().enumerate() {
            if w.start >= w.end {
                return Err(format!("slots[{i}]: start must be before end"));
            }
            if w.price.is_negative() {
                return Err(format!("slots[{i}].price: must not be negative"));
            }
            if let Some(r) = w.price_range {
                if r.min.is_negative() || r.max < r.min {
                    return Err(format!(
                        "slots[{i}].price_min: must be 0 or more and at most price_max"
                    ));
                }
                if w.price < r.min || r.max < w.price {
                    return Err(format!(
                        "slots[{i}].price: the set price must lie within price_min..price_max"
                    ));
                }
            }
            for (j, o) in slots.iter().enumerate().skip(i + 1) {
                if o.slot == w.slot {
                    return Err(format!("slots[{j}]: {} appears twice", o.slot.as_str()));
                }
                if o.start < w.end && w.start < o.end {
                    return Err(format!("slots[{j}]: window overlaps slots[{i}]"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn canteen() -> Canteen {
        Canteen {
            id: CanteenId(1),
            name: "x".into(),
            kind: CanteenKind::CareCentre,
            town: TownCode::new("t"),
            operator: "o".into(),
            operator_kind: OperatorKind::VillageRun,
            slots: vec![
                SlotWindow {
                    slot: Slot::Lunch,
                    start: t(10, 30),
                    end: t(13, 0),
                    price: Fen(1000),
                    price_range: None,
                },
                SlotWindow {
                    slot: Slot::Dinner,
                    start: t(16, 30),
                    end: t(18, 30),
                    price: Fen(800),
                    price_range: None,
                },
            ],
            delivery_surcharge: None,
            district: None,
        }
    }

    #[test]
    fn finds_slot_with_half_open_window() {
        let c = canteen();
        assert_eq!(c.slot_at(t(10, 30)).map(|w| w.slot), Some(Slot::Lunch));
        assert_eq!(c.slot_at(t(12, 59)).map(|w| w.slot), Some(Slot::Lunch));
        assert_eq!(c.slot_at(t(13, 0)), None);
        assert_eq!(c.slot_at(t(7, 0)), None);
        assert_eq!(c.slot_at(t(17, 0)).map(|w| w.slot), Some(Slot::Dinner));
    }

    #[test]
    fn rejects_overlapping_or_empty_windows() {
        let mut s = canteen().slots;
        assert!(Canteen::validate_slots(&s).is_ok());
        s[1].start = t(12, 0);
        assert!(
            Canteen::validate_slots(&s)
                .unwrap_err()
                .contains("overlaps")
        );
        s[1].start = t(19, 0);
        assert!(
            Canteen::validate_slots(&s)
                .unwrap_err()
                .contains("before end")
        );
    }
}
