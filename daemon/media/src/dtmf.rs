//! RFC 4733 telephone-events: DTMF digits carried in RTP.
//!
//! # When a digit is reported
//!
//! A sender repeats an event's packets (same RTP timestamp, growing
//! duration) while the key is held, then sends the final one with the end
//! bit, usually three times. The receiver reports each event exactly once,
//! identified by (SSRC, RTP timestamp), so repeated packets and the
//! retransmitted ends are ignored and a repeated digit ("11") is two events.
//!
//! It reports on the **end** packet rather than the first, because only then
//! is the duration known (flows can use it to reject glitches) and a 100 ms
//! keypress delays barge-in by no more than the caller can notice. If every
//! end packet is lost, the digit is reported when the next event starts, or
//! after [`END_TIMEOUT`] without any packet for it, whichever comes first.
//! Late packets of an event already reported are ignored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtp::build_packet;

/// An event that stopped sending packets without an end bit is taken as ended
/// after this long. Senders refresh an event at least every 50 ms or so.
pub const END_TIMEOUT: Duration = Duration::from_secs(1);

/// Telephone-event timestamps count 8 kHz samples for narrowband audio.
const UNITS_PER_MS: u32 = 8;

/// How many finished events are remembered to drop their late packets.
const REMEMBERED: usize = 16;

/// Event code → digit: 0–9, 10 `*`, 11 `#`, 12–15 `A`–`D`. Others (16 is
/// flash) are not digits.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Digit → event code; accepts lowercase `a`–`d`.
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in −dBm0, 0–63.
    pub volume: u8,
    /// In timestamp units (1/8 ms) since the event's RTP timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of an RTP payload; `None` if it's shorter.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let &[event, flags, d0, d1, ..] = payload else {
            return None;
        };
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3F);
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, flags, d0, d1]
    }
}

/// Encodes one telephone-event payload.
pub fn encode_event(event: u8, end: bool, volume: u8, duration: u16) -> Vec<u8> {
    TelephoneEvent {
        event,
        end,
        volume,
        duration,
    }
    .to_bytes()
    .to_vec()
}

/// What to send for one digit, as [`digit_packets`] builds it.
#[derive(Clone, Copy, Debug)]
pub struct DigitSend {
    pub payload_type: u8,
    pub ssrc: u32,
    /// Sequence number of the first packet; the others follow it.
    pub first_seq: u16,
    /// The event's RTP timestamp, shared by all its packets.
    pub timestamp: u32,
    pub digit: char,
    pub duration_ms: u32,
    /// −dBm0; 10 is typical.
    pub volume: u8,
}

/// The complete RTP packets a sender emits for one digit: one every 20 ms
/// while the key is down (the first with the marker bit), then the end
/// packet three times. `None` for a character that isn't a DTMF digit.
pub fn digit_packets(send: &DigitSend) -> Option<Vec<Vec<u8>>> {
    let event = digit_to_event(send.digit)?;
    let total = send
        .duration_ms
        .saturating_mul(UNITS_PER_MS)
        .min(u32::from(u16::MAX)) as u16;
    let mut packets = Vec::new();
    let mut seq = send.first_seq;
    let mut push = |marker: bool, end: bool, duration: u16| {
        let payload = TelephoneEvent {
            event,
            end,
            volume: send.volume,
            duration,
        }
        .to_bytes();
        packets.push(build_packet(
            send.payload_type,
            marker,
            seq,
            send.timestamp,
            send.ssrc,
            &payload,
        ));
        seq = seq.wrapping_add(1);
    };
    let step = 20 * UNITS_PER_MS as u16;
    let mut duration = step.min(total);
    let mut first = true;
    while duration < total {
        push(first, false, duration);
        first = false;
        duration = duration.saturating_add(step).min(total);
    }
    for _ in 0..3 {
        push(first, true, total);
        first = false;
    }
    Some(packets)
}

/// A digit received by [`DtmfReceiver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digit {
    pub digit: char,
    pub duration_ms: u32,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    duration: u16,
    last_seen: Instant,
}

/// Turns telephone-event packets into digits, each reported exactly once
/// (see the module docs for when).
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    current: Option<Pending>,
    finished: VecDeque<(u32, u32)>,
    digits: VecDeque<Digit>,
}

impl DtmfReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// One telephone-event packet's SSRC, RTP timestamp and payload.
    /// Returns false if the payload is too short to be an event.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> bool {
        let Some(ev) = TelephoneEvent::parse(payload) else {
            return false;
        };
        if self.finished.contains(&(ssrc, timestamp)) {
            return true;
        }
        match &mut self.current {
            Some(p) if (p.ssrc, p.timestamp) == (ssrc, timestamp) => {
                // Reordered updates may carry a shorter duration.
                p.duration = p.duration.max(ev.duration);
                p.last_seen = now;
                if ev.end {
                    self.finish();
                }
                return true;
            }
            // A packet of an event older than the current one: the current
            // one stays, rather than being cut short by stale traffic.
            Some(p) if p.ssrc == ssrc && (timestamp.wrapping_sub(p.timestamp) as i32) < 0 => {
                return true;
            }
            // The current event's end was lost.
            Some(_) => self.finish(),
            None => {}
        }
        self.current = Some(Pending {
            ssrc,
            timestamp,
            event: ev.event,
            duration: ev.duration,
            last_seen: now,
        });
        if ev.end {
            self.finish();
        }
        true
    }

    /// When an event whose end was lost will be given up on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.map(|p| p.last_seen + END_TIMEOUT)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.finish();
        }
    }

    pub fn poll_digit(&mut self) -> Option<Digit> {
        self.digits.pop_front()
    }

    fn finish(&mut self) {
        let Some(p) = self.current.take() else {
            return;
        };
        if self.finished.len() == REMEMBERED {
            self.finished.pop_front();
        }
        self.finished.push_back((p.ssrc, p.timestamp));
        if let Some(digit) = event_to_digit(p.event) {
            self.digits.push_back(Digit {
                digit,
                duration_ms: u32::from(p.duration) / UNITS_PER_MS,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_rs::RtpReader;

    #[test]
    fn event_codes() {
        let all = "0123456789*#ABCD";
        for (code, digit) in all.chars().enumerate() {
            assert_eq!(event_to_digit(code as u8), Some(digit));
            assert_eq!(digit_to_event(digit), Some(code as u8));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(event_to_digit(16), None);
        assert_eq!(event_to_digit(255), None);
        assert_eq!(digit_to_event('E'), None);
    }

    #[test]
    fn payload_round_trip() {
        let bytes = encode_event(11, true, 10, 1600);
        assert_eq!(bytes, vec![11, 0x8A, 0x06, 0x40]);
        let ev = TelephoneEvent::parse(&bytes).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 1600
            }
        );
        assert_eq!(TelephoneEvent::parse(&bytes[..3]), None);
        // The reserved bit is ignored.
        assert_eq!(
            TelephoneEvent::parse(&[5, 0x40 | 7, 0, 160])
                .unwrap()
                .volume,
            7
        );
    }

    #[test]
    fn digit_packets_shape() {
        let packets = digit_packets(&DigitSend {
            payload_type: 101,
            ssrc: 42,
            first_seq: 65534,
            timestamp: 8000,
            digit: '#',
            duration_ms: 100,
            volume: 10,
        })
        .unwrap();
        // 20, 40, 60, 80 ms updates, then three ends at 100 ms.
        assert_eq!(packets.len(), 7);
        let parsed: Vec<_> = packets
            .iter()
            .map(|p| {
                let r = RtpReader::new(p).unwrap();
                let ev = TelephoneEvent::parse(r.payload()).unwrap();
                (
                    u16::from(r.sequence_number()),
                    r.mark(),
                    r.timestamp(),
                    ev.end,
                    ev.duration,
                )
            })
            .collect();
        assert_eq!(
            parsed,
            vec![
                (65534, true, 8000, false, 160),
                (65535, false, 8000, false, 320),
                (0, false, 8000, false, 480),
                (1, false, 8000, false, 640),
                (2, false, 8000, true, 800),
                (3, false, 8000, true, 800),
                (4, false, 8000, true, 800),
            ]
        );
        assert!(
            digit_packets(&DigitSend {
                digit: 'x',
                ..DigitSend {
                    payload_type: 101,
                    ssrc: 0,
                    first_seq: 0,
                    timestamp: 0,
                    digit: '1',
                    duration_ms: 0,
                    volume: 0
                }
            })
            .is_none()
        );
    }

    #[test]
    fn very_short_digit_is_only_ends() {
        let packets = digit_packets(&DigitSend {
            payload_type: 101,
            ssrc: 1,
            first_seq: 0,
            timestamp: 0,
            digit: '5',
            duration_ms: 10,
            volume: 10,
        })
        .unwrap();
        assert_eq!(packets.len(), 3);
        assert!(RtpReader::new(&packets[0]).unwrap().mark());
    }
}
