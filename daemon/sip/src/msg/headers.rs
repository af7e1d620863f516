//! The header list: ordered `(name, raw value)` pairs, with typed readers for
//! the headers the stack needs.

use super::ParseError;
use super::scan::{Invalid, split_list};
use super::values::{CSeq, Contact, MediaType, NameAddr, Via, parse_tokens};

/// RFC 3261 §7.3.3 (and RFC 3265/3515) compact forms.
const COMPACT: &[(&str, &str)] = &[
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("u", "Allow-Events"),
];

/// Spelling used when writing known headers, whatever case they arrived in.
const CANONICAL: &[&str] = &[
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Refer-To",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// Expands compact names and fixes the case of known ones.
pub(crate) fn canonical_name(name: &str) -> String {
    if let Some((_, long)) = COMPACT
        .iter()
        .find(|(short, _)| short.eq_ignore_ascii_case(name))
    {
        return (*long).to_string();
    }
    match CANONICAL
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
    {
        Some(known) => (*known).to_string(),
        None => name.to_string(),
    }
}

/// The essential headers of §8.1.1, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Essentials {
    /// All Via values, top first.
    pub via: Vec<Via>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: CSeq,
    pub max_forwards: Option<u8>,
}

impl Essentials {
    /// The top Via (there is always one).
    pub fn top_via(&self) -> Option<&Via> {
        self.via.first()
    }
}

/// Ordered header list. Names are stored canonicalized (compact forms
/// expanded) and compared case-insensitively; values are raw, unfolded and
/// trimmed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.entries.push((canonical_name(name), value.into()));
    }

    /// Replaces every `name` header with one value (appended if absent).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.push(name, value);
    }

    /// Replaces the first `name` header where it stands and drops the
    /// others (appended if absent): Via stays on top when it is renewed.
    pub fn replace(&mut self, name: &str, value: impl Into<String>) {
        let name = canonical_name(name);
        let mut value = Some(value.into());
        self.entries.retain_mut(|(n, v)| {
            if !n.eq_ignore_ascii_case(&name) {
                return true;
            }
            match value.take() {
                Some(new) => {
                    *v = new;
                    true
                }
                None => false,
            }
        });
        if let Some(v) = value {
            self.entries.push((name, v));
        }
    }

    pub fn remove(&mut self, name: &str) {
        let name = canonical_name(name);
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of `name`, one per header line.
    pub fn get_all(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = canonical_name(name);
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// At most one `name` header.
    fn single(&self, name: &'static str) -> Result<Option<&str>, ParseError> {
        let mut all = self.get_all(name);
        let first = all.next();
        if all.next().is_some() {
            return Err(ParseError::Duplicate(name));
        }
        Ok(first)
    }

    fn required(&self, name: &'static str) -> Result<&str, ParseError> {
        self.single(name)?.ok_or(ParseError::Missing(name))
    }

    /// Every Via value, from comma lists and repeated headers, top first.
    pub fn via(&self) -> Result<Vec<Via>, ParseError> {
        let bad = |Invalid| ParseError::Header("Via");
        let mut out = Vec::new();
        for value in self.get_all("Via") {
            for v in split_list(value).map_err(bad)? {
                out.push(Via::parse(v).map_err(bad)?);
            }
        }
        Ok(out)
    }

    pub fn from_addr(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.required("From")?, false).map_err(|Invalid| ParseError::Header("From"))
    }

    pub fn to_addr(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.required("To")?, false).map_err(|Invalid| ParseError::Header("To"))
    }

    pub fn call_id(&self) -> Result<&str, ParseError> {
        let id = self.required("Call-ID")?;
        if valid_call_id(id) {
            Ok(id)
        } else {
            Err(ParseError::Header("Call-ID"))
        }
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.required("CSeq")?).map_err(|Invalid| ParseError::Header("CSeq"))
    }

    /// 0..=255 (§20.22).
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.single("Max-Forwards")?
            .map(|v| digits::<u8>(v).ok_or(ParseError::Header("Max-Forwards")))
            .transpose()
    }

    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        self.single("Content-Length")?
            .map(|v| digits::<usize>(v).ok_or(ParseError::Header("Content-Length")))
            .transpose()
    }

    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.single("Expires")?
            .map(|v| digits::<u32>(v).ok_or(ParseError::Header("Expires")))
            .transpose()
    }

    /// All Contact values (several per header and repeated headers), or `*`.
    pub fn contact(&self) -> Result<Option<Contact>, ParseError> {
        let bad = |Invalid| ParseError::Header("Contact");
        let values: Vec<&str> = self.get_all("Contact").collect();
        if values.is_empty() {
            return Ok(None);
        }
        if values.iter().any(|v| v.trim() == "*") {
            // `*` stands alone (§10.2.2)
            return match values.as_slice() {
                [_] => Ok(Some(Contact::Star)),
                _ => Err(ParseError::Header("Contact")),
            };
        }
        let mut out = Vec::new();
        for value in values {
            for v in split_list(value).map_err(bad)? {
                out.push(NameAddr::parse(v, false).map_err(bad)?);
            }
        }
        Ok(Some(Contact::Addrs(out)))
    }

    pub fn record_route(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.addr_list("Record-Route")
    }

    pub fn route(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.addr_list("Route")
    }

    fn addr_list(&self, name: &'static str) -> Result<Vec<NameAddr>, ParseError> {
        let bad = |Invalid| ParseError::Header(name);
        let mut out = Vec::new();
        for value in self.get_all(name) {
            for v in split_list(value).map_err(bad)? {
                out.push(NameAddr::parse(v, true).map_err(bad)?);
            }
        }
        Ok(out)
    }

    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        self.single("Content-Type")?
            .map(|v| MediaType::parse(v).map_err(|Invalid| ParseError::Header("Content-Type")))
            .transpose()
    }

    /// The media ranges of Accept; `None` without the header (which means
    /// application/sdp, §20.1). An empty header accepts nothing.
    pub fn accept(&self) -> Result<Option<Vec<MediaType>>, ParseError> {
        let bad = |Invalid| ParseError::Header("Accept");
        let values: Vec<&str> = self.get_all("Accept").collect();
        if values.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for value in values.into_iter().filter(|v| !v.trim().is_empty()) {
            for v in split_list(value).map_err(bad)? {
                out.push(MediaType::parse(v).map_err(bad)?);
            }
        }
        Ok(Some(out))
    }

    pub fn require(&self) -> Result<Vec<String>, ParseError> {
        self.tokens("Require")
    }

    pub fn supported(&self) -> Result<Vec<String>, ParseError> {
        self.tokens("Supported")
    }

    fn tokens(&self, name: &'static str) -> Result<Vec<String>, ParseError> {
        let values: Vec<&str> = self.get_all(name).collect();
        parse_tokens(&values).map_err(|Invalid| ParseError::Header(name))
    }

    /// The headers every request and response must have (§8.1.1).
    pub fn essentials(&self) -> Result<Essentials, ParseError> {
        let via = self.via()?;
        if via.is_empty() {
            return Err(ParseError::Missing("Via"));
        }
        Ok(Essentials {
            via,
            from: self.from_addr()?,
            to: self.to_addr()?,
            call_id: self.call_id()?.to_string(),
            cseq: self.cseq()?,
            max_forwards: self.max_forwards()?,
        })
    }

    /// Strict syntax check of every header the stack reads, so a message
    /// that parses can be trusted by the layers above.
    pub(crate) fn validate(&self) -> Result<Essentials, ParseError> {
        let essentials = self.essentials()?;
        self.content_length()?;
        self.contact()?;
        self.record_route()?;
        self.content_type()?;
        self.accept()?;
        self.expires()?;
        self.require()?;
        self.tokens("Proxy-Require")?;
        self.supported()?;
        if let Some(date) = self.single("Date")?
            && !valid_date(date)
        {
            return Err(ParseError::Header("Date"));
        }
        Ok(essentials)
    }
}

/// `1*DIGIT` that fits in `T` (no sign, no overflow).
fn digits<T: std::str::FromStr>(v: &str) -> Option<T> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// `callid = word [ "@" word ]` (§25.1).
fn valid_call_id(id: &str) -> bool {
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~()<>:\\\"/[]?{}".contains(&b))
    };
    match id.split_once('@') {
        Some((a, b)) => word(a) && word(b),
        None => word(id),
    }
}

/// `rfc1123-date` in GMT (§20.17), e.g. `Sat, 13 Nov 2010 23:29:00 GMT`.
fn valid_date(v: &str) -> bool {
    let parts: Vec<&str> = v.split(' ').collect();
    let [wkday, day, month, year, time, zone] = parts.as_slice() else {
        return false;
    };
    let num = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = {
        let t: Vec<&str> = time.split(':').collect();
        t.len() == 3 && t.iter().all(|p| num(p, 2))
    };
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    DAYS.contains(wkday)
        && num(day, 2)
        && MONTHS.contains(month)
        && num(year, 4)
        && time_ok
        && *zone == "GMT"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(n, *v);
        }
        h
    }

    #[test]
    fn compact_and_case_insensitive_names() {
        let h = headers(&[
            ("v", "SIP/2.0/UDP a"),
            ("VIA", "SIP/2.0/UDP b, SIP/2.0/TCP c"),
            ("i", "x@y"),
        ]);
        assert_eq!(h.iter().next().unwrap().0, "Via");
        assert_eq!(h.get("call-id"), Some("x@y"));
        let hosts: Vec<String> = h.via().unwrap().into_iter().map(|v| v.host).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
    }

    #[test]
    fn replace_keeps_the_position() {
        let mut h = headers(&[("Via", "a"), ("From", "f"), ("via", "b")]);
        h.replace("v", "c");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("Via", "c"), ("From", "f")]);
        h.replace("To", "t");
        assert_eq!(h.get("To"), Some("t"));
    }

    #[test]
    fn single_valued_headers() {
        let h = headers(&[("Max-Forwards", "70"), ("max-forwards", "5")]);
        assert_eq!(h.max_forwards(), Err(ParseError::Duplicate("Max-Forwards")));
        assert_eq!(
            headers(&[("Max-Forwards", "0068")]).max_forwards(),
            Ok(Some(68))
        );
        assert_eq!(
            headers(&[("Max-Forwards", "300")]).max_forwards(),
            Err(ParseError::Header("Max-Forwards"))
        );
        assert_eq!(headers(&[]).call_id(), Err(ParseError::Missing("Call-ID")));
        assert_eq!(
            headers(&[("Content-Length", "-999")]).content_length(),
            Err(ParseError::Header("Content-Length"))
        );
    }

    #[test]
    fn contacts() {
        let h = headers(&[
            (
                "m",
                "\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33",
            ),
            (
                "Contact",
                "<sip:a@h>;expires=60, <sip:b@h>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"",
            ),
        ]);
        let Some(Contact::Addrs(c)) = h.contact().unwrap() else {
            panic!()
        };
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].display_name.as_deref(), Some("Quoted string \"\""));
        assert_eq!(c[0].params.value("q"), Some("0.33"));
        assert_eq!(c[1].expires(), Some(60));
        assert_eq!(
            c[2].params.value("+sip.instance"),
            Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
        );
        assert_eq!(
            headers(&[("Contact", "*")]).contact().unwrap(),
            Some(Contact::Star)
        );
        assert!(headers(&[("Contact", "*, <sip:a@b>")]).contact().is_err());
    }

    #[test]
    fn dates_and_call_ids() {
        assert!(valid_date("Sat, 15 Oct 2005 04:44:56 GMT"));
        assert!(!valid_date("Fri, 01 Jan 2010 16:00:00 EST"));
        assert!(valid_call_id(
            "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
        ));
        assert!(!valid_call_id("a b"));
        assert!(!valid_call_id("a@b@c"));
    }
}
