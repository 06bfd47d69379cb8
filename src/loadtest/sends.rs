//! The hold's messages: issued in turn over the online accounts (and each account's rooms in
//! turn), at most [`MAX_SENDS_IN_FLIGHT`] waiting for a reply; outcomes counted by second.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::receiver::{make_body, now_us, Sent};
use crate::client::AccountHandle;
use crate::protocol::MessageType;

/// Sends waiting for their reply, at most (more wait until replies come back).
pub const MAX_SENDS_IN_FLIGHT: u64 = 20_000;
/// Least time between two sends of one account to one room: the client allows one message
/// per 100 ms per conversation (6000004 otherwise), plus 5 ms for timer jitter. The driver
/// asks for half the planned spacing when that is more (room for an account's mailbox to be
/// late). A late step's backlog waits for the next steps instead of going out twice.
///
/// One send per (account, room) waits for its reply at a time, and after one answered later
/// than this gap after it was issued (it may have waited in the outbox through an outage,
/// e.g. a backend restart) the next waits this gap after the reply too: the outbox sends it
/// when the room is back, and a new send right then would meet the client's limit.
pub const MIN_ROOM_GAP: Duration = Duration::from_millis(105);

/// What the sends produced (driver thread only).
#[derive(Debug, Default)]
pub struct Sends {
    /// In flight.
    pub in_flight: u64,
    /// Issued.
    pub issued: u64,
    /// Sent.
    pub sent: u64,
    /// Failed.
    pub failed: u64,
    /// Errors.
    pub errors: BTreeMap<u32, u64>,
    /// unix second -> ZIM error code -> failed sends.
    pub errors_by_sec: BTreeMap<u64, BTreeMap<u32, u64>>,
    /// room slot -> incarnation (0: the server sends none) -> (lowest, highest) seq of
    /// this shard's sends: seqs start over in each incarnation of a room.
    pub seqs: Sent,
    /// By sec.
    pub by_sec: BTreeMap<u64, u64>,
}

/// One account of this shard.
pub struct Member {
    /// Handle.
    pub handle: AccountHandle,
    /// Room ids and slots.
    pub rooms: Vec<(String, u32)>,
    /// Sends issued by this account (its rooms take turns).
    pub turns: Cell<u64>,
    /// Its sends waiting for a reply (a ramp-down logout waits for them).
    pub pending: Rc<Cell<u32>>,
    /// When it last sent to each of its rooms (same order as `rooms`).
    pub last_sent: Rc<[Cell<Option<Instant>>]>,
    /// Whether a send to each of its rooms waits for its reply (same order as `rooms`).
    pub waiting: Rc<[Cell<bool>]>,
}

impl Member {
    /// A member of `rooms` that has not sent yet.
    pub fn new(handle: AccountHandle, rooms: Vec<(String, u32)>) -> Member {
        Member {
            handle,
            last_sent: rooms.iter().map(|_| Cell::new(None)).collect(),
            waiting: rooms.iter().map(|_| Cell::new(false)).collect(),
            rooms,
            turns: Cell::new(0),
            pending: Rc::new(Cell::new(0)),
        }
    }
}

/// Where and how fast [`issue_sends`] may send.
pub struct Turns<'a> {
    /// Members.
    pub members: &'a [Option<Member>],
    /// Slots into `members`, in turn order.
    pub senders: &'a VecDeque<u32>,
    /// Whether the account in a slot is online now (a send to one that is not would wait in
    /// its outbox and leave in a burst when it is back).
    pub online: &'a dyn Fn(u32) -> bool,
    /// Least time between two sends of one account to one room (at least [`MIN_ROOM_GAP`]).
    pub gap: Duration,
}

/// Issues sends until `due` have been issued (or too many wait for replies, or every sender
/// sent too recently), taking the senders in turn from position `pos`; returns the next
/// position. The turn order is the senders' order, so each account's sends stay evenly
/// spaced while accounts join (at the end) and leave (the caller moves `pos` back by those
/// that left before it).
pub fn issue_sends(
    sends: &Rc<RefCell<Sends>>,
    turns: &Turns<'_>,
    mut pos: usize,
    due: u64,
    body_bytes: usize,
) -> usize {
    let (members, senders) = (turns.members, turns.senders);
    let gap = turns.gap.max(MIN_ROOM_GAP);
    let n = senders.len();
    if n == 0 {
        return pos;
    }
    let now = Instant::now();
    // Turns passed without a send: after a whole round, every sender is too recent.
    let mut idle = 0;
    loop {
        let (issued, in_flight) = {
            let s = sends.borrow();
            (s.issued, s.in_flight)
        };
        if issued >= due || in_flight >= MAX_SENDS_IN_FLIGHT || idle >= n {
            return pos;
        }
        pos %= n;
        let slot = senders[pos] as usize;
        pos += 1;
        let Some(member) = members.get(slot).and_then(Option::as_ref) else {
            continue;
        };
        if member.rooms.is_empty() {
            // Rooms-less accounts never send; count the turn as issued so the loop ends.
            sends.borrow_mut().issued += 1;
            continue;
        }
        if !(turns.online)(slot as u32) {
            idle += 1;
            continue;
        }
        let turn = member.turns.get();
        let j = (turn % member.rooms.len() as u64) as usize;
        let last = &member.last_sent[j];
        let recent = last.get().is_some_and(|t| now.duration_since(t) < gap);
        if recent || member.waiting[j].get() {
            idle += 1;
            continue;
        }
        idle = 0;
        last.set(Some(now));
        member.turns.set(turn + 1);
        send_one(sends, member, j, gap, (body_bytes, issued));
    }
}

/// Sends one message and records its outcome.
/// Sends message `n` (of `body_bytes`) from `member` to its room `j`; `gap`: the least time
/// between two of its sends there.
fn send_one(
    sends: &Rc<RefCell<Sends>>,
    member: &Member,
    j: usize,
    gap: Duration,
    (body_bytes, n): (usize, u64),
) {
    {
        let mut s = sends.borrow_mut();
        s.issued += 1;
        s.in_flight += 1;
    }
    let sends = sends.clone();
    let (room_id, room_slot) = member.rooms[j].clone();
    let (handle, pending) = (member.handle.clone(), member.pending.clone());
    let (last_sent, waiting) = (member.last_sent.clone(), member.waiting.clone());
    pending.set(pending.get() + 1);
    waiting[j].set(true);
    let issued_at = Instant::now();
    actix::spawn(async move {
        let body = make_body(body_bytes, now_us(), n);
        let result = handle
            .send_room_message(&room_id, MessageType::Text, body)
            .await;
        pending.set(pending.get() - 1);
        waiting[j].set(false);
        if issued_at.elapsed() > MIN_ROOM_GAP {
            // it may have left only now: the next one goes MIN_ROOM_GAP after this reply at
            // the earliest (and `gap` after this one was issued, as always)
            let now = Instant::now();
            let as_if = now.checked_sub(gap - MIN_ROOM_GAP).unwrap_or(issued_at);
            last_sent[j].set(Some(as_if.max(issued_at)));
        }
        let mut s = sends.borrow_mut();
        s.in_flight -= 1;
        let sec = crate::clock::unix_secs();
        match result {
            Ok(reply) => {
                s.sent += 1;
                *s.by_sec.entry(sec).or_default() += 1;
                if let Some(seq) = reply.seq {
                    let incarnation = reply.incarnation.unwrap_or(0);
                    let by = s.seqs.entry(room_slot).or_default();
                    let e = by.entry(incarnation).or_insert((seq, seq));
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
