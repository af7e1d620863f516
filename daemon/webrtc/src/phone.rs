//! One call leg to an operator's browser phone, from the ring to the end, sans-IO.
//!
//! The call sees an ordinary leg: it rings, is answered or declined, carries RTP in the
//! caller's codec, and ends. Between the two, [`PhoneLeg`] keeps the page's side: it rings
//! the page, answers the page's WebRTC offer with a [`BrowserLeg`], turns the caller's RTP
//! into the browser's frames and back ([`BrowserMedia`]), sends keypad digits as RFC 4733
//! events, and survives a page that goes away mid-call (a reload, a network change): the
//! call is told to hold the caller, and the page may come back and answer again with a new
//! peer connection within `reattach`; past that the call is told to give the caller up
//! (back to the queue).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hotline_media::Codec;

use crate::media::BrowserMedia;
use crate::{BrowserLeg, LegOutput};

/// How the call's side of the leg sends audio: the caller's codec and payload types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallerAudio {
    pub codec: Codec,
    pub payload_type: u8,
    /// RFC 4733's payload type, when the caller's side has one (keypad digits need it).
    pub telephone_event: Option<u8>,
}

/// What the page is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageNews {
    /// The answer to the page's offer.
    Answered { sdp: String },
    /// Audio flows.
    Connected,
    /// The leg is over, for the reason given.
    Ended { reason: String },
    /// Something the operator should read; the leg goes on.
    Error { message: String },
}

/// What the call is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallNews {
    /// The operator answered and the audio is up.
    Answered,
    /// The operator declined the ring (a reject to the queue).
    Declined,
    /// The operator hung up.
    HungUp,
    /// The page went away mid-call: hold the caller.
    PageLost,
    /// The page is back and connected: resume.
    PageBack,
    /// The page did not come back in time: the caller must go on without this operator.
    GaveUp,
}

/// What the leg asks of its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneOutput {
    Page(PageNews),
    Call(CallNews),
    /// A datagram for the browser, from the leg's ICE socket.
    Transmit {
        to: SocketAddr,
        data: Vec<u8>,
    },
    /// An RTP packet for the call, in the caller's codec.
    Rtp(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneState {
    Ringing,
    Connecting,
    Talking,
    /// The page went away during the call; since when.
    Detached,
    Over,
}

enum Stage {
    Ringing,
    /// A peer connection is being set up (`resumed`: the page came back mid-call).
    Connecting {
        leg: BrowserLeg,
        resumed: bool,
    },
    Talking {
        leg: BrowserLeg,
    },
    Detached {
        since: Instant,
    },
    Over,
}

/// One call leg to a browser phone.
pub struct PhoneLeg {
    stage: Stage,
    caller: CallerAudio,
    /// Where the browser's datagrams arrive, and the address to advertise for it.
    ice_local: SocketAddr,
    advertised: Option<IpAddr>,
    /// The stream towards the caller: SSRC, first sequence number and timestamp.
    stream: (u32, u16, u32),
    media: Option<BrowserMedia>,
    reattach: Duration,
    /// Keypad events waiting for their 20 ms slot.
    digits: VecDeque<Vec<u8>>,
    next_digit_packet: Option<Instant>,
    out: VecDeque<PhoneOutput>,
}

/// Time between two RFC 4733 packets.
const EVENT_PACKET_INTERVAL: Duration = Duration::from_millis(20);

impl PhoneLeg {
    /// A leg that rings the page now. `stream` starts the RTP towards the caller
    /// (random SSRC, sequence number and timestamp, as RFC 3550 asks).
    pub fn ring(
        caller: CallerAudio,
        ice_local: SocketAddr,
        advertised: Option<IpAddr>,
        stream: (u32, u16, u32),
        reattach: Duration,
    ) -> PhoneLeg {
        PhoneLeg {
            stage: Stage::Ringing,
            caller,
            ice_local,
            advertised,
            stream,
            media: None,
            reattach,
            digits: VecDeque::new(),
            next_digit_packet: None,
            out: VecDeque::new(),
        }
    }

    pub fn state(&self) -> PhoneState {
        match self.stage {
            Stage::Ringing => PhoneState::Ringing,
            Stage::Connecting { .. } => PhoneState::Connecting,
            Stage::Talking { .. } => PhoneState::Talking,
            Stage::Detached { .. } => PhoneState::Detached,
            Stage::Over => PhoneState::Over,
        }
    }

    /// The page answers (a ring, or the held call it came back for) with its offer.
    pub fn answer(&mut self, now: Instant, offer: &str) {
        let resumed = match self.stage {
            Stage::Ringing => false,
            Stage::Detached { .. } => true,
            _ => {
                self.page(PageNews::Error {
                    message: "This call is already answered.".into(),
                });
                return;
            }
        };
        match BrowserLeg::accept(now, offer, self.ice_local, self.advertised) {
            Ok((leg, sdp)) => {
                let (ssrc, seq, ts) = self.stream;
                // A resumed call goes on in the same stream towards the caller.
                if self.media.is_none() {
                    let caller = (self.caller.codec, self.caller.payload_type);
                    self.media = Some(BrowserMedia::new(caller, leg.codec(), ssrc, seq, ts));
                }
                self.page(PageNews::Answered { sdp });
                self.stage = Stage::Connecting { leg, resumed };
                self.drain(now);
            }
            Err(e) => self.page(PageNews::Error {
                message: format!("The call could not be answered in this browser: {e}"),
            }),
        }
    }

    /// The operator declined the ring.
    pub fn decline(&mut self) {
        if matches!(self.stage, Stage::Ringing) {
            self.end(CallNews::Declined, "You declined the call.");
        }
    }

    /// The operator hung up (a ring: declined).
    pub fn hang_up(&mut self) {
        match self.stage {
            Stage::Ringing => self.decline(),
            Stage::Over => {}
            _ => self.end(CallNews::HungUp, "You hung up."),
        }
    }

    /// The call ended the leg (the caller hung up, another phone answered, the ring timed
    /// out, the call moved on); `reason` for the page.
    pub fn call_ended(&mut self, reason: &str) {
        if let Stage::Connecting { leg, .. } | Stage::Talking { leg } = &mut self.stage {
            leg.close();
        }
        if !matches!(self.stage, Stage::Over) {
            self.stage = Stage::Over;
            self.page(PageNews::Ended {
                reason: reason.to_string(),
            });
        }
    }

    /// A keypad digit for the caller.
    pub fn dtmf(&mut self, now: Instant, digit: char) {
        if !matches!(self.stage, Stage::Talking { .. }) {
            return;
        }
        let Some(pt) = self.caller.telephone_event else {
            self.page(PageNews::Error {
                message: "The caller's line takes no keypad tones.".into(),
            });
            return;
        };
        let Some(packets) = self.media.as_mut().and_then(|m| m.digit(digit, pt)) else {
            self.page(PageNews::Error {
                message: format!("{digit:?} is not a key of the keypad."),
            });
            return;
        };
        self.digits.extend(packets);
        if self.next_digit_packet.is_none() {
            self.next_digit_packet = Some(now);
            self.send_digit_packets(now);
        }
    }

    /// The page that was this phone is gone.
    pub fn page_gone(&mut self, now: Instant) {
        match &mut self.stage {
            Stage::Ringing => self.end(CallNews::Declined, "The page closed."),
            Stage::Connecting { leg, resumed } => {
                leg.close();
                let resumed = *resumed;
                self.stage = Stage::Detached { since: now };
                // An answer that never connected: the call has not heard of it yet.
                if resumed {
                    return;
                }
                self.end(CallNews::Declined, "The page closed.");
            }
            Stage::Talking { leg } => {
                leg.close();
                self.stage = Stage::Detached { since: now };
                self.out.push_back(PhoneOutput::Call(CallNews::PageLost));
            }
            Stage::Detached { .. } | Stage::Over => {}
        }
    }

    /// A datagram on the leg's ICE socket.
    pub fn datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if let Stage::Connecting { leg, .. } | Stage::Talking { leg } = &mut self.stage {
            if leg.receive(now, from, data).is_err() {
                self.connection_lost(now);
                return;
            }
            self.drain(now);
        }
    }

    /// One of the caller's RTP packets (from the call).
    pub fn caller_rtp(&mut self, now: Instant, packet: &[u8]) {
        if let (Stage::Talking { leg }, Some(media)) = (&mut self.stage, &mut self.media)
            && let Some((rtp_time, frame)) = media.to_browser(packet)
        {
            if leg.send_audio(now, rtp_time, &frame).is_err() {
                self.connection_lost(now);
                return;
            }
            self.drain(now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let stage = match &self.stage {
            Stage::Connecting { leg, .. } | Stage::Talking { leg } => leg.next_timeout(),
            Stage::Detached { since } => Some(*since + self.reattach),
            Stage::Ringing | Stage::Over => None,
        };
        [stage, self.next_digit_packet].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.send_digit_packets(now);
        match &mut self.stage {
            Stage::Connecting { leg, .. } | Stage::Talking { leg }
                if leg.next_timeout().is_some_and(|t| t <= now) =>
            {
                if leg.timeout(now).is_err() {
                    self.connection_lost(now);
                    return;
                }
                self.drain(now);
            }
            Stage::Detached { since } if now >= *since + self.reattach => {
                self.stage = Stage::Over;
                self.out.push_back(PhoneOutput::Call(CallNews::GaveUp));
            }
            _ => {}
        }
    }

    pub fn poll(&mut self) -> Option<PhoneOutput> {
        self.out.pop_front()
    }

    fn send_digit_packets(&mut self, now: Instant) {
        while let Some(due) = self.next_digit_packet
            && due <= now
        {
            match self.digits.pop_front() {
                Some(p) => {
                    self.out.push_back(PhoneOutput::Rtp(p));
                    self.next_digit_packet = Some(due + EVENT_PACKET_INTERVAL);
                }
                None => self.next_digit_packet = None,
            }
        }
    }

    /// The peer connection failed or timed out: as if the page went away.
    fn connection_lost(&mut self, now: Instant) {
        self.page(PageNews::Error {
            message: "The connection to this browser was lost.".into(),
        });
        self.page_gone(now);
    }

    fn drain(&mut self, now: Instant) {
        let mut lost = false;
        if let Stage::Connecting { leg, .. } | Stage::Talking { leg } = &mut self.stage {
            while let Some(o) = leg.poll() {
                match o {
                    LegOutput::Transmit { to, data } => {
                        self.out.push_back(PhoneOutput::Transmit { to, data })
                    }
                    LegOutput::Audio { rtp_time, payload } => {
                        if let Some(m) = self.media.as_mut() {
                            self.out
                                .push_back(PhoneOutput::Rtp(m.to_caller(rtp_time, &payload)));
                        }
                    }
                    LegOutput::Connected => {
                        self.out.push_back(PhoneOutput::Page(PageNews::Connected));
                    }
                    LegOutput::Disconnected => lost = true,
                }
            }
        }
        // Connected: the call hears of it once (answered), or again after a comeback.
        if let Stage::Connecting { leg, resumed } = &self.stage
            && leg.is_connected()
        {
            let news = if *resumed {
                CallNews::PageBack
            } else {
                CallNews::Answered
            };
            let Stage::Connecting { leg, .. } = std::mem::replace(&mut self.stage, Stage::Over)
            else {
                return;
            };
            self.stage = Stage::Talking { leg };
            self.out.push_back(PhoneOutput::Call(news));
        }
        if lost {
            self.connection_lost(now);
        }
    }

    fn end(&mut self, news: CallNews, reason: &str) {
        self.stage = Stage::Over;
        self.out.push_back(PhoneOutput::Call(news));
        self.page(PageNews::Ended {
            reason: reason.to_string(),
        });
    }

    fn page(&mut self, news: PageNews) {
        self.out.push_back(PhoneOutput::Page(news));
    }
}
