//! `rtp-meter`: receives the RTP of many calls on one UDP port, tells the streams apart by
//! SSRC, and for a measuring window records every stream's packet inter-arrival interval
//! (taken with `Instant::now()` right after `recv`) in one fixed histogram. It prints one
//! line of JSON and one line for people.
//!
//! It shares a small machine with the daemon it measures, so the per-packet path does no
//! allocation and no formatting: a header parse, one hash-map lookup keyed by SSRC, and a
//! histogram increment. New streams grow the map only when it outgrows its reserve.
//!
//! Usage: `rtp-meter --port PORT [--warmup SECS] [--seconds SECS] [--start-file PATH]
//!        [--pid PID] ...` (see `--help`).
//!
//! `rtp-meter --bridge ...` is another mode: it plays and measures both ends of the
//! media of bridged calls (see the `bridge` module and `rtp-meter --bridge --help`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Histogram resolution and range: 10 µs buckets up to 1 s, then one overflow bucket.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 100_000;
/// A forward sequence step larger than this is a restart of the numbering, not loss.
const MAX_GAP: u16 = 3000;

const USAGE: &str = "\
rtp-meter: RTP inter-arrival timing and loss of many streams on one UDP port

  --port PORT          UDP port to listen on (required)
  --bind IP            address to bind (default 127.0.0.1)
  --warmup SECS        seconds after the start before measuring (default 1)
  --seconds SECS       length of the measuring window (default 15)
  --start-file PATH    the start is when PATH exists (until then packets are drained
                       unread); without it the start is when the socket is bound
  --max-wait SECS      give up when PATH has not appeared after this long (default 300)
  --pid PID            also report this process's CPU (% of one core) over the window
                       and its VmRSS at the end of the window
  --clk-tck N          kernel clock ticks per second for /proc CPU times (default 100)
  --ptime-ms MS        expected packet interval (default 20)
  --tolerance-ms MS    an interval is on time within ptime ± this (default 2)
  --clock-rate HZ      RTP clock rate for the RFC 3550 jitter (default 8000)
  --label TEXT         copied into the JSON line

rtp-meter --bridge ...: both ends of bridged calls (rtp-meter --bridge --help)
";

struct Args {
    bind: IpAddr,
    port: u16,
    warmup: Duration,
    seconds: Duration,
    start_file: Option<PathBuf>,
    max_wait: Duration,
    pid: Option<u32>,
    clk_tck: u64,
    ptime_us: u64,
    tolerance_us: u64,
    clock_rate: u64,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        warmup: Duration::from_secs(1),
        seconds: Duration::from_secs(15),
        start_file: None,
        max_wait: Duration::from_secs(300),
        pid: None,
        clk_tck: 100,
        ptime_us: 20_000,
        tolerance_us: 2_000,
        clock_rate: 8000,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: {what} expected, got {value:?}");
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|_| bad("a port"))?,
            "--bind" => args.bind = value.parse().map_err(|_| bad("an IP address"))?,
            "--warmup" => args.warmup = secs(&value).ok_or_else(|| bad("seconds"))?,
            "--seconds" => args.seconds = secs(&value).ok_or_else(|| bad("seconds"))?,
            "--max-wait" => args.max_wait = secs(&value).ok_or_else(|| bad("seconds"))?,
            "--start-file" => args.start_file = Some(PathBuf::from(value)),
            "--pid" => args.pid = Some(value.parse().map_err(|_| bad("a process id"))?),
            "--clk-tck" => args.clk_tck = value.parse().map_err(|_| bad("a number"))?,
            "--ptime-ms" => args.ptime_us = ms_to_us(&value).ok_or_else(|| bad("ms"))?,
            "--tolerance-ms" => args.tolerance_us = ms_to_us(&value).ok_or_else(|| bad("ms"))?,
            "--clock-rate" => args.clock_rate = value.parse().map_err(|_| bad("Hz"))?,
            "--label" => args.label = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if args.port == 0 {
        return Err("--port is required".into());
    }
    if args.seconds.is_zero() || args.clk_tck == 0 || args.clock_rate == 0 || args.ptime_us == 0 {
        return Err("--seconds, --clk-tck, --clock-rate and --ptime-ms must be > 0".into());
    }
    Ok(args)
}

fn secs(s: &str) -> Option<Duration> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
}

fn ms_to_us(s: &str) -> Option<u64> {
    let v: f64 = s.parse().ok()?;
    // Range-checked above, so the cast neither wraps nor saturates.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (v.is_finite() && (0.0..1e6).contains(&v)).then(|| (v * 1000.0).round() as u64)
}

/// SSRCs are random already; a multiply spreads them over the hash's high bits, which
/// the map uses for its control bytes. Much cheaper than the default SipHash.
#[derive(Default)]
struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What we keep per SSRC.
struct Stream {
    last_arrival: Instant,
    last_seq: u16,
    /// RFC 3550 §6.4.1: relative transit time of the last in-order packet, and the
    /// interarrival jitter estimate scaled by 16 (the RFC's integer form), in RTP units.
    last_transit: u32,
    jitter16: u64,
    /// Packets that arrived inside the window.
    in_window: u64,
}

#[derive(Default)]
struct Totals {
    packets: u64,
    intervals: u64,
    outside: u64,
    max_interval_us: u64,
    lost: u64,
    reordered: u64,
    duplicates: u64,
    seq_jumps: u64,
    malformed: u64,
    rtcp: u64,
}

struct Meter {
    streams: HashMap<u32, Stream, BuildHasherDefault<SsrcHasher>>,
    hist: Vec<u64>,
    totals: Totals,
    /// Streams that sent at least one packet inside the window.
    streams_in_window: u64,
    on_time_low_us: u64,
    on_time_high_us: u64,
    clock_rate: u64,
    epoch: Instant,
}

impl Meter {
    fn new(args: &Args, epoch: Instant) -> Meter {
        let mut streams = HashMap::with_hasher(BuildHasherDefault::default());
        streams.reserve(8192);
        Meter {
            streams,
            hist: vec![0; BUCKETS + 1],
            totals: Totals::default(),
            streams_in_window: 0,
            on_time_low_us: args.ptime_us.saturating_sub(args.tolerance_us),
            on_time_high_us: args.ptime_us + args.tolerance_us,
            clock_rate: args.clock_rate,
            epoch,
        }
    }

    /// The arrival time in RTP clock units (wrapping, as RTP timestamps do).
    fn arrival_units(&self, now: Instant) -> u32 {
        let us = u64::try_from(now.duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX);
        // Truncation is the point: RTP time wraps at 2^32.
        #[allow(clippy::cast_possible_truncation)]
        let units = (u128::from(us) * u128::from(self.clock_rate) / 1_000_000) as u32;
        units
    }

    /// One datagram. `measuring`: inside the window (else only the state is kept, so the
    /// first packet in the window has a predecessor to measure from).
    fn packet(&mut self, pkt: &[u8], now: Instant, measuring: bool) {
        let Some(h) = pkt.first_chunk::<12>() else {
            self.totals.malformed += u64::from(measuring);
            return;
        };
        if h[0] >> 6 != 2 {
            self.totals.malformed += u64::from(measuring);
            return;
        }
        // RTCP (SR, RR, SDES, BYE, APP) shares the version bits; its type byte is 200-204.
        if (200..=204).contains(&h[1]) {
            self.totals.rtcp += u64::from(measuring);
            return;
        }
        let seq = u16::from_be_bytes([h[2], h[3]]);
        let ts = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let ssrc = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        let transit = self.arrival_units(now).wrapping_sub(ts);

        let Some(st) = self.streams.get_mut(&ssrc) else {
            self.streams.insert(
                ssrc,
                Stream {
                    last_arrival: now,
                    last_seq: seq,
                    last_transit: transit,
                    jitter16: 0,
                    in_window: u64::from(measuring),
                },
            );
            if measuring {
                self.totals.packets += 1;
                self.streams_in_window += 1;
            }
            return;
        };

        if measuring {
            if st.in_window == 0 {
                self.streams_in_window += 1;
            }
            st.in_window += 1;
            let t = &mut self.totals;
            t.packets += 1;
            let iv =
                u64::try_from(now.duration_since(st.last_arrival).as_micros()).unwrap_or(u64::MAX);
            let bucket = usize::try_from(iv / BUCKET_US).map_or(BUCKETS, |b| b.min(BUCKETS));
            if let Some(slot) = self.hist.get_mut(bucket) {
                *slot += 1;
            }
            t.intervals += 1;
            t.max_interval_us = t.max_interval_us.max(iv);
            if iv < self.on_time_low_us || iv > self.on_time_high_us {
                t.outside += 1;
            }
        }
        st.last_arrival = now;

        let step = seq.wrapping_sub(st.last_seq);
        let advanced = match step {
            0 => {
                self.totals.duplicates += u64::from(measuring);
                false
            }
            1 => true,
            2..=MAX_GAP => {
                if measuring {
                    self.totals.lost += u64::from(step - 1);
                }
                true
            }
            // "Negative" step: a late packet that was already counted as lost.
            0x8000.. => {
                if measuring {
                    self.totals.reordered += 1;
                    self.totals.lost = self.totals.lost.saturating_sub(1);
                }
                false
            }
            _ => {
                self.totals.seq_jumps += u64::from(measuring);
                st.last_seq = seq;
                st.last_transit = transit;
                false
            }
        };
        if advanced {
            st.last_seq = seq;
            // Transit differences are small and signed; reinterpreting the wrapped
            // difference as i32 gives them back.
            #[allow(clippy::cast_possible_wrap)]
            let d = u64::from((transit.wrapping_sub(st.last_transit) as i32).unsigned_abs());
            st.last_transit = transit;
            st.jitter16 = (st.jitter16 + d).saturating_sub((st.jitter16 + 8) >> 4);
        }
    }

    /// The interval at quantile `q` (0..=1) in µs: the middle of its bucket, at most the
    /// largest interval seen.
    fn quantile_us(&self, q: f64) -> u64 {
        let total = self.totals.intervals;
        if total == 0 {
            return 0;
        }
        // Rank of the wanted sample, 1-based; exact for the counts we see (< 2^53).
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if i >= BUCKETS {
                    return self.totals.max_interval_us;
                }
                let mid = (i as u64) * BUCKET_US + BUCKET_US / 2;
                return mid.min(self.totals.max_interval_us);
            }
        }
        self.totals.max_interval_us
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields follow the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11); // state is field 3; utime is 14
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The kernel's drop counter of our socket (receive buffer full), from /proc/net/udp.
fn socket_drops(local: SocketAddr) -> Option<u64> {
    let file = if local.is_ipv4() {
        "/proc/net/udp"
    } else {
        "/proc/net/udp6"
    };
    let table = std::fs::read_to_string(file).ok()?;
    let port = format!(":{:04X}", local.port());
    let mut drops = None;
    for line in table.lines().skip(1) {
        let mut f = line.split_whitespace();
        let Some(addr) = f.nth(1) else { continue };
        if addr.ends_with(&port) {
            let d: u64 = line.split_whitespace().last()?.parse().ok()?;
            drops = Some(drops.unwrap_or(0) + d);
        }
    }
    drops
}

/// System-wide UDP counters from /proc/net/snmp: (RcvbufErrors, SndbufErrors). Loopback
/// traffic lost anywhere but in our socket (the daemon's sends, other receivers) shows here.
fn udp_errors() -> Option<(u64, u64)> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().collect();
    let get = |name: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some((get("RcvbufErrors")?, get("SndbufErrors")?))
}

/// Packets the kernel dropped because a CPU's input backlog was full (loopback traffic
/// goes through it): the second column of /proc/net/softnet_stat, summed over CPUs.
fn backlog_drops() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/net/softnet_stat").ok()?;
    let mut sum = 0;
    for line in stat.lines() {
        sum += u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()?;
    }
    Some(sum)
}

/// Busy clock ticks of the whole machine (all CPUs), from the first line of /proc/stat.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    Some(f.iter().sum::<u64>() - f.get(3)? - f.get(4)?)
}

struct Snapshot {
    at: Instant,
    machine_ticks: Option<u64>,
    pid_ticks: Option<u64>,
    self_ticks: Option<u64>,
    drops: Option<u64>,
    udp_errors: Option<(u64, u64)>,
    backlog_drops: Option<u64>,
}

fn snapshot(pid: Option<&str>, local: SocketAddr) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        machine_ticks: machine_busy_ticks(),
        pid_ticks: pid.and_then(cpu_ticks),
        self_ticks: cpu_ticks("self"),
        drops: socket_drops(local),
        udp_errors: udp_errors(),
        backlog_drops: backlog_drops(),
    }
}

fn cpu_percent(a: Option<u64>, b: Option<u64>, clk_tck: u64, secs: f64) -> Option<f64> {
    let ticks = b?.checked_sub(a?)?;
    #[allow(clippy::cast_precision_loss)]
    let pct = ticks as f64 / clk_tck as f64 / secs * 100.0;
    Some(pct)
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".into(), |v| format!("{v:.2}"))
}

#[allow(clippy::cast_precision_loss)]
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// `rtp-meter --bridge`: both ends of the media of many bridged calls through a relay.
///
/// For tests/bench/bridged.sh. Every caller's SDP points at one UDP port of ours (the
/// caller socket), every operator phone's at another (the operator socket). The relay
/// (Hotline) plays hold music to a new caller: the first packet from an unknown source
/// port on the caller socket is a new call, and from then on we send that call's caller
/// stream there. Once bridged, the relay passes it to the operator socket, from the
/// operator leg's port: that is where the call's operator stream goes. So each call has
/// four RTP streams: caller→relay, relay→operator, operator→relay, relay→caller.
///
/// Our packets carry SSRC = tag | call index (a tag per direction) and, in the payload,
/// a magic word and the send time (`Instant` taken right before `send_to`, as ns since our
/// start). The receivers take `Instant::now()` right after `recv_from` and record, for the
/// measuring window: the per-stream inter-arrival interval, the one-way time through the
/// relay (send → receive, so it includes our own scheduling delays on both ends), loss by
/// sequence number, and packets of one call that came out of another call's leg. The
/// sender records how late it sent each packet against its schedule (one 20 ms cycle in
/// 250 µs slots; the streams are spread over the slots).
///
/// With `--legs-file` nothing is learnt: a relay set up by its control protocol (rtpengine's
/// ng offer/answer, tests/bench/bridged/rtpengine_calls.py) has told us both of each
/// call's relay addresses, the file lists them, and both streams of every call start as soon
/// as the file is read. The rest (packets, slots, measurements) is the same.
mod bridge {
    use super::{
        ErrorKind, ExitCode, Instant, IpAddr, Ipv4Addr, PathBuf, SocketAddr, UdpSocket,
        cpu_percent, json_opt, json_str, ms, ms_to_us, rss_kib, secs, snapshot, socket_drops,
    };
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    pub const USAGE: &str = "\
rtp-meter --bridge: plays and measures both ends of bridged calls (see the source)

  --caller-port PORT     UDP port the callers' SDP points at (required)
  --operator-port PORT   UDP port the operator phones' SDP points at (required)
  --bind IP              address to bind (default 127.0.0.1)
  --start-file PATH      warm-up and window start when PATH exists (required); repeated:
                         one window after the other, each with its own file and its
                         own result line (with \"window\": 1, 2, ...)
  --warmup SECS          seconds after the start before measuring (default 1)
  --seconds SECS         length of each measuring window (default 15)
  --stop-file PATH       after the last window, go on sending until PATH exists (without
                         it: exit when the last window ends)
  --status-file PATH     rewritten twice a second: calls learnt, packets relayed
  --max-wait SECS        give up when a file has not appeared after this long (default 600)
  --pid PID              report this process's CPU (% of one core) over the window and its
                         VmRSS at the end of the window
  --clk-tck N            kernel clock ticks per second for /proc CPU times (default 100)
  --ptime-ms MS          packet interval (default 20)
  --payload-bytes N      RTP payload size (default 160, PCMA at 20 ms)
  --legs-file PATH       don't learn the relay's legs: wait for PATH (up to --max-wait),
                         one line per call \"INDEX CALLER_LEG OPERATOR_LEG\" (IP:PORT of
                         the relay's port the caller sends to, and of the one the operator
                         sends to), and play both streams of every call at once. \"calls
                         both ways\" then counts calls whose two streams both came back
  --label TEXT           copied into the JSON line
";

    /// SSRC tags: the caller's stream of call i is `CALLER_TAG | i`.
    const CALLER_TAG: u32 = 0x0C00_0000;
    const OPERATOR_TAG: u32 = 0x0E00_0000;
    const TAG_MASK: u32 = 0xFF00_0000;
    const INDEX_MASK: u32 = 0x00FF_FFFF;
    const MAGIC: [u8; 4] = *b"HLbr";
    /// RTP header, magic, send time.
    const MIN_PAYLOAD: usize = 12;
    const NONE: u32 = u32::MAX;
    const SLOT_US: u64 = 250;
    const MAX_GAP: u16 = 3000;

    const NOT_YET: u8 = 0;
    const MEASURING: u8 = 1;
    const OVER: u8 = 2;

    struct Args {
        bind: IpAddr,
        caller_port: u16,
        operator_port: u16,
        start_files: Vec<PathBuf>,
        warmup: Duration,
        seconds: Duration,
        stop_file: Option<PathBuf>,
        status_file: Option<PathBuf>,
        max_wait: Duration,
        pid: Option<u32>,
        clk_tck: u64,
        ptime_us: u64,
        payload: usize,
        legs_file: Option<PathBuf>,
        label: String,
    }

    fn parse_args(list: &[String]) -> Result<Args, String> {
        let mut args = Args {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            caller_port: 0,
            operator_port: 0,
            start_files: Vec::new(),
            warmup: Duration::from_secs(1),
            seconds: Duration::from_secs(15),
            stop_file: None,
            status_file: None,
            max_wait: Duration::from_secs(600),
            pid: None,
            clk_tck: 100,
            ptime_us: 20_000,
            payload: 160,
            legs_file: None,
            label: String::new(),
        };
        let mut it = list.iter();
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |what: &str| format!("{flag}: {what} expected, got {value:?}");
            match flag.as_str() {
                "--caller-port" => args.caller_port = value.parse().map_err(|_| bad("a port"))?,
                "--operator-port" => {
                    args.operator_port = value.parse().map_err(|_| bad("a port"))?;
                }
                "--bind" => args.bind = value.parse().map_err(|_| bad("an IP address"))?,
                "--start-file" => args.start_files.push(PathBuf::from(value)),
                "--warmup" => args.warmup = secs(value).ok_or_else(|| bad("seconds"))?,
                "--seconds" => args.seconds = secs(value).ok_or_else(|| bad("seconds"))?,
                "--stop-file" => args.stop_file = Some(PathBuf::from(value)),
                "--status-file" => args.status_file = Some(PathBuf::from(value)),
                "--max-wait" => args.max_wait = secs(value).ok_or_else(|| bad("seconds"))?,
                "--pid" => args.pid = Some(value.parse().map_err(|_| bad("a process id"))?),
                "--clk-tck" => args.clk_tck = value.parse().map_err(|_| bad("a number"))?,
                "--ptime-ms" => args.ptime_us = ms_to_us(value).ok_or_else(|| bad("ms"))?,
                "--payload-bytes" => args.payload = value.parse().map_err(|_| bad("a number"))?,
                "--legs-file" => args.legs_file = Some(PathBuf::from(value)),
                "--label" => args.label.clone_from(value),
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if args.caller_port == 0 || args.operator_port == 0 {
            return Err("--caller-port and --operator-port are required".into());
        }
        if args.start_files.is_empty() {
            return Err("--start-file is required".into());
        }
        if args.seconds.is_zero() || args.clk_tck == 0 || args.ptime_us < SLOT_US {
            return Err("--seconds and --clk-tck must be > 0, --ptime-ms at least 0.25".into());
        }
        if !(MIN_PAYLOAD..=1400).contains(&args.payload) {
            return Err(format!("--payload-bytes: {MIN_PAYLOAD}..=1400"));
        }
        Ok(args)
    }

    /// A histogram of µs values in fixed buckets, the last one open-ended.
    #[derive(Clone)]
    struct Hist {
        bucket_us: u64,
        counts: Vec<u64>,
        n: u64,
        max_us: u64,
    }

    impl Hist {
        fn new(bucket_us: u64, buckets: usize) -> Hist {
            Hist {
                bucket_us,
                counts: vec![0; buckets + 1],
                n: 0,
                max_us: 0,
            }
        }

        fn add(&mut self, us: u64) {
            let last = self.counts.len() - 1;
            let b = usize::try_from(us / self.bucket_us).map_or(last, |b| b.min(last));
            if let Some(slot) = self.counts.get_mut(b) {
                *slot += 1;
            }
            self.n += 1;
            self.max_us = self.max_us.max(us);
        }

        fn merge(&mut self, o: &Hist) {
            for (a, b) in self.counts.iter_mut().zip(&o.counts) {
                *a += b;
            }
            self.n += o.n;
            self.max_us = self.max_us.max(o.max_us);
        }

        /// The value at quantile `q`: the middle of its bucket, at most the largest seen.
        fn quantile_us(&self, q: f64) -> u64 {
            if self.n == 0 {
                return 0;
            }
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
            let last = self.counts.len() - 1;
            let mut seen = 0;
            for (i, c) in self.counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    if i >= last {
                        return self.max_us;
                    }
                    let mid = i as u64 * self.bucket_us + self.bucket_us / 2;
                    return mid.min(self.max_us);
                }
            }
            self.max_us
        }

        /// `"name_p50_ms":…,"name_p99_ms":…,"name_p999_ms":…,"name_max_ms":…`
        fn json(&self, name: &str) -> String {
            format!(
                "\"{name}_p50_ms\":{:.3},\"{name}_p99_ms\":{:.3},\"{name}_p999_ms\":{:.3},\"{name}_max_ms\":{:.3}",
                ms(self.quantile_us(0.5)),
                ms(self.quantile_us(0.99)),
                ms(self.quantile_us(0.999)),
                ms(self.max_us)
            )
        }
    }

    /// What the threads share: the phase (and how many windows are over), the stop flag,
    /// and counters for the status file.
    struct Shared {
        epoch: Instant,
        phase: AtomicU8,
        windows_over: AtomicU64,
        stop: AtomicBool,
        callers: AtomicU64,
        operators: AtomicU64,
        to_operators: AtomicU64,
        to_callers: AtomicU64,
        /// With --legs-file: per call, bit 1 once its caller stream came out on the
        /// operator side, bit 2 once its operator stream came out on the caller side.
        seen: Mutex<Vec<u8>>,
    }

    impl Shared {
        fn measuring(&self) -> bool {
            self.phase.load(Ordering::Relaxed) == MEASURING
        }
        /// `Some(n)` once window n (1-based) is over and its figures are wanted.
        fn over(&self) -> Option<u64> {
            (self.phase.load(Ordering::Acquire) == OVER)
                .then(|| self.windows_over.load(Ordering::Acquire))
        }
        fn nanos(&self, t: Instant) -> u64 {
            u64::try_from(t.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
        }
        /// A told call's stream came back for the first time: `operators` counts the calls
        /// with both streams back.
        fn first_back(&self, call: usize, operator_side: bool) {
            let bit = if operator_side { 1 } else { 2 };
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            if let Some(s) = seen.get_mut(call) {
                *s |= bit;
                if *s == 3 {
                    self.operators.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Where a call's stream goes, learnt by a receiver, for the sender.
    struct Learnt {
        call: u32,
        operator_side: bool,
        to: SocketAddr,
    }

    #[derive(Clone, Copy, Default)]
    struct RxStream {
        last_arrival: Option<Instant>,
        last_seq: u16,
        in_window: u64,
    }

    #[derive(Clone, Copy, Default)]
    struct RxTotals {
        packets: u64,
        lost: u64,
        duplicates: u64,
        reordered: u64,
        seq_jumps: u64,
        /// Our packets of call i that came from another call's leg (cross-talk).
        misrouted: u64,
        /// Packets that are not ours (hold music, prompts) inside the window.
        foreign: u64,
        malformed: u64,
        streams_in_window: u64,
    }

    /// One socket's receiver: the caller socket gets the operators' streams, the operator
    /// socket the callers'.
    struct Rx {
        operator_side: bool,
        /// The legs came from --legs-file: nothing is learnt.
        told: bool,
        /// Source port (a relay leg) → call index.
        port_map: Vec<u32>,
        next_call: u32,
        streams: Vec<RxStream>,
        intervals: Hist,
        transit: Hist,
        t: RxTotals,
    }

    #[derive(Clone)]
    struct RxReport {
        intervals: Hist,
        transit: Hist,
        t: RxTotals,
        short: u64,
    }

    impl Rx {
        fn new(operator_side: bool) -> Rx {
            Rx {
                operator_side,
                told: false,
                port_map: vec![NONE; 65536],
                next_call: 0,
                streams: Vec::with_capacity(8192),
                intervals: Hist::new(10, 100_000),
                transit: Hist::new(1, 200_000),
                t: RxTotals::default(),
            }
        }

        /// One datagram from `from`; `Some` when it taught us a destination.
        fn packet(
            &mut self,
            pkt: &[u8],
            from: SocketAddr,
            now: Instant,
            sh: &Shared,
        ) -> Option<Learnt> {
            let measuring = sh.measuring();
            let Some(h) = pkt.first_chunk::<24>() else {
                self.t.malformed += u64::from(measuring);
                return None;
            };
            if h[0] >> 6 != 2 {
                self.t.malformed += u64::from(measuring);
                return None;
            }
            let seq = u16::from_be_bytes([h[2], h[3]]);
            let ssrc = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            let ours = h[12..16] == MAGIC;
            let sent_ns =
                u64::from_be_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]);
            let port = usize::from(from.port());
            let leg = self.port_map.get(port).copied().unwrap_or(NONE);
            let wanted_tag = if self.operator_side {
                CALLER_TAG
            } else {
                OPERATOR_TAG
            };
            if !ours || ssrc & TAG_MASK != wanted_tag {
                // The caller side: anything from a new relay port is a new call (the relay
                // plays hold music to it first). The rest is not ours.
                if !self.told
                    && !self.operator_side
                    && leg == NONE
                    && !ours
                    && self.next_call <= INDEX_MASK
                {
                    let call = self.next_call;
                    self.next_call += 1;
                    self.port_map[port] = call;
                    sh.callers.fetch_add(1, Ordering::Relaxed);
                    return Some(Learnt {
                        call,
                        operator_side: false,
                        to: from,
                    });
                }
                self.t.foreign += u64::from(measuring);
                return None;
            }
            let call = ssrc & INDEX_MASK;
            let mut learnt = None;
            if leg == NONE {
                if self.operator_side && !self.told {
                    // The operator leg of this call: its operator stream goes there.
                    self.port_map[port] = call;
                    sh.operators.fetch_add(1, Ordering::Relaxed);
                    learnt = Some(Learnt {
                        call,
                        operator_side: true,
                        to: from,
                    });
                } else {
                    self.t.misrouted += u64::from(measuring);
                }
            } else if leg != call {
                self.t.misrouted += u64::from(measuring);
            }
            let counter = if self.operator_side {
                &sh.to_operators
            } else {
                &sh.to_callers
            };
            counter.fetch_add(1, Ordering::Relaxed);
            self.record(call as usize, seq, sent_ns, now, measuring, sh);
            learnt
        }

        fn record(
            &mut self,
            call: usize,
            seq: u16,
            sent_ns: u64,
            now: Instant,
            measuring: bool,
            sh: &Shared,
        ) {
            if self.streams.len() <= call {
                self.streams.resize(call + 1, RxStream::default());
            }
            let st = &mut self.streams[call];
            let Some(last) = st.last_arrival else {
                if self.told {
                    sh.first_back(call, self.operator_side);
                }
                *st = RxStream {
                    last_arrival: Some(now),
                    last_seq: seq,
                    in_window: u64::from(measuring),
                };
                if measuring {
                    self.t.packets += 1;
                    self.t.streams_in_window += 1;
                    self.transit
                        .add(sh.nanos(now).saturating_sub(sent_ns) / 1000);
                }
                return;
            };
            if measuring {
                if st.in_window == 0 {
                    self.t.streams_in_window += 1;
                }
                st.in_window += 1;
                self.t.packets += 1;
                self.transit
                    .add(sh.nanos(now).saturating_sub(sent_ns) / 1000);
                self.intervals
                    .add(u64::try_from(now.duration_since(last).as_micros()).unwrap_or(u64::MAX));
            }
            st.last_arrival = Some(now);
            let step = seq.wrapping_sub(st.last_seq);
            match step {
                0 => self.t.duplicates += u64::from(measuring),
                1 => st.last_seq = seq,
                2..=MAX_GAP => {
                    self.t.lost += u64::from(measuring) * u64::from(step - 1);
                    st.last_seq = seq;
                }
                0x8000.. => {
                    if measuring {
                        self.t.reordered += 1;
                        self.t.lost = self.t.lost.saturating_sub(1);
                    }
                }
                _ => {
                    self.t.seq_jumps += u64::from(measuring);
                    st.last_seq = seq;
                }
            }
        }

        /// The window's figures; the next window starts from zero (the streams' last
        /// arrival and sequence number are kept).
        fn take_report(&mut self, full: u64) -> RxReport {
            let report = self.report(full);
            self.intervals = Hist::new(self.intervals.bucket_us, self.intervals.counts.len() - 1);
            self.transit = Hist::new(self.transit.bucket_us, self.transit.counts.len() - 1);
            self.t = RxTotals::default();
            for st in &mut self.streams {
                st.in_window = 0;
            }
            report
        }

        fn report(&self, full: u64) -> RxReport {
            RxReport {
                intervals: self.intervals.clone(),
                transit: self.transit.clone(),
                t: self.t,
                short: self
                    .streams
                    .iter()
                    .filter(|s| s.in_window > 0 && s.in_window < full)
                    .count() as u64,
            }
        }
    }

    fn run_rx(
        sock: &UdpSocket,
        mut rx: Rx,
        sh: &Shared,
        learn: &mpsc::Sender<Learnt>,
        done: &mpsc::Sender<RxReport>,
        full: u64,
    ) {
        let mut buf = [0u8; 2048];
        let mut reported = 0;
        while !sh.stop.load(Ordering::Relaxed) {
            let received = sock.recv_from(&mut buf);
            let now = Instant::now();
            if let Some(n) = sh.over().filter(|n| *n > reported) {
                reported = n;
                let _ = done.send(rx.take_report(full));
            }
            match received {
                Ok((n, from)) => {
                    if let Some(l) = rx.packet(buf.get(..n).unwrap_or(&[]), from, now, sh) {
                        let _ = learn.send(l);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => eprintln!("rtp-meter: recv: {e}"),
            }
        }
    }

    struct TxStream {
        to: SocketAddr,
        operator_side: bool,
        ssrc: u32,
        seq: u16,
        ts: u32,
    }

    #[derive(Clone)]
    struct TxReport {
        lateness: Hist,
        sent: u64,
        errors: u64,
        streams: u64,
    }

    /// Sends every stream once per ptime, in its slot; new streams come from the receivers.
    fn run_tx(
        socks: (&UdpSocket, &UdpSocket),
        sh: &Shared,
        learnt: &mpsc::Receiver<Learnt>,
        done: &mpsc::Sender<TxReport>,
        ptime_us: u64,
        payload: usize,
    ) {
        let slots = usize::try_from(ptime_us / SLOT_US).unwrap_or(1).max(1);
        let mut wheel: Vec<Vec<TxStream>> = (0..slots).map(|_| Vec::new()).collect();
        let samples = u32::try_from(ptime_us * 8 / 1000).unwrap_or(160);
        let mut pkt = vec![0xD5u8; 12 + payload];
        pkt[0] = 0x80;
        pkt[1] = 8; // PCMA
        pkt[12..16].copy_from_slice(&MAGIC);
        let mut report = TxReport {
            lateness: Hist::new(10, 100_000),
            sent: 0,
            errors: 0,
            streams: 0,
        };
        let start = Instant::now();
        let mut slot_no: u64 = 0;
        let mut reported = 0;
        while !sh.stop.load(Ordering::Relaxed) {
            if let Some(n) = sh.over().filter(|n| *n > reported) {
                reported = n;
                let _ = done.send(report.clone());
                report.lateness = Hist::new(10, 100_000);
                report.sent = 0;
                report.errors = 0;
            }
            while let Ok(l) = learnt.try_recv() {
                // Consecutive calls land 37 slots apart (coprime with the slot count:
                // evenly spread); a call's two directions half a cycle apart.
                let base = (l.call as usize).wrapping_mul(37) % slots;
                let slot = if l.operator_side {
                    (base + slots / 2) % slots
                } else {
                    base
                };
                let tag = if l.operator_side {
                    OPERATOR_TAG
                } else {
                    CALLER_TAG
                };
                #[allow(clippy::cast_possible_truncation)]
                let seq = (l.call as u16).wrapping_mul(7919);
                wheel[slot].push(TxStream {
                    to: l.to,
                    operator_side: l.operator_side,
                    ssrc: tag | l.call,
                    seq,
                    ts: l.call.wrapping_mul(1000),
                });
                report.streams += 1;
            }
            let due = start + Duration::from_micros(slot_no * SLOT_US);
            let now = Instant::now();
            if due > now {
                thread::sleep((due - now).min(Duration::from_millis(5)));
                continue;
            }
            let measuring = sh.measuring();
            #[allow(clippy::cast_possible_truncation)]
            let slot = (slot_no % slots as u64) as usize;
            for s in &mut wheel[slot] {
                pkt[2..4].copy_from_slice(&s.seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&s.ts.to_be_bytes());
                pkt[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
                let at = Instant::now();
                pkt[16..24].copy_from_slice(&sh.nanos(at).to_be_bytes());
                let sock = if s.operator_side { socks.1 } else { socks.0 };
                let ok = sock.send_to(&pkt, s.to).is_ok();
                if measuring {
                    report
                        .lateness
                        .add(u64::try_from(at.duration_since(due).as_micros()).unwrap_or(u64::MAX));
                    report.sent += 1;
                    report.errors += u64::from(!ok);
                }
                s.seq = s.seq.wrapping_add(1);
                s.ts = s.ts.wrapping_add(samples);
            }
            slot_no += 1;
        }
    }

    fn write_status(path: &PathBuf, sh: &Shared) {
        let text = format!(
            "callers {} operators {} to_operators {} to_callers {}\n",
            sh.callers.load(Ordering::Relaxed),
            sh.operators.load(Ordering::Relaxed),
            sh.to_operators.load(Ordering::Relaxed),
            sh.to_callers.load(Ordering::Relaxed)
        );
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// `--legs-file`: waits for it (the control script renames it into place when it is
    /// complete), then `(call, caller leg, operator leg)` per line.
    fn read_legs(
        path: &PathBuf,
        max_wait: Duration,
    ) -> Result<Vec<(u32, SocketAddr, SocketAddr)>, String> {
        let since = Instant::now();
        while !path.exists() {
            if since.elapsed() > max_wait {
                return Err(format!(
                    "{} did not appear within --max-wait",
                    path.display()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut legs = Vec::new();
        for (no, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() || f[0].starts_with('#') {
                continue;
            }
            let bad = || {
                format!(
                    "{}:{}: \"INDEX IP:PORT IP:PORT\" expected",
                    path.display(),
                    no + 1
                )
            };
            let [call, c, o] = f.as_slice() else {
                return Err(bad());
            };
            let call: u32 = call.parse().map_err(|_| bad())?;
            if call > INDEX_MASK {
                return Err(bad());
            }
            legs.push((
                call,
                c.parse().map_err(|_| bad())?,
                o.parse().map_err(|_| bad())?,
            ));
        }
        Ok(legs)
    }

    fn bind(ip: IpAddr, port: u16) -> Result<UdpSocket, String> {
        let s = UdpSocket::bind(SocketAddr::new(ip, port))
            .map_err(|e| format!("binding {ip}:{port}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        Ok(s)
    }

    #[allow(clippy::too_many_lines)]
    pub fn main(list: &[String]) -> ExitCode {
        let args = match parse_args(list) {
            Ok(a) => a,
            Err(e) => {
                if e.is_empty() {
                    print!("{USAGE}");
                    return ExitCode::SUCCESS;
                }
                eprintln!("rtp-meter --bridge: {e}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        let (c_sock, o_sock) = match (
            bind(args.bind, args.caller_port),
            bind(args.bind, args.operator_port),
        ) {
            (Ok(c), Ok(o)) => (c, o),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("rtp-meter --bridge: {e}");
                return ExitCode::FAILURE;
            }
        };
        let c_local = c_sock
            .local_addr()
            .unwrap_or(SocketAddr::new(args.bind, args.caller_port));
        let o_local = o_sock
            .local_addr()
            .unwrap_or(SocketAddr::new(args.bind, args.operator_port));
        eprintln!("rtp-meter --bridge: listening on {c_local} (callers) and {o_local} (operators)");

        let sh = Shared {
            epoch: Instant::now(),
            phase: AtomicU8::new(NOT_YET),
            windows_over: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            callers: AtomicU64::new(0),
            operators: AtomicU64::new(0),
            to_operators: AtomicU64::new(0),
            to_callers: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
        };
        // The relay's legs, when we are told them: both receivers know every leg's port
        // and the sender gets both streams of every call now.
        let mut rxs = [Rx::new(false), Rx::new(true)];
        let mut told = Vec::new();
        if let Some(path) = &args.legs_file {
            let legs = match read_legs(path, args.max_wait) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("rtp-meter --bridge: {e}");
                    return ExitCode::FAILURE;
                }
            };
            for rx in &mut rxs {
                rx.told = true;
            }
            for &(call, caller_leg, operator_leg) in &legs {
                rxs[0].port_map[usize::from(caller_leg.port())] = call;
                rxs[1].port_map[usize::from(operator_leg.port())] = call;
                for (operator_side, to) in [(false, caller_leg), (true, operator_leg)] {
                    told.push(Learnt {
                        call,
                        operator_side,
                        to,
                    });
                }
            }
            let calls = legs.iter().map(|l| l.0 as usize + 1).max().unwrap_or(0);
            if let Ok(mut seen) = sh.seen.lock() {
                *seen = vec![0; calls];
            }
            sh.callers.store(legs.len() as u64, Ordering::Relaxed);
            eprintln!(
                "rtp-meter --bridge: {} calls' legs read from {}",
                legs.len(),
                path.display()
            );
        }
        // A stream that delivered under 90 % of a full window's packets is short.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let full = (args.seconds.as_secs_f64() * 1e6 / args.ptime_us as f64 * 0.9) as u64;
        let (learn_tx, learn_rx) = mpsc::channel::<Learnt>();
        let (rx_done_tx, rx_done) = mpsc::channel::<RxReport>();
        let (tx_done_tx, tx_done) = mpsc::channel::<TxReport>();

        let pid = args.pid.map(|p| p.to_string());
        thread::scope(|scope| {
            for l in told.drain(..) {
                let _ = learn_tx.send(l);
            }
            let [c_rx, o_rx] = rxs;
            for (sock, rx) in [(&c_sock, c_rx), (&o_sock, o_rx)] {
                let (sh, learn, done) = (&sh, learn_tx.clone(), rx_done_tx.clone());
                scope.spawn(move || run_rx(sock, rx, sh, &learn, &done, full));
            }
            {
                let (sh, done, socks) = (&sh, tx_done_tx.clone(), (&c_sock, &o_sock));
                let (ptime, payload) = (args.ptime_us, args.payload);
                let learn_rx = learn_rx;
                scope.spawn(move || run_tx(socks, sh, &learn_rx, &done, ptime, payload));
            }
            let finish = |code: ExitCode| {
                sh.stop.store(true, Ordering::Relaxed);
                code
            };

            let status = |next: &mut Instant| {
                let now = Instant::now();
                if now >= *next {
                    *next = now + Duration::from_millis(500);
                    if let Some(p) = &args.status_file {
                        write_status(p, &sh);
                    }
                }
            };
            let mut next_status = Instant::now();
            for (i, start_file) in args.start_files.iter().enumerate() {
                // Wait for the start file, warm up, measure.
                let waited_since = Instant::now();
                while !start_file.exists() {
                    if waited_since.elapsed() > args.max_wait {
                        eprintln!(
                            "rtp-meter --bridge: {} did not appear within --max-wait",
                            start_file.display()
                        );
                        return finish(ExitCode::FAILURE);
                    }
                    status(&mut next_status);
                    thread::sleep(Duration::from_millis(20));
                }
                let warm_until = Instant::now() + args.warmup;
                while Instant::now() < warm_until {
                    status(&mut next_status);
                    thread::sleep(Duration::from_millis(20));
                }
                let start = snapshot(pid.as_deref(), c_local);
                let start_o = socket_drops(o_local);
                sh.phase.store(MEASURING, Ordering::Release);
                while Instant::now() < start.at + args.seconds {
                    status(&mut next_status);
                    thread::sleep(Duration::from_millis(20));
                }
                sh.windows_over.fetch_add(1, Ordering::AcqRel);
                sh.phase.store(OVER, Ordering::Release);
                let end = snapshot(pid.as_deref(), c_local);
                let end_o = socket_drops(o_local);
                let pid_rss = pid.as_deref().and_then(rss_kib);
                let wait = Duration::from_secs(3);
                let (Ok(r1), Ok(r2), Ok(tx)) = (
                    rx_done.recv_timeout(wait),
                    rx_done.recv_timeout(wait),
                    tx_done.recv_timeout(wait),
                ) else {
                    eprintln!("rtp-meter --bridge: a thread did not report");
                    return finish(ExitCode::FAILURE);
                };
                sh.phase.store(NOT_YET, Ordering::Release);
                print_results(
                    &args,
                    i + 1,
                    &sh,
                    (&start, &end),
                    (start_o, end_o),
                    pid_rss,
                    [&r1, &r2],
                    &tx,
                );
            }

            if let Some(stop) = &args.stop_file {
                let since = Instant::now();
                while !stop.exists() && since.elapsed() < args.max_wait {
                    thread::sleep(Duration::from_millis(50));
                    status(&mut next_status);
                }
            }
            finish(ExitCode::SUCCESS)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn print_results(
        args: &Args,
        window: usize,
        sh: &Shared,
        (start, end): (&super::Snapshot, &super::Snapshot),
        (start_o, end_o): (Option<u64>, Option<u64>),
        pid_rss: Option<u64>,
        rx: [&RxReport; 2],
        tx: &TxReport,
    ) {
        let secs = end.at.duration_since(start.at).as_secs_f64();
        let mut intervals = rx[0].intervals.clone();
        intervals.merge(&rx[1].intervals);
        let mut transit = rx[0].transit.clone();
        transit.merge(&rx[1].transit);
        let sum = |f: fn(&RxTotals) -> u64| f(&rx[0].t) + f(&rx[1].t);
        let packets = sum(|t| t.packets);
        let lost = sum(|t| t.lost);
        let expected = packets + lost;
        let drops = |a: Option<u64>, b: Option<u64>| b.zip(a).map(|(b, a)| b.saturating_sub(a));
        let sock_drops = match (drops(start.drops, end.drops), drops(start_o, end_o)) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        let udp = end
            .udp_errors
            .zip(start.udp_errors)
            .map(|(e, s)| (e.0.saturating_sub(s.0), e.1.saturating_sub(s.1)));
        let backlog = drops(start.backlog_drops, end.backlog_drops);
        let opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
        let pid_cpu = cpu_percent(start.pid_ticks, end.pid_ticks, args.clk_tck, secs);
        let self_cpu = cpu_percent(start.self_ticks, end.self_ticks, args.clk_tck, secs);
        let machine_cpu = cpu_percent(start.machine_ticks, end.machine_ticks, args.clk_tck, secs);
        println!(
            "{{\"label\":{},\"window\":{window},\"window_s\":{secs:.3},\"calls\":{},\"calls_both_ways\":{},\
             \"tx_streams\":{},\"streams\":{},\"streams_short\":{},\"sent\":{},\"send_errors\":{},\
             \"packets\":{packets},\"lost\":{lost},\"expected\":{expected},\"duplicates\":{},\
             \"reordered\":{},\"seq_jumps\":{},\"misrouted\":{},\"foreign\":{},\"malformed\":{},\
             {},{},{},\"to_operators_packets\":{},\"to_callers_packets\":{},\
             \"meter_socket_drops\":{},\"sys_udp_rcvbuf_errors\":{},\"sys_udp_sndbuf_errors\":{},\
             \"sys_backlog_drops\":{},\"pid_cpu_pct\":{},\"pid_rss_kib\":{},\"meter_cpu_pct\":{},\
             \"machine_cpu_pct\":{}}}",
            json_str(&args.label),
            sh.callers.load(Ordering::Relaxed),
            sh.operators.load(Ordering::Relaxed),
            tx.streams,
            sum(|t| t.streams_in_window),
            rx[0].short + rx[1].short,
            tx.sent,
            tx.errors,
            sum(|t| t.duplicates),
            sum(|t| t.reordered),
            sum(|t| t.seq_jumps),
            sum(|t| t.misrouted),
            sum(|t| t.foreign),
            sum(|t| t.malformed),
            intervals.json("interval"),
            transit.json("transit"),
            tx.lateness.json("send_late"),
            rx[1].t.packets,
            rx[0].t.packets,
            opt(sock_drops),
            opt(udp.map(|e| e.0)),
            opt(udp.map(|e| e.1)),
            opt(backlog),
            json_opt(pid_cpu),
            opt(pid_rss),
            json_opt(self_cpu),
            json_opt(machine_cpu),
        );
        println!(
            "rtp-meter --bridge{} window {window}: {} calls learnt ({} both ways), {} streams received in {secs:.1} s, \
             {packets} packets; interval p50 {:.2} p99 {:.2} max {:.2} ms; send→receive p50 {:.3} \
             p99 {:.3} max {:.3} ms; lost {lost}/{expected}; misrouted {}; sender late p99 {:.3} \
             max {:.3} ms; pid CPU {}% RSS {} KiB; meter CPU {}%",
            if args.label.is_empty() {
                String::new()
            } else {
                format!(" [{}]", args.label)
            },
            sh.callers.load(Ordering::Relaxed),
            sh.operators.load(Ordering::Relaxed),
            sum(|t| t.streams_in_window),
            ms(intervals.quantile_us(0.5)),
            ms(intervals.quantile_us(0.99)),
            ms(intervals.max_us),
            ms(transit.quantile_us(0.5)),
            ms(transit.quantile_us(0.99)),
            ms(transit.max_us),
            sum(|t| t.misrouted),
            ms(tx.lateness.quantile_us(0.99)),
            ms(tx.lateness.max_us),
            json_opt(pid_cpu),
            opt(pid_rss),
            json_opt(self_cpu),
        );
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn shared(phase: u8) -> Shared {
            Shared {
                epoch: Instant::now(),
                phase: AtomicU8::new(phase),
                windows_over: AtomicU64::new(0),
                stop: AtomicBool::new(false),
                callers: AtomicU64::new(0),
                operators: AtomicU64::new(0),
                to_operators: AtomicU64::new(0),
                to_callers: AtomicU64::new(0),
                seen: Mutex::new(Vec::new()),
            }
        }

        fn ours(ssrc: u32, seq: u16) -> Vec<u8> {
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&0u32.to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&MAGIC);
            p.extend_from_slice(&0u64.to_be_bytes());
            p.extend_from_slice(&[0xD5; 148]);
            p
        }

        fn addr(port: u16) -> SocketAddr {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        }

        #[test]
        fn learns_both_legs_and_measures_the_relayed_streams() {
            let sh = shared(MEASURING);
            let t0 = Instant::now();
            let at = |ms: u64| t0 + Duration::from_millis(ms);
            // Caller side: hold music from a new relay port is a new call; its second
            // packet is only foreign.
            let mut c = Rx::new(false);
            let music = {
                let mut p = ours(0x1234_5678, 1);
                p[12..16].copy_from_slice(b"\xD5\xD5\xD5\xD5");
                p
            };
            let l = c
                .packet(&music, addr(20000), at(0), &sh)
                .expect("a new call");
            assert_eq!((l.call, l.operator_side, l.to), (0, false, addr(20000)));
            assert!(c.packet(&music, addr(20000), at(20), &sh).is_none());
            let l = c
                .packet(&music, addr(20002), at(20), &sh)
                .expect("another call");
            assert_eq!(l.call, 1);
            assert_eq!(c.t.foreign, 1);

            // Operator side: call 0's caller stream from the operator leg's port.
            let mut o = Rx::new(true);
            let l = o
                .packet(&ours(CALLER_TAG, 10), addr(20004), at(40), &sh)
                .expect("operator leg");
            assert_eq!((l.call, l.operator_side, l.to), (0, true, addr(20004)));
            assert!(
                o.packet(&ours(CALLER_TAG, 11), addr(20004), at(60), &sh)
                    .is_none()
            );
            assert!(
                o.packet(&ours(CALLER_TAG, 13), addr(20004), at(100), &sh)
                    .is_none()
            );
            assert_eq!((o.t.packets, o.t.lost, o.t.misrouted), (3, 1, 0));
            assert_eq!(o.intervals.n, 2);
            assert_eq!(o.intervals.max_us, 40_000);

            // Back on the caller side: call 0's operator stream, once from its own leg and
            // once from call 1's leg (cross-talk).
            assert!(
                c.packet(&ours(OPERATOR_TAG, 5), addr(20000), at(60), &sh)
                    .is_none()
            );
            assert!(
                c.packet(&ours(OPERATOR_TAG, 6), addr(20002), at(80), &sh)
                    .is_none()
            );
            assert_eq!(
                (c.t.packets, c.t.misrouted, c.t.streams_in_window),
                (2, 1, 1)
            );
            assert_eq!(sh.callers.load(Ordering::Relaxed), 2);
            assert_eq!(sh.operators.load(Ordering::Relaxed), 1);
        }

        #[test]
        fn told_legs_are_not_learnt_and_count_calls_both_ways() {
            let sh = shared(MEASURING);
            if let Ok(mut seen) = sh.seen.lock() {
                *seen = vec![0; 2];
            }
            let t0 = Instant::now();
            let mut c = Rx::new(false);
            let mut o = Rx::new(true);
            for rx in [&mut c, &mut o] {
                rx.told = true;
            }
            c.port_map[30000] = 0;
            o.port_map[30002] = 0;
            // Something foreign from an unknown port is no new call.
            let mut music = ours(0x1234_5678, 1);
            music[12..16].copy_from_slice(b"\xD5\xD5\xD5\xD5");
            assert!(c.packet(&music, addr(30010), t0, &sh).is_none());
            assert_eq!(c.t.foreign, 1);
            // Call 0's caller stream from its operator leg: no learning.
            assert!(
                o.packet(&ours(CALLER_TAG, 1), addr(30002), t0, &sh)
                    .is_none()
            );
            assert_eq!(sh.operators.load(Ordering::Relaxed), 0, "one way only");
            // Call 1's caller stream from an unknown port: misrouted, not learnt.
            assert!(
                o.packet(&ours(CALLER_TAG | 1, 1), addr(30006), t0, &sh)
                    .is_none()
            );
            assert_eq!(o.t.misrouted, 1);
            assert!(
                c.packet(&ours(OPERATOR_TAG, 1), addr(30000), t0, &sh)
                    .is_none()
            );
            assert_eq!(sh.operators.load(Ordering::Relaxed), 1, "call 0 both ways");
        }

        #[test]
        fn histogram_quantiles() {
            let mut h = Hist::new(10, 100);
            for us in [5, 15, 15, 25, 2000] {
                h.add(us);
            }
            assert_eq!(h.quantile_us(0.5), 15);
            assert_eq!(h.quantile_us(0.8), 25);
            assert_eq!(
                h.quantile_us(1.0),
                2000,
                "overflow bucket: the largest value"
            );
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--bridge") {
        return bridge::main(argv.get(1..).unwrap_or(&[]));
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("rtp-meter: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sock = match UdpSocket::bind(SocketAddr::new(args.bind, args.port)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rtp-meter: binding {}:{}: {e}", args.bind, args.port);
            return ExitCode::FAILURE;
        }
    };
    let local = sock
        .local_addr()
        .unwrap_or(SocketAddr::new(args.bind, args.port));
    // The timeout lets the loop notice the end of the window when no packets come.
    if let Err(e) = sock.set_read_timeout(Some(Duration::from_millis(50))) {
        eprintln!("rtp-meter: set_read_timeout: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("rtp-meter: listening on {local}");

    let pid = args.pid.map(|p| p.to_string());
    let bound_at = Instant::now();
    let mut meter = Meter::new(&args, bound_at);
    let mut buf = [0u8; 2048];

    // Phases: waiting for the start file (drain only), warm-up (keep state), measuring.
    let mut started = args.start_file.is_none();
    let mut next_file_check = bound_at;
    let mut warmup_end = bound_at + args.warmup;
    let mut window: Option<(Snapshot, Instant)> = None;

    let end = loop {
        let received = sock.recv(&mut buf);
        let now = Instant::now();

        if !started {
            if now >= next_file_check {
                next_file_check = now + Duration::from_millis(100);
                if args.start_file.as_ref().is_some_and(|p| p.exists()) {
                    started = true;
                    warmup_end = now + args.warmup;
                } else if now.duration_since(bound_at) > args.max_wait {
                    eprintln!("rtp-meter: the start file did not appear within --max-wait");
                    return ExitCode::FAILURE;
                }
            }
            if !started {
                continue;
            }
        }
        if window.is_none() && now >= warmup_end {
            let s = snapshot(pid.as_deref(), local);
            let until = s.at + args.seconds;
            window = Some((s, until));
        }
        if let Some((_, until)) = &window
            && now >= *until
        {
            break snapshot(pid.as_deref(), local);
        }

        match received {
            Ok(n) => {
                let pkt = buf.get(..n).unwrap_or(&[]);
                meter.packet(pkt, now, window.is_some());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                eprintln!("rtp-meter: recv: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let Some((start, _)) = window else {
        return ExitCode::FAILURE;
    };

    let secs = end.at.duration_since(start.at).as_secs_f64();
    let t = &meter.totals;
    // Expected = received + lost; reorders were taken back from lost.
    let expected = t.packets + t.lost;
    #[allow(clippy::cast_precision_loss)]
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let outside_share = ratio(t.outside, t.intervals);
    let lost_share = ratio(t.lost, expected);
    // A stream is short when it delivered under 90% of the packets a full window holds
    // (calls that started or ended inside the window are short too).
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let full = (secs * 1e6 / args.ptime_us as f64 * 0.9) as u64;
    let short = meter
        .streams
        .values()
        .filter(|s| s.in_window > 0 && s.in_window < full)
        .count();
    let jitters: Vec<u64> = meter
        .streams
        .values()
        .filter(|s| s.in_window > 0)
        .map(|s| s.jitter16)
        .collect();
    #[allow(clippy::cast_precision_loss)]
    // The estimates are kept ×16 (RFC 3550's integer form).
    let units_to_ms = |u: f64| u / 16.0 * 1000.0 / args.clock_rate as f64;
    #[allow(clippy::cast_precision_loss)]
    let jitter_mean_ms = if jitters.is_empty() {
        0.0
    } else {
        units_to_ms(jitters.iter().sum::<u64>() as f64 / jitters.len() as f64)
    };
    #[allow(clippy::cast_precision_loss)]
    let jitter_max_ms = units_to_ms(jitters.iter().copied().max().unwrap_or(0) as f64);
    let drops = end.drops.zip(start.drops).map(|(e, s)| e.saturating_sub(s));
    let udp_errors = end
        .udp_errors
        .zip(start.udp_errors)
        .map(|(e, s)| (e.0.saturating_sub(s.0), e.1.saturating_sub(s.1)));
    let backlog = end
        .backlog_drops
        .zip(start.backlog_drops)
        .map(|(e, s)| e.saturating_sub(s));
    let opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    let pid_cpu = cpu_percent(start.pid_ticks, end.pid_ticks, args.clk_tck, secs);
    let self_cpu = cpu_percent(start.self_ticks, end.self_ticks, args.clk_tck, secs);
    let machine_cpu = cpu_percent(start.machine_ticks, end.machine_ticks, args.clk_tck, secs);
    let pid_rss = pid.as_deref().and_then(rss_kib);
    let (p50, p99, p999) = (
        meter.quantile_us(0.50),
        meter.quantile_us(0.99),
        meter.quantile_us(0.999),
    );

    println!(
        "{{\"label\":{},\"window_s\":{secs:.3},\"streams\":{},\"streams_short\":{short},\
         \"packets\":{},\"intervals\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\
         \"max_ms\":{:.3},\"outside_share\":{outside_share:.6},\"on_time_ms\":[{:.3},{:.3}],\
         \"lost\":{},\"expected\":{expected},\"lost_share\":{lost_share:.6},\"reordered\":{},\
         \"duplicates\":{},\"seq_jumps\":{},\"malformed\":{},\"rtcp\":{},\
         \"jitter_mean_ms\":{jitter_mean_ms:.3},\"jitter_max_ms\":{jitter_max_ms:.3},\
         \"meter_socket_drops\":{},\"sys_udp_rcvbuf_errors\":{},\"sys_udp_sndbuf_errors\":{},\
         \"sys_backlog_drops\":{},\"pid_cpu_pct\":{},\"pid_rss_kib\":{},\"meter_cpu_pct\":{},\
         \"machine_cpu_pct\":{}}}",
        json_str(&args.label),
        meter.streams_in_window,
        t.packets,
        t.intervals,
        ms(p50),
        ms(p99),
        ms(p999),
        ms(t.max_interval_us),
        ms(meter.on_time_low_us),
        ms(meter.on_time_high_us),
        t.lost,
        t.reordered,
        t.duplicates,
        t.seq_jumps,
        t.malformed,
        t.rtcp,
        opt(drops),
        opt(udp_errors.map(|e| e.0)),
        opt(udp_errors.map(|e| e.1)),
        opt(backlog),
        json_opt(pid_cpu),
        pid_rss.map_or_else(|| "null".into(), |r| r.to_string()),
        json_opt(self_cpu),
        json_opt(machine_cpu),
    );
    let cpu_text = match (pid_cpu, pid_rss) {
        (Some(c), Some(r)) => {
            #[allow(clippy::cast_precision_loss)]
            let mib = r as f64 / 1024.0;
            format!(
                "; pid {} CPU {c:.1}% RSS {mib:.1} MiB",
                pid.as_deref().unwrap_or("")
            )
        }
        _ => String::new(),
    };
    println!(
        "rtp-meter{}: {} streams ({short} short), {} packets in {secs:.1} s; interval p50 {:.2} \
         p99 {:.2} p99.9 {:.2} max {:.2} ms; outside {:.1}±{:.1} ms: {:.3}%; lost {}/{expected} \
         ({:.3}%), reordered {}, duplicates {}, seq jumps {}; jitter mean {jitter_mean_ms:.2} \
         max {jitter_max_ms:.2} ms; meter socket drops {} (system-wide: UDP receive-buffer \
         errors {}, send-buffer errors {}, input backlog drops {}){cpu_text}; meter CPU {}%; whole machine {}% of one core",
        if args.label.is_empty() {
            String::new()
        } else {
            format!(" [{}]", args.label)
        },
        meter.streams_in_window,
        t.packets,
        ms(p50),
        ms(p99),
        ms(p999),
        ms(t.max_interval_us),
        ms(args.ptime_us),
        ms(args.tolerance_us),
        outside_share * 100.0,
        t.lost,
        lost_share * 100.0,
        t.reordered,
        t.duplicates,
        t.seq_jumps,
        opt(drops),
        opt(udp_errors.map(|e| e.0)),
        opt(udp_errors.map(|e| e.1)),
        opt(backlog),
        self_cpu.map_or_else(|| "?".into(), |c| format!("{c:.1}")),
        machine_cpu.map_or_else(|| "?".into(), |c| format!("{c:.0}")),
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 1,
            warmup: Duration::ZERO,
            seconds: Duration::from_secs(1),
            start_file: None,
            max_wait: Duration::ZERO,
            pid: None,
            clk_tck: 100,
            ptime_us: 20_000,
            tolerance_us: 2_000,
            clock_rate: 8000,
            label: String::new(),
        }
    }

    fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    #[test]
    fn intervals_loss_and_streams() {
        let t0 = Instant::now();
        let mut m = Meter::new(&args(), t0);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Stream 1: warm-up packet, then 20 ms steps with seq 3 missing and one 30 ms gap.
        m.packet(&rtp(1, 0, 0), ms(0), false);
        m.packet(&rtp(1, 1, 160), ms(20), true);
        m.packet(&rtp(1, 2, 320), ms(40), true);
        m.packet(&rtp(1, 4, 640), ms(80), true);
        m.packet(&rtp(1, 5, 800), ms(110), true);
        // Stream 2: a duplicate and a late packet.
        m.packet(&rtp(2, 10, 0), ms(1), true);
        m.packet(&rtp(2, 12, 320), ms(21), true);
        m.packet(&rtp(2, 11, 160), ms(22), true);
        m.packet(&rtp(2, 12, 320), ms(41), true);
        // Junk: too short, wrong version, RTCP.
        m.packet(&[0x80; 5], ms(50), true);
        m.packet(&[0u8; 20], ms(50), true);
        let mut rtcp = rtp(3, 0, 0);
        rtcp[1] = 200;
        m.packet(&rtcp, ms(50), true);

        let t = &m.totals;
        assert_eq!(m.streams_in_window, 2);
        assert_eq!(t.packets, 8);
        assert_eq!(
            t.intervals, 7,
            "the first packet of stream 2 has no predecessor"
        );
        assert_eq!(t.lost, 1, "seq 3 lost; seq 11 came late and is taken back");
        assert_eq!(t.reordered, 1);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.malformed, 2);
        assert_eq!(t.rtcp, 1);
        assert_eq!(t.max_interval_us, 40_000);
        // Intervals 20, 20, 40, 30 | 20, 1, 19: outside 18-22 ms are 40, 30 and 1.
        assert_eq!(t.outside, 3);
        assert_eq!(m.quantile_us(0.5), 20_005);
        assert_eq!(m.quantile_us(1.0), 40_000);
    }

    #[test]
    fn sequence_wraps_without_loss() {
        let t0 = Instant::now();
        let mut m = Meter::new(&args(), t0);
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            let i = u32::try_from(i).unwrap();
            m.packet(
                &rtp(7, seq, i * 160),
                t0 + Duration::from_millis(u64::from(i) * 20),
                true,
            );
        }
        assert_eq!(m.totals.lost, 0);
        assert_eq!(m.totals.seq_jumps, 0);
        assert_eq!(m.totals.outside, 0);
        let jitter = m.streams.get(&7).unwrap().jitter16 / 16;
        assert!(jitter <= 1, "steady stream has ~no jitter, got {jitter}");
    }

    #[test]
    fn overflow_bucket_reports_the_max() {
        let t0 = Instant::now();
        let mut m = Meter::new(&args(), t0);
        m.packet(&rtp(9, 0, 0), t0, true);
        m.packet(&rtp(9, 1, 160), t0 + Duration::from_secs(3), true);
        assert_eq!(m.quantile_us(0.99), 3_000_000);
    }
}
