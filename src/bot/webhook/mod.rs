//! `webhook`: posts every event its accounts see to a URL as JSON ([`schema`]), and runs the
//! actions the answer carries, in order (docs/bots.md, "webhook"). Bots in any language.
//!
//! Per account the events go out in order through a bounded queue ([`queue`]); when it is
//! full the oldest event is dropped and counted. Each account has its own delivery task
//! ([`deliver`]), so a slow or failing endpoint delays only that account's events: the
//! handlers only push, they never wait.

pub mod deliver;
pub mod metrics;
pub mod queue;
pub mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::bot::pacer::Quiet;
use crate::bot::settings::{CheckSettings, SettingDuration};
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{
    ChatMessage, ConnectionEvent, ConnectionState, Member, RoomEvent, RoomState, Secret,
};

use deliver::Delivery;
use metrics::{Count, WebhookCounters};
use queue::{EventQueue, Pushed};
use schema::{WebhookEvent, WebhookKind, KINDS, SCHEMA_VERSION};

/// `[settings]` of a webhook bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where events are posted (http:// or https://).
    pub url: String,
    /// Event kinds posted ([`schema::KINDS`]); empty = every kind.
    #[serde(default)]
    pub events: Vec<String>,
    /// Deadline of one attempt.
    #[serde(default = "default_timeout")]
    pub timeout: SettingDuration,
    /// Environment variable holding a bearer token sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// Attempts after the first failed one.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before the first retry; doubles with each retry, jittered by +-20 %.
    #[serde(default = "default_backoff")]
    pub retry_backoff: SettingDuration,
    /// Longest delay between two attempts.
    #[serde(default = "default_backoff_max")]
    pub retry_backoff_max: SettingDuration,
    /// Events each account may hold while its endpoint is slow; then the oldest go.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Whether an account's own messages are posted too.
    #[serde(default)]
    pub own_messages: bool,
}

fn default_timeout() -> SettingDuration {
    SettingDuration(std::time::Duration::from_secs(5))
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> SettingDuration {
    SettingDuration(std::time::Duration::from_millis(200))
}
fn default_backoff_max() -> SettingDuration {
    SettingDuration(std::time::Duration::from_secs(5))
}
fn default_queue() -> usize {
    256
}

/// Most retries a setting may ask for.
pub const MAX_RETRIES: u32 = 10;
/// Largest queue a setting may ask for (events per account).
pub const MAX_QUEUE: usize = 100_000;

impl CheckSettings for WebhookSettings {
    fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url must start with http:// or https://, not {:?}",
                self.url
            ));
        }
        if let Some(bad) = self.events.iter().find(|e| !KINDS.contains(&e.as_str())) {
            return Err(format!(
                "events: unknown event kind {bad:?} (known: {})",
                KINDS.join(", ")
            ));
        }
        let timeout = self.timeout.0;
        if timeout.is_zero() || timeout > std::time::Duration::from_secs(60) {
            return Err("timeout must be above 0s and at most 60s".into());
        }
        if self.retries > MAX_RETRIES {
            return Err(format!("retries must be at most {MAX_RETRIES}"));
        }
        if self.retry_backoff.0 > self.retry_backoff_max.0 {
            return Err("retry_backoff must not exceed retry_backoff_max".into());
        }
        if self.queue == 0 || self.queue > MAX_QUEUE {
            return Err(format!("queue must be between 1 and {MAX_QUEUE}"));
        }
        Ok(())
    }
}

/// One account's feed: its queue and the id of its next event.
struct Feed {
    queue: Arc<EventQueue<WebhookEvent>>,
    next_id: u64,
    dropped: u64,
}

/// The webhook bot.
pub struct Webhook {
    delivery: Arc<Delivery>,
    events: Vec<String>,
    own_messages: bool,
    queue: usize,
    /// By user id; `None` once the bot was taken off the account (a reload replaced it).
    feeds: Mutex<HashMap<String, Option<Feed>>>,
}

impl Webhook {
    /// A webhook bot; `bearer` is the token `bearer_env` names, already read.
    pub fn new(settings: WebhookSettings, bearer: Option<Secret>, quiet: Quiet) -> Self {
        let delivery = Delivery {
            url: settings.url,
            bearer,
            timeout: settings.timeout.0,
            retries: settings.retries,
            backoff: settings.retry_backoff.0,
            backoff_max: settings.retry_backoff_max.0,
            counters: Arc::default(),
            quiet,
        };
        Self {
            delivery: Arc::new(delivery),
            events: settings.events,
            own_messages: settings.own_messages,
            queue: settings.queue,
            feeds: Mutex::default(),
        }
    }

    /// This bot's counters (they also add to [`metrics::totals`]).
    pub fn counters(&self) -> Arc<WebhookCounters> {
        Arc::clone(&self.delivery.counters)
    }

    fn wanted(&self, kind: &WebhookKind) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind.name())
    }

    /// Queues an event of `account`; starts the account's delivery task with its first one.
    fn push(&self, account: &AccountHandle, kind: WebhookKind) {
        if !self.wanted(&kind) {
            return;
        }
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let entry = feeds
            .entry(account.user_id().to_string())
            .or_insert_with(|| {
                let queue = Arc::new(EventQueue::new(self.queue));
                actix::spawn(deliver::run(
                    account.clone(),
                    Arc::clone(&queue),
                    Arc::clone(&self.delivery),
                ));
                Some(Feed {
                    queue,
                    next_id: 1,
                    dropped: 0,
                })
            });
        let Some(feed) = entry else {
            return;
        };
        let event = WebhookEvent {
            schema: SCHEMA_VERSION,
            event_id: feed.next_id,
            ts_ms: crate::clock::unix_ms(),
            account: account.user_id().to_string(),
            kind,
        };
        feed.next_id += 1;
        if let Pushed::DroppedOldest(old) = feed.queue.push(event) {
            self.delivery.counters.add(Count::DroppedQueueFull);
            feed.dropped += 1;
            if feed.dropped == 1 || feed.dropped.is_multiple_of(1000) {
                tracing::warn!(account = %old.account, dropped = feed.dropped, "webhook: the endpoint is behind; queue full ({}), oldest events dropped", self.queue);
            }
        }
    }

    /// The account ended (or, `detached`, the bot was taken off it): its task posts what is
    /// queued, then stops.
    fn close(&self, account: &AccountHandle, detached: bool) {
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let feed = if detached {
            feeds.insert(account.user_id().to_string(), None)
        } else {
            feeds.remove(account.user_id())
        };
        if let Some(Some(feed)) = feed {
            feed.queue.close();
        }
    }
}

impl Bot for Webhook {
    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        event: ConnectionEvent,
        ext: &serde_json::Value,
    ) {
        self.push(account, WebhookKind::connection(state, event, ext));
        if state == ConnectionState::Disconnected {
            self.close(account, false);
        }
    }

    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        event: RoomEvent,
        ext: &serde_json::Value,
    ) {
        self.push(account, WebhookKind::room(room_id, state, event, ext));
    }

    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        if message.from == account.user_id() && !self.own_messages {
            return;
        }
        let message = message.clone();
        self.push(account, WebhookKind::Message { message });
    }

    fn on_members_joined(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        let kind = WebhookKind::MembersJoined {
            room_id: room_id.into(),
            members: members.to_vec(),
        };
        self.push(account, kind);
    }

    fn on_members_left(&self, account: &AccountHandle, room_id: &str, members: &[Member]) {
        let kind = WebhookKind::MembersLeft {
            room_id: room_id.into(),
            members: members.to_vec(),
        };
        self.push(account, kind);
    }

    fn on_token_will_expire(&self, account: &AccountHandle, remaining_secs: u64) {
        self.push(account, WebhookKind::TokenWillExpire { remaining_secs });
    }

    fn on_room_gave_up(&self, account: &AccountHandle, room_id: &str, reason: &str) {
        let kind = WebhookKind::RoomGaveUp {
            room_id: room_id.into(),
            reason: reason.into(),
        };
        self.push(account, kind);
    }

    fn on_room_incarnation_changed(
        &self,
        account: &AccountHandle,
        room_id: &str,
        old: u64,
        new: u64,
    ) {
        let kind = WebhookKind::RoomIncarnationChanged {
            room_id: room_id.into(),
            old,
            new,
        };
        self.push(account, kind);
    }
}
