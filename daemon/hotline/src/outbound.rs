//! Calls Hotline places itself (click-to-call, callbacks): the legs to an operator's phone
//! and to a customer through the trunk, waiting for their answers, and what the attempt
//! means for a callback entry. Once both answered, the call driver (`call.rs`) runs the
//! call like any other. Nothing that arrives over SIP makes Hotline
//! dial out: only the console, the API and the callback scheduler call these.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hotline_core::call_session::{self, HandedLeg, LocalMedia};
use hotline_core::callbacks::AttemptOutcome;
use hotline_core::cdr::{CallEnd, CdrRef, EndReason};
use hotline_sip::registrar::Binding;
use hotline_sip::sdp::{self, Codec, Direction, Negotiated};
use hotline_sip::{CallHandle, OutgoingCall, Peer, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::actors::{CallEvent, CallSetup};
use crate::config::Trunk;
use crate::context::Calls;

/// How long a phone may ring before the attempt is given up.
pub const RING_LIMIT: Duration = Duration::from_secs(45);

/// An RTP socket and its RTCP neighbour.
pub type Ports = (UdpSocket, UdpSocket);

/// The plain offer for the first leg; the second leg then gets whatever the first chose,
/// so the relay passes packets through unchanged.
pub fn first_offer() -> Negotiated {
    Negotiated {
        remote_rtp: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
        m_lines: Vec::new(),
    }
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// Rings the operator's phone (its newest registration); `shown` is what its display
/// shows as the caller.
pub async fn invite_operator(
    calls: &Calls,
    contact: &Binding,
    shown: &str,
    display: &str,
    offer: &Negotiated,
    rtp: &UdpSocket,
    events: mpsc::Sender<CallEvent>,
) -> Option<CallHandle> {
    let ip = calls.local.toward(contact.peer.addr.ip());
    let call = OutgoingCall {
        request_uri: contact.uri.clone(),
        to: contact.peer,
        from_user: shown.to_string(),
        from_display: Some(display.to_string()),
        sdp: sdp::offer(offer, ip, port(rtp), rand::random::<u32>().into(), 1),
        credentials: None,
        headers: Vec::new(),
    };
    calls.sip.invite(call, events).await
}

/// Dials the customer through the trunk, presenting `caller_id`.
pub async fn invite_customer(
    calls: &Calls,
    trunk: &Trunk,
    to: &str,
    caller_id: &str,
    offer: &Negotiated,
    rtp: &UdpSocket,
    events: mpsc::Sender<CallEvent>,
) -> Option<(CallHandle, u64)> {
    // Nothing leaves through the trunk without passing the dial plan (T5).
    let to = match trunk.dialplan.check(to) {
        Ok(number) => number,
        Err(refusal) => {
            tracing::warn!(%caller_id, "not dialled: {refusal}");
            return None;
        }
    };
    let ip = calls.local.toward(trunk.address.ip());
    let session = rand::random::<u32>().into();
    let call = OutgoingCall {
        request_uri: format!("sip:{to}@{}", trunk.address),
        to: Peer {
            transport: Transport::Udp,
            addr: trunk.address,
        },
        from_user: caller_id.to_string(),
        from_display: None,
        sdp: sdp::offer(offer, ip, port(rtp), session, 1),
        credentials: trunk.credentials.clone(),
        headers: Vec::new(),
    };
    let handle = calls.sip.invite(call, events).await?;
    Some((handle, session))
}

/// Why a leg did not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAnswered {
    /// A final SIP status.
    Status(u16),
    /// Rang for [`RING_LIMIT`].
    Timeout,
    /// Another leg of the call ended meanwhile (the operator hung up while the customer
    /// rang).
    OtherLegEnded,
    /// The SIP task is gone, or the answer had no usable SDP.
    Broken,
}

/// Waits for `leg` to answer (with its SDP answer) or fail.
pub async fn wait_answer(
    events: &mut mpsc::Receiver<CallEvent>,
    leg: CallHandle,
) -> Result<Negotiated, NotAnswered> {
    let deadline = tokio::time::sleep(RING_LIMIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Err(NotAnswered::Timeout),
            ev = events.recv() => match ev {
                Some(CallEvent::LegAnswered { leg: l, sdp }) if l == leg => {
                    return sdp
                        .as_deref()
                        .and_then(|s| sdp::negotiate(s).ok())
                        .ok_or(NotAnswered::Broken);
                }
                Some(CallEvent::LegFailed { leg: l, status }) if l == leg => {
                    return Err(NotAnswered::Status(status));
                }
                Some(CallEvent::LegEnded { .. }) => return Err(NotAnswered::OtherLegEnded),
                None => return Err(NotAnswered::Broken),
                Some(_) => {}
            },
        }
    }
}

/// The operator's answered leg of a call Hotline placed, for the call session to adopt.
pub fn answered_leg(
    calls: &Calls,
    operator: &str,
    contact: &Binding,
    rtp: &UdpSocket,
    answer: &Negotiated,
    rang_at_ms: i64,
) -> HandedLeg {
    HandedLeg {
        leg: 0,
        operator: operator.to_string(),
        remote: call_session::rtp_destination(answer),
        media: LocalMedia {
            ip: calls.local.toward(contact.peer.addr.ip()),
            port: port(rtp),
        },
        sdp_version: 1,
        rang_at_ms,
        answered_at_ms: Some(hotline_core::time::unix_ms()),
        format: call_session::format_of(answer),
    }
}

/// The customer's dialog of a call Hotline placed, as the call driver takes a caller's.
pub fn customer_dialog(
    handle: CallHandle,
    call_id: &str,
    customer: &str,
    shown: &str,
    trunk: &Trunk,
    events: mpsc::Sender<CallEvent>,
) -> CallSetup {
    CallSetup {
        handle,
        call_id: call_id.to_string(),
        caller: customer.to_string(),
        called: shown.to_string(),
        offer: None,
        source: Peer {
            transport: Transport::Udp,
            addr: trunk.address,
        },
        origin: hotline_sip::Origin::Trunk,
        events_tx: events,
    }
}

/// Closes the record of a call Hotline placed (no flow: no digits, path or variables).
pub async fn end_cdr(
    calls: &Calls,
    cdr: CdrRef,
    answered_at_ms: Option<i64>,
    reason: EndReason,
    operator: Option<&str>,
) {
    if let Some(at) = answered_at_ms {
        calls.cdr.answered(cdr, at).await;
    }
    calls
        .cdr
        .end_call(
            cdr,
            CallEnd {
                ended_at_ms: hotline_core::time::unix_ms(),
                reason,
                digits: String::new(),
                path: Vec::new(),
                variables: "{}".to_string(),
                operator: operator.map(str::to_string),
                service: Default::default(),
            },
        )
        .await;
}

/// How far a callback attempt got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// The operator's phone did not answer, so the customer was never dialled.
    OperatorNotAnswered,
    /// The customer's leg failed.
    CustomerNotAnswered(NotAnswered),
    /// The customer answered but did not press the confirmation key (customer-first).
    NotConfirmed,
    /// The customer confirmed, but no operator took the call (customer-first).
    NoOperator,
    /// The customer answered and talked to the operator this long.
    Connected(Duration),
}

/// What a callback attempt means for its entry: the outcome, a note for the history, and
/// whether the entry hides for the queue's hide time (only when the customer was dialled:
/// an operator who missed their own ring shouldn't keep the customer off the list).
pub fn attempt_outcome(
    reached: Reached,
    success_after: Duration,
) -> (AttemptOutcome, String, bool) {
    match reached {
        Reached::OperatorNotAnswered => (
            AttemptOutcome::Failed,
            "the operator's phone did not answer; the customer was not dialled".into(),
            false,
        ),
        Reached::CustomerNotAnswered(why) => {
            let (outcome, note) = match why {
                NotAnswered::Status(486 | 600) => {
                    (AttemptOutcome::Busy, "the customer was busy".into())
                }
                NotAnswered::Status(408 | 480 | 487) | NotAnswered::Timeout => (
                    AttemptOutcome::NoAnswer,
                    "the customer did not answer".into(),
                ),
                NotAnswered::Status(s @ (403 | 404 | 484 | 603)) => (
                    AttemptOutcome::Rejected,
                    format!("the call was refused ({s})"),
                ),
                NotAnswered::Status(s) => {
                    (AttemptOutcome::Failed, format!("the call failed ({s})"))
                }
                NotAnswered::OtherLegEnded => (
                    AttemptOutcome::Failed,
                    "the operator hung up before the customer answered".into(),
                ),
                NotAnswered::Broken => (
                    AttemptOutcome::Failed,
                    "the call could not be set up".into(),
                ),
            };
            (outcome, note, true)
        }
        Reached::NotConfirmed => (
            AttemptOutcome::NoAnswer,
            "the call was answered but the key was not pressed (an answering machine?)".into(),
            true,
        ),
        Reached::NoOperator => (
            AttemptOutcome::Failed,
            "the customer confirmed, but no operator took the call".into(),
            false,
        ),
        Reached::Connected(talked) if talked >= success_after => (
            AttemptOutcome::Success,
            format!("connected for {} s", talked.as_secs()),
            false,
        ),
        Reached::Connected(talked) => (
            AttemptOutcome::Failed,
            format!(
                "connected for only {} s (a success needs {} s)",
                talked.as_secs(),
                success_after.as_secs()
            ),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Duration = Duration::from_secs(10);

    #[test]
    fn success_needs_the_connected_seconds() {
        let at = |s| attempt_outcome(Reached::Connected(Duration::from_millis(s)), TEN);
        assert_eq!(at(10_000).0, AttemptOutcome::Success);
        assert_eq!(at(9_999).0, AttemptOutcome::Failed);
        assert!(at(9_999).2, "a short call hides the entry");
        assert!(!at(10_000).2);
    }

    #[test]
    fn customer_failures_map_to_outcomes() {
        let f = |n| attempt_outcome(Reached::CustomerNotAnswered(n), TEN);
        assert_eq!(f(NotAnswered::Status(486)).0, AttemptOutcome::Busy);
        assert_eq!(f(NotAnswered::Status(600)).0, AttemptOutcome::Busy);
        assert_eq!(f(NotAnswered::Status(480)).0, AttemptOutcome::NoAnswer);
        assert_eq!(f(NotAnswered::Timeout).0, AttemptOutcome::NoAnswer);
        assert_eq!(f(NotAnswered::Status(603)).0, AttemptOutcome::Rejected);
        assert_eq!(f(NotAnswered::Status(503)).0, AttemptOutcome::Failed);
        assert!(f(NotAnswered::Status(486)).2);
    }

    #[test]
    fn customer_first_outcomes() {
        let (outcome, _, hide) = attempt_outcome(Reached::NotConfirmed, TEN);
        assert_eq!((outcome, hide), (AttemptOutcome::NoAnswer, true));
        let (outcome, _, hide) = attempt_outcome(Reached::NoOperator, TEN);
        assert_eq!((outcome, hide), (AttemptOutcome::Failed, false));
    }

    #[test]
    fn an_operator_who_missed_the_ring_does_not_hide_the_customer() {
        let (outcome, note, hide) = attempt_outcome(Reached::OperatorNotAnswered, TEN);
        assert_eq!(outcome, AttemptOutcome::Failed);
        assert!(!hide);
        assert!(note.contains("not dialled"));
    }
}
