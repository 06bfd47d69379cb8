//! The console's charts over time: one sample per second for the last 15 minutes (bounded),
//! taken from the board's counts and the fleet's counters. Pure: the sampler task feeds it.

use std::collections::VecDeque;

use serde::Serialize;

use super::board::Counts;
use crate::client::FleetMetrics;

/// Samples kept: 15 minutes at one per second.
pub const KEPT: usize = 15 * 60;

/// The fleet's running totals a sample turns into rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// First logins that succeeded.
    pub logins: u64,
    /// Re-logins that succeeded (reconnects).
    pub reconnects: u64,
    /// Messages received by the fleet's bots.
    pub messages_in: u64,
    /// Messages the fleet sent (acknowledged by the server).
    pub messages_out: u64,
}

impl Totals {
    /// The totals now.
    pub fn of(metrics: &FleetMetrics) -> Totals {
        Totals {
            logins: metrics.logins_succeeded.get(),
            reconnects: metrics.relogins_succeeded.get(),
            messages_in: metrics.messages_received.get(),
            messages_out: metrics.messages_sent.get(),
        }
    }
}

/// The samples as columns, the shape `ZfCharts.timeSeries(...).setData(ts, columns)` takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Columns {
    /// Unix seconds.
    pub ts: Vec<u64>,
    /// Accounts Connected.
    pub connected: Vec<u64>,
    /// Accounts Reconnecting.
    pub reconnecting: Vec<u64>,
    /// Accounts Disconnected (ended).
    pub ended: Vec<u64>,
    /// Logins per second.
    pub logins: Vec<f64>,
    /// Reconnects per second.
    pub reconnects: Vec<f64>,
    /// Messages in per second.
    pub messages_in: Vec<f64>,
    /// Messages out per second.
    pub messages_out: Vec<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    ts: u64,
    counts: Counts,
    rates: [f64; 4],
}

/// The last [`KEPT`] samples.
#[derive(Debug, Default)]
pub struct Series {
    samples: VecDeque<Sample>,
    last: Option<(u64, Totals)>,
}

impl Series {
    /// Records the sample of second `ts` (unix seconds): the counts, and the totals turned into
    /// per-second rates since the previous sample.
    pub fn push(&mut self, ts: u64, counts: Counts, totals: Totals) {
        let rates = match self.last {
            Some((prev_ts, prev)) if ts > prev_ts => {
                let secs = (ts - prev_ts) as f64;
                let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / secs;
                [
                    rate(totals.logins, prev.logins),
                    rate(totals.reconnects, prev.reconnects),
                    rate(totals.messages_in, prev.messages_in),
                    rate(totals.messages_out, prev.messages_out),
                ]
            }
            Some(_) => return,
            None => [0.0; 4],
        };
        self.last = Some((ts, totals));
        if self.samples.len() == KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { ts, counts, rates });
    }

    /// The samples after unix second `since` (all of them for 0), as columns.
    pub fn columns(&self, since: u64) -> Columns {
        let mut c = Columns::default();
        for s in self.samples.iter().filter(|s| s.ts > since) {
            c.ts.push(s.ts);
            c.connected.push(s.counts.connected);
            c.reconnecting.push(s.counts.reconnecting);
            c.ended.push(s.counts.disconnected);
            c.logins.push(s.rates[0]);
            c.reconnects.push(s.rates[1]);
            c.messages_in.push(s.rates[2]);
            c.messages_out.push(s.rates[3]);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(logins: u64, messages_out: u64) -> Totals {
        Totals {
            logins,
            messages_out,
            ..Totals::default()
        }
    }

    #[test]
    fn totals_become_rates_per_second() {
        let mut s = Series::default();
        let counts = Counts {
            connected: 3,
            ..Counts::default()
        };
        s.push(100, counts, totals(0, 0));
        s.push(101, counts, totals(5, 2));
        s.push(103, counts, totals(9, 2));
        // A second seen twice (or going back) is not a sample.
        s.push(103, counts, totals(50, 50));
        let c = s.columns(0);
        assert_eq!(c.ts, vec![100, 101, 103]);
        assert_eq!(c.logins, vec![0.0, 5.0, 2.0]);
        assert_eq!(c.messages_out, vec![0.0, 2.0, 0.0]);
        assert_eq!(c.connected, vec![3, 3, 3]);
        assert_eq!(s.columns(101).ts, vec![103]);
    }

    #[test]
    fn only_the_last_fifteen_minutes_are_kept() {
        let mut s = Series::default();
        for ts in 0..(KEPT as u64 + 100) {
            s.push(ts, Counts::default(), Totals::default());
        }
        let c = s.columns(0);
        assert_eq!(c.ts.len(), KEPT);
        assert_eq!(c.ts[0], 100);
    }
}
