//! Tokens: Token04 encode/verify (GCM and CBC), client-side checks, token providers.
#![warn(missing_docs)]

/// `zimfleet token`: mint, inspect, verify.
pub mod cli;
/// Where tokens come from: static, generated, an HTTP endpoint.
pub mod provider;
/// Token04 encode and verify, client-side checks.
pub mod token04;

pub use provider::{GeneratedToken, HttpTokenProvider, StaticToken};

use crate::protocol::{Secret, ZimError};

/// Where an account gets its token: at login and at each renewal.
pub trait TokenProvider: Send + Sync + 'static {
    /// A fresh token for `user_id`.
    fn token(
        &self,
        user_id: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Secret, ZimError>> + 'static>>;
}
