//! The read models of the web dashboard: meal lists with scores and flags, resident look-up,
//! meals per day for the chart, and the finance flags. Reads only. Runs on both databases
//! (`db::sql`).

use chrono::NaiveDate;
use zhucan_domain::{CanteenId, Fen, ResidentId};

use super::sql::{Conn, Row, params};
use super::{Result, residents};

/// One settlement as the dashboard lists it.
#[derive(Debug, Clone)]
pub struct MealRow {
    pub id: String,
    /// UTC, RFC 3339.
    pub served_at: String,
    pub local_date: String,
    pub slot: Option<String>,
    pub canteen_id: CanteenId,
    pub canteen_name: String,
    pub resident_id: ResidentId,
    pub resident_name: String,
    pub method: String,
    pub match_score: Option<f64>,
    pub outcome: String,
    pub rejection: Option<String>,
    pub eligibility: Option<String>,
    pub price: Fen,
    pub subsidy: Fen,
    pub self_pay: Fen,
    pub staff_reason: Option<String>,
    pub voided: bool,
    pub void_reason: Option<String>,
    pub period: String,
    /// The meal's month is closed: it can no longer be voided in place.
    pub closed: bool,
}

const MEAL_COLS: &str =
    "s.id, s.served_at, s.local_date, s.slot, s.canteen_id, c.name, s.resident_id,
    r.name, s.method, s.match_score, s.outcome, s.rejection, s.eligibility, s.price, s.subsidy,
    s.self_pay, s.staff_reason, s.voided_at IS NOT NULL OR EXISTS (SELECT 1 FROM adjustments a
    WHERE a.settlement_id = s.id), s.void_reason, s.period,
    EXISTS (SELECT 1 FROM closed_months m WHERE m.month = s.period)";

fn meal(r: &Row<'_>) -> Result<MealRow> {
    Ok(MealRow {
        id: r.get(0)?,
        served_at: r.get(1)?,
        local_date: r.get(2)?,
        slot: r.get(3)?,
        canteen_id: CanteenId(r.get(4)?),
        canteen_name: r.get(5)?,
        resident_id: ResidentId(r.get(6)?),
        resident_name: r.get(7)?,
        method: r.get(8)?,
        match_score: r.get(9)?,
        outcome: r.get(10)?,
        rejection: r.get(11)?,
        eligibility: r.get(12)?,
        price: Fen(r.get(13)?),
        subsidy: Fen(r.get(14)?),
        self_pay: Fen(r.get(15)?),
        staff_reason: r.get(16)?,
        voided: r.get(17)?,
        void_reason: r.get(18)?,
        period: r.get(19)?,
        closed: r.get(20)?,
    })
}

/// A canteen's settlements of one local date, accepted and rejected, newest first.
pub fn day_meals(conn: &Conn<'_>, canteen: CanteenId, date: NaiveDate) -> Result<Vec<MealRow>> {
    conn.query_map(
        &format!(
            "SELECT {MEAL_COLS} FROM settlements s JOIN canteens c ON c.id = s.canteen_id
             JOIN residents r ON r.id = s.resident_id
             WHERE s.canteen_id = ?1 AND s.local_date = ?2 ORDER BY s.served_at DESC, s.id"
        ),
        params![canteen.0, date.to_string()],
        meal,
    )
}

/// A resident's settlements counted in `period`, optionally at one canteen.
pub fn resident_meals(
    conn: &Conn<'_>,
    resident: ResidentId,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<Vec<MealRow>> {
    conn.query_map(
        &format!(
            "SELECT {MEAL_COLS} FROM settlements s JOIN canteens c ON c.id = s.canteen_id
             JOIN residents r ON r.id = s.resident_id
             WHERE s.resident_id = ?1 AND s.period = ?2 AND (CAST(?3 AS BIGINT) IS NULL OR s.canteen_id = ?3)
             ORDER BY s.served_at"
        ),
        params![resident.0, period, canteen.map(|c| c.0)],
        meal,
    )
}

/// One settlement, for scope checks before a void ([`Error::NotFound`](super::Error::NotFound)
/// if there is none).
pub fn meal_by_id(conn: &Conn<'_>, id: &str) -> Result<MealRow> {
    conn.query_row(
        &format!(
            "SELECT {MEAL_COLS} FROM settlements s JOIN canteens c ON c.id = s.canteen_id
             JOIN residents r ON r.id = s.resident_id WHERE s.id = ?1"
        ),
        [id],
        meal,
    )
}

/// A resident as the look-up lists them (masked national ID only).
#[derive(Debug, Clone)]
pub struct ResidentHit {
    pub id: ResidentId,
    pub name: String,
    pub national_id_masked: String,
    pub card_code: String,
    pub residence_town: String,
    pub status: String,
    pub deceased_on: Option<String>,
    pub face_enrolled: bool,
    pub consent_face: bool,
    pub prepaid_balance: Option<Fen>,
}

/// A `LIKE … ESCAPE '\\'` pattern for names that contain `q` (its `%`, `_` and `\\` literal).
fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Residents whose name contains `q` (ASCII letters in any case) or whose card code is `q` (or
/// whose id is `q`), optionally of one residence town.
pub fn search_residents(
    conn: &Conn<'_>,
    q: &str,
    town: Option<&str>,
    limit: i64,
) -> Result<Vec<ResidentHit>> {
    let like = like_pattern(q);
    conn.query_map(
        &format!(
            "SELECT {HIT_COLUMNS} FROM residents
             WHERE ({NAME_LIKE} OR card_code = ?2 OR CAST(id AS TEXT) = ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR residence_town = ?3)
             ORDER BY name, id LIMIT ?4"
        ),
        params![like, q, town, limit],
        |r| hit(conn, r),
    )
}

/// `name` contains the pattern `?1` ([`like_pattern`]), ASCII letters in any case: SQLite's
/// `LIKE` ignores the case of ASCII letters, PostgreSQL's does not, so both sides are lowered.
const NAME_LIKE: &str = "lower(name) LIKE lower(?1) ESCAPE '\\'";

/// The look-up's columns: the national ID ones (2, 3, 4) are those [`residents::masked`] takes, in
/// its order.
const HIT_COLUMNS: &str = "id, name, national_id_index, national_id_nonce, national_id_sealed, \
    card_code, residence_town, status, deceased_on, face_enrolled, consent_face, prepaid_balance";

fn hit(conn: &Conn<'_>, r: &Row<'_>) -> Result<ResidentHit> {
    let index: String = r.get(2)?;
    let nonce: Option<Vec<u8>> = r.get(3)?;
    let sealed: Option<Vec<u8>> = r.get(4)?;
    Ok(ResidentHit {
        id: ResidentId(r.get(0)?),
        name: r.get(1)?,
        national_id_masked: residents::masked(conn, &index, nonce.as_deref(), sealed.as_deref()),
        card_code: r.get(5)?,
        residence_town: r.get(6)?,
        status: r.get(7)?,
        deceased_on: r.get(8)?,
        face_enrolled: r.get(9)?,
        consent_face: r.get(10)?,
        prepaid_balance: r.get::<_, Option<i64>>(11)?.map(Fen),
    })
}

/// An operator's search at `canteen`: by name (or resident number) only among the residents
/// who belong there (designated canteen) or have eaten there; anyone else (a visitor from
/// another town) only by the exact card code or, through its blind index, the exact national
/// ID number. An operator cannot browse the city's roster.
pub fn search_at_canteen(
    conn: &Conn<'_>,
    q: &str,
    id_index: Option<&str>,
    canteen: CanteenId,
    limit: i64,
) -> Result<Vec<ResidentHit>> {
    let like = like_pattern(q);
    conn.query_map(
        &format!(
            "SELECT {HIT_COLUMNS} FROM residents
             WHERE card_code = ?2 OR national_id_index = ?3
                OR (({NAME_LIKE} OR CAST(id AS TEXT) = ?2)
                    AND (designated_canteen = ?4 OR EXISTS
                         (SELECT 1 FROM settlements s
                          WHERE s.resident_id = residents.id AND s.canteen_id = ?4)))
             ORDER BY name, id LIMIT ?5"
        ),
        params![like, q, id_index, canteen.0, limit],
        |r| hit(conn, r),
    )
}

/// Accepted, not voided meals per canteen and local date of a month: (canteen, date, meals).
pub fn daily_counts(conn: &Conn<'_>, period: &str) -> Result<Vec<(i64, String, i64)>> {
    conn.query_map(
        "SELECT canteen_id, local_date, count(*) FROM settlements
         WHERE period = ?1 AND outcome = 'accepted' AND voided_at IS NULL
         GROUP BY canteen_id, local_date ORDER BY canteen_id, local_date",
        [period],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// The finance flags of a month: full-price (not eligible) meals, refused duplicates, voided
/// meals and staff overrides, newest first, at most `limit` of each kind.
pub fn flags(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
    limit: i64,
) -> Result<Vec<(String, MealRow)>> {
    let kinds = [
        (
            "not_eligible",
            "s.outcome = 'accepted' AND s.eligibility IS NOT NULL AND s.eligibility <> 'subsidised'",
        ),
        (
            "duplicate",
            "s.outcome = 'rejected' AND s.rejection = 'duplicate'",
        ),
        ("voided", "s.voided_at IS NOT NULL"),
        ("staff", "s.outcome = 'accepted' AND s.method = 'staff'"),
    ];
    let mut out = Vec::new();
    for (kind, cond) in kinds {
        conn.for_each(
            &format!(
                "SELECT {MEAL_COLS} FROM settlements s JOIN canteens c ON c.id = s.canteen_id
                 JOIN residents r ON r.id = s.resident_id
                 WHERE s.period = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR s.canteen_id = ?2) AND {cond}
                 ORDER BY s.served_at DESC LIMIT ?3"
            ),
            params![period, canteen.map(|c| c.0), limit],
            |r| {
                out.push((kind.to_owned(), meal(r)?));
                Ok(())
            },
        )?;
    }
    Ok(out)
}

/// How many of each flag a month has: (not eligible, duplicates, voided, staff).
pub fn flag_counts(
    conn: &Conn<'_>,
    period: &str,
    canteen: Option<CanteenId>,
) -> Result<(i64, i64, i64, i64)> {
    let count = |cond: &str| {
        format!("COALESCE(CAST(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS BIGINT), 0)")
    };
    conn.query_row(
        &format!(
            "SELECT {}, {}, {}, {}
             FROM settlements WHERE period = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR canteen_id = ?2)",
            count(
                "outcome = 'accepted' AND eligibility IS NOT NULL AND eligibility <> 'subsidised'"
            ),
            count("outcome = 'rejected' AND rejection = 'duplicate'"),
            count("voided_at IS NOT NULL"),
            count("outcome = 'accepted' AND method = 'staff'"),
        ),
        params![period, canteen.map(|c| c.0)],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// A consent record: (kind, granted, at, by).
pub fn consent_history(
    conn: &Conn<'_>,
    resident: ResidentId,
) -> Result<Vec<(String, bool, String, String)>> {
    conn.query_map(
        "SELECT kind, granted, at, by FROM consent_records WHERE resident_id = ?1 ORDER BY id DESC",
        [resident.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// A kiosk as its last heartbeat described it.
#[derive(Debug, Clone)]
pub struct KioskStatus {
    pub id: i64,
    pub name: String,
    /// UTC RFC 3339, `None` if never seen.
    pub last_seen_at: Option<String>,
    pub outbox_backlog: Option<i64>,
    pub software_version: Option<String>,
    pub model_version: Option<String>,
}

/// The live (not revoked) kiosks of a canteen.
pub fn kiosks(conn: &Conn<'_>, canteen: CanteenId) -> Result<Vec<KioskStatus>> {
    conn.query_map(
        "SELECT id, name, last_seen_at, outbox_backlog, software_version, model_version
         FROM kiosks WHERE canteen_id = ?1 AND revoked_at IS NULL ORDER BY name, id",
        [canteen.0],
        |r| {
            Ok(KioskStatus {
                id: r.get(0)?,
                name: r.get(1)?,
                last_seen_at: r.get(2)?,
                outbox_backlog: r.get(3)?,
                software_version: r.get(4)?,
                model_version: r.get(5)?,
            })
        },
    )
}
