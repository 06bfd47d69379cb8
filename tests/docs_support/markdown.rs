//! Reads a markdown file into what the docs test checks: ```console blocks (with the
//! `<!-- docs-test: ... -->` directives right before them) and flag tables (a table right
//! after `<!-- flags: zimfleet SUBCOMMAND -->`). The conventions are in docs/testing.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a block's commands run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cwd {
    /// A fresh directory that looks like the checkout: every top-level entry of the
    /// repository (but `target/` and `.git`) linked into it. The default.
    Checkout,
    /// A fresh empty directory (`cwd=empty`).
    Empty,
    /// The repository itself (`cwd=repo`).
    Repo,
}

/// The directives of one block.
#[derive(Debug, Clone, PartialEq)]
pub struct Directives {
    /// `server`: a reference server runs for the block; `127.0.0.1:9120` means it.
    pub server: bool,
    /// `runner`: `zimfleet run` with its admin face runs for the block; `127.0.0.1:7480`
    /// means that face.
    pub runner: bool,
    /// `until-output`: a command passes once the lines shown appeared; then it is stopped.
    pub until_output: bool,
    /// `any-order`: the lines shown may appear in any order.
    pub any_order: bool,
    /// `timeout=DURATION`: each command's deadline (default 20 s).
    pub timeout: Duration,
    /// `cwd=checkout|empty|repo`.
    pub cwd: Cwd,
    /// `exit=N`: the exit code of every zimfleet/curl command of the block.
    pub exit: Option<i32>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            server: false,
            runner: false,
            until_output: false,
            any_order: false,
            timeout: Duration::from_secs(20),
            cwd: Cwd::Checkout,
            exit: None,
        }
    }
}

/// One `$ ` command of a console block and the lines shown after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// Line of the `$ ` in the file (1-based).
    pub line: usize,
    /// The command without `$ ` (continuation lines joined with their backslashes).
    pub command: String,
    /// The output lines shown after it.
    pub output: Vec<String>,
}

/// A ```console block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The markdown file.
    pub file: PathBuf,
    /// Line of the opening fence (1-based).
    pub line: usize,
    /// Its directives.
    pub directives: Directives,
    /// Its commands.
    pub commands: Vec<Shown>,
}

/// A flag table: the flags of its first column.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagTable {
    /// The markdown file.
    pub file: PathBuf,
    /// Line of the `<!-- flags: ... -->` comment (1-based).
    pub line: usize,
    /// The subcommand words after `zimfleet`, e.g. `["loadtest", "merge"]`.
    pub subcommand: Vec<String>,
    /// Every flag found in backticks in the first column (`--accounts`, `-q`).
    pub flags: Vec<String>,
}

/// What one markdown file holds for the docs test.
#[derive(Debug, Default)]
pub struct Doc {
    /// Its console blocks.
    pub blocks: Vec<Block>,
    /// Its flag tables.
    pub tables: Vec<FlagTable>,
}

/// Parses one directive comment's words into `d`.
pub fn parse_directives(words: &str, d: &mut Directives) -> Result<(), String> {
    for word in words.split_whitespace() {
        match word.split_once('=') {
            None => match word {
                "server" => d.server = true,
                "runner" => d.runner = true,
                "until-output" => d.until_output = true,
                "any-order" => d.any_order = true,
                _ => return Err(format!("unknown docs-test directive `{word}`")),
            },
            Some(("timeout", v)) => {
                d.timeout = humantime::parse_duration(v)
                    .map_err(|e| format!("docs-test directive `{word}`: {e}"))?
            }
            Some(("cwd", v)) => {
                d.cwd = match v {
                    "checkout" => Cwd::Checkout,
                    "empty" => Cwd::Empty,
                    "repo" => Cwd::Repo,
                    _ => {
                        return Err(format!(
                            "docs-test directive `{word}`: checkout, empty or repo"
                        ))
                    }
                }
            }
            Some(("exit", v)) => {
                d.exit = Some(
                    v.parse()
                        .map_err(|_| format!("docs-test directive `{word}`: not an exit code"))?,
                )
            }
            Some(_) => return Err(format!("unknown docs-test directive `{word}`")),
        }
    }
    Ok(())
}

/// The words of an HTML comment `<!-- PREFIX ... -->` on one line, if it is one.
fn comment<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    inner.strip_prefix(prefix).map(str::trim)
}

/// Splits a console block's lines into commands and their shown output.
fn commands(lines: &[(usize, &str)]) -> Result<Vec<Shown>, String> {
    let mut out: Vec<Shown> = Vec::new();
    let mut continued = false;
    for &(n, text) in lines {
        if continued {
            let last = out.last_mut().unwrap();
            last.command.push('\n');
            last.command.push_str(text);
            continued = text.ends_with('\\');
        } else if let Some(cmd) = text.strip_prefix("$ ") {
            out.push(Shown {
                line: n,
                command: cmd.to_string(),
                output: Vec::new(),
            });
            continued = cmd.ends_with('\\');
        } else if let Some(last) = out.last_mut() {
            last.output.push(text.to_string());
        } else {
            return Err(format!(
                "line {n}: a console block starts with a `$ ` command, not {text:?}"
            ));
        }
    }
    Ok(out)
}

/// The flags named in backticks in a table row's first cell.
fn row_flags(row: &str) -> Vec<String> {
    let first = row
        .trim()
        .trim_start_matches('|')
        .split('|')
        .next()
        .unwrap_or("");
    first
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split([' ', ',', '=']))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .map(str::to_string)
        .collect()
}

/// Parses one markdown file.
pub fn parse(file: &Path, text: &str) -> Result<Doc, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut doc = Doc::default();
    let mut pending: Option<(usize, Directives)> = None;
    let mut i = 0;
    let at = |n: usize, e: String| format!("{}:{n}: {e}", file.display());
    while i < lines.len() {
        let n = i + 1;
        let line = lines[i];
        if let Some(words) = comment(line, "docs-test:") {
            let mut d = pending.take().map(|(_, d)| d).unwrap_or_default();
            parse_directives(words, &mut d).map_err(|e| at(n, e))?;
            pending = Some((n, d));
            i += 1;
            continue;
        }
        if let Some(words) = comment(line, "flags:") {
            let (table, next) = flag_table(file, &lines, i, words).map_err(|e| at(n, e))?;
            doc.tables.push(table);
            i = next;
            continue;
        }
        if let Some(info) = line.trim_start().strip_prefix("```") {
            let close = (i + 1..lines.len())
                .find(|&j| lines[j].trim_start().starts_with("```"))
                .ok_or_else(|| at(n, "unclosed code block".into()))?;
            let console = info.split_whitespace().next() == Some("console");
            match (console, pending.take()) {
                (true, d) => {
                    let body: Vec<(usize, &str)> =
                        (i + 1..close).map(|j| (j + 1, lines[j])).collect();
                    doc.blocks.push(Block {
                        file: file.to_path_buf(),
                        line: n,
                        directives: d.map(|(_, d)| d).unwrap_or_default(),
                        commands: commands(&body).map_err(|e| at(n, e))?,
                    });
                }
                (false, Some((dn, _))) => {
                    return Err(at(
                        dn,
                        "a docs-test directive must come right before a ```console block".into(),
                    ))
                }
                (false, None) => {}
            }
            i = close + 1;
            continue;
        }
        if let Some((dn, _)) = &pending {
            if !line.trim().is_empty() {
                return Err(at(
                    *dn,
                    "a docs-test directive must come right before a ```console block".into(),
                ));
            }
        }
        i += 1;
    }
    if let Some((dn, _)) = pending {
        return Err(at(
            dn,
            "a docs-test directive must come right before a ```console block".into(),
        ));
    }
    Ok(doc)
}

/// Reads the table after the `<!-- flags: ... -->` comment at `i`; returns it and the line
/// index after it.
fn flag_table(
    file: &Path,
    lines: &[&str],
    i: usize,
    words: &str,
) -> Result<(FlagTable, usize), String> {
    let mut words = words.split_whitespace();
    if words.next() != Some("zimfleet") {
        return Err("a flags comment reads `<!-- flags: zimfleet SUBCOMMAND -->`".into());
    }
    let subcommand: Vec<String> = words.map(str::to_string).collect();
    let mut j = i + 1;
    while j < lines.len() && lines[j].trim().is_empty() {
        j += 1;
    }
    let start = j;
    while j < lines.len() && lines[j].trim_start().starts_with('|') {
        j += 1;
    }
    // A header row, the |---| row, then at least one row.
    if j < start + 3 {
        return Err("a flags comment must be followed by a markdown table".into());
    }
    let flags: Vec<String> = lines[start + 2..j]
        .iter()
        .flat_map(|r| row_flags(r))
        .collect();
    if flags.is_empty() {
        return Err("the flag table names no flag in backticks in its first column".into());
    }
    let table = FlagTable {
        file: file.to_path_buf(),
        line: i + 1,
        subcommand,
        flags,
    };
    Ok((table, j))
}
