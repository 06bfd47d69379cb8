//! The account's token: its expiry timers (src/session/token_clock.rs), onTokenWillExpire,
//! renewal through the TokenService or a caller, and the token a re-login carries.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::messages::Reply;
use super::requests::Owner;
use super::Account;
use crate::client::renewal::{RenewalNeeded, RenewalOutcome};
use crate::client::EventKind;
use crate::clock::{unix_ms, unix_secs};
use crate::protocol::{ErrorCode, RenewToken, Request, Secret, ZimError};
use crate::session::limits::RenewPacer;
use crate::session::retry::jittered;
use crate::session::token_clock::keep_for_relogin;
use crate::session::{ConnInput, DisconnectCause, Duty};
use crate::token::token04::{client_check, read_expiry};

impl Account {
    /// A new expiry (login or renew_token reply): the warning and the end, two duties of the
    /// account's one timer (src/session/deadlines.rs).
    pub(super) fn set_token_expiry(&mut self, expire_at: i64, ctx: &mut Context<Self>) {
        let timers = self.token_clock.set(expire_at, unix_ms() as i64);
        let now = Instant::now();
        self.deadlines.set(Duty::TokenWarn, now + timers.warn_in);
        self.deadlines.set(Duty::TokenEnd, now + timers.end_in);
        self.arm_timer(ctx);
    }

    /// The warning duty fell due: onTokenWillExpire for the current expiry.
    pub(super) fn token_warn_due(&mut self, ctx: &mut Context<Self>) {
        let left = self.token_clock.remaining_secs(unix_ms() as i64);
        self.token_will_expire(left, ctx);
    }

    /// The end duty fell due: without a renewal the account ends (TokenExpired).
    pub(super) fn token_end_due(&mut self, ctx: &mut Context<Self>) {
        // A newer token already held (renewed while Reconnecting) goes with the re-login.
        let held = self
            .token
            .as_ref()
            .and_then(|t| read_expiry(t.expose()).ok())
            .unwrap_or(0);
        if self.token_clock.ends(self.token_clock.expire_at(), held) {
            self.conn_input(ConnInput::Lost(DisconnectCause::TokenNotRenewed), ctx);
        }
    }

    /// onTokenWillExpire (the server's push or the local timer, once per expiry).
    pub(super) fn token_will_expire(&mut self, remaining_secs: u64, ctx: &mut Context<Self>) {
        if !self.token_clock.warn() {
            return;
        }
        self.with_bot(ctx, |bot, h| bot.on_token_will_expire(h, remaining_secs));
        self.shared
            .publish(&self.user_id, EventKind::TokenWillExpire { remaining_secs });
        self.request_renewal(ctx);
    }

    fn request_renewal(&mut self, ctx: &mut Context<Self>) {
        self.shared.renewal_needed.do_send(RenewalNeeded {
            user_id: self.user_id.clone(),
            expire_at: self.token_clock.expire_at(),
            provider: self.provider.clone(),
            reply_to: ctx.address().recipient(),
        });
    }

    fn retry_renewal_later(&mut self, ctx: &mut Context<Self>) {
        let expire_at = self.token_clock.expire_at();
        let delay = jittered(Duration::from_secs(1), 0.2, &mut rand::thread_rng());
        ctx.run_later(delay, move |act, ctx| {
            if act.token_clock.may_retry(expire_at, unix_ms() as i64) {
                act.request_renewal(ctx);
            }
        });
    }

    /// renew_token with `token` (a caller's when `reply`, else the TokenService's).
    pub(super) fn renew_with(
        &mut self,
        token: Secret,
        reply: Option<Reply<i64>>,
        ctx: &mut Context<Self>,
    ) {
        if let Err(e) = self.renewals.check(Instant::now()) {
            match reply {
                Some(r) => {
                    let _ = r.send(Err(e));
                }
                // the service's answer came too soon after the last one: try again shortly
                None => {
                    ctx.run_later(RenewPacer::MIN_GAP, move |act, ctx| {
                        act.renew_with(token, None, ctx)
                    });
                }
            }
            return;
        }
        if !self.conn.is_connected() {
            // Reconnecting: the next login carries the new token.
            let check = client_check(
                token.expose(),
                unix_secs() as i64,
                &self.shared.config.token_limits,
            );
            if keep_for_relogin(&check) {
                self.token = Some(token);
            }
            if let Some(r) = reply {
                let _ = r.send(check.map_err(ZimError::from_code));
            }
            return;
        }
        let request = Request::RenewToken(RenewToken {
            token: token.clone(),
        });
        let owner = Owner::Renew { token, reply };
        let timeout = self.shared.config.timings.request_timeout;
        if let Err(owner) = self.request(request, owner, timeout, ctx) {
            self.fail_unsent(owner, ErrorCode::NETWORK_ERROR, ctx);
        }
    }

    /// The renew_token reply.
    pub(super) fn renewed(
        &mut self,
        token: Secret,
        reply: Option<Reply<i64>>,
        result: Result<i64, ZimError>,
        ctx: &mut Context<Self>,
    ) {
        match &result {
            Ok(expire_at) => {
                self.token = Some(token);
                self.shared.metrics.renewals_ok.inc();
                self.shared.publish(
                    &self.user_id,
                    EventKind::TokenRenewed {
                        expire_at: *expire_at,
                    },
                );
                self.set_token_expiry(*expire_at, ctx);
            }
            Err(e) => {
                self.shared.metrics.renewals_failed.inc();
                self.shared.publish(
                    &self.user_id,
                    EventKind::TokenRenewFailed {
                        error: e.to_string(),
                    },
                );
                self.retry_renewal_later(ctx);
            }
        }
        if let Some(r) = reply {
            let _ = r.send(result);
        }
    }

    /// A renew_token that never went out (or was lost with the link).
    pub(super) fn renew_unsent(&mut self, token: Secret, reply: Option<Reply<i64>>, err: ZimError) {
        match reply {
            Some(r) => {
                let _ = r.send(Err(err));
            }
            // The service's token was not delivered: the re-login carries it instead.
            None => {
                let now = unix_secs() as i64;
                let check = client_check(token.expose(), now, &self.shared.config.token_limits);
                if keep_for_relogin(&check) {
                    self.token = Some(token);
                }
            }
        }
    }
}

impl Handler<RenewalOutcome> for Account {
    type Result = ();

    /// From the TokenService.
    fn handle(&mut self, outcome: RenewalOutcome, ctx: &mut Self::Context) {
        match outcome {
            RenewalOutcome::Token(token) => self.renew_with(token, None, ctx),
            RenewalOutcome::GaveUp(e) => {
                self.shared.publish(
                    &self.user_id,
                    EventKind::TokenRenewFailed {
                        error: e.to_string(),
                    },
                );
            }
        }
    }
}
