//! wss:// end to end (docs/tls.md): a CA and server certificates made at run time (rcgen), the
//! real reference server terminating TLS on 127.0.0.1:0, fleets over wss:// with tokens from
//! the https:// token endpoint, a wrong CA and a wrong name, bad certificate and key files
//! (`zimfleet server` exits 2), and `zimfleet run` / `zimfleet loadtest` with a `ca_file`.

mod client_support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use client_support::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use zimfleet::bot::Idle;
use zimfleet::client::{AccountSpec, Fleet, RoomSpec};
use zimfleet::protocol::{ErrorCode, MessageType};
use zimfleet::server::{Admin, ServerSettings, ServerTls};
use zimfleet::tls::ClientTrust;
use zimfleet::token::{HttpTokenProvider, TokenProvider};

// ---------------------------------------------------------------------------------------------
// Certificates

/// A fresh directory under the test target directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CA whose certificate is written to `DIR/NAME.crt`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = dir.join(format!("{name}.crt"));
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    /// A server certificate for `names` (DNS names or IP addresses) and its key, written to
    /// `DIR/FILE.crt` and `DIR/FILE.key`.
    fn server_cert(&self, dir: &Path, file: &str, names: &[&str]) -> ServerTls {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_file, key_file) = (
            dir.join(format!("{file}.crt")),
            dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        ServerTls::new(cert_file, key_file)
    }
}

/// A CA and a certificate for 127.0.0.1 and localhost signed by it.
struct Pki {
    dir: PathBuf,
    ca: Ca,
    server: ServerTls,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = temp_dir(name);
        let ca = Ca::new(&dir, "ca");
        let server = ca.server_cert(&dir, "server", &["127.0.0.1", "localhost"]);
        Pki { dir, ca, server }
    }

    fn trust(&self) -> ClientTrust {
        ClientTrust::with_ca_file("ca_file", &self.ca.pem).expect("the CA file loads")
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn tls_server(tls: &ServerTls) -> Env {
    let tls = tls.clone();
    server_with(move |s| s.tls = Some(tls)).await
}

/// The reference server's development token endpoint (POST /admin/tokens, admin bearer).
fn token_endpoint(env: &Env, trust: ClientTrust) -> HttpTokenProvider {
    HttpTokenProvider {
        bearer: env.settings.admin_token.clone(),
        ttl_secs: Some(3600),
        timeout: Duration::from_secs(2),
        trust,
        ..HttpTokenProvider::new(format!("{}/admin/tokens", env.server.http_url()))
    }
}

fn spec(user: &str, token: Arc<dyn TokenProvider>, rooms: &[&str]) -> AccountSpec {
    AccountSpec {
        user_id: user.into(),
        user_name: user.into(),
        device_id: None,
        token,
        rooms: rooms.iter().map(|r| RoomSpec::new(*r)).collect(),
    }
}

fn fleet(url: &str, trust: ClientTrust) -> Fleet {
    let mut config = fleet_config(url);
    config.trust = trust;
    Fleet::start(config)
}

/// Everything this test binary logs (INFO and up), for the once-per-account warnings.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = Arc::clone(&buffer);
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Capture(Arc::clone(&sink)))
            .init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured lines that mention `account=NAME` and the wss:// connect failure.
fn certificate_lines(log: &Mutex<Vec<u8>>, account: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let field = format!("account={account}");
    text.lines()
        .filter(|l| l.contains("wss:// connect failed") && l.split(' ').any(|w| w == field))
        .map(str::to_owned)
        .collect()
}

/// Exactly one warning for `account` (not one per retry), holding each of `parts`.
fn assert_logged_once(log: &Mutex<Vec<u8>>, account: &str, parts: &[&str]) {
    let lines = certificate_lines(log, account);
    assert_eq!(lines.len(), 1, "logged once, not per retry: {lines:#?}");
    for part in parts {
        assert!(lines[0].contains(part), "{part:?} not in {}", lines[0]);
    }
}

/// Polls `check` every 10 ms until it holds, at most `within`.
async fn until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// In process

#[actix_rt::test]
async fn a_fleet_runs_over_wss_with_tokens_from_the_https_endpoint() {
    let pki = Pki::new("fleet");
    let env = tls_server(&pki.server).await;
    let url = env.server.ws_url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    assert!(env.server.http_url().starts_with("https://127.0.0.1:"));
    let trust = pki.trust();
    let tokens: Arc<dyn TokenProvider> = Arc::new(token_endpoint(&env, trust.clone()));
    let fleet = fleet(&url, trust);
    let mut ev = Events::new(&fleet);
    let bot = Arc::new(RecordingBot::default());
    let a = fleet
        .add_account(spec("ta", Arc::clone(&tokens), &["tr"]), Arc::new(Idle))
        .unwrap();
    fleet
        .add_account(spec("tb", tokens, &["tr"]), bot.clone())
        .unwrap();
    ev.room("ta", "tr", (2, 0)).await;
    ev.room("tb", "tr", (2, 0)).await;
    let reply = a
        .send_room_message("tr", MessageType::Text, "over tls".into())
        .await
        .unwrap();
    assert_eq!(reply.seq, Some(1));
    // Larger than one TLS record (16 KiB): the writer flushes every record.
    let big = "x".repeat(40_000);
    a.send_peer_message("tb", MessageType::Text, big.clone())
        .await
        .unwrap();
    bot.wait_messages(Duration::from_secs(3), |m| m.len() == 2)
        .await;
    let bodies: Vec<String> = bot
        .messages
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.body.clone())
        .collect();
    assert_eq!(bodies, ["over tls".to_string(), big]);
    let stats = env.admin.stats();
    assert_eq!((stats.sessions, stats.users_online), (2, 2));
    assert_eq!(ev.conn_pairs("ta"), [(1, 1), (2, 0)]);
    env.server.stop().await;
}

#[actix_rt::test]
async fn a_wrong_ca_or_a_wrong_name_fails_with_the_certificate_error_and_harms_nothing_else() {
    let log = captured_log();
    let pki = Pki::new("wrong");
    let other_ca = Ca::new(&pki.dir, "other-ca");
    let other_trust = ClientTrust::with_ca_file("ca_file", &other_ca.pem).unwrap();
    let env = tls_server(&pki.server).await;
    // Signed by the right CA, for another name than the address the clients dial.
    let elsewhere_tls = pki
        .ca
        .server_cert(&pki.dir, "elsewhere", &["other.example"]);
    let elsewhere = tls_server(&elsewhere_tls).await;
    let tokens = env.tokens(3600);

    let good_fleet = fleet(&env.server.ws_url(), pki.trust());
    let mut ev = Events::new(&good_fleet);
    let good = good_fleet
        .add_account(spec("good", Arc::clone(&tokens), &["gr"]), Arc::new(Idle))
        .unwrap();
    ev.room("good", "gr", (2, 0)).await;

    let wrong_ca = fleet(&env.server.ws_url(), other_trust.clone());
    let bad_ca = wrong_ca
        .add_account(spec("wrong-ca", Arc::clone(&tokens), &[]), Arc::new(Idle))
        .unwrap();
    let wrong_name = fleet(&elsewhere.server.ws_url(), pki.trust());
    let bad_name = wrong_name
        .add_account(
            spec("wrong-name", elsewhere.tokens(3600), &[]),
            Arc::new(Idle),
        )
        .unwrap();
    // Several attempts each, on the backoff (20-50 ms, then 50, 100, 200 ms).
    let (m1, m2) = (wrong_ca.metrics(), wrong_name.metrics());
    until("4 connect attempts each", Duration::from_secs(10), || {
        m1.logins_attempted.get() >= 4 && m2.logins_attempted.get() >= 4
    })
    .await;

    assert_logged_once(
        &log,
        "wrong-ca",
        &[
            "wss:// connect failed: certificate issued by a CA the client does not trust \
             (UnknownIssuer): set ca_file to the CA that signed it",
        ],
    );
    assert_logged_once(
        &log,
        "wrong-name",
        &[
            "wss:// connect failed: certificate not valid for name \"127.0.0.1\"; certificate \
             is only valid for",
            "other.example",
        ],
    );
    // Both keep retrying as for any network failure: Connecting, never ended.
    for handle in [&bad_ca, &bad_name] {
        let status = handle.state().await.unwrap();
        assert_eq!(status.state.as_i32(), 1, "{status:?}");
        assert!(status.ended.is_none(), "{status:?}");
    }

    // The token endpoint's https:// client has the same trust and the same reason.
    let error = token_endpoint(&env, other_trust)
        .token("someone")
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::NETWORK_ERROR);
    assert_eq!(
        error.msg,
        "token endpoint: certificate issued by a CA the client does not trust (UnknownIssuer): \
         set ca_file to the CA that signed it"
    );

    // Nothing else was harmed: the good account stayed connected and in its room throughout.
    let status = good.state().await.unwrap();
    assert_eq!(status.state.as_i32(), 2, "{status:?}");
    assert_eq!(ev.conn_pairs("good"), [(1, 1), (2, 0)]);
    ev.drain();
    assert_eq!(ev.room_pairs("good", "gr"), [(1, 6), (2, 0)]);
    let stats = env.admin.stats();
    assert_eq!((stats.sessions, stats.users_online), (1, 1));
    assert_eq!(elsewhere.admin.stats().sessions, 0);
    env.server.stop().await;
    elsewhere.server.stop().await;
}

#[actix_rt::test]
async fn a_plain_client_on_the_tls_listener_gets_no_session() {
    let pki = Pki::new("plain");
    let env = tls_server(&pki.server).await;
    let plain = env.server.ws_url().replacen("wss://", "ws://", 1);
    let fleet = fleet(&plain, pki.trust());
    fleet
        .add_account(spec("plain", env.tokens(3600), &[]), Arc::new(Idle))
        .unwrap();
    let metrics = fleet.metrics();
    until("3 connect attempts", Duration::from_secs(10), || {
        metrics.logins_attempted.get() >= 3
    })
    .await;
    assert_eq!(metrics.logins_succeeded.get(), 0);
    assert_eq!(env.admin.stats().sessions, 0);
    env.server.stop().await;
}

#[actix_rt::test]
async fn a_connection_that_never_starts_its_handshake_is_closed_after_the_timeout() {
    use tokio::io::AsyncReadExt as _;
    let pki = Pki::new("handshake");
    let mut tls = pki.server.clone();
    tls.handshake_timeout_ms = 200;
    let env = tls_server(&tls).await;
    let mut silent = tokio::net::TcpStream::connect(env.server.local_addr())
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("closed by the server within 5 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert_eq!(env.admin.stats().sessions, 0);
    env.server.stop().await;
}

#[actix_rt::test]
async fn start_refuses_a_bad_file_naming_the_key_and_the_file() {
    let pki = Pki::new("start");
    let missing = pki.dir.join("missing.key");
    let mut settings = ServerSettings::for_tests();
    settings.tls = Some(ServerTls::new(&pki.server.cert_file, &missing));
    let error = zimfleet::server::start(settings).await.err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        error.to_string(),
        format!(
            "server.tls.key_file ({}): cannot read the file: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

// ---------------------------------------------------------------------------------------------
// The binary

/// `zimfleet ARGS` with none of the test's own ZIMFLEET__ variables.
fn zimfleet(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ZIMFLEET") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Waits at most `within` for `child` to exit; its exit code and stderr.
fn exit_of(mut child: Child, within: Duration) -> (Option<i32>, String) {
    let end = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("no exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// `zimfleet server` with `[server.tls]` from the environment: exit code and stderr.
fn server_with_files(cert: &Path, key: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = zimfleet(&["server", "--listen", "127.0.0.1:0"]);
    cmd.env("ZIMFLEET__SERVER__TLS__CERT_FILE", cert)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        cmd.env("ZIMFLEET__SERVER__TLS__KEY_FILE", key);
    }
    exit_of(cmd.spawn().unwrap(), Duration::from_secs(20))
}

#[test]
fn bad_certificate_or_key_files_stop_the_server_with_exit_2_naming_the_key_and_the_file() {
    let pki = Pki::new("files");
    let (cert, key) = (&pki.server.cert_file, &pki.server.key_file);
    let other = pki.ca.server_cert(&pki.dir, "other", &["127.0.0.1"]);
    let missing = pki.dir.join("missing.crt");
    let not_pem = pki.dir.join("notes.txt");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    let d = |p: &Path| p.display().to_string();
    let cases: Vec<(&Path, Option<&Path>, String)> = vec![
        (
            &missing,
            Some(key),
            format!(
                "server.tls.cert_file ({}): cannot read the file: No such file or directory (os error 2)",
                d(&missing)
            ),
        ),
        (
            cert,
            Some(&missing),
            format!(
                "server.tls.key_file ({}): cannot read the file: No such file or directory (os error 2)",
                d(&missing)
            ),
        ),
        (
            &pki.dir,
            Some(key),
            format!(
                "server.tls.cert_file ({}): cannot read the file: Is a directory (os error 21)",
                d(&pki.dir)
            ),
        ),
        (
            &not_pem,
            Some(key),
            format!(
                "server.tls.cert_file ({}): no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                d(&not_pem)
            ),
        ),
        (
            cert,
            Some(cert),
            format!(
                "server.tls.key_file ({}): no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file",
                d(cert)
            ),
        ),
        (
            cert,
            Some(&other.key_file),
            format!(
                "server.tls.key_file ({}) does not match the certificate of server.tls.cert_file ({})",
                d(&other.key_file),
                d(cert)
            ),
        ),
    ];
    for (cert_file, key_file, message) in cases {
        let (code, stderr) = server_with_files(cert_file, key_file);
        assert_eq!(code, Some(2), "{message}\nstderr: {stderr}");
        assert!(
            stderr.contains(&format!("zimfleet server: {message}\n")),
            "expected {message:?}\nstderr: {stderr}"
        );
    }
    // Only one of the two keys: the settings name the missing one.
    let (code, stderr) = server_with_files(cert, None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "zimfleet server: config/server.toml < environment (ZIMFLEET__SERVER__TLS__CERT_FILE): \
             missing configuration field \"server.tls.key_file\"\n"
        ),
        "{stderr}"
    );
}

/// A TLS reference server on its own thread (the test thread waits on child processes).
struct Backend {
    ws_url: String,
    http_url: String,
    admin: Admin,
    admin_token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Backend {
    fn start(tls: &ServerTls) -> Backend {
        let tls = tls.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let mut settings = ServerSettings::for_tests();
                settings.tls = Some(tls);
                settings.timing.room_session_timeout_ms = 10_000;
                let token = settings.admin_token.clone().unwrap();
                let handle = zimfleet::server::start(settings).await.unwrap();
                let urls = (handle.ws_url(), handle.http_url(), handle.admin(), token);
                started_tx.send(urls).unwrap();
                let _ = stop_rx.await;
                handle.stop().await;
            })
        });
        let (ws_url, http_url, admin, token) =
            started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Backend {
            ws_url,
            http_url,
            admin,
            admin_token: token.expose().to_owned(),
            stop,
            thread,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

/// Polls `check` every 25 ms until it holds; fails if `child` exits or `within` passes.
fn wait_while_running(child: &mut Child, what: &str, within: Duration, check: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while !check() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited ({status}) while waiting for {what}");
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn zimfleet_run_reaches_a_wss_backend_with_its_ca_file() {
    let pki = Pki::new("run");
    let backend = Backend::start(&pki.server);
    let bots = pki.dir.join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    let mut bot = std::fs::File::create(bots.join("idle.toml")).unwrap();
    write!(
        bot,
        "behaviour = \"idle\"\ntoken = {{ source = \"http\", url = \"{}/admin/tokens\", bearer_env = \"TLS_TEST_BEARER\" }}\n\
         [[accounts]]\nuser_id = \"run-a\"\n[[accounts]]\nuser_id = \"run-b\"\n[[rooms]]\nroom_id = \"r\"\n",
        backend.http_url
    )
    .unwrap();
    let mut child = zimfleet(&["run", "--bots", bots.to_str().unwrap()])
        .current_dir(&pki.dir)
        .env("ZIMFLEET__BACKEND__URL", &backend.ws_url)
        .env("ZIMFLEET__BACKEND__CA_FILE", &pki.ca.pem)
        .env("TLS_TEST_BEARER", &backend.admin_token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let admin = backend.admin.clone();
    wait_while_running(
        &mut child,
        "2 accounts in room r",
        Duration::from_secs(20),
        || admin.stats().users_online == 2 && admin.stats().members == 2,
    );
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let (code, stderr) = exit_of(child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "{stderr}");
    backend.stop();
}

#[test]
fn zimfleet_loadtest_runs_against_a_wss_backend_with_its_ca_file() {
    let pki = Pki::new("loadtest");
    let backend = Backend::start(&pki.server);
    let report = pki.dir.join("report.json");
    let child = zimfleet(&[
        "loadtest",
        "--quiet",
        "--backend",
        &backend.ws_url,
        "--accounts",
        "6",
        "--rate",
        "100",
        "--room-size",
        "3",
        "--duration",
        "1s",
        "--msg-rate",
        "1",
        "--body-bytes",
        "100",
        "--out",
        report.to_str().unwrap(),
    ])
    .env("ZIMFLEET__LOADTEST__CA_FILE", &pki.ca.pem)
    .env("ZIMFLEET_ADMIN_TOKEN", &backend.admin_token)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (code, stderr) = exit_of(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let counts = &report["counts"];
    assert_eq!(counts["accounts_planned"], 6, "{counts}");
    assert_eq!(counts["logins_ok"], 6, "{counts}");
    backend.stop();
}

#[test]
fn a_bad_ca_file_stops_run_and_loadtest_with_exit_2_naming_the_key_and_the_file() {
    let dir = temp_dir("bad-ca");
    let missing = dir.join("missing-ca.crt");
    let not_pem = dir.join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let bots = dir.join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    std::fs::write(
        bots.join("echo.toml"),
        "behaviour = \"echo\"\ntoken = { source = \"static\", token = \"x\" }\n[[accounts]]\nuser_id = \"e1\"\n",
    )
    .unwrap();
    let run = |ca: &Path| {
        let child = zimfleet(&["run", "--bots", bots.to_str().unwrap()])
            .current_dir(&dir)
            .env("ZIMFLEET__BACKEND__URL", "wss://127.0.0.1:9/ws")
            .env("ZIMFLEET__BACKEND__CA_FILE", ca)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        exit_of(child, Duration::from_secs(20))
    };
    let (code, stderr) = run(&missing);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "zimfleet run: run settings: backend.ca_file ({}): cannot read the file: No such file or directory (os error 2)\n",
        missing.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let (code, stderr) = run(&not_pem);
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "zimfleet run: run settings: backend.ca_file ({}): no PEM certificate (-----BEGIN CERTIFICATE-----) in the file\n",
        not_pem.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let child = zimfleet(&[
        "loadtest",
        "--quiet",
        "--backend",
        "wss://127.0.0.1:9/ws",
        "--accounts",
        "1",
    ])
    .env("ZIMFLEET__LOADTEST__CA_FILE", &missing)
    .env("ZIMFLEET_ADMIN_TOKEN", "x")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (code, stderr) = exit_of(child, Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    let expected = format!(
        "zimfleet loadtest: invalid plan: loadtest.ca_file ({}): cannot read the file: No such file or directory (os error 2)\n",
        missing.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
