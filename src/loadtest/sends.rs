//! The hold's messages: issued in turn over the online accounts (and each account's rooms in
//! turn), at most [`MAX_SENDS_IN_FLIGHT`] waiting for a reply; outcomes counted by second.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use super::receiver::{make_body, now_us};
use crate::client::AccountHandle;
use crate::protocol::MessageType;

/// Sends waiting for their reply, at most (more wait until replies come back).
pub const MAX_SENDS_IN_FLIGHT: u64 = 20_000;

/// What the sends produced (driver thread only).
#[derive(Debug, Default)]
pub struct Sends {
    pub in_flight: u64,
    pub issued: u64,
    pub sent: u64,
    pub failed: u64,
    pub errors: BTreeMap<u32, u64>,
    /// unix second -> ZIM error code -> failed sends.
    pub errors_by_sec: BTreeMap<u64, BTreeMap<u32, u64>>,
    /// room slot -> (lowest, highest) seq of this shard's sends.
    pub seqs: HashMap<u32, (u64, u64)>,
    pub by_sec: BTreeMap<u64, u64>,
}

/// One account of this shard.
pub struct Member {
    pub handle: AccountHandle,
    /// Room ids and slots.
    pub rooms: Vec<(String, u32)>,
}

/// Issues sends until `due` have been issued (or too many wait for replies), taking the
/// online accounts (`active`: slots into `members`) in turn. Returns the new cursor.
pub fn issue_sends(
    sends: &Rc<RefCell<Sends>>,
    members: &[Option<Member>],
    active: &VecDeque<u32>,
    mut cursor: u64,
    due: u64,
    body_bytes: usize,
) -> u64 {
    let n = active.len() as u64;
    if n == 0 {
        return cursor;
    }
    loop {
        let (issued, in_flight) = {
            let s = sends.borrow();
            (s.issued, s.in_flight)
        };
        if issued >= due || in_flight >= MAX_SENDS_IN_FLIGHT {
            return cursor;
        }
        let slot = active[(cursor % n) as usize] as usize;
        cursor += 1;
        let Some(member) = members.get(slot).and_then(Option::as_ref) else {
            continue;
        };
        if member.rooms.is_empty() {
            // Rooms-less accounts never send; count the turn as issued so the loop ends.
            sends.borrow_mut().issued += 1;
            continue;
        }
        let (room_id, room_slot) =
            member.rooms[((cursor / n) % member.rooms.len() as u64) as usize].clone();
        send_one(
            sends,
            member.handle.clone(),
            room_id,
            room_slot,
            body_bytes,
            issued,
        );
    }
}

/// Sends one message and records its outcome.
fn send_one(
    sends: &Rc<RefCell<Sends>>,
    handle: AccountHandle,
    room_id: String,
    room_slot: u32,
    body_bytes: usize,
    n: u64,
) {
    {
        let mut s = sends.borrow_mut();
        s.issued += 1;
        s.in_flight += 1;
    }
    let sends = sends.clone();
    actix::spawn(async move {
        let body = make_body(body_bytes, now_us(), n);
        let result = handle
            .send_room_message(&room_id, MessageType::Text, body)
            .await;
        let mut s = sends.borrow_mut();
        s.in_flight -= 1;
        let sec = crate::clock::unix_secs();
        match result {
            Ok(reply) => {
                s.sent += 1;
                *s.by_sec.entry(sec).or_default() += 1;
                if let Some(seq) = reply.seq {
                    let e = s.seqs.entry(room_slot).or_insert((seq, seq));
                    e.0 = e.0.min(seq);
                    e.1 = e.1.max(seq);
                }
            }
            Err(e) => {
                s.failed += 1;
                let code = e.code.number();
                *s.errors.entry(code).or_default() += 1;
                *s.errors_by_sec
                    .entry(sec)
                    .or_default()
                    .entry(code)
                    .or_default() += 1;
            }
        }
    });
}
