//! How much face data the server holds (residents with templates, templates, per canteen of
//! enrolment, consenting to sharing) and what it let go (the `face_data_purges` ledger and
//! consent withdrawals), for the face-data page: operators must file with the provincial
//! regulator once they hold the face data of 100,000 people.

use zhucan_domain::{CanteenId, ResidentId};

use super::sql::{Conn, params};
use super::{Result, Tx};

/// Records that `templates` face templates of `resident` were deleted, and why (`withdrawal`,
/// `death` or `deletion`).
pub fn record_purge(
    tx: &Tx<'_>,
    resident: ResidentId,
    reason: &str,
    templates: i64,
    at: &str,
    by: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO face_data_purges (resident_id, reason, templates, at, by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![resident.0, reason, templates, at, by],
    )?;
    Ok(())
}

/// Face data held per canteen of enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanteenCount {
    pub canteen_id: CanteenId,
    pub name: String,
    pub residents: i64,
    pub templates: i64,
}

/// What the server holds now, and what left it within a period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Residents with at least one template on the server.
    pub residents: i64,
    pub templates: i64,
    /// Of `residents`, those who consent to their templates being shared with other canteens.
    pub sharing: i64,
    pub by_canteen: Vec<CanteenCount>,
    /// Residents who withdrew consent to face enrolment within the period.
    pub withdrawals: i64,
    /// Residents whose templates were purged within the period, in all and by reason.
    pub purged: i64,
    pub purged_withdrawal: i64,
    pub purged_death: i64,
    pub purged_deletion: i64,
}

/// The counts now, with withdrawals and purges between `from` (inclusive) and `to` (exclusive),
/// both UTC RFC 3339 in the stored format.
pub fn summary(conn: &Conn<'_>, from: &str, to: &str) -> Result<Summary> {
    let (residents, templates, sharing): (i64, i64, i64) = conn.query_row(
        "SELECT count(DISTINCT t.resident_id), count(*),
            count(DISTINCT CASE WHEN r.consent_sharing = 1 THEN t.resident_id END)
         FROM face_templates t JOIN residents r ON r.id = t.resident_id",
        (),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    // The canteen's name is grouped by too: PostgreSQL refuses an ungrouped column (it is one
    // per canteen, so the groups are the same).
    let by_canteen = conn.query_map(
        "SELECT t.enrolled_canteen, c.name, count(DISTINCT t.resident_id), count(*)
         FROM face_templates t JOIN canteens c ON c.id = t.enrolled_canteen
         GROUP BY t.enrolled_canteen, c.name ORDER BY t.enrolled_canteen",
        (),
        |r| {
            Ok(CanteenCount {
                canteen_id: CanteenId(r.get(0)?),
                name: r.get(1)?,
                residents: r.get(2)?,
                templates: r.get(3)?,
            })
        },
    )?;
    let withdrawals: i64 = conn.query_row(
        "SELECT count(DISTINCT resident_id) FROM consent_records
         WHERE kind = 'face_enrolment' AND granted = 0 AND at >= ?1 AND at < ?2",
        [from, to],
        |r| r.get(0),
    )?;
    let (purged, pw, pd, pl): (i64, i64, i64, i64) = conn.query_row(
        "SELECT count(DISTINCT resident_id),
            count(DISTINCT CASE WHEN reason = 'withdrawal' THEN resident_id END),
            count(DISTINCT CASE WHEN reason = 'death' THEN resident_id END),
            count(DISTINCT CASE WHEN reason = 'deletion' THEN resident_id END)
         FROM face_data_purges WHERE at >= ?1 AND at < ?2",
        [from, to],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Summary {
        residents,
        templates,
        sharing,
        by_canteen,
        withdrawals,
        purged,
        purged_withdrawal: pw,
        purged_death: pd,
        purged_deletion: pl,
    })
}
