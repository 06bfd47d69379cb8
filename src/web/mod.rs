//! Web assets shared by every page zimfleet serves (the runner's console, the load-test live
//! page and HTML report): embedded at build time, nothing fetched from the network.
//!
//! One chart library for all of them: uPlot (MIT, vendored from the npm package `uplot`
//! 1.6.32 into `vendor/`, unmodified), wrapped by `charts.js`.

/// uPlot's minified IIFE build (defines `uPlot` globally).
pub const UPLOT_JS: &str = include_str!("vendor/uPlot.iife.min.js");
/// uPlot's stylesheet.
pub const UPLOT_CSS: &str = include_str!("vendor/uPlot.min.css");
/// zimfleet's chart helpers over uPlot (defines `ZfCharts` globally).
pub const CHARTS_JS: &str = include_str!("charts.js");

/// The chart scripts and stylesheet inlined, for a self-contained HTML file: put it in `<head>`.
pub fn inline_head() -> String {
    format!(
        "<style>{UPLOT_CSS}</style>\n<script>{UPLOT_JS}</script>\n<script>{CHARTS_JS}</script>\n"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn assets_are_embedded() {
        assert!(super::UPLOT_JS.contains("uPlot"));
        assert!(super::CHARTS_JS.contains("ZfCharts"));
        assert!(super::inline_head().contains("<script>"));
    }
}
