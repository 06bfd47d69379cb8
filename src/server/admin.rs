//! Admin and fault injection: [`Admin`] in-process, and the same functions over HTTP under
//! /admin with `Authorization: Bearer <admin token>` (401 without or with a wrong one).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::hub::{FaultTarget, Hub, Stats};
use crate::protocol::{is_valid_id, ErrorCode, KickoutReason, Secret};
use crate::token::token04;

/// In-process admin handle (Clone + Send). The HTTP handlers call the same functions.
#[derive(Clone)]
pub struct Admin {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

/// Why an admin call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The user id is not a valid id (docs/protocol.md).
    #[error("invalid user id")]
    InvalidUserId,
    /// The token could not be minted.
    #[error("token: {0}")]
    Token(#[from] token04::TokenError),
}

impl Admin {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }

    /// A Token04 for `user_id` valid `ttl_secs` from now (zero or negative: already expired,
    /// for tests). Returns the token and its expiry (unix seconds).
    pub fn mint_token(&self, user_id: &str, ttl_secs: i64) -> Result<(Secret, i64), AdminError> {
        if !is_valid_id(user_id) {
            return Err(AdminError::InvalidUserId);
        }
        let settings = &self.hub.settings;
        let token = token04::generate(settings.app_id, user_id, &settings.server_secret, ttl_secs)?;
        let expire = token04::read_expiry(token.expose())?;
        Ok((token, expire))
    }

    /// Closes the target's sockets at once without a close frame. Returns how many.
    pub fn drop(&self, target: FaultTarget) -> usize {
        self.hub.drop_connections(&target)
    }

    /// For `duration`, frames from and to the target are neither read nor answered and their
    /// new logins hang. Returns how many of the named users are known (All: open sessions).
    pub fn blackhole(&self, target: FaultTarget, duration: Duration) -> usize {
        self.hub.blackhole(&target, duration)
    }

    /// Kickout push (reason 4 kicked out or 6 unregistered) and close. False if the user is
    /// unknown.
    pub fn kickout(&self, user_id: &str, reason: KickoutReason) -> bool {
        self.hub.kickout(user_id, reason)
    }

    /// As if the user's token expired now (kickout 5, close 4005). False if not online.
    pub fn expire_token(&self, user_id: &str) -> bool {
        self.hub.expire_token(user_id)
    }

    /// room_kickout reason 2 to every member, room gone. False if no such room.
    pub fn destroy_room(&self, room_id: &str) -> bool {
        self.hub.destroy_room(room_id)
    }

    /// Ends a membership as if its room session expired. False if no such membership.
    pub fn evict(&self, room_id: &str, user_id: &str) -> bool {
        self.hub.evict(room_id, user_id)
    }

    /// room_kickout reason 1 to the member; membership ended. False if no such membership.
    pub fn kick(&self, room_id: &str, user_id: &str) -> bool {
        self.hub.kick(room_id, user_id)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The admin routes, mounted under /admin when an admin token is configured.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/stats", web::get().to(stats))
            .route("/tokens", web::post().to(tokens))
            .route("/faults/drop", web::post().to(fault_drop))
            .route("/faults/blackhole", web::post().to(fault_blackhole))
            .route("/users/{user_id}/kickout", web::post().to(kickout))
            .route(
                "/users/{user_id}/expire_token",
                web::post().to(expire_token),
            )
            .route("/rooms/{room_id}/destroy", web::post().to(destroy))
            .route(
                "/rooms/{room_id}/members/{user_id}",
                web::delete().to(evict),
            )
            .route("/rooms/{room_id}/kick", web::post().to(kick)),
    );
}

#[derive(Serialize)]
struct Problem<'a> {
    code: u32,
    msg: &'a str,
}

fn problem(status: StatusCode, code: ErrorCode, msg: &str) -> HttpResponse {
    HttpResponse::build(status).json(Problem {
        code: code.number(),
        msg,
    })
}

/// Why an admin HTTP request is refused before it runs.
enum Refusal {
    /// No admin token configured: the API does not exist.
    Off,
    Unauthorized,
    BadRequest(String),
}

impl Refusal {
    fn response(self) -> HttpResponse {
        match self {
            Refusal::Off => HttpResponse::NotFound().finish(),
            Refusal::Unauthorized => HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer"))
                .json(Problem {
                    code: 401,
                    msg: "missing or wrong bearer token",
                }),
            Refusal::BadRequest(msg) => {
                problem(StatusCode::BAD_REQUEST, ErrorCode::INVALID_PARAMETER, &msg)
            }
        }
    }
}

/// Constant-time comparison: the time taken does not tell how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin handle if the request carries the right bearer token.
fn authorize(req: &HttpRequest, hub: &web::Data<Hub>) -> Result<Admin, Refusal> {
    let Some(expected) = hub.settings.admin_token.as_ref() else {
        return Err(Refusal::Off);
    };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if same_secret(token.as_bytes(), expected.expose().as_bytes()) => {
            Ok(Admin::new(hub.clone().into_inner()))
        }
        _ => Err(Refusal::Unauthorized),
    }
}

fn found(found: bool, what: &str) -> HttpResponse {
    if found {
        HttpResponse::Ok().json(serde_json::json!({"found": true}))
    } else {
        problem(StatusCode::NOT_FOUND, ErrorCode::INVALID_PARAMETER, what)
    }
}

fn bad_json(e: impl std::fmt::Display) -> Refusal {
    Refusal::BadRequest(format!("invalid body: {e}"))
}

/// Parses an optional JSON body (empty body = `T::default()`).
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &web::Bytes) -> Result<T, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(bad_json)
}

async fn stats(req: HttpRequest, hub: web::Data<Hub>) -> HttpResponse {
    match authorize(&req, &hub) {
        Ok(admin) => HttpResponse::Ok().json(admin.stats()),
        Err(refusal) => refusal.response(),
    }
}

/// Lifetime of a minted token when the body names none: an hour, like a typical token server.
const DEFAULT_MINT_TTL_SECS: i64 = 3600;

fn default_mint_ttl() -> i64 {
    DEFAULT_MINT_TTL_SECS
}

#[derive(Deserialize, Default)]
struct MintBody {
    user_id: String,
    #[serde(default = "default_mint_ttl")]
    ttl_secs: i64,
}

#[derive(Serialize)]
struct MintReply {
    token: Secret,
    expire_at: i64,
}

async fn tokens(req: HttpRequest, hub: web::Data<Hub>, bytes: web::Bytes) -> HttpResponse {
    let admin = match authorize(&req, &hub) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let b: MintBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => return bad_json(e).response(),
    };
    match admin.mint_token(&b.user_id, b.ttl_secs) {
        Ok((token, expire_at)) => HttpResponse::Ok().json(MintReply { token, expire_at }),
        Err(e) => problem(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_PARAMETER,
            &e.to_string(),
        ),
    }
}

/// `{"user_ids": [...]}` or `{"all": true}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    #[serde(default)]
    user_ids: Option<Vec<String>>,
    #[serde(default)]
    all: bool,
    /// Blackhole only: seconds, fractions allowed.
    #[serde(default)]
    secs: Option<f64>,
}

impl TargetBody {
    fn target(&self) -> Result<FaultTarget, Refusal> {
        match (&self.user_ids, self.all) {
            (Some(_), true) => Err(bad_json("give user_ids or all, not both")),
            (Some(ids), false) => Ok(FaultTarget::Users(ids.clone())),
            (None, true) => Ok(FaultTarget::All),
            (None, false) => Err(bad_json("give user_ids or \"all\": true")),
        }
    }
}

async fn fault_drop(req: HttpRequest, hub: web::Data<Hub>, bytes: web::Bytes) -> HttpResponse {
    let admin = match authorize(&req, &hub) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let target = match body::<TargetBody>(&bytes).and_then(|b| b.target()) {
        Ok(t) => t,
        Err(refusal) => return refusal.response(),
    };
    HttpResponse::Ok().json(serde_json::json!({"dropped": admin.drop(target)}))
}

async fn fault_blackhole(req: HttpRequest, hub: web::Data<Hub>, bytes: web::Bytes) -> HttpResponse {
    let admin = match authorize(&req, &hub) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let b = match body::<TargetBody>(&bytes) {
        Ok(b) => b,
        Err(refusal) => return refusal.response(),
    };
    let target = match b.target() {
        Ok(t) => t,
        Err(refusal) => return refusal.response(),
    };
    let duration = match b.secs.map(Duration::try_from_secs_f64) {
        Some(Ok(d)) if d <= Duration::from_secs(24 * 3600) => d,
        _ => return bad_json("secs must be a number from 0 to 86400").response(),
    };
    HttpResponse::Ok().json(serde_json::json!({"affected": admin.blackhole(target, duration)}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KickoutBody {
    #[serde(default)]
    reason: Option<i32>,
}

async fn kickout(
    req: HttpRequest,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> HttpResponse {
    let admin = match authorize(&req, &hub) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let b = match body::<KickoutBody>(&bytes) {
        Ok(b) => b,
        Err(refusal) => return refusal.response(),
    };
    let reason = match b.reason.unwrap_or(4) {
        4 => KickoutReason::KickedOut,
        6 => KickoutReason::Unregistered,
        _ => return bad_json("reason must be 4 (kicked out) or 6 (unregistered)").response(),
    };
    found(admin.kickout(&path, reason), "no such user")
}

async fn expire_token(
    req: HttpRequest,
    hub: web::Data<Hub>,
    path: web::Path<String>,
) -> HttpResponse {
    match authorize(&req, &hub) {
        Ok(admin) => found(admin.expire_token(&path), "user is not online"),
        Err(refusal) => refusal.response(),
    }
}

async fn destroy(req: HttpRequest, hub: web::Data<Hub>, path: web::Path<String>) -> HttpResponse {
    match authorize(&req, &hub) {
        Ok(admin) => found(admin.destroy_room(&path), "no such room"),
        Err(refusal) => refusal.response(),
    }
}

async fn evict(
    req: HttpRequest,
    hub: web::Data<Hub>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    match authorize(&req, &hub) {
        Ok(admin) => found(admin.evict(&path.0, &path.1), "no such membership"),
        Err(refusal) => refusal.response(),
    }
}

#[derive(Deserialize, Default)]
struct KickBody {
    user_id: String,
}

async fn kick(
    req: HttpRequest,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> HttpResponse {
    let admin = match authorize(&req, &hub) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let b: KickBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => return bad_json(e).response(),
    };
    found(admin.kick(&path, &b.user_id), "no such membership")
}
