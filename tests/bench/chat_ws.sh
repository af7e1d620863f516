#!/usr/bin/env bash
# Web chat benchmark for Hotline (issue 7; not part of tests/run.sh). Loopback only.
#
# Builds the daemon (release), starts it on 127.0.0.1 with its own state (SQLite) and one
# chat site ("bench", queue "support", a greeting), and runs tests/bench/chat_ws.mjs
# against it (Node with the `ws` package, installed in tests/bench by npm ci):
#
#   - CONNS (10000) chats through POST /chat/start (chats/s), then one visitor WebSocket
#     per chat (progress every tenth: where the daemon falls behind shows there; opening
#     stops after OPEN_MAX_SECS=300 s or OPEN_FAIL_MAX failures), held HOLD_SECS (30) s;
#     held = still open then and answering a ping within 30 s;
#   - daemon RSS (/proc/PID/status VmRSS) before the first socket and with all open, and
#     per connection;
#   - messages delivered per second: SENDERS (200) visitors, each sending its next
#     message when the last one's ack came, for TPUT_SECS (10) s; delivered = the
#     message back at its sender as an event (stored in the store, then pushed);
#   - end-to-end latency (send -> own event) at paced rates, RATES ("500 1000") msg/s,
#     over the SENDERS chats for LAT_SECS (15) s each: p50/p99/max (sending stops, marked
#     OVERLOADED, once 2 s worth of messages are in flight; higher rates are skipped then);
#   - the two message parts with all sockets open, then again with only the senders'
#     (QUIET=0 skips the second round).
#
# No operator is online, so every chat stays "waiting" (visitors may write then), and the
# offer loop ranks all of them each round (their places in the queue). The client and the
# daemon share the machine's cores: the client's CPU is printed beside the daemon's (and
# PostgreSQL's). The store as the daemon makes it: SQLite (one pooled connection, WAL; the
# journal mode of the file is printed afterwards). BENCH_PG=1: then once more with the
# daemon on PostgreSQL (postgres://postgres@127.0.0.1:5432/test, a fresh schema dropped
# afterwards; PG_URL overrides the database), and both runs in one table at the end
# (BENCH_SQLITE=0 BENCH_PG=1: PostgreSQL only).
# The machine may be shared: before each run the script waits up to QUIET_WAIT (300) s
# for other processes to use at most DISTURBED_PCT (25) % of one core, and each part
# prints what other processes took meanwhile (marked DISTURBED above that).
# Other knobs (environment): START_CONC=50 OPEN_CONC=100 MSG_BYTES=64, BUILD=1 (0: use
# target/release/hotline as it is), HTTP_PORT=14080 SIP_PORT=14060; see chat_ws.mjs.
# A quick look: CONNS=1000 HOLD_SECS=10 tests/bench/chat_ws.sh (a few minutes).
# Logs, state and the figures as JSON: tests/bench/out/chat_ws/ (call_path.sh wipes
# tests/bench/out when it starts). Shares call_path.sh's lock: one benchmark at a time.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/tests/bench
OUT=$BENCH/out/chat_ws
# One benchmark at a time: they share the two cores.
exec 9>/tmp/hotline-call-path.lock
flock -n 9 || { echo "chat_ws.sh: another benchmark run is in progress (lock /tmp/hotline-call-path.lock)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

BUILD=${BUILD:-1}
BENCH_PG=${BENCH_PG:-0}
BENCH_SQLITE=${BENCH_SQLITE:-1}
QUIET_WAIT=${QUIET_WAIT:-300}
export DISTURBED_PCT=${DISTURBED_PCT:-25}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
# Below the kernel's ephemeral range (32768-60999, where the client's 10,000 sockets get
# their ports) and apart from tests/run.sh's (15060-16070, 18080, 31000-31999),
# call_path.sh's (17060-17400, 20000-29999) and bridged.sh's (19060-19110).
HTTP_PORT=${HTTP_PORT:-14080}
SIP_PORT=${SIP_PORT:-14060}
RTP_PORTS=14100-14199
export CONNS=${CONNS:-10000} HOLD_SECS=${HOLD_SECS:-30} SENDERS=${SENDERS:-200} \
  TPUT_SECS=${TPUT_SECS:-10} RATES=${RATES:-${RATE:-500 1000}} LAT_SECS=${LAT_SECS:-15} QUIET=${QUIET:-1}

say() { printf '\n== %s\n' "$*"; }

# --- cleanup: every process this script starts is in PIDS --------------------------------
PIDS=()
PG_SCHEMA=
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ -n "$PG_SCHEMA" ] && psql -q "$PG_ADMIN_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget() { # pid: no longer ours to clean up
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# --- tools, build, the client's package ---------------------------------------------------
# need_pkg (shared with tests/run.sh)
. "$ROOT/tests/lib.sh"
need_pkg curl curl
need_pkg node nodejs
need_pkg npm npm
[ "$BENCH_PG" = 1 ] && need_pkg psql postgresql-client

# CONNS sockets at each end (the daemon's and the client's, separate processes), plus
# the store, the listeners and the HTTP requests.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNS + 1000)) ]; then
  echo "note: ulimit -n is $(ulimit -n), below CONNS + 1000: sockets beyond it will fail"
fi

if [ "$BUILD" = 1 ]; then
  say "build"
  # Waits on cargo's lock if another build of this tree runs.
  cargo build --release -p hotline || exit 1
fi
HOTLINE=$ROOT/target/release/hotline
[ -x "$HOTLINE" ] || { echo "no $HOTLINE (BUILD=0 needs a release build)"; exit 1; }

# npm ci when node_modules lacks the locked version of ws (only then: it reinstalls all).
ws_version() { node -p "require('$BENCH/$1').$2" 2>/dev/null; }
if [ "$(ws_version node_modules/ws/package.json version)" != \
  "$(ws_version package-lock.json 'packages["node_modules/ws"].version')" ]; then
  (cd "$BENCH" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { echo "npm ci in tests/bench failed"; exit 1; }
fi

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
export CLK_TCK
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); node $(node --version); ulimit -n $(ulimit -n)"
echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)')"

# --- the daemon ---------------------------------------------------------------------------
# `env` without any HOTLINE_* variable of the caller's environment.
read -ra CLEAN_ENV <<<"env $(env | awk -F= '/^HOTLINE_/ {printf "-u %s ", $1}')"

# start_daemon NAME DATABASE_URL: a Hotline on loopback with its own state dir, the
# example flows plus the test flows (as tests/run.sh's start_daemon), and the bench site.
start_daemon() {
  local name=$1 db=$2
  local dir=$OUT/$name
  mkdir -p "$dir"
  cp -r "$ROOT/ivr-flows" "$dir/flows"
  cp "$ROOT"/tests/sipp/flows/*.toml "$dir/flows/"
  cat >"$dir/hotline.toml" <<EOF
[rtp]
ports = "$RTP_PORTS"
# 10,000 sockets from 127.0.0.1: above the connection caps a real server keeps.
[http]
max_connections = 20000
max_connections_per_address = 20000
[service]
drain_secs = 1
[chat]
offer_timeout_secs = 30
[[chat.sites]]
key = "bench"
name = "Chat benchmark"
queues = ["support"]
greeting = "Hello! Write your question; an operator will answer shortly."

# Every benchmark visitor comes from 127.0.0.1: the per-address limits would stop it.
[chat.limits]
enabled = false
EOF
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$HTTP_PORT/healthz"; then
    echo "something already answers on 127.0.0.1:$HTTP_PORT (an older daemon?); not starting $name"
    return 1
  fi
  # A plain command, so $! is the daemon itself (env execs it).
  "${CLEAN_ENV[@]}" HOTLINE_SIP_LISTEN="127.0.0.1:$SIP_PORT" HOTLINE_HTTP_LISTEN="127.0.0.1:$HTTP_PORT" \
    HOTLINE_STATE_DIR="$dir/state" HOTLINE_FLOWS_DIR="$dir/flows" HOTLINE_DATABASE_URL="$db" \
    "$HOTLINE" serve --config "$dir/hotline.toml" >"$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
  DAEMON_DIR=$dir
  local _
  for _ in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz")" = 200 ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "daemon $name did not become healthy:"; tail -n 30 "$dir/daemon.log"; return 1
}

# SIGTERM, then wait for the drain and exit.
stop_daemon() {
  kill -TERM "$DAEMON_PID" 2>/dev/null
  local _ rc
  for _ in $(seq 1 150); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "   daemon did not exit 15 s after SIGTERM; killing it"
    kill -KILL "$DAEMON_PID" 2>/dev/null
  fi
  wait "$DAEMON_PID" 2>/dev/null; rc=$?
  forget "$DAEMON_PID"
  [ "$rc" = 0 ] || echo "   daemon exit status $rc"
}

# What the daemon logged above INFO, grouped.
daemon_report() {
  local log=$DAEMON_DIR/daemon.log n
  n=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -cE '^[^ ]+ +(WARN|ERROR) ')
  echo "   daemon log: $(wc -l <"$log") lines, $n WARN/ERROR (${log#"$ROOT"/})"
  [ "$n" -gt 0 ] && sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^[^ ]+ +(WARN|ERROR) ' |
    sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' | cut -c1-200 | sort | uniq -c | sort -rn | head -n 6 | sed 's/^/     /'
  return 0
}

# The journal mode of the daemon's SQLite file (after the run: the mode is kept in it).
journal_mode() {
  python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode").fetchone()[0])' \
    "$DAEMON_DIR/state/hotline.db" 2>/dev/null || echo "?"
}

# run NAME DATABASE_URL: one daemon, one client run; the figures in $OUT/NAME.json.
run() {
  local name=$1 db=$2 rc
  say "$name"
  node "$BENCH/chat_ws.mjs" --wait-quiet "$QUIET_WAIT"
  start_daemon "$name" "$db" || return 1
  echo "daemon pid $DAEMON_PID on 127.0.0.1:$HTTP_PORT, store ${db:-SQLite in ${DAEMON_DIR#"$ROOT"/}/state}"
  BASE_URL="http://127.0.0.1:$HTTP_PORT" SITE=bench DAEMON_PID=$DAEMON_PID LABEL=$name \
    RESULT_FILE="$OUT/$name.json" node "$BENCH/chat_ws.mjs" &
  local client=$!
  PIDS+=("$client")
  wait "$client"; rc=$?
  forget "$client"
  [ "$rc" = 0 ] || echo "   the client failed (exit $rc)"
  kill -0 "$DAEMON_PID" 2>/dev/null || echo "   the daemon is gone: $(tail -n 5 "$DAEMON_DIR/daemon.log")"
  stop_daemon
  [ -z "$db" ] && command -v python3 >/dev/null && echo "   SQLite journal mode of the file: $(journal_mode)"
  daemon_report
  return "$rc"
}

results=()
[ "$BENCH_SQLITE" = 1 ] && run sqlite "" && results+=("$OUT/sqlite.json")

if [ "$BENCH_PG" = 1 ]; then
  PG_DB=${PG_URL##*/}; PG_DB=${PG_DB%%\?*}
  PG_ADMIN_URL=${PG_URL%/*}/$PG_DB
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || psql "$PG_ADMIN_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    PG_SCHEMA=chat_bench_$$_$(date +%s)
    psql -q "$PG_ADMIN_URL" -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null || { echo "could not create schema $PG_SCHEMA"; exit 1; }
    sep='?'; case $PG_URL in *\?*) sep='&' ;; esac
    run postgres "$PG_URL${sep}options=-c%20search_path%3D$PG_SCHEMA" && results+=("$OUT/postgres.json")
    psql -q "$PG_ADMIN_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 && PG_SCHEMA=
  else
    echo "BENCH_PG=1 but PostgreSQL does not answer on 127.0.0.1:5432; skipped"
  fi
fi

if [ "${#results[@]}" -gt 1 ]; then
  node "$BENCH/chat_ws.mjs" --summary "${results[@]}"
fi
echo
echo "details: ${OUT#"$ROOT"/}/ (daemon logs, state, the figures as JSON)"
[ "${#results[@]}" -gt 0 ]
