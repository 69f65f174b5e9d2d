//! Carers (代取人): register a carer, list them, link one to a resident and remove the link.
//! Administrator only; every change is written to the audit log in its transaction.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use zhucan_domain::ResidentId;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{CarerDto, CarerLink, NewCarer};

use super::{parse_id, required};
use crate::db;
use crate::db::audit;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;

#[utoipa::path(
    post, path = "/carers", operation_id = "createCarer", summary = "register a carer with their own card (administrator; audited)", request_body = zhucan_domain::api::NewCarer, responses((status = 201, description = "created", body = zhucan_domain::api::CarerDto), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    Admin(access): Admin,
    AppJson(c): AppJson<NewCarer>,
) -> Result<(StatusCode, AppJson<CarerDto>)> {
    let name = required(&c.name, "name", 32)?;
    let card_code = required(&c.card_code, "card_code", 32)?;
    let note = match c.note.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.chars().count() > 200 => {
            return Err(Error::bad("too_long", "note", "at most 200 characters"));
        }
        Some(n) => Some(n.to_owned()),
    };
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let dto = st
        .db
        .write(move |tx| {
            let id = db::carers::insert(tx, &name, &card_code, note.as_deref(), &now)?;
            audit::append(
                tx,
                &now,
                &actor,
                "carer.create",
                &format!("carer:{id}"),
                &json!({ "name": name, "note": note }),
            )?;
            db::carers::get(tx, id)
        })
        .await?;
    Ok((StatusCode::CREATED, AppJson(dto)))
}

#[utoipa::path(
    get, path = "/carers", operation_id = "listCarers", summary = "list carers (代取人) with the residents each may collect for (administrator)", responses((status = 200, description = "carers", body = Vec<zhucan_domain::api::CarerDto>))
)]
pub async fn list(State(st): State<AppState>, _: Admin) -> Result<AppJson<Vec<CarerDto>>> {
    Ok(AppJson(st.db.read(db::carers::all).await?))
}

#[utoipa::path(
    post, path = "/residents/{id}/carers", operation_id = "linkCarer", summary = "let a carer collect this resident's meals (代取; administrator; audited)", params(("id" = i64, Path, description = "the id")), request_body = zhucan_domain::api::CarerLink, responses((status = 201, description = "linked; the carer", body = zhucan_domain::api::CarerDto), (status = 404, description = "no such resource", body = ErrorBody), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn link(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path(id): Path<String>,
    AppJson(l): AppJson<CarerLink>,
) -> Result<(StatusCode, AppJson<CarerDto>)> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let by = actor.name.clone();
    let dto = st
        .db
        .write(move |tx| {
            db::carers::link(tx, l.carer_id, resident, &now, &by)?;
            audit::append(
                tx,
                &now,
                &actor,
                "carer.link",
                &format!("resident:{}", resident.0),
                &json!({ "carer_id": l.carer_id }),
            )?;
            db::carers::get(tx, l.carer_id)
        })
        .await?;
    Ok((StatusCode::CREATED, AppJson(dto)))
}

#[utoipa::path(
    delete, path = "/residents/{id}/carers/{carer_id}", operation_id = "unlinkCarer", summary = "remove a carer's link to this resident (administrator; audited)", params(("id" = i64, Path, description = "the id"), ("carer_id" = i64, Path, description = "the carer")), responses((status = 200, description = "unlinked; the carer", body = zhucan_domain::api::CarerDto), (status = 404, description = "no such resource", body = ErrorBody))
)]
pub async fn unlink(
    State(st): State<AppState>,
    Admin(access): Admin,
    Path((id, carer)): Path<(String, String)>,
) -> Result<AppJson<CarerDto>> {
    let resident = ResidentId(parse_id(&id, "id")?);
    let carer = parse_id(&carer, "carer_id")?;
    let now = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let dto = st
        .db
        .write(move |tx| {
            db::carers::unlink(tx, carer, resident)?;
            audit::append(
                tx,
                &now,
                &actor,
                "carer.unlink",
                &format!("resident:{}", resident.0),
                &json!({ "carer_id": carer }),
            )?;
            db::carers::get(tx, carer)
        })
        .await?;
    Ok(AppJson(dto))
}
