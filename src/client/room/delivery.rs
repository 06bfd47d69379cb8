//! Room messages to the bot: once each, in seq order, catching up on history after a gap or
//! a recovery. The rules are src/session/feed.rs; this carries them out.

use actix::prelude::*;

use super::Room;
use crate::protocol::{ChatMessage, RoomHistoryReply};
use crate::session::Live;

impl Room {
    /// A live room message.
    pub(super) fn on_live(&mut self, message: ChatMessage, _ctx: &mut Context<Self>) {
        match self.feed.live(message, self.machine.is_connected()) {
            Live::Deliver(message) => self.deliver(&message),
            Live::Dropped | Live::Held => {}
            Live::CatchUp { after_seq } => self.request_history(after_seq),
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
