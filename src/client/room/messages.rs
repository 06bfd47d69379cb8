//! The messages a room actor handles, all sent by its account. A leaf module.

use actix::Message;
use tokio::sync::oneshot;

use crate::client::RoomStatus;
use crate::protocol::{ChatMessage, ErrorCode, Member, RoomKickoutReason, ZimError};
use crate::session::RoomEntry;

/// Names a request a room made, for its reply. `generation` is the room actor's generation
/// (bumped by every supervised restart): a reply for an older one is dropped.
pub(crate) enum RoomTag {
    /// room_create / room_join / room_enter.
    Entry {
        /// The generation that sent it.
        generation: u32,
        /// Which entry.
        entry: RoomEntry,
    },
    /// room_heartbeat.
    Heartbeat {
        /// The generation that sent it.
        generation: u32,
    },
    /// room_history (a catch-up page).
    History {
        /// The generation that sent it.
        generation: u32,
        /// The room incarnation the catch-up is of: a page of another one is dropped.
        incarnation: Option<u64>,
    },
    /// room_leave (sent by the account for a caller or for a logout).
    Leave {
        /// The caller, if any.
        reply: Option<oneshot::Sender<Result<(), ZimError>>>,
    },
}

/// How a room request ended.
pub(crate) enum Answer {
    /// It never went out (no link, or the link dropped with it in flight).
    Unsent,
    /// The server answered (or the deadline passed: 6000105, "request timed out").
    Reply {
        /// The reply's code.
        code: ErrorCode,
        /// The reply's message ("" when none).
        msg: String,
        /// The whole reply frame, for its body.
        text: String,
    },
}

/// Account -> room: the answer to one of its requests.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct RoomReply {
    /// The request.
    pub tag: RoomTag,
    /// Its outcome.
    pub answer: Answer,
}

/// Account -> room: what happened to the account, or a push for the room.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum ToRoom {
    /// T0: the account went Reconnecting.
    Reconnecting,
    /// The account is Connected: T1 (`first: false`), or the first login of an account the
    /// room was entered on before it was through (`first: true`). `clock_offset_ms`: the
    /// server clock minus ours.
    Connected {
        /// The first login.
        first: bool,
        /// Server clock minus ours, ms.
        clock_offset_ms: i64,
    },
    /// The account ended (terminal cause or logout): end and stop; nothing restarts.
    Ended,
    /// The periodic room heartbeat tick.
    HeartbeatDue,
    /// A room message.
    Message(ChatMessage),
    /// Members joined.
    MembersJoined(Vec<Member>),
    /// Members left.
    MembersLeft(Vec<Member>),
    /// The server removed us from the room.
    Kickout(RoomKickoutReason),
    /// The account let this room actor go: stop, silently.
    Retire,
}

/// Account -> room: the room's status now (`None`: the room is over).
#[derive(Message)]
#[rtype(result = "Option<RoomStatus>")]
pub(crate) struct GetRoomStatus;

/// Account -> room: answered once everything sent to the room before it was handled (the
/// account waits on it so the rooms' events come out before its own).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Barrier;

/// The error of a reply with `code` and the server's `msg` (its description when empty).
pub(crate) fn reply_error(code: ErrorCode, msg: &str) -> ZimError {
    ZimError::new(
        code,
        if msg.is_empty() {
            code.description()
        } else {
            msg
        },
    )
}
