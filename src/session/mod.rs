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
//!
//! Each machine takes an input and returns the pair to emit (with its extended data) and the
//! effects the actor carries out; every row of the ZIM tables is a unit test beside it.

pub mod classify;
pub mod connection;
pub mod feed;
pub mod limits;
pub mod outbox;
pub mod retry;
pub mod room;
pub mod token_clock;

pub use classify::{DisconnectCause, Disposition};
pub use connection::{ConnEffect, ConnEmit, ConnInput, ConnStep, ConnectionMachine};
pub use feed::{Feed, Live, Page};
pub use limits::{ConversationPacer, RenewPacer, RequestShaper};
pub use outbox::{Outbox, Queued, Ready};
pub use retry::{Backoff, RestartBudget, RestartVerdict, RetryConfig};
pub use room::{
    OnConnectTimeout, OnRoomNotExist, RecoveryPolicy, RoomEffect, RoomEmit, RoomEntry, RoomInput,
    RoomMachine, RoomStep,
};
pub use token_clock::{LoginToken, TokenClock, TokenTimers};
