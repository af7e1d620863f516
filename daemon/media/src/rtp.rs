//! One call leg's RTP: paced prompt playback out, DTMF and liveness in.
//!
//! # Pacing
//!
//! Audio goes out in talkspurts of 20 ms packets (160 samples). Packet `k` of
//! a talkspurt is due at `start + 20·k ms` and carries timestamp
//! `start_ts + 160·k`, both computed from the talkspurt's start, never from
//! the previous send, so a late driver cannot make them drift. The RTP
//! timestamp is a function of wall time since the session began
//! (`initial_timestamp + 8 per ms`), so after an idle gap the next talkspurt's
//! timestamp is the one elapsed time implies, as receivers' jitter buffers
//! expect. The first packet of a talkspurt has the marker bit.
//!
//! A driver that falls behind gets the due packets at once, up to
//! [`MAX_BURST`]; beyond that the oldest audio is dropped: sequence numbers
//! stay contiguous, timestamps jump to match wall time, and the first packet
//! after the jump is marked so the receiver resynchronises.
//!
//! A talkspurt stays open until the slot after its last packet: a `play()`
//! before then (e.g. in reaction to [`MediaEvent::PlaybackDone`]) continues it
//! without a gap or a marker.
//!
//! # Playback completion
//!
//! `PlaybackDone { token }` is emitted when the packet holding the last audio
//! of that `play()` call is *sent* (the caller hears it during the following
//! 20 ms). Reporting at send time lets a flow queue its next prompt in time to
//! continue the talkspurt without a gap. A `play()` with no audio completes at
//! once, after anything queued before it. `stop()` discards queued prompts and
//! their tokens are never reported.
//!
//! # Destination
//!
//! Nothing is sent while the destination is unknown or on hold, but the
//! queue and the clock advance as if it were (the caller misses that audio,
//! the flow doesn't stall); sequence numbers count packets actually sent.
//! With `symmetric`, the first RTP packet with a negotiated payload type
//! latches the destination to its source address, overriding the SDP one
//! (NAT). The latch is then fixed until [`RtpSession::set_remote`] gives a
//! new address, after which the next packet latches again.
//!
//! # Sources
//!
//! Only the peer is heard: the SDP's address, or once latched the latched one
//! (RTCP: the same IP, any port). Before the latch another host may speak (and
//! latch) only when the SDP named a private address: that phone is behind a NAT
//! and sends from its router's. A phone whose SDP names a public address said
//! exactly where it sends from.
//! Datagrams from anywhere else are counted in `packets_foreign` and otherwise
//! ignored, so a spoofed packet neither dials a digit nor keeps a dead call alive.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;

use crate::Codec;
use crate::dtmf::DtmfReceiver;
use crate::wav::Prompt;

/// Samples (and bytes, for G.711) per packet.
pub const SAMPLES_PER_PACKET: usize = 160;
/// Time covered by one packet.
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// Most packets sent at once when the driver is late (100 ms of audio).
pub const MAX_BURST: u64 = 5;

const HEADER_LEN: usize = 12;
const NANOS_PER_PACKET: u128 = 20_000_000;

#[derive(Clone, Debug)]
pub struct RtpConfig {
    pub codec: Codec,
    /// Negotiated payload type for `codec` (normally 0 or 8).
    pub payload_type: u8,
    /// Negotiated RFC 4733 telephone-event payload type (e.g. 101).
    pub telephone_event_pt: Option<u8>,
    /// From SDP; `None` or an unspecified IP means don't send until learned.
    pub remote: Option<SocketAddr>,
    /// Latch onto the source address of the peer's packets (NAT).
    pub symmetric: bool,
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    Dtmf { digit: char, duration_ms: u32 },
    PlaybackDone { token: u64 },
}

/// Counters for one session. Bytes are whole datagrams (RTP header included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpStats {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Valid RTP packets, whatever their payload type.
    pub packets_received: u64,
    pub bytes_received: u64,
    /// Datagrams that were neither RTP nor RTCP, or malformed telephone-events.
    pub packets_invalid: u64,
    /// RTCP datagrams (rtcp-mux), counted but otherwise ignored.
    pub rtcp_received: u64,
    /// Datagrams from a source that is not the peer (see the module docs), ignored.
    pub packets_foreign: u64,
}

enum Item {
    Audio { prompt: Prompt, pos: usize },
    Done(u64),
}

/// The talkspurt being played, or whose last packet's 20 ms hasn't elapsed.
#[derive(Clone, Copy, Debug)]
struct Talkspurt {
    start: Instant,
    start_ts: u32,
    /// Index of the next packet.
    next: u64,
}

impl Talkspurt {
    fn due(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos(k.saturating_mul(NANOS_PER_PACKET as u64))
    }

    fn timestamp(&self, k: u64) -> u32 {
        // Truncation is the wrap of the 32-bit RTP timestamp.
        self.start_ts
            .wrapping_add(k.wrapping_mul(SAMPLES_PER_PACKET as u64) as u32)
    }
}

pub struct RtpSession {
    cfg: RtpConfig,
    created: Instant,
    seq: u16,
    /// From SDP; `None` when unknown or unspecified.
    sdp_remote: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    on_hold: bool,
    spurt: Option<Talkspurt>,
    /// Set at a talkspurt's start, after skipped audio and after unsent packets.
    marker_pending: bool,
    queue: VecDeque<Item>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<MediaEvent>,
    dtmf: DtmfReceiver,
    last_received: Option<Instant>,
    stats: RtpStats,
}

impl RtpSession {
    pub fn new(cfg: RtpConfig, now: Instant) -> Self {
        let sdp_remote = cfg.remote.filter(|a| !a.ip().is_unspecified());
        RtpSession {
            seq: cfg.initial_seq,
            cfg,
            created: now,
            sdp_remote,
            latched: None,
            on_hold: false,
            spurt: None,
            marker_pending: true,
            queue: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dtmf: DtmfReceiver::new(),
            last_received: None,
            stats: RtpStats::default(),
        }
    }

    /// Queues prompts to play after whatever is queued; `token` comes back in
    /// [`MediaEvent::PlaybackDone`] once the last of them has been sent.
    pub fn play(&mut self, now: Instant, prompts: Vec<Prompt>, token: u64) {
        self.pump(now);
        for prompt in prompts {
            if prompt.samples() > 0 {
                self.queue.push_back(Item::Audio { prompt, pos: 0 });
            }
        }
        self.queue.push_back(Item::Done(token));
        // With nothing ahead of it, an empty play is done now, not at the next slot.
        self.report_finished();
        if self.spurt.is_none() {
            self.spurt = Some(Talkspurt {
                start: now,
                start_ts: self.timestamp_at(now),
                next: 0,
            });
            self.marker_pending = true;
        }
        self.pump(now);
    }

    /// Barge-in: drops the queue. Packets due by `now` are sent first; the
    /// one in flight is the last.
    pub fn stop(&mut self, now: Instant) {
        self.pump(now);
        self.queue.clear();
    }

    /// True while queued audio remains to be sent.
    pub fn is_playing(&self) -> bool {
        self.queue.iter().any(|i| matches!(i, Item::Audio { .. }))
    }

    /// A re-INVITE: a new address, or hold (`None` or an unspecified IP),
    /// which stops sending. A new address also re-arms the symmetric latch.
    pub fn set_remote(&mut self, addr: Option<SocketAddr>) {
        match addr.filter(|a| !a.ip().is_unspecified()) {
            Some(addr) => {
                self.sdp_remote = Some(addr);
                self.on_hold = false;
                self.latched = None;
            }
            None => self.on_hold = true,
        }
    }

    /// The peer's address learnt from its packets (symmetric RTP), if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Where packets go now, if anywhere.
    pub fn destination(&self) -> Option<SocketAddr> {
        if self.on_hold {
            return None;
        }
        self.latched.or(self.sdp_remote)
    }

    /// A datagram received on the RTP port. Anything that isn't RTP is
    /// counted and otherwise ignored.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.dtmf.handle_timeout(now);
        if !self.is_from_peer(from, is_rtcp(data)) {
            self.stats.packets_foreign += 1;
            self.drain_digits();
            return;
        }
        if is_rtcp(data) {
            self.stats.rtcp_received += 1;
            self.last_received = Some(now);
            self.drain_digits();
            return;
        }
        let Ok(packet) = RtpReader::new(data) else {
            self.stats.packets_invalid += 1;
            self.drain_digits();
            return;
        };
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        self.last_received = Some(now);

        let pt = packet.payload_type();
        let is_dtmf = self.cfg.telephone_event_pt == Some(pt);
        if self.cfg.symmetric && self.latched.is_none() && (is_dtmf || pt == self.cfg.payload_type)
        {
            self.latched = Some(from);
        }
        if is_dtmf
            && !self
                .dtmf
                .handle_packet(now, packet.ssrc(), packet.timestamp(), packet.payload())
        {
            self.stats.packets_invalid += 1;
        }
        self.drain_digits();
    }

    /// Whether `from` may be the peer: the latched or the SDP's address; before a latch
    /// also another host, but only when the SDP's address is one a NAT hides (a private
    /// address), since then the peer sends from its router's. RTCP comes from another
    /// port of the same host, so for it the IP is enough.
    fn is_from_peer(&self, from: SocketAddr, rtcp: bool) -> bool {
        let known = [self.latched, self.sdp_remote];
        if known
            .into_iter()
            .flatten()
            .any(|peer| peer == from || (rtcp && peer.ip() == from.ip()))
        {
            return true;
        }
        if !self.cfg.symmetric {
            return self.sdp_remote.is_none();
        }
        self.latched.is_none()
            && self
                .sdp_remote
                .is_none_or(|sdp| crate::behind_nat(sdp.ip()))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.pump(now);
        self.dtmf.handle_timeout(now);
        self.drain_digits();
    }

    /// The next packet's due time while playing, or when a DTMF event whose
    /// end was lost will be reported; `None` when there is nothing to do.
    /// It may be in the past if the driver is late.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let audio = match &self.spurt {
            Some(s) if !self.queue.is_empty() => Some(s.due(s.next)),
            _ => None,
        };
        match (audio, self.dtmf.poll_timeout()) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// When the last valid RTP or RTCP packet arrived (from any source).
    pub fn last_received(&self) -> Option<Instant> {
        self.last_received
    }

    pub fn stats(&self) -> RtpStats {
        self.stats
    }

    /// The RTP timestamp wall time implies at `t`.
    fn timestamp_at(&self, t: Instant) -> u32 {
        let nanos = t.saturating_duration_since(self.created).as_nanos();
        let samples = nanos * 8000 / 1_000_000_000;
        // Truncation is the wrap of the 32-bit RTP timestamp.
        self.cfg.initial_timestamp.wrapping_add(samples as u32)
    }

    /// Sends every packet due by `now`.
    fn pump(&mut self, now: Instant) {
        let Some(mut spurt) = self.spurt else {
            return;
        };
        if now >= spurt.due(spurt.next) {
            // Index of the last packet due by now.
            let last =
                (now.saturating_duration_since(spurt.start).as_nanos() / NANOS_PER_PACKET) as u64;
            let mut due = (last + 1).saturating_sub(spurt.next);
            if due > MAX_BURST {
                let skip = due - MAX_BURST;
                self.skip_audio(skip.saturating_mul(SAMPLES_PER_PACKET as u64));
                spurt.next += skip;
                due = MAX_BURST;
                self.marker_pending = true;
            }
            for _ in 0..due {
                let mut frame = [0u8; SAMPLES_PER_PACKET];
                if !self.fill_frame(&mut frame) {
                    break;
                }
                self.emit(&frame, spurt.timestamp(spurt.next));
                spurt.next += 1;
            }
        }
        // Over once nothing is queued and the last packet's 20 ms have passed.
        self.spurt = if self.queue.is_empty() && now >= spurt.due(spurt.next) {
            None
        } else {
            Some(spurt)
        };
    }

    /// Copies the next 160 samples of queued audio into `frame`, padding a
    /// last partial frame with silence. Reports playbacks that end in it.
    /// False if no audio was left.
    fn fill_frame(&mut self, frame: &mut [u8; SAMPLES_PER_PACKET]) -> bool {
        let mut filled = 0;
        while filled < frame.len() {
            match self.queue.front_mut() {
                None => break,
                Some(Item::Done(token)) => {
                    self.events
                        .push_back(MediaEvent::PlaybackDone { token: *token });
                    self.queue.pop_front();
                }
                Some(Item::Audio { prompt, pos }) => {
                    let src = prompt.encoded(self.cfg.codec).get(*pos..).unwrap_or(&[]);
                    let n = src.len().min(frame.len() - filled);
                    if let (Some(dst), Some(src)) =
                        (frame.get_mut(filled..filled + n), src.get(..n))
                    {
                        dst.copy_from_slice(src);
                    }
                    filled += n;
                    *pos += n;
                    if n == src.len() {
                        self.queue.pop_front();
                    }
                }
            }
        }
        self.report_finished();
        if filled == 0 {
            return false;
        }
        frame
            .iter_mut()
            .skip(filled)
            .for_each(|b| *b = self.cfg.codec.silence());
        true
    }

    /// Drops `samples` of queued audio (the driver fell too far behind).
    fn skip_audio(&mut self, mut samples: u64) {
        while samples > 0 {
            match self.queue.front_mut() {
                None => break,
                Some(Item::Done(token)) => {
                    self.events
                        .push_back(MediaEvent::PlaybackDone { token: *token });
                    self.queue.pop_front();
                }
                Some(Item::Audio { prompt, pos }) => {
                    let left = prompt.samples().saturating_sub(*pos) as u64;
                    if left > samples {
                        *pos += samples as usize;
                        samples = 0;
                    } else {
                        samples -= left;
                        self.queue.pop_front();
                    }
                }
            }
        }
        self.report_finished();
    }

    /// Reports playbacks whose audio has all been consumed.
    fn report_finished(&mut self) {
        while let Some(Item::Done(token)) = self.queue.front() {
            self.events
                .push_back(MediaEvent::PlaybackDone { token: *token });
            self.queue.pop_front();
        }
    }

    fn emit(&mut self, payload: &[u8], timestamp: u32) {
        let Some(dest) = self.destination() else {
            // The receiver will see a gap: resynchronise it when sending resumes.
            self.marker_pending = true;
            return;
        };
        let packet = build_packet(
            self.cfg.payload_type,
            self.marker_pending,
            self.seq,
            timestamp,
            self.cfg.ssrc,
            payload,
        );
        self.marker_pending = false;
        self.seq = self.seq.wrapping_add(1);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += packet.len() as u64;
        self.transmits.push_back((dest, packet));
    }

    fn drain_digits(&mut self) {
        while let Some(d) = self.dtmf.poll_digit() {
            self.events.push_back(MediaEvent::Dtmf {
                digit: d.digit,
                duration_ms: d.duration_ms,
            });
        }
    }
}

/// An RTP packet: version 2, no padding, extension or CSRCs. The payload
/// type is masked to 7 bits.
pub fn build_packet(
    payload_type: u8,
    marker: bool,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER_LEN + payload.len());
    p.push(0x80);
    p.push((payload_type & 0x7F) | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RTCP multiplexed on the RTP port (RFC 5761 §4): version 2 and a packet
/// type of 192–223, which RTP payload types 64–95 would collide with.
pub fn is_rtcp(data: &[u8]) -> bool {
    match data {
        [b0, b1, ..] => b0 >> 6 == 2 && (192..=223).contains(b1),
        _ => false,
    }
}
