//! The client actors: a [`Fleet`] of accounts, each an actor that supervises one actor per
//! room it keeps and recovers the way the ZIM SDK does (docs/zim-semantics.md).
//!
//! # The actor tree
//!
//! ```text
//!                     Fleet (fleet.rs; arbiters, handles by user id)
//!                    /          |                           \
//!      FleetRoot (root.rs)  TokenService (renewal/)     Account (account/), one per user,
//!      how accounts ended   tokens before expiry        on one of the fleet's arbiters
//!                                                           |  supervises (actix::Supervisor)
//!                                                       Room (room/), one per room kept,
//!                                                       on its account's arbiter
//! ```
//!
//! Who sends what to whom:
//!
//! - AccountHandle -> Account: `AccountCmd` (send, enter/leave a room, members, renew,
//!   logout, status, chaos); answers come back on a oneshot.
//! - Account -> Room: `ToRoom` (T0 Reconnecting, T1 Connected, Ended, heartbeat tick, room
//!   pushes, Retire), `RoomReply` (the answer to one of its requests), `GetRoomStatus`,
//!   `Barrier`.
//! - Room -> Account: `FromRoom` (a request to send on the link, its gate for sends changed,
//!   it is over).
//! - Account -> TokenService: `RenewalNeeded`, `RenewalCancelled`; back: `RenewalOutcome`.
//! - Account -> FleetRoot: `AccountEnded` just before it stops; Fleet and handles ask it
//!   `EndedAccounts` / `EndedStatus`.
//!
//! Only the account touches the link; a room's requests and its replies and pushes go
//! through the account in socket order (both run on one arbiter, mailboxes are FIFO). A room
//! restarts through its supervisor (T2 ConnectTimeout or RoomNotExist, bounded by its restart
//! budget); a terminal cause ends the account, which stops every room actor, then itself.
//! Nothing restarts an account.
//!
//! Words: the *connection* is the account's ZIM connection state (the machine in
//! src/session/connection.rs); a *link* is one open WebSocket (transport.rs), an account has
//! at most one at a time; a *generation* is one run of a room actor between restarts; an
//! *incarnation* is one life of a room on the server (docs/protocol.md, "Room incarnation").
//!
//! # Files
//!
//! - [`Fleet`] (fleet.rs): the top; `root.rs`: the root actor; `shared.rs`: what all share.
//! - `account/`: the account actor and its messages; `room/`: the room actor and its
//!   messages.
//! - [`AccountHandle`] (handle.rs): what bots and callers act through.
//! - `transport.rs`: the awc WebSocket, one client per arbiter thread; `bot_call.rs`: bot
//!   handlers behind catch_unwind.
//! - [`renewal`]: the TokenService; [`event`]: events; [`metrics`]: counters and histograms.
#![warn(missing_docs)]

mod account;
mod bot_call;
pub mod event;
mod fleet;
mod handle;
pub mod metrics;
pub mod renewal;
mod room;
mod root;
mod shared;
mod transport;

/// TLS set-up (kept here for callers of `client::tls`; it lives in [`crate::tls`]).
pub use crate::tls;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::token::token04::ClientTokenLimits;
pub use event::{Event, EventKind};
pub use fleet::Fleet;
pub use handle::AccountHandle;
pub use metrics::FleetMetrics;

use crate::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};
pub use crate::session::{
    OnConnectTimeout, OnRoomNotExist, RecoveryPolicy, RetryConfig, RoomEntry,
};
use crate::token::TokenProvider;

/// Errors of the client layer that are not ZIM outcomes (those are
/// [`ZimError`](crate::protocol::ZimError)).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An account with this user id is in the fleet already.
    #[error("account {0} is already in the fleet")]
    DuplicateAccount(String),
    /// The user id breaks the id rules.
    #[error("invalid user id {0:?}: 1 to 32 letters, digits or !#$%&()+-:;<=.>?@[]^_{{}}|~")]
    InvalidUserId(String),
    /// The fleet was shut down.
    #[error("the fleet has stopped")]
    FleetStopped,
}

/// Settings shared by every account of a fleet (one copy, never per account).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// WebSocket URL of the backend, e.g. `ws://127.0.0.1:7400/ws`.
    pub backend_url: String,
    /// Whom a `wss://` backend may be: the public roots and the CA of a `ca_file`
    /// (docs/tls.md). Token endpoints have their own, in their provider.
    pub trust: crate::tls::ClientTrust,
    /// Arbiters (threads) accounts are spread over; 0 = one per core.
    pub workers: usize,
    /// Admission limiter: logins, re-logins and room entries per second, fleet-wide.
    pub admission_per_sec: u32,
    /// Admission limiter burst.
    pub admission_burst: u32,
    /// Token renewals per second, fleet-wide.
    pub renewals_per_sec: u32,
    /// Reconnect policy.
    pub retry: RetryConfig,
    /// Timings (ZIM defaults; tests shorten them).
    pub timings: ClientTimings,
    /// Capacity of each account's outbox (sends waiting while Reconnecting).
    pub outbox_capacity: usize,
    /// Client-side token lifetime checks before a token is sent (6000108 / 6000109).
    pub token_limits: ClientTokenLimits,
    /// Capacity of the fleet's event broadcast; slow subscribers lose the oldest events
    /// (and are told how many).
    pub event_capacity: usize,
}

/// Client timings. Defaults are docs/zim-semantics.md section 6.
#[derive(Debug, Clone)]
pub struct ClientTimings {
    /// Heartbeat interval when the server does not advertise one.
    pub heartbeat_interval: Duration,
    /// Unanswered heartbeat for this long = link lost.
    pub heartbeat_timeout: Duration,
    /// Deadline of a connect attempt (token, socket, upgrade).
    pub connect_timeout: Duration,
    /// Deadline of an ordinary request.
    pub request_timeout: Duration,
    /// Deadline of create/join/enter room (ZIM gives 8 s).
    pub room_request_timeout: Duration,
    /// Deadline of a message send.
    pub send_timeout: Duration,
    /// Renew this long before expiry (onTokenWillExpire).
    pub renew_ahead: Duration,
    /// Without renewal, disconnect this long before expiry.
    pub expire_margin: Duration,
    /// Longest a send waits in the outbox (while not connected) before it fails with
    /// 6000105 unsent.
    pub outbox_wait: Duration,
}

/// A room an account keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSpec {
    /// The room id.
    pub room_id: String,
    /// Its name, when created.
    pub room_name: Option<String>,
    /// Its attributes, when created.
    pub attributes: BTreeMap<String, String>,
    /// How it is entered.
    pub entry: RoomEntry,
    /// How it recovers after T2.
    pub recovery: RecoveryPolicy,
}

/// One account of the fleet.
#[derive(Clone)]
pub struct AccountSpec {
    /// The user id.
    pub user_id: String,
    /// The user name sent at login.
    pub user_name: String,
    /// Defaults to a stable id derived from the user id and the process.
    pub device_id: Option<String>,
    /// Where its tokens come from.
    pub token: Arc<dyn TokenProvider>,
    /// Rooms entered after the first login and kept.
    pub rooms: Vec<RoomSpec>,
}

impl FleetConfig {
    /// ZIM defaults against the backend at `backend_url` (e.g. `ws://127.0.0.1:7400/ws`).
    pub fn new(backend_url: impl Into<String>) -> Self {
        Self {
            backend_url: backend_url.into(),
            ..Self::default()
        }
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            backend_url: "ws://127.0.0.1:7400/ws".into(),
            trust: crate::tls::ClientTrust::public_roots(),
            workers: 0,
            admission_per_sec: 200,
            admission_burst: 50,
            renewals_per_sec: 50,
            retry: RetryConfig::default(),
            timings: ClientTimings::default(),
            outbox_capacity: 64,
            event_capacity: 4096,
            token_limits: ClientTokenLimits::default(),
        }
    }
}

impl Default for ClientTimings {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            heartbeat_interval: s(10),
            heartbeat_timeout: s(5),
            connect_timeout: s(5),
            request_timeout: s(5),
            room_request_timeout: s(8),
            send_timeout: s(10),
            renew_ahead: s(30),
            expire_margin: s(2),
            outbox_wait: s(30),
        }
    }
}

impl RoomSpec {
    /// A room entered with enterRoom (join, or create when missing), default recovery.
    pub fn new(room_id: impl Into<String>) -> Self {
        Self {
            room_id: room_id.into(),
            room_name: None,
            attributes: BTreeMap::new(),
            entry: RoomEntry::Enter,
            recovery: RecoveryPolicy::default(),
        }
    }
}

/// One account as the fleet sees it now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountStatus {
    /// The user id.
    pub user_id: String,
    /// The connection state.
    pub state: ConnectionState,
    /// The event of the last change.
    pub last_event: ConnectionEvent,
    /// Unix ms of the last change.
    pub since_ms: u64,
    /// Why the account ended, when it is terminal.
    pub ended: Option<String>,
    /// Its rooms (none once ended: every room actor is stopped).
    pub rooms: Vec<RoomStatus>,
}

/// One room of an account as it is now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomStatus {
    /// The room id.
    pub room_id: String,
    /// The room state.
    pub state: RoomState,
    /// The event of the last change.
    pub last_event: RoomEvent,
    /// Unix ms of the last change.
    pub since_ms: u64,
}

/// What shutdown achieved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShutdownReport {
    /// Accounts that logged out in time.
    pub logged_out: usize,
    /// Accounts that did not, within the deadline.
    pub timed_out: usize,
}
