//! Money is integer fen (1 yuan = 100 fen). Never a float.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use serde::{Deserialize, Serialize};

/// An amount of money in fen (1 yuan = 100 fen): an integer, never a float. Signed so that
/// adjustments and refunds can be negative.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn from_yuan(yuan: i64) -> Fen {
        Fen(yuan * 100)
    }

    /// `self * percent / 100`, rounded down (towards zero for non-negative amounts).
    pub fn percent(self, percent: u32) -> Fen {
        Fen(self.0 * i64::from(percent) / 100)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Yuan as a number, for spreadsheet cells formatted `0.00` (display only: money is fen).
    pub fn as_yuan_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// `¥1,234.50`: yuan with two decimals and thousands separators (the dashboard's form).
    pub fn grouped(self) -> String {
        let a = self.0.unsigned_abs();
        let int = (a / 100).to_string();
        let mut grouped = String::new();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if self.0 < 0 { "-" } else { "" };
        format!("{sign}¥{grouped}.{:02}", a % 100)
    }

    /// Parse "12.50", "12.5", "12" (yuan) into fen. More than two decimals is an error.
    pub fn parse_yuan(s: &str) -> Result<Fen, String> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("'{s}' is not an amount in yuan"));
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{s}' has more than two decimals or is not a number"
            ));
        }
        let whole: i64 = int.parse().map_err(|_| format!("'{s}' is too large"))?;
        let mut cents: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().unwrap_or(0)
        };
        if frac.len() == 1 {
            cents *= 10;
        }
        let fen = whole
            .checked_mul(100)
            .and_then(|v| v.checked_add(cents))
            .ok_or_else(|| format!("'{s}' is too large"))?;
        Ok(Fen(if neg { -fen } else { fen }))
    }
}

impl fmt::Display for Fen {
    /// Yuan with two decimals: `Fen(1250)` is "12.50".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl Add for Fen {
    type Output = Fen;
    fn add(self, rhs: Fen) -> Fen {
        Fen(self.0 + rhs.0)
    }
}
impl AddAssign for Fen {
    fn add_assign(&mut self, rhs: Fen) {
        self.0 += rhs.0;
    }
}
impl Sub for Fen {
    type Output = Fen;
    fn sub(self, rhs: Fen) -> Fen {
        Fen(self.0 - rhs.0)
    }
}
impl SubAssign for Fen {
    fn sub_assign(&mut self, rhs: Fen) {
        self.0 -= rhs.0;
    }
}
impl Neg for Fen {
    type Output = Fen;
    fn neg(self) -> Fen {
        Fen(-self.0)
    }
}
impl Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}
impl<'a> Sum<&'a Fen> for Fen {
    fn sum<I: Iterator<Item = &'a Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_yuan() {
        assert_eq!(Fen(1250).to_string(), "12.50");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-305).to_string(), "-3.05");
    }

    #[test]
    fn parses_yuan() {
        assert_eq!(Fen::parse_yuan("12.5"), Ok(Fen(1250)));
        assert_eq!(Fen::parse_yuan("12.05"), Ok(Fen(1205)));
        assert_eq!(Fen::parse_yuan("7"), Ok(Fen(700)));
        assert_eq!(Fen::parse_yuan("-1.20"), Ok(Fen(-120)));
        assert!(Fen::parse_yuan("1.234").is_err());
        assert!(Fen::parse_yuan("abc").is_err());
        assert!(Fen::parse_yuan("").is_err());
    }

    #[test]
    fn yuan_for_people_and_for_spreadsheets() {
        assert_eq!(Fen(123_456_789).grouped(), "¥1,234,567.89");
        assert_eq!(Fen(-305).grouped(), "-¥3.05");
        assert_eq!(Fen(7).grouped(), "¥0.07");
        assert_eq!(Fen(1250).as_yuan_f64(), 12.5);
    }

    #[test]
    fn percent_rounds_down() {
        assert_eq!(Fen(333).percent(50), Fen(166));
        assert_eq!(Fen(1000).percent(30), Fen(300));
    }
}
