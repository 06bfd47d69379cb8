//! Room incarnations end to end (docs/protocol.md, "Room incarnation"): `zimfleet server` as
//! a child process, a fleet (the library) and a `zimfleet loadtest --backend` run against it,
//! the server killed with SIGKILL mid-run and started again on the same port. Nothing the
//! clients could have received is lost or duplicated, every account and room comes back,
//! and each member hears the room's new incarnation (old != new).

mod client_support;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_support::{fleet_config, Events};
use serde_json::Value;
use zimfleet::bot::Bot;
use zimfleet::client::{AccountHandle, AccountSpec, EventKind, Fleet, RoomSpec};
use zimfleet::protocol::{ChatMessage, MessageType, Secret};
use zimfleet::server::ServerSettings;
use zimfleet::token::provider::GeneratedToken;

const SECRET: &str = "incarnation-test-secret-32-chars";
const ADMIN: &str = "incarnation-admin";
const ROOM: &str = "inc-room";
const MEMBERS: [&str; 3] = ["inc-a", "inc-b", "inc-c"];

/// `zimfleet server` on `listen`; answers the child and the address it printed. A restart
/// on a port the killed server held may find it busy for a moment: it tries again (bounded).
fn spawn_server(listen: &str) -> (Child, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zimfleet"))
            .args(["server", "--listen", listen])
            .env("ZIMFLEET__SERVER__ADMIN_TOKEN", ADMIN)
            .env("ZIMFLEET__SERVER__SERVER_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("zimfleet server starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        if let Some(addr) = line.trim().strip_prefix("zimfleet server listening on ") {
            return (child, addr.to_owned());
        }
        let _ = child.wait();
        assert!(
            Instant::now() < deadline,
            "the server did not start on {listen}: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's admin stats.
async fn stats(addr: &str) -> Option<Value> {
    let mut resp = awc::Client::default()
        .get(format!("http://{addr}/admin/stats"))
        .insert_header(("Authorization", format!("Bearer {ADMIN}")))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// Waits until the server's stats satisfy `pred`, at most `within`.
async fn wait_stats(addr: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let now = stats(addr).await;
        if let Some(s) = now.as_ref().filter(|s| pred(s)) {
            return s.clone();
        }
        assert!(Instant::now() < deadline, "stats never matched: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a child process to end, at most `within`; kills it past the deadline.
async fn wait_child(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("child status") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child did not end within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bot that records room messages and incarnation changes.
#[derive(Default)]
struct Recorder {
    messages: Mutex<Vec<ChatMessage>>,
    changes: Mutex<Vec<(u64, u64)>>,
}

impl Recorder {
    /// (incarnation, seq) of what it got in the room, in order.
    fn seqs(&self) -> Vec<(u64, u64)> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|m| m.conv_id == ROOM)
            .map(|m| (m.incarnation.unwrap_or(0), m.seq.unwrap_or(0)))
            .collect()
    }

    fn bodies_with(&self, prefix: &str) -> usize {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|m| m.body.starts_with(prefix))
            .count()
    }
}

impl Bot for Recorder {
    fn on_message(&self, _account: &AccountHandle, message: &ChatMessage) {
        self.messages.lock().unwrap().push(message.clone());
    }

    fn on_room_incarnation_changed(
        &self,
        _account: &AccountHandle,
        room_id: &str,
        old: u64,
        new: u64,
    ) {
        assert_eq!(room_id, ROOM);
        self.changes.lock().unwrap().push((old, new));
    }
}

/// Waits until every recorder holds `n` messages whose body starts with `prefix`.
async fn wait_bodies(bots: &[Arc<Recorder>], prefix: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while bots.iter().any(|b| b.bodies_with(prefix) < n) {
        assert!(
            Instant::now() < deadline,
            "not every member got {n} x {prefix:?}: {:?}",
            bots.iter().map(|b| b.seqs()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `n` room messages from `from`, paced past the client's 100 ms per-conversation
/// limit (6000004), each acknowledged before the next.
async fn send(from: &AccountHandle, prefix: &str, n: usize) {
    for i in 0..n {
        let body = format!("{prefix}{i}");
        from.send_room_message(ROOM, MessageType::Text, body)
            .await
            .expect("sent");
        tokio::time::sleep(Duration::from_millis(110)).await;
    }
}

/// The fleet's members of the room, each with its recorder.
fn fleet_members(fleet: &Fleet) -> (Vec<AccountHandle>, Vec<Arc<Recorder>>) {
    let app_id = ServerSettings::defaults().app_id;
    let mut handles = Vec::new();
    let mut bots = Vec::new();
    for user in MEMBERS {
        let bot = Arc::new(Recorder::default());
        let token = GeneratedToken::new(app_id, Secret::from(SECRET), 3600).expect("secret");
        let spec = AccountSpec {
            user_id: user.into(),
            user_name: user.into(),
            device_id: None,
            token: Arc::new(token),
            rooms: vec![RoomSpec::new(ROOM)],
        };
        handles.push(fleet.add_account(spec, bot.clone()).expect("added"));
        bots.push(bot);
    }
    (handles, bots)
}

/// The load test against `addr`, as a child process writing its report to `out`.
fn spawn_loadtest(addr: &str, out: &PathBuf) -> Child {
    let backend = format!("ws://{addr}/ws");
    Command::new(env!("CARGO_BIN_EXE_zimfleet"))
        .args([
            "loadtest",
            "--backend",
            &backend,
            "--token-source",
            "generated",
        ])
        .args(["--accounts", "40", "--rate", "400", "--room-size", "10"])
        .args(["--msg-rate", "2", "--duration", "8s", "--quiet"])
        .args(["--recovery-timeout", "20s", "--drain", "5s"])
        .arg("--out")
        .arg(out)
        .env("ZIMFLEET_SERVER_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped()) // the table (a few KiB: it fits the pipe)
        .stderr(Stdio::piped())
        .spawn()
        .expect("zimfleet loadtest starts")
}

fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key}: {report}"))
}

/// Each member hears the room's new incarnation (old < new) and is back in the room.
async fn wait_new_incarnation(events: &mut Events) {
    for user in MEMBERS {
        let user_ = user.to_owned();
        let changed = events
            .wait(Duration::from_secs(20), move |e| {
                e.account == user_ && matches!(e.kind, EventKind::RoomIncarnationChanged { .. })
            })
            .await;
        match &changed.kind {
            EventKind::RoomIncarnationChanged { room_id, old, new } => {
                assert_eq!(room_id, ROOM);
                assert_ne!(old, new);
                assert!(new > old, "a later incarnation is greater");
            }
            other => panic!("{other:?}"),
        }
        events.room(user, ROOM, (2, 0)).await;
    }
}

/// Every member got the old room's 12 messages and the new room's 5, each once, the new
/// ones from seq 1 (below the old high-water mark), and heard of the change once.
fn assert_both_incarnations_delivered(bots: &[Arc<Recorder>]) {
    for bot in bots {
        let seqs = bot.seqs();
        let old_inc = seqs[0].0;
        let of = |old: bool| -> Vec<(u64, u64)> {
            let kept = seqs.iter().filter(|s| (s.0 == old_inc) == old);
            kept.copied().collect()
        };
        let (old, new) = (of(true), of(false));
        let numbers = |v: &[(u64, u64)]| v.iter().map(|s| s.1).collect::<Vec<_>>();
        assert_eq!(numbers(&old), (1..=12).collect::<Vec<_>>(), "{seqs:?}");
        assert!(new.iter().all(|s| s.0 > old_inc), "{seqs:?}");
        assert_eq!(numbers(&new), (1..=5).collect::<Vec<_>>(), "{seqs:?}");
        let changes = bot.changes.lock().unwrap().clone();
        assert_eq!(changes, vec![(old_inc, new[0].0)]);
    }
}

/// Waits for the load test to end and checks its report: nothing lost or duplicated, every
/// account back, every member of its 4 rooms of 10 told of the new incarnation.
async fn assert_loadtest_passed(loadtest: &mut Child, out: &PathBuf) {
    let status = wait_child(loadtest, Duration::from_secs(90)).await;
    let mut stderr = String::new();
    if let Some(mut e) = loadtest.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    let text = std::fs::read_to_string(out);
    let report: Value =
        serde_json::from_str(&text.unwrap_or_else(|e| panic!("no report ({e}): {stderr}")))
            .expect("report JSON");
    let counts = &report["counts"];
    assert_eq!(status.code(), Some(0), "{stderr}\n{counts}");
    for (key, want) in [
        ("messages_missing", 0),
        ("messages_duplicated", 0),
        ("accounts_fully_connected", 40),
        ("room_incarnations_changed", 40),
        ("room_gave_up", 0),
    ] {
        assert_eq!(count(&report, key), want, "{key}: {counts}");
    }
    assert!(count(&report, "messages_sent") > 0, "{counts}");
    // The table says what the restart cost: lost with the backend, rooms back as new ones.
    let mut table = String::new();
    if let Some(mut o) = loadtest.stdout.take() {
        use std::io::Read as _;
        let _ = o.read_to_string(&mut table);
    }
    let line = table
        .lines()
        .find(|l| l.contains("lost with the backend / rooms new incarnation"))
        .unwrap_or_else(|| panic!("{table}"));
    let lost = count(&report, "messages_lost_with_backend");
    assert!(line.ends_with(&format!(" {lost} / 40")), "{line}");
}

#[actix_rt::test]
async fn a_backend_killed_and_restarted_loses_and_duplicates_nothing_and_rooms_are_new_incarnations(
) {
    let (mut server, addr) = spawn_server("127.0.0.1:0");
    let fleet = Fleet::start(fleet_config(&format!("ws://{addr}/ws")));
    let mut events = Events::new(&fleet);
    let (handles, bots) = fleet_members(&fleet);
    for user in MEMBERS {
        events.room(user, ROOM, (2, 0)).await;
    }
    // The old incarnation's messages: every member's high-water mark is at 12.
    send(&handles[0], "old-", 12).await;
    wait_bodies(&bots, "old-", 12, Duration::from_secs(10)).await;

    let out =
        std::env::temp_dir().join(format!("zimfleet-incarnation-{}.json", std::process::id()));
    let mut loadtest = spawn_loadtest(&addr, &out);
    // Mid-run: the load test's 40 accounts online and their messages flowing.
    let before = wait_stats(&addr, Duration::from_secs(30), |s| {
        s["users_online"].as_u64() >= Some(43) && s["messages_routed"].as_u64() >= Some(200)
    })
    .await;
    assert!(before["rooms"].as_u64() >= Some(5), "{before}");
    server.kill().expect("SIGKILL");
    server.wait().expect("killed");
    let (mut server, again) = spawn_server(&addr);
    assert_eq!(again, addr, "restarted on the same port");

    wait_new_incarnation(&mut events).await;
    // Messages of the new room arrive although their seqs are below the old mark of 12.
    send(&handles[1], "new-", 5).await;
    wait_bodies(&bots, "new-", 5, Duration::from_secs(10)).await;
    assert_both_incarnations_delivered(&bots);
    assert_loadtest_passed(&mut loadtest, &out).await;
    // The fleet's members are all back too, and only they are online now.
    let statuses = fleet.status().await;
    assert!(statuses
        .iter()
        .all(|s| s.state.as_i32() == 2 && s.rooms.iter().all(|r| r.state.as_i32() == 2)));
    let after = stats(&addr).await.expect("the restarted server answers");
    assert_eq!(after["users_online"].as_u64(), Some(3), "{after}");

    fleet.shutdown(Duration::from_secs(5)).await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(&out);
}

#[actix_rt::test]
async fn a_room_destroyed_and_entered_again_is_a_new_incarnation_on_a_live_server() {
    let env = client_support::server().await;
    let fleet = env.fleet();
    let mut events = Events::new(&fleet);
    let (a_bot, b_bot) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let a = fleet.add_account(env.spec("inc-a", &[ROOM]), a_bot.clone());
    let b = fleet.add_account(env.spec("inc-b", &[ROOM]), b_bot.clone());
    let (a, b) = (a.expect("added"), b.expect("added"));
    events.room("inc-a", ROOM, (2, 0)).await;
    events.room("inc-b", ROOM, (2, 0)).await;
    let bots = [a_bot.clone(), b_bot.clone()];
    // The send reply names the incarnation of the room that numbered the message.
    let reply = a
        .send_room_message(ROOM, MessageType::Text, "old-0".into())
        .await
        .expect("sent");
    let first = reply
        .incarnation
        .expect("a room message's reply has an incarnation");
    wait_bodies(&bots, "old-", 1, Duration::from_secs(5)).await;
    assert_eq!(a_bot.seqs(), [(first, 1)]);
    // Another room's entry answers an incarnation of its own, never the same one.
    let other = a
        .enter_room(RoomSpec::new("inc-other"))
        .await
        .expect("entered");
    assert!(other.incarnation.is_some_and(|i| i > first), "{other:?}");

    assert!(env.admin.destroy_room(ROOM));
    for user in ["inc-a", "inc-b"] {
        events.room(user, ROOM, (0, 3)).await; // RoomNotExist, then the policy enters again
        let user_ = user.to_owned();
        let changed = events
            .wait(Duration::from_secs(5), move |e| {
                e.account == user_ && matches!(e.kind, EventKind::RoomIncarnationChanged { .. })
            })
            .await;
        assert!(
            matches!(changed.kind, EventKind::RoomIncarnationChanged { old, new, .. } if old == first && new > other.incarnation.unwrap()),
            "{changed:?}"
        );
        events.room(user, ROOM, (2, 0)).await;
    }
    send(&b, "new-", 2).await;
    wait_bodies(&bots, "new-", 2, Duration::from_secs(5)).await;
    for bot in &bots {
        let seqs = bot.seqs();
        assert_eq!(seqs.len(), 3, "{seqs:?}");
        assert_eq!(
            (seqs[1].1, seqs[2].1),
            (1, 2),
            "the new room from seq 1: {seqs:?}"
        );
        assert!(seqs[1].0 > first && seqs[1].0 == seqs[2].0, "{seqs:?}");
        assert_eq!(*bot.changes.lock().unwrap(), [(first, seqs[1].0)]);
    }
    fleet.shutdown(Duration::from_secs(5)).await;
}
