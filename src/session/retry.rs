//! The reconnect schedule and the restart budget of rooms: pure arithmetic over an injected
//! random source and clock, so the tests pin every number.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

/// The reconnect schedule: first delay random in `first`, then `steps`, then `steps.last()`
/// forever; every delay jittered by +-`jitter` (a fraction, 0.2 = 20 %).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// The first delay is random in this range.
    pub first: (Duration, Duration),
    /// The delays after it; the last repeats forever.
    pub steps: Vec<Duration>,
    /// Jitter of each step, a fraction (0.2 = +-20 %).
    pub jitter: f64,
    /// Give up after this long Reconnecting: (Disconnected, LoginTimeout). None = forever.
    pub give_up_after: Option<Duration>,
}

impl Default for RetryConfig {
    /// The web SDK's schedule: first in [0.5 s, 2 s], then 2, 2, 4, 4, 8, 8, 16, 16, 32 s
    /// forever, each +-20 %; never gives up.
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            first: (Duration::from_millis(500), s(2)),
            steps: vec![s(2), s(2), s(4), s(4), s(8), s(8), s(16), s(16), s(32)],
            jitter: 0.2,
            give_up_after: None,
        }
    }
}

impl RetryConfig {
    /// The delay before retry number `attempt` (0 = the first retry after the link was lost).
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        if attempt == 0 {
            let (lo, hi) = self.first;
            return if hi > lo { rng.gen_range(lo..=hi) } else { lo };
        }
        let base = match self.steps.get(attempt as usize - 1).or(self.steps.last()) {
            Some(step) => *step,
            None => self.first.1,
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return base;
        }
        base.mul_f64(1.0 + rng.gen_range(-jitter..=jitter))
    }
}

/// Counts the retries of one outage (reset by a successful login).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The next delay; advances the schedule.
    pub fn next_delay(&mut self, config: &RetryConfig, rng: &mut impl Rng) -> Duration {
        let d = config.delay(self.attempt, rng);
        self.attempt = self.attempt.saturating_add(1);
        d
    }
    /// Retries so far in this outage.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
    /// A login succeeded: the next outage starts the schedule over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How a room's supervisor bounds restarts: at most `max` in any `window`; each restart
/// waits longer (doubling from `base`, capped, jittered by the caller).
#[derive(Debug, Clone, Default)]
pub struct RestartBudget {
    recent: VecDeque<Instant>,
}

/// What the budget allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartVerdict {
    /// Restart after this delay.
    After(Duration),
    /// Budget spent: the room stays out.
    GiveUp,
}

impl RestartBudget {
    /// First restart delay; it doubles with each restart inside the window.
    pub const BASE_DELAY: Duration = Duration::from_millis(200);
    /// Longest restart delay.
    pub const MAX_DELAY: Duration = Duration::from_secs(30);

    /// Records a restart request at `now` and says whether (and when) it may happen.
    pub fn request(&mut self, now: Instant, max: u32, window: Duration) -> RestartVerdict {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() as u32 >= max {
            return RestartVerdict::GiveUp;
        }
        let n = self.recent.len() as u32;
        self.recent.push_back(now);
        RestartVerdict::After(doubling(Self::BASE_DELAY, n, Self::MAX_DELAY))
    }
}

/// The crate's backoff: `first` doubled `n` times, at most `max` (jitter it with
/// [`jittered`]). Used by room restarts and token renewals; reconnects follow
/// [`RetryConfig`]'s schedule.
pub fn doubling(first: Duration, n: u32, max: Duration) -> Duration {
    first.saturating_mul(1u32 << n.min(16)).min(max)
}

/// Delay with +-`fraction` jitter (restarts, renewals, admission waits).
pub fn jittered(d: Duration, fraction: f64, rng: &mut impl Rng) -> Duration {
    let f = fraction.clamp(0.0, 1.0);
    if f == 0.0 {
        return d;
    }
    d.mul_f64(1.0 + rng.gen_range(-f..=f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn default_schedule_is_the_web_sdks() {
        let cfg = RetryConfig {
            jitter: 0.0,
            ..RetryConfig::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = Backoff::default();
        let first = b.next_delay(&cfg, &mut rng);
        assert!(first >= secs(0.5) && first <= secs(2.0), "{first:?}");
        let rest: Vec<u64> = (0..12)
            .map(|_| b.next_delay(&cfg, &mut rng).as_secs())
            .collect();
        assert_eq!(rest, [2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 32, 32]);
        assert_eq!(b.attempts(), 13);
        b.reset();
        assert!(b.next_delay(&cfg, &mut rng) <= secs(2.0));
    }

    #[test]
    fn first_delay_covers_its_range_and_steps_stay_inside_jitter() {
        let cfg = RetryConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        let firsts: Vec<Duration> = (0..500).map(|_| cfg.delay(0, &mut rng)).collect();
        assert!(firsts.iter().all(|d| *d >= secs(0.5) && *d <= secs(2.0)));
        assert!(firsts.iter().any(|d| *d < secs(0.8)));
        assert!(firsts.iter().any(|d| *d > secs(1.7)));
        for attempt in [1u32, 5, 9, 50] {
            let base =
                [2.0, 2.0, 4.0, 4.0, 8.0, 8.0, 16.0, 16.0, 32.0][(attempt as usize - 1).min(8)];
            let ds: Vec<Duration> = (0..200).map(|_| cfg.delay(attempt, &mut rng)).collect();
            assert!(ds
                .iter()
                .all(|d| *d >= secs(base * 0.8) && *d <= secs(base * 1.2)));
            // jitter actually spreads the accounts
            assert!(ds.iter().any(|d| *d < secs(base * 0.95)));
            assert!(ds.iter().any(|d| *d > secs(base * 1.05)));
        }
    }

    #[test]
    fn custom_schedule_repeats_its_last_step() {
        let cfg = RetryConfig {
            first: (Duration::from_millis(10), Duration::from_millis(10)),
            steps: vec![Duration::from_millis(20), Duration::from_millis(40)],
            jitter: 0.0,
            give_up_after: None,
        };
        let mut rng = StdRng::seed_from_u64(0);
        let ms: Vec<u128> = (0..5).map(|a| cfg.delay(a, &mut rng).as_millis()).collect();
        assert_eq!(ms, [10, 20, 40, 40, 40]);
    }

    #[test]
    fn doubling_doubles_and_caps() {
        let ms = Duration::from_millis;
        let got: Vec<u128> = [0, 1, 2, 3, 4, 40]
            .iter()
            .map(|n| doubling(ms(100), *n, ms(1000)).as_millis())
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(jittered(ms(100), 0.0, &mut rng), ms(100));
        let j = jittered(ms(100), 0.2, &mut rng);
        assert!(j >= ms(80) && j <= ms(120), "{j:?}");
    }

    #[test]
    fn restart_budget_backs_off_then_gives_up_and_forgives_after_the_window() {
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        let mut b = RestartBudget::default();
        let ms = |v| match v {
            RestartVerdict::After(d) => d.as_millis() as i64,
            RestartVerdict::GiveUp => -1,
        };
        let got: Vec<i64> = (0..4)
            .map(|i| ms(b.request(t0 + secs(i as f64), 3, w)))
            .collect();
        assert_eq!(got, [200, 400, 800, -1]);
        // the first restart left the window: one more is allowed
        assert_eq!(ms(b.request(t0 + secs(60.5), 3, w)), 800);
        assert_eq!(ms(b.request(t0 + secs(61.5), 3, w)), 800);
        assert_eq!(ms(b.request(t0 + secs(61.6), 3, w)), -1);
    }
}
