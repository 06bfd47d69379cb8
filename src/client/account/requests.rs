//! Requests on the link: ids, deadlines, and one path for every reply. Each request in
//! flight knows its owner (the account itself, a room actor, a waiting caller, or an outbox
//! send), and its reply, its timeout or its loss with the link goes to that owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::ws::Message as WsMessage;

use super::messages::Reply;
use super::outbox::Outgoing;
use super::Account;
use crate::client::room::messages::{reply_error, Answer, RoomTag};
use crate::protocol::{
    ErrorCode, LoginReply, MessageSendReply, Request, RequestFrame, Secret, ServerFrame, ZimError,
};
use crate::session::{ConnInput, DisconnectCause, Duty, Queued};

/// A caller waiting for a reply body (`Ok(frame text)`) or the request's error.
pub(super) type CallerReply = Box<dyn FnOnce(Result<&str, ZimError>)>;

/// Who gets the reply of a request in flight.
pub(super) enum Owner {
    /// The account: its login.
    Login,
    /// The account: its heartbeat.
    Heartbeat,
    /// The account: its logout.
    Logout,
    /// The account: renew_token with this token; `reply` is a caller's (`None`: the
    /// TokenService's token).
    Renew {
        token: Secret,
        reply: Option<Reply<i64>>,
    },
    /// An outbox send: it goes back to the outbox if the link drops (boxed: it is the
    /// largest owner, and every slot of the pending table is as large as the largest).
    Send(Box<Queued<Outgoing>>),
    /// A room actor (named by room id and serial; gone = the reply is dropped).
    Room {
        room: Arc<str>,
        serial: u32,
        tag: RoomTag,
    },
    /// A caller waiting for the reply itself.
    Caller(CallerReply),
}

/// A request in flight.
pub(super) struct Pending {
    owner: Owner,
    /// When it times out (a duty of the account's one timer, client/account/timer.rs).
    deadline: Instant,
    sent_at: Instant,
}

impl Account {
    /// Sends a request on the link and remembers it until its reply or `timeout`.
    /// Without a link the owner comes back to the caller.
    pub(super) fn request(
        &mut self,
        request: Request,
        owner: Owner,
        timeout: Duration,
        ctx: &mut Context<Self>,
    ) -> Result<u64, Owner> {
        if self.link.is_none() {
            return Err(owner);
        }
        let id = self.next_id;
        let text = match serde_json::to_string(&RequestFrame { id, request }) {
            Ok(text) => text,
            Err(_) => return Err(owner),
        };
        if !self.write_frame(WsMessage::Text(text.into()), ctx) {
            return Err(owner);
        }
        self.next_id += 1;
        let sent_at = Instant::now();
        let deadline = sent_at + timeout;
        self.pending.insert(
            id,
            Pending {
                owner,
                deadline,
                sent_at,
            },
        );
        self.deadlines.set_earlier(Duty::Requests, deadline);
        self.arm_timer(ctx);
        Ok(id)
    }

    /// Takes request `id` out of the table. An empty table lets go of its memory (an idle
    /// account has nothing in flight most of the time) and of its deadline duty.
    fn take_pending(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id);
        if self.pending.is_empty() {
            // nothing left to time out: the timer need not wake for the deadline
            self.deadlines.clear(Duty::Requests);
            if self.pending.capacity() > 0 {
                self.pending = HashMap::new();
            }
        }
        p
    }

    /// The requests duty fell due: every request past its deadline times out, in id order;
    /// the duty is set again for the earliest one left.
    pub(super) fn expire_requests(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let mut overdue: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        overdue.sort_unstable();
        for id in overdue {
            self.timed_out(id, ctx);
        }
        if let Some(next) = self.pending.values().map(|p| p.deadline).min() {
            self.deadlines.set_earlier(Duty::Requests, next);
        }
    }

    /// Whether a request of this kind is in flight.
    pub(super) fn heartbeat_pending(&self) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p.owner, Owner::Heartbeat))
    }

    /// The link went down: every request in flight is lost. Sends go back to the front of
    /// the outbox in their order; every other owner hears "not sent".
    pub(super) fn drop_pending(&mut self, ctx: &mut Context<Self>) {
        let mut pending: Vec<(u64, Pending)> =
            std::mem::take(&mut self.pending).into_iter().collect();
        pending.sort_by_key(|(id, _)| *id);
        self.deadlines.clear(Duty::Requests);
        let mut resend = Vec::new();
        for (_, p) in pending {
            match p.owner {
                Owner::Send(queued) => resend.push(*queued),
                owner => self.fail_unsent(owner, ErrorCode::NETWORK_ERROR, ctx),
            }
        }
        self.outbox.put_back(resend);
    }

    /// A request that could not be sent or whose link went away answers `code`.
    pub(super) fn fail_unsent(&mut self, owner: Owner, code: ErrorCode, ctx: &mut Context<Self>) {
        let err = ZimError::from_code(code);
        match owner {
            Owner::Send(queued) => queued.item.answer(Err(err), &self.shared),
            Owner::Caller(reply) => reply(Err(err)),
            Owner::Room { room, serial, tag } => {
                self.reply_to_room(&room, serial, tag, Answer::Unsent)
            }
            Owner::Renew { token, reply } => self.renew_unsent(token, reply, err),
            Owner::Logout => {
                if self.logout_reply.is_some() {
                    self.conn_input(ConnInput::Lost(DisconnectCause::Logout), ctx);
                }
            }
            // The connection machine retries the login; the next tick sends a heartbeat.
            Owner::Login | Owner::Heartbeat => {}
        }
    }

    fn timed_out(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(p) = self.take_pending(id) else {
            return;
        };
        let generation = self.generation;
        match p.owner {
            Owner::Login => self.lost(
                generation,
                DisconnectCause::LoginRejected(ErrorCode::TIMEOUT),
                ctx,
            ),
            Owner::Heartbeat => self.lost(generation, DisconnectCause::HeartbeatTimeout, ctx),
            owner => self.answer(
                owner,
                ErrorCode::TIMEOUT,
                "request timed out".into(),
                "",
                p.sent_at,
                ctx,
            ),
        }
    }

    /// A reply frame: to the owner of request `id` (late or unknown ids are dropped).
    pub(super) fn on_reply(
        &mut self,
        id: u64,
        code: ErrorCode,
        msg: Option<String>,
        text: &str,
        ctx: &mut Context<Self>,
    ) {
        let Some(p) = self.take_pending(id) else {
            return; // late (already timed out) or unknown
        };
        self.answer(p.owner, code, msg.unwrap_or_default(), text, p.sent_at, ctx);
    }

    /// The one path of a reply (or timeout) to its owner.
    fn answer(
        &mut self,
        owner: Owner,
        code: ErrorCode,
        msg: String,
        text: &str,
        sent_at: Instant,
        ctx: &mut Context<Self>,
    ) {
        let err = || reply_error(code, &msg);
        let generation = self.generation;
        match owner {
            Owner::Login if !code.is_ok() => {
                self.lost(generation, DisconnectCause::LoginRejected(code), ctx)
            }
            Owner::Login => match ServerFrame::reply_body::<LoginReply>(text) {
                Ok(reply) => self.login_ok(reply, sent_at, ctx),
                Err(_) => self.lost(generation, DisconnectCause::SocketError, ctx),
            },
            Owner::Heartbeat => {}
            Owner::Logout => self.after_rooms(ctx, |act, ctx| {
                act.conn_input(ConnInput::Lost(DisconnectCause::Logout), ctx)
            }),
            Owner::Renew { token, reply } => {
                let result = if code.is_ok() {
                    ServerFrame::reply_body::<crate::protocol::RenewTokenReply>(text)
                        .map(|r| r.token_expire_at)
                        .map_err(|_| ZimError::from_code(ErrorCode::SERVER_INTERNAL))
                } else {
                    Err(err())
                };
                self.renewed(token, reply, result, ctx);
            }
            Owner::Send(queued) => {
                let result = if code.is_ok() {
                    ServerFrame::reply_body::<MessageSendReply>(text)
                        .map_err(|_| ZimError::from_code(ErrorCode::SERVER_INTERNAL))
                } else {
                    Err(err())
                };
                queued.item.answer(result, &self.shared);
            }
            Owner::Room { room, serial, tag } => {
                let answer = Answer::Reply {
                    code,
                    msg,
                    text: text.to_owned(),
                };
                self.reply_to_room(&room, serial, tag, answer);
            }
            Owner::Caller(reply) => reply(if code.is_ok() { Ok(text) } else { Err(err()) }),
        }
    }
}
