#!/usr/bin/env bash
# Browser-phone benchmark (issue 17; not part of tests/run.sh). Loopback only.
#
# For each N in NS: N concurrent browser-phone legs bridged to N SIPp callers.
#
# A fresh daemon whose one queue ("support") has N operators op0001..opN and a flow that
# puts callers to 500 straight into it (with hold music), as in bridged.sh. The operators
# are added through the API of a daemon of their own (bridged/operators.py), then each
# gets a console user (`hotline user add`, password bench-web-pass-NNNN) while no daemon
# runs; the measured daemon starts on that store.
#
# The browsers are simulated by `browser-legs` (tests/bench/rtp-meter/src/bin/
# browser-legs.rs): one str0m peer connection per leg, not N Chromiums. It logs every
# operator in (POST /login), opens /console/live, says use_browser, and answers each ring
# with a WebRTC offer (PCMU, PCMA; one loopback host candidate); the daemon's ICE-lite
# answer, DTLS-SRTP, then a 20 ms PCMU frame every 20 ms. Then the operators are set
# online (API) and N SIPp callers (webrtc/caller.xml, PCMU, no RTP of their own) come at
# SETUP_RATE calls/s and stay. Every caller's SDP points at one UDP port of browser-legs,
# which learns each caller from the hold music and plays it a 20 ms frame every 20 ms.
#
# Every frame carries its send time on browser-legs' clock, so each direction's one-way
# time through the daemon is measured by the one process at both ends: from right before
# the frame goes to str0m (browser) or to send_to (caller) to right after it was read
# (and, for the browser, decrypted). That is the daemon's relay (a browser leg is the
# call's RTP relay plus the leg's SRTP side, with one more loopback hop between them
# inside the daemon), two loopback deliveries, and browser-legs' own scheduling and
# crypto: an upper bound of what the daemon adds. Nothing is subtracted. (bridged.sh's
# "driver" figure is the same kind of bound for plain SIP legs; its tcpdump figure has no
# counterpart here, as the browser side is encrypted.)
#
# The daemon alone: a tcpdump on lo of CAPTURE_CALLS of the legs (their ports, from
# browser-legs' map) during the window; webrtc/relay_latency.py pairs each packet the daemon
# sent on with the last one it got on that leg and direction (kernel timestamps of the one
# capture): from the packet entering the daemon's socket to its forwarded copy leaving
# (for a browser leg: the call's relay, the loopback hop to the leg, SRTP). That is the
# "relay added" figure, as bridged.sh's capture figure is for plain legs.
#
# Once all N legs are connected and both ends hear each other, WARMUP_SECS, then one
# window of METER_SECS (with the capture running): one-way p50/p99, receive interval p99 per stream, frames sent and
# received, how late browser-legs' own sends were (p99 over 5 ms: it was short of CPU, the
# round is marked saturated), the daemon's CPU (% of one core, all threads) and RSS from
# /proc, browser-legs' CPU and the whole machine's. KiB per call = (RSS at the end of the
# window - RSS with the N phones attached and online, before the first call) / N.
#
# BRIDGED=1 then runs bridged.sh (Hotline only, RUNS=1, the same NS) for plain SIP legs
# measured its way, and the table compares CPU per leg (the goal: a browser leg costs no
# more than twice a plain bridged leg) and one-way/transit p99.
#
# Knobs (environment): NS="100 250 500" SETUP_RATE=50 WARMUP_SECS=2 METER_SECS=10
#   MAX_WAIT=120 (longest wait for all legs to be up after the phones are ready),
#   QUIET_WAIT=300 (before a round, wait up to that long for other processes to take at
#   most DISTURBED_PCT=25 % of one core), RETRIES=1 (a round in whose window other
#   processes took more than DISTURBED_PCT runs again; the least disturbed one counts),
#   CAPTURE_CALLS=20, KEEP_PCAP=0, BRIDGED=1 (BRIDGED_FROM=FILE: instead, a results.jsonl
#   of an earlier bridged.sh run), HOTLINE_BIN (default target/release/hotline; never built here), LEGS_BIN
#   (default /work/target-check/release/browser-legs, else target/release/browser-legs;
#   BUILD=1 builds it with `cargo build --release -p hotline-rtp-meter --bin browser-legs`
#   into CARGO_TARGET_DIR), and the ports below.
# Logs and results: tests/bench/out/webrtc_legs/. Shares bridged.sh's lock
# (/tmp/hotline-call-path.lock) and RTP range; bridged.sh runs after the lock is released.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/tests/bench
OUT=$ROOT/tests/bench/out/webrtc_legs

NS=${NS:-"100 250 500"}
SETUP_RATE=${SETUP_RATE:-50}
WARMUP_SECS=${WARMUP_SECS:-2}
METER_SECS=${METER_SECS:-10}
MAX_WAIT=${MAX_WAIT:-120}
BRIDGED=${BRIDGED:-1}
BUILD=${BUILD:-0}
RETRIES=${RETRIES:-1}
DISTURBED_PCT=${DISTURBED_PCT:-25}
QUIET_WAIT=${QUIET_WAIT:-300}
CAPTURE_CALLS=${CAPTURE_CALLS:-20}
KEEP_PCAP=${KEEP_PCAP:-0}
API_TOKEN=bench-token-webrtc-legs-01
RTP_PORTS=20000-29999
SIP_PORT=${SIP_PORT:-19460}            # Hotline SIP
HTTP_PORT=${HTTP_PORT:-19480}          # Hotline HTTP (API, console)
CALLERS_PORT=${CALLERS_PORT:-19510}    # SIPp: the callers
CALLERS_SIPP_MEDIA=${CALLERS_SIPP_MEDIA:-19540}
CALLER_MEDIA=${CALLER_MEDIA:-19600}    # browser-legs: where every caller's SDP points
API=http://127.0.0.1:$HTTP_PORT

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }

exec 9>/tmp/hotline-call-path.lock
flock -n 9 || { echo "webrtc_legs.sh: another benchmark run is in progress (lock /tmp/hotline-call-path.lock)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

# --- cleanup: every process this script starts is in PIDS --------------------------------
PIDS=()
RMEM_FILE=/proc/sys/net/core/rmem_default
RMEM_SAVED=$(cat "$RMEM_FILE" 2>/dev/null || true)
restore_rmem() { [ -n "$RMEM_SAVED" ] && echo "$RMEM_SAVED" >"$RMEM_FILE" 2>/dev/null; return 0; }
cleanup() {
  restore_rmem
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget() {
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() { # pid [signal]
  kill -"${2:-TERM}" "$1" 2>/dev/null
  local _
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  forget "$1"
}

. "$ROOT/tests/lib.sh"
need_pkg sipp sip-tester
need_pkg curl curl
need_pkg python3 python3
need_pkg tcpdump tcpdump
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

HOTLINE=${HOTLINE_BIN:-$ROOT/target/release/hotline}
if [ -z "${LEGS_BIN:-}" ]; then
  LEGS_BIN=${CARGO_TARGET_DIR:-/work/target-check}/release/browser-legs
  [ -x "$LEGS_BIN" ] || [ "$BUILD" = 1 ] || LEGS_BIN=$ROOT/target/release/browser-legs
fi
if [ "$BUILD" = 1 ]; then
  say "build"
  CARGO_TARGET_DIR=$(dirname "$(dirname "$LEGS_BIN")") cargo build --release --locked -p hotline-rtp-meter --bin browser-legs || exit 1
fi
[ -x "$HOTLINE" ] || { echo "$HOTLINE is missing (build it: cargo build --release -p hotline)"; exit 1; }
[ -x "$LEGS_BIN" ] || { echo "$LEGS_BIN is missing (BUILD=1 builds it)"; exit 1; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
echo "machine: $(nproc) cores, $(uname -r); $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
echo "git: $(git rev-parse --short HEAD 2>/dev/null)$(git status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)')"
echo "hotline: $HOTLINE, built $(date -r "$HOTLINE" '+%F %T'); browser-legs: $LEGS_BIN, built $(date -r "$LEGS_BIN" '+%F %T')"

read -ra CLEAN_ENV <<<"env $(env | awk -F= '/^HOTLINE_/ {printf "-u %s ", $1}')"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ops() { python3 "$BENCH/bridged/operators.py" "$@"; }
field() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2" | head -1; }
now_s() { date +%s.%N; }

# write_config DIR N: flows (queue "support" with op0001..opN, number 500) and hotline.toml.
write_config() {
  local dir=$1 n=$2
  mkdir -p "$dir/flows"
  rm -rf "$dir/flows/prompts" && cp -r "$ROOT/ivr-flows/prompts" "$dir/flows/prompts"
  python3 - "$n" >"$dir/flows/queues.toml" <<'EOF'
import sys
n = int(sys.argv[1])
print("# webrtc_legs.sh: one queue with every operator of the round.")
print("[queues.support]")
print("members = [%s]" % ", ".join('"op%04d"' % i for i in range(1, n + 1)))
print("ring_timeout = 20\nwrap_up = 0")
EOF
  cat >"$dir/flows/bench.toml" <<'EOF'
# Benchmark flow: straight into the queue, with hold music until an operator answers.
name = "webrtc-legs-bench"
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
  cat >"$dir/hotline.toml" <<EOF
[sip]
listen = "127.0.0.1:$SIP_PORT"
max_calls = 10000
[api]
token = "$API_TOKEN"
[rtp]
ports = "$RTP_PORTS"
timeout_secs = 0
[http]
listen = "127.0.0.1:$HTTP_PORT"
# Every simulated browser comes from 127.0.0.1: the per-address cap (64) is for real ones.
max_connections = $((n + 1024))
max_connections_per_address = $((n + 64))
[store]
state_dir = "$dir/state"
database_url = ""
[flows]
dir = "$dir/flows"
[service]
drain_secs = 1
EOF
  "$HOTLINE" flow check "$dir/flows" >"$dir/flow-check.out" 2>&1 || { cat "$dir/flow-check.out"; return 1; }
}

# start_daemon DIR LOG: sets DAEMON_PID.
start_daemon() {
  local dir=$1
  if curl -s -o /dev/null --max-time 1 "$API/healthz"; then
    echo "something already answers on 127.0.0.1:$HTTP_PORT; not starting a daemon"; return 1
  fi
  "${CLEAN_ENV[@]}" "$HOTLINE" serve --config "$dir/hotline.toml" >"$dir/$2" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  local _
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" = 200 ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the daemon did not become healthy:"; tail -20 "$dir/$2"; return 1
}

stop_daemon() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  local _
  for _ in $(seq 1 150); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DAEMON_PID" 2>/dev/null && { note "daemon did not exit 15 s after SIGTERM; killing it"; kill -KILL "$DAEMON_PID"; }
  wait "$DAEMON_PID" 2>/dev/null
  forget "$DAEMON_PID"
}

# round N: one round; its result in $OUT/nN/result.json.
round() {
  local N=$1 dir=$OUT/n$1
  mkdir -p "$dir"
  local fail="{\"n\":$N,\"error\":"
  echo
  echo "-- N=$N browser legs"
  write_config "$dir" "$N" || { echo "$fail\"config\"}" >"$dir/result.json"; return; }
  local t0; t0=$(now_s)
  start_daemon "$dir" daemon-setup.log || { echo "$fail\"setup daemon\"}" >"$dir/result.json"; return; }
  ops add "$API" "$API_TOKEN" "$N" >"$dir/operators-add.out"
  local added=$?
  stop_daemon
  [ "$added" = 0 ] || { cat "$dir/operators-add.out"; echo "$fail\"operators\"}" >"$dir/result.json"; return; }
  # The console users, two at a time (each hashes its password), while no daemon runs.
  seq 1 "$N" | xargs -P 2 -I{} sh -c 'i=$(printf %04d {}); printf "bench-web-pass-%s\n" "$i" |
    "$0" user add --config "$1" --name "op$i" --role operator --operator "op$i" --password-stdin >/dev/null 2>>"$2"' \
    "$HOTLINE" "$dir/hotline.toml" "$dir/users.err"
  [ -s "$dir/users.err" ] && note "user add: $(sort "$dir/users.err" | uniq -c | head -3 | tr '\n' ' ')"
  note "operators and console users ready after $(python3 -c "print('%.0f' % ($(now_s) - $t0))") s"

  start_daemon "$dir" daemon.log || { echo "$fail\"daemon\"}" >"$dir/result.json"; return; }
  local rss_start; rss_start=$(rss_kib "$DAEMON_PID")
  local legs_pid
  # 4 MiB receive buffers for browser-legs' sockets (rmem_default, raised until every leg's
  # socket exists), so that a moment without the CPU is not counted as loss.
  [ -n "$RMEM_SAVED" ] && echo 4194304 >"$RMEM_FILE" 2>/dev/null
  "$LEGS_BIN" --http "127.0.0.1:$HTTP_PORT" --operators "$N" --caller-port "$CALLER_MEDIA" \
    --pid "$DAEMON_PID" --clk-tck "$CLK_TCK" --warmup "$WARMUP_SECS" --seconds "$METER_SECS" \
    --max-wait "$MAX_WAIT" --status-file "$dir/legs.status" --stop-file "$dir/stop" \
    --map-file "$dir/legs.map" --start-file "$dir/start" \
    --label "n$N" >"$dir/legs.out" 2>"$dir/legs.err" &
  legs_pid=$!
  PIDS+=("$legs_pid")
  # browser-legs status: phones rings connected browsers-hearing callers-hearing
  local phones=0 _
  for _ in $(seq 1 $((N * 2 + 300))); do
    phones=$(awk '{print $1}' "$dir/legs.status" 2>/dev/null); phones=${phones:-0}
    [ "$phones" -ge "$N" ] && break
    kill -0 "$legs_pid" 2>/dev/null || break
    sleep 0.5
  done
  note "$phones of $N consoles are browser phones; $(grep -v '^{' "$dir/legs.err" | tail -2 | paste -sd' ')"
  if [ "$phones" -lt "$N" ]; then
    stop_pid "$legs_pid"; stop_daemon
    echo "$fail\"phones\"}" >"$dir/result.json"; return
  fi
  ops online "$API" "$API_TOKEN" "$N" >"$dir/operators-online.out" || cat "$dir/operators-online.out"
  local st=
  for _ in $(seq 1 40); do
    st=$(ops status "$API" "$API_TOKEN")
    [ "$(field available "$st")" = "$N" ] && break
    sleep 0.25
  done
  note "operators: $st"
  sleep 1
  local idle; idle=$(rss_kib "$DAEMON_PID")

  local ramp=$(( (N + SETUP_RATE - 1) / SETUP_RATE ))
  local hold_ms=$(( (ramp + MAX_WAIT + WARMUP_SECS + METER_SECS + 20) * 1000 ))
  sipp -sf "$BENCH/webrtc/caller.xml" -s 500 "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p "$CALLERS_PORT" \
    -mi 127.0.0.1 -mp "$CALLERS_SIPP_MEDIA" -key caller_media "$CALLER_MEDIA" \
    -r "$SETUP_RATE" -rp 1000 -l "$N" -m "$N" -d "$hold_ms" -nostdin \
    -trace_stat -stf "$dir/callers.csv" -fd 1 -trace_err -error_file "$dir/callers_errors.log" \
    >"$dir/callers.log" 2>&1 &
  local callers_pid=$!
  PIDS+=("$callers_pid")
  local t_start; t_start=$(now_s)
  # browser-legs writes its map of legs once every leg is up (or after MAX_WAIT); then the
  # capture of CAPTURE_CALLS of them starts, then the window.
  for _ in $(seq 1 $(( (ramp + MAX_WAIT + 30) * 4 ))); do
    [ -e "$dir/legs.map" ] && break
    kill -0 "$legs_pid" 2>/dev/null || break
    sleep 0.25
  done
  restore_rmem
  local td_pid= filter
  filter=$(awk -v want="$CAPTURE_CALLS" -v total="$(wc -l <"$dir/legs.map" 2>/dev/null || echo 0)" '
    BEGIN { k = int(total / want); if (k < 1) k = 1 }
    (NR - 1) % k == 0 && n < want { printf "%sport %s or port %s", (n ? " or " : ""), $2, $3; n++ }' "$dir/legs.map" 2>/dev/null)
  if [ -n "$filter" ]; then
    tcpdump -i lo -n -s 96 -B 16384 --time-stamp-precision=nano -w "$dir/legs.pcap" "udp and ($filter)" 2>"$dir/tcpdump.err" &
    td_pid=$!
    PIDS+=("$td_pid")
    for _ in $(seq 1 50); do grep -q listening "$dir/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  else
    note "no legs to capture (browser-legs wrote no map)"
  fi
  touch "$dir/start"
  # browser-legs' window.
  for _ in $(seq 1 $(( (ramp + MAX_WAIT + WARMUP_SECS + METER_SECS + 30) * 4 ))); do
    grep -q '^{' "$dir/legs.out" 2>/dev/null && break
    kill -0 "$legs_pid" 2>/dev/null || break
    sleep 0.25
  done
  st=$(ops status "$API" "$API_TOKEN")
  note "after $(python3 -c "print('%.1f' % ($(now_s) - $t_start))") s: $st; browser-legs (phones rings connected browsers-hearing callers-hearing): $(cat "$dir/legs.status" 2>/dev/null)"
  local rss_end; rss_end=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{"): print(json.loads(l).get("daemon_rss_kib") or 0); break
else: print(0)' "$dir/legs.out" 2>/dev/null)
  if [ -n "$td_pid" ]; then
    stop_pid "$td_pid" INT
    note "capture: $(grep -E 'captured|dropped by kernel' "$dir/tcpdump.err" | paste -sd, | sed 's/,/, /g')"
    python3 "$BENCH/webrtc/relay_latency.py" "$dir/legs.pcap" "$dir/legs.map" --callers-port "$CALLER_MEDIA" \
      >"$dir/capture.json" 2>"$dir/capture.err" || note "capture analysis failed: $(head -c 300 "$dir/capture.err")"
    [ "$KEEP_PCAP" = 1 ] || rm -f "$dir/legs.pcap"
  fi
  touch "$dir/stop"
  stop_pid "$callers_pid"
  stop_pid "$legs_pid"
  local left=0
  for _ in $(seq 1 40); do
    left=$(curl -s --max-time 2 "$API/metrics" | awk '$1 == "hotline_active_calls" {print $2; exit}'); left=${left%.*}; left=${left:-0}
    [ "$left" -le 0 ] && break
    sleep 0.5
  done
  stop_daemon
  local warns; warns=$(grep -cE '^\S+\s+(WARN|ERROR)' "$dir/daemon.log")
  note "daemon log: $warns WARN/ERROR lines; e.g. $(grep -E '^\S+\s+(WARN|ERROR)' "$dir/daemon.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | sort | uniq -c | sort -rn | head -3 | paste -sd'|')"
  python3 - "$dir/legs.out" "$N" "$rss_start" "$idle" "$rss_end" "$warns" "$left" "$dir/capture.json" >"$dir/result.json" <<'EOF'
import json, sys
path, n, rss_start, idle, rss_end, warns, left, capture = sys.argv[1:]
r = None
for line in open(path):
    if line.startswith("{"):
        r = json.loads(line)
        break
if r is None:
    r = {"error": "no result from browser-legs"}
try:
    r["capture"] = json.load(open(capture))
except (OSError, ValueError):
    r["capture"] = None
r.update(n=int(n), rss_start_kib=int(rss_start), idle_rss_kib=int(idle), rss_end_kib=int(rss_end),
         daemon_warnings=int(warns), active_after=int(left))
print(json.dumps(r))
EOF
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("   " + json.dumps({k: r.get(k) for k in ("connected","browsers_hearing","callers_hearing","daemon_cpu_pct","client_cpu_pct","machine_cpu_pct","error_count","errors")}))' "$dir/result.json"
}

# busy_pct: how busy the machine was over 2 s, % of one core (all cores: up to 100 * cores).
busy_pct() {
  local a b
  a=$(head -1 /proc/stat); sleep 2; b=$(head -1 /proc/stat)
  python3 -c '
import sys
a, b = ([int(x) for x in s.split()[1:9]] for s in sys.argv[1:3])
d = [y - x for x, y in zip(a, b)]
total = sum(d)
print(int((total - d[3] - d[4]) / total * 100 * int(sys.argv[3])) if total else 0)' "$a" "$b" "$(nproc)"
}
# wait_quiet: up to QUIET_WAIT seconds for other processes (compilers...) to calm down.
wait_quiet() {
  local waited=0 pct
  while :; do
    pct=$(busy_pct)
    [ "$pct" -le "$DISTURBED_PCT" ] && return
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      note "the machine is still busy (${pct}% of one core: $(ps -eo pcpu,comm --sort=-pcpu | sed -n 2,4p | awk '{printf "%s %s%%, ", $2, $1}')); going ahead"
      return
    fi
    [ "$waited" = 0 ] && note "waiting for the machine to be quiet (${pct}% of one core busy)"
    sleep 3; waited=$((waited + 5))
  done
}

say "browser-phone legs: N in ($NS), $SETUP_RATE calls/s, a ${METER_SECS}s window"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
for N in $NS; do
  best= best_other=
  for try in $(seq 1 $((RETRIES + 1))); do
    wait_quiet
    round "$N"
    # Others = the machine's busy time minus the daemon's and browser-legs' (SIPp sends no RTP).
    other=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print(int(max(0, (r.get("machine_cpu_pct") or 0) - (r.get("daemon_cpu_pct") or 0) - (r.get("client_cpu_pct") or 0))) if "machine_cpu_pct" in r else 999)' "$OUT/n$N/result.json" 2>/dev/null || echo 999)
    mv "$OUT/n$N" "$OUT/n$N.try$try"
    if [ -z "$best" ] || [ "$other" -lt "$best_other" ]; then best=$try best_other=$other; fi
    [ "$other" -le "$DISTURBED_PCT" ] && break
    [ "$try" -le "$RETRIES" ] && note "other processes took ${other}% of one core in the window; running the round again"
  done
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["other_cpu_pct"]=int(sys.argv[2]); r["round"]=sys.argv[3]; print(json.dumps(r))' \
    "$OUT/n$N.try$best/result.json" "$best_other" "n$N.try$best" >>"$RESULTS"
done
# bridged.sh takes the same lock.
exec 9>&-

BRIDGED_RESULTS=
if [ -n "${BRIDGED_FROM:-}" ]; then
  cp "$BRIDGED_FROM" "$OUT/bridged-results.jsonl" && BRIDGED_RESULTS=$BRIDGED_FROM
elif [ "$BRIDGED" = 1 ]; then
  say "plain SIP bridged legs (bridged.sh, Hotline only, one run)"
  NS="$NS" RELAYS=hotline RUNS=1 RETRIES="$RETRIES" DISTURBED_PCT="$DISTURBED_PCT" QUIET_WAIT="$QUIET_WAIT" BUILD=0 HOTLINE_BIN="$HOTLINE" tests/bench/bridged.sh >"$OUT/bridged.out" 2>&1
  note "bridged.sh exit $?; its output: ${OUT#"$ROOT"/}/bridged.out"
  BRIDGED_RESULTS=$ROOT/tests/bench/out/bridged/results.jsonl
  [ -s "$BRIDGED_RESULTS" ] && cp "$BRIDGED_RESULTS" "$OUT/bridged-results.jsonl"
fi

say "results"
python3 "$BENCH/webrtc/summary.py" "$RESULTS" "${BRIDGED_RESULTS:+$OUT/bridged-results.jsonl}" | tee "$OUT/summary.txt"
echo
echo "details: tests/bench/out/webrtc_legs/ (per round: daemon log, browser-legs output, SIPp stats; results.jsonl, summary.txt)"
