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

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};
use zhucan_domain::{Fen, ResidentId};

use crate::screen::{Command, EnrolError, Order, Preview, ScreenState};

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

// ---------------------------------------------------------------- commands

#[derive(Deserialize)]
struct CardRequest {
    code: String,
    /// 代取: with a carer's card, the resident whose meal the carer collects.
    #[serde(default)]
    resident_id: Option<ResidentId>,
}

#[derive(Deserialize)]
struct StaffRequest {
    pin: String,
    resident_id: ResidentId,
    reason: String,
}

#[derive(Deserialize)]
struct SearchRequest {
    pin: String,
    query: String,
}

#[derive(Deserialize)]
struct EnrolRequest {
    pin: String,
    resident_id: ResidentId,
    consent_face: bool,
    #[serde(default)]
    consent_sharing: bool,
}

#[derive(Deserialize)]
struct ConfirmDuplicateRequest {
    pin: String,
    resident_id: ResidentId,
    other_resident_id: ResidentId,
    reason: String,
}

#[derive(Deserialize)]
struct UnenrolRequest {
    pin: String,
    resident_id: ResidentId,
}

/// `POST /api/counter/order {price, delivered}`: what the counter rang up for the next
/// check-in (price in fen; absent: the slot's set price). `{}` with neither clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    #[serde(default)]
    price: Option<i64>,
    #[serde(default)]
    delivered: bool,
}

async fn counter_order(
    State(app): State<AppState>,
    AppJson(req): AppJson<OrderRequest>,
) -> Result<Response, Error> {
    if req.price.is_some_and(|p| p < 0) {
        return Err(Error {
            status: StatusCode::BAD_REQUEST,
            field: Some("price".into()),
            message: "餐费不能为负 / the price must not be negative".into(),
        });
    }
    let order = (req.price.is_some() || req.delivered).then_some(Order {
        price: req.price.map(Fen),
        delivered: req.delivered,
    });
    let set = ask(&app, REPLY_TIMEOUT, "price", |reply| Command::Order {
        order,
        reply,
    })
    .await?;
    Ok(Json(set).into_response())
}

async fn checkin_card(
    State(app): State<AppState>,
    AppJson(req): AppJson<CardRequest>,
) -> Result<Response, Error> {
    let code = required(
        "code",
        &req.code,
        64,
        "请刷卡或输入卡号",
        "Card code is empty",
    )?;
    // a carer's card (代取): the residents to choose from, or the chosen one's meal
    let carer = ask(&app, REPLY_TIMEOUT, "code", |reply| Command::Carer {
        code: code.clone(),
        resident_id: req.resident_id,
        reply,
    })
    .await?;
    if let Some(answer) = carer {
        return Ok(Json(answer).into_response());
    }
    let view = ask(&app, REPLY_TIMEOUT, "code", |reply| Command::Card {
        code,
        reply,
    })
    .await?;
    Ok(Json(view).into_response())
}

async fn checkin_staff(
    State(app): State<AppState>,
    AppJson(req): AppJson<StaffRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let reason = required(
        "reason",
        &req.reason,
        200,
        "请填写原因",
        "A reason is required",
    )?;
    let resident_id = req.resident_id;
    let view = ask(&app, REPLY_TIMEOUT, "resident_id", |reply| Command::Staff {
        pin,
        resident_id,
        reason,
        reply,
    })
    .await?;
    Ok(Json(view).into_response())
}

async fn operator_search(
    State(app): State<AppState>,
    AppJson(req): AppJson<SearchRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let query = required(
        "query",
        &req.query,
        64,
        "请输入姓名或卡号",
        "Enter a name or card code",
    )?;
    let hits = ask(&app, REPLY_TIMEOUT, "query", |reply| Command::Search {
        pin,
        query,
        reply,
    })
    .await?;
    Ok(Json(hits).into_response())
}

async fn operator_enrol(
    State(app): State<AppState>,
    AppJson(req): AppJson<EnrolRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    if !req.consent_face {
        return Err(Error::invalid(
            "consent_face",
            "老人未同意采集人脸，不能录入 / Face enrolment needs the resident's consent",
        ));
    }
    let (resident_id, consent_sharing) = (req.resident_id, req.consent_sharing);
    let answer = send(&app, ENROL_TIMEOUT, |reply| Command::Enrol {
        pin,
        resident_id,
        consent_face: true,
        consent_sharing,
        reply,
    })
    .await?;
    enrolled(answer)
}

async fn operator_confirm_duplicate(
    State(app): State<AppState>,
    AppJson(req): AppJson<ConfirmDuplicateRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let reason = required(
        "reason",
        &req.reason,
        200,
        "请填写为何不是同一人",
        "Say why they are two people",
    )?;
    let (resident_id, other_resident_id) = (req.resident_id, req.other_resident_id);
    let answer = send(&app, ENROL_TIMEOUT, |reply| Command::ConfirmDuplicate {
        pin,
        resident_id,
        other_resident_id,
        reason,
        reply,
    })
    .await?;
    enrolled(answer)
}

/// The page's answer to an enrolment: the templates stored, a refusal, or 409 `duplicate_face`
/// naming the other resident.
fn enrolled(answer: Result<u32, EnrolError>) -> Result<Response, Error> {
    match answer {
        Ok(templates) => Ok(Json(serde_json::json!({ "templates": templates })).into_response()),
        Err(EnrolError::Failed(message)) => Err(refusal(message, "resident_id")),
        Err(EnrolError::Duplicate {
            other_resident_id,
            other_name,
            message,
        }) => Ok((
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": {
                "code": "duplicate_face",
                "field": "resident_id",
                "message": message,
                "duplicate_of": { "resident_id": other_resident_id, "name": other_name },
            } })),
        )
            .into_response()),
    }
}

async fn operator_unenrol(
    State(app): State<AppState>,
    AppJson(req): AppJson<UnenrolRequest>,
) -> Result<Response, Error> {
    let pin = pin(&req.pin)?;
    let resident_id = req.resident_id;
    ask(&app, REPLY_TIMEOUT, "resident_id", |reply| {
        Command::Unenrol {
            pin,
            resident_id,
            reply,
        }
    })
    .await?;
    Ok(Json(serde_json::json!({ "ok": true })).into_response())
}

/// A trimmed, non-empty value of at most `max` characters.
fn required(
    field: &'static str,
    value: &str,
    max: usize,
    empty_zh: &str,
    empty_en: &str,
) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(field, format!("{empty_zh} / {empty_en}")));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("太长 / Longer than {max} characters"),
        ));
    }
    Ok(value.to_string())
}

fn pin(value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.len() > 12 || !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(
            "pin",
            "请输入工作人员密码 / Enter the staff PIN",
        ));
    }
    Ok(value.to_string())
}

/// Sends one command and waits for its reply. A refusal from the runtime (`Err(String)`) becomes a
/// 4xx naming `field` — or `pin` with 403 when the runtime's message is about the PIN, since the
/// contract carries refusals as plain text.
async fn ask<T>(
    app: &AppState,
    timeout: Duration,
    field: &'static str,
    command: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T, Error> {
    send(app, timeout, command)
        .await?
        .map_err(|message| refusal(message, field))
}

/// A refusal from the runtime as a 4xx naming `field`, or `pin` with 403 when the message is
/// about the PIN.
fn refusal(message: String, field: &'static str) -> Error {
    let about_pin = message.to_lowercase().contains("pin") || message.contains("密码");
    Error {
        status: if about_pin {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        field: Some(if about_pin { "pin" } else { field }.to_string()),
        message,
    }
}

/// Sends one command and waits for its reply, whatever its type.
async fn send<R>(
    app: &AppState,
    timeout: Duration,
    command: impl FnOnce(oneshot::Sender<R>) -> Command,
) -> Result<R, Error> {
    let (reply, answer) = oneshot::channel();
    app.commands
        .send(command(reply))
        .await
        .map_err(|_| Error::unavailable())?;
    match tokio::time::timeout(timeout, answer).await {
        Err(_) => Err(Error {
            status: StatusCode::GATEWAY_TIMEOUT,
            field: None,
            message: "本机没有及时响应，请重试 / The kiosk did not answer in time".into(),
        }),
        Ok(Err(_)) => Err(Error::unavailable()),
        Ok(Ok(value)) => Ok(value),
    }
}

// ---------------------------------------------------------------- errors and JSON input

/// An error for the page: a status and `{"error": {"field", "message"}}`.
#[derive(Debug)]
pub struct Error {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl Error {
    fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    fn unavailable() -> Error {
        Error {
            status: StatusCode::SERVICE_UNAVAILABLE,
            field: None,
            message: "本机程序未运行，请找工作人员 / The kiosk runtime is not running".into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "field": self.field, "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}

/// `Json` whose rejection is our error shape, naming the offending field when serde can.
struct AppJson<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // JSON only: a page elsewhere can post text/plain or a form to 127.0.0.1 without the
        // browser asking first (no CORS preflight); application/json it cannot.
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Error {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                field: Some("content-type".into()),
                message: "请求须为 application/json / the body must be application/json".into(),
            });
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Error {
                status: StatusCode::BAD_REQUEST,
                field: None,
                message: e.body_text(),
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(AppJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // "missing field `code`" has the field in the message, not the path
                let field = if path == "." {
                    missing_field(&inner.to_string())
                } else {
                    Some(path)
                };
                Error {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    field,
                    message: inner.to_string(),
                }
            })
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}
