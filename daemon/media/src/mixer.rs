//! A conference mixer for one call: the caller, the operator and supervisors who listen,
//! whisper or barge in (issue 18, "Listen, whisper, barge").
//!
//! Each party sends G.711 RTP in ([`Mixer::push`]) and gets its own mix out
//! ([`Mixer::poll_transmit`]): every 20 ms, the sum of the parties it hears, never its own
//! voice, saturated to i16 (a sum past full scale is clamped, never wrapped) and encoded
//! in its law, under its own SSRC, sequence numbers (+1 a packet) and timestamps (+160).
//!
//! # Who hears whom
//!
//! Each listener has a set of sources. [`Mixer::set_mode`] (and adding, removing or
//! re-roling a party) recomputes the sets from the parties' [`Role`]s and the call's
//! [`Mode`] (see [`Mode::hears`]) and touches nothing else: buffers, sequence numbers and
//! timestamps carry on, so modes switch mid-stream without a gap, a marker or a redial.
//!
//! # Timing
//!
//! The first audio packet starts the clock: tick `k` is due at `start + 20·k ms`, computed
//! from the start, never from the previous tick, so it cannot drift. Every tick sends one
//! packet to every listener, silence included, so each outgoing stream stays continuous
//! across mode switches (and NAT bindings and browsers' inactivity timers stay fed). A
//! driver that falls behind gets the due ticks at once, up to [`MAX_BURST`]; older ticks
//! are skipped: sequence numbers stay contiguous, timestamps jump to match wall time and
//! the next packet is marked, as in [`crate::rtp`].
//!
//! # Input alignment
//!
//! Each party has a ring of 320 ms of samples indexed by mixer tick. Its first packet (and
//! the first of a new SSRC) is anchored `playout_delay` ticks after the next tick to mix;
//! later packets land where their RTP timestamp puts them relative to that anchor, so
//! reordered packets fall into place, any packetisation (10, 20, 30 ms) lines up, and
//! missing audio is silence. A packet already seen (by sequence number) is a duplicate
//! and dropped. A packet whose audio's tick has been mixed is late and dropped, unless it
//! is the newest packet yet: then the sender's timeline fell behind ours (a delay spike,
//! a slower clock or a restarted stream) and the party is re-anchored so its audio goes on,
//! a little later. A packet that lands more than [`MAX_LEAD_FRAMES`] past the anchor (a
//! faster clock, a timestamp jump) re-anchors it too, which bounds the added latency.
//!
//! # One source
//!
//! A listener that hears exactly one party in its own law gets that party's bytes as they
//! came (silence bytes where nothing came), not a decode and re-encode, so a plain
//! two-party call through the mixer is bit-exact (μ-law's negative zero, 0x7F, would
//! otherwise come out as 0xFF). In another law, the one source is transcoded.
//!
//! Sans-IO: the driver owns the sockets and the clock. Buffers are allocated when a party
//! is added; the only allocation per tick is each outgoing packet's `Vec`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtp_rs::{RtpReader, Seq};

use crate::Codec;
use crate::g711;
use crate::rtp::{MAX_BURST, PACKET_INTERVAL, SAMPLES_PER_PACKET, build_packet, is_rtcp};

/// Most parties in one mix (source sets are bit masks).
pub const MAX_PARTIES: usize = 8;
/// Ticks a party's first packet waits before it is mixed, absorbing that much jitter.
pub const DEFAULT_PLAYOUT_DELAY: u64 = 1;
/// How far past its anchor (in 20 ms frames) a party's audio may run ahead before it is
/// re-anchored; the most latency a fast sender's clock can add.
pub const MAX_LEAD_FRAMES: u64 = 4;

/// Frames of audio buffered per party.
const RING_FRAMES: u64 = 16;
const FRAME: u64 = SAMPLES_PER_PACKET as u64;
const RING_SAMPLES: u64 = RING_FRAMES * FRAME;
/// Sequence numbers remembered per party to spot duplicates.
const SEQ_WINDOW: i32 = 64;

/// A party's identity, chosen by the caller of the mixer (e.g. the call leg's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Caller,
    Operator,
    Supervisor,
}

/// What a supervisor is doing on the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Caller and operator only; supervisors hear nothing and nobody hears them.
    Plain,
    /// Supervisors hear caller and operator; nobody hears the supervisors.
    Listen,
    /// The operator hears the supervisors, the caller does not.
    Whisper,
    /// Everyone hears everyone else.
    Barge,
}

impl Mode {
    /// Whether a party in role `listener` hears one in role `source` (another party: nobody
    /// hears themselves). Supervisors hear each other when the operator hears them, so two
    /// coaching supervisors don't talk over each other blind.
    pub fn hears(self, listener: Role, source: Role) -> bool {
        use Role::{Caller, Operator, Supervisor};
        match (listener, source) {
            (Caller | Operator, Caller | Operator) => true,
            (Caller, Supervisor) => self == Mode::Barge,
            (Operator | Supervisor, Supervisor) => matches!(self, Mode::Whisper | Mode::Barge),
            (Supervisor, Caller | Operator) => self != Mode::Plain,
        }
    }
}

/// One party's leg as negotiated: what it sends and what it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartyConfig {
    pub id: PartyId,
    pub role: Role,
    pub codec: Codec,
    /// Negotiated payload type of `codec`, both ways; other payload types (DTMF, comfort
    /// noise) are not mixed.
    pub payload_type: u8,
    /// The SSRC, first sequence number and first timestamp of the mix sent to this party.
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartyStats {
    /// RTP packets in the party's audio payload type.
    pub packets_received: u64,
    /// Audio packets dropped because their tick had already been mixed.
    pub late: u64,
    pub duplicates: u64,
    /// RTP in another payload type (telephone-event, comfort noise), not mixed.
    pub other_payload: u64,
    /// Datagrams that were neither RTP nor RTCP, or had no payload.
    pub invalid: u64,
    /// RTCP datagrams, ignored.
    pub rtcp: u64,
    /// Times the party's timeline was re-anchored after its first packet.
    pub resyncs: u64,
    pub packets_sent: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MixerError {
    #[error("party {0:?} is already in the mix")]
    Duplicate(PartyId),
    #[error("a mix holds at most {MAX_PARTIES} parties")]
    Full,
}

/// Where a party's RTP timestamps sit on the mixer's sample timeline.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    /// Mixer sample position (tick · 160) of `timestamp`.
    position: u64,
    highest_seq: u16,
    /// Bit i: sequence number `highest_seq - i` has been seen.
    seen: u64,
}

#[derive(Debug)]
struct Party {
    cfg: PartyConfig,
    /// Bit i: this party hears the one in slot i.
    sources: u8,
    anchor: Option<Anchor>,
    /// Decoded samples by mixer position modulo the ring; 0 where nothing came.
    pcm: Box<[i16]>,
    /// The same samples as they came, for pass-through; the law's silence where nothing came.
    raw: Box<[u8]>,
    // The mix sent to this party.
    seq: u16,
    timestamp: u32,
    marker_pending: bool,
    stats: PartyStats,
    /// Samples played to this party on top of its mix, next first ([`Mixer::play_to`]).
    cue: VecDeque<i16>,
}

impl Party {
    fn new(cfg: PartyConfig) -> Party {
        Party {
            sources: 0,
            anchor: None,
            pcm: vec![0; RING_SAMPLES as usize].into_boxed_slice(),
            raw: vec![cfg.codec.silence(); RING_SAMPLES as usize].into_boxed_slice(),
            seq: cfg.initial_seq,
            timestamp: cfg.initial_timestamp,
            marker_pending: true,
            cue: VecDeque::new(),
            stats: PartyStats::default(),
            cfg,
        }
    }

    /// The ring's samples for mixer tick `tick`.
    fn frame_range(tick: u64) -> std::ops::Range<usize> {
        let start = ((tick % RING_FRAMES) * FRAME) as usize;
        start..start + SAMPLES_PER_PACKET
    }

    fn clear_frame(&mut self, tick: u64) {
        let range = Party::frame_range(tick);
        let silence = self.cfg.codec.silence();
        if let Some(pcm) = self.pcm.get_mut(range.clone()) {
            pcm.fill(0);
        }
        if let Some(raw) = self.raw.get_mut(range) {
            raw.fill(silence);
        }
    }

    fn clear_all(&mut self) {
        self.pcm.fill(0);
        self.raw.fill(self.cfg.codec.silence());
    }

    /// Files one audio packet. `next_tick` is the next tick to be mixed; `anchor_tick`
    /// where a (re-)anchored stream starts.
    fn receive(&mut self, packet: &RtpReader<'_>, next_tick: u64, anchor_tick: u64) {
        let (ssrc, ts, seq) = (
            packet.ssrc(),
            packet.timestamp(),
            u16::from(packet.sequence_number()),
        );
        let payload = packet.payload();
        let read_position = next_tick * FRAME;
        let anchor_position = anchor_tick * FRAME;
        let Some(anchor) = self.anchor.as_mut().filter(|a| a.ssrc == ssrc) else {
            if self.anchor.is_some() {
                self.stats.resyncs += 1;
            }
            self.reanchor(ssrc, seq, ts, anchor_position);
            self.write(anchor_position, read_position, payload);
            return;
        };
        let ahead = Seq::from(seq) - Seq::from(anchor.highest_seq);
        let newest = ahead > 0;
        if newest {
            anchor.seen = if ahead >= SEQ_WINDOW {
                1
            } else {
                (anchor.seen << ahead) | 1
            };
            anchor.highest_seq = seq;
        } else if -ahead >= SEQ_WINDOW {
            // Far behind everything seen: the sender restarted its sequence.
            self.stats.resyncs += 1;
            self.reanchor(ssrc, seq, ts, anchor_position);
            self.write(anchor_position, read_position, payload);
            return;
        } else {
            let bit = 1u64 << -ahead;
            if anchor.seen & bit != 0 {
                self.stats.duplicates += 1;
                return;
            }
            anchor.seen |= bit;
        }
        // Signed distance in samples; RTP timestamps wrap.
        let offset = i64::from(ts.wrapping_sub(anchor.timestamp) as i32);
        let position = anchor.position as i64 + offset;
        let too_late = position < read_position as i64;
        let too_early = position > (anchor_position + MAX_LEAD_FRAMES * FRAME) as i64;
        if too_late && !newest {
            self.stats.late += 1;
            return;
        }
        if too_late || too_early {
            self.stats.resyncs += 1;
            self.reanchor(ssrc, seq, ts, anchor_position);
            self.write(anchor_position, read_position, payload);
            return;
        }
        self.write(position as u64, read_position, payload);
    }

    fn reanchor(&mut self, ssrc: u32, seq: u16, timestamp: u32, position: u64) {
        self.clear_all();
        self.anchor = Some(Anchor {
            ssrc,
            timestamp,
            position,
            highest_seq: seq,
            seen: 1,
        });
    }

    /// Writes samples from mixer position `position` on, up to the ring's end.
    fn write(&mut self, position: u64, read_position: u64, payload: &[u8]) {
        let decode: fn(u8) -> i16 = match self.cfg.codec {
            Codec::Pcmu => g711::ulaw_to_linear,
            Codec::Pcma => g711::alaw_to_linear,
        };
        let room = (read_position + RING_SAMPLES).saturating_sub(position);
        for (i, &byte) in payload.iter().take(room as usize).enumerate() {
            let index = ((position + i as u64) % RING_SAMPLES) as usize;
            if let (Some(pcm), Some(raw)) = (self.pcm.get_mut(index), self.raw.get_mut(index)) {
                *pcm = decode(byte);
                *raw = byte;
            }
        }
    }
}

/// When tick `tick` is due: computed from the start, so it never drifts.
fn due(start: Instant, tick: u64) -> Instant {
    let nanos = PACKET_INTERVAL.as_nanos() as u64;
    start + Duration::from_nanos(tick.saturating_mul(nanos))
}

/// The mix of one call's parties. See the module docs.
#[derive(Debug)]
pub struct Mixer {
    mode: Mode,
    playout_delay: u64,
    /// Indexed by slot; a slot's bit in a source set names its party.
    parties: Vec<Option<Party>>,
    start: Option<Instant>,
    next_tick: u64,
    transmits: VecDeque<(PartyId, Vec<u8>)>,
}

impl Mixer {
    pub fn new(mode: Mode) -> Mixer {
        Mixer::with_playout_delay(mode, DEFAULT_PLAYOUT_DELAY)
    }

    /// A mixer whose parties' first packets wait `ticks` × 20 ms before they are mixed
    /// (at most 10, so the lead allowed past it still fits the ring).
    pub fn with_playout_delay(mode: Mode, ticks: u64) -> Mixer {
        Mixer {
            mode,
            playout_delay: ticks.min(RING_FRAMES - MAX_LEAD_FRAMES - 2),
            parties: Vec::with_capacity(MAX_PARTIES),
            start: None,
            next_tick: 0,
            transmits: VecDeque::new(),
        }
    }

    /// Adds a party; its mix starts at the next tick, with the marker bit.
    pub fn add_party(&mut self, cfg: PartyConfig) -> Result<(), MixerError> {
        if self.slot(cfg.id).is_some() {
            return Err(MixerError::Duplicate(cfg.id));
        }
        let party = Some(Party::new(cfg));
        if let Some(free) = self.parties.iter_mut().find(|p| p.is_none()) {
            *free = party;
        } else if self.parties.len() < MAX_PARTIES {
            self.parties.push(party);
        } else {
            return Err(MixerError::Full);
        }
        self.recompute_sources();
        Ok(())
    }

    /// Removes a party (its leg hung up); false if it was not in the mix.
    pub fn remove_party(&mut self, id: PartyId) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        if let Some(p) = self.parties.get_mut(slot) {
            *p = None;
        }
        self.transmits.retain(|(to, _)| *to != id);
        self.recompute_sources();
        true
    }

    /// Switches who hears whom, keeping every stream as it is.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.recompute_sources();
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Changes a party's role (a supervisor taking over becomes the operator); false if
    /// it is not in the mix.
    pub fn set_role(&mut self, id: PartyId, role: Role) -> bool {
        let Some(party) = self.party_mut(id) else {
            return false;
        };
        party.cfg.role = role;
        self.recompute_sources();
        true
    }

    /// Plays `samples` (linear, 8 kHz) to `party` on top of its mix from the next tick on,
    /// e.g. the beep that tells an operator a supervisor is listening; false if the party
    /// is not in the mix.
    pub fn play_to(&mut self, party: PartyId, samples: &[i16]) -> bool {
        let Some(p) = self.party_mut(party) else {
            return false;
        };
        p.cue.extend(samples);
        true
    }

    /// Whether `listener` hears `source` now.
    pub fn hears(&self, listener: PartyId, source: PartyId) -> bool {
        match (self.slot(listener), self.slot(source)) {
            (Some(l), Some(s)) => self
                .parties
                .get(l)
                .and_then(Option::as_ref)
                .is_some_and(|p| p.sources & (1 << s) != 0),
            _ => false,
        }
    }

    /// A datagram from `party`'s leg. Audio in its payload type is buffered for mixing; the
    /// first such packet starts the clock. Anything else is counted and ignored, as is a
    /// party not in the mix.
    pub fn push(&mut self, now: Instant, party: PartyId, data: &[u8]) {
        let Some(slot) = self.slot(party) else {
            return;
        };
        let next_tick = self.next_tick;
        let delay = self.playout_delay;
        let Some(Some(p)) = self.parties.get_mut(slot) else {
            return;
        };
        if is_rtcp(data) {
            p.stats.rtcp += 1;
            return;
        }
        let Ok(packet) = RtpReader::new(data) else {
            p.stats.invalid += 1;
            return;
        };
        if packet.payload_type() != p.cfg.payload_type {
            p.stats.other_payload += 1;
            return;
        }
        if packet.payload().is_empty() {
            p.stats.invalid += 1;
            return;
        }
        p.stats.packets_received += 1;
        let start = *self.start.get_or_insert(now);
        // A late driver may not have mixed ticks already due: anchor after those.
        let elapsed = now.saturating_duration_since(start).as_nanos();
        let tick_nanos = PACKET_INTERVAL.as_nanos();
        let current = elapsed.div_ceil(tick_nanos) as u64;
        p.receive(&packet, next_tick, next_tick.max(current) + delay);
    }

    /// Mixes and queues every tick due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(start) = self.start else {
            return;
        };
        if now < due(start, self.next_tick) {
            return;
        }
        let last =
            (now.saturating_duration_since(start).as_nanos() / PACKET_INTERVAL.as_nanos()) as u64;
        let mut due = (last + 1).saturating_sub(self.next_tick);
        if due > MAX_BURST {
            self.skip(due - MAX_BURST);
            due = MAX_BURST;
        }
        for _ in 0..due {
            self.mix_tick();
        }
    }

    /// When the next tick is due (maybe in the past); `None` before any audio came.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.start.map(|start| due(start, self.next_tick))
    }

    /// The next RTP packet to send, and the party to send it to.
    pub fn poll_transmit(&mut self) -> Option<(PartyId, Vec<u8>)> {
        self.transmits.pop_front()
    }

    pub fn stats(&self, id: PartyId) -> Option<PartyStats> {
        self.slot(id)
            .and_then(|s| self.parties.get(s))
            .and_then(Option::as_ref)
            .map(|p| p.stats)
    }

    fn slot(&self, id: PartyId) -> Option<usize> {
        self.parties
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.cfg.id == id))
    }

    fn party_mut(&mut self, id: PartyId) -> Option<&mut Party> {
        self.parties.iter_mut().flatten().find(|p| p.cfg.id == id)
    }

    fn recompute_sources(&mut self) {
        let roles: Vec<Option<Role>> = self
            .parties
            .iter()
            .map(|p| p.as_ref().map(|p| p.cfg.role))
            .collect();
        for (listener_slot, party) in self.parties.iter_mut().enumerate() {
            let Some(party) = party else { continue };
            party.sources = 0;
            for (source_slot, role) in roles.iter().enumerate() {
                if let Some(role) = role
                    && source_slot != listener_slot
                    && self.mode.hears(party.cfg.role, *role)
                {
                    party.sources |= 1 << source_slot;
                }
            }
        }
    }

    /// The driver fell too far behind: drops `ticks` ticks of audio and moves every
    /// outgoing stream's timestamp on by as much.
    fn skip(&mut self, ticks: u64) {
        for party in self.parties.iter_mut().flatten() {
            for tick in self.next_tick..self.next_tick + ticks.min(RING_FRAMES) {
                party.clear_frame(tick);
            }
            let samples = ticks.wrapping_mul(FRAME) as u32;
            party.timestamp = party.timestamp.wrapping_add(samples);
            party.marker_pending = true;
        }
        self.next_tick += ticks;
    }

    /// Mixes tick `next_tick` for every listener, then frees its frames for new audio.
    fn mix_tick(&mut self) {
        let tick = self.next_tick;
        let range = Party::frame_range(tick);
        for listener_slot in 0..self.parties.len() {
            let Some(Some(listener)) = self.parties.get(listener_slot) else {
                continue;
            };
            let mut payload = [0u8; SAMPLES_PER_PACKET];
            let mut cue = [0i16; SAMPLES_PER_PACKET];
            let cued = !listener.cue.is_empty();
            if cued && let Some(Some(l)) = self.parties.get_mut(listener_slot) {
                for (c, s) in cue
                    .iter_mut()
                    .zip(l.cue.drain(..l.cue.len().min(SAMPLES_PER_PACKET)))
                {
                    *c = s;
                }
            }
            let Some(Some(listener)) = self.parties.get(listener_slot) else {
                continue;
            };
            self.mix_for(listener, range.clone(), cued.then_some(&cue), &mut payload);
            let Some(Some(listener)) = self.parties.get_mut(listener_slot) else {
                continue;
            };
            let packet = build_packet(
                listener.cfg.payload_type,
                listener.marker_pending,
                listener.seq,
                listener.timestamp,
                listener.cfg.ssrc,
                &payload,
            );
            listener.marker_pending = false;
            listener.seq = listener.seq.wrapping_add(1);
            listener.timestamp = listener.timestamp.wrapping_add(FRAME as u32);
            listener.stats.packets_sent += 1;
            self.transmits.push_back((listener.cfg.id, packet));
        }
        for party in self.parties.iter_mut().flatten() {
            party.clear_frame(tick);
        }
        self.next_tick += 1;
    }

    /// `listener`'s frame: its one same-law source's bytes, or the saturated sum of its
    /// sources (and what is cued for it) encoded in its law.
    fn mix_for(
        &self,
        listener: &Party,
        range: std::ops::Range<usize>,
        cue: Option<&[i16; SAMPLES_PER_PACKET]>,
        out: &mut [u8; SAMPLES_PER_PACKET],
    ) {
        let sources = || {
            self.parties
                .iter()
                .enumerate()
                .filter(|(slot, _)| listener.sources & (1 << slot) != 0)
                .filter_map(|(_, p)| p.as_ref())
        };
        let mut it = sources();
        if let (Some(only), None, None) = (it.next(), it.next(), cue)
            && only.cfg.codec == listener.cfg.codec
            && let Some(raw) = only.raw.get(range.clone())
        {
            out.copy_from_slice(raw);
            return;
        }
        let mut sum = [0i32; SAMPLES_PER_PACKET];
        if let Some(cue) = cue {
            for (acc, &s) in sum.iter_mut().zip(cue) {
                *acc += i32::from(s);
            }
        }
        for source in sources() {
            if let Some(pcm) = source.pcm.get(range.clone()) {
                for (acc, &s) in sum.iter_mut().zip(pcm) {
                    *acc += i32::from(s);
                }
            }
        }
        let encode: fn(i16) -> u8 = match listener.cfg.codec {
            Codec::Pcmu => g711::linear_to_ulaw,
            Codec::Pcma => g711::linear_to_alaw,
        };
        for (byte, &acc) in out.iter_mut().zip(&sum) {
            // Saturate: a loud sum clips at full scale instead of wrapping to the other sign.
            let clamped = acc.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            *byte = encode(clamped);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const CALLER: PartyId = PartyId(1);
    const OPERATOR: PartyId = PartyId(2);
    const SUPERVISOR: PartyId = PartyId(3);

    fn config(id: PartyId, role: Role, codec: Codec) -> PartyConfig {
        PartyConfig {
            id,
            role,
            codec,
            payload_type: codec.static_payload_type(),
            ssrc: 0xABC0_0000 + id.0,
            initial_seq: 1000 * id.0 as u16,
            initial_timestamp: 50_000 * id.0,
        }
    }

    /// Caller, operator and supervisor in the given laws.
    fn call(mode: Mode, laws: [Codec; 3]) -> Mixer {
        let mut mixer = Mixer::new(mode);
        let roles = [Role::Caller, Role::Operator, Role::Supervisor];
        for ((id, role), law) in [CALLER, OPERATOR, SUPERVISOR]
            .into_iter()
            .zip(roles)
            .zip(laws)
        {
            mixer.add_party(config(id, role, law)).unwrap();
        }
        mixer
    }

    /// Frame `k` (160 samples) of a sine tone.
    fn tone(hz: f64, amplitude: f64, k: u64) -> Vec<i16> {
        (0..FRAME)
            .map(|i| {
                let n = (k * FRAME + i) as f64;
                (amplitude * (2.0 * std::f64::consts::PI * hz * n / 8000.0).sin()).round() as i16
            })
            .collect()
    }

    fn encode(codec: Codec, pcm: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        codec.encode(pcm, &mut out);
        out
    }

    fn decode(codec: Codec, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::new();
        codec.decode(bytes, &mut out);
        out
    }

    /// What a sample sounds like after a trip through `codec`.
    fn round_trip(codec: Codec, pcm: &[i16]) -> Vec<i16> {
        decode(codec, &encode(codec, pcm))
    }

    /// The expected mix: the sources as they arrived (after their own law), summed,
    /// saturated, and through the listener's law.
    fn expected_mix(listener: Codec, sources: &[(Codec, &[i16])]) -> Vec<i16> {
        let mut sum = vec![0i32; SAMPLES_PER_PACKET];
        for (law, pcm) in sources {
            for (acc, s) in sum.iter_mut().zip(round_trip(*law, pcm)) {
                *acc += i32::from(s);
            }
        }
        let clamped: Vec<i16> = sum
            .iter()
            .map(|&s| s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
            .collect();
        round_trip(listener, &clamped)
    }

    /// A phone sending 20 ms packets.
    struct Phone {
        codec: Codec,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
    }

    impl Phone {
        fn new(codec: Codec, ssrc: u32) -> Phone {
            Phone {
                codec,
                ssrc,
                seq: 7,
                timestamp: 1234,
            }
        }

        fn bytes(&mut self, payload: &[u8]) -> Vec<u8> {
            let packet = build_packet(
                self.codec.static_payload_type(),
                false,
                self.seq,
                self.timestamp,
                self.ssrc,
                payload,
            );
            self.seq = self.seq.wrapping_add(1);
            self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
            packet
        }

        fn frame(&mut self, pcm: &[i16]) -> Vec<u8> {
            let payload = encode(self.codec, pcm);
            self.bytes(&payload)
        }

        /// A frame lost on the way: numbers move on, nothing is sent.
        fn lose(&mut self) {
            self.seq = self.seq.wrapping_add(1);
            self.timestamp = self.timestamp.wrapping_add(FRAME as u32);
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn drain(mixer: &mut Mixer) -> HashMap<PartyId, Vec<Vec<u8>>> {
        let mut out: HashMap<PartyId, Vec<Vec<u8>>> = HashMap::new();
        while let Some((to, packet)) = mixer.poll_transmit() {
            out.entry(to).or_default().push(packet);
        }
        out
    }

    fn payload(packet: &[u8]) -> Vec<u8> {
        RtpReader::new(packet).unwrap().payload().to_vec()
    }

    fn samples(codec: Codec, packet: &[u8]) -> Vec<i16> {
        decode(codec, &payload(packet))
    }

    /// Drives `ticks` ticks: at 20·k ms each party's frame k (if any) arrives, then the
    /// mixer runs. Returns each party's packets, one per tick.
    fn run(
        mixer: &mut Mixer,
        t0: Instant,
        ticks: u64,
        mut frames: impl FnMut(u64) -> Vec<(PartyId, Vec<u8>)>,
    ) -> HashMap<PartyId, Vec<Vec<u8>>> {
        let mut out: HashMap<PartyId, Vec<Vec<u8>>> = HashMap::new();
        for k in 0..ticks {
            let now = ms(t0, 20 * k);
            for (from, packet) in frames(k) {
                mixer.push(now, from, &packet);
            }
            mixer.handle_timeout(now);
            for (to, packets) in drain(mixer) {
                assert_eq!(packets.len(), 1, "one packet per tick for {to:?}");
                out.entry(to).or_default().extend(packets);
            }
        }
        out
    }

    const CALLER_HZ: f64 = 1000.0;
    const OPERATOR_HZ: f64 = 440.0;
    const SUPERVISOR_HZ: f64 = 2000.0;
    const LOUD: f64 = 20_000.0;

    /// Everyone talks: caller 1 kHz in μ-law, operator 440 Hz in A-law, supervisor 2 kHz
    /// in μ-law, all loud enough that sums overflow i16.
    fn three_tones(mode: Mode, ticks: u64) -> (Mixer, HashMap<PartyId, Vec<Vec<u8>>>) {
        let t0 = Instant::now();
        let mut mixer = call(mode, [Codec::Pcmu, Codec::Pcma, Codec::Pcmu]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let mut operator = Phone::new(Codec::Pcma, 22);
        let mut supervisor = Phone::new(Codec::Pcmu, 33);
        let out = run(&mut mixer, t0, ticks, |k| {
            vec![
                (CALLER, caller.frame(&tone(CALLER_HZ, LOUD, k))),
                (OPERATOR, operator.frame(&tone(OPERATOR_HZ, LOUD, k))),
                (SUPERVISOR, supervisor.frame(&tone(SUPERVISOR_HZ, LOUD, k))),
            ]
        });
        (mixer, out)
    }

    fn caller_tone(k: u64) -> (Codec, Vec<i16>) {
        (Codec::Pcmu, tone(CALLER_HZ, LOUD, k))
    }
    fn operator_tone(k: u64) -> (Codec, Vec<i16>) {
        (Codec::Pcma, tone(OPERATOR_HZ, LOUD, k))
    }
    fn supervisor_tone(k: u64) -> (Codec, Vec<i16>) {
        (Codec::Pcmu, tone(SUPERVISOR_HZ, LOUD, k))
    }

    /// Asserts `to`'s packet at tick k+1 (frame k, after the 1-tick playout delay) is
    /// exactly the mix of `sources(k)`, for every k; tick 0 is silence.
    fn assert_hears(
        out: &HashMap<PartyId, Vec<Vec<u8>>>,
        to: PartyId,
        law: Codec,
        sources: impl Fn(u64) -> Vec<(Codec, Vec<i16>)>,
    ) {
        let packets = &out[&to];
        assert_eq!(
            samples(law, &packets[0]),
            expected_mix(law, &[]),
            "{to:?} tick 0"
        );
        for (tick, packet) in packets.iter().enumerate().skip(1) {
            let frames = sources(tick as u64 - 1);
            let refs: Vec<(Codec, &[i16])> =
                frames.iter().map(|(c, p)| (*c, p.as_slice())).collect();
            assert_eq!(
                samples(law, packet),
                expected_mix(law, &refs),
                "{to:?} tick {tick}"
            );
        }
    }

    #[test]
    fn listen_the_supervisor_gets_the_saturated_sum_and_nobody_hears_the_supervisor() {
        let (_, out) = three_tones(Mode::Listen, 12);
        assert_hears(&out, SUPERVISOR, Codec::Pcmu, |k| {
            vec![caller_tone(k), operator_tone(k)]
        });
        assert_hears(&out, CALLER, Codec::Pcmu, |k| vec![operator_tone(k)]);
        assert_hears(&out, OPERATOR, Codec::Pcma, |k| vec![caller_tone(k)]);
        // The tones do overflow i16 when added, so the clamp was exercised.
        let overflowing = (0..11).any(|k| {
            let (c, o) = (caller_tone(k), operator_tone(k));
            round_trip(c.0, &c.1)
                .iter()
                .zip(round_trip(o.0, &o.1))
                .any(|(a, b)| (i32::from(*a) + i32::from(b)).abs() > i32::from(i16::MAX))
        });
        assert!(overflowing);
    }

    #[test]
    fn whisper_the_operator_hears_the_supervisor_and_the_caller_does_not() {
        let (_, out) = three_tones(Mode::Whisper, 12);
        assert_hears(&out, CALLER, Codec::Pcmu, |k| vec![operator_tone(k)]);
        assert_hears(&out, OPERATOR, Codec::Pcma, |k| {
            vec![caller_tone(k), supervisor_tone(k)]
        });
        assert_hears(&out, SUPERVISOR, Codec::Pcmu, |k| {
            vec![caller_tone(k), operator_tone(k)]
        });
    }

    #[test]
    fn barge_everyone_hears_everyone_else() {
        let (_, out) = three_tones(Mode::Barge, 12);
        assert_hears(&out, CALLER, Codec::Pcmu, |k| {
            vec![operator_tone(k), supervisor_tone(k)]
        });
        assert_hears(&out, OPERATOR, Codec::Pcma, |k| {
            vec![caller_tone(k), supervisor_tone(k)]
        });
        assert_hears(&out, SUPERVISOR, Codec::Pcmu, |k| {
            vec![caller_tone(k), operator_tone(k)]
        });
    }

    #[test]
    fn plain_passes_a_same_law_source_through_bit_exact_and_the_supervisor_gets_silence() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Plain, [Codec::Pcmu; 3]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let mut supervisor = Phone::new(Codec::Pcmu, 33);
        // Every μ-law byte, negative zero (0x7F) included, which a re-encode would change.
        let sent: Vec<Vec<u8>> = (0..4u8)
            .map(|k| {
                (0..160u8)
                    .map(|i| k.wrapping_mul(64).wrapping_add(i))
                    .collect()
            })
            .collect();
        assert!(sent.iter().flatten().any(|&b| b == 0x7F));
        let out = run(&mut mixer, t0, 5, |k| {
            let mut frames = vec![(SUPERVISOR, supervisor.frame(&tone(SUPERVISOR_HZ, LOUD, k)))];
            if let Some(bytes) = sent.get(k as usize) {
                frames.push((CALLER, caller.bytes(bytes)));
            }
            frames
        });
        for k in 0..4 {
            assert_eq!(payload(&out[&OPERATOR][k + 1]), sent[k], "frame {k}");
        }
        for packet in &out[&SUPERVISOR] {
            assert_eq!(payload(packet), vec![0xFF; 160]);
        }
        // The caller hears the silent operator, not the supervisor.
        for packet in &out[&CALLER] {
            assert_eq!(payload(packet), vec![0xFF; 160]);
        }
    }

    #[test]
    fn sums_past_full_scale_clamp_instead_of_wrapping() {
        for level in [30_000i16, -30_000] {
            let t0 = Instant::now();
            let mut mixer = call(Mode::Barge, [Codec::Pcmu, Codec::Pcmu, Codec::Pcma]);
            let mut caller = Phone::new(Codec::Pcmu, 11);
            let mut operator = Phone::new(Codec::Pcmu, 22);
            let loud = vec![level; 160];
            let out = run(&mut mixer, t0, 3, |_| {
                vec![
                    (CALLER, caller.frame(&loud)),
                    (OPERATOR, operator.frame(&loud)),
                ]
            });
            let full_scale = if level > 0 { i16::MAX } else { i16::MIN };
            let expected = round_trip(Codec::Pcma, &[full_scale; 160]);
            for packet in &out[&SUPERVISOR][1..] {
                let got = samples(Codec::Pcma, packet);
                assert_eq!(got, expected);
                // A wrapped sum would have the other sign.
                assert!(got.iter().all(|s| s.signum() == level.signum()));
            }
        }
    }

    #[test]
    fn ticks_are_exactly_20_ms_apart_from_the_first_frame_whatever_the_driver_does() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Listen, [Codec::Pcmu; 3]);
        assert_eq!(mixer.poll_timeout(), None);
        mixer.handle_timeout(ms(t0, 100));
        assert!(mixer.poll_transmit().is_none(), "no audio, no clock");
        let mut caller = Phone::new(Codec::Pcmu, 11);
        mixer.push(t0, CALLER, &caller.frame(&[100; 160]));
        assert_eq!(mixer.poll_timeout(), Some(t0));
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut at = |mixer: &mut Mixer, t: u64, expected: usize| {
            mixer.handle_timeout(ms(t0, t));
            let out = drain(mixer);
            let got = out.get(&OPERATOR).cloned().unwrap_or_default();
            assert_eq!(got.len(), expected, "at {t} ms");
            assert_eq!(out.values().map(Vec::len).sum::<usize>(), 3 * expected);
            seen.extend(got);
        };
        at(&mut mixer, 0, 1);
        assert_eq!(mixer.poll_timeout(), Some(ms(t0, 20)));
        at(&mut mixer, 19, 0);
        at(&mut mixer, 27, 1);
        // Still on the 20 ms grid, not 27 + 20.
        assert_eq!(mixer.poll_timeout(), Some(ms(t0, 40)));
        at(&mut mixer, 100, 4);
        // A second late: only the last MAX_BURST ticks, and the timestamps jump.
        at(&mut mixer, 1000, MAX_BURST as usize);
        assert_eq!(mixer.poll_timeout(), Some(ms(t0, 1020)));
        let ticks: Vec<u64> = (0..6).chain(46..51).collect();
        let first = config(OPERATOR, Role::Operator, Codec::Pcmu);
        for (i, (packet, tick)) in seen.iter().zip(&ticks).enumerate() {
            let rtp = RtpReader::new(packet).unwrap();
            assert_eq!(
                u16::from(rtp.sequence_number()),
                first.initial_seq + i as u16
            );
            assert_eq!(
                rtp.timestamp(),
                first.initial_timestamp + 160 * *tick as u32,
                "packet {i}"
            );
            assert_eq!(rtp.ssrc(), first.ssrc);
            assert_eq!(rtp.payload_type(), 0);
            assert_eq!(rtp.mark(), i == 0 || *tick == 46, "marker on packet {i}");
        }
        assert_eq!(seen.len(), ticks.len());
        // The caller's frame came out at tick 1, after the playout delay.
        assert_eq!(payload(&seen[1]), encode(Codec::Pcmu, &[100; 160]));
    }

    #[test]
    fn a_missing_frame_is_silence_and_the_next_one_stays_in_place() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Listen, [Codec::Pcmu; 3]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let mut operator = Phone::new(Codec::Pcmu, 22);
        let out = run(&mut mixer, t0, 6, |k| {
            let mut frames = vec![(OPERATOR, operator.frame(&tone(OPERATOR_HZ, LOUD, k)))];
            if k == 2 {
                caller.lose();
            } else {
                frames.push((CALLER, caller.frame(&tone(CALLER_HZ, LOUD, k))));
            }
            frames
        });
        let caller_frames = |k: u64| {
            if k == 2 {
                vec![]
            } else {
                vec![(Codec::Pcmu, tone(CALLER_HZ, LOUD, k))]
            }
        };
        assert_hears(&out, OPERATOR, Codec::Pcmu, caller_frames);
        assert_eq!(payload(&out[&OPERATOR][3]), vec![0xFF; 160]);
        assert_hears(&out, SUPERVISOR, Codec::Pcmu, |k| {
            let mut f = caller_frames(k);
            f.push((Codec::Pcmu, tone(OPERATOR_HZ, LOUD, k)));
            f
        });
        let stats = mixer.stats(CALLER).unwrap();
        assert_eq!((stats.late, stats.duplicates, stats.resyncs), (0, 0, 0));
    }

    #[test]
    fn reordered_packets_fall_into_place_duplicates_and_late_ones_are_dropped() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Plain, [Codec::Pcmu; 3]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let frames: Vec<Vec<u8>> = (0..8)
            .map(|k| caller.bytes(&[k as u8 * 16 + 1; 160]))
            .collect();
        let arrivals: [&[usize]; 8] = [&[0], &[2, 1, 1], &[3], &[], &[5], &[6], &[4, 7], &[]];
        let out = run(&mut mixer, t0, 8, |k| {
            arrivals[k as usize]
                .iter()
                .map(|&i| (CALLER, frames[i].clone()))
                .collect()
        });
        let heard: Vec<u8> = out[&OPERATOR].iter().map(|p| payload(p)[0]).collect();
        // Frame 4 came after its tick (5) was mixed: silence there, and dropped.
        assert_eq!(heard, [0xFF, 1, 17, 33, 49, 0xFF, 81, 97]);
        let stats = mixer.stats(CALLER).unwrap();
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.late, 1);
        assert_eq!(stats.resyncs, 0);
        assert_eq!(stats.packets_received, 9);
    }

    #[test]
    fn a_stream_that_falls_behind_or_changes_ssrc_is_reanchored() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Plain, [Codec::Pcmu; 3]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let mut heard = Vec::new();
        let mut step = |mixer: &mut Mixer, t: u64, packet: Option<Vec<u8>>| {
            if let Some(p) = packet {
                mixer.push(ms(t0, t), CALLER, &p);
            }
            mixer.handle_timeout(ms(t0, t));
            for packet in drain(mixer).remove(&OPERATOR).unwrap_or_default() {
                heard.push(payload(&packet)[0]);
            }
        };
        step(&mut mixer, 0, Some(caller.bytes(&[1; 160]))); // tick 0; frame goes to tick 1
        step(&mut mixer, 20, None);
        step(&mut mixer, 40, None); // tick 2 mixed without frame 2
        // Frame 2 arrives 25 ms late and is the newest: anchored at tick 3 + 1.
        step(&mut mixer, 45, Some(caller.bytes(&[2; 160])));
        step(&mut mixer, 60, Some(caller.bytes(&[3; 160])));
        step(&mut mixer, 80, None);
        step(&mut mixer, 100, None);
        // A new SSRC (the phone restarted its stream) is anchored afresh.
        let mut restarted = Phone::new(Codec::Pcmu, 99);
        step(&mut mixer, 110, Some(restarted.bytes(&[4; 160])));
        step(&mut mixer, 120, None);
        step(&mut mixer, 140, None);
        assert_eq!(heard, [0xFF, 1, 0xFF, 0xFF, 2, 3, 0xFF, 4]);
        assert_eq!(mixer.stats(CALLER).unwrap().resyncs, 2);
        assert_eq!(mixer.stats(CALLER).unwrap().late, 0);
    }

    #[test]
    fn sequence_and_timestamp_wraps_and_10_ms_packets_line_up() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Plain, [Codec::Pcmu; 3]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        caller.seq = u16::MAX - 2;
        caller.timestamp = u32::MAX - 250;
        let out = run(&mut mixer, t0, 6, |k| {
            // Two 10 ms packets per 20 ms.
            let first = [k as u8 * 2 + 1; 80];
            let second = [k as u8 * 2 + 2; 80];
            vec![
                (CALLER, caller.bytes(&first)),
                (CALLER, caller.bytes(&second)),
            ]
        });
        for (tick, packet) in out[&OPERATOR].iter().enumerate().skip(1) {
            let k = tick as u8 - 1;
            let mut expected = vec![k * 2 + 1; 80];
            expected.extend([k * 2 + 2; 80]);
            assert_eq!(payload(packet), expected, "tick {tick}");
        }
        let stats = mixer.stats(CALLER).unwrap();
        assert_eq!((stats.late, stats.duplicates, stats.resyncs), (0, 0, 0));
    }

    #[test]
    fn a_mode_switch_mid_stream_changes_only_who_hears_whom() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Listen, [Codec::Pcmu; 3]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let mut operator = Phone::new(Codec::Pcmu, 22);
        let mut supervisor = Phone::new(Codec::Pcmu, 33);
        let mut out: HashMap<PartyId, Vec<Vec<u8>>> = HashMap::new();
        for k in 0..10u64 {
            let now = ms(t0, 20 * k);
            if k == 5 {
                mixer.set_mode(Mode::Whisper);
            }
            mixer.push(now, CALLER, &caller.frame(&tone(CALLER_HZ, LOUD, k)));
            mixer.push(now, OPERATOR, &operator.frame(&tone(OPERATOR_HZ, LOUD, k)));
            mixer.push(
                now,
                SUPERVISOR,
                &supervisor.frame(&tone(SUPERVISOR_HZ, LOUD, k)),
            );
            mixer.handle_timeout(now);
            for (to, packets) in drain(&mut mixer) {
                out.entry(to).or_default().extend(packets);
            }
        }
        let u = Codec::Pcmu;
        // Tick t mixes frame t-1; from tick 5 on, whisper.
        for tick in 1..10u64 {
            let k = tick - 1;
            let (caller_k, supervisor_k) = (tone(CALLER_HZ, LOUD, k), tone(SUPERVISOR_HZ, LOUD, k));
            let mut operator_hears: Vec<(Codec, &[i16])> = vec![(u, &caller_k)];
            if tick >= 5 {
                operator_hears.push((u, &supervisor_k));
            }
            let got = samples(u, &out[&OPERATOR][tick as usize]);
            assert_eq!(
                got,
                expected_mix(u, &operator_hears),
                "operator tick {tick}"
            );
            // The caller never hears the supervisor.
            let got = samples(u, &out[&CALLER][tick as usize]);
            assert_eq!(got, expected_mix(u, &[(u, &tone(OPERATOR_HZ, LOUD, k))]));
        }
        // Every stream went on without a gap or a new marker.
        for (id, packets) in &out {
            assert_eq!(packets.len(), 10);
            let first = config(*id, Role::Caller, u);
            for (i, packet) in packets.iter().enumerate() {
                let rtp = RtpReader::new(packet).unwrap();
                assert_eq!(
                    u16::from(rtp.sequence_number()),
                    first.initial_seq + i as u16
                );
                assert_eq!(rtp.timestamp(), first.initial_timestamp + 160 * i as u32);
                assert_eq!(rtp.mark(), i == 0);
            }
        }
    }

    #[test]
    fn a_cue_plays_to_one_party_on_top_of_its_mix_then_pass_through_resumes() {
        // Listen: the operator hears only the caller (passed through bit-exact) until a
        // 30 ms beep is cued for them at tick 3: ticks 3 and 4 carry caller plus beep.
        let t0 = Instant::now();
        let mut mixer = call(Mode::Listen, [Codec::Pcmu, Codec::Pcmu, Codec::Pcmu]);
        let mut caller = Phone::new(Codec::Pcmu, 11);
        let beep: Vec<i16> = (0..240).map(|i| tone(1400.0, 3000.0, 0)[i % 160]).collect();
        let mut out: HashMap<PartyId, Vec<Vec<u8>>> = HashMap::new();
        for k in 0..7 {
            let now = ms(t0, 20 * k);
            mixer.push(now, CALLER, &caller.frame(&tone(CALLER_HZ, LOUD, k)));
            if k == 3 {
                assert!(mixer.play_to(OPERATOR, &beep));
                assert!(!mixer.play_to(PartyId(99), &beep));
            }
            mixer.handle_timeout(now);
            for (to, packets) in drain(&mut mixer) {
                out.entry(to).or_default().extend(packets);
            }
        }
        let to_operator = &out[&OPERATOR];
        for (tick, packet) in to_operator.iter().enumerate().skip(1) {
            let heard = tone(CALLER_HZ, LOUD, tick as u64 - 1);
            let expected = match tick {
                3 => expected_mix(
                    Codec::Pcmu,
                    &[(Codec::Pcmu, &heard), (Codec::Pcmu, &beep[..160])],
                ),
                4 => {
                    let mut rest = beep[160..].to_vec();
                    rest.resize(160, 0);
                    expected_mix(Codec::Pcmu, &[(Codec::Pcmu, &heard), (Codec::Pcmu, &rest)])
                }
                _ => {
                    assert_eq!(payload(packet), encode(Codec::Pcmu, &heard), "tick {tick}");
                    continue;
                }
            };
            assert_eq!(samples(Codec::Pcmu, packet), expected, "tick {tick}");
        }
        // Nobody else heard it.
        assert!(
            out[&CALLER]
                .iter()
                .all(|p| samples(Codec::Pcmu, p).iter().all(|s| *s == 0))
        );
    }

    #[test]
    fn who_hears_whom_in_each_mode() {
        let mut mixer = call(Mode::Plain, [Codec::Pcmu; 3]);
        let (c, o, s) = (CALLER, OPERATOR, SUPERVISOR);
        let all = [(c, o), (c, s), (o, c), (o, s), (s, c), (s, o)];
        let expect = |mixer: &Mixer, yes: &[(PartyId, PartyId)]| {
            for pair in all {
                assert_eq!(mixer.hears(pair.0, pair.1), yes.contains(&pair), "{pair:?}");
            }
            for id in [c, o, s] {
                assert!(!mixer.hears(id, id));
            }
        };
        expect(&mixer, &[(c, o), (o, c)]);
        mixer.set_mode(Mode::Listen);
        expect(&mixer, &[(c, o), (o, c), (s, c), (s, o)]);
        mixer.set_mode(Mode::Whisper);
        expect(&mixer, &[(c, o), (o, c), (s, c), (s, o), (o, s)]);
        mixer.set_mode(Mode::Barge);
        expect(&mixer, &all);
        // Take over: the operator's leg drops and the supervisor keeps the caller.
        mixer.set_mode(Mode::Plain);
        assert!(mixer.remove_party(o));
        assert!(mixer.set_role(s, Role::Operator));
        assert!(mixer.hears(c, s) && mixer.hears(s, c));
        assert!(!mixer.hears(c, o));
        assert!(!mixer.remove_party(o));
        // A second supervisor whispering hears the first; in listen nobody hears either.
        mixer
            .add_party(config(PartyId(4), Role::Supervisor, Codec::Pcmu))
            .unwrap();
        mixer
            .add_party(config(PartyId(5), Role::Supervisor, Codec::Pcmu))
            .unwrap();
        mixer.set_mode(Mode::Whisper);
        assert!(mixer.hears(PartyId(4), PartyId(5)));
        mixer.set_mode(Mode::Listen);
        assert!(!mixer.hears(PartyId(4), PartyId(5)));
        assert!(!mixer.hears(s, PartyId(4)));
    }

    #[test]
    fn at_most_eight_distinct_parties_and_a_removed_one_stops_getting_audio() {
        let t0 = Instant::now();
        let mut mixer = Mixer::new(Mode::Barge);
        for id in 1..=8 {
            mixer
                .add_party(config(PartyId(id), Role::Caller, Codec::Pcmu))
                .unwrap();
        }
        assert_eq!(
            mixer.add_party(config(PartyId(3), Role::Caller, Codec::Pcmu)),
            Err(MixerError::Duplicate(PartyId(3)))
        );
        assert_eq!(
            mixer.add_party(config(PartyId(9), Role::Caller, Codec::Pcmu)),
            Err(MixerError::Full)
        );
        let mut phone = Phone::new(Codec::Pcmu, 11);
        mixer.push(t0, PartyId(1), &phone.frame(&[500; 160]));
        mixer.handle_timeout(t0);
        let tick0 = drain(&mut mixer);
        assert_eq!(tick0.len(), 8);
        assert!(mixer.remove_party(PartyId(2)));
        mixer
            .add_party(config(PartyId(9), Role::Caller, Codec::Pcmu))
            .unwrap();
        mixer.handle_timeout(ms(t0, 20));
        let out = drain(&mut mixer);
        assert!(!out.contains_key(&PartyId(2)));
        assert_eq!(out[&PartyId(9)].len(), 1, "joined at tick 1");
        assert!(RtpReader::new(&out[&PartyId(9)][0]).unwrap().mark());
        // Party 1 does not hear itself; the others hear it.
        assert_eq!(payload(&out[&PartyId(1)][0]), vec![0xFF; 160]);
        assert_eq!(
            payload(&out[&PartyId(9)][0]),
            encode(Codec::Pcmu, &[500; 160])
        );
    }

    #[test]
    fn other_payloads_rtcp_garbage_and_strangers_are_not_mixed() {
        let t0 = Instant::now();
        let mut mixer = call(Mode::Plain, [Codec::Pcmu; 3]);
        mixer.push(
            t0,
            PartyId(77),
            &Phone::new(Codec::Pcmu, 1).frame(&[9; 160]),
        );
        mixer.push(
            t0,
            CALLER,
            &build_packet(101, false, 1, 1, 11, &[1, 0x80, 0, 160]),
        );
        mixer.push(t0, CALLER, &[0x80, 200, 0, 1, 0, 0, 0, 0]);
        mixer.push(t0, CALLER, b"hello");
        mixer.push(t0, CALLER, &build_packet(0, false, 1, 1, 11, &[]));
        assert_eq!(mixer.poll_timeout(), None, "nothing started the clock");
        let stats = mixer.stats(CALLER).unwrap();
        assert_eq!(
            (
                stats.other_payload,
                stats.rtcp,
                stats.invalid,
                stats.packets_received
            ),
            (1, 1, 2, 0)
        );
    }
}
