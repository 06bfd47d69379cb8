//! Latency histograms (HDR, microseconds): exact merge, JSON with summary figures beside the
//! encoded histogram; and the per-second message latency series (bounded).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest value a histogram holds: one hour in microseconds.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds. In JSON: summary figures for people and the full
/// histogram (V2 + DEFLATE, base64) for merging.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist(pub Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(Histogram::new_with_bounds(1, MAX_US, 3).expect("static bounds are valid"))
    }
}

impl Hist {
    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros() as u64);
    }

    pub fn record_us(&mut self, us: u64) {
        let _ = self.0.record(us.clamp(1, MAX_US));
    }

    /// Adds every value of `other` (exact).
    pub fn merge(&mut self, other: &Histogram<u64>) {
        // Same bounds on both sides (or auto-resize), so this cannot fail; a histogram
        // decoded from a foreign file with a larger range is re-recorded value by value.
        if self.0.add(other).is_err() {
            for v in other.iter_recorded() {
                let _ = self
                    .0
                    .record_n(v.value_iterated_to().clamp(1, MAX_US), v.count_at_value());
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The quantile in microseconds (0 when empty).
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    fn summary(&self) -> HistSummary {
        let empty = self.0.is_empty();
        HistSummary {
            count: self.0.len(),
            min_us: if empty { 0 } else { self.0.min() },
            mean_us: if empty {
                0.0
            } else {
                (self.0.mean() * 10.0).round() / 10.0
            },
            p50_us: self.quantile_us(0.50),
            p90_us: self.quantile_us(0.90),
            p99_us: self.quantile_us(0.99),
            p999_us: self.quantile_us(0.999),
            max_us: if empty { 0 } else { self.0.max() },
            encoded: String::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HistSummary {
    count: u64,
    min_us: u64,
    mean_us: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    /// HdrHistogram V2 + DEFLATE, base64: the exact histogram.
    encoded: String,
}

impl Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
        let mut summary = self.summary();
        summary.encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        summary.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let summary = HistSummary::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(summary.encoded.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("histogram encoding: {e}")))?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("histogram encoding: {e:?}")))?;
        let mut h = Hist::default();
        h.merge(&decoded);
        Ok(h)
    }
}

/// Latency histograms of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// First login: login sent to reply (the fleet's own measure).
    pub login: Hist,
    /// First room entry: create/join/enter sent to Connected.
    pub room_enter: Hist,
    /// Message end to end: send time (in the body) to receive time, once per receiver.
    pub message: Hist,
    /// Account (Reconnecting, LoginInterrupted) to (Connected, Success).
    pub reconnect: Hist,
    /// Room (Connecting, NetworkInterrupted) to (Connected, Success), by T2 outcome: still a
    /// member; re-entered after ConnectTimeout; re-entered after RoomNotExist.
    pub room_recovery_member: Hist,
    pub room_recovery_after_connect_timeout: Hist,
    pub room_recovery_after_room_not_exist: Hist,
}

impl Histograms {
    pub(super) fn merge(&mut self, o: &Histograms) {
        self.login.merge(&o.login.0);
        self.room_enter.merge(&o.room_enter.0);
        self.message.merge(&o.message.0);
        self.reconnect.merge(&o.reconnect.0);
        self.room_recovery_member.merge(&o.room_recovery_member.0);
        self.room_recovery_after_connect_timeout
            .merge(&o.room_recovery_after_connect_timeout.0);
        self.room_recovery_after_room_not_exist
            .merge(&o.room_recovery_after_room_not_exist.0);
    }
}

/// Most buckets the per-second latency series keeps: past it, neighbours merge (the bucket
/// width doubles), so a long run's report stays small.
pub const MAX_LATENCY_BUCKETS: usize = 600;

/// A coarser histogram for one bucket of the latency series: 2 significant digits (26 KiB in
/// memory, a few hundred bytes encoded), 1 us to 1 h.
#[derive(Debug, Clone, PartialEq)]
pub struct SecHist(pub Hist);

impl Default for SecHist {
    fn default() -> Self {
        SecHist(Hist(
            Histogram::new_with_bounds(1, MAX_US, 2).expect("static bounds are valid"),
        ))
    }
}

impl Serialize for SecHist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SecHist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let read = Hist::deserialize(d)?;
        let mut h = SecHist::default();
        h.0.merge(&read.0);
        Ok(h)
    }
}

/// Message end-to-end latency over time: one histogram per bucket of `bucket_secs` seconds,
/// keyed by the bucket's first unix second. Merges exactly (bucket by bucket, at the wider
/// of two widths).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencySeries {
    /// Seconds per bucket: 1, doubled each time the series outgrows its bound.
    pub bucket_secs: u64,
    /// Bucket start (unix second) -> latency histogram.
    pub buckets: BTreeMap<u64, SecHist>,
}

impl Default for LatencySeries {
    fn default() -> Self {
        LatencySeries {
            bucket_secs: 1,
            buckets: BTreeMap::new(),
        }
    }
}

impl LatencySeries {
    /// Adds the histogram of unix second `sec`.
    pub fn add(&mut self, sec: u64, h: &Histogram<u64>) {
        let w = self.bucket_secs.max(1);
        self.buckets.entry(sec - sec % w).or_default().0.merge(h);
        while self.buckets.len() > MAX_LATENCY_BUCKETS {
            self.widen(w.saturating_mul(2).max(self.bucket_secs * 2));
        }
    }

    /// Re-buckets at `width` seconds (wider only).
    fn widen(&mut self, width: u64) {
        if width <= self.bucket_secs {
            return;
        }
        let old = std::mem::take(&mut self.buckets);
        self.bucket_secs = width;
        for (sec, h) in old {
            self.buckets
                .entry(sec - sec % width)
                .or_default()
                .0
                .merge(&h.0 .0);
        }
    }

    /// Adds another series (exact).
    pub fn merge(&mut self, other: &LatencySeries) {
        self.widen(other.bucket_secs);
        for (sec, h) in &other.buckets {
            self.add(*sec, &h.0 .0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(us: u64) -> Histogram<u64> {
        let mut h = SecHist::default();
        h.0.record_us(us);
        h.0 .0
    }

    #[test]
    fn latency_series_stays_bounded_and_merges_exactly() {
        let mut a = LatencySeries::default();
        for sec in 0..(MAX_LATENCY_BUCKETS as u64 * 3) {
            a.add(1_000 + sec, &one(1_000 + sec));
        }
        assert!(a.buckets.len() <= MAX_LATENCY_BUCKETS);
        assert_eq!(a.bucket_secs, 4);
        let total: u64 = a.buckets.values().map(|h| h.0.count()).sum();
        assert_eq!(total, MAX_LATENCY_BUCKETS as u64 * 3);
        let mut b = LatencySeries::default();
        b.add(1_001, &one(7));
        b.merge(&a);
        assert_eq!(b.bucket_secs, 4);
        assert_eq!(b.buckets[&1_000].0.count(), 5);
        let json = serde_json::to_string(&b).unwrap();
        let back: LatencySeries = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }
}
