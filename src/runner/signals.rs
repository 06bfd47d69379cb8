//! The signals a run handles instead of ending: SIGINT and SIGTERM shut down, SIGHUP
//! reloads bots/ and the config.

use tokio::signal::unix::{signal, Signal as Stream, SignalKind};

/// Which signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): shut down.
    Interrupt,
    /// SIGTERM: shut down.
    Terminate,
    /// SIGHUP: reload.
    Hangup,
}

impl Signal {
    /// Its name, as log lines say it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught from the moment they are listened to.
pub struct Signals {
    interrupt: Stream,
    terminate: Stream,
    hangup: Stream,
}

impl Signals {
    /// Starts catching them (call inside the actix system).
    pub fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next one.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
            _ = self.hangup.recv() => Signal::Hangup,
        }
    }
}
