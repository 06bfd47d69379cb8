//! Log lines as a user sees them: colour on a terminal, plain text in pipes and files, and
//! `NO_COLOR` honoured (src/telemetry.rs). Each case starts `zimfleet server` on a free port,
//! waits (with a deadline) for its "listening" log line, then stops it with SIGINT.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// Reads `from` on a thread; the chunks arrive on the returned channel.
fn reader(mut from: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects output until `done` says so; panics with what arrived at the deadline.
fn read_until(rx: &mpsc::Receiver<Vec<u8>>, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if done(&text) {
            return text;
        }
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!("no log line within {DEADLINE:?}; output so far: {text:?}"),
        }
    }
}

/// Sends SIGINT to `pid` and waits (with a deadline) for `child` to exit.
fn interrupt(pid: u32, child: &mut Child) {
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -INT {pid}");
    let end = Instant::now() + DEADLINE;
    loop {
        // Its exit status is not the point here: a SIGINT that comes before the server has
        // installed its handler ends it by the signal, which is fine for this test.
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(
            Instant::now() < end,
            "still running {DEADLINE:?} after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's stderr log line ends with its fields; `addr=` is on the "listening" line.
fn has_listening_log(text: &str) -> bool {
    text.lines()
        .any(|l| l.contains("zimfleet server listening") && l.contains("addr"))
}

/// `zimfleet server` with stderr to a pipe: its log lines carry no escape code.
fn server_into_pipe(no_color: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    cmd.args(["server", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = reader(child.stderr.take().unwrap());
    let text = read_until(&rx, has_listening_log);
    interrupt(child.id(), &mut child);
    text
}

#[test]
fn log_lines_into_a_pipe_are_plain_text() {
    for no_color in [None, Some("1")] {
        let text = server_into_pipe(no_color);
        assert!(
            !text.contains('\u{1b}'),
            "NO_COLOR={no_color:?}: escape codes in a pipe: {text:?}"
        );
        let line = text.lines().find(|l| l.contains("addr")).unwrap();
        assert!(
            line.contains(" INFO zimfleet server listening addr=127.0.0.1:"),
            "{line:?}"
        );
    }
}

/// `zimfleet server` on a pseudo-terminal (util-linux `script`); `None` when there is no
/// `script` (a failure under CI=true).
fn server_on_a_terminal(no_color: Option<&str>) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        let msg = "util-linux `script` is not installed: cannot test colour on a terminal";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}; skipped");
        return None;
    }
    // The shell prints its pid, then becomes the server: that pid gets the SIGINT.
    let inner = format!(
        "echo PID $$; exec {} server --listen 127.0.0.1:0",
        env!("CARGO_BIN_EXE_zimfleet")
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd.spawn().unwrap();
    let rx = reader(child.stdout.take().unwrap());
    let text = read_until(&rx, has_listening_log);
    let pid: u32 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PID "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PID line in {text:?}"));
    interrupt(pid, &mut child);
    Some(text)
}

#[test]
fn log_lines_on_a_terminal_are_coloured_unless_no_color() {
    let Some(coloured) = server_on_a_terminal(None) else {
        return;
    };
    assert!(
        coloured.contains("\u{1b}[32m INFO\u{1b}[0m zimfleet server listening"),
        "no colour on a terminal: {coloured:?}"
    );
    let Some(plain) = server_on_a_terminal(Some("1")) else {
        return;
    };
    assert!(
        !plain.contains('\u{1b}'),
        "NO_COLOR=1 on a terminal: {plain:?}"
    );
    assert!(
        plain.contains(" INFO zimfleet server listening addr="),
        "{plain:?}"
    );
}
