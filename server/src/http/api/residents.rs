//! Residents: create (the national ID is reduced at once to a blind index, a masked form and a
//! sealed copy), list, show, update of status, categories and consent, and the audited reveal of
//! the full national ID number. Every change is written to the audit log in its transaction.

use std::collections::BTreeSet;
use zhucan_domain::api::ErrorBody;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use zhucan_domain::api::{NationalIdReveal, NewResident, ResidentDto, ResidentUpdate, StatusDto};
use zhucan_domain::resident::Consent;
use zhucan_domain::{Category, NationalId, ResidentId, ResidentStatus};

use super::{parse_id, required};
use crate::crypto::seal_national_id;
use crate::db;
use crate::db::Sealed;
use crate::db::audit::{self};
use crate::db::residents::NewResidentRow;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};

/// Parses category codes, naming the failing one.
pub fn parse_categories(codes: &[String], field: &str) -> Result<BTreeSet<Category>> {
    codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Category::parse(c.trim()).map_err(|m| Error::bad("invalid", format!("{field}[{i}]"), m))
        })
        .collect()
}

/// Turns a validated request into a row; shared with the roster import.
pub fn to_row(r: &NewResident, key: &[u8]) -> Result<NewResidentRow> {
    let nid =
        NationalId::parse(&r.national_id).map_err(|m| Error::bad("invalid", "national_id", m))?;
    let birth_date = nid
        .birth_date()
        .ok_or_else(|| Error::bad("invalid", "national_id", "no birth date"))?;
    if r.prepaid_balance.is_some_and(|b| b.is_negative()) {
        return Err(Error::bad(
            "invalid",
            "prepaid_balance",
            "must not be negative",
        ));
    }
    let consent = r.consent.unwrap_or_default();
    let (index, nonce, ciphertext) =
        seal_national_id(key, &nid).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(NewResidentRow {
        name: required(&r.name, "name", 32)?,
        sex: nid.sex(),
        birth_date,
        national_id_index: index,
        national_id_sealed: Some(Sealed { nonce, ciphertext }),
        local_registration: r.local_registration,
        registered_town: required(&r.registered_town, "registered_town", 32)?,
        residence_town: required(&r.residence_town, "residence_town", 32)?,
        categories: parse_categories(&r.categories, "categories")?,
        status: ResidentStatus::Active,
        card_code: required(&r.card_code, "card_code", 32)?,
        designated_canteen: r.designated_canteen,
        prepaid_balance: r.prepaid_balance,
        consent: Consent {
            face_enrolment: consent.face_enrolment,
            template_sharing: consent.template_sharing,
        },
        face_enrolled: r.face_enrolled,
    })
}

#[utoipa::path(
    post, path = "/residents", operation_id = "createResident", summary = "add a resident", request_body = zhucan_domain::api::NewResident, responses((status = 201, description = "created", body = zhucan_domain::api::ResidentDto), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    Admin(access): Admin,
    AppJson(r): AppJson<NewResident>,
) -> Result<(StatusCode, AppJson<ResidentDto>)> {
    let row = to_row(&r, &st.config.index_key.0)?;
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let dto = st
        .db
        .write(move |tx| {
            let id = db::residents::insert(tx, &row, &now, "admin")?;
            let dto = db::residents::get_dto(tx, id)?;
            audit::append(
                tx,
                &now,
                &actor,
                "resident.create",
                &format!("resident:{}", id.0),
                // no digit of the number: the audit log is in the database, beside birth dates
                &json!({ "name": dto.name, "consent": dto.consent }),
            )?;
            Ok(dto)
        })
        .await?;
    Ok((StatusCode::CREATED, AppJson(dto)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only residents registered in or living in this town (its code).
    town: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Skip this many.
    #[param(minimum = 0, maximum = 1_000_000_000)]
    offset: Option<i64>,
}

#[utoipa::path(
    get, path = "/residents", operation_id = "listResidents", summary = "list residents", params(ListQuery), responses((status = 200, description = "residents", body = Vec<zhucan_domain::api::ResidentDto>))
)]
pub async fn list(
    State(st): State<AppState>,
    Admin(access): Admin,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<AppJson<Vec<ResidentDto>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad("invalid", "limit", "must be 1 to 1000"));
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=1_000_000_000).contains(&offset) {
        return Err(Error::bad("invalid", "offset", "must be 0 to 1000000000"));
    }
    let town = q.town.clone();
    let out = st
        .db
        .read(move |c| db::residents::list(c, town.as_deref(), limit, offset))
        .await?;
    super::audit_read(
        &st,
        &access,
        "residents".into(),
        json!({ "town": q.town, "limit": limit, "offset": offset, "rows": out.len() }),
    )
    .await?;
    Ok(AppJson(out))
}

#[utoipa::path(
    get, path = "/residents/{id}", operation_id = "getResident", summary = "a resident", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "the resident", body = zhucan_domain::api::ResidentDto), (status = 404, description = "no such resource", body = ErrorBody))
)]
pub async fn show(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path(id): Path<String>,
) -> Result<AppJson<ResidentDto>> {
    let id = ResidentId(parse_id(&id, "id")?);
    let dto = st.db.read(move |c| db::residents::get_dto(c, id)).await?;
    super::audit_read(&st, &access, format!("resident:{}", id.0), json!({})).await?;
    Ok(AppJson(dto))
}

#[utoipa::path(
    patch, path = "/residents/{id}", operation_id = "updateResident", summary = "change status, categories or consent", params(("id" = i64, Path, description = "the id")), request_body = zhucan_domain::api::ResidentUpdate, responses((status = 200, description = "the resident", body = zhucan_domain::api::ResidentDto), (status = 404, description = "no such resource", body = ErrorBody))
)]
pub async fn update(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path(id): Path<String>,
    AppJson(u): AppJson<ResidentUpdate>,
) -> Result<AppJson<ResidentDto>> {
    let id = ResidentId(parse_id(&id, "id")?);
    let status = match (u.status, u.deceased_on) {
        (None, None) => None,
        (Some(StatusDto::Active), None) => Some(ResidentStatus::Active),
        (Some(StatusDto::Suspended), None) => Some(ResidentStatus::Suspended),
        (Some(StatusDto::Deceased) | None, Some(date)) => Some(ResidentStatus::Deceased { date }),
        (Some(StatusDto::Deceased), None) => {
            return Err(Error::bad(
                "missing",
                "deceased_on",
                "required when status is deceased",
            ));
        }
        (_, Some(_)) => {
            return Err(Error::bad(
                "invalid",
                "deceased_on",
                "only with status deceased",
            ));
        }
    };
    let categories = match &u.categories {
        Some(c) => Some(parse_categories(c, "categories")?),
        None => None,
    };
    let update = db::residents::Update {
        status,
        categories,
        consent: u.consent.map(|c| Consent {
            face_enrolment: c.face_enrolment,
            template_sharing: c.template_sharing,
        }),
        face_enrolled: u.face_enrolled,
    };
    let by =
        u.by.clone()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "admin".into());
    let dto = crate::residents::update(&st.db, &*st.clock, access.actor(), id, update, by).await?;
    Ok(AppJson(dto))
}

#[utoipa::path(
    get, path = "/residents/{id}/national-id", operation_id = "revealNationalId", summary = "the resident's full national ID number (administrator; audited)", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "the number", body = zhucan_domain::api::NationalIdReveal), (status = 404, description = "no such resource", body = ErrorBody), (status = 409, description = "stored before ID numbers were kept encrypted: not available", body = ErrorBody))
)]
/// `GET /residents/{id}/national-id` (administrators only): the full number, opened from its
/// sealed copy. Every reveal is written to the audit log before the number is sent.
pub async fn national_id(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path(id): Path<String>,
) -> Result<(
    [(axum::http::HeaderName, &'static str); 1],
    AppJson<NationalIdReveal>,
)> {
    let id = ResidentId(parse_id(&id, "id")?);
    let key = st.config.index_key.0.clone();
    let out =
        crate::residents::reveal_national_id(&st.db, &*st.clock, key, access.actor(), id, "api")
            .await?
            .map(|(_, reveal)| reveal)
            .ok_or(());
    match out {
        Ok(reveal) => Ok((
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            AppJson(reveal),
        )),
        Err(_) => Err(Error::Conflict(
            "only the masked number is on file for this resident (added before full numbers \
             were kept)"
                .into(),
        )),
    }
}
