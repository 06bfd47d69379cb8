//! `zimfleet token`.
use std::process::ExitCode;

/// Arguments of `zimfleet token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {}

pub fn main(_args: TokenArgs) -> ExitCode {
    eprintln!("zimfleet token: not built yet");
    ExitCode::from(2)
}
