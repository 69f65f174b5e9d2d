//! Face templates, sealed: this module stores and returns ciphertext only (sealing and opening
//! live in `crate::templates`). A kiosk at canteen K may hold a resident's templates when the
//! resident consents to face enrolment, is not deceased, and either was enrolled at K or consents
//! to template sharing; [`for_sync`] and [`purged_for_sync`] apply that rule in SQL.

use rusqlite::{Connection, params};
use zhucan_domain::{CanteenId, ResidentId};

use super::changes::{self, Kind, Subject};
use super::sql::Conn;
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
    tx.prepare_cached("DELETE FROM face_templates WHERE resident_id = ?1")?
        .execute([set.resident_id.0])?;
    let mut st = tx.prepare_cached(
        "INSERT INTO face_templates (resident_id, enrolled_canteen, model, dim, nonce, ciphertext,
            created_at, kiosk_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for s in set.sealed {
        st.execute(params![
            set.resident_id.0,
            set.enrolled_canteen.0,
            set.model,
            set.dim as i64,
            s.nonce,
            s.ciphertext,
            at,
            set.kiosk_id
        ])
        .map_err(|e| match Error::from(e) {
            Error::Conflict(m) if m.contains("FOREIGN KEY") => {
                Error::invalid("canteen", "no such canteen")
            }
            other => other,
        })?;
    }
    changes::record(
        &Conn::Sqlite(tx),
        Kind::Templates,
        Subject::Id(set.resident_id.0),
        at,
    )?;
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
    tx.prepare_cached("DELETE FROM face_templates WHERE resident_id = ?1")?
        .execute([resident.0])?;
    tx.prepare_cached("UPDATE residents SET face_enrolled = 0 WHERE id = ?1")?
        .execute([resident.0])?;
    if n > 0 {
        super::face_data::record_purge(tx, resident, reason, n, at, by)?;
    }
    Ok(n)
}

/// Deletes the resident's templates on request (re-enrolment or deletion at a kiosk): the purge
/// ([`purge_face_data`], reason `deletion`) and the roster and template changes. Consent is left
/// as it is. Returns how many templates were deleted, and the change-log `seq` that records it.
pub fn delete(tx: &Tx<'_>, resident: ResidentId, at: &str, by: &str) -> Result<(i64, i64)> {
    let exists: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM residents WHERE id = ?1)")?
        .query_row([resident.0], |r| r.get(0))?;
    if !exists {
        return Err(super::Error::NotFound);
    }
    let n = purge_face_data(tx, resident, "deletion", at, by)?;
    changes::record(
        &Conn::Sqlite(tx),
        Kind::Resident,
        Subject::Id(resident.0),
        at,
    )?;
    let seq = changes::record(
        &Conn::Sqlite(tx),
        Kind::Templates,
        Subject::Id(resident.0),
        at,
    )?;
    Ok((n, seq))
}

/// The canteens at which the resident's stored templates were enrolled.
pub fn enrolled_at(conn: &Connection, resident: ResidentId) -> Result<Vec<CanteenId>> {
    let mut st = conn.prepare_cached(
        "SELECT DISTINCT enrolled_canteen FROM face_templates WHERE resident_id = ?1
         ORDER BY enrolled_canteen",
    )?;
    let rows = st.query_map([resident.0], |r| Ok(CanteenId(r.get(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
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
pub fn count(conn: &Connection, resident: ResidentId) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM face_templates WHERE resident_id = ?1")?
        .query_row([resident.0], |r| r.get(0))?)
}

/// The condition under which a kiosk at canteen `?1` may hold the row `t` of resident `r`.
const MAY_HOLD: &str = "r.consent_face = 1 AND r.status <> 'deceased'
    AND (t.enrolled_canteen = ?1 OR r.consent_sharing = 1)";

/// Whether a kiosk at `canteen` can have matched `resident`'s face: the server holds templates
/// of theirs that such a kiosk may hold. (A deletion clears `face_enrolled` too, so a face meal
/// from before it is refused by the policy as `not_enrolled` either way.)
pub fn canteen_could_match(
    conn: &Connection,
    canteen: CanteenId,
    resident: ResidentId,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM face_templates t JOIN residents r ON r.id = t.resident_id
                            WHERE t.resident_id = ?2 AND {MAY_HOLD})"
        ))?
        .query_row(params![canteen.0, resident.0], |r| r.get(0))?)
}

/// The template sets a kiosk at `canteen` may hold: all of them when `since` is `None`, else
/// those of residents with a template change after `since`.
pub fn for_sync(
    conn: &Connection,
    canteen: CanteenId,
    since: Option<i64>,
) -> Result<Vec<StoredSet>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT t.resident_id, t.enrolled_canteen, t.model, t.dim, t.nonce, t.ciphertext
         FROM face_templates t JOIN residents r ON r.id = t.resident_id
         WHERE {MAY_HOLD}
           AND (?2 IS NULL OR t.resident_id IN
                (SELECT subject_id FROM changes WHERE kind = 'templates' AND seq > ?2))
         ORDER BY t.resident_id, t.id"
    ))?;
    let mut rows = st.query(params![canteen.0, since])?;
    let mut out: Vec<StoredSet> = Vec::new();
    while let Some(r) = rows.next()? {
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
    }
    Ok(out)
}

/// Residents with a template change after `since` whose templates a kiosk at `canteen` may not
/// hold (any more): it must delete whatever it has of them. Deleting what it never had is a
/// no-op, so this may name residents the kiosk never held.
pub fn purged_for_sync(
    conn: &Connection,
    canteen: CanteenId,
    since: i64,
) -> Result<Vec<ResidentId>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT DISTINCT c.subject_id FROM changes c
         WHERE c.kind = 'templates' AND c.seq > ?2 AND c.subject_id NOT IN
            (SELECT t.resident_id FROM face_templates t JOIN residents r ON r.id = t.resident_id
             WHERE {MAY_HOLD})
         ORDER BY c.subject_id"
    ))?;
    let rows = st.query_map(params![canteen.0, since], |r| Ok(ResidentId(r.get(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
