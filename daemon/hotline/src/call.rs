//! One task per inbound call: picks the flow, negotiates media, answers, then drives the
//! sans-IO `IvrCall` with the RTP socket, SIP events and timers. When the flow queues the
//! caller, the queue task tells it which operator to ring: it places that leg, and once
//! the operator answers, bridges the two legs' media. It writes the CDR and missed calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_core::acd::{CallerId, OperatorStatus, RingFailure};
use hotline_core::callback::{NewCallbackRequest, RequestSource};
use hotline_core::callbacks::{CallbackError, CallbackSource, NewCallbackNote};
use hotline_core::cdr::{
    CallEnd, CallLeg, CallStart, CdrLog, CdrRef, EndReason, LegOutcome, Service,
};
use hotline_core::ivr_call::{Hangup, IvrCall, PromptLibrary, Request};
use hotline_core::missed::{MissedReason, NewMissedCall};
use hotline_core::store::Store;
use hotline_ivr::{FlowSet, TransferTarget};
use hotline_media::Codec;
use hotline_media::bridge::{Bridge, RtcpRelay, Side};
use hotline_media::rtp::RtpConfig;
use hotline_sip::sdp::{self, Negotiated, SdpError};
use hotline_sip::{CallHandle, OutgoingCall, Peer};
use metrics::{counter, gauge};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::acd_driver::{AcdHandle, AcdInput, RingOrder};
use crate::metrics::{ACTIVE_CALLS, CALLS_TOTAL, RTP_PACKETS_RECEIVED, RTP_PACKETS_SENT};
use crate::net::{LocalAddress, RtpPorts};
use crate::sip_driver::{SipCommand, SipHandle};

/// Played to a held caller whose queue step had no music.
const HOLD_MUSIC: &str = "hold-music";

/// What the SIP task and the queue task tell a call.
pub enum CallEvent {
    Acked,
    Cancelled,
    ReInvite(Option<String>),
    Dtmf(char),
    Ended(hotline_sip::EndReason),
    /// The operator leg this call placed (ringing: hold music goes on meanwhile).
    LegProgress,
    LegAnswered {
        leg: CallHandle,
        sdp: Option<String>,
    },
    LegFailed {
        leg: CallHandle,
        status: u16,
    },
    LegEnded {
        leg: CallHandle,
    },
    LegReInvite {
        leg: CallHandle,
        offer: Option<String>,
    },
    /// The operator's console: hold, resume, transfer.
    Console(ConsoleControl),
    /// The operator's phone asks to transfer the caller (REFER): answer it with
    /// `SipCommand::ReferReply`.
    LegRefer {
        leg: CallHandle,
        target: hotline_sip::ReferTarget,
    },
    /// From the queue: where the caller stands, or that nobody can take the call.
    QueueStatus(hotline_ivr::QueueStatus),
    /// From the queue: ring this operator's phone.
    RingOperator(RingOrder),
    /// From the queue: stop ringing (timeout, or the operator became unavailable).
    CancelRing,
}

/// What the operator's console asks of their connected call; the reply says whether it
/// was done, or why not.
pub enum ConsoleControl {
    Hold {
        held: bool,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    Transfer {
        to: TransferTarget,
        note: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// An operator's connected call, for their console's call panel and its buttons.
#[derive(Clone)]
pub struct ConnectedCall {
    pub call_id: String,
    pub caller: String,
    pub queue: Option<String>,
    pub since_ms: i64,
    pub held: bool,
    /// Who transferred the caller here, and their note.
    pub note: Option<(String, String)>,
    /// The call's own task, for the console's buttons.
    pub control: mpsc::Sender<CallEvent>,
}

pub struct CallSetup {
    pub handle: CallHandle,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub offer: Option<String>,
    pub source: Peer,
    pub origin: hotline_sip::Origin,
    /// This call's own event channel, for the legs it places.
    pub events_tx: mpsc::Sender<CallEvent>,
}

/// Flows and their prompts, swapped whole on reload; a call keeps the set it started with.
pub struct LoadedFlows {
    pub set: FlowSet,
    pub prompts: Arc<PromptLibrary>,
}

/// What every call task shares.
pub struct Calls {
    pub store: Store,
    /// Call records, written off the call path.
    pub cdr: CdrLog,
    pub flows: RwLock<Arc<LoadedFlows>>,
    pub sip: SipHandle,
    pub rtp_ports: RtpPorts,
    pub local: LocalAddress,
    pub rtp_timeout: Duration,
    /// Becomes true when the drain time is over: calls still up get BYE.
    pub shutdown: watch::Receiver<bool>,
    pub active: AtomicUsize,
    pub acd: AcdHandle,
    pub clock: WallClock,
    /// Outside numbers (transfers) are dialled through it, after its dial plan.
    pub trunk: Option<crate::config::Trunk>,
    /// Each operator's connected call (the console's call panel).
    pub connected: std::sync::Mutex<HashMap<String, ConnectedCall>>,
    /// Woken when the flows are reloaded, so the queues are sent to the queue task again.
    pub flows_changed: Arc<tokio::sync::Notify>,
    /// Woken when an operator account was added, so the store is read again at once.
    pub operators_changed: Arc<tokio::sync::Notify>,
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

impl Calls {
    fn connected_calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConnectedCall>> {
        match self.connected.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The operator's connected call, if any.
    pub fn operator_call(&self, operator: &str) -> Option<ConnectedCall> {
        self.connected_calls().get(operator).cloned()
    }

    fn operator_joined(&self, operator: &str, call: ConnectedCall) {
        self.connected_calls().insert(operator.to_string(), call);
    }

    /// The operator's part in call `call_id` is over.
    fn operator_left(&self, operator: &str, call_id: &str) {
        let mut calls = self.connected_calls();
        if calls.get(operator).is_some_and(|c| c.call_id == call_id) {
            calls.remove(operator);
        }
    }

    fn operator_held(&self, operator: &str, call_id: &str, held: bool) {
        if let Some(c) = self
            .connected_calls()
            .get_mut(operator)
            .filter(|c| c.call_id == call_id)
        {
            c.held = held;
        }
    }

    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// The flow set new calls get.
    pub fn flows_now(&self) -> Arc<LoadedFlows> {
        self.flows()
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
    debug!(call_id = %setup.call_id, origin = ?setup.origin, "incoming call");
    let started_at_ms = unix_ms();
    let flows = calls.flows();
    // Direct callback (PRODUCT C5): a call to an operator's own number.
    let direct = direct_call(&calls, &setup).await;
    let flow = match &direct {
        Some(d) => flow_for_own_number(&flows, &setup.called, d),
        None => flows.set.for_number(&setup.called),
    };
    let linked = direct.and_then(|d| d.linked);

    let cdr = calls.cdr.start_call(CallStart {
        call_id: setup.call_id.clone(),
        caller: setup.caller.clone(),
        called: setup.called.clone(),
        started_at_ms,
        flow: flow.as_ref().map(|f| f.name.clone()),
        flow_version: flow.as_ref().map(|f| f.version.clone()),
    });

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
            Outcome::rejected()
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
                waited_ms: i64::try_from(missed.waited.as_millis()).unwrap_or(i64::MAX),
                path: &outcome.path.join(" "),
                missed_at_ms: ended_at_ms,
            })
            .await
    {
        warn!(call_id = %setup.call_id, "missed call NOT stored: {e}");
    }
    if let Some(missed) = &outcome.missed {
        let entry = note_on_callback_list(
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
    calls.cdr.end_call(
        cdr,
        CallEnd {
            ended_at_ms,
            reason: outcome.reason,
            digits: outcome.digits,
            path: outcome.path,
            variables: outcome.variables,
            operator: outcome.operator,
            service: outcome.service,
        },
    );
}

/// A caller's entry on the shared callback list, as noted.
struct Noted {
    id: i64,
    /// The time promised to a caller who asked for the callback.
    promised_at_ms: Option<i64>,
}

/// How far off a promised time is (ms, at least 0) and whether it is still today on the
/// flows' clock in the queue's callback time zone: what the flow's `promise_computed`
/// prompts choose by.
fn promise_distance(calls: &Calls, queue: Option<&str>, promised_at_ms: i64) -> (u64, bool) {
    let in_ms = u64::try_from(promised_at_ms.saturating_sub(unix_ms())).unwrap_or(0);
    let tz = queue
        .and_then(|q| {
            calls
                .flows_now()
                .set
                .queues()
                .get(q)
                .map(|q| q.callbacks.window.time_zone())
        })
        .unwrap_or(hotline_ivr::window::DEFAULT_TIME_ZONE);
    let now = calls.clock.now().with_timezone(&tz);
    let then = now + chrono::Duration::milliseconds(i64::try_from(in_ms).unwrap_or(i64::MAX));
    (in_ms, then.date_naive() == now.date_naive())
}

/// Puts the caller on the shared callback list (one entry per number: a repeat caller
/// updates theirs). Anonymous callers are counted as missed calls but can't be called back.
/// Returns the entry (with the promised time) when it is on the list.
async fn note_on_callback_list(
    calls: &Calls,
    call_id: &str,
    number: &str,
    queue: Option<&str>,
    source: CallbackSource,
) -> Option<Noted> {
    // A caller who asked for a callback is promised a time (tracked in the promise report).
    let promised_at_ms = match (source, queue) {
        (CallbackSource::Ivr, Some(q)) => crate::callback_calls::promise_for(calls, q).await,
        _ => None,
    };
    let note = NewCallbackNote {
        number,
        queue,
        source,
        promised_at_ms,
        call_id: Some(call_id),
        now_ms: unix_ms(),
    };
    match calls.store.note_callback(&note).await {
        Ok(entry) => {
            info!(%call_id, %number, entry = entry.id, count = entry.count, "on the callback list");
            // A number the dial plan refuses stays listed, marked, and is never dialled
            // by itself (T5).
            let refused = calls
                .trunk
                .as_ref()
                .and_then(|t| t.dialplan.check(number).err())
                .map(|e| e.to_string());
            if refused != entry.undialable {
                if let Some(why) = &refused {
                    info!(%call_id, %number, entry = entry.id, "cannot be dialled: {why}");
                }
                if let Err(e) = calls
                    .store
                    .mark_undialable(entry.id, refused.as_deref())
                    .await
                {
                    warn!(%call_id, entry = entry.id, "marking the number undialable: {e}");
                }
            }
            Some(Noted {
                id: entry.id,
                promised_at_ms,
            })
        }
        Err(CallbackError::Anonymous) => None,
        Err(e) => {
            warn!(%call_id, %number, "NOT on the callback list: {e}");
            None
        }
    }
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
    use hotline_ivr::{Flow, Hangup, Loc, Queue, Ref, Step, StepKind};
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
    };
    let steps = [
        ("wait", StepKind::Queue(wait)),
        (
            "unavailable",
            StepKind::Hangup(Hangup {
                prompts: loaded(&["no-agent"]),
            }),
        ),
    ]
    .into_iter()
    .map(|(name, kind)| {
        (
            name.to_string(),
            Step {
                name: name.to_string(),
                at,
                kind,
            },
        )
    })
    .collect();
    Flow {
        name: "direct".to_string(),
        name_at: at,
        version: "builtin".to_string(),
        ring_ms: 0,
        file: std::path::PathBuf::from("(built in: direct callback)"),
        numbers: Vec::new(),
        default: None,
        start: r("wait"),
        steps,
        offers: Default::default(),
        calendars: Default::default(),
        vip_lists: Default::default(),
    }
}

struct Outcome {
    reason: EndReason,
    digits: String,
    path: Vec<String>,
    /// Variables the flow set, as a JSON object.
    variables: String,
    /// The operator the caller talked to.
    operator: Option<String>,
    missed: Option<Missed>,
    service: Service,
}

/// A caller nobody answered and who left no callback request: they waited in a queue,
/// or the flow marked the call (`missed` variable, e.g. outside hours).
struct Missed {
    queue: Option<String>,
    reason: MissedReason,
    waited: Duration,
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
            operator: None,
            missed: None,
            service: Service::default(),
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

/// The operator's phone this call placed: ringing, then bridged once answered.
struct OperatorLeg {
    handle: CallHandle,
    /// The operator rung, or the outside number dialled when `external`.
    operator: String,
    /// An outside number through the trunk (an IVR transfer), not an operator's phone:
    /// the queue engine knows nothing of it.
    external: bool,
    rtp: UdpSocket,
    /// RTCP is relayed between the legs once bridged (and always read, so reports never
    /// pile up in the socket).
    rtcp: UdpSocket,
    local_port: u16,
    local_ip: std::net::IpAddr,
    sdp_version: u64,
    rang_at_ms: i64,
    answered_at_ms: Option<i64>,
    /// Time this operator held the caller.
    hold: Duration,
}

/// Where the caller stands with the queue.
struct Queued {
    queue: String,
}

/// Everything a call keeps while it runs, beyond the IVR itself.
struct Progress {
    queued: Option<Queued>,
    /// Queues the caller was ever in, and whether anyone answered.
    was_queued: Option<String>,
    leg: Option<OperatorLeg>,
    bridge: Option<Bridge>,
    bridged_at: Option<Instant>,
    operator: Option<String>,
    callback_left: bool,
    /// RTCP between the legs once bridged.
    rtcp: RtcpRelay,
    /// Direct callback: the operator the first queue entry is offered to first.
    direct: Option<String>,
    /// When the caller last entered a queue (the wait runs until an operator answers).
    queued_at: Option<Instant>,
    /// When and in which class the caller first entered a queue: a transfer to a queue
    /// keeps both.
    first_queued: Option<(Instant, u8)>,
    wait: Option<Duration>,
    /// Since when the operator holds the caller (music plays).
    held_since: Option<Instant>,
    /// The operator legs that are over, for the call record.
    legs: Vec<CallLeg>,
    /// A transfer out of the flow, until its first answer.
    transfer: Option<PendingTransfer>,
    /// Who transferred the caller from the console, and their note for the next operator.
    transfer_note: Option<(String, String)>,
    /// Digits and steps of the flow a phone's transfer to a flow number replaced.
    earlier_digits: String,
    earlier_path: Vec<String>,
}

/// A transfer out of the flow (T6) waiting to know whether it worked; the flow hears
/// the result and goes on (`on_fail`) or leaves the call.
enum PendingTransfer {
    /// Queued (in a queue, or an operator's first queue offered to them first): the
    /// queue's first word on the caller decides.
    Queue,
    /// An outside number ringing, until its answer or `deadline`.
    External { deadline: Instant },
}

impl Progress {
    /// Files the leg under the call record.
    fn close_leg(&mut self, leg: OperatorLeg, outcome: LegOutcome, now: Instant) {
        self.close_leg_to(leg, outcome, now, None);
    }

    /// Files the leg of an operator who transferred the caller to `to`.
    fn close_leg_to(
        &mut self,
        leg: OperatorLeg,
        outcome: LegOutcome,
        now: Instant,
        to: Option<String>,
    ) {
        let mut hold = leg.hold;
        if outcome == LegOutcome::Answered
            && let Some(since) = self.held_since.take()
        {
            hold += now.saturating_duration_since(since);
        }
        let (operator, number) = if leg.external {
            (None, Some(leg.operator))
        } else {
            (Some(leg.operator), None)
        };
        self.legs.push(CallLeg {
            operator,
            number,
            rang_at_ms: leg.rang_at_ms,
            answered_at_ms: leg.answered_at_ms,
            ended_at_ms: unix_ms(),
            outcome,
            hold_ms: millis(hold),
            transferred_to: to,
        });
    }

    fn service(&self) -> Service {
        Service {
            queue: self.was_queued.clone(),
            wait_ms: self
                .wait
                .or_else(|| self.queued_at.map(|q| q.elapsed()))
                .filter(|_| self.was_queued.is_some())
                .map(millis),
            hold_ms: self.legs.iter().map(|l| l.hold_ms).sum(),
            legs: self.legs.clone(),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn leg_outcome(failure: RingFailure) -> LegOutcome {
    match failure {
        RingFailure::NoAnswer => LegOutcome::NoAnswer,
        RingFailure::Rejected => LegOutcome::Rejected,
        RingFailure::Busy => LegOutcome::Busy,
        RingFailure::Unreachable => LegOutcome::Unreachable,
    }
}

/// Negotiates, answers and runs the flow (and the bridge) until the call ends.
async fn serve(
    calls: &Calls,
    setup: &CallSetup,
    flow: Arc<hotline_ivr::Flow>,
    prompts: Arc<PromptLibrary>,
    events: &mut mpsc::Receiver<CallEvent>,
    cdr: CdrRef,
    direct: Option<String>,
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
    calls.cdr.answered(cdr, unix_ms());

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
    let caller_id = CallerId(setup.handle.0);
    let mut shutdown = calls.shutdown.clone();
    let mut rtp_reported = Counts::default();
    let mut next_report = now + Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    let mut leg_buf = [0u8; 2048];
    let mut rtcp_buf = [0u8; 1500];
    let mut leg_rtcp_buf = [0u8; 1500];
    let mut p = Progress {
        queued: None,
        was_queued: None,
        leg: None,
        bridge: None,
        bridged_at: None,
        operator: None,
        callback_left: false,
        rtcp: RtcpRelay::default(),
        direct,
        queued_at: None,
        first_queued: None,
        wait: None,
        held_since: None,
        legs: Vec::new(),
        transfer: None,
        transfer_note: None,
        earlier_digits: String::new(),
        earlier_path: Vec::new(),
    };

    let reason = loop {
        if p.held_since.is_some() {
            // The operator holds: the queue's music goes to the caller.
            send_due(&socket, &mut ivr).await;
        }
        if p.bridge.is_none() {
            answer_requests(calls, setup, &negotiated, &mut ivr, &mut p).await;
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
        }
        if *shutdown.borrow() {
            sip.command(SipCommand::Hangup(setup.handle)).await;
            break EndReason::Shutdown;
        }
        let bridge_dead_at = p.bridge.as_ref().and_then(|b| {
            let heard = b.last_received(Side::A).max(p.bridged_at)?;
            (!calls.rtp_timeout.is_zero()).then(|| heard + calls.rtp_timeout)
        });
        let transfer_deadline = match p.transfer {
            Some(PendingTransfer::External { deadline }) => Some(deadline),
            _ => None,
        };
        let wake = [
            ivr.poll_timeout(),
            bridge_dead_at,
            transfer_deadline,
            Some(next_report),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(next_report);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r {
                    let now = Instant::now();
                    match (&mut p.bridge, &p.leg) {
                        (Some(bridge), Some(leg)) => {
                            // On hold the operator hears nothing (the console's hold too).
                            if let Some(to) = bridge.forward(now, Side::A, from, &buf[..n])
                                && p.held_since.is_none()
                            {
                                let _ = leg.rtp.send_to(&buf[..n], to).await;
                            }
                        }
                        _ => ivr.handle_rtp(now, from, &buf[..n]),
                    }
                }
            }
            r = recv_leg(p.leg.as_ref().map(|l| &l.rtp), &mut leg_buf) => {
                if let Ok((n, from)) = r
                    && let Some(bridge) = &mut p.bridge
                    && let Some(to) = bridge.forward(Instant::now(), Side::B, from, &leg_buf[..n])
                    // On hold the caller hears our music, not what the phone sends.
                    && p.held_since.is_none()
                {
                    let _ = socket.send_to(&leg_buf[..n], to).await;
                }
            }
            // RTCP is not interpreted, but it shows the caller is still there (e.g. on hold).
            // Bridged, it goes to where the operator's phone sends its own RTCP from.
            r = rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, from)) = r
                    && hotline_media::rtp::is_rtcp(&rtcp_buf[..n])
                {
                    match (&p.bridge, &p.leg) {
                        (Some(_), Some(leg)) => {
                            if let Some(to) = p.rtcp.forward(Side::A, from, &rtcp_buf[..n]) {
                                let _ = leg.rtcp.send_to(&rtcp_buf[..n], to).await;
                            }
                        }
                        _ => ivr.handle_rtp(Instant::now(), from, &rtcp_buf[..n]),
                    }
                }
            }
            r = recv_leg(p.leg.as_ref().map(|l| &l.rtcp), &mut leg_rtcp_buf) => {
                if let Ok((n, from)) = r
                    && p.bridge.is_some()
                    && let Some(to) = p.rtcp.forward(Side::B, from, &leg_rtcp_buf[..n])
                {
                    let _ = rtcp.send_to(&leg_rtcp_buf[..n], to).await;
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break EndReason::TransportError };
                if let Some(reason) = on_event(calls, setup, ev, &negotiated, &mut ivr, &mut p, (local_ip, local_port, session_id, &mut sdp_version)).await {
                    break reason;
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                ivr.handle_timeout(now);
                if transfer_deadline.is_some_and(|t| t <= now)
                    && let Some(leg) = p.leg.take_if(|l| l.external)
                {
                    info!(call_id = %setup.call_id, number = %leg.operator, "transfer: no answer");
                    sip.command(SipCommand::Hangup(leg.handle)).await;
                    p.close_leg(leg, LegOutcome::NoAnswer, now);
                    p.transfer = None;
                    ivr.hold_music(now, false, HOLD_MUSIC);
                    if transfer_outcome(&mut ivr, now, false) {
                        sip.command(SipCommand::Hangup(setup.handle)).await;
                        break EndReason::FlowHangup;
                    }
                }
                if bridge_dead_at.is_some_and(|t| t <= now) {
                    info!(call_id = %setup.call_id, "no RTP from the caller in the bridged call");
                    sip.command(SipCommand::Hangup(setup.handle)).await;
                    break EndReason::RtpTimeout;
                }
                if now >= next_report {
                    rtp_reported.report(&ivr);
                    next_report = now + Duration::from_secs(1);
                }
            }
            _ = shutdown.changed() => {}
        }
    };
    rtp_reported.report(&ivr);

    // Whatever ended the call: the operator leg goes too, and the queue learns of it.
    if let Some(leg) = p.leg.take() {
        sip.command(SipCommand::Hangup(leg.handle)).await;
        calls.operator_left(&leg.operator, &setup.call_id);
        let outcome = if p.bridge.is_some() {
            LegOutcome::Answered
        } else {
            LegOutcome::Cancelled
        };
        p.close_leg(leg, outcome, Instant::now());
    }
    let mut missed = None;
    if p.operator.is_some() {
        calls
            .acd
            .send(AcdInput::CallEnded { caller: caller_id })
            .await;
    } else if let Some(q) = p.queued.take() {
        let left = calls
            .acd
            .ask(|reply| AcdInput::Leave {
                caller: caller_id,
                reply,
            })
            .await
            .flatten();
        if !p.callback_left {
            missed = Some(Missed {
                queue: Some(q.queue),
                reason: MissedReason::Abandoned,
                waited: left.map(|l| l.waited).unwrap_or_default(),
            });
        }
    } else if let Some(queue) = p.was_queued.take()
        && p.operator.is_none()
        && !p.callback_left
    {
        // Left the queue without an operator (maximum wait) and asked for no callback.
        missed = Some(Missed {
            queue: Some(queue),
            reason: MissedReason::MaxWait,
            waited: Duration::ZERO,
        });
    }
    // The flow marks calls it wants kept as missed (e.g. outside hours).
    if missed.is_none()
        && p.operator.is_none()
        && !p.callback_left
        && ivr
            .variables()
            .get("missed")
            .is_some_and(|v| v == "outside_hours")
    {
        missed = Some(Missed {
            queue: None,
            reason: MissedReason::OutsideHours,
            waited: Duration::ZERO,
        });
    }
    let service = p.service();
    Outcome {
        reason,
        digits: p.earlier_digits + ivr.digits(),
        path: [p.earlier_path, ivr.path().to_vec()].concat(),
        variables: serde_json::to_string(ivr.variables()).unwrap_or_else(|_| "{}".into()),
        operator: p.operator,
        missed,
        service,
    }
}

/// A datagram from one of the operator leg's sockets; never, without a leg.
async fn recv_leg(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// One event from the SIP task or the queue; `Some` when the call is over.
async fn on_event(
    calls: &Calls,
    setup: &CallSetup,
    ev: CallEvent,
    negotiated: &Negotiated,
    ivr: &mut IvrCall,
    p: &mut Progress,
    (local_ip, local_port, session_id, sdp_version): (std::net::IpAddr, u16, u64, &mut u64),
) -> Option<EndReason> {
    let sip = &calls.sip;
    let caller = CallerId(setup.handle.0);
    let now = Instant::now();
    match ev {
        CallEvent::Acked | CallEvent::LegProgress => {}
        CallEvent::Cancelled => return Some(EndReason::Cancelled),
        CallEvent::Ended(r) => return Some(sip_end_reason(r)),
        CallEvent::Dtmf(d) => {
            if p.bridge.is_none() {
                ivr.handle_sip_dtmf(now, d);
            }
        }
        CallEvent::ReInvite(offer) => match negotiate(offer.as_deref()) {
            Ok(n) => {
                *sdp_version += 1;
                match &mut p.bridge {
                    Some(bridge) => bridge.set_remote(Side::A, rtp_destination(&n)),
                    None => ivr.set_remote(now, rtp_destination(&n)),
                }
                let answer = sdp::answer(&n, local_ip, local_port, session_id, *sdp_version);
                sip.command(SipCommand::Answer(setup.handle, answer)).await;
            }
            Err(status) => sip.command(SipCommand::Reject(setup.handle, status)).await,
        },
        CallEvent::QueueStatus(status) => {
            let unavailable = matches!(status, hotline_ivr::QueueStatus::Unavailable);
            if unavailable {
                p.queued = None;
            }
            if matches!(p.transfer, Some(PendingTransfer::Queue)) {
                // The queue's first word on a transferred caller decides the transfer.
                p.transfer = None;
                if unavailable {
                    ivr.hold_music(now, false, HOLD_MUSIC);
                }
                if transfer_outcome(ivr, now, !unavailable) {
                    info!(call_id = %setup.call_id, "the transfer failed: nobody can take the caller");
                    sip.command(SipCommand::Hangup(setup.handle)).await;
                    return Some(EndReason::FlowHangup);
                }
            } else if unavailable && ivr.flow_finished() && p.bridge.is_none() {
                // A transferred caller whose queue closed: nobody will take the call.
                info!(call_id = %setup.call_id, "the queue the caller was transferred to closed");
                sip.command(SipCommand::Hangup(setup.handle)).await;
                return Some(EndReason::FlowHangup);
            } else {
                ivr.queue_status(now, status);
            }
        }
        CallEvent::RingOperator(order) => ring_operator(calls, setup, negotiated, p, order).await,
        CallEvent::CancelRing => {
            if p.bridge.is_none()
                && let Some(leg) = p.leg.take_if(|l| !l.external)
            {
                debug!(call_id = %setup.call_id, operator = %leg.operator, "ring cancelled");
                sip.command(SipCommand::Hangup(leg.handle)).await;
                p.close_leg(leg, LegOutcome::Cancelled, now);
            }
        }
        CallEvent::LegAnswered { leg, sdp } => {
            let ours = p.leg.as_ref().is_some_and(|l| l.handle == leg) && p.bridge.is_none();
            if !ours {
                // A late answer from a ring that is over: that phone is not wanted now.
                sip.command(SipCommand::Hangup(leg)).await;
                return None;
            }
            let l = p.leg.as_ref()?;
            let operator = l.operator.clone();
            if l.external {
                answer_external(calls, setup, sdp.as_deref(), ivr, p, now).await;
                return None;
            }
            let accepted = calls
                .acd
                .ask(|reply| AcdInput::RingAnswered {
                    caller,
                    operator: operator.clone(),
                    reply,
                })
                .await
                .unwrap_or(false);
            let remote = sdp
                .as_deref()
                .and_then(|s| sdp::negotiate(s).ok())
                .map(|n| rtp_destination(&n));
            let (true, Some(remote)) = (accepted, remote) else {
                warn!(call_id = %setup.call_id, %operator, accepted, "operator answer not usable; hanging up that leg");
                sip.command(SipCommand::Hangup(leg)).await;
                if let Some(l) = p.leg.take() {
                    p.close_leg(l, LegOutcome::Cancelled, now);
                }
                if accepted {
                    calls.acd.send(AcdInput::CallEnded { caller }).await;
                    return Some(EndReason::TransportError);
                }
                return None;
            };
            ivr.queue_status(now, hotline_ivr::QueueStatus::Connected);
            ivr.set_bridged(now);
            p.bridge = Some(Bridge::new(ivr.rtp_destination(), remote));
            p.bridged_at = Some(now);
            p.queued = None;
            // The wait until the first answer (a transferred caller's later waits are in
            // the legs).
            if p.wait.is_none() {
                p.wait = p.queued_at.map(|q| now.saturating_duration_since(q));
            }
            if let Some(l) = p.leg.as_mut() {
                l.answered_at_ms = Some(unix_ms());
            }
            info!(call_id = %setup.call_id, %operator, "caller connected to operator");
            calls.operator_joined(
                &operator,
                ConnectedCall {
                    call_id: setup.call_id.clone(),
                    caller: setup.caller.clone(),
                    queue: p.was_queued.clone(),
                    since_ms: unix_ms(),
                    held: false,
                    note: p.transfer_note.take(),
                    control: setup.events_tx.clone(),
                },
            );
            p.operator = Some(operator);
        }
        CallEvent::LegFailed { leg, status } => {
            if let Some(l) = p.leg.take_if(|l| l.handle == leg) {
                let failure = ring_failure(status);
                if l.external {
                    info!(call_id = %setup.call_id, number = %l.operator, status, "transfer: the number did not answer");
                    p.close_leg(l, leg_outcome(failure), now);
                    p.transfer = None;
                    ivr.hold_music(now, false, HOLD_MUSIC);
                    if transfer_outcome(ivr, now, false) {
                        sip.command(SipCommand::Hangup(setup.handle)).await;
                        return Some(EndReason::FlowHangup);
                    }
                    return None;
                }
                info!(call_id = %setup.call_id, operator = %l.operator, status, "operator phone did not answer");
                let operator = l.operator.clone();
                p.close_leg(l, leg_outcome(failure), now);
                calls
                    .acd
                    .send(AcdInput::RingFailed {
                        caller,
                        operator,
                        failure,
                    })
                    .await;
            }
        }
        CallEvent::LegEnded { leg } => {
            if let Some(l) = p.leg.take_if(|l| l.handle == leg) {
                calls.operator_left(&l.operator, &setup.call_id);
                let outcome = if p.bridge.is_some() {
                    LegOutcome::Answered
                } else {
                    LegOutcome::Cancelled
                };
                p.close_leg(l, outcome, now);
                if p.bridge.is_some() {
                    sip.command(SipCommand::Hangup(setup.handle)).await;
                    return Some(EndReason::OperatorHangup);
                }
            }
        }
        CallEvent::Console(ConsoleControl::Hold { held, reply }) => {
            let connected = p.bridge.is_some() && p.leg.as_ref().is_some_and(|l| !l.external);
            if connected {
                set_hold(calls, setup, ivr, p, held, now);
            }
            let _ = reply.send(if connected {
                Ok(())
            } else {
                Err("The call is not connected to you.".into())
            });
        }
        CallEvent::Console(ConsoleControl::Transfer { to, note, reply }) => {
            let (answer, ended) =
                console_transfer(calls, setup, negotiated, ivr, p, to, note, now).await;
            let _ = reply.send(answer);
            return ended;
        }
        CallEvent::LegRefer { leg, target } => {
            return blind_transfer(calls, setup, negotiated, ivr, p, leg, target, now).await;
        }
        CallEvent::LegReInvite { leg, offer } => {
            if let Some(l) = p.leg.as_mut().filter(|l| l.handle == leg) {
                match negotiate(offer.as_deref()) {
                    Ok(n) => {
                        l.sdp_version += 1;
                        let answer =
                            sdp::answer(&n, l.local_ip, l.local_port, session_id, l.sdp_version);
                        sip.command(SipCommand::Answer(leg, answer)).await;
                        if let Some(bridge) = &mut p.bridge {
                            let remote = rtp_destination(&n);
                            bridge.set_remote(Side::B, remote);
                            // sendonly/inactive from the operator's phone: hold (T6).
                            set_hold(calls, setup, ivr, p, remote.is_none(), now);
                        }
                    }
                    Err(status) => sip.command(SipCommand::Reject(leg, status)).await,
                }
            }
        }
    }
    None
}

/// Tells the flow how its transfer went; `true` when there is no flow to go on (a phone's
/// transfer) and the transfer failed, so the call must end.
fn transfer_outcome(ivr: &mut IvrCall, now: Instant, ok: bool) -> bool {
    if ivr.flow_finished() {
        return !ok;
    }
    ivr.transfer_result(now, ok);
    false
}

/// Where a phone's REFER sends the caller.
enum ReferTo {
    /// Another operator, a queue or an outside number, as an IVR transfer does.
    Transfer(TransferTarget),
    /// A number a flow answers: the caller goes through that flow from its start.
    Flow(Arc<hotline_ivr::Flow>, String),
}

/// A blind transfer from the connected operator's phone (REFER, RFC 3515): the target is
/// an operator's SIP user, a number a flow answers, or an outside number the dial plan
/// allows. Anything else is refused (404 unknown, 403 forbidden, 480 an operator who
/// can't take a call now, 501 attended transfer). On 202 the operator's leg ends (after a
/// NOTIFY) and the caller hears music until the target answers.
#[allow(clippy::too_many_arguments)]
async fn blind_transfer(
    calls: &Calls,
    setup: &CallSetup,
    negotiated: &Negotiated,
    ivr: &mut IvrCall,
    p: &mut Progress,
    leg: CallHandle,
    target: hotline_sip::ReferTarget,
    now: Instant,
) -> Option<EndReason> {
    let sip = &calls.sip;
    let refuse = |status: u16, why: String| async move {
        info!(call_id = %setup.call_id, status, "transfer refused: {why}");
        sip.command(SipCommand::ReferReply(leg, status)).await;
    };
    let connected = p
        .leg
        .as_ref()
        .is_some_and(|l| l.handle == leg && !l.external && p.bridge.is_some());
    if !connected {
        refuse(
            403,
            "only the connected operator's phone may transfer".into(),
        )
        .await;
        return None;
    }
    if target.replaces.is_some() {
        refuse(
            501,
            "attended transfer (Replaces) is not supported yet".into(),
        )
        .await;
        return None;
    }
    let to = match resolve_refer(calls, &target).await {
        Ok(to) => to,
        Err((status, why)) => {
            refuse(status, why).await;
            return None;
        }
    };
    if let ReferTo::Transfer(t) = &to
        && let Err((status, why)) = check_target(calls, p, t).await
    {
        refuse(status, why).await;
        return None;
    }
    // Go ahead: the operator hears the transfer is under way, and leaves the call.
    sip.command(SipCommand::ReferReply(leg, 202)).await;
    sip.command(SipCommand::ReferNotify(leg, 100, false)).await;
    sip.command(SipCommand::ReferNotify(leg, 200, true)).await;
    move_caller(calls, setup, negotiated, ivr, p, to, None, now).await
}

/// A transfer from the operator's console (the call panel): to an operator, a queue or a
/// number, with a note for whoever takes the caller. `Err` tells the page why not.
#[allow(clippy::too_many_arguments)]
async fn console_transfer(
    calls: &Calls,
    setup: &CallSetup,
    negotiated: &Negotiated,
    ivr: &mut IvrCall,
    p: &mut Progress,
    to: TransferTarget,
    note: String,
    now: Instant,
) -> (Result<(), String>, Option<EndReason>) {
    let Some(operator) = p
        .leg
        .as_ref()
        .filter(|l| !l.external && p.bridge.is_some())
        .map(|l| l.operator.clone())
    else {
        return (Err("The call is not connected to you.".into()), None);
    };
    if let Err((_, why)) = check_target(calls, p, &to).await {
        return (Err(why), None);
    }
    let note = (!note.is_empty()).then_some((operator, note));
    let ended = move_caller(
        calls,
        setup,
        negotiated,
        ivr,
        p,
        ReferTo::Transfer(to),
        note,
        now,
    )
    .await;
    (Ok(()), ended)
}

/// Whether the caller can be sent to `to` now: an operator who isn't the one transferring
/// and can take a call, a queue that exists, a number the dial plan allows. `Err` has the
/// SIP status a REFER gets and the reason.
async fn check_target(
    calls: &Calls,
    p: &Progress,
    to: &TransferTarget,
) -> Result<(), (u16, String)> {
    match to {
        TransferTarget::Operator(op) => {
            if p.leg.as_ref().is_some_and(|l| l.operator == *op) {
                return Err((403, format!("{op} cannot transfer to themselves")));
            }
            if !operator_free(calls, op).await {
                return Err((480, format!("{op} cannot take a call now")));
            }
        }
        TransferTarget::Queue(q) => {
            if !calls.flows_now().set.queues().contains_key(q) {
                return Err((404, format!("no queue {q:?}")));
            }
            // A queue with nobody online (free or busy) would only hang the caller up.
            let figures = calls
                .acd
                .ask(|reply| AcdInput::Figures { reply })
                .await
                .unwrap_or_default();
            let staffed = figures
                .iter()
                .any(|(name, f)| name == q && f.online + f.busy > 0);
            if !staffed {
                return Err((480, format!("nobody in the {q} queue can take calls now")));
            }
        }
        TransferTarget::External(number) => {
            let trunk = calls
                .trunk
                .as_ref()
                .ok_or((404, "no trunk is configured".to_string()))?;
            trunk
                .dialplan
                .check(number)
                .map_err(|e| (e.sip_status(), e.to_string()))?;
        }
    }
    Ok(())
}

/// Moves a bridged caller on (a blind transfer, from the phone or the console): the
/// operator's leg ends (filed with where the caller went), the operator goes to wrap-up,
/// and the caller hears music until the target answers, or starts over in a flow.
#[allow(clippy::too_many_arguments)]
async fn move_caller(
    calls: &Calls,
    setup: &CallSetup,
    negotiated: &Negotiated,
    ivr: &mut IvrCall,
    p: &mut Progress,
    to: ReferTo,
    note: Option<(String, String)>,
    now: Instant,
) -> Option<EndReason> {
    let sip = &calls.sip;
    let description = match &to {
        ReferTo::Transfer(t) => hotline_ivr::describe_target(t),
        ReferTo::Flow(_, number) => format!("number {number}"),
    };
    let caller = CallerId(setup.handle.0);
    set_hold(calls, setup, ivr, p, false, now);
    if let Some(old) = p.leg.take() {
        info!(call_id = %setup.call_id, operator = %old.operator, to = %description, "blind transfer");
        sip.command(SipCommand::Hangup(old.handle)).await;
        calls.operator_left(&old.operator, &setup.call_id);
        p.close_leg_to(old, LegOutcome::Answered, now, Some(description));
    }
    p.bridge = None;
    p.bridged_at = None;
    p.transfer_note = note;
    calls.acd.send(AcdInput::CallEnded { caller }).await;
    match to {
        ReferTo::Flow(flow, number) => {
            // The caller starts over in that flow, as if they had dialled it.
            p.earlier_digits.push_str(ivr.digits());
            p.earlier_path.extend(ivr.path().iter().cloned());
            let context = hotline_ivr::CallContext {
                caller: setup.caller.clone(),
                called: number,
                answered_at: calls.clock.now(),
            };
            *ivr = IvrCall::new(
                flow,
                context,
                calls.flows_now().prompts.clone(),
                rtp_config(negotiated),
                calls.rtp_timeout,
                now,
            );
            ivr.start(now);
        }
        ReferTo::Transfer(t) => {
            ivr.hold_music(now, true, HOLD_MUSIC);
            match start_transfer(calls, setup, negotiated, p, &t).await {
                Ok(pending) => p.transfer = Some(pending),
                Err(why) => {
                    warn!(call_id = %setup.call_id, "the transfer failed after it was accepted: {why}");
                    sip.command(SipCommand::Hangup(setup.handle)).await;
                    return Some(EndReason::FlowHangup);
                }
            }
        }
    }
    None
}

/// The operator holds the call (from the phone's re-INVITE or the console) or takes it
/// back: the caller hears the queue's music meanwhile, and nothing passes the bridge.
fn set_hold(
    calls: &Calls,
    setup: &CallSetup,
    ivr: &mut IvrCall,
    p: &mut Progress,
    held: bool,
    now: Instant,
) {
    if held == p.held_since.is_some() || p.bridge.is_none() {
        return;
    }
    let Some(l) = p.leg.as_mut() else { return };
    info!(call_id = %setup.call_id, operator = %l.operator, held, "operator hold");
    ivr.hold_music(now, held, HOLD_MUSIC);
    match p.held_since.take() {
        Some(since) => l.hold += now.saturating_duration_since(since),
        None => p.held_since = Some(now),
    }
    calls.operator_held(&l.operator, &setup.call_id, held);
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
    let operators = calls
        .store
        .operators()
        .await
        .map_err(|e| (500, format!("reading operators: {e}")))?;
    if let Some(op) = operators.iter().find(|o| o.sip_user == user) {
        return Ok(ReferTo::Transfer(TransferTarget::Operator(op.name.clone())));
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
    let views = calls
        .acd
        .ask(|reply| AcdInput::Operators { reply })
        .await
        .unwrap_or_default();
    views.iter().any(|(name, v)| {
        name == operator
            && v.state == OperatorStatus::Online
            && v.reachable
            && v.ringing.is_none()
            && v.call.is_none()
            && v.chats == 0
    })
}

/// The outside number a flow transferred to answered: the caller is bridged to it and
/// leaves the flow; an answer without usable media fails the transfer.
async fn answer_external(
    calls: &Calls,
    setup: &CallSetup,
    sdp: Option<&str>,
    ivr: &mut IvrCall,
    p: &mut Progress,
    now: Instant,
) {
    p.transfer = None;
    ivr.hold_music(now, false, HOLD_MUSIC);
    let remote = sdp
        .and_then(|s| sdp::negotiate(s).ok())
        .map(|n| rtp_destination(&n));
    let Some(remote) = remote else {
        if let Some(l) = p.leg.take() {
            warn!(call_id = %setup.call_id, number = %l.operator, "transfer: answer without usable SDP");
            calls.sip.command(SipCommand::Hangup(l.handle)).await;
            p.close_leg(l, LegOutcome::Unreachable, now);
        }
        // A phone's transfer has no flow to go on with: the caller stays in silence
        // until they hang up (rare: an answer without SDP).
        transfer_outcome(ivr, now, false);
        return;
    };
    transfer_outcome(ivr, now, true);
    ivr.set_bridged(now);
    p.bridge = Some(Bridge::new(ivr.rtp_destination(), remote));
    p.bridged_at = Some(now);
    if let Some(l) = p.leg.as_mut() {
        l.answered_at_ms = Some(unix_ms());
        info!(call_id = %setup.call_id, number = %l.operator, "caller connected to the outside number");
    }
}

/// Starts a transfer out of the flow (T6): to a queue (the caller joins it), to an
/// operator (offered to them first, in their first queue; refused when they can't take
/// a call now), or to an outside number through the trunk (after the dial plan).
/// `Err` says why it can't be done, and the flow takes its `on_fail`.
async fn start_transfer(
    calls: &Calls,
    setup: &CallSetup,
    negotiated: &Negotiated,
    p: &mut Progress,
    target: &TransferTarget,
) -> Result<PendingTransfer, String> {
    let caller = CallerId(setup.handle.0);
    let flows = calls.flows_now();
    let input = match target {
        TransferTarget::Queue(queue) => {
            if !flows.set.queues().contains_key(queue) {
                return Err(format!("no queue {queue:?}"));
            }
            // The caller keeps their first arrival and class (T6).
            let (since, priority) = *p.first_queued.get_or_insert((Instant::now(), 0));
            AcdInput::EnqueueTransferred {
                caller,
                queue: queue.clone(),
                priority,
                since,
                events: setup.events_tx.clone(),
            }
        }
        TransferTarget::Operator(operator) => {
            let queue = first_queue_of(&flows.set, operator)
                .ok_or_else(|| format!("{operator} is in no queue"))?
                .name
                .clone();
            if !operator_free(calls, operator).await {
                return Err(format!("{operator} cannot take a call now"));
            }
            AcdInput::EnqueueDirect {
                caller,
                queue,
                priority: 0,
                skill: None,
                operator: operator.clone(),
                events: setup.events_tx.clone(),
            }
        }
        TransferTarget::External(number) => {
            let trunk = calls.trunk.as_ref().ok_or("no trunk is configured")?;
            let number = trunk.dialplan.check(number).map_err(|e| e.to_string())?;
            let (rtp, rtcp) = calls.rtp_ports.bind().ok_or("no free RTP port")?;
            let local_port = rtp.local_addr().map_err(|e| e.to_string())?.port();
            let handle = crate::outbound::invite_customer(
                calls,
                trunk,
                &number,
                &trunk.caller_id,
                negotiated,
                &rtp,
                setup.events_tx.clone(),
            )
            .await
            .ok_or("the trunk leg could not be placed")?;
            p.leg = Some(OperatorLeg {
                handle,
                operator: number,
                external: true,
                rtp,
                rtcp,
                local_port,
                local_ip: calls.local.toward(trunk.address.ip()),
                sdp_version: 1,
                rang_at_ms: unix_ms(),
                answered_at_ms: None,
                hold: Duration::ZERO,
            });
            return Ok(PendingTransfer::External {
                deadline: Instant::now() + crate::outbound::RING_LIMIT,
            });
        }
    };
    let queue = match &input {
        AcdInput::EnqueueTransferred { queue, .. } | AcdInput::EnqueueDirect { queue, .. } => {
            queue.clone()
        }
        _ => String::new(),
    };
    calls.acd.send(input).await;
    p.queued_at = Some(Instant::now());
    p.was_queued = Some(queue.clone());
    p.queued = Some(Queued { queue });
    Ok(PendingTransfer::Queue)
}

/// What an operator phone's final status means to the queue.
pub fn ring_failure(status: u16) -> RingFailure {
    match status {
        486 | 600 => RingFailure::Busy,
        603 => RingFailure::Rejected,
        408 | 480 | 487 => RingFailure::NoAnswer,
        _ => RingFailure::Unreachable,
    }
}

/// Places the operator leg the queue asked for, offering the caller's own codec so the
/// bridge needs no transcoding. Failures go back to the queue, which tries someone else.
async fn ring_operator(
    calls: &Calls,
    setup: &CallSetup,
    negotiated: &Negotiated,
    p: &mut Progress,
    order: RingOrder,
) {
    let caller = CallerId(setup.handle.0);
    let fail = |operator: String, failure| AcdInput::RingFailed {
        caller,
        operator,
        failure,
    };
    if p.leg.is_some() || p.bridge.is_some() {
        calls
            .acd
            .send(fail(order.operator, RingFailure::Busy))
            .await;
        return;
    }
    // The most recent registration of the phone.
    let Some(contact) = order.contacts.iter().max_by_key(|b| b.expires_at) else {
        calls
            .acd
            .send(fail(order.operator, RingFailure::Unreachable))
            .await;
        return;
    };
    let Some((rtp, rtcp)) = calls.rtp_ports.bind() else {
        warn!(call_id = %setup.call_id, "no free RTP port for the operator leg");
        calls
            .acd
            .send(fail(order.operator, RingFailure::Unreachable))
            .await;
        return;
    };
    let Ok(local_port) = rtp.local_addr().map(|a| a.port()) else {
        calls
            .acd
            .send(fail(order.operator, RingFailure::Unreachable))
            .await;
        return;
    };
    let local_ip = calls.local.toward(contact.peer.addr.ip());
    let offer = sdp::offer(
        negotiated,
        local_ip,
        local_port,
        rand::random::<u32>().into(),
        1,
    );
    let call = OutgoingCall {
        request_uri: contact.uri.clone(),
        to: contact.peer,
        // The operator's phone shows who is calling.
        from_user: setup.caller.clone(),
        from_display: None,
        sdp: offer,
        credentials: None,
        headers: Vec::new(),
    };
    let Some(handle) = calls.sip.invite(call, setup.events_tx.clone()).await else {
        calls
            .acd
            .send(fail(order.operator, RingFailure::Unreachable))
            .await;
        return;
    };
    info!(call_id = %setup.call_id, operator = %order.operator, "ringing operator");
    p.leg = Some(OperatorLeg {
        external: false,
        rang_at_ms: unix_ms(),
        answered_at_ms: None,
        hold: Duration::ZERO,
        handle,
        operator: order.operator,
        rtp,
        rtcp,
        local_port,
        local_ip,
        sdp_version: 1,
    });
}

/// Answers what the flow asks of the outside world.
async fn answer_requests(
    calls: &Calls,
    setup: &CallSetup,
    negotiated: &Negotiated,
    ivr: &mut IvrCall,
    p: &mut Progress,
) {
    let caller = CallerId(setup.handle.0);
    while let Some(request) = ivr.poll_request() {
        match request {
            Request::EnterQueue {
                queue,
                priority,
                skill,
            } => {
                info!(call_id = %setup.call_id, %queue, priority,
                      skill = skill.as_deref().unwrap_or("-"),
                      direct = p.direct.as_deref().unwrap_or("-"), "caller queued");
                // A direct call is offered to its operator first, on its first queue only.
                let input = match p.direct.take() {
                    Some(operator) => AcdInput::EnqueueDirect {
                        caller,
                        queue: queue.clone(),
                        priority,
                        skill,
                        operator,
                        events: setup.events_tx.clone(),
                    },
                    None => AcdInput::Enqueue {
                        caller,
                        queue: queue.clone(),
                        priority,
                        skill,
                        events: setup.events_tx.clone(),
                    },
                };
                calls.acd.send(input).await;
                p.queued_at = Some(Instant::now());
                p.first_queued.get_or_insert((Instant::now(), priority));
                p.was_queued = Some(queue.clone());
                p.queued = Some(Queued { queue });
            }
            Request::LeaveQueue => {
                if p.queued.take().is_some() {
                    let _ = calls
                        .acd
                        .ask(|reply| AcdInput::Leave { caller, reply })
                        .await;
                    if let Some(leg) = p.leg.take() {
                        calls.sip.command(SipCommand::Hangup(leg.handle)).await;
                        p.close_leg(leg, LegOutcome::Cancelled, Instant::now());
                    }
                }
            }
            Request::Callback {
                number,
                queue,
                promise,
            } => {
                p.callback_left = true;
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
                        info!(call_id = %setup.call_id, %number, id, "callback request recorded");
                        let noted = note_on_callback_list(
                            calls,
                            &setup.call_id,
                            &number,
                            queue.as_deref(),
                            CallbackSource::Ivr,
                        )
                        .await;
                        // The flow may say the computed time (its fallback otherwise).
                        if let Some(promised_at_ms) = noted.and_then(|n| n.promised_at_ms) {
                            let (in_ms, same_day) =
                                promise_distance(calls, queue.as_deref(), promised_at_ms);
                            ivr.callback_promise(Instant::now(), in_ms, same_day);
                        }
                    }
                    Err(e) => {
                        warn!(call_id = %setup.call_id, %number, "callback request NOT stored: {e}")
                    }
                }
            }
            Request::Transfer(target) => {
                let started = start_transfer(calls, setup, negotiated, p, &target).await;
                let now = Instant::now();
                match started {
                    Ok(pending) => {
                        info!(call_id = %setup.call_id, ?target, "transferring");
                        p.transfer = Some(pending);
                        ivr.hold_music(now, true, HOLD_MUSIC);
                    }
                    Err(why) => {
                        info!(call_id = %setup.call_id, ?target, "transfer failed: {why}; the flow's on_fail");
                        ivr.transfer_result(now, false);
                    }
                }
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

pub(crate) fn rtp_config(n: &Negotiated) -> RtpConfig {
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
