//! One WebSocket connection: a task on the HttpServer worker that accepted it (so sessions
//! spread over the workers). It reads frames, answers requests through the hub, drains its
//! outbox (pushes queued by others) and runs its own timers: the offline timeout and the
//! token's will-expire/expiry. No per-session actor mailbox: others reach it only through its
//! bounded [`SessionLink`].

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use actix_http::h1;
use actix_http::ws::{CloseCode, CloseReason, Message};
use actix_web::{HttpRequest, HttpResponse};
use bytestring::ByteString;
use serde::Serialize;

use super::hub::{push_bytes, Hub};
use super::link::{CloseCmd, SessionLink};
use super::transport::{self, FrameReader, FrameWriter, Incoming, ReadError, WsSocket};
use crate::clock::unix_ms as now_ms;
use crate::protocol::{
    close_code, is_valid_id, Empty, ErrorCode, ErrorReply, HeartbeatReply, KickoutReason, Login,
    LoginReply, Push, RenewTokenReply, ReplyFrame, Request, RoomEnterReply, RoomHistoryReply,
    RoomMembersReply, RoomReply, ZimError, MAX_PAGE,
};
use crate::token::token04;

/// An upgrade request (actix-http's upgrade service): answers the handshake and spawns the
/// session task on this worker. Returns at once, so the HTTP dispatcher and its buffers are
/// gone while the session lives. Plain TCP and TLS sockets alike ([`WsSocket`]).
pub(crate) async fn upgrade<S: WsSocket>(
    hub: Arc<Hub>,
    (req, framed): (actix_http::Request, Framed<S, h1::Codec>),
) -> Result<(), actix_http::Error> {
    let max = hub.settings.limits.max_frame_bytes;
    match transport::accept(req, framed, max).await {
        Ok(Some(upgraded)) => {
            let link = hub.open_connection();
            let connection = Connection::new(hub, link, upgraded.writer);
            actix_web::rt::spawn(connection.run(upgraded.reader));
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "websocket handshake failed"),
    }
    Ok(())
}

/// GET /ws without an upgrade: the handshake's own refusal (400 and its reason).
pub(crate) async fn plain_get(req: HttpRequest) -> HttpResponse {
    match actix_http::ws::verify_handshake(req.head()) {
        Err(e) => HttpResponse::from(actix_http::Response::from(e)),
        Ok(()) => HttpResponse::BadRequest().finish(),
    }
}

/// The logged-in part of a connection.
struct LoggedIn {
    user_id: Arc<str>,
    /// Unix seconds.
    token_expire_at: i64,
    will_expire_sent: bool,
}

/// How the connection ends.
enum Ending {
    /// Send a close frame with this code and reason, then end.
    Close(u16, &'static str),
    /// Push kickout, then close.
    Kickout {
        reason: KickoutReason,
        code: u16,
        ext: serde_json::Value,
    },
    /// End without a close frame.
    Drop,
    /// The peer closed or the stream ended: answer its close if it sent one.
    PeerClosed(Option<CloseReason>),
}

/// How a bad text frame is refused.
enum Refusal {
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
    /// Answer with this error reply and keep the connection.
    Reply(ByteString),
}

/// Token bucket for message_send (6000005 when empty).
struct SendBucket {
    tokens: f64,
    last: Instant,
}

/// One session; `W` is the socket's write half (plain TCP or TLS).
struct Connection<W> {
    hub: Arc<Hub>,
    link: Arc<SessionLink>,
    writer: FrameWriter<W>,
    login: Option<LoggedIn>,
    last_frame: Instant,
    bucket: SendBucket,
}

fn text<T: Serialize>(value: &T) -> ByteString {
    ByteString::from(serde_json::to_string(value).expect("replies always serialise"))
}

fn ok<T: Serialize>(id: u64, body: T) -> ByteString {
    text(&ReplyFrame::ok(id, body))
}

fn error_reply(id: u64, e: &ZimError) -> ByteString {
    text(&ErrorReply {
        id,
        code: e.code,
        msg: e.msg.clone(),
    })
}

fn invalid(msg: impl Into<String>) -> ZimError {
    ZimError::new(ErrorCode::INVALID_PARAMETER, msg)
}

fn ending_for(cmd: CloseCmd) -> Ending {
    match cmd {
        CloseCmd::Kickout { reason, code, ext } => Ending::Kickout { reason, code, ext },
        CloseCmd::Replaced => Ending::Close(1000, "replaced by a new login from the same device"),
        CloseCmd::Drop => Ending::Drop,
        CloseCmd::Overflow => Ending::Close(1008, "outbound queue full"),
        CloseCmd::Shutdown => Ending::Close(1001, "server stopping"),
    }
}

/// Longest a closing session waits to write its last frames to a stuck socket.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

fn now_unix() -> i64 {
    crate::clock::unix_secs() as i64
}

impl<W: tokio::io::AsyncWrite + Unpin + 'static> Connection<W> {
    fn new(hub: Arc<Hub>, link: Arc<SessionLink>, writer: FrameWriter<W>) -> Self {
        let burst = f64::from(hub.settings.limits.send_burst);
        Self {
            hub,
            link,
            writer,
            login: None,
            last_frame: Instant::now(),
            bucket: SendBucket {
                tokens: burst,
                last: Instant::now(),
            },
        }
    }

    fn user(&self) -> Option<&str> {
        self.login.as_ref().map(|l| &*l.user_id)
    }

    fn blackholed(&self) -> bool {
        self.hub.is_blackholed(self.user())
    }

    /// When the token timer fires next (will-expire point, then expiry) in Unix ms, if logged
    /// in.
    fn token_deadline_ms(&self) -> Option<u64> {
        let login = self.login.as_ref()?;
        let expire_ms = login.token_expire_at.saturating_mul(1000).max(0) as u64;
        let at_ms = if login.will_expire_sent {
            expire_ms
        } else {
            expire_ms.saturating_sub(self.hub.settings.timing.token_will_expire_ahead_ms)
        };
        Some(at_ms)
    }

    async fn run<R: tokio::io::AsyncRead + Unpin>(mut self, mut reader: FrameReader<R>) {
        let offline_timeout = self.hub.settings.timing.offline_timeout();
        let mut offline = pin!(tokio::time::sleep(offline_timeout));
        let far = Duration::from_secs(365 * 24 * 3600);
        let mut token_timer = pin!(tokio::time::sleep(far));
        let mut token_armed_for: Option<u64> = None;
        let link = Arc::clone(&self.link);
        let ending = loop {
            // Re-armed only when the deadline moves (login, renew, will-expire sent).
            let deadline = self.token_deadline_ms();
            if deadline != token_armed_for {
                token_armed_for = deadline;
                let at = match deadline {
                    Some(at_ms) => {
                        Instant::now() + Duration::from_millis(at_ms.saturating_sub(now_ms()))
                    }
                    None => Instant::now() + far,
                };
                token_timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(at));
            }
            if link.has_work() {
                if let Some(ending) = Box::pin(self.flush_outbox()).await {
                    break ending;
                }
            }
            let step = tokio::select! {
                biased;
                _ = link.wait() => Box::pin(self.flush_outbox()).await,
                // Boxed: the handling of one frame is a large state machine that an idle
                // session should not carry (per-session memory is the scaling limit).
                frame = reader.next() => Box::pin(self.on_frame(frame)).await,
                _ = &mut offline => {
                    let due = self.last_frame + offline_timeout;
                    if due > Instant::now() {
                        offline.as_mut().reset(tokio::time::Instant::from_std(due));
                        None
                    } else {
                        self.hub.counters.heartbeat_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Some(Ending::Close(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout"))
                    }
                }
                _ = &mut token_timer, if token_armed_for.is_some() => {
                    // Re-arm from the clock next time round, even if the deadline is unchanged
                    // (a wall clock set back must not make a fired timer spin).
                    token_armed_for = None;
                    Box::pin(self.on_token_timer()).await
                }
            };
            if let Some(ending) = step {
                break ending;
            }
        };
        Box::pin(self.finish(ending)).await;
    }

    async fn finish(mut self, ending: Ending) {
        let blackholed = self.blackholed();
        let user = self.login.as_ref().map(|l| Arc::clone(&l.user_id));
        // Leave the user map first so nothing more is queued to this session.
        self.hub.close_connection(&self.link, user.as_ref());
        let close = |code: u16, why: &str| {
            Some(CloseReason {
                code: CloseCode::from(code),
                description: Some(why.to_owned()),
            })
        };
        let reason = match ending {
            _ if blackholed => None,
            Ending::Drop => None,
            Ending::Close(code, why) => close(code, why),
            Ending::Kickout { reason, code, ext } => {
                let frame = push_bytes(&Push::Kickout { reason, ext });
                let sent = tokio::time::timeout(
                    FINAL_WRITE_TIMEOUT,
                    self.writer.send(Message::Text(frame)),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
                close(code, reason.name())
            }
            Ending::PeerClosed(reason) => reason.or(close(1000, "bye")),
        };
        tracing::debug!(
            session = self.link.id,
            user_id = user.as_deref(),
            ?reason,
            "connection ends"
        );
        if let Some(reason) = reason {
            let close = self.writer.send(Message::Close(Some(reason)));
            let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, close).await;
        }
        // Dropping the reader and writer closes the TCP connection.
    }

    /// Sends what others queued; acts on a close command (after the frames queued before
    /// it, unless the socket is to be dropped or its queue overflowed).
    async fn flush_outbox(&mut self) -> Option<Ending> {
        let (frames, close) = self.link.take();
        if let Some(cmd @ (CloseCmd::Drop | CloseCmd::Overflow)) = close {
            return Some(ending_for(cmd));
        }
        if !self.blackholed() && !frames.is_empty() {
            for frame in frames {
                if self.writer.queue(Message::Text(frame)).is_err() {
                    return Some(Ending::Drop);
                }
            }
            if let Some(ending) = self.write_queued().await {
                return Some(ending);
            }
        }
        close.map(ending_for)
    }

    /// Writes one frame. While the socket is stuck (a reader that stalls), a close command
    /// (overflow, kickout, drop) still ends the wait, and so does the offline timeout: a
    /// client that sends but never reads must not hold its session (and the timers that are
    /// not polled meanwhile) for ever.
    async fn write(&mut self, message: Message) -> Option<Ending> {
        if self.writer.queue(message).is_err() {
            return Some(Ending::Drop);
        }
        self.write_queued().await
    }

    /// Writes what [`FrameWriter::queue`] holds, with the same escapes as [`Self::write`].
    async fn write_queued(&mut self) -> Option<Ending> {
        let link = Arc::clone(&self.link);
        let stuck_for = self.hub.settings.timing.offline_timeout();
        tokio::select! {
            biased;
            sent = self.writer.flush() => sent.err().map(|_| Ending::Drop),
            cmd = link.close_requested() => Some(ending_for(cmd)),
            _ = tokio::time::sleep(stuck_for) => Some(Ending::Drop),
        }
    }

    async fn send(&mut self, frame: ByteString) -> Option<Ending> {
        if self.blackholed() {
            return None;
        }
        self.write(Message::Text(frame)).await
    }

    async fn on_token_timer(&mut self) -> Option<Ending> {
        let ahead = self.hub.settings.timing.token_will_expire_ahead_ms;
        let login = self.login.as_mut()?;
        let expire_ms = login.token_expire_at.saturating_mul(1000).max(0) as u64;
        let now = now_ms();
        if now >= expire_ms {
            self.hub
                .counters
                .kickouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Some(Ending::Kickout {
                reason: KickoutReason::TokenExpired,
                code: close_code::TOKEN_EXPIRED,
                ext: serde_json::json!({"reason": "token expired"}),
            });
        }
        if !login.will_expire_sent && now + ahead >= expire_ms {
            login.will_expire_sent = true;
            let remaining_secs = (expire_ms - now + 500) / 1000;
            return self
                .send(push_bytes(&Push::TokenWillExpire { remaining_secs }))
                .await;
        }
        None
    }

    async fn on_frame(&mut self, frame: Option<Result<Incoming, ReadError>>) -> Option<Ending> {
        let frame = match frame {
            None => return Some(Ending::PeerClosed(None)),
            Some(Err(ReadError::TooBig)) => {
                self.bad_frame();
                return Some(Ending::Close(close_code::TOO_BIG, "frame too large"));
            }
            Some(Err(ReadError::Protocol)) => {
                self.bad_frame();
                return Some(Ending::Close(1002, "websocket protocol error"));
            }
            Some(Ok(frame)) => frame,
        };
        if self.blackholed() {
            // A network outage as the client sees it: the frame never arrived.
            return None;
        }
        self.last_frame = Instant::now();
        match frame {
            Incoming::Text(text) => self.on_text(&text).await,
            Incoming::Binary => {
                self.bad_frame();
                Some(Ending::Close(1003, "binary frames are not supported"))
            }
            Incoming::Ping(payload) => {
                let stuck_for = self.hub.settings.timing.offline_timeout();
                match tokio::time::timeout(stuck_for, self.writer.send(Message::Pong(payload)))
                    .await
                {
                    Ok(Ok(())) => None,
                    _ => Some(Ending::Drop),
                }
            }
            Incoming::Pong => None,
            Incoming::Close(reason) => Some(Ending::PeerClosed(reason)),
        }
    }

    fn bad_frame(&self) {
        self.hub
            .counters
            .bad_frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads a request out of a text frame; a bad one is counted and refused.
    fn parse(&self, text: &str) -> Result<(u64, Request), Refusal> {
        let bad = |refusal: Refusal| {
            self.bad_frame();
            Err(refusal)
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return bad(Refusal::Close(
                close_code::INVALID_PAYLOAD,
                "frame is not valid JSON",
            ));
        };
        let Some(object) = value.as_object() else {
            return bad(Refusal::Close(
                close_code::INVALID_PAYLOAD,
                "frame is not a JSON object",
            ));
        };
        let Some(id) = object.get("id").and_then(serde_json::Value::as_u64) else {
            let e = invalid("id is missing or not an unsigned integer");
            return bad(Refusal::Reply(error_reply(0, &e)));
        };
        let op_known = object
            .get("op")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|op| crate::protocol::OPS.contains(&op));
        match serde_json::from_value(value) {
            Ok(request) => Ok((id, request)),
            Err(e) => {
                let msg = if op_known {
                    format!("invalid field: {e}")
                } else {
                    "unknown op".to_owned()
                };
                bad(Refusal::Reply(error_reply(id, &invalid(msg))))
            }
        }
    }

    /// A text frame: a request, or a bad frame answered as docs/protocol.md says.
    async fn on_text(&mut self, text: &str) -> Option<Ending> {
        let (id, request) = match self.parse(text) {
            Ok(parsed) => parsed,
            Err(Refusal::Close(code, why)) => return Some(Ending::Close(code, why)),
            Err(Refusal::Reply(frame)) => return self.send(frame).await,
        };
        if self.login.is_none() && !matches!(request, Request::Login(_)) {
            let e = ZimError::new(ErrorCode::NOT_LOGGED_IN, "login must be the first request");
            return self.send(error_reply(id, &e)).await;
        }
        let reply = match request {
            Request::Login(login) => return self.on_login(id, login).await,
            Request::Logout => {
                let user = Arc::clone(&self.login.as_ref()?.user_id);
                self.hub.logout(&user, &self.link);
                self.login = None;
                if let Some(end) = self.send(ok(id, Empty {})).await {
                    return Some(end);
                }
                return Some(Ending::Close(1000, "logged out"));
            }
            Request::Heartbeat => Ok(ok(
                id,
                HeartbeatReply {
                    server_time_ms: now_ms(),
                },
            )),
            Request::RenewToken(renew) => {
                self.check_token(renew.token.expose(), false).map(|expire| {
                    if let Some(login) = self.login.as_mut() {
                        login.token_expire_at = expire;
                        login.will_expire_sent = false;
                    }
                    ok(
                        id,
                        RenewTokenReply {
                            token_expire_at: expire,
                        },
                    )
                })
            }
            other => self.room_or_message(id, other),
        };
        let frame = reply.unwrap_or_else(|e| error_reply(id, &e));
        let end = self.send(frame).await;
        if end.is_none() {
            // A renew may have moved the will-expire point into the past: push at once.
            if let Some(login) = &self.login {
                if !login.will_expire_sent {
                    return self.on_token_timer().await;
                }
            }
        }
        end
    }

    /// Ops that need a logged-in user and only the hub.
    fn room_or_message(&mut self, id: u64, request: Request) -> Result<ByteString, ZimError> {
        let user = Arc::clone(&self.login.as_ref().expect("checked by caller").user_id);
        let hub = &self.hub;
        let room_id_ok = |room_id: &str| {
            if is_valid_id(room_id) {
                Ok(())
            } else {
                Err(invalid("room_id is not a valid id"))
            }
        };
        let page_limit = |limit: Option<u32>| match limit {
            None => Ok(MAX_PAGE as usize),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n as usize),
            Some(_) => Err(invalid("limit must be 1 to 100")),
        };
        match request {
            Request::RoomCreate(req) | Request::RoomEnter(req) if !is_valid_id(&req.room_id) => {
                Err(invalid("room_id is not a valid id"))
            }
            Request::RoomCreate(req) => {
                let (room, _) = hub.room_create(&user, req, false)?;
                Ok(ok(id, RoomReply { room }))
            }
            Request::RoomEnter(req) => {
                let (room, created) = hub.room_create(&user, req, true)?;
                Ok(ok(id, RoomEnterReply { room, created }))
            }
            Request::RoomJoin(req) => {
                room_id_ok(&req.room_id)?;
                let room = hub.room_join(&user, &req.room_id)?;
                Ok(ok(id, RoomReply { room }))
            }
            Request::RoomLeave(req) => {
                room_id_ok(&req.room_id)?;
                hub.room_leave(&user, &req.room_id)?;
                Ok(ok(id, Empty {}))
            }
            Request::RoomHeartbeat(req) => {
                room_id_ok(&req.room_id)?;
                Ok(ok(id, hub.room_heartbeat(&user, &req.room_id)?))
            }
            Request::RoomMembers(req) => {
                room_id_ok(&req.room_id)?;
                let limit = page_limit(req.limit)?;
                if req.cursor.as_deref().is_some_and(|c| !is_valid_id(c)) {
                    return Err(invalid("cursor is not valid"));
                }
                let (members, next_cursor) =
                    hub.room_members(&user, &req.room_id, req.cursor.as_deref(), limit)?;
                Ok(ok(
                    id,
                    RoomMembersReply {
                        members,
                        next_cursor,
                    },
                ))
            }
            Request::RoomHistory(req) => {
                room_id_ok(&req.room_id)?;
                let limit = page_limit(req.limit)?;
                let (messages, complete) =
                    hub.room_history(&user, &req.room_id, req.after_seq, limit)?;
                let messages = messages.iter().map(|m| (**m).clone()).collect();
                Ok(ok(id, RoomHistoryReply { messages, complete }))
            }
            Request::MessageSend(req) => self.message_send(id, &user, req),
            Request::Login(_) | Request::Logout | Request::Heartbeat | Request::RenewToken(_) => {
                Err(ZimError::new(
                    ErrorCode::SERVER_INTERNAL,
                    "op routed wrongly",
                ))
            }
        }
    }

    /// message_send: fields, the sender's rate, then the hub routes it.
    fn message_send(
        &mut self,
        id: u64,
        user: &Arc<str>,
        req: crate::protocol::MessageSend,
    ) -> Result<ByteString, ZimError> {
        self.hub.check_message(&req)?;
        if !self.take_send_token() {
            return Err(ZimError::new(
                ErrorCode::SERVER_FREQUENCY_LIMIT,
                "sending too fast",
            ));
        }
        let reply = self.hub.send_message(user, req)?;
        Ok(ok(id, reply))
    }

    fn take_send_token(&mut self) -> bool {
        let limits = &self.hub.settings.limits;
        if limits.send_rate_per_sec == 0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.bucket.last).as_secs_f64()
            * f64::from(limits.send_rate_per_sec);
        self.bucket.tokens = (self.bucket.tokens + refill).min(f64::from(limits.send_burst));
        self.bucket.last = now;
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Verifies a token for this connection's user (or `for_user` at login); returns its
    /// expiry. At login the lifetime rules apply too.
    fn check_token_for(&self, token: &str, user_id: &str, at_login: bool) -> Result<i64, ZimError> {
        let settings = &self.hub.settings;
        let claims = token04::verify(token, &settings.server_secret)
            .map_err(|e| ZimError::new(e.code(), e.to_string()))?;
        if claims.app_id != settings.app_id {
            return Err(ZimError::new(
                ErrorCode::TOKEN_INVALID,
                "token is for another app",
            ));
        }
        if claims.user_id != user_id {
            return Err(ZimError::new(
                ErrorCode::TOKEN_INVALID,
                "token is for another user",
            ));
        }
        let left = claims.expire.saturating_sub(now_unix());
        if left <= 0 {
            return Err(ZimError::new(ErrorCode::TOKEN_EXPIRED, "token expired"));
        }
        if at_login {
            if left < settings.tokens.min_lifetime_secs {
                return Err(ZimError::from_code(ErrorCode::TOKEN_TOO_SHORT_LIFETIME));
            }
            if left > settings.tokens.max_lifetime_secs {
                return Err(ZimError::from_code(ErrorCode::TOKEN_TOO_LONG_LIFETIME));
            }
        }
        Ok(claims.expire)
    }

    fn check_token(&self, token: &str, at_login: bool) -> Result<i64, ZimError> {
        let user = self.user().unwrap_or_default().to_owned();
        self.check_token_for(token, &user, at_login)
    }

    async fn on_login(&mut self, id: u64, login: Login) -> Option<Ending> {
        if self.hub.is_blackholed(Some(&login.user_id)) {
            // Its new login hangs: no answer.
            return None;
        }
        let refused = |e: ZimError| {
            self.hub
                .counters
                .logins_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            error_reply(id, &e)
        };
        if !is_valid_id(&login.user_id) {
            let frame = refused(invalid("user_id is not a valid id"));
            return self.send(frame).await;
        }
        if login.device_id.is_empty() || login.device_id.len() > 128 {
            let frame = refused(invalid("device_id must be 1 to 128 bytes"));
            return self.send(frame).await;
        }
        if login.user_name.as_ref().is_some_and(|n| n.len() > 256) {
            let frame = refused(invalid("user_name is longer than 256 bytes"));
            return self.send(frame).await;
        }
        if let Some(current) = self.user() {
            if current != login.user_id {
                let e = ZimError::new(
                    ErrorCode::LOGGED_IN_AS_OTHER_USER,
                    "this connection is logged in as another user",
                );
                let frame = refused(e);
                return self.send(frame).await;
            }
        }
        let expire = match self.check_token_for(login.token.expose(), &login.user_id, true) {
            Ok(expire) => expire,
            Err(e) => {
                tracing::debug!(user_id = %login.user_id, code = e.code.number(), "login refused");
                let frame = refused(e);
                return self.send(frame).await;
            }
        };
        let user_id: Arc<str> = match &self.login {
            Some(l) => Arc::clone(&l.user_id),
            None => Arc::from(login.user_id.as_str()),
        };
        let registered = self.hub.register(
            &user_id,
            login.user_name.as_deref(),
            &login.device_id,
            &self.link,
        );
        self.login = Some(LoggedIn {
            user_id,
            token_expire_at: expire,
            will_expire_sent: false,
        });
        let timing = &self.hub.settings.timing;
        let reply = ok(
            id,
            LoginReply {
                session_id: format!("s{}", self.link.id),
                server_time_ms: now_ms(),
                token_expire_at: expire,
                heartbeat_interval_ms: timing.heartbeat_interval_ms,
                room_heartbeat_interval_ms: timing.room_heartbeat_interval_ms,
            },
        );
        if let Some(end) = self.send(reply).await {
            return Some(end);
        }
        for frame in registered.offline {
            if let Some(end) = self.send(frame).await {
                return Some(end);
            }
        }
        self.on_token_timer().await
    }
}
