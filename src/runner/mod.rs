//! `zimfleet run`: the bots of bots/*.toml on a fleet, on an embedded reference server unless
//! `backend.url` is set; readable logs, an optional events file and admin face; SIGINT or
//! SIGTERM leaves rooms and logs every account out within the deadline, then exits 0.
//!
//! Everything that can be refused (settings, bot files, the events file, the admin address)
//! is checked before anything connects, and refused with exit code 2.

pub mod bots;
pub mod chat_log;
pub mod embedded;
pub mod events;
pub mod settings;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::admin::{AdminError, AdminServer, AdminState};
use crate::client::{AccountSpec, ClientError, Event, EventKind, Fleet, ShutdownReport};
use crate::config::ConfigError;
use crate::loadtest::shard::Shard;
use crate::protocol::Secret;
use crate::telemetry::LogFormat;
use crate::token::provider::{GeneratedToken, HttpTokenProvider, StaticToken};
use crate::token::TokenProvider;

use bots::{BotDef, BotsError, TokenPlan};
use events::{EventsFile, EventsFileError};
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
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bots(#[from] BotsError),
    #[error(transparent)]
    EventsFile(#[from] EventsFileError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("embedded server: {0}")]
    Embedded(String),
    #[error("cannot listen for SIGINT/SIGTERM: {0}")]
    Signals(String),
    #[error("{file}: account {user_id}: {source}")]
    Account {
        file: PathBuf,
        user_id: String,
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
    pub settings: RunSettings,
    pub bots: Vec<BotDef>,
    pub events_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// Turned on when the shutdown starts: the bots stop posting.
    pub quiet: crate::bot::pacer::Quiet,
    /// The slice of the accounts this process runs (`--shard`; 0/1 = all).
    pub shard: Shard,
}

/// Reads and checks settings and bot files.
pub fn prepare(args: &RunArgs) -> Result<Prepared, RunError> {
    let settings = settings::load(args.config.as_deref(), None)?;
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

/// The run itself, inside the actix system: start, wait for a signal, shut down.
pub async fn run(prepared: Prepared) -> Result<(), RunError> {
    let Prepared {
        settings,
        bots,
        events_file,
        quiet,
        ..
    } = prepared;
    let started = Instant::now();
    // Listen for signals from the start: a Ctrl-C while starting also shuts down cleanly.
    let mut signals = Signals::listen().map_err(|e| RunError::Signals(e.to_string()))?;

    // Open what can fail before anything connects.
    let events_writer = match &events_file {
        Some(path) => Some(EventsFile::create(path, settings.run.events_queue)?),
        None => None,
    };
    let backend = if settings.backend.url.is_empty() {
        let server = embedded::EmbeddedBackend::start(&settings).await?;
        tracing::info!("embedded reference server started at {}", server.ws_url);
        Backend::Embedded(server)
    } else {
        tracing::info!("using the backend at {}", settings.backend.url);
        Backend::External(settings.backend.url.clone())
    };

    let fleet = Fleet::start(settings.fleet_config(backend.ws_url().to_string()));
    // Subscribe before the first account exists, so no event is missed.
    let (stop_followers, followers_stop) = tokio::sync::watch::channel(false);
    let events_task = events_writer
        .as_ref()
        .map(|writer| actix_rt::spawn(writer.forward(fleet.subscribe(), followers_stop.clone())));
    let log_task = actix_rt::spawn(events::follow_events(
        fleet.subscribe(),
        followers_stop,
        |event| {
            log_event(&event);
            true
        },
        |n| {
            tracing::warn!(
                lost = n,
                "log: {n} events were not logged (too many at once)"
            )
        },
    ));

    // The messages the accounts receive, for the admin face (bounded).
    let feed = Arc::new(crate::admin::Feed::default());
    let admin = match settings
        .admin_listen()
        .map_err(|detail| ConfigError::Invalid {
            source_name: settings::DEFAULTS_NAME.into(),
            detail,
        })? {
        Some(addr) => {
            let events_file_lost = events_writer.as_ref().map(|w| {
                let counters = Arc::clone(&w.counters);
                Box::new(move || counters.lost.load(std::sync::atomic::Ordering::Relaxed))
                    as crate::admin::CounterFn
            });
            let server = AdminServer::start(
                addr,
                AdminState {
                    fleet: fleet.clone(),
                    started,
                    events_file_lost,
                    stream_lost: Arc::new(AtomicU64::new(0)),
                    feed: Arc::clone(&feed),
                    token: settings.admin.token.clone(),
                },
            )?;
            tracing::info!("admin face listening on http://{}", server.addr);
            Some(server)
        }
        None => None,
    };

    check_open_files(&bots, matches!(backend, Backend::Embedded(_)));
    let tap = admin.as_ref().map(|_| &feed);
    let accounts = add_accounts(&fleet, &bots, &backend, tap)?;
    tracing::info!(
        "zimfleet run: {} bot(s), {} account(s); SIGINT or SIGTERM to stop",
        bots.len(),
        accounts
    );

    let deadline = settings.run.shutdown_deadline.0;
    let signal = signals.next().await;
    tracing::info!(
        "{signal}: leaving rooms and logging out {accounts} account(s) (deadline {})",
        humantime::format_duration(deadline)
    );
    // A second signal ends the process at once.
    actix_rt::spawn(async move {
        let second = signals.next().await;
        eprintln!("zimfleet run: second {second}: exiting now");
        std::process::exit(EXIT_INTERRUPTED.into());
    });
    quiet.turn_on();
    let shutdown_started = Instant::now();
    let report = tokio::time::timeout(
        deadline + Duration::from_millis(500),
        fleet.shutdown(deadline),
    )
    .await
    .unwrap_or(ShutdownReport {
        logged_out: 0,
        timed_out: accounts,
    });
    tracing::info!(
        "shutdown: {} logged out, {} timed out, in {} ms",
        report.logged_out,
        report.timed_out,
        shutdown_started.elapsed().as_millis()
    );

    if let Some(admin) = admin {
        admin.stop().await;
        tracing::debug!("admin face stopped");
    }
    // The followers take the last events of the shutdown, then end.
    let _ = stop_followers.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), log_task).await;
    if let Some(task) = events_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    if let Some(writer) = events_writer {
        let finished =
            tokio::task::spawn_blocking(move || writer.finish(Duration::from_secs(2))).await;
        if let Ok(counters) = finished {
            tracing::info!(
                "events file closed: {} written, {} lost",
                counters.written.load(std::sync::atomic::Ordering::Relaxed),
                counters.lost.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    tracing::debug!("followers and events file done");
    if let Backend::Embedded(server) = backend {
        server.stop().await;
        tracing::debug!("embedded server stopped");
    }
    Ok(())
}

/// Open files a run needs besides its sockets (logs, events file, listeners, runtime).
const SPARE_FILES: u64 = 64;

/// Raises the open-file limit as far as allowed and says clearly when it is still too low:
/// each account holds a socket, and a second one on the embedded server's side.
fn check_open_files(bots: &[BotDef], embedded: bool) {
    let accounts: u64 = bots.iter().map(|b| b.accounts.len() as u64).sum();
    let needed = accounts * if embedded { 2 } else { 1 } + SPARE_FILES;
    match rlimit::increase_nofile_limit(needed.max(1024)) {
        Ok(limit) if limit < needed => tracing::warn!(
            "open-file limit {limit} is below the {needed} this run needs ({accounts} accounts{}); \
             raise `ulimit -n` or split the bots over several processes",
            if embedded { ", 2 sockets each with the embedded server" } else { "" }
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
}

/// Where the fleet connects.
enum Backend {
    Embedded(embedded::EmbeddedBackend),
    External(String),
}

impl Backend {
    fn ws_url(&self) -> &str {
        match self {
            Backend::Embedded(server) => &server.ws_url,
            Backend::External(url) => url,
        }
    }
}

/// Adds every account of every bot; returns how many. With `feed`, the messages they receive
/// also go to the admin face.
fn add_accounts(
    fleet: &Fleet,
    bots: &[BotDef],
    backend: &Backend,
    feed: Option<&Arc<crate::admin::Feed>>,
) -> Result<usize, RunError> {
    let seen = Arc::new(chat_log::SeenMessages::default());
    let embedded_tokens: Option<Arc<dyn TokenProvider>> = match backend {
        Backend::Embedded(server) => Some(Arc::new(server.tokens.clone())),
        Backend::External(_) => None,
    };
    let mut count = 0;
    for bot in bots {
        let inner = match feed {
            Some(feed) => feed.tap(Arc::clone(&bot.bot)),
            None => Arc::clone(&bot.bot),
        };
        let handler: Arc<dyn crate::bot::Bot> = Arc::new(chat_log::Logged {
            inner,
            seen: Arc::clone(&seen),
        });
        for account in &bot.accounts {
            let token = provider(&account.token, embedded_tokens.as_ref()).map_err(|detail| {
                RunError::Bots(BotsError::Invalid {
                    file: bot.file.clone(),
                    detail: format!("account {}: {detail}", account.user_id),
                })
            })?;
            let spec = AccountSpec {
                user_id: account.user_id.clone(),
                user_name: account.user_name.clone(),
                device_id: account.device_id.clone(),
                token,
                rooms: bot.rooms.clone(),
            };
            fleet
                .add_account(spec, Arc::clone(&handler))
                .map_err(|source| RunError::Account {
                    file: bot.file.clone(),
                    user_id: account.user_id.clone(),
                    source,
                })?;
            let rooms: Vec<&str> = bot.rooms.iter().map(|r| r.room_id.as_str()).collect();
            tracing::info!(
                "bot {} ({}): account {} starts, rooms [{}]",
                bot.name,
                bot.behaviour,
                account.user_id,
                rooms.join(", ")
            );
            count += 1;
        }
    }
    Ok(count)
}

/// The token provider of one account.
fn provider(
    plan: &TokenPlan,
    embedded: Option<&Arc<dyn TokenProvider>>,
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

/// SIGINT and SIGTERM, caught instead of ending the process.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next one; says which.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// One readable log line per state change.
fn log_event(event: &Event) {
    let account = &event.account;
    match &event.kind {
        EventKind::Connection { state, event, ext } => {
            tracing::info!("{account}: connection {state} by {event}{}", ext_text(ext))
        }
        EventKind::Room {
            room_id,
            state,
            event,
            ext,
        } => {
            tracing::info!(
                "{account}: room {room_id} {state} by {event}{}",
                ext_text(ext)
            )
        }
        EventKind::TokenWillExpire { remaining_secs } => {
            tracing::info!("{account}: token expires in {remaining_secs} s; renewing")
        }
        EventKind::TokenRenewed { expire_at } => {
            tracing::info!("{account}: token renewed (expires at {expire_at})")
        }
        EventKind::TokenRenewFailed { error } => {
            tracing::warn!("{account}: token renewal failed: {error}")
        }
        EventKind::RoomGaveUp { room_id, reason } => {
            tracing::warn!("{account}: room {room_id} gave up recovering: {reason}")
        }
    }
}

/// Extended data worth showing (empty objects are left out).
fn ext_text(ext: &serde_json::Value) -> String {
    match ext {
        serde_json::Value::Object(map) if !map.is_empty() => format!(" {ext}"),
        serde_json::Value::Null | serde_json::Value::Object(_) => String::new(),
        other => format!(" {other}"),
    }
}
