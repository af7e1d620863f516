//! Building responses (§8.2.6) and choosing where they go (§18.2.2, RFC 3581).

use std::net::{IpAddr, SocketAddr};

use crate::dialog::with_tag;
use crate::msg::{Headers, Response, Via, sanitize_reason};
use crate::transaction::{Kind, Outgoing};
use crate::{Peer, Transport};

/// A response the UAS core wants sent; the request supplies the rest.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub reason: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<(&'static str, Vec<u8>)>,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply {
            status,
            reason: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A reason phrase that names the problem, instead of the standard one.
    pub fn reason(mut self, reason: impl AsRef<str>) -> Self {
        self.reason = Some(sanitize_reason(reason.as_ref()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type, body.into()));
        self
    }
}

/// Builds `reply` to a request with headers `req` that came from `source`.
/// Via, From, Call-ID and CSeq are copied; To gets `to_tag` unless it has
/// one (none for 100 Trying). Works on unvalidated headers too, so broken
/// requests can get their 400: an unreadable Via is copied as is and the
/// response goes back to the source.
pub(crate) fn build(
    req: &Headers,
    source: Peer,
    to_tag: Option<&str>,
    server: &str,
    reply: Reply,
) -> Outgoing {
    let reason = reply
        .reason
        .unwrap_or_else(|| reason_phrase(reply.status).to_string());
    let mut resp = Response::new(reply.status, reason);
    let h = &mut resp.headers;
    let to = match req.via() {
        Ok(mut vias) if !vias.is_empty() => {
            let to = vias
                .first_mut()
                .map_or(source, |top| stamp_and_route(top, source));
            for v in vias {
                h.push("Via", v.to_string());
            }
            to
        }
        _ => {
            for v in req.get_all("Via") {
                h.push("Via", v);
            }
            source
        }
    };
    if let Some(from) = req.get("From") {
        h.push("From", from);
    }
    if let Some(to) = req.get("To") {
        h.push(
            "To",
            to_tag.map_or_else(|| to.to_string(), |tag| with_tag(to, tag)),
        );
    }
    for name in ["Call-ID", "CSeq"] {
        if let Some(v) = req.get(name) {
            h.push(name, v);
        }
    }
    if reply.status == 100 {
        // §8.2.6.1
        if let Some(ts) = req.get("Timestamp") {
            h.push("Timestamp", ts);
        }
    }
    for (name, value) in reply.headers {
        h.push(name, value);
    }
    h.push("Server", server);
    if let Some((content_type, body)) = reply.body {
        h.push("Content-Type", content_type);
        resp.body = body;
    }
    Outgoing {
        to,
        data: resp.to_bytes(),
        kind: Kind::Response(reply.status),
    }
}

/// Adds `received`/`rport` to the top Via and returns where the response
/// goes: the connection it came on (TCP), else the source address with
/// the port from `rport` (RFC 3581) or sent-by (§18.2.2).
fn stamp_and_route(top: &mut Via, source: Peer) -> Peer {
    let ip = source.addr.ip();
    let wants_rport = top.rport() == Some(None);
    let host_ip = top
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    // RFC 3581 §4: with rport, received is added even when equal.
    if host_ip != Some(ip) || wants_rport {
        top.params.set("received", Some(ip.to_string()));
    }
    if wants_rport {
        top.params
            .set("rport", Some(source.addr.port().to_string()));
    }
    match source.transport {
        Transport::Tcp => source,
        Transport::Udp => {
            let port = if wants_rport {
                source.addr.port()
            } else {
                top.port.unwrap_or(5060)
            };
            Peer {
                transport: Transport::Udp,
                addr: SocketAddr::new(ip, port),
            }
        }
    }
}

pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Message;

    fn peer(t: Transport, a: &str) -> Peer {
        Peer {
            transport: t,
            addr: a.parse().unwrap(),
        }
    }

    fn headers(via: &str) -> Headers {
        let text = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy.example.com\r\nFrom: <sip:c@d>;tag=1\r\n\
To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        let Message::Request(r) = Message::parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        r.headers
    }

    fn top_via(out: &Outgoing) -> String {
        let Message::Response(r) = Message::parse(&out.data).unwrap() else {
            panic!()
        };
        r.headers.get("Via").unwrap().to_string()
    }

    #[test]
    fn received_and_sent_by_port() {
        let src = peer(Transport::Udp, "192.0.2.1:40000");
        let out = build(
            &headers("SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK1"),
            src,
            Some("t"),
            "H",
            Reply::new(200),
        );
        assert_eq!(out.to, peer(Transport::Udp, "192.0.2.1:5070"));
        assert_eq!(
            top_via(&out),
            "SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK1;received=192.0.2.1"
        );
        let out = build(
            &headers("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
            src,
            Some("t"),
            "H",
            Reply::new(200),
        );
        assert_eq!(out.to, peer(Transport::Udp, "192.0.2.1:5060"));
        assert_eq!(
            top_via(&out),
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
            "no received when equal"
        );
    }

    #[test]
    fn rport_sends_back_to_the_source_port() {
        let src = peer(Transport::Udp, "192.0.2.1:40000");
        let out = build(
            &headers("SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK1"),
            src,
            None,
            "H",
            Reply::new(100),
        );
        assert_eq!(out.to, src);
        assert_eq!(
            top_via(&out),
            "SIP/2.0/UDP 10.0.0.2:5060;rport=40000;branch=z9hG4bK1;received=192.0.2.1"
        );
    }

    #[test]
    fn tcp_goes_back_on_the_connection() {
        let src = peer(Transport::Tcp, "192.0.2.1:40000");
        let out = build(
            &headers("SIP/2.0/TCP host.example.com;branch=z9hG4bK1"),
            src,
            None,
            "H",
            Reply::new(200),
        );
        assert_eq!(out.to, src);
    }

    #[test]
    fn copies_headers_and_tags_to() {
        let src = peer(Transport::Udp, "192.0.2.1:5060");
        let out = build(
            &headers("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
            src,
            Some("tt"),
            "Hotline/1",
            Reply::new(415)
                .header("Accept", "application/sdp")
                .reason("Bad\r\nthing"),
        );
        let text = String::from_utf8(out.data).unwrap();
        assert!(text.starts_with("SIP/2.0 415 Bad  thing\r\n"), "{text}");
        for line in [
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n",
            "Via: SIP/2.0/UDP proxy.example.com\r\n",
            "From: <sip:c@d>;tag=1\r\n",
            "To: <sip:a@b>;tag=tt\r\n",
            "Call-ID: x\r\n",
            "CSeq: 1 OPTIONS\r\n",
            "Accept: application/sdp\r\n",
            "Server: Hotline/1\r\n",
            "Content-Length: 0\r\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from {text}");
        }
    }
}
