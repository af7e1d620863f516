//! Settings: `config/hotline.toml` (every key optional), then environment overrides.
//! A bad value stops start-up with a message that names the setting.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting {setting}: {message} (got {value:?})")]
    Invalid {
        setting: &'static str,
        value: String,
        message: String,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WebFile {
    public_url: Option<String>,
    time_zone: Option<String>,
    ice_servers: Option<Vec<IceServer>>,
    sms_per_operator_per_hour: Option<u32>,
    sms_per_number_per_day: Option<u32>,
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
    pub sms_limits: hotline_core::visual::SmsLimits,
    pub notify: hotline_core::notify::NotifyConfig,
    /// Web chat: the sites that embed the widget, offer timeout, wrap-up categories.
    pub chat: hotline_web::chat::ChatConfig,
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
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Reads `path` (when given; a missing explicit file is an error) and applies overrides.
    pub fn load(path: Option<&Path>, env: &dyn Env) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: describe_toml_error(&text, &e),
                })?
            }
            None => FileConfig::default(),
        };
        Config::resolve(file, env)
    }

    fn resolve(file: FileConfig, env: &dyn Env) -> Result<Config, ConfigError> {
        // Environment first, then the file, then the default; the name reported is the one
        // the value came from.
        let pick = |env_name: &'static str,
                    file_name: &'static str,
                    file_value: Option<String>,
                    default: &str| {
            match env.var(env_name) {
                Some(v) => (env_name, v),
                None => (file_name, file_value.unwrap_or_else(|| default.to_string())),
            }
        };

        let (name, v) = pick(
            "HOTLINE_SIP_LISTEN",
            "sip.listen",
            file.sip.listen,
            "0.0.0.0:5060",
        );
        let sip_listen = parse_socket_addr(name, &v)?;
        let (name, v) = pick(
            "HOTLINE_HTTP_LISTEN",
            "http.listen",
            file.http.listen,
            "127.0.0.1:8080",
        );
        let http_listen = parse_socket_addr(name, &v)?;

        let (name, v) = pick("HOTLINE_PUBLIC_IP", "sip.public_ip", file.sip.public_ip, "");
        let public_ip = if v.is_empty() {
            None
        } else {
            let ip: IpAddr = v
                .parse()
                .map_err(|_| invalid(name, &v, "not an IP address"))?;
            if ip.is_unspecified() {
                return Err(invalid(
                    name,
                    &v,
                    "must be an address callers can reach, not 0.0.0.0",
                ));
            }
            Some(ip)
        };

        let default_state = env
            .var("STATE_DIRECTORY")
            .unwrap_or_else(|| "./var".to_string());
        let (name, v) = pick(
            "HOTLINE_STATE_DIR",
            "store.state_dir",
            file.store.state_dir,
            &default_state,
        );
        if v.trim().is_empty() {
            return Err(invalid(name, &v, "must not be empty"));
        }
        let state_dir = PathBuf::from(v);

        let (name, v) = pick(
            "HOTLINE_DATABASE_URL",
            "store.database_url",
            file.store.database_url,
            "",
        );
        let database_url = if v.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                state_dir.join("hotline.db").display()
            )
        } else {
            hotline_core::store::Backend::from_url(&v).map_err(|_| {
                invalid(
                    name,
                    &hotline_core::store::redact(&v),
                    "use sqlite://FILE or postgres://…",
                )
            })?;
            v
        };

        let (name, v) = pick(
            "HOTLINE_FLOWS_DIR",
            "flows.dir",
            file.flows.dir,
            "./ivr-flows",
        );
        if v.trim().is_empty() {
            return Err(invalid(name, &v, "must not be empty"));
        }
        let flows_dir = PathBuf::from(v);

        let (name, v) = pick(
            "HOTLINE_RTP_PORTS",
            "rtp.ports",
            file.rtp.ports,
            "20000-29999",
        );
        let rtp_ports = parse_port_range(name, &v)?;

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

        let (name, v) = pick(
            "HOTLINE_TRUNK_ADDRESS",
            "trunk.address",
            file.trunk.address,
            "",
        );
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
            let address = parse_socket_addr(name, &v)?;
            let password = env.var("HOTLINE_TRUNK_PASSWORD").or(file.trunk.password);
            let credentials = match (file.trunk.username, password) {
                (Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
                (Some(u), None) if !u.is_empty() => {
                    return Err(invalid(
                        "trunk.password",
                        "",
                        "trunk.username is set: give the password here or in HOTLINE_TRUNK_PASSWORD",
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

        let (name, v) = pick("HOTLINE_API_TOKEN", "api.token", file.api.token, "");
        let api_token = if v.is_empty() {
            None
        } else if v.len() < 16 {
            return Err(invalid(name, "(hidden)", "use at least 16 characters"));
        } else {
            Some(v)
        };

        let (name, v) = pick(
            "HOTLINE_PUBLIC_URL",
            "web.public_url",
            file.web.public_url,
            "",
        );
        let public_url = if v.is_empty() {
            format!("http://{http_listen}")
        } else if v.starts_with("http://") || v.starts_with("https://") {
            v.trim_end_matches('/').to_string()
        } else {
            return Err(invalid(name, &v, "use an http:// or https:// address"));
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
                setting: "chat",
                value: String::new(),
                message,
            });
        }
        if let Err(e) = file.notify.validate() {
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
            notify: file.notify,
            chat: file.chat,
        })
    }
}

fn invalid(setting: &'static str, value: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        setting,
        value: value.to_string(),
        message: message.to_string(),
    }
}

fn parse_socket_addr(setting: &'static str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|_| invalid(setting, v, "expected IP:PORT, e.g. 0.0.0.0:5060"))
}

/// `LOW-HIGH`, both even-aligned in use (RTP takes even ports), at least two ports.
fn parse_port_range(setting: &'static str, v: &str) -> Result<(u16, u16), ConfigError> {
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

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }
    fn env(pairs: &[(&'static str, &'static str)]) -> FakeEnv {
        FakeEnv(pairs.iter().copied().collect())
    }
    fn from_toml(text: &str, e: &FakeEnv) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).unwrap();
        Config::resolve(file, e)
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
        let shipped = Config::load(Some(path), &env(&[])).unwrap();
        let defaults = from_toml("", &env(&[])).unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
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
