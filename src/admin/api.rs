//! The JSON API: act as one of the fleet's accounts (docs/admin-api.md). Each call goes to
//! the account's `AccountHandle` and answers what it
//! answered: a value, or the ZIM error code with HTTP 409 (`{"code":N,"code_name":..,
//! "error":..}`). An unknown account is 404; a bad body is 400.
//!
//! - `GET  /api/accounts/{user}`: the account's state now (from the account itself).
//! - `POST /api/accounts/{user}/logout`, `POST /api/accounts/{user}/drop` (drop its link:
//!   it recovers as from a network loss).
//! - `POST /api/accounts/{user}/rooms/{room}/messages` `{"text":..}`: `{"message_id","seq"}`.
//! - `POST /api/accounts/{user}/peers/{to}/messages` `{"text":..}`: `{"message_id"}`.
//! - `POST /api/accounts/{user}/rooms/{room}/enter` and `.../leave`.
//! - `GET  /api/accounts/{user}/rooms/{room}/members`: the room's members as that account
//!   sees them.
//! - `POST /api/tickets`: a single-use ticket for one /events stream (see [`super::auth`]).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{error, AccountView, Shared};
use crate::client::{AccountHandle, RoomSpec};
use crate::protocol::{MessageType, ZimError};

/// Registers the API's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let account = "/api/accounts/{user}";
    cfg.service(web::resource(account).route(web::get().to(state)))
        .service(web::resource(format!("{account}/logout")).route(web::post().to(logout)))
        .service(web::resource(format!("{account}/drop")).route(web::post().to(drop_link)))
        .service(
            web::resource(format!("{account}/rooms/{{room}}/messages"))
                .route(web::post().to(room_message)),
        )
        .service(
            web::resource(format!("{account}/peers/{{to}}/messages"))
                .route(web::post().to(peer_message)),
        )
        .service(
            web::resource(format!("{account}/rooms/{{room}}/enter")).route(web::post().to(enter)),
        )
        .service(
            web::resource(format!("{account}/rooms/{{room}}/leave")).route(web::post().to(leave)),
        )
        .service(
            web::resource(format!("{account}/rooms/{{room}}/members"))
                .route(web::get().to(members)),
        )
        .service(web::resource("/api/tickets").route(web::post().to(ticket)));
}

/// JSON bodies: at most `limit` bytes; a bad one answers 400 with what was wrong.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            let message = format!("bad JSON body: {err}");
            actix_web::error::InternalError::from_response(err, error(400, &message)).into()
        })
}

/// The body of a message call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// The text to send.
    pub text: String,
}

/// The account, or the 404 answer (boxed: an answer is large).
fn account(shared: &Shared, user_id: &str) -> Result<AccountHandle, Box<HttpResponse>> {
    shared
        .state
        .fleet
        .account(user_id)
        .ok_or_else(|| Box::new(error(404, &format!("no account {user_id:?} in this fleet"))))
}

/// A ZIM error answer: 409 with its code.
pub(crate) fn zim_error(e: &ZimError) -> HttpResponse {
    HttpResponse::Conflict().json(serde_json::json!({
        "code": e.code.number(),
        "code_name": e.code.name(),
        "error": e.msg,
    }))
}

fn answer<T: serde::Serialize>(result: Result<T, ZimError>) -> HttpResponse {
    match result {
        Ok(value) => HttpResponse::Ok().json(value),
        Err(e) => zim_error(&e),
    }
}

fn done(result: Result<(), ZimError>) -> HttpResponse {
    answer(result.map(|()| serde_json::json!({ "ok": true })))
}

async fn state(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    let handle = match account(&shared, &path) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    answer(handle.state().await.map(|s| AccountView::from(&s)))
}

async fn logout(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    match account(&shared, &path) {
        Ok(handle) => {
            tracing::info!(account = %path, "admin: log out");
            done(handle.logout().await)
        }
        Err(r) => *r,
    }
}

async fn drop_link(shared: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    match account(&shared, &path) {
        Ok(handle) => {
            tracing::info!(account = %path, "admin: drop the link");
            handle.chaos_drop();
            HttpResponse::Ok().json(serde_json::json!({ "ok": true }))
        }
        Err(r) => *r,
    }
}

async fn room_message(
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
    body: web::Json<MessageBody>,
) -> HttpResponse {
    let (user, room) = path.into_inner();
    match account(&shared, &user) {
        Ok(handle) => answer(
            handle
                .send_room_message(&room, MessageType::Text, body.into_inner().text)
                .await,
        ),
        Err(r) => *r,
    }
}

async fn peer_message(
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
    body: web::Json<MessageBody>,
) -> HttpResponse {
    let (user, to) = path.into_inner();
    match account(&shared, &user) {
        Ok(handle) => answer(
            handle
                .send_peer_message(&to, MessageType::Text, body.into_inner().text)
                .await,
        ),
        Err(r) => *r,
    }
}

async fn enter(shared: web::Data<Shared>, path: web::Path<(String, String)>) -> HttpResponse {
    let (user, room) = path.into_inner();
    match account(&shared, &user) {
        Ok(handle) => answer(handle.enter_room(RoomSpec::new(room)).await),
        Err(r) => *r,
    }
}

async fn leave(shared: web::Data<Shared>, path: web::Path<(String, String)>) -> HttpResponse {
    let (user, room) = path.into_inner();
    match account(&shared, &user) {
        Ok(handle) => done(handle.leave_room(&room).await),
        Err(r) => *r,
    }
}

async fn members(shared: web::Data<Shared>, path: web::Path<(String, String)>) -> HttpResponse {
    let (user, room) = path.into_inner();
    match account(&shared, &user) {
        Ok(handle) => answer(
            handle
                .room_members(&room)
                .await
                .map(|members| serde_json::json!({ "room_id": room, "members": members })),
        ),
        Err(r) => *r,
    }
}

async fn ticket(shared: web::Data<Shared>) -> HttpResponse {
    let ticket = shared.guard.issue_ticket();
    HttpResponse::Ok().json(serde_json::json!({
        "ticket": ticket.expose(),
        "expires_in_ms": super::auth::TICKET_LIFETIME.as_millis() as u64,
    }))
}
