//! The account's one timer: armed for the earliest of its duties (src/session/deadlines.rs:
//! heartbeats, room heartbeats, the token's warning and end, request deadlines); each time it
//! fires it carries out the duties that are due and is armed again. See docs/design.md, "What
//! an account costs", for why one timer instead of one per duty.

use std::time::Instant;

use actix::prelude::*;

use super::Account;
use crate::session::deadlines::needs_rearm;
use crate::session::Duty;

impl Account {
    /// Arms the timer for the earliest duty, unless it is armed for that time or earlier.
    pub(super) fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let next = self.deadlines.next();
        if !needs_rearm(self.timer.as_ref().map(|(_, at)| *at), next) {
            return;
        }
        let Some(at) = next else { return };
        if let Some((handle, _)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let wait = at.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(wait, |act, ctx| act.timer_fired(ctx));
        self.timer = Some((handle, at));
    }

    fn timer_fired(&mut self, ctx: &mut Context<Self>) {
        self.timer = None;
        let now = Instant::now();
        for duty in self.deadlines.take_due(now) {
            match duty {
                Duty::Requests => self.expire_requests(now, ctx),
                // Both repeat for as long as the link (a duty taken in this tick may have
                // closed it: then they stop with it).
                Duty::Heartbeat if self.link.is_some() => {
                    self.deadlines
                        .set(Duty::Heartbeat, now + self.heartbeat_every());
                    self.send_heartbeat(ctx);
                }
                Duty::RoomHeartbeat if self.link.is_some() => {
                    self.deadlines
                        .set(Duty::RoomHeartbeat, now + self.room_heartbeat_every());
                    self.rooms_heartbeat_due();
                }
                Duty::Heartbeat | Duty::RoomHeartbeat => {}
                Duty::TokenWarn => self.token_warn_due(ctx),
                Duty::TokenEnd => self.token_end_due(ctx),
            }
        }
        self.arm_timer(ctx);
    }
}
