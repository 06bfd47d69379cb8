//! `zimfleet server`: load settings, start, print the address, stop on SIGINT/SIGTERM.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::telemetry::LogFormat;

use super::ServerSettings;

/// Arguments of `zimfleet server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Settings file (TOML, section `[server]`); defaults come from config/server.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the settings (e.g. 127.0.0.1:0 for a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// Runs `zimfleet server` until SIGINT or SIGTERM; exit code 2 for bad settings (a TLS file
/// that cannot be used included: the message names the key and the file).
pub fn main(args: ServerArgs) -> ExitCode {
    crate::telemetry::init(args.log_format);
    let mut settings = match ServerSettings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zimfleet server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    // Read before anything listens, so a bad file is a settings error (exit 2).
    let tls = match &settings.tls {
        Some(files) => match files.load() {
            Ok(config) => Some((config, files.handshake_timeout())),
            Err(e) => {
                eprintln!("zimfleet server: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    warn_about(&settings);
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        // Handlers first: a signal sent as soon as the address is printed must not kill the
        // process with the default action.
        let signals = Signals::install()?;
        let handle = super::start_with(settings, tls).await?;
        // One line on stdout that scripts and tests read.
        println!(
            "zimfleet server listening on {}{}",
            handle.local_addr(),
            if handle.is_tls() { " (TLS)" } else { "" }
        );
        signals.wait().await;
        tracing::info!("signal received: stopping");
        handle.stop().await;
        Ok::<(), std::io::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zimfleet server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Start-up warnings about settings that work but are probably not meant (no secret printed).
fn warn_about(settings: &ServerSettings) {
    if settings.server_secret == ServerSettings::defaults().server_secret {
        tracing::warn!(
            "server.server_secret is the shipped development secret: anyone can mint tokens; set your own"
        );
    }
    if settings.admin_token.is_some() && !settings.listen.ip().is_loopback() {
        tracing::warn!(listen = %settings.listen, "the admin API is reachable beyond loopback");
    }
    // Each session is one open file: say what the limit allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(
            open_file_limit = limit,
            "at most about {} sessions fit under the open-file limit",
            limit.saturating_sub(64)
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let Self {
                mut interrupt,
                mut terminate,
            } = self;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
