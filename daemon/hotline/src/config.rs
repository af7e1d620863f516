//! Settings: the settings file (every key optional), then values from outside it: systemd
//! credentials, `HOTLINE_<SECTION>__<KEY>_FILE` secret files, and environment variables
//! `HOTLINE_<SECTION>__<KEY>` (plus the older names in [`ALIASES`]), each beating the one
//! before. A bad value stops start-up with a message that names where it came from.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secrets;

/// Where the Debian package installs the settings; used when nothing else is named.
pub const SYSTEM_CONFIG: &str = "/etc/hotline/hotline.toml";
/// The unit's `StateDirectory=`: the state directory that goes with [`SYSTEM_CONFIG`].
const SYSTEM_STATE_DIR: &str = "/var/lib/hotline";

/// The documented defaults: a table an override has to create starts from these, so
/// overriding one field of, say, `chat.limits.start` keeps the other at its default.
const SHIPPED: &str = include_str!("../../../config/hotline.toml");

/// Variables from before the `HOTLINE_<SECTION>__<KEY>` rule; they keep working, their
/// values taken as text as before. The rule's name beats them when both are set.
pub const ALIASES: &[(&str, &str)] = &[
    ("HOTLINE_SIP_LISTEN", "sip.listen"),
    ("HOTLINE_PUBLIC_IP", "sip.public_ip"),
    ("HOTLINE_HTTP_LISTEN", "http.listen"),
    ("HOTLINE_STATE_DIR", "store.state_dir"),
    ("HOTLINE_DATABASE_URL", "store.database_url"),
    ("HOTLINE_FLOWS_DIR", "flows.dir"),
    ("HOTLINE_RTP_PORTS", "rtp.ports"),
    ("HOTLINE_TRUNK_ADDRESS", "trunk.address"),
    ("HOTLINE_TRUNK_PASSWORD", "trunk.password"),
    ("HOTLINE_API_TOKEN", "api.token"),
    ("HOTLINE_PUBLIC_URL", "web.public_url"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("settings file {path} not found (named by --config or HOTLINE_CONFIG)")]
    Missing { path: PathBuf },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting {setting}: {message} (got {value:?})")]
    Invalid {
        setting: String,
        value: String,
        message: String,
    },
    /// A value from the environment or a credential that does not fit the settings.
    #[error("{origin}: {message}")]
    Override { origin: String, message: String },
    #[error("{variable}: reading the secret file {path}: {source}")]
    SecretFile {
        variable: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The settings as read from the file; every field has its documented default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    sip: SipFile,
    trunk: TrunkFile,
    dialplan: DialplanFile,
    api: ApiFile,
    rtp: RtpFile,
    http: HttpFile,
    store: StoreFile,
    flows: FlowsFile,
    service: ServiceFile,
    web: WebFile,
    notify: hotline_core::notify::NotifyConfig,
    chat: hotline_web::chat::ChatConfig,
    log: LogFile,
    recordings: RecordingsFile,
    /// `[[webhooks]]`: handed to the notifier, which sends them.
    webhooks: Vec<hotline_core::notify::webhook::WebhookConfig>,
}

/// `[log]`: read by `logging` before this (the subscriber starts first); listed here so
/// the file and the overrides are checked as a whole.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(dead_code)]
struct LogFile {
    format: Option<String>,
    level: Option<String>,
    sip_trace: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WebFile {
    public_url: Option<String>,
    time_zone: Option<String>,
    ice_servers: Option<Vec<IceServer>>,
    sms_per_operator_per_hour: Option<u32>,
    sms_per_number_per_day: Option<u32>,
    phone_reattach_secs: Option<u64>,
}

/// A STUN or TURN server for the browsers' WebRTC, as RTCPeerConnection takes it.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SipFile {
    listen: Option<String>,
    public_ip: Option<String>,
    realm: Option<String>,
    trusted: Option<Vec<String>>,
    max_calls: Option<usize>,
    rate_per_source: Option<u32>,
    tcp_max_connections: Option<usize>,
    tcp_max_per_address: Option<usize>,
    tcp_message_timeout_secs: Option<u64>,
    tcp_idle_timeout_secs: Option<u64>,
    /// Removed (per account now); still read so old files start, with a warning.
    digest: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrunkFile {
    address: Option<String>,
    username: Option<String>,
    password: Option<String>,
    caller_id: Option<String>,
}

/// `[dialplan]`: what Hotline may dial through the trunk (see hotline_ivr::dialplan).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DialplanFile {
    allow: Option<Vec<String>>,
    block: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ApiFile {
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RtpFile {
    ports: Option<String>,
    timeout_secs: Option<u64>,
    relay_threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpFile {
    listen: Option<String>,
    secure_cookies: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    login_wait_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StoreFile {
    state_dir: Option<String>,
    database_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FlowsFile {
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RecordingsFile {
    dir: Option<String>,
    stereo: Option<bool>,
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServiceFile {
    drain_secs: Option<u64>,
}

/// The effective settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub sip_listen: SocketAddr,
    /// Address written into SDP and Contact; `None`: the address the SIP socket answers on.
    pub public_ip: Option<IpAddr>,
    pub http_listen: SocketAddr,
    pub database_url: String,
    pub state_dir: PathBuf,
    pub flows_dir: PathBuf,
    pub rtp_ports: (u16, u16),
    /// No RTP from the caller for this long ends the call; zero turns detection off.
    pub rtp_timeout: Duration,
    /// Threads that relay plainly bridged calls' media; 0: each call's own task does.
    pub relay_threads: usize,
    /// How long calls in progress may go on after SIGTERM before they get BYE.
    pub drain_timeout: Duration,
    /// Digest realm for operators' phones; their stored HA1 values are bound to it.
    pub realm: String,
    /// Addresses (IP or CIDR) whose INVITEs are accepted without authentication: the trunk.
    pub trusted: Vec<hotline_sip::IpNet>,
    /// Concurrent calls; more get 503.
    pub max_calls: usize,
    /// SIP requests per second from one source address (bursts of twice that).
    pub rate_per_source: u32,
    /// SIP over TCP: connection caps and timeouts.
    pub sip_tcp: crate::sip_tcp::TcpLimits,
    pub trunk: Option<Trunk>,
    /// `[dialplan]`, also in `trunk` (what `flow check` checks transfers against).
    pub dialplan: hotline_ivr::dialplan::DialPlan,
    /// Bearer token for the HTTP API until web login exists; `None`: the API is off.
    pub api_token: Option<String>,
    /// Console cookies marked Secure (the console is reached over HTTPS, via a proxy).
    pub secure_cookies: bool,
    /// Proxies (IP or CIDR) whose `X-Forwarded-For` gives the client's address.
    pub trusted_proxies: Vec<hotline_sip::IpNet>,
    /// Open HTTP connections (WebSockets included), in all and per address, and the time
    /// a request head may take and a request body may send nothing.
    pub http_limits: hotline_web::server::HttpLimits,
    /// How long a login waits for a free password check before it gets 429.
    pub login_wait: Duration,
    /// How customers' phones reach the console: the invite links start with it.
    pub public_url: String,
    /// Dates on the console's pages.
    pub time_zone: chrono_tz::Tz,
    pub ice_servers: Vec<IceServer>,
    /// How long a call whose browser phone page went away holds for it, then goes back
    /// to its queue.
    pub phone_reattach: Duration,
    pub sms_limits: hotline_core::visual::SmsLimits,
    pub notify: hotline_core::notify::NotifyConfig,
    /// Web chat: the sites that embed the widget, offer timeout, wrap-up categories.
    pub chat: hotline_web::chat::ChatConfig,
    pub recordings: Recordings,
}

/// `[recordings]`: where recorded calls go and how long they stay (PRODUCT S2). Which
/// calls are recorded is the queues' and flows' business (`record`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recordings {
    pub dir: PathBuf,
    /// Caller left, operator right; else both mixed to mono.
    pub stereo: bool,
    /// Recordings older than this many days are deleted; 0: kept forever.
    pub retention_days: u32,
}

/// The SIP trunk for outbound calls (callbacks, click-to-call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    pub address: SocketAddr,
    pub credentials: Option<(String, String)>,
    /// The hotline number presented as caller ID.
    pub caller_id: String,
    /// What may be dialled through it (`[dialplan]`): every outbound leg checks it.
    pub dialplan: hotline_ivr::dialplan::DialPlan,
}

/// Where settings come from besides the file, so tests can pass their own.
pub trait Env {
    /// A variable's value; an empty one counts as unset.
    fn var(&self, name: &str) -> Option<String>;
    /// The names of all variables (to find the `HOTLINE_<SECTION>__<KEY>` ones).
    fn names(&self) -> Vec<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

/// The settings file to use: the one named (`--config`), else $HOTLINE_CONFIG, else
/// [`SYSTEM_CONFIG`] when it exists, else none (the built-in defaults).
pub fn config_path(given: Option<PathBuf>, env: &dyn Env) -> Option<PathBuf> {
    config_path_in(given, env, Path::new(SYSTEM_CONFIG))
}

fn config_path_in(given: Option<PathBuf>, env: &dyn Env, system: &Path) -> Option<PathBuf> {
    given
        .or_else(|| env.var("HOTLINE_CONFIG").map(PathBuf::from))
        .or_else(|| system.is_file().then(|| system.to_path_buf()))
}

/// One value from outside the file.
struct Override {
    /// What the admin set (`HOTLINE_SIP__LISTEN`, `credential trunk.password`): errors
    /// name it.
    origin: String,
    /// Table and key names, as in the file.
    path: Vec<String>,
    value: String,
    /// Always a string (secrets, the old variables); otherwise read as a TOML value
    /// (number, boolean, array) when it parses as one and that fits.
    text: bool,
}

/// Which settings were set from outside the file, by dotted key, and by what.
#[derive(Default)]
struct Sources(HashMap<String, String>);

impl Sources {
    /// The name to report a bad value under: the variable or credential it came from,
    /// else the file's key.
    fn name(&self, key: &str) -> String {
        self.0.get(key).cloned().unwrap_or_else(|| key.to_string())
    }
}

/// Credentials, then secret files, then the old variables, then `HOTLINE_<SECTION>__<KEY>`:
/// a later one wins.
fn overrides(env: &dyn Env) -> Result<Vec<Override>, ConfigError> {
    let mut found = Vec::new();
    if let Some(dir) = env.var("CREDENTIALS_DIRECTORY") {
        for c in secrets::credentials(Path::new(&dir))? {
            found.push(Override {
                origin: format!("credential {}", c.name),
                path: c.path,
                value: c.value,
                text: true,
            });
        }
    }
    let mut names = env.names();
    names.sort();
    let mut plain = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix("HOTLINE_").filter(|r| r.contains("__")) else {
            continue;
        };
        let Some(value) = env.var(&name) else {
            continue;
        };
        if let Some(key) = rest.strip_suffix("_FILE") {
            let path = env_path(&name, key)?;
            if !secrets::is_secret(&path) {
                return Err(ConfigError::Override {
                    origin: name,
                    message: format!(
                        "only secrets can come from a file: {}",
                        secrets::SECRETS.join(", ")
                    ),
                });
            }
            let value = secrets::read_secret(&name, Path::new(&value))?;
            found.push(Override {
                origin: name,
                path,
                value,
                text: true,
            });
        } else {
            let path = env_path(&name, rest)?;
            let text = secrets::is_secret(&path);
            plain.push(Override {
                origin: name,
                path,
                value,
                text,
            });
        }
    }
    for (name, key) in ALIASES {
        if let Some(value) = env.var(name) {
            found.push(Override {
                origin: name.to_string(),
                path: key.split('.').map(str::to_string).collect(),
                value,
                text: true,
            });
        }
    }
    found.extend(plain);
    Ok(found)
}

/// `SIP__TCP_IDLE_TIMEOUT_SECS` → `["sip", "tcp_idle_timeout_secs"]`.
fn env_path(name: &str, key: &str) -> Result<Vec<String>, ConfigError> {
    let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Override {
            origin: name.to_string(),
            message: "expected HOTLINE_<SECTION>__<KEY>, with __ between table and key".into(),
        });
    }
    Ok(path)
}

/// Puts `o` into the settings table; an override that does not fit (an unknown key, a
/// wrong type) is an error naming it.
fn apply(table: &mut toml::Table, o: &Override, seed: &toml::Table) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError::Override {
        origin: o.origin.clone(),
        message,
    };
    let text = toml::Value::String(o.value.clone());
    let mut candidates = Vec::new();
    if !o.text
        && let Ok(v) = o.value.parse::<toml::Value>()
        && !v.is_str()
    {
        candidates.push(v);
    }
    // A value that parses as TOML but where text is wanted (a token of digits, a caller
    // ID like +36…) is taken as text.
    candidates.push(text);
    let mut first_error = None;
    for value in candidates {
        let mut trial = table.clone();
        set_path(&mut trial, &o.path, value, Some(seed)).map_err(&fail)?;
        match toml::Value::Table(trial.clone()).try_into::<FileConfig>() {
            Ok(_) => {
                *table = trial;
                return Ok(());
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.message().to_string());
            }
        }
    }
    Err(fail(first_error.unwrap_or_default()))
}

/// A key of `table` that `name` means: the same, or differing only in case or `-` for `_`
/// (environment names are upper case and have no `-`).
fn find_key(table: &toml::Table, name: &str) -> Option<String> {
    if table.contains_key(name) {
        return Some(name.to_string());
    }
    table
        .keys()
        .find(|k| {
            k.replace('-', "_")
                .eq_ignore_ascii_case(&name.replace('-', "_"))
        })
        .cloned()
}

fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    seed: Option<&toml::Table>,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("no key".into());
    };
    let key = find_key(table, first).unwrap_or_else(|| first.clone());
    if rest.is_empty() {
        table.insert(key, value);
        return Ok(());
    }
    let seed = seed
        .and_then(|s| s.get(&key))
        .and_then(toml::Value::as_table);
    let slot = table
        .entry(key.clone())
        .or_insert_with(|| toml::Value::Table(seed.cloned().unwrap_or_default()));
    descend(slot, &key, rest, value, seed)
}

fn descend(
    slot: &mut toml::Value,
    key: &str,
    rest: &[String],
    value: toml::Value,
    seed: Option<&toml::Table>,
) -> Result<(), String> {
    match slot {
        toml::Value::Table(t) => set_path(t, rest, value, seed),
        toml::Value::Array(items) => {
            let (first, rest) = rest.split_first().ok_or("no key")?;
            let i = element(items, first).ok_or_else(|| {
                format!(
                    "the list {key} has no entry {first:?} (give its index from 0, or its key; it has {})",
                    items.len()
                )
            })?;
            if rest.is_empty() {
                items[i] = value;
                Ok(())
            } else {
                descend(&mut items[i], first, rest, value, None)
            }
        }
        _ => Err(format!("{key} is a value, not a table")),
    }
}

/// An entry of a list of tables by index, or by its `key` (`[[chat.sites]]`).
fn element(items: &[toml::Value], name: &str) -> Option<usize> {
    if let Ok(i) = name.parse::<usize>() {
        return (i < items.len()).then_some(i);
    }
    items.iter().position(|item| {
        item.get("key")
            .and_then(toml::Value::as_str)
            .is_some_and(|k| {
                k.replace('-', "_")
                    .eq_ignore_ascii_case(&name.replace('-', "_"))
            })
    })
}

/// The settings file's text; none: empty (the defaults).
fn read_settings(path: Option<&Path>) -> Result<String, ConfigError> {
    match path {
        Some(path) => std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        }),
        None => Ok(String::new()),
    }
}

/// Who reads the settings: the daemon needs every secret it uses; a command may go without.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Daemon,
    Command,
}

impl Config {
    /// Reads `path` (when given: a missing file is an error) and applies the overrides.
    /// Relative paths in the file stay relative to the working directory; the default
    /// flows directory is `ivr-flows` beside the file.
    pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = read_settings(path)?;
        Config::from_text(&text, path, env, Purpose::Daemon)
    }

    /// As [`Config::load`], for the admin commands (everything but `serve`): a secret only
    /// the daemon uses (the trunk's password, the gateways' settings) may be missing, as it
    /// is from a shell when it comes as a systemd credential.
    pub fn load_for_command(path: Option<&Path>, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = read_settings(path)?;
        Config::from_text(&text, path, env, Purpose::Command)
    }

    fn from_text(
        text: &str,
        path: Option<&Path>,
        env: &dyn Env,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        let parse_error = |message| ConfigError::Parse {
            path: path.map_or_else(|| PathBuf::from("settings"), Path::to_path_buf),
            message,
        };
        // The file alone first, so its errors have line and column.
        toml::from_str::<FileConfig>(text)
            .map_err(|e| parse_error(describe_toml_error(text, &e)))?;
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(describe_toml_error(text, &e)))?;
        let seed: toml::Table = toml::from_str(SHIPPED).unwrap_or_default();
        let mut sources = Sources::default();
        for o in overrides(env)? {
            apply(&mut table, &o, &seed)?;
            sources
                .0
                .insert(o.path.join(".").to_ascii_lowercase(), o.origin);
        }
        let file = toml::Value::Table(table)
            .try_into::<FileConfig>()
            .map_err(|e| parse_error(e.message().to_string()))?;
        let flows_default = match path {
            Some(p) => p.parent().unwrap_or(Path::new(".")).join("ivr-flows"),
            None => PathBuf::from("./ivr-flows"),
        };
        // The package's settings file means the package's state directory, also for the
        // admin commands run from a shell, which have no $STATE_DIRECTORY.
        let state_default = match env.var("STATE_DIRECTORY") {
            Some(dir) => dir,
            None if path == Some(Path::new(SYSTEM_CONFIG)) => SYSTEM_STATE_DIR.to_string(),
            None => "./var".to_string(),
        };
        Config::resolve(file, &sources, &flows_default, &state_default, purpose)
    }

    fn resolve(
        mut file: FileConfig,
        sources: &Sources,
        flows_default: &Path,
        default_state: &str,
        purpose: Purpose,
    ) -> Result<Config, ConfigError> {
        // The file's value or the default; a bad value is reported under the name it was
        // set by.
        let pick = |key: &str, file_value: Option<String>, default: &str| {
            (
                sources.name(key),
                file_value.unwrap_or_else(|| default.to_string()),
            )
        };

        let (name, v) = pick("sip.listen", file.sip.listen, "0.0.0.0:5060");
        let sip_listen = parse_socket_addr(&name, &v)?;
        let (name, v) = pick("http.listen", file.http.listen, "127.0.0.1:8080");
        let http_listen = parse_socket_addr(&name, &v)?;

        let (name, v) = pick("sip.public_ip", file.sip.public_ip, "");
        let public_ip = if v.is_empty() {
            None
        } else {
            let ip: IpAddr = v
                .parse()
                .map_err(|_| invalid(&name, &v, "not an IP address"))?;
            if ip.is_unspecified() {
                return Err(invalid(
                    &name,
                    &v,
                    "must be an address callers can reach, not 0.0.0.0",
                ));
            }
            Some(ip)
        };

        let (name, v) = pick("store.state_dir", file.store.state_dir, default_state);
        if v.trim().is_empty() {
            return Err(invalid(&name, &v, "must not be empty"));
        }
        let state_dir = PathBuf::from(v);

        let (name, v) = pick("store.database_url", file.store.database_url, "");
        let database_url = if v.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                state_dir.join("hotline.db").display()
            )
        } else {
            hotline_core::store::Backend::from_url(&v).map_err(|_| {
                invalid(
                    &name,
                    &hotline_core::store::redact(&v),
                    "use sqlite://FILE or postgres://…",
                )
            })?;
            v
        };

        // Beside the settings file by default: /etc/hotline/ivr-flows for the package's.
        let flows_dir = match file.flows.dir {
            None => flows_default.to_path_buf(),
            Some(v) if v.trim().is_empty() => {
                return Err(invalid(&sources.name("flows.dir"), &v, "must not be empty"));
            }
            Some(v) => PathBuf::from(v),
        };

        let (name, v) = pick("rtp.ports", file.rtp.ports, "20000-29999");
        let rtp_ports = parse_port_range(&name, &v)?;

        let realm = file.sip.realm.unwrap_or_else(|| "hotline".to_string());
        if realm.is_empty() || realm.contains(['"', '\\', '\r', '\n']) {
            return Err(invalid(
                "sip.realm",
                &realm,
                "must be plain text without quotes",
            ));
        }
        let mut trusted = Vec::new();
        // Loopback by default, so a local test call works on the defaults; anything else
        // must be a configured trunk or an authenticated phone.
        let trusted_default = vec!["127.0.0.1".to_string(), "::1".to_string()];
        for v in file.sip.trusted.unwrap_or(trusted_default) {
            trusted.push(v.parse::<hotline_sip::IpNet>().map_err(|_| {
                invalid(
                    "sip.trusted",
                    &v,
                    "expected an IP or CIDR, e.g. 192.0.2.0/28",
                )
            })?);
        }
        let max_calls = file.sip.max_calls.unwrap_or(500);
        if max_calls == 0 {
            return Err(invalid("sip.max_calls", "0", "must be at least 1"));
        }
        if file.sip.digest.is_some() {
            // Removed: one challenge per account now (some phones fail on two).
            tracing::warn!(
                "sip.digest is no longer used: each operator account has its digest algorithm \
                 (MD5 unless set: hotline operator digest NAME sha-256)"
            );
        }
        let rate_per_source = file.sip.rate_per_source.unwrap_or(20);
        if rate_per_source == 0 {
            return Err(invalid("sip.rate_per_source", "0", "must be at least 1"));
        }
        let tcp_default = crate::sip_tcp::TcpLimits::default();
        let at_least_one = |key: &'static str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(invalid(key, "0", "must be at least 1")),
            v => Ok(v.unwrap_or(default)),
        };
        let sip_tcp = crate::sip_tcp::TcpLimits {
            max_connections: at_least_one(
                "sip.tcp_max_connections",
                file.sip.tcp_max_connections.map(|v| v as u64),
                tcp_default.max_connections as u64,
            )? as usize,
            max_per_address: at_least_one(
                "sip.tcp_max_per_address",
                file.sip.tcp_max_per_address.map(|v| v as u64),
                tcp_default.max_per_address as u64,
            )? as usize,
            message_timeout: Duration::from_secs(at_least_one(
                "sip.tcp_message_timeout_secs",
                file.sip.tcp_message_timeout_secs,
                tcp_default.message_timeout.as_secs(),
            )?),
            idle_timeout: Duration::from_secs(at_least_one(
                "sip.tcp_idle_timeout_secs",
                file.sip.tcp_idle_timeout_secs,
                tcp_default.idle_timeout.as_secs(),
            )?),
        };

        let (name, v) = pick("trunk.address", file.trunk.address, "");
        let dialplan = {
            let strings = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
            let allow = file
                .dialplan
                .allow
                .unwrap_or_else(|| strings(hotline_ivr::dialplan::DEFAULT_ALLOW));
            let block = file
                .dialplan
                .block
                .unwrap_or_else(|| strings(hotline_ivr::dialplan::DEFAULT_BLOCK));
            hotline_ivr::dialplan::DialPlan::new(&allow, &block)
                .map_err(|e| invalid("dialplan", "", &e))?
        };
        let trunk = if v.is_empty() {
            None
        } else {
            let address = parse_socket_addr(&name, &v)?;
            let credentials = match (file.trunk.username, file.trunk.password) {
                (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
                (Some(u), None) if !u.is_empty() && purpose == Purpose::Daemon => {
                    return Err(invalid(
                        "trunk.password",
                        "",
                        "trunk.username is set: give the password here, in HOTLINE_TRUNK__PASSWORD(_FILE) or as the credential trunk.password",
                    ));
                }
                _ => None,
            };
            let caller_id = file.trunk.caller_id.unwrap_or_default();
            if caller_id.is_empty()
                || !caller_id
                    .trim_start_matches('+')
                    .chars()
                    .all(|c| c.is_ascii_digit())
            {
                return Err(invalid(
                    "trunk.caller_id",
                    &caller_id,
                    "the hotline number, digits with an optional leading +",
                ));
            }
            Some(Trunk {
                address,
                credentials,
                caller_id,
                dialplan: dialplan.clone(),
            })
        };

        let (name, v) = pick("api.token", file.api.token, "");
        let api_token = if v.is_empty() {
            None
        } else if v.len() < 16 {
            return Err(invalid(&name, "(hidden)", "use at least 16 characters"));
        } else {
            Some(v)
        };

        let (name, v) = pick("web.public_url", file.web.public_url, "");
        let public_url = if v.is_empty() {
            format!("http://{http_listen}")
        } else if v.starts_with("http://") || v.starts_with("https://") {
            v.trim_end_matches('/').to_string()
        } else {
            return Err(invalid(&name, &v, "use an http:// or https:// address"));
        };
        let tz_name = file
            .web
            .time_zone
            .unwrap_or_else(|| "Europe/Budapest".to_string());
        let time_zone: chrono_tz::Tz = tz_name.parse().map_err(|_| {
            invalid(
                "web.time_zone",
                &tz_name,
                "use an IANA time zone name such as Europe/Budapest",
            )
        })?;
        let default_limits = hotline_core::visual::SmsLimits::default();
        let sms_limits = hotline_core::visual::SmsLimits {
            per_operator_per_hour: file
                .web
                .sms_per_operator_per_hour
                .unwrap_or(default_limits.per_operator_per_hour),
            per_number_per_day: file
                .web
                .sms_per_number_per_day
                .unwrap_or(default_limits.per_number_per_day),
        };
        if let Err(message) = file.chat.validate() {
            return Err(ConfigError::Invalid {
                setting: "chat".to_string(),
                value: String::new(),
                message,
            });
        }
        file.notify.webhooks = std::mem::take(&mut file.webhooks);
        if let (Purpose::Daemon, Err(e)) = (purpose, file.notify.validate()) {
            return Err(invalid("notify", "(see the message)", &e.to_string()));
        }

        let mut trusted_proxies = Vec::new();
        for v in file.http.trusted_proxies.unwrap_or_default() {
            trusted_proxies.push(v.parse::<hotline_sip::IpNet>().map_err(|_| {
                invalid(
                    "http.trusted_proxies",
                    &v,
                    "expected an IP or CIDR, e.g. 127.0.0.1 or 10.0.0.0/8",
                )
            })?);
        }
        let default_http = hotline_web::server::HttpLimits::default();
        let max_connections = file
            .http
            .max_connections
            .unwrap_or(default_http.max_connections);
        if max_connections == 0 {
            return Err(invalid("http.max_connections", "0", "must be at least 1"));
        }
        let header_read_timeout_secs = file
            .http
            .header_read_timeout_secs
            .unwrap_or(default_http.header_read_timeout.as_secs());
        if header_read_timeout_secs == 0 {
            return Err(invalid(
                "http.header_read_timeout_secs",
                "0",
                "must be at least 1",
            ));
        }
        let max_connections_per_address = file
            .http
            .max_connections_per_address
            .unwrap_or(default_http.max_connections_per_address);
        if max_connections_per_address == 0 {
            return Err(invalid(
                "http.max_connections_per_address",
                "0",
                "must be at least 1",
            ));
        }
        let body_read_timeout_secs = file
            .http
            .body_read_timeout_secs
            .unwrap_or(default_http.body_read_timeout.as_secs());
        if body_read_timeout_secs == 0 {
            return Err(invalid(
                "http.body_read_timeout_secs",
                "0",
                "must be at least 1",
            ));
        }
        let http_limits = hotline_web::server::HttpLimits {
            max_connections,
            max_connections_per_address,
            header_read_timeout: Duration::from_secs(header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(body_read_timeout_secs),
            trusted_proxies: hotline_web::TrustedProxies::new(trusted_proxies.clone()),
        };
        let login_wait = Duration::from_secs(
            file.http
                .login_wait_secs
                .unwrap_or(hotline_core::users::PasswordChecks::DEFAULT_WAIT.as_secs()),
        );

        let rtp_timeout = Duration::from_secs(file.rtp.timeout_secs.unwrap_or(30));
        let relay_threads = file.rtp.relay_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let drain_timeout = Duration::from_secs(file.service.drain_secs.unwrap_or(30));
        let recordings = Recordings {
            dir: match file.recordings.dir {
                None => state_dir.join("recordings"),
                Some(v) if v.trim().is_empty() => {
                    return Err(invalid(
                        &sources.name("recordings.dir"),
                        &v,
                        "must not be empty",
                    ));
                }
                Some(v) => PathBuf::from(v),
            },
            stereo: file.recordings.stereo.unwrap_or(false),
            retention_days: file.recordings.retention_days.unwrap_or(90),
        };

        Ok(Config {
            sip_listen,
            public_ip,
            http_listen,
            database_url,
            state_dir,
            flows_dir,
            rtp_ports,
            rtp_timeout,
            relay_threads,
            drain_timeout,
            realm,
            trusted,
            max_calls,
            rate_per_source,
            sip_tcp,
            trunk,
            dialplan,
            api_token,
            secure_cookies: file.http.secure_cookies.unwrap_or(false),
            trusted_proxies,
            http_limits,
            login_wait,
            public_url,
            time_zone,
            ice_servers: file.web.ice_servers.unwrap_or_default(),
            sms_limits,
            // 1 s to an hour: a call on hold longer than that is lost anyway, and a huge
            // value would overflow the leg's deadline.
            phone_reattach: Duration::from_secs(
                file.web.phone_reattach_secs.unwrap_or(30).clamp(1, 3600),
            ),
            notify: file.notify,
            chat: file.chat,
            recordings,
        })
    }
}

fn invalid(setting: &str, value: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

fn parse_socket_addr(setting: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|_| invalid(setting, v, "expected IP:PORT, e.g. 0.0.0.0:5060"))
}

/// `LOW-HIGH`, both even-aligned in use (RTP takes even ports), at least two ports.
fn parse_port_range(setting: &str, v: &str) -> Result<(u16, u16), ConfigError> {
    let bad = |m: &str| invalid(setting, v, m);
    let (lo, hi) = v
        .split_once('-')
        .ok_or_else(|| bad("expected LOW-HIGH, e.g. 20000-29999"))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| bad("LOW is not a port number"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| bad("HIGH is not a port number"))?;
    if lo < 1024 || hi <= lo {
        return Err(bad("need 1024 <= LOW < HIGH"));
    }
    Ok((lo, hi))
}

/// `line:col: message` for a TOML error, so admins find the spot.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{line}:{col}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<String, String>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).filter(|v| !v.is_empty()).cloned()
        }
        fn names(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }
    fn env(pairs: &[(&str, &str)]) -> FakeEnv {
        FakeEnv(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
    fn from_toml(text: &str, e: &FakeEnv) -> Result<Config, ConfigError> {
        Config::from_text(text, None, e, Purpose::Daemon)
    }

    #[test]
    fn defaults_run_offline() {
        let c = from_toml("", &env(&[])).unwrap();
        assert_eq!(c.sip_listen, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(c.http_listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.state_dir, PathBuf::from("./var"));
        assert_eq!(c.database_url, "sqlite://./var/hotline.db?mode=rwc");
        assert_eq!(c.flows_dir, PathBuf::from("./ivr-flows"));
        assert_eq!(c.rtp_ports, (20000, 29999));
        assert_eq!(c.public_ip, None);
    }

    #[test]
    fn the_phone_reattach_time_stays_between_a_second_and_an_hour() {
        let reattach = |text: &str| from_toml(text, &env(&[])).unwrap().phone_reattach;
        assert_eq!(reattach(""), Duration::from_secs(30));
        assert_eq!(
            reattach("[web]\nphone_reattach_secs = 0\n"),
            Duration::from_secs(1)
        );
        assert_eq!(
            reattach("[web]\nphone_reattach_secs = 9223372036854775807\n"),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = from_toml(
            "[sip]\nlisten = \"127.0.0.1:5070\"\n[rtp]\nports = \"30000-30100\"\n",
            &env(&[
                ("HOTLINE_SIP_LISTEN", "127.0.0.1:5080"),
                ("HOTLINE_PUBLIC_IP", "192.0.2.7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.sip_listen, "127.0.0.1:5080".parse().unwrap());
        assert_eq!(c.rtp_ports, (30000, 30100));
        assert_eq!(c.public_ip, Some("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn systemd_state_directory_is_the_default_state_dir() {
        let c = from_toml("", &env(&[("STATE_DIRECTORY", "/var/lib/hotline")])).unwrap();
        assert_eq!(
            c.database_url,
            "sqlite:///var/lib/hotline/hotline.db?mode=rwc"
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            ("HOTLINE_SIP_LISTEN", "5060"),
            ("HOTLINE_HTTP_LISTEN", "localhost:80"),
            ("HOTLINE_RTP_PORTS", "30000"),
            ("HOTLINE_RTP_PORTS", "30000-20000"),
            ("HOTLINE_PUBLIC_IP", "example"),
            ("HOTLINE_DATABASE_URL", "mysql://u:pw@h/db"),
        ];
        for (name, value) in cases {
            let err = from_toml("", &env(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
            assert!(!err.contains("pw@"), "password leaked: {err}");
        }
        let err = from_toml("[rtp]\nports = \"1-2\"\n", &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("setting rtp.ports:"), "{err}");
    }

    #[test]
    fn trunk_trust_and_api_settings() {
        let c = from_toml(
            "[sip]\ntrusted = [\"192.0.2.10\", \"198.51.100.0/28\"]\n[trunk]\naddress = \"192.0.2.10:5060\"\nusername = \"hl\"\ncaller_id = \"+3612345678\"\n",
            &env(&[("HOTLINE_TRUNK_PASSWORD", "s3cret"), ("HOTLINE_API_TOKEN", "0123456789abcdef")]),
        )
        .unwrap();
        let defaults = from_toml("", &env(&[])).unwrap();
        assert!(defaults.trusted[0].contains("127.0.0.1".parse().unwrap()));
        assert!(!defaults.trusted[0].contains("127.0.0.2".parse().unwrap()));
        assert!(c.trusted[0].contains("192.0.2.10".parse().unwrap()));
        assert!(!c.trusted[0].contains("192.0.2.11".parse().unwrap()));
        assert!(c.trusted[1].contains("198.51.100.15".parse().unwrap()));
        assert!(!c.trusted[1].contains("198.51.100.16".parse().unwrap()));
        let trunk = c.trunk.unwrap();
        assert_eq!(trunk.credentials, Some(("hl".into(), "s3cret".into())));
        assert_eq!(trunk.caller_id, "+3612345678");
        assert_eq!(c.api_token.as_deref(), Some("0123456789abcdef"));

        for (text, setting) in [
            ("[sip]\ntrusted = [\"192.0.2.0/33\"]\n", "sip.trusted"),
            (
                "[trunk]\naddress = \"192.0.2.10:5060\"\ncaller_id = \"hotline\"\n",
                "trunk.caller_id",
            ),
            (
                "[trunk]\naddress = \"192.0.2.10:5060\"\nusername = \"u\"\ncaller_id = \"1\"\n",
                "trunk.password",
            ),
            ("[api]\ntoken = \"short\"\n", "api.token"),
            ("[sip]\nmax_calls = 0\n", "sip.max_calls"),
            (
                "[http]\ntrusted_proxies = [\"proxy.example\"]\n",
                "http.trusted_proxies",
            ),
            ("[http]\nmax_connections = 0\n", "http.max_connections"),
            (
                "[http]\nheader_read_timeout_secs = 0\n",
                "http.header_read_timeout_secs",
            ),
            (
                "[http]\nmax_connections_per_address = 0\n",
                "http.max_connections_per_address",
            ),
            (
                "[http]\nbody_read_timeout_secs = 0\n",
                "http.body_read_timeout_secs",
            ),
            (
                "[chat]\noffer_timeout_secs = 1\n",
                "chat.offer_timeout_secs",
            ),
            (
                "[[chat.sites]]\nkey = \"a b\"\nname = \"x\"\nqueues = [\"support\"]\n",
                "chat.sites",
            ),
            (
                "[[chat.sites]]\nkey = \"a\"\nname = \"x\"\nqueues = [\"support\"]\nallowed_origins = [\"example.com\"]\n",
                "allowed origin",
            ),
        ] {
            let err = from_toml(text, &env(&[])).unwrap_err().to_string();
            assert!(err.contains(setting), "{text}: {err}");
            assert!(!err.contains("short"), "a token must not be echoed: {err}");
        }
    }

    #[test]
    fn http_limits_and_trusted_proxies() {
        let defaults = from_toml("", &env(&[])).unwrap();
        assert!(defaults.trusted_proxies.is_empty());
        assert_eq!(defaults.http_limits.max_connections, 1024);
        assert_eq!(
            defaults.http_limits.header_read_timeout,
            Duration::from_secs(10)
        );
        assert_eq!(defaults.http_limits.max_connections_per_address, 64);
        assert_eq!(
            defaults.http_limits.body_read_timeout,
            Duration::from_secs(30)
        );
        assert_eq!(defaults.login_wait, Duration::from_secs(5));
        let c = from_toml(
            "[http]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nmax_connections = 50\n\
             max_connections_per_address = 7\nheader_read_timeout_secs = 3\n\
             body_read_timeout_secs = 4\nlogin_wait_secs = 2\n",
            &env(&[]),
        )
        .unwrap();
        assert!(c.trusted_proxies[0].contains("127.0.0.1".parse().unwrap()));
        assert!(c.trusted_proxies[1].contains("10.9.8.7".parse().unwrap()));
        assert!(!c.trusted_proxies[1].contains("11.0.0.1".parse().unwrap()));
        assert_eq!(c.http_limits.max_connections, 50);
        assert_eq!(c.http_limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!(c.http_limits.max_connections_per_address, 7);
        assert_eq!(c.http_limits.body_read_timeout, Duration::from_secs(4));
        // The proxies are exempt from the per-address cap.
        assert!(
            c.http_limits
                .trusted_proxies
                .contains("10.1.1.1".parse().unwrap())
        );
        assert_eq!(c.login_wait, Duration::from_secs(2));
    }

    #[test]
    fn the_shipped_config_file_states_the_defaults() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/hotline.toml"
        ));
        let mut shipped = Config::load(Some(path), &env(&[])).unwrap();
        let defaults = from_toml("", &env(&[])).unwrap();
        // The one intended difference: without flows.dir, the flows are the ivr-flows
        // beside the file in use (/etc/hotline/ivr-flows for the package's file).
        assert_eq!(shipped.flows_dir, path.parent().unwrap().join("ivr-flows"));
        assert_eq!(defaults.flows_dir, PathBuf::from("./ivr-flows"));
        shipped.flows_dir = defaults.flows_dir.clone();
        assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
        // No path is set in it, so it does not shadow systemd's $STATE_DIRECTORY.
        let under_systemd =
            Config::load(Some(path), &env(&[("STATE_DIRECTORY", "/var/lib/hotline")])).unwrap();
        assert_eq!(under_systemd.state_dir, PathBuf::from("/var/lib/hotline"));
    }

    /// A fresh directory under the system's temporary one.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hotline-config-{name}-{:016x}",
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_key_has_an_environment_name() {
        // Nested: one field of an inline table the file does not have keeps its sibling
        // at the default.
        let c = from_toml(
            "",
            &env(&[
                ("HOTLINE_CHAT__LIMITS__START__PER_SITE", "500"),
                (
                    "HOTLINE_SIP__TRUSTED",
                    "[\"192.0.2.1\", \"198.51.100.0/24\"]",
                ),
                ("HOTLINE_HTTP__SECURE_COOKIES", "true"),
                ("HOTLINE_SIP__MAX_CALLS", "7"),
                ("HOTLINE_NOTIFY__RETRY__MAX_ATTEMPTS", "3"),
                ("HOTLINE_TRUNK__ADDRESS", "192.0.2.10:5060"),
                // Parses as a TOML number, but the key wants text: taken as text.
                ("HOTLINE_TRUNK__CALLER_ID", "+3612345678"),
            ]),
        )
        .unwrap();
        assert_eq!(c.chat.limits.start.per_site, 500);
        assert_eq!(c.chat.limits.start.per_address, 5);
        assert_eq!(c.trusted.len(), 2);
        assert!(c.trusted[1].contains("198.51.100.9".parse().unwrap()));
        assert!(c.secure_cookies);
        assert_eq!(c.max_calls, 7);
        assert_eq!(c.notify.retry.max_attempts, 3);
        assert_eq!(c.trunk.unwrap().caller_id, "+3612345678");

        // Over the file's value, keeping the file's other fields; the new name beats the
        // old one.
        let c = from_toml(
            "[chat.limits]\nstart = { per_address = 1, per_site = 2 }\n[sip]\nlisten = \"127.0.0.1:5070\"\n",
            &env(&[
                ("HOTLINE_CHAT__LIMITS__START__PER_SITE", "9"),
                ("HOTLINE_SIP_LISTEN", "127.0.0.1:5080"),
                ("HOTLINE_SIP__LISTEN", "127.0.0.1:5090"),
            ]),
        )
        .unwrap();
        assert_eq!(c.chat.limits.start.per_address, 1);
        assert_eq!(c.chat.limits.start.per_site, 9);
        assert_eq!(c.sip_listen, "127.0.0.1:5090".parse().unwrap());
    }

    #[test]
    fn a_bad_override_names_its_variable() {
        for (name, value, says) in [
            ("HOTLINE_SIP__LISTNE", "x", "listne"),
            ("HOTLINE_NOPE__KEY", "1", "nope"),
            ("HOTLINE_SIP__MAX_CALLS", "many", "usize"),
            ("HOTLINE_SIP__LISTEN__PORT", "5060", "not a table"),
            ("HOTLINE_SIP__", "x", "HOTLINE_<SECTION>__<KEY>"),
        ] {
            let err = from_toml("", &env(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("{name}: ")), "{err}");
            assert!(err.contains(says), "{err}");
        }
        // A value the key takes but the setting refuses: named by the variable too.
        let err = from_toml("", &env(&[("HOTLINE_SIP__LISTEN", "5060")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("setting HOTLINE_SIP__LISTEN: expected IP:PORT"),
            "{err}"
        );
        // Other HOTLINE_ variables (one underscore) are not settings.
        from_toml(
            "",
            &env(&[("HOTLINE_TEST_CLOCK", "x"), ("HOTLINE_LOG", "debug")]),
        )
        .unwrap();
    }

    #[test]
    fn webhooks_with_their_secret_from_a_file() {
        let dir = temp_dir("webhook-secret");
        let file = dir.join("hook.secret");
        std::fs::write(&file, "whsec_from_a_file_0123\n").unwrap();
        let hooks = "[[webhooks]]\nurl = \"https://crm.example/hotline\"\n\
                     events = [\"call.ended\"]\n\
                     [[webhooks]]\nurl = \"https://bi.example/in\"\n";
        let c = from_toml(
            hooks,
            &env(&[
                ("HOTLINE_WEBHOOKS__0__SECRET_FILE", file.to_str().unwrap()),
                ("HOTLINE_WEBHOOKS__1__SECRET", "whsec_from_the_env_01"),
            ]),
        )
        .unwrap();
        let w = &c.notify.webhooks;
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].secret, "whsec_from_a_file_0123");
        assert_eq!(w[0].events, ["call.ended"]);
        // Every event when `events` is left out.
        assert_eq!(w[1].events, ["call.ended", "chat.ended", "callback.done"]);
        assert_eq!(w[1].secret, "whsec_from_the_env_01");

        // The daemon will not sign with no secret, nor post an event it doesn't know.
        let err =
            from_toml("[[webhooks]]\nurl = \"https://crm.example/h\"\n", &env(&[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("webhooks.0.secret: must be at least 16 characters"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_from_files() {
        let dir = temp_dir("secret-file");
        let file = dir.join("trunk.secret");
        std::fs::write(&file, "s3cret pass\n").unwrap();
        let file = file.to_str().unwrap();
        let trunk = "[trunk]\naddress = \"192.0.2.10:5060\"\nusername = \"hl\"\ncaller_id = \"+3612345678\"\npassword = \"in-the-file\"\n";
        let password = |c: Config| c.trunk.unwrap().credentials.unwrap().1;

        let c = from_toml(trunk, &env(&[("HOTLINE_TRUNK__PASSWORD_FILE", file)])).unwrap();
        assert_eq!(password(c), "s3cret pass");
        // The variable itself beats the file reference.
        let c = from_toml(
            trunk,
            &env(&[
                ("HOTLINE_TRUNK__PASSWORD_FILE", file),
                ("HOTLINE_TRUNK__PASSWORD", "from-env"),
            ]),
        )
        .unwrap();
        assert_eq!(password(c), "from-env");

        let missing = dir.join("nope");
        let missing = missing.to_str().unwrap();
        let err = from_toml(trunk, &env(&[("HOTLINE_TRUNK__PASSWORD_FILE", missing)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HOTLINE_TRUNK__PASSWORD_FILE: reading the secret file"),
            "{err}"
        );
        assert!(err.contains(missing), "{err}");

        // The TURN server's credential: an entry of a list, by its index.
        let ice = "[[web.ice_servers]]\nurls = [\"stun:stun.example.org\"]\n\
                   [[web.ice_servers]]\nurls = [\"turn:turn.example.org\"]\nusername = \"hl\"\n";
        let c = from_toml(
            ice,
            &env(&[("HOTLINE_WEB__ICE_SERVERS__1__CREDENTIAL_FILE", file)]),
        )
        .unwrap();
        assert_eq!(c.ice_servers[0].credential, None);
        assert_eq!(c.ice_servers[1].credential.as_deref(), Some("s3cret pass"));
        let err = from_toml(
            ice,
            &env(&[("HOTLINE_WEB__ICE_SERVERS__2__CREDENTIAL_FILE", file)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("HOTLINE_WEB__ICE_SERVERS__2__CREDENTIAL_FILE: the list ice_servers has no entry \"2\""),
            "{err}"
        );

        let err = from_toml("", &env(&[("HOTLINE_SIP__LISTEN_FILE", file)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HOTLINE_SIP__LISTEN_FILE: only secrets"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_from_systemd_credentials() {
        let dir = temp_dir("credentials");
        std::fs::write(dir.join("api.token"), "0123456789abcdef-credential\n").unwrap();
        std::fs::write(dir.join("chat.sites.shop.hmac_secret"), "site secret").unwrap();
        std::fs::write(dir.join("notify.sms.headers.Authorization"), "Bearer xyz").unwrap();
        let creds = dir.to_str().unwrap();
        let sites = "[[chat.sites]]\nkey = \"demo\"\nname = \"Demo\"\nqueues = [\"support\"]\n\
                     [[chat.sites]]\nkey = \"shop\"\nname = \"Shop\"\nqueues = [\"sales\"]\n";

        let c = from_toml(sites, &env(&[("CREDENTIALS_DIRECTORY", creds)])).unwrap();
        assert_eq!(c.api_token.as_deref(), Some("0123456789abcdef-credential"));
        assert_eq!(c.chat.sites[0].hmac_secret, None);
        assert_eq!(c.chat.sites[1].hmac_secret.as_deref(), Some("site secret"));
        assert_eq!(c.notify.sms.headers["Authorization"], "Bearer xyz");

        // A *_FILE variable beats the credential, the variable beats both.
        let file = dir.with_extension("token");
        std::fs::write(&file, "fedcba9876543210-file").unwrap();
        let c = from_toml(
            sites,
            &env(&[
                ("CREDENTIALS_DIRECTORY", creds),
                ("HOTLINE_API__TOKEN_FILE", file.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert_eq!(c.api_token.as_deref(), Some("fedcba9876543210-file"));
        std::fs::remove_file(&file).unwrap();

        // A too short token from a credential: named, not shown.
        std::fs::write(dir.join("api.token"), "short-secret").unwrap();
        let err = from_toml(sites, &env(&[("CREDENTIALS_DIRECTORY", creds)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("credential api.token"), "{err}");
        assert!(!err.contains("short-secret"), "{err}");

        // A credential that is no secret key (a typo) is an error, not silently unused.
        std::fs::write(dir.join("trunk.pasword"), "x").unwrap();
        let err = from_toml(sites, &env(&[("CREDENTIALS_DIRECTORY", creds)]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("credential trunk.pasword"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn which_settings_file() {
        let dir = temp_dir("which");
        let system = dir.join("hotline.toml");
        let given = Some(PathBuf::from("given.toml"));
        let from_env = env(&[("HOTLINE_CONFIG", "env.toml")]);
        assert_eq!(
            config_path_in(given.clone(), &from_env, &system),
            given.clone()
        );
        assert_eq!(
            config_path_in(None, &from_env, &system),
            Some(PathBuf::from("env.toml"))
        );
        assert_eq!(config_path_in(None, &env(&[]), &system), None);
        std::fs::write(&system, "").unwrap();
        assert_eq!(
            config_path_in(None, &env(&[]), &system),
            Some(system.clone())
        );

        // A file named but missing is an error that names it.
        let missing = dir.join("missing.toml");
        let err = Config::load(Some(&missing), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(err.contains("not found"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_flows_are_beside_the_settings_file() {
        let dir = temp_dir("flows");
        let file = dir.join("hotline.toml");
        std::fs::write(&file, "[sip]\n").unwrap();
        let c = Config::load(Some(&file), &env(&[])).unwrap();
        assert_eq!(c.flows_dir, dir.join("ivr-flows"));
        // Without a file: ./ivr-flows, the repository's example flows.
        let c = Config::load(None, &env(&[])).unwrap();
        assert_eq!(c.flows_dir, PathBuf::from("./ivr-flows"));
        // The variable and the key win; a relative path stays relative to the working
        // directory, as does a relative state_dir.
        let c = Config::load(Some(&file), &env(&[("HOTLINE_FLOWS_DIR", "/srv/flows")])).unwrap();
        assert_eq!(c.flows_dir, PathBuf::from("/srv/flows"));
        std::fs::write(
            &file,
            "[flows]\ndir = \"flows\"\n[store]\nstate_dir = \"state\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            &env(&[("STATE_DIRECTORY", "/var/lib/hotline")]),
        )
        .unwrap();
        assert_eq!(c.flows_dir, PathBuf::from("flows"));
        assert_eq!(c.state_dir, PathBuf::from("state"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_state_dir_is_systemds_else_var() {
        let c = from_toml("", &env(&[])).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("./var"));
        let c = from_toml("", &env(&[("STATE_DIRECTORY", "/var/lib/hotline")])).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/hotline"));
        let c = from_toml(
            "",
            &env(&[
                ("STATE_DIRECTORY", "/var/lib/hotline"),
                ("HOTLINE_STATE_DIR", "/srv/h"),
            ]),
        )
        .unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/srv/h"));
        // The package's settings file, read from a shell (no $STATE_DIRECTORY): the
        // package's state directory, where the service keeps its database.
        let system = Some(Path::new(SYSTEM_CONFIG));
        let c = Config::from_text("", system, &env(&[]), Purpose::Daemon).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/hotline"));
        let c = Config::from_text(
            "",
            system,
            &env(&[("STATE_DIRECTORY", "/srv/s")]),
            Purpose::Daemon,
        )
        .unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/srv/s"));
        let c = Config::from_text(
            "",
            Some(Path::new("/tmp/h.toml")),
            &env(&[]),
            Purpose::Daemon,
        )
        .unwrap();
        assert_eq!(c.state_dir, PathBuf::from("./var"));
    }

    #[test]
    fn commands_go_without_the_secrets_only_the_daemon_uses() {
        // The trunk's password as a systemd credential: a shell has none of it.
        let text = "[trunk]\naddress = \"192.0.2.10:5060\"\nusername = \"hl\"\ncaller_id = \"+3612345678\"\n";
        let e = Config::from_text(text, None, &env(&[]), Purpose::Daemon).unwrap_err();
        assert!(e.to_string().contains("trunk.password"), "{e}");
        let c = Config::from_text(text, None, &env(&[]), Purpose::Command).unwrap();
        assert_eq!(c.trunk.unwrap().credentials, None);
    }

    #[test]
    fn unknown_keys_are_errors_with_position() {
        let text = "[sip]\nlisten = \"0.0.0.0:5060\"\nlistne = \"x\"\n";
        let e = toml::from_str::<FileConfig>(text).unwrap_err();
        let msg = describe_toml_error(text, &e);
        assert!(msg.starts_with("3:1:"), "{msg}");
        assert!(msg.contains("listne"), "{msg}");
    }
}
