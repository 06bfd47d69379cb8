//! The crate's one wall clock: milliseconds since the Unix epoch.
//!
//! Timers and deadlines use monotonic `Instant`s; this clock is only for values that cross a
//! process boundary (token expiries, message timestamps, report time axes).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the system clock is set before 1970.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch (latencies measured across processes, e.g. the load
/// tester's message send time); 0 if the system clock is set before 1970.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch; 0 if the system clock is set before 1970.
pub fn unix_secs() -> u64 {
    unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_agree() {
        let ms = unix_ms();
        let s = unix_secs();
        assert!(ms > 1_600_000_000_000, "a clock after 2020");
        assert!(s >= ms / 1000 && s <= ms / 1000 + 1);
    }
}
