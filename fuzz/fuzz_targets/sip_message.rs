//! One datagram: the message parser, its round trip, and the whole endpoint
//! (transactions, dialogs, registrar, digest, SDP) receiving it over UDP.
#![no_main]

use std::time::{Duration, Instant};

use hotline_sip::msg::Message;
use hotline_sip::{Endpoint, EndpointConfig, Peer, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let _ = match &msg {
            Message::Request(r) => r.essentials().map(|_| ()),
            Message::Response(r) => r.essentials().map(|_| ()),
        };
        // What we print we can read back.
        let again = msg.to_bytes();
        assert!(
            Message::parse(&again).is_ok(),
            "a parsed message printed unparseable"
        );
    }
    let cfg = EndpointConfig::default();
    let credential = hotline_sip::Credential::from_password("1001", &cfg.realm, "secret");
    let mut ep = Endpoint::new(cfg);
    ep.set_credentials("1001", Some(credential));
    let t0 = Instant::now();
    let from = Peer {
        transport: Transport::Udp,
        addr: "192.0.2.1:5060".parse().unwrap(),
    };
    ep.handle_input(t0, from, data);
    while ep.poll_event().is_some() {}
    while ep.poll_transmit().is_some() {}
    ep.handle_timeout(t0 + Duration::from_secs(64));
    while ep.poll_event().is_some() {}
    while ep.poll_transmit().is_some() {}
});
