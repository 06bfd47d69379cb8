//! Headless Chromium for the web-page tests, driven over WebDriver (fantoccini) through a
//! chromedriver this helper starts on a free loopback port. Where no browser can be started
//! the test fails with a clear message when CI=true, and says so and skips otherwise.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session and the chromedriver behind it.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

/// No browser here: fail in CI, skip elsewhere. Returns `None` to the caller to skip.
fn unavailable(why: &str) -> Option<Browser> {
    let message = format!(
        "no headless browser: {why} (install the Debian packages chromium and chromium-driver)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("skipping the browser test: {message}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, `width` x `height`.
    pub async fn start(name: &str, width: u32, height: u32) -> Option<Browser> {
        for path in [CHROMIUM, CHROMEDRIVER] {
            if !std::path::Path::new(path).exists() {
                return unavailable(&format!("{path} is missing"));
            }
        }
        let port = free_port();
        let driver = match Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return unavailable(&format!("cannot start {CHROMEDRIVER}: {e}")),
        };
        let profile =
            std::env::temp_dir().join(format!("zimfleet-chromium-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let end = Instant::now() + Duration::from_secs(30);
        let mut browser = None;
        let mut last_error = String::new();
        while Instant::now() < end {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    browser = Some(client);
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match browser {
            Some(client) => Some(Browser {
                client,
                driver,
                profile,
            }),
            None => {
                let mut driver = driver;
                let _ = driver.kill();
                let _ = driver.wait();
                unavailable(&format!("no WebDriver session in 30 s: {last_error}"))
            }
        }
    }

    /// Runs `script` (a function body that returns a value) until it returns something
    /// truthy, every 100 ms; panics with `what` after `deadline`.
    pub async fn wait_js(&self, what: &str, deadline: Duration, script: &str) -> serde_json::Value {
        let end = Instant::now() + deadline;
        loop {
            let last = match self.client.execute(script, Vec::new()).await {
                Ok(value) => {
                    let truthy = match &value {
                        serde_json::Value::Null => false,
                        serde_json::Value::Bool(b) => *b,
                        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
                        serde_json::Value::String(s) => !s.is_empty(),
                        _ => true,
                    };
                    if truthy {
                        return value;
                    }
                    value
                }
                Err(e) => serde_json::Value::String(e.to_string()),
            };
            if Instant::now() > end {
                let _ = self
                    .screenshot(&format!("failed-{}", what.replace(' ', "-")))
                    .await;
                panic!("timed out waiting for {what}; last answer: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` once and answers its value.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Saves a screenshot as target/NAME.png; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
