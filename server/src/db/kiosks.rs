//! Registered kiosks: their bearer-token hashes, public keys (registration and rotation, see
//! [`super::chain`]), one-time enrolment codes, revocation and the status their heartbeats report.

use chrono::{DateTime, Utc};
use zhucan_domain::CanteenId;
use zhucan_domain::api::KioskStatus;
use zhucan_domain::signing;

use super::sql::{Conn, OptionalExtension, Row, params};
use super::{Error, Result, Tx};

/// A kiosk as authenticated from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kiosk {
    pub id: i64,
    pub canteen_id: CanteenId,
}

/// Registers a kiosk with its token hash and its first public key (verifying records from seq 1;
/// the caller has checked it with `signing::decode_public_key`).
pub fn insert(
    tx: &Tx<'_>,
    canteen: CanteenId,
    name: &str,
    token_hash: &str,
    public_key: &str,
    now: &str,
) -> Result<i64> {
    let exists: i64 = tx.query_row(
        "SELECT count(*) FROM canteens WHERE id = ?1",
        [canteen.0],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Err(Error::invalid(
            "canteen_id",
            format!("no canteen {}", canteen.0),
        ));
    }
    let id: i64 = tx.query_row(
        "INSERT INTO kiosks (canteen_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![canteen.0, name, token_hash, now],
        |r| r.get(0),
    )?;
    super::chain::add_key(tx, id, 1, public_key, now)?;
    Ok(id)
}

/// The live (not revoked) kiosk whose token hashes to `token_hash`.
pub fn by_token_hash(conn: &Conn<'_>, token_hash: &str) -> Result<Option<Kiosk>> {
    conn.query_row(
        "SELECT id, canteen_id FROM kiosks WHERE token_hash = ?1 AND revoked_at IS NULL",
        [token_hash],
        |r| {
            Ok(Kiosk {
                id: r.get(0)?,
                canteen_id: CanteenId(r.get(1)?),
            })
        },
    )
    .optional()
}

/// A one-time enrolment code, stored as the sha256 of its normalised text.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub code_hash: &'a str,
    pub canteen_id: CanteenId,
    pub name: &'a str,
    pub created_at: &'a str,
    pub expires_at: &'a str,
}

pub fn insert_code(tx: &Tx<'_>, c: &NewCode<'_>) -> Result<()> {
    let exists: i64 = tx.query_row(
        "SELECT count(*) FROM canteens WHERE id = ?1",
        [c.canteen_id.0],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Err(Error::invalid(
            "canteen_id",
            format!("no canteen {}", c.canteen_id.0),
        ));
    }
    tx.execute(
        "INSERT INTO enrolment_codes (code_hash, canteen_id, name, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            c.code_hash,
            c.canteen_id.0,
            c.name,
            c.created_at,
            c.expires_at
        ],
    )?;
    Ok(())
}

/// Why a code cannot register a kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    Unknown,
    Used,
    Expired,
}

/// Consumes the code (hash) and registers a kiosk with `token_hash` and `public_key`: the kiosk,
/// its canteen and name. `now` is RFC 3339 UTC with millisecond precision, like the stored
/// `expires_at`, so the two compare as text.
pub fn enrol(
    tx: &Tx<'_>,
    code_hash: &str,
    token_hash: &str,
    public_key: &str,
    now: &str,
) -> Result<std::result::Result<(i64, CanteenId, String), CodeProblem>> {
    let row: Option<(i64, String, String, Option<String>)> = tx
        .query_row(
            "SELECT canteen_id, name, expires_at, used_at FROM enrolment_codes
             WHERE code_hash = ?1",
            [code_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((canteen, name, expires_at, used_at)) = row else {
        return Ok(Err(CodeProblem::Unknown));
    };
    if used_at.is_some() {
        return Ok(Err(CodeProblem::Used));
    }
    if now >= expires_at.as_str() {
        return Ok(Err(CodeProblem::Expired));
    }
    let canteen = CanteenId(canteen);
    let id = insert(tx, canteen, &name, token_hash, public_key, now)?;
    tx.execute(
        "UPDATE enrolment_codes SET used_at = ?2, kiosk_id = ?3 WHERE code_hash = ?1",
        params![code_hash, now, id],
    )?;
    Ok(Ok((id, canteen, name)))
}

/// Why a key rotation is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateProblem {
    /// `from_seq` is not after every record already received (or before the current key's).
    FromSeq { at_least: u64 },
    /// The handover is not signed by the kiosk's current key.
    Signature,
}

/// A key rotation, already shape-checked (the new key decodes).
#[derive(Debug, Clone)]
pub struct Rotation<'a> {
    pub kiosk_id: i64,
    pub from_seq: u64,
    pub public_key: &'a str,
    pub signature: &'a str,
    pub token_hash: &'a str,
    pub now: &'a str,
}

/// Hands the kiosk over to a new key for records from `from_seq` on and replaces its token,
/// after checking the handover signature with the CURRENT key over
/// `signing::rotation_payload(kiosk, from_seq, public_key)`.
pub fn rotate(tx: &Tx<'_>, r: &Rotation<'_>) -> Result<std::result::Result<(), RotateProblem>> {
    let keys = super::chain::keys(tx, r.kiosk_id)?;
    let Some(current) = keys.last() else {
        return Ok(Err(RotateProblem::Signature));
    };
    let payload = signing::rotation_payload(r.kiosk_id, r.from_seq, r.public_key);
    if !signing::verify_bytes(&payload, r.signature, &current.key) {
        return Ok(Err(RotateProblem::Signature));
    }
    let at_least = (super::chain::max_seq(tx, r.kiosk_id)? + 1).max(current.from_seq);
    if r.from_seq < at_least {
        return Ok(Err(RotateProblem::FromSeq { at_least }));
    }
    super::chain::add_key(tx, r.kiosk_id, r.from_seq, r.public_key, r.now)?;
    let n = tx.execute(
        "UPDATE kiosks SET token_hash = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![r.kiosk_id, r.token_hash],
    )?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(Ok(()))
}

/// Marks the kiosk revoked (its token stops working at once). Revoking twice keeps the first
/// time. `NotFound` if there is no such kiosk.
pub fn revoke(tx: &Tx<'_>, id: i64, now: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE kiosks SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// What a heartbeat reports.
#[derive(Debug, Clone)]
pub struct Beat<'a> {
    pub at: &'a str,
    pub outbox_backlog: u32,
    pub software_version: &'a str,
    pub model_version: &'a str,
    pub last_sync_cursor: Option<i64>,
    pub match_threshold: Option<f64>,
    pub liveness_threshold: Option<f64>,
}

/// The thresholds the kiosk last reported: (match, liveness).
pub fn thresholds(conn: &Conn<'_>, id: i64) -> Result<(Option<f64>, Option<f64>)> {
    conn.query_row(
        "SELECT match_threshold, liveness_threshold FROM kiosks WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

pub fn heartbeat(tx: &Tx<'_>, id: i64, b: &Beat<'_>) -> Result<()> {
    tx.execute(
        "UPDATE kiosks SET last_seen_at = ?2, outbox_backlog = ?3, software_version = ?4,
            model_version = ?5, last_sync_cursor = COALESCE(?6, last_sync_cursor),
            match_threshold = COALESCE(?7, match_threshold),
            liveness_threshold = COALESCE(?8, liveness_threshold)
         WHERE id = ?1",
        params![
            id,
            b.at,
            b.outbox_backlog,
            b.software_version,
            b.model_version,
            b.last_sync_cursor,
            b.match_threshold,
            b.liveness_threshold
        ],
    )?;
    Ok(())
}

fn parse_utc(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| Error::other(format!("a stored time '{s}': {e}")))
    })
    .transpose()
}

const STATUS_COLS: &str = "id, canteen_id, name, created_at, revoked_at, last_seen_at,
    outbox_backlog, software_version, model_version, last_sync_cursor, match_threshold,
    liveness_threshold";

fn status_row(r: &Row<'_>) -> Result<KioskStatus> {
    Ok(KioskStatus {
        id: r.get(0)?,
        canteen_id: CanteenId(r.get(1)?),
        name: r.get(2)?,
        created_at: parse_utc(Some(r.get(3)?))?.unwrap_or_default(),
        revoked_at: parse_utc(r.get(4)?)?,
        last_seen_at: parse_utc(r.get(5)?)?,
        outbox_backlog: r.get(6)?,
        software_version: r.get(7)?,
        model_version: r.get(8)?,
        last_sync_cursor: r.get(9)?,
        match_threshold: r.get(10)?,
        liveness_threshold: r.get(11)?,
    })
}

/// Every kiosk with its last heartbeat, by id.
pub fn list(conn: &Conn<'_>) -> Result<Vec<KioskStatus>> {
    conn.query_map(
        &format!("SELECT {STATUS_COLS} FROM kiosks ORDER BY id"),
        (),
        status_row,
    )
}

pub fn status(conn: &Conn<'_>, id: i64) -> Result<KioskStatus> {
    conn.query_row(
        &format!("SELECT {STATUS_COLS} FROM kiosks WHERE id = ?1"),
        [id],
        status_row,
    )
}
