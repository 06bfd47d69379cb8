//! The live page: `zimfleet loadtest --console ADDR` serves the report's charts, updated
//! each second from the running load test, with the progress line's figures.

use std::sync::{Arc, Mutex};

use super::progress::ProgressFigures;
use super::report::Report;

/// The latest figures, as the page's JSON.
#[derive(Default)]
pub struct Live {
    data: Mutex<String>,
}

impl Live {
    /// Replaces the page's data.
    pub fn publish(&self, report: &Report, progress: &ProgressFigures) {
        let json = serde_json::json!({
            "charts": super::html::ChartData::from_report(report),
            "progress": progress,
        })
        .to_string();
        if let Ok(mut d) = self.data.lock() {
            *d = json;
        }
    }

    /// The page's data now ("{}" before the first second).
    pub fn data(&self) -> String {
        match self.data.lock() {
            Ok(d) if !d.is_empty() => d.clone(),
            _ => "{}".into(),
        }
    }
}

/// Shared by the driver and the HTTP server.
pub type LiveRef = Arc<Live>;
