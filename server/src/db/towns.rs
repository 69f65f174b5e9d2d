//! Towns and streets (镇/街道).

use rusqlite::{Connection, params};
use zhucan_domain::api::TownDto;

use super::{Error, Result, Tx};

pub fn insert(tx: &Tx<'_>, town: &TownDto) -> Result<()> {
    tx.prepare_cached("INSERT INTO towns (code, name) VALUES (?1, ?2)")?
        .execute(params![town.code, town.name])
        .map_err(|e| match Error::from(e) {
            Error::Conflict(_) => Error::Conflict(format!("town '{}' already exists", town.code)),
            other => other,
        })?;
    Ok(())
}

pub fn list(conn: &Connection) -> Result<Vec<TownDto>> {
    let mut st = conn.prepare_cached("SELECT code, name FROM towns ORDER BY code")?;
    let rows = st.query_map([], |r| {
        Ok(TownDto {
            code: r.get(0)?,
            name: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn exists(conn: &Connection, code: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM towns WHERE code = ?1")?
        .query_row([code], |r| r.get(0))?;
    Ok(n > 0)
}
