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
//! Drift tests: `server/openapi.json` is the committed document, compared with this one by
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

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| finish(super::api_document()));
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
    optional_bodies(&mut v["paths"]);
    integer_bounds(&mut v);
    closed_benefit(&mut v["components"]["schemas"]["Benefit"]);
    cross_field_rules(&mut v["components"]["schemas"]);
    v
}

/// An `Option<T>` request body means the body may be left out, not that it may be `null`
/// (the extractor refuses a `null` body): `T`, not required.
fn optional_bodies(paths: &mut Value) {
    let bodies = paths
        .as_object_mut()
        .into_iter()
        .flat_map(|p| p.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("requestBody"));
    for body in bodies {
        let schema = &mut body["content"]["application/json"]["schema"];
        let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) else {
            continue;
        };
        let not_null: Vec<&Value> = alternatives
            .iter()
            .filter(|a| a.get("type") != Some(&json!("null")))
            .collect();
        if let [only] = not_null[..]
            && not_null.len() < alternatives.len()
        {
            *schema = only.clone();
            body["required"] = json!(false);
        }
    }
}

/// Integer formats JSON Schema does not define (`uint32`, `int16`, ...) as explicit bounds, which
/// validators and schemathesis honour; `uint64` and `int64` within the databases' 64-bit integer.
/// A tighter bound the type already states is kept.
fn integer_bounds(v: &mut Value) {
    match v {
        Value::Object(o) => {
            // (utoipa spells the unsigned formats `u-int32` and so on)
            let range = match o.get("format").and_then(Value::as_str) {
                Some("int8") => Some((i64::from(i8::MIN), i64::from(i8::MAX), false)),
                Some("int16") => Some((i64::from(i16::MIN), i64::from(i16::MAX), false)),
                Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX), true)),
                Some("int64") => Some((i64::MIN, i64::MAX, true)),
                Some("uint8" | "u-int8") => Some((0, i64::from(u8::MAX), false)),
                Some("uint16" | "u-int16") => Some((0, i64::from(u16::MAX), false)),
                Some("uint32" | "u-int32") => Some((0, i64::from(u32::MAX), false)),
                Some("uint64" | "u-int64") => Some((0, i64::MAX, false)),
                _ => None,
            };
            if let Some((lo, hi, standard)) = range {
                let lo = o
                    .get("minimum")
                    .and_then(Value::as_i64)
                    .map_or(lo, |m| m.max(lo));
                let hi = o
                    .get("maximum")
                    .and_then(Value::as_i64)
                    .map_or(hi, |m| m.min(hi));
                o.insert("minimum".into(), json!(lo));
                o.insert("maximum".into(), json!(hi));
                if !standard {
                    o.remove("format");
                }
            }
            o.values_mut().for_each(integer_bounds);
        }
        Value::Array(a) => a.iter_mut().for_each(integer_bounds),
        _ => {}
    }
}

/// `Benefit` is an externally tagged enum under `deny_unknown_fields`: each alternative is an
/// object with one key, whose object takes no other keys either (utoipa does not carry
/// `deny_unknown_fields` into enum variants).
fn closed_benefit(benefit: &mut Value) {
    for alternative in benefit["oneOf"].as_array_mut().into_iter().flatten() {
        alternative["additionalProperties"] = json!(false);
        for inner in alternative["properties"]
            .as_object_mut()
            .into_iter()
            .flat_map(|p| p.values_mut())
        {
            if inner.get("type") == Some(&json!("object")) {
                inner["additionalProperties"] = json!(false);
            }
        }
    }
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
        assert_eq!(doc["info"]["title"], "Zhucan server API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn integers_carry_their_bounds_and_optional_bodies_may_be_left_out() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        let version = &s["Policy"]["properties"]["version"];
        assert_eq!(version["maximum"], u32::MAX, "{version}");
        assert_eq!(version["minimum"], 1, "{version}");
        let seq = &s["Signed"]["properties"]["seq"];
        assert_eq!(seq["maximum"], i64::MAX, "{seq}");
        let close = &doc["paths"]["/api/v1/months/{month}/close"]["post"]["requestBody"];
        assert_eq!(close["required"], false, "{close}");
        assert!(
            close["content"]["application/json"]["schema"]["$ref"].is_string(),
            "{close}"
        );
        for alternative in s["Benefit"]["oneOf"].as_array().expect("oneOf") {
            assert_eq!(alternative["additionalProperties"], false, "{alternative}");
        }
    }
}
