//! Calendar files → [`Calendar`], every problem reported at its span (the
//! same way flow files are read: `DeTable` keeps a span on every key and
//! value, and hand-reading lets one bad entry not hide the others).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Calendar, DayKind, Exception, TimeRange, WEEKDAYS, overlaps};
use crate::error::{FlowError, Loc};
use crate::parse::{LineIndex, closest};

type Value<'i> = Spanned<DeValue<'i>>;

/// Loads every `*.toml` directly in `dir` (`<flows>/calendars`), each named
/// by its file stem. A missing directory is no calendars. All errors of all
/// files, sorted by file and position.
pub fn load_calendars(dir: &Path) -> Result<BTreeMap<String, Arc<Calendar>>, Vec<FlowError>> {
    let read_err = |e: std::io::Error| {
        vec![FlowError::whole(
            dir,
            format!("cannot read calendar directory: {e}"),
        )]
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        // Editors' hidden swap/backup files are not calendars.
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();

    let mut errors = Vec::new();
    let mut calendars = BTreeMap::new();
    for path in &files {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                errors.push(FlowError::whole(path, format!("cannot read: {e}")));
                continue;
            }
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
                let prefix = std::str::from_utf8(valid).unwrap_or_default();
                let at = LineIndex::new(prefix).loc(prefix.len());
                errors.push(FlowError::at(path, at, "file is not valid UTF-8"));
                continue;
            }
        };
        match parse_calendar(path, text) {
            Ok(c) => {
                calendars.insert(c.name.clone(), Arc::new(c));
            }
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(calendars)
    } else {
        errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        errors.dedup();
        Err(errors)
    }
}

/// Parses one calendar file; its name is the file stem. Returns every
/// problem found, each at its `file:line:col`.
pub fn parse_calendar(file: &Path, text: &str) -> Result<Calendar, Vec<FlowError>> {
    let mut cx = Cx::new(file, text);
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !valid_name(&name) {
        cx.errors.push(FlowError::whole(
            file,
            format!(
                "calendar file name `{name}` may only use letters, digits, `-`, `_` and `.` \
                 (flows name a calendar by its file name without .toml)"
            ),
        ));
    }

    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // One error per line: the first is the real one, the rest a cascade.
        let mut seen_lines = std::collections::BTreeSet::new();
        for e in syntax {
            let at = e.span().map_or(Loc::new(1, 1), |s| cx.loc(s));
            if seen_lines.insert(at.line) {
                cx.err_at(at, format!("TOML syntax error: {}", e.message()));
            }
        }
        return Err(cx.errors);
    }
    let doc = doc.get_ref();

    let mut f = Fields::new(doc, Loc::new(1, 1), "the calendar".to_owned());
    let tz = f
        .require(&mut cx, "timezone")
        .and_then(|v| read_timezone(&mut cx, v));
    let weekly = f
        .require(&mut cx, "hours")
        .map(|v| read_weekly(&mut cx, v))
        .unwrap_or_default();
    let mut entries = Vec::new();
    for section in [Section::Holiday, Section::Workday, Section::Special] {
        if let Some(v) = f.get(section.key()) {
            read_entries(&mut cx, v, section, &weekly, &mut entries);
        }
    }
    f.finish(&mut cx);

    let (dated, yearly, deciding) = check_days(&mut cx, &entries);
    let calendar = Calendar {
        name,
        file: file.to_owned(),
        // Only a stand-in while checking: without a valid zone there is an
        // error and no calendar (never a silent UTC).
        tz: tz.unwrap_or(Tz::UTC),
        weekly: weekly.days.map(|day| day.iter().map(|w| w.range).collect()),
        dated,
        yearly,
    };
    check_neighbours(&mut cx, &calendar, &deciding);
    match tz {
        Some(tz) if cx.errors.is_empty() => Ok(Calendar { tz, ..calendar }),
        _ => {
            let mut errors = cx.errors;
            errors.sort_by_key(|e| (e.line, e.col));
            errors.dedup();
            Err(errors)
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where errors go while one file is read.
struct Cx<'a> {
    path: &'a Path,
    lines: LineIndex<'a>,
    errors: Vec<FlowError>,
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

    fn string(&mut self, v: &Value<'_>, key: &str) -> Option<(String, Loc)> {
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_owned(), self.loc(v.span()))),
            None => {
                self.wrong_type(v, key, "a string");
                None
            }
        }
    }
}

/// The keys of one table, read one at a time; keys never asked for are
/// reported as unknown, which catches typos.
struct Fields<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where "missing key" errors point.
    at: Loc,
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
            let key = k.get_ref();
            if self.asked.contains(&key.as_ref()) {
                continue;
            }
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

fn read_timezone(cx: &mut Cx<'_>, v: &Value<'_>) -> Option<Tz> {
    let (name, at) = cx.string(v, "timezone")?;
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    let hint = suggest_timezone(&name)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    cx.err_at(
        at,
        format!("unknown time zone `{name}`{hint}; use an IANA name such as \"Europe/Budapest\""),
    );
    None
}

fn suggest_timezone(name: &str) -> Option<&'static str> {
    let wanted = name.trim().to_ascii_lowercase().replace(' ', "_");
    let zones = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    if wanted.is_empty() {
        return None;
    }
    zones()
        .find(|z| z.to_ascii_lowercase() == wanted)
        // "Budapest" → "Europe/Budapest"
        .or_else(|| {
            zones().find(|z| {
                z.rsplit('/')
                    .next()
                    .is_some_and(|city| city.to_ascii_lowercase() == wanted)
            })
        })
        .or_else(|| {
            zones()
                .map(|z| (strsim::osa_distance(&wanted, &z.to_ascii_lowercase()), z))
                .filter(|&(d, _)| d <= 2)
                .min_by_key(|&(d, _)| d)
                .map(|(_, z)| z)
        })
}

/// A range as written, and where.
#[derive(Debug, Clone, Copy)]
struct Written {
    range: TimeRange,
    at: Loc,
}

fn read_ranges(cx: &mut Cx<'_>, v: &Value<'_>, key: &str) -> Vec<Written> {
    let items: Vec<&Value<'_>> = if v.get_ref().is_str() {
        vec![v]
    } else if let Some(a) = v.get_ref().as_array() {
        a.iter().collect()
    } else {
        cx.wrong_type(v, key, "a list of time ranges like [\"08:00-17:00\"]");
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(text) = item.get_ref().as_str() else {
            let found = item.get_ref().type_str();
            cx.err(
                item.span(),
                format!(
                    "time ranges in `{key}` must be strings like \"08:00-17:00\", found {found}"
                ),
            );
            continue;
        };
        let at = cx.loc(item.span());
        match text.parse::<TimeRange>() {
            Ok(range) => out.push(Written { range, at }),
            Err(e) => cx.err_at(at, e),
        }
    }
    out
}

fn weekday_index(key: &str) -> Option<usize> {
    WEEKDAYS.iter().position(|d| *d == key)
}

fn weekday_hint(key: &str) -> String {
    let lower = key.to_lowercase();
    // "monday" → mon, "fry" → fri
    let guess = lower
        .get(..3)
        .and_then(weekday_index)
        .and_then(|i| WEEKDAYS.get(i).copied())
        .or_else(|| closest(&lower, WEEKDAYS.iter().copied()));
    let list = WEEKDAYS.join(", ");
    match guess {
        Some(g) => format!("did you mean `{g}`? weekdays are {list}"),
        None => format!("weekdays are {list}"),
    }
}

/// `[hours]` as written, Monday first.
#[derive(Debug, Default)]
struct Week {
    days: [Vec<Written>; 7],
    /// Days with a range that did not parse: a `like` naming one is not
    /// reported again as "no hours".
    broken: [bool; 7],
}

fn read_weekly(cx: &mut Cx<'_>, v: &Value<'_>) -> Week {
    let mut week = Week::default();
    let Some(table) = v.get_ref().as_table() else {
        cx.wrong_type(
            v,
            "hours",
            "a table of weekdays ([hours] with mon = [\"08:00-17:00\"] …)",
        );
        return week;
    };
    for (k, day) in table.iter() {
        let key = k.get_ref();
        let Some(i) = weekday_index(key) else {
            cx.err(
                k.span(),
                format!("unknown weekday `{key}` in [hours] ({})", weekday_hint(key)),
            );
            continue;
        };
        let errors_before = cx.errors.len();
        let ranges = read_ranges(cx, day, &format!("hours.{key}"));
        if let (Some(slot), Some(broken)) = (week.days.get_mut(i), week.broken.get_mut(i)) {
            *slot = ranges;
            *broken = cx.errors.len() > errors_before;
        }
    }
    for (i, name) in WEEKDAYS.iter().enumerate() {
        let prev = (i + 6) % 7;
        let prev_ranges: Vec<TimeRange> = week
            .days
            .get(prev)
            .map(|d| d.iter().map(|w| w.range).collect())
            .unwrap_or_default();
        let prev_name = WEEKDAYS.get(prev).copied().unwrap_or_default();
        if let Some(today) = week.days.get(i) {
            check_day(cx, today, name, &prev_ranges, prev_name);
        }
    }
    week
}

/// Ranges of one day must not overlap each other, nor the overnight ranges
/// of the day before (which run into this day's morning).
fn check_day(
    cx: &mut Cx<'_>,
    today: &[Written],
    today_name: &str,
    prev: &[TimeRange],
    prev_name: &str,
) {
    for (j, b) in today.iter().enumerate() {
        for a in today.iter().take(j) {
            if overlaps(a.range.own_day(), b.range.own_day()) {
                cx.err_at(
                    b.at,
                    format!("`{}` overlaps `{}` on {today_name}", b.range, a.range),
                );
            }
        }
        for p in prev {
            if p.next_day()
                .is_some_and(|spill| overlaps(spill, b.range.own_day()))
            {
                cx.err_at(
                    b.at,
                    format!(
                        "`{}` overlaps {prev_name}'s overnight range `{p}`, \
                         which is open until {} on {today_name}",
                        b.range,
                        hhmm(p.end_minute())
                    ),
                );
            }
        }
    }
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A date as written: one day, or the same day every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum When {
    On(NaiveDate),
    Yearly(u32, u32),
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::On(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            When::Yearly(m, d) => write!(f, "--{m:02}-{d:02}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Holiday,
    Workday,
    Special,
}

impl Section {
    fn key(self) -> &'static str {
        match self {
            Section::Holiday => "holidays",
            Section::Workday => "workdays",
            Section::Special => "special",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Section::Holiday => "holiday",
            Section::Workday => "moved workday",
            Section::Special => "special day",
        }
    }

    fn kind(self, name: String) -> DayKind {
        match self {
            Section::Holiday => DayKind::Holiday { name },
            Section::Workday => DayKind::MovedWorkday { name },
            Section::Special => DayKind::Special { name },
        }
    }
}

/// One `[[holidays]]`, `[[workdays]]` or `[[special]]` entry as written.
#[derive(Debug)]
struct Entry {
    section: Section,
    when: Option<(When, Loc)>,
    name: String,
    /// A moved workday's `like` hours are copied here, at the `like` value.
    hours: Vec<Written>,
}

fn read_entries(
    cx: &mut Cx<'_>,
    v: &Value<'_>,
    section: Section,
    weekly: &Week,
    out: &mut Vec<Entry>,
) {
    let key = section.key();
    let Some(items) = v.get_ref().as_array() else {
        cx.wrong_type(
            v,
            key,
            &format!("a list of tables: write each one under its own [[{key}]] line"),
        );
        return;
    };
    for item in items.iter() {
        let Some(table) = item.get_ref().as_table() else {
            cx.wrong_type(item, key, &format!("a table ([[{key}]])"));
            continue;
        };
        let at = cx.loc(item.span());
        out.push(read_entry(cx, table, at, section, weekly));
    }
}

fn read_entry(
    cx: &mut Cx<'_>,
    table: &DeTable<'_>,
    at: Loc,
    section: Section,
    weekly: &Week,
) -> Entry {
    let noun = section.noun();
    let mut f = Fields::new(table, at, format!("this {noun} ([[{}]])", section.key()));
    let when = f
        .require(cx, "date")
        .and_then(|v| read_date(cx, v, section));
    let name = f.require(cx, "name").and_then(|v| cx.string(v, "name"));
    if let Some((n, at)) = &name
        && n.trim().is_empty()
    {
        cx.err_at(*at, "`name` must not be empty");
    }
    let hours_value = match section {
        Section::Special => f.require(cx, "hours"),
        Section::Holiday | Section::Workday => f.get("hours"),
    };
    let mut hours = hours_value
        .map(|v| read_ranges(cx, v, "hours"))
        .unwrap_or_default();

    if section == Section::Workday {
        let like = f.get("like");
        match (like, hours_value) {
            (Some(l), Some(_)) => cx.err(
                l.span(),
                "give either `like` or `hours` for a moved workday, not both",
            ),
            (None, None) => cx.err_at(
                at,
                "this moved workday needs its hours: `like = \"fri\"` (that weekday's hours) \
                 or `hours = [\"08:00-16:00\"]`",
            ),
            (None, Some(h)) if h.get_ref().as_array().is_some_and(|a| a.is_empty()) => cx.err(
                h.span(),
                "a moved workday with no hours would be closed all day; \
                 list its hours, or make it a holiday",
            ),
            (Some(l), None) => {
                if let Some((day, like_at)) = cx.string(l, "like") {
                    match weekday_index(&day) {
                        None => cx.err_at(
                            like_at,
                            format!("unknown weekday `{day}` in `like` ({})", weekday_hint(&day)),
                        ),
                        Some(i) => {
                            let copied = weekly.days.get(i).map(Vec::as_slice).unwrap_or_default();
                            let broken = weekly.broken.get(i).copied().unwrap_or(false);
                            if copied.is_empty() && !broken {
                                cx.err_at(
                                    like_at,
                                    format!(
                                        "`like = \"{day}\"`: {day} has no open hours in [hours], \
                                         so this moved workday would be closed all day; \
                                         name a weekday that has hours, or give \
                                         `hours = [...]` instead"
                                    ),
                                );
                            }
                            hours = copied
                                .iter()
                                .map(|w| Written {
                                    range: w.range,
                                    at: like_at,
                                })
                                .collect();
                        }
                    }
                }
            }
            (None, Some(_)) => {}
        }
    }
    f.finish(cx);

    if let Some((w, _)) = when {
        check_day(cx, &hours, &w.to_string(), &[], "");
    }
    Entry {
        section,
        when,
        name: name.map(|(n, _)| n).unwrap_or_default(),
        hours,
    }
}

fn read_date(cx: &mut Cx<'_>, v: &Value<'_>, section: Section) -> Option<(When, Loc)> {
    let at = cx.loc(v.span());
    let when = match v.get_ref() {
        DeValue::String(s) => match parse_date(s) {
            Ok(w) => w,
            Err(e) => {
                cx.err_at(at, e);
                return None;
            }
        },
        DeValue::Datetime(dt) => {
            let date = dt
                .date
                .filter(|_| dt.time.is_none() && dt.offset.is_none())
                .and_then(|d| {
                    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                });
            match date {
                Some(d) => When::On(d),
                None => {
                    cx.err_at(at, "`date` must be a date without a time, e.g. 2026-12-24");
                    return None;
                }
            }
        }
        _ => {
            cx.wrong_type(
                v,
                "date",
                "a date: \"YYYY-MM-DD\", or \"--MM-DD\" for every year",
            );
            return None;
        }
    };
    if section == Section::Workday && matches!(when, When::Yearly(..)) {
        cx.err_at(
            at,
            format!(
                "a moved workday needs a full date (YYYY-MM-DD), not `{when}`: \
                 moved workdays are decreed year by year"
            ),
        );
        return None;
    }
    Some((when, at))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `"YYYY-MM-DD"` or `"--MM-DD"` (every year).
fn parse_date(s: &str) -> Result<When, String> {
    let syntax = || {
        format!("`date` must be \"YYYY-MM-DD\", or \"--MM-DD\" for a day every year, found \"{s}\"")
    };
    let number = |part: &str, len: usize| -> Option<u32> {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let month_day = |md: &str| -> Option<(u32, u32)> {
        let (m, d) = md.split_once('-')?;
        Some((number(m, 2)?, number(d, 2)?))
    };
    let month_name = |m: u32| MONTHS.get((m as usize).wrapping_sub(1)).copied();
    let days_in = |y: i32, m: u32| {
        (28..=31)
            .rev()
            .find(|&d| NaiveDate::from_ymd_opt(y, m, d).is_some())
    };

    if let Some(md) = s.strip_prefix("--") {
        let (m, d) = month_day(md).ok_or_else(syntax)?;
        let Some(month) = month_name(m) else {
            return Err(format!(
                "`{s}`: there is no month {m:02} (months are 01 to 12)"
            ));
        };
        // Checked against a leap year: --02-29 is a day of leap years.
        if NaiveDate::from_ymd_opt(2000, m, d).is_none() {
            let max = days_in(2000, m).unwrap_or(31);
            return Err(format!(
                "`{s}` is not a day of the year ({month} has {max} days)"
            ));
        }
        return Ok(When::Yearly(m, d));
    }
    let (y, md) = s.split_once('-').ok_or_else(syntax)?;
    let year = number(y, 4).ok_or_else(syntax)?;
    let (m, d) = month_day(md).ok_or_else(syntax)?;
    let year = i32::try_from(year).map_err(|_| syntax())?;
    let Some(month) = month_name(m) else {
        return Err(format!(
            "`{s}`: there is no month {m:02} (months are 01 to 12)"
        ));
    };
    NaiveDate::from_ymd_opt(year, m, d)
        .map(When::On)
        .ok_or_else(|| {
            let max = days_in(year, m).unwrap_or(31);
            format!("`{s}` does not exist ({month} {year} has {max} days)")
        })
}

type Dated = BTreeMap<NaiveDate, Exception>;
type Yearly = BTreeMap<(u32, u32), Exception>;

/// Each day is listed once; a dated moved workday or special day may not
/// fall on an every-year holiday (the holiday would win). Returns the
/// exceptions by date, and the dated entries that decide their day.
fn check_days<'e>(cx: &mut Cx<'_>, entries: &'e [Entry]) -> (Dated, Yearly, Vec<&'e Entry>) {
    let mut seen: BTreeMap<When, (Section, Loc)> = BTreeMap::new();
    let mut dated = Dated::new();
    let mut yearly = Yearly::new();
    let mut deciding = Vec::new();
    let mut ordered: Vec<(&Entry, When, Loc)> = entries
        .iter()
        .filter_map(|e| e.when.map(|(w, at)| (e, w, at)))
        .collect();
    ordered.sort_by_key(|&(_, _, at)| at);
    for &(e, when, at) in &ordered {
        if let Some((first, first_at)) = seen.get(&when) {
            cx.err_at(
                at,
                format!(
                    "{when} is already listed as a {} at line {}; list each day once \
                     (a day is a holiday, a moved workday or a special day)",
                    first.noun(),
                    first_at.line
                ),
            );
            continue;
        }
        seen.insert(when, (e.section, at));
        deciding.push(e);
        let exception = Exception {
            kind: e.section.kind(e.name.clone()),
            hours: e.hours.iter().map(|w| w.range).collect(),
        };
        match when {
            When::On(d) => {
                dated.insert(d, exception);
            }
            When::Yearly(m, d) => {
                yearly.insert((m, d), exception);
            }
        }
    }
    for &(e, when, at) in &ordered {
        let When::On(date) = when else { continue };
        if e.section == Section::Holiday {
            continue;
        }
        let every_year = When::Yearly(date.month(), date.day());
        if let Some((Section::Holiday, holiday_at)) = seen.get(&every_year) {
            cx.err_at(
                at,
                format!(
                    "{when} is a holiday every year (`{every_year}` at line {}), and a holiday \
                     beats a {}, so this entry would never apply",
                    holiday_at.line,
                    e.section.noun()
                ),
            );
            deciding.retain(|d| !std::ptr::eq(*d, e));
        }
    }
    (dated, yearly, deciding)
}

/// A dated day's ranges must not overlap the overnight ranges of the day
/// before, and its own overnight ranges must not overlap the next day's
/// (when that day is not itself a dated entry, which checks its morning).
fn check_neighbours(cx: &mut Cx<'_>, calendar: &Calendar, entries: &[&Entry]) {
    for e in entries {
        let Some((When::On(date), _)) = e.when else {
            continue;
        };
        let today = When::On(date).to_string();
        if let Some(prev) = date.pred_opt() {
            check_day(
                cx,
                &e.hours,
                &today,
                calendar.hours_on(prev),
                &When::On(prev).to_string(),
            );
        }
        let Some(next) = date.succ_opt() else {
            continue;
        };
        if calendar.dated.contains_key(&next) {
            continue;
        }
        let next_name = When::On(next).to_string();
        for w in &e.hours {
            let Some(spill) = w.range.next_day() else {
                continue;
            };
            for t in calendar.hours_on(next) {
                if overlaps(spill, t.own_day()) {
                    cx.err_at(
                        w.at,
                        format!(
                            "`{}` runs overnight until {} on {next_name}, overlapping that \
                             day's `{t}`",
                            w.range,
                            hhmm(w.range.end_minute())
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let on = |y, m, d| Ok(When::On(NaiveDate::from_ymd_opt(y, m, d).unwrap()));
        assert_eq!(parse_date("2026-12-24"), on(2026, 12, 24));
        assert_eq!(parse_date("--03-15"), Ok(When::Yearly(3, 15)));
        assert_eq!(parse_date("--02-29"), Ok(When::Yearly(2, 29)));
        assert_eq!(
            parse_date("2026-02-30").unwrap_err(),
            "`2026-02-30` does not exist (February 2026 has 28 days)"
        );
        assert_eq!(
            parse_date("2028-02-30").unwrap_err(),
            "`2028-02-30` does not exist (February 2028 has 29 days)"
        );
        assert!(
            parse_date("2026-13-01")
                .unwrap_err()
                .contains("no month 13")
        );
        assert!(
            parse_date("--04-31")
                .unwrap_err()
                .contains("April has 30 days")
        );
        for bad in [
            "26-12-24",
            "2026-1-2",
            "2026/12/24",
            "--3-15",
            "-03-15",
            "",
            "2026-12-24T",
        ] {
            assert!(parse_date(bad).unwrap_err().contains("must be"), "{bad}");
        }
    }

    #[test]
    fn timezone_hints() {
        assert_eq!(suggest_timezone("europe/budapest"), Some("Europe/Budapest"));
        assert_eq!(suggest_timezone("Budapest"), Some("Europe/Budapest"));
        assert_eq!(suggest_timezone("Europe/Budapset"), Some("Europe/Budapest"));
        assert_eq!(suggest_timezone("New York"), Some("America/New_York"));
        assert_eq!(suggest_timezone("Mars/Olympus"), None);
    }

    #[test]
    fn typo_hints() {
        assert_eq!(
            closest("holiday", ["holidays", "hours"].into_iter()),
            Some("holidays")
        );
        // Two swapped letters are one typo.
        assert!(weekday_hint("fir").starts_with("did you mean `fri`?"));
        assert_eq!(suggest_timezone("Europe/Bduapest"), Some("Europe/Budapest"));
    }
}
