//! RTP media for Hotline: G.711 codecs, WAV prompts, RFC 4733 DTMF and a
//! paced RTP sender/receiver per call leg.
//!
//! Sans-IO: nothing here touches sockets, tasks or the clock. Every
//! time-dependent call takes `now: Instant`, so tests drive it with a virtual
//! clock and the daemon's driver owns the real one.

pub mod bridge;
pub mod dtmf;
pub mod g711;
pub mod mixer;
pub mod recorder;
pub mod rtp;
pub mod wav;

pub use rtp::{MediaEvent, RtpConfig, RtpSession, RtpStats};
pub use wav::{PcmError, Prompt, WavError, load_prompt, read_pcm};

/// Narrowband G.711 audio, the only codecs prompts are played in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The RFC 3551 static payload type.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encodes 16-bit linear PCM, appending one byte per sample to `out`.
    pub fn encode(self, pcm: &[i16], out: &mut Vec<u8>) {
        let f = match self {
            Codec::Pcmu => g711::linear_to_ulaw,
            Codec::Pcma => g711::linear_to_alaw,
        };
        out.extend(pcm.iter().map(|&s| f(s)));
    }

    /// Decodes G.711 bytes, appending one 16-bit sample per byte to `out`.
    pub fn decode(self, bytes: &[u8], out: &mut Vec<i16>) {
        let f = match self {
            Codec::Pcmu => g711::ulaw_to_linear,
            Codec::Pcma => g711::alaw_to_linear,
        };
        out.extend(bytes.iter().map(|&b| f(b)));
    }

    /// The byte that decodes to silence; pads a last partial frame.
    pub fn silence(self) -> u8 {
        match self {
            Codec::Pcmu => 0xFF,
            Codec::Pcma => 0xD5,
        }
    }

    /// Codec for a static payload type (0 or 8).
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types() {
        assert_eq!(Codec::Pcmu.static_payload_type(), 0);
        assert_eq!(Codec::Pcma.static_payload_type(), 8);
        assert_eq!(Codec::from_static_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_static_payload_type(3), None);
    }

    #[test]
    fn encode_decode_append() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let mut bytes = vec![0xAB];
            codec.encode(&[0, 1000, -1000], &mut bytes);
            assert_eq!(bytes.len(), 4);
            assert_eq!(bytes[1], codec.silence());
            let mut pcm = vec![7];
            codec.decode(&bytes[1..], &mut pcm);
            assert_eq!(pcm.len(), 4);
            assert_eq!(pcm[0], 7);
            assert!((pcm[2] - 1000).abs() < 40, "{codec:?} {pcm:?}");
            assert!((pcm[3] + 1000).abs() < 40, "{codec:?} {pcm:?}");
        }
    }

    #[test]
    fn silence_decodes_to_near_zero() {
        assert_eq!(g711::ulaw_to_linear(Codec::Pcmu.silence()), 0);
        assert_eq!(g711::alaw_to_linear(Codec::Pcma.silence()), 8);
    }
}

/// Whether a peer whose SDP names `ip` is behind a NAT, so that its media may come from
/// another (its router's) address: private, shared (CGNAT), link-local and unique-local
/// addresses, and none at all.
pub fn behind_nat(ip: std::net::IpAddr) -> bool {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod nat_tests {
    #[test]
    fn private_addresses_are_behind_a_nat_public_ones_are_not() {
        for ip in [
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.20",
            "100.64.0.1",
            "169.254.3.4",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(super::behind_nat(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "192.0.2.10",
            "203.0.113.5",
            "127.0.0.1",
            "100.128.0.1",
            "2001:db8::1",
        ] {
            assert!(!super::behind_nat(ip.parse().unwrap()), "{ip}");
        }
    }
}
