//! The token renewal service (the TokenService actor; its tests are in tests.rs).
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
use std::time::Duration;

use actix::prelude::*;
use actix::WeakRecipient;
use futures_util::FutureExt as _;
use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::client::FleetMetrics;
use crate::protocol::{ErrorCode, Secret, ZimError};
use crate::session::retry::{doubling, jittered};
use crate::token::TokenProvider;

/// Account -> TokenService: get a new token for this account before `expire_at`.
/// A second request for the same account while one is pending replaces the first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewalNeeded {
    /// The account.
    pub user_id: Arc<str>,
    /// Unix seconds when the current token expires.
    pub expire_at: i64,
    /// Where the new token comes from.
    pub provider: Arc<dyn TokenProvider>,
    /// Where the outcome goes (weak on the service side: a stopped account is forgotten).
    pub reply_to: Recipient<RenewalOutcome>,
}

/// Account -> TokenService: forget this account (it stopped or logged out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewalCancelled {
    /// The account.
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
    /// The longest backoff.
    pub retry_max: Duration,
    /// Jitter of each backoff, a fraction (0.2 = +-20 %).
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
/// `retry_max`, jittered (the crate's one backoff, src/session/retry.rs).
fn backoff(settings: &RenewalSettings, failures: u32) -> Duration {
    let base = doubling(
        settings.retry_first,
        failures.saturating_sub(1),
        settings.retry_max,
    );
    jittered(base, settings.retry_jitter, &mut rand::thread_rng())
}

fn unix_ms() -> i64 {
    i64::try_from(crate::clock::unix_ms()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
