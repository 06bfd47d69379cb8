//! The room actor: one per room an account keeps, started by the account on its own arbiter
//! under `actix::Supervisor`. It owns the room machine (src/session/room.rs), its restart
//! budget, its room heartbeats, its message feed (src/session/feed.rs) and its recovery
//! policy. Its requests go out through the account (which owns the link) and their replies
//! come back here, in socket order.
//!
//! Supervision (docs/design.md, "The actor tree"): a T2 ConnectTimeout or RoomNotExist with
//! a policy that recovers is a restart of this actor. It stops itself; the supervisor calls
//! `restarting()` (the next generation: requests of the old one are dropped, the feed's
//! catch-up is reset, the machine is already out) and `started()`, which waits the budget's
//! backoff and calls join, enter or create as the policy says. Past the budget, or with policy
//! `leave`, it gives up: the bot hears `on_room_gave_up`. When the room is over (left,
//! kicked, gave up) it tells the account, which lets it go; when the account ends it stops
//! for good. Only the account holds its address, so once the account let go nothing
//! restarts it.
//!
//! - [`messages`]: what it is sent; `requests.rs`: entry, heartbeat, history and their
//!   replies; `delivery.rs`: messages to the bot in seq order.

mod delivery;
pub(crate) mod messages;
mod requests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use self::messages::{Barrier, GetRoomStatus, RoomReply, ToRoom};
use super::account::messages::{FromRoom, Reply};
use super::bot_call::with_bot;
use super::handle::AccountHandle;
use super::shared::FleetShared;
use super::{EventKind, RoomSpec, RoomStatus};
use crate::bot::Bot;
use crate::clock::unix_ms;
use crate::protocol::{ErrorCode, RoomEvent, RoomInfo, RoomState, ZimError};
use crate::session::retry::jittered;
use crate::session::{
    Feed, RestartBudget, RestartVerdict, RoomEffect, RoomEmit, RoomEntry, RoomInput, RoomMachine,
    RoomStep,
};

/// What `started()` does.
enum Boot {
    /// The first start: enter as the spec says.
    First,
    /// A supervised restart: wait `delay`, then enter with `entry` (recovery).
    Restart { entry: RoomEntry, delay: Duration },
    /// Nothing (the room is over).
    Idle,
}

/// What the account gives a room actor to start it.
pub(crate) struct RoomInit {
    /// The room and its policy.
    pub spec: RoomSpec,
    /// Names this room actor in the account.
    pub serial: u32,
    /// The account (for its requests, reports and bot callbacks).
    pub account: AccountHandle,
    /// The fleet's shared state.
    pub shared: Arc<FleetShared>,
    /// The account's bot.
    pub bot: Arc<dyn Bot>,
    /// The enter_room caller, answered at (Connected, Success) or when the entry fails.
    pub waiter: Option<Reply<RoomInfo>>,
    /// Whether the account is Connected now.
    pub account_up: bool,
    /// Server clock minus ours, ms.
    pub clock_offset_ms: i64,
}

/// The room actor. See the module doc.
pub(crate) struct Room {
    id: Arc<str>,
    serial: u32,
    spec: Arc<RoomSpec>,
    account: AccountHandle,
    shared: Arc<FleetShared>,
    bot: Arc<dyn Bot>,
    machine: RoomMachine,
    feed: Feed,
    budget: RestartBudget,
    /// This actor's generation: bumped by every supervised restart.
    generation: u32,
    /// Unix ms of the last state change.
    since_ms: u64,
    account_up: bool,
    clock_offset_ms: i64,
    entry_in_flight: bool,
    heartbeat_in_flight: bool,
    boot: Boot,
    waiting_restart: bool,
    /// What the running restart recovers from (ConnectTimeout / RoomNotExist).
    restart_cause: Option<RoomEvent>,
    interrupted_at: Option<Instant>,
    entry_started: Option<Instant>,
    /// The entry's reply, kept for its caller until (Connected, Success).
    info: Option<Box<RoomInfo>>,
    waiter: Option<Reply<RoomInfo>>,
    /// The gate last told to the account: (connected, waiting_restart).
    told: (bool, bool),
    /// The room is over: it waits to be let go.
    over: bool,
}

impl Room {
    /// A room actor, not started yet.
    pub(crate) fn new(init: RoomInit) -> Self {
        init.shared.metrics.room_actors_started.inc();
        let baseline = server_now_ms(init.clock_offset_ms);
        Self {
            id: init.spec.room_id.as_str().into(),
            serial: init.serial,
            spec: Arc::new(init.spec),
            account: init.account,
            shared: init.shared,
            bot: init.bot,
            machine: RoomMachine::default(),
            feed: Feed::new(baseline),
            budget: RestartBudget::default(),
            generation: 0,
            since_ms: unix_ms(),
            account_up: init.account_up,
            clock_offset_ms: init.clock_offset_ms,
            entry_in_flight: false,
            heartbeat_in_flight: false,
            boot: Boot::First,
            waiting_restart: false,
            restart_cause: None,
            interrupted_at: None,
            entry_started: None,
            info: None,
            waiter: init.waiter,
            told: (false, false),
            over: false,
        }
    }

    fn with_bot(&self, f: impl FnOnce(&dyn Bot, &AccountHandle)) {
        with_bot(&*self.bot, &self.account, &self.shared.metrics, f);
    }

    fn server_now_ms(&self) -> u64 {
        server_now_ms(self.clock_offset_ms)
    }

    fn input(&mut self, input: RoomInput, ctx: &mut Context<Self>) {
        let step = self.machine.step(input, &self.spec.recovery);
        self.apply(step, ctx);
    }

    /// Tells the account when the room's gate for sends changed.
    fn tell_gate(&mut self) {
        let now = (self.machine.is_connected(), self.waiting_restart);
        if now == self.told || self.over {
            return;
        }
        self.told = now;
        self.account.tell(FromRoom::Changed {
            room: self.id.clone(),
            serial: self.serial,
            connected: now.0,
            waiting_restart: now.1,
        });
    }

    fn apply(&mut self, step: RoomStep, ctx: &mut Context<Self>) {
        if let Some(emit) = step.emit {
            // the account first: whoever hears of the change can send to (or enter) the room
            self.tell_gate();
            if step
                .effects
                .iter()
                .any(|e| matches!(e, RoomEffect::Remove | RoomEffect::GiveUp))
            {
                self.finish();
            }
            self.since_ms = unix_ms();
            self.on_emit(&emit);
            let id = self.id.clone();
            self.with_bot(|bot, h| bot.on_room_state(h, &id, emit.state, emit.event, &emit.ext));
            self.shared.publish(
                self.account.user_id(),
                EventKind::Room {
                    room_id: id.to_string(),
                    state: emit.state,
                    event: emit.event,
                    ext: emit.ext,
                },
            );
            if emit.state == RoomState::Connected && !step.effects.contains(&RoomEffect::CatchUp) {
                if self.feed.catch_up_due() {
                    // a new incarnation: caught up on from its first seq
                    let after = self.feed.start_catch_up();
                    self.request_history(after);
                } else {
                    self.release_held(ctx);
                }
            }
        }
        for effect in step.effects {
            match effect {
                RoomEffect::SendEntry(_) => self.send_entry(ctx),
                RoomEffect::SendHeartbeat => self.send_heartbeat(),
                RoomEffect::CatchUp => {
                    let after = self.feed.start_catch_up();
                    self.request_history(after);
                }
                RoomEffect::ResetSeq => {
                    let now = self.server_now_ms();
                    self.feed.reset(now);
                }
                RoomEffect::Restart(entry) => self.restart(entry, ctx),
                RoomEffect::GiveUp => self.give_up("recovery policy is leave"),
                RoomEffect::Remove => self.finish(),
            }
        }
        self.tell_gate();
    }

    /// Metrics and the waiting caller, for a pair about to go out.
    fn on_emit(&mut self, emit: &RoomEmit) {
        let m = &self.shared.metrics;
        match (emit.state, emit.event) {
            (RoomState::Connected, RoomEvent::Success) => {
                if let Some(t) = self.interrupted_at.take() {
                    m.room_recovery_time.record(t.elapsed());
                    match self.restart_cause.take() {
                        Some(RoomEvent::RoomNotExist) => m.room_recovered_after_not_exist.inc(),
                        Some(_) => m.room_recovered_after_timeout.inc(),
                        None => m.room_recovered_member.inc(),
                    }
                }
                if let Some(t) = self.entry_started.take() {
                    m.room_enter_latency.record(t.elapsed());
                }
                // the entry's info is only for its caller: not kept for the room's life
                let info = self.info.take();
                if let Some(w) = self.waiter.take() {
                    let info = info.map(|i| *i).unwrap_or_else(|| RoomInfo {
                        room_id: self.id.to_string(),
                        ..RoomInfo::default()
                    });
                    let _ = w.send(Ok(info));
                }
            }
            (RoomState::Connecting, RoomEvent::NetworkInterrupted) => {
                self.interrupted_at.get_or_insert_with(Instant::now);
            }
            (RoomState::Disconnected, event) => {
                if let Some(w) = self.waiter.take() {
                    let _ = w.send(Err(room_error(event, &emit.ext)));
                }
                if matches!(event, RoomEvent::ConnectTimeout | RoomEvent::RoomNotExist) {
                    self.interrupted_at.get_or_insert_with(Instant::now);
                }
            }
            _ => {}
        }
    }

    /// The supervisor's restart, bounded by the budget: this actor stops and the supervisor
    /// starts it again (see `restarting` and `started`).
    fn restart(&mut self, entry: RoomEntry, ctx: &mut Context<Self>) {
        let policy = &self.spec.recovery;
        let verdict =
            self.budget
                .request(Instant::now(), policy.max_restarts, policy.restart_window);
        match verdict {
            RestartVerdict::GiveUp => self.give_up("restart budget spent"),
            RestartVerdict::After(delay) => {
                self.restart_cause = Some(self.machine.last_event());
                let delay = jittered(delay, 0.2, &mut rand::thread_rng());
                self.boot = Boot::Restart { entry, delay };
                self.waiting_restart = true;
                self.tell_gate();
                ctx.stop();
            }
        }
    }

    fn give_up(&mut self, reason: &str) {
        self.shared.metrics.room_recovery_gave_up.inc();
        self.finish();
        let id = self.id.clone();
        self.with_bot(|bot, h| bot.on_room_gave_up(h, &id, reason));
        self.shared.publish(
            self.account.user_id(),
            EventKind::RoomGaveUp {
                room_id: id.to_string(),
                reason: reason.to_owned(),
            },
        );
    }

    /// The room is over: the account lets this actor go (and sends it `Retire`).
    fn finish(&mut self) {
        if self.over {
            return;
        }
        self.over = true;
        self.boot = Boot::Idle;
        self.account.tell(FromRoom::Finished {
            room: self.id.clone(),
            serial: self.serial,
        });
    }

    fn status(&self) -> Option<RoomStatus> {
        (!self.over).then(|| RoomStatus {
            room_id: self.id.to_string(),
            state: self.machine.state(),
            last_event: self.machine.last_event(),
            since_ms: self.since_ms,
        })
    }

    /// The account ended: the room ends ((0,2) unless it is out) and stops for good.
    fn account_ended(&mut self, ctx: &mut Context<Self>) {
        if !self.over {
            self.input(RoomInput::AccountEnded, ctx);
        }
        if let Some(w) = self.waiter.take() {
            let _ = w.send(Err(ZimError::new(
                ErrorCode::NOT_LOGGED_IN,
                "not logged in",
            )));
        }
        self.over = true;
        ctx.stop();
    }
}

fn server_now_ms(offset_ms: i64) -> u64 {
    (unix_ms() as i64).saturating_add(offset_ms).max(0) as u64
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

impl Actor for Room {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        match std::mem::replace(&mut self.boot, Boot::Idle) {
            Boot::First => {
                self.entry_started = Some(Instant::now());
                let entry = self.spec.entry;
                let start = RoomInput::Start {
                    entry,
                    recovery: false,
                };
                self.input(start, ctx);
            }
            Boot::Restart { entry, delay } => {
                ctx.run_later(delay, move |act, ctx| {
                    act.waiting_restart = false;
                    act.entry_started = Some(Instant::now());
                    act.input(
                        RoomInput::Start {
                            entry,
                            recovery: true,
                        },
                        ctx,
                    );
                });
            }
            Boot::Idle => {}
        }
    }
}

impl Supervised for Room {
    /// The next generation: requests of the old one are dropped by generation, nothing is
    /// in flight, the catch-up (if any) went with it. The machine is out already and the
    /// feed keeps its seq: a rejoin catches up from it, unless its answer names another
    /// incarnation of the room, which starts the seqs over (src/session/feed.rs).
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.shared.metrics.room_restarts.inc();
        self.generation = self.generation.wrapping_add(1);
        self.entry_in_flight = false;
        self.heartbeat_in_flight = false;
        self.feed.catch_up_lost();
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.shared.metrics.room_actors_stopped.inc();
    }
}

impl Handler<ToRoom> for Room {
    type Result = ();

    fn handle(&mut self, msg: ToRoom, ctx: &mut Self::Context) {
        match msg {
            ToRoom::Ended => return self.account_ended(ctx),
            ToRoom::Retire => {
                self.over = true;
                return ctx.stop();
            }
            _ if self.over => return,
            _ => {}
        }
        match msg {
            ToRoom::Reconnecting => {
                self.account_up = false;
                self.input(RoomInput::AccountReconnecting, ctx);
            }
            ToRoom::Connected {
                first,
                clock_offset_ms,
            } => {
                self.account_up = true;
                self.clock_offset_ms = clock_offset_ms;
                if first {
                    self.send_entry(ctx);
                } else {
                    self.input(RoomInput::AccountConnected, ctx);
                }
            }
            ToRoom::HeartbeatDue => {
                if self.machine.wants_heartbeat() {
                    self.send_heartbeat();
                }
            }
            ToRoom::Message(message) => self.on_live(message, ctx),
            ToRoom::MembersJoined(members) => {
                let id = self.id.clone();
                self.with_bot(|bot, h| bot.on_members_joined(h, &id, &members));
            }
            ToRoom::MembersLeft(members) => {
                let id = self.id.clone();
                self.with_bot(|bot, h| bot.on_members_left(h, &id, &members));
            }
            ToRoom::Kickout(reason) => self.input(RoomInput::Kickout(reason), ctx),
            ToRoom::Ended | ToRoom::Retire => {}
        }
    }
}

impl Handler<RoomReply> for Room {
    type Result = ();

    fn handle(&mut self, msg: RoomReply, ctx: &mut Self::Context) {
        self.on_reply(msg.tag, msg.answer, ctx);
    }
}

impl Handler<GetRoomStatus> for Room {
    type Result = Option<RoomStatus>;

    fn handle(&mut self, _: GetRoomStatus, _ctx: &mut Self::Context) -> Self::Result {
        self.status()
    }
}

impl Handler<Barrier> for Room {
    type Result = ();

    fn handle(&mut self, _: Barrier, _ctx: &mut Self::Context) {}
}
