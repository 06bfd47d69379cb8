//! Shared by the tests/loadtest_*.rs files: the zimfleet binary, temp paths, JSON reading.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The zimfleet binary with warnings-only logs.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    c.args(args).env_remove("RUST_LOG").env("RUST_LOG", "warn");
    c
}

pub fn zimfleet(args: &[&str]) -> Output {
    command(args).output().expect("the zimfleet binary runs")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path in this test process's temp dir.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zimfleet-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn read_json(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned number: {v}"))
}

/// The repository's four-stage plan.
pub fn stages_plan() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/config/loadtest-stages.toml").to_string()
}

/// Runs `zimfleet loadtest --quiet --out FILE extra...`, asserts the exit code, returns the
/// report and the output.
pub fn run_plan(extra: &[&str], out_name: &str, expect: i32) -> (Value, Output) {
    let out_path = temp(out_name);
    let _ = std::fs::remove_file(&out_path);
    let mut args = vec!["loadtest", "--quiet", "--out", out_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = zimfleet(&args);
    assert_eq!(
        code(&out),
        expect,
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    (read_json(&out_path), out)
}

/// Each `zimfleet loadtest ARGS` exits 2 with `expect` in its stderr and runs nothing (no
/// table on stdout).
pub fn assert_refused(cases: &[(&[&str], &str)]) {
    for (args, expect) in cases {
        let mut all = vec!["loadtest"];
        all.extend_from_slice(args);
        let out = zimfleet(&all);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
    }
}
