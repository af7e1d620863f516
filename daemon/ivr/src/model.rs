//! The validated form of a flow file. Every name that points somewhere
//! (a step, a prompt, a queue, a calendar, a VIP list) keeps its position so
//! later checks can report it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::calendar::{Calendar, DayKind, TimeRange};
use crate::error::Loc;
use crate::number::NumberPattern;
use crate::vip::VipList;

/// A name written in a flow file (a step or a prompt), with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub at: Loc,
}

impl Ref {
    pub(crate) fn new(name: impl Into<String>, at: Loc) -> Self {
        Self {
            name: name.into(),
            at,
        }
    }
}

/// One flow, loaded from one file.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub name_at: Loc,
    /// Short content hash of this file.
    pub version: String,
    /// `>0`: send 180 Ringing and wait this long before answering.
    pub ring_ms: u64,
    pub file: PathBuf,
    pub numbers: Vec<Ref>,
    /// `Some(position of the key)` when this flow catches unlisted numbers.
    pub default: Option<Loc>,
    pub start: Ref,
    pub steps: BTreeMap<String, Step>,
    /// Callback offer rule sets (`[offers.NAME]`), by name.
    pub offers: BTreeMap<String, OfferSet>,
    /// The set's calendars this flow names, shared: a call keeps the ones
    /// loaded with the flow it started on, whatever reloads later.
    pub calendars: BTreeMap<String, Arc<Calendar>>,
    /// The set's VIP lists this flow names, shared the same way.
    pub vip_lists: BTreeMap<String, Arc<VipList>>,
}

impl Flow {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.get(name)
    }

    pub fn is_default(&self) -> bool {
        self.default.is_some()
    }

    /// A flow of the daemon's own, not from a file: `steps` in order, the first is the
    /// start.
    pub fn builtin(name: &str, steps: Vec<(&str, StepKind)>) -> Flow {
        let at = Loc::default();
        let start = Ref::new(steps.first().map_or("", |(n, _)| *n), at);
        let steps = steps
            .into_iter()
            .map(|(name, kind)| {
                let step = Step {
                    name: name.to_string(),
                    at,
                    kind,
                };
                (name.to_string(), step)
            })
            .collect();
        Flow {
            name: name.to_string(),
            name_at: at,
            version: "builtin".to_string(),
            ring_ms: 0,
            file: PathBuf::from(format!("(built in: {name})")),
            numbers: Vec::new(),
            default: None,
            start,
            steps,
            offers: BTreeMap::new(),
            calendars: BTreeMap::new(),
            vip_lists: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// Where the step's table starts (its `[steps.NAME]` header).
    pub at: Loc,
    pub kind: StepKind,
}

/// What a step does. New step types are a new variant plus a parser arm
/// (`parse/steps.rs`), their references here, an interpreter arm (`run.rs`)
/// and an entry in `flow.schema.json` (a test keeps the schema in step).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StepKind {
    Play(Play),
    Menu(Menu),
    Schedule(Schedule),
    Caller(CallerBranch),
    Queue(Queue),
    Callback(Callback),
    Set(SetVars),
    Transfer(Transfer),
    Hangup(Hangup),
    Goto(Goto),
}

/// Every step type, as written in `type = "..."`.
pub const STEP_TYPES: &[&str] = &[
    "play", "menu", "schedule", "caller", "queue", "callback", "set", "transfer", "hangup", "goto",
];

/// Play prompts, then go on.
#[derive(Debug, Clone)]
pub struct Play {
    pub prompts: Vec<Ref>,
    /// A digit stops the playback and is kept for the next menu.
    pub interruptible: bool,
    pub next: Ref,
}

/// Play a prompt, collect a choice.
#[derive(Debug, Clone)]
pub struct Menu {
    pub prompts: Vec<Ref>,
    /// Silence allowed after the prompt ends (and between digits of a
    /// multi-digit choice).
    pub timeout_ms: u64,
    /// Re-prompts after an invalid entry or a timeout.
    pub retries: u32,
    pub invalid_prompts: Vec<Ref>,
    /// `None`: same as `invalid_prompts`.
    pub timeout_prompts: Option<Vec<Ref>>,
    pub choices: Vec<Choice>,
    pub on_fail: Ref,
}

#[derive(Debug, Clone)]
pub struct Choice {
    /// One or more of `0-9*#`; no choice is a prefix of another.
    pub digits: String,
    pub at: Loc,
    pub target: Ref,
}

/// Branch on a calendar at the call's wall-clock time.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub calendar: Ref,
    pub open: Ref,
    pub closed: Ref,
    /// Closed on a holiday; `None`: `closed`.
    pub holiday: Option<Ref>,
    /// Closed on a weekend day; `None`: `closed`.
    pub weekend: Option<Ref>,
    /// Named days (holidays, moved workdays, special days, by their name in
    /// the calendar) → step, open or not. `Ref.name` is the day name.
    pub days: Vec<(Ref, Ref)>,
}

/// Branch on who is calling: first matching rule wins.
#[derive(Debug, Clone)]
pub struct CallerBranch {
    pub rules: Vec<CallerRule>,
    pub default: Ref,
}

#[derive(Debug, Clone)]
pub struct CallerRule {
    pub at: Loc,
    pub when: CallerMatch,
    pub next: Ref,
}

#[derive(Debug, Clone)]
pub enum CallerMatch {
    /// The caller withheld their number.
    Anonymous,
    /// The caller is on this VIP list (`vip/NAME.txt`).
    Vip(Ref),
    /// The caller's number starts with one of these (canonical form, see
    /// [`crate::number`]).
    Prefix(Vec<String>),
}

/// Wait in a queue; the interpreter plays music, announcements and
/// callback offers, the runtime owns the queue.
#[derive(Debug, Clone)]
pub struct Queue {
    pub queue: Ref,
    /// 0-9, higher is served first (e.g. VIP callers).
    pub priority: u8,
    /// Only queue members with this skill take the call.
    pub skill: Option<Ref>,
    /// Hold music, looped; empty: silence between announcements.
    pub music: Vec<Ref>,
    /// The periodic announcement.
    pub announce: Vec<Ref>,
    /// Seconds between periodic announcements; `None`: only at entry.
    pub announce_every: Option<u64>,
    /// `Some(where the key is)`: say the caller's position.
    pub announce_position: Option<Loc>,
    /// `Some(where the key is)`: say the expected wait.
    pub announce_wait: Option<Loc>,
    /// Seconds; then LeaveQueue and `on_timeout`.
    pub max_wait: Option<u64>,
    pub on_timeout: Option<Ref>,
    /// The runtime cannot take the caller.
    pub on_unavailable: Ref,
    /// Keys that leave the queue for a step.
    pub keys: Vec<Choice>,
    /// Callback offer rule set (`[offers.NAME]` of this flow).
    pub offers: Option<Ref>,
    /// Where the offer key leads; `None`: the rule set's `callback`.
    pub callback: Option<Ref>,
    /// Recording of the call from here (PRODUCT S2); `None`: the queue's own setting.
    pub record: Option<crate::queues::RecordMode>,
    /// The consent notice ("this call may be recorded"), played before the caller
    /// joins the queue, so before any recording can begin.
    pub record_prompt: Vec<Ref>,
}

/// Leave a callback request.
#[derive(Debug, Clone)]
pub struct Callback {
    /// "Press 1 for the number you are calling from, 2 for another";
    /// empty: no own-number option.
    pub confirm_prompt: Vec<Ref>,
    pub own_key: char,
    pub other_key: char,
    /// "Key in your number, then #"; empty: no key-in.
    pub enter_prompt: Vec<Ref>,
    pub invalid_prompt: Vec<Ref>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub min_digits: usize,
    pub max_digits: usize,
    /// A keyed-in number must match one of these, if any.
    pub patterns: Vec<NumberPattern>,
    /// Read the number back with `digit-0` … `digit-9`.
    pub readback: bool,
    /// Said before the digits ("We will call you back on").
    pub readback_prompt: Vec<Ref>,
    /// Tells when to expect the call, unless an offer rule gave its own.
    pub promise: Option<Ref>,
    /// Tells the time Hotline computed for the call (backlog and operators), unless an
    /// offer rule gave its own promise; `promise` is the fallback when none comes.
    pub promise_computed: Option<ComputedPromise>,
    /// The queue the request is for, unless it came from a queue's offer.
    pub queue: Option<Ref>,
    pub next: Ref,
    pub on_fail: Ref,
}

/// The prompts that say the computed callback time: the first that fits is said.
#[derive(Debug, Clone)]
pub struct ComputedPromise {
    /// Within `soon_minutes` ("within half an hour").
    pub soon: Ref,
    pub soon_minutes: u64,
    /// Later, but on the same day ("later today").
    pub today: Ref,
    /// Any later day ("on the next working day").
    pub later: Ref,
}

impl ComputedPromise {
    /// The prompt for a call promised `in_ms` from now (`same_day`: still today on the
    /// flows' clock).
    pub fn prompt_for(&self, in_ms: u64, same_day: bool) -> &Ref {
        if in_ms <= self.soon_minutes.saturating_mul(60_000) {
            &self.soon
        } else if same_day {
            &self.today
        } else {
            &self.later
        }
    }
}

/// Record variables and tags on the call.
#[derive(Debug, Clone)]
pub struct SetVars {
    /// Name → value (may contain `${caller}`, `${called}`, `${flow}` or
    /// another variable).
    pub values: Vec<(Ref, Ref)>,
    /// Added to the `tags` variable (comma separated, each once).
    pub tags: Vec<Ref>,
    pub next: Ref,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub to: TransferTo,
    pub prompts: Vec<Ref>,
    pub on_fail: Ref,
}

#[derive(Debug, Clone)]
pub enum TransferTo {
    Operator(Ref),
    Queue(Ref),
    /// Canonical number (see [`crate::number`]); `Ref` keeps what was written.
    External(Ref, String),
}

/// Optionally play prompts, then hang up.
#[derive(Debug, Clone)]
pub struct Hangup {
    pub prompts: Vec<Ref>,
}

#[derive(Debug, Clone)]
pub struct Goto {
    pub next: Ref,
}

/// `[offers.NAME]`: when a waiting caller is offered a callback.
#[derive(Debug, Clone)]
pub struct OfferSet {
    pub name: String,
    pub at: Loc,
    /// Gives day kinds and the local time for `days` and `hours`.
    pub calendar: Option<Ref>,
    /// The callback step the offer key leads to (a queue step may override).
    pub callback: Option<Ref>,
    pub rules: Vec<OfferRule>,
}

/// One rule; the first whose conditions all hold decides.
#[derive(Debug, Clone)]
pub struct OfferRule {
    pub at: Loc,
    /// Any of these day kinds; empty: any day.
    pub days: Vec<DaySel>,
    /// Local time inside any of these; empty: any time.
    pub hours: Vec<TimeRange>,
    /// Only callers on this VIP list.
    pub vip: Option<Ref>,
    pub offer: OfferWhen,
    /// Offer only while the expected wait is over this many seconds.
    pub wait_over: u64,
    /// Seconds between offers for `Every` / `AtEntryAndEvery`.
    pub every: Option<u64>,
    pub key: char,
    pub prompt: Vec<Ref>,
    pub promise: Option<Ref>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferWhen {
    Never,
    AtEntry,
    Every,
    AtEntryAndEvery,
}

impl OfferWhen {
    pub const NAMES: &[&str] = &["never", "at_entry", "every", "at_entry_and_every"];

    pub fn name(self) -> &'static str {
        match self {
            OfferWhen::Never => "never",
            OfferWhen::AtEntry => "at_entry",
            OfferWhen::Every => "every",
            OfferWhen::AtEntryAndEvery => "at_entry_and_every",
        }
    }

    pub fn at_entry(self) -> bool {
        matches!(self, OfferWhen::AtEntry | OfferWhen::AtEntryAndEvery)
    }

    pub fn repeats(self) -> bool {
        matches!(self, OfferWhen::Every | OfferWhen::AtEntryAndEvery)
    }
}

/// Minutes of the day each range covers, overnight ones split in two.
fn parts(r: TimeRange) -> Vec<(u16, u16)> {
    if r.is_overnight() {
        vec![(r.start_minute(), 1440), (0, r.end_minute())]
    } else {
        vec![(r.start_minute(), r.end_minute())]
    }
}

pub(crate) fn ranges_overlap(a: TimeRange, b: TimeRange) -> bool {
    parts(a)
        .iter()
        .any(|x| parts(b).iter().any(|y| x.0 < y.1 && y.0 < x.1))
}

/// Whether `minute` (of the local day) is inside the range.
pub(crate) fn range_covers(r: TimeRange, minute: u16) -> bool {
    parts(r).iter().any(|&(a, b)| a <= minute && minute < b)
}

/// A day-kind condition of an offer rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySel {
    /// A working day, moved workdays included.
    Workday,
    /// Only moved workdays.
    MovedWorkday,
    Weekend,
    Holiday,
    Special,
}

impl DaySel {
    pub const NAMES: &[&str] = &["workday", "moved_workday", "weekend", "holiday", "special"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "workday" => DaySel::Workday,
            "moved_workday" => DaySel::MovedWorkday,
            "weekend" => DaySel::Weekend,
            "holiday" => DaySel::Holiday,
            "special" => DaySel::Special,
            _ => return None,
        })
    }

    pub fn matches(self, day: &DayKind) -> bool {
        matches!(
            (self, day),
            (
                DaySel::Workday,
                DayKind::Workday | DayKind::MovedWorkday { .. }
            ) | (DaySel::MovedWorkday, DayKind::MovedWorkday { .. })
                | (DaySel::Weekend, DayKind::Weekend)
                | (DaySel::Holiday, DayKind::Holiday { .. })
                | (DaySel::Special, DayKind::Special { .. })
        )
    }
}

/// How a menu entry compares to the menu's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Choice(&'a Ref),
    /// The start of a longer choice: wait for more digits.
    Partial,
    Invalid,
}

impl Menu {
    pub fn timeout_prompts(&self) -> &[Ref] {
        self.timeout_prompts
            .as_deref()
            .unwrap_or(&self.invalid_prompts)
    }

    pub(crate) fn lookup(&self, entry: &str) -> Lookup<'_> {
        let mut partial = false;
        for c in &self.choices {
            if c.digits == entry {
                return Lookup::Choice(&c.target);
            }
            partial |= c.digits.starts_with(entry);
        }
        if partial {
            Lookup::Partial
        } else {
            Lookup::Invalid
        }
    }
}

/// Prompt names the queue's announcements are built from.
pub const POSITION_PROMPT: &str = "queue-position";
pub const POSITION_MANY_PROMPT: &str = "queue-position-many";
/// Positions up to this are said with a digit prompt.
pub const POSITION_SAID_UP_TO: u32 = 9;
/// Expected wait: `wait-under-N` for the first N (minutes) above the wait,
/// `wait-over-30` beyond.
pub const WAIT_BUCKETS_MIN: &[u64] = &[1, 2, 3, 5, 10, 15, 20, 30];
pub const WAIT_OVER_PROMPT: &str = "wait-over-30";

pub fn digit_prompt(d: char) -> String {
    format!("digit-{d}")
}

pub fn wait_prompt(minutes: u64) -> String {
    format!("wait-under-{minutes}")
}

impl Queue {
    /// The prompts an announcement of the position can use.
    fn position_prompts(&self) -> Vec<String> {
        let mut v = vec![POSITION_PROMPT.to_owned(), POSITION_MANY_PROMPT.to_owned()];
        v.extend(('1'..='9').map(digit_prompt));
        v
    }

    fn wait_prompts() -> Vec<String> {
        let mut v: Vec<String> = WAIT_BUCKETS_MIN.iter().map(|&m| wait_prompt(m)).collect();
        v.push(WAIT_OVER_PROMPT.to_owned());
        v
    }
}

impl StepKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Play(_) => "play",
            StepKind::Menu(_) => "menu",
            StepKind::Schedule(_) => "schedule",
            StepKind::Caller(_) => "caller",
            StepKind::Queue(_) => "queue",
            StepKind::Callback(_) => "callback",
            StepKind::Set(_) => "set",
            StepKind::Transfer(_) => "transfer",
            StepKind::Hangup(_) => "hangup",
            StepKind::Goto(_) => "goto",
        }
    }

    /// Every step this step names directly (not the offer rule set's
    /// callback step: see [`Flow::offer_callback`]).
    pub fn step_refs(&self) -> Vec<&Ref> {
        match self {
            StepKind::Play(p) => vec![&p.next],
            StepKind::Menu(m) => m
                .choices
                .iter()
                .map(|c| &c.target)
                .chain(std::iter::once(&m.on_fail))
                .collect(),
            StepKind::Schedule(s) => [&s.open, &s.closed]
                .into_iter()
                .chain(s.holiday.as_ref())
                .chain(s.weekend.as_ref())
                .chain(s.days.iter().map(|(_, step)| step))
                .collect(),
            StepKind::Caller(c) => c
                .rules
                .iter()
                .map(|r| &r.next)
                .chain(std::iter::once(&c.default))
                .collect(),
            StepKind::Queue(q) => q
                .on_timeout
                .iter()
                .chain(std::iter::once(&q.on_unavailable))
                .chain(q.keys.iter().map(|k| &k.target))
                .chain(q.callback.as_ref())
                .collect(),
            StepKind::Callback(c) => vec![&c.next, &c.on_fail],
            StepKind::Set(s) => vec![&s.next],
            StepKind::Transfer(t) => vec![&t.on_fail],
            StepKind::Hangup(_) => Vec::new(),
            StepKind::Goto(g) => vec![&g.next],
        }
    }

    /// Every prompt this step can play, including the ones its
    /// announcements and read-backs are built from.
    pub fn prompt_refs(&self, step_at: Loc) -> Vec<Ref> {
        let mut v = self.written_prompt_refs();
        for (at, _, names) in self.built_prompts(step_at) {
            v.extend(names.into_iter().map(|n| Ref::new(n, at)));
        }
        v
    }

    /// The prompts the flow file names.
    pub(crate) fn written_prompt_refs(&self) -> Vec<Ref> {
        match self {
            StepKind::Play(p) => p.prompts.clone(),
            StepKind::Menu(m) => m
                .prompts
                .iter()
                .chain(&m.invalid_prompts)
                .chain(m.timeout_prompts.iter().flatten())
                .cloned()
                .collect(),
            StepKind::Queue(q) => q
                .record_prompt
                .iter()
                .chain(&q.music)
                .chain(&q.announce)
                .cloned()
                .collect(),
            StepKind::Callback(c) => c
                .confirm_prompt
                .iter()
                .chain(&c.enter_prompt)
                .chain(&c.invalid_prompt)
                .chain(&c.readback_prompt)
                .chain(c.promise.as_ref())
                .chain(
                    c.promise_computed
                        .iter()
                        .flat_map(|p| [&p.soon, &p.today, &p.later]),
                )
                .cloned()
                .collect(),
            StepKind::Transfer(t) => t.prompts.clone(),
            StepKind::Hangup(h) => h.prompts.clone(),
            StepKind::Schedule(_) | StepKind::Caller(_) | StepKind::Set(_) | StepKind::Goto(_) => {
                Vec::new()
            }
        }
    }

    /// Prompts a setting plays without naming them (numbers said with
    /// fixed prompt names): where the setting is, how to describe it, names.
    pub(crate) fn built_prompts(&self, step_at: Loc) -> Vec<(Loc, &'static str, Vec<String>)> {
        let mut v = Vec::new();
        match self {
            StepKind::Queue(q) => {
                if let Some(at) = q.announce_position {
                    v.push((at, "`announce_position = true`", q.position_prompts()));
                }
                if let Some(at) = q.announce_wait {
                    v.push((at, "`announce_wait = true`", Queue::wait_prompts()));
                }
            }
            StepKind::Callback(c) if c.readback => {
                v.push((
                    step_at,
                    "the number read-back (`readback`, on unless set to false)",
                    ('0'..='9').map(digit_prompt).collect(),
                ));
            }
            _ => {}
        }
        v
    }
}

impl OfferSet {
    /// Offer and promise prompts of every rule.
    pub fn prompt_refs(&self) -> Vec<Ref> {
        self.rules
            .iter()
            .flat_map(|r| r.prompt.iter().chain(r.promise.as_ref()))
            .cloned()
            .collect()
    }
}

/// How one step leads to another, for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    /// Taken without the caller hearing anything or time passing
    /// (goto, set, schedule, caller, a queue the runtime refuses at once,
    /// a transfer failing at once): a cycle of these spins forever.
    Silent,
    /// Something plays or the flow waits first.
    Waits,
}

impl Flow {
    /// The callback step a queue step's offer key leads to.
    pub fn offer_callback<'a>(&'a self, q: &'a Queue) -> Option<&'a Ref> {
        q.callback.as_ref().or_else(|| {
            q.offers
                .as_ref()
                .and_then(|o| self.offers.get(&o.name))
                .and_then(|set| set.callback.as_ref())
        })
    }

    /// Every step `step` can lead to, with how, and the key that says so.
    pub(crate) fn edges<'a>(&'a self, step: &'a Step) -> Vec<(&'a Ref, EdgeKind, &'static str)> {
        use EdgeKind::{Silent, Waits};
        match &step.kind {
            StepKind::Play(p) => vec![(&p.next, Waits, "next")],
            StepKind::Menu(m) => m
                .choices
                .iter()
                .map(|c| (&c.target, Waits, "choices"))
                .chain(std::iter::once((&m.on_fail, Waits, "on_fail")))
                .collect(),
            StepKind::Hangup(_) => Vec::new(),
            StepKind::Goto(g) => vec![(&g.next, Silent, "next")],
            StepKind::Set(s) => vec![(&s.next, Silent, "next")],
            StepKind::Schedule(s) => [(&s.open, "open"), (&s.closed, "closed")]
                .into_iter()
                .chain(s.holiday.as_ref().map(|r| (r, "holiday")))
                .chain(s.weekend.as_ref().map(|r| (r, "weekend")))
                .chain(s.days.iter().map(|(_, r)| (r, "days")))
                .map(|(r, key)| (r, Silent, key))
                .collect(),
            StepKind::Caller(c) => c
                .rules
                .iter()
                .map(|r| (&r.next, Silent, "rules"))
                .chain(std::iter::once((&c.default, Silent, "default")))
                .collect(),
            StepKind::Queue(q) => {
                let mut v: Vec<(&Ref, EdgeKind, &'static str)> = q
                    .on_timeout
                    .iter()
                    .map(|r| (r, Waits, "on_timeout"))
                    // The runtime may refuse the caller at once.
                    .chain(std::iter::once((
                        &q.on_unavailable,
                        Silent,
                        "on_unavailable",
                    )))
                    .chain(q.keys.iter().map(|k| (&k.target, Waits, "keys")))
                    .collect();
                if q.offers.is_some()
                    && let Some(cb) = self.offer_callback(q)
                {
                    v.push((cb, Waits, "callback"));
                }
                v
            }
            StepKind::Callback(c) => {
                // Without key-in, a caller with no number fails at once.
                let fail = if c.enter_prompt.is_empty() {
                    Silent
                } else {
                    Waits
                };
                vec![(&c.next, Waits, "next"), (&c.on_fail, fail, "on_fail")]
            }
            StepKind::Transfer(t) => {
                // Without prompts, a failing transfer comes back at once.
                let kind = if t.prompts.is_empty() { Silent } else { Waits };
                vec![(&t.on_fail, kind, "on_fail")]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> TimeRange {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn time_of_day_ranges() {
        let night = r("22:00-06:00");
        assert!(range_covers(night, 22 * 60));
        assert!(range_covers(night, 23 * 60 + 59));
        assert!(range_covers(night, 0));
        assert!(range_covers(night, 5 * 60 + 59));
        assert!(!range_covers(night, 6 * 60));
        assert!(!range_covers(night, 21 * 60 + 59));
        let evening = r("16:00-24:00");
        assert!(range_covers(evening, 23 * 60 + 59));
        assert!(!range_covers(evening, 0));
        assert!(ranges_overlap(night, r("05:00-07:00")));
        assert!(ranges_overlap(night, r("23:00-23:30")));
        assert!(!ranges_overlap(night, r("06:00-22:00")));
        assert!(!ranges_overlap(r("08:00-12:00"), r("12:00-13:00")));
    }

    #[test]
    fn day_kinds() {
        let moved = DayKind::MovedWorkday {
            name: "Saturday".into(),
        };
        assert!(DaySel::Workday.matches(&DayKind::Workday));
        assert!(DaySel::Workday.matches(&moved));
        assert!(DaySel::MovedWorkday.matches(&moved));
        assert!(!DaySel::MovedWorkday.matches(&DayKind::Workday));
        assert!(!DaySel::Weekend.matches(&moved));
        assert!(DaySel::Holiday.matches(&DayKind::Holiday { name: "x".into() }));
        assert!(!DaySel::Special.matches(&DayKind::Holiday { name: "x".into() }));
    }
}
