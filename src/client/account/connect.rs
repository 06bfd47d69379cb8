//! Getting a link up and taking it down: the retry schedule, admission, the token for the
//! login, the WebSocket, and what lives exactly as long as one link.

use std::time::{Duration, Instant};

use actix::prelude::*;
use awc::ws::{Frame, Message as WsMessage};
use governor::clock::Clock as _;
use rand::Rng as _;

use super::writer::LinkWriter;
use super::Account;
use crate::client::transport::{self, LinkItem, WsEncoder, WsLink};
use crate::clock::unix_secs;
use crate::protocol::{ConnectionState, ErrorCode, Login, Request, ZimError};
use crate::session::token_clock::{login_token, LoginToken};
use crate::session::{ConnInput, DisconnectCause, Duty};
use crate::token::token04::client_check;

/// The open WebSocket: its write side and its read stream. Its heartbeats are duties of the
/// account's one timer (client/account/timer.rs), cleared with it.
pub(super) struct Link {
    pub(super) writer: LinkWriter,
    encoder: WsEncoder,
    stream: SpawnHandle,
}

impl Account {
    /// Writes one message on the link; false without a link or when it cannot take it.
    pub(super) fn write_frame(&mut self, message: WsMessage, ctx: &mut Context<Self>) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let written = match link.encoder.encode(message) {
            Ok(frame) => link.writer.push(frame),
            Err(_) => false,
        };
        if written {
            self.flush_link(ctx);
        }
        written
    }

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
        self.link = Some(Link {
            writer: LinkWriter::new(link.writer),
            encoder: link.encoder,
            stream,
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
            ctx.cancel_future(link.stream);
            if let Some(write) = link.writer.in_flight() {
                ctx.cancel_future(write);
            }
        }
        self.deadlines.clear(Duty::Heartbeat);
        self.deadlines.clear(Duty::RoomHeartbeat);
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
                self.write_frame(WsMessage::Pong(payload), ctx);
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
