//! Two call legs joined: what one side sends goes to the other, unchanged.
//!
//! Hotline offers the second leg the codec and payload types the first leg negotiated,
//! so packets (audio, RFC 4733 DTMF, RTCP) pass through as they are: no transcoding and
//! no header rewriting, which keeps the added latency to one socket hop. Only legs
//! negotiated apart (an attended transfer) need a [`Translation`] between G.711 laws. Each leg learns
//! its peer's real address from the first valid RTP it sends (symmetric RTP, for NAT);
//! from then on only that address and the SDP's are heard (RTCP: their hosts), so a
//! spoofed packet is neither forwarded nor taken as a sign of life. Before the latch
//! another host is heard only when the SDP's address is private (a NAT).
//! Sans-IO: the driver owns both sockets and asks where to forward each datagram.

use std::net::SocketAddr;
use std::time::Instant;

use crate::Codec;

/// One side of the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    pub forwarded_a_to_b: u64,
    pub forwarded_b_to_a: u64,
    /// Datagrams that were not RTP/RTCP, or had nowhere to go (peer address unknown or held).
    pub dropped: u64,
    /// Datagrams from a source that is not the leg's peer, ignored.
    pub foreign: u64,
}

#[derive(Clone, Copy, Debug)]
struct Leg {
    /// Where this leg's peer receives: from SDP, then latched to where it sends from.
    remote: Option<SocketAddr>,
    /// The SDP's address, heard from even after a latch elsewhere.
    sdp: Option<SocketAddr>,
    latched: bool,
    /// Held legs (re-INVITE sendonly/inactive) get nothing.
    held: bool,
    last_received: Option<Instant>,
}

impl Leg {
    fn new(remote: Option<SocketAddr>) -> Leg {
        let remote = remote.filter(|a| !a.ip().is_unspecified() && a.port() != 0);
        Leg {
            remote,
            sdp: remote,
            latched: false,
            held: false,
            last_received: None,
        }
    }

    fn destination(&self) -> Option<SocketAddr> {
        if self.held { None } else { self.remote }
    }

    /// Whether `from` may be this leg's peer: the latched or the SDP's address (RTCP:
    /// their hosts); before the latch also another host when the SDP's address is a
    /// private one (the peer is behind a NAT).
    fn heard_from(&self, from: SocketAddr, rtcp: bool) -> bool {
        if [self.remote, self.sdp]
            .into_iter()
            .flatten()
            .any(|peer| peer == from || (rtcp && peer.ip() == from.ip()))
        {
            return true;
        }
        !self.latched && self.sdp.is_none_or(|a| crate::behind_nat(a.ip()))
    }
}

#[derive(Clone, Debug)]
pub struct Bridge {
    a: Leg,
    b: Leg,
    stats: BridgeStats,
}

impl Bridge {
    /// `a_remote`/`b_remote`: each leg's address from its SDP (None or 0.0.0.0: unknown).
    pub fn new(a_remote: Option<SocketAddr>, b_remote: Option<SocketAddr>) -> Bridge {
        Bridge {
            a: Leg::new(a_remote),
            b: Leg::new(b_remote),
            stats: BridgeStats::default(),
        }
    }

    /// A datagram arrived on `side`'s socket from `from`: where to send it on the other
    /// side's socket, or `None` to drop it.
    pub fn forward(
        &mut self,
        now: Instant,
        side: Side,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<SocketAddr> {
        let rtp = is_rtp_or_rtcp(data);
        let (this, other) = match side {
            Side::A => (&mut self.a, &mut self.b),
            Side::B => (&mut self.b, &mut self.a),
        };
        if !rtp {
            self.stats.dropped += 1;
            return None;
        }
        let rtcp = crate::rtp::is_rtcp(data);
        if !this.heard_from(from, rtcp) {
            self.stats.foreign += 1;
            return None;
        }
        this.last_received = Some(now);
        // Symmetric RTP: the first packet tells us where this peer really is.
        if !this.latched && !rtcp {
            this.remote = Some(from);
            this.latched = true;
        }
        let to = other.destination();
        match (to, side) {
            (None, _) => self.stats.dropped += 1,
            (Some(_), Side::A) => self.stats.forwarded_a_to_b += 1,
            (Some(_), Side::B) => self.stats.forwarded_b_to_a += 1,
        }
        to
    }

    /// A re-INVITE on `side`: its new address (re-arms latching), or hold (`None`).
    pub fn set_remote(&mut self, side: Side, remote: Option<SocketAddr>) {
        let leg = match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        };
        match remote {
            Some(addr) => {
                *leg = Leg {
                    last_received: leg.last_received,
                    ..Leg::new(Some(addr))
                };
            }
            None => leg.held = true,
        }
    }

    /// When `side` last sent anything, for dead-call detection.
    /// Where `side`'s media goes now (its SDP address, or where its RTP came from).
    pub fn remote(&self, side: Side) -> Option<SocketAddr> {
        match side {
            Side::A => self.a.destination(),
            Side::B => self.b.destination(),
        }
    }

    /// `side`'s peer is known to send from `addr` (it was latched before this bridge).
    pub fn set_latched(&mut self, side: Side, addr: SocketAddr) {
        let leg = match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        };
        leg.remote = Some(addr);
        leg.latched = true;
    }

    /// Where `side`'s peer was latched, if it was.
    pub fn latched(&self, side: Side) -> Option<SocketAddr> {
        let leg = match side {
            Side::A => &self.a,
            Side::B => &self.b,
        };
        leg.latched.then_some(leg.remote).flatten()
    }

    /// Whether `from` may send as `side`'s peer (see the module docs); for the RTCP of a
    /// bridged pair, which comes on other sockets.
    pub fn hears(&self, side: Side, from: SocketAddr, rtcp: bool) -> bool {
        match side {
            Side::A => self.a.heard_from(from, rtcp),
            Side::B => self.b.heard_from(from, rtcp),
        }
    }

    pub fn last_received(&self, side: Side) -> Option<Instant> {
        match side {
            Side::A => self.a.last_received,
            Side::B => self.b.last_received,
        }
    }

    pub fn stats(&self) -> BridgeStats {
        self.stats
    }
}

/// A bridged call's media between its two legs' sockets: the bridge, the RTCP relay and,
/// when the legs' codecs were negotiated apart, the law translation. The call session
/// runs it, and lends it whole to a relay thread while the call is plainly bridged.
#[derive(Clone, Debug)]
pub struct Relay {
    pub bridge: Bridge,
    pub rtcp: RtcpRelay,
    /// (side A's packets towards B, side B's towards A).
    pub translation: Option<(Translation, Translation)>,
}

impl Relay {
    /// A datagram on `side`'s RTP socket (`rtcp` false) or RTCP socket, from `from`:
    /// where to send it on the other side's socket of the same kind (rewritten in place
    /// when translated), or `None` to drop it.
    pub fn forward(
        &mut self,
        now: Instant,
        side: Side,
        rtcp: bool,
        from: SocketAddr,
        data: &mut [u8],
    ) -> Option<SocketAddr> {
        forward(
            &mut self.bridge,
            &mut self.rtcp,
            self.translation.as_ref(),
            now,
            side,
            rtcp,
            from,
            data,
        )
    }
}

/// [`Relay::forward`] on borrowed parts, for the call session, which keeps them apart.
/// RTCP only from the hosts the bridge hears, so a stranger cannot learn where the other
/// side's reports go; it is not interpreted.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    bridge: &mut Bridge,
    rtcp_relay: &mut RtcpRelay,
    translation: Option<&(Translation, Translation)>,
    now: Instant,
    side: Side,
    rtcp: bool,
    from: SocketAddr,
    data: &mut [u8],
) -> Option<SocketAddr> {
    if rtcp {
        if !bridge.hears(side, from, true) {
            return None;
        }
        return rtcp_relay.forward(side, from, data);
    }
    let to = bridge.forward(now, side, from, data)?;
    match (translation, side) {
        (Some((a_to_b, _)), Side::A) => a_to_b.apply(data),
        (Some((_, b_to_a)), Side::B) => b_to_a.apply(data),
        (None, _) => {}
    }
    Some(to)
}

/// RTP or RTCP version 2 with at least a fixed header; anything else is not forwarded.
fn is_rtp_or_rtcp(data: &[u8]) -> bool {
    data.len() >= 12 && data[0] >> 6 == 2
}

/// RTCP between two bridged legs, on their RTCP sockets: each side's reports go to where
/// the other side sends its own RTCP from (symmetric RTCP); until it has sent one, they
/// are dropped. Anything that isn't RTCP is dropped too.
#[derive(Clone, Copy, Debug, Default)]
pub struct RtcpRelay {
    from: [Option<SocketAddr>; 2],
}

impl RtcpRelay {
    /// Where to send `data`, which `side`'s RTCP socket received from `from`.
    pub fn forward(&mut self, side: Side, from: SocketAddr, data: &[u8]) -> Option<SocketAddr> {
        if !crate::rtp::is_rtcp(data) {
            return None;
        }
        let (me, other) = match side {
            Side::A => (0, 1),
            Side::B => (1, 0),
        };
        self.from[me] = Some(from);
        self.from[other]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::build_packet;

    #[test]
    fn rtcp_goes_to_where_the_other_side_sends_its_own_from() {
        // A receiver report header: version 2, PT 201.
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
        let mut r = RtcpRelay::default();
        assert_eq!(r.forward(Side::A, addr("192.0.2.1:4001"), &rr), None);
        assert_eq!(
            r.forward(Side::B, addr("198.51.100.7:7001"), &rr),
            Some(addr("192.0.2.1:4001"))
        );
        assert_eq!(
            r.forward(Side::A, addr("192.0.2.1:4001"), &rr),
            Some(addr("198.51.100.7:7001"))
        );
        // Not RTCP (an RTP packet with PT 8): dropped, and nothing learnt from it.
        let rtp = [0x80u8, 8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(r.forward(Side::B, addr("203.0.113.9:9"), &rtp), None);
        assert_eq!(
            r.forward(Side::A, addr("192.0.2.1:4001"), &rr),
            Some(addr("198.51.100.7:7001"))
        );
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwards_both_ways_unchanged_to_the_sdp_addresses_then_latches() {
        let t0 = Instant::now();
        let mut b = Bridge::new(Some(addr("10.0.0.1:4000")), Some(addr("198.51.100.7:5000")));
        let pkt = build_packet(8, false, 1, 160, 42, &[0xD5; 160]);
        // Caller behind NAT (its SDP names a private address) sends from its router's
        // address: its packets go to the operator's SDP
        // address, and from now on the operator's packets go back to where they came from.
        assert_eq!(
            b.forward(t0, Side::A, addr("203.0.113.9:61000"), &pkt),
            Some(addr("198.51.100.7:5000"))
        );
        assert_eq!(
            b.forward(t0, Side::B, addr("198.51.100.7:5000"), &pkt),
            Some(addr("203.0.113.9:61000"))
        );
        assert_eq!(b.stats().forwarded_a_to_b, 1);
        assert_eq!(b.stats().forwarded_b_to_a, 1);
        assert_eq!(b.last_received(Side::A), Some(t0));
    }

    #[test]
    fn after_the_latch_other_sources_are_ignored() {
        let t0 = Instant::now();
        let mut b = Bridge::new(Some(addr("10.0.0.1:4000")), Some(addr("198.51.100.7:5000")));
        let pkt = build_packet(8, false, 1, 160, 42, &[0xD5; 160]);
        // The caller behind NAT latches A.
        assert!(
            b.forward(t0, Side::A, addr("203.0.113.9:61000"), &pkt)
                .is_some()
        );
        // Someone else, even on the caller's host: not forwarded, not a sign of life.
        let later = t0 + std::time::Duration::from_secs(5);
        for from in ["203.0.113.9:61002", "192.0.2.99:4000"] {
            assert_eq!(b.forward(later, Side::A, addr(from), &pkt), None);
        }
        assert_eq!(b.last_received(Side::A), Some(t0));
        assert_eq!(b.stats().foreign, 2);
        // The SDP's address and the latched one are still heard, and the B side's
        // packets still go to the latched address.
        assert!(
            b.forward(later, Side::A, addr("10.0.0.1:4000"), &pkt)
                .is_some()
        );
        assert_eq!(
            b.forward(later, Side::B, addr("198.51.100.7:5000"), &pkt),
            Some(addr("203.0.113.9:61000"))
        );
        assert!(b.hears(Side::A, addr("203.0.113.9:61001"), true));
        assert!(!b.hears(Side::A, addr("203.0.113.66:61001"), true));
    }

    #[test]
    fn a_public_sdp_address_is_the_only_one_heard() {
        let t0 = Instant::now();
        let mut b = Bridge::new(
            Some(addr("192.0.2.1:4000")),
            Some(addr("198.51.100.7:5000")),
        );
        let pkt = build_packet(8, false, 1, 160, 42, &[0xD5; 160]);
        // Before the caller's first packet: neither another host nor another port.
        for from in ["203.0.113.9:61000", "192.0.2.1:4002"] {
            assert_eq!(b.forward(t0, Side::A, addr(from), &pkt), None, "{from}");
        }
        assert_eq!(b.last_received(Side::A), None);
        assert!(
            b.forward(t0, Side::A, addr("192.0.2.1:4000"), &pkt)
                .is_some()
        );
        // Started latched (the IVR heard the caller): nobody else either.
        let mut b = Bridge::new(Some(addr("10.0.0.1:4000")), Some(addr("198.51.100.7:5000")));
        b.set_latched(Side::A, addr("203.0.113.9:61000"));
        assert_eq!(b.forward(t0, Side::A, addr("203.0.113.77:1"), &pkt), None);
        assert_eq!(b.latched(Side::A), Some(addr("203.0.113.9:61000")));
        assert_eq!(
            b.forward(t0, Side::B, addr("198.51.100.7:5000"), &pkt),
            Some(addr("203.0.113.9:61000"))
        );
    }

    #[test]
    fn unknown_or_held_peers_get_nothing_and_garbage_is_dropped() {
        let t0 = Instant::now();
        let mut b = Bridge::new(None, Some(addr("0.0.0.0:0")));
        let pkt = build_packet(0, false, 1, 160, 42, &[0xFF; 160]);
        assert_eq!(
            b.forward(t0, Side::A, addr("192.0.2.1:4000"), &pkt),
            None,
            "B unknown"
        );
        // B speaks: it latches, and A (latched before) now gets B's packets.
        assert_eq!(
            b.forward(t0, Side::B, addr("192.0.2.2:6000"), &pkt),
            Some(addr("192.0.2.1:4000"))
        );
        assert_eq!(
            b.forward(t0, Side::A, addr("192.0.2.1:4000"), &pkt),
            Some(addr("192.0.2.2:6000"))
        );
        b.set_remote(Side::B, None);
        assert_eq!(
            b.forward(t0, Side::A, addr("192.0.2.1:4000"), &pkt),
            None,
            "B holds"
        );
        b.set_remote(Side::B, Some(addr("192.0.2.2:6002")));
        assert_eq!(
            b.forward(t0, Side::A, addr("192.0.2.1:4000"), &pkt),
            Some(addr("192.0.2.2:6002"))
        );
        assert_eq!(
            b.forward(t0, Side::A, addr("192.0.2.1:4000"), b"hello, not rtp"),
            None
        );
        assert_eq!(b.stats().dropped, 3);
    }

    #[test]
    fn rtcp_is_forwarded_but_does_not_latch() {
        let t0 = Instant::now();
        let mut b = Bridge::new(Some(addr("192.0.2.1:4000")), Some(addr("192.0.2.2:6000")));
        let mut rtcp = vec![0x80, 200, 0, 6];
        rtcp.extend_from_slice(&[0; 24]);
        assert_eq!(
            b.forward(t0, Side::A, addr("192.0.2.1:4001"), &rtcp),
            Some(addr("192.0.2.2:6000"))
        );
        let pkt = build_packet(0, false, 1, 160, 42, &[0xFF; 160]);
        assert_eq!(
            b.forward(t0, Side::B, addr("192.0.2.2:6000"), &pkt),
            Some(addr("192.0.2.1:4000")),
            "A not latched to its RTCP port"
        );
    }
}

/// How one leg's RTP must change to suit the other leg, when their codecs were negotiated
/// apart (an attended transfer joins a caller with a colleague reached by a consultation
/// call in another G.711 law): the audio payload type and law, and the telephone-event
/// payload type. Both laws take one byte per sample, so packets change in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub from: (Codec, u8),
    pub to: (Codec, u8),
    /// telephone-event payload types (RFC 4733), from → to.
    pub events: Option<(u8, u8)>,
}

impl Translation {
    /// What turns `from`'s packets into `to`'s; `None` when they already agree.
    pub fn between(
        from: (Codec, u8, Option<u8>),
        to: (Codec, u8, Option<u8>),
    ) -> Option<Translation> {
        let events = match (from.2, to.2) {
            (Some(f), Some(t)) if f != t => Some((f, t)),
            _ => None,
        };
        ((from.0, from.1) != (to.0, to.1) || events.is_some()).then_some(Translation {
            from: (from.0, from.1),
            to: (to.0, to.1),
            events,
        })
    }

    /// Rewrites one RTP packet in place; anything else is left alone.
    pub fn apply(&self, packet: &mut [u8]) {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return;
        }
        let pt = packet[1] & 0x7f;
        let marker = packet[1] & 0x80;
        if let Some((from, to)) = self.events
            && pt == from
        {
            packet[1] = marker | to;
            return;
        }
        if pt != self.from.1 {
            return;
        }
        packet[1] = marker | self.to.1;
        let mut start = 12 + 4 * usize::from(packet[0] & 0x0f);
        if packet[0] & 0x10 != 0 && packet.len() >= start + 4 {
            let words = u16::from_be_bytes([packet[start + 2], packet[start + 3]]);
            start += 4 + 4 * usize::from(words);
        }
        let mut end = packet.len();
        if packet[0] & 0x20 != 0 {
            end = end.saturating_sub(usize::from(packet[end - 1]));
        }
        if start >= end || self.from.0 == self.to.0 {
            return;
        }
        let convert: fn(u8) -> u8 = match self.from.0 {
            Codec::Pcmu => |b| crate::g711::linear_to_alaw(crate::g711::ulaw_to_linear(b)),
            Codec::Pcma => |b| crate::g711::linear_to_ulaw(crate::g711::alaw_to_linear(b)),
        };
        for b in &mut packet[start..end] {
            *b = convert(*b);
        }
    }
}

#[cfg(test)]
mod translation_tests {
    use super::*;

    #[test]
    fn pcmu_becomes_pcma_with_its_payload_type_and_events_keep_their_marker() {
        let t = Translation::between((Codec::Pcmu, 0, Some(101)), (Codec::Pcma, 8, Some(96)))
            .expect("they differ");
        let silence_u = crate::g711::linear_to_ulaw(0);
        let mut audio = vec![0x80, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        audio.extend([silence_u; 160]);
        t.apply(&mut audio);
        assert_eq!(audio[1], 0x80 | 8, "marker kept, PT 8");
        assert!(
            audio[12..]
                .iter()
                .all(|b| *b == crate::g711::linear_to_alaw(0))
        );
        let mut event = vec![0x80, 101, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0x80, 0, 160];
        t.apply(&mut event);
        assert_eq!(
            &event[1..],
            &[96, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0x80, 0, 160]
        );
        // The same codec and payload types: nothing to do.
        assert_eq!(
            Translation::between((Codec::Pcma, 8, Some(101)), (Codec::Pcma, 8, Some(101))),
            None
        );
    }
}
