//! Stages end to end: the four-stage plan of config/loadtest-stages.toml (ramp up, plateau
//! with link drops, spike, ramp down) on the embedded server; shards splitting every stage;
//! the HTML report from a run and from merged shards; refusals of stage plans that cannot
//! run.

mod loadtest_support;

use loadtest_support::*;
use serde_json::Value;

fn stage_column(r: &Value, key: &str) -> Vec<u64> {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u(&s[key]))
        .collect()
}

#[test]
fn four_stage_plan_ramps_up_holds_spikes_and_ramps_down() {
    let html = temp("stages.html");
    let plan = stages_plan();
    let (r, out) = run_plan(
        &["--config", &plan, "--html", html.to_str().unwrap()],
        "stages.json",
        0,
    );
    let names: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ramp up", "plateau", "spike", "ramp down"]);
    // Targets 0 -> 40 -> 40 -> 120 -> 20: arrivals and logouts in the stage they belong to.
    assert_eq!(stage_column(&r, "to_accounts"), [40, 40, 120, 20]);
    assert_eq!(stage_column(&r, "arrived"), [40, 0, 80, 0]);
    assert_eq!(stage_column(&r, "departed"), [0, 0, 0, 100]);
    // Stages follow each other, each about its planned length.
    let stages = r["stages"].as_array().unwrap();
    for (s, planned_ms) in stages.iter().zip([2_000u64, 3_000, 1_000, 2_000]) {
        let len = u(&s["ended_ms"]) - u(&s["started_ms"]);
        assert!(
            (planned_ms - 50..planned_ms + 500).contains(&len),
            "{}: {len} ms",
            s["name"]
        );
    }
    let c = &r["counts"];
    assert_eq!(u(&c["accounts_planned"]), 120);
    assert_eq!(u(&c["accounts_added"]), 120);
    assert_eq!(u(&c["logins_ok"]), 120);
    assert_eq!(u(&c["logouts"]), 100);
    assert_eq!(u(&c["accounts_expected_online"]), 20);
    assert_eq!(u(&c["accounts_fully_connected"]), 20);
    assert_eq!(
        r["accounts_by_state"],
        serde_json::json!({"connected": 20, "logged out": 100})
    );
    assert_eq!(u(&c["messages_send_failed"]), 0, "{}", r["errors"]);
    assert_eq!(u(&c["messages_missing"]), 0);
    assert_eq!(u(&c["messages_duplicated"]), 0);
    assert!(u(&c["messages_sent"]) > 300, "{c}");
    // The plateau's own chaos: a quarter of 40 at 1 s and 2 s into it, and nowhere else.
    assert_eq!(u(&c["chaos_drops"]), 20);
    let chaos = r["chaos_events"].as_array().unwrap();
    assert_eq!(chaos.len(), 2, "{chaos:?}");
    for e in chaos {
        assert_eq!(
            (e["kind"].as_str(), e["stage"].as_str()),
            (Some("drop"), Some("plateau"))
        );
        assert_eq!(u(&e["accounts"]), 10);
    }
    assert_eq!(c["reconnects"], c["disconnects"]);
    // The timeline carries the states and logouts; the latency series has the seconds of
    // sending; each stage's figures come from them.
    let timeline = r["timeline"].as_object().unwrap();
    let sum = |k: &str| timeline.values().map(|t| u(&t[k])).sum::<u64>();
    assert_eq!(sum("logouts"), 100);
    // Sampled once a second (a loaded machine may sample past the spike's peak).
    let samples = timeline.values().filter(|t| u(&t["connected"]) > 0).count();
    assert!(samples >= 5, "{samples} seconds with accounts connected");
    let peak = timeline.values().map(|t| u(&t["connected"])).max().unwrap();
    assert!(peak >= 20, "peak connected {peak}");
    assert!(r["latency"]["buckets"].as_object().unwrap().len() >= 5);
    let spike = &r["stages"][2]["figures"];
    assert!(spike["sent_per_sec"].as_f64().unwrap() > spike["sent"].as_f64().unwrap() / 2.0);
    let logins: u64 = stages.iter().map(|s| u(&s["figures"]["logins"])).sum();
    // Stage figures are whole seconds: a second at a boundary counts in both stages.
    assert!(
        logins >= 120,
        "every login in some stage's seconds: {logins}"
    );
    // The table names the stages; the HTML report is one file with every stage in it.
    let table = text(&out.stdout);
    assert!(table.contains("\nstages\n"), "{table}");
    assert!(table.contains("ramp down"), "{table}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.contains("<script src") && !page.contains("<link"));
    for name in names {
        assert!(page.contains(&format!("\"{name}\"")), "{name}");
    }
}

#[test]
fn shards_split_every_stage_and_merge_to_the_plan() {
    let plan = stages_plan();
    let run = |shard: &'static str, name: &'static str| {
        let plan = plan.clone();
        std::thread::spawn(move || run_plan(&["--config", &plan, "--shard", shard], name, 0).0)
    };
    let (a, b) = (run("0/2", "st-shard0.json"), run("1/2", "st-shard1.json"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    for r in [&a, &b] {
        let arrived = stage_column(r, "arrived");
        assert!(arrived[0] > 5 && arrived[0] < 35, "{arrived:?}");
    }
    let merged = temp("st-merged.json");
    let html = temp("st-merged.html");
    let out = zimfleet(&[
        "loadtest",
        "merge",
        temp("st-shard0.json").to_str().unwrap(),
        temp("st-shard1.json").to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let m = read_json(&merged);
    // Every stage's target split exactly: the shards' arrivals and logouts add up to it.
    assert_eq!(stage_column(&m, "arrived"), [40, 0, 80, 0]);
    assert_eq!(stage_column(&m, "departed"), [0, 0, 0, 100]);
    assert_eq!(u(&m["counts"]["accounts_planned"]), 120);
    assert_eq!(u(&m["counts"]["logouts"]), 100);
    assert_eq!(u(&m["counts"]["accounts_expected_online"]), 20);
    assert_eq!(u(&m["counts"]["accounts_fully_connected"]), 20);
    // Both shards' drops, in time order, marked on the merged charts.
    let chaos = m["chaos_events"].as_array().unwrap();
    assert_eq!(chaos.len(), 4);
    assert!(chaos
        .windows(2)
        .all(|w| u(&w[0]["ts_ms"]) <= u(&w[1]["ts_ms"])));
    // The report subcommand draws the merged report.
    let out = zimfleet(&[
        "loadtest",
        "report",
        merged.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("zimfleet loadtest report: wrote {}\n", html.display())
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("[0/2, 1/2]"));
    // Not a report: exit 2, the reason; nothing written.
    let junk = temp("st-junk.json");
    std::fs::write(&junk, "[]").unwrap();
    let none = temp("st-none.html");
    let out = zimfleet(&[
        "loadtest",
        "report",
        junk.to_str().unwrap(),
        "--html",
        none.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).starts_with(&format!(
        "zimfleet loadtest report: report {}: not a zimfleet loadtest report: ",
        junk.display()
    )));
    assert!(!none.exists());
}

#[test]
fn stage_plans_that_cannot_run_exit_2_naming_the_keys() {
    let cases: &[(&str, &str)] = &[
        (
            "accounts = 50\n[[loadtest.stages]]\nduration = \"1s\"\naccounts = 40\n[[loadtest.stages]]\nduration = \"1s\"\naccounts = 0\n[[loadtest.stages]]\nduration = \"1s\"\naccounts = 20\n",
            "zimfleet loadtest: invalid plan: the stages need 60 accounts (every arrival is a new account: accounts that left are not used again), but accounts is 50\n",
        ),
        (
            "[[loadtest.stages]]\nduration = \"0s\"\naccounts = 5\n",
            "zimfleet loadtest: invalid plan: stages[0].duration must be more than 0s\n",
        ),
        (
            "[[loadtest.stages]]\nduration = \"2s\"\naccounts = 5\n[[loadtest.stages]]\nduration = \"2s\"\n[loadtest.stages.chaos]\ndrop_share = 0.5\ndrop_every = \"2s\"\n",
            "zimfleet loadtest: invalid plan: stages[1].chaos.drop_every (2s) is not shorter than stages[1].duration (2s): it would never happen\n",
        ),
        (
            "[[loadtest.stages]]\nduration = \"2s\"\naccounts = 5\nmsg_rate = 20.0\n",
            "zimfleet loadtest: invalid plan: stages[0].msg_rate is 20; it must be 0 to 10 (the backend allows one message per 100 ms per conversation)\n",
        ),
        (
            "[[loadtest.stages]]\nduration = \"2s\"\n",
            "zimfleet loadtest: invalid plan: stages: no stage has accounts online (give the first stage accounts = N)\n",
        ),
        (
            "[[loadtest.stages]]\nduration = \"2s\"\naccounts = 5\nsoon = 1\n",
            "unknown field `soon`",
        ),
    ];
    for (i, (plan, expect)) in cases.iter().enumerate() {
        let path = temp(&format!("bad-stages-{i}.toml"));
        std::fs::write(&path, format!("[loadtest]\n{plan}")).unwrap();
        let out = zimfleet(&["loadtest", "--config", path.to_str().unwrap()]);
        assert_eq!(code(&out), 2, "{plan}");
        let err = text(&out.stderr);
        assert!(err.contains(expect), "{plan}\n{err}");
        assert!(out.stdout.is_empty(), "nothing ran");
    }
}
