//! The SQL behind the re-enrolment prompt (`crate::ageing`): each resident's accepted face meals
//! at one canteen since their current templates were enrolled, only as many as the verdict
//! reads (the first meals after enrolment and the recent ones). Runs on both databases
//! (`db::sql`); reads only, it never touches a template.

use chrono::NaiveDate;
use zhucan_domain::{CanteenId, ResidentId};

use super::Result;
use super::flags::days_between;
use super::sql::{Conn, params};

/// One accepted, not voided face meal with a match score, of a resident whose current templates
/// were enrolled before it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceMeal {
    pub resident_id: ResidentId,
    /// The resident's name as stored (the use case masks it).
    pub name: String,
    /// When the resident's current templates were stored (a stamp).
    pub enrolled_at: String,
    pub local_date: NaiveDate,
    pub match_score: f64,
    /// The match threshold the kiosk that recorded the meal last reported, if any.
    pub kiosk_threshold: Option<f64>,
    /// Served less than `first_days` days after the enrolment.
    pub early: bool,
    /// Its place among the resident's face meals at the canteen since the enrolment, from 1.
    pub n: i64,
}

/// The face meals at `canteen` of each resident who had one there on or after `recent_from`
/// (a local date), since their current templates were stored: those served within `first_days`
/// days of the enrolment, the first `first_meals`, and those on or after `recent_from`, in
/// order (by resident, then by time). Residents without stored templates are not listed: a
/// deletion or re-enrolment starts them again.
pub fn face_meals_since_enrolment(
    conn: &Conn<'_>,
    canteen: CanteenId,
    recent_from: NaiveDate,
    first_days: f64,
    first_meals: i64,
) -> Result<Vec<FaceMeal>> {
    let face = "s.outcome = 'accepted' AND s.voided_at IS NULL AND s.method = 'face'
                AND s.match_score IS NOT NULL";
    let sql = format!(
        "WITH enrolled AS (
            SELECT resident_id, max(created_at) AS at FROM face_templates GROUP BY resident_id
         ),
         meals AS (
            SELECT s.resident_id, s.local_date, s.match_score, s.kiosk_id, e.at,
                {days} AS days,
                ROW_NUMBER() OVER (PARTITION BY s.resident_id ORDER BY s.served_at, s.id) AS n
            FROM settlements s JOIN enrolled e ON e.resident_id = s.resident_id
            WHERE s.canteen_id = ?1 AND {face} AND s.served_at >= e.at
              AND s.resident_id IN (SELECT s.resident_id FROM settlements s
                                    WHERE s.canteen_id = ?1 AND s.local_date >= ?2 AND {face})
         )
         SELECT m.resident_id, r.name, m.at, m.local_date, m.match_score, k.match_threshold,
            CASE WHEN m.days < ?3 THEN 1 ELSE 0 END, m.n
         FROM meals m JOIN residents r ON r.id = m.resident_id
         LEFT JOIN kiosks k ON k.id = m.kiosk_id
         WHERE m.n <= ?4 OR m.days < ?3 OR m.local_date >= ?2
         ORDER BY m.resident_id, m.n",
        days = days_between(conn, "e.at", "s.served_at"),
    );
    conn.query_map(
        &sql,
        params![canteen.0, recent_from.to_string(), first_days, first_meals],
        |r| {
            let date: String = r.get(3)?;
            Ok(FaceMeal {
                resident_id: ResidentId(r.get(0)?),
                name: r.get(1)?,
                enrolled_at: r.get(2)?,
                local_date: date.parse().map_err(super::Error::other)?,
                match_score: r.get(4)?,
                kiosk_threshold: r.get(5)?,
                early: r.get(6)?,
                n: r.get(7)?,
            })
        },
    )
}
