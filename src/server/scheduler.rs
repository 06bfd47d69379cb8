//! One timer heap for the whole server: room session expiry and delayed room destruction.
//!
//! A job is scheduled once per membership (or empty room) and, when it fires, checks the
//! current state: a membership refreshed since is re-scheduled for its new deadline, so room
//! heartbeats cost no heap operation and nothing scans every room.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

struct Entry<J> {
    at: Instant,
    seq: u64,
    job: J,
}

impl<J> PartialEq for Entry<J> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<J> Eq for Entry<J> {}
impl<J> PartialOrd for Entry<J> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<J> Ord for Entry<J> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A timer heap of jobs of type `J`; whoever runs it ([`Scheduler::run`]) says what a job does.
pub(crate) struct Scheduler<J> {
    heap: Mutex<BinaryHeap<Reverse<Entry<J>>>>,
    seq: AtomicU64,
    notify: Notify,
    stopped: AtomicBool,
}

impl<J> Default for Scheduler<J> {
    fn default() -> Self {
        Self {
            heap: Mutex::new(BinaryHeap::new()),
            seq: AtomicU64::new(0),
            notify: Notify::new(),
            stopped: AtomicBool::new(false),
        }
    }
}

impl<J> Scheduler<J> {
    pub fn schedule(&self, at: Instant, job: J) {
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

    fn pop_due(&self, now: Instant) -> Result<J, Option<Instant>> {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        match heap.peek() {
            Some(Reverse(e)) if e.at <= now => Ok(heap.pop().expect("peeked").0.job),
            Some(Reverse(e)) => Err(Some(e.at)),
            None => Err(None),
        }
    }

    /// Runs jobs as they come due, each through `run_job`, until [`Scheduler::stop`].
    pub async fn run(&self, run_job: impl Fn(J)) {
        let scheduler = self;
        loop {
            if scheduler.stopped.load(Ordering::Acquire) {
                return;
            }
            let notified = scheduler.notify.notified();
            match scheduler.pop_due(Instant::now()) {
                Ok(job) => run_job(job),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[actix_rt::test]
    async fn jobs_run_in_deadline_order_then_stop() {
        let scheduler = std::sync::Arc::new(Scheduler::default());
        let now = Instant::now();
        scheduler.schedule(now + Duration::from_millis(30), 2);
        scheduler.schedule(now + Duration::from_millis(10), 1);
        scheduler.schedule(now + Duration::from_millis(30), 3);
        assert_eq!(scheduler.len(), 3);
        let ran = std::sync::Mutex::new(Vec::new());
        let runner = scheduler.run(|job| {
            let mut ran = ran.lock().unwrap();
            ran.push(job);
            if ran.len() == 3 {
                scheduler.stop();
            }
        });
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("the scheduler stops after the last job");
        assert_eq!(*ran.lock().unwrap(), [1, 2, 3]);
    }
}
