//! The reference server over real WebSockets: every op, every error code, every admin fault,
//! the timing rules with millisecond timings. Each test starts its own server on 127.0.0.1:0.

use std::collections::VecDeque;
use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use zimfleet::protocol::{KickoutReason, Secret};
use zimfleet::server::{start, DevicePolicy, FaultTarget, ServerHandle, ServerSettings};
use zimfleet::token::token04;

/// Longest any single expected event may take.
const WAIT: Duration = Duration::from_secs(5);

/// What the server sent.
#[derive(Debug)]
enum Got {
    Json(Value),
    /// A close frame with its code.
    Close(Option<u16>),
    /// The connection ended without a close frame.
    End,
}

struct Ws {
    framed: Framed<BoxedSocket, Codec>,
    next_id: u64,
    /// Pushes and replies seen while waiting for something else.
    pending: VecDeque<Value>,
    /// The description of the close frame received, if any.
    close_text: Option<String>,
}

fn client() -> awc::Client {
    zimfleet::client::tls::install_crypto_provider();
    awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .connector(awc::Connector::new().limit(0))
        .finish()
}

impl Ws {
    async fn connect(server: &ServerHandle) -> Ws {
        let (_resp, framed) = client()
            .ws(server.ws_url())
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("websocket connects");
        Ws {
            framed,
            next_id: 1,
            pending: VecDeque::new(),
            close_text: None,
        }
    }

    async fn send_raw(&mut self, msg: Message) {
        self.framed.send(msg).await.expect("send");
    }

    async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::Text(text.to_owned().into())).await;
    }

    /// Next frame from the server, answering pings, within `WAIT`.
    async fn next(&mut self) -> Got {
        self.next_within(WAIT)
            .await
            .expect("server answered within the deadline")
    }

    async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        if let Some(v) = self.pending.pop_front() {
            return Some(Got::Json(v));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .ok()?;
            match frame {
                None | Some(Err(_)) => return Some(Got::End),
                Some(Ok(Frame::Text(bytes))) => {
                    return Some(Got::Json(
                        serde_json::from_slice(&bytes).expect("server sends JSON"),
                    ))
                }
                Some(Ok(Frame::Close(reason))) => {
                    self.close_text = reason.as_ref().and_then(|r| r.description.clone());
                    return Some(Got::Close(reason.map(|r| u16::from(r.code))));
                }
                Some(Ok(Frame::Ping(p))) => self.send_raw(Message::Pong(p)).await,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends `{"id", "op", ...fields}` and waits for its reply; other frames are kept.
    async fn request(&mut self, op: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = fields;
        frame["id"] = json!(id);
        frame["op"] = json!(op);
        self.send_text(&frame.to_string()).await;
        self.reply_to(id).await
    }

    async fn reply_to(&mut self, id: u64) -> Value {
        let mut seen = VecDeque::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let got = match self.framed_next(left).await {
                Some(got) => got,
                None => panic!("no reply to request {id}; saw {seen:?}"),
            };
            match got {
                Got::Json(v) if v["id"] == json!(id) && v.get("push").is_none() => {
                    self.pending.extend(seen);
                    return v;
                }
                Got::Json(v) => seen.push_back(v),
                other => panic!("connection ended waiting for reply {id}: {other:?}; saw {seen:?}"),
            }
        }
    }

    /// Like `next_within` but never takes from `pending`.
    async fn framed_next(&mut self, wait: Duration) -> Option<Got> {
        let pending = std::mem::take(&mut self.pending);
        let got = self.next_within(wait).await;
        self.pending = pending;
        got
    }

    /// Waits for the push named `name`; other pushes before it are discarded.
    async fn push(&mut self, name: &str) -> Value {
        loop {
            match self.next().await {
                Got::Json(v) if v["push"] == json!(name) => return v,
                Got::Json(_) => {}
                other => panic!("connection ended waiting for push {name}: {other:?}"),
            }
        }
    }

    /// Asserts nothing arrives within `wait`.
    async fn silent_for(&mut self, wait: Duration) {
        if let Some(got) = self.next_within(wait).await {
            panic!("expected silence, got {got:?}");
        }
    }

    /// Waits for the close frame (pushes before it are discarded) and returns its code.
    async fn closed(&mut self) -> Got {
        loop {
            match self.next().await {
                Got::Json(_) => {}
                other => return other,
            }
        }
    }
}

fn code(v: &Value) -> u64 {
    v["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("no code in {v}"))
}

fn assert_error(v: &Value, expected: u64) {
    assert_eq!(code(v), expected, "{v}");
    assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

async fn server() -> ServerHandle {
    server_with(|_| {}).await
}

async fn server_with(tweak: impl FnOnce(&mut ServerSettings)) -> ServerHandle {
    let mut settings = ServerSettings::for_tests();
    tweak(&mut settings);
    start(settings).await.expect("server starts")
}

fn token(server: &ServerHandle, user: &str, ttl_secs: i64) -> String {
    server
        .admin()
        .mint_token(user, ttl_secs)
        .expect("mint")
        .0
        .expose()
        .to_owned()
}

async fn login_with(ws: &mut Ws, user: &str, device: &str, token: &str) -> Value {
    ws.request(
        "login",
        json!({"user_id": user, "user_name": format!("name-{user}"), "token": token, "device_id": device}),
    )
    .await
}

/// A connection logged in as `user` from device `d-<user>`.
async fn online(server: &ServerHandle, user: &str) -> Ws {
    online_from(server, user, &format!("d-{user}")).await
}

async fn online_from(server: &ServerHandle, user: &str, device: &str) -> Ws {
    let mut ws = Ws::connect(server).await;
    let reply = login_with(&mut ws, user, device, &token(server, user, 3600)).await;
    assert_eq!(code(&reply), 0, "{reply}");
    ws
}

async fn heartbeat_ok(ws: &mut Ws) {
    let reply = ws.request("heartbeat", json!({})).await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert!(reply["server_time_ms"].as_u64().unwrap() > 1_600_000_000_000);
}

// ---------------------------------------------------------------------------------------------
// Session

#[actix_rt::test]
async fn login_reply_carries_session_and_timings() {
    let server = server().await;
    let mut ws = Ws::connect(&server).await;
    let (tok, expire) = server.admin().mint_token("alice", 600).unwrap();
    let reply = login_with(&mut ws, "alice", "d1", tok.expose()).await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert!(reply["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(reply["token_expire_at"], json!(expire));
    assert_eq!(reply["heartbeat_interval_ms"], json!(100));
    assert_eq!(reply["room_heartbeat_interval_ms"], json!(100));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let server_ms = reply["server_time_ms"].as_u64().unwrap();
    assert!(
        server_ms.abs_diff(now_ms) < 5_000,
        "{server_ms} vs {now_ms}"
    );
    heartbeat_ok(&mut ws).await;
    let stats = server.admin().stats();
    assert_eq!(
        (stats.sessions, stats.users_online, stats.logins_ok),
        (1, 1, 1)
    );
    server.stop().await;
}

#[actix_rt::test]
async fn first_request_must_be_login() {
    let server = server().await;
    let mut ws = Ws::connect(&server).await;
    let reply = ws.request("heartbeat", json!({})).await;
    assert_error(&reply, 6000121);
    let reply = ws.request("room_join", json!({"room_id": "r"})).await;
    assert_error(&reply, 6000121);
    // the connection is kept: login still works
    let reply = login_with(&mut ws, "bob", "d", &token(&server, "bob", 600)).await;
    assert_eq!(code(&reply), 0, "{reply}");
    heartbeat_ok(&mut ws).await;
    server.stop().await;
}

#[actix_rt::test]
async fn login_refuses_bad_ids_and_tokens_with_exact_codes() {
    let server = server_with(|s| s.tokens.min_lifetime_secs = 30).await;
    let mut bystander = online(&server, "by").await;
    let mut ws = Ws::connect(&server).await;
    let good = token(&server, "carol", 600);
    let cases: Vec<(Value, u64, &str)> = vec![
        (
            json!({"user_id": "bad id", "token": good, "device_id": "d"}),
            6000001,
            "user_id",
        ),
        (
            json!({"user_id": "x".repeat(33), "token": good, "device_id": "d"}),
            6000001,
            "user_id",
        ),
        (
            json!({"user_id": "", "token": good, "device_id": "d"}),
            6000001,
            "user_id",
        ),
        (
            json!({"user_id": "carol", "token": good, "device_id": ""}),
            6000001,
            "device_id",
        ),
        (
            json!({"user_id": "carol", "token": good}),
            6000001,
            "device_id",
        ),
        (
            json!({"user_id": "carol", "token": 5, "device_id": "d"}),
            6000001,
            "invalid field",
        ),
        (
            json!({"user_id": "carol", "token": "04garbage", "device_id": "d"}),
            6000103,
            "base64",
        ),
        (
            json!({"user_id": "carol", "token": good.replacen("04", "05", 1), "device_id": "d"}),
            6000107,
            "version",
        ),
        (
            json!({"user_id": "carol", "token": token(&server, "dave", 600), "device_id": "d"}),
            6000103,
            "another user",
        ),
        (
            json!({"user_id": "carol", "token": token(&server, "carol", -5), "device_id": "d"}),
            6000106,
            "expired",
        ),
        (
            json!({"user_id": "carol", "token": token(&server, "carol", 10), "device_id": "d"}),
            6000108,
            "short",
        ),
        (
            json!({"user_id": "carol", "token": token(&server, "carol", 25 * 24 * 3600), "device_id": "d"}),
            6000109,
            "long",
        ),
    ];
    for (fields, expected, words) in cases {
        let reply = ws.request("login", fields.clone()).await;
        assert_error(&reply, expected);
        assert!(
            reply["msg"].as_str().unwrap().contains(words),
            "{fields} -> {reply} should mention {words}"
        );
    }
    // a token of another app (same secret)
    let secret = Secret::from("zimfleet-dev-secret-0123456789ab");
    let other_app = token04::generate(99, "carol", &secret, 600).unwrap();
    let reply = login_with(&mut ws, "carol", "d", other_app.expose()).await;
    assert_error(&reply, 6000103);
    assert!(
        reply["msg"].as_str().unwrap().contains("another app"),
        "{reply}"
    );
    // a token made with another secret
    let other_secret = Secret::from("00000000000000000000000000000000");
    let forged = token04::generate(1, "carol", &other_secret, 600).unwrap();
    let reply = login_with(&mut ws, "carol", "d", forged.expose()).await;
    assert_error(&reply, 6000103);
    // a CBC (legacy) token is accepted
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = token04::Claims {
        app_id: 1,
        user_id: "carol".into(),
        nonce: 5,
        ctime: now,
        expire: now + 600,
        payload: String::new(),
    };
    let cbc = token04::encode(&claims, &secret, token04::Layout::Cbc, b"0123456789abcdef").unwrap();
    let reply = login_with(&mut ws, "carol", "d", &cbc).await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert_eq!(reply["token_expire_at"], json!(now + 600));
    heartbeat_ok(&mut bystander).await;
    // the two frames that fail to parse are answered before any login check
    assert_eq!(server.admin().stats().logins_refused, 12);
    server.stop().await;
}

#[actix_rt::test]
async fn login_as_another_user_on_a_connection_is_refused() {
    let server = server().await;
    let mut ws = online(&server, "erin").await;
    let reply = login_with(&mut ws, "frank", "d", &token(&server, "frank", 600)).await;
    assert_error(&reply, 6000111);
    // same user again: accepted (a re-login on the same connection)
    let reply = login_with(&mut ws, "erin", "d-erin", &token(&server, "erin", 600)).await;
    assert_eq!(code(&reply), 0, "{reply}");
    heartbeat_ok(&mut ws).await;
    server.stop().await;
}

#[actix_rt::test]
async fn bad_frames_close_with_exact_codes_and_harm_nobody() {
    let server = server().await;
    let mut bystander = online(&server, "calm").await;
    /// A bad frame, the close code and the close text it gets.
    type Case = (fn() -> Message, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            || Message::Text("{not json".into()),
            1007,
            "frame is not valid JSON",
        ),
        (
            || Message::Text("[1,2,3]".into()),
            1007,
            "frame is not a JSON object",
        ),
        (
            || Message::Text("42".into()),
            1007,
            "frame is not a JSON object",
        ),
        (
            || Message::Binary(vec![1u8, 2, 3].into()),
            1003,
            "binary frames are not supported",
        ),
        (
            || Message::Text("x".repeat(70 * 1024).into()),
            1009,
            "frame too large",
        ),
    ];
    for (msg, expected, text) in cases {
        // before and after login
        for logged_in in [false, true] {
            let mut ws = if logged_in {
                online(&server, "rude").await
            } else {
                Ws::connect(&server).await
            };
            ws.send_raw(msg()).await;
            match ws.closed().await {
                Got::Close(Some(code)) => assert_eq!(code, expected, "{:?}", msg()),
                other => panic!("{:?}: expected close {expected}, got {other:?}", msg()),
            }
            assert_eq!(ws.close_text.as_deref(), Some(text));
            heartbeat_ok(&mut bystander).await;
        }
    }
    assert_eq!(server.admin().stats().bad_frames, 10);
    server.stop().await;
}

#[actix_rt::test]
async fn a_websocket_protocol_violation_closes_with_1002() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = server().await;
    let mut bystander = online(&server, "steady").await;
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.local_addr()
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, tcp.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // a client frame without a mask violates RFC 6455
    tcp.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    let mut frame = [0u8; 4];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut frame))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame[0], 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1002);
    heartbeat_ok(&mut bystander).await;
    server.stop().await;
}

#[actix_rt::test]
async fn fragmented_messages_are_reassembled_and_limited_as_a_whole() {
    use actix_http::ws::Item;
    let server = server().await;
    let mut ws = online(&server, "frag").await;
    let text = r#"{"id":77,"op":"heartbeat","pad":"xxxxxxxx"}"#;
    let (a, rest) = text.split_at(10);
    let (b, c) = rest.split_at(10);
    ws.send_raw(Message::Continuation(Item::FirstText(
        a.as_bytes().to_vec().into(),
    )))
    .await;
    ws.send_raw(Message::Continuation(Item::Continue(
        b.as_bytes().to_vec().into(),
    )))
    .await;
    ws.send_raw(Message::Continuation(Item::Last(
        c.as_bytes().to_vec().into(),
    )))
    .await;
    let reply = ws.reply_to(77).await;
    assert_eq!(code(&reply), 0, "{reply}");
    // three fragments of 30,000 bytes: each fits, the whole does not
    let part = || -> bytes::Bytes { vec![b'x'; 30_000].into() };
    ws.send_raw(Message::Continuation(Item::FirstText(part())))
        .await;
    ws.send_raw(Message::Continuation(Item::Continue(part())))
        .await;
    ws.send_raw(Message::Continuation(Item::Last(part()))).await;
    assert!(matches!(ws.closed().await, Got::Close(Some(1009))));
    server.stop().await;
}

#[actix_rt::test]
async fn unknown_ops_and_bad_fields_get_6000001_and_keep_the_connection() {
    let server = server().await;
    let mut bystander = online(&server, "by").await;
    let mut ws = online(&server, "gina").await;
    let reply = ws.request("dance", json!({})).await;
    assert_error(&reply, 6000001);
    assert_eq!(reply["msg"], json!("unknown op"));
    let reply = ws.request("room_join", json!({})).await;
    assert_error(&reply, 6000001);
    assert!(
        reply["msg"].as_str().unwrap().contains("room_id"),
        "{reply}"
    );
    let reply = ws.request("room_join", json!({"room_id": 5})).await;
    assert_error(&reply, 6000001);
    let reply = ws
        .request("room_history", json!({"room_id": "r", "after_seq": -1}))
        .await;
    assert_error(&reply, 6000001);
    // no id: answered with id 0
    ws.send_text(r#"{"op":"heartbeat"}"#).await;
    let reply = ws.reply_to(0).await;
    assert_error(&reply, 6000001);
    ws.send_text(r#"{"id":"seven","op":"heartbeat"}"#).await;
    let reply = ws.reply_to(0).await;
    assert_error(&reply, 6000001);
    // unknown fields are ignored
    let reply = ws.request("heartbeat", json!({"extra": [1, 2]})).await;
    assert_eq!(code(&reply), 0, "{reply}");
    heartbeat_ok(&mut ws).await;
    heartbeat_ok(&mut bystander).await;
    server.stop().await;
}

#[actix_rt::test]
async fn another_device_kicks_the_older_session() {
    let server = server().await;
    let mut old = online_from(&server, "hal", "phone").await;
    let _new = online_from(&server, "hal", "tablet").await;
    let push = old.push("kickout").await;
    assert_eq!(push["reason"], json!(4), "{push}");
    assert!(matches!(old.closed().await, Got::Close(Some(4004))));
    assert_eq!(old.close_text.as_deref(), Some("KickedOut"));
    assert_eq!(server.admin().stats().users_online, 1);
    server.stop().await;
}

#[actix_rt::test]
async fn the_same_device_replaces_silently_and_keeps_rooms() {
    let server = server().await;
    let mut old = online_from(&server, "ivy", "phone").await;
    let reply = old
        .request("room_create", json!({"room_id": "ivy-room"}))
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    let mut new = online_from(&server, "ivy", "phone").await;
    match old.closed().await {
        Got::Close(Some(1000)) => {}
        other => panic!("expected close 1000, got {other:?}"),
    }
    let reply = new
        .request("room_heartbeat", json!({"room_id": "ivy-room"}))
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert_eq!(reply["member_count"], json!(1));
    server.stop().await;
}

#[actix_rt::test]
async fn multi_device_policy_keeps_one_session_per_device() {
    let server = server_with(|s| s.device_policy = DevicePolicy::Multi).await;
    let mut phone = online_from(&server, "mia", "phone").await;
    let mut tablet = online_from(&server, "mia", "tablet").await;
    let mut friend = online(&server, "nat").await;
    let reply = friend
        .request("message_send", send_fields(0, "mia", "md1", "to both"))
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    for ws in [&mut phone, &mut tablet] {
        assert_eq!(
            ws.push("message").await["message"]["body"],
            json!("to both")
        );
    }
    assert_eq!(server.admin().stats().users_online, 2);
    // the same device still replaces silently
    let mut phone2 = online_from(&server, "mia", "phone").await;
    assert!(matches!(phone.closed().await, Got::Close(Some(1000))));
    heartbeat_ok(&mut tablet).await;
    heartbeat_ok(&mut phone2).await;
    // faults reach every session of the user
    assert_eq!(
        server.admin().drop(FaultTarget::Users(vec!["mia".into()])),
        2
    );
    assert!(matches!(tablet.closed().await, Got::End));
    assert!(matches!(phone2.closed().await, Got::End));
    server.stop().await;
}

#[actix_rt::test]
async fn silence_closes_with_4001_and_frames_keep_the_session() {
    let server = server_with(|s| s.timing.offline_timeout_ms = 400).await;
    let mut quiet = online(&server, "quiet").await;
    let mut chatty = online(&server, "chatty").await;
    let started = std::time::Instant::now();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        heartbeat_ok(&mut chatty).await;
    }
    match quiet.closed().await {
        Got::Close(Some(4001)) => {}
        other => panic!("expected 4001, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(350));
    heartbeat_ok(&mut chatty).await;
    assert_eq!(server.admin().stats().heartbeat_timeouts, 1);
    // a connection that never logs in is closed the same way
    let mut idle = Ws::connect(&server).await;
    assert!(matches!(idle.closed().await, Got::Close(Some(4001))));
    assert_eq!(idle.close_text.as_deref(), Some("heartbeat timeout"));
    server.stop().await;
}

#[actix_rt::test]
async fn logout_ends_rooms_and_closes() {
    let server = server().await;
    let mut a = online(&server, "lou").await;
    let mut b = online(&server, "max").await;
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "lr"})).await),
        0
    );
    assert_eq!(
        code(&b.request("room_join", json!({"room_id": "lr"})).await),
        0
    );
    let reply = b.request("logout", json!({})).await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert!(matches!(b.closed().await, Got::Close(Some(1000))));
    assert_eq!(b.close_text.as_deref(), Some("logged out"));
    let left = a.push("room_member_left").await;
    assert_eq!(left["members"][0]["user_id"], json!("max"));
    assert_eq!(server.admin().stats().users_online, 1);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[actix_rt::test]
async fn renew_token_moves_expiry_and_checks_the_user() {
    let server = server().await;
    let mut ws = online(&server, "nina").await;
    let (fresh, expire) = server.admin().mint_token("nina", 7200).unwrap();
    let reply = ws
        .request("renew_token", json!({"token": fresh.expose()}))
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert_eq!(reply["token_expire_at"], json!(expire));
    let reply = ws
        .request(
            "renew_token",
            json!({"token": token(&server, "oscar", 600)}),
        )
        .await;
    assert_error(&reply, 6000103);
    let reply = ws
        .request("renew_token", json!({"token": token(&server, "nina", -1)}))
        .await;
    assert_error(&reply, 6000106);
    let reply = ws.request("renew_token", json!({"token": "04xx"})).await;
    assert_error(&reply, 6000103);
    let reply = ws.request("renew_token", json!({})).await;
    assert_error(&reply, 6000001);
    heartbeat_ok(&mut ws).await;
    server.stop().await;
}

#[actix_rt::test]
async fn token_will_expire_then_kickout_at_expiry() {
    let server = server().await; // will-expire 1 s ahead
    let mut ws = Ws::connect(&server).await;
    let reply = login_with(&mut ws, "pat", "d", &token(&server, "pat", 2)).await;
    assert_eq!(code(&reply), 0, "{reply}");
    let push = ws.push("token_will_expire").await;
    let remaining = push["remaining_secs"].as_u64().unwrap();
    assert!((1..=2).contains(&remaining), "{push}");
    // keep the session alive with heartbeats until the expiry kicks it out
    loop {
        let id = ws.next_id;
        ws.next_id += 1;
        ws.send_text(&json!({"id": id, "op": "heartbeat"}).to_string())
            .await;
        match ws.next().await {
            Got::Json(v) if v["push"] == json!("kickout") => {
                assert_eq!(v["reason"], json!(5), "{v}");
                break;
            }
            Got::Json(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("expected kickout, got {other:?}"),
        }
    }
    assert!(matches!(ws.closed().await, Got::Close(Some(4005))));
    assert_eq!(ws.close_text.as_deref(), Some("TokenExpired"));
    server.stop().await;
}

#[actix_rt::test]
async fn token_will_expire_comes_at_once_when_less_is_left_and_renew_saves_the_session() {
    let server = server_with(|s| s.timing.token_will_expire_ahead_ms = 30_000).await;
    let mut ws = Ws::connect(&server).await;
    let reply = login_with(&mut ws, "quinn", "d", &token(&server, "quinn", 3)).await;
    assert_eq!(code(&reply), 0, "{reply}");
    let push = ws.push("token_will_expire").await;
    let remaining = push["remaining_secs"].as_u64().unwrap();
    assert!((2..=3).contains(&remaining), "{push}");
    let reply = ws
        .request(
            "renew_token",
            json!({"token": token(&server, "quinn", 600)}),
        )
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    // the renewed token is also within 30 s ahead? no: 600 s left, so no push; and no kickout
    // at the old expiry
    for _ in 0..35 {
        heartbeat_ok(&mut ws).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ws.pending.iter().all(|v| v["push"] != json!("kickout")));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Rooms

#[actix_rt::test]
async fn room_ops_and_their_errors() {
    let server = server().await;
    let mut a = online(&server, "ann").await;
    let mut b = online(&server, "ben").await;
    let reply = a
        .request(
            "room_create",
            json!({"room_id": "r1", "room_name": "Room one", "attributes": {"k": "v"}}),
        )
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    // the room object: its fields, and the incarnation the server gave it (tests/incarnation.rs)
    let mut room = reply["room"].clone();
    let incarnation = room.as_object_mut().unwrap().remove("incarnation");
    assert!(
        incarnation.is_some_and(|i| i.as_u64().is_some_and(|i| i > 0)),
        "{reply}"
    );
    assert_eq!(
        room,
        json!({"room_id": "r1", "room_name": "Room one", "member_count": 1, "attributes": {"k": "v"}})
    );
    assert_error(
        &b.request("room_create", json!({"room_id": "r1"})).await,
        6000323,
    );
    assert_error(
        &b.request("room_join", json!({"room_id": "nope"})).await,
        6000322,
    );
    assert_error(
        &b.request("room_join", json!({"room_id": "bad id"})).await,
        6000001,
    );
    assert_error(
        &b.request("room_create", json!({"room_id": ""})).await,
        6000001,
    );
    assert_error(
        &b.request(
            "room_create",
            json!({"room_id": "r9", "destroy_delay_secs": 10801}),
        )
        .await,
        6000001,
    );
    let reply = b.request("room_join", json!({"room_id": "r1"})).await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert_eq!(reply["room"]["member_count"], json!(2));
    let joined = a.push("room_member_joined").await;
    assert_eq!(
        joined,
        json!({"push": "room_member_joined", "room_id": "r1",
               "members": [{"user_id": "ben", "user_name": "name-ben"}]})
    );
    assert_error(
        &b.request("room_join", json!({"room_id": "r1"})).await,
        6000320,
    );
    let reply = b.request("room_heartbeat", json!({"room_id": "r1"})).await;
    assert_eq!(reply["member_count"], json!(2), "{reply}");
    assert_error(
        &b.request("room_heartbeat", json!({"room_id": "nope"}))
            .await,
        6000322,
    );
    let reply = a.request("room_members", json!({"room_id": "r1"})).await;
    assert_eq!(
        reply["members"],
        json!([{"user_id": "ann", "user_name": "name-ann"}, {"user_id": "ben", "user_name": "name-ben"}])
    );
    assert_eq!(reply["next_cursor"], Value::Null);
    assert_error(
        &a.request("room_members", json!({"room_id": "r1", "limit": 101}))
            .await,
        6000001,
    );
    assert_error(
        &a.request("room_members", json!({"room_id": "r1", "limit": 0}))
            .await,
        6000001,
    );
    assert_error(
        &a.request("room_members", json!({"room_id": "nope"})).await,
        6000321,
    );
    let reply = b.request("room_leave", json!({"room_id": "r1"})).await;
    assert_eq!(code(&reply), 0, "{reply}");
    let left = a.push("room_member_left").await;
    assert_eq!(
        left["members"],
        json!([{"user_id": "ben", "user_name": "name-ben"}])
    );
    assert_error(
        &b.request("room_leave", json!({"room_id": "r1"})).await,
        6000321,
    );
    assert_error(
        &b.request("room_heartbeat", json!({"room_id": "r1"})).await,
        6000321,
    );
    assert_error(
        &b.request("room_members", json!({"room_id": "r1"})).await,
        6000321,
    );
    assert_error(
        &b.request("room_history", json!({"room_id": "r1", "after_seq": 0}))
            .await,
        6000321,
    );
    assert_error(
        &b.request("room_history", json!({"room_id": "nope", "after_seq": 0}))
            .await,
        6000322,
    );
    // the last member leaves: the room (delay 0) is gone at once
    assert_eq!(
        code(&a.request("room_leave", json!({"room_id": "r1"})).await),
        0
    );
    assert_error(
        &b.request("room_join", json!({"room_id": "r1"})).await,
        6000322,
    );
    assert_eq!(server.admin().stats().rooms, 0);
    server.stop().await;
}

#[actix_rt::test]
async fn room_enter_creates_or_joins_and_first_creator_wins() {
    let server = server().await;
    let mut a = online(&server, "cat").await;
    let mut b = online(&server, "dan").await;
    let reply = a
        .request("room_enter", json!({"room_id": "e1", "room_name": "first"}))
        .await;
    assert_eq!(
        (code(&reply), &reply["created"]),
        (0, &json!(true)),
        "{reply}"
    );
    let reply = b
        .request(
            "room_enter",
            json!({"room_id": "e1", "room_name": "second"}),
        )
        .await;
    assert_eq!(
        (code(&reply), &reply["created"]),
        (0, &json!(false)),
        "{reply}"
    );
    assert_eq!(reply["room"]["room_name"], json!("first"));
    assert_eq!(reply["room"]["member_count"], json!(2));
    // entering again as a member is fine
    let reply = b.request("room_enter", json!({"room_id": "e1"})).await;
    assert_eq!(
        (code(&reply), &reply["created"]),
        (0, &json!(false)),
        "{reply}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn rooms_per_user_limit_is_6000325() {
    let server = server_with(|s| s.limits.rooms_per_user = 2).await;
    let mut a = online(&server, "eve").await;
    let mut b = online(&server, "fay").await;
    let mut c = online(&server, "gus").await;
    for room in ["l1", "l2"] {
        assert_eq!(
            code(&b.request("room_create", json!({"room_id": room})).await),
            0
        );
    }
    assert_eq!(
        code(&c.request("room_create", json!({"room_id": "l3"})).await),
        0
    );
    assert_eq!(
        code(&a.request("room_join", json!({"room_id": "l1"})).await),
        0
    );
    assert_eq!(
        code(&a.request("room_enter", json!({"room_id": "l2"})).await),
        0
    );
    assert_error(
        &a.request("room_join", json!({"room_id": "l3"})).await,
        6000325,
    );
    assert_error(
        &a.request("room_enter", json!({"room_id": "l3"})).await,
        6000325,
    );
    assert_error(
        &a.request("room_create", json!({"room_id": "l4"})).await,
        6000325,
    );
    assert_error(
        &a.request("room_enter", json!({"room_id": "l5"})).await,
        6000325,
    );
    assert_eq!(
        server.admin().stats().rooms,
        3,
        "failed creates leave no room behind"
    );
    assert_eq!(
        code(&a.request("room_leave", json!({"room_id": "l1"})).await),
        0
    );
    assert_eq!(
        code(&a.request("room_join", json!({"room_id": "l3"})).await),
        0
    );
    server.stop().await;
}

#[actix_rt::test]
async fn members_page_with_a_cursor() {
    let server = server().await;
    let mut owner = online(&server, "m00").await;
    assert_eq!(
        code(
            &owner
                .request("room_create", json!({"room_id": "big"}))
                .await
        ),
        0
    );
    let mut others = Vec::new();
    for i in 1..5 {
        let mut ws = online(&server, &format!("m{i:02}")).await;
        assert_eq!(
            code(&ws.request("room_join", json!({"room_id": "big"})).await),
            0
        );
        others.push(ws);
    }
    let page = owner
        .request("room_members", json!({"room_id": "big", "limit": 2}))
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page), ["m00", "m01"]);
    assert_eq!(page["next_cursor"], json!("m01"));
    let page = owner
        .request(
            "room_members",
            json!({"room_id": "big", "limit": 2, "cursor": "m01"}),
        )
        .await;
    assert_eq!(ids(&page), ["m02", "m03"]);
    let page = owner
        .request(
            "room_members",
            json!({"room_id": "big", "limit": 2, "cursor": "m03"}),
        )
        .await;
    assert_eq!(ids(&page), ["m04"]);
    assert_eq!(page["next_cursor"], Value::Null);
    server.stop().await;
}

#[actix_rt::test]
async fn membership_outlives_a_short_outage_and_ends_without_room_heartbeats() {
    let server = server_with(|s| s.timing.room_session_timeout_ms = 2_000).await;
    let mut stay = online(&server, "stay").await;
    let mut gone = online_from(&server, "gone", "phone").await;
    assert_eq!(
        code(&stay.request("room_create", json!({"room_id": "o1"})).await),
        0
    );
    assert_eq!(
        code(&gone.request("room_join", json!({"room_id": "o1"})).await),
        0
    );
    // a short outage: the socket drops, the user comes back within the timeout
    assert_eq!(
        server.admin().drop(FaultTarget::Users(vec!["gone".into()])),
        1
    );
    assert!(matches!(gone.closed().await, Got::End));
    let mut back = online_from(&server, "gone", "phone").await;
    let reply = back
        .request("room_heartbeat", json!({"room_id": "o1"}))
        .await;
    assert_eq!(code(&reply), 0, "membership kept: {reply}");
    // now only `stay` sends room heartbeats: `gone` expires
    let started = std::time::Instant::now();
    let left = loop {
        let reply = stay
            .request("room_heartbeat", json!({"room_id": "o1"}))
            .await;
        assert_eq!(code(&reply), 0);
        if let Some(pos) = stay
            .pending
            .iter()
            .position(|v| v["push"] == json!("room_member_left"))
        {
            break stay.pending.remove(pos).unwrap();
        }
        assert!(started.elapsed() < WAIT, "no room_member_left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(left["members"][0]["user_id"], json!("gone"));
    assert!(
        started.elapsed() >= Duration::from_millis(1_800),
        "{:?}",
        started.elapsed()
    );
    assert_error(
        &back
            .request("room_heartbeat", json!({"room_id": "o1"}))
            .await,
        6000321,
    );
    assert_eq!(server.admin().stats().room_sessions_expired, 1);
    server.stop().await;
}

#[actix_rt::test]
async fn empty_room_waits_for_its_destroy_delay() {
    let server = server().await;
    let mut a = online(&server, "gil").await;
    let reply = a
        .request(
            "room_create",
            json!({"room_id": "d1", "destroy_delay_secs": 1}),
        )
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert_eq!(
        code(&a.request("room_leave", json!({"room_id": "d1"})).await),
        0
    );
    // still there within the delay: joining it again works, and cancels the destroy
    assert_eq!(
        code(&a.request("room_join", json!({"room_id": "d1"})).await),
        0
    );
    assert_eq!(
        code(&a.request("room_leave", json!({"room_id": "d1"})).await),
        0
    );
    let started = std::time::Instant::now();
    loop {
        if server.admin().stats().rooms == 0 {
            break;
        }
        assert!(started.elapsed() < WAIT, "room never destroyed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_error(
        &a.request("room_join", json!({"room_id": "d1"})).await,
        6000322,
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Messages

fn send_fields(conv_type: u8, to: &str, client_msg_id: &str, body: &str) -> Value {
    json!({"conv_type": conv_type, "to": to, "client_msg_id": client_msg_id, "type": 1, "body": body})
}

#[actix_rt::test]
async fn room_messages_have_dense_seq_and_reach_every_member_once() {
    let server = server().await;
    let mut a = online(&server, "hana").await;
    let mut b = online(&server, "igor").await;
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "chat"})).await),
        0
    );
    assert_eq!(
        code(&b.request("room_join", json!({"room_id": "chat"})).await),
        0
    );
    let mut ids = Vec::new();
    for i in 1..=3u64 {
        let reply = a
            .request(
                "message_send",
                send_fields(1, "chat", &format!("c{i}"), &format!("hello {i}")),
            )
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
        assert_eq!(reply["seq"], json!(i));
        ids.push(reply["message_id"].as_u64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "message ids are unique");
    // a resend of c2 gets the first reply and is not delivered again
    let again = a
        .request("message_send", send_fields(1, "chat", "c2", "hello 2"))
        .await;
    assert_eq!(again["seq"], json!(2));
    assert_eq!(again["message_id"], json!(ids[1]));
    let reply = b
        .request("message_send", send_fields(1, "chat", "c1", "from igor"))
        .await;
    assert_eq!(
        reply["seq"],
        json!(4),
        "client_msg_id is per sender: {reply}"
    );
    for (ws, who) in [(&mut a, "sender"), (&mut b, "member")] {
        let mut seqs = Vec::new();
        while seqs.len() < 4 {
            let push = ws.push("message").await;
            assert_eq!(push["offline"], json!(false));
            let m = &push["message"];
            assert_eq!(
                (m["conv_type"].clone(), m["conv_id"].clone()),
                (json!(1), json!("chat"))
            );
            seqs.push(m["seq"].as_u64().unwrap());
        }
        assert_eq!(seqs, [1, 2, 3, 4], "{who}");
        ws.silent_for(Duration::from_millis(200)).await;
    }
    // history: everything after seq 1, in order, and the page flags
    let reply = b
        .request("room_history", json!({"room_id": "chat", "after_seq": 1}))
        .await;
    let seqs: Vec<u64> = reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!(reply["complete"], json!(true));
    let m = &reply["messages"][0];
    assert_eq!(
        (
            m["from"].clone(),
            m["body"].clone(),
            m["client_msg_id"].clone(),
            m["type"].clone()
        ),
        (json!("hana"), json!("hello 2"), json!("c2"), json!(1))
    );
    let reply = b
        .request(
            "room_history",
            json!({"room_id": "chat", "after_seq": 0, "limit": 2}),
        )
        .await;
    assert_eq!(reply["messages"].as_array().unwrap().len(), 2);
    assert_eq!(reply["complete"], json!(false));
    let reply = b
        .request("room_history", json!({"room_id": "chat", "after_seq": 4}))
        .await;
    assert_eq!(
        (reply["messages"].clone(), reply["complete"].clone()),
        (json!([]), json!(true))
    );
    assert_eq!(server.admin().stats().messages_routed, 4);
    server.stop().await;
}

#[actix_rt::test]
async fn concurrent_senders_across_workers_every_member_sees_every_seq_in_order() {
    const MEMBERS: usize = 12;
    const SENDERS: usize = 4;
    const EACH: usize = 10;
    let server = server_with(|s| s.workers = 2).await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let mut ws = online(&server, &format!("w{i}")).await;
        let reply = ws.request("room_enter", json!({"room_id": "busy"})).await;
        assert_eq!(code(&reply), 0, "{reply}");
        members.push(ws);
    }
    // the senders fire all their requests first, then read the replies: they interleave
    for (s, ws) in members.iter_mut().take(SENDERS).enumerate() {
        for n in 0..EACH {
            let frame = json!({"id": 1000 + n, "op": "message_send", "conv_type": 1, "to": "busy",
                               "client_msg_id": format!("s{s}-{n}"), "type": 1, "body": format!("{s}:{n}")});
            ws.send_text(&frame.to_string()).await;
        }
    }
    let total = (SENDERS * EACH) as u64;
    for (i, ws) in members.iter_mut().enumerate() {
        let mut seqs = Vec::new();
        let mut replies = 0;
        while seqs.len() < total as usize || (i < SENDERS && replies < EACH) {
            match ws.next().await {
                Got::Json(v) if v["push"] == json!("message") => {
                    seqs.push(v["message"]["seq"].as_u64().unwrap())
                }
                Got::Json(v) if v["id"].as_u64().is_some_and(|id| id >= 1000) => {
                    assert_eq!(code(&v), 0, "{v}");
                    replies += 1;
                }
                Got::Json(_) => {}
                other => panic!("member {i}: {other:?}"),
            }
        }
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "member {i}");
    }
    assert_eq!(server.admin().stats().messages_routed, total);
    server.stop().await;
}

#[actix_rt::test]
async fn history_keeps_the_last_n() {
    let server = server_with(|s| s.limits.history_per_room = 3).await;
    let mut a = online(&server, "jo").await;
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "h"})).await),
        0
    );
    for i in 1..=5 {
        let reply = a
            .request("message_send", send_fields(1, "h", &format!("m{i}"), "x"))
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
    }
    let reply = a
        .request("room_history", json!({"room_id": "h", "after_seq": 0}))
        .await;
    let seqs: Vec<u64> = reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
    server.stop().await;
}

#[actix_rt::test]
async fn a_history_page_of_big_messages_fits_one_frame() {
    // Three bodies of 40,000 bytes do not fit one 64 KiB frame: the page stops early and
    // says it is not complete, and the next page carries the rest.
    let server = server().await;
    let mut a = online(&server, "big").await;
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "hb"})).await),
        0
    );
    let body = "b".repeat(40_000);
    for i in 1..=3 {
        let reply = a
            .request(
                "message_send",
                send_fields(1, "hb", &format!("big{i}"), &body),
            )
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
    }
    let mut after = 0;
    let mut pages = 0;
    loop {
        let reply = a
            .request("room_history", json!({"room_id": "hb", "after_seq": after}))
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
        assert!(
            reply.to_string().len() <= 65_536,
            "a page larger than a frame"
        );
        let messages = reply["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "one 40 KB message per page");
        after = messages[0]["seq"].as_u64().unwrap();
        pages += 1;
        if reply["complete"] == json!(true) {
            break;
        }
    }
    assert_eq!((pages, after), (3, 3));
    server.stop().await;
}

#[actix_rt::test]
async fn peer_messages_online_offline_and_unknown() {
    let server = server().await;
    let mut a = online(&server, "kim").await;
    let mut b = online(&server, "lee").await;
    let reply = a
        .request("message_send", send_fields(0, "lee", "p1", "hi lee"))
        .await;
    assert_eq!(code(&reply), 0, "{reply}");
    assert!(reply.get("seq").is_none(), "{reply}");
    let push = b.push("message").await;
    assert_eq!(push["offline"], json!(false));
    assert_eq!(push["message"]["conv_id"], json!("kim"));
    assert_eq!(push["message"]["from"], json!("kim"));
    assert_eq!(push["message"]["body"], json!("hi lee"));
    a.silent_for(Duration::from_millis(100)).await;
    assert_error(
        &a.request("message_send", send_fields(0, "nobody", "p2", "x"))
            .await,
        6000204,
    );
    // lee goes offline: messages are stored and pushed after the next login
    assert_eq!(code(&b.request("logout", json!({})).await), 0);
    for i in 3..=4 {
        let reply = a
            .request(
                "message_send",
                send_fields(0, "lee", &format!("p{i}"), &format!("m{i}")),
            )
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
    }
    let mut b = online(&server, "lee").await;
    for i in 3..=4 {
        let push = b.push("message").await;
        assert_eq!(push["offline"], json!(true), "{push}");
        assert_eq!(push["message"]["body"], json!(format!("m{i}")));
    }
    b.silent_for(Duration::from_millis(100)).await;
    assert_eq!(server.admin().stats().offline_stored, 2);
    server.stop().await;
}

#[actix_rt::test]
async fn message_send_errors() {
    let server = server_with(|s| {
        s.limits.send_rate_per_sec = 1;
        s.limits.send_burst = 8;
    })
    .await;
    let mut a = online(&server, "mo").await;
    let mut b = online(&server, "ned").await;
    assert_eq!(
        code(&b.request("room_create", json!({"room_id": "x"})).await),
        0
    );
    assert_error(
        &a.request("message_send", send_fields(1, "x", "e1", "hi"))
            .await,
        6000321,
    );
    assert_error(
        &a.request("message_send", send_fields(1, "nope", "e2", "hi"))
            .await,
        6000204,
    );
    let big = "x".repeat(49_153);
    assert_error(
        &a.request("message_send", send_fields(0, "ned", "e3", &big))
            .await,
        6000001,
    );
    let mut bad_type = send_fields(0, "ned", "e4", "hi");
    bad_type["type"] = json!(7);
    assert_error(&a.request("message_send", bad_type).await, 6000001);
    let mut bad_conv = send_fields(0, "ned", "e5", "hi");
    bad_conv["conv_type"] = json!(3);
    assert_error(&a.request("message_send", bad_conv).await, 6000001);
    let mut bad_priority = send_fields(0, "ned", "e6", "hi");
    bad_priority["priority"] = json!(4);
    assert_error(&a.request("message_send", bad_priority).await, 6000001);
    assert_error(
        &a.request("message_send", send_fields(0, "ned", "", "hi"))
            .await,
        6000001,
    );
    assert_error(
        &a.request("message_send", send_fields(0, "bad id", "e7", "hi"))
            .await,
        6000001,
    );
    // exactly the body limit is fine
    let max = "y".repeat(49_152);
    assert_eq!(
        code(
            &a.request("message_send", send_fields(0, "ned", "ok1", &max))
                .await
        ),
        0
    );
    // the bucket (8, 1/s) is now nearly empty
    let mut limited = 0;
    for i in 0..10 {
        let reply = a
            .request(
                "message_send",
                send_fields(0, "ned", &format!("r{i}"), "hi"),
            )
            .await;
        if code(&reply) == 6000005 {
            limited += 1;
        }
    }
    assert!(limited >= 2, "server-side frequency limit never hit");
    server.stop().await;
}

#[actix_rt::test]
async fn idempotency_lasts_its_window_only() {
    let server = server_with(|s| s.timing.idempotency_window_ms = 300).await;
    let mut a = online(&server, "ida").await;
    let mut b = online(&server, "ivo").await;
    let first = a
        .request("message_send", send_fields(0, "ivo", "same", "one"))
        .await;
    let again = a
        .request("message_send", send_fields(0, "ivo", "same", "one"))
        .await;
    assert_eq!(code(&first), 0, "{first}");
    assert_eq!(again["timestamp_ms"], first["timestamp_ms"]);
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(b.push("message").await["message"]["body"], json!("one"));
    b.silent_for(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let later = a
        .request("message_send", send_fields(0, "ivo", "same", "one"))
        .await;
    assert_ne!(
        later["message_id"], first["message_id"],
        "window over: a new message"
    );
    assert_eq!(
        b.push("message").await["message"]["message_id"],
        later["message_id"]
    );
    server.stop().await;
}

#[actix_rt::test]
async fn offline_store_keeps_the_newest() {
    let server = server_with(|s| s.limits.offline_messages_per_user = 2).await;
    let mut a = online(&server, "ola").await;
    let mut b = online(&server, "oto").await;
    assert_eq!(code(&b.request("logout", json!({})).await), 0);
    for i in 1..=3 {
        let reply = a
            .request(
                "message_send",
                send_fields(0, "oto", &format!("o{i}"), &format!("m{i}")),
            )
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
    }
    let mut b = online(&server, "oto").await;
    assert_eq!(b.push("message").await["message"]["body"], json!("m2"));
    assert_eq!(b.push("message").await["message"]["body"], json!("m3"));
    b.silent_for(Duration::from_millis(100)).await;
    let stats = server.admin().stats();
    assert_eq!((stats.offline_stored, stats.offline_dropped), (3, 1));
    server.stop().await;
}

#[actix_rt::test]
async fn a_full_room_refuses_with_6000304() {
    let server = server_with(|s| s.limits.members_per_room = 2).await;
    let mut a = online(&server, "pa").await;
    let mut b = online(&server, "pb").await;
    let mut c = online(&server, "pc").await;
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "full"})).await),
        0
    );
    assert_eq!(
        code(&b.request("room_join", json!({"room_id": "full"})).await),
        0
    );
    assert_error(
        &c.request("room_join", json!({"room_id": "full"})).await,
        6000304,
    );
    assert_error(
        &c.request("room_enter", json!({"room_id": "full"})).await,
        6000304,
    );
    server.stop().await;
}

#[actix_rt::test]
async fn pings_are_answered_and_a_client_close_is_echoed() {
    let server = server().await;
    let mut ws = online(&server, "pq").await;
    ws.send_raw(Message::Ping("hb".as_bytes().to_vec().into()))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.framed.next()).await {
            Ok(Some(Ok(Frame::Pong(p)))) => {
                assert_eq!(&p[..], b"hb");
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no pong: {other:?}"),
        }
    }
    ws.send_raw(Message::Close(Some(awc::ws::CloseReason {
        code: awc::ws::CloseCode::Normal,
        description: None,
    })))
    .await;
    assert!(matches!(ws.closed().await, Got::Close(Some(1000))));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Admin and faults

async fn admin_call(
    server: &ServerHandle,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{}", server.http_url(), path);
    let c = client();
    let mut req = match method {
        "GET" => c.get(url),
        "DELETE" => c.delete(url),
        _ => c.post(url),
    };
    if let Some(b) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {b}")));
    }
    let mut resp = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .expect("admin request");
    let status = resp.status().as_u16();
    let bytes = resp.body().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, value)
}

const ADMIN: Option<&str> = Some("test-admin-token");

#[actix_rt::test]
async fn admin_needs_the_bearer_token() {
    let server = server().await;
    let paths = [
        ("GET", "/admin/stats"),
        ("POST", "/admin/tokens"),
        ("POST", "/admin/faults/drop"),
        ("POST", "/admin/faults/blackhole"),
        ("POST", "/admin/users/u/kickout"),
        ("POST", "/admin/users/u/expire_token"),
        ("POST", "/admin/rooms/r/destroy"),
        ("DELETE", "/admin/rooms/r/members/u"),
        ("POST", "/admin/rooms/r/kick"),
    ];
    for (method, path) in paths {
        for bearer in [
            None,
            Some("wrong"),
            Some("test-admin-token-and-more"),
            Some(""),
        ] {
            let (status, body) = admin_call(&server, method, path, bearer, None).await;
            assert_eq!(status, 401, "{method} {path} with {bearer:?}");
            assert_eq!(body["code"], json!(401));
        }
    }
    let (status, stats) = admin_call(&server, "GET", "/admin/stats", ADMIN, None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["sessions"], json!(0));
    assert_eq!(stats["faults_active"]["blackhole_all"], json!(false));
    server.stop().await;

    // without an admin token configured there is no admin API
    let server = server_with(|s| s.admin_token = None).await;
    let (status, _) = admin_call(&server, "GET", "/admin/stats", ADMIN, None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[actix_rt::test]
async fn admin_mints_tokens_that_log_in() {
    let server = server().await;
    let (status, body) = admin_call(
        &server,
        "POST",
        "/admin/tokens",
        ADMIN,
        Some(json!({"user_id": "olga", "ttl_secs": 600})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tok = body["token"].as_str().unwrap();
    assert_eq!(
        token04::read_expiry(tok).unwrap(),
        body["expire_at"].as_i64().unwrap()
    );
    let mut ws = Ws::connect(&server).await;
    assert_eq!(code(&login_with(&mut ws, "olga", "d", tok).await), 0);
    let (status, body) = admin_call(
        &server,
        "POST",
        "/admin/tokens",
        ADMIN,
        Some(json!({"user_id": "bad id", "ttl_secs": 600})),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(6000001)));
    // without ttl_secs the token lives an hour (what a token endpoint client expects)
    let (status, body) = admin_call(
        &server,
        "POST",
        "/admin/tokens",
        ADMIN,
        Some(json!({"user_id": "x"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let lifetime = body["expire_at"].as_i64().unwrap() - now_secs();
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/tokens",
        ADMIN,
        Some(json!({"ttl_secs": 60})),
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[actix_rt::test]
async fn admin_drop_ends_sockets_without_close_frame() {
    let server = server().await;
    let mut a = online(&server, "pia").await;
    let mut b = online(&server, "rob").await;
    let (status, body) = admin_call(
        &server,
        "POST",
        "/admin/faults/drop",
        ADMIN,
        Some(json!({"user_ids": ["pia", "nobody"]})),
    )
    .await;
    assert_eq!((status, body["dropped"].clone()), (200, json!(1)));
    assert!(matches!(a.closed().await, Got::End));
    heartbeat_ok(&mut b).await;
    let (status, body) = admin_call(
        &server,
        "POST",
        "/admin/faults/drop",
        ADMIN,
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!((status, body["dropped"].clone()), (200, json!(1)));
    assert!(matches!(b.closed().await, Got::End));
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/faults/drop",
        ADMIN,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[actix_rt::test]
async fn admin_blackhole_is_an_outage_as_the_client_sees_it() {
    let server = server_with(|s| s.timing.offline_timeout_ms = 5_000).await;
    let mut a = online(&server, "sam").await;
    let mut b = online(&server, "tim").await;
    let (status, body) = admin_call(
        &server,
        "POST",
        "/admin/faults/blackhole",
        ADMIN,
        Some(json!({"user_ids": ["sam"], "secs": 0.6})),
    )
    .await;
    assert_eq!((status, body["affected"].clone()), (200, json!(1)));
    assert_eq!(server.admin().stats().faults_active.blackholed_users, 1);
    // sam's frames are not answered, pushes to sam do not arrive; tim is fine
    a.send_text(r#"{"id":900,"op":"heartbeat"}"#).await;
    let reply = b
        .request("message_send", send_fields(0, "sam", "bh1", "lost"))
        .await;
    assert_eq!(code(&reply), 0);
    a.silent_for(Duration::from_millis(300)).await;
    // a new login of sam hangs
    let mut c = Ws::connect(&server).await;
    c.send_text(&json!({"id": 1, "op": "login", "user_id": "sam", "token": token(&server, "sam", 600), "device_id": "d-sam"}).to_string()).await;
    c.silent_for(Duration::from_millis(200)).await;
    // after the blackhole, sam's session answers again
    tokio::time::sleep(Duration::from_millis(300)).await;
    heartbeat_ok(&mut a).await;
    assert_eq!(server.admin().stats().faults_active.blackholed_users, 0);
    // blackhole everyone
    server
        .admin()
        .blackhole(FaultTarget::All, Duration::from_millis(400));
    b.send_text(r#"{"id":901,"op":"heartbeat"}"#).await;
    b.silent_for(Duration::from_millis(250)).await;
    assert!(server.admin().stats().faults_active.blackhole_all);
    tokio::time::sleep(Duration::from_millis(200)).await;
    heartbeat_ok(&mut b).await;
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/faults/blackhole",
        ADMIN,
        Some(json!({"all": true, "secs": -1})),
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[actix_rt::test]
async fn admin_kickout_and_expire_token() {
    let server = server().await;
    let mut a = online(&server, "uma").await;
    let mut b = online(&server, "vic").await;
    let mut c = online(&server, "wes").await;
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/users/uma/kickout",
        ADMIN,
        Some(json!({"reason": 4})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(a.push("kickout").await["reason"], json!(4));
    assert!(matches!(a.closed().await, Got::Close(Some(4004))));
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/users/vic/kickout",
        ADMIN,
        Some(json!({"reason": 6})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(b.push("kickout").await["reason"], json!(6));
    assert!(matches!(b.closed().await, Got::Close(Some(4006))));
    assert_eq!(b.close_text.as_deref(), Some("Unregistered"));
    // an unregistered user is forgotten: peer messages to it have no target
    assert_error(
        &c.request("message_send", send_fields(0, "vic", "k1", "x"))
            .await,
        6000204,
    );
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/users/wes/kickout",
        ADMIN,
        Some(json!({"reason": 5})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin_call(&server, "POST", "/admin/users/nobody/kickout", ADMIN, None).await;
    assert_eq!(status, 404);
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/users/wes/expire_token",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(c.push("kickout").await["reason"], json!(5));
    assert!(matches!(c.closed().await, Got::Close(Some(4005))));
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/users/wes/expire_token",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(!server.admin().kickout("nobody", KickoutReason::KickedOut));
    server.stop().await;
}

#[actix_rt::test]
async fn admin_room_destroy_evict_and_kick() {
    let server = server().await;
    let mut a = online(&server, "xia").await;
    let mut b = online(&server, "yan").await;
    let mut c = online(&server, "zed").await;
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "adm"})).await),
        0
    );
    assert_eq!(
        code(&b.request("room_join", json!({"room_id": "adm"})).await),
        0
    );
    assert_eq!(
        code(&c.request("room_join", json!({"room_id": "adm"})).await),
        0
    );
    // evict: the others see room_member_left; the evicted member is told nothing
    let (status, _) = admin_call(
        &server,
        "DELETE",
        "/admin/rooms/adm/members/zed",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let left = a.push("room_member_left").await;
    assert_eq!(left["members"][0]["user_id"], json!("zed"));
    c.silent_for(Duration::from_millis(150)).await;
    assert_error(
        &c.request("room_heartbeat", json!({"room_id": "adm"})).await,
        6000321,
    );
    let (status, _) = admin_call(
        &server,
        "DELETE",
        "/admin/rooms/adm/members/zed",
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 404);
    // kick: room_kickout reason 1 to the member
    let (status, _) = admin_call(
        &server,
        "POST",
        "/admin/rooms/adm/kick",
        ADMIN,
        Some(json!({"user_id": "yan"})),
    )
    .await;
    assert_eq!(status, 200);
    let kicked = b.push("room_kickout").await;
    assert_eq!(
        kicked,
        json!({"push": "room_kickout", "room_id": "adm", "reason": 1})
    );
    assert_error(
        &b.request("room_heartbeat", json!({"room_id": "adm"})).await,
        6000321,
    );
    // destroy: room_kickout reason 2 to every member, room gone
    let (status, _) = admin_call(&server, "POST", "/admin/rooms/adm/destroy", ADMIN, None).await;
    assert_eq!(status, 200);
    let gone = a.push("room_kickout").await;
    assert_eq!(gone["reason"], json!(2));
    assert_error(
        &a.request("room_heartbeat", json!({"room_id": "adm"})).await,
        6000322,
    );
    let (status, _) = admin_call(&server, "POST", "/admin/rooms/adm/destroy", ADMIN, None).await;
    assert_eq!(status, 404);
    assert_eq!(server.admin().stats().rooms, 0);
    // after a destroy the user may join rooms again up to its limit
    assert_eq!(
        code(&a.request("room_create", json!({"room_id": "adm"})).await),
        0
    );
    server.stop().await;
}

#[actix_rt::test]
async fn a_reader_that_stalls_is_closed_not_buffered_forever() {
    let server = server_with(|s| {
        s.limits.outbound_queue = 8;
        s.limits.send_rate_per_sec = 0;
        s.timing.offline_timeout_ms = 30_000;
    })
    .await;
    let mut sender = online(&server, "fast").await;
    let _stalled = online(&server, "slow").await; // never read again
    let body = "z".repeat(40_000);
    let started = std::time::Instant::now();
    let mut i = 0;
    while server.admin().stats().outbound_overflows == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no overflow after {i} messages"
        );
        let reply = sender
            .request(
                "message_send",
                send_fields(0, "slow", &format!("f{i}"), &body),
            )
            .await;
        assert_eq!(code(&reply), 0, "{reply}");
        i += 1;
    }
    heartbeat_ok(&mut sender).await;
    assert_eq!(
        server.admin().stats().users_online,
        1,
        "the stalled session is gone"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn server_stop_closes_sessions_with_1001() {
    let server = server().await;
    let mut a = online(&server, "end").await;
    server.stop().await;
    assert!(matches!(a.closed().await, Got::Close(Some(1001))));
    assert_eq!(a.close_text.as_deref(), Some("server stopping"));
}

// ---------------------------------------------------------------------------------------------
// The binary

/// Starts `zimfleet server` with `env`, returns the child and the address it printed.
fn spawn_binary(env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zimfleet"));
    cmd.args(["server", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("zimfleet server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("address line");
    let addr = line
        .trim()
        .strip_prefix("zimfleet server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[actix_rt::test]
async fn binary_prints_its_address_serves_and_stops_on_sigterm() {
    let (mut child, addr) = spawn_binary(&[
        ("ZIMFLEET__SERVER__ADMIN_TOKEN", "bin-admin"),
        ("ZIMFLEET__SERVER__WORKERS", "1"),
    ]);
    let url = format!("http://{addr}/admin/stats");
    let mut resp = client()
        .get(&url)
        .insert_header(("Authorization", "Bearer bin-admin"))
        .send()
        .await
        .expect("admin reachable");
    assert_eq!(resp.status().as_u16(), 200);
    let stats: Value = resp.json().await.unwrap();
    assert_eq!(stats["sessions"], json!(0));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(started.elapsed() < WAIT, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn binary_refuses_impossible_timings_naming_both_keys() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zimfleet"))
        .args(["server", "--listen", "127.0.0.1:0"])
        .env("ZIMFLEET__SERVER__TIMING__HEARTBEAT_INTERVAL_MS", "5000")
        .env("ZIMFLEET__SERVER__TIMING__OFFLINE_TIMEOUT_MS", "5000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "server.timing.offline_timeout_ms (5000) must be greater than \
             server.timing.heartbeat_interval_ms (5000)"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "it never listened");
}

#[test]
fn binary_refuses_bad_settings_naming_the_key() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zimfleet"))
        .args(["server", "--listen", "127.0.0.1:0"])
        .env("ZIMFLEET__SERVER__SERVER_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.server_secret must be exactly 32"),
        "{err}"
    );
    assert!(
        !err.contains("too-short"),
        "the secret must not be printed: {err}"
    );
}

async fn login_raw(framed: &mut Framed<BoxedSocket, Codec>, secret: &Secret, i: usize) {
    let tok = token04::generate(1, &format!("u{i}"), secret, 3600).unwrap();
    let frame = json!({"id": 1, "op": "login", "user_id": format!("u{i}"), "token": tok.expose(), "device_id": "d"});
    framed
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    match framed.next().await {
        Some(Ok(Frame::Text(b))) => {
            let v: Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(v["code"], json!(0), "{v}");
        }
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn binary_reads_a_config_file_under_the_environment() {
    let dir = std::env::temp_dir().join(format!("zimfleet-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.toml");
    std::fs::write(
        &file,
        "[server]\nadmin_token = \"from-file\"\nworkers = 1\n[server.timing]\nheartbeat_interval_ms = 4321\n",
    )
    .unwrap();
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zimfleet"))
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .env(
            "ZIMFLEET__SERVER__TIMING__ROOM_HEARTBEAT_INTERVAL_MS",
            "1234",
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    let (_r, mut framed) = client()
        .ws(format!("ws://{addr}/ws"))
        .connect()
        .await
        .unwrap();
    let (status, _) = {
        let mut resp = client()
            .get(format!("http://{addr}/admin/stats"))
            .insert_header(("Authorization", "Bearer from-file"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.body().await.unwrap())
    };
    assert_eq!(status, 200, "admin token from the file");
    let secret = Secret::from("zimfleet-dev-secret-0123456789ab");
    let tok = token04::generate(1, "cfg", &secret, 600).unwrap();
    let login =
        json!({"id": 1, "op": "login", "user_id": "cfg", "token": tok.expose(), "device_id": "d"});
    framed
        .send(Message::Text(login.to_string().into()))
        .await
        .unwrap();
    let reply: Value = match framed.next().await {
        Some(Ok(Frame::Text(b))) => serde_json::from_slice(&b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reply["heartbeat_interval_ms"], json!(4321), "{reply}");
    assert_eq!(reply["room_heartbeat_interval_ms"], json!(1234), "{reply}");
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[actix_rt::test]
async fn plain_http_on_the_websocket_path_is_a_bad_request() {
    let server = server().await;
    let resp = client()
        .get(server.ws_url().replacen("ws://", "http://", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = client()
        .get(format!("{}/nothing", server.http_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    server.stop().await;
}

#[test]
fn admin_is_a_clone_send_sync_handle() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<zimfleet::server::Admin>();
}

/// Memory per idle logged-in session of the real binary. Run by hand:
/// `ZIMFLEET_SESSIONS=5000 cargo test --test server idle_session_memory -- --ignored --nocapture`
#[actix_rt::test]
#[ignore = "measurement: opens thousands of sockets"]
async fn idle_session_memory() {
    let sessions: usize = std::env::var("ZIMFLEET_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let (mut child, addr) =
        spawn_binary(&[("ZIMFLEET__SERVER__TIMING__OFFLINE_TIMEOUT_MS", "600000")]);
    let secret = Secret::from("zimfleet-dev-secret-0123456789ab");
    let url = format!("ws://{addr}/ws");
    let c = client();
    // warm up: the first connections allocate per-worker buffers
    let mut conns = Vec::with_capacity(sessions);
    for i in 0..100 {
        let (_r, mut framed) = c.ws(url.as_str()).connect().await.unwrap();
        login_raw(&mut framed, &secret, i).await;
        conns.push(framed);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(child.id());
    let login = std::env::var("ZIMFLEET_LOGIN").map_or(true, |v| v != "0");
    for i in 100..100 + sessions {
        let (_r, mut framed) = c.ws(url.as_str()).connect().await.unwrap();
        if login {
            login_raw(&mut framed, &secret, i).await;
        }
        conns.push(framed);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(child.id());
    let per = (after - before) as f64 / sessions as f64;
    eprintln!(
        "server RSS {before} KiB -> {after} KiB for {sessions} idle sessions: {per:.1} KiB per session"
    );
    child.kill().ok();
    drop(conns);
}

/// Room fan-out rate of the real binary. Run by hand:
/// `ZIMFLEET_MEMBERS=500 ZIMFLEET_MESSAGES=200 cargo test --test server room_fanout_rate -- --ignored --nocapture`
#[actix_rt::test]
#[ignore = "measurement: many sockets and messages"]
async fn room_fanout_rate() {
    let env_or = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let members = env_or("ZIMFLEET_MEMBERS", 200);
    let messages = env_or("ZIMFLEET_MESSAGES", 200);
    let (mut child, addr) = spawn_binary(&[
        ("ZIMFLEET__SERVER__TIMING__OFFLINE_TIMEOUT_MS", "600000"),
        ("ZIMFLEET__SERVER__LIMITS__SEND_RATE_PER_SEC", "0"),
        ("ZIMFLEET__SERVER__LIMITS__OUTBOUND_QUEUE", "100000"),
    ]);
    let secret = Secret::from("zimfleet-dev-secret-0123456789ab");
    let url = format!("ws://{addr}/ws");
    let c = client();
    let mut conns = Vec::with_capacity(members);
    for i in 0..members {
        let (_r, mut framed) = c.ws(url.as_str()).connect().await.unwrap();
        login_raw(&mut framed, &secret, i).await;
        let enter = json!({"id": 2, "op": "room_enter", "room_id": "fan"});
        framed
            .send(Message::Text(enter.to_string().into()))
            .await
            .unwrap();
        loop {
            if let Some(Ok(Frame::Text(b))) = framed.next().await {
                let v: Value = serde_json::from_slice(&b).unwrap();
                if v["id"] == json!(2) {
                    assert_eq!(v["code"], json!(0), "{v}");
                    break;
                }
            }
        }
        conns.push(framed);
    }
    // drain the join pushes
    for framed in conns.iter_mut() {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), framed.next()).await
        {
        }
    }
    let started = std::time::Instant::now();
    let sender = &mut conns[0];
    for n in 0..messages {
        let frame = json!({"id": 10 + n, "op": "message_send", "conv_type": 1, "to": "fan",
                           "client_msg_id": format!("f{n}"), "type": 1, "body": "x".repeat(100)});
        sender
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
    let futures = conns.iter_mut().map(|framed| async move {
        let mut got = 0;
        while got < messages {
            match framed.next().await {
                Some(Ok(Frame::Text(b))) if b.starts_with(b"{\"push\":\"message\"") => got += 1,
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    });
    futures_util::future::join_all(futures).await;
    let took = started.elapsed();
    let pushes = members * messages;
    eprintln!(
        "{messages} messages to {members} members: {pushes} pushes in {took:?} = {:.0} pushes/s (debug build, client in the same machine)",
        pushes as f64 / took.as_secs_f64()
    );
    child.kill().ok();
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[actix_rt::test]
async fn a_dropped_socket_ends_for_its_client_at_once() {
    // actix-http used to linger a second on the socket before closing it, so a drop fault
    // reached the client a second late; it must look like an immediate loss.
    let server = server().await;
    let mut a = online(&server, "pia").await;
    let mut b = online(&server, "rob").await;
    heartbeat_ok(&mut b).await;
    let dropped_at = std::time::Instant::now();
    assert_eq!(server.admin().drop(zimfleet::server::FaultTarget::All), 2);
    assert!(matches!(a.closed().await, Got::End));
    assert!(matches!(b.closed().await, Got::End));
    let took = dropped_at.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "the clients saw the drop after {took:?}"
    );
    server.stop().await;
}
