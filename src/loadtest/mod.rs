//! `zimfleet loadtest`: many accounts against a backend, measured and reported.
//!
//! - [`plan`]: the plan (config/loadtest.toml < `--config` file < `ZIMFLEET__LOADTEST__...` <
//!   flags), validated once.
//! - [`shard`]: which accounts a shard runs (stable hash of the user id).
//! - [`preflight`]: open-file limit and local port range, checked before anything starts.
//! - [`backend`]: the backend under test (embedded reference server or a URL), its tokens,
//!   its admin API for server-side drops.
//! - [`driver`]: the run on top of [`crate::client::Fleet`]: paced arrivals, messages,
//!   chaos, the live progress line.
//! - [`receiver`]: the load bot: end-to-end latency, deliveries, duplicates and missing seqs.
//! - [`track`]: the fleet's events turned into states, recoveries and per-second counts.
//! - [`report`]: counts, HDR histograms and per-second timelines; JSON out and exact merge.
//! - [`cli`]: `zimfleet loadtest [flags]` and `zimfleet loadtest merge A.json B.json ...`.

pub mod backend;
pub mod cli;
pub mod driver;
pub mod hist;
pub mod plan;
pub mod preflight;
pub mod receiver;
pub mod report;
pub mod shard;
pub mod stage_report;
pub mod stages;
pub mod table;
pub mod track;

pub use plan::Plan;
pub use report::Report;

/// Why a load test could not run or report (ZIM outcomes during the run are counted in the
/// report, not raised).
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    #[error("pre-flight: {0}")]
    Preflight(String),
    #[error("report {path}: {detail}")]
    Report { path: String, detail: String },
    #[error("cannot merge reports: {0}")]
    Merge(String),
    #[error("backend: {0}")]
    Backend(String),
}
