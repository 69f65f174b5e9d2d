//! `--check-responses`: the server checks every answer of `/api/v1` against its own OpenAPI
//! document: the status must be documented for the route, and a JSON body must validate against
//! the schema documented for that status (JSON Schema 2020-12, formats included). An answer that
//! does not is replaced by a 500 and logged as an ERROR naming the route and what differs.
//!
//! This is the test that the document and the code agree: it is on in every API and end-to-end
//! test and under schemathesis, so a handler that answers with another shape than its
//! annotation says, or a hand-written `Serialize` that differs from its derived schema, fails
//! the test that exercises it. Off by default: it buffers and re-parses every answer.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::openapi;

/// What the document says of one (method, route, status).
struct Expected {
    /// The schema of an `application/json` body, if one is documented.
    json: Option<Box<jsonschema::Validator>>,
    /// The other media types documented (CSV, XLSX); none and no JSON: no body (204).
    others: Vec<String>,
}

type Key = (String, String, u16);

static CHECKS: LazyLock<HashMap<Key, Expected>> = LazyLock::new(|| build(&openapi::document()));

/// Compiles a validator for every documented answer.
fn build(doc: &Value) -> HashMap<Key, Expected> {
    let mut out = HashMap::new();
    let components = doc["components"].clone();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, answer) in op["responses"].as_object().into_iter().flatten() {
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                let content = answer["content"].as_object();
                let json = content
                    .and_then(|c| c.get("application/json"))
                    .and_then(|m| m.get("schema"))
                    .map(|schema| {
                        // The schema's `$ref`s point into the document's components.
                        let root = json!({ "components": components, "allOf": [schema] });
                        let validator = jsonschema::options()
                            .with_draft(jsonschema::Draft::Draft202012)
                            .should_validate_formats(true)
                            .build(&root)
                            .unwrap_or_else(|e| {
                                panic!("the schema of {method} {path} {status} compiles: {e}")
                            });
                        Box::new(validator)
                    });
                let others = content
                    .into_iter()
                    .flat_map(|c| c.keys())
                    .filter(|m| *m != "application/json")
                    .cloned()
                    .collect();
                out.insert(
                    (method.to_uppercase(), path.clone(), status),
                    Expected { json, others },
                );
            }
        }
    }
    out
}

/// The middleware (on the `/api/v1` routes only, so the route is known).
pub async fn check(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let media = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
    let Some(expected) = CHECKS.get(&(method.clone(), route.clone(), status)) else {
        return fail(
            &method,
            &route,
            &format!("status {status} is not documented"),
        );
    };
    match (media.as_deref(), &expected.json) {
        (Some("application/json"), Some(validator)) => {
            let (parts, body) = resp.into_parts();
            let bytes = match to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) => return fail(&method, &route, &format!("body unreadable: {e}")),
            };
            let problem = match serde_json::from_slice::<Value>(&bytes) {
                Err(e) => Some(format!("body is not JSON: {e}")),
                Ok(value) => {
                    let errors: Vec<String> = validator
                        .iter_errors(&value)
                        .take(5)
                        .map(|e| format!("{} at {}", e, e.instance_path()))
                        .collect();
                    (!errors.is_empty()).then(|| format!("status {status}: {}", errors.join("; ")))
                }
            };
            match problem {
                Some(p) => fail(&method, &route, &p),
                None => Response::from_parts(parts, Body::from(bytes)),
            }
        }
        (Some(m), _) if expected.others.iter().any(|o| o == m) => resp,
        (None, None) if expected.others.is_empty() => resp,
        (m, _) => fail(
            &method,
            &route,
            &format!(
                "status {status} answered {} but the document says {}",
                m.unwrap_or("no body"),
                documented(expected)
            ),
        ),
    }
}

fn documented(e: &Expected) -> String {
    let mut all: Vec<&str> = e.others.iter().map(String::as_str).collect();
    if e.json.is_some() {
        all.insert(0, "application/json");
    }
    if all.is_empty() {
        "no body".into()
    } else {
        all.join(" or ")
    }
}

fn fail(method: &str, route: &str, problem: &str) -> Response {
    tracing::error!(%method, %route, %problem, "answer differs from the OpenAPI document");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "error": { "code": "openapi_mismatch",
            "message": format!("{method} {route}: {problem}") } })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_answer_compiles() {
        let checks = build(&openapi::document());
        assert!(checks.len() > 300, "{}", checks.len());
        let key = ("GET".to_owned(), "/api/v1/residents/{id}".to_owned(), 200);
        let Some(v) = checks.get(&key).and_then(|e| e.json.as_ref()) else {
            panic!("GET /residents/{{id}} 200 has a JSON schema");
        };
        // A resident without its masked number is not what the document promises.
        assert!(!v.is_valid(&json!({ "id": 1, "name": "某" })));
    }
}

#[cfg(test)]
mod served {
    use axum::Router;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use serde_json::{Value, json};

    /// Serves `router` behind the check on a free port and GETs `path` from it.
    async fn get_through_check(router: Router, path: &str) -> (u16, Value) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router.layer(from_fn(super::check));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let resp = reqwest::get(format!("http://{addr}{path}"))
            .await
            .expect("get");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        server.abort();
        (status, body)
    }

    #[tokio::test]
    async fn an_answer_of_another_shape_than_documented_becomes_a_500() {
        let r = Router::new().route(
            "/api/v1/residents/{id}",
            get(|| async { axum::Json(json!({ "id": 1, "name": "某" })) }),
        );
        let (status, body) = get_through_check(r, "/api/v1/residents/1").await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "openapi_mismatch");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("national_id_masked"), "{message}");
    }

    #[tokio::test]
    async fn an_undocumented_status_becomes_a_500() {
        let r = Router::new().route(
            "/api/v1/health",
            get(|| async { axum::http::StatusCode::IM_A_TEAPOT }),
        );
        let (status, body) = get_through_check(r, "/api/v1/health").await;
        assert_eq!(status, 500, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("418 is not documented")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_documented_answer_passes_unchanged() {
        let r = Router::new().route(
            "/api/v1/health",
            get(|| async { axum::Json(json!({ "status": "ok", "schema_version": 15 })) }),
        );
        let (status, body) = get_through_check(r, "/api/v1/health").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["schema_version"], 15);
    }
}
