//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the API, generated from the code.
//!
//! - Paths and operations come from the `#[utoipa::path]` annotation on each handler in
//!   [`super::api`]. [`super::api_routes`] registers every handler with `utoipa_axum::routes!`,
//!   so a route cannot be served without being documented, nor documented without being served.
//! - Schemas come from `utoipa::ToSchema`, derived on the wire types in `zhucan_domain::api`
//!   (feature `openapi`): a field added, renamed or retyped there changes the document.
//! - [`finish`] adds what applies to every operation alike (the bearer scheme, the error
//!   answers the guard and the extractors give) and the two cross-field rules JSON Schema can
//!   say but a derive cannot (`if`/`then` on `ResidentUpdate` and `SettlementItem`).
//!
//! Drift tests: `docs/openapi.json` is the committed document, compared with this one by
//! `openapi::the_committed_document_is_current`; with `--check-responses` (on in every API and
//! end-to-end test, and under schemathesis) the server checks each JSON answer against it
//! ([`super::conformance`]).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// The document's fixed parts; the paths are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Zhucan server API",
        description = "Subsidised meals at elder canteens (老年食堂). Money is integer fen."
    ),
    servers((url = "/")),
    components(schemas(zhucan_domain::api::ErrorBody))
)]
pub struct ApiDoc;

/// Operations anyone may call: no bearer token.
const PUBLIC: [&str; 3] = ["health", "openapi", "enrolKiosk"];

/// The whole document.
pub fn document() -> Value {
    DOCUMENT.clone()
}

static DOCUMENT: LazyLock<Value> =
    LazyLock::new(|| finish(super::api_routes().split_for_parts().1));
static DOCUMENT_TEXT: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&*DOCUMENT).expect("the OpenAPI document serialises"));

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    summary = "this document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
pub async fn show() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_TEXT.as_str(),
    )
}

fn error_ref() -> Value {
    let name = <zhucan_domain::api::ErrorBody as utoipa::ToSchema>::name();
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn error_answer(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": error_ref() } } })
}

/// The answers every operation may give besides its own: (status, description, needs a token).
const COMMON_ERRORS: [(&str, &str, bool); 8] = [
    ("400", "bad input; `error.field` names the field", true),
    ("401", "missing or wrong bearer token", true),
    ("403", "the token may not do this", true),
    (
        "413",
        "request body over the size limit (the message names it)",
        false,
    ),
    ("414", "URL over the length limit", false),
    (
        "429",
        "rate limited; retry after the `Retry-After` seconds",
        false,
    ),
    ("431", "request headers over the size limit", false),
    (
        "500",
        "internal error (detail only in the server log)",
        false,
    ),
];

/// Adds what is the same for every operation, and the cross-field rules.
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut v = serde_json::to_value(doc).expect("the OpenAPI document serialises");
    v["components"]["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer",
        "description": "the administrator's token, a dashboard user's token, or a kiosk's token" } });
    if let Some(paths) = v["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(Value::as_object_mut)
        {
            let public = op
                .get("operationId")
                .and_then(Value::as_str)
                .is_some_and(|id| PUBLIC.contains(&id));
            op.insert(
                "security".into(),
                if public {
                    json!([])
                } else {
                    json!([{ "bearer": [] }])
                },
            );
            let responses = op
                .entry("responses")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(responses) = responses.as_object_mut() {
                for (code, desc, with_token) in COMMON_ERRORS {
                    if with_token && public {
                        continue;
                    }
                    responses.entry(code).or_insert_with(|| error_answer(desc));
                }
            }
        }
    }
    cross_field_rules(&mut v["components"]["schemas"]);
    v
}

/// Rules between fields of one body, which the server checks and a derive cannot state.
fn cross_field_rules(schemas: &mut Value) {
    let date = json!({ "type": "string", "format": "date" });
    schemas["ResidentUpdate"]["description"] =
        json!("`deceased_on` alone means deceased; status deceased needs deceased_on");
    schemas["ResidentUpdate"]["allOf"] = json!([
        { "if": { "required": ["status"], "properties": { "status": { "enum": ["active", "suspended"] } } },
          "then": { "properties": { "deceased_on": { "type": "null" } } } },
        { "if": { "required": ["status"], "properties": { "status": { "const": "deceased" } } },
          "then": { "required": ["deceased_on"], "properties": { "deceased_on": date } } }
    ]);
    schemas["SettlementItem"]["allOf"] = json!([
        { "if": { "required": ["method"], "properties": { "method": { "const": "face" } } },
          "then": { "required": ["match_score", "liveness_score"],
            "properties": { "match_score": { "type": "number" }, "liveness_score": { "type": "number" } } } },
        { "if": { "required": ["method"], "properties": { "method": { "const": "staff" } } },
          "then": { "required": ["staff_reason"],
            "properties": { "staff_reason": { "type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S" } } } }
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_id_a_summary_and_its_security() {
        let doc = document();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (method, op) in item.as_object().expect("item") {
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                assert!(op["summary"].is_string(), "{method} {path}: no summary");
                assert!(op["responses"]["500"].is_object(), "{method} {path}");
                let public = PUBLIC.contains(&id);
                assert_eq!(
                    op["security"].as_array().expect("security").is_empty(),
                    public
                );
            }
        }
        assert!(ids.len() >= 50, "{}", ids.len());
    }
}
