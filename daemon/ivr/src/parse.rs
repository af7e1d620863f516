//! Reading TOML with every problem collected instead of stopping at the
//! first. Works on `toml::de::DeTable` because it keeps a span on every key
//! and value, and because hand-reading fields lets one bad step not hide the
//! others. The flow format itself is in `flow.rs`, `steps.rs`, `offers.rs`.

mod flow;
mod offers;
mod steps;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{FlowError, Loc};
use crate::model::Ref;

#[cfg(test)]
pub(crate) use flow::known_keys;
pub(crate) use flow::parse_flow;

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

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
    pub(crate) warnings: Vec<FlowError>,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Self {
        Self {
            path,
            lines: LineIndex::new(text),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn loc(&self, span: Range<usize>) -> Loc {
        self.lines.loc(span.start)
    }

    pub(crate) fn err_at(&mut self, at: Loc, message: impl Into<String>) {
        self.errors.push(FlowError::at(self.path, at, message));
    }

    pub(crate) fn warn_at(&mut self, at: Loc, message: impl Into<String>) {
        self.warnings.push(FlowError::at(self.path, at, message));
    }

    pub(crate) fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let at = self.loc(span);
        self.err_at(at, message);
    }

    pub(crate) fn wrong_type(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        let found = v.get_ref().type_str();
        self.err(
            v.span(),
            format!("`{key}` must be {expected}, found {found}"),
        );
    }

    pub(crate) fn string(&mut self, v: &Value<'_>, key: &str) -> Option<Ref> {
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

    pub(crate) fn bool(&mut self, v: &Value<'_>, key: &str) -> Option<bool> {
        let b = v.get_ref().as_bool();
        if b.is_none() {
            self.wrong_type(v, key, "true or false");
        }
        b
    }

    pub(crate) fn uint(&mut self, v: &Value<'_>, key: &str, min: u64, max: u64) -> Option<u64> {
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
    pub(crate) fn strings(&mut self, v: &Value<'_>, key: &str) -> Option<Vec<Ref>> {
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
    pub(crate) fn prompts(&mut self, v: &Value<'_>, key: &str, required: bool) -> Vec<Ref> {
        let refs = self.strings(v, key).unwrap_or_default();
        if required && refs.is_empty() && v.get_ref().is_array() {
            self.err(v.span(), format!("`{key}` needs at least one prompt"));
        }
        for r in &refs {
            self.check_prompt_name(r);
        }
        refs
    }

    /// One prompt name.
    pub(crate) fn prompt(&mut self, v: &Value<'_>, key: &str) -> Option<Ref> {
        let r = self.string(v, key)?;
        self.check_prompt_name(&r);
        Some(r)
    }

    fn check_prompt_name(&mut self, r: &Ref) {
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

    /// One keypad key: `0`-`9`, `*` or `#`.
    pub(crate) fn key(&mut self, v: &Value<'_>, key: &str) -> Option<char> {
        let r = self.string(v, key)?;
        let mut chars = r.name.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if is_dtmf(c) => Some(c),
            _ => {
                self.err_at(
                    r.at,
                    format!(
                        "`{key}` must be one keypad key (0-9, * or #), found `{}`",
                        r.name
                    ),
                );
                None
            }
        }
    }

    /// A name of another file (a calendar, a VIP list, a queue): a plain
    /// file stem.
    pub(crate) fn file_name(&mut self, v: &Value<'_>, key: &str, what: &str) -> Option<Ref> {
        let r = self.string(v, key)?;
        if valid_prompt_name(&r.name) {
            Some(r)
        } else {
            self.err_at(
                r.at,
                format!(
                    "{what} name `{}` may only use letters, digits, `-`, `_` and `.`",
                    r.name
                ),
            );
            None
        }
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
pub(crate) struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where "missing key" errors point.
    pub(crate) at: Loc,
    /// "step `greeting`", "the flow".
    what: String,
    asked: Vec<&'static str>,
    /// Which kind of table this is, for the schema test's key census.
    label: &'static str,
}

impl<'t, 'i> Fields<'t, 'i> {
    pub(crate) fn new(table: &'t DeTable<'i>, at: Loc, what: String) -> Self {
        Self {
            table,
            at,
            what,
            asked: Vec::new(),
            label: "",
        }
    }

    pub(crate) fn labeled(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'t Value<'i>> {
        self.asked.push(key);
        self.table.get(key)
    }

    pub(crate) fn require(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<&'t Value<'i>> {
        let v = self.get(key);
        if v.is_none() {
            cx.err_at(
                self.at,
                format!("{} is missing required key `{key}`", self.what),
            );
        }
        v
    }

    /// Whether the table has `key` (without asking for it).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    pub(crate) fn finish(self, cx: &mut Cx<'_>) {
        #[cfg(test)]
        recorder::record(self.label, &self.asked);
        for (k, _) in self.table.iter() {
            let key = k.get_ref();
            if !self.asked.contains(&key.as_ref()) {
                let hint = closest(key, self.asked.iter().copied())
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                cx.err(
                    k.span(),
                    format!(
                        "unknown key `{key}` in {} ({hint}known keys: {})",
                        self.what,
                        self.asked.join(", ")
                    ),
                );
            }
        }
    }
}

/// Parses a whole TOML document; syntax errors (one per line: the parser's
/// follow-on errors are noise) mean no document.
pub(crate) fn parse_document<'a>(
    path: &'a Path,
    text: &'a str,
) -> Result<(Spanned<DeTable<'a>>, Cx<'a>), Vec<FlowError>> {
    let mut cx = Cx::new(path, text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if syntax.is_empty() {
        return Ok((doc, cx));
    }
    let mut seen_lines = BTreeSet::new();
    for e in syntax {
        let at = e.span().map_or(Loc::new(1, 1), |s| cx.loc(s));
        if seen_lines.insert(at.line) {
            cx.err_at(at, format!("TOML syntax error: {}", e.message()));
        }
    }
    Err(cx.errors)
}

/// Test-only census of the keys each kind of table accepts.
#[cfg(test)]
pub(crate) mod recorder {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    type Census = BTreeMap<&'static str, Vec<&'static str>>;

    thread_local! {
        static KEYS: RefCell<Option<Census>> = const { RefCell::new(None) };
    }

    pub(crate) fn start() {
        KEYS.with(|k| *k.borrow_mut() = Some(BTreeMap::new()));
    }

    pub(crate) fn record(label: &'static str, asked: &[&'static str]) {
        KEYS.with(|k| {
            if let Some(map) = k.borrow_mut().as_mut() {
                let keys = map.entry(label).or_default();
                for a in asked {
                    if !keys.contains(a) {
                        keys.push(a);
                    }
                }
            }
        });
    }

    pub(crate) fn take() -> Census {
        KEYS.with(|k| k.borrow_mut().take().unwrap_or_default())
    }
}

pub(crate) fn is_dtmf(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

/// The candidate nearest to `word` by edit distance, if it is near enough to
/// be a typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        // A swap of two neighbours counts as one edit ("plya").
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// " (did you mean `x`?)" or nothing.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
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
    fn closest_allows_a_typo_per_three_chars() {
        assert_eq!(closest("plya", ["menu", "play"].into_iter()), Some("play"));
        assert_eq!(closest("menu", ["play"].into_iter()), None);
        assert_eq!(
            closest("sales", ["sale", "sales"].into_iter()),
            Some("sales")
        );
        assert_eq!(
            closest("slaes", ["sales", "support"].into_iter()),
            Some("sales")
        );
        assert_eq!(closest("xyz", ["sales"].into_iter()), None);
    }
}
