//! `POST /reload` re-reads bots/ and the config, like SIGHUP, and answers what changed;
//! `GET /reload` shows the last reload, its errors included (docs/bots.md, "Hot reload").
//!
//! The runner does the reload; this face only asks for it through a bounded channel and
//! waits for the answer with a deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// How long `POST /reload` waits for the runner's answer.
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(30);

/// What one reload did; every list names accounts, rooms (`user/room`) or files.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReloadResult {
    /// Unix milliseconds when it finished.
    pub at_ms: u64,
    /// "SIGHUP" or "admin".
    pub trigger: String,
    /// Accounts started (new files, new entries).
    pub started: Vec<String>,
    /// Accounts logged out (removed files, removed entries).
    pub stopped: Vec<String>,
    /// Files whose behaviour was rebuilt on their running accounts.
    pub swapped: Vec<String>,
    /// `user/room` entered by accounts that kept running.
    pub rooms_entered: Vec<String>,
    /// `user/room` left by accounts that kept running.
    pub rooms_left: Vec<String>,
    /// Why a file (or the config) was not applied; what ran before stays as it was.
    pub errors: Vec<String>,
}

/// One request to the runner: where to send the result.
pub type ReloadRequest = oneshot::Sender<ReloadResult>;

/// The admin face's side of reloads: asks the runner, and remembers the last result.
#[derive(Clone)]
pub struct ReloadDesk {
    requests: mpsc::Sender<ReloadRequest>,
    last: Arc<Mutex<Option<ReloadResult>>>,
}

impl ReloadDesk {
    /// A desk and the receiver the runner takes requests from (at most 4 waiting).
    pub fn new() -> (ReloadDesk, mpsc::Receiver<ReloadRequest>) {
        let (requests, rx) = mpsc::channel(4);
        let desk = ReloadDesk {
            requests,
            last: Arc::default(),
        };
        (desk, rx)
    }

    /// Records the result of a reload (whoever asked for it).
    pub fn record(&self, result: &ReloadResult) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(result.clone());
    }

    /// The last reload's result, if there was one.
    pub fn last(&self) -> Option<ReloadResult> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Registers `/reload` (GET and POST) on the admin face.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::resource("/reload")
            .route(web::get().to(last))
            .route(web::post().to(reload)),
    );
}

fn no_desk() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": "this admin face has no reload (it is not zimfleet run's)"
    }))
}

async fn last(shared: web::Data<super::Shared>) -> HttpResponse {
    let Some(desk) = &shared.state.reload else {
        return no_desk();
    };
    HttpResponse::Ok().json(serde_json::json!({ "last": desk.last() }))
}

async fn reload(shared: web::Data<super::Shared>) -> HttpResponse {
    let Some(desk) = &shared.state.reload else {
        return no_desk();
    };
    let (tx, rx) = oneshot::channel();
    if desk.requests.try_send(tx).is_err() {
        return HttpResponse::TooManyRequests().json(serde_json::json!({
            "error": "reloads are already waiting; try again when they are done"
        }));
    }
    match tokio::time::timeout(RELOAD_DEADLINE, rx).await {
        Ok(Ok(result)) if result.errors.is_empty() => HttpResponse::Ok().json(result),
        // Some file was refused: the rest applied, the refused ones kept running as before.
        Ok(Ok(result)) => HttpResponse::UnprocessableEntity().json(result),
        _ => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "the runner did not finish the reload in time"
        })),
    }
}
