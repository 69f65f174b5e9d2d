//! `GET /audit` (administrators): the audit log, newest first, a page at a time, with the verdict
//! of walking the whole hash chain.

use axum::extract::State;
use serde::Deserialize;
use zhucan_domain::api::{AuditEntry, AuditPage};

use crate::db;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};

/// The most entries one page may hold.
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

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
pub async fn load(st: &AppState, before: Option<i64>, limit: i64) -> db::Result<AuditPage> {
    st.db
        .read(move |c| {
            db::snapshot(c, |c| {
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
        })
        .await
}

pub async fn list(
    State(st): State<AppState>,
    _: Admin,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<AppJson<AuditPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::bad(
            "invalid",
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(Error::bad(
            "invalid",
            "before",
            "must be a seq of 1 or more",
        ));
    }
    Ok(AppJson(load(&st, q.before, limit).await?))
}
