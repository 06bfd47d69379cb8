//! The runner's HTTP face (actix-web; off unless `admin.listen` is set; loopback only unless
//! allowed): the web console, a JSON API to act as the fleet's accounts, health, Prometheus
//! metrics and the event stream. docs/admin-api.md lists every route; docs/console.md shows
//! the console.
//!
//! - `GET /`: the console (one page, every asset embedded; see [`console`]).
//! - `GET /health`: `{"status":"ok","accounts":N,"connected":N,"uptime_secs":S}`.
//! - `GET /ready`: 200 once every account is Connected and in its rooms, else 503.
//! - `GET /accounts`: every account's state, its rooms with their states, since when, and
//!   why it ended; ZIM integers with their names beside them.
//! - `GET /metrics`: Prometheus text (see [`prometheus`]).
//! - `GET /events`: a WebSocket streaming every event as one JSON text frame (the lines of
//!   `--events FILE`); see [`stream`].
//! - `/api/...`: the console's reads and the actions (see [`api`] and [`console`]).
//!
//! With `admin.token` set every path but the page shell asks for a bearer token ([`auth`]).

pub mod api;
pub mod auth;
pub mod board;
pub mod console;
pub mod feed;
pub mod prometheus;
pub mod reload;
pub mod series;
pub mod stream;
mod tracker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::future::{ready, Either, FutureExt};
use tokio::sync::watch;

use crate::client::{AccountStatus, Fleet};
use crate::protocol::Secret;

pub use board::{AccountView, RoomView};
pub use feed::Feed;

/// How long a status query of the fleet may take before the admin call answers 503.
const STATUS_DEADLINE: Duration = Duration::from_secs(5);
/// Largest JSON body an action takes.
const BODY_LIMIT: usize = 64 * 1024;

/// Why the admin face could not start.
#[derive(Debug, thiserror::Error)]
#[error("admin.listen {addr}: {source}")]
pub struct AdminError {
    /// The address it could not listen on.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Reads a counter kept elsewhere (the events file's losses).
pub type CounterFn = Box<dyn Fn() -> u64 + Send + Sync>;

/// What the handlers read.
pub struct AdminState {
    /// The fleet the face shows and acts on.
    pub fleet: Fleet,
    /// When the run started.
    pub started: Instant,
    /// Events the events file lost, when `--events` is on.
    pub events_file_lost: Option<CounterFn>,
    /// Events the /events subscribers lost (all of them together).
    pub stream_lost: Arc<AtomicU64>,
    /// The messages the fleet's accounts receive (wrap each bot with [`Feed::tap`]).
    pub feed: Arc<Feed>,
    /// `admin.token`: empty = none.
    pub token: Secret,
    /// Hot reloads (`/reload`), when the runner offers them.
    pub reload: Option<reload::ReloadDesk>,
}

/// The running admin server.
pub struct AdminServer {
    /// Where it listens (the real port when the setting said 0).
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    /// Tells open /events streams and the face's own tasks to finish.
    stopping: watch::Sender<bool>,
}

/// Shared by the handlers.
pub(crate) struct Shared {
    state: AdminState,
    stopping: watch::Receiver<bool>,
    guard: auth::Guard,
    board: Mutex<board::Board>,
    /// Events the board lost to lag (it was rebuilt after each loss).
    board_lost: AtomicU64,
    series: Mutex<series::Series>,
}

impl AdminServer {
    /// Starts listening on `addr`. Call inside the actix system.
    pub fn start(addr: SocketAddr, state: AdminState) -> Result<AdminServer, AdminError> {
        let (stopping, stopping_rx) = watch::channel(false);
        let guard = auth::Guard::new(&state.token, addr.ip().is_loopback());
        let shared = web::Data::new(Shared {
            state,
            stopping: stopping_rx,
            guard,
            board: Mutex::new(board::Board::default()),
            board_lost: AtomicU64::new(0),
            series: Mutex::new(series::Series::default()),
        });
        tracker::spawn(shared.clone().into_inner());
        let err = |source| AdminError { addr, source };
        let server = HttpServer::new(move || {
            // A resource answers 405 to a method it does not have; anything else is 404.
            App::new()
                .app_data(shared.clone())
                .app_data(api::json_config(BODY_LIMIT))
                .wrap_fn(guarded)
                .service(web::resource("/").route(web::get().to(console::page)))
                .service(web::resource("/health").route(web::get().to(health)))
                .service(web::resource("/accounts").route(web::get().to(accounts)))
                .service(web::resource("/metrics").route(web::get().to(metrics)))
                .service(web::resource("/events").route(web::get().to(events)))
                .configure(console::routes)
                .configure(api::routes)
                .configure(reload::routes)
                .default_service(web::to(not_found))
        })
        .workers(1)
        // The runner handles SIGINT/SIGTERM itself (leave rooms, log out, then exit).
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)
        .map_err(err)?;
        let bound = server.addrs().first().copied().unwrap_or(addr);
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(AdminServer {
            addr: bound,
            handle,
            stopping,
        })
    }

    /// Stops listening and ends open /events streams.
    pub async fn stop(self) {
        let _ = self.stopping.send(true);
        self.handle.stop(true).await;
    }
}

/// Runs the guard before every handler; a refusal answers its status and message.
fn guarded<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let verdict = match req.app_data::<web::Data<Shared>>() {
        Some(shared) => {
            let ticket = (req.path() == "/events")
                .then(|| query_value(req.query_string(), "ticket"))
                .flatten();
            shared.guard.check(auth::Ask {
                action: req.method() == actix_web::http::Method::POST,
                path: req.path(),
                authorization: req
                    .headers()
                    .get(actix_web::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
                ticket: ticket.as_deref(),
            })
        }
        None => Ok(()),
    };
    match verdict {
        Ok(()) => Either::Left(srv.call(req).map(|r| r.map(|r| r.map_into_left_body()))),
        Err(refusal) => {
            let mut response = error(refusal.status(), &refusal.to_string());
            if refusal.status() == 401 {
                response.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    actix_web::http::header::HeaderValue::from_static("Bearer realm=\"zimfleet\""),
                );
            }
            Either::Right(ready(Ok(req.into_response(response).map_into_right_body())))
        }
    }
}

/// The value of `key` in a query string (no percent-decoding: tickets are plain letters).
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// A JSON error answer: `{"error": message}` with `status`.
pub(crate) fn error(status: u16, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": "no such endpoint; the admin face has GET /health, /accounts, /metrics and /events"
    }))
}

async fn status(state: &AdminState) -> Option<Vec<AccountStatus>> {
    tokio::time::timeout(STATUS_DEADLINE, state.fleet.status())
        .await
        .ok()
}

fn unavailable() -> HttpResponse {
    error(503, "the fleet did not answer in time")
}

async fn health(shared: web::Data<Shared>) -> HttpResponse {
    let state = &shared.state;
    let Some(accounts) = status(state).await else {
        return unavailable();
    };
    let connected = accounts
        .iter()
        .filter(|a| a.state == crate::protocol::ConnectionState::Connected)
        .count();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "accounts": accounts.len(),
        "connected": connected,
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
}

async fn accounts(shared: web::Data<Shared>) -> HttpResponse {
    let state = &shared.state;
    let Some(accounts) = status(state).await else {
        return unavailable();
    };
    let views: Vec<AccountView> = accounts.iter().map(AccountView::from).collect();
    HttpResponse::Ok().json(serde_json::json!({ "accounts": views }))
}

async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    let state = &shared.state;
    let Some(accounts) = status(state).await else {
        return unavailable();
    };
    let runner = prometheus::RunnerCounts {
        events_file_lost: state.events_file_lost.as_ref().map_or(0, |lost| lost()),
        events_stream_lost: state.stream_lost.load(Ordering::Relaxed),
        uptime_secs: state.started.elapsed().as_secs_f64(),
    };
    let mut text = prometheus::render(&state.fleet.metrics(), &accounts, runner);
    // The webhook bots' delivery counters (docs/bots.md, "Webhook bots").
    text.push_str(&crate::bot::webhook::metrics::prometheus_text(
        crate::bot::webhook::metrics::totals(),
    ));
    HttpResponse::Ok()
        .content_type(prometheus::CONTENT_TYPE)
        .body(text)
}

async fn events(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, actix_web::Error> {
    let mut response = actix_web_actors::ws::handshake(&req)?;
    let messages = query_value(req.query_string(), "messages")
        .is_some_and(|v| v == "true")
        .then(|| shared.state.feed.subscribe());
    let frames = stream::event_frames(
        shared.state.fleet.subscribe(),
        messages,
        payload,
        Arc::clone(&shared.state.stream_lost),
        shared.stopping.clone(),
    );
    Ok(response.streaming(frames))
}
