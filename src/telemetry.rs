//! Tracing set-up shared by every subcommand: human lines by default, JSON lines on request.
//! The filter comes from `RUST_LOG` (default `info`). Human lines are coloured only when
//! standard error is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>), so
//! files and pipes get plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; later calls are ignored (tests call it many times).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let _ = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Whether log lines carry ANSI colour codes: only on a terminal, and never when the
/// `NO_COLOR` variable is set to a non-empty value.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::use_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        // (terminal, NO_COLOR, colour)
        let rows: [(bool, Option<&str>, bool); 6] = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("0"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, want) in rows {
            assert_eq!(
                use_colour(terminal, no_color.map(OsStr::new)),
                want,
                "terminal={terminal} NO_COLOR={no_color:?}"
            );
        }
    }
}
