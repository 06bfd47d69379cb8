//! The reference backend: `zimfleet server` (docs/protocol.md is the contract it implements).
//!
//! - `settings`: [`ServerSettings`], layered from config/server.toml.
//! - `session`: one task per WebSocket connection, on the worker that accepted it.
//! - `transport`: the lean WebSocket reader and writer a session owns after the handshake,
//!   over plain TCP or TLS (`[server.tls]`, docs/tls.md).
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
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App};

pub use admin::{Admin, AdminError};
pub use hub::{FaultStats, FaultTarget, Stats};
pub use settings::{DevicePolicy, ServerSettings, ServerTls};

use hub::Hub;
use link::CloseCmd;

/// A running server. Drop it and the server keeps running until its System stops; call
/// [`ServerHandle::stop`] to end it.
pub struct ServerHandle {
    addr: SocketAddr,
    tls: bool,
    hub: Arc<Hub>,
    server: actix_web::dev::ServerHandle,
}

impl ServerHandle {
    /// The address the listener bound (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/ws`, or `wss://ADDR/ws` with TLS.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// `http://ADDR`, or `https://ADDR` with TLS (admin API and token endpoint).
    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Whether the listener serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
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

/// A fleet reconnecting after an outage arrives as thousands of connects at once; a short
/// accept backlog would drop SYNs and add seconds of retry to some of them.
const BACKLOG: i32 = 4096;

/// Binds and starts the server inside the caller's actix System; returns once listening.
/// With `[server.tls]` set the certificate and key are read first: a bad file is an
/// `InvalidInput` error naming the key and the file (`zimfleet server` exits 2 on it).
pub async fn start(settings: ServerSettings) -> std::io::Result<ServerHandle> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    settings.validate().map_err(|e| invalid(e.to_string()))?;
    let tls = match &settings.tls {
        Some(files) => Some((
            files.load().map_err(|e| invalid(e.to_string()))?,
            files.handshake_timeout(),
        )),
        None => None,
    };
    start_with(settings, tls).await
}

/// [`start`] with the TLS configuration already read (and its handshake timeout).
async fn start_with(
    settings: ServerSettings,
    tls: Option<(rustls::ServerConfig, Duration)>,
) -> std::io::Result<ServerHandle> {
    let workers = settings.worker_count();
    let admin_on = settings.admin_token.is_some();
    let listener = bind(settings.listen)?;
    let addr = listener.local_addr()?;
    let hub = Arc::new(Hub::new(settings));
    let is_tls = tls.is_some();
    let builder = actix_server::Server::build()
        .workers(workers)
        .backlog(BACKLOG as u32)
        .disable_signals()
        .shutdown_timeout(1);
    let server = listen(builder, listener, Arc::clone(&hub), admin_on, tls)?.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let scheduler_hub = Arc::clone(&hub);
    actix_web::rt::spawn(async move {
        let hub = &scheduler_hub;
        hub.scheduler.run(|job| hub.run_job(job)).await
    });
    tracing::info!(%addr, workers, admin = admin_on, tls = is_tls, "zimfleet server listening");
    Ok(ServerHandle {
        addr,
        tls: is_tls,
        hub,
        server: handle,
    })
}

/// One worker's HTTP service, not yet tied to plain TCP or TLS: WebSocket upgrades go to
/// [`session::upgrade`], which takes the socket out of the HTTP dispatcher; everything else
/// (admin API, plain GET /ws) to the App. A macro because the builder's type names the socket
/// and its closures, which a function signature cannot spell.
macro_rules! http_service {
    ($hub:expr, $admin_on:expr) => {{
        let hub: Arc<Hub> = $hub;
        let data = web::Data::from(Arc::clone(&hub));
        let app = App::new()
            .app_data(data)
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route(transport::WS_PATH, web::get().to(session::plain_get));
        let app = if $admin_on {
            app.configure(admin::routes)
        } else {
            app.configure(|_| {})
        };
        let upgrade = actix_service::fn_factory(move || {
            let hub = Arc::clone(&hub);
            async move {
                Ok::<_, ()>(actix_service::fn_service(move |io| {
                    session::upgrade(Arc::clone(&hub), io)
                }))
            }
        });
        actix_http::HttpService::build()
            // A finished response closes its connection: an admin client's socket does not
            // linger.
            .keep_alive(actix_http::KeepAlive::Disabled)
            // No lingering on unread input once a response is done: close at once.
            .client_disconnect_timeout(Duration::ZERO)
            .upgrade(upgrade)
            .finish(actix_service::map_config(app, |_| {
                actix_web::dev::AppConfig::default()
            }))
    }};
}

/// Adds the listener to the server: plain TCP, or TLS with its handshake deadline (one
/// listener either way: /ws and /admin share it, docs/tls.md).
fn listen(
    builder: actix_server::ServerBuilder,
    listener: std::net::TcpListener,
    hub: Arc<Hub>,
    admin_on: bool,
    tls: Option<(rustls::ServerConfig, Duration)>,
) -> std::io::Result<actix_server::ServerBuilder> {
    match tls {
        None => builder.listen("zimfleet", listener, move || {
            http_service!(Arc::clone(&hub), admin_on).tcp()
        }),
        Some((config, handshake_timeout)) => builder.listen("zimfleet", listener, move || {
            let acceptor =
                actix_http::TlsAcceptorConfig::default().handshake_timeout(handshake_timeout);
            http_service!(Arc::clone(&hub), admin_on)
                .rustls_0_23_with_config(config.clone(), acceptor)
        }),
    }
}

/// The listener, with [`BACKLOG`] and address reuse (a restarted server binds its old port).
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
