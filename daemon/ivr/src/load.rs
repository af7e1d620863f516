use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{FlowError, Loc};
use crate::model::Flow;
use crate::parse::{LineIndex, parse_flow, valid_prompt_name};
use crate::sha256::{sha256, short_hash};
use crate::wav;

/// All flows of a directory, validated together.
#[derive(Debug, Clone)]
pub struct FlowSet {
    dir: PathBuf,
    flows: Vec<Arc<Flow>>,
    by_number: HashMap<String, Arc<Flow>>,
    default: Option<Arc<Flow>>,
    version: String,
}

impl FlowSet {
    /// The flow listing `called` exactly, else the default flow.
    pub fn for_number(&self, called: &str) -> Option<Arc<Flow>> {
        self.by_number
            .get(called)
            .or(self.default.as_ref())
            .map(Arc::clone)
    }

    /// Every prompt any flow can play.
    pub fn prompt_names(&self) -> BTreeSet<String> {
        self.flows
            .iter()
            .flat_map(|f| f.steps.values())
            .flat_map(|s| s.kind.prompt_refs())
            .map(|r| r.name.clone())
            .collect()
    }

    pub fn prompt_path(&self, name: &str) -> PathBuf {
        prompt_path(&self.dir, name)
    }

    /// Short hash over every flow file (names and contents); changes when
    /// any flow changes.
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
}

fn prompt_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("prompts").join(format!("{name}.wav"))
}

/// Loads every `*.toml` in `dir` (not subdirectories). Returns all errors
/// found, sorted by file and position, or the validated set.
pub fn load_dir(dir: &Path) -> Result<FlowSet, Vec<FlowError>> {
    let mut files = match list_flow_files(dir) {
        Ok(f) => f,
        Err(e) => return Err(vec![e]),
    };
    files.sort();
    if files.is_empty() {
        return Err(vec![FlowError::whole(
            dir,
            "no flow files (*.toml) in this directory",
        )]);
    }

    let mut errors = Vec::new();
    let mut flows = Vec::new();
    let mut set_hash_input = Vec::new();
    for path in &files {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                errors.push(FlowError::whole(path, format!("cannot read: {e}")));
                continue;
            }
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        set_hash_input.extend_from_slice(name.unwrap_or_default().as_bytes());
        set_hash_input.push(0);
        set_hash_input.extend_from_slice(&sha256(&bytes));

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
        let (flow, errs) = parse_flow(path, text, short_hash(&bytes));
        errors.extend(errs);
        flows.extend(flow);
    }

    check_across_files(&flows, &mut errors);
    check_prompts(dir, &flows, &mut errors);

    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        errors.dedup();
        return Err(errors);
    }

    let flows: Vec<Arc<Flow>> = flows.into_iter().map(Arc::new).collect();
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
    Ok(FlowSet {
        dir: dir.to_owned(),
        flows,
        by_number,
        default,
        version: short_hash(&set_hash_input),
    })
}

fn list_flow_files(dir: &Path) -> Result<Vec<PathBuf>, FlowError> {
    let read_err =
        |e: std::io::Error| FlowError::whole(dir, format!("cannot read flow directory: {e}"));
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        // Editors' hidden swap/backup files are not flows.
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
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

/// Every referenced prompt must exist as `prompts/NAME.wav` in a format the
/// media engine plays; reported at each place it is referenced.
fn check_prompts(dir: &Path, flows: &[Flow], errors: &mut Vec<FlowError>) {
    let mut checked: HashMap<String, Result<(), String>> = HashMap::new();
    for f in flows {
        for step in f.steps.values() {
            // Bad names are reported by the parser; never build paths from them.
            for r in step
                .kind
                .prompt_refs()
                .into_iter()
                .filter(|r| valid_prompt_name(&r.name))
            {
                let result = checked
                    .entry(r.name.clone())
                    .or_insert_with(|| check_prompt_file(&prompt_path(dir, &r.name)));
                if let Err(msg) = result {
                    errors.push(FlowError::at(
                        &f.file,
                        r.at,
                        format!("prompt `{}`: {msg}", r.name),
                    ));
                }
            }
        }
    }
}

fn check_prompt_file(path: &Path) -> Result<(), String> {
    match fs::read(path) {
        Ok(bytes) => wav::check_header(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("file {} not found", path.display()))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
