//! Towns and streets (镇/街道), and the districts above them. Runs on both databases (`db::sql`).

use std::collections::HashMap;

use zhucan_domain::api::{DistrictDto, TownDto};

use super::changes::{self, Kind, Subject};
use super::sql::{Conn, OptionalExtension, params};
use super::{Error, Result};

pub fn insert(tx: &Conn<'_>, town: &TownDto) -> Result<()> {
    if let Some(d) = &town.district
        && !district_exists(tx, d)?
    {
        return Err(Error::invalid("district", format!("no district '{d}'")));
    }
    tx.execute(
        "INSERT INTO towns (code, name, district) VALUES (?1, ?2, ?3)",
        params![town.code, town.name, town.district],
    )
    .map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!("town '{}' already exists", town.code)),
        other => other,
    })?;
    Ok(())
}

pub fn list(conn: &Conn<'_>) -> Result<Vec<TownDto>> {
    conn.query_map(
        "SELECT code, name, district FROM towns ORDER BY code",
        (),
        |r| {
            Ok(TownDto {
                code: r.get(0)?,
                name: r.get(1)?,
                district: r.get(2)?,
            })
        },
    )
}

/// Each town's district, where the geography names one.
pub fn districts_of_towns(conn: &Conn<'_>) -> Result<HashMap<String, String>> {
    let rows = conn.query_map(
        "SELECT code, district FROM towns WHERE district IS NOT NULL",
        (),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.into_iter().collect())
}

pub fn insert_district(tx: &Conn<'_>, d: &DistrictDto) -> Result<()> {
    tx.execute(
        "INSERT INTO districts (code, name) VALUES (?1, ?2)",
        params![d.code, d.name],
    )
    .map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!("district '{}' already exists", d.code)),
        other => other,
    })?;
    Ok(())
}

pub fn list_districts(conn: &Conn<'_>) -> Result<Vec<DistrictDto>> {
    conn.query_map("SELECT code, name FROM districts ORDER BY code", (), |r| {
        Ok(DistrictDto {
            code: r.get(0)?,
            name: r.get(1)?,
        })
    })
}

fn district_exists(conn: &Conn<'_>, code: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM districts WHERE code = ?1",
            [code],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn exists(conn: &Conn<'_>, code: &str) -> Result<bool> {
    let n: i64 = conn.query_row("SELECT count(*) FROM towns WHERE code = ?1", [code], |r| {
        r.get(0)
    })?;
    Ok(n > 0)
}

/// Puts town `code` in `district` (or in none): the decisions of its residents and canteens
/// change with it (policies with `own_district`), so each is recorded as a change for the
/// kiosks. `Ok(false)`: no such town.
pub fn set_district(tx: &Conn<'_>, code: &str, district: Option<&str>, at: &str) -> Result<bool> {
    if let Some(d) = district
        && !district_exists(tx, d)?
    {
        return Err(Error::invalid("district", format!("no district '{d}'")));
    }
    let n = tx.execute(
        "UPDATE towns SET district = ?2 WHERE code = ?1",
        params![code, district],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let residents: Vec<i64> = tx.query_map(
        "SELECT id FROM residents WHERE registered_town = ?1 OR residence_town = ?1",
        [code],
        |r| r.get(0),
    )?;
    for id in residents {
        changes::record(tx, Kind::Resident, Subject::Id(id), at)?;
    }
    let canteens: Vec<i64> =
        tx.query_map("SELECT id FROM canteens WHERE town = ?1", [code], |r| {
            r.get(0)
        })?;
    for id in canteens {
        changes::record(tx, Kind::Canteen, Subject::Id(id), at)?;
    }
    Ok(true)
}
