//! The live figures, once a second: the progress line on stderr and, with `--console`, the
//! live page's data. Each tick also samples the accounts by state into the timeline and moves
//! the receivers' per-second latency into the run's series.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::driver::Shared;
use super::live::Live;
use super::report::ms;
use crate::client::Fleet;

/// The progress line's figures (also on the live page).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProgressFigures {
    /// Elapsed secs.
    pub elapsed_secs: u64,
    /// Stage.
    pub stage: String,
    /// Connected.
    pub connected: u64,
    /// Reconnecting.
    pub reconnecting: u64,
    /// Other.
    pub other: u64,
    /// Left.
    pub left: u64,
    /// Fully connected.
    pub fully_connected: u64,
    /// Accounts.
    pub accounts: u64,
    /// Logins per sec.
    pub logins_per_sec: u64,
    /// Reconnects per sec.
    pub reconnects_per_sec: u64,
    /// Delivered per sec.
    pub delivered_per_sec: u64,
    /// Login p99 (unix ms).
    pub login_p99_ms: String,
    /// Message p99 (unix ms).
    pub message_p99_ms: String,
    /// Events lost.
    pub events_lost: u64,
}

impl ProgressFigures {
    /// The line on stderr.
    pub fn line(&self) -> String {
        format!(
            "[{:>4}s] {}accounts {} connected, {} reconnecting, {} other{}; fully connected {}/{} | logins+rooms {}/s, reconnects {}/s | delivered {}/s | p99 login {} ms, message {} ms{}",
            self.elapsed_secs,
            if self.stage.is_empty() { String::new() } else { format!("{}: ", self.stage) },
            self.connected,
            self.reconnecting,
            self.other,
            if self.left > 0 { format!(", {} logged out", self.left) } else { String::new() },
            self.fully_connected,
            self.accounts,
            self.logins_per_sec,
            self.reconnects_per_sec,
            self.delivered_per_sec,
            self.login_p99_ms,
            self.message_p99_ms,
            match self.events_lost {
                0 => String::new(),
                n => format!(" | events lost {n}"),
            },
        )
    }
}

/// The once-a-second task.
pub struct Progress {
    handle: Option<tokio::task::JoinHandle<()>>,
    shared: Rc<Shared>,
    live: Option<Arc<Live>>,
}

/// Counters the per-second rates are differences of.
#[derive(Default)]
struct Last {
    logins: u64,
    reconnects: u64,
    delivered: u64,
}

impl Progress {
    /// Starts ticking; prints the line when `print`.
    pub fn start(
        shared: Rc<Shared>,
        fleet: Fleet,
        accounts: u64,
        print: bool,
        live: Option<Arc<Live>>,
    ) -> Progress {
        let task = {
            let (shared, live) = (shared.clone(), live.clone());
            actix::spawn(async move {
                let start = Instant::now();
                let mut last = Last::default();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let f = figures(&shared, &fleet, accounts, start, &mut last);
                    if print {
                        eprintln!("{}", f.line());
                    }
                    if let Some(live) = &live {
                        live.publish(&shared.snapshot(&fleet), &f);
                    }
                }
            })
        };
        Progress {
            handle: Some(task),
            shared,
            live,
        }
    }

    /// Stops ticking; the live page gets the final figures.
    pub fn stop(mut self, fleet: &Fleet) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        if let Some(live) = &self.live {
            let f = ProgressFigures {
                stage: "done".into(),
                ..ProgressFigures::default()
            };
            live.publish(&self.shared.snapshot(fleet), &f);
        }
    }
}

fn figures(
    shared: &Shared,
    fleet: &Fleet,
    accounts: u64,
    start: Instant,
    last: &mut Last,
) -> ProgressFigures {
    let now = crate::clock::unix_ms();
    shared.flush_latency();
    let mut t = shared.tracker.borrow_mut();
    t.sample(now);
    let s = t.states();
    let c = &t.out.counts;
    let delivered = shared.receivers.delivered();
    let logins = c.logins_ok + c.room_entries_ok;
    let f = ProgressFigures {
        elapsed_secs: start.elapsed().as_secs(),
        stage: shared.stage_name(),
        connected: s.connected,
        reconnecting: s.reconnecting,
        other: s.other,
        left: s.left,
        fully_connected: t.fully_connected,
        accounts,
        logins_per_sec: logins.saturating_sub(last.logins),
        reconnects_per_sec: c.reconnects.saturating_sub(last.reconnects),
        delivered_per_sec: delivered.saturating_sub(last.delivered),
        login_p99_ms: ms(fleet
            .metrics()
            .login_latency
            .snapshot()
            .value_at_quantile(0.99)),
        message_p99_ms: ms(shared.receivers.latency_p99_us()),
        events_lost: c.events_lost,
    };
    *last = Last {
        logins,
        reconnects: c.reconnects,
        delivered,
    };
    f
}
