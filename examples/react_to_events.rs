//! Reacting to events: every state change of every account arrives on `Fleet::subscribe` as
//! an `Event` (one JSON line each). This program watches a network drop and a kickout happen
//! and reacts: it logs the JSON, counts recoveries, and reports accounts that ended for good.
//!
//! ```text
//! cargo run --example react_to_events
//! ```

use std::sync::Arc;
use std::time::Duration;

use zimfleet::bot::Idle;
use zimfleet::client::{AccountSpec, EventKind, Fleet, FleetConfig, RoomSpec};
use zimfleet::protocol::{ConnectionEvent, ConnectionState, KickoutReason, MessageType, RoomState};
use zimfleet::server::FaultTarget;
use zimfleet::token::provider::GeneratedToken;

#[actix::main]
async fn main() -> std::io::Result<()> {
    // An in-process backend with its admin API (for the faults below).
    let mut settings = zimfleet::server::ServerSettings::defaults();
    settings.listen = "127.0.0.1:0".parse().expect("valid address");
    let server = zimfleet::server::start(settings.clone()).await?;
    let admin = server.admin();

    let mut config = FleetConfig::new(server.ws_url());
    // Reconnect fast for the demo (the ZIM default waits 0.5 to 2 s first).
    config.retry.first = (Duration::from_millis(50), Duration::from_millis(100));
    let fleet = Fleet::start(config);
    let tokens = Arc::new(
        GeneratedToken::new(settings.app_id, settings.server_secret.clone(), 3600)
            .expect("the secret has 32 characters"),
    );

    // The watcher reacts to events as they come: once everyone is in the hall it cuts every
    // socket (a network blip: (3,3) then (2,0); rooms (1,1) then (2,0)); once everyone is back
    // it logs carol in elsewhere (she ends with (0,4), her rooms (0,2), and never retries).
    let mut events = fleet.subscribe();
    let watcher = actix::spawn(async move {
        let (mut in_hall, mut logins) = (0, 0);
        while let Ok(event) = events.recv().await {
            println!(
                "{}",
                serde_json::to_string(&*event).expect("events serialise")
            );
            match &event.kind {
                EventKind::Room { state, .. } if *state == RoomState::Connected => {
                    in_hall += 1;
                    if in_hall == 3 {
                        admin.drop(FaultTarget::All);
                    }
                }
                EventKind::Connection {
                    state, event: e, ..
                } if *state == ConnectionState::Reconnecting => {
                    println!(
                        "  -> {} lost its link ({e}); it retries by itself",
                        event.account
                    )
                }
                EventKind::Connection {
                    state, event: e, ..
                } if *state == ConnectionState::Connected && *e == ConnectionEvent::Success => {
                    logins += 1;
                    if logins == 6 {
                        admin.kickout("carol", KickoutReason::KickedOut);
                    }
                }
                EventKind::Connection {
                    state,
                    event: e,
                    ext,
                } if *state == ConnectionState::Disconnected => {
                    println!("  -> {} ended for good: {e} {ext}", event.account);
                    return logins;
                }
                _ => {}
            }
        }
        logins
    });

    for user in ["alice", "bob", "carol"] {
        let spec = AccountSpec {
            user_id: user.into(),
            user_name: user.into(),
            device_id: None,
            token: tokens.clone(),
            rooms: vec![RoomSpec::new("hall")],
        };
        fleet
            .add_account(spec, Arc::new(Idle))
            .expect("valid, new user id");
    }

    let logins = match tokio::time::timeout(Duration::from_secs(30), watcher).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    println!("(Connected, Success) seen {logins} times: 3 logins + 3 re-logins");
    let carol = fleet.account("carol").expect("in the registry");
    match carol
        .send_room_message("hall", MessageType::Text, "hi".into())
        .await
    {
        Err(e) => println!("carol's calls now fail: {e}"),
        Ok(_) => println!("unexpected: carol could still send"),
    }
    fleet.shutdown(Duration::from_secs(5)).await;
    server.stop().await;
    Ok(())
}
