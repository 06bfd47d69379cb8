//! A run from start to exit, inside the actix system: open what can fail, start the backend,
//! the fleet, the log followers and the admin face, add the accounts; then reload on SIGHUP
//! or `POST /reload`, until SIGINT or SIGTERM shuts everything down within the deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::admin::reload::{ReloadDesk, ReloadRequest};
use crate::admin::{AdminServer, AdminState};
use crate::client::{Fleet, ShutdownReport};
use crate::config::ConfigError;
use crate::runner::events::{self, EventsFile};
use crate::runner::reread::Rereader;
use crate::runner::running::Running;
use crate::runner::signals::{Signal, Signals};
use crate::runner::{embedded, event_log, settings, Prepared, RunError, EXIT_INTERRUPTED};
use crate::token::TokenProvider;

/// Open files a run needs besides its sockets (logs, events file, listeners, runtime).
const SPARE_FILES: u64 = 64;
/// How long the followers and the events file may take to finish after the shutdown.
const FOLLOWERS_DEADLINE: Duration = Duration::from_secs(2);

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

    async fn start(settings: &settings::RunSettings) -> Result<Backend, RunError> {
        if settings.backend.url.is_empty() {
            let server = embedded::EmbeddedBackend::start(settings).await?;
            tracing::info!("embedded reference server started at {}", server.ws_url);
            Ok(Backend::Embedded(server))
        } else {
            tracing::info!("using the backend at {}", settings.backend.url);
            Ok(Backend::External(settings.backend.url.clone()))
        }
    }

    fn tokens(&self) -> Option<Arc<dyn TokenProvider>> {
        match self {
            Backend::Embedded(server) => Some(Arc::new(server.tokens.clone())),
            Backend::External(_) => None,
        }
    }
}

/// The tasks that follow the fleet's events: the log lines and the events file.
struct Followers {
    stop: watch::Sender<bool>,
    log_task: actix_rt::task::JoinHandle<()>,
    events_task: Option<actix_rt::task::JoinHandle<()>>,
    events_writer: Option<EventsFile>,
}

impl Followers {
    /// Subscribes before the first account exists, so no event is missed.
    fn start(fleet: &Fleet, events_writer: Option<EventsFile>) -> Followers {
        let (stop, stopped) = watch::channel(false);
        let events_task = events_writer
            .as_ref()
            .map(|writer| actix_rt::spawn(writer.forward(fleet.subscribe(), stopped.clone())));
        let log_task = actix_rt::spawn(events::follow_events(
            fleet.subscribe(),
            stopped,
            |event| {
                event_log::log_event(&event);
                true
            },
            |n| {
                tracing::warn!(
                    lost = n,
                    "log: {n} events were not logged (too many at once)"
                )
            },
        ));
        Followers {
            stop,
            log_task,
            events_task,
            events_writer,
        }
    }

    /// They take the last events of the shutdown, then end; the events file is closed.
    async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(FOLLOWERS_DEADLINE, self.log_task).await;
        if let Some(task) = self.events_task {
            let _ = tokio::time::timeout(FOLLOWERS_DEADLINE, task).await;
        }
        if let Some(writer) = self.events_writer {
            let finished =
                tokio::task::spawn_blocking(move || writer.finish(FOLLOWERS_DEADLINE)).await;
            if let Ok(counters) = finished {
                tracing::info!(
                    "events file closed: {} written, {} lost",
                    counters.written.load(Ordering::Relaxed),
                    counters.lost.load(Ordering::Relaxed)
                );
            }
        }
        tracing::debug!("followers and events file done");
    }
}

/// Starts the admin face when `admin.listen` is set.
fn start_admin(
    settings: &settings::RunSettings,
    fleet: &Fleet,
    started: Instant,
    followers: &Followers,
    reload: &ReloadDesk,
    feed: &Arc<crate::admin::Feed>,
) -> Result<Option<AdminServer>, RunError> {
    let listen = settings
        .admin_listen()
        .map_err(|detail| ConfigError::Invalid {
            source_name: settings::DEFAULTS_NAME.into(),
            detail,
        })?;
    let Some(addr) = listen else {
        return Ok(None);
    };
    let events_file_lost = followers.events_writer.as_ref().map(|w| {
        let counters = Arc::clone(&w.counters);
        Box::new(move || counters.lost.load(Ordering::Relaxed)) as crate::admin::CounterFn
    });
    let state = AdminState {
        fleet: fleet.clone(),
        started,
        events_file_lost,
        stream_lost: Arc::new(AtomicU64::new(0)),
        feed: Arc::clone(feed),
        token: settings.admin.token.clone(),
        reload: Some(reload.clone()),
    };
    let server = AdminServer::start(addr, state)?;
    tracing::info!("admin face listening on http://{}", server.addr);
    Ok(Some(server))
}

/// Raises the open-file limit as far as allowed and says clearly when it is still too low:
/// each account holds a socket, and a second one on the embedded server's side.
fn check_open_files(accounts: u64, embedded: bool) {
    let needed = accounts * if embedded { 2 } else { 1 } + SPARE_FILES;
    match rlimit::increase_nofile_limit(needed.max(1024)) {
        Ok(limit) if limit < needed => tracing::warn!(
            "open-file limit {limit} is below the {needed} this run needs ({accounts} accounts{}); \
             raise `ulimit -n` or split the bots over several processes (`--shard i/n`)",
            if embedded { ", 2 sockets each with the embedded server" } else { "" }
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
}

/// The run itself, inside the actix system: start, serve reloads, shut down on a signal.
pub async fn run(prepared: Prepared) -> Result<(), RunError> {
    let started = Instant::now();
    // Listen for signals from the start: a Ctrl-C while starting also shuts down cleanly.
    let mut signals = Signals::listen().map_err(|e| RunError::Signals(e.to_string()))?;
    let settings = prepared.settings.clone();
    // Open what can fail before anything connects.
    let events_writer = match &prepared.events_file {
        Some(path) => Some(EventsFile::create(path, settings.run.events_queue)?),
        None => None,
    };
    let backend = Backend::start(&settings).await?;
    let mut fleet_config = settings.fleet_config(backend.ws_url().to_string());
    fleet_config.trust = prepared.trust.clone();
    let fleet = Fleet::start(fleet_config);
    let followers = Followers::start(&fleet, events_writer);
    let (desk, requests) = ReloadDesk::new();
    // The messages the accounts receive, for the admin face (bounded).
    let feed = Arc::new(crate::admin::Feed::default());
    let admin = start_admin(&settings, &fleet, started, &followers, &desk, &feed)?;

    let accounts: u64 = prepared.bots.iter().map(|b| b.accounts.len() as u64).sum();
    check_open_files(accounts, matches!(backend, Backend::Embedded(_)));
    let tap = admin.as_ref().map(|_| feed);
    let mut running =
        Running::new(fleet.clone(), backend.tokens(), tap).with_trust(prepared.trust.clone());
    let bots = prepared.bots.len();
    let accounts = running.start_all(prepared.bots.clone())?;
    let shard = match prepared.shard.count {
        0 | 1 => String::new(),
        _ => format!(" (shard {})", prepared.shard),
    };
    tracing::info!(
        "zimfleet run: {bots} bot(s), {accounts} account(s){shard}; SIGINT or SIGTERM to stop"
    );

    let rereader = Rereader::new(&prepared, matches!(backend, Backend::Embedded(_)));
    let signal = serve(&mut signals, requests, &mut running, &rereader, &desk).await;
    shut_down(signal, signals, &prepared, &fleet, running.accounts()).await;
    if let Some(admin) = admin {
        admin.stop().await;
        tracing::debug!("admin face stopped");
    }
    followers.finish().await;
    if let Backend::Embedded(server) = backend {
        server.stop().await;
        tracing::debug!("embedded server stopped");
    }
    Ok(())
}

/// Reloads on SIGHUP and on admin requests until SIGINT or SIGTERM; returns that signal.
async fn serve(
    signals: &mut Signals,
    mut requests: mpsc::Receiver<ReloadRequest>,
    running: &mut Running,
    rereader: &Rereader,
    desk: &ReloadDesk,
) -> Signal {
    loop {
        let (trigger, reply) = tokio::select! {
            signal = signals.next() => match signal {
                Signal::Hangup => ("SIGHUP", None),
                other => return other,
            },
            Some(reply) = requests.recv() => ("admin", Some(reply)),
        };
        let result = rereader.reload(running, trigger).await;
        desk.record(&result);
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}

/// Leaves rooms and logs every account out within the deadline; a second signal exits.
async fn shut_down(
    signal: Signal,
    mut signals: Signals,
    prepared: &Prepared,
    fleet: &Fleet,
    accounts: usize,
) {
    let deadline = prepared.settings.run.shutdown_deadline.0;
    tracing::info!(
        "{}: leaving rooms and logging out {accounts} account(s) (deadline {})",
        signal.name(),
        humantime::format_duration(deadline)
    );
    // A second signal ends the process at once (a SIGHUP now is ignored).
    actix_rt::spawn(async move {
        let second = loop {
            match signals.next().await {
                Signal::Hangup => continue,
                other => break other,
            }
        };
        eprintln!("zimfleet run: second {}: exiting now", second.name());
        std::process::exit(EXIT_INTERRUPTED.into());
    });
    prepared.quiet.turn_on();
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
}
