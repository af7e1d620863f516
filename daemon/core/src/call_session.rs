//! One call, sans-IO: an inbound call from its INVITE, or a call Hotline placed from its
//! customer's answer ([`CallSession::placed`]), to its end. The IVR run, the queue, the
//! operator's leg and the bridge between them, hold, transfers, and what the call record
//! and the missed-call list get. The daemon's call task owns the sockets and the SIP, queue
//! and store handles; it feeds the session events, datagrams and timer firings with `now`,
//! and carries out what [`CallSession::poll_output`] and [`CallSession::poll_transmit`]
//! return. Tests drive it on a virtual clock.
//!
//! Legs are numbered by the session: [`CALLER`] is the caller's dialog, every leg the call
//! places (an operator's phone, an outside number) gets the next [`LegId`]. The driver maps
//! them to its SIP handles and sockets. Media never leaves the session's view: a datagram
//! comes in on a [`Port`], and the session says where it goes on (the bridge) or consumes
//! it (the IVR's RTP session).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hotline_ivr::{CallContext, Flow, QueueStatus, TransferTarget};
use hotline_media::Codec;
use hotline_media::bridge::{self, Bridge, Relay, RtcpRelay, Side, Translation};
use hotline_media::rtp::{RtpConfig, RtpStats};
use hotline_sip::sdp::{self, Negotiated, SdpError};
use tracing::{debug, info, warn};

use crate::acd::RingFailure;
use crate::callbacks::missed::MissedReason;
use crate::cdr::{CallLeg, EndReason, LegOutcome, Service};
use crate::ivr_call::{Hangup, IvrCall, PromptLibrary, Request};
use crate::time::millis;

mod monitor;
mod recording;
pub use monitor::{MonitorMode, MonitorRequest, MonitorState};
pub use recording::RecordingEvent;

/// Played to a held caller whose queue step had no music.
pub const HOLD_MUSIC: &str = "hold-music";

/// How long an outside number a transfer dialled may ring.
pub const EXTERNAL_RING_LIMIT: Duration = Duration::from_secs(60);

/// A dialog of the call: the caller's, or a leg the call placed.
pub type LegId = u32;

/// The caller's own dialog and media ports.
pub const CALLER: LegId = 0;

/// A media port of the call: a leg's RTP or RTCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    Rtp(LegId),
    Rtcp(LegId),
}

/// Where a leg's media is received (the address in our SDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    pub ip: IpAddr,
    pub port: u16,
}

/// What the session needs to start.
pub struct SessionSetup {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub flow: Arc<Flow>,
    pub prompts: Arc<PromptLibrary>,
    /// The caller's SDP offer (`None`: late offer, refused).
    pub offer: Option<String>,
    /// Where the caller's media is received.
    pub media: LocalMedia,
    /// The SDP session id of our answers.
    pub sdp_session: u64,
    /// No RTP from the caller for this long ends the call (zero: never).
    pub rtp_timeout: Duration,
    /// The flows' wall clock at `now` (their calendars and schedules use it).
    pub flow_clock: DateTime<Utc>,
    /// Unix time at `now`, in ms (call records).
    pub unix_ms: i64,
    /// Direct callback: the operator the first queue entry is offered to first.
    pub direct: Option<String>,
    /// Our RTP stream to the caller (tests fix it; the daemon takes random values).
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
}

/// A call Hotline placed (click-to-call, a callback): the customer's dialog, answered,
/// is the session's caller dialog ([`CALLER`]). Then the operator's leg, answered as
/// well, is bridged at once, or a flow runs first (a customer-first callback's
/// confirmation). From there on it is a call like any other: hold, transfers, the record.
pub struct PlacedSetup {
    pub call_id: String,
    /// The customer's number.
    pub customer: String,
    pub prompts: Arc<PromptLibrary>,
    /// The customer's answer to our offer.
    pub answer: Negotiated,
    /// Where the customer's media is received.
    pub media: LocalMedia,
    /// The SDP session id and version of our offer (answers to re-INVITEs go on from
    /// them).
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// The queue the call is for, when it is a queue's callback.
    pub queue: Option<String>,
    pub rtp_timeout: Duration,
    pub flow_clock: DateTime<Utc>,
    pub unix_ms: i64,
    pub ssrc: u32,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
    pub start: PlacedStart,
}

/// How a placed call goes on once the customer answered.
pub enum PlacedStart {
    /// The operator's leg answered first: bridged now. `outbound`: the queue engine has
    /// the operator on a call of their own (click-to-call), ended with
    /// [`QueueOut::OutboundEnded`]; else it connected them to this call as a queued
    /// caller (an agent-first callback), ended with [`QueueOut::CallEnded`].
    Operator { leg: HandedLeg, outbound: bool },
    /// The flow runs; its queue step enters the queue as a callback, ordered as if it
    /// had arrived at `callback_since` (the customer's first call).
    Flow {
        flow: Arc<Flow>,
        called: String,
        callback_since: Instant,
    },
}

/// What the session asks of the world, in order.
#[derive(Debug, PartialEq)]
pub enum Output {
    Sip(SipOut),
    Queue(QueueOut),
    /// The caller was answered (the call record's answer time, unix ms).
    Answered {
        at_ms: i64,
    },
    /// Dial an outside number for a transfer: place the leg and answer with
    /// [`CallSession::leg_placed`] or [`CallSession::leg_not_placed`].
    PlaceExternal {
        leg: LegId,
        number: String,
    },
    /// Find out where a transfer goes and whether it may go there now; answer with
    /// [`CallSession::target_checked`].
    Check(Check),
    /// The flow took a callback request: store it and answer with
    /// [`CallSession::callback_promise`] when a time was promised.
    Callback {
        number: String,
        queue: Option<String>,
        promise: Option<String>,
    },
    /// The operator's console: they are connected to this caller now (with the queue
    /// and the note of whoever transferred the caller to them, and the queue step's
    /// recording setting: `None`, the queue's)…
    Connected {
        operator: String,
        queue: Option<String>,
        note: Option<(String, String)>,
        record: Option<hotline_ivr::RecordMode>,
    },
    /// …hold or resume…
    Held {
        operator: String,
        held: bool,
    },
    /// …or no longer.
    Disconnected {
        operator: String,
    },
    /// The answer to a console transfer ([`CallSession::console_transfer`]) or
    /// consultation ([`CallSession::console_consult`]).
    ConsoleReply(Result<(), String>),
    /// Ring an operator's phone outside the queues (a console consultation): mark them
    /// busy to the queue engine under this call (ended with [`QueueOut::OutboundEnded`]),
    /// place the leg and answer with [`CallSession::leg_placed`] or
    /// [`CallSession::leg_not_placed`] (they can't take a call now).
    PlaceOperator {
        leg: LegId,
        operator: String,
        /// They asked for this call themselves (a supervisor's monitoring): their phone
        /// should pick up by itself.
        auto_answer: bool,
    },
    /// A supervisor's monitoring of this call (with `operator`) changed: for the board
    /// and the audit log.
    Monitor {
        supervisor: String,
        operator: String,
        state: MonitorState,
    },
    /// The operator's console consultation, as their panel shows it.
    Consulting {
        operator: String,
        state: ConsultState,
    },
    /// The call's recording started, was marked or stopped.
    Recording(RecordingEvent),
    /// An attended transfer (REFER with Replaces): find `from`'s consultation call
    /// `dialog` (its SIP Call-ID), take its other party over with
    /// [`CallSession::hand_over`] there, and answer with [`CallSession::replaced`].
    Replace {
        dialog: String,
        from: String,
    },
}

/// Where an operator's consultation from the console stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsultState {
    /// Their phone rings (`with`: whom).
    Ringing { with: String },
    /// They talk; the caller hears music.
    Talking { with: String },
    /// Over without a transfer: the operator has the caller back (why, for the panel).
    Ended { message: String },
}

/// The other party of a consultation call, handed to the call whose caller an attended
/// transfer joins them with. The driver moves the leg's SIP handle and sockets along.
#[derive(Debug, PartialEq, Eq)]
pub struct HandedLeg {
    /// The leg in the call that hands it over.
    pub leg: LegId,
    pub operator: String,
    /// Where its media goes.
    pub remote: Option<SocketAddr>,
    pub media: LocalMedia,
    pub sdp_version: u64,
    pub rang_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    /// Its codec, payload type and telephone-event payload type.
    pub format: Format,
}

/// A leg's negotiated audio: codec, payload type, telephone-event payload type.
pub type Format = (Codec, u8, Option<u8>);

/// SIP on one of the call's dialogs.
#[derive(Debug, PartialEq, Eq)]
pub enum SipOut {
    /// 180 to the caller.
    Ringing,
    /// 200 with this SDP: to the INVITE or a re-INVITE.
    Answer { leg: LegId, sdp: String },
    /// A final refusal of the INVITE or re-INVITE.
    Reject { leg: LegId, status: u16 },
    /// BYE, or CANCEL while a leg rings.
    Hangup { leg: LegId },
    /// The final answer to a REFER.
    ReferReply { leg: LegId, status: u16 },
    /// A NOTIFY on the REFER's progress (`last`: its final word).
    ReferNotify { leg: LegId, status: u16, last: bool },
}

/// What the queue engine is told about the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueOut {
    Enqueue {
        queue: String,
        priority: u8,
        skill: Option<String>,
        /// Offered to this operator first (direct callback, transfer to an operator).
        first: Option<String>,
    },
    /// A transferred caller keeps their first arrival and class.
    EnqueueTransferred {
        queue: String,
        priority: u8,
        since: Instant,
    },
    Leave,
    /// The operator's phone answered: ask the engine and tell the session with
    /// [`CallSession::ring_accepted`].
    RingAnswered {
        leg: LegId,
        operator: String,
    },
    RingFailed {
        operator: String,
        failure: RingFailure,
    },
    /// A callback enters the queue (the engine's callback room counts it), ordered as
    /// if it had arrived at `since`. Nobody queued it if the engine refuses: tell the
    /// session with [`QueueStatus::Unavailable`].
    EnqueueCallback {
        queue: String,
        since: Instant,
    },
    /// The connected call is over (the operator goes to wrap-up).
    CallEnded,
    /// The operator's own call (click-to-call) is over: wrap-up, as after `CallEnded`.
    OutboundEnded {
        operator: String,
    },
    /// An operator rung outside the queues (a consultation) never talked: free again at
    /// once, keeping their place in the longest-idle order.
    OutboundCancelled {
        operator: String,
    },
    /// The operator an attended transfer handed over talks with this caller now (after
    /// `CallEnded` of the operator who transferred).
    Rekey,
}

/// A transfer target to look up: who or what is behind it, and whether the caller can
/// go there now.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// A REFER's target (an operator's SIP user, a number a flow answers, an outside
    /// number the dial plan allows).
    Refer {
        target: hotline_sip::ReferTarget,
        /// The operator transferring (a transfer to themselves is refused).
        from: String,
    },
    /// A transfer from the operator's console.
    Console { to: TransferTarget, from: String },
    /// A consultation from the console: a queue means its free member now (not `from`).
    Consult { to: TransferTarget, from: String },
    /// The flow's `transfer` step.
    Flow(TransferTarget),
}

/// Where a checked transfer sends the caller.
#[derive(Clone, Debug)]
pub enum Destination {
    Queue(String),
    /// Offered to the operator first, in `queue` (their first).
    Operator {
        operator: String,
        queue: String,
    },
    /// An outside number, as the dial plan writes it.
    External(String),
    /// A number a flow answers: the caller starts over in that flow.
    Flow {
        flow: Arc<Flow>,
        prompts: Arc<PromptLibrary>,
        number: String,
    },
}

impl Destination {
    /// As the log writes it.
    fn log_form(&self) -> String {
        match self {
            Destination::Queue(q) => format!("Queue({q:?})"),
            Destination::Operator { operator, .. } => format!("Operator({operator:?})"),
            Destination::External(n) => format!("External({n:?})"),
            Destination::Flow { number, .. } => format!("Flow({number:?})"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Destination::Queue(q) => format!("queue {q}"),
            Destination::Operator { operator, .. } => format!("operator {operator}"),
            Destination::External(n) | Destination::Flow { number: n, .. } => {
                format!("number {n}")
            }
        }
    }
}

/// A refused transfer: the SIP status a REFER gets, and why (for the log and the console).
pub type Refusal = (u16, String);

/// What the call record and the missed-call list get when the call is over.
#[derive(Debug)]
pub struct FinishedCall {
    pub reason: EndReason,
    pub digits: String,
    pub path: Vec<String>,
    /// Variables the flow set, as a JSON object.
    pub variables: String,
    /// The operator the caller last talked to.
    pub operator: Option<String>,
    pub missed: Option<Missed>,
    pub service: Service,
}

impl FinishedCall {
    /// A call refused before its session started (no flow, no media port).
    pub fn rejected() -> FinishedCall {
        FinishedCall {
            reason: EndReason::Rejected,
            digits: String::new(),
            path: Vec::new(),
            variables: "{}".into(),
            operator: None,
            missed: None,
            service: Service::default(),
        }
    }
}

/// A caller nobody answered and who left no callback request: they waited in a queue,
/// or the flow marked the call (`missed` variable, e.g. outside hours).
#[derive(Debug, PartialEq, Eq)]
pub struct Missed {
    pub queue: Option<String>,
    pub reason: MissedReason,
    pub waited: Duration,
}

/// Who a leg reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Party {
    Operator(String),
    Number(String),
}

impl Party {
    fn name(&self) -> &str {
        match self {
            Party::Operator(n) | Party::Number(n) => n,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LegState {
    /// The driver is placing it (an outside number).
    Placing,
    Ringing,
    /// Answered; the queue engine is asked whether the ring still stands. `remote`: the
    /// answer's media (`None`: no usable SDP; `Some(None)`: answered on hold).
    Accepting {
        remote: Option<Option<SocketAddr>>,
    },
    /// Bridged with the caller.
    Talking,
}

/// A leg the call placed.
struct Leg {
    id: LegId,
    party: Party,
    state: LegState,
    media: Option<LocalMedia>,
    sdp_version: u64,
    rang_at_ms: i64,
    answered_at_ms: Option<i64>,
    /// Time this party held the caller.
    hold: Duration,
    /// An outside number's ring ends here.
    deadline: Option<Instant>,
    /// A leg negotiated apart from the caller (handed over by an attended transfer):
    /// caller → leg and leg → caller rewrites.
    translation: Option<(Translation, Translation)>,
}

impl Leg {
    /// A leg the driver is about to place.
    fn placing(id: LegId, party: Party, rang_at_ms: i64) -> Leg {
        Leg {
            id,
            party,
            state: LegState::Placing,
            media: None,
            sdp_version: 1,
            rang_at_ms,
            answered_at_ms: None,
            hold: Duration::ZERO,
            deadline: None,
            translation: None,
        }
    }
}

/// Where the call stands with its caller.
enum Phase {
    /// Ringing before the answer (the flow's `ring_ms`).
    Ringing {
        until: Instant,
    },
    /// Answered: the flow, the queue, operators.
    Answered,
    Over(EndReason),
}

/// A transfer out of the flow (T6) waiting to know whether it worked; the flow hears the
/// result and goes on (`on_fail`), or leaves the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingTransfer {
    /// Queued: the queue's first word on the caller decides.
    Queue,
    /// An outside number ringing.
    External,
}

/// How the queue engine counts the connected operator busy.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Conversation {
    /// Connected to this call as a queued caller.
    Queued,
    /// On a call of their own that this is (click-to-call).
    Outbound(String),
}

/// A consultation from the console (T6): the caller holds (music) while the operator talks
/// with a colleague or a number on a second leg; then the caller goes to them (complete)
/// or back to the operator (cancel).
struct Consult {
    leg: Leg,
    /// The operator's leg and the consulted one, once it answered.
    bridge: Option<Bridge>,
    /// The operator's note for whoever takes the caller.
    note: Option<(String, String)>,
}

/// What happened to the consulted leg.
enum ConsultEvent<'a> {
    Placed(LocalMedia),
    Answered(Option<&'a str>),
    Failed(u16),
    Ended,
}

/// A check the driver is looking up.
enum Checking {
    Refer {
        leg: LegId,
    },
    /// An attended transfer's consultation call.
    Replace {
        leg: LegId,
    },
    Console {
        note: Option<(String, String)>,
    },
    /// A consultation the console asked for.
    Consult {
        note: Option<(String, String)>,
    },
    Flow,
}

/// What every session starts from, inbound or placed.
struct Basics {
    call_id: String,
    caller: String,
    prompts: Arc<PromptLibrary>,
    negotiated: Negotiated,
    media: LocalMedia,
    sdp_session: u64,
    sdp_version: u64,
    rtp_timeout: Duration,
    flow_clock: DateTime<Utc>,
    unix_ms: i64,
    ssrc: u32,
    initial_seq: u16,
    initial_timestamp: u32,
}

pub struct CallSession {
    call_id: String,
    caller: String,
    prompts: Arc<PromptLibrary>,
    negotiated: Negotiated,
    media: LocalMedia,
    sdp_session: u64,
    sdp_version: u64,
    rtp_timeout: Duration,
    /// The clocks at `started`: the session reads no clock of its own.
    started: Instant,
    flow_clock: DateTime<Utc>,
    unix_ms: i64,
    ssrc: u32,
    initial_seq: u16,
    initial_timestamp: u32,
    phase: Phase,
    /// The flow, until answered; replaced when a transfer starts the caller over.
    pending_flow: Option<(Arc<Flow>, String)>,
    ivr: Option<IvrCall>,
    next_leg: LegId,
    /// The operator's phone (ringing or talking), or an outside number.
    leg: Option<Leg>,
    /// The connected operator's consultation from the console.
    consult: Option<Consult>,
    /// A supervisor listening, whispering or barging in.
    monitor: Option<monitor::Monitor>,
    /// The queue step's recording setting (the queue's when `None`), for the driver.
    record_step: Option<hotline_ivr::RecordMode>,
    recording: Option<recording::Recording>,
    /// A stopped recording's last audio, until the driver takes it.
    stopped_pcm: Vec<i16>,
    bridge: Option<Bridge>,
    rtcp: RtcpRelay,
    bridged_at: Option<Instant>,
    held_since: Option<Instant>,
    /// The queue the caller waits in now.
    queued: Option<String>,
    /// The queue the caller last waited in, answered or not.
    was_queued: Option<String>,
    queued_at: Option<Instant>,
    /// When and in which class the caller first entered a queue: a transfer keeps both.
    first_queued: Option<(Instant, u8)>,
    wait: Option<Duration>,
    direct: Option<String>,
    /// The operator who last took the caller.
    operator: Option<String>,
    /// Connected to an operator now (the queue engine counts them busy), and how.
    in_call: Option<Conversation>,
    /// A callback's queue entry keeps the customer's first call as its arrival.
    callback_since: Option<Instant>,
    callback_left: bool,
    transfer: Option<PendingTransfer>,
    /// Where a failed phone or console transfer sends the caller back: the queue they
    /// waited in before it (taken once).
    return_queue: Option<String>,
    checking: Option<Checking>,
    /// Who transferred the caller from the console, and their note for the next operator.
    transfer_note: Option<(String, String)>,
    earlier_digits: String,
    earlier_path: Vec<String>,
    legs: Vec<CallLeg>,
    outputs: VecDeque<Output>,
    /// The flow the caller is in now (its name and VIP lists, for the screen pop).
    current_flow: Option<Arc<Flow>>,
    /// The skill the caller's queue entry asked for.
    skill: Option<String>,
}

/// What the caller did before an operator took them: the console's screen pop
/// ([`CallSession::caller_so_far`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallerSoFar {
    /// The flow the caller is in now.
    pub flow: Option<String>,
    /// Steps entered, in order, over every flow of the call (as the record gets them).
    pub path: Vec<String>,
    pub digits: String,
    /// Variables and tags the flows set (tags as `tags`, comma separated).
    pub variables: std::collections::BTreeMap<String, String>,
    /// The wait in the queue: so far while queued, else until the first answer.
    pub wait_ms: Option<i64>,
    /// The queue the caller waits in now, or last waited in.
    pub queue: Option<String>,
    pub skill: Option<String>,
    /// The flow set a `vip` variable or tag, or the caller is on one of its VIP lists.
    pub vip: bool,
}

impl CallSession {
    /// A new inbound call: refused at once if its offer can't be answered, else ringing
    /// (the flow's `ring_ms`) or answered.
    pub fn new(now: Instant, setup: SessionSetup) -> CallSession {
        let negotiated = negotiate(setup.offer.as_deref());
        let mut s = CallSession::with(
            now,
            Basics {
                call_id: setup.call_id,
                caller: setup.caller,
                prompts: setup.prompts,
                negotiated: negotiated.clone().unwrap_or_else(|_| placeholder_media()),
                media: setup.media,
                sdp_session: setup.sdp_session,
                sdp_version: 1,
                rtp_timeout: setup.rtp_timeout,
                flow_clock: setup.flow_clock,
                unix_ms: setup.unix_ms,
                ssrc: setup.ssrc,
                initial_seq: setup.initial_seq,
                initial_timestamp: setup.initial_timestamp,
            },
        );
        s.direct = setup.direct;
        if let Err(status) = negotiated {
            s.sip(SipOut::Reject {
                leg: CALLER,
                status,
            });
            s.phase = Phase::Over(EndReason::Rejected);
            return s;
        }
        let ring = Duration::from_millis(setup.flow.ring_ms);
        s.pending_flow = Some((setup.flow, setup.called));
        if ring.is_zero() {
            s.answer(now);
        } else {
            s.sip(SipOut::Ringing);
            s.phase = Phase::Ringing { until: now + ring };
        }
        s
    }

    /// A call Hotline placed, once its customer answered (see [`PlacedSetup`]). `Some`
    /// is the operator's leg, to which the driver attaches that leg's SIP handle and
    /// sockets.
    pub fn placed(now: Instant, setup: PlacedSetup) -> (CallSession, Option<LegId>) {
        let mut s = CallSession::with(
            now,
            Basics {
                call_id: setup.call_id,
                caller: setup.customer,
                prompts: setup.prompts,
                negotiated: setup.answer,
                media: setup.media,
                sdp_session: setup.sdp_session,
                sdp_version: setup.sdp_version,
                rtp_timeout: setup.rtp_timeout,
                flow_clock: setup.flow_clock,
                unix_ms: setup.unix_ms,
                ssrc: setup.ssrc,
                initial_seq: setup.initial_seq,
                initial_timestamp: setup.initial_timestamp,
            },
        );
        s.was_queued = setup.queue;
        s.outputs.push_back(Output::Answered {
            at_ms: s.unix_ms(now),
        });
        match setup.start {
            PlacedStart::Operator { leg, outbound } => {
                // No flow runs, but the customer's RTP session is there for hold music.
                let context = CallContext {
                    caller: s.caller.clone(),
                    called: String::new(),
                    answered_at: s.flow_clock(now),
                };
                let mut ivr = IvrCall::new(
                    Arc::new(Flow::builtin("placed", Vec::new())),
                    context,
                    s.prompts.clone(),
                    s.rtp_config(),
                    s.rtp_timeout,
                    now,
                );
                ivr.skip_flow(now);
                ivr.set_bridged(now);
                s.ivr = Some(ivr);
                let operator = leg.operator.clone();
                info!(call_id = %s.call_id, %operator, customer = %s.caller, "placed call connected");
                let id = s.adopt(now, leg);
                s.in_call = Some(if outbound {
                    Conversation::Outbound(operator)
                } else {
                    Conversation::Queued
                });
                (s, Some(id))
            }
            PlacedStart::Flow {
                flow,
                called,
                callback_since,
            } => {
                s.callback_since = Some(callback_since);
                s.start_flow(now, flow, called);
                s.settle(now);
                (s, None)
            }
        }
    }

    /// A session in its first state: answered, nothing else yet.
    fn with(now: Instant, b: Basics) -> CallSession {
        CallSession {
            call_id: b.call_id,
            caller: b.caller,
            prompts: b.prompts,
            negotiated: b.negotiated,
            media: b.media,
            sdp_session: b.sdp_session,
            sdp_version: b.sdp_version,
            rtp_timeout: b.rtp_timeout,
            started: now,
            flow_clock: b.flow_clock,
            unix_ms: b.unix_ms,
            ssrc: b.ssrc,
            initial_seq: b.initial_seq,
            initial_timestamp: b.initial_timestamp,
            phase: Phase::Answered,
            pending_flow: None,
            ivr: None,
            next_leg: CALLER + 1,
            leg: None,
            consult: None,
            monitor: None,
            record_step: None,
            recording: None,
            stopped_pcm: Vec::new(),
            bridge: None,
            rtcp: RtcpRelay::default(),
            bridged_at: None,
            held_since: None,
            queued: None,
            was_queued: None,
            queued_at: None,
            first_queued: None,
            wait: None,
            direct: None,
            operator: None,
            in_call: None,
            callback_since: None,
            callback_left: false,
            transfer: None,
            return_queue: None,
            checking: None,
            transfer_note: None,
            earlier_digits: String::new(),
            earlier_path: Vec::new(),
            legs: Vec::new(),
            outputs: VecDeque::new(),
            current_flow: None,
            skill: None,
        }
    }

    // ---- what the driver reads ---------------------------------------------------

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// RTP the session sends itself: prompts and music from the caller's port, and a
    /// monitored call's mix to each party.
    pub fn poll_transmit(&mut self) -> Option<(Port, SocketAddr, Vec<u8>)> {
        if let Some((to, packet)) = self.ivr.as_mut().and_then(IvrCall::poll_transmit) {
            return Some((Port::Rtp(CALLER), to, packet));
        }
        self.mix_transmit()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Over(_) => return None,
            Phase::Ringing { until } => return Some(until),
            Phase::Answered => {}
        }
        [
            self.ivr.as_ref().and_then(IvrCall::poll_timeout),
            self.bridge_dead_at(),
            self.leg.as_ref().and_then(|l| l.deadline),
            self.consult.as_ref().and_then(|c| c.leg.deadline),
            self.mix_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The bridged media, for a relay thread to run while the call is plainly bridged:
    /// an operator or number talking with the caller, not held, no consultation, nothing
    /// left to send. `None` otherwise. The driver gives the session no other input until
    /// it has given the media back with [`CallSession::return_media`]; the session's
    /// [`CallSession::poll_timeout`] from before the loan stays valid meanwhile (a later
    /// packet only moves dead-call detection later).
    pub fn lend_media(&mut self) -> Option<(LegId, Relay)> {
        let leg = self.leg.as_ref().filter(|l| l.state == LegState::Talking)?;
        if !matches!(self.phase, Phase::Answered)
            || self.held_since.is_some()
            || self.consult.is_some()
            || self.monitor.is_some()
            || self.recording.is_some()
            || !self.outputs.is_empty()
        {
            return None;
        }
        let (id, translation) = (leg.id, leg.translation);
        let bridge = self.bridge.take()?;
        Some((
            id,
            Relay {
                bridge,
                rtcp: std::mem::take(&mut self.rtcp),
                translation,
            },
        ))
    }

    /// The driver lost the call's media (never seen: its sockets could not come back from
    /// a relay thread): every party gets BYE, and the record says the transport failed.
    pub fn media_lost(&mut self, now: Instant) {
        self.finish(now, EndReason::TransportError, true);
    }

    /// The SIP Call-ID of the caller's dialog, for the driver's log lines.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The media [`CallSession::lend_media`] lent, as the relay thread left it.
    pub fn return_media(&mut self, relay: Relay) {
        self.bridge = Some(relay.bridge);
        self.rtcp = relay.rtcp;
    }

    /// Why the call ended, once it has; the driver then drains the outputs and finishes
    /// with [`CallSession::into_outcome`].
    pub fn ended(&self) -> Option<EndReason> {
        match self.phase {
            Phase::Over(reason) => Some(reason),
            _ => None,
        }
    }

    /// The caller's negotiated media: the codec every leg is offered, so the bridge needs
    /// no transcoding.
    pub fn caller_media(&self) -> &Negotiated {
        &self.negotiated
    }

    pub fn rtp_stats(&self) -> RtpStats {
        self.ivr
            .as_ref()
            .map(IvrCall::rtp_stats)
            .unwrap_or_default()
    }

    /// The operator whose phone rings with the caller (placed, ringing, or answered and
    /// not yet confirmed by the queue engine), if any.
    pub fn ringing_operator(&self) -> Option<&str> {
        let leg = self.leg.as_ref()?;
        match (&leg.party, &leg.state) {
            (
                Party::Operator(op),
                LegState::Placing | LegState::Ringing | LegState::Accepting { .. },
            ) => Some(op),
            _ => None,
        }
    }

    /// What the caller did so far, for the operator's screen pop: path, digits and
    /// variables as [`CallSession::into_outcome`] records them, the wait, queue and skill.
    pub fn caller_so_far(&self, now: Instant) -> CallerSoFar {
        let (mut digits, mut path) = (self.earlier_digits.clone(), self.earlier_path.clone());
        let mut variables = std::collections::BTreeMap::new();
        if let Some(ivr) = &self.ivr {
            digits.push_str(ivr.digits());
            path.extend(ivr.path().iter().cloned());
            variables = ivr.variables().clone();
        }
        // While queued the wait still grows; after the answer it is the recorded one.
        let wait = match (&self.queued, self.queued_at) {
            (Some(_), Some(at)) => Some(now.saturating_duration_since(at)),
            _ => self.wait,
        };
        let flagged = |v: &str| !matches!(v.trim(), "" | "0" | "false" | "no");
        let vip = variables.get("vip").is_some_and(|v| flagged(v))
            || variables
                .get("tags")
                .is_some_and(|t| t.split(',').any(|t| t.trim().eq_ignore_ascii_case("vip")))
            || self
                .current_flow
                .as_ref()
                .is_some_and(|f| f.vip_lists.values().any(|l| l.contains(&self.caller)));
        CallerSoFar {
            flow: self.current_flow.as_ref().map(|f| f.name.clone()),
            path,
            digits,
            variables,
            wait_ms: wait.map(millis),
            queue: self.queued.clone().or_else(|| self.was_queued.clone()),
            skill: self.skill.clone(),
            vip,
        }
    }

    /// The connected operator, if any (and whether they hold the caller).
    pub fn connected(&self) -> Option<(&str, bool)> {
        let leg = self.leg.as_ref()?;
        match (&leg.party, &leg.state) {
            (Party::Operator(op), LegState::Talking) => Some((op, self.held_since.is_some())),
            _ => None,
        }
    }

    // ---- the caller's dialog -------------------------------------------------------

    /// CANCEL before the answer.
    pub fn caller_cancelled(&mut self, now: Instant) {
        self.finish(now, EndReason::Cancelled, false);
    }

    /// The caller's dialog ended (BYE, no ACK, transport).
    pub fn caller_ended(&mut self, now: Instant, reason: EndReason) {
        self.finish(now, reason, false);
    }

    /// A digit by SIP INFO.
    pub fn caller_dtmf(&mut self, now: Instant, digit: char) {
        if self.bridge.is_none()
            && let Some(ivr) = self.ivr.as_mut()
        {
            ivr.handle_sip_dtmf(now, digit);
        }
        self.settle(now);
    }

    /// A re-INVITE from the caller (new address, hold).
    pub fn caller_reinvite(&mut self, now: Instant, offer: Option<&str>) {
        if !matches!(self.phase, Phase::Answered) {
            return;
        }
        match negotiate(offer) {
            Ok(n) => {
                let remote = rtp_destination(&n);
                match (&mut self.bridge, &mut self.ivr) {
                    (Some(bridge), _) => bridge.set_remote(Side::A, remote),
                    (None, Some(ivr)) => ivr.set_remote(now, remote),
                    (None, None) => {}
                }
                self.sdp_version += 1;
                let sdp = sdp::answer(
                    &n,
                    self.media.ip,
                    self.media.port,
                    self.sdp_session,
                    self.sdp_version,
                );
                self.sip(SipOut::Answer { leg: CALLER, sdp });
            }
            Err(status) => self.sip(SipOut::Reject {
                leg: CALLER,
                status,
            }),
        }
        self.settle(now);
    }

    /// The daemon stops: the caller is hung up.
    pub fn shutdown(&mut self, now: Instant) {
        self.finish(now, EndReason::Shutdown, true);
    }

    /// An admin ends the call (`hotline hangup`): every party gets BYE (a caller not
    /// answered yet, 480). The record says the operator hung up when one was talking with
    /// the caller, else that the daemon did (as a flow's hangup step).
    pub fn hang_up(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Over(_)) {
            return;
        }
        if matches!(self.phase, Phase::Ringing { .. }) {
            self.sip(SipOut::Reject {
                leg: CALLER,
                status: 480,
            });
        }
        let reason = match self.connected() {
            Some(_) => EndReason::OperatorHangup,
            None => EndReason::FlowHangup,
        };
        self.finish(now, reason, true);
    }

    // ---- media -----------------------------------------------------------------------

    /// A datagram on one of the call's ports; `Some` is where to send it on unchanged.
    /// A leg negotiated apart from the caller gets the packet rewritten in place first.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        port: Port,
        from: SocketAddr,
        data: &mut [u8],
    ) -> Option<(Port, SocketAddr)> {
        self.record_tap(now, port, from, data);
        if self.mix_datagram(now, port, from, data) {
            return None;
        }
        // Consulting: the operator's phone and the consulted one hear each other.
        if let Some(c) = self.consult.as_mut()
            && let Some(cb) = c.bridge.as_mut()
            && let Some(main) = self.leg.as_ref().filter(|l| l.state == LegState::Talking)
        {
            // The consulted leg was offered the caller's codec.
            let translation = main.translation;
            match port {
                Port::Rtp(l) if l == main.id => {
                    let to = cb.forward(now, Side::A, from, data)?;
                    if let Some((_, to_caller)) = translation {
                        to_caller.apply(data);
                    }
                    return Some((Port::Rtp(c.leg.id), to));
                }
                Port::Rtp(l) if l == c.leg.id => {
                    let to = cb.forward(now, Side::B, from, data)?;
                    if let Some((to_leg, _)) = translation {
                        to_leg.apply(data);
                    }
                    return Some((Port::Rtp(main.id), to));
                }
                Port::Rtcp(l) if l == c.leg.id || l == main.id => return None,
                _ => {}
            }
        }
        let (leg, translation) = self
            .leg
            .as_ref()
            .filter(|l| l.state == LegState::Talking)
            .map_or((None, None), |l| (Some(l.id), l.translation));
        let held = self.held_since.is_some();
        // Which bridge side the datagram came from, and the socket it goes out on.
        let route = match (port, leg) {
            (Port::Rtp(CALLER), Some(leg)) => Some((Side::A, false, Port::Rtp(leg))),
            (Port::Rtcp(CALLER), Some(leg)) => Some((Side::A, true, Port::Rtcp(leg))),
            (Port::Rtp(l), Some(leg)) if l == leg => Some((Side::B, false, Port::Rtp(CALLER))),
            (Port::Rtcp(l), Some(leg)) if l == leg => Some((Side::B, true, Port::Rtcp(CALLER))),
            _ => None,
        };
        match (route, &mut self.bridge) {
            (Some((side, rtcp, other)), Some(bridge)) => {
                let to = bridge::forward(
                    bridge,
                    &mut self.rtcp,
                    translation.as_ref(),
                    now,
                    side,
                    rtcp,
                    from,
                    data,
                )?;
                // On hold no RTP passes (the caller hears our music), but the bridge
                // still learns who is alive.
                (!held || rtcp).then_some((other, to))
            }
            // Unbridged, the caller's RTP (and RTCP: it shows the caller is still there,
            // e.g. on hold) goes to the IVR.
            (_, None) if matches!(port, Port::Rtp(CALLER) | Port::Rtcp(CALLER)) => {
                if let Some(ivr) = self.ivr.as_mut() {
                    ivr.handle_rtp(now, from, data);
                }
                self.settle(now);
                None
            }
            _ => None,
        }
    }

    // ---- timers ------------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Over(_) => return,
            Phase::Ringing { until } => {
                if until <= now {
                    self.answer(now);
                }
                return;
            }
            Phase::Answered => {}
        }
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.handle_timeout(now);
        }
        if let Some(leg) = self
            .leg
            .take_if(|l| l.deadline.is_some_and(|d| d <= now) && l.state != LegState::Talking)
        {
            info!(call_id = %self.call_id, number = %leg.party.name(), "transfer: no answer");
            self.sip(SipOut::Hangup { leg: leg.id });
            self.close_leg(leg, LegOutcome::NoAnswer, now, None);
            self.transfer_failed(now);
        }
        if let Some(c) = self
            .consult
            .take_if(|c| c.leg.deadline.is_some_and(|d| d <= now))
        {
            let with = c.leg.party.name().to_string();
            info!(call_id = %self.call_id, %with, "consultation: no answer");
            self.sip(SipOut::Hangup { leg: c.leg.id });
            self.drop_consult(now, c.leg, format!("{with} did not answer."));
        }
        self.mix_handle_timeout(now);
        if self.bridge_dead_at().is_some_and(|t| t <= now) {
            info!(call_id = %self.call_id, "no RTP from the caller in the bridged call");
            self.finish(now, EndReason::RtpTimeout, true);
            return;
        }
        self.settle(now);
    }

    // ---- the queue ---------------------------------------------------------------------

    /// Where the caller stands in the queue, or that nobody can take the call.
    pub fn queue_status(&mut self, now: Instant, status: QueueStatus) {
        let unavailable = matches!(status, QueueStatus::Unavailable);
        if unavailable {
            self.queued = None;
        }
        let flow_over = self.ivr.as_ref().is_none_or(IvrCall::flow_finished);
        if self.transfer == Some(PendingTransfer::Queue) {
            // The queue's first word on a transferred caller decides the transfer.
            self.transfer = None;
            if unavailable {
                self.music(now, false);
                self.transfer_result(now, false);
            } else {
                self.transfer_result(now, true);
            }
        } else if unavailable && flow_over && self.bridge.is_none() {
            info!(call_id = %self.call_id, "the queue the caller was transferred to closed");
            self.finish(now, EndReason::FlowHangup, true);
            return;
        } else if let Some(ivr) = self.ivr.as_mut() {
            ivr.queue_status(now, status);
        }
        self.settle(now);
    }

    /// The queue engine asks to ring `operator`'s phone. `Some` is the new leg, which the
    /// driver places and reports with [`CallSession::leg_placed`] (or
    /// [`CallSession::leg_not_placed`]); `None` when the caller can't take a ring now (the
    /// engine hears "busy").
    pub fn ring_operator(&mut self, now: Instant, operator: &str) -> Option<LegId> {
        if self.leg.is_some() || self.bridge.is_some() || !matches!(self.phase, Phase::Answered) {
            self.queue(QueueOut::RingFailed {
                operator: operator.to_string(),
                failure: RingFailure::Busy,
            });
            return None;
        }
        let id = self.new_leg_id();
        info!(call_id = %self.call_id, %operator, "ringing operator");
        self.leg = Some(Leg::placing(
            id,
            Party::Operator(operator.to_string()),
            self.unix_ms(now),
        ));
        Some(id)
    }

    /// The queue engine stopped the ring (its timeout, the operator went away).
    pub fn cancel_ring(&mut self, now: Instant) {
        if let Some(leg) = self.leg.take_if(|l| {
            matches!(l.party, Party::Operator(_))
                && matches!(l.state, LegState::Placing | LegState::Ringing)
        }) {
            debug!(call_id = %self.call_id, operator = %leg.party.name(), "ring cancelled");
            self.sip(SipOut::Hangup { leg: leg.id });
            self.close_leg(leg, LegOutcome::Cancelled, now, None);
        }
        self.settle(now);
    }

    /// The engine's answer to [`QueueOut::RingAnswered`]: the caller is connected, or the
    /// ring was over and that phone is hung up.
    pub fn ring_accepted(&mut self, now: Instant, leg: LegId, accepted: bool) {
        let Some(l) = self
            .leg
            .take_if(|l| l.id == leg && matches!(l.state, LegState::Accepting { .. }))
        else {
            return;
        };
        let LegState::Accepting { remote } = l.state else {
            return;
        };
        let (true, Some(remote)) = (accepted, remote) else {
            warn!(call_id = %self.call_id, operator = %l.party.name(), accepted,
                  "operator answer not usable; hanging up that leg");
            self.sip(SipOut::Hangup { leg });
            self.close_leg(l, LegOutcome::Cancelled, now, None);
            if accepted {
                // The engine counts them connected: the call can't go on without media.
                self.queue(QueueOut::CallEnded);
                self.finish(now, EndReason::TransportError, true);
            }
            return;
        };
        let operator = l.party.name().to_string();
        self.leg = Some(l);
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.queue_status(now, QueueStatus::Connected);
        }
        self.bridge_leg(now, remote);
        self.queued = None;
        // The wait until the first answer (a transferred caller's later waits are in
        // the legs).
        if self.wait.is_none() {
            self.wait = self.queued_at.map(|q| now.saturating_duration_since(q));
        }
        info!(call_id = %self.call_id, %operator, "caller connected to operator");
        self.in_call = Some(Conversation::Queued);
        self.outputs.push_back(Output::Connected {
            operator: operator.clone(),
            queue: self.was_queued.clone(),
            note: self.transfer_note.take(),
            record: self.record_step,
        });
        self.recording_note(now, format!("talking with {operator}"));
        self.operator = Some(operator);
        self.settle(now);
    }

    // ---- the legs the call placed -----------------------------------------------------

    /// The driver placed the leg (the INVITE is out); `media` is where its RTP comes in.
    pub fn leg_placed(&mut self, now: Instant, leg: LegId, media: LocalMedia) {
        if self.monitor_leg_placed(now, leg, media)
            || self.consult_leg_event(now, leg, ConsultEvent::Placed(media))
        {
            return;
        }
        if let Some(l) = self
            .leg
            .as_mut()
            .filter(|l| l.id == leg && l.state == LegState::Placing)
        {
            l.state = LegState::Ringing;
            l.media = Some(media);
            if matches!(l.party, Party::Number(_)) {
                l.deadline = Some(now + EXTERNAL_RING_LIMIT);
            }
        }
    }

    /// The driver could not place the leg (no registration, no port, no trunk).
    pub fn leg_not_placed(&mut self, now: Instant, leg: LegId) {
        self.leg_failed(now, leg, 503);
    }

    /// The leg answered with this SDP.
    pub fn leg_answered(&mut self, now: Instant, leg: LegId, answer: Option<&str>) {
        if self.monitor_leg_answered(now, leg, answer)
            || self.consult_leg_event(now, leg, ConsultEvent::Answered(answer))
        {
            self.settle(now);
            return;
        }
        let ours = self
            .leg
            .as_ref()
            .is_some_and(|l| l.id == leg && l.state == LegState::Ringing);
        if !ours {
            // A late answer from a ring that is over: that phone is not wanted now.
            self.sip(SipOut::Hangup { leg });
            return;
        }
        let remote = answer
            .and_then(|s| sdp::negotiate(s).ok())
            .map(|n| rtp_destination(&n));
        let Some(l) = self.leg.as_mut() else { return };
        match l.party.clone() {
            Party::Operator(operator) => {
                l.state = LegState::Accepting { remote };
                self.queue(QueueOut::RingAnswered { leg, operator });
            }
            Party::Number(number) => {
                self.transfer = None;
                self.music(now, false);
                match remote {
                    Some(remote) => {
                        info!(call_id = %self.call_id, %number, "caller connected to the outside number");
                        self.transfer_result(now, true);
                        self.bridge_leg(now, remote);
                    }
                    None => {
                        warn!(call_id = %self.call_id, %number, "transfer: answer without usable SDP");
                        self.sip(SipOut::Hangup { leg });
                        if let Some(l) = self.leg.take() {
                            self.close_leg(l, LegOutcome::Unreachable, now, None);
                        }
                        self.transfer_result(now, false);
                    }
                }
            }
        }
        self.settle(now);
    }

    /// The leg's INVITE failed with `status`.
    pub fn leg_failed(&mut self, now: Instant, leg: LegId, status: u16) {
        if self.monitor_leg_gone(now, leg, Some(status))
            || self.consult_leg_event(now, leg, ConsultEvent::Failed(status))
        {
            self.settle(now);
            return;
        }
        let Some(l) = self
            .leg
            .take_if(|l| l.id == leg && l.state != LegState::Talking)
        else {
            return;
        };
        let failure = ring_failure(status);
        match l.party.clone() {
            Party::Number(number) => {
                info!(call_id = %self.call_id, %number, status, "transfer: the number did not answer");
                self.close_leg(l, leg_outcome(failure), now, None);
                self.transfer_failed(now);
            }
            Party::Operator(operator) => {
                info!(call_id = %self.call_id, %operator, status, "operator phone did not answer");
                self.close_leg(l, leg_outcome(failure), now, None);
                self.queue(QueueOut::RingFailed { operator, failure });
            }
        }
        self.settle(now);
    }

    /// The leg's dialog ended (BYE from the phone or the number).
    pub fn leg_ended(&mut self, now: Instant, leg: LegId) {
        if self.monitor_leg_gone(now, leg, None)
            || self.consult_leg_event(now, leg, ConsultEvent::Ended)
        {
            self.settle(now);
            return;
        }
        let Some(l) = self.leg.take_if(|l| l.id == leg) else {
            return;
        };
        let talking = l.state == LegState::Talking;
        if let Party::Operator(op) = &l.party {
            self.outputs.push_back(Output::Disconnected {
                operator: op.clone(),
            });
        }
        let outcome = if talking {
            LegOutcome::Answered
        } else {
            LegOutcome::Cancelled
        };
        self.close_leg(l, outcome, now, None);
        if talking {
            self.finish(now, EndReason::OperatorHangup, true);
        } else {
            self.settle(now);
        }
    }

    /// A re-INVITE on the leg: a new address, or hold (`sendonly`/`inactive`).
    pub fn leg_reinvite(&mut self, now: Instant, leg: LegId, offer: Option<&str>) {
        if self.monitor_leg_reinvite(leg, offer) {
            return;
        }
        if let Some(c) = self.consult.as_mut().filter(|c| c.leg.id == leg) {
            match negotiate(offer) {
                Ok(n) => {
                    c.leg.sdp_version += 1;
                    let media = c.leg.media.unwrap_or(self.media);
                    let sdp = sdp::answer(
                        &n,
                        media.ip,
                        media.port,
                        self.sdp_session,
                        c.leg.sdp_version,
                    );
                    if let Some(cb) = c.bridge.as_mut() {
                        cb.set_remote(Side::B, rtp_destination(&n));
                    }
                    self.sip(SipOut::Answer { leg, sdp });
                }
                Err(status) => self.sip(SipOut::Reject { leg, status }),
            }
            return;
        }
        let Some(l) = self.leg.as_mut().filter(|l| l.id == leg) else {
            return;
        };
        match negotiate(offer) {
            Ok(n) => {
                l.sdp_version += 1;
                let media = l.media.unwrap_or(self.media);
                let sdp = sdp::answer(&n, media.ip, media.port, self.sdp_session, l.sdp_version);
                self.sip(SipOut::Answer { leg, sdp });
                if let Some(bridge) = &mut self.bridge {
                    let remote = rtp_destination(&n);
                    bridge.set_remote(Side::B, remote);
                    match self.consult.as_mut() {
                        // Consulting, the caller stays held whatever the phone does; its
                        // new address is the consultation's too.
                        Some(c) => {
                            if let Some(cb) = c.bridge.as_mut() {
                                cb.set_remote(Side::A, remote);
                            }
                        }
                        // sendonly/inactive from the operator's phone: hold (T6).
                        None => self.set_hold(now, remote.is_none()),
                    }
                }
            }
            Err(status) => self.sip(SipOut::Reject { leg, status }),
        }
        self.settle(now);
    }

    /// A REFER on the leg: a blind transfer (RFC 3515), or an attended one whose
    /// `Replaces` (RFC 3891) names the operator's consultation call. Only the connected
    /// operator's phone may transfer.
    pub fn leg_refer(&mut self, _now: Instant, leg: LegId, target: hotline_sip::ReferTarget) {
        let from = self
            .connected()
            .map(|(op, _)| op.to_string())
            .filter(|_| self.leg.as_ref().is_some_and(|l| l.id == leg));
        let refusal = match (&from, &self.checking) {
            (None, _) => Some((403, "only the connected operator's phone may transfer")),
            (Some(_), Some(_)) => Some((491, "another transfer is being checked")),
            (Some(_), None) if self.consult.is_some() => {
                Some((491, "a consultation from the console is under way"))
            }
            _ => None,
        };
        if let Some((status, why)) = refusal {
            info!(call_id = %self.call_id, status, "transfer refused: {why}");
            self.sip(SipOut::ReferReply { leg, status });
            return;
        }
        let Some(from) = from else { return };
        if let Some(replaces) = &target.replaces {
            // `call-id;to-tag=…;from-tag=…`: the Call-ID names the consultation call.
            let dialog = replaces.split(';').next().unwrap_or("").trim().to_string();
            if dialog.is_empty() {
                info!(call_id = %self.call_id, "transfer refused: Replaces names no call");
                self.sip(SipOut::ReferReply { leg, status: 400 });
                return;
            }
            self.checking = Some(Checking::Replace { leg });
            self.outputs.push_back(Output::Replace { dialog, from });
            return;
        }
        self.checking = Some(Checking::Refer { leg });
        self.outputs
            .push_back(Output::Check(Check::Refer { target, from }));
    }

    // ---- the console -------------------------------------------------------------------

    /// Hold or resume from the operator's console.
    pub fn console_hold(&mut self, now: Instant, held: bool) -> Result<(), String> {
        if self.connected().is_none() {
            return Err("The call is not connected to you.".into());
        }
        if self.consult.is_some() {
            return Err("Complete or cancel the consultation first.".into());
        }
        self.set_hold(now, held);
        self.settle(now);
        Ok(())
    }

    /// A transfer from the operator's console, with a note for whoever takes the caller.
    /// The answer comes as [`Output::ConsoleReply`].
    pub fn console_transfer(&mut self, _now: Instant, to: TransferTarget, note: String) {
        let Some(from) = self.connected().map(|(op, _)| op.to_string()) else {
            self.outputs.push_back(Output::ConsoleReply(Err(
                "The call is not connected to you.".into(),
            )));
            return;
        };
        if self.checking.is_some() || self.consult.is_some() {
            self.outputs.push_back(Output::ConsoleReply(Err(
                "Another transfer is under way.".into()
            )));
            return;
        }
        let note = (!note.is_empty()).then(|| (from.clone(), note));
        self.checking = Some(Checking::Console { note });
        self.outputs
            .push_back(Output::Check(Check::Console { to, from }));
    }

    /// A consultation from the console: the caller holds (music) while the operator's
    /// phone is joined with `to`'s (an operator, rung outside the queues, or a number);
    /// [`CallSession::console_end_consult`] then completes or cancels it. The answer
    /// comes as [`Output::ConsoleReply`], the progress as [`Output::Consulting`].
    pub fn console_consult(&mut self, _now: Instant, to: TransferTarget, note: String) {
        let refusal = match self.connected() {
            None => Some("The call is not connected to you."),
            _ if self.checking.is_some() || self.consult.is_some() => {
                Some("Another transfer is under way.")
            }
            _ => None,
        };
        if let Some(why) = refusal {
            self.outputs
                .push_back(Output::ConsoleReply(Err(why.to_string())));
            return;
        }
        let Some(from) = self.connected().map(|(op, _)| op.to_string()) else {
            return;
        };
        let note = (!note.is_empty()).then(|| (from.clone(), note));
        self.checking = Some(Checking::Consult { note });
        self.outputs
            .push_back(Output::Check(Check::Consult { to, from }));
    }

    /// Completes the console consultation (the caller goes to the consulted party, and
    /// the operator's leg ends) or cancels it (the operator has the caller back).
    pub fn console_end_consult(&mut self, now: Instant, complete: bool) -> Result<(), String> {
        if self.leg.is_none() {
            return Err("The call is not connected to you.".into());
        }
        let Some(consult) = self.consult.take() else {
            return Err("There is no consultation to end.".into());
        };
        if !complete {
            info!(call_id = %self.call_id, with = %consult.leg.party.name(), "consultation cancelled");
            self.sip(SipOut::Hangup {
                leg: consult.leg.id,
            });
            self.drop_consult(now, consult.leg, "Back with the caller.".into());
            self.settle(now);
            return Ok(());
        }
        if consult.leg.state != LegState::Talking {
            let who = consult.leg.party.name().to_string();
            self.consult = Some(consult);
            return Err(format!("{who} has not answered yet."));
        }
        let remote = consult.bridge.as_ref().and_then(|b| b.remote(Side::B));
        let to = consult.leg.party.clone();
        let description = match &to {
            Party::Operator(op) => format!("operator {op} (consulted)"),
            Party::Number(n) => format!("number {n} (consulted)"),
        };
        self.hand_off(now, "consult transfer", description);
        self.end_conversation();
        self.music(now, false);
        let mut leg = consult.leg;
        leg.deadline = None;
        self.leg = Some(leg);
        self.bridge = Some(self.caller_bridge(remote));
        self.rtcp = RtcpRelay::default();
        self.bridged_at = Some(now);
        match to {
            Party::Operator(operator) => {
                self.in_call = Some(Conversation::Outbound(operator.clone()));
                self.outputs.push_back(Output::Connected {
                    operator: operator.clone(),
                    queue: self.was_queued.clone(),
                    note: consult.note,
                    record: self.record_step,
                });
                self.recording_note(now, format!("talking with {operator}"));
                self.operator = Some(operator);
            }
            Party::Number(number) => self.recording_note(now, format!("talking with {number}")),
        }
        self.settle(now);
        Ok(())
    }

    /// The consultation is over without a transfer: the consulted operator is free again,
    /// and the operator has the caller back.
    fn drop_consult(&mut self, now: Instant, leg: Leg, message: String) {
        self.free_consulted(&leg);
        if let Some(operator) = self.connected().map(|(op, _)| op.to_string()) {
            self.outputs.push_back(Output::Consulting {
                operator,
                state: ConsultState::Ended { message },
            });
        }
        self.set_hold(now, false);
    }

    /// The consulted operator is no longer busy under this call: wrap-up if they talked.
    fn free_consulted(&mut self, leg: &Leg) {
        if let Party::Operator(operator) = &leg.party {
            let operator = operator.clone();
            self.queue(if leg.state == LegState::Talking {
                QueueOut::OutboundEnded { operator }
            } else {
                QueueOut::OutboundCancelled { operator }
            });
        }
    }

    /// Starts the checked consultation: the caller holds, and the other leg is placed.
    fn start_consult(&mut self, now: Instant, to: Destination, note: Option<(String, String)>) {
        let (party, place) = match to {
            Destination::Operator { operator, .. } => {
                let id = self.new_leg_id();
                let place = Output::PlaceOperator {
                    leg: id,
                    operator: operator.clone(),
                    auto_answer: false,
                };
                (Party::Operator(operator), (id, place))
            }
            Destination::External(number) => {
                let id = self.new_leg_id();
                let place = Output::PlaceExternal {
                    leg: id,
                    number: number.clone(),
                };
                (Party::Number(number), (id, place))
            }
            Destination::Queue(_) | Destination::Flow { .. } => {
                self.outputs.push_back(Output::ConsoleReply(Err(
                    "Only an operator or a number can be consulted.".into(),
                )));
                return;
            }
        };
        let (id, place) = place;
        let with = party.name().to_string();
        info!(call_id = %self.call_id, %with, "consultation");
        self.outputs.push_back(Output::ConsoleReply(Ok(())));
        self.set_hold(now, true);
        let mut leg = Leg::placing(id, party, self.unix_ms(now));
        leg.deadline = Some(now + EXTERNAL_RING_LIMIT);
        self.consult = Some(Consult {
            leg,
            bridge: None,
            note,
        });
        if let Some(operator) = self.connected().map(|(op, _)| op.to_string()) {
            self.outputs.push_back(Output::Consulting {
                operator,
                state: ConsultState::Ringing { with },
            });
        }
        self.outputs.push_back(place);
    }

    /// The consulted leg's events; `false` when `leg` is not the consulted one.
    fn consult_leg_event(&mut self, now: Instant, leg: LegId, event: ConsultEvent) -> bool {
        if self.consult.as_ref().is_none_or(|c| c.leg.id != leg) {
            return false;
        }
        let Some(mut c) = self.consult.take() else {
            return false;
        };
        let with = c.leg.party.name().to_string();
        match event {
            ConsultEvent::Placed(media) => {
                if c.leg.state == LegState::Placing {
                    c.leg.state = LegState::Ringing;
                    c.leg.media = Some(media);
                }
            }
            ConsultEvent::Answered(answer) if c.leg.state == LegState::Ringing => {
                let remote = answer
                    .and_then(|s| sdp::negotiate(s).ok())
                    .map(|n| rtp_destination(&n));
                let Some(remote) = remote else {
                    self.sip(SipOut::Hangup { leg });
                    self.drop_consult(now, c.leg, format!("{with} answered without usable audio."));
                    return true;
                };
                info!(call_id = %self.call_id, %with, "consulted party answered");
                let operator_remote = self.bridge.as_ref().and_then(|b| b.remote(Side::B));
                c.leg.state = LegState::Talking;
                c.leg.answered_at_ms = Some(self.unix_ms(now));
                c.leg.deadline = None;
                c.bridge = Some(Bridge::new(operator_remote, remote));
                if let Some(operator) = self.connected().map(|(op, _)| op.to_string()) {
                    self.outputs.push_back(Output::Consulting {
                        operator,
                        state: ConsultState::Talking { with },
                    });
                }
            }
            // A late or repeated answer: that leg is not wanted twice.
            ConsultEvent::Answered(_) => {}
            ConsultEvent::Failed(status) => {
                info!(call_id = %self.call_id, %with, status, "the consulted party did not answer");
                let message = match status {
                    503 => format!("{with} cannot take a call now."),
                    408 => format!("{with} did not answer."),
                    _ => format!("{with} did not answer ({status})."),
                };
                self.drop_consult(now, c.leg, message);
                return true;
            }
            ConsultEvent::Ended => {
                info!(call_id = %self.call_id, %with, "the consulted party hung up");
                self.drop_consult(now, c.leg, format!("{with} hung up."));
                return true;
            }
        }
        self.consult = Some(c);
        true
    }

    // ---- what the driver found out ---------------------------------------------------

    /// The answer to [`Output::Check`].
    pub fn target_checked(&mut self, now: Instant, result: Result<Destination, Refusal>) {
        let Some(checking) = self.checking.take() else {
            return;
        };
        match checking {
            Checking::Flow => match result {
                Ok(dest) => {
                    info!(call_id = %self.call_id, "transferring to {}", dest.log_form());
                    self.music(now, true);
                    self.start_transfer(now, dest);
                }
                Err((_, why)) => {
                    info!(call_id = %self.call_id, "transfer failed: {why}; the flow's on_fail");
                    self.transfer_result(now, false);
                }
            },
            // Not the answer it waits for: that comes with `replaced`.
            Checking::Replace { leg } => self.checking = Some(Checking::Replace { leg }),
            Checking::Refer { leg } => match result {
                Ok(dest) if self.connected().is_some() => {
                    // Go ahead: the operator hears the transfer is under way, and leaves.
                    self.sip(SipOut::ReferReply { leg, status: 202 });
                    self.sip(SipOut::ReferNotify {
                        leg,
                        status: 100,
                        last: false,
                    });
                    self.sip(SipOut::ReferNotify {
                        leg,
                        status: 200,
                        last: true,
                    });
                    self.move_caller(now, dest, None);
                }
                Ok(_) => {}
                Err((status, why)) => {
                    info!(call_id = %self.call_id, status, "transfer refused: {why}");
                    self.sip(SipOut::ReferReply { leg, status });
                }
            },
            Checking::Consult { note } => match result {
                Ok(dest) if self.connected().is_some() => self.start_consult(now, dest, note),
                Ok(_) => self.outputs.push_back(Output::ConsoleReply(Err(
                    "The call is not connected to you.".into(),
                ))),
                Err((_, why)) => self.outputs.push_back(Output::ConsoleReply(Err(why))),
            },
            Checking::Console { note } => match result {
                Ok(dest) if self.connected().is_some() => {
                    self.outputs.push_back(Output::ConsoleReply(Ok(())));
                    self.move_caller(now, dest, note);
                }
                Ok(_) => self.outputs.push_back(Output::ConsoleReply(Err(
                    "The call is not connected to you.".into(),
                ))),
                Err((_, why)) => self.outputs.push_back(Output::ConsoleReply(Err(why))),
            },
        }
        self.settle(now);
    }

    /// The consultation call hands its other party over to the call an attended
    /// transfer joins them with: the leg leaves this session (no BYE, the operator stays
    /// busy), and this call ends, hanging up its caller (the transferring operator's
    /// consultation dialog). `None` when nobody is connected here.
    pub fn hand_over(&mut self, now: Instant) -> Option<HandedLeg> {
        let talking = self
            .leg
            .as_ref()
            .is_some_and(|l| l.state == LegState::Talking && matches!(l.party, Party::Operator(_)));
        if !talking || self.ended().is_some() {
            return None;
        }
        self.end_monitor(now, "The call was transferred.");
        let remote = self.bridge.as_ref().and_then(|b| b.remote(Side::B));
        let leg = self.leg.take()?;
        let operator = leg.party.name().to_string();
        let handed = HandedLeg {
            leg: leg.id,
            operator: operator.clone(),
            remote,
            media: leg.media.unwrap_or(self.media),
            sdp_version: leg.sdp_version,
            rang_at_ms: leg.rang_at_ms,
            answered_at_ms: leg.answered_at_ms,
            // Its leg was offered exactly this call's codec.
            format: self.format(),
        };
        info!(call_id = %self.call_id, %operator, "handed over to the transferred caller");
        self.outputs.push_back(Output::Disconnected {
            operator: operator.clone(),
        });
        self.close_leg(
            leg,
            LegOutcome::Answered,
            now,
            Some("the transferred caller".into()),
        );
        self.bridge = None;
        // The conversation goes on in the other call: the queue engine moves it there.
        self.in_call = None;
        self.finish(now, EndReason::Replaced, true);
        Some(handed)
    }

    /// The answer to [`Output::Replace`]: the consultation call's other party, whom the
    /// caller is now bridged with (the transferring operator's leg ends), or why not.
    /// `Some` is the new leg, to which the driver attaches the handed-over sockets.
    pub fn replaced(&mut self, now: Instant, result: Result<HandedLeg, Refusal>) -> Option<LegId> {
        let Some(Checking::Replace { leg }) = self.checking.take() else {
            return None;
        };
        let handed = match result {
            Ok(h) => h,
            Err((status, why)) => {
                info!(call_id = %self.call_id, status, "attended transfer refused: {why}");
                self.sip(SipOut::ReferReply { leg, status });
                return None;
            }
        };
        self.sip(SipOut::ReferReply { leg, status: 202 });
        self.sip(SipOut::ReferNotify {
            leg,
            status: 100,
            last: false,
        });
        self.sip(SipOut::ReferNotify {
            leg,
            status: 200,
            last: true,
        });
        self.set_hold(now, false);
        let description = format!("operator {} (attended)", handed.operator);
        self.hand_off(now, "attended transfer", description);
        self.end_conversation();
        self.queue(QueueOut::Rekey);
        let id = self.adopt(now, handed);
        self.in_call = Some(Conversation::Queued);
        self.settle(now);
        Some(id)
    }

    /// Where the caller's media goes: as the bridge learnt it, else as the IVR knows it.
    /// A bridge from the caller to `remote`. Where the caller's media was already
    /// latched (heard by the IVR or an earlier bridge), the new bridge starts latched
    /// there: a fresh latch would let whoever sends first take the caller's side.
    fn caller_bridge(&self, remote: Option<SocketAddr>) -> Bridge {
        let mut bridge = Bridge::new(self.caller_address(), remote);
        let latched = match &self.bridge {
            Some(b) => b.latched(Side::A),
            None => self.ivr.as_ref().and_then(IvrCall::rtp_latched),
        };
        if let Some(addr) = latched {
            bridge.set_latched(Side::A, addr);
        }
        bridge
    }

    fn caller_address(&self) -> Option<SocketAddr> {
        self.bridge
            .as_ref()
            .and_then(|b| b.remote(Side::A))
            .or_else(|| self.ivr.as_ref().and_then(IvrCall::rtp_destination))
    }

    /// Bridges the caller with an answered leg from elsewhere (a consultation call's
    /// party, the operator of a placed call); the console hears they are connected.
    fn adopt(&mut self, now: Instant, handed: HandedLeg) -> LegId {
        let id = self.new_leg_id();
        let operator = handed.operator;
        self.leg = Some(Leg {
            id,
            party: Party::Operator(operator.clone()),
            state: LegState::Talking,
            media: Some(handed.media),
            sdp_version: handed.sdp_version,
            rang_at_ms: handed.rang_at_ms,
            answered_at_ms: handed.answered_at_ms,
            hold: Duration::ZERO,
            deadline: None,
            translation: Translation::between(self.format(), handed.format)
                .zip(Translation::between(handed.format, self.format())),
        });
        self.bridge = Some(self.caller_bridge(handed.remote));
        self.rtcp = RtcpRelay::default();
        self.bridged_at = Some(now);
        self.outputs.push_back(Output::Connected {
            operator: operator.clone(),
            queue: self.was_queued.clone(),
            note: None,
            record: self.record_step,
        });
        self.recording_note(now, format!("talking with {operator}"));
        self.operator = Some(operator);
        id
    }

    /// The callback request was stored with a promised time: in `in_ms`, and whether that
    /// is still today (what the flow's `promise_computed` prompts choose by).
    pub fn callback_promise(&mut self, now: Instant, in_ms: u64, same_day: bool) {
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.callback_promise(now, in_ms, same_day);
        }
        self.settle(now);
    }

    /// What the call record and the missed-call list get; after [`CallSession::ended`].
    pub fn into_outcome(mut self) -> FinishedCall {
        let reason = self.ended().unwrap_or(EndReason::TransportError);
        let (digits, path, variables) = match &self.ivr {
            Some(ivr) => (
                self.earlier_digits.clone() + ivr.digits(),
                [std::mem::take(&mut self.earlier_path), ivr.path().to_vec()].concat(),
                serde_json::to_string(ivr.variables()).unwrap_or_else(|_| "{}".into()),
            ),
            None => (String::new(), Vec::new(), "{}".into()),
        };
        let missed = self.missed();
        let service = Service {
            queue: self.was_queued.clone(),
            wait_ms: self.wait.filter(|_| self.was_queued.is_some()).map(millis),
            hold_ms: self.legs.iter().map(|l| l.hold_ms).sum(),
            legs: std::mem::take(&mut self.legs),
        };
        FinishedCall {
            reason,
            digits,
            path,
            variables,
            operator: self.operator,
            missed,
            service,
        }
    }

    // ---- inside --------------------------------------------------------------------------

    fn sip(&mut self, out: SipOut) {
        self.outputs.push_back(Output::Sip(out));
    }

    fn queue(&mut self, out: QueueOut) {
        self.outputs.push_back(Output::Queue(out));
    }

    fn new_leg_id(&mut self) -> LegId {
        let id = self.next_leg;
        self.next_leg += 1;
        id
    }

    fn unix_ms(&self, now: Instant) -> i64 {
        self.unix_ms + millis(now.saturating_duration_since(self.started))
    }

    fn flow_clock(&self, now: Instant) -> DateTime<Utc> {
        let since = now.saturating_duration_since(self.started);
        self.flow_clock + chrono::Duration::from_std(since).unwrap_or_default()
    }

    /// The caller's negotiated audio.
    fn format(&self) -> Format {
        (
            media_codec(self.negotiated.codec),
            self.negotiated.payload_type,
            self.negotiated.telephone_event,
        )
    }

    fn rtp_config(&self) -> RtpConfig {
        RtpConfig {
            codec: media_codec(self.negotiated.codec),
            payload_type: self.negotiated.payload_type,
            telephone_event_pt: self.negotiated.telephone_event,
            remote: rtp_destination(&self.negotiated),
            symmetric: true,
            ssrc: self.ssrc,
            initial_seq: self.initial_seq,
            initial_timestamp: self.initial_timestamp,
        }
    }

    /// Answers the caller and starts the flow.
    fn answer(&mut self, now: Instant) {
        self.phase = Phase::Answered;
        let sdp = sdp::answer(
            &self.negotiated,
            self.media.ip,
            self.media.port,
            self.sdp_session,
            self.sdp_version,
        );
        self.sip(SipOut::Answer { leg: CALLER, sdp });
        self.outputs.push_back(Output::Answered {
            at_ms: self.unix_ms(now),
        });
        if let Some((flow, called)) = self.pending_flow.take() {
            self.start_flow(now, flow, called);
        }
        self.settle(now);
    }

    /// The caller (re)starts in `flow`, as if they had dialled `called`.
    fn start_flow(&mut self, now: Instant, flow: Arc<Flow>, called: String) {
        if let Some(old) = &self.ivr {
            self.earlier_digits.push_str(old.digits());
            self.earlier_path.extend(old.path().iter().cloned());
        }
        let context = CallContext {
            caller: self.caller.clone(),
            called,
            answered_at: self.flow_clock(now),
        };
        self.current_flow = Some(flow.clone());
        let mut ivr = IvrCall::new(
            flow,
            context,
            self.prompts.clone(),
            self.rtp_config(),
            self.rtp_timeout,
            now,
        );
        ivr.start(now);
        self.ivr = Some(ivr);
    }

    /// After every input: answers what the flow asks, and ends the call when it says so.
    fn settle(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Answered) || self.bridge.is_some() {
            return;
        }
        let Some(ivr) = self.ivr.as_mut() else { return };
        for name in ivr.take_missing_prompts() {
            warn!(call_id = %self.call_id, prompt = %name, "prompt not loaded; skipped");
        }
        let mut requests = Vec::new();
        while let Some(r) = ivr.poll_request() {
            requests.push(r);
        }
        let hangup = ivr.hangup();
        for r in requests {
            self.flow_request(now, r);
        }
        if let Some(h) = hangup {
            let reason = match h {
                Hangup::FlowEnded => EndReason::FlowHangup,
                Hangup::RtpTimeout => EndReason::RtpTimeout,
            };
            self.finish(now, reason, true);
        }
    }

    fn flow_request(&mut self, now: Instant, request: Request) {
        match request {
            Request::EnterQueue {
                queue,
                priority,
                skill,
                record,
            } => {
                self.record_step = record;
                if let Some(since) = self.callback_since.take() {
                    info!(call_id = %self.call_id, %queue, "the customer confirmed; callback queued");
                    self.queue(QueueOut::EnqueueCallback {
                        queue: queue.clone(),
                        since,
                    });
                    self.first_queued.get_or_insert((since, priority));
                    self.skill = None;
                    self.now_queued(now, queue);
                    return;
                }
                let first = self.direct.take();
                info!(call_id = %self.call_id, %queue, priority,
                      skill = skill.as_deref().unwrap_or("-"),
                      direct = first.as_deref().unwrap_or("-"), "caller queued");
                self.skill = skill.clone();
                self.queue(QueueOut::Enqueue {
                    queue: queue.clone(),
                    priority,
                    skill,
                    first,
                });
                self.first_queued.get_or_insert((now, priority));
                self.now_queued(now, queue);
            }
            Request::LeaveQueue => {
                if self.queued.take().is_some() {
                    self.queue(QueueOut::Leave);
                    if let Some(leg) = self.leg.take() {
                        self.sip(SipOut::Hangup { leg: leg.id });
                        self.close_leg(leg, LegOutcome::Cancelled, now, None);
                    }
                }
            }
            Request::Callback {
                number,
                queue,
                promise,
            } => {
                self.callback_left = true;
                self.outputs.push_back(Output::Callback {
                    number,
                    queue,
                    promise,
                });
            }
            Request::Transfer(target) => {
                if self.checking.is_some() {
                    self.transfer_result(now, false);
                    return;
                }
                self.checking = Some(Checking::Flow);
                self.outputs.push_back(Output::Check(Check::Flow(target)));
            }
        }
    }

    /// The connected operator's conversation is over for the queue engine: wrap-up.
    fn end_conversation(&mut self) {
        match self.in_call.take() {
            Some(Conversation::Queued) => self.queue(QueueOut::CallEnded),
            Some(Conversation::Outbound(operator)) => {
                self.queue(QueueOut::OutboundEnded { operator })
            }
            None => {}
        }
    }

    fn now_queued(&mut self, now: Instant, queue: String) {
        self.queued_at = Some(now);
        self.was_queued = Some(queue.clone());
        self.queued = Some(queue);
    }

    /// Bridges the caller with the leg, whose media comes from `remote`.
    fn bridge_leg(&mut self, now: Instant, remote: Option<SocketAddr>) {
        let bridge = self.caller_bridge(remote);
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.set_bridged(now);
        }
        self.bridge = Some(bridge);
        self.rtcp = RtcpRelay::default();
        self.bridged_at = Some(now);
        let at = self.unix_ms(now);
        if let Some(l) = self.leg.as_mut() {
            l.state = LegState::Talking;
            l.answered_at_ms = Some(at);
            l.deadline = None;
        }
    }

    fn bridge_dead_at(&self) -> Option<Instant> {
        let bridge = self.bridge.as_ref()?;
        let heard = bridge.last_received(Side::A).max(self.bridged_at)?;
        (!self.rtp_timeout.is_zero()).then(|| heard + self.rtp_timeout)
    }

    /// Hold music on or off (a transfer waiting, the operator's hold).
    fn music(&mut self, now: Instant, on: bool) {
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.hold_music(now, on, HOLD_MUSIC);
        }
    }

    /// The operator holds the call or takes it back: the caller hears the queue's music
    /// meanwhile, and nothing passes the bridge.
    fn set_hold(&mut self, now: Instant, held: bool) {
        if held == self.held_since.is_some() || self.bridge.is_none() {
            return;
        }
        if held {
            self.end_monitor(now, "The operator put the caller on hold.");
        }
        let Some(l) = self.leg.as_mut() else { return };
        let operator = l.party.name().to_string();
        let is_operator = matches!(l.party, Party::Operator(_));
        info!(call_id = %self.call_id, %operator, held, "operator hold");
        match self.held_since.take() {
            Some(since) => l.hold += now.saturating_duration_since(since),
            None => self.held_since = Some(now),
        }
        self.music(now, held);
        let label = if held { "on hold" } else { "off hold" };
        self.recording_note(now, format!("{label} ({operator})"));
        if is_operator {
            self.outputs.push_back(Output::Held { operator, held });
        }
    }

    /// Tells the flow how its transfer went. With no flow to go on (a phone's or the
    /// console's transfer), a caller whose transfer failed goes back to the queue they
    /// came from, once, keeping their place in time; else the call ends.
    fn transfer_result(&mut self, now: Instant, ok: bool) {
        let flow_over = self.ivr.as_ref().is_none_or(IvrCall::flow_finished);
        if flow_over {
            if ok {
                self.return_queue = None;
            }
            if let Some(queue) = self.return_queue.take().filter(|_| !ok) {
                info!(call_id = %self.call_id, %queue, "the transfer failed: the caller goes back to their queue");
                self.music(now, true);
                self.start_transfer(now, Destination::Queue(queue));
                return;
            }
            if !ok {
                info!(call_id = %self.call_id, "the transfer failed: nobody can take the caller");
                self.finish(now, EndReason::FlowHangup, true);
            }
            return;
        }
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.transfer_result(now, ok);
        }
    }

    fn transfer_failed(&mut self, now: Instant) {
        self.transfer = None;
        self.music(now, false);
        self.transfer_result(now, false);
    }

    /// Moves a bridged caller on (a blind transfer, from the phone or the console): the
    /// operator's leg ends (filed with where the caller went), the operator goes to
    /// wrap-up, and the caller hears music until the target answers, or starts over in
    /// a flow.
    fn move_caller(&mut self, now: Instant, to: Destination, note: Option<(String, String)>) {
        self.set_hold(now, false);
        self.hand_off(now, "blind transfer", to.describe());
        self.return_queue = self.was_queued.clone();
        self.bridge = None;
        if let Some(ivr) = self.ivr.as_mut() {
            ivr.set_unbridged(now);
        }
        self.bridged_at = None;
        self.transfer_note = note;
        self.end_conversation();
        if let Destination::Flow {
            flow,
            prompts,
            number,
        } = to
        {
            self.prompts = prompts;
            self.start_flow(now, flow, number);
            return;
        }
        self.music(now, true);
        self.start_transfer(now, to);
    }

    /// Starts a checked transfer: to a queue (the caller joins it, keeping their first
    /// arrival and class), to an operator (offered to them first, in their first queue),
    /// or to an outside number (the driver dials it).
    fn start_transfer(&mut self, now: Instant, to: Destination) {
        match to {
            Destination::Queue(queue) => {
                let (since, priority) = *self.first_queued.get_or_insert((now, 0));
                self.queue(QueueOut::EnqueueTransferred {
                    queue: queue.clone(),
                    priority,
                    since,
                });
                self.now_queued(now, queue);
                self.transfer = Some(PendingTransfer::Queue);
            }
            Destination::Operator { operator, queue } => {
                self.queue(QueueOut::Enqueue {
                    queue: queue.clone(),
                    priority: 0,
                    skill: None,
                    first: Some(operator),
                });
                self.now_queued(now, queue);
                self.transfer = Some(PendingTransfer::Queue);
            }
            Destination::External(number) => {
                let id = self.new_leg_id();
                self.leg = Some(Leg::placing(
                    id,
                    Party::Number(number.clone()),
                    self.unix_ms(now),
                ));
                self.transfer = Some(PendingTransfer::External);
                self.outputs
                    .push_back(Output::PlaceExternal { leg: id, number });
            }
            Destination::Flow {
                flow,
                prompts,
                number,
            } => {
                self.music(now, false);
                self.prompts = prompts;
                self.start_flow(now, flow, number);
            }
        }
    }

    /// The connected leg ends because its caller moves on (`how`, to `to`): BYE, the
    /// console hears it, and the leg is filed with where the caller went.
    fn hand_off(&mut self, now: Instant, how: &str, to: String) {
        self.end_monitor(now, "The caller was transferred.");
        let Some(old) = self.leg.take() else { return };
        info!(call_id = %self.call_id, operator = %old.party.name(), %to, "{how}");
        self.sip(SipOut::Hangup { leg: old.id });
        if let Party::Operator(op) = &old.party {
            self.outputs.push_back(Output::Disconnected {
                operator: op.clone(),
            });
        }
        self.close_leg(old, LegOutcome::Answered, now, Some(to));
    }

    /// Files the leg under the call record.
    fn close_leg(&mut self, leg: Leg, outcome: LegOutcome, now: Instant, to: Option<String>) {
        let mut hold = leg.hold;
        if outcome == LegOutcome::Answered
            && let Some(since) = self.held_since.take()
        {
            hold += now.saturating_duration_since(since);
        }
        let (operator, number) = match leg.party {
            Party::Operator(op) => (Some(op), None),
            Party::Number(n) => (None, Some(n)),
        };
        self.legs.push(CallLeg {
            operator,
            number,
            rang_at_ms: leg.rang_at_ms,
            answered_at_ms: leg.answered_at_ms,
            ended_at_ms: self.unix_ms(now),
            outcome,
            hold_ms: millis(hold),
            transferred_to: to,
        });
    }

    /// The call is over: whatever is still up goes, and the queue learns of it.
    fn finish(&mut self, now: Instant, reason: EndReason, hang_up_caller: bool) {
        if matches!(self.phase, Phase::Over(_)) {
            return;
        }
        let answered = matches!(self.phase, Phase::Answered);
        if self.recording.is_some() {
            self.recording_note(now, format!("call ended ({})", reason.as_str()));
            let _ = self.stop_recording(now, None);
        }
        self.phase = Phase::Over(reason);
        if hang_up_caller && answered {
            self.sip(SipOut::Hangup { leg: CALLER });
        }
        if self.wait.is_none() {
            self.wait = self.queued_at.map(|q| now.saturating_duration_since(q));
        }
        if let Some(c) = self.consult.take() {
            self.sip(SipOut::Hangup { leg: c.leg.id });
            self.free_consulted(&c.leg);
        }
        self.end_monitor(now, "The call ended.");
        if let Some(leg) = self.leg.take() {
            self.sip(SipOut::Hangup { leg: leg.id });
            let talking = leg.state == LegState::Talking;
            if let (Party::Operator(op), true) = (&leg.party, talking) {
                self.outputs.push_back(Output::Disconnected {
                    operator: op.clone(),
                });
            }
            let outcome = if talking {
                LegOutcome::Answered
            } else {
                LegOutcome::Cancelled
            };
            self.close_leg(leg, outcome, now, None);
        }
        if self.in_call.is_some() {
            self.end_conversation();
        } else if self.queued.is_some() {
            self.queue(QueueOut::Leave);
        }
        if let Some(checking) = self.checking.take() {
            match checking {
                Checking::Console { .. } | Checking::Consult { .. } => self
                    .outputs
                    .push_back(Output::ConsoleReply(Err("The call ended.".into()))),
                Checking::Refer { leg } | Checking::Replace { leg } => {
                    self.sip(SipOut::ReferReply { leg, status: 487 })
                }
                Checking::Flow => {}
            }
        }
    }

    /// Whether the call goes on the missed-call list, and why.
    fn missed(&self) -> Option<Missed> {
        if self.operator.is_some() || self.callback_left {
            return None;
        }
        if let Some(queue) = &self.queued {
            return Some(Missed {
                queue: Some(queue.clone()),
                reason: MissedReason::Abandoned,
                waited: self.wait.unwrap_or_default(),
            });
        }
        if let Some(queue) = &self.was_queued {
            // Left the queue without an operator (maximum wait).
            return Some(Missed {
                queue: Some(queue.clone()),
                reason: MissedReason::MaxWait,
                waited: Duration::ZERO,
            });
        }
        // The flow marks calls it wants kept as missed (e.g. outside hours).
        let outside_hours = self
            .ivr
            .as_ref()
            .and_then(|ivr| ivr.variables().get("missed"))
            .is_some_and(|v| v == "outside_hours");
        outside_hours.then_some(Missed {
            queue: None,
            reason: MissedReason::OutsideHours,
            waited: Duration::ZERO,
        })
    }
}

/// The flow of a customer-first callback (C3): the customer hears `prompt` and presses
/// `key` (three tries), then waits in `queue` with hold music for at most `max_wait`;
/// anything else ends the call.
pub fn confirmation_flow(prompt: &str, key: char, queue: &str, max_wait: Duration) -> Flow {
    use hotline_ivr::{Choice, Hangup as HangupStep, Loc, Menu, Queue, Ref, StepKind};
    let at = Loc::default();
    let r = |name: &str| Ref {
        name: name.to_string(),
        at,
    };
    let menu = Menu {
        prompts: vec![r(prompt)],
        timeout_ms: 10_000,
        retries: 2,
        invalid_prompts: vec![r(prompt)],
        timeout_prompts: None,
        choices: vec![Choice {
            digits: key.to_string(),
            at,
            target: r("wait"),
        }],
        on_fail: r("end"),
    };
    let wait = Queue {
        queue: r(queue),
        priority: 0,
        skill: None,
        music: vec![r(HOLD_MUSIC)],
        announce: Vec::new(),
        announce_every: None,
        announce_position: None,
        announce_wait: None,
        max_wait: Some(max_wait.as_secs()),
        on_timeout: Some(r("end")),
        on_unavailable: r("end"),
        keys: Vec::new(),
        offers: None,
        callback: None,
        record: None,
        record_prompt: Vec::new(),
    };
    Flow::builtin(
        "callback-confirmation",
        vec![
            ("confirm", StepKind::Menu(menu)),
            ("wait", StepKind::Queue(wait)),
            (
                "end",
                StepKind::Hangup(HangupStep {
                    prompts: Vec::new(),
                }),
            ),
        ],
    )
}

/// SDP offer → what we answer with, or the SIP status that refuses it.
pub fn negotiate(offer: Option<&str>) -> Result<Negotiated, u16> {
    // Late offer (INVITE without SDP) is not supported yet: 488 says so.
    let offer = offer.ok_or(488u16)?;
    sdp::negotiate(offer).map_err(|e| match e {
        SdpError::NoCommonCodec => 488,
        _ => 400,
    })
}

/// Where to send RTP: nowhere while the peer holds the call (c=0.0.0.0, sendonly, inactive).
pub fn rtp_destination(n: &Negotiated) -> Option<SocketAddr> {
    let held = n.remote_rtp.ip().is_unspecified()
        || n.remote_rtp.port() == 0
        || matches!(
            n.direction,
            sdp::Direction::SendOnly | sdp::Direction::Inactive
        );
    (!held).then_some(n.remote_rtp)
}

/// Media of a call refused before its offer was understood (never used for RTP).
/// The audio a leg negotiated, as [`HandedLeg::format`] wants it.
pub fn format_of(n: &Negotiated) -> Format {
    (media_codec(n.codec), n.payload_type, n.telephone_event)
}

fn placeholder_media() -> Negotiated {
    Negotiated {
        remote_rtp: SocketAddr::from(([0, 0, 0, 0], 0)),
        codec: sdp::Codec::Pcmu,
        payload_type: 0,
        telephone_event: None,
        direction: sdp::Direction::Inactive,
        m_lines: Vec::new(),
    }
}

fn media_codec(c: sdp::Codec) -> Codec {
    match c {
        sdp::Codec::Pcmu => Codec::Pcmu,
        sdp::Codec::Pcma => Codec::Pcma,
    }
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

fn leg_outcome(failure: RingFailure) -> LegOutcome {
    match failure {
        RingFailure::NoAnswer => LegOutcome::NoAnswer,
        RingFailure::Rejected => LegOutcome::Rejected,
        RingFailure::Busy => LegOutcome::Busy,
        RingFailure::Unreachable => LegOutcome::Unreachable,
    }
}
