//! One task per inbound call: picks the flow, then drives the call's sans-IO
//! `CallSession` (hotline-core) with the sockets, SIP events, queue orders, the console's
//! buttons and timers, and carries out what it asks: SIP commands, queue inputs, legs to
//! place, transfer targets to look up, callback requests to store. It writes the CDR and
//! missed calls when the session is over.
//!
//! Calls Hotline places (click-to-call, callbacks) run on the same driver once their
//! customer answers ([`serve_placed`]): one media loop for every call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hotline_core::acd::{CallerId, OperatorStatus};
use hotline_core::call_session::{
    CALLER, CallSession, Check, Destination, FinishedCall, HandedLeg, LegId, LocalMedia,
    MonitorState, Output, PlacedSetup, PlacedStart, Port, QueueOut, RecordingEvent, Refusal,
    SessionSetup, SipOut,
};
use hotline_core::callbacks::CallbackSource;
use hotline_core::callbacks::missed::NewMissedCall;
use hotline_core::cdr::{CallEnd, CallStart, CdrRef, EndReason};
use hotline_core::ivr_call::PromptLibrary;
use hotline_core::recordings::{NewRecording, RecordingStatus};
use hotline_core::time::unix_ms;
use hotline_ivr::{FlowSet, QueueStatus, RecordMode, TransferTarget};
use hotline_sip::CallHandle;
use hotline_sip::sdp::Negotiated;
use metrics::{counter, gauge};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::actors::{AcdInput, CallEvent, CallSetup, ConsoleControl, LegIo, RingOrder, SipCommand};
use crate::context::{Calls, ConnectedCall, Dialog, LoadedFlows, RingingCall};
use crate::control::LiveCall;
use crate::metrics::{ACTIVE_CALLS, CALLS_TOTAL, RTP_PACKETS_RECEIVED, RTP_PACKETS_SENT};
use crate::outbound::Ports;
use crate::recording::RecordingFile;
use crate::relay::{Lent, RelayThreads};

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
    debug!(call_id = %setup.call_id, origin = ?setup.origin, "incoming call");
    let started_at_ms = unix_ms();
    let flows = calls.flows();
    // Direct callback (PRODUCT C5): a call to an operator's own number.
    let direct = direct_call(&calls, &setup).await;
    // An operator's phone calling a colleague's SIP user: a consultation (T6).
    let consult = consultation(&calls, &setup).await;
    let flow = match (&consult, &direct) {
        (Some((_, to)), _) => Some(Arc::new(consult_flow(to))),
        (None, Some(d)) => flow_for_own_number(&flows, &setup.called, d),
        (None, None) => flows.set.for_number(&setup.called),
    };
    let linked = direct.and_then(|d| d.linked);
    calls.dialogs().insert(
        setup.call_id.clone(),
        Dialog {
            events: setup.events_tx.clone(),
            caller: CallerId(setup.handle.0),
            placed_by: consult.map(|(by, _)| by),
        },
    );
    // Listed for `hotline show calls` until this task ends (control.rs).
    let flow_name = flow.as_ref().map(|f| f.name.clone());
    let key = CallerId(setup.handle.0);
    let live = LiveCall::new(&setup, key, flow_name);
    let _live = calls.live.track(&setup.call_id, live);

    let cdr = calls
        .cdr
        .start_call(CallStart {
            call_id: setup.call_id.clone(),
            caller: setup.caller.clone(),
            called: setup.called.clone(),
            started_at_ms,
            flow: flow.as_ref().map(|f| f.name.clone()),
            flow_version: flow.as_ref().map(|f| f.version.clone()),
        })
        .await;

    let outcome = match flow {
        Some(flow) => {
            serve(
                &calls,
                &setup,
                flow,
                flows.prompts.clone(),
                &mut events,
                cdr,
                linked.clone(),
            )
            .await
        }
        None => {
            info!(call_id = %setup.call_id, called = %setup.called, "no flow for the called number");
            calls
                .sip
                .command(SipCommand::Reject(setup.handle, 404))
                .await;
            FinishedCall::rejected()
        }
    };

    counter!(CALLS_TOTAL, "reason" => outcome.reason.as_str()).increment(1);
    info!(call_id = %setup.call_id, caller = %setup.caller, called = %setup.called,
          reason = outcome.reason.as_str(), digits = %outcome.digits,
          operator = outcome.operator.as_deref().unwrap_or("-"), "call ended");
    let ended_at_ms = unix_ms();
    if let Some(missed) = &outcome.missed
        && let Err(e) = calls
            .store
            .insert_missed_call(&NewMissedCall {
                number: &setup.caller,
                call_id: &setup.call_id,
                queue: missed.queue.as_deref(),
                reason: missed.reason,
                waited_ms: hotline_core::time::millis(missed.waited),
                path: &outcome.path.join(" "),
                missed_at_ms: ended_at_ms,
            })
            .await
    {
        warn!(call_id = %setup.call_id, "missed call NOT stored: {e}");
    }
    if let Some(missed) = &outcome.missed {
        let entry = crate::callbacks::note_on_callback_list(
            &calls,
            &setup.call_id,
            &setup.caller,
            missed.queue.as_deref(),
            CallbackSource::Missed,
        )
        .await
        .map(|noted| noted.id);
        // A missed direct call is the linked operator's to return (PRODUCT C5).
        if let (Some(entry), Some(operator)) = (entry, &linked) {
            match calls
                .store
                .mark_callback_for_operator(entry, operator)
                .await
            {
                Ok(_) => {
                    info!(call_id = %setup.call_id, %operator, entry, "missed direct call marked for the operator")
                }
                Err(e) => {
                    warn!(call_id = %setup.call_id, %operator, entry, "missed direct call NOT marked: {e}")
                }
            }
        }
    }
    calls.dialogs().remove(&setup.call_id);
    end_record(&calls, cdr, &setup.call_id, outcome, ended_at_ms).await;
}

/// Closes the call's record with what the session found.
/// `call_id`: the SIP Call-ID the record was started with.
pub async fn end_record(
    calls: &Calls,
    cdr: CdrRef,
    call_id: &str,
    outcome: FinishedCall,
    ended_at_ms: i64,
) {
    let end = CallEnd {
        ended_at_ms,
        reason: outcome.reason,
        digits: outcome.digits,
        path: outcome.path,
        variables: outcome.variables,
        operator: outcome.operator,
        service: outcome.service,
    };
    crate::metrics::call_ended(&end);
    calls.cdr.end_call(cdr, end).await;
    post_call_ended(calls, call_id);
}

/// The `call.ended` webhook, with the record as stored: once the record writer has it
/// in the database, off the call's task. A record the writer could only journal (the
/// database is down) gets no webhook.
fn post_call_ended(calls: &Calls, call_id: &str) {
    use hotline_core::notify::webhook;
    if !calls.notifier.wants(webhook::CALL_ENDED) {
        return;
    }
    let (cdr, store, notifier) = (
        calls.cdr.clone(),
        calls.store.clone(),
        calls.notifier.clone(),
    );
    let call_id = call_id.to_string();
    tokio::spawn(async move {
        cdr.flush().await;
        match store.call_by_call_id(&call_id).await {
            Ok(Some(record)) => {
                if let Err(e) = notifier
                    .webhook(webhook::CALL_ENDED, &webhook::call_ended(&record))
                    .await
                {
                    warn!(%call_id, error = %e, "call.ended webhook not stored");
                }
            }
            Ok(None) => warn!(%call_id, "call.ended webhook: the record is not in the database"),
            Err(e) => warn!(%call_id, error = %e, "call.ended webhook: reading the record"),
        }
    });
}

/// A call to an operator's own number (direct callback, PRODUCT C5).
struct DirectCall {
    /// Whose own number was called.
    owner: String,
    /// The caller's link to the owner is in force (used up now if it was for the next
    /// call only): the call's first queue offers it to this operator first, and a missed
    /// call is marked for them.
    linked: Option<String>,
}

/// Whether the call is to an operator's own number, and to whom it is linked. A store
/// failure only costs the direct routing: the call goes on as any other.
async fn direct_call(calls: &Calls, setup: &CallSetup) -> Option<DirectCall> {
    let owner = match calls.store.own_number_owner(&setup.called).await {
        Ok(owner) => owner?,
        Err(e) => {
            warn!(call_id = %setup.call_id, "direct callback lookup failed; routing as usual: {e}");
            return None;
        }
    };
    let linked = match calls
        .store
        .direct_route(&setup.called, &setup.caller, unix_ms())
        .await
    {
        Ok(route) => route.map(|r| {
            info!(call_id = %setup.call_id, caller = %setup.caller, operator = %r.operator,
                  mode = r.mode.number(), "direct callback: offered to the operator first");
            r.operator
        }),
        Err(e) => {
            warn!(call_id = %setup.call_id, "direct callback lookup failed; routing as usual: {e}");
            None
        }
    };
    Some(DirectCall { owner, linked })
}

/// The flow for a call to an operator's own number (documented in ivr-flows/README.md,
/// "Direct callback"): a flow that lists the number runs as for any call; otherwise the
/// caller goes straight into the owner's first queue (the first in queues.toml that has
/// them as a member) with hold music; an owner in no queue gets the default flow.
fn flow_for_own_number(
    flows: &LoadedFlows,
    called: &str,
    direct: &DirectCall,
) -> Option<Arc<hotline_ivr::Flow>> {
    if let Some(flow) = flow_listing(&flows.set, called) {
        return Some(flow);
    }
    match first_queue_of(&flows.set, &direct.owner) {
        Some(q) => Some(Arc::new(direct_queue_flow(&q.name, &flows.prompts))),
        None => {
            warn!(%called, operator = %direct.owner,
                  "own number of an operator in no queue (queues.toml) and listed by no flow: \
                   the default flow answers it, if there is one");
            flows.set.for_number(called)
        }
    }
}

/// The flow whose `numbers` list `number`, as written or in another form of it
/// (`06 1 234 5601` = `+3612345601`): an own number is stored in canonical form.
pub(crate) fn flow_listing(set: &FlowSet, number: &str) -> Option<Arc<hotline_ivr::Flow>> {
    let canonical = hotline_ivr::number::normalize(number).ok();
    set.flows()
        .iter()
        .find(|f| {
            f.numbers.iter().any(|n| {
                n.name == number
                    || canonical.is_some()
                        && hotline_ivr::number::normalize(&n.name).ok() == canonical
            })
        })
        .cloned()
}

/// The operator's first queue: the first in queues.toml that has them as a member.
pub(crate) fn first_queue_of<'a>(
    set: &'a FlowSet,
    operator: &str,
) -> Option<&'a hotline_ivr::QueueDef> {
    set.queues()
        .values()
        .filter(|q| q.members.iter().any(|m| m == operator))
        .min_by_key(|q| q.at)
}

/// The built-in flow of an own number no flow lists: wait in `queue` with `hold-music`
/// (when a flow uses that prompt, so it is loaded) until someone answers; a queue that
/// can't take the caller ends the call after `no-agent` (when loaded).
fn direct_queue_flow(queue: &str, prompts: &PromptLibrary) -> hotline_ivr::Flow {
    use hotline_ivr::{Hangup, Loc, Queue, Ref, StepKind};
    let at = Loc::default();
    let r = |name: &str| Ref {
        name: name.to_string(),
        at,
    };
    let loaded = |names: &[&str]| -> Vec<Ref> {
        names
            .iter()
            .filter(|n| prompts.contains_key(**n))
            .map(|n| r(n))
            .collect()
    };
    let wait = Queue {
        queue: r(queue),
        priority: 0,
        skill: None,
        music: loaded(&["hold-music"]),
        announce: Vec::new(),
        announce_every: None,
        announce_position: None,
        announce_wait: None,
        max_wait: None,
        on_timeout: None,
        on_unavailable: r("unavailable"),
        keys: Vec::new(),
        offers: None,
        callback: None,
        record: None,
        record_prompt: Vec::new(),
    };
    builtin_flow(
        "direct",
        "(built in: direct callback)",
        vec![
            ("wait", StepKind::Queue(wait)),
            (
                "unavailable",
                StepKind::Hangup(Hangup {
                    prompts: loaded(&["no-agent"]),
                }),
            ),
        ],
    )
}

fn sip_end_reason(r: hotline_sip::EndReason) -> EndReason {
    match r {
        hotline_sip::EndReason::RemoteBye => EndReason::CallerHangup,
        hotline_sip::EndReason::AckTimeout => EndReason::NoAck,
        hotline_sip::EndReason::TransportError => EndReason::TransportError,
    }
}

/// The driver's side of one call: the caller's sockets, the legs', and the console's
/// pending transfer answer.
struct CallIo {
    /// The queue engine's name for the call.
    key: CallerId,
    /// The caller's RTP and RTCP sockets; away while lent.
    caller: Option<Ports>,
    legs: Vec<LegIo>,
    /// The bridged call's sockets and media, on a relay thread.
    lent: Option<LentMedia>,
    /// Dropped when the call enters a queue (a customer-first callback stops counting as
    /// being confirmed then).
    until_queued: Option<Box<dyn Send + Sync>>,
    console_reply: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// The consultation call whose operator an attended transfer handed over: the queue
    /// engine moves their conversation here (`QueueOut::Rekey`).
    rekey_from: Option<CallerId>,
    /// The call's recording, being written, and the audio on its way there.
    recording: Option<RecordingFile>,
    pcm: Vec<i16>,
}

impl CallIo {
    fn new(key: CallerId, caller: Ports) -> CallIo {
        CallIo {
            key,
            caller: Some(caller),
            legs: Vec::new(),
            lent: None,
            until_queued: None,
            console_reply: None,
            rekey_from: None,
            recording: None,
            pcm: Vec::new(),
        }
    }

    /// Writes what the session recorded since last time.
    fn write_recorded(&mut self, session: &mut CallSession, now: Instant) {
        if let Some(file) = self.recording.as_mut() {
            session.take_recorded(&mut self.pcm);
            file.write(&self.pcm, now);
            self.pcm.clear();
        }
    }

    fn socket(&self, port: Port) -> Option<&UdpSocket> {
        match port {
            Port::Rtp(CALLER) => self.caller.as_ref().map(|c| &c.0),
            Port::Rtcp(CALLER) => self.caller.as_ref().map(|c| &c.1),
            Port::Rtp(id) => self.legs.iter().find(|l| l.id == id).map(|l| &l.rtp),
            Port::Rtcp(id) => self.legs.iter().find(|l| l.id == id).map(|l| &l.rtcp),
        }
    }

    fn handle(&self, setup: &CallSetup, leg: LegId) -> Option<CallHandle> {
        if leg == CALLER {
            return Some(setup.handle);
        }
        self.leg_handles()
            .find(|(id, _)| *id == leg)
            .map(|(_, handle)| handle)
    }

    fn leg_of(&self, handle: CallHandle) -> Option<LegId> {
        self.leg_handles()
            .find(|(_, h)| *h == handle)
            .map(|(id, _)| id)
    }

    /// Every leg's SIP handle, the lent one's too.
    fn leg_handles(&self) -> impl Iterator<Item = (LegId, CallHandle)> + '_ {
        self.legs
            .iter()
            .map(|l| (l.id, l.handle))
            .chain(self.lent.as_ref().map(|m| (m.leg, m.handle)))
    }

    /// Forgets a leg whose dialog is over (its ports are free again).
    fn drop_leg(&mut self, leg: LegId) {
        self.legs.retain(|l| l.id != leg);
    }

    /// The leg the session asked for is out (its sockets kept here), or could not be.
    fn placed(
        &mut self,
        session: &mut CallSession,
        now: Instant,
        leg: LegId,
        placed: Option<(CallHandle, UdpSocket, UdpSocket, LocalMedia)>,
    ) {
        match placed {
            Some((handle, rtp, rtcp, media)) => {
                self.legs.push(LegIo {
                    id: leg,
                    handle,
                    rtp,
                    rtcp,
                });
                session.leg_placed(now, leg, media);
            }
            None => session.leg_not_placed(now, leg),
        }
    }

    fn take_leg(&mut self, leg: LegId) -> Option<LegIo> {
        let i = self.legs.iter().position(|l| l.id == leg)?;
        Some(self.legs.swap_remove(i))
    }

    /// Lends a plainly bridged call's sockets and media to a relay thread, when the
    /// session can spare them (see [`crate::relay`]).
    fn lend(&mut self, threads: &Arc<RelayThreads>, session: &mut CallSession, now: Instant) {
        if self.lent.is_some() || self.caller.is_none() {
            return;
        }
        let Some((leg, media)) = session.lend_media() else {
            return;
        };
        let (Some(l), Some(caller)) = (self.take_leg(leg), self.caller.take()) else {
            session.return_media(media);
            return;
        };
        let handle = l.handle;
        let sockets = match [caller.0, caller.1, l.rtp, l.rtcp].map(UdpSocket::into_std) {
            [Ok(a), Ok(b), Ok(c), Ok(d)] => [a, b, c, d],
            _ => {
                self.media_lost(
                    session,
                    leg,
                    handle,
                    now,
                    "the sockets could not leave tokio",
                );
                return;
            }
        };
        match threads.lend(sockets, media) {
            Ok(on_thread) => {
                self.lent = Some(LentMedia {
                    on_thread: Some(on_thread),
                    leg,
                    handle,
                });
            }
            // The thread is gone (it panicked): this call relays on its own task.
            Err(back) => {
                let (sockets, media) = *back;
                warn!(call_id = %session.call_id(), "RTP relay thread gone; the call relays on its task");
                session.return_media(media);
                if !self.restore(leg, handle, sockets) {
                    self.media_lost(session, leg, handle, now, "the sockets cannot rejoin tokio");
                }
            }
        }
    }

    /// Takes the lent sockets and media back into the session before it gets any other
    /// input. Should that fail, the call ends.
    async fn reclaim(&mut self, session: &mut CallSession) {
        let Some(lent) = self.lent.take() else {
            return;
        };
        let Some(on_thread) = lent.on_thread else {
            // Lost before; the session has ended.
            self.lent = Some(lent);
            return;
        };
        match on_thread.reclaim().await {
            Some((sockets, media)) => {
                session.return_media(media);
                if !self.restore(lent.leg, lent.handle, sockets) {
                    let why = "the sockets cannot rejoin tokio";
                    self.media_lost(session, lent.leg, lent.handle, Instant::now(), why);
                }
            }
            None => {
                let why = "the media did not come back from its thread";
                self.media_lost(session, lent.leg, lent.handle, Instant::now(), why);
            }
        }
    }

    /// Puts a call's four sockets back under tokio: the caller's, and `leg`'s.
    fn restore(&mut self, leg: LegId, handle: CallHandle, sockets: crate::relay::Sockets) -> bool {
        match sockets.map(UdpSocket::from_std) {
            [Ok(a), Ok(b), Ok(rtp), Ok(rtcp)] => {
                self.caller = Some((a, b));
                self.legs.push(LegIo {
                    id: leg,
                    handle,
                    rtp,
                    rtcp,
                });
                true
            }
            _ => false,
        }
    }

    /// Never seen: the call's sockets are gone, so it ends (BYE to every party; the
    /// leg's SIP handle is kept for its BYE).
    fn media_lost(
        &mut self,
        session: &mut CallSession,
        leg: LegId,
        handle: CallHandle,
        now: Instant,
        why: &str,
    ) {
        warn!(call_id = %session.call_id(), "RTP relay: {why}; the call ends");
        self.lent = Some(LentMedia {
            on_thread: None,
            leg,
            handle,
        });
        session.media_lost(now);
    }
}

/// A bridged call's media on a relay thread, and the leg whose sockets went with it.
struct LentMedia {
    /// `None` once lost (never seen; the call then ends).
    on_thread: Option<Lent>,
    leg: LegId,
    handle: CallHandle,
}

/// The next datagram on `socket`; never, without one.
async fn recv_on(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The next datagram on any leg's socket; never, without legs.
async fn recv_legs(legs: &[LegIo], buf: &mut [u8]) -> (Port, usize, SocketAddr) {
    std::future::poll_fn(|cx| {
        for l in legs {
            for (port, socket) in [(Port::Rtp(l.id), &l.rtp), (Port::Rtcp(l.id), &l.rtcp)] {
                loop {
                    let mut read = tokio::io::ReadBuf::new(buf);
                    match socket.poll_recv_from(cx, &mut read) {
                        std::task::Poll::Ready(Ok(from)) => {
                            return std::task::Poll::Ready((port, read.filled().len(), from));
                        }
                        // An ICMP error from an earlier send: read on.
                        std::task::Poll::Ready(Err(_)) => continue,
                        std::task::Poll::Pending => break,
                    }
                }
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Answers the call and runs its session (the flow, the queue, the operator's leg and
/// the bridge) until it ends.
async fn serve(
    calls: &Calls,
    setup: &CallSetup,
    flow: Arc<hotline_ivr::Flow>,
    prompts: Arc<PromptLibrary>,
    events: &mut mpsc::Receiver<CallEvent>,
    cdr: CdrRef,
    direct: Option<String>,
) -> FinishedCall {
    let sip = &calls.sip;
    let Some((caller_rtp, caller_rtcp)) = calls.rtp_ports.bind() else {
        warn!(call_id = %setup.call_id, "no free RTP port in the configured range");
        sip.command(SipCommand::Reject(setup.handle, 503)).await;
        return FinishedCall::rejected();
    };
    let Ok(local_port) = caller_rtp.local_addr().map(|a| a.port()) else {
        sip.command(SipCommand::Reject(setup.handle, 500)).await;
        return FinishedCall::rejected();
    };
    let now = Instant::now();
    let session = CallSession::new(
        now,
        SessionSetup {
            call_id: setup.call_id.clone(),
            caller: setup.caller.clone(),
            called: setup.called.clone(),
            flow,
            prompts,
            offer: setup.offer.clone(),
            media: LocalMedia {
                ip: calls.local.toward(setup.source.addr.ip()),
                port: local_port,
            },
            sdp_session: rand::random::<u32>().into(),
            rtp_timeout: calls.rtp_timeout,
            flow_clock: calls.clock.now(),
            unix_ms: unix_ms(),
            direct,
            ssrc: rand::random(),
            initial_seq: rand::random(),
            initial_timestamp: rand::random(),
        },
    );
    let io = CallIo::new(CallerId(setup.handle.0), (caller_rtp, caller_rtcp));
    drive(calls, setup, cdr, session, io, events).await
}

/// A call Hotline placed, once its customer answered (see [`serve_placed`]).
pub struct PlacedCall {
    /// The customer's dialog, as an inbound caller's would be.
    pub setup: CallSetup,
    /// The queue engine's name for the call.
    pub key: CallerId,
    /// The customer's RTP and RTCP sockets.
    pub ports: Ports,
    /// The customer's answer to our offer, and our offer's SDP session id.
    pub answer: Negotiated,
    pub sdp_session: u64,
    /// The queue whose callback this is.
    pub queue: Option<String>,
    pub start: PlacedStart,
    /// The operator's answered leg (with [`PlacedStart::Operator`]): its dialog and
    /// sockets.
    pub operator: Option<(CallHandle, Ports)>,
    /// Dropped when the call enters a queue.
    pub until_queued: Option<Box<dyn Send + Sync>>,
}

/// Runs a call Hotline placed, from its customer's answer to its end, on the inbound
/// calls' driver: hold with music, transfers and the record work the same.
pub async fn serve_placed(
    calls: &Calls,
    placed: PlacedCall,
    events: &mut mpsc::Receiver<CallEvent>,
    cdr: CdrRef,
) -> FinishedCall {
    let PlacedCall {
        setup,
        key,
        ports,
        answer,
        sdp_session,
        queue,
        start,
        operator,
        until_queued,
    } = placed;
    let flow_name = match &start {
        PlacedStart::Flow { flow, .. } => Some(flow.name.clone()),
        PlacedStart::Operator { .. } => None,
    };
    let media = LocalMedia {
        ip: calls.local.toward(setup.source.addr.ip()),
        port: ports.0.local_addr().map(|a| a.port()).unwrap_or(0),
    };
    let (session, leg) = CallSession::placed(
        Instant::now(),
        PlacedSetup {
            call_id: setup.call_id.clone(),
            customer: setup.caller.clone(),
            prompts: calls.flows_now().prompts.clone(),
            answer,
            media,
            sdp_session,
            sdp_version: 1,
            queue,
            rtp_timeout: calls.rtp_timeout,
            flow_clock: calls.clock.now(),
            unix_ms: unix_ms(),
            ssrc: rand::random(),
            initial_seq: rand::random(),
            initial_timestamp: rand::random(),
            start,
        },
    );
    // Listed for `hotline show calls` while it lasts (control.rs).
    let live = LiveCall::new(&setup, key, flow_name);
    let _live = calls.live.track(&setup.call_id, live);
    let mut io = CallIo::new(key, ports);
    io.until_queued = until_queued;
    if let (Some(id), Some((handle, (rtp, rtcp)))) = (leg, operator) {
        io.legs.push(LegIo {
            id,
            handle,
            rtp,
            rtcp,
        });
    }
    drive(calls, &setup, cdr, session, io, events).await
}

/// The one media loop: feeds the session datagrams, events and timer firings until the
/// call is over, and carries out what it asks.
async fn drive(
    calls: &Calls,
    setup: &CallSetup,
    cdr: CdrRef,
    mut session: CallSession,
    mut io: CallIo,
    events: &mut mpsc::Receiver<CallEvent>,
) -> FinishedCall {
    let now = Instant::now();
    let mut shutdown = calls.shutdown.clone();
    let mut rtp_reported = Counts::default();
    let mut next_report = now + Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    let mut rtcp_buf = [0u8; 1500];
    let mut leg_buf = [0u8; 2048];
    // One timer for the call's life, moved only when the session's next timeout moves:
    // a bridged call wakes per packet, and a new timer per packet costs the relay.
    let timer = tokio::time::sleep_until(tokio::time::Instant::from_std(next_report));
    tokio::pin!(timer);
    // The operator whose console shows this call ringing (the screen pop).
    let mut ringing_shown: Option<String> = None;
    loop {
        carry_out(calls, setup, cdr, &mut session, &mut io).await;
        show_ringing(calls, setup, &session, &mut ringing_shown);
        if session.ended().is_some() {
            break;
        }
        if *shutdown.borrow() {
            session.shutdown(Instant::now());
            continue;
        }
        let timeout = session.poll_timeout();
        if let Some(threads) = &calls.relay {
            io.lend(threads, &mut session, Instant::now());
            if session.ended().is_some() {
                continue;
            }
        }
        // Lent, the session's own timers are all that can need it (the RTP report has
        // nothing new).
        let wake = tokio::time::Instant::from_std(match (&io.lent, timeout) {
            (Some(_), Some(t)) => t,
            (Some(_), None) => Instant::now() + Duration::from_secs(3600),
            (None, t) => t.map_or(next_report, |t| t.min(next_report)),
        });
        if timer.deadline() != wake {
            timer.as_mut().reset(wake);
        }
        tokio::select! {
            r = recv_on(io.caller.as_ref().map(|c| &c.0), &mut buf) => {
                if let Ok((n, from)) = r
                    && let Some((port, to)) =
                        session.handle_datagram(Instant::now(), Port::Rtp(CALLER), from, &mut buf[..n])
                    && let Some(socket) = io.socket(port)
                {
                    let _ = socket.send_to(&buf[..n], to).await;
                }
                if session.is_recording() {
                    io.write_recorded(&mut session, Instant::now());
                }
            }
            r = recv_on(io.caller.as_ref().map(|c| &c.1), &mut rtcp_buf) => {
                if let Ok((n, from)) = r
                    && hotline_media::rtp::is_rtcp(&rtcp_buf[..n])
                    && let Some((port, to)) =
                        session.handle_datagram(Instant::now(), Port::Rtcp(CALLER), from, &mut rtcp_buf[..n])
                    && let Some(socket) = io.socket(port)
                {
                    let _ = socket.send_to(&rtcp_buf[..n], to).await;
                }
            }
            (port, n, from) = recv_legs(&io.legs, &mut leg_buf) => {
                let data = &mut leg_buf[..n];
                let rtcp_ok = !matches!(port, Port::Rtcp(_)) || hotline_media::rtp::is_rtcp(data);
                if rtcp_ok
                    && let Some((port, to)) = session.handle_datagram(Instant::now(), port, from, data)
                    && let Some(socket) = io.socket(port)
                {
                    let _ = socket.send_to(data, to).await;
                }
                if session.is_recording() {
                    io.write_recorded(&mut session, Instant::now());
                }
            }
            ev = events.recv() => {
                io.reclaim(&mut session).await;
                let now = Instant::now();
                match ev {
                    Some(ev) => on_event(calls, setup, &mut session, &mut io, ev, now).await,
                    None => session.caller_ended(now, EndReason::TransportError),
                }
            }
            _ = &mut timer => {
                io.reclaim(&mut session).await;
                let now = Instant::now();
                session.handle_timeout(now);
                if now >= next_report {
                    rtp_reported.report(session.rtp_stats());
                    next_report = now + Duration::from_secs(1);
                }
            }
            _ = shutdown.changed() => io.reclaim(&mut session).await,
        }
    }
    rtp_reported.report(session.rtp_stats());
    calls.call_over(&setup.call_id);
    session.into_outcome()
}

/// Tells the consoles which operator's phone rings with the caller now, when that
/// changed: a ring starts when the queue (or a transfer) places the operator's leg, and
/// ends when it is answered, cancelled, fails, or the call ends.
fn show_ringing(
    calls: &Calls,
    setup: &CallSetup,
    session: &CallSession,
    shown: &mut Option<String>,
) {
    let now = session.ringing_operator();
    if now == shown.as_deref() {
        return;
    }
    if let Some(old) = shown.take() {
        calls.ring_over(&old, &setup.call_id);
    }
    if let Some(operator) = now {
        calls.operator_ringing(
            operator,
            RingingCall {
                call_id: setup.call_id.clone(),
                caller: setup.caller.clone(),
                since_ms: unix_ms(),
            },
            session.caller_so_far(Instant::now()),
        );
        *shown = Some(operator.to_string());
    }
}

/// One event from the SIP task, the queue or the console, for the session.
async fn on_event(
    calls: &Calls,
    setup: &CallSetup,
    session: &mut CallSession,
    io: &mut CallIo,
    ev: CallEvent,
    now: Instant,
) {
    // A call Hotline placed: its customer's dialog is an outgoing leg to the SIP task.
    let ev = match ev {
        CallEvent::LegEnded { leg } if leg == setup.handle => {
            CallEvent::Ended(hotline_sip::EndReason::RemoteBye)
        }
        CallEvent::LegReInvite { leg, offer } if leg == setup.handle => CallEvent::ReInvite(offer),
        CallEvent::LegAnswered { leg, .. } | CallEvent::LegFailed { leg, .. }
            if leg == setup.handle =>
        {
            return;
        }
        ev => ev,
    };
    match ev {
        CallEvent::Acked | CallEvent::LegProgress => {}
        CallEvent::Cancelled => session.caller_cancelled(now),
        CallEvent::Ended(r) => session.caller_ended(now, sip_end_reason(r)),
        CallEvent::Dtmf(d) => session.caller_dtmf(now, d),
        CallEvent::ReInvite(offer) => session.caller_reinvite(now, offer.as_deref()),
        CallEvent::QueueStatus(status) => session.queue_status(now, status),
        CallEvent::RingOperator(order) => {
            if let Some(leg) = session.ring_operator(now, &order.operator) {
                let placed = ring_operator(calls, setup, session, &order, false).await;
                io.placed(session, now, leg, placed);
            }
        }
        CallEvent::CancelRing => session.cancel_ring(now),
        CallEvent::LegAnswered { leg, sdp } => match io.leg_of(leg) {
            Some(id) => session.leg_answered(now, id, sdp.as_deref()),
            // A late answer from a leg that is over: that phone is not wanted now.
            None => calls.sip.command(SipCommand::Hangup(leg)).await,
        },
        CallEvent::LegFailed { leg, status } => {
            if let Some(id) = io.leg_of(leg) {
                io.drop_leg(id);
                session.leg_failed(now, id, status);
            }
        }
        CallEvent::LegEnded { leg } => {
            if let Some(id) = io.leg_of(leg) {
                io.drop_leg(id);
                session.leg_ended(now, id);
            }
        }
        CallEvent::LegReInvite { leg, offer } => {
            if let Some(id) = io.leg_of(leg) {
                session.leg_reinvite(now, id, offer.as_deref());
            }
        }
        CallEvent::LegRefer { leg, target } => match io.leg_of(leg) {
            Some(id) => session.leg_refer(now, id, target),
            None => calls.sip.command(SipCommand::ReferReply(leg, 403)).await,
        },
        CallEvent::Console(ConsoleControl::Hold { held, reply }) => {
            let _ = reply.send(session.console_hold(now, held));
        }
        CallEvent::Console(ConsoleControl::Transfer { to, note, reply }) => {
            io.console_reply = Some(reply);
            session.console_transfer(now, to, note);
        }
        CallEvent::Console(ConsoleControl::Consult { to, note, reply }) => {
            io.console_reply = Some(reply);
            session.console_consult(now, to, note);
        }
        CallEvent::Console(ConsoleControl::Monitor {
            supervisor,
            request,
            reply,
        }) => {
            let _ = reply.send(session.monitor(now, &supervisor, request));
        }
        CallEvent::Console(ConsoleControl::EndConsult { complete, reply }) => {
            let _ = reply.send(session.console_end_consult(now, complete));
        }
        // `hotline hangup` (control.rs): BYE to every party, as if the operator hung up.
        CallEvent::Console(ConsoleControl::Record { on, by, reply }) => {
            let answer = if on {
                session.start_recording(now, calls.recordings.stereo, Some(by))
            } else {
                session.stop_recording(now, Some(by))
            };
            let _ = reply.send(answer);
        }
        CallEvent::Console(ConsoleControl::Hangup { reply }) => {
            session.hang_up(now);
            let _ = reply.send(Ok(()));
        }
        CallEvent::HandOver { reply } => {
            let handed = session
                .hand_over(now)
                .and_then(|h| io.take_leg(h.leg).map(|l| (h, l)));
            let _ = reply.send(handed);
        }
    }
}

/// Does what the session asks, until it asks nothing more; some answers go straight back.
async fn carry_out(
    calls: &Calls,
    setup: &CallSetup,
    cdr: CdrRef,
    session: &mut CallSession,
    io: &mut CallIo,
) {
    let caller = io.key;
    loop {
        while let Some((port, to, packet)) = session.poll_transmit() {
            // A send error (ICMP unreachable from an earlier packet) must not end the
            // call; dead-call detection does that.
            if let Some(socket) = io.socket(port) {
                let _ = socket.send_to(&packet, to).await;
            }
        }
        let Some(out) = session.poll_output() else {
            return;
        };
        // Where the call stands now, for `hotline show calls` (control.rs).
        calls.live.note(&setup.call_id, &out);
        match out {
            Output::Sip(out) => sip_out(calls, setup, io, out).await,
            Output::Queue(out) => {
                if matches!(
                    out,
                    QueueOut::Enqueue { .. }
                        | QueueOut::EnqueueTransferred { .. }
                        | QueueOut::EnqueueCallback { .. }
                ) {
                    io.until_queued = None;
                }
                let input = match out {
                    QueueOut::Enqueue {
                        queue,
                        priority,
                        skill,
                        first: Some(operator),
                    } => AcdInput::EnqueueDirect {
                        caller,
                        queue,
                        priority,
                        skill,
                        operator,
                        events: setup.events_tx.clone(),
                    },
                    QueueOut::Enqueue {
                        queue,
                        priority,
                        skill,
                        first: None,
                    } => AcdInput::Enqueue {
                        caller,
                        queue,
                        priority,
                        skill,
                        events: setup.events_tx.clone(),
                    },
                    QueueOut::EnqueueTransferred {
                        queue,
                        priority,
                        since,
                    } => AcdInput::EnqueueTransferred {
                        caller,
                        queue,
                        priority,
                        since,
                        events: setup.events_tx.clone(),
                    },
                    QueueOut::Leave => {
                        let (reply, _) = tokio::sync::oneshot::channel();
                        AcdInput::Leave { caller, reply }
                    }
                    QueueOut::RingAnswered { leg, operator } => {
                        let accepted = calls
                            .acd
                            .ask(|reply| AcdInput::RingAnswered {
                                caller,
                                operator,
                                reply,
                            })
                            .await
                            .unwrap_or(false);
                        session.ring_accepted(Instant::now(), leg, accepted);
                        continue;
                    }
                    QueueOut::RingFailed { operator, failure } => AcdInput::RingFailed {
                        caller,
                        operator,
                        failure,
                    },
                    QueueOut::EnqueueCallback { queue, since } => {
                        let queued = calls
                            .acd
                            .ask(|reply| AcdInput::EnqueueCallback {
                                caller,
                                queue,
                                since,
                                events: setup.events_tx.clone(),
                                reply,
                            })
                            .await
                            .unwrap_or(false);
                        if !queued {
                            session.queue_status(Instant::now(), QueueStatus::Unavailable);
                        }
                        continue;
                    }
                    QueueOut::CallEnded => AcdInput::CallEnded { caller },
                    QueueOut::OutboundEnded { operator } => AcdInput::OutboundEnded {
                        operator,
                        call: caller,
                    },
                    QueueOut::OutboundCancelled { operator } => AcdInput::OutboundCancelled {
                        operator,
                        call: caller,
                    },
                    QueueOut::Rekey => {
                        let Some(from) = io.rekey_from.take() else {
                            continue;
                        };
                        AcdInput::Rekey {
                            from,
                            to: caller,
                            events: setup.events_tx.clone(),
                        }
                    }
                };
                calls.acd.send(input).await;
            }
            Output::Answered { at_ms } => calls.cdr.answered(cdr, at_ms).await,
            Output::PlaceOperator {
                leg,
                operator,
                auto_answer,
            } => {
                let placed =
                    place_operator(calls, setup, session, io.key, &operator, auto_answer).await;
                io.placed(session, Instant::now(), leg, placed);
            }
            Output::Monitor {
                supervisor,
                operator,
                state,
            } => log_monitoring(calls, setup, &supervisor, operator, state),
            Output::Consulting { operator, state } => {
                calls.operator_consulting(&operator, &setup.call_id, state)
            }
            Output::PlaceExternal { leg, number } => {
                let placed = place_external(calls, setup, session, &number).await;
                io.placed(session, Instant::now(), leg, placed);
            }
            Output::Check(check) => {
                let result = check_transfer(calls, check).await;
                session.target_checked(Instant::now(), result);
            }
            Output::Callback {
                number,
                queue,
                promise,
            } => {
                let promised = crate::callbacks::store_callback_request(
                    calls,
                    &setup.call_id,
                    &number,
                    queue,
                    promise,
                )
                .await;
                if let Some((in_ms, same_day)) = promised {
                    session.callback_promise(Instant::now(), in_ms, same_day);
                }
            }
            Output::Connected {
                operator,
                queue,
                note,
                record,
            } => {
                // The queue step's setting, else the queue's.
                let record = record.unwrap_or_else(|| {
                    queue
                        .as_ref()
                        .and_then(|q| calls.flows().set.queues().get(q).map(|d| d.record))
                        .unwrap_or_default()
                });
                if record == RecordMode::Always && !session.is_recording() {
                    let _ = session.start_recording(Instant::now(), calls.recordings.stereo, None);
                }
                // The wait is final now: the panel shows it as it was at the answer.
                calls.caller_so_far_now(&setup.call_id, session.caller_so_far(Instant::now()));
                calls.operator_joined(
                    &operator,
                    ConnectedCall {
                        call_id: setup.call_id.clone(),
                        caller: setup.caller.clone(),
                        queue,
                        since_ms: unix_ms(),
                        held: false,
                        note,
                        consult: None,
                        control: setup.events_tx.clone(),
                        record,
                        recording: session.is_recording(),
                    },
                )
            }
            Output::Recording(event) => recording_event(calls, setup, session, io, event).await,
            Output::Held { operator, held } => calls.operator_held(&operator, &setup.call_id, held),
            Output::Disconnected { operator } => calls.operator_left(&operator, &setup.call_id),
            Output::Replace { dialog, from } => match take_over(calls, &dialog, &from).await {
                Ok((handed, leg_io, other)) => {
                    // The leg's SIP events come here from now on.
                    calls
                        .sip
                        .command(SipCommand::Reroute {
                            call: leg_io.handle,
                            owner: setup.events_tx.clone(),
                        })
                        .await;
                    match session.replaced(Instant::now(), Ok(handed)) {
                        Some(id) => {
                            io.legs.push(LegIo { id, ..leg_io });
                            io.rekey_from = Some(other);
                        }
                        None => calls.sip.command(SipCommand::Hangup(leg_io.handle)).await,
                    }
                }
                Err(refusal) => {
                    session.replaced(Instant::now(), Err(refusal));
                }
            },
            Output::ConsoleReply(answer) => {
                if let Some(reply) = io.console_reply.take() {
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

/// Opens, marks and closes the call's recording file and its row.
async fn recording_event(
    calls: &Calls,
    setup: &CallSetup,
    session: &mut CallSession,
    io: &mut CallIo,
    event: RecordingEvent,
) {
    let now = Instant::now();
    match event {
        RecordingEvent::Started {
            by,
            stereo,
            operator,
            queue,
        } => {
            let started_at_ms = unix_ms();
            let row = NewRecording {
                call_id: &setup.call_id,
                caller: &setup.caller,
                operator: operator.as_deref(),
                queue: queue.as_deref(),
                path: "",
                layout: if stereo { "stereo" } else { "mono" },
                started_by: by.as_deref(),
                started_at_ms,
            };
            match RecordingFile::open(&calls.store, &calls.recordings, &row, now).await {
                Ok(file) => {
                    info!(call_id = %setup.call_id, id = file.id, path = %file.rel_path, "recording");
                    crate::recording::log_access(
                        &calls.store,
                        by.as_deref(),
                        file.id,
                        &setup.call_id,
                        "start",
                        None,
                        started_at_ms,
                    )
                    .await;
                    io.recording = Some(file);
                    calls.call_recording(&setup.call_id, true);
                }
                Err(e) => {
                    warn!(call_id = %setup.call_id, "recording NOT started: {e}");
                    let _ = session.stop_recording(now, None);
                }
            }
        }
        RecordingEvent::Mark { offset_ms, label } => {
            if let Some(file) = &io.recording {
                let offset = i64::try_from(offset_ms).unwrap_or(i64::MAX);
                if let Err(e) = calls
                    .store
                    .add_recording_mark(file.id, offset, &label)
                    .await
                {
                    warn!(call_id = %setup.call_id, "recording mark NOT stored: {e}");
                }
            }
        }
        RecordingEvent::Stopped { by, duration_ms } => {
            io.write_recorded(session, now);
            calls.call_recording(&setup.call_id, false);
            let Some(file) = io.recording.take() else {
                return;
            };
            let id = file.id;
            let bytes = match file.finish() {
                Ok(bytes) => bytes,
                Err(e) => {
                    warn!(call_id = %setup.call_id, "recording NOT completed: {e}");
                    0
                }
            };
            let ended_at_ms = unix_ms();
            let duration = i64::try_from(duration_ms).unwrap_or(i64::MAX);
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            if let Err(e) = calls
                .store
                .finish_recording(id, ended_at_ms, duration, bytes, RecordingStatus::Complete)
                .await
            {
                warn!(call_id = %setup.call_id, "recording row NOT closed: {e}");
            }
            if by.is_some() {
                crate::recording::log_access(
                    &calls.store,
                    by.as_deref(),
                    id,
                    &setup.call_id,
                    "stop",
                    None,
                    ended_at_ms,
                )
                .await;
            }
        }
    }
}

async fn sip_out(calls: &Calls, setup: &CallSetup, io: &mut CallIo, out: SipOut) {
    let sip = &calls.sip;
    let command = |leg: LegId| io.handle(setup, leg);
    match out {
        SipOut::Ringing => sip.command(SipCommand::Ringing(setup.handle)).await,
        SipOut::Answer { leg, sdp } => {
            if let Some(h) = command(leg) {
                sip.command(SipCommand::Answer(h, sdp)).await;
            }
        }
        SipOut::Reject { leg, status } => {
            if let Some(h) = command(leg) {
                sip.command(SipCommand::Reject(h, status)).await;
            }
        }
        SipOut::Hangup { leg } => {
            if let Some(h) = command(leg) {
                sip.command(SipCommand::Hangup(h)).await;
            }
            io.drop_leg(leg);
        }
        SipOut::ReferReply { leg, status } => {
            if let Some(h) = command(leg) {
                sip.command(SipCommand::ReferReply(h, status)).await;
            }
        }
        SipOut::ReferNotify { leg, status, last } => {
            if let Some(h) = command(leg) {
                sip.command(SipCommand::ReferNotify(h, status, last)).await;
            }
        }
    }
}

/// Places the operator leg the queue asked for, offering the caller's own codec so the
/// bridge needs no transcoding. `None`: the phone can't be rung (the queue hears
/// "unreachable" and tries someone else).
/// `auto_answer`: they asked for this call themselves (a supervisor joining a call).
async fn ring_operator(
    calls: &Calls,
    setup: &CallSetup,
    session: &CallSession,
    order: &RingOrder,
    auto_answer: bool,
) -> Option<(CallHandle, UdpSocket, UdpSocket, LocalMedia)> {
    // The most recent registration of the phone.
    let contact = order.contacts.iter().max_by_key(|b| b.expires_at)?;
    let Some((rtp, rtcp)) = calls.rtp_ports.bind() else {
        warn!(call_id = %setup.call_id, "no free RTP port for the operator leg");
        return None;
    };
    let media = LocalMedia {
        ip: calls.local.toward(contact.peer.addr.ip()),
        port: rtp.local_addr().ok()?.port(),
    };
    // The operator's phone shows who is calling.
    let handle = crate::outbound::invite_operator(
        calls,
        contact,
        &setup.caller,
        None,
        session.caller_media(),
        &rtp,
        setup.events_tx.clone(),
        auto_answer,
    )
    .await?;
    Some((handle, rtp, rtcp, media))
}

/// Files a supervisor's step on the call in the audit log (PRODUCT S1: who, which call,
/// what, when); the board shows it from [`crate::control::LiveCalls`].
fn log_monitoring(
    calls: &Calls,
    setup: &CallSetup,
    supervisor: &str,
    operator: String,
    state: MonitorState,
) {
    info!(call_id = %setup.call_id, %supervisor, %operator, action = state.as_str(), "monitoring");
    let entry = hotline_core::monitoring::MonitoringEntry {
        at_ms: unix_ms(),
        supervisor: supervisor.to_string(),
        call_id: setup.call_id.clone(),
        caller: setup.caller.clone(),
        operator,
        queue: calls.live.queue_of(&setup.call_id),
        action: state.as_str().to_string(),
        detail: match state {
            MonitorState::Ended(why) => Some(why),
            _ => None,
        },
    };
    let store = calls.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.log_monitoring(&entry).await {
            warn!(call_id = %entry.call_id, "filing the monitoring log: {e}");
        }
    });
}

/// Rings an operator's phone outside the queues (a consultation from the console): they
/// are busy to the queues under this call from now on. `None`: they can't take a call
/// now, or their phone can't be rung.
async fn place_operator(
    calls: &Calls,
    setup: &CallSetup,
    session: &CallSession,
    key: CallerId,
    operator: &str,
    auto_answer: bool,
) -> Option<(CallHandle, UdpSocket, UdpSocket, LocalMedia)> {
    let started = calls
        .acd
        .ask(|reply| AcdInput::OutboundStarted {
            operator: operator.to_string(),
            call: key,
            queue: None,
            reply,
        })
        .await;
    if !matches!(started, Some(Ok(()))) {
        info!(call_id = %setup.call_id, %operator, "consultation: the operator is busy");
        return None;
    }
    let contacts = calls
        .acd
        .ask(|reply| AcdInput::Contacts {
            operator: operator.to_string(),
            reply,
        })
        .await
        .flatten()
        .unwrap_or_default();
    let order = RingOrder {
        operator: operator.to_string(),
        contacts,
    };
    ring_operator(calls, setup, session, &order, auto_answer).await
}

/// Dials the outside number a transfer goes to, through the trunk.
async fn place_external(
    calls: &Calls,
    setup: &CallSetup,
    session: &CallSession,
    number: &str,
) -> Option<(CallHandle, UdpSocket, UdpSocket, LocalMedia)> {
    let trunk = calls.trunk.as_ref()?;
    let (rtp, rtcp) = calls.rtp_ports.bind()?;
    let media = LocalMedia {
        ip: calls.local.toward(trunk.address.ip()),
        port: rtp.local_addr().ok()?.port(),
    };
    let (handle, _) = crate::outbound::invite_customer(
        calls,
        trunk,
        number,
        &trunk.caller_id,
        session.caller_media(),
        &rtp,
        setup.events_tx.clone(),
    )
    .await?;
    Some((handle, rtp, rtcp, media))
}

/// Where a transfer sends the caller, and whether it may now: an operator who isn't the
/// one transferring and can take a call (in their first queue), a queue that exists (and,
/// for a phone's or the console's transfer, has someone online), a number the dial plan
/// allows, or (a REFER) a number a flow answers.
async fn check_transfer(calls: &Calls, check: Check) -> Result<Destination, Refusal> {
    let (target, from) = match check {
        Check::Refer { target, from } => match resolve_refer(calls, &target).await? {
            ReferTo::Flow(flow, number) => {
                return Ok(Destination::Flow {
                    flow,
                    prompts: calls.flows_now().prompts.clone(),
                    number,
                });
            }
            ReferTo::Transfer(t) => (t, Some(from)),
        },
        Check::Console { to, from } => (to, Some(from)),
        // A consultation with a queue reaches whoever it would ring now.
        Check::Consult {
            to: TransferTarget::Queue(q),
            from,
        } => {
            let free = calls
                .acd
                .ask(|reply| AcdInput::FreeMember {
                    queue: q.clone(),
                    except: from.clone(),
                    reply,
                })
                .await
                .flatten()
                .ok_or_else(|| {
                    (
                        480,
                        format!("Nobody in the {q} queue is free to consult now."),
                    )
                })?;
            (TransferTarget::Operator(free), Some(from))
        }
        Check::Consult { to, from } => (to, Some(from)),
        Check::Flow(to) => (to, None),
    };
    match target {
        TransferTarget::Operator(op) => {
            if from.as_deref() == Some(op.as_str()) {
                return Err((403, format!("{op} cannot transfer to themselves")));
            }
            let queue = first_queue_of(&calls.flows_now().set, &op)
                .map(|q| q.name.clone())
                .ok_or_else(|| (404, format!("{op} is in no queue")))?;
            if !operator_free(calls, &op).await {
                return Err((480, format!("{op} cannot take a call now")));
            }
            Ok(Destination::Operator {
                operator: op,
                queue,
            })
        }
        TransferTarget::Queue(q) => {
            if !calls.flows_now().set.queues().contains_key(&q) {
                return Err((404, format!("no queue {q:?}")));
            }
            if from.is_some() {
                // A queue with nobody online (free or busy) would only hang the caller up.
                let figures = calls
                    .acd
                    .ask(|reply| AcdInput::Figures { reply })
                    .await
                    .unwrap_or_default();
                let staffed = figures
                    .iter()
                    .any(|(name, f)| *name == q && f.online + f.busy > 0);
                if !staffed {
                    return Err((480, format!("nobody in the {q} queue can take calls now")));
                }
            }
            Ok(Destination::Queue(q))
        }
        TransferTarget::External(number) => {
            let trunk = calls
                .trunk
                .as_ref()
                .ok_or((404, "no trunk is configured".to_string()))?;
            let number = trunk
                .dialplan
                .check(&number)
                .map_err(|e| (e.sip_status(), e.to_string()))?;
            Ok(Destination::External(number))
        }
    }
}

/// An attended transfer: the consultation call `dialog` that `operator`'s phone placed
/// hands its other party over. `Err` has the REFER's refusal.
async fn take_over(
    calls: &Calls,
    dialog: &str,
    operator: &str,
) -> Result<(HandedLeg, LegIo, CallerId), Refusal> {
    let (events, other) = {
        let dialogs = calls.dialogs();
        let d = dialogs
            .get(dialog)
            .ok_or_else(|| (481, format!("no call {dialog} to replace")))?;
        if d.placed_by.as_deref() != Some(operator) {
            return Err((
                403,
                format!("call {dialog} is not {operator}'s consultation"),
            ));
        }
        (d.events.clone(), d.caller)
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    events
        .send(CallEvent::HandOver { reply })
        .await
        .map_err(|_| (481, format!("call {dialog} is over")))?;
    let handed = tokio::time::timeout(Duration::from_secs(2), answer)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .ok_or_else(|| (481, format!("nobody to take over in call {dialog}")))?;
    Ok((handed.0, handed.1, other))
}

/// A call from an operator's phone to a colleague's SIP user (the first step of an
/// attended transfer): who calls, and whom. The phone is known by its digest login, or
/// (from a trusted address, which is not challenged) by its From user sent from where
/// that operator's phone is registered.
async fn consultation(calls: &Calls, setup: &CallSetup) -> Option<(String, String)> {
    // A number a flow lists is the flow's: no store read on the way of ordinary calls.
    if flow_listing(&calls.flows_now().set, &setup.called).is_some() {
        return None;
    }
    let by_user = |user: String| async move {
        match calls.store.operator_by_sip_user(&user).await {
            Ok(op) => op,
            Err(e) => {
                warn!(call_id = %setup.call_id, "reading operators: {e}");
                None
            }
        }
    };
    let to = by_user(setup.called.clone()).await?;
    let by = match &setup.origin {
        hotline_sip::Origin::Operator(user) => by_user(user.clone()).await?,
        hotline_sip::Origin::Trunk => {
            let by = by_user(setup.caller.clone()).await?;
            let contacts = calls
                .acd
                .ask(|reply| AcdInput::Contacts {
                    operator: by.name.clone(),
                    reply,
                })
                .await
                .flatten()
                .unwrap_or_default();
            contacts
                .iter()
                .any(|b| b.peer.addr == setup.source.addr)
                .then_some(by)?
        }
    };
    if by.name == to.name {
        return None;
    }
    info!(call_id = %setup.call_id, from = %by.name, to = %to.name, "consultation call");
    Some((by.name.clone(), to.name.clone()))
}

/// The built-in flow of a consultation call: ring the colleague (offered to them first,
/// in their first queue), with hold music meanwhile; if they can't take it, hang up.
fn consult_flow(operator: &str) -> hotline_ivr::Flow {
    use hotline_ivr::{Hangup, Loc, Ref, StepKind, Transfer, TransferTo};
    let at = Loc::default();
    let r = |name: &str| Ref {
        name: name.to_string(),
        at,
    };
    builtin_flow(
        "consult",
        "(built in: consultation call)",
        vec![
            (
                "ring",
                StepKind::Transfer(Transfer {
                    to: TransferTo::Operator(r(operator)),
                    prompts: Vec::new(),
                    on_fail: r("end"),
                }),
            ),
            (
                "end",
                StepKind::Hangup(Hangup {
                    prompts: Vec::new(),
                }),
            ),
        ],
    )
}

/// A flow of the daemon's own (not from a file): `steps` in order, the first is the start.
fn builtin_flow(
    name: &str,
    file: &str,
    steps: Vec<(&str, hotline_ivr::StepKind)>,
) -> hotline_ivr::Flow {
    let at = hotline_ivr::Loc::default();
    let start = hotline_ivr::Ref {
        name: steps.first().map_or("", |(n, _)| n).to_string(),
        at,
    };
    let steps = steps
        .into_iter()
        .map(|(name, kind)| {
            (
                name.to_string(),
                hotline_ivr::Step {
                    name: name.to_string(),
                    at,
                    kind,
                },
            )
        })
        .collect();
    hotline_ivr::Flow {
        name: name.to_string(),
        name_at: at,
        version: "builtin".to_string(),
        ring_ms: 0,
        file: std::path::PathBuf::from(file),
        numbers: Vec::new(),
        default: None,
        start,
        steps,
        offers: Default::default(),
        calendars: Default::default(),
        vip_lists: Default::default(),
    }
}

/// Where a phone's REFER sends the caller.
enum ReferTo {
    /// Another operator, a queue or an outside number, as an IVR transfer does.
    Transfer(TransferTarget),
    /// A number a flow answers: the caller goes through that flow from its start.
    Flow(Arc<hotline_ivr::Flow>, String),
}

/// The REFER's target: an operator by SIP user, a number a flow answers, or an outside
/// number the dial plan allows; else the status that refuses it.
async fn resolve_refer(
    calls: &Calls,
    target: &hotline_sip::ReferTarget,
) -> Result<ReferTo, (u16, String)> {
    let user = target
        .user
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or((404, format!("{} names nobody", target.uri)))?;
    let operator = calls
        .store
        .operator_by_sip_user(user)
        .await
        .map_err(|e| (500, format!("reading operators: {e}")))?;
    if let Some(op) = operator {
        return Ok(ReferTo::Transfer(TransferTarget::Operator(op.name)));
    }
    if let Some(flow) = flow_listing(&calls.flows_now().set, user) {
        return Ok(ReferTo::Flow(flow, user.to_string()));
    }
    if hotline_ivr::number::normalize(user).is_err() {
        return Err((404, format!("no operator or number {user:?}")));
    }
    let trunk = calls
        .trunk
        .as_ref()
        .ok_or((404, format!("{user}: no trunk to call it through")))?;
    let number = trunk
        .dialplan
        .check(user)
        .map_err(|e| (e.sip_status(), e.to_string()))?;
    Ok(ReferTo::Transfer(TransferTarget::External(number)))
}

/// Whether the operator can take a call now: online, a phone registered, not ringing,
/// in a call or in a chat.
async fn operator_free(calls: &Calls, operator: &str) -> bool {
    let view = calls
        .acd
        .ask(|reply| AcdInput::Operator {
            name: operator.to_string(),
            reply,
        })
        .await
        .flatten();
    view.is_some_and(|v| {
        v.state == OperatorStatus::Online
            && v.reachable
            && v.ringing.is_none()
            && v.call.is_none()
            && v.chats == 0
            && v.visual_sessions == 0
    })
}

/// RTP counters already added to the metrics, so each report adds only the difference.
#[derive(Default)]
struct Counts {
    sent: u64,
    received: u64,
}

impl Counts {
    fn report(&mut self, s: hotline_media::rtp::RtpStats) {
        counter!(RTP_PACKETS_SENT).increment(s.packets_sent.saturating_sub(self.sent));
        counter!(RTP_PACKETS_RECEIVED).increment(s.packets_received.saturating_sub(self.received));
        self.sent = s.packets_sent;
        self.received = s.packets_received;
    }
}

#[cfg(test)]
mod direct_tests {
    //! Which flow a call to an operator's own number gets (ivr-flows/README.md, "Direct
    //! callback"), on the demo flows.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use hotline_ivr::{Action, CallContext, FlowRun, QueueStatus};

    fn demo() -> LoadedFlows {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ivr-flows");
        crate::flows::load(&dir).unwrap()
    }

    fn owned_by(owner: &str) -> DirectCall {
        DirectCall {
            owner: owner.to_string(),
            linked: Some(owner.to_string()),
        }
    }

    fn actions(run: &mut FlowRun) -> Vec<Action> {
        std::iter::from_fn(|| run.poll_action()).collect()
    }

    #[test]
    fn an_unlisted_own_number_waits_in_the_owners_first_queue() {
        let flows = demo();
        // bela is in "sales" and "support"; "support" comes first in queues.toml.
        let first = first_queue_of(&flows.set, "bela").unwrap();
        assert_eq!(first.name, "support");
        let flow = flow_for_own_number(&flows, "+3612345601", &owned_by("bela")).unwrap();
        assert_eq!(flow.name, "direct");
        let now = Instant::now();
        let mut run = FlowRun::new(
            flow,
            CallContext {
                caller: "+36301234567".into(),
                called: "+3612345601".into(),
                answered_at: chrono::Utc::now(),
            },
        );
        run.start(now);
        let got = actions(&mut run);
        assert!(
            got.contains(&Action::EnterQueue {
                queue: "support".into(),
                priority: 0,
                skill: None,
                record: None,
            }),
            "{got:?}"
        );
        assert!(
            got.contains(&Action::PlayLoop {
                prompts: vec!["hold-music".into()],
            }),
            "{got:?}"
        );
        // A queue that can't take the caller: `no-agent`, then the call ends.
        run.on_queue_status(now, QueueStatus::Unavailable);
        let got = actions(&mut run);
        assert!(
            got.contains(&Action::Play {
                prompts: vec!["no-agent".into()],
            }),
            "{got:?}"
        );
        run.on_playback_done(now);
        assert!(actions(&mut run).contains(&Action::Hangup));
    }

    #[test]
    fn a_flow_listing_the_number_in_any_form_decides() {
        let flows = demo();
        // hotline.toml lists "+3612345678".
        for called in ["+3612345678", "06 1 234 5678", "0612345678"] {
            let flow = flow_for_own_number(&flows, called, &owned_by("anna")).unwrap();
            assert_eq!(flow.name, "hotline", "{called}");
        }
    }

    #[test]
    fn an_owner_in_no_queue_gets_the_default_flow() {
        let flows = demo();
        assert!(first_queue_of(&flows.set, "nobody").is_none());
        let flow = flow_for_own_number(&flows, "+3612345601", &owned_by("nobody")).unwrap();
        assert!(flow.is_default(), "{}", flow.name);
    }
}
