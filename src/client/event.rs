//! Events: every state change as a value that serialises to one JSON line, e.g.
//! `{"ts_ms":1764100000123,"account":"u1","kind":"connection","state":3,"event":3,"ext":{}}`.

use serde::{Deserialize, Serialize};

use crate::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix milliseconds.
    pub ts_ms: u64,
    pub account: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Connection {
        state: ConnectionState,
        event: ConnectionEvent,
        ext: serde_json::Value,
    },
    Room {
        room_id: String,
        state: RoomState,
        event: RoomEvent,
        ext: serde_json::Value,
    },
    /// onTokenWillExpire.
    TokenWillExpire { remaining_secs: u64 },
    /// A renewal succeeded; the new expiry in unix seconds.
    TokenRenewed { expire_at: i64 },
    /// A renewal attempt failed (it is retried while time is left).
    TokenRenewFailed { error: String },
    /// A room gave up recovering (restart budget spent, or policy "leave").
    RoomGaveUp { room_id: String, reason: String },
}
