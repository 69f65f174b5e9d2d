//! A resident's face templates: `PUT` replaces them after enrolment at a kiosk (recording the
//! consent given there), `DELETE` removes them and answers the sync cursor of the deletion.
//! A kiosk changes only what its own canteen enrolled, and cannot re-enrol a resident who
//! withdrew consent on the server; both checks run inside the write transaction. Kiosk token or admin. Both are written to the
//! audit log (with any consent change) in their transaction.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::json;
use zhucan_domain::api::{TemplateUpload, TemplatesDeleted};
use zhucan_domain::{CanteenId, ResidentId};

use super::parse_id;
use crate::crypto::template_key;
use crate::db;
use crate::db::audit;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::templates::{self, Uploader};

#[derive(Debug, Deserialize)]
pub struct PutQuery {
    /// Admin only: the enrolling canteen (default: the resident's designated canteen).
    canteen: Option<i64>,
}

pub async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    AppQuery(q): AppQuery<PutQuery>,
    AppJson(u): AppJson<TemplateUpload>,
) -> Result<StatusCode> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let valid = templates::validate(&u)?;
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
    let now = st.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let actor = caller.actor();
    let kiosk = matches!(caller, Caller::Kiosk(_));
    st.db
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
            super::residents::audit_consent(tx, &now, &actor, resident, &done)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TemplatesDeleted>> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let now = st.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true);
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
