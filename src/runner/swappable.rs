//! A bot whose behaviour a hot reload can replace while its accounts keep running.

use std::sync::{Arc, RwLock};

use crate::bot::Bot;
use crate::client::{AccountHandle, AccountStatus};
use crate::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, Member, RoomEvent, RoomState,
};

/// Forwards every callback to the behaviour it holds now.
pub struct Swappable(RwLock<Arc<dyn Bot>>);

impl Swappable {
    /// Holds `bot`.
    pub fn new(bot: Arc<dyn Bot>) -> Self {
        Self(RwLock::new(bot))
    }

    /// The behaviour now.
    pub fn current(&self) -> Arc<dyn Bot> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `bot` in place; the callbacks from now on go to it. Returns the one it replaced.
    pub fn replace(&self, bot: Arc<dyn Bot>) -> Arc<dyn Bot> {
        let mut held = self.0.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *held, bot)
    }
}

impl Bot for Swappable {
    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        event: ConnectionEvent,
        ext: &serde_json::Value,
    ) {
        self.current()
            .on_connection_state(account, state, event, ext)
    }

    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        event: RoomEvent,
        ext: &serde_json::Value,
    ) {
        self.current()
            .on_room_state(account, room_id, state, event, ext)
    }

    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        self.current().on_message(account, message)
    }

    fn on_members_joined(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        self.current().on_members_joined(account, room_id, members)
    }

    fn on_members_left(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        self.current().on_members_left(account, room_id, members)
    }

    fn on_token_will_expire(&self, account: &AccountHandle, remaining_secs: u64) {
        self.current().on_token_will_expire(account, remaining_secs)
    }

    fn on_room_gave_up(&self, account: &AccountHandle, room_id: &str, reason: &str) {
        self.current().on_room_gave_up(account, room_id, reason)
    }

    fn on_room_incarnation_changed(
        &self,
        account: &AccountHandle,
        room_id: &str,
        old: u64,
        new: u64,
    ) {
        self.current()
            .on_room_incarnation_changed(account, room_id, old, new)
    }

    fn on_attached(&self, account: &AccountHandle, status: &AccountStatus) {
        self.current().on_attached(account, status)
    }

    fn on_detached(&self, account: &AccountHandle) {
        self.current().on_detached(account)
    }
}
