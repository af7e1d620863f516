//! `queues.toml`: the queues flows may send callers to, their members (operator names)
//! and how calls are distributed among them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::calendar::Calendar;
use crate::error::{FlowError, Loc};
use crate::model::Ref;
use crate::parse::{Cx, Fields, Value, did_you_mean, parse_document, valid_prompt_name};
use crate::window::{CallbackWindow, DEFAULT_TIME_ZONE, WindowRule, parse_time_zone};

/// The file name, directly in the flows directory; never read as a flow.
pub const QUEUES_FILE: &str = "queues.toml";

/// One declared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDef {
    pub name: String,
    /// For people (operator console, reports); defaults to `name`.
    pub display_name: String,
    /// Operators (by name) who take this queue's calls, most preferred first.
    pub members: Vec<String>,
    /// Skill → the members who have it (`[queues.NAME.skills]`); a queue step may ask
    /// for one.
    pub skills: BTreeMap<String, Vec<String>>,
    /// How long an operator's phone rings before the call goes to the next one.
    pub ring_timeout_secs: u64,
    /// Missed rings in a row after which an operator is paused.
    pub max_misses: u32,
    /// After-call time before the operator gets the next call.
    pub wrap_up_secs: u64,
    /// `[queues.NAME.callbacks]`: callbacks of missed calls and requests.
    pub callbacks: CallbackSettings,
    /// Console users who may listen to, whisper into, barge into and take over this
    /// queue's calls; empty: every supervisor (admins always may).
    pub supervisors: Vec<String>,
    /// The operator hears a short beep when a supervisor starts listening.
    pub monitor_beep: bool,
    /// The service level's target: answered within this many seconds (reports, board);
    /// `None`: the reports' default.
    pub service_level_secs: Option<u64>,
    /// Whether its calls are recorded (a queue step's `record` overrides it).
    pub record: RecordMode,
    pub at: Loc,
}

/// Recording of a queue's calls (PRODUCT S2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecordMode {
    #[default]
    Off,
    /// From the operator's answer to the end of the call.
    Always,
    /// The operator or a supervisor starts and stops it from the console.
    OnDemand,
}

impl RecordMode {
    /// As written in `queues.toml` and flows.
    pub const NAMES: [&str; 3] = ["off", "always", "on_demand"];
    pub const ALL: [RecordMode; 3] = [Self::Off, Self::Always, Self::OnDemand];

    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Always => "always",
            Self::OnDemand => "on_demand",
        }
    }
}

/// Defaults for a queue that doesn't say.
pub const DEFAULT_RING_TIMEOUT_SECS: u64 = 20;
pub const DEFAULT_MAX_MISSES: u32 = 2;
pub const DEFAULT_WRAP_UP_SECS: u64 = 10;

/// Defaults of `[queues.NAME.callbacks]`.
pub const DEFAULT_HIDE_AFTER_FAILURE_SECS: u64 = 900;
pub const DEFAULT_SUCCESS_AFTER_SECS: u64 = 10;
pub const DEFAULT_CALLBACK_MAX_SHARE: u8 = 50;
pub const DEFAULT_RETRY_DELAY_SECS: u64 = 600;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_CONFIRM_KEY: char = '1';

/// How automatic callbacks compete with live waiting callers for free
/// operators (the ACD's order within a queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallbackPolicy {
    /// Callbacks before every waiting live caller.
    CallbacksFirst,
    /// By arrival; a callback counts from the customer's original call.
    #[default]
    Interleaved,
    /// Live callers first; callbacks only take operators nobody waits for.
    LiveFirst,
}

impl CallbackPolicy {
    /// As written in `queues.toml`.
    pub const NAMES: [&str; 3] = ["callbacks-first", "interleaved", "live-first"];
    const ALL: [CallbackPolicy; 3] = [Self::CallbacksFirst, Self::Interleaved, Self::LiveFirst];

    pub fn name(self) -> &'static str {
        match self {
            Self::CallbacksFirst => "callbacks-first",
            Self::Interleaved => "interleaved",
            Self::LiveFirst => "live-first",
        }
    }
}

/// Who is called first when an automatic callback is placed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CallbackMode {
    /// An operator is reserved and rung first, then the customer is dialled.
    #[default]
    AgentFirst,
    /// The customer is dialled first, hears `confirm_prompt` and must press
    /// `confirm_key` before an operator is bridged, so an answering machine
    /// is not taken for a person.
    CustomerFirst {
        /// A prompt name (`prompts/NAME.wav`), checked to exist.
        confirm_prompt: Ref,
        confirm_key: char,
    },
}

impl CallbackMode {
    pub const NAMES: [&str; 2] = ["agent-first", "customer-first"];
}

/// `[queues.NAME.callbacks]`. Every key is optional; [`Default`] is a queue
/// that says nothing (no auto-callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    /// Seconds an entry stays off the shared missed-calls list after a failed
    /// attempt (`hide_after_failure`).
    pub hide_after_failure_secs: u64,
    /// Connected seconds that make an attempt a success (`success_after`).
    pub success_after_secs: u64,
    /// Whether the daemon calls customers back by itself (`auto`).
    pub auto: bool,
    /// When automatic callbacks may dial (`windows`, `time_zone`,
    /// `calendar`); the zone is the calendar's when only a calendar is given.
    pub window: CallbackWindow,
    pub policy: CallbackPolicy,
    /// Percent (1–100) of the queue's staffed operators callbacks may occupy
    /// at once (`max_share`).
    pub max_share_percent: u8,
    /// Seconds between automatic attempts (`retry_delay`).
    pub retry_delay_secs: u64,
    /// Automatic attempts before giving up (`max_attempts`, 1–20).
    pub max_attempts: u32,
    pub mode: CallbackMode,
    /// Where `calendar` was written, for the check that it exists.
    pub(crate) calendar_at: Loc,
    /// `time_zone` was written; else the calendar's zone is taken on load.
    pub(crate) zone_given: bool,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            hide_after_failure_secs: DEFAULT_HIDE_AFTER_FAILURE_SECS,
            success_after_secs: DEFAULT_SUCCESS_AFTER_SECS,
            auto: false,
            window: CallbackWindow::default(),
            policy: CallbackPolicy::default(),
            max_share_percent: DEFAULT_CALLBACK_MAX_SHARE,
            retry_delay_secs: DEFAULT_RETRY_DELAY_SECS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            mode: CallbackMode::default(),
            calendar_at: Loc::default(),
            zone_given: false,
        }
    }
}

impl CallbackSettings {
    /// Whether dialling an automatic callback is allowed at `at`: `auto` is
    /// on and the window is open (pass the calendar it names,
    /// `FlowSet::calendar`).
    pub fn auto_allowed(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        calendar: Option<&Calendar>,
    ) -> bool {
        self.auto && self.window.is_open(at, calendar)
    }

    /// A window naming a calendar, without a zone of its own, reads its
    /// rules in the calendar's zone.
    pub(crate) fn take_calendar_zone(&mut self, calendar: &Calendar) {
        if !self.zone_given {
            self.window.set_time_zone(calendar.timezone());
        }
    }
}

/// Reads `queues.toml` text. Returns the queues that parsed and every error.
pub(crate) fn parse_queues(
    path: &Path,
    text: &str,
) -> (BTreeMap<String, QueueDef>, Vec<FlowError>) {
    let mut out = BTreeMap::new();
    let (doc, mut cx) = match parse_document(path, text) {
        Ok(d) => d,
        Err(errors) => return (out, errors),
    };
    let mut top = Fields::new(doc.get_ref(), Loc::new(1, 1), "queues.toml".to_owned());
    if let Some(v) = top.get("queues") {
        match v.get_ref().as_table() {
            Some(t) => {
                for (k, q) in t.iter() {
                    let name = k.get_ref().to_string();
                    let at = cx.loc(k.span());
                    if !valid_prompt_name(&name) {
                        cx.err_at(
                            at,
                            format!(
                                "queue name `{name}` may only use letters, digits, `-`, `_` and `.`"
                            ),
                        );
                        continue;
                    }
                    if let Some(def) = read_queue(&mut cx, &name, at, q) {
                        out.insert(name, def);
                    }
                }
            }
            None => cx.wrong_type(v, "queues", "a table of queues ([queues.NAME])"),
        }
    }
    top.finish(&mut cx);
    (out, cx.errors)
}

/// `[queues.NAME.skills]`: `english = ["anna", "bela"]`; every operator listed must be a
/// member of the queue.
fn read_skills(
    cx: &mut Cx<'_>,
    queue: &str,
    members: &[String],
    v: &Value<'_>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(
            v,
            "skills",
            "a table of skills, e.g. [queues.support.skills] english = [\"anna\"]",
        );
        return out;
    };
    for (k, who) in t.iter() {
        let skill = k.get_ref().to_string();
        if !valid_prompt_name(&skill) {
            cx.err(
                k.span(),
                format!("skill name `{skill}` may only use letters, digits, `-`, `_` and `.`"),
            );
            continue;
        }
        let Some(names) = cx.strings(who, &format!("skills.{skill}")) else {
            continue;
        };
        for r in &names {
            if !members.contains(&r.name) {
                cx.err_at(
                    r.at,
                    format!(
                        "skill `{skill}` names `{}`, who is not a member of queue `{queue}`; add them to `members`",
                        r.name
                    ),
                );
            }
        }
        out.insert(skill, names.into_iter().map(|r| r.name).collect());
    }
    out
}

fn read_queue(cx: &mut Cx<'_>, name: &str, at: Loc, v: &Value<'_>) -> Option<QueueDef> {
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(v, &format!("queues.{name}"), "a table");
        return None;
    };
    let mut f = Fields::new(t, at, format!("queue `{name}`"));
    let display_name = f
        .get("display_name")
        .and_then(|v| cx.string(v, "display_name"))
        .map_or_else(|| name.to_owned(), |r| r.name);
    let members: Vec<String> = f
        .get("members")
        .and_then(|v| cx.strings(v, "members"))
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let skills = f
        .get("skills")
        .map(|v| read_skills(cx, name, &members, v))
        .unwrap_or_default();
    let ring_timeout_secs = f
        .get("ring_timeout")
        .and_then(|v| cx.uint(v, "ring_timeout", 5, 300))
        .unwrap_or(DEFAULT_RING_TIMEOUT_SECS);
    let max_misses = f
        .get("max_misses")
        .and_then(|v| cx.uint(v, "max_misses", 1, 100))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(DEFAULT_MAX_MISSES);
    let wrap_up_secs = f
        .get("wrap_up")
        .and_then(|v| cx.uint(v, "wrap_up", 0, 3600))
        .unwrap_or(DEFAULT_WRAP_UP_SECS);
    let callbacks = f
        .get("callbacks")
        .map(|v| read_callbacks(cx, name, v))
        .unwrap_or_default();
    let supervisors = f
        .get("supervisors")
        .and_then(|v| cx.strings(v, "supervisors"))
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let service_level_secs = f
        .get("service_level_secs")
        .and_then(|v| cx.uint(v, "service_level_secs", 1, 3600));
    let monitor_beep = f
        .get("monitor_beep")
        .and_then(|v| cx.bool(v, "monitor_beep"))
        .unwrap_or(false);
    let record = f
        .get("record")
        .and_then(|v| choice(cx, v, "record", &RecordMode::NAMES))
        .and_then(|i| RecordMode::ALL.get(i).copied())
        .unwrap_or_default();
    f.finish(cx);
    Some(QueueDef {
        name: name.to_owned(),
        display_name,
        members,
        skills,
        ring_timeout_secs,
        max_misses,
        wrap_up_secs,
        callbacks,
        supervisors,
        monitor_beep,
        service_level_secs,
        record,
        at,
    })
}

/// `[queues.NAME.callbacks]`; a bad key is reported and its default kept.
fn read_callbacks(cx: &mut Cx<'_>, queue: &str, v: &Value<'_>) -> CallbackSettings {
    let mut out = CallbackSettings::default();
    let Some(t) = v.get_ref().as_table() else {
        cx.wrong_type(
            v,
            "callbacks",
            &format!("a table ([queues.{queue}.callbacks])"),
        );
        return out;
    };
    let at = cx.loc(v.span());
    let mut f = Fields::new(t, at, format!("[queues.{queue}.callbacks]"));
    if let Some(n) = f
        .get("hide_after_failure")
        .and_then(|v| cx.uint(v, "hide_after_failure", 0, 86_400))
    {
        out.hide_after_failure_secs = n;
    }
    if let Some(n) = f
        .get("success_after")
        .and_then(|v| cx.uint(v, "success_after", 0, 600))
    {
        out.success_after_secs = n;
    }
    let auto = f.get("auto");
    if let Some(b) = auto.and_then(|v| cx.bool(v, "auto")) {
        out.auto = b;
    }
    let windows = f.get("windows");
    let mut rules = Vec::new();
    if let Some(v) = windows {
        // Item by item, so one bad rule does not hide the others.
        let items: Vec<&Value<'_>> = match v.get_ref().as_array() {
            Some(a) => a.iter().collect(),
            None => vec![v],
        };
        if items.len() == 1 && !v.get_ref().is_str() && !v.get_ref().is_array() {
            cx.wrong_type(
                v,
                "windows",
                "a list of cron rules, e.g. [\"* 9-15 * * mon-fri\"]",
            );
        } else {
            for item in items {
                let Some(r) = cx.string(item, "windows") else {
                    continue;
                };
                match WindowRule::parse(&r.name) {
                    Ok(rule) => rules.push(rule),
                    Err(e) => cx.err_at(r.at, e.to_string()),
                }
            }
        }
    }
    // Only when nothing was written: a bad rule is reported already.
    let none_written = windows.is_none_or(|v| v.get_ref().as_array().is_some_and(|a| a.is_empty()));
    if out.auto && none_written {
        let at = windows.or(auto).map_or(at, |v| cx.loc(v.span()));
        cx.err_at(
            at,
            "auto-callback needs at least one window: add windows = [\"* 9-15 * * mon-fri\"] \
             (cron rules: minute hour day-of-month month day-of-week)",
        );
    }
    let zone = f.get("time_zone").and_then(|v| {
        let r = cx.string(v, "time_zone")?;
        match parse_time_zone(&r.name) {
            Ok(tz) => Some(tz),
            Err(e) => {
                cx.err_at(r.at, e.to_string());
                None
            }
        }
    });
    // A bad zone was reported: don't also fall back to the calendar's.
    out.zone_given = f.has("time_zone");
    let calendar = f
        .get("calendar")
        .and_then(|v| cx.file_name(v, "calendar", "calendar"));
    if let Some(r) = &calendar {
        out.calendar_at = r.at;
    }
    out.window = CallbackWindow::new(
        rules,
        zone.unwrap_or(DEFAULT_TIME_ZONE),
        calendar.map(|r| r.name),
    );
    if let Some(p) = f
        .get("policy")
        .and_then(|v| choice(cx, v, "policy", &CallbackPolicy::NAMES))
        .and_then(|i| CallbackPolicy::ALL.get(i))
    {
        out.policy = *p;
    }
    if let Some(n) = f
        .get("max_share")
        .and_then(|v| cx.uint(v, "max_share", 1, 100))
        .and_then(|n| u8::try_from(n).ok())
    {
        out.max_share_percent = n;
    }
    if let Some(n) = f
        .get("retry_delay")
        .and_then(|v| cx.uint(v, "retry_delay", 60, 7 * 86_400))
    {
        out.retry_delay_secs = n;
    }
    if let Some(n) = f
        .get("max_attempts")
        .and_then(|v| cx.uint(v, "max_attempts", 1, 20))
        .and_then(|n| u32::try_from(n).ok())
    {
        out.max_attempts = n;
    }
    let mode = f.get("mode");
    let customer_first = mode
        .and_then(|v| choice(cx, v, "mode", &CallbackMode::NAMES))
        .is_some_and(|i| i == 1);
    let confirm_prompt = f.get("confirm_prompt");
    let confirm_key = f.get("confirm_key");
    if customer_first {
        let prompt = confirm_prompt.and_then(|v| cx.prompt(v, "confirm_prompt"));
        let key = confirm_key
            .and_then(|v| cx.key(v, "confirm_key"))
            .unwrap_or(DEFAULT_CONFIRM_KEY);
        match prompt {
            Some(confirm_prompt) => {
                out.mode = CallbackMode::CustomerFirst {
                    confirm_prompt,
                    confirm_key: key,
                };
            }
            None if confirm_prompt.is_none() => {
                let at = mode.map_or(at, |v| cx.loc(v.span()));
                cx.err_at(
                    at,
                    "mode = \"customer-first\" needs `confirm_prompt`: the prompt that asks the \
                     customer to press `confirm_key` before an operator is connected",
                );
            }
            // A bad prompt value is reported already.
            None => {}
        }
    } else {
        for (v, key) in [
            (confirm_prompt, "confirm_prompt"),
            (confirm_key, "confirm_key"),
        ] {
            if let Some(v) = v {
                cx.err(
                    v.span(),
                    format!(
                        "`{key}` is only used with mode = \"customer-first\" (the customer \
                         presses a key before an operator is connected); set `mode` or remove it"
                    ),
                );
            }
        }
    }
    f.finish(cx);
    out
}

/// One of `names` (a string); the index, or an error listing them.
pub(crate) fn choice(cx: &mut Cx<'_>, v: &Value<'_>, key: &str, names: &[&str]) -> Option<usize> {
    let r = cx.string(v, key)?;
    let found = names.iter().position(|n| *n == r.name);
    if found.is_none() {
        let hint = did_you_mean(&r.name, names.iter().copied());
        let allowed: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        cx.err_at(
            r.at,
            format!(
                "`{key}` must be one of {}, found \"{}\"{hint}",
                allowed.join(", "),
                r.name
            ),
        );
    }
    found
}
