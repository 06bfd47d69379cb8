//! The final human table of a report (stdout at the end of a run or a merge).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::Report;
use crate::protocol::ErrorCode;

impl Report {
    /// The final human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        self.accounts_rows(&mut out);
        self.recovery_rows(&mut out);
        self.message_rows(&mut out);
        self.latency_rows(&mut out);
        self.closing_rows(&mut out);
        out
    }

    fn accounts_rows(&self, out: &mut String) {
        let c = &self.counts;
        let f = &self.figures;
        let shards: Vec<String> = self.shards.iter().map(|s| s.shard.to_string()).collect();
        let _ = writeln!(
            out,
            "zimfleet loadtest: {} accounts planned, shards [{}]{}",
            c.accounts_planned,
            shards.join(", "),
            match self.missing_shards() {
                m if m.is_empty() => String::new(),
                m => format!(" (missing shards {m:?})"),
            }
        );
        let _ = writeln!(out, "\naccounts");
        row(out, "added", c.accounts_added.to_string());
        row(
            out,
            "fully connected at end",
            format!(
                "{} ({:.2}%)",
                c.accounts_fully_connected,
                f.connected_share * 100.0
            ),
        );
        row(out, "by state", fmt_map(&self.accounts_by_state));
        row(out, "rooms by state", fmt_map(&self.rooms_by_state));
        row(
            out,
            "logins ok / failed",
            format!("{} / {}", c.logins_ok, c.logins_failed),
        );
        row(
            out,
            "room entries ok / failed",
            format!("{} / {}", c.room_entries_ok, c.room_entries_failed),
        );
        row(
            out,
            "logins + room entries/s",
            format!("{:.1}", f.logins_plus_room_entries_per_sec),
        );
    }

    fn recovery_rows(&self, out: &mut String) {
        let c = &self.counts;
        let f = &self.figures;
        let _ = writeln!(out, "\nrecovery");
        row(
            out,
            "disconnects / reconnects",
            format!("{} / {}", c.disconnects, c.reconnects),
        );
        row(
            out,
            "peak reconnects/s",
            format!(
                "{} (admission limit {})",
                f.peak_reconnects_per_sec, f.admission_limit_per_sec
            ),
        );
        row(
            out,
            "rooms back: member / rejoined / re-entered / gave up",
            format!(
                "{} / {} / {} / {}",
                c.room_recovered_member,
                c.room_recovered_after_connect_timeout,
                c.room_recovered_after_room_not_exist,
                c.room_gave_up
            ),
        );
        row(
            out,
            "chaos drops / offline / server drops",
            format!(
                "{} / {} / {}",
                c.chaos_drops, c.chaos_offline, c.server_drops
            ),
        );
    }

    fn message_rows(&self, out: &mut String) {
        let c = &self.counts;
        let f = &self.figures;
        self.stage_rows(out);
        let _ = writeln!(out, "\nmessages");
        row(
            out,
            "sent / failed",
            format!("{} / {}", c.messages_sent, c.messages_send_failed),
        );
        row(
            out,
            "delivered / missing / duplicated",
            format!(
                "{} / {} / {}",
                c.messages_delivered, c.messages_missing, c.messages_duplicated
            ),
        );
        if c.messages_lost_with_backend > 0 || c.room_incarnations_changed > 0 {
            // docs/loadtest.md, "Lost with the backend"
            row(
                out,
                "lost with the backend / rooms new incarnation",
                format!(
                    "{} / {}",
                    c.messages_lost_with_backend, c.room_incarnations_changed
                ),
            );
        }
        row(
            out,
            "sent/s, delivered/s",
            format!("{:.1}, {:.1}", f.sent_per_sec, f.delivered_per_sec),
        );
    }

    fn latency_rows(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nlatency (ms)                      count      p50      p90      p99    p99.9      max"
        );
        let h = &self.histograms;
        for (name, hist) in [
            ("login", &h.login),
            ("room enter", &h.room_enter),
            ("message end to end", &h.message),
            ("reconnect", &h.reconnect),
            ("room back, still member", &h.room_recovery_member),
            (
                "room back after ConnectTimeout",
                &h.room_recovery_after_connect_timeout,
            ),
            (
                "room back after RoomNotExist",
                &h.room_recovery_after_room_not_exist,
            ),
        ] {
            let _ = writeln!(
                out,
                "  {name:<30} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                hist.count(),
                ms(hist.quantile_us(0.5)),
                ms(hist.quantile_us(0.9)),
                ms(hist.quantile_us(0.99)),
                ms(hist.quantile_us(0.999)),
                ms(if hist.count() == 0 { 0 } else { hist.0.max() }),
            );
        }
    }

    fn closing_rows(&self, out: &mut String) {
        let c = &self.counts;
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors");
            for (code, n) in &self.errors {
                row(out, &format!("{}", ErrorCode(*code)), n.to_string());
            }
        }
        if c.events_lost > 0 {
            let _ = writeln!(
                out,
                "\nwarning: {} fleet events were lost to lag; state figures may be short",
                c.events_lost
            );
        }
        let _ = writeln!(out, "\nmemory");
        for s in &self.shards {
            row(
                out,
                &format!("shard {} ({})", s.shard, s.host),
                format!(
                    "{} KiB -> {} KiB, {} bytes per account{}",
                    s.memory.rss_before_kib,
                    s.memory.rss_held_kib,
                    s.memory.per_account_bytes,
                    if s.memory.includes_server {
                        " (server in the same process)"
                    } else {
                        ""
                    }
                ),
            );
        }
        let _ = writeln!(out, "\ncpu (user + sys of the load process)");
        for s in &self.shards {
            let c = &s.cpu;
            row(
                out,
                &format!("shard {} ({})", s.shard, s.host),
                format!(
                    "{:.3} s per 1,000 accounts ramped, {:.3} s per 100,000 messages delivered{}",
                    c.per_1000_accounts_ramped_secs,
                    c.per_100k_messages_secs,
                    if c.includes_server {
                        " (server in the same process)"
                    } else {
                        ""
                    }
                ),
            );
        }
        let _ = writeln!(
            out,
            "\nverdict: {}",
            if self.verdict.passed { "PASS" } else { "FAIL" }
        );
        for failure in &self.verdict.failures {
            let _ = writeln!(out, "  - {failure}");
        }
    }
}

impl Report {
    /// The stages section (when the plan has stages or ran the shorthand's two).
    fn stage_rows(&self, out: &mut String) {
        if self.stages.is_empty() {
            return;
        }
        let _ = writeln!(out, "\nstages");
        for s in &self.stages {
            let f = &s.figures;
            row(
                out,
                &format!(
                    "{} ({:.1} s, accounts {} -> {})",
                    s.name,
                    s.ended_ms.saturating_sub(s.started_ms) as f64 / 1000.0,
                    s.from_accounts,
                    s.to_accounts
                ),
                format!(
                    "+{} -{}, sent/s {:.1}, delivered/s {:.1}, p99 {} ms",
                    s.arrived,
                    s.departed,
                    f.sent_per_sec,
                    f.delivered_per_sec,
                    ms(f.message_p99_us)
                ),
            );
        }
    }
}

fn row(out: &mut String, name: &str, value: String) {
    let _ = writeln!(out, "  {name:<52} {value}");
}

fn fmt_map(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Microseconds as milliseconds with one decimal.
pub fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}
