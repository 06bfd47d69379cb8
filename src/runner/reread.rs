//! A reload's reading: the config layers again (refused settings apply nothing), then every
//! bot file of bots/ on its own, cut to this process's shard; [`Running::reload`] applies it.

use std::path::PathBuf;

use crate::admin::reload::ReloadResult;
use crate::bot::pacer::Quiet;
use crate::loadtest::shard::Shard;
use crate::runner::bots::{self, BotDef, BotsError};
use crate::runner::running::Running;
use crate::runner::settings::{self, RunSettings};
use crate::runner::Prepared;

/// What a reload reads again, as the run was started.
pub struct Rereader {
    config: Option<PathBuf>,
    bots_dir: Option<PathBuf>,
    shard: Shard,
    quiet: Quiet,
    embedded: bool,
    settings: RunSettings,
}

impl Rereader {
    /// Reads what `prepared` read; `embedded` says whether the embedded backend runs.
    pub fn new(prepared: &Prepared, embedded: bool) -> Self {
        Self {
            config: prepared.config_file.clone(),
            bots_dir: prepared.bots_arg.clone(),
            shard: prepared.shard,
            quiet: prepared.quiet.clone(),
            embedded,
            settings: prepared.settings.clone(),
        }
    }

    /// Re-reads and applies; logs and returns what changed and what was refused.
    pub async fn reload(&self, running: &mut Running, trigger: &str) -> ReloadResult {
        tracing::info!("{trigger}: reloading the config and the bots");
        let result = match self.read() {
            Ok(files) => running.reload(files, trigger).await,
            Err(error) => ReloadResult {
                trigger: trigger.to_string(),
                errors: vec![error],
                at_ms: crate::clock::unix_ms(),
                ..ReloadResult::default()
            },
        };
        log_result(&result);
        result
    }

    /// The config, then each bot file; an error here means nothing is applied.
    fn read(&self) -> Result<Vec<Result<Option<BotDef>, BotsError>>, String> {
        let fresh = settings::load(self.config.as_deref(), None)
            .map_err(|e| format!("config: {e}; nothing was reloaded"))?;
        let changed = changed_sections(&self.settings, &fresh);
        if !changed.is_empty() {
            tracing::warn!(
                "reload: config sections [{}] changed; they apply when zimfleet run restarts \
                 (a reload applies bots/)",
                changed.join(", ")
            );
        }
        let dir = self
            .bots_dir
            .clone()
            .unwrap_or_else(|| self.settings.run.bots_dir.clone());
        let env = |var: &str| std::env::var(var).ok();
        let files = bots::load_each(&dir, self.embedded, &env, &self.quiet)
            .map_err(|e| format!("{e}; nothing was reloaded"))?;
        Ok(files
            .into_iter()
            .map(|file| file.map(|bot| bot.and_then(|b| self.in_shard(b))))
            .collect())
    }

    /// The bot with this shard's accounts only; `None` when it has none here.
    fn in_shard(&self, bot: BotDef) -> Option<BotDef> {
        bots::select_shard(vec![bot], self.shard).pop()
    }
}

/// The config sections whose values differ (they need a restart).
fn changed_sections(old: &RunSettings, new: &RunSettings) -> Vec<&'static str> {
    let text = |s: &RunSettings| {
        [
            ("run", format!("{:?}", s.run)),
            ("backend", format!("{:?}", s.backend)),
            ("fleet", format!("{:?}", s.fleet)),
            ("retry", format!("{:?}", s.retry)),
            ("timings", format!("{:?}", s.timings)),
            ("admin", format!("{:?}", s.admin)),
            ("embedded", format!("{:?}", s.embedded)),
        ]
    };
    text(old)
        .into_iter()
        .zip(text(new))
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0)
        .collect()
}

fn log_result(r: &ReloadResult) {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    tracing::info!(
        "reload ({}): started [{}], stopped [{}], behaviour swapped [{}], rooms entered [{}], rooms left [{}]",
        r.trigger,
        list(&r.started),
        list(&r.stopped),
        list(&r.swapped),
        list(&r.rooms_entered),
        list(&r.rooms_left)
    );
    for error in &r.errors {
        tracing::error!("reload refused: {error}");
    }
}
