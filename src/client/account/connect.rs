//! Getting a link up and taking it down: the retry schedule, admission, the token for the
//! login, the WebSocket, and what lives exactly as long as one link.

use std::time::{Duration, Instant};

use actix::io::{WriteHandler, Writer};
use actix::prelude::*;
use awc::ws::{Frame, Message as WsMessage};
use awc::BoxedSocket;
use governor::clock::Clock as _;
use rand::Rng as _;

use super::Account;
use crate::client::transport::{self, LinkItem, WriteError, WsEncoder, WsLink};
use crate::clock::unix_secs;
use crate::protocol::{ConnectionState, ErrorCode, Login, Request, ZimError};
use crate::session::token_clock::{login_token, LoginToken};
use crate::session::{ConnInput, DisconnectCause};
use crate::token::token04::client_check;

/// The open WebSocket and the timers that live as long as it.
pub(super) struct Link {
    writer: Writer<tokio::io::WriteHalf<BoxedSocket>, WriteError>,
    encoder: WsEncoder,
    stream: SpawnHandle,
    pub heartbeat: Option<SpawnHandle>,
    pub room_heartbeat: Option<SpawnHandle>,
}

impl Link {
    /// Queues one message; false when the socket is closing.
    pub fn write(&mut self, message: WsMessage) -> bool {
        if self.writer.closed() {
            return false;
        }
        match self.encoder.encode(message) {
            Ok(frame) => {
                self.writer.write(&frame);
                true
            }
            Err(_) => false,
        }
    }
}

impl Account {
    pub(super) fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        let retry = &self.shared.config.retry;
        let down_since = *self.down_since.get_or_insert_with(Instant::now);
        if let Some(limit) = retry.give_up_after {
            if down_since.elapsed() >= limit {
                self.conn_input(ConnInput::Lost(DisconnectCause::RetryWindowExhausted), ctx);
                return;
            }
        }
        let delay = self.backoff.next_delay(retry, &mut rand::thread_rng());
        let generation = self.generation;
        ctx.run_later(delay, move |act, ctx| {
            if act.generation == generation {
                act.conn_input(ConnInput::RetryDue, ctx);
            }
        });
    }

    /// Starts a connect attempt: admission, token, socket, login.
    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        self.generation = self.generation.wrapping_add(1);
        self.admit_then_connect(self.generation, ctx);
    }

    fn admit_then_connect(&mut self, generation: u32, ctx: &mut Context<Self>) {
        if generation != self.generation {
            return;
        }
        if let Some(until) = self.offline_until {
            if Instant::now() < until {
                self.lost(generation, DisconnectCause::ConnectFailed, ctx);
                return;
            }
            self.offline_until = None;
        }
        let admission = &self.shared.admission;
        if let Err(not_until) = admission.check() {
            let wait = not_until.wait_time_from(admission.clock().now());
            let wait = wait + Duration::from_millis(rand::thread_rng().gen_range(0..20));
            ctx.run_later(wait, move |act, ctx| {
                act.admit_then_connect(generation, ctx)
            });
            return;
        }
        if self.conn.state() == ConnectionState::Reconnecting {
            self.shared.metrics.relogins_attempted.inc();
        } else {
            self.shared.metrics.logins_attempted.inc();
        }
        let now = unix_secs() as i64;
        let limits = &self.shared.config.token_limits;
        let held = self
            .token
            .as_ref()
            .map(|t| client_check(t.expose(), now, limits));
        match login_token(held) {
            LoginToken::Held => self.open(generation, ctx),
            LoginToken::Fetch => self.fetch_token(generation, ctx),
        }
    }

    /// Asks the provider for a token, then opens the link. A provider that never answers
    /// counts as a network error, retried on the schedule.
    fn fetch_token(&mut self, generation: u32, ctx: &mut Context<Self>) {
        let deadline = self.shared.config.timings.connect_timeout;
        let fetch = tokio::time::timeout(deadline, self.provider.token(&self.user_id));
        fetch
            .into_actor(self)
            .map(move |result, act, ctx| {
                if generation != act.generation {
                    return;
                }
                let result = result.unwrap_or_else(|_| {
                    Err(ZimError::new(
                        ErrorCode::TIMEOUT,
                        "token provider timed out",
                    ))
                });
                match result {
                    Ok(token) => {
                        let now = unix_secs() as i64;
                        let limits = &act.shared.config.token_limits;
                        match client_check(token.expose(), now, limits) {
                            Ok(_) => {
                                act.token = Some(token);
                                act.open(generation, ctx);
                            }
                            Err(code) => {
                                act.lost(generation, DisconnectCause::LoginRejected(code), ctx)
                            }
                        }
                    }
                    Err(e) if e.code.is_retryable() => {
                        act.lost(generation, DisconnectCause::ConnectFailed, ctx)
                    }
                    Err(e) => act.lost(generation, DisconnectCause::LoginRejected(e.code), ctx),
                }
            })
            .spawn(ctx);
    }

    fn open(&mut self, generation: u32, ctx: &mut Context<Self>) {
        let url = self.shared.config.backend_url.clone();
        let deadline = self.shared.config.timings.connect_timeout;
        transport::open(url, deadline, &self.shared.config.trust, &self.user_id)
            .into_actor(self)
            .map(move |result, act, ctx| {
                if generation != act.generation {
                    return; // an older attempt: its socket is dropped here
                }
                match result {
                    Ok(link) => act.link_up(generation, link, ctx),
                    Err(e) => {
                        tracing::debug!(account = %act.user_id, error = %e, "connect failed");
                        act.lost(generation, DisconnectCause::ConnectFailed, ctx)
                    }
                }
            })
            .spawn(ctx);
    }

    fn link_up(&mut self, generation: u32, link: WsLink, ctx: &mut Context<Self>) {
        let stream = ctx.add_stream(transport::tagged(link.reader, generation));
        let writer = Writer::new(link.writer, ctx);
        self.link = Some(Link {
            writer,
            encoder: link.encoder,
            stream,
            heartbeat: None,
            room_heartbeat: None,
        });
        let Some(token) = self.token.clone() else {
            self.lost(
                generation,
                DisconnectCause::LoginRejected(ErrorCode::TOKEN_INVALID),
                ctx,
            );
            return;
        };
        let login = Request::Login(Login {
            user_id: self.user_id.to_string(),
            user_name: Some(self.user_name.to_string()),
            token,
            device_id: self.device_id(),
            platform: Some("zimfleet".into()),
        });
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(owner) = self.request(login, super::requests::Owner::Login, timeout, ctx) {
            self.fail_unsent(owner, ErrorCode::NETWORK_ERROR, ctx);
        }
    }

    /// Drops the socket and everything bound to it; sends in flight go back to the outbox,
    /// the rooms hear that their requests in flight went nowhere.
    pub(super) fn close_link(&mut self, ctx: &mut Context<Self>) {
        self.generation = self.generation.wrapping_add(1);
        if let Some(link) = self.link.take() {
            ctx.cancel_future(link.writer.handle());
            ctx.cancel_future(link.stream);
            for h in [link.heartbeat, link.room_heartbeat].into_iter().flatten() {
                ctx.cancel_future(h);
            }
        }
        self.drop_pending(ctx);
        if !self.outbox.is_empty() {
            self.schedule_outbox_sweep(ctx);
        }
    }

    /// Chaos: the link is dropped as if the network failed; with `offline`, every connect
    /// fails for that long too.
    pub(super) fn chaos(&mut self, offline: Option<Duration>, ctx: &mut Context<Self>) {
        if let Some(d) = offline {
            self.offline_until = Some(Instant::now() + d);
        }
        if self.link.is_some() {
            let generation = self.generation;
            self.lost(generation, DisconnectCause::SocketError, ctx);
        }
    }
}

impl StreamHandler<LinkItem> for Account {
    fn handle(&mut self, item: LinkItem, ctx: &mut Self::Context) {
        if item.generation != self.generation {
            return; // an older link
        }
        let generation = item.generation;
        match item.frame {
            Some(Ok(Frame::Text(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => tracing::warn!(account = %self.user_id, "non-UTF-8 frame ignored"),
            },
            Some(Ok(Frame::Ping(payload))) => {
                if let Some(link) = self.link.as_mut() {
                    link.write(WsMessage::Pong(payload));
                }
            }
            Some(Ok(Frame::Close(reason))) => {
                let code = reason.map(|r| u16::from(r.code));
                self.lost(generation, DisconnectCause::Closed(code), ctx)
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(account = %self.user_id, error = %e, "socket error");
                self.lost(generation, DisconnectCause::SocketError, ctx)
            }
            None => self.lost(generation, DisconnectCause::SocketError, ctx),
        }
    }

    /// The stream's own end marker drives the reaction; never stop the account here.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl WriteHandler<WriteError> for Account {
    /// A write error: the read side sees the broken socket too, and the heartbeat backs it up.
    fn error(&mut self, err: WriteError, _ctx: &mut Self::Context) -> Running {
        tracing::debug!(account = %self.user_id, error = %err, "socket write error");
        Running::Continue
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {}
}
