//! Token providers against the real reference server, and `zimfleet token` as a process.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use zimfleet::client::renewal::{RenewalNeeded, RenewalOutcome, RenewalSettings, TokenService};
use zimfleet::client::FleetMetrics;
use zimfleet::protocol::{ErrorCode, Secret};
use zimfleet::server::{ServerHandle, ServerSettings};
use zimfleet::token::token04;
use zimfleet::token::{HttpTokenProvider, TokenProvider};

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

// ---- providers and the renewal service against the reference server ----

async fn reference_server() -> (ServerSettings, ServerHandle) {
    let settings = ServerSettings::for_tests();
    let handle = zimfleet::server::start(settings.clone())
        .await
        .expect("the reference server starts");
    (settings, handle)
}

/// The reference server as a development token endpoint: POST /admin/tokens, admin bearer.
fn admin_provider(settings: &ServerSettings, handle: &ServerHandle) -> HttpTokenProvider {
    HttpTokenProvider {
        url: format!("{}/admin/tokens", handle.http_url()),
        bearer: settings.admin_token.clone(),
        ttl_secs: Some(120),
        timeout: Duration::from_secs(2),
        trust: zimfleet::tls::ClientTrust::public_roots(),
    }
}

fn unix_now() -> i64 {
    zimfleet::clock::unix_secs() as i64
}

#[actix_rt::test]
async fn http_provider_gets_a_token_from_the_reference_server() {
    let (settings, handle) = reference_server().await;
    let provider = admin_provider(&settings, &handle);
    let token = provider.token("alice").await.expect("a token");
    let claims = token04::verify(token.expose(), &settings.server_secret).expect("it verifies");
    assert_eq!(claims.user_id, "alice");
    assert_eq!(claims.app_id, settings.app_id);
    assert_eq!(claims.expire - claims.ctime, 120);
    // A second call is a second, different token.
    let again = provider.token("alice").await.expect("a token");
    assert_ne!(again, token);
    handle.stop().await;
}

#[actix_rt::test]
async fn http_provider_with_a_bad_bearer_gets_the_providers_error() {
    let (settings, handle) = reference_server().await;
    let wrong = HttpTokenProvider {
        bearer: Some(Secret::from("not-the-admin-token")),
        ..admin_provider(&settings, &handle)
    };
    let error = wrong.token("alice").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR);
    assert_eq!(error.msg, "token endpoint answered HTTP 401");

    let without = HttpTokenProvider {
        bearer: None,
        ..admin_provider(&settings, &handle)
    };
    let error = without.token("alice").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR);
    assert_eq!(error.msg, "token endpoint answered HTTP 401");

    // A path that is not a token endpoint.
    let elsewhere = HttpTokenProvider {
        url: format!("{}/admin/nothing-here", handle.http_url()),
        ..admin_provider(&settings, &handle)
    };
    let error = elsewhere.token("alice").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR);
    assert_eq!(error.msg, "token endpoint answered HTTP 404");
    handle.stop().await;
}

#[actix_rt::test]
async fn http_provider_on_a_stopped_server_is_a_network_error() {
    let (settings, handle) = reference_server().await;
    let provider = admin_provider(&settings, &handle);
    handle.stop().await;
    let error = provider.token("alice").await.unwrap_err();
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR, "{error}");
    assert!(error.msg.starts_with("token endpoint: "), "{}", error.msg);
}

/// Stands in for an account: hands each outcome to the test.
struct Outcomes(tokio::sync::mpsc::Sender<RenewalOutcome>);

impl Actor for Outcomes {
    type Context = Context<Self>;
}

impl Handler<RenewalOutcome> for Outcomes {
    type Result = ();
    fn handle(&mut self, msg: RenewalOutcome, _: &mut Context<Self>) {
        self.0.try_send(msg).expect("test channel has room");
    }
}

#[actix_rt::test]
async fn renewal_service_renews_through_the_reference_server() {
    let (settings, handle) = reference_server().await;
    let metrics = Arc::new(FleetMetrics::default());
    let service = TokenService::start(10, metrics.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let account = Outcomes(tx).start();
    service.do_send(RenewalNeeded {
        user_id: Arc::from("bob"),
        expire_at: unix_now() + 60,
        provider: Arc::new(admin_provider(&settings, &handle)),
        reply_to: account.clone().recipient(),
    });
    let outcome = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("an outcome within 3 s")
        .expect("channel open");
    let RenewalOutcome::Token(token) = outcome else {
        panic!("expected a token, got {outcome:?}");
    };
    let claims = token04::verify(token.expose(), &settings.server_secret).unwrap();
    assert_eq!(claims.user_id, "bob");
    assert_eq!(metrics.renewals_failed.get(), 0);
    assert_eq!(metrics.renewals_gave_up.get(), 0);
    handle.stop().await;
}

#[actix_rt::test]
async fn renewal_service_gives_up_on_a_refusing_endpoint_at_the_deadline() {
    let (settings, handle) = reference_server().await;
    let metrics = Arc::new(FleetMetrics::default());
    // Deadline 600 ms from now: expire_at is whole seconds, the margin makes up the rest.
    let now_ms = zimfleet::clock::unix_ms() as i64;
    let expire_at = now_ms / 1000 + 2;
    let deadline_ms = now_ms + 600;
    let service = TokenService::start_with(
        RenewalSettings {
            expire_margin: Duration::from_millis((expire_at * 1000 - deadline_ms) as u64),
            retry_first: Duration::from_millis(50),
            retry_max: Duration::from_millis(100),
            ..RenewalSettings::default()
        },
        metrics.clone(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let account = Outcomes(tx).start();
    let started = Instant::now();
    service.do_send(RenewalNeeded {
        user_id: Arc::from("carol"),
        expire_at,
        provider: Arc::new(HttpTokenProvider {
            bearer: Some(Secret::from("wrong")),
            ..admin_provider(&settings, &handle)
        }),
        reply_to: account.clone().recipient(),
    });
    let outcome = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("an outcome within 3 s")
        .expect("channel open");
    let RenewalOutcome::GaveUp(error) = outcome else {
        panic!("expected GaveUp, got {outcome:?}");
    };
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR);
    assert!(
        error
            .msg
            .starts_with("token endpoint answered HTTP 401 (gave up after "),
        "{}",
        error.msg
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "gave up after {took:?}");
    assert!(took <= Duration::from_millis(900), "gave up after {took:?}");
    assert!(metrics.renewals_failed.get() >= 3);
    assert_eq!(metrics.renewals_gave_up.get(), 1);
    handle.stop().await;
}
