//! Layered settings (config crate): built-in defaults < the file given by `--config` <
//! environment `ZIMFLEET__SECTION__KEY`.
//!
//! The built-in defaults are the shipped files in config/ (embedded at build time), so the
//! documented defaults and the real ones cannot drift apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

/// Prefix of every environment override: `ZIMFLEET__SERVER__LISTEN=127.0.0.1:9000`.
pub const ENV_PREFIX: &str = "ZIMFLEET";

/// Why settings were refused. Each message names the file and the key where it can.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} not found")]
    MissingFile(PathBuf),
    #[error("{source_name}: {detail}")]
    Invalid { source_name: String, detail: String },
}

/// Hides the quoted values of a line that names a secret (token, secret, bearer, password),
/// so an error message that quotes a settings line cannot leak one. An unterminated quote
/// hides the rest of the line. Other lines come back unchanged.
pub fn redact_secret_values(line: &str) -> std::borrow::Cow<'_, str> {
    let lower = line.to_ascii_lowercase();
    if !["token", "secret", "bearer", "password"]
        .iter()
        .any(|k| lower.contains(k))
    {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' || c == '\'' {
            out.push_str("***");
            for inner in chars.by_ref() {
                if inner == c {
                    out.push(c);
                    break;
                }
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One set of layers to load.
pub struct Layers<'a> {
    /// Name shown in errors for the built-in defaults, e.g. `config/server.toml`.
    pub defaults_name: &'static str,
    /// The TOML text of the defaults.
    pub defaults: &'static str,
    /// The user's file, if any.
    pub file: Option<&'a Path>,
    /// Sections this settings type owns: only `ZIMFLEET__<SECTION>__...` variables of these
    /// sections are read, so another subcommand's variables do not trip `deny_unknown_fields`.
    pub sections: &'a [&'a str],
    /// Environment to read; `None` reads the process environment (tests pass a map).
    pub env: Option<HashMap<String, String>>,
}

/// Loads `T` from the layers.
pub fn load<T: DeserializeOwned>(layers: Layers<'_>) -> Result<T, ConfigError> {
    let mut builder =
        Config::builder().add_source(File::from_str(layers.defaults, FileFormat::Toml));
    let mut names = vec![layers.defaults_name.to_string()];
    if let Some(path) = layers.file {
        if !path.is_file() {
            return Err(ConfigError::MissingFile(path.to_path_buf()));
        }
        builder = builder.add_source(File::from(path.to_path_buf()).format(FileFormat::Toml));
        names.push(path.display().to_string());
    }
    let env: HashMap<String, String> = layers.env.unwrap_or_else(|| std::env::vars().collect());
    let wanted: HashMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| {
            let mut parts = k.splitn(3, "__");
            parts.next() == Some(ENV_PREFIX)
                && parts
                    .next()
                    .is_some_and(|s| layers.sections.iter().any(|w| s.eq_ignore_ascii_case(w)))
        })
        .collect();
    if !wanted.is_empty() {
        let mut keys: Vec<_> = wanted.keys().cloned().collect();
        keys.sort();
        names.push(format!("environment ({})", keys.join(", ")));
    }
    builder = builder.add_source(
        Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(Some(wanted)),
    );
    let source_name = names.join(" < ");
    let invalid = |e: config::ConfigError| ConfigError::Invalid {
        source_name: source_name.clone(),
        // A parse error quotes the offending line, which may hold a secret.
        detail: e
            .to_string()
            .lines()
            .map(redact_secret_values)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    builder
        .build()
        .map_err(invalid)?
        .try_deserialize()
        .map_err(invalid)
}

/// An environment map for [`Layers::env`] in tests: `&[("ZIMFLEET__A__B", "v")]`.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct S {
        a: A,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct A {
        port: u16,
        name: String,
    }

    fn layers(env: &[(&str, &str)], file: Option<&Path>) -> Layers<'static> {
        Layers {
            defaults_name: "defaults.toml",
            defaults: "[a]\nport = 1\nname = \"x\"\n",
            file: file.map(|p| Box::leak(p.to_path_buf().into_boxed_path()) as &Path),
            sections: &["a"],
            env: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn env_overrides_defaults_and_other_sections_are_ignored() {
        let s: S = load(layers(
            &[
                ("ZIMFLEET__A__PORT", "9"),
                ("ZIMFLEET__B__X", "1"),
                ("ZIMFLEET__A__NAME", "123"),
            ],
            None,
        ))
        .unwrap();
        assert_eq!((s.a.port, s.a.name.as_str()), (9, "123"));
    }

    #[test]
    fn wrong_type_names_key_and_source() {
        let err = load::<S>(layers(&[("ZIMFLEET__A__PORT", "many")], None)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("port"), "{text}");
        assert!(text.contains("ZIMFLEET__A__PORT"), "{text}");
    }

    #[test]
    fn quoted_secrets_are_hidden_in_error_lines() {
        assert_eq!(
            redact_secret_values(r#"3 | server_secret = "abcdef"#),
            r#"3 | server_secret = "***"#
        );
        assert_eq!(
            redact_secret_values(r#"token = { source = "static", token = "04xyz" }"#),
            r#"token = { source = "***", token = "***" }"#
        );
        assert_eq!(
            redact_secret_values("admin_token = 'x"),
            "admin_token = '***"
        );
        assert_eq!(
            redact_secret_values(r#"behaviour = "parrot""#),
            r#"behaviour = "parrot""#
        );
    }

    #[test]
    fn a_syntax_error_on_a_secret_line_does_not_print_the_secret() {
        let dir = std::env::temp_dir().join(format!("zimfleet-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.toml");
        std::fs::write(&path, "[a]\nname = \"hiddenvalue42\nport = 2\n").unwrap();
        let err = load::<S>(layers(&[], Some(&path))).unwrap_err().to_string();
        // `name` is no secret: its value is shown (proves the line is quoted at all) ...
        assert!(err.contains("hiddenvalue42"), "{err}");
        std::fs::write(&path, "[a]\nname = \"x\"\nsecret_key = \"hiddenvalue42\n").unwrap();
        let err = load::<S>(layers(&[], Some(&path))).unwrap_err().to_string();
        // ... and a secret's is not.
        assert!(!err.contains("hiddenvalue42"), "{err}");
        assert!(err.contains("secret_key"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_file_is_named() {
        let err = load::<S>(layers(&[], Some(Path::new("/nonexistent/x.toml")))).unwrap_err();
        assert_eq!(err.to_string(), "config file /nonexistent/x.toml not found");
    }
}
