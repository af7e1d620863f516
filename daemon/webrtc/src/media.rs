//! Between a call's RTP side and a browser leg: the caller's packets become frames for the
//! browser, and the browser's frames become packets for the caller, with this leg's own
//! SSRC, sequence numbers and timestamps (RFC 3550: a new source towards the caller).
//! Both are G.711 at 8 kHz, one byte a sample, so when the caller and the browser agreed
//! on different laws a frame is translated sample by sample, never resampled.

use hotline_media::Codec;
use hotline_media::g711;
use hotline_media::rtp::build_packet;
use rtp_rs::RtpReader;

/// The media of one browser leg in a call.
#[derive(Debug)]
pub struct BrowserMedia {
    /// The caller's audio codec and its payload type in the caller's SDP.
    caller: (Codec, u8),
    browser: Codec,
    ssrc: u32,
    next_seq: u16,
    /// Our timestamp for the browser's first frame, and that frame's RTP time.
    timestamps: (u32, Option<u32>),
    /// The timestamp of the last packet towards the caller.
    last_timestamp: u32,
    /// The call's stream towards the browser: its source, and what makes its timestamps
    /// one timeline (see [`BrowserMedia::to_browser`]).
    inbound: Option<Inbound>,
}

#[derive(Clone, Copy, Debug)]
struct Inbound {
    ssrc: u32,
    /// Added to the source's timestamps.
    offset: u32,
    /// The last RTP time handed to the browser, and its frame's length in samples.
    last: (u32, u32),
}

impl BrowserMedia {
    /// `ssrc`, `first_seq` and `first_timestamp` start the stream towards the caller
    /// (random, as RFC 3550 asks).
    pub fn new(
        caller: (Codec, u8),
        browser: Codec,
        ssrc: u32,
        first_seq: u16,
        first_timestamp: u32,
    ) -> BrowserMedia {
        BrowserMedia {
            caller,
            browser,
            ssrc,
            next_seq: first_seq,
            timestamps: (first_timestamp, None),
            last_timestamp: first_timestamp,
            inbound: None,
        }
    }

    /// The frame for the browser in one of the caller's packets: its RTP time and audio in
    /// the browser's law. `None` for what is not the caller's audio: RTCP, RFC 4733 events
    /// (the operator's page gets no tones), other payload types, malformed packets.
    ///
    /// The browser gets one stream whatever the call does: when the call's source changes
    /// (a supervisor's mix starts or ends, a transfer), its timestamps are moved on from
    /// the last frame's, so the browser's jitter buffer sees the next frame and not a jump
    /// it would fill by repeating the last audio.
    pub fn to_browser(&mut self, packet: &[u8]) -> Option<(u32, Vec<u8>)> {
        let rtp = RtpReader::new(packet).ok()?;
        if rtp.payload_type() != self.caller.1 {
            return None;
        }
        let payload = rtp.payload();
        let audio = if self.caller.0 == self.browser {
            payload.to_vec()
        } else {
            payload
                .iter()
                .map(|b| translate(self.caller.0, *b))
                .collect()
        };
        let (ssrc, ts) = (rtp.ssrc(), rtp.timestamp());
        let samples = u32::try_from(audio.len()).unwrap_or(0);
        let offset = match self.inbound {
            Some(i) if i.ssrc == ssrc => i.offset,
            Some(i) => i.last.0.wrapping_add(i.last.1).wrapping_sub(ts),
            None => 0,
        };
        let time = ts.wrapping_add(offset);
        // The newest frame so far sets where a next source goes on (RFC 3550 wrap-around).
        let newer = self
            .inbound
            .is_none_or(|i| i.ssrc != ssrc || (time.wrapping_sub(i.last.0) as i32) > 0);
        let last = match self.inbound {
            Some(i) if !newer => i.last,
            _ => (time, samples),
        };
        self.inbound = Some(Inbound { ssrc, offset, last });
        Some((time, audio))
    }

    /// The packet for the caller carrying one frame of the operator's voice from the
    /// browser (`rtp_time` as the browser stamped it), in the caller's law and payload type.
    /// The first one has the marker bit: it starts the stream's first talkspurt.
    pub fn to_caller(&mut self, rtp_time: u32, frame: &[u8]) -> Vec<u8> {
        let marker = self.timestamps.1.is_none();
        let first = *self.timestamps.1.get_or_insert(rtp_time);
        let timestamp = self.timestamps.0.wrapping_add(rtp_time.wrapping_sub(first));
        let audio: Vec<u8> = if self.caller.0 == self.browser {
            frame.to_vec()
        } else {
            frame.iter().map(|b| translate(self.browser, *b)).collect()
        };
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.last_timestamp = timestamp;
        build_packet(self.caller.1, marker, seq, timestamp, self.ssrc, &audio)
    }

    /// The RFC 4733 packets for a keypad digit the operator pressed (`event_pt`: the
    /// caller's telephone-event payload type), in this leg's stream: one per 20 ms of a
    /// 100 ms press, then the end three times; the driver paces them. `None` for a
    /// character that is no DTMF digit.
    pub fn digit(&mut self, digit: char, event_pt: u8) -> Option<Vec<Vec<u8>>> {
        let packets = hotline_media::dtmf::digit_packets(&hotline_media::dtmf::DigitSend {
            payload_type: event_pt,
            ssrc: self.ssrc,
            first_seq: self.next_seq,
            // The frame after the last one sent: the event starts now.
            timestamp: self.last_timestamp.wrapping_add(160),
            digit,
            duration_ms: 100,
            volume: 10,
        })?;
        self.next_seq = self.next_seq.wrapping_add(packets.len() as u16);
        Some(packets)
    }
}

/// One sample from `from`'s law to the other one.
fn translate(from: Codec, byte: u8) -> u8 {
    match from {
        Codec::Pcmu => g711::linear_to_alaw(g711::ulaw_to_linear(byte)),
        Codec::Pcma => g711::linear_to_ulaw(g711::alaw_to_linear(byte)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A caller's packet: PT, seq, timestamp, payload; `csrc`, an extension and padding on
    /// request, to check the payload is found behind them.
    fn packet(pt: u8, ts: u32, payload: &[u8], extras: bool) -> Vec<u8> {
        if !extras {
            return build_packet(pt, false, 7, ts, 0x1111, payload);
        }
        // Padding, extension, one CSRC.
        let mut p = vec![0x80 | 0x20 | 0x10 | 1, pt, 0, 7];
        p.extend(ts.to_be_bytes());
        p.extend(0x1111u32.to_be_bytes());
        p.extend(0x2222u32.to_be_bytes()); // CSRC
        p.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one extension word
        p.extend(payload);
        p.extend([0, 0, 3]); // 3 bytes of padding
        p
    }

    #[test]
    fn the_callers_audio_reaches_the_browser_in_its_law_and_tones_do_not() {
        let samples: Vec<i16> = vec![0, 1000, -1000, 8000, -8000, 32000, -32000];
        let ulaw: Vec<u8> = samples.iter().map(|s| g711::linear_to_ulaw(*s)).collect();
        let mut same = BrowserMedia::new((Codec::Pcmu, 0), Codec::Pcmu, 1, 0, 0);
        assert_eq!(
            same.to_browser(&packet(0, 480, &ulaw, true)),
            Some((480, ulaw.clone()))
        );

        // The caller speaks PCMU, the browser agreed on PCMA: each sample is the A-law
        // code of the same linear value the µ-law code stands for.
        let mut other = BrowserMedia::new((Codec::Pcmu, 0), Codec::Pcma, 1, 0, 0);
        let (ts, alaw) = other.to_browser(&packet(0, 160, &ulaw, false)).unwrap();
        assert_eq!(ts, 160);
        let expected: Vec<u8> = ulaw
            .iter()
            .map(|u| g711::linear_to_alaw(g711::ulaw_to_linear(*u)))
            .collect();
        assert_eq!(alaw, expected);
        let heard: Vec<i16> = alaw.iter().map(|a| g711::alaw_to_linear(*a)).collect();
        for (h, s) in heard.iter().zip(&samples) {
            // G.711 keeps about 3 % of a sample's size, both laws in a row a little more.
            assert!(
                (i32::from(*h) - i32::from(*s)).abs() <= i32::from(s.unsigned_abs() / 16 + 16),
                "{h} vs {s}"
            );
        }

        // An RFC 4733 event (PT 101), RTCP, and garbage: nothing for the browser.
        assert_eq!(
            same.to_browser(&packet(101, 160, &[5, 0x80, 0, 160], false)),
            None
        );
        assert_eq!(same.to_browser(&[0x80, 200, 0, 6, 0, 0, 0, 1]), None);
        assert_eq!(same.to_browser(&[1, 2, 3]), None);
    }

    #[test]
    fn a_new_source_in_the_call_goes_on_where_the_last_one_stopped() {
        let mut m = BrowserMedia::new((Codec::Pcma, 8), Codec::Pcma, 1, 0, 0);
        let frame = [0xd5; 160];
        let from = |ssrc: u32, ts: u32| build_packet(8, false, 7, ts, ssrc, &frame);
        let mut times = Vec::new();
        for (ssrc, ts) in [(0xA, 1000), (0xA, 1160), (0xA, 1320), (0xA, 1160)] {
            times.push(m.to_browser(&from(ssrc, ts)).map(|(t, _)| t));
        }
        // A supervisor's mix starts (another source, far off), then ends (the first again).
        for (ssrc, ts) in [(0xB, 900_000), (0xB, 900_160), (0xA, 1480), (0xA, 1640)] {
            times.push(m.to_browser(&from(ssrc, ts)).map(|(t, _)| t));
        }
        let expected = [1000, 1160, 1320, 1160, 1480, 1640, 1800, 1960];
        assert_eq!(times, expected.map(Some));
    }

    #[test]
    fn a_keypad_digit_reaches_the_caller_as_rfc_4733_events_in_the_legs_stream() {
        let mut m = BrowserMedia::new((Codec::Pcmu, 0), Codec::Pcmu, 0xbeef, 100, 8000);
        let frame = vec![0xff; 160];
        m.to_caller(50, &frame);
        let packets = m.digit('5', 101).unwrap();
        // 100 ms: progress at 20, 40, 60, 80 ms, then the end (800 samples) three times.
        let read: Vec<(bool, u8, u16, u32, Vec<u8>)> = packets
            .iter()
            .map(|p| {
                let r = RtpReader::new(p).unwrap();
                (
                    r.mark(),
                    r.payload_type(),
                    r.sequence_number().into(),
                    r.timestamp(),
                    r.payload().to_vec(),
                )
            })
            .collect();
        let event = |end: bool, d: u16| {
            let [a, b] = d.to_be_bytes();
            vec![5, if end { 0x80 } else { 0 } | 10, a, b]
        };
        assert_eq!(
            read,
            vec![
                (true, 101, 101, 8160, event(false, 160)),
                (false, 101, 102, 8160, event(false, 320)),
                (false, 101, 103, 8160, event(false, 480)),
                (false, 101, 104, 8160, event(false, 640)),
                (false, 101, 105, 8160, event(true, 800)),
                (false, 101, 106, 8160, event(true, 800)),
                (false, 101, 107, 8160, event(true, 800)),
            ]
        );
        // Audio goes on after the digit's packets, in the same sequence.
        let next = m.to_caller(210, &frame);
        assert_eq!(
            u16::from(RtpReader::new(&next).unwrap().sequence_number()),
            108
        );
        assert_eq!(m.digit('x', 101), None);
    }

    #[test]
    fn the_operators_voice_reaches_the_caller_as_a_stream_of_its_own() {
        let mut m = BrowserMedia::new((Codec::Pcma, 8), Codec::Pcmu, 0xfeed, 65535, 4_294_967_000);
        let frame = vec![g711::linear_to_ulaw(1234); 160];
        // The browser's RTP times start anywhere and step 160 a frame; one frame lost.
        let packets: Vec<Vec<u8>> = [90_000u32, 90_160, 90_480]
            .iter()
            .map(|t| m.to_caller(*t, &frame))
            .collect();
        let read: Vec<(bool, u8, u16, u32, u32)> = packets
            .iter()
            .map(|p| {
                let r = RtpReader::new(p).unwrap();
                (
                    r.mark(),
                    r.payload_type(),
                    r.sequence_number().into(),
                    r.timestamp(),
                    r.ssrc(),
                )
            })
            .collect();
        assert_eq!(
            read,
            vec![
                (true, 8, 65535, 4_294_967_000, 0xfeed),
                (false, 8, 0, 4_294_967_160, 0xfeed),
                // The lost frame's 160 samples stay in the timestamp; sequence numbers and
                // timestamps wrap.
                (false, 8, 1, 184, 0xfeed),
            ]
        );
        let payload = RtpReader::new(&packets[0]).unwrap().payload().to_vec();
        assert_eq!(
            payload,
            vec![g711::linear_to_alaw(g711::ulaw_to_linear(frame[0])); 160]
        );
    }
}
