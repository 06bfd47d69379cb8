//! Bots: the [`Bot`] trait a bot implements, and the built-in behaviours.
//!
//! Handlers run on the account's own thread, behind `catch_unwind`: a panic is logged and
//! counted, never fatal. They must not block; to act, use the [`AccountHandle`] (its
//! `post_*` methods are fire-and-forget, its `async` methods can go in `actix::spawn`).

use crate::client::{AccountHandle, AccountStatus};
use crate::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, Member, RoomEvent, RoomState,
};

/// What a bot reacts to. Every method has an empty default.
pub trait Bot: Send + Sync + 'static {
    /// onConnectionStateChanged.
    fn on_connection_state(
        &self,
        _account: &AccountHandle,
        _state: ConnectionState,
        _event: ConnectionEvent,
        _ext: &serde_json::Value,
    ) {
    }

    /// onRoomStateChanged.
    fn on_room_state(
        &self,
        _account: &AccountHandle,
        _room_id: &str,
        _state: RoomState,
        _event: RoomEvent,
        _ext: &serde_json::Value,
    ) {
    }

    /// A message (room or peer), each exactly once, room messages in seq order.
    fn on_message(&self, _account: &AccountHandle, _message: &ChatMessage) {}

    /// Members joined a room the account is in.
    fn on_members_joined(&self, _account: &AccountHandle, _room_id: &str, _members: &[Member]) {}

    /// Members left a room the account is in.
    fn on_members_left(&self, _account: &AccountHandle, _room_id: &str, _members: &[Member]) {}

    /// onTokenWillExpire (the fleet renews by itself; this is for information).
    fn on_token_will_expire(&self, _account: &AccountHandle, _remaining_secs: u64) {}

    /// A room stopped recovering and stays out.
    fn on_room_gave_up(&self, _account: &AccountHandle, _room_id: &str, _reason: &str) {}

    /// A room came back as another incarnation (the server created it again: a restart, or
    /// destroyed and entered again). Its seqs start over from `new`'s first message; what
    /// the bot heard of `old` stays heard and no message of it follows.
    fn on_room_incarnation_changed(
        &self,
        _account: &AccountHandle,
        _room_id: &str,
        _old: u64,
        _new: u64,
    ) {
    }

    /// The bot was put on an account that already runs (a hot reload changed its file's
    /// behaviour or settings): `status` is where the account and its rooms stand now, so a
    /// timer-driven bot can start its loops without waiting for a state change.
    fn on_attached(&self, _account: &AccountHandle, _status: &AccountStatus) {}

    /// The bot was taken off an account that keeps running (replaced by a hot reload): it
    /// stops its loops and queues for that account. No event of the account follows.
    fn on_detached(&self, _account: &AccountHandle) {}
}

/// A bot that does nothing (accounts that only stay online).
pub struct Idle;
impl Bot for Idle {}

pub mod chatter;
pub mod echo;
pub mod greeter;
pub mod keywords;
pub mod pacer;
pub mod registry;
pub mod relay;
pub mod scheduled;
pub mod settings;
pub mod tap;
pub mod ticker;
pub mod webhook;
