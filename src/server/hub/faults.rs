//! Fault injection state: blackholes (an outage as the client sees it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Whom a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    All,
    Users(Vec<String>),
}

#[derive(Default)]
pub(super) struct Blackholes {
    pub(super) all_until: Option<Instant>,
    pub(super) users: HashMap<Arc<str>, Instant>,
}

#[derive(Default)]
pub(super) struct Faults {
    /// Fast path: no lock per frame while no blackhole was ever set.
    pub(super) any: AtomicBool,
    pub(super) blackholes: Mutex<Blackholes>,
}

impl Faults {
    pub(super) fn lock(&self) -> MutexGuard<'_, Blackholes> {
        self.blackholes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_blackholed(&self, user: Option<&str>) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let mut b = self.lock();
        if b.all_until.is_some_and(|t| t > now) {
            return true;
        }
        b.users.retain(|_, until| *until > now);
        if b.all_until.is_some_and(|t| t <= now) {
            b.all_until = None;
        }
        if b.all_until.is_none() && b.users.is_empty() {
            self.any.store(false, Ordering::Relaxed);
        }
        user.is_some_and(|u| b.users.contains_key(u))
    }
}
