//! Source-address policy: trusted networks, per-source request rate, and the
//! failed-authentication throttle. Tables are bounded: a flood of spoofed
//! sources can't make them grow without limit.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A source as a whole, for per-source limits: an IPv4 address (IPv4-mapped IPv6 too),
/// or an IPv6 /64, since one IPv6 host usually has a whole /64 to pick addresses from.
pub fn source_host(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(o.into())
        }
        v4 => v4,
    }
}

/// An address block: `192.0.2.0/24`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error("not an IP address: {0:?}")]
    Address(String),
    #[error("prefix length {0} is too long for the address")]
    Prefix(String),
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNet, IpNetError> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > max {
            return Err(IpNetError::Prefix(prefix.to_string()));
        }
        Ok(IpNet {
            addr: addr.to_canonical(),
            prefix,
        })
    }

    /// Does the block hold `ip`? IPv4-mapped IPv6 sources (a dual-stack
    /// socket) count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

impl From<IpAddr> for IpNet {
    fn from(addr: IpAddr) -> IpNet {
        let prefix = match addr.to_canonical() {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        IpNet {
            addr: addr.to_canonical(),
            prefix,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let s = s.trim();
        match s.split_once('/') {
            None => s
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| IpNetError::Address(s.to_string())),
            Some((addr, prefix)) => {
                let addr = addr
                    .parse::<IpAddr>()
                    .map_err(|_| IpNetError::Address(addr.to_string()))?;
                let prefix = prefix
                    .parse::<u8>()
                    .map_err(|_| IpNetError::Prefix(prefix.to_string()))?;
                IpNet::new(addr, prefix)
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A token bucket per source: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// Sources a table tracks at most.
const TABLE_CAP: usize = 8192;
/// A full table is swept at most this often; in between, new sources are
/// refused (rate table) or not tracked (throttle), so a flood of spoofed
/// sources costs a bounded amount of work.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    fn refill(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + elapsed * f64::from(self.limit.per_second)).min(f64::from(self.limit.burst))
    }

    /// Takes one token for a request from `ip`; false when over the limit.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = ip.to_canonical();
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= TABLE_CAP {
            self.sweep(now);
            if self.buckets.len() >= TABLE_CAP {
                return false;
            }
        }
        let burst = f64::from(self.limit.burst);
        let tokens = match self.buckets.get(&ip) {
            Some(b) => self.refill(b, now),
            None => burst,
        };
        let allowed = tokens >= 1.0;
        self.buckets.insert(
            ip,
            Bucket {
                tokens: if allowed { tokens - 1.0 } else { tokens },
                last: now,
            },
        );
        allowed
    }

    /// Drops sources whose bucket has filled up again: they are as good as new.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let burst = f64::from(self.limit.burst);
        let full: Vec<IpAddr> = self
            .buckets
            .iter()
            .filter(|(_, b)| self.refill(b, now) >= burst)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in full {
            self.buckets.remove(&ip);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[derive(Debug)]
struct Failures {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

impl Failures {
    fn new(now: Instant) -> Failures {
        Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        }
    }

    fn is_blocked(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }

    /// Counts one failure; true when it is the one that blocks for `window`.
    fn add(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        let expired = now.saturating_duration_since(self.window_start) >= window
            && self.blocked_until.is_none_or(|u| now >= u);
        if expired {
            *self = Failures::new(now);
        }
        self.count = self.count.saturating_add(1);
        if self.count >= limit && self.blocked_until.is_none() {
            self.blocked_until = Some(now + window);
            return true;
        }
        false
    }

    fn is_over(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.window_start) >= window && !self.is_blocked(now)
    }
}

/// Account names longer than this are cut in the throttle's keys.
const ACCOUNT_KEY_LEN: usize = 64;
/// Failures from one address, all accounts together, that block the address: many
/// times one account's, so the phones behind an office's NAT don't lock each other out,
/// but one host can't spray guesses over thousands of account names.
const ADDRESS_FACTOR: u32 = 10;

/// Failed authentications per source address and account: `limit` failures
/// within `window` block that account from that address for `window`. Keyed by
/// both, so one phone's failures lock out neither the other phones behind the
/// same NAT nor that account elsewhere. An address with `ADDRESS_FACTOR` times as
/// many failures over all accounts is blocked as a whole. (A blind spoofer can't
/// add failures in someone else's name: only answers to challenges sent to that
/// address count; see `server_auth`.)
#[derive(Debug)]
pub(crate) struct FailureThrottle {
    limit: u32,
    window: Duration,
    sources: HashMap<(IpAddr, String), Failures>,
    addresses: HashMap<IpAddr, Failures>,
    last_sweep: Option<Instant>,
}

impl FailureThrottle {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        FailureThrottle {
            limit,
            window,
            sources: HashMap::new(),
            addresses: HashMap::new(),
            last_sweep: None,
        }
    }

    fn key(ip: IpAddr, account: &str) -> (IpAddr, String) {
        let cut = account
            .char_indices()
            .nth(ACCOUNT_KEY_LEN)
            .map_or(account, |(i, _)| &account[..i]);
        (ip.to_canonical(), cut.to_string())
    }

    fn host(ip: IpAddr) -> IpAddr {
        source_host(ip)
    }

    pub(crate) fn is_blocked(&self, ip: IpAddr, account: &str, now: Instant) -> bool {
        let address = self.addresses.get(&Self::host(ip));
        let source = self.sources.get(&Self::key(ip, account));
        address.is_some_and(|f| f.is_blocked(now)) || source.is_some_and(|f| f.is_blocked(now))
    }

    /// Records a failure; true when it is the one that blocks (the account from this
    /// address, or the whole address).
    pub(crate) fn record_failure(&mut self, ip: IpAddr, account: &str, now: Instant) -> bool {
        let key = Self::key(ip, account);
        let ip = Self::host(ip);
        let full = (!self.sources.contains_key(&key) && self.sources.len() >= TABLE_CAP)
            || (!self.addresses.contains_key(&ip) && self.addresses.len() >= TABLE_CAP);
        if full {
            self.sweep(now);
        }
        let (limit, window) = (self.limit, self.window);
        let mut blocked = false;
        // A full table still counts the address as a whole when it can, so filling the
        // table with made-up names doesn't switch the throttle off for that host.
        if self.addresses.contains_key(&ip) || self.addresses.len() < TABLE_CAP {
            let f = self
                .addresses
                .entry(ip)
                .or_insert_with(|| Failures::new(now));
            blocked |= f.add(now, limit.saturating_mul(ADDRESS_FACTOR), window);
        }
        if self.sources.contains_key(&key) || self.sources.len() < TABLE_CAP {
            let f = self
                .sources
                .entry(key)
                .or_insert_with(|| Failures::new(now));
            blocked |= f.add(now, limit, window);
        }
        blocked
    }

    /// Forgets sources whose window and block are over.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let window = self.window;
        self.sources.retain(|_, f| !f.is_over(now, window));
        self.addresses.retain(|_, f| !f.is_over(now, window));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let net: IpNet = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains(ip("192.0.2.77")));
        assert!(!net.contains(ip("192.0.3.1")));
        assert!(net.contains(ip("::ffff:192.0.2.9")), "v4-mapped source");
        let one: IpNet = "198.51.100.7".parse().unwrap();
        assert!(one.contains(ip("198.51.100.7")) && !one.contains(ip("198.51.100.8")));
        let v6: IpNet = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:7fff::1")));
        assert!(!v6.contains(ip("2001:db8:8000::1")));
        assert!(!v6.contains(ip("192.0.2.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.5")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("host/8".parse::<IpNet>().is_err());
        assert!("10.0.0.0/x".parse::<IpNet>().is_err());
        assert_eq!(net.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn token_bucket() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let a = ip("192.0.2.1");
        assert!((0..3).all(|_| r.allow(a, t0)));
        assert!(!r.allow(a, t0));
        assert!(r.allow(ip("192.0.2.2"), t0), "per source");
        assert!(!r.allow(a, t0 + Duration::from_millis(499)));
        assert!(r.allow(a, t0 + Duration::from_millis(500)));
        assert!(!r.allow(a, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn tables_stay_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 2,
        });
        let mut th = FailureThrottle::new(5, Duration::from_secs(60));
        for i in 0..(TABLE_CAP as u32 + 100) {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            r.allow(a, t0);
            th.record_failure(a, "alice", t0);
        }
        assert_eq!(r.len(), TABLE_CAP);
        assert_eq!(th.len(), TABLE_CAP);
        // Once the buckets have refilled, a sweep makes room again.
        let later = t0 + Duration::from_secs(5);
        assert!(r.allow(ip("192.0.2.200"), later));
        assert_eq!(r.len(), 1);
        th.record_failure(ip("192.0.2.200"), "alice", t0 + Duration::from_secs(61));
        assert_eq!(th.len(), 1);
    }

    #[test]
    fn throttle_blocks_after_the_limit_for_one_window() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut th = FailureThrottle::new(3, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        assert!(!th.record_failure(a, "alice", s(0)));
        assert!(!th.record_failure(a, "alice", s(10)));
        assert!(!th.is_blocked(a, "alice", s(10)));
        assert!(th.record_failure(a, "alice", s(20)), "the blocking failure");
        assert!(th.is_blocked(a, "alice", s(20)));
        assert!(th.is_blocked(a, "alice", s(79)));
        assert!(!th.is_blocked(a, "alice", s(80)));
        // Failures spread over more than a window don't add up.
        let b = ip("192.0.2.2");
        th.record_failure(b, "alice", s(0));
        th.record_failure(b, "alice", s(30));
        th.record_failure(b, "alice", s(61));
        assert!(!th.is_blocked(b, "alice", s(61)));
    }

    #[test]
    fn a_blocked_account_blocks_neither_its_neighbours_nor_itself_elsewhere() {
        let t0 = Instant::now();
        let mut th = FailureThrottle::new(3, Duration::from_secs(60));
        let office = ip("198.51.100.1");
        for _ in 0..3 {
            th.record_failure(office, "anna", t0);
        }
        assert!(th.is_blocked(office, "anna", t0));
        assert!(
            !th.is_blocked(office, "bela", t0),
            "another phone behind the NAT"
        );
        assert!(
            !th.is_blocked(ip("192.0.2.7"), "anna", t0),
            "anna from home"
        );
    }

    #[test]
    fn one_host_spraying_many_accounts_is_blocked_as_a_whole() {
        let t0 = Instant::now();
        let mut th = FailureThrottle::new(3, Duration::from_secs(60));
        let host = ip("203.0.113.66");
        // One wrong guess each for 29 names: no account is blocked yet...
        for i in 0..29 {
            assert!(!th.record_failure(host, &format!("user{i}"), t0));
        }
        assert!(!th.is_blocked(host, "anna", t0));
        // ...the 30th (10 times one account's limit) blocks the host for every name.
        assert!(th.record_failure(host, "user29", t0));
        assert!(th.is_blocked(host, "anna", t0));
        assert!(!th.is_blocked(ip("198.51.100.1"), "anna", t0));
    }

    #[test]
    fn a_full_table_still_counts_the_host() {
        let t0 = Instant::now();
        let mut th = FailureThrottle::new(5, Duration::from_secs(60));
        let host = ip("203.0.113.66");
        // Earlier hosts' failures (one each) fill the per-account table...
        for i in 0..TABLE_CAP as u32 - 1 {
            th.record_failure(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), "x", t0);
        }
        // ...and a host sprays made-up names: blocked all the same, at 50.
        let blocked: Vec<bool> = (0..50)
            .map(|i| th.record_failure(host, &format!("made-up-{i}"), t0))
            .collect();
        assert_eq!(blocked.iter().position(|b| *b), Some(49));
        assert!(th.is_blocked(host, "anna", t0));
        // IPv6: the whole /64 is one host.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut th = FailureThrottle::new(5, Duration::from_secs(60));
        for i in 0..50 {
            th.record_failure(v6(&format!("2001:db8:1:2::{i:x}")), &format!("n{i}"), t0);
        }
        assert!(th.is_blocked(v6("2001:db8:1:2:ffff::1"), "anna", t0));
        assert!(!th.is_blocked(v6("2001:db8:1:3::1"), "anna", t0));
    }
}
