//! The kiosks' signed hash chains: their public keys (with rotation), one link per signed record
//! received, the refused attempts (integrity events), and the checks over them: the SQL chain
//! check the statement shows (gaps, forks, refused signatures) and the full re-verification of
//! one kiosk (every stored payload re-hashed, every signature re-checked, every settlement row
//! compared with the record it came from). Runs on both databases (`db::sql`).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use zhucan_domain::CanteenId;
use zhucan_domain::api::{ChainLine, ChainProblem};
use zhucan_domain::signing::{self, VerifyingKey};

use super::books;
use super::sql::{Conn, params};
use super::statements::Filter;
use super::{Error, Result, Tx};

/// `prev_hash` of a chain's first record, as stored (32 zero bytes).
pub const GENESIS_BYTES: [u8; 32] = [0; 32];

/// `verified`: no gap, no fork, no refused record.
pub const VERIFIED: &str = "verified";
/// `broken`: see the problems.
pub const BROKEN: &str = "broken";
/// `flagged`: the chain is whole, but face meals were signed with scores below the thresholds
/// the kiosk itself reported (problems of kind `below_threshold`): accepted, to be looked at.
pub const FLAGGED: &str = "flagged";
/// `unsigned`: meals entered on the server itself, or a kiosk that never sent a signed record.
pub const UNSIGNED: &str = "unsigned";

/// The Chinese label of a chain status.
pub fn status_zh(status: &str) -> &'static str {
    match status {
        VERIFIED => "已验证",
        BROKEN => "链有缺口或分叉",
        FLAGGED => "链完整，有低于终端阈值的人脸记录待核查",
        _ => "未签名（服务器录入）",
    }
}

/// One of a kiosk's public keys: it verifies records from `from_seq` on (until the next key).
#[derive(Debug, Clone)]
pub struct Key {
    pub from_seq: u64,
    pub key: VerifyingKey,
}

/// The key that verifies record `seq`: the one with the largest `from_seq <= seq`.
pub fn key_for(keys: &[Key], seq: u64) -> Option<&VerifyingKey> {
    keys.iter()
        .filter(|k| k.from_seq <= seq)
        .max_by_key(|k| k.from_seq)
        .map(|k| &k.key)
}

fn to_i64(v: u64, field: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, "too large"))
}

/// The kiosk's keys, oldest first.
pub fn keys(conn: &Conn<'_>, kiosk: i64) -> Result<Vec<Key>> {
    conn.query_map(
        "SELECT from_seq, public_key FROM kiosk_keys WHERE kiosk_id = ?1 ORDER BY from_seq",
        [kiosk],
        |r| {
            let from: i64 = r.get(0)?;
            let text: String = r.get(1)?;
            Ok(Key {
                from_seq: from as u64,
                key: signing::decode_public_key(&text)
                    .map_err(|e| Error::other(format!("kiosk {kiosk} key: {e}")))?,
            })
        },
    )
}

/// Stores `public_key` (already checked with `signing::decode_public_key`) as the key for
/// records from `from_seq` on. A key with the same `from_seq` is replaced: callers only allow
/// that when no record at or after `from_seq` was received yet.
pub fn add_key(tx: &Tx<'_>, kiosk: i64, from_seq: u64, public_key: &str, now: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO kiosk_keys (kiosk_id, from_seq, public_key, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kiosk_id, from_seq)
         DO UPDATE SET public_key = excluded.public_key, created_at = excluded.created_at",
        params![kiosk, to_i64(from_seq, "from_seq")?, public_key, now],
    )?;
    Ok(())
}

/// The largest `seq` received from the kiosk (0 if none).
pub fn max_seq(conn: &Conn<'_>, kiosk: i64) -> Result<u64> {
    let v: Option<i64> = conn.query_row(
        "SELECT max(seq) FROM chain_links WHERE kiosk_id = ?1",
        [kiosk],
        |r| r.get(0),
    )?;
    Ok(v.unwrap_or(0) as u64)
}

/// A signed record as stored.
#[derive(Debug, Clone)]
pub struct Link<'a> {
    pub kiosk_id: i64,
    pub seq: u64,
    pub record_hash: [u8; 32],
    pub prev_hash: [u8; 32],
    pub settlement_id: &'a str,
    pub settled: bool,
    pub signature: &'a str,
    /// The exact signed bytes (`signing::payload`, JSON text).
    pub payload: &'a str,
    pub received_at: &'a str,
}

/// A stored link as the ingest's chain check sees it.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub seq: u64,
    pub record_hash: Vec<u8>,
    pub prev_hash: Vec<u8>,
}

/// The stored links at `seq - 1`, `seq` and `seq + 1` of a kiosk's chain (those that exist).
pub fn around(conn: &Conn<'_>, kiosk: i64, seq: u64) -> Result<Vec<Neighbour>> {
    let seq = to_i64(seq, "signed.seq")?;
    conn.query_map(
        "SELECT seq, record_hash, prev_hash FROM chain_links
         WHERE kiosk_id = ?1 AND seq BETWEEN CAST(?2 AS BIGINT) - 1 AND CAST(?2 AS BIGINT) + 1",
        params![kiosk, seq],
        |r| {
            Ok(Neighbour {
                seq: r.get::<_, i64>(0)? as u64,
                record_hash: r.get(1)?,
                prev_hash: r.get(2)?,
            })
        },
    )
}

pub fn insert_link(tx: &Tx<'_>, l: &Link<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO chain_links (kiosk_id, seq, record_hash, prev_hash, settlement_id, settled,
            signature, payload, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            l.kiosk_id,
            to_i64(l.seq, "signed.seq")?,
            &l.record_hash[..],
            &l.prev_hash[..],
            l.settlement_id,
            l.settled,
            l.signature,
            l.payload,
            l.received_at
        ],
    )?;
    Ok(())
}

/// Marks a link whose record now created its settlement (a retry after an item error).
pub fn mark_settled(tx: &Tx<'_>, kiosk: i64, seq: u64) -> Result<()> {
    tx.execute(
        "UPDATE chain_links SET settled = 1 WHERE kiosk_id = ?1 AND seq = ?2",
        params![kiosk, to_i64(seq, "signed.seq")?],
    )?;
    Ok(())
}

/// The kind of a refused record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    SignatureMissing,
    SignatureMalformed,
    SignatureInvalid,
    Fork,
    /// Not refused: a face meal accepted with a score below the threshold the kiosk reported in
    /// its last heartbeat.
    BelowKioskThreshold,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SignatureMissing => "signature_missing",
            EventKind::SignatureMalformed => "signature_malformed",
            EventKind::SignatureInvalid => "signature_invalid",
            EventKind::Fork => "chain_fork",
            EventKind::BelowKioskThreshold => "below_kiosk_threshold",
        }
    }

    /// From a `SignatureError::code()`.
    pub fn from_signature_code(code: &str) -> EventKind {
        match code {
            "signature_missing" => EventKind::SignatureMissing,
            "signature_malformed" => EventKind::SignatureMalformed,
            _ => EventKind::SignatureInvalid,
        }
    }
}

/// A record refused for integrity.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kiosk_id: i64,
    pub kind: EventKind,
    pub seq: Option<u64>,
    pub settlement_id: Option<&'a str>,
    pub detail: &'a str,
    pub at: &'a str,
}

pub fn record_event(tx: &Tx<'_>, e: &Event<'_>) -> Result<()> {
    // A seq too large for the column (a signed 64-bit integer) is kept out of it (it is in
    // the detail).
    let seq = e.seq.and_then(|s| i64::try_from(s).ok());
    tx.execute(
        "INSERT INTO integrity_events (kiosk_id, kind, seq, settlement_id, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            e.kiosk_id,
            e.kind.as_str(),
            seq,
            e.settlement_id,
            e.detail,
            e.at
        ],
    )?;
    Ok(())
}

fn problem(kind: &str, from: u64, to: u64, detail: String) -> ChainProblem {
    ChainProblem {
        kind: kind.into(),
        seq_from: from,
        seq_to: to,
        detail,
    }
}

/// The SQL chain check of one kiosk (all time): every gap in its seqs (from 1 to the largest
/// received), every link whose `prev_hash` is not the `record_hash` of its predecessor (or not
/// GENESIS for seq 1), and the records refused for a bad signature or as a fork. In seq order.
pub fn problems(conn: &Conn<'_>, kiosk: i64) -> Result<Vec<ChainProblem>> {
    let mut out = Vec::new();
    // One pass over the kiosk's links in seq order, each joined to its predecessor through the
    // covering index: a row comes out only where the predecessor is missing (the end of a gap;
    // its start is the largest seq below, plus one) or does not hash to this link's prev_hash.
    let sql = format!(
        "SELECT l.seq,
            CASE WHEN l.seq > 1 AND p.seq IS NULL THEN
                (SELECT coalesce(max(q.seq), 0) FROM chain_links q
                 WHERE q.kiosk_id = ?1 AND q.seq < l.seq)
            END AS below
         FROM chain_links l
         LEFT JOIN chain_links p {}
            ON p.kiosk_id = l.kiosk_id AND p.seq = l.seq - 1
         WHERE l.kiosk_id = ?1
           AND CASE WHEN l.seq = 1 THEN l.prev_hash IS DISTINCT FROM ?2
                    ELSE p.record_hash IS DISTINCT FROM l.prev_hash END
         ORDER BY l.seq",
        // (SQLite's planner is told the covering index; PostgreSQL has no index hints)
        conn.pick("INDEXED BY chain_links_check", "")
    );
    conn.for_each(&sql, params![kiosk, &GENESIS_BYTES[..]], |r| {
        let seq = r.get::<_, i64>(0)? as u64;
        match r.get::<_, Option<i64>>(1)? {
            Some(below) => {
                let (from, to) = (below as u64 + 1, seq - 1);
                out.push(problem(
                    "gap",
                    from,
                    to,
                    format!("第{from}至{to}条记录未收到 / records {from}..={to} never arrived"),
                ));
            }
            None => out.push(problem(
                "fork",
                seq,
                seq,
                format!(
                    "第{seq}条记录的前序哈希与第{}条不符 / record {seq} does not link to record {}",
                    seq - 1,
                    seq - 1
                ),
            )),
        }
        Ok(())
    })?;
    conn.for_each(
        "SELECT kind, seq, count(*), max(detail) FROM integrity_events WHERE kiosk_id = ?1
         GROUP BY kind, seq",
        [kiosk],
        |r| {
            let kind: String = r.get(0)?;
            let seq = r.get::<_, Option<i64>>(1)?.unwrap_or(0) as u64;
            let n: i64 = r.get(2)?;
            let detail: String = r.get(3)?;
            let (kind, zh) = match kind.as_str() {
                "chain_fork" => ("fork", "与已收到记录冲突的记录已拒绝"),
                "below_kiosk_threshold" => (
                    "below_threshold",
                    "人脸分数低于该终端自报的阈值，已结算，待核查",
                ),
                _ => ("bad_signature", "签名无效的记录已拒绝"),
            };
            let at = if seq == 0 {
                String::new()
            } else {
                format!("第{seq}条：")
            };
            out.push(problem(
                kind,
                seq,
                seq,
                format!("{at}{zh}（{n}次） / refused {n}×: {detail}"),
            ));
            Ok(())
        },
    )?;
    out.sort_by(|a, b| (a.seq_from, &a.kind).cmp(&(b.seq_from, &b.kind)));
    Ok(out)
}

/// (first, last) seq received from the kiosk.
pub fn seq_range(conn: &Conn<'_>, kiosk: i64) -> Result<(Option<u64>, Option<u64>)> {
    conn.query_row(
        "SELECT min(seq), max(seq) FROM chain_links WHERE kiosk_id = ?1",
        [kiosk],
        |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?.map(|v| v as u64),
                r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
            ))
        },
    )
}

fn kiosk_info(conn: &Conn<'_>, kiosk: i64) -> Result<(String, CanteenId)> {
    conn.query_row(
        "SELECT name, canteen_id FROM kiosks WHERE id = ?1",
        [kiosk],
        |r| Ok((r.get(0)?, CanteenId(r.get(1)?))),
    )
}

/// A kiosk's chain line: all-time problems and seq range, with the given meal counts.
pub fn line(conn: &Conn<'_>, kiosk: i64, meals: i64, staff_meals: i64) -> Result<ChainLine> {
    let (name, canteen) = kiosk_info(conn, kiosk)?;
    let (first_seq, last_seq) = seq_range(conn, kiosk)?;
    let problems = problems(conn, kiosk)?;
    let status = if problems.iter().any(|p| p.kind != "below_threshold") {
        BROKEN
    } else if !problems.is_empty() {
        FLAGGED
    } else if last_seq.is_none() {
        UNSIGNED
    } else {
        VERIFIED
    };
    // A kiosk without signed records is unsigned, but not "entered on the server".
    let zh = if status == UNSIGNED {
        "未签名"
    } else {
        status_zh(status)
    };
    Ok(ChainLine {
        kiosk_id: Some(kiosk),
        kiosk_name: name,
        canteen_id: Some(canteen),
        meals,
        staff_meals,
        first_seq,
        last_seq,
        status: status.into(),
        status_zh: zh.into(),
        problems,
    })
}

/// A kiosk's chain line over all time: the statement's SQL chain check, with every meal it
/// settled (accepted, not voided) and how many of those staff confirmed.
pub fn kiosk_line(conn: &Conn<'_>, kiosk: i64) -> Result<ChainLine> {
    let (meals, staff): (i64, i64) = conn.query_row(
        "SELECT count(*),
            COALESCE(CAST(SUM(CASE WHEN method = 'staff' THEN 1 ELSE 0 END) AS BIGINT), 0)
         FROM settlements
         WHERE kiosk_id = ?1 AND outcome = 'accepted' AND voided_at IS NULL",
        [kiosk],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    line(conn, kiosk, meals, staff)
}

/// The statement's chain section: one line per kiosk with counted meals in the period and
/// scope, then one line for the meals entered on the server itself (if any).
pub fn statement_lines(conn: &Conn<'_>, period: &str, f: &Filter) -> Result<Vec<ChainLine>> {
    let counts: Vec<(Option<i64>, i64, i64)> = conn.query_map(
        "SELECT kiosk_id, count(*),
            CAST(SUM(CASE WHEN method = 'staff' THEN 1 ELSE 0 END) AS BIGINT)
         FROM settlements
         WHERE period = ?1 AND outcome = 'accepted' AND voided_at IS NULL
           AND (CAST(?2 AS BIGINT) IS NULL OR canteen_id = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR canteen_id IN (SELECT id FROM canteens WHERE town = ?3))
         GROUP BY kiosk_id ORDER BY kiosk_id IS NULL, kiosk_id",
        params![period, f.canteen.map(|c| c.0), f.town],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut out = Vec::with_capacity(counts.len());
    for (kiosk, meals, staff) in counts {
        out.push(match kiosk {
            Some(k) => line(conn, k, meals, staff)?,
            None => ChainLine {
                kiosk_id: None,
                kiosk_name: "服务器录入 / entered on the server".into(),
                canteen_id: None,
                meals,
                staff_meals: staff,
                first_seq: None,
                last_seq: None,
                status: UNSIGNED.into(),
                status_zh: status_zh(UNSIGNED).into(),
                problems: Vec::new(),
            },
        });
    }
    Ok(out)
}

/// A settlement row as the re-verification compares it with its record.
struct Row {
    resident_id: i64,
    canteen_id: i64,
    served_at: String,
    method: String,
    proxy_carer_id: Option<i64>,
}

/// The fields of a stored payload the settlement row must still match.
struct Signed {
    id: String,
    resident_id: i64,
    canteen_id: i64,
    served_at: DateTime<Utc>,
    method: String,
    proxy_carer_id: Option<i64>,
}

fn parse_payload(payload: &str) -> Option<Signed> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let a = v.as_array()?;
    if a.len() < 12 || a[0] != "zhucan-settlement-v1" {
        return None;
    }
    // after the v1 fields: (name, value) pairs of the optional fields that were set
    let mut proxy_carer_id = None;
    for pair in a[12..].chunks(2) {
        match pair {
            [name, v] if name == "proxy_carer_id" => proxy_carer_id = Some(v.as_i64()?),
            _ => return None,
        }
    }
    Some(Signed {
        id: a[3].as_str()?.to_owned(),
        resident_id: a[4].as_i64()?,
        canteen_id: a[5].as_i64()?,
        served_at: DateTime::parse_from_rfc3339(a[6].as_str()?)
            .ok()?
            .with_timezone(&Utc),
        method: a[7].as_str()?.to_owned(),
        proxy_carer_id,
    })
}

fn tampered(seq: u64, zh: &str, en: &str) -> ChainProblem {
    problem(
        "tampered",
        seq,
        seq,
        format!("第{seq}条：{zh} / record {seq}: {en}"),
    )
}

/// The full re-verification of one kiosk's chain: the SQL check's problems, then for every
/// stored link: sha256 of the stored payload equals `record_hash`, the stored signature verifies
/// with the key for its seq, the payload's seq, prev_hash and settlement id are the link's, and
/// the settlement row it created still has the payload's resident, canteen, time and method.
/// Finally every settlement row attributed to the kiosk must come from one of its records.
/// New problems have kind `tampered` (a stored record or row was changed) or `unsigned` (a row
/// with no signed record).
pub fn reverify(conn: &Conn<'_>, kiosk: i64) -> Result<ChainLine> {
    let mut out = kiosk_line(conn, kiosk)?;
    let keys = keys(conn, kiosk)?;
    let mut found = Vec::new();
    let mut settled_ids: HashSet<String> = HashSet::new();
    conn.for_each(
        "SELECT l.seq, l.record_hash, l.prev_hash, l.settlement_id, l.settled, l.signature,
            l.payload, s.resident_id, s.canteen_id, s.served_at, s.method, s.kiosk_id,
            s.proxy_carer_id
         FROM chain_links l LEFT JOIN settlements s ON s.id = l.settlement_id
         WHERE l.kiosk_id = ?1 ORDER BY l.seq",
        [kiosk],
        |r| {
            let seq = r.get::<_, i64>(0)? as u64;
            let record_hash: Vec<u8> = r.get(1)?;
            let prev_hash: Vec<u8> = r.get(2)?;
            let settlement_id: String = r.get(3)?;
            let settled: bool = r.get(4)?;
            let signature: String = r.get(5)?;
            let payload: String = r.get(6)?;
            let row = match r.get::<_, Option<i64>>(7)? {
                Some(resident_id) => Some((
                    Row {
                        resident_id,
                        canteen_id: r.get(8)?,
                        served_at: r.get(9)?,
                        method: r.get(10)?,
                        proxy_carer_id: r.get(12)?,
                    },
                    r.get::<_, Option<i64>>(11)?,
                )),
                None => None,
            };
            if Sha256::digest(payload.as_bytes()).as_slice() != record_hash.as_slice() {
                found.push(tampered(
                    seq,
                    "存储的记录内容与其哈希不符",
                    "the stored payload does not hash to its record_hash",
                ));
            }
            let sig_ok = key_for(&keys, seq)
                .is_some_and(|k| signing::verify_bytes(payload.as_bytes(), &signature, k));
            if !sig_ok {
                found.push(tampered(
                    seq,
                    "存储的签名无法用终端公钥验证",
                    "the stored signature does not verify with the kiosk's key",
                ));
            }
            let signed = parse_payload(&payload);
            let header_ok = serde_json::from_str::<serde_json::Value>(&payload)
                .ok()
                .and_then(|v| {
                    let a = v.as_array()?.clone();
                    Some(
                        a.get(1)?.as_u64()? == seq
                            && a.get(2)?.as_str()? == hex::encode(&prev_hash)
                            && a.get(3)?.as_str()? == settlement_id,
                    )
                })
                .unwrap_or(false);
            if !header_ok {
                found.push(tampered(
                    seq,
                    "链接的序号、前序哈希或结算编号与签名记录不符",
                    "the link's seq, prev_hash or settlement id differ from the signed record",
                ));
            }
            if settled {
                settled_ids.insert(settlement_id.clone());
                match (row, signed) {
                    (None, _) => found.push(tampered(
                        seq,
                        "签名记录对应的结算记录已不存在",
                        "its settlement row is gone",
                    )),
                    (Some((row, row_kiosk)), Some(s)) => {
                        let served =
                            DateTime::parse_from_rfc3339(&row.served_at).map(|d| d.with_timezone(&Utc));
                        let same_time = served
                            .is_ok_and(|d| d.timestamp_millis() == s.served_at.timestamp_millis());
                        if s.id != settlement_id
                            || row.resident_id != s.resident_id
                            || row.canteen_id != s.canteen_id
                            || !same_time
                            || row.method != s.method
                            || row.proxy_carer_id != s.proxy_carer_id
                            || row_kiosk != Some(kiosk)
                        {
                            found.push(tampered(
                                seq,
                                "结算记录（老人、食堂、时间或方式）与签名记录不符",
                                "the settlement row (resident, canteen, time or method) differs from the signed record",
                            ));
                        }
                    }
                    (Some(_), None) => {} // unreadable payload: reported above
                }
            }
            Ok(())
        },
    )?;
    let mut unsigned = 0u64;
    conn.for_each(
        "SELECT id FROM settlements WHERE kiosk_id = ?1",
        [kiosk],
        |r| {
            let id: String = r.get(0)?;
            if !settled_ids.contains(&id) {
                unsigned += 1;
                if unsigned <= 20 {
                    found.push(problem(
                        "unsigned",
                        0,
                        0,
                        format!(
                            "结算记录 {id} 没有对应的签名记录 / settlement {id} has no signed record"
                        ),
                    ));
                }
            }
            Ok(())
        },
    )?;
    if unsigned > 20 {
        found.push(problem(
            "unsigned",
            0,
            0,
            format!(
                "另有 {} 条结算记录没有签名记录 / {} more settlements have no signed record",
                unsigned - 20,
                unsigned - 20
            ),
        ));
    }
    // The server's decision and any void, against the books MAC (the signature covers only what
    // the kiosk sent).
    let altered = books::altered(conn, books::Kind::Settlement, "kiosk_id = ?1", [kiosk])?;
    for id in altered.ids {
        found.push(problem(
            "altered",
            0,
            0,
            format!(
                "结算记录 {id} 的金额、结果或作废与服务器当时的记录不符（数据库被改动） / \
                 settlement {id}: its amounts, outcome or void differ from what the server wrote"
            ),
        ));
    }
    if !found.is_empty() {
        out.problems.extend(found);
        out.status = BROKEN.into();
        out.status_zh = status_zh(BROKEN).into();
    }
    Ok(out)
}

/// Counts of stored links and events per kiosk (tests, the bench).
pub fn counts(conn: &Conn<'_>) -> Result<BTreeMap<i64, (i64, i64)>> {
    let mut out: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    conn.for_each(
        "SELECT kiosk_id, count(*) FROM chain_links GROUP BY kiosk_id",
        (),
        |r| {
            out.entry(r.get(0)?).or_default().0 = r.get(1)?;
            Ok(())
        },
    )?;
    conn.for_each(
        "SELECT kiosk_id, count(*) FROM integrity_events GROUP BY kiosk_id",
        (),
        |r| {
            out.entry(r.get(0)?).or_default().1 = r.get(1)?;
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::db::Db;

    fn hash_of(seq: u64, salt: u8) -> [u8; 32] {
        let mut h: [u8; 32] = Sha256::digest(seq.to_be_bytes()).into();
        h[0] ^= salt;
        h
    }

    /// A database with one kiosk whose chain holds `present` seqs; those in `bad_prev` link to a
    /// wrong predecessor hash.
    fn chain(present: &[u64], bad_prev: &[u64]) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("c.sqlite")).expect("db");
        db.write_blocking(|tx| {
            tx.execute_batch(
                "INSERT INTO towns (code, name) VALUES ('t', 'T');
                 INSERT INTO canteens (id, name, kind, town, operator, operator_kind)
                     VALUES (1, 'C', 'station', 't', 'o', 'village_run');
                 INSERT INTO kiosks (id, canteen_id, name, token_hash, created_at)
                     VALUES (1, 1, 'k', 'h', 'now');",
            )?;
            for &seq in present {
                let prev = if seq == 1 {
                    GENESIS_BYTES
                } else {
                    hash_of(seq - 1, 0)
                };
                let prev = if bad_prev.contains(&seq) {
                    hash_of(seq - 1, 0xff)
                } else {
                    prev
                };
                insert_link(
                    tx,
                    &Link {
                        kiosk_id: 1,
                        seq,
                        record_hash: hash_of(seq, 0),
                        prev_hash: prev,
                        settlement_id: "x",
                        settled: false,
                        signature: "",
                        payload: "",
                        received_at: "now",
                    },
                )?;
            }
            Ok(())
        })
        .expect("chain");
        (dir, db)
    }

    /// What the check must find, computed the plain way.
    fn expected(present: &[u64], bad_prev: &[u64]) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let mut last = 0;
        for &seq in present {
            if seq > last + 1 {
                out.push(("gap".to_owned(), last + 1, seq - 1));
            }
            if bad_prev.contains(&seq) && (seq == 1 || last == seq - 1) {
                out.push(("fork".to_owned(), seq, seq));
            }
            last = seq;
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn the_sql_check_finds_every_gap_and_broken_link(
            keep in prop::collection::vec(any::<bool>(), 1..40),
            bad in prop::collection::vec(any::<bool>(), 40),
        ) {
            let present: Vec<u64> =
                (1..=keep.len() as u64).filter(|s| keep[*s as usize - 1]).collect();
            let bad_prev: Vec<u64> =
                present.iter().copied().filter(|s| bad[*s as usize - 1] && s % 3 == 0).collect();
            let (_dir, db) = chain(&present, &bad_prev);
            let found: Vec<(String, u64, u64)> = db
                .read_sync(|c| problems(c, 1))
                .expect("problems")
                .into_iter()
                .map(|p| (p.kind, p.seq_from, p.seq_to))
                .collect();
            prop_assert_eq!(found, expected(&present, &bad_prev));
        }
    }

    #[test]
    fn a_first_record_not_after_genesis_is_a_fork() {
        let (_dir, db) = chain(&[1, 2], &[1]);
        let found = db.read_sync(|c| problems(c, 1)).expect("problems");
        assert_eq!(
            found
                .iter()
                .map(|p| (p.kind.as_str(), p.seq_from))
                .collect::<Vec<_>>(),
            vec![("fork", 1)]
        );
    }
}
