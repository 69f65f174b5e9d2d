//! Look-alike pairs (`lookalike_pairs`, migration 0010): two residents whose face templates look
//! like one person's. A pair is `confirmed` when staff enrolled the second resident anyway, with
//! a reason (twins, a look-alike), and `found` when the administrator's scan came upon it. The
//! smaller resident id is always `resident_a`; a scan never overwrites a confirmed pair. The
//! audit red flags turn these rows into `lookalike` flags. Also the sealed templates the
//! duplicate search opens (this module returns ciphertext only, like `db::templates`).

use zhucan_domain::ResidentId;

use super::Sealed;
use super::sql::{Conn, params};
use super::{Error, Result, Tx};

/// One pair as stored, with both residents' names.
#[derive(Debug, Clone, PartialEq)]
pub struct LookalikePair {
    pub resident_a: ResidentId,
    pub name_a: String,
    pub resident_b: ResidentId,
    pub name_b: String,
    /// The best cosine similarity between a template of each.
    pub score: f64,
    /// `confirmed` or `found`.
    pub state: String,
    /// Why staff judged them two people (confirmed pairs).
    pub reason: Option<String>,
    /// Who confirmed (confirmed pairs).
    pub by: Option<String>,
    /// When the pair was confirmed or last found.
    pub at: String,
}

/// One stored template, sealed, with its owner.
#[derive(Debug, Clone)]
pub struct SealedTemplate {
    pub resident_id: ResidentId,
    pub dim: usize,
    pub sealed: Sealed,
}

/// Every stored template, optionally only of dimension `dim` and not of resident `except`,
/// ordered by resident.
pub fn sealed_templates(
    conn: &Conn<'_>,
    dim: Option<usize>,
    except: Option<ResidentId>,
) -> Result<Vec<SealedTemplate>> {
    let dim = dim
        .map(|d| i64::try_from(d).map_err(Error::other))
        .transpose()?;
    conn.query_map(
        "SELECT resident_id, dim, nonce, ciphertext FROM face_templates
         WHERE (CAST(?1 AS BIGINT) IS NULL OR dim = ?1)
           AND (CAST(?2 AS BIGINT) IS NULL OR resident_id <> ?2)
         ORDER BY resident_id, id",
        [dim, except.map(|r| r.0)],
        |r| {
            Ok(SealedTemplate {
                resident_id: ResidentId(r.get(0)?),
                dim: r.get::<_, i64>(1)? as usize,
                sealed: Sealed {
                    nonce: r.get(2)?,
                    ciphertext: r.get(3)?,
                },
            })
        },
    )
}

/// The pair in stored order (smaller id first).
fn ordered(x: ResidentId, y: ResidentId) -> (i64, i64) {
    (x.0.min(y.0), x.0.max(y.0))
}

/// Records (or re-records) the pair as confirmed by staff.
pub fn confirm(
    tx: &Tx<'_>,
    x: ResidentId,
    y: ResidentId,
    score: f64,
    reason: &str,
    by: &str,
    at: &str,
) -> Result<()> {
    let (a, b) = ordered(x, y);
    tx.execute(
        "INSERT INTO lookalike_pairs (resident_a, resident_b, score, state, reason, confirmed_by, at)
         VALUES (?1, ?2, ?3, 'confirmed', ?4, ?5, ?6)
         ON CONFLICT (resident_a, resident_b) DO UPDATE SET
            score = excluded.score, state = 'confirmed', reason = excluded.reason,
            confirmed_by = excluded.confirmed_by, at = excluded.at",
        params![a, b, score, reason, by, at],
    )?;
    Ok(())
}

/// Records the pair as found by a scan, unless it is confirmed (then nothing changes). Returns
/// whether the row was written.
pub fn record_found(
    tx: &Tx<'_>,
    x: ResidentId,
    y: ResidentId,
    score: f64,
    at: &str,
) -> Result<bool> {
    let (a, b) = ordered(x, y);
    let n = tx.execute(
        "INSERT INTO lookalike_pairs (resident_a, resident_b, score, state, at)
         VALUES (?1, ?2, ?3, 'found', ?4)
         ON CONFLICT (resident_a, resident_b) DO UPDATE SET
            score = excluded.score, at = excluded.at
         WHERE lookalike_pairs.state = 'found'",
        params![a, b, score, at],
    )?;
    Ok(n > 0)
}

/// Every pair with both names, confirmed first, then by score (highest first).
pub fn list(conn: &Conn<'_>) -> Result<Vec<LookalikePair>> {
    conn.query_map(
        "SELECT p.resident_a, ra.name, p.resident_b, rb.name, p.score, p.state, p.reason,
                p.confirmed_by, p.at
         FROM lookalike_pairs p
         JOIN residents ra ON ra.id = p.resident_a
         JOIN residents rb ON rb.id = p.resident_b
         ORDER BY p.state = 'confirmed' DESC, p.score DESC, p.resident_a, p.resident_b",
        (),
        |r| {
            Ok(LookalikePair {
                resident_a: ResidentId(r.get(0)?),
                name_a: r.get(1)?,
                resident_b: ResidentId(r.get(2)?),
                name_b: r.get(3)?,
                score: r.get(4)?,
                state: r.get(5)?,
                reason: r.get(6)?,
                by: r.get(7)?,
                at: r.get(8)?,
            })
        },
    )
}

/// A resident's name (for the duplicate refusal's message).
pub fn name_of(conn: &Conn<'_>, resident: ResidentId) -> Result<String> {
    conn.query_row(
        "SELECT name FROM residents WHERE id = ?1",
        [resident.0],
        |r| r.get(0),
    )
}
