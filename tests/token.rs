//! Token providers against the real reference server, and `zimfleet token` as a process.

use std::process::{Command, Output, Stdio};

use std::io::Write as _;

const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";
const CBC_VECTOR: &str = "04AAAAAGCLx8AAEGV4bjYybGJva29hOG44anAAcGWCw6utyxH2DEPArGHIW+uFtLMjAbYbXXoL81Y07fsYjfbtTn9mBL4AAO0fjm8DMbN290akErOffxI3bS2rROlLxu31U1EYWuwrtjfcvsHhsPJYAjXPg79+haYqVAor99iA1Z3AWRsqttkYgf/h6+k=";

/// `zimfleet token ARGS` with the secret in `ZIMFLEET_SERVER_SECRET` (when given) and,
/// optionally, `stdin` fed to it.
fn zimfleet_token(args: &[&str], secret: Option<&str>, stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    command
        .arg("token")
        .args(args)
        .env_remove("ZIMFLEET_SERVER_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        command.env("ZIMFLEET_SERVER_SECRET", secret);
    }
    let mut child = command.spawn().expect("zimfleet runs");
    let mut pipe = child.stdin.take().expect("stdin piped");
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(pipe);
    child.wait_with_output().expect("zimfleet finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_owned()
}

fn assert_refused(output: &Output, message: &str) {
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(output));
    assert_eq!(stderr(output), message);
    assert!(output.stdout.is_empty(), "stdout: {}", stdout(output));
}

#[test]
fn cli_mint_then_verify_round_trip() {
    let minted = zimfleet_token(
        &["mint", "--app-id", "42", "--user", "alice", "--ttl", "600"],
        Some(SECRET),
        None,
    );
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted);
    assert!(token.starts_with("04"), "{token}");
    assert!(!token.contains(SECRET));

    let verified = zimfleet_token(&["verify", &token, "--json"], Some(SECRET), None);
    assert!(verified.status.success(), "{}", stderr(&verified));
    let claims: serde_json::Value = serde_json::from_str(&stdout(&verified)).unwrap();
    assert_eq!(claims["app_id"], 42);
    assert_eq!(claims["user_id"], "alice");
    assert_eq!(claims["layout"], "gcm");
    let lifetime = claims["expire"].as_i64().unwrap() - claims["ctime"].as_i64().unwrap();
    assert_eq!(lifetime, 600);

    // The same through a file and standard input, as text.
    let dir = std::env::temp_dir().join(format!("zimfleet-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let verified = zimfleet_token(
        &[
            "verify",
            "-",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
        None,
        Some(&format!("{token}\n")),
    );
    assert!(verified.status.success(), "{}", stderr(&verified));
    let text = stdout(&verified);
    assert!(
        text.starts_with("valid: decrypts with this secret (gcm)\napp_id: 42\nuser_id: alice\n"),
        "{text}"
    );
    assert!(!text.contains(SECRET) && !stderr(&verified).contains(SECRET));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cli_verify_with_another_secret_is_refused() {
    let minted = zimfleet_token(
        &["mint", "--app-id", "1", "--user", "bob"],
        Some(SECRET),
        None,
    );
    let token = stdout(&minted);
    let other = "abcdefabcdefabcdefabcdefabcdefab";
    let verified = zimfleet_token(&["verify", &token], Some(other), None);
    assert_refused(
        &verified,
        "zimfleet token: token does not decrypt with this secret (6000103)",
    );
    assert!(!stderr(&verified).contains(other));
}

#[test]
fn cli_inspect_needs_no_secret() {
    let inspected = zimfleet_token(&["inspect", CBC_VECTOR, "--json"], None, None);
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    let header: serde_json::Value = serde_json::from_str(&stdout(&inspected)).unwrap();
    assert_eq!(header["version"], "04");
    assert_eq!(header["layout"], "cbc");
    assert_eq!(header["expire_at"], 1619773376);
    assert_eq!(header["client_check"], "6000106 (token expired)");

    let minted = zimfleet_token(
        &["mint", "--app-id", "1", "--user", "carol"],
        Some(SECRET),
        None,
    );
    let inspected = zimfleet_token(&["inspect", &stdout(&minted)], None, None);
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    let text = stdout(&inspected);
    assert!(
        text.starts_with(
            "version: 04\nlayout: gcm (AES-256-GCM, 12-byte nonce; current)\nexpire: "
        ),
        "{text}"
    );
    assert!(text.ends_with("\nclient check: ok"), "{text}");
}

#[test]
fn cli_bad_input_exits_2_with_a_clear_message() {
    assert_refused(
        &zimfleet_token(&["mint", "--app-id", "1", "--user", "u1"], None, None),
        "zimfleet token: environment variable ZIMFLEET_SERVER_SECRET is not set or empty \
         (export the server secret there, or use --secret-file)",
    );
    assert_refused(
        &zimfleet_token(
            &["mint", "--app-id", "1", "--user", "u1"],
            Some("short"),
            None,
        ),
        "zimfleet token: server secret must be 32 bytes, got 5 (6000001)",
    );
    assert_refused(
        &zimfleet_token(
            &["mint", "--app-id", "1", "--user", "no spaces"],
            Some(SECRET),
            None,
        ),
        "zimfleet token: invalid user id \"no spaces\": 1 to 32 letters, digits or \
         !#$%&()+-:;<=.>?@[]^_{}|~",
    );
    assert_refused(
        &zimfleet_token(
            &["mint", "--app-id", "1", "--user", "u1", "--ttl", "0"],
            Some(SECRET),
            None,
        ),
        "zimfleet token: --ttl must be 1 to 315360000 seconds, got 0",
    );
    assert_refused(
        &zimfleet_token(
            &[
                "mint",
                "--app-id",
                "1",
                "--user",
                "u1",
                "--secret-file",
                "/nonexistent/secret",
            ],
            None,
            None,
        ),
        "zimfleet token: cannot read the secret file /nonexistent/secret: No such file or \
         directory (os error 2)",
    );
    assert_refused(
        &zimfleet_token(&["inspect", "04short"], None, None),
        "zimfleet token: token shorter than 31 characters (6000103)",
    );
    let wrong_version = format!("03{}", &CBC_VECTOR[2..]);
    assert_refused(
        &zimfleet_token(&["inspect", &wrong_version], None, None),
        "zimfleet token: token version is not \"04\" (6000107)",
    );
    assert_refused(
        &zimfleet_token(
            &["inspect", "04!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"],
            None,
            None,
        ),
        "zimfleet token: token is not valid base64 (6000103)",
    );
    // A token cut after its header: valid base64, broken layout.
    assert_refused(
        &zimfleet_token(
            &["inspect", "04AAAAAGCLx8AADDAxMjM0NTY3ODlhYg=="],
            None,
            None,
        ),
        "zimfleet token: token layout is malformed: no ciphertext length (6000103)",
    );
    // clap's own usage errors exit 2 as well.
    let no_user = zimfleet_token(&["mint", "--app-id", "1"], Some(SECRET), None);
    assert_eq!(no_user.status.code(), Some(2));
    assert!(
        stderr(&no_user).contains("--user <USER>"),
        "{}",
        stderr(&no_user)
    );
    let secret_flag = zimfleet_token(
        &["mint", "--app-id", "1", "--user", "u1", "--secret", SECRET],
        None,
        None,
    );
    assert_eq!(secret_flag.status.code(), Some(2), "no plain --secret flag");
}

#[test]
fn cli_mint_warns_about_lifetimes_a_client_refuses() {
    let minted = zimfleet_token(
        &["mint", "--app-id", "1", "--user", "u1", "--ttl", "10"],
        Some(SECRET),
        None,
    );
    assert!(minted.status.success());
    assert_eq!(
        stderr(&minted),
        "zimfleet token: warning: a ZIM client refuses a token that lives 10 s \
         (it accepts 30 s to 24 days)"
    );
    assert!(stdout(&minted).starts_with("04"));
}
