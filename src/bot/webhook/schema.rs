//! The webhook's JSON: one schema for every event an account sees (docs/bots.md, "The
//! webhook's JSON"), and the answer that may carry actions. Pure: no I/O.
//!
//! ```json
//! {"schema":1,"event_id":3,"ts_ms":1764100000123,"account":"echo","kind":"message",
//!  "message":{"message_id":7,"conv_type":1,"conv_id":"lobby","from":"ann","type":1,
//!             "body":"hi","seq":4,"timestamp_ms":1764100000120,"client_msg_id":"c1"}}
//! ```

use serde::{Deserialize, Serialize};

use crate::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, Member, RoomEvent, RoomState,
};

/// The version of the event schema, sent in every event as `schema`.
pub const SCHEMA_VERSION: u32 = 1;

/// Every event kind, by the name an `events` filter and the `kind` field use.
pub const KINDS: &[&str] = &[
    "connection",
    "room",
    "message",
    "members_joined",
    "members_left",
    "token_will_expire",
    "room_gave_up",
    "room_incarnation_changed",
];

/// One event as posted: the envelope every kind shares, and the kind's own fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEvent {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Per account, from 1, increasing by one for each event the account saw (an event
    /// dropped or filtered out leaves a gap).
    pub event_id: u64,
    /// Unix milliseconds when the account saw it.
    pub ts_ms: u64,
    /// The user id of the account that saw it.
    pub account: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: WebhookKind,
}

/// What happened, with the ZIM integers and their names beside them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookKind {
    /// onConnectionStateChanged.
    Connection {
        /// ZIMConnectionState.
        state: ConnectionState,
        /// Its name, e.g. "Connected".
        state_name: &'static str,
        /// ZIMConnectionEvent.
        event: ConnectionEvent,
        /// Its name, e.g. "Success".
        event_name: &'static str,
        /// Extended data of the change (`{}` when none).
        ext: serde_json::Value,
    },
    /// onRoomStateChanged.
    Room {
        /// The room.
        room_id: String,
        /// ZIMRoomState.
        state: RoomState,
        /// Its name.
        state_name: &'static str,
        /// ZIMRoomEvent.
        event: RoomEvent,
        /// Its name.
        event_name: &'static str,
        /// Extended data of the change.
        ext: serde_json::Value,
    },
    /// A room or peer message (the wire shape of `message`).
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// Members joined a room the account is in.
    MembersJoined {
        /// The room.
        room_id: String,
        /// Who joined.
        members: Vec<Member>,
    },
    /// Members left a room the account is in.
    MembersLeft {
        /// The room.
        room_id: String,
        /// Who left.
        members: Vec<Member>,
    },
    /// onTokenWillExpire (the fleet renews by itself).
    TokenWillExpire {
        /// Seconds left.
        remaining_secs: u64,
    },
    /// A room stopped recovering and stays out.
    RoomGaveUp {
        /// The room.
        room_id: String,
        /// Why.
        reason: String,
    },
    /// A room came back as another incarnation: its seqs start over.
    RoomIncarnationChanged {
        /// The room.
        room_id: String,
        /// The incarnation the account knew.
        old: u64,
        /// The room's incarnation now.
        new: u64,
    },
}

impl WebhookKind {
    /// The kind's name (the `kind` field).
    pub fn name(&self) -> &'static str {
        match self {
            WebhookKind::Connection { .. } => "connection",
            WebhookKind::Room { .. } => "room",
            WebhookKind::Message { .. } => "message",
            WebhookKind::MembersJoined { .. } => "members_joined",
            WebhookKind::MembersLeft { .. } => "members_left",
            WebhookKind::TokenWillExpire { .. } => "token_will_expire",
            WebhookKind::RoomGaveUp { .. } => "room_gave_up",
            WebhookKind::RoomIncarnationChanged { .. } => "room_incarnation_changed",
        }
    }

    /// A connection change.
    pub fn connection(
        state: ConnectionState,
        event: ConnectionEvent,
        ext: &serde_json::Value,
    ) -> Self {
        WebhookKind::Connection {
            state,
            state_name: state.name(),
            event,
            event_name: event.name(),
            ext: ext.clone(),
        }
    }

    /// A room change.
    pub fn room(
        room_id: &str,
        state: RoomState,
        event: RoomEvent,
        ext: &serde_json::Value,
    ) -> Self {
        WebhookKind::Room {
            room_id: room_id.to_string(),
            state,
            state_name: state.name(),
            event,
            event_name: event.name(),
            ext: ext.clone(),
        }
    }
}

/// The endpoint's answer: an empty body, or `{"actions":[...]}` run in order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAnswer {
    /// What the account does, in order.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// Something the account does for the endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Sends a text message to a room.
    RoomMessage {
        /// The room.
        room_id: String,
        /// The text.
        text: String,
    },
    /// Sends a text message to a user.
    PeerMessage {
        /// The user.
        user_id: String,
        /// The text.
        text: String,
    },
    /// Enters (or creates) a room and keeps it.
    EnterRoom {
        /// The room.
        room_id: String,
    },
    /// Leaves a room.
    LeaveRoom {
        /// The room.
        room_id: String,
    },
}

impl Action {
    /// The action's name (the `type` field).
    pub fn name(&self) -> &'static str {
        match self {
            Action::RoomMessage { .. } => "room_message",
            Action::PeerMessage { .. } => "peer_message",
            Action::EnterRoom { .. } => "enter_room",
            Action::LeaveRoom { .. } => "leave_room",
        }
    }
}

/// Reads an answer body: empty (or only whitespace) means no actions.
pub fn parse_answer(body: &[u8]) -> Result<WebhookAnswer, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(WebhookAnswer::default());
    }
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConvType, MessageType};

    fn event(kind: WebhookKind) -> serde_json::Value {
        serde_json::to_value(WebhookEvent {
            schema: SCHEMA_VERSION,
            event_id: 3,
            ts_ms: 10,
            account: "u1".into(),
            kind,
        })
        .unwrap()
    }

    #[test]
    fn every_kind_has_the_envelope_and_its_zim_integers() {
        let ext = serde_json::json!({});
        let rows = [
            (
                WebhookKind::connection(ConnectionState::Connected, ConnectionEvent::Success, &ext),
                serde_json::json!({"kind":"connection","state":2,"state_name":"Connected","event":0,"event_name":"Success","ext":{}}),
            ),
            (
                WebhookKind::room("r", RoomState::Connecting, RoomEvent::ConnectTimeout, &ext),
                serde_json::json!({"kind":"room","room_id":"r","state":1,"state_name":"Connecting","event":9,"event_name":"ConnectTimeout","ext":{}}),
            ),
            (
                WebhookKind::MembersJoined {
                    room_id: "r".into(),
                    members: vec![Member {
                        user_id: "a".into(),
                        user_name: "A".into(),
                    }],
                },
                serde_json::json!({"kind":"members_joined","room_id":"r","members":[{"user_id":"a","user_name":"A"}]}),
            ),
            (
                WebhookKind::MembersLeft {
                    room_id: "r".into(),
                    members: vec![],
                },
                serde_json::json!({"kind":"members_left","room_id":"r","members":[]}),
            ),
            (
                WebhookKind::TokenWillExpire { remaining_secs: 30 },
                serde_json::json!({"kind":"token_will_expire","remaining_secs":30}),
            ),
            (
                WebhookKind::RoomGaveUp {
                    room_id: "r".into(),
                    reason: "budget".into(),
                },
                serde_json::json!({"kind":"room_gave_up","room_id":"r","reason":"budget"}),
            ),
            (
                WebhookKind::RoomIncarnationChanged {
                    room_id: "r".into(),
                    old: 7,
                    new: 9,
                },
                serde_json::json!({"kind":"room_incarnation_changed","room_id":"r","old":7,"new":9}),
            ),
        ];
        for (kind, fields) in rows {
            assert!(KINDS.contains(&kind.name()));
            let mut want = serde_json::json!({"schema":1,"event_id":3,"ts_ms":10,"account":"u1"});
            want.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            assert_eq!(event(kind), want);
        }
    }

    #[test]
    fn a_message_carries_its_wire_shape() {
        let message = ChatMessage {
            message_id: 7,
            conv_type: ConvType::Room,
            conv_id: "lobby".into(),
            from: "ann".into(),
            msg_type: MessageType::Text,
            body: "hi".into(),
            seq: Some(4),
            timestamp_ms: 5,
            client_msg_id: "c1".into(),
            incarnation: None,
        };
        let value = event(WebhookKind::Message { message });
        assert_eq!(value["kind"], "message");
        assert_eq!(
            value["message"],
            serde_json::json!({"message_id":7,"conv_type":1,"conv_id":"lobby","from":"ann","type":1,"body":"hi","seq":4,"timestamp_ms":5,"client_msg_id":"c1"})
        );
    }

    #[test]
    fn answers_parse_in_order_and_bad_ones_are_refused() {
        assert_eq!(parse_answer(b"").unwrap(), WebhookAnswer::default());
        assert_eq!(parse_answer(b" \n").unwrap(), WebhookAnswer::default());
        assert_eq!(parse_answer(b"{}").unwrap(), WebhookAnswer::default());
        let answer = parse_answer(
            br#"{"actions":[{"type":"enter_room","room_id":"b"},{"type":"room_message","room_id":"b","text":"hi"},{"type":"peer_message","user_id":"ann","text":"psst"},{"type":"leave_room","room_id":"b"}]}"#,
        )
        .unwrap();
        let names: Vec<_> = answer.actions.iter().map(Action::name).collect();
        assert_eq!(
            names,
            ["enter_room", "room_message", "peer_message", "leave_room"]
        );
        let err = parse_answer(br#"{"actions":[{"type":"dance"}]}"#).unwrap_err();
        assert!(err.starts_with("unknown variant `dance`"), "{err}");
        let err =
            parse_answer(br#"{"actions":[{"type":"room_message","room_id":"b"}]}"#).unwrap_err();
        assert!(err.starts_with("missing field `text`"), "{err}");
        assert!(parse_answer(b"not json").is_err());
    }
}
