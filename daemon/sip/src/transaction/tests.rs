//! Every timer instant on a virtual clock, in milliseconds from `t0`.

use super::*;
use crate::msg::Message;
use crate::{Peer, Transport};

const UDP: Peer = Peer {
    transport: Transport::Udp,
    addr: addr(),
};
const TCP: Peer = Peer {
    transport: Transport::Tcp,
    addr: addr(),
};

const fn addr() -> std::net::SocketAddr {
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(192, 0, 2, 1),
        5060,
    ))
}

fn response(status: u16, to: Peer) -> Outgoing {
    Outgoing {
        to,
        data: format!("SIP/2.0 {status} X\r\n\r\n").into_bytes(),
        kind: Kind::Response(status),
    }
}

fn ms(t0: Instant, t: Instant) -> u64 {
    (t - t0).as_millis() as u64
}

/// The timer side of every machine, for `drive`.
trait Timed {
    fn next(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant) -> Fired;
}

macro_rules! timed {
    ($($t:ty),*) => {$(
        impl Timed for $t {
            fn next(&self) -> Option<Instant> {
                self.next_deadline()
            }
            fn fire(&mut self, now: Instant) -> Fired {
                self.on_timer(now)
            }
        }
    )*};
}
timed!(ServerInvite, ServerNonInvite, ClientInvite, ClientNonInvite);

/// Fires every deadline up to `until_ms`; returns `(instant, sent?, timed_out)`.
fn drive(t0: Instant, until_ms: u64, tx: &mut impl Timed) -> Vec<(u64, bool, bool)> {
    let mut out = Vec::new();
    while let Some(d) = tx.next() {
        if ms(t0, d) > until_ms {
            break;
        }
        let f = tx.fire(d);
        out.push((ms(t0, d), f.send.is_some(), f.timed_out));
    }
    out
}

fn sends(events: &[(u64, bool, bool)]) -> Vec<u64> {
    events.iter().filter(|e| e.1).map(|e| e.0).collect()
}

fn timeouts(events: &[(u64, bool, bool)]) -> Vec<u64> {
    events.iter().filter(|e| e.2).map(|e| e.0).collect()
}

#[test]
fn server_invite_non_2xx_retransmits_with_timer_g_until_timer_h() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(false, Timers::default());
    assert!(tx.respond(t0, response(100, UDP)).is_some());
    assert_eq!(
        tx.on_retransmission().map(|o| o.kind),
        Some(Kind::Response(100))
    );
    assert!(tx.respond(t0, response(486, UDP)).is_some());
    assert_eq!(tx.state(), ServerInviteState::Completed);
    // A later response is refused; the INVITE retransmission gets the 486.
    assert!(tx.respond(t0, response(200, UDP)).is_none());
    assert_eq!(
        tx.on_retransmission().map(|o| o.kind),
        Some(Kind::Response(486))
    );
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(
        sends(&ev),
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(timeouts(&ev), [32000]);
    assert!(tx.is_terminated());
    assert_eq!(tx.next_deadline(), None);
}

#[test]
fn server_invite_ack_stops_g_and_timer_i_absorbs_for_t4() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(false, Timers::default());
    tx.respond(t0, response(404, UDP));
    let ev = drive(t0, 1600, &mut tx);
    assert_eq!(sends(&ev), [500, 1500]);
    let ack_at = t0 + Duration::from_millis(1600);
    assert_eq!(tx.on_ack(ack_at), AckMatch::Absorbed);
    assert_eq!(tx.state(), ServerInviteState::Confirmed);
    assert_eq!(tx.on_ack(ack_at), AckMatch::Absorbed);
    assert_eq!(tx.on_retransmission(), None);
    assert_eq!(tx.next_deadline().map(|d| ms(t0, d)), Some(6600));
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(6600, false, false)]);
    assert!(tx.is_terminated());
}

#[test]
fn server_invite_over_tcp_only_waits_for_the_ack() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(true, Timers::default());
    tx.respond(t0, response(486, TCP));
    assert_eq!(tx.next_deadline().map(|d| ms(t0, d)), Some(32000));
    assert_eq!(
        tx.on_ack(t0 + Duration::from_millis(10)),
        AckMatch::Absorbed
    );
    assert!(tx.is_terminated(), "timer I is zero on TCP");

    let mut tx = ServerInvite::new(true, Timers::default());
    tx.respond(t0, response(486, TCP));
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(32000, false, true)]);
}

#[test]
fn server_invite_2xx_enters_accepted_for_timer_l() {
    let t0 = Instant::now();
    let mut tx = ServerInvite::new(false, Timers::default());
    tx.respond(t0, response(180, UDP));
    tx.respond(t0 + Duration::from_millis(100), response(200, UDP));
    assert_eq!(tx.state(), ServerInviteState::Accepted);
    assert_eq!(
        tx.on_retransmission(),
        None,
        "absorbed; the TU retransmits the 2xx"
    );
    assert_eq!(tx.on_ack(t0), AckMatch::ForTu);
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(32100, false, false)]);
    assert!(tx.is_terminated());
}

#[test]
fn server_non_invite_timer_j() {
    let t0 = Instant::now();
    let mut tx = ServerNonInvite::new(false, Timers::default());
    assert_eq!(tx.on_retransmission(), None, "nothing to resend in Trying");
    tx.respond(t0, response(200, UDP));
    assert_eq!(tx.state(), ServerNonInviteState::Completed);
    assert_eq!(
        tx.on_retransmission().map(|o| o.kind),
        Some(Kind::Response(200))
    );
    assert!(tx.respond(t0, response(500, UDP)).is_none());
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(32000, false, false)]);
    assert!(tx.is_terminated());

    let mut tx = ServerNonInvite::new(true, Timers::default());
    tx.respond(t0, response(200, TCP));
    assert!(tx.is_terminated(), "timer J is zero on TCP");
}

fn request(text: &str) -> Request {
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!(),
    }
}

fn invite() -> Request {
    request(
        "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc\r\n\
Route: <sip:p1.example.com;lr>\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=a1\r\nCall-ID: cid\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n",
    )
}

fn resp(status: u16) -> Response {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc\r\nTo: <sip:bob@example.com>;tag=b2\r\n\
From: <sip:alice@example.com>;tag=a1\r\nCall-ID: cid\r\nCSeq: 7 INVITE\r\n\r\n"
    );
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Response(r) => r,
        Message::Request(_) => panic!(),
    }
}

#[test]
fn client_invite_timer_a_doubles_without_cap_until_timer_b() {
    let t0 = Instant::now();
    let (mut tx, first) = ClientInvite::start(t0, invite(), UDP, Timers::default());
    assert_eq!(first.kind, Kind::Request(Method::Invite));
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(sends(&ev), [500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(timeouts(&ev), [32000]);
    assert!(tx.is_terminated());
}

#[test]
fn client_invite_provisional_stops_a_and_b() {
    let t0 = Instant::now();
    let (mut tx, _) = ClientInvite::start(t0, invite(), UDP, Timers::default());
    let out = tx.on_response(t0 + Duration::from_millis(100), &resp(180));
    assert!(out.for_tu);
    assert_eq!(tx.state(), ClientInviteState::Proceeding);
    assert_eq!(tx.next_deadline(), None);
    let out = tx.on_response(t0 + Duration::from_millis(200), &resp(200));
    assert!(out.for_tu && out.send.is_none());
    assert_eq!(tx.state(), ClientInviteState::Accepted);
    assert!(
        tx.on_response(t0, &resp(200)).for_tu,
        "2xx retransmissions reach the TU"
    );
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(32200, false, false)], "timer M");
}

#[test]
fn client_invite_acks_non_2xx_and_waits_timer_d() {
    let t0 = Instant::now();
    let (mut tx, _) = ClientInvite::start(t0, invite(), UDP, Timers::default());
    let out = tx.on_response(t0 + Duration::from_millis(50), &resp(486));
    assert!(out.for_tu);
    let ack = out.send.unwrap();
    assert_eq!(ack.kind, Kind::Request(Method::Ack));
    let Message::Request(ack_req) = Message::parse(&ack.data).unwrap() else {
        panic!()
    };
    assert_eq!(ack_req.uri.to_string(), "sip:bob@example.com");
    let e = ack_req.essentials().unwrap();
    assert_eq!(e.cseq.to_string(), "7 ACK");
    assert_eq!(e.to.tag(), Some("b2"));
    assert_eq!(e.via.len(), 1);
    assert_eq!(e.top_via().unwrap().branch(), Some("z9hG4bKabc"));
    assert_eq!(
        ack_req.headers.get("Route"),
        Some("<sip:p1.example.com;lr>")
    );
    // A retransmitted 486 is ACKed again but not reported.
    let again = tx.on_response(t0 + Duration::from_millis(600), &resp(486));
    assert!(!again.for_tu);
    assert_eq!(again.send, Some(ack));
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(32050, false, false)], "timer D = 32 s");

    let (mut tx, _) = ClientInvite::start(t0, invite(), TCP, Timers::default());
    assert_eq!(
        tx.next_deadline().map(|d| ms(t0, d)),
        Some(32000),
        "no timer A on TCP"
    );
    tx.on_response(t0, &resp(486));
    assert!(tx.is_terminated(), "timer D is zero on TCP");
}

fn bye(to: Peer) -> Outgoing {
    Outgoing {
        to,
        data: b"BYE".to_vec(),
        kind: Kind::Request(Method::Bye),
    }
}

#[test]
fn client_non_invite_timer_e_caps_at_t2_until_timer_f() {
    let t0 = Instant::now();
    let (mut tx, _) = ClientNonInvite::start(t0, bye(UDP), Timers::default());
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(
        sends(&ev),
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(timeouts(&ev), [32000]);
}

#[test]
fn client_non_invite_proceeding_retransmits_every_t2() {
    let t0 = Instant::now();
    let (mut tx, _) = ClientNonInvite::start(t0, bye(UDP), Timers::default());
    assert!(tx.on_response(t0 + Duration::from_millis(100), 100));
    assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
    let ev = drive(t0, 12_000, &mut tx);
    assert_eq!(sends(&ev), [500, 4500, 8500]);
    assert!(tx.on_response(t0 + Duration::from_millis(12_000), 200));
    assert!(
        !tx.on_response(t0 + Duration::from_millis(12_100), 200),
        "retransmitted final absorbed"
    );
    let ev = drive(t0, 40_000, &mut tx);
    assert_eq!(ev, [(17000, false, false)], "timer K = T4");

    let (mut tx, _) = ClientNonInvite::start(t0, bye(TCP), Timers::default());
    assert_eq!(
        tx.next_deadline().map(|d| ms(t0, d)),
        Some(32000),
        "no timer E on TCP"
    );
    tx.on_response(t0, 200);
    assert!(tx.is_terminated(), "timer K is zero on TCP");
}

#[test]
fn custom_timers_scale_everything() {
    let t0 = Instant::now();
    let timers = Timers {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        t4: Duration::from_secs(1),
    };
    let mut tx = ServerInvite::new(false, timers);
    tx.respond(t0, response(500, UDP));
    let ev = drive(t0, 10_000, &mut tx);
    assert_eq!(
        sends(&ev),
        [
            100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500, 3900, 4300, 4700, 5100, 5500,
            5900, 6300
        ]
    );
    assert_eq!(timeouts(&ev), [6400]);
}

#[test]
fn server_keys() {
    let inv = invite();
    let key = ServerKey::for_request(&inv, &inv.essentials().unwrap()).unwrap();
    assert_eq!(
        key,
        ServerKey::Branch {
            branch: "z9hG4bKabc".into(),
            sent_by: "192.0.2.9".into(),
            method: Method::Invite
        }
    );
    let ack = request(
        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc\r\n\
To: <sip:bob@example.com>;tag=b2\r\nFrom: <sip:alice@example.com>;tag=a1\r\nCall-ID: cid\r\nCSeq: 7 ACK\r\n\r\n",
    );
    assert_eq!(
        ServerKey::for_request(&ack, &ack.essentials().unwrap()),
        Some(key.clone()),
        "ACK matches its INVITE"
    );
    let cancel_text = "CANCEL sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKabc\r\n\
To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=a1\r\nCall-ID: cid\r\nCSeq: 7 CANCEL\r\n\r\n";
    let cancel = request(cancel_text);
    let ckey = ServerKey::for_request(&cancel, &cancel.essentials().unwrap()).unwrap();
    assert_ne!(ckey, key, "CANCEL has its own transaction");
    assert_eq!(ckey.with_method(Method::Invite), key);
    // The bare cookie is no RFC 3261 branch (RFC 4475 badbranch).
    let legacy = request(&cancel_text.replace("z9hG4bKabc", "z9hG4bK"));
    let lkey = ServerKey::for_request(&legacy, &legacy.essentials().unwrap()).unwrap();
    assert!(lkey.is_legacy());
    assert!(!is_rfc3261_branch("z9hG4bK") && is_rfc3261_branch(&new_branch()));
}
