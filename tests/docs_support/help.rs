//! The flags a subcommand's `--help` lists, for the flag tables of the docs.

use std::collections::BTreeSet;
use std::process::Command;

use regex::Regex;

/// Every flag of `zimfleet SUBCOMMAND --help` but `--help` and `--version`, long and short.
pub fn help_flags(subcommand: &[String]) -> Result<BTreeSet<String>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_zimfleet"))
        .args(subcommand)
        .arg("--help")
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "`zimfleet {} --help` failed: {}",
            subcommand.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(flags_of(&text))
}

/// The flags of a help text: option lines are indented by at most six spaces and start
/// with `-x, --long` or `--long` (descriptions are indented further).
pub fn flags_of(help: &str) -> BTreeSet<String> {
    let line = Regex::new(r"^ {1,6}(-[A-Za-z0-9])?(?:, )?(--[A-Za-z0-9][A-Za-z0-9-]*)?").unwrap();
    let mut flags = BTreeSet::new();
    for l in help.lines() {
        if let Some(c) = line.captures(l) {
            for m in [c.get(1), c.get(2)].into_iter().flatten() {
                flags.insert(m.as_str().to_string());
            }
        }
    }
    for builtin in ["-h", "--help", "-V", "--version"] {
        flags.remove(builtin);
    }
    flags
}
