//! Frames serialised once and shared by every receiver: pushes and the message push.

use bytestring::ByteString;
use serde::Serialize;

use crate::protocol::{ChatMessage, Push};

/// The `message` push, serialised from a borrowed message (the same JSON as
/// `Push::Message`, without copying the body).
pub(crate) fn message_push(message: &ChatMessage, offline: bool) -> ByteString {
    #[derive(Serialize)]
    struct MessagePush<'a> {
        push: &'static str,
        message: &'a ChatMessage,
        offline: bool,
    }
    let push = MessagePush {
        push: "message",
        message,
        offline,
    };
    ByteString::from(serde_json::to_string(&push).expect("pushes always serialise"))
}

/// An upper bound of a message's size in a JSON frame: the body may grow when escaped (a
/// control character becomes six bytes), the ids are at most 32 bytes, the rest is fixed.
pub(super) fn encoded_size_bound(m: &ChatMessage) -> usize {
    let escaped_body = m
        .body
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>();
    escaped_body + m.client_msg_id.len() + m.conv_id.len() + m.from.len() + 256
}

/// Serialises a push once; the bytes are shared by every receiver.
pub(crate) fn push_bytes(push: &Push) -> ByteString {
    ByteString::from(serde_json::to_string(push).expect("pushes always serialise"))
}

// ---------------------------------------------------------------------------------------------
// Counters and stats

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConvType, MessageType};

    #[test]
    fn message_push_is_the_push_enum_json() {
        let message = ChatMessage {
            message_id: 7,
            conv_type: ConvType::Room,
            conv_id: "r".into(),
            from: "u".into(),
            msg_type: MessageType::Text,
            body: "hi \"there\"".into(),
            seq: Some(3),
            timestamp_ms: 9,
            client_msg_id: "c".into(),
            incarnation: None,
        };
        for offline in [false, true] {
            let borrowed = message_push(&message, offline);
            let owned = push_bytes(&Push::Message {
                message: message.clone(),
                offline,
            });
            assert_eq!(borrowed, owned);
        }
    }
}
