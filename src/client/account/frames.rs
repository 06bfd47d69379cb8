//! What the server sends on the link (replies and pushes, handed on in socket order), the
//! login's outcome, and the heartbeats that keep the link and the rooms alive.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::requests::Owner;
use super::Account;
use crate::client::room::messages::ToRoom;
use crate::clock::unix_ms;
use crate::protocol::{
    ChatMessage, ConnectionState, ConvType, LoginReply, Push, Request, ServerFrame,
};
use crate::session::{ConnInput, DisconnectCause, Duty};

impl Account {
    pub(super) fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
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
                ConvType::Room => {
                    let room = message.conv_id.clone();
                    self.push_to_room(&room, ToRoom::Message(message));
                }
                // after whatever the room actors were handed before it: the bot hears
                // messages in socket order across rooms and peers
                _ if self.rooms_busy => {
                    self.after_rooms(ctx, move |act, ctx| act.deliver(&message, ctx))
                }
                _ => self.deliver(&message, ctx),
            },
            Push::RoomMemberJoined { room_id, members } => {
                self.push_to_room(&room_id, ToRoom::MembersJoined(members))
            }
            Push::RoomMemberLeft { room_id, members } => {
                self.push_to_room(&room_id, ToRoom::MembersLeft(members))
            }
            Push::RoomKickout { room_id, reason } => {
                self.push_to_room(&room_id, ToRoom::Kickout(reason))
            }
            Push::TokenWillExpire { remaining_secs } => self.token_will_expire(remaining_secs, ctx),
            Push::Kickout { reason, .. } => {
                let generation = self.generation;
                self.lost(generation, DisconnectCause::Kickout(reason), ctx)
            }
            Push::Unknown => {}
        }
    }

    /// A peer message to the bot.
    fn deliver(&self, message: &ChatMessage, ctx: &Context<Self>) {
        self.shared.metrics.messages_received.inc();
        self.with_bot(ctx, |bot, h| bot.on_message(h, message));
    }

    pub(super) fn login_ok(
        &mut self,
        reply: LoginReply,
        sent_at: Instant,
        ctx: &mut Context<Self>,
    ) {
        let timings = &self.shared.config.timings;
        self.heartbeat_ms = if reply.heartbeat_interval_ms > 0 {
            super::interval_ms(Duration::from_millis(reply.heartbeat_interval_ms))
        } else {
            super::interval_ms(timings.heartbeat_interval)
        };
        if reply.room_heartbeat_interval_ms > 0 {
            self.room_heartbeat_ms =
                super::interval_ms(Duration::from_millis(reply.room_heartbeat_interval_ms));
        }
        // server_time_ms comes from the peer: no arithmetic on it may overflow
        self.clock_offset_ms = i64::try_from(reply.server_time_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(unix_ms() as i64);
        self.backoff.reset();
        if self.conn.state() == ConnectionState::Connecting {
            self.shared.metrics.login_latency.record(sent_at.elapsed());
        }
        if self.link.is_some() {
            let now = Instant::now();
            self.deadlines
                .set(Duty::Heartbeat, now + self.heartbeat_every());
            self.deadlines
                .set(Duty::RoomHeartbeat, now + self.room_heartbeat_every());
        }
        self.set_token_expiry(reply.token_expire_at, ctx);
        self.conn_input(ConnInput::LoginOk, ctx);
    }

    pub(super) fn send_heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.heartbeat_pending() {
            return; // the one in flight will time out if the link is dead
        }
        let timeout = self.shared.config.timings.heartbeat_timeout;
        let _ = self.request(Request::Heartbeat, Owner::Heartbeat, timeout, ctx);
    }
}
