//! The embedded backend: with no `backend.url`, `zimfleet run` starts the reference server
//! in-process on loopback with a fresh random secret and app id, and its accounts get tokens
//! generated with that secret.

use std::path::Path;

use rand::Rng;

use crate::runner::settings::RunSettings;
use crate::runner::{random_secret, RunError};
use crate::server::{ServerHandle, ServerSettings};
use crate::token::provider::GeneratedToken;

/// Length of a Token04 server secret.
const SECRET_LEN: usize = 32;

/// The running in-process server.
pub struct EmbeddedBackend {
    /// Its WebSocket URL.
    pub ws_url: String,
    /// Mints tokens with the server's secret (one copy shared by every account).
    pub tokens: GeneratedToken,
    server: ServerHandle,
}

impl EmbeddedBackend {
    /// Starts the reference server with the `[embedded]` settings: its own settings file
    /// (or the server defaults, and `ZIMFLEET__SERVER__*`), then the runner's address and
    /// workers, a fresh secret and app id, and no admin API.
    pub async fn start(settings: &RunSettings) -> Result<Self, RunError> {
        let embedded = &settings.embedded;
        let file = Some(embedded.server_config.trim())
            .filter(|f| !f.is_empty())
            .map(Path::new);
        let mut server_settings = ServerSettings::load(file)
            .map_err(|e| RunError::Embedded(format!("embedded.server_config: {e}")))?;
        server_settings.listen = settings.embedded_listen().map_err(RunError::Embedded)?;
        server_settings.workers = embedded.workers.max(1);
        server_settings.app_id = rand::thread_rng().gen_range(1..=u32::MAX);
        server_settings.server_secret = random_secret(SECRET_LEN);
        server_settings.admin_token = None;
        let tokens = GeneratedToken::new(
            server_settings.app_id,
            server_settings.server_secret.clone(),
            embedded.token_lifetime.0.as_secs(),
        )
        .map_err(|e| RunError::Embedded(e.to_string()))?;
        let server = crate::server::start(server_settings)
            .await
            .map_err(|e| RunError::Embedded(format!("embedded.listen {}: {e}", embedded.listen)))?;
        Ok(EmbeddedBackend {
            ws_url: server.ws_url(),
            tokens,
            server,
        })
    }

    /// Closes every session and stops the server.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
