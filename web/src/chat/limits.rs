//! Rate limits on the public chat endpoints (`[chat.limits]`): each kind of request has a
//! budget per minute per client address and per site, kept in memory by `governor`'s
//! keyed GCRA limiters (a burst of the whole budget, then one more every 60/N seconds).
//!
//! A refusal is a message for the visitor with the seconds to wait. A refused address is
//! logged as `security: rate limited <what> from=<ip>` (WARN, target `hotline::security`),
//! at most once per [`LOG_EVERY`] per address (IPv6: per /64) and kind, so a flood can't
//! flood the log while fail2ban still sees a steady line.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// How often one source's refusals are logged at most.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A budget per minute; 0: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    #[serde(default)]
    pub per_address: u32,
    #[serde(default)]
    pub per_site: u32,
}

impl Limit {
    const fn new(per_address: u32, per_site: u32) -> Limit {
        Limit {
            per_address,
            per_site,
        }
    }
}

/// `[chat.limits]` in hotline.toml: requests per minute per client address and per site.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Off: nothing is limited (benchmarks from one address).
    pub enabled: bool,
    /// New chats (`POST /chat/start`).
    pub start: Limit,
    /// The visitor's messages and menu answers.
    pub messages: Limit,
    /// Pages visited, from the widget.
    pub page_views: Limit,
    /// What the visitor is typing (the widget sends at most two a second).
    pub drafts: Limit,
    /// Upload requests (each up to 5 files).
    pub uploads: Limit,
    /// Transcript e-mails asked for (besides the few each chat may send at all).
    pub transcripts: Limit,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            enabled: true,
            start: Limit::new(5, 300),
            messages: Limit::new(30, 1200),
            page_views: Limit::new(30, 1200),
            drafts: Limit::new(240, 6000),
            uploads: Limit::new(10, 300),
            transcripts: Limit::new(5, 60),
        }
    }
}

/// What a visitor asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Start,
    Message,
    PageView,
    Draft,
    Upload,
    Transcript,
}

impl Action {
    const ALL: [Action; 6] = [
        Action::Start,
        Action::Message,
        Action::PageView,
        Action::Draft,
        Action::Upload,
        Action::Transcript,
    ];

    /// The name in the log line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "chat_start",
            Action::Message => "chat_message",
            Action::PageView => "chat_page_view",
            Action::Draft => "chat_draft",
            Action::Upload => "chat_upload",
            Action::Transcript => "chat_transcript",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Action::Start => "new chats",
            Action::Message => "messages",
            Action::PageView => "page views",
            Action::Draft => "typing updates",
            Action::Upload => "uploads",
            Action::Transcript => "transcript requests",
        }
    }

    fn limit(self, c: &LimitsConfig) -> Limit {
        match self {
            Action::Start => c.start,
            Action::Message => c.messages,
            Action::PageView => c.page_views,
            Action::Draft => c.drafts,
            Action::Upload => c.uploads,
            Action::Transcript => c.transcripts,
        }
    }
}

/// A request over a budget: what to tell the visitor, and when to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub retry_after_s: u64,
}

/// The address a budget is kept for: IPv4 as it is, IPv6 by its /64 (one subscriber's
/// network has a whole /64 to hop around in), an IPv4-mapped IPv6 address as IPv4.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    hotline_sip::limits::source_host(ip)
}

fn keyed<K: Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

struct Budgets {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_site: Option<DefaultKeyedRateLimiter<String>>,
}

/// Every budget, and the limiters that keep the log lines few.
pub struct ChatLimiters {
    enabled: bool,
    budgets: Vec<(Action, Budgets)>,
    log_address: DefaultKeyedRateLimiter<(IpAddr, Action)>,
    log_site: DefaultKeyedRateLimiter<(String, Action)>,
    clock: DefaultClock,
}

impl ChatLimiters {
    pub fn new(c: &LimitsConfig) -> ChatLimiters {
        let budgets = Action::ALL
            .iter()
            .map(|a| {
                let l = a.limit(c);
                (
                    *a,
                    Budgets {
                        per_address: keyed(l.per_address),
                        per_site: keyed(l.per_site),
                    },
                )
            })
            .collect();
        // One line per LOG_EVERY (a zero period can't happen: LOG_EVERY is fixed).
        let log_quota = Quota::with_period(LOG_EVERY)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        ChatLimiters {
            enabled: c.enabled,
            budgets,
            log_address: RateLimiter::keyed(log_quota),
            log_site: RateLimiter::keyed(log_quota),
            clock: DefaultClock::default(),
        }
    }

    fn budgets(&self, action: Action) -> Option<&Budgets> {
        self.budgets
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, b)| b)
    }

    /// Takes one request of `action` from `ip`'s budget and then the site's. The
    /// address's budget comes first: one flooding address runs out of its own and leaves
    /// the site's to everyone else.
    pub fn check(&self, action: Action, ip: IpAddr, site: &str) -> Result<(), Refusal> {
        if !self.enabled {
            return Ok(());
        }
        let Some(b) = self.budgets(action) else {
            return Ok(());
        };
        let key = limit_key(ip);
        if let Some(l) = &b.per_address
            && let Err(not_until) = l.check_key(&key)
        {
            if self.log_address.check_key(&(key, action)).is_ok() {
                tracing::warn!(target: "hotline::security", "{}", log_line(action, ip));
            }
            let wait = not_until.wait_time_from(self.clock.now());
            return Err(refusal(action, wait, "from your network"));
        }
        if let Some(l) = &b.per_site {
            let key = site.to_string();
            if let Err(not_until) = l.check_key(&key) {
                if self.log_site.check_key(&(key, action)).is_ok() {
                    // Not a `security:` line: the last address refused isn't the culprit.
                    tracing::warn!(
                        "chat: site {site} is over its limit of {} per minute (last address {ip})",
                        action.name()
                    );
                }
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(refusal(action, wait, "on this website right now"));
            }
        }
        Ok(())
    }

    /// Forgets addresses and sites whose budgets are full again (the periodic sweep), so
    /// the maps stay as small as the recent traffic.
    pub fn forget_idle(&self) {
        for (_, b) in &self.budgets {
            if let Some(l) = &b.per_address {
                l.retain_recent();
                l.shrink_to_fit();
            }
            if let Some(l) = &b.per_site {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        self.log_address.retain_recent();
        self.log_address.shrink_to_fit();
        self.log_site.retain_recent();
        self.log_site.shrink_to_fit();
    }

    /// Addresses (and address, kind pairs of the log) remembered now; for tests.
    pub fn remembered(&self) -> usize {
        self.budgets
            .iter()
            .filter_map(|(_, b)| b.per_address.as_ref())
            .map(|l| l.len())
            .sum()
    }
}

/// The security log's line for a refused address (fail2ban reads it: keep it stable).
pub fn log_line(action: Action, ip: IpAddr) -> String {
    format!(
        "security: rate limited {} from={}",
        action.name(),
        ip.to_canonical()
    )
}

fn refusal(action: Action, wait: Duration, whence: &str) -> Refusal {
    // Whole seconds, rounded up: "try again in 0 seconds" would be wrong.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let unit = if secs == 1 { "second" } else { "seconds" };
    Refusal {
        message: format!(
            "Too many {} {whence}. Please try again in {secs} {unit}.",
            action.what()
        ),
        retry_after_s: secs,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap

    use std::net::Ipv4Addr;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, last))
    }

    #[test]
    fn budgets_per_address_then_per_site() {
        let c = LimitsConfig {
            start: Limit::new(3, 5),
            ..Default::default()
        };
        let l = ChatLimiters::new(&c);
        for _ in 0..3 {
            assert_eq!(l.check(Action::Start, ip(1), "demo"), Ok(()));
        }
        let r = l.check(Action::Start, ip(1), "demo").unwrap_err();
        assert!(
            r.message
                .starts_with("Too many new chats from your network"),
            "{r:?}"
        );
        assert!((1..=20).contains(&r.retry_after_s), "{r:?}");
        // Another address still has its budget, until the site's is gone.
        assert_eq!(l.check(Action::Start, ip(2), "demo"), Ok(()));
        assert_eq!(l.check(Action::Start, ip(2), "demo"), Ok(()));
        let r = l.check(Action::Start, ip(3), "demo").unwrap_err();
        assert!(r.message.contains("on this website"), "{r:?}");
        // Another site has its own; other kinds of request theirs.
        assert_eq!(l.check(Action::Start, ip(4), "other"), Ok(()));
        assert_eq!(l.check(Action::Message, ip(1), "demo"), Ok(()));
    }

    #[test]
    fn zero_is_no_limit_and_off_is_off() {
        let c = LimitsConfig {
            start: Limit::new(0, 0),
            ..Default::default()
        };
        let l = ChatLimiters::new(&c);
        for _ in 0..100 {
            assert_eq!(l.check(Action::Start, ip(1), "demo"), Ok(()));
        }
        let off = ChatLimiters::new(&LimitsConfig {
            enabled: false,
            ..Default::default()
        });
        for _ in 0..100 {
            assert_eq!(off.check(Action::Transcript, ip(1), "demo"), Ok(()));
        }
    }

    #[test]
    fn ipv6_is_limited_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(other));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(limit_key(mapped), ip(7));
        let l = ChatLimiters::new(&LimitsConfig {
            start: Limit::new(2, 0),
            ..Default::default()
        });
        assert!(l.check(Action::Start, a, "demo").is_ok());
        assert!(l.check(Action::Start, b, "demo").is_ok());
        assert!(l.check(Action::Start, a, "demo").is_err());
        assert!(l.check(Action::Start, other, "demo").is_ok());
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let l = ChatLimiters::new(&LimitsConfig {
            messages: Limit::new(6000, 0),
            ..Default::default()
        });
        for i in 0..50 {
            l.check(Action::Message, ip(i), "demo").unwrap();
        }
        assert_eq!(l.remembered(), 50);
        // 6000 a minute: one request is earned back in 10 ms.
        std::thread::sleep(Duration::from_millis(50));
        l.forget_idle();
        assert_eq!(l.remembered(), 0);
    }

    #[test]
    fn the_log_line_is_stable() {
        assert_eq!(
            log_line(Action::Start, ip(9)),
            "security: rate limited chat_start from=203.0.113.9"
        );
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(
            log_line(Action::Upload, mapped),
            "security: rate limited chat_upload from=203.0.113.9"
        );
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            [
                "chat_start",
                "chat_message",
                "chat_page_view",
                "chat_draft",
                "chat_upload",
                "chat_transcript"
            ]
        );
    }

    #[test]
    fn waits_read_well() {
        let r = refusal(
            Action::Message,
            Duration::from_millis(1500),
            "from your network",
        );
        assert_eq!(
            r.message,
            "Too many messages from your network. Please try again in 2 seconds."
        );
        assert_eq!(refusal(Action::Draft, Duration::ZERO, "x").retry_after_s, 1);
    }
}
