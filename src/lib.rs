//! zimfleet keeps many chat accounts online against a ZIM-style backend, each behaving the
//! way the ZEGO ZIM SDK (2.9+) does about connections: the same states, events, error codes
//! and recovery rules. Run chat bots from config, embed accounts in your own service, or
//! load-test a backend; `zimfleet server` is the reference backend all of them can talk to.
//!
//! # Layout
//!
//! - `protocol/`: the wire contract: frames (serde), ZIM enums and error codes. No I/O.
//! - `session/`: the ZIM rules as pure code: connection and room transitions, message feed
//!   (seq order, room incarnations), outbox, token clock, retry schedule and backoff, disconnect classification, client-side
//!   limits. Input -> (state, events, effects). No I/O.
//! - `token/`: Token04 encode/verify (GCM and CBC), client-side token checks, token providers.
//! - `client/`: the actor tree: fleet (top, arbiters, handles) and its root actor (how
//!   accounts ended), account/ (one actor per user: link, requests, heartbeats, outbox,
//!   tokens, connection machine; supervises its rooms), room/ (one supervised actor per room:
//!   room machine, restart budget, message feed), transport (awc upgrade, lean WebSocket),
//!   token renewal service, events, metrics.
//! - `bot/`: the `Bot` trait, the registry of built-in behaviours, the helpers they share
//!   (settings, pacer, ticker), the behaviours, and `webhook/` (bots in any language: events
//!   posted as JSON, actions from the answer).
//! - `server/`: the reference backend: settings, one task per WebSocket session on the
//!   workers with its own lean WebSocket transport after the upgrade, shared state in sharded
//!   maps (`hub/`), timer heap, admin and faults.
//! - `runner/`: `zimfleet run`: bots from bots/*.toml on a fleet, shards, signals, hot reload
//!   (the pure plan, the re-reading, applying it to the running set), shutdown.
//! - `admin/`: the runner's HTTP face: the web console (page, board and charts kept from the
//!   event stream, message feed), the JSON API to act as an account, bearer token and
//!   tickets, health, accounts, Prometheus metrics, event stream.
//! - `loadtest/`: plan and stages, pre-flight, driver on top of the fleet (arrivals,
//!   ramp-down logouts, messages, chaos), load bot, HDR histograms, progress, reports with
//!   exact merge (table, JSON, self-contained HTML), the live page, shards.
//! - `web/`: assets shared by every page zimfleet serves: uPlot and the chart helpers.
//! - `clock.rs`: the crate's one wall clock (Unix milliseconds).
//! - `config.rs`: layered settings (config crate): defaults < file < `ZIMFLEET__SECTION__KEY`.
//! - `telemetry.rs`: tracing set-up, human or JSON lines; colour only on a terminal.
//! - `tls.rs`: TLS of both faces (rustls, ring): the client's trust (public roots plus a
//!   `ca_file`, for `wss://` and `https://`), the server's certificate and key from PEM files,
//!   the crypto provider installed once before any awc client.

pub mod admin;
pub mod bot;
pub mod client;
pub mod clock;
pub mod config;
pub mod loadtest;
pub mod protocol;
pub mod runner;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod web;

// The README's Rust example compiles as a doctest, so it cannot go stale (docs/testing.md).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
