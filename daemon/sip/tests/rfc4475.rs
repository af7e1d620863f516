//! RFC 4475 torture messages: what the endpoint answers to each, and what the
//! parser makes of the valid ones.
//!
//! The messages live in `shared/conformance/rfc4475` beside the repository
//! (or under `$HOTLINE_SHARED_DIR/conformance/rfc4475`). A missing folder
//! fails the test: a silent pass would hide that nothing was checked.

// Test helpers may unwrap (clippy only exempts #[test] functions).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use hotline_sip::msg::{
    Contact, Essentials, Message, Method, ParseError, Request, Response, Scheme, multipart,
};
use hotline_sip::{Endpoint, EndpointConfig, Event, Peer, Transport};

fn torture_dir() -> PathBuf {
    let dir = match std::env::var_os("HOTLINE_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("conformance/rfc4475"),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/conformance/rfc4475"
        )),
    };
    assert!(
        dir.is_dir(),
        "RFC 4475 torture messages not found in {}; set HOTLINE_SHARED_DIR to the shared/ folder",
        dir.display()
    );
    dir
}

fn load(name: &str) -> Vec<u8> {
    let path = torture_dir().join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn source() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "192.0.2.1:5060".parse().unwrap(),
    }
}

/// What the endpoint does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 100 Trying and an IncomingCall event.
    Call,
    /// Exactly one response with this status, and no event.
    Status(u16),
    /// A request too broken to answer, or a response: nothing goes out.
    Dropped,
    /// A valid response: parsed, matches no transaction, dropped.
    StrayResponse,
}

use Expect::*;

/// Every file, with the RFC 4475 section and what the section asks for.
const TABLE: &[(&str, &str, Expect)] = &[
    // 3.1.1 valid messages
    // To tag but no such dialog: 481 (RFC 3261 §12.2.2).
    ("wsinv", "3.1.1.1", Status(481)),
    ("intmeth", "3.1.1.2", Status(501)),
    ("esc01", "3.1.1.3", Call),
    // A valid REGISTER: the registrar challenges it first (RFC 3261 §10.3
    // step 3) — the NULs in To and Contact parse and don't get in the way.
    ("escnull", "3.1.1.4", Status(401)),
    // RE%47IST%45R is an unknown method, not REGISTER.
    ("esc02", "3.1.1.5", Status(501)),
    ("lwsdisp", "3.1.1.6", Status(200)),
    ("longreq", "3.1.1.7", Call),
    // The INVITE after Content-Length is ignored: only the REGISTER is
    // answered, with a challenge.
    ("dblreq", "3.1.1.8", Status(401)),
    ("semiuri", "3.1.1.9", Status(200)),
    ("transports", "3.1.1.10", Status(200)),
    ("mpart01", "3.1.1.11", Status(501)),
    ("unreason", "3.1.1.12", StrayResponse),
    ("noreason", "3.1.1.13", StrayResponse),
    // 3.1.2 invalid messages: 400 where a response can be formed
    ("badinv01", "3.1.2.1", Status(400)),
    ("clerr", "3.1.2.2", Status(400)),
    ("ncl", "3.1.2.3", Status(400)),
    ("scalar02", "3.1.2.4", Status(400)),
    ("scalarlg", "3.1.2.5", Dropped),
    ("quotbal", "3.1.2.6", Status(400)),
    ("ltgtruri", "3.1.2.7", Status(400)),
    ("lwsruri", "3.1.2.8", Status(400)),
    ("lwsstart", "3.1.2.9", Status(400)),
    ("trws", "3.1.2.10", Status(400)),
    ("escruri", "3.1.2.11", Status(400)),
    ("baddate", "3.1.2.12", Status(400)),
    ("regbadct", "3.1.2.13", Status(400)),
    ("badaspec", "3.1.2.14", Status(400)),
    ("baddn", "3.1.2.15", Status(400)),
    ("badvers", "3.1.2.16", Status(505)),
    ("mismatch01", "3.1.2.17", Status(400)),
    ("mismatch02", "3.1.2.18", Status(400)),
    ("bigcode", "3.1.2.19", Dropped),
    // 3.2 transaction layer: RFC 2543 matching for a bare magic cookie
    ("badbranch", "3.2.1", Status(200)),
    // 3.3 application layer
    ("insuf", "3.3.1", Status(400)),
    ("unkscm", "3.3.2", Status(416)),
    ("novelsc", "3.3.3", Status(416)),
    // "A registrar would reject this request with a 400 Bad Request": the
    // To of a REGISTER must be a SIP or SIPS AOR. Checked before the
    // challenge, as syntax.
    ("unksm2", "3.3.4", Status(400)),
    ("bext01", "3.3.5", Status(420)),
    ("invut", "3.3.6", Status(415)),
    // Unknown authorization scheme: "A registrar that does care about
    // challenge-response authentication will reject this request with a
    // 401, issuing a new challenge with a scheme it understands."
    ("regaut01", "3.3.7", Status(401)),
    ("multi01", "3.3.8", Status(400)),
    ("mcl01", "3.3.9", Status(400)),
    ("bcast", "3.3.10", StrayResponse),
    // "An endpoint should process the request as if the Max-Forwards field
    // value were still positive": 483 is for proxies.
    ("zeromf", "3.3.11", Status(200)),
    // REGISTERs whose Contact parameters the registrar must read right
    // (cparam01/02) or may refuse (regescrt, an escaped Route): all are
    // challenged before any binding is looked at; the parser tests below
    // check the parameters land where §3.3.12–3.3.14 say.
    ("cparam01", "3.3.12", Status(401)),
    ("cparam02", "3.3.13", Status(401)),
    ("regescrt", "3.3.14", Status(401)),
    // Accept excludes application/sdp: 406 with a 399 Warning.
    ("sdp01", "3.3.15", Status(406)),
    // 3.4 backward compatibility
    ("inv2543", "3.4.1", Call),
];

struct Outcome {
    sent: Vec<Vec<u8>>,
    events: Vec<Event>,
    parse_errors: u64,
    stray: u64,
}

/// The sender of every message is the trusted trunk, so INVITEs are
/// judged on their content; REGISTER needs digest authentication from
/// anyone (RFC 3261 §10.3 step 3).
fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig {
        advertised: "192.0.2.100:5060".parse().unwrap(),
        trusted_sources: vec![source().addr.ip().into()],
        ..Default::default()
    })
}

fn feed(data: &[u8]) -> Outcome {
    let mut ep = endpoint();
    ep.handle_input(Instant::now(), source(), data);
    let sent = std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| t.data)
        .collect();
    let events = std::iter::from_fn(|| ep.poll_event()).collect();
    Outcome {
        sent,
        events,
        parse_errors: ep.stats().parse_errors,
        stray: ep.stats().stray_responses,
    }
}

/// Status and the raw response text (a 400 may lack what strict parsing wants).
fn status_of(bytes: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let code = text
        .get(8..11)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {text}"));
    (code, text)
}

fn header_line<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

#[test]
fn every_file_is_in_the_table() {
    let mut on_disk: Vec<String> = std::fs::read_dir(torture_dir())
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_stem()?.to_string_lossy().into_owned();
            (path.extension()? == "dat").then_some(name)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(n, _, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(listed.len(), 49);
}

#[test]
fn endpoint_answers_each_message_as_its_section_says() {
    let mut failures = Vec::new();
    for &(name, section, expect) in TABLE {
        let out = feed(&load(name));
        let calls = out
            .events
            .iter()
            .filter(|e| matches!(e, Event::IncomingCall { .. }))
            .count();
        let statuses: Vec<u16> = out.sent.iter().map(|s| status_of(s).0).collect();
        let ok = match expect {
            Call => statuses == [100] && calls == 1 && out.events.len() == 1,
            Status(code) => statuses == [code] && out.events.is_empty(),
            Dropped => statuses.is_empty() && out.events.is_empty() && out.parse_errors == 1,
            StrayResponse => statuses.is_empty() && out.parse_errors == 0 && out.stray == 1,
        };
        if !ok {
            failures.push(format!(
                "{name} (§{section}): expected {expect:?}, sent {statuses:?}, events {:?}",
                out.events
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn answer(name: &str) -> String {
    let out = feed(&load(name));
    assert_eq!(out.sent.len(), 1, "{name}");
    status_of(&out.sent[0]).1
}

#[test]
fn rejections_name_the_problem() {
    for (name, reason) in [
        ("badinv01", "Malformed Via header"),
        ("clerr", "Content-Length exceeds the message"),
        ("ncl", "Malformed Content-Length header"),
        ("scalar02", "Malformed CSeq header"),
        ("quotbal", "Malformed To header"),
        ("ltgtruri", "Malformed Request-URI"),
        ("lwsruri", "Malformed start line"),
        ("lwsstart", "Malformed start line"),
        ("trws", "Malformed start line"),
        ("escruri", "Malformed Request-URI"),
        ("baddate", "Malformed Date header"),
        ("regbadct", "Malformed Contact header"),
        ("badaspec", "Malformed To header"),
        ("baddn", "Malformed From header"),
        (
            "mismatch01",
            "CSeq method does not match the request method",
        ),
        (
            "mismatch02",
            "CSeq method does not match the request method",
        ),
        ("insuf", "Missing From header"),
        ("multi01", "Multiple From headers"),
        ("mcl01", "Multiple Content-Length headers"),
    ] {
        let text = answer(name);
        assert!(
            text.starts_with(&format!("SIP/2.0 400 {reason}\r\n")),
            "{name}: {text}"
        );
    }
}

#[test]
fn application_layer_answers_carry_their_headers() {
    let text = answer("bext01");
    assert_eq!(
        header_line(&text, "Unsupported"),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
    let text = answer("invut");
    assert_eq!(header_line(&text, "Accept"), Some("application/sdp"));
    let text = answer("sdp01");
    assert!(
        header_line(&text, "Warning").is_some_and(|w| w.starts_with("399 ")),
        "{text}"
    );
    let text = answer("intmeth");
    assert!(header_line(&text, "Allow").is_some());
    let text = answer("badvers");
    assert!(text.starts_with("SIP/2.0 505 Version Not Supported\r\n"));
    // insuf's 400 goes back by its Via and has the CSeq it had, nothing invented.
    let text = answer("insuf");
    assert_eq!(
        header_line(&text, "Via"),
        Some("SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf;received=192.0.2.1")
    );
    assert_eq!(header_line(&text, "CSeq"), Some("193942 INVITE"));
    assert_eq!(header_line(&text, "Call-ID"), None);
    // badinv01's Via can't be read: copied as is, answered to the source.
    let out = feed(&load("badinv01"));
    let (_, text) = status_of(&out.sent[0]);
    assert_eq!(
        header_line(&text, "Via"),
        Some("SIP/2.0/UDP 192.0.2.15;;,;,,")
    );
}

#[test]
fn accepted_calls_report_what_the_caller_sent() {
    let out = feed(&load("esc01"));
    let Some(Event::IncomingCall {
        caller,
        called,
        offer,
        call_id,
        ..
    }) = out.events.first()
    else {
        panic!()
    };
    assert_eq!(called, "sips:user@example.com");
    assert_eq!(caller, "I have spaces");
    assert_eq!(call_id, "esc01.239409asdfakjkn23onasd0-3234");
    assert!(offer.as_deref().is_some_and(|o| o.starts_with("v=0\r\n")));

    let out = feed(&load("inv2543"));
    let Some(Event::IncomingCall {
        caller,
        called,
        caller_name,
        ..
    }) = out.events.first()
    else {
        panic!()
    };
    assert_eq!(
        (caller.as_str(), called.as_str(), caller_name),
        ("+13035551111", "UserB", &None)
    );

    let out = feed(&load("longreq"));
    let Some(Event::IncomingCall { caller_name, .. }) = out.events.first() else {
        panic!()
    };
    assert_eq!(caller_name, &None, "the long name is in To, not From");
}

#[test]
fn responses_go_where_via_says() {
    // wsinv: sent-by 192.0.2.2, source 192.0.2.1: received added.
    let text = answer("wsinv");
    let via = header_line(&text, "Via").unwrap();
    assert_eq!(
        via,
        "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw;received=192.0.2.1"
    );
    assert_eq!(text.matches("\r\nVia: ").count(), 3);
    // mpart01 asks for rport.
    let text = answer("mpart01");
    assert_eq!(
        header_line(&text, "Via"),
        Some(
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport=5060;received=192.0.2.1"
        )
    );
}

#[test]
fn badbranch_uses_rfc2543_matching() {
    let data = load("badbranch");
    let mut ep = endpoint();
    let now = Instant::now();
    ep.handle_input(now, source(), &data);
    let first = ep.poll_transmit().unwrap();
    assert_eq!(status_of(&first.data).0, 200);
    // A retransmission gets the same response; a different request with the
    // same bare cookie is not taken for it.
    ep.handle_input(now, source(), &data);
    assert_eq!(ep.poll_transmit().unwrap().data, first.data);
    let other = String::from_utf8(data)
        .unwrap()
        .replace("CSeq: 8 OPTIONS", "CSeq: 9 OPTIONS");
    ep.handle_input(now, source(), other.as_bytes());
    let second = ep.poll_transmit().unwrap();
    assert!(String::from_utf8_lossy(&second.data).contains("CSeq: 9 OPTIONS"));
    assert_eq!(ep.poll_transmit(), None);
}

// ------------------------------------------------------------- the parser

fn request(name: &str) -> Request {
    match Message::parse(&load(name)) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match Message::parse(&load(name)) {
        Ok(Message::Response(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn essentials(r: &Request) -> Essentials {
    r.essentials().unwrap()
}

#[test]
fn invalid_messages_fail_to_parse() {
    let expected = [
        ("badinv01", ParseError::Header("Via")),
        ("clerr", ParseError::Truncated),
        ("ncl", ParseError::Header("Content-Length")),
        ("scalar02", ParseError::Header("CSeq")),
        ("scalarlg", ParseError::Header("CSeq")),
        ("quotbal", ParseError::Header("To")),
        ("ltgtruri", ParseError::RequestUri),
        ("lwsruri", ParseError::StartLine),
        ("lwsstart", ParseError::StartLine),
        ("trws", ParseError::StartLine),
        ("escruri", ParseError::RequestUri),
        ("baddate", ParseError::Header("Date")),
        ("regbadct", ParseError::Header("Contact")),
        ("badaspec", ParseError::Header("To")),
        ("baddn", ParseError::Header("From")),
        ("mismatch01", ParseError::CSeqMismatch),
        ("mismatch02", ParseError::CSeqMismatch),
        ("bigcode", ParseError::StatusCode),
        ("insuf", ParseError::Missing("From")),
        ("multi01", ParseError::Duplicate("From")),
        ("mcl01", ParseError::Duplicate("Content-Length")),
    ];
    for (name, err) in expected {
        assert_eq!(Message::parse(&load(name)), Err(err), "{name}");
    }
    // badvers parses, so it can be answered 505.
    assert_eq!(request("badvers").version, "SIP/7.0");
}

#[test]
fn wsinv_folding_compact_forms_and_white_space() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user(), Some("vivekg"));
    assert_eq!(r.uri.param("unknownparam"), Some(None));
    let e = essentials(&r);
    assert_eq!(e.to.tag(), Some("1918181833n"));
    assert_eq!(e.to.uri.to_string(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(e.from.display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(e.from.tag(), Some("98asjd8"));
    assert_eq!(e.max_forwards, Some(68));
    assert_eq!(e.cseq.seq, 9);
    assert_eq!(e.cseq.method, Method::Invite);
    let vias: Vec<String> = e.via.iter().map(ToString::to_string).collect();
    assert_eq!(
        vias,
        [
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw",
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8",
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239",
        ]
    );
    assert_eq!(r.headers.get("Subject"), Some(""), "s is Subject, empty");
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        r.headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let Some(Contact::Addrs(contacts)) = r.headers.contact().unwrap() else {
        panic!()
    };
    let [c] = contacts.as_slice() else {
        panic!("{contacts:?}")
    };
    assert_eq!(c.display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(c.params.value("newparam"), Some("newvalue"));
    assert!(c.params.contains("secondparam"));
    assert_eq!(c.params.value("q"), Some("0.33"));
    assert_eq!(
        r.headers.route().unwrap()[0].uri.param("unknown-no-value"),
        Some(None)
    );
    assert!(
        r.headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp")
    );
    assert_eq!(r.body.len(), 150);
}

#[test]
fn intmeth_strange_method_and_characters() {
    let r = request("intmeth");
    assert_eq!(
        r.method,
        Method::Other("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert_eq!(
        r.uri.user(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        r.uri.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(r.uri.host(), "example.com");
    let e = essentials(&r);
    assert_eq!(
        e.to.display_name.as_deref(),
        Some("BEL:\u{7} NUL:\0 DEL:\u{7f}")
    );
    assert_eq!(
        e.from.display_name.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(
        e.from.params.value("fromParam''~+*_!.-%"),
        Some("работающий")
    );
    assert_eq!(e.from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(e.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_eq!(e.cseq.method, r.method);
    assert_eq!(e.max_forwards, Some(255));
    assert_eq!(
        r.headers.get("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
    assert_eq!(e.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
}

#[test]
fn esc01_escapes_are_undone() {
    let r = request("esc01");
    assert_eq!(r.uri.user(), Some("sips:user@example.com"));
    assert_eq!(r.uri.host(), "example.net");
    let e = essentials(&r);
    assert_eq!(e.to.uri.user(), Some("user"));
    assert_eq!(e.from.uri.user(), Some("I have spaces"));
    assert_eq!(e.call_id, "esc01.239409asdfakjkn23onasd0-3234");
    let Some(Contact::Addrs(c)) = r.headers.contact().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.user(), Some("caller"));
    assert_eq!(c[0].uri.param("lr"), Some(None));
    assert_eq!(c[0].uri.param("name"), Some(Some("value%41")));
    assert!(
        r.headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "sdp"),
        "C: is Content-Type"
    );
}

#[test]
fn escnull_and_esc02() {
    let r = request("escnull");
    let e = essentials(&r);
    assert_eq!(e.to.uri.user(), Some("null-\0-null"));
    let Some(Contact::Addrs(c)) = r.headers.contact().unwrap() else {
        panic!()
    };
    let users: Vec<_> = c.iter().map(|c| c.uri.user().unwrap()).collect();
    assert_eq!(users, ["\0", "\0\0"]);

    let r = request("esc02");
    assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));
    let e = essentials(&r);
    assert_eq!(e.to.display_name.as_deref(), Some("%Z%45"));
    assert_eq!(e.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    let Some(Contact::Addrs(c)) = r.headers.contact().unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2, "C%6Fntact is another header");
    assert_eq!(
        r.headers.get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp_and_semiuri() {
    let e = essentials(&request("lwsdisp"));
    assert_eq!(e.from.display_name.as_deref(), Some("caller"));
    assert_eq!(e.from.tag(), Some("323"));

    let r = request("semiuri");
    assert_eq!(r.uri.user(), Some("user;par=u@example.net"));
    assert_eq!(r.uri.host(), "example.com");
    assert!(r.uri.params().is_empty());
    let accept = r.headers.accept().unwrap().unwrap();
    assert_eq!(accept.len(), 6);
    assert!(accept[5].is("message", "sipfrag"));
}

#[test]
fn longreq_long_values() {
    let r = request("longreq");
    let e = essentials(&r);
    assert!(
        e.to.display_name
            .as_deref()
            .unwrap()
            .starts_with("I have a user name of extremeextreme")
    );
    assert_eq!(e.to.uri.port(), Some(6000));
    assert_eq!(e.to.uri.params().len(), 3);
    assert_eq!(e.from.tag().unwrap().len(), 155);
    assert!(e.from.params.contains("unknownValuelessparamnameparamnameparamnameparamnameparamnameparamnameparamnameparamnameparamnameparamname"));
    assert_eq!(e.via.len(), 34);
    assert_eq!(e.via[0].host, "sip33.example.com");
    assert_eq!(e.via[33].received(), Some("192.0.2.5"));
    assert!(e.via[33].branch().unwrap().ends_with("longbranchvalue"));
    assert!(e.call_id.ends_with("reallylongcallid"));
    let name = "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name";
    assert!(r.headers.get(name).unwrap().starts_with("unknown-longlong"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn dblreq_ignores_octets_after_content_length() {
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(
        essentials(&r).call_id,
        "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
        "I: is Call-ID"
    );
}

#[test]
fn transports_via_list() {
    let e = essentials(&request("transports"));
    let transports: Vec<&str> = e.via.iter().map(|v| v.transport.as_str()).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(e.call_id, "transports.kijh4akdnaqjkwendsasfdj");
}

#[test]
fn mpart01_binary_body_is_kept_whole() {
    let r = request("mpart01");
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.body.len(), 553);
    assert!(
        std::str::from_utf8(&r.body).is_err(),
        "binary octets kept as they are"
    );
    let ct = r.headers.content_type().unwrap().unwrap();
    assert!(ct.is("multipart", "mixed"));
    let boundary = ct.params.value("boundary").unwrap();
    assert_eq!(
        multipart::find_part(&r.body, boundary, "text", "plain"),
        Some(&b"Hello"[..])
    );
    let binary = multipart::find_part(&r.body, boundary, "application", "octet-stream").unwrap();
    assert_eq!(binary.first(), Some(&0x30), "a DER SEQUENCE");
    assert_eq!(essentials(&r).top_via().unwrap().rport(), Some(None));
}

#[test]
fn odd_reason_phrases() {
    let r = response("unreason");
    assert_eq!(r.status, 200);
    assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert_eq!(r.body.len(), 154);
    let r = response("noreason");
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
    let r = response("bcast");
    assert_eq!(r.essentials().unwrap().via[1].host, "255.255.255.255");
}

#[test]
fn application_layer_messages_parse() {
    let r = request("zeromf");
    assert_eq!(essentials(&r).max_forwards, Some(0));
    let r = request("bext01");
    assert_eq!(
        r.headers.require().unwrap(),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    let r = request("unkscm");
    assert_eq!(
        r.uri.scheme(),
        &Scheme::Other("nobodyknowsthisscheme".into())
    );
    let r = request("novelsc");
    assert_eq!(r.uri.to_string(), "soap.beep://192.0.2.103:3002");
    let r = request("unksm2");
    let e = essentials(&r);
    assert_eq!(e.to.uri.scheme(), &Scheme::Other("isbn".into()));
    assert_eq!(e.from.uri.scheme(), &Scheme::Other("http".into()));
    let Some(Contact::Addrs(c)) = r.headers.contact().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].uri.scheme(), &Scheme::Other("name".into()));
    let r = request("regaut01");
    assert_eq!(
        r.headers.get("Authorization"),
        Some("NoOneKnowsThisScheme opaque-data=here")
    );

    // cparam01: the parameter is the Contact's; cparam02: the URI's.
    let Some(Contact::Addrs(c)) = request("cparam01").headers.contact().unwrap() else {
        panic!()
    };
    assert!(c[0].params.contains("unknownparam"));
    assert_eq!(c[0].uri.param("unknownparam"), None);
    let Some(Contact::Addrs(c)) = request("cparam02").headers.contact().unwrap() else {
        panic!()
    };
    assert!(!c[0].params.contains("unknownparam"));
    assert_eq!(c[0].uri.param("unknownparam"), Some(None));

    let Some(Contact::Addrs(c)) = request("regescrt").headers.contact().unwrap() else {
        panic!()
    };
    assert_eq!(
        c[0].uri.headers(),
        &[("Route".to_string(), "<sip:sip.example.com>".to_string())]
    );

    let r = request("sdp01");
    assert!(r.headers.accept().unwrap().unwrap()[0].is("text", "nobodyknowsthis"));
    let r = request("invut");
    assert!(
        r.headers
            .content_type()
            .unwrap()
            .unwrap()
            .is("application", "unknownformat")
    );
}

#[test]
fn inv2543_rfc2543_syntax() {
    let r = request("inv2543");
    let e = essentials(&r);
    assert_eq!(e.max_forwards, None);
    assert_eq!(e.from.tag(), None);
    assert_eq!(e.top_via().unwrap().branch(), None);
    // Outside <>, ;user=phone belongs to the header, not the URI (§20.10).
    assert_eq!(e.to.params.value("user"), Some("phone"));
    assert_eq!(e.to.uri.param("user"), None);
    assert_eq!(r.headers.content_length().unwrap(), None);
    assert!(
        r.body.ends_with(b"m=audio 49217 RTP/AVP 0\r\n"),
        "the body runs to the end of the datagram"
    );
}
