//! Calls Hotline places itself (click-to-call, callbacks): the legs to an operator's phone
//! and to a customer through the trunk, and waiting for their answers (what an attempt
//! means for a callback entry is `callbacks::attempts`). Once both answered, the call
//! driver (`call.rs`) runs the call like any other. Nothing that arrives over SIP makes
//! Hotline dial out: only the console, the API and the callback scheduler call these.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hotline_core::call_session::{self, HandedLeg, LocalMedia};
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
/// shows as the caller. `auto_answer`: the operator asked for this call themselves (a
/// click-to-call), so phones that honour `Call-Info: answer-after=0` (and the browser
/// phone) pick up at once, as Asterisk's and FreeSWITCH's click-to-call do.
#[allow(clippy::too_many_arguments)]
pub async fn invite_operator(
    calls: &Calls,
    contact: &Binding,
    shown: &str,
    display: Option<&str>,
    offer: &Negotiated,
    rtp: &UdpSocket,
    events: mpsc::Sender<CallEvent>,
    auto_answer: bool,
) -> Option<CallHandle> {
    let ip = calls.local.toward(contact.peer.addr.ip());
    let headers = if auto_answer {
        vec![(
            "Call-Info".to_string(),
            format!("<sip:{ip}>;answer-after=0"),
        )]
    } else {
        Vec::new()
    };
    let call = OutgoingCall {
        request_uri: contact.uri.clone(),
        to: contact.peer,
        from_user: shown.to_string(),
        from_display: display.map(str::to_string),
        sdp: sdp::offer(offer, ip, port(rtp), rand::random::<u32>().into(), 1),
        credentials: None,
        headers,
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
