//! The `webhook` behaviour against the real reference server and a real local HTTP endpoint
//! (a std::net server in the test): the JSON it posts, the order, the actions, retries,
//! timeouts, a full queue, and that a slow endpoint stalls no account.

mod client_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_support::*;
use serde_json::{json, Value};
use zimfleet::bot::echo::{Echo, EchoSettings};
use zimfleet::bot::pacer::Quiet;
use zimfleet::bot::webhook::metrics::Count;
use zimfleet::bot::webhook::{Webhook, WebhookSettings};
use zimfleet::protocol::{MessageType, Secret};

/// One request the endpoint got.
#[derive(Debug, Clone)]
struct Posted {
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// How the endpoint answers the `n`th request (from 0): status, body, delay before answering.
type Answer = dyn Fn(usize, &Value) -> (u16, String, Duration) + Send + Sync;

/// A real HTTP/1.1 endpoint on 127.0.0.1 (keep-alive, Content-Length bodies).
struct Endpoint {
    url: String,
    posted: Arc<Mutex<Vec<Posted>>>,
}

impl Endpoint {
    fn start(
        answer: impl Fn(usize, &Value) -> (u16, String, Duration) + Send + Sync + 'static,
    ) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/zim", listener.local_addr().unwrap());
        let posted = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let count = Arc::new(AtomicUsize::new(0));
        let recorded = Arc::clone(&posted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (posted, answer, count) = (
                    Arc::clone(&recorded),
                    Arc::clone(&answer),
                    Arc::clone(&count),
                );
                std::thread::spawn(move || serve(stream, &posted, &*answer, &count));
            }
        });
        Endpoint { url, posted }
    }

    fn posted(&self) -> Vec<Posted> {
        self.posted.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on what was posted, at most `within`.
    async fn wait(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&[Posted]) -> bool,
    ) -> Vec<Posted> {
        let end = Instant::now() + within;
        loop {
            let posted = self.posted();
            if pred(&posted) {
                return posted;
            }
            if Instant::now() > end {
                let bodies: Vec<String> = posted.iter().map(|p| p.body.to_string()).collect();
                panic!(
                    "timed out waiting for {what}; posted:\n{}",
                    bodies.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn serve(stream: TcpStream, posted: &Mutex<Vec<Posted>>, answer: &Answer, count: &AtomicUsize) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut authorization, mut content_type) = (0usize, None, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "authorization" => authorization = Some(value.trim().to_string()),
                "content-type" => content_type = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap();
        let n = count.fetch_add(1, Ordering::SeqCst);
        let (status, text, delay) = answer(n, &body);
        posted.lock().unwrap().push(Posted {
            authorization,
            content_type,
            body,
        });
        std::thread::sleep(delay);
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn ok_empty(_: usize, _: &Value) -> (u16, String, Duration) {
    (200, String::new(), Duration::ZERO)
}

fn settings(url: &str, extra: &str) -> WebhookSettings {
    let text = format!("url = {url:?}\n{extra}");
    toml::from_str(&text).unwrap()
}

fn webhook(url: &str, extra: &str) -> Arc<Webhook> {
    Arc::new(Webhook::new(settings(url, extra), None, Quiet::default()))
}

fn kinds(posted: &[Posted], account: &str) -> Vec<String> {
    posted
        .iter()
        .filter(|p| p.body["account"] == account)
        .map(|p| p.body["kind"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn events_are_posted_in_order_with_one_schema_and_the_actions_run_in_order() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let endpoint = Endpoint::start(|_, body| {
        if body["kind"] == "message" && body["message"]["body"] == "hello" {
            let actions = json!({"actions": [
                {"type": "room_message", "room_id": "lobby", "text": "one"},
                {"type": "room_message", "room_id": "lobby", "text": "two"},
                {"type": "peer_message", "user_id": "ann", "text": "psst"},
                {"type": "enter_room", "room_id": "side"},
                {"type": "leave_room", "room_id": "side"},
            ]});
            return (200, actions.to_string(), Duration::ZERO);
        }
        (200, String::new(), Duration::ZERO)
    });
    let bot = Arc::new(Webhook::new(
        settings(&endpoint.url, ""),
        Some(Secret::new("s3cret-bearer")),
        Quiet::default(),
    ));
    let hook = fleet
        .add_account(env.spec("hook", &["lobby"]), bot.clone())
        .unwrap();
    ev.room("hook", "lobby", (2, 0)).await;
    let ann_bot = Arc::new(RecordingBot::default());
    let ann = fleet
        .add_account(env.spec("ann", &["lobby"]), ann_bot.clone())
        .unwrap();
    ev.room("ann", "lobby", (2, 0)).await;
    ann.send_room_message("lobby", MessageType::Text, "hello".into())
        .await
        .unwrap();

    ann_bot
        .wait_messages(Duration::from_secs(5), |m| {
            m.iter().any(|m| m.body == "psst")
        })
        .await;
    let bodies: Vec<_> = ann_bot
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.from == "hook")
        .map(|m| (m.conv_id.clone(), m.body.clone()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("lobby".into(), "one".into()),
            ("lobby".into(), "two".into()),
            ("hook".into(), "psst".into())
        ],
        "the actions ran in order"
    );
    ev.room("hook", "side", (2, 0)).await;
    ev.room("hook", "side", (0, 0)).await;
    // The leave's reply (and so its count) may come just after its room event.
    let end = Instant::now() + Duration::from_secs(5);
    while bot.counters().get(Count::ActionDone) < 5 {
        assert!(
            Instant::now() < end,
            "actions done: {}",
            bot.counters().get(Count::ActionDone)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(bot.counters().get(Count::ActionDone), 5);
    assert_eq!(bot.counters().get(Count::ActionFailed), 0);

    hook.logout().await.unwrap();
    let posted = endpoint
        .wait("the logout", Duration::from_secs(5), |p| {
            p.iter()
                .any(|p| p.body["kind"] == "connection" && p.body["state"] == 0)
        })
        .await;
    let mine: Vec<&Posted> = posted
        .iter()
        .filter(|p| p.body["account"] == "hook")
        .collect();
    let ids: Vec<u64> = mine
        .iter()
        .map(|p| p.body["event_id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "in order, no gap"
    );
    for p in &mine {
        assert_eq!(p.body["schema"], 1);
        assert!(p.body["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(p.authorization.as_deref(), Some("Bearer s3cret-bearer"));
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
    }
    let k = kinds(&posted, "hook");
    assert_eq!(k.first().map(String::as_str), Some("connection"));
    assert_eq!(k.last().map(String::as_str), Some("connection"));
    let first = &mine[0].body;
    assert_eq!(
        (first["state"].clone(), first["state_name"].clone()),
        (json!(1), json!("Connecting"))
    );
    let joined = mine
        .iter()
        .find(|p| p.body["kind"] == "members_joined")
        .expect("members_joined");
    assert_eq!(joined.body["room_id"], "lobby");
    assert_eq!(joined.body["members"][0]["user_id"], "ann");
    let message = mine.iter().find(|p| p.body["kind"] == "message").unwrap();
    assert_eq!(message.body["message"]["from"], "ann");
    assert_eq!(message.body["message"]["conv_type"], 1);
    assert_eq!(message.body["message"]["type"], 1);
    // Its own messages ("one", "two") are not posted by default.
    assert_eq!(
        mine.iter().filter(|p| p.body["kind"] == "message").count(),
        1
    );
    let rooms: Vec<(Value, Value, Value)> = mine
        .iter()
        .filter(|p| p.body["kind"] == "room" && p.body["room_id"] == "side")
        .map(|p| {
            (
                p.body["state"].clone(),
                p.body["event"].clone(),
                p.body["event_name"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rooms.first(),
        Some(&(json!(1), json!(6), json!("ActiveEnter")))
    );
    assert_eq!(rooms.last(), Some(&(json!(0), json!(0), json!("Success"))));
    let last = &mine.last().unwrap().body;
    assert_eq!(
        (last["state"].clone(), last["event"].clone()),
        (json!(0), json!(0))
    );
}

#[actix_rt::test]
async fn the_events_filter_lets_only_its_kinds_through() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let endpoint = Endpoint::start(ok_empty);
    let bot = webhook(
        &endpoint.url,
        "events = [\"message\"]\nown_messages = true\n",
    );
    let hook = fleet.add_account(env.spec("only", &["r"]), bot).unwrap();
    ev.room("only", "r", (2, 0)).await;
    hook.send_room_message("r", MessageType::Text, "mine".into())
        .await
        .unwrap();
    let posted = endpoint
        .wait("its own message", Duration::from_secs(5), |p| !p.is_empty())
        .await;
    hook.logout().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(kinds(&endpoint.posted(), "only"), ["message"]);
    assert_eq!(posted[0].body["event_id"], 1);
    assert_eq!(posted[0].body["message"]["body"], "mine");
}

#[actix_rt::test]
async fn a_failing_endpoint_is_retried_then_given_up_and_counted() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    // Two 503s, then fine: delivered on the third attempt.
    let flaky = Endpoint::start(|n, _| match n {
        0 | 1 => (503, String::new(), Duration::ZERO),
        _ => (200, String::new(), Duration::ZERO),
    });
    let bot = webhook(
        &flaky.url,
        "events = [\"connection\"]\nretries = 3\nretry_backoff = \"50ms\"\n",
    );
    let started = Instant::now();
    fleet
        .add_account(env.spec("flaky", &[]), bot.clone())
        .unwrap();
    ev.conn("flaky", (2, 0)).await;
    let posted = flaky
        .wait("two events", Duration::from_secs(5), |p| p.len() >= 4)
        .await;
    // The first event was posted three times, then the second once.
    let ids: Vec<u64> = posted
        .iter()
        .map(|p| p.body["event_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids[..4], [1, 1, 1, 2]);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "two backoffs (~50 ms, ~100 ms)"
    );
    let c = bot.counters();
    assert_eq!(c.get(Count::AttemptFailed), 2);
    assert_eq!(c.get(Count::Delivered), 2);
    assert_eq!(c.get(Count::GivenUp), 0);

    // Always 500: each event is tried 1 + 2 times and given up; a 404 is not retried.
    let broken = Endpoint::start(|_, body| match body["kind"].as_str() {
        Some("room") => (404, String::new(), Duration::ZERO),
        _ => (500, String::new(), Duration::ZERO),
    });
    let bot = webhook(&broken.url, "retries = 2\nretry_backoff = \"10ms\"\n");
    let down = fleet
        .add_account(env.spec("down", &["x"]), bot.clone())
        .unwrap();
    ev.room("down", "x", (2, 0)).await;
    broken
        .wait("the room events", Duration::from_secs(5), |p| {
            p.iter().filter(|p| p.body["kind"] == "room").count() >= 2
        })
        .await;
    // The account itself is fine.
    let status = down.state().await.unwrap();
    assert_eq!(status.state.as_i32(), 2);
    let posted = broken.posted();
    let tries = |id: u64| posted.iter().filter(|p| p.body["event_id"] == id).count();
    assert_eq!(tries(1), 3, "connection (1,0): three attempts");
    let room_ids: Vec<u64> = posted
        .iter()
        .filter(|p| p.body["kind"] == "room")
        .map(|p| p.body["event_id"].as_u64().unwrap())
        .collect();
    assert!(
        room_ids.windows(2).all(|w| w[0] != w[1]),
        "a 404 is not retried: {room_ids:?}"
    );
    assert!(bot.counters().get(Count::GivenUp) >= 3);
}

#[actix_rt::test]
async fn a_silent_endpoint_times_out_and_an_invalid_answer_runs_nothing() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let bot = webhook(
        &url,
        "events = [\"connection\"]\ntimeout = \"200ms\"\nretries = 1\nretry_backoff = \"10ms\"\n",
    );
    let started = Instant::now();
    fleet
        .add_account(env.spec("mute", &[]), bot.clone())
        .unwrap();
    ev.conn("mute", (2, 0)).await;
    let c = bot.counters();
    let end = Instant::now() + Duration::from_secs(5);
    while c.get(Count::GivenUp) < 2 {
        assert!(
            Instant::now() < end,
            "timeouts: {}",
            c.get(Count::AttemptTimedOut)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "4 attempts of 200 ms each"
    );
    assert_eq!(c.get(Count::AttemptTimedOut), 4);
    assert_eq!(c.get(Count::Delivered), 0);
    drop(silent);

    let nonsense = Endpoint::start(|_, _| {
        (
            200,
            "{\"actions\":[{\"type\":\"dance\"}]}".into(),
            Duration::ZERO,
        )
    });
    let bot = webhook(&nonsense.url, "events = [\"connection\"]\n");
    fleet
        .add_account(env.spec("odd", &["o"]), bot.clone())
        .unwrap();
    ev.conn("odd", (2, 0)).await;
    nonsense
        .wait("two events", Duration::from_secs(5), |p| p.len() >= 2)
        .await;
    let end = Instant::now() + Duration::from_secs(5);
    while bot.counters().get(Count::AnswerInvalid) < 2 {
        assert!(Instant::now() < end);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(bot.counters().get(Count::ActionDone), 0);
    assert_eq!(bot.counters().get(Count::ActionFailed), 0);
}

#[actix_rt::test]
async fn a_slow_endpoint_drops_the_oldest_and_stalls_neither_the_account_nor_other_bots() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    // 400 ms per answer; a queue of 3 messages.
    let slow = Endpoint::start(|_, _| (200, String::new(), Duration::from_millis(400)));
    let bot = webhook(&slow.url, "events = [\"message\"]\nqueue = 3\n");
    let hook = fleet
        .add_account(env.spec("slowhook", &["busy"]), bot.clone())
        .unwrap();
    let echo = Arc::new(Echo::new(EchoSettings::default()));
    fleet
        .add_account(env.spec("echoer", &["busy"]), echo)
        .unwrap();
    let ann_bot = Arc::new(RecordingBot::default());
    let ann = fleet
        .add_account(env.spec("talker", &["busy"]), ann_bot.clone())
        .unwrap();
    for user in ["slowhook", "echoer", "talker"] {
        ev.room(user, "busy", (2, 0)).await;
    }
    let sent = 12;
    for i in 0..sent {
        ann.send_room_message("busy", MessageType::Text, format!("m{i}"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    // The other bot answered every message while the endpoint was behind.
    ann_bot
        .wait_messages(Duration::from_secs(3), |m| {
            m.iter().filter(|m| m.body.starts_with("echo: ")).count() == sent
        })
        .await;
    // The webhook's account answers at once and sends at once.
    let asked = Instant::now();
    hook.state().await.unwrap();
    hook.send_room_message("busy", MessageType::Text, "still here".into())
        .await
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );

    let c = bot.counters();
    // The newest message the account saw is the last echo.
    let newest = format!("echo: m{}", sent - 1);
    let posted = slow
        .wait("the newest message", Duration::from_secs(10), |p| {
            p.iter().any(|p| p.body["message"]["body"] == newest)
        })
        .await;
    let ids: Vec<u64> = posted
        .iter()
        .map(|p| p.body["event_id"].as_u64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "still in order: {ids:?}"
    );
    let dropped = c.get(Count::DroppedQueueFull);
    assert!(dropped >= 3, "dropped {dropped}");
    // Every message of the others (the talker's and the echoes) was posted or dropped; its
    // own "still here" is not posted.
    assert_eq!(posted.len() as u64 + dropped, 2 * sent as u64);
}

// ---------------------------------------------------------------------------------------------
// examples/bots/echo.py with `zimfleet run` on the embedded backend.

use std::process::{Child, Command, Stdio};

/// Kills a child process when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts examples/bots/echo.py on a free port; its URL.
fn start_echo_py(bearer_env: &str) -> Option<(KillOnDrop, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bots/echo.py");
    let child = Command::new("python3")
        .args([script, "--port", "0", "--bearer-env", bearer_env])
        .env(bearer_env, "py-bearer-token")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(child) => KillOnDrop(child),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("python3: {e}"),
        Err(e) => {
            eprintln!("skipped: python3 cannot start ({e})");
            return None;
        }
    };
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("echo.py listening on ")
        .unwrap_or_else(|| panic!("echo.py said {line:?}"))
        .to_string();
    Some((child, url))
}

#[test]
fn the_python_echo_bot_answers_in_the_room_through_the_webhook() {
    let Some((_python, url)) = start_echo_py("ECHO_PY_BEARER") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("zimfleet-webhook-py-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bots = dir.join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/bots/echo.toml"
    ))
    .unwrap();
    let hook = example.replace(
        "url = \"http://127.0.0.1:8787/\"",
        &format!("url = {url:?}\nbearer_env = \"ECHO_PY_BEARER\""),
    );
    assert_ne!(hook, example, "examples/bots/echo.toml names the endpoint");
    std::fs::write(bots.join("echo.toml"), hook).unwrap();
    let visitor = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/bots/visitor.toml"
    ))
    .unwrap();
    std::fs::write(
        bots.join("visitor.toml"),
        visitor.replace("first_after = \"1s\"", "first_after = \"200ms\""),
    )
    .unwrap();
    let log = dir.join("run.log");
    let child = Command::new(env!("CARGO_BIN_EXE_zimfleet"))
        .arg("run")
        .arg("--bots")
        .arg(&bots)
        .current_dir(&dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("ECHO_PY_BEARER", "py-bearer-token")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut run = KillOnDrop(child);
    let end = Instant::now() + Duration::from_secs(30);
    let wanted = "[lobby] py-echo: echo: hello from the visitor";
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(wanted) {
            break;
        }
        if let Ok(Some(status)) = run.0.try_wait() {
            panic!("zimfleet run exited ({status}); log:\n{text}");
        }
        assert!(
            Instant::now() < end,
            "no echo from echo.py within 30 s; log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let ok = Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < end, "zimfleet run did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{text}");
    assert!(!text.contains("webhook: event dropped"), "log:\n{text}");
    assert!(
        !text.contains("py-bearer-token"),
        "the bearer token never reaches a log line"
    );
}

#[actix_rt::test]
async fn token_warnings_are_posted_too() {
    let env = server().await;
    let fleet = env.fleet();
    let endpoint = Endpoint::start(ok_empty);
    let bot = webhook(&endpoint.url, "events = [\"token_will_expire\"]\n");
    // A 3 s token: the fleet warns 1 s ahead (renew_ahead) and renews it.
    let mut spec = env.spec("expiring", &[]);
    spec.token = env.tokens(3);
    fleet.add_account(spec, bot).unwrap();
    let posted = endpoint
        .wait("a token warning", Duration::from_secs(10), |p| {
            !p.is_empty()
        })
        .await;
    let warning = &posted[0].body;
    assert_eq!(warning["kind"], "token_will_expire");
    assert_eq!(warning["account"], "expiring");
    assert!(
        warning["remaining_secs"].as_u64().unwrap() <= 3,
        "{warning}"
    );
}
