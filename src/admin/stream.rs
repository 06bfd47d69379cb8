//! GET /events: the fleet's events as WebSocket text frames, one JSON event each.
//!
//! The response body is a stream the socket pulls: a frame is made only when the previous
//! one was taken, so a slow client never makes a queue grow here. It falls behind on the
//! fleet's bounded broadcast instead, loses the oldest events and is told so with
//! `{"kind":"events_lost","lost":N}`. A ping every 15 s finds dead clients; a Close from
//! the client is answered and ends the stream.
//!
//! With `?messages=true` the stream also carries the messages the fleet's accounts receive
//! (`{"kind":"message",...}` lines from the admin face's own feed, see [`super::feed`]).

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
    /// Message lines, when the client asked for them.
    messages: Option<broadcast::Receiver<Arc<str>>>,
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

/// The frames of one /events client: the fleet's `events`, and `messages` lines if given.
pub fn event_frames<P>(
    events: broadcast::Receiver<Arc<Event>>,
    messages: Option<broadcast::Receiver<Arc<str>>>,
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
        messages,
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
        let frame = s.next_frame().await?;
        Some((frame, s))
    })
}

impl<P> State<P>
where
    P: Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin + 'static,
{
    /// The next frame to send; `None` ends the stream.
    async fn next_frame(&mut self) -> Option<Result<Bytes, actix_web::Error>> {
        if self.closing {
            return None;
        }
        loop {
            if self.draining {
                let step = match self.events.try_recv() {
                    Ok(event) => event_message(&event),
                    Err(TryRecvError::Lagged(n)) => self.lagged(n),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => {
                        self.closing = true;
                        Step::Send(going_away())
                    }
                };
                match self.encode(step) {
                    Some(frame) => return Some(frame),
                    None => continue,
                }
            }
            // Frames left over from an earlier chunk come first.
            if !self.incoming.is_empty() {
                let step = self.client_frames();
                if let Some(frame) = self.encode(step) {
                    return Some(frame);
                }
            }
            let step = self.wait().await;
            if let Step::End = step {
                return None;
            }
            if let Some(frame) = self.encode(step) {
                return Some(frame);
            }
        }
    }

    /// Waits for the next thing to do: an event, a message line, a stop, a client frame or
    /// the ping.
    async fn wait(&mut self) -> Step {
        tokio::select! {
            event = self.events.recv() => match event {
                Ok(event) => event_message(&event),
                Err(RecvError::Lagged(n)) => self.lagged(n),
                Err(RecvError::Closed) => {
                    self.closing = true;
                    Step::Send(going_away())
                }
            },
            line = next_line(&mut self.messages) => match line {
                Ok(line) => Step::Send(Message::Text(line.as_ref().into())),
                Err(RecvError::Lagged(n)) => self.lagged(n),
                Err(RecvError::Closed) => {
                    self.messages = None;
                    Step::Nothing
                }
            },
            changed = self.stopping.changed() => {
                self.draining = changed.is_err() || *self.stopping.borrow();
                Step::Nothing
            }
            chunk = self.payload.next() => match chunk {
                Some(Ok(bytes)) => {
                    self.incoming.extend_from_slice(&bytes);
                    self.client_frames()
                }
                // The client went away: nothing more to send.
                Some(Err(_)) | None => Step::End,
            },
            _ = self.ping.tick() => Step::Send(Message::Ping(Bytes::new())),
        }
    }
}

/// The next message line; never, when the client did not ask for them.
async fn next_line(
    messages: &mut Option<broadcast::Receiver<Arc<str>>>,
) -> Result<Arc<str>, RecvError> {
    match messages {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
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

    /// Decodes the frames the server sent, as a client would.
    fn decode(bytes: &Bytes) -> Frame {
        let mut codec = Codec::new().client_mode();
        let mut buf = BytesMut::from(&bytes[..]);
        codec.decode(&mut buf).unwrap().unwrap()
    }

    fn text(frame: Frame) -> String {
        match frame {
            Frame::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
            other => panic!("not a text frame: {other:?}"),
        }
    }

    #[test]
    fn a_lagging_client_is_told_what_it_lost_and_a_stop_drains_then_closes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = broadcast::channel(2);
            let (stop_tx, stop_rx) = watch::channel(false);
            let lost = Arc::new(AtomicU64::new(0));
            let payload =
                futures_util::stream::pending::<Result<Bytes, actix_web::error::PayloadError>>();
            let frames = event_frames(rx, None, payload, Arc::clone(&lost), stop_rx);
            futures_util::pin_mut!(frames);
            // The first ping comes at once (interval's first tick).
            assert!(matches!(
                decode(&frames.next().await.unwrap().unwrap()),
                Frame::Ping(_)
            ));
            for n in 1..=3 {
                tx.send(event(n)).unwrap();
            }
            let first = text(decode(&frames.next().await.unwrap().unwrap()));
            assert_eq!(first, "{\"kind\":\"events_lost\",\"lost\":1}");
            assert_eq!(lost.load(Ordering::Relaxed), 1);
            let second: Event =
                serde_json::from_str(&text(decode(&frames.next().await.unwrap().unwrap())))
                    .unwrap();
            assert_eq!(second, *event(2));
            tx.send(event(4)).unwrap();
            stop_tx.send(true).unwrap();
            // Stopping: what is queued still goes out, then Close (1001), then the end.
            let mut rest = Vec::new();
            while let Some(frame) = frames.next().await {
                rest.push(decode(&frame.unwrap()));
            }
            assert_eq!(rest.len(), 3, "{rest:?}");
            assert_eq!(
                text(rest.remove(0)),
                serde_json::to_string(&*event(3)).unwrap()
            );
            assert_eq!(
                text(rest.remove(0)),
                serde_json::to_string(&*event(4)).unwrap()
            );
            match rest.remove(0) {
                Frame::Close(Some(reason)) => assert_eq!(reason.code, CloseCode::Away),
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn a_client_ping_is_answered_and_its_close_ends_the_stream_even_in_one_chunk() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_tx, rx) = broadcast::channel::<Arc<Event>>(2);
            let (_stop_tx, stop_rx) = watch::channel(false);
            // What a client sends: masked frames.
            let mut client = Codec::new().client_mode();
            let mut sent = BytesMut::new();
            client
                .encode(Message::Ping(Bytes::from_static(b"hi")), &mut sent)
                .unwrap();
            let ping = sent.split().freeze();
            client
                .encode(Message::Close(Some(CloseCode::Normal.into())), &mut sent)
                .unwrap();
            let close = sent.split().freeze();
            let mut both = BytesMut::from(&ping[..]);
            both.extend_from_slice(&close);
            let payload = futures_util::stream::iter(vec![Ok(both.freeze())])
                .chain(futures_util::stream::pending());
            let frames = event_frames(
                rx,
                None,
                Box::pin(payload),
                Arc::new(AtomicU64::new(0)),
                stop_rx,
            );
            futures_util::pin_mut!(frames);
            let mut got = Vec::new();
            while let Some(frame) = frames.next().await {
                match decode(&frame.unwrap()) {
                    Frame::Ping(_) => {}
                    other => got.push(other),
                }
            }
            assert_eq!(got.len(), 2, "{got:?}");
            assert!(
                matches!(&got[0], Frame::Pong(p) if &p[..] == b"hi"),
                "{got:?}"
            );
            assert!(
                matches!(&got[1], Frame::Close(Some(r)) if r.code == CloseCode::Normal),
                "{got:?}"
            );
        });
    }
}
