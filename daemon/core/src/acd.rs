//! The queue and distribution engine (ACD), sans-IO: callers wait in queues, operators
//! choose a state, and the engine decides who rings whom. Inputs are method calls carrying
//! `now`; outputs are [`AcdAction`]s from [`Acd::poll_action`] and one deadline from
//! [`Acd::poll_timeout`] (ring timeouts, wrap-up ends) that the driver answers with
//! [`Acd::handle_timeout`]. No clock reads, no I/O: the daemon rings phones, relays media and
//! writes missed calls; tests drive the engine with a virtual clock.
//!
//! # Operators
//! An operator chooses [`OperatorState`] (online, away, pause, offline); busy (in a voice
//! call) and wrap-up (for the queue's `wrap_up` after a call, then back automatically) are
//! derived, see [`OperatorStatus`]. An operator gets a voice call only when all of these
//! hold: chosen state online, phone registered ([`Acd::set_reachable`]), no chat
//! ([`Acd::set_chats`]: voice only without another conversation), not ringing, not in a
//! call, not in wrap-up. Such an operator is *available*.
//!
//! # Order within a queue
//! Caller priority descending (VIP first), then the queue's [`CallbackPolicy`] between
//! [`CallerKind::Callback`] and [`CallerKind::Inbound`] of the same priority: callbacks
//! first, live callers first, or interleaved by arrival, where a callback's arrival is the
//! original missed call's (see [`Acd::enqueue_callback`]); then arrival (FIFO). A ringing
//! caller keeps its place; position 1 is next. Connected callers have left the queue.
//!
//! # Room for automatic callbacks
//! The daemon places a callback only when [`Acd::callback_room`] says a free operator is
//! there for it: never more callbacks waiting than available members, never more in the
//! queue (waiting, ringing or connected) than the queue's `callback_max_share` of its
//! staffed members, and under [`CallbackPolicy::LiveFirst`] none while live callers wait.
//!
//! # Distribution
//! After every input, while some queue's first *waiting* (not ringing) caller has an
//! available member: among all queues' first waiting callers, the one with the highest
//! priority, then the earliest arrival, is offered to its queue's available member with the
//! longest idle time — idle since the end of the operator's last call, or since they went
//! online, whichever is later; ties go to the lower member priority, then the name. A caller
//! is not offered again to an operator who failed it until every other available member has
//! been tried (then a new round begins). A ring ends by [`Acd::ring_answered`] (the operator
//! is busy), [`Acd::ring_failed`] or the queue's `ring_timeout` (→ `CancelRing`, counted as
//! no answer); a failed caller is back at its place, waiting.
//!
//! # Misses and automatic pause
//! [`RingFailure::NoAnswer`], [`RingFailure::Busy`], [`RingFailure::Unreachable`] and ring
//! timeouts are misses; [`RingFailure::Rejected`] is the operator's own decision and is not.
//! `max_misses_before_pause` misses in a row (of the queue whose caller was missed; 0
//! disables) pause the operator ([`AcdAction::OperatorPaused`]) and reset the counter; an
//! answered call resets it too. A ring cancelled because the operator became unavailable or
//! the caller left is no miss.
//!
//! # Direct callers
//! [`Acd::enqueue_direct`] enters a caller whose call belongs to one operator (direct
//! callback, PRODUCT C5): when that operator is available at that moment, the caller's
//! first ring goes to them, ahead of every other offer and whether or not they are a
//! member of the caller's queue. Otherwise, and after that ring fails or times out, the
//! caller is an ordinary caller of the queue with the place it got on entry (a failed
//! direct ring counts like any failed ring: a miss, and that operator is tried last).
//! [`Acd::set_queue`] on the caller's queue during a direct ring to an operator who is not
//! a member cancels that ring, as any ring to a non-member; the caller waits on.
//!
//! # Expected wait
//! `expected_wait(position) = position × mean_handling / max(1, staffed)` where
//! `mean_handling` is the mean handling time (talk time plus the queue's wrap-up) of the
//! last [`HANDLING_WINDOW`] calls handled in the queue ([`DEFAULT_HANDLING`] before any), and
//! `staffed` the members whose chosen state is online and whose phone is registered,
//! including those ringing, busy or in wrap-up (they will take the next calls too).
//! [`AcdAction::Waiting`] goes out on entry and then only when a caller's position changes or
//! its estimate moves by [`WAIT_REPORT_STEP`] or more since the last report.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// How long an operator's phone rings before the engine cancels it.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(20);
/// Misses in a row before the automatic pause.
pub const DEFAULT_MAX_MISSES: u32 = 2;
/// Wrap-up after a call.
pub const DEFAULT_WRAP_UP: Duration = Duration::from_secs(10);
/// Concurrent chats per operator (admins set 1..=10).
pub const DEFAULT_CHAT_CAPACITY: u8 = 3;
/// The largest chat capacity an admin may set.
pub const MAX_CHAT_CAPACITY: u8 = 10;
/// Handling time assumed before a queue has handled any call.
pub const DEFAULT_HANDLING: Duration = Duration::from_secs(120);
/// How many recent calls the mean handling time covers.
pub const HANDLING_WINDOW: usize = 20;
/// The smallest change of an estimate worth a new [`AcdAction::Waiting`].
pub const WAIT_REPORT_STEP: Duration = Duration::from_secs(15);

/// A caller as the daemon numbers them (one per call leg waiting in a queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallerId(pub u64);

/// Where a waiting caller came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallerKind {
    /// A customer who called and waits on the line.
    Inbound,
    /// A callback the system places (missed call, callback request).
    Callback,
}

/// The order between callbacks and live callers of the same priority (seed 001: callbacks
/// may be put "at the front of the call logic").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CallbackPolicy {
    /// Callbacks before every waiting live caller.
    CallbacksFirst,
    /// By arrival: a callback counts from the customer's original call.
    #[default]
    Interleaved,
    /// Live callers first; callbacks only take operators nobody waits for.
    LiveFirst,
}

/// One operator in a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub operator: String,
    /// Lower is preferred when idle times tie.
    pub priority: u8,
    /// What this member can handle in this queue (e.g. a language); a caller who needs a
    /// skill is offered only to members who have it.
    pub skills: BTreeSet<String>,
}

impl Member {
    pub fn new(operator: impl Into<String>, priority: u8) -> Member {
        Member {
            operator: operator.into(),
            priority,
            skills: BTreeSet::new(),
        }
    }
}

/// A queue and its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: String,
    /// An operator listed twice counts once (the first entry).
    pub members: Vec<Member>,
    /// How callbacks and live callers of the same priority are ordered.
    pub callback_policy: CallbackPolicy,
    /// Percent (1–100) of the staffed members automatic callbacks may occupy at once.
    pub callback_max_share: u8,
    pub ring_timeout: Duration,
    /// 0: never pause automatically.
    pub max_misses_before_pause: u32,
    pub wrap_up: Duration,
    /// Refuse a caller on entry when no member is online with a registered phone
    /// (otherwise the caller waits: someone may log in).
    pub refuse_when_nobody: bool,
}

impl QueueConfig {
    /// A queue with no members and the defaults.
    pub fn new(name: impl Into<String>) -> QueueConfig {
        QueueConfig {
            name: name.into(),
            members: Vec::new(),
            callback_policy: CallbackPolicy::Interleaved,
            callback_max_share: 50,
            ring_timeout: DEFAULT_RING_TIMEOUT,
            max_misses_before_pause: DEFAULT_MAX_MISSES,
            wrap_up: DEFAULT_WRAP_UP,
            refuse_when_nobody: false,
        }
    }

    /// Adds a member (builder style).
    pub fn with_member(mut self, operator: impl Into<String>, priority: u8) -> QueueConfig {
        self.members.push(Member::new(operator, priority));
        self
    }

    /// Adds a member with skills (builder style).
    pub fn with_skilled_member(
        mut self,
        operator: impl Into<String>,
        priority: u8,
        skills: impl IntoIterator<Item = impl Into<String>>,
    ) -> QueueConfig {
        let mut m = Member::new(operator, priority);
        m.skills = skills.into_iter().map(Into::into).collect();
        self.members.push(m);
        self
    }
}

/// What an admin sets per operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Concurrent chats, 1..=[`MAX_CHAT_CAPACITY`].
    pub chat_capacity: u8,
}

impl Default for OperatorConfig {
    fn default() -> OperatorConfig {
        OperatorConfig {
            chat_capacity: DEFAULT_CHAT_CAPACITY,
        }
    }
}

/// The state an operator chooses (console / API). An operator the engine has never heard
/// of is offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperatorState {
    Online,
    Away,
    Pause,
    Offline,
}

impl OperatorState {
    /// The name it is chosen, stored and sent under.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorState::Online => "online",
            OperatorState::Away => "away",
            OperatorState::Pause => "pause",
            OperatorState::Offline => "offline",
        }
    }

    pub fn parse(name: &str) -> Option<OperatorState> {
        [
            OperatorState::Online,
            OperatorState::Away,
            OperatorState::Pause,
            OperatorState::Offline,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// The state shown for an operator: the chosen one, unless a voice call or its wrap-up
/// takes precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperatorStatus {
    Online,
    /// In a voice call.
    Busy,
    /// After a call, for the queue's `wrap_up`.
    WrapUp,
    Away,
    Pause,
    Offline,
}

impl From<OperatorState> for OperatorStatus {
    fn from(s: OperatorState) -> OperatorStatus {
        match s {
            OperatorState::Online => OperatorStatus::Online,
            OperatorState::Away => OperatorStatus::Away,
            OperatorState::Pause => OperatorStatus::Pause,
            OperatorState::Offline => OperatorStatus::Offline,
        }
    }
}

/// Why a ring ended without an answer (as the daemon saw it on the operator's leg).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingFailure {
    /// The phone rang and nobody answered (e.g. 408/480).
    NoAnswer,
    /// The operator declined (e.g. 603).
    Rejected,
    /// The phone said busy (486/600).
    Busy,
    /// No registration, transport error, 404…
    Unreachable,
}

impl RingFailure {
    /// Whether it counts towards the automatic pause (everything but a rejection).
    pub fn is_miss(self) -> bool {
        !matches!(self, RingFailure::Rejected)
    }
}

/// Why the engine paused an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PauseReason {
    /// `count` rings missed in a row.
    MissedRings { count: u32 },
}

/// What the engine asks of the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdAction {
    /// Ring the operator's phone for the caller; report the outcome with
    /// [`Acd::ring_answered`] / [`Acd::ring_failed`].
    Ring {
        caller: CallerId,
        operator: String,
        queue: String,
    },
    /// Stop ringing (ring timeout, the caller left, the operator became unavailable).
    /// Don't report a failure for this ring; an answer that crosses the cancel gets
    /// `Err(NotRinging)` from [`Acd::ring_answered`]: hang that leg up.
    CancelRing { caller: CallerId, operator: String },
    /// The operator answered: bridge the caller (the IVR's `QueueStatus::Connected`).
    Connected { caller: CallerId, operator: String },
    /// The caller's place and estimate (the IVR's `QueueStatus::Waiting`).
    Waiting {
        caller: CallerId,
        position: u32,
        expected_wait: Duration,
    },
    /// The caller can't wait in that queue (unknown, refused, removed): the IVR's
    /// `QueueStatus::Unavailable`.
    Unavailable { caller: CallerId },
    /// The engine paused the operator.
    OperatorPaused {
        operator: String,
        reason: PauseReason,
    },
}

/// A caller's place, as returned by [`Acd::enqueue`] (and sent as [`AcdAction::Waiting`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// 1 is next.
    pub position: u32,
    pub expected_wait: Duration,
}

/// What the daemon needs to record a missed call when a caller leaves unanswered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftQueue {
    pub queue: String,
    pub waited: Duration,
    /// An operator's phone was ringing for the caller when they left.
    pub was_ringing: bool,
}

/// Live figures of one queue (seed 004's transfer dialog). The operator counts cover the
/// queue's members and partition those not offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct QueueFigures {
    /// Callers in the queue (waiting or ringing).
    pub waiting: u32,
    /// The longest current wait (zero when nobody waits).
    pub longest_wait: Duration,
    /// Chosen state online and free for more: not in a call or wrap-up, chats below capacity.
    pub online: u32,
    /// In a voice call or its wrap-up, or chats at capacity.
    pub busy: u32,
    pub paused: u32,
    pub away: u32,
    /// Of `online`: could take a voice call right now (registered phone, no chat, not ringing).
    pub available: u32,
}

/// One operator for the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorView {
    pub state: OperatorStatus,
    /// When `state` began; `None` for an operator only configured so far.
    pub since: Option<Instant>,
    /// Queues the operator is a member of, by name.
    pub queues: Vec<String>,
    /// Misses in a row since the last answered call or automatic pause.
    pub misses: u32,
    pub reachable: bool,
    pub chats: u8,
    /// Visual sessions whose page the operator has open.
    pub visual_sessions: u8,
    pub chat_capacity: u8,
    /// The caller the phone rings for.
    pub ringing: Option<CallerId>,
    /// The caller in the current voice call.
    pub call: Option<CallerId>,
}

/// Where a caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerStatus {
    Waiting { queue: String, position: u32 },
    Ringing { queue: String, operator: String },
    Connected { queue: String, operator: String },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("queue {0:?} has nobody online")]
    Refused(String),
    #[error("caller {0:?} is already in a queue or a call")]
    DuplicateCaller(CallerId),
    #[error("caller {0:?} is not ringing that operator")]
    NotRinging(CallerId),
    #[error("chat capacity {0} outside 1..=10")]
    InvalidCapacity(u8),
    #[error("{0} is on another call")]
    OperatorBusy(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activity {
    Idle,
    Ringing {
        caller: CallerId,
        deadline: Instant,
    },
    InCall {
        caller: CallerId,
    },
    /// A call the operator placed or took outside the queues (click-to-call, a callback
    /// from the list or a task, a direct callback): `wrap_up` follows it.
    Outbound {
        call: CallerId,
        wrap_up: Duration,
    },
    WrapUp {
        until: Instant,
    },
}

#[derive(Debug)]
struct Operator {
    config: OperatorConfig,
    chosen: OperatorState,
    reachable: bool,
    chats: u8,
    visual_sessions: u8,
    activity: Activity,
    /// End of the last call or the moment of going online, whichever is later.
    idle_since: Option<Instant>,
    status: OperatorStatus,
    since: Option<Instant>,
    misses: u32,
}

impl Operator {
    fn new(config: OperatorConfig) -> Operator {
        Operator {
            config,
            chosen: OperatorState::Offline,
            reachable: false,
            chats: 0,
            visual_sessions: 0,
            activity: Activity::Idle,
            idle_since: None,
            status: OperatorStatus::Offline,
            since: None,
            misses: 0,
        }
    }

    fn current_status(&self) -> OperatorStatus {
        match self.activity {
            Activity::InCall { .. } | Activity::Outbound { .. } => OperatorStatus::Busy,
            Activity::WrapUp { .. } => OperatorStatus::WrapUp,
            Activity::Idle | Activity::Ringing { .. } => self.chosen.into(),
        }
    }

    /// Records a change of the shown status at `at`.
    fn touch(&mut self, at: Instant) {
        let status = self.current_status();
        if status != self.status || self.since.is_none() {
            self.status = status;
            self.since = Some(at);
        }
    }

    /// A call ended at `now`: wrap-up for `wrap_up` (none: idle at once); idle since now.
    fn conversation_ended(&mut self, now: Instant, wrap_up: Duration) {
        self.activity = if wrap_up.is_zero() {
            Activity::Idle
        } else {
            Activity::WrapUp {
                until: later(now, wrap_up),
            }
        };
        self.idle_since = Some(now);
        self.touch(now);
    }

    fn staffed(&self) -> bool {
        self.chosen == OperatorState::Online && self.reachable
    }

    fn available(&self) -> bool {
        self.staffed()
            && self.chats == 0
            && self.visual_sessions == 0
            && self.activity == Activity::Idle
    }

    fn ringing(&self) -> Option<CallerId> {
        match self.activity {
            Activity::Ringing { caller, .. } => Some(caller),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    priority: Reverse<u8>,
    /// 0 first: callbacks or live callers by the queue's policy, else everyone.
    class: u8,
    /// When the caller counts as arrived (a callback: its original call).
    since: Instant,
    seq: u64,
    caller: CallerId,
}

#[derive(Debug)]
enum CallerState {
    Waiting,
    Ringing {
        operator: String,
    },
    Connected {
        operator: String,
        since: Instant,
        wrap_up: Duration,
    },
}

#[derive(Debug)]
struct Caller {
    queue: String,
    priority: u8,
    /// Only members with this skill may take the call.
    skill: Option<String>,
    kind: CallerKind,
    arrived: Instant,
    key: OrderKey,
    state: CallerState,
    /// Operators that failed this caller in the current round.
    tried: BTreeSet<String>,
    reported: Option<Position>,
}

#[derive(Debug)]
struct Queue {
    config: QueueConfig,
    /// Callers waiting or ringing, in queue order.
    order: BTreeSet<OrderKey>,
    /// Recent handling times, oldest first.
    handled: VecDeque<Duration>,
}

impl Queue {
    fn key(
        &self,
        id: CallerId,
        priority: u8,
        kind: CallerKind,
        since: Instant,
        seq: u64,
    ) -> OrderKey {
        let class = match (self.config.callback_policy, kind) {
            (CallbackPolicy::CallbacksFirst, CallerKind::Inbound) => 1,
            (CallbackPolicy::LiveFirst, CallerKind::Callback) => 1,
            _ => 0,
        };
        OrderKey {
            priority: Reverse(priority),
            class,
            since,
            seq,
            caller: id,
        }
    }

    fn member(&self, operator: &str) -> Option<&Member> {
        self.config.members.iter().find(|m| m.operator == operator)
    }

    fn mean_handling(&self) -> Duration {
        match u32::try_from(self.handled.len()) {
            Ok(n) if n > 0 => {
                let total = self
                    .handled
                    .iter()
                    .fold(Duration::ZERO, |a, d| a.saturating_add(*d));
                total / n
            }
            _ => DEFAULT_HANDLING,
        }
    }

    fn record(&mut self, handling: Duration) {
        self.handled.push_back(handling);
        while self.handled.len() > HANDLING_WINDOW {
            self.handled.pop_front();
        }
    }
}

/// `position × mean_handling / max(1, staffed)`.
fn estimate(mean_handling: Duration, staffed: u32, position: u32) -> Duration {
    mean_handling.saturating_mul(position) / staffed.max(1)
}

/// `now + d`, saturating at a year ahead for absurd configured durations.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// The engine. See the module documentation.
#[derive(Debug, Default)]
pub struct Acd {
    queues: BTreeMap<String, Queue>,
    operators: BTreeMap<String, Operator>,
    callers: BTreeMap<CallerId, Caller>,
    actions: VecDeque<AcdAction>,
    next_seq: u64,
    /// Set by [`Acd::enqueue_direct`] for the caller it is enqueuing when their operator is
    /// available: the next offer is that ring (see [`Acd::next_offer`]). Cleared when the
    /// ring starts or the enqueue fails.
    direct_next: Option<(CallerId, String)>,
}

impl Acd {
    pub fn new() -> Acd {
        Acd::default()
    }

    // ---- configuration -------------------------------------------------------------

    /// Adds or replaces a queue. Waiting callers keep their places; a ring to an operator
    /// who is no longer a member is cancelled.
    pub fn set_queue(&mut self, now: Instant, mut config: QueueConfig) {
        let mut seen = BTreeSet::new();
        config.members.retain(|m| seen.insert(m.operator.clone()));
        let name = config.name.clone();
        let queue = self.queues.entry(name.clone()).or_insert_with(|| Queue {
            config: config.clone(),
            order: BTreeSet::new(),
            handled: VecDeque::new(),
        });
        queue.config = config;
        // Rebuild the order (the callback policy may have changed).
        let members: Vec<CallerId> = queue.order.iter().map(|k| k.caller).collect();
        queue.order.clear();
        let mut cancel = Vec::new();
        for id in members {
            let Some(c) = self.callers.get_mut(&id) else {
                continue;
            };
            c.key = queue.key(id, c.priority, c.kind, c.key.since, c.key.seq);
            queue.order.insert(c.key);
            if let CallerState::Ringing { operator } = &c.state
                && queue.member(operator).is_none()
            {
                cancel.push(operator.clone());
            }
        }
        for operator in cancel {
            self.cancel_operator_ring(&operator);
        }
        self.settle(now);
    }

    /// Removes a queue: its waiting callers get [`AcdAction::Unavailable`] (rings are
    /// cancelled first); connected calls go on.
    pub fn remove_queue(&mut self, now: Instant, name: &str) {
        let Some(queue) = self.queues.remove(name) else {
            return;
        };
        for key in queue.order {
            let Some(c) = self.callers.remove(&key.caller) else {
                continue;
            };
            if let CallerState::Ringing { operator } = c.state {
                self.free_operator_from_ring(&operator, key.caller);
                self.actions.push_back(AcdAction::CancelRing {
                    caller: key.caller,
                    operator,
                });
            }
            self.actions
                .push_back(AcdAction::Unavailable { caller: key.caller });
        }
        self.settle(now);
    }

    /// Sets an operator's admin settings (creates an offline operator if unknown).
    pub fn set_operator(&mut self, name: &str, config: OperatorConfig) -> Result<(), AcdError> {
        if !(1..=MAX_CHAT_CAPACITY).contains(&config.chat_capacity) {
            return Err(AcdError::InvalidCapacity(config.chat_capacity));
        }
        self.operator_mut(name).config = config;
        Ok(())
    }

    // ---- operators -----------------------------------------------------------------

    /// The state the operator chose. Leaving online while the phone rings cancels the ring
    /// (no miss); going online starts the idle time unless a call or wrap-up is on.
    pub fn set_state(&mut self, now: Instant, operator: &str, state: OperatorState) {
        let op = self.operator_mut(operator);
        let was = op.chosen;
        op.chosen = state;
        if state == OperatorState::Online
            && was != OperatorState::Online
            && op.activity == Activity::Idle
        {
            op.idle_since = Some(now);
        }
        op.touch(now);
        if state != OperatorState::Online {
            self.cancel_operator_ring(operator);
        }
        self.settle(now);
    }

    /// Whether the operator's phone is registered. Unregistering cancels a ring (no miss).
    pub fn set_reachable(&mut self, now: Instant, operator: &str, reachable: bool) {
        let op = self.operator_mut(operator);
        op.reachable = reachable;
        op.touch(now);
        if !reachable {
            self.cancel_operator_ring(operator);
        }
        self.settle(now);
    }

    /// The operator's active chats. With one or more there is no voice call; a ring in
    /// progress is cancelled (no miss).
    pub fn set_chats(&mut self, now: Instant, operator: &str, active_chats: u8) {
        let op = self.operator_mut(operator);
        op.chats = active_chats;
        op.touch(now);
        if active_chats > 0 {
            self.cancel_operator_ring(operator);
        }
        self.settle(now);
    }

    /// The visual sessions (seed 001's screen sharing with a customer) whose page the
    /// operator has open: with any, no voice call is offered to them (PRODUCT Q1).
    pub fn set_visual_sessions(&mut self, now: Instant, operator: &str, open: u8) {
        let op = self.operator_mut(operator);
        op.visual_sessions = open;
        op.touch(now);
        if open > 0 {
            self.cancel_operator_ring(operator);
        }
        self.settle(now);
    }

    // ---- callers -------------------------------------------------------------------

    /// A caller enters a queue. `priority`: higher first (VIP). The first
    /// [`AcdAction::Waiting`] goes out with the same numbers as returned. An unknown queue
    /// or a refusal also sends [`AcdAction::Unavailable`], so the action stream alone can
    /// drive the IVR.
    pub fn enqueue(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u8,
        kind: CallerKind,
    ) -> Result<Position, AcdError> {
        self.enqueue_needing(now, caller, queue, priority, kind, None)
    }

    /// An automatic callback enters a queue, ordered as if it had arrived at `since` (the
    /// customer's original call) when the policy interleaves. Place one only when
    /// [`Acd::callback_room`] allows.
    pub fn enqueue_callback(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u8,
        since: Instant,
    ) -> Result<Position, AcdError> {
        self.enqueue_at(
            now,
            caller,
            queue,
            priority,
            CallerKind::Callback,
            None,
            since.min(now),
        )
    }

    /// A caller transferred into `queue` (by the flow, a phone or the console) keeps their
    /// place in time and their class (PRODUCT T6): ordered as if they had arrived at
    /// `since`, their first queue entry, with the `priority` they had there.
    pub fn enqueue_transferred(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u8,
        since: Instant,
    ) -> Result<Position, AcdError> {
        let since = since.min(now);
        let position = self.enqueue_at(
            now,
            caller,
            queue,
            priority,
            CallerKind::Inbound,
            None,
            since,
        )?;
        if let Some(c) = self.callers.get_mut(&caller) {
            c.arrived = since;
        }
        Ok(position)
    }

    /// A caller who called an operator's own number while linked to them (direct
    /// callback, see [`crate::direct`]) enters `queue`, offered to `operator` first: if
    /// the operator is available (online, phone registered, no chat, not ringing, in a
    /// call or in wrap-up) their phone rings at once, before anyone else waiting and
    /// whether or not they are a member of `queue`. If that ring fails or times out, or
    /// the operator wasn't available, the caller is an ordinary caller of `queue` with
    /// the place they got on entry. Otherwise as [`Acd::enqueue_needing`] (an inbound
    /// caller).
    pub fn enqueue_direct(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u8,
        skill: Option<&str>,
        operator: &str,
    ) -> Result<Position, AcdError> {
        let available = self
            .operators
            .get(operator)
            .is_some_and(Operator::available);
        if available && !self.callers.contains_key(&caller) {
            self.direct_next = Some((caller, operator.to_owned()));
        }
        let entered =
            self.enqueue_needing(now, caller, queue, priority, CallerKind::Inbound, skill);
        // Refused or unknown queue: no ring happened, and none may happen later.
        if self
            .direct_next
            .as_ref()
            .is_some_and(|(id, _)| *id == caller)
        {
            self.direct_next = None;
        }
        entered
    }

    /// How many more automatic callbacks `queue` can take now (see the module doc).
    pub fn callback_room(&self, queue: &str) -> u32 {
        let Some(q) = self.queues.get(queue) else {
            return 0;
        };
        let (mut callbacks_waiting, mut callbacks_in, mut live_waiting) = (0u32, 0u32, 0u32);
        for c in self.callers.values().filter(|c| c.queue == queue) {
            match (c.kind, &c.state) {
                (CallerKind::Callback, CallerState::Waiting) => {
                    callbacks_waiting += 1;
                    callbacks_in += 1;
                }
                (CallerKind::Callback, _) => callbacks_in += 1,
                (CallerKind::Inbound, CallerState::Waiting) => live_waiting += 1,
                (CallerKind::Inbound, _) => {}
            }
        }
        let available = u32::try_from(
            q.config
                .members
                .iter()
                .filter(|m| {
                    self.operators
                        .get(&m.operator)
                        .is_some_and(Operator::available)
                })
                .count(),
        )
        .unwrap_or(u32::MAX);
        let share = u32::from(q.config.callback_max_share.clamp(1, 100));
        let cap = (self.staffed(q) * share).div_ceil(100);
        let mut free = available.saturating_sub(callbacks_waiting);
        if q.config.callback_policy == CallbackPolicy::LiveFirst {
            free = free.saturating_sub(live_waiting);
        }
        free.min(cap.saturating_sub(callbacks_in))
    }

    /// [`Acd::enqueue`] for a caller only members with `skill` may take. Callers behind
    /// one whose skill nobody available has are served meanwhile.
    pub fn enqueue_needing(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u8,
        kind: CallerKind,
        skill: Option<&str>,
    ) -> Result<Position, AcdError> {
        self.enqueue_at(now, caller, queue, priority, kind, skill, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn enqueue_at(
        &mut self,
        now: Instant,
        caller: CallerId,
        queue: &str,
        priority: u8,
        kind: CallerKind,
        skill: Option<&str>,
        since: Instant,
    ) -> Result<Position, AcdError> {
        if self.callers.contains_key(&caller) {
            return Err(AcdError::DuplicateCaller(caller));
        }
        let Some(q) = self.queues.get_mut(queue) else {
            self.actions.push_back(AcdAction::Unavailable { caller });
            return Err(AcdError::UnknownQueue(queue.to_owned()));
        };
        let staffed = q.config.members.iter().any(|m| {
            self.operators
                .get(&m.operator)
                .is_some_and(Operator::staffed)
        });
        if q.config.refuse_when_nobody && !staffed {
            self.actions.push_back(AcdAction::Unavailable { caller });
            return Err(AcdError::Refused(queue.to_owned()));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = q.key(caller, priority, kind, since, seq);
        q.order.insert(key);
        self.callers.insert(
            caller,
            Caller {
                queue: queue.to_owned(),
                priority,
                skill: skill.map(str::to_owned),
                kind,
                arrived: now,
                key,
                state: CallerState::Waiting,
                tried: BTreeSet::new(),
                reported: None,
            },
        );
        // Report the newcomer before anything rings for them.
        self.report_queue(queue);
        let position = self
            .callers
            .get(&caller)
            .and_then(|c| c.reported)
            .unwrap_or(Position {
                position: 1,
                expected_wait: DEFAULT_HANDLING,
            });
        self.settle(now);
        Ok(position)
    }

    /// The caller left the queue (hung up, chose a callback, maximum wait). A ring in
    /// progress is cancelled. Returns what a missed-call record needs, or `None` when the
    /// caller was not in a queue (a connected caller's call ends as by
    /// [`Acd::call_ended`]).
    pub fn leave(&mut self, now: Instant, caller: CallerId) -> Option<LeftQueue> {
        if let Some(CallerState::Connected { .. }) = self.callers.get(&caller).map(|c| &c.state) {
            self.call_ended(now, caller);
            return None;
        }
        let c = self.callers.remove(&caller)?;
        if let Some(q) = self.queues.get_mut(&c.queue) {
            q.order.remove(&c.key);
        }
        let was_ringing = if let CallerState::Ringing { operator } = c.state {
            self.free_operator_from_ring(&operator, caller);
            self.actions
                .push_back(AcdAction::CancelRing { caller, operator });
            true
        } else {
            false
        };
        self.settle(now);
        Some(LeftQueue {
            queue: c.queue,
            waited: now.saturating_duration_since(c.arrived),
            was_ringing,
        })
    }

    // ---- rings and calls -----------------------------------------------------------

    /// The operator answered the ring for the caller: they are connected (the operator is
    /// busy). `Err(NotRinging)` when that ring is over (cancelled, timed out): hang the
    /// operator's leg up.
    pub fn ring_answered(
        &mut self,
        now: Instant,
        caller: CallerId,
        operator: &str,
    ) -> Result<(), AcdError> {
        self.check_ringing(caller, operator)?;
        let Some(c) = self.callers.get_mut(&caller) else {
            return Err(AcdError::NotRinging(caller));
        };
        let wrap_up = self
            .queues
            .get(&c.queue)
            .map_or(DEFAULT_WRAP_UP, |q| q.config.wrap_up);
        let key = c.key;
        let queue = c.queue.clone();
        c.state = CallerState::Connected {
            operator: operator.to_owned(),
            since: now,
            wrap_up,
        };
        if let Some(q) = self.queues.get_mut(&queue) {
            q.order.remove(&key);
        }
        if let Some(op) = self.operators.get_mut(operator) {
            op.activity = Activity::InCall { caller };
            op.misses = 0;
            op.touch(now);
        }
        self.actions.push_back(AcdAction::Connected {
            caller,
            operator: operator.to_owned(),
        });
        self.settle(now);
        Ok(())
    }

    /// The ring for the caller failed on the operator's side: the caller is back at its
    /// place and goes to the next operator. Not for rings the engine cancelled.
    pub fn ring_failed(
        &mut self,
        now: Instant,
        caller: CallerId,
        operator: &str,
        failure: RingFailure,
    ) -> Result<(), AcdError> {
        self.check_ringing(caller, operator)?;
        self.fail_ring(now, caller, failure.is_miss(), false);
        self.settle(now);
        Ok(())
    }

    /// The connected call ended (either side hung up): the operator goes to wrap-up for the
    /// queue's `wrap_up` (then back to their chosen state), the handling time is recorded.
    /// For a caller still in the queue this is [`Acd::leave`].
    pub fn call_ended(&mut self, now: Instant, caller: CallerId) {
        let Some(c) = self.callers.get(&caller) else {
            return;
        };
        let CallerState::Connected {
            operator,
            since,
            wrap_up,
        } = &c.state
        else {
            self.leave(now, caller);
            return;
        };
        let (operator, since, wrap_up) = (operator.clone(), *since, *wrap_up);
        let queue = c.queue.clone();
        self.callers.remove(&caller);
        let talk = now.saturating_duration_since(since);
        if let Some(q) = self.queues.get_mut(&queue) {
            q.record(talk.saturating_add(wrap_up));
        }
        if let Some(op) = self.operators.get_mut(&operator)
            && op.activity == (Activity::InCall { caller })
        {
            op.conversation_ended(now, wrap_up);
        }
        self.settle(now);
    }

    /// An attended transfer joined `from`'s connected operator to the caller `to` (whose
    /// own connected call ended first): the operator's conversation goes on under `to`,
    /// with its start and wrap-up unchanged. Nothing happens unless `from` is connected
    /// and `to` is unknown to the engine.
    pub fn rekey(&mut self, from: CallerId, to: CallerId) -> bool {
        let connected = self
            .callers
            .get(&from)
            .is_some_and(|c| matches!(c.state, CallerState::Connected { .. }));
        if !connected || self.callers.contains_key(&to) {
            return false;
        }
        let Some(c) = self.callers.remove(&from) else {
            return false;
        };
        if let CallerState::Connected { operator, .. } = &c.state
            && let Some(op) = self.operators.get_mut(operator)
            && op.activity == (Activity::InCall { caller: from })
        {
            op.activity = Activity::InCall { caller: to };
        }
        self.callers.insert(to, c);
        true
    }

    /// The operator starts a call of their own outside the queues (PRODUCT Q1: every
    /// conversation makes them busy): no queued call rings them until
    /// [`Acd::outbound_ended`] plus `queue`'s wrap-up (without one, the shortest of their
    /// queues'). Refused
    /// while their phone rings for a queued caller or they are in another call; allowed
    /// in wrap-up, which it ends.
    pub fn outbound_started(
        &mut self,
        now: Instant,
        operator: &str,
        call: CallerId,
        queue: Option<&str>,
    ) -> Result<(), AcdError> {
        // The named queue's wrap-up, else the shortest of the operator's queues.
        let wrap_up = match queue.and_then(|q| self.queues.get(q)) {
            Some(q) => q.config.wrap_up,
            None => self
                .queues
                .values()
                .filter(|q| q.member(operator).is_some())
                .map(|q| q.config.wrap_up)
                .min()
                .unwrap_or(DEFAULT_WRAP_UP),
        };
        let op = self.operator_mut(operator);
        match op.activity {
            Activity::Idle | Activity::WrapUp { .. } => {}
            _ => return Err(AcdError::OperatorBusy(operator.to_owned())),
        }
        op.activity = Activity::Outbound { call, wrap_up };
        op.touch(now);
        self.settle(now);
        Ok(())
    }

    /// The operator's own call `call` ended: wrap-up, then back to their chosen state.
    pub fn outbound_ended(&mut self, now: Instant, operator: &str, call: CallerId) {
        let Some(op) = self.operators.get_mut(operator) else {
            return;
        };
        let Activity::Outbound {
            call: current,
            wrap_up,
        } = op.activity
        else {
            return;
        };
        if current != call {
            return;
        }
        op.conversation_ended(now, wrap_up);
        self.settle(now);
    }

    /// The operator's own call `call` ended before they talked (a consultation they never
    /// answered): free at once, without wrap-up, keeping their place in the longest-idle
    /// order.
    pub fn outbound_cancelled(&mut self, now: Instant, operator: &str, call: CallerId) {
        let Some(op) = self.operators.get_mut(operator) else {
            return;
        };
        if !matches!(op.activity, Activity::Outbound { call: current, .. } if current == call) {
            return;
        }
        op.activity = Activity::Idle;
        op.touch(now);
        self.settle(now);
    }

    /// Adds a handling time to a queue's estimate (e.g. primed from recent CDRs at start).
    pub fn record_handling(&mut self, queue: &str, handling: Duration) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.record(handling);
            self.report_queue(queue);
        }
    }

    // ---- time ----------------------------------------------------------------------

    /// The next instant [`Acd::handle_timeout`] must be called (ring timeout, wrap-up end).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.operators
            .values()
            .filter_map(|op| match op.activity {
                Activity::Ringing { deadline, .. } => Some(deadline),
                Activity::WrapUp { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Ends rings and wrap-ups due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut rings = Vec::new();
        let mut wraps = Vec::new();
        for (name, op) in &self.operators {
            match op.activity {
                Activity::Ringing { caller, deadline } if deadline <= now => {
                    rings.push((deadline, caller));
                }
                Activity::WrapUp { until } if until <= now => wraps.push((until, name.clone())),
                _ => {}
            }
        }
        rings.sort();
        wraps.sort();
        for (_, caller) in rings {
            self.fail_ring(now, caller, true, true);
        }
        for (until, name) in wraps {
            if let Some(op) = self.operators.get_mut(&name) {
                op.activity = Activity::Idle;
                op.touch(until);
            }
        }
        self.settle(now);
    }

    /// The operator ends their wrap-up early (the console's "Ready"): free at once, as if
    /// the queue's `wrap_up` were over now. `false`: they are not in wrap-up.
    pub fn end_wrap_up(&mut self, now: Instant, operator: &str) -> bool {
        let Some(op) = self.operators.get_mut(operator) else {
            return false;
        };
        if !matches!(op.activity, Activity::WrapUp { .. }) {
            return false;
        }
        op.activity = Activity::Idle;
        op.touch(now);
        self.settle(now);
        true
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    // ---- views ---------------------------------------------------------------------

    /// Expected wait at `position` in the queue (see the module documentation).
    pub fn expected_wait(&self, queue: &str, position: u32) -> Option<Duration> {
        let q = self.queues.get(queue)?;
        Some(self.estimate(q, position))
    }

    /// Mean handling time of the queue's recent calls.
    pub fn mean_handling(&self, queue: &str) -> Option<Duration> {
        self.queues.get(queue).map(Queue::mean_handling)
    }

    /// Callers in the queue (waiting or ringing) in order.
    pub fn queue_order(&self, queue: &str) -> Option<Vec<CallerId>> {
        let q = self.queues.get(queue)?;
        Some(q.order.iter().map(|k| k.caller).collect())
    }

    pub fn caller_status(&self, caller: CallerId) -> Option<CallerStatus> {
        let c = self.callers.get(&caller)?;
        let queue = c.queue.clone();
        Some(match &c.state {
            CallerState::Waiting => {
                let position = self
                    .queues
                    .get(&c.queue)
                    .and_then(|q| q.order.iter().position(|k| k.caller == caller))
                    .map_or(0, |i| u32::try_from(i + 1).unwrap_or(u32::MAX));
                CallerStatus::Waiting { queue, position }
            }
            CallerState::Ringing { operator } => CallerStatus::Ringing {
                queue,
                operator: operator.clone(),
            },
            CallerState::Connected { operator, .. } => CallerStatus::Connected {
                queue,
                operator: operator.clone(),
            },
        })
    }

    /// Live figures of a queue.
    pub fn figures(&self, now: Instant, queue: &str) -> Option<QueueFigures> {
        let q = self.queues.get(queue)?;
        let mut f = QueueFigures {
            waiting: u32::try_from(q.order.len()).unwrap_or(u32::MAX),
            longest_wait: q
                .order
                .iter()
                .filter_map(|k| self.callers.get(&k.caller))
                .map(|c| now.saturating_duration_since(c.arrived))
                .max()
                .unwrap_or_default(),
            ..QueueFigures::default()
        };
        for m in &q.config.members {
            let Some(op) = self.operators.get(&m.operator) else {
                continue;
            };
            match op.current_status() {
                OperatorStatus::Busy | OperatorStatus::WrapUp => f.busy += 1,
                OperatorStatus::Online if op.chats >= op.config.chat_capacity => f.busy += 1,
                OperatorStatus::Online => {
                    f.online += 1;
                    if op.available() {
                        f.available += 1;
                    }
                }
                OperatorStatus::Pause => f.paused += 1,
                OperatorStatus::Away => f.away += 1,
                OperatorStatus::Offline => {}
            }
        }
        Some(f)
    }

    /// One operator for the console; `None` if the engine never heard of them.
    pub fn operator_view(&self, name: &str) -> Option<OperatorView> {
        let op = self.operators.get(name)?;
        Some(OperatorView {
            state: op.current_status(),
            since: op.since,
            queues: self
                .queues
                .iter()
                .filter(|(_, q)| q.member(name).is_some())
                .map(|(n, _)| n.clone())
                .collect(),
            misses: op.misses,
            reachable: op.reachable,
            chats: op.chats,
            visual_sessions: op.visual_sessions,
            chat_capacity: op.config.chat_capacity,
            ringing: op.ringing(),
            call: match op.activity {
                Activity::InCall { caller } | Activity::Outbound { call: caller, .. } => {
                    Some(caller)
                }
                _ => None,
            },
        })
    }

    // ---- internals -----------------------------------------------------------------

    fn operator_mut(&mut self, name: &str) -> &mut Operator {
        self.operators
            .entry(name.to_owned())
            .or_insert_with(|| Operator::new(OperatorConfig::default()))
    }

    fn check_ringing(&self, caller: CallerId, operator: &str) -> Result<(), AcdError> {
        match self.callers.get(&caller).map(|c| &c.state) {
            Some(CallerState::Ringing { operator: o }) if o == operator => Ok(()),
            _ => Err(AcdError::NotRinging(caller)),
        }
    }

    /// The operator's ring for `caller` is over: back to idle (idle time unchanged).
    fn free_operator_from_ring(&mut self, operator: &str, caller: CallerId) {
        if let Some(op) = self.operators.get_mut(operator)
            && op.ringing() == Some(caller)
        {
            op.activity = Activity::Idle;
        }
    }

    /// The operator became unavailable while ringing: cancel, caller back, no miss.
    fn cancel_operator_ring(&mut self, operator: &str) {
        let Some(caller) = self.operators.get(operator).and_then(Operator::ringing) else {
            return;
        };
        self.free_operator_from_ring(operator, caller);
        if let Some(c) = self.callers.get_mut(&caller) {
            c.state = CallerState::Waiting;
        }
        self.actions.push_back(AcdAction::CancelRing {
            caller,
            operator: operator.to_owned(),
        });
    }

    /// A ring ended without answer: the caller waits again, the operator is tried, and a
    /// miss may pause them.
    fn fail_ring(&mut self, now: Instant, caller: CallerId, miss: bool, cancel: bool) {
        let Some(c) = self.callers.get_mut(&caller) else {
            return;
        };
        let CallerState::Ringing { operator } =
            std::mem::replace(&mut c.state, CallerState::Waiting)
        else {
            return;
        };
        c.tried.insert(operator.clone());
        let max = self
            .queues
            .get(&c.queue)
            .map_or(DEFAULT_MAX_MISSES, |q| q.config.max_misses_before_pause);
        self.free_operator_from_ring(&operator, caller);
        if cancel {
            self.actions.push_back(AcdAction::CancelRing {
                caller,
                operator: operator.clone(),
            });
        }
        if !miss {
            return;
        }
        let Some(op) = self.operators.get_mut(&operator) else {
            return;
        };
        op.misses = op.misses.saturating_add(1);
        if max > 0 && op.misses >= max {
            let count = op.misses;
            op.misses = 0;
            op.chosen = OperatorState::Pause;
            op.touch(now);
            self.actions.push_back(AcdAction::OperatorPaused {
                operator,
                reason: PauseReason::MissedRings { count },
            });
        }
    }

    /// After every input: offer callers to free operators, then report positions.
    fn settle(&mut self, now: Instant) {
        while let Some((caller, operator, queue)) = self.next_offer() {
            self.start_ring(now, caller, operator, queue);
        }
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for name in names {
            self.report_queue(&name);
        }
    }

    /// The best (caller, operator, queue) to ring now, if any.
    fn next_offer(&self) -> Option<(CallerId, String, String)> {
        // A direct caller rings their operator before anything else, whatever queue.
        if let Some((id, operator)) = &self.direct_next
            && let Some(c) = self.callers.get(id)
            && matches!(c.state, CallerState::Waiting)
            && self
                .operators
                .get(operator)
                .is_some_and(Operator::available)
        {
            return Some((*id, operator.clone(), c.queue.clone()));
        }
        type Rank = (Reverse<u8>, u64);
        let mut best: Option<(Rank, CallerId, String, String)> = None;
        for (name, q) in &self.queues {
            // The first waiting caller someone available can take. A caller without a
            // skill who finds nobody means nobody is available: stop looking there.
            let waiting = q.order.iter().filter_map(|k| {
                self.callers
                    .get(&k.caller)
                    .filter(|c| matches!(c.state, CallerState::Waiting))
                    .map(|c| (k.caller, c))
            });
            for (id, c) in waiting {
                let rank = (Reverse(c.priority), c.key.seq);
                if best.as_ref().is_some_and(|b| b.0 <= rank) {
                    break;
                }
                if let Some(operator) = self.pick_operator(q, c) {
                    best = Some((rank, id, operator, name.clone()));
                    break;
                }
                if c.skill.is_none() {
                    break;
                }
            }
        }
        best.map(|(_, id, op, q)| (id, op, q))
    }

    /// The longest-idle available member not yet tried by the caller in this round (all
    /// available members when each has been tried).
    /// The member of `queue` whom its next caller would ring now (the longest idle, then
    /// by priority), other than `except`: whom a consultation with the queue reaches.
    pub fn free_member(&self, queue: &str, except: &str) -> Option<String> {
        let q = self.queues.get(queue)?;
        self.longest_idle(q.config.members.iter().filter(|m| m.operator != except))
    }

    fn pick_operator(&self, q: &Queue, c: &Caller) -> Option<String> {
        let eligible = || {
            q.config
                .members
                .iter()
                .filter(|m| c.skill.as_ref().is_none_or(|s| m.skills.contains(s)))
        };
        // Members not yet tried for this caller first; then anyone.
        self.longest_idle(eligible().filter(|m| !c.tried.contains(&m.operator)))
            .or_else(|| self.longest_idle(eligible()))
    }

    /// Of `members`, the available operator idle longest (ties: member priority, then
    /// name).
    fn longest_idle<'m>(&self, members: impl Iterator<Item = &'m Member>) -> Option<String> {
        members
            .filter_map(|m| {
                self.operators
                    .get(&m.operator)
                    .filter(|op| op.available())
                    .map(|op| (m, op))
            })
            .min_by(|(ma, a), (mb, b)| {
                (a.idle_since, ma.priority, &ma.operator).cmp(&(
                    b.idle_since,
                    mb.priority,
                    &mb.operator,
                ))
            })
            .map(|(m, _)| m.operator.clone())
    }

    fn start_ring(&mut self, now: Instant, caller: CallerId, operator: String, queue: String) {
        let ring_timeout = self
            .queues
            .get(&queue)
            .map_or(DEFAULT_RING_TIMEOUT, |q| q.config.ring_timeout);
        if self
            .direct_next
            .as_ref()
            .is_some_and(|(id, _)| *id == caller)
        {
            // The direct offer is this one ring; after it the caller is like any other.
            self.direct_next = None;
        }
        let Some(c) = self.callers.get_mut(&caller) else {
            return;
        };
        if c.tried.contains(&operator) {
            // Everyone available has been tried: a new round.
            c.tried.clear();
        }
        c.state = CallerState::Ringing {
            operator: operator.clone(),
        };
        if let Some(op) = self.operators.get_mut(&operator) {
            op.activity = Activity::Ringing {
                caller,
                deadline: later(now, ring_timeout),
            };
        }
        self.actions.push_back(AcdAction::Ring {
            caller,
            operator,
            queue,
        });
    }

    /// Members online with a registered phone (ringing, busy and in wrap-up included).
    fn staffed(&self, q: &Queue) -> u32 {
        let n = q
            .config
            .members
            .iter()
            .filter(|m| {
                self.operators
                    .get(&m.operator)
                    .is_some_and(Operator::staffed)
            })
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn estimate(&self, q: &Queue, position: u32) -> Duration {
        estimate(q.mean_handling(), self.staffed(q), position)
    }

    /// Sends [`AcdAction::Waiting`] to the queue's callers whose position changed or whose
    /// estimate moved by [`WAIT_REPORT_STEP`] or more.
    fn report_queue(&mut self, name: &str) {
        let Some(q) = self.queues.get(name) else {
            return;
        };
        let (mean, staffed) = (q.mean_handling(), self.staffed(q));
        let mut updates = Vec::new();
        for (i, key) in q.order.iter().enumerate() {
            let Some(c) = self.callers.get(&key.caller) else {
                continue;
            };
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let expected_wait = estimate(mean, staffed, position);
            let due = match c.reported {
                None => true,
                Some(last) => {
                    last.position != position
                        || last.expected_wait.abs_diff(expected_wait) >= WAIT_REPORT_STEP
                }
            };
            if due {
                updates.push((
                    key.caller,
                    Position {
                        position,
                        expected_wait,
                    },
                ));
            }
        }
        for (caller, p) in updates {
            if let Some(c) = self.callers.get_mut(&caller) {
                c.reported = Some(p);
            }
            self.actions.push_back(AcdAction::Waiting {
                caller,
                position: p.position,
                expected_wait: p.expected_wait,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_states_by_name() {
        for name in ["online", "away", "pause", "offline"] {
            assert_eq!(
                OperatorState::parse(name).map(OperatorState::as_str),
                Some(name)
            );
        }
        // Busy and wrap-up follow calls; nobody chooses them.
        assert_eq!(OperatorState::parse("busy"), None);
        assert_eq!(OperatorState::parse("Online"), None);
    }

    #[test]
    fn estimate_is_position_times_mean_over_staffed() {
        assert_eq!(
            estimate(Duration::from_secs(120), 0, 1),
            Duration::from_secs(120)
        );
        assert_eq!(
            estimate(Duration::from_secs(120), 1, 3),
            Duration::from_secs(360)
        );
        assert_eq!(
            estimate(Duration::from_secs(90), 4, 2),
            Duration::from_secs(45)
        );
        assert_eq!(estimate(Duration::MAX, 1, u32::MAX), Duration::MAX);
    }

    #[test]
    fn order_is_priority_then_class_then_arrival() {
        let mut q = Queue {
            config: QueueConfig::new("q"),
            order: BTreeSet::new(),
            handled: VecDeque::new(),
        };
        q.config.callback_policy = CallbackPolicy::CallbacksFirst;
        let t = Instant::now();
        let keys = [
            q.key(CallerId(1), 0, CallerKind::Inbound, t, 1),
            q.key(CallerId(2), 0, CallerKind::Callback, t, 2),
            q.key(CallerId(3), 7, CallerKind::Inbound, t, 3),
            q.key(CallerId(4), 0, CallerKind::Inbound, t, 0),
        ];
        let mut sorted = keys;
        sorted.sort();
        let ids: Vec<u64> = sorted.iter().map(|k| k.caller.0).collect();
        assert_eq!(ids, [3, 2, 4, 1]);
    }

    #[test]
    fn handling_window_and_overflow() {
        let mut q = Queue {
            config: QueueConfig::new("q"),
            order: BTreeSet::new(),
            handled: VecDeque::new(),
        };
        assert_eq!(q.mean_handling(), DEFAULT_HANDLING);
        q.record(Duration::MAX);
        q.record(Duration::MAX);
        assert_eq!(q.mean_handling(), Duration::MAX / 2);
        for _ in 0..HANDLING_WINDOW {
            q.record(Duration::from_secs(10));
        }
        assert_eq!(q.mean_handling(), Duration::from_secs(10));
        let now = Instant::now();
        assert!(later(now, Duration::MAX) >= now);
    }
}
