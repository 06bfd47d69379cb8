//! `echo`: answers every text message with the same text behind a prefix.
//!
//! It never answers its own messages nor a text that already carries the prefix, so two echo
//! bots in one room do not bounce forever.

use serde::Deserialize;

use crate::bot::pacer::Pacer;
use crate::bot::settings::{fill, room_selected, CheckSettings};
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{ChatMessage, ConvType, MessageType};

/// `[settings]` of an echo bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EchoSettings {
    /// Put before the echoed text; `{from}` is the sender.
    pub prefix: String,
    /// Rooms it answers in; empty = every room it is in.
    pub rooms: Vec<String>,
    /// Whether it answers peer (one-to-one) messages too.
    pub peer: bool,
}

impl Default for EchoSettings {
    fn default() -> Self {
        Self {
            prefix: "echo: ".into(),
            rooms: Vec::new(),
            peer: true,
        }
    }
}

impl CheckSettings for EchoSettings {
    fn check(&self) -> Result<(), String> {
        if self.prefix.is_empty() {
            return Err("prefix must not be empty (it is how echoes are told apart)".into());
        }
        Ok(())
    }
}

/// The `echo` behaviour.
pub struct Echo {
    settings: EchoSettings,
    pacer: Pacer,
}

impl Echo {
    /// The behaviour with these settings.
    pub fn new(settings: EchoSettings) -> Self {
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

    /// The answer to `message` as `me`, if it gets one.
    pub fn reply(&self, me: &str, message: &ChatMessage) -> Option<String> {
        if message.from == me || message.msg_type != MessageType::Text {
            return None;
        }
        let prefix = fill(&self.settings.prefix, &[("from", &message.from)]);
        if message.body.starts_with(&prefix) || message.body.starts_with(&self.settings.prefix) {
            return None;
        }
        match message.conv_type {
            ConvType::Room if room_selected(&self.settings.rooms, &message.conv_id) => {}
            ConvType::Peer if self.settings.peer => {}
            _ => return None,
        }
        Some(format!("{prefix}{}", message.body))
    }
}

impl Bot for Echo {
    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        if let Some(text) = self.reply(account.user_id(), message) {
            match message.conv_type {
                ConvType::Peer => self.pacer.peer(account, &message.from, text),
                _ => self.pacer.room(account, &message.conv_id, text),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn text(conv_type: ConvType, conv_id: &str, from: &str, body: &str) -> ChatMessage {
        ChatMessage {
            message_id: 1,
            conv_type,
            conv_id: conv_id.into(),
            from: from.into(),
            msg_type: MessageType::Text,
            body: body.into(),
            seq: Some(1),
            timestamp_ms: 0,
            client_msg_id: "c1".into(),
            incarnation: None,
        }
    }

    #[test]
    fn echoes_others_but_not_itself_nor_echoes() {
        let echo = Echo::new(EchoSettings::default());
        assert_eq!(
            echo.reply("me", &text(ConvType::Room, "r", "ann", "hi")),
            Some("echo: hi".into())
        );
        assert_eq!(
            echo.reply("me", &text(ConvType::Room, "r", "me", "hi")),
            None
        );
        assert_eq!(
            echo.reply("me", &text(ConvType::Room, "r", "ann", "echo: hi")),
            None
        );
    }

    #[test]
    fn room_filter_and_peer_switch() {
        let echo = Echo::new(EchoSettings {
            prefix: "{from} said: ".into(),
            rooms: vec!["a".into()],
            peer: false,
        });
        assert_eq!(
            echo.reply("me", &text(ConvType::Room, "a", "ann", "x")),
            Some("ann said: x".into())
        );
        assert_eq!(
            echo.reply("me", &text(ConvType::Room, "b", "ann", "x")),
            None
        );
        assert_eq!(
            echo.reply("me", &text(ConvType::Peer, "ann", "ann", "x")),
            None
        );
    }
}
