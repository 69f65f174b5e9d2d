//! The kiosk's own routes: `GET /kiosk/sync` (roster, policy, gallery and this month's meals
//! since a cursor) and `POST /kiosk/heartbeat` (status for the dashboard).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use zhucan_domain::api::{Heartbeat, SyncResponse};

use crate::db;
use crate::http::AppState;
use crate::http::auth::KioskCaller;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The cursor of the previous answer; 0 or absent: a full snapshot.
    #[param(minimum = 0)]
    since: Option<i64>,
}

#[utoipa::path(
    get, path = "/kiosk/sync", operation_id = "syncKiosk", summary = "roster, policy, gallery and this month's meals since a cursor (kiosk token)", params(SyncQuery), responses((status = 200, description = "changes since the cursor", body = zhucan_domain::api::SyncResponse))
)]
pub async fn show(
    State(st): State<AppState>,
    KioskCaller(kiosk): KioskCaller,
    AppQuery(q): AppQuery<SyncQuery>,
) -> Result<AppJson<SyncResponse>> {
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(Error::bad("invalid", "since", "must not be negative"));
    }
    let config = st.config.clone();
    let tz = st.config.timezone;
    let now = st.clock.now();
    let out = st
        .db
        .read(move |c| {
            crate::sync::build(c, kiosk, since, &config.index_key.0, tz, now).map_err(|e| match e {
                crate::templates::Error::Db(e) => e,
                other => db::Error::other(other),
            })
        })
        .await?;
    Ok(AppJson(out))
}

#[utoipa::path(
    post, path = "/kiosk/heartbeat", operation_id = "kioskHeartbeat", summary = "report the kiosk's status (kiosk token)", request_body = zhucan_domain::api::Heartbeat, responses((status = 204, description = "stored"))
)]
pub async fn heartbeat(
    State(st): State<AppState>,
    KioskCaller(kiosk): KioskCaller,
    AppJson(h): AppJson<Heartbeat>,
) -> Result<StatusCode> {
    if h.software_version.chars().count() > 64 {
        return Err(Error::bad(
            "too_long",
            "software_version",
            "at most 64 characters",
        ));
    }
    if h.model_version.chars().count() > 128 {
        return Err(Error::bad(
            "too_long",
            "model_version",
            "at most 128 characters",
        ));
    }
    for (field, v) in [
        ("match_threshold", h.match_threshold),
        ("liveness_threshold", h.liveness_threshold),
    ] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(Error::bad(
                "out_of_range",
                field,
                "a score threshold is in 0..=1",
            ));
        }
    }
    let now = zhucan_platform::stamp(st.clock.now());
    st.db
        .write(move |tx| {
            db::kiosks::heartbeat(
                tx,
                kiosk.id,
                &db::kiosks::Beat {
                    at: &now,
                    outbox_backlog: h.outbox_backlog,
                    software_version: h.software_version.trim(),
                    model_version: h.model_version.trim(),
                    last_sync_cursor: h.last_sync_cursor,
                    match_threshold: h.match_threshold,
                    liveness_threshold: h.liveness_threshold,
                },
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
