//! `zimfleet loadtest`.
use std::process::ExitCode;

/// Arguments of `zimfleet loadtest`.
#[derive(Debug, clap::Args)]
pub struct LoadtestArgs {}

pub fn main(_args: LoadtestArgs) -> ExitCode {
    eprintln!("zimfleet loadtest: not built yet");
    ExitCode::from(2)
}
