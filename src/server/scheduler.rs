//! One timer heap for the whole server: room session expiry and delayed room destruction.
//!
//! A job is scheduled once per membership (or empty room) and, when it fires, checks the
//! current state: a membership refreshed since is re-scheduled for its new deadline, so room
//! heartbeats cost no heap operation and nothing scans every room.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::Notify;

use super::hub::{Hub, RoomCell};

/// Work the scheduler does when its time comes.
pub(crate) enum Job {
    /// End the membership `membership` of `user` if its room session expired.
    MembershipCheck {
        room: Weak<RoomCell>,
        user: Arc<str>,
        membership: u64,
    },
    /// Destroy the room if it is still empty since `generation`.
    DestroyIfEmpty {
        room: Weak<RoomCell>,
        generation: u64,
    },
}

struct Entry {
    at: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
pub(crate) struct Scheduler {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    seq: AtomicU64,
    notify: Notify,
    stopped: AtomicBool,
}

impl Scheduler {
    pub fn schedule(&self, at: Instant, job: Job) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = heap.peek().is_none_or(|Reverse(e)| at < e.at);
        heap.push(Reverse(Entry { at, seq, job }));
        drop(heap);
        if earliest {
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.heap.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn pop_due(&self, now: Instant) -> Result<Job, Option<Instant>> {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        match heap.peek() {
            Some(Reverse(e)) if e.at <= now => Ok(heap.pop().expect("peeked").0.job),
            Some(Reverse(e)) => Err(Some(e.at)),
            None => Err(None),
        }
    }

    /// Runs jobs as they come due until [`Scheduler::stop`].
    pub async fn run(hub: Arc<Hub>) {
        let scheduler = &hub.scheduler;
        loop {
            if scheduler.stopped.load(Ordering::Acquire) {
                return;
            }
            let notified = scheduler.notify.notified();
            match scheduler.pop_due(Instant::now()) {
                Ok(job) => hub.run_job(job),
                Err(Some(at)) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    }
                }
                Err(None) => notified.await,
            }
        }
    }
}
