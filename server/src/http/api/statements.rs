//! The monthly finance statement in JSON, CSV (UTF-8 with BOM) or XLSX.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zhucan_domain::CanteenId;

use crate::corrections::parse_month;
use crate::db::statements::Filter;
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::Access;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::reports;

#[derive(Debug, Deserialize)]
pub struct StatementQuery {
    month: String,
    canteen: Option<i64>,
    town: Option<String>,
    format: Option<String>,
}

#[tracing::instrument(skip_all, fields(month = %q.month))]
pub async fn show(
    State(st): State<AppState>,
    access: Access,
    AppQuery(q): AppQuery<StatementQuery>,
) -> Result<Response> {
    match access.role() {
        None | Some(Role::Admin | Role::Finance) if !matches!(access, Access::Kiosk(_)) => {}
        Some(Role::Operator) => match q.canteen {
            Some(c) => access.require_canteen(CanteenId(c))?,
            None => {
                return Err(Error::Forbidden(
                    "an operator's statement needs ?canteen= of their own".into(),
                ));
            }
        },
        _ => return Err(Error::Forbidden("no access to statements".into())),
    }
    if parse_month(&q.month).is_none() {
        return Err(Error::bad("invalid", "month", "must be YYYY-MM"));
    }
    let format = q.format.unwrap_or_else(|| "json".into());
    if !["json", "csv", "xlsx"].contains(&format.as_str()) {
        return Err(Error::bad("invalid", "format", "must be json, csv or xlsx"));
    }
    let filter = Filter {
        canteen: q.canteen.map(CanteenId),
        town: q.town,
    };
    let month = q.month.clone();
    let statement = st
        .db
        .read(move |c| reports::statement(c, &month, &filter))
        .await?;
    let name = format!("statement-{}", q.month);
    Ok(match format.as_str() {
        "csv" => {
            let body =
                reports::csv::render(&statement).map_err(|e| Error::Internal(e.to_string()))?;
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.csv\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        "xlsx" => {
            let body = tokio::task::spawn_blocking(move || reports::xlsx::render(&statement))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| Error::Internal(e.to_string()))?;
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_owned(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.xlsx\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        _ => AppJson(statement).into_response(),
    })
}
