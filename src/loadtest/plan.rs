//! The plan of a load test: config/loadtest.toml (embedded defaults) < `--config` file <
//! `ZIMFLEET__LOADTEST__...` < flags. Validated once; everything after trusts it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::shard::Shard;
use super::stages::{Schedule, StageChaos, StagePlan};
use super::LoadtestError;
use crate::client::RoomEntry;
use crate::protocol::{is_valid_id, MAX_BODY_BYTES};

/// The shipped defaults (also the documentation of every key).
pub const DEFAULTS: &str = include_str!("../../config/loadtest.toml");

/// Smallest body: the send time and sender travel in it.
pub const MIN_BODY_BYTES: usize = 40;

/// `config/loadtest.toml` as a whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    loadtest: Plan,
}

/// Every setting of a load test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// `backend` (config/loadtest.toml says what it does).
    pub backend: String,
    /// `ca_file` (config/loadtest.toml says what it does); absent in older reports.
    #[serde(default)]
    pub ca_file: String,
    /// `workers` (config/loadtest.toml says what it does).
    pub workers: usize,
    /// `accounts` (config/loadtest.toml says what it does).
    pub accounts: u64,
    /// `user_pattern` (config/loadtest.toml says what it does).
    pub user_pattern: String,
    /// `first_index` (config/loadtest.toml says what it does).
    pub first_index: u64,
    /// `arrival_rate` (config/loadtest.toml says what it does).
    pub arrival_rate: u32,
    /// `admission_per_sec` (config/loadtest.toml says what it does).
    pub admission_per_sec: u32,
    /// `admission_burst` (config/loadtest.toml says what it does).
    pub admission_burst: u32,
    #[serde(with = "human_duration")]
    /// `duration` (config/loadtest.toml says what it does).
    pub duration: Duration,
    #[serde(with = "human_duration")]
    /// `ramp_timeout` (config/loadtest.toml says what it does).
    pub ramp_timeout: Duration,
    #[serde(with = "human_duration")]
    /// `drain` (config/loadtest.toml says what it does).
    pub drain: Duration,
    /// The drain waits at most this long for every account to be back online.
    #[serde(with = "human_duration")]
    pub recovery_timeout: Duration,
    #[serde(with = "human_duration")]
    /// `shutdown_timeout` (config/loadtest.toml says what it does).
    pub shutdown_timeout: Duration,
    /// `event_capacity` (config/loadtest.toml says what it does).
    pub event_capacity: usize,
    /// `outbox_capacity` (config/loadtest.toml says what it does).
    pub outbox_capacity: usize,
    #[serde(with = "human_duration")]
    /// `memory_at` (config/loadtest.toml says what it does).
    pub memory_at: Duration,
    /// `progress` (config/loadtest.toml says what it does).
    pub progress: bool,
    /// `token` (config/loadtest.toml says what it does).
    pub token: TokenPlan,
    /// `rooms` (config/loadtest.toml says what it does).
    pub rooms: RoomsPlan,
    /// `messages` (config/loadtest.toml says what it does).
    pub messages: MessagesPlan,
    /// `heartbeat` (config/loadtest.toml says what it does).
    pub heartbeat: HeartbeatPlan,
    /// `chaos` (config/loadtest.toml says what it does).
    pub chaos: ChaosPlan,
    /// `thresholds` (config/loadtest.toml says what it does).
    pub thresholds: Thresholds,
    /// `[[loadtest.stages]]`: the shape of the load; empty = the ramp + hold shorthand.
    #[serde(default)]
    pub stages: Vec<StagePlan>,
    /// The slice of the accounts this process runs (flag `--shard i/n`; not in the file).
    #[serde(default)]
    pub shard: Shard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// Where accounts get their tokens (`token.source`).
pub enum TokenSource {
    /// Minted with the embedded server's own secret.
    Embedded,
    /// Minted here as Token04 (secret from `token.secret_env`).
    Generated,
    /// Fetched from `token.url`.
    Http,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[loadtest.token]`: where accounts get their tokens.
pub struct TokenPlan {
    /// `token.source` (config/loadtest.toml says what it does).
    pub source: TokenSource,
    /// `token.app_id` (config/loadtest.toml says what it does).
    pub app_id: u32,
    /// `token.secret_env` (config/loadtest.toml says what it does).
    pub secret_env: String,
    /// `token.url` (config/loadtest.toml says what it does).
    pub url: String,
    /// `token.bearer_env` (config/loadtest.toml says what it does).
    pub bearer_env: String,
    /// `token.ttl_secs` (config/loadtest.toml says what it does).
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// How accounts spread over rooms (`rooms.spread`).
pub enum Spread {
    /// Blocks of `members` consecutive accounts per room.
    Fill,
    /// Accounts dealt over the rooms in turn: `round_robin`, or `round-robin` as
    /// `--spread` spells it (src/loadtest/cli.rs).
    #[serde(alias = "round-robin")]
    RoundRobin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[loadtest.rooms]`: how accounts spread over rooms.
pub struct RoomsPlan {
    /// `rooms.per_account` (config/loadtest.toml says what it does).
    pub per_account: u32,
    /// `rooms.members` (config/loadtest.toml says what it does).
    pub members: u64,
    /// `rooms.spread` (config/loadtest.toml says what it does).
    pub spread: Spread,
    /// `rooms.id_pattern` (config/loadtest.toml says what it does).
    pub id_pattern: String,
    /// `rooms.entry` (config/loadtest.toml says what it does).
    pub entry: RoomEntry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[loadtest.messages]`: what the accounts send.
pub struct MessagesPlan {
    /// `messages.per_account_per_sec` (config/loadtest.toml says what it does).
    pub per_account_per_sec: f64,
    /// `messages.body_bytes` (config/loadtest.toml says what it does).
    pub body_bytes: usize,
    #[serde(with = "human_duration")]
    /// `messages.start_after` (config/loadtest.toml says what it does).
    pub start_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[loadtest.heartbeat]`: heartbeat intervals.
pub struct HeartbeatPlan {
    #[serde(with = "human_duration")]
    /// `heartbeat.interval` (config/loadtest.toml says what it does).
    pub interval: Duration,
    #[serde(with = "human_duration")]
    /// `heartbeat.room_interval` (config/loadtest.toml says what it does).
    pub room_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[loadtest.chaos]`: faults during the hold (or each stage without its own).
pub struct ChaosPlan {
    /// `chaos.drop_share` (config/loadtest.toml says what it does).
    pub drop_share: f64,
    #[serde(with = "human_duration")]
    /// `chaos.drop_every` (config/loadtest.toml says what it does).
    pub drop_every: Duration,
    /// `chaos.offline_share` (config/loadtest.toml says what it does).
    pub offline_share: f64,
    #[serde(with = "human_duration")]
    /// `chaos.offline_every` (config/loadtest.toml says what it does).
    pub offline_every: Duration,
    #[serde(with = "human_duration")]
    /// `chaos.offline_for` (config/loadtest.toml says what it does).
    pub offline_for: Duration,
    #[serde(with = "human_duration")]
    /// `chaos.server_drop_at` (config/loadtest.toml says what it does).
    pub server_drop_at: Duration,
    /// `chaos.admin_url` (config/loadtest.toml says what it does).
    pub admin_url: String,
    /// `chaos.admin_token_env` (config/loadtest.toml says what it does).
    pub admin_token_env: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[loadtest.thresholds]`: pass/fail.
pub struct Thresholds {
    /// `thresholds.min_connected_share` (config/loadtest.toml says what it does).
    pub min_connected_share: f64,
    /// `thresholds.max_missing` (config/loadtest.toml says what it does).
    pub max_missing: u64,
    /// `thresholds.max_duplicated` (config/loadtest.toml says what it does).
    pub max_duplicated: u64,
    /// `thresholds.max_send_errors` (config/loadtest.toml says what it does).
    pub max_send_errors: u64,
    #[serde(with = "human_duration")]
    /// `thresholds.max_login_p99` (config/loadtest.toml says what it does).
    pub max_login_p99: Duration,
    #[serde(with = "human_duration")]
    /// `thresholds.max_message_p99` (config/loadtest.toml says what it does).
    pub max_message_p99: Duration,
}

impl Plan {
    /// The shipped defaults.
    pub fn defaults() -> Plan {
        Self::load_with(None, Some(HashMap::new())).expect("shipped config/loadtest.toml is valid")
    }

    /// Defaults < `file` < the process environment. Not yet validated (flags come next).
    pub fn load(file: Option<&Path>) -> Result<Plan, LoadtestError> {
        Self::load_with(file, None)
    }

    /// As [`Plan::load`] with an explicit environment (tests).
    pub fn load_with(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Plan, LoadtestError> {
        let parsed: PlanFile = crate::config::load(crate::config::Layers {
            defaults_name: "config/loadtest.toml",
            defaults: DEFAULTS,
            file,
            sections: &["loadtest"],
            env,
        })?;
        Ok(parsed.loadtest)
    }

    /// Refuses a plan that cannot run, naming the key.
    pub fn validate(&self) -> Result<(), LoadtestError> {
        let bad = |m: String| Err(LoadtestError::InvalidPlan(m));
        if self.accounts == 0 {
            return bad("accounts must be at least 1".into());
        }
        if !self.user_pattern.contains("{i}") {
            return bad(format!(
                "user_pattern {:?} must contain {{i}} (the account index)",
                self.user_pattern
            ));
        }
        let last = self.first_index.saturating_add(self.accounts - 1);
        for i in [self.first_index, last] {
            let id = self.user_id(i);
            if !is_valid_id(&id) {
                return bad(format!(
                    "user_pattern {:?} gives {id:?}, not a valid ZIM user id (1 to 32 letters, digits or !#$%&()+-:;<=.>?@[]^_{{}}|~)",
                    self.user_pattern
                ));
            }
        }
        if self.arrival_rate == 0 {
            return bad("arrival_rate must be at least 1 per second".into());
        }
        if self.admission_per_sec == 0 || self.admission_burst == 0 {
            return bad("admission_per_sec and admission_burst must be at least 1".into());
        }
        if self.event_capacity == 0 || self.outbox_capacity == 0 {
            return bad("event_capacity and outbox_capacity must be at least 1".into());
        }
        self.validate_rooms()
    }

    fn validate_rooms(&self) -> Result<(), LoadtestError> {
        let bad = |m: String| Err(LoadtestError::InvalidPlan(m));
        if self.rooms.per_account > 5 {
            return bad(format!(
                "rooms.per_account is {}; the backend allows 5 rooms per user",
                self.rooms.per_account
            ));
        }
        if self.rooms.per_account > 0 {
            if self.rooms.members == 0 {
                return bad("rooms.members must be at least 1".into());
            }
            if !self.rooms.id_pattern.contains("{r}") {
                return bad(format!(
                    "rooms.id_pattern {:?} must contain {{r}} (the room index)",
                    self.rooms.id_pattern
                ));
            }
            let id = self.room_id(self.room_count().saturating_sub(1));
            if !is_valid_id(&id) {
                return bad(format!(
                    "rooms.id_pattern {:?} gives {id:?}, not a valid ZIM room id",
                    self.rooms.id_pattern
                ));
            }
        }
        self.validate_messages()
    }

    fn validate_messages(&self) -> Result<(), LoadtestError> {
        let bad = |m: String| Err(LoadtestError::InvalidPlan(m));
        let m = &self.messages;
        if !(m.per_account_per_sec.is_finite() && m.per_account_per_sec >= 0.0) {
            return bad("messages.per_account_per_sec must be 0 or more".into());
        }
        if m.per_account_per_sec > 10.0 {
            return bad(format!(
                "messages.per_account_per_sec is {}; the backend allows one message per 100 ms per conversation",
                m.per_account_per_sec
            ));
        }
        if m.per_account_per_sec > 0.0 && self.rooms.per_account == 0 {
            return bad("messages need rooms: rooms.per_account is 0".into());
        }
        if !(MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&m.body_bytes) {
            return bad(format!(
                "messages.body_bytes is {}; it must be {MIN_BODY_BYTES} to {MAX_BODY_BYTES}",
                m.body_bytes
            ));
        }
        self.validate_timeline()
            .map_err(LoadtestError::InvalidPlan)?;
        self.validate_backend()
    }

    fn validate_backend(&self) -> Result<(), LoadtestError> {
        let bad = |m: String| Err(LoadtestError::InvalidPlan(m));
        if self.heartbeat.interval.is_zero() || self.heartbeat.room_interval.is_zero() {
            return bad("heartbeat intervals must be more than 0s".into());
        }
        if !(0.0..=1.0).contains(&self.thresholds.min_connected_share) {
            return bad("thresholds.min_connected_share must be 0.0 to 1.0".into());
        }
        let ws = ["ws://", "wss://"];
        if !self.backend.is_empty() && !ws.iter().any(|p| self.backend.starts_with(p)) {
            return bad(format!(
                "backend {:?} must be a ws:// or wss:// URL (or empty for the embedded server)",
                self.backend
            ));
        }
        match self.token.source {
            TokenSource::Embedded if !self.backend.is_empty() => {
                return bad(format!(
                    "token.source \"embedded\" needs the embedded server, but backend is {:?}: use \"generated\" or \"http\"",
                    self.backend
                ))
            }
            TokenSource::Http if self.token.url.is_empty() => {
                return bad("token.source \"http\" needs token.url".into())
            }
            _ => {}
        }
        Ok(())
    }

    /// Timings and stages that cannot work, refused naming the keys.
    fn validate_timeline(&self) -> Result<(), String> {
        let h = |d: Duration| humantime::format_duration(d).to_string();
        let chaos = StageChaos::from(&self.chaos);
        if self.stages.is_empty() {
            chaos.check("chaos", self.duration, "duration")?;
            let ramp = self.schedule().stages[0].duration;
            if self.ramp_timeout < ramp {
                return Err(format!(
                    "ramp_timeout ({}) is shorter than the ramp itself (accounts {} / arrival_rate {}{} = {}): it could never finish",
                    h(self.ramp_timeout),
                    self.accounts,
                    self.arrival_rate,
                    match self.shard.count { 0 | 1 => String::new(), n => format!(" x {n} shards") },
                    h(Duration::from_millis(ramp.as_millis() as u64)),
                ));
            }
            let m = &self.messages;
            if m.per_account_per_sec > 0.0 && m.start_after >= self.duration {
                return Err(format!(
                    "messages.start_after ({}) is not shorter than duration ({}): no message would be sent",
                    h(m.start_after),
                    h(self.duration)
                ));
            }
            return Ok(());
        }
        self.validate_stages()
    }

    fn validate_stages(&self) -> Result<(), String> {
        for (i, s) in self.stages.iter().enumerate() {
            if s.duration.is_zero() {
                return Err(format!("stages[{i}].duration must be more than 0s"));
            }
            if let Some(r) = s.msg_rate {
                if !(r.is_finite() && (0.0..=10.0).contains(&r)) {
                    return Err(format!(
                        "stages[{i}].msg_rate is {r}; it must be 0 to 10 (the backend allows one message per 100 ms per conversation)"
                    ));
                }
                if r > 0.0 && self.rooms.per_account == 0 {
                    return Err(format!(
                        "stages[{i}].msg_rate needs rooms: rooms.per_account is 0"
                    ));
                }
            }
            if let Some(c) = &s.chaos {
                c.check(
                    &format!("stages[{i}].chaos"),
                    s.duration,
                    &format!("stages[{i}].duration"),
                )?;
            }
        }
        let schedule = self.schedule();
        let (peak, arrivals) = schedule.peak_and_arrivals();
        if peak == 0 {
            return Err(
                "stages: no stage has accounts online (give the first stage accounts = N)".into(),
            );
        }
        if arrivals > self.accounts {
            return Err(format!(
                "the stages need {arrivals} accounts (every arrival is a new account: accounts that left are not used again), but accounts is {}",
                self.accounts
            ));
        }
        let longest = self
            .stages
            .iter()
            .map(|s| s.duration)
            .max()
            .unwrap_or_default();
        StageChaos::from(&self.chaos).check("chaos", longest, "the longest stage's duration")
    }

    /// The stages this plan runs (the shorthand when it has none). With shards, the
    /// shorthand's `arrival_rate` is each shard's, as it always was.
    pub fn schedule(&self) -> Schedule {
        let chaos = StageChaos::from(&self.chaos);
        if self.stages.is_empty() {
            let rate = self.arrival_rate.saturating_mul(self.shard.count.max(1));
            Schedule::shorthand(
                self.accounts,
                rate,
                self.duration,
                self.messages.per_account_per_sec,
                &chaos,
            )
        } else {
            Schedule::from_stages(&self.stages, self.messages.per_account_per_sec, &chaos)
        }
    }

    /// Whether the plan runs the reference server in this process.
    pub fn embedded(&self) -> bool {
        self.backend.is_empty()
    }

    /// The user id of account index `i`.
    pub fn user_id(&self, i: u64) -> String {
        self.user_pattern.replace("{i}", &i.to_string())
    }

    /// The room id of room index `r`.
    pub fn room_id(&self, r: u64) -> String {
        self.rooms.id_pattern.replace("{r}", &r.to_string())
    }

    /// Rooms in the whole plan.
    pub fn room_count(&self) -> u64 {
        let slots = self.accounts * u64::from(self.rooms.per_account);
        slots.div_ceil(self.rooms.members.max(1))
    }

    /// The room indexes of account index `i` (relative to the plan, not to first_index).
    /// Every shard computes the same answer, so a room's members may sit in several shards.
    pub fn rooms_of(&self, i: u64) -> Vec<u64> {
        let rooms = self.room_count();
        let k = u64::from(self.rooms.per_account);
        if rooms == 0 || k == 0 {
            return Vec::new();
        }
        let mut out: Vec<u64> = (0..k)
            .map(|j| match self.rooms.spread {
                // Block of `members` consecutive accounts per room; the j-th room of an
                // account is a further block, so an account never gets the same room twice
                // unless there are fewer rooms than per_account.
                Spread::Fill => (i / self.rooms.members + j * rooms.div_ceil(k)) % rooms,
                Spread::RoundRobin => (i * k + j) % rooms,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Account indexes (absolute: first_index based) this shard runs, in order.
    pub fn shard_indexes(&self) -> Vec<u64> {
        (self.first_index..self.first_index + self.accounts)
            .filter(|&i| self.shard.owns(&self.user_id(i)))
            .collect()
    }

    /// The admin HTTP base URL for server-side faults.
    pub fn admin_base(&self, embedded_http: Option<&str>) -> Option<String> {
        if !self.chaos.admin_url.is_empty() {
            return Some(self.chaos.admin_url.trim_end_matches('/').to_string());
        }
        if let Some(http) = embedded_http {
            return Some(http.trim_end_matches('/').to_string());
        }
        let rest = self
            .backend
            .strip_prefix("ws://")
            .map(|r| ("http://", r))
            .or_else(|| self.backend.strip_prefix("wss://").map(|r| ("https://", r)))?;
        let host = rest.1.split('/').next().unwrap_or_default();
        Some(format!("{}{}", rest.0, host))
    }
}

/// Durations as humantime strings ("500ms", "60s") in TOML, env and JSON.
pub mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a duration as a humantime string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads a humantime string ("500ms", "60s").
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({e}); write e.g. \"500ms\", \"60s\", \"2m\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_env as env;

    #[test]
    fn shipped_defaults_load_and_validate() {
        let plan = Plan::defaults();
        plan.validate().unwrap();
        assert_eq!(plan.accounts, 100);
        assert_eq!(plan.duration, Duration::from_secs(60));
        assert_eq!(plan.token.source, TokenSource::Embedded);
        assert_eq!(plan.rooms.entry, RoomEntry::Enter);
    }

    #[test]
    fn env_overrides_nested_keys() {
        let plan = Plan::load_with(
            None,
            env(&[
                ("ZIMFLEET__LOADTEST__ACCOUNTS", "7"),
                ("ZIMFLEET__LOADTEST__ROOMS__MEMBERS", "3"),
                ("ZIMFLEET__LOADTEST__CHAOS__OFFLINE_FOR", "250ms"),
            ]),
        )
        .unwrap();
        assert_eq!(plan.accounts, 7);
        assert_eq!(plan.rooms.members, 3);
        assert_eq!(plan.chaos.offline_for, Duration::from_millis(250));
    }

    #[test]
    fn spread_key_takes_the_flag_spelling_too() {
        for spelling in ["round_robin", "round-robin"] {
            let plan = Plan::load_with(
                None,
                env(&[("ZIMFLEET__LOADTEST__ROOMS__SPREAD", spelling)]),
            )
            .unwrap();
            assert_eq!(plan.rooms.spread, Spread::RoundRobin);
        }
        let err = Plan::load_with(
            None,
            env(&[("ZIMFLEET__LOADTEST__ROOMS__SPREAD", "diagonal")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "config/loadtest.toml < environment (ZIMFLEET__LOADTEST__ROOMS__SPREAD): enum Spread \
             does not have variant constructor diagonal for key `loadtest.rooms.spread`"
        );
    }

    #[test]
    fn bad_duration_names_key_and_example() {
        let err = Plan::load_with(None, env(&[("ZIMFLEET__LOADTEST__DURATION", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("duration"), "{err}");
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
    }

    #[test]
    fn validation_refusals_name_the_key() {
        let mut p = Plan::defaults();
        p.user_pattern = "user".into();
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "invalid plan: user_pattern \"user\" must contain {i} (the account index)"
        );
        let mut p = Plan::defaults();
        p.rooms.per_account = 6;
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "invalid plan: rooms.per_account is 6; the backend allows 5 rooms per user"
        );
        let mut p = Plan::defaults();
        p.backend = "ws://127.0.0.1:1/ws".into();
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("token.source \"embedded\" needs the embedded server"));
        let mut p = Plan::defaults();
        p.messages.body_bytes = 10;
        assert_eq!(
            p.validate().unwrap_err().to_string(),
            "invalid plan: messages.body_bytes is 10; it must be 40 to 49152"
        );
        let mut p = Plan::defaults();
        p.user_pattern = "a-very-long-user-name-prefix-xyz-{i}".into();
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not a valid ZIM user id"));
    }

    #[test]
    fn fill_spread_makes_blocks_and_round_robin_interleaves() {
        let mut p = Plan::defaults();
        p.accounts = 10;
        p.rooms.members = 4;
        assert_eq!(p.room_count(), 3);
        let fill: Vec<_> = (0..10).map(|i| p.rooms_of(i)[0]).collect();
        assert_eq!(fill, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
        p.rooms.spread = Spread::RoundRobin;
        let rr: Vec<_> = (0..10).map(|i| p.rooms_of(i)[0]).collect();
        assert_eq!(rr, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        p.rooms.per_account = 2;
        p.rooms.spread = Spread::Fill;
        assert_eq!(p.room_count(), 5);
        assert_eq!(p.rooms_of(0), vec![0, 3]);
        assert_eq!(p.rooms_of(9), vec![0, 2]);
    }

    #[test]
    fn admin_base_derives_from_backend() {
        let mut p = Plan::defaults();
        p.backend = "ws://10.0.0.5:7400/ws".into();
        assert_eq!(p.admin_base(None).as_deref(), Some("http://10.0.0.5:7400"));
        p.chaos.admin_url = "http://admin:1/".into();
        assert_eq!(p.admin_base(None).as_deref(), Some("http://admin:1"));
    }
}
