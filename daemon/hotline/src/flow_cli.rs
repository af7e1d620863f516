//! `hotline flow …`: the admin's tools for flow files. The work is done by hotline-ivr
//! (the same loader, checker and interpreter the daemon runs); this prints it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;

use crate::config::{Config, ProcessEnv};

#[derive(Subcommand)]
pub enum FlowCommand {
    /// Check every flow, calendar, VIP list and prompt; errors as file:line:col.
    /// Exit status 1 when there is any error (warnings alone exit 0).
    Check {
        /// The flows directory (default: the config's flows.dir).
        path: Option<PathBuf>,
    },
    /// Walk a call through the flows on a virtual clock and print what happens.
    Simulate {
        /// The number the caller dialled.
        #[arg(long)]
        called: String,
        /// The caller's number ("anonymous" for a withheld number).
        #[arg(long)]
        caller: String,
        /// When the call is answered, RFC 3339 (e.g. 2026-12-24T10:00:00+01:00).
        #[arg(long)]
        at: String,
        /// Keys pressed at each point the flow waits, comma separated (e.g. 1,#,06301234567#).
        #[arg(long, value_delimiter = ',')]
        digits: Vec<String>,
        /// Seconds until an operator answers a queued call; without it nobody answers.
        #[arg(long)]
        queue_wait: Option<u64>,
        /// Expected wait (seconds) the queue would announce.
        #[arg(long, default_value_t = 60)]
        expected_wait: u64,
        /// Minutes until the callback Hotline would promise (steps with promise_computed);
        /// without it none comes and the fallback is said.
        #[arg(long)]
        promise_in: Option<u64>,
        /// The flows directory (default: the config's flows.dir).
        #[arg(long)]
        flows: Option<PathBuf>,
    },
    /// Print the JSON Schema of flow files (for editors: see ivr-flows/README.md).
    Schema,
}

/// The flows directory and the dial plan: the given directory, else the config's.
fn settings(
    given: Option<PathBuf>,
    config: Option<&Path>,
) -> Result<(PathBuf, hotline_ivr::dialplan::DialPlan), String> {
    let config = Config::load_for_command(config, &ProcessEnv).map_err(|e| e.to_string())?;
    let plan = config.trunk.map(|t| t.dialplan).unwrap_or(config.dialplan);
    Ok((given.unwrap_or(config.flows_dir), plan))
}

/// Returns the process exit status. `config`: the settings file (`hotline --config`), for
/// flows.dir and the dial plan transfers are checked against.
pub fn run(cmd: FlowCommand, config: Option<&Path>) -> Result<u8, String> {
    match cmd {
        FlowCommand::Check { path } => {
            let (dir, plan) = settings(path, config)?;
            Ok(check(&dir, &plan))
        }
        FlowCommand::Simulate {
            called,
            caller,
            at,
            digits,
            queue_wait,
            expected_wait,
            promise_in,
            flows,
        } => {
            let at = chrono::DateTime::parse_from_rfc3339(&at).map_err(|e| {
                format!("--at {at:?}: {e}; use RFC 3339, e.g. 2026-12-24T10:00:00+01:00")
            })?;
            let (dir, dial_plan) = settings(flows, config)?;
            let set = hotline_ivr::load_dir(&dir).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                format!(
                    "the flows in {} have errors (run `hotline flow check`):\n{}",
                    dir.display(),
                    lines.join("\n")
                )
            })?;
            let input = hotline_ivr::SimInput {
                called,
                caller,
                at,
                digits,
                queue_wait: queue_wait.map(Duration::from_secs),
                expected_wait: Duration::from_secs(expected_wait),
                promise_in: promise_in.map(|m| Duration::from_secs(m.saturating_mul(60))),
                dial_plan,
            };
            let lines = hotline_ivr::simulate(&set, &input).map_err(|e| e.to_string())?;
            for line in lines {
                println!("{line}");
            }
            Ok(0)
        }
        FlowCommand::Schema => {
            println!("{}", hotline_ivr::FLOW_SCHEMA_JSON.trim_end());
            Ok(0)
        }
    }
}

fn check(dir: &Path, plan: &hotline_ivr::dialplan::DialPlan) -> u8 {
    let mut report = hotline_ivr::check_dir(dir);
    if report.errors.is_empty()
        && let Ok(set) = hotline_ivr::load_dir(dir)
    {
        report
            .warnings
            .extend(hotline_ivr::dialplan::transfer_warnings(&set, plan));
    }
    for e in &report.errors {
        println!("{e}");
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    let summary = format!(
        "{}: {} error{}, {} warning{}",
        dir.display(),
        report.errors.len(),
        if report.errors.len() == 1 { "" } else { "s" },
        report.warnings.len(),
        if report.warnings.len() == 1 { "" } else { "s" },
    );
    eprintln!("{summary}");
    u8::from(!report.errors.is_empty())
}
