//! The running flow set: loading it whole (flows, prompts), and replacing it atomically on
//! SIGHUP or when a file under the flows directory changes. A set with any error never
//! replaces a good one; calls in progress keep the set they started with.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::ivr_call::PromptLibrary;
use notify_debouncer_full::notify::RecursiveMode;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::context::{Calls, LoadedFlows};

/// Loads every flow and the prompts they name; every problem is reported, one per line.
pub fn load(dir: &Path) -> Result<LoadedFlows, String> {
    let set = hotline_ivr::load_dir(dir).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    // Warnings don't stop a set (unreachable steps, unused offers), but admins should see them.
    for w in set.warnings() {
        warn!("flows: {w}");
    }
    let mut prompts = PromptLibrary::new();
    let mut problems = Vec::new();
    for name in set.prompt_names() {
        match hotline_media::wav::load_prompt(&set.prompt_path(&name)) {
            Ok(p) => {
                prompts.insert(name, p);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(LoadedFlows {
        set,
        prompts: Arc::new(prompts),
    })
}

/// Checks the whole set and swaps it in, or keeps the running one and logs why.
pub fn reload(calls: &Calls, dir: &Path, why: &str) {
    let running = match calls.flows.read() {
        Ok(f) => f.set.version().to_string(),
        Err(poisoned) => poisoned.into_inner().set.version().to_string(),
    };
    match load(dir) {
        Ok(flows) if flows.set.version() == running => {
            info!(trigger = why, flows_version = running, "flows unchanged");
        }
        Ok(flows) => {
            info!(
                trigger = why,
                from = running,
                to = flows.set.version(),
                "flows reloaded"
            );
            match calls.flows.write() {
                Ok(mut current) => *current = Arc::new(flows),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(flows),
            }
            calls.flows_changed.notify_one();
        }
        Err(e) => error!(
            trigger = why,
            flows_version = running,
            "reload refused, keeping the running flows:\n{e}"
        ),
    }
}

/// How long the directory must be quiet before a reload: an editor's save (temp file,
/// rename) or a `cp -r` of several files becomes one reload.
const QUIET: Duration = Duration::from_millis(500);

/// Watches `dir` recursively; each burst of changes yields one `()`. The watcher stops
/// when the returned guard is dropped. Without inotify the daemon still reloads on SIGHUP.
pub fn watch(dir: &Path) -> (mpsc::Receiver<()>, Option<impl Drop>) {
    let (tx, rx) = mpsc::channel(1);
    let debouncer = notify_debouncer_full::new_debouncer(
        QUIET,
        None,
        move |result: notify_debouncer_full::DebounceEventResult| {
            let relevant = match result {
                // Reads and metadata-only access don't change the set.
                Ok(events) => events.iter().any(|e| !e.kind.is_access()),
                Err(errors) => {
                    warn!("watching flows: {errors:?}");
                    false
                }
            };
            // A full channel means a reload is already pending, which will see this change.
            if relevant {
                let _ = tx.try_send(());
            }
        },
    );
    let mut debouncer = match debouncer {
        Ok(d) => d,
        Err(e) => {
            warn!("cannot watch {}: {e}; reload with SIGHUP", dir.display());
            return (rx, None);
        }
    };
    if let Err(e) = debouncer.watch(dir, RecursiveMode::Recursive) {
        warn!("cannot watch {}: {e}; reload with SIGHUP", dir.display());
        return (rx, None);
    }
    (rx, Some(debouncer))
}
