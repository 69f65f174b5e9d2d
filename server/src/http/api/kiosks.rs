//! Kiosk registration: the administrator creates a kiosk for a canteen and gets its token once.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::SecondsFormat;
use zhucan_domain::api::{KioskCreated, NewKiosk};

use super::required;
use crate::crypto::{new_token, sha256_hex};
use crate::db;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::Result;
use crate::http::extract::AppJson;

pub async fn create(
    State(st): State<AppState>,
    _: Admin,
    AppJson(k): AppJson<NewKiosk>,
) -> Result<(StatusCode, AppJson<KioskCreated>)> {
    let name = required(&k.name, "name", 64)?;
    let token = new_token();
    let hash = sha256_hex(token.as_bytes());
    let now = st.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let canteen = k.canteen_id;
    let n = name.clone();
    let id = st
        .db
        .write(move |tx| db::kiosks::insert(tx, canteen, &n, &hash, &now))
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(KioskCreated {
            id,
            canteen_id: canteen,
            name,
            token,
        }),
    ))
}
