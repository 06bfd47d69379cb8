//! The admin face's JSON API (docs/admin-api.md) against `zimfleet run` (the built binary) on
//! the embedded backend: each call, its exact answer, each refusal with its exact status and
//! message, and that a refused call harms nothing.

mod admin_support;

use std::time::Duration;

use admin_support::{request, ws_open, Run, BOTS};

/// The bodies of the room's recent messages as the admin face keeps them.
fn room_bodies(run: &Run, room: &str) -> Vec<(u64, String)> {
    let reply = run.get(&format!("/api/rooms/{room}"));
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["message"]["message_id"].as_u64().unwrap(),
                m["message"]["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn messages_sent_as_an_account_answer_their_id_and_seq_or_the_zim_code() {
    let mut run = Run::start("api-messages", BOTS, "127.0.0.1:0", &[]);
    run.wait_in_room(&["alice", "bob", "echo"], "r");

    let reply = run.post(
        "/api/accounts/alice/rooms/r/messages",
        Some(r#"{"text":"hello room"}"#),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let sent = reply.json();
    let id = sent["message_id"].as_u64().unwrap();
    assert!(sent["seq"].as_u64().unwrap() >= 1, "{sent}");
    // Bob received it and the echo bot answered it: the room view keeps both.
    run.wait_for("the message and its echo", Duration::from_secs(10), |r| {
        let bodies = room_bodies(r, "r");
        (bodies.contains(&(id, "hello room".into()))
            && bodies.iter().any(|(_, b)| b == "echo: hello room"))
        .then_some(())
    });

    let reply = run.post(
        "/api/accounts/alice/peers/bob/messages",
        Some(r#"{"text":"psst"}"#),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let sent = reply.json();
    assert!(sent["message_id"].as_u64().is_some(), "{sent}");
    assert!(
        sent.get("seq").is_none(),
        "a peer message has no seq: {sent}"
    );

    // ZIM errors answer 409 with the code.
    let reply = run.post(
        "/api/accounts/alice/peers/nobody/messages",
        Some(r#"{"text":"x"}"#),
    );
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(
        reply.body,
        r#"{"code":6000204,"code_name":"MESSAGE_TARGET_NOT_EXIST","error":"user does not exist"}"#
    );
    let reply = run.post(
        "/api/accounts/alice/rooms/elsewhere/messages",
        Some(r#"{"text":"x"}"#),
    );
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(
        reply.body,
        r#"{"code":6000204,"code_name":"MESSAGE_TARGET_NOT_EXIST","error":"room does not exist"}"#
    );

    // Bad calls: exact answers.
    let reply = run.post(
        "/api/accounts/nobody/rooms/r/messages",
        Some(r#"{"text":"x"}"#),
    );
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (404, r#"{"error":"no account \"nobody\" in this fleet"}"#)
    );
    let reply = run.post(
        "/api/accounts/alice/rooms/r/messages",
        Some(r#"{"txt":"x"}"#),
    );
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        reply.body.starts_with(r#"{"error":"bad JSON body: Json deserialize error: unknown field `txt`, expected `text`"#),
        "{reply:?}"
    );
    let reply = run.request(
        "POST",
        "/api/accounts/alice/rooms/r/messages",
        &[],
        Some(r#"{"text":"x"}"#),
    );
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"error":"bad JSON body: Content type error"}"#)
    );
    let reply = run.get("/api/accounts/alice/rooms/r/messages");
    assert_eq!(reply.status, 405, "{reply:?}");
    let big = format!("{{\"text\":\"{}\"}}", "x".repeat(70 * 1024));
    let reply = run.post("/api/accounts/alice/rooms/r/messages", Some(&big));
    assert_eq!(reply.status, 400, "{reply:?}");

    // Nothing was harmed: alice is still connected and still sends.
    let state = run.get("/api/accounts/alice").json();
    assert_eq!(
        (state["state"].clone(), state["state_name"].clone()),
        (2.into(), "Connected".into())
    );
    // (A conversation of its own: ZIM allows one send per 100 ms per conversation, 6000004.)
    let reply = run.post(
        "/api/accounts/alice/peers/echo/messages",
        Some(r#"{"text":"still here"}"#),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(run.stop(), Some(0));
}

#[test]
fn an_account_enters_lists_members_of_and_leaves_a_room() {
    let mut run = Run::start("api-rooms", BOTS, "127.0.0.1:0", &[]);
    run.wait_in_room(&["alice", "bob"], "r");

    let members = run.get("/api/accounts/alice/rooms/r/members");
    assert_eq!(members.status, 200, "{members:?}");
    let ids: Vec<String> = members.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["alice", "bob", "echo"]);
    let shown = run.get("/api/rooms/r/members").json();
    assert_eq!(shown["members"].as_array().unwrap().len(), 3, "{shown}");

    let entered = run.post("/api/accounts/bob/rooms/side/enter", None);
    assert_eq!(entered.status, 200, "{entered:?}");
    assert_eq!(entered.json()["room_id"], "side");
    let members = run.get("/api/accounts/bob/rooms/side/members").json();
    assert_eq!(members["members"][0]["user_id"], "bob", "{members}");
    let state = run.get("/api/accounts/bob").json();
    let rooms: Vec<(String, i64)> = state["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["room_id"].as_str().unwrap().to_string(),
                r["state"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(rooms.contains(&("side".into(), 2)), "{state}");

    let left = run.post("/api/accounts/bob/rooms/side/leave", None);
    assert_eq!((left.status, left.body.as_str()), (200, r#"{"ok":true}"#));
    let after = run.get("/api/accounts/bob/rooms/side/members");
    assert_eq!(after.status, 409, "{after:?}");
    assert_eq!(after.json()["code"], 6000321, "{after:?}");
    // Leaving a room it is not in: the ZIM code.
    let again = run.post("/api/accounts/bob/rooms/side/leave", None);
    assert_eq!(again.status, 409, "{again:?}");
    // Bob is still in r, untouched.
    run.wait_in_room(&["bob"], "r");
    assert_eq!(run.stop(), Some(0));
}

#[test]
fn a_dropped_link_recovers_and_a_logged_out_account_refuses_to_send() {
    let env = [
        ("ZIMFLEET__RETRY__FIRST_MIN", "100ms"),
        ("ZIMFLEET__RETRY__FIRST_MAX", "200ms"),
    ];
    let mut run = Run::start("api-drop", BOTS, "127.0.0.1:0", &env);
    run.wait_in_room(&["alice", "bob"], "r");

    let reply = run.post("/api/accounts/alice/drop", None);
    assert_eq!((reply.status, reply.body.as_str()), (200, r#"{"ok":true}"#));
    run.wait_for(
        "alice reconnecting, then connected",
        Duration::from_secs(10),
        |r| {
            let pairs = r.connection_pairs("alice");
            let lost = pairs.iter().position(|p| *p == (3, 3))?;
            pairs[lost..].contains(&(2, 0)).then_some(())
        },
    );

    let reply = run.post("/api/accounts/bob/logout", None);
    assert_eq!((reply.status, reply.body.as_str()), (200, r#"{"ok":true}"#));
    let state = run.get("/api/accounts/bob").json();
    assert_eq!(
        (state["state"].clone(), state["last_event"].clone()),
        (0.into(), 0.into()),
        "{state}"
    );
    let reply = run.post(
        "/api/accounts/bob/rooms/r/messages",
        Some(r#"{"text":"x"}"#),
    );
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(reply.json()["code"], 6000121, "{reply:?}");
    // Logging out again is done already.
    assert_eq!(run.post("/api/accounts/bob/logout", None).status, 200);
    assert_eq!(run.post("/api/accounts/nobody/drop", None).status, 404);
    // Alice was not harmed.
    run.wait_in_room(&["alice"], "r");
    let page = run.get("/api/accounts?state=0").json();
    assert_eq!(page["matched"], 1, "{page}");
    assert_eq!(page["accounts"][0]["ended"], "logout", "{page}");
    assert_eq!(run.stop(), Some(0));
}

const TOKEN: &str = "t0ken-for-the-admin-face";

#[test]
fn with_a_token_every_path_but_the_page_shell_asks_for_it() {
    let mut run = Run::start(
        "api-token",
        BOTS,
        "127.0.0.1:0",
        &[("ZIMFLEET__ADMIN__TOKEN", TOKEN)],
    );
    let bearer = format!("Bearer {TOKEN}");
    let auth: &[(&str, &str)] = &[("Authorization", &bearer)];
    let missing =
        r#"{"error":"this admin face needs a bearer token: send Authorization: Bearer TOKEN"}"#;
    for path in [
        "/health",
        "/accounts",
        "/metrics",
        "/api/summary",
        "/api/accounts",
        "/api/rooms/r",
        "/api/accounts/alice",
        "/nope",
    ] {
        let reply = run.get(path);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (401, missing),
            "{path}"
        );
        assert!(
            reply
                .headers
                .contains("www-authenticate: bearer realm=\"zimfleet\""),
            "{reply:?}"
        );
    }
    for path in [
        "/api/accounts/alice/logout",
        "/api/accounts/alice/drop",
        "/api/tickets",
        "/api/accounts/alice/rooms/r/messages",
    ] {
        let reply = run.post(path, Some(r#"{"text":"x"}"#));
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (401, missing),
            "{path}"
        );
    }
    let wrong = run.request(
        "GET",
        "/accounts",
        &[("Authorization", "Bearer nope")],
        None,
    );
    assert_eq!(
        (wrong.status, wrong.body.as_str()),
        (401, r#"{"error":"wrong bearer token"}"#)
    );

    // The page shell opens without the token and holds none.
    let page = run.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"login-form\""));
    assert!(!page.body.contains(TOKEN));

    // /events: 401 without the bearer or a ticket; a ticket opens one stream, once.
    let (status, _) = ws_open(&run.admin, "/events", &[]);
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    let (status, _) = ws_open(&run.admin, "/events", auth);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let ticket = run.request("POST", "/api/tickets", auth, None).json();
    let ticket = ticket["ticket"].as_str().unwrap().to_string();
    assert_eq!(ticket.len(), 32);
    let path = format!("/events?messages=true&ticket={ticket}");
    let (status, _) = ws_open(&run.admin, &path, &[]);
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let (status, _) = ws_open(&run.admin, &path, &[]);
    assert!(
        status.starts_with("HTTP/1.1 401"),
        "a ticket is used once: {status}"
    );

    // With the bearer everything answers, and the refusals harmed nothing.
    run.wait_for("alice and bob in room r", Duration::from_secs(30), |r| {
        let reply = r.request("GET", "/api/accounts?q=r", auth, None);
        assert_eq!(reply.status, 200);
        (reply.json()["counts"]["connected"] == 3).then_some(())
    });
    for path in [
        "/health",
        "/accounts",
        "/metrics",
        "/api/summary",
        "/api/accounts/alice",
    ] {
        assert_eq!(run.request("GET", path, auth, None).status, 200, "{path}");
    }
    let sent = request(
        &run.admin,
        "POST",
        "/api/accounts/alice/rooms/r/messages",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"text":"with the token"}"#),
    );
    assert_eq!(sent.status, 200, "{sent:?}");
    assert_eq!(run.stop(), Some(0));
    let log = run.log_text();
    assert!(!log.contains(TOKEN), "the token in the log:\n{log}");
    assert!(!log.contains(&ticket), "a ticket in the log:\n{log}");
}

#[test]
fn beyond_loopback_without_a_token_actions_are_refused_and_reads_answer() {
    let mut run = Run::start(
        "api-public",
        BOTS,
        "0.0.0.0:0",
        &[("ZIMFLEET__ADMIN__ALLOW_NON_LOOPBACK", "true")],
    );
    run.wait_in_room(&["alice"], "r");
    let refused = r#"{"error":"actions are refused: the admin face listens beyond loopback without admin.token"}"#;
    for path in [
        "/api/accounts/alice/logout",
        "/api/accounts/alice/drop",
        "/api/accounts/alice/rooms/r/messages",
        "/api/accounts/alice/rooms/x/enter",
        "/api/tickets",
    ] {
        let reply = run.post(path, Some(r#"{"text":"x"}"#));
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (403, refused),
            "{path}"
        );
    }
    assert_eq!(run.get("/api/accounts/alice").json()["state"], 2);
    assert_eq!(run.get("/accounts").status, 200);
    let events = run.connection_pairs("alice");
    assert_eq!(events.last(), Some(&(2, 0)), "alice untouched: {events:?}");
    assert_eq!(run.stop(), Some(0));
}
