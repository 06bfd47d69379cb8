//! Settings helpers every behaviour shares: extra checks, durations, text templates and the
//! room filter.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Settings a behaviour checks beyond their types.
pub(crate) trait CheckSettings {
    /// Ok, or what is wrong (the message names the key).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A duration in settings: "500ms", "10s", "2m".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDuration(pub Duration);

impl<'de> Deserialize<'de> for SettingDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(SettingDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} ({e}); write it like \"500ms\" or \"10s\""
                ))
            })
    }
}

/// Fills `{name}` placeholders of a template; unknown placeholders stay as written.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// True when `rooms` (a behaviour's room filter) lets `room_id` through; empty = every room.
pub(crate) fn room_selected(rooms: &[String], room_id: &str) -> bool {
    rooms.is_empty() || rooms.iter().any(|r| r == room_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_known_names_only() {
        assert_eq!(
            fill(
                "hi {user_name} in {room_id} {other}",
                &[("user_name", "Ann"), ("room_id", "r")]
            ),
            "hi Ann in r {other}"
        );
    }
}
