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

fn main() -> ExitCode {
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
