//! Datagrams on a call's media port: RTP, RTCP and RFC 4733 into an RTP session (as
//! the IVR hears a caller) and through a bridge (as a connected call relays them).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_media::Codec;
use hotline_media::bridge::{Bridge, Side};
use hotline_media::rtp::{RtpConfig, RtpSession};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let caller: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let other: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let mut s = RtpSession::new(
        RtpConfig {
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event_pt: Some(101),
            remote: Some(caller),
            symmetric: true,
            ssrc: 1,
            initial_seq: 0,
            initial_timestamp: 0,
        },
        t0,
    );
    let mut bridge = Bridge::new(Some(caller), Some(other));
    // The input is a sequence of datagrams, each prefixed by its length (one byte) and
    // a byte choosing its source and arrival time.
    let mut rest = data;
    let mut now = t0;
    while let [len, how, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (packet, after) = tail.split_at(n);
        rest = after;
        now += Duration::from_millis(u64::from(how & 0x3f));
        let from = if how & 0x40 == 0 { caller } else { other };
        let side = if how & 0x80 == 0 { Side::A } else { Side::B };
        s.handle_input(now, from, packet);
        while s.poll_event().is_some() {}
        let _ = bridge.forward(now, side, from, packet);
    }
    s.handle_timeout(now + Duration::from_secs(5));
    while s.poll_event().is_some() {}
    while s.poll_transmit().is_some() {}
});
