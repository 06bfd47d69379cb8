//! `greeter`: welcomes members who join a room it is in.

use serde::Deserialize;

use crate::bot::pacer::Pacer;
use crate::bot::settings::{fill, room_selected, CheckSettings};
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::Member;

/// `[settings]` of a greeter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GreeterSettings {
    /// The welcome; `{user_name}`, `{user_id}` and `{room_id}` are filled in.
    pub message: String,
    /// Rooms it greets in; empty = every room it is in.
    pub rooms: Vec<String>,
    /// User ids it never greets (other bots, say).
    pub ignore: Vec<String>,
}

impl Default for GreeterSettings {
    fn default() -> Self {
        Self {
            message: "Welcome to {room_id}, {user_name}!".into(),
            rooms: Vec::new(),
            ignore: Vec::new(),
        }
    }
}

impl CheckSettings for GreeterSettings {
    fn check(&self) -> Result<(), String> {
        if self.message.trim().is_empty() {
            return Err("message must not be empty".into());
        }
        Ok(())
    }
}

/// The `greeter` behaviour.
pub struct Greeter {
    settings: GreeterSettings,
    pacer: Pacer,
}

impl Greeter {
    /// The behaviour with these settings.
    pub fn new(settings: GreeterSettings) -> Self {
        Self {
            settings,
            pacer: Pacer::default(),
        }
    }

    /// Posts through `pacer` (the registry's, which knows when to go quiet).
    pub(crate) fn paced(mut self, pacer: Pacer) -> Self {
        self.pacer = pacer;
        self
    }

    /// The welcomes `me` posts when `members` join `room_id`.
    pub fn welcomes(&self, me: &str, room_id: &str, members: &[Member]) -> Vec<String> {
        if !room_selected(&self.settings.rooms, room_id) {
            return Vec::new();
        }
        members
            .iter()
            .filter(|m| m.user_id != me && !self.settings.ignore.contains(&m.user_id))
            .map(|m| {
                let name = if m.user_name.is_empty() {
                    &m.user_id
                } else {
                    &m.user_name
                };
                fill(
                    &self.settings.message,
                    &[
                        ("user_name", name),
                        ("user_id", &m.user_id),
                        ("room_id", room_id),
                    ],
                )
            })
            .collect()
    }
}

impl Bot for Greeter {
    fn on_members_joined(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        for text in self.welcomes(account.user_id(), room_id, members) {
            self.pacer.room(account, room_id, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, name: &str) -> Member {
        Member {
            user_id: id.into(),
            user_name: name.into(),
        }
    }

    #[test]
    fn welcomes_each_newcomer_but_not_itself_or_ignored_ones() {
        let greeter = Greeter::new(GreeterSettings {
            ignore: vec!["bot2".into()],
            ..GreeterSettings::default()
        });
        let joined = [
            member("me", "Me"),
            member("ann", "Ann"),
            member("bot2", ""),
            member("bob", ""),
        ];
        assert_eq!(
            greeter.welcomes("me", "lobby", &joined),
            vec![
                "Welcome to lobby, Ann!".to_string(),
                "Welcome to lobby, bob!".to_string()
            ]
        );
    }

    #[test]
    fn other_rooms_are_left_alone() {
        let greeter = Greeter::new(GreeterSettings {
            rooms: vec!["lobby".into()],
            ..GreeterSettings::default()
        });
        assert!(greeter
            .welcomes("me", "attic", &[member("ann", "Ann")])
            .is_empty());
    }
}
