//! HTTP Digest for SIP (RFC 3261 §22, RFC 7616 computation, RFC 8760
//! algorithms): hashing, the header syntax, and the client's answer to a
//! challenge. The server's nonce bookkeeping lives with the endpoint.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha2::{Sha256, Sha512_256};

use crate::msg::scan::{Cursor, is_token};

/// Digest algorithms (RFC 8760 §2: SHA-256 and SHA-512/256 next to MD5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    /// The token used in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// Parses an `algorithm` value; the flag says it is a `-sess` variant.
    pub fn parse(s: &str) -> Option<(Algorithm, bool)> {
        let (base, sess) = match s.len().checked_sub(5).and_then(|i| s.split_at_checked(i)) {
            Some((base, suffix)) if suffix.eq_ignore_ascii_case("-sess") => (base, true),
            _ => (s, false),
        };
        let alg = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(base))?;
        Some((alg, sess))
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => to_hex(&Md5::digest(data)),
            Algorithm::Sha256 => to_hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 => to_hex(&Sha512_256::digest(data)),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `H(user:realm:password)` in hex: what the daemon stores per algorithm
/// instead of the password (RFC 7616 §3.4.2).
pub fn ha1(algorithm: Algorithm, user: &str, realm: &str, password: &str) -> String {
    algorithm.hex(format!("{user}:{realm}:{password}").as_bytes())
}

/// A SIP user's digest secrets as the daemon stores them: HA1 per
/// algorithm (hex, computed with the endpoint's realm), never the password,
/// and the one algorithm the account is challenged with and must answer in.
/// One challenge per account: some phones (libre/baresip 1.0) fail a whole
/// challenge set when any algorithm in it is unknown to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub algorithm: Algorithm,
}

impl Credential {
    /// Both HA1s from a password (for tests and the CLI); MD5 challenged.
    pub fn from_password(user: &str, realm: &str, password: &str) -> Credential {
        Credential {
            ha1_md5: ha1(Algorithm::Md5, user, realm, password),
            ha1_sha256: ha1(Algorithm::Sha256, user, realm, password),
            algorithm: Algorithm::Md5,
        }
    }

    /// The same secrets, challenged with `algorithm` instead.
    pub fn with_algorithm(self, algorithm: Algorithm) -> Credential {
        Credential { algorithm, ..self }
    }
}

/// What the request-digest is computed over (RFC 7616 §3.4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestInput<'a> {
    pub method: &'a str,
    /// The `uri` parameter (the Request-URI in SIP).
    pub uri: &'a str,
    pub nonce: &'a str,
    /// `Some((nc, cnonce))` with `qop=auth`; `None` for RFC 2069 peers.
    pub qop_auth: Option<(&'a str, &'a str)>,
}

/// The `response` parameter: `KD(HA1, nonce:nc:cnonce:qop:HA2)`, or
/// `KD(HA1, nonce:HA2)` without qop. `ha1` is hex, as from [`ha1`].
pub fn response(algorithm: Algorithm, ha1: &str, input: &DigestInput<'_>) -> String {
    let ha2 = algorithm.hex(format!("{}:{}", input.method, input.uri).as_bytes());
    let data = match input.qop_auth {
        Some((nc, cnonce)) => format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", input.nonce),
        None => format!("{ha1}:{}:{ha2}", input.nonce),
    };
    algorithm.hex(data.as_bytes())
}

/// Comparison whose time doesn't depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ------------------------------------------------------------------ syntax

/// One challenge or credentials value: a scheme and its auth-params.
/// Parameter names are lower-cased; quoted values are unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthValue {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl AuthValue {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

/// Parses a WWW-Authenticate / Authorization value (and their Proxy- forms).
/// One header line may hold several challenges (RFC 7235 §4.1); anything
/// unreadable ends the list.
pub fn parse_auth_values(value: &str) -> Vec<AuthValue> {
    let mut out: Vec<AuthValue> = Vec::new();
    let mut cur = Cursor::new(value);
    loop {
        while cur.skip_ws() || cur.sep(b',') {}
        if cur.at_end() {
            break;
        }
        let Ok(name) = cur.token() else { break };
        if cur.sep(b'=') {
            let value = if cur.peek() == Some(b'"') {
                match cur.quoted() {
                    Ok(v) => v,
                    Err(_) => break,
                }
            } else {
                cur.take_while(|b| b != b',' && b != b' ' && b != b'\t')
                    .to_string()
            };
            match out.last_mut() {
                Some(v) => v.params.push((name.to_ascii_lowercase(), value)),
                None => break,
            }
        } else {
            out.push(AuthValue {
                scheme: name.to_string(),
                params: Vec::new(),
            });
        }
    }
    out
}

/// A quoted-string for a header parameter.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        // Line breaks would end the header: drop them.
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A Digest challenge (WWW-Authenticate / Proxy-Authenticate), as the
/// client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub sess: bool,
    /// `qop` offered `auth`; without it the RFC 2069 form is used.
    pub qop_auth: bool,
    /// Some qop was offered, but not `auth` (only `auth-int`): we can't answer.
    pub qop_unsupported: bool,
    pub stale: bool,
}

impl Challenge {
    /// A Digest challenge we can answer, from one parsed value.
    pub fn from_value(v: &AuthValue) -> Option<Challenge> {
        if !v.is_digest() {
            return None;
        }
        let (algorithm, sess) = match v.param("algorithm") {
            None => (Algorithm::Md5, false),
            Some(a) => Algorithm::parse(a)?,
        };
        let qops: Vec<&str> = v
            .param("qop")
            .map(|q| q.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let qop_auth = qops.iter().any(|q| q.eq_ignore_ascii_case("auth"));
        Some(Challenge {
            realm: v.param("realm")?.to_string(),
            nonce: v.param("nonce")?.to_string(),
            opaque: v.param("opaque").map(str::to_string),
            algorithm,
            sess,
            qop_auth,
            qop_unsupported: !qops.is_empty() && !qop_auth,
            stale: v
                .param("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The challenge a client answers among a response's challenge
    /// headers: the topmost one it can use, since the server lists them in
    /// its order of preference (RFC 7616 §3.7, RFC 8760 §2.4).
    pub fn select<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values
            .into_iter()
            .flat_map(parse_auth_values)
            .filter_map(|v| Challenge::from_value(&v))
            .find(|c| !c.qop_unsupported)
    }

    /// The Authorization / Proxy-Authorization value answering this
    /// challenge for `method` on `uri` (RFC 7616 §3.4, nc 1: every challenge
    /// is answered once with its fresh nonce).
    pub fn authorization(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        let mut key = ha1(self.algorithm, user, &self.realm, password);
        if self.sess {
            key = self
                .algorithm
                .hex(format!("{key}:{}:{cnonce}", self.nonce).as_bytes());
        }
        let nc = "00000001";
        let input = DigestInput {
            method,
            uri,
            nonce: &self.nonce,
            qop_auth: self.qop_auth.then_some((nc, cnonce)),
        };
        let digest = response(self.algorithm, &key, &input);
        let alg = if self.sess {
            format!("{}-sess", self.algorithm.as_str())
        } else {
            self.algorithm.as_str().to_string()
        };
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{digest}\", algorithm={alg}",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
        );
        if self.qop_auth {
            let _ = write!(out, ", cnonce={}, qop=auth, nc={nc}", quote(cnonce));
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(opaque));
        }
        out
    }
}

/// Digest credentials (Authorization / Proxy-Authorization) as the server
/// reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

impl Credentials {
    pub fn from_value(v: &AuthValue) -> Option<Credentials> {
        if !v.is_digest() {
            return None;
        }
        let s = |name| v.param(name).map(str::to_string);
        Some(Credentials {
            username: s("username")?,
            realm: s("realm")?,
            nonce: s("nonce")?,
            uri: s("uri")?,
            response: s("response")?,
            algorithm: s("algorithm"),
            cnonce: s("cnonce"),
            qop: s("qop"),
            nc: s("nc"),
            opaque: s("opaque"),
        })
    }
}

/// `nc`: exactly 8 hex digits (RFC 7616 §3.4).
pub(crate) fn parse_nc(nc: &str) -> Option<u32> {
    (nc.len() == 8 && nc.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(nc, 16).ok())
        .flatten()
}

/// A header name we may write (extra headers the daemon passes in).
pub(crate) fn is_header_name(s: &str) -> bool {
    is_token(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const REALM: &str = "http-auth@example.org";

    fn rfc7616(alg: Algorithm) -> String {
        let key = ha1(alg, "Mufasa", REALM, "Circle of Life");
        response(
            alg,
            &key,
            &DigestInput {
                method: "GET",
                uri: "/dir/index.html",
                nonce: NONCE,
                qop_auth: Some(("00000001", CNONCE)),
            },
        )
    }

    #[test]
    fn rfc7616_example_vectors() {
        assert_eq!(rfc7616(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            rfc7616(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example_without_sess() {
        // RFC 2617 §3.5 (MD5, qop=auth).
        let key = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &key,
            &DigestInput {
                method: "GET",
                uri: "/dir/index.html",
                nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                qop_auth: Some(("00000001", "0a4f113b")),
            },
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn client_answers_the_rfc7616_challenge() {
        let header = format!(
            "Digest realm=\"{REALM}\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"{NONCE}\", opaque=\"{OPAQUE}\""
        );
        let md5 = format!(
            "Digest realm=\"{REALM}\", qop=\"auth, auth-int\", algorithm=MD5, nonce=\"{NONCE}\", opaque=\"{OPAQUE}\""
        );
        let c = Challenge::select([md5.as_str(), header.as_str()]).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5, "the server's first choice");
        let c = Challenge::select(["Basic realm=\"x\"", header.as_str(), md5.as_str()]).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256, "the first usable one");
        assert!(c.qop_auth);
        let value = c.authorization("Mufasa", "Circle of Life", "GET", "/dir/index.html", CNONCE);
        let parsed = parse_auth_values(&value);
        let cred = Credentials::from_value(&parsed[0]).unwrap();
        assert_eq!(
            cred.response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(cred.nc.as_deref(), Some("00000001"));
        assert_eq!(cred.opaque.as_deref(), Some(OPAQUE));
        assert_eq!(cred.algorithm.as_deref(), Some("SHA-256"));
    }

    #[test]
    fn parsing_challenges_and_credentials() {
        let v = parse_auth_values(
            "Digest realm=\"a, b\",nonce=\"x\\\"y\" , stale=TRUE, algorithm=MD5-sess, Basic realm=\"z\"",
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].param("realm"), Some("a, b"));
        assert_eq!(v[0].param("nonce"), Some("x\"y"));
        let c = Challenge::from_value(&v[0]).unwrap();
        assert!(c.stale && c.sess && !c.qop_auth);
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(v[1].scheme, "Basic");
        assert!(Challenge::from_value(&v[1]).is_none());
        // Unknown scheme (RFC 4475 regaut01) and unknown algorithm: nothing usable.
        assert!(Challenge::select(["NoOneKnowsThisScheme opaque-data=here"]).is_none());
        assert!(Challenge::select(["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"]).is_none());
        assert!(
            Challenge::select(["Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""]).is_none(),
            "auth-int only"
        );
        assert!(parse_auth_values("").is_empty());
        assert!(parse_auth_values("=x").is_empty());
        assert_eq!(parse_nc("0000000a"), Some(10));
        assert_eq!(parse_nc("1"), None);
        assert_eq!(
            Algorithm::parse("sha-256-SESS"),
            Some((Algorithm::Sha256, true))
        );
    }

    #[test]
    fn rfc2069_form_without_qop() {
        let c = Challenge::select(["Digest realm=\"r\", nonce=\"n\""]).unwrap();
        let value = c.authorization("u", "p", "INVITE", "sip:x@y", "c");
        assert!(!value.contains("qop") && !value.contains("cnonce"));
        let key = ha1(Algorithm::Md5, "u", "r", "p");
        let expect = response(
            Algorithm::Md5,
            &key,
            &DigestInput {
                method: "INVITE",
                uri: "sip:x@y",
                nonce: "n",
                qop_auth: None,
            },
        );
        assert!(value.contains(&format!("response=\"{expect}\"")));
        assert_eq!(quote("a\"b\\c\r\n"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
