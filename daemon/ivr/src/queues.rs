//! `queues.toml`: the queues flows may send callers to, their members (operator names)
//! and how calls are distributed among them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{FlowError, Loc};
use crate::parse::{Cx, Fields, Value, parse_document, valid_prompt_name};

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
    pub at: Loc,
}

/// Defaults for a queue that doesn't say.
pub const DEFAULT_RING_TIMEOUT_SECS: u64 = 20;
pub const DEFAULT_MAX_MISSES: u32 = 2;
pub const DEFAULT_WRAP_UP_SECS: u64 = 10;

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
    f.finish(cx);
    Some(QueueDef {
        name: name.to_owned(),
        display_name,
        members,
        skills,
        ring_timeout_secs,
        max_misses,
        wrap_up_secs,
        at,
    })
}
