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

/// The WebSocket upgrade request, sent over a raw TCP socket.
const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// One client frame: FIN and opcode, mask bit, the three length encodings, masked payload.
fn frame(fin: bool, opcode: u8, masked: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (opcode & 0x0f)];
    let m = u8::from(masked) << 7;
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=65535 => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A run of frames whose header bits and payloads are chosen by the input.
fn frames(u: &mut arbitrary::Unstructured<'_>, dict: &[&'static [u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = u.int_in_range(1..=4u8).unwrap_or(1);
    for _ in 0..n {
        let opcode = match u.int_in_range(0..=7u8).unwrap_or(0) {
            0..=2 => 1,
            3 => 0,
            4 => 2,
            5 => 8,
            6 => 9,
            _ => u.int_in_range(0..=15u8).unwrap_or(3),
        };
        let payload = if u.ratio(1, 2).unwrap_or(false) {
            inputs::json(u, dict)
        } else {
            u.arbitrary::<Vec<u8>>().unwrap_or_default()
        };
        let fin = u.ratio(4, 5).unwrap_or(true);
        let masked = u.ratio(9, 10).unwrap_or(true);
        let mask: [u8; 4] = u.arbitrary().unwrap_or([1, 2, 3, 4]);
        out.extend(frame(fin, opcode, masked, &payload, mask));
    }
    out
}

/// Upgrades a raw TCP socket, writes `input`, ends the write side and reads to the end.
async fn raw_exchange(addr: std::net::SocketAddr, input: &[u8]) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    if socket.write_all(UPGRADE).await.is_err() {
        return;
    }
    let mut head = [0u8; 512];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut head).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&head[..n]),
        }
    }
    assert!(seen.starts_with(b"HTTP/1.1 101"), "upgrade refused");
    let _ = socket.write_all(input).await;
    let _ = socket.shutdown().await;
    let mut sink = [0u8; 4096];
    while let Ok(n) = socket.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// Raw WebSocket bytes to the real server's own frame reader (docs/protocol.md's limits and
/// close codes): upgrade over a raw TCP socket, write the input, end the write side, read to
/// the end. Every 256 inputs a fresh login must still succeed.
pub fn server_ws_bytes() -> Target {
    let sys = actix_rt::System::new();
    let server = start_server(&sys);
    let addr = server.local_addr();
    let url = server.ws_url();
    let admin = server.admin();
    let login_frame = br#"{"id":1,"op":"login","user_id":"fuzz","token":"04AAAA","device_id":"d"}"#;
    let seeds = vec![
        frame(true, 1, true, login_frame, [7, 7, 7, 7]),
        frame(true, 9, true, b"ping", [1, 2, 3, 4]),
        frame(true, 8, true, &[0x03, 0xe8], [9, 9, 9, 9]),
        [
            frame(false, 1, true, b"{\"id\":", [1, 1, 1, 1]),
            frame(true, 0, true, b"1}", [2, 2, 2, 2]),
        ]
        .concat(),
        frame(true, 1, false, b"{}", [0; 4]),
        frame(true, 2, true, &[0xff; 32], [5, 6, 7, 8]),
    ];
    let mut count = 0u64;
    Target {
        name: "server_ws_bytes",
        seeds,
        dictionary: PROTOCOL_WORDS.to_vec(),
        generate: frames,
        run: Box::new(move |input| {
            let _keep = &server;
            count += 1;
            // The server's timers run on this System: drive it while the bytes go through.
            sys.block_on(async {
                if count.is_multiple_of(256) {
                    let fresh = login(&url, &admin).await;
                    assert!(
                        fresh.is_some(),
                        "server refuses a fresh login after raw frames"
                    );
                }
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), raw_exchange(addr, input)).await;
            });
        }),
    }
}
