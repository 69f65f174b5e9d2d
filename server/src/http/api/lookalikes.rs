//! Look-alike pairs (duplicate enrolment, issue 12): `GET /lookalikes` (administrator, finance;
//! the read is audited) lists them; `POST /lookalikes/scan` (administrator) compares every
//! resident's templates with every other's, records the pairs at or above the duplicate
//! threshold as `found` (a confirmed pair stays as staff confirmed it), audits the scan in the
//! same transaction, and answers the pairs it found as they now stand.

use std::collections::HashSet;

use axum::extract::State;
use serde_json::json;
use zhucan_domain::api::Lookalike;

use crate::crypto::template_key;
use crate::db::audit;
use crate::db::lookalikes::LookalikePair;
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::{Access, Admin};
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;
use crate::{db, lookalikes};

fn wire(p: LookalikePair) -> Lookalike {
    Lookalike {
        resident_a: p.resident_a,
        name_a: p.name_a,
        resident_b: p.resident_b,
        name_b: p.name_b,
        score: p.score,
        state: p.state,
        reason: p.reason,
        by: p.by,
        at: p.at,
    }
}

#[utoipa::path(
    get, path = "/lookalikes", operation_id = "listLookalikes", summary = "pairs of residents whose faces look like one person's: confirmed by staff at enrolment or found by a scan (administrator, finance)", responses((status = 200, description = "the pairs, confirmed first", body = Vec<zhucan_domain::api::Lookalike>))
)]
pub async fn list(State(st): State<AppState>, access: Access) -> Result<AppJson<Vec<Lookalike>>> {
    let allowed = match &access {
        Access::Admin => true,
        Access::Kiosk(_) => false,
        Access::User(u) => matches!(u.role, Role::Admin | Role::Finance),
    };
    if !allowed {
        return Err(Error::Forbidden(
            "look-alike pairs are for finance and administrators".into(),
        ));
    }
    let pairs = st.db.read(db::lookalikes::list).await?;
    super::audit_read(
        &st,
        &access,
        "lookalikes".into(),
        json!({ "pairs": pairs.len() }),
    )
    .await?;
    Ok(AppJson(pairs.into_iter().map(wire).collect()))
}

#[utoipa::path(
    post, path = "/lookalikes/scan", operation_id = "scanLookalikes", summary = "compare every resident's face templates with every other's and record the pairs at or above the duplicate threshold as found (administrator; audited)", responses((status = 200, description = "the pairs the scan found, as they now stand", body = Vec<zhucan_domain::api::Lookalike>))
)]
#[tracing::instrument(skip_all)]
pub async fn scan(
    State(st): State<AppState>,
    Admin(access): Admin,
) -> Result<AppJson<Vec<Lookalike>>> {
    let key = template_key(&st.config.index_key.0);
    let threshold = st.config.security.duplicate_face_threshold;
    let stored = st
        .db
        .read(|c| db::lookalikes::sealed_templates(c, None, None))
        .await?;
    let templates = stored.len();
    let found = tokio::task::spawn_blocking(move || lookalikes::scan(&key, &stored, threshold))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let pairs = st
        .db
        .write(move |tx| {
            let mut recorded = 0;
            for p in &found {
                let score = f64::from(p.score).clamp(-1.0, 1.0);
                if db::lookalikes::record_found(tx, p.a, p.b, score, &now)? {
                    recorded += 1;
                }
            }
            audit::append(
                tx,
                &now,
                &actor,
                "lookalikes.scan",
                "lookalikes",
                &json!({
                    "templates": templates,
                    "threshold": threshold,
                    "pairs": found.len(),
                    "recorded_found": recorded,
                }),
            )?;
            let keys: HashSet<_> = found.iter().map(|p| (p.a, p.b)).collect();
            Ok(db::lookalikes::list(tx)?
                .into_iter()
                .filter(|p| keys.contains(&(p.resident_a, p.resident_b)))
                .collect::<Vec<_>>())
        })
        .await?;
    tracing::info!(templates, pairs = pairs.len(), "lookalike scan");
    Ok(AppJson(pairs.into_iter().map(wire).collect()))
}
