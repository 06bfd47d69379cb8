//! The token renewal service.
//!
//! One `TokenService` actor per fleet, on its own arbiter (provider futures are not `Send`, so
//! they run where the service runs). An account asks it for a new token when
//! token_will_expire arrives (or its local timer fires `renew_ahead` before expiry). The service
//! renews earliest expiry first, one renewal per account at a time, rate-limited fleet-wide
//! with governor, retrying a failing provider with backoff and jitter while time is left.
//! The account sends renew_token itself and owns the deadline: at `expire - expire_margin`
//! without a new token it ends with (Disconnected, TokenExpired).
//!
//! How an account uses it:
//! - `do_send(RenewalNeeded { .. })` with its `Recipient<RenewalOutcome>`; the service holds
//!   it weakly, so a stopped account is forgotten without a provider call.
//! - On `RenewalOutcome::Token(t)` it sends renew_token (and counts `renewals_ok`); on
//!   `GaveUp(e)` it logs `e` and lets its own expiry deadline end it.
//! - `do_send(RenewalCancelled { .. })` when it stops or logs out.
//!
//! Outcome codes in `GaveUp`: the provider's last error when it kept failing until the
//! deadline; 6000105 when the deadline passed before a rate slot was free; 6000106 when the
//! token had already expired (within the margin) on arrival; 6000004 when the queue is full.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix::WeakRecipient;
use futures_util::FutureExt as _;
use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;

use crate::client::FleetMetrics;
use crate::protocol::{ErrorCode, Secret, ZimError};
use crate::token::TokenProvider;

/// Account -> TokenService: get a new token for this account before `expire_at`.
/// A second request for the same account while one is pending replaces the first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewalNeeded {
    pub user_id: Arc<str>,
    /// Unix seconds when the current token expires.
    pub expire_at: i64,
    pub provider: Arc<dyn TokenProvider>,
    /// Where the outcome goes (weak on the service side: a stopped account is forgotten).
    pub reply_to: Recipient<RenewalOutcome>,
}

/// Account -> TokenService: forget this account (it stopped or logged out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewalCancelled {
    pub user_id: Arc<str>,
}

/// TokenService -> Account: the provider's answer.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum RenewalOutcome {
    /// A new token; the account sends renew_token with it.
    Token(Secret),
    /// The provider kept failing until the deadline; the account will expire.
    GaveUp(ZimError),
}

/// Knobs of the renewal service. `Default` suits a fleet; tests shorten the timings.
#[derive(Debug, Clone)]
pub struct RenewalSettings {
    /// Provider calls started per second, fleet-wide (retries included; 0 counts as 1).
    pub per_sec: u32,
    /// Calls that may start back to back after a quiet spell; 0 = `per_sec`.
    pub burst: u32,
    /// Accounts waiting or renewing at most. When full, a request whose expiry is earlier
    /// than the latest queued one evicts that one; otherwise it is refused. Both get
    /// `GaveUp(6000004)`.
    pub queue_capacity: usize,
    /// Provider calls running at once at most.
    pub max_in_flight: usize,
    /// Stop trying this long before `expire_at` (match the account's `expire_margin`).
    pub expire_margin: Duration,
    /// Deadline of one provider call (shortened to the time left); past it the call counts
    /// as failed with 6000105.
    pub attempt_timeout: Duration,
    /// Backoff after a failed call: `retry_first`, doubling up to `retry_max`, each delay
    /// jittered by +-`retry_jitter` (a fraction).
    pub retry_first: Duration,
    pub retry_max: Duration,
    pub retry_jitter: f64,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        Self {
            per_sec: 50,
            burst: 0,
            queue_capacity: 100_000,
            max_in_flight: 64,
            expire_margin: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(10),
            retry_first: Duration::from_millis(500),
            retry_max: Duration::from_secs(8),
            retry_jitter: 0.2,
        }
    }
}

/// Where one account's renewal stands.
enum Stage {
    /// In `TokenService::queue` under `(deadline_ms, ticket)`.
    Queued,
    /// Waiting out a backoff before going back into the queue.
    Backoff(SpawnHandle),
    /// A provider call runs; `attempt` is the ticket of the request that started it (a
    /// replacement that arrives meanwhile rides on this call).
    InFlight { handle: SpawnHandle, attempt: u64 },
}

struct Renewal {
    /// Identity of the current request: a replacement gets a new ticket, so late timers and
    /// results of an older request are recognised.
    ticket: u64,
    deadline_ms: i64,
    provider: Arc<dyn TokenProvider>,
    reply_to: WeakRecipient<RenewalOutcome>,
    failures: u32,
    last_error: Option<ZimError>,
    stage: Stage,
}

/// The fleet's token renewal service. See the module doc for how accounts use it.
pub struct TokenService {
    settings: RenewalSettings,
    limiter: DefaultDirectRateLimiter,
    metrics: Arc<FleetMetrics>,
    renewals: HashMap<Arc<str>, Renewal>,
    /// Ready to start, earliest deadline first: (deadline_ms, ticket) -> user.
    queue: BTreeMap<(i64, u64), Arc<str>>,
    next_ticket: u64,
    in_flight: usize,
    drain_timer: Option<SpawnHandle>,
    /// Started on its own arbiter by `start_with`: stop that arbiter when the service stops.
    owns_arbiter: bool,
}

impl TokenService {
    /// Starts the service on a new arbiter with `per_sec` renewals per second and default
    /// settings otherwise. Call inside an actix `System`.
    pub fn start(per_sec: u32, metrics: Arc<FleetMetrics>) -> Addr<TokenService> {
        Self::start_with(
            RenewalSettings {
                per_sec,
                ..RenewalSettings::default()
            },
            metrics,
        )
    }

    /// Starts the service on a new arbiter (its thread ends when the service stops, that is
    /// when every `Addr` of it is dropped). Call inside an actix `System`.
    pub fn start_with(settings: RenewalSettings, metrics: Arc<FleetMetrics>) -> Addr<TokenService> {
        let arbiter = Arbiter::new();
        TokenService::start_in_arbiter(&arbiter.handle(), move |_| {
            TokenService::new(settings, metrics, true)
        })
    }

    fn new(settings: RenewalSettings, metrics: Arc<FleetMetrics>, owns_arbiter: bool) -> Self {
        let per_sec = NonZeroU32::new(settings.per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.burst).unwrap_or(per_sec);
        let limiter = RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst));
        Self {
            settings,
            limiter,
            metrics,
            renewals: HashMap::new(),
            queue: BTreeMap::new(),
            next_ticket: 0,
            in_flight: 0,
            drain_timer: None,
            owns_arbiter,
        }
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Starts provider calls for the earliest deadlines while the rate and the in-flight cap
    /// allow; otherwise comes back when the limiter has a slot (never blocks the actor).
    fn drain(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.drain_timer.take() {
            ctx.cancel_future(timer);
        }
        while self.in_flight < self.settings.max_in_flight.max(1) {
            let Some((&(deadline_ms, _), user)) = self.queue.first_key_value() else {
                return;
            };
            let user = user.clone();
            let reply_gone = match self.renewals.get(&user) {
                Some(renewal) => renewal.reply_to.upgrade().is_none(),
                None => true,
            };
            if reply_gone {
                // The account stopped: forget it without spending a rate slot.
                self.queue.pop_first();
                self.renewals.remove(&user);
                continue;
            }
            if deadline_ms <= unix_ms() {
                self.queue.pop_first();
                let last_error = self.renewals.get(&user).and_then(|r| r.last_error.clone());
                let error = last_error.unwrap_or_else(|| {
                    ZimError::new(
                        ErrorCode::TIMEOUT,
                        "no renewal slot before the deadline (rate limit)",
                    )
                });
                self.give_up(&user, error);
                continue;
            }
            match self.limiter.check() {
                Ok(()) => {
                    self.queue.pop_first();
                    self.start_attempt(user, ctx);
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.limiter.clock().now());
                    self.drain_timer = Some(ctx.run_later(wait, |act, ctx| {
                        act.drain_timer = None;
                        act.drain(ctx);
                    }));
                    return;
                }
            }
        }
    }

    fn start_attempt(&mut self, user: Arc<str>, ctx: &mut Context<Self>) {
        let Some(renewal) = self.renewals.get(&user) else {
            return;
        };
        let time_left = Duration::from_millis((renewal.deadline_ms - unix_ms()).max(1) as u64);
        let limit = self.settings.attempt_timeout.min(time_left);
        let attempt = renewal.ticket;
        // A provider is the application's code: a panic in it fails this call, not the
        // service (and with it every account's renewals).
        let provider = renewal.provider.clone();
        let call_user = user.clone();
        let call = AssertUnwindSafe(async move { provider.token(&call_user).await });
        let bounded = async move {
            match actix_rt::time::timeout(limit, call.catch_unwind()).await {
                Ok(Ok(result)) => result,
                Ok(Err(_panic)) => Err(ZimError::new(
                    ErrorCode::SERVER_INTERNAL,
                    "token provider panicked",
                )),
                Err(_elapsed) => Err(ZimError::new(
                    ErrorCode::TIMEOUT,
                    format!(
                        "token provider gave no answer within {} ms",
                        limit.as_millis()
                    ),
                )),
            }
        };
        let finished_user = user.clone();
        let handle = ctx.spawn(bounded.into_actor(self).map(move |result, act, ctx| {
            act.attempt_finished(finished_user, attempt, result, ctx)
        }));
        if let Some(renewal) = self.renewals.get_mut(&user) {
            renewal.stage = Stage::InFlight { handle, attempt };
        }
        self.in_flight += 1;
    }

    fn attempt_finished(
        &mut self,
        user: Arc<str>,
        attempt: u64,
        result: Result<Secret, ZimError>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let ours = matches!(
            self.renewals.get(&user),
            Some(Renewal { stage: Stage::InFlight { attempt: a, .. }, .. }) if *a == attempt
        );
        if ours {
            match result {
                Ok(token) => {
                    // A replacement that arrived during the call is served by this token too:
                    // it is a fresh token for the same user.
                    if let Some(renewal) = self.renewals.remove(&user) {
                        if let Some(reply_to) = renewal.reply_to.upgrade() {
                            reply_to.do_send(RenewalOutcome::Token(token));
                        }
                    }
                }
                Err(error) => self.attempt_failed(user, attempt, error, ctx),
            }
        }
        self.drain(ctx);
    }

    fn attempt_failed(
        &mut self,
        user: Arc<str>,
        attempt: u64,
        error: ZimError,
        ctx: &mut Context<Self>,
    ) {
        self.metrics.renewals_failed.inc();
        tracing::warn!(
            account = %user,
            code = error.code.number(),
            error = %error.msg,
            "token renewal attempt failed"
        );
        let Some(renewal) = self.renewals.get_mut(&user) else {
            return;
        };
        if renewal.ticket != attempt {
            // Replaced during the call: the new request starts over with its own deadline.
            let key = (renewal.deadline_ms, renewal.ticket);
            renewal.stage = Stage::Queued;
            self.queue.insert(key, user);
            return;
        }
        renewal.failures += 1;
        renewal.last_error = Some(error.clone());
        let delay = backoff(&self.settings, renewal.failures);
        if unix_ms() + delay.as_millis() as i64 >= renewal.deadline_ms {
            self.give_up(&user, error);
            return;
        }
        let ticket = renewal.ticket;
        let timer_user = user.clone();
        let handle = ctx.run_later(delay, move |act, ctx| {
            act.backoff_over(timer_user, ticket, ctx)
        });
        if let Some(renewal) = self.renewals.get_mut(&user) {
            renewal.stage = Stage::Backoff(handle);
        }
    }

    fn backoff_over(&mut self, user: Arc<str>, ticket: u64, ctx: &mut Context<Self>) {
        if let Some(renewal) = self.renewals.get_mut(&user) {
            if renewal.ticket == ticket && matches!(renewal.stage, Stage::Backoff(_)) {
                renewal.stage = Stage::Queued;
                self.queue.insert((renewal.deadline_ms, ticket), user);
            }
        }
        self.drain(ctx);
    }

    /// Ends one account's renewal with `GaveUp`. The caller has taken it out of the queue.
    fn give_up(&mut self, user: &Arc<str>, error: ZimError) {
        let Some(renewal) = self.renewals.remove(user) else {
            return;
        };
        self.metrics.renewals_gave_up.inc();
        let error = match renewal.failures {
            0 => error,
            _ => ZimError::new(
                error.code,
                format!(
                    "{} (gave up after {} failed attempts)",
                    error.msg, renewal.failures
                ),
            ),
        };
        tracing::warn!(
            account = %user,
            code = error.code.number(),
            error = %error.msg,
            "token renewal gave up"
        );
        if let Some(reply_to) = renewal.reply_to.upgrade() {
            reply_to.do_send(RenewalOutcome::GaveUp(error));
        }
    }

    /// Removes an account's renewal wherever it stands, cancelling its timer or call.
    fn forget(&mut self, user: &Arc<str>, ctx: &mut Context<Self>) -> Option<Renewal> {
        let renewal = self.renewals.remove(user)?;
        match &renewal.stage {
            Stage::Queued => {
                self.queue.remove(&(renewal.deadline_ms, renewal.ticket));
            }
            Stage::Backoff(handle) => {
                ctx.cancel_future(*handle);
            }
            Stage::InFlight { handle, .. } => {
                ctx.cancel_future(*handle);
                self.in_flight = self.in_flight.saturating_sub(1);
            }
        }
        Some(renewal)
    }
}

impl Actor for TokenService {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if self.owns_arbiter {
            Arbiter::current().stop();
        }
    }
}

impl Handler<RenewalNeeded> for TokenService {
    type Result = ();

    fn handle(&mut self, msg: RenewalNeeded, ctx: &mut Context<Self>) {
        let margin_ms = self.settings.expire_margin.as_millis() as i64;
        let deadline_ms = msg.expire_at.saturating_mul(1000).saturating_sub(margin_ms);
        if deadline_ms <= unix_ms() {
            self.forget(&msg.user_id, ctx);
            self.metrics.renewals_gave_up.inc();
            msg.reply_to.do_send(RenewalOutcome::GaveUp(ZimError::new(
                ErrorCode::TOKEN_EXPIRED,
                "the token expires before a renewal can start",
            )));
            return;
        }
        let ticket = self.ticket();
        let reply_to = msg.reply_to.downgrade();
        if let Some(renewal) = self.renewals.get_mut(&msg.user_id) {
            // Replacement: the newest request wins; backoff and failures start over.
            let old_key = (renewal.deadline_ms, renewal.ticket);
            renewal.ticket = ticket;
            renewal.deadline_ms = deadline_ms;
            renewal.provider = msg.provider;
            renewal.reply_to = reply_to;
            renewal.failures = 0;
            renewal.last_error = None;
            match renewal.stage {
                Stage::Queued => {
                    self.queue.remove(&old_key);
                    self.queue.insert((deadline_ms, ticket), msg.user_id);
                }
                Stage::Backoff(handle) => {
                    ctx.cancel_future(handle);
                    renewal.stage = Stage::Queued;
                    self.queue.insert((deadline_ms, ticket), msg.user_id);
                }
                Stage::InFlight { .. } => {}
            }
        } else {
            if self.renewals.len() >= self.settings.queue_capacity {
                let latest = self
                    .queue
                    .last_key_value()
                    .filter(|((latest_deadline, _), _)| *latest_deadline > deadline_ms)
                    .map(|(key, user)| (*key, user.clone()));
                let full = ZimError::new(
                    ErrorCode::CLIENT_FREQUENCY_LIMIT,
                    format!(
                        "token renewal queue is full ({} accounts)",
                        self.settings.queue_capacity
                    ),
                );
                match latest {
                    Some((key, evicted)) => {
                        self.queue.remove(&key);
                        self.give_up(&evicted, full);
                    }
                    None => {
                        self.metrics.renewals_gave_up.inc();
                        msg.reply_to.do_send(RenewalOutcome::GaveUp(full));
                        return;
                    }
                }
            }
            self.queue
                .insert((deadline_ms, ticket), msg.user_id.clone());
            self.renewals.insert(
                msg.user_id,
                Renewal {
                    ticket,
                    deadline_ms,
                    provider: msg.provider,
                    reply_to,
                    failures: 0,
                    last_error: None,
                    stage: Stage::Queued,
                },
            );
        }
        self.drain(ctx);
    }
}

impl Handler<RenewalCancelled> for TokenService {
    type Result = ();

    fn handle(&mut self, msg: RenewalCancelled, ctx: &mut Context<Self>) {
        if self.forget(&msg.user_id, ctx).is_some() {
            self.drain(ctx);
        }
    }
}

/// The delay after the `failures`-th failed call: doubling from `retry_first` up to
/// `retry_max`, jittered.
fn backoff(settings: &RenewalSettings, failures: u32) -> Duration {
    let doubling = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    let base = settings
        .retry_first
        .saturating_mul(doubling)
        .min(settings.retry_max);
    let jitter = settings.retry_jitter.clamp(0.0, 1.0);
    let factor = 1.0 + rand::thread_rng().gen_range(-jitter..=jitter);
    base.mul_f64(factor)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
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
        fn new(
            calls: &Arc<Mutex<Vec<(String, Instant)>>>,
            failures: u32,
            delay_ms: u64,
        ) -> Arc<Self> {
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
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, ZimError>>>>
        {
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
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, ZimError>>>>
        {
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
}
