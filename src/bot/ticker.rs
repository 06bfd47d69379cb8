//! The per-room ticker that timer-driven behaviours (scheduled, chatter) post from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bot::pacer::{lock, Pacer};
use crate::client::AccountHandle;
use crate::protocol::RoomState;

/// Where a per-room loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TickerRoom {
    /// The room is Connected: the loop acts.
    Active,
    /// The room is recovering (Connecting): the loop waits.
    Paused,
    /// The room is Disconnected: the loop ends at its next tick.
    Out,
}

#[derive(Debug)]
struct TickerEntry {
    room: TickerRoom,
    running: bool,
    ticks: u64,
}

/// One loop per (account, room) that acts while the room is Connected, pauses while it
/// recovers and ends when it is out. Timer-driven behaviours (scheduled, chatter) use it.
#[derive(Debug, Default)]
pub(crate) struct RoomTicker {
    rooms: Arc<Mutex<HashMap<(String, String), TickerEntry>>>,
    pacer: Arc<Pacer>,
}

/// What a loop does at each tick: the tick number (from 1) -> the text to post; `None` ends
/// the loop (it is started again, with its count kept, when the room comes back).
pub(crate) type TickText = Arc<dyn Fn(&AccountHandle, &str, u64) -> Option<String> + Send + Sync>;

impl RoomTicker {
    /// A ticker that posts through `pacer`.
    pub(crate) fn new(pacer: Pacer) -> Self {
        Self {
            rooms: Arc::default(),
            pacer: Arc::new(pacer),
        }
    }

    /// Follows a room's state; starts its loop (on the account's thread) when it first
    /// becomes Connected. `delays(tick)` says how long to wait before tick number `tick`.
    pub(crate) fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        delays: Arc<dyn Fn(u64) -> Duration + Send + Sync>,
        text: TickText,
    ) {
        let key = (account.user_id().to_string(), room_id.to_string());
        let room = match state {
            RoomState::Connected => TickerRoom::Active,
            RoomState::Connecting => TickerRoom::Paused,
            _ => TickerRoom::Out,
        };
        let start = {
            let mut rooms = lock(&self.rooms);
            let entry = rooms.entry(key.clone()).or_insert(TickerEntry {
                room,
                running: false,
                ticks: 0,
            });
            entry.room = room;
            let start = room == TickerRoom::Active && !entry.running;
            if start {
                entry.running = true;
            }
            start
        };
        if start {
            let rooms = Arc::clone(&self.rooms);
            let pacer = Arc::clone(&self.pacer);
            let account = account.clone();
            actix::spawn(async move {
                loop {
                    let next = lock(&rooms).get(&key).map_or(1, |e| e.ticks + 1);
                    tokio::time::sleep(delays(next)).await;
                    let act = {
                        let mut rooms = lock(&rooms);
                        let Some(entry) = rooms.get_mut(&key) else {
                            return;
                        };
                        match entry.room {
                            _ if pacer.quiet.is_on() => {
                                entry.running = false;
                                return;
                            }
                            TickerRoom::Out => {
                                entry.running = false;
                                return;
                            }
                            TickerRoom::Paused => false,
                            TickerRoom::Active => {
                                entry.ticks += 1;
                                true
                            }
                        }
                    };
                    if act {
                        match text(&account, &key.1, next) {
                            Some(body) => pacer.room(&account, &key.1, body),
                            // Nothing more to post (a limit was reached): the loop ends.
                            None => {
                                if let Some(entry) = lock(&rooms).get_mut(&key) {
                                    entry.running = false;
                                }
                                return;
                            }
                        }
                    }
                }
            });
        }
    }

    /// The account ended: every loop of it stops at its next tick.
    pub(crate) fn account_ended(&self, account: &AccountHandle) {
        let mut rooms = lock(&self.rooms);
        for ((user, _), entry) in rooms.iter_mut() {
            if user == account.user_id() {
                entry.room = TickerRoom::Out;
            }
        }
    }
}
