//! The pure targets: decoders and loaders that take bytes from outside the process.

use std::path::PathBuf;

use bytes::BytesMut;
use zimfleet::protocol::{
    LoginReply, MessageSendReply, RequestFrame, RoomEnterReply, RoomHistoryReply, RoomMembersReply,
    Secret, ServerFrame, MAX_FRAME_BYTES,
};
use zimfleet::token::token04::{self, ClientTokenLimits};

use super::engine::Target;
use super::inputs;

/// Words of docs/protocol.md: keys, ops, push names, enum values.
pub const PROTOCOL_WORDS: &[&[u8]] = &[
    b"id",
    b"op",
    b"code",
    b"msg",
    b"push",
    b"user_id",
    b"user_name",
    b"token",
    b"device_id",
    b"platform",
    b"room_id",
    b"room_name",
    b"attributes",
    b"destroy_delay_secs",
    b"cursor",
    b"limit",
    b"after_seq",
    b"conv_type",
    b"to",
    b"client_msg_id",
    b"type",
    b"body",
    b"priority",
    b"seq",
    b"message_id",
    b"members",
    b"messages",
    b"room",
    b"state",
    b"event",
    b"reason",
    b"expire_at",
    b"server_time",
    b"login",
    b"heartbeat",
    b"renew_token",
    b"logout",
    b"room_create",
    b"room_join",
    b"room_enter",
    b"room_leave",
    b"room_heartbeat",
    b"room_members",
    b"room_history",
    b"message_send",
    b"message",
    b"kicked_out",
    b"token_will_expire",
    b"room_state",
    b"member_joined",
    b"member_left",
    b"room_kickout",
    b"room_destroyed",
    b"peer",
    b"text",
    b"0",
    b"1",
    b"2",
    b"3",
    b"lobby",
];

fn seeds(lines: &[&str]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.as_bytes().to_vec()).collect()
}

/// Frames the client decodes: replies of each op and every push.
pub fn client_frames() -> Target {
    Target {
        name: "client_frames",
        seeds: seeds(&[
            r#"{"id":1,"code":0,"user_id":"ann","server_time":1764000000000}"#,
            r#"{"id":2,"code":6000121,"msg":"not logged in"}"#,
            r#"{"id":3,"code":0,"room":{"room_id":"lobby","room_name":"Lobby"},"members":[]}"#,
            r#"{"id":4,"code":0,"message_id":"m1","seq":7}"#,
            r#"{"id":5,"code":0,"messages":[{"room_id":"lobby","seq":1,"message_id":"m","from":"ann","type":"text","body":"hi","timestamp":1}],"next":null}"#,
            r#"{"push":"message","conv_type":"room","to":"lobby","from":"ann","seq":3,"message_id":"m3","type":"text","body":"hello","timestamp":1}"#,
            r#"{"push":"kicked_out","reason":1}"#,
            r#"{"push":"token_will_expire","expire_at":1764000000}"#,
            r#"{"push":"member_joined","room_id":"lobby","members":[{"user_id":"bob"}]}"#,
            r#"{"push":"room_state","room_id":"lobby","state":0,"event":3}"#,
        ]),
        dictionary: PROTOCOL_WORDS.to_vec(),
        generate: inputs::json,
        run: Box::new(|input| {
            let text = String::from_utf8_lossy(input);
            if let Ok(ServerFrame::Reply { text, .. }) = ServerFrame::parse(&text) {
                let _ = ServerFrame::reply_body::<LoginReply>(text);
                let _ = ServerFrame::reply_body::<RoomEnterReply>(text);
                let _ = ServerFrame::reply_body::<RoomMembersReply>(text);
                let _ = ServerFrame::reply_body::<RoomHistoryReply>(text);
                let _ = ServerFrame::reply_body::<MessageSendReply>(text);
            }
        }),
    }
}

/// Raw WebSocket bytes through the decoder the client reads its socket with (the codec in
/// client mode with the protocol's frame limit), decoding until it needs more bytes.
pub fn client_ws_bytes() -> Target {
    let mut seeds = Vec::new();
    for payload in [&b"{\"id\":1,\"code\":0}"[..], b"", &[0u8; 200][..]] {
        let mut frame = vec![0x81, payload.len() as u8];
        if payload.len() > 125 {
            frame = vec![0x81, 126, 0, payload.len() as u8];
        }
        frame.extend_from_slice(payload);
        seeds.push(frame);
    }
    seeds.push(vec![0x88, 0x02, 0x03, 0xe9]);
    seeds.push(vec![0x89, 0x00, 0x8a, 0x00]);
    seeds.push(vec![0x01, 0x01, b'a', 0x80, 0x01, b'b']);
    Target {
        name: "client_ws_bytes",
        seeds,
        dictionary: vec![
            &[0x81],
            &[0x82],
            &[0x88],
            &[0x89],
            &[0x8a],
            &[0x00],
            &[0x80],
            &[126],
            &[127],
        ],
        generate: |u, _| u.arbitrary::<Vec<u8>>().unwrap_or_default(),
        run: Box::new(|input| {
            use actix_codec::Decoder as _;
            let mut codec = awc::ws::Codec::new()
                .max_size(MAX_FRAME_BYTES)
                .client_mode();
            let mut buf = BytesMut::from(input);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
        }),
    }
}

/// Request frames as the server decodes them (the protocol's request type).
pub fn server_requests() -> Target {
    Target {
        name: "server_requests",
        seeds: seeds(&[
            r#"{"id":1,"op":"login","user_id":"ann","token":"04AAAA","device_id":"d"}"#,
            r#"{"id":2,"op":"room_enter","room_id":"lobby","room_name":"Lobby","attributes":{"a":"b"}}"#,
            r#"{"id":3,"op":"message_send","conv_type":"room","to":"lobby","client_msg_id":"c1","type":"text","body":"hi"}"#,
            r#"{"id":4,"op":"room_history","room_id":"lobby","after_seq":0,"limit":100}"#,
            r#"{"id":5,"op":"room_members","room_id":"lobby","cursor":"x","limit":5}"#,
            r#"{"id":6,"op":"heartbeat"}"#,
        ]),
        dictionary: PROTOCOL_WORDS.to_vec(),
        generate: inputs::json,
        run: Box::new(|input| {
            let text = String::from_utf8_lossy(input);
            let _ = serde_json::from_str::<RequestFrame>(&text);
        }),
    }
}

/// Token04 parsing: the clear header, the client's checks, decryption with both layouts.
pub fn token04() -> Target {
    let secret = Secret::from("fa94dd0f974cf2e293728a526b028271");
    let claims = token04::Claims {
        app_id: 1,
        user_id: "ann".into(),
        nonce: 7,
        ctime: 1_764_000_000,
        expire: 1_764_003_600,
        payload: String::new(),
    };
    let mut seeds = Vec::new();
    for (layout, nonce) in [
        (token04::Layout::Gcm, &[3u8; 12][..]),
        (token04::Layout::Cbc, &[5u8; 16][..]),
    ] {
        if let Ok(t) = token04::encode(&claims, &secret, layout, nonce) {
            seeds.push(t.into_bytes());
        }
    }
    let limits = ClientTokenLimits::default();
    Target {
        name: "token04",
        seeds,
        dictionary: vec![b"04", b"=", b"+", b"/", b"AAAA"],
        generate: inputs::token,
        run: Box::new(move |input| {
            let text = String::from_utf8_lossy(input);
            let _ = token04::read_expiry(&text);
            let _ = token04::client_check(&text, 1_764_000_000, &limits);
            let _ = token04::verify(&text, &secret);
        }),
    }
}

/// Words of the bot and config files.
const TOML_WORDS: &[&[u8]] = &[
    b"behaviour",
    b"enabled",
    b"accounts",
    b"user_id",
    b"user_name",
    b"rooms",
    b"room_id",
    b"room_name",
    b"settings",
    b"token",
    b"source",
    b"url",
    b"device_id",
    b"policy",
    b"echo",
    b"greeter",
    b"chatter",
    b"keywords",
    b"relay",
    b"scheduled",
    b"server",
    b"run",
    b"backend",
    b"fleet",
    b"retry",
    b"timing",
    b"limits",
    b"listen",
    b"heartbeat_interval_ms",
    b"offline_timeout_ms",
    b"room_heartbeat_interval_ms",
    b"room_session_timeout_ms",
    b"secret",
    b"app_id",
    b"admin_token",
    b"loadtest",
    b"accounts",
    b"arrival_rate",
    b"duration",
    b"room_size",
    b"messages_per_sec",
    b"chaos",
    b"offline_share",
    b"workers",
];

fn shipped(dir: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                if let Ok(b) = std::fs::read(e.path()) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// Bot files (bots/*.toml) as the runner parses them.
pub fn bot_files() -> Target {
    let quiet = zimfleet::bot::pacer::Quiet::default();
    let path = PathBuf::from("bots/fuzz.toml");
    Target {
        name: "bot_files",
        seeds: shipped("bots"),
        dictionary: TOML_WORDS.to_vec(),
        generate: inputs::toml,
        run: Box::new(move |input| {
            let text = String::from_utf8_lossy(input);
            let env = |_: &str| None;
            let _ = zimfleet::runner::bots::parse_file(&path, &text, true, &env, &quiet);
        }),
    }
}

/// Config files (config/*.toml) through the layered loader: server, runner and load plan.
pub fn config_files() -> Target {
    let file = std::env::temp_dir().join(format!("zimfleet-fuzz-{}.toml", std::process::id()));
    let empty = std::collections::HashMap::new;
    Target {
        name: "config_files",
        seeds: shipped("config"),
        dictionary: TOML_WORDS.to_vec(),
        generate: inputs::toml,
        run: Box::new(move |input| {
            if std::fs::write(&file, input).is_err() {
                return;
            }
            let _ = zimfleet::server::ServerSettings::load_with_env(Some(&file), Some(empty()));
            let _ = zimfleet::runner::settings::load(Some(&file), Some(empty()));
            if let Ok(plan) = zimfleet::loadtest::plan::Plan::load_with(Some(&file), Some(empty()))
            {
                let _ = plan.validate();
            }
        }),
    }
}
