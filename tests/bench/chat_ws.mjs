// Web chat benchmark, the client side (tests/bench/chat_ws.sh builds and starts the daemon
// and runs this; not part of tests/run.sh). Loopback only. Issue 7: WebSocket connections
// held, messages delivered per second, end-to-end latency at 1,000 msg/s, memory per
// connection.
//
//  1. chats: CONNS chats through POST /chat/start, START_CONC requests in flight (every
//     chat waits in queue "support": no operator is online, so nothing is offered);
//  2. sockets: one visitor socket per chat (/chat/ws?token=T&after=0), OPEN_CONC
//     handshakes in flight; a socket counts as open once its first state frame came (the
//     greeting event comes before it);
//  3. hold: HOLD_SECS with all of them open and idle (the daemon's own loops still run:
//     the offer loop ranks the waiting chats each round); then a ping on every socket:
//     held = still open and answered the ping within 30 s (a socket's task reads its
//     socket, and so answers pings, only between its reads of the store). RSS per
//     connection = (daemon RSS at the end of the hold - RSS after the chats were created,
//     before the first socket) / sockets open;
//  4. throughput, all sockets still open: SENDERS of them send as fast as their acks come
//     back (one message in flight each) for TPUT_SECS; delivered = the sender's own
//     message coming back to it as an event (stored, woken, read, sent) within the window;
//  5. latency, all sockets still open: for each rate of RATES, that many messages per
//     second, paced, spread round-robin over the SENDERS chats, for LAT_SECS (the first
//     second not counted); latency = from the client's send to the arrival of its own
//     event (the push path), and to its ack. A rate that overloads the daemon (2 s worth of
//     messages in flight) is stopped there and marked OVERLOADED; higher ones are skipped;
//  6. with QUIET=1 (default): every socket but the SENDERS' closed, the daemon given up to
//     120 s to work off what is left (it and PostgreSQL below 20 % CPU), then 4 and 5 again.
//
// Knobs (environment): BASE_URL (http://127.0.0.1:14080), SITE (bench), CONNS (10000),
// START_CONC (50), OPEN_CONC (100), HOLD_SECS (30), SENDERS (200), TPUT_SECS (10),
// RATES ("500 1000"; the highest is the target's), LAT_SECS (15), QUIET (1), MSG_BYTES (64), OPEN_FAIL_MAX (2 % of CONNS, at
// least 200) and OPEN_MAX_SECS (300): opening stops after that many sockets failed to open
// (30 s without their state frame) or after that long, DAEMON_PID (for RSS and CPU from
// /proc), RESULT_FILE (the figures as JSON), LABEL (printed).
// `node chat_ws.mjs --summary A.json [B.json ...]` prints the figures of earlier runs as
// one table.
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const num = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a number`);
  return n;
};

const BASE = (process.env.BASE_URL || 'http://127.0.0.1:14080').replace(/\/$/, '');
const WS_BASE = BASE.replace(/^http/, 'ws');
const SITE = process.env.SITE || 'bench';
const CONNS = num('CONNS', 10000);
const START_CONC = Math.max(1, num('START_CONC', 50));
const OPEN_CONC = Math.max(1, num('OPEN_CONC', 100));
const HOLD_SECS = num('HOLD_SECS', 30);
const SENDERS = Math.max(1, Math.min(num('SENDERS', 200), CONNS));
const TPUT_SECS = num('TPUT_SECS', 10);
const RATES = (process.env.RATES || process.env.RATE || '500 1000')
  .split(/[\s,]+/)
  .filter(Boolean)
  .map(Number)
  .filter((r) => Number.isFinite(r) && r > 0)
  .sort((a, b) => a - b);
if (!RATES.length) throw new Error('RATES holds no rate');
const RATE = RATES[RATES.length - 1];
const LAT_SECS = Math.max(2, num('LAT_SECS', 15));
const QUIET = num('QUIET', 1) > 0;
const OPEN_FAIL_MAX = Math.max(1, num('OPEN_FAIL_MAX', Math.max(200, Math.round(CONNS * 0.02))));
const OPEN_MAX_SECS = num('OPEN_MAX_SECS', 300);
const MSG_BYTES = Math.max(1, num('MSG_BYTES', 64));
const PID = process.env.DAEMON_PID || '';
const LABEL = process.env.LABEL || '';
const TEXT = 'Hello, I have a question about my order number 12345. '.repeat(20).slice(0, MSG_BYTES);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.log(s);
const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

// --- /proc: the daemon's RSS and CPU, the machine's CPU ----------------------------------
const CLK_TCK = num('CLK_TCK', 100);
function rssKib(pid = PID) {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
const NCPU = (readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm) || []).length || 1;
const DISTURBED_PCT = num('DISTURBED_PCT', 25);
/** Every process's CPU ticks and name, by pid. */
function procTicks() {
  const m = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      m.set(d, [Number(f[11]) + Number(f[12]), s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))]);
    } catch {
      /* gone */
    }
  }
  return m;
}
function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  return { total: f.slice(0, 8).reduce((a, b) => a + b, 0), idle };
}
/** Starts a CPU window; its end() gives, in % of one core, the daemon's, this client's,
 * PostgreSQL's (processes named postgres) and all other processes' CPU (the machine's
 * busy time minus those three: processes that ended in the window count too), the
 * busiest of those others, and the whole machine's busy share in % of all cores. */
function cpuWindow() {
  const t0 = performance.now();
  const p0 = procTicks();
  const c0 = process.cpuUsage();
  const m0 = machineTicks();
  return () => {
    const secs = (performance.now() - t0) / 1000;
    const p1 = procTicks();
    const c = process.cpuUsage(c0);
    const m1 = machineTicks();
    const toPct = (ticks) => (ticks / CLK_TCK / secs) * 100;
    let daemon = null;
    let pg = 0;
    const others = [];
    for (const [pid, [t, name]] of p1) {
      const d = t - (p0.get(pid)?.[0] ?? 0);
      if (pid === String(PID)) daemon = toPct(d);
      else if (pid === String(process.pid)) continue;
      else if (name === 'postgres') pg += toPct(d);
      else if (d > 0) others.push([toPct(d), `${name} (${pid})`]);
    }
    others.sort((a, b) => b[0] - a[0]);
    const dt = m1.total - m0.total;
    const busy = dt > 0 ? 1 - (m1.idle - m0.idle) / dt : null;
    const client = ((c.user + c.system) / 1e6 / secs) * 100;
    const machineCores = busy === null ? null : busy * NCPU * 100;
    const other = machineCores === null ? null : Math.max(0, machineCores - (daemon ?? 0) - client - pg);
    return {
      secs,
      daemon_cpu_pct: daemon,
      client_cpu_pct: client,
      postgres_cpu_pct: pg,
      other_cpu_pct: other,
      busiest_others: others.slice(0, 3).map(([v, n]) => `${n} ${v.toFixed(0)}%`).join(', '),
      machine_busy_pct: busy === null ? null : busy * 100,
    };
  };
}
const cpuText = (c) =>
  `CPU (% of one core): daemon ${fmt(c.daemon_cpu_pct, 0)}, this client ${fmt(c.client_cpu_pct, 0)}` +
  `${c.postgres_cpu_pct >= 0.5 ? `, postgres ${fmt(c.postgres_cpu_pct, 0)}` : ''}, other processes ${fmt(c.other_cpu_pct, 0)}` +
  `${c.other_cpu_pct > DISTURBED_PCT ? ` (DISTURBED; busiest: ${c.busiest_others || '?'})` : ''}; ` +
  `machine ${fmt(c.machine_busy_pct, 0)}% busy of ${NCPU} cores`;
const disturbed = [];
/** Notes a phase whose window other processes disturbed (they took > DISTURBED_PCT). */
function mark(name, c) {
  if (c && c.other_cpu_pct > DISTURBED_PCT) disturbed.push(`${name} (${fmt(c.other_cpu_pct, 0)}%)`);
}

/** Waits up to `maxSecs` until other processes take at most DISTURBED_PCT % of one core
 * over 5 s (the machine may be shared: a build running beside the benchmark halves it). */
async function waitQuiet(maxSecs) {
  const end = performance.now() + maxSecs * 1000;
  let said = false;
  for (;;) {
    const win = cpuWindow();
    await sleep(5000);
    const c = win();
    const load = (c.machine_busy_pct ?? 0) * NCPU - c.client_cpu_pct;
    if (load <= DISTURBED_PCT) {
      if (said) log(`   quiet now (${fmt(load, 0)}% of one core)`);
      return true;
    }
    if (performance.now() >= end) {
      log(`   still ${fmt(load, 0)}% of one core busy after ${maxSecs} s (busiest: ${c.busiest_others}); going on anyway`);
      return false;
    }
    if (!said) {
      log(`   waiting for the machine to calm down: ${fmt(load, 0)}% of one core busy (busiest: ${c.busiest_others})`);
      said = true;
    }
  }
}

function pct(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
function stats(values) {
  const s = Float64Array.from(values).sort();
  return {
    n: s.length,
    p50: pct(s, 0.5),
    p90: pct(s, 0.9),
    p99: pct(s, 0.99),
    p999: pct(s, 0.999),
    max: s.length ? s[s.length - 1] : null,
  };
}
const latText = (s) =>
  `p50 ${fmt(s.p50, 2)} ms, p90 ${fmt(s.p90, 2)}, p99 ${fmt(s.p99, 2)}, p99.9 ${fmt(s.p999, 2)}, max ${fmt(s.max, 2)} (n=${s.n})`;

/** Runs fn(i) for i in 0..n-1 with at most `conc` in flight; calls progress(done). */
async function inPool(n, conc, fn, progress = () => {}) {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
      done++;
      progress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

// --- 1. chats ---------------------------------------------------------------------------
async function startChat(i) {
  const body = {
    site: SITE,
    visitor_key: randomBytes(16).toString('hex'),
    name: `Bench visitor ${i}`,
    email: '',
    queue: 'support',
    fields: null,
    signature: null,
    page_url: null,
    page_title: null,
  };
  const res = await fetch(`${BASE}/chat/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  const j = JSON.parse(text);
  if (!j.token || !j.chat || !j.chat.id) throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
  return { id: j.chat.id, token: j.token };
}

// --- the sockets --------------------------------------------------------------------------
// Messages in flight, by client id: { conn, at (send time), ackAt, phase }.
const pending = new Map();
let phase = null; // the measuring phase: { name, onAck, onEcho, ... }
const counters = { errors: 0, firstError: '', strays: 0, dupSeq: 0, otherFrames: 0, holdFrames: 0 };

class Conn {
  constructor(chat) {
    this.chat = chat;
    this.ws = null;
    this.open = false;
    this.closed = false;
    this.closeCode = null;
    this.events = 0;
    this.greeted = false;
    this.lastSeq = 0;
    this.pongAt = 0;
  }

  connect(timeoutMs = 30_000) {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok, why) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ok, why });
      };
      const url = `${WS_BASE}/chat/ws?token=${encodeURIComponent(this.chat.token)}&after=0`;
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      this.ws = ws;
      const timer = setTimeout(() => {
        settle(false, 'no state frame within 30 s');
        ws.terminate();
      }, timeoutMs);
      ws.on('message', (data) => {
        const now = performance.now();
        let f;
        try {
          f = JSON.parse(data.toString());
        } catch {
          counters.otherFrames++;
          return;
        }
        this.frame(f, now);
        if (f.t === 'state' && !this.open) {
          this.open = true;
          settle(true);
        }
      });
      ws.on('pong', () => {
        this.pongAt = performance.now();
      });
      ws.on('close', (code) => {
        this.closed = true;
        this.open = false;
        this.closeCode = code;
        settle(false, `closed (${code}) before its state frame`);
      });
      ws.on('error', (e) => {
        if (!counters.firstError) counters.firstError = `socket: ${e.message}`;
        counters.errors++;
        settle(false, e.message);
      });
    });
  }

  frame(f, now) {
    if (holding) counters.holdFrames++;
    if (f.t === 'event') {
      this.events++;
      if (f.kind === 'greeting') this.greeted = true;
      if (f.seq <= this.lastSeq) counters.dupSeq++;
      this.lastSeq = Math.max(this.lastSeq, f.seq);
      if (f.client_id) {
        const p = pending.get(f.client_id);
        if (!p || p.conn !== this) {
          counters.strays++;
          return;
        }
        pending.delete(f.client_id);
        if (p.phase && p.phase.onEcho) p.phase.onEcho(p, now);
      }
    } else if (f.t === 'ack') {
      const p = pending.get(f.client_id);
      if (!p) return;
      if (!p.ackAt) {
        p.ackAt = now;
        if (p.phase && p.phase.onAck) p.phase.onAck(p, now);
      }
    } else if (f.t === 'error') {
      counters.errors++;
      if (!counters.firstError) counters.firstError = `frame: ${JSON.stringify(f).slice(0, 200)}`;
    } else if (f.t !== 'state') {
      counters.otherFrames++;
    }
  }

  send(ph) {
    const id = randomUUID();
    const p = { conn: this, at: performance.now(), ackAt: 0, phase: ph };
    pending.set(id, p);
    this.ws.send(JSON.stringify({ t: 'send', client_id: id, text: TEXT }));
    return p;
  }
}
let holding = false;

/** Waits until no message of the phase is in flight, or `ms` passed (longer while they
 * still come back: a backlog left over would burden the next part); how many still are. */
async function drain(ph, ms) {
  const t0 = performance.now();
  let end = t0 + ms;
  const left = () => [...pending.values()].filter((p) => p.phase === ph).length;
  let before = left();
  let said = false;
  while (before > 0 && performance.now() < end) {
    await sleep(1000);
    const now = left();
    if (now < before && performance.now() - t0 < 300_000) end = Math.max(end, performance.now() + 5000);
    if (now > 0 && performance.now() - t0 > 10_000 && !said) {
      log(`   (waiting for ${now} messages still in the daemon to come back)`);
      said = true;
    }
    before = now;
  }
  const n = left();
  for (const [id, p] of pending) if (p.phase === ph) pending.delete(id);
  return n;
}

// --- 4. throughput: each sender sends its next message when the last one's ack came ------
async function throughput(senders, secs, title) {
  log(`\n-- throughput (${title}): ${senders.length} senders, one message in flight each, ${secs} s`);
  const ph = { sent: 0, acked: 0, echoed: 0, inWindow: 0, lat: [], running: true, t0: 0, t1: 0 };
  ph.onAck = (p) => {
    ph.acked++;
    if (ph.running && !p.conn.closed) {
      p.conn.send(ph);
      ph.sent++;
    }
  };
  ph.onEcho = (p, now) => {
    ph.echoed++;
    if (now <= ph.t1) {
      ph.inWindow++;
      ph.lat.push(now - p.at);
    }
  };
  const rss0 = rssKib();
  const win = cpuWindow();
  ph.t0 = performance.now();
  ph.t1 = ph.t0 + secs * 1000;
  for (const c of senders) {
    c.send(ph);
    ph.sent++;
  }
  await sleep(secs * 1000);
  ph.running = false;
  const cpu = win();
  mark(`throughput (${title})`, cpu);
  const missing = await drain(ph, 15_000);
  const s = stats(ph.lat);
  const rate = ph.inWindow / secs;
  log(`   delivered ${ph.inWindow} in ${secs} s = ${fmt(rate, 0)} msg/s (sent ${ph.sent}, acked ${ph.acked}, ` +
    `own events back ${ph.echoed}, never came back ${missing})`);
  log(`   send -> own event under this load: ${latText(s)}`);
  log(`   ${cpuText(cpu)}; daemon RSS ${fmt((rssKib() ?? 0) / 1024)} MiB (was ${fmt((rss0 ?? 0) / 1024)})`);
  return { msgs_per_sec: rate, delivered: ph.inWindow, sent: ph.sent, missing, latency: s, cpu };
}

// --- 5. latency at a paced rate ------------------------------------------------------------
async function latency(senders, rate, secs, title) {
  log(`\n-- latency (${title}): ${rate} msg/s paced over ${senders.length} chats ` +
    `(${fmt(rate / senders.length, 1)} msg/s each), ${secs} s, the first second not counted`);
  const ph = { lat: [], ack: [], echoed: 0, sent: 0, maxLag: 0, lagOver5: 0, stoppedAt: null };
  // Open loop: a daemon that falls behind would pile up a backlog without end; stop
  // sending once this many messages are in flight.
  const maxOutstanding = Math.max(2000, 2 * rate);
  const warm = 1000;
  let t0 = 0;
  ph.onEcho = (p, now) => {
    ph.echoed++;
    if (p.at - t0 >= warm) ph.lat.push(now - p.at);
  };
  ph.onAck = (p, now) => {
    if (p.at - t0 >= warm) ph.ack.push(now - p.at);
  };
  const total = Math.round(rate * secs);
  let scheduled = 0;
  const win = cpuWindow();
  await new Promise((resolve) => {
    t0 = performance.now();
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000) + 1);
      while (scheduled < due) {
        const lag = now - (t0 + (scheduled * 1000) / rate);
        if (lag > ph.maxLag) ph.maxLag = lag;
        if (lag > 5) ph.lagOver5++;
        const c = senders[scheduled % senders.length];
        if (!c.closed) {
          c.send(ph);
          ph.sent++;
        }
        scheduled++;
      }
      if (scheduled < total && ph.sent - ph.echoed > maxOutstanding) {
        ph.stoppedAt = (now - t0) / 1000;
        scheduled = total;
      }
      if (scheduled >= total) {
        ph.cpu = win();
        resolve();
      } else setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - t0) / 1000;
  const missing = await drain(ph, 15_000);
  const s = stats(ph.lat);
  const a = stats(ph.ack);
  if (ph.stoppedAt !== null) {
    log(`   OVERLOADED: stopped sending after ${fmt(ph.stoppedAt, 1)} s with more than ${maxOutstanding} messages in flight ` +
      '(the daemon fell behind; the latencies below are of what was sent until then)');
  }
  log(`   sent ${ph.sent} in ${fmt(elapsed, 1)} s (${fmt(ph.sent / elapsed, 0)} msg/s); own events back ${ph.echoed}, never came back ${missing}`);
  log(`   send -> own event: ${latText(s)}`);
  log(`   send -> ack:       ${latText(a)}`);
  log(`   this client's pacing: at most ${fmt(ph.maxLag, 1)} ms late; ${ph.lagOver5} sends more than 5 ms late`);
  log(`   ${cpuText(ph.cpu)}`);
  mark(`latency (${title})`, ph.cpu);
  return { rate, sent: ph.sent, missing, stopped_at: ph.stoppedAt, latency: s, ack: a, max_send_lag_ms: ph.maxLag, cpu: ph.cpu };
}

/** The paced part at each of RATES, lowest first, until one overloads the daemon. The
 * highest rate run is `latency`; all are in `latencies`. */
async function latencies(senders, title) {
  const all = [];
  for (const rate of RATES) {
    const r = await latency(senders, rate, LAT_SECS, title);
    all.push(r);
    if (r.stopped_at !== null) break;
  }
  return { latency: all.find((r) => r.rate === RATE) ?? all[all.length - 1], latencies: all };
}

// --- the run ----------------------------------------------------------------------------
async function main() {
  const result = { label: LABEL, conns_target: CONNS, senders: SENDERS, rate: RATE };
  log(`${LABEL ? `[${LABEL}] ` : ''}target ${BASE}, site ${SITE}; ${CONNS} chats and sockets, ${SENDERS} senders; ` +
    `message text ${TEXT.length} bytes`);
  result.rss_idle_kib = rssKib();

  // 1. chats
  log(`\n-- creating ${CONNS} chats (POST /chat/start, ${START_CONC} in flight)`);
  const chats = new Array(CONNS);
  let failed = 0;
  let firstFail = '';
  const marks = [];
  let win = cpuWindow();
  let t = performance.now();
  const step = Math.max(1, Math.round(CONNS / 5));
  await inPool(
    CONNS,
    START_CONC,
    async (i) => {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          chats[i] = await startChat(i);
          return;
        } catch (e) {
          if (!firstFail) firstFail = e.message;
        }
      }
      failed++;
    },
    (done) => {
      if (done % step === 0 || done === CONNS) marks.push([done, performance.now()]);
    },
  );
  let secs = (performance.now() - t) / 1000;
  let cpu = win();
  const made = chats.filter(Boolean);
  const rates = marks.map(([d, at], k) => {
    const [pd, pat] = k ? marks[k - 1] : [0, t];
    return `${fmt((d - pd) / ((at - pat) / 1000), 0)}`;
  });
  log(`   ${made.length} chats in ${fmt(secs, 1)} s = ${fmt(made.length / secs, 0)} chats/s ` +
    `(per fifth of the run: ${rates.join(', ')}/s); failed ${failed}${firstFail ? ` (first: ${firstFail})` : ''}`);
  log(`   ${cpuText(cpu)}`);
  mark('creating chats', cpu);
  result.chats = { made: made.length, failed, secs, per_sec: made.length / secs };
  if (!made.length) throw new Error('no chat could be started');
  await sleep(2000);
  result.rss_chats_kib = rssKib();

  // 2. sockets
  log(`\n-- opening ${made.length} visitor sockets (${OPEN_CONC} handshakes in flight)`);
  const conns = made.map((c) => new Conn(c));
  let openFailed = 0;
  let firstOpenFail = '';
  let gaveUp = '';
  let skipped = 0;
  win = cpuWindow();
  t = performance.now();
  // Progress every tenth: where the daemon starts to fall behind shows here.
  const tenth = Math.max(1, Math.round(conns.length / 10));
  let stepAt = t;
  let stepWin = cpuWindow();
  const openProgress = (done) => {
    if (gaveUp || (done % tenth !== 0 && done !== conns.length)) return;
    const now = performance.now();
    const c = stepWin();
    const open = conns.filter((x) => x.open).length;
    log(`   ${String(done).padStart(6)} tried, ${open} open, ${openFailed} failed after ${fmt((now - t) / 1000, 1)} s ` +
      `(this tenth ${fmt(tenth / ((now - stepAt) / 1000), 0)}/s); daemon RSS ${fmt((rssKib() ?? 0) / 1024, 0)} MiB, ` +
      `CPU daemon ${fmt(c.daemon_cpu_pct, 0)}%, others ${fmt(c.other_cpu_pct, 0)}%`);
    stepAt = now;
    stepWin = cpuWindow();
  };
  await inPool(
    conns.length,
    OPEN_CONC,
    async (i) => {
      if (gaveUp) {
        skipped++;
        return;
      }
      const r = await conns[i].connect();
      if (!r.ok) {
        openFailed++;
        if (!firstOpenFail) firstOpenFail = r.why;
        if (openFailed >= OPEN_FAIL_MAX && !gaveUp) gaveUp = `${openFailed} sockets failed to open`;
      }
      if ((performance.now() - t) / 1000 > OPEN_MAX_SECS && !gaveUp) gaveUp = `opening took more than ${OPEN_MAX_SECS} s`;
    },
    openProgress,
  );
  secs = (performance.now() - t) / 1000;
  cpu = win();
  const opened = conns.filter((c) => c.open);
  if (gaveUp) log(`   GAVE UP opening: ${gaveUp}; ${skipped} not tried`);
  log(`   ${opened.length} open in ${fmt(secs, 1)} s = ${fmt(opened.length / secs, 0)}/s; failed ${openFailed}` +
    `${firstOpenFail ? ` (first: ${firstOpenFail})` : ''}; ${opened.filter((c) => c.greeted).length} got the greeting first`);
  log(`   ${cpuText(cpu)}`);
  mark('opening sockets', cpu);
  result.open = { opened: opened.length, failed: openFailed, skipped, gave_up: gaveUp, secs, per_sec: opened.length / secs };

  // 3. hold
  log(`\n-- holding ${opened.length} sockets for ${HOLD_SECS} s`);
  holding = true;
  win = cpuWindow();
  const rssSamples = [];
  const holdEnd = performance.now() + HOLD_SECS * 1000;
  while (performance.now() < holdEnd) {
    await sleep(Math.min(5000, holdEnd - performance.now()));
    rssSamples.push(rssKib());
  }
  cpu = win();
  holding = false;
  const stillOpen = opened.filter((c) => !c.closed);
  const t0Ping = performance.now();
  for (const c of stillOpen) c.pongAt = 0;
  for (const c of stillOpen) {
    try {
      c.ws.ping();
    } catch {
      /* counted as no pong */
    }
  }
  const pingEnd = t0Ping + 30_000;
  while (performance.now() < pingEnd && stillOpen.some((c) => !c.pongAt && !c.closed)) await sleep(50);
  const held = stillOpen.filter((c) => c.pongAt && !c.closed);
  const pongMs = stats(held.map((c) => c.pongAt - t0Ping));
  const rssHeld = rssKib();
  const closeCodes = {};
  for (const c of opened) if (c.closed) closeCodes[c.closeCode] = (closeCodes[c.closeCode] || 0) + 1;
  const perConn = rssHeld && result.rss_chats_kib ? (rssHeld - result.rss_chats_kib) / Math.max(1, opened.length) : null;
  log(`   held: ${held.length} of ${opened.length} still open after ${HOLD_SECS} s and answering a ping ` +
    `within 30 s (pong p50 ${fmt(pongMs.p50, 0)} ms, p99 ${fmt(pongMs.p99, 0)}, max ${fmt(pongMs.max, 0)}); ` +
    `${stillOpen.length - held.length} open but silent; closed meanwhile ${opened.length - stillOpen.length}` +
    `${Object.keys(closeCodes).length ? ` (codes ${JSON.stringify(closeCodes)})` : ''}; frames pushed while idle ${counters.holdFrames}`);
  log(`   daemon RSS: idle ${fmt((result.rss_idle_kib ?? 0) / 1024)} MiB, with ${made.length} chats ` +
    `${fmt((result.rss_chats_kib ?? 0) / 1024)} MiB, with ${opened.length} sockets open ${fmt((rssHeld ?? 0) / 1024)} MiB ` +
    `(during the hold ${rssSamples.map((k) => fmt((k ?? 0) / 1024, 0)).join(', ')}) -> ${fmt(perConn, 1)} KiB per connection`);
  log(`   this client's RSS ${fmt(process.memoryUsage().rss / 1048576, 0)} MiB`);
  log(`   while idle: ${cpuText(cpu)}`);
  mark('hold', cpu);
  result.hold = {
    secs: HOLD_SECS,
    opened: opened.length,
    held: held.length,
    closed: opened.length - stillOpen.length,
    close_codes: closeCodes,
    idle_frames: counters.holdFrames,
    pong: pongMs,
    cpu,
  };
  result.rss_held_kib = rssHeld;
  result.rss_per_conn_kib = perConn;

  // 4.-5. messages with everything open
  const senders = held.slice(0, SENDERS);
  const all = `${held.length} sockets open`;
  result.loaded = {
    open: held.length,
    throughput: await throughput(senders, TPUT_SECS, all),
    ...(await latencies(senders, all)),
  };

  // 6. and with only the senders' sockets
  if (QUIET && held.length > senders.length) {
    const rest = conns.filter((c) => c.ws && !senders.includes(c) && !c.closed);
    log(`\n-- closing the other ${rest.length} sockets`);
    for (const c of rest) c.ws.close(1000);
    const end = performance.now() + 15_000;
    while (performance.now() < end && rest.some((c) => !c.closed)) await sleep(100);
    for (const c of rest) if (!c.closed) c.ws.terminate();
    // What the overloaded parts left in the daemon (and the closed sockets' tasks) first.
    const settleEnd = performance.now() + 120_000;
    let settled = false;
    while (performance.now() < settleEnd) {
      const w = cpuWindow();
      await sleep(2000);
      const c = w();
      if ((c.daemon_cpu_pct ?? 0) + c.postgres_cpu_pct < 20) {
        settled = true;
        break;
      }
    }
    if (!settled) log('   the daemon is still busy 120 s after the sockets closed; going on');
    result.rss_after_close_kib = rssKib();
    log(`   daemon RSS now ${fmt((result.rss_after_close_kib ?? 0) / 1024)} MiB`);
    const few = `${senders.length} sockets open`;
    result.quiet = {
      open: senders.length,
      throughput: await throughput(senders, TPUT_SECS, few),
      ...(await latencies(senders, few)),
    };
  }
  result.counters = counters;
  result.disturbed = disturbed;
  log(`\n-- frames: ${counters.errors} errors${counters.firstError ? ` (first: ${counters.firstError})` : ''}, ` +
    `${counters.strays} own events not expected, ${counters.dupSeq} events out of order or twice, ${counters.otherFrames} other frames`);
  for (const c of conns) if (c.ws && !c.closed) c.ws.terminate();
  if (process.env.RESULT_FILE) writeFileSync(process.env.RESULT_FILE, JSON.stringify(result, null, 1));
  summary([result]);
}

// --- the figures as one table (also for earlier runs' JSON) ---------------------------------
function summary(inputs) {
  const runs = inputs.map((x) => (typeof x === 'string' ? JSON.parse(readFileSync(x, 'utf8')) : x));
  const col = (r) => r.label || 'run';
  const rows = [
    ['chats created per s', (r) => fmt(r.chats?.per_sec, 0)],
    ['sockets opened per s', (r) => fmt(r.open?.per_sec, 0)],
    [`connections held ${runs[0].hold?.secs ?? ''} s (of target)`, (r) => `${r.hold?.held ?? '-'} / ${r.conns_target}`],
    ['daemon CPU % while they idle', (r) => fmt(r.hold?.cpu?.daemon_cpu_pct, 0)],
    ['daemon RSS MiB: idle / chats / open', (r) =>
      `${fmt((r.rss_idle_kib ?? 0) / 1024, 0)} / ${fmt((r.rss_chats_kib ?? 0) / 1024, 0)} / ${fmt((r.rss_held_kib ?? 0) / 1024, 0)}`],
    ['RSS per connection KiB', (r) => fmt(r.rss_per_conn_kib, 1)],
  ];
  for (const [key, what] of [['loaded', 'all open'], ['quiet', 'senders only']]) {
    rows.push([`msg/s delivered (${what})`, (r) => fmt(r[key]?.throughput?.msgs_per_sec, 0)]);
    rows.push([`  p50/p99 ms at that load`, (r) =>
      r[key] ? `${fmt(r[key].throughput.latency.p50, 1)} / ${fmt(r[key].throughput.latency.p99, 1)}` : '-']);
    const rates = [...new Set(runs.flatMap((r) => (r[key]?.latencies ?? (r[key] ? [r[key].latency] : [])).map((l) => l.rate)))]
      .sort((a, b) => a - b);
    for (const rate of rates) {
      rows.push([`at ${rate} msg/s p50/p99/max ms (${what})`, (r) => {
        const l = (r[key]?.latencies ?? (r[key] ? [r[key].latency] : [])).find((x) => x.rate === rate);
        if (!l) return r[key] ? 'not run' : '-';
        return `${l.stopped_at !== null && l.stopped_at !== undefined ? 'OVERLOADED ' : ''}` +
          `${fmt(l.latency.p50, 1)} / ${fmt(l.latency.p99, 1)} / ${fmt(l.latency.max, 0)}`;
      }]);
    }
    rows.push([`  never came back`, (r) => (r[key]
      ? `${r[key].throughput.missing + (r[key].latencies ?? [r[key].latency]).reduce((a, l) => a + l.missing, 0)}` : '-')]);
  }
  const w0 = Math.max(...rows.map(([k]) => k.length));
  const widths = runs.map((r) => Math.max(col(r).length, ...rows.map(([, f]) => String(f(r)).length)));
  log('\n== results');
  log(`${''.padEnd(w0)}  ${runs.map((r, i) => col(r).padStart(widths[i])).join('  ')}`);
  for (const [k, f] of rows) log(`${k.padEnd(w0)}  ${runs.map((r, i) => String(f(r)).padStart(widths[i])).join('  ')}`);
  for (const r of runs) {
    if (r.disturbed?.length) {
      log(`note: ${col(r)}: other processes took more than ${DISTURBED_PCT}% of one core in: ${r.disturbed.join(', ')}`);
    }
  }
  log('\ntargets (issue 7):');
  for (const r of runs) {
    const p99 = r.loaded?.latency?.latency?.p99;
    const kept = r.loaded?.latency && r.loaded.latency.rate === r.rate && r.loaded.latency.stopped_at === null &&
      r.loaded.latency.missing === 0;
    const heldOk = (r.hold?.held ?? 0) >= r.conns_target;
    log(`  ${col(r)}: ${r.conns_target} connections held: ${r.hold?.held ?? '-'} -> ${heldOk ? 'met' : 'NOT met'}; ` +
      `p99 < 50 ms at ${r.rate} msg/s (all open): ${fmt(p99, 1)} ms${kept ? '' : ' (the rate was not kept up)'} -> ${kept && p99 < 50 ? 'met' : 'NOT met'}` +
      (r.quiet ? `; with only the senders open ${fmt(r.quiet.latency.latency.p99, 1)} ms` : ''));
  }
}

if (process.argv[2] === '--summary') {
  summary(process.argv.slice(3));
} else if (process.argv[2] === '--wait-quiet') {
  waitQuiet(Number(process.argv[3] || 300));
} else {
  main().catch((e) => {
    console.error(`chat_ws.mjs: ${e.stack || e}`);
    process.exit(1);
  });
}
