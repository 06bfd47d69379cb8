//! What the run, its progress ticker and the live page share (driver thread only), and the
//! report of everything measured so far.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use super::hist::LatencySeries;
use super::plan::Plan;
use super::receiver::Receivers;
use super::report::Report;
use super::sends::Sends;
use super::stage_report::{ChaosEvent, StageReport};
use super::track::Tracker;
use crate::client::Fleet;

/// What the run, its progress ticker and the live page share (driver thread only).
pub struct Shared {
    /// Plan.
    pub plan: Plan,
    /// Tracker.
    pub tracker: RefCell<Tracker>,
    /// Sends.
    pub sends: Rc<RefCell<Sends>>,
    /// Receivers.
    pub receivers: Arc<Receivers>,
    /// Latency.
    pub latency: RefCell<LatencySeries>,
    /// Stages.
    pub stages: RefCell<Vec<StageReport>>,
    /// Index of the running stage (usize::MAX before the first).
    pub current: Cell<usize>,
    /// Chaos events.
    pub chaos_events: RefCell<Vec<ChaosEvent>>,
    /// This shard's accounts; added and logged out so far.
    pub planned: u64,
    /// Added.
    pub added: Cell<u64>,
    /// Departed.
    pub departed: Cell<u64>,
}

impl Shared {
    /// Moves the receivers' finished seconds of latency into the series.
    pub fn flush_latency(&self) {
        let done = self
            .receivers
            .take_latency_before(crate::clock::unix_secs());
        let mut series = self.latency.borrow_mut();
        for (sec, h) in done {
            series.add(sec, &h);
        }
    }

    /// The running stage's name ("" before the first).
    pub fn stage_name(&self) -> String {
        let i = self.current.get();
        self.stages
            .borrow()
            .get(i)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// A report of everything measured so far (the live page's data; the final report
    /// adds the end-of-run counts to it).
    pub fn snapshot(&self, fleet: &Fleet) -> Report {
        let mut r = Report::new(self.plan.clone());
        let received = self.receivers.collect();
        {
            let mut series = self.latency.borrow_mut();
            for (sec, h) in &received.latency_by_sec {
                series.add(*sec, h);
            }
        }
        let t = self.tracker.borrow();
        let s = self.sends.borrow();
        r.counts = t.out.counts.clone();
        r.counts.accounts_planned = self.planned;
        r.counts.accounts_added = self.added.get();
        r.counts.accounts_expected_online = self.added.get() - self.departed.get();
        r.counts.accounts_fully_connected = t.fully_connected;
        r.counts.messages_sent = s.sent;
        r.counts.messages_send_failed = s.failed;
        r.counts.messages_delivered = received.delivered;
        r.counts.messages_duplicated = received.duplicated;
        r.histograms = t.out.histograms.clone();
        let metrics = fleet.metrics();
        r.histograms.login.merge(&metrics.login_latency.snapshot());
        r.histograms
            .room_enter
            .merge(&metrics.room_enter_latency.snapshot());
        r.histograms.message = received.latency;
        r.errors = t.out.errors.clone();
        r.errors_by_sec = t.out.errors_by_sec.clone();
        for (code, n) in &s.errors {
            *r.errors.entry(*code).or_default() += n;
        }
        for (sec, codes) in &s.errors_by_sec {
            let into = r.errors_by_sec.entry(*sec).or_default();
            for (code, n) in codes {
                *into.entry(*code).or_default() += n;
            }
        }
        r.timeline = t.out.timeline.clone();
        for (sec, n) in &s.by_sec {
            r.timeline.entry(*sec).or_default().sent += n;
        }
        for (sec, n) in &received.delivered_by_sec {
            r.timeline.entry(*sec).or_default().delivered += n;
        }
        r.latency = self.latency.borrow().clone();
        r.stages = self.stages.borrow().clone();
        r.chaos_events = self.chaos_events.borrow().clone();
        r.finish();
        r
    }
}
