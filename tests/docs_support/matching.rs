//! How shown output is compared with what a command printed (docs/testing.md):
//! - both sides are normalised first: RFC 3339 timestamps, loopback ports, Token04 strings
//!   and Unix times (seconds or milliseconds) stand for any value of their kind;
//! - a line that is only `...` stands for any number of lines (none included);
//! - inside a line, `...` stands for any text;
//! - every other line must match exactly (trailing spaces ignored);
//! - without a `...` line the output must be exactly the lines shown;
//! - `any-order`: each line shown must match its own printed line, in any order.

use std::sync::OnceLock;

use regex::Regex;

/// Normalises one line of either side.
pub fn normalise(line: &str) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})",
                "<TIME>",
            ),
            (r"\b(127\.0\.0\.1|localhost):\d+", "$1:<PORT>"),
            (r"\b04[A-Za-z0-9+/]{40,}={0,2}", "04<TOKEN>"),
            (r"\b1[6-9]\d{11}\b", "<UNIX_MS>"),
            (r"\b1[6-9]\d{8}\b", "<UNIX_SECS>"),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).unwrap(), to))
        .collect()
    });
    let mut s = line.trim_end().replace('\r', "");
    for (re, to) in rules {
        s = re.replace_all(&s, *to).into_owned();
    }
    s
}

/// One element of the shown output.
enum Pat {
    /// A `...` line.
    Gap,
    /// A line, with in-line `...` as "any text".
    Line(Regex),
}

impl Pat {
    fn matches(&self, line: &str) -> bool {
        match self {
            Pat::Gap => true,
            Pat::Line(re) => re.is_match(line),
        }
    }
}

fn compile(shown: &[String]) -> Vec<Pat> {
    shown
        .iter()
        .map(|l| {
            if l.trim() == "..." {
                return Pat::Gap;
            }
            let parts: Vec<String> = normalise(l).split("...").map(regex::escape).collect();
            Pat::Line(Regex::new(&format!("^{}$", parts.join(".*"))).unwrap())
        })
        .collect()
}

/// Whether `printed` shows the lines `shown`. `open_end` adds a `...` after the last shown
/// line (a command still running: more may come).
pub fn shows(shown: &[String], printed: &str, any_order: bool, open_end: bool) -> bool {
    let mut pats = compile(shown);
    if open_end {
        pats.push(Pat::Gap);
    }
    let lines: Vec<String> = printed.lines().map(normalise).collect();
    // A final empty line of the printed text is not a line (`lines()` already drops it).
    if any_order {
        return unordered(&pats, &lines);
    }
    ordered(&pats, &lines)
}

/// Line-wise glob match: Gap matches any run of lines.
fn ordered(pats: &[Pat], lines: &[String]) -> bool {
    // can[j]: the patterns so far match lines[..j] exactly.
    let mut can = vec![false; lines.len() + 1];
    can[0] = true;
    for p in pats {
        let mut next = vec![false; lines.len() + 1];
        for j in 0..=lines.len() {
            if !can[j] {
                continue;
            }
            match p {
                Pat::Gap => next[j..].iter_mut().for_each(|c| *c = true),
                Pat::Line(_) => {
                    if j < lines.len() && p.matches(&lines[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        can = next;
    }
    can[lines.len()]
}

/// Each line pattern takes its own printed line; without a gap the counts must agree.
fn unordered(pats: &[Pat], lines: &[String]) -> bool {
    let gap = pats.iter().any(|p| matches!(p, Pat::Gap));
    let wanted: Vec<&Pat> = pats.iter().filter(|p| matches!(p, Pat::Line(_))).collect();
    if !gap && wanted.len() != lines.len() {
        return false;
    }
    let mut used = vec![false; lines.len()];
    wanted.iter().all(|p| {
        let hit = (0..lines.len()).find(|&j| !used[j] && p.matches(&lines[j]));
        hit.map(|j| used[j] = true).is_some()
    })
}
