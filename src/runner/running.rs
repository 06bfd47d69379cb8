//! The bots a run has on its fleet now, by file, and how a hot reload changes them
//! ([`reload::plan`](crate::runner::reload::plan) says what; this does it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::reload::ReloadResult;
use crate::bot::Bot;
use crate::client::{AccountHandle, AccountSpec, Fleet};
use crate::runner::bots::{BotDef, BotsError};
use crate::runner::chat_log::{logged, SeenMessages};
use crate::runner::reload::{plan, ReloadPlan};
use crate::runner::swappable::Swappable;
use crate::runner::{provider, RunError};
use crate::token::TokenProvider;

/// The longest a reload waits for one account to log out, leave or enter a room.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

/// One bot file as it runs: its definition and the behaviour its accounts call.
struct RunningFile {
    def: BotDef,
    swap: Arc<Swappable>,
    handler: Arc<dyn Bot>,
}

/// Every running bot file of a run.
pub struct Running {
    fleet: Fleet,
    files: BTreeMap<PathBuf, RunningFile>,
    seen: Arc<SeenMessages>,
    embedded_tokens: Option<Arc<dyn TokenProvider>>,
    /// The admin face's message feed, when it is on.
    feed: Option<Arc<crate::admin::Feed>>,
    /// What https:// token endpoints are trusted with (`backend.ca_file`).
    trust: crate::tls::ClientTrust,
}

impl Running {
    /// Nothing running yet on `fleet`; `embedded_tokens` mints the embedded backend's tokens;
    /// the messages every bot receives also go to `feed` (the admin face's), when given.
    pub fn new(
        fleet: Fleet,
        embedded_tokens: Option<Arc<dyn TokenProvider>>,
        feed: Option<Arc<crate::admin::Feed>>,
    ) -> Self {
        Self {
            fleet,
            files: BTreeMap::new(),
            seen: Arc::default(),
            embedded_tokens,
            feed,
            trust: crate::tls::ClientTrust::public_roots(),
        }
    }

    /// Token endpoints are trusted with `trust` (the public roots otherwise).
    pub fn with_trust(mut self, trust: crate::tls::ClientTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Accounts running now.
    pub fn accounts(&self) -> usize {
        self.files.values().map(|f| f.def.accounts.len()).sum()
    }

    /// Bot files running now.
    pub fn bots(&self) -> usize {
        self.files.len()
    }

    /// Starts every account of `bots` (at the start of a run): the first refusal ends it.
    pub fn start_all(&mut self, bots: Vec<BotDef>) -> Result<usize, RunError> {
        let mut count = 0;
        for def in bots {
            let file = self.insert(def);
            let users: Vec<String> = file_accounts(&self.files[&file].def);
            for user in users {
                self.add_account(&file, &user)?;
                count += 1;
            }
        }
        Ok(count)
    }

    fn insert(&mut self, def: BotDef) -> PathBuf {
        let swap = Arc::new(Swappable::new(Arc::clone(&def.bot)));
        let swappable = Arc::clone(&swap) as Arc<dyn Bot>;
        let inner = match &self.feed {
            Some(feed) => feed.tap(swappable),
            None => swappable,
        };
        let handler = logged(inner, Arc::clone(&self.seen));
        let file = def.file.clone();
        self.files
            .insert(file.clone(), RunningFile { def, swap, handler });
        file
    }

    /// Adds one account of a running file to the fleet.
    fn add_account(&self, file: &PathBuf, user_id: &str) -> Result<AccountHandle, RunError> {
        let running = &self.files[file];
        let bot = &running.def;
        let Some(account) = bot.accounts.iter().find(|a| a.user_id == user_id) else {
            return Err(RunError::Bots(BotsError::Invalid {
                file: file.clone(),
                detail: format!("account {user_id} is not in this file"),
            }));
        };
        let token = provider(&account.token, self.embedded_tokens.as_ref(), &self.trust).map_err(
            |detail| {
                RunError::Bots(BotsError::Invalid {
                    file: file.clone(),
                    detail: format!("account {}: {detail}", account.user_id),
                })
            },
        )?;
        let spec = AccountSpec {
            user_id: account.user_id.clone(),
            user_name: account.user_name.clone(),
            device_id: account.device_id.clone(),
            token,
            rooms: bot.rooms.clone(),
        };
        let handle = self
            .fleet
            .add_account(spec, Arc::clone(&running.handler))
            .map_err(|source| RunError::Account {
                file: file.clone(),
                user_id: account.user_id.clone(),
                source,
            })?;
        let rooms: Vec<&str> = bot.rooms.iter().map(|r| r.room_id.as_str()).collect();
        tracing::info!(
            "bot {} ({}): account {} starts, rooms [{}]",
            bot.name,
            bot.behaviour,
            account.user_id,
            rooms.join(", ")
        );
        Ok(handle)
    }

    /// Applies the bots just read: `loaded` holds every file's result (a refused file keeps
    /// what it ran). Returns what changed and what was refused.
    pub async fn reload(
        &mut self,
        loaded: Vec<Result<Option<BotDef>, BotsError>>,
        trigger: &str,
    ) -> ReloadResult {
        let mut result = ReloadResult {
            trigger: trigger.to_string(),
            ..ReloadResult::default()
        };
        let mut new: BTreeMap<PathBuf, BotDef> = BTreeMap::new();
        for file in loaded {
            match file {
                Ok(Some(def)) => {
                    new.insert(def.file.clone(), def);
                }
                Ok(None) => {}
                Err(e) => {
                    let kept = match &e {
                        BotsError::Invalid { file, .. } => self.keep_running(file),
                        _ => None,
                    };
                    if let Some(def) = kept {
                        new.insert(def.file.clone(), def);
                    }
                    result.errors.push(e.to_string());
                }
            }
        }
        let the_plan = self.checked_plan(&mut new, &mut result.errors);
        self.apply(the_plan, new, &mut result).await;
        result.at_ms = crate::clock::unix_ms();
        result
    }

    /// A copy of the running definition of `file`, to keep it as it runs.
    fn keep_running(&self, file: &PathBuf) -> Option<BotDef> {
        self.files.get(file).map(|f| f.def.clone())
    }

    /// The plan, after refusing the files it cannot apply (they keep what they ran): an
    /// account id the fleet already had cannot be added again in this run.
    fn checked_plan(
        &self,
        new: &mut BTreeMap<PathBuf, BotDef>,
        errors: &mut Vec<String>,
    ) -> ReloadPlan {
        loop {
            let p = {
                let old: Vec<&BotDef> = self.files.values().map(|f| &f.def).collect();
                let fresh: Vec<&BotDef> = new.values().collect();
                plan(&old, &fresh)
            };
            let blocked = p
                .restart
                .iter()
                .map(|(file, user)| (file, user, "its entry changed (user_name, device_id or token), which needs a new login"))
                .chain(p.start.iter().filter(|(_, user)| self.fleet.account(user).is_some()).map(|(file, user)| {
                    (file, user, "this id already ran in this run (its file was removed, or it moved between files)")
                }))
                .next()
                .map(|(file, user, why)| (file.clone(), user.clone(), why));
            let Some((file, user, why)) = blocked else {
                return p;
            };
            errors.push(format!(
                "{}: account {user}: {why}; restart zimfleet run to apply this file (it keeps running as it was)",
                file.display()
            ));
            match self.keep_running(&file) {
                Some(def) => new.insert(file, def),
                None => new.remove(&file),
            };
        }
    }

    async fn apply(
        &mut self,
        p: ReloadPlan,
        mut new: BTreeMap<PathBuf, BotDef>,
        result: &mut ReloadResult,
    ) {
        let handle = |user: &str| self.fleet.account(user);
        let stops = p
            .stop
            .iter()
            .filter_map(|u| handle(u).map(|h| (u.clone(), h)));
        let outs = stops.map(|(user, h)| async move {
            let done = tokio::time::timeout(STEP_DEADLINE, h.logout()).await;
            (user, matches!(done, Ok(Ok(()))))
        });
        for (user, ok) in futures_util::future::join_all(outs).await {
            tracing::info!(
                "reload: account {user} logged out{}",
                if ok { "" } else { " (not confirmed in time)" }
            );
            result.stopped.push(user);
        }
        let leaves = p
            .leave
            .iter()
            .map(|(u, r)| (u.clone(), RoomCall::Leave(r.clone())));
        for (user, room, outcome) in self.room_calls(leaves.collect()).await {
            match outcome {
                Ok(()) => result.rooms_left.push(format!("{user}/{room}")),
                Err(e) => result
                    .errors
                    .push(format!("account {user}: leaving room {room}: {e}")),
            }
        }
        // Files gone, and definitions replaced; the swapped behaviours go on running accounts.
        self.files.retain(|file, _| new.contains_key(file));
        for file in &p.swap {
            if let Some(def) = new.remove(file) {
                self.swap(def).await;
                result.swapped.push(file.display().to_string());
            }
        }
        for (file, def) in new {
            match self.files.get_mut(&file) {
                // Same behaviour: the new definition (accounts, rooms) with the running bot.
                Some(running) => {
                    running.def = BotDef {
                        bot: Arc::clone(&running.def.bot),
                        ..def
                    }
                }
                None => {
                    self.insert(def);
                }
            }
        }
        self.enter_and_start(&p, result).await;
    }

    async fn enter_and_start(&self, p: &ReloadPlan, result: &mut ReloadResult) {
        let enters = p
            .enter
            .iter()
            .map(|(u, r)| (u.clone(), RoomCall::Enter(r.clone())));
        for (user, room, outcome) in self.room_calls(enters.collect()).await {
            match outcome {
                Ok(()) => result.rooms_entered.push(format!("{user}/{room}")),
                Err(e) => result
                    .errors
                    .push(format!("account {user}: entering room {room}: {e}")),
            }
        }
        for (file, user) in &p.start {
            match self.add_account(file, user) {
                Ok(_) => result.started.push(user.clone()),
                Err(e) => result.errors.push(e.to_string()),
            }
        }
    }

    /// Runs room calls on running accounts all at once (each within [`STEP_DEADLINE`]);
    /// (user, room, outcome) in the order given.
    async fn room_calls(
        &self,
        calls: Vec<(String, RoomCall)>,
    ) -> Vec<(String, String, Result<(), String>)> {
        let runs = calls.into_iter().map(|(user, call)| {
            let handle = self.fleet.account(&user);
            async move {
                let room = call.room_id().to_string();
                let Some(h) = handle else {
                    return (user, room, Err("the account is not running".to_string()));
                };
                let done = match call {
                    RoomCall::Leave(room_id) => {
                        tokio::time::timeout(STEP_DEADLINE, h.leave_room(&room_id)).await
                    }
                    RoomCall::Enter(spec) => {
                        tokio::time::timeout(STEP_DEADLINE, async {
                            h.enter_room(spec).await.map(|_| ())
                        })
                        .await
                    }
                };
                let outcome = match done {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.code.to_string()),
                    Err(_) => Err("no answer in time".to_string()),
                };
                (user, room, outcome)
            }
        });
        futures_util::future::join_all(runs).await
    }

    /// Puts the new behaviour of `def` on its file's running accounts; they stay connected.
    async fn swap(&mut self, def: BotDef) {
        let Some(running) = self.files.get_mut(&def.file) else {
            return;
        };
        let old = running.swap.replace(Arc::clone(&def.bot));
        let new = Arc::clone(&def.bot);
        let users = file_accounts(&running.def);
        running.def = def;
        for user in users {
            let Some(h) = self.fleet.account(&user) else {
                continue;
            };
            old.on_detached(&h);
            if let Ok(status) = h.state().await {
                new.on_attached(&h, &status);
            }
        }
    }
}

/// A room change on a running account.
enum RoomCall {
    Leave(String),
    Enter(crate::client::RoomSpec),
}

impl RoomCall {
    fn room_id(&self) -> &str {
        match self {
            RoomCall::Leave(room_id) => room_id,
            RoomCall::Enter(spec) => &spec.room_id,
        }
    }
}

fn file_accounts(def: &BotDef) -> Vec<String> {
    def.accounts.iter().map(|a| a.user_id.clone()).collect()
}
