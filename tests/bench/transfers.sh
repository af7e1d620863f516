#!/usr/bin/env bash
# Blind-transfer benchmark for Hotline (not part of tests/run.sh). Loopback only.
#
# One fresh Hotline (embedded SQLite in a state dir of its own under tests/bench/out, its own
# ports: SIP 35060, HTTP 38080, RTP 10000-14999) with two groups of operators: FIRST_OPS
# "first" operators (queue "first", which the bench flow's number 600 queues callers for,
# with hold music) and SECOND_OPS "second" operators (queue "second", which no flow uses:
# a transfer to an operator needs them in a queue). The operators are added through the
# API of a daemon of their own (as in bridged.sh), stopped before the measured one starts on
# the same store; their phones register from two SIPp ports (one per group, with
# bridged/register.xml) and are set online.
#
# Then, for each rate R in RATES (transfers offered per second), a step: R callers a second
# for STEP_SECS seconds (SIPp uac, transfers/caller.xml, -r R) call 600 and stay CALLER_SECS
# after Hotline answers, then hang up. A first operator's phone (transfers/first.xml, one
# SIPp for the whole group) rings RING_MS, answers, talks TALK_MS, then sends REFER with
# Refer-To: a second operator's SIP user, round-robin over the group (SIPp -inf,
# SEQUENTIAL), so each target is free when its turn comes if SECOND_OPS / R is longer than
# a second operator's call; it takes the 202, the NOTIFYs (100, 200) and the BYE with which
# Hotline ends its leg (it hangs up itself if none comes within BYE_WAIT_MS; on a refusal it
# hangs up at once). The second operator's phone (transfers/second.xml) rings RING_MS,
# answers, and takes Hotline's BYE when the caller hangs up. Nobody sends RTP (SDPs point
# at SIPp's idle media ports): this measures signalling, queueing and the transfer itself.
#
# Per step: REFERs sent, answered 202 and refused (by code), NOTIFY 200s, BYEs from Hotline,
# transfers whose target answered (and targets whose ringing was cancelled because the
# caller had left), calls Hotline never ended although their caller's BYE was answered,
# transfers per second achieved (202s per second over the steady part of the step, from
# the phones' SIPp -trace_logs with Unix times, and the same for the targets' answers),
# REFER->202 and 202->target-answered times, failed calls per SIPp (callers, first and
# second phones) and why, Hotline's CPU (% of one core, mean over the
# steady part and the busiest second; sampled every second from /proc) and RSS, the three
# SIPps' CPU, the daemon log's WARN/ERROR lines and "transfer refused" reasons, and the
# call records (calls with a transfer, end reasons). Prints a table and the goal: 100
# transfers per second with 0 failed.
# Operators are sized from the highest rate unless set: a first operator is busy about
# RING_MS + TALK_MS per call, a second one about CALLER_SECS; FIRST_OPS defaults to
# 3 x max(R), SECOND_OPS to (CALLER_SECS + 3) x max(R) (so a target's next transfer comes
# CALLER_SECS + 3 s after its last one). Fewer operators cost Hotline less per transfer
# (it looks at every operator for each REFER); e.g. FIRST_OPS=200 SECOND_OPS=200
# CALLER_SECS=3 is enough for 100/s when the transfers keep up.
# Logs, SIPp stats and logs, the daemon's log and state: tests/bench/out/transfers/.
# Knobs (environment): RATES="25 50 100" STEP_SECS=30 CALLER_SECS=6 RING_MS=300
#   TALK_MS=1000 BYE_WAIT_MS=3000 FIRST_OPS SECOND_OPS SETTLE_SECS=60 (longest wait for a
#   step's calls to end), PERF_SECS=0 (N: profile Hotline with perf for N s in each step's
#   steady part; perf.txt and perf-callers.txt in the step's directory), QUIET_WAIT=300 and
#   DISTURBED_PCT=25 (before a step, wait up to QUIET_WAIT s for other processes to use at
#   most DISTURBED_PCT % of one core; what they used during the step is printed), BUILD=1
#   (0: use the binary as it is), HOTLINE_BIN (default target/release/hotline; BUILD=1
#   builds that default), SIP_PORT=35060 HTTP_PORT=38080 RTP_PORTS=10000-14999 and the SIPp
#   ports below.
# Shares call_path.sh's and bridged.sh's lock (/tmp/hotline-call-path.lock): they all
# want the two cores to themselves.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/tests/bench/transfers
OUT=$ROOT/tests/bench/out/transfers
exec 9>/tmp/hotline-call-path.lock
flock -n 9 || { echo "transfers.sh: another benchmark run is in progress (lock /tmp/hotline-call-path.lock)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

RATES=${RATES:-"25 50 100"}
STEP_SECS=${STEP_SECS:-30}
CALLER_SECS=${CALLER_SECS:-6}
RING_MS=${RING_MS:-300}
TALK_MS=${TALK_MS:-1000}
BYE_WAIT_MS=${BYE_WAIT_MS:-3000}
SETTLE_SECS=${SETTLE_SECS:-60}
QUIET_WAIT=${QUIET_WAIT:-300}
DISTURBED_PCT=${DISTURBED_PCT:-25}
BUILD=${BUILD:-1}
MAX_RATE=$(tr ' ' '\n' <<<"$RATES" | grep . | sort -n | tail -1)
FIRST_OPS=${FIRST_OPS:-$((3 * MAX_RATE))}
SECOND_OPS=${SECOND_OPS:-$(((CALLER_SECS + 3) * MAX_RATE))}
API_TOKEN=bench-token-transfers-0001
SIP_PORT=${SIP_PORT:-35060}             # Hotline SIP
HTTP_PORT=${HTTP_PORT:-38080}           # Hotline HTTP (API, /metrics)
RTP_PORTS=${RTP_PORTS:-10000-14999}     # Hotline RTP (no other benchmark's range)
CALLERS_PORT=${CALLERS_PORT:-35100}     # SIPp: the callers
FIRST_PORT=${FIRST_PORT:-35110}         # SIPp: the first operators' phones
SECOND_PORT=${SECOND_PORT:-35120}       # SIPp: the second operators' phones
CALLERS_MEDIA=${CALLERS_MEDIA:-35200}   # SIPp media ports (bound, idle; +2 too)
FIRST_MEDIA=${FIRST_MEDIA:-35210}
SECOND_MEDIA=${SECOND_MEDIA:-35220}
REG_MEDIA=${REG_MEDIA:-35230}
API=http://127.0.0.1:$HTTP_PORT
N_OPS=$((FIRST_OPS + SECOND_OPS))

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# --- cleanup: every process this script starts is in PIDS ------------------------------
PIDS=()
cleanup() {
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

# --- tools and build --------------------------------------------------------------------
. "$ROOT/tests/lib.sh"
need_pkg sipp sip-tester
need_pkg curl curl
need_pkg python3 python3
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
HOTLINE=${HOTLINE_BIN:-$ROOT/target/release/hotline}
if [ "$BUILD" = 1 ]; then
  say "build"
  cargo build --release -p hotline || exit 1
fi
[ -x "$HOTLINE" ] || { echo "$HOTLINE is missing (BUILD=$BUILD)"; exit 1; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
echo "machine: $(nproc) cores, $(uname -r); $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1); ulimit -n $(ulimit -n)"
echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)'); hotline: $HOTLINE, built $(date -r "$HOTLINE" '+%F %T')$([ "$BUILD" = 1 ] || echo ' (BUILD=0: not rebuilt)')"
echo "rates: $RATES transfers/s offered, $STEP_SECS s each; operators: $FIRST_OPS first, $SECOND_OPS second; caller stays ${CALLER_SECS}s after the answer; phones ring ${RING_MS} ms; the first one talks ${TALK_MS} ms before the REFER"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_s() { date +%s.%N; }
metric() { curl -s --max-time 2 "$API/metrics" | awk -v m="$1" '$1 == m {print $2; exit}'; }
ops() { python3 "$ROOT/tests/bench/bridged/operators.py" "$@"; }
field() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2" | head -1; }
read -ra CLEAN_ENV <<<"env $(env | awk -F= '/^HOTLINE_/ {printf "-u %s ", $1}')"

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

# --- the daemon -------------------------------------------------------------------------
DIR=$OUT/daemon
mkdir -p "$DIR/flows"
cp -r "$ROOT/ivr-flows/prompts" "$DIR/flows/prompts"
python3 - "$FIRST_OPS" "$SECOND_OPS" >"$DIR/flows/queues.toml" <<'EOF'
import sys
first, second = int(sys.argv[1]), int(sys.argv[2])
name = lambda i: '"op%04d"' % i
print("# transfers.sh: the first operators take the callers, the second ones the transfers.")
print("[queues.first]")
print("members = [%s]" % ", ".join(name(i) for i in range(1, first + 1)))
print("ring_timeout = 20\nwrap_up = 0")
print("[queues.second]")
print("members = [%s]" % ", ".join(name(i) for i in range(first + 1, first + second + 1)))
print("ring_timeout = 20\nwrap_up = 0")
EOF
cat >"$DIR/flows/transfers.toml" <<'EOF'
# Benchmark flow: straight into the first operators' queue, with hold music.
name = "transfers-bench"
numbers = ["600"]
start = "wait"

[steps.wait]
type = "queue"
queue = "first"
music = "hold-music"
max_wait = 600
on_timeout = "bye"
on_unavailable = "bye"

[steps.bye]
type = "hangup"
EOF
"$HOTLINE" flow check "$DIR/flows" >"$DIR/flow-check.out" 2>&1 || { cat "$DIR/flow-check.out"; exit 1; }
cat >"$DIR/hotline.toml" <<EOF
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
[store]
state_dir = "$DIR/state"
database_url = ""
[flows]
dir = "$DIR/flows"
[service]
drain_secs = 1
EOF

start_daemon() { # LOGNAME
  if curl -s -o /dev/null --max-time 1 "$API/healthz"; then
    echo "something already answers on 127.0.0.1:$HTTP_PORT; not starting Hotline"; return 1
  fi
  "${CLEAN_ENV[@]}" "$HOTLINE" serve --config "$DIR/hotline.toml" >"$DIR/$1" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  local _
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" = 200 ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "Hotline did not become healthy:"; tail -20 "$DIR/$1"; return 1
}
stop_daemon() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  local _
  for _ in $(seq 1 150); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  forget "$DAEMON_PID"
}

say "setup: $N_OPS operators"
t0=$(now_s)
start_daemon daemon-setup.log || exit 1
ops add "$API" "$API_TOKEN" "$N_OPS" >"$DIR/operators-add.out" || { cat "$DIR/operators-add.out"; exit 1; }
note "$(cat "$DIR/operators-add.out") in $(python3 -c "print('%.0f' % ($(now_s) - $t0))") s"
stop_daemon
start_daemon daemon.log || exit 1
note "Hotline pid $DAEMON_PID, RSS $(( $(rss_kib "$DAEMON_PID") / 1024 )) MiB"

# Phones: the first group registers from FIRST_PORT, the second from SECOND_PORT.
register() { # FROM TO PORT NAME
  python3 -c '
import sys
a, b = int(sys.argv[1]), int(sys.argv[2])
print("SEQUENTIAL")
for i in range(a, b + 1):
    print("op%04d;[authentication username=op%04d password=bench-pass-%04d];" % (i, i, i))
' "$1" "$2" >"$OUT/users-$4.csv"
  local n=$(($2 - $1 + 1))
  sipp -sf "$ROOT/tests/bench/bridged/register.xml" "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p "$3" \
    -mi 127.0.0.1 -mp "$REG_MEDIA" -inf "$OUT/users-$4.csv" -m "$n" -l "$n" -r 200 -rp 1000 \
    -nostdin -timeout 60s -timeout_error -trace_stat -stf "$OUT/register-$4.csv" -fd 1 \
    -trace_err -error_file "$OUT/register-$4_errors.log" >"$OUT/register-$4.log" 2>&1
  local rc=$?
  eval "$(sipp_totals "$OUT/register-$4.csv")"
  note "REGISTER $4: $S_OK of $n$([ "$rc" = 0 ] || echo "; SIPp exit $rc, failed $S_FAILED ($S_REASONS)")"
}
register 1 "$FIRST_OPS" "$FIRST_PORT" first
register $((FIRST_OPS + 1)) "$N_OPS" "$SECOND_PORT" second
ops online "$API" "$API_TOKEN" "$N_OPS" >"$DIR/operators-online.out" || cat "$DIR/operators-online.out"
st=
for _ in $(seq 1 40); do
  st=$(ops status "$API" "$API_TOKEN")
  [ "$(field registered "$st")" = "$N_OPS" ] && [ "$(field online "$st")" = "$N_OPS" ] && break
  sleep 0.25
done
note "$st"
# The transfer targets, round-robin: every second operator in turn.
python3 -c '
import sys
a, b = int(sys.argv[1]), int(sys.argv[2])
print("SEQUENTIAL")
for i in range(a, b + 1):
    print("op%04d;" % i)
' $((FIRST_OPS + 1)) "$N_OPS" >"$OUT/targets.csv"
sed -e "s/@RING_MS@/$RING_MS/g" -e "s/@TALK_MS@/$TALK_MS/g" -e "s/@BYE_WAIT_MS@/$BYE_WAIT_MS/g" \
  "$BENCH/first.xml" >"$OUT/first.xml"
sleep 1
IDLE_RSS=$(rss_kib "$DAEMON_PID")

# Before a step: wait (up to QUIET_WAIT s) until the machine, Hotline idling aside, is
# at most DISTURBED_PCT % of one core busy over 2 s.
machine_busy() { awk 'NR == 1 {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
wait_quiet() {
  local waited=0 b0 b1 h0 h1 pct
  while :; do
    b0=$(machine_busy); h0=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$DAEMON_PID/stat")
    sleep 2
    b1=$(machine_busy); h1=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$DAEMON_PID/stat")
    pct=$(( ((b1 - b0) - (h1 - h0)) * 100 / CLK_TCK / 2 ))
    [ "$pct" -le "$DISTURBED_PCT" ] && break
    if [ "$waited" -ge "$QUIET_WAIT" ]; then note "the machine is still busy (${pct}% of one core); going ahead"; break; fi
    [ "$waited" = 0 ] && note "waiting for the machine to be quiet (${pct}% of one core)"
    sleep 3; waited=$((waited + 5))
  done
}

# --- one step ---------------------------------------------------------------------------
# step R: R callers a second for STEP_SECS; writes $OUT/rR/result.json.
step() {
  local R=$1 dir=$OUT/r$1
  mkdir -p "$dir"
  echo
  echo "-- $R transfers/s offered, $((R * STEP_SECS)) callers"
  wait_quiet
  local daemon_lines; daemon_lines=$(wc -l <"$DIR/daemon.log")
  sipp -sf "$BENCH/second.xml" -i 127.0.0.1 -p "$SECOND_PORT" -mi 127.0.0.1 -mp "$SECOND_MEDIA" \
    -d "$RING_MS" -l 10000 -nostdin -trace_stat -stf "$dir/second.csv" -fd 1 \
    -trace_err -error_file "$dir/second_errors.log" -trace_logs -log_file "$dir/second_logs.log" \
    >"$dir/second.log" 2>&1 &
  local second_pid=$!
  PIDS+=("$second_pid")
  sipp -sf "$OUT/first.xml" -i 127.0.0.1 -p "$FIRST_PORT" -mi 127.0.0.1 -mp "$FIRST_MEDIA" \
    -inf "$OUT/targets.csv" -l 10000 -nostdin -trace_stat -stf "$dir/first.csv" -fd 1 \
    -trace_err -error_file "$dir/first_errors.log" -trace_logs -log_file "$dir/first_logs.log" \
    >"$dir/first.log" 2>&1 &
  local first_pid=$!
  PIDS+=("$first_pid")
  sleep 0.5
  local p
  for p in "$second_pid" "$first_pid"; do
    kill -0 "$p" 2>/dev/null || { note "a phones' SIPp did not start: $(cat "$dir"/first.log "$dir"/second.log | grep -i -m2 'error\|unable')"; return 1; }
  done
  # CPU of Hotline and the SIPps, every second, from /proc (ticks).
  python3 - "$CLK_TCK" "$DAEMON_PID" "$first_pid" "$second_pid" >"$dir/cpu.tsv" <<'EOF' &
import sys, time
hz, pids = int(sys.argv[1]), sys.argv[2:]
def ticks(p):
    try:
        s = open("/proc/%s/stat" % p).read()
    except OSError:
        return None
    r = s[s.rfind(")") + 2:].split()
    return int(r[11]) + int(r[12])
def machine():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(f) - f[3] - f[4]
while True:
    t = time.time()
    print("%.3f\t%s\t%d" % (t, "\t".join(str(ticks(p)) for p in pids), machine()), flush=True)
    if ticks(pids[0]) is None:
        break
    time.sleep(max(0.0, 1.0 - (time.time() - t)))
EOF
  local sampler_pid=$!
  PIDS+=("$sampler_pid")
  local total=$((R * STEP_SECS)) t_start; t_start=$(now_s)
  sipp -sf "$BENCH/caller.xml" -s 600 "127.0.0.1:$SIP_PORT" -i 127.0.0.1 -p "$CALLERS_PORT" \
    -mi 127.0.0.1 -mp "$CALLERS_MEDIA" -r "$R" -rp 1000 -m "$total" -l $((R * (CALLER_SECS + 20))) \
    -d $((CALLER_SECS * 1000)) -nostdin -timeout $((STEP_SECS + CALLER_SECS + SETTLE_SECS))s -timeout_error \
    -trace_stat -stf "$dir/callers.csv" -fd 1 -trace_err -error_file "$dir/callers_errors.log" \
    >"$dir/callers.log" 2>&1 &
  local callers_pid=$!
  PIDS+=("$callers_pid")
  echo "$t_start callers $callers_pid" >"$dir/pids"
  # The callers' CPU too (a second sampler: it starts after the phones').
  python3 - "$CLK_TCK" "$callers_pid" >"$dir/cpu-callers.tsv" <<'EOF' &
import sys, time
p = sys.argv[2]
while True:
    t = time.time()
    try:
        s = open("/proc/%s/stat" % p).read()
    except OSError:
        break
    r = s[s.rfind(")") + 2:].split()
    print("%.3f\t%d" % (t, int(r[11]) + int(r[12])), flush=True)
    time.sleep(max(0.0, 1.0 - (time.time() - t)))
EOF
  local csampler_pid=$!
  PIDS+=("$csampler_pid")
  # PERF_SECS: a CPU profile of Hotline in the steady part of the step (perf, DWARF stacks).
  local perf_pid=
  if [ "${PERF_SECS:-0}" -gt 0 ] && command -v perf >/dev/null; then
    ( sleep $((CALLER_SECS + 3)); exec perf record -F 199 --call-graph dwarf,16384 -p "$DAEMON_PID" -o "$dir/perf.data" -- sleep "$PERF_SECS" ) \
      >"$dir/perf.log" 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
  fi
  local peak_rss=0 r _
  for _ in $(seq 1 $(( (STEP_SECS + CALLER_SECS + SETTLE_SECS) * 4 ))); do
    kill -0 "$callers_pid" 2>/dev/null || break
    r=$(rss_kib "$DAEMON_PID"); [ "$r" -gt "$peak_rss" ] && peak_rss=$r
    sleep 0.25
  done
  kill -0 "$callers_pid" 2>/dev/null && note "SIPp callers still running after $((STEP_SECS + CALLER_SECS + SETTLE_SECS)) s; stopping them"
  stop_pid "$callers_pid"
  local t_end; t_end=$(now_s)
  local left=0
  for _ in $(seq 1 40); do
    left=$(metric hotline_active_calls); left=${left%.*}; left=${left:-0}
    [ "$left" -le 0 ] && break
    sleep 0.5
  done
  sleep 1.5   # the phones' SIPps write their statistics every second
  stop_pid "$first_pid"; stop_pid "$second_pid"
  stop_pid "$sampler_pid"; stop_pid "$csampler_pid"
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" 2>/dev/null; forget "$perf_pid"
    perf report -i "$dir/perf.data" --stdio --no-children --sort symbol --percent-limit 0.7 -g none 2>/dev/null |
      grep -v '^#' | grep . | head -40 >"$dir/perf.txt"
    perf report -i "$dir/perf.data" --stdio --no-children --sort symbol --percent-limit 5 \
      -g caller,0.5,callee,function,percent --max-stack 12 2>/dev/null | grep -v '^#' | grep . | head -300 \
      >"$dir/perf-callers.txt"
    note "perf profile of Hotline (${PERF_SECS} s, steady part): $dir/perf.txt (self), perf-callers.txt (who called the top ones)"
  fi
  st=$(ops status "$API" "$API_TOKEN")
  tail -n +$((daemon_lines + 1)) "$DIR/daemon.log" >"$dir/daemon.log"
  note "after the step: active calls $left; $st"
  python3 "$BENCH/analyze.py" --dir "$dir" --rate "$R" --step-secs "$STEP_SECS" --caller-secs "$CALLER_SECS" \
    --clk-tck "$CLK_TCK" --t-start "$t_start" --t-end "$t_end" --idle-rss "$IDLE_RSS" --peak-rss "$peak_rss" \
    --active-after "$left" --status "$st" >"$dir/result.json" 2>"$dir/analyze.err" || cat "$dir/analyze.err"
  python3 "$BENCH/analyze.py" --print "$dir/result.json"
  # Everyone available again before the next step (the queues' available, summed).
  local avail=0
  for _ in $(seq 1 40); do
    st=$(ops status "$API" "$API_TOKEN")
    avail=$(grep -o 'available=[0-9]*' <<<"$st" | awk -F= '{s += $2} END {print s + 0}')
    [ "$avail" -ge "$N_OPS" ] && break
    sleep 0.5
  done
  [ "$avail" -ge "$N_OPS" ] || note "only $avail of $N_OPS operators available after the step"
}

say "steps: $RATES transfers/s"
for R in $RATES; do
  step "$R"
done
"${CLEAN_ENV[@]}" "$HOTLINE" calls --config "$DIR/hotline.toml" --limit 1000000 >"$OUT/calls.csv" 2>/dev/null
stop_daemon

say "results"
python3 "$BENCH/analyze.py" --table "$OUT"/r*/result.json --calls "$OUT/calls.csv" | tee "$OUT/summary.txt"
echo
echo "details: tests/bench/out/transfers/ (daemon log and state, SIPp stats, logs and errors per step, result.json per step)"
