//! How many people's face data the server holds, per canteen of enrolment and consenting to
//! sharing, against the 100,000 at which the operator must file with the provincial regulator;
//! and what was withdrawn or purged this (local) month. The API and the dashboard read it here.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use zhucan_domain::api::{FaceDataCanteen, FaceDataSummary};

use crate::db::{self, Db};

/// People whose face data the operator may hold before filing with the provincial regulator.
pub const FILING_THRESHOLD: i64 = 100_000;
/// From here the page warns.
pub const WARNING_FROM: i64 = 80_000;

/// The UTC instant local midnight of `d` falls on, in the stored text form.
fn local_midnight(d: NaiveDate, tz: Tz) -> String {
    let t = tz
        .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or_else(
            || d.and_time(chrono::NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        );
    zhucan_platform::stamp(t)
}

/// The summary at `now`, with this local month's withdrawals and purges.
#[tracing::instrument(skip(db))]
pub async fn summary(db: &Db, tz: Tz, now: DateTime<Utc>) -> db::Result<FaceDataSummary> {
    let today = now.with_timezone(&tz).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let (from, to) = (local_midnight(first, tz), local_midnight(next, tz));
    let s = db
        .read(move |c| db::face_data::summary(c, &from, &to))
        .await?;
    let percent = (s.residents as f64 * 10_000.0 / FILING_THRESHOLD as f64).round() / 100.0;
    Ok(FaceDataSummary {
        residents: s.residents,
        templates: s.templates,
        residents_sharing: s.sharing,
        by_canteen: s
            .by_canteen
            .into_iter()
            .map(|c| FaceDataCanteen {
                canteen_id: c.canteen_id,
                name: c.name,
                residents: c.residents,
                templates: c.templates,
            })
            .collect(),
        filing_threshold: FILING_THRESHOLD,
        warning_from: WARNING_FROM,
        percent_of_threshold: percent,
        warning: s.residents >= WARNING_FROM,
        month: first.format("%Y-%m").to_string(),
        withdrawals_this_month: s.withdrawals,
        purged_this_month: s.purged,
        purged_withdrawal: s.purged_withdrawal,
        purged_death: s.purged_death,
        purged_deletion: s.purged_deletion,
    })
}
