//! The event tracker: reads the fleet's events (each with its own `ts_ms`) and keeps what the
//! report needs: accounts and rooms by state, first logins and room entries, reconnect and
//! room recovery times by T2 outcome, errors by ZIM code, per-second counts. Runs on the
//! driver's thread; one small entry per account.

use std::collections::{BTreeMap, HashMap};

use super::report::{Counts, Hist, Histograms, Tick};
use crate::client::{Event, EventKind};
use crate::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};

/// How a room came back after T0, as T2 said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum T2 {
    #[default]
    StillMember,
    ConnectTimeout,
    RoomNotExist,
}

#[derive(Debug)]
struct RoomTrack {
    room: u32,
    state: RoomState,
    entered: bool,
    /// The first entry failed and the room stays out (ZIM does not retry it).
    failed: bool,
    /// Unix ms of (Connecting, NetworkInterrupted); 0 when not recovering.
    interrupted_ms: u64,
    t2: T2,
}

#[derive(Debug)]
struct AccountTrack {
    state: ConnectionState,
    logged_in: bool,
    ended: bool,
    /// Unix ms of (Reconnecting, LoginInterrupted); 0 when not reconnecting.
    reconnecting_ms: u64,
    /// Logged out by a ramp down: its events no longer count.
    left: bool,
    /// Settled once (logged in, first room entries done): it may send from then on.
    ready: bool,
    rooms: Box<[RoomTrack]>,
}

impl AccountTrack {
    fn full(&self) -> bool {
        self.state == ConnectionState::Connected
            && self.rooms.iter().all(|r| r.state == RoomState::Connected)
    }

    /// Nothing more will change on its own: fully connected, or ended, or Connected with
    /// every room either Connected or out after a failed first entry.
    fn settled(&self) -> bool {
        self.ended
            || (self.state == ConnectionState::Connected
                && self.rooms.iter().all(|r| {
                    r.state == RoomState::Connected
                        || (r.failed && r.state == RoomState::Disconnected)
                }))
    }
}

/// What the tracker counted.
#[derive(Debug, Default)]
pub struct Tracked {
    /// Counts.
    pub counts: Counts,
    /// Histograms.
    pub histograms: Histograms,
    /// Errors.
    pub errors: BTreeMap<u32, u64>,
    /// Errors by sec.
    pub errors_by_sec: BTreeMap<u64, BTreeMap<u32, u64>>,
    /// Timeline.
    pub timeline: BTreeMap<u64, Tick>,
}

/// Accounts by state now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct States {
    /// Connected.
    pub connected: u64,
    /// Reconnecting.
    pub reconnecting: u64,
    /// Logging in, or ended (not counting those that left).
    pub other: u64,
    /// Logged out by a ramp down.
    pub left: u64,
}

/// The fleet's events as states and counts (one small entry per account).
pub struct Tracker {
    slots: HashMap<String, u32>,
    rooms: HashMap<String, u32>,
    accounts: Vec<Option<AccountTrack>>,
    /// Accounts Connected with every room Connected.
    pub fully_connected: u64,
    /// Accounts settled (see `AccountTrack::settled`): what the ramp and drain wait for.
    pub settled: u64,
    /// When `fully_connected` last reached `target` (unix ms), 0 if never.
    pub all_connected_ms: u64,
    /// Slots that settled for the first time since the driver last took them.
    pub newly_ready: Vec<u32>,
    target: u64,
    /// Out.
    pub out: Tracked,
}

/// Reads a ZIM error code from an event's extended data (`code` or `error_code`).
fn ext_code(ext: &serde_json::Value) -> Option<u32> {
    ["code", "error_code"]
        .iter()
        .find_map(|k| ext.get(*k).and_then(|v| v.as_u64()))
        .and_then(|c| u32::try_from(c).ok())
        .filter(|&c| c != 0)
}

impl Tracker {
    /// `slots` / `rooms`: the shard's account and room slots; `target`: accounts to wait for.
    pub fn new(slots: HashMap<String, u32>, rooms: HashMap<String, u32>, target: u64) -> Self {
        let n = slots.len();
        Tracker {
            slots,
            rooms,
            accounts: (0..n).map(|_| None).collect(),
            fully_connected: 0,
            settled: 0,
            all_connected_ms: 0,
            newly_ready: Vec::new(),
            target,
            out: Tracked::default(),
        }
    }

    /// Registers an account as added, with its room slots.
    pub fn added(&mut self, slot: u32, rooms: &[u32]) {
        if let Some(entry) = self.accounts.get_mut(slot as usize) {
            *entry = Some(AccountTrack {
                state: ConnectionState::Connecting,
                logged_in: false,
                ended: false,
                reconnecting_ms: 0,
                left: false,
                ready: false,
                rooms: rooms
                    .iter()
                    .map(|&room| RoomTrack {
                        room,
                        state: RoomState::Disconnected,
                        entered: false,
                        failed: false,
                        interrupted_ms: 0,
                        t2: T2::StillMember,
                    })
                    .collect(),
            });
        }
    }

    fn tick(&mut self, ts_ms: u64) -> &mut Tick {
        self.out.timeline.entry(ts_ms / 1000).or_default()
    }

    fn error(&mut self, ts_ms: u64, ext: &serde_json::Value) {
        if let Some(code) = ext_code(ext) {
            *self.out.errors.entry(code).or_default() += 1;
            *self
                .out
                .errors_by_sec
                .entry(ts_ms / 1000)
                .or_default()
                .entry(code)
                .or_default() += 1;
        }
    }

    /// The account in `slot` is being logged out by a ramp down: counted once, settled, and
    /// its later events ignored.
    pub fn departed(&mut self, slot: u32, ts_ms: u64) {
        let Some(Some(acct)) = self.accounts.get_mut(slot as usize) else {
            return;
        };
        if acct.left {
            return;
        }
        let (was_full, was_settled) = (acct.full(), acct.settled());
        acct.left = true;
        acct.ended = true;
        if was_full {
            self.fully_connected -= 1;
        }
        if !was_settled {
            self.settled += 1;
        }
        self.out.counts.logouts += 1;
        self.tick(ts_ms).logouts += 1;
    }

    /// Whether the account in `slot` is Connected with every room Connected.
    pub fn is_full(&self, slot: u32) -> bool {
        self.accounts
            .get(slot as usize)
            .and_then(Option::as_ref)
            .is_some_and(AccountTrack::full)
    }

    /// Whether `user_id` was logged out by a ramp down.
    pub fn has_left(&self, user_id: &str) -> bool {
        self.slots
            .get(user_id)
            .and_then(|&slot| self.accounts.get(slot as usize))
            .and_then(Option::as_ref)
            .is_some_and(|a| a.left)
    }

    /// Samples the accounts by state into the second of `ts_ms`.
    pub fn sample(&mut self, ts_ms: u64) {
        let s = self.states();
        let t = self.tick(ts_ms);
        (t.connected, t.reconnecting, t.other) = (s.connected, s.reconnecting, s.other);
    }

    /// Applies one event.
    pub fn apply(&mut self, ev: &Event) {
        let Some(&slot) = self.slots.get(ev.account.as_str()) else {
            return;
        };
        let Some(Some(acct)) = self.accounts.get_mut(slot as usize) else {
            return;
        };
        if acct.left {
            return;
        }
        let was = (acct.full(), acct.settled());
        let ts = ev.ts_ms;
        let effect = match &ev.kind {
            EventKind::Connection { state, event, ext } => {
                connection_effect(acct, ts, *state, *event, ext)
            }
            EventKind::Room {
                room_id,
                state,
                event,
                ext,
            } => {
                let Some(&room) = self.rooms.get(room_id.as_str()) else {
                    return;
                };
                let Some(r) = acct.rooms.iter_mut().find(|r| r.room == room) else {
                    return;
                };
                room_effect(r, ts, *state, *event, ext)
            }
            EventKind::RoomGaveUp { .. } => Effect::RoomGaveUp,
            EventKind::RoomIncarnationChanged { .. } => Effect::RoomIncarnationChanged,
            _ => Effect::None,
        };
        self.settle_counts(slot, was, ts);
        self.count(effect, ts);
    }

    /// Keeps `settled`, `fully_connected` and the ready list right after an account changed.
    fn settle_counts(&mut self, slot: u32, (was_full, was_settled): (bool, bool), ts: u64) {
        let Some(Some(acct)) = self.accounts.get_mut(slot as usize) else {
            return;
        };
        let now_settled = acct.settled();
        if now_settled && !acct.ready && !acct.ended {
            acct.ready = true;
            self.newly_ready.push(slot);
        }
        match (was_settled, now_settled) {
            (false, true) => self.settled += 1,
            (true, false) => self.settled -= 1,
            _ => {}
        }
        let now_full = acct.full();
        match (was_full, now_full) {
            (false, true) => {
                self.fully_connected += 1;
                if self.fully_connected >= self.target && self.all_connected_ms == 0 {
                    self.all_connected_ms = ts;
                }
            }
            (true, false) => self.fully_connected -= 1,
            _ => {}
        }
    }

    /// Counts what an event did.
    fn count(&mut self, effect: Effect, ts: u64) {
        match effect {
            Effect::None => {}
            Effect::Login => {
                self.out.counts.logins_ok += 1;
                self.tick(ts).logins += 1;
            }
            Effect::Reconnected(ms) => {
                self.out.counts.reconnects += 1;
                self.out.histograms.reconnect.record_us(ms * 1000);
                self.tick(ts).reconnects += 1;
            }
            Effect::Disconnected => {
                self.out.counts.disconnects += 1;
                self.tick(ts).disconnects += 1;
            }
            Effect::Ended { before_login, ext } => {
                if before_login {
                    self.out.counts.logins_failed += 1;
                }
                self.error(ts, &ext);
            }
            Effect::RoomEntered => {
                self.out.counts.room_entries_ok += 1;
                self.tick(ts).room_entries += 1;
            }
            Effect::RoomBack(t2, ms) => {
                let (count, hist): (&mut u64, &mut Hist) = match t2 {
                    T2::StillMember => (
                        &mut self.out.counts.room_recovered_member,
                        &mut self.out.histograms.room_recovery_member,
                    ),
                    T2::ConnectTimeout => (
                        &mut self.out.counts.room_recovered_after_connect_timeout,
                        &mut self.out.histograms.room_recovery_after_connect_timeout,
                    ),
                    T2::RoomNotExist => (
                        &mut self.out.counts.room_recovered_after_room_not_exist,
                        &mut self.out.histograms.room_recovery_after_room_not_exist,
                    ),
                };
                *count += 1;
                hist.record_us(ms * 1000);
            }
            Effect::RoomEntryFailed(ext) => {
                self.out.counts.room_entries_failed += 1;
                self.error(ts, &ext);
            }
            Effect::RoomGaveUp => self.out.counts.room_gave_up += 1,
            Effect::RoomIncarnationChanged => self.out.counts.room_incarnations_changed += 1,
        }
    }

    /// Accounts now, by state.
    pub fn states(&self) -> States {
        let mut c = States::default();
        for a in self.accounts.iter().flatten() {
            match a.state {
                _ if a.left => c.left += 1,
                ConnectionState::Connected => c.connected += 1,
                ConnectionState::Reconnecting => c.reconnecting += 1,
                _ => c.other += 1,
            }
        }
        c
    }
}

/// What a connection event does to an account.
fn connection_effect(
    acct: &mut AccountTrack,
    ts: u64,
    state: ConnectionState,
    event: ConnectionEvent,
    ext: &serde_json::Value,
) -> Effect {
    acct.state = state;
    let mut effect = Effect::None;
    match (&state, &event) {
        (ConnectionState::Connected, _) => {
            if !acct.logged_in {
                acct.logged_in = true;
                effect = Effect::Login;
            } else if acct.reconnecting_ms > 0 {
                effect = Effect::Reconnected(ts.saturating_sub(acct.reconnecting_ms));
                acct.reconnecting_ms = 0;
            }
        }
        (ConnectionState::Reconnecting, _) if acct.reconnecting_ms == 0 => {
            acct.reconnecting_ms = ts.max(1);
            effect = Effect::Disconnected;
        }
        (ConnectionState::Disconnected, event) => {
            acct.reconnecting_ms = 0;
            if !acct.ended && *event != ConnectionEvent::Success {
                acct.ended = true;
                effect = Effect::Ended {
                    before_login: !acct.logged_in,
                    ext: ext.clone(),
                };
            }
        }
        _ => {}
    }
    effect
}

/// What a room event does to one of an account's rooms.
fn room_effect(
    r: &mut RoomTrack,
    ts: u64,
    state: RoomState,
    event: RoomEvent,
    ext: &serde_json::Value,
) -> Effect {
    r.state = state;
    let mut effect = Effect::None;
    match (state, event) {
        (RoomState::Connected, _) => {
            if !r.entered {
                r.entered = true;
                r.failed = false;
                effect = Effect::RoomEntered;
            } else if r.interrupted_ms > 0 {
                effect = Effect::RoomBack(r.t2, ts.saturating_sub(r.interrupted_ms));
                r.interrupted_ms = 0;
                r.t2 = T2::StillMember;
            }
        }
        (RoomState::Connecting, RoomEvent::NetworkInterrupted) if r.interrupted_ms == 0 => {
            r.interrupted_ms = ts.max(1);
            r.t2 = T2::StillMember;
        }
        (RoomState::Disconnected, RoomEvent::ConnectTimeout) if r.interrupted_ms > 0 => {
            r.t2 = T2::ConnectTimeout;
        }
        (RoomState::Disconnected, RoomEvent::RoomNotExist) if r.interrupted_ms > 0 => {
            r.t2 = T2::RoomNotExist;
        }
        (RoomState::Disconnected, _) if !r.entered => {
            r.failed = true;
            effect = Effect::RoomEntryFailed(ext.clone());
        }
        _ => {}
    }
    effect
}

enum Effect {
    None,
    Login,
    Reconnected(u64),
    Disconnected,
    Ended {
        before_login: bool,
        ext: serde_json::Value,
    },
    RoomEntered,
    RoomBack(T2, u64),
    RoomEntryFailed(serde_json::Value),
    RoomGaveUp,
    RoomIncarnationChanged,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(ts_ms: u64, state: ConnectionState, event: ConnectionEvent) -> Event {
        Event {
            ts_ms,
            account: "a".into(),
            kind: EventKind::Connection {
                state,
                event,
                ext: json!({}),
            },
        }
    }

    fn room(ts_ms: u64, state: RoomState, event: RoomEvent) -> Event {
        Event {
            ts_ms,
            account: "a".into(),
            kind: EventKind::Room {
                room_id: "r".into(),
                state,
                event,
                ext: json!({}),
            },
        }
    }

    fn tracker() -> Tracker {
        let mut t = Tracker::new(
            HashMap::from([("a".to_string(), 0)]),
            HashMap::from([("r".to_string(), 0)]),
            1,
        );
        t.added(0, &[0]);
        t
    }

    #[test]
    fn login_room_drop_and_recovery_by_t2_outcome() {
        use ConnectionEvent as CE;
        use ConnectionState as CS;
        let mut t = tracker();
        t.apply(&conn(1_000, CS::Connecting, CE::ActiveLogin));
        t.apply(&conn(1_010, CS::Connected, CE::Success));
        assert_eq!(t.fully_connected, 0);
        t.apply(&room(1_020, RoomState::Connecting, RoomEvent::ActiveEnter));
        t.apply(&room(1_030, RoomState::Connected, RoomEvent::Success));
        assert_eq!((t.fully_connected, t.all_connected_ms), (1, 1_030));
        // T0 .. T2 says ConnectTimeout, then the room is joined again.
        t.apply(&conn(2_000, CS::Reconnecting, CE::LoginInterrupted));
        t.apply(&room(
            2_000,
            RoomState::Connecting,
            RoomEvent::NetworkInterrupted,
        ));
        assert_eq!(t.fully_connected, 0);
        t.apply(&conn(2_300, CS::Connected, CE::Success));
        t.apply(&room(
            2_310,
            RoomState::Disconnected,
            RoomEvent::ConnectTimeout,
        ));
        t.apply(&room(2_320, RoomState::Connecting, RoomEvent::ActiveEnter));
        t.apply(&room(2_400, RoomState::Connected, RoomEvent::Success));
        assert_eq!(t.fully_connected, 1);
        let c = &t.out.counts;
        assert_eq!((c.logins_ok, c.room_entries_ok), (1, 1));
        assert_eq!((c.disconnects, c.reconnects), (1, 1));
        assert_eq!(c.room_recovered_after_connect_timeout, 1);
        assert_eq!(c.room_recovered_member, 0);
        let h = &t.out.histograms;
        assert!(h.reconnect.0.equivalent(h.reconnect.0.max(), 300_000));
        assert!(h
            .room_recovery_after_connect_timeout
            .0
            .equivalent(h.room_recovery_after_connect_timeout.0.max(), 400_000));
        assert_eq!(t.out.timeline[&1].logins, 1);
        assert_eq!(t.out.timeline[&2].reconnects, 1);
        assert_eq!(
            t.states(),
            States {
                connected: 1,
                ..States::default()
            }
        );
        t.departed(0, 3_000);
        t.apply(&conn(3_010, CS::Disconnected, CE::Success));
        assert_eq!((t.settled, t.fully_connected), (1, 0));
        assert_eq!(t.out.counts.logouts, 1);
        assert_eq!(t.out.timeline[&3].logouts, 1);
        assert_eq!(t.states().left, 1);
    }

    #[test]
    fn a_room_whose_first_entry_failed_settles_the_account() {
        let mut t = tracker();
        t.apply(&conn(
            1,
            ConnectionState::Connected,
            ConnectionEvent::Success,
        ));
        assert_eq!(t.settled, 0);
        t.apply(&room(2, RoomState::Connecting, RoomEvent::ActiveEnter));
        t.apply(&Event {
            ts_ms: 3,
            account: "a".into(),
            kind: EventKind::Room {
                room_id: "r".into(),
                state: RoomState::Disconnected,
                event: RoomEvent::NetworkDisconnected,
                ext: json!({"code": 6000105}),
            },
        });
        assert_eq!((t.settled, t.fully_connected), (1, 0));
        assert_eq!(t.out.counts.room_entries_failed, 1);
        assert_eq!(t.out.errors[&6000105], 1);
    }

    #[test]
    fn rejected_login_counts_its_code() {
        let mut t = tracker();
        t.apply(&Event {
            ts_ms: 5,
            account: "a".into(),
            kind: EventKind::Connection {
                state: ConnectionState::Disconnected,
                event: ConnectionEvent::LoginInterrupted,
                ext: json!({"code": 6000103, "message": "token invalid"}),
            },
        });
        assert_eq!(t.out.counts.logins_failed, 1);
        assert_eq!(t.out.errors[&6000103], 1);
        assert_eq!((t.settled, t.fully_connected), (1, 0));
        assert_eq!(t.states().other, 1);
        assert_eq!(t.out.errors_by_sec[&0][&6000103], 1);
    }
}
