//! Canteens: create, list, show, the operator's daily tally and the residents to invite to enrol
//! their face again (`crate::ageing`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{CanteenDto, NewCanteen, Tally};
use zhucan_domain::{Canteen, CanteenId, SlotWindow};

use super::{parse_id, required};
use crate::db;
use crate::db::users::Role;
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

/// The answer of `GET /api/v1/canteens/{id}/re-enrolment`: the residents whose face scores at
/// the canteen call for enrolling their face again (the operator page's
/// 建议重新采集人脸 section). A prompt only: nothing is changed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReEnrolment {
    pub canteen_id: i64,
    /// Today in the server's time zone: the last day of the recent window.
    #[schema(format = Date)]
    pub as_of: String,
    /// The first day of the recent window (28 local days, today included).
    #[schema(format = Date)]
    pub recent_from: String,
    /// By resident id.
    pub residents: Vec<ReEnrolmentSuggestion>,
}

/// One resident to invite to enrol again, with the medians behind it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReEnrolmentSuggestion {
    pub resident_id: i64,
    /// Masked, as on the operator's tally (张*丰).
    pub name: String,
    /// When the resident's current templates were stored (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub enrolled_at: String,
    /// Median match score of the face meals here in the first 28 days after the enrolment (or
    /// of the first 8 when those days hold fewer).
    pub baseline: f64,
    /// Median match score of the face meals here in the recent window (baseline meals left out).
    pub recent: f64,
    /// `baseline - recent`.
    pub drop: f64,
    #[schema(minimum = 8)]
    pub baseline_meals: i64,
    #[schema(minimum = 8)]
    pub recent_meals: i64,
    /// The highest match threshold last reported by the kiosks that recorded the recent meals;
    /// null when none reported one.
    pub threshold: Option<f64>,
    /// At least one: `score_drop` (recent <= baseline - 0.06), `near_threshold` (recent <=
    /// threshold + 0.03).
    #[schema(min_items = 1)]
    pub reasons: Vec<ReEnrolmentReason>,
    /// The reasons in Chinese, as the operator page shows them (近四周识别分数下降；接近识别阈值).
    pub reason_zh: String,
}

/// Why re-enrolment is suggested.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReEnrolmentReason {
    ScoreDrop,
    NearThreshold,
}

impl From<crate::ageing::Reason> for ReEnrolmentReason {
    fn from(r: crate::ageing::Reason) -> Self {
        match r {
            crate::ageing::Reason::ScoreDrop => ReEnrolmentReason::ScoreDrop,
            crate::ageing::Reason::NearThreshold => ReEnrolmentReason::NearThreshold,
        }
    }
}

#[utoipa::path(
    get, path = "/canteens/{id}/re-enrolment", operation_id = "getReEnrolment", summary = "residents whose face scores here have drifted down since enrolment or come close to the kiosk's threshold: invite them to enrol again (admin, the canteen's operators; nothing is changed)", params(("id" = i64, Path, description = "the id")), responses((status = 200, description = "the residents to invite, by id", body = ReEnrolment), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// The re-enrolment prompt of the operator page, for the same audience: the administrator and
/// the canteen's operators (not its kiosk, finance or community workers).
#[tracing::instrument(skip_all, fields(canteen = %id))]
pub async fn re_enrolment(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
) -> Result<AppJson<ReEnrolment>> {
    let id = CanteenId(parse_id(&id, "id")?);
    let allowed = match &access {
        Access::Admin => true,
        Access::Kiosk(_) => false,
        Access::User(u) => matches!(u.role, Role::Admin | Role::Operator),
    };
    if !allowed {
        return Err(Error::Forbidden(
            "re-enrolment prompts are for the canteen's operators and administrators".into(),
        ));
    }
    access.require_canteen(id)?;
    let (now, tz) = (st.clock.now(), st.config.timezone);
    let found = st
        .db
        .read(move |conn| {
            db::canteens::get(conn, id)?;
            crate::ageing::suggestions(conn, id, now, tz)
        })
        .await?;
    Ok(AppJson(ReEnrolment {
        canteen_id: id.0,
        as_of: now.with_timezone(&tz).date_naive().to_string(),
        recent_from: crate::ageing::recent_from(now, tz).to_string(),
        residents: found
            .into_iter()
            .map(|s| ReEnrolmentSuggestion {
                resident_id: s.resident_id.0,
                name: s.name,
                enrolled_at: s.enrolled_at,
                baseline: s.verdict.baseline,
                recent: s.verdict.recent,
                drop: s.verdict.drop,
                baseline_meals: s.verdict.baseline_meals as i64,
                recent_meals: s.verdict.recent_meals as i64,
                threshold: s.verdict.threshold,
                reason_zh: s
                    .verdict
                    .reasons
                    .iter()
                    .map(|r| r.label_zh())
                    .collect::<Vec<_>>()
                    .join("；"),
                reasons: s.verdict.reasons.into_iter().map(Into::into).collect(),
            })
            .collect(),
    }))
}
