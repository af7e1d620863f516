//! Lexical pieces shared by the header and URI parsers (RFC 3261 §25.1).
//!
//! Everything here works on header values that have already been unfolded,
//! so linear white space is only SP and HTAB.

use std::fmt;

/// "This text is not valid"; callers turn it into a [`super::ParseError`]
/// that names the header it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid;

pub(crate) type Res<T> = Result<T, Invalid>;

/// `token` characters (§25.1).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A read position in a header value. Only ever advanced over ASCII bytes or
/// whole characters, and sliced with `get`, so it cannot split a character.
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Skips white space; says whether there was any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// `SWS c SWS`: consumes `c` with the white space around it, or nothing.
    pub(crate) fn sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consumes ASCII bytes while `f` holds.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && f(b)) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    pub(crate) fn token(&mut self) -> Res<&'a str> {
        let t = self.take_while(is_token_byte);
        if t.is_empty() { Err(Invalid) } else { Ok(t) }
    }

    /// A `quoted-string`, returned without quotes and with quoted-pairs undone.
    pub(crate) fn quoted(&mut self) -> Res<String> {
        if self.peek() != Some(b'"') {
            return Err(Invalid);
        }
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                '\\' => match chars.next() {
                    Some((_, e)) if e.is_ascii() && e != '\r' && e != '\n' => out.push(e),
                    _ => return Err(Invalid),
                },
                // qdtext: no controls except HTAB
                c if c.is_ascii_control() && c != '\t' => return Err(Invalid),
                c => out.push(c),
            }
        }
        Err(Invalid)
    }
}

/// Writes `s` as a quoted-string.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') || (c.is_ascii_control() && c != '\t') {
            write!(f, "\\{c}")?;
        } else {
            write!(f, "{c}")?;
        }
    }
    f.write_str("\"")
}

/// One `;name[=value]` header parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// Without quotes and escapes when it was a quoted-string.
    pub value: Option<String>,
    /// Written back as a quoted-string.
    pub quoted: bool,
}

/// Header parameters in received order; names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of `name`, if present and valued.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|p| p.value.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces `name` in place, or appends it.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(p) => {
                p.value = value;
                p.quoted = false;
            }
            None => self.0.push(Param {
                name: name.to_string(),
                value,
                quoted: false,
            }),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            write!(f, ";{}", p.name)?;
            match (&p.value, p.quoted) {
                (Some(v), true) => {
                    f.write_str("=")?;
                    write_quoted(f, v)?;
                }
                (Some(v), false) => write!(f, "={v}")?,
                (None, _) => {}
            }
        }
        Ok(())
    }
}

/// `gen-value` characters besides quoted strings: token, or a host
/// (IPv6 references and the bare IPv6 of `received`).
fn is_gen_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

/// `*( SEMI generic-param )`; stops before anything that isn't `;`.
pub(crate) fn parse_params(cur: &mut Cursor<'_>) -> Res<Params> {
    let mut params = Vec::new();
    while cur.sep(b';') {
        let name = cur.token()?.to_string();
        let (value, quoted) = if cur.sep(b'=') {
            if cur.peek() == Some(b'"') {
                (Some(cur.quoted()?), true)
            } else {
                let v = cur.take_while(is_gen_value_byte);
                if v.is_empty() {
                    return Err(Invalid);
                }
                (Some(v.to_string()), false)
            }
        } else {
            (None, false)
        };
        params.push(Param {
            name,
            value,
            quoted,
        });
    }
    Ok(Params(params))
}

/// Splits a header value at the commas that separate list elements: not
/// inside quoted strings nor `<...>`. Empty elements are invalid.
pub(crate) fn split_list(value: &str) -> Res<Vec<&str>> {
    let mut out = Vec::new();
    let (mut start, mut in_quotes, mut in_angle, mut escaped) = (0, false, false, false);
    for (i, b) in value.bytes().enumerate() {
        if in_quotes {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => {
                out.push(value.get(start..i).ok_or(Invalid)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err(Invalid);
    }
    out.push(value.get(start..).ok_or(Invalid)?);
    let out: Vec<&str> = out
        .into_iter()
        .map(|s| s.trim_matches([' ', '\t']))
        .collect();
    if out.iter().any(|s| s.is_empty()) {
        return Err(Invalid);
    }
    Ok(out)
}

/// Undoes `%HH` escapes in `s`, whose raw characters must satisfy `allowed`.
pub(crate) fn pct_decode(s: &str, allowed: impl Fn(u8) -> bool) -> Res<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(Invalid)?;
            let hex = std::str::from_utf8(hex).map_err(|_| Invalid)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| Invalid)?);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(Invalid);
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_undo_escapes_and_reject_bare_controls() {
        let mut c = Cursor::new(r#""J Rosenberg \\\"" rest"#);
        assert_eq!(c.quoted().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(c.rest(), " rest");
        assert!(Cursor::new("\"open").quoted().is_err());
        assert!(Cursor::new("\"a\u{7}b\"").quoted().is_err());
        assert_eq!(Cursor::new("\"a\\\u{7}b\"").quoted().unwrap(), "a\u{7}b");
    }

    #[test]
    fn params_allow_white_space_and_quoted_values() {
        let mut c = Cursor::new(" ; tag = 98asjd8 ;lr; +sip.instance=\"<urn:uuid:1>\"");
        let p = parse_params(&mut c).unwrap();
        assert!(c.at_end());
        assert_eq!(p.value("TAG"), Some("98asjd8"));
        assert!(p.contains("lr"));
        assert_eq!(p.value("+sip.instance"), Some("<urn:uuid:1>"));
        assert_eq!(
            p.to_string(),
            ";tag=98asjd8;lr;+sip.instance=\"<urn:uuid:1>\""
        );
        assert!(parse_params(&mut Cursor::new(";;")).is_err());
        assert!(parse_params(&mut Cursor::new(";a=")).is_err());
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list(r#""a, b" <sip:x,y@h>, <sip:z@h>"#).unwrap(),
            vec![r#""a, b" <sip:x,y@h>"#, "<sip:z@h>"]
        );
        assert!(split_list("a,,b").is_err());
        assert!(split_list("\"a,b").is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            pct_decode("%75se%72", |b| b.is_ascii_alphanumeric()).unwrap(),
            "user"
        );
        assert!(pct_decode("%7", |_| true).is_err());
        assert!(pct_decode("%zz", |_| true).is_err());
        assert!(pct_decode("a b", |b| b != b' ').is_err());
    }
}
