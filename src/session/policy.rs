//! The recovery policy of a room (docs/zim-semantics.md section 3): how it is entered, and
//! what it calls after T2 says ConnectTimeout or RoomNotExist. Plain data; the room machine
//! (room.rs) applies it.

use std::time::Duration;

use crate::protocol::RoomEvent;

/// How a room is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomEntry {
    /// createRoom: the room must not exist.
    Create,
    /// joinRoom: the room must exist.
    Join,
    /// enterRoom: join, or create when missing.
    Enter,
}

/// What a room does after T2 says ConnectTimeout (membership expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConnectTimeout {
    /// Call joinRoom.
    Join,
    /// Call enterRoom.
    Enter,
    /// Stay out (the bot hears `on_room_gave_up`).
    Leave,
}

/// What a room does after T2 says RoomNotExist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRoomNotExist {
    /// Call createRoom.
    Create,
    /// Call enterRoom.
    Enter,
    /// Stay out (the bot hears `on_room_gave_up`).
    Leave,
}

/// Room recovery policy (defaults: ConnectTimeout -> join, RoomNotExist -> enter; at most 5
/// restarts in 60 s, then the room stays out and the bot is told).
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryPolicy {
    /// After ConnectTimeout.
    pub on_connect_timeout: OnConnectTimeout,
    /// After RoomNotExist.
    pub on_room_not_exist: OnRoomNotExist,
    /// Most restarts inside `restart_window`.
    pub max_restarts: u32,
    /// The window of the restart budget.
    pub restart_window: Duration,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self {
            on_connect_timeout: OnConnectTimeout::Join,
            on_room_not_exist: OnRoomNotExist::Enter,
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
        }
    }
}

impl RecoveryPolicy {
    /// The restart the policy calls for after `event`, or None to stay out.
    pub fn recovery_for(&self, event: RoomEvent) -> Option<RoomEntry> {
        match event {
            RoomEvent::ConnectTimeout | RoomEvent::NetworkDisconnected => {
                match self.on_connect_timeout {
                    OnConnectTimeout::Join => Some(RoomEntry::Join),
                    OnConnectTimeout::Enter => Some(RoomEntry::Enter),
                    OnConnectTimeout::Leave => None,
                }
            }
            RoomEvent::RoomNotExist => match self.on_room_not_exist {
                OnRoomNotExist::Create => Some(RoomEntry::Create),
                OnRoomNotExist::Enter => Some(RoomEntry::Enter),
                OnRoomNotExist::Leave => None,
            },
            _ => None,
        }
    }
}
