//! Reading the audit log: a page of entries, newest first, with the verdict of walking the whole
//! hash chain, in one snapshot. The JSON API and the dashboard's 审计日志 page both read it here.

use zhucan_domain::api::{AuditEntry, AuditPage};

use crate::db::{self, Db};

/// A stored row as the wire shows it (a detail that is not JSON any more is shown as text).
pub fn to_entry(r: db::audit::Row) -> AuditEntry {
    let detail = serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail));
    AuditEntry {
        seq: r.seq,
        at: r.at,
        actor: r.actor,
        role: r.role,
        action: r.action,
        target: r.target,
        detail,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

/// Reads a page and verifies the chain in one snapshot.
#[tracing::instrument(skip(db))]
pub async fn load(db: &Db, before: Option<i64>, limit: i64) -> db::Result<AuditPage> {
    db.read(move |c| {
        let verdict = db::audit::verify(c)?;
        let rows = db::audit::page(c, before, limit)?;
        let next_before = match rows.last() {
            Some(last) if rows.len() as i64 == limit && last.seq > 1 => Some(last.seq),
            _ => None,
        };
        Ok(AuditPage {
            verified: verdict.verified(),
            broken_at: verdict.broken_at,
            total: verdict.entries,
            entries: rows.into_iter().map(to_entry).collect(),
            next_before,
        })
    })
    .await
}
