//! A resident's face templates: `PUT` replaces them after enrolment at a kiosk (recording the
//! consent given there), `DELETE` removes them and answers the sync cursor of the deletion.
//! A kiosk changes only what its own canteen enrolled, and cannot re-enrol a resident who
//! withdrew consent on the server; both checks run inside the write transaction. Kiosk token or admin. Both are written to the
//! audit log (with any consent change) in their transaction.
//! An upload whose face matches another resident's stored one (`crate::lookalikes`) is refused
//! with 409 `duplicate_face` naming that resident, unless it carries staff's
//! `duplicate_confirmed` for exactly that resident: then the pair is recorded and audited
//! (`templates.duplicate_confirmed`) in the same transaction as the templates.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{DuplicateFace, TemplateUpload, TemplatesDeleted};
use zhucan_domain::{CanteenId, ResidentId};

use super::parse_id;
use crate::crypto::template_key;
use crate::db;
use crate::db::audit;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::lookalikes::{self, Verdict};
use crate::templates::{self, Uploader};

/// The longest reason staff may give for enrolling a face that matches another resident's.
pub const MAX_DUPLICATE_REASON: usize = 200;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutQuery {
    /// Admin only: the enrolling canteen (default: the resident's designated canteen).
    canteen: Option<i64>,
}

#[utoipa::path(
    put, path = "/residents/{id}/templates", operation_id = "putTemplates", summary = "replace the resident's face templates, recording consent (kiosk or admin)", params(("id" = i64, Path, description = "the id"), PutQuery), request_body = zhucan_domain::api::TemplateUpload, responses((status = 204, description = "stored (encrypted)"), (status = 404, description = "no such resource", body = ErrorBody), (status = 409, description = "conflict; code duplicate_face: the face matches another resident's (error.duplicate_of); nothing stored", body = ErrorBody))
)]
pub async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    AppQuery(q): AppQuery<PutQuery>,
    AppJson(u): AppJson<TemplateUpload>,
) -> Result<StatusCode> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let valid = templates::validate(&u)?;
    let confirmation = match &u.duplicate_confirmed {
        None => None,
        Some(c) => {
            let reason = c.reason.trim();
            if reason.is_empty() || reason.chars().count() > MAX_DUPLICATE_REASON {
                return Err(Error::bad(
                    "invalid",
                    "duplicate_confirmed.reason",
                    format!("must be 1 to {MAX_DUPLICATE_REASON} characters"),
                ));
            }
            if c.other_resident_id == resident {
                return Err(Error::bad(
                    "invalid",
                    "duplicate_confirmed.other_resident_id",
                    "names the resident being enrolled: it must name the other resident",
                ));
            }
            Some((c.other_resident_id, reason.to_owned()))
        }
    };
    let who = match caller {
        Caller::Kiosk(k) => {
            if q.canteen.is_some_and(|c| c != k.canteen_id.0) {
                return Err(Error::bad(
                    "canteen_not_allowed",
                    "canteen",
                    "a kiosk enrols at its own canteen",
                ));
            }
            Uploader {
                kiosk_id: Some(k.id),
                canteen: k.canteen_id,
            }
        }
        Caller::Admin => {
            let canteen = match q.canteen {
                Some(c) => CanteenId(c),
                None => st
                    .db
                    .read(move |c| db::residents::get(c, resident))
                    .await?
                    .designated_canteen
                    .ok_or_else(|| {
                        Error::bad(
                            "missing",
                            "canteen",
                            "the resident has no designated canteen; give ?canteen=",
                        )
                    })?,
            };
            Uploader {
                kiosk_id: None,
                canteen,
            }
        }
    };
    let key = template_key(&st.config.index_key.0);
    let sealed = templates::seal_all(&key, resident, &valid.embeddings)?;
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = caller.actor();
    let kiosk = matches!(caller, Caller::Kiosk(_));
    let threshold = st.config.security.duplicate_face_threshold;
    let refused = st
        .db
        .write(move |tx| {
            if kiosk {
                db::templates::check_kiosk_may_change(tx, resident, who.canteen)?;
                if db::residents::face_consent_withdrawn(tx, resident)? {
                    return Err(db::Error::Forbidden(
                        "the resident withdrew face consent on the server: it is granted again \
                         at the dashboard (recorded with who), not at a kiosk"
                            .into(),
                    ));
                }
            }
            let found = lookalikes::matches(tx, &key, resident, &valid.embeddings, threshold)?;
            let confirmed = match lookalikes::judge(&found, confirmation.as_ref().map(|c| c.0)) {
                Verdict::Clear => None,
                Verdict::Confirmed(m) => Some(m),
                Verdict::Duplicate(m) => {
                    // nothing has been written: the transaction commits empty
                    let name = db::lookalikes::name_of(tx, m.resident)?;
                    return Ok(Some((m, name)));
                }
            };
            let done = templates::store(tx, resident, who, &valid, &sealed, &now)?;
            audit::append(
                tx,
                &now,
                &actor,
                "templates.upload",
                &format!("resident:{}", resident.0),
                &json!({
                    "templates": sealed.len(),
                    "model": valid.model,
                    "canteen": who.canteen,
                    "by": valid.by,
                    "consent": done.consent_after,
                }),
            )?;
            if let (Some(m), Some((other, reason))) = (confirmed, &confirmation) {
                let by = match who.kiosk_id {
                    Some(k) => format!("{} (kiosk {k})", valid.by),
                    None => format!("{} ({})", valid.by, actor.name),
                };
                let score = f64::from(m.score).clamp(-1.0, 1.0);
                db::lookalikes::confirm(tx, resident, *other, score, reason, &by, &now)?;
                audit::append(
                    tx,
                    &now,
                    &actor,
                    "templates.duplicate_confirmed",
                    &format!("resident:{}", resident.0),
                    &json!({
                        "other_resident_id": other,
                        "score": score,
                        "threshold": threshold,
                        "reason": reason,
                        "by": by,
                    }),
                )?;
            }
            crate::residents::audit_consent(tx, &now, &actor, resident, &done)?;
            Ok(None)
        })
        .await?;
    if let Some((m, name)) = refused {
        let id = m.resident.0;
        let mismatch = match &u.duplicate_confirmed {
            Some(c) => format!(
                "（确认书写的是居民 {0}，不是此人 / the confirmation names resident {0}, not this one） ",
                c.other_resident_id.0
            ),
            None => String::new(),
        };
        return Err(Error::DuplicateFace {
            message: format!(
                "疑似与已登记的居民 {id}（{name}）为同一人，相似度 {score:.2}，未登记 / the face \
                 matches resident {id} ({name}) with similarity {score:.2} (threshold \
                 {threshold:.2}): the same person enrolled twice? Nothing was stored. Staff \
                 judge (twins exist); to enrol anyway send duplicate_confirmed \
                 {{other_resident_id: {id}, reason}}. {mismatch}",
                score = m.score,
            )
            .trim_end()
            .to_owned(),
            other: DuplicateFace {
                resident_id: m.resident,
                name,
            },
        });
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/residents/{id}/templates", operation_id = "deleteTemplates", summary = "delete the resident's face templates (kiosk or admin)", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "deleted; the cursor at which kiosks hear of it", body = zhucan_domain::api::TemplatesDeleted), (status = 404, description = "no such resource", body = ErrorBody))
)]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TemplatesDeleted>> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = caller.actor();
    let kiosk_canteen = match &caller {
        Caller::Kiosk(k) => Some(k.canteen_id),
        Caller::Admin => None,
    };
    let done = st
        .db
        .write(move |tx| {
            if let Some(c) = kiosk_canteen {
                db::residents::get(tx, resident)?;
                db::templates::check_kiosk_may_change(tx, resident, c)?;
            }
            let (n, cursor) = db::templates::delete(tx, resident, &now, &actor.name)?;
            audit::append(
                tx,
                &now,
                &actor,
                "templates.delete",
                &format!("resident:{}", resident.0),
                &json!({ "templates": n }),
            )?;
            Ok(TemplatesDeleted { deleted: n, cursor })
        })
        .await?;
    Ok(Json(done))
}
