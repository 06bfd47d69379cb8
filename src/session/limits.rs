//! Client-side frequency limits (docs/zim-semantics.md section 6). Each check answers at once:
//! allowed, or 6000004. Pure over an injected `Instant`.

use std::time::{Duration, Instant};

use crate::protocol::{ErrorCode, ZimError};

/// The account's request shaper: a bucket of `capacity` requests, refilled `refill` per
/// `period`. Kept in 16 bytes per account.
#[derive(Debug, Clone)]
pub struct RequestShaper {
    tokens: f32,
    last: Option<Instant>,
}

impl Default for RequestShaper {
    fn default() -> Self {
        Self {
            tokens: Self::CAPACITY,
            last: None,
        }
    }
}

impl RequestShaper {
    pub const CAPACITY: f32 = 50.0;
    /// 5 per 100 ms.
    pub const REFILL_PER_SEC: f32 = 50.0;

    /// Takes one request from the bucket, or answers 6000004.
    pub fn check(&mut self, now: Instant) -> Result<(), ZimError> {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f32();
            self.tokens = (self.tokens + dt * Self::REFILL_PER_SEC).min(Self::CAPACITY);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(ZimError::new(
                ErrorCode::CLIENT_FREQUENCY_LIMIT,
                "request shaper: more than 50 requests in a burst, 5 per 100 ms",
            ))
        }
    }
}

/// At most one message per `MIN_GAP` per conversation. Remembers only conversations sent to
/// in the last `MIN_GAP` (pruned on each check), so it stays tiny.
#[derive(Debug, Clone, Default)]
pub struct ConversationPacer {
    recent: Vec<(Box<str>, Instant)>,
}

impl ConversationPacer {
    pub const MIN_GAP: Duration = Duration::from_millis(100);

    /// Records a send to `conv` (room id or `@user`) at `now`, or answers 6000004.
    pub fn check(&mut self, conv: &str, now: Instant) -> Result<(), ZimError> {
        self.recent
            .retain(|(_, t)| now.saturating_duration_since(*t) < Self::MIN_GAP);
        if self.recent.iter().any(|(c, _)| &**c == conv) {
            return Err(ZimError::new(
                ErrorCode::CLIENT_FREQUENCY_LIMIT,
                "at most one message per 100 ms per conversation",
            ));
        }
        self.recent.push((conv.into(), now));
        if self.recent.is_empty() {
            self.recent.shrink_to_fit();
        }
        Ok(())
    }
}

/// renewToken at most once per 500 ms.
#[derive(Debug, Clone, Default)]
pub struct RenewPacer {
    last: Option<Instant>,
}

impl RenewPacer {
    pub const MIN_GAP: Duration = Duration::from_millis(500);

    pub fn check(&mut self, now: Instant) -> Result<(), ZimError> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < Self::MIN_GAP)
        {
            return Err(ZimError::new(
                ErrorCode::CLIENT_FREQUENCY_LIMIT,
                "renewToken at most once per 500 ms",
            ));
        }
        self.last = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn shaper_allows_a_burst_of_50_then_5_per_100ms() {
        let t0 = Instant::now();
        let mut s = RequestShaper::default();
        for i in 0..50 {
            assert!(s.check(t0).is_ok(), "request {i}");
        }
        let err = s.check(t0).unwrap_err();
        assert_eq!(err.code, ErrorCode::CLIENT_FREQUENCY_LIMIT);
        // 100 ms later: 5 more, then refused again
        let t1 = t0 + ms(100);
        for _ in 0..5 {
            assert!(s.check(t1).is_ok());
        }
        assert_eq!(s.check(t1).unwrap_err().code.number(), 6000004);
        // a long pause refills only up to the bucket
        let t2 = t1 + Duration::from_secs(60);
        let ok = (0..60).filter(|_| s.check(t2).is_ok()).count();
        assert_eq!(ok, 50);
    }

    #[test]
    fn one_message_per_100ms_per_conversation() {
        let t0 = Instant::now();
        let mut p = ConversationPacer::default();
        assert!(p.check("r1", t0).is_ok());
        assert!(
            p.check("@u2", t0).is_ok(),
            "other conversations are independent"
        );
        assert_eq!(
            p.check("r1", t0 + ms(99)).unwrap_err().code.number(),
            6000004
        );
        assert!(p.check("r1", t0 + ms(100)).is_ok());
        assert!(p.check("x", t0 + ms(500)).is_ok());
        assert_eq!(p.recent.len(), 1, "old conversations are forgotten");
    }

    #[test]
    fn renew_at_most_once_per_500ms() {
        let t0 = Instant::now();
        let mut p = RenewPacer::default();
        assert!(p.check(t0).is_ok());
        assert_eq!(p.check(t0 + ms(499)).unwrap_err().code.number(), 6000004);
        assert!(p.check(t0 + ms(500)).is_ok());
    }
}
