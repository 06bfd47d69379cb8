//! Room messages to the bot: once each, in seq order, catching up on history after a gap or
//! a recovery, starting over when the room is another incarnation. The rules are
//! src/session/feed.rs; this carries them out.

use actix::prelude::*;

use super::Room;
use crate::client::EventKind;
use crate::protocol::{ChatMessage, RoomHistoryReply};
use crate::session::Live;

impl Room {
    /// A live room message.
    pub(super) fn on_live(&mut self, message: ChatMessage, ctx: &mut Context<Self>) {
        if let Some(newer) = self.feed.newer(&message) {
            self.observe_incarnation(Some(newer), ctx);
        }
        match self.feed.live(message, self.machine.is_connected()) {
            Live::Deliver(message) => self.deliver(&message),
            Live::Dropped | Live::Held => {}
            Live::CatchUp { after_seq } => self.request_history(after_seq),
        }
    }

    /// The room's incarnation as an answer or a message gives it. Another one than the feed
    /// knew: the old room's held messages go to the bot, then the bot hears of the change
    /// (`on_room_incarnation_changed`, event `room_incarnation_changed`); a Connected room
    /// catches up on the new one at once, any other when it is Connected.
    pub(super) fn observe_incarnation(
        &mut self,
        incarnation: Option<u64>,
        _ctx: &mut Context<Self>,
    ) {
        let Some(switch) = self.feed.observe(incarnation) else {
            return;
        };
        for message in &switch.deliver {
            self.deliver(message);
        }
        let id = self.id.clone();
        let (old, new) = (switch.old, switch.new);
        self.with_bot(|bot, h| bot.on_room_incarnation_changed(h, &id, old, new));
        self.shared.publish(
            self.account.user_id(),
            EventKind::RoomIncarnationChanged {
                room_id: id.to_string(),
                old,
                new,
            },
        );
        if self.machine.is_connected() {
            let after = self.feed.start_catch_up();
            self.request_history(after);
        }
    }

    fn deliver(&self, message: &ChatMessage) {
        self.shared.metrics.messages_received.inc();
        self.with_bot(|bot, h| bot.on_message(h, message));
    }

    /// The room is Connected without a catch-up: what was held goes now, in order.
    pub(super) fn release_held(&mut self, ctx: &mut Context<Self>) {
        for message in self.feed.release() {
            self.on_live(message, ctx);
        }
    }

    /// A history page (`None`: the fetch failed).
    pub(super) fn on_page(&mut self, page: Option<RoomHistoryReply>, ctx: &mut Context<Self>) {
        let page = self.feed.page(page);
        for message in &page.deliver {
            self.deliver(message);
        }
        if let Some(after) = page.next_after {
            self.request_history(after);
            return;
        }
        for message in page.release {
            self.on_live(message, ctx);
        }
    }
}
