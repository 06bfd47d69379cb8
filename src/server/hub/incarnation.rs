//! Room incarnations: the id a room gets when it is created, never reused by the server, in
//! this run or a later one (docs/protocol.md, "Room incarnation").
//!
//! An incarnation is the creation time in Unix milliseconds times 1,000 plus a counter:
//! `max(last + 1, now_ms * 1000)`. Within a run it only grows; across a restart the next
//! run starts from its own clock, past every value of the runs before as long as the wall
//! clock does not go back and no run created more than 1,000 rooms a millisecond on average
//! (then it runs ahead of the clock). Values stay below 2^53, exact in a JSON double.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out room incarnations.
#[derive(Debug, Default)]
pub(crate) struct Incarnations {
    last: AtomicU64,
}

impl Incarnations {
    /// The next incarnation for a room created at `now_ms` (Unix milliseconds).
    pub(crate) fn next(&self, now_ms: u64) -> u64 {
        let floor = now_ms.saturating_mul(1000);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = floor.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_time_times_a_thousand_then_a_counter() {
        let i = Incarnations::default();
        assert_eq!(i.next(1_764_100_000_000), 1_764_100_000_000_000);
        assert_eq!(i.next(1_764_100_000_000), 1_764_100_000_000_001);
        assert_eq!(i.next(1_764_100_000_001), 1_764_100_000_001_000);
        // the clock went back: still after the last one given
        assert_eq!(i.next(1_764_099_000_000), 1_764_100_000_001_001);
    }

    #[test]
    fn a_later_run_starts_past_the_earlier_one() {
        let first = Incarnations::default();
        let a = (0..5)
            .map(|_| first.next(1_764_100_000_000))
            .last()
            .unwrap();
        let restarted = Incarnations::default();
        assert!(restarted.next(1_764_100_000_001) > a);
    }

    #[test]
    fn values_are_exact_in_a_json_double() {
        let i = Incarnations::default();
        assert!(i.next(4_102_444_800_000) < 1 << 53, "year 2100");
    }

    #[test]
    fn concurrent_creations_never_share_one() {
        let i = std::sync::Arc::new(Incarnations::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let i = i.clone();
                std::thread::spawn(move || (0..1000).map(|_| i.next(5)).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4000);
    }
}
