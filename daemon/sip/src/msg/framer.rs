//! Splitting a TCP byte stream into messages by Content-Length (§18.3).

use super::{find, parse_head};

/// Larger header sections are an attack or a broken peer.
const MAX_HEADER_SECTION: usize = 64 * 1024;
/// Bodies the endpoint handles (SDP, DTMF, multipart) are a few KiB.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message without Content-Length on a stream")]
    MissingContentLength,
    #[error("malformed header section or Content-Length")]
    Malformed,
    #[error("header section larger than 64 KiB")]
    HeaderTooLarge,
    #[error("body larger than 1 MiB")]
    BodyTooLarge,
}

/// Buffers stream bytes and hands out whole messages. After an error the
/// stream cannot be resynchronised: the driver closes the connection.
///
/// A message's header section is parsed once: while its body trickles in, each
/// read only compares lengths, and the search for the header's end resumes where
/// the last one stopped, so a slow peer costs time linear in what it sends.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for the end of the header section.
    searched: usize,
    /// The current message's whole length, once its header section is parsed.
    message_len: Option<usize>,
    /// Header sections parsed so far (what the tests check).
    heads_parsed: usize,
}

impl StreamFramer {
    pub fn new() -> Self {
        StreamFramer::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// True while part of a message is buffered (for the header-read and body timeouts).
    pub fn is_mid_message(&self) -> bool {
        !self.buf.is_empty()
    }

    /// `Ok(Some(message))` when one is complete; CRLF keep-alives (RFC 5626
    /// §3.5.1) between messages are skipped.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let total = match self.message_len {
            Some(total) => total,
            None => match self.parse_head()? {
                Some(total) => total,
                None => return Ok(None),
            },
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        self.message_len = None;
        self.searched = 0;
        Ok(Some(self.buf.drain(..total).collect()))
    }

    /// The whole length of the message at the front, once its header section is in.
    fn parse_head(&mut self) -> Result<Option<usize>, FrameError> {
        let blank = self.buf.chunks(2).take_while(|c| *c == b"\r\n").count();
        self.buf.drain(..blank * 2);
        self.searched = self.searched.saturating_sub(blank * 2);
        // The terminator may straddle what was searched and what is new.
        let from = self.searched.saturating_sub(3);
        let Some(end) =
            find(self.buf.get(from..).unwrap_or_default(), b"\r\n\r\n").map(|i| i + from)
        else {
            self.searched = self.buf.len();
            if self.buf.len() > MAX_HEADER_SECTION {
                return Err(FrameError::HeaderTooLarge);
            }
            return Ok(None);
        };
        if end > MAX_HEADER_SECTION {
            return Err(FrameError::HeaderTooLarge);
        }
        let head_len = end + 4;
        self.heads_parsed += 1;
        let head = parse_head(self.buf.get(..head_len).unwrap_or_default())
            .map_err(|_| FrameError::Malformed)?;
        let length = match head.headers.content_length() {
            Ok(Some(n)) => n,
            Ok(None) => return Err(FrameError::MissingContentLength),
            Err(_) => return Err(FrameError::Malformed),
        };
        if length > MAX_BODY {
            return Err(FrameError::BodyTooLarge);
        }
        self.message_len = Some(head_len + length);
        Ok(self.message_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_messages_split_anywhere() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(MSG);
        for split in 0..stream.len() {
            let mut f = StreamFramer::new();
            let mut got = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                f.push(part);
                while let Some(m) = f.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![MSG.to_vec(), MSG.to_vec()], "split at {split}");
        }
    }

    #[test]
    fn a_trickling_body_does_not_reparse_the_header() {
        let head = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 4000\r\n\r\n";
        let mut f = StreamFramer::new();
        // The header section a byte at a time, then the body a byte at a time.
        for b in head.iter() {
            f.push(&[*b]);
            assert_eq!(f.next_message(), Ok(None));
            assert!(f.is_mid_message());
        }
        for _ in 0..3999 {
            f.push(b"x");
            assert_eq!(f.next_message(), Ok(None));
        }
        f.push(b"x");
        let m = f.next_message().unwrap().unwrap();
        assert_eq!(m.len(), head.len() + 4000);
        assert_eq!(f.heads_parsed, 1, "the header section was parsed once");
        assert!(!f.is_mid_message());
        // The next message starts clean.
        f.push(MSG);
        assert_eq!(f.next_message(), Ok(Some(MSG.to_vec())));
        assert_eq!(f.heads_parsed, 2);
    }

    #[test]
    fn unframeable_streams() {
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::MissingContentLength));
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::Malformed));
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_HEADER_SECTION + 1]);
        assert_eq!(f.next_message(), Err(FrameError::HeaderTooLarge));
        let mut f = StreamFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::BodyTooLarge));
    }
}
