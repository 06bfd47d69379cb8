//! The server's counters and the stats the admin API reports.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_refused: AtomicU64,
    pub messages_routed: AtomicU64,
    pub pushes_queued: AtomicU64,
    pub outbound_overflows: AtomicU64,
    pub offline_stored: AtomicU64,
    pub offline_dropped: AtomicU64,
    pub kickouts: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub bad_frames: AtomicU64,
    pub room_sessions_expired: AtomicU64,
    pub rooms_destroyed: AtomicU64,
}

pub(super) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What `GET /admin/stats` and [`super::Admin::stats`] report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Open WebSocket connections (logged in or not).
    pub sessions: u64,
    /// Users with a logged-in session.
    pub users_online: u64,
    /// Users the server knows (logged in at least once, not unregistered).
    pub users_known: u64,
    pub rooms: u64,
    /// Room memberships, summed over rooms.
    pub members: u64,
    /// Messages accepted by message_send (resends not counted).
    pub messages_routed: u64,
    /// Frames queued to sessions (replies excluded).
    pub pushes_queued: u64,
    /// Sessions closed because their outbound queue was full.
    pub outbound_overflows: u64,
    pub connections_total: u64,
    pub logins_ok: u64,
    pub logins_refused: u64,
    pub offline_stored: u64,
    pub offline_dropped: u64,
    pub kickouts: u64,
    pub heartbeat_timeouts: u64,
    pub bad_frames: u64,
    pub room_sessions_expired: u64,
    pub rooms_destroyed: u64,
    /// Active fault injections.
    pub faults_active: FaultStats,
    /// Timers waiting in the scheduler (room session checks, delayed destroys).
    pub scheduled_timers: u64,
}

/// Active blackholes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FaultStats {
    /// Whether every user is blackholed.
    pub blackhole_all: bool,
    /// Users blackholed one by one.
    pub blackholed_users: u64,
}
