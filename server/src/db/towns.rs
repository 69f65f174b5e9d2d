//! Towns and streets (镇/街道).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use zhucan_domain::api::{DistrictDto, TownDto};

use super::changes::{self, Kind, Subject};
use super::{Error, Result, Tx};

pub fn insert(tx: &Tx<'_>, town: &TownDto) -> Result<()> {
    if let Some(d) = &town.district
        && !district_exists(tx, d)?
    {
        return Err(Error::invalid("district", format!("no district '{d}'")));
    }
    tx.prepare_cached("INSERT INTO towns (code, name, district) VALUES (?1, ?2, ?3)")?
        .execute(params![town.code, town.name, town.district])
        .map_err(|e| match Error::from(e) {
            Error::Conflict(_) => Error::Conflict(format!("town '{}' already exists", town.code)),
            other => other,
        })?;
    Ok(())
}

pub fn list(conn: &Connection) -> Result<Vec<TownDto>> {
    let mut st = conn.prepare_cached("SELECT code, name, district FROM towns ORDER BY code")?;
    let rows = st.query_map([], |r| {
        Ok(TownDto {
            code: r.get(0)?,
            name: r.get(1)?,
            district: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Each town's district, where the geography names one.
pub fn districts_of_towns(conn: &Connection) -> Result<HashMap<String, String>> {
    let mut st =
        conn.prepare_cached("SELECT code, district FROM towns WHERE district IS NOT NULL")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_district(tx: &Tx<'_>, d: &DistrictDto) -> Result<()> {
    tx.prepare_cached("INSERT INTO districts (code, name) VALUES (?1, ?2)")?
        .execute(params![d.code, d.name])
        .map_err(|e| match Error::from(e) {
            Error::Conflict(_) => Error::Conflict(format!("district '{}' already exists", d.code)),
            other => other,
        })?;
    Ok(())
}

pub fn list_districts(conn: &Connection) -> Result<Vec<DistrictDto>> {
    let mut st = conn.prepare_cached("SELECT code, name FROM districts ORDER BY code")?;
    let rows = st.query_map([], |r| {
        Ok(DistrictDto {
            code: r.get(0)?,
            name: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn district_exists(conn: &Connection, code: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM districts WHERE code = ?1")?
        .query_row([code], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn exists(conn: &Connection, code: &str) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM towns WHERE code = ?1")?
        .query_row([code], |r| r.get(0))?;
    Ok(n > 0)
}

/// Puts town `code` in `district` (or in none): the decisions of its residents and canteens
/// change with it (policies with `own_district`), so each is recorded as a change for the
/// kiosks. `Ok(false)`: no such town.
pub fn set_district(tx: &Tx<'_>, code: &str, district: Option<&str>, at: &str) -> Result<bool> {
    if let Some(d) = district
        && !district_exists(tx, d)?
    {
        return Err(Error::invalid("district", format!("no district '{d}'")));
    }
    let n = tx
        .prepare_cached("UPDATE towns SET district = ?2 WHERE code = ?1")?
        .execute(params![code, district])?;
    if n == 0 {
        return Ok(false);
    }
    let residents: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM residents WHERE registered_town = ?1 OR residence_town = ?1",
        )?
        .query_map([code], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in residents {
        changes::record(tx, Kind::Resident, Subject::Id(id), at)?;
    }
    let canteens: Vec<i64> = tx
        .prepare_cached("SELECT id FROM canteens WHERE town = ?1")?
        .query_map([code], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in canteens {
        changes::record(tx, Kind::Canteen, Subject::Id(id), at)?;
    }
    Ok(true)
}
