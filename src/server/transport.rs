//! The lean WebSocket transport of a server session (docs/server.md, "Design for load").
//!
//! actix-http parses the upgrade request and, through its upgrade service, hands over the
//! socket with the HTTP/1 codec and its buffers. [`accept`] answers the handshake, lets go of
//! those buffers and of the HTTP dispatcher, and splits the socket into a [`FrameReader`] and a
//! [`FrameWriter`] owned by the session task. Neither holds a buffer while the session is
//! idle: the read buffer exists only while bytes of an unfinished frame wait, and the write
//! buffer only while a frame is being written. Frame limits and errors are those of
//! docs/protocol.md: a frame or a reassembled fragmented message over the limit is
//! [`ReadError::TooBig`], anything else RFC 6455 forbids is [`ReadError::Protocol`].
//!
//! The socket is a [`WsSocket`]: plain TCP (split into its owned halves, no lock, nothing
//! added per session) or the rustls stream of a TLS listener (docs/tls.md). The reader and
//! writer are generic over the halves, so a plain session carries no TLS cost.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_codec::{Decoder as _, Encoder as _, Framed};
use actix_http::body::BodySize;
use actix_http::ws::{self, CloseReason, Codec, Frame, Item, Message, ProtocolError};
use actix_http::{h1, Request, Response};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::rt::net::TcpStream;
use bytes::{Buf as _, Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::SinkExt as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Bytes asked of the socket per read; the buffer grows only for a frame that needs more.
const READ_CHUNK: usize = 4096;

/// The path that upgrades to the WebSocket of docs/protocol.md.
pub(crate) const WS_PATH: &str = "/ws";

/// A socket a session can own after the handshake: split into a read and a write half.
pub(crate) trait WsSocket: AsyncRead + AsyncWrite + Unpin + 'static {
    /// The read half.
    type Read: AsyncRead + Unpin + 'static;
    /// The write half.
    type Write: AsyncWrite + Unpin + 'static;
    /// Turns Nagle off (replies and pushes are small frames written as they come: no delay
    /// behind an unacknowledged one) and splits the socket.
    fn into_halves(self) -> io::Result<(Self::Read, Self::Write)>;
}

impl WsSocket for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    fn into_halves(self) -> io::Result<(OwnedReadHalf, OwnedWriteHalf)> {
        self.set_nodelay(true)?;
        Ok(self.into_split())
    }
}

impl WsSocket for TlsStream<TcpStream> {
    type Read = ReadHalf<Self>;
    type Write = WriteHalf<Self>;

    fn into_halves(self) -> io::Result<(Self::Read, Self::Write)> {
        self.get_ref().0.set_nodelay(true)?;
        Ok(tokio::io::split(self))
    }
}

/// A socket that completed the WebSocket handshake.
pub(crate) struct Upgraded<S: WsSocket> {
    pub reader: FrameReader<S::Read>,
    pub writer: FrameWriter<S::Write>,
}

/// Answers an upgrade request. `Ok(Some(..))`: the handshake was accepted (101 sent) and the
/// socket is now a WebSocket; `Ok(None)`: the request was refused with its HTTP status (404
/// off [`WS_PATH`], the handshake error's status otherwise) and the socket is closed.
pub(crate) async fn accept<S: WsSocket>(
    req: Request,
    mut framed: Framed<S, h1::Codec>,
    max_frame_bytes: usize,
) -> io::Result<Option<Upgraded<S>>> {
    let answer = if req.path() != WS_PATH {
        Err(Response::not_found())
    } else {
        ws::handshake(req.head()).map_err(Response::from)
    };
    match answer {
        Ok(mut accepted) => {
            let response = accepted.finish().drop_body();
            framed
                .send(h1::Message::Item((response, BodySize::None)))
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        Err(refused) => {
            let response = refused.drop_body();
            framed
                .send(h1::Message::Item((response, BodySize::Sized(0))))
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            return Ok(None);
        }
    }
    let parts = framed.into_parts();
    // Bytes the client sent right after its handshake stay first in line; the HTTP buffers
    // themselves are dropped here.
    let buf = if parts.read_buf.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&parts.read_buf[..])
    };
    let (read, write) = parts.io.into_halves()?;
    let codec = Codec::new().max_size(max_frame_bytes);
    Ok(Some(Upgraded {
        reader: FrameReader {
            io: read,
            codec: codec.clone(),
            buf,
            fragments: None,
            max_message_bytes: max_frame_bytes,
            done: false,
        },
        writer: FrameWriter {
            io: write,
            codec,
            pending: BytesMut::new(),
        },
    }))
}

/// One message from the client, fragments reassembled.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A text message (valid UTF-8).
    Text(ByteString),
    /// A binary message (not part of the protocol).
    Binary,
    /// A ping with its payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// A close frame with its reason, if it carried one.
    Close(Option<CloseReason>),
}

/// Why reading ended in a close from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// A frame, or a fragmented message as a whole, over the frame limit.
    TooBig,
    /// Anything else RFC 6455 forbids (an unmasked frame, a bad opcode, text that is not
    /// UTF-8, a fragment out of order).
    Protocol,
}

/// A fragmented message being reassembled.
struct Fragments {
    text: bool,
    data: BytesMut,
}

/// The read side: whole messages, with a buffer only while bytes wait to be decoded.
pub(crate) struct FrameReader<R> {
    io: R,
    codec: Codec,
    buf: BytesMut,
    fragments: Option<Fragments>,
    max_message_bytes: usize,
    done: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// The next message; `None` once the peer ended the stream (or the socket failed). Cancel
    /// safe: a partly read frame stays buffered for the next call.
    pub async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, ReadError>>> {
        loop {
            let frame = match ready!(self.poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => frame,
            };
            let message = match frame {
                Frame::Text(bytes) => text(bytes),
                Frame::Binary(_) => Ok(Incoming::Binary),
                Frame::Ping(payload) => Ok(Incoming::Ping(payload)),
                Frame::Pong(_) => Ok(Incoming::Pong),
                Frame::Close(reason) => Ok(Incoming::Close(reason)),
                Frame::Continuation(item) => match self.on_fragment(item) {
                    None => continue,
                    Some(message) => message,
                },
            };
            if message.is_err() {
                self.done = true;
            }
            return Poll::Ready(Some(message));
        }
    }

    /// Adds one fragment; the whole message once the last one came.
    fn on_fragment(&mut self, item: Item) -> Option<Result<Incoming, ReadError>> {
        let (first_text, bytes, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        if let Some(text) = first_text {
            self.fragments = Some(Fragments {
                text,
                data: BytesMut::new(),
            });
        }
        // The codec refuses a continuation that has no start, so fragments are there.
        let Some(fragments) = self.fragments.as_mut() else {
            return Some(Err(ReadError::Protocol));
        };
        if fragments.data.len() + bytes.len() > self.max_message_bytes {
            self.fragments = None;
            return Some(Err(ReadError::TooBig));
        }
        fragments.data.extend_from_slice(&bytes);
        if !last {
            return None;
        }
        let whole = self.fragments.take().expect("checked above");
        Some(if whole.text {
            text(whole.data.freeze())
        } else {
            Ok(Incoming::Binary)
        })
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, ReadError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    self.release_if_empty();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    let error = match e {
                        ProtocolError::Overflow => ReadError::TooBig,
                        _ => ReadError::Protocol,
                    };
                    return Poll::Ready(Some(Err(error)));
                }
            }
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let mut read = ReadBuf::new(&mut self.buf[start..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    self.buf.truncate(start + n);
                    if n == 0 {
                        self.done = true;
                    }
                }
                // A reset or broken socket ends the stream like an end of input would.
                Poll::Ready(Err(_)) => self.done = true,
                Poll::Pending => {
                    self.buf.truncate(start);
                    self.release_if_empty();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Lets go of an empty buffer, so an idle session keeps no memory for it.
    fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }
}

fn text(bytes: Bytes) -> Result<Incoming, ReadError> {
    ByteString::try_from(bytes)
        .map(Incoming::Text)
        .map_err(|_| ReadError::Protocol)
}

/// The write side: frames are encoded into a buffer that lives only until they are written.
pub(crate) struct FrameWriter<W> {
    io: W,
    codec: Codec,
    /// Encoded bytes not yet written; empty (no allocation) while idle.
    pending: BytesMut,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Encodes one message behind whatever is still pending; [`FrameWriter::flush`] writes.
    pub fn queue(&mut self, message: Message) -> io::Result<()> {
        self.codec
            .encode(message, &mut self.pending)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Writes everything queued. Cancel safe: bytes not yet written stay queued, so a frame
    /// is never cut in the middle by a later one.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            let n = self.io.write(&self.pending).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.pending.advance(n);
        }
        self.pending = BytesMut::new();
        // A TLS stream may keep the last record in rustls until flushed; for plain TCP this
        // is ready at once.
        self.io.flush().await
    }

    /// Queues and writes one message.
    pub async fn send(&mut self, message: Message) -> io::Result<()> {
        self.queue(message)?;
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (
        FrameReader<OwnedReadHalf>,
        FrameWriter<OwnedWriteHalf>,
        tokio::net::TcpStream,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read, write) = server.into_split();
        let codec = Codec::new().max_size(64);
        let reader = FrameReader {
            io: read,
            codec: codec.clone(),
            buf: BytesMut::new(),
            fragments: None,
            max_message_bytes: 64,
            done: false,
        };
        let writer = FrameWriter {
            io: write,
            codec,
            pending: BytesMut::new(),
        };
        (reader, writer, client)
    }

    /// Client frames (masked), encoded by one codec so fragments follow each other.
    fn client_frames(messages: Vec<Message>) -> BytesMut {
        let mut codec = Codec::new().client_mode();
        let mut out = BytesMut::new();
        for message in messages {
            codec.encode(message, &mut out).unwrap();
        }
        out
    }

    fn client_frame(message: Message) -> BytesMut {
        client_frames(vec![message])
    }

    #[actix_rt::test]
    async fn an_idle_reader_and_writer_hold_no_buffer() {
        let (mut reader, mut writer, mut client) = pair().await;
        client
            .write_all(&client_frame(Message::Text("hello".into())))
            .await
            .unwrap();
        match reader.next().await {
            Some(Ok(Incoming::Text(t))) => assert_eq!(&*t, "hello"),
            other => panic!("{other:?}"),
        }
        assert_eq!(reader.buf.capacity(), 0);
        writer.send(Message::Text("hi".into())).await.unwrap();
        assert_eq!(writer.pending.capacity(), 0);
    }

    #[actix_rt::test]
    async fn fragments_are_reassembled_and_limited_as_a_whole() {
        let (mut reader, _writer, mut client) = pair().await;
        let parts = vec![
            Message::Continuation(Item::FirstText(Bytes::from_static(b"ab"))),
            Message::Continuation(Item::Continue(Bytes::from_static(b"cd"))),
            Message::Continuation(Item::Last(Bytes::from_static(b"ef"))),
        ];
        client.write_all(&client_frames(parts)).await.unwrap();
        match reader.next().await {
            Some(Ok(Incoming::Text(t))) => assert_eq!(&*t, "abcdef"),
            other => panic!("{other:?}"),
        }
        let big = || Bytes::from(vec![b'x'; 40]);
        let parts = vec![
            Message::Continuation(Item::FirstText(big())),
            Message::Continuation(Item::Last(big())),
        ];
        client.write_all(&client_frames(parts)).await.unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap_err(), ReadError::TooBig);
        assert!(
            reader.next().await.is_none(),
            "nothing is read after an error"
        );
    }

    #[actix_rt::test]
    async fn bad_frames_are_told_apart() {
        let (mut reader, _writer, mut client) = pair().await;
        // unmasked
        client.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
        assert_eq!(
            reader.next().await.unwrap().unwrap_err(),
            ReadError::Protocol
        );
        let (mut reader, _writer, mut client) = pair().await;
        client
            .write_all(&client_frame(Message::Text("y".repeat(65).into())))
            .await
            .unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap_err(), ReadError::TooBig);
        let (mut reader, _writer, mut client) = pair().await;
        client
            .write_all(&client_frame(Message::Binary(Bytes::from_static(&[
                0xff, 0xfe,
            ]))))
            .await
            .unwrap();
        assert!(matches!(reader.next().await, Some(Ok(Incoming::Binary))));
        drop(client);
        assert!(
            reader.next().await.is_none(),
            "end of input ends the stream"
        );
    }
}
