//! Carers (代取人) and the residents each may collect meals for (`carer_links`, migration 0013).
//! A carer identifies at the counter with their own card: its code is unique among carers and is
//! never a resident's card code, so a card names exactly one person.

use zhucan_domain::ResidentId;
use zhucan_domain::api::CarerDto;

use super::sql::{Conn, OptionalExtension, params};
use super::{Error, Result, Tx};

/// Inserts a carer (name and code already trimmed and checked for length); returns its id.
pub fn insert(
    tx: &Tx<'_>,
    name: &str,
    card_code: &str,
    note: Option<&str>,
    at: &str,
) -> Result<i64> {
    let taken: Option<&str> = tx
        .query_row(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM residents WHERE card_code = ?1)
                        THEN 'resident'
                        WHEN EXISTS (SELECT 1 FROM carers WHERE card_code = ?1)
                        THEN 'carer' END",
            [card_code],
            |r| r.get::<_, Option<String>>(0),
        )?
        .map(|who| {
            if who == "resident" {
                "a resident's card"
            } else {
                "another carer's card"
            }
        });
    if let Some(whose) = taken {
        return Err(Error::invalid("card_code", format!("already {whose}")));
    }
    tx.query_row(
        "INSERT INTO carers (name, card_code, note, created_at) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![name, card_code, note, at],
        |r| r.get(0),
    )
}

/// Links carer `carer` to resident `resident`. Both must exist; linking twice is a conflict.
pub fn link(tx: &Tx<'_>, carer: i64, resident: ResidentId, at: &str, by: &str) -> Result<()> {
    if !exists(tx, carer)? {
        return Err(Error::invalid("carer_id", format!("no carer {carer}")));
    }
    let resident_exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM residents WHERE id = ?1)",
        [resident.0],
        |r| r.get(0),
    )?;
    if !resident_exists {
        return Err(Error::NotFound);
    }
    let n = tx.execute(
        "INSERT INTO carer_links (carer_id, resident_id, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![carer, resident.0, at, by],
    )?;
    if n == 0 {
        return Err(Error::Conflict(format!(
            "carer {carer} is already linked to resident {}",
            resident.0
        )));
    }
    Ok(())
}

/// Removes the link; `NotFound` when there is none.
pub fn unlink(tx: &Tx<'_>, carer: i64, resident: ResidentId) -> Result<()> {
    let n = tx.execute(
        "DELETE FROM carer_links WHERE carer_id = ?1 AND resident_id = ?2",
        [carer, resident.0],
    )?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

pub fn exists(conn: &Conn<'_>, carer: i64) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM carers WHERE id = ?1)",
        [carer],
        |r| r.get(0),
    )
}

/// Whether carer `carer` may collect meals for `resident` now.
pub fn is_linked(conn: &Conn<'_>, carer: i64, resident: ResidentId) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM carer_links WHERE carer_id = ?1 AND resident_id = ?2)",
        [carer, resident.0],
        |r| r.get(0),
    )
}

/// The carer's name, if there is such a carer.
pub fn name(conn: &Conn<'_>, carer: i64) -> Result<Option<String>> {
    conn.query_row("SELECT name FROM carers WHERE id = ?1", [carer], |r| {
        r.get(0)
    })
    .optional()
}

/// One carer with the residents linked to them.
pub fn get(conn: &Conn<'_>, carer: i64) -> Result<CarerDto> {
    all(conn)?
        .into_iter()
        .find(|c| c.id == carer)
        .ok_or(Error::NotFound)
}

/// Every carer, by id, each with the residents linked to them (by id).
pub fn all(conn: &Conn<'_>) -> Result<Vec<CarerDto>> {
    let mut out: Vec<CarerDto> = conn.query_map(
        "SELECT id, name, card_code, note, created_at FROM carers ORDER BY id",
        (),
        |r| {
            Ok(CarerDto {
                id: r.get(0)?,
                name: r.get(1)?,
                card_code: r.get(2)?,
                note: r.get(3)?,
                created_at: r.get(4)?,
                residents: Vec::new(),
            })
        },
    )?;
    conn.for_each(
        "SELECT carer_id, resident_id FROM carer_links ORDER BY carer_id, resident_id",
        (),
        |r| {
            let (carer, resident): (i64, i64) = (r.get(0)?, r.get(1)?);
            if let Ok(i) = out.binary_search_by_key(&carer, |c| c.id) {
                out[i].residents.push(ResidentId(resident));
            }
            Ok(())
        },
    )?;
    Ok(out)
}
