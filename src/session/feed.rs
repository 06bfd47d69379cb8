//! The message feed of one room: every room message reaches the bot once and in seq order
//! (docs/zim-semantics.md, "Room messages"). Pure code: the room actor hands it what arrives
//! (live pushes, history pages) and carries out what it answers (deliver, fetch a page).
//!
//! - Seqs are per room and start at 1; a message whose seq is at or below the last one
//!   delivered was seen already and is dropped.
//! - While the room is not in session, or while a catch-up runs, live messages are held
//!   (at most [`HELD_MAX`]); they are released in seq order when the catch-up ends.
//! - A gap (seq above last + 1) holds the message and starts a catch-up: `room_history`
//!   after the last seq, page by page until a page says it is complete.
//! - Until something was delivered, history older than the baseline (the moment the room was
//!   entered, in server time) predates our membership and is skipped.
//! - A new incarnation of the room (created again, or destroyed and entered again) starts
//!   the seqs over: [`Feed::reset`].

use crate::protocol::{ChatMessage, RoomHistoryReply};

/// Most live messages held while a room catches up or waits to be back in session.
pub const HELD_MAX: usize = 512;

/// What to do with a live message.
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    /// Deliver it now (it is the next one, or it has no seq).
    Deliver(ChatMessage),
    /// Seen already (or the held buffer is full): nothing to do.
    Dropped,
    /// Kept back; it is delivered when the room is in session and caught up.
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

/// One room's seq bookkeeping, held buffer and catch-up state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    last_seq: u64,
    baseline_ms: u64,
    catching_up: bool,
    /// Something was delivered since the baseline was set.
    delivered: bool,
    held: Vec<ChatMessage>,
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

    /// A new incarnation of the room: seqs start over, held messages are dropped.
    pub fn reset(&mut self, baseline_ms: u64) {
        *self = Self::new(baseline_ms);
    }

    /// The catch-up request was lost (the link went down, the room restarts): no page will
    /// come; held messages stay held until the room is back.
    pub fn catch_up_lost(&mut self) {
        self.catching_up = false;
    }

    /// A live room message; `in_session`: the room is connected.
    pub fn live(&mut self, message: ChatMessage, in_session: bool) -> Live {
        let Some(seq) = message.seq else {
            return Live::Deliver(message);
        };
        if seq <= self.last_seq {
            return Live::Dropped;
        }
        if self.catching_up || !in_session {
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
        self.last_seq
    }

    /// The room is in session without a catch-up: held messages go through
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
        let more = !page.complete && !page.messages.is_empty();
        let mut deliver = Vec::new();
        for message in page.messages {
            let seq = message.seq.unwrap_or(0);
            if seq <= self.last_seq {
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
}
