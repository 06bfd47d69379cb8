//! CPU per unit of work: the CPU seconds (user + sys) of the load process, read from
//! /proc/self/stat at the phase bounds, per 1,000 accounts ramped and per 100,000 messages
//! delivered (docs/loadtest.md, "CPU per unit of work"). With the reference server embedded
//! its work is in the same process and in the figures.

use serde::{Deserialize, Serialize};

/// Linux reports a process's times in USER_HZ ticks, 100 per second on every architecture
/// (the kernel's user-facing clock, not its internal HZ).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + sys) this process has used so far; 0 when /proc cannot be read.
pub fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
        .unwrap_or(0.0)
}

/// utime + stime of a /proc/PID/stat line, in seconds.
fn parse_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// The CPU figures of one shard's process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// CPU seconds over the ramp (first stage), and the accounts it brought online.
    pub ramp_secs: f64,
    /// Accounts ramped (first logins in the ramp).
    pub accounts_ramped: u64,
    /// `ramp_secs` per 1,000 accounts ramped.
    pub per_1000_accounts_ramped_secs: f64,
    /// CPU seconds from the end of the ramp to the end of the drain (messages, heartbeats,
    /// chaos and recoveries), and the messages delivered in it.
    pub after_ramp_secs: f64,
    /// Messages delivered in the run.
    pub messages_delivered: u64,
    /// `after_ramp_secs` per 100,000 messages delivered (0 without messages).
    pub per_100k_messages_secs: f64,
    /// Whether the reference server ran in this process (its CPU is in the figures).
    pub includes_server: bool,
}

/// CPU samples at the phase bounds, seconds since the process started.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuMarks {
    /// At the first account.
    pub ramp_start: f64,
    /// When the ramp ended.
    pub ramp_end: f64,
    /// When the drain ended.
    pub end: f64,
}

impl CpuMarks {
    /// The figures from these marks.
    pub fn figures(&self, accounts_ramped: u64, delivered: u64, includes_server: bool) -> Cpu {
        let ramp = (self.ramp_end - self.ramp_start).max(0.0);
        let after = (self.end - self.ramp_end).max(0.0);
        let per = |secs: f64, n: u64, unit: f64| {
            if n == 0 {
                0.0
            } else {
                (secs * unit / n as f64 * 1000.0).round() / 1000.0
            }
        };
        Cpu {
            ramp_secs: (ramp * 100.0).round() / 100.0,
            accounts_ramped,
            per_1000_accounts_ramped_secs: per(ramp, accounts_ramped, 1000.0),
            after_ramp_secs: (after * 100.0).round() / 100.0,
            messages_delivered: delivered,
            per_100k_messages_secs: per(after, delivered, 100_000.0),
            includes_server,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_user_plus_sys() {
        let line = "4242 (zimfleet (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 200 300";
        assert_eq!(parse_stat(line), Some(3.0));
        assert_eq!(parse_stat("garbage"), None);
        assert!(cpu_secs() >= 0.0);
    }

    #[test]
    fn figures_per_unit_of_work() {
        let marks = CpuMarks {
            ramp_start: 1.0,
            ramp_end: 3.5,
            end: 5.5,
        };
        let cpu = marks.figures(10_000, 400_000, false);
        assert_eq!(cpu.ramp_secs, 2.5);
        assert_eq!(cpu.per_1000_accounts_ramped_secs, 0.25);
        assert_eq!(cpu.after_ramp_secs, 2.0);
        assert_eq!(cpu.per_100k_messages_secs, 0.5);
        let idle = marks.figures(0, 0, true);
        assert_eq!(idle.per_1000_accounts_ramped_secs, 0.0);
        assert_eq!(idle.per_100k_messages_secs, 0.0);
        assert!(idle.includes_server);
    }
}
