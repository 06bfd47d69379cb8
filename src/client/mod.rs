//! The client actors: a [`Fleet`] of accounts, each an actor that supervises its rooms and
//! recovers the way the ZIM SDK does.
//!
//! PUBLIC API CONTRACT (skeleton: the names and signatures below are what bots, the runner and
//! the load tester build on; bodies are being built).

pub mod event;
pub mod metrics;
pub mod renewal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use event::{Event, EventKind};
pub use metrics::FleetMetrics;

use crate::bot::Bot;
use crate::protocol::{
    ConnectionEvent, ConnectionState, Member, MessageSendReply, MessageType, RoomEvent, RoomInfo,
    RoomState, ZimError,
};
pub use crate::session::{
    OnConnectTimeout, OnRoomNotExist, RecoveryPolicy, RetryConfig, RoomEntry,
};
use crate::token::TokenProvider;

/// Errors of the client layer that are not ZIM outcomes (those are [`ZimError`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("account {0} is already in the fleet")]
    DuplicateAccount(String),
    #[error("invalid user id {0:?}: 1 to 32 letters, digits or !#$%&()+-:;<=.>?@[]^_{{}}|~")]
    InvalidUserId(String),
    #[error("the fleet has stopped")]
    FleetStopped,
}

/// Settings shared by every account of a fleet (one copy, never per account).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// WebSocket URL of the backend, e.g. `ws://127.0.0.1:7400/ws`.
    pub backend_url: String,
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
    /// Capacity of the fleet's event broadcast; slow subscribers lose the oldest events
    /// (and are told how many).
    pub event_capacity: usize,
}

/// Client timings. Defaults are ZIM-SEMANTICS.md section 6.
#[derive(Debug, Clone)]
pub struct ClientTimings {
    /// Heartbeat interval when the server does not advertise one.
    pub heartbeat_interval: Duration,
    /// Unanswered heartbeat for this long = link lost.
    pub heartbeat_timeout: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub room_request_timeout: Duration,
    pub send_timeout: Duration,
    /// Renew this long before expiry (onTokenWillExpire).
    pub renew_ahead: Duration,
    /// Without renewal, disconnect this long before expiry.
    pub expire_margin: Duration,
}

/// A room an account keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSpec {
    pub room_id: String,
    pub room_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub entry: RoomEntry,
    pub recovery: RecoveryPolicy,
}

/// One account of the fleet.
#[derive(Clone)]
pub struct AccountSpec {
    pub user_id: String,
    pub user_name: String,
    /// Defaults to a stable id derived from the user id and the process.
    pub device_id: Option<String>,
    pub token: Arc<dyn TokenProvider>,
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
            workers: 0,
            admission_per_sec: 200,
            admission_burst: 50,
            renewals_per_sec: 50,
            retry: RetryConfig::default(),
            timings: ClientTimings::default(),
            outbox_capacity: 64,
            event_capacity: 4096,
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

/// The fleet: the root of the actor tree. Cheap to clone; every clone is the same fleet.
#[derive(Clone)]
pub struct Fleet {}

/// A handle on one account; what a bot acts through. Cheap to clone, `Send`.
#[derive(Clone)]
pub struct AccountHandle {}

/// One account as the fleet sees it now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountStatus {
    pub user_id: String,
    pub state: ConnectionState,
    pub last_event: ConnectionEvent,
    pub since_ms: u64,
    /// Why the account ended, when it is terminal.
    pub ended: Option<String>,
    pub rooms: Vec<RoomStatus>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomStatus {
    pub room_id: String,
    pub state: RoomState,
    pub last_event: RoomEvent,
    pub since_ms: u64,
}

/// What shutdown achieved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShutdownReport {
    pub logged_out: usize,
    pub timed_out: usize,
}

impl Fleet {
    /// Starts the fleet's root actors. Call inside an actix `System`.
    pub fn start(_config: FleetConfig) -> Fleet {
        todo!()
    }

    /// Adds an account: it logs in (through the admission limiter), enters its rooms and
    /// stays online until a terminal cause or [`AccountHandle::logout`].
    pub fn add_account(
        &self,
        _spec: AccountSpec,
        _bot: Arc<dyn Bot>,
    ) -> Result<AccountHandle, ClientError> {
        todo!()
    }

    /// The handle of an account of this fleet.
    pub fn account(&self, _user_id: &str) -> Option<AccountHandle> {
        todo!()
    }

    /// Every event of every account (bounded broadcast).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        todo!()
    }

    /// Every account's state now.
    pub async fn status(&self) -> Vec<AccountStatus> {
        todo!()
    }

    /// The fleet's counters and histograms.
    pub fn metrics(&self) -> Arc<FleetMetrics> {
        todo!()
    }

    /// Leaves rooms and logs out every account, waiting at most `deadline`.
    pub async fn shutdown(&self, _deadline: Duration) -> ShutdownReport {
        todo!()
    }
}

impl AccountHandle {
    pub fn user_id(&self) -> &str {
        todo!()
    }

    /// Sends a message to a room. While Reconnecting it waits in the outbox; after a terminal
    /// end it fails with 6000121.
    pub async fn send_room_message(
        &self,
        _room_id: &str,
        _msg_type: MessageType,
        _body: String,
    ) -> Result<MessageSendReply, ZimError> {
        todo!()
    }

    /// Sends a message to a user.
    pub async fn send_peer_message(
        &self,
        _to_user: &str,
        _msg_type: MessageType,
        _body: String,
    ) -> Result<MessageSendReply, ZimError> {
        todo!()
    }

    /// Fire and forget: sends a text to a room on the account's own thread; a failure is
    /// logged and counted.
    pub fn post_room_text(&self, _room_id: &str, _body: String) {
        todo!()
    }

    /// Fire and forget: sends a text to a user.
    pub fn post_peer_text(&self, _to_user: &str, _body: String) {
        todo!()
    }

    /// Enters (creates, joins) a room and keeps it.
    pub async fn enter_room(&self, _spec: RoomSpec) -> Result<RoomInfo, ZimError> {
        todo!()
    }

    pub async fn leave_room(&self, _room_id: &str) -> Result<(), ZimError> {
        todo!()
    }

    /// All members of a room (pages through room_members).
    pub async fn room_members(&self, _room_id: &str) -> Result<Vec<Member>, ZimError> {
        todo!()
    }

    /// The account's connection state now.
    pub async fn state(&self) -> Result<AccountStatus, ZimError> {
        todo!()
    }

    /// Chaos: closes this account's socket abruptly; the account sees a lost link and
    /// recovers as usual.
    pub fn chaos_drop(&self) {
        todo!()
    }

    /// Chaos: drops the link and makes every reconnect attempt fail as a network error for
    /// `d` (a real outage as the backend sees it).
    pub fn chaos_offline(&self, _d: Duration) {
        todo!()
    }

    /// Leaves every room and logs out: (Disconnected, Success). Terminal.
    pub async fn logout(&self) -> Result<(), ZimError> {
        todo!()
    }
}
