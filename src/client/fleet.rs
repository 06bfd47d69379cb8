//! The fleet: the top of the actor tree. It starts the shared services (the root actor that
//! records how accounts end, the token renewal service, the arbiters), places each account on
//! one of its arbiters, and answers for all of them: status, shutdown.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use governor::{Quota, RateLimiter};
use tokio::sync::broadcast;

use super::account::Account;
use super::handle::AccountHandle;
use super::renewal::{RenewalSettings, TokenService};
use super::root::{EndedAccounts, FleetRoot};
use super::shared::FleetShared;
use super::{AccountSpec, AccountStatus, ClientError, Event, FleetConfig};
use super::{FleetMetrics, ShutdownReport};
use crate::bot::Bot;
use crate::clock::unix_ms;
use crate::protocol::{is_valid_id, ConnectionEvent, ConnectionState, ErrorCode};

/// What only the fleet itself touches.
struct FleetOwn {
    /// Every account added, by user id. Written by `add_account` only; how an account
    /// ended is the root actor's record.
    handles: Mutex<HashMap<Arc<str>, AccountHandle>>,
    arbiters: Vec<ArbiterHandle>,
    owned_arbiters: Mutex<Vec<Arbiter>>,
    /// Set by shutdown: no account is added after it.
    stopped: AtomicBool,
    /// Accounts at which the process nears its open-file limit (one socket each).
    fd_warning_at: usize,
}

/// The fleet: the root of the actor tree. Cheap to clone; every clone is the same fleet.
#[derive(Clone)]
pub struct Fleet {
    shared: Arc<FleetShared>,
    own: Arc<FleetOwn>,
}

impl Fleet {
    /// Starts the fleet's root actors (its arbiters, one per core unless configured, the
    /// root that records how accounts end, and the token renewal service). Call inside an
    /// actix `System`.
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
            renewal_needed: renewals.clone().recipient(),
            renewal_cancelled: renewals.recipient(),
            root: FleetRoot::start_own(),
        });
        let own = Arc::new(FleetOwn {
            handles: Mutex::new(HashMap::new()),
            arbiters,
            owned_arbiters: Mutex::new(owned),
            stopped: AtomicBool::new(false),
            fd_warning_at: rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| (soft as usize).saturating_mul(9) / 10)
                .unwrap_or(usize::MAX),
        });
        Fleet { shared, own }
    }

    /// Adds an account: it logs in (through the admission limiter), enters its rooms and
    /// stays online until a terminal cause or [`AccountHandle::logout`].
    pub fn add_account(
        &self,
        spec: AccountSpec,
        bot: Arc<dyn Bot>,
    ) -> Result<AccountHandle, ClientError> {
        if self.own.stopped.load(Ordering::Acquire) {
            return Err(ClientError::FleetStopped);
        }
        if !is_valid_id(&spec.user_id) {
            return Err(ClientError::InvalidUserId(spec.user_id));
        }
        let user_id: Arc<str> = spec.user_id.as_str().into();
        let mut handles = self
            .own
            .handles
            .lock()
            .map_err(|_| ClientError::FleetStopped)?;
        if handles.contains_key(&user_id) {
            return Err(ClientError::DuplicateAccount(spec.user_id));
        }
        let arbiter = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            user_id.hash(&mut h);
            let i = (h.finish() % self.own.arbiters.len() as u64) as usize;
            &self.own.arbiters[i]
        };
        let shared = self.shared.clone();
        let id = user_id.clone();
        let addr =
            Account::start_in_arbiter(arbiter, move |_ctx| Account::new(shared, id, spec, bot));
        let handle = AccountHandle::new(user_id.clone(), addr.recipient(), self.shared.clone());
        handles.insert(user_id, handle.clone());
        if handles.len() == self.own.fd_warning_at {
            tracing::warn!(
                accounts = handles.len(),
                "accounts near the open-file limit (one socket each, two when the backend \
                 shares the machine): raise `ulimit -n` or run shards"
            );
        }
        Ok(handle)
    }

    /// The handle of an account of this fleet.
    pub fn account(&self, user_id: &str) -> Option<AccountHandle> {
        let handles = self.own.handles.lock().ok()?;
        handles.get(user_id).cloned()
    }

    /// Every event of every account (bounded broadcast).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.shared.events.subscribe()
    }

    fn handles(&self) -> Vec<AccountHandle> {
        match self.own.handles.lock() {
            Ok(h) => h.values().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// How the ended accounts ended, from the root (empty if it does not answer in time).
    async fn ended(&self) -> HashMap<Arc<str>, AccountStatus> {
        let ask = self.shared.root.send(EndedAccounts);
        let deadline = self.shared.config.timings.request_timeout;
        match tokio::time::timeout(deadline, ask).await {
            Ok(Ok(ended)) => ended,
            _ => HashMap::new(),
        }
    }

    /// Every account's state now (ended accounts with the status they ended in).
    pub async fn status(&self) -> Vec<AccountStatus> {
        let handles = self.handles();
        let mut ended = self.ended().await;
        let asks = handles.into_iter().map(|handle| {
            let known = ended.remove(handle.user_id());
            async move {
                if let Some(status) = known {
                    return status;
                }
                match handle.state().await {
                    Ok(status) => status,
                    // Too busy to answer in time, or gone without a record: say so, never
                    // guess.
                    Err(e) => AccountStatus {
                        user_id: handle.user_id().to_owned(),
                        state: ConnectionState::Unknown(-1),
                        last_event: ConnectionEvent::Unknown(-1),
                        since_ms: unix_ms(),
                        ended: (e.code != ErrorCode::TIMEOUT).then(|| "stopped".into()),
                        rooms: Vec::new(),
                    },
                }
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
        self.own.stopped.store(true, Ordering::Release);
        let ended = self.ended().await;
        let outs = self
            .handles()
            .into_iter()
            .filter(|h| !ended.contains_key(h.user_id()))
            .map(|h| async move { tokio::time::timeout(deadline, h.logout()).await.is_ok() });
        let results = futures_util::future::join_all(outs).await;
        let logged_out = results.iter().filter(|ok| **ok).count();
        if let Ok(mut arbiters) = self.own.owned_arbiters.lock() {
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
