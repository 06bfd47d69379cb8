//! The backend under test: the embedded reference server (backend = "") or another process
//! reached by URL; its tokens; its admin API for server-side faults.

use std::sync::Arc;

use super::plan::Plan;
use super::LoadtestError;
use crate::token::TokenProvider;

/// The backend of a run.
pub struct Backend {
    /// WebSocket URL the accounts log in to.
    pub ws_url: String,
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
        })
    }

    /// Where accounts get their tokens.
    pub fn token_provider(&self, _plan: &Plan) -> Result<Arc<dyn TokenProvider>, LoadtestError> {
        Err(LoadtestError::Backend(
            "token providers are not built yet".into(),
        ))
    }

    /// Drops every session from the server side (admin API).
    pub async fn drop_all(&self) -> Result<(), LoadtestError> {
        Err(LoadtestError::Backend(
            "server drop is not built yet".into(),
        ))
    }

    /// Stops the embedded server, if any.
    pub async fn stop(self) {}
}
