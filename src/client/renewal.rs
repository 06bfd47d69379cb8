//! The token renewal service (contract skeleton; being built).
//!
//! One `TokenService` actor per fleet. An account asks it for a new token when
//! token_will_expire arrives (or its local timer fires `renew_ahead` before expiry). The service
//! renews earliest expiry first, one renewal per account at a time, rate-limited fleet-wide
//! with governor, retrying a failing provider with backoff and jitter while time is left.
//! The account sends renew_token itself and owns the deadline: at `expire - expire_margin`
//! without a new token it ends with (Disconnected, TokenExpired).

use std::sync::Arc;

use actix::prelude::*;

use crate::protocol::{Secret, ZimError};
use crate::token::TokenProvider;

/// Account -> TokenService: get a new token for this account before `expire_at`.
/// A second request for the same account while one is pending replaces the first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewalNeeded {
    pub user_id: Arc<str>,
    /// Unix seconds when the current token expires.
    pub expire_at: i64,
    pub provider: Arc<dyn TokenProvider>,
    /// Where the outcome goes (weak on the service side: a stopped account is forgotten).
    pub reply_to: Recipient<RenewalOutcome>,
}

/// Account -> TokenService: forget this account (it stopped or logged out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RenewalCancelled {
    pub user_id: Arc<str>,
}

/// TokenService -> Account: the provider's answer.
#[derive(Message)]
#[rtype(result = "()")]
pub enum RenewalOutcome {
    /// A new token; the account sends renew_token with it.
    Token(Secret),
    /// The provider kept failing until the deadline; the account will expire.
    GaveUp(ZimError),
}
