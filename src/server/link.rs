//! The handle through which anyone reaches one live connection: a bounded outbox of
//! pre-serialised frames and a close command. The connection task (session.rs) drains it.
//!
//! Fan-out calls [`SessionLink::push`] from any worker thread: it never blocks on the socket.
//! A full outbox closes the session (1008) instead of growing: one slow reader cannot make the
//! server hold unbounded memory.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use bytestring::ByteString;
use tokio::sync::Notify;

use crate::protocol::KickoutReason;

/// Why and how a connection is to be closed (set once; the first reason wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseCmd {
    /// Push `kickout` with this reason and ext, then close with `code`.
    Kickout {
        reason: KickoutReason,
        code: u16,
        ext: serde_json::Value,
    },
    /// A login from the same device replaced this session: close 1000, no push.
    Replaced,
    /// Fault injection: end the TCP connection without a close frame.
    Drop,
    /// The outbox overflowed: close 1008.
    Overflow,
    /// The server is stopping: close 1001.
    Shutdown,
}

#[derive(Default)]
struct Outbox {
    queue: VecDeque<ByteString>,
    close: Option<CloseCmd>,
}

/// Shared handle of one connection. Held by the users map (when logged in) and the
/// connection registry.
pub(crate) struct SessionLink {
    pub id: u64,
    capacity: usize,
    outbox: Mutex<Outbox>,
    notify: Notify,
}

/// What [`SessionLink::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushOutcome {
    Queued,
    /// The session is closing; the frame was dropped.
    Closing,
    /// The outbox was full: the session is now closing.
    Overflowed,
}

impl SessionLink {
    pub fn new(id: u64, capacity: usize) -> Self {
        Self {
            id,
            capacity,
            outbox: Mutex::new(Outbox::default()),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        // Nothing panics while holding this lock; recover rather than propagate poison.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one frame for the socket. Never blocks on I/O.
    pub fn push(&self, frame: ByteString) -> PushOutcome {
        let mut outbox = self.lock();
        if outbox.close.is_some() {
            return PushOutcome::Closing;
        }
        if outbox.queue.len() >= self.capacity {
            outbox.close = Some(CloseCmd::Overflow);
            outbox.queue = VecDeque::new();
            drop(outbox);
            self.notify.notify_one();
            return PushOutcome::Overflowed;
        }
        outbox.queue.push_back(frame);
        drop(outbox);
        self.notify.notify_one();
        PushOutcome::Queued
    }

    /// Asks the connection to close; the first command wins. Returns whether this one was
    /// taken.
    pub fn close(&self, cmd: CloseCmd) -> bool {
        let mut outbox = self.lock();
        if outbox.close.is_some() {
            return false;
        }
        outbox.close = Some(cmd);
        drop(outbox);
        self.notify.notify_one();
        true
    }

    /// Takes everything queued and the close command, if any (the connection task's side).
    pub fn take(&self) -> (VecDeque<ByteString>, Option<CloseCmd>) {
        let mut outbox = self.lock();
        let queue = std::mem::take(&mut outbox.queue);
        (queue, outbox.close.clone())
    }

    /// Resolves when something was pushed or a close was asked since the last take.
    pub async fn wait(&self) {
        self.notify.notified().await
    }

    /// Whether frames or a close command wait to be taken.
    pub fn has_work(&self) -> bool {
        let outbox = self.lock();
        !outbox.queue.is_empty() || outbox.close.is_some()
    }

    /// Resolves with the close command once one is set (used while a write is stuck).
    pub async fn close_requested(&self) -> CloseCmd {
        loop {
            let notified = self.notify.notified();
            if let Some(cmd) = self.lock().close.clone() {
                return cmd;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_outbox_closes_instead_of_growing() {
        let link = SessionLink::new(1, 2);
        assert_eq!(link.push("a".into()), PushOutcome::Queued);
        assert_eq!(link.push("b".into()), PushOutcome::Queued);
        assert_eq!(link.push("c".into()), PushOutcome::Overflowed);
        assert_eq!(link.push("d".into()), PushOutcome::Closing);
        let (queue, close) = link.take();
        assert!(queue.is_empty());
        assert_eq!(close, Some(CloseCmd::Overflow));
        assert!(!link.close(CloseCmd::Drop), "first close wins");
    }

    #[test]
    fn take_drains_in_order() {
        let link = SessionLink::new(1, 8);
        link.push("a".into());
        link.push("b".into());
        let (queue, close) = link.take();
        assert_eq!(queue, ["a", "b"]);
        assert_eq!(close, None);
        assert!(link.take().0.is_empty());
    }
}
