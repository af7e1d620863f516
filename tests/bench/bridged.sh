#!/usr/bin/env bash
# Bridged-call benchmark (not part of tests/run.sh). Loopback only. Two relays, measured the
# same way: Hotline, and rtpengine (Debian's rtpengine-daemon, userspace only) as a peer.
#
# For each N in NS and each relay in RELAYS, RUNS times, interleaved (run 1: N=500 Hotline,
# N=500 rtpengine, N=1000 Hotline, ...; every other run starts with the other relay), a
# round of N bridged calls. 4 RTP streams per call: caller->relay, relay->operator,
# operator->relay, relay->caller.
#
# Hotline: a fresh daemon whose one queue ("support") has N operators, and a flow that puts
# callers to 500 straight into it (with hold music). The N operators are added through the
# API of a daemon of their own, stopped before the measured one starts on the same store
# (every addition reloads all operators; at 500 that leaves a daemon ~11 MiB bigger than one
# started on the full store). Their phones register from one SIPp (bridged/register.xml)
# and are set online. Then one SIPp answers for all of them (bridged/operator.xml, RING_MS of
# ringing) and N callers (bridged/caller.xml) come at SETUP_RATE calls/s and stay.
# SIPp sends no RTP. Both ends' SDP point at the media driver, `rtp-meter --bridge`: it
# learns each caller leg from the hold music Hotline sends it, plays a 20 ms PCMA-sized
# stream to it, learns the operator leg when that stream comes out on the operator side,
# plays the operator's stream back; a distinct SSRC per stream, the send time in the
# payload (see the bridge module in rtp-meter/src/main.rs).
#
# rtpengine: a fresh `rtpengine --table=-1` (no kernel module: every packet goes through
# its userspace threads; --num-threads as RTPENGINE_THREADS, else its default, one per
# core), foreground, on 127.0.0.1, its RTP ports in the same range Hotline uses, its ng
# control protocol (bencode over UDP) on NG_PORT. No SIP: bridged/rtpengine_calls.py sets
# up the N calls at SETUP_RATE as a SIP proxy would, an "offer" with the caller's SDP and an
# "answer" with the operator's, both SDPs pointing at the same driver ports as Hotline's
# callers and phones do; from the SDPs rtpengine returns it writes each call's two
# rtpengine addresses (where the caller sends, where the operator sends) to a file, and the
# driver, `rtp-meter --bridge --legs-file`, plays both streams of every call to them: the
# same packets, slots and measurements, only the legs are told instead of learnt. At the
# end the calls are deleted ("delete") and rtpengine stopped.
#
# Once all N calls are bridged (Hotline: the API's busy = N; rtpengine: N calls set up; and
# for both, the driver gets both directions of N calls), two windows of METER_SECS each
# (after WARMUP_SECS), calls and media unchanged:
#
#   window 1: the driver records, per received stream, the packet interval and loss
#     (receive times taken right after recv, so the driver's own scheduling delay is in
#     them, as with call_path.sh's meter) and each packet's send->receive time on its own
#     clock (from right before its send to right after its receive: the relay, two
#     loopback deliveries and the driver's own scheduling). The relay's CPU (% of one core,
#     all its threads) and RSS come from /proc. RSS per call = (RSS at the end of the window
#     - the relay's RSS before the first call) / N; for Hotline "before the first call" is
#     with the N operators registered and online, for rtpengine a second after its start.
#   window 2, the same with tcpdump on lo: relay latency = for each packet, the capture
#     time of the copy the relay sent on minus the capture time of the packet it got,
#     matched by SSRC and sequence number (both relays pass packets through unchanged).
#     Both are kernel timestamps taken at the same point (the packet entering loopback's
#     receive path, in the sending process's context), so the figure is everything from
#     the driver's send to the relay's send: the kernel delivering the packet to the
#     relay's socket, the wait there, the relay waking up, reading, forwarding, and its send
#     up to loopback. Nothing is subtracted. Only about CAPTURE_CALLS of the N calls are
#     captured (a BPF filter on the SSRC), so tcpdump's own work is the same at every N;
#     but the kernel runs the filter for every packet, in the senders' time, so window 2
#     costs the relay a little more than window 1 (both windows' figures are printed).
#
# Both latency figures are upper bounds of what the relay adds when nobody watches. A round
# is marked saturated when the driver sent over 5 ms late (p99) or the machine was over 90%
# busy: the relay, the driver and the rest shared too few cores, and its latencies are mostly
# the wait for one (on 2 cores the driver alone takes ~80% of one at N=500). Prints
# every round, then per relay and N the median of its runs, the ratios Hotline/rtpengine,
# and the targets: 1,000 bridged calls on this machine with Hotline adding < 1 ms p99 (the
# lower of the two bounds; all bridged, nothing lost), and Hotline's relay-added p99 (capture)
# no worse than rtpengine's at every N while its KiB per call is smaller.
# Logs, captures, stats and state: tests/bench/out/bridged/ (call_path.sh wipes
# tests/bench/out when it starts).
# Knobs (environment): NS="500 1000" RELAYS="hotline rtpengine" RUNS=3 SETUP_RATE=100
#   RING_MS=300 METER_SECS=12 WARMUP_SECS=1 SETTLE_SECS=15 (longest wait for all calls to
#   be bridged after the last call was placed), RETRIES=2 and DISTURBED_PCT=25 (a round in
#   one of whose windows other processes took more than that % of one core runs again; the
#   least disturbed attempt counts), QUIET_WAIT=300 (before a round, wait up to that many
#   seconds for other processes to calm down to DISTURBED_PCT), METER_NICE=0,
#   CAPTURE_CALLS=50, KEEP_PCAP=0 (1: keep the captures), RECORD (Hotline's queue
#   records its calls: "always"; the round notes the MB/min written), RELAY_THREADS (Hotline's
#   rtp.relay_threads; default its own, one per core; 0: each call's task relays), BUILD=1 (0: use the binaries as
#   they are), HOTLINE_BIN and METER_BIN (default target/release/{hotline,rtp-meter}; BUILD=1
#   builds those defaults), RTPENGINE_BIN (default: rtpengine on the PATH; installed from
#   rtpengine-daemon when missing), RTPENGINE_THREADS (default: rtpengine's own), and the
#   ports below (NG_PORT=19300: rtpengine's control).
# Shares call_path.sh's lock (/tmp/hotline-call-path.lock) and Hotline RTP range: never
# both at once.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/tests/bench/bridged
OUT=$ROOT/tests/bench/out/bridged
# One run at a time (this or call_path.sh): they share the RTP range and the two cores.
exec 9>/tmp/hotline-call-path.lock
flock -n 9 || { echo "bridged.sh: another benchmark run is in progress (lock /tmp/hotline-call-path.lock)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

NS=${NS:-"500 1000"}
RELAYS=${RELAYS:-"hotline rtpengine"}
RUNS=${RUNS:-3}
SETUP_RATE=${SETUP_RATE:-100}
RING_MS=${RING_MS:-300}
METER_SECS=${METER_SECS:-12}
WARMUP_SECS=${WARMUP_SECS:-1}
SETTLE_SECS=${SETTLE_SECS:-15}
RETRIES=${RETRIES:-2}
DISTURBED_PCT=${DISTURBED_PCT:-25}
METER_NICE=${METER_NICE:-0}
QUIET_WAIT=${QUIET_WAIT:-300}
KEEP_PCAP=${KEEP_PCAP:-0}
CAPTURE_CALLS=${CAPTURE_CALLS:-50}
BUILD=${BUILD:-1}
RTPENGINE_THREADS=${RTPENGINE_THREADS:-}
API_TOKEN=bench-token-bridged-0001
for relay in $RELAYS; do
  case $relay in hotline|rtpengine) ;; *) echo "RELAYS: hotline and/or rtpengine, not $relay"; exit 2;; esac
done
# The relays' RTP range is 20000-29999 (Hotline's, as in call_path.sh; rtpengine gets the
# same one, they never run at once); nothing else may live there. The fixed ports are
# below the kernel's ephemeral range (32768-60999) and apart from call_path.sh's
# (17060-17400) and tests/run.sh's (15060-16070, 18080, 31000-31999).
RTP_PORTS=20000-29999
SIP_PORT=${SIP_PORT:-19060}            # Hotline SIP
HTTP_PORT=${HTTP_PORT:-19080}          # Hotline HTTP (API, /metrics)
PHONES_PORT=${PHONES_PORT:-19100}      # SIPp: every operator's phone (REGISTER, then answers)
CALLERS_PORT=${CALLERS_PORT:-19110}    # SIPp: the callers
PHONES_SIPP_MEDIA=${PHONES_SIPP_MEDIA:-19120}   # SIPp binds media ports (unused; +2 too)
CALLERS_SIPP_MEDIA=${CALLERS_SIPP_MEDIA:-19140}
REG_SIPP_MEDIA=${REG_SIPP_MEDIA:-19160}
CALLER_MEDIA=${CALLER_MEDIA:-19200}    # media driver: where every caller's SDP points
OPERATOR_MEDIA=${OPERATOR_MEDIA:-19202} # media driver: where every operator phone's SDP points
NG_PORT=${NG_PORT:-19300}              # rtpengine's ng control (UDP)
API=http://127.0.0.1:$HTTP_PORT

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# --- cleanup: every process this script starts is in PIDS ------------------------------
PIDS=()
RMEM_FILE=/proc/sys/net/core/rmem_default
RMEM_SAVED=$(cat "$RMEM_FILE" 2>/dev/null || true)
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ -n "$RMEM_SAVED" ] && echo "$RMEM_SAVED" >"$RMEM_FILE" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget() { # pid: no longer ours to clean up
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() { # pid [signal]: stop a process of ours and reap it
  kill -"${2:-TERM}" "$1" 2>/dev/null
  local _
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  forget "$1"
}

# --- tools and build --------------------------------------------------------------------
# need_pkg (shared with tests/run.sh)
. "$ROOT/tests/lib.sh"
need_pkg sipp sip-tester
need_pkg curl curl
need_pkg python3 python3
need_pkg tcpdump tcpdump
has_relay() { [[ " $RELAYS " == *" $1 "* ]]; }
RTPENGINE=${RTPENGINE_BIN:-rtpengine}
if has_relay rtpengine; then
  [ -n "${RTPENGINE_BIN:-}" ] || need_pkg rtpengine rtpengine-daemon
  command -v "$RTPENGINE" >/dev/null || { echo "RTPENGINE_BIN=$RTPENGINE is not a command"; exit 1; }
fi

# Each call holds four sockets in the relay (RTP and RTCP of both legs).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

HOTLINE=${HOTLINE_BIN:-$ROOT/target/release/hotline}
METER=${METER_BIN:-$ROOT/target/release/rtp-meter}
if [ "$BUILD" = 1 ]; then
  say "build"
  cargo build --release -p hotline -p hotline-rtp-meter || exit 1
fi
[ -x "$HOTLINE" ] || ! has_relay hotline || { echo "$HOTLINE is missing (BUILD=$BUILD)"; exit 1; }
[ -x "$METER" ] || { echo "$METER is missing (BUILD=$BUILD)"; exit 1; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
CORES=$(nproc)

echo "machine: $CORES cores, $(uname -r); $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1); ulimit -n $(ulimit -n)"
echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)')"
has_relay hotline && echo "hotline: $HOTLINE, built $(date -r "$HOTLINE" '+%F %T')$([ "$BUILD" = 1 ] || echo ' (BUILD=0: not rebuilt)')"
echo "rtp-meter: $METER, built $(date -r "$METER" '+%F %T')"
has_relay rtpengine && echo "rtpengine: $(command -v "$RTPENGINE"), $("$RTPENGINE" --version 2>&1 | head -1), userspace only (--table=-1), threads: ${RTPENGINE_THREADS:-its default}"

# --- the daemon -------------------------------------------------------------------------
# `env` without any HOTLINE_* variable of the caller's environment.
read -ra CLEAN_ENV <<<"env $(env | awk -F= '/^HOTLINE_/ {printf "-u %s ", $1}')"

# start_daemon NAME N [LOG]: a Hotline on loopback with its own state dir (SQLite; kept
# when it is started again), the API on, and flows of its own: the queue "support" with
# members op0001..opN and the bench flow. Its log: $OUT/NAME/LOG (daemon.log).
start_daemon() {
  local name=$1 n=$2 logname=${3:-daemon.log}
  local dir=$OUT/$name
  mkdir -p "$dir/flows"
  rm -rf "$dir/flows/prompts" && cp -r "$ROOT/ivr-flows/prompts" "$dir/flows/prompts"
  python3 - "$n" >"$dir/flows/queues.toml" <<'EOF'
import sys
n = int(sys.argv[1])
print("# bridged.sh: one queue with every operator of the round.")
print("[queues.support]")
print("members = [%s]" % ", ".join('"op%04d"' % i for i in range(1, n + 1)))
print("ring_timeout = 20\nwrap_up = 0")
import os
if os.environ.get("RECORD"):
    print('record = "%s"' % os.environ["RECORD"])
EOF
  cat >"$dir/flows/bridged.toml" <<'EOF'
# Benchmark flow: straight into the queue, with hold music until an operator answers.
name = "bridged-bench"
numbers = ["500"]
start = "wait"

[steps.wait]
type = "queue"
queue = "support"
music = "hold-music"
max_wait = 600
on_timeout = "bye"
on_unavailable = "bye"

[steps.bye]
type = "hangup"
EOF
  "$HOTLINE" flow check "$dir/flows" >"$dir/flow-check.out" 2>&1 || { cat "$dir/flow-check.out"; return 1; }
  # Everything in the file; no HOTLINE_* variable from the caller's environment may
  # override it. MD5 first: SIPp answers only the first challenge and knows only MD5.
  cat >"$dir/hotline.toml" <<EOF
[sip]
listen = "127.0.0.1:$SIP_PORT"
max_calls = 10000
[api]
token = "$API_TOKEN"
[rtp]
ports = "$RTP_PORTS"
timeout_secs = 0
${RELAY_THREADS:+relay_threads = $RELAY_THREADS}
[http]
listen = "127.0.0.1:$HTTP_PORT"
[store]
state_dir = "$dir/state"
database_url = ""
[flows]
dir = "$dir/flows"
[service]
drain_secs = 1
EOF
  if curl -s -o /dev/null --max-time 1 "$API/healthz"; then
    echo "something already answers on 127.0.0.1:$HTTP_PORT (an older daemon?); not starting $name"
    return 1
  fi
  # A plain command, so $! is the daemon itself (env execs it).
  "${CLEAN_ENV[@]}" "$HOTLINE" serve --config "$dir/hotline.toml" >"$dir/$logname" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  DAEMON_DIR=$dir
  local _
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" = 200 ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "daemon $name did not become healthy:"; cat "$dir/$logname"; return 1
}

# SIGTERM, then wait for the drain (drain_secs = 1) and exit; report what happened.
stop_daemon() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  local i rc
  for i in $(seq 1 150); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    note "daemon did not exit 15 s after SIGTERM; killing it"
    kill -KILL "$DAEMON_PID" 2>/dev/null
  fi
  wait "$DAEMON_PID" 2>/dev/null; rc=$?
  forget "$DAEMON_PID"
  [ "$rc" = 0 ] || note "daemon exit status $rc"
}

# Every process's own CPU ticks (pid ticks name), to see what else ran during a window,
# and first, when the kernel has it, the whole machine's CPU time in ns from the root
# cgroup ("TOTAL ns": exact, and it includes processes that start and end inside the
# window, which a list of processes misses; /proc/stat's figure is tick-sampled).
proc_ticks() {
  python3 -c '
import os
for path, scale in (("/sys/fs/cgroup/cpuacct/cpuacct.usage", 1), ("/sys/fs/cgroup/cpu.stat", 1000)):
    try:
        text = open(path).read()
    except OSError:
        continue
    if scale == 1:
        print("TOTAL", int(text))
    else:
        print("TOTAL", int(dict(l.split() for l in text.splitlines())["usage_usec"]) * 1000)
    break
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            s = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        r = s[s.rfind(")") + 2:].split()
        print(p, int(r[11]) + int(r[12]), s[s.find("(") + 1:s.rfind(")")].replace(" ", "_"))
'
}

# top_others BEFORE AFTER SECS PID...: the CPU (% of one core) that all processes but the
# PIDs used between the snapshots (the machine's total less ours when the snapshots have
# it, else the sum over the other processes), a tab, and the three busiest of them.
top_others() {
  CLK_TCK=$CLK_TCK python3 - "$@" <<'EOF'
import os, sys
before, after, secs, ours = sys.argv[1], sys.argv[2], float(sys.argv[3]), set(sys.argv[4:])
def load(path):
    d, total = {}, None
    for line in open(path):
        pid, ticks, *name = line.split()
        if pid == "TOTAL":
            total = int(ticks)
        else:
            d[pid] = (int(ticks), name[0] if name else "?")
    return d, total
(b, tb), (a, ta) = load(before), load(after)
hz = float(os.environ.get("CLK_TCK") or 100)
delta = lambda pid, t: t - b.get(pid, (0, ""))[0]
busy = sorted(((delta(pid, t), pid, name) for pid, (t, name) in a.items() if pid not in ours), reverse=True)
pct = lambda ticks: ticks / hz / secs * 100
if ta is not None and tb is not None:
    mine = sum(delta(pid, t) for pid, (t, _) in a.items() if pid in ours)
    others = max(0.0, (ta - tb) / 1e9 / secs * 100 - pct(mine))
else:
    others = pct(sum(d for d, _, _ in busy))
print("%.0f\t%s" % (others,
      ", ".join("%s (pid %s) %.0f%%" % (name, pid, pct(d)) for d, pid, name in busy[:3] if d > 0) or "none"))
EOF
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pct_of_core() { # ticks0 ticks1 secs
  python3 -c "print('%.0f' % (($2 - $1) / $CLK_TCK / max($3, 1e-9) * 100))"
}
now_s() { date +%s.%N; }
metric() { # name: value of an unlabelled metric
  curl -s --max-time 2 "$API/metrics" | awk -v m="$1" '$1 == m {print $2; exit}'
}
ops() { python3 "$BENCH/operators.py" "$@"; }
# field NAME LINE: the value of "NAME=value" in an operators.py status line.
field() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2" | head -1; }

# What the daemon logged above INFO, and the call records by end reason. (The "queue
# members without an operator account" warnings are expected while operators are being
# added, which happens in a daemon of its own: they are counted apart.)
daemon_report() {
  local log=$DAEMON_DIR/daemon.log
  [ -f "$log" ] || { note "daemon log missing"; return; }
  python3 - "$log" "${OUT#"$ROOT"/}/$(basename "$DAEMON_DIR")/daemon.log" <<'EOF'
import collections, re, sys
groups, example, expected, lines = collections.Counter(), {}, 0, 0
for line in open(sys.argv[1], errors="replace"):
    lines += 1
    line = re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip("\n"))
    m = re.match(r"^\S+\s+(WARN|ERROR)\s+(.*)", line)
    if not m:
        continue
    if "queue members without an operator account" in line:
        expected += 1
        continue
    key = re.sub(r"[0-9]+(\.[0-9]+)?", "N", re.sub(r"call_id=\S+", "call_id=…", m.group(1) + " " + m.group(2)))[:110]
    groups[key] += 1
    example.setdefault(key, line)
print("   daemon log: %d lines, %d WARN/ERROR (and %d expected 'members without an operator account') (%s)"
      % (lines, sum(groups.values()), expected, sys.argv[2]))
for key, count in groups.most_common(6):
    print("      %6d × %s" % (count, example[key][:300]))
if len(groups) > 6:
    print("      (and %d more kinds)" % (len(groups) - 6))
EOF
  "${CLEAN_ENV[@]}" "$HOTLINE" calls --config "$DAEMON_DIR/hotline.toml" --limit 1000000 2>/dev/null |
    python3 -c '
import csv, sys, collections
rows = list(csv.DictReader(sys.stdin))
reasons = collections.Counter(r.get("end_reason") or "(open)" for r in rows)
print("   call records: %d; end reasons: %s" % (len(rows), ", ".join("%s %d" % kv for kv in reasons.most_common()) or "-"))
' 2>/dev/null || note "call records: could not read"
}

# sipp_totals FILE: the last line of a -trace_stat file as shell assignments.
sipp_totals() {
  python3 - "$1" <<'EOF'
import csv, sys
try:
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter=";"))
except OSError:
    rows = []
if not rows:
    print("S_CREATED=0 S_OK=0 S_FAILED=unknown S_RETRANS=0 S_REASONS=none")
    sys.exit()
last = rows[-1]
reasons = [k[len("Failed"):-3] + "=" + last[k] for k in last
           if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and last[k] not in ("0", "")]
print("S_CREATED=%s S_OK=%s S_FAILED=%s S_RETRANS=%s S_REASONS=%s" % (
    last["TotalCallCreated"], last["SuccessfulCall(C)"], last["FailedCall(C)"],
    last["Retransmissions(C)"], ",".join(reasons) or "none"))
EOF
}

# driver_window I: wait until the media driver has printed window I's result line (the
# caller's $dir and $driver_pid; bash's locals are visible to the functions it calls).
driver_window() {
  local _
  for _ in $(seq 1 $(( (WARMUP_SECS + METER_SECS + 20) * 10 ))); do
    [ "$(grep -c '^{' "$dir/driver.out" 2>/dev/null)" -ge "$1" ] && return 0
    kill -0 "$driver_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- the two windows (both relays) ------------------------------------------------------
# window_one and window_two run inside a round and use its locals (bash's locals are
# visible to the functions it calls): $dir, $N, $driver_pid, $RELAY_PID and OTHERS_OURS
# (our other processes of the round: not "other processes").
#
# window_one: the driver measures; the script notes what else ran. Sets wsecs, other_pct.
window_one() {
  proc_ticks >"$dir/procs0"
  local w0 w1 others
  w0=$(now_s)
  touch "$dir/start1"
  driver_window 1
  w1=$(now_s)
  proc_ticks >"$dir/procs1"
  wsecs=$(python3 -c "print($w1 - $w0)")
  others=$(top_others "$dir/procs0" "$dir/procs1" "$wsecs" "$RELAY_PID" "$driver_pid" "${OTHERS_OURS[@]}" $$)
  other_pct=${others%%$'\t'*}
  grep -v '^{' "$dir/driver.out" | sed 's/^/   /'
  note "CPU in the window, % of one core: all other processes $other_pct (busiest: ${others#*$'\t'})"
}

# window_two: the same with tcpdump: relay latency. Only about CAPTURE_CALLS calls are
# captured (those whose index, in the SSRC, divides by k), so that what tcpdump costs
# does not grow with N. Sets cap_json, k, td_cpu, cap_other_pct.
window_two() {
  local pcap=$dir/relay.pcap td_pid c0 c1 cap_others
  cap_json=$dir/capture.json td_cpu=0
  rm -f "$cap_json"
  k=$(( N / CAPTURE_CALLS )); [ "$k" -ge 1 ] || k=1
  tcpdump -i lo -n -s 80 -B 16384 --time-stamp-precision=nano -w "$pcap" \
    "udp and (port $CALLER_MEDIA or port $OPERATOR_MEDIA) and (udp[16:4] & 0xffffff) % $k = 0" \
    2>"$dir/tcpdump.err" &
  td_pid=$!
  PIDS+=("$td_pid")
  for _ in $(seq 1 50); do grep -q listening "$dir/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  proc_ticks >"$dir/procs2"
  c0=$(now_s)
  touch "$dir/start2"
  driver_window 2
  c1=$(now_s)
  proc_ticks >"$dir/procs3"
  cap_others=$(top_others "$dir/procs2" "$dir/procs3" "$(python3 -c "print($c1 - $c0)")" \
    "$RELAY_PID" "$driver_pid" "${OTHERS_OURS[@]}" "$td_pid" $$)
  cap_other_pct=${cap_others%%$'\t'*}
  td_cpu=$(pct_of_core 0 "$(cpu_ticks "$td_pid")" "$(python3 -c "print($c1 - $c0)")")
  stop_pid "$td_pid" INT
  touch "$dir/stop"
  grep -v '^{' "$dir/driver.out" | tail -n +2 | sed 's/^/   /'
  note "capture of 1 call in ${k}: $(grep -E 'captured|dropped by kernel' "$dir/tcpdump.err" | paste -sd, | sed 's/,/, /g'); CPU, % of one core: tcpdump ${td_cpu}, all other processes $cap_other_pct (busiest: ${cap_others#*$'\t'})"
  if python3 "$BENCH/relay_latency.py" "$pcap" --driver-ports "$CALLER_MEDIA,$OPERATOR_MEDIA" \
      --rtp-range "$RTP_PORTS" >"$cap_json" 2>"$dir/relay_latency.err"; then
    python3 - "$cap_json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
f = lambda q: "p50 %.3f p99 %.3f p99.9 %.3f max %.3f ms" % (q["p50_ms"], q["p99_ms"], q["p999_ms"], q["max_ms"]) if q["n"] else "-"
print("   relay latency (capture, %.1f s, %d packets matched of %d in; lost in the relay %d): %s" % (
    c["capture_s"], c["matched"], c["in_packets"], c["lost_in_relay"], f(c["latency"])))
print("     caller->operator %s; operator->caller %s" % (f(c["latency_to_operator"]), f(c["latency_to_caller"])))
print("     intervals by kernel time: into the relay %s; out of the relay %s" % (f(c["interval_in"]), f(c["interval_out"])))
print("     100 ms slices with a packet over 1 ms: %d of %d; worst: %s" % (c["slices_over_1ms"], c["slices"],
      ", ".join("at %.1f s max %.2f ms (%d packets over 1 ms)" % (w["at_s"], w["max_ms"], w["over_1ms"]) for w in c["worst_slices"])))
PY
  else
    note "capture analysis failed: $(head -c 300 "$dir/relay_latency.err")"
  fi
  [ "$KEEP_PCAP" = 1 ] || rm -f "$pcap"
}

# start_driver [ARG...]: the media driver, bound before anything is sent to it, with 4 MiB
# receive buffers (rmem_default, set around its start only) so that a moment without the
# CPU is not counted as loss. Sets driver_pid; 1 when it did not start.
start_driver() {
  [ -n "$RMEM_SAVED" ] && echo 4194304 >"$RMEM_FILE" 2>/dev/null
  nice -n "$METER_NICE" "$METER" --bridge --caller-port "$CALLER_MEDIA" --operator-port "$OPERATOR_MEDIA" \
    --start-file "$dir/start1" --start-file "$dir/start2" --stop-file "$dir/stop" --status-file "$dir/driver.status" \
    --warmup "$WARMUP_SECS" --seconds "$METER_SECS" --max-wait 600 --pid "$RELAY_PID" \
    --clk-tck "$CLK_TCK" --label "$name" "$@" >"$dir/driver.out" 2>"$dir/driver.err" &
  driver_pid=$!
  PIDS+=("$driver_pid")
  local _
  for _ in $(seq 1 50); do grep -q listening "$dir/driver.err" 2>/dev/null && break; sleep 0.1; done
  [ -n "$RMEM_SAVED" ] && echo "$RMEM_SAVED" >"$RMEM_FILE" 2>/dev/null
  if ! kill -0 "$driver_pid" 2>/dev/null; then
    note "the media driver did not start: $(head -c 300 "$dir/driver.err")"
    forget "$driver_pid"
    return 1
  fi
}

# driver_both: how many calls the driver gets both directions of (its status file).
driver_both() {
  local b; b=$(awk '{print $4}' "$dir/driver.status" 2>/dev/null); echo "${b:-0}"
}

# write_result KEY=VALUE...: the round's result.json, from the driver's lines, the
# capture's analysis and the round's figures (Python keyword arguments).
write_result() {
  local extra; extra=$(IFS=,; echo "$*")
  python3 - "$dir/driver.out" "$cap_json" >"$dir/result.json" <<EOF
import json, sys
def load(path):
    try:
        for line in open(path):
            if line.startswith("{"):
                return json.loads(line)
    except (OSError, ValueError):
        pass
    return None
def lines(path):
    try:
        return [json.loads(l) for l in open(path) if l.startswith("{")]
    except (OSError, ValueError):
        return []
got = lines(sys.argv[1])
m = got[0] if got else {"error": "no driver result"}
m["with_capture"] = got[1] if len(got) > 1 else None
m.update(n=$N, capture=load(sys.argv[2]), window_other_cpu_pct=${other_pct:-0},
         capture_other_cpu_pct=${cap_other_pct:-0}, other_cpu_pct=max(${other_pct:-0}, ${cap_other_pct:-0}),
         tcpdump_cpu_pct=${td_cpu:-0}, capture_every=${k:-0}, $extra)
print(json.dumps(m))
EOF
}

# --- a Hotline round --------------------------------------------------------------------
# round_hotline N NAME: N bridged calls through Hotline; its directory is $OUT/NAME, its
# result $OUT/NAME/result.json.
round_hotline() {
  local N=$1 name=$2
  local dir=$OUT/$name
  local fail_json="{\"relay\":\"hotline\",\"n\":$N,\"other_cpu_pct\":0"
  echo
  echo "-- Hotline, N=$N (${name})"
  # The operator accounts go in through the API of a daemon of their own: each one added
  # makes the daemon reload every operator, and what that leaves in its heap should not
  # count as the calls' memory. The measured daemon then starts on the same store.
  local t0; t0=$(now_s)
  if ! start_daemon "$name" "$N" daemon-setup.log; then
    echo "$fail_json,\"error\":\"daemon did not start\"}" >"$dir/result.json"; return
  fi
  local added=0
  ops add "$API" "$API_TOKEN" "$N" >"$dir/operators-add.out" && added=1
  note "setup daemon: $(cat "$dir/operators-add.out"); its RSS then $(( $(rss_kib "$DAEMON_PID") / 1024 )) MiB"
  stop_daemon
  if [ "$added" != 1 ] || ! start_daemon "$name" "$N"; then
    echo "$fail_json,\"error\":\"operators could not be added or the daemon did not start\"}" >"$dir/result.json"; return
  fi
  RELAY_PID=$DAEMON_PID
  local rss_start; rss_start=$(rss_kib "$DAEMON_PID")

  # Phones registered and operators online.
  python3 -c '
import sys
n = int(sys.argv[1])
print("SEQUENTIAL")
for i in range(1, n + 1):
    print("op%04d;[authentication username=op%04d password=bench-pass-%04d];" % (i, i, i))
' "$N" >"$dir/users.csv"
  sipp -sf "$BENCH/register.xml" "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p "$PHONES_PORT" \
    -mi 127.0.0.1 -mp "$REG_SIPP_MEDIA" -inf "$dir/users.csv" -m "$N" -l "$N" -r 200 -rp 1000 \
    -nostdin -timeout 60s -timeout_error -trace_stat -stf "$dir/register.csv" -fd 1 \
    -trace_err -error_file "$dir/register_errors.log" >"$dir/register.log" 2>&1
  local reg_rc=$?
  eval "$(sipp_totals "$dir/register.csv")"
  [ "$reg_rc" = 0 ] || note "REGISTER: SIPp exit $reg_rc; successful $S_OK of $N, failed $S_FAILED ($S_REASONS)"

  # The phones' SIPp: answers every operator leg, for the whole round.
  sipp -sf "$BENCH/operator.xml" -i 127.0.0.1 -p "$PHONES_PORT" -mi 127.0.0.1 -mp "$PHONES_SIPP_MEDIA" \
    -key operator_media "$OPERATOR_MEDIA" -d "$RING_MS" -l 100000 -nostdin \
    -trace_stat -stf "$dir/phones.csv" -fd 1 -trace_err -error_file "$dir/phones_errors.log" \
    >"$dir/phones.log" 2>&1 &
  local phones_pid=$!
  PIDS+=("$phones_pid")
  sleep 0.3
  if ! kill -0 "$phones_pid" 2>/dev/null; then
    note "the phones' SIPp did not start: $(grep -h -m1 -i 'unable\|error' "$dir/phones.log" "$dir/phones_errors.log" 2>/dev/null | cut -c1-160)"
    forget "$phones_pid"; stop_daemon
    echo "$fail_json,\"error\":\"SIPp (phones) could not start\",\"retry\":true}" >"$dir/result.json"; return
  fi
  ops online "$API" "$API_TOKEN" "$N" >"$dir/operators-online.out" || cat "$dir/operators-online.out"
  local st= _
  for _ in $(seq 1 40); do
    st=$(ops status "$API" "$API_TOKEN")
    [ "$(field registered "$st")" = "$N" ] && [ "$(field available "$st")" = "$N" ] && break
    sleep 0.25
  done
  note "operators ready after $(python3 -c "print('%.1f' % ($(now_s) - $t0))")s: $st"
  sleep 1
  local idle; idle=$(rss_kib "$DAEMON_PID")

  local driver_pid
  if ! start_driver; then
    stop_pid "$phones_pid"; stop_daemon
    echo "$fail_json,\"error\":\"media driver could not start\",\"retry\":true}" >"$dir/result.json"; return
  fi

  # The callers. Every call stays until after the second window, however long the
  # bridging takes (up to SETTLE_SECS after the last call), then hangs up.
  local ramp=$(( (N + SETUP_RATE - 1) / SETUP_RATE ))
  local hold_ms=$(( (ramp + SETTLE_SECS + 2 * (WARMUP_SECS + METER_SECS) + 10) * 1000 ))
  sipp -sf "$BENCH/caller.xml" -s 500 "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p "$CALLERS_PORT" \
    -mi 127.0.0.1 -mp "$CALLERS_SIPP_MEDIA" -key caller_media "$CALLER_MEDIA" \
    -r "$SETUP_RATE" -rp 1000 -l "$N" -m "$N" -d "$hold_ms" -nostdin \
    -trace_stat -stf "$dir/callers.csv" -fd 1 -trace_err -error_file "$dir/callers_errors.log" \
    >"$dir/callers.log" 2>&1 &
  local callers_pid=$!
  PIDS+=("$callers_pid")
  local t_start; t_start=$(now_s)

  # Wait until every call is bridged: the queue has N busy operators and the driver gets
  # both directions of N calls.
  local busy=0 both=0 deadline=$((SECONDS + ramp + SETTLE_SECS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    st=$(ops status "$API" "$API_TOKEN")
    busy=$(field busy "$st"); busy=${busy:-0}
    both=$(driver_both)
    [ "$busy" -ge "$N" ] && [ "$both" -ge "$N" ] && break
    kill -0 "$callers_pid" 2>/dev/null || break
    sleep 0.25
  done
  local t_up; t_up=$(python3 -c "print('%.1f' % ($(now_s) - $t_start))")
  local connected; connected=$(grep -c 'caller connected to operator' "$DAEMON_DIR/daemon.log")
  note "after ${t_up}s: $st; driver: $(cat "$dir/driver.status" 2>/dev/null || echo no status); 'caller connected to operator' logged $connected times"
  [ "$busy" -ge "$N" ] && [ "$both" -ge "$N" ] || note "NOT all $N calls bridged (busy $busy, media both ways $both)"

  local OTHERS_OURS=("$callers_pid" "$phones_pid")
  local wsecs other_pct cap_json k td_cpu cap_other_pct callers_t0 phones_t0 callers_cpu phones_cpu
  callers_t0=$(cpu_ticks "$callers_pid"); phones_t0=$(cpu_ticks "$phones_pid")
  local rec0 rec1 rec_mb_min=0
  rec0=$(du -sb "$dir/state/recordings" 2>/dev/null | cut -f1)
  window_one
  rec1=$(du -sb "$dir/state/recordings" 2>/dev/null | cut -f1)
  if [ -n "$rec1" ]; then
    rec_mb_min=$(python3 -c "print('%.1f' % ((${rec1:-0} - ${rec0:-0}) / $wsecs * 60 / 1e6))")
    note "recordings: $(find "$dir/state/recordings" -name '*.wav' | wc -l) files, ${rec_mb_min} MB/min written during the window"
  fi
  callers_cpu=$(pct_of_core "$callers_t0" "$(cpu_ticks "$callers_pid")" "$wsecs")
  phones_cpu=$(pct_of_core "$phones_t0" "$(cpu_ticks "$phones_pid")" "$wsecs")
  st=$(ops status "$API" "$API_TOKEN")
  note "at the end of the window: $st; CPU, % of one core: SIPp callers $callers_cpu, SIPp phones $phones_cpu"
  window_two
  stop_pid "$driver_pid"
  local rss_end; rss_end=$(rss_kib "$DAEMON_PID")

  # The callers hang up when their pause runs out; Hotline should end the operator legs
  # and every operator should be available again (wrap_up = 0).
  note "waiting for the callers to hang up (their pause: $((hold_ms / 1000)) s)"
  for _ in $(seq 1 $(( (hold_ms / 1000 + ramp + 30) * 10 ))); do
    kill -0 "$callers_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$callers_pid" 2>/dev/null && note "SIPp callers still running; stopping them"
  stop_pid "$callers_pid"
  eval "$(sipp_totals "$dir/callers.csv")"
  local callers_ok=$S_OK callers_failed=$S_FAILED
  note "SIPp callers: created $S_CREATED, successful $S_OK, failed $S_FAILED, retransmissions $S_RETRANS$([ "$S_REASONS" = none ] || echo "; failures: $S_REASONS")"
  local left=0
  for _ in $(seq 1 60); do
    left=$(metric hotline_active_calls); left=${left%.*}; left=${left:-0}
    [ "$left" -le 0 ] && break
    sleep 0.5
  done
  sleep 1.5   # the phones' SIPp writes its statistics every second
  stop_pid "$phones_pid"
  eval "$(sipp_totals "$dir/phones.csv")"
  note "SIPp phones: operator legs $S_CREATED, successful $S_OK, failed $S_FAILED$([ "$S_REASONS" = none ] || echo "; failures: $S_REASONS")"
  st=$(ops status "$API" "$API_TOKEN")
  note "after the hang-ups: active calls ${left}; $st"
  stop_daemon
  daemon_report

  write_result "relay='hotline'" "run=$RUN" "rss_start_kib=$rss_start" "idle_rss_kib=$idle" \
    "rss_after_capture_kib=${rss_end:-0}" "api_busy=$busy" "logged_connected=$connected" \
    "callers_ok='$callers_ok'" "callers_failed='$callers_failed'" "phones_ok='$S_OK'" \
    "phones_failed='$S_FAILED'" "active_after=${left:-0}" "callers_cpu_pct=${callers_cpu:-0}" \
    "phones_cpu_pct=${phones_cpu:-0}" "status_after='''$st'''" "recorded_mb_per_min=${rec_mb_min:-0}"
}

# --- an rtpengine round -----------------------------------------------------------------
# round_rtpengine N NAME: the same N calls through rtpengine, set up over ng.
round_rtpengine() {
  local N=$1 name=$2
  local dir=$OUT/$name
  local fail_json="{\"relay\":\"rtpengine\",\"n\":$N,\"other_cpu_pct\":0"
  mkdir -p "$dir"
  echo
  echo "-- rtpengine, N=$N (${name})"
  local ng=127.0.0.1:$NG_PORT calls="python3 $BENCH/rtpengine_calls.py"
  if $calls ping "$ng" >/dev/null 2>&1; then
    note "something already answers ng on $ng (an older rtpengine?); not starting one"
    echo "$fail_json,\"error\":\"ng port in use\"}" >"$dir/result.json"; return
  fi
  # Userspace only (--table=-1), in the foreground, its log on stderr; no config file; RTP
  # on loopback in the relays' range; a deleted call's ports free at once.
  "$RTPENGINE" --config-file=none --table=-1 --foreground --log-stderr \
    --interface=127.0.0.1 --listen-ng="$ng" --port-min="${RTP_PORTS%-*}" --port-max="${RTP_PORTS#*-}" \
    --delete-delay=0 --timeout=600 ${RTPENGINE_THREADS:+--num-threads="$RTPENGINE_THREADS"} \
    >"$dir/rtpengine.log" 2>&1 &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  local _ up=0
  for _ in $(seq 1 50); do
    $calls ping "$ng" >/dev/null 2>&1 && { up=1; break; }
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$up" != 1 ]; then
    note "rtpengine did not answer ng: $(tail -c 300 "$dir/rtpengine.log")"
    stop_pid "$RELAY_PID"
    echo "$fail_json,\"error\":\"rtpengine did not start\",\"retry\":true}" >"$dir/result.json"; return
  fi
  note "rtpengine pid $RELAY_PID, $(ls "/proc/$RELAY_PID/task" | wc -l) threads"
  local rss_start; rss_start=$(rss_kib "$RELAY_PID")
  sleep 1
  local idle; idle=$(rss_kib "$RELAY_PID")

  local driver_pid
  if ! start_driver --legs-file "$dir/legs.txt"; then
    stop_pid "$RELAY_PID"
    echo "$fail_json,\"error\":\"media driver could not start\",\"retry\":true}" >"$dir/result.json"; return
  fi
  # The calls, at SETUP_RATE: offer + answer each; then the driver reads their legs.
  local t_start; t_start=$(now_s)
  $calls setup "$ng" "$N" "127.0.0.1:$CALLER_MEDIA" "127.0.0.1:$OPERATOR_MEDIA" "$dir/legs.txt" \
    "$SETUP_RATE" >"$dir/setup.out" 2>&1
  local set_up; set_up=$(wc -l <"$dir/legs.txt" 2>/dev/null || echo 0)
  note "$(head -c 400 "$dir/setup.out")"
  local both=0 deadline=$((SECONDS + SETTLE_SECS))
  while [ "$SECONDS" -lt "$deadline" ]; do
    both=$(driver_both)
    [ "$both" -ge "$N" ] && break
    kill -0 "$driver_pid" 2>/dev/null || break
    sleep 0.25
  done
  note "after $(python3 -c "print('%.1f' % ($(now_s) - $t_start))")s: $set_up calls set up; driver: $(cat "$dir/driver.status" 2>/dev/null || echo no status)"
  [ "$set_up" -ge "$N" ] && [ "$both" -ge "$N" ] || note "NOT all $N calls bridged (set up $set_up, media both ways $both)"

  local OTHERS_OURS=()
  local wsecs other_pct cap_json k td_cpu cap_other_pct
  window_one
  window_two
  stop_pid "$driver_pid"
  local rss_end; rss_end=$(rss_kib "$RELAY_PID")
  $calls delete "$ng" "$N" >"$dir/delete.out" 2>&1
  note "$(head -c 300 "$dir/delete.out")"
  stop_pid "$RELAY_PID"
  python3 - "$dir/rtpengine.log" "${dir#"$ROOT"/}/rtpengine.log" <<'EOF'
import collections, re, sys
levels, example, lines = collections.Counter(), {}, 0
for line in open(sys.argv[1], errors="replace"):
    lines += 1
    m = re.search(r"\b(WARNING|ERR|ERROR|CRIT|ALERT|EMERG)\b", line)
    if m:
        levels[m.group(1)] += 1
        example.setdefault(m.group(1), line.strip()[:200])
print("   rtpengine log: %d lines, %s (%s)" % (lines, ", ".join("%s %d" % kv for kv in levels.items()) or
      "no warnings or errors", sys.argv[2]))
for k, v in example.items():
    print("      e.g. %s" % v)
EOF

  write_result "relay='rtpengine'" "run=$RUN" "rss_start_kib=$rss_start" "idle_rss_kib=$idle" \
    "rss_after_capture_kib=${rss_end:-0}" "api_busy=$set_up" "callers_ok='$set_up'" \
    "callers_failed='$((N - set_up))'" "phones_ok='$set_up'" "phones_failed='0'" "active_after=0"
}

# --- the rounds -------------------------------------------------------------------------
# Before a round: wait (up to QUIET_WAIT seconds) until other processes take at most
# DISTURBED_PCT % of one core over 2 s. A round that other processes disturbed anyway (in
# its window or its capture) runs again, up to RETRIES times; the least disturbed attempt
# is the one reported.
wait_quiet() {
  local waited=0 p0 p1 others pct
  while :; do
    p0=$(mktemp); p1=$(mktemp)
    proc_ticks >"$p0"; sleep 2; proc_ticks >"$p1"
    others=$(top_others "$p0" "$p1" 2 $$); rm -f "$p0" "$p1"
    pct=${others%%$'\t'*}
    [ "$pct" -le "$DISTURBED_PCT" ] && break
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      note "the machine is still busy (${pct}% of one core: ${others#*$'\t'}); going ahead"; break
    fi
    [ "$waited" = 0 ] && note "waiting for the machine to be quiet (${pct}% of one core: ${others#*$'\t'})"
    sleep 3; waited=$((waited + 5))
  done
}
say "bridged calls: relays ($RELAYS), N in ($NS), $RUNS run(s) interleaved, $SETUP_RATE calls/s, two ${METER_SECS}s windows (the second one with a capture)"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
for RUN in $(seq 1 "$RUNS"); do
  # Every other run starts with the other relay, so neither always goes first.
  order=$RELAYS
  [ $((RUN % 2)) = 0 ] && order=$(tr ' ' '\n' <<<"$RELAYS" | grep . | tac | paste -sd' ')
  for N in $NS; do
    for relay in $order; do
      best= best_other=
      for try in $(seq 1 $((RETRIES + 1))); do
        name=$relay-n$N-run$RUN; [ "$try" -gt 1 ] && name=$name.try$try
        wait_quiet
        "round_$relay" "$N" "$name"
        other=$(python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print(999 if r.get("retry") else int(float(r.get("other_cpu_pct", 0))))' "$OUT/$name/result.json" 2>/dev/null || echo 0)
        if [ -z "$best" ] || [ "$other" -lt "$best_other" ]; then best=$name best_other=$other; fi
        [ "$other" -le "$DISTURBED_PCT" ] && break
        if [ "$try" -le "$RETRIES" ]; then
          if [ "$other" = 999 ]; then note "the round could not run; running it again in 5 s"; sleep 5
          else note "other processes took ${other}% of one core in this window; running it again"; fi
        fi
      done
      python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); r.setdefault("relay", sys.argv[2]); r.setdefault("run", int(sys.argv[3])); r["round"] = sys.argv[4]; print(json.dumps(r))' \
        "$OUT/$best/result.json" "$relay" "$RUN" "$best" >>"$RESULTS"
    done
  done
done

# --- summary ----------------------------------------------------------------------------
say "results"
CORES=$CORES DISTURBED_PCT=$DISTURBED_PCT python3 "$BENCH/summary.py" "$RESULTS" | tee "$OUT/summary.txt"
echo
echo "details: tests/bench/out/bridged/ (daemon and rtpengine logs, SIPp stats and errors, driver output, results.jsonl, summary.txt)"
