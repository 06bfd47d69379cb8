//! The room actors an account supervises: starting them, what it tells them (link up and
//! down, pushes, replies), what they report (requests, their gate for sends, their end),
//! entering and leaving, and letting them go.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::messages::{FromRoom, Reply};
use super::requests::Owner;
use super::Account;
use crate::client::room::messages::{Answer, Barrier, RoomReply, RoomTag, ToRoom};
use crate::client::room::{Room, RoomInit};
use crate::client::RoomSpec;
use crate::protocol::{is_valid_id, ErrorCode, Request, RoomInfo, RoomRef, ZimError};

/// A room actor as its account sees it.
pub(super) struct RoomChild {
    /// The room id.
    pub id: Arc<str>,
    /// Names this room actor (a room entered again gets a new actor and serial).
    pub serial: u32,
    /// The only strong address of the actor: dropping it lets the actor go.
    pub addr: Addr<Room>,
    /// The room is Connected: room sends may go.
    pub connected: bool,
    /// Out, waiting for a supervised restart.
    pub waiting_restart: bool,
}

impl Account {
    /// Starts a room actor (supervised, on this arbiter) for `spec`.
    pub(super) fn start_room(
        &mut self,
        spec: RoomSpec,
        waiter: Option<Reply<RoomInfo>>,
        ctx: &mut Context<Self>,
    ) {
        self.next_room_serial = self.next_room_serial.wrapping_add(1);
        let serial = self.next_room_serial;
        let id: Arc<str> = spec.room_id.as_str().into();
        let init = RoomInit {
            spec,
            serial,
            account: self.own_handle(ctx),
            shared: self.shared.clone(),
            bot: self.bot.clone(),
            waiter,
            account_up: self.conn.is_connected(),
            clock_offset_ms: self.clock_offset_ms,
        };
        let addr = Supervisor::start(move |_| Room::new(init));
        // One slot at a time: most accounts keep one or a few rooms for their whole life, and
        // a Vec's first growth would reserve four.
        self.rooms.reserve_exact(1);
        self.rooms.push(RoomChild {
            id,
            serial,
            addr,
            connected: false,
            waiting_restart: false,
        });
    }

    fn child(&self, id: &str, serial: u32) -> Option<&RoomChild> {
        self.rooms
            .iter()
            .find(|r| &*r.id == id && r.serial == serial)
    }

    /// Whether sends to `room` may go: a room this account does not keep is always open.
    pub(super) fn room_open(&self, room: &str) -> bool {
        self.rooms
            .iter()
            .find(|r| &*r.id == room)
            .is_none_or(|r| r.connected)
    }

    /// T0: every room is interrupted (and closed for sends at once).
    pub(super) fn rooms_interrupted(&mut self) {
        for r in &mut self.rooms {
            r.connected = false;
            r.addr.do_send(ToRoom::Reconnecting);
        }
    }

    /// T1, or the first login (`first`).
    pub(super) fn rooms_resume(&self, first: bool) {
        for r in &self.rooms {
            r.addr.do_send(ToRoom::Connected {
                first,
                clock_offset_ms: self.clock_offset_ms,
            });
        }
    }

    /// The account ends: every room actor ends and stops; the account lets go of them all,
    /// so none restarts.
    pub(super) fn rooms_end(&mut self) {
        for r in self.rooms.drain(..) {
            r.addr.do_send(ToRoom::Ended);
        }
    }

    pub(super) fn rooms_heartbeat_due(&self) {
        for r in &self.rooms {
            r.addr.do_send(ToRoom::HeartbeatDue);
        }
    }

    /// A push for a room this account keeps (others are dropped).
    pub(super) fn push_to_room(&mut self, id: &str, msg: ToRoom) {
        if let Some(r) = self.rooms.iter().find(|r| &*r.id == id) {
            r.addr.do_send(msg);
            self.rooms_busy = true;
        }
    }

    /// A reply for a room actor; a room actor the account let go never hears it (a leave's
    /// caller is still answered).
    pub(super) fn reply_to_room(&mut self, id: &str, serial: u32, tag: RoomTag, answer: Answer) {
        if let Some(r) = self.child(id, serial) {
            r.addr.do_send(RoomReply { tag, answer });
            return;
        }
        if let RoomTag::Leave { reply: Some(reply) } = tag {
            let result = match answer {
                Answer::Reply { code, .. } if code.is_ok() => Ok(()),
                Answer::Reply { code, msg, .. } => {
                    Err(crate::client::room::messages::reply_error(code, &msg))
                }
                Answer::Unsent => Err(ZimError::from_code(ErrorCode::NETWORK_ERROR)),
            };
            let _ = reply.send(result);
        }
    }

    fn retire(&mut self, index: usize) {
        let child = self.rooms.remove(index);
        child.addr.do_send(ToRoom::Retire);
    }

    /// What a room actor reports.
    pub(super) fn on_room(&mut self, msg: FromRoom, ctx: &mut Context<Self>) {
        match msg {
            FromRoom::Request {
                room,
                serial,
                tag,
                request,
                timeout,
            } => {
                if self.child(&room, serial).is_none() {
                    return; // let go meanwhile
                }
                let owner = Owner::Room { room, serial, tag };
                if let Err(owner) = self.request(request, owner, timeout, ctx) {
                    self.fail_unsent(owner, ErrorCode::NETWORK_ERROR, ctx);
                }
            }
            FromRoom::Changed {
                room,
                serial,
                connected,
                waiting_restart,
            } => {
                if let Some(r) = self
                    .rooms
                    .iter_mut()
                    .find(|r| r.id == room && r.serial == serial)
                {
                    r.connected = connected && self.conn.is_connected();
                    r.waiting_restart = waiting_restart;
                }
                self.flush_outbox(ctx);
            }
            FromRoom::Finished { room, serial } => {
                if let Some(i) = self
                    .rooms
                    .iter()
                    .position(|r| r.id == room && r.serial == serial)
                {
                    self.retire(i);
                }
                self.flush_outbox(ctx);
            }
        }
    }

    /// Runs `then` once every room actor handled what it was sent before (their events come
    /// out first); at once without rooms. The account's mailbox waits meanwhile, bounded by
    /// the request timeout.
    pub(super) fn after_rooms(
        &mut self,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        if self.rooms.is_empty() {
            return then(self, ctx);
        }
        let asks: Vec<_> = self.rooms.iter().map(|r| r.addr.send(Barrier)).collect();
        self.rooms_busy = false;
        let deadline = self.shared.config.timings.request_timeout;
        let all = async move {
            let _ = tokio::time::timeout(deadline, futures_util::future::join_all(asks)).await;
        };
        all.into_actor(self)
            .map(move |(), act, ctx| then(act, ctx))
            .wait(ctx);
    }

    /// enter_room from a handle.
    pub(super) fn enter_room(
        &mut self,
        spec: RoomSpec,
        reply: Reply<RoomInfo>,
        ctx: &mut Context<Self>,
    ) {
        if !is_valid_id(&spec.room_id) {
            let err = ZimError::new(ErrorCode::INVALID_PARAMETER, "invalid room id");
            let _ = reply.send(Err(err));
            return;
        }
        if let Err(e) = self.shaper.check(Instant::now()) {
            let _ = reply.send(Err(e));
            return;
        }
        if let Some(i) = self.rooms.iter().position(|r| *r.id == spec.room_id) {
            let r = &self.rooms[i];
            if r.connected {
                let _ = reply.send(Err(ZimError::from_code(ErrorCode::ALREADY_IN_ROOM)));
                return;
            }
            if !r.waiting_restart {
                let _ = reply.send(Err(ZimError::from_code(ErrorCode::ROOM_CONNECTING)));
                return;
            }
            // out, waiting for a restart: the caller's entry replaces that room actor
            self.retire(i);
        }
        self.start_room(spec, Some(reply), ctx);
    }

    /// leave_room from a handle.
    pub(super) fn leave_room(
        &mut self,
        room_id: String,
        reply: Reply<()>,
        ctx: &mut Context<Self>,
    ) {
        let Some(i) = self.rooms.iter().position(|r| *r.id == room_id) else {
            let _ = reply.send(Err(ZimError::from_code(ErrorCode::NOT_IN_ROOM)));
            return;
        };
        if self.rooms[i].waiting_restart {
            // out, waiting for a restart: leaving just lets it go
            self.retire(i);
            let _ = reply.send(Ok(()));
            return;
        }
        if let Err(e) = self.shaper.check(Instant::now()) {
            let _ = reply.send(Err(e));
            return;
        }
        if let Err(Owner::Room {
            tag: RoomTag::Leave { reply: Some(r) },
            ..
        }) = self.send_leave(i, Some(reply), ctx)
        {
            let _ = r.send(Err(ZimError::from_code(ErrorCode::NETWORK_ERROR)));
        }
    }

    /// room_leave for the room actor at `index`; its reply goes to the room actor.
    pub(super) fn send_leave(
        &mut self,
        index: usize,
        reply: Option<Reply<()>>,
        ctx: &mut Context<Self>,
    ) -> Result<u64, Owner> {
        let r = &self.rooms[index];
        let request = Request::RoomLeave(RoomRef {
            room_id: r.id.to_string(),
        });
        let owner = Owner::Room {
            room: r.id.clone(),
            serial: r.serial,
            tag: RoomTag::Leave { reply },
        };
        // ZIM gives 8 s to create/join/enter only; leave is an ordinary request
        let timeout = self.shared.config.timings.request_timeout;
        self.request(request, owner, timeout, ctx)
    }
}
