//! The webhook's counters: each webhook bot keeps its own (tests and callers read them), and
//! every count also goes to the process-wide totals the admin face's /metrics shows, so a
//! bot replaced by a reload never makes a total go down.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a webhook delivery task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// An event posted and answered with a 2xx status.
    Delivered,
    /// An attempt that failed for an error (no connection, a non-2xx status).
    AttemptFailed,
    /// An attempt that ran out of time.
    AttemptTimedOut,
    /// An event dropped after its last retry failed.
    GivenUp,
    /// An event dropped because the account's queue was full (the oldest go first).
    DroppedQueueFull,
    /// A 2xx answer whose body was not a valid answer (its actions are not run).
    AnswerInvalid,
    /// An action run successfully.
    ActionDone,
    /// An action that failed (its ZIM error is logged).
    ActionFailed,
}

const COUNTS: usize = 8;

/// One set of counters.
#[derive(Debug)]
pub struct WebhookCounters([AtomicU64; COUNTS]);

impl Default for WebhookCounters {
    fn default() -> Self {
        Self::new()
    }
}

static TOTALS: WebhookCounters = WebhookCounters::new();

impl WebhookCounters {
    /// Every counter at 0.
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; COUNTS])
    }

    /// Adds one to `count` here and in the process-wide totals.
    pub fn add(&self, count: Count) {
        self.0[count as usize].fetch_add(1, Ordering::Relaxed);
        if !std::ptr::eq(self, &TOTALS) {
            TOTALS.0[count as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A counter's value now.
    pub fn get(&self, count: Count) -> u64 {
        self.0[count as usize].load(Ordering::Relaxed)
    }
}

/// The process-wide totals of every webhook bot.
pub fn totals() -> &'static WebhookCounters {
    &TOTALS
}

/// The families: name, help, label, and (label value, count) samples.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, Count)],
);

const FAMILIES: &[Family] = &[
    (
        "zimfleet_webhook_events_total",
        "Webhook events by outcome: delivered, given_up (retries spent), dropped (queue full).",
        "outcome",
        &[
            ("delivered", Count::Delivered),
            ("given_up", Count::GivenUp),
            ("dropped", Count::DroppedQueueFull),
        ],
    ),
    (
        "zimfleet_webhook_attempts_failed_total",
        "Webhook posts that failed, by cause: timeout, or error (no connection, non-2xx).",
        "cause",
        &[
            ("timeout", Count::AttemptTimedOut),
            ("error", Count::AttemptFailed),
        ],
    ),
    (
        "zimfleet_webhook_answers_invalid_total",
        "Webhook answers that were not valid JSON answers (their actions were not run).",
        "",
        &[("", Count::AnswerInvalid)],
    ),
    (
        "zimfleet_webhook_actions_total",
        "Actions from webhook answers, by result.",
        "result",
        &[("done", Count::ActionDone), ("failed", Count::ActionFailed)],
    ),
];

/// `counters` as Prometheus text (format 0.0.4), ready to append to /metrics.
pub fn prometheus_text(counters: &WebhookCounters) -> String {
    let mut out = String::new();
    for (name, help, label, samples) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (value, count) in samples.iter() {
            let n = counters.get(*count);
            if label.is_empty() {
                let _ = writeln!(out, "{name} {n}");
            } else {
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bot_count_also_counts_in_the_totals() {
        let mine = WebhookCounters::new();
        let before = totals().get(Count::GivenUp);
        mine.add(Count::GivenUp);
        mine.add(Count::GivenUp);
        assert_eq!(mine.get(Count::GivenUp), 2);
        assert!(totals().get(Count::GivenUp) >= before + 2);
    }

    #[test]
    fn the_text_names_every_family_once_with_its_values() {
        let c = WebhookCounters::new();
        c.add(Count::DroppedQueueFull);
        c.add(Count::AnswerInvalid);
        let text = prometheus_text(&c);
        for (family, ..) in FAMILIES {
            assert_eq!(text.matches(&format!("# TYPE {family} counter")).count(), 1);
        }
        assert!(text.contains("zimfleet_webhook_events_total{outcome=\"dropped\"} 1\n"));
        assert!(text.contains("zimfleet_webhook_answers_invalid_total 1\n"));
        assert!(text.contains("zimfleet_webhook_actions_total{result=\"done\"} 0\n"));
    }
}
