//! The write side of a link: one write on the socket at a time; frames asked for while it is
//! in flight wait in one buffer (bounded) and go out together with the next write. An idle
//! link holds no buffer and no future: actix's `io::Writer` kept a buffer of the size of the
//! largest burst and a future for the link's life (docs/design.md, "What an account costs").

use actix::prelude::*;
use awc::BoxedSocket;
use bytes::BytesMut;
use tokio::io::{AsyncWriteExt as _, WriteHalf};

use super::Account;

/// Bytes that may wait behind a write in flight. Past this the socket is not taking what the
/// account writes: further frames are refused (their requests answer "not sent") until it
/// drains or the read side or the heartbeat finds the link dead.
pub(super) const MAX_QUEUED_BYTES: usize = 1 << 20;

/// The write half of a link and the frames waiting for it.
pub(super) struct LinkWriter {
    /// The socket's write half; `None` while a write holds it.
    io: Option<WriteHalf<BoxedSocket>>,
    /// Encoded frames waiting for the write in flight to end.
    queued: BytesMut,
    /// The write in flight.
    in_flight: Option<SpawnHandle>,
    /// A write failed: nothing more is written on this link.
    broken: bool,
}

impl LinkWriter {
    /// A writer over the link's write half.
    pub(super) fn new(io: WriteHalf<BoxedSocket>) -> Self {
        Self {
            io: Some(io),
            queued: BytesMut::new(),
            in_flight: None,
            broken: false,
        }
    }

    /// Queues one encoded frame; false when the link cannot take it. The first frame behind
    /// nothing becomes the buffer itself (no copy: most writes are one frame).
    pub(super) fn push(&mut self, frame: BytesMut) -> bool {
        if self.broken || self.queued.len() + frame.len() > MAX_QUEUED_BYTES {
            return false;
        }
        if self.queued.is_empty() {
            self.queued = frame;
        } else {
            self.queued.extend_from_slice(&frame);
        }
        true
    }

    /// The write in flight, to cancel with the link.
    pub(super) fn in_flight(&self) -> Option<SpawnHandle> {
        self.in_flight
    }
}

impl Account {
    /// Starts a write of everything queued, unless one is in flight (its end starts the next).
    pub(super) fn flush_link(&mut self, ctx: &mut Context<Self>) {
        let generation = self.generation;
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let w = &mut link.writer;
        if w.in_flight.is_some() || w.queued.is_empty() {
            return;
        }
        let Some(mut io) = w.io.take() else {
            return;
        };
        let buf = std::mem::take(&mut w.queued);
        let write = async move {
            let result = async {
                io.write_all(&buf).await?;
                io.flush().await
            }
            .await;
            (io, result)
        };
        let done = write.into_actor(self).map(move |(io, result), act, ctx| {
            if act.generation != generation {
                return; // the link is gone; its socket is dropped here
            }
            let Some(link) = act.link.as_mut() else {
                return;
            };
            link.writer.in_flight = None;
            match result {
                Ok(()) => {
                    link.writer.io = Some(io);
                    act.flush_link(ctx);
                }
                // The read side sees the broken socket too, and the heartbeat backs it up.
                Err(e) => {
                    tracing::debug!(account = %act.user_id, error = %e, "socket write error");
                    link.writer.broken = true;
                    link.writer.queued = BytesMut::new();
                }
            }
        });
        let handle = ctx.spawn(done);
        if let Some(link) = self.link.as_mut() {
            link.writer.in_flight = Some(handle);
        }
    }
}
