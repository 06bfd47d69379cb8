//! `zimfleet run` as a user runs it: the built binary, a bots directory, the embedded
//! reference server, the events file, the admin face and signals. Config errors each check
//! the exact message and exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zimfleet-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `zimfleet run` with no ZIMFLEET__ variable of the test's own environment, in `dir`.
fn zimfleet(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ZIMFLEET__") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG");
    cmd.arg("run");
    cmd
}

/// Runs a command that must be refused at start; returns its stderr.
fn refused(cmd: &mut Command) -> String {
    let Output { status, stderr, .. } = cmd.output().unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    stderr
}

const ECHO_BOT: &str = "behaviour = \"echo\"\n[[accounts]]\nuser_id = \"e1\"\n";

/// A bots directory holding `files`.
fn bots_dir(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let bots = dir.join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    for (name, text) in files {
        std::fs::write(bots.join(name), text).unwrap();
    }
    bots
}

#[test]
fn a_missing_config_file_is_refused() {
    let dir = temp_dir("missing-config");
    let file = dir.join("nope.toml");
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert_eq!(
        stderr,
        format!("zimfleet run: config file {} not found\n", file.display())
    );
}

#[test]
fn a_wrong_type_in_the_config_file_names_the_key_and_the_file() {
    let dir = temp_dir("wrong-type");
    let file = dir.join("my.toml");
    std::fs::write(&file, "[fleet]\nworkers = \"many\"\n").unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert!(
        stderr.starts_with(&format!(
            "zimfleet run: config/default.toml < {}: invalid type: string \"many\", expected an integer for key `fleet.workers` in ",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("my.toml"), "{stderr}");
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused() {
    let dir = temp_dir("unknown-key");
    let file = dir.join("my.toml");
    std::fs::write(&file, "[fleet]\nwrokers = 1\n").unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert!(
        stderr.starts_with(&format!(
            "zimfleet run: config/default.toml < {}: unknown field `wrokers`, expected one of `workers`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("for key `fleet`"), "{stderr}");
}

#[test]
fn a_wrong_type_from_the_environment_names_the_variable() {
    let dir = temp_dir("env-type");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__FLEET__WORKERS", "abc"));
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__FLEET__WORKERS): invalid type: string \"abc\", expected an integer for key `fleet.workers` in the environment\n"
    );
}

#[test]
fn a_bad_value_is_refused_with_its_key() {
    let dir = temp_dir("bad-value");
    let file = dir.join("my.toml");
    std::fs::write(&file, "[run]\nshutdown_deadline = \"0s\"\n").unwrap();
    let stderr = refused(zimfleet(&dir).arg("--config").arg(&file));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: config/default.toml < {}: run.shutdown_deadline must be longer than 0s\n",
            file.display()
        )
    );
}

#[test]
fn a_bad_duration_is_refused_with_its_key() {
    let dir = temp_dir("bad-duration");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__TIMINGS__SEND_TIMEOUT", "soon"));
    assert!(
        stderr.starts_with(
            "zimfleet run: config/default.toml < environment (ZIMFLEET__TIMINGS__SEND_TIMEOUT): invalid duration \"soon\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("for key `timings.send_timeout`"),
        "{stderr}"
    );
}

#[test]
fn a_public_admin_address_is_refused() {
    let dir = temp_dir("admin-public");
    let stderr = refused(zimfleet(&dir).env("ZIMFLEET__ADMIN__LISTEN", "10.1.2.3:7480"));
    assert_eq!(
        stderr,
        "zimfleet run: config/default.toml < environment (ZIMFLEET__ADMIN__LISTEN): admin.listen 10.1.2.3:7480 is not a loopback address; the admin face has no authentication (set admin.allow_non_loopback = true to allow it)\n"
    );
}

#[test]
fn an_unknown_behaviour_names_the_file_and_the_key() {
    let dir = temp_dir("unknown-behaviour");
    let bots = bots_dir(
        &dir,
        &[(
            "parrot.toml",
            "behaviour = \"parrot\"\n[[accounts]]\nuser_id = \"p\"\n",
        )],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: behaviour: unknown behaviour \"parrot\" (known: idle, echo, greeter, keywords, scheduled, relay, chatter)\n",
            bots.join("parrot.toml").display()
        )
    );
}

#[test]
fn a_bad_behaviour_setting_names_the_file() {
    let dir = temp_dir("bad-setting");
    let bots = bots_dir(
        &dir,
        &[("c.toml", "behaviour = \"chatter\"\n[[accounts]]\nuser_id = \"c\"\n[settings]\nrate_per_sec = 50.0\n")],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: settings: settings of behaviour \"chatter\": rate_per_sec must be above 0 and at most 10, not 50\n",
            bots.join("c.toml").display()
        )
    );
}

#[test]
fn a_wrong_type_in_a_bot_file_shows_its_line() {
    let dir = temp_dir("bot-type");
    let bots = bots_dir(
        &dir,
        &[(
            "e.toml",
            "behaviour = \"echo\"\n[[accounts]]\nuser_id = 7\n",
        )],
    );
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(&bots));
    assert!(
        stderr.starts_with(&format!(
            "zimfleet run: {}: line 3 (`user_id = 7`): invalid type: integer `7`, expected a string",
            bots.join("e.toml").display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_missing_bots_directory_is_refused() {
    let dir = temp_dir("no-bots");
    let stderr = refused(zimfleet(&dir).arg("--bots").arg(dir.join("nowhere")));
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: bots directory {} not found\n",
            dir.join("nowhere").display()
        )
    );
}

#[test]
fn the_embedded_token_source_is_refused_with_an_external_backend() {
    let dir = temp_dir("embedded-token");
    let bots = bots_dir(&dir, &[("e.toml", ECHO_BOT)]);
    let stderr = refused(
        zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .env("ZIMFLEET__BACKEND__URL", "ws://127.0.0.1:9/ws"),
    );
    assert_eq!(
        stderr,
        format!(
            "zimfleet run: {}: token: the \"embedded\" token source needs the embedded backend, but backend.url is set; give a static, generated or http token source\n",
            bots.join("e.toml").display()
        )
    );
}

#[test]
fn an_unwritable_events_file_is_refused() {
    let dir = temp_dir("events-path");
    let bots = bots_dir(&dir, &[("e.toml", ECHO_BOT)]);
    let path = dir.join("missing-dir").join("events.jsonl");
    let stderr = refused(
        zimfleet(&dir)
            .arg("--bots")
            .arg(&bots)
            .arg("--events")
            .arg(&path),
    );
    assert!(
        stderr.ends_with(&format!(
            "zimfleet run: events file {}: No such file or directory (os error 2)\n",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn an_unknown_log_format_is_refused() {
    let dir = temp_dir("log-format");
    let stderr = refused(zimfleet(&dir).args(["--log-format", "xml"]));
    assert!(
        stderr.contains("invalid value 'xml' for '--log-format <FORMAT>'"),
        "{stderr}"
    );
}
