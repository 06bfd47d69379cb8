//! The backend under test: the embedded reference server (backend = "") or another process
//! reached by URL; its tokens; its admin API for server-side faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::plan::{Plan, TokenSource};
use super::LoadtestError;
use crate::protocol::Secret;
use crate::server::{FaultTarget, ServerHandle, ServerSettings};
use crate::tls::ClientTrust;
use crate::token::provider::{GeneratedToken, HttpTokenProvider};
use crate::token::TokenProvider;

/// Deadline of one admin API call.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The backend of a run.
pub struct Backend {
    /// WebSocket URL the accounts log in to.
    pub ws_url: String,
    /// Whom a wss:// backend, an https:// token endpoint or admin API may be (`ca_file`).
    pub trust: ClientTrust,
    /// Admin API base URL and bearer, for server-side drops.
    admin: Option<(String, Option<Secret>)>,
    /// The reference server in this process, and the token minter that goes with it.
    embedded: Option<(ServerHandle, GeneratedToken)>,
}

/// A random string of `n` letters and digits (a fresh secret per embedded run).
fn random_text(n: usize) -> String {
    use rand::Rng as _;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

impl Backend {
    /// Starts the embedded server when the plan has no backend URL.
    pub async fn start(plan: &Plan) -> Result<Backend, LoadtestError> {
        let ca_file =
            Some(std::path::Path::new(&plan.ca_file)).filter(|_| !plan.ca_file.is_empty());
        let trust = ClientTrust::from_setting("loadtest.ca_file", ca_file)
            .map_err(|e| LoadtestError::InvalidPlan(e.to_string()))?;
        if !plan.embedded() {
            return Ok(Backend {
                ws_url: plan.backend.clone(),
                trust,
                admin: plan
                    .admin_base(None)
                    .map(|base| (base, env_secret(&plan.chaos.admin_token_env))),
                embedded: None,
            });
        }
        let mut settings = ServerSettings::defaults();
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.workers = plan.workers;
        settings.app_id = plan.token.app_id;
        settings.server_secret = Secret::new(random_text(32));
        settings.admin_token = Some(Secret::new(random_text(32)));
        let ms = |d: Duration| d.as_millis() as u64;
        let t = &mut settings.timing;
        t.heartbeat_interval_ms = ms(plan.heartbeat.interval);
        t.room_heartbeat_interval_ms = ms(plan.heartbeat.room_interval);
        // Keep the ZIM ratios when the plan stretches the intervals.
        t.offline_timeout_ms = t
            .offline_timeout_ms
            .max(ms(plan.heartbeat.interval) * 7 / 2);
        t.room_session_timeout_ms = t
            .room_session_timeout_ms
            .max(ms(plan.heartbeat.room_interval) * 7 / 3);
        let tokens = GeneratedToken::new(
            settings.app_id,
            settings.server_secret.clone(),
            plan.token.ttl_secs,
        )
        .map_err(|e| LoadtestError::InvalidPlan(format!("token: {e}")))?;
        let handle = crate::server::start(settings)
            .await
            .map_err(|e| LoadtestError::Backend(format!("embedded server: {e}")))?;
        Ok(Backend {
            ws_url: handle.ws_url(),
            trust,
            admin: None,
            embedded: Some((handle, tokens)),
        })
    }

    /// Where accounts get their tokens: one provider shared by every account.
    pub fn token_provider(&self, plan: &Plan) -> Result<Arc<dyn TokenProvider>, LoadtestError> {
        let t = &plan.token;
        match t.source {
            TokenSource::Embedded => match &self.embedded {
                Some((_, tokens)) => Ok(Arc::new(tokens.clone())),
                None => Err(LoadtestError::InvalidPlan(
                    "token.source \"embedded\" needs the embedded server (backend = \"\")".into(),
                )),
            },
            TokenSource::Generated => {
                let secret = env_secret(&t.secret_env).ok_or_else(|| {
                    LoadtestError::InvalidPlan(format!(
                        "token.source \"generated\" needs the server secret in the environment variable {}",
                        t.secret_env
                    ))
                })?;
                let provider = GeneratedToken::new(t.app_id, secret, t.ttl_secs)
                    .map_err(|e| LoadtestError::InvalidPlan(format!("token: {e}")))?;
                Ok(Arc::new(provider))
            }
            TokenSource::Http => Ok(Arc::new(HttpTokenProvider {
                url: t.url.clone(),
                bearer: env_secret(&t.bearer_env),
                ttl_secs: Some(t.ttl_secs),
                timeout: Duration::from_secs(10),
                trust: self.trust.clone(),
            })),
        }
    }

    /// Drops every session from the server side: POST /admin/faults/drop {"all": true}.
    pub async fn drop_all(&self) -> Result<(), LoadtestError> {
        if let Some((server, _)) = &self.embedded {
            let dropped = server.admin().drop(FaultTarget::All);
            tracing::info!(dropped, "server dropped every session");
            return Ok(());
        }
        let Some((base, bearer)) = &self.admin else {
            return Err(LoadtestError::Backend(
                "no admin URL for a server-side drop (chaos.admin_url)".into(),
            ));
        };
        crate::client::tls::install_crypto_provider();
        let client = awc::Client::builder()
            .timeout(ADMIN_TIMEOUT)
            .connector(awc::Connector::new().rustls_0_23(self.trust.rustls_config()))
            .finish();
        let mut req = client.post(format!("{base}/admin/faults/drop"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b.expose());
        }
        let resp = req
            .send_json(&serde_json::json!({ "all": true }))
            .await
            .map_err(|e| LoadtestError::Backend(format!("POST {base}/admin/faults/drop: {e}")))?;
        if !resp.status().is_success() {
            return Err(LoadtestError::Backend(format!(
                "POST {base}/admin/faults/drop answered {}",
                resp.status()
            )));
        }
        Ok(())
    }

    /// Stops the embedded server, if any.
    pub async fn stop(self) {
        if let Some((server, _)) = self.embedded {
            server.stop().await;
        }
    }
}
