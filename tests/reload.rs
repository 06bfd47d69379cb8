//! Hot reload of `zimfleet run` (the built binary on its embedded backend): SIGHUP and
//! `POST /reload` re-read bots/; new files start, removed files log out, changed files change
//! only what changed, and a file that fails to load leaves everything running as it was.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zimfleet::client::{Event, EventKind};

/// A `zimfleet run` child on a bots directory, with its log and events file.
struct Run {
    child: Child,
    dir: PathBuf,
    bots: PathBuf,
}

impl Run {
    fn start(name: &str, files: &[(&str, &str)]) -> Run {
        let dir =
            std::env::temp_dir().join(format!("zimfleet-reload-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bots = dir.join("bots");
        std::fs::create_dir_all(&bots).unwrap();
        for (file, text) in files {
            std::fs::write(bots.join(file), text).unwrap();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ZIMFLEET__") {
                cmd.env_remove(key);
            }
        }
        std::fs::write(dir.join("run.toml"), "[run]\nshutdown_deadline = \"5s\"\n").unwrap();
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(dir.join("run.toml"))
            .arg("--bots")
            .arg(&bots)
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("ZIMFLEET__ADMIN__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("run.log")).unwrap())
            .spawn()
            .unwrap();
        Run { child, dir, bots }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(self.dir.join("events.jsonl")).unwrap_or_default();
        text.lines()
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Connection (state, event) pairs of `account`.
    fn connection(&self, account: &str) -> Vec<(i32, i32)> {
        self.events()
            .iter()
            .filter(|e| e.account == account)
            .filter_map(|e| match &e.kind {
                EventKind::Connection { state, event, .. } => {
                    Some((state.as_i32(), event.as_i32()))
                }
                _ => None,
            })
            .collect()
    }

    /// Room (state, event) pairs of `account` in `room`.
    fn room(&self, account: &str, room: &str) -> Vec<(i32, i32)> {
        self.events()
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

    /// Polls until `check` holds (every 25 ms, at most 20 s).
    fn wait(&mut self, what: &str, check: impl Fn(&Run) -> bool) {
        let end = Instant::now() + Duration::from_secs(20);
        while !check(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "zimfleet run exited ({status}) waiting for {what}; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() > end {
                panic!("timed out waiting for {what}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn said(&mut self, text: &str) {
        let text = text.to_string();
        self.wait(&format!("the log line {text:?}"), move |r| {
            r.log().contains(&text)
        });
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.bots.join(file), text).unwrap();
    }

    fn remove(&self, file: &str) {
        std::fs::remove_file(self.bots.join(file)).unwrap();
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGHUP, then waits for the reload's summary line (the `n`th of the run).
    fn hup(&mut self, n: usize) {
        self.signal("HUP");
        self.wait("the reload", move |r| {
            r.log().matches("reload (SIGHUP): ").count() >= n
        });
    }

    fn admin(&mut self) -> String {
        self.said("admin face listening on http://");
        let log = self.log();
        let at = log.find("admin face listening on http://").unwrap()
            + "admin face listening on http://".len();
        log[at..].split_whitespace().next().unwrap().to_string()
    }

    /// SIGTERM and a clean exit.
    fn stop(mut self) -> String {
        self.signal("TERM");
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "log:\n{}", self.log());
                return self.log();
            }
            assert!(Instant::now() < end, "no exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 request with an empty body; the status and the body.
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let status: u16 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>().unwrap());
        }
    }
    let mut body = vec![0; length.expect("a content length")];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

const CONNECTED: (i32, i32) = (2, 0);
const ONLINE: [(i32, i32); 2] = [(1, 1), (2, 0)];

fn echo(user: &str, room: &str, prefix: &str) -> String {
    format!("behaviour = \"echo\"\n[[accounts]]\nuser_id = \"{user}\"\n[[rooms]]\nroom_id = \"{room}\"\n[settings]\nprefix = \"{prefix}\"\n")
}

fn talker(user: &str, room: &str) -> String {
    format!("behaviour = \"scheduled\"\n[[accounts]]\nuser_id = \"{user}\"\n[[rooms]]\nroom_id = \"{room}\"\n[settings]\nfirst_after = \"200ms\"\nevery = \"300ms\"\nmessages = [\"ping {{n}}\"]\n")
}

fn idle(users: &[&str]) -> String {
    let mut text = "behaviour = \"idle\"\n".to_string();
    for user in users {
        text.push_str(&format!(
            "[[accounts]]\nuser_id = \"{user}\"\n[[rooms]]\nroom_id = \"quiet-{user}\"\n"
        ));
    }
    text
}

/// Waits until every account listed is Connected.
fn online(run: &mut Run, users: &[&str]) {
    let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    run.wait("the accounts online", move |r| {
        users.iter().all(|u| r.connection(u).contains(&CONNECTED))
    });
}

/// The account logged in once and entered its room once: nothing restarted it.
fn untouched(run: &Run, user: &str, room: &str) {
    assert_eq!(
        run.connection(user),
        ONLINE,
        "{user} reconnected; log:\n{}",
        run.log()
    );
    let pairs = run.room(user, room);
    assert_eq!(
        pairs.iter().filter(|p| **p == CONNECTED).count(),
        1,
        "{user} in {room}: {pairs:?}"
    );
    assert_eq!(
        pairs.last(),
        Some(&CONNECTED),
        "{user} in {room}: {pairs:?}"
    );
}

#[test]
fn a_new_file_starts_its_accounts_and_the_rest_is_untouched() {
    let mut run = Run::start("new", &[("a.toml", &idle(&["a1"]))]);
    online(&mut run, &["a1"]);
    run.write("b.toml", &idle(&["b1", "b2"]));
    run.hup(1);
    run.said("reload (SIGHUP): started [b1, b2], stopped [-], behaviour swapped [-], rooms entered [-], rooms left [-]");
    online(&mut run, &["b1", "b2"]);
    run.wait("b2's room", |r| {
        r.room("b2", "quiet-b2").contains(&CONNECTED)
    });
    untouched(&run, "a1", "quiet-a1");
    let log = run.stop();
    assert!(!log.contains("reload refused"), "{log}");
    assert!(log.contains("shutdown: 3 logged out, 0 timed out"), "{log}");
}

#[test]
fn a_removed_file_logs_its_accounts_out_and_the_rest_stays_online() {
    let mut run = Run::start(
        "removed",
        &[("a.toml", &idle(&["a1"])), ("b.toml", &idle(&["b1"]))],
    );
    online(&mut run, &["a1", "b1"]);
    run.wait("a1's room", |r| {
        r.room("a1", "quiet-a1").contains(&CONNECTED)
    });
    run.remove("b.toml");
    run.hup(1);
    run.said("reload (SIGHUP): started [-], stopped [b1], behaviour swapped [-], rooms entered [-], rooms left [-]");
    run.wait("b1 logged out", |r| {
        r.connection("b1").last() == Some(&(0, 0))
    });
    untouched(&run, "a1", "quiet-a1");
    let log = run.stop();
    assert!(log.contains("shutdown: 1 logged out, 0 timed out"), "{log}");
}

#[test]
fn a_changed_setting_swaps_the_behaviour_without_a_reconnect() {
    let mut run = Run::start(
        "changed",
        &[
            ("echo.toml", &echo("echo1", "hall", "echo: ")),
            ("talk.toml", &talker("ann", "hall")),
            ("z.toml", &idle(&["z1"])),
        ],
    );
    online(&mut run, &["echo1", "ann", "z1"]);
    run.said("[hall] echo1: echo: ping 1");
    run.write("echo.toml", &echo("echo1", "hall", "re: "));
    run.hup(1);
    let file = run.bots.join("echo.toml");
    run.said(&format!("behaviour swapped [{}]", file.display()));
    run.said("[hall] echo1: re: ping");
    untouched(&run, "echo1", "hall");
    untouched(&run, "ann", "hall");
    untouched(&run, "z1", "quiet-z1");
    run.stop();
}

#[test]
fn a_changed_room_is_left_and_entered_by_the_running_account_only() {
    let mut run = Run::start(
        "rooms",
        &[
            ("echo.toml", &echo("echo2", "old-room", "echo: ")),
            ("z.toml", &idle(&["z2"])),
        ],
    );
    online(&mut run, &["echo2", "z2"]);
    run.wait("the old room", |r| {
        r.room("echo2", "old-room").contains(&CONNECTED)
    });
    run.write("echo.toml", &echo("echo2", "new-room", "echo: "));
    run.hup(1);
    run.said("reload (SIGHUP): started [-], stopped [-], behaviour swapped [-], rooms entered [echo2/new-room], rooms left [echo2/old-room]");
    assert_eq!(
        run.room("echo2", "old-room").last(),
        Some(&(0, 0)),
        "left: (Disconnected, Success)"
    );
    run.wait("the new room", |r| {
        r.room("echo2", "new-room").last() == Some(&CONNECTED)
    });
    assert_eq!(
        run.connection("echo2"),
        ONLINE,
        "the account stayed connected"
    );
    untouched(&run, "z2", "quiet-z2");
    run.stop();
}

#[test]
fn a_file_that_fails_to_load_leaves_the_running_set_untouched_and_the_admin_face_shows_why() {
    let mut run = Run::start(
        "broken",
        &[("a.toml", &idle(&["a3"])), ("b.toml", &idle(&["b3"]))],
    );
    let admin = run.admin();
    online(&mut run, &["a3", "b3"]);
    run.wait("the rooms", |r| {
        r.room("a3", "quiet-a3").contains(&CONNECTED)
            && r.room("b3", "quiet-b3").contains(&CONNECTED)
    });
    assert_eq!(
        http(&admin, "GET", "/reload"),
        (200, "{\"last\":null}".to_string())
    );
    // b.toml breaks (a wrong type), and a new file arrives: the new one starts, b keeps running.
    run.write(
        "b.toml",
        "behaviour = \"idle\"\n[[accounts]]\nuser_id = 5\n",
    );
    run.write("c.toml", &idle(&["c3"]));
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, 422, "{body}");
    let result: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(result["trigger"], "admin");
    assert_eq!(result["started"], serde_json::json!(["c3"]));
    assert_eq!(result["stopped"], serde_json::json!([]));
    let b = run.bots.join("b.toml");
    let want = format!(
        "{}: line 3 (`user_id = 5`): invalid type: integer `5`, expected a string",
        b.display()
    );
    assert_eq!(
        result["errors"][0]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        want,
        "{body}"
    );
    run.said(&format!("reload refused: {want}"));
    online(&mut run, &["c3"]);
    untouched(&run, "a3", "quiet-a3");
    untouched(&run, "b3", "quiet-b3");
    // The admin face keeps the last result, errors included.
    let (status, last) = http(&admin, "GET", "/reload");
    assert_eq!(status, 200);
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["last"], result);
    // Still broken: each reload says so again, and applies the rest.
    std::fs::write(run.bots.join("d.toml"), idle(&["d3"])).unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("b.toml: line 3"), "{body}");
    assert!(body.contains("\"started\":[\"d3\"]"), "{body}");
    let log = run.stop();
    assert!(log.contains("shutdown: 4 logged out, 0 timed out"), "{log}");
}

#[test]
fn a_config_error_or_a_missing_bots_directory_reloads_nothing() {
    let mut run = Run::start("nodir", &[("a.toml", &idle(&["a4"]))]);
    let admin = run.admin();
    online(&mut run, &["a4"]);
    std::fs::write(run.bots.join("b.toml"), idle(&["b4"])).unwrap();
    // A config that is refused: no bot file is applied.
    let config = run.dir.join("run.toml");
    std::fs::write(&config, "[run]\nshutdown_deadline = \"0s\"\n").unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, 422, "{body}");
    let result: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        result["errors"],
        serde_json::json!([format!(
            "config: config/default.toml < {} < environment (ZIMFLEET__ADMIN__LISTEN): run.shutdown_deadline must be longer than 0s; nothing was reloaded",
            config.display()
        )])
    );
    assert_eq!(result["started"], serde_json::json!([]));
    std::fs::write(&config, "[run]\nshutdown_deadline = \"5s\"\n").unwrap();
    // No bots directory: nothing is applied either.
    let moved = run.dir.join("elsewhere");
    std::fs::rename(&run.bots, &moved).unwrap();
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, 422, "{body}");
    let result: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        result["errors"],
        serde_json::json!([format!(
            "bots directory {0} not found (looked in {0}); point at another with --bots DIR or ZIMFLEET__RUN__BOTS_DIR; nothing was reloaded",
            run.bots.display()
        )])
    );
    assert_eq!(result["started"], serde_json::json!([]));
    assert_eq!(result["stopped"], serde_json::json!([]));
    std::fs::rename(&moved, &run.bots).unwrap();
    assert_eq!(run.connection("a4"), ONLINE);
    let (status, body) = http(&admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"started\":[\"b4\"]"), "{body}");
    run.stop();
}

#[test]
fn a_change_that_needs_a_new_login_is_refused_and_the_account_keeps_running() {
    let mut run = Run::start(
        "relogin",
        &[("a.toml", &idle(&["a5"])), ("b.toml", &idle(&["b5"]))],
    );
    online(&mut run, &["a5", "b5"]);
    run.wait("a5's room", |r| {
        r.room("a5", "quiet-a5").contains(&CONNECTED)
    });
    // a5 gets a display name (a new login), b.toml goes away.
    run.write(
        "a.toml",
        &idle(&["a5"]).replace("user_id = \"a5\"", "user_id = \"a5\"\nuser_name = \"Five\""),
    );
    run.remove("b.toml");
    run.hup(1);
    let a = run.bots.join("a.toml");
    run.said(&format!(
        "reload refused: {}: account a5: its entry changed (user_name, device_id or token), which needs a new login; restart zimfleet run to apply this file (it keeps running as it was)",
        a.display()
    ));
    run.said("reload (SIGHUP): started [-], stopped [b5]");
    // b.toml comes back: b5 already ran in this run, so it is refused too.
    run.write("b.toml", &idle(&["b5"]));
    run.hup(2);
    let b = run.bots.join("b.toml");
    run.said(&format!(
        "reload refused: {}: account b5: this id already ran in this run (its file was removed, or it moved between files); restart zimfleet run to apply this file (it keeps running as it was)",
        b.display()
    ));
    untouched(&run, "a5", "quiet-a5");
    let log = run.stop();
    assert!(log.contains("shutdown: 1 logged out, 0 timed out"), "{log}");
}
