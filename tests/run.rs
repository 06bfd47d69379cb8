//! `zimfleet run` as a user runs it: the built binary, a bots directory, the embedded
//! reference server, the events file, the admin face and signals. Config errors each check
//! the exact message and exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zimfleet-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `zimfleet run` with no ZIMFLEET__ variable of the test's own environment, in `dir`.
fn zimfleet(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ZIMFLEET__") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG");
    cmd.arg("run");
    cmd
}

/// Runs a command that must be refused at start; returns its stderr.
fn refused(cmd: &mut Command) -> String {
    let Output { status, stderr, .. } = cmd.output().unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    stderr
}

const ECHO_BOT: &str = "behaviour = \"echo\"\n[[accounts]]\nuser_id = \"e1\"\n";

/// A bots directory holding `files`.
fn bots_dir(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let bots = dir.join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    for (name, text) in files {
        std::fs::write(bots.join(name), text).unwrap();
    }
    bots
}

#[test]
fn a_missing_config_file_is_refused() {
    let dir = temp_dir("missing-config");
    let file = dir.join("nope.toml");
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert_eq!(
        stderr,
        format!("zimfleet run: config file {} not found\n", file.display())
    );
}

#[test]
fn a_wrong_type_in_the_config_file_names_the_key_and_the_file() {
    let dir = temp_dir("wrong-type");
    let file = dir.join("my.toml");
    std::fs::write(&file, "[fleet]\nworkers = \"many\"\n").unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert!(
        stderr.starts_with(&format!(
            "zimfleet run: config/default.toml < {}: invalid type: string \"many\", expected an integer for key `fleet.workers` in ",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("my.toml"), "{stderr}");
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused() {
    let dir = temp_dir("unknown-key");
    let file = dir.join("my.toml");
    std::fs::write(&file, "[fleet]\nwrokers = 1\n").unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert!(
        stderr.starts_with(&format!(
            "zimfleet run: config/default.toml < {}: unknown field `wrokers`, expected one of `workers`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("for key `fleet`"), "{stderr}");
}

#[test]
fn a_wrong_type_from_the_environment_names_the_variable() {
    let dir = temp_dir("env-type");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__FLEET__WORKERS", "abc"));
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__FLEET__WORKERS): invalid type: string \"abc\", expected an integer for key `fleet.workers` in the environment\n"
    );
}

#[test]
fn a_bad_value_is_refused_with_its_key() {
    let dir = temp_dir("bad-value");
    let file = dir.join("my.toml");
    std::fs::write(&file, "[run]\nshutdown_deadline = \"0s\"\n").unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: config/default.toml < {}: run.shutdown_deadline must be longer than 0s\n",
            file.display()
        )
    );
}

#[test]
fn a_bad_duration_is_refused_with_its_key() {
    let dir = temp_dir("bad-duration");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__TIMINGS__SEND_TIMEOUT", "soon"));
    assert!(
        stderr.starts_with(
            "zimfleet run: config/default.toml < environment (ZIMFLEET__TIMINGS__SEND_TIMEOUT): invalid duration \"soon\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("for key `timings.send_timeout`"),
        "{stderr}"
    );
}

#[test]
fn impossible_timings_are_refused_naming_both_keys() {
    let dir = temp_dir("timings");
    let file = dir.join("my.toml");
    std::fs::write(
        &file,
        "[timings]\nrenew_ahead = \"2s\"\nexpire_margin = \"5s\"\n",
    )
    .unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: config/default.toml < {}: timings.renew_ahead (2s) must be longer than timings.expire_margin (5s): the account would disconnect (TokenExpired) before it renews\n",
            file.display()
        )
    );
    let stderr = refused(
        zimfleet(&dir)
            .env("ZIMFLEET__EMBEDDED__TOKEN_LIFETIME", "1m")
            .env("ZIMFLEET__TIMINGS__RENEW_AHEAD", "90s"),
    );
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__EMBEDDED__TOKEN_LIFETIME, ZIMFLEET__TIMINGS__RENEW_AHEAD): embedded.token_lifetime (1m) must be longer than timings.renew_ahead (1m 30s): every token would be due for renewal as soon as it is issued\n"
    );
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__RETRY__GIVE_UP_AFTER", "1s"));
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__RETRY__GIVE_UP_AFTER): retry.give_up_after (1s) must be 0s (never) or at least retry.first_max (2s): an account could give up before its first retry\n"
    );
}

#[test]
fn a_public_admin_address_is_refused() {
    let dir = temp_dir("admin-public");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__ADMIN__LISTEN", "10.1.2.3:7480"));
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__ADMIN__LISTEN): admin.listen 10.1.2.3:7480 is not a loopback address; the admin face has no authentication (set admin.allow_non_loopback = true to allow it)\n"
    );
}

#[test]
fn an_unknown_behaviour_names_the_file_and_the_key() {
    let dir = temp_dir("unknown-behaviour");
    let bots = bots_dir(
        &dir,
        &[(
            "parrot.toml",
            "behaviour = \"parrot\"\n[[accounts]]\nuser_id = \"p\"\n",
        )],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: behaviour: unknown behaviour \"parrot\" (known: idle, echo, greeter, keywords, scheduled, relay, chatter, webhook)\n",
            bots.join("parrot.toml").display()
        )
    );
}

#[test]
fn a_bad_behaviour_setting_names_the_file() {
    let dir = temp_dir("bad-setting");
    let bots = bots_dir(
        &dir,
        &[("c.toml", "behaviour = \"chatter\"\n[[accounts]]\nuser_id = \"c\"\n[settings]\nrate_per_sec = 50.0\n")],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: settings of behaviour \"chatter\": rate_per_sec must be above 0 and at most 8, not 50\n",
            bots.join("c.toml").display()
        )
    );
}

#[test]
fn a_wrong_type_in_a_behaviour_setting_shows_its_key() {
    let dir = temp_dir("bad-setting-type");
    let bots = bots_dir(
        &dir,
        &[("c.toml", "behaviour = \"chatter\"\n[[accounts]]\nuser_id = \"c\"\n[settings]\nrate_per_sec = \"fast\"\n")],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: settings of behaviour \"chatter\": `rate_per_sec = \"fast\"`: invalid type: string \"fast\", expected f64\n",
            bots.join("c.toml").display()
        )
    );
}

#[test]
fn a_wrong_type_in_a_bot_file_shows_its_line() {
    let dir = temp_dir("bot-type");
    let bots = bots_dir(
        &dir,
        &[(
            "e.toml",
            "behaviour = \"echo\"\n[[accounts]]\nuser_id = 7\n",
        )],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert!(
        stderr.starts_with(&format!(
            "zimfleet run: {}: line 3 (`user_id = 7`): invalid type: integer `7`, expected a string",
            bots.join("e.toml").display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_bots_directory_is_refused() {
    let dir = temp_dir("no-bots");
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(dir.join("nowhere")));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: bots directory {0} not found (looked in {0}); point at another with --bots DIR or ZIMFLEET__RUN__BOTS_DIR\n",
            dir.join("nowhere").display()
        )
    );
}

#[test]
fn run_outside_the_checkout_names_where_it_looked_for_bots() {
    // The default `bots` is relative: the message gives the absolute path it tried.
    let dir = temp_dir("outside");
    let stderr = refused(&mut zimfleet(&dir));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: bots directory bots not found (looked in {}); point at another with --bots DIR or ZIMFLEET__RUN__BOTS_DIR\n",
            dir.join("bots").display()
        )
    );
}

#[test]
fn the_embedded_token_source_is_refused_with_an_external_backend() {
    let dir = temp_dir("embedded-token");
    let bots = bots_dir(&dir, &[("e.toml", ECHO_BOT)]);
    let stderr = refused(
        zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .env("ZIMFLEET__BACKEND__URL", "ws://127.0.0.1:9/ws"),
    );
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: token: the \"embedded\" token source needs the embedded backend, but backend.url is set; give a static, generated or http token source\n",
            bots.join("e.toml").display()
        )
    );
}

#[test]
fn an_unwritable_events_file_is_refused() {
    let dir = temp_dir("events-path");
    let bots = bots_dir(&dir, &[("e.toml", ECHO_BOT)]);
    let path = dir.join("missing-dir").join("events.jsonl");
    let stderr = refused(
        zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .arg("--events")
            .arg(&path),
    );
    assert!(
        stderr.ends_with(&format!(
            "zimfleet run: events file {}: No such file or directory (os error 2)\n",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn an_unknown_log_format_is_refused() {
    let dir = temp_dir("log-format");
    let stderr = refused(zimfleet(&dir).args(["--log-format", "xml"]));
    assert!(
        stderr.contains("invalid value 'xml' for '--log-format <FORMAT>'"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// End to end: the built binary on the embedded server (or on a server this test starts).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use zimfleet::client::{Event, EventKind};
use zimfleet::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};

/// A `zimfleet run` child with its stderr going to a file.
struct Running {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    events: PathBuf,
}

impl Running {
    fn start(dir: &Path, mut cmd: Command) -> Running {
        let log = dir.join("run.log");
        let events = dir.join("events.jsonl");
        let child = cmd
            .arg("--events")
            .arg(&events)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Running {
            child,
            dir: dir.to_path_buf(),
            log,
            events,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        text.lines()
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Polls `check` every 25 ms until it answers or `deadline` passes.
    fn wait_for<T>(
        &mut self,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut(&mut Self) -> Option<T>,
    ) -> T {
        let end = Instant::now() + deadline;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "zimfleet run exited ({status}) while waiting for {what}; log:\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("timed out waiting for {what}; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The admin face's address, from its log line.
    fn admin_addr(&mut self) -> String {
        self.wait_for("the admin face", Duration::from_secs(20), |r| {
            let log = r.log_text();
            let at = log.find("admin face listening on http://")?;
            let rest = &log[at + "admin face listening on http://".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        })
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits (at most `deadline`) for the exit; its code and how long it took.
    fn wait_exit(&mut self, deadline: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > deadline {
                let _ = self.child.kill();
                panic!(
                    "zimfleet run did not exit within {deadline:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// A plain HTTP/1.1 GET; the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
    }
    let mut body = String::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            body.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
        }
    } else {
        reader.read_to_string(&mut body).unwrap();
    }
    (status, body)
}

/// The value of a sample line in Prometheus text.
fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

fn room_pairs(events: &[Event], account: &str, room: &str) -> Vec<(i32, i32)> {
    events
        .iter()
        .filter(|e| e.account == account)
        .filter_map(|e| match &e.kind {
            EventKind::Room {
                room_id,
                state,
                event,
                ..
            } if room_id == room => Some((state.as_i32(), event.as_i32())),
            _ => None,
        })
        .collect()
}

fn connection_pairs(events: &[Event], account: &str) -> Vec<(i32, i32)> {
    events
        .iter()
        .filter(|e| e.account == account)
        .filter_map(|e| match &e.kind {
            EventKind::Connection { state, event, .. } => Some((state.as_i32(), event.as_i32())),
            _ => None,
        })
        .collect()
}

const CONNECTED: (i32, i32) = (RoomState::Connected.as_i32(), RoomEvent::Success.as_i32());

/// Bots that talk: a greeter, a keyword answerer, a scheduled visitor, an echo and a chatter.
fn talking_bots(dir: &Path) -> PathBuf {
    bots_dir(
        dir,
        &[
            ("a-host.toml", "behaviour = \"greeter\"\n[[accounts]]\nuser_id = \"host\"\nuser_name = \"Host\"\n[[rooms]]\nroom_id = \"hall\"\n[settings]\nmessage = \"Welcome, {user_name}!\"\n"),
            ("b-clock.toml", "behaviour = \"keywords\"\n[[accounts]]\nuser_id = \"clock\"\n[[rooms]]\nroom_id = \"hall\"\n[settings.replies]\ntime = \"it is time, {from}\"\n"),
            ("c-ann.toml", "behaviour = \"scheduled\"\n[[accounts]]\nuser_id = \"ann\"\nuser_name = \"Ann\"\n[[rooms]]\nroom_id = \"hall\"\n[settings]\nfirst_after = \"200ms\"\nevery = \"300ms\"\nmessages = [\"what time is it?\", \"hello {room_id}\"]\n"),
            ("d-echo.toml", "behaviour = \"echo\"\n[[accounts]]\nuser_id = \"echo\"\n[[rooms]]\nroom_id = \"mirror\"\n"),
            ("e-chatty.toml", "behaviour = \"chatter\"\n[[accounts]]\nuser_id = \"chatty\"\n[[rooms]]\nroom_id = \"mirror\"\n[settings]\nrate_per_sec = 5.0\n"),
        ],
    )
}

const TALKERS: [(&str, &str); 5] = [
    ("host", "hall"),
    ("clock", "hall"),
    ("ann", "hall"),
    ("echo", "mirror"),
    ("chatty", "mirror"),
];

#[test]
fn bots_enter_their_rooms_and_talk_then_sigterm_logs_every_account_out() {
    let dir = temp_dir("talk");
    let bots = talking_bots(&dir);
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        "[run]\nshutdown_deadline = \"3s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut cmd = zimfleet(&dir);
    cmd.arg("--bots").arg(&bots).arg("--config").arg(&config);
    let mut run = Running::start(&dir, cmd);
    let admin = run.admin_addr();

    // Every account enters its room: (Connected, Success) in the events file.
    run.wait_for("every room Connected", Duration::from_secs(20), |r| {
        let events = r.events();
        TALKERS
            .iter()
            .all(|(user, room)| room_pairs(&events, user, room).contains(&CONNECTED))
            .then_some(())
    });
    let events = run.events();
    for (user, room) in TALKERS {
        let conn = connection_pairs(&events, user);
        assert_eq!(
            &conn[..2],
            &[
                (
                    ConnectionState::Connecting.as_i32(),
                    ConnectionEvent::ActiveLogin.as_i32()
                ),
                (
                    ConnectionState::Connected.as_i32(),
                    ConnectionEvent::Success.as_i32()
                )
            ],
            "{user}"
        );
        let rooms = room_pairs(&events, user, room);
        assert_eq!(
            rooms[0],
            (
                RoomState::Connecting.as_i32(),
                RoomEvent::ActiveEnter.as_i32()
            ),
            "{user}"
        );
    }

    // They talk: the keyword bot answers ann, echo answers chatty.
    run.wait_for(
        "the conversation in the log",
        Duration::from_secs(20),
        |r| {
            let log = r.log_text();
            (log.contains("[hall] ann: what time is it?")
                && log.contains("[hall] clock: it is time, ann")
                && log.contains("[mirror] chatty: chatter #1 from chatty")
                && log.contains("[mirror] echo: echo: chatter #1 from chatty"))
            .then_some(())
        },
    );
    // The greeter welcomes ann when ann joined after the greeter was in: the events say so.
    let events = run.events();
    let at = |user: &str, pair: (i32, i32)| {
        events.iter().find_map(|e| match &e.kind {
            EventKind::Room { state, event, .. }
                if e.account == user && (state.as_i32(), event.as_i32()) == pair =>
            {
                Some(e.ts_ms)
            }
            _ => None,
        })
    };
    let host_in = at("host", CONNECTED).unwrap();
    let ann_enters = at(
        "ann",
        (
            RoomState::Connecting.as_i32(),
            RoomEvent::ActiveEnter.as_i32(),
        ),
    )
    .unwrap();
    if host_in < ann_enters {
        run.wait_for("the greeter's welcome", Duration::from_secs(10), |r| {
            r.log_text()
                .contains("[hall] host: Welcome, Ann!")
                .then_some(())
        });
    }

    // The admin face.
    let (status, health) = http_get(&admin, "/health");
    assert_eq!(status, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["accounts"], 5);
    assert_eq!(health["connected"], 5);

    let (status, accounts) = http_get(&admin, "/accounts");
    assert_eq!(status, 200, "{accounts}");
    let accounts: serde_json::Value = serde_json::from_str(&accounts).unwrap();
    let list = accounts["accounts"].as_array().unwrap();
    assert_eq!(list.len(), 5, "{accounts}");
    for (user, room) in TALKERS {
        let a = list
            .iter()
            .find(|a| a["user_id"] == user)
            .unwrap_or_else(|| panic!("{user}: {accounts}"));
        assert_eq!(a["state"], 2, "{a}");
        assert_eq!(a["state_name"], "Connected", "{a}");
        assert_eq!(a["ended"], serde_json::Value::Null, "{a}");
        assert_eq!(a["rooms"][0]["room_id"], room, "{a}");
        assert_eq!(a["rooms"][0]["state"], 2, "{a}");
        assert_eq!(a["rooms"][0]["state_name"], "Connected", "{a}");
    }

    let metrics = run.wait_for("messages in the metrics", Duration::from_secs(10), |_| {
        let (status, text) = http_get(&admin, "/metrics");
        assert_eq!(status, 200, "{text}");
        let out = metric(&text, "zimfleet_messages_total{direction=\"out\"}")?;
        let inn = metric(&text, "zimfleet_messages_total{direction=\"in\"}")?;
        (out >= 3.0 && inn >= 3.0).then_some(text)
    });
    assert_eq!(
        metric(&metrics, "zimfleet_accounts{state=\"connected\"}"),
        Some(5.0)
    );
    assert_eq!(
        metric(&metrics, "zimfleet_rooms{state=\"connected\"}"),
        Some(5.0)
    );
    assert_eq!(metric(&metrics, "zimfleet_handler_panics_total"), Some(0.0));
    promtool_check(&metrics);

    // /events streams the same events: the shutdown's come through it before it closes.
    let mut stream = WsReader::connect(&admin, "/events");

    // SIGTERM: every account leaves and logs out within the deadline, exit 0.
    let before = run.events().len();
    run.signal("TERM");
    let (code, took) = run.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log:\n{}", run.log_text());
    assert!(
        took < Duration::from_millis(3000 + 1500),
        "shutdown took {took:?}"
    );
    let events = run.events();
    assert!(events.len() > before);
    for (user, room) in TALKERS {
        assert_eq!(
            connection_pairs(&events, user).last(),
            Some(&(
                ConnectionState::Disconnected.as_i32(),
                ConnectionEvent::Success.as_i32()
            )),
            "{user} did not log out"
        );
        assert_eq!(
            room_pairs(&events, user, room).last().map(|p| p.0),
            Some(RoomState::Disconnected.as_i32()),
            "{user} is still in {room}"
        );
    }
    let mut streamed = Vec::new();
    while let Some(text) = stream.next_text() {
        let event: Event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        streamed.push(event);
    }
    for (user, _) in TALKERS {
        assert!(
            connection_pairs(&streamed, user).contains(&(0, 0)),
            "/events did not stream {user}'s logout: {streamed:?}"
        );
    }
    let log = run.log_text();
    assert!(log.contains("shutdown: 5 logged out, 0 timed out"), "{log}");
    // Nothing secret in any output: the embedded secret is random, but no token may show.
    assert!(!log.contains("\"04"), "a token in the log:\n{log}");
    assert!(!std::fs::read_to_string(&run.events)
        .unwrap()
        .contains("04AAAA"));
}

/// `promtool check metrics` when promtool is installed (.ci/run installs it).
fn promtool_check(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed: skipped `promtool check metrics`");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A minimal WebSocket reader for /events (the test only reads; it never sends data).
struct WsReader {
    stream: BufReader<TcpStream>,
}

impl WsReader {
    fn connect(addr: &str, path: &str) -> WsReader {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut stream = BufReader::new(stream);
        let mut status = String::new();
        stream.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 101"), "{status}");
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
        }
        WsReader { stream }
    }

    /// The next text frame (pings and other control frames are skipped); None when closed.
    fn next_text(&mut self) -> Option<String> {
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).ok()?;
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).ok()?;
            match opcode {
                0x1 => return Some(String::from_utf8(payload).unwrap()),
                0x8 => return None,
                _ => continue,
            }
        }
    }
}

const TEST_SECRET: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f";

/// The reference server in this test process, on its own thread, with a known secret.
struct OwnBackend {
    url: String,
    admin: zimfleet::server::Admin,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl OwnBackend {
    fn start() -> OwnBackend {
        use zimfleet::protocol::Secret;
        use zimfleet::server::ServerSettings;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let mut settings = ServerSettings::for_tests();
                settings.app_id = 4242;
                settings.server_secret = Secret::new(TEST_SECRET);
                // Room memberships outlive a short outage with the runner's default timings.
                settings.timing.room_session_timeout_ms = 10_000;
                let handle = zimfleet::server::start(settings).await.unwrap();
                started_tx.send((handle.ws_url(), handle.admin())).unwrap();
                let _ = stop_rx.await;
                handle.stop().await;
            })
        });
        let (url, admin) = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        OwnBackend {
            url,
            admin,
            stop,
            thread,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

/// Bot files with accounts that only stay online in room "r", with generated tokens.
fn idle_bots(dir: &Path, users: &[&str]) -> PathBuf {
    let accounts: String = users
        .iter()
        .map(|u| format!("[[accounts]]\nuser_id = \"{u}\"\n"))
        .collect();
    bots_dir(
        dir,
        &[(
            "idle.toml",
            &format!("behaviour = \"idle\"\ntoken = {{ source = \"generated\", app_id = 4242, secret_env = \"TEST_APP_SECRET\" }}\n{accounts}[[rooms]]\nroom_id = \"r\"\n"),
        )],
    )
}

/// Starts `zimfleet run` on `backend` with idle accounts and waits until they are in room r.
fn idle_run(
    name: &str,
    backend: &OwnBackend,
    users: &[&str],
    deadline: &str,
    env: &[(&str, &str)],
) -> Running {
    let dir = temp_dir(name);
    let bots = idle_bots(&dir, users);
    let mut cmd = zimfleet(&dir);
    cmd.envs(env.iter().copied());
    cmd.arg("--bots")
        .arg(&bots)
        .env("ZIMFLEET__BACKEND__URL", &backend.url)
        .env("ZIMFLEET__RUN__SHUTDOWN_DEADLINE", deadline)
        .env("TEST_APP_SECRET", TEST_SECRET);
    let mut run = Running::start(&dir, cmd);
    run.wait_for(
        "every idle account in room r",
        Duration::from_secs(20),
        |r| {
            let events = r.events();
            users
                .iter()
                .all(|u| room_pairs(&events, u, "r").contains(&CONNECTED))
                .then_some(())
        },
    );
    run
}

#[test]
fn a_backend_that_stops_answering_cannot_hold_the_shutdown_past_its_deadline() {
    let backend = OwnBackend::start();
    let mut run = idle_run("unanswered", &backend, &["q1", "q2"], "1s", &[]);
    backend
        .admin
        .blackhole(zimfleet::server::FaultTarget::All, Duration::from_secs(30));
    run.signal("TERM");
    let (code, took) = run.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log:\n{}", run.log_text());
    assert!(
        took < Duration::from_millis(1000 + 1500),
        "shutdown took {took:?}"
    );
    let log = run.log_text();
    assert!(log.contains("shutdown: 0 logged out, 2 timed out"), "{log}");
    backend.stop();
}

#[test]
fn a_second_signal_exits_at_once() {
    let backend = OwnBackend::start();
    let mut run = idle_run("second-signal", &backend, &["s1"], "30s", &[]);
    // An unanswering backend keeps the first shutdown waiting for its 30 s deadline.
    backend
        .admin
        .blackhole(zimfleet::server::FaultTarget::All, Duration::from_secs(60));
    run.signal("INT");
    run.wait_for(
        "the first signal's shutdown",
        Duration::from_secs(10),
        |r| r.log_text().contains("SIGINT: leaving rooms").then_some(()),
    );
    run.signal("TERM");
    let (code, took) = run.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(130), "log:\n{}", run.log_text());
    assert!(
        took < Duration::from_secs(2),
        "the second signal took {took:?}"
    );
    assert!(run
        .log_text()
        .contains("zimfleet run: second SIGTERM: exiting now"));
    backend.stop();
}

#[test]
fn bots_run_against_their_own_backend_with_generated_tokens() {
    let backend = OwnBackend::start();
    let url = backend.url.clone();

    let dir = temp_dir("own-backend");
    let token = "token = { source = \"generated\", app_id = 4242, secret_env = \"TEST_APP_SECRET\", lifetime = \"10m\" }\n";
    let bots = bots_dir(
        &dir,
        &[
            ("echo.toml", &format!("behaviour = \"echo\"\n{token}[[accounts]]\nuser_id = \"e1\"\n[[rooms]]\nroom_id = \"r\"\n")),
            ("chatter.toml", &format!("behaviour = \"chatter\"\n{token}[[accounts]]\nuser_id = \"c1\"\n[[rooms]]\nroom_id = \"r\"\n[settings]\nrate_per_sec = 4.0\n")),
        ],
    );
    let mut cmd = zimfleet(&dir);
    cmd.arg("--bots")
        .arg(&bots)
        .env("ZIMFLEET__BACKEND__URL", &url)
        .env("TEST_APP_SECRET", TEST_SECRET);
    let mut run = Running::start(&dir, cmd);
    run.wait_for("the echo of the chatter", Duration::from_secs(20), |r| {
        r.log_text()
            .contains("[r] e1: echo: chatter #1 from c1")
            .then_some(())
    });
    let events = run.events();
    for user in ["e1", "c1"] {
        assert!(
            room_pairs(&events, user, "r").contains(&CONNECTED),
            "{user}: {events:?}"
        );
    }
    let log = run.log_text();
    assert!(
        log.contains(&format!("using the backend at {url}")),
        "{log}"
    );

    run.signal("INT");
    let (code, _) = run.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log:\n{}", run.log_text());
    let events_text = std::fs::read_to_string(&run.events).unwrap();
    for output in [run.log_text(), events_text] {
        assert!(
            !output.contains(TEST_SECRET),
            "the secret leaked:\n{output}"
        );
    }
    backend.stop();
}

/// The messages of a JSON log (`--log-format json`); every line must be a JSON object.
fn json_log_messages(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            v["message"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

#[test]
fn the_shipped_bots_talk_on_a_fresh_clone_with_json_log_lines() {
    // `cargo run -- run` in the project directory: bots/ and the embedded server.
    let dir = temp_dir("shipped");
    let mut cmd = zimfleet(&dir);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--log-format", "json"]);
    let mut run = Running::start(&dir, cmd);
    run.wait_for(
        "the shipped bots' conversation",
        Duration::from_secs(30),
        |r| {
            let messages = json_log_messages(&r.log_text());
            let said = |text: &str| messages.iter().any(|m| m.contains(text));
            (said("[lobby] host: Welcome to the lobby,")
                && said("[lobby] ann: hello everyone!")
                && said("[lobby] concierge: Hello ann, nice to meet you.")
                && said("[archive] archivist: [lobby] ann: hello everyone!")
                && said("[echo-room] echo: echo: chatter #1 from chatty"))
            .then_some(())
        },
    );
    run.signal("TERM");
    let (code, _) = run.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log:\n{}", run.log_text());
    let messages = json_log_messages(&run.log_text());
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("shutdown: 7 logged out, 0 timed out")),
        "{messages:?}"
    );
}

/// A raw HTTP request; the status code and the body.
fn http_request(addr: &str, request_line: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{request_line}\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_kicked_out_account_shows_why_it_ended_and_the_admin_face_refuses_bad_calls() {
    use zimfleet::protocol::KickoutReason;
    let backend = OwnBackend::start();
    let mut run = idle_run(
        "kicked",
        &backend,
        &["k1", "k2"],
        "5s",
        &[("ZIMFLEET__ADMIN__LISTEN", "127.0.0.1:0")],
    );
    let admin = run.admin_addr();
    assert!(backend.admin.kickout("k1", KickoutReason::KickedOut));
    run.wait_for("k1 kicked out", Duration::from_secs(10), |r| {
        let events = r.events();
        (connection_pairs(&events, "k1").last() == Some(&(0, 4))
            && room_pairs(&events, "k1", "r").last() == Some(&(0, 2)))
        .then_some(())
    });

    let (status, body) = http_get(&admin, "/accounts");
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let account = |id: &str| {
        body["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user_id"] == id)
            .cloned()
            .unwrap()
    };
    let k1 = account("k1");
    assert_eq!(
        (k1["state"].clone(), k1["state_name"].clone()),
        (0.into(), "Disconnected".into()),
        "{k1}"
    );
    assert_eq!(
        (k1["last_event"].clone(), k1["last_event_name"].clone()),
        (4.into(), "KickedOut".into()),
        "{k1}"
    );
    assert!(k1["ended"].is_string(), "{k1}");
    assert_eq!(account("k2")["state"], 2);

    let (_, metrics) = http_get(&admin, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "zimfleet_accounts_ended_total{reason=\"kicked_out\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "zimfleet_accounts{state=\"disconnected\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "zimfleet_accounts{state=\"connected\"}"),
        Some(1.0)
    );
    promtool_check(&metrics);

    // Bad calls get exact answers and harm nothing.
    let (status, body) = http_request(&admin, "GET /nope HTTP/1.1");
    assert_eq!(status, 404);
    assert_eq!(
        body,
        "{\"error\":\"no such endpoint; the admin face has GET /health, /accounts, /metrics and /events\"}"
    );
    let (status, _) = http_request(&admin, "POST /metrics HTTP/1.1");
    assert_eq!(status, 405);
    let (status, body) = http_request(&admin, "GET /events HTTP/1.1");
    assert_eq!(status, 400, "{body}");
    assert_eq!(http_get(&admin, "/health").0, 200);

    run.signal("TERM");
    let (code, _) = run.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        run.log_text()
            .contains("shutdown: 1 logged out, 0 timed out"),
        "{}",
        run.log_text()
    );
    backend.stop();
}

#[test]
fn an_admin_address_in_use_is_refused() {
    let dir = temp_dir("admin-in-use");
    let bots = bots_dir(&dir, &[("e.toml", ECHO_BOT)]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = refused(
        zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .env("ZIMFLEET__ADMIN__LISTEN", &addr),
    );
    assert!(
        stderr.ends_with(&format!(
            "zimfleet run: admin.listen {addr}: Address already in use (os error 98)\n"
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_embedded_server_settings_file_is_refused() {
    let dir = temp_dir("embedded-config");
    let bots = bots_dir(&dir, &[("e.toml", ECHO_BOT)]);
    let file = dir.join("server.toml");
    let stderr = refused(
        zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .env("ZIMFLEET__EMBEDDED__SERVER_CONFIG", &file),
    );
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: embedded server: embedded.server_config: config file {} not found\n",
            file.display()
        )
    );
}

#[test]
fn a_bad_embedded_address_is_refused() {
    let dir = temp_dir("embedded-listen");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__EMBEDDED__LISTEN", "localhost"));
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__EMBEDDED__LISTEN): embedded.listen must be an address like \"127.0.0.1:0\", not \"localhost\"\n"
    );
}

#[test]
fn a_dropped_link_recovers_and_the_metrics_count_it() {
    let backend = OwnBackend::start();
    let mut run = idle_run(
        "recover",
        &backend,
        &["d1", "d2"],
        "5s",
        &[("ZIMFLEET__ADMIN__LISTEN", "127.0.0.1:0")],
    );
    let admin = run.admin_addr();
    assert_eq!(backend.admin.drop(zimfleet::server::FaultTarget::All), 2);
    run.wait_for("both accounts back", Duration::from_secs(20), |r| {
        let events = r.events();
        ["d1", "d2"]
            .iter()
            .all(|u| {
                let conn = connection_pairs(&events, u);
                let rooms = room_pairs(&events, u, "r");
                conn.ends_with(&[(3, 3), (2, 0)]) && rooms.ends_with(&[(1, 1), (2, 0)])
            })
            .then_some(())
    });
    let log = run.log_text();
    assert!(
        log.contains("d1: connection Reconnecting(3) by LoginInterrupted(3)"),
        "{log}"
    );
    assert!(
        log.contains("d1: room r Connecting(1) by NetworkInterrupted(1)"),
        "{log}"
    );
    let (_, metrics) = http_get(&admin, "/metrics");
    assert_eq!(
        metric(&metrics, "zimfleet_reconnects_total"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "zimfleet_reconnect_duration_seconds_count"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "zimfleet_login_successes_total{kind=\"relogin\"}"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "zimfleet_accounts{state=\"connected\"}"),
        Some(2.0)
    );
    promtool_check(&metrics);
    run.signal("TERM");
    assert_eq!(run.wait_exit(Duration::from_secs(10)).0, Some(0));
    backend.stop();
}
