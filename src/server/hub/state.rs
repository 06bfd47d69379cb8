//! What the hub keeps per user and per room, and the timer jobs about rooms.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytestring::ByteString;

use super::super::link::SessionLink;
use crate::protocol::{ChatMessage, MessageSendReply, RoomInfo};

pub(super) struct Current {
    pub(super) link: Arc<SessionLink>,
    pub(super) device_id: Box<str>,
}

/// Remembered replies for idempotent sends, oldest first: 40 bytes an entry (a 64-bit hash
/// of the client_msg_id and the reply, whose timestamp_ms dates it), searched linearly; the
/// count is capped, so a busy sender costs at most `idempotency_entries_per_user` entries.
#[derive(Default)]
pub(super) struct RecentSends {
    pub(super) entries: VecDeque<(u64, MessageSendReply)>,
}

pub(super) fn client_msg_key(client_msg_id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(client_msg_id)
}

impl RecentSends {
    pub(super) fn forget_before(&mut self, cutoff_ms: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(_, reply)| reply.timestamp_ms < cutoff_ms)
        {
            self.entries.pop_front();
        }
    }

    pub(super) fn find(&self, key: u64, cutoff_ms: u64) -> Option<&MessageSendReply> {
        self.entries
            .iter()
            .find(|(k, reply)| *k == key && reply.timestamp_ms >= cutoff_ms)
            .map(|(_, r)| r)
    }
}

#[derive(Default)]
pub(super) struct User {
    pub(super) user_name: Arc<str>,
    /// Logged-in sessions: at most one under the single-device policy, one per device under
    /// the multi-device policy.
    pub(super) sessions: Vec<Current>,
    /// Rooms this user is a member of (at most `rooms_per_user`).
    pub(super) rooms: Vec<Arc<str>>,
    /// Peer messages waiting for the next login, serialised with offline: true.
    pub(super) offline: VecDeque<ByteString>,
    /// Allocated on the first send only: idle users stay small.
    pub(super) recent: Option<Box<RecentSends>>,
}

// ---------------------------------------------------------------------------------------------
// Rooms

pub(super) struct MemberState {
    pub(super) user_name: Arc<str>,
    pub(super) last_heartbeat: Instant,
    /// Unique per membership: a scheduler job for an older membership is ignored.
    pub(super) membership: u64,
}

pub(crate) struct Room {
    pub(super) id: Arc<str>,
    pub(super) name: String,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) members: BTreeMap<Arc<str>, MemberState>,
    pub(super) history: VecDeque<Arc<ChatMessage>>,
    pub(super) last_seq: u64,
    /// Given at creation, never reused (docs/protocol.md, "Room incarnation").
    pub(super) incarnation: u64,
    pub(super) destroy_delay: Duration,
    /// Bumped each time the room becomes empty; a destroy job of an older one is ignored.
    pub(super) empty_generation: u64,
    pub(super) destroyed: bool,
}

/// A room behind its own lock.
pub(crate) type RoomCell = Mutex<Room>;

pub(super) fn lock_room(cell: &RoomCell) -> MutexGuard<'_, Room> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

impl Room {
    pub(super) fn info(&self) -> RoomInfo {
        RoomInfo {
            room_id: self.id.to_string(),
            room_name: self.name.clone(),
            member_count: self.members.len() as u32,
            attributes: self.attributes.clone(),
            incarnation: Some(self.incarnation),
        }
    }
}

/// Why a membership ends; decides the pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaveCause {
    /// room_leave or logout: room_member_left to the others.
    Left,
    /// Room session timeout or admin evict: room_member_left to the others, nothing to the user.
    Expired,
    /// Admin kick: room_kickout reason 1 to the user, room_member_left to the others.
    Kicked,
    /// The user was unregistered: room_member_left to the others.
    Unregistered,
}

// ---------------------------------------------------------------------------------------------
// The hub

/// Work the scheduler does when its time comes.
pub(crate) enum Job {
    /// End the membership `membership` of `user` if its room session expired.
    MembershipCheck {
        room: Weak<RoomCell>,
        user: Arc<str>,
        membership: u64,
    },
    /// Destroy the room if it is still empty since `generation`.
    DestroyIfEmpty {
        room: Weak<RoomCell>,
        generation: u64,
    },
}
