//! Face templates, sealed: this module stores and returns ciphertext only (sealing and opening
//! live in `crate::templates`). A kiosk at canteen K may hold a resident's templates when the
//! resident consents to face enrolment, is not deceased, and either was enrolled at K or consents
//! to template sharing; [`for_sync`] and [`purged_for_sync`] apply that rule in SQL.

use zhucan_domain::{CanteenId, ResidentId};

use super::changes::{self, Kind, Subject};
use super::sql::{Conn, params};
use super::{Error, Result, Tx};

pub use super::Sealed;

/// A resident's stored templates, still sealed.
#[derive(Debug, Clone)]
pub struct StoredSet {
    pub resident_id: ResidentId,
    pub enrolled_canteen: CanteenId,
    pub model: String,
    pub dim: usize,
    pub sealed: Vec<Sealed>,
}

/// What a template upload replaces the resident's templates with.
#[derive(Debug, Clone)]
pub struct NewSet<'a> {
    pub resident_id: ResidentId,
    pub enrolled_canteen: CanteenId,
    pub model: &'a str,
    pub dim: usize,
    pub sealed: &'a [Sealed],
    pub kiosk_id: Option<i64>,
}

/// Replaces every template of the resident and records a template change.
pub fn replace(tx: &Tx<'_>, set: &NewSet<'_>, at: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM face_templates WHERE resident_id = ?1",
        [set.resident_id.0],
    )?;
    let dim = i64::try_from(set.dim).map_err(Error::other)?;
    for s in set.sealed {
        tx.execute(
            "INSERT INTO face_templates (resident_id, enrolled_canteen, model, dim, nonce,
                ciphertext, created_at, kiosk_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                set.resident_id.0,
                set.enrolled_canteen.0,
                set.model,
                dim,
                s.nonce,
                s.ciphertext,
                at,
                set.kiosk_id
            ],
        )
        .map_err(|e| match e {
            Error::Conflict(m) if super::foreign_key(&m) => {
                Error::invalid("canteen", "no such canteen")
            }
            other => other,
        })?;
    }
    changes::record(tx, Kind::Templates, Subject::Id(set.resident_id.0), at)?;
    Ok(())
}

/// The one purge of a resident's face data: deletes their templates, clears `face_enrolled` and,
/// when there were any, records the purge (`face_data_purges`, with `reason`: `withdrawal`,
/// `death`, `deletion`). Records no change for the kiosks (the caller does, once). Returns how
/// many templates were deleted.
pub(crate) fn purge_face_data(
    tx: &Tx<'_>,
    resident: ResidentId,
    reason: &str,
    at: &str,
    by: &str,
) -> Result<i64> {
    let n = count(tx, resident)?;
    tx.execute(
        "DELETE FROM face_templates WHERE resident_id = ?1",
        [resident.0],
    )?;
    tx.execute(
        "UPDATE residents SET face_enrolled = 0 WHERE id = ?1",
        [resident.0],
    )?;
    if n > 0 {
        super::face_data::record_purge(tx, resident, reason, n, at, by)?;
    }
    Ok(n)
}

/// Deletes the resident's templates on request (re-enrolment or deletion at a kiosk): the purge
/// ([`purge_face_data`], reason `deletion`) and the roster and template changes. Consent is left
/// as it is. Returns how many templates were deleted, and the change-log `seq` that records it.
pub fn delete(tx: &Tx<'_>, resident: ResidentId, at: &str, by: &str) -> Result<(i64, i64)> {
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM residents WHERE id = ?1)",
        [resident.0],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(super::Error::NotFound);
    }
    let n = purge_face_data(tx, resident, "deletion", at, by)?;
    changes::record(tx, Kind::Resident, Subject::Id(resident.0), at)?;
    let seq = changes::record(tx, Kind::Templates, Subject::Id(resident.0), at)?;
    Ok((n, seq))
}

/// The canteens at which the resident's stored templates were enrolled.
pub fn enrolled_at(conn: &Conn<'_>, resident: ResidentId) -> Result<Vec<CanteenId>> {
    conn.query_map(
        "SELECT DISTINCT enrolled_canteen FROM face_templates WHERE resident_id = ?1
         ORDER BY enrolled_canteen",
        [resident.0],
        |r| Ok(CanteenId(r.get(0)?)),
    )
}

/// A kiosk at `canteen` may change only templates its canteen enrolled: refuses (Forbidden)
/// when the resident holds templates enrolled anywhere else.
pub fn check_kiosk_may_change(tx: &Tx<'_>, resident: ResidentId, canteen: CanteenId) -> Result<()> {
    let elsewhere: Vec<i64> = enrolled_at(tx, resident)?
        .into_iter()
        .filter(|c| *c != canteen)
        .map(|c| c.0)
        .collect();
    if elsewhere.is_empty() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "the resident's face templates were enrolled at canteen {elsewhere:?}: only that \
             canteen's kiosk or an administrator may replace or delete them"
        )))
    }
}

/// How many templates the resident has (tests, the dashboard).
pub fn count(conn: &Conn<'_>, resident: ResidentId) -> Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM face_templates WHERE resident_id = ?1",
        [resident.0],
        |r| r.get(0),
    )
}

/// The condition under which a kiosk at canteen `?1` may hold the row `t` of resident `r`.
const MAY_HOLD: &str = "r.consent_face = 1 AND r.status <> 'deceased'
    AND (t.enrolled_canteen = ?1 OR r.consent_sharing = 1)";

/// Whether a kiosk at `canteen` can have matched `resident`'s face: the server holds templates
/// of theirs that such a kiosk may hold. (A deletion clears `face_enrolled` too, so a face meal
/// from before it is refused by the policy as `not_enrolled` either way.)
pub fn canteen_could_match(
    conn: &Conn<'_>,
    canteen: CanteenId,
    resident: ResidentId,
) -> Result<bool> {
    conn.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM face_templates t JOIN residents r ON r.id = t.resident_id
                            WHERE t.resident_id = ?2 AND {MAY_HOLD})"
        ),
        [canteen.0, resident.0],
        |r| r.get(0),
    )
}

/// The template sets a kiosk at `canteen` may hold: all of them when `since` is `None`, else
/// those of residents with a template change after `since`.
pub fn for_sync(conn: &Conn<'_>, canteen: CanteenId, since: Option<i64>) -> Result<Vec<StoredSet>> {
    let mut out: Vec<StoredSet> = Vec::new();
    conn.for_each(
        &format!(
            "SELECT t.resident_id, t.enrolled_canteen, t.model, t.dim, t.nonce, t.ciphertext
             FROM face_templates t JOIN residents r ON r.id = t.resident_id
             WHERE {MAY_HOLD}
               AND (CAST(?2 AS BIGINT) IS NULL OR t.resident_id IN
                    (SELECT subject_id FROM changes WHERE kind = 'templates' AND seq > ?2))
             ORDER BY t.resident_id, t.id"
        ),
        params![canteen.0, since],
        |r| {
            let resident_id = ResidentId(r.get(0)?);
            let sealed = Sealed {
                nonce: r.get(4)?,
                ciphertext: r.get(5)?,
            };
            match out.last_mut() {
                Some(last) if last.resident_id == resident_id => last.sealed.push(sealed),
                _ => out.push(StoredSet {
                    resident_id,
                    enrolled_canteen: CanteenId(r.get(1)?),
                    model: r.get(2)?,
                    dim: r.get::<_, i64>(3)? as usize,
                    sealed: vec![sealed],
                }),
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Residents with a template change after `since` whose templates a kiosk at `canteen` may not
/// hold (any more): it must delete whatever it has of them. Deleting what it never had is a
/// no-op, so this may name residents the kiosk never held.
pub fn purged_for_sync(conn: &Conn<'_>, canteen: CanteenId, since: i64) -> Result<Vec<ResidentId>> {
    conn.query_map(
        &format!(
            "SELECT DISTINCT c.subject_id FROM changes c
             WHERE c.kind = 'templates' AND c.seq > ?2 AND c.subject_id NOT IN
                (SELECT t.resident_id FROM face_templates t JOIN residents r ON r.id = t.resident_id
                 WHERE {MAY_HOLD})
             ORDER BY c.subject_id"
        ),
        [canteen.0, since],
        |r| Ok(ResidentId(r.get(0)?)),
    )
}
