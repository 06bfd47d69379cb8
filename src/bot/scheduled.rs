//! `scheduled`: posts its messages in turn into its rooms, on a fixed schedule, while each
//! room is Connected (it pauses while a room recovers).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::bot::pacer::Pacer;
use crate::bot::settings::{fill, room_selected, CheckSettings, SettingDuration};
use crate::bot::ticker::RoomTicker;
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{ConnectionState, RoomEvent, RoomState};

/// `[settings]` of a scheduled bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledSettings {
    /// Time between two posts into a room.
    pub every: SettingDuration,
    /// Time from entering a room to the first post (default: `every`).
    #[serde(default)]
    pub first_after: Option<SettingDuration>,
    /// Posted in turn, starting again after the last. `{n}` (post number), `{user_id}` and
    /// `{room_id}` are filled in.
    pub messages: Vec<String>,
    /// Rooms it posts in; empty = every room it is in.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Stop after this many posts per room; 0 = never stop.
    #[serde(default)]
    pub limit: u64,
}

impl CheckSettings for ScheduledSettings {
    fn check(&self) -> Result<(), String> {
        if self.every.0 < Duration::from_millis(100) {
            return Err(
                "every must be at least 100ms (ZIM's send interval per conversation)".into(),
            );
        }
        if self.messages.is_empty() {
            return Err("messages must list at least one text".into());
        }
        Ok(())
    }
}

/// The `scheduled` behaviour.
pub struct Scheduled {
    settings: Arc<ScheduledSettings>,
    ticker: RoomTicker,
}

impl Scheduled {
    /// The behaviour with these settings.
    pub fn new(settings: ScheduledSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            ticker: RoomTicker::default(),
        }
    }

    /// Posts through `pacer` (the registry's, which knows when to go quiet).
    pub(crate) fn paced(mut self, pacer: Pacer) -> Self {
        self.ticker = RoomTicker::new(pacer);
        self
    }

    /// The text of post number `n` (from 1) by `user_id` into `room_id`, if there is one.
    pub fn post(
        settings: &ScheduledSettings,
        user_id: &str,
        room_id: &str,
        n: u64,
    ) -> Option<String> {
        if settings.limit != 0 && n > settings.limit {
            return None;
        }
        let template = &settings.messages[((n - 1) % settings.messages.len() as u64) as usize];
        Some(fill(
            template,
            &[
                ("n", &n.to_string()),
                ("user_id", user_id),
                ("room_id", room_id),
            ],
        ))
    }
}

impl Bot for Scheduled {
    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        _event: RoomEvent,
        _ext: &serde_json::Value,
    ) {
        if !room_selected(&self.settings.rooms, room_id) {
            return;
        }
        let every = self.settings.every.0;
        let first = self.settings.first_after.map_or(every, |d| d.0);
        let settings = Arc::clone(&self.settings);
        self.ticker.on_room_state(
            account,
            room_id,
            state,
            Arc::new(move |tick| if tick == 1 { first } else { every }),
            Arc::new(move |account, room_id, n| {
                Self::post(&settings, account.user_id(), room_id, n)
            }),
        );
    }

    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        _event: crate::protocol::ConnectionEvent,
        _ext: &serde_json::Value,
    ) {
        if state == ConnectionState::Disconnected {
            self.ticker.account_ended(account);
        }
    }

    fn on_attached(&self, account: &AccountHandle, status: &crate::client::AccountStatus) {
        for room in &status.rooms {
            if room.state == RoomState::Connected {
                let ext = serde_json::Value::Null;
                self.on_room_state(account, &room.room_id, room.state, room.last_event, &ext);
            }
        }
    }

    fn on_detached(&self, account: &AccountHandle) {
        self.ticker.account_ended(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cycle_and_stop_at_the_limit() {
        let s = ScheduledSettings {
            every: SettingDuration(Duration::from_secs(1)),
            first_after: None,
            messages: vec!["a{n}".into(), "b {user_id}@{room_id}".into()],
            rooms: Vec::new(),
            limit: 3,
        };
        assert_eq!(Scheduled::post(&s, "u", "r", 1).as_deref(), Some("a1"));
        assert_eq!(Scheduled::post(&s, "u", "r", 2).as_deref(), Some("b u@r"));
        assert_eq!(Scheduled::post(&s, "u", "r", 3).as_deref(), Some("a3"));
        assert_eq!(Scheduled::post(&s, "u", "r", 4), None);
    }
}
