//! Towns and streets (镇/街道).

use axum::extract::State;
use axum::http::StatusCode;
use zhucan_domain::api::TownDto;

use super::required;
use crate::db;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::AppJson;

pub async fn create(
    State(st): State<AppState>,
    _: Admin,
    AppJson(t): AppJson<TownDto>,
) -> Result<(StatusCode, AppJson<TownDto>)> {
    let code = required(&t.code, "code", 32)?;
    if !code
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Error::bad(
            "invalid",
            "code",
            "lower-case letters, digits and _ only",
        ));
    }
    let town = TownDto {
        code,
        name: required(&t.name, "name", 64)?,
    };
    let out = town.clone();
    st.db.write(move |tx| db::towns::insert(tx, &town)).await?;
    Ok((StatusCode::CREATED, AppJson(out)))
}

pub async fn list(State(st): State<AppState>, _: Admin) -> Result<AppJson<Vec<TownDto>>> {
    Ok(AppJson(st.db.read(db::towns::list).await?))
}
