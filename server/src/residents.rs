//! Resident use cases, called by the JSON API and the dashboard alike: an update (with its audit
//! entries: the update, a consent change, a purge of face data) and the reveal of a full national
//! ID number (audited before it is shown).

use serde_json::json;
use zhucan_domain::ResidentId;
use zhucan_domain::api::{NationalIdReveal, ResidentDto};

use crate::config::Clock;
use crate::db::audit::{self, Actor};
use crate::db::residents::Updated;
use crate::db::{self, Db};

/// The resident as the meal decision sees them, with the districts of their towns
/// (`districts`: [`db::towns::districts_of_towns`], read once per batch or sync answer).
pub fn diner(
    r: &zhucan_domain::Resident,
    districts: &std::collections::HashMap<String, String>,
) -> zhucan_domain::Diner {
    let district = |t: &zhucan_domain::TownCode| {
        districts
            .get(&t.0)
            .cloned()
            .map(zhucan_domain::DistrictCode)
    };
    zhucan_domain::Diner {
        registered_district: district(&r.registered_town),
        residence_district: district(&r.residence_town),
        ..r.diner()
    }
}

/// Applies `update` to resident `id` and writes its audit entries, in one transaction.
#[tracing::instrument(skip_all, fields(resident = id.0))]
pub async fn update(
    db: &Db,
    clock: &dyn Clock,
    actor: Actor,
    id: ResidentId,
    update: db::residents::Update,
    by: String,
) -> db::Result<ResidentDto> {
    let now = zhucan_platform::stamp(clock.now());
    db.write(move |tx| {
        let done = db::residents::update(tx, id, &update, &now, &by)?;
        audit_update(tx, &now, &actor, id, &update, &done)?;
        db::residents::get_dto(tx, id)
    })
    .await
}

/// The audit entries of a resident update: the update itself, a consent change, a purge of
/// face data. Shared with the dashboard's edit form.
pub fn audit_update(
    tx: &db::Tx<'_>,
    at: &str,
    actor: &Actor,
    id: ResidentId,
    u: &db::residents::Update,
    done: &Updated,
) -> db::Result<()> {
    let target = format!("resident:{}", id.0);
    audit::append(
        tx,
        at,
        actor,
        "resident.update",
        &target,
        &json!({
            "status": u.status,
            "categories": u.categories.as_ref().map(|c| c.iter().map(|c| c.0.as_str()).collect::<Vec<_>>()),
            "consent": u.consent,
            "face_enrolled": u.face_enrolled,
        }),
    )?;
    audit_consent(tx, at, actor, id, done)
}

/// `consent.change` when consent changed, and `templates.purge` when face data was deleted.
pub fn audit_consent(
    tx: &db::Tx<'_>,
    at: &str,
    actor: &Actor,
    id: ResidentId,
    done: &Updated,
) -> db::Result<()> {
    let target = format!("resident:{}", id.0);
    if done.consent_changed() {
        audit::append(
            tx,
            at,
            actor,
            "consent.change",
            &target,
            &json!({ "before": done.consent_before, "after": done.consent_after }),
        )?;
    }
    if let Some(reason) = done.purge_reason {
        audit::append(
            tx,
            at,
            actor,
            "templates.purge",
            &target,
            &json!({ "reason": reason, "templates": done.purged_templates }),
        )?;
    }
    Ok(())
}

/// The full national ID number of resident `id`, opened from its sealed copy, the reveal written
/// to the audit log (`via`: `api`, `dashboard`) in the same transaction, before anyone sees it.
/// `Ok(None)`: only the masked number is on file (added before full numbers were kept).
#[tracing::instrument(skip_all, fields(resident = id.0, via))]
pub async fn reveal_national_id(
    db: &Db,
    clock: &dyn Clock,
    key: Vec<u8>,
    actor: Actor,
    id: ResidentId,
    via: &'static str,
) -> db::Result<Option<(ResidentDto, NationalIdReveal)>> {
    let now = zhucan_platform::stamp(clock.now());
    db.write(move |tx| {
        let dto = db::residents::get_dto(tx, id)?;
        let (index, sealed) = db::residents::sealed_national_id(tx, id)?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let number =
            crate::crypto::open_national_id(&key, &index, &sealed.nonce, &sealed.ciphertext)
                .map_err(db::Error::other)?;
        audit::append(
            tx,
            &now,
            &actor,
            "national_id.reveal",
            &format!("resident:{}", id.0),
            &json!({ "via": via }),
        )?;
        let reveal = NationalIdReveal {
            resident_id: id,
            national_id: number,
            national_id_masked: dto.national_id_masked.clone(),
        };
        Ok(Some((dto, reveal)))
    })
    .await
}
