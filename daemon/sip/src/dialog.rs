//! Dialog state (RFC 3261 §12), for both the UAS and the UAC side.

use crate::msg::{Contact, Essentials, Method, NameAddr, ParseError, Request, Response, Uri, Via};

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

    /// The dialog a 2xx (or a provisional with a To tag) to our INVITE
    /// creates at the UAC (§12.1.2): route set from Record-Route reversed,
    /// remote target from the response's Contact.
    pub fn uac(invite: &Request, resp: &Response) -> Result<Dialog, ParseError> {
        let req = invite.essentials()?;
        let e = resp.essentials()?;
        let remote_target = match resp.headers.contact()? {
            Some(Contact::Addrs(addrs)) => match addrs.as_slice() {
                [one] => one.uri.clone(),
                _ => return Err(ParseError::Header("Contact")),
            },
            // A 2xx must have one; the Request-URI is the best guess without.
            _ => invite.uri.clone(),
        };
        let mut route_set = resp.headers.record_route()?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: req.call_id.clone(),
                local_tag: req.from.tag().unwrap_or_default().to_string(),
                remote_tag: e.to.tag().map(str::to_string),
            },
            local: invite.headers.get("From").unwrap_or_default().to_string(),
            remote: resp.headers.get("To").unwrap_or_default().to_string(),
            remote_target,
            route_set,
            local_seq: req.cseq.seq,
            // Nothing received yet: any CSeq from the peer is in order.
            remote_seq: 0,
        })
    }

    /// A request inside the dialog (§12.2.1.1), strict and loose routing.
    pub fn request(&mut self, method: Method, via: &Via, user_agent: &str) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1).max(1);
        self.build(method, self.local_seq, via, user_agent)
    }

    /// The ACK to a 2xx for the INVITE with CSeq `seq` (§13.2.2.4): routed
    /// like any request of the dialog, but with the INVITE's number.
    pub fn ack(&self, seq: u32, via: &Via, user_agent: &str) -> Request {
        self.build(Method::Ack, seq, via, user_agent)
    }

    fn build(&self, method: Method, seq: u32, via: &Via, user_agent: &str) -> Request {
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
        h.push("CSeq", format!("{seq} {method}"));
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
    fn uac_dialog_from_a_2xx() {
        let text = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n\
To: <sip:bob@example.com>\r\nFrom: <sip:us@192.0.2.1>;tag=ours\r\nCall-ID: c2\r\nCSeq: 7 INVITE\r\n\r\n";
        let Ok(Message::Request(inv)) = Message::parse(text.as_bytes()) else {
            panic!()
        };
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n\
To: <sip:bob@example.com>;tag=theirs\r\nFrom: <sip:us@192.0.2.1>;tag=ours\r\nCall-ID: c2\r\n\
CSeq: 7 INVITE\r\nContact: <sip:bob@192.0.2.9>\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\r\n";
        let Ok(Message::Response(ok)) = Message::parse(text.as_bytes()) else {
            panic!()
        };
        let mut d = Dialog::uac(&inv, &ok).unwrap();
        assert_eq!(d.id.local_tag, "ours");
        assert_eq!(d.id.remote_tag.as_deref(), Some("theirs"));
        let ack = d.ack(7, &via(), "x");
        assert_eq!(ack.uri.to_string(), "sip:bob@192.0.2.9");
        assert_eq!(ack.essentials().unwrap().cseq.to_string(), "7 ACK");
        let routes: Vec<&str> = ack.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"],
            "reversed at the UAC (§12.1.2)"
        );
        let bye = d.request(Method::Bye, &via(), "x");
        let e = bye.essentials().unwrap();
        assert_eq!(e.cseq.to_string(), "8 BYE");
        assert_eq!((e.from.tag(), e.to.tag()), (Some("ours"), Some("theirs")));
        // The far end's requests find the dialog by the same id.
        assert!(d.accept_remote_cseq(1));
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
