//! UAS behaviour on a virtual clock: every instant in ms from `t0`.

use std::time::{Duration, Instant};

use super::*;
use crate::Transport;
use crate::msg::Message;

pub(super) const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
pub(super) const ANSWER: &str = "v=0\r\no=hotline 1 1 IN IP4 192.0.2.100\r\ns=-\r\nc=IN IP4 192.0.2.100\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0\r\n";

pub(super) fn udp() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "192.0.2.1:5060".parse().unwrap(),
    }
}

pub(super) fn tcp() -> Peer {
    Peer {
        transport: Transport::Tcp,
        addr: "192.0.2.1:40001".parse().unwrap(),
    }
}

/// The caller of these tests (192.0.2.1) is the trusted trunk.
pub(super) fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig {
        advertised: "192.0.2.100:5060".parse().unwrap(),
        user_agent: "Hotline/test".into(),
        trusted_sources: vec!["192.0.2.1".parse().unwrap()],
        ..Default::default()
    })
}

pub(super) fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

pub(super) fn ms(t0: Instant, t: Instant) -> u64 {
    (t - t0).as_millis() as u64
}

/// A request from the caller; `{branch}` and friends filled in.
pub(super) struct Req {
    pub(super) method: &'static str,
    pub(super) uri: &'static str,
    pub(super) branch: String,
    pub(super) call_id: &'static str,
    pub(super) from_tag: &'static str,
    pub(super) to_tag: Option<String>,
    pub(super) cseq: u32,
    pub(super) cseq_method: &'static str,
    pub(super) extra: String,
    pub(super) body: String,
}

impl Req {
    pub(super) fn invite() -> Req {
        Req {
            method: "INVITE",
            uri: "sip:1000@192.0.2.100",
            branch: "z9hG4bKinv1".into(),
            call_id: "call-1@192.0.2.1",
            from_tag: "from1",
            to_tag: None,
            cseq: 1,
            cseq_method: "INVITE",
            extra: "Content-Type: application/sdp\r\n".into(),
            body: SDP.into(),
        }
    }

    pub(super) fn in_dialog(method: &'static str, to_tag: &str, cseq: u32) -> Req {
        Req {
            method,
            branch: format!("z9hG4bK{method}{cseq}"),
            to_tag: Some(to_tag.to_string()),
            cseq,
            cseq_method: method,
            extra: String::new(),
            body: String::new(),
            ..Req::invite()
        }
    }

    pub(super) fn out_of_dialog(method: &'static str) -> Req {
        Req {
            method,
            branch: format!("z9hG4bK{method}"),
            call_id: "other@192.0.2.1",
            cseq_method: method,
            extra: String::new(),
            body: String::new(),
            ..Req::invite()
        }
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={b}\r\nMax-Forwards: 70\r\n\
From: \"Alice Smith\" <sip:alice@example.com>;tag={ft}\r\nTo: <sip:1000@example.com>{to_tag}\r\n\
Call-ID: {cid}\r\nCSeq: {cs} {csm}\r\nContact: <sip:alice@192.0.2.1:5060>\r\n{extra}\
Content-Length: {len}\r\n\r\n{body}",
            m = self.method,
            uri = self.uri,
            b = self.branch,
            ft = self.from_tag,
            cid = self.call_id,
            cs = self.cseq,
            csm = self.cseq_method,
            extra = self.extra,
            len = self.body.len(),
            body = self.body,
        )
        .into_bytes()
    }
}

pub(super) fn parse(t: &Transmit) -> Message {
    Message::parse(&t.data).unwrap()
}

/// Status code and reason from the status line alone: a 400 to a request
/// missing essential headers lacks them too, and doesn't parse strictly.
pub(super) fn status_line(t: &Transmit) -> (u16, String) {
    let text = String::from_utf8_lossy(&t.data);
    let line = text.split("\r\n").next().unwrap();
    let rest = line
        .strip_prefix("SIP/2.0 ")
        .unwrap_or_else(|| panic!("not a response: {line}"));
    let (code, reason) = rest.split_once(' ').unwrap();
    (code.parse().unwrap(), reason.to_string())
}

pub(super) fn status(t: &Transmit) -> u16 {
    status_line(t).0
}

pub(super) fn header(t: &Transmit, name: &str) -> Option<String> {
    let headers = match parse(t) {
        Message::Response(r) => r.headers,
        Message::Request(r) => r.headers,
    };
    headers.get(name).map(str::to_string)
}

pub(super) fn to_tag(t: &Transmit) -> Option<String> {
    match parse(t) {
        Message::Response(r) => r.essentials().unwrap().to.tag().map(str::to_string),
        Message::Request(_) => None,
    }
}

pub(super) fn sent(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

pub(super) fn statuses(ep: &mut Endpoint) -> Vec<u16> {
    sent(ep).iter().map(status).collect()
}

/// The events for calls and registrations (security events are dropped: see
/// [`security_events`]).
pub(super) fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event())
        .filter(|e| !matches!(e, Event::Security(_)))
        .collect()
}

/// The security events, as (kind, source address, account).
pub(super) fn security_events(
    ep: &mut Endpoint,
) -> Vec<(super::SecurityKind, String, Option<String>)> {
    std::iter::from_fn(|| ep.poll_event())
        .filter_map(|e| match e {
            Event::Security(s) => Some((s.kind, s.from.to_string(), s.user)),
            _ => None,
        })
        .collect()
}

/// Fires every timer up to `until_ms`; returns what went out, with when.
pub(super) fn run_until(ep: &mut Endpoint, t0: Instant, until_ms: u64) -> Vec<(u64, Transmit)> {
    let mut out = Vec::new();
    while let Some(d) = ep.poll_timeout() {
        if ms(t0, d) > until_ms {
            break;
        }
        ep.handle_timeout(d);
        out.extend(sent(ep).into_iter().map(|t| (ms(t0, d), t)));
    }
    out
}

pub(super) fn is_idle(ep: &Endpoint) -> bool {
    ep.server_txs.len() == 0
        && ep.client_txs.len() == 0
        && ep.client_invites.len() == 0
        && ep.calls.len() == 0
        && ep.outgoing.len() == 0
        && ep.dialogs.is_empty()
}

/// Feeds an INVITE; returns the call and our To tag (from a 180).
fn incoming(ep: &mut Endpoint, t0: Instant) -> (CallHandle, String) {
    ep.handle_input(t0, udp(), &Req::invite().bytes());
    assert_eq!(statuses(ep), [100]);
    let Some(Event::IncomingCall { call, .. }) = events(ep).into_iter().next() else {
        panic!("no call")
    };
    ep.ringing(t0, call);
    let ringing = sent(ep);
    let tag = to_tag(&ringing[0]).unwrap();
    (call, tag)
}

/// A call answered and ACKed at `t0`.
fn confirmed(ep: &mut Endpoint, t0: Instant) -> (CallHandle, String) {
    let (call, tag) = incoming(ep, t0);
    ep.answer(t0, call, ANSWER);
    assert_eq!(statuses(ep), [200]);
    ep.handle_input(t0, udp(), &Req::in_dialog("ACK", &tag, 1).bytes());
    assert_eq!(events(ep), [Event::CallAcked { call }]);
    (call, tag)
}

#[test]
fn invite_gets_100_and_an_incoming_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.handle_input(t0, udp(), &Req::invite().bytes());
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    assert_eq!(status(&out[0]), 100);
    assert_eq!(out[0].to, udp());
    assert_eq!(to_tag(&out[0]), None, "no tag needed on 100");
    assert_eq!(header(&out[0], "CSeq").as_deref(), Some("1 INVITE"));
    assert_eq!(
        events(&mut ep),
        [Event::IncomingCall {
            call: CallHandle(1),
            call_id: "call-1@192.0.2.1".into(),
            caller: "alice".into(),
            caller_name: Some("Alice Smith".into()),
            called: "1000".into(),
            offer: Some(SDP.into()),
            source: udp(),
            origin: Origin::Trunk,
        }]
    );
    assert_eq!(ep.active_calls(), 1);
}

#[test]
fn anonymous_caller() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let text = String::from_utf8(Req::invite().bytes()).unwrap().replace(
        "\"Alice Smith\" <sip:alice@example.com>",
        "<sip:anonymous.invalid>",
    );
    ep.handle_input(t0, udp(), text.as_bytes());
    let Some(Event::IncomingCall {
        caller,
        caller_name,
        ..
    }) = events(&mut ep).pop()
    else {
        panic!()
    };
    assert_eq!((caller.as_str(), caller_name), ("anonymous", None));
}

#[test]
fn retransmitted_invite_is_absorbed_and_gets_the_last_provisional() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.handle_input(t0, udp(), &Req::invite().bytes());
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { call, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    ep.handle_input(at(t0, 500), udp(), &Req::invite().bytes());
    assert_eq!(statuses(&mut ep), [100]);
    ep.ringing(at(t0, 600), call);
    let ringing = sent(&mut ep);
    assert_eq!(status(&ringing[0]), 180);
    assert_eq!(
        header(&ringing[0], "Contact").as_deref(),
        Some("<sip:192.0.2.100:5060>")
    );
    ep.handle_input(at(t0, 1500), udp(), &Req::invite().bytes());
    let again = sent(&mut ep);
    assert_eq!(again, ringing, "the same 180, byte for byte");
    assert!(events(&mut ep).is_empty(), "no second call");
    assert_eq!(ep.active_calls(), 1);
}

#[test]
fn to_tag_is_generated_once_per_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.ringing(t0, call);
    ep.answer(t0, call, ANSWER);
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(status).collect::<Vec<_>>(), [180, 200]);
    assert!(
        out.iter()
            .all(|t| to_tag(t).as_deref() == Some(tag.as_str()))
    );
}

#[test]
fn answer_sends_200_with_contact_and_sdp_and_retransmits_until_the_ack() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.answer(t0, call, ANSWER);
    let ok = sent(&mut ep);
    assert_eq!(status(&ok[0]), 200);
    assert_eq!(
        header(&ok[0], "Contact").as_deref(),
        Some("<sip:192.0.2.100:5060>")
    );
    assert_eq!(
        header(&ok[0], "Content-Type").as_deref(),
        Some("application/sdp")
    );
    let Message::Response(r) = parse(&ok[0]) else {
        panic!()
    };
    assert_eq!(r.body, ANSWER.as_bytes());
    let retrans = run_until(&mut ep, t0, 8000);
    assert_eq!(
        retrans.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [500, 1500, 3500, 7500]
    );
    assert!(retrans.iter().all(|(_, t)| t.data == ok[0].data));
    ep.handle_input(at(t0, 8000), udp(), &Req::in_dialog("ACK", &tag, 1).bytes());
    assert!(sent(&mut ep).is_empty());
    assert_eq!(events(&mut ep), [Event::CallAcked { call }]);
    assert!(run_until(&mut ep, t0, 60_000).is_empty(), "no more 2xx");
    // A duplicate ACK changes nothing.
    ep.handle_input(
        at(t0, 60_000),
        udp(),
        &Req::in_dialog("ACK", &tag, 1).bytes(),
    );
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.active_calls(), 1);
}

#[test]
fn no_ack_ends_the_call_with_ack_timeout_and_a_bye() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.answer(t0, call, ANSWER);
    sent(&mut ep);
    let out = run_until(&mut ep, t0, 32_000);
    let oks: Vec<u64> = out
        .iter()
        .filter(|(_, t)| matches!(parse(t), Message::Response(_)))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        oks,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    let (when, bye) = out.last().unwrap();
    assert_eq!(*when, 32_000);
    let Message::Request(bye) = parse(bye) else {
        panic!("no BYE")
    };
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.1:5060");
    let e = bye.essentials().unwrap();
    assert_eq!(e.from.tag(), Some(tag.as_str()));
    assert_eq!(e.to.tag(), Some("from1"));
    assert_eq!(e.call_id, "call-1@192.0.2.1");
    assert_eq!(e.cseq.to_string(), "1 BYE");
    assert_eq!(e.top_via().unwrap().sent_by(), "192.0.2.100:5060");
    assert_eq!(
        events(&mut ep),
        [Event::CallEnded {
            call,
            reason: EndReason::AckTimeout
        }]
    );
    assert_eq!(ep.active_calls(), 0);
    // The BYE is retransmitted (timer E) until answered.
    let again = run_until(&mut ep, t0, 32_500);
    assert_eq!(again.len(), 1);
    let branch = e.top_via().unwrap().branch().unwrap().to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.100:5060;branch={branch};rport=5060\r\n\
From: <sip:1000@example.com>;tag={tag}\r\nTo: <sip:alice@example.com>;tag=from1\r\nCall-ID: call-1@192.0.2.1\r\n\
CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    ep.handle_input(at(t0, 32_600), udp(), ok.as_bytes());
    assert_eq!(ep.stats().stray_responses, 0);
    assert!(run_until(&mut ep, t0, 100_000).is_empty());
    assert!(is_idle(&ep));
}

#[test]
fn hangup_before_the_ack_holds_the_bye_until_the_ack() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.answer(t0, call, ANSWER);
    sent(&mut ep);
    ep.hangup(at(t0, 100), call);
    assert!(sent(&mut ep).is_empty(), "§15: no BYE before the ACK");
    ep.handle_input(at(t0, 300), udp(), &Req::in_dialog("ACK", &tag, 1).bytes());
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    assert!(matches!(parse(&out[0]), Message::Request(r) if r.method == Method::Bye));
    assert!(events(&mut ep).is_empty(), "hangup emits no event");
    assert_eq!(ep.active_calls(), 0);
}

#[test]
fn hangup_before_the_ack_that_never_comes_sends_bye_at_the_timeout() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, _) = incoming(&mut ep, t0);
    ep.answer(t0, call, ANSWER);
    ep.hangup(t0, call);
    sent(&mut ep);
    let out = run_until(&mut ep, t0, 32_000);
    let (when, last) = out.last().unwrap();
    assert_eq!(*when, 32_000);
    assert!(matches!(parse(last), Message::Request(r) if r.method == Method::Bye));
    assert!(events(&mut ep).is_empty());
}

#[test]
fn hangup_sends_bye_when_confirmed_and_480_while_ringing() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, _) = confirmed(&mut ep, t0);
    ep.hangup(t0, call);
    let out = sent(&mut ep);
    assert!(matches!(parse(&out[0]), Message::Request(r) if r.method == Method::Bye));
    assert!(events(&mut ep).is_empty());

    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.hangup(t0, call);
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 480);
    assert_eq!(to_tag(&out[0]), Some(tag));
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.active_calls(), 0);
}

#[test]
fn reject_sends_the_final_response_and_retransmits_it_until_the_ack() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.reject(t0, call, 486);
    assert_eq!(statuses(&mut ep), [486]);
    assert_eq!(ep.active_calls(), 0);
    let out = run_until(&mut ep, t0, 2000);
    assert_eq!(
        out.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [500, 1500],
        "timer G"
    );
    // The ACK to a non-2xx has the INVITE's branch.
    let mut ack = Req::in_dialog("ACK", &tag, 1);
    ack.branch = "z9hG4bKinv1".into();
    ep.handle_input(at(t0, 2000), udp(), &ack.bytes());
    assert!(sent(&mut ep).is_empty());
    assert!(events(&mut ep).is_empty());
    assert!(run_until(&mut ep, t0, 100_000).is_empty());
    assert!(is_idle(&ep));
}

#[test]
fn cancel_of_a_pending_invite() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    let mut cancel = Req::out_of_dialog("CANCEL");
    cancel.branch = "z9hG4bKinv1".into();
    cancel.call_id = "call-1@192.0.2.1";
    cancel.cseq = 1;
    ep.handle_input(at(t0, 1000), udp(), &cancel.bytes());
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(status).collect::<Vec<_>>(), [200, 487]);
    assert_eq!(header(&out[0], "CSeq").as_deref(), Some("1 CANCEL"));
    assert_eq!(header(&out[1], "CSeq").as_deref(), Some("1 INVITE"));
    assert!(
        out.iter()
            .all(|t| to_tag(t).as_deref() == Some(tag.as_str()))
    );
    assert_eq!(events(&mut ep), [Event::CallCancelled { call }]);
    assert_eq!(ep.active_calls(), 0);
    // The daemon's late answer is ignored.
    ep.answer(at(t0, 1100), call, ANSWER);
    assert!(sent(&mut ep).is_empty());
    // A retransmitted CANCEL gets its 200 again.
    ep.handle_input(at(t0, 1200), udp(), &cancel.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    let mut ack = Req::in_dialog("ACK", &tag, 1);
    ack.branch = "z9hG4bKinv1".into();
    ep.handle_input(at(t0, 1300), udp(), &ack.bytes());
    assert!(sent(&mut ep).is_empty());
    run_until(&mut ep, t0, 100_000);
    assert!(is_idle(&ep), "everything gone once the timers ran out");
}

#[test]
fn cancel_after_the_final_response_and_cancel_of_nothing() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, _) = incoming(&mut ep, t0);
    ep.answer(t0, call, ANSWER);
    sent(&mut ep);
    let mut cancel = Req::out_of_dialog("CANCEL");
    cancel.branch = "z9hG4bKinv1".into();
    cancel.call_id = "call-1@192.0.2.1";
    ep.handle_input(t0, udp(), &cancel.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.active_calls(), 1);

    cancel.branch = "z9hG4bKnothing".into();
    ep.handle_input(t0, udp(), &cancel.bytes());
    assert_eq!(statuses(&mut ep), [481]);
}

#[test]
fn bye_in_a_dialog_ends_the_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = confirmed(&mut ep, t0);
    ep.handle_input(at(t0, 5000), udp(), &Req::in_dialog("BYE", &tag, 2).bytes());
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(status).collect::<Vec<_>>(), [200]);
    assert_eq!(
        events(&mut ep),
        [Event::CallEnded {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    // Retransmitted BYE: same 200, no second event.
    ep.handle_input(at(t0, 5500), udp(), &Req::in_dialog("BYE", &tag, 2).bytes());
    assert_eq!(sent(&mut ep), out);
    assert!(events(&mut ep).is_empty());
    run_until(&mut ep, t0, 100_000);
    assert!(is_idle(&ep), "everything gone after a complete call");
}

#[test]
fn bye_before_the_ack_stops_the_2xx() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.answer(t0, call, ANSWER);
    sent(&mut ep);
    ep.handle_input(at(t0, 100), udp(), &Req::in_dialog("BYE", &tag, 2).bytes());
    assert_eq!(statuses(&mut ep), [200]);
    assert_eq!(
        events(&mut ep),
        [Event::CallEnded {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert!(run_until(&mut ep, t0, 100_000).is_empty());
}

#[test]
fn bye_in_an_early_dialog_terminates_the_invite() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = incoming(&mut ep, t0);
    ep.handle_input(t0, udp(), &Req::in_dialog("BYE", &tag, 2).bytes());
    assert_eq!(statuses(&mut ep), [200, 487]);
    assert_eq!(
        events(&mut ep),
        [Event::CallEnded {
            call,
            reason: EndReason::RemoteBye
        }]
    );
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    for method in ["BYE", "INVITE", "INFO", "OPTIONS"] {
        ep.handle_input(t0, udp(), &Req::in_dialog(method, "nosuchtag", 2).bytes());
        assert_eq!(statuses(&mut ep), [481], "{method}");
    }
    for method in ["BYE", "INFO", "UPDATE", "PRACK"] {
        ep.handle_input(t0, udp(), &Req::out_of_dialog(method).bytes());
        assert_eq!(statuses(&mut ep), [481], "{method} outside a dialog");
    }
    // An ACK matching nothing is dropped.
    ep.handle_input(t0, udp(), &Req::in_dialog("ACK", "nosuchtag", 1).bytes());
    ep.handle_input(t0, udp(), &Req::out_of_dialog("ACK").bytes());
    assert!(sent(&mut ep).is_empty());
    assert!(events(&mut ep).is_empty());
}

#[test]
fn options_in_and_out_of_a_dialog() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.handle_input(t0, udp(), &Req::out_of_dialog("OPTIONS").bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 200);
    assert_eq!(
        header(&out[0], "Allow").as_deref(),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REGISTER")
    );
    assert_eq!(
        header(&out[0], "Accept").as_deref(),
        Some("application/sdp")
    );
    assert_eq!(header(&out[0], "Supported").as_deref(), Some(""));
    let (_, tag) = confirmed(&mut ep, t0);
    ep.handle_input(t0, udp(), &Req::in_dialog("OPTIONS", &tag, 2).bytes());
    assert_eq!(statuses(&mut ep), [200]);
}

#[test]
fn unimplemented_methods_get_501() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    for method in ["SUBSCRIBE", "MESSAGE", "NOTIFY", "PUBLISH", "REFER", "FOO"] {
        ep.handle_input(t0, udp(), &Req::out_of_dialog(method).bytes());
        let out = sent(&mut ep);
        assert_eq!(status(&out[0]), 501, "{method}");
        assert!(header(&out[0], "Allow").is_some());
    }
    assert_eq!(
        ep.stats().requests_in.get("OTHER"),
        Some(&1),
        "extension methods share one label"
    );
}

pub(super) fn with(req: &Req, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(req.bytes()).unwrap();
    assert!(text.contains(from), "{from:?}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn validation_before_acceptance() {
    let t0 = Instant::now();
    let inv = Req::invite();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            with(&inv, "Call-ID: call-1@192.0.2.1\r\n", ""),
            400,
            "Missing Call-ID header",
        ),
        (
            with(&inv, "To: <sip:1000@example.com>\r\n", ""),
            400,
            "Missing To header",
        ),
        (
            with(&inv, "CSeq: 1 INVITE", "CSeq: 1 BYE"),
            400,
            "CSeq method does not match the request method",
        ),
        (
            with(&inv, "Content-Length: 1", "Content-Length: -1"),
            400,
            "Malformed Content-Length header",
        ),
        (
            with(
                &inv,
                "Content-Length: 1",
                "Content-Length: 99999999999999999999999",
            ),
            400,
            "Malformed Content-Length header",
        ),
        (
            with(&inv, "Content-Length: 1", "Content-Length: 9999"),
            400,
            "Content-Length exceeds the message",
        ),
        (
            with(
                &inv,
                "INVITE sip:1000@192.0.2.100 SIP/2.0",
                "INVITE sip:1000@192.0.2.100 SIP/3.0",
            ),
            505,
            "Version Not Supported",
        ),
        (
            with(&inv, "sip:1000@192.0.2.100", "mailto:1000@example.com"),
            416,
            "Unsupported URI Scheme",
        ),
        (
            with(&inv, "application/sdp", "text/html"),
            415,
            "Unsupported Media Type",
        ),
        (
            with(&inv, "c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.x"),
            400,
            "Malformed SDP: c= address is not an IP address",
        ),
        (
            with(&inv, "RTP/AVP 0 101", "RTP/AVP 9 101"),
            488,
            "Not Acceptable Here",
        ),
    ];
    for (bytes, code, reason) in cases {
        let mut ep = endpoint();
        ep.handle_input(t0, udp(), &bytes);
        let out = sent(&mut ep);
        assert_eq!(out.len(), 1, "{reason}");
        assert_eq!(status_line(&out[0]), (code, reason.to_string()));
        assert!(events(&mut ep).is_empty(), "{reason}");
    }
}

#[test]
fn require_415_accept_and_406() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut inv = Req::invite();
    inv.extra.push_str("Require: 100rel, timer\r\n");
    ep.handle_input(t0, udp(), &inv.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 420);
    assert_eq!(
        header(&out[0], "Unsupported").as_deref(),
        Some("100rel, timer")
    );

    let mut inv = Req {
        branch: "z9hG4bKinv2".into(),
        ..Req::invite()
    };
    inv.extra = "Content-Type: application/unknown\r\n".into();
    ep.handle_input(t0, udp(), &inv.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 415);
    assert_eq!(
        header(&out[0], "Accept").as_deref(),
        Some("application/sdp")
    );

    let mut inv = Req {
        branch: "z9hG4bKinv3".into(),
        ..Req::invite()
    };
    inv.extra.push_str("Accept: text/plain\r\n");
    ep.handle_input(t0, udp(), &inv.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 406);
    assert!(header(&out[0], "Warning").unwrap().starts_with("399 "));
}

#[test]
fn max_forwards_zero_is_processed_like_any_other() {
    // RFC 4475 §3.3.11: 483 is a proxy's answer, an endpoint processes it.
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.handle_input(
        t0,
        udp(),
        &with(&Req::invite(), "Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(statuses(&mut ep), [100]);
    assert_eq!(events(&mut ep).len(), 1);
}

#[test]
fn multipart_offers_are_unpacked() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut inv = Req::invite();
    inv.extra = "Content-Type: multipart/mixed;boundary=unique\r\n".into();
    inv.body = format!(
        "--unique\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--unique\r\n\
Content-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x00\r\n--unique--\r\n"
    );
    ep.handle_input(t0, udp(), &inv.bytes());
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { offer, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    assert_eq!(offer.as_deref(), Some(SDP));
}

#[test]
fn invite_without_offer() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut inv = Req::invite();
    inv.extra.clear();
    inv.body.clear();
    ep.handle_input(t0, udp(), &inv.bytes());
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { offer, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    assert_eq!(offer, None);
}

#[test]
fn draining_refuses_new_calls() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.set_draining(true);
    ep.handle_input(t0, udp(), &Req::invite().bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 503);
    assert_eq!(header(&out[0], "Retry-After").as_deref(), Some("30"));
    ep.set_draining(false);
    ep.handle_input(
        t0,
        udp(),
        &Req {
            branch: "z9hG4bKinv2".into(),
            ..Req::invite()
        }
        .bytes(),
    );
    assert_eq!(statuses(&mut ep), [100]);
}

#[test]
fn responses_follow_via_received_and_rport() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let nat = Peer {
        transport: Transport::Udp,
        addr: "203.0.113.7:31000".parse().unwrap(),
    };
    // sent-by differs from the source: received added, port from sent-by.
    ep.handle_input(t0, nat, &Req::out_of_dialog("OPTIONS").bytes());
    let out = sent(&mut ep);
    assert_eq!(
        out[0].to,
        Peer {
            transport: Transport::Udp,
            addr: "203.0.113.7:5060".parse().unwrap()
        }
    );
    assert_eq!(
        header(&out[0], "Via").as_deref(),
        Some("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKOPTIONS;received=203.0.113.7")
    );
    // With an empty rport: filled in, and the response goes to the source port.
    let req = with(
        &Req::out_of_dialog("OPTIONS"),
        "branch=z9hG4bKOPTIONS",
        "rport;branch=z9hG4bKOPTIONS2",
    );
    ep.handle_input(t0, nat, &req);
    let out = sent(&mut ep);
    assert_eq!(out[0].to, nat);
    assert_eq!(
        header(&out[0], "Via").as_deref(),
        Some("SIP/2.0/UDP 192.0.2.1:5060;rport=31000;branch=z9hG4bKOPTIONS2;received=203.0.113.7")
    );
}

#[test]
fn over_tcp_responses_use_the_connection_and_nothing_is_retransmitted() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let inv = with(&Req::invite(), "SIP/2.0/UDP", "SIP/2.0/TCP");
    ep.handle_input(t0, tcp(), &inv);
    let out = sent(&mut ep);
    assert_eq!(out[0].to, tcp());
    let Some(Event::IncomingCall { call, source, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    assert_eq!(source, tcp());
    ep.reject(t0, call, 603);
    let out = sent(&mut ep);
    assert_eq!((status(&out[0]), out[0].to), (603, tcp()));
    assert_eq!(
        ep.poll_timeout().map(|d| ms(t0, d)),
        Some(32_000),
        "only timer H"
    );
    let mut ack = Req::in_dialog("ACK", &to_tag(&out[0]).unwrap(), 1);
    ack.branch = "z9hG4bKinv1".into();
    ep.handle_input(t0, tcp(), &with(&ack, "SIP/2.0/UDP", "SIP/2.0/TCP"));
    assert!(is_idle(&ep), "timer I is zero on TCP");
}

#[test]
fn contact_says_tcp_for_calls_over_tcp() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.handle_input(
        t0,
        tcp(),
        &with(&Req::invite(), "SIP/2.0/UDP", "SIP/2.0/TCP"),
    );
    sent(&mut ep);
    let Some(Event::IncomingCall { call, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    ep.answer(t0, call, ANSWER);
    let out = sent(&mut ep);
    assert_eq!(
        header(&out[0], "Contact").as_deref(),
        Some("<sip:192.0.2.100:5060;transport=tcp>")
    );
}

#[test]
fn record_route_is_copied_and_used() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let mut inv = Req::invite();
    inv.extra
        .push_str("Record-Route: <sip:proxy.example.com;lr>\r\n");
    ep.handle_input(t0, udp(), &inv.bytes());
    sent(&mut ep);
    let Some(Event::IncomingCall { call, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    ep.answer(t0, call, ANSWER);
    let out = sent(&mut ep);
    assert_eq!(
        header(&out[0], "Record-Route").as_deref(),
        Some("<sip:proxy.example.com;lr>")
    );
    ep.handle_input(
        t0,
        udp(),
        &Req::in_dialog("ACK", &to_tag(&out[0]).unwrap(), 1).bytes(),
    );
    ep.hangup(t0, call);
    let bye = sent(&mut ep);
    assert_eq!(
        header(&bye[0], "Route").as_deref(),
        Some("<sip:proxy.example.com;lr>")
    );
}

#[test]
fn stray_responses_are_dropped_and_counted() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.100:5060;branch=z9hG4bKnope\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    ep.handle_input(t0, udp(), resp.as_bytes());
    assert!(sent(&mut ep).is_empty());
    assert_eq!(ep.stats().stray_responses, 1);
    assert_eq!(ep.stats().responses_in.get("2xx"), Some(&1));
}

#[test]
fn re_invite_answer_and_reject() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = confirmed(&mut ep, t0);
    let mut re = Req::in_dialog("INVITE", &tag, 2);
    re.extra = "Content-Type: application/sdp\r\n".into();
    re.body = SDP.replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0");
    ep.handle_input(at(t0, 1000), udp(), &re.bytes());
    assert_eq!(statuses(&mut ep), [100]);
    assert_eq!(
        events(&mut ep),
        [Event::ReInvite {
            call,
            offer: Some(re.body.clone())
        }]
    );
    // A second one while the first is pending: 500 with Retry-After (§14.2).
    let mut second = Req::in_dialog("INVITE", &tag, 3);
    second.branch = "z9hG4bKsecond".into();
    ep.handle_input(at(t0, 1100), udp(), &second.bytes());
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 500);
    assert!(header(&out[0], "Retry-After").is_some());
    ep.answer(at(t0, 1200), call, ANSWER);
    let ok = sent(&mut ep);
    assert_eq!(status(&ok[0]), 200);
    assert_eq!(to_tag(&ok[0]).as_deref(), Some(tag.as_str()));
    let retrans = run_until(&mut ep, t0, 2000);
    let oks: Vec<u64> = retrans
        .iter()
        .filter(|(_, t)| status(t) == 200)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(oks, [1700]);
    ep.handle_input(at(t0, 2000), udp(), &Req::in_dialog("ACK", &tag, 2).bytes());
    assert!(
        events(&mut ep).is_empty(),
        "CallAcked is for the initial INVITE only"
    );
    assert!(
        run_until(&mut ep, t0, 5000)
            .iter()
            .all(|(_, t)| !t.data.starts_with(b"SIP/2.0 200"))
    );

    let mut third = Req::in_dialog("INVITE", &tag, 4);
    third.branch = "z9hG4bKthird".into();
    ep.handle_input(at(t0, 6000), udp(), &third.bytes());
    sent(&mut ep);
    events(&mut ep);
    ep.reject(at(t0, 6000), call, 488);
    assert_eq!(statuses(&mut ep), [488]);
    assert_eq!(ep.active_calls(), 1, "a rejected re-INVITE keeps the call");
}

#[test]
fn out_of_order_cseq_gets_500() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (_, tag) = confirmed(&mut ep, t0);
    ep.handle_input(t0, udp(), &Req::in_dialog("OPTIONS", &tag, 5).bytes());
    assert_eq!(statuses(&mut ep), [200]);
    let mut old = Req::in_dialog("INFO", &tag, 4);
    old.branch = "z9hG4bKold".into();
    ep.handle_input(t0, udp(), &old.bytes());
    assert_eq!(statuses(&mut ep), [500]);
}

#[test]
fn info_dtmf() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = confirmed(&mut ep, t0);
    let mut info = Req::in_dialog("INFO", &tag, 2);
    info.extra = "Content-Type: application/dtmf-relay\r\n".into();
    info.body = "Signal=7\r\nDuration=250\r\n".into();
    ep.handle_input(t0, udp(), &info.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    assert_eq!(
        events(&mut ep),
        [Event::Dtmf {
            call,
            digit: '7',
            duration_ms: Some(250)
        }]
    );
    let mut info = Req::in_dialog("INFO", &tag, 3);
    info.extra = "Content-Type: application/dtmf\r\n".into();
    info.body = "#".into();
    ep.handle_input(t0, udp(), &info.bytes());
    assert_eq!(statuses(&mut ep), [200]);
    assert_eq!(
        events(&mut ep),
        [Event::Dtmf {
            call,
            digit: '#',
            duration_ms: None
        }]
    );
    let mut info = Req::in_dialog("INFO", &tag, 4);
    info.extra = "Content-Type: application/json\r\n".into();
    info.body = "{}".into();
    ep.handle_input(t0, udp(), &info.bytes());
    assert_eq!(statuses(&mut ep), [415]);
    ep.handle_input(t0, udp(), &Req::in_dialog("INFO", &tag, 5).bytes());
    assert_eq!(statuses(&mut ep), [200], "empty INFO");
    assert!(events(&mut ep).is_empty());
}

#[test]
fn rfc2543_peers_are_matched_without_branches() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let inv = with(&Req::invite(), ";branch=z9hG4bKinv1", "");
    ep.handle_input(t0, udp(), &inv);
    assert_eq!(statuses(&mut ep), [100]);
    let Some(Event::IncomingCall { call, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    ep.handle_input(t0, udp(), &inv);
    assert_eq!(
        statuses(&mut ep),
        [100],
        "retransmission matched by RFC 2543 rules"
    );
    assert!(events(&mut ep).is_empty());
    ep.reject(t0, call, 486);
    let out = sent(&mut ep);
    let tag = to_tag(&out[0]).unwrap();
    let ack = with(&Req::in_dialog("ACK", &tag, 1), ";branch=z9hG4bKACK1", "");
    ep.handle_input(t0, udp(), &ack);
    assert!(
        run_until(&mut ep, t0, 100_000).is_empty(),
        "the ACK stopped timer G"
    );
    assert!(is_idle(&ep));

    // CANCEL matched the same way.
    ep.handle_input(t0, udp(), &inv);
    sent(&mut ep);
    let Some(Event::IncomingCall { call, .. }) = events(&mut ep).pop() else {
        panic!()
    };
    let mut cancel = Req::out_of_dialog("CANCEL");
    cancel.call_id = "call-1@192.0.2.1";
    ep.handle_input(t0, udp(), &with(&cancel, ";branch=z9hG4bKCANCEL", ""));
    assert_eq!(statuses(&mut ep), [200, 487]);
    assert_eq!(events(&mut ep), [Event::CallCancelled { call }]);
}

#[test]
fn malformed_input_is_answered_400_or_dropped() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.handle_input(t0, udp(), b"garbage");
    ep.handle_input(t0, udp(), b"\xff\xfe\r\n\r\n");
    ep.handle_input(t0, udp(), b"INVITE sip:a@b SIP/2.0\r\nFrom: x\r\n\r\n");
    assert!(sent(&mut ep).is_empty(), "no Via: nobody to answer");
    ep.handle_input(
        t0,
        udp(),
        &with(&Req::invite(), "Max-Forwards: 70", "Max-Forwards"),
    );
    let out = sent(&mut ep);
    assert_eq!(status(&out[0]), 400);
    assert_eq!(ep.stats().parse_errors, 4);
    // A broken ACK gets nothing.
    ep.handle_input(
        t0,
        udp(),
        &with(
            &Req::in_dialog("ACK", "x", 1),
            "Max-Forwards: 70",
            "Max-Forwards",
        ),
    );
    assert!(sent(&mut ep).is_empty());
}

#[test]
fn stats_count_both_directions() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let (call, tag) = confirmed(&mut ep, t0);
    ep.handle_input(t0, udp(), &Req::in_dialog("BYE", &tag, 2).bytes());
    let _ = call;
    let s = ep.stats();
    assert_eq!(s.requests_in.get("INVITE"), Some(&1));
    assert_eq!(s.requests_in.get("ACK"), Some(&1));
    assert_eq!(s.requests_in.get("BYE"), Some(&1));
    assert_eq!(s.responses_out.get("1xx"), Some(&2), "100 and 180");
    assert_eq!(s.responses_out.get("2xx"), Some(&2), "200 INVITE, 200 BYE");
    assert_eq!(s.parse_errors, 0);
}
