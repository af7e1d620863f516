//! One flow file → [`Flow`], collecting every problem instead of stopping at
//! the first. Works on `toml::de::DeTable` because it keeps a span on every
//! key and value, and because hand-reading fields lets one bad step not hide
//! the others.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{FlowError, Loc};
use crate::model::{Choice, Flow, Hangup, Menu, Play, Ref, Step, StepKind};

const STEP_TYPES: &[&str] = &["play", "menu", "hangup"];

pub(crate) const DEFAULT_MENU_TIMEOUT_MS: u64 = 5000;
pub(crate) const DEFAULT_MENU_RETRIES: u64 = 2;
// Upper bounds that catch typos (an extra zero or three), not policy.
const MAX_RING_MS: u64 = 300_000;
const MAX_MENU_TIMEOUT_MS: u64 = 600_000;
const MAX_MENU_RETRIES: u64 = 20;

type Value<'i> = Spanned<DeValue<'i>>;

/// Byte offsets → line:col.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    pub(crate) fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = match self.text.get(start..offset) {
            Some(s) => s.chars().count(),
            // Not on a char boundary (should not happen): bytes are close enough.
            None => offset - start,
        };
        Loc::new(line, col + 1)
    }
}

/// Where errors go while one file is read.
pub(crate) struct Cx<'a> {
    path: &'a Path,
    lines: LineIndex<'a>,
    pub(crate) errors: Vec<FlowError>,
}

impl<'a> Cx<'a> {
    fn new(path: &'a Path, text: &'a str) -> Self {
        Self {
            path,
            lines: LineIndex::new(text),
            errors: Vec::new(),
        }
    }

    fn loc(&self, span: Range<usize>) -> Loc {
        self.lines.loc(span.start)
    }

    fn err_at(&mut self, at: Loc, message: impl Into<String>) {
        self.errors.push(FlowError::at(self.path, at, message));
    }

    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let at = self.loc(span);
        self.err_at(at, message);
    }

    fn wrong_type(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        let found = v.get_ref().type_str();
        self.err(
            v.span(),
            format!("`{key}` must be {expected}, found {found}"),
        );
    }

    fn string(&mut self, v: &Value<'_>, key: &str) -> Option<Ref> {
        match v.get_ref().as_str() {
            Some(s) => Some(Ref {
                name: s.to_owned(),
                at: self.loc(v.span()),
            }),
            None => {
                self.wrong_type(v, key, "a string");
                None
            }
        }
    }

    fn bool(&mut self, v: &Value<'_>, key: &str) -> Option<bool> {
        let b = v.get_ref().as_bool();
        if b.is_none() {
            self.wrong_type(v, key, "true or false");
        }
        b
    }

    fn uint(&mut self, v: &Value<'_>, key: &str, min: u64, max: u64) -> Option<u64> {
        let Some(i) = v.get_ref().as_integer() else {
            self.wrong_type(v, key, "a whole number");
            return None;
        };
        match u64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.err(
                    v.span(),
                    format!("`{key}` must be between {min} and {max}, found {i}"),
                );
                None
            }
        }
    }

    /// A string, or an array of strings.
    fn strings(&mut self, v: &Value<'_>, key: &str) -> Option<Vec<Ref>> {
        if v.get_ref().is_str() {
            return self.string(v, key).map(|r| vec![r]);
        }
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, key, "a string or an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match self.string(item, key) {
                Some(r) => out.push(r),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Prompt names: a string or array; checked to be a plain file stem so a
    /// flow cannot point outside the prompts directory.
    fn prompts(&mut self, v: &Value<'_>, key: &str, required: bool) -> Vec<Ref> {
        let refs = self.strings(v, key).unwrap_or_default();
        if required && refs.is_empty() && v.get_ref().is_array() {
            self.err(v.span(), format!("`{key}` needs at least one prompt"));
        }
        for r in &refs {
            if !valid_prompt_name(&r.name) {
                self.err_at(
                    r.at,
                    format!(
                        "prompt name `{}` may only use letters, digits, `-`, `_` and `.` \
                         (it names prompts/NAME.wav)",
                        r.name
                    ),
                );
            }
        }
        refs
    }
}

pub(crate) fn valid_prompt_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The keys of one table, read one at a time; keys never asked for are
/// reported as unknown, which catches typos like `promts`.
struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where "missing key" errors point.
    at: Loc,
    /// "step `greeting`", "the flow".
    what: String,
    asked: Vec<&'static str>,
}

impl<'t, 'i> Fields<'t, 'i> {
    fn new(table: &'t DeTable<'i>, at: Loc, what: String) -> Self {
        Self {
            table,
            at,
            what,
            asked: Vec::new(),
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'t Value<'i>> {
        self.asked.push(key);
        self.table.get(key)
    }

    fn require(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<&'t Value<'i>> {
        let v = self.get(key);
        if v.is_none() {
            cx.err_at(
                self.at,
                format!("{} is missing required key `{key}`", self.what),
            );
        }
        v
    }

    fn finish(self, cx: &mut Cx<'_>) {
        for (k, _) in self.table.iter() {
            if !self.asked.contains(&k.get_ref().as_ref()) {
                cx.err(
                    k.span(),
                    format!(
                        "unknown key `{}` in {} (known keys: {})",
                        k.get_ref(),
                        self.what,
                        self.asked.join(", ")
                    ),
                );
            }
        }
    }
}

/// Parse one flow file. Returns the flow (possibly with placeholders where
/// something was wrong) plus every error found; the flow is usable only if
/// the error list is empty. Syntax errors return no flow at all.
pub(crate) fn parse_flow(
    path: &Path,
    text: &str,
    version: String,
) -> (Option<Flow>, Vec<FlowError>) {
    let mut cx = Cx::new(path, text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The parser recovers and reports follow-on errors; one per line
        // keeps the first (real) one without the cascade.
        let mut seen_lines = BTreeSet::new();
        for e in syntax {
            let at = e.span().map_or(Loc::new(1, 1), |s| cx.loc(s));
            if seen_lines.insert(at.line) {
                cx.err_at(at, format!("TOML syntax error: {}", e.message()));
            }
        }
        return (None, cx.errors);
    }
    let flow = read_flow(&mut cx, path, doc.get_ref(), version);
    (Some(flow), cx.errors)
}

fn read_flow(cx: &mut Cx<'_>, path: &Path, doc: &DeTable<'_>, version: String) -> Flow {
    let mut f = Fields::new(doc, Loc::new(1, 1), "the flow".to_owned());

    let name = f.require(cx, "name").and_then(|v| cx.string(v, "name"));
    if let Some(n) = &name
        && n.name.trim().is_empty()
    {
        cx.err_at(n.at, "`name` must not be empty");
    }

    let mut numbers = Vec::new();
    if let Some(v) = f.get("numbers") {
        if v.get_ref().is_array() {
            numbers = cx.strings(v, "numbers").unwrap_or_default();
        } else {
            cx.wrong_type(v, "numbers", "an array of strings");
        }
    }
    let mut seen: BTreeMap<&str, Loc> = BTreeMap::new();
    for n in &numbers {
        if n.name.is_empty() || n.name.chars().any(|c| c.is_whitespace() || c == '@') {
            cx.err_at(
                n.at,
                format!(
                    "number `{}` must be the user part of the called URI, e.g. \"100\"",
                    n.name
                ),
            );
        } else if let Some(first) = seen.get(n.name.as_str()) {
            cx.err_at(
                n.at,
                format!("number `{}` is listed twice (first at {first})", n.name),
            );
        } else {
            seen.insert(&n.name, n.at);
        }
    }

    let default = match f.get("default") {
        Some(v) => cx
            .bool(v, "default")
            .unwrap_or(false)
            .then(|| cx.loc(v.span())),
        None => None,
    };
    let ring_ms = f
        .get("ring_ms")
        .and_then(|v| cx.uint(v, "ring_ms", 0, MAX_RING_MS))
        .unwrap_or(0);
    let start = f.require(cx, "start").and_then(|v| cx.string(v, "start"));

    let mut steps = BTreeMap::new();
    let mut defined = BTreeSet::new();
    if let Some(v) = f.require(cx, "steps") {
        match v.get_ref().as_table() {
            Some(t) if t.is_empty() => {
                cx.err(v.span(), "`steps` is empty; a flow needs at least one step")
            }
            Some(t) => {
                for (k, sv) in t.iter() {
                    defined.insert(k.get_ref().to_string());
                    if let Some(step) = read_step(cx, k, sv) {
                        steps.insert(step.name.clone(), step);
                    }
                }
            }
            None => cx.wrong_type(v, "steps", "a table of steps ([steps.NAME])"),
        }
    }
    f.finish(cx);

    // References to steps, checked against every step *name* (not only the
    // ones that parsed), so one broken step does not cascade.
    if let Some(s) = &start {
        check_step_ref(cx, s, &defined);
    }
    for step in steps.values() {
        for r in step.kind.step_refs() {
            check_step_ref(cx, r, &defined);
        }
    }

    Flow {
        name_at: name.as_ref().map_or(Loc::new(1, 1), |r| r.at),
        name: name.map(|r| r.name).unwrap_or_default(),
        version,
        ring_ms,
        file: path.to_owned(),
        numbers,
        default,
        start: start.unwrap_or_else(|| Ref {
            name: String::new(),
            at: Loc::new(1, 1),
        }),
        steps,
    }
}

fn check_step_ref(cx: &mut Cx<'_>, r: &Ref, defined: &BTreeSet<String>) {
    // Empty names are placeholders for keys already reported missing.
    if r.name.is_empty() || defined.contains(&r.name) {
        return;
    }
    let hint = closest(&r.name, defined.iter().map(String::as_str))
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    cx.err_at(r.at, format!("no step named `{}`{hint}", r.name));
}

fn read_step(
    cx: &mut Cx<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    v: &Value<'_>,
) -> Option<Step> {
    let name = key.get_ref().to_string();
    let Some(table) = v.get_ref().as_table() else {
        cx.wrong_type(v, &format!("steps.{name}"), "a table");
        return None;
    };
    let at = cx.loc(v.span());
    let mut f = Fields::new(table, at, format!("step `{name}`"));
    let ty = f.require(cx, "type").and_then(|t| cx.string(t, "type"))?;
    let kind = match ty.name.as_str() {
        "play" => StepKind::Play(read_play(cx, &mut f)),
        "menu" => StepKind::Menu(read_menu(cx, &mut f)),
        "hangup" => StepKind::Hangup(read_hangup(cx, &mut f)),
        other => {
            let hint = closest(other, STEP_TYPES.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            cx.err_at(
                ty.at,
                format!(
                    "unknown step type `{other}` ({hint}known types: {})",
                    STEP_TYPES.join(", ")
                ),
            );
            // Its other keys mean nothing without a type: don't report them.
            return None;
        }
    };
    f.finish(cx);
    Some(Step { name, at, kind })
}

fn placeholder(at: Loc) -> Ref {
    Ref {
        name: String::new(),
        at,
    }
}

fn required_ref(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>, key: &'static str) -> Ref {
    f.require(cx, key)
        .and_then(|v| cx.string(v, key))
        .unwrap_or_else(|| placeholder(f.at))
}

fn read_play(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Play {
    let prompts = f
        .require(cx, "prompts")
        .map(|v| cx.prompts(v, "prompts", true))
        .unwrap_or_default();
    let interruptible = f
        .get("interruptible")
        .and_then(|v| cx.bool(v, "interruptible"))
        .unwrap_or(false);
    let next = required_ref(cx, f, "next");
    Play {
        prompts,
        interruptible,
        next,
    }
}

fn read_menu(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Menu {
    let prompts = f
        .require(cx, "prompt")
        .map(|v| cx.prompts(v, "prompt", true))
        .unwrap_or_default();
    let timeout_ms = f
        .get("timeout_ms")
        .and_then(|v| cx.uint(v, "timeout_ms", 1, MAX_MENU_TIMEOUT_MS))
        .unwrap_or(DEFAULT_MENU_TIMEOUT_MS);
    let retries = f
        .get("retries")
        .and_then(|v| cx.uint(v, "retries", 0, MAX_MENU_RETRIES))
        .unwrap_or(DEFAULT_MENU_RETRIES);
    let invalid_prompts = f
        .get("invalid_prompt")
        .map(|v| cx.prompts(v, "invalid_prompt", false))
        .unwrap_or_default();
    let timeout_prompts = f
        .get("timeout_prompt")
        .map(|v| cx.prompts(v, "timeout_prompt", false));

    let mut choices = Vec::new();
    if let Some(v) = f.require(cx, "choices") {
        match v.get_ref().as_table() {
            Some(t) if t.is_empty() => cx.err(v.span(), "`choices` is empty"),
            Some(t) => {
                for (k, target) in t.iter() {
                    let digits = k.get_ref().to_string();
                    let at = cx.loc(k.span());
                    if digits.is_empty() || !digits.chars().all(is_dtmf) {
                        cx.err_at(
                            at,
                            format!("choice `{digits}` must be keypad digits (0-9, * or #)"),
                        );
                        continue;
                    }
                    if let Some(target) = cx.string(target, "choices") {
                        choices.push(Choice { digits, at, target });
                    }
                }
            }
            None => cx.wrong_type(v, "choices", "a table like { \"1\" = \"sales\" }"),
        }
    }
    // The menu acts as soon as the entry equals a choice, so a choice that
    // extends another ("1" and "12") could never be picked.
    for c in &choices {
        if let Some(short) = choices
            .iter()
            .find(|o| o.digits.len() < c.digits.len() && c.digits.starts_with(&o.digits))
        {
            cx.err_at(
                c.at,
                format!(
                    "choice `{}` can never be picked: the menu acts on `{}` as soon as it is pressed",
                    c.digits, short.digits
                ),
            );
        }
    }
    let on_fail = required_ref(cx, f, "on_fail");
    Menu {
        prompts,
        timeout_ms,
        retries: u32::try_from(retries).unwrap_or(u32::MAX),
        invalid_prompts,
        timeout_prompts,
        choices,
        on_fail,
    }
}

fn read_hangup(cx: &mut Cx<'_>, f: &mut Fields<'_, '_>) -> Hangup {
    let prompts = f
        .get("prompts")
        .map(|v| cx.prompts(v, "prompts", false))
        .unwrap_or_default();
    Hangup { prompts }
}

pub(crate) fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

/// The candidate nearest to `word` by edit distance, if it is near enough to
/// be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit ("plya").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_counts_chars() {
        let li = LineIndex::new("ab\nçd = 1\n");
        assert_eq!(li.loc(0), Loc::new(1, 1));
        assert_eq!(li.loc(3), Loc::new(2, 1));
        // 'ç' is two bytes but one column.
        assert_eq!(li.loc(5), Loc::new(2, 2));
        assert_eq!(li.loc(999), Loc::new(3, 1));
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("plya", "play"), 1);
        assert_eq!(edit_distance("menu", "play"), 4);
        assert_eq!(edit_distance("sales", "sales"), 0);
        assert_eq!(
            closest("slaes", ["sales", "support"].into_iter()),
            Some("sales")
        );
        assert_eq!(closest("xyz", ["sales"].into_iter()), None);
    }
}
