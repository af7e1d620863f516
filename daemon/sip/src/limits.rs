//! Source-address policy: trusted networks, per-source request rate, and the
//! failed-authentication throttle. Tables are bounded: a flood of spoofed
//! sources can't make them grow without limit.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

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

/// Failed authentications per source: `limit` failures within `window`
/// block the source for `window`.
#[derive(Debug)]
pub(crate) struct FailureThrottle {
    limit: u32,
    window: Duration,
    sources: HashMap<IpAddr, Failures>,
    last_sweep: Option<Instant>,
}

impl FailureThrottle {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        FailureThrottle {
            limit,
            window,
            sources: HashMap::new(),
            last_sweep: None,
        }
    }

    pub(crate) fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.sources
            .get(&ip.to_canonical())
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| now < until)
    }

    pub(crate) fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let ip = ip.to_canonical();
        if !self.sources.contains_key(&ip) && self.sources.len() >= TABLE_CAP {
            self.sweep(now);
            if self.sources.len() >= TABLE_CAP {
                return;
            }
        }
        let window = self.window;
        let f = self.sources.entry(ip).or_insert(Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        let expired = now.saturating_duration_since(f.window_start) >= window
            && f.blocked_until.is_none_or(|u| now >= u);
        if expired {
            *f = Failures {
                window_start: now,
                count: 0,
                blocked_until: None,
            };
        }
        f.count = f.count.saturating_add(1);
        if f.count >= self.limit {
            f.blocked_until = Some(now + window);
        }
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
        self.sources.retain(|_, f| {
            now.saturating_duration_since(f.window_start) < window
                || f.blocked_until.is_some_and(|u| now < u)
        });
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
            th.record_failure(a, t0);
        }
        assert_eq!(r.len(), TABLE_CAP);
        assert_eq!(th.len(), TABLE_CAP);
        // Once the buckets have refilled, a sweep makes room again.
        let later = t0 + Duration::from_secs(5);
        assert!(r.allow(ip("192.0.2.200"), later));
        assert_eq!(r.len(), 1);
        th.record_failure(ip("192.0.2.200"), t0 + Duration::from_secs(61));
        assert_eq!(th.len(), 1);
    }

    #[test]
    fn throttle_blocks_after_the_limit_for_one_window() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut th = FailureThrottle::new(3, Duration::from_secs(60));
        let a = ip("192.0.2.1");
        th.record_failure(a, s(0));
        th.record_failure(a, s(10));
        assert!(!th.is_blocked(a, s(10)));
        th.record_failure(a, s(20));
        assert!(th.is_blocked(a, s(20)));
        assert!(th.is_blocked(a, s(79)));
        assert!(!th.is_blocked(a, s(80)));
        // Failures spread over more than a window don't add up.
        let b = ip("192.0.2.2");
        th.record_failure(b, s(0));
        th.record_failure(b, s(30));
        th.record_failure(b, s(61));
        assert!(!th.is_blocked(b, s(61)));
    }
}
