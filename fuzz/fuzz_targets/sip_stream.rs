//! A TCP byte stream cut into reads of fuzzer-chosen sizes: the framer must hand out
//! the same messages however the stream is cut, and never panic.
#![no_main]

use hotline_sip::msg::StreamFramer;
use libfuzzer_sys::fuzz_target;

fn frame(stream: &[u8], cuts: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut f = StreamFramer::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = usize::from(cuts.get(i).copied().unwrap_or(255)).max(1).min(rest.len());
        i += 1;
        f.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match f.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    // The first 16 bytes choose the read sizes, the rest is the stream.
    let (cuts, stream) = data.split_at(data.len().min(16));
    let (pieces, failed) = frame(stream, cuts);
    let (whole, whole_failed) = frame(stream, &[255; 16]);
    if !failed && !whole_failed {
        assert_eq!(pieces, whole, "the messages depend on how the stream was cut");
    }
});
