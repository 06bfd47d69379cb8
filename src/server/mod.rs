//! The reference backend: `zimfleet server` (docs/protocol.md is the contract it implements).
//!
//! - `settings`: [`ServerSettings`], layered from config/server.toml.
//! - `session`: one task per WebSocket connection, on the HttpServer worker that accepted it.
//! - `link`: the bounded outbox through which anyone reaches a connection.
//! - `hub`: shared state in sharded maps (users, rooms, connections), faults and counters.
//! - `scheduler`: one timer heap for room session expiry and delayed room destruction.
//! - `admin`: [`Admin`] in-process, and the /admin HTTP API with bearer auth.
//! - `cli`: `zimfleet server`.

pub mod admin;
pub mod cli;
mod hub;
mod link;
mod scheduler;
mod session;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

pub use admin::{Admin, AdminError};
pub use hub::{FaultStats, FaultTarget, Stats};
pub use settings::{DevicePolicy, ServerSettings};

use hub::Hub;
use link::CloseCmd;
use scheduler::Scheduler;

/// A running server. Drop it and the server keeps running until its System stops; call
/// [`ServerHandle::stop`] to end it.
pub struct ServerHandle {
    addr: SocketAddr,
    hub: Arc<Hub>,
    server: actix_web::dev::ServerHandle,
}

impl ServerHandle {
    /// The address the listener bound (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://ADDR`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// In-process admin and fault injection.
    pub fn admin(&self) -> Admin {
        Admin::new(Arc::clone(&self.hub))
    }

    /// Closes every session (1001) and stops the listener and workers.
    pub async fn stop(self) {
        self.hub.close_all(CloseCmd::Shutdown);
        self.hub.scheduler.stop();
        // Give sessions a moment to send their close frames before the workers go.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.server.stop(true).await;
    }
}

/// Binds and starts the server inside the caller's actix System; returns once listening.
pub async fn start(settings: ServerSettings) -> std::io::Result<ServerHandle> {
    settings
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let workers = settings.worker_count();
    let listen = settings.listen;
    let admin_on = settings.admin_token.is_some();
    let hub = Arc::new(Hub::new(settings));
    let data = web::Data::from(Arc::clone(&hub));
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/ws", web::get().to(session::ws_route));
        if admin_on {
            app.configure(admin::routes)
        } else {
            app.configure(|_| {})
        }
    })
    .workers(workers)
    // A finished response closes its connection: a WebSocket whose session ended (dropped,
    // closed) must not linger as an idle keep-alive connection.
    .keep_alive(actix_web::http::KeepAlive::Disabled)
    // A fleet reconnecting after an outage arrives as thousands of connects at once; the
    // default backlog (2048) would drop SYNs and add seconds of retry to some of them.
    .backlog(4096)
    // No lingering: once a session ends, actix-http would otherwise keep reading the peer's
    // unread input for up to this timeout (1 s by default) before it shuts the socket down, so
    // a dropped session would look alive to its client for that second. 0 = close at once.
    .client_disconnect_timeout(Duration::ZERO)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(listen)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("no address bound"))?;
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    actix_web::rt::spawn(Scheduler::run(Arc::clone(&hub)));
    tracing::info!(%addr, workers, admin = admin_on, "zimfleet server listening");
    Ok(ServerHandle {
        addr,
        hub,
        server: handle,
    })
}
