//! Fleet-wide counters and histograms, shared by every account (one `Arc`, atomics; no
//! per-account copy). The runner renders them as Prometheus text; the load tester reads them.
//! Gauges of accounts and rooms by state come from [`crate::client::Fleet::status`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A latency histogram in microseconds (1 us to 1 hour, 3 significant digits).
#[derive(Debug)]
pub struct LatencyHistogram(Mutex<Histogram<u64>>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self(Mutex::new(
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid"),
        ))
    }
}

impl LatencyHistogram {
    /// Records a duration (clamped to the histogram's range).
    pub fn record(&self, d: std::time::Duration) {
        let us = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        if let Ok(mut h) = self.0.lock() {
            let _ = h.record(us);
        }
    }
    /// A copy of the histogram now.
    pub fn snapshot(&self) -> Histogram<u64> {
        self.0
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

/// Counters and histograms of a fleet.
#[derive(Debug, Default)]
pub struct FleetMetrics {
    /// First logins attempted.
    pub logins_attempted: Counter,
    /// First logins that succeeded.
    pub logins_succeeded: Counter,
    /// Links lost (each (Reconnecting, LoginInterrupted)).
    pub disconnects: Counter,
    /// Re-logins attempted while Reconnecting.
    pub relogins_attempted: Counter,
    /// Re-logins that succeeded.
    pub relogins_succeeded: Counter,
    /// Time from Reconnecting to Connected.
    pub reconnect_time: LatencyHistogram,
    /// First login latency (login sent to reply).
    pub login_latency: LatencyHistogram,
    /// Room entry latency (create/join/enter sent to Connected).
    pub room_enter_latency: LatencyHistogram,
    /// Room recoveries after T2: still a member / rejoined after ConnectTimeout / recreated or
    /// entered after RoomNotExist / gave up.
    pub room_recovered_member: Counter,
    /// Rooms rejoined after ConnectTimeout.
    pub room_recovered_after_timeout: Counter,
    /// Rooms recreated or entered again after RoomNotExist.
    pub room_recovered_after_not_exist: Counter,
    /// Rooms that gave up recovering.
    pub room_recovery_gave_up: Counter,
    /// Time from a room's (Connecting, NetworkInterrupted) back to (Connected, Success).
    pub room_recovery_time: LatencyHistogram,
    /// Token renewals by outcome: `renewals_ok` counts renew_token calls the server accepted
    /// (counted by the account); `renewals_failed` counts failed attempts, both a provider
    /// call that failed (counted by the TokenService, which retries) and a renew_token the
    /// server refused (counted by the account); `renewals_gave_up` counts accounts whose
    /// renewal ran out of time.
    pub renewals_ok: Counter,
    /// Failed renewal attempts (see `renewals_ok`).
    pub renewals_failed: Counter,
    /// Accounts whose renewal ran out of time.
    pub renewals_gave_up: Counter,
    /// Messages sent (acknowledged by the server).
    pub messages_sent: Counter,
    /// Sends that failed.
    pub messages_send_failed: Counter,
    /// Messages received by bots.
    pub messages_received: Counter,
    /// Accounts ended by a kickout.
    pub kicked_out: Counter,
    /// Accounts ended by token expiry.
    pub token_expired: Counter,
    /// Accounts ended as unregistered.
    pub unregistered: Counter,
    /// Accounts whose login was refused.
    pub login_rejected: Counter,
    /// Accounts that logged out.
    pub logged_out: Counter,
    /// Bot handler panics caught.
    pub handler_panics: Counter,
    /// Room actors started / stopped for good (equal when no room actor is alive).
    pub room_actors_started: Counter,
    /// Room actors stopped for good.
    pub room_actors_stopped: Counter,
    /// Supervised restarts of room actors (T2 ConnectTimeout / RoomNotExist recoveries).
    pub room_restarts: Counter,
}
