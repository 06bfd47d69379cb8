//! Frames of the zimfleet wire protocol, version 1 (docs/protocol.md).
//!
//! - request (client -> server): `{"id": u64, "op": "...", ...fields}` = [`RequestFrame`]
//! - reply (server -> client): `{"id": u64, "code": 0, ...fields}` or
//!   `{"id": u64, "code": N, "msg": "..."}` = [`ReplyFrame`] / [`ErrorReply`]
//! - push (server -> client): `{"push": "...", ...fields}` = [`Push`]
//!
//! Unknown fields are ignored everywhere (forward compatible).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codes::ErrorCode;
use super::zim::{ConvType, KickoutReason, MessageType, RoomKickoutReason};

/// A request with its id. The op and its fields are flattened beside the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

/// Every op a client may send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Login(Login),
    Heartbeat,
    RenewToken(RenewToken),
    Logout,
    RoomCreate(RoomCreate),
    RoomJoin(RoomRef),
    RoomEnter(RoomCreate),
    RoomLeave(RoomRef),
    RoomHeartbeat(RoomRef),
    RoomMembers(RoomMembers),
    RoomHistory(RoomHistory),
    MessageSend(MessageSend),
}

impl Request {
    /// The op name as it travels.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Login(_) => "login",
            Request::Heartbeat => "heartbeat",
            Request::RenewToken(_) => "renew_token",
            Request::Logout => "logout",
            Request::RoomCreate(_) => "room_create",
            Request::RoomJoin(_) => "room_join",
            Request::RoomEnter(_) => "room_enter",
            Request::RoomLeave(_) => "room_leave",
            Request::RoomHeartbeat(_) => "room_heartbeat",
            Request::RoomMembers(_) => "room_members",
            Request::RoomHistory(_) => "room_history",
            Request::MessageSend(_) => "message_send",
        }
    }
}

/// Every op name, in the order of docs/protocol.md.
pub const OPS: &[&str] = &[
    "login",
    "heartbeat",
    "renew_token",
    "logout",
    "room_create",
    "room_join",
    "room_enter",
    "room_leave",
    "room_heartbeat",
    "room_members",
    "room_history",
    "message_send",
];

/// `login`. The token is a [`crate::protocol::Secret`]: it never prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Login {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    pub token: super::Secret,
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `renew_token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewToken {
    pub token: super::Secret,
}

/// `room_create` and `room_enter`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoomCreate {
    pub room_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_delay_secs: Option<u32>,
}

/// Ops that name only a room: `room_join`, `room_leave`, `room_heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRef {
    pub room_id: String,
}

/// `room_members`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomMembers {
    pub room_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `room_history`: messages with seq > after_seq, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomHistory {
    pub room_id: String,
    pub after_seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `message_send`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSend {
    pub conv_type: ConvType,
    pub to: String,
    pub client_msg_id: String,
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

// ---------------------------------------------------------------------------------------------
// Replies

/// A success reply: `{"id", "code": 0, ...body}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyFrame<T> {
    pub id: u64,
    pub code: ErrorCode,
    #[serde(flatten)]
    pub body: T,
}

impl<T> ReplyFrame<T> {
    pub fn ok(id: u64, body: T) -> Self {
        Self {
            id,
            code: ErrorCode::OK,
            body,
        }
    }
}

/// A failure reply: `{"id", "code": N, "msg"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub id: u64,
    pub code: ErrorCode,
    pub msg: String,
}

/// Reply body of ops that return nothing (`logout`, `room_leave`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginReply {
    pub session_id: String,
    pub server_time_ms: u64,
    /// Unix seconds.
    pub token_expire_at: i64,
    pub heartbeat_interval_ms: u64,
    pub room_heartbeat_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub server_time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewTokenReply {
    /// Unix seconds.
    pub token_expire_at: i64,
}

/// Reply to `room_create` and `room_join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomReply {
    pub room: RoomInfo,
}

/// Reply to `room_enter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomEnterReply {
    pub room: RoomInfo,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomHeartbeatReply {
    pub member_count: u32,
    /// The room's incarnation (docs/protocol.md, "Room incarnation"); `None` from a server
    /// that sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomMembersReply {
    pub members: Vec<Member>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomHistoryReply {
    pub messages: Vec<ChatMessage>,
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSendReply {
    pub message_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub timestamp_ms: u64,
    /// Room messages: the incarnation of the room that numbered `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Shared values

/// `room`: `{room_id, room_name, member_count, attributes, incarnation}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room_id: String,
    #[serde(default)]
    pub room_name: String,
    #[serde(default)]
    pub member_count: u32,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Which life of the room this is: given when the room is created, never reused by the
    /// server (docs/protocol.md, "Room incarnation"). `None`: the server sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
}

/// A room member: `{user_id, user_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
}

/// `message`: `{message_id, conv_type, conv_id, from, type, body, seq?, timestamp_ms,
/// client_msg_id, incarnation?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub message_id: u64,
    pub conv_type: ConvType,
    /// The room id, or for a peer message the peer's user id as seen by the receiver
    /// (the sender's id).
    pub conv_id: String,
    pub from: String,
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub timestamp_ms: u64,
    pub client_msg_id: String,
    /// Room messages: the incarnation of the room (docs/protocol.md, "Room incarnation");
    /// with `seq` it names the message: seqs start over in each incarnation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Pushes

/// Every push the server sends. Unknown pushes parse as [`Push::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "push", rename_all = "snake_case")]
pub enum Push {
    Message {
        message: ChatMessage,
        #[serde(default)]
        offline: bool,
    },
    RoomMemberJoined {
        room_id: String,
        members: Vec<Member>,
    },
    RoomMemberLeft {
        room_id: String,
        members: Vec<Member>,
    },
    RoomKickout {
        room_id: String,
        reason: RoomKickoutReason,
    },
    TokenWillExpire {
        remaining_secs: u64,
    },
    Kickout {
        reason: KickoutReason,
        #[serde(default)]
        ext: serde_json::Value,
    },
    /// A push this version does not know; ignored by the client.
    #[serde(other)]
    Unknown,
}

// ---------------------------------------------------------------------------------------------
// Parsing what the server sends

/// What the first look at a server frame tells: a push, or a reply to request `id`.
#[derive(Debug)]
pub enum ServerFrame<'a> {
    Push(Push),
    /// A reply; `code` 0 is success. Parse its body with [`ServerFrame::reply_body`].
    Reply {
        id: u64,
        code: ErrorCode,
        msg: Option<String>,
        text: &'a str,
    },
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow)]
    push: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    code: Option<ErrorCode>,
    #[serde(default)]
    msg: Option<String>,
}

/// Errors of the protocol layer: a frame that cannot be understood.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("frame is neither a reply (id + code) nor a push")]
    NotAFrame,
}

impl<'a> ServerFrame<'a> {
    /// Parses one text frame from the server.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        let head: Head<'a> = serde_json::from_str(text)?;
        if head.push.is_some() {
            return Ok(ServerFrame::Push(serde_json::from_str(text)?));
        }
        match (head.id, head.code) {
            (Some(id), Some(code)) => Ok(ServerFrame::Reply {
                id,
                code,
                msg: head.msg,
                text,
            }),
            _ => Err(ProtocolError::NotAFrame),
        }
    }

    /// Parses the body of a success reply as `T` (the reply type of the op that was sent).
    pub fn reply_body<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ProtocolError> {
        Ok(serde_json::from_str(text)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Rules shared by both sides

/// Largest frame either side accepts (larger: close 1009).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Largest message body (larger: 6000001).
pub const MAX_BODY_BYTES: usize = 49_152;
/// Most items a `room_members` or `room_history` page returns.
pub const MAX_PAGE: u32 = 100;

/// WebSocket close codes of the protocol.
pub mod close_code {
    /// Frame is not a JSON object.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Frame larger than [`super::MAX_FRAME_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// No frame for the offline timeout (transient: reconnect).
    pub const HEARTBEAT_TIMEOUT: u16 = 4001;
    /// Another device logged in (terminal).
    pub const KICKED_OUT: u16 = 4004;
    /// Token expired (terminal).
    pub const TOKEN_EXPIRED: u16 = 4005;
    /// User unregistered (terminal).
    pub const UNREGISTERED: u16 = 4006;
}

/// Whether `id` is a valid user id or room id: 1 to 32 bytes of ASCII letters, digits and
/// `!#$%&()+-:;<=.>?@[]^_{}|~`.
pub fn is_valid_id(id: &str) -> bool {
    const SYMBOLS: &[u8] = b"!#$%&()+-:;<=.>?@[]^_{}|~";
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || SYMBOLS.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(frame: &RequestFrame) {
        let text = serde_json::to_string(frame).unwrap();
        let back: RequestFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, frame, "{text}");
    }

    #[test]
    fn every_request_round_trips() {
        let requests = vec![
            Request::Login(Login {
                user_id: "u1".into(),
                user_name: Some("U".into()),
                token: "04abc".into(),
                device_id: "d1".into(),
                platform: None,
            }),
            Request::Heartbeat,
            Request::RenewToken(RenewToken {
                token: "04xyz".into(),
            }),
            Request::Logout,
            Request::RoomCreate(RoomCreate {
                room_id: "r1".into(),
                room_name: Some("Room".into()),
                attributes: Some([("k".to_string(), "v".to_string())].into()),
                destroy_delay_secs: Some(60),
            }),
            Request::RoomJoin(RoomRef {
                room_id: "r1".into(),
            }),
            Request::RoomEnter(RoomCreate {
                room_id: "r1".into(),
                ..Default::default()
            }),
            Request::RoomLeave(RoomRef {
                room_id: "r1".into(),
            }),
            Request::RoomHeartbeat(RoomRef {
                room_id: "r1".into(),
            }),
            Request::RoomMembers(RoomMembers {
                room_id: "r1".into(),
                cursor: Some("c".into()),
                limit: Some(10),
            }),
            Request::RoomHistory(RoomHistory {
                room_id: "r1".into(),
                after_seq: 5,
                limit: None,
            }),
            Request::MessageSend(MessageSend {
                conv_type: ConvType::Room,
                to: "r1".into(),
                client_msg_id: "c1".into(),
                msg_type: MessageType::Text,
                body: "hi".into(),
                priority: Some(2),
            }),
        ];
        let ops: Vec<_> = requests.iter().map(Request::op).collect();
        assert_eq!(ops, OPS);
        for (i, request) in requests.into_iter().enumerate() {
            round_trip(&RequestFrame {
                id: i as u64,
                request,
            });
        }
    }

    #[test]
    fn request_wire_shape_is_flat() {
        let v = serde_json::to_value(RequestFrame {
            id: 7,
            request: Request::Heartbeat,
        })
        .unwrap();
        assert_eq!(v, json!({"id": 7, "op": "heartbeat"}));
        let v = serde_json::to_value(RequestFrame {
            id: 8,
            request: Request::MessageSend(MessageSend {
                conv_type: ConvType::Peer,
                to: "u2".into(),
                client_msg_id: "m".into(),
                msg_type: MessageType::Custom,
                body: "b".into(),
                priority: None,
            }),
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"id": 8, "op": "message_send", "conv_type": 0, "to": "u2",
                   "client_msg_id": "m", "type": 200, "body": "b"})
        );
    }

    #[test]
    fn unknown_op_and_bad_fields_fail_to_parse() {
        assert!(serde_json::from_str::<RequestFrame>(r#"{"id":1,"op":"dance"}"#).is_err());
        assert!(serde_json::from_str::<RequestFrame>(r#"{"id":1,"op":"room_join"}"#).is_err());
        assert!(
            serde_json::from_str::<RequestFrame>(r#"{"id":1,"op":"room_join","room_id":5}"#)
                .is_err()
        );
        // unknown fields are ignored
        let f: RequestFrame =
            serde_json::from_str(r#"{"id":1,"op":"room_join","room_id":"r","x":1}"#).unwrap();
        assert_eq!(f.request.op(), "room_join");
    }

    #[test]
    fn replies_and_pushes_round_trip_through_server_frame() {
        let reply = ReplyFrame::ok(
            3,
            LoginReply {
                session_id: "s".into(),
                server_time_ms: 1,
                token_expire_at: 2,
                heartbeat_interval_ms: 10_000,
                room_heartbeat_interval_ms: 15_000,
            },
        );
        let text = serde_json::to_string(&reply).unwrap();
        match ServerFrame::parse(&text).unwrap() {
            ServerFrame::Reply { id, code, text, .. } => {
                assert_eq!((id, code), (3, ErrorCode::OK));
                let body: LoginReply = ServerFrame::reply_body(text).unwrap();
                assert_eq!(body, reply.body);
            }
            other => panic!("{other:?}"),
        }
        let err = serde_json::to_string(&ErrorReply {
            id: 4,
            code: ErrorCode::NOT_IN_ROOM,
            msg: "not in room".into(),
        })
        .unwrap();
        assert_eq!(err, r#"{"id":4,"code":6000321,"msg":"not in room"}"#);
        match ServerFrame::parse(&err).unwrap() {
            ServerFrame::Reply { id, code, msg, .. } => {
                assert_eq!(
                    (id, code, msg.as_deref()),
                    (4, ErrorCode::NOT_IN_ROOM, Some("not in room"))
                )
            }
            other => panic!("{other:?}"),
        }
        let pushes = vec![
            Push::Message {
                message: ChatMessage {
                    message_id: 1,
                    conv_type: ConvType::Room,
                    conv_id: "r".into(),
                    from: "u".into(),
                    msg_type: MessageType::Text,
                    body: "hi".into(),
                    seq: Some(1),
                    timestamp_ms: 5,
                    client_msg_id: "c".into(),
                    incarnation: None,
                },
                offline: false,
            },
            Push::RoomMemberJoined {
                room_id: "r".into(),
                members: vec![Member {
                    user_id: "u".into(),
                    user_name: "U".into(),
                }],
            },
            Push::RoomMemberLeft {
                room_id: "r".into(),
                members: vec![],
            },
            Push::RoomKickout {
                room_id: "r".into(),
                reason: RoomKickoutReason::RoomDestroyed,
            },
            Push::TokenWillExpire { remaining_secs: 30 },
            Push::Kickout {
                reason: KickoutReason::KickedOut,
                ext: json!({"device_id": "d2"}),
            },
        ];
        for push in pushes {
            let text = serde_json::to_string(&push).unwrap();
            match ServerFrame::parse(&text).unwrap() {
                ServerFrame::Push(p) => assert_eq!(p, push),
                other => panic!("{other:?}"),
            }
        }
        match ServerFrame::parse(r#"{"push":"fireworks","n":1}"#).unwrap() {
            ServerFrame::Push(Push::Unknown) => {}
            other => panic!("{other:?}"),
        }
        assert!(ServerFrame::parse("[1]").is_err());
        assert!(ServerFrame::parse(r#"{"hello":1}"#).is_err());
    }

    #[test]
    fn id_rule() {
        assert!(is_valid_id("u1"));
        assert!(is_valid_id("a!#$%&()+-:;<=.>?@[]^_{}|~"));
        assert!(is_valid_id(&"x".repeat(32)));
        assert!(!is_valid_id(&"x".repeat(33)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("é"));
        assert!(!is_valid_id("a,b"));
    }
}
