//! A call recorder: the RTP a call's bridge relays, turned into 8000 Hz 16-bit linear PCM.
//!
//! A call is recorded as two tracks: the caller and the operator side (whoever is talking
//! with the caller; after a transfer, the next operator). The bridge hands the recorder a
//! copy of every packet it relays ([`Recorder::push`]); the driver collects the PCM with
//! [`Recorder::pull`] and, when the call ends, [`Recorder::finish`]. Output is a mono mix
//! (the tracks' sum, saturated: clamped to i16, never wrapped) or stereo (interleaved,
//! caller left, operator right).
//!
//! # Timeline
//!
//! Both tracks share one timeline that starts at the recorder's start and is driven by the
//! clock, not by packets: `pull(now)` releases every sample position up to
//! `now - start - delay` not yet released, silence where nothing came, so a track that
//! goes quiet (hold, a lost leg) leaves silence and the recording's marks
//! ([`Recorder::offset_ms`]) stay true to wall time. `delay` is how much jitter and
//! reordering is absorbed: audio arriving up to `delay` after its time still makes it.
//!
//! # Placement
//!
//! A track's first packet, and the first of a new SSRC, is anchored at its arrival
//! position; later packets land where their RTP timestamp puts them relative to that
//! anchor (a wrapping difference), so reordered packets fall into place and gaps are
//! silence. A packet that would land more than [`MAX_SKEW`] from its arrival position
//! (a timestamp jump, a restarted stream, a clock far off) re-anchors the track at its
//! arrival. Audio for positions already released is dropped, the rest of its packet kept.
//!
//! Memory: a track buffers from the released point to its newest audio, which the
//! re-anchor rule keeps within [`MAX_SKEW`] (plus one packet) of arrival time; with the
//! driver pulling after every packet, that is `delay` + about 1 s per track.
//!
//! Sans-IO: every time-dependent call takes `now`; nothing here reads the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;

use crate::rtp::is_rtcp;
use crate::{Codec, g711};

/// Samples per second, per channel.
pub const SAMPLE_RATE: u64 = 8000;
/// How far behind `now` audio is released unless told otherwise.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);
/// How far (in samples: 1 s) a packet may land from its arrival position before its
/// track is re-anchored; bounds what a hostile or broken timestamp can make us buffer.
pub const MAX_SKEW: u64 = SAMPLE_RATE;

/// Which side of the call a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    Caller,
    /// Whoever is talking with the caller: the operator, after a transfer the next one.
    Operator,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One channel: caller + operator, saturated.
    Mono,
    /// Two interleaved channels: caller left, operator right.
    Stereo,
}

/// Where a track's RTP timestamps sit on the timeline.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: u64,
}

/// One track's audio not yet released.
#[derive(Debug, Default)]
struct Lane {
    anchor: Option<Anchor>,
    /// `pcm[i]` is timeline position `released + i`; 0 where nothing came.
    pcm: VecDeque<i16>,
}

impl Lane {
    /// Decodes `payload` onto the timeline from `position` on, dropping what falls before
    /// `released`.
    fn write(&mut self, position: i128, released: u64, codec: Codec, payload: &[u8]) {
        let decode: fn(u8) -> i16 = match codec {
            Codec::Pcmu => g711::ulaw_to_linear,
            Codec::Pcma => g711::alaw_to_linear,
        };
        let len = payload.len() as i128;
        let late = (i128::from(released) - position).clamp(0, len);
        let Some(fresh) = usize::try_from(late).ok().and_then(|l| payload.get(l..)) else {
            return;
        };
        let Ok(first) = usize::try_from(position + late - i128::from(released)) else {
            return;
        };
        let Some(end) = first.checked_add(fresh.len()) else {
            return;
        };
        if fresh.is_empty() {
            return;
        }
        if self.pcm.len() < end {
            self.pcm.resize(end, 0);
        }
        for (slot, &byte) in self.pcm.range_mut(first..end).zip(fresh) {
            *slot = decode(byte);
        }
    }
}

/// Whole samples in `d`, computed exactly (integer nanoseconds), so positions never drift.
fn samples(d: Duration) -> u64 {
    let n = d.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000;
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// One call's recording. See the module docs.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    layout: Layout,
    delay: Duration,
    /// Samples per channel released so far: the next position to release.
    released: u64,
    finished: bool,
    caller: Lane,
    operator: Lane,
}

impl Recorder {
    /// Starts the timeline at `now`, releasing audio [`DEFAULT_DELAY`] behind the clock.
    pub fn new(now: Instant, layout: Layout) -> Recorder {
        Recorder::with_delay(now, layout, DEFAULT_DELAY)
    }

    /// Starts the timeline at `now`, releasing audio `delay` behind the clock (the jitter
    /// and reordering absorbed).
    pub fn with_delay(now: Instant, layout: Layout, delay: Duration) -> Recorder {
        Recorder {
            start: now,
            layout,
            delay,
            released: 0,
            finished: false,
            caller: Lane::default(),
            operator: Lane::default(),
        }
    }

    /// One RTP packet of `track` as it arrived at `now`, in `codec` under payload type
    /// `pt`. Other payload types (telephone-event, comfort noise), RTCP, empty and
    /// unparseable packets, and anything after [`Recorder::finish`] are ignored.
    pub fn push(&mut self, now: Instant, track: Track, codec: Codec, pt: u8, packet: &[u8]) {
        if self.finished || is_rtcp(packet) {
            return;
        }
        let Ok(rtp) = RtpReader::new(packet) else {
            return;
        };
        let payload = rtp.payload();
        if rtp.payload_type() != pt || payload.is_empty() {
            return;
        }
        let arrival = self.position(now);
        let released = self.released;
        let lane = match track {
            Track::Caller => &mut self.caller,
            Track::Operator => &mut self.operator,
        };
        let (ssrc, timestamp) = (rtp.ssrc(), rtp.timestamp());
        let placed = lane.anchor.filter(|a| a.ssrc == ssrc).and_then(|a| {
            // Signed distance in samples; RTP timestamps wrap.
            let offset = timestamp.wrapping_sub(a.timestamp) as i32;
            let position = i128::from(a.position) + i128::from(offset);
            (position.abs_diff(i128::from(arrival)) <= u128::from(MAX_SKEW)).then_some(position)
        });
        let position = placed.unwrap_or_else(|| {
            lane.anchor = Some(Anchor {
                ssrc,
                timestamp,
                position: arrival,
            });
            i128::from(arrival)
        });
        lane.write(position, released, codec, payload);
    }

    /// The PCM due by `now`: every position up to `now - start - delay` not yet released
    /// (interleaved when stereo); empty when nothing is due.
    pub fn pull(&mut self, now: Instant) -> Vec<i16> {
        let mut out = Vec::new();
        self.pull_into(now, &mut out);
        out
    }

    /// [`Recorder::pull`], appending to `out` (lets the driver reuse one buffer).
    pub fn pull_into(&mut self, now: Instant, out: &mut Vec<i16>) {
        if self.finished {
            return;
        }
        let elapsed = now.saturating_duration_since(self.start);
        self.release(samples(elapsed.saturating_sub(self.delay)), out);
    }

    /// Ends the recording: releases everything still due up to `now - start` (audio
    /// stamped later doesn't exist yet, so it is dropped) and returns it. Later calls
    /// release nothing.
    pub fn finish(&mut self, now: Instant) -> Vec<i16> {
        let mut out = Vec::new();
        if !self.finished {
            self.release(self.position(now), &mut out);
            self.finished = true;
            self.caller = Lane::default();
            self.operator = Lane::default();
        }
        out
    }

    /// Where `now` falls on the recording, in ms (for marks such as "answered at 12.34 s").
    pub fn offset_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// Samples per channel released so far; their duration is `released / 8000` s.
    pub fn released(&self) -> u64 {
        self.released
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `now`'s sample position on the timeline.
    fn position(&self, now: Instant) -> u64 {
        samples(now.saturating_duration_since(self.start))
    }

    /// Releases positions `released..due`, mixing or interleaving the tracks.
    fn release(&mut self, due: u64, out: &mut Vec<i16>) {
        let Ok(count) = usize::try_from(due.saturating_sub(self.released)) else {
            return;
        };
        for _ in 0..count {
            let caller = self.caller.pcm.pop_front().unwrap_or(0);
            let operator = self.operator.pcm.pop_front().unwrap_or(0);
            match self.layout {
                Layout::Mono => out.push(caller.saturating_add(operator)),
                Layout::Stereo => out.extend([caller, operator]),
            }
        }
        self.released = self.released.max(due);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: u64 = 200;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// An RTP packet, header built by hand: V=2, no padding/extension/CSRCs, no marker.
    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn ulaw(bytes: &[u8]) -> Vec<i16> {
        bytes.iter().map(|&b| g711::ulaw_to_linear(b)).collect()
    }

    /// 160 distinct μ-law bytes, none of which decodes to 0 (0x7F and 0xFF do).
    fn frame(seed: u8) -> Vec<u8> {
        (0..160u8)
            .map(|i| (seed.wrapping_add(i) % 0x7E) + 1)
            .collect()
    }

    fn push_u(r: &mut Recorder, now: Instant, track: Track, ts: u32, ssrc: u32, p: &[u8]) {
        r.push(now, track, Codec::Pcmu, 0, &rtp(0, 0, ts, ssrc, p));
    }

    /// Pulls once, far enough on that everything up to `samples` positions is released.
    fn pull_until(r: &mut Recorder, t0: Instant, samples: u64) -> Vec<i16> {
        r.pull(t0 + Duration::from_millis(DELAY) + Duration::from_micros(samples * 125))
    }

    #[test]
    fn one_packet_lands_at_its_arrival_after_the_delay() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Layout::Mono);
        let a = frame(0);
        push_u(&mut r, t0, Track::Caller, 1234, 7, &a);
        assert!(r.pull(ms(t0, 100)).is_empty());
        assert!(r.pull(ms(t0, DELAY)).is_empty(), "nothing due at the delay");
        assert_eq!(r.released(), 0);
        assert_eq!(r.pull(ms(t0, 20 + DELAY)), ulaw(&a));
        assert_eq!(r.pull(ms(t0, 40 + DELAY)), vec![0; 160], "silence after");
        assert_eq!(r.released(), 320);
        assert_eq!(r.offset_ms(ms(t0, 12_340)), 12_340);
        assert_eq!(r.layout(), Layout::Mono);
    }

    #[test]
    fn mono_saturates_and_stereo_interleaves() {
        let t0 = Instant::now();
        let (loud, quiet) = (g711::ulaw_to_linear(0x80), g711::ulaw_to_linear(0x00));
        assert_eq!((loud, quiet), (32124, -32124));
        let mut mono = Recorder::new(t0, Layout::Mono);
        for (k, (c, o)) in [(0x80, 0x80), (0x00, 0x00), (0x80, 0x00)]
            .iter()
            .enumerate()
        {
            let (now, ts) = (ms(t0, 20 * k as u64), 160 * k as u32);
            push_u(&mut mono, now, Track::Caller, ts, 1, &[*c; 160]);
            push_u(&mut mono, now, Track::Operator, ts, 2, &[*o; 160]);
        }
        let out = pull_until(&mut mono, t0, 480);
        assert_eq!(out[..160], [i16::MAX; 160]);
        assert_eq!(out[160..320], [i16::MIN; 160]);
        assert_eq!(out[320..], [0; 160]);

        let mut stereo = Recorder::new(t0, Layout::Stereo);
        let (c, o) = (frame(0), frame(60));
        push_u(&mut stereo, t0, Track::Caller, 0, 1, &c);
        push_u(&mut stereo, ms(t0, 10), Track::Operator, 0, 2, &o);
        let out = pull_until(&mut stereo, t0, 240);
        assert_eq!(out.len(), 480);
        let (left, right): (Vec<i16>, Vec<i16>) = out.chunks(2).map(|s| (s[0], s[1])).unzip();
        assert_eq!(left[..160], ulaw(&c)[..]);
        assert_eq!(left[160..], [0; 80]);
        assert_eq!(right[..80], [0; 80], "operator arrived 10 ms later");
        assert_eq!(right[80..], ulaw(&o)[..]);
    }

    #[test]
    fn reordered_packets_land_in_timestamp_order() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Layout::Mono);
        let (a, b) = (frame(0), frame(50));
        push_u(&mut r, ms(t0, 40), Track::Caller, 160, 9, &b);
        push_u(&mut r, ms(t0, 41), Track::Caller, 0, 9, &a);
        let out = pull_until(&mut r, t0, 480);
        assert_eq!(out[..160], [0; 160]);
        assert_eq!(out[160..320], ulaw(&a)[..]);
        assert_eq!(out[320..], ulaw(&b)[..]);
    }

    #[test]
    fn a_lost_packet_leaves_exactly_its_silence() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Layout::Mono);
        let (a, c) = (frame(0), frame(90));
        push_u(&mut r, t0, Track::Caller, 0, 9, &a);
        push_u(&mut r, ms(t0, 40), Track::Caller, 320, 9, &c);
        let out = pull_until(&mut r, t0, 480);
        assert_eq!(out[..160], ulaw(&a)[..]);
        assert_eq!(out[160..320], [0; 160]);
        assert_eq!(out[320..], ulaw(&c)[..]);
    }

    #[test]
    fn new_ssrc_and_timestamp_jumps_reanchor_wraparound_does_not() {
        let t0 = Instant::now();
        let (a, b, c) = (frame(0), frame(40), frame(80));
        // A new SSRC (a transfer) anchors at its arrival, whatever its timestamp.
        let mut r = Recorder::new(t0, Layout::Mono);
        push_u(&mut r, t0, Track::Operator, 0, 1, &a);
        push_u(&mut r, ms(t0, 30), Track::Operator, 5000, 2, &b);
        push_u(&mut r, ms(t0, 50), Track::Operator, 5160, 2, &c);
        let out = pull_until(&mut r, t0, 560);
        assert_eq!(out[..160], ulaw(&a)[..]);
        assert_eq!(out[160..240], [0; 80]);
        assert_eq!(out[240..400], ulaw(&b)[..]);
        assert_eq!(out[400..], ulaw(&c)[..]);

        // A 10 s jump re-anchors at arrival; the stream then follows its new timestamps.
        // Just under 1 s ahead is still placed by timestamp.
        let mut r = Recorder::new(t0, Layout::Mono);
        push_u(&mut r, t0, Track::Caller, 0, 1, &a);
        push_u(&mut r, ms(t0, 20), Track::Caller, 160 + 80_000, 1, &b);
        push_u(&mut r, ms(t0, 40), Track::Caller, 320 + 80_000, 1, &c);
        push_u(&mut r, ms(t0, 60), Track::Caller, 80_000 + 8000, 1, &a);
        let out = pull_until(&mut r, t0, 8160);
        assert_eq!(out[..160], ulaw(&a)[..]);
        assert_eq!(out[160..320], ulaw(&b)[..]);
        assert_eq!(out[320..480], ulaw(&c)[..]);
        assert!(out[480..8000].iter().all(|&s| s == 0));
        assert_eq!(out[8000..], ulaw(&a)[..]);

        // RTP timestamps wrap at 2^32, forwards (caller) and backwards (operator, reordered
        // across the wrap); arriving off time, so a re-anchor would show.
        let mut r = Recorder::new(t0, Layout::Stereo);
        push_u(&mut r, t0, Track::Caller, u32::MAX - 79, 1, &a);
        push_u(&mut r, ms(t0, 30), Track::Caller, 80, 1, &b);
        push_u(&mut r, ms(t0, 40), Track::Operator, 80, 2, &b);
        push_u(&mut r, ms(t0, 41), Track::Operator, u32::MAX - 79, 2, &a);
        let out = pull_until(&mut r, t0, 480);
        let (left, right): (Vec<i16>, Vec<i16>) = out.chunks(2).map(|s| (s[0], s[1])).unzip();
        assert_eq!(left[..160], ulaw(&a)[..]);
        assert_eq!(left[160..320], ulaw(&b)[..]);
        assert_eq!(right[..160], [0; 160]);
        assert_eq!(right[160..320], ulaw(&a)[..]);
        assert_eq!(right[320..], ulaw(&b)[..]);
    }

    #[test]
    fn released_audio_is_dropped_the_rest_of_a_late_packet_kept() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Layout::Mono);
        let (a, b) = (frame(0), frame(70));
        push_u(&mut r, t0, Track::Caller, 0, 3, &a);
        let first = r.pull(ms(t0, 30 + DELAY));
        assert_eq!(first.len(), 240);
        assert_eq!(first[..160], ulaw(&a)[..]);
        assert_eq!(first[160..], [0; 80]);
        // Positions 160..320 arrive when 160..240 is already out: only 240..320 is kept.
        push_u(&mut r, ms(t0, 31 + DELAY), Track::Caller, 160, 3, &b);
        // Wholly late: a duplicate of the first packet changes nothing.
        push_u(&mut r, ms(t0, 31 + DELAY), Track::Caller, 0, 3, &b);
        let rest = r.pull(ms(t0, 60 + DELAY));
        assert_eq!(rest.len(), 240);
        assert_eq!(rest[..80], ulaw(&b)[80..]);
        assert_eq!(rest[80..], [0; 160]);
    }

    #[test]
    fn other_payloads_rtcp_and_garbage_are_ignored() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Layout::Stereo);
        let loud = [0x80; 160];
        let mut version0 = rtp(0, 1, 0, 5, &loud);
        version0[0] = 0x00;
        let mut csrcs_missing = rtp(0, 1, 0, 5, &loud[..2]);
        csrcs_missing[0] = 0x8F;
        let mut extension_missing = rtp(0, 1, 0, 5, &loud[..2]);
        extension_missing[0] = 0x90;
        let mut bad_padding = rtp(0, 1, 0, 5, &[0x80, 0x80, 0x00]);
        bad_padding[0] = 0xA0;
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
        let bad: Vec<Vec<u8>> = vec![
            rtp(101, 1, 0, 5, &[1, 0x8A, 0, 160]),
            rtp(13, 1, 0, 5, &[0x40]),
            rtp(8, 1, 0, 5, &loud),
            rtp(0, 1, 0, 5, &[]),
            rtcp.to_vec(),
            vec![],
            vec![0x80, 0, 0, 1, 2],
            version0,
            csrcs_missing,
            extension_missing,
            bad_padding,
        ];
        for track in [Track::Caller, Track::Operator] {
            for p in &bad {
                r.push(t0, track, Codec::Pcmu, 0, p);
            }
        }
        // Arbitrary bytes never panic.
        let mut x: u32 = 0x9E37_79B9;
        for len in 0..400usize {
            let junk: Vec<u8> = (0..len % 40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            r.push(t0, Track::Caller, Codec::Pcma, (len % 3) as u8, &junk);
        }
        let noise = r.pull(ms(t0, 20 + DELAY)).len();
        // None of it anchored the caller: a real packet later lands at its arrival.
        let mut r = Recorder::new(t0, Layout::Mono);
        for p in &bad {
            r.push(t0, Track::Caller, Codec::Pcmu, 0, p);
        }
        push_u(&mut r, ms(t0, 20), Track::Caller, 0, 5, &frame(0));
        let out = pull_until(&mut r, t0, 320);
        assert_eq!(out[..160], [0; 160]);
        assert_eq!(out[160..], ulaw(&frame(0))[..]);
        assert_eq!(noise, 320);
    }

    #[test]
    fn finish_releases_up_to_now_and_no_further() {
        let t0 = Instant::now();
        for layout in [Layout::Mono, Layout::Stereo] {
            let mut r = Recorder::new(t0, layout);
            let (a, b) = (frame(0), frame(30));
            push_u(&mut r, t0, Track::Caller, 0, 1, &a);
            push_u(&mut r, ms(t0, 20), Track::Caller, 160, 1, &b);
            let out = r.finish(ms(t0, 30));
            assert_eq!(r.released(), 240);
            let caller: Vec<i16> = match layout {
                Layout::Mono => out,
                Layout::Stereo => out.chunks(2).map(|s| s[0]).collect(),
            };
            assert_eq!(caller[..160], ulaw(&a)[..]);
            assert_eq!(caller[160..], ulaw(&b)[..80]);
            // Over: nothing more comes out.
            push_u(&mut r, ms(t0, 40), Track::Caller, 320, 1, &a);
            assert!(r.pull(ms(t0, 1000)).is_empty());
            assert!(r.finish(ms(t0, 1000)).is_empty());
            assert_eq!(r.released(), 240);
        }
        // Fractions of a sample: 1.0625 s is exactly 8500 samples.
        let mut r = Recorder::with_delay(t0, Layout::Mono, Duration::from_millis(60));
        let mut total = r.pull(t0 + Duration::from_micros(500_130)).len();
        total += r.finish(t0 + Duration::from_micros(1_062_500)).len();
        assert_eq!((total, r.released()), (8500, 8500));
    }

    #[test]
    fn pulling_at_any_cadence_gives_the_same_recording() {
        let t0 = Instant::now();
        // Two tracks with jitter under the delay and a few swapped pairs.
        let mut packets = Vec::new();
        for k in 0..60u32 {
            let jitter = u64::from(k * 37 % 90) * 1000;
            let swap = if k % 7 == 3 { 25_000 } else { 0 };
            let at = u64::from(k) * 20_000 + jitter + swap;
            packets.push((at, Track::Caller, k, frame(k as u8)));
            let at = u64::from(k) * 20_000 + 5_300 + u64::from(k * 11 % 50) * 1000;
            packets.push((at, Track::Operator, k, frame(k as u8 ^ 0x55)));
        }
        packets.sort_by_key(|p| p.0);
        let end = t0 + Duration::from_micros(1_250_000);
        for layout in [Layout::Mono, Layout::Stereo] {
            let run = |steps: &[u64]| {
                let mut r = Recorder::with_delay(t0, layout, Duration::from_millis(150));
                let mut out = Vec::new();
                let (mut clock, mut step) = (0u64, steps.iter().cycle());
                for (at, track, k, payload) in &packets {
                    while !steps.is_empty() && clock < *at {
                        r.pull_into(t0 + Duration::from_micros(clock), &mut out);
                        clock += step.next().copied().unwrap_or(1);
                    }
                    let now = t0 + Duration::from_micros(*at);
                    push_u(&mut r, now, *track, 1000 + 160 * k, 77, payload);
                }
                out.extend(r.finish(end));
                (out, r.released())
            };
            let once = run(&[]);
            let channels = if layout == Layout::Stereo { 2 } else { 1 };
            assert_eq!(once.1, 10_000);
            assert_eq!(once.0.len(), 10_000 * channels);
            assert!(once.0.iter().filter(|&&s| s != 0).count() > 9000 * channels);
            for steps in [&[7000u64, 33_000, 1300, 125][..], &[20_000], &[19_999, 3]] {
                assert_eq!(run(steps), once, "{layout:?} {steps:?}");
            }
        }
    }

    #[test]
    fn an_alaw_track_decodes_as_alaw() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, Layout::Stereo);
        let bytes = frame(3);
        r.push(
            t0,
            Track::Operator,
            Codec::Pcma,
            8,
            &rtp(8, 0, 0, 4, &bytes),
        );
        let out = pull_until(&mut r, t0, 160);
        let right: Vec<i16> = out.chunks(2).map(|s| s[1]).collect();
        let alaw: Vec<i16> = bytes.iter().map(|&b| g711::alaw_to_linear(b)).collect();
        assert_eq!(right, alaw);
        assert_ne!(right, ulaw(&bytes));
        assert!(out.chunks(2).all(|s| s[0] == 0));
    }
}
