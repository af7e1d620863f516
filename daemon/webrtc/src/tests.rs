#![allow(clippy::unwrap_used)]

//! A browser played by a second str0m instance (full ICE, the offerer, as Chrome is),
//! wired to the leg through a virtual network with a fixed delay, on a virtual clock.

use super::*;
use std::time::Duration;
use str0m::media::{Direction, MediaKind};

pub(crate) const BROWSER: &str = "192.0.2.10:50000";
pub(crate) const DAEMON: &str = "127.0.0.1:20000";
pub(crate) const PUBLIC: &str = "198.51.100.7";
/// One way through the virtual network.
const DELAY: Duration = Duration::from_millis(5);

pub(crate) struct Browser {
    rtc: Rtc,
    mid: Mid,
    /// The offer, until the leg's answer is applied.
    pending: Option<str0m::change::SdpPendingOffer>,
    pub connected: bool,
    pub heard: Vec<(u32, Vec<u8>)>,
}

/// A datagram on its way, and when it lands.
struct InFlight {
    at: Instant,
    to_leg: bool,
    from: SocketAddr,
    data: Vec<u8>,
}

/// The browser's offer with `codecs`, in its order.
pub(crate) fn browser(now: Instant, codecs: &[&str]) -> (Browser, String) {
    let mut config = RtcConfig::new().clear_codecs();
    for c in codecs {
        config = match *c {
            "PCMU" => config.enable_pcmu(true, false),
            "PCMA" => config.enable_pcma(true, false),
            "opus" => config.enable_opus(true, false),
            _ => unreachable!(),
        };
    }
    let mut rtc = config.build(now);
    rtc.add_local_candidate(Candidate::host(BROWSER.parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let browser = Browser {
        rtc,
        mid,
        pending: Some(pending),
        connected: false,
        heard: Vec::new(),
    };
    (browser, offer.to_sdp_string())
}

/// The daemon's side of the virtual network: a bare [`BrowserLeg`], or a whole
/// [`crate::phone::PhoneLeg`].
pub(crate) trait DaemonSide {
    type Out: std::fmt::Debug;
    fn next_timeout(&self) -> Option<Instant>;
    fn timeout(&mut self, now: Instant);
    fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]);
    fn poll_out(&mut self) -> Option<Sorted<Self::Out>>;
}

/// An output of the daemon's side, as the network sees it.
pub(crate) enum Sorted<O> {
    /// A datagram for the browser.
    Transmit(SocketAddr, Vec<u8>),
    /// Audio from the browser: RTP time and payload.
    Heard(u32, Vec<u8>),
    Other(O),
}

impl DaemonSide for BrowserLeg {
    type Out = LegOutput;
    fn next_timeout(&self) -> Option<Instant> {
        BrowserLeg::next_timeout(self)
    }
    fn timeout(&mut self, now: Instant) {
        BrowserLeg::timeout(self, now).unwrap();
    }
    fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        BrowserLeg::receive(self, now, from, data).unwrap();
    }
    fn poll_out(&mut self) -> Option<Sorted<LegOutput>> {
        Some(match self.poll()? {
            LegOutput::Transmit { to, data } => Sorted::Transmit(to, data),
            LegOutput::Audio { rtp_time, payload } => Sorted::Heard(rtp_time, payload),
            other => Sorted::Other(other),
        })
    }
}

/// The leg and the browser on a virtual network: every datagram lands `DELAY` after it
/// was sent.
pub(crate) struct Call<S: DaemonSide> {
    pub leg: S,
    pub browser: Browser,
    net: Vec<InFlight>,
    /// What the leg heard from the browser.
    pub leg_heard: Vec<(u32, Vec<u8>)>,
    /// The leg's other outputs, with when.
    pub events: Vec<(Instant, S::Out)>,
}

impl Call<BrowserLeg> {
    /// A browser offering `codecs` to a leg advertising the public address, the answer
    /// applied; returns the call and the answer.
    fn answered(t0: Instant, codecs: &[&str]) -> (Call<BrowserLeg>, String) {
        let (mut browser, offer) = browser(t0, codecs);
        let (leg, answer) = BrowserLeg::accept(
            t0,
            &offer,
            DAEMON.parse().unwrap(),
            Some(PUBLIC.parse().unwrap()),
        )
        .unwrap();
        browser.take_answer(&answer);
        (Call::new(leg, browser), answer)
    }
}

impl Browser {
    /// Applies the daemon's answer to the browser's pending offer.
    pub(crate) fn take_answer(&mut self, answer: &str) {
        let parsed = str0m::change::SdpAnswer::from_sdp_string(answer).unwrap();
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, parsed).unwrap();
    }

    /// Sends one frame to the daemon.
    pub(crate) fn say(&mut self, now: Instant, rtp_time: u32, frame: Vec<u8>) {
        let rtp_time = MediaTime::new(u64::from(rtp_time), G711_RATE);
        self.rtc
            .writer(self.mid)
            .unwrap()
            .write(Pt::new_with_value(0), now, rtp_time, frame)
            .unwrap();
    }
}

impl<S: DaemonSide> Call<S> {
    pub(crate) fn new(leg: S, browser: Browser) -> Call<S> {
        Call {
            leg,
            browser,
            net: Vec::new(),
            leg_heard: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Runs both sides from `from` until `until`, in virtual time; each side's timeouts
    /// fire when they are due.
    pub(crate) fn run(&mut self, from: Instant, until: Instant) {
        let mut now = from;
        let daemon: SocketAddr = DAEMON.parse().unwrap();
        let browser_addr: SocketAddr = BROWSER.parse().unwrap();
        let mut browser_timeout;
        while now <= until {
            // The leg's outputs.
            while let Some(o) = self.leg.poll_out() {
                match o {
                    Sorted::Transmit(to, data) => {
                        assert_eq!(to, browser_addr, "the leg answers where the browser is");
                        self.net.push(InFlight {
                            at: now + DELAY,
                            to_leg: false,
                            from: daemon,
                            data,
                        });
                    }
                    Sorted::Heard(rtp_time, payload) => self.leg_heard.push((rtp_time, payload)),
                    Sorted::Other(other) => self.events.push((now, other)),
                }
            }
            // The browser's outputs.
            loop {
                match self.browser.rtc.poll_output().unwrap() {
                    Output::Timeout(at) => {
                        browser_timeout = at;
                        break;
                    }
                    Output::Transmit(t) => {
                        // The browser sends to the candidate the leg advertised.
                        assert_eq!(
                            t.destination,
                            SocketAddr::new(PUBLIC.parse().unwrap(), 20000)
                        );
                        self.net.push(InFlight {
                            at: now + DELAY,
                            to_leg: true,
                            from: browser_addr,
                            data: t.contents.to_vec(),
                        });
                    }
                    Output::Event(Event::Connected) => self.browser.connected = true,
                    Output::Event(Event::MediaData(d)) => self
                        .browser
                        .heard
                        .push((d.time.rebase(G711_RATE).numer() as u32, d.data.to_vec())),
                    Output::Event(_) => {}
                }
            }
            // The next moment anything happens.
            let next_net = self.net.iter().map(|d| d.at).min();
            let next = [Some(browser_timeout), self.leg.next_timeout(), next_net]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(until + Duration::from_millis(1))
                .max(now);
            if next > until {
                break;
            }
            now = next;
            if let Some(i) = self.net.iter().position(|d| d.at <= now) {
                let d = self.net.remove(i);
                if d.to_leg {
                    self.leg.receive(now, d.from, &d.data);
                } else {
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source: d.from,
                            destination: browser_addr,
                            contents: d.data.as_slice().try_into().unwrap(),
                        },
                    );
                    self.browser.rtc.handle_input(input).unwrap();
                }
            } else if self.leg.next_timeout().is_some_and(|t| t <= now) {
                self.leg.timeout(now);
            } else {
                self.browser.rtc.handle_input(Input::Timeout(now)).unwrap();
            }
        }
    }
}

pub(crate) fn frame(n: u8) -> Vec<u8> {
    vec![n; 160]
}

#[test]
fn a_browser_connects_and_audio_flows_both_ways_in_g711() {
    let t0 = Instant::now();
    let (mut call, answer) = Call::answered(t0, &["opus", "PCMU", "PCMA"]);
    // Opus is not taken: calls are G.711 end to end.
    assert_eq!(call.leg.codec(), Codec::Pcmu);
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains(&format!("{PUBLIC} 20000 typ host")),
        "{answer}"
    );
    assert!(!answer.to_lowercase().contains("opus"), "{answer}");

    let connected_by = t0 + Duration::from_millis(500);
    call.run(t0, connected_by);
    assert!(
        call.browser.connected && call.leg.is_connected(),
        "connected within 500 ms: {:?}",
        call.events
    );
    let connected = call
        .events
        .iter()
        .filter(|(_, e)| *e == LegOutput::Connected);
    assert_eq!(connected.count(), 1);

    // 10 frames each way, 20 ms apart.
    let mut now = connected_by;
    for n in 0..10u8 {
        let ts = 160 * u32::from(n);
        call.leg.send_audio(now, ts, &frame(n)).unwrap();
        call.browser.say(now, ts, frame(100 + n));
        call.run(now, now + Duration::from_millis(20));
        now += Duration::from_millis(20);
    }
    call.run(now, now + Duration::from_millis(100));
    let leg_payloads: Vec<Vec<u8>> = call.leg_heard.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(leg_payloads, (100..110).map(frame).collect::<Vec<_>>());
    let browser_payloads: Vec<Vec<u8>> =
        call.browser.heard.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(browser_payloads, (0..10).map(frame).collect::<Vec<_>>());
    // RTP time advances by one frame (160 samples) per packet.
    let steps: Vec<u32> = call
        .leg_heard
        .windows(2)
        .map(|w| w[1].0.wrapping_sub(w[0].0))
        .collect();
    assert!(steps.iter().all(|s| *s == 160), "{steps:?}");
}

#[test]
fn pcma_is_used_when_the_browser_offers_only_that() {
    let t0 = Instant::now();
    let (_b, offer) = browser(t0, &["PCMA"]);
    let (leg, _) = BrowserLeg::accept(t0, &offer, DAEMON.parse().unwrap(), None).unwrap();
    assert_eq!(leg.codec(), Codec::Pcma);
}

#[test]
fn offers_without_g711_or_audio_or_sense_are_refused_with_a_reason() {
    let t0 = Instant::now();
    let (_b, offer) = browser(t0, &["opus"]);
    let err = BrowserLeg::accept(t0, &offer, DAEMON.parse().unwrap(), None)
        .err()
        .unwrap();
    assert!(matches!(err, LegError::NoG711), "{err}");
    let err = BrowserLeg::accept(t0, "v=0\r\nnonsense", DAEMON.parse().unwrap(), None)
        .err()
        .unwrap();
    assert!(matches!(err, LegError::BadOffer(_)), "{err}");
}

#[test]
fn a_browser_that_goes_silent_is_reported_gone() {
    let t0 = Instant::now();
    let (mut call, _) = Call::answered(t0, &["PCMU"]);
    let connected_by = t0 + Duration::from_millis(500);
    call.run(t0, connected_by);
    assert!(call.leg.is_connected());
    let leg = &mut call.leg;
    // The page is closed: nothing more comes from the browser; the leg's timeouts go on.
    let mut now = connected_by;
    let mut gone_at = None;
    while now < connected_by + Duration::from_secs(60) && gone_at.is_none() {
        now = leg
            .next_timeout()
            .unwrap_or(now + Duration::from_millis(100))
            .max(now);
        leg.timeout(now).unwrap();
        while let Some(o) = leg.poll() {
            if o == LegOutput::Disconnected {
                gone_at = Some(now);
            }
        }
    }
    let after = gone_at
        .expect("the leg notices the browser is gone")
        .duration_since(connected_by);
    // str0m's ICE timeout, counted from the last check the browser sent (they come every
    // few hundred ms while connected): the call learns a page is gone in seconds.
    assert_eq!(after, Duration::from_millis(17_500));
}
