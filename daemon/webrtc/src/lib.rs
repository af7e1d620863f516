//! hotline-webrtc: the browser as an operator's phone (PRODUCT.md T7).
//!
//! A [`BrowserLeg`] is one peer connection with an operator's browser, carrying one audio
//! stream in G.711 (PCMU or PCMA, which every browser offers), so the SIP side needs no
//! transcoding. The daemon is the answerer and runs ICE-lite on one of its RTP ports: the
//! browser does the connectivity checks, and the daemon only answers them, so a public
//! address (`rtp.public_ip`) is all it advertises. DTLS-SRTP keys the media.
//!
//! Sans-IO, like the SIP and media cores: the leg takes `now`, datagrams and audio, and
//! gives datagrams to send, audio received and its next timeout; tests drive it with a
//! virtual clock. str0m does the protocol work; this crate pins down what Hotline uses of
//! it (audio only, G.711 only, ICE-lite) and turns its events into a call leg's terms.

pub mod media;
pub mod phone;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hotline_media::Codec;
use str0m::change::SdpOffer;
use str0m::format::PayloadParams;
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

/// G.711's RTP clock.
const G711_RATE: str0m::media::Frequency = str0m::media::Frequency::EIGHT_KHZ;

#[derive(Debug, thiserror::Error)]
pub enum LegError {
    #[error("the browser's offer is not valid SDP: {0}")]
    BadOffer(String),
    #[error("the browser's offer has no audio")]
    NoAudio,
    #[error("the browser offers neither PCMU nor PCMA (G.711), which calls are carried in")]
    NoG711,
    #[error("the offer cannot be answered: {0}")]
    Refused(String),
    #[error("the peer connection failed: {0}")]
    Failed(String),
}

/// What the leg asks of its driver, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum LegOutput {
    /// Send `data` from the leg's local address to `to`.
    Transmit { to: SocketAddr, data: Vec<u8> },
    /// ICE and DTLS are done: audio flows from now on.
    Connected,
    /// 20 ms (or so) of the operator's voice, in the leg's codec, with its RTP time.
    Audio { rtp_time: u32, payload: Vec<u8> },
    /// The browser is gone (ICE timed out or the connection was closed).
    Disconnected,
}

/// One browser's audio leg.
pub struct BrowserLeg {
    rtc: Rtc,
    mid: Mid,
    pt: Pt,
    codec: Codec,
    local: SocketAddr,
    /// The address in the leg's candidate: `local`, or its public address behind NAT.
    /// Datagrams are handed to str0m as sent to it, which is where the browser sent them.
    candidate: SocketAddr,
    out: VecDeque<LegOutput>,
    next_timeout: Option<Instant>,
    connected: bool,
    gone: bool,
}

impl BrowserLeg {
    /// Answers the browser's SDP offer. `local` is the UDP socket the leg's datagrams come
    /// and go on; `advertised` the address put in the candidate when that is not `local`'s
    /// own (behind NAT: the public IP). Returns the leg and the SDP answer for the browser.
    pub fn accept(
        now: Instant,
        offer: &str,
        local: SocketAddr,
        advertised: Option<IpAddr>,
    ) -> Result<(BrowserLeg, String), LegError> {
        let audio = first_audio_mid(offer);
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| LegError::BadOffer(e.to_string()))?;
        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        let candidate_addr = SocketAddr::new(advertised.unwrap_or(local.ip()), local.port());
        let candidate = Candidate::host(candidate_addr, "udp")
            .map_err(|e| LegError::Refused(format!("local candidate {candidate_addr}: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| LegError::Refused(e.to_string()))?;

        let mut leg = BrowserLeg {
            rtc,
            mid: Mid::from("0"),
            pt: Pt::new_with_value(0),
            codec: Codec::Pcmu,
            local,
            candidate: candidate_addr,
            out: VecDeque::new(),
            next_timeout: None,
            connected: false,
            gone: false,
        };
        let mid = audio.ok_or(LegError::NoAudio)?;
        leg.drain_into_out(now)?;
        let (pt, codec) = leg.g711_of(mid).ok_or(LegError::NoG711)?;
        leg.mid = mid;
        leg.pt = pt;
        leg.codec = codec;
        Ok((leg, answer.to_sdp_string()))
    }

    /// The codec both sides agreed on.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The local address datagrams must come in on.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Whether ICE and DTLS are done.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// When [`BrowserLeg::timeout`] must next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.next_timeout
    }

    /// Whether `data` from `from` belongs to this leg (a STUN check with its credentials,
    /// DTLS or SRTP from the address ICE chose), for drivers that share a socket.
    pub fn accepts(&self, now: Instant, from: SocketAddr, data: &[u8]) -> bool {
        match receive(now, from, self.candidate, data) {
            Some(input) => self.rtc.accepts(&input),
            None => false,
        }
    }

    /// A datagram from the browser's side. Datagrams that are not STUN, DTLS or RTP are
    /// dropped, as a network would.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Result<(), LegError> {
        if self.gone {
            return Ok(());
        }
        let Some(input) = receive(now, from, self.candidate, data) else {
            return Ok(());
        };
        if self.rtc.handle_input(input).is_err() {
            // A malformed or replayed packet: str0m refuses it; the leg goes on.
            return self.drain_into_out(now);
        }
        self.drain_into_out(now)
    }

    /// Time passed: retransmissions, keep-alives, RTCP, ICE timeouts.
    pub fn timeout(&mut self, now: Instant) -> Result<(), LegError> {
        if self.gone {
            return Ok(());
        }
        self.rtc
            .handle_input(Input::Timeout(now))
            .map_err(|e| LegError::Failed(e.to_string()))?;
        self.drain_into_out(now)
    }

    /// Sends one frame of the caller's audio (in the leg's codec) to the browser. Before
    /// the leg is connected the frame is dropped, as a phone still ringing would.
    pub fn send_audio(
        &mut self,
        now: Instant,
        rtp_time: u32,
        payload: &[u8],
    ) -> Result<(), LegError> {
        if !self.connected || self.gone {
            return Ok(());
        }
        let Some(writer) = self.rtc.writer(self.mid) else {
            return Ok(());
        };
        writer
            .write(
                self.pt,
                now,
                MediaTime::new(u64::from(rtp_time), G711_RATE),
                payload.to_vec(),
            )
            .map_err(|e| LegError::Failed(e.to_string()))?;
        self.drain_into_out(now)
    }

    /// Closes the peer connection (the call ended or moved on).
    pub fn close(&mut self) {
        if !self.gone {
            self.rtc.disconnect();
            self.gone = true;
        }
    }

    /// The next thing to do, or `None` until more input or the next timeout.
    pub fn poll(&mut self) -> Option<LegOutput> {
        self.out.pop_front()
    }

    /// The PCMU/PCMA payload type of the browser's audio, PCMU first as in its offer.
    fn g711_of(&self, mid: Mid) -> Option<(Pt, Codec)> {
        let media = self.rtc.media(mid)?;
        let params: Vec<&PayloadParams> = self.rtc.codec_config().params().iter().collect();
        media.remote_pts().iter().find_map(|pt| {
            let p = params.iter().find(|p| p.pt() == *pt)?;
            match p.spec().codec {
                str0m::format::Codec::PCMU => Some((*pt, Codec::Pcmu)),
                str0m::format::Codec::PCMA => Some((*pt, Codec::Pcma)),
                _ => None,
            }
        })
    }

    fn drain_into_out(&mut self, now: Instant) -> Result<(), LegError> {
        let mut events = Vec::new();
        self.drain(now, &mut events)?;
        for event in events {
            match event {
                Event::Connected => {
                    self.connected = true;
                    self.out.push_back(LegOutput::Connected);
                }
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    self.gone = true;
                    self.out.push_back(LegOutput::Disconnected);
                }
                Event::MediaData(d) if d.mid == self.mid && d.pt == self.pt => {
                    self.out.push_back(LegOutput::Audio {
                        rtp_time: d.time.rebase(G711_RATE).numer() as u32,
                        payload: d.data.to_vec(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// str0m's rule: after every input, poll until it names its next timeout.
    fn drain(&mut self, _now: Instant, events: &mut Vec<Event>) -> Result<(), LegError> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.next_timeout = Some(at);
                    return Ok(());
                }
                Ok(Output::Transmit(t)) => self.out.push_back(LegOutput::Transmit {
                    to: t.destination,
                    data: t.contents.to_vec(),
                }),
                Ok(Output::Event(e)) => events.push(e),
                Err(e) => return Err(LegError::Failed(e.to_string())),
            }
        }
    }
}

/// The `a=mid` of the offer's first audio line (str0m tells of media lines only once the
/// connection is up; the codec must be known before answering the call).
fn first_audio_mid(sdp: &str) -> Option<Mid> {
    let mut in_audio = false;
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ");
        } else if in_audio && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(Mid::from(mid.trim()));
        }
    }
    None
}

fn receive(now: Instant, from: SocketAddr, local: SocketAddr, data: &[u8]) -> Option<Input<'_>> {
    Some(Input::Receive(
        now,
        Receive {
            proto: Protocol::Udp,
            source: from,
            destination: local,
            contents: data.try_into().ok()?,
        },
    ))
}

#[cfg(test)]
mod phone_tests;
#[cfg(test)]
mod tests;
