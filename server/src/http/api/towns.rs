//! Towns and streets (镇/街道).

use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{DistrictDto, TownDistrict, TownDto};

use crate::db::audit;

use super::required;
use crate::db;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;

/// A town or district code: lower-case letters, digits and `_`.
fn code(s: &str, field: &str) -> Result<String> {
    let code = required(s, field, 32)?;
    if !code
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Error::bad(
            "invalid",
            field,
            "lower-case letters, digits and _ only",
        ));
    }
    Ok(code)
}

#[utoipa::path(
    post, path = "/towns", operation_id = "createTown", summary = "add a town", request_body = zhucan_domain::api::TownDto, responses((status = 201, description = "created", body = zhucan_domain::api::TownDto), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    _: Admin,
    AppJson(t): AppJson<TownDto>,
) -> Result<(StatusCode, AppJson<TownDto>)> {
    let town = TownDto {
        code: code(&t.code, "code")?,
        name: required(&t.name, "name", 64)?,
        district: t
            .district
            .as_deref()
            .map(|d| code(d, "district"))
            .transpose()?,
    };
    let out = town.clone();
    st.db.write(move |tx| db::towns::insert(tx, &town)).await?;
    Ok((StatusCode::CREATED, AppJson(out)))
}

#[utoipa::path(
    get, path = "/towns", operation_id = "listTowns", summary = "list towns", responses((status = 200, description = "towns", body = Vec<zhucan_domain::api::TownDto>))
)]
pub async fn list(State(st): State<AppState>, _: Admin) -> Result<AppJson<Vec<TownDto>>> {
    Ok(AppJson(st.db.read(db::towns::list).await?))
}

#[utoipa::path(
    post, path = "/districts", operation_id = "createDistrict", summary = "add a district or county (区/县), the level above towns", request_body = zhucan_domain::api::DistrictDto, responses((status = 201, description = "created", body = zhucan_domain::api::DistrictDto), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
/// `POST /api/v1/districts`: a district or county (区/县), the level above towns.
pub async fn create_district(
    State(st): State<AppState>,
    _: Admin,
    AppJson(d): AppJson<DistrictDto>,
) -> Result<(StatusCode, AppJson<DistrictDto>)> {
    let district = DistrictDto {
        code: code(&d.code, "code")?,
        name: required(&d.name, "name", 64)?,
    };
    let out = district.clone();
    st.db
        .write(move |tx| db::towns::insert_district(tx, &district))
        .await?;
    Ok((StatusCode::CREATED, AppJson(out)))
}

#[utoipa::path(
    get, path = "/districts", operation_id = "listDistricts", summary = "list districts and counties", responses((status = 200, description = "districts", body = Vec<zhucan_domain::api::DistrictDto>))
)]
pub async fn list_districts(
    State(st): State<AppState>,
    _: Admin,
) -> Result<AppJson<Vec<DistrictDto>>> {
    Ok(AppJson(st.db.read(db::towns::list_districts).await?))
}

#[utoipa::path(
    put, path = "/towns/{code}/district", operation_id = "setTownDistrict", summary = "put an existing town in a district or county (null: none); audited, and its residents and canteens go to the kiosks again", params(("code" = String, Path, pattern = "^[a-z0-9_]{1,32}$", description = "the town's code")), request_body = zhucan_domain::api::TownDistrict, responses((status = 200, description = "the town", body = zhucan_domain::api::TownDto), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// `PUT /api/v1/towns/{code}/district`: puts an existing town in a district (or in none),
/// audited; its residents and canteens go to the kiosks again with their new district.
pub async fn set_district(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path(town): Path<String>,
    AppJson(d): AppJson<TownDistrict>,
) -> Result<AppJson<TownDto>> {
    let district = d
        .district
        .as_deref()
        .map(|c| code(c, "district"))
        .transpose()?;
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let out = st
        .db
        .write(move |c| {
            if !db::towns::set_district(c, &town, district.as_deref(), &now)? {
                return Err(db::Error::NotFound);
            }
            audit::append(
                c,
                &now,
                &actor,
                "town.district",
                &format!("town:{town}"),
                &json!({ "district": district }),
            )?;
            db::towns::list(c).map(|ts| ts.into_iter().find(|t| t.code == town))
        })
        .await?;
    out.map(AppJson).ok_or(Error::NotFound)
}
