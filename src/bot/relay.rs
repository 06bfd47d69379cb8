//! `relay`: copies the text messages of one room into another (and back, if asked).
//!
//! The relaying account must be in both rooms. It never copies its own messages, so a
//! two-way relay does not loop; give a relay bot one account, or each message is copied once
//! per account.

use serde::Deserialize;

use crate::bot::pacer::Pacer;
use crate::bot::settings::{fill, CheckSettings};
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{ChatMessage, ConvType, MessageType};

/// `[settings]` of a relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySettings {
    /// The room copied from.
    pub from: String,
    /// The room copied to.
    pub to: String,
    /// Also copy `to` back into `from`.
    #[serde(default)]
    pub both_ways: bool,
    /// Put before each copy; `{room_id}` (where it came from) and `{from}` (who wrote it).
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "[{room_id}] {from}: ".into()
}

impl CheckSettings for RelaySettings {
    fn check(&self) -> Result<(), String> {
        if self.from == self.to {
            return Err(format!("from and to are the same room {:?}", self.from));
        }
        if self.from.is_empty() || self.to.is_empty() {
            return Err("from and to must name rooms".into());
        }
        Ok(())
    }
}

/// The `relay` behaviour.
pub struct Relay {
    settings: RelaySettings,
    pacer: Pacer,
}

impl Relay {
    /// The behaviour with these settings.
    pub fn new(settings: RelaySettings) -> Self {
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

    /// Where `message` is copied by `me`, and the copy.
    pub fn copy(&self, me: &str, message: &ChatMessage) -> Option<(String, String)> {
        if message.from == me
            || message.msg_type != MessageType::Text
            || message.conv_type != ConvType::Room
        {
            return None;
        }
        let s = &self.settings;
        let target = if message.conv_id == s.from {
            &s.to
        } else if s.both_ways && message.conv_id == s.to {
            &s.from
        } else {
            return None;
        };
        let prefix = fill(
            &s.prefix,
            &[("room_id", &message.conv_id), ("from", &message.from)],
        );
        Some((target.clone(), format!("{prefix}{}", message.body)))
    }
}

impl Bot for Relay {
    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        if let Some((room_id, text)) = self.copy(account.user_id(), message) {
            self.pacer.room(account, &room_id, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::echo::tests::text;

    #[test]
    fn copies_one_way_unless_asked() {
        let mut relay = Relay::new(RelaySettings {
            from: "a".into(),
            to: "b".into(),
            both_ways: false,
            prefix: default_prefix(),
        });
        assert_eq!(
            relay.copy("me", &text(ConvType::Room, "a", "ann", "hi")),
            Some(("b".into(), "[a] ann: hi".into()))
        );
        assert_eq!(
            relay.copy("me", &text(ConvType::Room, "b", "ann", "hi")),
            None
        );
        assert_eq!(
            relay.copy("me", &text(ConvType::Room, "a", "me", "hi")),
            None
        );
        relay.settings.both_ways = true;
        assert_eq!(
            relay.copy("me", &text(ConvType::Room, "b", "bob", "yo")),
            Some(("a".into(), "[b] bob: yo".into()))
        );
        assert_eq!(
            relay.copy("me", &text(ConvType::Peer, "bob", "bob", "yo")),
            None
        );
    }
}
