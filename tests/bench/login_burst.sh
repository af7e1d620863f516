#!/usr/bin/env bash
# Login burst benchmark for Hotline (issue 15; not part of tests/run.sh). Loopback only.
#
# Builds the daemon (release), adds an admin user, starts the daemon on 127.0.0.1 with
# its own state (SQLite) and 127.0.0.1 as a trusted proxy, and fires parallel logins:
#
#   1. spread: BURST (100) logins at once, each with its own user name (none exists) and
#      its own X-Forwarded-For address, so no lockout or address throttle stops any of
#      them: every one wants an argon2 check. The worst case for memory: the checks run
#      one per core and the rest queue (http.login_wait_secs, 5 s; then 429).
#   2. one account, one address: BURST wrong passwords for `admin` at once from 127.0.0.1
#      (the issue's probe): at most 5 may be checked (401), the rest wait (429). Then the
#      right password from another address still logs in (303), since strangers lock
#      their own address, not the account.
#
# After each part: the HTTP status counts, the daemon's peak RSS (VmHWM) and current RSS
# (VmRSS) in MiB from /proc/PID/status, against TARGET_MIB (150). Then the security log
# lines (`security: login refused user=… from=… reason=…`) by reason.
#
# Each login posts the login form with the double-submit cookie: the form's `_csrf`
# field must equal the `hl_login` cookie (any random value pair passes; the daemon only
# compares them), as a browser does after GET /login.
# Knobs (environment): BURST=100 TARGET_MIB=150, BUILD=1 (0: use target/release/hotline
# as it is), HTTP_PORT=14380 SIP_PORT=14360.
# Logs and state: tests/bench/out/login_burst/. Shares call_path.sh's lock: one benchmark
# at a time.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/tests/bench/out/login_burst
# One benchmark at a time: they share the two cores.
exec 9>/tmp/hotline-call-path.lock
flock -n 9 || { echo "login_burst.sh: another benchmark run is in progress (lock /tmp/hotline-call-path.lock)"; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"

BUILD=${BUILD:-1}
BURST=${BURST:-100}
TARGET_MIB=${TARGET_MIB:-150}
# Apart from chat_ws.sh's (14060-14199), tests/run.sh's (15060-16070, 18080,
# 31000-31999), call_path.sh's (17060-17400, 20000-29999) and bridged.sh's (19060-19110).
HTTP_PORT=${HTTP_PORT:-14380}
SIP_PORT=${SIP_PORT:-14360}
RTP_PORTS=14400-14499
ADMIN_PASSWORD=bench-admin-password-1
BASE=http://127.0.0.1:$HTTP_PORT

say() { printf '\n== %s\n' "$*"; }

DAEMON_PID=
cleanup() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null
  local _
  for _ in $(seq 1 50); do kill -0 "$DAEMON_PID" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$DAEMON_PID" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh"
need_pkg curl curl

if [ "$BUILD" = 1 ]; then
  say "build"
  cargo build --release -p hotline || exit 1
fi
HOTLINE=$ROOT/target/release/hotline
[ -x "$HOTLINE" ] || { echo "no $HOTLINE (BUILD=0 needs a release build)"; exit 1; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)')"

# --- the daemon ---------------------------------------------------------------------------
cp -r "$ROOT/ivr-flows" "$OUT/flows"
cat >"$OUT/hotline.toml" <<EOF
[rtp]
ports = "$RTP_PORTS"
[service]
drain_secs = 1
[http]
# The benchmark's curl plays the proxy: X-Forwarded-For gives each login its address.
trusted_proxies = ["127.0.0.1"]
EOF
# `env` without any HOTLINE_* variable of the caller's environment, then ours.
read -ra CLEAN_ENV <<<"env $(env | awk -F= '/^HOTLINE_/ {printf "-u %s ", $1}')"
DAEMON_ENV=("${CLEAN_ENV[@]}" HOTLINE_SIP_LISTEN="127.0.0.1:$SIP_PORT" HOTLINE_HTTP_LISTEN="127.0.0.1:$HTTP_PORT"
  HOTLINE_STATE_DIR="$OUT/state" HOTLINE_FLOWS_DIR="$OUT/flows" HOTLINE_DATABASE_URL=)

if curl -s -o /dev/null --max-time 1 "$BASE/healthz"; then
  echo "something already answers on 127.0.0.1:$HTTP_PORT (an older daemon?); not starting"
  exit 1
fi
echo "$ADMIN_PASSWORD" | "${DAEMON_ENV[@]}" "$HOTLINE" user add --name admin --role admin \
  --password-stdin --config "$OUT/hotline.toml" || { echo "hotline user add failed"; exit 1; }
# A plain command, so $! is the daemon itself (env execs it).
"${DAEMON_ENV[@]}" "$HOTLINE" serve --config "$OUT/hotline.toml" >"$OUT/daemon.log" 2>&1 &
DAEMON_PID=$!
healthy=
for _ in $(seq 1 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && { healthy=1; break; }
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$healthy" ] || { echo "the daemon did not become healthy:"; tail -n 30 "$OUT/daemon.log"; exit 1; }

mib() { # field of /proc/PID/status (VmHWM, VmRSS) in MiB
  awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$DAEMON_PID/status" 2>/dev/null
}
echo "daemon started: VmRSS $(mib VmRSS) MiB"

# login NAME PASSWORD [FORWARDED-FOR] → the HTTP status on stdout.
login() {
  local xff=()
  [ -n "${3:-}" ] && xff=(-H "X-Forwarded-For: $3")
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 \
    -H 'Cookie: hl_login=bench-login-token' "${xff[@]}" \
    --data-urlencode '_csrf=bench-login-token' --data-urlencode "name=$1" \
    --data-urlencode "password=$2" --data-urlencode 'next=/' "$BASE/login"
}

# burst NAME: BURST logins at once (login_args I → arguments of `login`); prints the
# status counts, the time and the memory.
burst() {
  local name=$1 i started pids=()
  local statuses=$OUT/$name.statuses
  : >"$statuses"
  started=$(date +%s.%N)
  for i in $(seq 1 "$BURST"); do
    # shellcheck disable=SC2046 # login_args prints the words on purpose
    login $(login_args "$i") >>"$statuses" &
    pids+=($!)
  done
  # Only the logins: a bare `wait` would wait for the daemon too.
  wait "${pids[@]}"
  echo "   $BURST logins in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.2f", e - s}') s"
  echo "   statuses: $(sort "$statuses" | uniq -c | awk '{printf "%s×%s ", $2, $1}')"
  local hwm rss
  hwm=$(mib VmHWM) rss=$(mib VmRSS)
  echo "   daemon memory: peak VmHWM $hwm MiB, VmRSS now $rss MiB (target: under $TARGET_MIB MiB)"
  awk -v h="$hwm" -v t="$TARGET_MIB" 'BEGIN {exit !(h + 0 < t + 0)}' &&
    echo "   memory: OK" || echo "   memory: OVER TARGET"
}

say "1. spread: $BURST unknown names, each from its own address"
# 198.18.0.0/15 is for benchmarks (RFC 2544); one address per login.
login_args() { echo "bench-user-$1 wrong-password-$1 198.18.$(($1 / 250)).$(($1 % 250 + 1))"; }
burst spread

say "2. one account, one address: $BURST wrong passwords for admin from 127.0.0.1"
login_args() { echo "admin wrong-password-$1"; }
burst one_address
echo "   expected: at most 5×401, the rest 429"
code=$(login admin "$ADMIN_PASSWORD" 198.19.0.1)
echo "   the right password from another address: $code (expected 303)"

say "security log"
sed 's/\x1b\[[0-9;]*m//g' "$OUT/daemon.log" | grep -o 'security: login refused .*' >"$OUT/refusals.log"
echo "   $(wc -l <"$OUT/refusals.log") refusal lines; by reason:"
grep -o 'reason=[a-z_]*' "$OUT/refusals.log" | sort | uniq -c | sed 's/^/     /'
echo "   e.g.: $(head -n 1 "$OUT/refusals.log")"
echo "   final: VmHWM $(mib VmHWM) MiB, VmRSS $(mib VmRSS) MiB; log ${OUT#"$ROOT"/}/daemon.log"
