//! A bot wrapped so something else sees the messages its accounts receive (the runner's
//! conversation log, the console's message feed): every callback goes on to the inner bot
//! unchanged, `on_attached` and `on_detached` included.

use std::sync::Arc;

use crate::bot::Bot;
use crate::client::{AccountHandle, AccountStatus};
use crate::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, Member, RoomEvent, RoomState,
};

/// What a [`Tap`] calls with each received message, before the inner bot hears it.
pub type OnMessage = Box<dyn Fn(&AccountHandle, &ChatMessage) + Send + Sync>;

/// A bot that shows each received message to a hook, then forwards every callback.
pub struct Tap {
    inner: Arc<dyn Bot>,
    on_message: OnMessage,
}

impl Tap {
    /// Wraps `inner`; `on_message` sees each message first.
    pub fn wrap(
        inner: Arc<dyn Bot>,
        on_message: impl Fn(&AccountHandle, &ChatMessage) + Send + Sync + 'static,
    ) -> Arc<dyn Bot> {
        Arc::new(Tap {
            inner,
            on_message: Box::new(on_message),
        })
    }
}

impl Bot for Tap {
    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        event: ConnectionEvent,
        ext: &serde_json::Value,
    ) {
        self.inner.on_connection_state(account, state, event, ext);
    }

    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        event: RoomEvent,
        ext: &serde_json::Value,
    ) {
        self.inner
            .on_room_state(account, room_id, state, event, ext);
    }

    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        (self.on_message)(account, message);
        self.inner.on_message(account, message);
    }

    fn on_members_joined(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        self.inner.on_members_joined(account, room_id, members);
    }

    fn on_members_left(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        self.inner.on_members_left(account, room_id, members);
    }

    fn on_token_will_expire(&self, account: &AccountHandle, remaining_secs: u64) {
        self.inner.on_token_will_expire(account, remaining_secs);
    }

    fn on_room_gave_up(&self, account: &AccountHandle, room_id: &str, reason: &str) {
        self.inner.on_room_gave_up(account, room_id, reason);
    }

    fn on_room_incarnation_changed(
        &self,
        account: &AccountHandle,
        room_id: &str,
        old: u64,
        new: u64,
    ) {
        self.inner
            .on_room_incarnation_changed(account, room_id, old, new);
    }

    fn on_attached(&self, account: &AccountHandle, status: &AccountStatus) {
        self.inner.on_attached(account, status);
    }

    fn on_detached(&self, account: &AccountHandle) {
        self.inner.on_detached(account);
    }
}
