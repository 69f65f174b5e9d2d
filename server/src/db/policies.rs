//! Subsidy policies, stored as their JSON document, versioned.

use rusqlite::{Connection, params};
use zhucan_domain::Policy;
use zhucan_domain::api::PolicySummary;

use super::changes::{self, Kind, Subject};
use super::sql::Conn;
use super::{Error, Result, Tx};

pub fn insert(tx: &Tx<'_>, p: &Policy, json: &str, now: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO policies (id, version, name, effective_from, effective_to, json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        p.id,
        p.version,
        p.name,
        p.effective_from.to_string(),
        p.effective_to.map(|d| d.to_string()),
        json,
        now
    ])
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(format!(
            "policy '{}' version {} already exists",
            p.id, p.version
        )),
        other => other,
    })?;
    changes::record(
        &Conn::Sqlite(tx),
        Kind::Policy,
        Subject::Key(&format!("{}:{}", p.id, p.version)),
        now,
    )?;
    Ok(())
}

/// Every stored policy, parsed.
pub fn all(conn: &Connection) -> Result<Vec<Policy>> {
    let mut st = conn.prepare_cached("SELECT json FROM policies ORDER BY id, version")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|j| Policy::parse(&j?).map_err(Error::other))
        .collect()
}

pub fn summaries(conn: &Connection) -> Result<Vec<PolicySummary>> {
    all(conn)?
        .into_iter()
        .map(|p| {
            Ok(PolicySummary {
                id: p.id.clone(),
                version: p.version,
                name: p.name.clone(),
                effective_from: p.effective_from,
                effective_to: p.effective_to,
                document: serde_json::to_value(&p).map_err(Error::other)?,
            })
        })
        .collect()
}
