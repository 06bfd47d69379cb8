//! The `zimfleet` command: thin wiring over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc keeps small long-lived allocations (an account's actors, its socket) apart from
/// the large transient buffers of a ramp (WebSocket handshakes), so the memory of the
/// transients goes back to the system instead of staying between live objects
/// (docs/benchmarks.md, "Memory per account").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (its `malloc_conf`, read once when it initialises): freed pages
/// go back to the system within about a second, by a background thread, also while the
/// process is idle. With the defaults (10 s, purged only when the process allocates) a fleet
/// that ramped fast and then holds idle kept its handshake buffers resident: 7.3 KiB per idle
/// account instead of 4.9 KiB (docs/benchmarks.md, "Memory per account").
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer, laid out as jemalloc's `const char *malloc_conf`.
#[cfg(feature = "jemalloc")]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer refers to a `'static` C string literal that nothing ever writes, so
// reading it from any thread (jemalloc reads it once, at initialisation) cannot race.
#[cfg(feature = "jemalloc")]
unsafe impl Sync for MallocConf {}

#[derive(Parser)]
#[command(
    name = "zimfleet",
    version,
    about = "Keep many ZIM chat accounts online: bots, load tests, and a reference backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat bots in bots/ (on an embedded backend unless one is configured).
    Run(zimfleet::runner::RunArgs),
    /// Run the reference backend.
    Server(zimfleet::server::cli::ServerArgs),
    /// Load-test a backend with many accounts, or merge shard reports.
    Loadtest(zimfleet::loadtest::cli::LoadtestArgs),
    /// Mint or inspect a Token04.
    Token(zimfleet::token::cli::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => zimfleet::runner::main(args),
        Command::Server(args) => zimfleet::server::cli::main(args),
        Command::Loadtest(args) => zimfleet::loadtest::cli::main(args),
        Command::Token(args) => zimfleet::token::cli::main(args),
    }
}
