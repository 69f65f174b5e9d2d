//! Canteens: create, list, show, and the operator's daily tally.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{CanteenDto, NewCanteen, Tally};
use zhucan_domain::{Canteen, CanteenId, SlotWindow};

use super::{parse_id, required};
use crate::db;
use crate::http::AppState;
use crate::http::auth::{Access, Admin};
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::reports;

#[utoipa::path(
    post, path = "/canteens", operation_id = "createCanteen", summary = "add a canteen", request_body = zhucan_domain::api::NewCanteen, responses((status = 201, description = "created", body = zhucan_domain::api::CanteenDto), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    _: Admin,
    AppJson(mut c): AppJson<NewCanteen>,
) -> Result<(StatusCode, AppJson<CanteenDto>)> {
    c.name = required(&c.name, "name", 64)?;
    c.operator = required(&c.operator, "operator", 64)?;
    c.town = required(&c.town, "town", 32)?;
    if c.slots.is_empty() {
        return Err(Error::bad(
            "invalid",
            "slots",
            "a canteen serves at least one slot",
        ));
    }
    let windows: Vec<SlotWindow> = c
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.window()
                .map_err(|(field, why)| Error::bad("invalid", format!("slots[{i}].{field}"), why))
        })
        .collect::<Result<_>>()?;
    Canteen::validate_slots(&windows).map_err(|m| {
        let field = m
            .split_once(':')
            .map_or("slots".to_owned(), |(f, _)| f.to_owned());
        Error::bad("invalid", field, m)
    })?;
    if c.delivery_surcharge.is_some_and(|f| f.is_negative()) {
        return Err(Error::bad(
            "invalid",
            "delivery_surcharge",
            "must not be negative",
        ));
    }
    let new = c.clone();
    let now = zhucan_platform::stamp(st.clock.now());
    let canteen = st
        .db
        .write(move |tx| {
            let id = db::canteens::insert(tx, &new, &now)?;
            db::canteens::get(tx, id)
        })
        .await?;
    Ok((StatusCode::CREATED, AppJson(db::canteens::to_dto(&canteen))))
}

#[utoipa::path(
    get, path = "/canteens", operation_id = "listCanteens", summary = "list canteens", responses((status = 200, description = "canteens", body = Vec<zhucan_domain::api::CanteenDto>))
)]
pub async fn list(State(st): State<AppState>, _: Admin) -> Result<AppJson<Vec<CanteenDto>>> {
    let all = st.db.read(db::canteens::all).await?;
    Ok(AppJson(all.iter().map(db::canteens::to_dto).collect()))
}

#[utoipa::path(
    get, path = "/canteens/{id}", operation_id = "getCanteen", summary = "a canteen", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "the canteen", body = zhucan_domain::api::CanteenDto), (status = 404, description = "no such resource", body = ErrorBody))
)]
pub async fn show(
    State(st): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<AppJson<CanteenDto>> {
    let id = CanteenId(parse_id(&id, "id")?);
    let c = st.db.read(move |conn| db::canteens::get(conn, id)).await?;
    Ok(AppJson(db::canteens::to_dto(&c)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TallyQuery {
    /// The local day (`YYYY-MM-DD`).
    #[param(format = Date)]
    date: String,
}

#[utoipa::path(
    get, path = "/canteens/{id}/tally", operation_id = "getTally", summary = "the canteen's day (admin, finance, the canteen's operators or its kiosk)", params(("id" = i64, Path, description = "the id"), TallyQuery), responses((status = 200, description = "tally", body = zhucan_domain::api::Tally), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// The operator's day: for the administrator, finance, the canteen's operators and its own kiosk.
#[tracing::instrument(skip_all, fields(canteen = %id))]
pub async fn tally(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    AppQuery(q): AppQuery<TallyQuery>,
) -> Result<AppJson<Tally>> {
    let id = CanteenId(parse_id(&id, "id")?);
    access.require_canteen(id)?;
    let date: NaiveDate = q
        .date
        .parse()
        .map_err(|_| Error::bad("invalid", "date", "must be a date YYYY-MM-DD"))?;
    let tally = st
        .db
        .read(move |conn| {
            let canteen = db::canteens::get(conn, id)?;
            let meals = db::settlements::day(conn, id, date)?;
            Ok(reports::tally(&canteen, date, meals))
        })
        .await?;
    Ok(AppJson(tally))
}
