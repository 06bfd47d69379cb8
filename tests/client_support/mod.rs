//! Shared by tests/client.rs and tests/seed.rs: a real reference server on 127.0.0.1:0 with
//! millisecond timings, a fleet with millisecond timings, an event recorder that waits with
//! deadlines, and a bot that records what it is told.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use zimfleet::bot::Bot;
use zimfleet::client::{
    AccountHandle, AccountSpec, ClientTimings, Event, EventKind, Fleet, FleetConfig, RetryConfig,
    RoomSpec,
};
use zimfleet::protocol::{ChatMessage, Member, Secret};
use zimfleet::server::{Admin, ServerHandle, ServerSettings};
use zimfleet::token::provider::{GeneratedToken, StaticToken};
use zimfleet::token::TokenProvider;

pub struct Env {
    pub server: ServerHandle,
    pub admin: Admin,
    pub settings: ServerSettings,
}

pub async fn server() -> Env {
    server_with(|_| {}).await
}

pub async fn server_with(tweak: impl FnOnce(&mut ServerSettings)) -> Env {
    let mut settings = ServerSettings::for_tests();
    tweak(&mut settings);
    let server = zimfleet::server::start(settings.clone())
        .await
        .expect("server starts");
    let admin = server.admin();
    Env {
        server,
        admin,
        settings,
    }
}

/// Millisecond client timings that fit `ServerSettings::for_tests()` (heartbeat 100 ms,
/// sessions and room sessions 1 s, token_will_expire 1 s ahead).
pub fn fleet_config(url: &str) -> FleetConfig {
    let ms = Duration::from_millis;
    let mut config = FleetConfig::new(url);
    config.workers = 2;
    config.admission_per_sec = 2000;
    config.admission_burst = 200;
    config.retry = RetryConfig {
        first: (ms(20), ms(50)),
        steps: vec![ms(50), ms(100), ms(200)],
        jitter: 0.2,
        give_up_after: None,
    };
    config.timings = ClientTimings {
        heartbeat_interval: ms(100),
        heartbeat_timeout: ms(300),
        connect_timeout: ms(500),
        request_timeout: ms(400),
        room_request_timeout: ms(600),
        send_timeout: ms(1000),
        renew_ahead: ms(1000),
        expire_margin: ms(200),
        outbox_wait: ms(5000),
    };
    config.token_limits.min_lifetime_secs = 1;
    config
}

impl Env {
    pub fn fleet(&self) -> Fleet {
        Fleet::start(fleet_config(&self.server.ws_url()))
    }

    pub fn tokens(&self, ttl_secs: u64) -> Arc<dyn TokenProvider> {
        Arc::new(
            GeneratedToken::new(
                self.settings.app_id,
                self.settings.server_secret.clone(),
                ttl_secs,
            )
            .expect("32-character secret"),
        )
    }

    pub fn spec(&self, user: &str, rooms: &[&str]) -> AccountSpec {
        AccountSpec {
            user_id: user.into(),
            user_name: format!("{user} name"),
            device_id: None,
            token: self.tokens(3600),
            rooms: rooms.iter().map(|r| RoomSpec::new(*r)).collect(),
        }
    }
}

pub fn static_token(token: &str) -> Arc<dyn TokenProvider> {
    Arc::new(StaticToken(Secret::from(token)))
}

/// Every event of a fleet, recorded; waits have deadlines and print what was seen.
///
/// A wait consumes, in the stream of the event it matches (one account's connection, or one
/// account's room), everything up to that event; other streams are untouched, so waits on
/// different accounts may come in any order.
pub struct Events {
    rx: broadcast::Receiver<Arc<Event>>,
    pub seen: Vec<Arc<Event>>,
    unconsumed: Vec<Arc<Event>>,
}

fn stream_key(e: &Event) -> (String, Option<String>) {
    match &e.kind {
        EventKind::Room { room_id, .. } => (e.account.clone(), Some(room_id.clone())),
        _ => (e.account.clone(), None),
    }
}

impl Events {
    pub fn new(fleet: &Fleet) -> Self {
        Self {
            rx: fleet.subscribe(),
            seen: Vec::new(),
            unconsumed: Vec::new(),
        }
    }

    fn take_match(&mut self, pred: &impl Fn(&Event) -> bool) -> Option<Arc<Event>> {
        let idx = self.unconsumed.iter().position(|e| pred(e))?;
        let found = self.unconsumed[idx].clone();
        let key = stream_key(&found);
        let mut i = 0;
        self.unconsumed.retain(|e| {
            let keep = i > idx || stream_key(e) != key;
            i += 1;
            keep
        });
        Some(found)
    }

    /// Waits until an unconsumed event matching `pred` is there, at most `within`.
    pub async fn wait(&mut self, within: Duration, pred: impl Fn(&Event) -> bool) -> Arc<Event> {
        let deadline = Instant::now() + within;
        loop {
            self.drain();
            if let Some(found) = self.take_match(&pred) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Ok(event)) => {
                    self.seen.push(event.clone());
                    self.unconsumed.push(event);
                }
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    panic!("event recorder lagged by {n}")
                }
                Ok(Err(e)) => panic!("event stream ended: {e}"),
                Err(_) => panic!(
                    "no matching event within {within:?}; seen:\n{}",
                    self.dump()
                ),
            }
        }
    }

    /// Waits for the `n`th connection pair (state, event) of `account`.
    pub async fn conn(&mut self, account: &str, pair: (i32, i32)) -> Arc<Event> {
        self.conn_within(account, pair, Duration::from_secs(5))
            .await
    }

    pub async fn conn_within(
        &mut self,
        account: &str,
        pair: (i32, i32),
        within: Duration,
    ) -> Arc<Event> {
        let account = account.to_owned();
        self.wait(within, move |e| {
            e.account == account && conn_pair(e) == Some(pair)
        })
        .await
    }

    pub async fn room(&mut self, account: &str, room: &str, pair: (i32, i32)) -> Arc<Event> {
        let (account, room) = (account.to_owned(), room.to_owned());
        self.wait(Duration::from_secs(5), move |e| {
            e.account == account && room_pair(e, &room) == Some(pair)
        })
        .await
    }

    /// Takes whatever is already queued, without waiting.
    pub fn drain(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event.clone());
            self.unconsumed.push(event);
        }
    }

    pub fn conn_pairs(&self, account: &str) -> Vec<(i32, i32)> {
        self.seen
            .iter()
            .filter(|e| e.account == account)
            .filter_map(|e| conn_pair(e))
            .collect()
    }

    pub fn room_pairs(&self, account: &str, room: &str) -> Vec<(i32, i32)> {
        self.seen
            .iter()
            .filter(|e| e.account == account)
            .filter_map(|e| room_pair(e, room))
            .collect()
    }

    pub fn count(&self, account: &str, pred: impl Fn(&EventKind) -> bool) -> usize {
        self.seen
            .iter()
            .filter(|e| e.account == account && pred(&e.kind))
            .count()
    }

    pub fn dump(&self) -> String {
        self.seen
            .iter()
            .map(|e| serde_json::to_string(&**e).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn conn_pair(e: &Event) -> Option<(i32, i32)> {
    match &e.kind {
        EventKind::Connection { state, event, .. } => Some((state.as_i32(), event.as_i32())),
        _ => None,
    }
}

pub fn room_pair(e: &Event, room: &str) -> Option<(i32, i32)> {
    match &e.kind {
        EventKind::Room {
            room_id,
            state,
            event,
            ..
        } if room_id == room => Some((state.as_i32(), event.as_i32())),
        _ => None,
    }
}

/// A bot that records messages and member changes, and can be told to panic.
#[derive(Default)]
pub struct RecordingBot {
    pub messages: Mutex<Vec<ChatMessage>>,
    pub joined: Mutex<Vec<Member>>,
    pub gave_up: Mutex<Vec<String>>,
    pub token_warnings: Mutex<Vec<u64>>,
    pub panic_on_connection: bool,
}

impl RecordingBot {
    pub fn bodies(&self, room: &str) -> Vec<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.conv_id == room)
            .map(|m| m.body.clone())
            .collect()
    }

    /// Waits until `pred` holds on the recorded messages, at most `within`.
    pub async fn wait_messages(&self, within: Duration, pred: impl Fn(&[ChatMessage]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if pred(&self.messages.lock().unwrap()) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "messages never matched; got {:?}",
                    self.messages
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|m| (&m.conv_id, &m.body, m.seq))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Bot for RecordingBot {
    fn on_connection_state(
        &self,
        _account: &AccountHandle,
        _state: zimfleet::protocol::ConnectionState,
        _event: zimfleet::protocol::ConnectionEvent,
        _ext: &serde_json::Value,
    ) {
        if self.panic_on_connection {
            panic!("this bot panics on purpose");
        }
    }

    fn on_message(&self, _account: &AccountHandle, message: &ChatMessage) {
        self.messages.lock().unwrap().push(message.clone());
    }

    fn on_members_joined(&self, _account: &AccountHandle, _room_id: &str, members: &[Member]) {
        self.joined.lock().unwrap().extend_from_slice(members);
    }

    fn on_token_will_expire(&self, _account: &AccountHandle, remaining_secs: u64) {
        self.token_warnings.lock().unwrap().push(remaining_secs);
    }

    fn on_room_gave_up(&self, _account: &AccountHandle, room_id: &str, _reason: &str) {
        self.gave_up.lock().unwrap().push(room_id.to_owned());
    }
}
