//! Audit red flags: `GET /flags` (finance, administrators), `POST /flags/review` (explain, or
//! confirm and withhold), and the calendars the flags compare meals with: a canteen's closed days
//! and a resident's absences.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::{
    AbsenceCreated, ClosedDays, Flag, FlagDecision, FlagReviewed, NewAbsence,
};
use zhucan_domain::{CanteenId, ResidentId};

use crate::db::{self, audit, users::Role};
use crate::flags;
use crate::http::AppState;
use crate::http::api::{parse_id, required};
use crate::http::auth::Access;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, AppQuery};
use crate::period::parse_month;

/// Finance and administrators review flags and keep the calendars.
fn finance_or_admin(access: &Access) -> Result<()> {
    let ok = match access {
        Access::Admin => true,
        Access::Kiosk(_) => false,
        Access::User(u) => matches!(u.role, Role::Admin | Role::Finance),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "red flags are for finance and administrators".into(),
        ))
    }
}

fn valid_month(month: &str) -> Result<()> {
    if parse_month(month).is_none() {
        return Err(Error::bad("invalid", "month", "must be YYYY-MM"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlagsQuery {
    /// `YYYY-MM`.
    #[param(pattern = "^2[0-9]{3}-(0[1-9]|1[0-2])$")]
    month: String,
    /// Only this canteen's flags.
    canteen: Option<i64>,
}

#[utoipa::path(
    get, path = "/flags", operation_id = "listFlags", summary = "the month's audit red flags, most severe first, with the evidence and any review (finance, admin)", params(FlagsQuery), responses((status = 200, description = "flags", body = Vec<zhucan_domain::api::Flag>))
)]
#[tracing::instrument(skip_all, fields(month = %q.month))]
pub async fn list(
    State(st): State<AppState>,
    access: Access,
    AppQuery(q): AppQuery<FlagsQuery>,
) -> Result<AppJson<Vec<Flag>>> {
    finance_or_admin(&access)?;
    valid_month(&q.month)?;
    let rules = st.config.security.flags;
    let canteen = q.canteen.map(CanteenId);
    let flags = st
        .db
        .read(move |c| flags::compute(c, &q.month, canteen, &rules))
        .await?;
    Ok(AppJson(flags))
}

#[utoipa::path(
    post, path = "/flags/review", operation_id = "reviewFlag", summary = "explain a flag, or confirm it and withhold its meals' subsidy (finance, admin; open months)", request_body = zhucan_domain::api::FlagDecision, responses((status = 200, description = "reviewed", body = zhucan_domain::api::FlagReviewed), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
/// Decides one flag: `confirmed` withholds its meals' subsidy, `explained` lets them stand.
pub async fn review(
    State(st): State<AppState>,
    access: Access,
    AppJson(d): AppJson<FlagDecision>,
) -> Result<AppJson<FlagReviewed>> {
    finance_or_admin(&access)?;
    valid_month(&d.month)?;
    if !["explained", "confirmed"].contains(&d.state.as_str()) {
        return Err(Error::bad(
            "invalid",
            "state",
            "must be explained or confirmed",
        ));
    }
    let note = required(&d.note, "note", 500)?;
    let rules = st.config.security.flags;
    let at = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let decision = flags::Decision {
        month: d.month.clone(),
        key: d.key.clone(),
        state: d.state.clone(),
        note,
    };
    let out = st
        .db
        .write(move |tx| {
            // the flag as it stands now, in the same transaction as the decision
            let (flag, done) = flags::review_by_key(tx, &decision, &actor, &at, &rules)?;
            Ok(FlagReviewed {
                flag,
                withheld_meals: done.withheld as u64,
                withheld: done.withheld_fen,
                released_meals: done.released as u64,
            })
        })
        .await?;
    Ok(AppJson(out))
}

#[utoipa::path(
    put, path = "/canteens/{id}/closed-days", operation_id = "putClosedDays", summary = "record days the canteen does not open (finance, admin)", params(("id" = i64, Path, description = "the id")), request_body = zhucan_domain::api::ClosedDays, responses((status = 204, description = "recorded"), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// Records days a canteen does not open; meals on them are flagged.
pub async fn put_closed_days(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    AppJson(b): AppJson<ClosedDays>,
) -> Result<StatusCode> {
    finance_or_admin(&access)?;
    let id = parse_id(&id, "id")?;
    let reason = required(&b.reason, "reason", 200)?;
    if b.dates.is_empty() || b.dates.len() > 366 {
        return Err(Error::bad("invalid", "dates", "1 to 366 dates"));
    }
    let at = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    st.db
        .write(move |tx| {
            for d in &b.dates {
                db::flags::close_day(tx, CanteenId(id), &d.to_string(), &reason)?;
            }
            audit::append(
                tx,
                &at,
                &actor,
                "canteen.closed_days",
                &format!("canteen:{id}"),
                &json!({ "dates": b.dates, "reason": reason }),
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/residents/{id}/absences", operation_id = "addAbsence", summary = "record that a resident is away (community, finance, admin)", params(("id" = i64, Path, description = "the id")), request_body = zhucan_domain::api::NewAbsence, responses((status = 201, description = "recorded", body = zhucan_domain::api::AbsenceCreated), (status = 404, description = "no such resource", body = ErrorBody))
)]
/// Records that a resident is away; their meals in the period are flagged.
pub async fn add_absence(
    State(st): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    AppJson(b): AppJson<NewAbsence>,
) -> Result<(StatusCode, AppJson<AbsenceCreated>)> {
    let id = parse_id(&id, "id")?;
    let may = match &access {
        Access::Admin => true,
        Access::Kiosk(_) => false,
        Access::User(u) => matches!(u.role, Role::Admin | Role::Finance | Role::Community),
    };
    if !may {
        return Err(Error::Forbidden(
            "absences are recorded by community workers, finance and administrators".into(),
        ));
    }
    if b.to < b.from {
        return Err(Error::bad("invalid", "to", "must not be before from"));
    }
    let reason = required(&b.reason, "reason", 200)?;
    let at = zhucan_platform::stamp(st.clock.now());
    let actor = access.actor();
    let town = match &access {
        Access::User(u) if u.role == Role::Community => u.town.clone(),
        _ => None,
    };
    let created = st
        .db
        .write(move |tx| {
            if let Some(town) = &town {
                let r = db::residents::get(tx, ResidentId(id))?;
                if &r.residence_town.0 != town {
                    return Err(db::Error::Forbidden(
                        "a community worker records absences of their own town's residents".into(),
                    ));
                }
            }
            let aid = db::flags::add_absence(
                tx,
                ResidentId(id),
                &b.from.to_string(),
                &b.to.to_string(),
                &reason,
                &at,
                &actor.name,
            )?;
            audit::append(
                tx,
                &at,
                &actor,
                "resident.absence",
                &format!("resident:{id}"),
                &json!({ "from": b.from, "to": b.to, "reason": reason }),
            )?;
            Ok(aid)
        })
        .await?;
    Ok((StatusCode::CREATED, AppJson(AbsenceCreated { id: created })))
}
