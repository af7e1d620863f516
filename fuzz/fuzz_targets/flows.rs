//! Admins' files through the checker `hotline flow check` runs: the input is split into
//! a flow file, a calendar and queues.toml, written into a directory beside the example
//! flows' prompts, and checked. Errors are expected; panics are not.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A directory of this process's own, with the example prompts copied in once.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hotline-fuzz-flows-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("calendars")).unwrap();
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ivr-flows");
        let prompts = dir.join("prompts");
        std::fs::create_dir_all(&prompts).unwrap();
        if let Ok(entries) = std::fs::read_dir(examples.join("prompts")) {
            for e in entries.flatten() {
                let _ = std::fs::copy(e.path(), prompts.join(e.file_name()));
            }
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    // Parts are separated by a NUL byte: flow, calendar, queues.
    let mut parts = data.split(|b| *b == 0);
    let flow = parts.next().unwrap_or_default();
    let calendar = parts.next().unwrap_or_default();
    let queues = parts.next().unwrap_or_default();
    let dir = dir();
    std::fs::write(dir.join("main.toml"), flow).unwrap();
    std::fs::write(dir.join("calendars/fuzz.toml"), calendar).unwrap();
    std::fs::write(dir.join("queues.toml"), queues).unwrap();
    let report = hotline_ivr::check_dir(dir);
    for e in report.errors.iter().chain(&report.warnings) {
        let _ = e.to_string();
    }
    if let Ok(set) = hotline_ivr::load_dir(dir) {
        // A call through what loaded, pressing 1 wherever it waits.
        let input = hotline_ivr::SimInput {
            called: "100".into(),
            caller: "+36301234567".into(),
            at: chrono::DateTime::parse_from_rfc3339("2026-12-24T10:00:00+01:00").unwrap(),
            digits: vec!["1".into(), "1".into(), "-".into()],
            queue_wait: Some(std::time::Duration::from_secs(30)),
            expected_wait: std::time::Duration::from_secs(60),
            promise_in: Some(std::time::Duration::from_secs(600)),
            dial_plan: Default::default(),
        };
        let _ = hotline_ivr::simulate(&set, &input);
    }
});
