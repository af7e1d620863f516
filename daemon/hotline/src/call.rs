//! One task per inbound call: picks the flow, negotiates media, answers, then drives the
//! sans-IO `IvrCall` with the RTP socket, SIP events and timers, and writes the CDR.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_core::callback::{NewCallbackRequest, RequestSource};
use hotline_core::cdr::{CallEnd, CallStart, EndReason};
use hotline_core::ivr_call::{Hangup, IvrCall, PromptLibrary, Request};
use hotline_core::store::Store;
use hotline_ivr::FlowSet;
use hotline_media::Codec;
use hotline_media::rtp::RtpConfig;
use hotline_sip::sdp::{self, Negotiated, SdpError};
use hotline_sip::{CallHandle, Peer};
use metrics::{counter, gauge};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::metrics::{ACTIVE_CALLS, CALLS_TOTAL, RTP_PACKETS_RECEIVED, RTP_PACKETS_SENT};
use crate::net::{LocalAddress, RtpPorts};
use crate::sip_driver::{SipCommand, SipHandle};

/// What the SIP task tells a call.
pub enum CallEvent {
    Acked,
    Cancelled,
    ReInvite(Option<String>),
    Dtmf(char),
    Ended(hotline_sip::EndReason),
}

pub struct CallSetup {
    pub handle: CallHandle,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub offer: Option<String>,
    pub source: Peer,
}

/// Flows and their prompts, swapped whole on reload; a call keeps the set it started with.
pub struct LoadedFlows {
    pub set: FlowSet,
    pub prompts: Arc<PromptLibrary>,
}

/// What every call task shares.
pub struct Calls {
    pub store: Store,
    pub flows: RwLock<Arc<LoadedFlows>>,
    pub sip: SipHandle,
    pub rtp_ports: RtpPorts,
    pub local: LocalAddress,
    pub rtp_timeout: Duration,
    /// Becomes true when the drain time is over: calls still up get BYE.
    pub shutdown: watch::Receiver<bool>,
    pub active: AtomicUsize,
    pub queues: WaitingLists,
    pub clock: WallClock,
}

/// The wall clock flows see (schedules, offers). Tests may start it at a chosen moment
/// (`HOTLINE_TEST_CLOCK`) so a call takes the workday, holiday or after-hours branch
/// whenever the test runs; it then advances in real time.
pub struct WallClock {
    start: Option<(chrono::DateTime<chrono::Utc>, Instant)>,
}

impl WallClock {
    pub fn real() -> WallClock {
        WallClock { start: None }
    }

    pub fn starting_at(at: chrono::DateTime<chrono::Utc>) -> WallClock {
        WallClock {
            start: Some((at, Instant::now())),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match self.start {
            None => chrono::Utc::now(),
            Some((at, since)) => {
                at + chrono::Duration::from_std(since.elapsed()).unwrap_or_default()
            }
        }
    }
}

/// Callers waiting per queue. Until operators and distribution exist (the queue issue),
/// a queue never connects: callers hear hold music, announcements and callback offers
/// until the flow's maximum wait. The announced wait is this placeholder estimate.
#[derive(Default)]
pub struct WaitingLists(std::sync::Mutex<std::collections::HashMap<String, u32>>);

/// Placeholder expected wait per caller ahead, until handling times are measured.
const WAIT_PER_CALLER: Duration = Duration::from_secs(60);

impl WaitingLists {
    /// Adds a caller; returns their position (1 = next).
    fn join(&self, queue: &str) -> u32 {
        let mut lists = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = lists.entry(queue.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn leave(&self, queue: &str) {
        let mut lists = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = lists.get_mut(queue) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                lists.remove(queue);
            }
        }
    }
}

impl Calls {
    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    fn flows(&self) -> Arc<LoadedFlows> {
        match self.flows.read() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Counts the call as active for the task's life, whatever way it ends.
struct ActiveGuard<'a>(&'a Calls);

impl<'a> ActiveGuard<'a> {
    fn new(calls: &'a Calls) -> Self {
        calls.active.fetch_add(1, Ordering::AcqRel);
        gauge!(ACTIVE_CALLS).increment(1.0);
        ActiveGuard(calls)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        gauge!(ACTIVE_CALLS).decrement(1.0);
    }
}

pub async fn run(calls: Arc<Calls>, setup: CallSetup, mut events: mpsc::Receiver<CallEvent>) {
    let _active = ActiveGuard::new(&calls);
    let started_at_ms = unix_ms();
    let flows = calls.flows();
    let flow = flows.set.for_number(&setup.called);

    let cdr_id = match calls
        .store
        .insert_call(&CallStart {
            call_id: &setup.call_id,
            caller: &setup.caller,
            called: &setup.called,
            started_at_ms,
            flow: flow.as_ref().map(|f| f.name.as_str()),
            flow_version: flow.as_ref().map(|f| f.version.as_str()),
        })
        .await
    {
        Ok(id) => Some(id),
        Err(e) => {
            // The caller still gets served; the record is what's lost, loudly.
            warn!(call_id = %setup.call_id, "CDR insert failed: {e}");
            None
        }
    };

    let outcome = match flow {
        Some(flow) => {
            serve(
                &calls,
                &setup,
                flow,
                flows.prompts.clone(),
                &mut events,
                cdr_id,
            )
            .await
        }
        None => {
            info!(call_id = %setup.call_id, called = %setup.called, "no flow for the called number");
            calls
                .sip
                .command(SipCommand::Reject(setup.handle, 404))
                .await;
            Outcome::rejected()
        }
    };

    counter!(CALLS_TOTAL, "reason" => outcome.reason.as_str()).increment(1);
    info!(call_id = %setup.call_id, caller = %setup.caller, called = %setup.called,
          reason = outcome.reason.as_str(), digits = %outcome.digits, "call ended");
    if let Some(id) = cdr_id
        && let Err(e) = calls
            .store
            .finish_call(
                id,
                &CallEnd {
                    ended_at_ms: unix_ms(),
                    reason: outcome.reason,
                    digits: &outcome.digits,
                    path: &outcome.path,
                    variables: &outcome.variables,
                },
            )
            .await
    {
        warn!(call_id = %setup.call_id, "CDR update failed: {e}");
    }
}

struct Outcome {
    reason: EndReason,
    digits: String,
    path: Vec<String>,
    /// Variables the flow set, as a JSON object.
    variables: String,
}

impl Outcome {
    fn rejected() -> Outcome {
        Outcome::bare(EndReason::Rejected)
    }
    fn bare(reason: EndReason) -> Outcome {
        Outcome {
            reason,
            digits: String::new(),
            path: Vec::new(),
            variables: "{}".to_string(),
        }
    }
}

fn sip_end_reason(r: hotline_sip::EndReason) -> EndReason {
    match r {
        hotline_sip::EndReason::RemoteBye => EndReason::CallerHangup,
        hotline_sip::EndReason::AckTimeout => EndReason::NoAck,
        hotline_sip::EndReason::TransportError => EndReason::TransportError,
    }
}

/// Negotiates, answers and runs the flow until the call ends.
async fn serve(
    calls: &Calls,
    setup: &CallSetup,
    flow: Arc<hotline_ivr::Flow>,
    prompts: Arc<PromptLibrary>,
    events: &mut mpsc::Receiver<CallEvent>,
    cdr_id: Option<i64>,
) -> Outcome {
    let sip = &calls.sip;
    let negotiated = match negotiate(setup.offer.as_deref()) {
        Ok(n) => n,
        Err(status) => {
            sip.command(SipCommand::Reject(setup.handle, status)).await;
            return Outcome::rejected();
        }
    };
    let Some((socket, rtcp)) = calls.rtp_ports.bind() else {
        warn!(call_id = %setup.call_id, "no free RTP port in the configured range");
        sip.command(SipCommand::Reject(setup.handle, 503)).await;
        return Outcome::rejected();
    };
    let local_port = match socket.local_addr() {
        Ok(a) => a.port(),
        Err(_) => {
            sip.command(SipCommand::Reject(setup.handle, 500)).await;
            return Outcome::rejected();
        }
    };

    if flow.ring_ms > 0 {
        sip.command(SipCommand::Ringing(setup.handle)).await;
        let ring = tokio::time::sleep(Duration::from_millis(flow.ring_ms));
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                ev = events.recv() => match ev {
                    Some(CallEvent::Cancelled) | None => return Outcome::bare(EndReason::Cancelled),
                    Some(CallEvent::Ended(r)) => return Outcome::bare(sip_end_reason(r)),
                    Some(_) => {}
                },
            }
        }
    }

    let local_ip = calls.local.toward(setup.source.addr.ip());
    let session_id = rand::random::<u32>().into();
    let mut sdp_version = 1;
    let answer = sdp::answer(&negotiated, local_ip, local_port, session_id, sdp_version);
    sip.command(SipCommand::Answer(setup.handle, answer)).await;
    let now = Instant::now();
    if let Some(id) = cdr_id
        && let Err(e) = calls.store.set_call_answered(id, unix_ms()).await
    {
        warn!(call_id = %setup.call_id, "CDR update failed: {e}");
    }

    let context = hotline_ivr::CallContext {
        caller: setup.caller.clone(),
        called: setup.called.clone(),
        answered_at: calls.clock.now(),
    };
    let mut ivr = IvrCall::new(
        flow,
        context,
        prompts,
        rtp_config(&negotiated),
        calls.rtp_timeout,
        now,
    );
    ivr.start(now);
    let mut shutdown = calls.shutdown.clone();
    let mut rtp_reported = Counts::default();
    let mut next_report = now + Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    let mut rtcp_buf = [0u8; 1500];
    let mut in_queue: Option<String> = None;

    let reason = loop {
        answer_requests(calls, setup, &mut ivr, &mut in_queue).await;
        send_due(&socket, &mut ivr).await;
        for name in ivr.take_missing_prompts() {
            warn!(call_id = %setup.call_id, prompt = %name, "prompt not loaded; skipped");
        }
        if let Some(h) = ivr.hangup() {
            sip.command(SipCommand::Hangup(setup.handle)).await;
            break match h {
                Hangup::FlowEnded => EndReason::FlowHangup,
                Hangup::RtpTimeout => EndReason::RtpTimeout,
            };
        }
        if *shutdown.borrow() {
            sip.command(SipCommand::Hangup(setup.handle)).await;
            break EndReason::Shutdown;
        }
        let wake = ivr
            .poll_timeout()
            .map_or(next_report, |t| t.min(next_report));
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    ivr.handle_rtp(Instant::now(), from, &buf[..n]);
                }
            }
            // RTCP is not interpreted, but it shows the caller is still there (e.g. on hold).
            r = rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, from)) = r
                    && hotline_media::rtp::is_rtcp(&rtcp_buf[..n])
                {
                    ivr.handle_rtp(Instant::now(), from, &rtcp_buf[..n]);
                }
            }
            ev = events.recv() => match ev {
                None => break EndReason::TransportError,
                Some(CallEvent::Acked) => {}
                Some(CallEvent::Cancelled) => break EndReason::Cancelled,
                Some(CallEvent::Ended(r)) => break sip_end_reason(r),
                Some(CallEvent::Dtmf(d)) => ivr.handle_sip_dtmf(Instant::now(), d),
                Some(CallEvent::ReInvite(offer)) => match negotiate(offer.as_deref()) {
                    Ok(n) => {
                        sdp_version += 1;
                        ivr.set_remote(Instant::now(), rtp_destination(&n));
                        let answer = sdp::answer(&n, local_ip, local_port, session_id, sdp_version);
                        sip.command(SipCommand::Answer(setup.handle, answer)).await;
                    }
                    Err(status) => sip.command(SipCommand::Reject(setup.handle, status)).await,
                },
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                ivr.handle_timeout(now);
                if now >= next_report {
                    rtp_reported.report(&ivr);
                    next_report = now + Duration::from_secs(1);
                }
            }
            _ = shutdown.changed() => {}
        }
    };
    rtp_reported.report(&ivr);
    if let Some(queue) = in_queue.take() {
        calls.queues.leave(&queue);
    }
    Outcome {
        reason,
        digits: ivr.digits().to_string(),
        path: ivr.path().to_vec(),
        variables: serde_json::to_string(ivr.variables()).unwrap_or_else(|_| "{}".into()),
    }
}

/// Answers what the flow asks of the outside world (see `WaitingLists` for queues).
async fn answer_requests(
    calls: &Calls,
    setup: &CallSetup,
    ivr: &mut IvrCall,
    in_queue: &mut Option<String>,
) {
    while let Some(request) = ivr.poll_request() {
        match request {
            Request::EnterQueue { queue, priority } => {
                if let Some(old) = in_queue.take() {
                    calls.queues.leave(&old);
                }
                let position = calls.queues.join(&queue);
                info!(call_id = %setup.call_id, %queue, priority, position,
                      "caller waiting in queue (no operators yet: the queue issue adds them)");
                *in_queue = Some(queue);
                ivr.queue_status(
                    Instant::now(),
                    hotline_ivr::QueueStatus::Waiting {
                        position,
                        expected_wait: WAIT_PER_CALLER * position,
                    },
                );
            }
            Request::LeaveQueue => {
                if let Some(queue) = in_queue.take() {
                    calls.queues.leave(&queue);
                }
            }
            Request::Callback {
                number,
                queue,
                promise,
            } => {
                let stored = calls
                    .store
                    .insert_callback_request(&NewCallbackRequest {
                        number: &number,
                        queue: queue.as_deref(),
                        promise: promise.as_deref(),
                        source: RequestSource::Ivr,
                        call_id: Some(&setup.call_id),
                        requested_at_ms: unix_ms(),
                    })
                    .await;
                match stored {
                    Ok(id) => {
                        info!(call_id = %setup.call_id, %number, id, "callback request recorded")
                    }
                    Err(e) => {
                        warn!(call_id = %setup.call_id, %number, "callback request NOT stored: {e}")
                    }
                }
            }
            Request::Transfer(target) => {
                // Outbound legs need the trunk and operators (the queue issue): say so,
                // and let the flow's `on_fail` branch tell the caller.
                warn!(call_id = %setup.call_id, ?target, "transfer not available yet; flow takes its failure branch");
                ivr.transfer_result(Instant::now(), false);
            }
        }
    }
}

/// SDP offer → what we answer with, or the SIP status that refuses it.
fn negotiate(offer: Option<&str>) -> Result<Negotiated, u16> {
    // Late offer (INVITE without SDP) is not supported yet: 488 says so.
    let offer = offer.ok_or(488u16)?;
    sdp::negotiate(offer).map_err(|e| match e {
        SdpError::NoCommonCodec => 488,
        _ => 400,
    })
}

/// Where to send RTP: nowhere while the peer holds the call (c=0.0.0.0, sendonly, inactive).
fn rtp_destination(n: &Negotiated) -> Option<SocketAddr> {
    let held = n.remote_rtp.ip().is_unspecified()
        || n.remote_rtp.port() == 0
        || matches!(
            n.direction,
            sdp::Direction::SendOnly | sdp::Direction::Inactive
        );
    (!held).then_some(n.remote_rtp)
}

fn rtp_config(n: &Negotiated) -> RtpConfig {
    RtpConfig {
        codec: match n.codec {
            sdp::Codec::Pcmu => Codec::Pcmu,
            sdp::Codec::Pcma => Codec::Pcma,
        },
        payload_type: n.payload_type,
        telephone_event_pt: n.telephone_event,
        remote: rtp_destination(n),
        symmetric: true,
        ssrc: rand::random(),
        initial_seq: rand::random(),
        initial_timestamp: rand::random(),
    }
}

async fn send_due(socket: &UdpSocket, ivr: &mut IvrCall) {
    while let Some((to, packet)) = ivr.poll_transmit() {
        // A send error (ICMP unreachable from an earlier packet) must not end the call;
        // dead-call detection does that.
        let _ = socket.send_to(&packet, to).await;
    }
}

/// RTP counters already added to the metrics, so each report adds only the difference.
#[derive(Default)]
struct Counts {
    sent: u64,
    received: u64,
}

impl Counts {
    fn report(&mut self, ivr: &IvrCall) {
        let s = ivr.rtp_stats();
        counter!(RTP_PACKETS_SENT).increment(s.packets_sent.saturating_sub(self.sent));
        counter!(RTP_PACKETS_RECEIVED).increment(s.packets_received.saturating_sub(self.received));
        self.sent = s.packets_sent;
        self.received = s.packets_received;
    }
}
