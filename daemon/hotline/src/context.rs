//! What every call task (and the API) shares: the store, the flows, the SIP and queue
//! handles, the clock, and the registries of connected calls and dialogs.

use hotline_core::call_session::{CallerSoFar, ConsultState};
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hotline_core::acd::CallerId;
use hotline_core::cdr::CdrLog;
use hotline_core::ivr_call::PromptLibrary;
use hotline_core::store::Store;
use hotline_ivr::FlowSet;
use tokio::sync::{mpsc, watch};

use crate::actors::{AcdHandle, CallEvent, SipHandle};
use crate::net::{LocalAddress, RtpPorts};

/// An inbound call in progress, as an attended transfer finds it.
pub struct Dialog {
    pub events: mpsc::Sender<CallEvent>,
    pub caller: CallerId,
    /// A consultation call: the operator whose phone placed it.
    pub placed_by: Option<String>,
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
    /// The operator's consultation from the console, as their panel shows it.
    pub consult: Option<ConsultState>,
    /// The call's own task, for the console's buttons.
    pub control: mpsc::Sender<CallEvent>,
    /// Whether the call is recorded always, on demand, or not (PRODUCT S2)…
    pub record: hotline_ivr::RecordMode,
    /// …and whether it is being recorded now.
    pub recording: bool,
}

/// A call ringing an operator's phone (browser or SIP): the console shows who is calling
/// before they answer.
#[derive(Clone)]
pub struct RingingCall {
    pub call_id: String,
    pub caller: String,
    pub since_ms: i64,
}

/// What the store knows of a caller, read once per call for the screen pop.
#[derive(Clone, Default)]
pub struct CallerHistory {
    /// Their previous calls, the newest first (this one left out).
    pub calls: Vec<hotline_core::cdr::CallRecord>,
    pub callbacks: Vec<hotline_core::callbacks::CallbackEntry>,
    /// Open tasks for the number, whoever sees them: filtered per operator when shown.
    pub tasks: Vec<hotline_core::tasks::Task>,
    pub chats: Vec<hotline_core::chat::ChatSummary>,
    /// Some part could not be read (the store failed; logged).
    pub incomplete: bool,
}

/// The operators' calls as their consoles show them. It derefs to the connected calls
/// by operator (what the call panel's buttons act on); beside them the ringing calls by
/// operator, and by call id what each caller did before and their history.
#[derive(Default)]
pub struct OperatorCalls {
    connected: HashMap<String, ConnectedCall>,
    ringing: HashMap<String, RingingCall>,
    so_far: HashMap<String, CallerSoFar>,
    history: HashMap<String, Arc<CallerHistory>>,
}

impl Deref for OperatorCalls {
    type Target = HashMap<String, ConnectedCall>;

    fn deref(&self) -> &Self::Target {
        &self.connected
    }
}

impl DerefMut for OperatorCalls {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.connected
    }
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
    pub rtp_ports: std::sync::Arc<RtpPorts>,
    pub local: LocalAddress,
    pub rtp_timeout: Duration,
    /// SMS, e-mail and webhooks.
    pub notifier: hotline_core::notify::NotifierHandle,
    /// Where plainly bridged calls' media is relayed; `None`: on each call's own task.
    pub relay: Option<Arc<crate::relay::RelayThreads>>,
    /// Becomes true when the drain time is over: calls still up get BYE.
    pub shutdown: watch::Receiver<bool>,
    pub active: AtomicUsize,
    pub acd: AcdHandle,
    pub clock: WallClock,
    /// Outside numbers (transfers) are dialled through it, after its dial plan.
    pub trunk: Option<crate::config::Trunk>,
    /// Each operator's connected or ringing call (the console's call panel).
    pub connected: std::sync::Mutex<OperatorCalls>,
    /// Inbound calls in progress by SIP Call-ID, for an attended transfer's Replaces.
    pub dialogs: std::sync::Mutex<HashMap<String, Dialog>>,
    /// Every call in progress by SIP Call-ID, as `hotline show calls` lists it.
    pub live: crate::control::LiveCalls,
    /// Woken when the flows are reloaded, so the queues are sent to the queue task again.
    pub flows_changed: Arc<tokio::sync::Notify>,
    /// Woken when an operator account was added, so the store is read again at once.
    pub operators_changed: Arc<tokio::sync::Notify>,
    /// Where recorded calls are written.
    pub recordings: crate::config::Recordings,
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
    pub(crate) fn dialogs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Dialog>> {
        self.dialogs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn connected_calls(&self) -> std::sync::MutexGuard<'_, OperatorCalls> {
        match self.connected.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The operator's connected call, if any.
    pub fn operator_call(&self, operator: &str) -> Option<ConnectedCall> {
        self.connected_calls().get(operator).cloned()
    }

    pub(crate) fn operator_joined(&self, operator: &str, call: ConnectedCall) {
        self.connected_calls().insert(operator.to_string(), call);
    }

    /// The call rings `operator`'s phone; `so_far`: what the caller did until now.
    pub(crate) fn operator_ringing(&self, operator: &str, call: RingingCall, so_far: CallerSoFar) {
        let mut calls = self.connected_calls();
        calls.so_far.insert(call.call_id.clone(), so_far);
        calls.ringing.insert(operator.to_string(), call);
    }

    /// `operator`'s phone no longer rings with call `call_id` (answered, cancelled,
    /// failed, or the call ended).
    pub(crate) fn ring_over(&self, operator: &str, call_id: &str) {
        let mut calls = self.connected_calls();
        if calls
            .ringing
            .get(operator)
            .is_some_and(|c| c.call_id == call_id)
        {
            calls.ringing.remove(operator);
        }
    }

    /// What the caller of `call_id` did before an operator took them, as it stands now.
    pub(crate) fn caller_so_far_now(&self, call_id: &str, so_far: CallerSoFar) {
        self.connected_calls()
            .so_far
            .insert(call_id.to_string(), so_far);
    }

    /// The call is over: nothing of it stays for the screen pop.
    pub(crate) fn call_over(&self, call_id: &str) {
        let mut calls = self.connected_calls();
        calls.ringing.retain(|_, c| c.call_id != call_id);
        calls.so_far.remove(call_id);
        calls.history.remove(call_id);
    }

    /// The call ringing the operator's phone, if any.
    pub fn ringing_call(&self, operator: &str) -> Option<RingingCall> {
        self.connected_calls().ringing.get(operator).cloned()
    }

    pub fn caller_so_far(&self, call_id: &str) -> Option<CallerSoFar> {
        self.connected_calls().so_far.get(call_id).cloned()
    }

    /// The caller's history as read for this call, if it was.
    pub fn caller_history(&self, call_id: &str) -> Option<Arc<CallerHistory>> {
        self.connected_calls().history.get(call_id).cloned()
    }

    /// Keeps the history read for `call_id` while the call lasts (a call already over is
    /// not kept: nothing would remove it).
    pub fn keep_caller_history(&self, call_id: &str, history: Arc<CallerHistory>) {
        let mut calls = self.connected_calls();
        if calls.so_far.contains_key(call_id) {
            calls.history.insert(call_id.to_string(), history);
        }
    }

    /// The operator's part in call `call_id` is over.
    pub(crate) fn operator_left(&self, operator: &str, call_id: &str) {
        let mut calls = self.connected_calls();
        if calls.get(operator).is_some_and(|c| c.call_id == call_id) {
            calls.remove(operator);
        }
    }

    pub(crate) fn operator_consulting(&self, operator: &str, call_id: &str, state: ConsultState) {
        if let Some(c) = self
            .connected_calls()
            .get_mut(operator)
            .filter(|c| c.call_id == call_id)
        {
            c.consult = Some(state);
        }
    }

    pub(crate) fn operator_held(&self, operator: &str, call_id: &str, held: bool) {
        if let Some(c) = self
            .connected_calls()
            .get_mut(operator)
            .filter(|c| c.call_id == call_id)
        {
            c.held = held;
        }
    }

    /// The call `call_id` is being recorded, or no longer, for its operator's panel.
    pub(crate) fn call_recording(&self, call_id: &str, on: bool) {
        for c in self.connected_calls().values_mut() {
            if c.call_id == call_id {
                c.recording = on;
            }
        }
    }

    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// The flow set new calls get.
    pub fn flows_now(&self) -> Arc<LoadedFlows> {
        self.flows()
    }

    pub(crate) fn flows(&self) -> Arc<LoadedFlows> {
        match self.flows.read() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
