#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotline_ivr::{Action, CallContext, FlowError, FlowRun, FlowSet, load_dir};

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

    /// Writes any file under the directory (`vip/vip.txt`, `queues.toml`).
    pub fn file(&self, rel: &str, text: &str) -> &Self {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// Copies `tests/fixtures/calendars/NAME.toml` into `calendars/`.
    pub fn calendar(&self, name: &str) -> &Self {
        let from = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/calendars")
            .join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&from).unwrap();
        self.file(&format!("calendars/{name}.toml"), &text)
    }

    /// The prompts queue announcements and callback read-backs are built
    /// from (200 ms of silence each).
    pub fn built_in_prompts(&self) -> &Self {
        let mut names: Vec<String> = (0..10).map(|d| format!("digit-{d}")).collect();
        names.extend(
            [
                "queue-position",
                "queue-position-many",
                "wait-under-1",
                "wait-under-2",
                "wait-under-3",
                "wait-under-5",
                "wait-under-10",
                "wait-under-15",
                "wait-under-20",
                "wait-under-30",
                "wait-over-30",
            ]
            .map(String::from),
        );
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.prompts(&refs)
    }

    /// Loads the set, failing the test with every error.
    pub fn load(&self) -> FlowSet {
        load_dir(&self.dir).unwrap_or_else(|e| panic!("{:#?}", brief(&e)))
    }
}

/// A started run of the flow answering `called`, for `caller` at `at`.
pub fn call(set: &FlowSet, called: &str, caller: &str, at: &str, clock: &Clock) -> FlowRun {
    let mut ctx = ctx_at(caller, at);
    ctx.called = called.to_owned();
    let mut run = FlowRun::new(set.for_number(called).unwrap(), ctx);
    run.start(clock.at(0));
    run
}

/// Runs prompts to their end (each `Play` reported done 1 ms later) until
/// the flow waits for something else; returns every action.
pub fn play_through(run: &mut FlowRun, clock: &Clock, mut t: u64) -> (Vec<Action>, u64) {
    let mut all = Vec::new();
    loop {
        let actions = drain(run);
        let played = actions.iter().any(|a| matches!(a, Action::Play { .. }));
        all.extend(actions);
        if !played || run.is_finished() {
            return (all, t);
        }
        t += 1;
        run.on_playback_done(clock.at(t));
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

/// A caller with a number, calling "100" on a Monday morning in Budapest.
pub fn ctx() -> CallContext {
    ctx_at("06301234567", "2026-03-02T10:00:00+01:00")
}

/// A call from `caller` answered at `at` (RFC 3339).
pub fn ctx_at(caller: &str, at: &str) -> CallContext {
    CallContext {
        caller: caller.to_owned(),
        called: "100".to_owned(),
        answered_at: chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&chrono::Utc),
    }
}
