//! Months, the statement's period (`YYYY-MM`): parsing one, and the month a date counts in. A
//! leaf module: ingestion, corrections, flags, reports and the pages all use it.

use chrono::{Datelike, NaiveDate};

/// Parses `YYYY-MM` (years 2000 to 2999): `(year, month)`, or `None`.
pub fn parse_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    ((2000..3000).contains(&y) && (1..=12).contains(&m)).then_some((y, m))
}

/// `YYYY-MM` of a date: the period a meal's amounts count in.
pub fn month_of(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_dates_fall_in_theirs() {
        assert_eq!(parse_month("2026-03"), Some((2026, 3)));
        for bad in ["2026-3", "2026-13", "1999-12", "26-03", "2026/03", ""] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
        let d = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        assert_eq!(month_of(d), "2026-12");
    }
}
