//! The embedded backend: with no `backend.url`, `zimfleet run` starts the reference server
//! in-process on loopback with a fresh random secret and app id, and its accounts get tokens
//! generated with that secret.

use crate::runner::settings::RunSettings;
use crate::runner::RunError;
use crate::token::provider::GeneratedToken;

/// The running in-process server.
pub struct EmbeddedBackend {
    pub ws_url: String,
    /// Mints tokens with the server's secret (one copy shared by every account).
    pub tokens: GeneratedToken,
}

impl EmbeddedBackend {
    pub async fn start(_settings: &RunSettings) -> Result<Self, RunError> {
        Err(RunError::Embedded(
            "the reference server is not in this build yet; set backend.url".into(),
        ))
    }

    pub async fn stop(self) {}
}
