//! The outbox of one account: sends that wait for the account (and, for a room the account
//! keeps, for that room) to be connected (docs/zim-semantics.md, "Sending while not
//! connected"). Pure code, generic over what a send carries; the account actor owns one.
//!
//! - Bounded: a full outbox refuses the send (the caller answers a network error).
//! - Order: sends go in the order they were made; one that must wait does not stop a send
//!   for another conversation that may go.
//! - Expiry: a send waiting past its deadline fails (it was never sent).
//! - A drop: sends in flight when the link went down go back to the front, in their order,
//!   to be sent again with the same client message id.

use std::collections::VecDeque;
use std::time::Instant;

/// One waiting send.
#[derive(Debug)]
pub struct Queued<T> {
    /// The room the send goes to, when it is a room message (gated by that room).
    pub room: Option<Box<str>>,
    /// Past this it fails unsent.
    pub deadline: Instant,
    /// What the actor sends.
    pub item: T,
}

/// What [`Outbox::take_ready`] found.
#[derive(Debug)]
pub struct Ready<T> {
    /// May go now, in order.
    pub send: Vec<Queued<T>>,
    /// Waited too long: fail them unsent.
    pub expired: Vec<Queued<T>>,
}

/// The bounded, ordered, expiring queue of sends.
#[derive(Debug)]
pub struct Outbox<T> {
    queue: VecDeque<Queued<T>>,
    capacity: usize,
}

impl<T> Outbox<T> {
    /// An empty outbox holding at most `capacity` sends.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
        }
    }

    /// Sends waiting now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a new send may go at once: nothing waits (order) and the gate is open.
    pub fn may_bypass(&self, gate_open: bool) -> bool {
        self.queue.is_empty() && gate_open
    }

    /// Queues a send at the back; a full outbox hands it back.
    pub fn push(&mut self, queued: Queued<T>) -> Result<(), Queued<T>> {
        if self.queue.len() >= self.capacity {
            return Err(queued);
        }
        self.queue.push_back(queued);
        Ok(())
    }

    /// Puts sends that were in flight when the link dropped back at the front, keeping
    /// their order (they go again before anything queued later). Never refused: they were
    /// admitted once.
    pub fn put_back(&mut self, in_flight: Vec<Queued<T>>) {
        for queued in in_flight.into_iter().rev() {
            self.queue.push_front(queued);
        }
    }

    /// Takes, in order, what may go now: nothing while the account is not `connected`; a
    /// room send only when `room_open(room)`. Expired sends come out to fail.
    pub fn take_ready(
        &mut self,
        now: Instant,
        connected: bool,
        room_open: impl Fn(&str) -> bool,
    ) -> Ready<T> {
        let mut ready = Ready {
            send: Vec::new(),
            expired: Vec::new(),
        };
        if !connected {
            return ready;
        }
        let mut waiting = VecDeque::with_capacity(self.queue.len());
        for queued in self.queue.drain(..) {
            if queued.deadline <= now {
                ready.expired.push(queued);
            } else if queued.room.as_deref().is_none_or(&room_open) {
                ready.send.push(queued);
            } else {
                waiting.push_back(queued);
            }
        }
        self.queue = waiting;
        ready
    }

    /// Takes the sends whose deadline has passed.
    pub fn expire(&mut self, now: Instant) -> Vec<Queued<T>> {
        let (expired, kept): (Vec<_>, Vec<_>) =
            self.queue.drain(..).partition(|q| q.deadline <= now);
        self.queue = kept.into();
        expired
    }

    /// The earliest deadline among the waiting sends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().map(|q| q.deadline).min()
    }

    /// Takes everything (the account ended).
    pub fn drain(&mut self) -> Vec<Queued<T>> {
        self.queue.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn q(room: Option<&str>, at: Instant, item: u32) -> Queued<u32> {
        Queued {
            room: room.map(Into::into),
            deadline: at,
            item,
        }
    }

    fn items(v: &[Queued<u32>]) -> Vec<u32> {
        v.iter().map(|q| q.item).collect()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn nothing_goes_while_the_account_is_not_connected() {
        let mut o = Outbox::new(4);
        o.push(q(None, later(), 1)).unwrap();
        let r = o.take_ready(Instant::now(), false, |_| true);
        assert!(r.send.is_empty() && r.expired.is_empty());
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn connected_sends_go_in_order() {
        let mut o = Outbox::new(4);
        for i in 1..=3 {
            o.push(q(None, later(), i)).unwrap();
        }
        let r = o.take_ready(Instant::now(), true, |_| true);
        assert_eq!(items(&r.send), [1, 2, 3]);
        assert!(o.is_empty());
    }

    #[test]
    fn a_room_send_waits_for_its_room_and_others_pass() {
        let mut o = Outbox::new(4);
        o.push(q(Some("r1"), later(), 1)).unwrap();
        o.push(q(None, later(), 2)).unwrap();
        o.push(q(Some("r2"), later(), 3)).unwrap();
        let r = o.take_ready(Instant::now(), true, |room| room == "r2");
        assert_eq!(items(&r.send), [2, 3]);
        assert_eq!(o.len(), 1);
        let r = o.take_ready(Instant::now(), true, |_| true);
        assert_eq!(items(&r.send), [1]);
    }

    #[test]
    fn a_full_outbox_refuses() {
        let mut o = Outbox::new(2);
        o.push(q(None, later(), 1)).unwrap();
        o.push(q(None, later(), 2)).unwrap();
        assert_eq!(o.push(q(None, later(), 3)).unwrap_err().item, 3);
    }

    #[test]
    fn a_new_send_bypasses_only_an_empty_outbox_with_an_open_gate() {
        let mut o = Outbox::new(2);
        assert!(o.may_bypass(true));
        assert!(!o.may_bypass(false));
        o.push(q(None, later(), 1)).unwrap();
        assert!(!o.may_bypass(true));
    }

    #[test]
    fn expired_sends_come_out_to_fail_when_swept_or_flushed() {
        let t0 = Instant::now();
        let mut o = Outbox::new(4);
        o.push(q(None, t0 + Duration::from_millis(10), 1)).unwrap();
        o.push(q(None, t0 + Duration::from_millis(30), 2)).unwrap();
        o.push(q(Some("r"), t0 + Duration::from_millis(20), 3))
            .unwrap();
        assert_eq!(o.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(items(&o.expire(t0 + Duration::from_millis(15))), [1]);
        let r = o.take_ready(t0 + Duration::from_millis(25), true, |_| false);
        assert_eq!((items(&r.send), items(&r.expired)), (vec![2], vec![3]));
        assert_eq!(o.next_deadline(), None);
    }

    #[test]
    fn in_flight_sends_go_back_to_the_front_in_order_even_when_full() {
        let mut o = Outbox::new(2);
        o.push(q(None, later(), 3)).unwrap();
        o.push(q(None, later(), 4)).unwrap();
        o.put_back(vec![q(None, later(), 1), q(None, later(), 2)]);
        let r = o.take_ready(Instant::now(), true, |_| true);
        assert_eq!(items(&r.send), [1, 2, 3, 4]);
    }

    #[test]
    fn drain_takes_everything() {
        let mut o = Outbox::new(2);
        o.push(q(None, later(), 1)).unwrap();
        o.push(q(Some("r"), later(), 2)).unwrap();
        assert_eq!(items(&o.drain()), [1, 2]);
        assert!(o.is_empty());
    }
}
