//! The load bot: every account of a run shares one [`LoadBot`]; it receives messages and
//! measures end-to-end latency (the send time travels in the body), deliveries, and
//! duplicates by (room, incarnation, seq): a room created again (a server restart) numbers
//! from 1 again, which is neither a duplicate nor hides a loss. Missing seqs are counted at
//! the end against what the rooms produced ([`Receivers::missing`]), those of an
//! incarnation that died with its backend apart (docs/loadtest.md, "Lost with the backend").
//!
//! Handlers run on the accounts' arbiter threads, so the state is split into stripes by
//! receiver, each behind its own short lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;

use super::hist::{Hist, SecHist};
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{ChatMessage, ConvType};

/// Every load-test body starts with this tag, then the send time in unix microseconds.
pub const BODY_TAG: &str = "lt1 ";

const STRIPES: usize = 16;

/// Unix time in microseconds (the crate's wall clock).
pub fn now_us() -> u64 {
    crate::clock::unix_us()
}

/// A body of exactly `size` bytes (>= 40) carrying the send time and a sequence number.
pub fn make_body(size: usize, sent_us: u64, n: u64) -> String {
    let mut body = format!("{BODY_TAG}{sent_us} {n} ");
    while body.len() < size {
        body.push('x');
    }
    body.truncate(size);
    body
}

/// The send time in a load-test body.
pub fn body_sent_us(body: &str) -> Option<u64> {
    body.strip_prefix(BODY_TAG)?.split(' ').next()?.parse().ok()
}

/// Room seqs one receiver saw in one room: sorted disjoint inclusive ranges (messages come
/// in order, so this is almost always one range).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Adds `seq`; false when it was already there (a duplicate).
    pub fn insert(&mut self, seq: u64) -> bool {
        if let Some(last) = self.ranges.last_mut() {
            if seq == last.1 + 1 {
                last.1 = seq;
                return true;
            }
            if seq > last.1 {
                self.ranges.push((seq, seq));
                return true;
            }
        } else {
            self.ranges.push((seq, seq));
            return true;
        }
        // Out of order: find the range at or before seq.
        let pos = self.ranges.partition_point(|r| r.0 <= seq);
        if pos > 0 && self.ranges[pos - 1].1 >= seq {
            return false;
        }
        self.ranges.insert(pos, (seq, seq));
        // Coalesce with neighbours.
        if pos + 1 < self.ranges.len() && self.ranges[pos + 1].0 == seq + 1 {
            self.ranges[pos].1 = self.ranges[pos + 1].1;
            self.ranges.remove(pos + 1);
        }
        if pos > 0 && self.ranges[pos - 1].1 + 1 == seq {
            self.ranges[pos - 1].1 = self.ranges[pos].1;
            self.ranges.remove(pos);
        }
        true
    }

    /// The lowest seq seen.
    pub fn first(&self) -> Option<u64> {
        self.ranges.first().map(|r| r.0)
    }

    /// The highest seq seen.
    pub fn last(&self) -> Option<u64> {
        self.ranges.last().map(|r| r.1)
    }

    /// How many seqs in `lo..=hi` are present.
    pub fn count_in(&self, lo: u64, hi: u64) -> u64 {
        self.ranges
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (a.max(lo), b.min(hi));
                if a <= b {
                    b - a + 1
                } else {
                    0
                }
            })
            .sum()
    }
}

/// The seqs one receiver saw in one room, per incarnation (0: the server sends none),
/// oldest first: one or two entries.
type ByIncarnation = Vec<(u64, SeqSet)>;

fn of_incarnation(sets: Option<&ByIncarnation>, incarnation: u64) -> Option<&SeqSet> {
    sets?
        .iter()
        .find(|(i, _)| *i == incarnation)
        .map(|(_, s)| s)
}

#[derive(Debug, Default)]
struct Stripe {
    /// (receiver slot << 32 | room slot) -> seqs seen, per incarnation.
    seqs: HashMap<u64, ByIncarnation>,
    latency: Hist,
    delivered: u64,
    duplicated: u64,
    /// Messages that were not load-test bodies (another tool's traffic), not measured.
    foreign: u64,
    /// unix second -> deliveries.
    delivered_by_sec: BTreeMap<u64, u64>,
    /// unix second -> latency, until the driver takes it (once a second).
    latency_by_sec: BTreeMap<u64, SecHist>,
}

/// What the receivers measured, summed over stripes.
#[derive(Debug, Default)]
pub struct Received {
    /// Latency.
    pub latency: Hist,
    /// Delivered.
    pub delivered: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Foreign.
    pub foreign: u64,
    /// Delivered by sec.
    pub delivered_by_sec: BTreeMap<u64, u64>,
    /// unix second -> latency (what the driver had not taken yet).
    pub latency_by_sec: Vec<(u64, Histogram<u64>)>,
}

/// Shared by every account of the run.
pub struct Receivers {
    accounts: HashMap<String, u32>,
    rooms: HashMap<String, u32>,
    stripes: Vec<Mutex<Stripe>>,
}

fn lock(m: &Mutex<Stripe>) -> MutexGuard<'_, Stripe> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Receivers {
    /// `accounts` and `rooms`: id -> slot, for every account and room of this shard.
    pub fn new(accounts: HashMap<String, u32>, rooms: HashMap<String, u32>) -> Self {
        Receivers {
            accounts,
            rooms,
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
        }
    }

    /// The slot of an account of this shard.
    pub fn account_slot(&self, user_id: &str) -> Option<u32> {
        self.accounts.get(user_id).copied()
    }

    /// The slot of a room of this shard.
    pub fn room_slot(&self, room_id: &str) -> Option<u32> {
        self.rooms.get(room_id).copied()
    }

    /// Records one received message at `now_us`.
    pub fn receive(&self, receiver: &str, message: &ChatMessage, now_us: u64) {
        let Some(account) = self.account_slot(receiver) else {
            return;
        };
        let mut stripe = lock(&self.stripes[account as usize % STRIPES]);
        let Some(sent_us) = body_sent_us(&message.body) else {
            stripe.foreign += 1;
            return;
        };
        if let (ConvType::Room, Some(seq), Some(room)) = (
            message.conv_type,
            message.seq,
            self.room_slot(&message.conv_id),
        ) {
            let key = (u64::from(account) << 32) | u64::from(room);
            let incarnation = message.incarnation.unwrap_or(0);
            let sets = stripe.seqs.entry(key).or_default();
            let set = match sets.iter().position(|(i, _)| *i == incarnation) {
                Some(at) => &mut sets[at].1,
                None => {
                    sets.push((incarnation, SeqSet::default()));
                    sets.sort_by_key(|(i, _)| *i);
                    let at = sets.iter().position(|(i, _)| *i == incarnation);
                    &mut sets[at.expect("just pushed")].1
                }
            };
            if !set.insert(seq) {
                stripe.duplicated += 1;
                return;
            }
        }
        stripe.delivered += 1;
        let latency = now_us.saturating_sub(sent_us);
        stripe.latency.record_us(latency);
        stripe
            .latency_by_sec
            .entry(now_us / 1_000_000)
            .or_default()
            .0
            .record_us(latency);
        *stripe
            .delivered_by_sec
            .entry(now_us / 1_000_000)
            .or_default() += 1;
    }

    /// Deliveries so far (for progress and drain).
    pub fn delivered(&self) -> u64 {
        self.stripes.iter().map(|s| lock(s).delivered).sum()
    }

    /// p99 of end-to-end latency so far, microseconds.
    pub fn latency_p99_us(&self) -> u64 {
        let mut h = Hist::default();
        for s in &self.stripes {
            h.merge(&lock(s).latency.0);
        }
        h.quantile_us(0.99)
    }

    /// Deliveries by unix second so far.
    pub fn delivered_by_sec(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for s in &self.stripes {
            for (sec, n) in &lock(s).delivered_by_sec {
                *out.entry(*sec).or_default() += n;
            }
        }
        out
    }

    /// Takes the latency histograms of the seconds before `sec` (the driver's once-a-second
    /// flush keeps the stripes small).
    pub fn take_latency_before(&self, sec: u64) -> Vec<(u64, Histogram<u64>)> {
        let mut out = Vec::new();
        for s in &self.stripes {
            let mut s = lock(s);
            let keep = s.latency_by_sec.split_off(&sec);
            let done = std::mem::replace(&mut s.latency_by_sec, keep);
            out.extend(done.into_iter().map(|(k, h)| (k, h.0 .0)));
        }
        out
    }

    /// Sums the stripes.
    pub fn collect(&self) -> Received {
        let mut out = Received {
            latency_by_sec: self.take_latency_before(u64::MAX),
            ..Received::default()
        };
        for s in &self.stripes {
            let s = lock(s);
            out.latency.merge(&s.latency.0);
            out.delivered += s.delivered;
            out.duplicated += s.duplicated;
            out.foreign += s.foreign;
            for (sec, n) in &s.delivered_by_sec {
                *out.delivered_by_sec.entry(*sec).or_default() += n;
            }
        }
        out
    }

    /// The lowest and highest seq any receiver of this shard saw, per (room slot,
    /// incarnation).
    fn seen_bounds(&self) -> HashMap<(u32, u64), (u64, u64)> {
        let mut bounds: HashMap<(u32, u64), (u64, u64)> = HashMap::new();
        for s in &self.stripes {
            for (key, sets) in &lock(s).seqs {
                let room = (*key & 0xffff_ffff) as u32;
                for (incarnation, set) in sets {
                    if let (Some(lo), Some(hi)) = (set.first(), set.last()) {
                        let b = bounds.entry((room, *incarnation)).or_insert((lo, hi));
                        b.0 = b.0.min(lo);
                        b.1 = b.1.max(hi);
                    }
                }
            }
        }
        bounds
    }

    /// Seqs each member should have seen and did not, per (room, incarnation). `members`:
    /// every membership in this shard; `sent`: room slot -> incarnation -> (lowest, highest)
    /// seq this shard's own sends got. In each incarnation a member's window runs from the
    /// earlier of its first seq and the room's first own send (from its own first seq in
    /// the incarnation it joined after sending began; an earlier one does not count), to the
    /// highest seq seen there by anyone here (its own last seq for one that left).
    ///
    /// Of an incarnation that ended (the room has a later one), the seqs past the last one a
    /// member received are [`Missing::lost_with_backend`]: the backend that numbered them
    /// died (or destroyed the room) before it delivered them, and no catch-up can fetch
    /// them from a room that is gone. A hole below that last seq is the client's and counts
    /// as missing, like everything missing in a room's last incarnation.
    pub fn missing(&self, members: &[Membership], sent: &Sent) -> Missing {
        let seen = self.seen_bounds();
        let mut incarnations: HashMap<u32, Vec<u64>> = HashMap::new();
        let rooms = sent
            .iter()
            .flat_map(|(room, by)| by.keys().map(move |i| (*room, *i)))
            .chain(seen.keys().copied());
        for (room, incarnation) in rooms {
            incarnations.entry(room).or_default().push(incarnation);
        }
        for list in incarnations.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        let mut out = Missing::default();
        for m in members {
            let key = (u64::from(m.account) << 32) | u64::from(m.room);
            let stripe = lock(&self.stripes[m.account as usize % STRIPES]);
            let sets = stripe.seqs.get(&key);
            let list = incarnations.get(&m.room).map(Vec::as_slice).unwrap_or(&[]);
            for (n, &incarnation) in list.iter().enumerate() {
                let joined_after = match m.joined_after {
                    Some((at, _)) if incarnation < at => continue,
                    Some((at, seq)) if incarnation == at => Some(seq),
                    _ => None,
                };
                let window = Window {
                    own: sent
                        .get(&m.room)
                        .and_then(|by| by.get(&incarnation))
                        .copied(),
                    any: seen.get(&(m.room, incarnation)).copied(),
                    set: of_incarnation(sets, incarnation),
                    left: m.left,
                    joined_after,
                };
                let (missing, tail) = window.missing();
                if n + 1 < list.len() {
                    out.messages += missing - tail;
                    out.lost_with_backend += tail;
                } else {
                    out.messages += missing;
                }
            }
        }
        out
    }
}

/// Room slot -> incarnation (0: the server sends none) -> (lowest, highest) seq of this
/// shard's own sends.
pub type Sent = HashMap<u32, BTreeMap<u64, (u64, u64)>>;

/// What [`Receivers::missing`] counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    /// Seqs a member should have seen and did not: the client's losses.
    pub messages: u64,
    /// Seqs of an incarnation that ended, past the last one a member received there: lost
    /// with the backend (see [`Receivers::missing`]).
    pub lost_with_backend: u64,
}

/// One member's view of one incarnation of one room.
struct Window<'a> {
    own: Option<(u64, u64)>,
    any: Option<(u64, u64)>,
    set: Option<&'a SeqSet>,
    left: bool,
    joined_after: Option<u64>,
}

impl Window<'_> {
    /// (missing, of which past the member's last seq).
    fn missing(&self) -> (u64, u64) {
        let (own, any, set) = (self.own, self.any, self.set);
        let hi = match (own, any) {
            (Some(a), Some(b)) => a.1.max(b.1),
            (Some(a), None) => a.1,
            (None, Some(b)) => b.1,
            (None, None) => return (0, 0),
        };
        let first = set.and_then(SeqSet::first);
        let lo = match (first, own, self.joined_after) {
            (Some(f), _, Some(_)) => f,
            (None, _, Some(after)) => after + 1,
            (Some(f), Some(o), None) => f.min(o.0),
            (Some(f), None, None) => f,
            (None, Some(o), None) => o.0,
            // Saw nothing in a room where only other shards sent: count from the lowest
            // seq anyone here saw.
            (None, None, None) => any.map(|b| b.0).unwrap_or(hi + 1),
        };
        let last = set.and_then(SeqSet::last);
        let hi = match (self.left, last) {
            (true, Some(own)) => own,
            (true, None) => return (0, 0),
            (false, _) => hi,
        };
        if lo > hi {
            return (0, 0);
        }
        let have = set.map(|s| s.count_in(lo, hi)).unwrap_or(0);
        let tail_from = last.map_or(lo, |l| (l + 1).max(lo));
        let tail = if tail_from > hi {
            0
        } else {
            hi - tail_from + 1
        };
        ((hi - lo + 1) - have, tail)
    }
}

/// One account's membership of one room, as the missing count sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// Account.
    pub account: u32,
    /// Room.
    pub room: u32,
    /// Logged out by a ramp down: its window ends at its own last seq.
    pub left: bool,
    /// Joined after sending began: the room's incarnation then and the highest seq this
    /// shard's sends had got in it (its window starts at its own first seq there). None:
    /// there from the start.
    pub joined_after: Option<(u64, u64)>,
}

/// The bot every load account runs.
pub struct LoadBot {
    /// Receivers.
    pub receivers: Arc<Receivers>,
}

impl Bot for LoadBot {
    fn on_message(&self, account: &AccountHandle, message: &ChatMessage) {
        self.receivers.receive(account.user_id(), message, now_us());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MessageType;

    #[test]
    fn seq_set_finds_duplicates_in_and_out_of_order() {
        let mut s = SeqSet::default();
        for seq in [1, 2, 3, 7, 5, 6, 4] {
            assert!(s.insert(seq), "{seq}");
        }
        assert_eq!(s.ranges, vec![(1, 7)]);
        assert!(!s.insert(4));
        assert!(!s.insert(1));
        assert!(s.insert(10));
        assert!(s.insert(9));
        assert_eq!(s.ranges, vec![(1, 7), (9, 10)]);
        assert_eq!(s.count_in(5, 9), 4);
        assert_eq!((s.first(), s.last()), (Some(1), Some(10)));
    }

    #[test]
    fn body_has_its_size_and_send_time() {
        let b = make_body(64, 1_764_100_000_123_456, 42);
        assert_eq!(b.len(), 64);
        assert_eq!(body_sent_us(&b), Some(1_764_100_000_123_456));
        assert_eq!(body_sent_us("hello"), None);
    }

    fn msg(room: &str, seq: u64, body: String) -> ChatMessage {
        ChatMessage {
            message_id: seq,
            conv_type: ConvType::Room,
            conv_id: room.into(),
            from: "a".into(),
            msg_type: MessageType::Text,
            body,
            seq: Some(seq),
            timestamp_ms: 0,
            client_msg_id: seq.to_string(),
            incarnation: None,
        }
    }

    #[test]
    fn counts_delivered_duplicated_and_missing() {
        let accounts = HashMap::from([("a".to_string(), 0), ("b".to_string(), 1)]);
        let rooms = HashMap::from([("r".to_string(), 0)]);
        let rx = Receivers::new(accounts, rooms);
        let t0 = 1_000_000_000;
        for seq in [1, 2, 3, 4] {
            rx.receive("a", &msg("r", seq, make_body(40, t0, seq)), t0 + 2_000);
        }
        for seq in [1, 3, 3] {
            rx.receive("b", &msg("r", seq, make_body(40, t0, seq)), t0 + 4_000);
        }
        rx.receive("b", &msg("r", 9, "not ours".into()), t0);
        let got = rx.collect();
        assert_eq!((got.delivered, got.duplicated, got.foreign), (6, 1, 1));
        assert_eq!(got.latency.count(), 6);
        assert!(got.latency.0.equivalent(got.latency.0.max(), 4_000));
        // The room's own sends got seqs 1..=5: a misses 5, b misses 2, 4, 5.
        let sent = Sent::from([(0, BTreeMap::from([(0, (1, 5))]))]);
        let m = |account, left, joined_after: Option<u64>| Membership {
            account,
            room: 0,
            left,
            joined_after: joined_after.map(|seq| (0, seq)),
        };
        let missing = |rx: &Receivers, members: &[Membership]| rx.missing(members, &sent).messages;
        assert_eq!(missing(&rx, &[m(0, false, None), m(1, false, None)]), 4);
        // b left after seq 3: only its gap at 2 counts.
        assert_eq!(missing(&rx, &[m(0, false, None), m(1, true, None)]), 2);
        // b joined late (after seq 2 had gone): from its first seq (1 here) on.
        assert_eq!(missing(&rx, &[m(1, false, Some(2))]), 3);
        let silent = Receivers::new(HashMap::from([("c".to_string(), 0)]), HashMap::new());
        assert_eq!(missing(&silent, &[m(0, false, Some(3))]), 2);
    }

    fn of(incarnation: u64, seq: u64) -> ChatMessage {
        ChatMessage {
            incarnation: Some(incarnation),
            ..msg("r", seq, make_body(40, 1_000_000_000, seq))
        }
    }

    fn two_members() -> Receivers {
        let accounts = HashMap::from([("a".to_string(), 0), ("b".to_string(), 1)]);
        Receivers::new(accounts, HashMap::from([("r".to_string(), 0)]))
    }

    fn member(account: u32) -> Membership {
        Membership {
            account,
            room: 0,
            left: false,
            joined_after: None,
        }
    }

    #[test]
    fn a_room_created_again_numbers_from_one_without_duplicates() {
        let rx = two_members();
        for (incarnation, seqs) in [(7, 1..=5), (9, 1..=3)] {
            for seq in seqs {
                rx.receive("a", &of(incarnation, seq), 1_000_000_100);
            }
        }
        rx.receive("a", &of(9, 3), 1_000_000_100);
        let got = rx.collect();
        assert_eq!((got.delivered, got.duplicated), (8, 1));
        let sent = Sent::from([(0, BTreeMap::from([(7, (1, 5)), (9, (1, 3))]))]);
        assert_eq!(rx.missing(&[member(0)], &sent), Missing::default());
    }

    #[test]
    fn what_a_dead_incarnation_never_delivered_is_lost_with_the_backend_holes_are_not() {
        let rx = two_members();
        // Incarnation 7 acknowledged seqs 1..=10 and died: a got 1..=8, b got 1..=6 but
        // not 3. Incarnation 9 (the restarted server) sent 1..=4: a got them all, b not 4.
        for seq in 1..=8 {
            rx.receive("a", &of(7, seq), 1_000_000_100);
        }
        for seq in [1, 2, 4, 5, 6] {
            rx.receive("b", &of(7, seq), 1_000_000_100);
        }
        for seq in 1..=4 {
            rx.receive("a", &of(9, seq), 1_000_000_100);
        }
        for seq in 1..=3 {
            rx.receive("b", &of(9, seq), 1_000_000_100);
        }
        let sent = Sent::from([(0, BTreeMap::from([(7, (1, 10)), (9, (1, 4))]))]);
        let got = rx.missing(&[member(0), member(1)], &sent);
        // lost with the backend: a's 9, 10 and b's 7..=10; missing: b's 3 (a hole) and its
        // 4 of the live incarnation
        assert_eq!(
            got,
            Missing {
                messages: 2,
                lost_with_backend: 6,
            }
        );
        // Without the later incarnation the same tail is an ordinary loss.
        let one = Sent::from([(0, BTreeMap::from([(7, (1, 10))]))]);
        let rx7 = two_members();
        for seq in 1..=8 {
            rx7.receive("a", &of(7, seq), 1_000_000_100);
        }
        assert_eq!(rx7.missing(&[member(0)], &one).messages, 2);
    }

    #[test]
    fn a_late_joiner_counts_from_the_incarnation_it_joined() {
        let rx = two_members();
        for seq in 3..=5 {
            rx.receive("b", &of(9, seq), 1_000_000_100);
        }
        let sent = Sent::from([(0, BTreeMap::from([(7, (1, 10)), (9, (1, 5))]))]);
        let late = Membership {
            joined_after: Some((9, 2)),
            ..member(1)
        };
        assert_eq!(rx.missing(&[late], &sent), Missing::default());
    }
}
