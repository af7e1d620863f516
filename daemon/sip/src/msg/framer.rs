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
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn new() -> Self {
        StreamFramer::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// `Ok(Some(message))` when one is complete; CRLF keep-alives (RFC 5626
    /// §3.5.1) between messages are skipped.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let blank = self.buf.chunks(2).take_while(|c| *c == b"\r\n").count();
        self.buf.drain(..blank * 2);
        let Some(end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEADER_SECTION {
                return Err(FrameError::HeaderTooLarge);
            }
            return Ok(None);
        };
        if end > MAX_HEADER_SECTION {
            return Err(FrameError::HeaderTooLarge);
        }
        let head_len = end + 4;
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
        let total = head_len + length;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(self.buf.drain(..total).collect()))
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
