//! Room operations of the hub: create, join, leave, heartbeat, members, history, destroy.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::frames::{encoded_size_bound, push_bytes};
use super::state::{lock_room, Job, LeaveCause, MemberState, Room, RoomCell};
use super::stats::bump;
use super::{err, Hub};
use crate::protocol::{
    ChatMessage, ErrorCode, Member, Push, RoomCreate, RoomHeartbeatReply, RoomInfo,
    RoomKickoutReason, ZimError,
};

impl Hub {
    // -- rooms -------------------------------------------------------------------------------

    pub(super) fn room_cell(&self, room_id: &str) -> Option<Arc<RoomCell>> {
        self.rooms.get(room_id).map(|r| Arc::clone(r.value()))
    }

    pub(super) fn destroy_delay(&self, asked_secs: Option<u32>) -> Result<Duration, ZimError> {
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
    pub(super) fn add_member(
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
                        incarnation: self.incarnations.next(crate::clock::unix_ms()),
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

    /// Refreshes the membership; answers the member count and the room's incarnation.
    pub fn room_heartbeat(
        &self,
        user_id: &str,
        room_id: &str,
    ) -> Result<RoomHeartbeatReply, ZimError> {
        let cell = self
            .room_cell(room_id)
            .ok_or_else(|| err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"))?;
        let mut room = lock_room(&cell);
        if room.destroyed {
            return Err(err(ErrorCode::ROOM_NOT_EXIST, "room does not exist"));
        }
        let reply = RoomHeartbeatReply {
            member_count: room.members.len() as u32,
            incarnation: Some(room.incarnation),
        };
        match room.members.get_mut(user_id) {
            Some(m) => {
                m.last_heartbeat = Instant::now();
                Ok(reply)
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
    pub(super) fn end_membership(
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
    pub(super) fn mark_empty(&self, cell: &Arc<RoomCell>, room: &mut Room) -> bool {
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
}
