//! The token clock of one account (docs/zim-semantics.md, "Tokens"): when to warn
//! (onTokenWillExpire, `renew_ahead` before expiry, once per expiry), when to end without a
//! renewal (`expire_margin` before expiry: (Disconnected, TokenExpired)), and which token a
//! re-login carries. Pure arithmetic over Unix milliseconds passed in; the account actor owns
//! one and sets its timers from it.

use std::time::Duration;

/// When the timers of one expiry fire, from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimers {
    /// onTokenWillExpire is due in this long (0: at once).
    pub warn_in: Duration,
    /// Without a renewal the account ends in this long.
    pub end_in: Duration,
}

/// One account's token expiry and what already fired for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClock {
    renew_ahead_ms: i64,
    margin_ms: i64,
    /// Unix seconds; 0 before the first login.
    expire_at: i64,
    /// The expiry for which onTokenWillExpire already fired.
    warned_for: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn until(t: i64, now_ms: i64) -> Duration {
    Duration::from_millis(t.saturating_sub(now_ms).max(0) as u64)
}

impl TokenClock {
    /// A clock that warns `renew_ahead` and ends `expire_margin` before each expiry.
    pub fn new(renew_ahead: Duration, expire_margin: Duration) -> Self {
        Self {
            renew_ahead_ms: ms(renew_ahead),
            margin_ms: ms(expire_margin),
            expire_at: 0,
            warned_for: 0,
        }
    }

    /// The current expiry, Unix seconds (0: none yet).
    pub fn expire_at(&self) -> i64 {
        self.expire_at
    }

    /// A new expiry (from a login or renew_token reply, Unix seconds, as the server says:
    /// no arithmetic on it may overflow). Answers when its two timers fire.
    pub fn set(&mut self, expire_at: i64, now_ms: i64) -> TokenTimers {
        self.expire_at = expire_at;
        let expire_ms = expire_at.saturating_mul(1000);
        TokenTimers {
            warn_in: until(expire_ms.saturating_sub(self.renew_ahead_ms), now_ms),
            end_in: until(expire_ms.saturating_sub(self.margin_ms), now_ms),
        }
    }

    /// Whole seconds left before the expiry.
    pub fn remaining_secs(&self, now_ms: i64) -> u64 {
        self.expire_at
            .saturating_mul(1000)
            .saturating_sub(now_ms)
            .max(0) as u64
            / 1000
    }

    /// onTokenWillExpire (the server's push or the local timer): true the first time for
    /// the current expiry, false after (one warning, one renewal per expiry).
    pub fn warn(&mut self) -> bool {
        if self.warned_for == self.expire_at {
            return false;
        }
        self.warned_for = self.expire_at;
        true
    }

    /// The end timer set for `timer_for` fired; `held_expiry` is the expiry of the token the
    /// account holds (a renewal that came while Reconnecting is held for the re-login).
    /// True: end now with TokenExpired.
    pub fn ends(&self, timer_for: i64, held_expiry: i64) -> bool {
        self.expire_at == timer_for && held_expiry <= timer_for
    }

    /// A renewal failed; may it be asked for again now (same expiry, before the end)?
    pub fn may_retry(&self, timer_for: i64, now_ms: i64) -> bool {
        let deadline = timer_for
            .saturating_mul(1000)
            .saturating_sub(self.margin_ms);
        self.expire_at == timer_for && now_ms < deadline
    }
}

/// Which token a (re-)login carries: the one held while it passes the client-side check,
/// otherwise a fresh one from the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginToken {
    /// The held token (first login's, or renewed while Reconnecting).
    Held,
    /// Ask the provider.
    Fetch,
}

/// The rule for [`LoginToken`]: `held_check` is the client-side check of the held token
/// (`None`: no token held).
pub fn login_token<E>(held_check: Option<Result<i64, E>>) -> LoginToken {
    match held_check {
        Some(Ok(_)) => LoginToken::Held,
        _ => LoginToken::Fetch,
    }
}

/// A renewed token that could not be sent (the account is not connected, or the link went
/// down with the renew_token in flight) is kept for the re-login when it passes the
/// client-side check; otherwise the held one stays.
pub fn keep_for_relogin<E>(check: &Result<i64, E>) -> bool {
    check.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn clock() -> TokenClock {
        TokenClock::new(Duration::from_secs(30), Duration::from_secs(2))
    }

    #[test]
    fn timers_warn_renew_ahead_and_end_at_the_margin() {
        let mut c = clock();
        let now = 1_000_000 * S;
        let t = c.set(1_000_100, now);
        assert_eq!(t.warn_in, Duration::from_secs(70));
        assert_eq!(t.end_in, Duration::from_secs(98));
        assert_eq!(c.expire_at(), 1_000_100);
        assert_eq!(c.remaining_secs(now), 100);
    }

    #[test]
    fn a_near_or_past_expiry_fires_at_once() {
        let mut c = clock();
        let now = 1_000_000 * S;
        let t = c.set(1_000_010, now);
        assert_eq!(t.warn_in, Duration::ZERO);
        assert_eq!(t.end_in, Duration::from_secs(8));
        let t = c.set(999_000, now);
        assert_eq!((t.warn_in, t.end_in), (Duration::ZERO, Duration::ZERO));
        assert_eq!(c.remaining_secs(now), 0);
    }

    #[test]
    fn server_supplied_extremes_do_not_overflow() {
        let mut c = clock();
        let t = c.set(i64::MAX, 0);
        assert!(t.warn_in > Duration::from_secs(1 << 40));
        let t = c.set(i64::MIN, i64::MAX);
        assert_eq!((t.warn_in, t.end_in), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn one_warning_per_expiry() {
        let mut c = clock();
        c.set(100, 0);
        assert!(c.warn());
        assert!(!c.warn(), "the push and the local timer warn once together");
        c.set(200, 0);
        assert!(c.warn(), "a renewed expiry warns again");
    }

    #[test]
    fn the_end_timer_ends_only_for_the_current_expiry_without_a_longer_token() {
        let mut c = clock();
        c.set(100, 0);
        assert!(c.ends(100, 100));
        // renewed while Reconnecting: the held token lasts longer, the re-login carries it
        assert!(!c.ends(100, 200));
        // renewed while connected: the timer of the old expiry is stale
        c.set(200, 0);
        assert!(!c.ends(100, 100));
    }

    #[test]
    fn a_failed_renewal_is_retried_only_before_the_end() {
        let mut c = clock();
        c.set(100, 0);
        assert!(c.may_retry(100, 97_999));
        assert!(!c.may_retry(100, 98_000));
        c.set(200, 0);
        assert!(!c.may_retry(100, 0), "a newer expiry: nothing to retry");
    }

    #[test]
    fn the_login_carries_the_held_token_while_it_passes_the_check() {
        assert_eq!(login_token::<()>(Some(Ok(100))), LoginToken::Held);
        assert_eq!(login_token(Some(Err(6000108))), LoginToken::Fetch);
        assert_eq!(login_token::<()>(None), LoginToken::Fetch);
        assert!(keep_for_relogin::<()>(&Ok(5)));
        assert!(!keep_for_relogin(&Err(6000106)));
    }
}
