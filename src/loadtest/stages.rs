//! Stages: the shape of the load over time, as pure arithmetic (no I/O, no clock).
//!
//! `[[loadtest.stages]]` in the plan: each stage has a duration and a target (accounts online
//! in the whole plan, and/or messages per second per account) reached by a linear ramp from
//! the previous stage's target. The plan without stages is the one-stage shorthand: a
//! "ramp" stage (0 to `accounts` at `arrival_rate`), the wait until every account is online,
//! then a "hold" stage of `duration`.
//!
//! Accounts arrive in index order and leave oldest first: at time `t` the plan's online
//! accounts are the indexes `departures_by(t) .. arrivals_by(t)`. Every shard computes the
//! same numbers and acts on the indexes it owns, so shards split every stage's target, and
//! arrivals and departures are evenly spaced (the k-th one is due at the exact time the
//! linear ramp passes k; the driver releases them at its 10 ms step, as the governor's
//! 10 ms burst did).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::{human_duration, ChaosPlan};

/// One `[[loadtest.stages]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagePlan {
    /// Shown in the report and on the charts; default "stage N" (1-based).
    #[serde(default)]
    pub name: String,
    /// How long the stage lasts.
    #[serde(with = "human_duration")]
    pub duration: Duration,
    /// Accounts online (whole plan) at the end of the stage; default: the previous stage's
    /// target (0 before the first stage).
    #[serde(default)]
    pub accounts: Option<u64>,
    /// Messages per second per account at the end of the stage; default: the previous
    /// stage's (`messages.per_account_per_sec` before the first stage).
    #[serde(default)]
    pub msg_rate: Option<f64>,
    /// Chaos during this stage (times from the stage's start); default: `[loadtest.chaos]`.
    #[serde(default)]
    pub chaos: Option<StageChaos>,
}

/// Client- and server-side chaos of one stage (the keys of `[loadtest.chaos]` that say
/// when; every key defaults to "never").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageChaos {
    /// Share of the online accounts whose link is dropped every `drop_every`.
    pub drop_share: f64,
    /// Period of the drops ("0s" = never).
    #[serde(with = "human_duration")]
    pub drop_every: Duration,
    /// Share of the online accounts held offline every `offline_every` for `offline_for`.
    pub offline_share: f64,
    /// Period of the offline windows ("0s" = never).
    #[serde(with = "human_duration")]
    pub offline_every: Duration,
    /// Length of an offline window (cut at the end of the last stage).
    #[serde(with = "human_duration")]
    pub offline_for: Duration,
    /// The server drops every session this long into the stage ("0s" = never).
    #[serde(with = "human_duration")]
    pub server_drop_at: Duration,
}

impl From<&ChaosPlan> for StageChaos {
    fn from(c: &ChaosPlan) -> Self {
        StageChaos {
            drop_share: c.drop_share,
            drop_every: c.drop_every,
            offline_share: c.offline_share,
            offline_every: c.offline_every,
            offline_for: c.offline_for,
            server_drop_at: c.server_drop_at,
        }
    }
}

impl StageChaos {
    /// Whether anything happens at all.
    pub fn any(&self) -> bool {
        (self.drop_share > 0.0 && !self.drop_every.is_zero())
            || (self.offline_share > 0.0 && !self.offline_every.is_zero())
            || !self.server_drop_at.is_zero()
    }

    /// Refuses timings that cannot happen inside a stage of `len`, naming both keys.
    pub fn check(&self, prefix: &str, len: Duration, len_key: &str) -> Result<(), String> {
        for (name, share) in [
            ("drop_share", self.drop_share),
            ("offline_share", self.offline_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{prefix}.{name} is {share}; it must be 0.0 to 1.0"));
            }
        }
        let h = |d: Duration| humantime::format_duration(d).to_string();
        let periodic = [
            ("drop_every", self.drop_share > 0.0, self.drop_every),
            (
                "offline_every",
                self.offline_share > 0.0,
                self.offline_every,
            ),
            ("server_drop_at", true, self.server_drop_at),
        ];
        for (key, on, at) in periodic {
            if on && !at.is_zero() && at >= len {
                return Err(format!(
                    "{prefix}.{key} ({}) is not shorter than {len_key} ({}): it would never happen",
                    h(at),
                    h(len)
                ));
            }
        }
        if self.offline_share > 0.0 && !self.offline_every.is_zero() && self.offline_for.is_zero() {
            return Err(format!("{prefix}.offline_for must be more than 0s"));
        }
        Ok(())
    }
}

/// One stage as the run sees it: offsets from the start of the first stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub start: Duration,
    pub duration: Duration,
    /// Accounts online (whole plan) at the start and end.
    pub from_accounts: u64,
    pub to_accounts: u64,
    /// Messages per second per account at the start and end.
    pub from_rate: f64,
    pub to_rate: f64,
    pub chaos: StageChaos,
    /// Arrivals and departures (whole plan) before this stage.
    arrived_before: u64,
    departed_before: u64,
}

impl Stage {
    /// End offset.
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }

    /// Share of the stage done at `t` (clamped to 0..=1).
    fn frac(&self, t: Duration) -> f64 {
        if self.duration.is_zero() {
            return 1.0;
        }
        (t.saturating_sub(self.start).as_secs_f64() / self.duration.as_secs_f64()).clamp(0.0, 1.0)
    }

    /// Accounts that arrive during the stage, and that leave.
    pub fn arrivals(&self) -> u64 {
        self.to_accounts.saturating_sub(self.from_accounts)
    }

    /// Accounts that leave during the stage (logged out, oldest first).
    pub fn departures(&self) -> u64 {
        self.from_accounts.saturating_sub(self.to_accounts)
    }
}

/// The stages of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub stages: Vec<Stage>,
    /// The shorthand: after the first stage, wait (at most `ramp_timeout`) until every
    /// account is online before the next one starts.
    pub settle_after_first: bool,
}

impl Schedule {
    /// Builds the stages from `[[loadtest.stages]]`: `base_rate` is the message rate before
    /// the first stage, `plan_chaos` what a stage without its own chaos gets.
    pub fn from_stages(stages: &[StagePlan], base_rate: f64, plan_chaos: &StageChaos) -> Schedule {
        let mut out = Vec::with_capacity(stages.len());
        let (mut accounts, mut rate, mut start) = (0u64, base_rate, Duration::ZERO);
        let (mut arrived, mut departed) = (0u64, 0u64);
        for (i, s) in stages.iter().enumerate() {
            let to_accounts = s.accounts.unwrap_or(accounts);
            let to_rate = s.msg_rate.unwrap_or(rate);
            let stage = Stage {
                name: if s.name.is_empty() {
                    format!("stage {}", i + 1)
                } else {
                    s.name.clone()
                },
                start,
                duration: s.duration,
                from_accounts: accounts,
                to_accounts,
                from_rate: rate,
                to_rate,
                chaos: s.chaos.clone().unwrap_or_else(|| plan_chaos.clone()),
                arrived_before: arrived,
                departed_before: departed,
            };
            arrived += stage.arrivals();
            departed += stage.departures();
            (accounts, rate, start) = (to_accounts, to_rate, stage.end());
            out.push(stage);
        }
        Schedule {
            stages: out,
            settle_after_first: false,
        }
    }

    /// The shorthand: "ramp" (0 to `accounts` at `arrival_rate`, no messages, no chaos),
    /// then "hold" for `duration` at `rate` with the plan's chaos.
    pub fn shorthand(
        accounts: u64,
        arrival_rate: u32,
        hold: Duration,
        rate: f64,
        chaos: &StageChaos,
    ) -> Schedule {
        let ramp = Duration::from_secs_f64(accounts as f64 / f64::from(arrival_rate.max(1)));
        let stages = [
            StagePlan {
                name: "ramp".into(),
                duration: ramp,
                accounts: Some(accounts),
                msg_rate: Some(0.0),
                chaos: Some(StageChaos::default()),
            },
            StagePlan {
                name: "hold".into(),
                duration: hold,
                accounts: Some(accounts),
                msg_rate: Some(rate),
                chaos: Some(chaos.clone()),
            },
        ];
        let mut s = Schedule::from_stages(&stages, rate, chaos);
        // No messages in the ramp; the hold sends at its rate from its first second.
        s.stages[0].from_rate = 0.0;
        s.stages[1].from_rate = rate;
        s.settle_after_first = true;
        s
    }

    /// When the last stage ends.
    pub fn total(&self) -> Duration {
        self.stages.last().map(Stage::end).unwrap_or_default()
    }

    /// The stage running at `t` (the last one after the end).
    pub fn index_at(&self, t: Duration) -> usize {
        self.stages
            .iter()
            .position(|s| t < s.end())
            .unwrap_or(self.stages.len().saturating_sub(1))
    }

    /// Accounts (whole plan) that have arrived by `t`.
    pub fn arrivals_by(&self, t: Duration) -> u64 {
        self.cumulative(t, |s| (s.arrived_before, s.arrivals()))
    }

    /// Accounts (whole plan) that have left by `t`.
    pub fn departures_by(&self, t: Duration) -> u64 {
        self.cumulative(t, |s| (s.departed_before, s.departures()))
    }

    fn cumulative(&self, t: Duration, f: fn(&Stage) -> (u64, u64)) -> u64 {
        let Some(s) = self.stages.get(self.index_at(t)) else {
            return 0;
        };
        let (before, during) = f(s);
        // A hair of slack so the last one of a stage is due at the stage's end, not after.
        before
            + ((during as f64 * s.frac(t)) + 1e-9)
                .floor()
                .min(during as f64) as u64
    }

    /// Messages per second per account at `t` (0 after the last stage).
    pub fn msg_rate(&self, t: Duration) -> f64 {
        if t >= self.total() {
            return 0.0;
        }
        let s = &self.stages[self.index_at(t)];
        s.from_rate + (s.to_rate - s.from_rate) * s.frac(t)
    }

    /// The most accounts ever online (whole plan), and the arrivals over all stages.
    pub fn peak_and_arrivals(&self) -> (u64, u64) {
        let peak = self.stages.iter().map(|s| s.to_accounts).max().unwrap_or(0);
        (peak, self.arrivals_by(self.total()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn stage(name: &str, d: f64, accounts: Option<u64>, rate: Option<f64>) -> StagePlan {
        StagePlan {
            name: name.into(),
            duration: secs(d),
            accounts,
            msg_rate: rate,
            chaos: None,
        }
    }

    /// Ramp up, plateau, spike, ramp down.
    fn four() -> Schedule {
        Schedule::from_stages(
            &[
                stage("up", 10.0, Some(100), Some(1.0)),
                stage("plateau", 20.0, None, None),
                stage("spike", 5.0, Some(300), Some(2.0)),
                stage("down", 10.0, Some(0), None),
            ],
            0.0,
            &StageChaos::default(),
        )
    }

    #[test]
    fn targets_ramp_linearly_from_the_previous_stage() {
        let s = four();
        let row = |t: f64| {
            let t = secs(t);
            (s.arrivals_by(t), s.departures_by(t), s.index_at(t))
        };
        assert_eq!(row(0.0), (0, 0, 0));
        assert_eq!(row(5.0), (50, 0, 0));
        assert_eq!(row(10.0), (100, 0, 1));
        assert_eq!(row(29.9), (100, 0, 1));
        assert_eq!(row(32.5), (200, 0, 2));
        assert_eq!(row(35.0), (300, 0, 3));
        // Ramp down: 300 leave in 10 s, oldest first.
        assert_eq!(row(40.0), (300, 150, 3));
        assert_eq!(row(45.0), (300, 300, 3));
        assert_eq!(row(99.0), (300, 300, 3));
        assert_eq!(s.total(), secs(45.0));
        assert_eq!(s.peak_and_arrivals(), (300, 300));
        let names: Vec<_> = s.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["up", "plateau", "spike", "down"]);
    }

    #[test]
    fn arrivals_are_evenly_spaced() {
        let s = four();
        // 10 per second in the first stage: one every 100 ms.
        let due: Vec<u64> = (0..=10)
            .map(|k| s.arrivals_by(secs(k as f64 * 0.1)))
            .collect();
        assert_eq!(due, (0..=10).collect::<Vec<u64>>());
    }

    #[test]
    fn message_rate_ramps_and_holds_and_defaults() {
        let s = four();
        assert_eq!(s.msg_rate(secs(0.0)), 0.0);
        assert_eq!(s.msg_rate(secs(5.0)), 0.5);
        assert_eq!(s.msg_rate(secs(20.0)), 1.0);
        assert_eq!(s.msg_rate(secs(32.5)), 1.5);
        assert_eq!(s.msg_rate(secs(40.0)), 2.0);
        assert_eq!(s.msg_rate(secs(45.0)), 0.0);
        let unnamed = Schedule::from_stages(
            &[stage("", 1.0, Some(5), None)],
            0.25,
            &StageChaos::default(),
        );
        assert_eq!(unnamed.stages[0].name, "stage 1");
        assert_eq!(unnamed.msg_rate(secs(0.5)), 0.25);
    }

    #[test]
    fn shorthand_is_a_ramp_then_a_hold() {
        let chaos = StageChaos {
            drop_share: 0.5,
            drop_every: secs(1.0),
            ..StageChaos::default()
        };
        let s = Schedule::shorthand(30, 300, secs(2.0), 2.0, &chaos);
        assert!(s.settle_after_first);
        assert_eq!(s.stages[0].duration, secs(0.1));
        assert_eq!(s.stages[0].chaos, StageChaos::default());
        assert_eq!(s.stages[1].chaos, chaos);
        assert_eq!(s.msg_rate(secs(0.05)), 0.0);
        assert_eq!(s.msg_rate(secs(0.1)), 2.0);
        assert_eq!(s.arrivals_by(secs(0.1)), 30);
        assert_eq!(s.departures_by(secs(5.0)), 0);
    }

    #[test]
    fn chaos_that_cannot_happen_is_refused_naming_both_keys() {
        let c = StageChaos {
            offline_share: 0.1,
            offline_every: secs(5.0),
            offline_for: secs(1.0),
            ..StageChaos::default()
        };
        assert_eq!(c.check("chaos", secs(6.0), "duration"), Ok(()));
        assert_eq!(
            c.check("stages[1].chaos", secs(5.0), "stages[1].duration"),
            Err("stages[1].chaos.offline_every (5s) is not shorter than stages[1].duration (5s): it would never happen".into())
        );
        let c = StageChaos {
            server_drop_at: secs(9.0),
            ..StageChaos::default()
        };
        assert!(c
            .check("chaos", secs(2.0), "duration")
            .unwrap_err()
            .starts_with("chaos.server_drop_at (9s) is not shorter than duration (2s)"));
    }
}
