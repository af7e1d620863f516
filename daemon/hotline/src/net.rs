//! Sockets for media, and the addresses we write into SDP and SIP headers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::UdpSocket;

/// Hands out RTP/RTCP port pairs (even RTP port, RTCP on the next odd one) from the
/// configured range. A pair is free when both bind; dropping the sockets releases it. A rotating cursor keeps a port that
/// was just released from being reused at once, so late packets of an old call don't land
/// in a new one.
pub struct RtpPorts {
    bind_ip: IpAddr,
    low: u16,
    count: u32,
    cursor: AtomicU32,
}

impl RtpPorts {
    pub fn new(bind_ip: IpAddr, (low, high): (u16, u16)) -> RtpPorts {
        let low = low + (low % 2);
        RtpPorts {
            bind_ip,
            low,
            count: (u32::from(high.saturating_sub(low)) / 2) + 1,
            cursor: AtomicU32::new(0),
        }
    }

    /// Sockets bound to a free pair (RTP, RTCP), or `None` when the range is exhausted.
    pub fn bind(&self) -> Option<(UdpSocket, UdpSocket)> {
        for _ in 0..self.count {
            let slot = self.cursor.fetch_add(1, Ordering::Relaxed) % self.count;
            let Ok(port) = u16::try_from(u32::from(self.low) + slot * 2) else {
                continue;
            };
            if let Some(rtp) = self.bind_one(port)
                && let Some(rtcp) = port.checked_add(1).and_then(|p| self.bind_one(p))
            {
                return Some((rtp, rtcp));
            }
        }
        None
    }

    fn bind_one(&self, port: u16) -> Option<UdpSocket> {
        let sock = StdUdpSocket::bind(SocketAddr::new(self.bind_ip, port)).ok()?;
        sock.set_nonblocking(true).ok()?;
        UdpSocket::from_std(sock).ok()
    }
}

/// The address a peer can reach us on: the configured public IP, the SIP listen IP when
/// it is a specific one, or else the source address the kernel would use to answer that
/// peer ("the address the SIP socket answers on").
pub struct LocalAddress {
    fixed: Option<IpAddr>,
    by_peer: Mutex<HashMap<IpAddr, IpAddr>>,
}

impl LocalAddress {
    pub fn new(public_ip: Option<IpAddr>, listen_ip: IpAddr) -> LocalAddress {
        let fixed = public_ip.or((!listen_ip.is_unspecified()).then_some(listen_ip));
        LocalAddress {
            fixed,
            by_peer: Mutex::new(HashMap::new()),
        }
    }

    pub fn toward(&self, peer: IpAddr) -> IpAddr {
        if let Some(ip) = self.fixed {
            return ip;
        }
        if let Ok(cache) = self.by_peer.lock()
            && let Some(ip) = cache.get(&peer)
        {
            return *ip;
        }
        let ip = route_source(peer).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if let Ok(mut cache) = self.by_peer.lock() {
            // Bounded: a flood of sources must not grow it forever.
            if cache.len() > 4096 {
                cache.clear();
            }
            cache.insert(peer, ip);
        }
        ip
    }

    /// For Via/Contact before any peer is known: the address toward a documentation
    /// address, i.e. the primary interface (no packet is sent by `connect`).
    pub fn primary(&self) -> IpAddr {
        self.fixed
            .or_else(|| route_source(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))))
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = StdUdpSocket::bind(any).ok()?;
    sock.connect(SocketAddr::new(peer, 9)).ok()?;
    Some(sock.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rtp_ports_are_pairs_in_range_and_run_out() {
        let pool = RtpPorts::new("127.0.0.1".parse().unwrap(), (40101, 40107));
        let port = |pair: &(UdpSocket, UdpSocket)| {
            (
                pair.0.local_addr().unwrap().port(),
                pair.1.local_addr().unwrap().port(),
            )
        };
        let a = pool.bind().unwrap();
        let b = pool.bind().unwrap();
        let c = pool.bind().unwrap();
        assert_eq!(
            [port(&a), port(&b), port(&c)],
            [(40102, 40103), (40104, 40105), (40106, 40107)]
        );
        assert!(pool.bind().is_none(), "range exhausted");
        drop(b);
        let b = pool.bind().unwrap();
        assert_eq!(port(&b), (40104, 40105));
        // A pair whose RTCP port someone else holds is skipped.
        drop(a);
        let _squatter = StdUdpSocket::bind("127.0.0.1:40103").unwrap();
        assert!(pool.bind().is_none());
    }

    #[test]
    fn local_address_prefers_public_then_listen_ip() {
        let la = LocalAddress::new(
            Some("192.0.2.9".parse().unwrap()),
            "0.0.0.0".parse().unwrap(),
        );
        assert_eq!(
            la.toward("127.0.0.1".parse().unwrap()),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
        let la = LocalAddress::new(None, "0.0.0.0".parse().unwrap());
        assert_eq!(
            la.toward("127.0.0.1".parse().unwrap()),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
