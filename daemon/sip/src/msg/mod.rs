//! SIP messages (RFC 3261 §7): a small, strict parser and serializer.
//!
//! Parsing happens in two steps so that a broken request can still be
//! answered: [`parse_head`] splits the start line and the unfolded headers,
//! then [`Head::finish`] parses the start line, cuts the body by
//! Content-Length and checks the syntax of every header the stack reads.

mod framer;
mod headers;
pub mod multipart;
pub(crate) mod scan;
mod uri;
mod values;

use std::fmt;

pub use framer::{FrameError, StreamFramer};
pub use headers::{Essentials, Headers};
pub use scan::{Param, Params};
pub use uri::{Scheme, Uri};
pub use values::{CSeq, Contact, MediaType, NameAddr, Via};

use scan::is_token;

/// Why a message was rejected. The text is the reason phrase of the 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Incomplete message")]
    Incomplete,
    #[error("Header section is not UTF-8")]
    NotUtf8,
    #[error("Malformed start line")]
    StartLine,
    #[error("Malformed Request-URI")]
    RequestUri,
    #[error("Invalid status code")]
    StatusCode,
    #[error("Malformed header line")]
    HeaderLine,
    #[error("Malformed {0} header")]
    Header(&'static str),
    #[error("Missing {0} header")]
    Missing(&'static str),
    #[error("Multiple {0} headers")]
    Duplicate(&'static str),
    #[error("Content-Length exceeds the message")]
    Truncated,
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("Malformed URI")]
    Uri,
}

/// Request methods; extension methods are kept by name (case-sensitive, §7.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(String),
}

impl Method {
    const KNOWN: [(Method, &'static str); 14] = [
        (Method::Invite, "INVITE"),
        (Method::Ack, "ACK"),
        (Method::Bye, "BYE"),
        (Method::Cancel, "CANCEL"),
        (Method::Options, "OPTIONS"),
        (Method::Register, "REGISTER"),
        (Method::Info, "INFO"),
        (Method::Update, "UPDATE"),
        (Method::Prack, "PRACK"),
        (Method::Subscribe, "SUBSCRIBE"),
        (Method::Notify, "NOTIFY"),
        (Method::Refer, "REFER"),
        (Method::Message, "MESSAGE"),
        (Method::Publish, "PUBLISH"),
    ];

    pub fn parse(s: &str) -> Method {
        Self::KNOWN
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(m, _)| m.clone())
            .unwrap_or_else(|| Method::Other(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(s) => s,
            known => Self::KNOWN
                .iter()
                .find(|(m, _)| m == known)
                .map_or("", |(_, name)| name),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    /// `SIP/2.0`; other versions parse so they can be answered 505.
    pub version: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

pub const SIP_2_0: &str = "SIP/2.0";

impl Request {
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            version: SIP_2_0.to_string(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The §8.1.1 headers, parsed.
    pub fn essentials(&self) -> Result<Essentials, ParseError> {
        self.headers.essentials()
    }

    /// Wire form; Content-Length is written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} {}", self.method, self.uri, self.version);
        serialize(&start, &self.headers, &self.body)
    }
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Response {
            version: SIP_2_0.to_string(),
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    pub fn essentials(&self) -> Result<Essentials, ParseError> {
        self.headers.essentials()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let start = format!("{} {} {}", self.version, self.status, self.reason);
        serialize(&start, &self.headers, &self.body)
    }
}

impl Message {
    /// Parses one message: a UDP datagram (octets after Content-Length are
    /// ignored, a missing Content-Length means "to the end") or one framed
    /// stream message.
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        parse_head(data)?.finish(data)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn serialize(start: &str, headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(256 + 64 * headers.len());
    out.push_str(start);
    out.push_str("\r\n");
    for (name, value) in headers.iter().filter(|(n, _)| *n != "Content-Length") {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Start line and headers of a message whose body and header syntax have
/// not been checked yet.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) start_line: String,
    pub(crate) headers: Headers,
    body_offset: usize,
    /// The first malformed header line; reported by `finish`.
    defect: Option<ParseError>,
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits the header section into start line and unfolded headers (§7.3.1).
/// Bad header lines are skipped and remembered, so a 400 can still be built.
pub(crate) fn parse_head(data: &[u8]) -> Result<Head, ParseError> {
    let end = find(data, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
    let section = data.get(..end).ok_or(ParseError::Incomplete)?;
    let section = std::str::from_utf8(section).map_err(|_| ParseError::NotUtf8)?;
    let mut lines = section.split("\r\n");
    let start_line = lines.next().unwrap_or_default().to_string();
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut defect = None;
    for line in lines {
        if line.contains(['\r', '\n']) {
            defect.get_or_insert(ParseError::HeaderLine);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation: one SP stands for the line break (§7.3.1).
            let more = line.trim_matches([' ', '\t']);
            match entries.last_mut() {
                Some((_, value)) if value.is_empty() => value.push_str(more),
                Some((_, value)) if !more.is_empty() => {
                    value.push(' ');
                    value.push_str(more);
                }
                Some(_) => {}
                None => {
                    defect.get_or_insert(ParseError::HeaderLine);
                }
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if is_token(name.trim_end_matches([' ', '\t'])) => {
                let name = name.trim_end_matches([' ', '\t']);
                entries.push((
                    name.to_string(),
                    value.trim_matches([' ', '\t']).to_string(),
                ));
            }
            _ => {
                defect.get_or_insert(ParseError::HeaderLine);
            }
        }
    }
    let mut headers = Headers::new();
    for (name, value) in entries {
        headers.push(&name, value);
    }
    Ok(Head {
        start_line,
        headers,
        body_offset: end + 4,
        defect,
    })
}

impl Head {
    pub(crate) fn is_request(&self) -> bool {
        !self
            .start_line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    }

    /// The first word of a request line.
    pub(crate) fn method_token(&self) -> &str {
        self.start_line.split(' ').next().unwrap_or_default()
    }

    pub(crate) fn finish(&self, data: &[u8]) -> Result<Message, ParseError> {
        if let Some(defect) = &self.defect {
            return Err(defect.clone());
        }
        if self.is_request() {
            let (method, uri, version) = parse_request_line(&self.start_line)?;
            let essentials = self.headers.validate()?;
            if essentials.cseq.method != method {
                return Err(ParseError::CSeqMismatch);
            }
            let body = self.body(data)?;
            Ok(Message::Request(Request {
                method,
                uri,
                version,
                headers: self.headers.clone(),
                body,
            }))
        } else {
            let (version, status, reason) = parse_status_line(&self.start_line)?;
            self.headers.validate()?;
            let body = self.body(data)?;
            Ok(Message::Response(Response {
                version,
                status,
                reason,
                headers: self.headers.clone(),
                body,
            }))
        }
    }

    /// The body by Content-Length; without one, the rest of the datagram.
    fn body(&self, data: &[u8]) -> Result<Vec<u8>, ParseError> {
        let rest = data.get(self.body_offset..).unwrap_or_default();
        match self.headers.content_length()? {
            None => Ok(rest.to_vec()),
            Some(n) => rest
                .get(..n)
                .map(<[u8]>::to_vec)
                .ok_or(ParseError::Truncated),
        }
    }
}

/// `SIP/1*DIGIT.1*DIGIT`, upper-cased.
fn parse_version(v: &str) -> Option<String> {
    let (name, num) = v.split_once('/')?;
    let (major, minor) = num.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (name.eq_ignore_ascii_case("SIP") && digits(major) && digits(minor))
        .then(|| format!("SIP/{num}"))
}

/// `Method SP Request-URI SP SIP-Version`, single spaces, nothing else
/// (RFC 4475 lwsstart, trws, lwsruri, ltgtruri).
fn parse_request_line(line: &str) -> Result<(Method, Uri, String), ParseError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine);
    };
    if !is_token(method) {
        return Err(ParseError::StartLine);
    }
    let version = parse_version(version).ok_or(ParseError::StartLine)?;
    let uri = Uri::parse_inner(uri).map_err(|_| ParseError::RequestUri)?;
    // Headers are not allowed in a Request-URI (§19.1.1 table; RFC 4475 escruri).
    if uri.is_sip() && !uri.headers().is_empty() {
        return Err(ParseError::RequestUri);
    }
    Ok((Method::parse(method), uri, version))
}

/// `SIP-Version SP 3DIGIT SP Reason-Phrase`.
fn parse_status_line(line: &str) -> Result<(String, u16, String), ParseError> {
    let (version, rest) = line.split_once(' ').ok_or(ParseError::StartLine)?;
    let version = parse_version(version).ok_or(ParseError::StartLine)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::StatusCode);
    }
    let status: u16 = code.parse().map_err(|_| ParseError::StatusCode)?;
    if !(100..=699).contains(&status) || reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::StatusCode);
    }
    Ok((version, status, reason.to_string()))
}

/// A reason phrase safe to put on a status line.
pub(crate) fn sanitize_reason(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
