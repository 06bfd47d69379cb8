//! What every account of a fleet shares, one copy behind an `Arc`: settings, the admission
//! limiter, metrics, the event broadcast and the addresses of the fleet's service actors.

use std::sync::Arc;

use actix::{Addr, Recipient};
use governor::DefaultDirectRateLimiter;
use tokio::sync::broadcast;

use super::renewal::{RenewalCancelled, RenewalNeeded};
use super::root::FleetRoot;
use super::{Event, EventKind, FleetConfig, FleetMetrics};
use crate::clock::unix_ms;

/// Shared by the fleet, every account, room and handle.
pub(crate) struct FleetShared {
    /// The fleet's settings.
    pub config: FleetConfig,
    /// Logins, re-logins and room entries, fleet-wide.
    pub admission: DefaultDirectRateLimiter,
    /// Counters and histograms.
    pub metrics: Arc<FleetMetrics>,
    /// Every event of every account.
    pub events: broadcast::Sender<Arc<Event>>,
    /// The token renewal service: renew this account's token.
    pub renewal_needed: Recipient<RenewalNeeded>,
    /// The token renewal service: forget this account.
    pub renewal_cancelled: Recipient<RenewalCancelled>,
    /// The fleet's root actor: told when an account ends, asked for how it ended.
    pub root: Addr<FleetRoot>,
}

impl FleetShared {
    /// Sends an event to the fleet's subscribers and to tracing.
    pub fn publish(&self, account: &str, kind: EventKind) {
        let event = Arc::new(Event {
            ts_ms: unix_ms(),
            account: account.to_owned(),
            kind,
        });
        if tracing::enabled!(target: "zimfleet::event", tracing::Level::INFO) {
            let line = serde_json::to_string(&*event).unwrap_or_default();
            tracing::info!(target: "zimfleet::event", "{line}");
        }
        let _ = self.events.send(event);
    }
}
