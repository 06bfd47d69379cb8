//! The message feed: what the fleet's accounts receive, which the client's event stream does
//! not carry. A [`Tap`] wraps each bot; it keeps the last [`PER_ROOM`] messages of each
//! room (each message once, however many accounts received it) and sends every message as one
//! JSON line (`{"ts_ms":..,"account":..,"kind":"message","message":{..}}`) to the /events
//! subscribers that asked for messages. Everything is bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::bot::tap::Tap;
use crate::bot::Bot;
use crate::protocol::{ChatMessage, ConvType};

/// Messages kept per room.
pub const PER_ROOM: usize = 50;
/// Rooms whose messages are kept (messages of further rooms are streamed, not kept).
pub const ROOMS_KEPT: usize = 1024;
/// Message lines the /events subscribers may fall behind by before they lose the oldest.
const LINES_CAPACITY: usize = 1024;

/// A message as the console shows it: who received it first and the message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    /// Unix milliseconds when the fleet received it.
    pub ts_ms: u64,
    /// The fleet account that received it (the first one, for a room message).
    pub account: String,
    /// Always "message" (the /events line's kind).
    pub kind: &'static str,
    /// The message.
    pub message: ChatMessage,
}

/// The feed shared by every tap and the admin face.
pub struct Feed {
    rooms: Mutex<HashMap<String, VecDeque<Received>>>,
    lines: broadcast::Sender<Arc<str>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            rooms: Mutex::new(HashMap::new()),
            lines: broadcast::channel(LINES_CAPACITY).0,
        }
    }
}

impl Feed {
    /// Records a message `account` received; true when it was new (a room message that
    /// another account already received is not).
    pub fn record(&self, account: &str, message: &ChatMessage) -> bool {
        let received = Received {
            ts_ms: crate::clock::unix_ms(),
            account: account.to_string(),
            kind: "message",
            message: message.clone(),
        };
        if message.conv_type == ConvType::Room {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let full = rooms.len() >= ROOMS_KEPT;
            match rooms.get_mut(&message.conv_id) {
                Some(kept) => {
                    if kept
                        .iter()
                        .any(|r| r.message.message_id == message.message_id)
                    {
                        return false;
                    }
                    if kept.len() == PER_ROOM {
                        kept.pop_front();
                    }
                    kept.push_back(received.clone());
                }
                None if !full => {
                    rooms.insert(message.conv_id.clone(), VecDeque::from([received.clone()]));
                }
                None => {}
            }
        }
        if self.lines.receiver_count() > 0 {
            if let Ok(line) = serde_json::to_string(&received) {
                let _ = self.lines.send(line.into());
            }
        }
        true
    }

    /// The kept messages of a room, oldest first.
    pub fn room(&self, room_id: &str) -> Vec<Received> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .get(room_id)
            .map(|kept| kept.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Message lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.lines.subscribe()
    }

    /// Wraps a bot so the messages its accounts receive reach this feed.
    pub fn tap(self: &Arc<Self>, inner: Arc<dyn Bot>) -> Arc<dyn Bot> {
        let feed = Arc::clone(self);
        Tap::wrap(inner, move |account, message| {
            feed.record(account.user_id(), message);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MessageType;

    fn message(conv_type: ConvType, conv_id: &str, id: u64) -> ChatMessage {
        ChatMessage {
            message_id: id,
            conv_type,
            conv_id: conv_id.into(),
            from: "x".into(),
            msg_type: MessageType::Text,
            body: format!("m{id}"),
            seq: Some(id),
            timestamp_ms: 0,
            client_msg_id: String::new(),
            incarnation: None,
        }
    }

    #[test]
    fn a_room_message_is_kept_once_and_the_room_stays_bounded() {
        let feed = Feed::default();
        let mut lines = feed.subscribe();
        assert!(feed.record("a", &message(ConvType::Room, "lobby", 1)));
        assert!(!feed.record("b", &message(ConvType::Room, "lobby", 1)));
        let line = lines.try_recv().unwrap();
        assert!(
            line.starts_with("{\"ts_ms\":")
                && line.contains(
                    "\"account\":\"a\",\"kind\":\"message\",\"message\":{\"message_id\":1,"
                ),
            "{line}"
        );
        assert!(lines.try_recv().is_err(), "a message is streamed once");
        for id in 2..=(PER_ROOM as u64 + 5) {
            feed.record("a", &message(ConvType::Room, "lobby", id));
        }
        let kept = feed.room("lobby");
        assert_eq!(kept.len(), PER_ROOM);
        assert_eq!(kept[0].message.message_id, 6);
        assert!(feed.room("elsewhere").is_empty());
    }

    #[test]
    fn peer_messages_are_streamed_not_kept_and_rooms_are_bounded() {
        let feed = Feed::default();
        let mut lines = feed.subscribe();
        assert!(feed.record("a", &message(ConvType::Peer, "b", 1)));
        assert!(lines.try_recv().is_ok());
        assert!(feed.room("b").is_empty());
        for n in 0..(ROOMS_KEPT + 3) {
            feed.record("a", &message(ConvType::Room, &format!("r{n}"), 1));
        }
        assert_eq!(feed.rooms.lock().unwrap().len(), ROOMS_KEPT);
    }
}
