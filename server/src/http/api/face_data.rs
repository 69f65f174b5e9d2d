//! `GET /face-data` (administrators): how many people's face data the server holds, per canteen
//! of enrolment and consenting to sharing, against the 100,000 at which the operator must file
//! with the provincial regulator; and what was withdrawn or purged this (local) month.

use axum::extract::State;
use zhucan_domain::api::FaceDataSummary;

use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::Result;
use crate::http::extract::AppJson;

#[utoipa::path(
    get, path = "/face-data", operation_id = "getFaceData", summary = "how many people's face data the system holds, against the 100,000 filing threshold (administrator)", responses((status = 200, description = "the counts", body = zhucan_domain::api::FaceDataSummary))
)]
pub async fn show(State(st): State<AppState>, _: Admin) -> Result<AppJson<FaceDataSummary>> {
    let now = st.clock.now();
    Ok(AppJson(
        crate::face_data::summary(&st.db, st.config.timezone, now).await?,
    ))
}
