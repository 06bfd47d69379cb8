//! The TokenService against scripted providers.
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::mpsc;

use super::*;

/// A provider that logs each call, fails its first `failures` calls (or all with
/// `u32::MAX`) and answers after `delay`.
struct Scripted {
    calls: Arc<Mutex<Vec<(String, Instant)>>>,
    failures: Mutex<u32>,
    delay: Duration,
}

impl Scripted {
    fn new(calls: &Arc<Mutex<Vec<(String, Instant)>>>, failures: u32, delay_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            calls: calls.clone(),
            failures: Mutex::new(failures),
            delay: Duration::from_millis(delay_ms),
        })
    }
}

impl TokenProvider for Scripted {
    fn token(
        &self,
        user_id: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, ZimError>>>> {
        self.calls
            .lock()
            .unwrap()
            .push((user_id.to_owned(), Instant::now()));
        let fail = {
            let mut left = self.failures.lock().unwrap();
            let fail = *left > 0;
            if fail && *left != u32::MAX {
                *left -= 1;
            }
            fail
        };
        let delay = self.delay;
        let token = Secret::from(format!("04token-{user_id}"));
        Box::pin(async move {
            if !delay.is_zero() {
                actix_rt::time::sleep(delay).await;
            }
            if fail {
                Err(ZimError::new(ErrorCode::NETWORK_ERROR, "scripted failure"))
            } else {
                Ok(token)
            }
        })
    }
}

/// Stands in for an account: forwards outcomes, tagged with its name, to the test.
struct Collector {
    name: &'static str,
    tx: mpsc::Sender<(&'static str, RenewalOutcome)>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<RenewalOutcome> for Collector {
    type Result = ();
    fn handle(&mut self, msg: RenewalOutcome, _: &mut Context<Self>) {
        self.tx
            .try_send((self.name, msg))
            .expect("test channel has room");
    }
}

struct Harness {
    service: Addr<TokenService>,
    metrics: Arc<FleetMetrics>,
    calls: Arc<Mutex<Vec<(String, Instant)>>>,
    tx: mpsc::Sender<(&'static str, RenewalOutcome)>,
    rx: mpsc::Receiver<(&'static str, RenewalOutcome)>,
}

impl Harness {
    fn start(settings: RenewalSettings) -> Self {
        let metrics = Arc::new(FleetMetrics::default());
        let service = TokenService::start_with(settings, metrics.clone());
        let (tx, rx) = mpsc::channel(256);
        Self {
            service,
            metrics,
            calls: Arc::default(),
            tx,
            rx,
        }
    }

    fn collector(&self, name: &'static str) -> Addr<Collector> {
        Collector {
            name,
            tx: self.tx.clone(),
        }
        .start()
    }

    /// Asks a renewal for `user` whose token expires `expires_in_ms` from now.
    fn need(
        &self,
        user: &str,
        expires_in_ms: i64,
        provider: Arc<dyn TokenProvider>,
        reply_to: &Addr<Collector>,
    ) {
        self.service.do_send(RenewalNeeded {
            user_id: Arc::from(user),
            expire_at: (unix_ms() + expires_in_ms) / 1000,
            provider,
            reply_to: reply_to.clone().recipient(),
        });
    }

    async fn next(&mut self, within_ms: u64) -> (&'static str, RenewalOutcome) {
        tokio::time::timeout(Duration::from_millis(within_ms), self.rx.recv())
            .await
            .expect("an outcome before the deadline")
            .expect("channel open")
    }

    fn called(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(u, _)| u.clone())
            .collect()
    }

    async fn wait_for_calls(&self, n: usize, within_ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(within_ms);
        while self.calls.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "{n} provider calls expected");
            actix_rt::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn token_of(outcome: RenewalOutcome) -> String {
    match outcome {
        RenewalOutcome::Token(t) => t.expose().to_owned(),
        RenewalOutcome::GaveUp(e) => panic!("expected a token, got {e}"),
    }
}

fn error_of(outcome: RenewalOutcome) -> ZimError {
    match outcome {
        RenewalOutcome::GaveUp(e) => e,
        RenewalOutcome::Token(_) => panic!("expected GaveUp, got a token"),
    }
}

fn one_per(ms: u64) -> RenewalSettings {
    RenewalSettings {
        per_sec: (1000 / ms) as u32,
        burst: 1,
        ..RenewalSettings::default()
    }
}

const HOUR_MS: i64 = 3_600_000;

#[test]
fn messages_are_send() {
    fn is_send<T: Send>() {}
    is_send::<RenewalNeeded>();
    is_send::<RenewalCancelled>();
    is_send::<RenewalOutcome>();
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    let settings = RenewalSettings {
        retry_first: Duration::from_millis(100),
        retry_max: Duration::from_millis(1000),
        retry_jitter: 0.2,
        ..RenewalSettings::default()
    };
    for (failures, base) in [
        (1, 100),
        (2, 200),
        (3, 400),
        (4, 800),
        (5, 1000),
        (40, 1000),
    ] {
        let d = backoff(&settings, failures).as_millis() as u64;
        assert!(
            d >= base * 8 / 10 && d <= base * 12 / 10,
            "{failures}: {d} ms"
        );
    }
}

#[actix_rt::test]
async fn renews_earliest_expiry_first() {
    let mut h = Harness::start(one_per(100));
    let provider = Scripted::new(&h.calls, 0, 0);
    let c = h.collector("c");
    // The first takes the only slot; the rest queue behind the limiter.
    h.need("warm", 10 * HOUR_MS, provider.clone(), &c);
    for (user, hours) in [("a", 5), ("b", 1), ("c", 3), ("d", 2), ("e", 4)] {
        h.need(user, hours * HOUR_MS, provider.clone(), &c);
    }
    for _ in 0..6 {
        token_of(h.next(2000).await.1);
    }
    assert_eq!(h.called(), ["warm", "b", "d", "c", "e", "a"]);
}

#[actix_rt::test]
async fn holds_the_fleet_wide_rate() {
    let mut h = Harness::start(one_per(50));
    let provider = Scripted::new(&h.calls, 0, 0);
    let c = h.collector("c");
    let users = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    for user in users {
        h.need(user, HOUR_MS, provider.clone(), &c);
    }
    for _ in users {
        token_of(h.next(2000).await.1);
    }
    let calls = h.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), users.len());
    for pair in calls.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(gap >= Duration::from_millis(48), "calls {gap:?} apart");
    }
    let span = calls[7].1 - calls[0].1;
    assert!(
        span < Duration::from_millis(7 * 50 + 300),
        "too slow: {span:?}"
    );
}

#[actix_rt::test]
async fn retries_a_failing_provider_then_delivers() {
    let mut h = Harness::start(RenewalSettings {
        retry_first: Duration::from_millis(40),
        retry_jitter: 0.2,
        ..RenewalSettings::default()
    });
    let provider = Scripted::new(&h.calls, 2, 0);
    let c = h.collector("c");
    h.need("u1", HOUR_MS, provider, &c);
    assert_eq!(token_of(h.next(2000).await.1), "04token-u1");
    let calls = h.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    // Backoff 40 ms then 80 ms, each -20 % at worst.
    assert!(calls[1].1 - calls[0].1 >= Duration::from_millis(32));
    assert!(calls[2].1 - calls[1].1 >= Duration::from_millis(64));
    assert_eq!(h.metrics.renewals_failed.get(), 2);
    assert_eq!(h.metrics.renewals_gave_up.get(), 0);
}

#[actix_rt::test]
async fn gives_up_at_the_deadline_with_the_providers_error() {
    let margin_to_deadline = |expire_at: i64, deadline_ms: i64| {
        Duration::from_millis((expire_at * 1000 - deadline_ms) as u64)
    };
    let now = unix_ms();
    let expire_at = now / 1000 + 2;
    let deadline_ms = now + 400;
    let mut h = Harness::start(RenewalSettings {
        expire_margin: margin_to_deadline(expire_at, deadline_ms),
        retry_first: Duration::from_millis(50),
        retry_max: Duration::from_millis(100),
        ..RenewalSettings::default()
    });
    let provider = Scripted::new(&h.calls, u32::MAX, 0);
    let c = h.collector("c");
    h.service.do_send(RenewalNeeded {
        user_id: Arc::from("u1"),
        expire_at,
        provider,
        reply_to: c.clone().recipient(),
    });
    let error = error_of(h.next(2000).await.1);
    let gave_up_at = unix_ms();
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR);
    assert!(
        error.msg.starts_with("scripted failure (gave up after "),
        "{}",
        error.msg
    );
    // Not before the last retry that still fitted, not after the deadline.
    assert!(
        gave_up_at >= deadline_ms - 130,
        "gave up {} ms early",
        deadline_ms - gave_up_at
    );
    assert!(
        gave_up_at <= deadline_ms + 150,
        "gave up {} ms late",
        gave_up_at - deadline_ms
    );
    let attempts = h.calls.lock().unwrap().len() as u64;
    assert!(attempts >= 3, "{attempts} attempts");
    assert_eq!(h.metrics.renewals_failed.get(), attempts);
    assert_eq!(h.metrics.renewals_gave_up.get(), 1);
}

#[actix_rt::test]
async fn a_slow_provider_call_is_cut_at_the_attempt_timeout() {
    let mut h = Harness::start(RenewalSettings {
        attempt_timeout: Duration::from_millis(50),
        retry_first: Duration::from_millis(20),
        ..RenewalSettings::default()
    });
    let c = h.collector("c");
    let slow = Scripted::new(&h.calls, 0, 10_000);
    h.need("u1", HOUR_MS, slow, &c);
    h.wait_for_calls(2, 1000).await;
    assert_eq!(h.metrics.renewals_failed.get(), 1);
    // A quick provider for the same account replaces the slow one and delivers.
    let quick = Scripted::new(&h.calls, 0, 0);
    h.need("u1", HOUR_MS, quick, &c);
    assert_eq!(token_of(h.next(2000).await.1), "04token-u1");
}

struct Panicking;

impl TokenProvider for Panicking {
    fn token(
        &self,
        _user_id: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, ZimError>>>> {
        panic!("provider bug")
    }
}

#[actix_rt::test]
async fn a_panicking_provider_fails_its_call_not_the_service() {
    let mut h = Harness::start(RenewalSettings {
        retry_first: Duration::from_millis(20),
        ..RenewalSettings::default()
    });
    let c = h.collector("c");
    h.need("bad", HOUR_MS, Arc::new(Panicking), &c);
    let quick = Scripted::new(&h.calls, 0, 0);
    h.need("good", HOUR_MS, quick.clone(), &c);
    assert_eq!(token_of(h.next(2000).await.1), "04token-good");
    // The panicking account is retried; a replacement with a working provider delivers.
    h.need("bad", HOUR_MS, quick, &c);
    assert_eq!(token_of(h.next(2000).await.1), "04token-bad");
    assert!(h.metrics.renewals_failed.get() >= 1);
}

#[actix_rt::test]
async fn a_new_request_replaces_the_queued_one() {
    let mut h = Harness::start(one_per(100));
    let provider = Scripted::new(&h.calls, 0, 0);
    let (first, second, other) = (
        h.collector("first"),
        h.collector("second"),
        h.collector("other"),
    );
    h.need("warm", HOUR_MS, provider.clone(), &other);
    h.need("a", 2 * HOUR_MS, provider.clone(), &first);
    h.need("a", HOUR_MS, provider.clone(), &second);
    h.need("z", 3 * HOUR_MS, provider.clone(), &other);
    let mut got = Vec::new();
    for _ in 0..3 {
        let (name, outcome) = h.next(2000).await;
        got.push((name, token_of(outcome)));
    }
    assert_eq!(
        got,
        [
            ("other", "04token-warm".to_owned()),
            ("second", "04token-a".to_owned()),
            ("other", "04token-z".to_owned())
        ]
    );
    assert_eq!(h.called(), ["warm", "a", "z"]);
    assert!(
        h.rx.try_recv().is_err(),
        "the replaced request got an answer too"
    );
}

#[actix_rt::test]
async fn a_request_during_a_call_rides_on_it() {
    let mut h = Harness::start(RenewalSettings::default());
    let slow = Scripted::new(&h.calls, 0, 150);
    let (first, second) = (h.collector("first"), h.collector("second"));
    h.need("a", HOUR_MS, slow.clone(), &first);
    h.wait_for_calls(1, 1000).await;
    h.need("a", HOUR_MS, slow, &second);
    let (name, outcome) = h.next(2000).await;
    assert_eq!(
        (name, token_of(outcome)),
        ("second", "04token-a".to_owned())
    );
    assert_eq!(h.called(), ["a"]);
}

#[actix_rt::test]
async fn cancelled_requests_are_forgotten() {
    let mut h = Harness::start(one_per(100));
    let quick = Scripted::new(&h.calls, 0, 0);
    let slow = Scripted::new(&h.calls, 0, 100);
    let c = h.collector("c");
    // Queued behind the limiter, then cancelled: never called.
    h.need("warm", HOUR_MS, quick.clone(), &c);
    h.need("queued", HOUR_MS, quick.clone(), &c);
    h.service.do_send(RenewalCancelled {
        user_id: Arc::from("queued"),
    });
    // In flight, then cancelled: called, but no outcome.
    h.need("flying", HOUR_MS, slow, &c);
    h.wait_for_calls(2, 1000).await;
    h.service.do_send(RenewalCancelled {
        user_id: Arc::from("flying"),
    });
    // Its account stopped before its turn (every strong address dropped): never called.
    let gone = h.collector("gone");
    h.need("stopped", HOUR_MS, quick.clone(), &gone);
    drop(gone);
    // A marker after all of them; outcomes arrive in service order.
    h.need("marker", 10 * HOUR_MS, quick, &c);
    let mut names = Vec::new();
    for _ in 0..2 {
        names.push(token_of(h.next(2000).await.1));
    }
    assert_eq!(names, ["04token-warm", "04token-marker"]);
    assert_eq!(h.called(), ["warm", "flying", "marker"]);
    assert!(h.rx.try_recv().is_err());
}

#[actix_rt::test]
async fn a_full_queue_refuses_or_evicts_the_latest_expiry() {
    let mut h = Harness::start(RenewalSettings {
        queue_capacity: 2,
        ..one_per(1000)
    });
    let provider = Scripted::new(&h.calls, 0, 0);
    let (warm, late, later, latest, early) = (
        h.collector("warm"),
        h.collector("late"),
        h.collector("later"),
        h.collector("latest"),
        h.collector("early"),
    );
    h.need("warm", HOUR_MS, provider.clone(), &warm);
    assert_eq!(h.next(2000).await.0, "warm");
    h.need("late", 2 * HOUR_MS, provider.clone(), &late);
    h.need("later", 3 * HOUR_MS, provider.clone(), &later);
    h.need("latest", 4 * HOUR_MS, provider.clone(), &latest);
    let (name, outcome) = h.next(2000).await;
    assert_eq!(name, "latest");
    let error = error_of(outcome);
    assert_eq!(error.code, ErrorCode::CLIENT_FREQUENCY_LIMIT);
    assert_eq!(error.msg, "token renewal queue is full (2 accounts)");
    h.need("early", HOUR_MS, provider, &early);
    let (name, outcome) = h.next(2000).await;
    assert_eq!(name, "later");
    assert_eq!(error_of(outcome).code, ErrorCode::CLIENT_FREQUENCY_LIMIT);
    assert_eq!(h.metrics.renewals_gave_up.get(), 2);
    assert_eq!(h.called(), ["warm"]);
}

#[actix_rt::test]
async fn an_already_expired_token_is_refused_at_once() {
    let mut h = Harness::start(RenewalSettings::default());
    let provider = Scripted::new(&h.calls, 0, 0);
    let c = h.collector("c");
    // Expires within the 2 s margin.
    h.need("u1", 1000, provider, &c);
    let error = error_of(h.next(1000).await.1);
    assert_eq!(error.code, ErrorCode::TOKEN_EXPIRED);
    assert_eq!(error.msg, "the token expires before a renewal can start");
    assert!(h.called().is_empty());
}
