//! `zimfleet run`: the bots of bots/*.toml on a fleet, on an embedded reference server unless
//! `backend.url` is set; readable logs, an optional events file and admin face; SIGINT or
//! SIGTERM leaves rooms and logs every account out within the deadline, then exits 0.
//!
//! Everything that can be refused (settings, bot files, the events file, the admin address)
//! is checked before anything connects, and refused with exit code 2.

pub mod bots;
pub mod chat_log;
pub mod embedded;
pub mod event_log;
pub mod events;
pub mod lifecycle;
pub mod reload;
pub mod reread;
pub mod running;
pub mod settings;
pub mod signals;
pub mod swappable;

pub use lifecycle::run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::admin::AdminError;
use crate::client::ClientError;
use crate::config::ConfigError;
use crate::loadtest::shard::Shard;
use crate::protocol::Secret;
use crate::telemetry::LogFormat;
use crate::token::provider::{GeneratedToken, HttpTokenProvider, StaticToken};
use crate::token::TokenProvider;

use bots::{BotDef, BotsError, TokenPlan};
use events::EventsFileError;
use settings::RunSettings;

/// Exit code of a run refused at start (bad settings, bot files, paths, addresses).
pub const EXIT_REFUSED: u8 = 2;
/// Exit code when a second signal cuts the shutdown short.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Arguments of `zimfleet run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Settings file layered over config/default.toml (environment ZIMFLEET__SECTION__KEY
    /// overrides both).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of bot definitions (default: run.bots_dir, "bots").
    #[arg(long, value_name = "DIR")]
    pub bots: Option<PathBuf>,
    /// Write every event as one JSON line to FILE.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Log lines: human (default) or json.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Run one slice of the accounts: i/n (0-based), by the load tester's stable hash of the
    /// user id, so n processes with the same bots/ run each account exactly once.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<Shard>,
}

/// Why a run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings were refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bot file was refused.
    #[error(transparent)]
    Bots(#[from] BotsError),
    /// The events file cannot be written.
    #[error(transparent)]
    EventsFile(#[from] EventsFileError),
    /// The admin face cannot listen.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The embedded server cannot start.
    #[error("embedded server: {0}")]
    Embedded(String),
    /// The signals cannot be caught.
    #[error("cannot listen for SIGINT/SIGTERM/SIGHUP: {0}")]
    Signals(String),
    /// The fleet refused an account.
    #[error("{file}: account {user_id}: {source}")]
    Account {
        /// The bot file.
        file: PathBuf,
        /// The account.
        user_id: String,
        /// Why.
        #[source]
        source: ClientError,
    },
}

impl RunError {
    /// 2 for what the user can fix in settings, files or addresses; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_)
            | RunError::Bots(_)
            | RunError::EventsFile(_)
            | RunError::Admin(_)
            | RunError::Embedded(_) => EXIT_REFUSED,
            RunError::Account { .. } | RunError::Signals(_) => 1,
        }
    }
}

/// Everything checked and read before the actix system starts.
pub struct Prepared {
    /// The settings, checked.
    pub settings: RunSettings,
    /// The bots of this shard.
    pub bots: Vec<BotDef>,
    /// `--events FILE` or `run.events_file`.
    pub events_file: Option<PathBuf>,
    /// How log lines look.
    pub log_format: LogFormat,
    /// Turned on when the shutdown starts: the bots stop posting.
    pub quiet: crate::bot::pacer::Quiet,
    /// The slice of the accounts this process runs (`--shard`; 0/1 = all).
    pub shard: Shard,
    /// `--config FILE`, read again by a reload.
    pub config_file: Option<PathBuf>,
    /// `--bots DIR`, read again by a reload (else `run.bots_dir`).
    pub bots_arg: Option<PathBuf>,
    /// The public roots and `backend.ca_file`, read once (a reload keeps it).
    pub trust: crate::tls::ClientTrust,
}

/// Reads and checks settings and bot files.
pub fn prepare(args: &RunArgs) -> Result<Prepared, RunError> {
    let settings = settings::load(args.config.as_deref(), None)?;
    let trust = settings.client_trust()?;
    let bots_dir = args
        .bots
        .clone()
        .unwrap_or_else(|| settings.run.bots_dir.clone());
    let embedded = settings.backend.url.is_empty();
    let quiet = crate::bot::pacer::Quiet::default();
    let bots = bots::load_dir(&bots_dir, embedded, &|var| std::env::var(var).ok(), &quiet)?;
    let bots = bots::select_shard(bots, args.shard.unwrap_or_default());
    let events_file = args.events.clone().or_else(|| {
        Some(PathBuf::from(&settings.run.events_file)).filter(|p| !p.as_os_str().is_empty())
    });
    let log_format = args.log_format.unwrap_or(settings.run.log_format);
    Ok(Prepared {
        settings,
        bots,
        events_file,
        log_format,
        quiet,
        shard: args.shard.unwrap_or_default(),
        config_file: args.config.clone(),
        bots_arg: args.bots.clone(),
        trust,
    })
}

/// `zimfleet run`.
pub fn main(args: RunArgs) -> ExitCode {
    let prepared = match prepare(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zimfleet run: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    // The runner writes one readable line per event; the fleet's own JSON line per event
    // (target zimfleet::event) would say it twice; actix_server's worker lines are noise
    // here. RUST_LOG, when set, decides.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "info,zimfleet::event=warn,actix_server=warn");
    }
    crate::telemetry::init(prepared.log_format);
    let system = actix_rt::System::new();
    match system.block_on(run(prepared)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zimfleet run: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The token provider of one account.
fn provider(
    plan: &TokenPlan,
    embedded: Option<&Arc<dyn TokenProvider>>,
    trust: &crate::tls::ClientTrust,
) -> Result<Arc<dyn TokenProvider>, String> {
    Ok(match plan {
        TokenPlan::Embedded => {
            Arc::clone(embedded.ok_or("the embedded token source needs the embedded backend")?)
        }
        TokenPlan::Static(token) => Arc::new(StaticToken(token.clone())),
        TokenPlan::Generated {
            app_id,
            secret,
            lifetime,
        } => Arc::new(
            GeneratedToken::new(*app_id, secret.clone(), lifetime.as_secs())
                .map_err(|e| e.to_string())?,
        ),
        TokenPlan::Http { url, bearer } => Arc::new(HttpTokenProvider {
            bearer: bearer.clone(),
            trust: trust.clone(),
            ..HttpTokenProvider::new(url.clone())
        }),
    })
}

/// A fresh random secret of `len` letters and digits.
pub fn random_secret(len: usize) -> Secret {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    Secret::new(
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect::<String>(),
    )
}
