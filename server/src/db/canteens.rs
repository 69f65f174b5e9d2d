//! Canteens and their meal slots. Runs on both databases (`db::sql`).

use std::collections::HashMap;

use zhucan_domain::api::{CanteenDto, NewCanteen, SlotDto};
use zhucan_domain::canteen::{CanteenKind, OperatorKind};
use zhucan_domain::{
    Canteen, CanteenId, DistrictCode, Fen, PriceRange, Slot, SlotWindow, TownCode,
};

use super::changes::{self, Kind, Subject};
use super::sql::{self, Conn, params};
use super::{Error, Result, Tx};

pub fn kind_str(k: CanteenKind) -> &'static str {
    match k {
        CanteenKind::DemonstrationCentre => "demonstration_centre",
        CanteenKind::CareCentre => "care_centre",
        CanteenKind::Station => "station",
    }
}

fn parse_kind(s: &str) -> CanteenKind {
    match s {
        "demonstration_centre" => CanteenKind::DemonstrationCentre,
        "care_centre" => CanteenKind::CareCentre,
        _ => CanteenKind::Station,
    }
}

fn op_str(k: OperatorKind) -> &'static str {
    match k {
        OperatorKind::VillageRun => "village_run",
        OperatorKind::Contracted => "contracted",
    }
}

/// Inserts a canteen (already validated) and returns its id. `at` stamps the change record.
pub fn insert(tx: &Tx<'_>, c: &NewCanteen, at: &str) -> Result<CanteenId> {
    if !super::towns::exists(tx, &c.town)? {
        return Err(Error::invalid("town", format!("no town '{}'", c.town)));
    }
    let id: i64 = tx.query_row(
        "INSERT INTO canteens (name, kind, town, operator, operator_kind, delivery_surcharge)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         RETURNING id",
        params![
            c.name,
            kind_str(c.kind),
            c.town,
            c.operator,
            op_str(c.operator_kind),
            c.delivery_surcharge.map(|f| f.0)
        ],
        |r| r.get(0),
    )?;
    for s in &c.slots {
        tx.execute(
            "INSERT INTO canteen_slots (canteen_id, slot, start_time, end_time, price, price_min,
                price_max)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                s.slot.as_str(),
                s.start.format("%H:%M:%S").to_string(),
                s.end.format("%H:%M:%S").to_string(),
                s.price.0,
                s.price_min.map(|f| f.0),
                s.price_max.map(|f| f.0),
            ],
        )?;
    }
    changes::record(tx, Kind::Canteen, Subject::Id(id), at)?;
    Ok(CanteenId(id))
}

const SLOT_COLS: &str = "canteen_id, slot, start_time, end_time, price, price_min, price_max";

fn slot_row(r: &sql::Row<'_>) -> Result<(i64, SlotWindow)> {
    let slot: String = r.get(1)?;
    let start: String = r.get(2)?;
    let end: String = r.get(3)?;
    let (min, max): (Option<i64>, Option<i64>) = (r.get(5)?, r.get(6)?);
    let w = SlotWindow {
        slot: Slot::parse(&slot).ok_or_else(|| Error::other("bad slot in database"))?,
        start: start.parse().map_err(Error::other)?,
        end: end.parse().map_err(Error::other)?,
        price: Fen(r.get(4)?),
        price_range: min.zip(max).map(|(min, max)| PriceRange {
            min: Fen(min),
            max: Fen(max),
        }),
    };
    Ok((r.get(0)?, w))
}

fn load_slots(conn: &Conn<'_>) -> Result<HashMap<i64, Vec<SlotWindow>>> {
    let mut out: HashMap<i64, Vec<SlotWindow>> = HashMap::new();
    conn.for_each(
        &format!("SELECT {SLOT_COLS} FROM canteen_slots ORDER BY canteen_id, start_time"),
        (),
        |r| {
            let (id, w) = slot_row(r)?;
            out.entry(id).or_default().push(w);
            Ok(())
        },
    )?;
    Ok(out)
}

fn row_to_canteen(r: &sql::Row<'_>, slots: Vec<SlotWindow>) -> Result<Canteen> {
    let kind: String = r.get(2)?;
    let op: String = r.get(5)?;
    Ok(Canteen {
        id: CanteenId(r.get(0)?),
        name: r.get(1)?,
        kind: parse_kind(&kind),
        town: TownCode(r.get(3)?),
        operator: r.get(4)?,
        operator_kind: if op == "village_run" {
            OperatorKind::VillageRun
        } else {
            OperatorKind::Contracted
        },
        slots,
        delivery_surcharge: r.get::<_, Option<i64>>(6)?.map(Fen),
        district: r.get::<_, Option<String>>(7)?.map(DistrictCode),
    })
}

const COLS: &str = "c.id, c.name, c.kind, c.town, c.operator, c.operator_kind, \
    c.delivery_surcharge, t.district";
const FROM: &str = "canteens c LEFT JOIN towns t ON t.code = c.town";

/// All canteens, keyed by id.
pub fn all(conn: &Conn<'_>) -> Result<Vec<Canteen>> {
    let mut slots = load_slots(conn)?;
    conn.query_map(
        &format!("SELECT {COLS} FROM {FROM} ORDER BY c.id"),
        (),
        |r| {
            let id: i64 = r.get(0)?;
            row_to_canteen(r, slots.remove(&id).unwrap_or_default())
        },
    )
}

pub fn get(conn: &Conn<'_>, id: CanteenId) -> Result<Canteen> {
    let slots = conn.query_map(
        &format!("SELECT {SLOT_COLS} FROM canteen_slots WHERE canteen_id = ?1 ORDER BY start_time"),
        [id.0],
        |r| Ok(slot_row(r)?.1),
    )?;
    conn.query_row(
        &format!("SELECT {COLS} FROM {FROM} WHERE c.id = ?1"),
        [id.0],
        |r| row_to_canteen(r, slots),
    )
}

pub fn to_dto(c: &Canteen) -> CanteenDto {
    CanteenDto {
        id: c.id,
        name: c.name.clone(),
        kind: c.kind,
        kind_zh: c.kind.label_zh().to_owned(),
        town: c.town.0.clone(),
        operator: c.operator.clone(),
        operator_kind: c.operator_kind,
        slots: c.slots.iter().map(SlotDto::from_window).collect(),
        delivery_surcharge: c.delivery_surcharge,
        district: c.district.as_ref().map(|d| d.0.clone()),
    }
}
