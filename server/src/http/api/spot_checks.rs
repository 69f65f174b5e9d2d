//! Spot checks (抽查): `POST /api/v1/spot-checks` records an auditor's headcount at a canteen
//! during a window (audited); `GET /api/v1/spot-checks?month=&canteen=` lists the month's checks,
//! each with the meals the canteen recorded in its window. For finance and administrators, and
//! community workers for the canteens of their own town; operators and kiosks (the inspected
//! side) get 403.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use zhucan_domain::CanteenId;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{NewSpotCheck, SpotCheck};

use crate::db;
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::Access;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::spot_checks;

/// Who may record and read spot checks: `Ok(None)` for every canteen, `Ok(Some(town))` for the
/// canteens of one town, 403 for anyone else.
pub(crate) fn scope(access: &Access) -> Result<Option<String>> {
    match access {
        Access::Admin => Ok(None),
        Access::Kiosk(_) => Err(Error::Forbidden("kiosks cannot use spot checks".into())),
        Access::User(u) => match u.role {
            Role::Admin | Role::Finance => Ok(None),
            Role::Community => u
                .town
                .clone()
                .map(Some)
                .ok_or_else(|| Error::Forbidden("a community worker without a town".into())),
            Role::Operator => Err(Error::Forbidden(
                "spot checks are for finance, community workers and administrators".into(),
            )),
        },
    }
}

#[utoipa::path(
    post, path = "/spot-checks", operation_id = "createSpotCheck", summary = "record a spot check: heads counted at a canteen during a window (finance, administrator; community workers: their town; audited)", request_body = zhucan_domain::api::NewSpotCheck, responses((status = 201, description = "recorded, with the meals recorded in its window", body = zhucan_domain::api::SpotCheck))
)]
#[tracing::instrument(skip_all, fields(canteen = new.canteen_id.0))]
pub async fn create(
    State(st): State<AppState>,
    access: Access,
    AppJson(new): AppJson<NewSpotCheck>,
) -> Result<(StatusCode, AppJson<SpotCheck>)> {
    let town = scope(&access)?;
    let actor = access.actor();
    let tz = st.config.timezone;
    let now = st.clock.now();
    let check = st
        .db
        .write(move |tx| spot_checks::record(tx, &new, &actor, town.as_deref(), tz, now))
        .await?;
    Ok((StatusCode::CREATED, AppJson(check)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `YYYY-MM`.
    #[param(pattern = "^2[0-9]{3}-(0[1-9]|1[0-2])$")]
    month: String,
    /// Only this canteen's checks.
    canteen: Option<i64>,
}

#[utoipa::path(
    get, path = "/spot-checks", operation_id = "listSpotChecks", summary = "the month's spot checks (抽查), each with the meals recorded in its window (finance, administrator; community workers: their town)", params(ListQuery), responses((status = 200, description = "the checks, newest visit first", body = Vec<zhucan_domain::api::SpotCheck>), (status = 404, description = "no such resource", body = ErrorBody))
)]
#[tracing::instrument(skip_all, fields(month = %q.month))]
pub async fn list(
    State(st): State<AppState>,
    access: Access,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<Vec<SpotCheck>>> {
    let town = scope(&access)?;
    if crate::period::parse_month(&q.month).is_none() {
        return Err(Error::bad("invalid", "month", "must be YYYY-MM"));
    }
    let canteen = q.canteen.map(CanteenId);
    if let (Some(t), Some(c)) = (&town, canteen) {
        let there = st.db.read(move |conn| db::canteens::get(conn, c)).await?;
        if &there.town.0 != t {
            return Err(Error::Forbidden(format!(
                "canteen {} is not in your town",
                c.0
            )));
        }
    }
    let checks = st
        .db
        .read(move |c| spot_checks::list(c, &q.month, canteen, town.as_deref()))
        .await?;
    Ok(AppJson(checks))
}
