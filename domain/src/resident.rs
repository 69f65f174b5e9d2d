//! Residents (elders), their categories, status and national ID number.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::{CanteenId, DistrictCode, Fen, TownCode};

/// A resident's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct ResidentId(pub i64);

/// Read from the national ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// A category code from the open set the civil-affairs roster uses (`dibao`, `tekun`,
/// `disabled_2`, ...): lower-case letters, digits and `_`. The well-known ones have constants; a
/// city may add its own codes in its roster and policy without code changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9_]{1,32}$"))]
#[serde(transparent)]
pub struct Category(pub String);

impl Category {
    /// 低保: minimum living allowance.
    pub const DIBAO: &'static str = "dibao";
    /// 低保边缘: just above the minimum living allowance.
    pub const DIBAO_EDGE: &'static str = "dibao_edge";
    /// 特困: extreme poverty support.
    pub const TEKUN: &'static str = "tekun";
    /// 孤寡: living alone with no supporting children.
    pub const GUGUA: &'static str = "gugua";
    /// 失能 (any level); `disabled_1`..`disabled_3` name the level.
    pub const DISABLED: &'static str = "disabled";
    /// 重度残疾: severe disability.
    pub const SEVERE_DISABILITY: &'static str = "severe_disability";
    /// 计生特殊家庭: family that lost its only child.
    pub const SHIDU: &'static str = "shidu";
    /// 优抚对象: veterans and martyrs' families.
    pub const YOUFU: &'static str = "youfu";

    pub fn new(code: impl Into<String>) -> Category {
        Category(code.into())
    }

    /// A code is lower-case ASCII letters, digits and `_`, 1 to 32 characters.
    pub fn parse(code: &str) -> Result<Category, String> {
        let ok = !code.is_empty()
            && code.len() <= 32
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Category(code.to_owned()))
        } else {
            Err(format!(
                "'{code}' is not a category code (lower-case letters, digits and _)"
            ))
        }
    }

    /// `disabled_` followed by a level number.
    pub fn is_disability_level(&self) -> bool {
        self.0
            .strip_prefix("disabled_")
            .is_some_and(|level| !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()))
    }

    pub fn label_zh(&self) -> &str {
        match self.0.as_str() {
            Self::DIBAO => "低保",
            Self::DIBAO_EDGE => "低保边缘",
            Self::TEKUN => "特困",
            Self::GUGUA => "孤寡",
            Self::DISABLED => "失能",
            "disabled_1" => "轻度失能",
            "disabled_2" => "中度失能",
            "disabled_3" => "重度失能",
            Self::SEVERE_DISABILITY => "重度残疾",
            Self::SHIDU => "计生特殊家庭",
            Self::YOUFU => "优抚对象",
            other => other,
        }
    }
}

/// A resident's status, tagged by `status`; `deceased` carries the date of death.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DinerStatus))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ResidentStatus {
    Active,
    Suspended,
    Deceased { date: NaiveDate },
}

/// A mainland resident identity card number (18 characters, GB 11643 check digit).
/// `Debug` and `Display` show only the masked form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalId(String);

impl NationalId {
    pub fn parse(s: &str) -> Result<NationalId, String> {
        let s = s.trim().to_ascii_uppercase();
        if s.len() != 18 {
            return Err(format!("must be 18 characters, got {}", s.chars().count()));
        }
        let b = s.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) {
            return Err("the first 17 characters must be digits".into());
        }
        if Some(char::from(b[17])) != Self::check_digit(&s[..17]) {
            return Err("check digit does not match".into());
        }
        let id = NationalId(s);
        if id.birth_date().is_none() {
            return Err("characters 7-14 are not a valid birth date".into());
        }
        Ok(id)
    }

    /// The GB 11643 check character for the first 17 characters, or `None` unless they are
    /// exactly 17 ASCII digits. Also what demo data and tests use to make valid numbers.
    pub fn check_digit(first17: &str) -> Option<char> {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const C: &[u8; 11] = b"10X98765432";
        let b = first17.as_bytes();
        if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let sum: u32 = b.iter().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
        Some(char::from(C[(sum % 11) as usize]))
    }

    /// The full number. Only the storage layer should call this (to encrypt or index it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `330782********1234`: first six and last four characters.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }

    pub fn birth_date(&self) -> Option<NaiveDate> {
        let y = self.0[6..10].parse().ok()?;
        let m = self.0[10..12].parse().ok()?;
        let d = self.0[12..14].parse().ok()?;
        NaiveDate::from_ymd_opt(y, m, d)
    }

    /// The 17th character is odd for men, even for women.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalId({})", self.masked())
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Consent records that matter to a decision. The server keeps the full history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Consent {
    /// Separate consent to face enrolment (人脸识别单独同意).
    pub face_enrolment: bool,
    /// Consent to share the face template beyond the canteen where it was enrolled.
    pub template_sharing: bool,
}

/// A resident as the decision sees them. The national ID number is not here on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    pub id: ResidentId,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    /// 本地户籍
    pub local_registration: bool,
    pub registered_town: TownCode,
    pub residence_town: TownCode,
    pub categories: BTreeSet<Category>,
    pub status: ResidentStatus,
    /// The non-face way to check in: the code printed on the resident card / QR code.
    pub card_code: String,
    pub designated_canteen: Option<CanteenId>,
    /// `Some` when the resident has a prepaid account (人户分离 elders prepay to choose a dining
    /// point); self-pay is then taken from it.
    pub prepaid_balance: Option<Fen>,
    pub consent: Consent,
    /// Whether a face template is enrolled (held by the server; the template is not here).
    pub face_enrolled: bool,
}

impl Resident {
    /// Age in whole years on `date`. The birthday itself counts: someone born on 1960-03-01 is 65
    /// on 2025-03-01. Someone born on 29 February turns a year older on 1 March in common years.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        age_on(self.birth_date, date)
    }

    /// Whether the resident has one of `any` (see [`Diner::has_any_category`]).
    pub fn has_any_category(&self, any: &[Category]) -> bool {
        has_any_category(&self.categories, any)
    }

    /// The facts the meal decision reads, and nothing else (what a kiosk is sent).
    pub fn diner(&self) -> Diner {
        Diner {
            id: self.id,
            birth_date: self.birth_date,
            local_registration: self.local_registration,
            registered_town: self.registered_town.clone(),
            residence_town: self.residence_town.clone(),
            categories: self.categories.clone(),
            status: self.status,
            prepaid_balance: self.prepaid_balance,
            face_ready: self.face_enrolled && self.consent.face_enrolment,
            registered_district: None,
            residence_district: None,
        }
    }
}

/// A resident as the meal decision ([`crate::settle::decide`]) sees them: exactly the facts it
/// reads. This is all of a resident a kiosk receives, besides the name for its screen and a keyed
/// hash of the card code ([`crate::api::KioskResident`]): no sex, no card code, no designated
/// canteen, no sharing consent, no national ID. The birth date stays because tiers change on
/// the birthday itself; without the ID number beside it, it completes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        description = "A resident as the kiosk's offline meal decision sees them: exactly the \
        facts it reads, and no sex, card code, designated canteen, sharing consent or national ID."
    )
)]
#[serde(deny_unknown_fields)]
pub struct Diner {
    pub id: ResidentId,
    /// Tiers change on the birthday itself.
    pub birth_date: NaiveDate,
    /// Local household registration (本地户籍).
    pub local_registration: bool,
    pub registered_town: TownCode,
    pub residence_town: TownCode,
    pub categories: BTreeSet<Category>,
    pub status: ResidentStatus,
    /// The balance of a prepaid account, from which self-pay is taken; null without one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub prepaid_balance: Option<Fen>,
    /// Face templates enrolled with separate consent: face check-ins are possible.
    pub face_ready: bool,
    /// The district (区/县) of the registration town, where the geography names one (for
    /// policies with `own_district`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_district: Option<DistrictCode>,
    /// The district (区/县) of the residence town, where the geography names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence_district: Option<DistrictCode>,
}

impl Diner {
    /// Age in whole years on `date` ([`Resident::age_on`]).
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        age_on(self.birth_date, date)
    }

    /// Whether the resident has one of `any`. A policy's `disabled` (失能, any level) is met by
    /// a level code (`disabled_1`..`disabled_3`) too, as the roster may record only the level.
    pub fn has_any_category(&self, any: &[Category]) -> bool {
        has_any_category(&self.categories, any)
    }
}

fn has_any_category(held: &BTreeSet<Category>, any: &[Category]) -> bool {
    let any_level = || held.iter().any(Category::is_disability_level);
    any.iter()
        .any(|c| held.contains(c) || (c.0 == Category::DISABLED && any_level()))
}

/// Age in whole years on `date`: the birthday itself counts. Someone born on 29 February has
/// their birthday on 28 February in a common year: a period counted in years ends on the
/// corresponding day of the month, or on the month's last day where there is none (民法典
/// 第二百零二条).
pub fn age_on(birth: NaiveDate, date: NaiveDate) -> u32 {
    if date < birth {
        return 0;
    }
    let mut years = date.year() - birth.year();
    let leap_day = (birth.month(), birth.day()) == (2, 29);
    let birthday = if leap_day && !date.leap_year() {
        (2, 28)
    } else {
        (birth.month(), birth.day())
    };
    if (date.month(), date.day()) < birthday {
        years -= 1;
    }
    years as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn age_counts_the_birthday() {
        assert_eq!(age_on(d(1960, 3, 1), d(2025, 2, 28)), 64);
        assert_eq!(age_on(d(1960, 3, 1), d(2025, 3, 1)), 65);
        // 民法典 art. 202: no 29 February in 2025, so the month's last day is the birthday
        assert_eq!(age_on(d(1960, 2, 29), d(2025, 2, 27)), 64);
        assert_eq!(age_on(d(1960, 2, 29), d(2025, 2, 28)), 65);
        assert_eq!(age_on(d(1960, 2, 29), d(2025, 3, 1)), 65);
        assert_eq!(age_on(d(1960, 2, 29), d(2024, 2, 28)), 63);
        assert_eq!(age_on(d(1960, 2, 29), d(2024, 2, 29)), 64);
        assert_eq!(age_on(d(2030, 1, 1), d(2025, 1, 1)), 0);
    }

    #[test]
    fn national_id_checks_and_masks() {
        // A syntactically valid number (check digit computed by GB 11643).
        let id = NationalId::parse("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(format!("{id:?}"), "NationalId(110105********002X)");
        assert_eq!(id.birth_date(), Some(d(1949, 12, 31)));
        assert_eq!(id.sex(), Sex::Female);
        assert!(
            NationalId::parse("110105194912310021")
                .unwrap_err()
                .contains("check digit")
        );
        assert!(NationalId::parse("1101051949").unwrap_err().contains("18"));
        assert!(NationalId::parse("11010519491331002X").is_err());
    }

    #[test]
    fn a_disability_level_meets_the_general_disability_category() {
        let mut r = Resident {
            id: ResidentId(1),
            name: "x".into(),
            sex: Sex::Male,
            birth_date: d(1940, 1, 1),
            local_registration: true,
            registered_town: TownCode::new("t"),
            residence_town: TownCode::new("t"),
            categories: [Category::new("disabled_3")].into(),
            status: ResidentStatus::Active,
            card_code: "c".into(),
            designated_canteen: None,
            prepaid_balance: None,
            consent: Consent::default(),
            face_enrolled: false,
        };
        assert!(r.has_any_category(&[Category::new(Category::DISABLED)]));
        assert!(r.has_any_category(&[Category::new("disabled_3")]));
        assert!(!r.has_any_category(&[Category::new("disabled_2")]));
        assert!(!r.has_any_category(&[Category::new(Category::DIBAO)]));
        // The general code does not meet a specific level.
        r.categories = [Category::new(Category::DISABLED)].into();
        assert!(!r.has_any_category(&[Category::new("disabled_3")]));
        // Only `disabled_<digits>` is a level.
        r.categories = [Category::new("disabled_x")].into();
        assert!(!r.has_any_category(&[Category::new(Category::DISABLED)]));
        assert!(Category::new("disabled_12").is_disability_level());
        assert!(!Category::new("disabled_").is_disability_level());
        assert!(!Category::new("disabled").is_disability_level());
    }

    #[test]
    fn category_codes_are_validated() {
        assert!(Category::parse("dibao").is_ok());
        assert!(Category::parse("Dibao").is_err());
        assert!(Category::parse("").is_err());
        assert_eq!(Category::new("tekun").label_zh(), "特困");
    }
}
