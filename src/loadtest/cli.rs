//! `zimfleet loadtest [flags]` and `zimfleet loadtest merge A.json B.json ... [--out M.json]`.
//!
//! Exit codes: 0 the plan passed its thresholds; 1 it ran and missed one (or the backend
//! failed it); 2 it could not run (bad flags or settings, pre-flight refusal, unreadable
//! report).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::plan::{Plan, Spread, TokenSource};
use super::report::Report;
use super::shard::Shard;
use super::{driver, preflight, LoadtestError};
use crate::telemetry::LogFormat;

/// Arguments of `zimfleet loadtest`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    pub command: Option<LoadtestCommand>,
    /// Boxed: the flags are many, and clap's enum of subcommands holds this by value.
    #[command(flatten)]
    pub run: Box<RunFlags>,
}

#[derive(Debug, clap::Subcommand)]
pub enum LoadtestCommand {
    /// Merge shard reports exactly (histograms bucket by bucket) and print the table.
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Shard reports written with --out.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report here (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 500ms, 60s, 2m"))
}

/// Flags of a run; each overrides the key of config/loadtest.toml named in its help.
#[derive(Debug, Default, clap::Args)]
pub struct RunFlags {
    /// Plan file (TOML, keys as in config/loadtest.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Backend WebSocket URL (backend); none = the embedded reference server.
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
    /// Accounts in the whole plan (accounts).
    #[arg(long, value_name = "N")]
    pub accounts: Option<u64>,
    /// New accounts per second (arrival_rate).
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
    /// Hold phase after the ramp (duration), e.g. 60s.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Run one slice of the accounts: i/n (0-based), by a stable hash of the user id.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<Shard>,
    /// User id pattern with {i} (user_pattern).
    #[arg(long, value_name = "PATTERN")]
    pub user_pattern: Option<String>,
    /// Index of the first account (first_index).
    #[arg(long, value_name = "N")]
    pub first_index: Option<u64>,
    /// Fleet admission limit per second: logins, re-logins, room entries (admission_per_sec).
    #[arg(long, value_name = "N")]
    pub admission: Option<u32>,
    /// Threads; 0 = one per core (workers).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Rooms per account (rooms.per_account).
    #[arg(long, value_name = "N")]
    pub rooms_per_account: Option<u32>,
    /// Members per room (rooms.members).
    #[arg(long, value_name = "N")]
    pub room_size: Option<u64>,
    /// How accounts spread over rooms (rooms.spread).
    #[arg(long, value_enum)]
    pub spread: Option<SpreadFlag>,
    /// Messages per second per account (messages.per_account_per_sec).
    #[arg(long, value_name = "RATE")]
    pub msg_rate: Option<f64>,
    /// Message body size in bytes (messages.body_bytes).
    #[arg(long, value_name = "BYTES")]
    pub body_bytes: Option<usize>,
    /// Token source (token.source).
    #[arg(long, value_enum)]
    pub token_source: Option<TokenSourceFlag>,
    /// Token endpoint for --token-source http (token.url).
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// User heartbeat interval (heartbeat.interval).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub heartbeat: Option<Duration>,
    /// Room heartbeat interval (heartbeat.room_interval).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub room_heartbeat: Option<Duration>,
    /// Share of accounts whose link is dropped every --drop-every (chaos.drop_share).
    #[arg(long, value_name = "SHARE")]
    pub drop_share: Option<f64>,
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub drop_every: Option<Duration>,
    /// Share of accounts held offline every --offline-every for --offline-for.
    #[arg(long, value_name = "SHARE")]
    pub offline_share: Option<f64>,
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub offline_every: Option<Duration>,
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub offline_for: Option<Duration>,
    /// Drop every session from the server side this long into the hold (chaos.server_drop_at).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub server_drop_at: Option<Duration>,
    /// Admin API base URL of the backend (chaos.admin_url).
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// No progress line (progress = false).
    #[arg(long)]
    pub quiet: bool,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SpreadFlag {
    Fill,
    // The plan key's spelling works too (rooms.spread = "round_robin").
    #[value(alias = "round_robin")]
    RoundRobin,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TokenSourceFlag {
    Embedded,
    Generated,
    Http,
}

impl RunFlags {
    /// Loads the file and environment layers, then applies the flags and validates.
    pub fn plan(&self) -> Result<Plan, LoadtestError> {
        let mut plan = Plan::load(self.config.as_deref())?;
        self.apply(&mut plan);
        plan.validate()?;
        Ok(plan)
    }

    fn apply(&self, p: &mut Plan) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut p.backend, &self.backend);
        set(&mut p.accounts, &self.accounts);
        set(&mut p.arrival_rate, &self.rate);
        set(&mut p.duration, &self.duration);
        set(&mut p.shard, &self.shard);
        set(&mut p.user_pattern, &self.user_pattern);
        set(&mut p.first_index, &self.first_index);
        set(&mut p.admission_per_sec, &self.admission);
        set(&mut p.workers, &self.workers);
        set(&mut p.rooms.per_account, &self.rooms_per_account);
        set(&mut p.rooms.members, &self.room_size);
        set(&mut p.messages.per_account_per_sec, &self.msg_rate);
        set(&mut p.messages.body_bytes, &self.body_bytes);
        set(&mut p.token.url, &self.token_url);
        set(&mut p.heartbeat.interval, &self.heartbeat);
        set(&mut p.heartbeat.room_interval, &self.room_heartbeat);
        set(&mut p.chaos.drop_share, &self.drop_share);
        set(&mut p.chaos.drop_every, &self.drop_every);
        set(&mut p.chaos.offline_share, &self.offline_share);
        set(&mut p.chaos.offline_every, &self.offline_every);
        set(&mut p.chaos.offline_for, &self.offline_for);
        set(&mut p.chaos.server_drop_at, &self.server_drop_at);
        set(&mut p.chaos.admin_url, &self.admin_url);
        if let Some(s) = self.spread {
            p.rooms.spread = match s {
                SpreadFlag::Fill => Spread::Fill,
                SpreadFlag::RoundRobin => Spread::RoundRobin,
            };
        }
        if let Some(t) = self.token_source {
            p.token.source = match t {
                TokenSourceFlag::Embedded => TokenSource::Embedded,
                TokenSourceFlag::Generated => TokenSource::Generated,
                TokenSourceFlag::Http => TokenSource::Http,
            };
        } else if self.backend.as_deref().is_some_and(|b| !b.is_empty())
            && p.token.source == TokenSource::Embedded
        {
            // `--backend` alone: the embedded source cannot work, tokens come over HTTP from
            // the backend's development token endpoint unless the plan says otherwise.
            p.token.source = TokenSource::Http;
            if p.token.url.is_empty() {
                if let Some(base) = p.admin_base(None) {
                    p.token.url = format!("{base}/admin/tokens");
                }
            }
        }
        if self.quiet {
            p.progress = false;
        }
    }
}

pub fn main(args: LoadtestArgs) -> ExitCode {
    match args.command {
        Some(LoadtestCommand::Merge(m)) => merge_main(m),
        None => run_main(*args.run),
    }
}

fn merge_main(args: MergeArgs) -> ExitCode {
    let mut reports = Vec::with_capacity(args.reports.len());
    for path in &args.reports {
        match Report::read(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("zimfleet loadtest merge: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let merged = match Report::merge_all(reports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("zimfleet loadtest merge: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", merged.table());
    if let Some(out) = &args.out {
        if let Err(e) = merged.write(out) {
            eprintln!("zimfleet loadtest merge: {e}");
            return ExitCode::from(2);
        }
    }
    verdict_code(&merged)
}

fn verdict_code(report: &Report) -> ExitCode {
    if report.verdict.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_main(flags: RunFlags) -> ExitCode {
    // Thousands of accounts: the fleet's per-event lines would drown the progress line and
    // cost CPU. Warnings only, unless RUST_LOG says otherwise.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    crate::telemetry::init(flags.log_format);
    let plan = match flags.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zimfleet loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let accounts_here = plan.shard_indexes().len() as u64;
    if let Err(e) = preflight::run(&plan, accounts_here) {
        eprintln!("zimfleet loadtest: pre-flight refused the plan:\n{e}");
        return ExitCode::from(2);
    }
    let system = actix::System::new();
    let result = system.block_on(driver::run(plan));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zimfleet loadtest: {e}");
            return ExitCode::from(match e {
                LoadtestError::Backend(_) => 1,
                _ => 2,
            });
        }
    };
    print!("{}", report.table());
    if let Some(out) = &flags.out {
        if let Err(e) = report.write(out) {
            eprintln!("zimfleet loadtest: {e}");
            return ExitCode::from(2);
        }
    }
    verdict_code(&report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadtestArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadtestArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn flags_override_the_plan() {
        let a = parse(&[
            "--accounts",
            "12",
            "--rate",
            "50",
            "--duration",
            "1500ms",
            "--shard",
            "1/3",
            "--msg-rate",
            "0.5",
            "--spread",
            "round-robin",
        ])
        .unwrap();
        let plan = a.run.plan().unwrap();
        assert_eq!(plan.accounts, 12);
        assert_eq!(plan.arrival_rate, 50);
        assert_eq!(plan.duration, Duration::from_millis(1500));
        assert_eq!(plan.shard, Shard { index: 1, count: 3 });
        assert_eq!(plan.messages.per_account_per_sec, 0.5);
        assert_eq!(plan.rooms.spread, Spread::RoundRobin);
    }

    #[test]
    fn spread_takes_the_plan_key_spelling_too() {
        for spelling in ["round-robin", "round_robin"] {
            let a = parse(&["--spread", spelling]).unwrap();
            assert_eq!(a.run.plan().unwrap().rooms.spread, Spread::RoundRobin);
        }
        let err = parse(&["--spread", "diagonal"]).err().unwrap().to_string();
        assert!(
            err.starts_with(
                "error: invalid value 'diagonal' for '--spread <SPREAD>'\n  [possible values: fill, round-robin]"
            ),
            "{err}"
        );
    }

    #[test]
    fn backend_alone_fetches_tokens_from_its_admin_endpoint() {
        let a = parse(&["--backend", "ws://10.1.2.3:7400/ws"]).unwrap();
        let plan = a.run.plan().unwrap();
        assert_eq!(plan.token.source, TokenSource::Http);
        assert_eq!(plan.token.url, "http://10.1.2.3:7400/admin/tokens");
    }

    #[test]
    fn bad_flags_are_refused_by_clap() {
        let err = parse(&["--duration", "soon"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("\"soon\" is not a duration"),
            "{err}"
        );
        let err = parse(&["--shard", "2/2"]).unwrap_err();
        assert!(err.to_string().contains("is not a shard"), "{err}");
        assert!(parse(&["merge"]).is_err());
        assert!(parse(&["merge", "a.json", "--accounts", "3"]).is_err());
    }
}
