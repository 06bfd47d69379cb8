//! Docs that cannot go stale: every `zimfleet`, `curl` and `cargo run -- ...` command of a
//! ```console block in README.md and docs/*.md runs with the built binary under a deadline,
//! and what it prints is checked against the lines shown; every flag table is checked
//! against `--help` both ways. The conventions and directives are in docs/testing.md.

mod docs_support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use docs_support::exec::{self, run_block, runnable};
use docs_support::help::{flags_of, help_flags};
use docs_support::markdown::{parse, Block, Doc, FlagTable};
use docs_support::matching::shows;

/// README.md and every docs/*.md, in name order; `DOCS_TEST_ONLY=tokens` keeps the files
/// whose path contains it (while writing one guide).
fn doc_files() -> Vec<PathBuf> {
    let repo = exec::repo();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, repo.join("README.md"));
    if let Ok(only) = std::env::var("DOCS_TEST_ONLY") {
        files.retain(|f| f.to_string_lossy().contains(&only));
    }
    files
}

/// Every doc file parsed; a parse error (an unknown directive...) fails the test.
fn docs() -> Vec<Doc> {
    let mut errors = Vec::new();
    let docs: Vec<Doc> = doc_files()
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let shown = f.strip_prefix(exec::repo()).unwrap_or(f);
            parse(shown, &text).map_err(|e| errors.push(e)).ok()
        })
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    docs
}

#[test]
fn every_console_block_in_the_docs_prints_what_it_shows() {
    let blocks: Vec<Block> = docs()
        .into_iter()
        .flat_map(|d| d.blocks)
        .filter(runnable)
        .collect();
    let only = std::env::var("DOCS_TEST_ONLY").is_ok();
    assert!(
        only || blocks.iter().any(|b| b.file == Path::new("README.md")),
        "no runnable console block in README.md"
    );
    let queue = Mutex::new(blocks.iter());
    let failures = Mutex::new(Vec::new());
    // Two at a time: the machine is shared, and until-output blocks wait on real time.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(block) = queue.lock().unwrap().next() else {
                    return;
                };
                if let Err(e) = run_block(block) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let commands: usize = blocks.iter().map(|b| b.commands.len()).sum();
    eprintln!("docs test: {} blocks, {commands} commands", blocks.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Checks one flag table against `--help`, both ways.
fn check_table(table: &FlagTable) -> Result<(), String> {
    let help = help_flags(&table.subcommand)?;
    let listed: std::collections::BTreeSet<String> = table.flags.iter().cloned().collect();
    let unknown: Vec<&String> = listed.difference(&help).collect();
    let missing: Vec<&String> = help.difference(&listed).collect();
    if unknown.is_empty() && missing.is_empty() {
        return Ok(());
    }
    let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Err(format!(
        "{}:{}: flag table of `zimfleet {}`: not in --help: [{}]; in --help, not in the table: [{}]",
        table.file.display(),
        table.line,
        table.subcommand.join(" "),
        list(&unknown),
        list(&missing)
    ))
}

#[test]
fn every_flag_table_lists_exactly_the_flags_of_help() {
    let errors: Vec<String> = docs()
        .iter()
        .flat_map(|d| &d.tables)
        .filter_map(|t| check_table(t).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

const MINT_TABLE: &str = "<!-- flags: zimfleet token mint -->\n\n| flag | meaning |\n|---|---|\n| `--app-id N` | app |\n| `--user ID` | user |\n| `--ttl SECS` | lifetime |\n| `--secret-env VAR`, `--secret-file FILE` | the secret |\n";

#[test]
fn a_flag_table_fails_on_a_changed_flag() {
    let doc = parse(Path::new("t.md"), MINT_TABLE).unwrap();
    assert_eq!(doc.tables[0].flags.len(), 5);
    check_table(&doc.tables[0]).unwrap();
    // A renamed flag and a dropped one: both directions are named.
    let changed = MINT_TABLE
        .replace("`--ttl SECS`", "`--lifetime SECS`")
        .replace("| `--user ID` | user |\n", "");
    let doc = parse(Path::new("t.md"), &changed).unwrap();
    assert_eq!(
        check_table(&doc.tables[0]).unwrap_err(),
        "t.md:1: flag table of `zimfleet token mint`: not in --help: [--lifetime]; in --help, not in the table: [--ttl, --user]"
    );
}

#[test]
fn help_flags_are_the_option_lines() {
    let help = "Usage: x\n\nOptions:\n  -q, --quiet  No output\n      --out <FILE>\n          Write --not-a-flag here\n  -h, --help   Print help\n  -V, --version\n";
    let flags: Vec<String> = flags_of(help).into_iter().collect();
    assert_eq!(flags, ["--out", "--quiet", "-q"]);
}

/// One console block from markdown text.
fn block(text: &str) -> Block {
    let doc = parse(Path::new("t.md"), text).unwrap();
    doc.blocks.into_iter().next().unwrap()
}

const REFUSED: &str = "```console\n$ zimfleet token mint --app-id 1 --user \"no spaces\"\nzimfleet token: invalid user id \"no spaces\": 1 to 32 letters, digits or !#$%&()+-:;<=.>?@[]^_{}|~\n```\n";

#[test]
fn a_changed_message_fails() {
    run_block(&block(REFUSED)).unwrap();
    let changed = REFUSED.replace("1 to 32 letters", "1 to 64 letters");
    let err = run_block(&block(&changed)).unwrap_err();
    assert!(
        err.starts_with("t.md:2: `zimfleet token mint --app-id 1 --user \"no spaces\"`: printed something else than shown\n--- shown ---\nzimfleet token: invalid user id \"no spaces\": 1 to 64 letters"),
        "{err}"
    );
    // The exit code, when a directive names it.
    let exit = format!("<!-- docs-test: exit=1 -->\n{REFUSED}");
    let err = run_block(&block(&exit)).unwrap_err();
    assert!(err.contains(": exit code Some(2), expected 1\n"), "{err}");
    let exit = format!("<!-- docs-test: exit=2 -->\n{REFUSED}");
    run_block(&block(&exit)).unwrap();
}

#[test]
fn a_command_shown_without_output_must_succeed() {
    let ok = "```console\n$ export ZIMFLEET_SERVER_SECRET=fa94dd0f974cf2e293728a526b028271\n$ zimfleet token mint --app-id 1 --user ann > ann.token\n$ zimfleet token verify \"$(cat ann.token)\"\n...\n```\n";
    // Exports carry over to the next commands of the block; a file written stays there.
    run_block(&block(ok)).unwrap();
    let failing = "```console\n$ zimfleet token mint --app-id 1 --user ann\n```\n";
    let err = run_block(&block(failing)).unwrap_err();
    assert!(err.contains(": exit code Some(2), expected 0\n"), "{err}");
}

#[test]
fn until_output_stops_a_long_running_command_once_its_lines_appeared() {
    let text = "<!-- docs-test: until-output timeout=20s -->\n```console\n$ zimfleet server\n...\nzimfleet server listening on 127.0.0.1:9120\n```\n";
    run_block(&block(text)).unwrap();
    let never = text.replace("listening on", "listening at");
    let short = never.replace("timeout=20s", "timeout=1s");
    let err = run_block(&block(&short)).unwrap_err();
    assert!(err.contains("did not show its output within 1s"), "{err}");
}

#[test]
fn the_server_directive_gives_curl_a_server() {
    let text = "<!-- docs-test: server -->\n```console\n$ curl -s -H 'Authorization: Bearer secret-admin' -d '{\"user_id\":\"ann\",\"ttl_secs\":60}' http://127.0.0.1:9120/admin/tokens\n{\"token\":\"04AAAAAGsHmtIADBGoCKGhDElBO4RF0QB0mqXtzNTQRF4GeXfdwXPiK7Zg\",\"expire_at\":1795660498}\n```\n";
    run_block(&block(text)).unwrap();
    let wrong = text.replace("expire_at", "expires_at");
    assert!(run_block(&block(&wrong)).is_err());
}

#[test]
fn a_curl_to_the_usual_addresses_implies_its_server() {
    let curl = "```console\n$ curl -s http://127.0.0.1:9120/admin/stats\n```\n";
    assert_eq!(exec::needs(&block(curl)), (true, false));
    let admin = "```console\n$ curl -s http://127.0.0.1:7480/health\n```\n";
    assert_eq!(exec::needs(&block(admin)), (false, true));
    // A block that starts its own server does not get another.
    let own = "```console\n$ zimfleet server &\n$ curl -s http://127.0.0.1:9120/admin/stats\n```\n";
    assert_eq!(exec::needs(&block(own)), (false, false));
    let plain = "```console\n$ zimfleet --version\n```\n";
    assert_eq!(exec::needs(&block(plain)), (false, false));
}

#[test]
fn the_runner_directive_gives_curl_the_admin_face() {
    let text = "<!-- docs-test: runner -->\n```console\n$ curl -s http://127.0.0.1:7480/health\n{\"accounts\":7,...,\"status\":\"ok\",...}\n```\n";
    run_block(&block(text)).unwrap();
    let wrong = text.replace("\"accounts\":7", "\"accounts\":8");
    assert!(run_block(&block(&wrong)).is_err());
}

#[test]
fn unknown_directives_and_misplaced_ones_fail() {
    let parse_err = |t: &str| parse(Path::new("t.md"), t).unwrap_err();
    assert_eq!(
        parse_err("<!-- docs-test: sever -->\n```console\n$ zimfleet --version\n```\n"),
        "t.md:1: unknown docs-test directive `sever`"
    );
    assert_eq!(
        parse_err("<!-- docs-test: colour=red -->\n```console\n$ zimfleet --version\n```\n"),
        "t.md:1: unknown docs-test directive `colour=red`"
    );
    assert_eq!(
        parse_err("<!-- docs-test: server -->\n```sh\nzimfleet server\n```\n"),
        "t.md:1: a docs-test directive must come right before a ```console block"
    );
    assert_eq!(
        parse_err(
            "<!-- docs-test: server -->\nSome text.\n\n```console\n$ zimfleet --version\n```\n"
        ),
        "t.md:1: a docs-test directive must come right before a ```console block"
    );
    assert_eq!(
        parse_err("```console\nzimfleet 0.1.0\n```\n"),
        "t.md:1: line 2: a console block starts with a `$ ` command, not \"zimfleet 0.1.0\""
    );
}

#[test]
fn which_blocks_and_commands_run() {
    assert!(!runnable(&block("```console\n$ ls\nCargo.toml\n```\n")));
    assert!(runnable(&block(
        "```console\n$ FOO=1 zimfleet --version\n```\n"
    )));
    assert!(runnable(&block(
        "```console\n$ cargo run --release -- run\n```\n"
    )));
    assert!(runnable(&block("```console\n$ cargo test\n```\n")));
    assert_eq!(
        exec::translate("cargo run --release -- run --bots x").unwrap(),
        "zimfleet run --bots x"
    );
    assert_eq!(
        exec::translate("cargo test").unwrap_err(),
        "`cargo test`: only `cargo run [--release] -- ARGS` runs in a console block; put other cargo commands in a ```sh block"
    );
    use exec::Kind;
    assert_eq!(exec::kind("export A=1"), Kind::Setting);
    assert_eq!(exec::kind("A='x y'; B=2"), Kind::Setting);
    assert_eq!(exec::kind("A='x y' zimfleet run"), Kind::Checked);
    assert_eq!(exec::kind("curl -s http://x"), Kind::Checked);
    assert_eq!(exec::kind("cat plan.toml"), Kind::Other);
    // Continuation lines belong to their command.
    let b = block("```console\n$ zimfleet token mint \\\n    --app-id 1 --user ann\n04...\n```\n");
    assert_eq!(b.commands.len(), 1);
    assert_eq!(
        b.commands[0].command,
        "zimfleet token mint \\\n    --app-id 1 --user ann"
    );
    assert_eq!(b.commands[0].output, ["04..."]);
}

#[test]
fn matching_rules_row_by_row() {
    let s = |v: &[&str]| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    // (shown, printed, any_order, matches)
    let rows: &[(&[&str], &str, bool, bool)] = &[
        (&["a", "b"], "a\nb\n", false, true),
        (&["a", "b"], "a\nb\nc\n", false, false),
        (&["a", "b"], "b\na\n", false, false),
        (&["a", "b"], "b\na\n", true, true),
        (&["a", "b"], "b\na\nc\n", true, false),
        (&["a", "...", "b"], "a\nx\ny\nb\n", false, true),
        (&["a", "...", "b"], "a\nb\n", false, true),
        (&["...", "b"], "a\nb\n", false, true),
        (&["...", "b"], "b\na\n", false, false),
        (&["a", "..."], "a\nb\n", false, true),
        (&["ab..."], "abcdef\n", false, true),
        (&["a...f"], "abcdef\n", false, true),
        (&["a...g"], "abcdef\n", false, false),
        (&["x  "], "x\n", false, true),
        (
            &["2026-12-01T07:54:30.791957Z  INFO started at ws://127.0.0.1:43039/ws"],
            "2027-01-02T00:00:00.000001Z  INFO started at ws://127.0.0.1:5000/ws\n",
            false,
            true,
        ),
        (&["2026-12-01T07:54:30Z  INFO x"], "2026-12-01T07:54:30Z  WARN x\n", false, false),
        (
            &["{\"token\":\"04AAAAAGsHmtIADBGoCKGhDElBO4RF0QB0mqXtzNTQRF4GeXfdwXPiK7Zg\",\"expire_at\":1795660498}"],
            "{\"token\":\"04AAAAAGsLmt+ADBGoCKGhDElBO4RF0QB0mqXtzNTQRF4GeXfdwXPiK7ZgAB==\",\"expire_at\":1795660999}\n",
            false,
            true,
        ),
        (&["{\"ts_ms\":1764100000123}"], "{\"ts_ms\":1864100000999}\n", false, true),
        (&["count 1795660498"], "count 42\n", false, false),
        (&[], "", false, true),
        (&["..."], "anything\n", false, true),
    ];
    for (i, (shown, printed, any_order, want)) in rows.iter().enumerate() {
        assert_eq!(
            shows(&s(shown), printed, *any_order, false),
            *want,
            "row {i}: {shown:?} vs {printed:?}"
        );
    }
    // A running command (until-output): the lines so far may be followed by more.
    assert!(shows(&s(&["a"]), "a\nb\n", false, true));
    assert!(!shows(&s(&["a", "c"]), "a\nb\n", false, true));
}
