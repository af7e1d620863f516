//! RFC 4733 DTMF reception through RtpSession: each digit exactly once.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_media::dtmf::{DigitSend, END_TIMEOUT, digit_packets, encode_event};
use hotline_media::rtp::{MediaEvent, RtpConfig, RtpSession, build_packet};
use hotline_media::{Codec, Prompt};

const PEER_SSRC: u32 = 0xCAFE;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn peer() -> SocketAddr {
    "203.0.113.5:31000".parse().unwrap()
}

fn session(t0: Instant) -> RtpSession {
    RtpSession::new(
        RtpConfig {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            remote: Some(peer()),
            symmetric: false,
            ssrc: 1,
            initial_seq: 0,
            initial_timestamp: 0,
        },
        t0,
    )
}

fn digit(seq: u16, timestamp: u32, d: char, duration_ms: u32) -> Vec<Vec<u8>> {
    digit_packets(&DigitSend {
        payload_type: 101,
        ssrc: PEER_SSRC,
        first_seq: seq,
        timestamp,
        digit: d,
        duration_ms,
        volume: 10,
    })
    .unwrap()
}

fn event_packet(seq: u16, timestamp: u32, event: u8, end: bool, duration: u16) -> Vec<u8> {
    build_packet(
        101,
        false,
        seq,
        timestamp,
        PEER_SSRC,
        &encode_event(event, end, 10, duration),
    )
}

fn digits(s: &mut RtpSession) -> Vec<(char, u32)> {
    std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit, duration_ms } => Some((digit, duration_ms)),
            MediaEvent::PlaybackDone { .. } => None,
        })
        .collect()
}

/// Feeds packets 20 ms apart from `t`; returns the time after the last.
fn feed(s: &mut RtpSession, mut t: Instant, packets: &[Vec<u8>]) -> Instant {
    for p in packets {
        s.handle_input(t, peer(), p);
        t += ms(20);
    }
    t
}

#[test]
fn digit_reported_once_on_its_end() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let packets = digit(10, 8000, '5', 120);
    // Five updates and three ends.
    assert_eq!(packets.len(), 8);
    let mut t = t0;
    for p in &packets[..5] {
        s.handle_input(t, peer(), p);
        assert!(digits(&mut s).is_empty(), "not before the end");
        t += ms(20);
    }
    s.handle_input(t, peer(), &packets[5]);
    assert_eq!(digits(&mut s), vec![('5', 120)]);
    feed(&mut s, t, &packets[6..]);
    assert!(digits(&mut s).is_empty(), "retransmitted ends are ignored");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn every_digit_maps() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let all = "0123456789*#ABCD";
    let mut t = t0;
    for (i, d) in all.chars().enumerate() {
        t = feed(&mut s, t, &digit(i as u16 * 10, i as u32 * 2000, d, 60));
    }
    let got: String = digits(&mut s).into_iter().map(|(d, _)| d).collect();
    assert_eq!(got, all);
}

#[test]
fn repeated_digit_is_two_events() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let t = feed(&mut s, t0, &digit(1, 1000, '1', 100));
    feed(&mut s, t + ms(100), &digit(20, 3000, '1', 80));
    assert_eq!(digits(&mut s), vec![('1', 100), ('1', 80)]);
}

#[test]
fn lost_ends_reported_when_next_event_starts() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let first = digit(1, 1000, '4', 100);
    // Drop all three end packets.
    let t = feed(&mut s, t0, &first[..first.len() - 3]);
    assert!(digits(&mut s).is_empty());
    let second = digit(20, 3000, '2', 60);
    s.handle_input(t, peer(), &second[0]);
    // Duration is the last one seen: 80 ms.
    assert_eq!(digits(&mut s), vec![('4', 80)]);
    feed(&mut s, t + ms(20), &second[1..]);
    assert_eq!(digits(&mut s), vec![('2', 60)]);
}

#[test]
fn lost_ends_reported_after_timeout() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let packets = digit(1, 1000, '9', 100);
    let t = feed(&mut s, t0, &packets[..2]);
    let last_seen = t - ms(20);
    assert_eq!(s.poll_timeout(), Some(last_seen + END_TIMEOUT));
    s.handle_timeout(last_seen + END_TIMEOUT - ms(1));
    assert!(digits(&mut s).is_empty());
    s.handle_timeout(last_seen + END_TIMEOUT);
    assert_eq!(digits(&mut s), vec![('9', 40)]);
    assert_eq!(s.poll_timeout(), None);
    // Its end arriving even later is not a second digit.
    s.handle_input(last_seen + ms(1500), peer(), &packets[5]);
    assert!(digits(&mut s).is_empty());
}

#[test]
fn reordered_packets() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let p = digit(1, 1000, '7', 100);
    // Updates 160, 480, 320 (late), then an end, then a stale update.
    let order = [0, 2, 1, 4, 3, 5, 6];
    for (i, &k) in order.iter().enumerate() {
        s.handle_input(t0 + ms(20 * i as u64), peer(), &p[k]);
    }
    assert_eq!(digits(&mut s), vec![('7', 100)]);
    // The next event's first packet overtakes the previous event's ends.
    let mut s = session(t0);
    let a = digit(1, 1000, '1', 40);
    let b = digit(10, 2000, '2', 40);
    feed(
        &mut s,
        t0,
        &[a[0].clone(), a[1].clone(), b[0].clone(), a[2].clone()],
    );
    feed(&mut s, t0 + ms(80), &b[1..]);
    feed(&mut s, t0 + ms(200), &a[3..]);
    assert_eq!(digits(&mut s), vec![('1', 40), ('2', 40)]);
}

#[test]
fn stale_event_does_not_cut_the_current_one() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle_input(t0, peer(), &event_packet(5, 5000, 3, false, 160));
    // An older event's packet, never seen before.
    s.handle_input(t0 + ms(20), peer(), &event_packet(2, 4000, 8, false, 800));
    s.handle_input(t0 + ms(40), peer(), &event_packet(6, 5000, 3, true, 480));
    assert_eq!(digits(&mut s), vec![('3', 60)]);
}

#[test]
fn duplicated_packets() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let p = digit(1, 1000, '#', 100);
    let doubled: Vec<_> = p.iter().flat_map(|x| [x.clone(), x.clone()]).collect();
    feed(&mut s, t0, &doubled);
    feed(&mut s, t0 + ms(1000), &p);
    assert_eq!(digits(&mut s), vec![('#', 100)]);
}

#[test]
fn only_an_end_packet_arrives() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle_input(t0, peer(), &event_packet(1, 1000, 12, true, 800));
    assert_eq!(digits(&mut s), vec![('A', 100)]);
}

#[test]
fn flash_and_unknown_events_are_ignored() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle_input(t0, peer(), &event_packet(1, 1000, 16, false, 160));
    s.handle_input(t0 + ms(20), peer(), &event_packet(2, 1000, 16, true, 320));
    s.handle_input(t0 + ms(40), peer(), &event_packet(3, 2000, 40, true, 320));
    feed(&mut s, t0 + ms(60), &digit(4, 3000, '0', 60));
    assert_eq!(digits(&mut s), vec![('0', 60)]);
}

#[test]
fn events_on_other_payload_types_are_not_dtmf() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut p = event_packet(1, 1000, 5, true, 800);
    p[1] = 100; // not the negotiated 101
    s.handle_input(t0, peer(), &p);
    assert!(digits(&mut s).is_empty());

    // The same packet on 101 is a digit.
    let mut control = session(t0);
    control.handle_input(t0, peer(), &event_packet(1, 1000, 5, true, 800));
    assert_eq!(digits(&mut control), vec![('5', 100)]);
    let mut s = RtpSession::new(
        RtpConfig {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: None,
            remote: None,
            symmetric: false,
            ssrc: 1,
            initial_seq: 0,
            initial_timestamp: 0,
        },
        t0,
    );
    s.handle_input(t0, peer(), &event_packet(1, 1000, 5, true, 800));
    assert!(digits(&mut s).is_empty());
}

#[test]
fn short_event_payload_is_invalid() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle_input(
        t0,
        peer(),
        &build_packet(101, false, 1, 1000, PEER_SSRC, &[5, 0x80]),
    );
    assert!(digits(&mut s).is_empty());
    assert_eq!(s.stats().packets_invalid, 1);
    assert_eq!(s.stats().packets_received, 1);
}

#[test]
fn same_timestamp_from_another_ssrc_is_another_event() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.handle_input(t0, peer(), &event_packet(1, 1000, 1, true, 800));
    let other = build_packet(
        101,
        false,
        1,
        1000,
        PEER_SSRC + 1,
        &encode_event(2, true, 10, 800),
    );
    s.handle_input(t0 + ms(20), peer(), &other);
    assert_eq!(digits(&mut s), vec![('1', 100), ('2', 100)]);
}

#[test]
fn digits_arrive_during_playback() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.play(t0, vec![Prompt::from_samples("p", &vec![0; 160 * 50])], 1);
    let mut t = t0;
    let mut got = Vec::new();
    let mut sent = 0;
    for p in digit(1, 1000, '3', 100) {
        t += ms(20);
        s.handle_timeout(t);
        s.handle_input(t + ms(3), peer(), &p);
        while s.poll_transmit().is_some() {
            sent += 1;
        }
        got.extend(std::iter::from_fn(|| s.poll_event()));
    }
    assert_eq!(
        got,
        vec![MediaEvent::Dtmf {
            digit: '3',
            duration_ms: 100
        }]
    );
    assert_eq!(sent, 8);
    // Back to plain pacing: no DTMF timer is pending.
    assert_eq!(s.poll_timeout(), Some(t0 + ms(160)));
}

#[test]
fn digits_from_another_source_are_ignored() {
    let t0 = Instant::now();
    // Symmetric, as calls run; the caller's SDP names a private address (behind NAT), so
    // its first packet, from the router's address, latches.
    let mut s = RtpSession::new(
        RtpConfig {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            remote: Some("10.0.0.10:4000".parse().unwrap()),
            symmetric: true,
            ssrc: 1,
            initial_seq: 0,
            initial_timestamp: 0,
        },
        t0,
    );
    let audio = build_packet(0, false, 1, 0, PEER_SSRC, &[0xFF; 160]);
    s.handle_input(t0, peer(), &audio);
    assert_eq!(s.destination(), Some(peer()));
    // The same host, another port: a spoofed digit, and an RTP keep-alive.
    let spoofer: SocketAddr = "203.0.113.5:31002".parse().unwrap();
    let mut t = t0 + ms(20);
    let spoofed = digit(10, 800, '5', 100);
    for p in &spoofed {
        s.handle_input(t, spoofer, p);
        t += ms(20);
    }
    s.handle_timeout(t + END_TIMEOUT + ms(20));
    assert_eq!(digits(&mut s), vec![]);
    assert_eq!(
        s.last_received(),
        Some(t0),
        "a spoofed packet kept the call alive"
    );
    assert_eq!(s.stats().packets_foreign, spoofed.len() as u64);
    // The SDP's address is still the peer's, and so is the latched one.
    feed(&mut s, t, &digit(20, 1600, '7', 100));
    assert_eq!(digits(&mut s), vec![('7', 100)]);
    // RTCP from the peer's host (its RTCP port) is heard; from another host it is not.
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
    let before = s.stats().rtcp_received;
    s.handle_input(t, "203.0.113.5:31001".parse().unwrap(), &rr);
    s.handle_input(t, "198.51.100.66:31001".parse().unwrap(), &rr);
    assert_eq!(s.stats().rtcp_received, before + 1);
}
