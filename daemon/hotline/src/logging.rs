//! Logging: where log lines go, how they look, and the level, changeable while running.
//!
//! - `log.format`: `text` (default) or `json` (one object per line); env `HOTLINE_LOG__FORMAT`.
//! - `log.level`: a level or a filter (`info,http_access=warn`); env `HOTLINE_LOG` or `HOTLINE_LOG__LEVEL` wins.
//! - `log.sip_trace`: every SIP message in and out at debug under target `sip_trace`;
//!   env `HOTLINE_LOG__SIP_TRACE`.
//!
//! When stderr is journald's stream (systemd.exec(5): `$JOURNAL_STREAM` names its device
//! and inode), each line starts with its syslog priority (`<3>` error … `<7>` debug, as
//! sd-daemon(3)), so `journalctl -p err` works; journald strips the prefix.
//!
//! SIGUSR1 cycles the level info → debug → trace → info, keeping per-target directives;
//! [`set_level`] sets it from code (an admin API).
//!
//! The settings are read here, before `Config::load`, because the subscriber must exist
//! before anything logs; a file that does not parse is left to `Config::load` to report.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use hotline_sip::Peer;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata, Subscriber, info};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// How each line looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// The `[log]` settings after the environment overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub format: Format,
    /// An `EnvFilter` spec: `HOTLINE_LOG`, else `log.level`, else `info`.
    pub filter: String,
    pub sip_trace: bool,
}

/// Sets up the global subscriber from the settings file (`config_path`) and the
/// environment. `watch_signal`: the daemon; SIGUSR1 then cycles the level.
pub fn init(config_path: Option<&Path>, watch_signal: bool) -> Result<(), String> {
    let file = match config_path {
        // Unreadable or broken: Config::load says so with the file's name and line.
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
        None => String::new(),
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let settings = settings(&file, &env)?;
    let mut spec = FilterSpec::parse(&settings.filter)?;
    if settings.sip_trace && !settings.filter.contains("sip_trace") {
        // The trace is at debug; without this the default `info` would hide it.
        spec.targets.push("sip_trace=debug".into());
    }
    SIP_TRACE.store(settings.sip_trace, Ordering::Relaxed);

    let journal = stderr_is_journal();
    let ansi = !journal && io::IsTerminal::is_terminal(&io::stderr());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(spec.filter()?);
    tracing_subscriber::registry()
        .with(filter)
        .with(output_layer(settings.format, journal, ansi, stderr_locked))
        .try_init()
        .map_err(|e| format!("setting up logging: {e}"))?;
    let control = LevelControl::new(spec, move |f| {
        handle
            .reload(f)
            .map_err(|e| format!("changing the log filter: {e}"))
    });
    // Only the first init takes; there is one per process.
    let _ = CONTROL.set(control);
    if watch_signal {
        spawn_level_signal();
    }
    Ok(())
}

/// Sets the log filter while running: a level (`debug`) changes the default level and
/// keeps per-target directives; any other filter (`info,hotline=debug`) replaces it all.
// For an admin API (the control socket or HTTP); nothing calls it yet.
#[allow(dead_code)]
pub fn set_level(spec: &str) -> Result<(), String> {
    let control = CONTROL.get().ok_or("logging is not set up")?;
    let now = control.set(spec)?;
    info!(target: "hotline::logging", "log level is now {now}");
    Ok(())
}

/// Reads `[log]` from the settings file's text and the environment (`env`).
fn settings(file: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let mut format = None;
    let mut level = None;
    let mut sip_trace = None;
    let table = toml::from_str::<toml::Table>(file).unwrap_or_default();
    if let Some(log) = table.get("log") {
        let log = log
            .as_table()
            .ok_or("setting log: a table ([log]) is expected")?;
        for (key, value) in log {
            match key.as_str() {
                "format" => format = Some(("log.format", string(value, "log.format")?)),
                "level" => level = Some(("log.level", string(value, "log.level")?)),
                "sip_trace" => {
                    sip_trace = Some(value.as_bool().ok_or_else(|| {
                        format!("setting log.sip_trace: true or false (got {value})")
                    })?)
                }
                other => {
                    return Err(format!(
                        "setting log.{other}: unknown (log has format, level, sip_trace)"
                    ));
                }
            }
        }
    }
    if let Some(v) = env("HOTLINE_LOG__FORMAT") {
        format = Some(("HOTLINE_LOG__FORMAT", v));
    }
    // HOTLINE_LOG, the older name, as well as the settings' rule's.
    for name in ["HOTLINE_LOG", "HOTLINE_LOG__LEVEL"] {
        if let Some(v) = env(name) {
            level = Some((name, v));
        }
    }
    if let Some(v) = env("HOTLINE_LOG__SIP_TRACE") {
        sip_trace = Some(match v.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(format!("HOTLINE_LOG__SIP_TRACE: true or false (got {v:?})")),
        });
    }
    let format = match format {
        None => Format::Text,
        Some((_, v)) if v == "text" => Format::Text,
        Some((_, v)) if v == "json" => Format::Json,
        Some((name, v)) => return Err(format!("setting {name}: text or json (got {v:?})")),
    };
    let filter = match level {
        None => "info".to_string(),
        Some((name, v)) => {
            FilterSpec::parse(&v).map_err(|e| format!("setting {name}: {e}"))?;
            v
        }
    };
    Ok(Settings {
        format,
        filter,
        sip_trace: sip_trace.unwrap_or(false),
    })
}

fn string(value: &toml::Value, name: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("setting {name}: a string is expected (got {value})"))
}

/// The formatting layer: text or JSON, with journald's priority prefix when `journal`.
fn output_layer<S, W>(
    format: Format,
    journal: bool,
    ansi: bool,
    writer: W,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let writer = if journal {
        BoxMakeWriter::new(JournalPrefix(writer))
    } else {
        BoxMakeWriter::new(writer)
    };
    match format {
        Format::Text => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi);
            // journald stamps every line itself.
            if journal {
                layer.without_time().boxed()
            } else {
                layer.boxed()
            }
        }
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            // message and fields beside level and target: `jq .message` works.
            .flatten_event(true)
            .with_ansi(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// stderr, locked for one whole event, so a prefix and its line are never split by
/// another thread's line.
fn stderr_locked() -> io::StderrLock<'static> {
    io::stderr().lock()
}

/// Whether stderr is the stream systemd connected to journald for us (not merely
/// inherited by a child of such a process and redirected elsewhere).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => journal_stream_is(&var.to_string_lossy(), m.dev(), m.ino()),
        Err(_) => false,
    }
}

/// `$JOURNAL_STREAM` is `DEVICE:INODE` in decimal.
fn journal_stream_is(var: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = var.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// The syslog priority journald reads at a line's start (sd-daemon(3): SD_ERR …).
fn syslog_prefix(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// A writer maker that starts every line with its event's syslog priority.
struct JournalPrefix<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for JournalPrefix<M> {
    type Writer = PrefixedLines<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        PrefixedLines::new(syslog_prefix(&Level::INFO), self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        PrefixedLines::new(syslog_prefix(meta.level()), self.0.make_writer_for(meta))
    }
}

/// Writes `prefix` before each line, also the later lines of a multi-line message, so
/// journald files every one of them at the event's priority.
struct PrefixedLines<W> {
    prefix: &'static str,
    inner: W,
    at_line_start: bool,
}

impl<W> PrefixedLines<W> {
    fn new(prefix: &'static str, inner: W) -> Self {
        PrefixedLines {
            prefix,
            inner,
            at_line_start: true,
        }
    }
}

impl<W: Write> Write for PrefixedLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for piece in buf.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start {
                self.inner.write_all(self.prefix.as_bytes())?;
            }
            self.inner.write_all(piece)?;
            self.at_line_start = piece.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A filter as a default level plus per-target directives, so the level can change and
/// the directives stay.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FilterSpec {
    level: Option<LevelFilter>,
    targets: Vec<String>,
}

impl FilterSpec {
    fn parse(spec: &str) -> Result<FilterSpec, String> {
        // EnvFilter's own check, for its error messages.
        EnvFilter::try_new(spec).map_err(|e| format!("{e} (got {spec:?})"))?;
        let mut level = None;
        let mut targets = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<LevelFilter>() {
                Ok(l) => level = Some(l),
                // EnvFilter reads a bare word as a target to log in full, so a misspelt
                // level ("warning") would silence everything else.
                Err(_) if !part.contains('=') && !part.contains('[') => {
                    return Err(format!(
                        "{part:?} is neither a level (error, warn, info, debug, trace, off) \
                         nor target=level (got {spec:?})"
                    ));
                }
                Err(_) => targets.push(part.to_string()),
            }
        }
        Ok(FilterSpec { level, targets })
    }

    fn filter(&self) -> Result<EnvFilter, String> {
        EnvFilter::try_new(self.to_string()).map_err(|e| format!("log filter {self}: {e}"))
    }
}

impl std::fmt::Display for FilterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = self.level.map(|l| l.to_string().to_ascii_lowercase());
        let parts: Vec<&str> = level
            .as_deref()
            .into_iter()
            .chain(self.targets.iter().map(String::as_str))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// SIGUSR1's order: info → debug → trace → info; any other level goes to info.
fn next_level(level: Option<LevelFilter>) -> LevelFilter {
    match level {
        Some(LevelFilter::INFO) => LevelFilter::DEBUG,
        Some(LevelFilter::DEBUG) => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    }
}

type ApplyFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The running filter and how to swap it (a reload handle, behind a closure so tests can
/// drive their own subscriber).
struct LevelControl {
    apply: ApplyFilter,
    spec: Mutex<FilterSpec>,
}

static CONTROL: OnceLock<LevelControl> = OnceLock::new();

impl LevelControl {
    fn new(
        spec: FilterSpec,
        apply: impl Fn(EnvFilter) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        LevelControl {
            apply: Box::new(apply),
            spec: Mutex::new(spec),
        }
    }

    /// Applies `spec` (see [`set_level`]); returns the filter now in force.
    #[allow(dead_code)]
    fn set(&self, spec: &str) -> Result<String, String> {
        let given = FilterSpec::parse(spec)?;
        let mut current = self.spec.lock().unwrap_or_else(|e| e.into_inner());
        let next = if given.targets.is_empty() {
            FilterSpec {
                level: given.level,
                targets: current.targets.clone(),
            }
        } else {
            given
        };
        (self.apply)(next.filter()?)?;
        *current = next;
        Ok(current.to_string())
    }

    /// The next level in SIGUSR1's cycle; returns the filter now in force.
    fn cycle(&self) -> Result<String, String> {
        let mut current = self.spec.lock().unwrap_or_else(|e| e.into_inner());
        let next = FilterSpec {
            level: Some(next_level(current.level)),
            targets: current.targets.clone(),
        };
        (self.apply)(next.filter()?)?;
        *current = next;
        Ok(current.to_string())
    }
}

/// Listens for SIGUSR1 on a small thread of its own: logging starts before the daemon's
/// runtime exists, and this keeps the level switch independent of it.
fn spawn_level_signal() {
    let started = std::thread::Builder::new()
        .name("log-level".into())
        .spawn(|| {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!("SIGUSR1 (log level) is not handled: {e}");
                    return;
                }
            };
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let mut usr1 = match signal(SignalKind::user_defined1()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("SIGUSR1 (log level) is not handled: {e}");
                        return;
                    }
                };
                while usr1.recv().await.is_some() {
                    let Some(control) = CONTROL.get() else {
                        continue;
                    };
                    match control.cycle() {
                        Ok(now) => {
                            info!(target: "hotline::logging", "SIGUSR1: log level is now {now}")
                        }
                        Err(e) => tracing::warn!("SIGUSR1: {e}"),
                    }
                }
            });
        });
    if let Err(e) = started {
        tracing::warn!("SIGUSR1 (log level) is not handled: {e}");
    }
}

/// `log.sip_trace`, set once at start.
static SIP_TRACE: AtomicBool = AtomicBool::new(false);

/// Logs one SIP message going `dir` ("in"/"out") to or from `peer` under target
/// `sip_trace`, when `log.sip_trace` is on. Digest credentials in it are hashes.
pub fn sip_trace(dir: &'static str, peer: &Peer, data: &[u8]) {
    if !SIP_TRACE.load(Ordering::Relaxed) {
        return;
    }
    let text = String::from_utf8_lossy(data);
    tracing::debug!(
        target: "sip_trace",
        dir,
        transport = peer.transport.via_token(),
        peer = %peer.addr,
        call_id = call_id(&text).unwrap_or("-"),
        // One log line per message: CR LF and the like escaped.
        "{}",
        text.escape_debug()
    );
}

/// The Call-ID header's value (also its compact form `i`), from the message head.
fn call_id(text: &str) -> Option<&str> {
    text.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
                .then(|| value.trim())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tracing::{debug, error, trace, warn};

    /// A writer target the tests read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
        fn clear(&self) {
            self.0.lock().unwrap().clear();
        }
    }

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn subscriber(
        format: Format,
        journal: bool,
        filter: &str,
        buf: &Buffer,
    ) -> impl Subscriber + Send + Sync {
        let buf = buf.clone();
        tracing_subscriber::registry()
            .with(EnvFilter::new(filter))
            .with(output_layer(format, journal, false, move || buf.clone()))
    }

    #[test]
    fn journald_lines_start_with_their_syslog_priority() {
        let buf = Buffer::default();
        tracing::subscriber::with_default(subscriber(Format::Text, true, "trace", &buf), || {
            error!("disk full");
            warn!("slow database");
            info!("flows loaded");
            debug!("a datagram");
            trace!("a timer");
            error!("flows in ivr:\nmain.toml:3: bad\nmenu.toml:9: bad");
        });
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(lines[0].starts_with("<3>ERROR "), "{text}");
        assert!(lines[0].ends_with("disk full"), "{text}");
        assert!(lines[1].starts_with("<4> WARN "), "{text}");
        assert!(lines[2].starts_with("<6> INFO "), "{text}");
        assert!(lines[3].starts_with("<7>DEBUG "), "{text}");
        assert!(lines[4].starts_with("<7>TRACE "), "{text}");
        // Every line of a multi-line error is an error to journald.
        assert!(lines[5].starts_with("<3>ERROR "), "{text}");
        assert_eq!(lines[6], "<3>main.toml:3: bad");
        assert_eq!(lines[7], "<3>menu.toml:9: bad");
    }

    #[test]
    fn without_journald_there_is_no_prefix() {
        let buf = Buffer::default();
        tracing::subscriber::with_default(subscriber(Format::Text, false, "info", &buf), || {
            error!("disk full");
        });
        let text = buf.text();
        assert!(!text.starts_with('<'), "{text}");
        assert!(text.contains("ERROR"), "{text}");
        assert!(text.trim_end().ends_with("disk full"), "{text}");
    }

    #[test]
    fn journal_stream_must_name_stderr_itself() {
        assert!(journal_stream_is("8:12345", 8, 12345));
        // A child's stderr redirected to a file keeps the variable but not the inode.
        assert!(!journal_stream_is("8:12345", 8, 999));
        assert!(!journal_stream_is("8:12345", 9, 12345));
        assert!(!journal_stream_is("garbage", 8, 12345));
    }

    #[test]
    fn json_is_one_object_per_line_with_level_target_message_and_fields() {
        let buf = Buffer::default();
        tracing::subscriber::with_default(subscriber(Format::Json, false, "info", &buf), || {
            info!(target: "hotline::flows", flows_version = 7, prompts = 12, "flows loaded");
            warn!(target: "http_access", path = "/a\nb", "a \"quoted\"\nmessage");
            debug!("filtered out");
        });
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["target"], "hotline::flows");
        assert_eq!(first["message"], "flows loaded");
        assert_eq!(first["flows_version"], 7);
        assert_eq!(first["prompts"], 12);
        assert!(first["timestamp"].is_string(), "{first}");
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["message"], "a \"quoted\"\nmessage");
        assert_eq!(second["path"], "/a\nb");
    }

    #[test]
    fn json_under_journald_gets_the_prefix_and_stays_json() {
        let buf = Buffer::default();
        tracing::subscriber::with_default(subscriber(Format::Json, true, "info", &buf), || {
            error!("disk full");
        });
        let text = buf.text();
        let json = text.trim_end().strip_prefix("<3>").expect(&text);
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["level"], "ERROR");
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn settings_come_from_the_log_table_and_the_environment_wins() {
        let none = env_of(&[]);
        let s = settings("", &none).unwrap();
        assert_eq!(
            s,
            Settings {
                format: Format::Text,
                filter: "info".into(),
                sip_trace: false
            }
        );
        let file = "[sip]\nlisten = \"0.0.0.0:5060\"\n[log]\nformat = \"json\"\nlevel = \"debug,sqlx=warn\"\nsip_trace = true\n";
        let s = settings(file, &none).unwrap();
        assert_eq!(s.format, Format::Json);
        assert_eq!(s.filter, "debug,sqlx=warn");
        assert!(s.sip_trace);
        let env = env_of(&[
            ("HOTLINE_LOG", "warn"),
            ("HOTLINE_LOG__FORMAT", "text"),
            ("HOTLINE_LOG__SIP_TRACE", "false"),
        ]);
        let s = settings(file, &env).unwrap();
        assert_eq!(s.format, Format::Text);
        assert_eq!(s.filter, "warn");
        assert!(!s.sip_trace);
    }

    #[test]
    fn bad_log_settings_name_the_setting() {
        let none = env_of(&[]);
        let e = settings("[log]\nformat = \"xml\"\n", &none).unwrap_err();
        assert!(e.contains("log.format") && e.contains("xml"), "{e}");
        let e = settings("[log]\nlevel = \"warning\"\n", &none).unwrap_err();
        assert!(e.contains("log.level") && e.contains("warning"), "{e}");
        let e = settings("[log]\nlevel = \"info,hotline=loud\"\n", &none).unwrap_err();
        assert!(e.contains("log.level"), "{e}");
        let e = settings("[log]\ncolour = true\n", &none).unwrap_err();
        assert!(e.contains("log.colour"), "{e}");
        let e = settings("", &env_of(&[("HOTLINE_LOG__FORMAT", "yaml")])).unwrap_err();
        assert!(e.contains("HOTLINE_LOG__FORMAT"), "{e}");
        let e = settings("", &env_of(&[("HOTLINE_LOG", "info,hotline=loud")])).unwrap_err();
        assert!(e.contains("HOTLINE_LOG"), "{e}");
    }

    /// A subscriber with a reloadable filter writing into `buf`, and its control.
    fn reloadable(spec: &str, buf: &Buffer) -> (impl Subscriber + Send + Sync, LevelControl) {
        let spec = FilterSpec::parse(spec).unwrap();
        let (filter, handle) = tracing_subscriber::reload::Layer::new(spec.filter().unwrap());
        let buf = buf.clone();
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(output_layer(Format::Text, false, false, move || {
                buf.clone()
            }));
        let control = LevelControl::new(spec, move |f| handle.reload(f).map_err(|e| e.to_string()));
        (subscriber, control)
    }

    /// Which of a debug and a trace line (target `hotline::x`) and a debug line under
    /// `http_access` get through.
    fn visible(buf: &Buffer) -> (bool, bool, bool) {
        buf.clear();
        debug!(target: "hotline::x", "a debug line");
        trace!(target: "hotline::x", "a trace line");
        debug!(target: "http_access", "an access line");
        let text = buf.text();
        (
            text.contains("a debug line"),
            text.contains("a trace line"),
            text.contains("an access line"),
        )
    }

    #[test]
    fn sigusr1_cycles_info_debug_trace_and_keeps_target_directives() {
        let buf = Buffer::default();
        let (subscriber, control) = reloadable("info,http_access=warn", &buf);
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(visible(&buf), (false, false, false));
            assert_eq!(control.cycle().unwrap(), "debug,http_access=warn");
            assert_eq!(visible(&buf), (true, false, false));
            assert_eq!(control.cycle().unwrap(), "trace,http_access=warn");
            assert_eq!(visible(&buf), (true, true, false));
            assert_eq!(control.cycle().unwrap(), "info,http_access=warn");
            assert_eq!(visible(&buf), (false, false, false));
        });
    }

    #[test]
    fn sigusr1_from_another_level_goes_to_info() {
        assert_eq!(next_level(Some(LevelFilter::WARN)), LevelFilter::INFO);
        assert_eq!(next_level(None), LevelFilter::INFO);
        assert_eq!(next_level(Some(LevelFilter::TRACE)), LevelFilter::INFO);
    }

    #[test]
    fn set_level_takes_a_level_or_a_whole_filter() {
        let buf = Buffer::default();
        let (subscriber, control) = reloadable("info,http_access=warn", &buf);
        tracing::subscriber::with_default(subscriber, || {
            // A bare level keeps the directives.
            assert_eq!(control.set("debug").unwrap(), "debug,http_access=warn");
            assert_eq!(visible(&buf), (true, false, false));
            // A filter replaces them.
            assert_eq!(
                control.set("info,http_access=debug").unwrap(),
                "info,http_access=debug"
            );
            assert_eq!(visible(&buf), (false, false, true));
            // A bad one is refused and the running filter stays.
            assert!(control.set("info,hotline=loud").is_err());
            assert_eq!(visible(&buf), (false, false, true));
        });
    }

    #[test]
    fn call_id_is_found_in_long_and_compact_form() {
        let invite =
            "INVITE sip:100@h SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nCall-ID: abc@h\r\n\r\nv=0\r\n";
        assert_eq!(call_id(invite), Some("abc@h"));
        let compact = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a\r\ni:  xyz \r\n\r\n";
        assert_eq!(call_id(compact), Some("xyz"));
        // Not from the body.
        assert_eq!(call_id("OPTIONS sip:h SIP/2.0\r\n\r\ni: body\r\n"), None);
    }

    #[test]
    fn the_sip_trace_is_one_line_per_message_with_its_call_id() {
        let buf = Buffer::default();
        let peer = Peer {
            transport: hotline_sip::Transport::Udp,
            addr: "192.0.2.5:5060".parse().unwrap(),
        };
        let msg = b"BYE sip:100@h SIP/2.0\r\nCall-ID: abc@h\r\nCSeq: 2 BYE\r\n\r\n";
        tracing::subscriber::with_default(
            subscriber(Format::Text, false, "info,sip_trace=debug", &buf),
            || {
                SIP_TRACE.store(false, Ordering::Relaxed);
                sip_trace("in", &peer, msg);
                assert_eq!(buf.text(), "", "logged while off");
                SIP_TRACE.store(true, Ordering::Relaxed);
                sip_trace("in", &peer, msg);
                SIP_TRACE.store(false, Ordering::Relaxed);
            },
        );
        let text = buf.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("DEBUG sip_trace: BYE sip:100@h SIP/2.0\\r\\nCall-ID"),
            "{text}"
        );
        assert!(text.contains("call_id=\"abc@h\""), "{text}");
        assert!(text.contains("dir=\"in\""), "{text}");
        assert!(text.contains("peer=192.0.2.5:5060"), "{text}");
    }
}
