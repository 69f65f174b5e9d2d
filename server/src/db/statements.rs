//! The aggregation queries behind the monthly statement: SQL does the summing, grouped finely
//! enough (canteen × resident × paying town) that the report can roll every section up from the
//! same groups, so all sections agree to the fen. Runs on both databases (`db::sql`): every sum
//! is cast to BIGINT (PostgreSQL's SUM of a BIGINT is NUMERIC).

use zhucan_domain::api::{AdjustmentLine, Amounts, LateLine, VoidedLine};
use zhucan_domain::{CanteenId, Fen, ResidentId};

use super::sql::{Conn, params};
use super::{Error, Result};

/// Which meals a statement covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub canteen: Option<CanteenId>,
    pub town: Option<String>,
}

/// The stored `other_fen` counts the county's and the canteen's parts too (migration 0015);
/// the API's `other` is the other sources' part alone.
fn other_only(mut a: Amounts) -> Amounts {
    a.other = a.other - a.county - a.canteen;
    a
}

/// The operating subsidy of the period's adjustments per canteen and funder: (canteen, source,
/// meals, fen). The meals' own come with their [`groups`].
pub fn adjusted_operating(
    conn: &Conn<'_>,
    period: &str,
    f: &Filter,
) -> Result<Vec<(CanteenId, String, i64, Fen)>> {
    conn.query_map(
        &format!(
            "SELECT canteen_id, operating_source, CAST(sum(meals) AS BIGINT),
                CAST(sum(operating_fen) AS BIGINT)
             FROM adjustments
             WHERE period = ?1 AND operating_fen IS NOT NULL AND {FILTER}
             GROUP BY canteen_id, operating_source"
        ),
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| Ok((CanteenId(r.get(0)?), r.get(1)?, r.get(2)?, Fen(r.get(3)?))),
    )
}

/// One group of accepted, not voided meals of the period.
#[derive(Debug, Clone)]
pub struct Group {
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    pub funding_town: Option<String>,
    /// Who pays the group's operating subsidy (none when it has none).
    pub operating_source: Option<String>,
    pub amounts: Amounts,
}

/// The [`Filter`] in SQL, its canteen as `?2` and its town as `?3` (cast: PostgreSQL cannot tell
/// the type of a placeholder that is only tested for NULL).
const FILTER: &str = "(CAST(?2 AS BIGINT) IS NULL OR canteen_id = ?2)
    AND (CAST(?3 AS TEXT) IS NULL OR canteen_id IN (SELECT id FROM canteens WHERE town = ?3))";

pub fn groups(conn: &Conn<'_>, period: &str, f: &Filter) -> Result<Vec<Group>> {
    conn.query_map(
        &format!(
            "SELECT canteen_id, resident_id, funding_town, operating_source, count(*),
                CAST(sum(CASE WHEN subsidy > 0 THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(price) AS BIGINT), CAST(sum(subsidy) AS BIGINT),
                CAST(sum(self_pay) AS BIGINT), CAST(sum(city_fen) AS BIGINT),
                CAST(sum(town_fen) AS BIGINT), CAST(sum(other_fen) AS BIGINT),
                COALESCE(CAST(sum(county_fen) AS BIGINT), 0),
                COALESCE(CAST(sum(canteen_fen) AS BIGINT), 0),
                COALESCE(CAST(sum(delivery_fee) AS BIGINT), 0),
                COALESCE(CAST(sum(delivery_subsidy) AS BIGINT), 0),
                COALESCE(CAST(sum(operating_fen) AS BIGINT), 0)
             FROM settlements
             WHERE period = ?1 AND outcome = 'accepted' AND voided_at IS NULL AND {FILTER}
             GROUP BY canteen_id, resident_id, funding_town, operating_source"
        ),
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| {
            Ok(Group {
                canteen_id: CanteenId(r.get(0)?),
                resident_id: ResidentId(r.get(1)?),
                funding_town: r.get(2)?,
                operating_source: r.get(3)?,
                amounts: other_only(Amounts {
                    meals: r.get(4)?,
                    subsidised_meals: r.get(5)?,
                    price: Fen(r.get(6)?),
                    subsidy: Fen(r.get(7)?),
                    self_pay: Fen(r.get(8)?),
                    city: Fen(r.get(9)?),
                    town: Fen(r.get(10)?),
                    other: Fen(r.get(11)?),
                    county: Fen(r.get(12)?),
                    canteen: Fen(r.get(13)?),
                    delivery_fee: Fen(r.get(14)?),
                    delivery_subsidy: Fen(r.get(15)?),
                    operating: Fen(r.get(16)?),
                }),
            })
        },
    )
}

/// Accepted, not voided meals of the period that a carer collected (代取), per canteen.
pub fn proxy_meals(conn: &Conn<'_>, period: &str, f: &Filter) -> Result<Vec<(CanteenId, i64)>> {
    conn.query_map(
        &format!(
            "SELECT canteen_id, count(*) FROM settlements
             WHERE period = ?1 AND proxy_carer_id IS NOT NULL AND outcome = 'accepted'
               AND voided_at IS NULL AND {FILTER}
             GROUP BY canteen_id ORDER BY canteen_id"
        ),
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| Ok((CanteenId(r.get(0)?), r.get(1)?)),
    )
}

pub fn adjustments(conn: &Conn<'_>, period: &str, f: &Filter) -> Result<Vec<AdjustmentLine>> {
    conn.query_map(
        &format!(
            "SELECT id, settlement_id, period, original_period, canteen_id, resident_id,
                funding_town, reason, meals, subsidised_meals, price, subsidy, self_pay, city_fen,
                town_fen, other_fen, COALESCE(county_fen, 0), COALESCE(canteen_fen, 0),
                COALESCE(delivery_fee, 0), COALESCE(delivery_subsidy, 0), COALESCE(operating_fen, 0)
             FROM adjustments WHERE period = ?1 AND {FILTER} ORDER BY id"
        ),
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| {
            let sid: String = r.get(1)?;
            Ok(AdjustmentLine {
                id: r.get(0)?,
                settlement_id: sid.parse().map_err(Error::other)?,
                period: r.get(2)?,
                original_period: r.get(3)?,
                canteen_id: CanteenId(r.get(4)?),
                resident_id: ResidentId(r.get(5)?),
                funding_town: r.get(6)?,
                reason: r.get(7)?,
                amounts: other_only(Amounts {
                    meals: r.get(8)?,
                    subsidised_meals: r.get(9)?,
                    price: Fen(r.get(10)?),
                    subsidy: Fen(r.get(11)?),
                    self_pay: Fen(r.get(12)?),
                    city: Fen(r.get(13)?),
                    town: Fen(r.get(14)?),
                    other: Fen(r.get(15)?),
                    county: Fen(r.get(16)?),
                    canteen: Fen(r.get(17)?),
                    delivery_fee: Fen(r.get(18)?),
                    delivery_subsidy: Fen(r.get(19)?),
                    operating: Fen(r.get(20)?),
                }),
            })
        },
    )
}

/// Counted meals of the period that reached the server late (marked at ingestion), oldest
/// first: listed apart on the statement so finance sees what was written in after the fact.
pub fn late(conn: &Conn<'_>, period: &str, f: &Filter) -> Result<Vec<LateLine>> {
    conn.query_map(
        &format!(
            "SELECT id, canteen_id, resident_id, kiosk_id, local_date, served_at, received_at,
                    late_by_seconds, subsidy
             FROM settlements
             WHERE period = ?1 AND outcome = 'accepted' AND voided_at IS NULL
               AND late_by_seconds IS NOT NULL AND {FILTER}
             ORDER BY served_at, id"
        ),
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| {
            let id: String = r.get(0)?;
            let date: String = r.get(4)?;
            let served: String = r.get(5)?;
            let received: String = r.get(6)?;
            let late: i64 = r.get(7)?;
            Ok(LateLine {
                settlement_id: id.parse().map_err(Error::other)?,
                canteen_id: CanteenId(r.get(1)?),
                resident_id: ResidentId(r.get(2)?),
                kiosk_id: r.get(3)?,
                local_date: date.parse().map_err(Error::other)?,
                served_at: served.parse().map_err(Error::other)?,
                received_at: received.parse().map_err(Error::other)?,
                late_hours: late / 3600,
                subsidy: Fen(r.get(8)?),
            })
        },
    )
}

pub fn voided(conn: &Conn<'_>, period: &str, f: &Filter) -> Result<Vec<VoidedLine>> {
    conn.query_map(
        &format!(
            "SELECT id, canteen_id, resident_id, local_date, price, subsidy, void_reason
             FROM settlements
             WHERE period = ?1 AND outcome = 'accepted' AND voided_at IS NOT NULL AND {FILTER}
             ORDER BY served_at, id"
        ),
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| {
            let id: String = r.get(0)?;
            let date: String = r.get(3)?;
            Ok(VoidedLine {
                settlement_id: id.parse().map_err(Error::other)?,
                canteen_id: CanteenId(r.get(1)?),
                resident_id: ResidentId(r.get(2)?),
                local_date: date.parse().map_err(Error::other)?,
                price: Fen(r.get(4)?),
                subsidy: Fen(r.get(5)?),
                reason: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            })
        },
    )
}
