//! The admin face's own tasks: one follows the fleet's events into the board (rebuilding it
//! from `Fleet::status()` when events were lost), one samples the charts every second. Both
//! end when the face stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::series::Totals;
use super::Shared;

/// How often the charts take a sample.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

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
            Ok(event) => lock(&shared.board).apply(&event),
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(lost = n, "admin board: events lost; rebuilding it");
                if let Some(statuses) = super::status(&shared.state).await {
                    // Events that came meanwhile are newer than the status: apply them after.
                    let mut board = lock(&shared.board);
                    board.resync(&statuses);
                    while let Ok(event) = events.try_recv() {
                        board.apply(&event);
                    }
                }
            }
            Err(RecvError::Closed) => return,
        }
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
