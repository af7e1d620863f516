//! `hotline`: the contact-center daemon and its admin commands.
//!
//! This binary wires sockets, timers and signals to the sans-IO cores (hotline-sip,
//! hotline-media, hotline-ivr) and the store (hotline-core). Protocol logic lives there.

mod accounts;
mod acd_driver;
mod actors;
mod api;
mod backup;
mod browser_phone;
mod call;
mod callbacks;
mod click_to_call;
mod config;
mod console_link;
mod context;
mod control;
mod flow_cli;
mod flows;
mod logging;
mod metrics;
mod net;
mod operator_sync;
mod outbound;
mod recording;
mod relay;
mod secrets;
mod security;
mod sip_driver;
mod sip_tcp;
mod state_log;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hotline_core::operators::SipDigest;
use hotline_core::store::{Store, redact};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{Config, ProcessEnv};
use crate::context::Calls;

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "Contact-center daemon: SIP/RTP IVR, callbacks, operator console"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Settings file. Default: $HOTLINE_CONFIG, else /etc/hotline/hotline.toml when it
    /// exists, else the built-in defaults (see config/hotline.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator with a SIP account; the SIP password is read from standard input.
    Add {
        /// Login and queue-member name (letters, digits, '.', '_', '-').
        name: String,
        /// The SIP user their phone registers as (e.g. an extension, 1001).
        #[arg(long)]
        sip_user: String,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Concurrent chats (1–10).
        #[arg(long, default_value_t = 3)]
        chat_capacity: i64,
        /// The digest algorithm the phone is challenged with: MD5 (every phone) or SHA-256.
        #[arg(long, default_value = "MD5")]
        digest: String,
        /// Read the SIP password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List operators (name, SIP user, display name, realm, chat capacity, digest).
    List,
    /// Choose the digest algorithm the operator's phone is challenged with (the only
    /// challenge it gets): MD5, which every phone answers, or SHA-256 (RFC 8760).
    Digest { name: String, algorithm: String },
    /// Direct callback: the operator's own number (a number routed to the hotline, shown
    /// when they call customers) and how long a customer they called stays linked to
    /// them. Without options, shows the settings; options not given keep their values.
    Direct {
        /// The operator (as in `operator add`).
        name: String,
        /// The own number: digits, optionally after one leading + (spaces, - allowed).
        #[arg(long)]
        number: Option<String>,
        /// 1: the next call only, within --minutes; 2: any call within --hours; 3: until
        /// the end of the next working day of --calendar; 4: for --days (on --calendar's
        /// clock).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=4))]
        mode: Option<i64>,
        /// Mode 1's window (1–1440; default 30).
        #[arg(long)]
        minutes: Option<i64>,
        /// Mode 2's window (1–168; default 24).
        #[arg(long)]
        hours: Option<i64>,
        /// Mode 4's length (1–365; default 7).
        #[arg(long)]
        days: Option<i64>,
        /// A calendar of the flows directory (calendars/NAME.toml): needed by modes 3 and 4.
        #[arg(long)]
        calendar: Option<String>,
        /// Turn direct callback off: no own number; the operator's links end.
        #[arg(long, conflicts_with_all = ["number", "mode", "minutes", "hours", "days", "calendar"])]
        off: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a web console user; the password is read from standard input.
    Add {
        /// The login name.
        #[arg(long)]
        name: String,
        /// operator, supervisor or admin.
        #[arg(long, default_value = "operator")]
        role: String,
        #[arg(long, default_value = "")]
        display_name: String,
        /// The operator account (phone, queues, chats) this user works as.
        #[arg(long)]
        operator: Option<String>,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (SIP, RTP, HTTP).
    Serve,
    /// Create or upgrade the database schema and exit.
    Migrate,
    /// Manage operators: who may register a phone and take calls.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Manage web console users (`user add --role admin` bootstraps the first admin).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check, simulate and describe IVR flow files.
    Flow {
        #[command(subcommand)]
        command: flow_cli::FlowCommand,
    },
    /// Print the newest callback requests as CSV (newest first).
    Callbacks {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Print the shared callback list as CSV: one entry per number, oldest promise first.
    CallbackList {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// How promised callback times were kept, for entries first noted in the last N days.
    CallbackReport {
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
    /// Print the newest missed calls as CSV (newest first).
    Missed {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Print the newest call detail records as CSV (newest first): times in ms and ISO
    /// 8601, duration and billsec (seconds, as Asterisk's Master.csv), queue, wait, hold,
    /// transfers, every operator leg, wrap-up.
    Calls {
        /// How many records.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Calls that started at or after this time (RFC 3339, or a date: its midnight UTC).
        #[arg(long, value_parser = parse_instant)]
        since: Option<i64>,
        /// Calls that started before this time (RFC 3339, or a date: its midnight UTC).
        #[arg(long, value_parser = parse_instant)]
        until: Option<i64>,
    },
    /// Show what the running daemon does now (calls in progress, phone registrations,
    /// queues, chats, operators), as a table or JSON; asks it over its control socket.
    Show {
        view: control::View,
        /// An array of objects (stable snake_case keys) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// End a call in progress (its SIP Call-ID, as `show calls` lists it): every party
    /// gets BYE, as if the operator hung up.
    Hangup { call_id: String },
    /// Copy the database (SQLite: while the daemon runs) and the state directory's files
    /// into DIR (new or empty), with a MANIFEST; PostgreSQL: prints the pg_dump command.
    Backup { dir: PathBuf },
    /// Put a backup from DIR back (the daemon stopped): the database and the files.
    Restore { dir: PathBuf },
    /// Per-user API tokens: add (printed once), list, revoke.
    Token {
        #[command(subcommand)]
        command: api::TokenCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = config::config_path(cli.config, &ProcessEnv);
    let config = config_path.as_deref();
    // Flow tools are plain file work: no runtime, no logging set-up, their own exit codes.
    if let Command::Flow { command } = cli.command {
        return match flow_cli::run(command, config) {
            Ok(status) => ExitCode::from(status),
            Err(message) => {
                eprintln!("hotline flow: {message}");
                ExitCode::from(2)
            }
        };
    }
    // `[log]` is read from the same settings file (logging starts before Config::load).
    let daemon = matches!(cli.command, Command::Serve);
    if let Err(message) = logging::init(config, daemon) {
        eprintln!("hotline: {message}");
        return ExitCode::FAILURE;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hotline: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Calls {
                limit,
                since,
                until,
            } => print_calls(config, limit, since, until).await,
            Command::Callbacks { limit } => callbacks::cli::requests(config, limit).await,
            Command::Flow { .. } => Ok(()),
            Command::Missed { limit } => callbacks::cli::missed(config, limit).await,
            Command::CallbackList { limit } => callbacks::cli::list(config, limit).await,
            Command::CallbackReport { days } => callbacks::cli::promise_report(config, days).await,
            Command::Operator { command } => operator_cmd(config, command).await,
            Command::User { command } => user_cmd(config, command).await,
            Command::Show { view, json } => control::show(config, view, json).await,
            Command::Hangup { call_id } => control::hangup(config, &call_id).await,
            Command::Backup { dir } => backup::backup(config, &dir).await,
            Command::Restore { dir } => backup::restore(config, &dir).await,
            Command::Token { command } => api::token_cmd(config, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hotline: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(config: &Config) -> Result<Store, String> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            format!(
                "creating state directory {}: {e}",
                config.state_dir.display()
            )
        })?;
    }
    let store = Store::connect(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(store)
}

/// For the commands that only read: the daemon's database must be there already; nothing
/// is created or migrated (a wrong or missing --config would otherwise leave an empty
/// ./var/hotline.db behind and print nothing).
async fn open_existing_store(config: &Config) -> Result<Store, String> {
    use hotline_core::store::StoreError;
    Store::open_existing(&config.database_url)
        .await
        .map_err(|e| match e {
            StoreError::Missing { url } | StoreError::NotMigrated { url } => format!(
                "no database at {url} (state_dir {}); run `hotline migrate` or point --config at the daemon's settings",
                config.state_dir.display()
            ),
            e => e.to_string(),
        })
}

async fn migrate(config_path: Option<&Path>) -> Result<(), String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let store = open_store(&config).await?;
    store.close().await;
    println!("migrated {}", redact(&config.database_url));
    Ok(())
}

/// `--since`/`--until`: RFC 3339, or a date meaning its midnight UTC; as unix ms.
fn parse_instant(v: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            format!("{v:?}: use RFC 3339 (2026-12-24T10:00:00+01:00) or a date (2026-12-24)")
        })
}

async fn print_calls(
    config_path: Option<&Path>,
    limit: i64,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<(), String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let store = open_existing_store(&config).await?;
    let calls = store
        .calls_between(since, until, limit)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    println!("{}", hotline_core::cdr::CSV_HEADER);
    for c in calls {
        println!("{}", c.to_csv());
    }
    Ok(())
}

async fn operator_cmd(config_path: Option<&Path>, cmd: OperatorCommand) -> Result<(), String> {
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let store = if matches!(cmd, OperatorCommand::List) {
        open_existing_store(&config).await?
    } else {
        open_store(&config).await?
    };
    let result = match cmd {
        OperatorCommand::Add {
            name,
            sip_user,
            display_name,
            chat_capacity,
            digest,
            password_stdin: _,
        } => match SipDigest::parse(&digest) {
            Ok(sip_digest) => {
                add_operator(
                    &store,
                    &config.realm,
                    &name,
                    &sip_user,
                    &display_name,
                    chat_capacity,
                    sip_digest,
                )
                .await
            }
            Err(e) => Err(e.to_string()),
        },
        OperatorCommand::Digest { name, algorithm } => match SipDigest::parse(&algorithm) {
            Ok(d) => match store.set_sip_digest(&name, d).await {
                Ok(true) => {
                    println!("{name}'s phone is challenged with {}", d.as_str());
                    Ok(())
                }
                Ok(false) => Err(format!("no operator named {name:?}")),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        },
        OperatorCommand::Direct {
            name,
            number,
            mode,
            minutes,
            hours,
            days,
            calendar,
            off,
        } => {
            let change = DirectChange {
                number,
                mode,
                minutes,
                hours,
                days,
                calendar,
                off,
            };
            operator_direct(&store, &config.flows_dir, &name, change).await
        }
        OperatorCommand::List => match store.operators().await {
            Ok(ops) => {
                println!("name,sip_user,display_name,realm,chat_capacity,digest");
                for o in ops {
                    println!(
                        "{},{},{},{},{},{}",
                        o.name,
                        o.sip_user,
                        hotline_core::cdr::csv_field(&o.display_name),
                        o.realm,
                        o.chat_capacity,
                        o.sip_digest
                    );
                }
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    store.close().await;
    result
}

/// What `operator direct` was asked to change.
struct DirectChange {
    number: Option<String>,
    mode: Option<i64>,
    minutes: Option<i64>,
    hours: Option<i64>,
    days: Option<i64>,
    calendar: Option<String>,
    off: bool,
}

/// `hotline operator direct`: shows or sets an operator's direct-callback settings, and
/// says how calls to the own number will be routed by the flows on disk.
async fn operator_direct(
    store: &Store,
    flows_dir: &Path,
    name: &str,
    c: DirectChange,
) -> Result<(), String> {
    use hotline_core::direct::{DirectForm, DirectLengths, DirectMode};
    let show = |s: &hotline_core::direct::DirectSettings| {
        println!(
            "{}: own number {}, mode {} ({}), minutes {}, hours {}, days {}, calendar {}",
            s.operator,
            s.own_number,
            s.mode.number(),
            s.mode.describe(),
            s.lengths.minutes,
            s.lengths.hours,
            s.lengths.days,
            s.calendar.as_deref().unwrap_or("-")
        )
    };
    if c.off {
        let was_on = store
            .clear_direct_settings(name)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "direct callback {} for {name}",
            if was_on {
                "turned off"
            } else {
                "was already off"
            }
        );
        return Ok(());
    }
    let current = store
        .direct_settings(name)
        .await
        .map_err(|e| e.to_string())?;
    let unchanged = c.number.is_none()
        && c.mode.is_none()
        && c.minutes.is_none()
        && c.hours.is_none()
        && c.days.is_none()
        && c.calendar.is_none();
    if unchanged {
        match &current {
            Some(s) => show(s),
            None => println!("{name}: direct callback off (no own number)"),
        }
        return Ok(());
    }
    let base = current.clone();
    let number = c
        .number
        .or_else(|| base.as_ref().map(|s| s.own_number.clone()))
        .ok_or("--number is needed: the operator has no own number yet")?;
    let mode = c
        .mode
        .or_else(|| base.as_ref().map(|s| s.mode.number()))
        .ok_or("--mode is needed (1–4): the operator has no settings yet")?;
    let defaults = base
        .as_ref()
        .map_or_else(DirectLengths::default, |s| s.lengths);
    let lengths = DirectLengths {
        minutes: c.minutes.unwrap_or(defaults.minutes),
        hours: c.hours.unwrap_or(defaults.hours),
        days: c.days.unwrap_or(defaults.days),
    };
    let calendar = c
        .calendar
        .or_else(|| base.as_ref().and_then(|s| s.calendar.clone()));
    // The calendar must be one the flows load, or links of modes 3 and 4 would fail.
    let needs_calendar = DirectMode::from_number(mode).is_some_and(DirectMode::needs_calendar);
    if let Some(cal) = calendar.as_deref().filter(|_| needs_calendar) {
        let dir = flows_dir.join("calendars");
        let known = hotline_ivr::calendar::load_calendars(&dir).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!("calendars in {}:\n{}", dir.display(), lines.join("\n"))
        })?;
        if !known.contains_key(cal) {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            return Err(format!(
                "--calendar {cal:?}: no such calendar in {} (known: {})",
                dir.display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    let form = DirectForm {
        own_number: &number,
        mode,
        lengths,
        calendar: calendar.as_deref(),
    };
    let saved = store
        .set_direct_settings(name, &form, hotline_core::time::unix_ms())
        .await
        .map_err(|e| e.to_string())?;
    show(&saved);
    report_direct_routing(flows_dir, &saved.own_number, name);
    Ok(())
}

/// Says which flow or queue calls to an own number will get (see ivr-flows/README.md,
/// "Direct callback"), so a number no flow and no queue can take is caught now.
fn report_direct_routing(flows_dir: &Path, number: &str, operator: &str) {
    let set = match hotline_ivr::load_dir(flows_dir) {
        Ok(set) => set,
        Err(errors) => {
            eprintln!(
                "warning: the flows in {} have {} error(s) (hotline flow check): routing of {number} not checked",
                flows_dir.display(),
                errors.len()
            );
            return;
        }
    };
    if let Some(flow) = call::flow_listing(&set, number) {
        println!(
            "calls to {number} run flow {:?} ({}); its first queue step offers a linked caller to {operator} first",
            flow.name,
            flow.file.display()
        );
        return;
    }
    match (call::first_queue_of(&set, operator), set.for_number(number)) {
        (Some(q), _) => println!(
            "calls to {number} go straight to queue {:?}, {operator}'s first queue in queues.toml; a linked caller rings {operator} first",
            q.name
        ),
        (None, Some(default)) => eprintln!(
            "warning: {operator} is in no queue (queues.toml) and no flow lists {number}: calls to it get the default flow {:?} and never reach {operator} directly; list {number} in a flow with a queue step, or add {operator} to a queue",
            default.name
        ),
        (None, None) => eprintln!(
            "warning: {operator} is in no queue (queues.toml) and no flow lists {number}: calls to it are refused (404); list {number} in a flow with a queue step, or add {operator} to a queue"
        ),
    }
}

async fn user_cmd(config_path: Option<&Path>, cmd: UserCommand) -> Result<(), String> {
    let UserCommand::Add {
        name,
        role,
        display_name,
        operator,
        password_stdin: _,
    } = cmd;
    let role = hotline_core::users::Role::parse(&role)
        .ok_or_else(|| format!("--role {role:?}: use operator, supervisor or admin"))?;
    let config = Config::load_for_command(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    let store = open_store(&config).await?;
    let result = store
        .add_user(&hotline_core::users::NewUser {
            name: &name,
            display_name: &display_name,
            role,
            password,
            operator: operator.as_deref(),
            now_ms: hotline_core::time::unix_ms(),
        })
        .await
        .map_err(|e| e.to_string());
    store.close().await;
    let id = result?;
    println!("added user {name} (id {id}), role {}", role.as_str());
    Ok(())
}

async fn add_operator(
    store: &Store,
    realm: &str,
    name: &str,
    sip_user: &str,
    display_name: &str,
    chat_capacity: i64,
    sip_digest: SipDigest,
) -> Result<(), String> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    let id = accounts::create_operator(
        store,
        &accounts::NewOperatorAccount {
            realm,
            name,
            sip_user,
            display_name,
            chat_capacity,
            sip_digest,
            password,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("added operator {name} (id {id}), SIP user {sip_user}@{realm}");
    Ok(())
}

async fn serve(config_path: Option<&Path>) -> Result<(), String> {
    let config = Config::load(config_path, &ProcessEnv).map_err(|e| e.to_string())?;
    let prometheus = metrics::install()?;

    let store = open_store(&config).await?;
    // Call records: the journal of an earlier run goes in first, then this node's calls
    // that a crash left without an end are closed as daemon_lost; when the database does
    // not take them now, the writer does both once it does.
    let node = hotline_core::cdr::node_id(&config.state_dir).map_err(|e| {
        format!(
            "the node id in the state directory {} (setting store.state_dir): {e}",
            config.state_dir.display()
        )
    })?;
    let cdr_options = hotline_core::cdr::CdrOptions::new(&config.state_dir, node);
    let (cdr, recovered) =
        hotline_core::cdr::CdrLog::start_recovered(store.clone(), cdr_options).await;
    match recovered {
        Ok(r) => {
            if r.lost > 0 {
                warn!(
                    "closed {} call records left open by an earlier run as daemon_lost",
                    r.lost
                );
            }
        }
        Err(e) => warn!(
            "call records: the journal is replayed and calls lost by an earlier run are \
             closed once the database takes writes: {e}"
        ),
    }
    let flows = flows::load(&config.flows_dir)
        .map_err(|e| format!("flows in {}:\n{e}", config.flows_dir.display()))?;
    info!(
        flows_version = flows.set.version(),
        prompts = flows.prompts.len(),
        "flows loaded"
    );

    let sockets = sip_driver::SipSockets::bind(config.sip_listen)
        .await
        .map_err(|e| {
            format!(
                "binding SIP on {} (setting HOTLINE_SIP_LISTEN): {e}",
                config.sip_listen
            )
        })?;
    let sip_port = sockets.udp.local_addr().map_err(|e| e.to_string())?.port();
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|e| {
            format!(
                "binding HTTP on {} (setting HOTLINE_HTTP_LISTEN): {e}",
                config.http_listen
            )
        })?;

    let local = net::LocalAddress::new(config.public_ip, config.sip_listen.ip());
    let endpoint = hotline_sip::Endpoint::new(hotline_sip::EndpointConfig {
        advertised: std::net::SocketAddr::new(local.primary(), sip_port),
        user_agent: format!("Hotline/{}", env!("CARGO_PKG_VERSION")),
        realm: config.realm.clone(),
        trusted_sources: config.trusted.clone(),
        max_calls: Some(config.max_calls),
        rate_limit: Some(hotline_sip::RateLimit {
            per_second: config.rate_per_source,
            burst: config.rate_per_source.saturating_mul(2),
        }),
        ..Default::default()
    });

    let clock = match std::env::var("HOTLINE_TEST_CLOCK") {
        Ok(v) if !v.is_empty() => {
            let at = chrono::DateTime::parse_from_rfc3339(&v)
                .map_err(|e| format!("setting HOTLINE_TEST_CLOCK: {e} (got {v:?}; RFC 3339)"))?;
            warn!(start = %at, "HOTLINE_TEST_CLOCK is set: flows see a shifted clock (tests only)");
            context::WallClock::starting_at(at.to_utc())
        }
        _ => context::WallClock::real(),
    };
    let (acd, acd_inputs) = acd_driver::channel();
    let rtp_ports = Arc::new(net::RtpPorts::new(config.sip_listen.ip(), config.rtp_ports));
    // Operators' console tabs as their phones; legs to them are placed like SIP legs.
    let phones = Arc::new(browser_phone::BrowserPhones::new(
        acd.clone(),
        rtp_ports.clone(),
        local.primary(),
        config.sip_listen.ip(),
        config.phone_reattach,
    ));
    let (sip, sip_inputs) = sip_driver::channel(Some(phones.clone()));
    tokio::spawn(acd_driver::run(acd_inputs));
    // Phone registrations go from the SIP task to the queue task.
    let (registrations, mut registered) = tokio::sync::mpsc::channel(1024);
    let acd_for_registrations = acd.clone();
    tokio::spawn(async move {
        while let Some(r) = registered.recv().await {
            acd_for_registrations
                .send(actors::AcdInput::Registration(r))
                .await;
        }
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let relay = match config.relay_threads {
        0 => None,
        n => Some(
            relay::RelayThreads::start(n)
                .map_err(|e| format!("starting the RTP relay threads: {e}"))?,
        ),
    };
    // Invites and webhooks are stored before they are sent; the notifier sends them (or, in outbox
    // mode, keeps them for the admin pages).
    let notifier = hotline_core::notify::Notifier::start(store.clone(), config.notify.clone())
        .map_err(|e| format!("notify: {e}"))?;
    let calls = Arc::new(Calls {
        store: store.clone(),
        cdr,
        flows: RwLock::new(Arc::new(flows)),
        sip: sip.clone(),
        rtp_ports,
        local,
        rtp_timeout: config.rtp_timeout,
        relay,
        notifier: notifier.clone(),
        shutdown: shutdown_rx,
        active: Default::default(),
        acd,
        clock,
        trunk: config.trunk.clone(),
        connected: Default::default(),
        dialogs: Default::default(),
        live: Default::default(),
        flows_changed: Default::default(),
        operators_changed: Default::default(),
        recordings: config.recordings.clone(),
    });
    phones.set_calls(&calls);
    recording::repair_unfinished(&store, &config.recordings, hotline_core::time::unix_ms()).await;
    tokio::spawn(recording::purge_task(
        store.clone(),
        config.recordings.clone(),
    ));
    let udp = sockets.udp.clone();
    sip_driver::spawn_readers(sockets, sip.clone(), config.sip_tcp);
    let call_context = calls.clone();
    let spawn_call: actors::CallSpawner = Box::new(move |setup, events| {
        tokio::spawn(call::run(call_context.clone(), setup, events));
    });
    let sip_task = tokio::spawn(sip_driver::run(
        endpoint,
        udp,
        sip_inputs,
        spawn_call,
        registrations,
    ));
    tokio::spawn(operator_sync::run(
        calls.clone(),
        config.realm.clone(),
        calls.flows_changed.clone(),
        calls.operators_changed.clone(),
    ));
    tokio::spawn(callbacks::auto::run(calls.clone(), config.trunk.clone()));
    tokio::spawn(metrics::watch_store(store.clone()));
    tokio::spawn(state_log::run(calls.clone()));
    // `hotline show` / `hotline hangup`; the socket file goes when `serve` returns.
    let _control = control::start(&config.state_dir, calls.clone());

    let health = Arc::new(hotline_web::Health::default());
    health.set_sip_bound();
    health.set_store_ready();
    let settings = hotline_web::state::WebSettings {
        public_url: config.public_url.clone(),
        notify: config.notify.clone(),
        notifier: Some(notifier.clone()),
        files_dir: config.state_dir.join("files"),
        time_zone: config.time_zone,
        recordings_dir: config.recordings.dir.clone(),
    };
    let visual = hotline_web::visual::VisualSettings {
        ice_servers_json: serde_json::to_string(&config.ice_servers)
            .unwrap_or_else(|_| "[]".into()),
        sms_limits: config.sms_limits,
        hub: Default::default(),
    };
    let console = Arc::new(
        hotline_web::state::WebState::new(
            store.clone(),
            Arc::new(console_link::ConsoleLink {
                calls: calls.clone(),
                realm: config.realm.clone(),
                trunk: config.trunk.clone(),
                phones,
            }),
            // One set of password-check slots for every login (argon2 is bounded).
            hotline_core::users::LoginPolicy {
                checks: hotline_core::users::PasswordChecks::for_this_machine(config.login_wait),
                ..Default::default()
            },
            config.secure_cookies,
            settings,
            visual,
        )
        .with_chat(config.chat.clone()),
    );
    hotline_web::chat::dispatch::spawn(console.clone());
    // The web app (operational endpoints, console, chat, visual sessions) and the API.
    let app = hotline_web::router(
        health.clone(),
        Arc::new(move || prometheus.render()),
        console,
    )
    .merge(api::router(
        calls.clone(),
        config.trunk.clone(),
        config.api_token.clone(),
        config.realm.clone(),
    ));
    // Client addresses (login throttles, chat limits, the security log) come from
    // `hotline_web::ClientIp`: the TCP peer, or X-Forwarded-For from a trusted proxy.
    let app = app.layer(axum::Extension(hotline_web::TrustedProxies::new(
        config.trusted_proxies.clone(),
    )));
    // Not axum::serve: it has no header-read timeout or connection cap (slowloris).
    tokio::spawn(hotline_web::server::serve(
        http,
        app,
        config.http_limits.clone(),
    ));

    info!(sip = %config.sip_listen, sip_port, http = %config.http_listen,
          database = %redact(&config.database_url), "hotline ready");
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    spawn_watchdog();

    wait_for_shutdown(&config, &calls).await;

    // Drain: refuse new calls, let calls in progress finish, then BYE the rest.
    health.set_draining();
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    sip.command(actors::SipCommand::Drain).await;
    let drain_until = Instant::now() + config.drain_timeout;
    info!(
        active = calls.active_calls(),
        drain_secs = config.drain_timeout.as_secs(),
        "draining"
    );
    while calls.active_calls() > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = shutdown_tx.send(true);
    // Give the last BYEs and CDR writes a moment to go out.
    let grace = Instant::now() + Duration::from_secs(2);
    while calls.active_calls() > 0 && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    calls.cdr.flush().await;
    notifier.stop().await;
    sip_task.abort();
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Runs until SIGTERM or SIGINT; SIGHUP and file changes reload the flows meanwhile.
async fn wait_for_shutdown(config: &Config, calls: &Calls) {
    let (mut flow_changes, _watcher) = flows::watch(&config.flows_dir);
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("cannot install signal handlers; stopping");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM"); return; }
            _ = int.recv() => { info!("SIGINT"); return; }
            _ = hup.recv() => {
                // systemd wants the monotonic time with RELOADING=1.
                match sd_notify::NotifyState::monotonic_usec_now() {
                    Ok(now) => notify_systemd(&[sd_notify::NotifyState::Reloading, now]),
                    Err(_) => notify_systemd(&[sd_notify::NotifyState::Reloading]),
                }
                flows::reload(calls, &config.flows_dir, "SIGHUP");
                notify_systemd(&[sd_notify::NotifyState::Ready]);
            }
            Some(()) = flow_changes.recv() => flows::reload(calls, &config.flows_dir, "file change"),
        }
    }
}

fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(states)
    {
        warn!("sd_notify: {e}");
    }
}

/// Pings systemd's watchdog at half its interval from the runtime, so a wedged runtime
/// stops pinging and gets restarted.
fn spawn_watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = interval / 2;
    tokio::spawn(async move {
        loop {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_global_before_or_after_the_command() {
        for args in [
            &["hotline", "--config", "h.toml", "calls"][..],
            &["hotline", "calls", "--config", "h.toml"],
            &["hotline", "operator", "list", "--config", "h.toml"],
            &["hotline", "flow", "check", "--config", "h.toml"],
            &["hotline", "serve", "--config", "h.toml"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.config, Some(PathBuf::from("h.toml")), "{args:?}");
        }
    }

    struct StateDir(String);
    impl config::Env for StateDir {
        fn var(&self, name: &str) -> Option<String> {
            (name == "HOTLINE_STATE_DIR").then(|| self.0.clone())
        }
        fn names(&self) -> Vec<String> {
            vec!["HOTLINE_STATE_DIR".into()]
        }
    }

    #[tokio::test]
    async fn read_only_commands_create_no_database() {
        let dir = std::env::temp_dir().join(format!("hotline-ro-{:016x}", rand::random::<u64>()));
        let state = dir.join("var");
        let config = Config::load(None, &StateDir(state.display().to_string())).unwrap();
        let err = open_existing_store(&config).await.unwrap_err();
        assert_eq!(
            err,
            format!(
                "no database at sqlite://{}/hotline.db (state_dir {}); run `hotline migrate` \
                 or point --config at the daemon's settings",
                state.display(),
                state.display()
            )
        );
        assert!(!state.exists(), "{} was created", state.display());

        // Once `migrate` (or `serve`) made it, they read it.
        open_store(&config).await.unwrap().close().await;
        open_existing_store(&config).await.unwrap().close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
