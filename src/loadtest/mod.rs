//! `zimfleet loadtest`: many accounts against a backend, measured and reported.
//!
//! - [`plan`]: the plan (config/loadtest.toml < `--config` file < `ZIMFLEET__LOADTEST__...` <
//!   flags), validated once.
//! - [`shard`]: which accounts a shard runs (stable hash of the user id).
//! - [`preflight`]: open-file limit and local port range, checked before anything starts.
//! - [`backend`]: the backend under test (embedded reference server or a URL), its tokens,
//!   its admin API for server-side drops.
//! - [`stages`]: the shape of the load (`[[loadtest.stages]]` or the ramp + hold shorthand)
//!   as pure arithmetic: arrivals, departures and message rate over time.
//! - [`driver`]: the run on top of [`crate::client::Fleet`], stage by stage: arrivals and
//!   ramp-down logouts, messages ([`sends`]), chaos ([`chaos`]), drain, count.
//! - [`shared`]: what the run, the progress ticker and the live page share; [`settle`]:
//!   the wait for every account to settle.
//! - [`progress`]: the once-a-second figures: progress line, state samples, live data.
//! - [`receiver`]: the load bot: end-to-end latency, deliveries, duplicates and missing seqs.
//! - [`track`]: the fleet's events turned into states, recoveries and per-second counts.
//! - [`report`]: counts, per-second timelines, stages ([`stage_report`]) and HDR histograms
//!   ([`hist`]); JSON out and exact merge; the text table ([`table`]).
//! - [`html`]: the self-contained HTML report and the chart data; [`live`]: the live page
//!   (`--console ADDR`).
//! - [`cpu`]: CPU seconds per 1,000 accounts ramped and per 100,000 messages delivered.
//! - [`cli`]: `zimfleet loadtest [flags]`, `zimfleet loadtest merge A.json B.json ...` and
//!   `zimfleet loadtest report RUN.json --html OUT.html`.

pub mod backend;
pub mod chaos;
pub mod cli;
pub mod cpu;
pub mod driver;
pub mod hist;
pub mod html;
pub mod live;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod receiver;
pub mod report;
pub mod sends;
pub mod settle;
pub mod shard;
pub mod shared;
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
    /// The plan's layers could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The plan cannot run (the key and why).
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// This machine cannot hold the plan (the numbers and the fix).
    #[error("pre-flight: {0}")]
    Preflight(String),
    /// A report file could not be read or written.
    #[error("report {path}: {detail}")]
    Report {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// Reports that do not belong together.
    #[error("cannot merge reports: {0}")]
    Merge(String),
    /// The backend failed the run (start, tokens, admin API).
    #[error("backend: {0}")]
    Backend(String),
    /// The live page could not be served.
    #[error("console: {0}")]
    Console(String),
}
