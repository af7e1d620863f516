//! The security log: one stable line per refused or failed request, with its source
//! address, for people and for fail2ban (the filter is in the README):
//!
//! `security: <what> [key=value ...] from=<address>`
//!
//! at WARN under the target `hotline::security`. A flood from one source would drown
//! the journal, so each (what, address) pair is logged at most once per
//! [`REPEAT_EVERY`], with the number of lines left out since (`repeated=N`): fail2ban
//! still sees the source again within its find time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per (what, address) this often.
pub const REPEAT_EVERY: Duration = Duration::from_secs(10);
/// Sources remembered at most; beyond, old entries are forgotten first.
const REMEMBERED: usize = 10_000;

#[derive(Default)]
struct Recent {
    /// (what, address) -> (last line, lines left out since).
    seen: HashMap<(&'static str, IpAddr), (Instant, u64)>,
}

static RECENT: Mutex<Option<Recent>> = Mutex::new(None);

/// Logs `what` from `from`, unless it was logged for that source within
/// [`REPEAT_EVERY`]. `details` are `key=value` pairs, already quoted where needed.
pub fn log(what: &'static str, from: IpAddr, details: &str) {
    let now = Instant::now();
    let repeated = {
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        match recent
            .get_or_insert_with(Recent::default)
            .admit(what, from, now)
        {
            Some(repeated) => repeated,
            None => return,
        }
    };
    let line = format_line(what, details, repeated, from);
    tracing::warn!(target: "hotline::security", "{line}");
}

/// The line, without the log's own prefix.
pub fn format_line(what: &str, details: &str, repeated: u64, from: IpAddr) -> String {
    let mut line = format!("security: {what}");
    if !details.is_empty() {
        line.push(' ');
        line.push_str(details);
    }
    if repeated > 0 {
        line.push_str(&format!(" repeated={repeated}"));
    }
    line.push_str(&format!(" from={}", from.to_canonical()));
    line
}

impl Recent {
    /// `Some(lines left out since the last)` when this one is to be logged.
    fn admit(&mut self, what: &'static str, from: IpAddr, now: Instant) -> Option<u64> {
        let key = (what, from.to_canonical());
        if let Some((last, skipped)) = self.seen.get_mut(&key) {
            if now.saturating_duration_since(*last) < REPEAT_EVERY {
                *skipped += 1;
                return None;
            }
            let repeated = *skipped;
            *last = now;
            *skipped = 0;
            return Some(repeated);
        }
        if self.seen.len() >= REMEMBERED {
            self.seen
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < REPEAT_EVERY);
        }
        if self.seen.len() < REMEMBERED {
            self.seen.insert(key, (now, 0));
        }
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_source_is_one_line_per_interval() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(r.admit("sip auth failed", a, t0), Some(0));
        for _ in 0..50 {
            assert_eq!(r.admit("sip auth failed", a, t0), None);
        }
        // Another source, or another kind of refusal, has its own line.
        assert_eq!(r.admit("sip auth failed", b, t0), Some(0));
        assert_eq!(r.admit("sip rate limited", a, t0), Some(0));
        assert_eq!(r.admit("sip auth failed", a, t0 + REPEAT_EVERY), Some(50));
        assert_eq!(r.admit("sip auth failed", a, t0 + REPEAT_EVERY), None);
    }

    #[test]
    fn the_line_is_stable() {
        let ip: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            format_line("sip auth failed", "user=\"anna\"", 0, ip),
            "security: sip auth failed user=\"anna\" from=192.0.2.7"
        );
        assert_eq!(
            format_line("sip rate limited", "", 3, ip),
            "security: sip rate limited repeated=3 from=192.0.2.7"
        );
    }
}
