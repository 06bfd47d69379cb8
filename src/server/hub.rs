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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytestring::ByteString;
use dashmap::DashMap;
use serde::Serialize;

use super::link::{CloseCmd, PushOutcome, SessionLink};
use super::scheduler::{Job, Scheduler};
use super::settings::{DevicePolicy, ServerSettings};
use crate::protocol::{
    close_code, ChatMessage, ConvType, ErrorCode, KickoutReason, Member, MessageSend,
    MessageSendReply, MessageType, Push, RoomCreate, RoomInfo, RoomKickoutReason, ZimError,
};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn err(code: ErrorCode, msg: &str) -> ZimError {
    ZimError::new(code, msg)
}

/// The `message` push, serialised from a borrowed message (the same JSON as
/// `Push::Message`, without copying the body).
pub(crate) fn message_push(message: &ChatMessage, offline: bool) -> ByteString {
    #[derive(Serialize)]
    struct MessagePush<'a> {
        push: &'static str,
        message: &'a ChatMessage,
        offline: bool,
    }
    let push = MessagePush {
        push: "message",
        message,
        offline,
    };
    ByteString::from(serde_json::to_string(&push).expect("pushes always serialise"))
}

/// An upper bound of a message's size in a JSON frame: the body may grow when escaped (a
/// control character becomes six bytes), the ids are at most 32 bytes, the rest is fixed.
fn encoded_size_bound(m: &ChatMessage) -> usize {
    let escaped_body = m
        .body
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>();
    escaped_body + m.client_msg_id.len() + m.conv_id.len() + m.from.len() + 256
}

/// Serialises a push once; the bytes are shared by every receiver.
pub(crate) fn push_bytes(push: &Push) -> ByteString {
    ByteString::from(serde_json::to_string(push).expect("pushes always serialise"))
}

// ---------------------------------------------------------------------------------------------
// Counters and stats

/// Monotonic counters (gauges are computed from the maps when asked).
#[derive(Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_refused: AtomicU64,
    pub messages_routed: AtomicU64,
    pub pushes_queued: AtomicU64,
    pub outbound_overflows: AtomicU64,
    pub offline_stored: AtomicU64,
    pub offline_dropped: AtomicU64,
    pub kickouts: AtomicU64,
    pub heartbeat_timeouts: AtomicU64,
    pub bad_frames: AtomicU64,
    pub room_sessions_expired: AtomicU64,
    pub rooms_destroyed: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What `GET /admin/stats` and [`super::Admin::stats`] report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Open WebSocket connections (logged in or not).
    pub sessions: u64,
    /// Users with a logged-in session.
    pub users_online: u64,
    /// Users the server knows (logged in at least once, not unregistered).
    pub users_known: u64,
    pub rooms: u64,
    /// Room memberships, summed over rooms.
    pub members: u64,
    /// Messages accepted by message_send (resends not counted).
    pub messages_routed: u64,
    /// Frames queued to sessions (replies excluded).
    pub pushes_queued: u64,
    /// Sessions closed because their outbound queue was full.
    pub outbound_overflows: u64,
    pub connections_total: u64,
    pub logins_ok: u64,
    pub logins_refused: u64,
    pub offline_stored: u64,
    pub offline_dropped: u64,
    pub kickouts: u64,
    pub heartbeat_timeouts: u64,
    pub bad_frames: u64,
    pub room_sessions_expired: u64,
    pub rooms_destroyed: u64,
    /// Active fault injections.
    pub faults_active: FaultStats,
    /// Timers waiting in the scheduler (room session checks, delayed destroys).
    pub scheduled_timers: u64,
}

/// Active blackholes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FaultStats {
    /// Whether every user is blackholed.
    pub blackhole_all: bool,
    /// Users blackholed one by one.
    pub blackholed_users: u64,
}

// ---------------------------------------------------------------------------------------------
// Faults

/// Whom a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    All,
    Users(Vec<String>),
}

#[derive(Default)]
struct Blackholes {
    all_until: Option<Instant>,
    users: HashMap<Arc<str>, Instant>,
}

#[derive(Default)]
struct Faults {
    /// Fast path: no lock per frame while no blackhole was ever set.
    any: AtomicBool,
    blackholes: Mutex<Blackholes>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, Blackholes> {
        self.blackholes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_blackholed(&self, user: Option<&str>) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let mut b = self.lock();
        if b.all_until.is_some_and(|t| t > now) {
            return true;
        }
        b.users.retain(|_, until| *until > now);
        if b.all_until.is_some_and(|t| t <= now) {
            b.all_until = None;
        }
        if b.all_until.is_none() && b.users.is_empty() {
            self.any.store(false, Ordering::Relaxed);
        }
        user.is_some_and(|u| b.users.contains_key(u))
    }
}

// ---------------------------------------------------------------------------------------------
// Users

struct Current {
    link: Arc<SessionLink>,
    device_id: Box<str>,
}

/// Remembered replies for idempotent sends, oldest first: 40 bytes an entry (a 64-bit hash
/// of the client_msg_id and the reply, whose timestamp_ms dates it), searched linearly; the
/// count is capped, so a busy sender costs at most `idempotency_entries_per_user` entries.
#[derive(Default)]
struct RecentSends {
    entries: VecDeque<(u64, MessageSendReply)>,
}

fn client_msg_key(client_msg_id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(client_msg_id)
}

impl RecentSends {
    fn forget_before(&mut self, cutoff_ms: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(_, reply)| reply.timestamp_ms < cutoff_ms)
        {
            self.entries.pop_front();
        }
    }

    fn find(&self, key: u64, cutoff_ms: u64) -> Option<&MessageSendReply> {
        self.entries
            .iter()
            .find(|(k, reply)| *k == key && reply.timestamp_ms >= cutoff_ms)
            .map(|(_, r)| r)
    }
}

#[derive(Default)]
struct User {
    user_name: Arc<str>,
    /// Logged-in sessions: at most one under the single-device policy, one per device under
    /// the multi-device policy.
    sessions: Vec<Current>,
    /// Rooms this user is a member of (at most `rooms_per_user`).
    rooms: Vec<Arc<str>>,
    /// Peer messages waiting for the next login, serialised with offline: true.
    offline: VecDeque<ByteString>,
    /// Allocated on the first send only: idle users stay small.
    recent: Option<Box<RecentSends>>,
}

// ---------------------------------------------------------------------------------------------
// Rooms

struct MemberState {
    user_name: Arc<str>,
    last_heartbeat: Instant,
    /// Unique per membership: a scheduler job for an older membership is ignored.
    membership: u64,
}

pub(crate) struct Room {
    id: Arc<str>,
    name: String,
    attributes: BTreeMap<String, String>,
    members: BTreeMap<Arc<str>, MemberState>,
    history: VecDeque<Arc<ChatMessage>>,
    last_seq: u64,
    destroy_delay: Duration,
    /// Bumped each time the room becomes empty; a destroy job of an older one is ignored.
    empty_generation: u64,
    destroyed: bool,
}

/// A room behind its own lock.
pub(crate) type RoomCell = Mutex<Room>;

fn lock_room(cell: &RoomCell) -> MutexGuard<'_, Room> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

impl Room {
    fn info(&self) -> RoomInfo {
        RoomInfo {
            room_id: self.id.to_string(),
            room_name: self.name.clone(),
            member_count: self.members.len() as u32,
            attributes: self.attributes.clone(),
        }
    }
}

/// Why a membership ends; decides the pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaveCause {
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
    pub counters: Counters,
    faults: Faults,
    pub(crate) scheduler: Scheduler,
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

    // -- rooms -------------------------------------------------------------------------------

    fn room_cell(&self, room_id: &str) -> Option<Arc<RoomCell>> {
        self.rooms.get(room_id).map(|r| Arc::clone(r.value()))
    }

    fn destroy_delay(&self, asked_secs: Option<u32>) -> Result<Duration, ZimError> {
        match asked_secs {
            Some(secs) if secs > self.settings.timing.max_destroy_delay_secs => Err(err(
                ErrorCode::INVALID_PARAMETER,
                "destroy_delay_secs is larger than the server allows",
            )),
            Some(secs) => Ok(Duration::from_secs(secs.into())),
            None => Ok(Duration::from_millis(
                self.settings.timing.default_destroy_delay_ms,
            )),
        }
    }

    /// Adds `user` to the locked room. Checks membership, the per-room and per-user limits.
    fn add_member(
        &self,
        cell: &Arc<RoomCell>,
        room: &mut Room,
        user_id: &Arc<str>,
    ) -> Result<(), ZimError> {
        if room.members.contains_key(user_id) {
            return Err(err(ErrorCode::ALREADY_IN_ROOM, "already in the room"));
        }
        let per_room = self.settings.limits.members_per_room;
        if per_room > 0 && room.members.len() >= per_room {
            return Err(err(ErrorCode::ROOM_ENTER_FAILED, "the room is full"));
        }
        let user_name = {
            let Some(mut user) = self.users.get_mut(user_id) else {
                return Err(err(ErrorCode::NOT_LOGGED_IN, "not logged in"));
            };
            if user.rooms.len() >= self.settings.limits.rooms_per_user {
                return Err(err(ErrorCode::ROOM_LIMIT, "joined-rooms limit reached"));
            }
            user.rooms.push(Arc::clone(&room.id));
            Arc::clone(&user.user_name)
        };
        let membership = self.next_membership.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        room.members.insert(
            Arc::clone(user_id),
            MemberState {
                user_name: Arc::clone(&user_name),
                last_heartbeat: now,
                membership,
            },
        );
        self.scheduler.schedule(
            now + self.settings.timing.room_session_timeout(),
            Job::MembershipCheck {
                room: Arc::downgrade(cell),
                user: Arc::clone(user_id),
                membership,
            },
        );
        let joined = push_bytes(&Push::RoomMemberJoined {
            room_id: room.id.to_string(),
            members: vec![Member {
                user_id: user_id.to_string(),
                user_name: user_name.to_string(),
            }],
        });
        self.deliver_to_members(room, &joined, Some(user_id));
        Ok(())
    }

    /// room_create; with `enter`, an existing room is joined instead (room_enter).
    /// Returns the room and whether it was created.
    pub fn room_create(
        &self,
        user_id: &Arc<str>,
        req: RoomCreate,
        enter: bool,
    ) -> Result<(RoomInfo, bool), ZimError> {
        let delay = self.destroy_delay(req.destroy_delay_secs)?;
        let at_limit = self.users.get(&**user_id).is_some_and(|u| {
            u.rooms.len() >= self.settings.limits.rooms_per_user
                && !u.rooms.iter().any(|r| **r == *req.room_id)
        });
        if at_limit {
            return Err(err(ErrorCode::ROOM_LIMIT, "joined-rooms limit reached"));
        }
        loop {
            let (cell, created) = match self.rooms.entry(Arc::from(req.room_id.as_str())) {
                dashmap::Entry::Occupied(e) => (Arc::clone(e.get()), false),
                dashmap::Entry::Vacant(v) => {
                    let id = Arc::clone(v.key());
                    let cell = Arc::new(Mutex::new(Room {
                        id,
                        name: req.room_name.clone().unwrap_or_default(),
                        attributes: req.attributes.clone().unwrap_or_default(),
                        members: BTreeMap::new(),
                        history: VecDeque::new(),
                        last_seq: 0,
                        destroy_delay: delay,
                        empty_generation: 0,
                        destroyed: false,
                    }));
                    v.insert(Arc::clone(&cell));
                    (cell, true)
                }
            };
            let mut room = lock_room(&cell);
            if room.destroyed {
                // Lost a race with its destruction: the map entry is going away; retry.
                drop(room);
                self.rooms
                    .remove_if(&*req.room_id, |_, c| Arc::ptr_eq(c, &cell));
                continue;
            }
            if !created && !enter {
                return Err(err(ErrorCode::ROOM_ALREADY_EXISTS, "room already exists"));
            }
            if !created && room.members.contains_key(user_id) {
                // room_enter of a member: nothing to do but refresh its room session.
                if let Some(m) = room.members.get_mut(user_id) {
                    m.last_heartbeat = Instant::now();
                }
                return Ok((room.info(), false));
            }
            return match self.add_member(&cell, &mut room, user_id) {
                Ok(()) => Ok((room.info(), created)),
                Err(e) => {
                    if created && room.members.is_empty() {
                        // The creator could not join: the room never existed.
                        room.destroyed = true;
                        drop(room);
                        self.rooms
                            .remove_if(&*req.room_id, |_, c| Arc::ptr_eq(c, &cell));
                    }
                    Err(e)
                }
            };
        }
    }

    pub fn room_join(&self, user_id: &Arc<str>, room_id: &str) -> Result<RoomInfo, ZimError> {
        let cell = self
            .room_cell(room_id)
            .ok_or_else(|| err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"))?;
        let mut room = lock_room(&cell);
        if room.destroyed {
            return Err(err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"));
        }
        self.add_member(&cell, &mut room, user_id)?;
        Ok(room.info())
    }

    pub fn room_leave(&self, user_id: &Arc<str>, room_id: &str) -> Result<(), ZimError> {
        let cell = self
            .room_cell(room_id)
            .ok_or_else(|| err(ErrorCode::NOT_IN_ROOM, "not in the room"))?;
        if self.end_membership(&cell, user_id, LeaveCause::Left, None) {
            Ok(())
        } else {
            Err(err(ErrorCode::NOT_IN_ROOM, "not in the room"))
        }
    }

    /// Refreshes the membership; returns the member count.
    pub fn room_heartbeat(&self, user_id: &str, room_id: &str) -> Result<u32, ZimError> {
        let cell = self
            .room_cell(room_id)
            .ok_or_else(|| err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"))?;
        let mut room = lock_room(&cell);
        if room.destroyed {
            return Err(err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"));
        }
        let count = room.members.len() as u32;
        match room.members.get_mut(user_id) {
            Some(m) => {
                m.last_heartbeat = Instant::now();
                Ok(count)
            }
            None => Err(err(
                ErrorCode::NOT_IN_ROOM,
                "not in the room (room session expired)",
            )),
        }
    }

    /// A page of members ordered by user id, after `cursor` (a user id).
    pub fn room_members(
        &self,
        user_id: &str,
        room_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Member>, Option<String>), ZimError> {
        let not_in = || err(ErrorCode::NOT_IN_ROOM, "not in the room");
        let cell = self.room_cell(room_id).ok_or_else(not_in)?;
        let room = lock_room(&cell);
        if room.destroyed || !room.members.contains_key(user_id) {
            return Err(not_in());
        }
        use std::ops::Bound;
        let lower = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let mut page: Vec<Member> = room
            .members
            .range::<str, _>((lower, Bound::Unbounded))
            .take(limit + 1)
            .map(|(id, m)| Member {
                user_id: id.to_string(),
                user_name: m.user_name.to_string(),
            })
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|m| m.user_id.clone())
        } else {
            None
        };
        Ok((page, next))
    }

    /// Messages with seq > `after_seq`, oldest first, at most `limit`; `complete` is true when
    /// the page reaches the newest message.
    pub fn room_history(
        &self,
        user_id: &str,
        room_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<(Vec<Arc<ChatMessage>>, bool), ZimError> {
        let cell = self
            .room_cell(room_id)
            .ok_or_else(|| err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"))?;
        let room = lock_room(&cell);
        if room.destroyed {
            return Err(err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"));
        }
        if !room.members.contains_key(user_id) {
            return Err(err(ErrorCode::NOT_IN_ROOM, "not in the room"));
        }
        // history holds a dense run of seqs ending at last_seq.
        let first_kept = room.last_seq + 1 - room.history.len() as u64;
        let skip = after_seq.saturating_add(1).saturating_sub(first_kept) as usize;
        // A page must fit in one frame: stop before the encoded page could pass the frame
        // limit (at least one message per page; the client pages on `complete: false`).
        let budget = self
            .settings
            .limits
            .max_frame_bytes
            .saturating_sub(4 * 1024);
        let mut used = 0usize;
        let messages: Vec<_> = room
            .history
            .iter()
            .skip(skip)
            .take(limit)
            .take_while(|m| {
                used += encoded_size_bound(m);
                used <= budget || used == encoded_size_bound(m)
            })
            .cloned()
            .collect();
        let complete = messages.last().is_none_or(|m| m.seq == Some(room.last_seq));
        Ok((messages, complete))
    }

    /// Ends `user_id`'s membership in the room; false if it was not a member.
    fn end_membership(
        &self,
        cell: &Arc<RoomCell>,
        user_id: &str,
        cause: LeaveCause,
        only_membership: Option<u64>,
    ) -> bool {
        let mut room = lock_room(cell);
        if room.destroyed {
            return false;
        }
        match room.members.get(user_id) {
            None => return false,
            Some(m) if only_membership.is_some_and(|id| id != m.membership) => return false,
            Some(_) => {}
        }
        let state = room.members.remove(user_id).expect("checked");
        if let Some(mut user) = self.users.get_mut(user_id) {
            user.rooms.retain(|r| **r != *room.id);
        }
        if cause == LeaveCause::Kicked {
            let kicked = push_bytes(&Push::RoomKickout {
                room_id: room.id.to_string(),
                reason: RoomKickoutReason::Kicked,
            });
            self.deliver(user_id, &kicked);
        }
        let left = push_bytes(&Push::RoomMemberLeft {
            room_id: room.id.to_string(),
            members: vec![Member {
                user_id: user_id.to_string(),
                user_name: state.user_name.to_string(),
            }],
        });
        self.deliver_to_members(&room, &left, None);
        tracing::debug!(room_id = %room.id, user_id, ?cause, "membership ended");
        let destroy = self.mark_empty(cell, &mut room);
        let room_id = Arc::clone(&room.id);
        drop(room);
        if destroy {
            self.rooms.remove_if(&*room_id, |_, c| Arc::ptr_eq(c, cell));
        }
        true
    }

    /// Called with the room locked after a member left. An empty room with no delay is marked
    /// destroyed (the caller removes it from the map after unlocking); with a delay, a destroy
    /// job is scheduled. Returns whether the caller must remove it now.
    fn mark_empty(&self, cell: &Arc<RoomCell>, room: &mut Room) -> bool {
        if !room.members.is_empty() {
            return false;
        }
        room.empty_generation += 1;
        if room.destroy_delay.is_zero() {
            room.destroyed = true;
            bump(&self.counters.rooms_destroyed);
            return true;
        }
        self.scheduler.schedule(
            Instant::now() + room.destroy_delay,
            Job::DestroyIfEmpty {
                room: Arc::downgrade(cell),
                generation: room.empty_generation,
            },
        );
        false
    }

    /// Destroys a room now: room_kickout reason 2 to every member. False if it did not exist.
    pub fn destroy_room(&self, room_id: &str) -> bool {
        let Some(cell) = self.room_cell(room_id) else {
            return false;
        };
        let mut room = lock_room(&cell);
        if room.destroyed {
            return false;
        }
        room.destroyed = true;
        let gone = push_bytes(&Push::RoomKickout {
            room_id: room.id.to_string(),
            reason: RoomKickoutReason::RoomDestroyed,
        });
        for member in room.members.keys() {
            if let Some(mut user) = self.users.get_mut(member) {
                user.rooms.retain(|r| **r != *room.id);
            }
        }
        self.deliver_to_members(&room, &gone, None);
        room.members.clear();
        room.history.clear();
        drop(room);
        bump(&self.counters.rooms_destroyed);
        self.rooms.remove_if(room_id, |_, c| Arc::ptr_eq(c, &cell));
        true
    }

    /// Ends a membership as if its room session expired (room_member_left to the others,
    /// nothing to the user). False if there was no such membership.
    pub fn evict(&self, room_id: &str, user_id: &str) -> bool {
        self.room_cell(room_id)
            .is_some_and(|cell| self.end_membership(&cell, user_id, LeaveCause::Expired, None))
    }

    /// room_kickout reason 1 to the member, room_member_left to the others.
    pub fn kick(&self, room_id: &str, user_id: &str) -> bool {
        self.room_cell(room_id)
            .is_some_and(|cell| self.end_membership(&cell, user_id, LeaveCause::Kicked, None))
    }

    // -- messages ----------------------------------------------------------------------------

    /// message_send from `sender`. Idempotent per (sender, client_msg_id) within the window.
    pub fn send_message(
        &self,
        sender: &Arc<str>,
        req: MessageSend,
    ) -> Result<MessageSendReply, ZimError> {
        if let Some(reply) = self.recall(sender, &req.client_msg_id) {
            return Ok(reply);
        }
        let client_msg_id = req.client_msg_id.clone();
        let reply = match req.conv_type {
            ConvType::Room => self.send_room(sender, req)?,
            ConvType::Peer => self.send_peer(sender, req)?,
            ConvType::Unknown(_) => {
                return Err(err(
                    ErrorCode::INVALID_PARAMETER,
                    "conv_type must be 0 or 1",
                ))
            }
        };
        bump(&self.counters.messages_routed);
        self.remember(sender, &client_msg_id, &reply);
        Ok(reply)
    }

    /// The message, built from the request it moves out of (the body is not copied).
    fn new_message(&self, sender: &str, req: MessageSend, seq: Option<u64>) -> ChatMessage {
        ChatMessage {
            message_id: self.next_message_id.fetch_add(1, Ordering::Relaxed),
            conv_type: req.conv_type,
            conv_id: if req.conv_type == ConvType::Room {
                req.to
            } else {
                sender.to_owned()
            },
            from: sender.to_owned(),
            msg_type: req.msg_type,
            body: req.body,
            seq,
            timestamp_ms: now_ms(),
            client_msg_id: req.client_msg_id,
        }
    }

    fn send_room(&self, sender: &str, req: MessageSend) -> Result<MessageSendReply, ZimError> {
        let missing = || err(ErrorCode::MESSAGE_TARGET_NOT_EXIST, "room does not exist");
        let cell = self.room_cell(&req.to).ok_or_else(missing)?;
        let mut room = lock_room(&cell);
        if room.destroyed {
            return Err(missing());
        }
        if !room.members.contains_key(sender) {
            return Err(err(ErrorCode::NOT_IN_ROOM, "not in the room"));
        }
        room.last_seq += 1;
        let message = self.new_message(sender, req, Some(room.last_seq));
        let reply = MessageSendReply {
            message_id: message.message_id,
            seq: message.seq,
            timestamp_ms: message.timestamp_ms,
        };
        let frame = message_push(&message, false);
        if room.history.len() >= self.settings.limits.history_per_room {
            room.history.pop_front();
        }
        room.history.push_back(Arc::new(message));
        // Delivered under the room lock so every member sees the room's seqs in order.
        self.deliver_to_members(&room, &frame, None);
        Ok(reply)
    }

    fn send_peer(&self, sender: &str, req: MessageSend) -> Result<MessageSendReply, ZimError> {
        let Some(mut target) = self.users.get_mut(&*req.to) else {
            return Err(err(
                ErrorCode::MESSAGE_TARGET_NOT_EXIST,
                "user does not exist",
            ));
        };
        let message = self.new_message(sender, req, None);
        let reply = MessageSendReply {
            message_id: message.message_id,
            seq: None,
            timestamp_ms: message.timestamp_ms,
        };
        if !target.sessions.is_empty() {
            self.push_to(
                &message.conv_id,
                &target.sessions,
                &message_push(&message, false),
            );
        } else {
            if target.offline.len() >= self.settings.limits.offline_messages_per_user {
                target.offline.pop_front();
                bump(&self.counters.offline_dropped);
            }
            target.offline.push_back(message_push(&message, true));
            bump(&self.counters.offline_stored);
        }
        Ok(reply)
    }

    fn recall(&self, sender: &str, client_msg_id: &str) -> Option<MessageSendReply> {
        let mut user = self.users.get_mut(sender)?;
        let recent = user.recent.as_mut()?;
        let cutoff_ms = now_ms().saturating_sub(self.settings.timing.idempotency_window_ms);
        recent.forget_before(cutoff_ms);
        recent
            .find(client_msg_key(client_msg_id), cutoff_ms)
            .cloned()
    }

    fn remember(&self, sender: &str, client_msg_id: &str, reply: &MessageSendReply) {
        let cap = self.settings.limits.idempotency_entries_per_user;
        if cap == 0 {
            return;
        }
        let Some(mut user) = self.users.get_mut(sender) else {
            return;
        };
        let recent = user.recent.get_or_insert_with(Default::default);
        while recent.entries.len() >= cap {
            recent.entries.pop_front();
        }
        recent
            .entries
            .push_back((client_msg_key(client_msg_id), reply.clone()));
    }

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
    fn links_of(&self, user_id: &str) -> Vec<Arc<SessionLink>> {
        self.users
            .get(user_id)
            .map(|u| u.sessions.iter().map(|c| Arc::clone(&c.link)).collect())
            .unwrap_or_default()
    }

    fn current_links(&self, target: &FaultTarget) -> Vec<Arc<SessionLink>> {
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

    /// Validates a message_send's fields (6000001).
    pub fn check_message(&self, req: &MessageSend) -> Result<(), ZimError> {
        let bad = |msg: &str| Err(err(ErrorCode::INVALID_PARAMETER, msg));
        if !crate::protocol::is_valid_id(&req.to) {
            return bad("to is not a valid id");
        }
        if req.client_msg_id.is_empty() || req.client_msg_id.len() > 64 {
            return bad("client_msg_id must be 1 to 64 bytes");
        }
        if matches!(req.msg_type, MessageType::Unknown(_)) {
            return bad("type must be 1, 2 or 200");
        }
        if req.body.len() > self.settings.limits.max_body_bytes {
            return bad("body is too large");
        }
        if req.priority.is_some_and(|p| !(1..=3).contains(&p)) {
            return bad("priority must be 1, 2 or 3");
        }
        if matches!(req.conv_type, ConvType::Unknown(_)) {
            return bad("conv_type must be 0 or 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MessageType;

    #[test]
    fn message_push_is_the_push_enum_json() {
        let message = ChatMessage {
            message_id: 7,
            conv_type: ConvType::Room,
            conv_id: "r".into(),
            from: "u".into(),
            msg_type: MessageType::Text,
            body: "hi \"there\"".into(),
            seq: Some(3),
            timestamp_ms: 9,
            client_msg_id: "c".into(),
        };
        for offline in [false, true] {
            let borrowed = message_push(&message, offline);
            let owned = push_bytes(&Push::Message {
                message: message.clone(),
                offline,
            });
            assert_eq!(borrowed, owned);
        }
    }

    #[test]
    fn idempotency_memory_is_capped_per_sender() {
        let mut settings = ServerSettings::for_tests();
        settings.limits.idempotency_entries_per_user = 2;
        let hub = Hub::new(settings);
        hub.users.insert(Arc::from("u"), User::default());
        let reply = |id| MessageSendReply {
            message_id: id,
            seq: None,
            timestamp_ms: now_ms(),
        };
        for (n, id) in ["a", "b", "c"].into_iter().enumerate() {
            hub.remember("u", id, &reply(n as u64));
        }
        assert_eq!(hub.recall("u", "a"), None, "oldest forgotten");
        assert_eq!(hub.recall("u", "b").map(|r| r.message_id), Some(1));
        assert_eq!(hub.recall("u", "c").map(|r| r.message_id), Some(2));
        assert_eq!(hub.recall("v", "c"), None, "per sender");
        let old = MessageSendReply {
            message_id: 9,
            seq: None,
            timestamp_ms: now_ms() - 700_000,
        };
        hub.remember("u", "old", &old);
        assert_eq!(hub.recall("u", "old"), None, "outside the window");
    }
}
