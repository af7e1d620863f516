#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotline_ivr::{Action, FlowError, FlowRun};

/// A scratch flow directory under the system temp dir, removed on drop.
pub struct TempFlows {
    pub dir: PathBuf,
}

impl TempFlows {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hotline-ivr-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        Self { dir }
    }

    /// Writes a flow file; the text is used exactly (line numbers matter).
    pub fn flow(&self, file: &str, text: &str) -> &Self {
        std::fs::write(self.dir.join(file), text).unwrap();
        self
    }

    pub fn prompts(&self, names: &[&str]) -> &Self {
        for n in names {
            std::fs::write(
                self.dir.join("prompts").join(format!("{n}.wav")),
                hotline_ivr::silent_wav(200),
            )
            .unwrap();
        }
        self
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempFlows {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Errors as `file-name:line:col: message`, without the temp dir.
pub fn brief(errors: &[FlowError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            let name = e.file.file_name().unwrap().to_string_lossy();
            format!("{name}:{}:{}: {}", e.line, e.col, e.message)
        })
        .collect()
}

pub fn drain(run: &mut FlowRun) -> Vec<Action> {
    std::iter::from_fn(|| run.poll_action()).collect()
}

pub fn play(names: &[&str]) -> Action {
    Action::Play {
        prompts: names.iter().map(|s| s.to_string()).collect(),
    }
}

/// A virtual clock: `at(ms)` is `t0 + ms`.
pub struct Clock {
    pub t0: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self { t0: Instant::now() }
    }

    pub fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
}
