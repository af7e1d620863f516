//! Fuzz-ish robustness: truncated and mutated torture messages, fed over UDP
//! and through the TCP framer, never panic, and whatever goes out is a
//! response.

// Test helpers may unwrap (clippy only exempts #[test] functions).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hotline_sip::msg::{Message, StreamFramer};
use hotline_sip::{
    Credential, Endpoint, EndpointConfig, Event, OutgoingCall, Peer, RateLimit, Transport,
};

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

/// Not trusted: its INVITEs and REGISTERs go through digest authentication.
fn stranger() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "203.0.113.1:5060".parse().unwrap(),
    }
}

/// 192.0.2.1 is the trusted trunk, so fuzzed INVITEs reach the call paths;
/// `stranger()` exercises authentication. No rate limit: the fuzz loops
/// send thousands of requests at one instant.
fn endpoint() -> Endpoint {
    let mut ep = Endpoint::new(EndpointConfig {
        trusted_sources: vec![udp().addr.ip().into()],
        rate_limit: None,
        ..Default::default()
    });
    ep.set_credentials(
        "alice",
        Some(Credential::from_password("alice", "hotline", "secret")),
    );
    ep
}

/// Drains the endpoint; everything sent must at least be a SIP message we
/// could have meant, and the daemon's commands must not break on fuzzed calls.
fn drain(ep: &mut Endpoint, now: Instant) {
    while let Some(t) = ep.poll_transmit() {
        assert!(
            [&b"SIP/2.0 "[..], b"BYE ", b"ACK ", b"CANCEL ", b"INVITE "]
                .iter()
                .any(|p| t.data.starts_with(p)),
            "{:?}",
            String::from_utf8_lossy(&t.data)
        );
    }
    while let Some(ev) = ep.poll_event() {
        match ev {
            Event::IncomingCall { call, .. } => {
                ep.ringing(now, call);
                ep.answer(now, call, "v=0\r\n");
                ep.hangup(now, call);
            }
            Event::OutgoingAnswered { call, .. } | Event::OutgoingProgress { call, .. } => {
                ep.hangup(now, call)
            }
            _ => {}
        }
    }
}

#[test]
fn truncations_never_panic() {
    let now = Instant::now();
    for (name, data) in torture_messages() {
        let mut ep = endpoint();
        for len in 0..=data.len() {
            ep.handle_input(now, udp(), &data[..len]);
            ep.handle_input(now, tcp(), &data[..len]);
            ep.handle_input(now, stranger(), &data[..len]);
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
        let mut ep = endpoint();
        let mut now = t0;
        for i in 0..400 {
            let m = mutate(&mut rng, &data);
            let from = if i % 4 == 0 { stranger() } else { udp() };
            ep.handle_input(now, from, &m);
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
        let mut ep = endpoint();
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

/// Responses to a call we placed, mutated: the UAC side never panics and
/// every call ends.
#[test]
fn mutated_responses_to_our_invites_never_panic() {
    let t0 = Instant::now();
    let mut rng = Rng(7);
    let trunk = Peer {
        transport: Transport::Udp,
        addr: "198.51.100.5:5060".parse().unwrap(),
    };
    let mut ep = Endpoint::new(EndpointConfig {
        rate_limit: Some(RateLimit {
            per_second: 5,
            burst: 5,
        }),
        ..Default::default()
    });
    let mut now = t0;
    let mut calls = Vec::new();
    for round in 0..200u32 {
        let call = ep.invite(
            now,
            OutgoingCall {
                request_uri: "sip:+3612345678@198.51.100.5".into(),
                to: trunk,
                from_user: "100".into(),
                from_display: None,
                sdp: "v=0\r\n".into(),
                credentials: Some(("u".into(), "p".into())),
                headers: Vec::new(),
            },
        );
        calls.push(call);
        let Some(t) = ep.poll_transmit() else {
            continue;
        };
        let Ok(Message::Request(inv)) = Message::parse(&t.data) else {
            panic!("we sent something unreadable")
        };
        for status in [100u16, 180, 183, 200, 407, 486][..1 + round as usize % 6].iter() {
            let h = &inv.headers;
            let mut text = format!("SIP/2.0 {status} X\r\n");
            for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                let v = h.get(name).unwrap();
                let v = if name == "To" {
                    format!("{v};tag=t{round}")
                } else {
                    v.to_string()
                };
                text.push_str(&format!("{name}: {v}\r\n"));
            }
            text.push_str("Contact: <sip:x@198.51.100.5>\r\n");
            text.push_str("Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"\r\n");
            text.push_str("Content-Length: 0\r\n\r\n");
            let m = mutate(&mut rng, text.as_bytes());
            ep.handle_input(now, trunk, &m);
            ep.handle_input(now, trunk, text.as_bytes());
            drain(&mut ep, now);
        }
        now += Duration::from_millis(rng.below(300) as u64);
        ep.handle_timeout(now);
        drain(&mut ep, now);
    }
    // The daemon's ring timeout: whatever still rings is hung up.
    for call in calls {
        ep.hangup(now, call);
    }
    drain(&mut ep, now);
    for _ in 0..10_000 {
        let Some(at) = ep.poll_timeout() else { break };
        ep.handle_timeout(at);
        drain(&mut ep, at);
    }
    assert_eq!(ep.poll_timeout(), None);
    assert_eq!(ep.active_calls(), 0);
}
