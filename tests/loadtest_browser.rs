//! The HTML report and the live page in a real headless Chromium: a four-stage run serves
//! its live page (`--console`) and writes its report (`--html`); the test opens both and
//! checks that every chart has drawn data points and that every stage is marked on the time
//! axes, and saves screenshots to target/loadtest-live.png and target/loadtest-report.png.

mod loadtest_support;
mod webdriver_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use loadtest_support::*;
use serde_json::Value;
use webdriver_support::{target_path, Browser};

/// Ramp up, plateau with drops, spike, and a ramp down long enough to watch live.
const PLAN: &str = r#"
[loadtest]
accounts = 90
[loadtest.rooms]
members = 10
[[loadtest.stages]]
name = "ramp up"
duration = "2s"
accounts = 30
msg_rate = 1.0
[[loadtest.stages]]
name = "plateau"
duration = "2s"
[loadtest.stages.chaos]
drop_share = 0.2
drop_every = "1s"
[[loadtest.stages]]
name = "spike"
duration = "1s"
accounts = 90
msg_rate = 2.0
[[loadtest.stages]]
name = "ramp down"
duration = "6s"
accounts = 10
msg_rate = 1.0
"#;

const STAGES: [&str; 4] = ["ramp up", "plateau", "spike", "ramp down"];

/// Every chart's points(), by id, and the mark labels drawn.
const CHARTS: &str = "if (!window.ZfReport || !ZfReport.data()) return null; \
    var c = ZfReport.charts(); var out = {}; \
    Object.keys(c).forEach(function (k) { out[k] = c[k].points(); }); \
    return {points: out, marks: ZfReport.data().marks.map(function (m) { return m.label; }), \
            verdict: document.getElementById('verdict').textContent, \
            progress: document.getElementById('progress').textContent, \
            stages: document.querySelectorAll('#tables table')[1].rows.length - 1};";

fn drawn(v: &Value) -> bool {
    let Some(points) = v["points"].as_object() else {
        return false;
    };
    let marks: Vec<&str> = v["marks"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    points.len() == 6
        && points.values().all(|p| p.as_u64().unwrap_or(0) > 0)
        && STAGES.iter().all(|s| marks.contains(s))
}

/// The live page's address, from the run's stderr.
fn live_url(child: &mut std::process::Child) -> String {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the live page's address on stderr");
        if let Some(url) = line.strip_prefix("zimfleet loadtest: live page on ") {
            return url.to_string();
        }
    }
}

#[test]
fn report_and_live_page_draw_every_chart_with_every_stage_marked() {
    let plan = temp("browser-plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let html = target_path("loadtest-report.html");
    let json = temp("browser.json");
    let mut child = command(&[
        "loadtest",
        "--quiet",
        "--config",
        plan.to_str().unwrap(),
        "--console",
        "127.0.0.1:0",
        "--out",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("zimfleet starts");
    let url = live_url(&mut child);
    let Some(browser) = Browser::start("loadtest_browser") else {
        let _ = child.kill();
        return;
    };

    // The live page, while the run goes: every chart drawn, every stage marked by the ramp
    // down, and the progress line's figures.
    browser.goto(&url);
    let live = browser.wait_for(CHARTS, Duration::from_secs(30), drawn);
    let progress = live["progress"].as_str().unwrap();
    assert!(progress.contains("fully connected"), "{progress}");
    assert!(progress.contains("ramp down: "), "{progress}");
    assert!(
        live["verdict"].as_str().unwrap().starts_with("running"),
        "{live}"
    );
    assert_eq!(live["stages"], 4);
    browser.screenshot(&target_path("loadtest-live.png"));

    let status = child.wait().expect("the run ends");
    assert_eq!(status.code(), Some(0), "{}", read_json(&json)["verdict"]);

    // The report: one file, every chart drawn from the run's data, verdict on top.
    browser.goto(&format!("file://{}", html.display()));
    let report = browser.wait_for(CHARTS, Duration::from_secs(20), drawn);
    assert_eq!(report["verdict"], "PASS");
    assert_eq!(report["stages"], 4);
    let points = report["points"].as_object().unwrap();
    // Per-second charts cover the whole run (about 11 s), the percentile curves 81 points.
    for id in ["accounts", "events", "messages", "errors"] {
        assert!(u(&points[id]) >= 10, "{id}: {points:?}");
    }
    assert_eq!(u(&points["percentiles"]), 81);
    let r = read_json(&json);
    assert_eq!(
        u(&points["latency"]),
        r["latency"]["buckets"].as_object().unwrap().len() as u64
    );
    let marks = report["marks"].as_array().unwrap();
    let drops = marks
        .iter()
        .filter(|m| m.as_str().unwrap().starts_with("drop "))
        .count();
    assert_eq!(drops, 1, "one drop, 1 s into the 2 s plateau: {marks:?}");
    browser.screenshot(&target_path("loadtest-report.png"));
}
