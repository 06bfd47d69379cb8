//! The seed cases of issue 3 against the real reference server: each asserts the exact
//! (state, event) sequence a ZIM user would see.

mod client_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client_support::*;
use zimfleet::bot::Idle;
use zimfleet::client::{AccountSpec, EventKind};
use zimfleet::protocol::{ErrorCode, KickoutReason, MessageType, Secret, ZimError};
use zimfleet::server::FaultTarget;
use zimfleet::token::TokenProvider;

fn users(ids: &[&str]) -> FaultTarget {
    FaultTarget::Users(ids.iter().map(|s| s.to_string()).collect())
}

async fn expect_not_logged_in(result: Result<impl std::fmt::Debug, ZimError>) {
    let err = result.expect_err("a call after a terminal end must fail");
    assert_eq!(err.code, ErrorCode::NOT_LOGGED_IN, "{err}");
}

#[actix_rt::test]
async fn outage_shorter_than_the_room_session_keeps_the_room() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    fleet
        .add_account(env.spec("a1", &["r1"]), Arc::new(Idle))
        .unwrap();
    ev.room("a1", "r1", (2, 0)).await;

    assert_eq!(env.admin.drop(users(&["a1"])), 1);
    ev.conn("a1", (3, 3)).await;
    ev.conn("a1", (2, 0)).await;
    ev.room("a1", "r1", (2, 0)).await;

    assert_eq!(ev.conn_pairs("a1"), [(1, 1), (2, 0), (3, 3), (2, 0)]);
    assert_eq!(ev.room_pairs("a1", "r1"), [(1, 6), (2, 0), (1, 1), (2, 0)]);
    let m = fleet.metrics();
    assert_eq!(m.room_recovered_member.get(), 1);
    assert_eq!(m.relogins_succeeded.get(), 1);
}

#[actix_rt::test]
async fn outage_longer_than_the_room_session_rejoins_by_policy() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    // a keeper stays in the room so it outlives a2's membership
    fleet
        .add_account(env.spec("keeper", &["r2"]), Arc::new(Idle))
        .unwrap();
    ev.room("keeper", "r2", (2, 0)).await;
    fleet
        .add_account(env.spec("a2", &["r2"]), Arc::new(Idle))
        .unwrap();
    ev.room("a2", "r2", (2, 0)).await;

    env.admin
        .blackhole(users(&["a2"]), Duration::from_millis(1600));
    ev.conn("a2", (3, 3)).await;
    ev.room("a2", "r2", (0, 9)).await;
    ev.room("a2", "r2", (2, 0)).await;

    assert_eq!(ev.conn_pairs("a2"), [(1, 1), (2, 0), (3, 3), (2, 0)]);
    assert_eq!(
        ev.room_pairs("a2", "r2"),
        [(1, 6), (2, 0), (1, 1), (0, 9), (1, 6), (2, 0)]
    );
    assert_eq!(ev.conn_pairs("keeper"), [(1, 1), (2, 0)]);
    assert_eq!(fleet.metrics().room_recovered_after_timeout.get(), 1);
}

#[actix_rt::test]
async fn room_destroyed_during_the_outage_is_entered_again() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    fleet
        .add_account(env.spec("a3", &["r3"]), Arc::new(Idle))
        .unwrap();
    ev.room("a3", "r3", (2, 0)).await;

    env.admin
        .blackhole(users(&["a3"]), Duration::from_millis(700));
    ev.conn("a3", (3, 3)).await;
    assert!(env.admin.destroy_room("r3"));
    ev.room("a3", "r3", (0, 3)).await;
    ev.room("a3", "r3", (2, 0)).await;

    assert_eq!(ev.conn_pairs("a3"), [(1, 1), (2, 0), (3, 3), (2, 0)]);
    assert_eq!(
        ev.room_pairs("a3", "r3"),
        [(1, 6), (2, 0), (1, 1), (0, 3), (1, 6), (2, 0)]
    );
    assert_eq!(fleet.metrics().room_recovered_after_not_exist.get(), 1);
}

#[actix_rt::test]
async fn login_from_another_device_ends_the_account_for_good() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let a = fleet
        .add_account(env.spec("a4", &["r4"]), Arc::new(Idle))
        .unwrap();
    ev.room("a4", "r4", (2, 0)).await;

    // the same user from another device, in another fleet
    let other = env.fleet();
    let mut other_ev = Events::new(&other);
    let mut spec = env.spec("a4", &[]);
    spec.device_id = Some("another-device".into());
    other.add_account(spec, Arc::new(Idle)).unwrap();
    other_ev.conn("a4", (2, 0)).await;

    ev.conn("a4", (0, 4)).await;
    ev.room("a4", "r4", (0, 2)).await;
    assert_eq!(ev.conn_pairs("a4"), [(1, 1), (2, 0), (0, 4)]);
    assert_eq!(ev.room_pairs("a4", "r4"), [(1, 6), (2, 0), (0, 2)]);

    expect_not_logged_in(
        a.send_room_message("r4", MessageType::Text, "x".into())
            .await,
    )
    .await;
    expect_not_logged_in(a.enter_room(zimfleet::client::RoomSpec::new("r5")).await).await;
    let status = a.state().await.unwrap();
    assert_eq!(status.ended.as_deref(), Some("kickout_4"));
    // no login attempt after the kickout: the other device stays online
    tokio::time::sleep(Duration::from_millis(400)).await;
    let m = fleet.metrics();
    assert_eq!(
        (m.logins_attempted.get(), m.relogins_attempted.get()),
        (1, 0)
    );
    assert_eq!(m.kicked_out.get(), 1);
    other_ev.drain();
    assert_eq!(other_ev.conn_pairs("a4"), [(1, 1), (2, 0)]);
}

#[actix_rt::test]
async fn kickout_by_the_server_and_unregistered_are_terminal() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    fleet
        .add_account(env.spec("k1", &["rk"]), Arc::new(Idle))
        .unwrap();
    fleet
        .add_account(env.spec("k2", &["rk"]), Arc::new(Idle))
        .unwrap();
    ev.room("k1", "rk", (2, 0)).await;
    ev.room("k2", "rk", (2, 0)).await;

    assert!(env.admin.kickout("k1", KickoutReason::KickedOut));
    assert!(env.admin.kickout("k2", KickoutReason::Unregistered));
    ev.conn("k1", (0, 4)).await;
    ev.conn("k2", (0, 6)).await;
    ev.room("k2", "rk", (0, 2)).await;
    assert_eq!(ev.conn_pairs("k1"), [(1, 1), (2, 0), (0, 4)]);
    assert_eq!(ev.conn_pairs("k2"), [(1, 1), (2, 0), (0, 6)]);
    assert_eq!(fleet.metrics().unregistered.get(), 1);
    let k2 = fleet.account("k2").unwrap();
    expect_not_logged_in(k2.room_members("rk").await).await;
}

/// Gives one token, then fails every renewal.
struct OneToken(std::sync::Mutex<Option<Secret>>);

impl TokenProvider for OneToken {
    fn token(
        &self,
        _user_id: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, ZimError>>>> {
        let next = self.0.lock().unwrap().take();
        Box::pin(async move {
            next.ok_or_else(|| ZimError::new(ErrorCode::TOKEN_INVALID, "no more tokens"))
        })
    }
}

#[actix_rt::test]
async fn token_never_renewed_ends_with_token_expired() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let (token, _) = env.admin.mint_token("t1", 3).unwrap();
    let spec = AccountSpec {
        token: Arc::new(OneToken(std::sync::Mutex::new(Some(token)))),
        ..env.spec("t1", &["rt"])
    };
    let bot = Arc::new(RecordingBot::default());
    let a = fleet.add_account(spec, bot.clone()).unwrap();
    ev.conn("t1", (2, 0)).await;
    ev.wait(Duration::from_secs(4), |e| {
        e.account == "t1" && matches!(e.kind, EventKind::TokenWillExpire { .. })
    })
    .await;
    ev.conn_within("t1", (0, 5), Duration::from_secs(4)).await;
    ev.room("t1", "rt", (0, 2)).await;
    assert_eq!(ev.conn_pairs("t1"), [(1, 1), (2, 0), (0, 5)]);
    assert_eq!(bot.token_warnings.lock().unwrap().len(), 1);
    expect_not_logged_in(
        a.send_peer_message("x", MessageType::Text, "x".into())
            .await,
    )
    .await;
    assert_eq!(fleet.metrics().token_expired.get(), 1);
}

#[actix_rt::test]
async fn token_renewed_keeps_the_account_online_past_the_first_expiry() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let spec = AccountSpec {
        token: env.tokens(3),
        ..env.spec("t2", &[])
    };
    let a = fleet.add_account(spec, Arc::new(Idle)).unwrap();
    let started = Instant::now();
    ev.conn("t2", (2, 0)).await;
    ev.wait(Duration::from_secs(4), |e| {
        e.account == "t2" && matches!(e.kind, EventKind::TokenRenewed { .. })
    })
    .await;
    // past the first token's expiry (3 s) and its margin
    let past = Duration::from_millis(4200).saturating_sub(started.elapsed());
    tokio::time::sleep(past).await;
    ev.drain();
    assert_eq!(ev.conn_pairs("t2"), [(1, 1), (2, 0)]);
    let status = a.state().await.unwrap();
    assert_eq!(status.state.as_i32(), 2);
    assert!(fleet.metrics().renewals_ok.get() >= 1);
}

#[actix_rt::test]
async fn bad_tokens_get_their_codes_and_no_retry_loop() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let (expired, _) = env.admin.mint_token("b3", -10).unwrap();
    let (other_users, _) = env.admin.mint_token("someone", 3600).unwrap();
    let long = zimfleet::token::token04::generate(
        env.settings.app_id,
        "b5",
        &env.settings.server_secret,
        30 * 24 * 3600,
    )
    .unwrap();
    type Case<'a> = (&'a str, Arc<dyn TokenProvider>, (i32, i32), u32);
    let cases: Vec<Case> = vec![
        ("b1", static_token("garbage"), (0, 3), 6000103),
        (
            "b2",
            static_token(&format!("03{}", "A".repeat(60))),
            (0, 3),
            6000107,
        ),
        ("b3", static_token(expired.expose()), (0, 5), 6000106),
        ("b4", static_token(other_users.expose()), (0, 3), 6000103),
        ("b5", static_token(long.expose()), (0, 3), 6000109),
    ];
    for (user, token, _, _) in &cases {
        let spec = AccountSpec {
            token: token.clone(),
            ..env.spec(user, &[])
        };
        fleet.add_account(spec, Arc::new(Idle)).unwrap();
    }
    for (user, _, pair, code) in &cases {
        let event = ev.conn(user, *pair).await;
        match &event.kind {
            EventKind::Connection { ext, .. } => assert_eq!(ext["code"], *code, "{user}"),
            other => panic!("{other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    ev.drain();
    for (user, _, pair, _) in &cases {
        assert_eq!(ev.conn_pairs(user), [(1, 1), *pair], "{user}");
    }
    let m = fleet.metrics();
    assert_eq!(
        m.logins_attempted.get(),
        5,
        "one attempt each, no retry loop"
    );
    assert_eq!(m.relogins_attempted.get(), 0);
}

#[actix_rt::test]
async fn sends_made_while_reconnecting_arrive_once_in_order() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let receiver = Arc::new(RecordingBot::default());
    fleet
        .add_account(env.spec("rx", &["r9"]), receiver.clone())
        .unwrap();
    let a = fleet
        .add_account(env.spec("tx", &["r9"]), Arc::new(Idle))
        .unwrap();
    ev.room("rx", "r9", (2, 0)).await;
    ev.room("tx", "r9", (2, 0)).await;

    a.chaos_offline(Duration::from_millis(500));
    ev.conn("tx", (3, 3)).await;
    let mut sends = Vec::new();
    for i in 0..3 {
        let a = a.clone();
        sends.push(actix_rt::spawn(async move {
            a.send_room_message("r9", MessageType::Text, format!("m{i}"))
                .await
        }));
        tokio::time::sleep(Duration::from_millis(110)).await; // 100 ms per conversation
    }
    for s in sends {
        s.await.unwrap().expect("sent after the re-login");
    }
    ev.conn("tx", (2, 0)).await;

    // a send in flight when the link drops is resent with its client_msg_id, delivered once
    let a2 = a.clone();
    let in_flight = actix_rt::spawn(async move {
        a2.send_room_message("r9", MessageType::Text, "m3".into())
            .await
    });
    tokio::task::yield_now().await;
    a.chaos_drop();
    in_flight.await.unwrap().expect("resent after the drop");

    receiver
        .wait_messages(Duration::from_secs(5), |m| m.len() >= 4)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.bodies("r9"), ["m0", "m1", "m2", "m3"]);
    let routed = env.admin.stats().messages_routed;
    assert_eq!(routed, 4, "the server routed each message once");
}

#[actix_rt::test]
async fn room_messages_sent_during_a_short_outage_reach_the_bot_once_in_order() {
    let env = server().await;
    let fleet = env.fleet();
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    fleet
        .add_account(env.spec("lis", &["r10"]), bot.clone())
        .unwrap();
    let talker = fleet
        .add_account(env.spec("talk", &["r10"]), Arc::new(Idle))
        .unwrap();
    ev.room("lis", "r10", (2, 0)).await;
    ev.room("talk", "r10", (2, 0)).await;
    talker
        .send_room_message("r10", MessageType::Text, "before".into())
        .await
        .unwrap();
    bot.wait_messages(Duration::from_secs(2), |m| m.len() == 1)
        .await;

    env.admin
        .blackhole(users(&["lis"]), Duration::from_millis(600));
    ev.conn("lis", (3, 3)).await;
    for i in 0..4 {
        talker
            .send_room_message("r10", MessageType::Text, format!("during{i}"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(110)).await;
    }
    ev.room("lis", "r10", (2, 0)).await;
    talker
        .send_room_message("r10", MessageType::Text, "after".into())
        .await
        .unwrap();
    bot.wait_messages(Duration::from_secs(3), |m| {
        m.iter().any(|m| m.body == "after")
    })
    .await;
    assert_eq!(
        bot.bodies("r10"),
        ["before", "during0", "during1", "during2", "during3", "after"]
    );
    let seqs: Vec<u64> = bot
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter_map(|m| m.seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(
        ev.room_pairs("lis", "r10"),
        [(1, 6), (2, 0), (1, 1), (2, 0)]
    );
}

fn now_ms() -> u64 {
    zimfleet::clock::unix_ms()
}

/// Instants of the next `n` (Connected, Success) events.
async fn count_connected(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<zimfleet::client::Event>>,
    n: usize,
    within: Duration,
) -> Vec<Instant> {
    let mut times = Vec::new();
    let mut accounts = std::collections::HashSet::new();
    let end = Instant::now() + within;
    while times.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(e)) => {
                if conn_pair(&e) == Some((2, 0)) && accounts.insert(e.account.clone()) {
                    // when the account emitted it (the test task may see events in batches)
                    let age = now_ms().saturating_sub(e.ts_ms);
                    times.push(Instant::now() - Duration::from_millis(age));
                }
            }
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("only {} of {n} connected", times.len()),
        }
    }
    times
}

#[actix_rt::test]
async fn a_thousand_accounts_dropped_at_once_come_back_at_the_admission_rate() {
    const N: usize = 1000;
    const RATE: u32 = 400;
    const BURST: u32 = 40;
    // slower heartbeats than the other tests: 1,000 accounts share two cores here
    let env = server_with(|s| {
        s.timing.heartbeat_interval_ms = 500;
        s.timing.offline_timeout_ms = 3000;
    })
    .await;
    let mut config = fleet_config(&env.server.ws_url());
    config.timings.heartbeat_timeout = Duration::from_secs(1);
    config.admission_per_sec = RATE;
    config.admission_burst = BURST;
    let fleet = zimfleet::client::Fleet::start(config);
    let mut rx = fleet.subscribe();
    for i in 0..N {
        fleet
            .add_account(env.spec(&format!("m{i}"), &[]), Arc::new(Idle))
            .unwrap();
    }
    count_connected(&mut rx, N, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while env.admin.stats().users_online != N as u64 {
        assert!(Instant::now() < deadline, "{:?}", env.admin.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The server's own login count, sampled every 20 ms: the limiter is judged where the
    // backend sees it (the events' times also carry each reply's queueing on two busy cores).
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (admin, sampling) = (env.admin.clone(), sampling.clone());
        actix_rt::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                samples.push((Instant::now(), admin.stats().logins_ok));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        })
    };
    let logins_before = env.admin.stats().logins_ok;
    let dropped_at = Instant::now();
    assert_eq!(env.admin.drop(FaultTarget::All), N);
    let times = count_connected(&mut rx, N, Duration::from_secs(20)).await;
    let took = times.last().unwrap().duration_since(dropped_at);
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    assert!(env.admin.stats().logins_ok >= logins_before + N as u64);
    // N re-logins through a limiter of RATE/s with BURST: at least (N - BURST) / RATE seconds
    let floor = Duration::from_secs_f64((N as f64 - BURST as f64) / RATE as f64 * 0.9);
    assert!(
        took >= floor,
        "came back in {took:?}, faster than the limiter allows"
    );
    assert!(
        took < floor * 3,
        "came back in {took:?}, far slower than the limiter's rate"
    );
    // no one-second window of the server holds more than RATE + BURST logins (+5 %: the
    // windows are 1 s to 1.02 s long, and a connect's own latency varies)
    let most = samples
        .iter()
        .enumerate()
        .filter_map(|(i, (t0, n0))| {
            let (_, n1) = samples[i..]
                .iter()
                .find(|(t, _)| t.duration_since(*t0) >= Duration::from_secs(1))?;
            Some(n1 - n0)
        })
        .max()
        .unwrap();
    assert!(
        most as f64 <= (RATE + BURST) as f64 * 1.05,
        "{most} logins in one second at the server"
    );
    let m = fleet.metrics();
    assert!(m.relogins_succeeded.get() >= N as u64);
    println!("{N} accounts back in {took:?}; busiest second at the server {most}");
}
