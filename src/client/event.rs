//! Events: every state change as a value that serialises to one JSON line, e.g.
//! `{"ts_ms":1764100000123,"account":"u1","kind":"connection","state":3,"event":3,"ext":{}}`.

use serde::{Deserialize, Serialize};

use crate::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};

/// One event of one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix milliseconds.
    pub ts_ms: u64,
    /// The account's user id.
    pub account: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, tagged `kind` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// onConnectionStateChanged.
    Connection {
        /// The new state.
        state: ConnectionState,
        /// Why.
        event: ConnectionEvent,
        /// Extended data (`code`, `message` for failures).
        ext: serde_json::Value,
    },
    /// onRoomStateChanged.
    Room {
        /// The room.
        room_id: String,
        /// The new state.
        state: RoomState,
        /// Why.
        event: RoomEvent,
        /// Extended data (`code`, `message` for failures).
        ext: serde_json::Value,
    },
    /// onTokenWillExpire.
    TokenWillExpire {
        /// Seconds left before the token expires.
        remaining_secs: u64,
    },
    /// A renewal succeeded; the new expiry in unix seconds.
    TokenRenewed {
        /// Unix seconds.
        expire_at: i64,
    },
    /// A renewal attempt failed (it is retried while time is left).
    TokenRenewFailed {
        /// The error, as text.
        error: String,
    },
    /// A room came back as another incarnation (docs/protocol.md, "Room incarnation"): the
    /// room was created again (a server restart, or destroyed and entered again); its seqs
    /// start over and no catch-up reaches into the old one.
    RoomIncarnationChanged {
        /// The room.
        room_id: String,
        /// The incarnation the account knew.
        old: u64,
        /// The incarnation the room has now.
        new: u64,
    },
    /// A room gave up recovering (restart budget spent, or policy "leave").
    RoomGaveUp {
        /// The room.
        room_id: String,
        /// "restart budget spent" or "recovery policy is leave".
        reason: String,
    },
}
