//! Settlements (one row per meal attempt the server decided, accepted or rejected), voids and
//! adjustments. Runs on both databases (`db::sql`).

use chrono::NaiveDate;
use uuid::Uuid;
use zhucan_domain::api::{AdjustmentLine, Amounts, FundingDto, TallyMeal};
use zhucan_domain::settle::{Decision, Eligibility};
use zhucan_domain::{CanteenId, Fen, Method, Payment, PriorMeal, ResidentId, Slot};

use super::changes::{self, Kind, Subject};
use super::sql::{Conn, OptionalExtension, params};
use super::{Error, Result, Tx};

/// Everything stored about one decided item.
#[derive(Debug)]
pub struct SettlementRow<'a> {
    pub id: Uuid,
    pub kiosk_id: Option<i64>,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    /// UTC, RFC 3339.
    pub served_at: &'a str,
    pub local_date: NaiveDate,
    pub method: Method,
    pub match_score: Option<f64>,
    pub liveness_score: Option<f64>,
    pub delivered: bool,
    pub staff_reason: Option<&'a str>,
    pub decision: &'a Decision,
    pub received_at: &'a str,
    pub request_hash: &'a str,
    pub answer: &'a str,
    /// `YYYY-MM` the amounts count in.
    pub period: &'a str,
    /// How late it reached the server, when later than the server's limit for "on time".
    pub late_by_seconds: Option<i64>,
    /// 代取: the registered carer who collected the meal (linked to the resident).
    pub proxy_carer_id: Option<i64>,
    /// The price the counter gave, as signed.
    pub counter_price: Option<Fen>,
}

/// A meal's subsidy under its tier, in SQL: without the delivery and stacked subsidies
/// (`Accepted::tier_subsidy`; the history the decision counts).
const TIER_SUBSIDY: &str = "subsidy - COALESCE(delivery_subsidy, 0) - COALESCE(stacked_fen, 0)";

/// A line that does not apply is stored as NULL, not 0 (migration 0015: the books MAC of a row
/// takes these columns only when set).
fn set(f: Fen) -> Option<i64> {
    (f != Fen::ZERO).then_some(f.0)
}

/// The stored request hash and answer of a settlement id, if it was seen before.
pub fn find_answer(conn: &Conn<'_>, id: Uuid) -> Result<Option<(String, String)>> {
    conn.query_row(
        "SELECT s.request_hash, a.answer FROM settlements s
         JOIN settlement_answers a ON a.settlement_id = s.id WHERE s.id = ?1",
        [id.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The resident's accepted, not voided meals counted in `period`.
pub fn month_history(
    conn: &Conn<'_>,
    resident: ResidentId,
    period: &str,
) -> Result<Vec<PriorMeal>> {
    conn.query_map(
        &format!(
            "SELECT local_date, slot, {TIER_SUBSIDY} FROM settlements
             WHERE resident_id = ?1 AND period = ?2 AND outcome = 'accepted' AND voided_at IS NULL"
        ),
        params![resident.0, period],
        |r| {
            let date: String = r.get(0)?;
            let slot: String = r.get(1)?;
            Ok(PriorMeal {
                date: date.parse().map_err(Error::other)?,
                slot: Slot::parse(&slot).ok_or_else(|| Error::other("bad slot in database"))?,
                subsidy: Fen(r.get(2)?),
            })
        },
    )
}

pub fn insert(tx: &Tx<'_>, s: &SettlementRow<'_>) -> Result<()> {
    let (outcome, rejection, slot, a) = match s.decision {
        Decision::Accepted(a) => ("accepted", None, Some(a.slot), Some(a)),
        Decision::Rejected(r) => {
            let slot = match r {
                zhucan_domain::Rejection::Duplicate { slot } => Some(*slot),
                _ => None,
            };
            ("rejected", Some(r.as_str()), slot, None)
        }
    };
    let (tier, eligibility) = match a.map(|a| &a.eligibility) {
        Some(Eligibility::Subsidised { tier, .. }) => (Some(tier.as_str()), Some("subsidised")),
        Some(Eligibility::NotEligible { reason }) => (None, Some(reason.as_str())),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO settlements (id, kiosk_id, canteen_id, resident_id, served_at, local_date,
            slot, method, match_score, liveness_score, delivered, staff_reason, outcome, rejection,
            price, subsidy, self_pay, payment, city_fen, town_fen, other_fen, funding_town, tier,
            eligibility, policy_id, policy_version, received_at, request_hash, period,
            late_by_seconds, proxy_carer_id, counter_price, delivery_fee, delivery_subsidy,
            stacked, stacked_fen, county_fen, canteen_fen, operating_fen, operating_source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35,
            ?36, ?37, ?38, ?39, ?40)",
        params![
            s.id.to_string(),
            s.kiosk_id,
            s.canteen_id.0,
            s.resident_id.0,
            s.served_at,
            s.local_date.to_string(),
            slot.map(Slot::as_str),
            s.method.as_str(),
            s.match_score,
            s.liveness_score,
            s.delivered,
            s.staff_reason,
            outcome,
            rejection,
            a.map_or(0, |a| a.price.0),
            a.map_or(0, |a| a.subsidy.0),
            a.map_or(0, |a| a.self_pay.0),
            a.map(|a| a.payment.as_str()),
            a.map_or(0, |a| a.funding.city.0),
            a.map_or(0, |a| a.funding.town.0),
            // county and canteen shares are counted inside other_fen (migration 0015)
            a.map_or(0, |a| (a.funding.other
                + a.funding.county
                + a.funding.canteen)
                .0),
            a.map(|a| a.funding_town.0.as_str()),
            tier,
            eligibility,
            a.map(|a| a.policy.id.as_str()),
            a.map(|a| a.policy.version),
            s.received_at,
            s.request_hash,
            s.period,
            s.late_by_seconds,
            s.proxy_carer_id,
            s.counter_price.map(|f| f.0),
            a.and_then(|a| set(a.delivery_fee)),
            a.and_then(|a| set(a.delivery_subsidy)),
            a.filter(|a| !a.stacked.is_empty())
                .map(|a| a.stacked.join(",")),
            a.and_then(|a| set(a.stacked_subsidy)),
            a.and_then(|a| set(a.funding.county)),
            a.and_then(|a| set(a.funding.canteen)),
            a.and_then(|a| set(a.operating)),
            a.and_then(|a| a.operating_source.map(|s| s.as_str())),
        ],
    )?;
    super::books::seal_settlement(tx, &s.id.to_string())?;
    tx.execute(
        "INSERT INTO settlement_answers (settlement_id, answer) VALUES (?1, ?2)",
        params![s.id.to_string(), s.answer],
    )?;
    if outcome == "accepted" {
        changes::record(
            tx,
            Kind::Meal,
            Subject::Key(&s.id.to_string()),
            s.received_at,
        )?;
    }
    Ok(())
}

/// What a void needs to know about the meal.
#[derive(Debug, Clone)]
pub struct VoidTarget {
    pub id: Uuid,
    pub outcome: String,
    pub voided: bool,
    pub period: String,
    pub canteen_id: CanteenId,
    pub resident_id: ResidentId,
    pub funding_town: Option<String>,
    pub payment: Option<Payment>,
    pub amounts: Amounts,
    pub operating_source: Option<String>,
}

pub fn void_target(conn: &Conn<'_>, id: Uuid) -> Result<VoidTarget> {
    conn.query_row(
        "SELECT outcome, voided_at IS NOT NULL, period, canteen_id, resident_id, funding_town,
            payment, price, subsidy, self_pay, city_fen, town_fen, other_fen,
            COALESCE(county_fen, 0), COALESCE(canteen_fen, 0), COALESCE(delivery_fee, 0),
            COALESCE(delivery_subsidy, 0), COALESCE(operating_fen, 0), operating_source
         FROM settlements WHERE id = ?1",
        [id.to_string()],
        |r| {
            let subsidy: i64 = r.get(8)?;
            let payment: Option<String> = r.get(6)?;
            let (county, canteen): (i64, i64) = (r.get(13)?, r.get(14)?);
            Ok(VoidTarget {
                id,
                outcome: r.get(0)?,
                voided: r.get(1)?,
                period: r.get(2)?,
                canteen_id: CanteenId(r.get(3)?),
                resident_id: ResidentId(r.get(4)?),
                funding_town: r.get(5)?,
                payment: payment.map(|p| {
                    if p == "prepaid" {
                        Payment::Prepaid
                    } else {
                        Payment::Cash
                    }
                }),
                amounts: Amounts {
                    meals: 1,
                    subsidised_meals: i64::from(subsidy > 0),
                    price: Fen(r.get(7)?),
                    subsidy: Fen(subsidy),
                    self_pay: Fen(r.get(9)?),
                    city: Fen(r.get(10)?),
                    town: Fen(r.get(11)?),
                    other: Fen(r.get::<_, i64>(12)? - county - canteen),
                    county: Fen(county),
                    canteen: Fen(canteen),
                    delivery_fee: Fen(r.get(15)?),
                    delivery_subsidy: Fen(r.get(16)?),
                    operating: Fen(r.get(17)?),
                },
                operating_source: r.get(18)?,
            })
        },
    )
}

/// Marks a meal of an open month voided. Returns false if it was already voided.
pub fn mark_voided(tx: &Tx<'_>, id: Uuid, at: &str, reason: &str, by: &str) -> Result<bool> {
    let n = tx.execute(
        "UPDATE settlements SET voided_at = ?2, void_reason = ?3, voided_by = ?4
         WHERE id = ?1 AND voided_at IS NULL",
        params![id.to_string(), at, reason, by],
    )?;
    if n == 1 {
        super::books::seal_settlement(tx, &id.to_string())?;
        changes::record(tx, Kind::Void, Subject::Key(&id.to_string()), at)?;
    }
    Ok(n == 1)
}

/// Gives a prepaid self-pay back to the resident's balance (a roster change for the kiosks).
pub fn refund_prepaid(tx: &Tx<'_>, resident: ResidentId, amount: Fen, at: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE residents SET prepaid_balance = prepaid_balance + ?2
         WHERE id = ?1 AND prepaid_balance IS NOT NULL",
        [resident.0, amount.0],
    )?;
    if n > 0 {
        changes::record(tx, Kind::Resident, Subject::Id(resident.0), at)?;
    }
    Ok(())
}

/// Whether an adjustment already takes this meal back.
pub fn has_adjustment(conn: &Conn<'_>, id: Uuid) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM adjustments WHERE settlement_id = ?1",
            [id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Records an adjustment line (amounts already negated) in `period`.
pub fn insert_adjustment(
    tx: &Tx<'_>,
    line: &AdjustmentLine,
    operating_source: Option<&str>,
    at: &str,
    by: &str,
) -> Result<i64> {
    let a = &line.amounts;
    let id: i64 = tx.query_row(
        "INSERT INTO adjustments (settlement_id, period, original_period, canteen_id, resident_id,
            funding_town, meals, subsidised_meals, price, subsidy, self_pay, city_fen, town_fen,
            other_fen, reason, created_at, created_by, delivery_fee, delivery_subsidy, county_fen,
            canteen_fen, operating_fen, operating_source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23)
         RETURNING id",
        params![
            line.settlement_id.to_string(),
            line.period,
            line.original_period,
            line.canteen_id.0,
            line.resident_id.0,
            line.funding_town,
            a.meals,
            a.subsidised_meals,
            a.price.0,
            a.subsidy.0,
            a.self_pay.0,
            a.city.0,
            a.town.0,
            (a.other + a.county + a.canteen).0,
            line.reason,
            at,
            by,
            set(a.delivery_fee),
            set(a.delivery_subsidy),
            set(a.county),
            set(a.canteen),
            set(a.operating),
            operating_source,
        ],
        |r| r.get(0),
    )?;
    super::books::seal_adjustment(tx, id)?;
    changes::record(
        tx,
        Kind::Void,
        Subject::Key(&line.settlement_id.to_string()),
        at,
    )?;
    Ok(id)
}

/// A canteen's accepted meals of one local date (voided ones included, flagged).
pub fn day(conn: &Conn<'_>, canteen: CanteenId, date: NaiveDate) -> Result<Vec<TallyMeal>> {
    conn.query_map(
        "SELECT s.id, s.served_at, s.slot, s.resident_id, r.name, s.method, s.price, s.subsidy,
            s.self_pay, s.payment, s.tier, s.voided_at IS NOT NULL, s.city_fen, s.town_fen,
            s.other_fen - COALESCE(s.county_fen, 0) - COALESCE(s.canteen_fen, 0),
            COALESCE(s.county_fen, 0), COALESCE(s.canteen_fen, 0), COALESCE(s.delivery_fee, 0),
            COALESCE(s.delivery_subsidy, 0), COALESCE(s.operating_fen, 0)
         FROM settlements s JOIN residents r ON r.id = s.resident_id
         WHERE s.canteen_id = ?1 AND s.local_date = ?2 AND s.outcome = 'accepted'
         ORDER BY s.served_at, s.id",
        params![canteen.0, date.to_string()],
        |r| {
            let id: String = r.get(0)?;
            let served: String = r.get(1)?;
            let slot: String = r.get(2)?;
            let method: String = r.get(5)?;
            let payment: String = r.get(9)?;
            Ok(TallyMeal {
                id: id.parse().map_err(Error::other)?,
                served_at: chrono::DateTime::parse_from_rfc3339(&served).map_err(Error::other)?,
                slot: Slot::parse(&slot).ok_or_else(|| Error::other("bad slot"))?,
                resident_id: ResidentId(r.get(3)?),
                resident_name: r.get(4)?,
                method: Method::parse(&method).ok_or_else(|| Error::other("bad method"))?,
                price: Fen(r.get(6)?),
                subsidy: Fen(r.get(7)?),
                self_pay: Fen(r.get(8)?),
                payment: if payment == "prepaid" {
                    Payment::Prepaid
                } else {
                    Payment::Cash
                },
                funding: FundingDto {
                    city: Fen(r.get(12)?),
                    town: Fen(r.get(13)?),
                    other: Fen(r.get(14)?),
                    county: Fen(r.get(15)?),
                    canteen: Fen(r.get(16)?),
                },
                delivery_fee: Fen(r.get(17)?),
                delivery_subsidy: Fen(r.get(18)?),
                operating: Fen(r.get(19)?),
                tier: r.get(10)?,
                voided: r.get(11)?,
            })
        },
    )
}

/// The residents with a settlement (any outcome, voided or not) at `slot` of local date
/// `local_date`, for the demo data.
pub fn residents_served(conn: &Conn<'_>, local_date: &str, slot: Slot) -> Result<Vec<i64>> {
    conn.query_map(
        "SELECT resident_id FROM settlements WHERE local_date = ?1 AND slot = ?2",
        [local_date, slot.as_str()],
        |r| r.get(0),
    )
}

/// Row counts, for tests and the bench: (settlements, adjustments).
pub fn counts(conn: &Conn<'_>) -> Result<(i64, i64)> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM settlements), (SELECT count(*) FROM adjustments)",
        (),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Accepted, not voided meals counted in `period`, for kiosk sync: all of them when `since` is
/// `None`, else those settled after `since`.
pub fn history_for_sync(
    conn: &Conn<'_>,
    period: &str,
    since: Option<i64>,
) -> Result<Vec<zhucan_domain::api::HistoryMeal>> {
    // the subsidy under the tier alone, as the decision counts it (`PriorMeal::subsidy`)
    let sql_all = format!(
        "SELECT id, resident_id, local_date, slot, {TIER_SUBSIDY} FROM settlements
         WHERE period = ?1 AND outcome = 'accepted' AND voided_at IS NULL
           AND CAST(?2 AS BIGINT) IS NULL
         ORDER BY served_at, id"
    );
    let sql_since = format!(
        "SELECT s.id, s.resident_id, s.local_date, s.slot, {TIER_SUBSIDY}
         FROM changes c JOIN settlements s ON s.id = c.subject_key
         WHERE c.kind = 'meal' AND c.seq > ?2 AND s.period = ?1 AND s.outcome = 'accepted'
           AND s.voided_at IS NULL
         ORDER BY c.seq"
    );
    let sql = if since.is_some() {
        &sql_since
    } else {
        &sql_all
    };
    conn.query_map(sql, params![period, since], |r| {
        let id: String = r.get(0)?;
        let date: String = r.get(2)?;
        let slot: String = r.get(3)?;
        Ok(zhucan_domain::api::HistoryMeal {
            id: id.parse().map_err(Error::other)?,
            resident_id: ResidentId(r.get(1)?),
            date: date.parse().map_err(Error::other)?,
            slot: Slot::parse(&slot).ok_or_else(|| Error::other("bad slot in database"))?,
            subsidy: Fen(r.get(4)?),
        })
    })
}
