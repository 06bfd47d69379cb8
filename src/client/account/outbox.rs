//! Sending messages: checks, the outbox (src/session/outbox.rs) and the sends in flight.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::{Reply, SendCmd};
use super::requests::Owner;
use super::Account;
use crate::client::shared::FleetShared;
use crate::protocol::{
    is_valid_id, ConvType, ErrorCode, MessageSend, MessageSendReply, MessageType, Request,
    ZimError, MAX_BODY_BYTES,
};
use crate::session::Queued;

/// A message waiting to go, or in flight (kept for a resend with the same client_msg_id).
pub(super) struct Outgoing {
    conv_type: ConvType,
    to: Box<str>,
    client_msg_id: Box<str>,
    msg_type: MessageType,
    body: String,
    reply: Option<Reply<MessageSendReply>>,
}

impl Outgoing {
    /// Answers the sender (and counts the outcome).
    pub fn answer(self, result: Result<MessageSendReply, ZimError>, shared: &FleetShared) {
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

fn refuse(reply: Option<Reply<MessageSendReply>>, err: ZimError, shared: &FleetShared) {
    shared.metrics.messages_send_failed.inc();
    match reply {
        Some(r) => {
            let _ = r.send(Err(err));
        }
        None => tracing::warn!(error = %err, "posted message refused"),
    }
}

fn waited_too_long() -> ZimError {
    ZimError::new(ErrorCode::TIMEOUT, "waited too long to be sent")
}

impl Account {
    /// A send from a handle: checked, then sent now or queued.
    pub(super) fn on_send(&mut self, cmd: SendCmd, ctx: &mut Context<Self>) {
        if cmd.body.len() > MAX_BODY_BYTES || !is_valid_id(&cmd.to) {
            let err = ZimError::new(
                ErrorCode::INVALID_PARAMETER,
                "body over 49,152 bytes or invalid target id",
            );
            return refuse(cmd.reply, err, &self.shared);
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
            return refuse(cmd.reply, e, &self.shared);
        }
        let queued = Queued {
            room: (cmd.conv_type == ConvType::Room).then(|| cmd.to.clone()),
            deadline: now + self.shared.config.timings.outbox_wait,
            item: Outgoing {
                conv_type: cmd.conv_type,
                to: cmd.to,
                client_msg_id: format!("{:016x}", rand::random::<u64>()).into_boxed_str(),
                msg_type: cmd.msg_type,
                body: cmd.body,
                reply: cmd.reply,
            },
        };
        if self.outbox.may_bypass(self.can_send_now(&queued)) {
            if let Err(Owner::Send(queued)) = self.send_now(queued, ctx) {
                self.outbox.put_back(vec![*queued]);
                self.schedule_outbox_sweep(ctx);
            }
            return;
        }
        if let Err(queued) = self.outbox.push(queued) {
            let err = ZimError::new(
                ErrorCode::NETWORK_ERROR,
                "not connected and the outbox is full",
            );
            return refuse(queued.item.reply, err, &self.shared);
        }
        self.schedule_outbox_sweep(ctx);
        self.flush_outbox(ctx);
    }

    /// Whether a send may go now: the account is Connected and, for a room the account
    /// keeps, that room is too (room sends wait for T2 and any rejoin, so they are not
    /// refused with 6000321 while the room recovers).
    fn can_send_now(&self, queued: &Queued<Outgoing>) -> bool {
        self.conn.is_connected()
            && queued
                .room
                .as_deref()
                .is_none_or(|room| self.room_open(room))
    }

    /// Sends, in order, what may go now; the rest keeps waiting (expired ones fail unsent).
    pub(super) fn flush_outbox(&mut self, ctx: &mut Context<Self>) {
        if !self.conn.is_connected() || self.outbox.is_empty() {
            return;
        }
        let rooms = &self.rooms;
        let open = |room: &str| {
            rooms
                .iter()
                .find(|r| &*r.id == room)
                .is_none_or(|r| r.connected)
        };
        let ready = self.outbox.take_ready(Instant::now(), true, open);
        for queued in ready.expired {
            queued.item.answer(Err(waited_too_long()), &self.shared);
        }
        let mut unsent = Vec::new();
        for queued in ready.send {
            if let Err(Owner::Send(queued)) = self.send_now(queued, ctx) {
                unsent.push(*queued);
            }
        }
        self.outbox.put_back(unsent);
    }

    fn send_now(
        &mut self,
        queued: Queued<Outgoing>,
        ctx: &mut Context<Self>,
    ) -> Result<u64, Owner> {
        let item = &queued.item;
        let request = Request::MessageSend(MessageSend {
            conv_type: item.conv_type,
            to: item.to.to_string(),
            client_msg_id: item.client_msg_id.to_string(),
            msg_type: item.msg_type,
            body: item.body.clone(),
            priority: None,
        });
        let timeout = self.shared.config.timings.send_timeout;
        self.request(request, Owner::Send(Box::new(queued)), timeout, ctx)
    }

    /// Fails waiting sends at their deadline (one timer, for the earliest).
    pub(super) fn schedule_outbox_sweep(&mut self, ctx: &mut Context<Self>) {
        if self.outbox_sweep.is_some() {
            return;
        }
        let Some(first) = self.outbox.next_deadline() else {
            return;
        };
        let wait = first.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
        self.outbox_sweep = Some(ctx.run_later(wait, |act, ctx| {
            act.outbox_sweep = None;
            for queued in act.outbox.expire(Instant::now()) {
                queued.item.answer(Err(waited_too_long()), &act.shared);
            }
            act.schedule_outbox_sweep(ctx);
        }));
    }
}
