//! A room as its account keeps it: the room machine of src/session plus what the actor needs
//! around it (generation, message seq for catch-up, restart budget, the caller waiting for
//! the entry). Rooms live inside their account actor, which is their supervisor: a restart is
//! a fresh session (new generation, fresh machine) called with the policy's entry.

use std::sync::Arc;
use std::time::Instant;

use actix::SpawnHandle;
use tokio::sync::oneshot;

use super::RoomSpec;
use crate::protocol::{ChatMessage, RoomEvent, RoomInfo, ZimError};
use crate::session::{RestartBudget, RoomMachine};

/// Most room messages held back while a room catches up on its history.
pub(crate) const CATCH_UP_BUFFER: usize = 512;

pub(crate) struct Room {
    pub id: Arc<str>,
    pub spec: Arc<RoomSpec>,
    pub machine: RoomMachine,
    /// Bumped on every restart: replies and timers of an older session are dropped.
    pub generation: u32,
    /// Unix ms of the last state change.
    pub since_ms: u64,
    /// Highest seq delivered to the bot (0: none yet).
    pub last_seq: u64,
    /// With `last_seq == 0`, history older than this (server ms) predates our session.
    pub baseline_ms: u64,
    /// A room_history fetch is in flight; live messages wait in `held`.
    pub catching_up: bool,
    pub held: Vec<ChatMessage>,
    /// An entry request is in flight (or waits for admission).
    pub entry_in_flight: bool,
    pub heartbeat_in_flight: bool,
    pub budget: RestartBudget,
    pub restart_timer: Option<SpawnHandle>,
    /// What the running restart recovers from (ConnectTimeout / RoomNotExist).
    pub restart_cause: Option<RoomEvent>,
    pub interrupted_at: Option<Instant>,
    pub entry_started: Option<Instant>,
    pub info: Option<RoomInfo>,
    /// The enter_room caller, answered at (Connected, Success) or when the entry fails.
    pub waiter: Option<oneshot::Sender<Result<RoomInfo, ZimError>>>,
}

impl Room {
    pub fn new(spec: Arc<RoomSpec>, now_ms: u64) -> Self {
        Self {
            id: spec.room_id.as_str().into(),
            spec,
            machine: RoomMachine::default(),
            generation: 0,
            since_ms: now_ms,
            last_seq: 0,
            baseline_ms: 0,
            catching_up: false,
            held: Vec::new(),
            entry_in_flight: false,
            heartbeat_in_flight: false,
            budget: RestartBudget::default(),
            restart_timer: None,
            restart_cause: None,
            interrupted_at: None,
            entry_started: None,
            info: None,
            waiter: None,
        }
    }
}
