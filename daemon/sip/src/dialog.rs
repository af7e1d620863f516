//! Dialog state (RFC 3261 §12), UAS side.

use crate::msg::{Essentials, Method, NameAddr, ParseError, Request, Uri, Via};

/// Identifies a dialog (§12): Call-ID and the two tags. A peer speaking
/// RFC 2543 may have no From tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
}

impl DialogId {
    /// The dialog an incoming request claims to belong to: our tag is in To.
    pub fn of_request(e: &Essentials) -> Option<DialogId> {
        Some(DialogId {
            call_id: e.call_id.clone(),
            local_tag: e.to.tag()?.to_string(),
            remote_tag: e.from.tag().map(str::to_string),
        })
    }
}

#[derive(Clone, Debug)]
pub struct Dialog {
    pub id: DialogId,
    /// Our From header for requests we send: the INVITE's To plus our tag.
    pub local: String,
    /// The INVITE's From header, the To of requests we send.
    pub remote: String,
    pub remote_target: Uri,
    /// From Record-Route, in order (§12.1.1).
    pub route_set: Vec<NameAddr>,
    pub local_seq: u32,
    /// The highest CSeq seen from the peer.
    pub remote_seq: u32,
}

impl Dialog {
    /// The dialog an INVITE creates at the UAS (§12.1.1). A missing Contact
    /// (RFC 2543 peers) falls back on the From URI as remote target.
    pub fn uas(invite: &Request, e: &Essentials, local_tag: &str) -> Result<Dialog, ParseError> {
        let remote_target = match invite.headers.contact()? {
            Some(crate::msg::Contact::Addrs(addrs)) => match addrs.as_slice() {
                [one] => one.uri.clone(),
                _ => return Err(ParseError::Header("Contact")),
            },
            Some(crate::msg::Contact::Star) => return Err(ParseError::Header("Contact")),
            None => e.from.uri.clone(),
        };
        let to = invite.headers.get("To").unwrap_or_default();
        Ok(Dialog {
            id: DialogId {
                call_id: e.call_id.clone(),
                local_tag: local_tag.to_string(),
                remote_tag: e.from.tag().map(str::to_string),
            },
            local: with_tag(to, local_tag),
            remote: invite.headers.get("From").unwrap_or_default().to_string(),
            remote_target,
            route_set: invite.headers.record_route()?,
            local_seq: 0,
            remote_seq: e.cseq.seq,
        })
    }

    /// §12.2.2: a request with a lower CSeq than one already seen is out of
    /// order. Records the new number otherwise.
    pub fn accept_remote_cseq(&mut self, seq: u32) -> bool {
        if seq < self.remote_seq {
            return false;
        }
        self.remote_seq = seq;
        true
    }

    /// A request inside the dialog (§12.2.1.1), strict and loose routing.
    pub fn request(&mut self, method: Method, via: &Via, user_agent: &str) -> Request {
        let (uri, routes) = match self.route_set.split_first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some((first, _)) if first.uri.param("lr").is_some() => (
                self.remote_target.clone(),
                self.route_set.iter().map(ToString::to_string).collect(),
            ),
            // Strict router: it takes the Request-URI; the target goes last.
            Some((first, rest)) => {
                let mut routes: Vec<String> = rest.iter().map(ToString::to_string).collect();
                routes.push(format!("<{}>", self.remote_target));
                (first.uri.clone(), routes)
            }
        };
        self.local_seq = self.local_seq.wrapping_add(1).max(1);
        let mut req = Request::new(method.clone(), uri);
        let h = &mut req.headers;
        h.push("Via", via.to_string());
        h.push("Max-Forwards", "70");
        for r in routes {
            h.push("Route", r);
        }
        h.push("From", self.local.clone());
        h.push("To", self.remote.clone());
        h.push("Call-ID", self.id.call_id.clone());
        h.push("CSeq", format!("{} {method}", self.local_seq));
        h.push("User-Agent", user_agent);
        req
    }
}

/// Appends `;tag=` to a raw From/To value without one. In both the
/// name-addr and addr-spec forms a trailing parameter is a header parameter.
/// An unreadable value (answered 400) is left alone.
pub(crate) fn with_tag(value: &str, tag: &str) -> String {
    match NameAddr::parse(value, false) {
        Ok(n) if n.tag().is_none() => format!("{value};tag={tag}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Message;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776\r\n\
To: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928\r\nCall-ID: c1\r\n\
CSeq: 10 INVITE\r\nContact: <sip:alice@192.0.2.4>\r\n{extra}\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!(),
        }
    }

    fn via() -> Via {
        Via::parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbye").unwrap()
    }

    #[test]
    fn uas_dialog_and_bye() {
        let inv = invite("Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n");
        let mut d = Dialog::uas(&inv, &inv.essentials().unwrap(), "abc").unwrap();
        assert_eq!(d.id.remote_tag.as_deref(), Some("1928"));
        let bye = d.request(Method::Bye, &via(), "Hotline/test");
        assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.4");
        let routes: Vec<&str> = bye.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
        );
        let e = bye.essentials().unwrap();
        assert_eq!(e.from.tag(), Some("abc"));
        assert_eq!(e.to.tag(), Some("1928"));
        assert_eq!(e.cseq.to_string(), "1 BYE");
        assert_eq!(
            d.request(Method::Bye, &via(), "x")
                .essentials()
                .unwrap()
                .cseq
                .seq,
            2
        );
    }

    #[test]
    fn strict_route_takes_the_request_uri() {
        let inv = invite("Record-Route: <sip:strict.example.com>\r\n");
        let mut d = Dialog::uas(&inv, &inv.essentials().unwrap(), "abc").unwrap();
        let bye = d.request(Method::Bye, &via(), "x");
        assert_eq!(bye.uri.to_string(), "sip:strict.example.com");
        assert_eq!(bye.headers.get("Route"), Some("<sip:alice@192.0.2.4>"));
    }

    #[test]
    fn remote_cseq_order() {
        let inv = invite("");
        let mut d = Dialog::uas(&inv, &inv.essentials().unwrap(), "abc").unwrap();
        assert!(d.accept_remote_cseq(11));
        assert!(!d.accept_remote_cseq(10));
    }

    #[test]
    fn tags_are_added_once() {
        assert_eq!(with_tag("<sip:a@b>", "x"), "<sip:a@b>;tag=x");
        assert_eq!(
            with_tag("sip:a@b;user=phone", "x"),
            "sip:a@b;user=phone;tag=x"
        );
        assert_eq!(with_tag("<sip:a@b>;tag=y", "x"), "<sip:a@b>;tag=y");
        assert_eq!(with_tag("\"broken <sip:a@b>", "x"), "\"broken <sip:a@b>");
    }
}
