//! The daemon's actors and what they are told: the SIP task, the queue task and the call
//! tasks each own their state and take inputs over a channel. Their inbox and handle types
//! live here, so the actors' modules depend on this one and not on each other.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotline_core::acd::{
    CallerId, LeftQueue, OperatorState, OperatorView, QueueFigures, RingFailure,
};
use hotline_core::call_session::{HandedLeg, LegId};
use hotline_ivr::{QueueDef, TransferTarget};
use hotline_sip::auth::Credential;
use hotline_sip::registrar::Binding;
use hotline_sip::{CallHandle, OutgoingCall, Peer};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

// ---- call tasks ------------------------------------------------------------------------

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
    /// From another call: an attended transfer takes this consultation call's other
    /// party over (`CallSession::hand_over`), with the leg's handle and sockets.
    HandOver {
        reply: tokio::sync::oneshot::Sender<Option<(HandedLeg, LegIo)>>,
    },
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
    /// Consult `to` first (the caller holds), then complete or cancel with `EndConsult`.
    Consult {
        to: TransferTarget,
        note: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    EndConsult {
        complete: bool,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A supervisor (their operator account) listens, whispers, barges, takes over or
    /// stops (PRODUCT S1).
    Monitor {
        supervisor: String,
        request: hotline_core::call_session::MonitorRequest,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Start (`on`) or stop recording the call (`on_demand`), by a console user.
    Record {
        on: bool,
        by: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// End the call, every party getting BYE (`hotline hangup`, see control.rs).
    Hangup {
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
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

/// A leg the session placed, as the driver keeps it: its SIP handle and sockets.
pub struct LegIo {
    pub id: LegId,
    pub handle: CallHandle,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

// ---- the SIP task ----------------------------------------------------------------------

/// What reaches the SIP task.
pub enum SipInput {
    /// A UDP datagram, or one whole message framed from a TCP stream.
    Message {
        from: Peer,
        data: Vec<u8>,
    },
    TcpOpened {
        peer: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    TcpClosed {
        peer: SocketAddr,
    },
    Command(SipCommand),
}

/// What a call task asks of the endpoint.
pub enum SipCommand {
    Ringing(CallHandle),
    Answer(CallHandle, String),
    Reject(CallHandle, u16),
    Hangup(CallHandle),
    /// The final answer to a REFER from the call's phone (202, or a refusal).
    ReferReply(CallHandle, u16),
    /// How the transfer a REFER asked for goes (a NOTIFY): a SIP status, and whether
    /// it is the last word.
    ReferNotify(CallHandle, u16, bool),
    Drain,
    /// Place an outgoing call (an operator's phone, the trunk); its events go to `owner`
    /// as leg events.
    Invite {
        call: Box<OutgoingCall>,
        owner: mpsc::Sender<CallEvent>,
        reply: oneshot::Sender<CallHandle>,
    },
    /// An operator's SIP account (HA1s for the realm), or its removal.
    SetCredentials(String, Option<Credential>),
    /// A leg moves to another call (an attended transfer): its events go to `owner` now.
    Reroute {
        call: CallHandle,
        owner: mpsc::Sender<CallEvent>,
    },
}

/// An operator's phone bindings changed (registered, expired, removed).
#[derive(Clone, Debug)]
pub struct Registration {
    pub user: String,
    pub contacts: Vec<Binding>,
}

/// The handle call tasks use to reach the SIP task, and the operators' browser phones:
/// a leg to a browser phone is placed and commanded like any other
/// (see browser_phone.rs).
#[derive(Clone)]
pub struct SipHandle(
    pub(crate) mpsc::Sender<SipInput>,
    pub(crate) Option<std::sync::Arc<crate::browser_phone::BrowserPhones>>,
);

impl SipHandle {
    pub async fn command(&self, cmd: SipCommand) {
        if let Some(phones) = &self.1 {
            let browser = match &cmd {
                SipCommand::Hangup(h) | SipCommand::Reroute { call: h, .. } => {
                    crate::browser_phone::is_browser_leg(*h)
                }
                _ => false,
            };
            if browser {
                return phones.command(cmd).await;
            }
        }
        // The SIP task outlives every call; a send error only happens at exit.
        let _ = self.0.send(SipInput::Command(cmd)).await;
    }

    /// Places an outgoing call whose events go to `owner`; `None` if the SIP task is gone
    /// (or, for a browser phone, the operator has no phone tab now).
    pub async fn invite(
        &self,
        call: OutgoingCall,
        owner: mpsc::Sender<CallEvent>,
    ) -> Option<CallHandle> {
        if crate::browser_phone::is_browser_uri(&call.request_uri) {
            return self.1.as_ref()?.invite(call, owner).await;
        }
        let (reply, handle) = oneshot::channel();
        self.command(SipCommand::Invite {
            call: Box::new(call),
            owner,
            reply,
        })
        .await;
        handle.await.ok()
    }
}

// ---- the queue task --------------------------------------------------------------------

/// An operator as the queue task knows them: name and SIP user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAccount {
    pub name: String,
    pub sip_user: String,
    pub chat_capacity: u8,
}

pub enum AcdInput {
    Enqueue {
        caller: CallerId,
        queue: String,
        priority: u8,
        skill: Option<String>,
        events: mpsc::Sender<CallEvent>,
    },
    /// A direct callback (PRODUCT C5): as `Enqueue`, offered to `operator` first
    /// (`Acd::enqueue_direct`).
    EnqueueDirect {
        caller: CallerId,
        queue: String,
        priority: u8,
        skill: Option<String>,
        operator: String,
        events: mpsc::Sender<CallEvent>,
    },
    /// A transferred caller (`Acd::enqueue_transferred`): their first arrival and class.
    EnqueueTransferred {
        caller: CallerId,
        queue: String,
        priority: u8,
        since: Instant,
        events: mpsc::Sender<CallEvent>,
    },
    /// An operator's console tab became their phone (`Some`: its contact), or no longer
    /// is (`None`): while it is, the queues ring it instead of their SIP phone.
    BrowserPhone {
        operator: String,
        binding: Option<Binding>,
    },
    /// The operator ends their wrap-up early (`Acd::end_wrap_up`); `false`: they were
    /// not in wrap-up.
    EndWrapUp {
        operator: String,
        reply: oneshot::Sender<bool>,
    },
    Leave {
        caller: CallerId,
        reply: oneshot::Sender<Option<LeftQueue>>,
    },
    RingAnswered {
        caller: CallerId,
        operator: String,
        reply: oneshot::Sender<bool>,
    },
    RingFailed {
        caller: CallerId,
        operator: String,
        failure: RingFailure,
    },
    CallEnded {
        caller: CallerId,
    },
    /// An attended transfer: `from`'s connected operator talks with `to` now, whose
    /// events go to `events` (see `Acd::rekey`).
    Rekey {
        from: CallerId,
        to: CallerId,
        events: mpsc::Sender<CallEvent>,
    },
    Registration(Registration),
    /// Queues from the flow set (start, reload) and operators from the store.
    Configure {
        queues: Vec<QueueDef>,
        operators: Vec<OperatorAccount>,
    },
    SetState {
        operator: String,
        state: OperatorState,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Figures {
        reply: oneshot::Sender<Vec<(String, QueueFigures)>>,
    },
    Operators {
        reply: oneshot::Sender<Vec<(String, OperatorView)>>,
    },
    /// Who in `queue` a consultation reaches now (not `except`).
    FreeMember {
        queue: String,
        except: String,
        reply: oneshot::Sender<Option<String>>,
    },
    /// One operator's view (a transfer's check: no copy of every operator per call).
    Operator {
        name: String,
        reply: oneshot::Sender<Option<OperatorView>>,
    },
    /// The operator's open chats (offered or taken, not wrapped up): with any, no voice
    /// call is offered to them (PRODUCT Q1).
    SetChats {
        operator: String,
        chats: u8,
    },
    /// The visual sessions whose page the operator has open: with any, no voice call
    /// is offered to them (PRODUCT Q1).
    SetVisualSessions {
        operator: String,
        open: u8,
    },
    /// An automatic callback enters its queue (see `callbacks::auto`); `since` is the
    /// customer's original call, for the interleaved policy.
    EnqueueCallback {
        caller: CallerId,
        queue: String,
        since: Instant,
        events: mpsc::Sender<CallEvent>,
        reply: oneshot::Sender<bool>,
    },
    /// The expected wait of the `position`th in line (see `Acd::expected_wait`), with
    /// the live callers waiting now counted in front.
    ExpectedWait {
        queue: String,
        position: u32,
        reply: oneshot::Sender<Option<Duration>>,
    },
    /// How many more automatic callbacks the queue can take now.
    CallbackRoom {
        queue: String,
        reply: oneshot::Sender<u32>,
    },
    /// The operator starts a call of their own (click-to-call, a callback from the list
    /// or a task, a direct callback): busy to the queues until `OutboundEnded`.
    /// `Err` says why not (another call on).
    OutboundStarted {
        operator: String,
        call: CallerId,
        queue: Option<String>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// An operator rung outside the queues never talked (see `Acd::outbound_cancelled`).
    OutboundCancelled {
        operator: String,
        call: CallerId,
    },
    OutboundEnded {
        operator: String,
        call: CallerId,
    },
    /// An operator's registered phones (click-to-call rings them).
    Contacts {
        operator: String,
        reply: oneshot::Sender<Option<Vec<Binding>>>,
    },
}

#[derive(Clone)]
pub struct AcdHandle(pub(crate) mpsc::Sender<AcdInput>);

impl AcdHandle {
    pub async fn send(&self, input: AcdInput) {
        // The queue task outlives the calls; a send error only happens at exit.
        let _ = self.0.send(input).await;
    }

    /// Asks and waits for the answer; `None` if the task is gone.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> AcdInput) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await;
        rx.await.ok()
    }
}

/// What a call task is told to do about its operator leg.
#[derive(Debug)]
pub struct RingOrder {
    pub operator: String,
    pub contacts: Vec<Binding>,
}

/// Starts the task of a new inbound call (the SIP task's only way to a call's logic).
pub type CallSpawner = Box<dyn Fn(CallSetup, mpsc::Receiver<CallEvent>) + Send>;
