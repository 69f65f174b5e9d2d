//! Subsidy policies: list, and add a new one (validated by `Policy::parse`, whose field error is
//! returned as is; recorded in the audit log with the policy stored).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use zhucan_domain::Policy;
use zhucan_domain::api::ErrorBody;
use zhucan_domain::api::PolicySummary;

use crate::db;
use crate::db::audit;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{Error, Result};
use crate::http::extract::{AppJson, check_depth};

#[utoipa::path(
    get, path = "/policies", operation_id = "listPolicies", summary = "list policies", responses((status = 200, description = "policies", body = Vec<zhucan_domain::api::PolicySummary>))
)]
pub async fn list(State(st): State<AppState>, _: Admin) -> Result<AppJson<Vec<PolicySummary>>> {
    Ok(AppJson(st.db.read(db::policies::summaries).await?))
}

#[utoipa::path(
    post, path = "/policies", operation_id = "createPolicy", summary = "add a policy version", request_body = zhucan_domain::Policy, responses((status = 201, description = "created", body = zhucan_domain::api::PolicySummary), (status = 409, description = "conflict with the current state", body = ErrorBody))
)]
pub async fn create(
    State(st): State<AppState>,
    Admin(access): Admin,
    body: Bytes,
) -> Result<(StatusCode, AppJson<PolicySummary>)> {
    check_depth(&body)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| Error::bad("invalid", "body", "must be UTF-8 JSON"))?
        .to_owned();
    let policy =
        Policy::parse(&text).map_err(|e| Error::bad("invalid_policy", e.field, e.reason))?;
    let now = zhucan_platform::stamp(st.clock.now());
    let p = policy.clone();
    let actor = access.actor();
    st.db
        .write(move |tx| {
            db::policies::insert(tx, &p, &text, &now)?;
            audit::append(
                tx,
                &now,
                &actor,
                "policy.create",
                &format!("policy:{}:{}", p.id, p.version),
                &json!({
                    "name": p.name,
                    "effective_from": p.effective_from,
                    "effective_to": p.effective_to,
                    "sha256": crate::crypto::sha256_hex(text.as_bytes()),
                }),
            )?;
            Ok(())
        })
        .await?;
    let document = serde_json::to_value(&policy).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        AppJson(PolicySummary {
            id: policy.id,
            version: policy.version,
            name: policy.name,
            effective_from: policy.effective_from,
            effective_to: policy.effective_to,
            document,
        }),
    ))
}
