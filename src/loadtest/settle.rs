//! The wait for accounts to settle (the shorthand's ramp, the drain).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::track::Tracker;
use crate::client::Fleet;
use crate::protocol::{ConnectionState, RoomState};

/// "Has every added account settled?" (Connected with every room Connected, or ended or
/// logged out, or a room out after a failed first entry, which ZIM does not retry.) From
/// the tracker; if it lost events to lag, from the fleet's status (at most once a second:
/// it asks every account), where only fully connected accounts count.
pub struct AllOnline<'a> {
    fleet: &'a Fleet,
    tracker: &'a RefCell<Tracker>,
    last_status: Option<Instant>,
}

impl<'a> AllOnline<'a> {
    /// Watches `tracker`, asking `fleet` when events were lost.
    pub fn new(fleet: &'a Fleet, tracker: &'a RefCell<Tracker>) -> Self {
        AllOnline {
            fleet,
            tracker,
            last_status: None,
        }
    }

    /// `added`: accounts added so far; `online`: how many of them should be online.
    pub async fn check(&mut self, added: u64, online: u64) -> bool {
        let (settled, lost) = {
            let t = self.tracker.borrow();
            (t.settled, t.out.counts.events_lost)
        };
        if settled >= added {
            return true;
        }
        if lost == 0
            || self
                .last_status
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        self.last_status = Some(Instant::now());
        let now_online = self
            .fleet
            .status()
            .await
            .iter()
            .filter(|s| {
                s.state == ConnectionState::Connected
                    && s.rooms.iter().all(|r| r.state == RoomState::Connected)
            })
            .count() as u64;
        now_online >= online
    }
}
