//! The live page: `zimfleet loadtest --console ADDR` serves the report's charts, updated
//! each second from the running load test, with the progress line's figures.

use std::sync::{Arc, Mutex};

use super::progress::ProgressFigures;
use super::report::Report;

/// The latest figures, as the page's JSON.
#[derive(Default)]
pub struct Live {
    data: Mutex<String>,
}

impl Live {
    /// Replaces the page's data.
    pub fn publish(&self, report: &Report, progress: &ProgressFigures) {
        let json = serde_json::json!({
            "charts": super::html::ChartData::from_report(report),
            "progress": progress,
        })
        .to_string();
        if let Ok(mut d) = self.data.lock() {
            *d = json;
        }
    }

    /// The page's data now ("{}" before the first second).
    pub fn data(&self) -> String {
        match self.data.lock() {
            Ok(d) if !d.is_empty() => d.clone(),
            _ => "{}".into(),
        }
    }
}

/// Shared by the driver and the HTTP server.
pub type LiveRef = Arc<Live>;

/// Serves the live page on `addr` (one worker thread): `/` the page, `/data.json` its data.
/// Returns the bound address (port 0 picks a free one) and the server's handle.
pub fn serve(
    addr: std::net::SocketAddr,
    live: LiveRef,
) -> Result<(std::net::SocketAddr, actix_web::dev::ServerHandle), super::LoadtestError> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let page = super::html::page("zimfleet loadtest (live)", None);
    let server = HttpServer::new(move || {
        let (page, live) = (page.clone(), live.clone());
        App::new()
            .route(
                "/",
                web::get().to(move || {
                    let page = page.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("text/html; charset=utf-8")
                            .body(page)
                    }
                }),
            )
            .route(
                "/data.json",
                web::get().to(move || {
                    let live = live.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .insert_header(("Cache-Control", "no-store"))
                            .body(live.data())
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)
    .map_err(|e| super::LoadtestError::Console(format!("cannot listen on {addr}: {e}")))?;
    let bound = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| super::LoadtestError::Console(format!("cannot listen on {addr}")))?;
    let server = server.run();
    let handle = server.handle();
    actix::spawn(server);
    Ok((bound, handle))
}
