//! The monthly finance statement in JSON, CSV (UTF-8 with BOM) or XLSX: for finance and the
//! administrator only. Every statement fetched, in any format and with any credential, is an
//! export and is written to the audit log before it is sent.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use zhucan_domain::CanteenId;

use crate::db::audit;
use crate::db::statements::Filter;
use crate::db::users::Role;
use crate::http::AppState;
use crate::http::auth::Access;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::period::parse_month;
use crate::reports;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// `YYYY-MM`.
    #[param(pattern = "^2[0-9]{3}-(0[1-9]|1[0-2])$")]
    month: String,
    /// Only this canteen.
    canteen: Option<i64>,
    /// Only meals whose subsidy this town pays (its code).
    town: Option<String>,
    /// `json` (default), `csv` (UTF-8 with BOM) or `xlsx`.
    #[param(value_type = Option<StatementFormat>, inline)]
    format: Option<String>,
}

/// The formats of the statement (the document's enum; the handler matches the same three).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only
enum StatementFormat {
    Json,
    Csv,
    Xlsx,
}

#[utoipa::path(
    get, path = "/statements", operation_id = "getStatement", summary = "the monthly finance statement", params(StatementQuery), responses((status = 200, description = "the statement", content((zhucan_domain::api::Statement = "application/json"), (String = "text/csv"), (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))))
)]
#[tracing::instrument(skip_all, fields(month = %q.month))]
pub async fn show(
    State(st): State<AppState>,
    access: Access,
    AppQuery(q): AppQuery<StatementQuery>,
) -> Result<Response> {
    if !finance_or_admin(&access) {
        return Err(Error::Forbidden(
            "statements are for finance and administrators".into(),
        ));
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
        town: q.town.clone(),
    };
    let month = q.month.clone();
    let statement = reports::statement_in_parallel(&st.db, &month, &filter).await?;
    {
        let actor = access.actor();
        let at = zhucan_platform::stamp(st.clock.now());
        let detail = json!({
            "format": format,
            "canteen": q.canteen,
            "town": q.town,
            "total_subsidy": statement.total.subsidy,
        });
        let target = format!("statement:{}", q.month);
        st.db
            .write(move |tx| audit::append(tx, &at, &actor, "statement.export", &target, &detail))
            .await?;
    }
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

/// The statement and the books check are for finance and administrators.
fn finance_or_admin(access: &Access) -> bool {
    match access {
        Access::Admin => true,
        Access::Kiosk(_) => false,
        Access::User(u) => matches!(u.role, Role::Admin | Role::Finance),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeadsQuery {
    /// The heads line printed on the statement (`zhucan-heads:v1;…`).
    heads: String,
}

#[utoipa::path(
    get, path = "/integrity/heads", operation_id = "checkHeads", summary = "check the heads printed on an earlier statement: was anything after them removed or rewritten?", params(HeadsQuery), responses((status = 200, description = "a verdict per head", body = zhucan_domain::api::HeadsCheck))
)]
/// `GET /integrity/heads?heads=zhucan-heads:v1;…`: whether the books still hold the heads
/// printed on an earlier statement or export (nothing after them removed, nothing rewritten).
#[tracing::instrument(skip_all)]
pub async fn check_heads(
    State(st): State<AppState>,
    access: Access,
    AppQuery(q): AppQuery<HeadsQuery>,
) -> Result<AppJson<zhucan_domain::api::HeadsCheck>> {
    if !finance_or_admin(&access) {
        return Err(Error::Forbidden(
            "the books check is for finance and administrators".into(),
        ));
    }
    let earlier = zhucan_domain::api::Heads::parse(&q.heads)
        .map_err(|why| Error::bad("invalid", "heads", why))?;
    let check = st
        .db
        .read(move |c| crate::db::books::check_heads(c, &earlier))
        .await?;
    Ok(AppJson(check))
}
