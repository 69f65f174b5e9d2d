//! The elder-facing screen: a local web page served by the kiosk on 127.0.0.1 and shown full-screen
//! in a browser at the counter.
//!
//! The page (`index.html`, `kiosk.css`, `kiosk.js`, embedded with `include_str!`, no build step, no
//! external fetches) renders the runtime's [`ScreenState`] — pushed over Server-Sent Events on every
//! change, with polling of `/api/state` as a fallback — and sends [`Command`]s back for card
//! check-in and the operator functions. This module only translates HTTP to the contract in
//! [`crate::screen`]; it knows nothing about faces, the store or sync.
//!
//! Routes:
//! - `GET /`, `/kiosk.css`, `/kiosk.js` — the page.
//! - `GET /api/state` — the current [`ScreenState`] as JSON.
//! - `GET /api/events` — SSE, one `state` event with the whole state on connect and on every change.
//! - `GET /api/preview.jpg` — the latest camera frame (204 when there is none).
//! - `POST /api/counter/order {price, delivered}` — the counter's order (price in fen of what
//!   was taken, delivery) for the next check-in; `{}` clears it.
//! - `POST /api/checkin/card {code}`, `POST /api/checkin/staff {pin, resident_id, reason}`,
//!   `POST /api/operator/search {pin, query}`,
//!   `POST /api/operator/enrol {pin, resident_id, consent_face, consent_sharing}`,
//!   `POST /api/operator/unenrol {pin, resident_id}`,
//!   `POST /api/operator/enrol/confirm-duplicate {pin, resident_id, other_resident_id, reason}` —
//!   each forwards one [`Command`] and returns its reply as JSON; errors are
//!   `{"error": {"field", "message"}}` with a 4xx (or 503/504 when the runtime is not answering).
//!   An enrolment the server refused as another resident's face answers 409 with
//!   `"code": "duplicate_face"` and `"duplicate_of": {resident_id, name}`: the operator may then
//!   confirm it with a reason (the held capture is sent again).
//!
//! Speech: the page speaks results with the browser's `speechSynthesis` (zh-CN). Chromium only lets
//! a page speak without a prior tap when started with `--autoplay-policy=no-user-gesture-required`,
//! which the kiosk's browser launch should pass (with `--kiosk`).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use tokio::sync::{mpsc, watch};

use crate::screen::{Command, Preview, ScreenState};

mod commands;
mod input;

use commands::*;
use input::Error;

const INDEX_HTML: &str = include_str!("index.html");
const KIOSK_CSS: &str = include_str!("kiosk.css");
const KIOSK_JS: &str = include_str!("kiosk.js");

/// How long a command may take before the page is told the kiosk is not answering. Enrolment
/// captures several live frames, so it gets longer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const ENROL_TIMEOUT: Duration = Duration::from_secs(45);

/// The address the screen binds to by default: loopback only, never the canteen's network.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8090);

#[derive(Clone)]
struct AppState {
    screen: watch::Receiver<ScreenState>,
    commands: mpsc::Sender<Command>,
    preview: Preview,
}

/// Set by [`serve`] when shutting down, so open SSE streams end and graceful shutdown can finish.
#[derive(Clone)]
struct Closing(watch::Receiver<bool>);

/// The screen's routes over the runtime's state channel, command channel and preview slot.
pub fn router(
    state: watch::Receiver<ScreenState>,
    commands: mpsc::Sender<Command>,
    preview: Preview,
) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/kiosk.css", get(css))
        .route("/kiosk.js", get(js))
        .route("/api/state", get(current_state))
        .route("/api/events", get(events))
        .route("/api/preview.jpg", get(preview_jpg))
        .route("/api/checkin/card", post(checkin_card))
        .route("/api/counter/order", post(counter_order))
        .route("/api/checkin/staff", post(checkin_staff))
        .route("/api/operator/search", post(operator_search))
        .route("/api/operator/enrol", post(operator_enrol))
        .route("/api/operator/unenrol", post(operator_unenrol))
        .route(
            "/api/operator/enrol/confirm-duplicate",
            post(operator_confirm_duplicate),
        )
        .with_state(AppState {
            screen: state,
            commands,
            preview,
        })
}

/// Binds the screen's default address ([`DEFAULT_ADDR`], loopback only).
pub async fn bind_default() -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(DEFAULT_ADDR).await
}

/// Serves `router` on `listener` until `shutdown` completes; open event streams are ended then, so
/// this returns promptly.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing_tx, closing_rx) = watch::channel(false);
    let bound = listener.local_addr()?.ip();
    let app = router
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| same_host(bound, req, next),
        ))
        .layer(Extension(Closing(closing_rx)));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = closing_tx.send(true);
        })
        .await
}

/// Refuses a request whose `Host` is not this screen's own address (loopback or the address it
/// is bound to). A web page elsewhere cannot reach the screen by pointing its own domain at
/// 127.0.0.1 (DNS rebinding): the browser sends that domain as `Host`.
async fn same_host(
    bound: std::net::IpAddr,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if host_is_local(host, bound) {
        next.run(req).await
    } else {
        Error {
            status: StatusCode::FORBIDDEN,
            field: Some("host".into()),
            message: "只接受本机地址的请求 / only requests to this kiosk's own address".into(),
        }
        .into_response()
    }
}

fn host_is_local(host: &str, bound: std::net::IpAddr) -> bool {
    // "127.0.0.1:8090", "localhost:8090", "[::1]:8090", or without the port
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip == bound)
}

// ---------------------------------------------------------------- static page

async fn index() -> impl IntoResponse {
    static_file("text/html; charset=utf-8", INDEX_HTML)
}

async fn css() -> impl IntoResponse {
    static_file("text/css; charset=utf-8", KIOSK_CSS)
}

async fn js() -> impl IntoResponse {
    static_file("text/javascript; charset=utf-8", KIOSK_JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------- state, events, preview

async fn current_state(State(app): State<AppState>) -> Json<ScreenState> {
    Json(app.screen.borrow().clone())
}

async fn events(
    State(app): State<AppState>,
    closing: Option<Extension<Closing>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, axum::Error>>> {
    let closing = closing.map(|Extension(c)| c.0);
    let mut screen = app.screen.clone();
    screen.mark_changed(); // the first poll sends the current state at once
    let stream =
        futures_util::stream::unfold((screen, closing), |(mut screen, mut closing)| async move {
            tokio::select! {
                changed = screen.changed() => changed.ok()?,
                () = closed(&mut closing) => return None,
            }
            let state = screen.borrow_and_update().clone();
            let event = Event::default().event("state").json_data(&state);
            Some((event, (screen, closing)))
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// Completes when the server is shutting down; never when it was not started through [`serve`].
async fn closed(closing: &mut Option<watch::Receiver<bool>>) {
    match closing {
        Some(rx) => {
            let _ = rx.wait_for(|c| *c).await;
        }
        None => std::future::pending().await,
    }
}

async fn preview_jpg(State(app): State<AppState>) -> Response {
    match app.preview.get() {
        Some(jpeg) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            jpeg,
        )
            .into_response(),
        None => (
            StatusCode::NO_CONTENT,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        )
            .into_response(),
    }
}
