//! Bot definitions: bots/*.toml, one file per bot. Each file is read, checked and turned
//! into accounts, rooms and a behaviour before anything connects; every refusal names the
//! file and the key.
//!
//! ```toml
//! behaviour = "greeter"              # echo, greeter, keywords, scheduled, relay, chatter, idle
//! token = { source = "embedded" }    # default for every account (see TokenSource)
//!
//! [[accounts]]
//! user_id = "host"
//! user_name = "Host"
//!
//! [[rooms]]
//! room_id = "lobby"
//! entry = "enter"                    # create | join | enter
//! recovery = { on_connect_timeout = "join", on_room_not_exist = "enter" }
//!
//! [settings]                         # the behaviour's own settings
//! message = "Welcome, {user_name}!"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::bot::{pacer, registry, Bot};
use crate::client::{OnConnectTimeout, OnRoomNotExist, RecoveryPolicy, RoomEntry, RoomSpec};
use crate::loadtest::shard::Shard;
use crate::protocol::{is_valid_id, Secret};

/// Why the bots could not be loaded. Each message names the file (and the key).
#[derive(Debug, thiserror::Error)]
pub enum BotsError {
    /// The directory does not exist: the message names where it looked and how to point
    /// at another.
    #[error(
        "bots directory {} not found (looked in {}); point at another with --bots DIR or ZIMFLEET__RUN__BOTS_DIR",
        .0.display(),
        looked_in(.0)
    )]
    MissingDir(PathBuf),
    /// The directory holds no `*.toml`.
    #[error("bots directory {0} holds no bot file (*.toml)")]
    Empty(PathBuf),
    /// A file was refused; `detail` names the key.
    #[error("{file}: {detail}")]
    Invalid {
        /// The bot file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Where an account's token comes from, as written in a bot file.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenSource {
    /// Generated with the embedded server's secret (only without backend.url). The default.
    Embedded,
    /// A fixed token, written here (`token`) or read from an environment variable
    /// (`token_env`).
    Static {
        /// The token itself.
        token: Option<Secret>,
        /// An environment variable holding it.
        token_env: Option<String>,
    },
    /// Token04 generated from the app id and the server secret, read from an environment
    /// variable (`secret_env`) or a file (`secret_file`, relative to the bot file).
    Generated {
        /// The backend's app id.
        app_id: u32,
        /// An environment variable holding the 32-character server secret.
        secret_env: Option<String>,
        /// A file holding it.
        secret_file: Option<PathBuf>,
        /// Lifetime of each token, e.g. "1h" (default 1h).
        lifetime: Option<String>,
    },
    /// An HTTP endpoint that answers a token for a user id, with an optional bearer token
    /// read from an environment variable.
    Http {
        /// The endpoint: `POST {"user_id"}` -> `{"token","expire_at"}`.
        url: String,
        /// An environment variable holding the bearer token.
        bearer_env: Option<String>,
    },
}

/// A token source with its secrets read: what the runner builds a provider from.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenPlan {
    /// Minted with the embedded server's secret.
    Embedded,
    /// This token.
    Static(Secret),
    /// Token04 minted here.
    Generated {
        /// The backend's app id.
        app_id: u32,
        /// The server secret.
        secret: Secret,
        /// Lifetime of each token.
        lifetime: Duration,
    },
    /// Asked from an endpoint.
    Http {
        /// The endpoint.
        url: String,
        /// Its bearer token.
        bearer: Option<Secret>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BotFile {
    behaviour: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    token: Option<TokenSource>,
    accounts: Vec<AccountEntry>,
    #[serde(default)]
    rooms: Vec<RoomFileEntry>,
    #[serde(default)]
    settings: toml::Table,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    user_id: String,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    token: Option<TokenSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomFileEntry {
    room_id: String,
    #[serde(default)]
    room_name: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default = "default_entry")]
    entry: RoomEntry,
    #[serde(default)]
    recovery: RecoveryEntry,
}

fn default_entry() -> RoomEntry {
    RoomEntry::Enter
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RecoveryEntry {
    on_connect_timeout: OnConnectTimeout,
    on_room_not_exist: OnRoomNotExist,
    max_restarts: u32,
    restart_window: String,
}

impl Default for RecoveryEntry {
    fn default() -> Self {
        Self {
            on_connect_timeout: OnConnectTimeout::Join,
            on_room_not_exist: OnRoomNotExist::Enter,
            max_restarts: 5,
            restart_window: "60s".into(),
        }
    }
}

/// One account of a bot, ready to add to the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountDef {
    /// The user id.
    pub user_id: String,
    /// The display name (default: the user id).
    pub user_name: String,
    /// The device id (default: derived from the user id).
    pub device_id: Option<String>,
    /// Where its tokens come from.
    pub token: TokenPlan,
}

/// One bot: its accounts share the behaviour and the rooms.
#[derive(Clone)]
pub struct BotDef {
    /// The file stem: `bots/greeter.toml` -> `greeter`.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// The behaviour's name.
    pub behaviour: String,
    /// The `[settings]` table as written (a reload compares it).
    pub settings: toml::Table,
    /// The behaviour, built from the settings.
    pub bot: Arc<dyn Bot>,
    /// Its accounts.
    pub accounts: Vec<AccountDef>,
    /// The rooms every account of it keeps.
    pub rooms: Vec<RoomSpec>,
}

/// The absolute path a relative bots directory resolves to (from the current directory).
fn looked_in(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// Reads every `*.toml` of `dir` (in name order; files with `enabled = false` are skipped).
/// `embedded` says whether the embedded backend runs (the `embedded` token source needs it).
/// `env` looks up environment variables (tests pass a map). The first refusal ends it.
pub fn load_dir(
    dir: &Path,
    embedded: bool,
    env: &dyn Fn(&str) -> Option<String>,
    quiet: &pacer::Quiet,
) -> Result<Vec<BotDef>, BotsError> {
    let mut bots = Vec::new();
    for loaded in load_each(dir, embedded, env, quiet)? {
        if let Some(bot) = loaded? {
            bots.push(bot);
        }
    }
    Ok(bots)
}

/// Reads every `*.toml` of `dir` like [`load_dir`], but each file on its own: one result
/// per file, in name order (a hot reload applies the good ones). A user id already used by
/// an earlier file refuses the later file.
pub fn load_each(
    dir: &Path,
    embedded: bool,
    env: &dyn Fn(&str) -> Option<String>,
    quiet: &pacer::Quiet,
) -> Result<Vec<Result<Option<BotDef>, BotsError>>, BotsError> {
    if !dir.is_dir() {
        return Err(BotsError::MissingDir(dir.to_path_buf()));
    }
    let invalid = |file: &Path, detail: String| BotsError::Invalid {
        file: file.to_path_buf(),
        detail,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| invalid(dir, e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BotsError::Empty(dir.to_path_buf()));
    }
    let mut owners: HashMap<String, PathBuf> = HashMap::new();
    let mut loaded = Vec::new();
    for file in files {
        let bot = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| parse_file(&file, &text, embedded, env, quiet))
            .map_err(|d| invalid(&file, d));
        let bot = bot.and_then(
            |bot| match bot.as_ref().and_then(|b| first_taken(b, &owners)) {
                Some((user_id, other)) => Err(invalid(
                    &file,
                    format!(
                        "accounts: user_id {user_id:?} is already used by {}",
                        other.display()
                    ),
                )),
                None => Ok(bot),
            },
        );
        if let Ok(Some(bot)) = &bot {
            for account in &bot.accounts {
                owners.insert(account.user_id.clone(), file.clone());
            }
        }
        loaded.push(bot);
    }
    Ok(loaded)
}

/// The first account of `bot` that `owners` already lists, with its owner.
fn first_taken(bot: &BotDef, owners: &HashMap<String, PathBuf>) -> Option<(String, PathBuf)> {
    bot.accounts.iter().find_map(|a| {
        owners
            .get(&a.user_id)
            .map(|other| (a.user_id.clone(), other.clone()))
    })
}

/// Parses one bot file; `Ok(None)` when it is disabled.
pub fn parse_file(
    file: &Path,
    text: &str,
    embedded: bool,
    env: &dyn Fn(&str) -> Option<String>,
    quiet: &pacer::Quiet,
) -> Result<Option<BotDef>, String> {
    let raw: BotFile = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
    if !raw.enabled {
        return Ok(None);
    }
    let ctx = registry::BuildContext { quiet, env };
    let bot = registry::build_with(&raw.behaviour, &raw.settings, &ctx).map_err(|e| match e {
        registry::BehaviourError::Unknown { .. } => format!("behaviour: {e}"),
        // "settings of behaviour ...: `key = value`: ..." names the table and the key.
        registry::BehaviourError::Settings { .. } => e.to_string(),
    })?;
    if raw.accounts.is_empty() {
        return Err("accounts: a bot needs at least one account ([[accounts]])".into());
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut accounts = Vec::new();
    for (i, a) in raw.accounts.into_iter().enumerate() {
        let key = format!("accounts[{i}]");
        if !is_valid_id(&a.user_id) {
            return Err(format!(
                "{key}.user_id: invalid user id {:?} (1 to 32 letters, digits or !#$%&()+-:;<=.>?@[]^_{{}}|~)",
                a.user_id
            ));
        }
        if accounts.iter().any(|x: &AccountDef| x.user_id == a.user_id) {
            return Err(format!("{key}.user_id: {:?} is listed twice", a.user_id));
        }
        let (source, token_key) = match (a.token, &raw.token) {
            (Some(own), _) => (own, format!("{key}.token")),
            (None, Some(shared)) => (shared.clone(), "token".to_string()),
            (None, None) => (TokenSource::Embedded, "token".to_string()),
        };
        let token = resolve_token(source, &token_key, embedded, base, env)?;
        accounts.push(AccountDef {
            user_name: a.user_name.unwrap_or_else(|| a.user_id.clone()),
            user_id: a.user_id,
            device_id: a.device_id,
            token,
        });
    }
    let rooms = parse_rooms(raw.rooms)?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Some(BotDef {
        name,
        file: file.to_path_buf(),
        behaviour: raw.behaviour,
        settings: raw.settings,
        bot,
        accounts,
        rooms,
    }))
}

/// The accounts of `shard` only; a bot left with no account is left out.
pub fn select_shard(bots: Vec<BotDef>, shard: Shard) -> Vec<BotDef> {
    if shard.count <= 1 {
        return bots;
    }
    let mut kept = Vec::new();
    for mut bot in bots {
        bot.accounts.retain(|a| shard.owns(&a.user_id));
        if !bot.accounts.is_empty() {
            kept.push(bot);
        }
    }
    kept
}

/// The `[[rooms]]` of a bot file, checked; each refusal names its key.
fn parse_rooms(entries: Vec<RoomFileEntry>) -> Result<Vec<RoomSpec>, String> {
    let mut rooms: Vec<RoomSpec> = Vec::new();
    for (i, r) in entries.into_iter().enumerate() {
        let key = format!("rooms[{i}]");
        if !is_valid_id(&r.room_id) {
            return Err(format!("{key}.room_id: invalid room id {:?}", r.room_id));
        }
        if rooms.iter().any(|x| x.room_id == r.room_id) {
            return Err(format!("{key}.room_id: {:?} is listed twice", r.room_id));
        }
        let restart_window =
            humantime::parse_duration(r.recovery.restart_window.trim()).map_err(|e| {
                format!(
                    "{key}.recovery.restart_window: invalid duration {:?} ({e})",
                    r.recovery.restart_window
                )
            })?;
        rooms.push(RoomSpec {
            room_id: r.room_id,
            room_name: r.room_name,
            attributes: r.attributes,
            entry: r.entry,
            recovery: RecoveryPolicy {
                on_connect_timeout: r.recovery.on_connect_timeout,
                on_room_not_exist: r.recovery.on_room_not_exist,
                max_restarts: r.recovery.max_restarts,
                restart_window,
            },
        });
    }
    Ok(rooms)
}

/// Reads the secrets a token source points at.
fn resolve_token(
    source: TokenSource,
    key: &str,
    embedded: bool,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TokenPlan, String> {
    let from_env = |field: &str, var: &str| {
        env(var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| Secret::new(v.trim()))
            .ok_or_else(|| format!("{key}.{field}: environment variable {var} is not set"))
    };
    match source {
        TokenSource::Embedded if embedded => Ok(TokenPlan::Embedded),
        TokenSource::Embedded => Err(format!(
            "{key}: the \"embedded\" token source needs the embedded backend, but backend.url \
             is set; give a static, generated or http token source"
        )),
        TokenSource::Static { token, token_env } => match (token, token_env) {
            (Some(t), None) if !t.is_empty() => Ok(TokenPlan::Static(t)),
            (None, Some(var)) => from_env("token_env", &var).map(TokenPlan::Static),
            _ => Err(format!(
                "{key}: a static token needs exactly one of token or token_env"
            )),
        },
        TokenSource::Generated {
            app_id,
            secret_env,
            secret_file,
            lifetime,
        } => {
            let secret = match (secret_env, secret_file) {
                (Some(var), None) => from_env("secret_env", &var)?,
                (None, Some(path)) => read_secret_file(&base.join(path), key)?,
                _ => {
                    return Err(format!(
                        "{key}: a generated token needs exactly one of secret_env or secret_file"
                    ))
                }
            };
            generated(app_id, secret, lifetime, key)
        }
        TokenSource::Http { url, bearer_env } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{key}.url: must start with http:// or https://, not {url:?}"
                ));
            }
            let bearer = bearer_env
                .map(|var| from_env("bearer_env", &var))
                .transpose()?;
            Ok(TokenPlan::Http { url, bearer })
        }
    }
}

/// A secret file's contents, trimmed.
fn read_secret_file(path: &Path, key: &str) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{key}.secret_file: cannot read {}: {e}", path.display()))?;
    Ok(Secret::new(text.trim()))
}

/// A generated token source with its secret read: the secret's length and the lifetime checked.
fn generated(
    app_id: u32,
    secret: Secret,
    lifetime: Option<String>,
    key: &str,
) -> Result<TokenPlan, String> {
    if secret.expose().len() != 32 {
        return Err(format!(
            "{key}: the server secret must be 32 characters, this one has {}",
            secret.expose().len()
        ));
    }
    let lifetime = match lifetime {
        None => Duration::from_secs(3600),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|e| format!("{key}.lifetime: invalid duration {text:?} ({e})"))?,
    };
    if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(24 * 24 * 3600) {
        return Err(format!("{key}.lifetime: must be between 1m and 24days"));
    }
    Ok(TokenPlan::Generated {
        app_id,
        secret,
        lifetime,
    })
}

/// One line for a TOML error: where it is, the line itself (which shows the key) and what
/// is wrong.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start.min(text.len())).unwrap_or(text);
            let line_no = before.matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            // the line shows the key; a static token's value must not show
            let line = crate::config::redact_secret_values(line);
            format!("line {line_no} (`{line}`): {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static Q: std::sync::LazyLock<pacer::Quiet> = std::sync::LazyLock::new(pacer::Quiet::default);

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> Result<Option<BotDef>, String> {
        parse_file(Path::new("bots/t.toml"), text, true, &no_env, &Q)
    }

    const MINIMAL: &str = "behaviour = \"echo\"\n[[accounts]]\nuser_id = \"e1\"\n";

    #[test]
    fn a_minimal_bot_gets_the_defaults() {
        let bot = parse(&format!("{MINIMAL}[[rooms]]\nroom_id = \"lobby\"\n"))
            .unwrap()
            .unwrap();
        assert_eq!(bot.name, "t");
        assert_eq!(bot.accounts[0].user_name, "e1");
        assert!(matches!(bot.accounts[0].token, TokenPlan::Embedded));
        let room = &bot.rooms[0];
        assert_eq!(room.entry, RoomEntry::Enter);
        assert_eq!(room.recovery.on_connect_timeout, OnConnectTimeout::Join);
        assert_eq!(room.recovery.on_room_not_exist, OnRoomNotExist::Enter);
        assert_eq!(room.recovery.max_restarts, 5);
        assert_eq!(room.recovery.restart_window, Duration::from_secs(60));
    }

    #[test]
    fn a_disabled_bot_is_skipped() {
        assert!(parse(&format!("enabled = false\n{MINIMAL}"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_unknown_behaviour_is_named() {
        let err = parse("behaviour = \"parrot\"\n[[accounts]]\nuser_id = \"a\"\n")
            .err()
            .unwrap();
        assert!(
            err.starts_with("behaviour: unknown behaviour \"parrot\" (known: idle, echo"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_type_shows_the_line_with_its_key() {
        let err = parse("behaviour = \"echo\"\n[[accounts]]\nuser_id = 5\n")
            .err()
            .unwrap();
        assert!(
            err.starts_with("line 3 (`user_id = 5`): invalid type: integer `5`"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = parse(&format!("{MINIMAL}colour = \"red\"\n"))
            .err()
            .unwrap();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn bad_ids_and_duplicates_are_refused() {
        let err = parse("behaviour = \"echo\"\n[[accounts]]\nuser_id = \"a b\"\n")
            .err()
            .unwrap();
        assert!(
            err.starts_with("accounts[0].user_id: invalid user id \"a b\""),
            "{err}"
        );
        let err = parse(&format!("{MINIMAL}[[accounts]]\nuser_id = \"e1\"\n"))
            .err()
            .unwrap();
        assert_eq!(err, "accounts[1].user_id: \"e1\" is listed twice");
        let err = parse(&format!("{MINIMAL}[[rooms]]\nroom_id = \"\"\n"))
            .err()
            .unwrap();
        assert_eq!(err, "rooms[0].room_id: invalid room id \"\"");
    }

    #[test]
    fn a_bad_recovery_window_names_the_key() {
        let err = parse(&format!(
            "{MINIMAL}[[rooms]]\nroom_id = \"r\"\nrecovery = {{ restart_window = \"often\" }}\n"
        ))
        .err()
        .unwrap();
        assert!(
            err.starts_with("rooms[0].recovery.restart_window: invalid duration \"often\""),
            "{err}"
        );
    }

    #[test]
    fn the_embedded_source_needs_the_embedded_backend() {
        let err = parse_file(Path::new("bots/t.toml"), MINIMAL, false, &no_env, &Q)
            .err()
            .unwrap();
        assert!(
            err.starts_with("token: the \"embedded\" token source needs the embedded backend"),
            "{err}"
        );
    }

    #[test]
    fn token_sources_read_their_secrets() {
        let env =
            |var: &str| (var == "SECRET").then(|| "0123456789abcdef0123456789abcdef".to_string());
        let text = format!(
            "{MINIMAL}token = {{ source = \"generated\", app_id = 7, secret_env = \"SECRET\", lifetime = \"2h\" }}\n"
        );
        // `token` after [[accounts]] belongs to the account table.
        let bot = parse_file(Path::new("bots/t.toml"), &text, false, &env, &Q)
            .unwrap()
            .unwrap();
        match &bot.accounts[0].token {
            TokenPlan::Generated {
                app_id,
                secret,
                lifetime,
            } => {
                assert_eq!(*app_id, 7);
                assert_eq!(secret.expose().len(), 32);
                assert_eq!(*lifetime, Duration::from_secs(7200));
            }
            other => panic!("{other:?}"),
        }
        let missing = "behaviour = \"echo\"\ntoken = { source = \"static\", token_env = \"NOPE\" }\n[[accounts]]\nuser_id = \"a\"\n";
        let err = parse_file(Path::new("bots/t.toml"), missing, false, &env, &Q)
            .err()
            .unwrap();
        assert_eq!(err, "token.token_env: environment variable NOPE is not set");
        let both = "behaviour = \"echo\"\ntoken = { source = \"static\" }\n[[accounts]]\nuser_id = \"a\"\n";
        let err = parse_file(Path::new("bots/t.toml"), both, false, &env, &Q)
            .err()
            .unwrap();
        assert_eq!(
            err,
            "token: a static token needs exactly one of token or token_env"
        );
        let http = "behaviour = \"echo\"\ntoken = { source = \"http\", url = \"ftp://x\" }\n[[accounts]]\nuser_id = \"a\"\n";
        let err = parse_file(Path::new("bots/t.toml"), http, false, &env, &Q)
            .err()
            .unwrap();
        assert_eq!(
            err,
            "token.url: must start with http:// or https://, not \"ftp://x\""
        );
    }

    #[test]
    fn a_static_token_never_prints() {
        let text = "behaviour = \"echo\"\ntoken = { source = \"static\", token = \"04secretsecret\" }\n[[accounts]]\nuser_id = \"a\"\n";
        let bot = parse_file(Path::new("bots/t.toml"), text, false, &no_env, &Q)
            .unwrap()
            .unwrap();
        let printed = format!("{:?}", bot.accounts);
        assert!(!printed.contains("04secretsecret"), "{printed}");
    }

    #[test]
    fn a_directory_is_read_in_order_and_user_ids_are_unique_across_files() {
        let dir = std::env::temp_dir().join(format!("zimfleet-bots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            load_dir(&dir, true, &no_env, &Q),
            Err(BotsError::Empty(_))
        ));
        std::fs::write(dir.join("b.toml"), MINIMAL).unwrap();
        std::fs::write(
            dir.join("a.toml"),
            "behaviour = \"idle\"\n[[accounts]]\nuser_id = \"i1\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a bot").unwrap();
        let bots = load_dir(&dir, true, &no_env, &Q).unwrap();
        assert_eq!(
            bots.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        std::fs::write(dir.join("c.toml"), MINIMAL).unwrap();
        let err = load_dir(&dir, true, &no_env, &Q).err().unwrap().to_string();
        assert_eq!(
            err,
            format!(
                "{}: accounts: user_id \"e1\" is already used by {}",
                dir.join("c.toml").display(),
                dir.join("b.toml").display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            load_dir(&dir, true, &no_env, &Q),
            Err(BotsError::MissingDir(_))
        ));
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    static Q: std::sync::LazyLock<pacer::Quiet> = std::sync::LazyLock::new(pacer::Quiet::default);

    #[test]
    fn the_shipped_bots_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bots");
        let bots = load_dir(&dir, true, &|_| None, &Q).unwrap();
        let names: Vec<_> = bots.iter().map(|b| b.behaviour.as_str()).collect();
        for behaviour in [
            "greeter",
            "keywords",
            "scheduled",
            "chatter",
            "echo",
            "relay",
        ] {
            assert!(
                names.contains(&behaviour),
                "{behaviour} missing from {names:?}"
            );
        }
    }
}
