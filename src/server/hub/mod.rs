//! Shared server state: users, rooms, connections, faults and counters.
//!
//! No hub actor: every connection task calls these functions directly from its own worker
//! thread. State sits in sharded maps (dashmap) and one mutex per room, held briefly.
//!
//! Lock order (never the other way round, so no deadlock):
//! `rooms` shard -> one room's mutex -> `users` shard -> a session's outbox.
//! Nobody touches the `rooms` map while holding a room mutex, and nobody locks a room while
//! holding a `users` entry. A `Ref` from a map is dropped (after cloning the `Arc` out) before
//! the next lock in the order is taken, except where the order allows it.

mod faults;
mod frames;
mod incarnation;
mod messages;
mod ops;
mod rooms;
mod state;
mod stats;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytestring::ByteString;
use dashmap::DashMap;

pub use faults::FaultTarget;
pub(crate) use frames::push_bytes;
pub(crate) use state::{Job, RoomCell};
pub use stats::{FaultStats, Stats};

use super::link::{CloseCmd, PushOutcome, SessionLink};
use super::scheduler::Scheduler;
use super::settings::{DevicePolicy, ServerSettings};
use crate::protocol::{close_code, ErrorCode, KickoutReason, ZimError};
use faults::Faults;
use incarnation::Incarnations;
use state::{Current, LeaveCause, Room, User};
use stats::{bump, Counters};

fn err(code: ErrorCode, msg: &str) -> ZimError {
    ZimError::new(code, msg)
}

/// How a login ended for the session that made it.
pub(crate) struct Registered {
    /// Offline peer messages to push after the login reply, oldest first.
    pub offline: VecDeque<ByteString>,
}

pub(crate) struct Hub {
    pub settings: ServerSettings,
    users: DashMap<Arc<str>, User>,
    rooms: DashMap<Arc<str>, Arc<RoomCell>>,
    /// Every open connection, logged in or not (for drop-all and shutdown).
    connections: DashMap<u64, Arc<SessionLink>>,
    next_message_id: AtomicU64,
    next_session_id: AtomicU64,
    next_membership: AtomicU64,
    /// Room incarnations (never reused, across restarts too).
    incarnations: Incarnations,
    pub counters: Counters,
    faults: Faults,
    pub(crate) scheduler: Scheduler<Job>,
}

impl Hub {
    pub fn new(settings: ServerSettings) -> Self {
        Self {
            settings,
            users: DashMap::new(),
            rooms: DashMap::new(),
            connections: DashMap::new(),
            next_message_id: AtomicU64::new(1),
            next_session_id: AtomicU64::new(1),
            next_membership: AtomicU64::new(1),
            incarnations: Incarnations::default(),
            counters: Counters::default(),
            faults: Faults::default(),
            scheduler: Scheduler::default(),
        }
    }

    // -- connections -------------------------------------------------------------------------

    /// A new WebSocket connection: its link, registered for drop-all and shutdown.
    pub fn open_connection(&self) -> Arc<SessionLink> {
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let link = Arc::new(SessionLink::new(id, self.settings.limits.outbound_queue));
        self.connections.insert(id, Arc::clone(&link));
        bump(&self.counters.connections_total);
        link
    }

    /// The connection ended. If `user` still points at it, the user goes offline (its room
    /// memberships stay until their room session times out).
    pub fn close_connection(&self, link: &SessionLink, user: Option<&Arc<str>>) {
        self.connections.remove(&link.id);
        if let Some(user) = user {
            if let Some(mut entry) = self.users.get_mut(user) {
                entry.sessions.retain(|c| c.link.id != link.id);
            }
        }
    }

    /// Closes every connection (server stop).
    pub fn close_all(&self, cmd: CloseCmd) {
        for entry in self.connections.iter() {
            entry.value().close(cmd.clone());
        }
    }

    pub fn is_blackholed(&self, user: Option<&str>) -> bool {
        self.faults.is_blackholed(user)
    }

    // -- login -------------------------------------------------------------------------------

    /// Makes `link` a session of the user. An older session of the same device is replaced
    /// silently (close 1000); under the single-device policy one of another device is kicked
    /// (kickout 4, close 4004), under the multi-device policy it stays.
    pub fn register(
        &self,
        user_id: &Arc<str>,
        user_name: Option<&str>,
        device_id: &str,
        link: &Arc<SessionLink>,
    ) -> Registered {
        let single = self.settings.device_policy == DevicePolicy::Single;
        let mut displaced = Vec::new();
        let offline = {
            let mut user = self.users.entry(Arc::clone(user_id)).or_default();
            if let Some(name) = user_name {
                if *user.user_name != *name {
                    user.user_name = Arc::from(name);
                }
            }
            let mut kept = Vec::with_capacity(1);
            for old in std::mem::take(&mut user.sessions) {
                if old.link.id == link.id {
                    continue; // a re-login on the same connection
                }
                if single || *old.device_id == *device_id {
                    displaced.push(old);
                } else {
                    kept.push(old);
                }
            }
            kept.push(Current {
                link: Arc::clone(link),
                device_id: device_id.into(),
            });
            user.sessions = kept;
            std::mem::take(&mut user.offline)
        };
        for old in displaced {
            if *old.device_id == *device_id {
                old.link.close(CloseCmd::Replaced);
            } else {
                bump(&self.counters.kickouts);
                old.link.close(CloseCmd::Kickout {
                    reason: KickoutReason::KickedOut,
                    code: close_code::KICKED_OUT,
                    ext: serde_json::json!({"reason": "login from another device", "device_id": device_id}),
                });
            }
        }
        bump(&self.counters.logins_ok);
        Registered { offline }
    }

    /// logout: the session ends; when it was the user's last one, the user's memberships end
    /// too (others get room_member_left).
    pub fn logout(&self, user_id: &Arc<str>, link: &SessionLink) {
        self.close_connection(link, Some(user_id));
        let last = self
            .users
            .get(&**user_id)
            .is_none_or(|u| u.sessions.is_empty());
        if last {
            self.end_all_memberships(user_id, LeaveCause::Left);
        }
    }

    fn user_rooms(&self, user_id: &str) -> Vec<Arc<str>> {
        self.users
            .get(user_id)
            .map(|u| u.rooms.clone())
            .unwrap_or_default()
    }

    fn end_all_memberships(&self, user_id: &Arc<str>, cause: LeaveCause) {
        for room_id in self.user_rooms(user_id) {
            if let Some(cell) = self.room_cell(&room_id) {
                self.end_membership(&cell, user_id, cause, None);
            }
        }
    }

    // -- delivery ----------------------------------------------------------------------------

    /// Queues `frame` to each of the user's sessions; false when none took it.
    fn deliver(&self, user_id: &str, frame: &ByteString) -> bool {
        match self.users.get(user_id) {
            Some(user) => self.push_to(user_id, &user.sessions, frame),
            None => false,
        }
    }

    fn push_to(&self, user_id: &str, sessions: &[Current], frame: &ByteString) -> bool {
        let mut queued = false;
        for session in sessions {
            match session.link.push(frame.clone()) {
                PushOutcome::Queued => {
                    bump(&self.counters.pushes_queued);
                    queued = true;
                }
                PushOutcome::Closing => {}
                PushOutcome::Overflowed => {
                    bump(&self.counters.outbound_overflows);
                    tracing::warn!(
                        user_id,
                        session = session.link.id,
                        "outbound queue full: closing the session"
                    );
                }
            }
        }
        queued
    }

    fn deliver_to_members(&self, room: &Room, frame: &ByteString, except: Option<&str>) {
        for member in room.members.keys() {
            if Some(&**member) != except {
                self.deliver(member, frame);
            }
        }
    }
}
