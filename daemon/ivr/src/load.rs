//! Loading a flows directory as one set: flow files, `queues.toml`,
//! `calendars/`, `vip/` and the prompts they use, checked together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::calendar::{Calendar, load_calendars};
use crate::check;
use crate::error::{FlowError, Loc};
use crate::model::{Flow, Ref};
use crate::parse::{LineIndex, parse_flow, valid_prompt_name};
use crate::queues::{CallbackMode, QUEUES_FILE, QueueDef, parse_queues};
use crate::vip::{VipList, load_vip_lists};
use crate::wav;

/// Everything `hotline flow check` reports. A set loads only when
/// `errors` is empty; warnings never stop it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub errors: Vec<FlowError>,
    pub warnings: Vec<FlowError>,
}

/// All flows of a directory with the queues, calendars, VIP lists and
/// prompts they use, validated together.
#[derive(Debug, Clone)]
pub struct FlowSet {
    dir: PathBuf,
    flows: Vec<Arc<Flow>>,
    by_number: HashMap<String, Arc<Flow>>,
    default: Option<Arc<Flow>>,
    version: String,
    queues: BTreeMap<String, QueueDef>,
    calendars: BTreeMap<String, Arc<Calendar>>,
    vip_lists: BTreeMap<String, Arc<VipList>>,
    /// Play time of every prompt any flow can play.
    prompt_ms: BTreeMap<String, u64>,
    warnings: Vec<FlowError>,
}

impl FlowSet {
    /// The flow listing `called` exactly, else the default flow.
    pub fn for_number(&self, called: &str) -> Option<Arc<Flow>> {
        self.by_number
            .get(called)
            .or(self.default.as_ref())
            .map(Arc::clone)
    }

    /// Every prompt any flow can play (announcement and read-back digits
    /// included).
    pub fn prompt_names(&self) -> BTreeSet<String> {
        self.prompt_ms.keys().cloned().collect()
    }

    pub fn prompt_path(&self, name: &str) -> PathBuf {
        prompt_path(&self.dir, name)
    }

    /// How long a prompt plays (from its WAV header), if a flow uses it.
    pub fn prompt_duration(&self, name: &str) -> Option<Duration> {
        self.prompt_ms
            .get(name)
            .map(|&ms| Duration::from_millis(ms))
    }

    /// Short hash over every file of the set (flows, queues, calendars,
    /// VIP lists; names and contents); changes when any of them changes.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All flows, in file-name order.
    pub fn flows(&self) -> &[Arc<Flow>] {
        &self.flows
    }

    pub fn flow(&self, name: &str) -> Option<Arc<Flow>> {
        self.flows.iter().find(|f| f.name == name).map(Arc::clone)
    }

    /// Queues declared in `queues.toml`.
    pub fn queues(&self) -> &BTreeMap<String, QueueDef> {
        &self.queues
    }

    /// Calendars from `calendars/*.toml`, by file stem.
    pub fn calendars(&self) -> &BTreeMap<String, Arc<Calendar>> {
        &self.calendars
    }

    /// One calendar by name (file stem), e.g. the one a queue's callback
    /// window names (`queue.callbacks.window.calendar()`).
    pub fn calendar(&self, name: &str) -> Option<Arc<Calendar>> {
        self.calendars.get(name).map(Arc::clone)
    }

    /// VIP lists from `vip/*.txt`, by file stem.
    pub fn vip_lists(&self) -> &BTreeMap<String, Arc<VipList>> {
        &self.vip_lists
    }

    /// What `flow check` would warn about (the set loaded anyway).
    pub fn warnings(&self) -> &[FlowError] {
        &self.warnings
    }
}

fn prompt_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("prompts").join(format!("{name}.wav"))
}

/// Loads the set in `dir`, or every error found, sorted by file and position.
pub fn load_dir(dir: &Path) -> Result<FlowSet, Vec<FlowError>> {
    match load(dir) {
        (Some(set), report) if report.errors.is_empty() => Ok(set),
        (_, report) => Err(report.errors),
    }
}

/// Every error and warning in `dir`, as `hotline flow check` prints them.
pub fn check_dir(dir: &Path) -> CheckReport {
    load(dir).1
}

fn load(dir: &Path) -> (Option<FlowSet>, CheckReport) {
    let mut report = CheckReport::default();
    let files = match list_flow_files(dir) {
        Ok(f) => f,
        Err(e) => {
            report.errors.push(e);
            return (None, report);
        }
    };
    if files.is_empty() {
        report.errors.push(FlowError::whole(
            dir,
            "no flow files (*.toml) in this directory",
        ));
        return (None, report);
    }

    let mut hash_input = Vec::new();
    let mut flows = Vec::new();
    for path in &files {
        let Some(bytes) = read_file(path, dir, &mut hash_input, &mut report.errors) else {
            continue;
        };
        let Some(text) = utf8(path, &bytes, &mut report.errors) else {
            continue;
        };
        let parsed = parse_flow(path, text, short_hash(&bytes));
        report.errors.extend(parsed.errors);
        report.warnings.extend(parsed.warnings);
        flows.extend(parsed.flow);
    }

    let queues_path = dir.join(QUEUES_FILE);
    let have_queues_file = queues_path.is_file();
    let mut queues = BTreeMap::new();
    let mut queues_unreadable = false;
    if have_queues_file
        && let Some(bytes) = read_file(&queues_path, dir, &mut hash_input, &mut report.errors)
        && let Some(text) = utf8(&queues_path, &bytes, &mut report.errors)
    {
        let (q, errs) = parse_queues(&queues_path, text);
        // A file that did not parse at all declares nothing we know of:
        // don't follow its errors with one per queue a flow names.
        queues_unreadable = q.is_empty() && !errs.is_empty();
        report.errors.extend(errs);
        queues = q;
    }

    let cal_dir = dir.join("calendars");
    // Their content goes into the version; the calendar module reads them.
    let cal_files = files_with_ext(&cal_dir, "toml");
    for f in &cal_files {
        read_file(f, dir, &mut hash_input, &mut report.errors);
    }
    let calendars = match load_calendars(&cal_dir) {
        Ok(c) => c,
        Err(errs) => {
            report.errors.extend(errs);
            BTreeMap::new()
        }
    };
    // Files that exist but did not load: their errors are reported, so
    // flows naming them get no second "no such calendar" error.
    let calendar_files: BTreeSet<String> = cal_files
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();

    let vip_dir = dir.join("vip");
    for f in &files_with_ext(&vip_dir, "txt") {
        read_file(f, dir, &mut hash_input, &mut report.errors);
    }
    let vip_lists = load_vip_lists(&vip_dir, &mut report.errors, &mut report.warnings);

    // A callback window naming a calendar reads its rules in the calendar's
    // zone unless it names its own.
    for q in queues.values_mut() {
        if let Some(c) = q.callbacks.window.calendar().and_then(|n| calendars.get(n)) {
            q.callbacks.take_calendar_zone(c);
        }
    }

    check_across_files(&flows, &mut report.errors);
    let world = check::World {
        queues: &queues,
        have_queues_file,
        queues_unreadable,
        calendars: &calendars,
        calendar_files: &calendar_files,
        vip_lists: &vip_lists,
    };
    for f in &flows {
        check::check_flow(f, &world, &mut report);
    }
    check::check_queues(&queues_path, &world, &mut report);
    let prompt_ms = check_prompts(dir, &flows, (&queues_path, &queues), &mut report.errors);

    for list in [&mut report.errors, &mut report.warnings] {
        list.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        list.dedup();
    }
    if !report.errors.is_empty() {
        return (None, report);
    }

    let flows: Vec<Arc<Flow>> = flows
        .into_iter()
        .map(|mut f| {
            resolve(&mut f, &calendars, &vip_lists);
            Arc::new(f)
        })
        .collect();
    let mut by_number = HashMap::new();
    let mut default = None;
    for f in &flows {
        for n in &f.numbers {
            by_number.insert(n.name.clone(), Arc::clone(f));
        }
        if f.is_default() {
            default = Some(Arc::clone(f));
        }
    }
    let set = FlowSet {
        dir: dir.to_owned(),
        flows,
        by_number,
        default,
        version: short_hash(&hash_input),
        queues,
        calendars,
        vip_lists,
        prompt_ms,
        warnings: report.warnings.clone(),
    };
    (Some(set), report)
}

/// First 12 hex digits of the SHA-256 (`sha256sum FILE | cut -c1-12`), so an
/// admin can tell which file a CDR's flow version came from; long enough not
/// to collide between versions of a flow.
fn short_hash(data: &[u8]) -> String {
    Sha256::digest(data)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a file of the set and adds it to the version hash.
fn read_file(
    path: &Path,
    dir: &Path,
    hash_input: &mut Vec<u8>,
    errors: &mut Vec<FlowError>,
) -> Option<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => {
            let rel = path.strip_prefix(dir).unwrap_or(path);
            hash_input.extend_from_slice(rel.to_string_lossy().as_bytes());
            hash_input.push(0);
            hash_input.extend_from_slice(&Sha256::digest(&bytes));
            Some(bytes)
        }
        Err(e) => {
            errors.push(FlowError::whole(path, format!("cannot read: {e}")));
            None
        }
    }
}

fn utf8<'b>(path: &Path, bytes: &'b [u8], errors: &mut Vec<FlowError>) -> Option<&'b str> {
    match std::str::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            let at = LineIndex::new(prefix).loc(prefix.len());
            errors.push(FlowError::at(path, at, "file is not valid UTF-8"));
            None
        }
    }
}

/// Gives the flow the set's calendars and VIP lists it names.
fn resolve(
    flow: &mut Flow,
    calendars: &BTreeMap<String, Arc<Calendar>>,
    vip_lists: &BTreeMap<String, Arc<VipList>>,
) {
    let refs = check::file_refs(flow);
    let cals: Vec<String> = refs.calendars.iter().map(|r| r.name.clone()).collect();
    let vips: Vec<String> = refs.vip_lists.iter().map(|r| r.name.clone()).collect();
    for name in cals {
        if let Some(c) = calendars.get(&name) {
            flow.calendars.insert(name, Arc::clone(c));
        }
    }
    for name in vips {
        if let Some(v) = vip_lists.get(&name) {
            flow.vip_lists.insert(name, Arc::clone(v));
        }
    }
}

/// Sorted `*.EXT` files directly in `dir` (none when it does not exist).
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden && p.extension().is_some_and(|e| e == ext) && p.is_file()
        })
        .collect();
    files.sort();
    files
}

fn list_flow_files(dir: &Path) -> Result<Vec<PathBuf>, FlowError> {
    let read_err =
        |e: std::io::Error| FlowError::whole(dir, format!("cannot read flow directory: {e}"));
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Editors' hidden swap/backup files are not flows, nor is the queue list.
        if !name.starts_with('.')
            && name != QUEUES_FILE
            && path.extension().is_some_and(|e| e == "toml")
            && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Rules that span files: unique names, one default, each number once.
fn check_across_files(flows: &[Flow], errors: &mut Vec<FlowError>) {
    let mut names: BTreeMap<&str, &Flow> = BTreeMap::new();
    let mut numbers: BTreeMap<&str, (&Flow, Loc)> = BTreeMap::new();
    let mut default: Option<&Flow> = None;
    let place = |f: &Flow, at: Loc| format!("{}:{at}", f.file.display());

    for f in flows {
        // Empty: `name` was missing or empty, already reported.
        if !f.name.is_empty() {
            if let Some(first) = names.get(f.name.as_str()) {
                errors.push(FlowError::at(
                    &f.file,
                    f.name_at,
                    format!(
                        "flow name `{}` is already used by {}",
                        f.name,
                        place(first, first.name_at)
                    ),
                ));
            } else {
                names.insert(&f.name, f);
            }
        }
        if let Some(at) = f.default {
            match default {
                Some(first) => errors.push(FlowError::at(
                    &f.file,
                    at,
                    format!(
                        "only one flow may be the default; `{}` already is ({})",
                        first.name,
                        place(first, first.default.unwrap_or_default())
                    ),
                )),
                None => default = Some(f),
            }
        }
        let mut own = BTreeSet::new();
        // Repeats inside one file are reported by the parser.
        for n in f.numbers.iter().filter(|n| own.insert(n.name.as_str())) {
            match numbers.get(n.name.as_str()) {
                Some((first, first_at)) => errors.push(FlowError::at(
                    &f.file,
                    n.at,
                    format!(
                        "number `{}` is already answered by flow `{}` ({})",
                        n.name,
                        first.name,
                        place(first, *first_at)
                    ),
                )),
                None => {
                    numbers.insert(&n.name, (f, n.at));
                }
            }
        }
    }
}

/// Every referenced prompt (flows, and queues' callback confirm prompts)
/// must exist as `prompts/NAME.wav` in a format the media engine plays;
/// reported at each place it is referenced. Returns the play time of each
/// good one.
fn check_prompts(
    dir: &Path,
    flows: &[Flow],
    (queues_path, queues): (&Path, &BTreeMap<String, QueueDef>),
    errors: &mut Vec<FlowError>,
) -> BTreeMap<String, u64> {
    let mut checked: HashMap<String, Result<u64, String>> = HashMap::new();
    let mut check = |name: &str| {
        checked
            .entry(name.to_owned())
            .or_insert_with(|| check_prompt_file(&prompt_path(dir, name)))
            .clone()
    };
    for f in flows {
        let refs: Vec<Ref> = f
            .steps
            .values()
            .flat_map(|s| s.kind.written_prompt_refs())
            .chain(f.offers.values().flat_map(|o| o.prompt_refs()))
            .collect();
        // Bad names are reported by the parser; never build paths from them.
        for r in refs.into_iter().filter(|r| valid_prompt_name(&r.name)) {
            if let Err(msg) = check(&r.name) {
                errors.push(FlowError::at(
                    &f.file,
                    r.at,
                    format!("prompt `{}`: {msg}", r.name),
                ));
            }
        }
        // Prompts a setting plays by fixed names: one line per setting.
        for step in f.steps.values() {
            for (at, what, names) in step.kind.built_prompts(step.at) {
                let missing: Vec<&str> = names
                    .iter()
                    .filter(|n| check(n).is_err())
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    errors.push(FlowError::at(
                        &f.file,
                        at,
                        format!(
                            "{what} plays prompts that are missing or not 8000 Hz mono 16-bit \
                             PCM WAV: {} (prompts/make-prompts.sh makes them)",
                            missing.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    for q in queues.values() {
        if let CallbackMode::CustomerFirst {
            confirm_prompt: r, ..
        } = &q.callbacks.mode
            && valid_prompt_name(&r.name)
            && let Err(msg) = check(&r.name)
        {
            errors.push(FlowError::at(
                queues_path,
                r.at,
                format!("prompt `{}`: {msg}", r.name),
            ));
        }
    }
    checked
        .into_iter()
        .filter_map(|(name, r)| r.ok().map(|ms| (name, ms)))
        .collect()
}

fn check_prompt_file(path: &Path) -> Result<u64, String> {
    match fs::read(path) {
        Ok(bytes) => wav::check_prompt(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("file {} not found", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::short_hash;

    #[test]
    fn versions_are_sha256sum_prefixes() {
        // `printf abc | sha256sum | cut -c1-12`
        assert_eq!(short_hash(b"abc"), "ba7816bf8f01");
        assert_eq!(short_hash(b""), "e3b0c44298fc");
    }
}
