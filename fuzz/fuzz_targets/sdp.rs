//! An SDP offer: negotiation, and an answer built from what it negotiated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = hotline_sip::sdp::negotiate(text) {
        let answer = hotline_sip::sdp::answer(&n, "192.0.2.10".parse().unwrap(), 20000, 1, 1);
        // Our own answer must be an offer we accept.
        assert!(
            hotline_sip::sdp::negotiate(&answer).is_ok(),
            "our answer does not negotiate: {answer}"
        );
    }
});
