//! The board: every account as the admin face sees it, kept from the fleet's event stream
//! (state, last event, since when, rooms, why it ended), so the console can page, filter and
//! count 19,000 accounts without asking each account actor. Pure: events in, views out.
//!
//! When the stream lost events (lag), the board is rebuilt from `Fleet::status()`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::{AccountStatus, Event, EventKind};
use crate::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};

/// Most rows one page answers.
pub const PAGE_MAX: usize = 500;

/// One account on the board.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    state: ConnectionState,
    last_event: ConnectionEvent,
    since_ms: u64,
    ended: Option<String>,
    rooms: Vec<RoomRow>,
}

/// One room of an account.
#[derive(Debug, Clone, PartialEq)]
struct RoomRow {
    room_id: String,
    state: RoomState,
    last_event: RoomEvent,
    since_ms: u64,
}

/// Accounts by connection state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every account on the board.
    pub total: u64,
    /// ZIM state 0.
    pub disconnected: u64,
    /// ZIM state 1.
    pub connecting: u64,
    /// ZIM state 2.
    pub connected: u64,
    /// ZIM state 3.
    pub reconnecting: u64,
}

/// What a page of the accounts table asks for (the query string of GET /api/accounts).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    /// Only accounts in this ZIM connection state (0-3).
    pub state: Option<i32>,
    /// Only accounts whose user id or one of whose room ids contains this text.
    pub q: Option<String>,
    /// Rows to skip.
    #[serde(default)]
    pub offset: usize,
    /// Rows to answer (at most [`PAGE_MAX`]; default 100).
    pub limit: Option<usize>,
}

/// One page of the accounts table.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// Counts over the whole board.
    pub counts: Counts,
    /// Accounts that match the query.
    pub matched: usize,
    /// The offset this page starts at.
    pub offset: usize,
    /// The rows.
    pub accounts: Vec<AccountView>,
}

/// One account in a page (ZIM integers with their names beside them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    /// The user id.
    pub user_id: String,
    /// ZIMConnectionState.
    pub state: i32,
    /// Its name.
    pub state_name: &'static str,
    /// ZIMConnectionEvent of the last change.
    pub last_event: i32,
    /// Its name.
    pub last_event_name: &'static str,
    /// Unix milliseconds of the last change.
    pub since_ms: u64,
    /// Why the account ended, when it has.
    pub ended: Option<String>,
    /// Its rooms.
    pub rooms: Vec<RoomView>,
}

/// One room of an account in a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomView {
    /// The room id.
    pub room_id: String,
    /// ZIMRoomState.
    pub state: i32,
    /// Its name.
    pub state_name: &'static str,
    /// ZIMRoomEvent of the last change.
    pub last_event: i32,
    /// Its name.
    pub last_event_name: &'static str,
    /// Unix milliseconds of the last change.
    pub since_ms: u64,
}

/// A fleet account in a room, as the board sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomAccount {
    /// The user id.
    pub user_id: String,
    /// The account's ZIMConnectionState.
    pub state: i32,
    /// The account's ZIMRoomState in this room.
    pub room_state: i32,
    /// Its name.
    pub room_state_name: &'static str,
}

/// Every account the admin face has seen, sorted by user id.
#[derive(Debug, Default)]
pub struct Board {
    rows: BTreeMap<String, Row>,
}

impl From<&AccountStatus> for Row {
    fn from(a: &AccountStatus) -> Self {
        Row {
            state: a.state,
            last_event: a.last_event,
            since_ms: a.since_ms,
            ended: a.ended.clone().or_else(|| ended_by(a.state, a.last_event)),
            rooms: a
                .rooms
                .iter()
                .map(|r| RoomRow {
                    room_id: r.room_id.clone(),
                    state: r.state,
                    last_event: r.last_event,
                    since_ms: r.since_ms,
                })
                .collect(),
        }
    }
}

impl From<&AccountStatus> for AccountView {
    fn from(a: &AccountStatus) -> Self {
        view(&a.user_id, &Row::from(a))
    }
}

/// Why an account ended, from the event that ended it, until the account's own record (the
/// client's words, see [`Board::set_ended`]) replaces it.
fn ended_by(state: ConnectionState, event: ConnectionEvent) -> Option<String> {
    if state != ConnectionState::Disconnected {
        return None;
    }
    Some(match event {
        ConnectionEvent::Success => "logout".to_string(),
        other => format!("{}({})", other.name(), other.as_i32()),
    })
}

impl Board {
    /// Applies one event of the fleet's stream.
    pub fn apply(&mut self, event: &Event) {
        let row = self
            .rows
            .entry(event.account.clone())
            .or_insert_with(|| Row {
                state: ConnectionState::Connecting,
                last_event: ConnectionEvent::Success,
                since_ms: event.ts_ms,
                ended: None,
                rooms: Vec::new(),
            });
        match &event.kind {
            EventKind::Connection {
                state, event: e, ..
            } => {
                row.state = *state;
                row.last_event = *e;
                row.since_ms = event.ts_ms;
                row.ended = ended_by(*state, *e);
            }
            EventKind::Room {
                room_id,
                state,
                event: e,
                ..
            } => {
                let room = match row.rooms.iter_mut().position(|r| &r.room_id == room_id) {
                    Some(i) => &mut row.rooms[i],
                    None => {
                        row.rooms.push(RoomRow {
                            room_id: room_id.clone(),
                            state: *state,
                            last_event: *e,
                            since_ms: event.ts_ms,
                        });
                        return;
                    }
                };
                room.state = *state;
                room.last_event = *e;
                room.since_ms = event.ts_ms;
            }
            _ => {}
        }
    }

    /// Records why an account ended, as the account itself says.
    pub fn set_ended(&mut self, user_id: &str, ended: Option<String>) {
        if let Some(row) = self.rows.get_mut(user_id) {
            if row.state == ConnectionState::Disconnected && ended.is_some() {
                row.ended = ended;
            }
        }
    }

    /// Whether every account is Connected and in every room it keeps (accounts that ended
    /// count too: a fleet with an ended account is not ready).
    pub fn ready(&self) -> bool {
        !self.rows.is_empty()
            && self.rows.values().all(|row| {
                row.state == ConnectionState::Connected
                    && row.rooms.iter().all(|r| r.state == RoomState::Connected)
            })
    }

    /// Replaces the board with the fleet's own view (after lost events).
    pub fn resync(&mut self, statuses: &[AccountStatus]) {
        self.rows = statuses
            .iter()
            .map(|a| (a.user_id.clone(), Row::from(a)))
            .collect();
    }

    /// Accounts by state.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            total: self.rows.len() as u64,
            ..Counts::default()
        };
        for row in self.rows.values() {
            match row.state {
                ConnectionState::Disconnected => c.disconnected += 1,
                ConnectionState::Connecting => c.connecting += 1,
                ConnectionState::Connected => c.connected += 1,
                ConnectionState::Reconnecting => c.reconnecting += 1,
                ConnectionState::Unknown(_) => {}
            }
        }
        c
    }

    /// One page of the accounts that match `query`, in user id order.
    pub fn page(&self, query: &Query) -> Page {
        let needle = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        let matches = |(user_id, row): &(&String, &Row)| {
            query.state.is_none_or(|s| row.state.as_i32() == s)
                && needle.is_none_or(|q| {
                    user_id.contains(q) || row.rooms.iter().any(|r| r.room_id.contains(q))
                })
        };
        let limit = query.limit.unwrap_or(100).min(PAGE_MAX);
        let mut matched = 0;
        let mut accounts = Vec::new();
        for entry in self.rows.iter().filter(matches) {
            if matched >= query.offset && accounts.len() < limit {
                accounts.push(view(entry.0, entry.1));
            }
            matched += 1;
        }
        Page {
            counts: self.counts(),
            matched,
            offset: query.offset,
            accounts,
        }
    }

    /// Every room id some account keeps, with how many accounts are in it (room state
    /// Connected) and how many keep it.
    pub fn rooms(&self) -> Vec<(String, usize, usize)> {
        let mut rooms: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for row in self.rows.values() {
            for room in &row.rooms {
                let entry = rooms.entry(&room.room_id).or_default();
                entry.1 += 1;
                if room.state == RoomState::Connected {
                    entry.0 += 1;
                }
            }
        }
        rooms
            .into_iter()
            .map(|(id, (inside, keeping))| (id.to_string(), inside, keeping))
            .collect()
    }

    /// The fleet's accounts that keep `room_id`, in user id order.
    pub fn room_accounts(&self, room_id: &str) -> Vec<RoomAccount> {
        self.rows
            .iter()
            .filter_map(|(user_id, row)| {
                let room = row.rooms.iter().find(|r| r.room_id == room_id)?;
                Some(RoomAccount {
                    user_id: user_id.clone(),
                    state: row.state.as_i32(),
                    room_state: room.state.as_i32(),
                    room_state_name: room.state.name(),
                })
            })
            .collect()
    }
}

fn view(user_id: &str, row: &Row) -> AccountView {
    AccountView {
        user_id: user_id.to_string(),
        state: row.state.as_i32(),
        state_name: row.state.name(),
        last_event: row.last_event.as_i32(),
        last_event_name: row.last_event.name(),
        since_ms: row.since_ms,
        ended: row.ended.clone(),
        rooms: row
            .rooms
            .iter()
            .map(|r| RoomView {
                room_id: r.room_id.clone(),
                state: r.state.as_i32(),
                state_name: r.state.name(),
                last_event: r.last_event.as_i32(),
                last_event_name: r.last_event.name(),
                since_ms: r.since_ms,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(ts: u64, account: &str, state: i32, event: i32) -> Event {
        Event {
            ts_ms: ts,
            account: account.into(),
            kind: EventKind::Connection {
                state: state.into(),
                event: event.into(),
                ext: serde_json::json!({}),
            },
        }
    }

    fn room(ts: u64, account: &str, room_id: &str, state: i32, event: i32) -> Event {
        Event {
            ts_ms: ts,
            account: account.into(),
            kind: EventKind::Room {
                room_id: room_id.into(),
                state: state.into(),
                event: event.into(),
                ext: serde_json::json!({}),
            },
        }
    }

    /// An account's (state, last event, since, ended).
    type Seen<'a> = (i32, i32, u64, Option<&'a str>);

    /// Row by row: the event, then what the account shows.
    #[test]
    fn each_event_moves_its_account() {
        let rows: &[(Event, Seen)] = &[
            (conn(1, "a", 1, 0), (1, 0, 1, None)),
            (conn(2, "a", 2, 0), (2, 0, 2, None)),
            (conn(3, "a", 3, 3), (3, 3, 3, None)),
            (conn(4, "a", 2, 0), (2, 0, 4, None)),
            (conn(5, "a", 0, 4), (0, 4, 5, Some("KickedOut(4)"))),
            (conn(6, "b", 0, 0), (0, 0, 6, Some("logout"))),
        ];
        let mut board = Board::default();
        for (event, (state, last, since, ended)) in rows {
            board.apply(event);
            let page = board.page(&Query {
                q: Some(event.account.clone()),
                ..Query::default()
            });
            let a = &page.accounts[0];
            assert_eq!(
                (a.state, a.last_event, a.since_ms, a.ended.as_deref()),
                (*state, *last, *since, *ended),
                "after {event:?}"
            );
        }
        assert_eq!(
            board.page(&Query::default()).accounts[0].state_name,
            "Disconnected"
        );
    }

    #[test]
    fn rooms_keep_their_own_state_and_the_counts_add_up() {
        let mut board = Board::default();
        for e in [
            conn(1, "a", 2, 0),
            conn(1, "b", 2, 0),
            conn(1, "c", 3, 3),
            room(2, "a", "lobby", 1, 6),
            room(3, "a", "lobby", 2, 0),
            room(3, "b", "lobby", 1, 6),
            room(4, "b", "echo", 2, 0),
        ] {
            board.apply(&e);
        }
        assert_eq!(
            board.counts(),
            Counts {
                total: 3,
                disconnected: 0,
                connecting: 0,
                connected: 2,
                reconnecting: 1
            }
        );
        assert!(!board.ready(), "c is reconnecting, b's room is connecting");
        board.apply(&conn(5, "c", 2, 0));
        board.apply(&room(5, "b", "lobby", 2, 0));
        assert!(board.ready());
        board.apply(&room(6, "b", "lobby", 1, 1));
        assert!(!board.ready());
        board.apply(&room(7, "b", "lobby", 1, 6));
        assert_eq!(
            board.rooms(),
            vec![("echo".into(), 1, 1), ("lobby".into(), 1, 2)]
        );
        let lobby = board.room_accounts("lobby");
        assert_eq!(lobby.len(), 2);
        assert_eq!(
            (lobby[0].room_state, lobby[0].room_state_name),
            (2, "Connected")
        );
        assert_eq!(
            (lobby[1].room_state, lobby[1].room_state_name),
            (1, "Connecting")
        );
        let a = &board.page(&Query::default()).accounts[0];
        assert_eq!(
            a.rooms,
            vec![RoomView {
                room_id: "lobby".into(),
                state: 2,
                state_name: "Connected",
                last_event: 0,
                last_event_name: "Success",
                since_ms: 3
            }]
        );
    }

    #[test]
    fn pages_filter_search_and_stay_bounded() {
        let mut board = Board::default();
        for n in 0..1000 {
            board.apply(&conn(
                1,
                &format!("u{n:04}"),
                if n % 10 == 0 { 3 } else { 2 },
                0,
            ));
        }
        board.apply(&room(2, "u0007", "lobby", 2, 0));
        let all = board.page(&Query::default());
        assert_eq!((all.matched, all.accounts.len()), (1000, 100));
        assert_eq!(all.accounts[0].user_id, "u0000");
        let reconnecting = board.page(&Query {
            state: Some(3),
            offset: 90,
            limit: Some(50),
            ..Query::default()
        });
        assert_eq!(
            (reconnecting.matched, reconnecting.accounts.len()),
            (100, 10)
        );
        assert_eq!(reconnecting.accounts[0].user_id, "u0900");
        let huge = board.page(&Query {
            limit: Some(10_000),
            ..Query::default()
        });
        assert_eq!(huge.accounts.len(), PAGE_MAX);
        let by_room = board.page(&Query {
            q: Some("lobby".into()),
            ..Query::default()
        });
        assert_eq!(by_room.matched, 1);
        assert_eq!(by_room.accounts[0].user_id, "u0007");
        assert_eq!(all.counts.reconnecting, 100);
    }

    #[test]
    fn a_resync_replaces_the_board_with_the_fleets_view() {
        let mut board = Board::default();
        board.apply(&conn(1, "gone", 2, 0));
        board.resync(&[AccountStatus {
            user_id: "k".into(),
            state: ConnectionState::Disconnected,
            last_event: ConnectionEvent::TokenExpired,
            since_ms: 9,
            ended: None,
            rooms: Vec::new(),
        }]);
        let page = board.page(&Query::default());
        assert_eq!(page.matched, 1);
        assert_eq!(page.accounts[0].ended.as_deref(), Some("TokenExpired(5)"));
    }
}
