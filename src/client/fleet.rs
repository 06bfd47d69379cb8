//! The fleet: the root of the actor tree. It owns what every account shares (settings, the
//! admission limiter, metrics, the event broadcast, the registry of accounts) and places each
//! account on one of its arbiters (one per core).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::broadcast;

use super::account::Account;
use super::handle::AccountHandle;
use super::renewal::{RenewalCancelled, RenewalNeeded, RenewalSettings, TokenService};
use super::{AccountSpec, AccountStatus, ClientError, Event, EventKind, FleetConfig};
use super::{FleetMetrics, ShutdownReport};
use crate::bot::Bot;
use crate::protocol::{is_valid_id, ConnectionEvent, ConnectionState, ErrorCode};

/// One account in the registry: its handle, and once it ended, its last status.
pub(crate) struct AccountEntry {
    pub handle: AccountHandle,
    pub ended: Option<AccountStatus>,
}

/// What every account of a fleet shares: one copy behind an `Arc`.
pub(crate) struct FleetShared {
    pub config: FleetConfig,
    /// Logins, re-logins and room entries, fleet-wide.
    pub admission: DefaultDirectRateLimiter,
    pub metrics: Arc<FleetMetrics>,
    pub events: broadcast::Sender<Arc<Event>>,
    pub registry: Mutex<HashMap<Arc<str>, AccountEntry>>,
    /// The token renewal service.
    pub renewal_needed: Recipient<RenewalNeeded>,
    pub renewal_cancelled: Recipient<RenewalCancelled>,
    arbiters: Vec<ArbiterHandle>,
    /// Set by shutdown: no account is added after it.
    stopped: std::sync::atomic::AtomicBool,
    /// Accounts at which the process nears its open-file limit (one socket each).
    fd_warning_at: usize,
    owned_arbiters: Mutex<Vec<Arbiter>>,
}

impl FleetShared {
    /// Sends an event to the fleet's subscribers and to tracing; returns it for the bot.
    pub fn publish(&self, account: &str, kind: EventKind) -> Arc<Event> {
        let event = Arc::new(Event {
            ts_ms: now_ms(),
            account: account.to_owned(),
            kind,
        });
        if tracing::enabled!(target: "zimfleet::event", tracing::Level::INFO) {
            let line = serde_json::to_string(&*event).unwrap_or_default();
            tracing::info!(target: "zimfleet::event", "{line}");
        }
        let _ = self.events.send(event.clone());
        event
    }

    /// Records that an account ended, with its final status.
    pub fn record_end(&self, user_id: &str, status: AccountStatus) {
        if let Ok(mut registry) = self.registry.lock() {
            if let Some(entry) = registry.get_mut(user_id) {
                entry.ended = Some(status);
            }
        }
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The fleet: the root of the actor tree. Cheap to clone; every clone is the same fleet.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<FleetShared>,
}

impl Fleet {
    /// Starts the fleet's root actors (its arbiters, one per core unless configured, and the
    /// token renewal service). Call inside an actix `System`.
    pub fn start(config: FleetConfig) -> Fleet {
        let workers = if config.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.workers
        };
        let owned: Vec<Arbiter> = (0..workers).map(|_| Arbiter::new()).collect();
        let arbiters = owned.iter().map(|a| a.handle()).collect();
        let per_sec = NonZeroU32::new(config.admission_per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.admission_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let admission = RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst));
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let metrics = Arc::new(FleetMetrics::default());
        let renewals = TokenService::start_with(
            RenewalSettings {
                per_sec: config.renewals_per_sec.max(1),
                expire_margin: config.timings.expire_margin,
                ..RenewalSettings::default()
            },
            metrics.clone(),
        );
        let shared = Arc::new(FleetShared {
            config,
            admission,
            metrics,
            events,
            registry: Mutex::new(HashMap::new()),
            renewal_needed: renewals.clone().recipient(),
            renewal_cancelled: renewals.recipient(),
            arbiters,
            stopped: std::sync::atomic::AtomicBool::new(false),
            fd_warning_at: rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| (soft as usize).saturating_mul(9) / 10)
                .unwrap_or(usize::MAX),
            owned_arbiters: Mutex::new(owned),
        });
        Fleet { shared }
    }

    /// Adds an account: it logs in (through the admission limiter), enters its rooms and
    /// stays online until a terminal cause or [`AccountHandle::logout`].
    pub fn add_account(
        &self,
        spec: AccountSpec,
        bot: Arc<dyn Bot>,
    ) -> Result<AccountHandle, ClientError> {
        if self
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(ClientError::FleetStopped);
        }
        if !is_valid_id(&spec.user_id) {
            return Err(ClientError::InvalidUserId(spec.user_id));
        }
        let user_id: Arc<str> = spec.user_id.as_str().into();
        let mut registry = self
            .shared
            .registry
            .lock()
            .map_err(|_| ClientError::FleetStopped)?;
        if registry.contains_key(&user_id) {
            return Err(ClientError::DuplicateAccount(spec.user_id));
        }
        let arbiter = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            user_id.hash(&mut h);
            let i = (h.finish() % self.shared.arbiters.len() as u64) as usize;
            &self.shared.arbiters[i]
        };
        let shared = self.shared.clone();
        let id = user_id.clone();
        let addr =
            Account::start_in_arbiter(arbiter, move |_ctx| Account::new(shared, id, spec, bot));
        let handle = AccountHandle::new(user_id.clone(), addr, self.shared.clone());
        registry.insert(
            user_id,
            AccountEntry {
                handle: handle.clone(),
                ended: None,
            },
        );
        if registry.len() == self.shared.fd_warning_at {
            tracing::warn!(
                accounts = registry.len(),
                "accounts near the open-file limit (one socket each, two when the backend \
                 shares the machine): raise `ulimit -n` or run shards"
            );
        }
        Ok(handle)
    }

    /// The handle of an account of this fleet.
    pub fn account(&self, user_id: &str) -> Option<AccountHandle> {
        let registry = self.shared.registry.lock().ok()?;
        registry.get(user_id).map(|e| e.handle.clone())
    }

    /// Every event of every account (bounded broadcast).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.shared.events.subscribe()
    }

    /// Every account's state now (ended accounts with the status they ended in).
    pub async fn status(&self) -> Vec<AccountStatus> {
        let entries: Vec<(AccountHandle, Option<AccountStatus>)> = match self.shared.registry.lock()
        {
            Ok(r) => r
                .values()
                .map(|e| (e.handle.clone(), e.ended.clone()))
                .collect(),
            Err(_) => return Vec::new(),
        };
        let asks = entries.into_iter().map(|(handle, ended)| async move {
            if let Some(status) = ended {
                return status;
            }
            match handle.state().await {
                Ok(status) => status,
                // Too busy to answer in time, or gone without a record: say so, never guess.
                Err(e) => AccountStatus {
                    user_id: handle.user_id().to_owned(),
                    state: ConnectionState::Unknown(-1),
                    last_event: ConnectionEvent::Unknown(-1),
                    since_ms: now_ms(),
                    ended: (e.code != ErrorCode::TIMEOUT).then(|| "stopped".into()),
                    rooms: Vec::new(),
                },
            }
        });
        let mut all = futures_util::future::join_all(asks).await;
        all.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        all
    }

    /// The fleet's counters and histograms.
    pub fn metrics(&self) -> Arc<FleetMetrics> {
        self.shared.metrics.clone()
    }

    /// Leaves rooms and logs out every account, waiting at most `deadline`; then stops the
    /// fleet's arbiters.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::Release);
        let handles: Vec<AccountHandle> = match self.shared.registry.lock() {
            Ok(r) => r
                .values()
                .filter(|e| e.ended.is_none())
                .map(|e| e.handle.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        let outs = handles
            .into_iter()
            .map(|h| async move { tokio::time::timeout(deadline, h.logout()).await.is_ok() });
        let results = futures_util::future::join_all(outs).await;
        let logged_out = results.iter().filter(|ok| **ok).count();
        if let Ok(mut arbiters) = self.shared.owned_arbiters.lock() {
            for arbiter in arbiters.drain(..) {
                arbiter.stop();
            }
        }
        ShutdownReport {
            logged_out,
            timed_out: results.len() - logged_out,
        }
    }
}
