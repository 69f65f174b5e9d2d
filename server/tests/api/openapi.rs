//! The OpenAPI document is generated from the code (`http::openapi`); these tests keep the
//! committed copy current and every route of `/api/v1` inside it. That every answer matches it
//! is checked by the server itself in every test (`check_responses`, `http::conformance`).

use std::path::PathBuf;

fn server_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `server/openapi.json` is the document as the code makes it, for readers and clients, and so
/// that a change to the API shows in review as a change to this file.
#[test]
fn the_committed_document_is_current() {
    let path = server_dir().join("openapi.json");
    let made = serde_json::to_string_pretty(&zhucan_server::http::openapi::document())
        .expect("serialise")
        + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &made).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == made,
        "server/openapi.json differs from the document the code makes (a route or a wire type \
         changed). Run `UPDATE_OPENAPI=1 cargo test -p zhucan-server --test api openapi` and \
         review the diff."
    );
}

/// Every handler under `http/api` carries its `#[utoipa::path]`, and the API router registers
/// handlers only through `routes!` (a plain `.route(` would serve a path the document lacks).
#[test]
fn every_api_handler_is_documented_and_registered_with_its_document() {
    let api = server_dir().join("src/http/api");
    let mut undocumented = Vec::new();
    for entry in std::fs::read_dir(&api).expect("http/api") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let name = name.split('(').next().unwrap_or(name);
            if ["not_found", "method_not_allowed"].contains(&name) {
                continue; // the fallbacks: not routes
            }
            let attrs = lines[..i]
                .iter()
                .rev()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with('}'));
            if !attrs.clone().any(|l| l.starts_with("#[utoipa::path(")) {
                undocumented.push(format!("{}: {name}", path.display()));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "handlers without #[utoipa::path]: {undocumented:?}"
    );

    let mod_rs = std::fs::read_to_string(server_dir().join("src/http/mod.rs")).expect("mod.rs");
    let start = mod_rs.find("pub fn api_routes(").expect("api_routes");
    let body = &mod_rs[start..];
    let body = &body[..body.find("\n}\n").expect("end of api_routes")];
    assert!(
        !body.contains(".route("),
        "api_routes must register handlers with routes!"
    );
    assert!(body.matches("routes!(").count() >= 40);
}
