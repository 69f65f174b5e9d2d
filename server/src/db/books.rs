//! The books MAC and heads: what makes an edit of the database, or a cut of its newest rows,
//! visible on the statement.
//!
//! - Every settlement, adjustment and withholding row carries `mac`, a keyed MAC (HMAC-SHA256
//!   under [`crate::crypto::books_key`], a subkey of the server's secret key file, which is never
//!   in the database) over every column the statement sums or shows. The server computes it in
//!   Rust from the row as read back ([`seal`]) when it writes the row and again when it voids it,
//!   the same on SQLite and PostgreSQL, so a row copied from one to the other keeps its MAC.
//!   Whoever edits `subsidy`, clears `voided_at` or inserts a row with the database alone
//!   cannot make a matching MAC: [`check`] names each such row ([`altered`]).
//! - A staff meal's row is gone while its `settlement.staff_entry` audit entry says it was
//!   accepted: [`check`] names it too (kiosk meals are covered by the kiosk's signed chain).
//! - [`heads`] are the newest audit entry and each kiosk's newest chain record, printed on every
//!   statement and export. [`check_heads`] takes the heads from an earlier export and says for
//!   each whether it is still there, was removed (the log was cut) or was rewritten.

use std::collections::BTreeMap;

use zhucan_domain::api::{BooksCheck, HeadVerdict, Heads, HeadsCheck, KioskHead};

use super::sql::{Conn, OptionalExtension, Params, Row, ValueRef, params};
use super::{Error, Result, Tx};

/// The settlement columns the MAC covers, in order (`settlements.mac`). Every column but
/// `mac` itself: a new column the statement uses must be added here (the test
/// `every_settlement_column_is_under_the_mac` fails until it is).
pub const SETTLEMENT_COLUMNS: &str = "id, kiosk_id, canteen_id, resident_id, served_at, \
    local_date, slot, method, match_score, liveness_score, delivered, staff_reason, outcome, \
    rejection, price, subsidy, self_pay, payment, city_fen, town_fen, other_fen, funding_town, \
    tier, eligibility, policy_id, policy_version, received_at, request_hash, period, \
    late_by_seconds, voided_at, void_reason, voided_by";

/// Settlement columns added after the books MAC existed, under the MAC only when set: each
/// goes into the MAC after [`SETTLEMENT_COLUMNS`] as a (name, value) pair, and a pair whose
/// value is NULL adds nothing. So the MAC of every row where they are NULL (every row written
/// before they existed) is exactly what it was, and a value set or cleared in the database
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

/// The adjustment columns the MAC covers, in order (`adjustments.mac`).
pub const ADJUSTMENT_COLUMNS: &str = "id, settlement_id, period, original_period, canteen_id, \
    resident_id, funding_town, meals, subsidised_meals, price, subsidy, self_pay, city_fen, \
    town_fen, other_fen, reason, created_at, created_by";

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

/// The withholding columns the MAC covers, in order (`withholdings.mac`).
pub const WITHHOLDING_COLUMNS: &str = "settlement_id, period, flag_key, canteen_id, \
    resident_id, subsidy, city_fen, town_fen, other_fen, funding_town, created_at, created_by";

/// A kind of row under the books MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Settlement,
    Adjustment,
    Withholding,
}

impl Kind {
    /// The name the MAC starts with, and the row's label in a check's list.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Settlement => "settlement",
            Kind::Adjustment => "adjustment",
            Kind::Withholding => "withholding",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Settlement => "settlements",
            Kind::Adjustment => "adjustments",
            Kind::Withholding => "withholdings",
        }
    }

    /// The column that names a row (text in a check's list).
    fn key(self) -> &'static str {
        match self {
            Kind::Settlement | Kind::Adjustment => "id",
            Kind::Withholding => "settlement_id",
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Kind::Settlement => SETTLEMENT_COLUMNS,
            Kind::Adjustment => ADJUSTMENT_COLUMNS,
            Kind::Withholding => WITHHOLDING_COLUMNS,
        }
    }

    fn optional(self) -> &'static [&'static str] {
        match self {
            Kind::Settlement => SETTLEMENT_OPTIONAL_COLUMNS,
            Kind::Adjustment => ADJUSTMENT_OPTIONAL_COLUMNS,
            Kind::Withholding => &[],
        }
    }

    /// `SELECT <key>, mac, <columns>, <optional columns> FROM <table>`.
    fn select(self) -> String {
        let mut sql = format!(
            "SELECT {} AS books_key, mac, {}",
            self.key(),
            self.columns()
        );
        for c in self.optional() {
            sql.push_str(", ");
            sql.push_str(c);
        }
        sql.push_str(" FROM ");
        sql.push_str(self.table());
        sql
    }
}

/// The books key as a keyed HMAC state, made once per process ([`super::Keys`]): each row's
/// MAC clones it instead of hashing the key again.
pub type MacKey = hmac::Hmac<sha2::Sha256>;

pub fn mac_key(key: &[u8; 32]) -> MacKey {
    <MacKey as hmac::Mac>::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// The values the MAC of a row of `kind` is computed over: the kind's name, the columns, then
/// each optional column that is set as a (name, value) pair. ([`expected`] feeds them in this
/// order without collecting them; the tests state the order with this.)
#[cfg(test)]
fn row_values<'r>(
    kind: Kind,
    fixed: &[ValueRef<'r>],
    optional: &[ValueRef<'r>],
) -> Vec<ValueRef<'r>> {
    let mut out = Vec::with_capacity(1 + fixed.len() + 2 * optional.len());
    out.push(ValueRef::Text(kind.as_str()));
    out.extend_from_slice(fixed);
    for (name, v) in kind.optional().iter().zip(optional) {
        if *v != ValueRef::Null {
            out.push(ValueRef::Text(name));
            out.push(*v);
        }
    }
    out
}

/// The MAC a row read by [`Kind::select`] should carry (None without the server's keys: the
/// row is then stored without one, and a check without keys finds every sealed row altered).
/// `fixed`: how many columns [`Kind::columns`] lists. The values are fed to the HMAC as they
/// are read, in [`row_values`]' order, with nothing allocated per row (a check reads a month).
fn expected(conn: &Conn<'_>, kind: Kind, fixed: usize, r: &Row<'_>) -> Result<Option<String>> {
    use hmac::Mac;
    let Some(keys) = conn.keys() else {
        return Ok(None);
    };
    let mut m = keys.books.clone();
    feed(&mut m, ValueRef::Text(kind.as_str()));
    for i in 0..fixed {
        feed(&mut m, r.get_ref(2 + i)?);
    }
    for (j, name) in kind.optional().iter().enumerate() {
        let v = r.get_ref(2 + fixed + j)?;
        if v != ValueRef::Null {
            feed(&mut m, ValueRef::Text(name));
            feed(&mut m, v);
        }
    }
    Ok(Some(hex::encode(m.finalize().into_bytes())))
}

/// The MAC of one row's values under `key`, hex. Each value is encoded with its SQL type and,
/// for text and blobs, its length, so two different rows never encode alike. (Written out here:
/// no crate gives a canonical byte encoding of SQL values.)
pub fn mac<'a>(key: &[u8; 32], values: impl Iterator<Item = ValueRef<'a>>) -> String {
    mac_keyed(&mac_key(key), values)
}

/// [`mac`] with the key already in an HMAC state (the same bytes are hashed, fed in pieces).
pub fn mac_keyed<'a>(keyed: &MacKey, values: impl Iterator<Item = ValueRef<'a>>) -> String {
    use hmac::Mac;
    let mut m = keyed.clone();
    for v in values {
        feed(&mut m, v);
    }
    hex::encode(m.finalize().into_bytes())
}

/// One value into the MAC: its type, then (text and blobs) its length, then its bytes.
fn feed(m: &mut MacKey, v: ValueRef<'_>) {
    use hmac::Mac;
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
        ValueRef::Text(t) => {
            m.update(b"t");
            m.update(&(t.len() as u64).to_be_bytes());
            m.update(t.as_bytes());
        }
        ValueRef::Blob(b) => {
            m.update(b"b");
            m.update(&(b.len() as u64).to_be_bytes());
            m.update(b);
        }
    }
}

/// Sets the MAC of the rows of `kind` that `filter` (an SQL condition with `params`) selects,
/// from their current columns; returns how many.
pub fn seal(tx: &Tx<'_>, kind: Kind, filter: &str, params: impl Params) -> Result<usize> {
    let fixed = kind.columns().split(',').count();
    let mut sealed = Vec::new();
    tx.for_each(&format!("{} WHERE {filter}", kind.select()), params, |r| {
        sealed.push((r.get_ref(0)?.to_owned(), expected(tx, kind, fixed, r)?));
        Ok(())
    })?;
    // by the key as stored: its index finds the row
    let update = format!(
        "UPDATE {} SET mac = ?2 WHERE {} = ?1",
        kind.table(),
        kind.key()
    );
    for (key, mac) in &sealed {
        tx.execute(&update, params![key, mac])?;
    }
    Ok(sealed.len())
}

/// Sets the MAC of settlement `id` from its current columns (after its insert or its void).
pub fn seal_settlement(tx: &Tx<'_>, id: &str) -> Result<()> {
    seal(tx, Kind::Settlement, "id = ?1", [id]).map(drop)
}

/// Sets the MAC of adjustment `id` from its columns (after its insert).
pub fn seal_adjustment(tx: &Tx<'_>, id: i64) -> Result<()> {
    seal(tx, Kind::Adjustment, "id = ?1", [id]).map(drop)
}

/// Sets the MAC of the withholding of settlement `settlement_id` (after its insert).
pub fn seal_withholding(tx: &Tx<'_>, settlement_id: &str) -> Result<()> {
    seal(tx, Kind::Withholding, "settlement_id = ?1", [settlement_id]).map(drop)
}

/// Rows whose stored MAC differs from their columns'.
#[derive(Debug, Default)]
pub struct Altered {
    /// How many rows were checked.
    pub checked: i64,
    /// The key of each altered row, as text, in key order.
    pub ids: Vec<String>,
}

/// Checks each row of `kind` that `filter` (an SQL condition with `params`) selects against its
/// MAC, one row at a time.
pub fn altered(conn: &Conn<'_>, kind: Kind, filter: &str, params: impl Params) -> Result<Altered> {
    let fixed = kind.columns().split(',').count();
    let mut checked = 0;
    // (key as a number, key as text): integer keys sort as numbers, text keys as text
    let mut found: Vec<(i64, String)> = Vec::new();
    conn.for_each(&format!("{} WHERE {filter}", kind.select()), params, |r| {
        checked += 1;
        if r.get::<_, Option<String>>(1)? != expected(conn, kind, fixed, r)? {
            found.push(match r.get_ref(0)? {
                ValueRef::Integer(i) => (i, String::new()),
                ValueRef::Text(t) => (0, t.to_owned()),
                other => return Err(Error::other(format!("a row key {other:?}"))),
            });
        }
        Ok(())
    })?;
    // in key order on both databases (the rows come in whatever order the plan gives)
    found.sort();
    Ok(Altered {
        checked,
        ids: found
            .into_iter()
            .map(|(i, t)| if t.is_empty() { i.to_string() } else { t })
            .collect(),
    })
}

/// Seals the rows written before the books MAC existed (migration 0008), once: run by
/// `Db::open_keyed` until the `books_sealed` marker exists, audited as `books.seal`. A row whose
/// MAC is missing afterwards is a finding of [`check`]. (Whoever deletes the marker to have
/// edited rows sealed again leaves a second `books.seal` entry in the audit log.)
pub fn seal_legacy(tx: &Tx<'_>, at: &str) -> Result<()> {
    let done: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM books_sealed)", (), |r| {
        r.get(0)
    })?;
    if done {
        return Ok(());
    }
    let settlements = seal(tx, Kind::Settlement, "mac IS NULL", ())?;
    let adjustments = seal(tx, Kind::Adjustment, "mac IS NULL", ())?;
    tx.execute(
        "INSERT INTO books_sealed (settlements, adjustments) VALUES (?1, ?2)",
        params![settlements as i64, adjustments as i64],
    )?;
    super::audit::append(
        tx,
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

/// The books check of `period`: every settlement, adjustment and withholding row of the month
/// against its MAC, and every accepted staff entry in the audit log against its row.
pub fn check(conn: &Conn<'_>, period: &str) -> Result<BooksCheck> {
    let mut out = BooksCheck::default();
    let mut listed = Vec::new();
    for kind in [Kind::Settlement, Kind::Adjustment, Kind::Withholding] {
        let found = altered(conn, kind, "period = ?1", [period])?;
        out.checked += found.checked;
        listed.extend(
            found
                .ids
                .into_iter()
                .map(|id| format!("{}:{id}", kind.as_str())),
        );
    }
    out.altered_count = listed.len() as i64;
    listed.truncate(LISTED);
    out.altered = listed;
    // Accepted staff entries of the month whose row is gone.
    let detail = |key: &str| {
        conn.pick(
            format!("json_extract(a.detail, '$.{key}')"),
            format!("(a.detail::jsonb ->> '{key}')"),
        )
    };
    out.missing = conn.query_map(
        &format!(
            "SELECT a.target FROM audit_log a
             WHERE a.action = 'settlement.staff_entry'
               AND {} = 'accepted'
               AND {} = ?1
               AND NOT EXISTS (SELECT 1 FROM settlements s
                               WHERE 'settlement:' || s.id = a.target)
             ORDER BY a.seq",
            detail("status"),
            detail("period")
        ),
        [period],
        |r| r.get(0),
    )?;
    Ok(out)
}

/// The books as they end now: the newest audit entry and each kiosk's newest chain record.
pub fn heads(conn: &Conn<'_>) -> Result<Heads> {
    let (audit_seq, audit_hash) = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            (),
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
        .unwrap_or((0, super::audit::GENESIS.to_owned()));
    let kiosks = conn.query_map(
        "SELECT l.kiosk_id, l.seq, l.record_hash FROM chain_links l
         WHERE l.seq = (SELECT max(seq) FROM chain_links m WHERE m.kiosk_id = l.kiosk_id)
         ORDER BY l.kiosk_id",
        (),
        |r| {
            Ok(KioskHead {
                kiosk_id: r.get(0)?,
                seq: r.get::<_, i64>(1)? as u64,
                hash: hex::encode(r.get::<_, Vec<u8>>(2)?),
            })
        },
    )?;
    Ok(Heads::new(audit_seq, audit_hash, kiosks))
}

/// Whether the books still hold each head of `earlier` (from an earlier statement or export).
pub fn check_heads(conn: &Conn<'_>, earlier: &Heads) -> Result<HeadsCheck> {
    let now = heads(conn)?;
    let audit_hash: Option<String> = conn
        .query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [earlier.audit_seq],
            |r| r.get(0),
        )
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
            .query_row(
                "SELECT record_hash FROM chain_links WHERE kiosk_id = ?1 AND seq = ?2",
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
        let n = SETTLEMENT_COLUMNS.split(',').count() as i64;
        let fixed: Vec<ValueRef<'_>> = (0..n).map(ValueRef::Integer).collect();
        // the MAC as the server made it before the optional columns existed
        let mut before = vec![ValueRef::Text("settlement")];
        before.extend(fixed.iter().copied());
        let before = mac(&key, before.into_iter());
        let mut unset = vec![ValueRef::Null; SETTLEMENT_OPTIONAL_COLUMNS.len()];
        assert_eq!(
            mac(
                &key,
                row_values(Kind::Settlement, &fixed, &unset).into_iter()
            ),
            before
        );
        unset[0] = ValueRef::Integer(3);
        let with_carer = mac(
            &key,
            row_values(Kind::Settlement, &fixed, &unset).into_iter(),
        );
        assert_ne!(with_carer, before);
        unset[0] = ValueRef::Integer(4);
        assert_ne!(
            mac(
                &key,
                row_values(Kind::Settlement, &fixed, &unset).into_iter()
            ),
            with_carer
        );
        // a set optional column goes in as its name and value
        assert_eq!(
            row_values(Kind::Settlement, &fixed, &unset)[1 + n as usize..],
            [ValueRef::Text("proxy_carer_id"), ValueRef::Integer(4)]
        );
        // withholdings have no optional columns: every value counts
        let w = [ValueRef::Null, ValueRef::Null];
        assert_eq!(row_values(Kind::Withholding, &w, &[]).len(), 3);
    }

    /// The keyed state fed value by value gives the HMAC of the whole encoding at once: rows
    /// sealed before keep their MAC.
    #[test]
    fn the_keyed_mac_is_the_hmac_of_the_whole_encoding() {
        let key = [9u8; 32];
        let values = [
            ValueRef::Text("settlement"),
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
