//! Wall-clock time as the store and the wire keep it: unix milliseconds in an `i64`.
//! Call logic takes the time as an argument; only the edges read the clock here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in unix ms (0 for a clock before 1970, `i64::MAX` far in the future).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// A duration in ms, saturating at `i64::MAX`.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_saturates() {
        assert_eq!(millis(Duration::from_millis(1_500)), 1_500);
        assert_eq!(millis(Duration::MAX), i64::MAX);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(unix_ms() > 1_577_836_800_000);
    }
}
