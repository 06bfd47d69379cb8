//! Shared by tests/admin_api.rs and tests/console.rs: `zimfleet run` (the built binary) on the
//! embedded backend with its admin face on a free loopback port, and a plain HTTP/1.1 client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Two idle accounts in room r and an echo bot in room r: enough to act and to be answered.
pub const BOTS: &[(&str, &str)] = &[
    (
        "idle.toml",
        "behaviour = \"idle\"\n[[accounts]]\nuser_id = \"alice\"\nuser_name = \"Alice\"\n\
         [[accounts]]\nuser_id = \"bob\"\nuser_name = \"Bob\"\n[[rooms]]\nroom_id = \"r\"\n",
    ),
    (
        "echo.toml",
        "behaviour = \"echo\"\n[[accounts]]\nuser_id = \"echo\"\n[[rooms]]\nroom_id = \"r\"\n\
         [settings]\nprefix = \"echo: \"\n",
    ),
];

/// A fresh directory under the system's temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zimfleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `zimfleet run` child with its log and events file in its own directory.
pub struct Run {
    child: Child,
    /// Its directory (bots/, run.log, events.jsonl).
    pub dir: PathBuf,
    /// The admin face, `127.0.0.1:PORT`.
    pub admin: String,
}

impl Run {
    /// Starts `zimfleet run --bots DIR --events FILE` with the admin face on `listen` and
    /// `env`, and waits for its admin face. DIR holds `bots`; none = the shipped bots/.
    pub fn start(name: &str, bots: &[(&str, &str)], listen: &str, env: &[(&str, &str)]) -> Run {
        let dir = temp_dir(name);
        let bots_dir = if bots.is_empty() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bots")
        } else {
            dir.join("bots")
        };
        std::fs::create_dir_all(&bots_dir).unwrap();
        for (file, text) in bots {
            std::fs::write(bots_dir.join(file), text).unwrap();
        }
        let child = Command::new(env!("CARGO_BIN_EXE_zimfleet"))
            .current_dir(&dir)
            .arg("run")
            .arg("--bots")
            .arg(&bots_dir)
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .env("NO_COLOR", "1")
            .env("ZIMFLEET__ADMIN__LISTEN", listen)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("run.log")).unwrap())
            .spawn()
            .unwrap();
        let mut run = Run {
            child,
            dir,
            admin: String::new(),
        };
        run.admin = run.wait_for("the admin face", Duration::from_secs(30), |r| {
            let log = r.log_text();
            let at = log.find("admin face listening on http://")?;
            let rest = &log[at + "admin face listening on http://".len()..];
            let addr = rest.split_whitespace().next()?;
            Some(addr.replace("0.0.0.0:", "127.0.0.1:"))
        });
        run
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    /// The events file so far.
    pub fn events_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("events.jsonl")).unwrap_or_default()
    }

    /// The events file's events as JSON values.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.events_text()
            .lines()
            .filter(|l| l.ends_with('}'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The (state, event) pairs of `account`'s connection, in order.
    pub fn connection_pairs(&self, account: &str) -> Vec<(i64, i64)> {
        self.events()
            .iter()
            .filter(|e| e["account"] == account && e["kind"] == "connection")
            .map(|e| (e["state"].as_i64().unwrap(), e["event"].as_i64().unwrap()))
            .collect()
    }

    /// Polls `check` every 25 ms until it answers or `deadline` passes (then panics with the log).
    pub fn wait_for<T>(
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
                panic!("timed out waiting for {what}; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until `users` are all Connected and in room `room` (as GET /accounts says).
    pub fn wait_in_room(&mut self, users: &[&str], room: &str) {
        let admin = self.admin.clone();
        self.wait_for(
            &format!("{users:?} in room {room}"),
            Duration::from_secs(30),
            |_| {
                let reply = request(&admin, "GET", "/accounts", &[], None);
                let body: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
                let list = body["accounts"].as_array()?;
                users
                    .iter()
                    .all(|u| {
                        list.iter().any(|a| {
                            a["user_id"] == *u
                                && a["state"] == 2
                                && a["rooms"].as_array().is_some_and(|rs| {
                                    rs.iter().any(|r| r["room_id"] == room && r["state"] == 2)
                                })
                        })
                    })
                    .then_some(())
            },
        );
    }

    /// A request to the admin face.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        request(&self.admin, method, path, headers, body)
    }

    /// GET without headers.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    /// POST of a JSON body (or none).
    pub fn post(&self, path: &str, body: Option<&str>) -> Reply {
        let headers: &[(&str, &str)] = match body {
            Some(_) => &[("Content-Type", "application/json")],
            None => &[],
        };
        self.request("POST", path, headers, body)
    }

    /// SIGTERM, then the exit code (within 15 s).
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < end,
                "no exit after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The header lines, lower-cased.
    pub headers: String,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// One HTTP/1.1 request with `Connection: close`, read to the end (10 s read deadline).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers = head.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

/// Opens a WebSocket on the admin face; the status line of the answer, and the stream.
pub fn ws_open(addr: &str, path: &str, headers: &[(&str, &str)]) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        line.push(byte[0]);
    }
    (String::from_utf8_lossy(&line).trim().to_string(), stream)
}
