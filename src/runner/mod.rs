//! `zimfleet run` (being built).
use std::process::ExitCode;

/// Arguments of `zimfleet run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("zimfleet run: not built yet");
    ExitCode::from(2)
}
