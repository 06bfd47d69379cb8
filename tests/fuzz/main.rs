//! Fuzzing on stable Rust: `cargo test --test fuzz` runs every harness for a few seconds;
//! a long run is one command: `FUZZ_SECS=600 cargo test --release --test fuzz`.
//! See docs/testing.md ("Fuzzing").
//!
//! Settings (environment): `FUZZ_SECS` seconds per target (default 3), `FUZZ_TARGET` runs the
//! targets whose name contains it, `FUZZ_SEED` makes a run repeatable (default: from the
//! clock, printed). Crashing inputs land in target/fuzz-crashes/.

mod engine;
mod inputs;
mod network;
mod targets;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Make = fn() -> engine::Target;

const TARGETS: &[(&str, Make)] = &[
    ("client_frames", targets::client_frames),
    ("client_ws_bytes", targets::client_ws_bytes),
    ("server_requests", targets::server_requests),
    ("token04", targets::token04),
    ("bot_files", targets::bot_files),
    ("config_files", targets::config_files),
    ("server_ws", network::server_ws),
    ("server_ws_bytes", network::server_ws_bytes),
    ("server_admin", network::server_admin),
];

fn main() {
    // Only `cargo test --test fuzz [FILTER]` runs it; `cargo test --list` and friends ask
    // libtest questions this runner does not answer.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    engine::install_panic_hook();
    let secs: f64 = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let filter = std::env::var("FUZZ_TARGET").unwrap_or_default();
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(zimfleet::clock::unix_ms);
    println!("fuzz: seed {seed}, {secs} s per target (FUZZ_SEED={seed} repeats this run)");
    let progress = Arc::new(AtomicU64::new(0));
    watchdog(Arc::clone(&progress));
    let (mut passed, mut failed, mut total) = (0, 0, 0u64);
    for (i, (name, make)) in TARGETS.iter().enumerate() {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let outcome = engine::run(
            make(),
            Duration::from_secs_f64(secs),
            seed ^ i as u64,
            &progress,
        );
        let rate = outcome.executions as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
        println!(
            "fuzz {:<16} {:>11} executions in {:>6.1} s ({:>9.0}/s), {} crashes, {} hangs",
            outcome.name,
            outcome.executions,
            outcome.elapsed.as_secs_f64(),
            rate,
            outcome.crashes,
            outcome.hangs
        );
        total += outcome.executions;
        if outcome.crashes == 0 && outcome.hangs == 0 {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("fuzz: {total} executions in all");
    println!("fuzz: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Ends the process when no execution finished for 30 s (a hang the per-input check cannot
/// see, because the input never returns).
fn watchdog(progress: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let mut last = progress.load(Ordering::Relaxed);
        loop {
            std::thread::sleep(Duration::from_secs(30));
            let now = progress.load(Ordering::Relaxed);
            if now == last {
                eprintln!("fuzz: no execution finished in 30 s: a hang; stopping");
                std::process::exit(2);
            }
            last = now;
        }
    });
}
