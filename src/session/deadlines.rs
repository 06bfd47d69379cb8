//! The timed duties of one account, kept for one timer (docs/design.md, "What an account
//! costs"): heartbeats, room heartbeats, the token's warning and end, and the deadlines of
//! requests in flight. The account arms a single timer for the earliest of them; when it
//! fires, the duties that are due are taken and the timer is armed again for the next one.
//! A timer per duty would cost every idle account a boxed future and a timer entry each, and
//! spill actix's inline list of an actor's futures onto the heap for good.
//!
//! Pure: the instants come in from the caller.

use std::time::Instant;

/// One kind of timed duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// Send a heartbeat (repeats every heartbeat interval while logged in).
    Heartbeat,
    /// Tell the rooms a room heartbeat is due (repeats while logged in).
    RoomHeartbeat,
    /// onTokenWillExpire is due.
    TokenWarn,
    /// Without a renewal the account ends now.
    TokenEnd,
    /// The earliest deadline of a request in flight.
    Requests,
}

impl Duty {
    /// Every duty, in the order due duties are handed out when they fall at the same time.
    pub const ALL: [Duty; 5] = [
        Duty::Requests,
        Duty::Heartbeat,
        Duty::RoomHeartbeat,
        Duty::TokenWarn,
        Duty::TokenEnd,
    ];

    fn slot(self) -> usize {
        match self {
            Duty::Requests => 0,
            Duty::Heartbeat => 1,
            Duty::RoomHeartbeat => 2,
            Duty::TokenWarn => 3,
            Duty::TokenEnd => 4,
        }
    }
}

/// A slot with nothing scheduled.
const NONE: u64 = u64::MAX;

/// When each duty is due, kept as nanoseconds after one base instant (an actor's size is
/// what an idle account costs; five `Option<Instant>` would take 80 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines {
    base: Instant,
    due: [u64; 5],
}

impl Default for Deadlines {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Deadlines {
    /// Nothing scheduled; times are kept relative to `base` (an instant before any of them).
    pub fn new(base: Instant) -> Self {
        Self {
            base,
            due: [NONE; 5],
        }
    }

    fn encode(&self, at: Instant) -> u64 {
        // before the base: due at once; past ~584 years: the latest time that can be kept
        u64::try_from(at.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(NONE - 1)
            .min(NONE - 1)
    }

    fn decode(&self, v: u64) -> Option<Instant> {
        (v != NONE).then(|| self.base + std::time::Duration::from_nanos(v))
    }

    /// `duty` is due at `at` (replaces its earlier time).
    pub fn set(&mut self, duty: Duty, at: Instant) {
        self.due[duty.slot()] = self.encode(at);
    }

    /// `duty` is due at `at` or at its time already set, whichever comes first.
    pub fn set_earlier(&mut self, duty: Duty, at: Instant) {
        let v = self.encode(at);
        let slot = &mut self.due[duty.slot()];
        *slot = (*slot).min(v);
    }

    /// `duty` is no longer scheduled.
    pub fn clear(&mut self, duty: Duty) {
        self.due[duty.slot()] = NONE;
    }

    /// When `duty` is due.
    pub fn get(&self, duty: Duty) -> Option<Instant> {
        self.decode(self.due[duty.slot()])
    }

    /// The earliest time anything is due.
    pub fn next(&self) -> Option<Instant> {
        self.decode(self.due.iter().copied().min().unwrap_or(NONE))
    }

    /// Takes (unschedules) every duty due at `now`; they come out in [`Duty::ALL`] order.
    pub fn take_due(&mut self, now: Instant) -> Due {
        let now = self.encode(now);
        let mut due = Due(0);
        for duty in Duty::ALL {
            let slot = &mut self.due[duty.slot()];
            if *slot != NONE && *slot <= now {
                *slot = NONE;
                due.0 |= 1 << duty.slot();
            }
        }
        due
    }
}

/// The duties [`Deadlines::take_due`] took (a set, no allocation: it runs on every tick of
/// every account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due(u8);

impl Iterator for Due {
    type Item = Duty;

    fn next(&mut self) -> Option<Duty> {
        let duty = Duty::ALL
            .into_iter()
            .find(|d| self.0 & (1 << d.slot()) != 0)?;
        self.0 &= !(1 << duty.slot());
        Some(duty)
    }
}

/// Whether a timer armed for `armed` must be re-armed to serve `next`: it is not armed, or it
/// fires later than the earliest duty. A timer that fires early finds nothing due and is armed
/// again, so an earlier timer is kept.
pub fn needs_rearm(armed: Option<Instant>, next: Option<Instant>) -> bool {
    match (armed, next) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(n)) => n < a,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn nothing_scheduled_has_no_next() {
        let d = Deadlines::default();
        assert_eq!(d.next(), None);
    }

    #[test]
    fn a_time_before_the_base_is_due_at_once() {
        let t = Instant::now();
        let mut d = Deadlines::new(at(t, 1_000));
        d.set(Duty::TokenWarn, t);
        assert_eq!(d.get(Duty::TokenWarn), Some(at(t, 1_000)));
        assert_eq!(
            d.take_due(at(t, 1_000)).collect::<Vec<_>>(),
            vec![Duty::TokenWarn]
        );
    }

    #[test]
    fn next_is_the_earliest_duty() {
        let t = Instant::now();
        let mut d = Deadlines::new(t);
        d.set(Duty::Heartbeat, at(t, 10_000));
        d.set(Duty::TokenWarn, at(t, 5_000));
        d.set(Duty::RoomHeartbeat, at(t, 15_000));
        assert_eq!(d.next(), Some(at(t, 5_000)));
        d.clear(Duty::TokenWarn);
        assert_eq!(d.next(), Some(at(t, 10_000)));
    }

    #[test]
    fn set_replaces_and_set_earlier_keeps_the_minimum() {
        let t = Instant::now();
        let mut d = Deadlines::new(t);
        d.set(Duty::TokenEnd, at(t, 100));
        d.set(Duty::TokenEnd, at(t, 900));
        assert_eq!(d.get(Duty::TokenEnd), Some(at(t, 900)));
        d.set_earlier(Duty::Requests, at(t, 300));
        d.set_earlier(Duty::Requests, at(t, 500));
        assert_eq!(d.get(Duty::Requests), Some(at(t, 300)));
        d.set_earlier(Duty::Requests, at(t, 200));
        assert_eq!(d.get(Duty::Requests), Some(at(t, 200)));
    }

    #[test]
    fn take_due_takes_only_what_is_due_in_order() {
        let t = Instant::now();
        let mut d = Deadlines::new(t);
        d.set(Duty::TokenEnd, at(t, 50));
        d.set(Duty::Heartbeat, at(t, 50));
        d.set(Duty::Requests, at(t, 10));
        d.set(Duty::RoomHeartbeat, at(t, 60));
        assert_eq!(
            d.take_due(at(t, 50)).collect::<Vec<_>>(),
            vec![Duty::Requests, Duty::Heartbeat, Duty::TokenEnd]
        );
        assert_eq!(d.next(), Some(at(t, 60)));
        assert_eq!(d.take_due(at(t, 59)).next(), None);
        assert_eq!(
            d.take_due(at(t, 60)).collect::<Vec<_>>(),
            vec![Duty::RoomHeartbeat]
        );
        assert_eq!(d.next(), None);
    }

    #[test]
    fn rearm_only_when_unarmed_or_later_than_the_next_duty() {
        let t = Instant::now();
        assert!(!needs_rearm(None, None));
        assert!(!needs_rearm(Some(at(t, 5)), None));
        assert!(needs_rearm(None, Some(at(t, 5))));
        assert!(needs_rearm(Some(at(t, 10)), Some(at(t, 5))));
        assert!(!needs_rearm(Some(at(t, 5)), Some(at(t, 5))));
        assert!(!needs_rearm(Some(at(t, 5)), Some(at(t, 10))));
    }
}
