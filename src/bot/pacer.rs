//! Spacing of a bot's sends per conversation, and the switch that makes bots go quiet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::AccountHandle;

/// A switch that makes the built-in behaviours stop posting (the runner turns it on when it
/// starts shutting down, so no post races the logout). Clones share the switch.
#[derive(Debug, Clone, Default)]
pub struct Quiet(Arc<std::sync::atomic::AtomicBool>);

impl Quiet {
    /// From now on the bots stop posting.
    pub fn turn_on(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// Whether the bots stopped posting.
    pub fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Least time between two sends of one account into one conversation. ZIM refuses sends
/// closer than 100 ms (6000004); the margin absorbs scheduling jitter on the way out.
pub const SEND_SPACING: Duration = Duration::from_millis(120);
/// Sends one conversation may have waiting; beyond it a bot's send is dropped and logged.
const MAX_WAITING: usize = 32;
/// Above this many tracked conversations, idle ones are forgotten.
const PACER_TRACKED: usize = 4096;

/// (user id, is peer, conversation id); the pacer keeps (earliest time of the next send,
/// sends waiting) for each.
type PacedConversation = (String, bool, String);

/// Spaces a bot's sends per (account, conversation) by [`SEND_SPACING`], so a burst of
/// replies (two greetings at once, a relay of a busy room) goes out instead of being refused.
/// Bounded: at most [`MAX_WAITING`] sends wait per conversation.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    next: Arc<Mutex<HashMap<PacedConversation, (Instant, usize)>>>,
    pub(crate) quiet: Quiet,
}

impl Pacer {
    pub(crate) fn new(quiet: Quiet) -> Self {
        Self {
            next: Arc::default(),
            quiet,
        }
    }

    /// Posts a text into a room, now or as soon as the spacing allows.
    pub(crate) fn room(&self, account: &AccountHandle, room_id: &str, text: String) {
        self.post(account, false, room_id, text);
    }

    /// Posts a text to a user, now or as soon as the spacing allows.
    pub(crate) fn peer(&self, account: &AccountHandle, user_id: &str, text: String) {
        self.post(account, true, user_id, text);
    }

    fn post(&self, account: &AccountHandle, peer: bool, conv: &str, text: String) {
        if self.quiet.is_on() {
            return;
        }
        let key = (account.user_id().to_string(), peer, conv.to_string());
        let Some(delay) = self.reserve(&key, Instant::now()) else {
            tracing::warn!(account = %key.0, conversation = %conv, "bot send dropped: {MAX_WAITING} sends already wait for this conversation");
            return;
        };
        if delay.is_zero() {
            send(account, peer, conv, text);
            return;
        }
        let next = Arc::clone(&self.next);
        let quiet = self.quiet.clone();
        let account = account.clone();
        actix::spawn(async move {
            tokio::time::sleep(delay).await;
            if !quiet.is_on() {
                send(&account, key.1, &key.2, text);
            }
            if let Some(entry) = lock(&next).get_mut(&key) {
                entry.1 = entry.1.saturating_sub(1);
            }
        });
    }

    /// Reserves the next send slot of `key`: how long to wait for it, or None when too many
    /// already wait.
    fn reserve(&self, key: &PacedConversation, now: Instant) -> Option<Duration> {
        let mut next = lock(&self.next);
        if next.len() > PACER_TRACKED {
            next.retain(|_, (at, waiting)| *at > now || *waiting > 0);
        }
        let entry = next.entry(key.clone()).or_insert((now, 0));
        let at = entry.0.max(now);
        let delay = at - now;
        if !delay.is_zero() {
            if entry.1 >= MAX_WAITING {
                return None;
            }
            entry.1 += 1;
        }
        entry.0 = at + SEND_SPACING;
        Some(delay)
    }
}

fn send(account: &AccountHandle, peer: bool, conv: &str, text: String) {
    if peer {
        account.post_peer_text(conv, text);
    } else {
        account.post_room_text(conv, text);
    }
}

/// A poisoned lock only means a handler panicked mid-update; the map is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_spaces_sends_per_conversation_and_bounds_the_wait() {
        let pacer = Pacer::default();
        let now = Instant::now();
        let room = ("u".to_string(), false, "r".to_string());
        let other = ("u".to_string(), false, "r2".to_string());
        assert_eq!(pacer.reserve(&room, now), Some(Duration::ZERO));
        assert_eq!(pacer.reserve(&room, now), Some(SEND_SPACING));
        assert_eq!(pacer.reserve(&room, now), Some(SEND_SPACING * 2));
        assert_eq!(pacer.reserve(&other, now), Some(Duration::ZERO));
        for _ in 2..MAX_WAITING {
            assert!(pacer.reserve(&room, now).is_some());
        }
        assert_eq!(pacer.reserve(&room, now), None);
        // Long after, the conversation sends at once again.
        let later = now + SEND_SPACING * (MAX_WAITING as u32 + 2);
        assert_eq!(pacer.reserve(&room, later), Some(Duration::ZERO));
    }
}
