//! The outbox of deliveries to the city platform. A row is written in the same transaction as the
//! settlement (or void) it reports, so nothing accepted is ever missing from the platform; the
//! push worker delivers rows until the platform answers 2xx.

use rusqlite::{Connection, params};

use super::{Result, Tx};

/// Queues the settlement `id` for delivery as `kind` (`settlement` or `void`). The JSON body is
/// built here, from the stored row; `id` is the stable settlement id the platform de-duplicates on.
pub fn enqueue(tx: &Tx<'_>, id: &str, kind: &str, at: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO push_outbox (settlement_id, kind, body, created_at, next_attempt_at)
         SELECT id, ?2, json_object(
             'id', id, 'kind', ?2, 'canteen_id', canteen_id, 'resident_id', resident_id,
             'kiosk_id', kiosk_id, 'served_at', served_at, 'local_date', local_date, 'slot', slot,
             'method', method, 'price_fen', price, 'subsidy_fen', subsidy, 'self_pay_fen', self_pay,
             'payment', payment, 'city_fen', city_fen, 'town_fen', town_fen,
             'other_fen', other_fen - IFNULL(county_fen, 0) - IFNULL(canteen_fen, 0),
             'county_fen', IFNULL(county_fen, 0), 'canteen_fen', IFNULL(canteen_fen, 0),
             'delivery_fee_fen', IFNULL(delivery_fee, 0),
             'delivery_subsidy_fen', IFNULL(delivery_subsidy, 0),
             'operating_fen', IFNULL(operating_fen, 0), 'operating_source', operating_source,
             'counter_price_fen', counter_price, 'stacked', stacked,
             'funding_town', funding_town, 'period', period, 'policy_id', policy_id,
             'policy_version', policy_version, 'void_reason', CASE WHEN ?2 = 'void'
                 THEN coalesce(void_reason, (SELECT reason FROM adjustments WHERE settlement_id = ?1))
                 END),
             ?3, ?3
         FROM settlements WHERE id = ?1",
    )?
    .execute(params![id, kind, at])?;
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
pub fn due(conn: &Connection, now: &str, limit: i64) -> Result<Vec<Pending>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, settlement_id, kind, body, attempts FROM push_outbox
         WHERE delivered_at IS NULL AND next_attempt_at <= ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = st.query_map(params![now, limit], |r| {
        Ok(Pending {
            seq: r.get(0)?,
            settlement_id: r.get(1)?,
            kind: r.get(2)?,
            body: r.get(3)?,
            attempts: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delivered(tx: &Tx<'_>, seq: i64, at: &str, status: u16) -> Result<()> {
    tx.prepare_cached(
        "UPDATE push_outbox SET delivered_at = ?2, last_status = ?3, attempts = attempts + 1,
            last_error = NULL WHERE seq = ?1",
    )?
    .execute(params![seq, at, status])?;
    Ok(())
}

pub fn failed(
    tx: &Tx<'_>,
    seq: i64,
    next_attempt_at: &str,
    status: Option<u16>,
    error: &str,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE push_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3,
            last_error = ?4 WHERE seq = ?1",
    )?
    .execute(params![seq, next_attempt_at, status, error])?;
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
pub fn log(conn: &Connection, limit: i64) -> Result<(Vec<LogRow>, i64, i64)> {
    let mut st = conn.prepare_cached(
        "SELECT seq, settlement_id, kind, created_at, attempts, next_attempt_at, delivered_at,
            last_status, last_error FROM push_outbox ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = st
        .query_map([limit], |r| {
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
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let (pending, done) = conn.query_row(
        "SELECT coalesce(sum(delivered_at IS NULL), 0), coalesce(sum(delivered_at IS NOT NULL), 0)
         FROM push_outbox",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((rows, pending, done))
}
