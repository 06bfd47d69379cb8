//! `zimfleet server`.
use std::process::ExitCode;

/// Arguments of `zimfleet server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {}

pub fn main(_args: ServerArgs) -> ExitCode {
    eprintln!("zimfleet server: not built yet");
    ExitCode::from(2)
}
