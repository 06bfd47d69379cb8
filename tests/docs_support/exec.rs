//! Runs a console block: its background processes (`server`, `runner`), then each command in
//! `sh -c` with the built `zimfleet` first on PATH, stdout and stderr into one file (so the
//! lines interleave as on a terminal), under a deadline; then compares what was printed with
//! what is shown (tests/docs_support/matching.rs).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use regex::Regex;

use super::markdown::{Block, Cwd, Shown};
use super::matching::shows;

/// The address a shown command uses for the reference server (`server` directive).
pub const SERVER_ADDR: &str = "127.0.0.1:9120";
/// The address a shown command uses for the runner's admin face (`runner` directive).
pub const RUNNER_ADMIN_ADDR: &str = "127.0.0.1:7480";
/// The admin token of the `server` directive's server.
pub const SERVER_ADMIN_TOKEN: &str = "secret-admin";

const BIN: &str = env!("CARGO_BIN_EXE_zimfleet");

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a shown command is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// `zimfleet ...`, `curl ...` (maybe after `VAR=value` words): run and checked.
    Checked,
    /// `export`, `unset`, `cd` or assignments only: kept for the next commands of the block.
    Setting,
    /// Anything else: run, and its shown output checked.
    Other,
}

/// `cargo run [--release] [--bin zimfleet] -- ARGS` is `zimfleet ARGS` with the built binary.
pub fn translate(command: &str) -> Result<String, String> {
    let cargo_run = Regex::new(r"^cargo run(?: --release)?(?: --bin zimfleet)? --(?: |$)").unwrap();
    if let Some(m) = cargo_run.find(command) {
        return Ok(format!("zimfleet {}", &command[m.end()..])
            .trim_end()
            .to_string());
    }
    if command.starts_with("cargo ") {
        return Err(format!(
            "`{command}`: only `cargo run [--release] -- ARGS` runs in a console block; put other cargo commands in a ```sh block"
        ));
    }
    Ok(command.to_string())
}

/// Sorts a (translated) command.
pub fn kind(command: &str) -> Kind {
    let assign = r#"[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|[^\s'"]*)"#;
    let only_assignments = Regex::new(&format!(r"^\s*(?:{assign}\s*;?\s*)+$")).unwrap();
    let program = Regex::new(&format!(r"^\s*(?:{assign}\s+)*(\S+)")).unwrap();
    if only_assignments.is_match(command) {
        return Kind::Setting;
    }
    match program
        .captures(command)
        .map(|c| c[1].to_string())
        .as_deref()
    {
        Some("zimfleet") | Some("curl") => Kind::Checked,
        Some("export") | Some("unset") | Some("cd") => Kind::Setting,
        _ => Kind::Other,
    }
}

/// Whether the docs test runs the block: it has a zimfleet or curl command.
pub fn runnable(block: &Block) -> bool {
    block.commands.iter().any(|c| {
        translate(&c.command).is_ok_and(|t| kind(&t) == Kind::Checked)
            || (c.command.starts_with("cargo ") && translate(&c.command).is_err())
    })
}

/// A fresh directory for one block.
fn fresh_dir(cwd: Cwd) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("zimfleet-docs-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if cwd == Cwd::Checkout {
        for entry in std::fs::read_dir(repo()).unwrap().flatten() {
            let name = entry.file_name();
            if name != "target" && name != ".git" {
                std::os::unix::fs::symlink(entry.path(), dir.join(&name)).unwrap();
            }
        }
    }
    dir
}

/// The environment every process of the docs test starts from: none of the test's own
/// ZIMFLEET__ variables, RUST_LOG or NO_COLOR; the built zimfleet first on PATH; a shown
/// `zimfleet server` takes a free port.
fn base_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("ZIMFLEET") {
            cmd.env_remove(key);
        }
    }
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin_dir.display()))
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("ZIMFLEET__SERVER__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null());
    cmd
}

/// Sends `signal` to the process group of `child` (each command runs in its own).
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

/// Stops a process group: SIGINT, then SIGKILL if it is still there after 5 s.
fn stop(child: &mut Child) {
    signal_group(child, "-INT");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_group(child, "-KILL");
    let _ = child.wait();
}

/// A background process of a block, and the directory made for it; stopped (and the
/// directory removed) when dropped.
struct Background(Child, Option<PathBuf>);

impl Drop for Background {
    fn drop(&mut self) {
        stop(&mut self.0);
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts `cmd` with `pipe` piped, and waits (deadline) for a line matching `ready`;
/// returns the process and the first capture group of that line.
fn start_until(
    mut cmd: Command,
    stdout: bool,
    ready: &Regex,
) -> Result<(Background, String), String> {
    let (out, err) = if stdout {
        (Stdio::piped(), Stdio::null())
    } else {
        (Stdio::null(), Stdio::piped())
    };
    let mut child = cmd
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())?;
    let pipe: Box<dyn std::io::Read + Send> = if stdout {
        Box::new(child.stdout.take().unwrap())
    } else {
        Box::new(child.stderr.take().unwrap())
    };
    let background = Background(child, None);
    let (tx, rx) = mpsc::channel();
    let pattern = ready.to_string();
    let ready = ready.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if !sent {
                if let Some(c) = ready.captures(&line) {
                    sent = tx.send(c[1].to_string()).is_ok();
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| format!("no line matching {pattern} within 20 s"))?;
    Ok((background, addr))
}

/// The `server` directive: `zimfleet server` on a free port with admin token
/// `secret-admin`; its address.
fn start_server() -> Result<(Background, String), String> {
    let mut cmd = base_command(BIN);
    cmd.args(["server", "--listen", "127.0.0.1:0"])
        .env("ZIMFLEET__SERVER__ADMIN_TOKEN", SERVER_ADMIN_TOKEN);
    let ready = Regex::new(r"^zimfleet server listening on (\S+)$").unwrap();
    start_until(cmd, true, &ready).map_err(|e| format!("server directive: {e}"))
}

/// The `runner` directive: `zimfleet run` (the shipped bots, embedded backend) with its admin
/// face on a free port; that face's address.
fn start_runner() -> Result<(Background, String), String> {
    let dir = fresh_dir(Cwd::Checkout);
    let mut cmd = base_command(BIN);
    cmd.arg("run")
        .current_dir(&dir)
        .env("ZIMFLEET__ADMIN__LISTEN", "127.0.0.1:0");
    let ready = Regex::new(r"admin face listening on http://(\S+)").unwrap();
    let (mut background, addr) =
        start_until(cmd, false, &ready).map_err(|e| format!("runner directive: {e}"))?;
    background.1 = Some(dir);
    Ok((background, addr))
}

/// What a command printed and how it ended.
pub struct Printed {
    /// stdout and stderr, interleaved.
    pub text: String,
    /// The exit code; `None` when the test stopped it (until-output) or it was killed.
    pub code: Option<i32>,
    /// It was stopped because the shown lines appeared (until-output).
    pub stopped: bool,
    /// It ran past its deadline.
    pub timed_out: bool,
}

/// Runs `prelude` + `command` in `sh -c` in `dir`. With `until`, it is stopped once
/// `until(printed so far)` holds.
pub fn run_command(
    prelude: &str,
    command: &str,
    dir: &Path,
    deadline: Duration,
    until: Option<&dyn Fn(&str) -> bool>,
) -> Printed {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path =
        std::env::temp_dir().join(format!("zimfleet-docs-{}-out-{n}", std::process::id()));
    let out = File::create(&out_path).unwrap();
    let mut cmd = base_command("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}{command}"))
        .current_dir(dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0);
    let mut child = cmd.spawn().expect("sh runs");
    let end = Instant::now() + deadline;
    let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let printed = loop {
        if let Some(status) = child.try_wait().unwrap() {
            // Nothing it left in the background outlives it (use the directives instead).
            signal_group(&child, "-KILL");
            break Printed {
                text: read(),
                code: status.code(),
                stopped: false,
                timed_out: false,
            };
        }
        if let Some(until) = until {
            let text = read();
            if until(&text) {
                stop(&mut child);
                break Printed {
                    text,
                    code: None,
                    stopped: true,
                    timed_out: false,
                };
            }
        }
        if Instant::now() >= end {
            stop(&mut child);
            break Printed {
                text: read(),
                code: None,
                stopped: false,
                timed_out: true,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&out_path);
    printed
}

/// Whether a curl command of the block calls `addr` while no command of the block starts
/// what listens there: then the block needs the `server` or `runner` process.
fn curl_calls(block: &Block, addr: &str, starter: &str) -> bool {
    let curl = block
        .commands
        .iter()
        .any(|c| c.command.contains("curl ") && c.command.contains(addr));
    let starts = block
        .commands
        .iter()
        .any(|c| translate(&c.command).is_ok_and(|t| t.contains(starter)));
    curl && !starts
}

/// The `server` and `runner` processes a block needs: given by its directives, or implied by
/// a curl command to their addresses (docs/testing.md).
pub fn needs(block: &Block) -> (bool, bool) {
    let d = &block.directives;
    (
        d.server || curl_calls(block, SERVER_ADDR, "zimfleet server"),
        d.runner || curl_calls(block, RUNNER_ADMIN_ADDR, "zimfleet run"),
    )
}

/// Runs one block; `Err` says what differs, with the file and line.
pub fn run_block(block: &Block) -> Result<(), String> {
    let d = &block.directives;
    let (server, runner) = needs(block);
    let (_server, server_addr) = match server {
        true => {
            let (b, a) = start_server()?;
            (Some(b), Some(a))
        }
        false => (None, None),
    };
    let (_runner, runner_addr) = match runner {
        true => {
            let (b, a) = start_runner()?;
            (Some(b), Some(a))
        }
        false => (None, None),
    };
    let dir = match d.cwd {
        Cwd::Repo => repo(),
        cwd => fresh_dir(cwd),
    };
    let substitute = |c: &str| {
        let mut c = c.to_string();
        if let Some(a) = &server_addr {
            c = c.replace(SERVER_ADDR, a);
        }
        if let Some(a) = &runner_addr {
            c = c.replace(RUNNER_ADMIN_ADDR, a);
        }
        c
    };
    let mut prelude = String::new();
    let result = block.commands.iter().try_for_each(|shown| {
        let at = |e: String| {
            format!(
                "{}:{}: `{}`: {e}",
                block.file.display(),
                shown.line,
                shown.command
            )
        };
        let command = substitute(&translate(&shown.command).map_err(at)?);
        match kind(&command) {
            Kind::Setting if shown.output.is_empty() => {
                prelude.push_str(&command);
                prelude.push('\n');
                Ok(())
            }
            Kind::Setting => Err(at(
                "a setting prints nothing: no output may be shown after it".into(),
            )),
            k => run_shown(shown, &prelude, &command, k == Kind::Checked, &dir, block).map_err(at),
        }
    });
    if d.cwd != Cwd::Repo {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// Runs one command and checks it against what is shown.
fn run_shown(
    shown: &Shown,
    prelude: &str,
    command: &str,
    checked: bool,
    dir: &Path,
    block: &Block,
) -> Result<(), String> {
    let d = &block.directives;
    let until_lines = d.until_output && checked;
    let until = |text: &str| shows(&shown.output, text, d.any_order, true);
    let printed = run_command(
        prelude,
        command,
        dir,
        d.timeout,
        until_lines.then_some(&until as &dyn Fn(&str) -> bool),
    );
    let differs = |why: &str| {
        format!(
            "{why}\n--- shown ---\n{}\n--- printed ---\n{}",
            shown.output.join("\n"),
            printed.text.trim_end()
        )
    };
    if printed.stopped {
        return Ok(());
    }
    if printed.timed_out {
        return Err(differs(&format!(
            "did not show its output within {:?}",
            d.timeout
        )));
    }
    if !shown.output.is_empty() && !shows(&shown.output, &printed.text, d.any_order, false) {
        return Err(differs("printed something else than shown"));
    }
    // A command shown without output claims to succeed; `exit=N` is the code of those
    // shown with their output.
    let want = match (d.exit, shown.output.is_empty()) {
        (_, true) => Some(0),
        (Some(code), false) if checked => Some(code),
        _ => None,
    };
    match want {
        Some(code) if printed.code != Some(code) => Err(differs(&format!(
            "exit code {:?}, expected {code}",
            printed.code
        ))),
        _ => Ok(()),
    }
}
