//! The live view from the shell, as Asterisk's `asterisk -rx "core show channels"`:
//! `hotline show calls|registrations|queues|chats|operators [--json]` and
//! `hotline hangup CALL-ID` ask the running daemon over its control socket.
//!
//! The socket is `$RUNTIME_DIRECTORY/control.sock` under systemd (`/run/hotline`), else
//! `<state_dir>/control.sock`; its file mode (0600: the daemon's user, and root) is the
//! only access control, as with Asterisk's. Not the group: the `hotline` group may read
//! the settings, and `hangup` is more than reading. The protocol is one JSON request line (at most
//! 4 KiB, sent within 2 s) and one JSON response line:
//!
//! ```text
//! {"show":"calls"}          -> {"rows":[{"call_id":"…",…}]}
//! {"hangup":"CALL-ID"}      -> "done"   or   {"error":"no call CALL-ID"}
//! ```
//!
//! What the daemon knows is read where it lives: the calls in progress from [`LiveCalls`]
//! (which the call tasks keep up to date) with the operators' connected calls and the
//! queue engine's rings; registrations, queues and operators from the queue task; chats
//! from the store.

use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hotline_core::acd::{CallerId, OperatorStatus, OperatorView};
use hotline_core::call_session::{ConsultState, MonitorState, Output, QueueOut, RecordingEvent};
use hotline_core::chat::ChatState;
use hotline_core::time::unix_ms;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use crate::actors::{AcdInput, CallEvent, CallSetup, ConsoleControl};
use crate::context::{Calls, ConnectedCall};

/// The socket's file name in its directory.
pub const SOCKET_NAME: &str = "control.sock";
/// Where systemd's `RuntimeDirectory=hotline` puts it: a shell without
/// `$RUNTIME_DIRECTORY` looks there too.
const SYSTEMD_SOCKET: &str = "/run/hotline/control.sock";
/// The longest request line, newline excluded.
pub const MAX_REQUEST: usize = 4096;
/// How long a client has to send its request line.
const REQUEST_WAIT: Duration = Duration::from_secs(2);
/// How long the daemon may take to answer, and a client to read the answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// Requests served at once; more connections are closed unanswered.
const MAX_CONNECTIONS: usize = 16;
/// The longest answer a client reads (a few thousand calls fit easily).
const MAX_ANSWER: u64 = 64 << 20;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// ---- the protocol ----------------------------------------------------------------------

/// What `hotline show` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Calls,
    Registrations,
    Queues,
    Chats,
    Operators,
}

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Show(View),
    /// End the call with this SIP Call-ID.
    Hangup(String),
}

/// One response line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The view's rows: an array of the view's row objects.
    Rows(serde_json::Value),
    Done,
    Error(String),
}

/// Where a call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// In its IVR flow (or answered, for a call Hotline placed, before anything else).
    InFlow,
    /// Waiting in `queue`.
    Waiting,
    /// `operator`'s phone rings for it.
    Ringing,
    /// Talking with `operator`.
    Talking,
    /// `operator` holds the caller.
    Held,
    /// Going to `transfer_to`: an operator consulted, or a number dialled.
    Transferring,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRow {
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub state: CallState,
    pub flow: Option<String>,
    pub operator: Option<String>,
    pub queue: Option<String>,
    pub transfer_to: Option<String>,
    /// Since the call arrived (or, for a call Hotline placed, since its customer answered).
    pub duration_secs: u64,
    /// A supervisor on the call and what they do (`listen`, `whisper`, `barge`, or
    /// `ringing` while their phone is rung).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitoring>,
    /// Being recorded now (PRODUCT S2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recording: bool,
    /// May be recorded from the console (`on_demand`) now: connected to an operator
    /// whose queue records on demand.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_on_demand: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitoring {
    pub supervisor: String,
    pub mode: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRow {
    pub operator: String,
    pub sip_user: String,
    /// The Contact URI the phone registered.
    pub contact: String,
    /// Where the REGISTER came from (what requests to the phone are sent to).
    pub source: String,
    pub transport: String,
    pub expires_in_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    pub queue: String,
    pub waiting: u32,
    pub longest_wait_secs: u64,
    /// Members online and free for more.
    pub online: u32,
    /// In a voice call, or chats at capacity (wrap-up apart).
    pub busy: u32,
    pub wrap_up: u32,
    pub paused: u32,
    pub away: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRow {
    pub operator: String,
    /// The state they chose: online, away, pause, offline.
    pub chosen: String,
    /// What they do now: free, ringing, busy, wrap-up (else the chosen state).
    pub state: String,
    /// Seconds in `state`; `None` before the queue engine saw them.
    pub since_secs: Option<u64>,
    /// Voice call (0 or 1) plus open chats.
    pub conversations: u32,
    pub registered: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRow {
    pub id: i64,
    pub site: String,
    pub queue: String,
    /// waiting, offered or active.
    pub state: String,
    pub visitor: Option<String>,
    /// Who it is offered to, or who is in it.
    pub operator: Option<String>,
    /// Seconds waiting (waiting, offered) or active.
    pub for_secs: u64,
}

/// A request line (without its newline) as the daemon reads it; never panics.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line.trim_ascii()).map_err(|e| format!("bad request: {e}"))
}

/// Reads one request line: at most [`MAX_REQUEST`] bytes, ended by a newline or the end
/// of the stream.
async fn read_request(r: impl AsyncRead + Unpin) -> Result<Request, String> {
    let limit = u64::try_from(MAX_REQUEST + 1).unwrap_or(u64::MAX);
    let mut reader = BufReader::new(r.take(limit));
    let mut line = Vec::with_capacity(128);
    reader
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("reading the request: {e}"))?;
    match line.last() {
        Some(b'\n') => {
            line.pop();
        }
        _ if line.len() > MAX_REQUEST => {
            return Err(format!("request longer than {MAX_REQUEST} bytes"));
        }
        _ if line.is_empty() => return Err("empty request".into()),
        _ => {}
    }
    parse_request(&line)
}

fn encode(r: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(r)
        .unwrap_or_else(|e| format!("{{\"error\":\"encoding the answer: {e}\"}}").into_bytes());
    line.push(b'\n');
    line
}

// ---- what the daemon is asked ----------------------------------------------------------

/// The daemon's side of the views: the real one is [`Calls`]; tests give a small fake.
pub trait LiveState: Send + Sync + 'static {
    fn calls(&self) -> BoxFuture<'_, Result<Vec<CallRow>, String>>;
    fn registrations(&self) -> BoxFuture<'_, Result<Vec<RegistrationRow>, String>>;
    fn queues(&self) -> BoxFuture<'_, Result<Vec<QueueRow>, String>>;
    fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorRow>, String>>;
    fn chats(&self) -> BoxFuture<'_, Result<Vec<ChatRow>, String>>;
    /// Ends the call; `Err("no call ID")` when there is none.
    fn hangup<'a>(&'a self, call_id: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

async fn answer(state: &dyn LiveState, request: Request) -> Response {
    fn rows<T: Serialize>(r: Result<Vec<T>, String>) -> Response {
        match r.and_then(|rows| serde_json::to_value(rows).map_err(|e| e.to_string())) {
            Ok(v) => Response::Rows(v),
            Err(e) => Response::Error(e),
        }
    }
    match request {
        Request::Show(View::Calls) => rows(state.calls().await),
        Request::Show(View::Registrations) => rows(state.registrations().await),
        Request::Show(View::Queues) => rows(state.queues().await),
        Request::Show(View::Operators) => rows(state.operators().await),
        Request::Show(View::Chats) => rows(state.chats().await),
        Request::Hangup(id) => match state.hangup(&id).await {
            Ok(()) => {
                info!(call_id = %id, "call hung up from the control socket");
                Response::Done
            }
            Err(e) => Response::Error(e),
        },
    }
}

// ---- the registry of calls in progress -------------------------------------------------

/// Every call in progress by SIP Call-ID: what the call task knows and `show calls`
/// needs. Written only when a call starts, ends or changes phase (never per packet).
#[derive(Default)]
pub struct LiveCalls(Mutex<HashMap<String, LiveCall>>);

#[derive(Clone)]
pub struct LiveCall {
    pub caller: String,
    pub called: String,
    pub flow: Option<String>,
    pub arrived: Instant,
    /// The queue engine's name for the call (whose phone rings for it).
    pub key: CallerId,
    /// The call's task, for `hangup`.
    pub control: mpsc::Sender<CallEvent>,
    pub phase: Phase,
    /// The queue it entered last.
    pub queue: Option<String>,
    pub monitor: Option<Monitoring>,
    pub recording: bool,
}

impl LiveCall {
    /// A call starting now, in `flow` (none: a call Hotline placed straight to an operator).
    pub fn new(setup: &CallSetup, key: CallerId, flow: Option<String>) -> LiveCall {
        LiveCall {
            caller: setup.caller.clone(),
            called: setup.called.clone(),
            flow,
            arrived: Instant::now(),
            key,
            control: setup.events_tx.clone(),
            phase: Phase::Flow,
            queue: None,
            monitor: None,
            recording: false,
        }
    }
}

/// Where a call stands, as its session's outputs said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Flow,
    Queued,
    Operator(String),
    /// An outside number dialled for a transfer.
    External(String),
}

/// Keeps a call in [`LiveCalls`] while it lives.
pub struct Tracked<'a> {
    calls: &'a LiveCalls,
    call_id: String,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.call_id);
    }
}

impl LiveCalls {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, LiveCall>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists the call until the guard is dropped (the call task's end, whichever way).
    pub fn track(&self, call_id: &str, call: LiveCall) -> Tracked<'_> {
        self.lock().insert(call_id.to_string(), call);
        Tracked {
            calls: self,
            call_id: call_id.to_string(),
        }
    }

    /// Notes where the call stands now, from one of its session's outputs.
    pub fn note(&self, call_id: &str, out: &Output) {
        if let Output::Monitor {
            supervisor, state, ..
        } = out
        {
            let monitor = match state {
                MonitorState::Ended(_) | MonitorState::TookOver => None,
                s => Some(Monitoring {
                    supervisor: supervisor.clone(),
                    mode: s.as_str().to_string(),
                }),
            };
            if let Some(call) = self.lock().get_mut(call_id) {
                call.monitor = monitor;
            }
            return;
        }
        if let Output::Recording(event) = out {
            let on = match event {
                RecordingEvent::Started { .. } => true,
                RecordingEvent::Stopped { .. } => false,
                RecordingEvent::Mark { .. } => return,
            };
            if let Some(call) = self.lock().get_mut(call_id) {
                call.recording = on;
            }
            return;
        }
        let (phase, queue) = match out {
            Output::Queue(
                QueueOut::Enqueue { queue, .. }
                | QueueOut::EnqueueTransferred { queue, .. }
                | QueueOut::EnqueueCallback { queue, .. },
            ) => (Phase::Queued, Some(queue)),
            Output::Queue(QueueOut::Leave | QueueOut::CallEnded) | Output::Disconnected { .. } => {
                (Phase::Flow, None)
            }
            Output::Connected {
                operator, queue, ..
            } => (Phase::Operator(operator.clone()), queue.as_ref()),
            Output::PlaceExternal { number, .. } => (Phase::External(number.clone()), None),
            // Everything else leaves the phase as it is (and takes no lock).
            _ => return,
        };
        if let Some(call) = self.lock().get_mut(call_id) {
            call.phase = phase;
            if let Some(q) = queue {
                call.queue = Some(q.clone());
            }
        }
    }

    fn snapshot(&self) -> Vec<(String, LiveCall)> {
        self.lock()
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect()
    }

    pub(crate) fn control(&self, call_id: &str) -> Option<mpsc::Sender<CallEvent>> {
        self.lock().get(call_id).map(|c| c.control.clone())
    }

    /// The queue the call entered last, if any.
    pub(crate) fn queue_of(&self, call_id: &str) -> Option<String> {
        self.lock().get(call_id).and_then(|c| c.queue.clone())
    }
}

/// One call's row: the operator's connected call (hold, consultation) and a ringing phone
/// say more than the phase the call task noted.
fn call_row(
    call_id: &str,
    call: &LiveCall,
    connected: Option<&(String, ConnectedCall)>,
    ringing: Option<&String>,
    now: Instant,
) -> CallRow {
    let mut row = CallRow {
        call_id: call_id.to_string(),
        caller: call.caller.clone(),
        called: call.called.clone(),
        state: CallState::InFlow,
        flow: call.flow.clone(),
        operator: None,
        queue: call.queue.clone(),
        transfer_to: None,
        duration_secs: now.saturating_duration_since(call.arrived).as_secs(),
        monitor: call.monitor.clone(),
        recording: call.recording,
        record_on_demand: false,
    };
    if let Some((operator, c)) = connected {
        row.record_on_demand = c.record == hotline_ivr::RecordMode::OnDemand;
        row.operator = Some(operator.clone());
        row.queue = c.queue.clone().or(row.queue);
        row.state = match &c.consult {
            Some(ConsultState::Ringing { with } | ConsultState::Talking { with }) => {
                row.transfer_to = Some(with.clone());
                CallState::Transferring
            }
            _ if c.held => CallState::Held,
            _ => CallState::Talking,
        };
        return row;
    }
    if let Some(operator) = ringing {
        row.operator = Some(operator.clone());
        row.state = CallState::Ringing;
        return row;
    }
    row.state = match &call.phase {
        Phase::Flow => CallState::InFlow,
        Phase::Queued => CallState::Waiting,
        Phase::Operator(op) => {
            row.operator = Some(op.clone());
            CallState::Talking
        }
        Phase::External(number) => {
            row.transfer_to = Some(number.clone());
            CallState::Transferring
        }
    };
    row
}

/// The operator's live state for `show operators`.
fn live_state(v: &OperatorView) -> &'static str {
    match v.state {
        _ if v.ringing.is_some() => "ringing",
        OperatorStatus::Online => "free",
        s => crate::api::status_name(s),
    }
}

impl LiveState for Calls {
    fn calls(&self) -> BoxFuture<'_, Result<Vec<CallRow>, String>> {
        Box::pin(async move {
            let views = self
                .acd
                .ask(|reply| AcdInput::Operators { reply })
                .await
                .unwrap_or_default();
            let ringing: HashMap<CallerId, String> = views
                .into_iter()
                .filter_map(|(name, v)| v.ringing.map(|c| (c, name)))
                .collect();
            let connected: HashMap<String, (String, ConnectedCall)> = self
                .connected_calls()
                .iter()
                .map(|(op, c)| (c.call_id.clone(), (op.clone(), c.clone())))
                .collect();
            let now = Instant::now();
            let mut calls = self.live.snapshot();
            calls.sort_by_key(|(_, c)| c.arrived);
            Ok(calls
                .iter()
                .map(|(id, c)| call_row(id, c, connected.get(id), ringing.get(&c.key), now))
                .collect())
        })
    }

    fn registrations(&self) -> BoxFuture<'_, Result<Vec<RegistrationRow>, String>> {
        Box::pin(async move {
            let accounts = self.store.operators().await.map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            for op in accounts {
                let bindings = self
                    .acd
                    .ask(|reply| AcdInput::Contacts {
                        operator: op.name.clone(),
                        reply,
                    })
                    .await
                    .flatten()
                    .unwrap_or_default();
                let now = Instant::now();
                rows.extend(bindings.into_iter().map(|b| {
                    // A console tab that is the operator's phone: there until it closes.
                    let browser = crate::browser_phone::is_browser_uri(&b.uri);
                    RegistrationRow {
                        operator: op.name.clone(),
                        sip_user: op.sip_user.clone(),
                        source: if browser {
                            "console tab".to_string()
                        } else {
                            b.peer.addr.to_string()
                        },
                        transport: if browser {
                            "webrtc".to_string()
                        } else {
                            b.peer.transport.via_token().to_string()
                        },
                        expires_in_secs: if browser {
                            0
                        } else {
                            b.expires_at.saturating_duration_since(now).as_secs()
                        },
                        contact: b.uri,
                    }
                }));
            }
            Ok(rows)
        })
    }

    fn queues(&self) -> BoxFuture<'_, Result<Vec<QueueRow>, String>> {
        Box::pin(async move {
            let figures = self
                .acd
                .ask(|reply| AcdInput::Figures { reply })
                .await
                .ok_or("the queue task is gone")?;
            let views = self
                .acd
                .ask(|reply| AcdInput::Operators { reply })
                .await
                .unwrap_or_default();
            Ok(figures
                .into_iter()
                .map(|(queue, f)| {
                    // The engine counts wrap-up as busy; the view tells them apart.
                    let wrap_up = views
                        .iter()
                        .filter(|(_, v)| {
                            v.state == OperatorStatus::WrapUp && v.queues.contains(&queue)
                        })
                        .count();
                    let wrap_up = u32::try_from(wrap_up).unwrap_or(u32::MAX);
                    QueueRow {
                        queue,
                        waiting: f.waiting,
                        longest_wait_secs: f.longest_wait.as_secs(),
                        online: f.online,
                        busy: f.busy.saturating_sub(wrap_up),
                        wrap_up,
                        paused: f.paused,
                        away: f.away,
                    }
                })
                .collect())
        })
    }

    fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorRow>, String>> {
        Box::pin(async move {
            let chosen: HashMap<String, String> = self
                .store
                .operator_chosen_states()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .collect();
            let views: HashMap<String, OperatorView> = self
                .acd
                .ask(|reply| AcdInput::Operators { reply })
                .await
                .unwrap_or_default()
                .into_iter()
                .collect();
            let now = Instant::now();
            let mut names: Vec<&String> = chosen.keys().collect();
            names.sort();
            Ok(names
                .into_iter()
                .map(|name| {
                    let chosen = chosen.get(name).cloned().unwrap_or_default();
                    match views.get(name) {
                        Some(v) => OperatorRow {
                            operator: name.clone(),
                            state: live_state(v).to_string(),
                            since_secs: v.since.map(|s| now.saturating_duration_since(s).as_secs()),
                            conversations: u32::from(v.call.is_some()) + u32::from(v.chats),
                            registered: v.reachable,
                            chosen,
                        },
                        // Added since the queue task last read the accounts.
                        None => OperatorRow {
                            operator: name.clone(),
                            state: chosen.clone(),
                            since_secs: None,
                            conversations: 0,
                            registered: false,
                            chosen,
                        },
                    }
                })
                .collect())
        })
    }

    fn chats(&self) -> BoxFuture<'_, Result<Vec<ChatRow>, String>> {
        Box::pin(async move {
            let chats = self.store.open_chats().await.map_err(|e| e.to_string())?;
            let now_ms = unix_ms();
            let mut rows = Vec::with_capacity(chats.len());
            for c in chats {
                let visitor = match self.store.visitor(c.visitor_id).await {
                    Ok(v) => v.and_then(|v| v.name),
                    Err(e) => return Err(e.to_string()),
                };
                let operator = match c.state {
                    ChatState::Offered => c.offered_to.clone(),
                    ChatState::Active => {
                        let people = self
                            .store
                            .chat_participants(c.id)
                            .await
                            .map_err(|e| e.to_string())?;
                        let open: Vec<String> = people
                            .into_iter()
                            .filter(|p| p.is_open())
                            .map(|p| p.operator)
                            .collect();
                        (!open.is_empty()).then(|| open.join(","))
                    }
                    ChatState::Waiting | ChatState::Ended => None,
                };
                let from_ms = match c.state {
                    ChatState::Active => c.accepted_at_ms.unwrap_or(c.created_at_ms),
                    _ => c.created_at_ms,
                };
                rows.push(ChatRow {
                    id: c.id,
                    site: c.site,
                    queue: c.queue,
                    state: c.state.as_str().to_string(),
                    visitor,
                    operator,
                    for_secs: u64::try_from((now_ms - from_ms) / 1000).unwrap_or(0),
                });
            }
            Ok(rows)
        })
    }

    fn hangup<'a>(&'a self, call_id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let gone = || format!("no call {call_id}");
            let control = self.live.control(call_id).ok_or_else(gone)?;
            let (reply, done) = tokio::sync::oneshot::channel();
            let event = CallEvent::Console(ConsoleControl::Hangup { reply });
            match tokio::time::timeout(ANSWER_WAIT, control.send(event)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(gone()),
                Err(_) => return Err(format!("call {call_id} does not answer")),
            }
            match tokio::time::timeout(ANSWER_WAIT, done).await {
                Ok(Ok(result)) => result,
                // The call ended before it got to the request.
                Ok(Err(_)) => Err(gone()),
                Err(_) => Err(format!("call {call_id} does not answer")),
            }
        })
    }
}

// ---- the server ------------------------------------------------------------------------

/// Where `serve` puts the socket: the first of `$RUNTIME_DIRECTORY`'s directories
/// (systemd), else the state directory.
pub fn server_path(state_dir: &Path, runtime_dir: Option<&OsString>) -> PathBuf {
    runtime_dir
        .and_then(|dirs| std::env::split_paths(dirs).find(|d| !d.as_os_str().is_empty()))
        .unwrap_or_else(|| state_dir.to_path_buf())
        .join(SOCKET_NAME)
}

/// The daemon's control socket; dropping it closes it and removes the file.
pub struct ControlSocket {
    path: PathBuf,
    /// The file's inode, so a newer daemon's socket at the same path is left alone.
    inode: Option<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        self.task.abort();
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .is_some_and(|m| Some(m.ino()) == self.inode);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            warn!(path = %self.path.display(), "removing the control socket: {e}");
        }
    }
}

/// Opens the control socket of `serve` (where [`server_path`] says) and answers on it
/// until dropped. `None` (with a warning) when it cannot: the daemon runs on without the
/// live view.
pub fn start(state_dir: &Path, state: Arc<dyn LiveState>) -> Option<ControlSocket> {
    let runtime_dir = std::env::var_os("RUNTIME_DIRECTORY");
    let path = server_path(state_dir, runtime_dir.as_ref());
    match listen(&path, state, REQUEST_WAIT) {
        Ok(socket) => {
            info!(path = %path.display(), "control socket (hotline show, hotline hangup)");
            Some(socket)
        }
        Err(e) => {
            warn!(path = %path.display(), "no control socket, so no `hotline show`: {e}");
            None
        }
    }
}

/// Binds `path` (replacing a stale socket a crashed daemon left, refusing when a daemon
/// answers there), makes it 0600 and serves it.
fn listen(
    path: &Path,
    state: Arc<dyn LiveState>,
    request_wait: Duration,
) -> std::io::Result<ControlSocket> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                ErrorKind::AddrInUse,
                "another hotline daemon answers on it",
            ));
        }
        info!(path = %path.display(), "replacing the stale control socket of an earlier run");
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // bind() makes the file 0777 less the umask (022 in a shell, 027 under the unit): no
    // write bit for others, so nobody else can connect before it is set to 0600 (the
    // directory, the state directory or /run/hotline, is not open to others either).
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let inode = std::fs::symlink_metadata(path).ok().map(|m| m.ino());
    let task = tokio::spawn(accept(listener, state, request_wait));
    Ok(ControlSocket {
        path: path.to_path_buf(),
        inode,
        task,
    })
}

async fn accept(listener: UnixListener, state: Arc<dyn LiveState>, request_wait: Duration) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: try again shortly.
                warn!("control socket: accepting: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!("control socket: too many connections; one closed unanswered");
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            serve_one(stream, &*state, request_wait).await;
            drop(slot);
        });
    }
}

async fn serve_one(mut stream: UnixStream, state: &dyn LiveState, request_wait: Duration) {
    let request = tokio::time::timeout(request_wait, read_request(&mut stream))
        .await
        .unwrap_or_else(|_| Err(format!("no request line within {request_wait:?}")));
    let response = match request {
        Ok(r) => tokio::time::timeout(ANSWER_WAIT, answer(state, r))
            .await
            .unwrap_or_else(|_| Response::Error("the daemon took too long to answer".into())),
        Err(e) => {
            debug!("control socket: {e}");
            Response::Error(e)
        }
    };
    let line = encode(&response);
    let sent = tokio::time::timeout(ANSWER_WAIT, async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        debug!("control socket: the client left before the answer");
    }
}

// ---- the client ------------------------------------------------------------------------

/// Where a client looks for the socket, in order: `$RUNTIME_DIRECTORY` alone when set
/// (a command run by systemd); else the state directory, then systemd's /run/hotline
/// (an admin's shell has no `$RUNTIME_DIRECTORY`).
pub fn client_paths(state_dir: &Path, runtime_dir: Option<&OsString>) -> Vec<PathBuf> {
    if runtime_dir.is_some_and(|d| !d.is_empty()) {
        return vec![server_path(state_dir, runtime_dir)];
    }
    let own = state_dir.join(SOCKET_NAME);
    let systemd = PathBuf::from(SYSTEMD_SOCKET);
    if own == systemd {
        vec![own]
    } else {
        vec![own, systemd]
    }
}

/// Why a client got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("hotline is not running (no control socket at {})", list(.0))]
    NotRunning(Vec<PathBuf>),
    #[error(
        "cannot use the control socket {}: permission denied (run as the daemon's user or \
         root: sudo -u hotline hotline …)",
        .0.display()
    )]
    Denied(PathBuf),
    #[error("control socket {path}: {error}", path = .0.display(), error = .1)]
    Io(PathBuf, std::io::Error),
    #[error("control socket {path}: {error}", path = .0.display(), error = .1)]
    Protocol(PathBuf, String),
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Connects to the first socket a daemon answers on.
async fn connect(paths: &[PathBuf]) -> Result<(PathBuf, UnixStream), ClientError> {
    for path in paths {
        match UnixStream::connect(path).await {
            Ok(stream) => return Ok((path.clone(), stream)),
            // Missing, or stale (a daemon that died): try the next place.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {}
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return Err(ClientError::Denied(path.clone()));
            }
            Err(e) => return Err(ClientError::Io(path.clone(), e)),
        }
    }
    Err(ClientError::NotRunning(paths.to_vec()))
}

/// Sends one request and reads its answer.
pub async fn ask(paths: &[PathBuf], request: &Request) -> Result<Response, ClientError> {
    let (path, mut stream) = connect(paths).await?;
    let io = |e| ClientError::Io(path.clone(), e);
    let exchange = async {
        stream.write_all(&encode(request)).await.map_err(io)?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(io)?;
        serde_json::from_slice::<Response>(answer.trim_ascii())
            .map_err(|e| ClientError::Protocol(path.clone(), format!("unreadable answer: {e}")))
    };
    match tokio::time::timeout(ANSWER_WAIT + REQUEST_WAIT, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Protocol(
            path.clone(),
            "no answer in time".into(),
        )),
    }
}

/// `hotline show VIEW [--json]`: the text to print.
pub async fn show_at(paths: &[PathBuf], view: View, json: bool) -> Result<String, String> {
    match ask(paths, &Request::Show(view))
        .await
        .map_err(|e| e.to_string())?
    {
        Response::Rows(rows) if json => {
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())
        }
        Response::Rows(rows) => render(view, rows),
        Response::Error(e) => Err(e),
        Response::Done => Err("unexpected answer from the daemon".into()),
    }
}

/// `hotline hangup CALL-ID`: the text to print.
pub async fn hangup_at(paths: &[PathBuf], call_id: &str) -> Result<String, String> {
    match ask(paths, &Request::Hangup(call_id.to_string()))
        .await
        .map_err(|e| e.to_string())?
    {
        Response::Done => Ok(format!("hung up {call_id}")),
        Response::Error(e) => Err(e),
        Response::Rows(_) => Err("unexpected answer from the daemon".into()),
    }
}

/// The sockets a client tries, from the same settings `serve` uses.
fn paths_from_config(config_path: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let config = crate::config::Config::load_for_command(config_path, &crate::config::ProcessEnv)
        .map_err(|e| e.to_string())?;
    let runtime_dir = std::env::var_os("RUNTIME_DIRECTORY");
    Ok(client_paths(&config.state_dir, runtime_dir.as_ref()))
}

pub async fn show(config_path: Option<&Path>, view: View, json: bool) -> Result<(), String> {
    let out = show_at(&paths_from_config(config_path)?, view, json).await?;
    println!("{out}");
    Ok(())
}

pub async fn hangup(config_path: Option<&Path>, call_id: &str) -> Result<(), String> {
    let out = hangup_at(&paths_from_config(config_path)?, call_id).await?;
    println!("{out}");
    Ok(())
}

// ---- tables ----------------------------------------------------------------------------

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        out
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// "1 active call", "3 active calls".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// What a call's State column says.
pub fn describe(row: &CallRow) -> String {
    let op = opt(&row.operator);
    let mut state = describe_state(row, &op);
    if let Some(m) = &row.monitor {
        state = format!("{state} ({} {})", m.supervisor, m.mode);
    }
    if row.recording {
        state.push_str(", recorded");
    }
    state
}

fn describe_state(row: &CallRow, op: &str) -> String {
    match row.state {
        CallState::InFlow => match &row.flow {
            Some(f) => format!("in flow {f}"),
            None => "answered".into(),
        },
        CallState::Waiting => format!("waiting in queue {}", opt(&row.queue)),
        CallState::Ringing => format!("ringing {op}"),
        CallState::Talking => format!("talking with {op}"),
        CallState::Held => format!("held by {op}"),
        CallState::Transferring => format!("transferring to {}", opt(&row.transfer_to)),
    }
}

fn rows_of<T: serde::de::DeserializeOwned>(rows: serde_json::Value) -> Result<Vec<T>, String> {
    serde_json::from_value(rows).map_err(|e| format!("unreadable answer: {e}"))
}

/// The view's table with its count line.
pub fn render(view: View, rows: serde_json::Value) -> Result<String, String> {
    let (body, n, one, many) = match view {
        View::Calls => {
            let rows: Vec<CallRow> = rows_of(rows)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.call_id.clone(),
                        r.caller.clone(),
                        r.called.clone(),
                        describe(r),
                        opt(&r.operator),
                        opt(&r.queue),
                        r.duration_secs.to_string(),
                    ]
                })
                .collect();
            let header = [
                "Call-ID",
                "Caller",
                "Called",
                "State",
                "Operator",
                "Queue",
                "Duration(s)",
            ];
            (
                table(&header, &cells),
                rows.len(),
                "active call",
                "active calls",
            )
        }
        View::Registrations => {
            let rows: Vec<RegistrationRow> = rows_of(rows)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.operator.clone(),
                        r.sip_user.clone(),
                        r.contact.clone(),
                        r.source.clone(),
                        r.transport.clone(),
                        r.expires_in_secs.to_string(),
                    ]
                })
                .collect();
            let header = [
                "Operator",
                "SIP user",
                "Contact",
                "Source",
                "Transport",
                "Expires(s)",
            ];
            (
                table(&header, &cells),
                rows.len(),
                "registration",
                "registrations",
            )
        }
        View::Queues => {
            let rows: Vec<QueueRow> = rows_of(rows)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.queue.clone(),
                        r.waiting.to_string(),
                        r.longest_wait_secs.to_string(),
                        r.online.to_string(),
                        r.busy.to_string(),
                        r.wrap_up.to_string(),
                        r.paused.to_string(),
                        r.away.to_string(),
                    ]
                })
                .collect();
            let header = [
                "Queue",
                "Waiting",
                "Longest(s)",
                "Online",
                "Busy",
                "Wrap-up",
                "Paused",
                "Away",
            ];
            (table(&header, &cells), rows.len(), "queue", "queues")
        }
        View::Operators => {
            let rows: Vec<OperatorRow> = rows_of(rows)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.operator.clone(),
                        r.chosen.clone(),
                        r.state.clone(),
                        r.since_secs.map_or_else(|| "-".into(), |s| s.to_string()),
                        r.conversations.to_string(),
                        if r.registered { "yes" } else { "no" }.to_string(),
                    ]
                })
                .collect();
            let header = [
                "Operator",
                "Chosen",
                "State",
                "Since(s)",
                "Conversations",
                "Registered",
            ];
            (table(&header, &cells), rows.len(), "operator", "operators")
        }
        View::Chats => {
            let rows: Vec<ChatRow> = rows_of(rows)?;
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.site.clone(),
                        r.queue.clone(),
                        r.state.clone(),
                        opt(&r.visitor),
                        opt(&r.operator),
                        r.for_secs.to_string(),
                    ]
                })
                .collect();
            let header = [
                "Chat", "Site", "Queue", "State", "Visitor", "Operator", "For(s)",
            ];
            (
                table(&header, &cells),
                rows.len(),
                "open chat",
                "open chats",
            )
        }
    };
    Ok(format!("{body}\n{}", count(n, one, many)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    // ---- the protocol ----

    #[test]
    fn requests_parse_and_garbage_is_refused_without_a_panic() {
        assert_eq!(
            parse_request(br#"{"show":"calls"}"#),
            Ok(Request::Show(View::Calls))
        );
        assert_eq!(
            parse_request(b" {\"hangup\":\"a84b4c76e66710@pc33\"} \r"),
            Ok(Request::Hangup("a84b4c76e66710@pc33".into()))
        );
        for garbage in [
            &b""[..],
            b"\xff\xfe\x00",
            b"{",
            b"[]",
            b"show calls",
            br#"{"show":"everything"}"#,
            br#"{"show":"calls","hangup":"x"}"#,
            br#"{"hangup":42}"#,
        ] {
            let e = parse_request(garbage).unwrap_err();
            assert!(e.starts_with("bad request: "), "{e}");
        }
        // What goes over the wire, both ways.
        assert_eq!(
            encode(&Request::Show(View::Registrations)),
            b"{\"show\":\"registrations\"}\n"
        );
        assert_eq!(encode(&Response::Done), b"\"done\"\n");
        assert_eq!(
            encode(&Response::Error("no call x".into())),
            b"{\"error\":\"no call x\"}\n"
        );
    }

    #[tokio::test]
    async fn a_request_line_is_at_most_4_kib() {
        let mut fits = br#"{"show":"queues"}"#.to_vec();
        fits.resize(MAX_REQUEST, b' ');
        fits.push(b'\n');
        assert_eq!(
            read_request(&fits[..]).await,
            Ok(Request::Show(View::Queues))
        );
        // The end of the stream ends the line too.
        assert_eq!(
            read_request(&br#"{"show":"chats"}"#[..]).await,
            Ok(Request::Show(View::Chats))
        );
        let long = vec![b' '; MAX_REQUEST + 1];
        assert_eq!(
            read_request(&long[..]).await,
            Err("request longer than 4096 bytes".into())
        );
        assert_eq!(read_request(&b""[..]).await, Err("empty request".into()));
    }

    // ---- tables ----

    fn call(id: &str, state: CallState) -> CallRow {
        CallRow {
            call_id: id.into(),
            caller: "+36301234567".into(),
            called: "+3612345678".into(),
            state,
            flow: Some("hotline".into()),
            operator: None,
            queue: None,
            transfer_to: None,
            duration_secs: 7,
            monitor: None,
            recording: false,
            record_on_demand: false,
        }
    }

    #[test]
    fn tables_have_aligned_columns_a_header_and_a_count_line() {
        let t = table(
            &["Name", "N"],
            &[
                vec!["anna".into(), "1".into()],
                vec!["bartholomew".into(), "22".into()],
            ],
        );
        assert_eq!(t, "Name         N\nanna         1\nbartholomew  22");

        let one = CallRow {
            operator: Some("anna".into()),
            queue: Some("support".into()),
            duration_secs: 125,
            ..call("a84b@pc33", CallState::Talking)
        };
        let out = render(View::Calls, serde_json::to_value([&one]).unwrap()).unwrap();
        assert_eq!(
            out,
            "Call-ID    Caller        Called       State              Operator  Queue    Duration(s)\n\
             a84b@pc33  +36301234567  +3612345678  talking with anna  anna      support  125\n\
             1 active call"
        );
        let none = render(View::Calls, serde_json::json!([])).unwrap();
        assert_eq!(
            none,
            "Call-ID  Caller  Called  State  Operator  Queue  Duration(s)\n0 active calls"
        );
        let three = render(
            View::Calls,
            serde_json::to_value([&one, &one, &one]).unwrap(),
        )
        .unwrap();
        assert!(three.ends_with("\n3 active calls"), "{three}");

        let q = QueueRow {
            queue: "support".into(),
            waiting: 2,
            longest_wait_secs: 41,
            online: 1,
            busy: 3,
            wrap_up: 1,
            paused: 0,
            away: 2,
        };
        let out = render(View::Queues, serde_json::to_value([&q]).unwrap()).unwrap();
        assert_eq!(
            out,
            "Queue    Waiting  Longest(s)  Online  Busy  Wrap-up  Paused  Away\n\
             support  2        41          1       3     1        0       2\n\
             1 queue"
        );
        let op = OperatorRow {
            operator: "bela".into(),
            chosen: "online".into(),
            state: "wrap-up".into(),
            since_secs: None,
            conversations: 2,
            registered: true,
        };
        let out = render(View::Operators, serde_json::to_value([&op, &op]).unwrap()).unwrap();
        assert!(
            out.starts_with("Operator  Chosen  State    Since(s)  Conversations  Registered\n")
        );
        assert!(
            out.contains("\nbela      online  wrap-up  -         2              yes\n"),
            "{out}"
        );
        assert!(out.ends_with("\n2 operators"));
        // Rows that are not the view's are an error, not a panic.
        assert!(render(View::Chats, serde_json::to_value([&op]).unwrap()).is_err());
    }

    #[test]
    fn the_state_column_says_where_the_call_is() {
        let with = |state, operator: Option<&str>, queue: Option<&str>, to: Option<&str>| {
            describe(&CallRow {
                operator: operator.map(Into::into),
                queue: queue.map(Into::into),
                transfer_to: to.map(Into::into),
                ..call("x", state)
            })
        };
        assert_eq!(with(CallState::InFlow, None, None, None), "in flow hotline");
        assert_eq!(
            with(CallState::Waiting, None, Some("sales"), None),
            "waiting in queue sales"
        );
        assert_eq!(
            with(CallState::Ringing, Some("anna"), None, None),
            "ringing anna"
        );
        assert_eq!(
            with(CallState::Held, Some("anna"), None, None),
            "held by anna"
        );
        assert_eq!(
            with(CallState::Transferring, Some("anna"), None, Some("bela")),
            "transferring to bela"
        );
        // A supervisor on the call says so (and only then is `monitor` in the JSON).
        let monitored = CallRow {
            operator: Some("anna".into()),
            monitor: Some(Monitoring {
                supervisor: "sara".into(),
                mode: "whisper".into(),
            }),
            ..call("x", CallState::Talking)
        };
        assert_eq!(describe(&monitored), "talking with anna (sara whisper)");
        let json = serde_json::to_value(&monitored).unwrap();
        assert_eq!(json["monitor"]["mode"], "whisper");
        let json = serde_json::to_value(call("x", CallState::InFlow)).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "call_id",
                "called",
                "caller",
                "duration_secs",
                "flow",
                "operator",
                "queue",
                "state",
                "transfer_to"
            ]
        );
        assert_eq!(json["state"], "in_flow");
    }

    // ---- the registry ----

    fn live(phase: Phase) -> LiveCall {
        LiveCall {
            caller: "+36301234567".into(),
            called: "+3612345678".into(),
            flow: Some("hotline".into()),
            arrived: Instant::now(),
            key: CallerId(9),
            control: mpsc::channel(1).0,
            phase,
            queue: Some("support".into()),
            monitor: None,
            recording: false,
        }
    }

    fn connected(held: bool, consult: Option<ConsultState>) -> (String, ConnectedCall) {
        let c = ConnectedCall {
            call_id: "c1".into(),
            caller: "+36301234567".into(),
            queue: Some("support".into()),
            since_ms: 0,
            held,
            note: None,
            consult,
            control: mpsc::channel(1).0,
            record: hotline_ivr::RecordMode::Off,
            recording: false,
        };
        ("anna".into(), c)
    }

    #[test]
    fn a_row_takes_hold_consultation_and_ringing_from_where_they_are_known() {
        let flow = live(Phase::Flow);
        let r = call_row(
            "c1",
            &flow,
            None,
            None,
            flow.arrived + Duration::from_secs(30),
        );
        assert_eq!((r.state, r.operator.as_deref()), (CallState::InFlow, None));
        assert_eq!(r.duration_secs, 30);
        let now = Instant::now();
        let r = call_row("c1", &live(Phase::Queued), None, None, now);
        assert_eq!(
            (r.state, r.queue.as_deref()),
            (CallState::Waiting, Some("support"))
        );
        let anna = "anna".to_string();
        let r = call_row("c1", &live(Phase::Queued), None, Some(&anna), now);
        assert_eq!(
            (r.state, r.operator.as_deref()),
            (CallState::Ringing, Some("anna"))
        );
        let talking = Phase::Operator("anna".into());
        let r = call_row(
            "c1",
            &live(talking.clone()),
            Some(&connected(false, None)),
            None,
            now,
        );
        assert_eq!(
            (r.state, r.operator.as_deref()),
            (CallState::Talking, Some("anna"))
        );
        let r = call_row(
            "c1",
            &live(talking.clone()),
            Some(&connected(true, None)),
            None,
            now,
        );
        assert_eq!(r.state, CallState::Held);
        let consult = ConsultState::Ringing {
            with: "bela".into(),
        };
        let r = call_row(
            "c1",
            &live(talking),
            Some(&connected(true, Some(consult))),
            None,
            now,
        );
        assert_eq!(
            (r.state, r.transfer_to.as_deref()),
            (CallState::Transferring, Some("bela"))
        );
        let r = call_row(
            "c1",
            &live(Phase::External("+3615550100".into())),
            None,
            None,
            now,
        );
        assert_eq!(
            (r.state, r.transfer_to.as_deref()),
            (CallState::Transferring, Some("+3615550100"))
        );
    }

    #[test]
    fn the_registry_follows_the_session_outputs_and_forgets_an_ended_call() {
        let calls = LiveCalls::default();
        let phase = |calls: &LiveCalls| {
            let s = calls.snapshot();
            (s[0].1.phase.clone(), s[0].1.queue.clone())
        };
        {
            let _tracked = calls.track(
                "c1",
                LiveCall {
                    queue: None,
                    ..live(Phase::Flow)
                },
            );
            calls.note(
                "c1",
                &Output::Queue(QueueOut::Enqueue {
                    queue: "sales".into(),
                    priority: 0,
                    skill: None,
                    first: None,
                }),
            );
            assert_eq!(phase(&calls), (Phase::Queued, Some("sales".into())));
            calls.note(
                "c1",
                &Output::Connected {
                    operator: "bela".into(),
                    queue: Some("sales".into()),
                    note: None,
                    record: None,
                },
            );
            assert_eq!(phase(&calls).0, Phase::Operator("bela".into()));
            // Outputs that say nothing about the phase leave it.
            calls.note("c1", &Output::Answered { at_ms: 1 });
            assert_eq!(phase(&calls).0, Phase::Operator("bela".into()));
            calls.note(
                "c1",
                &Output::Disconnected {
                    operator: "bela".into(),
                },
            );
            assert_eq!(phase(&calls), (Phase::Flow, Some("sales".into())));
            // Another call's outputs don't touch it.
            calls.note("c2", &Output::Queue(QueueOut::Leave));
            assert!(calls.control("c1").is_some());
        }
        assert!(calls.snapshot().is_empty());
        assert!(calls.control("c1").is_none());
    }

    // ---- the socket, end to end ----

    /// A daemon with one call in progress.
    #[derive(Default)]
    struct Fake {
        hung_up: Mutex<Vec<String>>,
    }

    fn fake_call() -> CallRow {
        CallRow {
            operator: Some("anna".into()),
            queue: Some("support".into()),
            duration_secs: 42,
            ..call("a84b4c76e66710@pc33", CallState::Talking)
        }
    }

    impl LiveState for Fake {
        fn calls(&self) -> BoxFuture<'_, Result<Vec<CallRow>, String>> {
            let gone = self.hung_up.lock().unwrap().contains(&fake_call().call_id);
            Box::pin(async move { Ok(if gone { vec![] } else { vec![fake_call()] }) })
        }
        fn registrations(&self) -> BoxFuture<'_, Result<Vec<RegistrationRow>, String>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn queues(&self) -> BoxFuture<'_, Result<Vec<QueueRow>, String>> {
            Box::pin(async { Err("the queue task is gone".into()) })
        }
        fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorRow>, String>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn chats(&self) -> BoxFuture<'_, Result<Vec<ChatRow>, String>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn hangup<'a>(&'a self, call_id: &'a str) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                if call_id != fake_call().call_id {
                    return Err(format!("no call {call_id}"));
                }
                self.hung_up.lock().unwrap().push(call_id.to_string());
                Ok(())
            })
        }
    }

    fn temp_dir() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hotline-control-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Sends raw bytes and reads the raw answer.
    async fn raw(path: &Path, bytes: &[u8]) -> String {
        let mut s = UnixStream::connect(path).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn show_and_hangup_ask_the_running_daemon() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir();
        let path = dir.join(SOCKET_NAME);
        let paths = client_paths(&dir, None);
        assert_eq!(
            paths,
            [path.clone(), PathBuf::from("/run/hotline/control.sock")]
        );
        let fake = Arc::new(Fake::default());
        let socket = listen(&path, fake.clone(), Duration::from_millis(300)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // The table, as the admin reads it.
        let table = show_at(&paths, View::Calls, false).await.unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("Call-ID  "), "{table}");
        assert_eq!(
            lines[1],
            "a84b4c76e66710@pc33  +36301234567  +3612345678  \
             talking with anna  anna      support  42"
        );
        assert_eq!(lines[2], "1 active call");
        // JSON: an array of objects with the documented keys.
        let json: serde_json::Value =
            serde_json::from_str(&show_at(&paths, View::Calls, true).await.unwrap()).unwrap();
        assert_eq!(json[0]["call_id"], "a84b4c76e66710@pc33");
        assert_eq!(json[0]["state"], "talking");
        assert_eq!(json[0]["duration_secs"], 42);
        // The daemon's own failure reaches the admin.
        assert_eq!(
            show_at(&paths, View::Queues, false).await,
            Err("the queue task is gone".into())
        );

        // Garbage, a silent client and a line too long get an error; the server goes on.
        let bad = raw(&path, b"hello\n").await;
        assert!(bad.starts_with("{\"error\":\"bad request: "), "{bad}");
        let mut silent = UnixStream::connect(&path).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(5), silent.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert!(out.contains("no request line within"), "{out}");
        // (One byte over: bytes the server never reads would make its close a reset.)
        let endless = raw(&path, &vec![b'x'; MAX_REQUEST + 1]).await;
        assert_eq!(endless, "{\"error\":\"request longer than 4096 bytes\"}\n");

        // Hang-up: an unknown call, then the one in progress, which is gone afterwards.
        assert_eq!(
            hangup_at(&paths, "nosuchcall@pc33").await,
            Err("no call nosuchcall@pc33".into())
        );
        assert_eq!(
            hangup_at(&paths, "a84b4c76e66710@pc33").await,
            Ok("hung up a84b4c76e66710@pc33".into())
        );
        assert_eq!(*fake.hung_up.lock().unwrap(), ["a84b4c76e66710@pc33"]);
        let after = show_at(&paths, View::Calls, false).await.unwrap();
        assert!(after.ends_with("\n0 active calls"), "{after}");

        // A second daemon does not take the socket of a running one.
        let second = listen(&path, Arc::new(Fake::default()), REQUEST_WAIT);
        assert_eq!(second.err().map(|e| e.kind()), Some(ErrorKind::AddrInUse));

        // A clean exit removes the socket: the client says the daemon is not running.
        drop(socket);
        assert!(!path.exists());
        let err = show_at(std::slice::from_ref(&path), View::Calls, false)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            format!(
                "hotline is not running (no control socket at {})",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_stale_socket_of_a_crashed_daemon_is_replaced() {
        let dir = temp_dir();
        let path = dir.join(SOCKET_NAME);
        // A socket file nobody listens on any more.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let err = hangup_at(std::slice::from_ref(&path), "x")
            .await
            .unwrap_err();
        assert!(err.starts_with("hotline is not running"), "{err}");

        let socket = listen(&path, Arc::new(Fake::default()), REQUEST_WAIT).unwrap();
        assert!(
            show_at(std::slice::from_ref(&path), View::Calls, false)
                .await
                .unwrap()
                .ends_with("1 active call")
        );
        drop(socket);
        // A plain file in the way is never deleted.
        std::fs::write(&path, "not a socket").unwrap();
        assert!(listen(&path, Arc::new(Fake::default()), REQUEST_WAIT).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_socket_is_in_the_runtime_directory_under_systemd_else_the_state_directory() {
        let state = Path::new("/var/lib/hotline");
        let run = OsString::from("/run/hotline");
        assert_eq!(
            server_path(state, Some(&run)),
            Path::new("/run/hotline/control.sock")
        );
        assert_eq!(
            server_path(state, None),
            Path::new("/var/lib/hotline/control.sock")
        );
        assert_eq!(
            server_path(state, Some(&OsString::from("/run/a:/run/b"))),
            Path::new("/run/a/control.sock")
        );
        assert_eq!(
            client_paths(state, Some(&run)),
            [Path::new("/run/hotline/control.sock")]
        );
        assert_eq!(
            client_paths(Path::new("./var"), None),
            [
                Path::new("./var/control.sock"),
                Path::new("/run/hotline/control.sock")
            ]
        );
    }
}
