//! What the web app needs from the telephony side of the daemon, which implements
//! [`Telephony`]: operator states, queue figures, SIP accounts, calls.

use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the console needs from the telephony side of the daemon.
pub trait Telephony: Send + Sync + 'static {
    /// online, away, pause or offline; busy and wrap-up follow calls.
    fn set_operator_state<'a>(
        &'a self,
        operator: &'a str,
        state: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The operator's status as the queues see it (online, busy, wrap-up, …).
    fn operator_status<'a>(&'a self, operator: &'a str) -> BoxFuture<'a, Option<String>>;
    /// Every queue's figures (waiting, longest wait, online, busy, paused …) as JSON.
    fn queue_figures(&self) -> BoxFuture<'_, Option<serde_json::Value>>;
    /// A new operator account with a SIP password (only digest HA1s are kept).
    fn add_operator<'a>(&'a self, form: &'a OperatorForm) -> BoxFuture<'a, Result<i64, String>>;
    /// Rings the operator's phone, then the customer through the trunk (the hotline number,
    /// or the operator's own number, as caller ID). `callback`: the callback-list entry the
    /// call works off, already claimed by the operator; the call's outcome is recorded on
    /// it. Returns the call id, or why the call could not start.
    fn call_customer<'a>(
        &'a self,
        operator: &'a str,
        number: &'a str,
        callback: Option<i64>,
    ) -> BoxFuture<'a, Result<String, String>>;
    /// How long an entry of `queue` stays off the list after a failed attempt, in ms.
    fn callback_hide_ms(&self, queue: Option<&str>) -> i64;
    /// Whether the dial plan lets Hotline dial `number` (the number as it would be
    /// dialled), or why not: numbers operators put on the callback list must pass it.
    fn check_dialable(&self, number: &str) -> Result<String, String> {
        Ok(number.to_string())
    }
    /// Every queue's name and display name (chat topics, invite and transfer lists).
    fn queue_names(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Queues with a service-level target of their own, in seconds.
    fn queue_targets(&self) -> std::collections::BTreeMap<String, i64> {
        Default::default()
    }
    /// The operators of a queue (who may be offered its chats).
    fn queue_members(&self, _queue: &str) -> Vec<String> {
        Vec::new()
    }
    /// The operator's open chats: with any, the queues offer them no voice call.
    fn set_chat_load<'a>(&'a self, _operator: &'a str, _chats: i64) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The visual sessions whose page the operator has open: with any, the queues offer
    /// them no voice call.
    fn set_visual_load<'a>(&'a self, _operator: &'a str, _open: u8) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The operator's connected call for the call panel, as JSON (`call_id`, `caller`,
    /// `queue`, `since_ms`, `held`, `note`, `note_from`, `consult`, `targets`), or `None`.
    fn operator_call<'a>(&'a self, _operator: &'a str) -> BoxFuture<'a, Option<serde_json::Value>> {
        Box::pin(async { None })
    }
    /// Ends the operator's wrap-up now ("Ready for the next call").
    fn end_wrap_up<'a>(&'a self, _operator: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("Wrap-up is not kept here.".to_string()) })
    }
    /// Holds, resumes or transfers the operator's connected call.
    fn call_control<'a>(
        &'a self,
        _operator: &'a str,
        _control: CallControl,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("calls are not controlled from here".to_string()) })
    }
    /// The supervisors' live board (PRODUCT S1) as JSON: `queues`, `operators`, `calls`
    /// and `chats`, each a list of rows as `hotline show` prints them; `None` when the
    /// telephony side cannot answer now.
    fn board(&self) -> BoxFuture<'_, Option<serde_json::Value>> {
        Box::pin(async { None })
    }
    /// A supervisor listens to, whispers into, barges into, takes over or leaves a call
    /// (PRODUCT S1): their phone (SIP or this console) is rung and answers by itself.
    fn monitor_call<'a>(
        &'a self,
        _who: Supervisor<'a>,
        _call_id: &'a str,
        _action: MonitorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("Calls cannot be monitored here.".to_string()) })
    }
    /// A supervisor starts or stops recording a call whose queue records on demand
    /// (PRODUCT S2).
    fn record_call<'a>(
        &'a self,
        _who: Supervisor<'a>,
        _call_id: &'a str,
        _on: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("Calls cannot be recorded here.".to_string()) })
    }
    /// A message from the operator's page to their browser phone (PRODUCT T7). Answers
    /// and news go back through `page.to_page`, now or later.
    fn phone_message<'a>(
        &'a self,
        _operator: &'a str,
        page: &'a PageLink,
        _message: PhoneFromPage,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = page
                .to_page
                .send(PhoneToPage::Phone {
                    browser: false,
                    message: Some("This server has no browser phone.".to_string()),
                })
                .await;
        })
    }
    /// The page `page_id` is gone (closed, reloaded, network lost): it is no longer the
    /// operator's phone; a call on it waits for the page to come back.
    fn page_closed<'a>(&'a self, _operator: &'a str, _page_id: u64) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// One console tab as the browser phone sees it: its id (unique in the daemon) and the
/// way to its WebSocket.
#[derive(Clone, Debug)]
pub struct PageLink {
    pub id: u64,
    pub to_page: tokio::sync::mpsc::Sender<PhoneToPage>,
}

/// What the operator's page tells their browser phone, over /console/live as JSON with a
/// `type` (`{"type":"answer","leg":7,"sdp":"v=0…"}`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PhoneFromPage {
    /// This tab is the operator's phone from now on (`on`), or no longer: their SIP
    /// phone is again.
    UseBrowser { on: bool },
    /// Take the ringing leg (or the held one this tab came back for), with the page's
    /// WebRTC offer.
    Answer { leg: u64, sdp: String },
    /// Refuse the ringing leg: a reject, as the queue counts them (Q2).
    Decline { leg: u64 },
    /// End the leg the operator is talking on.
    Hangup { leg: u64 },
    /// A keypad digit (0-9, *, #, A-D) for the caller, as RFC 4733 events.
    Dtmf { leg: u64, digit: char },
}

/// What the browser phone tells the operator's page, as JSON with a `type`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PhoneToPage {
    /// Whether this tab is the operator's phone now, and why not when it was asked to be.
    Phone {
        browser: bool,
        message: Option<String>,
    },
    /// A call rings this tab. `caller` is the number shown (the customer's, or for a
    /// call the operator places, the number they are calling); `call_id` links the call
    /// panel. `resume`: a call of theirs that lost its page waits on hold. `auto_answer`:
    /// the operator placed this call (click-to-call): the page answers at once.
    Ring {
        leg: u64,
        caller: String,
        call_id: Option<String>,
        resume: bool,
        auto_answer: bool,
    },
    /// The daemon's WebRTC answer to the page's offer.
    Answered { leg: u64, sdp: String },
    /// Audio flows.
    Connected { leg: u64 },
    /// The leg is over (the caller hung up, another phone took the call, ring timeout,
    /// or the operator hung up): `reason` in words for the panel.
    Ended { leg: u64, reason: String },
    /// A message the operator should read (a refused answer, a failed connection).
    Error { leg: Option<u64>, message: String },
}

/// The admin's form for an operator's SIP account.
#[derive(Clone, Debug)]
pub struct OperatorForm {
    pub name: String,
    pub sip_user: String,
    pub display_name: String,
    /// Concurrent chats; `None`: the default.
    pub chat_capacity: Option<i64>,
    pub sip_password: String,
}

/// What a supervisor does on a call from the live board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorAction {
    Listen,
    Whisper,
    Barge,
    TakeOver,
    Stop,
}

/// Who monitors: the console user (a queue's `supervisors` names users), whether they
/// are an admin (every queue is theirs), and their operator account, whose phone joins.
#[derive(Clone, Copy, Debug)]
pub struct Supervisor<'a> {
    pub user: &'a str,
    pub admin: bool,
    pub operator: &'a str,
}

/// What the console asks of the operator's connected call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallControl {
    /// Hold (`true`: the caller hears the queue's music, the operator nothing) or resume.
    Hold(bool),
    /// Hand the caller on; the note goes to whoever takes them. `consult`: talk with
    /// them first while the caller holds.
    Transfer {
        to: TransferTo,
        note: String,
        consult: bool,
    },
    /// Complete the consultation (`true`: the caller goes to the consulted party) or
    /// cancel it (the operator has the caller back).
    EndConsult(bool),
    /// End the call (for an operator whose SIP phone is out of reach).
    Hangup,
    /// Start (`true`) or stop recording the call, where its queue records on demand.
    Record(bool),
}

/// Where the console sends a caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTo {
    Operator(String),
    Queue(String),
    /// As typed; the dial plan decides.
    Number(String),
}

impl TransferTo {
    /// `operator:NAME`, `queue:NAME` or `number:TEXT`, as the panel's form sends them.
    pub(crate) fn parse(value: &str) -> Option<TransferTo> {
        let (kind, what) = value.split_once(':')?;
        let what = what.trim();
        if what.is_empty() {
            return None;
        }
        match kind {
            "operator" => Some(TransferTo::Operator(what.to_string())),
            "queue" => Some(TransferTo::Queue(what.to_string())),
            "number" => Some(TransferTo::Number(what.to_string())),
            _ => None,
        }
    }
}
