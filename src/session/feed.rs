//! The message feed of one room: every room message reaches the bot once and in seq order
//! (docs/zim-semantics.md section 7). Pure code: the room actor hands it what arrives
//! (live pushes, history pages) and carries out what it answers (deliver, fetch a page).
//!
//! - Seqs are per room and start at 1; a message whose seq is at or below the last one
//!   delivered was seen already and is dropped.
//! - While the room is not Connected, or while a catch-up runs, live messages are held
//!   (at most [`HELD_MAX`](crate::session::feed::HELD_MAX)); they are released in seq order when the catch-up ends.
//! - A gap (seq above last + 1) holds the message and starts a catch-up: `room_history`
//!   after the last seq, page by page until a page says it is complete.
//! - Until something was delivered, history older than the baseline (the moment the room was
//!   entered, in server time) predates our membership and is skipped.
//! - Seqs belong to one incarnation of the room (docs/protocol.md, "Room incarnation"). The
//!   first incarnation a create/join/enter or room_heartbeat answer gives is taken as is;
//!   another one ([`Feed::observe`], or a live message of a later one, [`Feed::newer`])
//!   starts the seqs over: what was held of the old room goes to the bot, there is no
//!   catch-up into it (it is gone), and the new one is caught up on from its first seq when
//!   the room is Connected ([`Feed::catch_up_due`]). Messages and history of another
//!   incarnation than the one known are dropped (they are from a room that is gone).
//! - With a server that sends no incarnation, a room created or found gone starts the seqs
//!   over at once: [`Feed::reset`].

use crate::protocol::{ChatMessage, RoomHistoryReply};

/// Most live messages held while a room catches up or waits to be Connected again.
pub const HELD_MAX: usize = 512;

/// What to do with a live message.
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    /// Deliver it now (it is the next one, or it has no seq).
    Deliver(ChatMessage),
    /// Seen already (or the held buffer is full): nothing to do.
    Dropped,
    /// Kept back; it is delivered when the room is Connected and caught up.
    Held,
    /// A gap: the message is held and a catch-up must fetch `room_history` after this seq.
    CatchUp {
        /// The `after_seq` of the first history page.
        after_seq: u64,
    },
}

/// What a history page (or its failure) asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// Messages to deliver now, in order.
    pub deliver: Vec<ChatMessage>,
    /// Fetch the next page after this seq; `None`: the catch-up is over.
    pub next_after: Option<u64>,
    /// The catch-up is over: these held messages go through [`Feed::live`] again, in
    /// seq order (they may still find a gap).
    pub release: Vec<ChatMessage>,
}

/// A room's incarnation changed: what the room tells the bot and delivers first.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// The incarnation the seqs belonged to.
    pub old: u64,
    /// The incarnation they belong to from now on.
    pub new: u64,
    /// Messages of the old incarnation that were held, in seq order: no catch-up can fetch
    /// what comes before them any more, so they go to the bot now.
    pub deliver: Vec<ChatMessage>,
}

/// One room's seq bookkeeping, held buffer and catch-up state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    last_seq: u64,
    baseline_ms: u64,
    catching_up: bool,
    /// Something was delivered since the baseline was set.
    delivered: bool,
    held: Vec<ChatMessage>,
    /// The incarnation the seqs belong to (`None`: not known yet, or the server sends none).
    incarnation: Option<u64>,
    /// A new incarnation was taken: catch up on it from its first seq once Connected.
    catch_up_due: bool,
}

impl Feed {
    /// A feed for a room entered at `baseline_ms` (server clock).
    pub fn new(baseline_ms: u64) -> Self {
        Self {
            baseline_ms,
            ..Self::default()
        }
    }

    /// Highest seq delivered (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Whether a catch-up is in flight.
    pub fn catching_up(&self) -> bool {
        self.catching_up
    }

    /// Messages held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The incarnation the seqs belong to, if known.
    pub fn incarnation(&self) -> Option<u64> {
        self.incarnation
    }

    /// Whether a new incarnation waits to be caught up on (from its first seq) once the
    /// room is Connected; [`Feed::start_catch_up`] clears it.
    pub fn catch_up_due(&self) -> bool {
        self.catch_up_due
    }

    /// The room was created, or found gone (the machine's `ResetSeq`). With a server that
    /// sends no incarnation the seqs start over now and held messages are dropped; with one
    /// that does, nothing happens here: the incarnation of the next answer decides.
    pub fn reset(&mut self, baseline_ms: u64) {
        if self.incarnation.is_none() {
            *self = Self::new(baseline_ms);
        }
    }

    /// The room's incarnation as a create/join/enter or room_heartbeat answer gives it
    /// (`None`: the server sends none). The first one is taken as is; another one starts the
    /// seqs over and answers the [`Switch`] to carry out.
    pub fn observe(&mut self, incarnation: Option<u64>) -> Option<Switch> {
        let new = incarnation?;
        match self.incarnation {
            None => {
                self.incarnation = Some(new);
                None
            }
            Some(old) if old == new => None,
            Some(old) => Some(self.switch(old, new)),
        }
    }

    /// The incarnation of a live message when it is later than the one known: the room is a
    /// new one (observe it before handing the message to [`Feed::live`]).
    pub fn newer(&self, message: &ChatMessage) -> Option<u64> {
        match (self.incarnation, message.incarnation) {
            (Some(known), Some(its)) if its > known => Some(its),
            _ => None,
        }
    }

    /// Whether a message is of another incarnation than the one known.
    fn stale(&self, message: &ChatMessage) -> bool {
        matches!(
            (self.incarnation, message.incarnation),
            (Some(known), Some(its)) if its != known
        )
    }

    /// Seqs start over in incarnation `new`: held messages of the old one are handed out in
    /// seq order (each once), those of the new one stay held, nothing is dropped as seen.
    /// Every message of the new incarnation postdates what we knew of the room, so none is
    /// skipped as older than the membership (baseline 0).
    fn switch(&mut self, old: u64, new: u64) -> Switch {
        let (keep, mut gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|m| m.incarnation == Some(new));
        gone.sort_by_key(|m| m.seq.unwrap_or(0));
        let mut last = self.last_seq;
        let deliver = gone
            .into_iter()
            .filter(|m| {
                let seq = m.seq.unwrap_or(0);
                let next = seq > last;
                last = last.max(seq);
                next
            })
            .collect();
        *self = Self {
            held: keep,
            incarnation: Some(new),
            catch_up_due: true,
            ..Self::new(0)
        };
        Switch { old, new, deliver }
    }

    /// The catch-up request was lost (the link went down, the room restarts): no page will
    /// come; held messages stay held until the room is back.
    pub fn catch_up_lost(&mut self) {
        self.catching_up = false;
    }

    /// A live room message; `connected`: the room is Connected.
    pub fn live(&mut self, message: ChatMessage, connected: bool) -> Live {
        let Some(seq) = message.seq else {
            return Live::Deliver(message);
        };
        if seq <= self.last_seq || self.stale(&message) {
            return Live::Dropped;
        }
        if self.catching_up || !connected {
            return if self.hold(message) {
                Live::Held
            } else {
                Live::Dropped
            };
        }
        if self.last_seq != 0 && seq > self.last_seq + 1 {
            self.held.push(message);
            return Live::CatchUp {
                after_seq: self.start_catch_up(),
            };
        }
        self.last_seq = seq;
        self.delivered = true;
        Live::Deliver(message)
    }

    /// Starts a catch-up (the room came back after a loss); answers the `after_seq` to ask.
    pub fn start_catch_up(&mut self) -> u64 {
        self.catching_up = true;
        self.catch_up_due = false;
        self.last_seq
    }

    /// The room is Connected without a catch-up: held messages go through
    /// [`Feed::live`] again, in seq order.
    pub fn release(&mut self) -> Vec<ChatMessage> {
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_key(|m| m.seq.unwrap_or(0));
        held
    }

    /// A history page arrived (`None`: the fetch failed or timed out; what was held is
    /// released in order and the next gap fetches again).
    pub fn page(&mut self, page: Option<RoomHistoryReply>) -> Page {
        let Some(page) = page else {
            self.catching_up = false;
            return Page {
                release: self.release(),
                ..Page::default()
            };
        };
        let all_stale = page.messages.iter().all(|m| self.stale(m));
        let more = !page.complete && !all_stale;
        let mut deliver = Vec::new();
        for message in page.messages {
            let seq = message.seq.unwrap_or(0);
            if seq <= self.last_seq || self.stale(&message) {
                continue;
            }
            let before_membership = !self.delivered && message.timestamp_ms < self.baseline_ms;
            self.last_seq = seq;
            if !before_membership {
                self.delivered = true;
                deliver.push(message);
            }
        }
        if more {
            return Page {
                deliver,
                next_after: Some(self.last_seq),
                release: Vec::new(),
            };
        }
        self.catching_up = false;
        Page {
            deliver,
            next_after: None,
            release: self.release(),
        }
    }

    fn hold(&mut self, message: ChatMessage) -> bool {
        if self.held.len() >= HELD_MAX {
            return false;
        }
        self.held.push(message);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConvType, MessageType};

    fn msg(seq: u64, ts: u64) -> ChatMessage {
        ChatMessage {
            message_id: seq,
            conv_type: ConvType::Room,
            conv_id: "r".into(),
            from: "u".into(),
            msg_type: MessageType::Text,
            body: format!("m{seq}"),
            seq: Some(seq),
            timestamp_ms: ts,
            client_msg_id: String::new(),
            incarnation: None,
        }
    }

    fn seqs(ms: &[ChatMessage]) -> Vec<u64> {
        ms.iter().map(|m| m.seq.unwrap_or(0)).collect()
    }

    fn page(seqs: &[u64], complete: bool) -> Option<RoomHistoryReply> {
        Some(RoomHistoryReply {
            messages: seqs.iter().map(|s| msg(*s, 2000)).collect(),
            complete,
        })
    }

    #[test]
    fn in_order_messages_are_delivered_and_repeats_dropped() {
        let mut f = Feed::new(1000);
        assert_eq!(f.live(msg(1, 2000), true), Live::Deliver(msg(1, 2000)));
        assert_eq!(f.live(msg(2, 2000), true), Live::Deliver(msg(2, 2000)));
        assert_eq!(f.live(msg(2, 2000), true), Live::Dropped);
        assert_eq!(f.live(msg(1, 2000), true), Live::Dropped);
        assert_eq!(f.last_seq(), 2);
    }

    #[test]
    fn the_first_message_seen_sets_the_start_whatever_its_seq() {
        let mut f = Feed::new(1000);
        assert!(matches!(f.live(msg(7, 2000), true), Live::Deliver(_)));
        assert_eq!(f.last_seq(), 7);
    }

    #[test]
    fn a_message_without_seq_goes_straight_through() {
        let mut f = Feed::new(0);
        let mut m = msg(1, 1);
        m.seq = None;
        assert_eq!(f.live(m.clone(), false), Live::Deliver(m));
        assert_eq!(f.last_seq(), 0);
    }

    #[test]
    fn a_gap_holds_the_message_and_asks_for_history_after_the_last_seq() {
        let mut f = Feed::new(0);
        f.live(msg(1, 1), true);
        assert_eq!(f.live(msg(4, 1), true), Live::CatchUp { after_seq: 1 });
        assert!(f.catching_up());
        // more live messages wait while the catch-up runs
        assert_eq!(f.live(msg(5, 1), true), Live::Held);
        let p = f.page(page(&[2, 3, 4], true));
        assert_eq!(seqs(&p.deliver), [2, 3, 4]);
        assert_eq!(p.next_after, None);
        // 4 came in the page already: released again, it is dropped as seen
        assert_eq!(seqs(&p.release), [4, 5]);
        assert_eq!(f.live(msg(4, 1), true), Live::Dropped);
        assert!(matches!(f.live(msg(5, 1), true), Live::Deliver(_)));
    }

    #[test]
    fn pages_continue_until_complete() {
        let mut f = Feed::new(0);
        f.live(msg(1, 1), true);
        assert_eq!(f.start_catch_up(), 1);
        let p = f.page(page(&[2, 3], false));
        assert_eq!((seqs(&p.deliver), p.next_after), (vec![2, 3], Some(3)));
        assert!(f.catching_up());
        let p = f.page(page(&[4], true));
        assert_eq!((seqs(&p.deliver), p.next_after), (vec![4], None));
        assert!(!f.catching_up());
    }

    #[test]
    fn an_empty_incomplete_page_ends_the_catch_up() {
        let mut f = Feed::new(0);
        f.start_catch_up();
        let p = f.page(page(&[], false));
        assert_eq!(p.next_after, None);
        assert!(!f.catching_up());
    }

    #[test]
    fn a_failed_page_releases_what_was_held_in_order() {
        let mut f = Feed::new(0);
        f.live(msg(1, 1), true);
        f.live(msg(5, 1), true);
        f.live(msg(3, 1), true);
        let p = f.page(None);
        assert!(p.deliver.is_empty());
        assert_eq!(seqs(&p.release), [3, 5]);
        assert!(!f.catching_up());
    }

    #[test]
    fn history_before_the_membership_is_skipped_until_something_was_delivered() {
        let mut f = Feed::new(1500);
        f.start_catch_up();
        let old_and_new = Some(RoomHistoryReply {
            messages: vec![msg(1, 1000), msg(2, 1400), msg(3, 1600)],
            complete: true,
        });
        let p = f.page(old_and_new);
        assert_eq!(seqs(&p.deliver), [3]);
        assert_eq!(f.last_seq(), 3);
    }

    #[test]
    fn out_of_session_messages_are_held_up_to_the_cap() {
        let mut f = Feed::new(0);
        for s in 1..=HELD_MAX as u64 {
            assert_eq!(f.live(msg(s, 1), false), Live::Held);
        }
        assert_eq!(f.live(msg(9999, 1), false), Live::Dropped);
        assert_eq!(f.held(), HELD_MAX);
        let released = f.release();
        assert_eq!(released.len(), HELD_MAX);
        assert_eq!(f.held(), 0);
    }

    #[test]
    fn a_lost_catch_up_keeps_the_held_messages() {
        let mut f = Feed::new(0);
        f.live(msg(1, 1), true);
        f.live(msg(3, 1), true);
        f.catch_up_lost();
        assert!(!f.catching_up());
        assert_eq!(f.held(), 1);
    }

    #[test]
    fn reset_starts_the_seqs_over_for_a_new_incarnation() {
        let mut f = Feed::new(0);
        f.live(msg(1, 1), true);
        f.live(msg(2, 1), true);
        f.live(msg(9, 1), false);
        f.reset(5000);
        assert_eq!((f.last_seq(), f.held(), f.catching_up()), (0, 0, false));
        assert!(matches!(f.live(msg(1, 6000), true), Live::Deliver(_)));
    }

    fn of(incarnation: u64, seq: u64) -> ChatMessage {
        ChatMessage {
            incarnation: Some(incarnation),
            ..msg(seq, 2000)
        }
    }

    fn page_of(incarnation: u64, seqs: &[u64], complete: bool) -> Option<RoomHistoryReply> {
        Some(RoomHistoryReply {
            messages: seqs.iter().map(|s| of(incarnation, *s)).collect(),
            complete,
        })
    }

    /// A feed of incarnation 7 that delivered seqs 1..=500.
    fn at_500() -> Feed {
        let mut f = Feed::new(0);
        assert_eq!(f.observe(Some(7)), None);
        for s in 1..=500 {
            assert!(matches!(f.live(of(7, s), true), Live::Deliver(_)));
        }
        f
    }

    #[test]
    fn the_first_incarnation_is_taken_as_is() {
        let mut f = Feed::new(0);
        assert_eq!(f.incarnation(), None);
        assert_eq!(f.observe(Some(7)), None);
        assert_eq!(f.observe(Some(7)), None);
        assert_eq!((f.incarnation(), f.catch_up_due()), (Some(7), false));
        // a server without incarnations changes nothing
        assert_eq!(f.observe(None), None);
        assert_eq!(f.incarnation(), Some(7));
    }

    #[test]
    fn a_new_incarnation_below_the_old_high_water_mark_is_delivered_not_dropped_as_seen() {
        // The old bug (issue 10): a room back through ConnectTimeout -> join on a restarted
        // server kept last seq 500, and the new room's seqs 1, 2, 3 ... were dropped as seen.
        let mut f = at_500();
        assert_eq!(
            f.live(of(7, 3), true),
            Live::Dropped,
            "a repeat of the old room"
        );
        let switch = f.observe(Some(9)).expect("another incarnation");
        assert_eq!((switch.old, switch.new, switch.deliver.len()), (7, 9, 0));
        assert_eq!((f.last_seq(), f.catch_up_due()), (0, true));
        // Connected again: the catch-up is of the new room, from its first seq
        assert_eq!(f.start_catch_up(), 0);
        assert!(!f.catch_up_due());
        let p = f.page(page_of(9, &[1, 2, 3], true));
        assert_eq!(seqs(&p.deliver), [1, 2, 3]);
        assert_eq!(f.live(of(9, 4), true), Live::Deliver(of(9, 4)));
        assert_eq!(f.last_seq(), 4);
    }

    #[test]
    fn a_live_message_of_a_later_incarnation_starts_it_and_an_earlier_one_is_dropped() {
        let mut f = at_500();
        assert_eq!(f.newer(&of(7, 501)), None);
        assert_eq!(f.newer(&msg(501, 1)), None, "no incarnation: the same room");
        assert_eq!(f.newer(&of(9, 1)), Some(9));
        assert!(f.observe(Some(9)).is_some());
        // held (not Connected), then a late push of the room that is gone
        assert_eq!(f.live(of(9, 1), false), Live::Held);
        assert_eq!(f.live(of(7, 501), true), Live::Dropped);
        assert_eq!(f.newer(&of(7, 501)), None, "earlier, not newer");
        assert_eq!(seqs(&f.release()), [1]);
    }

    #[test]
    fn a_switch_hands_out_the_old_rooms_held_messages_once_in_order() {
        let mut f = at_500();
        for m in [of(7, 503), of(7, 502), of(7, 502), of(7, 499)] {
            f.live(m, false);
        }
        assert_eq!(f.held(), 3, "499 was seen already");
        // not observed yet: a message of another incarnation is not held with them
        assert_eq!(f.live(of(9, 1), false), Live::Dropped);
        let switch = f.observe(Some(9)).unwrap();
        assert_eq!(seqs(&switch.deliver), [502, 503]);
        assert_eq!(f.held(), 0);
        assert_eq!(f.live(of(9, 1), false), Live::Held);
    }

    #[test]
    fn history_of_another_incarnation_is_skipped_and_ends_the_catch_up() {
        let mut f = at_500();
        f.observe(Some(9));
        f.start_catch_up();
        let p = f.page(page_of(7, &[501, 502], false));
        assert!(p.deliver.is_empty());
        assert_eq!(
            (p.next_after, f.catching_up(), f.last_seq()),
            (None, false, 0)
        );
    }

    #[test]
    fn reset_waits_for_the_incarnation_when_the_server_sends_one() {
        let mut f = at_500();
        f.live(of(7, 502), false);
        f.reset(9000);
        assert_eq!((f.last_seq(), f.held(), f.incarnation()), (500, 1, Some(7)));
        let switch = f.observe(Some(9)).unwrap();
        assert_eq!(seqs(&switch.deliver), [502]);
    }
}
