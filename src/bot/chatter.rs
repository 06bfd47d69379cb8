//! `chatter`: posts into its rooms at a steady rate while each room is Connected; the
//! load behaviour. Each account and room starts at a random point of the first period, so
//! many chatter accounts do not all post in the same millisecond.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

use crate::bot::pacer::Pacer;
use crate::bot::settings::{fill, room_selected, CheckSettings};
use crate::bot::ticker::RoomTicker;
use crate::bot::Bot;
use crate::client::AccountHandle;
use crate::protocol::{ConnectionEvent, ConnectionState, RoomEvent, RoomState};

/// `[settings]` of a chatter bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatterSettings {
    /// Posts per second, per account and room (at most 8: ZIM allows one send per 100 ms per
    /// conversation, and bots keep a margin).
    pub rate_per_sec: f64,
    /// The text; `{n}`, `{user_id}` and `{room_id}` are filled in.
    #[serde(default = "default_text")]
    pub text: String,
    /// Rooms it posts in; empty = every room it is in.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Stop after this many posts per room; 0 = never stop.
    #[serde(default)]
    pub limit: u64,
}

/// Highest chatter rate per account and room: one post per
/// [`SEND_SPACING`](crate::bot::pacer::SEND_SPACING).
pub const MAX_RATE: f64 = 8.0;

fn default_text() -> String {
    "chatter #{n} from {user_id}".into()
}

impl CheckSettings for ChatterSettings {
    fn check(&self) -> Result<(), String> {
        if !(self.rate_per_sec > 0.0 && self.rate_per_sec <= MAX_RATE) {
            return Err(format!(
                "rate_per_sec must be above 0 and at most {MAX_RATE}, not {}",
                self.rate_per_sec
            ));
        }
        Ok(())
    }
}

/// The `chatter` behaviour.
pub struct Chatter {
    settings: Arc<ChatterSettings>,
    ticker: RoomTicker,
}

impl Chatter {
    /// The behaviour with these settings.
    pub fn new(settings: ChatterSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            ticker: RoomTicker::default(),
        }
    }

    /// Posts through `pacer` (the registry's, which knows when to go quiet).
    pub(crate) fn paced(mut self, pacer: Pacer) -> Self {
        self.ticker = RoomTicker::new(pacer);
        self
    }

    fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.settings.rate_per_sec)
    }
}

impl Bot for Chatter {
    fn on_room_state(
        &self,
        account: &AccountHandle,
        room_id: &str,
        state: RoomState,
        _event: RoomEvent,
        _ext: &serde_json::Value,
    ) {
        if !room_selected(&self.settings.rooms, room_id) {
            return;
        }
        let period = self.period();
        let offset = period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        let settings = Arc::clone(&self.settings);
        self.ticker.on_room_state(
            account,
            room_id,
            state,
            Arc::new(move |tick| if tick == 1 { offset } else { period }),
            Arc::new(move |account, room_id, n| {
                if settings.limit != 0 && n > settings.limit {
                    return None;
                }
                Some(fill(
                    &settings.text,
                    &[
                        ("n", &n.to_string()),
                        ("user_id", account.user_id()),
                        ("room_id", room_id),
                    ],
                ))
            }),
        );
    }

    fn on_connection_state(
        &self,
        account: &AccountHandle,
        state: ConnectionState,
        _event: ConnectionEvent,
        _ext: &serde_json::Value,
    ) {
        if state == ConnectionState::Disconnected {
            self.ticker.account_ended(account);
        }
    }

    fn on_attached(&self, account: &AccountHandle, status: &crate::client::AccountStatus) {
        for room in &status.rooms {
            if room.state == RoomState::Connected {
                let ext = serde_json::Value::Null;
                self.on_room_state(account, &room.room_id, room.state, room.last_event, &ext);
            }
        }
    }

    fn on_detached(&self, account: &AccountHandle) {
        self.ticker.account_ended(account);
    }
}
