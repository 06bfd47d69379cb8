//! `--events FILE`: every fleet event as one JSON line, written by its own thread behind a
//! bounded queue. A writer that cannot keep up drops events and counts them; it never
//! slows the fleet down.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use crate::client::Event;

/// Why the events file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("events file {path}: {source}")]
pub struct EventsFileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// How long the fleet's stream must stay quiet, after `stop`, before a follower ends.
const DRAIN_QUIET: Duration = Duration::from_millis(100);
/// The longest a follower keeps draining after `stop`.
const DRAIN_MAX: Duration = Duration::from_secs(1);

/// Feeds the fleet's events to `on_event` (which answers false to stop) and lag counts to
/// `on_lag`, until the broadcast closes or `stop` turns true. After `stop` it still takes
/// the events on their way (the last logouts of a shutdown), until the stream has been quiet
/// for 100 ms or 1 s has passed.
pub async fn follow_events(
    mut events: broadcast::Receiver<Arc<Event>>,
    mut stop: watch::Receiver<bool>,
    mut on_event: impl FnMut(Arc<Event>) -> bool,
    mut on_lag: impl FnMut(u64),
) {
    let mut take = |got: Result<Arc<Event>, RecvError>| match got {
        Ok(event) => on_event(event),
        Err(RecvError::Lagged(n)) => {
            on_lag(n);
            true
        }
        Err(RecvError::Closed) => false,
    };
    loop {
        tokio::select! {
            got = events.recv() => if !take(got) { return },
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
    }
    let end = tokio::time::Instant::now() + DRAIN_MAX;
    loop {
        let quiet = (tokio::time::Instant::now() + DRAIN_QUIET).min(end);
        match tokio::time::timeout_at(quiet, events.recv()).await {
            Ok(got) => {
                if !take(got) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Counts shared by the writer and whoever reports on it (the admin metrics).
#[derive(Debug, Default)]
pub struct EventsCounters {
    pub written: AtomicU64,
    /// Lost because the fleet's broadcast overran this subscriber or the queue was full.
    pub lost: AtomicU64,
}

/// The running writer. Dropping the queue side ends it; [`EventsFile::finish`] waits for it.
pub struct EventsFile {
    queue: Option<SyncSender<Arc<Event>>>,
    done: mpsc::Receiver<()>,
    pub counters: Arc<EventsCounters>,
}

impl EventsFile {
    /// Creates (truncates) `path` and starts the writer thread with room for `capacity`
    /// pending events.
    pub fn create(path: &Path, capacity: usize) -> Result<EventsFile, EventsFileError> {
        let file = File::create(path).map_err(|source| EventsFileError {
            path: path.to_path_buf(),
            source,
        })?;
        let (queue, pending) = mpsc::sync_channel::<Arc<Event>>(capacity);
        let (done_tx, done) = mpsc::channel();
        let counters = Arc::new(EventsCounters::default());
        let thread_counters = Arc::clone(&counters);
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("events-file".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                // Block for one event, then take what else is waiting, then flush: readers
                // of the file see each batch promptly.
                while let Ok(first) = pending.recv() {
                    let mut batch = vec![first];
                    batch.extend(pending.try_iter());
                    for event in batch {
                        match serde_json::to_writer(&mut out, &*event)
                            .map_err(std::io::Error::from)
                            .and_then(|()| out.write_all(b"\n"))
                        {
                            Ok(()) => {
                                thread_counters.written.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                tracing::error!(file = %shown, error = %e, "events file: write failed; stopping the writer");
                                let _ = done_tx.send(());
                                return;
                            }
                        }
                    }
                    if let Err(e) = out.flush() {
                        tracing::error!(file = %shown, error = %e, "events file: flush failed; stopping the writer");
                        break;
                    }
                }
                let _ = out.flush();
                let _ = done_tx.send(());
            })
            .map_err(|source| EventsFileError {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(EventsFile {
            queue: Some(queue),
            done,
            counters,
        })
    }

    /// Forwards the fleet's events to the writer until `stop` says so (then it takes what
    /// is still on its way, see [`follow_events`]), the broadcast closes or the writer stops.
    /// Runs on the actix system (spawn it).
    pub fn forward(
        &self,
        events: broadcast::Receiver<Arc<Event>>,
        stop: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> {
        let queue = self.queue.clone();
        let counters = Arc::clone(&self.counters);
        async move {
            let Some(queue) = queue else { return };
            let lost = Arc::clone(&counters);
            follow_events(
                events,
                stop,
                |event| match queue.try_send(event) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        counters.lost.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(TrySendError::Disconnected(_)) => false,
                },
                |n| {
                    lost.lost.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        lost = n,
                        "events file: the writer fell behind; events were dropped"
                    );
                },
            )
            .await;
        }
    }

    /// Closes the queue and waits (at most `deadline`) for what is queued to reach the file.
    pub fn finish(mut self, deadline: Duration) -> Arc<EventsCounters> {
        self.queue = None;
        if let Err(RecvTimeoutError::Timeout) = self.done.recv_timeout(deadline) {
            tracing::warn!("events file: the writer did not finish in time");
        }
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::EventKind;
    use crate::protocol::{ConnectionEvent, ConnectionState};

    fn event(n: u64) -> Arc<Event> {
        Arc::new(Event {
            ts_ms: n,
            account: format!("u{n}"),
            kind: EventKind::Connection {
                state: ConnectionState::Connected,
                event: ConnectionEvent::Success,
                ext: serde_json::json!({}),
            },
        })
    }

    #[test]
    fn every_event_becomes_one_json_line_and_a_full_queue_counts_its_losses() {
        let path =
            std::env::temp_dir().join(format!("zimfleet-events-{}.jsonl", std::process::id()));
        let writer = EventsFile::create(&path, 4).unwrap();
        let (tx, rx) = broadcast::channel(2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Three events into a broadcast of 2: the subscriber lags by one.
        for n in 1..=3 {
            tx.send(event(n)).unwrap();
        }
        drop(tx);
        let (_stop_tx, stop) = watch::channel(false);
        rt.block_on(writer.forward(rx, stop));
        let counters = writer.finish(Duration::from_secs(5));
        assert_eq!(counters.lost.load(Ordering::Relaxed), 1);
        assert_eq!(counters.written.load(Ordering::Relaxed), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![(*event(2)).clone(), (*event(3)).clone()]);
        assert!(
            text.starts_with(
                "{\"ts_ms\":2,\"account\":\"u2\",\"kind\":\"connection\",\"state\":2,\"event\":0"
            ),
            "{text}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_named() {
        let err = EventsFile::create(Path::new("/nonexistent-dir/e.jsonl"), 4)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("events file /nonexistent-dir/e.jsonl: "),
            "{err}"
        );
    }
}
