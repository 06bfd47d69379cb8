//! The account actor: one per user, on one of the fleet's arbiters. It owns the link (one
//! WebSocket at a time), request ids and deadlines, heartbeats, the outbox and the token,
//! and drives the connection machine of src/session; it starts and supervises one room actor
//! per room it keeps (see `client/room/`), hands them their replies and pushes in socket
//! order, and on a terminal cause stops every one of them, then itself. Nothing restarts it.
//!
//! - [`messages`]: what it is asked (commands from handles, reports from rooms).
//! - `commands.rs`: the handle's commands; `connect.rs`: admission, token, link up and down;
//!   `requests.rs`: ids, deadlines and the owner of each reply; `frames.rs`: what the server
//!   sends, login, heartbeats; `outbox.rs`: sends; `token.rs`: expiry and renewal;
//!   `rooms.rs`: the room actors it supervises; `timer.rs`: its one timer;
//!   `writer.rs`: the link's write side.

mod commands;
mod connect;
mod frames;
pub(crate) mod messages;
mod outbox;
mod requests;
mod rooms;
mod timer;
mod token;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use self::connect::Link;
use self::outbox::Outgoing;
use self::requests::Pending;
use self::rooms::RoomChild;
use super::bot_call::with_bot;
use super::handle::AccountHandle;
use super::renewal::RenewalCancelled;
use super::root::AccountEnded;
use super::shared::FleetShared;
use super::{AccountSpec, AccountStatus, EventKind, RoomSpec};
use crate::bot::Bot;
use crate::clock::unix_ms;
use crate::protocol::{ConnectionEvent, ErrorCode, Secret, ZimError};
use crate::session::{
    Backoff, ConnEffect, ConnInput, ConnStep, ConnectionMachine, ConversationPacer, Deadlines,
    DisconnectCause, Outbox, RenewPacer, RequestShaper, TokenClock,
};
use crate::token::TokenProvider;

/// An interval in ms, at least 1 and at most u32::MAX (about 49 days).
fn interval_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
}

/// The account actor. See the module doc.
pub(crate) struct Account {
    shared: Arc<FleetShared>,
    user_id: Arc<str>,
    user_name: Box<str>,
    device_id: Option<Box<str>>,
    provider: Arc<dyn TokenProvider>,
    bot: Arc<dyn Bot>,
    /// Rooms of the spec, entered after the first login.
    initial_rooms: Box<[RoomSpec]>,

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
    /// The heartbeat intervals, ms (as the server's login reply says; kept small: an idle
    /// account's actor is one allocation, docs/design.md "What an account costs").
    heartbeat_ms: u32,
    room_heartbeat_ms: u32,
    /// Server clock minus ours, in ms.
    clock_offset_ms: i64,

    /// The room actors it supervises, in the order they were started.
    rooms: Vec<RoomChild>,
    /// Numbers the room actors this account starts.
    next_room_serial: u32,
    /// A push went to a room actor since the last barrier: an account-level delivery waits
    /// for the rooms first (socket order for the bot).
    rooms_busy: bool,
    outbox: Outbox<Outgoing>,
    outbox_sweep: Option<SpawnHandle>,

    token: Option<Secret>,
    token_clock: TokenClock,
    /// Its timed duties (src/session/deadlines.rs) and the one timer armed for the earliest.
    deadlines: Deadlines,
    timer: Option<(SpawnHandle, Instant)>,

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
        Self {
            user_id,
            user_name: spec.user_name.into_boxed_str(),
            device_id: spec.device_id.map(String::into_boxed_str),
            provider: spec.token,
            bot,
            initial_rooms: spec.rooms.into_boxed_slice(),
            conn: ConnectionMachine::default(),
            since_ms: unix_ms(),
            ended: None,
            generation: 0,
            link: None,
            next_id: 1,
            pending: HashMap::new(),
            backoff: Backoff::default(),
            down_since: None,
            offline_until: None,
            heartbeat_ms: interval_ms(timings.heartbeat_interval),
            room_heartbeat_ms: 15_000,
            clock_offset_ms: 0,
            rooms: Vec::new(),
            next_room_serial: 0,
            rooms_busy: false,
            outbox: Outbox::new(shared.config.outbox_capacity),
            outbox_sweep: None,
            token: None,
            token_clock: TokenClock::new(timings.renew_ahead, timings.expire_margin),
            deadlines: Deadlines::default(),
            timer: None,
            shaper: RequestShaper::default(),
            conversations: ConversationPacer::default(),
            renewals: RenewPacer::default(),
            logout_reply: None,
            shared,
        }
    }

    fn heartbeat_every(&self) -> Duration {
        Duration::from_millis(u64::from(self.heartbeat_ms))
    }

    fn room_heartbeat_every(&self) -> Duration {
        Duration::from_millis(u64::from(self.room_heartbeat_ms))
    }

    fn own_handle(&self, ctx: &Context<Self>) -> AccountHandle {
        AccountHandle::new(
            self.user_id.clone(),
            ctx.address().recipient(),
            self.shared.clone(),
        )
    }

    /// Runs a bot handler behind catch_unwind: a panic is logged and counted, never fatal.
    fn with_bot(&self, ctx: &Context<Self>, f: impl FnOnce(&dyn Bot, &AccountHandle)) {
        with_bot(&*self.bot, &self.own_handle(ctx), &self.shared.metrics, f);
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

    fn count_end(&self) {
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

    fn apply_conn(&mut self, step: ConnStep, ctx: &mut Context<Self>) {
        if step.ended.is_some() {
            // counted before the event goes out, so whoever sees the event sees the count
            self.count_end();
        }
        if let Some(emit) = step.emit {
            self.since_ms = unix_ms();
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
                    self.rooms_interrupted();
                }
                ConnEffect::RoomsResume => {
                    self.shared.metrics.relogins_succeeded.inc();
                    if let Some(t) = self.down_since.take() {
                        self.shared.metrics.reconnect_time.record(t.elapsed());
                    }
                    self.rooms_resume(false);
                }
                ConnEffect::RoomsFirstEntry => {
                    self.shared.metrics.logins_succeeded.inc();
                    self.down_since = None;
                    // rooms entered by a caller before the first login was through
                    self.rooms_resume(true);
                    for spec in std::mem::take(&mut self.initial_rooms).into_vec() {
                        self.start_room(spec, None, ctx);
                    }
                }
                ConnEffect::RoomsEnd => self.rooms_end(),
                ConnEffect::FlushOutbox => self.flush_outbox(ctx),
                ConnEffect::EndAccount => {
                    let cause = ended.clone().unwrap_or(DisconnectCause::Logout);
                    self.end_account(cause, ctx);
                }
            }
        }
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

    /// The terminal end: every waiting caller is answered, the root is told, the actor stops
    /// (its room actors were told to stop by `RoomsEnd` before).
    fn end_account(&mut self, cause: DisconnectCause, ctx: &mut Context<Self>) {
        let reason = cause.name();
        tracing::info!(account = %self.user_id, reason = %reason, "account ended");
        self.ended = Some(reason);
        let not_logged_in = ZimError::new(ErrorCode::NOT_LOGGED_IN, "not logged in");
        for queued in self.outbox.drain() {
            queued.item.answer(Err(not_logged_in.clone()), &self.shared);
        }
        if let Some(reply) = self.logout_reply.take() {
            let _ = reply.send(Ok(()));
        }
        self.shared.renewal_cancelled.do_send(RenewalCancelled {
            user_id: self.user_id.clone(),
        });
        self.shared.root.do_send(AccountEnded {
            user_id: self.user_id.clone(),
            status: self.own_status(),
        });
        ctx.stop();
    }

    /// The account's own part of its status (rooms are asked separately).
    fn own_status(&self) -> AccountStatus {
        AccountStatus {
            user_id: self.user_id.to_string(),
            state: self.conn.state(),
            last_event: self.conn.last_event(),
            since_ms: self.since_ms,
            ended: self.ended.clone(),
            rooms: Vec::new(),
        }
    }
}

impl Actor for Account {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        self.conn_input(ConnInput::Login, ctx);
    }
}
