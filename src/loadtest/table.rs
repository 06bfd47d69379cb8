//! The final human table of a report (stdout at the end of a run or a merge).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::Report;
use crate::protocol::ErrorCode;

impl Report {
    /// The final human table.
    pub fn table(&self) -> String {
        let c = &self.counts;
        let f = &self.figures;
        let mut out = String::new();
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
        row(&mut out, "added", c.accounts_added.to_string());
        row(
            &mut out,
            "fully connected at end",
            format!(
                "{} ({:.2}%)",
                c.accounts_fully_connected,
                f.connected_share * 100.0
            ),
        );
        row(&mut out, "by state", fmt_map(&self.accounts_by_state));
        row(&mut out, "rooms by state", fmt_map(&self.rooms_by_state));
        row(
            &mut out,
            "logins ok / failed",
            format!("{} / {}", c.logins_ok, c.logins_failed),
        );
        row(
            &mut out,
            "room entries ok / failed",
            format!("{} / {}", c.room_entries_ok, c.room_entries_failed),
        );
        row(
            &mut out,
            "logins + room entries/s",
            format!("{:.1}", f.logins_plus_room_entries_per_sec),
        );
        let _ = writeln!(out, "\nrecovery");
        row(
            &mut out,
            "disconnects / reconnects",
            format!("{} / {}", c.disconnects, c.reconnects),
        );
        row(
            &mut out,
            "peak reconnects/s",
            format!(
                "{} (admission limit {})",
                f.peak_reconnects_per_sec, f.admission_limit_per_sec
            ),
        );
        row(
            &mut out,
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
            &mut out,
            "chaos drops / offline / server drops",
            format!(
                "{} / {} / {}",
                c.chaos_drops, c.chaos_offline, c.server_drops
            ),
        );
        let _ = writeln!(out, "\nmessages");
        row(
            &mut out,
            "sent / failed",
            format!("{} / {}", c.messages_sent, c.messages_send_failed),
        );
        row(
            &mut out,
            "delivered / missing / duplicated",
            format!(
                "{} / {} / {}",
                c.messages_delivered, c.messages_missing, c.messages_duplicated
            ),
        );
        row(
            &mut out,
            "sent/s, delivered/s",
            format!("{:.1}, {:.1}", f.sent_per_sec, f.delivered_per_sec),
        );
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
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors");
            for (code, n) in &self.errors {
                row(&mut out, &format!("{}", ErrorCode(*code)), n.to_string());
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
                &mut out,
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
        let _ = writeln!(
            out,
            "\nverdict: {}",
            if self.verdict.passed { "PASS" } else { "FAIL" }
        );
        for failure in &self.verdict.failures {
            let _ = writeln!(out, "  - {failure}");
        }
        out
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
