//! The runner's HTTP face (actix-web; off unless `admin.listen` is set; loopback only unless
//! allowed). No authentication: keep it on loopback or behind your own proxy.
//!
//! - `GET /health`: `{"status":"ok","accounts":N,"connected":N,"uptime_secs":S}`.
//! - `GET /accounts`: every account's state, its rooms with their states, since when, and
//!   why it ended; ZIM integers with their names beside them.
//! - `GET /metrics`: Prometheus text (see [`prometheus`]).
//! - `GET /events`: a WebSocket streaming every event as one JSON text frame (the lines of
//!   `--events FILE`); see [`stream`].

pub mod prometheus;
pub mod reload;
pub mod stream;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Serialize;
use tokio::sync::watch;

use crate::client::{AccountStatus, Fleet};
use crate::runner::events::EventsCounters;

/// How long a status query of the fleet may take before the admin call answers 503.
const STATUS_DEADLINE: Duration = Duration::from_secs(5);

/// Why the admin face could not start.
#[derive(Debug, thiserror::Error)]
#[error("admin.listen {addr}: {source}")]
pub struct AdminError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// What the handlers read.
pub struct AdminState {
    pub fleet: Fleet,
    pub started: Instant,
    /// The events-file writer's counters, when `--events` is on.
    pub events_file: Option<Arc<EventsCounters>>,
    /// Events the /events subscribers lost (all of them together).
    pub stream_lost: Arc<AtomicU64>,
    /// Hot reloads (`/reload`), when the runner offers them.
    pub reload: Option<reload::ReloadDesk>,
}

/// The running admin server.
pub struct AdminServer {
    /// Where it listens (the real port when the setting said 0).
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    /// Tells open /events streams to send what is queued and close.
    stopping: watch::Sender<bool>,
}

/// Shared by the handlers.
struct Shared {
    state: AdminState,
    stopping: watch::Receiver<bool>,
}

impl AdminServer {
    /// Starts listening on `addr`. Call inside the actix system.
    pub fn start(addr: SocketAddr, state: AdminState) -> Result<AdminServer, AdminError> {
        let (stopping, stopping_rx) = watch::channel(false);
        let state = web::Data::new(Shared {
            state,
            stopping: stopping_rx,
        });
        let err = |source| AdminError { addr, source };
        let server = HttpServer::new(move || {
            // A resource answers 405 to a method it does not have; anything else is 404.
            App::new()
                .app_data(state.clone())
                .service(web::resource("/health").route(web::get().to(health)))
                .service(web::resource("/accounts").route(web::get().to(accounts)))
                .service(web::resource("/metrics").route(web::get().to(metrics)))
                .service(web::resource("/events").route(web::get().to(events)))
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
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "error": "the fleet did not answer in time"
    }))
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

/// One account in GET /accounts.
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub user_id: String,
    pub state: i32,
    pub state_name: &'static str,
    pub last_event: i32,
    pub last_event_name: &'static str,
    pub since_ms: u64,
    pub ended: Option<String>,
    pub rooms: Vec<RoomView>,
}

/// One room of an account in GET /accounts.
#[derive(Debug, Serialize)]
pub struct RoomView {
    pub room_id: String,
    pub state: i32,
    pub state_name: &'static str,
    pub last_event: i32,
    pub last_event_name: &'static str,
    pub since_ms: u64,
}

impl From<&AccountStatus> for AccountView {
    fn from(a: &AccountStatus) -> Self {
        AccountView {
            user_id: a.user_id.clone(),
            state: a.state.as_i32(),
            state_name: a.state.name(),
            last_event: a.last_event.as_i32(),
            last_event_name: a.last_event.name(),
            since_ms: a.since_ms,
            ended: a.ended.clone(),
            rooms: a
                .rooms
                .iter()
                .map(|r| RoomView {
                    room_id: r.room_id.clone(),
                    state: r.state.as_i32(),
                    state_name: r.state.name(),
                    last_event: r.last_event.as_i32(),
                    last_event_name: r.last_event.name(),
                    since_ms: r.since_ms,
                })
                .collect(),
        }
    }
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
        events_file_lost: state
            .events_file
            .as_ref()
            .map_or(0, |c| c.lost.load(Ordering::Relaxed)),
        events_stream_lost: state.stream_lost.load(Ordering::Relaxed),
        uptime_secs: state.started.elapsed().as_secs_f64(),
    };
    let text = prometheus::render(&state.fleet.metrics(), &accounts, runner);
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
    let frames = stream::event_frames(
        shared.state.fleet.subscribe(),
        payload,
        Arc::clone(&shared.state.stream_lost),
        shared.stopping.clone(),
    );
    Ok(response.streaming(frames))
}
