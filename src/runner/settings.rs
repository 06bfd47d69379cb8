//! The runner's settings: config/default.toml (embedded) < `--config FILE` <
//! `ZIMFLEET__SECTION__KEY`, checked once at start so a bad value never reaches the fleet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::client::{ClientTimings, FleetConfig, RetryConfig};
use crate::config::{ConfigError, Layers};
use crate::protocol::Secret;
use crate::telemetry::LogFormat;

/// The shipped defaults; the documented values are the real ones.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");
/// How the defaults are named in error messages.
pub const DEFAULTS_NAME: &str = "config/default.toml";
/// The sections these settings own (only their environment variables are read).
pub const SECTIONS: &[&str] = &[
    "run", "backend", "fleet", "retry", "timings", "admin", "embedded",
];

/// A duration written the humantime way: "500ms", "10s", "2m".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {text:?} ({e}); write it like \"500ms\" or \"10s\""
                ))
            })
    }
}

/// Every runner setting (config/default.toml documents each one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// `[run]`.
    pub run: RunSection,
    /// `[backend]`.
    pub backend: BackendSection,
    /// `[fleet]`.
    pub fleet: FleetSection,
    /// `[retry]`.
    pub retry: RetrySection,
    /// `[timings]`.
    pub timings: TimingsSection,
    /// `[admin]`.
    pub admin: AdminSection,
    /// `[embedded]`.
    pub embedded: EmbeddedSection,
}

/// The `[run]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// `run.bots_dir` (config/default.toml says what it does).
    pub bots_dir: PathBuf,
    /// `run.events_file` (config/default.toml says what it does).
    pub events_file: String,
    /// `run.events_queue` (config/default.toml says what it does).
    pub events_queue: usize,
    /// `run.log_format` (config/default.toml says what it does).
    pub log_format: LogFormat,
    /// `run.shutdown_deadline` (config/default.toml says what it does).
    pub shutdown_deadline: HumanDuration,
}

/// The `[backend]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// `backend.url` (config/default.toml says what it does).
    pub url: String,
    /// `backend.ca_file` (config/default.toml says what it does).
    #[serde(default)]
    pub ca_file: String,
}

/// The `[fleet]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// `fleet.workers` (config/default.toml says what it does).
    pub workers: usize,
    /// `fleet.admission_per_sec` (config/default.toml says what it does).
    pub admission_per_sec: u32,
    /// `fleet.admission_burst` (config/default.toml says what it does).
    pub admission_burst: u32,
    /// `fleet.renewals_per_sec` (config/default.toml says what it does).
    pub renewals_per_sec: u32,
    /// `fleet.outbox_capacity` (config/default.toml says what it does).
    pub outbox_capacity: usize,
    /// `fleet.event_capacity` (config/default.toml says what it does).
    pub event_capacity: usize,
}

/// The `[retry]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// `retry.first_min` (config/default.toml says what it does).
    pub first_min: HumanDuration,
    /// `retry.first_max` (config/default.toml says what it does).
    pub first_max: HumanDuration,
    /// `retry.steps` (config/default.toml says what it does).
    pub steps: Vec<HumanDuration>,
    /// `retry.jitter` (config/default.toml says what it does).
    pub jitter: f64,
    /// `retry.give_up_after` (config/default.toml says what it does).
    pub give_up_after: HumanDuration,
}

/// The `[timings]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingsSection {
    /// `timings.heartbeat_interval` (config/default.toml says what it does).
    pub heartbeat_interval: HumanDuration,
    /// `timings.heartbeat_timeout` (config/default.toml says what it does).
    pub heartbeat_timeout: HumanDuration,
    /// `timings.connect_timeout` (config/default.toml says what it does).
    pub connect_timeout: HumanDuration,
    /// `timings.request_timeout` (config/default.toml says what it does).
    pub request_timeout: HumanDuration,
    /// `timings.room_request_timeout` (config/default.toml says what it does).
    pub room_request_timeout: HumanDuration,
    /// `timings.send_timeout` (config/default.toml says what it does).
    pub send_timeout: HumanDuration,
    /// `timings.renew_ahead` (config/default.toml says what it does).
    pub renew_ahead: HumanDuration,
    /// `timings.expire_margin` (config/default.toml says what it does).
    pub expire_margin: HumanDuration,
    /// `timings.outbox_wait` (config/default.toml says what it does).
    pub outbox_wait: HumanDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: String,
    pub allow_non_loopback: bool,
    /// Bearer token every admin path asks for; empty = none (docs/admin-api.md).
    #[serde(deserialize_with = "secret")]
    pub token: Secret,
}

/// A secret setting: kept out of Debug prints and log lines.
fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(|s| Secret::new(s.trim()))
}

/// The `[embedded]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSection {
    /// `embedded.listen` (config/default.toml says what it does).
    pub listen: String,
    /// `embedded.workers` (config/default.toml says what it does).
    pub workers: usize,
    /// `embedded.server_config` (config/default.toml says what it does).
    pub server_config: String,
    /// `embedded.token_lifetime` (config/default.toml says what it does).
    pub token_lifetime: HumanDuration,
}

/// Loads and checks the settings. `file` is `--config`; `env` is `None` for the process
/// environment (tests pass a map).
pub fn load(
    file: Option<&Path>,
    env: Option<HashMap<String, String>>,
) -> Result<RunSettings, ConfigError> {
    let env: HashMap<String, String> = env.unwrap_or_else(|| std::env::vars().collect());
    let settings: RunSettings = crate::config::load(Layers {
        defaults_name: DEFAULTS_NAME,
        defaults: DEFAULTS,
        file,
        sections: SECTIONS,
        env: Some(env.clone()),
    })?;
    settings.check().map_err(|detail| ConfigError::Invalid {
        source_name: layer_names(file, &env),
        detail,
    })?;
    Ok(settings)
}

/// The layers as the config loader names them: `config/default.toml < FILE < environment
/// (VARS)`.
fn layer_names(file: Option<&Path>, env: &HashMap<String, String>) -> String {
    let mut names = vec![DEFAULTS_NAME.to_string()];
    if let Some(path) = file {
        names.push(path.display().to_string());
    }
    let mut vars: Vec<&str> = env
        .keys()
        .filter(|k| {
            let mut parts = k.splitn(3, "__");
            parts.next() == Some(crate::config::ENV_PREFIX)
                && parts
                    .next()
                    .is_some_and(|s| SECTIONS.iter().any(|w| s.eq_ignore_ascii_case(w)))
        })
        .map(String::as_str)
        .collect();
    if !vars.is_empty() {
        vars.sort();
        names.push(format!("environment ({})", vars.join(", ")));
    }
    names.join(" < ")
}

impl RunSettings {
    /// Values the types alone cannot refuse. Each message names the key.
    fn check(&self) -> Result<(), String> {
        let positive = |key: &str, n: u64| {
            if n == 0 {
                Err(format!("{key} must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("run.events_queue", self.run.events_queue as u64)?;
        positive(
            "fleet.admission_per_sec",
            self.fleet.admission_per_sec.into(),
        )?;
        positive("fleet.admission_burst", self.fleet.admission_burst.into())?;
        positive("fleet.renewals_per_sec", self.fleet.renewals_per_sec.into())?;
        positive("fleet.outbox_capacity", self.fleet.outbox_capacity as u64)?;
        positive("fleet.event_capacity", self.fleet.event_capacity as u64)?;
        if self.run.shutdown_deadline.0.is_zero() {
            return Err("run.shutdown_deadline must be longer than 0s".into());
        }
        if self.retry.first_min.0 > self.retry.first_max.0 {
            return Err(format!(
                "retry.first_min ({}) must not exceed retry.first_max ({})",
                humantime::format_duration(self.retry.first_min.0),
                humantime::format_duration(self.retry.first_max.0)
            ));
        }
        if self.retry.steps.is_empty() {
            return Err("retry.steps must list at least one delay".into());
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return Err(format!(
                "retry.jitter must be a fraction between 0 and 1, not {}",
                self.retry.jitter
            ));
        }
        let t = &self.timings;
        for (key, d) in [
            ("timings.heartbeat_interval", t.heartbeat_interval),
            ("timings.heartbeat_timeout", t.heartbeat_timeout),
            ("timings.connect_timeout", t.connect_timeout),
            ("timings.request_timeout", t.request_timeout),
            ("timings.room_request_timeout", t.room_request_timeout),
            ("timings.send_timeout", t.send_timeout),
            ("timings.outbox_wait", t.outbox_wait),
        ] {
            if d.0.is_zero() {
                return Err(format!("{key} must be longer than 0s"));
            }
        }
        self.check_timings()?;
        let url = &self.backend.url;
        if !(url.is_empty() || url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(format!(
                "backend.url must start with ws:// or wss://, not {:?}",
                self.backend.url
            ));
        }
        if let Some(addr) = self.admin_listen()? {
            if !addr.ip().is_loopback() && !self.admin.allow_non_loopback {
                return Err(format!(
                    "admin.listen {addr} is not a loopback address; the admin face has no \
                     authentication (set admin.allow_non_loopback = true to allow it)"
                ));
            }
        }
        self.embedded_listen()?;
        if self.embedded.token_lifetime.0 < Duration::from_secs(60)
            || self.embedded.token_lifetime.0 > Duration::from_secs(24 * 24 * 3600)
        {
            return Err(format!(
                "embedded.token_lifetime must be between 1m and 24days, not {}",
                humantime::format_duration(self.embedded.token_lifetime.0)
            ));
        }
        Ok(())
    }

    /// Timings that cannot work together (issue 10 item 3): each message names both keys.
    fn check_timings(&self) -> Result<(), String> {
        let t = &self.timings;
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if t.renew_ahead.0 <= t.expire_margin.0 {
            return Err(format!(
                "timings.renew_ahead ({}) must be longer than timings.expire_margin ({}): \
                 the account would disconnect (TokenExpired) before it renews",
                show(t.renew_ahead.0),
                show(t.expire_margin.0)
            ));
        }
        let lifetime = self.embedded.token_lifetime.0;
        if self.backend.url.is_empty() && lifetime <= t.renew_ahead.0 {
            return Err(format!(
                "embedded.token_lifetime ({}) must be longer than timings.renew_ahead ({}): \
                 every token would be due for renewal as soon as it is issued",
                show(lifetime),
                show(t.renew_ahead.0)
            ));
        }
        let give_up = self.retry.give_up_after.0;
        if !give_up.is_zero() && give_up < self.retry.first_max.0 {
            return Err(format!(
                "retry.give_up_after ({}) must be 0s (never) or at least retry.first_max ({}): \
                 an account could give up before its first retry",
                show(give_up),
                show(self.retry.first_max.0)
            ));
        }
        Ok(())
    }

    /// Where the admin face listens; `None` = off.
    pub fn admin_listen(&self) -> Result<Option<SocketAddr>, String> {
        if self.admin.listen.trim().is_empty() {
            return Ok(None);
        }
        self.admin.listen.trim().parse().map(Some).map_err(|_| {
            format!(
                "admin.listen must be an address like \"127.0.0.1:7480\", not {:?}",
                self.admin.listen
            )
        })
    }

    /// Where the embedded server listens.
    pub fn embedded_listen(&self) -> Result<SocketAddr, String> {
        self.embedded.listen.trim().parse().map_err(|_| {
            format!(
                "embedded.listen must be an address like \"127.0.0.1:0\", not {:?}",
                self.embedded.listen
            )
        })
    }

    /// Whom a wss:// backend and an https:// token endpoint may be: the public roots and
    /// `backend.ca_file` (read here; an unusable file names the key and the file).
    pub fn client_trust(&self) -> Result<crate::tls::ClientTrust, ConfigError> {
        let ca_file = &self.backend.ca_file;
        let path = Some(std::path::Path::new(ca_file)).filter(|_| !ca_file.is_empty());
        crate::tls::ClientTrust::from_setting("backend.ca_file", path).map_err(|e| {
            ConfigError::Invalid {
                source_name: "run settings".into(),
                detail: e.to_string(),
            }
        })
    }

    /// The fleet's settings for `backend_url` (the trust is the public roots: set
    /// [`FleetConfig::trust`] from [`RunSettings::client_trust`]).
    pub fn fleet_config(&self, backend_url: String) -> FleetConfig {
        let t = &self.timings;
        FleetConfig {
            backend_url,
            workers: self.fleet.workers,
            admission_per_sec: self.fleet.admission_per_sec,
            admission_burst: self.fleet.admission_burst,
            renewals_per_sec: self.fleet.renewals_per_sec,
            retry: RetryConfig {
                first: (self.retry.first_min.0, self.retry.first_max.0),
                steps: self.retry.steps.iter().map(|d| d.0).collect(),
                jitter: self.retry.jitter,
                give_up_after: Some(self.retry.give_up_after.0).filter(|d| !d.is_zero()),
            },
            timings: ClientTimings {
                heartbeat_interval: t.heartbeat_interval.0,
                heartbeat_timeout: t.heartbeat_timeout.0,
                connect_timeout: t.connect_timeout.0,
                request_timeout: t.request_timeout.0,
                room_request_timeout: t.room_request_timeout.0,
                send_timeout: t.send_timeout.0,
                renew_ahead: t.renew_ahead.0,
                expire_margin: t.expire_margin.0,
                outbox_wait: t.outbox_wait.0,
            },
            outbox_capacity: self.fleet.outbox_capacity,
            event_capacity: self.fleet.event_capacity,
            ..FleetConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_env as env;

    #[test]
    fn defaults_load_and_match_the_documented_values() {
        let s = load(None, env(&[])).unwrap();
        assert_eq!(s.run.shutdown_deadline.0, Duration::from_secs(5));
        assert_eq!(s.backend.url, "");
        assert_eq!(s.admin_listen().unwrap(), None);
        assert_eq!(s.run.log_format, LogFormat::Human);
        let fleet = s.fleet_config("ws://x/ws".into());
        assert_eq!(
            fleet.retry.first,
            (Duration::from_millis(500), Duration::from_secs(2))
        );
        assert_eq!(fleet.retry.steps.last(), Some(&Duration::from_secs(32)));
        assert_eq!(fleet.retry.give_up_after, None);
        assert_eq!(fleet.timings.room_request_timeout, Duration::from_secs(8));
    }

    #[test]
    fn environment_overrides_a_key() {
        let s = load(
            None,
            env(&[
                ("ZIMFLEET__FLEET__WORKERS", "3"),
                ("ZIMFLEET__RUN__SHUTDOWN_DEADLINE", "750ms"),
                (
                    "ZIMFLEET__SERVER__LISTEN",
                    "ignored: another subcommand's section",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.fleet.workers, 3);
        assert_eq!(s.run.shutdown_deadline.0, Duration::from_millis(750));
    }

    #[test]
    fn a_bad_duration_names_the_key() {
        let err = load(None, env(&[("ZIMFLEET__TIMINGS__SEND_TIMEOUT", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("timings.send_timeout"), "{err}");
        assert!(err.contains("invalid duration \"soon\""), "{err}");
        assert!(err.contains("ZIMFLEET__TIMINGS__SEND_TIMEOUT"), "{err}");
    }

    #[test]
    fn a_zero_rate_is_refused() {
        let err = load(None, env(&[("ZIMFLEET__FLEET__ADMISSION_PER_SEC", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("fleet.admission_per_sec must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn a_public_admin_address_needs_consent() {
        let err = load(None, env(&[("ZIMFLEET__ADMIN__LISTEN", "0.0.0.0:7480")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("admin.listen 0.0.0.0:7480 is not a loopback address"),
            "{err}"
        );
        let ok = load(
            None,
            env(&[
                ("ZIMFLEET__ADMIN__LISTEN", "0.0.0.0:7480"),
                ("ZIMFLEET__ADMIN__ALLOW_NON_LOOPBACK", "true"),
            ]),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn a_bad_value_names_the_layers_it_came_from() {
        let err = load(None, env(&[("ZIMFLEET__RETRY__JITTER", "2")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config/default.toml < environment (ZIMFLEET__RETRY__JITTER): retry.jitter must be a fraction between 0 and 1, not 2"
        );
    }

    #[test]
    fn a_backend_url_must_be_a_websocket_url() {
        let err = load(None, env(&[("ZIMFLEET__BACKEND__URL", "http://x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("backend.url must start with ws:// or wss://, not \"http://x\""),
            "{err}"
        );
    }

    #[test]
    fn impossible_timings_are_refused_naming_both_keys() {
        let rows: [(&[(&str, &str)], &str); 3] = [
            (
                &[("ZIMFLEET__TIMINGS__RENEW_AHEAD", "2s")],
                "timings.renew_ahead (2s) must be longer than timings.expire_margin (2s): the account would disconnect (TokenExpired) before it renews",
            ),
            (
                &[("ZIMFLEET__TIMINGS__RENEW_AHEAD", "2h")],
                "embedded.token_lifetime (1h) must be longer than timings.renew_ahead (2h): every token would be due for renewal as soon as it is issued",
            ),
            (
                &[("ZIMFLEET__RETRY__GIVE_UP_AFTER", "1s")],
                "retry.give_up_after (1s) must be 0s (never) or at least retry.first_max (2s): an account could give up before its first retry",
            ),
        ];
        for (vars, want) in rows {
            let err = load(None, env(vars)).unwrap_err().to_string();
            assert!(err.ends_with(want), "{err}");
        }
        // With an external backend the embedded token lifetime does not matter.
        assert!(load(
            None,
            env(&[
                ("ZIMFLEET__TIMINGS__RENEW_AHEAD", "2h"),
                ("ZIMFLEET__BACKEND__URL", "ws://127.0.0.1:1/ws"),
            ])
        )
        .is_ok());
        assert!(load(None, env(&[("ZIMFLEET__RETRY__GIVE_UP_AFTER", "2s")])).is_ok());
    }

    #[test]
    fn jitter_outside_zero_to_one_is_refused() {
        let err = load(None, env(&[("ZIMFLEET__RETRY__JITTER", "1.5")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("retry.jitter must be a fraction between 0 and 1, not 1.5"),
            "{err}"
        );
    }
}
