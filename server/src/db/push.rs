//! The outbox of deliveries to the city platform. A row is written in the same transaction as the
//! settlement (or void) it reports, so nothing accepted is ever missing from the platform; the
//! push worker delivers rows until the platform answers 2xx. Runs on both databases (`db::sql`).

use super::sql::{Conn, params};
use super::{Result, Tx};

/// Queues the settlement `id` for delivery as `kind` (`settlement` or `void`), unless it is
/// queued already. The JSON body is built here, from the stored row; `id` is the stable
/// settlement id the platform de-duplicates on. (The same keys in the same order on both
/// databases; SQLite writes it compact, PostgreSQL's `json_build_object` with spaces.)
pub fn enqueue(tx: &Tx<'_>, id: &str, kind: &str, at: &str) -> Result<()> {
    // (`CAST(?2 AS TEXT)`: PostgreSQL infers no type for a parameter that is only an argument of
    // `json_build_object`)
    let object = tx.pick("json_object(", "CAST(json_build_object(");
    let end = tx.pick(")", ") AS TEXT)");
    tx.execute(
        &format!(
            "INSERT INTO push_outbox (settlement_id, kind, body, created_at, next_attempt_at)
             SELECT id, ?2, {object}
                 'id', id, 'kind', CAST(?2 AS TEXT), 'canteen_id', canteen_id,
                 'resident_id', resident_id, 'kiosk_id', kiosk_id, 'served_at', served_at,
                 'local_date', local_date, 'slot', slot, 'method', method, 'price_fen', price,
                 'subsidy_fen', subsidy, 'self_pay_fen', self_pay, 'payment', payment,
                 'city_fen', city_fen, 'town_fen', town_fen,
                 'other_fen', other_fen - COALESCE(county_fen, 0) - COALESCE(canteen_fen, 0),
                 'county_fen', COALESCE(county_fen, 0), 'canteen_fen', COALESCE(canteen_fen, 0),
                 'delivery_fee_fen', COALESCE(delivery_fee, 0),
                 'delivery_subsidy_fen', COALESCE(delivery_subsidy, 0),
                 'operating_fen', COALESCE(operating_fen, 0), 'operating_source', operating_source,
                 'counter_price_fen', counter_price, 'stacked', stacked,
                 'funding_town', funding_town, 'period', period, 'policy_id', policy_id,
                 'policy_version', policy_version, 'void_reason', CASE WHEN ?2 = 'void'
                     THEN coalesce(void_reason,
                                   (SELECT reason FROM adjustments WHERE settlement_id = ?1))
                     END{end},
                 ?3, ?3
             FROM settlements WHERE id = ?1
             ON CONFLICT DO NOTHING"
        ),
        params![id, kind, at],
    )?;
    Ok(())
}

/// An undelivered message.
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: i64,
    pub settlement_id: String,
    pub kind: String,
    pub body: String,
    pub attempts: i64,
}

/// Undelivered messages due at `now`, oldest first.
pub fn due(conn: &Conn<'_>, now: &str, limit: i64) -> Result<Vec<Pending>> {
    conn.query_map(
        "SELECT seq, settlement_id, kind, body, attempts FROM push_outbox
         WHERE delivered_at IS NULL AND next_attempt_at <= ?1 ORDER BY seq LIMIT ?2",
        params![now, limit],
        |r| {
            Ok(Pending {
                seq: r.get(0)?,
                settlement_id: r.get(1)?,
                kind: r.get(2)?,
                body: r.get(3)?,
                attempts: r.get(4)?,
            })
        },
    )
}

pub fn delivered(tx: &Tx<'_>, seq: i64, at: &str, status: u16) -> Result<()> {
    tx.execute(
        "UPDATE push_outbox SET delivered_at = ?2, last_status = ?3, attempts = attempts + 1,
            last_error = NULL WHERE seq = ?1",
        params![seq, at, status],
    )?;
    Ok(())
}

pub fn failed(
    tx: &Tx<'_>,
    seq: i64,
    next_attempt_at: &str,
    status: Option<u16>,
    error: &str,
) -> Result<()> {
    tx.execute(
        "UPDATE push_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3,
            last_error = ?4 WHERE seq = ?1",
        params![seq, next_attempt_at, status, error],
    )?;
    Ok(())
}

/// A line of the delivery log.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub seq: i64,
    pub settlement_id: String,
    pub kind: String,
    pub created_at: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// The newest `limit` messages, and the (pending, delivered) totals.
pub fn log(conn: &Conn<'_>, limit: i64) -> Result<(Vec<LogRow>, i64, i64)> {
    let rows = conn.query_map(
        "SELECT seq, settlement_id, kind, created_at, attempts, next_attempt_at, delivered_at,
            last_status, last_error FROM push_outbox ORDER BY seq DESC LIMIT ?1",
        [limit],
        |r| {
            Ok(LogRow {
                seq: r.get(0)?,
                settlement_id: r.get(1)?,
                kind: r.get(2)?,
                created_at: r.get(3)?,
                attempts: r.get(4)?,
                next_attempt_at: r.get(5)?,
                delivered_at: r.get(6)?,
                last_status: r.get(7)?,
                last_error: r.get(8)?,
            })
        },
    )?;
    let (pending, done) = conn.query_row(
        "SELECT COALESCE(CAST(SUM(CASE WHEN delivered_at IS NULL THEN 1 ELSE 0 END) AS BIGINT), 0),
            COALESCE(CAST(SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), 0)
         FROM push_outbox",
        (),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((rows, pending, done))
}
