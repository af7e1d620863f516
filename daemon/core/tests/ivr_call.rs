//! The IVR call on a virtual clock, with the real example flow and prompts: what the
//! caller hears, when, and what pressing a key does. Times are exact milliseconds.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_core::ivr_call::{Hangup, IvrCall, PromptLibrary};
use hotline_media::Codec;
use hotline_media::dtmf::{DigitSend, digit_packets};
use hotline_media::rtp::RtpConfig;

const CALLER: &str = "192.0.2.10:4000";

fn example_flows() -> (Arc<hotline_ivr::Flow>, Arc<PromptLibrary>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows");
    let set = hotline_ivr::load_dir(&dir).expect("the example flows load");
    let mut prompts = PromptLibrary::new();
    for name in set.prompt_names() {
        let p = hotline_media::wav::load_prompt(&set.prompt_path(&name)).unwrap();
        prompts.insert(name, p);
    }
    (set.for_number("100").unwrap(), Arc::new(prompts))
}

fn new_call(rtp_timeout: Duration, t0: Instant) -> (IvrCall, Arc<PromptLibrary>) {
    let (flow, prompts) = example_flows();
    let cfg = RtpConfig {
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        remote: Some(CALLER.parse().unwrap()),
        symmetric: true,
        ssrc: 0x1234_5678,
        initial_seq: 1000,
        initial_timestamp: 0,
    };
    let context = hotline_ivr::CallContext {
        caller: "+36301234567".into(),
        called: "100".into(),
        answered_at: chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00+01:00")
            .unwrap()
            .to_utc(),
    };
    (
        IvrCall::new(flow, context, prompts.clone(), cfg, rtp_timeout, t0),
        prompts,
    )
}

/// One packet as the caller's phone got it: when (ms after answer), seq, marker, payload.
struct Heard {
    at_ms: u64,
    seq: u16,
    marker: bool,
    payload: Vec<u8>,
}

/// Runs the call until `until_ms` (or hangup), firing timers exactly when asked.
fn run_until(call: &mut IvrCall, t0: Instant, until_ms: u64, heard: &mut Vec<Heard>) {
    loop {
        while let Some((to, pkt)) = call.poll_transmit() {
            assert_eq!(to, CALLER.parse::<SocketAddr>().unwrap());
            let at = heard_now(t0);
            heard.push(Heard {
                at_ms: at,
                seq: u16::from_be_bytes([pkt[2], pkt[3]]),
                marker: pkt[1] & 0x80 != 0,
                payload: pkt[12..].to_vec(),
            });
        }
        if call.hangup().is_some() {
            return;
        }
        let Some(next) = call.poll_timeout() else {
            return;
        };
        if next > t0 + Duration::from_millis(until_ms) {
            return;
        }
        set_now(next);
        call.handle_timeout(next);
    }
}

// The virtual "now" of the last timer fired, so a packet is stamped with its send time.
thread_local!(static NOW: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) });
fn set_now(t: Instant) {
    NOW.with(|n| n.set(Some(t)));
}
fn heard_now(t0: Instant) -> u64 {
    let now = NOW.with(|n| n.get()).unwrap_or(t0);
    u64::try_from((now - t0).as_millis()).unwrap()
}

fn audio(heard: &[Heard]) -> Vec<u8> {
    heard
        .iter()
        .flat_map(|h| h.payload.iter().copied())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn prompt_bytes(prompts: &PromptLibrary, name: &str) -> Vec<u8> {
    prompts[name].encoded(Codec::Pcma).to_vec()
}

#[test]
fn caller_hears_greeting_then_menu_at_exact_20ms_pacing() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, prompts) = new_call(Duration::ZERO, t0);
    call.start(t0);
    let mut heard = Vec::new();
    let welcome = prompt_bytes(&prompts, "welcome");
    let menu = prompt_bytes(&prompts, "menu");
    let greeting_packets = welcome.len().div_ceil(160);
    run_until(
        &mut call,
        t0,
        ((greeting_packets + 50) * 20) as u64,
        &mut heard,
    );

    // Packet k at exactly 20·k ms, consecutive sequence numbers, marker on the first only.
    for (k, h) in heard.iter().enumerate() {
        assert_eq!(h.at_ms, 20 * k as u64, "packet {k}");
        assert_eq!(h.seq, 1000u16.wrapping_add(k as u16));
        assert_eq!(h.marker, k == 0, "marker on packet {k}");
        assert_eq!(h.payload.len(), 160);
    }
    // The greeting, then the menu right after it.
    let got = audio(&heard);
    assert_eq!(
        &got[..welcome.len()],
        &welcome[..],
        "the greeting, byte for byte"
    );
    let menu_start = greeting_packets * 160;
    assert_eq!(
        &got[menu_start..menu_start + 40 * 160],
        &menu[..40 * 160],
        "then the menu"
    );
    assert_eq!(call.hangup(), None);
}

#[test]
fn pressing_1_during_the_menu_plays_sales_then_goodbye_and_hangs_up() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, prompts) = new_call(Duration::ZERO, t0);
    call.start(t0);
    let mut heard = Vec::new();
    let greeting_ms = (prompts["welcome"].encoded(Codec::Pcma).len().div_ceil(160) * 20) as u64;
    let key_at_ms = greeting_ms + 1000;
    run_until(&mut call, t0, key_at_ms - 1, &mut heard);

    // The caller presses 1: RFC 4733 packets every 20 ms, then three end packets.
    let packets = digit_packets(&DigitSend {
        payload_type: 101,
        ssrc: 0xCAFE,
        first_seq: 7,
        timestamp: 160_000,
        digit: '1',
        duration_ms: 100,
        volume: 10,
    })
    .unwrap();
    let from: SocketAddr = CALLER.parse().unwrap();
    let mut t = key_at_ms;
    let key_index = heard.len();
    for p in &packets {
        run_until(&mut call, t0, t, &mut heard);
        let now = t0 + Duration::from_millis(t);
        set_now(now);
        call.handle_rtp(now, from, p);
        t += 20;
    }
    let pressed_ms = t - 20;
    let before = heard.len();
    run_until(&mut call, t0, pressed_ms + 60_000, &mut heard);

    assert_eq!(call.hangup(), Some(Hangup::FlowEnded));
    assert_eq!(call.digits(), "1");
    assert_eq!(call.path(), ["greeting", "main_menu", "sales", "goodbye"]);

    let after: Vec<u8> = audio(&heard[before..]);
    let sales = prompt_bytes(&prompts, "sales");
    let support = prompt_bytes(&prompts, "support");
    let goodbye = prompt_bytes(&prompts, "goodbye");
    assert!(
        contains(&after, &sales[sales.len() / 2..sales.len() / 2 + 800]),
        "sales is heard"
    );
    assert!(
        contains(&after, &goodbye[goodbye.len() / 2..goodbye.len() / 2 + 800]),
        "goodbye is heard"
    );
    assert!(
        !contains(
            &audio(&heard),
            &support[support.len() / 2..support.len() / 2 + 800]
        ),
        "support is not"
    );
    // Barge-in: the sales prompt starts in the next packet slot after the key's end packet.
    // Barge-in: the sales prompt starts in the next packet slot after the digit is known
    // (its first end packet), i.e. no later than one slot after the last end packet.
    let from_key = &heard[key_index..];
    let pos = audio(from_key)
        .windows(3200)
        .position(|w| w == &sales[..3200])
        .expect("the sales prompt from its first 400 ms");
    assert_eq!(pos % 160, 0, "the prompt starts on a packet boundary");
    let sales_at = from_key[pos / 160].at_ms;
    assert!(
        sales_at <= pressed_ms + 20,
        "sales starts at {sales_at} ms, key released at {pressed_ms} ms"
    );
}

#[test]
fn a_silent_caller_is_hung_up_after_the_rtp_timeout_exactly() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, _) = new_call(Duration::from_secs(2), t0);
    call.start(t0);
    let mut heard = Vec::new();
    run_until(&mut call, t0, 1_999, &mut heard);
    assert_eq!(call.hangup(), None, "not before 2000 ms");
    run_until(&mut call, t0, 2_000, &mut heard);
    assert_eq!(call.hangup(), Some(Hangup::RtpTimeout));

    // Any packet from the caller restarts the window.
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, _) = new_call(Duration::from_secs(2), t0);
    call.start(t0);
    let mut heard = Vec::new();
    run_until(&mut call, t0, 1_500, &mut heard);
    let now = t0 + Duration::from_millis(1_500);
    let pkt = hotline_media::rtp::build_packet(8, false, 1, 0, 99, &[0xD5; 160]);
    call.handle_rtp(now, CALLER.parse().unwrap(), &pkt);
    run_until(&mut call, t0, 3_499, &mut heard);
    assert_eq!(call.hangup(), None);
    run_until(&mut call, t0, 3_500, &mut heard);
    assert_eq!(call.hangup(), Some(Hangup::RtpTimeout));
}

#[test]
fn a_held_call_is_not_dead() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, _) = new_call(Duration::from_secs(2), t0);
    call.start(t0);
    let mut heard = Vec::new();
    run_until(&mut call, t0, 1_000, &mut heard);
    let t_hold = t0 + Duration::from_millis(1_000);
    set_now(t_hold);
    call.set_remote(t_hold, None);
    let before = heard.len();
    run_until(&mut call, t0, 10_000, &mut heard);
    assert_eq!(call.hangup(), None);
    assert_eq!(heard.len(), before, "nothing is sent while held");
}

/// T6: the operator holds the bridged call; the caller hears hold music from that very
/// millisecond, paced every 20 ms, and nothing after the operator takes the call back.
#[test]
fn operator_hold_plays_music_to_the_caller_until_resumed() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, prompts) = new_call(Duration::ZERO, t0);
    call.start(t0);
    let mut heard = Vec::new();
    run_until(&mut call, t0, 500, &mut heard);
    // Bridged: the IVR falls silent (the bridge carries the operator's audio).
    let bridged = t0 + Duration::from_millis(500);
    set_now(bridged);
    call.set_bridged(bridged);
    heard.clear();
    run_until(&mut call, t0, 1000, &mut heard);
    assert!(heard.is_empty(), "nothing from the IVR while bridged");
    // The operator holds at 1000 ms and resumes at 3000 ms.
    let hold = t0 + Duration::from_millis(1000);
    set_now(hold);
    call.hold_music(hold, true, "hold-music");
    run_until(&mut call, t0, 2990, &mut heard);
    let resume = t0 + Duration::from_millis(3000);
    set_now(resume);
    call.hold_music(resume, false, "hold-music");
    run_until(&mut call, t0, 6000, &mut heard);
    assert_eq!(heard.first().map(|h| h.at_ms), Some(1000));
    // The packet due at the resume itself still goes (RtpSession::stop sends what is due).
    assert_eq!(heard.last().map(|h| h.at_ms), Some(3000));
    assert_eq!(heard.len(), 101, "2 s of 20 ms packets");
    assert!(heard.windows(2).all(|w| w[1].at_ms - w[0].at_ms == 20));
    let music = prompt_bytes(&prompts, "hold-music");
    assert_eq!(audio(&heard), music[..audio(&heard).len()]);
    assert!(heard[0].marker, "a new talkspurt");
}

/// Digits spoofed from another port of the caller's host, during the menu.
fn spoofed_digit_packets() -> Vec<Vec<u8>> {
    digit_packets(&DigitSend {
        payload_type: 101,
        ssrc: 0xBAD,
        first_seq: 7,
        timestamp: 160_000,
        digit: '1',
        duration_ms: 100,
        volume: 10,
    })
    .unwrap()
}

#[test]
fn a_spoofed_digit_from_another_port_does_not_choose_a_branch() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, prompts) = new_call(Duration::ZERO, t0);
    call.start(t0);
    let mut heard = Vec::new();
    // The caller's phone sends nothing before: even unlatched, another port of the
    // host its SDP named is not the caller.
    let greeting_ms = (prompts["welcome"].encoded(Codec::Pcma).len().div_ceil(160) * 20) as u64;
    let mut t = greeting_ms + 1000;
    run_until(&mut call, t0, t - 1, &mut heard);
    let spoofer: SocketAddr = "192.0.2.10:4002".parse().unwrap();
    for p in &spoofed_digit_packets() {
        run_until(&mut call, t0, t, &mut heard);
        let now = t0 + Duration::from_millis(t);
        set_now(now);
        call.handle_rtp(now, spoofer, p);
        t += 20;
    }
    run_until(&mut call, t0, t + 2_000, &mut heard);
    assert_eq!(call.digits(), "", "the spoofed key was taken");
    assert_eq!(call.path(), ["greeting", "main_menu"]);
    assert_eq!(call.hangup(), None);
}

#[test]
fn packets_from_another_source_do_not_keep_a_dead_call_alive() {
    let t0 = Instant::now();
    set_now(t0);
    let (mut call, _) = new_call(Duration::from_secs(2), t0);
    call.start(t0);
    let mut heard = Vec::new();
    let caller: SocketAddr = CALLER.parse().unwrap();
    let pkt = |seq| hotline_media::rtp::build_packet(8, false, seq, 0, 0xCAFE, &[0xD5; 160]);
    call.handle_rtp(t0, caller, &pkt(1));
    // The caller falls silent at 0 ms; a stranger keeps sending from elsewhere.
    let mut t = 20;
    while t < 3_000 && call.hangup().is_none() {
        run_until(&mut call, t0, t, &mut heard);
        let now = t0 + Duration::from_millis(t);
        set_now(now);
        call.handle_rtp(now, "198.51.100.9:4000".parse().unwrap(), &pkt(t as u16));
        t += 20;
    }
    assert_eq!(call.hangup(), Some(Hangup::RtpTimeout));
    assert!(
        t <= 2_020,
        "hung up at {t} ms, 2000 ms after the caller's last packet"
    );
}
