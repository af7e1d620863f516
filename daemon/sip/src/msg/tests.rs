use super::*;

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

fn request(text: &str) -> Request {
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

#[test]
fn parses_a_plain_invite() {
    let r = request(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user(), Some("bob"));
    assert_eq!(r.version, "SIP/2.0");
    assert_eq!(r.body, b"v=0\r\n"[..4]);
    let e = r.essentials().unwrap();
    assert_eq!(e.call_id, "a84b4c76e66710@pc33.example.com");
    assert_eq!(
        e.cseq,
        CSeq {
            seq: 314159,
            method: Method::Invite
        }
    );
    assert_eq!(e.from.tag(), Some("1928301774"));
    assert_eq!(e.to.display_name.as_deref(), Some("Bob"));
    assert_eq!(e.max_forwards, Some(70));
}

#[test]
fn serializes_with_a_correct_content_length() {
    let mut r = request(INVITE);
    r.body = b"v=0\r\no=x\r\n".to_vec();
    let bytes = r.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nVia: "));
    assert!(text.contains("\r\nContent-Length: 10\r\n\r\nv=0\r\no=x\r\n"));
    assert_eq!(text.matches("Content-Length").count(), 1);
    assert_eq!(request(&text).body, r.body);
    let resp = Response::new(180, "Ringing");
    assert_eq!(
        resp.to_bytes(),
        b"SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn body_follows_content_length() {
    // Octets after Content-Length are ignored (UDP); a missing one means "the rest".
    let extra = format!("{INVITE}garbage");
    assert_eq!(request(&extra).body, b"v=0\r");
    let no_length = INVITE.replace("Content-Length: 4\r\n", "");
    assert_eq!(request(&no_length).body, b"v=0\r\n");
    let long = INVITE.replace("Content-Length: 4", "Content-Length: 40");
    assert_eq!(Message::parse(long.as_bytes()), Err(ParseError::Truncated));
}

#[test]
fn responses() {
    let text = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
    let Message::Response(r) = Message::parse(text.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!((r.status, r.reason.as_str()), (180, "Ringing"));
    for bad in [
        "SIP/2.0 99 x",
        "SIP/2.0 700 x",
        "SIP/2.0 1000 x",
        "SIP/2.0 abc x",
    ] {
        let t = text.replace("SIP/2.0 180 Ringing", bad);
        assert_eq!(
            Message::parse(t.as_bytes()),
            Err(ParseError::StatusCode),
            "{bad}"
        );
    }
}

#[test]
fn request_line_is_strict() {
    for (bad, err) in [
        ("INVITE  sip:bob@example.com SIP/2.0", ParseError::StartLine),
        ("INVITE sip:bob@example.com SIP/2.0 ", ParseError::StartLine),
        (
            "INVITE sip:bob@example.com;  lr SIP/2.0",
            ParseError::StartLine,
        ),
        (
            "INVITE <sip:bob@example.com> SIP/2.0",
            ParseError::RequestUri,
        ),
        (
            "INVITE sip:bob@example.com?Route=x SIP/2.0",
            ParseError::RequestUri,
        ),
        ("INVITE sip:bob@example.com SIP/2", ParseError::StartLine),
        ("INV(TE sip:bob@example.com SIP/2.0", ParseError::StartLine),
    ] {
        let t = INVITE.replace("INVITE sip:bob@example.com SIP/2.0", bad);
        assert_eq!(Message::parse(t.as_bytes()), Err(err), "{bad}");
    }
    let t = INVITE.replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
    assert_eq!(request(&t).version, "SIP/7.0");
}

#[test]
fn header_problems_are_named() {
    let cases = [
        (
            "CSeq: 314159 INVITE",
            "CSeq: 314159 BYE",
            ParseError::CSeqMismatch,
        ),
        (
            "Call-ID: a84b4c76e66710@pc33.example.com\r\n",
            "",
            ParseError::Missing("Call-ID"),
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards: 256",
            ParseError::Header("Max-Forwards"),
        ),
        ("To: Bob", "To: Bob, Jr.", ParseError::Header("To")),
        (
            "Contact: <sip:alice@pc33.example.com>",
            "Contact: <sip:alice@pc33",
            ParseError::Header("Contact"),
        ),
        (
            "Content-Length: 4",
            "Content-Length: 4\r\nl: 4",
            ParseError::Duplicate("Content-Length"),
        ),
        (
            "Max-Forwards: 70",
            "Max-Forwards 70",
            ParseError::HeaderLine,
        ),
        (
            "Max-Forwards: 70",
            "Max Forwards: 70",
            ParseError::HeaderLine,
        ),
    ];
    for (from, to, err) in cases {
        let t = INVITE.replace(from, to);
        assert_eq!(Message::parse(t.as_bytes()), Err(err), "{to}");
    }
}

#[test]
fn folding_and_compact_forms() {
    let t = INVITE
        .replace("Max-Forwards: 70", "Max-Forwards:\r\n   70")
        .replace(
            "To: Bob <sip:bob@example.com>",
            "t : Bob\r\n\t<sip:bob@example.com>",
        );
    let r = request(&t);
    assert_eq!(r.headers.get("Max-Forwards"), Some("70"));
    assert_eq!(r.headers.get("To"), Some("Bob <sip:bob@example.com>"));
    let t = INVITE.replacen("Via:", " Via:", 1);
    assert!(Message::parse(t.as_bytes()).is_err());
}

#[test]
fn incomplete_and_binary_input() {
    assert_eq!(Message::parse(b""), Err(ParseError::Incomplete));
    assert_eq!(
        Message::parse(b"INVITE sip:a@b SIP/2.0\r\n"),
        Err(ParseError::Incomplete)
    );
    assert_eq!(
        Message::parse(b"INVITE sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n"),
        Err(ParseError::NotUtf8)
    );
}

#[test]
fn methods_round_trip() {
    for m in [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "UPDATE",
        "PRACK",
        "NEWMETHOD",
    ] {
        assert_eq!(Method::parse(m).as_str(), m);
    }
    assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
}
