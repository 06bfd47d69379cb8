//! The backend under test: the embedded reference server (backend = "") or another process
//! reached by URL; its tokens; its admin API for server-side faults.

use std::sync::Arc;
use std::time::Duration;

use super::plan::{Plan, TokenSource};
use super::LoadtestError;
use crate::protocol::Secret;
use crate::token::provider::{GeneratedToken, HttpTokenProvider};
use crate::token::TokenProvider;

/// Deadline of one admin API call.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The backend of a run.
pub struct Backend {
    /// WebSocket URL the accounts log in to.
    pub ws_url: String,
    /// Admin API base URL and bearer, for server-side drops.
    admin: Option<(String, Option<Secret>)>,
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
        if plan.embedded() {
            return Err(LoadtestError::Backend(
                "the embedded reference server is not built yet".into(),
            ));
        }
        Ok(Backend {
            ws_url: plan.backend.clone(),
            admin: plan
                .admin_base(None)
                .map(|base| (base, env_secret(&plan.chaos.admin_token_env))),
        })
    }

    /// Where accounts get their tokens: one provider shared by every account.
    pub fn token_provider(&self, plan: &Plan) -> Result<Arc<dyn TokenProvider>, LoadtestError> {
        let t = &plan.token;
        match t.source {
            TokenSource::Embedded => Err(LoadtestError::Backend(
                "the embedded reference server is not built yet".into(),
            )),
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
            })),
        }
    }

    /// Drops every session from the server side: POST /admin/faults/drop {"all": true}.
    pub async fn drop_all(&self) -> Result<(), LoadtestError> {
        let Some((base, bearer)) = &self.admin else {
            return Err(LoadtestError::Backend(
                "no admin URL for a server-side drop (chaos.admin_url)".into(),
            ));
        };
        let client = awc::Client::builder().timeout(ADMIN_TIMEOUT).finish();
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
    pub async fn stop(self) {}
}
