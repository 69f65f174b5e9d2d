//! A resident's face templates: `PUT` replaces them after enrolment at a kiosk (recording the
//! consent given there), `DELETE` removes them. Kiosk token or admin.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::SecondsFormat;
use serde::Deserialize;
use zhucan_domain::api::TemplateUpload;
use zhucan_domain::{CanteenId, ResidentId};

use super::parse_id;
use crate::crypto::template_key;
use crate::db;
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
    st.db
        .write(move |tx| templates::store(tx, resident, who, &valid, &sealed, &now))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(st): State<AppState>,
    _: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let now = st.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true);
    st.db
        .write(move |tx| db::templates::delete(tx, resident, &now))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
