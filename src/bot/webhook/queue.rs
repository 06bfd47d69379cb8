//! One account's webhook queue: ordered, bounded, and when full the oldest event goes (and is
//! counted) so the newest always gets in. The bot pushes from the account's handlers, which
//! never wait; the account's delivery task takes from the front.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Queued behind the others.
    Queued,
    /// Queued; the queue was full, so this oldest item was dropped to make room.
    DroppedOldest(T),
    /// The queue is closed (its account ended); nothing was queued.
    Closed,
}

/// What the delivery task gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// The oldest item.
    Item(T),
    /// Nothing arrived within the wait; ask again.
    Idle,
    /// Closed and empty: the task ends.
    Closed,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    closed: bool,
}

/// A bounded first-in first-out queue that drops its oldest item when full.
#[derive(Debug)]
pub struct EventQueue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

impl<T> EventQueue<T> {
    /// An empty queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                capacity: capacity.max(1),
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item` at the back; never waits.
    pub fn push(&self, item: T) -> Pushed<T> {
        let pushed = {
            let mut state = self.lock();
            if state.closed {
                return Pushed::Closed;
            }
            let dropped = if state.items.len() >= state.capacity {
                state.items.pop_front()
            } else {
                None
            };
            state.items.push_back(item);
            match dropped {
                Some(old) => Pushed::DroppedOldest(old),
                None => Pushed::Queued,
            }
        };
        self.ready.notify_one();
        pushed
    }

    /// Takes the front item now, if any.
    pub fn pop(&self) -> Next<T> {
        let mut state = self.lock();
        match state.items.pop_front() {
            Some(item) => Next::Item(item),
            None if state.closed => Next::Closed,
            None => Next::Idle,
        }
    }

    /// Takes the front item, waiting at most `wait` for one.
    pub async fn next(&self, wait: Duration) -> Next<T> {
        let notified = self.ready.notified();
        match self.pop() {
            Next::Idle => {}
            other => return other,
        }
        let _ = tokio::time::timeout(wait, notified).await;
        self.pop()
    }

    /// No more pushes; what is queued is still taken, then [`Next::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Items waiting now.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_the_oldest_when_full() {
        let q = EventQueue::new(3);
        assert_eq!(q.push(1), Pushed::Queued);
        assert_eq!(q.push(2), Pushed::Queued);
        assert_eq!(q.push(3), Pushed::Queued);
        assert_eq!(q.push(4), Pushed::DroppedOldest(1));
        assert_eq!(q.push(5), Pushed::DroppedOldest(2));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Next::Item(3));
        assert_eq!(q.pop(), Next::Item(4));
        assert_eq!(q.pop(), Next::Item(5));
        assert_eq!(q.pop(), Next::Idle);
    }

    #[test]
    fn a_closed_queue_drains_then_says_closed() {
        let q = EventQueue::new(2);
        q.push("a");
        q.close();
        assert_eq!(q.push("b"), Pushed::Closed);
        assert_eq!(q.pop(), Next::Item("a"));
        assert_eq!(q.pop(), Next::Closed);
    }

    #[test]
    fn a_zero_capacity_still_holds_one() {
        let q = EventQueue::new(0);
        assert_eq!(q.push(1), Pushed::Queued);
        assert_eq!(q.push(2), Pushed::DroppedOldest(1));
    }

    #[actix_rt::test]
    async fn next_wakes_on_a_push_and_gives_up_after_its_wait() {
        let q = std::sync::Arc::new(EventQueue::new(4));
        assert_eq!(q.next(Duration::from_millis(10)).await, Next::Idle);
        let pusher = std::sync::Arc::clone(&q);
        actix_rt::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            pusher.push(9);
        });
        let started = std::time::Instant::now();
        assert_eq!(q.next(Duration::from_secs(5)).await, Next::Item(9));
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
