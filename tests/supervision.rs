//! The supervision rules of the actor tree (docs/design.md, "The actor tree") against the
//! real reference server: room actors restarted by ConnectTimeout and by RoomNotExist with
//! each policy, a spent restart budget, a terminal cause that stops every room actor with
//! none restarting, and a late reply to a stopped room dropped.

mod client_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client_support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zimfleet::bot::Idle;
use zimfleet::client::{
    EventKind, Fleet, FleetMetrics, OnConnectTimeout, OnRoomNotExist, RecoveryPolicy, RoomEntry,
    RoomSpec,
};
use zimfleet::protocol::{ErrorCode, KickoutReason};

/// Waits (with a deadline) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < end, "not within 5 s: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Room actors alive now.
fn alive(m: &FleetMetrics) -> u64 {
    m.room_actors_started.get() - m.room_actors_stopped.get()
}

fn on_timeout(room: &str, policy: OnConnectTimeout) -> RoomSpec {
    RoomSpec {
        recovery: RecoveryPolicy {
            on_connect_timeout: policy,
            ..RecoveryPolicy::default()
        },
        ..RoomSpec::new(room)
    }
}

fn on_not_exist(room: &str, policy: OnRoomNotExist) -> RoomSpec {
    RoomSpec {
        recovery: RecoveryPolicy {
            on_room_not_exist: policy,
            ..RecoveryPolicy::default()
        },
        ..RoomSpec::new(room)
    }
}

async fn gave_up(ev: &mut Events, account: &str, room: &str) -> String {
    let (account, room) = (account.to_owned(), room.to_owned());
    let e = ev
        .wait(Duration::from_secs(5), move |e| {
            e.account == account
                && matches!(&e.kind, EventKind::RoomGaveUp { room_id, .. } if *room_id == room)
        })
        .await;
    match &e.kind {
        EventKind::RoomGaveUp { reason, .. } => reason.clone(),
        _ => unreachable!(),
    }
}

#[actix_rt::test]
async fn connect_timeout_restarts_the_room_actor_by_its_policy() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    // a keeper stays in each room so it outlives the evicted membership
    fleet
        .add_account(env.spec("keep", &["tj", "te", "tl"]), Arc::new(Idle))
        .unwrap();
    let bot = Arc::new(RecordingBot::default());
    let mut spec = env.spec("ct", &[]);
    spec.rooms = vec![
        on_timeout("tj", OnConnectTimeout::Join),
        on_timeout("te", OnConnectTimeout::Enter),
        on_timeout("tl", OnConnectTimeout::Leave),
    ];
    for r in ["tj", "te", "tl"] {
        ev.room("keep", r, (2, 0)).await;
    }
    fleet.add_account(spec, bot.clone()).unwrap();
    for r in ["tj", "te", "tl"] {
        ev.room("ct", r, (2, 0)).await;
    }
    let m = fleet.metrics();
    assert_eq!((m.room_restarts.get(), alive(&m)), (0, 6));

    for r in ["tj", "te", "tl"] {
        assert!(env.admin.evict(r, "ct"), "{r}");
    }
    for r in ["tj", "te"] {
        ev.room("ct", r, (0, 9)).await;
        ev.room("ct", r, (2, 0)).await;
    }
    ev.room("ct", "tl", (0, 9)).await;
    assert_eq!(
        gave_up(&mut ev, "ct", "tl").await,
        "recovery policy is leave"
    );

    for r in ["tj", "te"] {
        assert_eq!(
            ev.room_pairs("ct", r),
            [(1, 6), (2, 0), (0, 9), (1, 6), (2, 0)],
            "{r}"
        );
    }
    assert_eq!(ev.room_pairs("ct", "tl"), [(1, 6), (2, 0), (0, 9)]);
    assert_eq!(*bot.gave_up.lock().unwrap(), ["tl"]);
    // two supervised restarts; the room that left stopped for good
    assert_eq!(m.room_restarts.get(), 2);
    until("the room that left stops", || alive(&m) == 5).await;
    assert_eq!(m.room_recovered_after_timeout.get(), 2);
    let status = fleet.account("ct").unwrap().state().await.unwrap();
    let rooms: Vec<(&str, i32)> = status
        .rooms
        .iter()
        .map(|r| (r.room_id.as_str(), r.state.as_i32()))
        .collect();
    assert_eq!(rooms, [("tj", 2), ("te", 2)]);
}

#[actix_rt::test]
async fn room_not_exist_restarts_the_room_actor_by_its_policy() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let mut spec = env.spec("nx", &[]);
    spec.rooms = vec![
        on_not_exist("nc", OnRoomNotExist::Create),
        on_not_exist("ne", OnRoomNotExist::Enter),
        on_not_exist("nl", OnRoomNotExist::Leave),
    ];
    fleet.add_account(spec, bot.clone()).unwrap();
    for r in ["nc", "ne", "nl"] {
        ev.room("nx", r, (2, 0)).await;
    }
    for r in ["nc", "ne", "nl"] {
        assert!(env.admin.destroy_room(r), "{r}");
    }
    for r in ["nc", "ne"] {
        ev.room("nx", r, (0, 3)).await;
        ev.room("nx", r, (2, 0)).await;
    }
    assert_eq!(
        gave_up(&mut ev, "nx", "nl").await,
        "recovery policy is leave"
    );

    // create restarts with createRoom (ActiveCreate), enter with enterRoom (ActiveEnter)
    assert_eq!(
        ev.room_pairs("nx", "nc"),
        [(1, 6), (2, 0), (0, 3), (1, 4), (2, 0)]
    );
    assert_eq!(
        ev.room_pairs("nx", "ne"),
        [(1, 6), (2, 0), (0, 3), (1, 6), (2, 0)]
    );
    assert_eq!(ev.room_pairs("nx", "nl"), [(1, 6), (2, 0), (0, 3)]);
    let m = fleet.metrics();
    assert_eq!(m.room_restarts.get(), 2);
    assert_eq!(m.room_recovered_after_not_exist.get(), 2);
    until("the room that left stops", || alive(&m) == 2).await;
    assert_eq!(*bot.gave_up.lock().unwrap(), ["nl"]);
}

#[actix_rt::test]
async fn a_spent_budget_stops_the_room_actor_for_good() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    fleet
        .add_account(env.spec("keep2", &["bx"]), Arc::new(Idle))
        .unwrap();
    ev.room("keep2", "bx", (2, 0)).await;
    let mut spec = env.spec("bu", &[]);
    spec.rooms.push(RoomSpec {
        recovery: RecoveryPolicy {
            max_restarts: 2,
            ..RecoveryPolicy::default()
        },
        ..RoomSpec::new("bx")
    });
    fleet.add_account(spec, Arc::new(Idle)).unwrap();
    ev.room("bu", "bx", (2, 0)).await;
    for _ in 0..2 {
        assert!(env.admin.evict("bx", "bu"));
        ev.room("bu", "bx", (0, 9)).await;
        ev.room("bu", "bx", (2, 0)).await;
    }
    assert!(env.admin.evict("bx", "bu"));
    ev.room("bu", "bx", (0, 9)).await;
    assert_eq!(gave_up(&mut ev, "bu", "bx").await, "restart budget spent");
    let m = fleet.metrics();
    assert_eq!(m.room_restarts.get(), 2);
    assert_eq!(m.room_recovery_gave_up.get(), 1);
    until("the room actor stops", || alive(&m) == 1).await;
    let status = fleet.account("bu").unwrap().state().await.unwrap();
    assert!(status.rooms.is_empty());
    assert_eq!(status.state.as_i32(), 2, "the account stays connected");
}

#[actix_rt::test]
async fn a_terminal_cause_stops_every_room_actor_and_none_restarts() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let rooms = ["k1", "k2", "k3"];
    fleet
        .add_account(env.spec("tk", &rooms), Arc::new(Idle))
        .unwrap();
    fleet
        .add_account(env.spec("tl", &rooms), Arc::new(Idle))
        .unwrap();
    for r in rooms {
        ev.room("tk", r, (2, 0)).await;
        ev.room("tl", r, (2, 0)).await;
    }
    let m = fleet.metrics();
    assert_eq!(alive(&m), 6);

    // kicked out: every room ends with (Disconnected, NetworkDisconnected)
    assert!(env.admin.kickout("tk", KickoutReason::KickedOut));
    ev.conn("tk", (0, 4)).await;
    for r in rooms {
        ev.room("tk", r, (0, 2)).await;
        assert_eq!(ev.room_pairs("tk", r), [(1, 6), (2, 0), (0, 2)], "{r}");
    }
    until("tk's room actors stop", || alive(&m) == 3).await;
    // logout: every room ends with (Disconnected, Success)
    fleet.account("tl").unwrap().logout().await.unwrap();
    ev.conn("tl", (0, 0)).await;
    for r in rooms {
        assert_eq!(ev.room_pairs("tl", r), [(1, 6), (2, 0), (0, 0)], "{r}");
    }
    until("tl's room actors stop", || alive(&m) == 0).await;
    assert_eq!(m.room_actors_started.get(), 6);
    assert_eq!(m.room_restarts.get(), 0, "nothing restarted");
    let status = fleet.account("tk").unwrap().state().await.unwrap();
    assert_eq!(status.state.as_i32(), 0);
    assert!(status.ended.is_some());
    assert!(status.rooms.is_empty());
    // tl left its rooms; tk's memberships wait for the server's room session to expire
    assert_eq!(env.admin.stats().members, 3);
}

/// A TCP relay in front of the server that can hold back what the server sends (a slow
/// network on the way back), so a reply arrives after its request timed out.
struct Relay {
    addr: std::net::SocketAddr,
    hold: Arc<AtomicBool>,
}

impl Relay {
    async fn start(server: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = Arc::new(AtomicBool::new(false));
        let held = hold.clone();
        actix_rt::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(server).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                actix_rt::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut uw).await;
                });
                let held = held.clone();
                actix_rt::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match ur.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        // bounded by the test, which always lets go within a second
                        let until = Instant::now() + Duration::from_secs(5);
                        while held.load(Ordering::Acquire) && Instant::now() < until {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Relay { addr, hold }
    }
}

#[actix_rt::test]
async fn a_late_reply_to_a_stopped_room_is_dropped() {
    let env = server().await;
    let relay = Relay::start(env.server.local_addr()).await;
    let mut config = fleet_config(&format!("ws://{}/ws", relay.addr));
    config.timings.room_request_timeout = Duration::from_millis(50);
    config.timings.heartbeat_timeout = Duration::from_secs(2);
    let fleet = Fleet::start(config);
    let mut ev = Events::new(&fleet);
    let a = fleet
        .add_account(env.spec("late", &[]), Arc::new(Idle))
        .unwrap();
    ev.conn("late", (2, 0)).await;

    // The server creates the room and answers, but the answer is held on the way back: the
    // entry times out (CreateFailed, 6000105), the room ends and its actor stops.
    relay.hold.store(true, Ordering::Release);
    let spec = RoomSpec {
        entry: RoomEntry::Create,
        ..RoomSpec::new("lr")
    };
    let err = a.enter_room(spec).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TIMEOUT, "{err}");
    ev.room("late", "lr", (0, 5)).await;
    let m = fleet.metrics();
    until("the room actor stops", || alive(&m) == 0).await;
    relay.hold.store(false, Ordering::Release);

    // A request after it on the same link is answered after it: once this answer is here the
    // late reply was handled, and dropped.
    let members = a.room_members("lr").await.unwrap();
    assert_eq!(members.len(), 1, "the server did make us a member");
    assert_eq!(ev.room_pairs("late", "lr"), [(1, 4), (0, 5)]);
    let status = a.state().await.unwrap();
    assert!(status.rooms.is_empty());
    assert_eq!((status.state.as_i32(), m.room_restarts.get()), (2, 0));
    assert_eq!(
        ev.conn_pairs("late"),
        [(1, 1), (2, 0)],
        "the link stayed up"
    );
}
