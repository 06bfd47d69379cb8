//! The client API against the real reference server: rooms, sends and their errors, peers,
//! bots, events, status, logout, shutdown, chaos, retry window, room recovery policy.

mod client_support;

use std::sync::Arc;
use std::time::Duration;

use client_support::*;
use zimfleet::bot::Idle;
use zimfleet::client::{
    ClientError, EventKind, Fleet, OnRoomNotExist, RecoveryPolicy, RoomEntry, RoomSpec,
};
use zimfleet::protocol::{ErrorCode, MessageType, RoomKickoutReason};

fn room(id: &str, entry: RoomEntry) -> RoomSpec {
    RoomSpec {
        entry,
        ..RoomSpec::new(id)
    }
}

#[actix_rt::test]
async fn add_account_refuses_bad_and_duplicate_ids() {
    let env = server().await;
    let fleet = env.fleet();
    match fleet.add_account(env.spec("a b", &[]), Arc::new(Idle)) {
        Err(ClientError::InvalidUserId(id)) => assert_eq!(id, "a b"),
        other => panic!("{:?}", other.map(|h| h.user_id().to_owned())),
    }
    match fleet.add_account(env.spec(&"x".repeat(33), &[]), Arc::new(Idle)) {
        Err(ClientError::InvalidUserId(_)) => {}
        other => panic!("{:?}", other.map(|h| h.user_id().to_owned())),
    }
    fleet
        .add_account(env.spec("dup", &[]), Arc::new(Idle))
        .unwrap();
    match fleet.add_account(env.spec("dup", &[]), Arc::new(Idle)) {
        Err(e @ ClientError::DuplicateAccount(_)) => {
            assert_eq!(e.to_string(), "account dup is already in the fleet")
        }
        other => panic!("{:?}", other.map(|h| h.user_id().to_owned())),
    }
    assert!(fleet.account("dup").is_some());
    assert!(fleet.account("nobody").is_none());
}

#[actix_rt::test]
async fn rooms_create_join_members_leave_and_their_errors() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let a = fleet
        .add_account(env.spec("ra", &[]), Arc::new(Idle))
        .unwrap();
    let b = fleet
        .add_account(env.spec("rb", &[]), Arc::new(Idle))
        .unwrap();
    ev.conn("ra", (2, 0)).await;
    ev.conn("rb", (2, 0)).await;

    let info = a.enter_room(room("cr", RoomEntry::Create)).await.unwrap();
    assert_eq!(info.room_id, "cr");
    let err = b
        .enter_room(room("cr", RoomEntry::Create))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ROOM_ALREADY_EXISTS);
    b.enter_room(room("cr", RoomEntry::Join)).await.unwrap();
    let err = b.enter_room(room("cr", RoomEntry::Join)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ALREADY_IN_ROOM);
    let err = b
        .enter_room(room("nowhere", RoomEntry::Join))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ROOM_NOT_EXIST);
    let err = b
        .enter_room(room("bad room", RoomEntry::Join))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::INVALID_PARAMETER);

    let mut members: Vec<String> = a
        .room_members("cr")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    members.sort();
    assert_eq!(members, ["ra", "rb"]);

    b.leave_room("cr").await.unwrap();
    let err = b.leave_room("cr").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_IN_ROOM);
    ev.room("rb", "cr", (0, 0)).await;
    assert_eq!(ev.room_pairs("ra", "cr"), [(1, 4), (2, 0)]);
    assert_eq!(
        ev.room_pairs("rb", "cr"),
        [(1, 4), (0, 5), (1, 6), (2, 0), (0, 0)]
    );
    assert_eq!(ev.room_pairs("rb", "nowhere"), [(1, 6), (0, 3)]);
    let status = b.state().await.unwrap();
    assert!(status.rooms.is_empty());
    let status = a.state().await.unwrap();
    assert_eq!(status.rooms.len(), 1);
    assert_eq!(status.rooms[0].state.as_i32(), 2);
}

#[actix_rt::test]
async fn sends_answer_replies_or_exact_errors() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let a = fleet
        .add_account(env.spec("sa", &["sr"]), Arc::new(Idle))
        .unwrap();
    fleet.add_account(env.spec("sb", &[]), bot.clone()).unwrap();
    ev.room("sa", "sr", (2, 0)).await;
    ev.conn("sb", (2, 0)).await;

    let reply = a
        .send_room_message("sr", MessageType::Text, "hello".into())
        .await
        .unwrap();
    assert_eq!(reply.seq, Some(1));
    let err = a
        .send_room_message("sr", MessageType::Text, "again".into())
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::CLIENT_FREQUENCY_LIMIT,
        "100 ms per conversation"
    );
    let err = a
        .send_room_message("sr", MessageType::Text, "x".repeat(49_153))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::INVALID_PARAMETER);
    let err = a
        .send_room_message("nowhere", MessageType::Text, "x".into())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::MESSAGE_TARGET_NOT_EXIST);

    let reply = a
        .send_peer_message("sb", MessageType::Custom, "psst".into())
        .await
        .unwrap();
    assert_eq!(reply.seq, None);
    bot.wait_messages(Duration::from_secs(2), |m| m.len() == 1)
        .await;
    let got = bot.messages.lock().unwrap()[0].clone();
    assert_eq!((got.from.as_str(), got.body.as_str()), ("sa", "psst"));
    assert_eq!(got.msg_type, MessageType::Custom);

    // the request shaper: 50 at once, then 6000004
    let mut limited = 0;
    for i in 0..60 {
        if let Err(e) = a
            .send_peer_message(&format!("p{i}"), MessageType::Text, "x".into())
            .await
        {
            if e.code == ErrorCode::CLIENT_FREQUENCY_LIMIT {
                limited += 1;
            }
        }
    }
    assert!(limited >= 5, "shaper limited only {limited}");
    let m = fleet.metrics();
    assert!(m.messages_sent.get() >= 2);
}

#[actix_rt::test]
async fn events_serialise_to_one_json_line_and_a_panicking_bot_is_caught() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot {
        panic_on_connection: true,
        ..Default::default()
    });
    let a = fleet.add_account(env.spec("ev", &["er"]), bot).unwrap();
    let connected = ev.conn("ev", (2, 0)).await;
    let line = serde_json::to_string(&*connected).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["account"], "ev");
    assert_eq!(v["kind"], "connection");
    assert_eq!(
        (v["state"].as_i64(), v["event"].as_i64()),
        (Some(2), Some(0))
    );
    assert!(v["ext"].is_object());
    assert!(v["ts_ms"].as_u64().unwrap() > 1_700_000_000_000);
    let entered = ev.room("ev", "er", (2, 0)).await;
    let v = serde_json::to_value(&*entered).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["room_id"].as_str()),
        (Some("room"), Some("er"))
    );
    assert!(!line.contains('\n'));
    // the bot panicked on (1,1) and (2,0); the account went on
    assert_eq!(fleet.metrics().handler_panics.get(), 2);
    assert_eq!(a.state().await.unwrap().state.as_i32(), 2);
}

#[actix_rt::test]
async fn logout_leaves_rooms_and_later_calls_answer_not_logged_in() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let a = fleet
        .add_account(env.spec("lo", &["lr"]), Arc::new(Idle))
        .unwrap();
    ev.room("lo", "lr", (2, 0)).await;
    a.logout().await.unwrap();
    ev.conn("lo", (0, 0)).await;
    assert_eq!(ev.conn_pairs("lo"), [(1, 1), (2, 0), (0, 0)]);
    assert_eq!(ev.room_pairs("lo", "lr"), [(1, 6), (2, 0), (0, 0)]);
    let err = a
        .send_room_message("lr", MessageType::Text, "x".into())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_LOGGED_IN);
    let status = a.state().await.unwrap();
    assert_eq!(
        (status.state.as_i32(), status.ended.as_deref()),
        (0, Some("logout"))
    );
    assert_eq!(env.admin.stats().members, 0);
    assert_eq!(fleet.metrics().logged_out.get(), 1);
}

#[actix_rt::test]
async fn status_and_shutdown_cover_every_account() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    for u in ["s1", "s2", "s3"] {
        fleet
            .add_account(env.spec(u, &["sr"]), Arc::new(Idle))
            .unwrap();
    }
    for u in ["s1", "s2", "s3"] {
        ev.room(u, "sr", (2, 0)).await;
    }
    let status = fleet.status().await;
    let ids: Vec<&str> = status.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2", "s3"]);
    assert!(status
        .iter()
        .all(|s| s.state.as_i32() == 2 && s.rooms.len() == 1));
    let report = fleet.shutdown(Duration::from_secs(2)).await;
    assert_eq!((report.logged_out, report.timed_out), (3, 0));
    assert_eq!(env.admin.stats().users_online, 0);
    match fleet.add_account(env.spec("late", &[]), Arc::new(Idle)) {
        Err(e @ ClientError::FleetStopped) => assert_eq!(e.to_string(), "the fleet has stopped"),
        other => panic!("{:?}", other.map(|h| h.user_id().to_owned())),
    }
}

#[actix_rt::test]
async fn chaos_drop_and_offline_recover_like_a_network_loss() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let a = fleet
        .add_account(env.spec("ch", &["cr"]), Arc::new(Idle))
        .unwrap();
    ev.room("ch", "cr", (2, 0)).await;
    a.chaos_drop();
    ev.conn("ch", (3, 3)).await;
    ev.conn("ch", (2, 0)).await;
    ev.room("ch", "cr", (2, 0)).await;

    a.chaos_offline(Duration::from_millis(400));
    ev.conn("ch", (3, 3)).await;
    let status = a.state().await.unwrap();
    assert_eq!(status.state.as_i32(), 3);
    assert_eq!(status.rooms[0].state.as_i32(), 1);
    ev.conn("ch", (2, 0)).await;
    ev.room("ch", "cr", (2, 0)).await;
    assert_eq!(
        ev.conn_pairs("ch"),
        [(1, 1), (2, 0), (3, 3), (2, 0), (3, 3), (2, 0)]
    );
    assert_eq!(
        ev.room_pairs("ch", "cr"),
        [(1, 6), (2, 0), (1, 1), (2, 0), (1, 1), (2, 0)]
    );
    assert_eq!(fleet.metrics().disconnects.get(), 2);
}

#[actix_rt::test]
async fn a_configured_retry_window_ends_with_login_timeout() {
    // a port nobody listens on
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let env = server().await;
    let mut config = fleet_config(&url);
    config.retry.give_up_after = Some(Duration::from_millis(300));
    let fleet = Fleet::start(config);
    let mut ev = Events::new(&fleet);
    fleet
        .add_account(env.spec("gu", &["gr"]), Arc::new(Idle))
        .unwrap();
    ev.conn("gu", (0, 2)).await;
    assert_eq!(ev.conn_pairs("gu"), [(1, 1), (0, 2)]);
    assert_eq!(ev.room_pairs("gu", "gr"), Vec::<(i32, i32)>::new());
}

#[actix_rt::test]
async fn room_kickouts_and_the_leave_policy() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let mut spec = env.spec("kk", &["k1", "k2"]);
    spec.rooms.push(RoomSpec {
        recovery: RecoveryPolicy {
            on_room_not_exist: OnRoomNotExist::Leave,
            ..RecoveryPolicy::default()
        },
        ..RoomSpec::new("k3")
    });
    fleet.add_account(spec, bot.clone()).unwrap();
    for r in ["k1", "k2", "k3"] {
        ev.room("kk", r, (2, 0)).await;
    }
    assert!(env.admin.kick("k1", "kk"));
    ev.room("kk", "k1", (0, 8)).await;
    // destroyed while connected: RoomNotExist, then the default policy enters again
    assert!(env.admin.destroy_room("k2"));
    ev.room("kk", "k2", (0, 3)).await;
    ev.room("kk", "k2", (2, 0)).await;
    // policy leave: the room stays out and the bot is told
    assert!(env.admin.destroy_room("k3"));
    ev.wait(
        Duration::from_secs(2),
        |e| matches!(&e.kind, EventKind::RoomGaveUp { room_id, .. } if room_id == "k3"),
    )
    .await;
    assert_eq!(ev.room_pairs("kk", "k1"), [(1, 6), (2, 0), (0, 8)]);
    assert_eq!(
        ev.room_pairs("kk", "k2"),
        [(1, 6), (2, 0), (0, 3), (1, 6), (2, 0)]
    );
    assert_eq!(ev.room_pairs("kk", "k3"), [(1, 6), (2, 0), (0, 3)]);
    assert_eq!(*bot.gave_up.lock().unwrap(), ["k3"]);
    let _ = RoomKickoutReason::Kicked;
}

#[actix_rt::test]
async fn renew_token_by_hand_and_its_500ms_limit() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let a = fleet
        .add_account(env.spec("rn", &[]), Arc::new(Idle))
        .unwrap();
    ev.conn("rn", (2, 0)).await;
    let (token, expire) = env.admin.mint_token("rn", 7200).unwrap();
    assert_eq!(a.renew_token(token.clone()).await.unwrap(), expire);
    let err = a.renew_token(token).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CLIENT_FREQUENCY_LIMIT);
    tokio::time::sleep(Duration::from_millis(510)).await;
    let (other, _) = env.admin.mint_token("someone-else", 7200).unwrap();
    let err = a.renew_token(other).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TOKEN_INVALID);
}

#[actix_rt::test]
async fn a_spent_restart_budget_keeps_the_room_out_and_tells_the_bot() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let mut spec = env.spec("bud", &[]);
    spec.rooms.push(RoomSpec {
        recovery: RecoveryPolicy {
            max_restarts: 1,
            ..RecoveryPolicy::default()
        },
        ..RoomSpec::new("br")
    });
    fleet.add_account(spec, bot.clone()).unwrap();
    ev.room("bud", "br", (2, 0)).await;
    // first loss: restarted (enter creates the room again)
    assert!(env.admin.destroy_room("br"));
    ev.room("bud", "br", (0, 3)).await;
    ev.room("bud", "br", (2, 0)).await;
    // second loss inside the window: budget spent
    assert!(env.admin.destroy_room("br"));
    let gave_up = ev
        .wait(
            Duration::from_secs(2),
            |e| matches!(&e.kind, EventKind::RoomGaveUp { room_id, .. } if room_id == "br"),
        )
        .await;
    match &gave_up.kind {
        EventKind::RoomGaveUp { reason, .. } => assert_eq!(reason, "restart budget spent"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ev.room_pairs("bud", "br"),
        [(1, 6), (2, 0), (0, 3), (1, 6), (2, 0), (0, 3)]
    );
    assert_eq!(*bot.gave_up.lock().unwrap(), ["br"]);
    assert_eq!(fleet.metrics().room_recovery_gave_up.get(), 1);
    let status = fleet.account("bud").unwrap().state().await.unwrap();
    assert!(status.rooms.is_empty());
}

#[actix_rt::test]
async fn members_joining_reach_the_bot_and_enter_during_connecting_waits() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let a = fleet.add_account(env.spec("mj", &[]), bot.clone()).unwrap();
    // called before the login is through: entered once Connected
    let info = a.enter_room(room("mr", RoomEntry::Enter)).await.unwrap();
    assert_eq!(info.room_id, "mr");
    ev.conn("mj", (2, 0)).await;
    fleet
        .add_account(env.spec("mk", &["mr"]), Arc::new(Idle))
        .unwrap();
    ev.room("mk", "mr", (2, 0)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while bot.joined.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no member join seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(bot.joined.lock().unwrap()[0].user_id, "mk");
    assert_eq!(ev.room_pairs("mj", "mr"), [(1, 6), (2, 0)]);
}

#[actix_rt::test]
async fn a_room_send_made_during_a_long_outage_waits_for_the_rejoin() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let keeper = Arc::new(RecordingBot::default());
    fleet
        .add_account(env.spec("kp", &["lr"]), keeper.clone())
        .unwrap();
    let a = fleet
        .add_account(env.spec("lw", &["lr"]), Arc::new(Idle))
        .unwrap();
    ev.room("kp", "lr", (2, 0)).await;
    ev.room("lw", "lr", (2, 0)).await;

    env.admin.blackhole(
        zimfleet::server::FaultTarget::Users(vec!["lw".into()]),
        Duration::from_millis(1600),
    );
    ev.conn("lw", (3, 3)).await;
    // sent while Reconnecting; the membership expires meanwhile (room session 1 s)
    let reply = a
        .send_room_message("lr", MessageType::Text, "while away".into())
        .await
        .expect("sent after the room is back, not refused with 6000321");
    assert!(reply.seq.is_some());
    ev.room("lw", "lr", (2, 0)).await;
    assert_eq!(
        ev.room_pairs("lw", "lr"),
        [(1, 6), (2, 0), (1, 1), (0, 9), (1, 6), (2, 0)]
    );
    keeper
        .wait_messages(Duration::from_secs(2), |m| {
            m.iter().any(|m| m.body == "while away")
        })
        .await;
    assert_eq!(keeper.bodies("lr"), ["while away"]);
}

#[actix_rt::test]
async fn a_large_message_crosses_many_reads_intact() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let a = fleet
        .add_account(env.spec("big", &["bigr"]), Arc::new(Idle))
        .unwrap();
    fleet
        .add_account(env.spec("bigrx", &["bigr"]), bot.clone())
        .unwrap();
    ev.room("big", "bigr", (2, 0)).await;
    ev.room("bigrx", "bigr", (2, 0)).await;
    // the largest body ZIM allows: a frame of ~49 KiB, read 1 KiB at a time
    let body: String = (0..49_152)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    a.send_room_message("bigr", MessageType::Text, body.clone())
        .await
        .unwrap();
    bot.wait_messages(Duration::from_secs(3), |m| !m.is_empty())
        .await;
    assert_eq!(bot.messages.lock().unwrap()[0].body, body);
}
