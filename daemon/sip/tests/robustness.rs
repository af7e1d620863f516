//! Fuzz-ish robustness: truncated and mutated torture messages, fed over UDP
//! and through the TCP framer, never panic, and whatever goes out is a
//! response.

// Test helpers may unwrap (clippy only exempts #[test] functions).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotline_sip::msg::StreamFramer;
use hotline_sip::{Endpoint, EndpointConfig, Peer, Transport};

fn torture_messages() -> Vec<(String, Vec<u8>)> {
    let dir = match std::env::var_os("HOTLINE_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("conformance/rfc4475"),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/conformance/rfc4475"
        )),
    };
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "RFC 4475 torture messages not found in {}: {e}; set HOTLINE_SHARED_DIR",
            dir.display()
        )
    });
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert_eq!(
        out.len(),
        49,
        "torture messages missing in {}",
        dir.display()
    );
    out
}

/// xorshift64*: deterministic, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that matter to the parser, to make mutations land somewhere.
const INTERESTING: &[u8] = b"\r\n \t:;,=<>\"\\@?%/[]0\xff\x00*";

fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut m = data.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(m.len());
        match rng.below(6) {
            0 => m[at] = rng.next() as u8,
            1 => m[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => m[at] ^= 1 << rng.below(8),
            3 => {
                m.remove(at.min(m.len().saturating_sub(1)));
            }
            4 => m.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            _ => {
                // Duplicate a slice, e.g. a header line.
                let len = rng.below(40).min(m.len() - at);
                let slice = m[at..at + len].to_vec();
                let to = rng.below(m.len());
                m.splice(to..to, slice);
            }
        }
        if m.is_empty() {
            break;
        }
    }
    m
}

fn udp() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "192.0.2.1:5060".parse().unwrap(),
    }
}

fn tcp() -> Peer {
    Peer {
        transport: Transport::Tcp,
        addr: "192.0.2.1:40000".parse().unwrap(),
    }
}

/// Drains the endpoint; everything sent must at least be a SIP message we
/// could have meant, and the daemon's commands must not break on fuzzed calls.
fn drain(ep: &mut Endpoint, now: Instant) {
    while let Some(t) = ep.poll_transmit() {
        assert!(
            t.data.starts_with(b"SIP/2.0 ") || t.data.starts_with(b"BYE "),
            "{:?}",
            String::from_utf8_lossy(&t.data)
        );
    }
    while let Some(ev) = ep.poll_event() {
        if let hotline_sip::Event::IncomingCall { call, .. } = ev {
            ep.ringing(now, call);
            ep.answer(now, call, "v=0\r\n");
            ep.hangup(now, call);
        }
    }
}

#[test]
fn truncations_never_panic() {
    let now = Instant::now();
    for (name, data) in torture_messages() {
        let mut ep = Endpoint::new(EndpointConfig::default());
        for len in 0..=data.len() {
            ep.handle_input(now, udp(), &data[..len]);
            ep.handle_input(now, tcp(), &data[..len]);
            drain(&mut ep, now);
        }
        let _ = name;
    }
}

#[test]
fn mutations_never_panic() {
    let t0 = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, data) in torture_messages() {
        let mut ep = Endpoint::new(EndpointConfig::default());
        let mut now = t0;
        for _ in 0..400 {
            let m = mutate(&mut rng, &data);
            ep.handle_input(now, udp(), &m);
            drain(&mut ep, now);
            now += Duration::from_millis(rng.below(200) as u64);
            ep.handle_timeout(now);
            drain(&mut ep, now);
        }
        // Let every timer run out: nothing is left pending forever except
        // calls waiting for the daemon, which the fuzz loop always ended.
        for _ in 0..10_000 {
            let Some(at) = ep.poll_timeout() else { break };
            ep.handle_timeout(at);
            drain(&mut ep, at);
        }
        assert_eq!(ep.poll_timeout(), None);
        assert_eq!(ep.active_calls(), 0);
    }
}

#[test]
fn the_framer_survives_mutated_streams() {
    let mut rng = Rng(42);
    let messages = torture_messages();
    for _ in 0..300 {
        let mut stream = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let (_, data) = &messages[rng.below(messages.len())];
            stream.extend_from_slice(&mutate(&mut rng, data));
        }
        let mut framer = StreamFramer::new();
        let mut ep = Endpoint::new(EndpointConfig::default());
        let now = Instant::now();
        let mut rest = &stream[..];
        'feed: while !rest.is_empty() {
            let n = 1 + rng.below(200).min(rest.len() - 1);
            framer.push(&rest[..n]);
            rest = &rest[n..];
            loop {
                match framer.next_message() {
                    Ok(Some(m)) => {
                        ep.handle_input(now, tcp(), &m);
                        drain(&mut ep, now);
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }
}
