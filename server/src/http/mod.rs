//! The HTTP JSON API under `/api/v1`: the router, shared state and middleware. Handlers live in
//! [`api`], one module per resource; they extract, call `db`/`domain`/`ingest`, and map results.
//! They never hold SQL. Every request passes [`guard`] first (size and rate limits).

pub mod api;
pub mod auth;
pub mod client;
pub mod conformance;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod guard;
pub mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The span of one request: its method and the route it matched (the template, such as
/// `/api/v1/residents/{id}`: no id, no query, nothing personal in the logs).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", axum::extract::MatchedPath::as_str);
    tracing::info_span!("request", method = %req.method(), route)
}

use crate::config::{Clock, Config};
use crate::db::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// The rate limiters of [`guard`].
    pub limits: Arc<guard::Limiters>,
}

impl AppState {
    pub fn new(db: Db, config: Config, clock: Arc<dyn Clock>) -> AppState {
        let limits = Arc::new(guard::Limiters::new(&config.security));
        AppState {
            db,
            config: Arc::new(config),
            clock,
            limits,
        }
    }
}

/// Every route of `/api/v1`, each registered with its `#[utoipa::path]` document: the one list
/// the router and [`openapi`] are both built from.
pub fn api_routes() -> OpenApiRouter<AppState> {
    use api::*;
    let v1 = OpenApiRouter::new()
        .routes(routes!(health::show))
        .routes(routes!(openapi::show))
        .routes(routes!(towns::list, towns::create))
        .routes(routes!(towns::set_district))
        .routes(routes!(towns::list_districts, towns::create_district))
        .routes(routes!(canteens::list, canteens::create))
        .routes(routes!(canteens::show))
        .routes(routes!(canteens::tally))
        .routes(routes!(canteens::re_enrolment))
        .routes(routes!(flags::put_closed_days))
        .routes(routes!(residents::list, residents::create))
        .routes(routes!(residents::show, residents::update))
        .routes(routes!(residents::national_id))
        .routes(routes!(templates::put, templates::delete))
        .routes(routes!(flags::add_absence))
        .routes(routes!(carers::link))
        .routes(routes!(carers::unlink))
        .routes(routes!(kiosks::list, kiosks::create))
        .routes(routes!(kiosks::create_code))
        .routes(routes!(kiosks::enrol))
        .routes(routes!(kiosks::revoke))
        .routes(routes!(kiosks::chain))
        .routes(routes!(kiosks::rotate))
        .routes(routes!(sync::show))
        .routes(routes!(sync::heartbeat))
        .routes(routes!(policies::list, policies::create))
        .routes(routes!(settlements::create))
        .routes(routes!(settlements::void))
        .routes(routes!(months::close))
        .routes(routes!(statements::show))
        .routes(routes!(statements::check_heads))
        .routes(routes!(flags::list))
        .routes(routes!(flags::review))
        .routes(routes!(audit::list))
        .routes(routes!(face_data::show))
        .routes(routes!(lookalikes::list))
        .routes(routes!(lookalikes::scan))
        .routes(routes!(corrections::list))
        .routes(routes!(corrections::approve))
        .routes(routes!(corrections::reject))
        .routes(routes!(spot_checks::list, spot_checks::create))
        .routes(routes!(carers::list, carers::create));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).nest("/api/v1", v1)
}

/// The `/api/v1` router and its document, built once per process from [`api_routes`].
static API: std::sync::LazyLock<(Router<AppState>, utoipa::openapi::OpenApi)> =
    std::sync::LazyLock::new(|| api_routes().split_for_parts());

/// The generated document, before [`openapi::finish`].
pub(crate) fn api_document() -> utoipa::openapi::OpenApi {
    API.1.clone()
}

pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit;
    let check = state.config.check_responses;
    let api = API.0.clone();
    let api = if check {
        api.layer(from_fn(conformance::check))
    } else {
        api
    };
    Router::new()
        .merge(api)
        .merge(dashboard::routes())
        .fallback(api::health::not_found)
        .method_not_allowed_fallback(api::health::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(state.clone(), guard::guard))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}
