//! The fleet's root actor: it keeps how each ended account ended. An account tells it by a
//! message ([`AccountEnded`]) just before it stops, so nothing the ending account does writes
//! into shared state; `Fleet::status`, `Fleet::shutdown` and a handle whose account stopped
//! ask it. It runs on its own arbiter, which ends when the root stops (every `Addr` dropped).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::AccountStatus;

/// Account -> root: this account ended with this final status.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct AccountEnded {
    /// The account.
    pub user_id: Arc<str>,
    /// Its status when it ended.
    pub status: AccountStatus,
}

/// Fleet -> root: every ended account's final status.
#[derive(Message)]
#[rtype(result = "HashMap<Arc<str>, AccountStatus>")]
pub(crate) struct EndedAccounts;

/// Handle -> root: how this account ended (`None`: it did not, or is unknown).
#[derive(Message)]
#[rtype(result = "Option<AccountStatus>")]
pub(crate) struct EndedStatus(pub Arc<str>);

/// The root of the actor tree's records.
#[derive(Default)]
pub(crate) struct FleetRoot {
    ended: HashMap<Arc<str>, AccountStatus>,
}

impl FleetRoot {
    /// Starts the root on a new arbiter. Call inside an actix `System`.
    pub fn start_own() -> Addr<FleetRoot> {
        let arbiter = Arbiter::new();
        FleetRoot::start_in_arbiter(&arbiter.handle(), |_| FleetRoot::default())
    }
}

impl Actor for FleetRoot {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        Arbiter::current().stop();
    }
}

impl Handler<AccountEnded> for FleetRoot {
    type Result = ();

    fn handle(&mut self, msg: AccountEnded, _ctx: &mut Self::Context) {
        self.ended.insert(msg.user_id, msg.status);
    }
}

impl Handler<EndedAccounts> for FleetRoot {
    type Result = MessageResult<EndedAccounts>;

    fn handle(&mut self, _: EndedAccounts, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.ended.clone())
    }
}

impl Handler<EndedStatus> for FleetRoot {
    type Result = Option<AccountStatus>;

    fn handle(&mut self, msg: EndedStatus, _ctx: &mut Self::Context) -> Self::Result {
        self.ended.get(&msg.0).cloned()
    }
}
