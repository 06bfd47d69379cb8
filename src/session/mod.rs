//! The ZIM state machines as pure code: no sockets, no actors, no clock of their own.
//!
//! - [`connection`]: the account's connection states and events (docs/zim-semantics.md section 2).
//! - [`room`]: room states and events, T0/T1/T2 and the recovery policy (docs/zim-semantics.md section 3).
//! - [`classify`]: the one table that splits every disconnect cause into transient or
//!   terminal.
//! - [`retry`]: the reconnect schedule and the bounded restart budget of rooms.
//! - [`limits`]: the client-side frequency limits that answer 6000004 (docs/zim-semantics.md section 6).
//! - [`feed`]: a room's message feed: seq order, held messages, gaps, catch-up pages.
//! - [`outbox`]: sends waiting for the connection and for their room, expiry, put-back.
//! - [`token_clock`]: renew-ahead warning, expiry deadline, the token a re-login carries.
//! - [`deadlines`]: an account's timed duties, kept for one timer.
//!
//! Each machine takes an input and returns the pair to emit (with its extended data) and the
//! effects the actor carries out; every row of the ZIM tables is a unit test beside it.
#![warn(missing_docs)]

/// Every disconnect cause: transient or terminal.
pub mod classify;
/// The account's connection machine.
pub mod connection;
/// An account's timed duties, one timer for all.
pub mod deadlines;
/// A room's message feed.
pub mod feed;
/// Client-side frequency limits.
pub mod limits;
/// Sends waiting for the connection and their room.
pub mod outbox;
/// How a room is entered and recovers.
pub mod policy;
/// The reconnect schedule, the restart budget, the backoff helpers.
pub mod retry;
/// The room machine.
pub mod room;
/// The token clock.
pub mod token_clock;

pub use classify::{DisconnectCause, Disposition};
pub use connection::{ConnEffect, ConnEmit, ConnInput, ConnStep, ConnectionMachine};
pub use deadlines::{Deadlines, Duty};
pub use feed::{Feed, Live, Page};
pub use limits::{ConversationPacer, RenewPacer, RequestShaper};
pub use outbox::{Outbox, Queued, Ready};
pub use retry::{Backoff, RestartBudget, RestartVerdict, RetryConfig};
pub use room::{
    OnConnectTimeout, OnRoomNotExist, RecoveryPolicy, RoomEffect, RoomEmit, RoomEntry, RoomInput,
    RoomMachine, RoomStep,
};
pub use token_clock::{LoginToken, TokenClock, TokenTimers};
