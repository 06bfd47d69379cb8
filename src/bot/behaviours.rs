//! The registry of built-in behaviours: a name and its settings table (the `[settings]` of a
//! bots/*.toml file) -> an `Arc<dyn Bot>`. Also the small helpers the behaviours share:
//! text templates and the per-room ticker that timer-driven behaviours post from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::RoomState;

/// Every built-in behaviour, by the name a bot file uses.
pub const NAMES: &[&str] = &[
    "idle",
    "echo",
    "greeter",
    "keywords",
    "scheduled",
    "relay",
    "chatter",
];

/// Why a behaviour could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BehaviourError {
    #[error("unknown behaviour {name:?} (known: {})", NAMES.join(", "))]
    Unknown { name: String },
    #[error("settings of behaviour {behaviour:?}: {detail}")]
    Settings { behaviour: String, detail: String },
}

/// Builds the behaviour `name` from its settings table.
pub fn build(name: &str, settings: &toml::Table) -> Result<Arc<dyn Bot>, BehaviourError> {
    build_with(name, settings, &Quiet::default())
}

/// Builds the behaviour `name`; it stops posting once `quiet` is turned on.
pub fn build_with(
    name: &str,
    settings: &toml::Table,
    quiet: &Quiet,
) -> Result<Arc<dyn Bot>, BehaviourError> {
    let pacer = || Pacer::new(quiet.clone());
    let bot: Arc<dyn Bot> = match name {
        "idle" => {
            parse::<Empty>(name, settings)?;
            Arc::new(crate::bot::Idle)
        }
        "echo" => Arc::new(super::echo::Echo::new(parse(name, settings)?).paced(pacer())),
        "greeter" => Arc::new(super::greeter::Greeter::new(parse(name, settings)?).paced(pacer())),
        "keywords" => {
            Arc::new(super::keywords::Keywords::new(parse(name, settings)?).paced(pacer()))
        }
        "scheduled" => {
            Arc::new(super::scheduled::Scheduled::new(parse(name, settings)?).paced(pacer()))
        }
        "relay" => Arc::new(super::relay::Relay::new(parse(name, settings)?).paced(pacer())),
        "chatter" => Arc::new(super::chatter::Chatter::new(parse(name, settings)?).paced(pacer())),
        other => {
            return Err(BehaviourError::Unknown {
                name: other.to_string(),
            })
        }
    };
    Ok(bot)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// Settings a behaviour checks beyond their types.
pub(crate) trait CheckSettings {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

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

/// Where a per-room loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TickerRoom {
    /// The room is Connected: the loop acts.
    Active,
    /// The room is recovering (Connecting): the loop waits.
    Paused,
    /// The room is Disconnected: the loop ends at its next tick.
    Out,
}

#[derive(Debug)]
struct TickerEntry {
    room: TickerRoom,
    running: bool,
    ticks: u64,
}

/// One loop per (account, room) that acts while the room is Connected, pauses while it
/// recovers and ends when it is out. Timer-driven behaviours (scheduled, chatter) use it.
#[derive(Debug, Default)]
pub(crate) struct RoomTicker {
    rooms: Arc<Mutex<HashMap<(String, String), TickerEntry>>>,
    pacer: Arc<Pacer>,
}

/// A switch that makes the built-in behaviours stop posting (the runner turns it on when it
/// starts shutting down, so no post races the logout). Clones share the switch.
#[derive(Debug, Clone, Default)]
pub struct Quiet(Arc<std::sync::atomic::AtomicBool>);

impl Quiet {
    pub fn turn_on(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    pub fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a loop does at each tick: the tick number (from 1) -> the text to post; `None` ends
/// the loop (it is started again, with its count kept, when the room comes back).
pub(crate) type TickText = Arc<dyn Fn(&AccountHandle, &str, u64) -> Option<String> + Send + Sync>;

impl RoomTicker {
    /// A ticker that posts through `pacer`.
    pub(crate) fn new(pacer: Pacer) -> Self {
        Self {
            rooms: Arc::default(),
            pacer: Arc::new(pacer),
        }
    }

    /// Follows a room's state; starts its loop (on the account's thread) when it first
    /// becomes Connected. `delays(tick)` says how long to wait before tick number `tick`.
    pub(crate) fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        delays: Arc<dyn Fn(u64) -> Duration + Send + Sync>,
        text: TickText,
    ) {
        let key = (account.user_id().to_string(), room_id.to_string());
        let room = match state {
            RoomState::Connected => TickerRoom::Active,
            RoomState::Connecting => TickerRoom::Paused,
            _ => TickerRoom::Out,
        };
        let start = {
            let mut rooms = lock(&self.rooms);
            let entry = rooms.entry(key.clone()).or_insert(TickerEntry {
                room,
                running: false,
                ticks: 0,
            });
            entry.room = room;
            let start = room == TickerRoom::Active && !entry.running;
            if start {
                entry.running = true;
            }
            start
        };
        if start {
            let rooms = Arc::clone(&self.rooms);
            let pacer = Arc::clone(&self.pacer);
            let account = account.clone();
            actix::spawn(async move {
                loop {
                    let next = lock(&rooms).get(&key).map_or(1, |e| e.ticks + 1);
                    tokio::time::sleep(delays(next)).await;
                    let act = {
                        let mut rooms = lock(&rooms);
                        let Some(entry) = rooms.get_mut(&key) else {
                            return;
                        };
                        match entry.room {
                            _ if pacer.quiet.is_on() => {
                                entry.running = false;
                                return;
                            }
                            TickerRoom::Out => {
                                entry.running = false;
                                return;
                            }
                            TickerRoom::Paused => false,
                            TickerRoom::Active => {
                                entry.ticks += 1;
                                true
                            }
                        }
                    };
                    if act {
                        match text(&account, &key.1, next) {
                            Some(body) => pacer.room(&account, &key.1, body),
                            // Nothing more to post (a limit was reached): the loop ends.
                            None => {
                                if let Some(entry) = lock(&rooms).get_mut(&key) {
                                    entry.running = false;
                                }
                                return;
                            }
                        }
                    }
                }
            });
        }
    }

    /// The account ended: every loop of it stops at its next tick.
    pub(crate) fn account_ended(&self, account: &AccountHandle) {
        let mut rooms = lock(&self.rooms);
        for ((user, _), entry) in rooms.iter_mut() {
            if user == account.user_id() {
                entry.room = TickerRoom::Out;
            }
        }
    }
}

/// Least time between two sends of one account into one conversation. ZIM refuses sends
/// closer than 100 ms (6000004); the margin absorbs scheduling jitter on the way out.
pub const SEND_SPACING: Duration = Duration::from_millis(120);
/// Sends one conversation may have waiting; beyond it a bot's send is dropped and logged.
const MAX_WAITING: usize = 32;
/// Above this many tracked conversations, idle ones are forgotten.
const PACER_TRACKED: usize = 4096;

/// (user id, is peer, conversation id); the pacer keeps (earliest time of the next send,
/// sends waiting) for each.
type PacedConversation = (String, bool, String);

/// Spaces a bot's sends per (account, conversation) by [`SEND_SPACING`], so a burst of
/// replies (two greetings at once, a relay of a busy room) goes out instead of being refused.
/// Bounded: at most [`MAX_WAITING`] sends wait per conversation.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    next: Arc<Mutex<HashMap<PacedConversation, (Instant, usize)>>>,
    quiet: Quiet,
}

impl Pacer {
    pub(crate) fn new(quiet: Quiet) -> Self {
        Self {
            next: Arc::default(),
            quiet,
        }
    }

    /// Posts a text into a room, now or as soon as the spacing allows.
    pub(crate) fn room(&self, account: &AccountHandle, room_id: &str, text: String) {
        self.post(account, false, room_id, text);
    }

    /// Posts a text to a user, now or as soon as the spacing allows.
    pub(crate) fn peer(&self, account: &AccountHandle, user_id: &str, text: String) {
        self.post(account, true, user_id, text);
    }

    fn post(&self, account: &AccountHandle, peer: bool, conv: &str, text: String) {
        if self.quiet.is_on() {
            return;
        }
        let key = (account.user_id().to_string(), peer, conv.to_string());
        let Some(delay) = self.reserve(&key, Instant::now()) else {
            tracing::warn!(account = %key.0, conversation = %conv, "bot send dropped: {MAX_WAITING} sends already wait for this conversation");
            return;
        };
        if delay.is_zero() {
            send(account, peer, conv, text);
            return;
        }
        let next = Arc::clone(&self.next);
        let quiet = self.quiet.clone();
        let account = account.clone();
        actix::spawn(async move {
            tokio::time::sleep(delay).await;
            if !quiet.is_on() {
                send(&account, key.1, &key.2, text);
            }
            if let Some(entry) = lock(&next).get_mut(&key) {
                entry.1 = entry.1.saturating_sub(1);
            }
        });
    }

    /// Reserves the next send slot of `key`: how long to wait for it, or None when too many
    /// already wait.
    fn reserve(&self, key: &PacedConversation, now: Instant) -> Option<Duration> {
        let mut next = lock(&self.next);
        if next.len() > PACER_TRACKED {
            next.retain(|_, (at, waiting)| *at > now || *waiting > 0);
        }
        let entry = next.entry(key.clone()).or_insert((now, 0));
        let at = entry.0.max(now);
        let delay = at - now;
        if !delay.is_zero() {
            if entry.1 >= MAX_WAITING {
                return None;
            }
            entry.1 += 1;
        }
        entry.0 = at + SEND_SPACING;
        Some(delay)
    }
}

fn send(account: &AccountHandle, peer: bool, conv: &str, text: String) {
    if peer {
        account.post_peer_text(conv, text);
    } else {
        account.post_room_text(conv, text);
    }
}

/// A poisoned lock only means a handler panicked mid-update; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            "unknown behaviour \"parrot\" (known: idle, echo, greeter, keywords, scheduled, relay, chatter)"
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
    fn the_pacer_spaces_sends_per_conversation_and_bounds_the_wait() {
        let pacer = Pacer::default();
        let now = Instant::now();
        let room = ("u".to_string(), false, "r".to_string());
        let other = ("u".to_string(), false, "r2".to_string());
        assert_eq!(pacer.reserve(&room, now), Some(Duration::ZERO));
        assert_eq!(pacer.reserve(&room, now), Some(SEND_SPACING));
        assert_eq!(pacer.reserve(&room, now), Some(SEND_SPACING * 2));
        assert_eq!(pacer.reserve(&other, now), Some(Duration::ZERO));
        for _ in 2..MAX_WAITING {
            assert!(pacer.reserve(&room, now).is_some());
        }
        assert_eq!(pacer.reserve(&room, now), None);
        // Long after, the conversation sends at once again.
        let later = now + SEND_SPACING * (MAX_WAITING as u32 + 2);
        assert_eq!(pacer.reserve(&room, later), Some(Duration::ZERO));
    }

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
