//! Chaos on each stage's schedule: link drops, offline windows, a server-side drop of every
//! session. Chaos ends with the hold (the last stage): an offline window is cut at its end,
//! and nothing new starts after it, so the drain sees every account come back.

use std::time::Duration;

use rand::seq::index::sample;

use super::stage_report::{ChaosEvent, ChaosKind};
use super::stages::{Stage, StageChaos};

/// What chaos asks of the driver at one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Drop the links of these picks (indexes into the online accounts).
    Drop(Vec<usize>),
    /// Hold these picks offline for the duration.
    Offline(Vec<usize>, Duration),
    /// Ask the server to drop every session.
    ServerDrop,
}

/// The chaos of the running stage.
#[derive(Debug, Default)]
pub struct Chaos {
    plan: StageChaos,
    stage: String,
    next_drop: Option<Duration>,
    next_offline: Option<Duration>,
    server_drop: Option<Duration>,
    /// Only this shard asks the server (shard 0: one drop of every session, as planned).
    asks_server: bool,
    /// Links dropped and accounts held offline so far.
    pub drops: u64,
    /// Offline.
    pub offline: u64,
}

fn first(start: Duration, share: f64, every: Duration) -> Option<Duration> {
    (share > 0.0 && !every.is_zero()).then_some(start + every)
}

impl Chaos {
    /// No chaos yet; `asks_server`: whether this shard triggers server-side drops.
    pub fn new(asks_server: bool) -> Chaos {
        Chaos {
            asks_server,
            ..Chaos::default()
        }
    }

    /// The stage `s` starts: its chaos, times from its start.
    pub fn enter(&mut self, s: &Stage) {
        let c = &s.chaos;
        self.plan = c.clone();
        self.stage = s.name.clone();
        self.next_drop = first(s.start, c.drop_share, c.drop_every);
        self.next_offline = first(s.start, c.offline_share, c.offline_every);
        self.server_drop = (!c.server_drop_at.is_zero()).then_some(s.start + c.server_drop_at);
    }

    /// What is due at `t` (before `stage_end`; `hold_end` cuts offline windows) with
    /// `online` accounts to pick from. Events are stamped `now_ms`.
    pub fn step(
        &mut self,
        t: Duration,
        stage_end: Duration,
        hold_end: Duration,
        online: usize,
        now_ms: u64,
        events: &mut Vec<ChaosEvent>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if t >= stage_end || t >= hold_end {
            return out;
        }
        let event = |kind, accounts: usize, for_ms: u64| ChaosEvent {
            ts_ms: now_ms,
            kind,
            accounts: accounts as u64,
            for_ms,
            stage: self.stage.clone(),
        };
        if let Some(at) = self.next_drop.filter(|&at| t >= at) {
            self.next_drop = Some(at + self.plan.drop_every);
            let picks = pick(online, self.plan.drop_share);
            self.drops += picks.len() as u64;
            events.push(event(ChaosKind::Drop, picks.len(), 0));
            out.push(Action::Drop(picks));
        }
        if let Some(at) = self.next_offline.filter(|&at| t >= at) {
            self.next_offline = Some(at + self.plan.offline_every);
            let len = self.plan.offline_for.min(hold_end - t);
            let picks = pick(online, self.plan.offline_share);
            self.offline += picks.len() as u64;
            events.push(event(
                ChaosKind::Offline,
                picks.len(),
                len.as_millis() as u64,
            ));
            out.push(Action::Offline(picks, len));
        }
        if self.server_drop.is_some_and(|at| t >= at) {
            self.server_drop = None;
            if self.asks_server {
                events.push(event(ChaosKind::ServerDrop, 0, 0));
                out.push(Action::ServerDrop);
            }
        }
        out
    }
}

/// `share` of `n`, picked at random.
fn pick(n: usize, share: f64) -> Vec<usize> {
    let k = ((n as f64 * share).round() as usize).min(n);
    sample(&mut rand::thread_rng(), n, k).into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::stages::{Schedule, StagePlan};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn hold(chaos: StageChaos) -> Schedule {
        Schedule::from_stages(
            &[StagePlan {
                name: "hold".into(),
                duration: secs(10.0),
                accounts: Some(10),
                msg_rate: None,
                chaos: Some(chaos),
            }],
            0.0,
            &StageChaos::default(),
        )
    }

    #[test]
    fn offline_windows_are_cut_at_the_end_of_the_hold_and_none_start_after() {
        let s = hold(StageChaos {
            offline_share: 0.5,
            offline_every: secs(4.5),
            offline_for: secs(4.5),
            ..StageChaos::default()
        });
        let stage = &s.stages[0];
        let mut c = Chaos::new(true);
        c.enter(stage);
        let mut events = Vec::new();
        let mut windows = Vec::new();
        for step in 0..=1500 {
            let t = Duration::from_millis(step * 10);
            for a in c.step(t, stage.end(), s.total(), 10, 0, &mut events) {
                if let Action::Offline(picks, len) = a {
                    windows.push((t, picks.len(), len));
                }
            }
        }
        // At 4.5 s a whole window; at 9 s only the second left of the hold; none after 10 s.
        assert_eq!(
            windows,
            vec![(secs(4.5), 5, secs(4.5)), (secs(9.0), 5, secs(1.0))]
        );
        assert_eq!(c.offline, 10);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].for_ms, 1_000);
        assert!(windows.iter().all(|(t, _, len)| *t + *len <= s.total()));
    }

    #[test]
    fn drops_every_period_and_the_server_drop_once_on_shard_0_only() {
        let chaos = StageChaos {
            drop_share: 0.2,
            drop_every: secs(3.0),
            server_drop_at: secs(5.0),
            ..StageChaos::default()
        };
        let s = hold(chaos);
        for (asks, expect) in [(true, 1), (false, 0)] {
            let mut c = Chaos::new(asks);
            c.enter(&s.stages[0]);
            let (mut drops, mut server) = (0, 0);
            let mut events = Vec::new();
            for step in 0..=1200 {
                let t = Duration::from_millis(step * 10);
                for a in c.step(t, s.stages[0].end(), s.total(), 10, 0, &mut events) {
                    match a {
                        Action::Drop(p) => drops += p.len(),
                        Action::ServerDrop => server += 1,
                        Action::Offline(..) => unreachable!(),
                    }
                }
            }
            // 3 s, 6 s, 9 s: two accounts each.
            assert_eq!((drops, server), (6, expect));
        }
    }
}
