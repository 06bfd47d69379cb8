//! Embedding zimfleet: start a Fleet from code, give each account a custom Bot, and react to
//! the fleet's events.
//!
//! Runs against an in-process reference server, so it needs nothing else:
//!
//! ```text
//! cargo run --example embed_fleet
//! ```
//!
//! Against your own backend, build the `FleetConfig` with its URL and a token provider that
//! fits it (a static token, Token04 from app id + server secret, or an HTTP token endpoint).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zimfleet::bot::Bot;
use zimfleet::client::{AccountHandle, AccountSpec, EventKind, Fleet, FleetConfig, RoomSpec};
use zimfleet::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, MessageType, RoomEvent, RoomState,
};
use zimfleet::token::provider::GeneratedToken;

/// A custom bot: greets a room when it is in, and answers "ping" with "pong".
struct PingPong {
    answered: AtomicUsize,
}

impl Bot for PingPong {
    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        event: ConnectionEvent,
        _ext: &serde_json::Value,
    ) {
        println!("[{}] connection {state} {event}", account.user_id());
    }

    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        event: RoomEvent,
        _ext: &serde_json::Value,
    ) {
        // (Connected, Success) after the first entry or after a recovery
        if state == RoomState::Connected && event == RoomEvent::Success {
            account.post_room_text(room_id, format!("{} is here", account.user_id()));
        }
    }

    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        // Handlers must not block: post_* is fire and forget on the account's own thread.
        if message.body == "ping" && message.from != account.user_id() {
            account.post_room_text(&message.conv_id, "pong".into());
            self.answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[actix::main]
async fn main() -> std::io::Result<()> {
    zimfleet::telemetry::init(zimfleet::telemetry::LogFormat::Human);

    // An in-process backend on a free port (drop this when you have your own).
    let mut settings = zimfleet::server::ServerSettings::defaults();
    settings.listen = "127.0.0.1:0".parse().expect("valid address");
    let server = zimfleet::server::start(settings.clone()).await?;

    // The fleet: one arbiter per core, ZIM defaults for retries, heartbeats and timeouts.
    let fleet = Fleet::start(FleetConfig::new(server.ws_url()));
    let tokens = Arc::new(
        GeneratedToken::new(settings.app_id, settings.server_secret.clone(), 3600)
            .expect("the secret has 32 characters"),
    );
    let bot = Arc::new(PingPong {
        answered: AtomicUsize::new(0),
    });

    // React to events: every state change of every account, as values (and JSON lines).
    let mut events = fleet.subscribe();
    actix::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let EventKind::Room {
                room_id,
                state,
                event: e,
                ..
            } = &event.kind
            {
                println!("event: {} room {room_id} -> {state} {e}", event.account);
            }
        }
    });

    for user in ["alice", "bob"] {
        let spec = AccountSpec {
            user_id: user.into(),
            user_name: user.to_uppercase(),
            device_id: None,
            token: tokens.clone(),
            rooms: vec![RoomSpec::new("lobby")],
        };
        fleet
            .add_account(spec, bot.clone())
            .expect("valid, new user id");
    }

    // Act through a handle: wait until alice is in the lobby, then ping.
    let alice = fleet.account("alice").expect("added above");
    for _ in 0..50 {
        let status = alice.state().await.expect("alice is running");
        if status.rooms.iter().any(|r| r.state == RoomState::Connected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match alice
        .send_room_message("lobby", MessageType::Text, "ping".into())
        .await
    {
        Ok(reply) => println!("ping sent as seq {:?}", reply.seq),
        Err(e) => println!("ping failed: {e}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("pongs: {}", bot.answered.load(Ordering::Relaxed));

    for status in fleet.status().await {
        println!("{}: {} {}", status.user_id, status.state, status.last_event);
    }
    let report = fleet.shutdown(Duration::from_secs(5)).await;
    println!(
        "logged out {}, timed out {}",
        report.logged_out, report.timed_out
    );
    server.stop().await;
    Ok(())
}
