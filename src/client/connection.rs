//! The transport: one awc WebSocket per account, opened on the account's own arbiter thread.
//!
//! awc's `Client` is `!Send` (Rc inside), so each arbiter thread builds its own, once, with
//! `Connector::new().limit(0)` (the default pool limit of 100 would cap a thread at 100
//! sockets, since a WebSocket holds its pool slot for life) and HTTP/1.1 only (WebSockets
//! cannot tunnel over h2).

use std::time::Duration;

use actix::io::SinkWrite;
use actix_codec::Framed;
use awc::error::WsProtocolError;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::stream::{SplitSink, SplitStream, Stream, StreamExt as _};

use crate::protocol::MAX_FRAME_BYTES;

pub(crate) type WsFramed = Framed<BoxedSocket, Codec>;
pub(crate) type WsSink = SinkWrite<Message, SplitSink<WsFramed, Message>>;

/// One item of a link's read side, tagged with the link's generation so a late item from an
/// older link is recognised and dropped. `frame: None` marks the end of the stream.
pub(crate) struct LinkItem {
    pub generation: u32,
    pub frame: Option<Result<Frame, WsProtocolError>>,
}

thread_local! {
    static WS_CLIENT: awc::Client = awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        // The account wraps connect in its own (shorter) deadline; this only bounds the
        // worst case.
        .timeout(Duration::from_secs(60))
        .connector(awc::Connector::new().limit(0).timeout(Duration::from_secs(60)))
        .finish();
}

/// Why a connect attempt failed (logged; the account treats every one as a network error).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("websocket connect failed: {0}")]
    Ws(String),
}

/// Opens a WebSocket to `url` within `deadline`.
pub(crate) async fn open(url: String, deadline: Duration) -> Result<WsFramed, ConnectError> {
    let client = WS_CLIENT.with(|c| c.clone());
    let request = client.ws(url.as_str()).max_frame_size(MAX_FRAME_BYTES);
    match tokio::time::timeout(deadline, request.connect()).await {
        Err(_) => Err(ConnectError::Timeout(deadline)),
        Ok(Err(e)) => Err(ConnectError::Ws(e.to_string())),
        Ok(Ok((_response, framed))) => Ok(framed),
    }
}

/// The read side as a stream of [`LinkItem`]s ending with an end marker.
pub(crate) fn tagged(
    stream: SplitStream<WsFramed>,
    generation: u32,
) -> impl Stream<Item = LinkItem> + 'static {
    stream
        .map(move |frame| LinkItem {
            generation,
            frame: Some(frame),
        })
        .chain(futures_util::stream::once(async move {
            LinkItem {
                generation,
                frame: None,
            }
        }))
}
