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
use tokio::sync::broadcast::{self, error::RecvError};

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
) -> impl Stream<Item = Result<Bytes, actix_web::Error>>
where
    P: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin + 'static,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        events,
        payload,
        codec: Codec::new(),
        incoming: BytesMut::new(),
        ping,
        lost,
        closing: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if s.closing {
            return None;
        }
        loop {
            let step = tokio::select! {
                event = s.events.recv() => match event {
                    Ok(event) => match serde_json::to_string(&*event) {
                        Ok(line) => Step::Send(Message::Text(line.into())),
                        Err(_) => Step::Nothing,
                    },
                    Err(RecvError::Lagged(n)) => {
                        s.lost.fetch_add(n, Ordering::Relaxed);
                        Step::Send(Message::Text(
                            format!("{{\"kind\":\"events_lost\",\"lost\":{n}}}").into(),
                        ))
                    }
                    Err(RecvError::Closed) => {
                        s.closing = true;
                        Step::Send(Message::Close(Some(CloseReason {
                            code: CloseCode::Away,
                            description: Some("zimfleet is shutting down".into()),
                        })))
                    }
                },
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
            match step {
                Step::Send(message) => {
                    let mut out = BytesMut::new();
                    if s.codec.encode(message, &mut out).is_err() {
                        return None;
                    }
                    return Some((Ok(out.freeze()), s));
                }
                Step::Nothing => continue,
                Step::End => return None,
            }
        }
    })
}

impl<P> State<P> {
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
