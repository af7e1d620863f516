//! Finding one body part in a `multipart/*` body (RFC 2046 §5.1), e.g. the
//! SDP next to ISUP in a SIP-I INVITE.

use super::find;
use super::values::MediaType;

/// The content of the first part whose Content-Type is `kind/subtype`.
pub fn find_part<'a>(
    body: &'a [u8],
    boundary: &str,
    kind: &str,
    subtype: &str,
) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    // The preamble ends at the first delimiter; each part ends at CRLF + delimiter.
    let start = find(rest, delimiter.as_bytes())?;
    rest = rest.get(start + delimiter.len()..)?;
    let separator = format!("\r\n--{boundary}");
    loop {
        if rest.starts_with(b"--") {
            return None; // close delimiter
        }
        // Transport padding up to the CRLF after the delimiter.
        let line_end = find(rest, b"\r\n")?;
        rest = rest.get(line_end + 2..)?;
        let end = find(rest, separator.as_bytes())?;
        let part = rest.get(..end)?;
        if let Some(content) = matching_content(part, kind, subtype) {
            return Some(content);
        }
        rest = rest.get(end + separator.len()..)?;
    }
}

fn matching_content<'a>(part: &'a [u8], kind: &str, subtype: &str) -> Option<&'a [u8]> {
    // A part with no headers starts with the blank line directly.
    let (head, content) = if part.starts_with(b"\r\n") {
        (&b""[..], part.get(2..)?)
    } else {
        let split = find(part, b"\r\n\r\n")?;
        (part.get(..split)?, part.get(split + 4..)?)
    };
    let head = std::str::from_utf8(head).ok()?;
    let matches = head.split("\r\n").any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            let name = name.trim();
            (name.eq_ignore_ascii_case("Content-Type") || name.eq_ignore_ascii_case("c"))
                && MediaType::parse(value).is_ok_and(|m| m.is(kind, subtype))
        })
    });
    matches.then_some(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_sdp_part() {
        let body =
            b"preamble\r\n--b1\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--b1\r\n\
Content-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1--\r\n";
        assert_eq!(
            find_part(body, "b1", "application", "sdp"),
            Some(&b"v=0\r\n"[..])
        );
        assert_eq!(find_part(body, "b1", "text", "plain"), None);
        assert_eq!(find_part(b"--b1\r\n", "b1", "application", "sdp"), None);
        assert_eq!(find_part(b"", "b1", "application", "sdp"), None);
    }
}
