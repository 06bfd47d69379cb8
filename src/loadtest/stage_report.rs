//! What the report says about each stage and about the chaos that happened: stage bounds
//! and targets as run, figures per stage (recomputed from the per-second timeline and the
//! latency series, so they are exact after a merge), chaos events for the time axes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hist::{Hist, LatencySeries};
use super::report::Tick;
use super::LoadtestError;

/// Chaos events a report keeps at most (a long run with frequent chaos stays small).
pub const MAX_CHAOS_EVENTS: usize = 2_000;

/// One stage as it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageReport {
    pub name: String,
    /// Unix ms: when the stage started and ended (merged: earliest start, latest end).
    pub started_ms: u64,
    pub ended_ms: u64,
    /// Targets (whole plan): accounts online and messages per second per account, at the
    /// start and at the end of the stage.
    pub from_accounts: u64,
    pub to_accounts: u64,
    pub from_rate: f64,
    pub to_rate: f64,
    /// Accounts added and logged out during the stage (sums over shards).
    pub arrived: u64,
    pub departed: u64,
    /// From the timeline and the latency series (recomputed by `Report::finish`).
    pub figures: StageFigures,
}

/// Figures of one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageFigures {
    pub logins: u64,
    pub room_entries: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub logouts: u64,
    pub sent: u64,
    pub delivered: u64,
    /// Per second over the stage's wall time.
    pub sent_per_sec: f64,
    pub delivered_per_sec: f64,
    /// Message end-to-end latency over the stage's seconds.
    pub message_p50_us: u64,
    pub message_p99_us: u64,
    /// Accounts Connected in the stage's last second (sampled).
    pub connected_at_end: u64,
}

/// What a chaos event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChaosKind {
    /// Links closed abruptly.
    Drop,
    /// Accounts held offline.
    Offline,
    /// Every session dropped by the server.
    ServerDrop,
}

/// One chaos event of one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosEvent {
    pub ts_ms: u64,
    pub kind: ChaosKind,
    /// Accounts it hit (0 for a server drop: the server says nothing about how many).
    pub accounts: u64,
    /// For how long, ms (offline windows: cut at the end of the last stage).
    #[serde(default)]
    pub for_ms: u64,
    pub stage: String,
}

impl StageReport {
    /// Recomputes the figures from the merged timeline and latency series.
    pub fn compute(&mut self, timeline: &BTreeMap<u64, Tick>, latency: &LatencySeries) {
        let (a, b) = (
            self.started_ms / 1000,
            self.ended_ms.max(1).saturating_sub(1) / 1000,
        );
        let mut f = StageFigures::default();
        let mut last = 0;
        for (_, t) in timeline.range(a..=b.max(a)) {
            f.logins += t.logins;
            f.room_entries += t.room_entries;
            f.disconnects += t.disconnects;
            f.reconnects += t.reconnects;
            f.logouts += t.logouts;
            f.sent += t.sent;
            f.delivered += t.delivered;
            if t.connected + t.reconnecting + t.other > 0 {
                last = t.connected;
            }
        }
        f.connected_at_end = last;
        let secs = self.ended_ms.saturating_sub(self.started_ms) as f64 / 1000.0;
        let rate = |n: u64| {
            if secs > 0.0 {
                (n as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        f.sent_per_sec = rate(f.sent);
        f.delivered_per_sec = rate(f.delivered);
        let mut h = Hist::default();
        let w = latency.bucket_secs.max(1);
        for (_, bucket) in latency.buckets.range(a - a % w..=b.max(a)) {
            h.merge(&bucket.0 .0);
        }
        f.message_p50_us = h.quantile_us(0.5);
        f.message_p99_us = h.quantile_us(0.99);
        self.figures = f;
    }

    /// Adds another shard's run of the same stage.
    fn merge(&mut self, o: &StageReport) {
        self.started_ms = match (self.started_ms, o.started_ms) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        self.ended_ms = self.ended_ms.max(o.ended_ms);
        self.arrived += o.arrived;
        self.departed += o.departed;
    }
}

/// Merges the stages of two shard reports of one plan (stage by stage).
pub fn merge_stages(into: &mut [StageReport], from: &[StageReport]) -> Result<(), LoadtestError> {
    let names = |s: &[StageReport]| s.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    if names(into) != names(from) {
        return Err(LoadtestError::Merge(format!(
            "the reports ran different stages ({:?} vs {:?})",
            names(into),
            names(from)
        )));
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.merge(b);
    }
    Ok(())
}

/// Merges chaos events in time order, at most [`MAX_CHAOS_EVENTS`].
pub fn merge_chaos(into: &mut Vec<ChaosEvent>, from: &[ChaosEvent]) {
    into.extend(from.iter().cloned());
    into.sort_by_key(|e| e.ts_ms);
    into.truncate(MAX_CHAOS_EVENTS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_figures_come_from_its_seconds() {
        let mut timeline = BTreeMap::new();
        for sec in 10..20 {
            timeline.insert(
                sec,
                Tick {
                    sent: 10,
                    delivered: 100,
                    logins: u64::from(sec < 12),
                    connected: sec,
                    ..Tick::default()
                },
            );
        }
        let mut latency = LatencySeries::default();
        let mut h = Hist::default();
        h.record_us(2_000);
        latency.add(15, &h.0);
        latency.add(25, &h.0);
        let mut s = StageReport {
            name: "plateau".into(),
            started_ms: 14_000,
            ended_ms: 19_000,
            ..StageReport::default()
        };
        s.compute(&timeline, &latency);
        let f = &s.figures;
        assert_eq!((f.sent, f.delivered, f.logins), (50, 500, 0));
        assert_eq!((f.sent_per_sec, f.delivered_per_sec), (10.0, 100.0));
        assert_eq!(f.connected_at_end, 18);
        assert!(h.0.equivalent(f.message_p99_us, 2_000), "{f:?}");
    }

    #[test]
    fn stages_merge_by_name_and_refuse_others() {
        let a = |start, end| StageReport {
            name: "up".into(),
            started_ms: start,
            ended_ms: end,
            arrived: 5,
            ..StageReport::default()
        };
        let mut into = vec![a(1_000, 5_000)];
        merge_stages(&mut into, &[a(900, 5_100)]).unwrap();
        assert_eq!(
            (into[0].started_ms, into[0].ended_ms, into[0].arrived),
            (900, 5_100, 10)
        );
        let other = StageReport {
            name: "down".into(),
            ..StageReport::default()
        };
        assert!(merge_stages(&mut into, &[other])
            .unwrap_err()
            .to_string()
            .contains("different stages"));
    }
}
