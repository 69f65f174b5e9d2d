//! The HTTP JSON API under `/api/v1`: the router, shared state and middleware. Handlers live in
//! [`api`], one module per resource; they extract, call `db`/`domain`/`ingest`, and map results.
//! They never hold SQL. Every request passes [`guard`] first (size and rate limits).

pub mod api;
pub mod auth;
pub mod client;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod guard;
pub mod openapi;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use tower_http::trace::TraceLayer;

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

pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit;
    let v1 = Router::new()
        .route("/health", get(api::health::show))
        .route("/openapi.json", get(openapi::show))
        .route("/towns", get(api::towns::list).post(api::towns::create))
        .route("/towns/{code}/district", put(api::towns::set_district))
        .route(
            "/districts",
            get(api::towns::list_districts).post(api::towns::create_district),
        )
        .route(
            "/canteens",
            get(api::canteens::list).post(api::canteens::create),
        )
        .route("/canteens/{id}", get(api::canteens::show))
        .route("/canteens/{id}/tally", get(api::canteens::tally))
        .route(
            "/residents",
            get(api::residents::list).post(api::residents::create),
        )
        .route(
            "/residents/{id}",
            get(api::residents::show).patch(api::residents::update),
        )
        .route(
            "/residents/{id}/national-id",
            get(api::residents::national_id),
        )
        .route(
            "/residents/{id}/templates",
            put(api::templates::put).delete(api::templates::delete),
        )
        .route("/kiosks", get(api::kiosks::list).post(api::kiosks::create))
        .route("/kiosks/enrolment-codes", post(api::kiosks::create_code))
        .route("/kiosks/enrol", post(api::kiosks::enrol))
        .route("/kiosks/{id}/revoke", post(api::kiosks::revoke))
        .route("/kiosks/{id}/chain", get(api::kiosks::chain))
        .route("/kiosk/rotate", post(api::kiosks::rotate))
        .route("/kiosk/sync", get(api::sync::show))
        .route("/kiosk/heartbeat", post(api::sync::heartbeat))
        .route(
            "/policies",
            get(api::policies::list).post(api::policies::create),
        )
        .route("/settlements", post(api::settlements::create))
        .route("/settlements/{id}/void", post(api::settlements::void))
        .route("/months/{month}/close", post(api::months::close))
        .route("/statements", get(api::statements::show))
        .route("/flags", get(api::flags::list))
        .route("/flags/review", post(api::flags::review))
        .route(
            "/canteens/{id}/closed-days",
            axum::routing::put(api::flags::put_closed_days),
        )
        .route("/residents/{id}/absences", post(api::flags::add_absence))
        .route("/integrity/heads", get(api::statements::check_heads))
        .route("/audit", get(api::audit::list))
        .route("/face-data", get(api::face_data::show))
        .route("/lookalikes", get(api::lookalikes::list))
        .route("/lookalikes/scan", post(api::lookalikes::scan))
        .route("/corrections", get(api::corrections::list))
        .route("/corrections/{id}/approve", post(api::corrections::approve))
        .route("/corrections/{id}/reject", post(api::corrections::reject))
        .route(
            "/spot-checks",
            get(api::spot_checks::list).post(api::spot_checks::create),
        )
        .route("/carers", get(api::carers::list).post(api::carers::create))
        .route("/residents/{id}/carers", post(api::carers::link))
        .route(
            "/residents/{id}/carers/{carer_id}",
            axum::routing::delete(api::carers::unlink),
        );
    Router::new()
        .nest("/api/v1", v1)
        .merge(dashboard::routes())
        .fallback(api::health::not_found)
        .method_not_allowed_fallback(api::health::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(state.clone(), guard::guard))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}
