//! The HTML report and the live page's data: a [`Report`] turned into chart specs
//! ([`ChartData`]) that `report.js` draws with the shared chart helpers (src/web: uPlot and
//! `ZfCharts`). The report is one self-contained file (scripts, styles and data inlined);
//! the live page polls the same data each second.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::hist::Hist;
use super::report::{ms, Report, Tick};
use super::stage_report::ChaosKind;
use super::LoadtestError;
use crate::protocol::ErrorCode;

/// The page script: draws [`ChartData`] (defines `ZfReport` globally).
pub const REPORT_JS: &str = include_str!("report.js");

/// Percentile-curve x values: "nines" (x = -log10(1 - q)), 0 (p0) to 4 (p99.99) by 0.05.
const NINES_STEPS: u32 = 80;

/// A line on every time axis: a stage boundary or a chaos event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    /// Unix seconds.
    pub t: f64,
    /// Stage name, or what the chaos did ("drop 10").
    pub label: String,
}

/// One chart: x values and one column per series (null = no value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Stable id: the element is `chart-ID`, the wrapper `ZfReport.charts()[ID]`.
    pub id: String,
    /// Shown above the chart.
    pub title: String,
    /// "time" (x in unix seconds, marks drawn) or "percentiles" (x in nines).
    pub kind: &'static str,
    /// Series names, in column order.
    pub labels: Vec<String>,
    /// Per series: "y" or "y2" (a second axis on the right).
    pub scales: Vec<&'static str>,
    /// X values (unix seconds, or nines).
    pub x: Vec<f64>,
    /// One column of y values per series, as long as `x`.
    pub columns: Vec<Vec<Option<f64>>>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartData {
    /// The page's heading.
    pub title: String,
    /// The verdict.
    pub passed: bool,
    /// One line per threshold missed.
    pub failures: Vec<String>,
    /// (threshold, limit, measured) rows.
    pub thresholds: Vec<[String; 3]>,
    /// (figure, value) rows.
    pub figures: Vec<[String; 2]>,
    /// Stage table: header and rows.
    pub stage_header: Vec<&'static str>,
    /// Stage table rows (one per stage, as `stage_header`).
    pub stages: Vec<Vec<String>>,
    /// Stage boundaries and chaos events, for every time axis.
    pub marks: Vec<Mark>,
    /// The charts, in page order.
    pub charts: Vec<Chart>,
}

fn kv(k: &str, v: String) -> [String; 2] {
    [k.to_string(), v]
}

impl ChartData {
    /// The charts and tables of `r`.
    pub fn from_report(r: &Report) -> ChartData {
        let c = &r.counts;
        let shards: Vec<String> = r.shards.iter().map(|s| s.shard.to_string()).collect();
        let figures = vec![
            kv("shards", format!("[{}]", shards.join(", "))),
            kv(
                "accounts planned / added / fully connected at end",
                format!(
                    "{} / {} / {}",
                    c.accounts_planned, c.accounts_added, c.accounts_fully_connected
                ),
            ),
            kv("logouts (ramp down)", c.logouts.to_string()),
            kv(
                "logins ok / failed; room entries ok / failed",
                format!(
                    "{} / {}; {} / {}",
                    c.logins_ok, c.logins_failed, c.room_entries_ok, c.room_entries_failed
                ),
            ),
            kv(
                "disconnects / reconnects",
                format!("{} / {}", c.disconnects, c.reconnects),
            ),
            kv(
                "messages sent / failed / delivered / missing / duplicated",
                format!(
                    "{} / {} / {} / {} / {}",
                    c.messages_sent,
                    c.messages_send_failed,
                    c.messages_delivered,
                    c.messages_missing,
                    c.messages_duplicated
                ),
            ),
            kv(
                "lost with the backend / rooms back as a new incarnation",
                format!(
                    "{} / {}",
                    c.messages_lost_with_backend, c.room_incarnations_changed
                ),
            ),
            kv(
                "chaos drops / offline / server drops",
                format!(
                    "{} / {} / {}",
                    c.chaos_drops, c.chaos_offline, c.server_drops
                ),
            ),
            kv("fleet events lost to lag", c.events_lost.to_string()),
        ];
        ChartData {
            title: format!(
                "zimfleet loadtest: {} accounts, {} stage(s)",
                c.accounts_planned,
                r.stages.len()
            ),
            passed: r.verdict.passed,
            failures: r.verdict.failures.clone(),
            thresholds: thresholds(r),
            figures,
            stage_header: vec![
                "stage",
                "start s",
                "length s",
                "accounts",
                "msg/s per account",
                "added",
                "logged out",
                "logins",
                "reconnects",
                "sent/s",
                "delivered/s",
                "p50 ms",
                "p99 ms",
            ],
            stages: stage_rows(r),
            marks: marks(r),
            charts: charts(r),
        }
    }
}

fn thresholds(r: &Report) -> Vec<[String; 3]> {
    let t = &r.plan.thresholds;
    let c = &r.counts;
    let h = &r.histograms;
    let dur = |d: std::time::Duration| format!("{} ms", ms(d.as_micros() as u64));
    vec![
        [
            "connected share, at least".into(),
            t.min_connected_share.to_string(),
            format!("{:.4}", r.figures.connected_share),
        ],
        [
            "missing messages, at most".into(),
            t.max_missing.to_string(),
            c.messages_missing.to_string(),
        ],
        [
            "duplicated messages, at most".into(),
            t.max_duplicated.to_string(),
            c.messages_duplicated.to_string(),
        ],
        [
            "send errors, at most".into(),
            t.max_send_errors.to_string(),
            c.messages_send_failed.to_string(),
        ],
        [
            "login p99, at most".into(),
            dur(t.max_login_p99),
            format!("{} ms", ms(h.login.quantile_us(0.99))),
        ],
        [
            "message p99, at most".into(),
            dur(t.max_message_p99),
            format!("{} ms", ms(h.message.quantile_us(0.99))),
        ],
    ]
}

fn stage_rows(r: &Report) -> Vec<Vec<String>> {
    let first = r
        .stages
        .iter()
        .map(|s| s.started_ms)
        .filter(|&t| t > 0)
        .min();
    r.stages
        .iter()
        .map(|s| {
            let f = &s.figures;
            let secs = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
            vec![
                s.name.clone(),
                secs(s.started_ms.saturating_sub(first.unwrap_or(s.started_ms))),
                secs(s.ended_ms.saturating_sub(s.started_ms)),
                format!("{} -> {}", s.from_accounts, s.to_accounts),
                format!("{} -> {}", s.from_rate, s.to_rate),
                s.arrived.to_string(),
                s.departed.to_string(),
                f.logins.to_string(),
                f.reconnects.to_string(),
                format!("{:.1}", f.sent_per_sec),
                format!("{:.1}", f.delivered_per_sec),
                ms(f.message_p50_us),
                ms(f.message_p99_us),
            ]
        })
        .collect()
}

fn marks(r: &Report) -> Vec<Mark> {
    let mut out: Vec<Mark> = r
        .stages
        .iter()
        .filter(|s| s.started_ms > 0)
        .map(|s| Mark {
            t: s.started_ms as f64 / 1000.0,
            label: s.name.clone(),
        })
        .collect();
    for e in &r.chaos_events {
        let label = match e.kind {
            ChaosKind::Drop => format!("drop {}", e.accounts),
            ChaosKind::Offline => format!("offline {}", e.accounts),
            ChaosKind::ServerDrop => "server drop".into(),
        };
        out.push(Mark {
            t: e.ts_ms as f64 / 1000.0,
            label,
        });
    }
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

fn time_chart(
    id: &str,
    title: &str,
    series: &[(&str, &'static str)],
    x: Vec<f64>,
    columns: Vec<Vec<Option<f64>>>,
) -> Chart {
    Chart {
        id: id.into(),
        title: title.into(),
        kind: "time",
        labels: series.iter().map(|s| s.0.to_string()).collect(),
        scales: series.iter().map(|s| s.1).collect(),
        x,
        columns,
    }
}

fn charts(r: &Report) -> Vec<Chart> {
    // Every second from the first to the last of the timeline (gaps are zeros).
    let secs: Vec<u64> = match (r.timeline.keys().next(), r.timeline.keys().last()) {
        (Some(&a), Some(&b)) => (a..=b).collect(),
        _ => Vec::new(),
    };
    let x: Vec<f64> = secs.iter().map(|&s| s as f64).collect();
    let col = |f: fn(&Tick) -> u64| -> Vec<Option<f64>> {
        secs.iter()
            .map(|s| Some(r.timeline.get(s).map(f).unwrap_or(0) as f64))
            .collect()
    };
    let mut out = vec![
        time_chart(
            "accounts",
            "Accounts by state",
            &[
                ("connected", "y"),
                ("reconnecting", "y"),
                ("logging in or ended", "y"),
            ],
            x.clone(),
            vec![
                col(|t| t.connected),
                col(|t| t.reconnecting),
                col(|t| t.other),
            ],
        ),
        time_chart(
            "events",
            "Logins, room entries, reconnects, disconnects, logouts per second",
            &[
                ("logins", "y"),
                ("room entries", "y"),
                ("reconnects", "y"),
                ("disconnects", "y"),
                ("logouts", "y"),
            ],
            x.clone(),
            vec![
                col(|t| t.logins),
                col(|t| t.room_entries),
                col(|t| t.reconnects),
                col(|t| t.disconnects),
                col(|t| t.logouts),
            ],
        ),
        time_chart(
            "messages",
            "Messages sent (left axis) and delivered (right axis) per second",
            &[("sent", "y"), ("delivered", "y2")],
            x.clone(),
            vec![col(|t| t.sent), col(|t| t.delivered)],
        ),
        latency_chart(r),
        percentile_chart(r),
    ];
    out.push(errors_chart(r, &secs, x));
    out
}

fn latency_chart(r: &Report) -> Chart {
    let buckets = &r.latency.buckets;
    let x = buckets.keys().map(|&s| s as f64).collect();
    let q = |p: f64| -> Vec<Option<f64>> {
        buckets
            .values()
            .map(|h| Some(h.0.quantile_us(p) as f64 / 1000.0))
            .collect()
    };
    time_chart(
        "latency",
        &format!(
            "Message end-to-end latency per {} s (ms)",
            r.latency.bucket_secs.max(1)
        ),
        &[("p50", "y"), ("p90", "y"), ("p99", "y")],
        x,
        vec![q(0.5), q(0.9), q(0.99)],
    )
}

fn percentile_chart(r: &Report) -> Chart {
    let h = &r.histograms;
    let hists: [(&str, &Hist); 5] = [
        ("login", &h.login),
        ("room enter", &h.room_enter),
        ("message end to end", &h.message),
        ("reconnect", &h.reconnect),
        (
            "room back after ConnectTimeout",
            &h.room_recovery_after_connect_timeout,
        ),
    ];
    let x: Vec<f64> = (0..=NINES_STEPS)
        .map(|i| f64::from(i) * 4.0 / f64::from(NINES_STEPS))
        .collect();
    let columns = hists
        .iter()
        .map(|(_, hist)| {
            x.iter()
                .map(|&nines| {
                    (hist.count() > 0).then(|| {
                        let q = 1.0 - 10f64.powf(-nines);
                        hist.quantile_us(q) as f64 / 1000.0
                    })
                })
                .collect()
        })
        .collect();
    Chart {
        id: "percentiles".into(),
        title: "Latency by percentile, from the HDR histograms (ms)".into(),
        kind: "percentiles",
        labels: hists.iter().map(|(n, _)| n.to_string()).collect(),
        scales: vec!["y"; hists.len()],
        x,
        columns,
    }
}

fn errors_chart(r: &Report, secs: &[u64], x: Vec<f64>) -> Chart {
    let codes: BTreeSet<u32> = r
        .errors_by_sec
        .values()
        .flat_map(|m| m.keys().copied())
        .collect();
    let empty = BTreeMap::new();
    let at = |s: &u64| r.errors_by_sec.get(s).unwrap_or(&empty);
    let mut labels = vec![("all codes".to_string(), "y")];
    let mut columns = vec![secs
        .iter()
        .map(|s| Some(at(s).values().sum::<u64>() as f64))
        .collect()];
    for code in codes {
        labels.push((ErrorCode(code).to_string(), "y"));
        columns.push(
            secs.iter()
                .map(|s| Some(at(s).get(&code).copied().unwrap_or(0) as f64))
                .collect(),
        );
    }
    Chart {
        id: "errors".into(),
        title: "Errors per second by ZIM code".into(),
        kind: "time",
        labels: labels.iter().map(|l| l.0.clone()).collect(),
        scales: labels.iter().map(|l| l.1).collect(),
        x,
        columns,
    }
}

/// JSON for a `<script>` element (no `</script>` can end it early).
fn script_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .expect("chart data serialises")
        .replace("</", "<\\/")
}

/// The page around the charts: `data` inline (a report) or None (the live page, which
/// fetches `data.json` each second).
pub fn page(title: &str, data: Option<&ChartData>) -> String {
    let boot = match data {
        Some(d) => format!("ZfReport.render({}, null);", script_json(d)),
        None => "ZfReport.live('data.json', 1000);".to_string(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n{head}<style>{css}</style>\n</head>\n<body>\n<h1 id=\"title\">{title}</h1>\n<p id=\"verdict\"></p>\n<div id=\"progress\"></div>\n<div id=\"tables\"></div>\n<div id=\"charts\"></div>\n<script>{js}</script>\n<script>{boot}</script>\n</body>\n</html>\n",
        title = html_escape(title),
        head = crate::web::inline_head(),
        css = PAGE_CSS,
        js = REPORT_JS,
    )
}

const PAGE_CSS: &str = "body{font-family:system-ui,sans-serif;margin:16px auto;max-width:1180px;color:#111827}\
h1{font-size:20px}h2{font-size:16px;margin-top:20px}\
.pass{color:#15803d;font-weight:bold}.fail{color:#b91c1c;font-weight:bold}\
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{padding:2px 8px;border-bottom:1px solid #e5e7eb;text-align:left}\
.chart{margin:14px 0}#progress{font-family:monospace;font-size:13px;margin:8px 0}";

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the self-contained HTML report of `report` to `path`.
pub fn write_report(report: &Report, path: &Path) -> Result<(), LoadtestError> {
    let data = ChartData::from_report(report);
    let html = page(&data.title.clone(), Some(&data));
    std::fs::write(path, html).map_err(|e| LoadtestError::Report {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::plan::Plan;
    use crate::loadtest::stage_report::{ChaosEvent, StageReport};

    fn report() -> Report {
        let mut r = Report::new(Plan::defaults());
        for sec in 100..110 {
            r.timeline.insert(
                sec,
                Tick {
                    connected: 5,
                    sent: 2,
                    delivered: 20,
                    ..Tick::default()
                },
            );
            let mut h = Hist::default();
            h.record_us(1_500);
            r.latency.add(sec, &h.0);
            r.histograms.message.record_us(1_500);
        }
        r.errors_by_sec.insert(105, BTreeMap::from([(6000105, 2)]));
        r.stages.push(StageReport {
            name: "spike".into(),
            started_ms: 103_000,
            ended_ms: 106_000,
            ..StageReport::default()
        });
        r.chaos_events.push(ChaosEvent {
            ts_ms: 104_500,
            kind: ChaosKind::Offline,
            accounts: 3,
            for_ms: 500,
            stage: "spike".into(),
        });
        r.finish();
        r
    }

    #[test]
    fn every_chart_has_data_and_the_marks_name_stages_and_chaos() {
        let d = ChartData::from_report(&report());
        let ids: Vec<_> = d.charts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "accounts",
                "events",
                "messages",
                "latency",
                "percentiles",
                "errors"
            ]
        );
        for c in &d.charts {
            assert!(!c.x.is_empty(), "{}", c.id);
            assert_eq!(c.columns.len(), c.labels.len(), "{}", c.id);
            assert!(
                c.columns.iter().all(|col| col.len() == c.x.len()),
                "{}",
                c.id
            );
        }
        let errors = &d.charts[5];
        assert_eq!(errors.labels.len(), 2, "{:?}", errors.labels);
        assert_eq!(errors.columns[1][5], Some(2.0));
        assert_eq!(
            d.marks,
            vec![
                Mark {
                    t: 103.0,
                    label: "spike".into()
                },
                Mark {
                    t: 104.5,
                    label: "offline 3".into()
                }
            ]
        );
        let p = &d.charts[4];
        assert_eq!(p.columns[2][0], Some(1.5));
        assert_eq!(p.columns[0][0], None, "no logins: no curve");
    }

    #[test]
    fn the_figures_say_what_a_backend_restart_cost() {
        let mut r = report();
        r.counts.messages_lost_with_backend = 17;
        r.counts.room_incarnations_changed = 4;
        let d = ChartData::from_report(&r);
        let row = d
            .figures
            .iter()
            .find(|[k, _]| k == "lost with the backend / rooms back as a new incarnation")
            .expect("the row");
        assert_eq!(row[1], "17 / 4");
    }

    #[test]
    fn the_page_is_self_contained_and_its_data_cannot_close_the_script() {
        let mut r = report();
        r.stages[0].name = "</script><b>x".into();
        let html = page("t", Some(&ChartData::from_report(&r)));
        assert!(!html.contains("</script><b>"));
        assert!(html.contains("<\\/script><b>x"));
        assert!(!html.contains("<script src") && !html.contains("<link"));
        assert!(html.contains("ZfCharts") && html.contains("ZfReport.render("));
    }
}
