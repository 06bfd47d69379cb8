//! The messages the account actor handles: commands from an [`AccountHandle`] and reports
//! from its room actors. A leaf module: the handle and the rooms name these types without
//! depending on the actor.
//!
//! [`AccountHandle`]: crate::client::AccountHandle

use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use tokio::sync::oneshot;

use crate::client::room::messages::RoomTag;
use crate::client::{AccountStatus, RoomSpec};
use crate::protocol::{
    ConvType, MessageSendReply, MessageType, Request, RoomInfo, RoomMembersReply, Secret, ZimError,
};

/// Where the answer to a command goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ZimError>>;

/// Everything an account actor is asked.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum AccountCmd {
    /// Handle -> account: send a message (room or peer).
    Send(SendCmd),
    /// Handle -> account: enter (create, join) a room and keep it.
    EnterRoom {
        /// The room and how to enter and recover it.
        spec: RoomSpec,
        /// Answered at (Connected, Success) or with the entry's error.
        reply: Reply<RoomInfo>,
    },
    /// Handle -> account: leave a room.
    LeaveRoom {
        /// The room.
        room_id: String,
        /// Answered when the server confirms.
        reply: Reply<()>,
    },
    /// Handle -> account: one page of room_members.
    MembersPage {
        /// The room.
        room_id: String,
        /// Where the page starts (`None`: the first page).
        cursor: Option<String>,
        /// The page.
        reply: Reply<RoomMembersReply>,
    },
    /// Handle -> account: renewToken with this token; answers the new expiry.
    RenewToken {
        /// The new token.
        token: Secret,
        /// The new expiry in Unix seconds.
        reply: Reply<i64>,
    },
    /// Handle -> account: leave every room and log out.
    Logout {
        /// Answered when the account ended.
        reply: Reply<()>,
    },
    /// Handle / fleet -> account: the account's status now.
    Status(oneshot::Sender<AccountStatus>),
    /// Handle (chaos) -> account: drop the link abruptly.
    ChaosDrop,
    /// Handle (chaos) -> account: drop the link and fail every connect for a while.
    ChaosOffline(Duration),
    /// Room actor -> its account.
    Room(FromRoom),
}

/// Handle -> account: a message to send.
pub(crate) struct SendCmd {
    /// Room or peer.
    pub conv_type: ConvType,
    /// The room id or the user id.
    pub to: Box<str>,
    /// The message type.
    pub msg_type: MessageType,
    /// The body.
    pub body: String,
    /// `None`: fire and forget (a failure is logged and counted).
    pub reply: Option<Reply<MessageSendReply>>,
}

/// What a room actor tells or asks its account. `serial` names the room actor (an account
/// numbers the room actors it starts), so a report of a room actor the account already let
/// go is recognised and dropped.
pub(crate) enum FromRoom {
    /// Send this request on the link; the reply (or timeout, or "not sent") comes back to
    /// the room as a `RoomReply` with `tag`.
    Request {
        /// The room.
        room: Arc<str>,
        /// The room actor.
        serial: u32,
        /// Names the request for the room.
        tag: RoomTag,
        /// The request.
        request: Request,
        /// Its deadline.
        timeout: Duration,
    },
    /// The room's gate for sends changed.
    Changed {
        /// The room.
        room: Arc<str>,
        /// The room actor.
        serial: u32,
        /// The room is Connected: room sends may go.
        connected: bool,
        /// Out, waiting for a supervised restart.
        waiting_restart: bool,
    },
    /// The room is over (left, kicked, ended, gave up): let its actor go.
    Finished {
        /// The room.
        room: Arc<str>,
        /// The room actor.
        serial: u32,
    },
}
