//! The admin face's own tasks: one follows the fleet's events into the board (rebuilding it
//! from `Fleet::status()` when events were lost), one samples the charts every second. Both
//! end when the face stops.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::broadcast::{self, error::RecvError};

use super::series::Totals;
use super::Shared;
use crate::client::{Event, EventKind};
use crate::protocol::ConnectionState;

/// How often the charts take a sample.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How long a rebuild of the board may wait for the fleet's status (19,000 accounts answer
/// slowly on a busy machine; nobody waits on this one).
const RESYNC_DEADLINE: Duration = Duration::from_secs(30);
/// Status queries a rebuild tries.
const RESYNC_TRIES: usize = 6;

/// Starts both tasks on the current actix system.
pub(super) fn spawn(shared: Arc<Shared>) {
    actix_rt::spawn(follow(Arc::clone(&shared)));
    actix_rt::spawn(sample(shared));
}

async fn follow(shared: Arc<Shared>) {
    let mut events = shared.state.fleet.subscribe();
    let mut stopping = shared.stopping.clone();
    loop {
        let got = tokio::select! {
            got = events.recv() => got,
            _ = stopping.changed() => return,
        };
        match got {
            Ok(event) => {
                lock(&shared.board).apply(&event);
                if let EventKind::Connection {
                    state: ConnectionState::Disconnected,
                    ..
                } = event.kind
                {
                    actix_rt::spawn(ended_reason(Arc::clone(&shared), event.account.clone()));
                }
            }
            Err(RecvError::Lagged(n)) => {
                shared.board_lost.fetch_add(n, Ordering::Relaxed);
                tracing::debug!(lost = n, "admin board: events lost; rebuilding it");
                resync(&shared, &mut events).await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Rebuilds the board from the accounts themselves; a fleet too busy to answer in time is
/// asked again after a backoff with jitter (at most [`RESYNC_TRIES`] times).
async fn resync(shared: &Shared, events: &mut broadcast::Receiver<Arc<Event>>) {
    let mut backoff = Duration::from_secs(1);
    for _ in 0..RESYNC_TRIES {
        match tokio::time::timeout(RESYNC_DEADLINE, shared.state.fleet.status()).await {
            Ok(statuses) => {
                // Events that came meanwhile are newer than most of the status: apply them.
                let mut board = lock(&shared.board);
                board.resync(&statuses);
                while let Ok(event) = events.try_recv() {
                    board.apply(&event);
                }
                return;
            }
            Err(_) => {
                let jitter = rand::thread_rng().gen_range(0.8..1.2);
                tokio::time::sleep(backoff.mul_f64(jitter)).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::warn!("admin board: the fleet did not answer a status query; the board may lag");
}

/// Asks an account that ended why, in the client's words, for the board.
async fn ended_reason(shared: Arc<Shared>, user_id: String) {
    let Some(handle) = shared.state.fleet.account(&user_id) else {
        return;
    };
    if let Ok(status) = handle.state().await {
        lock(&shared.board).set_ended(&user_id, status.ended);
    }
}

async fn sample(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stopping = shared.stopping.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.changed() => return,
        }
        let counts = lock(&shared.board).counts();
        let totals = Totals::of(&shared.state.fleet.metrics());
        lock(&shared.series).push(crate::clock::unix_secs(), counts, totals);
    }
}

/// Locks a mutex, taking it over if a holder panicked (the data stays usable).
pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
