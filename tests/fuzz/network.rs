//! The targets that go through the real reference server on 127.0.0.1:0: request frames over
//! a WebSocket (the server's frame decoder and request handling) and admin API bodies over
//! HTTP. A panic in any server task is counted by the engine's hook; a 5xx answer, or a
//! server that stops accepting a fresh login, is a crash too.

use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt as _, StreamExt as _};
use zimfleet::server::{Admin, ServerHandle, ServerSettings};

use super::engine::Target;
use super::inputs;
use super::targets::PROTOCOL_WORDS;

type Ws = Framed<BoxedSocket, Codec>;

const DEADLINE: Duration = Duration::from_millis(500);

fn start_server(sys: &actix_rt::SystemRunner) -> ServerHandle {
    let settings = ServerSettings::for_tests();
    sys.block_on(zimfleet::server::start(settings))
        .expect("the reference server starts for fuzzing")
}

async fn login(url: &str, admin: &Admin) -> Option<Ws> {
    let (_, mut ws) = tokio::time::timeout(DEADLINE, awc::Client::new().ws(url).connect())
        .await
        .ok()?
        .ok()?;
    let (token, _) = admin.mint_token("fuzz", 3600).ok()?;
    let frame = serde_json::json!({"id": 1, "op": "login", "user_id": "fuzz",
        "token": token.expose(), "device_id": "fuzz-1"});
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .ok()?;
    match tokio::time::timeout(DEADLINE, ws.next()).await {
        Ok(Some(Ok(Frame::Text(t)))) if t.windows(8).any(|w| w == b"\"code\":0") => Some(ws),
        _ => None,
    }
}

/// Sends `input` as one frame (text when it is UTF-8), reads until the reply or the close.
async fn exchange(ws: &mut Ws, input: &[u8]) -> bool {
    let message = match std::str::from_utf8(input) {
        Ok(text) => Message::Text(text.to_owned().into()),
        Err(_) => Message::Binary(input.to_vec().into()),
    };
    if ws.send(message).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(DEADLINE, ws.next()).await,
        Ok(Some(Ok(Frame::Text(_) | Frame::Ping(_) | Frame::Pong(_))))
    )
}

/// Request frames sent to the real server over one logged-in WebSocket (a fresh one after
/// every close); every 256 inputs a fresh login must still succeed.
pub fn server_ws() -> Target {
    let sys = actix_rt::System::new();
    let server = start_server(&sys);
    let url = server.ws_url();
    let admin = server.admin();
    let mut ws: Option<Ws> = None;
    let mut count = 0u64;
    Target {
        name: "server_ws",
        seeds: super::targets::server_requests().seeds,
        dictionary: PROTOCOL_WORDS.to_vec(),
        generate: inputs::json,
        run: Box::new(move |input| {
            let _keep = &server;
            count += 1;
            sys.block_on(async {
                if count.is_multiple_of(256) {
                    assert!(
                        login(&url, &admin).await.is_some(),
                        "server refuses a fresh login"
                    );
                }
                if ws.is_none() {
                    ws = login(&url, &admin).await;
                }
                if let Some(socket) = ws.as_mut() {
                    if !exchange(socket, input).await {
                        ws = None;
                    }
                }
            });
        }),
    }
}

const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/admin/tokens"),
    ("POST", "/admin/faults/drop"),
    ("POST", "/admin/faults/blackhole"),
    ("POST", "/admin/users/fuzz/kickout"),
    ("POST", "/admin/users/fuzz/expire_token"),
    ("POST", "/admin/rooms/lobby/destroy"),
    ("DELETE", "/admin/rooms/lobby/members/fuzz"),
    ("POST", "/admin/rooms/lobby/kick"),
];

/// Admin API bodies posted to each route of the real server's admin API with the right
/// bearer; every answer must be 2xx or 4xx.
pub fn server_admin() -> Target {
    let sys = actix_rt::System::new();
    let server = start_server(&sys);
    let base = server.http_url();
    let bearer = format!(
        "Bearer {}",
        ServerSettings::for_tests()
            .admin_token
            .map(|t| t.expose().to_owned())
            .unwrap_or_default()
    );
    let client = sys.block_on(async { awc::Client::new() });
    Target {
        name: "server_admin",
        seeds: [
            r#"{"user_id":"fuzz","ttl_secs":60}"#,
            r#"{"user_ids":["fuzz"]}"#,
            r#"{"all":true,"secs":0.01}"#,
            r#"{"reason":1}"#,
            r#"{"user_id":"fuzz"}"#,
            r#"{}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        dictionary: vec![
            b"user_id",
            b"ttl_secs",
            b"user_ids",
            b"all",
            b"secs",
            b"reason",
            b"fuzz",
            b"lobby",
        ],
        generate: inputs::json,
        run: Box::new(move |input| {
            let _keep = &server;
            let (method, path) = ADMIN_ROUTES[input.len() % ADMIN_ROUTES.len()];
            let url = format!("{base}{path}");
            let status = sys.block_on(async {
                let request = match method {
                    "DELETE" => client.delete(url),
                    _ => client.post(url),
                };
                request
                    .insert_header(("authorization", bearer.as_str()))
                    .insert_header(("content-type", "application/json"))
                    .timeout(Duration::from_secs(2))
                    .send_body(input.to_vec())
                    .await
                    .map(|r| r.status().as_u16())
            });
            if let Ok(code) = status {
                assert!(code < 500, "admin {method} {path} answered {code}");
            }
        }),
    }
}
