//! Fleet-wide counters and histograms, shared by every account (atomics, no per-account copy).
//! The runner renders them as Prometheus text; the load tester reads them.

/// Counters and histograms of a fleet (being built).
#[derive(Debug, Default)]
pub struct FleetMetrics {}
