//! The transport: one WebSocket per account, opened on the account's own arbiter thread.
//!
//! awc does the HTTP upgrade; its `Client` is `!Send` (Rc inside), so each arbiter thread
//! builds its own, once, with `Connector::new().limit(0)` (the default pool limit of 100 would
//! cap a thread at 100 sockets, since a WebSocket holds its pool slot for life) and HTTP/1.1
//! only (WebSockets cannot tunnel over h2; the trust's ALPN says so). A fleet's [`ClientTrust`] (public roots plus its
//! `ca_file`, docs/tls.md) picks which of the thread's clients serves it.
//!
//! A `wss://` connect refused for the server's certificate (unknown CA, wrong name, expired)
//! is a network failure like any other: the account retries on its backoff, since the
//! server's certificate may be fixed while it waits. It is logged as a warning once per
//! account and reason, not once per retry.
//!
//! After the upgrade the socket leaves awc's `Framed`: its two 8 KiB buffers stay allocated
//! for the link's life and, as the cursor walks through them frame after frame, end up fully
//! resident (an idle account measured 14 KiB at first and 21 KiB after a few hundred
//! heartbeats). Here the read buffer exists only while bytes wait to be decoded and each
//! write encodes into a buffer sized for that frame, so an idle link holds no buffer at all.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::{Decoder as _, Encoder as _};
use awc::error::WsProtocolError;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use bytes::BytesMut;
use futures_util::stream::Stream;
use tokio::io::{AsyncRead, ReadBuf, ReadHalf, WriteHalf};

use crate::protocol::MAX_FRAME_BYTES;
use crate::tls::{ClientCache, ClientTrust};

/// Bytes asked of the socket per read; the buffer grows only for a frame that needs it.
const READ_CHUNK: usize = 1024;

thread_local! {
    static WS_CLIENTS: ClientCache = const { ClientCache::new() };
}

/// This thread's WebSocket client for `trust`.
fn ws_client(trust: &ClientTrust) -> awc::Client {
    WS_CLIENTS.with(|clients| {
        clients.get(trust, |tls| {
            // HTTP/1.1 only comes from the trust's ALPN: awc's `max_http_version` would
            // rebuild the connector's TLS with the public roots alone, dropping `ca_file`.
            awc::Client::builder()
                // The account wraps connect in its own (shorter) deadline; this only bounds
                // the worst case.
                .timeout(Duration::from_secs(60))
                .connector(
                    awc::Connector::new()
                        .rustls_0_23(tls)
                        .limit(0)
                        .timeout(Duration::from_secs(60)),
                )
                .finish()
        })
    })
}

/// Why a connect attempt failed (logged; the account treats every one as a network error).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The TLS handshake refused the server's certificate; the text says why.
    #[error("wss:// connect failed: {0}")]
    Certificate(String),
    #[error("websocket connect failed: {0}")]
    Ws(String),
}

impl ConnectError {
    fn from_ws(error: awc::error::WsClientError) -> Self {
        use awc::error::{ConnectError as Connect, SendRequestError, WsClientError};
        if let WsClientError::SendRequest(SendRequestError::Connect(Connect::Io(io))) = &error {
            if let Some(reason) = crate::tls::certificate_rejection(io) {
                return Self::Certificate(reason);
            }
        }
        Self::Ws(error.to_string())
    }
}

/// Accounts whose last connect was refused for the server's certificate, with the reason
/// already logged. An entry lives only while its account keeps failing that way.
static CERTIFICATE_WARNED: Mutex<Option<HashMap<Arc<str>, String>>> = Mutex::new(None);
/// Entries in [`CERTIFICATE_WARNED`]: a successful connect takes the lock only when some.
static CERTIFICATE_WARNED_LEN: AtomicUsize = AtomicUsize::new(0);

/// Logs a certificate refusal once per account and reason (a retry storm logs nothing more).
fn warn_certificate_once(account: &Arc<str>, url: &str, reason: &str) {
    let mut warned = CERTIFICATE_WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let warned = warned.get_or_insert_with(HashMap::new);
    if warned.get(account).is_some_and(|told| told == reason) {
        return;
    }
    tracing::warn!(
        account = %account,
        backend = url,
        "wss:// connect failed: {reason} (retried with backoff; logged once per account)"
    );
    warned.insert(Arc::clone(account), reason.to_owned());
    CERTIFICATE_WARNED_LEN.store(warned.len(), Ordering::Relaxed);
}

/// Forgets an account's certificate warning once it connected.
fn connected(account: &Arc<str>) {
    if CERTIFICATE_WARNED_LEN.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut warned = CERTIFICATE_WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(warned) = warned.as_mut() {
        if warned.remove(account).is_some() {
            tracing::info!(account = %account, "wss:// connect succeeded again");
        }
        CERTIFICATE_WARNED_LEN.store(warned.len(), Ordering::Relaxed);
    }
}

/// An open WebSocket, ready to split between the account's read stream and its writer.
pub(crate) struct WsLink {
    pub reader: WsReader,
    pub writer: WriteHalf<BoxedSocket>,
    pub encoder: WsEncoder,
}

/// Opens a WebSocket to `url` within `deadline` for `account`, verifying a `wss://` server
/// with `trust`. The future borrows nothing (it runs on the account's actor).
pub(crate) fn open(
    url: String,
    deadline: Duration,
    trust: &ClientTrust,
    account: &Arc<str>,
) -> impl std::future::Future<Output = Result<WsLink, ConnectError>> + 'static {
    let client = ws_client(trust);
    let account = Arc::clone(account);
    async move { connect(client, url, deadline, &account).await }
}

async fn connect(
    client: awc::Client,
    url: String,
    deadline: Duration,
    account: &Arc<str>,
) -> Result<WsLink, ConnectError> {
    let request = client.ws(url.as_str()).max_frame_size(MAX_FRAME_BYTES);
    let framed = match tokio::time::timeout(deadline, request.connect()).await {
        Err(_) => return Err(ConnectError::Timeout(deadline)),
        Ok(Err(e)) => {
            let error = ConnectError::from_ws(e);
            if let ConnectError::Certificate(reason) = &error {
                warn_certificate_once(account, &url, reason);
            }
            return Err(error);
        }
        Ok(Ok((_response, framed))) => framed,
    };
    connected(account);
    let parts = framed.into_parts();
    let (read, writer) = tokio::io::split(parts.io);
    // Bytes that came with the upgrade response stay first in line.
    let buf = if parts.read_buf.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&parts.read_buf[..])
    };
    Ok(WsLink {
        reader: WsReader {
            io: read,
            codec: parts.codec.clone(),
            buf,
            done: false,
        },
        writer,
        encoder: WsEncoder(parts.codec),
    })
}

/// Encodes messages to whole frames (client frames are masked).
pub(crate) struct WsEncoder(Codec);

impl WsEncoder {
    pub fn encode(&mut self, message: Message) -> Result<BytesMut, WsProtocolError> {
        let mut out = BytesMut::new();
        self.0.encode(message, &mut out)?;
        Ok(out)
    }
}

/// The read side: WebSocket frames, with a buffer only while bytes wait to be decoded.
pub(crate) struct WsReader {
    io: ReadHalf<BoxedSocket>,
    codec: Codec,
    buf: BytesMut,
    done: bool,
}

impl WsReader {
    /// Lets go of an empty buffer, so an idle link keeps no memory for it.
    fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }
}

impl Stream for WsReader {
    type Item = Result<Frame, WsProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => {
                    this.release_if_empty();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let start = this.buf.len();
            this.buf.resize(start + READ_CHUNK, 0);
            let mut read = ReadBuf::new(&mut this.buf[start..]);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    this.buf.truncate(start + n);
                    if n == 0 {
                        this.done = true;
                        return Poll::Ready(None);
                    }
                }
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(WsProtocolError::Io(e))));
                }
                Poll::Pending => {
                    this.buf.truncate(start);
                    this.release_if_empty();
                    return Poll::Pending;
                }
            }
        }
    }
}

/// One item of a link's read side, tagged with the link's generation so a late item from an
/// older link is recognised and dropped. `frame: None` marks the end of the stream.
pub(crate) struct LinkItem {
    pub generation: u32,
    pub frame: Option<Result<Frame, WsProtocolError>>,
}

/// The read side as a stream of [`LinkItem`]s ending with an end marker.
pub(crate) fn tagged(reader: WsReader, generation: u32) -> impl Stream<Item = LinkItem> + 'static {
    use futures_util::stream::StreamExt as _;
    reader
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A `wss://` URL goes through a TLS handshake: against a plain TCP listener that handshake
    /// fails with an error (no panic for a missing crypto provider, no hang).
    #[actix_rt::test]
    async fn wss_reaches_a_tls_handshake() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            // answer the ClientHello with plain text, then close
            if let Ok((mut s, _)) = listener.accept() {
                use std::io::Write;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let url = format!("wss://localhost:{}/ws", addr.port());
        let trust = crate::tls::ClientTrust::public_roots();
        let result = super::open(url, Duration::from_secs(5), &trust, &"u1".into()).await;
        let err = result
            .err()
            .expect("a plain TCP peer cannot complete a TLS handshake");
        assert!(!err.to_string().contains("timed out"), "{err}");
    }
}
