//! `browser-legs`: N operators' browser phones for tests/bench/webrtc_legs.sh, played by
//! str0m instead of N Chromiums, and the callers' media beside them.
//!
//! Each operator op0001..opN logs in over HTTP (the login form's double-submit cookie is
//! one we choose), opens the console's WebSocket (/console/live, same Origin) and says
//! `use_browser`. Every `ring` is answered with a str0m offer (PCMU and PCMA, audio
//! sendrecv, one host candidate on its own loopback UDP socket); with the daemon's answer
//! the leg runs ICE and DTLS-SRTP, then sends a 20 ms PCMU frame every 20 ms.
//!
//! The callers' SDP all point at one UDP port of ours (`--caller-port`): a new source
//! there (the daemon's hold music for a new call) becomes a caller stream that gets a
//! 20 ms PCMU frame every 20 ms too. Every frame we send carries a marker, its stream,
//! its sequence and its send time (ns since this process started), so whatever side it
//! comes out of, one clock gives its one-way time through the daemon: from right before
//! the frame is handed to str0m (browser) or to `send_to` (caller) to right after it was
//! read (and for the browser, decrypted) — the daemon, two loopback deliveries and our
//! own scheduling and crypto. Nothing is subtracted: an upper bound of what the daemon adds.
//!
//! When every leg is connected and both ends hear each other (or after `--max-wait`), a
//! `--warmup`, then one window of `--seconds`: one-way times, receive intervals per
//! stream, frames sent and received, how late our own sends were, the daemon's CPU (% of
//! one core) and RSS from /proc, and ours. One JSON line on stdout, then it keeps the
//! calls going until it is stopped or `--stop-file` appears.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const USAGE: &str = "\
browser-legs: N simulated browser phones (str0m) and their callers' media

  --http ADDR          the daemon's HTTP listener (default 127.0.0.1:19080)
  --operators N        log in op0001..opN (password bench-web-pass-NNNN) (required)
  --caller-port PORT   UDP port every caller's SDP points at (required)
  --pid PID            the daemon: CPU (% of one core) over the window, RSS at its end
  --clk-tck N          kernel clock ticks per second (default 100)
  --warmup SECS        after all legs are up, before the window (default 2)
  --seconds SECS       the window (default 10)
  --max-wait SECS      longest wait for all legs to be up, from the last phone (default 120)
  --status-file PATH   rewritten every 250 ms: phones rings connected browsers-hearing callers-hearing
  --stop-file PATH     exit when PATH exists (after the window)
  --map-file PATH      when all legs are up (before the warmup), one line per leg: its
                       number, its UDP port, the daemon's port that sends its audio to
                       the callers' port (for a capture of some legs)
  --start-file PATH    after the warmup, the window starts when PATH exists
  --label TEXT         copied into the JSON line
";

/// The first bytes of every frame we send.
const MARK: &[u8; 4] = b"HLWB";
const FRAME: Duration = Duration::from_millis(20);
const SAMPLES: u32 = 160;
/// The login form's double-submit token: any value, as long as cookie and field agree.
const LOGIN_TOKEN: &str = "benchloginbenchloginbenchlogin00";

struct Args {
    http: SocketAddr,
    operators: usize,
    caller_port: u16,
    pid: Option<u32>,
    clk_tck: u64,
    warmup: Duration,
    seconds: Duration,
    max_wait: Duration,
    status_file: Option<PathBuf>,
    stop_file: Option<PathBuf>,
    map_file: Option<PathBuf>,
    start_file: Option<PathBuf>,
    label: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        http: SocketAddr::from((Ipv4Addr::LOCALHOST, 19080)),
        operators: 0,
        caller_port: 0,
        pid: None,
        clk_tck: 100,
        warmup: Duration::from_secs(2),
        seconds: Duration::from_secs(10),
        max_wait: Duration::from_secs(120),
        status_file: None,
        stop_file: None,
        map_file: None,
        start_file: None,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        let secs = |v: &str| v.parse::<f64>().map(Duration::from_secs_f64);
        match flag.as_str() {
            "--http" => args.http = value.parse().map_err(|e| bad(&e))?,
            "--operators" => args.operators = value.parse().map_err(|e| bad(&e))?,
            "--caller-port" => args.caller_port = value.parse().map_err(|e| bad(&e))?,
            "--pid" => args.pid = Some(value.parse().map_err(|e| bad(&e))?),
            "--clk-tck" => args.clk_tck = value.parse().map_err(|e| bad(&e))?,
            "--warmup" => args.warmup = secs(&value).map_err(|e| bad(&e))?,
            "--seconds" => args.seconds = secs(&value).map_err(|e| bad(&e))?,
            "--max-wait" => args.max_wait = secs(&value).map_err(|e| bad(&e))?,
            "--status-file" => args.status_file = Some(value.into()),
            "--stop-file" => args.stop_file = Some(value.into()),
            "--map-file" => args.map_file = Some(value.into()),
            "--start-file" => args.start_file = Some(value.into()),
            "--label" => args.label = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if args.operators == 0 || args.caller_port == 0 {
        return Err("--operators and --caller-port are required".into());
    }
    Ok(args)
}

/// One direction's figures over the window (times in µs).
#[derive(Default)]
struct Flow {
    one_way_us: Vec<u32>,
    interval_us: Vec<u32>,
    sent: u64,
    received: u64,
    /// How late our own sends were against their 20 ms slot.
    send_late_us: Vec<u32>,
}

#[derive(Default)]
struct Stats {
    measuring: bool,
    phones: usize,
    rings: usize,
    connected: usize,
    /// Browser legs that got a marked frame (from a caller).
    browsers_hearing: usize,
    /// Caller streams that got a marked frame (from a browser).
    callers_hearing: usize,
    to_caller: Flow,
    to_browser: Flow,
    errors: Vec<String>,
    error_count: usize,
    /// Each leg's UDP port, by leg number.
    leg_ports: HashMap<u32, u16>,
    /// The daemon's port that sends each leg's audio to the callers' port, by leg number.
    leg_call_ports: HashMap<u32, u16>,
}

impl Stats {
    fn error(&mut self, e: String) {
        self.error_count += 1;
        if self.errors.len() < 8 {
            eprintln!("browser-legs: {e}");
            self.errors.push(e);
        }
    }
}

type Shared = Rc<RefCell<Stats>>;

/// The clock every frame's send time is on.
struct Clock(Instant);

impl Clock {
    fn ns(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.0).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A marked frame: the marker, stream, sequence, send time; PCMU silence after.
fn frame(stream: u32, seq: u32, sent_ns: u64) -> [u8; SAMPLES as usize] {
    let mut f = [0xffu8; SAMPLES as usize];
    f[0..4].copy_from_slice(MARK);
    f[4..8].copy_from_slice(&stream.to_be_bytes());
    f[8..12].copy_from_slice(&seq.to_be_bytes());
    f[12..20].copy_from_slice(&sent_ns.to_be_bytes());
    f
}

/// The send time of a marked frame, if `payload` is one.
fn sent_ns(payload: &[u8]) -> Option<u64> {
    if payload.len() < 20 || &payload[0..4] != MARK {
        return None;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&payload[12..20]);
    Some(u64::from_be_bytes(t))
}

fn micros(d: u64) -> u32 {
    u32::try_from(d / 1000).unwrap_or(u32::MAX)
}

/// Records a marked frame's arrival in `flow` (while measuring); returns whether it was one.
fn arrived(
    stats: &mut Stats,
    to_browser: bool,
    payload: &[u8],
    now_ns: u64,
    last_rx: &mut Option<u64>,
) -> bool {
    let Some(sent) = sent_ns(payload) else {
        return false;
    };
    let measuring = stats.measuring;
    let flow = if to_browser {
        &mut stats.to_browser
    } else {
        &mut stats.to_caller
    };
    if measuring {
        flow.received += 1;
        flow.one_way_us.push(micros(now_ns.saturating_sub(sent)));
        if let Some(last) = *last_rx {
            flow.interval_us.push(micros(now_ns.saturating_sub(last)));
        }
    }
    *last_rx = Some(now_ns);
    true
}

// --- the callers' side -------------------------------------------------------------------

struct CallerStream {
    to: SocketAddr,
    ssrc: u32,
    seq: u32,
    last_rx: Option<u64>,
    heard: bool,
}

/// The RTP payload of a datagram (after CSRCs and an extension), if it is RTP.
fn rtp_payload(d: &[u8]) -> Option<&[u8]> {
    if d.len() < 12 || d[0] >> 6 != 2 {
        return None;
    }
    // RTCP's packet types (192-223) read as payload types 64-95 with the marker bit.
    if (64..=95).contains(&(d[1] & 0x7f)) {
        return None;
    }
    let mut at = 12 + 4 * usize::from(d[0] & 0x0f);
    if d[0] & 0x10 != 0 {
        let ext = d.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    d.get(at..)
}

/// Every caller's media: learns a caller from the first packet of a new source, then
/// sends it a marked frame every 20 ms (slots start where the caller was learnt, so the
/// sends spread over the 20 ms) and measures the marked frames that come back.
async fn callers(socket: UdpSocket, clock: Rc<Clock>, stats: Shared) {
    let mut streams: Vec<CallerStream> = Vec::new();
    let mut by_addr: HashMap<SocketAddr, usize> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut buf = vec![0u8; 2048];
    let mut packet = [0u8; 12 + SAMPLES as usize];
    loop {
        let wake = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let now = Instant::now();
                let Ok((n, from)) = r else { continue };
                let Some(payload) = rtp_payload(&buf[..n]) else { continue };
                let i = match by_addr.get(&from) {
                    Some(i) => *i,
                    None => {
                        let i = streams.len();
                        streams.push(CallerStream {
                            to: from,
                            ssrc: 0x4c57_0000 | u32::try_from(i).unwrap_or(0),
                            seq: 0,
                            last_rx: None,
                            heard: false,
                        });
                        by_addr.insert(from, i);
                        due.push(Reverse((now + FRAME, i)));
                        i
                    }
                };
                let s = &mut streams[i];
                let mut st = stats.borrow_mut();
                if arrived(&mut st, false, payload, clock.ns(now), &mut s.last_rx) && !s.heard {
                    s.heard = true;
                    st.callers_hearing += 1;
                    let mut leg_no = [0u8; 4];
                    leg_no.copy_from_slice(&payload[4..8]);
                    st.leg_call_ports.insert(u32::from_be_bytes(leg_no), from.port());
                }
            }
            _ = sleep_until_opt(wake) => {
                let Some(Reverse((at, i))) = due.pop() else { continue };
                let s = &mut streams[i];
                let now = Instant::now();
                let seq = s.seq;
                s.seq = s.seq.wrapping_add(1);
                packet[0] = 0x80;
                packet[1] = 0; // PCMU
                packet[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
                packet[4..8].copy_from_slice(&seq.wrapping_mul(SAMPLES).to_be_bytes());
                packet[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
                let sent = clock.ns(Instant::now());
                packet[12..].copy_from_slice(&frame(u32::try_from(i).unwrap_or(0), seq, sent));
                let ok = socket.send_to(&packet, s.to).await.is_ok();
                {
                    let mut st = stats.borrow_mut();
                    if st.measuring && ok {
                        st.to_browser.sent += 1;
                        st.to_browser.send_late_us.push(micros(clock.ns(now).saturating_sub(clock.ns(at))));
                    }
                }
                // A slot missed by more than a frame is skipped, not sent in a burst.
                let mut next = at + FRAME;
                while next + FRAME < now {
                    next += FRAME;
                }
                due.push(Reverse((next, i)));
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

// --- the browsers' side ------------------------------------------------------------------

/// A leg between the page's offer and the daemon's answer.
struct Offered {
    rtc: Rtc,
    pending: SdpPendingOffer,
    mid: Mid,
    socket: UdpSocket,
    local: SocketAddr,
}

/// A leg once the answer is applied.
struct Running {
    rtc: Rtc,
    mid: Mid,
    socket: UdpSocket,
    local: SocketAddr,
}

/// A browser's offer for a ringing leg: PCMU then PCMA, audio both ways, one host
/// candidate on a new loopback socket.
async fn offer() -> Result<(Offered, String), String> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("binding a leg's socket: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_pcmu(true, false)
        .enable_pcma(true, false)
        .build(Instant::now());
    let candidate = Candidate::host(local, "udp").map_err(|e| format!("candidate {local}: {e}"))?;
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().ok_or("str0m made no offer")?;
    Ok((
        Offered {
            rtc,
            pending,
            mid,
            socket,
            local,
        },
        offer.to_sdp_string(),
    ))
}

/// One connected-to-be leg: ICE, DTLS, then a marked frame every 20 ms once connected;
/// ends when `stop` fires (the daemon said `ended`) or str0m fails.
async fn leg(
    mut o: Running,
    leg_id: u32,
    clock: Rc<Clock>,
    stats: Shared,
    mut stop: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; 2048];
    let mut next_send: Option<Instant> = None;
    let mut seq: u32 = 0;
    let mut last_rx: Option<u64> = None;
    let mut heard = false;
    let pcmu = Pt::new_with_value(0);
    loop {
        let timeout = loop {
            match o.rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = o.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(Event::Connected)) => {
                    stats.borrow_mut().connected += 1;
                    next_send = Some(Instant::now() + FRAME);
                }
                Ok(Output::Event(Event::MediaData(d))) => {
                    let now_ns = clock.ns(Instant::now());
                    let mut st = stats.borrow_mut();
                    if arrived(&mut st, true, &d.data, now_ns, &mut last_rx) && !heard {
                        heard = true;
                        st.browsers_hearing += 1;
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    stats
                        .borrow_mut()
                        .error(format!("leg {leg_id}: str0m: {e}"));
                    return;
                }
            }
        };
        let wake = next_send.map_or(timeout, |s| s.min(timeout));
        tokio::select! {
            _ = &mut stop => return,
            r = o.socket.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let Ok(contents) = buf[..n].try_into() else { continue };
                let input = Input::Receive(Instant::now(), Receive {
                    proto: Protocol::Udp,
                    source: from,
                    destination: o.local,
                    contents,
                });
                if let Err(e) = o.rtc.handle_input(input) {
                    stats.borrow_mut().error(format!("leg {leg_id}: a datagram: {e}"));
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                let now = Instant::now();
                if let Some(slot) = next_send.filter(|s| *s <= now) {
                    let sent = clock.ns(Instant::now());
                    let data = frame(leg_id, seq, sent);
                    let rtp_time = MediaTime::new(u64::from(seq.wrapping_mul(SAMPLES)), Frequency::EIGHT_KHZ);
                    seq = seq.wrapping_add(1);
                    let written = match o.rtc.writer(o.mid) {
                        Some(w) => w.write(pcmu, now, rtp_time, data.to_vec()).is_ok(),
                        None => false,
                    };
                    let mut st = stats.borrow_mut();
                    if st.measuring && written {
                        st.to_caller.sent += 1;
                        st.to_caller.send_late_us.push(micros(clock.ns(now).saturating_sub(clock.ns(slot))));
                    }
                    let mut next = slot + FRAME;
                    while next + FRAME < now {
                        next += FRAME;
                    }
                    next_send = Some(next);
                }
                if let Err(e) = o.rtc.handle_input(Input::Timeout(now)) {
                    stats.borrow_mut().error(format!("leg {leg_id}: timeout: {e}"));
                }
            }
        }
    }
}

/// Logs `name` in; the session cookie's value.
async fn login(http: SocketAddr, name: &str, password: &str) -> Result<String, String> {
    let body = format!("_csrf={LOGIN_TOKEN}&name={name}&password={password}&next=%2F");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {http}\r\nOrigin: http://{http}\r\n\
         Cookie: hl_login={LOGIN_TOKEN}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut tcp = TcpStream::connect(http).await?;
        tcp.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tcp.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("login {name}: no answer in 30 s"))?
        .map_err(|e| format!("login {name}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let status = head.lines().next().unwrap_or("").to_string();
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.trim().strip_prefix("hl_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .find(|v| !v.is_empty())
        .ok_or_else(|| format!("login {name}: no session ({status})"))
}

type Console = WebSocketStream<TcpStream>;

async fn open_console(http: SocketAddr, session: &str) -> Result<Console, String> {
    let mut request = format!("ws://{http}/console/live")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    let cookie =
        HeaderValue::from_str(&format!("hl_session={session}")).map_err(|e| e.to_string())?;
    headers.insert("Cookie", cookie);
    let origin = HeaderValue::from_str(&format!("http://{http}")).map_err(|e| e.to_string())?;
    headers.insert("Origin", origin);
    let tcp = TcpStream::connect(http).await.map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(|e| format!("/console/live: {e}"))?;
    Ok(ws)
}

/// One operator's console tab as their phone: answers every ring.
async fn operator(
    name: String,
    mut ws: Console,
    clock: Rc<Clock>,
    stats: Shared,
    next_leg: Rc<RefCell<u32>>,
) {
    let use_browser = r#"{"type":"use_browser","on":true}"#;
    if let Err(e) = ws.send(Message::text(use_browser)).await {
        stats
            .borrow_mut()
            .error(format!("{name}: use_browser: {e}"));
        return;
    }
    let mut offered: HashMap<u64, Offered> = HashMap::new();
    let mut legs: HashMap<u64, oneshot::Sender<()>> = HashMap::new();
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                stats
                    .borrow_mut()
                    .error(format!("{name}: console socket: {e}"));
                break;
            }
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let leg_no = v["leg"].as_u64();
        match (v["type"].as_str(), leg_no) {
            (Some("phone"), _) => {
                if v["browser"].as_bool() == Some(true) {
                    stats.borrow_mut().phones += 1;
                } else {
                    stats
                        .borrow_mut()
                        .error(format!("{name}: not a browser phone: {text}"));
                }
            }
            (Some("ring"), Some(n)) => {
                stats.borrow_mut().rings += 1;
                match offer().await {
                    Ok((o, sdp)) => {
                        let answer = serde_json::json!({"type": "answer", "leg": n, "sdp": sdp});
                        if let Err(e) = ws.send(Message::text(answer.to_string())).await {
                            stats.borrow_mut().error(format!("{name}: answer: {e}"));
                            break;
                        }
                        offered.insert(n, o);
                    }
                    Err(e) => stats.borrow_mut().error(format!("{name}: {e}")),
                }
            }
            (Some("answered"), Some(n)) => {
                let Some(mut o) = offered.remove(&n) else {
                    continue;
                };
                let sdp = v["sdp"].as_str().unwrap_or("");
                let applied = SdpAnswer::from_sdp_string(sdp)
                    .map_err(|e| e.to_string())
                    .and_then(|a| {
                        o.rtc
                            .sdp_api()
                            .accept_answer(o.pending, a)
                            .map_err(|e| e.to_string())
                    });
                let Offered {
                    rtc,
                    mid,
                    socket,
                    local,
                    ..
                } = o;
                let running = Running {
                    rtc,
                    mid,
                    socket,
                    local,
                };
                if let Err(e) = applied {
                    stats
                        .borrow_mut()
                        .error(format!("{name}: the daemon's answer: {e}"));
                    continue;
                }
                let (stop_tx, stop_rx) = oneshot::channel();
                legs.insert(n, stop_tx);
                let id = {
                    let mut next = next_leg.borrow_mut();
                    *next += 1;
                    *next
                };
                stats
                    .borrow_mut()
                    .leg_ports
                    .insert(id, running.local.port());
                tokio::task::spawn_local(leg(running, id, clock.clone(), stats.clone(), stop_rx));
            }
            (Some("ended"), Some(n)) => {
                offered.remove(&n);
                if let Some(stop) = legs.remove(&n) {
                    let _ = stop.send(());
                }
            }
            (Some("error"), _) => stats.borrow_mut().error(format!("{name}: {text}")),
            _ => {}
        }
    }
    for (_, stop) in legs.drain() {
        let _ = stop.send(());
    }
}

// --- the window and the report -----------------------------------------------------------

/// A process's CPU ticks (user + system, all threads).
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The machine's busy and total jiffies (all cores; idle and iowait are not busy).
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// p50, p99, p99.9 and max of µs figures, in ms, as JSON.
fn quantiles(mut v: Vec<u32>) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::json!({"n": 0});
    }
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 * q) as usize).min(v.len() - 1);
        f64::from(v[i]) / 1000.0
    };
    serde_json::json!({"n": v.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "p999_ms": at(0.999),
                       "max_ms": at(1.0)})
}

fn flow_json(f: Flow) -> serde_json::Value {
    serde_json::json!({
        "sent": f.sent,
        "received": f.received,
        "one_way": quantiles(f.one_way_us),
        "interval": quantiles(f.interval_us),
        "send_late": quantiles(f.send_late_us),
    })
}

fn write_status(args: &Args, stats: &Shared) {
    if let Some(path) = &args.status_file {
        let s = stats.borrow();
        let line = format!(
            "{} {} {} {} {}\n",
            s.phones, s.rings, s.connected, s.browsers_hearing, s.callers_hearing
        );
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, line).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let clock = Rc::new(Clock(Instant::now()));
    let stats: Shared = Rc::new(RefCell::new(Stats::default()));
    let caller_socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, args.caller_port))
        .await
        .map_err(|e| format!("binding the callers' port {}: {e}", args.caller_port))?;
    eprintln!(
        "browser-legs: listening on 127.0.0.1:{} for the callers' media",
        args.caller_port
    );
    tokio::task::spawn_local(callers(caller_socket, clock.clone(), stats.clone()));

    // The consoles, one after the other: a login costs the daemon an argon2 hash.
    let next_leg = Rc::new(RefCell::new(0u32));
    let t0 = Instant::now();
    for i in 1..=args.operators {
        let name = format!("op{i:04}");
        let password = format!("bench-web-pass-{i:04}");
        let session = login(args.http, &name, &password).await?;
        let ws = open_console(args.http, &session)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        tokio::task::spawn_local(operator(
            name,
            ws,
            clock.clone(),
            stats.clone(),
            next_leg.clone(),
        ));
        if i % 50 == 0 {
            write_status(&args, &stats);
        }
    }
    // Every tab has said it is the phone (or we stop waiting).
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats.borrow().phones < args.operators && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let phones = stats.borrow().phones;
    eprintln!(
        "browser-legs: {phones} of {} consoles are browser phones ({:.1} s)",
        args.operators,
        t0.elapsed().as_secs_f64()
    );
    write_status(&args, &stats);

    // Every leg up, both ways.
    let deadline = Instant::now() + args.max_wait;
    let up = |s: &Stats| {
        s.connected >= args.operators
            && s.browsers_hearing >= args.operators
            && s.callers_hearing >= args.operators
    };
    while !up(&stats.borrow()) && Instant::now() < deadline {
        write_status(&args, &stats);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    write_status(&args, &stats);
    let ready_s = t0.elapsed().as_secs_f64();
    if let Some(path) = &args.map_file {
        let lines: String = {
            let s = stats.borrow();
            let mut legs: Vec<_> = s.leg_ports.iter().collect();
            legs.sort();
            legs.iter()
                .filter_map(|(id, port)| {
                    Some(format!("{id} {port} {}\n", s.leg_call_ports.get(id)?))
                })
                .collect()
        };
        if let Err(e) = std::fs::write(path, lines) {
            stats.borrow_mut().error(format!("{}: {e}", path.display()));
        }
    }
    tokio::time::sleep(args.warmup).await;
    if let Some(path) = &args.start_file {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !path.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The window.
    let pid = args.pid.map(|p| p.to_string());
    let daemon_t0 = pid.as_deref().and_then(cpu_ticks);
    let own_t0 = cpu_ticks("self");
    let machine_t0 = machine_jiffies();
    let w0 = Instant::now();
    stats.borrow_mut().measuring = true;
    tokio::time::sleep(args.seconds).await;
    stats.borrow_mut().measuring = false;
    let secs = w0.elapsed().as_secs_f64();
    let daemon_t1 = pid.as_deref().and_then(cpu_ticks);
    let own_t1 = cpu_ticks("self");
    // Busy share of all cores, as % of one core (200 = both of two cores busy).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let machine_pct = match (machine_t0, machine_jiffies()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            serde_json::json!((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0 * cores as f64)
        }
        _ => serde_json::Value::Null,
    };
    let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => {
            serde_json::json!((b.saturating_sub(a)) as f64 / args.clk_tck as f64 / secs * 100.0)
        }
        _ => serde_json::Value::Null,
    };
    let daemon_rss = pid.as_deref().and_then(rss_kib);
    let (to_caller, to_browser, summary) = {
        let mut s = stats.borrow_mut();
        let summary = serde_json::json!({
            "phones": s.phones, "rings": s.rings, "connected": s.connected,
            "browsers_hearing": s.browsers_hearing, "callers_hearing": s.callers_hearing,
            "errors": s.errors, "error_count": s.error_count,
        });
        (
            std::mem::take(&mut s.to_caller),
            std::mem::take(&mut s.to_browser),
            summary,
        )
    };
    let mut report = serde_json::json!({
        "label": args.label,
        "n": args.operators,
        "ready_s": ready_s,
        "window_s": secs,
        "daemon_cpu_pct": pct(daemon_t0, daemon_t1),
        "daemon_rss_kib": daemon_rss,
        "client_cpu_pct": pct(own_t0, own_t1),
        "machine_cpu_pct": machine_pct,
        "cores": cores,
        "browser_to_caller": flow_json(to_caller),
        "caller_to_browser": flow_json(to_browser),
    });
    if let (Some(r), Some(s)) = (report.as_object_mut(), summary.as_object()) {
        r.extend(s.clone());
    }
    println!("{report}");

    // The calls go on until we are told to stop.
    loop {
        write_status(&args, &stats);
        if args.stop_file.as_ref().is_some_and(|p| p.exists()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("browser-legs: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // One thread: the daemon under test gets the other core.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("browser-legs: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("browser-legs: {e}");
            ExitCode::FAILURE
        }
    }
}
