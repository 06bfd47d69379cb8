//! GET /events: the fleet's events as WebSocket text frames, one JSON event each.
//!
//! The response body is a stream the socket pulls: a frame is made only when the previous
//! one was taken, so a slow client never makes a queue grow here. It falls behind on the
//! fleet's bounded broadcast instead, loses the oldest events and is told so with
//! `{"kind":"events_lost","lost":N}`. A ping every 15 s finds dead clients; a Close from
//! the client is answered and ends the stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Message};
use actix_web::web::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::watch;

use crate::client::Event;

/// How often the server pings a stream's client.
const PING_EVERY: Duration = Duration::from_secs(15);

struct State<P> {
    events: broadcast::Receiver<Arc<Event>>,
    payload: P,
    codec: Codec,
    incoming: BytesMut,
    ping: tokio::time::Interval,
    lost: Arc<AtomicU64>,
    /// Turns true when the admin face stops: send what is queued, then Close.
    stopping: watch::Receiver<bool>,
    draining: bool,
    /// A Close was sent: the stream ends after it.
    closing: bool,
}

/// What the stream does next.
enum Step {
    Send(Message),
    Nothing,
    End,
}

/// The frames of one /events client.
pub fn event_frames<P>(
    events: broadcast::Receiver<Arc<Event>>,
    payload: P,
    lost: Arc<AtomicU64>,
    stopping: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>>
where
    P: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin + 'static,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let draining = *stopping.borrow();
    let state = State {
        events,
        payload,
        codec: Codec::new(),
        incoming: BytesMut::new(),
        ping,
        lost,
        draining,
        stopping,
        closing: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if s.closing {
            return None;
        }
        loop {
            if s.draining {
                let step = match s.events.try_recv() {
                    Ok(event) => event_message(&event),
                    Err(TryRecvError::Lagged(n)) => s.lagged(n),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => {
                        s.closing = true;
                        Step::Send(going_away())
                    }
                };
                match s.encode(step) {
                    Some(frame) => return Some((frame, s)),
                    None => continue,
                }
            }
            let step = tokio::select! {
                event = s.events.recv() => match event {
                    Ok(event) => event_message(&event),
                    Err(RecvError::Lagged(n)) => s.lagged(n),
                    Err(RecvError::Closed) => {
                        s.closing = true;
                        Step::Send(going_away())
                    }
                },
                changed = s.stopping.changed() => {
                    s.draining = changed.is_err() || *s.stopping.borrow();
                    Step::Nothing
                }
                chunk = s.payload.next() => match chunk {
                    Some(Ok(bytes)) => {
                        s.incoming.extend_from_slice(&bytes);
                        s.client_frames()
                    }
                    // The client went away: nothing more to send.
                    Some(Err(_)) | None => Step::End,
                },
                _ = s.ping.tick() => Step::Send(Message::Ping(Bytes::new())),
            };
            if let Step::End = step {
                return None;
            }
            if let Some(frame) = s.encode(step) {
                return Some((frame, s));
            }
        }
    })
}

fn event_message(event: &Event) -> Step {
    match serde_json::to_string(event) {
        Ok(line) => Step::Send(Message::Text(line.into())),
        Err(_) => Step::Nothing,
    }
}

fn going_away() -> Message {
    Message::Close(Some(CloseReason {
        code: CloseCode::Away,
        description: Some("zimfleet is shutting down".into()),
    }))
}

impl<P> State<P> {
    /// The client fell `n` events behind: count them and tell it.
    fn lagged(&mut self, n: u64) -> Step {
        self.lost.fetch_add(n, Ordering::Relaxed);
        Step::Send(Message::Text(
            format!("{{\"kind\":\"events_lost\",\"lost\":{n}}}").into(),
        ))
    }

    /// The frame of a step, if it sends one (an encoding failure ends the stream).
    fn encode(&mut self, step: Step) -> Option<Result<Bytes, actix_web::Error>> {
        let Step::Send(message) = step else {
            return None;
        };
        let mut out = BytesMut::new();
        match self.codec.encode(message, &mut out) {
            Ok(()) => Some(Ok(out.freeze())),
            Err(_) => {
                self.closing = true;
                Some(Err(actix_web::error::ErrorInternalServerError(
                    "frame encoding failed",
                )))
            }
        }
    }

    /// Reads the client's complete frames: answers the first Ping or Close; ignores the rest
    /// (the stream is one-way).
    fn client_frames(&mut self) -> Step {
        loop {
            match self.codec.decode(&mut self.incoming) {
                Ok(Some(Frame::Ping(payload))) => return Step::Send(Message::Pong(payload)),
                Ok(Some(Frame::Close(reason))) => {
                    self.closing = true;
                    return Step::Send(Message::Close(reason));
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Step::Nothing,
                Err(_) => {
                    self.closing = true;
                    return Step::Send(Message::Close(Some(CloseCode::Protocol.into())));
                }
            }
        }
    }
}
