//! GET /metrics: the fleet in Prometheus text format (version 0.0.4), rendered by hand from
//! [`FleetMetrics`] and [`Fleet::status`](crate::client::Fleet::status).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::client::{AccountStatus, FleetMetrics};
use crate::protocol::{ConnectionState, RoomState};

/// The content type Prometheus expects.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of the duration histograms, in seconds.
const BUCKETS_SECS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Counters of the runner itself (not of the fleet).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunnerCounts {
    pub events_file_lost: u64,
    pub events_stream_lost: u64,
    pub uptime_secs: f64,
}

/// Renders every metric.
pub fn render(metrics: &FleetMetrics, status: &[AccountStatus], runner: RunnerCounts) -> String {
    let mut out = String::with_capacity(8 * 1024);
    state_gauges(&mut out, status);
    link_metrics(&mut out, metrics);
    outcome_counters(&mut out, metrics, runner);
    out
}

/// Accounts and rooms by ZIM state.
fn state_gauges(out: &mut String, status: &[AccountStatus]) {
    let mut accounts = [0u64; 4];
    let mut rooms = [0u64; 3];
    for account in status {
        if let Some(n) = connection_index(account.state) {
            accounts[n] += 1;
        }
        for room in &account.rooms {
            if let Some(n) = room_index(room.state) {
                rooms[n] += 1;
            }
        }
    }
    family(
        out,
        "zimfleet_accounts",
        "gauge",
        "Accounts by ZIM connection state.",
    );
    for (n, name) in ["disconnected", "connecting", "connected", "reconnecting"]
        .iter()
        .enumerate()
    {
        sample(
            out,
            "zimfleet_accounts",
            &[("state", name)],
            accounts[n] as f64,
        );
    }
    family(
        out,
        "zimfleet_rooms",
        "gauge",
        "Rooms kept by the accounts, by ZIM room state.",
    );
    for (n, name) in ["disconnected", "connecting", "connected"]
        .iter()
        .enumerate()
    {
        sample(out, "zimfleet_rooms", &[("state", name)], rooms[n] as f64);
    }
}

/// Logins, reconnects, room recoveries.
fn link_metrics(out: &mut String, m: &FleetMetrics) {
    counter(
        out,
        "zimfleet_login_attempts_total",
        "Logins attempted: first logins and re-logins while Reconnecting.",
        &[
            ("kind", "first", m.logins_attempted.get()),
            ("kind", "relogin", m.relogins_attempted.get()),
        ],
    );
    counter(
        out,
        "zimfleet_login_successes_total",
        "Logins that succeeded: first logins and re-logins while Reconnecting.",
        &[
            ("kind", "first", m.logins_succeeded.get()),
            ("kind", "relogin", m.relogins_succeeded.get()),
        ],
    );
    counter(
        out,
        "zimfleet_reconnects_total",
        "Links lost: each (Reconnecting, LoginInterrupted).",
        &[("", "", m.disconnects.get())],
    );
    histogram(
        out,
        "zimfleet_reconnect_duration_seconds",
        "Time from Reconnecting back to Connected.",
        &m.reconnect_time.snapshot(),
    );
    histogram(
        out,
        "zimfleet_room_recovery_duration_seconds",
        "Time from a room's (Connecting, NetworkInterrupted) back to (Connected, Success).",
        &m.room_recovery_time.snapshot(),
    );
    counter(
        out,
        "zimfleet_room_recoveries_total",
        "Room recoveries after T2, by outcome.",
        &[
            ("outcome", "still_member", m.room_recovered_member.get()),
            (
                "outcome",
                "rejoined_after_timeout",
                m.room_recovered_after_timeout.get(),
            ),
            (
                "outcome",
                "reentered_after_not_exist",
                m.room_recovered_after_not_exist.get(),
            ),
            ("outcome", "gave_up", m.room_recovery_gave_up.get()),
        ],
    );
}

/// Renewals, messages, ends, panics, lost events, uptime.
fn outcome_counters(out: &mut String, m: &FleetMetrics, runner: RunnerCounts) {
    counter(
        out,
        "zimfleet_token_renewals_total",
        "Token renewals by outcome.",
        &[
            ("outcome", "ok", m.renewals_ok.get()),
            ("outcome", "failed", m.renewals_failed.get()),
            ("outcome", "gave_up", m.renewals_gave_up.get()),
        ],
    );
    counter(
        out,
        "zimfleet_messages_total",
        "Messages sent (acknowledged by the server) and received by bots.",
        &[
            ("direction", "out", m.messages_sent.get()),
            ("direction", "in", m.messages_received.get()),
        ],
    );
    counter(
        out,
        "zimfleet_message_send_failures_total",
        "Sends that ended with a ZIM error.",
        &[("", "", m.messages_send_failed.get())],
    );
    counter(
        out,
        "zimfleet_accounts_ended_total",
        "Accounts ended terminally, by reason (kickouts: kicked_out, token_expired, unregistered).",
        &[
            ("reason", "kicked_out", m.kicked_out.get()),
            ("reason", "token_expired", m.token_expired.get()),
            ("reason", "unregistered", m.unregistered.get()),
            ("reason", "login_rejected", m.login_rejected.get()),
            ("reason", "logged_out", m.logged_out.get()),
        ],
    );
    counter(
        out,
        "zimfleet_handler_panics_total",
        "Bot handler panics caught (each is logged; none is fatal).",
        &[("", "", m.handler_panics.get())],
    );
    counter(
        out,
        "zimfleet_events_lost_total",
        "Events a slow subscriber of the runner did not get.",
        &[
            ("subscriber", "events_file", runner.events_file_lost),
            ("subscriber", "events_stream", runner.events_stream_lost),
        ],
    );
    family(
        out,
        "zimfleet_uptime_seconds",
        "gauge",
        "Seconds since zimfleet run started.",
    );
    sample(out, "zimfleet_uptime_seconds", &[], runner.uptime_secs);
}

fn connection_index(state: ConnectionState) -> Option<usize> {
    match state {
        ConnectionState::Disconnected => Some(0),
        ConnectionState::Connecting => Some(1),
        ConnectionState::Connected => Some(2),
        ConnectionState::Reconnecting => Some(3),
        ConnectionState::Unknown(_) => None,
    }
}

fn room_index(state: RoomState) -> Option<usize> {
    match state {
        RoomState::Disconnected => Some(0),
        RoomState::Connecting => Some(1),
        RoomState::Connected => Some(2),
        RoomState::Unknown(_) => None,
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{v}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A counter family; a sample with an empty label name has no labels.
fn counter(out: &mut String, name: &str, help: &str, samples: &[(&str, &str, u64)]) {
    family(out, name, "counter", help);
    for (label, value_label, value) in samples {
        let labels: &[(&str, &str)] = if label.is_empty() {
            &[]
        } else {
            &[(label, value_label)]
        };
        sample(out, name, labels, *value as f64);
    }
}

/// A histogram from an HDR histogram of microseconds.
fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram<u64>) {
    family(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    for le in BUCKETS_SECS {
        let count = if h.is_empty() {
            0
        } else {
            h.count_between(0, (le * 1e6) as u64)
        };
        sample(out, &bucket, &[("le", &le.to_string())], count as f64);
    }
    sample(out, &bucket, &[("le", "+Inf")], h.len() as f64);
    let sum_secs = if h.is_empty() {
        0.0
    } else {
        h.mean() * h.len() as f64 / 1e6
    };
    sample(out, &format!("{name}_sum"), &[], sum_secs);
    sample(out, &format!("{name}_count"), &[], h.len() as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RoomStatus;
    use crate::protocol::{ConnectionEvent, RoomEvent};
    use std::time::Duration;

    fn account(state: ConnectionState, rooms: &[RoomState]) -> AccountStatus {
        AccountStatus {
            user_id: "u".into(),
            state,
            last_event: ConnectionEvent::Success,
            since_ms: 0,
            ended: None,
            rooms: rooms
                .iter()
                .map(|s| RoomStatus {
                    room_id: "r".into(),
                    state: *s,
                    last_event: RoomEvent::Success,
                    since_ms: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn gauges_counters_and_histograms() {
        let m = FleetMetrics::default();
        m.disconnects.add(3);
        m.kicked_out.inc();
        m.messages_sent.add(7);
        m.reconnect_time.record(Duration::from_millis(700));
        m.reconnect_time.record(Duration::from_secs(3));
        let status = [
            account(
                ConnectionState::Connected,
                &[RoomState::Connected, RoomState::Connecting],
            ),
            account(ConnectionState::Reconnecting, &[RoomState::Connecting]),
        ];
        let text = render(&m, &status, RunnerCounts::default());
        for line in [
            "zimfleet_accounts{state=\"connected\"} 1",
            "zimfleet_accounts{state=\"reconnecting\"} 1",
            "zimfleet_accounts{state=\"disconnected\"} 0",
            "zimfleet_rooms{state=\"connecting\"} 2",
            "zimfleet_reconnects_total 3",
            "zimfleet_accounts_ended_total{reason=\"kicked_out\"} 1",
            "zimfleet_messages_total{direction=\"out\"} 7",
            "zimfleet_reconnect_duration_seconds_bucket{le=\"0.5\"} 0",
            "zimfleet_reconnect_duration_seconds_bucket{le=\"1\"} 1",
            "zimfleet_reconnect_duration_seconds_bucket{le=\"5\"} 2",
            "zimfleet_reconnect_duration_seconds_bucket{le=\"+Inf\"} 2",
            "zimfleet_reconnect_duration_seconds_count 2",
            "# TYPE zimfleet_reconnect_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
