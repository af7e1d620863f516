//! Calls we place (UAC) on a virtual clock: every instant in ms from `t0`.

use std::time::Instant;

use super::tests::*;
use super::*;
use crate::auth::{self, Algorithm, Credentials, DigestInput};
use crate::msg::Message;

const OFFER: &str = ANSWER;
const REMOTE_SDP: &str = SDP;
const CALLEE_CONTACT: &str = "sip:callee@198.51.100.5:5060";

fn trunk() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "198.51.100.5:5060".parse().unwrap(),
    }
}

fn call() -> OutgoingCall {
    OutgoingCall {
        request_uri: "sip:+3612345678@198.51.100.5:5060".into(),
        to: trunk(),
        from_user: "+3611111111".into(),
        from_display: Some("Hotline \"Support\"".into()),
        sdp: OFFER.into(),
        credentials: None,
        headers: vec![
            (
                "P-Asserted-Identity".into(),
                "<sip:+3611111111@192.0.2.100>".into(),
            ),
            ("X-Bad".into(), "a\r\nInjected: yes".into()),
            ("Call-ID".into(), "mine".into()),
        ],
    }
}

fn request(t: &Transmit) -> Request {
    match parse(t) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn requests(ep: &mut Endpoint) -> Vec<Request> {
    sent(ep).iter().map(request).collect()
}

fn methods(ep: &mut Endpoint) -> Vec<String> {
    requests(ep).iter().map(|r| r.method.to_string()).collect()
}

fn branch(r: &Request) -> String {
    r.essentials().unwrap().via[0].branch().unwrap().to_string()
}

/// A response from the far end to `req`: Via, From, Call-ID and CSeq
/// copied, To tagged, a Contact on 1xx/2xx with a tag.
fn reply(req: &Request, status: u16, to_tag: Option<&str>, extra: &str, body: &str) -> Vec<u8> {
    let h = &req.headers;
    let mut s = format!("SIP/2.0 {status} Whatever\r\n");
    for v in h.get_all("Via") {
        s.push_str(&format!("Via: {v};received=192.0.2.100\r\n"));
    }
    s.push_str(&format!("From: {}\r\n", h.get("From").unwrap()));
    let to = h.get("To").unwrap();
    match to_tag {
        Some(tag) => s.push_str(&format!("To: {to};tag={tag}\r\n")),
        None => s.push_str(&format!("To: {to}\r\n")),
    }
    s.push_str(&format!(
        "Call-ID: {}\r\nCSeq: {}\r\n",
        h.get("Call-ID").unwrap(),
        h.get("CSeq").unwrap()
    ));
    if to_tag.is_some() && status < 300 {
        s.push_str(&format!("Contact: <{CALLEE_CONTACT}>\r\n"));
    }
    s.push_str(extra);
    if !body.is_empty() {
        s.push_str("Content-Type: application/sdp\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.into_bytes()
}

/// A request from the far end inside the dialog of `invite` (answered
/// with `their_tag`).
fn from_callee(invite: &Request, method: &str, their_tag: &str, cseq: u32) -> Vec<u8> {
    let h = &invite.headers;
    format!(
        "{method} sip:192.0.2.100:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK{method}{cseq}\r\n\
Max-Forwards: 70\r\nFrom: {};tag={their_tag}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
Contact: <{CALLEE_CONTACT}>\r\nContent-Length: 0\r\n\r\n",
        h.get("To").unwrap(),
        h.get("From").unwrap(),
        h.get("Call-ID").unwrap(),
    )
    .into_bytes()
}

/// Places the call at `t0`; returns it and the INVITE.
fn dial(ep: &mut Endpoint, t0: Instant, c: OutgoingCall) -> (CallHandle, Request) {
    let call = ep.invite(t0, c);
    let out = sent(ep);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, trunk());
    (call, request(&out[0]))
}

/// Dials, gets 180 and 200 from "callee1"; returns the call and the INVITE.
fn answered(ep: &mut Endpoint, t0: Instant, c: OutgoingCall) -> (CallHandle, Request) {
    let (call, inv) = dial(ep, t0, c);
    ep.handle_input(t0, trunk(), &reply(&inv, 180, Some("callee1"), "", ""));
    ep.handle_input(
        t0,
        trunk(),
        &reply(&inv, 200, Some("callee1"), "", REMOTE_SDP),
    );
    assert_eq!(methods(ep), ["ACK"]);
    let ev = events(ep);
    assert!(
        matches!(ev.last(), Some(Event::OutgoingAnswered { .. })),
        "{ev:?}"
    );
    (call, inv)
}

#[test]
fn invite_progress_answer_ack_and_hangup() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = dial(&mut ep, t0, call());
    assert_eq!(inv.method, Method::Invite);
    assert_eq!(inv.uri.to_string(), "sip:+3612345678@198.51.100.5:5060");
    let e = inv.essentials().unwrap();
    let via = &e.via[0];
    assert_eq!(e.via.len(), 1);
    assert_eq!(via.sent_by(), "192.0.2.100:5060");
    assert_eq!(via.rport(), Some(None));
    assert!(branch(&inv).starts_with("z9hG4bK"));
    assert_eq!(e.from.uri.to_string(), "sip:+3611111111@192.0.2.100");
    assert_eq!(e.from.display_name.as_deref(), Some("Hotline \"Support\""));
    assert!(e.from.tag().is_some());
    assert_eq!(e.to.uri.to_string(), "sip:+3612345678@198.51.100.5:5060");
    assert_eq!(e.to.tag(), None);
    assert_eq!(e.cseq.to_string(), "1 INVITE");
    assert_eq!(e.max_forwards, Some(70));
    assert_ne!(e.call_id, "mine");
    let h = &inv.headers;
    assert_eq!(h.get("Contact"), Some("<sip:192.0.2.100:5060>"));
    assert_eq!(
        h.get("P-Asserted-Identity"),
        Some("<sip:+3611111111@192.0.2.100>")
    );
    assert!(
        !h.contains("X-Bad") && !h.contains("Injected"),
        "no header injection"
    );
    assert_eq!(h.get_all("Call-ID").count(), 1);
    assert_eq!(h.get("Content-Type"), Some("application/sdp"));
    assert_eq!(inv.body, OFFER.as_bytes());
    assert_eq!(ep.active_calls(), 1);

    // 100 stops timer A and needs no event; 180 and 183 are progress.
    ep.handle_input(at(t0, 100), trunk(), &reply(&inv, 100, None, "", ""));
    assert!(events(&mut ep).is_empty());
    assert_eq!(
        ep.poll_timeout(),
        None,
        "Proceeding: no timers (no timer C)"
    );
    ep.handle_input(
        at(t0, 200),
        trunk(),
        &reply(&inv, 180, Some("callee1"), "", ""),
    );
    ep.handle_input(
        at(t0, 300),
        trunk(),
        &reply(&inv, 183, Some("callee1"), "", REMOTE_SDP),
    );
    assert_eq!(
        events(&mut ep),
        [
            Event::OutgoingProgress {
                call,
                status: 180,
                sdp: None
            },
            Event::OutgoingProgress {
                call,
                status: 183,
                sdp: Some(REMOTE_SDP.into())
            },
        ]
    );
    assert!(sent(&mut ep).is_empty());

    ep.handle_input(
        at(t0, 1000),
        trunk(),
        &reply(&inv, 200, Some("callee1"), "", REMOTE_SDP),
    );
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, trunk());
    let ack = request(&out[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri.to_string(), CALLEE_CONTACT, "the 2xx's Contact");
    let ae = ack.essentials().unwrap();
    assert_eq!(ae.cseq.to_string(), "1 ACK");
    assert_eq!(ae.to.tag(), Some("callee1"));
    assert_eq!(ae.from.tag(), e.from.tag());
    assert_eq!(ae.call_id, e.call_id);
    assert_ne!(
        branch(&ack),
        branch(&inv),
        "the ACK to a 2xx is a new transaction"
    );
    assert_eq!(
        events(&mut ep),
        [Event::OutgoingAnswered {
            call,
            sdp: Some(REMOTE_SDP.into())
        }]
    );
    // The 2xx again (our ACK was lost): the same ACK again.
    ep.handle_input(
        at(t0, 1500),
        trunk(),
        &reply(&inv, 200, Some("callee1"), "", REMOTE_SDP),
    );
    assert_eq!(sent(&mut ep), out);
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.active_calls(), 1);

    ep.hangup(at(t0, 5000), call);
    let bye = requests(&mut ep);
    assert_eq!(bye.len(), 1);
    let be = bye[0].essentials().unwrap();
    assert_eq!(bye[0].method, Method::Bye);
    assert_eq!(bye[0].uri.to_string(), CALLEE_CONTACT);
    assert_eq!(be.cseq.to_string(), "2 BYE");
    assert_eq!(be.to.tag(), Some("callee1"));
    assert_eq!(ep.active_calls(), 0);
    ep.handle_input(
        at(t0, 5100),
        trunk(),
        &reply(&bye[0], 200, Some("callee1"), "", ""),
    );
    assert_eq!(ep.stats().stray_responses, 0);
    assert!(events(&mut ep).is_empty(), "hangup reports nothing");
    // Timer M (Accepted, 64·T1 from the 2xx) and timer K clean up.
    assert!(run_until(&mut ep, t0, 100_000).is_empty());
    assert!(is_idle(&ep));
}

#[test]
fn timer_a_retransmits_and_timer_b_fails_with_408() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = dial(&mut ep, t0, call());
    let out = run_until(&mut ep, t0, 40_000);
    assert_eq!(
        out.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [500, 1500, 3500, 7500, 15500, 31500]
    );
    assert!(out.iter().all(|(_, t)| t.data == inv.to_bytes()));
    assert_eq!(
        events(&mut ep),
        [Event::OutgoingFailed { call, status: 408 }]
    );
    assert!(is_idle(&ep));
}

#[test]
fn busy_is_acked_and_reported() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = dial(&mut ep, t0, call());
    ep.handle_input(
        at(t0, 100),
        trunk(),
        &reply(&inv, 486, Some("busy1"), "", ""),
    );
    let out = requests(&mut ep);
    assert_eq!(out.len(), 1);
    let ack = &out[0];
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, inv.uri);
    assert_eq!(
        branch(ack),
        branch(&inv),
        "the ACK to a non-2xx is the INVITE's"
    );
    let ae = ack.essentials().unwrap();
    assert_eq!(ae.cseq.to_string(), "1 ACK");
    assert_eq!(ae.to.tag(), Some("busy1"));
    assert_eq!(
        events(&mut ep),
        [Event::OutgoingFailed { call, status: 486 }]
    );
    assert_eq!(ep.active_calls(), 0);
    // The 486 again: ACKed again, no new event.
    ep.handle_input(
        at(t0, 600),
        trunk(),
        &reply(&inv, 486, Some("busy1"), "", ""),
    );
    assert_eq!(methods(&mut ep), ["ACK"]);
    assert!(events(&mut ep).is_empty());
    // Timer D: 32 s.
    assert_eq!(ep.poll_timeout().map(|d| ms(t0, d)), Some(32_100));
    run_until(&mut ep, t0, 32_100);
    assert!(is_idle(&ep));
}

#[test]
fn cancel_while_ringing() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = dial(&mut ep, t0, call());
    ep.handle_input(
        at(t0, 100),
        trunk(),
        &reply(&inv, 180, Some("callee1"), "", ""),
    );
    events(&mut ep);
    ep.hangup(at(t0, 2000), call);
    let out = requests(&mut ep);
    assert_eq!(out.len(), 1);
    let cancel = &out[0];
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, inv.uri);
    assert_eq!(branch(cancel), branch(&inv));
    let ce = cancel.essentials().unwrap();
    let ie = inv.essentials().unwrap();
    assert_eq!(ce.cseq.to_string(), "1 CANCEL");
    assert_eq!((ce.to.tag(), ce.from.tag()), (None, ie.from.tag()));
    assert_eq!(ce.call_id, ie.call_id);
    // Timer E retransmits the CANCEL until its 200.
    let again = run_until(&mut ep, t0, 2500);
    assert_eq!(again.len(), 1);
    ep.handle_input(
        at(t0, 2600),
        trunk(),
        &reply(cancel, 200, Some("callee1"), "", ""),
    );
    ep.handle_input(
        at(t0, 2700),
        trunk(),
        &reply(&inv, 487, Some("callee1"), "", ""),
    );
    assert_eq!(methods(&mut ep), ["ACK"], "the 487 is ACKed");
    assert!(events(&mut ep).is_empty(), "hangup reports nothing");
    assert_eq!(ep.active_calls(), 0);
    run_until(&mut ep, t0, 100_000);
    assert!(is_idle(&ep));
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = dial(&mut ep, t0, call());
    ep.hangup(at(t0, 100), call);
    assert!(
        sent(&mut ep).is_empty(),
        "§9.1: no CANCEL before a provisional"
    );
    let out = run_until(&mut ep, t0, 600);
    assert_eq!(methods_of(&out), ["INVITE"], "timer A goes on");
    ep.handle_input(at(t0, 700), trunk(), &reply(&inv, 100, None, "", ""));
    assert_eq!(methods(&mut ep), ["CANCEL"]);
    assert!(events(&mut ep).is_empty());
    // No final response ever: 64·T1 after the CANCEL the call is given up.
    let out = run_until(&mut ep, t0, 32_699);
    assert!(methods_of(&out).iter().all(|m| m == "CANCEL"));
    assert_eq!(ep.active_calls(), 1);
    run_until(&mut ep, t0, 32_700);
    assert_eq!(ep.active_calls(), 0);
    assert!(events(&mut ep).is_empty());
    assert!(is_idle(&ep));

    // And without any answer at all, timer B ends it, silently.
    let mut ep = endpoint();
    let (call, _) = dial(&mut ep, t0, self::call());
    ep.hangup(at(t0, 100), call);
    let out = run_until(&mut ep, t0, 40_000);
    assert!(
        methods_of(&out).iter().all(|m| m == "INVITE"),
        "never a CANCEL"
    );
    assert!(events(&mut ep).is_empty());
    assert!(is_idle(&ep));
}

fn methods_of(out: &[(u64, Transmit)]) -> Vec<String> {
    out.iter()
        .map(|(_, t)| request(t).method.to_string())
        .collect()
}

#[test]
fn a_2xx_crossing_the_cancel_is_acked_and_ended() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = dial(&mut ep, t0, call());
    ep.handle_input(t0, trunk(), &reply(&inv, 180, Some("callee1"), "", ""));
    ep.hangup(at(t0, 100), call);
    assert_eq!(methods(&mut ep), ["CANCEL"]);
    ep.handle_input(
        at(t0, 150),
        trunk(),
        &reply(&inv, 200, Some("callee1"), "", REMOTE_SDP),
    );
    assert_eq!(methods(&mut ep), ["ACK", "BYE"]);
    events(&mut ep)
        .iter()
        .for_each(|e| assert!(!matches!(e, Event::OutgoingAnswered { .. })));
    assert_eq!(ep.active_calls(), 0);
}

#[test]
fn a_second_2xx_from_another_fork_is_acked_and_ended() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = answered(&mut ep, t0, call());
    ep.handle_input(
        at(t0, 10),
        trunk(),
        &reply(&inv, 200, Some("fork2"), "", REMOTE_SDP),
    );
    let out = requests(&mut ep);
    assert_eq!(
        out.iter().map(|r| r.method.to_string()).collect::<Vec<_>>(),
        ["ACK", "BYE"]
    );
    assert!(
        out.iter()
            .all(|r| r.essentials().unwrap().to.tag() == Some("fork2"))
    );
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.active_calls(), 1, "the first answer is the call");
    // The fork's 2xx again: its ACK again, no second BYE.
    ep.handle_input(
        at(t0, 20),
        trunk(),
        &reply(&inv, 200, Some("fork2"), "", REMOTE_SDP),
    );
    assert_eq!(methods(&mut ep), ["ACK"]);
    let _ = call;
}

#[test]
fn a_challenging_trunk_gets_credentials_once() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut c = call();
    c.credentials = Some(("trunkuser".into(), "trunkpass".into()));
    let (call, inv) = dial(&mut ep, t0, c);
    let challenge = "Proxy-Authenticate: Digest realm=\"trunk.example\", nonce=\"n0nce\", \
algorithm=MD5, qop=\"auth\", opaque=\"op\"\r\n";
    ep.handle_input(
        at(t0, 100),
        trunk(),
        &reply(&inv, 407, Some("t1"), challenge, ""),
    );
    let out = requests(&mut ep);
    assert_eq!(
        out.iter().map(|r| r.method.to_string()).collect::<Vec<_>>(),
        ["ACK", "INVITE"]
    );
    let inv2 = &out[1];
    let (e1, e2) = (inv.essentials().unwrap(), inv2.essentials().unwrap());
    assert_eq!(e2.cseq.to_string(), "2 INVITE");
    assert_eq!(
        (e2.call_id.as_str(), e2.from.tag()),
        (e1.call_id.as_str(), e1.from.tag())
    );
    assert_eq!(e2.to.tag(), None);
    assert_ne!(branch(inv2), branch(&inv));
    assert_eq!(inv2.body, inv.body);
    let value = inv2.headers.get("Proxy-Authorization").unwrap();
    let cred = Credentials::from_value(&auth::parse_auth_values(value)[0]).unwrap();
    assert_eq!(cred.username, "trunkuser");
    assert_eq!(cred.realm, "trunk.example");
    assert_eq!(cred.uri, inv.uri.to_string());
    assert_eq!(cred.opaque.as_deref(), Some("op"));
    let key = auth::ha1(Algorithm::Md5, "trunkuser", "trunk.example", "trunkpass");
    let expect = auth::response(
        Algorithm::Md5,
        &key,
        &DigestInput {
            method: "INVITE",
            uri: &cred.uri,
            nonce: "n0nce",
            qop_auth: Some((cred.nc.as_deref().unwrap(), cred.cnonce.as_deref().unwrap())),
        },
    );
    assert_eq!(cred.response, expect);
    assert!(events(&mut ep).is_empty());
    // A 180 on the new transaction, then the 2xx: the ACK carries the credentials.
    ep.handle_input(
        at(t0, 200),
        trunk(),
        &reply(inv2, 180, Some("callee1"), "", ""),
    );
    ep.handle_input(
        at(t0, 300),
        trunk(),
        &reply(inv2, 200, Some("callee1"), "", REMOTE_SDP),
    );
    let ack = requests(&mut ep);
    assert_eq!(ack[0].method, Method::Ack);
    assert_eq!(ack[0].essentials().unwrap().cseq.to_string(), "2 ACK");
    assert_eq!(ack[0].headers.get("Proxy-Authorization"), Some(value));
    assert_eq!(
        events(&mut ep),
        [
            Event::OutgoingProgress {
                call,
                status: 180,
                sdp: None
            },
            Event::OutgoingAnswered {
                call,
                sdp: Some(REMOTE_SDP.into())
            }
        ]
    );
}

#[test]
fn a_second_challenge_fails_the_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut c = call();
    c.credentials = Some(("u".into(), "wrong".into()));
    let (call, inv) = dial(&mut ep, t0, c);
    let challenge = "WWW-Authenticate: Digest realm=\"r\", nonce=\"a\", qop=\"auth\"\r\n";
    ep.handle_input(t0, trunk(), &reply(&inv, 401, Some("t1"), challenge, ""));
    let out = requests(&mut ep);
    assert!(out[1].headers.contains("Authorization"));
    let challenge = "WWW-Authenticate: Digest realm=\"r\", nonce=\"b\", qop=\"auth\"\r\n";
    ep.handle_input(t0, trunk(), &reply(&out[1], 401, Some("t2"), challenge, ""));
    assert_eq!(methods(&mut ep), ["ACK"]);
    assert_eq!(
        events(&mut ep),
        [Event::OutgoingFailed { call, status: 401 }]
    );

    // Without credentials a challenge is a failure at once.
    let (call, inv) = dial(&mut ep, t0, self::call());
    let challenge = "Proxy-Authenticate: Digest realm=\"r\", nonce=\"a\", qop=\"auth\"\r\n";
    ep.handle_input(t0, trunk(), &reply(&inv, 407, Some("t3"), challenge, ""));
    assert_eq!(methods(&mut ep), ["ACK"]);
    assert_eq!(
        events(&mut ep),
        [Event::OutgoingFailed { call, status: 407 }]
    );
}

#[test]
fn a_challenged_bye_is_sent_again_with_credentials() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut c = call();
    c.credentials = Some(("trunkuser".into(), "trunkpass".into()));
    let (call, _) = answered(&mut ep, t0, c);
    ep.hangup(at(t0, 1000), call);
    let bye = requests(&mut ep).remove(0);
    let challenge = "WWW-Authenticate: Digest realm=\"trunk.example\", nonce=\"x\", algorithm=SHA-256, qop=\"auth\"\r\n";
    ep.handle_input(
        at(t0, 1100),
        trunk(),
        &reply(&bye, 401, Some("callee1"), challenge, ""),
    );
    let again = requests(&mut ep);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].method, Method::Bye);
    assert_eq!(again[0].essentials().unwrap().cseq.to_string(), "3 BYE");
    assert!(
        again[0]
            .headers
            .get("Authorization")
            .unwrap()
            .contains("algorithm=SHA-256")
    );
    ep.handle_input(
        at(t0, 1200),
        trunk(),
        &reply(&again[0], 200, Some("callee1"), "", ""),
    );
    run_until(&mut ep, t0, 100_000);
    assert!(is_idle(&ep));
}

#[test]
fn the_far_end_hangs_up_or_re_invites() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = answered(&mut ep, t0, call());
    // re-INVITE: the same flow as on calls we received.
    let mut re = String::from_utf8(from_callee(&inv, "INVITE", "callee1", 1)).unwrap();
    re = re.replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{REMOTE_SDP}",
            REMOTE_SDP.len()
        ),
    );
    ep.handle_input(at(t0, 1000), trunk(), re.as_bytes());
    assert_eq!(statuses(&mut ep), [100]);
    assert_eq!(
        events(&mut ep),
        [Event::ReInvite {
            call,
            offer: Some(REMOTE_SDP.into())
        }]
    );
    ep.answer(at(t0, 1100), call, OFFER);
    assert_eq!(statuses(&mut ep), [200]);
    let ack = String::from_utf8(from_callee(&inv, "ACK", "callee1", 1)).unwrap();
    ep.handle_input(at(t0, 1200), trunk(), ack.as_bytes());
    assert!(events(&mut ep).is_empty());
    // BYE from the far end.
    ep.handle_input(
        at(t0, 2000),
        trunk(),
        &from_callee(&inv, "BYE", "callee1", 2),
    );
    assert_eq!(statuses(&mut ep), [200]);
    assert_eq!(
        events(&mut ep),
        [Event::CallEnded {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(ep.active_calls(), 0);
}

#[test]
fn a_bad_request_uri_fails_at_once() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut c = call();
    c.request_uri = "not a uri".into();
    let call = ep.invite(t0, c);
    let mut c = self::call();
    c.request_uri = "tel:+3612345678".into();
    let call2 = ep.invite(t0, c);
    assert!(sent(&mut ep).is_empty());
    assert_eq!(
        events(&mut ep),
        [
            Event::OutgoingFailed { call, status: 400 },
            Event::OutgoingFailed {
                call: call2,
                status: 416
            }
        ]
    );
    assert!(is_idle(&ep));
}

#[test]
fn calls_over_tcp_say_so() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut c = call();
    c.to = Peer {
        transport: Transport::Tcp,
        addr: "198.51.100.5:5060".parse().unwrap(),
    };
    ep.invite(t0, c);
    let inv = requests(&mut ep).remove(0);
    assert_eq!(inv.essentials().unwrap().via[0].transport, "TCP");
    assert_eq!(
        inv.headers.get("Contact"),
        Some("<sip:192.0.2.100:5060;transport=tcp>")
    );
    assert_eq!(
        ep.poll_timeout().map(|d| ms(t0, d)),
        Some(32_000),
        "no timer A over TCP, only B"
    );
}

/// T6: the phone we called (an operator's) sends REFER: the endpoint reports the target
/// and waits for the daemon's answer; a 202 is followed by NOTIFYs with the transfer's
/// progress as `message/sipfrag`. A REFER without Refer-To, or a second one while the
/// first waits, is refused.
#[test]
fn a_refer_from_the_far_end_is_reported_answered_and_notified() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, inv) = answered(&mut ep, t0, call());
    let refer = |cseq: u32, refer_to: &str| {
        String::from_utf8(from_callee(&inv, "REFER", "callee1", cseq))
            .unwrap()
            .replace(
                "Content-Length: 0\r\n",
                &format!("{refer_to}Content-Length: 0\r\n"),
            )
    };
    ep.handle_input(at(t0, 1000), trunk(), refer(1, "").as_bytes());
    assert_eq!(statuses(&mut ep), [400]);
    // Compact form, and an attended transfer's Replaces in the URI.
    let attended = "r: <sip:1002@192.0.2.100?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n";
    ep.handle_input(at(t0, 1100), trunk(), refer(2, attended).as_bytes());
    assert!(sent(&mut ep).is_empty(), "the daemon answers");
    assert_eq!(
        events(&mut ep),
        [Event::Refer {
            call,
            target: ReferTarget {
                uri: "sip:1002@192.0.2.100".into(),
                user: Some("1002".into()),
                replaces: Some("abc@host;to-tag=1;from-tag=2".into()),
            }
        }]
    );
    ep.handle_input(
        at(t0, 1200),
        trunk(),
        refer(3, "Refer-To: <sip:1003@192.0.2.100>\r\n").as_bytes(),
    );
    assert_eq!(statuses(&mut ep), [491]);
    ep.refer_reply(at(t0, 1300), call, 202);
    assert_eq!(statuses(&mut ep), [202]);
    ep.refer_notify(at(t0, 1400), call, 100, false);
    ep.refer_notify(at(t0, 1500), call, 200, true);
    let notifies = requests(&mut ep);
    assert_eq!(notifies.len(), 2);
    for (n, (state, body)) in notifies.iter().zip([
        ("active;expires=60", "SIP/2.0 100 Trying\r\n"),
        ("terminated;reason=noresource", "SIP/2.0 200 OK\r\n"),
    ]) {
        assert_eq!(n.method, Method::Notify);
        assert_eq!(n.uri.as_str(), CALLEE_CONTACT, "to the remote target");
        assert_eq!(n.headers.get("Event"), Some("refer"));
        assert_eq!(n.headers.get("Subscription-State"), Some(state));
        assert_eq!(
            n.headers.get("Content-Type"),
            Some("message/sipfrag;version=2.0")
        );
        assert_eq!(String::from_utf8_lossy(&n.body), body);
    }
}
