//! SDP offer/answer for one audio stream (RFC 4566, RFC 3264).
//!
//! We answer G.711 (PCMU/PCMA) plus RFC 4733 telephone-event. Every other
//! m-line of the offer is rejected with port 0, as §6 requires the answer to
//! keep the offer's m-lines.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
}

impl Codec {
    fn rtpmap_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// What the answerer says to this offered direction (RFC 3264 §6.1).
    pub fn mirrored(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    fn from_attribute(a: &str) -> Option<Direction> {
        match a {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// One m-line of the offer, as the answer must repeat it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MLine {
    /// The audio stream we took.
    Chosen,
    /// Answered with port 0.
    Rejected {
        media: String,
        proto: String,
        fmt: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_rtp: SocketAddr,
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// The offerer's direction.
    pub direction: Direction,
    /// The offer's m-lines in order, so the answer has the same ones.
    pub m_lines: Vec<MLine>,
}

impl Negotiated {
    /// The offerer holds the call: `c=0.0.0.0` (RFC 2543 style), sendonly or inactive.
    pub fn is_hold(&self) -> bool {
        self.remote_rtp.ip().is_unspecified()
            || matches!(self.direction, Direction::SendOnly | Direction::Inactive)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    #[error("no common codec")]
    NoCommonCodec,
}

/// One `m=` section of the offer.
struct Media<'a> {
    media: &'a str,
    port: u16,
    proto: &'a str,
    fmts: Vec<&'a str>,
    connection: Option<IpAddr>,
    direction: Option<Direction>,
    /// `(payload type, encoding name, clock rate)` from a=rtpmap.
    rtpmap: Vec<(u8, &'a str, &'a str)>,
}

/// Picks the first of the offerer's formats we support in the first usable
/// audio stream.
pub fn negotiate(offer: &str) -> Result<Negotiated, SdpError> {
    let mut lines = offer
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty());
    if lines.next() != Some("v=0") {
        return Err(SdpError::Malformed("first line is not v=0"));
    }
    let (mut session_c, mut session_dir) = (None, None);
    let (mut has_o, mut has_s) = (false, false);
    let mut media: Vec<Media<'_>> = Vec::new();
    for line in lines {
        let (kind, value) = line
            .split_once('=')
            .ok_or(SdpError::Malformed("line without ="))?;
        if kind.len() != 1 || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(SdpError::Malformed("bad line type"));
        }
        match (kind, media.last_mut()) {
            ("m", _) => media.push(parse_m(value)?),
            ("o", None) => has_o = true,
            ("s", None) => has_s = true,
            ("c", None) => session_c = Some(parse_c(value)?),
            ("c", Some(m)) => m.connection = Some(parse_c(value)?),
            ("a", None) => session_dir = Direction::from_attribute(value).or(session_dir),
            ("a", Some(m)) => {
                if let Some(d) = Direction::from_attribute(value) {
                    m.direction = Some(d);
                } else if let Some(map) = value.strip_prefix("rtpmap:").and_then(parse_rtpmap) {
                    m.rtpmap.push(map);
                }
            }
            _ => {}
        }
    }
    if !has_o || !has_s {
        return Err(SdpError::Malformed("missing o= or s="));
    }
    if media.is_empty() {
        return Err(SdpError::Malformed("no m= line"));
    }
    let mut chosen = None;
    for (i, m) in media.iter().enumerate() {
        if chosen.is_some()
            || m.media != "audio"
            || m.port == 0
            || !m.proto.eq_ignore_ascii_case("RTP/AVP")
        {
            continue;
        }
        if let Some((codec, pt)) = m.fmts.iter().find_map(|f| supported_codec(m, f)) {
            let ip = m
                .connection
                .or(session_c)
                .ok_or(SdpError::Malformed("no c= line"))?;
            chosen = Some((i, codec, pt, ip));
        }
    }
    let (index, codec, payload_type, ip) = chosen.ok_or(SdpError::NoCommonCodec)?;
    let Some(m) = media.get(index) else {
        return Err(SdpError::NoCommonCodec);
    };
    let telephone_event = m
        .rtpmap
        .iter()
        .find(|(pt, name, rate)| {
            name.eq_ignore_ascii_case("telephone-event")
                && *rate == "8000"
                && m.fmts.contains(&pt.to_string().as_str())
        })
        .map(|(pt, _, _)| *pt);
    let m_lines = media
        .iter()
        .enumerate()
        .map(|(i, m)| match i == index {
            true => MLine::Chosen,
            false => MLine::Rejected {
                media: m.media.to_string(),
                proto: m.proto.to_string(),
                fmt: m.fmts.first().map_or("0", |f| f).to_string(),
            },
        })
        .collect();
    Ok(Negotiated {
        remote_rtp: SocketAddr::new(ip, m.port),
        codec,
        payload_type,
        telephone_event,
        direction: m.direction.or(session_dir).unwrap_or(Direction::SendRecv),
        m_lines,
    })
}

fn parse_m(value: &str) -> Result<Media<'_>, SdpError> {
    let mut parts = value.split(' ');
    let (Some(media), Some(port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SdpError::Malformed("short m= line"));
    };
    let fmts: Vec<&str> = parts.collect();
    // `port/number-of-ports` is legal; we only use the first.
    let port = port.split('/').next().unwrap_or_default();
    let port = port
        .parse::<u16>()
        .map_err(|_| SdpError::Malformed("bad m= port"))?;
    // Tokens are visible characters (RFC 8866 §9): rejected m-lines are echoed in our
    // answer, and a control character there would break (or add) lines in it.
    let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
    if !token(media) || !token(proto) || fmts.is_empty() || !fmts.iter().all(|f| token(f)) {
        return Err(SdpError::Malformed("bad m= line"));
    }
    Ok(Media {
        media,
        port,
        proto,
        fmts,
        connection: None,
        direction: None,
        rtpmap: Vec::new(),
    })
}

/// `c=IN IP4 192.0.2.1` (a multicast `/ttl` suffix is dropped).
fn parse_c(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split(' ');
    let (Some("IN"), Some(family), Some(addr), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SdpError::Malformed("bad c= line"));
    };
    let addr = addr.split('/').next().unwrap_or_default();
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| SdpError::Malformed("c= address is not an IP address"))?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(SdpError::Malformed("bad c= address type")),
    }
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]`. One we can't read (RFC 4475
/// has `a=rtpmap:31 LPC`) describes nothing we could use, so it is skipped.
fn parse_rtpmap(value: &str) -> Option<(u8, &str, &str)> {
    let (pt, encoding) = value.split_once(' ')?;
    let mut enc = encoding.trim().split('/');
    Some((pt.parse().ok()?, enc.next()?, enc.next()?))
}

/// PCMU/PCMA by static payload type, or by rtpmap name at any payload type.
fn supported_codec(m: &Media<'_>, fmt: &str) -> Option<(Codec, u8)> {
    let pt: u8 = fmt.parse().ok().filter(|pt| *pt < 128)?;
    let by_map = m
        .rtpmap
        .iter()
        .find(|(p, _, _)| *p == pt)
        .map(|(_, name, rate)| (*name, *rate));
    let codec = match by_map {
        Some((name, "8000")) if name.eq_ignore_ascii_case("PCMU") => Codec::Pcmu,
        Some((name, "8000")) if name.eq_ignore_ascii_case("PCMA") => Codec::Pcma,
        Some(_) => return None,
        None if pt == 0 => Codec::Pcmu,
        None if pt == 8 => Codec::Pcma,
        None => return None,
    };
    Some((codec, pt))
}

/// Our answer: the chosen codec and telephone-event at the offer's payload
/// types, ptime 20, the direction mirrored; other m-lines rejected.
pub fn answer(
    n: &Negotiated,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
) -> String {
    let family = if local_ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::new();
    // `write!` to a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=hotline {session_id} {version} IN {family} {local_ip}\r\ns=-\r\nc=IN {family} {local_ip}\r\nt=0 0\r\n"
    );
    let chosen = [MLine::Chosen];
    let m_lines = if n.m_lines.is_empty() {
        &chosen[..]
    } else {
        &n.m_lines[..]
    };
    for m in m_lines {
        match m {
            MLine::Rejected { media, proto, fmt } => {
                let _ = write!(s, "m={media} 0 {proto} {fmt}\r\n");
            }
            MLine::Chosen => write_audio(&mut s, n, local_port),
        }
    }
    s
}

/// An offer for a second leg that carries the first leg's media unchanged: the same
/// codec and payload types (so a bridge needs no transcoding), sendrecv.
pub fn offer(
    first_leg: &Negotiated,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
) -> String {
    let n = Negotiated {
        direction: Direction::SendRecv,
        m_lines: Vec::new(),
        ..first_leg.clone()
    };
    answer(&n, local_ip, local_port, session_id, version)
}

fn write_audio(s: &mut String, n: &Negotiated, port: u16) {
    let pt = n.payload_type;
    let _ = match n.telephone_event {
        Some(te) => write!(s, "m=audio {port} RTP/AVP {pt} {te}\r\n"),
        None => write!(s, "m=audio {port} RTP/AVP {pt}\r\n"),
    };
    let _ = write!(s, "a=rtpmap:{pt} {}/8000\r\n", n.codec.rtpmap_name());
    if let Some(te) = n.telephone_event {
        let _ = write!(
            s,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        );
    }
    let _ = write!(
        s,
        "a=ptime:20\r\na={}\r\n",
        n.direction.mirrored().attribute()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=-\r\n\
c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\nm=video 51372 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n";

    #[test]
    fn an_offer_for_the_second_leg_keeps_the_first_legs_payload_types() {
        let mut n = negotiate(OFFER).unwrap();
        n.direction = Direction::SendOnly;
        let offer = offer(&n, "192.0.2.99".parse().unwrap(), 30000, 7, 1);
        assert!(offer.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{offer}");
        assert!(offer.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(offer.contains("a=sendrecv\r\n"));
        assert!(
            !offer.contains("m=video"),
            "only the bridged stream is offered"
        );
        let back = negotiate(&offer).unwrap();
        assert_eq!((back.payload_type, back.telephone_event), (8, Some(101)));
    }

    #[test]
    fn picks_the_offerers_first_supported_codec() {
        let n = negotiate(OFFER).unwrap();
        assert_eq!(n.remote_rtp, "192.0.2.10:49170".parse().unwrap());
        assert_eq!(
            (n.codec, n.payload_type, n.telephone_event),
            (Codec::Pcma, 8, Some(101))
        );
        assert_eq!(n.direction, Direction::SendRecv);
        assert!(!n.is_hold());
    }

    #[test]
    fn answer_keeps_the_offers_m_lines() {
        let n = negotiate(OFFER).unwrap();
        let a = answer(&n, "192.0.2.1".parse().unwrap(), 30000, 7, 1);
        assert_eq!(
            a,
            "v=0\r\no=hotline 7 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\nm=video 0 RTP/AVP 31\r\n"
        );
        // And the answer is itself valid SDP.
        assert_eq!(negotiate(&a).unwrap().payload_type, 8);
    }

    #[test]
    fn dynamic_payload_types_by_rtpmap_name() {
        let offer = OFFER
            .replace("RTP/AVP 18 8 0 101", "RTP/AVP 18 96")
            .replace(
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15",
                "a=rtpmap:96 pcmu/8000",
            );
        let n = negotiate(&offer).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.telephone_event),
            (Codec::Pcmu, 96, None)
        );
        // A static number remapped to something else is not G.711.
        let offer = OFFER
            .replace("RTP/AVP 18 8 0 101", "RTP/AVP 8")
            .replace("rtpmap:18 G729", "rtpmap:8 G729");
        assert_eq!(negotiate(&offer), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn hold_and_direction() {
        let n = negotiate(&OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")).unwrap();
        assert_eq!(n.direction, Direction::SendOnly);
        assert!(n.is_hold());
        assert!(answer(&n, "192.0.2.1".parse().unwrap(), 1, 1, 1).contains("a=recvonly\r\n"));
        let n = negotiate(&OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0")).unwrap();
        assert!(n.is_hold());
        let n =
            negotiate(&OFFER.replace("a=fmtp:101 0-15\r\n", "a=fmtp:101 0-15\r\na=inactive\r\n"))
                .unwrap();
        assert_eq!(n.direction, Direction::Inactive);
        assert!(answer(&n, "192.0.2.1".parse().unwrap(), 1, 1, 1).contains("a=inactive\r\n"));
        let n =
            negotiate(&OFFER.replace("a=fmtp:101 0-15\r\n", "a=fmtp:101 0-15\r\na=recvonly\r\n"))
                .unwrap();
        assert!(answer(&n, "192.0.2.1".parse().unwrap(), 1, 1, 1).contains("a=sendonly\r\n"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            negotiate(&OFFER.replace("18 8 0 101", "18")),
            Err(SdpError::NoCommonCodec)
        );
        assert_eq!(
            negotiate(&OFFER.replace("m=audio 49170", "m=audio 0")),
            Err(SdpError::NoCommonCodec)
        );
        assert_eq!(
            negotiate(&OFFER.replace("RTP/AVP 18", "RTP/SAVP 18")),
            Err(SdpError::NoCommonCodec)
        );
        for bad in [
            OFFER.replace("v=0", "v=1"),
            OFFER.replace("c=IN IP4 192.0.2.10\r\n", ""),
            OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 nowhere"),
            OFFER.replace("m=audio 49170", "m=audio x"),
            OFFER.replace("s=-\r\n", ""),
            OFFER.replace("m=video", "m =video"),
            OFFER.replace("o=alice", "x"),
            // Found by the sdp fuzz target: a carriage return inside a format, which our
            // answer echoed on its rejected m-line.
            OFFER.replace("m=video 51372 RTP/AVP 31", "m=video 51372 RTP/AVP \r31"),
            OFFER.replace("m=video 51372 RTP/AVP 31", "m=vid\teo 51372 RTP/AVP 31"),
            "garbage".to_string(),
            String::new(),
        ] {
            assert!(
                matches!(negotiate(&bad), Err(SdpError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
