//! `zhucan-platform`: what the server and the kiosk share beside the pure domain, one of each:
//! the injected [`clock`], the [`shutdown`] signal, the SQLite [`migrate`]r and the one
//! timestamp format ([`stamp`]).

pub mod clock;
pub mod migrate;
pub mod shutdown;

use chrono::{DateTime, SecondsFormat, Utc};

/// A time as it is stored and sent: RFC 3339 in UTC with milliseconds (`2026-03-15T04:00:00.000Z`),
/// so stored times sort as text.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_stamp_is_utc_with_milliseconds_and_sorts_as_text() {
        let t = Utc
            .with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
            .single()
            .expect("time");
        assert_eq!(stamp(t), "2026-03-15T04:00:00.000Z");
        let later = t + chrono::Duration::milliseconds(5);
        assert!(stamp(t) < stamp(later));
    }
}
