//! `zimfleet token`: mint, inspect and verify Token04 tokens.
//!
//! The server secret never comes from a plain flag (it would sit in shell history): it is
//! read from an environment variable (`--secret-env`, default `ZIMFLEET_SERVER_SECRET`) or a
//! file (`--secret-file`). A token argument of `-` is read from standard input. Wrong input
//! prints one clear line on stderr and exits with code 2.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;

use crate::protocol::{is_valid_id, ErrorCode, Secret};
use crate::token::token04::{self, ClientTokenLimits, TokenError};

/// Arguments of `zimfleet token`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The subcommands of `zimfleet token`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Mint a Token04 (AES-GCM) for a user and print it.
    Mint {
        /// The application id the token is for.
        #[arg(long)]
        app_id: u32,
        /// The user id the token is for.
        #[arg(long)]
        user: String,
        /// Lifetime in seconds (a ZIM client accepts 30 s to 24 days).
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Where the server secret comes from.
        #[command(flatten)]
        secret: SecretSource,
    },
    /// Print a token's version, layout and expiry (no secret needed; nothing is decrypted).
    Inspect {
        /// The token, or `-` to read it from standard input.
        token: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decrypt a token with the server secret and print its claims.
    Verify {
        /// The token, or `-` to read it from standard input.
        token: String,
        /// Where the server secret comes from.
        #[command(flatten)]
        secret: SecretSource,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Where the 32-character server secret comes from.
#[derive(Debug, clap::Args)]
pub struct SecretSource {
    /// Environment variable that holds the server secret.
    #[arg(long, value_name = "VAR", default_value = "ZIMFLEET_SERVER_SECRET")]
    pub secret_env: String,
    /// File that holds the server secret (a trailing newline is ignored), instead of the
    /// environment variable.
    #[arg(long, value_name = "FILE", conflicts_with = "secret_env")]
    pub secret_file: Option<PathBuf>,
}

/// Why `zimfleet token` refused its input.
#[derive(Debug, thiserror::Error)]
pub enum TokenCliError {
    /// The environment variable named for the secret is not set.
    #[error("environment variable {0} is not set or empty (export the server secret there, or use --secret-file)")]
    SecretEnvMissing(String),
    /// The secret file could not be read.
    #[error("cannot read the secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard input could not be read.
    #[error("cannot read the token from standard input: {0}")]
    Stdin(std::io::Error),
    /// The user id breaks the id rules.
    #[error("invalid user id {0:?}: 1 to 32 letters, digits or !#$%&()+-:;<=.>?@[]^_{{}}|~")]
    InvalidUser(String),
    /// The lifetime is out of range.
    #[error("--ttl must be 1 to {MAX_TTL_SECS} seconds, got {0}")]
    Ttl(u64),
    /// The token could not be made or read.
    #[error("{0} ({code})", code = .0.code().number())]
    Token(#[from] TokenError),
}

/// Ten years: anything longer is a typo.
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// Runs `zimfleet token`; the exit code says how it went.
pub fn main(args: TokenArgs) -> ExitCode {
    match run(args.command) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("zimfleet token: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs one command; the text to print on success.
pub fn run(command: TokenCommand) -> Result<String, TokenCliError> {
    match command {
        TokenCommand::Mint {
            app_id,
            user,
            ttl,
            secret,
        } => {
            if !is_valid_id(&user) {
                return Err(TokenCliError::InvalidUser(user));
            }
            if ttl == 0 || ttl > MAX_TTL_SECS {
                return Err(TokenCliError::Ttl(ttl));
            }
            let limits = ClientTokenLimits::default();
            if (ttl as i64) < limits.min_lifetime_secs || (ttl as i64) > limits.max_lifetime_secs {
                eprintln!(
                    "zimfleet token: warning: a ZIM client refuses a token that lives {ttl} s \
                     (it accepts 30 s to 24 days)"
                );
            }
            let secret = secret.load()?;
            let token = token04::generate(app_id, &user, &secret, ttl as i64)?;
            Ok(token.expose().to_owned())
        }
        TokenCommand::Inspect { token, json } => {
            let token = read_token(token)?;
            let header = Header::read(&token)?;
            Ok(header.render(&token, json))
        }
        TokenCommand::Verify {
            token,
            secret,
            json,
        } => {
            let token = read_token(token)?;
            let secret = secret.load()?;
            let claims = token04::verify(&token, &secret)?;
            let layout = Header::read(&token)?.layout;
            if json {
                let mut value = serde_json::to_value(&claims).unwrap_or_default();
                value["layout"] = layout.into();
                return Ok(value.to_string());
            }
            Ok(format!(
                "valid: decrypts with this secret ({layout})\n\
                 app_id: {}\nuser_id: {}\nnonce: {}\nctime: {}\nexpire: {}\npayload: {:?}",
                claims.app_id,
                claims.user_id,
                claims.nonce,
                describe_time(claims.ctime),
                describe_time(claims.expire),
                claims.payload,
            ))
        }
    }
}

impl SecretSource {
    fn load(&self) -> Result<Secret, TokenCliError> {
        let secret = match &self.secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| TokenCliError::SecretFile {
                    path: path.clone(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => std::env::var(&self.secret_env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| TokenCliError::SecretEnvMissing(self.secret_env.clone()))?,
        };
        let secret = Secret::new(secret);
        if secret.expose().len() != token04::SECRET_LEN {
            return Err(TokenError::SecretLength(secret.expose().len()).into());
        }
        Ok(secret)
    }
}

fn read_token(arg: String) -> Result<String, TokenCliError> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(TokenCliError::Stdin)?;
    Ok(text.trim().to_owned())
}

/// The clear part of a token (what a client can read without the secret).
struct Header {
    expire: i64,
    layout: &'static str,
    ciphertext_len: usize,
}

impl Header {
    /// Reads and checks the whole layout (not only the expiry).
    fn read(token: &str) -> Result<Header, TokenError> {
        if token.len() < token04::MIN_TOKEN_CHARS {
            return Err(TokenError::TooShort);
        }
        let body = token
            .strip_prefix(token04::PREFIX)
            .ok_or(TokenError::Version)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| TokenError::Base64)?;
        let mut rest = bytes.as_slice();
        let expire = i64::from_be_bytes(take::<8>(&mut rest, "no expiry")?);
        let nonce_len = u16::from_be_bytes(take::<2>(&mut rest, "no nonce length")?) as usize;
        let layout = match nonce_len {
            token04::GCM_NONCE_LEN => "gcm",
            token04::CBC_IV_LEN => "cbc",
            _ => return Err(TokenError::Layout("nonce length is neither 12 nor 16")),
        };
        skip(&mut rest, nonce_len, "nonce cut short")?;
        let ciphertext_len =
            u16::from_be_bytes(take::<2>(&mut rest, "no ciphertext length")?) as usize;
        skip(&mut rest, ciphertext_len, "ciphertext cut short")?;
        match (layout, rest) {
            ("gcm", [1]) | ("cbc", []) => {}
            _ => return Err(TokenError::Layout("unexpected trailing bytes")),
        }
        Ok(Header {
            expire,
            layout,
            ciphertext_len,
        })
    }

    fn render(&self, token: &str, json: bool) -> String {
        let check = match token04::client_check(token, now_unix(), &ClientTokenLimits::default()) {
            Ok(_) => "ok".to_owned(),
            Err(code) => describe_code(code),
        };
        if json {
            return serde_json::json!({
                "version": token04::PREFIX,
                "layout": self.layout,
                "expire_at": self.expire,
                "expires_in_secs": self.expire.saturating_sub(now_unix()),
                "ciphertext_bytes": self.ciphertext_len,
                "client_check": check,
            })
            .to_string();
        }
        let layout = match self.layout {
            "gcm" => "gcm (AES-256-GCM, 12-byte nonce; current)",
            _ => "cbc (AES-256-CBC, 16-byte IV; legacy)",
        };
        format!(
            "version: {}\nlayout: {layout}\nexpire: {}\nciphertext: {} bytes\nclient check: {check}",
            token04::PREFIX,
            describe_time(self.expire),
            self.ciphertext_len,
        )
    }
}

fn take<const N: usize>(rest: &mut &[u8], what: &'static str) -> Result<[u8; N], TokenError> {
    let head: [u8; N] = rest
        .get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or(TokenError::Layout(what))?;
    *rest = &rest[N..];
    Ok(head)
}

fn skip(rest: &mut &[u8], n: usize, what: &'static str) -> Result<(), TokenError> {
    if rest.len() < n {
        return Err(TokenError::Layout(what));
    }
    *rest = &rest[n..];
    Ok(())
}

fn describe_code(code: ErrorCode) -> String {
    format!("{} ({})", code.number(), code.description())
}

/// `1764100000 (2025-11-25T19:46:40Z, in 59m 58s)`.
fn describe_time(unix: i64) -> String {
    // humantime formats years up to 9999 only (its Display errors past that, and
    // `to_string` would panic): 253402300800 is 10000-01-01T00:00:00Z.
    let when = u64::try_from(unix)
        .ok()
        .filter(|&s| s < 253_402_300_800)
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "out of range".to_owned());
    let delta = unix.saturating_sub(now_unix());
    let relative = match delta {
        0 => "now".to_owned(),
        d if d > 0 => format!(
            "in {}",
            humantime::format_duration(Duration::from_secs(d as u64))
        ),
        d => format!(
            "{} ago",
            humantime::format_duration(Duration::from_secs(d.unsigned_abs()))
        ),
    };
    format!("{unix} ({when}, {relative})")
}

/// Unix seconds now, from the crate's one clock.
fn now_unix() -> i64 {
    i64::try_from(crate::clock::unix_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_and_negative_expiries_describe_without_panicking() {
        for unix in [i64::MAX, 253_402_300_800, i64::MIN, -1] {
            let text = describe_time(unix);
            assert!(text.contains("out of range"), "{text}");
        }
        assert!(describe_time(1_619_773_376).contains("2021-04-30T09:02:56Z"));
    }

    const CBC_VECTOR: &str = "04AAAAAGCLx8AAEGV4bjYybGJva29hOG44anAAcGWCw6utyxH2DEPArGHIW+uFtLMjAbYbXXoL81Y07fsYjfbtTn9mBL4AAO0fjm8DMbN290akErOffxI3bS2rROlLxu31U1EYWuwrtjfcvsHhsPJYAjXPg79+haYqVAor99iA1Z3AWRsqttkYgf/h6+k=";
    const GCM_VECTOR: &str = "04AAAAAGCLx8AADDAxMjM0NTY3ODlhYgBzCyp4BFmXo9vH6W67++pmKSYP/GBrslcVz6p0LJgT/ryXLGlZoAbYSE1TjBsrJ/wnDmG/PTJ4VpLpoHBpx7lf/meMypjYwBLEUfjBkFrD6DO8+X++4ld1ePOxlAUibUcZLDgaUhOZqHRiRn7UQVZga72MeQE=";

    #[test]
    fn header_reads_both_interop_vectors() {
        let gcm = Header::read(GCM_VECTOR).unwrap();
        assert_eq!((gcm.expire, gcm.layout), (1619773376, "gcm"));
        let cbc = Header::read(CBC_VECTOR).unwrap();
        assert_eq!((cbc.expire, cbc.layout), (1619773376, "cbc"));
        let text = cbc.render(CBC_VECTOR, false);
        assert!(
            text.contains("expire: 1619773376 (2021-04-30T09:02:56Z, "),
            "{text}"
        );
        assert!(
            text.ends_with("client check: 6000106 (token expired)"),
            "{text}"
        );
    }

    #[test]
    fn header_refuses_malformed_tokens() {
        assert_eq!(Header::read("04abc").err(), Some(TokenError::TooShort));
        let v3 = format!("03{}", &GCM_VECTOR[2..]);
        assert_eq!(Header::read(&v3).err(), Some(TokenError::Version));
        let cut = &GCM_VECTOR[..GCM_VECTOR.len() - 8];
        assert!(matches!(
            Header::read(cut).err(),
            Some(TokenError::Base64 | TokenError::Layout(_))
        ));
    }
}
