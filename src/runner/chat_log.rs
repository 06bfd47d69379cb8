//! Readable log lines for the conversation: wraps each bot so every room message is logged
//! once (not once per receiving account), with the room, the sender and the text.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::bot::tap::Tap;
use crate::bot::Bot;
use crate::protocol::{ChatMessage, ConvType};

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

/// Wraps `inner` so its conversation is logged: each room message once, with the room, the
/// sender and the text; each peer message with its receiver.
pub fn logged(inner: Arc<dyn Bot>, seen: Arc<SeenMessages>) -> Arc<dyn Bot> {
    Tap::wrap(inner, move |account, message| match message.conv_type {
        ConvType::Room => {
            if seen.first_time(message) {
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
    })
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
            incarnation: None,
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
