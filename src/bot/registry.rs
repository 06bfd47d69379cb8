//! The registry of built-in behaviours: a name and its settings table (the `[settings]` of a
//! bots/*.toml file) -> an `Arc<dyn Bot>`. The helpers the behaviours share live beside it
//! (settings, pacer, ticker), so no behaviour imports the registry back.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::bot::pacer::{Pacer, Quiet};
use crate::bot::settings::CheckSettings;
use crate::bot::Bot;

/// Every built-in behaviour, by the name a bot file uses.
pub const NAMES: &[&str] = &[
    "idle",
    "echo",
    "greeter",
    "keywords",
    "scheduled",
    "relay",
    "chatter",
    "webhook",
];

/// Why a behaviour could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BehaviourError {
    /// No behaviour has this name.
    #[error("unknown behaviour {name:?} (known: {})", NAMES.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The settings table was refused; `detail` names the key.
    #[error("settings of behaviour {behaviour:?}: {detail}")]
    Settings {
        /// The behaviour.
        behaviour: String,
        /// What is wrong.
        detail: String,
    },
}

/// What building a behaviour may read besides its settings.
pub struct BuildContext<'a> {
    /// Turned on when the run shuts down: the behaviour stops posting.
    pub quiet: &'a Quiet,
    /// Environment variables (secrets such as a webhook's bearer token).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Builds the behaviour `name` from its settings table (process environment, never quiet).
pub fn build(name: &str, settings: &toml::Table) -> Result<Arc<dyn Bot>, BehaviourError> {
    let env = |var: &str| std::env::var(var).ok();
    let quiet = Quiet::default();
    build_with(
        name,
        settings,
        &BuildContext {
            quiet: &quiet,
            env: &env,
        },
    )
}

/// Builds the behaviour `name`; it stops posting once `ctx.quiet` is turned on.
pub fn build_with(
    name: &str,
    settings: &toml::Table,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Bot>, BehaviourError> {
    let quiet = ctx.quiet;
    let pacer = || Pacer::new(quiet.clone());
    let bot: Arc<dyn Bot> = match name {
        "idle" => {
            parse::<Empty>(name, settings)?;
            Arc::new(crate::bot::Idle)
        }
        "echo" => Arc::new(crate::bot::echo::Echo::new(parse(name, settings)?).paced(pacer())),
        "greeter" => {
            Arc::new(crate::bot::greeter::Greeter::new(parse(name, settings)?).paced(pacer()))
        }
        "keywords" => {
            Arc::new(crate::bot::keywords::Keywords::new(parse(name, settings)?).paced(pacer()))
        }
        "scheduled" => {
            Arc::new(crate::bot::scheduled::Scheduled::new(parse(name, settings)?).paced(pacer()))
        }
        "relay" => Arc::new(crate::bot::relay::Relay::new(parse(name, settings)?).paced(pacer())),
        "chatter" => {
            Arc::new(crate::bot::chatter::Chatter::new(parse(name, settings)?).paced(pacer()))
        }
        "webhook" => Arc::new(webhook(settings, ctx)?),
        other => {
            return Err(BehaviourError::Unknown {
                name: other.to_string(),
            })
        }
    };
    Ok(bot)
}

/// The webhook bot, with its bearer token read from the environment.
fn webhook(
    settings: &toml::Table,
    ctx: &BuildContext<'_>,
) -> Result<crate::bot::webhook::Webhook, BehaviourError> {
    let parsed: crate::bot::webhook::WebhookSettings = parse("webhook", settings)?;
    let bearer = match &parsed.bearer_env {
        None => None,
        Some(var) => Some(
            (ctx.env)(var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| crate::protocol::Secret::new(v.trim()))
                .ok_or_else(|| BehaviourError::Settings {
                    behaviour: "webhook".into(),
                    detail: format!("bearer_env: environment variable {var} is not set"),
                })?,
        ),
    };
    Ok(crate::bot::webhook::Webhook::new(
        parsed,
        bearer,
        ctx.quiet.clone(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl CheckSettings for Empty {}

fn parse<T: DeserializeOwned + CheckSettings>(
    behaviour: &str,
    settings: &toml::Table,
) -> Result<T, BehaviourError> {
    let err = |detail: String| BehaviourError::Settings {
        behaviour: behaviour.to_string(),
        detail,
    };
    // Through TOML text, so an error can quote the line (and so the key) it is about.
    let text = toml::to_string(settings).map_err(|e| err(e.to_string()))?;
    let value: T = toml::from_str(&text).map_err(|e: toml::de::Error| {
        let message = e.message().trim().replace('\n', " ");
        let line = e
            .span()
            .map(|span| {
                let at = span.start.min(text.len());
                let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                text[start..]
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .filter(|line| !line.is_empty());
        err(match line {
            Some(line) => format!("`{line}`: {message}"),
            None => message,
        })
    })?;
    value.check().map_err(err)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn every_name_builds_with_its_example_settings() {
        let examples = [
            ("idle", ""),
            ("echo", ""),
            ("greeter", ""),
            ("keywords", "[replies]\nhello = \"hi\""),
            ("scheduled", "every = \"10s\"\nmessages = [\"tick\"]"),
            ("relay", "from = \"a\"\nto = \"b\""),
            ("chatter", "rate_per_sec = 2.0"),
            ("webhook", "url = \"http://127.0.0.1:9/zim\""),
        ];
        assert_eq!(examples.len(), NAMES.len());
        for (name, settings) in examples {
            assert!(build(name, &table(settings)).is_ok(), "{name}");
        }
    }

    #[test]
    fn an_unknown_behaviour_lists_the_known_ones() {
        let err = build("parrot", &toml::Table::new()).err().unwrap();
        assert_eq!(
            err.to_string(),
            "unknown behaviour \"parrot\" (known: idle, echo, greeter, keywords, scheduled, relay, chatter, webhook)"
        );
    }

    #[test]
    fn an_unknown_setting_is_refused() {
        let err = build("echo", &table("prefx = \"x\""))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err == "settings of behaviour \"echo\": `prefx = \"x\"`: unknown field `prefx`, expected one of `prefix`, `rooms`, `peer`",
            "{err}"
        );
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let err = build("chatter", &table("rate_per_sec = \"fast\""))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err == "settings of behaviour \"chatter\": `rate_per_sec = \"fast\"`: invalid type: string \"fast\", expected f64",
            "{err}"
        );
    }

    #[test]
    fn rates_outside_the_zim_limit_are_refused() {
        for rate in ["0.0", "8.5", "-1.0"] {
            let table: toml::Table = format!("rate_per_sec = {rate}").parse().unwrap();
            let err = build("chatter", &table).err().unwrap();
            assert!(
                err.to_string().starts_with(
                    "settings of behaviour \"chatter\": rate_per_sec must be above 0 and at most 8"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn the_same_room_twice_is_refused() {
        let table: toml::Table = "from = \"a\"\nto = \"a\"".parse().unwrap();
        let err = build("relay", &table).err().unwrap();
        assert_eq!(
            err.to_string(),
            "settings of behaviour \"relay\": from and to are the same room \"a\""
        );
    }

    #[test]
    fn a_too_short_period_is_refused() {
        let table: toml::Table = "every = \"10ms\"\nmessages = [\"x\"]".parse().unwrap();
        let err = build("scheduled", &table).err().unwrap();
        assert_eq!(
            err.to_string(),
            "settings of behaviour \"scheduled\": every must be at least 100ms (ZIM's send interval per conversation)"
        );
    }
}
