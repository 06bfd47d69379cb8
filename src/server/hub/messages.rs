//! Message operations of the hub: room and peer sends, idempotency, offline store.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::frames::message_push;
use super::state::{client_msg_key, lock_room};
use super::stats::bump;
use super::{err, Hub};
use crate::clock::unix_ms as now_ms;
use crate::protocol::{
    ChatMessage, ConvType, ErrorCode, MessageSend, MessageSendReply, MessageType, ZimError,
};

impl Hub {
    // -- messages ----------------------------------------------------------------------------

    /// message_send from `sender`. Idempotent per (sender, client_msg_id) within the window.
    pub fn send_message(
        &self,
        sender: &Arc<str>,
        req: MessageSend,
    ) -> Result<MessageSendReply, ZimError> {
        if let Some(reply) = self.recall(sender, &req.client_msg_id) {
            return Ok(reply);
        }
        let client_msg_id = req.client_msg_id.clone();
        let reply = match req.conv_type {
            ConvType::Room => self.send_room(sender, req)?,
            ConvType::Peer => self.send_peer(sender, req)?,
            ConvType::Unknown(_) => {
                return Err(err(
                    ErrorCode::INVALID_PARAMETER,
                    "conv_type must be 0 or 1",
                ))
            }
        };
        bump(&self.counters.messages_routed);
        self.remember(sender, &client_msg_id, &reply);
        Ok(reply)
    }

    /// The message, built from the request it moves out of (the body is not copied).
    pub(super) fn new_message(
        &self,
        sender: &str,
        req: MessageSend,
        seq: Option<u64>,
    ) -> ChatMessage {
        ChatMessage {
            message_id: self.next_message_id.fetch_add(1, Ordering::Relaxed),
            conv_type: req.conv_type,
            conv_id: if req.conv_type == ConvType::Room {
                req.to
            } else {
                sender.to_owned()
            },
            from: sender.to_owned(),
            msg_type: req.msg_type,
            body: req.body,
            seq,
            timestamp_ms: now_ms(),
            client_msg_id: req.client_msg_id,
            incarnation: None,
        }
    }

    pub(super) fn send_room(
        &self,
        sender: &str,
        req: MessageSend,
    ) -> Result<MessageSendReply, ZimError> {
        let missing = || err(ErrorCode::MESSAGE_TARGET_NOT_EXIST, "room does not exist");
        let cell = self.room_cell(&req.to).ok_or_else(missing)?;
        let mut room = lock_room(&cell);
        if room.destroyed {
            return Err(missing());
        }
        if !room.members.contains_key(sender) {
            return Err(err(ErrorCode::NOT_IN_ROOM, "not in the room"));
        }
        room.last_seq += 1;
        let mut message = self.new_message(sender, req, Some(room.last_seq));
        message.incarnation = Some(room.incarnation);
        let reply = MessageSendReply {
            message_id: message.message_id,
            seq: message.seq,
            timestamp_ms: message.timestamp_ms,
            incarnation: message.incarnation,
        };
        let frame = message_push(&message, false);
        if room.history.len() >= self.settings.limits.history_per_room {
            room.history.pop_front();
        }
        room.history.push_back(Arc::new(message));
        // Delivered under the room lock so every member sees the room's seqs in order.
        self.deliver_to_members(&room, &frame, None);
        Ok(reply)
    }

    pub(super) fn send_peer(
        &self,
        sender: &str,
        req: MessageSend,
    ) -> Result<MessageSendReply, ZimError> {
        let Some(mut target) = self.users.get_mut(&*req.to) else {
            return Err(err(
                ErrorCode::MESSAGE_TARGET_NOT_EXIST,
                "user does not exist",
            ));
        };
        let message = self.new_message(sender, req, None);
        let reply = MessageSendReply {
            message_id: message.message_id,
            seq: None,
            timestamp_ms: message.timestamp_ms,
            incarnation: None,
        };
        if !target.sessions.is_empty() {
            self.push_to(
                &message.conv_id,
                &target.sessions,
                &message_push(&message, false),
            );
        } else {
            if target.offline.len() >= self.settings.limits.offline_messages_per_user {
                target.offline.pop_front();
                bump(&self.counters.offline_dropped);
            }
            target.offline.push_back(message_push(&message, true));
            bump(&self.counters.offline_stored);
        }
        Ok(reply)
    }

    pub(super) fn recall(&self, sender: &str, client_msg_id: &str) -> Option<MessageSendReply> {
        let mut user = self.users.get_mut(sender)?;
        let recent = user.recent.as_mut()?;
        let cutoff_ms = now_ms().saturating_sub(self.settings.timing.idempotency_window_ms);
        recent.forget_before(cutoff_ms);
        recent
            .find(client_msg_key(client_msg_id), cutoff_ms)
            .cloned()
    }

    pub(super) fn remember(&self, sender: &str, client_msg_id: &str, reply: &MessageSendReply) {
        let cap = self.settings.limits.idempotency_entries_per_user;
        if cap == 0 {
            return;
        }
        let Some(mut user) = self.users.get_mut(sender) else {
            return;
        };
        let recent = user.recent.get_or_insert_with(Default::default);
        while recent.entries.len() >= cap {
            recent.entries.pop_front();
        }
        recent
            .entries
            .push_back((client_msg_key(client_msg_id), reply.clone()));
    }

    /// Validates a message_send's fields (6000001).
    pub fn check_message(&self, req: &MessageSend) -> Result<(), ZimError> {
        let bad = |msg: &str| Err(err(ErrorCode::INVALID_PARAMETER, msg));
        if !crate::protocol::is_valid_id(&req.to) {
            return bad("to is not a valid id");
        }
        if req.client_msg_id.is_empty() || req.client_msg_id.len() > 64 {
            return bad("client_msg_id must be 1 to 64 bytes");
        }
        if matches!(req.msg_type, MessageType::Unknown(_)) {
            return bad("type must be 1, 2 or 200");
        }
        if req.body.len() > self.settings.limits.max_body_bytes {
            return bad("body is too large");
        }
        if req.priority.is_some_and(|p| !(1..=3).contains(&p)) {
            return bad("priority must be 1, 2 or 3");
        }
        if matches!(req.conv_type, ConvType::Unknown(_)) {
            return bad("conv_type must be 0 or 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::User;
    use super::*;
    use crate::server::settings::ServerSettings;

    #[test]
    fn idempotency_memory_is_capped_per_sender() {
        let mut settings = ServerSettings::for_tests();
        settings.limits.idempotency_entries_per_user = 2;
        let hub = Hub::new(settings);
        hub.users.insert(Arc::from("u"), User::default());
        let reply = |id| MessageSendReply {
            message_id: id,
            seq: None,
            timestamp_ms: now_ms(),
            incarnation: None,
        };
        for (n, id) in ["a", "b", "c"].into_iter().enumerate() {
            hub.remember("u", id, &reply(n as u64));
        }
        assert_eq!(hub.recall("u", "a"), None, "oldest forgotten");
        assert_eq!(hub.recall("u", "b").map(|r| r.message_id), Some(1));
        assert_eq!(hub.recall("u", "c").map(|r| r.message_id), Some(2));
        assert_eq!(hub.recall("v", "c"), None, "per sender");
        let old = MessageSendReply {
            message_id: 9,
            seq: None,
            timestamp_ms: now_ms() - 700_000,
            incarnation: None,
        };
        hub.remember("u", "old", &old);
        assert_eq!(hub.recall("u", "old"), None, "outside the window");
    }
}
