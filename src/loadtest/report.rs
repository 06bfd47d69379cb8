//! The report: counts, HDR histograms and a per-second timeline; JSON out, exact merge.
//!
//! Everything a shard measures is a sum (counts), a histogram (merged bucket by bucket, which
//! is exact) or a per-second count keyed by unix second (summed second by second). Figures
//! (rates, shares, percentiles) and the verdict are derived from those, so a merged report is
//! the report one big run would have written.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::hist::{Hist, Histograms, LatencySeries};
use super::plan::Plan;
use super::shard::Shard;
use super::stage_report::{merge_chaos, merge_stages, ChaosEvent, StageReport};
pub use super::table::ms;
use super::LoadtestError;

/// Report file format version.
pub const FORMAT: u32 = 1;

/// Counts of a run (all sums).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Accounts this run was to add, and added.
    pub accounts_planned: u64,
    /// Accounts added.
    pub accounts_added: u64,
    /// At the end: Connected with every room Connected.
    pub accounts_fully_connected: u64,
    /// First logins that reached (Connected, Success) / ended before.
    pub logins_ok: u64,
    /// Logins failed.
    pub logins_failed: u64,
    /// First room entries that reached (Connected, Success) / failed.
    pub room_entries_ok: u64,
    /// Room entries failed.
    pub room_entries_failed: u64,
    /// Links lost: (Reconnecting, LoginInterrupted).
    pub disconnects: u64,
    /// Re-logins: Reconnecting back to (Connected, Success).
    pub reconnects: u64,
    /// Room recoveries by T2 outcome, and rooms that gave up.
    pub room_recovered_member: u64,
    /// Room recovered after connect timeout.
    pub room_recovered_after_connect_timeout: u64,
    /// Room recovered after room not exist.
    pub room_recovered_after_room_not_exist: u64,
    /// Room gave up.
    pub room_gave_up: u64,
    /// Messages acknowledged by the server / failed with a ZIM error.
    pub messages_sent: u64,
    /// Messages send failed.
    pub messages_send_failed: u64,
    /// Load-test messages received (counted once per receiver, duplicates excluded).
    pub messages_delivered: u64,
    /// Room seqs a receiver should have seen and did not / saw more than once.
    pub messages_missing: u64,
    /// Messages duplicated.
    pub messages_duplicated: u64,
    /// Seqs of a room incarnation that ended (a backend restart, a room destroyed) that a
    /// member never got, past the last one it got there: lost with the backend, not by the
    /// client, and not in `messages_missing` (docs/loadtest.md, "Lost with the backend").
    #[serde(default)]
    pub messages_lost_with_backend: u64,
    /// Rooms that came back as another incarnation (event `room_incarnation_changed`).
    #[serde(default)]
    pub room_incarnations_changed: u64,
    /// Client-side chaos: links dropped, accounts held offline; server-side drops requested.
    pub chaos_drops: u64,
    /// Chaos offline.
    pub chaos_offline: u64,
    /// Server drops.
    pub server_drops: u64,
    /// Token renewals.
    pub renewals_ok: u64,
    /// Renewals failed.
    pub renewals_failed: u64,
    /// Fleet events this run could not read (broadcast lag): state figures may be short.
    pub events_lost: u64,
    /// Bot handler panics.
    pub handler_panics: u64,
    /// Accounts logged out by a ramp down (stages).
    #[serde(default)]
    pub logouts: u64,
    /// Accounts the plan wants online at the end (the last stage's target, this shard's
    /// share): what `accounts_fully_connected` is measured against.
    #[serde(default)]
    pub accounts_expected_online: u64,
}

impl Counts {
    /// Accounts that should be online at the end: the last stage's target when stages ran
    /// (a ramp down logs accounts out), else every account planned.
    pub fn expected_online(&self) -> u64 {
        if self.accounts_expected_online == 0 && self.logouts == 0 {
            self.accounts_planned
        } else {
            self.accounts_expected_online
        }
    }

    fn merge(&mut self, o: &Counts) {
        let Counts {
            accounts_planned,
            accounts_added,
            accounts_fully_connected,
            logins_ok,
            logins_failed,
            room_entries_ok,
            room_entries_failed,
            disconnects,
            reconnects,
            room_recovered_member,
            room_recovered_after_connect_timeout,
            room_recovered_after_room_not_exist,
            room_gave_up,
            messages_sent,
            messages_send_failed,
            messages_delivered,
            messages_missing,
            messages_duplicated,
            messages_lost_with_backend,
            room_incarnations_changed,
            chaos_drops,
            chaos_offline,
            server_drops,
            renewals_ok,
            renewals_failed,
            events_lost,
            handler_panics,
            logouts,
            accounts_expected_online,
        } = o;
        self.accounts_planned += accounts_planned;
        self.accounts_added += accounts_added;
        self.accounts_fully_connected += accounts_fully_connected;
        self.logins_ok += logins_ok;
        self.logins_failed += logins_failed;
        self.room_entries_ok += room_entries_ok;
        self.room_entries_failed += room_entries_failed;
        self.disconnects += disconnects;
        self.reconnects += reconnects;
        self.room_recovered_member += room_recovered_member;
        self.room_recovered_after_connect_timeout += room_recovered_after_connect_timeout;
        self.room_recovered_after_room_not_exist += room_recovered_after_room_not_exist;
        self.room_gave_up += room_gave_up;
        self.messages_sent += messages_sent;
        self.messages_send_failed += messages_send_failed;
        self.messages_delivered += messages_delivered;
        self.messages_missing += messages_missing;
        self.messages_duplicated += messages_duplicated;
        self.messages_lost_with_backend += messages_lost_with_backend;
        self.room_incarnations_changed += room_incarnations_changed;
        self.chaos_drops += chaos_drops;
        self.chaos_offline += chaos_offline;
        self.server_drops += server_drops;
        self.renewals_ok += renewals_ok;
        self.renewals_failed += renewals_failed;
        self.events_lost += events_lost;
        self.handler_panics += handler_panics;
        self.logouts += logouts;
        self.accounts_expected_online += accounts_expected_online;
    }
}

/// What happened in one unix second (sums; merged second by second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tick {
    /// Logins.
    pub logins: u64,
    /// Room entries.
    pub room_entries: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Disconnects.
    pub disconnects: u64,
    /// Sent.
    pub sent: u64,
    /// Delivered.
    pub delivered: u64,
    /// Accounts logged out by a ramp down.
    pub logouts: u64,
    /// Accounts by state, sampled once in the second: Connected, Reconnecting, and the
    /// rest (logging in, or ended) besides those that left.
    pub connected: u64,
    /// Reconnecting.
    pub reconnecting: u64,
    /// Other.
    pub other: u64,
}

impl Tick {
    fn merge(&mut self, o: &Tick) {
        self.logins += o.logins;
        self.room_entries += o.room_entries;
        self.reconnects += o.reconnects;
        self.disconnects += o.disconnects;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.logouts += o.logouts;
        self.connected += o.connected;
        self.reconnecting += o.reconnecting;
        self.other += o.other;
    }
}

/// Resident memory of a shard's process (VmRSS, KiB) around the ramp.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// After the fleet started, before the first account.
    pub rss_before_kib: u64,
    /// With every account online and idle (after the ramp settled).
    pub rss_held_kib: u64,
    /// (held - before) / accounts online, in bytes. Includes the server's side of every
    /// connection when the server is embedded.
    pub per_account_bytes: u64,
    /// Whether the reference server ran in this process.
    pub includes_server: bool,
    /// When `rss_held_kib` was read (unix ms), so another process can be sampled alike.
    pub sampled_ms: u64,
}

/// One shard's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRun {
    /// Shard.
    pub shard: Shard,
    /// Accounts.
    pub accounts: u64,
    /// Unix ms: the run started; the ramp started and ended (last account fully connected,
    /// or the ramp timeout); the run ended.
    pub started_ms: u64,
    /// Ramp started (unix ms).
    pub ramp_started_ms: u64,
    /// Ramp ended (unix ms).
    pub ramp_ended_ms: u64,
    /// The hold phase (messages and chaos), unix ms.
    pub hold_started_ms: u64,
    /// Hold ended (unix ms).
    pub hold_ended_ms: u64,
    /// Ended (unix ms).
    pub ended_ms: u64,
    /// Memory.
    pub memory: Memory,
    /// CPU per unit of work (absent in reports of earlier versions).
    #[serde(default)]
    pub cpu: super::cpu::Cpu,
    /// Host.
    pub host: String,
}

/// Figures derived from the measurements (recomputed after a merge).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// (first logins + first room entries) / ramp wall time.
    pub logins_plus_room_entries_per_sec: f64,
    /// Highest number of re-logins in one unix second.
    pub peak_reconnects_per_sec: u64,
    /// Admission limit of all shards together (per shard limit x shards run).
    pub admission_limit_per_sec: u64,
    /// Delivered / sent messages per second over the whole seconds in which messages were
    /// sent (the hold wall time when the timeline has none).
    pub delivered_per_sec: f64,
    /// Sent per sec.
    pub sent_per_sec: f64,
    /// accounts_fully_connected / accounts_planned.
    pub connected_share: f64,
}

/// Pass or fail against the plan's thresholds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Passed.
    pub passed: bool,
    /// One line per threshold missed.
    pub failures: Vec<String>,
}

/// The report of a run or of merged shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Format.
    pub format: u32,
    /// Zimfleet version.
    pub zimfleet_version: String,
    /// The plan (the shard field is that of the first shard; see `shards`).
    pub plan: Plan,
    /// Shards.
    pub shards: Vec<ShardRun>,
    /// Counts.
    pub counts: Counts,
    /// Accounts by connection state at the end (state name -> count), rooms likewise.
    pub accounts_by_state: BTreeMap<String, u64>,
    /// Rooms by state.
    pub rooms_by_state: BTreeMap<String, u64>,
    /// ZIM error code -> occurrences (send failures, login and room rejections).
    pub errors: BTreeMap<u32, u64>,
    /// Histograms.
    pub histograms: Histograms,
    /// unix second -> what happened in it.
    pub timeline: BTreeMap<u64, Tick>,
    /// Figures.
    pub figures: Figures,
    /// Verdict.
    pub verdict: Verdict,
    /// The stages as run, with their figures.
    #[serde(default)]
    pub stages: Vec<StageReport>,
    /// Chaos as it happened, in time order (bounded).
    #[serde(default)]
    pub chaos_events: Vec<ChaosEvent>,
    /// Message end-to-end latency per second (bounded: buckets widen on long runs).
    #[serde(default)]
    pub latency: LatencySeries,
    /// unix second -> ZIM error code -> occurrences.
    #[serde(default)]
    pub errors_by_sec: BTreeMap<u64, BTreeMap<u32, u64>>,
}

fn add_map<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

impl Report {
    /// An empty report for `plan`.
    pub fn new(plan: Plan) -> Report {
        Report {
            format: FORMAT,
            zimfleet_version: env!("CARGO_PKG_VERSION").to_string(),
            plan,
            shards: Vec::new(),
            counts: Counts::default(),
            accounts_by_state: BTreeMap::new(),
            rooms_by_state: BTreeMap::new(),
            errors: BTreeMap::new(),
            histograms: Histograms::default(),
            timeline: BTreeMap::new(),
            figures: Figures::default(),
            verdict: Verdict::default(),
            stages: Vec::new(),
            chaos_events: Vec::new(),
            latency: LatencySeries::default(),
            errors_by_sec: BTreeMap::new(),
        }
    }

    /// Recomputes figures and verdict from the measurements.
    pub fn finish(&mut self) {
        let c = &self.counts;
        let window = |f: fn(&ShardRun) -> (u64, u64)| -> f64 {
            let start = self.shards.iter().map(|s| f(s).0).filter(|&t| t > 0).min();
            let end = self.shards.iter().map(|s| f(s).1).max();
            match (start, end) {
                (Some(a), Some(b)) if b > a => (b - a) as f64 / 1000.0,
                _ => 0.0,
            }
        };
        let ramp_secs = window(|s| (s.ramp_started_ms, s.ramp_ended_ms));
        let hold_secs = window(|s| (s.hold_started_ms, s.hold_ended_ms));
        // Message rates over the whole seconds in which messages were sent (the first and
        // last are partial, so they are left out when there are more than two).
        let sending: Vec<u64> = self
            .timeline
            .iter()
            .filter(|(_, t)| t.sent > 0)
            .map(|(s, _)| *s)
            .collect();
        let steady = match (sending.first(), sending.last()) {
            (Some(&a), Some(&b)) if b >= a + 2 => Some((a + 1, b - 1)),
            (Some(&a), Some(&b)) => Some((a, b)),
            _ => None,
        };
        let steady_rate = |f: fn(&Tick) -> u64| -> Option<f64> {
            let (a, b) = steady?;
            let n: u64 = self.timeline.range(a..=b).map(|(_, t)| f(t)).sum();
            Some((n as f64 / (b - a + 1) as f64 * 10.0).round() / 10.0)
        };
        let per_sec = |n: u64, secs: f64| {
            if secs > 0.0 {
                (n as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        self.figures = Figures {
            logins_plus_room_entries_per_sec: per_sec(c.logins_ok + c.room_entries_ok, ramp_secs),
            peak_reconnects_per_sec: self
                .timeline
                .values()
                .map(|t| t.reconnects)
                .max()
                .unwrap_or(0),
            admission_limit_per_sec: u64::from(self.plan.admission_per_sec)
                * self.shards.len().max(1) as u64,
            delivered_per_sec: steady_rate(|t| t.delivered)
                .unwrap_or_else(|| per_sec(c.messages_delivered, hold_secs)),
            sent_per_sec: steady_rate(|t| t.sent)
                .unwrap_or_else(|| per_sec(c.messages_sent, hold_secs)),
            connected_share: match c.expected_online() {
                0 if c.accounts_planned == 0 => 0.0,
                0 => 1.0,
                n => c.accounts_fully_connected as f64 / n as f64,
            },
        };
        let (timeline, latency) = (&self.timeline, &self.latency);
        for stage in &mut self.stages {
            stage.compute(timeline, latency);
        }
        self.verdict = self.judge();
    }

    fn judge(&self) -> Verdict {
        let t = &self.plan.thresholds;
        let c = &self.counts;
        let mut failures = Vec::new();
        if self.figures.connected_share + 1e-9 < t.min_connected_share {
            failures.push(format!(
                "connected share {:.4} < {} ({} of {} accounts fully connected)",
                self.figures.connected_share,
                t.min_connected_share,
                c.accounts_fully_connected,
                c.expected_online()
            ));
        }
        if c.messages_missing > t.max_missing {
            failures.push(format!(
                "missing messages {} > {}",
                c.messages_missing, t.max_missing
            ));
        }
        if c.messages_duplicated > t.max_duplicated {
            failures.push(format!(
                "duplicated messages {} > {}",
                c.messages_duplicated, t.max_duplicated
            ));
        }
        if c.messages_send_failed > t.max_send_errors {
            failures.push(format!(
                "send errors {} > {}",
                c.messages_send_failed, t.max_send_errors
            ));
        }
        let checks = [
            ("login p99", &self.histograms.login, t.max_login_p99),
            ("message p99", &self.histograms.message, t.max_message_p99),
        ];
        for (name, h, max) in checks {
            let p99 = h.quantile_us(0.99);
            if h.count() > 0 && p99 > max.as_micros() as u64 {
                failures.push(format!(
                    "{name} {} > {}",
                    ms(p99),
                    ms(max.as_micros() as u64)
                ));
            }
        }
        Verdict {
            passed: failures.is_empty(),
            failures,
        }
    }

    /// Adds another shard's report (exact for every measurement).
    pub fn merge(&mut self, other: &Report) -> Result<(), LoadtestError> {
        if other.format != self.format {
            return Err(LoadtestError::Merge(format!(
                "report format {} and {} differ",
                self.format, other.format
            )));
        }
        let (a, b) = (&self.plan, &other.plan);
        if (a.accounts, &a.user_pattern, a.first_index)
            != (b.accounts, &b.user_pattern, b.first_index)
        {
            return Err(LoadtestError::Merge(format!(
                "the reports come from different plans ({} accounts {:?} from {} vs {} accounts {:?} from {})",
                a.accounts, a.user_pattern, a.first_index, b.accounts, b.user_pattern, b.first_index
            )));
        }
        for s in &other.shards {
            if self.shards.iter().any(|m| m.shard == s.shard) {
                return Err(LoadtestError::Merge(format!(
                    "shard {} appears twice",
                    s.shard
                )));
            }
            if let Some(first) = self.shards.first() {
                if first.shard.count != s.shard.count {
                    return Err(LoadtestError::Merge(format!(
                        "shard {} and shard {} belong to different splits",
                        first.shard, s.shard
                    )));
                }
            }
        }
        self.shards.extend(other.shards.iter().cloned());
        self.shards.sort_by_key(|s| s.shard.index);
        self.counts.merge(&other.counts);
        add_map(&mut self.accounts_by_state, &other.accounts_by_state);
        add_map(&mut self.rooms_by_state, &other.rooms_by_state);
        add_map(&mut self.errors, &other.errors);
        self.histograms.merge(&other.histograms);
        for (sec, tick) in &other.timeline {
            self.timeline.entry(*sec).or_default().merge(tick);
        }
        merge_stages(&mut self.stages, &other.stages)?;
        merge_chaos(&mut self.chaos_events, &other.chaos_events);
        self.latency.merge(&other.latency);
        for (sec, errors) in &other.errors_by_sec {
            add_map(self.errors_by_sec.entry(*sec).or_default(), errors);
        }
        self.finish();
        Ok(())
    }

    /// Merges reports (at least one).
    pub fn merge_all(reports: Vec<Report>) -> Result<Report, LoadtestError> {
        let mut it = reports.into_iter();
        let mut merged = it
            .next()
            .ok_or_else(|| LoadtestError::Merge("no reports given".into()))?;
        for r in it {
            merged.merge(&r)?;
        }
        merged.finish();
        Ok(merged)
    }

    /// Shard indexes missing from a merged set (when the split is known).
    pub fn missing_shards(&self) -> Vec<u32> {
        let Some(first) = self.shards.first() else {
            return Vec::new();
        };
        (0..first.shard.count)
            .filter(|i| !self.shards.iter().any(|s| s.shard.index == *i))
            .collect()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Writes the JSON report to `path`.
    pub fn write(&self, path: &Path) -> Result<(), LoadtestError> {
        std::fs::write(path, self.to_json() + "\n").map_err(|e| LoadtestError::Report {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// Reads a report written with `--out` (or by a merge).
    pub fn read(path: &Path) -> Result<Report, LoadtestError> {
        let err = |detail: String| LoadtestError::Report {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(format!("not a zimfleet loadtest report: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard_report(index: u32, logins: &[u64]) -> Report {
        let mut plan = Plan::defaults();
        plan.shard = Shard { index, count: 2 };
        let mut r = Report::new(plan);
        r.shards.push(ShardRun {
            shard: Shard { index, count: 2 },
            accounts: logins.len() as u64,
            started_ms: 1_000,
            ramp_started_ms: 1_000,
            ramp_ended_ms: 2_000 + u64::from(index) * 1_000,
            hold_started_ms: 3_000,
            hold_ended_ms: 5_000,
            ended_ms: 6_000,
            memory: Memory::default(),
            cpu: Default::default(),
            host: "test".into(),
        });
        for &us in logins {
            r.histograms.login.record_us(us);
        }
        r.counts.accounts_planned = logins.len() as u64;
        r.counts.accounts_fully_connected = logins.len() as u64;
        r.counts.logins_ok = logins.len() as u64;
        r.counts.messages_delivered = 10;
        r.errors.insert(6000105, 1);
        r.accounts_by_state
            .insert("connected".into(), logins.len() as u64);
        r.timeline.insert(
            100,
            Tick {
                reconnects: 3,
                ..Tick::default()
            },
        );
        r.finish();
        r
    }

    #[test]
    fn json_round_trip_keeps_histograms_exact() {
        let r = shard_report(0, &[1_000, 2_000, 3_000_000]);
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["histograms"]["login"]["count"], 3);
        assert_eq!(v["errors"]["6000105"], 1);
        assert!(v["histograms"]["login"]["p99_us"].as_u64().unwrap() >= 2_990_000);
    }

    #[test]
    fn merge_sums_counts_histograms_and_timeline() {
        let a = shard_report(0, &[1_000, 2_000]);
        let b = shard_report(1, &[5_000]);
        let m = Report::merge_all(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(m.counts.logins_ok, 3);
        assert_eq!(m.histograms.login.count(), 3);
        assert_eq!(m.histograms.login.0.max(), b.histograms.login.0.max());
        assert_eq!(m.errors[&6000105], 2);
        assert_eq!(m.accounts_by_state["connected"], 3);
        assert_eq!(m.timeline[&100].reconnects, 6);
        assert_eq!(m.figures.peak_reconnects_per_sec, 6);
        assert_eq!(m.figures.admission_limit_per_sec, 2 * 5000);
        // Ramp window is the union: 1.0 s to 3.0 s; 3 logins over 2 s.
        assert_eq!(m.figures.logins_plus_room_entries_per_sec, 1.5);
        assert!(m.missing_shards().is_empty());
        // Delivered over the union of holds: 20 in 2 s.
        assert_eq!(m.figures.delivered_per_sec, 10.0);
    }

    #[test]
    fn message_rates_use_the_whole_seconds_of_sending() {
        let mut r = shard_report(0, &[1]);
        for (sec, sent, delivered) in [(10, 3, 30), (11, 10, 100), (12, 10, 100), (13, 4, 40)] {
            r.timeline.insert(
                sec,
                Tick {
                    sent,
                    delivered,
                    ..Tick::default()
                },
            );
        }
        r.finish();
        assert_eq!(r.figures.sent_per_sec, 10.0);
        assert_eq!(r.figures.delivered_per_sec, 100.0);
    }

    #[test]
    fn merge_refuses_the_same_shard_twice_and_other_plans() {
        let a = shard_report(0, &[1]);
        assert_eq!(
            Report::merge_all(vec![a.clone(), a.clone()])
                .unwrap_err()
                .to_string(),
            "cannot merge reports: shard 0/2 appears twice"
        );
        let mut b = shard_report(1, &[1]);
        b.plan.accounts = 5;
        assert!(Report::merge_all(vec![a, b])
            .unwrap_err()
            .to_string()
            .contains("different plans"));
    }

    #[test]
    fn verdict_names_each_missed_threshold() {
        let mut r = shard_report(0, &[1_000]);
        r.counts.accounts_fully_connected = 0;
        r.counts.messages_missing = 2;
        r.histograms.login.record_us(9_000_000);
        r.histograms.login.record_us(9_000_000);
        r.finish();
        assert!(!r.verdict.passed);
        assert_eq!(r.verdict.failures.len(), 3, "{:?}", r.verdict.failures);
        assert_eq!(
            r.verdict.failures[0],
            "connected share 0.0000 < 1 (0 of 1 accounts fully connected)"
        );
        assert_eq!(r.verdict.failures[1], "missing messages 2 > 0");
        assert!(
            r.verdict.failures[2].starts_with("login p99 9"),
            "{:?}",
            r.verdict.failures
        );
        assert!(r.table().contains("verdict: FAIL"));
    }
}
