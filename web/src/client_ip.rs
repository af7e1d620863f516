//! The client's address, for limits and the security log: the TCP peer or, behind a
//! trusted proxy, the address that proxy saw.
//!
//! How to use it: take [`ClientIp`] as an extractor in any handler (`ClientIp(ip):
//! ClientIp`). It reads two request extensions:
//! - `ConnectInfo<SocketAddr>`: the TCP peer, put there by [`crate::server::serve`] (or
//!   by axum's `into_make_service_with_connect_info`);
//! - [`TrustedProxies`]: the `http.trusted_proxies` setting, added once for the whole
//!   app by the daemon as a layer: `app.layer(axum::Extension(TrustedProxies::new(list)))`.
//!
//! Without the `TrustedProxies` extension no proxy is trusted and `X-Forwarded-For` is
//! ignored, so a forgotten layer fails safe. When the peer is trusted, the header is read
//! from the right (each proxy appends the address it saw) and the first address that is
//! not itself a trusted proxy is the client; addresses to its left are whatever the
//! client wrote and are never believed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::connect_info::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use hotline_sip::IpNet;

/// The proxies (IPs or CIDR blocks) whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets.into())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client behind `peer`: the right-most `X-Forwarded-For` address that is not a
    /// trusted proxy, when `peer` is one; otherwise `peer` itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        // Several headers count as one list, in order.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Garbage left of a trusted hop: the last address we could believe stands.
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[v6]:p`, `v4:p`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client's address; `None` only when the server gave no connect info (unit tests
/// that call the router directly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn from_parts(parts: &Parts) -> ClientIp {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return ClientIp(None);
        };
        let client = match parts.extensions.get::<TrustedProxies>() {
            Some(trusted) => trusted.client(peer.ip(), &parts.headers),
            None => peer.ip().to_canonical(),
        };
        ClientIp(Some(client))
    }
}

/// The address, or `unknown`: the form the security log writes.
impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::from_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request};

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_writes() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = xff(&["198.51.100.7"]);
        assert_eq!(t.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        // No proxies configured: the header means nothing.
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "192.0.2.1"]);
        // The client forged the left-most entry; the proxies appended the rest.
        let h = xff(&["1.1.1.1, 198.51.100.7", "192.0.2.1"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        // Ports and IPv6 brackets are tolerated.
        let h = xff(&["[2001:db8::5]:4711, 198.51.100.8:1234"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("198.51.100.8"));
        let h = xff(&["2001:db8::5"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("2001:db8::5"));
        // An IPv4-mapped peer (dual-stack socket) is its IPv4 address.
        let h = xff(&["198.51.100.9"]);
        assert_eq!(t.client(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.9"));
    }

    #[test]
    fn garbage_or_missing_headers_leave_the_last_believable_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(t.client(ip("10.0.0.1"), &xff(&[])), ip("10.0.0.1"));
        let h = xff(&["not-an-ip, 10.0.0.2"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.2"));
        // Every hop trusted: the left-most one.
        let h = xff(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.3"));
    }

    #[test]
    fn the_extractor_reads_connect_info_and_the_trusted_list() {
        let peer: SocketAddr = "10.0.0.1:5555".parse().unwrap();
        let req = Request::get("/")
            .header("x-forwarded-for", "198.51.100.7")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        assert_eq!(ClientIp::from_parts(&parts), ClientIp(None));
        assert_eq!(ClientIp(None).to_string(), "unknown");
        parts.extensions.insert(ConnectInfo(peer));
        // No trusted list: the peer.
        assert_eq!(ClientIp::from_parts(&parts), ClientIp(Some(ip("10.0.0.1"))));
        parts.extensions.insert(trusted(&["10.0.0.1"]));
        assert_eq!(
            ClientIp::from_parts(&parts),
            ClientIp(Some(ip("198.51.100.7")))
        );
    }
}
