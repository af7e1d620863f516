//! URIs: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966), and any other
//! scheme kept opaque so the application can answer 416.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use super::ParseError;
use super::scan::{Invalid, Res, pct_decode};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Lower-cased scheme name.
    Other(String),
}

/// A parsed URI. Immutable: `Display` writes the text it was parsed from,
/// so a received URI goes back out exactly as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    raw: String,
    scheme: Scheme,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    params: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        parse(s).map_err(|Invalid| ParseError::Uri)
    }

    pub(crate) fn parse_inner(s: &str) -> Res<Uri> {
        parse(s)
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// User part with escapes undone; for `tel:` the number.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Host as written (IPv6 with brackets); empty for `tel:` and opaque URIs.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters, escapes undone.
    pub fn params(&self) -> &[(String, Option<String>)] {
        &self.params
    }

    /// `Some(value)` when the parameter is present (value `None` if valueless).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// URI headers (`?name=value&...`), escapes undone.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Uri, ParseError> {
        Uri::parse(s)
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn is_user_byte(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,;?/".contains(&b)
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || b"&=+$,".contains(&b)
}

fn is_param_byte(b: u8) -> bool {
    is_unreserved(b) || b"[]/:&+$".contains(&b)
}

fn is_header_byte(b: u8) -> bool {
    is_unreserved(b) || b"[]/?:+$".contains(&b)
}

/// hostname, IPv4address or IPv6reference.
pub(crate) fn is_valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    h.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub(crate) fn parse_port(p: &str) -> Res<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid);
    }
    p.parse().map_err(|_| Invalid)
}

fn parse(s: &str) -> Res<Uri> {
    let (scheme, rest) = s.split_once(':').ok_or(Invalid)?;
    let valid_scheme = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    // No URI contains white space, controls or the brackets that delimit it.
    let valid_rest = !rest.is_empty()
        && rest
            .chars()
            .all(|c| !c.is_control() && !matches!(c, ' ' | '<' | '>' | '"'));
    if !valid_scheme || !valid_rest {
        return Err(Invalid);
    }
    let mut uri = match scheme.to_ascii_lowercase().as_str() {
        "sip" => parse_sip(rest, Scheme::Sip)?,
        "sips" => parse_sip(rest, Scheme::Sips)?,
        "tel" => parse_tel(rest)?,
        other => Uri {
            raw: String::new(),
            scheme: Scheme::Other(other.to_string()),
            user: None,
            password: None,
            host: String::new(),
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        },
    };
    uri.raw = s.to_string();
    Ok(uri)
}

fn parse_sip(rest: &str, scheme: Scheme) -> Res<Uri> {
    // '@' can only end the userinfo: no other part of a SIP URI allows it unescaped.
    let (userinfo, hostpart) = match rest.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, password) = match u.split_once(':') {
                Some((user, pw)) => (user, Some(pct_decode(pw, is_password_byte)?)),
                None => (u, None),
            };
            if user.is_empty() {
                return Err(Invalid);
            }
            (Some(pct_decode(user, is_user_byte)?), password)
        }
    };
    let (hostpart, headers) = match hostpart.split_once('?') {
        Some((h, hdrs)) => (h, Some(hdrs)),
        None => (hostpart, None),
    };
    let (hostport, params) = match hostpart.split_once(';') {
        Some((hp, p)) => (hp, Some(p)),
        None => (hostpart, None),
    };
    let (host, port) = split_hostport(hostport)?;
    let params = match params {
        None => Vec::new(),
        Some(p) => p
            .split(';')
            .map(|param| {
                let (name, value) = match param.split_once('=') {
                    Some((n, v)) => (n, Some(pct_decode(v, is_param_byte)?)),
                    None => (param, None),
                };
                if name.is_empty() || value.as_ref().is_some_and(|v| v.is_empty()) {
                    return Err(Invalid);
                }
                Ok((pct_decode(name, is_param_byte)?, value))
            })
            .collect::<Res<Vec<_>>>()?,
    };
    let headers = match headers {
        None => Vec::new(),
        Some(h) => h
            .split('&')
            .map(|hdr| {
                let (name, value) = hdr.split_once('=').ok_or(Invalid)?;
                if name.is_empty() {
                    return Err(Invalid);
                }
                Ok((
                    pct_decode(name, is_header_byte)?,
                    pct_decode(value, is_header_byte)?,
                ))
            })
            .collect::<Res<Vec<_>>>()?,
    };
    Ok(Uri {
        raw: String::new(),
        scheme,
        user,
        password,
        host: host.to_ascii_lowercase(),
        port,
        params,
        headers,
    })
}

/// `host [ ":" port ]`, the host validated.
pub(crate) fn split_hostport(hostport: &str) -> Res<(&str, Option<u16>)> {
    let (host, port) = if hostport.starts_with('[') {
        let end = hostport.find(']').ok_or(Invalid)?;
        let (host, after) = hostport.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or(Invalid)?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !is_valid_host(host) {
        return Err(Invalid);
    }
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_tel(rest: &str) -> Res<Uri> {
    let (number, params) = match rest.split_once(';') {
        Some((n, p)) => (n, Some(p)),
        None => (rest, None),
    };
    let valid = !number.is_empty()
        && number
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b"+*#-.()pPwW".contains(&b));
    if !valid {
        return Err(Invalid);
    }
    let params = match params {
        None => Vec::new(),
        Some(p) => p
            .split(';')
            .map(|param| {
                let (name, value) = match param.split_once('=') {
                    Some((n, v)) => (n, Some(pct_decode(v, is_param_byte)?)),
                    None => (param, None),
                };
                if name.is_empty() {
                    return Err(Invalid);
                }
                Ok((name.to_string(), value))
            })
            .collect::<Res<Vec<_>>>()?,
    };
    Ok(Uri {
        raw: String::new(),
        scheme: Scheme::Tel,
        user: Some(number.to_string()),
        password: None,
        host: String::new(),
        port: None,
        params,
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:alice:secret@Example.COM:5070;transport=tcp;lr?Subject=hi%20there")
            .unwrap();
        assert_eq!(u.scheme(), &Scheme::Sip);
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host(), "example.com");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(
            u.headers(),
            &[("Subject".to_string(), "hi there".to_string())]
        );
        assert_eq!(
            u.to_string(),
            "sip:alice:secret@Example.COM:5070;transport=tcp;lr?Subject=hi%20there"
        );
    }

    #[test]
    fn ipv6_references() {
        let u = Uri::parse("sips:[2001:db8::10]:5061").unwrap();
        assert_eq!(u.host(), "[2001:db8::10]");
        assert_eq!(u.port(), Some(5061));
        assert!(Uri::parse("sip:[2001:db8::zz]").is_err());
        assert!(Uri::parse("sip:[::1]x").is_err());
    }

    #[test]
    fn escaped_users_and_odd_characters() {
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user(), Some("sips:user@example.com"));
        assert_eq!(u.host(), "example.net");
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u@example.net"));
        assert!(u.params().is_empty());
        let u = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(u.user(), Some("null-\0-null"));
    }

    #[test]
    fn tel_and_unknown_schemes() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme(), &Scheme::Tel);
        assert_eq!(u.user(), Some("+1-201-555-0123"));
        assert_eq!(u.param("phone-context"), Some(Some("example.com")));
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), &Scheme::Other("soap.beep".into()));
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "sip:",
            "nocolon",
            "1sip:host",
            "sip:@host",
            "sip:user@",
            "sip:host:99999",
            "sip:host:",
            "sip:ho st",
            "sip:host;",
            "sip:host;a=",
            "sip:host?x",
            "sip:us%zzer@host",
            "sip:-host",
            "<sip:host>",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
