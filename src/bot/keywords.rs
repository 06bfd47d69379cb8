//! `keywords`: answers a text that contains a keyword with that keyword's reply.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::bot::pacer::Pacer;
use crate::bot::settings::{fill, room_selected, CheckSettings};
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{ChatMessage, ConvType, MessageType};

/// `[settings]` of a keywords bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordsSettings {
    /// keyword -> reply. `{from}` and `{body}` are filled in. When several keywords match,
    /// the longest wins.
    pub replies: BTreeMap<String, String>,
    /// Whether "Hello" matches the keyword "hello".
    #[serde(default)]
    pub case_sensitive: bool,
    /// Rooms it answers in; empty = every room it is in. Peer messages are answered too.
    #[serde(default)]
    pub rooms: Vec<String>,
}

impl CheckSettings for KeywordsSettings {
    fn check(&self) -> Result<(), String> {
        if self.replies.is_empty() {
            return Err("replies must list at least one keyword".into());
        }
        if let Some((k, _)) = self.replies.iter().find(|(k, _)| k.trim().is_empty()) {
            return Err(format!("replies: empty keyword {k:?}"));
        }
        Ok(())
    }
}

/// The `keywords` behaviour.
pub struct Keywords {
    /// (keyword as matched, reply), longest keyword first.
    replies: Vec<(String, String)>,
    case_sensitive: bool,
    rooms: Vec<String>,
    pacer: Pacer,
}

impl Keywords {
    /// The behaviour with these settings.
    pub fn new(settings: KeywordsSettings) -> Self {
        let case_sensitive = settings.case_sensitive;
        let mut replies: Vec<(String, String)> = settings
            .replies
            .into_iter()
            .map(|(k, r)| (if case_sensitive { k } else { k.to_lowercase() }, r))
            .collect();
        replies.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self {
            replies,
            case_sensitive,
            rooms: settings.rooms,
            pacer: Pacer::default(),
        }
    }

    /// Posts through `pacer` (the registry's, which knows when to go quiet).
    pub(crate) fn paced(mut self, pacer: Pacer) -> Self {
        self.pacer = pacer;
        self
    }

    /// The reply `me` gives to `message`, if any.
    pub fn reply(&self, me: &str, message: &ChatMessage) -> Option<String> {
        if message.from == me || message.msg_type != MessageType::Text {
            return None;
        }
        if message.conv_type == ConvType::Room && !room_selected(&self.rooms, &message.conv_id) {
            return None;
        }
        let body = if self.case_sensitive {
            message.body.clone()
        } else {
            message.body.to_lowercase()
        };
        self.replies
            .iter()
            .find(|(keyword, _)| body.contains(keyword.as_str()))
            .map(|(_, reply)| fill(reply, &[("from", &message.from), ("body", &message.body)]))
    }
}

impl Bot for Keywords {
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
mod tests {
    use super::*;
    use crate::bot::echo::tests::text;

    fn bot(case_sensitive: bool) -> Keywords {
        Keywords::new(KeywordsSettings {
            replies: [
                ("time".to_string(), "tea time, {from}".to_string()),
                ("tea time".to_string(), "always".to_string()),
            ]
            .into_iter()
            .collect(),
            case_sensitive,
            rooms: Vec::new(),
        })
    }

    #[test]
    fn the_longest_matching_keyword_wins() {
        let k = bot(false);
        assert_eq!(
            k.reply("me", &text(ConvType::Room, "r", "ann", "Is it TEA TIME?")),
            Some("always".into())
        );
        assert_eq!(
            k.reply("me", &text(ConvType::Room, "r", "ann", "what time is it")),
            Some("tea time, ann".into())
        );
        assert_eq!(
            k.reply("me", &text(ConvType::Room, "r", "ann", "nothing")),
            None
        );
        assert_eq!(
            k.reply("me", &text(ConvType::Room, "r", "me", "time")),
            None
        );
    }

    #[test]
    fn case_sensitive_matching() {
        let k = bot(true);
        assert_eq!(
            k.reply("me", &text(ConvType::Room, "r", "ann", "TIME")),
            None
        );
        assert_eq!(
            k.reply("me", &text(ConvType::Peer, "ann", "ann", "time")),
            Some("tea time, ann".into())
        );
    }
}
