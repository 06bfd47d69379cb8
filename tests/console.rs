//! The web console in a real headless Chromium (chromedriver + fantoccini) against
//! `zimfleet run` (the built binary) with the shipped bots on the embedded backend: what a
//! person sees. Screenshots go to target/console-*.png.

mod admin_support;
mod browser_support;

use std::time::Duration;

use admin_support::Run;
use browser_support::Browser;

/// The shipped bots' accounts.
const SHIPPED: &[&str] = &[
    "ann",
    "archivist",
    "bob",
    "chatty",
    "concierge",
    "echo",
    "host",
];

/// The text of the state cell of `user`'s row, as JS.
fn state_cell(user: &str) -> String {
    format!(
        "var td = document.querySelector('#accounts-body tr[data-user=\"{user}\"] td.state'); \
         return td ? td.textContent : null;"
    )
}

#[tokio::test]
async fn the_console_shows_the_fleet_live_recovers_a_dropped_link_and_posts_to_a_room() {
    // A slow first reconnect (1.5 s) so Reconnecting stays on screen long enough to be seen.
    let env = [
        ("ZIMFLEET__RETRY__FIRST_MIN", "1500ms"),
        ("ZIMFLEET__RETRY__FIRST_MAX", "1500ms"),
    ];
    let mut run = Run::start("console", &[], "127.0.0.1:0", &env);
    run.wait_in_room(&["ann", "archivist", "bob", "concierge", "host"], "lobby");
    run.wait_in_room(&["chatty", "echo"], "echo-room");
    let Some(browser) = Browser::start("console", 1400, 1300).await else {
        return;
    };
    browser.open(&format!("http://{}/", run.admin)).await;

    // Every shipped bot shows Connected, and the counts on top say so.
    browser
        .wait_js(
            "every shipped bot connected",
            Duration::from_secs(20),
            &format!(
                "var users = {:?}; return document.getElementById('count-2').textContent === '{}' \
                 && users.every(function (u) {{ var td = document.querySelector(\
                 '#accounts-body tr[data-user=\"' + u + '\"] td.state'); \
                 return td && td.textContent === 'Connected(2)'; }});",
                SHIPPED,
                SHIPPED.len()
            ),
        )
        .await;
    let rooms = browser
        .js("return document.querySelector('#accounts-body tr[data-user=\"archivist\"] td.rooms').textContent;")
        .await;
    assert_eq!(
        rooms,
        "lobby Connected(2) Success(0)archive Connected(2) Success(0)"
    );
    // The charts drew points (one per second).
    browser
        .wait_js(
            "points on every chart",
            Duration::from_secs(10),
            "var c = zfConsole.charts(); return c.accounts.points() >= 2 && \
             c.logins.points() >= 2 && c.messages.points() >= 2;",
        )
        .await;
    browser.screenshot("console-connected").await;

    // The page's own socket reconnects by itself when it closes, and says so.
    browser
        .js("zfConsole.state.socket.close(); return true;")
        .await;
    browser
        .wait_js(
            "the page's socket reconnecting",
            Duration::from_secs(5),
            "return document.getElementById('live-state').textContent.startsWith('reconnecting in');",
        )
        .await;
    browser
        .wait_js(
            "the page's socket live again",
            Duration::from_secs(10),
            "return document.getElementById('live-state').textContent === 'live' && \
             document.getElementById('reconnects').textContent === 'socket reconnects: 1';",
        )
        .await;

    // Drop concierge's link from the page: Reconnecting, then Connected, with no reload.
    browser.js("window.noReload = true; return true;").await;
    browser
        .click("#accounts-body tr[data-user=\"concierge\"] button.drop")
        .await;
    let question = browser
        .wait_js(
            "the confirm dialog",
            Duration::from_secs(5),
            "var d = document.getElementById('confirm'); \
             return d.open ? document.getElementById('confirm-text').textContent : null;",
        )
        .await;
    assert_eq!(
        question,
        "Drop the link of concierge? It goes Reconnecting and recovers by itself."
    );
    browser.click("#confirm-yes").await;
    let reconnecting = format!(
        "return ({})() === 'Reconnecting(3)';",
        js_fn(&state_cell("concierge"))
    );
    browser
        .wait_js(
            "concierge Reconnecting",
            Duration::from_secs(10),
            &reconnecting,
        )
        .await;
    let event = browser
        .js("return document.querySelector('#accounts-body tr[data-user=\"concierge\"] td.event').textContent;")
        .await;
    assert_eq!(event, "LoginInterrupted(3)");
    browser.screenshot("console-reconnecting").await;
    let connected = format!(
        "return ({})() === 'Connected(2)';",
        js_fn(&state_cell("concierge"))
    );
    browser
        .wait_js(
            "concierge Connected again",
            Duration::from_secs(15),
            &connected,
        )
        .await;
    assert_eq!(browser.js("return window.noReload === true;").await, true);
    let pairs = run.connection_pairs("concierge");
    let lost = pairs
        .iter()
        .position(|p| *p == (3, 3))
        .expect("(3,3) in the events file");
    assert!(pairs[lost..].contains(&(2, 0)), "{pairs:?}");

    // The room view: lobby's members as the fleet sees them; post as archivist (who never
    // talks in the lobby by itself: ZIM allows one send per 100 ms per conversation).
    browser.click("#room-select option[value=\"lobby\"]").await;
    browser
        .wait_js(
            "lobby's members",
            Duration::from_secs(10),
            "var items = Array.from(document.querySelectorAll('#members li')).map(function (li) \
             { return li.textContent; }); return items.indexOf('host (Host)') >= 0 && \
             items.indexOf('concierge (Concierge)') >= 0;",
        )
        .await;
    browser.click("#post-as option[value=\"archivist\"]").await;
    let text = "hello from the console";
    browser.type_into("#post-text", text).await;
    browser.click("#post-send").await;
    let result = browser
        .wait_js(
            "the post's answer",
            Duration::from_secs(10),
            "return document.getElementById('post-result').textContent;",
        )
        .await;
    assert!(
        result
            .as_str()
            .unwrap()
            .starts_with("sent as archivist: message_id "),
        "{result}"
    );
    browser
        .wait_js(
            "the message in the room view",
            Duration::from_secs(10),
            &format!(
                "return Array.from(document.querySelectorAll('#messages li')).some(function (li) \
                 {{ return li.querySelector('.from').textContent === 'archivist' && \
                 li.querySelector('.body').textContent === '{text}'; }});"
            ),
        )
        .await;
    // The other accounts received it: the run's conversation log shows it.
    run.wait_for(
        "the message in the run's log",
        Duration::from_secs(10),
        |r| {
            r.log_text()
                .contains(&format!("[lobby] archivist: {text}"))
                .then_some(())
        },
    );
    browser.screenshot("console-room").await;
    browser.close().await;
    assert_eq!(run.stop(), Some(0));
}

/// Wraps a function body as a JS function expression.
fn js_fn(body: &str) -> String {
    format!("function () {{ {body} }}")
}

const TOKEN: &str = "c0nsole-t0ken";

#[tokio::test]
async fn with_a_token_the_console_asks_for_it_and_the_api_answers_401_without_it() {
    let mut run = Run::start(
        "console-token",
        &[],
        "127.0.0.1:0",
        &[("ZIMFLEET__ADMIN__TOKEN", TOKEN)],
    );
    run.wait_for("the fleet up", Duration::from_secs(30), |r| {
        let reply = r.request(
            "GET",
            "/api/summary",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            None,
        );
        (reply.json()["counts"]["connected"] == SHIPPED.len()).then_some(())
    });
    assert_eq!(run.get("/api/summary").status, 401);
    assert_eq!(run.get("/accounts").status, 401);
    let Some(browser) = Browser::start("console-token", 1400, 1000).await else {
        return;
    };
    browser.open(&format!("http://{}/", run.admin)).await;
    browser
        .wait_js(
            "the login form",
            Duration::from_secs(10),
            "return !document.getElementById('login').hidden && \
             document.getElementById('main').hidden;",
        )
        .await;
    browser.screenshot("console-login").await;
    // A wrong token is refused in the page.
    browser.type_into("#token-input", "not-it").await;
    browser.click("#login-submit").await;
    let error = browser
        .wait_js(
            "the refusal",
            Duration::from_secs(10),
            "return document.getElementById('login-error').textContent;",
        )
        .await;
    assert_eq!(error, "That token was refused.");
    browser.type_into("#token-input", TOKEN).await;
    browser.click("#login-submit").await;
    browser
        .wait_js(
            "the console after the login",
            Duration::from_secs(15),
            &format!(
                "return !document.getElementById('main').hidden && \
                 document.getElementById('count-2').textContent === '{}' && \
                 document.getElementById('live-state').textContent === 'live';",
                SHIPPED.len()
            ),
        )
        .await;
    // The token is in no URL and not in the page.
    let source = browser.client.source().await.unwrap();
    assert!(!source.contains(TOKEN), "the token in the page source");
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(TOKEN), "{url}");
    browser.close().await;
    assert_eq!(run.stop(), Some(0));
    let log = run.log_text();
    assert!(!log.contains(TOKEN), "the token in the log:\n{log}");
}
