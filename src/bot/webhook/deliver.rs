//! One account's delivery task: takes its events in order, posts each (with a timeout and
//! retries with backoff and jitter), then runs the answer's actions in order. It runs on the
//! account's own thread but only awaits: a slow endpoint delays this account's events, never
//! its socket, its other work or any other account.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bot::pacer::{Quiet, SEND_SPACING};
use crate::client::{AccountHandle, RoomSpec};
use crate::protocol::{MessageType, Secret};

use super::metrics::{Count, WebhookCounters};
use super::queue::{EventQueue, Next};
use super::schema::{parse_answer, Action, WebhookEvent};

/// The longest answer body read; a longer one is an invalid answer.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How often an idle task looks again whether its queue was closed.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// Jitter of each retry delay (a fraction).
const RETRY_JITTER: f64 = 0.2;
/// Conversations whose last send time is remembered (for the send spacing).
const SPACED_CONVERSATIONS: usize = 1024;

/// How events are posted: what every account's task of one webhook bot shares.
#[derive(Debug)]
pub struct Delivery {
    /// The endpoint.
    pub url: String,
    /// `Authorization: Bearer ...`, when set.
    pub bearer: Option<Secret>,
    /// Deadline of one attempt (connect, send, answer).
    pub timeout: Duration,
    /// Attempts after the first one.
    pub retries: u32,
    /// Delay before the first retry; it doubles with each retry.
    pub backoff: Duration,
    /// Longest delay between two attempts.
    pub backoff_max: Duration,
    /// What it counts.
    pub counters: Arc<WebhookCounters>,
    /// On once the run shuts down: answers' actions are no longer run.
    pub quiet: Quiet,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// No answer within the timeout.
    Timeout,
    /// The endpoint answered this status; `retry` when it may do better later (5xx, 429).
    Status {
        /// The HTTP status.
        status: u16,
        /// Whether a retry may do better.
        retry: bool,
    },
    /// No connection, or the transfer broke.
    Transport(String),
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Timeout => write!(f, "no answer in time"),
            AttemptError::Status { status, .. } => write!(f, "answered HTTP {status}"),
            AttemptError::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// The delay before retry number `retry` (1 = the first retry): `backoff` doubling up to
/// `backoff_max`, then jittered by +-20 %.
pub fn retry_delay(delivery: &Delivery, retry: u32, rng: &mut impl rand::Rng) -> Duration {
    let doubled = delivery
        .backoff
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
    crate::session::retry::jittered(doubled.min(delivery.backoff_max), RETRY_JITTER, rng)
}

thread_local! {
    /// One HTTP client per thread (awc clients are not `Send`); it pools connections.
    static CLIENT: awc::Client = awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(3600))
        .finish();
}

/// One POST of `body`; the answer body on a 2xx status.
async fn attempt(delivery: &Delivery, body: Vec<u8>) -> Result<bytes::Bytes, AttemptError> {
    let mut request = CLIENT.with(|c| c.post(&delivery.url));
    request = request
        .timeout(delivery.timeout)
        .insert_header(("content-type", "application/json"))
        .insert_header((
            "user-agent",
            concat!("zimfleet/", env!("CARGO_PKG_VERSION")),
        ));
    if let Some(bearer) = &delivery.bearer {
        request = request.bearer_auth(bearer.expose());
    }
    let work = async move {
        let mut response = request.send_body(body).await.map_err(|e| match e {
            awc::error::SendRequestError::Timeout => AttemptError::Timeout,
            other => AttemptError::Transport(other.to_string()),
        })?;
        let status = response.status();
        if !status.is_success() {
            let code = status.as_u16();
            return Err(AttemptError::Status {
                status: code,
                retry: status.is_server_error() || code == 429,
            });
        }
        response
            .body()
            .limit(MAX_ANSWER_BYTES)
            .await
            .map_err(|e| AttemptError::Transport(format!("reading the answer: {e}")))
    };
    tokio::time::timeout(delivery.timeout, work)
        .await
        .unwrap_or(Err(AttemptError::Timeout))
}

/// Posts one event until it is answered or its retries are spent; the answer body, if any.
async fn post(delivery: &Delivery, event: &WebhookEvent) -> Option<bytes::Bytes> {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let mut last = AttemptError::Timeout;
    let mut attempts = 0;
    for retry in 0..=delivery.retries {
        attempts += 1;
        if retry > 0 {
            let delay = retry_delay(delivery, retry, &mut rand::thread_rng());
            tokio::time::sleep(delay).await;
        }
        match attempt(delivery, body.clone()).await {
            Ok(answer) => {
                delivery.counters.add(Count::Delivered);
                return Some(answer);
            }
            Err(e) => {
                let count = match e {
                    AttemptError::Timeout => Count::AttemptTimedOut,
                    _ => Count::AttemptFailed,
                };
                delivery.counters.add(count);
                tracing::debug!(account = %event.account, event_id = event.event_id, attempt = retry + 1, "webhook: {e}");
                let retry_later = !matches!(e, AttemptError::Status { retry: false, .. });
                last = e;
                if !retry_later {
                    break;
                }
            }
        }
    }
    delivery.counters.add(Count::GivenUp);
    tracing::warn!(
        account = %event.account,
        event_id = event.event_id,
        kind = event.kind.name(),
        "webhook: event dropped, the endpoint {last} ({attempts} attempt(s))"
    );
    None
}

/// Runs one account's deliveries until its queue is closed and empty.
pub async fn run(
    account: AccountHandle,
    queue: Arc<EventQueue<WebhookEvent>>,
    delivery: Arc<Delivery>,
) {
    let mut spacing = Spacing::default();
    loop {
        let event = match queue.next(IDLE_WAIT).await {
            Next::Item(event) => event,
            Next::Idle => continue,
            Next::Closed => return,
        };
        let Some(answer) = post(&delivery, &event).await else {
            continue;
        };
        match parse_answer(&answer) {
            Ok(answer) => {
                for action in answer.actions {
                    if delivery.quiet.is_on() {
                        break;
                    }
                    act(&account, &action, &delivery, &mut spacing).await;
                }
            }
            Err(e) => {
                delivery.counters.add(Count::AnswerInvalid);
                tracing::warn!(account = %event.account, event_id = event.event_id, "webhook: the answer is not valid ({e}); its actions are not run");
            }
        }
    }
}

/// When each conversation may be sent to next (ZIM refuses sends closer than 100 ms).
#[derive(Debug, Default)]
struct Spacing(HashMap<(bool, String), Instant>);

impl Spacing {
    async fn wait(&mut self, peer: bool, conv: &str) {
        let now = Instant::now();
        if self.0.len() > SPACED_CONVERSATIONS {
            self.0.retain(|_, at| *at > now);
        }
        let key = (peer, conv.to_string());
        let at = self.0.get(&key).copied().unwrap_or(now).max(now);
        if at > now {
            tokio::time::sleep(at - now).await;
        }
        self.0.insert(key, at + SEND_SPACING);
    }
}

/// Runs one action; a failure is counted and logged with its ZIM error code.
async fn act(account: &AccountHandle, action: &Action, delivery: &Delivery, spacing: &mut Spacing) {
    let result = match action {
        Action::RoomMessage { room_id, text } => {
            spacing.wait(false, room_id).await;
            account
                .send_room_message(room_id, MessageType::Text, text.clone())
                .await
                .map(|_| ())
        }
        Action::PeerMessage { user_id, text } => {
            spacing.wait(true, user_id).await;
            account
                .send_peer_message(user_id, MessageType::Text, text.clone())
                .await
                .map(|_| ())
        }
        Action::EnterRoom { room_id } => account
            .enter_room(RoomSpec::new(room_id.clone()))
            .await
            .map(|_| ()),
        Action::LeaveRoom { room_id } => account.leave_room(room_id).await,
    };
    match result {
        Ok(()) => delivery.counters.add(Count::ActionDone),
        Err(e) => {
            delivery.counters.add(Count::ActionFailed);
            tracing::warn!(account = %account.user_id(), action = action.name(), code = e.code.0, "webhook action failed: {}", e.msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn delivery(backoff_ms: u64, max_ms: u64) -> Delivery {
        Delivery {
            url: "http://127.0.0.1:9/".into(),
            bearer: None,
            timeout: Duration::from_millis(100),
            retries: 5,
            backoff: Duration::from_millis(backoff_ms),
            backoff_max: Duration::from_millis(max_ms),
            counters: Arc::default(),
            quiet: Quiet::default(),
        }
    }

    #[test]
    fn retries_double_up_to_the_cap_each_within_the_jitter() {
        let d = delivery(100, 500);
        let mut rng = StdRng::seed_from_u64(7);
        for (retry, base) in [(1, 100), (2, 200), (3, 400), (4, 500), (10, 500), (40, 500)] {
            let got = retry_delay(&d, retry, &mut rng).as_secs_f64() * 1000.0;
            let base = base as f64;
            assert!(
                got >= base * 0.8 - 0.001 && got <= base * 1.2 + 0.001,
                "retry {retry}: {got}"
            );
        }
    }

    #[actix_rt::test]
    async fn a_closed_port_fails_as_transport_and_a_silent_one_as_timeout() {
        let d = delivery(1, 1);
        let err = attempt(&d, b"{}".to_vec()).await.unwrap_err();
        assert!(matches!(err, AttemptError::Transport(_)), "{err:?}");
        // Accepts and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let d = Delivery {
            url: format!("http://{}/", silent.local_addr().unwrap()),
            ..delivery(1, 1)
        };
        let started = Instant::now();
        assert_eq!(
            attempt(&d, b"{}".to_vec()).await,
            Err(AttemptError::Timeout)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
