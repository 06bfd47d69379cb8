//! The web console (docs/console.md): one page at `/`, its script and style embedded at build
//! time (console/*), the charts from [`crate::web`]; and the reads it polls:
//!
//! - `GET /ready`: 200 `{"ready":true}` once every account is Connected and in every room
//!   it keeps, else 503 `{"ready":false}` (a readiness probe, and a gate for scripts).
//! - `GET /api/summary?since=S`: counts by state, the chart samples after unix second `S`,
//!   events lost to lag (by the /events streams and by the face's own board), whether the
//!   face asks for a token.
//! - `GET /api/accounts?state=N&q=TEXT&offset=N&limit=N`: one page of the accounts table.
//! - `GET /api/rooms`: every room the fleet keeps.
//! - `GET /api/rooms/{room}`: the fleet's accounts in it and its recent messages.
//! - `GET /api/rooms/{room}/members`: its members, as a connected fleet account in it sees
//!   them.
//!
//! The page holds no data and no token: it asks for the token in a form when the face has
//! one, keeps it in the tab's sessionStorage and sends it as a bearer header.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::board::Query;
use super::tracker::lock;
use super::{error, Shared};
use crate::protocol::{ConnectionState, RoomState};

const PAGE_HTML: &str = include_str!("console/console.html");
const PAGE_JS: &str = include_str!("console/console.js");
const PAGE_CSS: &str = include_str!("console/console.css");

/// The console page: the shell with every asset inlined.
pub fn page_html() -> String {
    PAGE_HTML
        .replace("<!--HEAD-->", &crate::web::inline_head())
        .replace("/*CONSOLE_CSS*/", PAGE_CSS)
        .replace("/*CONSOLE_JS*/", PAGE_JS)
}

/// Registers the console's reads.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ready").route(web::get().to(ready)))
        .service(web::resource("/api/summary").route(web::get().to(summary)))
        .service(web::resource("/api/accounts").route(web::get().to(accounts)))
        .service(web::resource("/api/rooms").route(web::get().to(rooms)))
        .service(web::resource("/api/rooms/{room}").route(web::get().to(room)))
        .service(web::resource("/api/rooms/{room}/members").route(web::get().to(room_members)));
}

pub(super) async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(page_html())
}

async fn ready(shared: web::Data<Shared>) -> HttpResponse {
    let ready = lock(&shared.board).ready();
    let body = serde_json::json!({ "ready": ready });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The query of GET /api/summary.
#[derive(Debug, Deserialize)]
pub struct SummaryQuery {
    /// Samples after this unix second (0 = all of the last 15 minutes).
    #[serde(default)]
    pub since: u64,
}

async fn summary(shared: web::Data<Shared>, query: web::Query<SummaryQuery>) -> HttpResponse {
    let counts = lock(&shared.board).counts();
    let series = lock(&shared.series).columns(query.since);
    HttpResponse::Ok().json(serde_json::json!({
        "counts": counts,
        "series": series,
        "events_lost": shared.state.stream_lost.load(Ordering::Relaxed)
            + shared.board_lost.load(Ordering::Relaxed),
        "uptime_secs": shared.state.started.elapsed().as_secs(),
        "token": shared.guard.has_token(),
    }))
}

async fn accounts(shared: web::Data<Shared>, query: web::Query<Query>) -> HttpResponse {
    let page = lock(&shared.board).page(&query);
    HttpResponse::Ok().json(page)
}

async fn rooms(shared: web::Data<Shared>) -> HttpResponse {
    let rooms: Vec<serde_json::Value> = lock(&shared.board)
        .rooms()
        .into_iter()
        .map(|(room_id, inside, keeping)| {
            serde_json::json!({ "room_id": room_id, "inside": inside, "keeping": keeping })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "rooms": rooms }))
}

async fn room(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    let accounts = lock(&shared.board).room_accounts(&path);
    let messages = shared.state.feed.room(&path);
    if accounts.is_empty() && messages.is_empty() {
        return error(
            404,
            &format!("no account of this fleet keeps room {:?}", *path),
        );
    }
    HttpResponse::Ok().json(serde_json::json!({
        "room_id": *path,
        "accounts": accounts,
        "messages": messages,
    }))
}

async fn room_members(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    let inside = lock(&shared.board)
        .room_accounts(&path)
        .into_iter()
        .find(|a| {
            a.state == ConnectionState::Connected.as_i32()
                && a.room_state == RoomState::Connected.as_i32()
        });
    let Some(inside) = inside else {
        return error(
            404,
            &format!("no connected account of this fleet is in room {:?}", *path),
        );
    };
    let Some(handle) = shared.state.fleet.account(&inside.user_id) else {
        return error(
            404,
            &format!("no account {:?} in this fleet", inside.user_id),
        );
    };
    match handle.room_members(&path).await {
        Ok(members) => HttpResponse::Ok().json(serde_json::json!({
            "room_id": *path,
            "seen_by": inside.user_id,
            "members": members,
        })),
        Err(e) => super::api::zim_error(&e),
    }
}
