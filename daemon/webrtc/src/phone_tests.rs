#![allow(clippy::unwrap_used)]

//! The browser phone's leg on the virtual network of tests.rs: rung, answered by a str0m
//! "browser", carrying the call's RTP both ways, declined, keyed, lost and found again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_media::Codec;
use hotline_media::g711;
use hotline_media::rtp::build_packet;
use rtp_rs::RtpReader;

use crate::phone::{CallNews, CallerAudio, PageNews, PhoneLeg, PhoneOutput, PhoneState};
use crate::tests::{Call, DaemonSide, PUBLIC, Sorted, browser, frame};

const REATTACH: Duration = Duration::from_secs(30);
/// The caller's side: PCMA at PT 8, telephone-event at 101.
const CALLER: CallerAudio = CallerAudio {
    codec: Codec::Pcma,
    payload_type: 8,
    telephone_event: Some(101),
};

impl DaemonSide for PhoneLeg {
    type Out = PhoneOutput;
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn timeout(&mut self, now: Instant) {
        self.handle_timeout(now);
    }
    fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.datagram(now, from, data);
    }
    fn poll_out(&mut self) -> Option<Sorted<PhoneOutput>> {
        Some(match self.poll()? {
            PhoneOutput::Transmit { to, data } => Sorted::Transmit(to, data),
            other => Sorted::Other(other),
        })
    }
}

fn ringing() -> PhoneLeg {
    PhoneLeg::ring(
        CALLER,
        crate::tests::DAEMON.parse().unwrap(),
        Some(PUBLIC.parse().unwrap()),
        (0xabcd, 1000, 50_000),
        REATTACH,
    )
}

/// The page answers `leg` with a browser offering PCMU; the two run until connected.
fn answer(mut leg: PhoneLeg, t0: Instant) -> Call<PhoneLeg> {
    let (mut b, offer) = browser(t0, &["PCMU"]);
    leg.answer(t0, &offer);
    let Some(PhoneOutput::Page(PageNews::Answered { sdp })) = leg.poll() else {
        panic!("the page gets the answer first");
    };
    b.take_answer(&sdp);
    let mut call = Call::new(leg, b);
    call.run(t0, t0 + Duration::from_millis(500));
    call
}

fn news(call: &Call<PhoneLeg>) -> Vec<CallNews> {
    call.events
        .iter()
        .filter_map(|(_, o)| match o {
            PhoneOutput::Call(n) => Some(*n),
            _ => None,
        })
        .collect()
}

fn rtp_out(call: &mut Call<PhoneLeg>) -> Vec<Vec<u8>> {
    let packets = call
        .events
        .iter()
        .filter_map(|(_, o)| match o {
            PhoneOutput::Rtp(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    call.events
        .retain(|(_, o)| !matches!(o, PhoneOutput::Rtp(_)));
    packets
}

#[test]
fn an_answered_ring_carries_the_call_both_ways_in_the_callers_codec() {
    let t0 = Instant::now();
    let mut call = answer(ringing(), t0);
    assert_eq!(call.leg.state(), PhoneState::Talking);
    assert_eq!(news(&call), vec![CallNews::Answered]);
    assert!(
        call.events
            .iter()
            .any(|(_, o)| *o == PhoneOutput::Page(PageNews::Connected))
    );

    // The caller speaks A-law at PT 8; the browser hears µ-law of the same samples.
    let mut now = t0 + Duration::from_millis(500);
    let caller_frame = vec![g711::linear_to_alaw(3000); 160];
    for n in 0..5u16 {
        let packet = build_packet(8, false, n, 160 * u32::from(n), 0x5555, &caller_frame);
        call.leg.caller_rtp(now, &packet);
        call.browser.say(now, 160 * u32::from(n), frame(0x20));
        call.run(now, now + Duration::from_millis(20));
        now += Duration::from_millis(20);
    }
    call.run(now, now + Duration::from_millis(100));
    let heard: Vec<Vec<u8>> = call.browser.heard.iter().map(|(_, p)| p.clone()).collect();
    let as_ulaw = vec![g711::linear_to_ulaw(g711::alaw_to_linear(caller_frame[0])); 160];
    assert_eq!(heard, vec![as_ulaw; 5]);

    // The operator's voice reaches the call as PCMA at PT 8 in the leg's own stream.
    let packets = rtp_out(&mut call);
    assert_eq!(packets.len(), 5);
    let first = RtpReader::new(&packets[0]).unwrap();
    assert_eq!(
        (
            first.payload_type(),
            first.ssrc(),
            u16::from(first.sequence_number())
        ),
        (8, 0xabcd, 1000)
    );
    assert!(first.mark());
    let expected = g711::linear_to_alaw(g711::ulaw_to_linear(0x20));
    assert_eq!(first.payload(), &vec![expected; 160][..]);
}

#[test]
fn a_declined_ring_is_a_reject_and_the_page_is_told() {
    let mut leg = ringing();
    leg.decline();
    assert_eq!(leg.poll(), Some(PhoneOutput::Call(CallNews::Declined)));
    assert!(matches!(
        leg.poll(),
        Some(PhoneOutput::Page(PageNews::Ended { .. }))
    ));
    assert_eq!(leg.state(), PhoneState::Over);

    // Hanging up a ring is declining it; a page closing while it rings too.
    let mut leg = ringing();
    leg.hang_up();
    assert_eq!(leg.poll(), Some(PhoneOutput::Call(CallNews::Declined)));
    let mut leg = ringing();
    leg.page_gone(Instant::now());
    assert_eq!(leg.poll(), Some(PhoneOutput::Call(CallNews::Declined)));

    // A ring the call cancels (timeout, another phone): the page is told, the call not.
    let mut leg = ringing();
    leg.call_ended("The caller hung up.");
    assert_eq!(
        leg.poll(),
        Some(PhoneOutput::Page(PageNews::Ended {
            reason: "The caller hung up.".into()
        }))
    );
    assert_eq!(leg.poll(), None);
}

#[test]
fn a_keypad_digit_goes_to_the_caller_as_events_20_ms_apart() {
    let t0 = Instant::now();
    let mut call = answer(ringing(), t0);
    rtp_out(&mut call);
    let pressed = t0 + Duration::from_secs(1);
    call.leg.dtmf(pressed, '7');
    let mut sent = Vec::new();
    let mut now = pressed;
    loop {
        while let Some(o) = call.leg.poll() {
            if let PhoneOutput::Rtp(p) = o {
                sent.push((now.duration_since(pressed).as_millis(), p));
            }
        }
        // Only the digit's own timer: the peer connection's timers are not run here.
        match call.leg.poll_timeout() {
            Some(t) if t.duration_since(pressed) < Duration::from_millis(200) => {
                now = t.max(now);
                call.leg.handle_timeout(now);
            }
            _ => break,
        }
    }
    let at: Vec<u128> = sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(at, vec![0, 20, 40, 60, 80, 100, 120]);
    let first = RtpReader::new(&sent[0].1).unwrap();
    assert_eq!((first.payload_type(), first.payload()[0]), (101, 7));
    assert_eq!(first.ssrc(), 0xabcd);

    // Not a key, or a caller whose line takes no events: the page is told why.
    call.leg.dtmf(now, 'x');
    assert!(matches!(
        call.leg.poll(),
        Some(PhoneOutput::Page(PageNews::Error { .. }))
    ));
}

#[test]
fn a_page_that_comes_back_picks_the_held_call_up_again() {
    let t0 = Instant::now();
    let mut call = answer(ringing(), t0);
    let lost_at = t0 + Duration::from_secs(2);
    call.leg.page_gone(lost_at);
    assert_eq!(call.leg.state(), PhoneState::Detached);
    assert_eq!(call.leg.poll(), Some(PhoneOutput::Call(CallNews::PageLost)));
    // Nothing gives up before the time is over.
    call.leg
        .handle_timeout(lost_at + REATTACH - Duration::from_millis(1));
    assert_eq!(call.leg.poll(), None);

    // The reloaded page answers with a new peer connection: the call resumes.
    let back_at = lost_at + Duration::from_secs(5);
    let call = answer(call.leg, back_at);
    assert_eq!(news(&call), vec![CallNews::PageBack]);
    assert_eq!(call.leg.state(), PhoneState::Talking);
}

#[test]
fn a_page_that_stays_away_gives_the_caller_up_when_the_time_is_over() {
    let t0 = Instant::now();
    let mut call = answer(ringing(), t0);
    let lost_at = t0 + Duration::from_secs(2);
    call.leg.page_gone(lost_at);
    assert_eq!(call.leg.poll(), Some(PhoneOutput::Call(CallNews::PageLost)));
    assert_eq!(call.leg.poll_timeout(), Some(lost_at + REATTACH));
    call.leg.handle_timeout(lost_at + REATTACH);
    assert_eq!(call.leg.poll(), Some(PhoneOutput::Call(CallNews::GaveUp)));
    assert_eq!(call.leg.state(), PhoneState::Over);
}
