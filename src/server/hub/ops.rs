//! Scheduled room jobs and the admin operations of the hub: faults, kickouts, stats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::link::{CloseCmd, SessionLink};
use super::faults::FaultTarget;
use super::state::{lock_room, Job, LeaveCause};
use super::stats::bump;
use super::stats::{FaultStats, Stats};
use super::Hub;
use crate::protocol::{close_code, KickoutReason};

impl Hub {
    // -- scheduled work ----------------------------------------------------------------------

    pub(crate) fn run_job(&self, job: Job) {
        match job {
            Job::MembershipCheck {
                room,
                user,
                membership,
            } => {
                let Some(cell) = room.upgrade() else { return };
                let timeout = self.settings.timing.room_session_timeout();
                let deadline = {
                    let room = lock_room(&cell);
                    match room.members.get(&user) {
                        Some(m) if m.membership == membership && !room.destroyed => {
                            m.last_heartbeat + timeout
                        }
                        _ => return,
                    }
                };
                if deadline > Instant::now() {
                    self.scheduler.schedule(
                        deadline,
                        Job::MembershipCheck {
                            room: Arc::downgrade(&cell),
                            user,
                            membership,
                        },
                    );
                } else if self.end_membership(&cell, &user, LeaveCause::Expired, Some(membership)) {
                    bump(&self.counters.room_sessions_expired);
                }
            }
            Job::DestroyIfEmpty { room, generation } => {
                let Some(cell) = room.upgrade() else { return };
                let mut room = lock_room(&cell);
                if room.destroyed || !room.members.is_empty() || room.empty_generation != generation
                {
                    return;
                }
                room.destroyed = true;
                let room_id = Arc::clone(&room.id);
                drop(room);
                bump(&self.counters.rooms_destroyed);
                self.rooms
                    .remove_if(&*room_id, |_, c| Arc::ptr_eq(c, &cell));
            }
        }
    }

    // -- admin -------------------------------------------------------------------------------

    /// The user's session links (none if unknown or offline).
    pub(super) fn links_of(&self, user_id: &str) -> Vec<Arc<SessionLink>> {
        self.users
            .get(user_id)
            .map(|u| u.sessions.iter().map(|c| Arc::clone(&c.link)).collect())
            .unwrap_or_default()
    }

    pub(super) fn current_links(&self, target: &FaultTarget) -> Vec<Arc<SessionLink>> {
        match target {
            FaultTarget::All => self
                .connections
                .iter()
                .map(|e| Arc::clone(e.value()))
                .collect(),
            FaultTarget::Users(ids) => ids.iter().flat_map(|id| self.links_of(id)).collect(),
        }
    }

    /// Ends the target's connections without a close frame; returns how many.
    pub fn drop_connections(&self, target: &FaultTarget) -> usize {
        self.current_links(target)
            .into_iter()
            .filter(|link| link.close(CloseCmd::Drop))
            .count()
    }

    /// Blackholes the target for `duration`; returns how many of the named users are known
    /// (for `All`, the open connections).
    pub fn blackhole(&self, target: &FaultTarget, duration: Duration) -> usize {
        let until = Instant::now() + duration;
        let count = match target {
            FaultTarget::All => self.connections.len(),
            FaultTarget::Users(ids) => ids
                .iter()
                .filter(|id| self.users.contains_key(id.as_str()))
                .count(),
        };
        let mut b = self.faults.lock();
        match target {
            FaultTarget::All => b.all_until = Some(until),
            FaultTarget::Users(ids) => {
                for id in ids {
                    b.users.insert(Arc::from(id.as_str()), until);
                }
            }
        }
        self.faults.any.store(true, Ordering::Relaxed);
        count
    }

    /// kickout push with `reason` (4 or 6) and close 4004/4006. Reason 6 (unregistered) also
    /// forgets the user: its memberships end and its stored messages go. False if unknown.
    pub fn kickout(&self, user_id: &str, reason: KickoutReason) -> bool {
        let key: Arc<str> = Arc::from(user_id);
        if !self.users.contains_key(user_id) {
            return false;
        }
        let links = self.links_of(user_id);
        let code = match reason {
            KickoutReason::Unregistered => close_code::UNREGISTERED,
            KickoutReason::TokenExpired => close_code::TOKEN_EXPIRED,
            _ => close_code::KICKED_OUT,
        };
        for link in links {
            bump(&self.counters.kickouts);
            link.close(CloseCmd::Kickout {
                reason,
                code,
                ext: serde_json::json!({"reason": "by the server administrator"}),
            });
        }
        if reason == KickoutReason::Unregistered {
            self.end_all_memberships(&key, LeaveCause::Unregistered);
            self.users.remove(user_id);
        }
        true
    }

    /// As if the user's token expired now: kickout reason 5, close 4005. False if not online.
    pub fn expire_token(&self, user_id: &str) -> bool {
        let links = self.links_of(user_id);
        for link in &links {
            bump(&self.counters.kickouts);
            link.close(CloseCmd::Kickout {
                reason: KickoutReason::TokenExpired,
                code: close_code::TOKEN_EXPIRED,
                ext: serde_json::json!({"reason": "token expired"}),
            });
        }
        !links.is_empty()
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let members = self
            .rooms
            .iter()
            .map(|r| Arc::clone(r.value()))
            .collect::<Vec<_>>()
            .iter()
            .map(|cell| lock_room(cell).members.len() as u64)
            .sum();
        let users_online = self.users.iter().filter(|u| !u.sessions.is_empty()).count() as u64;
        let faults_active = {
            let _ = self.faults.is_blackholed(None);
            let b = self.faults.lock();
            FaultStats {
                blackhole_all: b.all_until.is_some_and(|t| t > Instant::now()),
                blackholed_users: b.users.len() as u64,
            }
        };
        Stats {
            sessions: self.connections.len() as u64,
            users_online,
            users_known: self.users.len() as u64,
            rooms: self.rooms.len() as u64,
            members,
            messages_routed: get(&c.messages_routed),
            pushes_queued: get(&c.pushes_queued),
            outbound_overflows: get(&c.outbound_overflows),
            connections_total: get(&c.connections_total),
            logins_ok: get(&c.logins_ok),
            logins_refused: get(&c.logins_refused),
            offline_stored: get(&c.offline_stored),
            offline_dropped: get(&c.offline_dropped),
            kickouts: get(&c.kickouts),
            heartbeat_timeouts: get(&c.heartbeat_timeouts),
            bad_frames: get(&c.bad_frames),
            room_sessions_expired: get(&c.room_sessions_expired),
            rooms_destroyed: get(&c.rooms_destroyed),
            faults_active,
            scheduled_timers: self.scheduler.len() as u64,
        }
    }
}
