//! Readable log lines for the conversation: wraps each bot so every room message is logged
//! once (not once per receiving account), with the room, the sender and the text.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, ConvType, Member, RoomEvent, RoomState,
};

/// How many recent message ids are remembered to log each message once.
const REMEMBERED: usize = 4096;

/// A message: its conversation and id.
type MessageKey = (ConvType, String, u64);

/// Message ids already logged (bounded: the oldest are forgotten first).
#[derive(Debug, Default)]
pub struct SeenMessages {
    inner: Mutex<(HashSet<MessageKey>, VecDeque<MessageKey>)>,
}

impl SeenMessages {
    /// True the first time a message is offered.
    pub fn first_time(&self, message: &ChatMessage) -> bool {
        let key = (
            message.conv_type,
            message.conv_id.clone(),
            message.message_id,
        );
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if !set.insert(key.clone()) {
            return false;
        }
        order.push_back(key);
        if order.len() > REMEMBERED {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }
}

/// A bot with its conversation logged.
pub struct Logged {
    /// The bot whose conversation is logged.
    pub inner: Arc<dyn Bot>,
    /// Messages logged already (shared by every bot of the run).
    pub seen: Arc<SeenMessages>,
}

impl Bot for Logged {
    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        event: ConnectionEvent,
        ext: &serde_json::Value,
    ) {
        self.inner.on_connection_state(account, state, event, ext);
    }

    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        event: RoomEvent,
        ext: &serde_json::Value,
    ) {
        self.inner
            .on_room_state(account, room_id, state, event, ext);
    }

    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        match message.conv_type {
            ConvType::Room => {
                if self.seen.first_time(message) {
                    tracing::info!("[{}] {}: {}", message.conv_id, message.from, message.body);
                }
            }
            _ => {
                tracing::info!(
                    "{} -> {}: {}",
                    message.from,
                    account.user_id(),
                    message.body
                );
            }
        }
        self.inner.on_message(account, message);
    }

    fn on_members_joined(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        self.inner.on_members_joined(account, room_id, members);
    }

    fn on_members_left(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        self.inner.on_members_left(account, room_id, members);
    }

    fn on_token_will_expire(&self, account: &AccountHandle, remaining_secs: u64) {
        self.inner.on_token_will_expire(account, remaining_secs);
    }

    fn on_room_gave_up(&self, account: &AccountHandle, room_id: &str, reason: &str) {
        self.inner.on_room_gave_up(account, room_id, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MessageType;

    fn message(id: u64) -> ChatMessage {
        ChatMessage {
            message_id: id,
            conv_type: ConvType::Room,
            conv_id: "r".into(),
            from: "a".into(),
            msg_type: MessageType::Text,
            body: "x".into(),
            seq: Some(id),
            timestamp_ms: 0,
            client_msg_id: String::new(),
        }
    }

    #[test]
    fn each_message_once_and_memory_stays_bounded() {
        let seen = SeenMessages::default();
        assert!(seen.first_time(&message(1)));
        assert!(!seen.first_time(&message(1)));
        for id in 2..(REMEMBERED as u64 + 10) {
            assert!(seen.first_time(&message(id)));
        }
        let len = seen.inner.lock().unwrap().1.len();
        assert_eq!(len, REMEMBERED);
        // The oldest was forgotten.
        assert!(seen.first_time(&message(1)));
    }
}
