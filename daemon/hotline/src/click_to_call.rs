//! Click-to-call (T4): ring the operator's phone first; when they answer, dial the
//! customer through the trunk with the hotline number as caller ID; when the customer
//! answers, bridge the two. Only the authenticated API starts one: nothing that arrives
//! over SIP can make Hotline dial out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_core::cdr::{CallEnd, CallStart, EndReason};
use hotline_media::bridge::{Bridge, RtcpRelay, Side};
use hotline_sip::registrar::Binding;
use hotline_sip::sdp::{self, Codec, Direction, Negotiated};
use hotline_sip::{CallHandle, OutgoingCall, Peer, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::info;

use crate::call::{CallEvent, Calls, unix_ms};
use crate::config::Trunk;
use crate::sip_driver::SipCommand;

/// How long each phone may ring before the attempt is given up.
const RING_LIMIT: Duration = Duration::from_secs(45);

#[derive(Debug, thiserror::Error)]
pub enum ClickToCallError {
    #[error("no trunk is configured (trunk.address), so Hotline cannot call out")]
    NoTrunk,
    #[error("{0:?} is not a phone number: digits with an optional leading +, 3–20 of them")]
    BadNumber(String),
    #[error("no operator named {0:?}")]
    UnknownOperator(String),
    #[error("{0}'s phone is not registered")]
    NotRegistered(String),
    #[error("no free RTP port")]
    NoPorts,
}

/// Checks the request and starts the call; returns its call id (as in the CDR).
pub async fn start(
    calls: Arc<Calls>,
    trunk: Option<Trunk>,
    operator: String,
    to: String,
) -> Result<String, ClickToCallError> {
    let trunk = trunk.ok_or(ClickToCallError::NoTrunk)?;
    let digits = to.strip_prefix('+').unwrap_or(&to);
    if !(3..=20).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(ClickToCallError::BadNumber(to));
    }
    let contacts = calls
        .acd
        .ask(|reply| crate::acd_driver::AcdInput::Contacts {
            operator: operator.clone(),
            reply,
        })
        .await
        .flatten()
        .ok_or_else(|| ClickToCallError::UnknownOperator(operator.clone()))?;
    let contact = contacts
        .into_iter()
        .max_by_key(|b| b.expires_at)
        .ok_or_else(|| ClickToCallError::NotRegistered(operator.clone()))?;
    let a = calls.rtp_ports.bind().ok_or(ClickToCallError::NoPorts)?;
    let b = calls.rtp_ports.bind().ok_or(ClickToCallError::NoPorts)?;
    let call_id = format!("c2c-{:016x}", rand::random::<u64>());
    tokio::spawn(run(
        calls,
        trunk,
        operator,
        to,
        contact,
        call_id.clone(),
        a,
        b,
    ));
    Ok(call_id)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    calls: Arc<Calls>,
    trunk: Trunk,
    operator: String,
    to: String,
    contact: Binding,
    call_id: String,
    (a_rtp, a_rtcp): (UdpSocket, UdpSocket),
    (b_rtp, b_rtcp): (UdpSocket, UdpSocket),
) {
    let cdr = calls.cdr.start_call(CallStart {
        call_id: call_id.clone(),
        caller: trunk.caller_id.clone(),
        called: to.clone(),
        started_at_ms: unix_ms(),
        flow: None,
        flow_version: None,
    });
    let (reason, answered) = connect(
        &calls,
        &trunk,
        &operator,
        &to,
        &contact,
        &call_id,
        (&a_rtp, &a_rtcp),
        (&b_rtp, &b_rtcp),
    )
    .await;
    info!(%call_id, %operator, %to, reason = reason.as_str(), "click-to-call ended");
    if let Some(at) = answered {
        calls.cdr.answered(cdr, at);
    }
    calls.cdr.end_call(
        cdr,
        CallEnd {
            ended_at_ms: unix_ms(),
            reason,
            digits: String::new(),
            path: Vec::new(),
            variables: "{}".to_string(),
            operator: Some(operator),
        },
    );
}

/// Both legs up and bridged until one ends; returns why, and when the customer answered.
#[allow(clippy::too_many_arguments)]
async fn connect(
    calls: &Calls,
    trunk: &Trunk,
    operator: &str,
    to: &str,
    contact: &Binding,
    call_id: &str,
    (a_rtp, a_rtcp): (&UdpSocket, &UdpSocket),
    (b_rtp, b_rtcp): (&UdpSocket, &UdpSocket),
) -> (EndReason, Option<i64>) {
    let (tx, mut events) = mpsc::channel(64);
    let sip = &calls.sip;
    let port = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
    // The operator's phone gets a plain offer; the customer's leg then gets whatever the
    // phone chose, so the bridge passes packets through unchanged.
    let first_offer = Negotiated {
        remote_rtp: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
        m_lines: Vec::new(),
    };
    let a_ip = calls.local.toward(contact.peer.addr.ip());
    let a_call = OutgoingCall {
        request_uri: contact.uri.clone(),
        to: contact.peer,
        // The operator's phone shows whom it is about to call.
        from_user: to.to_string(),
        from_display: Some("Click-to-call".into()),
        sdp: sdp::offer(
            &first_offer,
            a_ip,
            port(a_rtp),
            rand::random::<u32>().into(),
            1,
        ),
        credentials: None,
        headers: Vec::new(),
    };
    let Some(a) = sip.invite(a_call, tx.clone()).await else {
        return (EndReason::TransportError, None);
    };
    info!(%call_id, %operator, "click-to-call: ringing the operator");
    let a_answer = match wait_answer(&mut events, a).await {
        Ok(n) => n,
        Err(reason) => {
            sip.command(SipCommand::Hangup(a)).await;
            return (reason, None);
        }
    };

    let b_ip = calls.local.toward(trunk.address.ip());
    let b_call = OutgoingCall {
        request_uri: format!("sip:{to}@{}", trunk.address),
        to: Peer {
            transport: Transport::Udp,
            addr: trunk.address,
        },
        from_user: trunk.caller_id.clone(),
        from_display: None,
        sdp: sdp::offer(
            &a_answer,
            b_ip,
            port(b_rtp),
            rand::random::<u32>().into(),
            1,
        ),
        credentials: trunk.credentials.clone(),
        headers: Vec::new(),
    };
    let Some(b) = sip.invite(b_call, tx).await else {
        sip.command(SipCommand::Hangup(a)).await;
        return (EndReason::TransportError, None);
    };
    info!(%call_id, %to, "click-to-call: dialling the customer through the trunk");
    let b_answer = match wait_answer(&mut events, b).await {
        Ok(n) => n,
        Err(reason) => {
            sip.command(SipCommand::Hangup(a)).await;
            sip.command(SipCommand::Hangup(b)).await;
            return (
                if reason == EndReason::OperatorHangup {
                    reason
                } else {
                    EndReason::Rejected
                },
                None,
            );
        }
    };
    let answered = Some(unix_ms());
    info!(%call_id, %operator, %to, "click-to-call: connected");

    let dest = |n: &Negotiated| (!n.is_hold()).then_some(n.remote_rtp);
    let mut bridge = Bridge::new(dest(&a_answer), dest(&b_answer));
    let mut shutdown = calls.shutdown.clone();
    let mut abuf = [0u8; 2048];
    let mut bbuf = [0u8; 2048];
    let mut rtcp = RtcpRelay::default();
    let mut acbuf = [0u8; 1500];
    let mut bcbuf = [0u8; 1500];
    let reason = loop {
        tokio::select! {
            r = a_rtcp.recv_from(&mut acbuf) => if let Ok((n, from)) = r
                && let Some(to) = rtcp.forward(Side::A, from, &acbuf[..n]) {
                let _ = b_rtcp.send_to(&acbuf[..n], to).await;
            },
            r = b_rtcp.recv_from(&mut bcbuf) => if let Ok((n, from)) = r
                && let Some(to) = rtcp.forward(Side::B, from, &bcbuf[..n]) {
                let _ = a_rtcp.send_to(&bcbuf[..n], to).await;
            },
            r = a_rtp.recv_from(&mut abuf) => if let Ok((n, from)) = r
                && let Some(to) = bridge.forward(Instant::now(), Side::A, from, &abuf[..n]) {
                let _ = b_rtp.send_to(&abuf[..n], to).await;
            },
            r = b_rtp.recv_from(&mut bbuf) => if let Ok((n, from)) = r
                && let Some(to) = bridge.forward(Instant::now(), Side::B, from, &bbuf[..n]) {
                let _ = a_rtp.send_to(&bbuf[..n], to).await;
            },
            ev = events.recv() => match ev {
                Some(CallEvent::LegEnded { leg }) if leg == a => {
                    sip.command(SipCommand::Hangup(b)).await;
                    break EndReason::OperatorHangup;
                }
                Some(CallEvent::LegEnded { leg }) if leg == b => {
                    sip.command(SipCommand::Hangup(a)).await;
                    break EndReason::CallerHangup;
                }
                None => break EndReason::TransportError,
                Some(_) => {}
            },
            _ = shutdown.changed() => {
                sip.command(SipCommand::Hangup(a)).await;
                sip.command(SipCommand::Hangup(b)).await;
                break EndReason::Shutdown;
            }
        }
    };
    (reason, answered)
}

/// Waits for `leg` to answer (its SDP answer) or fail.
async fn wait_answer(
    events: &mut mpsc::Receiver<CallEvent>,
    leg: CallHandle,
) -> Result<Negotiated, EndReason> {
    let deadline = tokio::time::sleep(RING_LIMIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Err(EndReason::Rejected),
            ev = events.recv() => match ev {
                Some(CallEvent::LegAnswered { leg: l, sdp }) if l == leg => {
                    return sdp
                        .as_deref()
                        .and_then(|s| sdp::negotiate(s).ok())
                        .ok_or(EndReason::TransportError);
                }
                Some(CallEvent::LegFailed { leg: l, .. }) if l == leg => return Err(EndReason::Rejected),
                Some(CallEvent::LegEnded { .. }) => return Err(EndReason::OperatorHangup),
                None => return Err(EndReason::TransportError),
                Some(_) => {}
            },
        }
    }
}
