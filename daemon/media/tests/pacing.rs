//! RtpSession playback, driven by a virtual clock in exact milliseconds.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_media::rtp::{MediaEvent, RtpConfig, RtpSession};
use hotline_media::{Codec, Prompt};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rtp_rs::RtpReader;

const SSRC: u32 = 0x1234_5678;
const SEQ: u16 = 1000;
const TS: u32 = 50_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn remote() -> SocketAddr {
    "192.0.2.10:4000".parse().unwrap()
}

fn config(codec: Codec) -> RtpConfig {
    RtpConfig {
        codec,
        payload_type: codec.static_payload_type(),
        telephone_event_pt: Some(101),
        remote: Some(remote()),
        symmetric: false,
        ssrc: SSRC,
        initial_seq: SEQ,
        initial_timestamp: TS,
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    to: SocketAddr,
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn drain(s: &mut RtpSession) -> Vec<Sent> {
    let mut out = Vec::new();
    while let Some((to, data)) = s.poll_transmit() {
        let r = RtpReader::new(&data).unwrap();
        out.push(Sent {
            to,
            marker: r.mark(),
            pt: r.payload_type(),
            seq: r.sequence_number().into(),
            ts: r.timestamp(),
            ssrc: r.ssrc(),
            payload: r.payload().to_vec(),
        });
    }
    out
}

fn events(s: &mut RtpSession) -> Vec<MediaEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A prompt whose packet `k` is all one recognisable value.
fn numbered_prompt(packets: usize) -> Prompt {
    let pcm: Vec<i16> = (0..packets * 160)
        .map(|i| ((i / 160) % 100) as i16 * 300 + 100)
        .collect();
    Prompt::from_samples("numbered", &pcm)
}

fn packet_number(payload: &[u8]) -> i16 {
    let mut pcm = Vec::new();
    Codec::Pcmu.decode(&payload[..1], &mut pcm);
    // Within one quantisation step of k·300 + 100.
    ((pcm[0] as i32 - 100 + 150).div_euclid(300)) as i16
}

fn silence_prompt(samples: usize) -> Prompt {
    Prompt::from_samples("s", &vec![0; samples])
}

/// Drives the session exactly on its deadlines until it goes idle; returns
/// (time, packet) for each send and (time, event) for each event.
type Timeline<T> = Vec<(Duration, T)>;

fn run_to_idle(s: &mut RtpSession, start: Instant) -> (Timeline<Sent>, Timeline<MediaEvent>) {
    let mut sent: Vec<_> = drain(s).into_iter().map(|p| (Duration::ZERO, p)).collect();
    let mut evs: Vec<_> = events(s).into_iter().map(|e| (Duration::ZERO, e)).collect();
    while let Some(t) = s.poll_timeout() {
        s.handle_timeout(t);
        sent.extend(drain(s).into_iter().map(|p| (t - start, p)));
        evs.extend(events(s).into_iter().map(|e| (t - start, e)));
    }
    (sent, evs)
}

#[test]
fn first_packet_is_sent_at_once_with_marker() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    // Started 1 s after the session: timestamp = initial + 8000.
    s.play(t0 + ms(1000), vec![silence_prompt(320)], 7);
    let sent = drain(&mut s);
    assert_eq!(sent.len(), 1);
    let p = &sent[0];
    assert_eq!(p.to, remote());
    assert!(p.marker);
    assert_eq!(p.pt, 0);
    assert_eq!(p.seq, SEQ);
    assert_eq!(p.ts, TS + 8000);
    assert_eq!(p.ssrc, SSRC);
    assert_eq!(p.payload, vec![0xFF; 160]);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(1020)));
    assert!(s.is_playing());
}

#[test]
fn packets_every_20ms_with_contiguous_seq_and_timestamps() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    // 1000 samples: six full packets and one of 40 samples plus padding.
    let pcm: Vec<i16> = (0..1000)
        .map(|i| if i % 2 == 0 { 1000 } else { -1000 })
        .collect();
    s.play(t0, vec![Prompt::from_samples("p", &pcm)], 1);
    let (sent, evs) = run_to_idle(&mut s, t0);
    assert_eq!(sent.len(), 7);
    for (k, (at, p)) in sent.iter().enumerate() {
        assert_eq!(*at, ms(20 * k as u64), "packet {k} time");
        assert_eq!(p.seq, SEQ + k as u16);
        assert_eq!(p.ts, TS + 160 * k as u32);
        assert_eq!(p.marker, k == 0);
        assert_eq!(p.ssrc, SSRC);
        assert_eq!(p.payload.len(), 160);
    }
    let last = &sent[6].1.payload;
    assert!(last[..40].iter().all(|&b| b == 0xCE || b == 0x4E));
    assert_eq!(&last[40..], &[0xFF; 120][..]);
    // Done when the last packet is sent.
    assert_eq!(evs, vec![(ms(120), MediaEvent::PlaybackDone { token: 1 })]);
    assert!(!s.is_playing());
    assert_eq!(s.poll_timeout(), None);
    let st = s.stats();
    assert_eq!(st.packets_sent, 7);
    assert_eq!(st.bytes_sent, 7 * 172);
}

#[test]
fn alaw_pads_with_alaw_silence() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcma), t0);
    s.play(t0, vec![Prompt::from_samples("p", &[1000; 10])], 1);
    let p = drain(&mut s).remove(0);
    assert_eq!(p.pt, 8);
    assert_eq!(&p.payload[..10], &[0xFA; 10]);
    assert_eq!(&p.payload[10..], &[0xD5; 150][..]);
}

#[test]
fn ten_minute_prompt_does_not_drift() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    let n = 10 * 60 * 50;
    s.play(t0, vec![silence_prompt(n * 160)], 9);
    let (sent, evs) = run_to_idle(&mut s, t0);
    assert_eq!(sent.len(), n);
    let (last_at, last) = sent.last().unwrap();
    assert_eq!(*last_at, ms(20 * (n as u64 - 1)));
    assert_eq!(last.seq, SEQ.wrapping_add((n - 1) as u16));
    assert_eq!(last.ts, TS + 160 * (n as u32 - 1));
    assert_eq!(
        evs,
        vec![(
            ms(20 * (n as u64 - 1)),
            MediaEvent::PlaybackDone { token: 9 }
        )]
    );
}

#[test]
fn late_driver_with_jitter_does_not_drift() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    let n = 3000;
    s.play(t0, vec![silence_prompt(n * 160)], 1);
    let mut sent = drain(&mut s);
    let mut rng = StdRng::seed_from_u64(4733);
    let mut k = 1u64;
    while let Some(due) = s.poll_timeout() {
        // Deadlines are exact however late the previous wake-up was.
        assert_eq!(due, t0 + ms(20 * k), "deadline {k}");
        let late = Duration::from_micros(rng.random_range(0..=3000));
        s.handle_timeout(due + late);
        let got = drain(&mut s);
        assert_eq!(got.len(), 1);
        sent.extend(got);
        k += 1;
    }
    assert_eq!(sent.len(), n);
    for (k, p) in sent.iter().enumerate() {
        assert_eq!(p.ts, TS + 160 * k as u32);
        assert_eq!(p.seq, SEQ + k as u16);
    }
}

#[test]
fn late_driver_gets_a_burst_of_due_packets() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![numbered_prompt(50)], 1);
    drain(&mut s);
    // 65 ms late for packet 1: packets 1, 2 and 3 are due.
    s.handle_timeout(t0 + ms(65));
    let got = drain(&mut s);
    assert_eq!(got.len(), 3);
    for (i, p) in got.iter().enumerate() {
        let k = i + 1;
        assert_eq!(p.seq, SEQ + k as u16);
        assert_eq!(p.ts, TS + 160 * k as u32);
        assert!(!p.marker);
        assert_eq!(packet_number(&p.payload), k as i16);
    }
    assert_eq!(s.poll_timeout(), Some(t0 + ms(80)));
    // Exactly five due (4..=8) are all sent, nothing dropped.
    s.handle_timeout(t0 + ms(160));
    let got = drain(&mut s);
    assert_eq!(
        got.iter()
            .map(|p| packet_number(&p.payload))
            .collect::<Vec<_>>(),
        vec![4, 5, 6, 7, 8]
    );
}

#[test]
fn very_late_driver_skips_ahead_keeping_seq_contiguous() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![numbered_prompt(50)], 1);
    drain(&mut s);
    // Packets 1..=12 are due at 240 ms: the oldest seven are dropped.
    s.handle_timeout(t0 + ms(245));
    let got = drain(&mut s);
    assert_eq!(got.len(), 5);
    for (i, p) in got.iter().enumerate() {
        let k = 8 + i as u32;
        assert_eq!(p.seq, SEQ + 1 + i as u16, "seq stays contiguous");
        assert_eq!(p.ts, TS + 160 * k, "timestamp follows wall time");
        assert_eq!(p.marker, i == 0, "receiver resynchronises after the jump");
        assert_eq!(packet_number(&p.payload), k as i16, "oldest audio dropped");
    }
    assert_eq!(s.poll_timeout(), Some(t0 + ms(260)));
    s.handle_timeout(t0 + ms(260));
    let p = drain(&mut s).remove(0);
    assert_eq!((p.seq, p.ts, p.marker), (SEQ + 6, TS + 160 * 13, false));
    assert_eq!(packet_number(&p.payload), 13);
}

#[test]
fn skipping_past_the_end_still_reports_done() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![silence_prompt(160 * 3)], 1);
    s.play(t0, vec![silence_prompt(160 * 3)], 2);
    drain(&mut s);
    s.handle_timeout(t0 + ms(10_000));
    assert!(drain(&mut s).is_empty());
    assert_eq!(
        events(&mut s),
        vec![
            MediaEvent::PlaybackDone { token: 1 },
            MediaEvent::PlaybackDone { token: 2 }
        ]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn idle_keeps_timestamp_in_step_with_wall_time() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0 + ms(3), vec![silence_prompt(320)], 1);
    let (first, _) = run_to_idle(&mut s, t0);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].1.ts, TS + 24);
    // 1.5 s later: a new talkspurt, marked, timestamp from elapsed time.
    s.play(t0 + ms(1503), vec![silence_prompt(320)], 2);
    let p = drain(&mut s).remove(0);
    assert!(p.marker);
    assert_eq!(p.seq, SEQ + 2);
    assert_eq!(p.ts, TS + 1503 * 8);
}

#[test]
fn timestamp_at_sub_millisecond_start() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(
        t0 + Duration::from_micros(1_000_250),
        vec![silence_prompt(320)],
        1,
    );
    assert_eq!(drain(&mut s)[0].ts, TS + 8002);
    s.handle_timeout(t0 + Duration::from_micros(1_020_250));
    assert_eq!(drain(&mut s)[0].ts, TS + 8002 + 160);
}

#[test]
fn prompts_in_one_play_are_gap_free() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    let a = Prompt::from_samples("a", &[1000; 100]);
    let b = Prompt::from_samples("b", &[-1000; 300]);
    s.play(t0, vec![a, b], 5);
    let (sent, evs) = run_to_idle(&mut s, t0);
    assert_eq!(sent.len(), 3);
    let p0 = &sent[0].1.payload;
    assert_eq!(&p0[..100], &[0xCE; 100][..]);
    assert_eq!(&p0[100..], &[0x4E; 60][..]);
    assert_eq!(&sent[1].1.payload[..], &[0x4E; 160][..]);
    assert_eq!(&sent[2].1.payload[..80], &[0x4E; 80][..]);
    assert_eq!(&sent[2].1.payload[80..], &[0xFF; 80][..]);
    assert_eq!(
        sent.iter().map(|(_, p)| p.marker).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(evs, vec![(ms(40), MediaEvent::PlaybackDone { token: 5 })]);
}

#[test]
fn queued_plays_report_in_order() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![silence_prompt(200)], 1);
    s.play(t0 + ms(5), vec![silence_prompt(200)], 2);
    let (sent, evs) = run_to_idle(&mut s, t0);
    // 400 samples back to back: packet 1 holds the end of the first.
    assert_eq!(sent.len(), 3);
    assert_eq!(
        evs,
        vec![
            (ms(20), MediaEvent::PlaybackDone { token: 1 }),
            (ms(40), MediaEvent::PlaybackDone { token: 2 })
        ]
    );
}

#[test]
fn play_in_reaction_to_done_continues_the_talkspurt() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![silence_prompt(320)], 1);
    drain(&mut s);
    s.handle_timeout(t0 + ms(20));
    assert_eq!(drain(&mut s).len(), 1);
    assert_eq!(events(&mut s), vec![MediaEvent::PlaybackDone { token: 1 }]);
    assert_eq!(s.poll_timeout(), None);
    // The flow reacts a little later, still inside the last packet's 20 ms.
    s.play(t0 + ms(27), vec![silence_prompt(320)], 2);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(t0 + ms(40)));
    s.handle_timeout(t0 + ms(40));
    let p = drain(&mut s).remove(0);
    assert_eq!((p.seq, p.ts, p.marker), (SEQ + 2, TS + 320, false));
}

#[test]
fn empty_play_completes() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![], 1);
    assert_eq!(events(&mut s), vec![MediaEvent::PlaybackDone { token: 1 }]);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.is_playing());
    // Zero-length prompts too; and behind queued audio it waits its turn.
    s.play(t0 + ms(100), vec![silence_prompt(320)], 2);
    s.play(t0 + ms(100), vec![silence_prompt(0)], 3);
    assert!(events(&mut s).is_empty());
    let (_, evs) = run_to_idle(&mut s, t0);
    assert_eq!(
        evs,
        vec![
            (ms(120), MediaEvent::PlaybackDone { token: 2 }),
            (ms(120), MediaEvent::PlaybackDone { token: 3 })
        ]
    );
    // Inside the last packet's 20 ms too.
    s.play(t0 + ms(125), vec![], 5);
    assert_eq!(events(&mut s), vec![MediaEvent::PlaybackDone { token: 5 }]);
    assert_eq!(s.poll_timeout(), None);
    // The new talkspurt after the empty one is marked.
    s.play(t0 + ms(500), vec![silence_prompt(10)], 4);
    assert!(drain(&mut s)[0].marker);
}

#[test]
fn stop_drops_the_queue() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![silence_prompt(160 * 100)], 1);
    s.play(t0, vec![silence_prompt(160 * 100)], 2);
    drain(&mut s);
    s.handle_timeout(t0 + ms(20));
    drain(&mut s);
    // Packet 2 is due at 40 ms and goes out; nothing after it.
    s.stop(t0 + ms(45));
    assert_eq!(drain(&mut s).len(), 1);
    assert!(!s.is_playing());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + ms(1000));
    assert!(drain(&mut s).is_empty());
    assert!(
        events(&mut s).is_empty(),
        "stopped playbacks are not reported"
    );
    // Playing again later starts a new, marked talkspurt.
    s.play(t0 + ms(2000), vec![silence_prompt(160)], 3);
    let p = drain(&mut s).remove(0);
    assert_eq!((p.seq, p.ts, p.marker), (SEQ + 3, TS + 16_000, true));
    assert_eq!(events(&mut s), vec![MediaEvent::PlaybackDone { token: 3 }]);
}

#[test]
fn stop_while_idle_is_harmless() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.stop(t0);
    assert_eq!(s.poll_timeout(), None);
    assert!(drain(&mut s).is_empty());
}

#[test]
fn seq_and_timestamp_wrap() {
    let t0 = Instant::now();
    let mut cfg = config(Codec::Pcmu);
    cfg.initial_seq = 65535;
    cfg.initial_timestamp = u32::MAX - 100;
    let mut s = RtpSession::new(cfg, t0);
    s.play(t0, vec![silence_prompt(480)], 1);
    let (sent, _) = run_to_idle(&mut s, t0);
    let got: Vec<_> = sent.iter().map(|(_, p)| (p.seq, p.ts)).collect();
    assert_eq!(got, vec![(65535, u32::MAX - 100), (0, 59), (1, 219)]);
}

#[test]
fn unknown_remote_sends_nothing_but_playback_advances() {
    for remote in [None, Some("0.0.0.0:4000".parse().unwrap())] {
        let t0 = Instant::now();
        let mut cfg = config(Codec::Pcmu);
        cfg.remote = remote;
        let mut s = RtpSession::new(cfg, t0);
        s.play(t0, vec![silence_prompt(160 * 10)], 1);
        let (sent, evs) = run_to_idle(&mut s, t0);
        assert!(sent.is_empty());
        assert_eq!(evs, vec![(ms(180), MediaEvent::PlaybackDone { token: 1 })]);
        assert_eq!(s.stats().packets_sent, 0);
    }
}

#[test]
fn remote_learned_mid_play_starts_sending_marked() {
    let t0 = Instant::now();
    let mut cfg = config(Codec::Pcmu);
    cfg.remote = None;
    let mut s = RtpSession::new(cfg, t0);
    s.play(t0, vec![numbered_prompt(10)], 1);
    s.handle_timeout(t0 + ms(20));
    assert!(drain(&mut s).is_empty());
    s.set_remote(Some(remote()));
    s.handle_timeout(t0 + ms(40));
    let p = drain(&mut s).remove(0);
    assert_eq!(
        (p.seq, p.ts, p.marker, packet_number(&p.payload)),
        (SEQ, TS + 320, true, 2)
    );
}

#[test]
fn hold_stops_sending_and_resume_restarts() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.play(t0, vec![silence_prompt(160 * 10)], 1);
    assert_eq!(drain(&mut s).len(), 1);
    s.set_remote(None);
    s.handle_timeout(t0 + ms(20));
    s.handle_timeout(t0 + ms(40));
    assert!(drain(&mut s).is_empty());
    let new: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    s.set_remote(Some(new));
    s.handle_timeout(t0 + ms(60));
    let p = drain(&mut s).remove(0);
    assert_eq!(
        (p.to, p.seq, p.ts, p.marker),
        (new, SEQ + 1, TS + 480, true)
    );
    // Old-style hold: c=0.0.0.0.
    s.set_remote(Some("0.0.0.0:5000".parse().unwrap()));
    s.handle_timeout(t0 + ms(80));
    assert!(drain(&mut s).is_empty());
}

fn rtp_from_peer(pt: u8, seq: u16) -> Vec<u8> {
    hotline_media::rtp::build_packet(pt, false, seq, 0, 99, &[0xFF; 160])
}

#[test]
fn symmetric_latches_on_first_packet() {
    let t0 = Instant::now();
    let mut cfg = config(Codec::Pcmu);
    cfg.symmetric = true;
    // The phone is behind a NAT: its SDP names a private address.
    let private: SocketAddr = "10.0.0.10:4000".parse().unwrap();
    cfg.remote = Some(private);
    let mut s = RtpSession::new(cfg, t0);
    let nat: SocketAddr = "203.0.113.5:31000".parse().unwrap();
    let other: SocketAddr = "203.0.113.6:32000".parse().unwrap();
    assert_eq!(s.destination(), Some(private));
    // Garbage and payload types not negotiated don't latch.
    s.handle_input(t0, other, b"hello");
    s.handle_input(t0, other, &rtp_from_peer(13, 1));
    assert_eq!(s.destination(), Some(private));
    s.handle_input(t0, nat, &rtp_from_peer(0, 2));
    assert_eq!(s.destination(), Some(nat));
    // Later packets from elsewhere don't move it.
    s.handle_input(t0, other, &rtp_from_peer(0, 3));
    assert_eq!(s.destination(), Some(nat));
    s.play(t0, vec![silence_prompt(160)], 1);
    assert_eq!(drain(&mut s)[0].to, nat);
    // A re-INVITE's address applies, and the next packet latches again.
    let moved: SocketAddr = "192.168.7.1:6000".parse().unwrap();
    s.set_remote(Some(moved));
    assert_eq!(s.destination(), Some(moved));
    s.handle_input(t0, other, &rtp_from_peer(0, 4));
    assert_eq!(s.destination(), Some(other));
}

#[test]
fn symmetric_learns_unknown_remote() {
    let t0 = Instant::now();
    let mut cfg = config(Codec::Pcmu);
    cfg.symmetric = true;
    cfg.remote = Some("0.0.0.0:0".parse().unwrap());
    let mut s = RtpSession::new(cfg, t0);
    assert_eq!(s.destination(), None);
    let nat: SocketAddr = "203.0.113.5:31000".parse().unwrap();
    // A telephone-event packet counts too.
    let ev = hotline_media::rtp::build_packet(101, true, 1, 0, 99, &[1, 0, 0, 160]);
    s.handle_input(t0, nat, &ev);
    assert_eq!(s.destination(), Some(nat));
}

#[test]
fn a_public_sdp_address_is_the_only_source_before_the_latch() {
    let t0 = Instant::now();
    let mut cfg = config(Codec::Pcmu);
    cfg.symmetric = true;
    let mut s = RtpSession::new(cfg, t0);
    // remote() is public: another host, or another port of it, is not the phone.
    for from in ["203.0.113.5:31000", "192.0.2.10:4002"] {
        s.handle_input(t0, from.parse().unwrap(), &rtp_from_peer(0, 1));
    }
    assert_eq!(s.destination(), Some(remote()));
    assert_eq!(s.last_received(), None);
    assert_eq!(s.stats().packets_foreign, 2);
    s.handle_input(t0, remote(), &rtp_from_peer(0, 2));
    assert_eq!(s.last_received(), Some(t0));
}

#[test]
fn not_symmetric_ignores_source() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    s.handle_input(
        t0,
        "203.0.113.5:31000".parse().unwrap(),
        &rtp_from_peer(0, 1),
    );
    assert_eq!(s.destination(), Some(remote()));
}

#[test]
fn input_counts_and_liveness() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(config(Codec::Pcmu), t0);
    let peer = remote();
    assert_eq!(s.last_received(), None);
    s.handle_input(t0 + ms(1), peer, b"");
    s.handle_input(t0 + ms(2), peer, &[0x80; 11]);
    s.handle_input(t0 + ms(3), peer, &[0x40; 40]); // RTP version 1
    assert_eq!(s.last_received(), None);
    s.handle_input(t0 + ms(4), peer, &rtp_from_peer(0, 1));
    assert_eq!(s.last_received(), Some(t0 + ms(4)));
    // An RTCP receiver report (rtcp-mux) proves liveness too.
    let rr = [0x80, 201, 0, 1, 0, 0, 0, 99];
    s.handle_input(t0 + ms(5), peer, &rr);
    assert_eq!(s.last_received(), Some(t0 + ms(5)));
    let st = s.stats();
    assert_eq!(st.packets_invalid, 3);
    assert_eq!(st.packets_received, 1);
    assert_eq!(st.bytes_received, 172);
    assert_eq!(st.rtcp_received, 1);
    assert!(events(&mut s).is_empty());
}

#[test]
fn random_garbage_never_panics() {
    let t0 = Instant::now();
    let mut cfg = config(Codec::Pcmu);
    cfg.symmetric = true;
    let mut s = RtpSession::new(cfg, t0);
    let peer = remote();
    let mut rng = StdRng::seed_from_u64(1);
    for i in 0..20_000u64 {
        let len = rng.random_range(0..64);
        let mut data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 && !data.is_empty() {
            // Mostly-valid headers reach the deeper parsing paths.
            data[0] = 0x80 | (data[0] & 0x3F);
            if data.len() > 1 {
                data[1] = if i % 4 == 0 { 101 } else { data[1] };
            }
        }
        s.handle_input(t0 + ms(i), peer, &data);
        s.handle_timeout(t0 + ms(i));
        while s.poll_event().is_some() {}
    }
    let st = s.stats();
    // Short telephone-events count as both received and invalid.
    assert!(st.packets_invalid + st.packets_received + st.rtcp_received >= 20_000);
    assert!(st.packets_received > 1000, "deeper paths reached: {st:?}");
}
