//! Kiosk sync, the server's side: builds the `SyncResponse` a kiosk pulls with its cursor.
//!
//! The cursor is the `seq` of the change log (`db::changes`). `since` = 0 (or a cursor newer than
//! the log, e.g. after a restore) gives a full snapshot; otherwise each list holds only what
//! changed after `since`. Everything is read in one read transaction, so the lists and the
//! returned cursor describe the same instant; a change committed later has a larger `seq` and
//! comes next time. Applying a list twice is harmless (residents and templates replace, purges
//! and voids delete by id, meals are keyed by id).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tracing::instrument;
use zhucan_domain::api::{self, KioskResident, SyncResponse};

use crate::db::{self, Conn, changes::Kind, kiosks::Kiosk};
use crate::period::month_of;
use crate::templates::{self, Error};

/// Builds the answer to `GET /api/v1/kiosk/sync?since=` for `kiosk`.
#[instrument(skip_all, fields(kiosk = kiosk.id, since), err)]
pub fn build(
    conn: &Conn,
    kiosk: Kiosk,
    since: i64,
    master_key: &[u8],
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<SyncResponse, Error> {
    let template_key = crate::crypto::template_key(master_key);
    let card_key = crate::crypto::kiosk_card_key(master_key, kiosk.id);
    // `conn` is one snapshot (`Db::read`): every list below is of the same moment
    let c = conn;
    {
        let cursor = db::changes::latest(c)?;
        let full = since <= 0 || since > cursor;
        let after = (!full).then_some(since);
        let period = month_of(now.with_timezone(&tz).date_naive());
        let districts = db::towns::districts_of_towns(c)?;
        let residents = db::residents::for_sync(c, after)?
            .into_iter()
            .map(|r| KioskResident {
                diner: crate::residents::diner(&r, &districts),
                card: (!r.card_code.is_empty()).then(|| api::card_index(&card_key, &r.card_code)),
                name: r.name,
            })
            .collect();
        let templates = db::templates::for_sync(c, kiosk.canteen_id, after)?
            .iter()
            .map(|s| templates::open_set(&template_key, s))
            .collect::<Result<Vec<_>, _>>()?;
        let purged = match after {
            Some(s) => db::templates::purged_for_sync(c, kiosk.canteen_id, s)?,
            None => Vec::new(),
        };
        let meals = db::settlements::history_for_sync(c, &period, after)?;
        let voided = match after {
            Some(s) => db::changes::keys_since(c, Kind::Void, s)?
                .iter()
                .map(|k| k.parse().map_err(db::Error::other))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let carers = db::carers::all(c)?
            .into_iter()
            .filter(|k| !k.residents.is_empty())
            .map(|k| api::KioskCarer {
                id: k.id,
                card: api::card_index(&card_key, &k.card_code),
                name: k.name,
                residents: k.residents,
            })
            .collect();
        Ok(SyncResponse {
            cursor,
            full,
            kiosk_id: kiosk.id,
            canteen: db::canteens::get(c, kiosk.canteen_id)?,
            policies: db::policies::all(c)?,
            residents,
            card_key: api::encode_key(&card_key),
            templates,
            purged,
            meals,
            voided,
            carers,
        })
    }
}
