//! The account actor: one per user. It owns its WebSocket, runs the connection machine of
//! src/session (login, heartbeat, Reconnecting with the retry schedule, terminal ends), keeps
//! its rooms (each with its room machine; the account is their supervisor), its outbox and
//! its token, and turns every state change into an event for the bot, the fleet's broadcast
//! and tracing. The actor is a thin shell: decisions are the machines'.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::{WriteHandler, Writer};
use actix::prelude::*;
use awc::ws::{Frame, Message as WsMessage};
use awc::BoxedSocket;
use governor::clock::Clock as _;
use rand::Rng as _;
use tokio::sync::oneshot;

use super::connection::{self, LinkItem, WriteError, WsEncoder, WsLink};
use super::fleet::{now_ms, FleetShared};
use super::handle::AccountHandle;
use super::renewal::{RenewalCancelled, RenewalNeeded, RenewalOutcome};
use super::room::{Room, CATCH_UP_BUFFER};
use super::{AccountSpec, AccountStatus, EventKind, RoomSpec, RoomStatus};
use crate::bot::Bot;
use crate::protocol::{
    is_valid_id, ChatMessage, ConnectionEvent, ConnectionState, ConvType, ErrorCode, Login,
    LoginReply, MessageSend, MessageSendReply, MessageType, Push, RenewToken, RenewTokenReply,
    Request, RequestFrame, RoomCreate, RoomEnterReply, RoomEvent, RoomHistory, RoomHistoryReply,
    RoomInfo, RoomMembers, RoomMembersReply, RoomRef, RoomReply, RoomState, Secret, ServerFrame,
    ZimError, MAX_BODY_BYTES, MAX_PAGE,
};
use crate::session::retry::jittered;
use crate::session::{
    Backoff, ConnEffect, ConnInput, ConnStep, ConnectionMachine, ConversationPacer,
    DisconnectCause, RenewPacer, RequestShaper, RestartVerdict, RoomEffect, RoomEntry, RoomInput,
    RoomStep,
};
use crate::token::TokenProvider;

// ---------------------------------------------------------------------------------------------
// Messages (all sent by AccountHandle unless said otherwise)

/// AccountHandle -> Account: send a message (room or peer); `reply: None` = fire and forget.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SendCmd {
    pub conv_type: ConvType,
    pub to: Box<str>,
    pub msg_type: MessageType,
    pub body: String,
    pub reply: Option<oneshot::Sender<Result<MessageSendReply, ZimError>>>,
}

/// AccountHandle -> Account: enter (create, join) a room and keep it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EnterRoomCmd {
    pub spec: RoomSpec,
    pub reply: oneshot::Sender<Result<RoomInfo, ZimError>>,
}

/// AccountHandle -> Account: leave a room.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct LeaveRoomCmd {
    pub room_id: String,
    pub reply: oneshot::Sender<Result<(), ZimError>>,
}

/// AccountHandle -> Account: one page of room_members.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct MembersPageCmd {
    pub room_id: String,
    pub cursor: Option<String>,
    pub reply: oneshot::Sender<Result<RoomMembersReply, ZimError>>,
}

/// AccountHandle -> Account: renewToken with this token.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct RenewTokenCmd {
    pub token: Secret,
    pub reply: oneshot::Sender<Result<i64, ZimError>>,
}

/// AccountHandle -> Account: leave every room and log out.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct LogoutCmd {
    pub reply: oneshot::Sender<Result<(), ZimError>>,
}

/// AccountHandle / Fleet -> Account: the account's status now.
#[derive(Message)]
#[rtype(result = "AccountStatus")]
pub(crate) struct GetStatus;

/// AccountHandle (chaos) -> Account: drop the socket abruptly.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChaosDrop;

/// AccountHandle (chaos) -> Account: drop the socket and fail every connect for a while.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChaosOffline(pub Duration);

// ---------------------------------------------------------------------------------------------
// State

/// A message waiting to go, or in flight (kept for a resend with the same client_msg_id).
struct Outgoing {
    conv_type: ConvType,
    to: Box<str>,
    client_msg_id: Box<str>,
    msg_type: MessageType,
    body: String,
    reply: Option<oneshot::Sender<Result<MessageSendReply, ZimError>>>,
    /// Past this, a message still waiting fails with 6000105 (it was never sent).
    deadline: Instant,
}

impl Outgoing {
    fn answer(self, result: Result<MessageSendReply, ZimError>, shared: &FleetShared) {
        match &result {
            Ok(_) => shared.metrics.messages_sent.inc(),
            Err(e) => {
                shared.metrics.messages_send_failed.inc();
                if self.reply.is_none() {
                    tracing::warn!(to = %self.to, error = %e, "posted message failed");
                }
            }
        }
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

/// What a request in flight is, so its reply (or timeout) lands in the right place.
enum PendingKind {
    Login,
    Heartbeat,
    RenewToken {
        token: Secret,
        reply: Option<oneshot::Sender<Result<i64, ZimError>>>,
    },
    Logout,
    RoomEntry {
        room: Arc<str>,
        generation: u32,
        entry: RoomEntry,
    },
    RoomHeartbeat {
        room: Arc<str>,
        generation: u32,
    },
    RoomLeave {
        room: Arc<str>,
        reply: Option<oneshot::Sender<Result<(), ZimError>>>,
    },
    RoomMembers {
        reply: oneshot::Sender<Result<RoomMembersReply, ZimError>>,
    },
    RoomHistory {
        room: Arc<str>,
        generation: u32,
    },
    Send(Outgoing),
}

struct Pending {
    kind: PendingKind,
    timer: SpawnHandle,
    sent_at: Instant,
}

/// The open socket and the timers that live as long as it.
struct Link {
    writer: Writer<tokio::io::WriteHalf<BoxedSocket>, WriteError>,
    encoder: WsEncoder,
    stream: SpawnHandle,
    heartbeat: Option<SpawnHandle>,
    room_heartbeat: Option<SpawnHandle>,
}

impl Link {
    /// Queues one message; false when the socket is closing.
    fn write(&mut self, message: WsMessage) -> bool {
        if self.writer.closed() {
            return false;
        }
        match self.encoder.encode(message) {
            Ok(frame) => {
                self.writer.write(&frame);
                true
            }
            Err(_) => false,
        }
    }
}

pub(crate) struct Account {
    shared: Arc<FleetShared>,
    user_id: Arc<str>,
    user_name: Box<str>,
    device_id: Option<Box<str>>,
    provider: Arc<dyn TokenProvider>,
    bot: Arc<dyn Bot>,
    /// Rooms of the spec, entered after the first login.
    initial_rooms: Vec<RoomSpec>,

    conn: ConnectionMachine,
    since_ms: u64,
    ended: Option<String>,
    /// Generation of the current connect attempt / link; bumped when a link closes, so
    /// late frames, replies and timers of an older link are dropped.
    generation: u32,
    link: Option<Link>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    backoff: Backoff,
    /// Since when the account has been without a link (Reconnecting or first Connecting).
    down_since: Option<Instant>,
    offline_until: Option<Instant>,
    heartbeat_every: Duration,
    room_heartbeat_every: Duration,
    /// Server clock minus ours, in ms.
    clock_offset_ms: i64,

    rooms: Vec<Room>,
    outbox: VecDeque<Outgoing>,
    outbox_sweep: Option<SpawnHandle>,

    token: Option<Secret>,
    token_expire_at: i64,
    /// The expiry for which onTokenWillExpire already fired.
    will_expire_for: i64,
    token_timers: [Option<SpawnHandle>; 2],

    shaper: RequestShaper,
    conversations: ConversationPacer,
    renewals: RenewPacer,
    logout_reply: Option<oneshot::Sender<Result<(), ZimError>>>,
}

impl Account {
    pub(crate) fn new(
        shared: Arc<FleetShared>,
        user_id: Arc<str>,
        spec: AccountSpec,
        bot: Arc<dyn Bot>,
    ) -> Self {
        let timings = &shared.config.timings;
        let heartbeat_every = timings.heartbeat_interval;
        let room_heartbeat_every = Duration::from_secs(15);
        Self {
            user_id,
            user_name: spec.user_name.into_boxed_str(),
            device_id: spec.device_id.map(String::into_boxed_str),
            provider: spec.token,
            bot,
            initial_rooms: spec.rooms,
            conn: ConnectionMachine::default(),
            since_ms: now_ms(),
            ended: None,
            generation: 0,
            link: None,
            next_id: 1,
            pending: HashMap::new(),
            backoff: Backoff::default(),
            down_since: None,
            offline_until: None,
            heartbeat_every,
            room_heartbeat_every,
            clock_offset_ms: 0,
            rooms: Vec::new(),
            outbox: VecDeque::new(),
            outbox_sweep: None,
            token: None,
            token_expire_at: 0,
            will_expire_for: 0,
            token_timers: [None, None],
            shaper: RequestShaper::default(),
            conversations: ConversationPacer::default(),
            renewals: RenewPacer::default(),
            logout_reply: None,
            shared,
        }
    }

    fn handle(&self, ctx: &Context<Self>) -> AccountHandle {
        AccountHandle::new(self.user_id.clone(), ctx.address(), self.shared.clone())
    }

    /// Runs a bot handler behind catch_unwind: a panic is logged and counted, never fatal.
    fn with_bot(&self, ctx: &Context<Self>, f: impl FnOnce(&dyn Bot, &AccountHandle)) {
        let handle = self.handle(ctx);
        let bot = &*self.bot;
        if std::panic::catch_unwind(AssertUnwindSafe(|| f(bot, &handle))).is_err() {
            self.shared.metrics.handler_panics.inc();
            tracing::error!(account = %self.user_id, "bot handler panicked (caught)");
        }
    }

    fn server_now_ms(&self) -> u64 {
        (now_ms() as i64)
            .saturating_add(self.clock_offset_ms)
            .max(0) as u64
    }

    fn device_id(&self) -> String {
        match &self.device_id {
            Some(d) => d.to_string(),
            None => format!("zimfleet-{:x}-{}", std::process::id(), self.user_id),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The connection machine and its effects

    fn conn_input(&mut self, input: ConnInput, ctx: &mut Context<Self>) {
        let step = self.conn.step(input);
        self.apply_conn(step, ctx);
    }

    fn apply_conn(&mut self, step: ConnStep, ctx: &mut Context<Self>) {
        if step.ended.is_some() {
            // counted before the event goes out, so whoever sees the event sees the count
            let m = &self.shared.metrics;
            match self.conn.last_event() {
                ConnectionEvent::KickedOut => m.kicked_out.inc(),
                ConnectionEvent::TokenExpired => m.token_expired.inc(),
                ConnectionEvent::Unregistered => m.unregistered.inc(),
                ConnectionEvent::LoginInterrupted => m.login_rejected.inc(),
                ConnectionEvent::Success => m.logged_out.inc(),
                _ => {}
            }
        }
        if let Some(emit) = step.emit {
            self.since_ms = now_ms();
            // the bot first: whoever sees the broadcast knows the bot was told
            self.with_bot(ctx, |bot, h| {
                bot.on_connection_state(h, emit.state, emit.event, &emit.ext)
            });
            self.shared.publish(
                &self.user_id,
                EventKind::Connection {
                    state: emit.state,
                    event: emit.event,
                    ext: emit.ext,
                },
            );
        }
        let ended = step.ended;
        for effect in step.effects {
            match effect {
                ConnEffect::Connect => self.connect(ctx),
                ConnEffect::ScheduleRetry => self.schedule_retry(ctx),
                ConnEffect::CloseLink => self.close_link(ctx),
                ConnEffect::RoomsInterrupted => {
                    self.shared.metrics.disconnects.inc();
                    self.down_since = Some(Instant::now());
                    for id in self.room_ids() {
                        self.room_input(&id, RoomInput::AccountReconnecting, ctx);
                    }
                }
                ConnEffect::RoomsResume => {
                    self.shared.metrics.relogins_succeeded.inc();
                    if let Some(t) = self.down_since.take() {
                        self.shared.metrics.reconnect_time.record(t.elapsed());
                    }
                    for id in self.room_ids() {
                        self.room_input(&id, RoomInput::AccountConnected, ctx);
                    }
                }
                ConnEffect::RoomsFirstEntry => {
                    self.shared.metrics.logins_succeeded.inc();
                    self.down_since = None;
                    let early = self.room_ids();
                    for spec in std::mem::take(&mut self.initial_rooms) {
                        self.start_room(spec, None, ctx);
                    }
                    // rooms entered by a caller before the first login was through
                    for id in early {
                        self.send_room_entry(&id, ctx);
                    }
                }
                ConnEffect::RoomsEnd => {
                    for id in self.room_ids() {
                        self.room_input(&id, RoomInput::AccountEnded, ctx);
                    }
                }
                ConnEffect::FlushOutbox => self.flush_outbox(ctx),
                ConnEffect::EndAccount => {
                    let cause = ended.clone().unwrap_or(DisconnectCause::Logout);
                    self.end_account(cause, ctx);
                }
            }
        }
    }

    fn room_ids(&self) -> Vec<Arc<str>> {
        self.rooms.iter().map(|r| r.id.clone()).collect()
    }

    /// Ends this link attempt with `cause`, unless it belongs to an older generation.
    fn lost(&mut self, generation: u32, cause: DisconnectCause, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        // A link lost while logging out completes the logout.
        let cause = if self.logout_reply.is_some() {
            DisconnectCause::Logout
        } else {
            cause
        };
        tracing::debug!(account = %self.user_id, cause = %cause.name(), "link ended");
        self.conn_input(ConnInput::Lost(cause), ctx);
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        let retry = &self.shared.config.retry;
        let down_since = *self.down_since.get_or_insert_with(Instant::now);
        if let Some(limit) = retry.give_up_after {
            if down_since.elapsed() >= limit {
                self.conn_input(ConnInput::Lost(DisconnectCause::RetryWindowExhausted), ctx);
                return;
            }
        }
        let delay = self.backoff.next_delay(retry, &mut rand::thread_rng());
        let generation = self.generation;
        ctx.run_later(delay, move |act, ctx| {
            if act.generation == generation {
                act.conn_input(ConnInput::RetryDue, ctx);
            }
        });
    }

    /// Starts a connect attempt: admission, token, socket, login.
    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.generation = self.generation.wrapping_add(1);
        self.admit_then_connect(self.generation, ctx);
    }

    fn admit_then_connect(&mut self, generation: u32, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        if let Some(until) = self.offline_until {
            if Instant::now() < until {
                self.lost(generation, DisconnectCause::ConnectFailed, ctx);
                return;
            }
            self.offline_until = None;
        }
        let admission = &self.shared.admission;
        if let Err(not_until) = admission.check() {
            let wait = not_until.wait_time_from(admission.clock().now());
            let wait = wait + Duration::from_millis(rand::thread_rng().gen_range(0..20));
            ctx.run_later(wait, move |act, ctx| {
                act.admit_then_connect(generation, ctx)
            });
            return;
        }
        if self.conn.state() == ConnectionState::Reconnecting {
            self.shared.metrics.relogins_attempted.inc();
        } else {
            self.shared.metrics.logins_attempted.inc();
        }
        let now = (now_ms() / 1000) as i64;
        let usable = self.token.as_ref().filter(|t| {
            crate::token::token04::client_check(t.expose(), now, &self.shared.config.token_limits)
                .is_ok()
        });
        if usable.is_some() {
            self.open(generation, ctx);
            return;
        }
        // A provider that never answers counts as a network error, retried on the schedule.
        let deadline = self.shared.config.timings.connect_timeout;
        let fetch = tokio::time::timeout(deadline, self.provider.token(&self.user_id));
        fetch
            .into_actor(self)
            .map(move |result, act, ctx| {
                if generation != act.generation {
                    return;
                }
                let result = result.unwrap_or_else(|_| {
                    Err(ZimError::new(
                        ErrorCode::TIMEOUT,
                        "token provider timed out",
                    ))
                });
                match result {
                    Ok(token) => {
                        let now = (now_ms() / 1000) as i64;
                        let check = crate::token::token04::client_check(
                            token.expose(),
                            now,
                            &act.shared.config.token_limits,
                        );
                        match check {
                            Ok(_) => {
                                act.token = Some(token);
                                act.open(generation, ctx);
                            }
                            Err(code) => {
                                act.lost(generation, DisconnectCause::LoginRejected(code), ctx)
                            }
                        }
                    }
                    Err(e) if e.code.is_retryable() => {
                        act.lost(generation, DisconnectCause::ConnectFailed, ctx)
                    }
                    Err(e) => act.lost(generation, DisconnectCause::LoginRejected(e.code), ctx),
                }
            })
            .spawn(ctx);
    }

    fn open(&mut self, generation: u32, ctx: &mut Context<Self>) {
        let url = self.shared.config.backend_url.clone();
        let deadline = self.shared.config.timings.connect_timeout;
        connection::open(url, deadline)
            .into_actor(self)
            .map(move |result, act, ctx| {
                if generation != act.generation {
                    return; // an older attempt: its socket is dropped here
                }
                match result {
                    Ok(link) => act.link_up(generation, link, ctx),
                    Err(e) => {
                        tracing::debug!(account = %act.user_id, error = %e, "connect failed");
                        act.lost(generation, DisconnectCause::ConnectFailed, ctx)
                    }
                }
            })
            .spawn(ctx);
    }

    fn link_up(&mut self, generation: u32, link: WsLink, ctx: &mut Context<Self>) {
        let stream = ctx.add_stream(connection::tagged(link.reader, generation));
        let writer = Writer::new(link.writer, ctx);
        self.link = Some(Link {
            writer,
            encoder: link.encoder,
            stream,
            heartbeat: None,
            room_heartbeat: None,
        });
        let Some(token) = self.token.clone() else {
            self.lost(
                generation,
                DisconnectCause::LoginRejected(ErrorCode::TOKEN_INVALID),
                ctx,
            );
            return;
        };
        let login = Request::Login(Login {
            user_id: self.user_id.to_string(),
            user_name: Some(self.user_name.to_string()),
            token,
            device_id: self.device_id(),
            platform: Some("zimfleet".into()),
        });
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(kind) = self.request(login, PendingKind::Login, timeout, ctx) {
            self.fail_unsent(kind, ErrorCode::NETWORK_ERROR, ctx);
        }
    }

    /// Drops the socket and everything bound to it; sends in flight go back to the outbox.
    fn close_link(&mut self, ctx: &mut Context<Self>) {
        self.generation = self.generation.wrapping_add(1);
        if let Some(link) = self.link.take() {
            ctx.cancel_future(link.writer.handle());
            ctx.cancel_future(link.stream);
            for h in [link.heartbeat, link.room_heartbeat].into_iter().flatten() {
                ctx.cancel_future(h);
            }
        }
        let mut pending: Vec<(u64, Pending)> = self.pending.drain().collect();
        pending.sort_by_key(|(id, _)| *id);
        let mut resend = Vec::new();
        for (_, p) in pending {
            ctx.cancel_future(p.timer);
            match p.kind {
                PendingKind::Send(item) => resend.push(item),
                kind => self.fail_unsent(kind, ErrorCode::NETWORK_ERROR, ctx),
            }
        }
        for item in resend.into_iter().rev() {
            self.outbox.push_front(item);
        }
        for room in &mut self.rooms {
            room.heartbeat_in_flight = false;
            room.entry_in_flight = false;
            room.catching_up = false;
        }
        if !self.outbox.is_empty() {
            self.schedule_outbox_sweep(ctx);
        }
    }

    fn end_account(&mut self, cause: DisconnectCause, ctx: &mut Context<Self>) {
        let reason = cause.name();
        tracing::info!(account = %self.user_id, reason = %reason, "account ended");
        self.ended = Some(reason);
        let not_logged_in = ZimError::new(ErrorCode::NOT_LOGGED_IN, "not logged in");
        for item in self.outbox.drain(..) {
            item.answer(Err(not_logged_in.clone()), &self.shared);
        }
        for room in &mut self.rooms {
            if let Some(w) = room.waiter.take() {
                let _ = w.send(Err(not_logged_in.clone()));
            }
        }
        if let Some(reply) = self.logout_reply.take() {
            let _ = reply.send(Ok(()));
        }
        self.shared.renewal_cancelled.do_send(RenewalCancelled {
            user_id: self.user_id.clone(),
        });
        let status = self.status();
        self.shared.record_end(&self.user_id, status);
        ctx.stop();
    }

    fn status(&self) -> AccountStatus {
        AccountStatus {
            user_id: self.user_id.to_string(),
            state: self.conn.state(),
            last_event: self.conn.last_event(),
            since_ms: self.since_ms,
            ended: self.ended.clone(),
            rooms: self
                .rooms
                .iter()
                .map(|r| RoomStatus {
                    room_id: r.id.to_string(),
                    state: r.machine.state(),
                    last_event: r.machine.last_event(),
                    since_ms: r.since_ms,
                })
                .collect(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Requests

    /// Sends a request on the link and remembers it until its reply or `timeout`.
    /// Without a link the kind comes back to the caller.
    fn request(
        &mut self,
        request: Request,
        kind: PendingKind,
        timeout: Duration,
        ctx: &mut Context<Self>,
    ) -> Result<u64, PendingKind> {
        let Some(link) = self.link.as_mut() else {
            return Err(kind);
        };
        let id = self.next_id;
        let text = match serde_json::to_string(&RequestFrame { id, request }) {
            Ok(text) => text,
            Err(_) => return Err(kind),
        };
        if !link.write(WsMessage::Text(text.into())) {
            return Err(kind);
        }
        self.next_id += 1;
        let timer = ctx.run_later(timeout, move |act, ctx| act.timed_out(id, ctx));
        self.pending.insert(
            id,
            Pending {
                kind,
                timer,
                sent_at: Instant::now(),
            },
        );
        Ok(id)
    }

    /// A request that could not be sent or whose link went away answers `code`.
    fn fail_unsent(&mut self, kind: PendingKind, code: ErrorCode, ctx: &mut Context<Self>) {
        let err = ZimError::from_code(code);
        match kind {
            PendingKind::Send(item) => item.answer(Err(err), &self.shared),
            PendingKind::RoomLeave { reply, .. } => {
                if let Some(r) = reply {
                    let _ = r.send(Err(err));
                }
            }
            PendingKind::RoomMembers { reply } => {
                let _ = reply.send(Err(err));
            }
            PendingKind::RenewToken { token, reply } => match reply {
                Some(r) => {
                    let _ = r.send(Err(err));
                }
                // The service's token was not delivered: the re-login carries it instead.
                None => {
                    let now = (now_ms() / 1000) as i64;
                    let limits = &self.shared.config.token_limits;
                    if crate::token::token04::client_check(token.expose(), now, limits).is_ok() {
                        self.token = Some(token);
                    }
                }
            },
            PendingKind::Logout => {
                if self.logout_reply.is_some() {
                    self.conn_input(ConnInput::Lost(DisconnectCause::Logout), ctx);
                }
            }
            // Entries are sent again on T1, heartbeats and history by the room machine.
            PendingKind::Login
            | PendingKind::Heartbeat
            | PendingKind::RoomEntry { .. }
            | PendingKind::RoomHeartbeat { .. }
            | PendingKind::RoomHistory { .. } => {}
        }
    }

    fn timed_out(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        let generation = self.generation;
        match p.kind {
            PendingKind::Login => self.lost(
                generation,
                DisconnectCause::LoginRejected(ErrorCode::TIMEOUT),
                ctx,
            ),
            PendingKind::Heartbeat => self.lost(generation, DisconnectCause::HeartbeatTimeout, ctx),
            kind => self.on_reply_kind(
                kind,
                ErrorCode::TIMEOUT,
                "request timed out",
                "",
                p.sent_at,
                ctx,
            ),
        }
    }

    fn on_reply(
        &mut self,
        id: u64,
        code: ErrorCode,
        msg: Option<String>,
        text: &str,
        ctx: &mut Context<Self>,
    ) {
        let Some(p) = self.pending.remove(&id) else {
            return; // late (already timed out) or unknown
        };
        ctx.cancel_future(p.timer);
        let msg = msg.unwrap_or_default();
        self.on_reply_kind(p.kind, code, &msg, text, p.sent_at, ctx);
    }

    fn on_reply_kind(
        &mut self,
        kind: PendingKind,
        code: ErrorCode,
        msg: &str,
        text: &str,
        sent_at: Instant,
        ctx: &mut Context<Self>,
    ) {
        let err = || {
            ZimError::new(
                code,
                if msg.is_empty() {
                    code.description()
                } else {
                    msg
                },
            )
        };
        let generation = self.generation;
        match kind {
            PendingKind::Login => {
                if !code.is_ok() {
                    self.lost(generation, DisconnectCause::LoginRejected(code), ctx);
                    return;
                }
                match ServerFrame::reply_body::<LoginReply>(text) {
                    Ok(reply) => self.login_ok(reply, sent_at, ctx),
                    Err(_) => self.lost(generation, DisconnectCause::SocketError, ctx),
                }
            }
            PendingKind::Heartbeat => {}
            PendingKind::RenewToken { token, reply } => {
                let result = if code.is_ok() {
                    ServerFrame::reply_body::<RenewTokenReply>(text)
                        .map(|r| r.token_expire_at)
                        .map_err(|_| ZimError::from_code(ErrorCode::SERVER_INTERNAL))
                } else {
                    Err(err())
                };
                match &result {
                    Ok(expire_at) => {
                        self.token = Some(token);
                        self.shared.metrics.renewals_ok.inc();
                        self.shared.publish(
                            &self.user_id,
                            EventKind::TokenRenewed {
                                expire_at: *expire_at,
                            },
                        );
                        self.set_token_expiry(*expire_at, ctx);
                    }
                    Err(e) => {
                        self.shared.metrics.renewals_failed.inc();
                        self.shared.publish(
                            &self.user_id,
                            EventKind::TokenRenewFailed {
                                error: e.to_string(),
                            },
                        );
                        self.retry_renewal_later(ctx);
                    }
                }
                if let Some(r) = reply {
                    let _ = r.send(result);
                }
            }
            PendingKind::Logout => self.conn_input(ConnInput::Lost(DisconnectCause::Logout), ctx),
            PendingKind::RoomEntry {
                room,
                generation,
                entry,
            } => self.on_entry_reply(&room, generation, entry, code, text, ctx),
            PendingKind::RoomHeartbeat { room, generation } => {
                let Some(r) = self.room_mut(&room).filter(|r| r.generation == generation) else {
                    return;
                };
                r.heartbeat_in_flight = false;
                let input = if code.is_ok() {
                    RoomInput::HeartbeatOk
                } else {
                    RoomInput::HeartbeatFailed(code)
                };
                self.room_input(&room, input, ctx);
            }
            PendingKind::RoomLeave { room, reply } => {
                let result = if code.is_ok() { Ok(()) } else { Err(err()) };
                if result.is_ok() {
                    self.room_input(&room, RoomInput::LeaveOk, ctx);
                }
                if let Some(r) = reply {
                    let _ = r.send(result);
                }
            }
            PendingKind::RoomMembers { reply } => {
                let result = if code.is_ok() {
                    ServerFrame::reply_body::<RoomMembersReply>(text)
                        .map_err(|_| ZimError::from_code(ErrorCode::SERVER_INTERNAL))
                } else {
                    Err(err())
                };
                let _ = reply.send(result);
            }
            PendingKind::RoomHistory { room, generation } => {
                let page = if code.is_ok() {
                    ServerFrame::reply_body::<RoomHistoryReply>(text).ok()
                } else {
                    None
                };
                self.on_history(&room, generation, page, ctx);
            }
            PendingKind::Send(item) => {
                let result = if code.is_ok() {
                    ServerFrame::reply_body::<MessageSendReply>(text)
                        .map_err(|_| ZimError::from_code(ErrorCode::SERVER_INTERNAL))
                } else {
                    Err(err())
                };
                item.answer(result, &self.shared);
            }
        }
    }

    fn login_ok(&mut self, reply: LoginReply, sent_at: Instant, ctx: &mut Context<Self>) {
        let timings = &self.shared.config.timings;
        self.heartbeat_every = if reply.heartbeat_interval_ms > 0 {
            Duration::from_millis(reply.heartbeat_interval_ms)
        } else {
            timings.heartbeat_interval
        };
        if reply.room_heartbeat_interval_ms > 0 {
            self.room_heartbeat_every = Duration::from_millis(reply.room_heartbeat_interval_ms);
        }
        // server_time_ms comes from the peer: no arithmetic on it may overflow
        self.clock_offset_ms = i64::try_from(reply.server_time_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(now_ms() as i64);
        self.backoff.reset();
        if self.conn.state() == ConnectionState::Connecting {
            self.shared.metrics.login_latency.record(sent_at.elapsed());
        }
        if let Some(link) = self.link.as_mut() {
            let hb = ctx.run_interval(self.heartbeat_every, |act, ctx| act.send_heartbeat(ctx));
            let rhb = ctx.run_interval(self.room_heartbeat_every, |act, ctx| {
                act.send_room_heartbeats(ctx)
            });
            link.heartbeat = Some(hb);
            link.room_heartbeat = Some(rhb);
        }
        self.set_token_expiry(reply.token_expire_at, ctx);
        self.conn_input(ConnInput::LoginOk, ctx);
    }

    fn send_heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self
            .pending
            .values()
            .any(|p| matches!(p.kind, PendingKind::Heartbeat))
        {
            return; // the one in flight will time out if the link is dead
        }
        let timeout = self.shared.config.timings.heartbeat_timeout;
        let _ = self.request(Request::Heartbeat, PendingKind::Heartbeat, timeout, ctx);
    }

    fn send_room_heartbeats(&mut self, ctx: &mut Context<Self>) {
        for id in self.room_ids() {
            if self
                .room_mut(&id)
                .is_some_and(|r| r.machine.wants_heartbeat() && !r.heartbeat_in_flight)
            {
                self.send_room_heartbeat(&id, ctx);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Frames from the server

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        match ServerFrame::parse(text) {
            Ok(ServerFrame::Reply {
                id,
                code,
                msg,
                text,
            }) => self.on_reply(id, code, msg, text, ctx),
            Ok(ServerFrame::Push(push)) => self.on_push(push, ctx),
            Err(e) => {
                tracing::warn!(account = %self.user_id, error = %e, "unreadable frame ignored")
            }
        }
    }

    fn on_push(&mut self, push: Push, ctx: &mut Context<Self>) {
        match push {
            Push::Message { message, .. } => match message.conv_type {
                ConvType::Room => self.on_room_message(message, ctx),
                _ => self.deliver(&message, ctx),
            },
            Push::RoomMemberJoined { room_id, members } => {
                if self.room_mut(&room_id).is_some() {
                    self.with_bot(ctx, |bot, h| bot.on_members_joined(h, &room_id, &members));
                }
            }
            Push::RoomMemberLeft { room_id, members } => {
                if self.room_mut(&room_id).is_some() {
                    self.with_bot(ctx, |bot, h| bot.on_members_left(h, &room_id, &members));
                }
            }
            Push::RoomKickout { room_id, reason } => {
                self.room_input(&room_id, RoomInput::Kickout(reason), ctx)
            }
            Push::TokenWillExpire { remaining_secs } => self.token_will_expire(remaining_secs, ctx),
            Push::Kickout { reason, .. } => {
                let generation = self.generation;
                self.lost(generation, DisconnectCause::Kickout(reason), ctx)
            }
            Push::Unknown => {}
        }
    }

    fn deliver(&self, message: &ChatMessage, ctx: &Context<Self>) {
        self.shared.metrics.messages_received.inc();
        self.with_bot(ctx, |bot, h| bot.on_message(h, message));
    }

    // -----------------------------------------------------------------------------------------
    // Rooms

    fn room_mut(&mut self, id: &str) -> Option<&mut Room> {
        self.rooms.iter_mut().find(|r| &*r.id == id)
    }

    /// Starts a room session (first entry, or a restart by the supervisor when `restart`).
    fn start_room(
        &mut self,
        spec: RoomSpec,
        waiter: Option<oneshot::Sender<Result<RoomInfo, ZimError>>>,
        ctx: &mut Context<Self>,
    ) {
        let mut room = Room::new(Arc::new(spec), now_ms());
        room.baseline_ms = self.server_now_ms();
        room.waiter = waiter;
        room.entry_started = Some(Instant::now());
        let entry = room.spec.entry;
        let id = room.id.clone();
        self.rooms.push(room);
        self.room_input(
            &id,
            RoomInput::Start {
                entry,
                recovery: false,
            },
            ctx,
        );
    }

    fn room_input(&mut self, id: &str, input: RoomInput, ctx: &mut Context<Self>) {
        let Some(room) = self.room_mut(id) else {
            return;
        };
        let policy = room.spec.recovery.clone();
        let step = room.machine.step(input, &policy);
        self.apply_room(id, step, ctx);
    }

    fn apply_room(&mut self, id: &str, step: RoomStep, ctx: &mut Context<Self>) {
        let Some(room) = self.rooms.iter_mut().find(|r| &*r.id == id) else {
            return;
        };
        let room_id = room.id.clone();
        if let Some(emit) = &step.emit {
            room.since_ms = now_ms();
            let m = &self.shared.metrics;
            match (emit.state, emit.event) {
                (RoomState::Connected, RoomEvent::Success) => {
                    if let Some(t) = room.interrupted_at.take() {
                        m.room_recovery_time.record(t.elapsed());
                        match room.restart_cause.take() {
                            Some(RoomEvent::RoomNotExist) => m.room_recovered_after_not_exist.inc(),
                            Some(_) => m.room_recovered_after_timeout.inc(),
                            None => m.room_recovered_member.inc(),
                        }
                    }
                    if let Some(t) = room.entry_started.take() {
                        m.room_enter_latency.record(t.elapsed());
                    }
                    if let Some(w) = room.waiter.take() {
                        let info = room.info.clone().unwrap_or_else(|| RoomInfo {
                            room_id: room_id.to_string(),
                            ..RoomInfo::default()
                        });
                        let _ = w.send(Ok(info));
                    }
                }
                (RoomState::Connecting, RoomEvent::NetworkInterrupted) => {
                    room.interrupted_at.get_or_insert_with(Instant::now);
                }
                (RoomState::Disconnected, event) => {
                    if let Some(w) = room.waiter.take() {
                        let _ = w.send(Err(room_error(event, &emit.ext)));
                    }
                    if matches!(event, RoomEvent::ConnectTimeout | RoomEvent::RoomNotExist) {
                        room.interrupted_at.get_or_insert_with(Instant::now);
                    }
                }
                _ => {}
            }
            let emit = emit.clone();
            self.with_bot(ctx, |bot, h| {
                bot.on_room_state(h, &room_id, emit.state, emit.event, &emit.ext)
            });
            self.shared.publish(
                &self.user_id,
                EventKind::Room {
                    room_id: room_id.to_string(),
                    state: emit.state,
                    event: emit.event,
                    ext: emit.ext,
                },
            );
        }
        let connected = step
            .emit
            .as_ref()
            .is_some_and(|e| e.state == RoomState::Connected);
        let catch_up = step.effects.contains(&RoomEffect::CatchUp);
        if connected && !catch_up {
            self.release_held(&room_id, ctx);
        }

        for effect in step.effects {
            match effect {
                RoomEffect::SendEntry(_) => self.send_room_entry(&room_id, ctx),
                RoomEffect::SendHeartbeat => self.send_room_heartbeat(&room_id, ctx),
                RoomEffect::CatchUp => self.catch_up(&room_id, ctx),
                RoomEffect::ResetSeq => {
                    let now = self.server_now_ms();
                    if let Some(r) = self.room_mut(&room_id) {
                        r.last_seq = 0;
                        r.baseline_ms = now;
                        r.held.clear();
                    }
                }
                RoomEffect::Restart(entry) => self.restart_room(&room_id, entry, ctx),
                RoomEffect::GiveUp => self.give_up_room(&room_id, "recovery policy is leave", ctx),
                RoomEffect::Remove => self.rooms.retain(|r| r.id != room_id),
            }
        }
        // A room back, or gone for good: sends waiting for it may go now.
        self.flush_outbox(ctx);
    }

    /// The supervisor's restart: bounded by the room's budget, backed off and jittered.
    fn restart_room(&mut self, id: &Arc<str>, entry: RoomEntry, ctx: &mut Context<Self>) {
        let Some(room) = self.room_mut(id) else {
            return;
        };
        let policy = &room.spec.recovery;
        let verdict =
            room.budget
                .request(Instant::now(), policy.max_restarts, policy.restart_window);
        match verdict {
            RestartVerdict::GiveUp => self.give_up_room(id, "restart budget spent", ctx),
            RestartVerdict::After(delay) => {
                room.restart_cause = Some(room.machine.last_event());
                room.generation = room.generation.wrapping_add(1);
                room.entry_in_flight = false;
                room.heartbeat_in_flight = false;
                room.catching_up = false;
                let generation = room.generation;
                let delay = jittered(delay, 0.2, &mut rand::thread_rng());
                let timer_id = id.clone();
                let timer = ctx.run_later(delay, move |act, ctx| {
                    let id = timer_id;
                    let Some(room) = act.room_mut(&id).filter(|r| r.generation == generation)
                    else {
                        return;
                    };
                    room.restart_timer = None;
                    room.entry_started = Some(Instant::now());
                    act.room_input(
                        &id,
                        RoomInput::Start {
                            entry,
                            recovery: true,
                        },
                        ctx,
                    );
                });
                if let Some(room) = self.room_mut(id) {
                    room.restart_timer = Some(timer);
                }
            }
        }
    }

    fn give_up_room(&mut self, id: &Arc<str>, reason: &str, ctx: &mut Context<Self>) {
        self.shared.metrics.room_recovery_gave_up.inc();
        self.rooms.retain(|r| r.id != *id);
        self.with_bot(ctx, |bot, h| bot.on_room_gave_up(h, id, reason));
        self.shared.publish(
            &self.user_id,
            EventKind::RoomGaveUp {
                room_id: id.to_string(),
                reason: reason.to_owned(),
            },
        );
    }

    fn send_room_entry(&mut self, id: &Arc<str>, ctx: &mut Context<Self>) {
        if !self.conn.is_connected() {
            return; // T1 sends it
        }
        let Some(room) = self.rooms.iter_mut().find(|r| r.id == *id) else {
            return;
        };
        let Some(entry) = room.machine.pending_entry() else {
            return;
        };
        if room.entry_in_flight {
            return;
        }
        let generation = room.generation;
        let admission = &self.shared.admission;
        if let Err(not_until) = admission.check() {
            let wait = not_until.wait_time_from(admission.clock().now())
                + Duration::from_millis(rand::thread_rng().gen_range(0..20));
            let id = id.clone();
            room.entry_in_flight = true;
            ctx.run_later(wait, move |act, ctx| {
                if let Some(room) = act.room_mut(&id).filter(|r| r.generation == generation) {
                    room.entry_in_flight = false;
                    act.send_room_entry(&id, ctx);
                }
            });
            return;
        }
        let spec = &room.spec;
        let create = || RoomCreate {
            room_id: spec.room_id.clone(),
            room_name: spec.room_name.clone(),
            attributes: (!spec.attributes.is_empty()).then(|| spec.attributes.clone()),
            destroy_delay_secs: None,
        };
        let request = match entry {
            RoomEntry::Create => Request::RoomCreate(create()),
            RoomEntry::Enter => Request::RoomEnter(create()),
            RoomEntry::Join => Request::RoomJoin(RoomRef {
                room_id: spec.room_id.clone(),
            }),
        };
        room.entry_in_flight = true;
        let kind = PendingKind::RoomEntry {
            room: id.clone(),
            generation,
            entry,
        };
        let timeout = self.shared.config.timings.room_request_timeout;
        if self.request(request, kind, timeout, ctx).is_err() {
            if let Some(room) = self.room_mut(id) {
                room.entry_in_flight = false;
            }
        }
    }

    fn on_entry_reply(
        &mut self,
        id: &Arc<str>,
        generation: u32,
        entry: RoomEntry,
        code: ErrorCode,
        text: &str,
        ctx: &mut Context<Self>,
    ) {
        let Some(room) = self.room_mut(id).filter(|r| r.generation == generation) else {
            return;
        };
        room.entry_in_flight = false;
        let input = if code.is_ok() {
            let (info, created) = match entry {
                RoomEntry::Enter => match ServerFrame::reply_body::<RoomEnterReply>(text) {
                    Ok(r) => (Some(r.room), r.created),
                    Err(_) => (None, false),
                },
                RoomEntry::Create => (
                    ServerFrame::reply_body::<RoomReply>(text)
                        .ok()
                        .map(|r| r.room),
                    true,
                ),
                RoomEntry::Join => (
                    ServerFrame::reply_body::<RoomReply>(text)
                        .ok()
                        .map(|r| r.room),
                    false,
                ),
            };
            room.info = info;
            RoomInput::EntryOk { created }
        } else if code == ErrorCode::ALREADY_IN_ROOM && entry == RoomEntry::Join {
            // a join resent after a lost link: we are in
            RoomInput::EntryOk { created: false }
        } else {
            RoomInput::EntryFailed(code)
        };
        self.room_input(id, input, ctx);
    }

    fn send_room_heartbeat(&mut self, id: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(room) = self.room_mut(id) else {
            return;
        };
        if room.heartbeat_in_flight {
            return;
        }
        room.heartbeat_in_flight = true;
        let kind = PendingKind::RoomHeartbeat {
            room: id.clone(),
            generation: room.generation,
        };
        let request = Request::RoomHeartbeat(RoomRef {
            room_id: id.to_string(),
        });
        let timeout = self.shared.config.timings.request_timeout;
        if self.request(request, kind, timeout, ctx).is_err() {
            if let Some(room) = self.room_mut(id) {
                room.heartbeat_in_flight = false;
            }
        }
    }

    /// Fetches room_history after the last seq delivered; live messages wait meanwhile.
    fn catch_up(&mut self, id: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(room) = self.room_mut(id) else {
            return;
        };
        room.catching_up = true;
        let request = Request::RoomHistory(RoomHistory {
            room_id: id.to_string(),
            after_seq: room.last_seq,
            limit: Some(MAX_PAGE),
        });
        let kind = PendingKind::RoomHistory {
            room: id.clone(),
            generation: room.generation,
        };
        let timeout = self.shared.config.timings.request_timeout;
        if self.request(request, kind, timeout, ctx).is_err() {
            if let Some(room) = self.room_mut(id) {
                room.catching_up = false;
            }
        }
    }

    fn on_history(
        &mut self,
        id: &Arc<str>,
        generation: u32,
        page: Option<RoomHistoryReply>,
        ctx: &mut Context<Self>,
    ) {
        let Some(room) = self.room_mut(id).filter(|r| r.generation == generation) else {
            return;
        };
        let Some(page) = page else {
            // The fetch failed: deliver what was held, in order; the next gap fetches again.
            room.catching_up = false;
            self.release_held(id, ctx);
            return;
        };
        let mut fresh = Vec::new();
        let more = !page.complete && !page.messages.is_empty();
        for message in page.messages {
            let seq = message.seq.unwrap_or(0);
            if seq <= room.last_seq {
                continue;
            }
            let before_session = room.last_seq == 0 && message.timestamp_ms < room.baseline_ms;
            room.last_seq = seq;
            if !before_session {
                fresh.push(message);
            }
        }
        for message in &fresh {
            self.deliver(message, ctx);
        }
        if more {
            self.catch_up(id, ctx);
        } else if let Some(room) = self.room_mut(id) {
            room.catching_up = false;
            self.release_held(id, ctx);
        }
    }

    fn release_held(&mut self, id: &Arc<str>, ctx: &mut Context<Self>) {
        let Some(room) = self.room_mut(id) else {
            return;
        };
        let mut held = std::mem::take(&mut room.held);
        held.sort_by_key(|m| m.seq.unwrap_or(0));
        for message in held {
            self.on_room_message(message, ctx);
        }
    }

    /// A live room message: delivered once, in seq order; a gap triggers a catch-up.
    fn on_room_message(&mut self, message: ChatMessage, ctx: &mut Context<Self>) {
        let Some(room) = self.room_mut(&message.conv_id) else {
            return;
        };
        let Some(seq) = message.seq else {
            self.deliver(&message, ctx);
            return;
        };
        if seq <= room.last_seq {
            return; // seen already
        }
        if room.catching_up || !room.machine.is_connected() {
            if room.held.len() < CATCH_UP_BUFFER {
                room.held.push(message);
            }
            return;
        }
        if room.last_seq != 0 && seq > room.last_seq + 1 {
            let id = room.id.clone();
            room.held.push(message);
            self.catch_up(&id, ctx);
            return;
        }
        room.last_seq = seq;
        self.deliver(&message, ctx);
    }

    // -----------------------------------------------------------------------------------------
    // Outbox

    /// Whether a message may go now: the account is Connected and, for a room the account
    /// keeps, that room is too (room sends wait for T2 and any rejoin, so they are not
    /// refused with 6000321 while the room recovers).
    fn can_send_now(&self, item: &Outgoing) -> bool {
        self.conn.is_connected()
            && (item.conv_type != ConvType::Room
                || self
                    .rooms
                    .iter()
                    .find(|r| *r.id == *item.to)
                    .is_none_or(|r| r.machine.is_connected()))
    }

    /// Sends, in order, what may go now; the rest keeps waiting (expired ones fail unsent).
    fn flush_outbox(&mut self, ctx: &mut Context<Self>) {
        if !self.conn.is_connected() || self.outbox.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut waiting = VecDeque::new();
        while let Some(item) = self.outbox.pop_front() {
            if item.deadline <= now {
                let err = ZimError::new(ErrorCode::TIMEOUT, "waited too long to be sent");
                item.answer(Err(err), &self.shared);
            } else if !self.can_send_now(&item) {
                waiting.push_back(item);
            } else if let Err(PendingKind::Send(item)) = self.send_now(item, ctx) {
                waiting.push_back(item);
            }
        }
        self.outbox = waiting;
    }

    fn send_now(&mut self, item: Outgoing, ctx: &mut Context<Self>) -> Result<u64, PendingKind> {
        let request = Request::MessageSend(MessageSend {
            conv_type: item.conv_type,
            to: item.to.to_string(),
            client_msg_id: item.client_msg_id.to_string(),
            msg_type: item.msg_type,
            body: item.body.clone(),
            priority: None,
        });
        let timeout = self.shared.config.timings.send_timeout;
        self.request(request, PendingKind::Send(item), timeout, ctx)
    }

    fn schedule_outbox_sweep(&mut self, ctx: &mut Context<Self>) {
        if self.outbox_sweep.is_some() {
            return;
        }
        let Some(first) = self.outbox.iter().map(|o| o.deadline).min() else {
            return;
        };
        let wait = first.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
        self.outbox_sweep = Some(ctx.run_later(wait, |act, ctx| {
            act.outbox_sweep = None;
            let now = Instant::now();
            let (expired, kept): (Vec<_>, Vec<_>) =
                act.outbox.drain(..).partition(|o| o.deadline <= now);
            act.outbox = kept.into();
            for item in expired {
                item.answer(
                    Err(ZimError::new(
                        ErrorCode::TIMEOUT,
                        "waited too long to be sent",
                    )),
                    &act.shared,
                );
            }
            act.schedule_outbox_sweep(ctx);
        }));
    }

    // -----------------------------------------------------------------------------------------
    // Tokens

    fn set_token_expiry(&mut self, expire_at: i64, ctx: &mut Context<Self>) {
        self.token_expire_at = expire_at;
        for h in self.token_timers.iter_mut().filter_map(Option::take) {
            ctx.cancel_future(h);
        }
        let timings = &self.shared.config.timings;
        let now = now_ms() as i64;
        let expire_ms = expire_at.saturating_mul(1000);
        let until = |t: i64| Duration::from_millis(t.saturating_sub(now).max(0) as u64);
        let warn_in = until(expire_ms.saturating_sub(timings.renew_ahead.as_millis() as i64));
        let end_in = until(expire_ms.saturating_sub(timings.expire_margin.as_millis() as i64));
        let warn = ctx.run_later(warn_in, move |act, ctx| {
            if act.token_expire_at == expire_at {
                let left = expire_ms.saturating_sub(now_ms() as i64).max(0) as u64 / 1000;
                act.token_will_expire(left, ctx);
            }
        });
        let end = ctx.run_later(end_in, move |act, ctx| {
            // A newer token already held (renewed while Reconnecting) goes with the re-login.
            let held = act
                .token
                .as_ref()
                .and_then(|t| crate::token::token04::read_expiry(t.expose()).ok())
                .unwrap_or(0);
            if act.token_expire_at == expire_at && held <= expire_at {
                act.conn_input(ConnInput::Lost(DisconnectCause::TokenNotRenewed), ctx);
            }
        });
        self.token_timers = [Some(warn), Some(end)];
    }

    /// onTokenWillExpire (the server's push or the local timer, once per expiry).
    fn token_will_expire(&mut self, remaining_secs: u64, ctx: &mut Context<Self>) {
        if self.will_expire_for == self.token_expire_at {
            return;
        }
        self.will_expire_for = self.token_expire_at;
        self.with_bot(ctx, |bot, h| bot.on_token_will_expire(h, remaining_secs));
        self.shared
            .publish(&self.user_id, EventKind::TokenWillExpire { remaining_secs });
        self.request_renewal(ctx);
    }

    fn request_renewal(&mut self, ctx: &mut Context<Self>) {
        self.shared.renewal_needed.do_send(RenewalNeeded {
            user_id: self.user_id.clone(),
            expire_at: self.token_expire_at,
            provider: self.provider.clone(),
            reply_to: ctx.address().recipient(),
        });
    }

    fn retry_renewal_later(&mut self, ctx: &mut Context<Self>) {
        let expire_at = self.token_expire_at;
        let delay = jittered(Duration::from_secs(1), 0.2, &mut rand::thread_rng());
        ctx.run_later(delay, move |act, ctx| {
            let deadline = expire_at
                .saturating_mul(1000)
                .saturating_sub(act.shared.config.timings.expire_margin.as_millis() as i64);
            if act.token_expire_at == expire_at && (now_ms() as i64) < deadline {
                act.request_renewal(ctx);
            }
        });
    }

    fn renew_with(
        &mut self,
        token: Secret,
        reply: Option<oneshot::Sender<Result<i64, ZimError>>>,
        ctx: &mut Context<Self>,
    ) {
        if let Err(e) = self.renewals.check(Instant::now()) {
            match reply {
                Some(r) => {
                    let _ = r.send(Err(e));
                }
                // the service's answer came too soon after the last one: try again shortly
                None => {
                    ctx.run_later(
                        crate::session::limits::RenewPacer::MIN_GAP,
                        move |act, ctx| act.renew_with(token, None, ctx),
                    );
                }
            }
            return;
        }
        if !self.conn.is_connected() {
            // Reconnecting: the next login carries the new token.
            let now = (now_ms() / 1000) as i64;
            match crate::token::token04::client_check(
                token.expose(),
                now,
                &self.shared.config.token_limits,
            ) {
                Ok(expire) => {
                    self.token = Some(token);
                    if let Some(r) = reply {
                        let _ = r.send(Ok(expire));
                    }
                }
                Err(code) => {
                    if let Some(r) = reply {
                        let _ = r.send(Err(ZimError::from_code(code)));
                    }
                }
            }
            return;
        }
        let request = Request::RenewToken(RenewToken {
            token: token.clone(),
        });
        let kind = PendingKind::RenewToken { token, reply };
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(kind) = self.request(request, kind, timeout, ctx) {
            self.fail_unsent(kind, ErrorCode::NETWORK_ERROR, ctx);
        }
    }
}

/// The error an enter_room caller gets when the room ends before it is connected.
fn room_error(event: RoomEvent, ext: &serde_json::Value) -> ZimError {
    if let Some(code) = ext.get("code").and_then(|c| c.as_u64()) {
        let code = ErrorCode(code as u32);
        return ZimError::new(code, code.description());
    }
    let code = match event {
        RoomEvent::RoomNotExist => ErrorCode::ROOM_NOT_EXIST,
        RoomEvent::NetworkDisconnected => ErrorCode::NOT_LOGGED_IN,
        RoomEvent::CreateFailed => ErrorCode::ROOM_CREATE_FAILED,
        _ => ErrorCode::ROOM_ENTER_FAILED,
    };
    ZimError::new(code, event.name())
}

impl Actor for Account {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        self.conn_input(ConnInput::Login, ctx);
    }
}

impl StreamHandler<LinkItem> for Account {
    fn handle(&mut self, item: LinkItem, ctx: &mut Self::Context) {
        if item.generation != self.generation {
            return; // an older link
        }
        let generation = item.generation;
        match item.frame {
            Some(Ok(Frame::Text(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => tracing::warn!(account = %self.user_id, "non-UTF-8 frame ignored"),
            },
            Some(Ok(Frame::Ping(payload))) => {
                if let Some(link) = self.link.as_mut() {
                    link.write(WsMessage::Pong(payload));
                }
            }
            Some(Ok(Frame::Close(reason))) => {
                let code = reason.map(|r| u16::from(r.code));
                self.lost(generation, DisconnectCause::Closed(code), ctx)
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(account = %self.user_id, error = %e, "socket error");
                self.lost(generation, DisconnectCause::SocketError, ctx)
            }
            None => self.lost(generation, DisconnectCause::SocketError, ctx),
        }
    }

    /// The stream's own end marker drives the reaction; never stop the account here.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl WriteHandler<WriteError> for Account {
    /// A write error: the read side sees the broken socket too, and the heartbeat backs it up.
    fn error(&mut self, err: WriteError, _ctx: &mut Self::Context) -> Running {
        tracing::debug!(account = %self.user_id, error = %err, "socket write error");
        Running::Continue
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

// ---------------------------------------------------------------------------------------------
// Handlers

impl Handler<SendCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: SendCmd, ctx: &mut Self::Context) {
        let fail = |reply: Option<oneshot::Sender<_>>, err: ZimError, shared: &FleetShared| {
            shared.metrics.messages_send_failed.inc();
            match reply {
                Some(r) => {
                    let _ = r.send(Err(err));
                }
                None => tracing::warn!(error = %err, "posted message refused"),
            }
        };
        if cmd.body.len() > MAX_BODY_BYTES || !is_valid_id(&cmd.to) {
            let err = ZimError::new(
                ErrorCode::INVALID_PARAMETER,
                "body over 49,152 bytes or invalid target id",
            );
            return fail(cmd.reply, err, &self.shared);
        }
        let now = Instant::now();
        let conv_key = match cmd.conv_type {
            ConvType::Room => cmd.to.to_string(),
            _ => format!("@{}", cmd.to),
        };
        if let Err(e) = self
            .shaper
            .check(now)
            .and_then(|_| self.conversations.check(&conv_key, now))
        {
            return fail(cmd.reply, e, &self.shared);
        }
        let item = Outgoing {
            conv_type: cmd.conv_type,
            to: cmd.to,
            client_msg_id: format!("{:016x}", rand::random::<u64>()).into_boxed_str(),
            msg_type: cmd.msg_type,
            body: cmd.body,
            reply: cmd.reply,
            deadline: now + self.shared.config.timings.outbox_wait,
        };
        if self.outbox.is_empty() && self.can_send_now(&item) {
            if let Err(PendingKind::Send(item)) = self.send_now(item, ctx) {
                self.outbox.push_back(item);
                self.schedule_outbox_sweep(ctx);
            }
            return;
        }
        if self.outbox.len() >= self.shared.config.outbox_capacity {
            let err = ZimError::new(
                ErrorCode::NETWORK_ERROR,
                "not connected and the outbox is full",
            );
            return fail(item.reply, err, &self.shared);
        }
        self.outbox.push_back(item);
        self.schedule_outbox_sweep(ctx);
        self.flush_outbox(ctx);
    }
}

impl Handler<EnterRoomCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: EnterRoomCmd, ctx: &mut Self::Context) {
        if !is_valid_id(&cmd.spec.room_id) {
            let _ = cmd.reply.send(Err(ZimError::new(
                ErrorCode::INVALID_PARAMETER,
                "invalid room id",
            )));
            return;
        }
        if let Err(e) = self.shaper.check(Instant::now()) {
            let _ = cmd.reply.send(Err(e));
            return;
        }
        if let Some(room) = self.room_mut(&cmd.spec.room_id) {
            if room.machine.is_connected() {
                let _ = cmd
                    .reply
                    .send(Err(ZimError::from_code(ErrorCode::ALREADY_IN_ROOM)));
                return;
            }
            if !room.machine.is_out() || room.restart_timer.is_none() {
                let _ = cmd
                    .reply
                    .send(Err(ZimError::from_code(ErrorCode::ROOM_CONNECTING)));
                return;
            }
            // out, waiting for a restart: the caller's entry replaces it
            if let Some(t) = room.restart_timer.take() {
                ctx.cancel_future(t);
            }
            let id = room.id.clone();
            self.rooms.retain(|r| r.id != id);
        }
        self.start_room(cmd.spec, Some(cmd.reply), ctx);
    }
}

impl Handler<LeaveRoomCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: LeaveRoomCmd, ctx: &mut Self::Context) {
        let Some(room) = self.room_mut(&cmd.room_id) else {
            let _ = cmd
                .reply
                .send(Err(ZimError::from_code(ErrorCode::NOT_IN_ROOM)));
            return;
        };
        let id = room.id.clone();
        if room.machine.is_out() {
            // out, waiting for a restart: leaving just cancels it
            if let Some(t) = room.restart_timer.take() {
                ctx.cancel_future(t);
            }
            self.rooms.retain(|r| r.id != id);
            let _ = cmd.reply.send(Ok(()));
            return;
        }
        if let Err(e) = self.shaper.check(Instant::now()) {
            let _ = cmd.reply.send(Err(e));
            return;
        }
        let request = Request::RoomLeave(RoomRef {
            room_id: id.to_string(),
        });
        let kind = PendingKind::RoomLeave {
            room: id,
            reply: Some(cmd.reply),
        };
        // ZIM gives 8 s to create/join/enter only; leave is an ordinary request
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(kind) = self.request(request, kind, timeout, ctx) {
            self.fail_unsent(kind, ErrorCode::NETWORK_ERROR, ctx);
        }
    }
}

impl Handler<MembersPageCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: MembersPageCmd, ctx: &mut Self::Context) {
        if let Err(e) = self.shaper.check(Instant::now()) {
            let _ = cmd.reply.send(Err(e));
            return;
        }
        let request = Request::RoomMembers(RoomMembers {
            room_id: cmd.room_id,
            cursor: cmd.cursor,
            limit: Some(MAX_PAGE),
        });
        let kind = PendingKind::RoomMembers { reply: cmd.reply };
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(kind) = self.request(request, kind, timeout, ctx) {
            self.fail_unsent(kind, ErrorCode::NETWORK_ERROR, ctx);
        }
    }
}

impl Handler<RenewTokenCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: RenewTokenCmd, ctx: &mut Self::Context) {
        self.renew_with(cmd.token, Some(cmd.reply), ctx);
    }
}

impl Handler<RenewalOutcome> for Account {
    type Result = ();

    /// From the TokenService.
    fn handle(&mut self, outcome: RenewalOutcome, ctx: &mut Self::Context) {
        match outcome {
            RenewalOutcome::Token(token) => self.renew_with(token, None, ctx),
            RenewalOutcome::GaveUp(e) => {
                self.shared.publish(
                    &self.user_id,
                    EventKind::TokenRenewFailed {
                        error: e.to_string(),
                    },
                );
            }
        }
    }
}

impl Handler<LogoutCmd> for Account {
    type Result = ();

    fn handle(&mut self, cmd: LogoutCmd, ctx: &mut Self::Context) {
        if self.logout_reply.is_some() {
            let _ = cmd
                .reply
                .send(Err(ZimError::from_code(ErrorCode::CLIENT_FREQUENCY_LIMIT)));
            return;
        }
        self.logout_reply = Some(cmd.reply);
        if !self.conn.is_connected() {
            self.conn_input(ConnInput::Lost(DisconnectCause::Logout), ctx);
            return;
        }
        let timeout = self.shared.config.timings.request_timeout;
        for id in self.room_ids() {
            let request = Request::RoomLeave(RoomRef {
                room_id: id.to_string(),
            });
            let kind = PendingKind::RoomLeave {
                room: id.clone(),
                reply: None,
            };
            let _ = self.request(request, kind, timeout, ctx);
        }
        if let Err(kind) = self.request(Request::Logout, PendingKind::Logout, timeout, ctx) {
            self.fail_unsent(kind, ErrorCode::NETWORK_ERROR, ctx);
        }
    }
}

impl Handler<GetStatus> for Account {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<ChaosDrop> for Account {
    type Result = ();

    fn handle(&mut self, _: ChaosDrop, ctx: &mut Self::Context) {
        if self.link.is_some() {
            let generation = self.generation;
            self.lost(generation, DisconnectCause::SocketError, ctx);
        }
    }
}

impl Handler<ChaosOffline> for Account {
    type Result = ();

    fn handle(&mut self, ChaosOffline(d): ChaosOffline, ctx: &mut Self::Context) {
        self.offline_until = Some(Instant::now() + d);
        if self.link.is_some() {
            let generation = self.generation;
            self.lost(generation, DisconnectCause::SocketError, ctx);
        }
    }
}
