//! Subsidy policies, stored as their JSON document, versioned. Runs on both databases
//! (`db::sql`).

use zhucan_domain::Policy;
use zhucan_domain::api::PolicySummary;

use super::changes::{self, Kind, Subject};
use super::sql::{Conn, params};
use super::{Error, Result, Tx};

pub fn insert(tx: &Tx<'_>, p: &Policy, json: &str, now: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO policies (id, version, name, effective_from, effective_to, json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            p.id,
            p.version,
            p.name,
            p.effective_from.to_string(),
            p.effective_to.map(|d| d.to_string()),
            json,
            now
        ],
    )
    .map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "policy '{}' version {} already exists",
            p.id, p.version
        )),
        other => other,
    })?;
    changes::record(
        tx,
        Kind::Policy,
        Subject::Key(&format!("{}:{}", p.id, p.version)),
        now,
    )?;
    Ok(())
}

/// Every stored policy, parsed.
pub fn all(conn: &Conn<'_>) -> Result<Vec<Policy>> {
    conn.query_map("SELECT json FROM policies ORDER BY id, version", (), |r| {
        Policy::parse(&r.get::<_, String>(0)?).map_err(Error::other)
    })
}

pub fn summaries(conn: &Conn<'_>) -> Result<Vec<PolicySummary>> {
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
