//! Settings of `zimfleet server`: config/server.toml (embedded as the defaults) < the file
//! given by `--config` < `ZIMFLEET__SERVER__...` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{ConfigError, Layers};
use crate::protocol::Secret;
use crate::tls::{KeyedFile, TlsError};
use crate::token::token04::SECRET_LEN;

/// The shipped defaults; also the documentation of every key.
pub const DEFAULTS_TOML: &str = include_str!("../../config/server.toml");

/// Everything the reference server needs. Secrets are [`Secret`]s: they never print.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address of the listener (WebSocket at /ws, admin at /admin).
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// App id every token must carry.
    pub app_id: u32,
    /// Token04 key: 32 characters.
    pub server_secret: Secret,
    /// Bearer token of the admin API; `None` turns the admin API off.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// What a login from another device does to the user's older session.
    pub device_policy: DevicePolicy,
    /// Heartbeats, timeouts and delays.
    pub timing: Timing,
    /// Size and rate limits.
    pub limits: Limits,
    /// Token lifetime rules at login.
    pub tokens: TokenRules,
    /// `[server.tls]`: TLS on the listener; `None` (the default) serves plain ws:// and
    /// http://.
    #[serde(default)]
    pub tls: Option<ServerTls>,
}

/// `[server.tls]`: the listener terminates TLS with this certificate (docs/tls.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate.
    pub key_file: PathBuf,
    /// A connection that has not finished its TLS handshake in this time is closed.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

fn default_handshake_timeout_ms() -> u64 {
    3000
}

impl ServerTls {
    /// TLS with these files and the default handshake timeout.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            handshake_timeout_ms: default_handshake_timeout_ms(),
        }
    }

    /// Reads both files: the rustls configuration, or an error naming the key and the file.
    pub fn load(&self) -> Result<rustls::ServerConfig, TlsError> {
        crate::tls::server_config(
            KeyedFile {
                key: "server.tls.cert_file",
                path: &self.cert_file,
            },
            KeyedFile {
                key: "server.tls.key_file",
                path: &self.key_file,
            },
        )
    }

    /// [`ServerTls::handshake_timeout_ms`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        ms(self.handshake_timeout_ms)
    }
}

/// ZIM's multi-device policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevicePolicy {
    /// A login from another device kicks the older session (kickout 4, close 4004).
    Single,
    /// Each device keeps its own session; pushes go to all of them.
    Multi,
}

/// Timings of ZIM-SEMANTICS.md section 6 that the server applies, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// User heartbeat interval advertised in the login reply.
    pub heartbeat_interval_ms: u64,
    /// No frame for this long: close 4001, user offline. Greater than the heartbeat interval.
    pub offline_timeout_ms: u64,
    /// Room heartbeat interval advertised in the login reply.
    pub room_heartbeat_interval_ms: u64,
    /// No room_heartbeat for this long: the membership ends. Greater than the room heartbeat
    /// interval.
    pub room_session_timeout_ms: u64,
    /// token_will_expire is pushed this long before the token expires.
    pub token_will_expire_ahead_ms: u64,
    /// Destroy delay of an empty room when room_create/room_enter gives none.
    pub default_destroy_delay_ms: u64,
    /// Largest destroy_delay_secs a client may ask for.
    pub max_destroy_delay_secs: u32,
    /// A resend of the same (sender, client_msg_id) within this window gets the first reply.
    pub idempotency_window_ms: u64,
}

/// Size limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Rooms one user may be a member of at once (6000325 beyond).
    pub rooms_per_user: usize,
    /// Messages each room keeps for room_history.
    pub history_per_room: usize,
    /// Peer messages kept for an offline user until its next login.
    pub offline_messages_per_user: usize,
    /// Largest WebSocket frame, or fragmented message as a whole (larger: close 1009).
    pub max_frame_bytes: usize,
    /// Largest message body in bytes (larger: 6000001).
    pub max_body_bytes: usize,
    /// Frames waiting to be written to one session (full: close 1008).
    pub outbound_queue: usize,
    /// Remembered client_msg_ids per sender for idempotency; 0 turns it off.
    pub idempotency_entries_per_user: usize,
    /// message_send refill rate per session per second (beyond: 6000005); 0 = no limit.
    pub send_rate_per_sec: u32,
    /// message_send bucket size per session.
    pub send_burst: u32,
    /// Members a room may hold (6000304 beyond); 0 = no limit.
    pub members_per_room: usize,
}

/// Token lifetime rules at login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRules {
    /// A login token with less than this left is refused (6000108).
    pub min_lifetime_secs: i64,
    /// A login token expiring further away than this is refused (6000109).
    pub max_lifetime_secs: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    server: ServerSettings,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Timing {
    /// [`Timing::heartbeat_interval_ms`] as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        ms(self.heartbeat_interval_ms)
    }
    /// [`Timing::offline_timeout_ms`] as a duration.
    pub fn offline_timeout(&self) -> Duration {
        ms(self.offline_timeout_ms)
    }
    /// [`Timing::room_session_timeout_ms`] as a duration.
    pub fn room_session_timeout(&self) -> Duration {
        ms(self.room_session_timeout_ms)
    }
    /// [`Timing::idempotency_window_ms`] as a duration.
    pub fn idempotency_window(&self) -> Duration {
        ms(self.idempotency_window_ms)
    }
}

impl ServerSettings {
    /// Loads the layers and checks the values.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, None)
    }

    /// As [`ServerSettings::load`], reading `env` instead of the process environment.
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let loaded: File = crate::config::load(Layers {
            defaults_name: "config/server.toml",
            defaults: DEFAULTS_TOML,
            file,
            sections: &["server"],
            env,
        })?;
        loaded.server.validate()?;
        Ok(loaded.server)
    }

    /// The shipped defaults, without file or environment.
    pub fn defaults() -> Self {
        let loaded: File = crate::config::load(Layers {
            defaults_name: "config/server.toml",
            defaults: DEFAULTS_TOML,
            file: None,
            sections: &["server"],
            env: Some(Default::default()),
        })
        .expect("config/server.toml is valid");
        loaded.server
    }

    /// For tests: 127.0.0.1:0, one worker, admin token `test-admin-token`, millisecond timings
    /// (heartbeat 100 ms, offline timeout 3 s, room session timeout 1 s, token_will_expire 1 s
    /// ahead),
    /// tokens accepted with 1 s to 24 days left.
    pub fn for_tests() -> Self {
        let mut s = Self::defaults();
        s.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        s.workers = 1;
        s.admin_token = Some(Secret::from("test-admin-token"));
        s.timing.heartbeat_interval_ms = 100;
        s.timing.offline_timeout_ms = 3000;
        s.timing.room_heartbeat_interval_ms = 100;
        s.timing.room_session_timeout_ms = 1000;
        s.timing.token_will_expire_ahead_ms = 1000;
        s.tokens.min_lifetime_secs = 1;
        s
    }

    /// Refuses values the server cannot run with; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |detail: String| ConfigError::Invalid {
            source_name: "server settings".into(),
            detail,
        };
        let secret_len = self.server_secret.expose().len();
        if secret_len != SECRET_LEN {
            return Err(bad(format!(
                "server.server_secret must be exactly {SECRET_LEN} characters (got {secret_len})"
            )));
        }
        if self.admin_token.as_ref().is_some_and(Secret::is_empty) {
            return Err(bad(
                "server.admin_token must not be empty (omit it to turn the admin API off)".into(),
            ));
        }
        let t = &self.timing;
        for (name, v) in [
            ("heartbeat_interval_ms", t.heartbeat_interval_ms),
            ("offline_timeout_ms", t.offline_timeout_ms),
            ("room_heartbeat_interval_ms", t.room_heartbeat_interval_ms),
            ("room_session_timeout_ms", t.room_session_timeout_ms),
        ] {
            if v == 0 {
                return Err(bad(format!("server.timing.{name} must be > 0")));
            }
        }
        Self::check_timeouts(t).map_err(bad)?;
        let l = &self.limits;
        for (name, v) in [
            ("rooms_per_user", l.rooms_per_user),
            ("history_per_room", l.history_per_room),
            ("outbound_queue", l.outbound_queue),
            ("max_frame_bytes", l.max_frame_bytes),
            ("max_body_bytes", l.max_body_bytes),
        ] {
            if v == 0 {
                return Err(bad(format!("server.limits.{name} must be > 0")));
            }
        }
        if l.send_rate_per_sec > 0 && l.send_burst == 0 {
            return Err(bad(
                "server.limits.send_burst must be > 0 when send_rate_per_sec is set".into(),
            ));
        }
        if self
            .tls
            .as_ref()
            .is_some_and(|t| t.handshake_timeout_ms == 0)
        {
            return Err(bad("server.tls.handshake_timeout_ms must be > 0".into()));
        }
        if self.tokens.min_lifetime_secs > self.tokens.max_lifetime_secs {
            return Err(bad(
                "server.tokens.min_lifetime_secs must be <= max_lifetime_secs".into(),
            ));
        }
        Ok(())
    }

    /// A timeout at most its heartbeat interval expires between two heartbeats of a client
    /// that keeps the advertised interval: refused, naming both keys.
    fn check_timeouts(t: &Timing) -> Result<(), String> {
        for (timeout, timeout_ms, interval, interval_ms) in [
            (
                "offline_timeout_ms",
                t.offline_timeout_ms,
                "heartbeat_interval_ms",
                t.heartbeat_interval_ms,
            ),
            (
                "room_session_timeout_ms",
                t.room_session_timeout_ms,
                "room_heartbeat_interval_ms",
                t.room_heartbeat_interval_ms,
            ),
        ] {
            if timeout_ms <= interval_ms {
                return Err(format!(
                    "server.timing.{timeout} ({timeout_ms}) must be greater than \
                     server.timing.{interval} ({interval_ms}): it would expire between two \
                     heartbeats"
                ));
            }
        }
        Ok(())
    }

    /// Worker threads to start (0 resolved to the core count).
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_env as env;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = ServerSettings::defaults();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9120");
        assert_eq!(s.timing.heartbeat_interval_ms, 10_000);
        assert_eq!(s.timing.offline_timeout_ms, 35_000);
        assert_eq!(s.timing.room_heartbeat_interval_ms, 15_000);
        assert_eq!(s.timing.room_session_timeout_ms, 35_000);
        assert_eq!(s.timing.token_will_expire_ahead_ms, 30_000);
        assert_eq!(s.timing.default_destroy_delay_ms, 0);
        assert_eq!(s.timing.max_destroy_delay_secs, 10_800);
        assert_eq!(s.timing.idempotency_window_ms, 600_000);
        assert_eq!(s.limits.rooms_per_user, 5);
        assert_eq!(s.limits.history_per_room, 1000);
        assert_eq!(s.limits.max_frame_bytes, 65_536);
        assert_eq!(s.limits.max_body_bytes, 49_152);
        assert_eq!(s.tokens.min_lifetime_secs, 30);
        assert_eq!(s.tokens.max_lifetime_secs, 24 * 24 * 3600);
        assert!(s.admin_token.is_none());
        assert!(s.tls.is_none(), "TLS is off by default");
        assert_eq!(s.device_policy, DevicePolicy::Single);
        s.validate().unwrap();
        ServerSettings::for_tests().validate().unwrap();
    }

    #[test]
    fn env_overrides_and_secrets_do_not_print() {
        let s = ServerSettings::load_with_env(
            None,
            env(&[
                ("ZIMFLEET__SERVER__LISTEN", "127.0.0.1:7000"),
                ("ZIMFLEET__SERVER__ADMIN_TOKEN", "hunter2"),
                ("ZIMFLEET__SERVER__TIMING__OFFLINE_TIMEOUT_MS", "12340"),
                ("ZIMFLEET__LOADTEST__ACCOUNTS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen.port(), 7000);
        assert_eq!(s.timing.offline_timeout_ms, 12340);
        assert_eq!(s.admin_token.as_ref().map(Secret::expose), Some("hunter2"));
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains(s.server_secret.expose()), "{printed}");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let err = ServerSettings::load_with_env(
            None,
            env(&[("ZIMFLEET__SERVER__SERVER_SECRET", "short")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("server.server_secret must be exactly 32"),
            "{err}"
        );
        let err = ServerSettings::load_with_env(
            None,
            env(&[("ZIMFLEET__SERVER__TIMING__NO_SUCH_KEY", "1")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
        let err = ServerSettings::load_with_env(
            None,
            env(&[("ZIMFLEET__SERVER__LIMITS__OUTBOUND_QUEUE", "0")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("server.limits.outbound_queue must be > 0"),
            "{err}"
        );
    }

    #[test]
    fn tls_is_off_by_default_and_set_from_its_section() {
        let s = ServerSettings::load_with_env(
            None,
            env(&[
                ("ZIMFLEET__SERVER__TLS__CERT_FILE", "/etc/z/server.crt"),
                ("ZIMFLEET__SERVER__TLS__KEY_FILE", "/etc/z/server.key"),
            ]),
        )
        .unwrap();
        let tls = s.tls.expect("set");
        assert_eq!(tls.cert_file, Path::new("/etc/z/server.crt"));
        assert_eq!(tls.key_file, Path::new("/etc/z/server.key"));
        assert_eq!(tls.handshake_timeout(), Duration::from_secs(3));
        let err = ServerSettings::load_with_env(
            None,
            env(&[
                ("ZIMFLEET__SERVER__TLS__CERT_FILE", "a"),
                ("ZIMFLEET__SERVER__TLS__KEY_FILE", "b"),
                ("ZIMFLEET__SERVER__TLS__HANDSHAKE_TIMEOUT_MS", "0"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("server.tls.handshake_timeout_ms must be > 0"),
            "{err}"
        );
    }

    #[test]
    fn a_timeout_at_most_its_heartbeat_interval_is_refused_naming_both_keys() {
        let cases = [
            (
                "ZIMFLEET__SERVER__TIMING__OFFLINE_TIMEOUT_MS",
                "10000",
                "server.timing.offline_timeout_ms (10000) must be greater than \
                 server.timing.heartbeat_interval_ms (10000)",
            ),
            (
                "ZIMFLEET__SERVER__TIMING__ROOM_SESSION_TIMEOUT_MS",
                "15000",
                "server.timing.room_session_timeout_ms (15000) must be greater than \
                 server.timing.room_heartbeat_interval_ms (15000)",
            ),
            (
                "ZIMFLEET__SERVER__TIMING__ROOM_SESSION_TIMEOUT_MS",
                "1",
                "server.timing.room_session_timeout_ms (1) must be greater than \
                 server.timing.room_heartbeat_interval_ms (15000)",
            ),
        ];
        for (key, value, expected) in cases {
            let err = ServerSettings::load_with_env(None, env(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(expected), "{key}={value}: {err}");
        }
        let ok = ServerSettings::load_with_env(
            None,
            env(&[("ZIMFLEET__SERVER__TIMING__OFFLINE_TIMEOUT_MS", "10001")]),
        );
        assert!(ok.is_ok(), "one millisecond more is fine");
    }
}
