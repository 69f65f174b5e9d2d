//! The books MAC and heads: what makes an edit of the database file, or a cut of its newest
//! rows, visible on the statement.
//!
//! - Every settlement and adjustment row carries `mac`, a keyed MAC (HMAC-SHA256 under
//!   [`crate::crypto::books_key`], a subkey of the server's secret key file, which is never in
//!   the database) over every column the statement sums or shows. The server computes it in SQL
//!   (`books_mac(...)`, registered by `db::connect_with`) when it writes the row and again when
//!   it voids it. Whoever edits `subsidy`, clears `voided_at` or inserts a row with the
//!   database file alone cannot make a matching MAC: [`check`] names each such row.
//! - A staff meal's row is gone while its `settlement.staff_entry` audit entry says it was
//!   accepted: [`check`] names it too (kiosk meals are covered by the kiosk's signed chain).
//! - [`heads`] are the newest audit entry and each kiosk's newest chain record, printed on every
//!   statement and export. [`check_heads`] takes the heads from an earlier export and says for
//!   each whether it is still there, was removed (the log was cut) or was rewritten.

use std::collections::BTreeMap;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use zhucan_domain::api::{BooksCheck, HeadVerdict, Heads, HeadsCheck, KioskHead};

use super::{Error, Result};

/// The settlement columns the MAC covers, in order (`settlements.mac`). Every column but
/// `mac` itself: a new column the statement uses must be added here (the test
/// `every_settlement_column_is_under_the_mac` fails until it is).
pub const SETTLEMENT_COLUMNS: &str = "id, kiosk_id, canteen_id, resident_id, served_at, \
    local_date, slot, method, match_score, liveness_score, delivered, staff_reason, outcome, \
    rejection, price, subsidy, self_pay, payment, city_fen, town_fen, other_fen, funding_town, \
    tier, eligibility, policy_id, policy_version, received_at, request_hash, period, \
    late_by_seconds, voided_at, void_reason, voided_by";

/// Settlement columns added after the books MAC existed, under the MAC only when set: each is
/// passed to `books_mac` after [`SETTLEMENT_COLUMNS`] as a (name, value) pair, and a pair whose
/// value is NULL adds nothing. So the MAC of every row where they are NULL (every row written
/// before they existed) is exactly what it was, and a value set or cleared in the database file
/// changes the MAC. (`proxy_carer_id`: the carer of a 代取 meal, migration 0013.)
/// (Migration 0015: the lines of a meal beyond price, subsidy and self-pay.)
pub const SETTLEMENT_OPTIONAL_COLUMNS: &[&str] = &[
    "proxy_carer_id",
    "counter_price",
    "delivery_fee",
    "delivery_subsidy",
    "stacked",
    "stacked_fen",
    "county_fen",
    "canteen_fen",
    "operating_fen",
    "operating_source",
];

/// The arguments of `books_mac('settlement', ...)` after the kind: the columns, then the
/// optional columns as name/value pairs.
pub fn settlement_mac_args() -> String {
    let mut args = SETTLEMENT_COLUMNS.to_owned();
    for c in SETTLEMENT_OPTIONAL_COLUMNS {
        args.push_str(&format!(", '{c}', {c}"));
    }
    args
}

/// The values `books_mac(kind, ...)` is computed over: all of them, except that for a settlement
/// the (name, value) pairs after [`SETTLEMENT_COLUMNS`] whose value is NULL are left out.
pub fn mac_values<'a, 's>(args: &'s [ValueRef<'a>]) -> impl Iterator<Item = ValueRef<'a>> + 's
where
    'a: 's,
{
    let fixed = match args.first() {
        Some(ValueRef::Text(b"settlement")) => 1 + *SETTLEMENT_FIXED,
        Some(ValueRef::Text(b"adjustment")) => 1 + *ADJUSTMENT_FIXED,
        _ => args.len(),
    };
    let fixed = fixed.min(args.len());
    let optional = args[fixed..]
        .chunks(2)
        .filter(|pair| matches!(pair, [_, value] if *value != ValueRef::Null))
        .flatten()
        .copied();
    args[..fixed].iter().copied().chain(optional)
}

/// How many columns [`ADJUSTMENT_COLUMNS`] lists.
static ADJUSTMENT_FIXED: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| ADJUSTMENT_COLUMNS.split(',').count());

/// Adjustment columns added after the books MAC existed, under the MAC like
/// [`SETTLEMENT_OPTIONAL_COLUMNS`]: as (name, value) pairs, only when set (migration 0015).
pub const ADJUSTMENT_OPTIONAL_COLUMNS: &[&str] = &[
    "delivery_fee",
    "delivery_subsidy",
    "county_fen",
    "canteen_fen",
    "operating_fen",
    "operating_source",
];

/// The arguments of `books_mac('adjustment', ...)` after the kind.
pub fn adjustment_mac_args() -> String {
    let mut args = ADJUSTMENT_COLUMNS.to_owned();
    for c in ADJUSTMENT_OPTIONAL_COLUMNS {
        args.push_str(&format!(", '{c}', {c}"));
    }
    args
}

/// How many columns [`SETTLEMENT_COLUMNS`] lists (counted once, not per row).
static SETTLEMENT_FIXED: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| SETTLEMENT_COLUMNS.split(',').count());

/// The books key as a keyed HMAC state, made once per connection: each row's MAC clones it
/// instead of hashing the key again.
pub type MacKey = hmac::Hmac<sha2::Sha256>;

pub fn mac_key(key: &[u8; 32]) -> MacKey {
    <MacKey as hmac::Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// The adjustment columns the MAC covers, in order (`adjustments.mac`).
pub const ADJUSTMENT_COLUMNS: &str = "id, settlement_id, period, original_period, canteen_id, \
    resident_id, funding_town, meals, subsidised_meals, price, subsidy, self_pay, city_fen, \
    town_fen, other_fen, reason, created_at, created_by";

/// The MAC of one row's values under `key`, hex. Each value is encoded with its SQLite type and,
/// for text and blobs, its length, so two different rows never encode alike. (Written out here:
/// no crate gives a canonical byte encoding of SQLite values.)
pub fn mac<'a>(key: &[u8; 32], values: impl Iterator<Item = ValueRef<'a>>) -> String {
    mac_keyed(&mac_key(key), values)
}

/// [`mac`] with the key already in an HMAC state (the same bytes are hashed, fed in pieces).
pub fn mac_keyed<'a>(keyed: &MacKey, values: impl Iterator<Item = ValueRef<'a>>) -> String {
    use hmac::Mac;
    let mut m = keyed.clone();
    for v in values {
        match v {
            ValueRef::Null => m.update(b"n"),
            ValueRef::Integer(i) => {
                m.update(b"i");
                m.update(&i.to_be_bytes());
            }
            ValueRef::Real(f) => {
                m.update(b"r");
                m.update(&f.to_bits().to_be_bytes());
            }
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                m.update(if matches!(v, ValueRef::Text(_)) {
                    b"t"
                } else {
                    b"b"
                });
                m.update(&(t.len() as u64).to_be_bytes());
                m.update(t);
            }
        }
    }
    hex::encode(m.finalize().into_bytes())
}

/// Sets the MAC of settlement `id` from its current columns (after its insert or its void).
pub fn seal_settlement(conn: &Connection, id: &str) -> Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE settlements SET mac = books_mac('settlement', {}) WHERE id = ?1",
        settlement_mac_args()
    ))?
    .execute([id])?;
    Ok(())
}

/// Sets the MAC of adjustment `id` from its columns (after its insert).
pub fn seal_adjustment(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached(&format!(
        "UPDATE adjustments SET mac = books_mac('adjustment', {}) WHERE id = ?1",
        adjustment_mac_args()
    ))?
    .execute([id])?;
    Ok(())
}

/// Seals the rows written before the books MAC existed (migration 0008), once: run by
/// `Db::open_keyed` until the `books_sealed` marker exists, audited as `books.seal`. A row whose
/// MAC is missing afterwards is a finding of [`check`]. (Whoever deletes the marker to have
/// edited rows sealed again leaves a second `books.seal` entry in the audit log.)
pub fn seal_legacy(tx: &super::Tx<'_>, at: &str) -> Result<()> {
    let done: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM books_sealed)")?
        .query_row([], |r| r.get(0))?;
    if done {
        return Ok(());
    }
    let settlements = tx.execute(
        &format!(
            "UPDATE settlements SET mac = books_mac('settlement', {})
             WHERE mac IS NULL",
            settlement_mac_args()
        ),
        [],
    )?;
    let adjustments = tx.execute(
        &format!(
            "UPDATE adjustments SET mac = books_mac('adjustment', {})
             WHERE mac IS NULL",
            adjustment_mac_args()
        ),
        [],
    )?;
    tx.execute(
        "INSERT INTO books_sealed (settlements, adjustments) VALUES (?1, ?2)",
        params![settlements as i64, adjustments as i64],
    )?;
    super::audit::append(
        &crate::db::sql::Conn::Sqlite(tx),
        at,
        &super::audit::Actor::system("server"),
        "books.seal",
        "books",
        &serde_json::json!({ "settlements": settlements, "adjustments": adjustments }),
    )?;
    if settlements + adjustments > 0 {
        tracing::info!(
            settlements,
            adjustments,
            "sealed rows from before the books MAC"
        );
    }
    Ok(())
}

/// How many altered rows a check lists by id (all are counted).
const LISTED: usize = 100;

/// The books check of `period`: every settlement and adjustment row of the month against its
/// MAC, and every accepted staff entry in the audit log against its row.
pub fn check(conn: &Connection, period: &str) -> Result<BooksCheck> {
    let mut out = BooksCheck::default();
    let mut altered = Vec::new();
    for (table, columns, id) in [
        ("settlements", settlement_mac_args(), "'settlement:' || id"),
        ("adjustments", adjustment_mac_args(), "'adjustment:' || id"),
        (
            "withholdings",
            super::flags::WITHHOLDING_COLUMNS.to_owned(),
            "'withholding:' || settlement_id",
        ),
    ] {
        let kind = &table[..table.len() - 1];
        let mut st = conn.prepare_cached(&format!(
            "SELECT {id}, mac IS NOT books_mac('{kind}', {columns}) FROM {table}
             WHERE period = ?1"
        ))?;
        let mut rows = st.query([period])?;
        while let Some(r) = rows.next()? {
            out.checked += 1;
            if r.get::<_, bool>(1)? {
                altered.push(r.get::<_, String>(0)?);
            }
        }
    }
    out.altered_count = altered.len() as i64;
    altered.truncate(LISTED);
    out.altered = altered;
    // Accepted staff entries of the month whose row is gone. The month is the entry's local
    // month, which the row no longer tells: served_at's month in UTC or the day after is
    // enough to narrow, then the answer decides.
    let mut st = conn.prepare_cached(
        "SELECT a.target FROM audit_log a
         WHERE a.action = 'settlement.staff_entry'
           AND json_extract(a.detail, '$.status') = 'accepted'
           AND json_extract(a.detail, '$.period') = ?1
           AND NOT EXISTS (SELECT 1 FROM settlements s
                           WHERE 'settlement:' || s.id = a.target)
         ORDER BY a.seq",
    )?;
    let rows = st.query_map([period], |r| r.get::<_, String>(0))?;
    out.missing = rows.collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

/// The books as they end now: the newest audit entry and each kiosk's newest chain record.
pub fn heads(conn: &Connection) -> Result<Heads> {
    let (audit_seq, audit_hash) = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .optional()?
        .unwrap_or((0, super::audit::GENESIS.to_owned()));
    let mut st = conn.prepare_cached(
        "SELECT l.kiosk_id, l.seq, l.record_hash FROM chain_links l
         WHERE l.seq = (SELECT max(seq) FROM chain_links m WHERE m.kiosk_id = l.kiosk_id)
         ORDER BY l.kiosk_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(KioskHead {
            kiosk_id: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            hash: hex::encode(r.get::<_, Vec<u8>>(2)?),
        })
    })?;
    let kiosks = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Heads::new(audit_seq, audit_hash, kiosks))
}

/// Whether the books still hold each head of `earlier` (from an earlier statement or export).
pub fn check_heads(conn: &Connection, earlier: &Heads) -> Result<HeadsCheck> {
    let now = heads(conn)?;
    let audit_hash: Option<String> = conn
        .prepare_cached("SELECT hash FROM audit_log WHERE seq = ?1")?
        .query_row([earlier.audit_seq], |r| r.get(0))
        .optional()?;
    let audit = if earlier.audit_seq == 0 {
        HeadVerdict::present("audit", None, 0)
    } else {
        verdict(
            "audit",
            None,
            earlier.audit_seq as u64,
            &earlier.audit_hash,
            audit_hash,
        )
    };
    let latest: BTreeMap<i64, u64> = now.kiosks.iter().map(|k| (k.kiosk_id, k.seq)).collect();
    let mut kiosks = Vec::new();
    for k in &earlier.kiosks {
        let hash: Option<Vec<u8>> = conn
            .prepare_cached("SELECT record_hash FROM chain_links WHERE kiosk_id = ?1 AND seq = ?2")?
            .query_row(
                params![k.kiosk_id, i64::try_from(k.seq).map_err(Error::other)?],
                |r| r.get(0),
            )
            .optional()?;
        let mut v = verdict(
            "kiosk",
            Some(k.kiosk_id),
            k.seq,
            &k.hash,
            hash.map(hex::encode),
        );
        if v.verdict == "removed" {
            v.now_seq = latest.get(&k.kiosk_id).copied();
        }
        kiosks.push(v);
    }
    let ok = audit.verdict == "present" && kiosks.iter().all(|k| k.verdict == "present");
    Ok(HeadsCheck {
        ok,
        audit,
        kiosks,
        now,
    })
}

fn verdict(
    what: &str,
    kiosk_id: Option<i64>,
    seq: u64,
    expected: &str,
    found: Option<String>,
) -> HeadVerdict {
    match found {
        Some(h) if h.eq_ignore_ascii_case(expected) => HeadVerdict::present(what, kiosk_id, seq),
        Some(_) => HeadVerdict {
            what: what.into(),
            kiosk_id,
            seq,
            verdict: "rewritten".into(),
            verdict_zh: "已被改写：此处的记录与当时导出的不同".into(),
            now_seq: None,
        },
        None => HeadVerdict {
            what: what.into(),
            kiosk_id,
            seq,
            verdict: "removed".into(),
            verdict_zh: "已被删除：当时导出的最后一条记录已不在库中".into(),
            now_seq: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_optional_column_leaves_the_mac_of_a_row_as_it_was() {
        let key = [7u8; 32];
        let n = SETTLEMENT_COLUMNS.split(',').count();
        let mut row: Vec<ValueRef<'_>> = vec![ValueRef::Text(b"settlement")];
        row.extend((0..n as i64).map(ValueRef::Integer));
        // the MAC as the server made it before the optional columns existed
        let before = mac(&key, row.clone().into_iter());
        let mut unset = row.clone();
        unset.extend([ValueRef::Text(b"proxy_carer_id"), ValueRef::Null]);
        assert_eq!(mac(&key, mac_values(&unset)), before);
        let mut set = row.clone();
        set.extend([ValueRef::Text(b"proxy_carer_id"), ValueRef::Integer(3)]);
        let with_carer = mac(&key, mac_values(&set));
        assert_ne!(with_carer, before);
        set[n + 2] = ValueRef::Integer(4);
        assert_ne!(mac(&key, mac_values(&set)), with_carer);
        // adjustments have no optional columns: every value counts
        let adj = [
            ValueRef::Text(b"adjustment"),
            ValueRef::Null,
            ValueRef::Null,
        ];
        assert_eq!(mac_values(&adj).count(), 3);
    }

    /// The keyed state fed value by value gives the HMAC of the whole encoding at once: rows
    /// sealed before keep their MAC.
    #[test]
    fn the_keyed_mac_is_the_hmac_of_the_whole_encoding() {
        let key = [9u8; 32];
        let values = [
            ValueRef::Text(b"settlement"),
            ValueRef::Integer(-7),
            ValueRef::Real(0.5),
            ValueRef::Null,
            ValueRef::Blob(b"\x00\x01"),
        ];
        let mut whole = Vec::new();
        whole.extend_from_slice(b"t");
        whole.extend_from_slice(&10u64.to_be_bytes());
        whole.extend_from_slice(b"settlement");
        whole.extend_from_slice(b"i");
        whole.extend_from_slice(&(-7i64).to_be_bytes());
        whole.extend_from_slice(b"r");
        whole.extend_from_slice(&0.5f64.to_bits().to_be_bytes());
        whole.extend_from_slice(b"n");
        whole.extend_from_slice(b"b");
        whole.extend_from_slice(&2u64.to_be_bytes());
        whole.extend_from_slice(b"\x00\x01");
        assert_eq!(
            mac(&key, values.into_iter()),
            hex::encode(crate::crypto::hmac_sha256(&key, &whole))
        );
    }
}
