//! The room's requests (sent through its account, which owns the link) and their replies.

use actix::prelude::*;
use governor::clock::Clock as _;
use rand::Rng as _;

use super::messages::{reply_error, Answer, RoomTag};
use super::Room;
use crate::client::account::messages::{FromRoom, Reply};
use crate::protocol::{
    ErrorCode, Request, RoomCreate, RoomEnterReply, RoomHeartbeatReply, RoomHistory,
    RoomHistoryReply, RoomRef, RoomReply as RoomBody, ServerFrame, ZimError, MAX_PAGE,
};
use crate::session::{RoomEntry, RoomInput};

impl Room {
    fn ask(&self, tag: RoomTag, request: Request, timeout: std::time::Duration) {
        self.account.tell(FromRoom::Request {
            room: self.id.clone(),
            serial: self.serial,
            tag,
            request,
            timeout,
        });
    }

    /// Sends the pending entry (through the admission limiter), once the account is up.
    pub(super) fn send_entry(&mut self, ctx: &mut Context<Self>) {
        if !self.account_up || self.entry_in_flight {
            return; // T1 sends it, or it is on its way
        }
        let Some(entry) = self.machine.pending_entry() else {
            return;
        };
        let admission = &self.shared.admission;
        if let Err(not_until) = admission.check() {
            let wait = not_until.wait_time_from(admission.clock().now())
                + std::time::Duration::from_millis(rand::thread_rng().gen_range(0..20));
            self.entry_in_flight = true;
            // a restart cancels this timer with every other of the old generation
            ctx.run_later(wait, |act, ctx| {
                act.entry_in_flight = false;
                act.send_entry(ctx);
            });
            return;
        }
        let spec = &self.spec;
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
        self.entry_in_flight = true;
        let tag = RoomTag::Entry {
            generation: self.generation,
            entry,
        };
        self.ask(
            tag,
            request,
            self.shared.config.timings.room_request_timeout,
        );
    }

    pub(super) fn send_heartbeat(&mut self) {
        if self.heartbeat_in_flight {
            return;
        }
        self.heartbeat_in_flight = true;
        let request = Request::RoomHeartbeat(RoomRef {
            room_id: self.id.to_string(),
        });
        let tag = RoomTag::Heartbeat {
            generation: self.generation,
        };
        self.ask(tag, request, self.shared.config.timings.request_timeout);
    }

    /// Asks for the history page after `after_seq` (a catch-up is running).
    pub(super) fn request_history(&mut self, after_seq: u64) {
        let request = Request::RoomHistory(RoomHistory {
            room_id: self.id.to_string(),
            after_seq,
            limit: Some(MAX_PAGE),
        });
        let tag = RoomTag::History {
            generation: self.generation,
            incarnation: self.feed.incarnation(),
        };
        self.ask(tag, request, self.shared.config.timings.request_timeout);
    }

    /// A reply, timeout or loss of one of this room's requests. Replies to an older
    /// generation, or to a room that is over, are dropped.
    pub(super) fn on_reply(&mut self, tag: RoomTag, answer: Answer, ctx: &mut Context<Self>) {
        let current = |g: u32| !self.over && g == self.generation;
        match (tag, answer) {
            (RoomTag::Leave { reply }, answer) => self.on_leave_reply(reply, answer, ctx),
            (RoomTag::Entry { generation, .. }, Answer::Unsent) if current(generation) => {
                self.entry_in_flight = false;
            }
            (RoomTag::Entry { generation, entry }, Answer::Reply { code, text, .. })
                if current(generation) =>
            {
                self.entry_in_flight = false;
                self.on_entry_reply(entry, code, &text, ctx);
            }
            (RoomTag::Heartbeat { generation }, answer) if current(generation) => {
                self.heartbeat_in_flight = false;
                if let Answer::Reply { code, text, .. } = answer {
                    let input = if code.is_ok() {
                        let reply = ServerFrame::reply_body::<RoomHeartbeatReply>(&text).ok();
                        self.observe_incarnation(reply.and_then(|r| r.incarnation), ctx);
                        RoomInput::HeartbeatOk
                    } else {
                        RoomInput::HeartbeatFailed(code)
                    };
                    self.input(input, ctx);
                }
            }
            // a page of the room's earlier incarnation: its catch-up ended with the switch
            (RoomTag::History { incarnation, .. }, _)
                if incarnation.is_some() && incarnation != self.feed.incarnation() => {}
            (RoomTag::History { generation, .. }, Answer::Unsent) if current(generation) => {
                self.feed.catch_up_lost();
            }
            (RoomTag::History { generation, .. }, Answer::Reply { code, text, .. })
                if current(generation) =>
            {
                let page = code
                    .is_ok()
                    .then(|| ServerFrame::reply_body::<RoomHistoryReply>(&text).ok())
                    .flatten();
                self.on_page(page, ctx);
            }
            _ => {} // an older generation's, or the room is over
        }
    }

    fn on_entry_reply(
        &mut self,
        entry: RoomEntry,
        code: ErrorCode,
        text: &str,
        ctx: &mut Context<Self>,
    ) {
        if !code.is_ok() {
            return self.input(RoomInput::EntryFailed(code), ctx);
        }
        let (info, created) = match entry {
            RoomEntry::Enter => match ServerFrame::reply_body::<RoomEnterReply>(text) {
                Ok(r) => (Some(r.room), r.created),
                Err(_) => (None, false),
            },
            RoomEntry::Create | RoomEntry::Join => (
                ServerFrame::reply_body::<RoomBody>(text)
                    .ok()
                    .map(|r| r.room),
                entry == RoomEntry::Create,
            ),
        };
        // the incarnation first: the machine's steps after the entry see the feed it decides
        self.observe_incarnation(info.as_ref().and_then(|i| i.incarnation), ctx);
        self.info = info.map(Box::new);
        self.input(RoomInput::EntryOk { created }, ctx);
    }

    fn on_leave_reply(
        &mut self,
        reply: Option<Reply<()>>,
        answer: Answer,
        ctx: &mut Context<Self>,
    ) {
        let result = match answer {
            Answer::Unsent => Err(ZimError::from_code(ErrorCode::NETWORK_ERROR)),
            Answer::Reply { code, .. } if code.is_ok() => Ok(()),
            Answer::Reply { code, msg, .. } => Err(reply_error(code, &msg)),
        };
        if result.is_ok() && !self.over {
            self.input(RoomInput::LeaveOk, ctx);
        }
        if let Some(r) = reply {
            let _ = r.send(result);
        }
    }
}
