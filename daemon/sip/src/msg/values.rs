//! Typed values of the headers the stack reads (RFC 3261 §20, §25.1).

use std::fmt;

use super::Method;
use super::scan::{Cursor, Invalid, Params, Res, is_token, is_ws, parse_params, write_quoted};
use super::uri::{Uri, is_valid_host, parse_port};

/// One Via value (§20.42).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// `SIP/2.0` (protocol name upper-cased).
    pub protocol: String,
    /// Upper-cased transport token: `UDP`, `TCP`, `TLS`, ...
    pub transport: String,
    /// As written; IPv6 with brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub(crate) fn parse(s: &str) -> Res<Via> {
        let mut cur = Cursor::new(s);
        cur.skip_ws();
        let name = cur.token()?;
        if !cur.sep(b'/') {
            return Err(Invalid);
        }
        let version = cur.token()?;
        if !cur.sep(b'/') {
            return Err(Invalid);
        }
        let transport = cur.token()?;
        if !cur.skip_ws() {
            return Err(Invalid);
        }
        let host = if cur.peek() == Some(b'[') {
            let h = cur.take_while(|b| b != b']');
            if cur.peek() != Some(b']') {
                return Err(Invalid);
            }
            cur.bump();
            format!("{h}]")
        } else {
            cur.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                .to_string()
        };
        if !is_valid_host(&host) {
            return Err(Invalid);
        }
        let port = if cur.sep(b':') {
            Some(parse_port(cur.take_while(|b| b.is_ascii_digit()))?)
        } else {
            None
        };
        let params = parse_params(&mut cur)?;
        cur.skip_ws();
        if !cur.at_end() {
            return Err(Invalid);
        }
        Ok(Via {
            protocol: format!("{}/{version}", name.to_ascii_uppercase()),
            transport: transport.to_ascii_uppercase(),
            host: host.to_ascii_lowercase(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// `Some(None)` for the empty `rport` a client adds to ask for it (RFC 3581).
    pub fn rport(&self) -> Option<Option<&str>> {
        self.params.get("rport").map(|p| p.value.as_deref())
    }

    /// `host[:port]`, the transaction-matching form of sent-by.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.sent_by())?;
        write!(f, "{}", self.params)
    }
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact,
/// Route, Record-Route (§20.10, §20.20, §20.39).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::default(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// Parses a whole value; `require_brackets` for Route/Record-Route.
    pub(crate) fn parse(s: &str, require_brackets: bool) -> Res<NameAddr> {
        let mut cur = Cursor::new(s);
        cur.skip_ws();
        let (display_name, bracketed) = match cur.peek() {
            Some(b'"') => {
                let name = cur.quoted()?;
                cur.skip_ws();
                (Some(name), true)
            }
            Some(b'<') => (None, true),
            _ => display_tokens(&mut cur),
        };
        if require_brackets && !bracketed {
            return Err(Invalid);
        }
        let uri = if bracketed {
            if cur.peek() != Some(b'<') {
                return Err(Invalid);
            }
            cur.bump();
            let text = cur.take_while(|b| b != b'>');
            if cur.peek() != Some(b'>') {
                return Err(Invalid);
            }
            cur.bump();
            // Multi-byte characters stop take_while; the URI parser rejects them.
            Uri::parse_inner(text)?
        } else {
            // addr-spec: its ';' parameters belong to the header, and a URI with
            // '?' or ',' would have needed brackets (§20.10).
            let text = cur.take_while(|b| !is_ws(b) && b != b';' && b != b',');
            if text.contains('?') {
                return Err(Invalid);
            }
            Uri::parse_inner(text)?
        };
        let params = parse_params(&mut cur)?;
        cur.skip_ws();
        if !cur.at_end() {
            return Err(Invalid);
        }
        Ok(NameAddr {
            display_name: display_name.filter(|d| !d.is_empty()),
            uri,
            params,
        })
    }
}

/// `*(token LWS)` before `<`; if no `<` follows, the value is an addr-spec
/// and the cursor goes back to the start.
fn display_tokens(cur: &mut Cursor<'_>) -> (Option<String>, bool) {
    let start = cur.rest();
    let mut words = Vec::new();
    while let Ok(word) = cur.token() {
        words.push(word);
        cur.skip_ws();
    }
    if cur.peek() == Some(b'<') && !words.is_empty() {
        (Some(words.join(" ")), true)
    } else {
        *cur = Cursor::new(start);
        (None, false)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write_quoted(f, name)?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// CSeq (§20.16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub(crate) fn parse(s: &str) -> Res<CSeq> {
        let mut cur = Cursor::new(s);
        cur.skip_ws();
        let digits = cur.take_while(|b| b.is_ascii_digit());
        // u32 overflow (RFC 4475 scalar02) is an error, not a wrap.
        let seq = digits.parse::<u32>().map_err(|_| Invalid)?;
        if !cur.skip_ws() {
            return Err(Invalid);
        }
        let method = cur.token()?;
        cur.skip_ws();
        if !cur.at_end() {
            return Err(Invalid);
        }
        Ok(CSeq {
            seq,
            method: Method::parse(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// `type/subtype;params` of Content-Type and Accept (§20.15, §20.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// Lower-cased.
    pub kind: String,
    /// Lower-cased.
    pub subtype: String,
    pub params: Params,
}

impl MediaType {
    pub(crate) fn parse(s: &str) -> Res<MediaType> {
        let mut cur = Cursor::new(s);
        cur.skip_ws();
        let kind = cur.token()?.to_ascii_lowercase();
        if !cur.sep(b'/') {
            return Err(Invalid);
        }
        let subtype = cur.token()?.to_ascii_lowercase();
        let params = parse_params(&mut cur)?;
        cur.skip_ws();
        if !cur.at_end() {
            return Err(Invalid);
        }
        Ok(MediaType {
            kind,
            subtype,
            params,
        })
    }

    /// Is this `kind/subtype`, ignoring parameters?
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind == kind && self.subtype == subtype
    }

    /// As an Accept media-range: does it cover `kind/subtype` (wildcards allowed)?
    pub fn accepts(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind == kind) && (self.subtype == "*" || self.subtype == subtype)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.kind, self.subtype, self.params)
    }
}

/// The Contact header (§20.10): `*` or one or more addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    Star,
    Addrs(Vec<NameAddr>),
}

impl NameAddr {
    /// Contact `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(|v| v.parse().ok())
    }
}

/// A list of option tags (Require, Supported, ...).
pub(crate) fn parse_tokens(values: &[&str]) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        if v.trim().is_empty() {
            continue; // "Supported:" with no tags is legal
        }
        for t in super::scan::split_list(v)? {
            if !is_token(t) {
                return Err(Invalid);
            }
            out.push(t.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_white_space_everywhere() {
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.protocol, "SIP/2.0");
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "spindle.example.com");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"
        );
    }

    #[test]
    fn via_ports_ipv6_and_rport() {
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::1]:5070;rport;branch=z9hG4bKx;received=2001:db8::2")
                .unwrap();
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("2001:db8::2"));
        assert_eq!(v.sent_by(), "[2001:db8::1]:5070");
        for bad in [
            "SIP/2.0/UDP",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP h:x",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""  <sip:jdrosen@example.com> ; tag = 98asjd8"#,
            false,
        )
        .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323", false).unwrap();
        assert_eq!(n.display_name.as_deref(), Some("caller"));
        let n = NameAddr::parse("sip:+1972@gw1.example.net;unknownparam", false).unwrap();
        assert_eq!(n.uri.to_string(), "sip:+1972@gw1.example.net");
        assert!(n.params.contains("unknownparam"));
        let n = NameAddr::parse("<sip:+1972@gw1.example.net;unknownparam>", false).unwrap();
        assert!(n.params.is_empty());
        assert_eq!(n.uri.param("unknownparam"), Some(None));
        let n = NameAddr::parse("A. Bell <sip:a.g.bell@example.com>;tag=x", false).unwrap();
        assert_eq!(n.display_name.as_deref(), Some("A. Bell"));
        assert_eq!(
            n.to_string(),
            "\"A. Bell\" <sip:a.g.bell@example.com>;tag=x"
        );
    }

    #[test]
    fn name_addr_rejects() {
        for bad in [
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "\"Mr. J. User <sip:j.user@example.com>",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:joe@example.org>;;;;",
            "<sip:a@b",
            "",
        ] {
            assert!(NameAddr::parse(bad, false).is_err(), "{bad:?}");
        }
        assert!(NameAddr::parse("sip:a@b", true).is_err());
    }

    #[test]
    fn cseq_and_media_types() {
        assert_eq!(
            CSeq::parse("0009   INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        let m = MediaType::parse("Multipart/Mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(m.is("multipart", "mixed"));
        assert_eq!(m.params.value("boundary"), Some("7a9cbec02ceef655"));
        assert!(
            MediaType::parse("*/*")
                .unwrap()
                .accepts("application", "sdp")
        );
        assert!(MediaType::parse("application").is_err());
    }
}
