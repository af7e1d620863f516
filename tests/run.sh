#!/usr/bin/env bash
# The one test command (README and .ci/run call it).
#   1. installs what the tests need when missing (sip-tester, tcpdump, curl; PostgreSQL running)
#   2. builds everything once (release profile: the SIPp and RTP tests are about timing)
#   3. runs the unit and store tests (SQLite and PostgreSQL)
#   4. runs SIPp scenarios against daemons it starts on loopback
#   5. runs the browser tests (Playwright driving Debian's Chromium) against a daemon
# Exits non-zero when anything failed; the last line counts the SIPp and browser checks.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/tests/out
# One run at a time on a machine: two would share the ports, the daemons and tests/out.
exec 9>/tmp/hotline-tests-run.lock
flock -n 9 || { echo "tests/run.sh: another run is in progress; waiting for it"; flock 9; }
rm -rf "$OUT" && mkdir -p "$OUT"

say() { printf '\n== %s\n' "$*"; }
# A check that fails early leaves its captures and phones running: end them all at exit.
trap 'kill $(jobs -p) 2>/dev/null' EXIT

# --- 1. what the tests need -------------------------------------------------------------
# need_pkg (shared with tests/bench/)
. "$ROOT/tests/lib.sh"
# baresip and linphonec as operators' phones: their install step, drivers and checks
. "$ROOT/tests/phones.sh"
say "tools"
need_pkg sipp sip-tester
need_pkg tcpdump tcpdump
need_pkg curl curl
need_pkg python3 python3
need_pkg pg_isready postgresql-client
install_phones
PCAPS=/usr/share/sip-tester
[ -f "$PCAPS/dtmf_2833_1.pcap" ] || { echo "sip-tester pcaps missing in $PCAPS"; exit 1; }

export HOTLINE_TEST_POSTGRES_URL=${HOTLINE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }

# --- 2. build once ----------------------------------------------------------------------
say "build"
# For development only: HOTLINE_BIN=path (with BUILD=0) runs the checks on another build.
if [ "${BUILD:-1}" != 0 ]; then cargo build --release --workspace --all-targets --locked || exit 1; fi
HOTLINE=${HOTLINE_BIN:-$ROOT/target/release/hotline}

# --- 3. unit and store tests ------------------------------------------------------------
say "unit and store tests"
unit_status=0
if [ -n "${ONLY:-}" ]; then
  echo "ONLY=$ONLY: unit tests skipped"
elif cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --locked --no-fail-fast || unit_status=1
else
  cargo test --release --workspace --locked --no-fail-fast || unit_status=1
fi

# --- 4. SIPp against the daemon ---------------------------------------------------------
say "SIPp scenarios"
passed=0
failed=0
check() { # name, then the command that must succeed
  local name=$1; shift
  # ONLY=regex (a developer's shortcut, never set by CI): run just the matching checks,
  # after the build and without the unit tests.
  if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  if "$@" >"$OUT/$name.log" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name (log: tests/out/$name.log)"; tail -n 25 "$OUT/$name.log" | sed 's/^/    /'
  fi
}

# The README's first command exactly as printed, from the top of the checkout: the daemon on
# its embedded defaults answers /healthz on 8080 and a call to 100 on 5060 (the README's
# "Then call it"). A second binary in the workspace once broke `cargo run` here.
readme_first_command() {
  local cmd; cmd=$(awk '/^## The two commands/{f=1;next} f && /^    [a-z]/{sub(/^    /,""); print; exit}' "$ROOT/README.md")
  echo "the README's first command: $cmd"
  [ -n "$cmd" ] || return 1
  # cargo run replaces itself with the daemon, so $! is the daemon.
  (cd "$ROOT" && exec $cmd) >"$OUT/readme-serve.log" 2>&1 &
  local pid=$! healthy=
  # Up to 10 minutes: `cargo run` builds the daemon without the test-only features the
  # workspace build above unified in, so hotline-core, -web and the daemon compile again.
  for _ in $(seq 1 3000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz)" = 200 ] && { healthy=1; break; }
    kill -0 $pid 2>/dev/null || break
    sleep 0.2
  done
  local rc=1
  if [ -n "$healthy" ]; then
    sipp -sn uac 127.0.0.1:5060 -s 100 -m 1 -d 1000 -p 15079 -mp 16090 -nostdin -timeout 20s -timeout_error && rc=0
  else
    echo "not healthy on 127.0.0.1:8080:"; tail -20 "$OUT/readme-serve.log"
  fi
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
  return $rc
}

# Logs as journald and a log shipper get them: with $JOURNAL_STREAM naming stderr, every
# line starts with its syslog priority (`journalctl -p err` works), and a refused flow set
# is a warning or an error; with log.format json every line is one JSON object, and the
# console's requests have access lines without their query strings.
logs_for_journald_and_json() {
  local dir=$OUT/logs; rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$ROOT/ivr-flows" "$dir/flows"
  local env=(HOTLINE_SIP_LISTEN=127.0.0.1:15994 HOTLINE_HTTP_LISTEN=127.0.0.1:15995
    HOTLINE_RTP_PORTS=31950-31998 HOTLINE_STATE_DIR=$dir/state HOTLINE_FLOWS_DIR=$dir/flows
    HOTLINE_DATABASE_URL=)
  : >"$dir/journal.log"
  local stream; stream=$(stat -c '%d:%i' "$dir/journal.log")
  env "${env[@]}" JOURNAL_STREAM="$stream" "$HOTLINE" serve 2>>"$dir/journal.log" >/dev/null &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:15995/healthz >/dev/null && break; sleep 0.1; done
  printf '\n[[broken' >>"$dir/flows/main.toml"   # the watcher reloads: the set is refused
  for _ in $(seq 1 50); do grep -q '^<[34]>.*main.toml' "$dir/journal.log" && break; sleep 0.1; done
  kill -TERM $pid; wait $pid 2>/dev/null
  echo "journal lines:"; head -3 "$dir/journal.log"; grep '^<[34]>' "$dir/journal.log" | head -3
  grep -q '^<6>' "$dir/journal.log" || { echo "no info line with <6>"; return 1; }
  grep -q '^<[34]>.*main.toml' "$dir/journal.log" || { echo "the refused flow set is not a <3>/<4> line"; return 1; }
  grep -vq '^<[0-7]>' "$dir/journal.log" && { echo "a line without its priority:"; grep -v '^<[0-7]>' "$dir/journal.log" | head -3; return 1; }
  # JSON.
  cp "$ROOT/ivr-flows/main.toml" "$dir/flows/main.toml"
  env "${env[@]}" HOTLINE_LOG__FORMAT=json "$HOTLINE" serve 2>"$dir/json.log" >/dev/null &
  pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:15995/healthz >/dev/null && break; sleep 0.1; done
  curl -s -o /dev/null "http://127.0.0.1:15995/login?next=%2Fsecret-query"
  sleep 0.3; kill -TERM $pid; wait $pid 2>/dev/null
  python3 - "$dir/json.log" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
objs = [json.loads(l) for l in lines]          # every line is one JSON object
assert all("level" in o and "target" in o for o in objs), "level/target missing"
access = [o for o in objs if o["target"] == "http_access"]
print(len(objs), "JSON lines; access:", access[:1])
assert any("/login" in json.dumps(o) for o in access), "no access line for /login"
assert not any("secret-query" in l for l in lines), "a query string was logged"
PY
}

# A call.ended webhook as an integrator's endpoint gets it: the receiver fails the first
# delivery (500) and takes the retry; both carry the same delivery id, and the signature
# (HMAC-SHA256 of "t.body" with the shared secret) checks out; the body is the call.
webhook_call_ended() {
  local dir=$OUT/webhook; rm -rf "$dir"; mkdir -p "$dir"
  python3 - "$dir/got.jsonl" 15997 <<'PY' &
import http.server, json, sys
out, port = sys.argv[1], int(sys.argv[2])
seen = []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        seen.append(1)
        with open(out, "a") as f:
            headers = {k.lower(): v for k, v in self.headers.items()}
            f.write(json.dumps({"headers": headers, "body": body}) + "\n")
        self.send_response(500 if len(seen) == 1 else 200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
  local receiver=$!
  printf '[[webhooks]]\nurl = "http://127.0.0.1:15997/hook"\nevents = ["call.ended"]\nsecret = "whsec_runsh_0123456789"\n[notify.retry]\nfirst_backoff_ms = 200\n' >"$dir/hotline.toml"
  HOTLINE_SIP_LISTEN=127.0.0.1:15996 HOTLINE_HTTP_LISTEN=127.0.0.1:15998 HOTLINE_RTP_PORTS=31950-31998 \
    HOTLINE_STATE_DIR=$dir/state HOTLINE_FLOWS_DIR=$ROOT/ivr-flows HOTLINE_DATABASE_URL= \
    "$HOTLINE" serve --config "$dir/hotline.toml" >"$dir/daemon.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:15998/healthz >/dev/null && break; sleep 0.1; done
  sipp -sn uac 127.0.0.1:15996 -s 100 -m 1 -d 500 -p 15078 -mp 16092 -nostdin -timeout 20s -timeout_error >"$dir/sipp.log" 2>&1
  for _ in $(seq 1 50); do [ -f "$dir/got.jsonl" ] && [ "$(wc -l <"$dir/got.jsonl")" = 2 ] && break; sleep 0.2; done
  kill -TERM $pid $receiver 2>/dev/null; wait $pid $receiver 2>/dev/null
  python3 - "$dir/got.jsonl" <<'PY'
import hashlib, hmac, json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
print(len(got), "deliveries")
assert len(got) == 2, "expected the failed delivery and its retry"
ids = {g["headers"]["hotline-delivery"] for g in got}
assert len(ids) == 1, ids
for g in got:
    h, body = g["headers"], g["body"]
    assert h["hotline-event"] == "call.ended", h
    parts = dict(p.split("=", 1) for p in h["hotline-signature"].split(","))
    want = hmac.new(b"whsec_runsh_0123456789", f'{parts["t"]}.{body}'.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], want), "bad signature"
    doc = json.loads(body)
    assert doc["event"] == "call.ended" and doc["data"]["called"] == "100", doc
print("signed, retried once, call to", doc["data"]["called"], "ended as", doc["data"]["end_reason"])
PY
}

# Backup and restore as an admin does them: a backup of a running daemon, refused into a
# non-empty directory, a restore refused while the daemon runs; then the state directory
# is wiped and restored, and the call taken before the backup is listed again.
backup_and_restore() {
  local dir=$OUT/backup; rm -rf "$dir"; mkdir -p "$dir"
  printf '[store]\nstate_dir = "%s"\ndatabase_url = ""\n' "$dir/state" >"$dir/hotline.toml"
  local c=(--config "$dir/hotline.toml")
  HOTLINE_SIP_LISTEN=127.0.0.1:15996 HOTLINE_HTTP_LISTEN=127.0.0.1:15998 HOTLINE_RTP_PORTS=31950-31998 \
    HOTLINE_FLOWS_DIR=$ROOT/ivr-flows "$HOTLINE" serve "${c[@]}" >"$dir/daemon.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:15998/healthz >/dev/null && break; sleep 0.1; done
  sipp -sn uac 127.0.0.1:15996 -s 100 -m 1 -d 500 -p 15078 -mp 16092 -nostdin -timeout 20s -timeout_error >"$dir/sipp.log" 2>&1 || return 1
  sleep 0.5
  "$HOTLINE" backup "$dir/bk" "${c[@]}" || { echo "backup failed"; return 1; }
  [ -s "$dir/bk/MANIFEST" ] || { echo "no MANIFEST"; return 1; }
  "$HOTLINE" backup "$dir/bk" "${c[@]}" && { echo "a backup into a non-empty directory was not refused"; return 1; }
  "$HOTLINE" restore "$dir/bk" "${c[@]}" && { echo "a restore under a running daemon was not refused"; return 1; }
  kill -TERM $pid; wait $pid 2>/dev/null
  rm -rf "$dir/state"
  "$HOTLINE" restore "$dir/bk" "${c[@]}" || { echo "restore failed"; return 1; }
  local calls; calls=$("$HOTLINE" calls "${c[@]}") || return 1
  echo "$calls" | tail -2
  echo "$calls" | grep -q ',100,'
}

API_TOKEN=test-token-0123456789abcdef
SIP_PORT=15060
HTTP_PORT=18080
SIPP_PORT=15070
MEDIA_PORT=16000

# start_daemon NAME [extra config lines] [test clock]: a daemon on loopback with its own
# state dir; the test clock (RFC 3339) is the wall time its flows see at start.
start_daemon() {
  local name=$1 extra=${2:-} clock=${3:-}
  local dir=$OUT/$name
  mkdir -p "$dir"
  cp -r "$ROOT/ivr-flows" "$dir/flows"
  cp "$ROOT"/tests/sipp/flows/*.toml "$dir/flows/"
  printf '[api]\ntoken = "%s"\n[rtp]\nports = "31000-31999"\n%s\n' "$API_TOKEN" "$extra" >"$dir/hotline.toml"
  export HOTLINE_SIP_LISTEN=127.0.0.1:$SIP_PORT HOTLINE_HTTP_LISTEN=127.0.0.1:$HTTP_PORT \
    HOTLINE_STATE_DIR=$dir/state HOTLINE_FLOWS_DIR=$dir/flows HOTLINE_DATABASE_URL=
  DAEMON_DIR=$dir
  [ -n "${PRESTART:-}" ] && { $PRESTART || return 1; }
  HOTLINE_TEST_CLOCK=$clock "$HOTLINE" serve --config "$dir/hotline.toml" >"$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  DAEMON_DIR=$dir
  echo $DAEMON_PID >"$dir/pid"
  # For tests that restart the daemon mid-way (SIGTERM, then the same state and config):
  # restart.sh [stop|start], both without an argument.
  cat >"$dir/restart.sh" <<EOS
#!/usr/bin/env bash
if [ "\${1:-}" != start ]; then
  pid=\$(cat "$dir/pid"); kill -TERM "\$pid"
  for _ in \$(seq 1 100); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.1; done
  [ "\${1:-}" = stop ] && exit 0
fi
export HOTLINE_SIP_LISTEN=$HOTLINE_SIP_LISTEN HOTLINE_HTTP_LISTEN=$HOTLINE_HTTP_LISTEN HOTLINE_STATE_DIR=$dir/state HOTLINE_FLOWS_DIR=$dir/flows HOTLINE_DATABASE_URL=$HOTLINE_DATABASE_URL HOTLINE_TEST_CLOCK=$clock
nohup "$HOTLINE" serve --config "$dir/hotline.toml" >>"$dir/daemon.log" 2>&1 &
echo \$! >"$dir/pid"
for _ in \$(seq 1 100); do
  [ "\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$HTTP_PORT/healthz)" = 200 ] && exit 0
  sleep 0.1
done
echo "the daemon did not come back"; exit 1
EOS
  chmod +x "$dir/restart.sh"
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz")" = 200 ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "daemon $name did not become healthy:"; cat "$dir/daemon.log"; return 1
}

stop_daemon() {
  # A test may have restarted it: the pid file names the one running now.
  local now; now=$(cat "$DAEMON_DIR/pid" 2>/dev/null || echo "$DAEMON_PID")
  kill -TERM "$now" "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$now" 2>/dev/null || break; sleep 0.1; done
}

# The newest CDR of the daemon in $DAEMON_DIR, as CSV.
last_call() { "$HOTLINE" calls --config "$DAEMON_DIR/hotline.toml" --limit 1 | tail -n 1; }

sipp_run() { # scenario-or-builtin service [sipp args...]
  local scen=$1 service=$2; shift 2
  local sf=(-sf "$scen"); [ "$scen" = uac ] && sf=(-sn uac)
  sipp "${sf[@]}" -s "$service" 127.0.0.1:$SIP_PORT -i 127.0.0.1 -p $SIPP_PORT \
    -mi 127.0.0.1 -mp $MEDIA_PORT -nostdin -timeout 60s -timeout_error -max_recv_loops 1000 \
    -trace_err -error_file "$OUT/sipp-errors.log" "$@"
}

prompt_ms() { python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getnframes()*1000//w.getframerate())" "$1"; }

caller_presses() { # template digit expected-step other-step
  local template=$1 digit=$2 step=$3 other=$4
  local pause=$(( $(prompt_ms "$ROOT/ivr-flows/prompts/welcome.wav") + 800 ))
  local scen=$OUT/${template}_$digit.xml
  sed -e "s/@DIGIT@/$digit/g" -e "s/@PAUSE_MS@/$pause/g" -e "s#@PCAPS@#$PCAPS#g" \
    "$ROOT/tests/sipp/$template.xml.in" >"$scen"
  local cap=$OUT/rtp_${template}_$digit.pcap
  tcpdump -i lo -U -w "$cap" "udp and dst port $MEDIA_PORT" 2>/dev/null &
  local tcpdump_pid=$!
  sleep 0.5
  sipp_run "$scen" 100 -m 1
  local rc=$?
  sleep 0.3; kill -INT $tcpdump_pid; wait $tcpdump_pid 2>/dev/null
  [ $rc = 0 ] || { echo "sipp exit $rc"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  # id,call_id,caller,called,started,answered,ended,end_reason,digits,flow,version,path
  IFS=, read -r _ _ caller called _ answered _ reason digits flow _ path _ <<<"$cdr"
  [ "$caller" = "+36301234567" ] && [ "$called" = 100 ] && [ -n "$answered" ] || { echo "CDR caller/called/answer wrong"; return 1; }
  [ "$digits" = "$digit" ] || { echo "CDR digits '$digits', expected '$digit'"; return 1; }
  [ "$reason" = flow_hangup ] || { echo "CDR end reason '$reason', expected flow_hangup"; return 1; }
  case " $path " in *" $step "*) ;; *) echo "path '$path' lacks step $step"; return 1 ;; esac
  case " $path " in *" $other "*) echo "path '$path' took step $other too"; return 1 ;; esac
  python3 "$ROOT/tests/sipp/heard.py" "$cap" $MEDIA_PORT pcma \
    --heard "$ROOT/ivr-flows/prompts/welcome.wav" "$ROOT/ivr-flows/prompts/$step.wav" "$ROOT/ivr-flows/prompts/goodbye.wav" \
    --not-heard "$ROOT/ivr-flows/prompts/$other.wav"
}

# A spoofed RFC 4733 '1' from another port of the caller's host, sent in the menu before
# the caller's own '2', is no key press: the caller hears support, not sales.
spoofed_digit_ignored() {
  local welcome; welcome=$(prompt_ms "$ROOT/ivr-flows/prompts/welcome.wav")
  (
    line=$(timeout 15 tcpdump -i lo -nn -l -c 1 "udp and dst port $MEDIA_PORT" 2>/dev/null)
    port=$(sed -nE "s/.* 127\.0\.0\.1\.([0-9]+) > 127\.0\.0\.1\.$MEDIA_PORT:.*/\1/p" <<<"$line")
    [ -n "$port" ] || { echo "no RTP from the daemon seen: $line"; exit 1; }
    sleep "$(( welcome + 300 ))e-3"
    python3 "$ROOT/tests/sipp/spoof_dtmf.py" 127.0.0.1 "$port" 1
  ) &
  local spoofer=$!
  caller_presses caller_presses_digit 2 support sales; local rc=$?
  wait $spoofer || { echo "the spoofer did not send"; return 1; }
  return $rc
}

# SIP over TCP: a peer that starts a message and never finishes it is cut off after
# sip.tcp_message_timeout_secs (2 here), and says so in the security log.
sip_tcp_slow_message_cut() {
  python3 - "$SIP_PORT" <<'PY' || return 1
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")
start = time.monotonic()
s.settimeout(8)
try:
    while True:
        time.sleep(0.5)
        s.sendall(b"1")  # a byte now and then, never the end of the header
except (BrokenPipeError, ConnectionResetError, socket.timeout):
    pass
took = time.monotonic() - start
print(f"closed after {took:.1f} s")
sys.exit(0 if 1.5 <= took <= 4 else 1)
PY
  grep -F 'security: sip tcp timeout reason="no whole message in time" from=127.0.0.1' "$DAEMON_DIR/daemon.log"
}

# A wrong SIP password is a line in the security log and a counter in /metrics.
sip_auth_failure_logged() {
  grep -E 'security: sip auth failed user="1001" (repeated=[0-9]+ )?from=127\.0\.0\.1' "$DAEMON_DIR/daemon.log" || return 1
  # The SIP task exports its counters once a second.
  local m
  for _ in $(seq 1 30); do
    m=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics") || return 1
    echo "$m" | grep -Eq '^hotline_sip_auth_failures_total [1-9]' && break
    sleep 0.1
  done
  echo "$m" | grep -E '^hotline_sip_(auth_failures|auth_challenges|auth_throttled|rate_limited|calls_over_limit|stray_responses)_total'
  echo "$m" | grep -Eq '^hotline_sip_auth_failures_total [1-9]' &&
  echo "$m" | grep -Eq '^hotline_sip_calls_over_limit_total 0'
}

cancelled() {
  sipp_run "$ROOT/tests/sipp/cancel_before_answer.xml" 200 -m 1 || return 1
  sleep 0.3
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  IFS=, read -r _ _ _ called _ answered _ reason _ <<<"$cdr"
  [ "$called" = 200 ] && [ -z "$answered" ] && [ "$reason" = cancelled ]
}

metrics_exposed() {
  local m; m=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics") || return 1
  echo "$m" | grep -E '^hotline_(active_calls|calls_total|rtp_packets|sip_)' 
  echo "$m" | grep -q '^hotline_active_calls 0' &&
  echo "$m" | grep -Eq '^hotline_calls_total\{reason="flow_hangup"\} [1-9]' &&
  echo "$m" | grep -Eq '^hotline_rtp_packets_sent_total [1-9]' &&
  echo "$m" | grep -Eq '^hotline_rtp_packets_received_total [1-9]' &&
  echo "$m" | grep -Eq '^hotline_sip_requests_total\{direction="in",method="INVITE"\} [1-9]' &&
  echo "$m" | grep -Eq '^hotline_sip_responses_total\{direction="out",class="2xx"\} [1-9]'
}

# The API as an integrator meets it: /api/v1, errors as problem details (RFC 9457) even
# for a body sent without its content type, a missing token or an unknown path, and an
# OpenAPI document listing the routes.
api_v1_problem_details() {
  local h=http://127.0.0.1:$HTTP_PORT auth=(-H "Authorization: Bearer $API_TOKEN") out
  curl -sf "${auth[@]}" "$h/api/v1/queues" >/dev/null || { echo "GET /api/v1/queues failed"; return 1; }
  out=$(curl -s -D - "${auth[@]}" -X PUT -d '{"state":"online"}' "$h/api/v1/operators/nobody/state")
  echo "$out"
  grep -q '^HTTP/1.1 415' <<<"$out" && grep -qi '^content-type: application/problem+json' <<<"$out" &&
    grep -q '"status":415' <<<"$out" && grep -q "Content-Type: application/json" <<<"$out" || return 1
  out=$(curl -s -D - -o /dev/null "$h/api/v1/queues")
  grep -q '^HTTP/1.1 401' <<<"$out" && grep -qi '^www-authenticate: Bearer' <<<"$out" || { echo "$out"; return 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "${auth[@]}" "$h/api/v1/nothing")" = "404 application/problem+json" ] || return 1
  curl -sf "$h/api/v1/openapi.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
paths = sorted(p for p in doc["paths"] if p.startswith("/api/v1/"))
print("OpenAPI", doc["openapi"], paths)
assert "/api/v1/queues" in paths and "/api/v1/operators/{name}/state" in paths'
}

# Per-user API tokens as an admin makes them: shown once, good for their user's role,
# listed with their last use, and refused once revoked.
api_tokens_per_user() {
  local h=http://127.0.0.1:$HTTP_PORT c=(--config "$DAEMON_DIR/hotline.toml") t
  echo "a-long-admin-password" | "$HOTLINE" user add --name tokadmin --role admin --password-stdin "${c[@]}" >/dev/null || return 1
  t=$("$HOTLINE" token add --name runsh --user tokadmin "${c[@]}") || return 1
  [[ "$t" == hlt_* ]] || { echo "token add printed: $t"; return 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$h/api/v1/calls?limit=1")" = 200 ] || return 1
  curl -s -H "Authorization: Bearer $t" "$h/api/v1/calls?limit=1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("calls:", len(d["calls"]), "next:", d["next"])
assert len(d["calls"]) == 1'
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$h/api/v1/chats?state=bogus")" = 400 ] || return 1
  "$HOTLINE" token list "${c[@]}" | tee /dev/stderr | grep -q '^runsh,tokadmin,' || return 1
  "$HOTLINE" token revoke runsh "${c[@]}" || return 1
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$h/api/v1/queues")" = 401 ]
}

held_and_resumed() {
  sipp_run "$ROOT/tests/sipp/hold_and_resume.xml" 100 -m 1 || return 1
  sleep 0.3
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  IFS=, read -r _ _ caller _ _ _ _ reason _ <<<"$cdr"
  [ "$caller" = "+36301112222" ] && [ "$reason" = caller_hangup ]
}

# SIGHUP: a broken flow file is refused and the running flows kept; a good change is
# taken, and the next call's CDR carries the new flow version.
reload_on_sighup() {
  local flows=$DAEMON_DIR/flows before after
  sipp_run uac 100 -m 1 -d 200 || return 1
  before=$(last_call | cut -d, -f11)
  printf 'name = "broken"\nstart = "nowhere"\n[steps.x]\ntype = "dance"\n' >"$flows/broken.toml"
  kill -HUP "$DAEMON_PID"; sleep 0.5
  grep -q "reload refused" "$DAEMON_DIR/daemon.log" || { echo "broken flow not refused"; return 1; }
  grep "broken.toml:" "$DAEMON_DIR/daemon.log" | head -3
  sipp_run uac 100 -m 1 -d 200 || { echo "no call after a refused reload"; return 1; }
  [ "$(last_call | cut -d, -f11)" = "$before" ] || { echo "version changed on a refused reload"; return 1; }
  rm "$flows/broken.toml"
  printf '\n# edited by the reload test\n' >>"$flows/main.toml"
  kill -HUP "$DAEMON_PID"; sleep 0.5
  grep -q "flows reloaded" "$DAEMON_DIR/daemon.log" || { echo "good flows not reloaded"; return 1; }
  sipp_run uac 100 -m 1 -d 200 || return 1
  after=$(last_call | cut -d, -f11)
  echo "flow version before $before, after $after"
  [ -n "$after" ] && [ "$after" != "$before" ]
}

# Reload while a call is up: the call keeps the flow version it started with, the next
# call gets the new one (the file watcher reloads; no signal).
reload_during_call() {
  sipp_run "$ROOT/tests/sipp/caller_listens.xml" 100 -m 1 -d 4000 >"$OUT/reload-call-a.log" 2>&1 &
  local a=$!
  sleep 1
  printf '\n# edited during a live call\n' >>"$DAEMON_DIR/flows/main.toml"
  sleep 1.5
  grep -q 'flows reloaded trigger="file change"' "$DAEMON_DIR/daemon.log" || { echo "file change not reloaded"; return 1; }
  SIPP_PORT=15074 MEDIA_PORT=16020 sipp_run uac 100 -m 1 -d 300 || return 1
  wait $a || { echo "the live call failed:"; cat "$OUT/reload-call-a.log"; return 1; }
  local calls; calls=$("$HOTLINE" calls --config "$DAEMON_DIR/hotline.toml" --limit 2 | tail -n 2)
  echo "$calls"
  # A started before the edit, B after it: A has the lower id.
  local a_ver b_ver
  a_ver=$(echo "$calls" | sort -t, -k1,1n | head -1 | cut -d, -f11)
  b_ver=$(echo "$calls" | sort -t, -k1,1n | tail -1 | cut -d, -f11)
  echo "live call kept $a_ver, new call got $b_ver"
  [ -n "$a_ver" ] && [ -n "$b_ver" ] && [ "$a_ver" != "$b_ver" ]
}

# flow check on deliberately broken files prints exactly the expected file:line:col lines.
flow_check_broken() {
  (cd "$ROOT" && "$HOTLINE" flow check tests/flows/broken >"$OUT/flow-check.out" 2>/dev/null); local rc=$?
  [ $rc = 1 ] || { echo "exit status $rc, expected 1"; return 1; }
  diff -u "$ROOT/tests/flows/broken.expected" "$OUT/flow-check.out" || return 1
  (cd "$ROOT" && "$HOTLINE" flow check ivr-flows) || { echo "the example flows must check clean"; return 1; }
}

# flow simulate, through the CLI, matches the reviewed golden outputs.
flow_simulate_golden() {
  local H="$HOTLINE flow simulate --flows $ROOT/ivr-flows" g="$ROOT/tests/flows/golden" ok=0
  diff -u "$g/workday-callback-own-number.txt" <($H --called 300 --caller +36209990000 --at 2026-11-24T10:00:00+01:00 --digits 2,1 --promise-in 45) || ok=1
  diff -u "$g/holiday-anonymous-keys-number.txt" <($H --called +3612345678 --caller anonymous --at 2026-12-25T10:00:00+01:00 --digits 1,06301234567#) || ok=1
  diff -u "$g/after-hours-silent.txt" <($H --called 300 --caller +36209990000 --at 2026-11-24T20:00:00+01:00) || ok=1
  local bad; bad=$($H --called 300 --caller x --at yesterday 2>&1); local rc=$?
  [ $rc = 2 ] && [[ "$bad" == *"RFC 3339"* ]] || { echo "bad --at not explained (exit $rc): $bad"; ok=1; }
  return $ok
}

# The same number at three moments: what the caller hears and the path the CDR records.
schedule_branch() { # expected-step prompt-heard prompts-not-heard...
  local step=$1 heard=$2; shift 2
  local cap=$OUT/rtp_schedule_$step.pcap
  tcpdump -i lo -U -w "$cap" "udp and dst port $MEDIA_PORT" 2>/dev/null &
  local tcpdump_pid=$!
  sleep 0.5
  sipp_run "$ROOT/tests/sipp/caller_listens.xml" 300 -m 1 -d 5000
  local rc=$?
  sleep 0.3; kill -INT $tcpdump_pid; wait $tcpdump_pid 2>/dev/null
  [ $rc = 0 ] || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  case "$cdr" in *" $step "*|*",$step "*|*" $step,"*) ;; *) echo "path lacks $step"; return 1 ;; esac
  local not=()
  for p in "$@"; do not+=("$ROOT/ivr-flows/prompts/$p.wav"); done
  python3 "$ROOT/tests/sipp/heard.py" "$cap" $MEDIA_PORT pcma --heard "$ROOT/ivr-flows/prompts/$heard.wav" --not-heard "${not[@]}"
}

# After hours the caller leaves a callback request for their own number with two key presses.
after_hours_callback_request() {
  local first=$(( $(prompt_ms "$ROOT/ivr-flows/prompts/closed.wav") + 800 ))
  local second=$(( 1200 ))
  local scen=$OUT/caller_leaves_callback.xml
  sed -e "s/@FIRST_KEY@/1/" -e "s/@FIRST_MS@/$first/" -e "s/@SECOND_MS@/$second/" "$ROOT/tests/sipp/caller_leaves_callback.xml.in" >"$scen"
  sipp_run "$scen" 300 -m 1 || return 1
  sleep 0.3
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  case "$cdr" in *"after_hours callback_menu leave_callback goodbye"*) ;; *) echo "unexpected path"; return 1 ;; esac
  local req; req=$("$HOTLINE" callbacks --config "$DAEMON_DIR/hotline.toml" --limit 1 | tail -n 1); echo "request: $req"
  IFS=, read -r _ number queue promise source _ <<<"$req"
  # The step says the computed time, so no fixed promise prompt is recorded with it.
  [ "$number" = "+36209990000" ] && [ "$queue" = support ] && [ -z "$promise" ] && [ "$source" = ivr ]
}

# In working hours a caller asks for a callback from the main menu (2, then 1 for their own
# number). Hotline computes when it can call (nobody waits, few entries before them, the
# test queue has no callback window): within half an hour. The caller hears that, not the step's fallback, and the entry
# carries the time.
caller_hears_computed_promise() {
  local first=$(( $(prompt_ms "$ROOT/ivr-flows/prompts/welcome.wav") + 1500 ))
  local scen=$OUT/caller_asks_callback.xml cap=$OUT/rtp_computed_promise.pcap
  sed -e "s/@FIRST_KEY@/2/" -e "s/@FIRST_MS@/$first/" -e "s/@SECOND_MS@/1500/" -e "s/+36209990000/+36209990042/" \
    "$ROOT/tests/sipp/caller_leaves_callback.xml.in" >"$scen"
  tcpdump -i lo -U -w "$cap" "udp and dst port $MEDIA_PORT" 2>/dev/null &
  local tcpdump_pid=$!
  sleep 0.5
  local before_ms; before_ms=$(date +%s%3N)
  sipp_run "$scen" 300 -m 1; local rc=$?
  sleep 0.3; kill -INT $tcpdump_pid; wait $tcpdump_pid 2>/dev/null
  [ $rc = 0 ] || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  case "$cdr" in *"main_menu leave_callback goodbye"*) ;; *) echo "unexpected path"; return 1 ;; esac
  python3 "$ROOT/tests/sipp/heard.py" "$cap" $MEDIA_PORT pcma \
    --heard "$ROOT/ivr-flows/prompts/promise-30min.wav" \
    --not-heard "$ROOT/ivr-flows/prompts/promise-next-workday.wav" || return 1
  # (promise-today is not checked: it opens with the same "We will call you back" as
  # promise-30min, and heard.py also matches a prompt's opening stretch.)
  local entry; entry=$("$HOTLINE" callback-list --config "$DAEMON_DIR/hotline.toml" | grep ',+36209990042,'); echo "entry: $entry"
  local promised; promised=$(echo "$entry" | cut -d, -f8)
  [ -n "$promised" ] && [ "$promised" -gt "$before_ms" ] && [ "$promised" -le $(( before_ms + 30*60*1000 + 60*1000 )) ] ||
    { echo "promised time $promised is not within 30 min of the call"; return 1; }
}

# On a workday at 16:30 the support queue offers a callback at entry: the caller takes it.
# The pauses come from `hotline flow simulate` (menu after the welcome, the offer at queue
# entry, the own-number confirmation).
caller_takes_offer() {
  local scen=$OUT/caller_takes_offer.xml
  sed -e "s/@FIRST_MS@/9700/" -e "s/@SECOND_MS@/3000/" -e "s/@THIRD_MS@/6300/" "$ROOT/tests/sipp/caller_takes_offer.xml.in" >"$scen"
  sipp_run "$scen" 300 -m 1 || return 1
  sleep 0.3
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  case "$cdr" in *"support_queue leave_callback goodbye"*) ;; *) echo "unexpected path"; return 1 ;; esac
}

# The silent after-hours caller (missed) and the one who left a callback request are the
# same number: the shared callback list has one entry for it, counting both calls.
one_callback_entry_per_number() {
  local list; list=$("$HOTLINE" callback-list --config "$DAEMON_DIR/hotline.toml"); echo "$list"
  [ "$(echo "$list" | tail -n +2 | wc -l)" = 1 ] || { echo "expected exactly one entry"; return 1; }
  IFS=, read -r _ number count _ <<<"$(echo "$list" | tail -n 1)"
  [ "$number" = "+36209990000" ] && [ "$count" = 2 ]
}

# --- operators and queues ---------------------------------------------------------------
add_operators() {
  echo "anna-secret-1" | "$HOTLINE" operator add anna --sip-user 1001 --password-stdin --config "$DAEMON_DIR/hotline.toml" &&
  echo "bela-secret-2" | "$HOTLINE" operator add bela --sip-user 1002 --password-stdin --config "$DAEMON_DIR/hotline.toml"
}

operator_state() { # name state → HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $API_TOKEN" \
    -H 'Content-Type: application/json' -d "{\"state\":\"$2\"}" "http://127.0.0.1:$HTTP_PORT/api/operators/$1/state"
}

register_phone() { # user password port
  sipp -sf "$ROOT/tests/sipp/register.xml" -s "$1" 127.0.0.1:$SIP_PORT -i 127.0.0.1 -p "$3" -m 1 \
    -au "$1" -ap "$2" -nostdin -timeout 10s -timeout_error
}

# An operator's phone (SIPp) on the port it registered from; runs in the background.
phone() { # scenario user port media-port ring-ms log
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/$1.xml" >"$OUT/$1.xml"
  sipp -sf "$OUT/$1.xml" -s "$2" -i 127.0.0.1 -p "$3" -mi 127.0.0.1 -mp "$4" -m 1 -d "$5" \
    -nostdin -timeout 60s -timeout_error >"$OUT/$6" 2>&1 &
  PHONE_PID=$!
}

caller_talks() { # called ms
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/caller_talks.xml.in" >"$OUT/caller_talks.xml"
  sipp_run "$OUT/caller_talks.xml" "$1" -m 1 -d "$2"
}

# live_event QUEUE FIELD=N...: some event in live-figures.txt shows QUEUE with these numbers.
live_event() {
  python3 - "$OUT/live-figures.txt" "$@" <<'PY'
import json, sys
path, queue, want = sys.argv[1], sys.argv[2], dict(a.split("=") for a in sys.argv[3:])
for line in open(path):
    if line.startswith("data:"):
        for q in json.loads(line[5:]):
            if q["queue"] == queue and all(q[k] == int(v) for k, v in want.items()):
                sys.exit(0)
sys.exit(1)
PY
}

# A caller waits with music, anna answers, and each hears the other through Hotline.
operator_bridged() {
  register_phone 1001 anna-secret-1 15081 || { echo "anna could not register"; return 1; }
  [ "$(operator_state anna online)" = 204 ] || { echo "anna not set online"; return 1; }
  local figures; figures=$(curl -s -H "Authorization: Bearer $API_TOKEN" "http://127.0.0.1:$HTTP_PORT/api/operators")
  echo "operators: $figures"
  [[ "$figures" == *'"name":"anna","state":"online"'*'"phone_registered":true'* ]] || { echo "anna not online with a phone"; return 1; }
  tcpdump -i lo -U -w "$OUT/bridge_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/bridge_operator.pcap" "udp and dst port 16030" 2>/dev/null & local td2=$!
  sleep 0.5
  curl -sN --max-time 11 -H "Authorization: Bearer $API_TOKEN" "http://127.0.0.1:$HTTP_PORT/api/queues/live" >"$OUT/live-figures.txt" &
  local live=$!
  phone operator_answers 1001 15081 16030 3000 anna-phone.log; local anna=$PHONE_PID
  caller_talks 500 9000; local rc=$?
  wait $live
  echo "live figures:"; grep '^data:' "$OUT/live-figures.txt" | head -6
  live_event support waiting=1 || { echo "no live event with the caller waiting"; return 1; }
  live_event support waiting=0 busy=1 || { echo "no live event with anna busy"; return 1; }
  wait $anna; local anna_rc=$?
  sleep 0.3; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  [ $rc = 0 ] || { echo "caller failed"; return 1; }
  [ $anna_rc = 0 ] || { echo "anna's phone failed:"; tail -20 "$OUT/anna-phone.log"; return 1; }
  grep -q 'caller connected to operator.*operator=anna' "$DAEMON_DIR/daemon.log" || { echo "not bridged to anna"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",caller_hangup,"* && "$cdr" == *",anna,"* ]] || { echo "CDR lacks the end reason or the operator"; return 1; }
  echo "caller heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/bridge_caller.pcap" $MEDIA_PORT pcma \
    --heard "$ROOT/ivr-flows/prompts/hold-music.wav" "$PCAPS/g711a.pcap" || return 1
  echo "anna heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/bridge_operator.pcap" 16030 pcma \
    --heard "$PCAPS/g711a.pcap" --not-heard "$ROOT/ivr-flows/prompts/hold-music.wav"
}

# After anna answered a queued caller: the call histograms an admin alerts on count it, and
# every metric has its HELP line.
call_histograms_exposed() {
  local m; m=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics") || return 1
  echo "$m" | grep -E '^hotline_(queue_wait|ring|talk)_seconds_count|^hotline_build_info'
  echo "$m" | grep -Eq '^hotline_queue_wait_seconds_count\{queue="support",outcome="answered"\} [1-9]' &&
  echo "$m" | grep -Eq '^hotline_ring_seconds_count\{outcome="answered"\} [1-9]' &&
  echo "$m" | grep -Eq '^hotline_talk_seconds_bucket\{queue="support",le="\+Inf"\} [1-9]' &&
  echo "$m" | grep -q '^hotline_build_info{version="' || return 1
  local help type
  help=$(echo "$m" | grep -c '^# HELP hotline_'); type=$(echo "$m" | grep -c '^# TYPE hotline_')
  echo "HELP lines $help, TYPE lines $type"
  [ "$help" = "$type" ] && [ "$help" -gt 20 ]
}

# The caller gives up while anna's phone rings: the phone gets CANCEL; a missed call is kept.
caller_gives_up_while_ringing() {
  sleep 1.5 # anna's wrap-up after the last call
  phone operator_ignores 1001 15081 16030 0 anna-ignores.log; local anna=$PHONE_PID
  caller_talks 500 2500 || { echo "caller failed"; return 1; }
  wait $anna || { echo "anna's phone got no CANCEL:"; tail -20 "$OUT/anna-ignores.log"; return 1; }
  local missed; missed=$("$HOTLINE" missed --config "$DAEMON_DIR/hotline.toml" --limit 1 | tail -n 1)
  echo "missed: $missed"
  IFS=, read -r _ number _ queue reason waited _ <<<"$missed"
  [ "$number" = "+36209990000" ] && [ "$queue" = support ] && [ "$reason" = abandoned ] && [ "$waited" -ge 2000 ]
}

# Ring, no answer: after the queue's 5 s ring timeout the call goes to the next operator.
ring_no_answer_goes_to_next() {
  register_phone 1002 bela-secret-2 15082 || { echo "bela could not register"; return 1; }
  [ "$(operator_state bela online)" = 204 ] || return 1
  phone operator_ignores 1001 15081 16030 0 anna-misses.log; local anna=$PHONE_PID
  phone operator_answers 1002 15082 16040 500 bela-phone.log; local bela=$PHONE_PID
  local t0=$SECONDS
  caller_talks 500 9000 || { echo "caller failed"; return 1; }
  wait $anna || { echo "anna's phone got no CANCEL:"; tail -20 "$OUT/anna-misses.log"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/bela-phone.log"; return 1; }
  grep 'ringing operator\|connected to operator' "$DAEMON_DIR/daemon.log" | tail -3
  grep 'caller connected to operator' "$DAEMON_DIR/daemon.log" | tail -1 | grep -q 'operator=bela'
}

wrong_password_refused() {
  sipp -sf "$ROOT/tests/sipp/register_refused.xml" -s 1001 127.0.0.1:$SIP_PORT -i 127.0.0.1 -p 15083 -m 1 \
    -au 1001 -ap not-the-password -nostdin -timeout 10s -timeout_error
}

# An unknown address asks for an external number: 407, then 403; the trunk hears nothing.
toll_fraud_refused() {
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",15099)); s.settimeout(6)
try:
    d,a=s.recvfrom(65535); open(sys.argv[1],"wb").write(d)
except socket.timeout: pass' "$OUT/trunk-received" &
  local trunk=$!
  sleep 0.3
  sipp -sf "$ROOT/tests/sipp/toll_fraud.xml" -s 0036301234567 127.0.0.1:$SIP_PORT -i 127.0.0.2 -p 15084 \
    -mi 127.0.0.2 -mp 16050 -m 1 -au 1001 -ap guessed-password -nostdin -timeout 10s -timeout_error || { echo "not refused as expected"; return 1; }
  wait $trunk
  [ ! -s "$OUT/trunk-received" ] || { echo "something reached the trunk!"; return 1; }
}

# Click-to-call: anna's phone rings first, then the customer through the trunk with the
# hotline number as caller ID; both hear each other through Hotline.
click_to_call() {
  local api="http://127.0.0.1:$HTTP_PORT/api/calls"
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"operator":"anna","to":"+36301234567"}' "$api")
  [ "$code" = 401 ] || { echo "unauthenticated click-to-call got $code, expected 401"; return 1; }
  local bad; bad=$(curl -s -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' -d '{"operator":"anna","to":"call me"}' "$api")
  [[ "$bad" == *"not a phone number"* ]] || { echo "a bad number is not explained: $bad"; return 1; }
  sleep 1.5 # bela's wrap-up; anna is free
  tcpdump -i lo -U -w "$OUT/c2c_operator.pcap" "udp and dst port 16030" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/c2c_customer.pcap" "udp and dst port 16070" 2>/dev/null & local td2=$!
  sleep 0.5
  phone operator_answers 1001 15081 16030 500 c2c-anna.log; local anna=$PHONE_PID
  phone customer_answers 0 15099 16070 5000 c2c-customer.log; local customer=$PHONE_PID
  local reply; reply=$(curl -s -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"operator":"anna","to":"+36301234567"}' "$api"); echo "POST /api/calls: $reply"
  [[ "$reply" == *'"call_id":"c2c-'* ]] || return 1
  wait $customer || { echo "the customer's phone failed:"; tail -20 "$OUT/c2c-customer.log"; return 1; }
  wait $anna || { echo "anna's phone failed:"; tail -20 "$OUT/c2c-anna.log"; return 1; }
  sleep 0.3; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  IFS=, read -r _ call_id caller called _ answered _ reason _ <<<"$cdr"
  [[ "$call_id" == c2c-* && "$caller" == "+3612345678" && "$called" == "+36301234567" && -n "$answered" && "$reason" == caller_hangup && "$cdr" == *",anna,"* ]] || { echo "CDR wrong"; return 1; }
  echo "anna heard:"; python3 "$ROOT/tests/sipp/heard.py" "$OUT/c2c_operator.pcap" 16030 pcma --heard "$PCAPS/g711a.pcap" || return 1
  echo "the customer heard:"; python3 "$ROOT/tests/sipp/heard.py" "$OUT/c2c_customer.pcap" 16070 pcma --heard "$PCAPS/g711a.pcap"
}

# A click-to-call runs like any inbound call once both sides answer (one driver): anna's
# phone answers, the customer answers, anna transfers them blind to bela (REFER), and bela
# hears the customer. The record keeps both legs.
click_to_call_transfer() {
  local api="http://127.0.0.1:$HTTP_PORT/api/calls"
  sleep 1.5 # wrap-up after the last call
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/operator_transfers.xml" >"$OUT/operator_transfers.xml"
  sipp -sf "$OUT/operator_transfers.xml" -s 1001 -key target 1002 -i 127.0.0.1 -p 15081 -mi 127.0.0.1 -mp 16030 \
    -m 1 -d 300 -nostdin -timeout 30s -timeout_error >"$OUT/c2c-refer-anna.log" 2>&1 & local anna=$!
  phone operator_answers 1002 15082 16040 300 c2c-refer-bela.log; local bela=$PHONE_PID
  phone customer_answers 0 15099 16070 8000 c2c-refer-customer.log; local customer=$PHONE_PID
  tcpdump -i lo -U -w "$OUT/c2c_refer_bela.pcap" "udp and dst port 16040" 2>/dev/null & local td=$!
  sleep 0.5
  local reply; reply=$(curl -s -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"operator":"anna","to":"+36301234567"}' "$api"); echo "POST /api/calls: $reply"
  [[ "$reply" == *'"call_id":"c2c-'* ]] || { kill $anna $bela $customer $td 2>/dev/null; return 1; }
  wait $customer; local rc=$?
  wait $anna; local anna_rc=$?
  wait $bela; local bela_rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ $rc = 0 ] || { echo "the customer's phone failed:"; tail -20 "$OUT/c2c-refer-customer.log"; return 1; }
  [ $anna_rc = 0 ] || { echo "anna's transfer failed:"; tail -30 "$OUT/c2c-refer-anna.log"; return 1; }
  [ $bela_rc = 0 ] || { echo "bela's phone failed:"; tail -20 "$OUT/c2c-refer-bela.log"; return 1; }
  echo "bela heard the customer:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/c2c_refer_bela.pcap" 16040 pcma --heard "$PCAPS/g711a.pcap" || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *c2c-*",bela,"*"anna answered ring "*" to operator bela; bela answered ring "* ]] || { echo "CDR lacks the transfer"; return 1; }
}

# Busy means busy (Q1): while anna is on a call of her own (a click-to-call, as a callback
# from the console or a task is), a queued caller rings bela only, and a second call of
# anna's own is refused.
busy_on_own_call() {
  local api="http://127.0.0.1:$HTTP_PORT/api/calls"
  sleep 1.5 # wrap-up after the last call
  phone operator_answers 1001 15081 16030 300 busy-anna.log; local anna=$PHONE_PID
  phone customer_answers 0 15099 16070 6000 busy-customer.log; local customer=$PHONE_PID
  local reply; reply=$(curl -s -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"operator":"anna","to":"+36301234567"}' "$api"); echo "POST /api/calls: $reply"
  [[ "$reply" == *'"call_id":"c2c-'* ]] || return 1
  sleep 1.5 # anna answered; the customer is being called
  reply=$(curl -s -w ' %{http_code}' -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"operator":"anna","to":"+36301234568"}' "$api"); echo "a second call: $reply"
  [[ "$reply" == *"on another call"*" 409" ]] || { echo "a second call of anna's own was not refused"; return 1; }
  local rings_before; rings_before=$(grep -c 'ringing operator' "$DAEMON_DIR/daemon.log")
  phone operator_answers 1002 15082 16040 300 busy-bela.log; local bela=$PHONE_PID
  caller_talks 500 2000 || { echo "caller failed"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/busy-bela.log"; return 1; }
  wait $customer || { echo "the customer's phone failed:"; tail -20 "$OUT/busy-customer.log"; return 1; }
  wait $anna || { echo "anna's phone failed:"; tail -20 "$OUT/busy-anna.log"; return 1; }
  local rings; rings=$(grep 'ringing operator' "$DAEMON_DIR/daemon.log" | tail -n +$((rings_before + 1)))
  echo "$rings"
  [ "$(echo "$rings" | wc -l)" = 1 ] && [[ "$rings" == *"operator=bela"* ]] || { echo "expected exactly one ring, bela's"; return 1; }
}

# anna holds the caller for 4 s (re-INVITE sendonly, then sendrecv): the caller hears the
# queue's hold music meanwhile (anna answers at once, so the music's middle can only come
# from the hold), then anna again; the CDR counts the hold on anna's leg.
operator_holds_music() {
  sleep 1.5 # wrap-up after the last call
  [ "$(operator_state bela pause)" = 204 ] || return 1
  tcpdump -i lo -U -w "$OUT/hold_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td=$!
  sleep 0.5
  phone operator_holds 1001 15081 16030 0 hold-anna.log; local anna=$PHONE_PID
  caller_talks 500 12000; local rc=$?
  wait $anna; local anna_rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ "$(operator_state bela online)" = 204 ] || return 1
  [ $rc = 0 ] || { echo "caller failed"; return 1; }
  [ $anna_rc = 0 ] || { echo "anna's phone failed:"; tail -20 "$OUT/hold-anna.log"; return 1; }
  grep 'operator hold' "$DAEMON_DIR/daemon.log" | tail -2
  echo "caller heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/hold_caller.pcap" $MEDIA_PORT pcma \
    --heard "$ROOT/ivr-flows/prompts/hold-music.wav" "$PCAPS/g711a.pcap" || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  local hold; hold=$(echo "$cdr" | python3 -c 'import csv,sys; r=next(csv.reader(sys.stdin)); print(r[21])')
  [ "$hold" -ge 3500 ] && [ "$hold" -le 5500 ] || { echo "hold_ms $hold, expected about 4000"; return 1; }
  [[ "$cdr" == *"anna answered ring "*" hold 4."*"s"* ]] || { echo "anna's leg lacks the hold"; return 1; }
}

# IVR transfer steps (T6), on the test flows 502-505 (tests/sipp/flows/transfer-*.toml).
# 502: "transferring", then the support queue: anna (bela paused) answers; the CDR has the
# step, the queue and anna's leg.
ivr_transfer_to_queue() {
  sleep 1.5 # wrap-up after the last call
  [ "$(operator_state bela pause)" = 204 ] || return 1
  tcpdump -i lo -U -w "$OUT/xfer_queue_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td=$!
  sleep 0.5
  phone operator_answers 1001 15081 16030 300 xfer-queue-anna.log; local anna=$PHONE_PID
  caller_talks 502 8000; local rc=$?
  wait $anna; local anna_rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ "$(operator_state bela online)" = 204 ] || return 1
  [ $rc = 0 ] && [ $anna_rc = 0 ] || { echo "caller $rc, anna $anna_rc:"; tail -20 "$OUT/xfer-queue-anna.log"; return 1; }
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/xfer_queue_caller.pcap" $MEDIA_PORT pcma \
    --heard "$ROOT/ivr-flows/prompts/transferring.wav" "$PCAPS/g711a.pcap" || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",to_support,"*",anna,"*",support,"*"anna answered ring"* ]] || { echo "CDR lacks the transfer, the queue or anna's leg"; return 1; }
}

# 503: straight to bela while she can take a call (anna is never rung); once bela is
# paused the transfer fails and the flow says no-agent.
ivr_transfer_to_operator() {
  sleep 1.5
  local rings_before; rings_before=$(grep -c 'ringing operator' "$DAEMON_DIR/daemon.log")
  phone operator_answers 1002 15082 16040 300 xfer-op-bela.log; local bela=$PHONE_PID
  caller_talks 503 3000 || { echo "caller failed"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/xfer-op-bela.log"; return 1; }
  local rings; rings=$(grep 'ringing operator' "$DAEMON_DIR/daemon.log" | tail -n +$((rings_before + 1)))
  echo "$rings"
  [ "$(echo "$rings" | wc -l)" = 1 ] && [[ "$rings" == *"operator=bela"* ]] || { echo "expected exactly one ring, bela's"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",to_bela,"*",bela,"*",support,"*"bela answered ring"* ]] || { echo "CDR lacks bela, her queue or her leg"; return 1; }
  sleep 1.5
  [ "$(operator_state bela pause)" = 204 ] || return 1
  caller_talks 503 3000 >"$OUT/xfer-op-paused.log" 2>&1; local rc=$?
  [ "$(operator_state bela online)" = 204 ] || return 1
  cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",to_bela sorry,"* && "$cdr" == *",flow_hangup,"* ]] || { echo "a paused bela did not fail the transfer"; return 1; }
  grep -q 'transfer failed: bela cannot take a call now' "$DAEMON_DIR/daemon.log"
}

# 504: "transferring", then an outside number through the trunk (as the trunk dials it);
# caller and customer hear each other; the CDR has the number's leg. 505: a premium-rate
# number the dial plan blocks: nothing reaches the trunk, the caller hears no-agent.
ivr_transfer_to_number() {
  sleep 0.5
  tcpdump -i lo -U -w "$OUT/xfer_num_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/xfer_num_customer.pcap" "udp and dst port 16070" 2>/dev/null & local td2=$!
  sleep 0.5
  phone operator_answers 0 15099 16070 500 xfer-num-customer.log; local customer=$PHONE_PID
  caller_talks 504 9000; local rc=$?
  wait $customer; local customer_rc=$?
  sleep 0.3; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  [ $rc = 0 ] && [ $customer_rc = 0 ] || { echo "caller $rc, customer $customer_rc:"; tail -20 "$OUT/xfer-num-customer.log"; return 1; }
  grep -q 'INVITE sip:+36305550100@' "$OUT/xfer-num-customer.log" || grep -q 'transferring.*External("+36305550100")' "$DAEMON_DIR/daemon.log" || { echo "the trunk was not asked for +36305550100"; return 1; }
  echo "the caller heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/xfer_num_caller.pcap" $MEDIA_PORT pcma \
    --heard "$ROOT/ivr-flows/prompts/transferring.wav" "$PCAPS/g711a.pcap" || return 1
  echo "the customer heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/xfer_num_customer.pcap" 16070 pcma --heard "$PCAPS/g711a.pcap" || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",to_mobile,"*"+36305550100 answered ring"* ]] || { echo "CDR lacks the number's leg"; return 1; }
  # The blocked number: nothing reaches the trunk.
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",15099)); s.settimeout(5)
try:
    d,a=s.recvfrom(65535); open(sys.argv[1],"wb").write(d)
except socket.timeout: pass' "$OUT/trunk-premium" &
  local trunk=$!
  sleep 0.3
  caller_talks 505 3000 >"$OUT/xfer-premium.log" 2>&1
  wait $trunk
  [ ! -s "$OUT/trunk-premium" ] || { echo "the premium number reached the trunk!"; return 1; }
  cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",to_premium sorry,"* ]] && grep -q 'blocked by the dial plan' "$DAEMON_DIR/daemon.log"
}

# Blind transfer from a phone (REFER): anna takes a queued caller and transfers them to
# bela's SIP user 1002; she gets 202 and the NOTIFYs (100, 200), then BYE; bela's phone
# rings, answers and hears the caller; the CDR has both legs and who transferred to whom.
phone_blind_transfer() {
  sleep 1.5 # wrap-up after the last call
  [ "$(operator_state bela pause)" = 204 ] || return 1
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/operator_transfers.xml" >"$OUT/operator_transfers.xml"
  sipp -sf "$OUT/operator_transfers.xml" -s 1001 -key target 1002 -i 127.0.0.1 -p 15081 -mi 127.0.0.1 -mp 16030 \
    -m 1 -d 0 -nostdin -timeout 30s -timeout_error -trace_msg -message_file "$OUT/refer-anna-messages.log" >"$OUT/refer-anna.log" 2>&1 & local anna=$!
  phone operator_answers 1002 15082 16040 300 refer-bela.log; local bela=$PHONE_PID
  tcpdump -i lo -U -w "$OUT/refer_bela.pcap" "udp and dst port 16040" 2>/dev/null & local td=$!
  sleep 0.5
  caller_talks 500 9000 >"$OUT/refer-caller.log" 2>&1 & local caller=$!
  sleep 1 # anna has answered; bela comes back, idle, before anna transfers
  [ "$(operator_state bela online)" = 204 ] || return 1
  wait $caller; local rc=$?
  wait $anna; local anna_rc=$?
  wait $bela; local bela_rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ $rc = 0 ] || { echo "the caller failed:"; tail -20 "$OUT/refer-caller.log"; return 1; }
  [ $anna_rc = 0 ] || { echo "anna's transfer failed:"; tail -30 "$OUT/refer-anna.log"; return 1; }
  [ $bela_rc = 0 ] || { echo "bela's phone failed:"; tail -20 "$OUT/refer-bela.log"; return 1; }
  grep 'blind transfer\|caller connected to operator' "$DAEMON_DIR/daemon.log" | tail -3
  grep 'caller connected to operator' "$DAEMON_DIR/daemon.log" | tail -1 | grep -q 'operator=bela' || { echo "not connected to bela"; return 1; }
  echo "bela heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/refer_bela.pcap" 16040 pcma --heard "$PCAPS/g711a.pcap" || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",bela,"*",1,anna answered ring "*" to operator bela; bela answered ring "* ]] || { echo "CDR lacks the transfer"; return 1; }
}

# A REFER to a number a flow answers (500, the queue-test flow): the caller starts over
# in that flow, queues for support again, and bela (anna is in wrap-up) takes them.
phone_transfer_to_flow_number() {
  sleep 1.5 # wrap-up after the last call
  [ "$(operator_state bela pause)" = 204 ] || return 1
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/operator_transfers.xml" >"$OUT/operator_transfers.xml"
  sipp -sf "$OUT/operator_transfers.xml" -s 1001 -key target 500 -i 127.0.0.1 -p 15081 -mi 127.0.0.1 -mp 16030 \
    -m 1 -d 0 -nostdin -timeout 30s -timeout_error >"$OUT/refer-flow-anna.log" 2>&1 & local anna=$!
  phone operator_answers 1002 15082 16040 300 refer-flow-bela.log; local bela=$PHONE_PID
  sleep 0.5
  caller_talks 500 7000 >"$OUT/refer-flow-caller.log" 2>&1 & local caller=$!
  sleep 1
  [ "$(operator_state bela online)" = 204 ] || return 1
  wait $caller; local rc=$?
  wait $anna; local anna_rc=$?
  wait $bela; local bela_rc=$?
  [ $rc = 0 ] && [ $anna_rc = 0 ] && [ $bela_rc = 0 ] || { echo "caller $rc, anna $anna_rc, bela $bela_rc"; tail -20 "$OUT/refer-flow-anna.log"; return 1; }
  grep -q 'blind transfer.*operator=anna to=number 500' "$DAEMON_DIR/daemon.log" || { echo "no transfer to number 500"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",wait wait,"*",bela,"*"anna answered ring "*" to number 500; bela answered ring "* ]] || { echo "CDR lacks the second run of the flow or the legs"; return 1; }
}

# Transfers a phone may not make: to a user nobody has (404), to a premium-rate number
# the dial plan blocks (403). The caller stays with anna until she hangs up.
phone_transfer_refused() {
  sleep 1.5
  [ "$(operator_state bela pause)" = 204 ] || return 1
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/operator_transfer_refused.xml" >"$OUT/operator_transfer_refused.xml"
  sipp -sf "$OUT/operator_transfer_refused.xml" -s 1001 -i 127.0.0.1 -p 15081 -mi 127.0.0.1 -mp 16030 \
    -m 1 -d 0 -nostdin -timeout 30s -timeout_error >"$OUT/refer-refused-anna.log" 2>&1 & local anna=$!
  SIPP_PORT=15077 sipp_run "$ROOT/tests/sipp/daemon_hangs_up.xml" 500 -m 1; local rc=$?
  wait $anna; local anna_rc=$?
  [ "$(operator_state bela online)" = 204 ] || return 1
  [ $anna_rc = 0 ] || { echo "anna's phone did not get 404 and 403:"; tail -30 "$OUT/refer-refused-anna.log"; return 1; }
  [ $rc = 0 ] || { echo "the caller got no BYE"; return 1; }
  grep 'transfer refused' "$DAEMON_DIR/daemon.log" | tail -2
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",operator_hangup,"*",anna,"* && "$cdr" != *" to "* ]]
}

# The admin API creates an operator whose phone can register at once.
operator_added_by_api() {
  local api="http://127.0.0.1:$HTTP_PORT/api/operators" code reply
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"name":"cili","sip_password":"cili-secret-3"}' "$api")
  [ "$code" = 401 ] || { echo "unauthenticated POST got $code, expected 401"; return 1; }
  reply=$(curl -s -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' -d '{"name":"cili","sip_user":"1003","sip_password":"short"}' "$api")
  [[ "$reply" == *"at least 8 characters"* ]] || { echo "a short password is not explained: $reply"; return 1; }
  reply=$(curl -s -w ' %{http_code}' -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"cili","sip_user":"1003","display_name":"Cili","sip_password":"cili-secret-3"}' "$api"); echo "POST: $reply"
  [[ "$reply" == *'"name":"cili"'*' 201' ]] || return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' -d '{"name":"cili","sip_password":"cili-secret-3"}' "$api")
  [ "$code" = 409 ] || { echo "a second cili got $code, expected 409"; return 1; }
  register_phone 1003 cili-secret-3 15085 || { echo "cili's phone could not register"; return 1; }
  curl -s -H "Authorization: Bearer $API_TOKEN" "$api" | grep -q '"name":"cili","state":"offline"[^}]*"phone_registered":true'
}

# A caller presses 5 while talking to anna: the digit reaches anna's phone as RFC 4733.
dtmf_through_bridge() {
  [ "$(operator_state bela pause)" = 204 ] || return 1
  sleep 1.5 # anna's wrap-up after the last call
  tcpdump -i lo -U -w "$OUT/dtmf_operator.pcap" "udp and dst port 16030" 2>/dev/null & local td=$!
  sleep 0.5
  phone operator_answers 1001 15081 16030 500 dtmf-anna.log; local anna=$PHONE_PID
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/caller_presses_while_bridged.xml.in" >"$OUT/caller_presses_while_bridged.xml"
  sipp_run "$OUT/caller_presses_while_bridged.xml" 500 -m 1 -d 2000; local rc=$?
  wait $anna; local anna_rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ "$(operator_state bela online)" = 204 ] || return 1
  [ $rc = 0 ] || { echo "caller failed"; return 1; }
  [ $anna_rc = 0 ] || { echo "anna's phone failed:"; tail -20 "$OUT/dtmf-anna.log"; return 1; }
  echo "anna heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/dtmf_operator.pcap" 16030 pcma --dtmf 5
}

# anna hangs up first: Hotline ends the caller's leg with BYE; the CDR says who ended it.
operator_hangs_up_first() {
  [ "$(operator_state bela pause)" = 204 ] || return 1
  sleep 1.5
  phone operator_hangs_up 1001 15081 16030 2000 hangup-anna.log; local anna=$PHONE_PID
  SIPP_PORT=15077 sipp_run "$ROOT/tests/sipp/daemon_hangs_up.xml" 500 -m 1; local rc=$?
  wait $anna; local anna_rc=$?
  [ "$(operator_state bela online)" = 204 ] || return 1
  [ $anna_rc = 0 ] || { echo "anna's BYE failed:"; tail -20 "$OUT/hangup-anna.log"; return 1; }
  [ $rc = 0 ] || { echo "the caller got no BYE"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",operator_hangup,"* && "$cdr" == *",anna,"* ]]
}

# A caller who needs English (number 501) rings only bela, though anna has been idle longer.
skill_routes_to_member_who_has_it() {
  sleep 1.5 # wrap-up after the last call
  local rings_before; rings_before=$(grep -c 'ringing operator' "$DAEMON_DIR/daemon.log")
  phone operator_answers 1002 15082 16040 500 skill-bela.log; local bela=$PHONE_PID
  caller_talks 501 2000 || { echo "caller failed"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/skill-bela.log"; return 1; }
  local rings; rings=$(grep 'ringing operator' "$DAEMON_DIR/daemon.log" | tail -n +$((rings_before + 1)))
  echo "$rings"
  [ "$(echo "$rings" | wc -l)" = 1 ] && [[ "$rings" == *"operator=bela"* ]] || { echo "expected exactly one ring, bela's"; return 1; }
  grep 'caller queued' "$DAEMON_DIR/daemon.log" | tail -1 | grep -q 'skill=.\?english'
}

# The live view from a shell, as `asterisk -rx "core show channels"`: `hotline show calls`
# lists the caller talking with anna; `hotline hangup` ends the call with BYE to both
# phones; a second hangup of it says there is no such call.
live_view_and_hangup() {
  local c=(--config "$DAEMON_DIR/hotline.toml")
  [ "$(stat -c %a "$DAEMON_DIR/state/control.sock")" = 600 ] || { echo "the control socket is not 0600"; return 1; }
  [ "$(operator_state bela pause)" = 204 ] || return 1
  sleep 1.5 # wrap-up after the last call
  phone operator_answers 1001 15081 16030 300 live-anna.log; local anna=$PHONE_PID
  SIPP_PORT=15077 sipp_run "$ROOT/tests/sipp/daemon_hangs_up.xml" 500 -m 1 >"$OUT/live-caller.log" 2>&1 &
  local caller=$!
  for _ in $(seq 1 50); do
    "$HOTLINE" show calls "${c[@]}" >"$OUT/live-calls.txt" 2>&1
    grep -q "talking with anna" "$OUT/live-calls.txt" && break
    sleep 0.2
  done
  cat "$OUT/live-calls.txt"
  [ "$(operator_state bela online)" = 204 ] || return 1
  grep -q "talking with anna" "$OUT/live-calls.txt" && grep -qx "1 active call" "$OUT/live-calls.txt" ||
    { echo "show calls does not list one call talking with anna"; return 1; }
  local id
  id=$("$HOTLINE" show calls --json "${c[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["call_id"])') || return 1
  "$HOTLINE" hangup "$id" "${c[@]}" || { echo "hangup $id failed"; return 1; }
  wait $caller || { echo "the caller got no BYE"; tail -20 "$OUT/live-caller.log"; return 1; }
  wait $anna || { echo "anna's phone got no BYE"; tail -20 "$OUT/live-anna.log"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",operator_hangup,"* && "$cdr" == *",anna,"* ]] || return 1
  "$HOTLINE" hangup "$id" "${c[@]}" 2>"$OUT/live-hangup2.err"; local rc=$?
  cat "$OUT/live-hangup2.err"
  [ $rc = 1 ] && grep -q "no call $id" "$OUT/live-hangup2.err"
}

over_the_call_cap() {
  sipp_run uac 100 -m 2 -l 2 -r 10 -d 4000 >"$OUT/cap-calls.log" 2>&1 &
  local two=$!
  sleep 1.5
  SIPP_PORT=15076 MEDIA_PORT=16060 sipp_run "$ROOT/tests/sipp/refused_while_draining.xml" 100 -m 1 || { echo "third call not refused with 503"; return 1; }
  wait $two || { echo "the two calls under the cap failed"; return 1; }
}

# After hours: the silent caller is a missed call (the flow marks it); the caller who left a
# callback request is not.
after_hours_missed_call() {
  local missed; missed=$("$HOTLINE" missed --config "$DAEMON_DIR/hotline.toml" --limit 5); echo "$missed"
  [ "$(echo "$missed" | tail -n +2 | wc -l)" = 1 ] || { echo "expected exactly one missed call"; return 1; }
  IFS=, read -r _ number _ queue reason _ <<<"$(echo "$missed" | tail -n 1)"
  [ "$number" = "+36209990000" ] && [ -z "$queue" ] && [ "$reason" = outside_hours ]
}

dead_call_gets_bye() {
  sipp_run "$ROOT/tests/sipp/daemon_hangs_up.xml" 100 -m 1 || return 1
  sleep 0.3
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  IFS=, read -r _ _ _ _ _ _ _ reason _ <<<"$cdr"
  [ "$reason" = rtp_timeout ]
}

drain_on_sigterm() {
  sipp_run "$ROOT/tests/sipp/daemon_hangs_up.xml" 100 -m 1 >"$OUT/drain-call.log" 2>&1 &
  local call=$!
  sleep 1.5
  kill -TERM "$DAEMON_PID"
  sleep 0.3
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/healthz")
  echo "healthz while draining: $code"; [ "$code" = 503 ] || return 1
  SIPP_PORT=15072 MEDIA_PORT=16010 sipp_run "$ROOT/tests/sipp/refused_while_draining.xml" 100 -m 1 || { echo "new call not refused with 503"; return 1; }
  wait $call || { echo "call in progress did not get BYE:"; cat "$OUT/drain-call.log"; return 1; }
  wait "$DAEMON_PID"; local rc=$?
  echo "daemon exit status $rc"; [ $rc = 0 ] || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  IFS=, read -r _ _ _ _ _ _ _ reason _ <<<"$cdr"
  [ "$reason" = shutdown ]
}

check readme_first_command readme_first_command
check logs_for_journald_and_json logs_for_journald_and_json
check webhook_call_ended webhook_call_ended
check backup_and_restore backup_and_restore

if start_daemon main '[sip]
tcp_message_timeout_secs = 2'; then
  check options_udp sipp_run "$ROOT/tests/sipp/options.xml" 100 -m 1
  check options_tcp sipp_run "$ROOT/tests/sipp/options.xml" 100 -m 1 -t t1
  check uac_udp_10_calls sipp_run uac 100 -m 10 -r 5 -d 1500
  check uac_tcp_10_calls sipp_run uac 100 -m 10 -r 5 -d 1500 -t t1
  check caller_presses_1_hears_sales caller_presses caller_presses_digit 1 sales support
  check caller_presses_2_hears_support caller_presses caller_presses_digit 2 support sales
  check sip_info_2_hears_support caller_presses caller_info_digit 2 support sales
  check spoofed_digit_ignored spoofed_digit_ignored
  check sip_tcp_slow_message_cut sip_tcp_slow_message_cut
  check cancel_before_answer cancelled
  check hold_and_resume held_and_resumed
  check reload_on_sighup reload_on_sighup
  check reload_during_call reload_during_call
  check metrics_exposed metrics_exposed
  check api_v1_problem_details api_v1_problem_details
  check api_tokens_per_user api_tokens_per_user
  stop_daemon
else
  failed=$((failed + 1)); echo "FAIL daemon_start"
fi

check flow_check_broken flow_check_broken
check flow_simulate_golden flow_simulate_golden

# hotline.toml (number 300) on the Hungarian calendar, at three moments.
if start_daemon workday "" 2026-11-24T10:00:00+01:00; then
  check schedule_workday_welcome schedule_branch welcome welcome closed holiday
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_workday"; fi
if start_daemon holiday "" 2026-12-25T10:00:00+01:00; then
  check schedule_holiday_greeting schedule_branch holiday_greeting holiday closed welcome
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_holiday"; fi
if start_daemon afterhours "" 2026-11-24T20:00:00+01:00; then
  check schedule_after_hours schedule_branch after_hours closed holiday welcome
  check after_hours_callback_request after_hours_callback_request
  check after_hours_missed_call after_hours_missed_call
  check one_callback_entry_per_number one_callback_entry_per_number
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_afterhours"; fi

# Operators (their accounts challenge MD5, as by default); a trunk address that must never hear anything.
if PRESTART=add_operators start_daemon operators '[sip]
max_calls = 50
[trunk]
address = "127.0.0.1:15099"
caller_id = "+3612345678"'; then
  check operator_bridged operator_bridged
  check call_histograms_exposed call_histograms_exposed
  check caller_gives_up_while_ringing caller_gives_up_while_ringing
  check ring_no_answer_goes_to_next ring_no_answer_goes_to_next
  check wrong_password_refused wrong_password_refused
  check sip_auth_failure_logged sip_auth_failure_logged
  check toll_fraud_refused toll_fraud_refused
  check click_to_call click_to_call
  check busy_on_own_call busy_on_own_call
  check operator_holds_music operator_holds_music
  check click_to_call_transfer click_to_call_transfer
  check ivr_transfer_to_queue ivr_transfer_to_queue
  check ivr_transfer_to_operator ivr_transfer_to_operator
  check ivr_transfer_to_number ivr_transfer_to_number
  check phone_blind_transfer phone_blind_transfer
  check phone_transfer_to_flow_number phone_transfer_to_flow_number
  check phone_transfer_refused phone_transfer_refused
  check operator_added_by_api operator_added_by_api
  check dtmf_through_bridge dtmf_through_bridge
  check operator_hangs_up_first operator_hangs_up_first
  check skill_routes_to_member_who_has_it skill_routes_to_member_who_has_it
  check live_view_and_hangup live_view_and_hangup
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_operators"; fi

# --- softphones -------------------------------------------------------------------------
# Real, unmodified phones as the operators' (tests/phones.sh): baresip is anna's, linphonec
# bela's, both registering on the daemon's defaults (one MD5 challenge per account: baresip
# 1.0 fails a challenge set naming any algorithm it doesn't know).
if PRESTART=add_operators start_daemon phones; then
  check baresip_answers_queued_call baresip_answers_queued_call
  check linphone_answers_queued_call linphone_answers_queued_call
  check baresip_blind_transfer baresip_blind_transfer
  check linphone_attended_transfer linphone_attended_transfer
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_phones"; fi

# --- automatic callbacks -------------------------------------------------------------------
# The support queue calls missed callers back by itself on weekdays 9–16 when the Hungarian
# calendar is open; the daemon's clock is set inside or outside that window.
AUTOCB_CONFIG='[trunk]
address = "127.0.0.1:15099"
caller_id = "+3612345678"'
add_autocb() {
  add_operators && cat >>"$DAEMON_DIR/flows/queues.toml" <<'TOML'

[queues.support.callbacks]
auto = true
windows = ["* 9-16 * * mon-fri"]
calendar = "hungary"
success_after = 1
retry_delay = 60
TOML
}
listed() { "$HOTLINE" callback-list --config "$DAEMON_DIR/hotline.toml" | grep -q "$1"; }

# Inside the window: the missed caller is called back through the trunk as soon as bela is
# free: bela's phone rings first, then the customer's, and the entry leaves the list.
autocb_dials_inside_window() {
  caller_talks 500 1500 >"$OUT/autocb-missed.log" 2>&1 || { echo "the missed call failed"; return 1; }
  listed +36209990000 || { echo "the missed call is not on the list"; return 1; }
  register_phone 1002 bela-secret-2 15082 || { echo "bela could not register"; return 1; }
  phone customer_answers 0 15099 16070 2000 autocb-customer.log; local customer=$PHONE_PID
  phone operator_answers 1002 15082 16032 300 autocb-bela.log; local bela=$PHONE_PID
  sleep 0.5
  [ "$(operator_state bela online)" = 204 ] || { echo "bela not set online"; return 1; }
  wait $customer || { echo "the customer's phone failed:"; tail -20 "$OUT/autocb-customer.log"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/autocb-bela.log"; return 1; }
  sleep 0.5
  ! listed +36209990000 || { echo "still on the list after a successful automatic callback"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *acb-*',+3612345678,+36209990000,'*',bela,'* ]] || { echo "CDR wrong"; return 1; }
  grep -q 'auto-callback ended.*outcome="success"\|auto-callback ended.*outcome=success' "$DAEMON_DIR/daemon.log" || { echo "no success in the log"; return 1; }
}

# Outside the window nothing is dialled, though bela is free: the entry waits on the list.
autocb_waits_outside_window() {
  caller_talks 500 1500 >"$OUT/autocb-missed-late.log" 2>&1 || { echo "the missed call failed"; return 1; }
  register_phone 1002 bela-secret-2 15082 || { echo "bela could not register"; return 1; }
  [ "$(operator_state bela online)" = 204 ] || { echo "bela not set online"; return 1; }
  sleep 4
  listed +36209990000 || { echo "the entry left the list outside the window"; return 1; }
  ! grep -q 'auto-callback placed' "$DAEMON_DIR/daemon.log" || { echo "dialled outside the window"; return 1; }
}

if PRESTART=add_autocb start_daemon autocb_in "$AUTOCB_CONFIG" 2026-11-24T10:00:00+01:00; then
  check autocb_dials_inside_window autocb_dials_inside_window
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_autocb_in"; fi
if PRESTART=add_autocb start_daemon autocb_out "$AUTOCB_CONFIG" 2026-11-24T20:00:00+01:00; then
  check autocb_waits_outside_window autocb_waits_outside_window
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_autocb_out"; fi

# --- direct callback ---------------------------------------------------------------------
# bela has an own number (06 1 234 5601, next call only): her click-to-call shows it to the
# customer, and the customer's call back to it rings bela though anna has waited longer.
add_direct() {
  add_operators && "$HOTLINE" operator direct bela --number 0612345601 --mode 1 --minutes 30 --config "$DAEMON_DIR/hotline.toml"
}
direct_callback_reaches_the_operator() {
  register_phone 1001 anna-secret-1 15081 || { echo "anna could not register"; return 1; }
  register_phone 1002 bela-secret-2 15082 || { echo "bela could not register"; return 1; }
  sed -e "s#@PCAPS@#$PCAPS#g" -e 's#sip:\\+3612345678@#sip:\\+3612345601@#' "$ROOT/tests/sipp/customer_answers.xml" >"$OUT/customer_answers_direct.xml"
  grep -q '3612345601' "$OUT/customer_answers_direct.xml" || { echo "scenario not rewritten"; return 1; }
  sipp -sf "$OUT/customer_answers_direct.xml" -s 0 -i 127.0.0.1 -p 15099 -mi 127.0.0.1 -mp 16070 -m 1 -d 1000 \
    -nostdin -timeout 30s -timeout_error >"$OUT/direct-customer.log" 2>&1 & local customer=$!
  phone operator_answers 1002 15082 16032 300 direct-bela-1.log; local bela=$PHONE_PID
  [ "$(operator_state anna online)" = 204 ] || { echo "anna not set online"; return 1; }
  sleep 0.5
  local reply; reply=$(curl -s -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"operator":"bela","to":"+36209990000"}' "http://127.0.0.1:$HTTP_PORT/api/calls"); echo "POST /api/calls: $reply"
  wait $customer || { echo "the customer did not see bela's own number:"; tail -20 "$OUT/direct-customer.log"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/direct-bela-1.log"; return 1; }
  sleep 0.5
  [ "$(operator_state bela online)" = 204 ] || { echo "bela not set online"; return 1; }
  # The customer calls bela's number back: bela's phone rings, not anna's (idle longer).
  phone operator_answers 1002 15082 16032 300 direct-bela-2.log; bela=$PHONE_PID
  sleep 0.5
  caller_talks 0612345601 2500 >"$OUT/direct-call-back.log" 2>&1 || { echo "the customer's call failed"; return 1; }
  wait $bela || { echo "bela's phone did not take the call:"; tail -20 "$OUT/direct-bela-2.log"; return 1; }
  sleep 0.5
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",+36209990000,0612345601,"*",bela,"* ]] || { echo "the call did not reach bela"; return 1; }
}
if PRESTART=add_direct start_daemon direct "$AUTOCB_CONFIG"; then
  check direct_callback_reaches_the_operator direct_callback_reaches_the_operator
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_direct"; fi

# Customer-first: the customer hears the confirmation prompt and must press 1 before an
# operator is rung; a customer who doesn't press (an answering machine) never reaches one.
add_autocb_customer_first() {
  add_autocb && cat >>"$DAEMON_DIR/flows/queues.toml" <<'TOML'
mode = "customer-first"
confirm_prompt = "cb-confirm"
confirm_key = "1"
TOML
}
autocb_customer_first_confirms() {
  caller_talks 500 1500 >"$OUT/autocb-cf-missed.log" 2>&1 || { echo "the missed call failed"; return 1; }
  register_phone 1002 bela-secret-2 15082 || { echo "bela could not register"; return 1; }
  sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/customer_confirms.xml" >"$OUT/customer_confirms.xml"
  sipp -sf "$OUT/customer_confirms.xml" -s 0 -i 127.0.0.1 -p 15099 -mi 127.0.0.1 -mp 16070 -m 1 -d 4000 \
    -nostdin -timeout 60s -timeout_error >"$OUT/autocb-cf-customer.log" 2>&1 & local customer=$!
  phone operator_answers 1002 15082 16032 300 autocb-cf-bela.log; local bela=$PHONE_PID
  sleep 0.5
  [ "$(operator_state bela online)" = 204 ] || { echo "bela not set online"; return 1; }
  wait $customer || { echo "the customer's phone failed:"; tail -20 "$OUT/autocb-cf-customer.log"; return 1; }
  wait $bela || { echo "bela's phone failed:"; tail -20 "$OUT/autocb-cf-bela.log"; return 1; }
  sleep 0.5
  grep -q 'the customer confirmed' "$DAEMON_DIR/daemon.log" || { echo "no confirmation in the log"; return 1; }
  ! listed +36209990000 || { echo "still on the list after a confirmed callback"; return 1; }
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *acb-*',+3612345678,+36209990000,'*',bela,'* ]] || { echo "CDR wrong"; return 1; }
  # The customer calls again and is missed again; this time an answering machine picks up
  # the callback and presses nothing: bela's phone (no longer listening) must not ring.
  [ "$(operator_state bela offline)" = 204 ] || { echo "bela not set offline"; return 1; }
  caller_talks 500 1500 >"$OUT/autocb-cf-missed-2.log" 2>&1 || { echo "the second missed call failed"; return 1; }
  phone customer_answers 0 15099 16070 2500 autocb-cf-machine.log; customer=$PHONE_PID
  sleep 0.3
  [ "$(operator_state bela online)" = 204 ] || { echo "bela not set online again"; return 1; }
  wait $customer || { echo "the answering machine failed:"; tail -20 "$OUT/autocb-cf-machine.log"; return 1; }
  sleep 1
  [ "$(grep -c 'the customer confirmed' "$DAEMON_DIR/daemon.log")" = 1 ] || { echo "the answering machine was put through"; return 1; }
  grep -q 'auto-callback ended.*no_answer' "$DAEMON_DIR/daemon.log" || { echo "no no_answer outcome in the log"; return 1; }
  ! listed +36209990000 || { echo "listed during the hide time"; return 1; }
}
if PRESTART=add_autocb_customer_first start_daemon autocb_cf "$AUTOCB_CONFIG" 2026-11-24T10:00:00+01:00; then
  check autocb_customer_first_confirms autocb_customer_first_confirms
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_autocb_cf"; fi

# Two daemons on one PostgreSQL database, 1,000 entries, auto-callback on in both: every
# entry is dialled exactly once. Each daemon has ten operators whose phones (one SIPp on
# one port per daemon) answer at once; the customers (one SIPp behind the shared trunk)
# answer and hang up after 100 ms.
autocb_two_nodes_postgres() {
  local db="hotline_autocb_$$" url pids=() i
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || return 1
  url="postgres://postgres@127.0.0.1:5432/$db"
  local dir=$OUT/autocb_pg; rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$ROOT/ivr-flows" "$dir/flows"
  local members; members=$(for i in $(seq -w 1 20); do printf '"op%s",' "$i"; done)
  cat >>"$dir/flows/queues.toml" <<TOML

[queues.bulk]
members = [${members%,}]
wrap_up = 0

[queues.bulk.callbacks]
auto = true
windows = ["* * * * *"]
max_share = 100
success_after = 0
TOML
  for node in a b; do
    local sip=15260 http=18280 rtp=32000-32999; [ $node = b ] && { sip=15360; http=18380; rtp=33000-33999; }
    printf '[store]\ndatabase_url = "%s"\n[api]\ntoken = "%s"\n[rtp]\nports = "%s"\n[trunk]\naddress = "127.0.0.1:15099"\ncaller_id = "+3612345678"\n' \
      "$url" "$API_TOKEN" "$rtp" >"$dir/$node.toml"
  done
  for i in $(seq -w 1 20); do
    echo "op-secret-$i" | "$HOTLINE" operator add "op$i" --sip-user "20$i" --password-stdin --config "$dir/a.toml" >/dev/null || return 1
  done
  for node in a b; do
    local sip=15260 http=18280; [ $node = b ] && { sip=15360; http=18380; }
    HOTLINE_SIP_LISTEN=127.0.0.1:$sip HOTLINE_HTTP_LISTEN=127.0.0.1:$http HOTLINE_STATE_DIR=$dir/state-$node \
      HOTLINE_FLOWS_DIR=$dir/flows HOTLINE_DATABASE_URL= "$HOTLINE" serve --config "$dir/$node.toml" >"$dir/$node.log" 2>&1 &
    pids+=($!)
  done
  for node in 18280 18380; do
    for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$node/healthz")" = 200 ] && break; sleep 0.1; done
  done
  local now; now=$(date +%s%3N)
  psql -q -h 127.0.0.1 -U postgres -d "$db" -c "INSERT INTO callback_entries (number, state, queue, source, call_count, first_at, last_at)
    SELECT '+3620' || lpad(g::text, 7, '0'), 'open', 'bulk', 'missed', 1, $now - g, $now - g FROM generate_series(1, 1000) g" || return 1
  # The customers first, then the operators' phones, then the operators go online.
  sipp -sf "$OUT/customer_answers.xml" -s 0 -i 127.0.0.1 -p 15099 -mi 127.0.0.1 -mp 16170 -m 1000 -d 100 \
    -nostdin -timeout 300s -timeout_error -trace_stat -stf "$dir/customers.csv" >"$dir/customers.log" 2>&1 &
  local customers=$!
  local phones=()
  for node in a b; do
    local sip=15260 port=15181 media=16270 first=1; [ $node = b ] && { sip=15360; port=15281; media=16370; first=11; }
    for i in $(seq -w "$first" $((first + 9))); do
      sipp -sf "$ROOT/tests/sipp/register.xml" -s "20$i" 127.0.0.1:$sip -i 127.0.0.1 -p $port -m 1 \
        -au "20$i" -ap "op-secret-$i" -nostdin -timeout 10s -timeout_error >/dev/null 2>&1 || { echo "op$i could not register"; return 1; }
    done
    sipp -sf "$OUT/operator_answers.xml" -s op -i 127.0.0.1 -p $port -mi 127.0.0.1 -mp $media -d 0 \
      -nostdin >"$dir/phones-$node.log" 2>&1 &
    phones+=($!)
  done
  sleep 0.5
  for i in $(seq -w 1 20); do
    local http=18280; [ "$i" -gt 10 ] && http=18380
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
      -d '{"state":"online"}' "http://127.0.0.1:$http/api/operators/op$i/state"
  done
  local start; start=$(date +%s)
  wait $customers; local customers_status=$?
  echo "1000 callbacks in $(( $(date +%s) - start )) s; the customers' SIPp exited $customers_status"
  sleep 2
  kill "${phones[@]}" "${pids[@]}" 2>/dev/null; wait "${phones[@]}" "${pids[@]}" 2>/dev/null
  local q="psql -tA -h 127.0.0.1 -U postgres -d $db -c"
  local dialled distinct done attempts nodes
  dialled=$($q "SELECT count(*) FROM calls WHERE call_id LIKE 'acb-%'")
  distinct=$($q "SELECT count(DISTINCT called) FROM calls WHERE call_id LIKE 'acb-%'")
  done=$($q "SELECT count(*) FROM callback_entries WHERE state = 'done'")
  attempts=$($q "SELECT count(*) FROM callback_attempts")
  nodes=$($q "SELECT string_agg(operator || ': ' || n, ', ') FROM (SELECT operator, count(*) n FROM callback_attempts GROUP BY operator) x")
  echo "calls placed $dialled, distinct numbers $distinct, entries done $done, attempts $attempts; by node: $nodes"
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  [ "$customers_status" = 0 ] && [ "$dialled" = 1000 ] && [ "$distinct" = 1000 ] && [ "$done" = 1000 ] && [ "$attempts" = 1000 ] &&
    [ "$(grep -o 'Automatic callback' <<<"$nodes" | wc -l)" = 2 ]
}
sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/customer_answers.xml" >"$OUT/customer_answers.xml"
sed "s#@PCAPS@#$PCAPS#g" "$ROOT/tests/sipp/operator_answers.xml" >"$OUT/operator_answers.xml"
check autocb_two_nodes_postgres autocb_two_nodes_postgres

# kill -9 in the middle of 200 calls: after the restart every call has its record, ended
# as daemon_lost (the daemon writes a call's row when it arrives, journals what the
# database can't take, and closes its own open rows when it starts again).
long_flow() {
  local prompts; prompts=$(printf '"hold-music", %.0s' $(seq 1 20))
  printf 'name = "long"\nnumbers = ["601"]\nstart = "music"\n[steps.music]\ntype = "play"\nprompts = [%s]\nnext = "bye"\n[steps.bye]\ntype = "hangup"\n' \
    "${prompts%, }" >"$DAEMON_DIR/flows/long.toml"
}
records_survive_kill_9() {
  sipp -sn uac -s 601 127.0.0.1:$SIP_PORT -i 127.0.0.1 -p $SIPP_PORT -m 200 -r 50 -d 90000 -l 200 \
    -nostdin -timeout 40s >"$OUT/crash-sipp.log" 2>&1 &
  local sipp_pid=$! active=0
  for _ in $(seq 1 150); do
    active=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | sed -nE 's/^hotline_active_calls ([0-9]+).*/\1/p')
    [ "${active:-0}" -ge 200 ] && break
    sleep 0.1
  done
  echo "active calls at the kill: $active"
  kill -9 "$(cat "$DAEMON_DIR/pid")"
  kill "$sipp_pid" 2>/dev/null; wait "$sipp_pid" 2>/dev/null
  [ "${active:-0}" -ge 200 ] || return 1
  "$DAEMON_DIR/restart.sh" start || return 1
  local rows; rows=$("$HOTLINE" calls --config "$DAEMON_DIR/hotline.toml" --limit 1000 | awk -F, '$4 == "601"')
  local total lost
  total=$(grep -c . <<<"$rows"); lost=$(awk -F, '$8 == "daemon_lost"' <<<"$rows" | grep -c .)
  echo "records of calls to 601: $total, ended daemon_lost: $lost"
  [ "$total" = 200 ] && [ "$lost" = 200 ]
}
if PRESTART=long_flow start_daemon crash; then
  check records_survive_kill_9 records_survive_kill_9
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_crash"; fi

if start_daemon cap '[sip]
max_calls = 2'; then
  check over_the_call_cap over_the_call_cap
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_cap"; fi

if start_daemon deadcall 'timeout_secs = 2'; then
  check dead_call_gets_bye dead_call_gets_bye
  stop_daemon
else
  failed=$((failed + 1)); echo "FAIL daemon_start_deadcall"
fi

if start_daemon drain "timeout_secs = 0
[service]
drain_secs = 2"; then
  check drain_on_sigterm drain_on_sigterm
  # The check ends the daemon itself; when it failed early (or ONLY skipped it), this does.
  stop_daemon
else
  failed=$((failed + 1)); echo "FAIL daemon_start_drain"
fi

# --- 5. the web console in a real browser ------------------------------------------------
say "browser tests"
need_pkg node nodejs
need_pkg npm npm
need_pkg chromium chromium
if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
  (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund >/dev/null) || { echo "npm ci failed"; exit 1; }
fi
python3 -c 'import aiosmtpd' 2>/dev/null || pip install -q aiosmtpd >/dev/null || { echo "pip install aiosmtpd failed"; exit 1; }
# The SMS gateway and the SMTP server the console's invites go to.
SINK_HTTP=18090
SINK_SMTP=18025
python3 "$ROOT/tests/browser/sinks.py" $SINK_HTTP $SINK_SMTP >"$OUT/sinks.log" 2>&1 &
SINKS_PID=$!
ADMIN_PASSWORD=admin-password-0123
OPERATOR_PASSWORD=anna-web-password-1
OTHER_PASSWORD=bela-web-password-2
SUPERVISOR_PASSWORD=sara-web-password-9
add_console_users() {
  add_operators &&
  printf '\n[queues.support.callbacks]\nsuccess_after = 2\nhide_after_failure = 4\n' >>"$DAEMON_DIR/flows/queues.toml" &&
  echo "$ADMIN_PASSWORD" | "$HOTLINE" user add --name admin --role admin --password-stdin --config "$DAEMON_DIR/hotline.toml" &&
  echo "$OPERATOR_PASSWORD" | "$HOTLINE" user add --name anna --display-name "Anna Kovács" --role operator --operator anna --password-stdin --config "$DAEMON_DIR/hotline.toml" &&
  echo "$OTHER_PASSWORD" | "$HOTLINE" user add --name bela --role operator --operator bela --password-stdin --config "$DAEMON_DIR/hotline.toml"
}
# The call the call panel test held and transferred: anna's leg held and sent on to bela,
# bela's leg answered; the call's hold time counts the hold; anna's wrap-up is kept.
console_transfer_recorded() {
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  local hold; hold=$(echo "$cdr" | python3 -c 'import csv,sys; r=next(csv.reader(sys.stdin)); print(r[21])')
  [ "$hold" -ge 1500 ] || { echo "hold_ms $hold, expected about 2000"; return 1; }
  [[ "$cdr" == *",bela,"*",1,anna answered ring "*" hold "*" to operator bela; bela answered ring "*',Complaint,"refund promised, sent on to billing",,"refund, billing"' ]]
}

# The consult-then-complete transfer from the call panel (consult.test.mjs): bela's phone
# receives the caller's key press after the transfer, and the record has the legs.
browser_consult() {
  tcpdump -i lo -U -w "$OUT/consult_bela.pcap" "udp and dst port 16040" 2>/dev/null & local td=$!
  sleep 0.5
  browser_test consult.test.mjs; local rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ $rc = 0 ] || return 1
  echo "bela heard the caller's 5:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/consult_bela.pcap" 16040 pcma --dtmf 5 || return 1
  local cdr; cdr=$(last_call); echo "CDR: $cdr"
  [[ "$cdr" == *",bela,"*"anna answered ring "*" hold "*" to operator bela (consulted); bela answered "* ]] || { echo "CDR lacks the consulted transfer"; return 1; }
}

# The console as anna's phone (phone.test.mjs): Chromium's fake microphone plays a
# 1 kHz tone, beeping (a steady tone is what noise suppression removes); what the daemon
# sends the caller (media port 16180) must carry that tone and her keypad's 5 as RFC 4733.
# A fake microphone's file: a tone of HZ, 400 ms on and 100 ms off (the browser's noise
# suppression would fade a steady one), for 10 s; Chromium plays it in a loop.
mic_tone() { # file hz
  python3 - "$1" "$2" <<'EOP'
import math, struct, sys, wave
rate, hz = 48000, int(sys.argv[2])
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    frames = [int(12000 * math.sin(2 * math.pi * hz * i / rate)) if i % 24000 < 19200 else 0
              for i in range(rate * 10)]
    w.writeframes(struct.pack(f"<{len(frames)}h", *frames))
EOP
}

browser_phone() {
  mic_tone "$OUT/mic-tone.wav" 1000 || return 1
  tcpdump -i lo -U -w "$OUT/phone_caller.pcap" "udp and dst port 16180" 2>/dev/null & local td=$!
  sleep 0.5
  MIC_WAV=$OUT/mic-tone.wav browser_test phone.test.mjs; local rc=$?
  sleep 0.3; kill -INT $td; wait $td 2>/dev/null
  [ $rc = 0 ] || return 1
  echo "the caller heard anna's microphone and keypad:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/phone_caller.pcap" 16180 pcma --tone 1000 --dtmf 5
}

# A supervisor on a call (supervisor.test.mjs): sara (a supervisor with an operator
# account, so a phone) listens, whispers, barges and takes over anna's call from the
# board. The caller's capture must not carry sara's 1.7 kHz while she whispered, and must
# while she barged in.
browser_supervisor() {
  mic_tone "$OUT/mic-tone.wav" 1000 && mic_tone "$OUT/supervisor-tone.wav" 1700 &&
    python3 "$ROOT/tests/sipp/tone_pcap.py" "$OUT/caller-400.pcap" 400 45 || return 1
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"sara","sip_user":"1009","sip_password":"sara-secret-9"}' "http://127.0.0.1:$HTTP_PORT/api/operators" || return 1
  echo "$SUPERVISOR_PASSWORD" | "$HOTLINE" user add --name sara --role supervisor --operator sara \
    --password-stdin --config "$DAEMON_DIR/hotline.toml" || return 1
  register_phone 1009 sara-secret-9 15089 >/dev/null || { echo "sara's phone could not register"; return 1; }
  tcpdump -i lo -U -w "$OUT/supervised_caller.pcap" "udp and dst port 16180" 2>/dev/null & local td=$!
  tcpdump -i lo -U -w "$OUT/supervisor_phone.pcap" "udp and dst port 16089" 2>/dev/null & local td2=$!
  sleep 0.5
  MIC_WAV=$OUT/mic-tone.wav SUPERVISOR_WAV=$OUT/supervisor-tone.wav TONE_PCAP=$OUT/caller-400.pcap \
    PHASES=$OUT/supervisor-phases.json SUPERVISOR_USER=sara SUPERVISOR_PASSWORD=$SUPERVISOR_PASSWORD \
    browser_test supervisor.test.mjs; local rc=$?
  sleep 0.3; kill -INT $td $td2; wait $td $td2 2>/dev/null
  [ $rc = 0 ] || return 1
  phase() { python3 -c 'import json,sys; print(*json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT/supervisor-phases.json" "$1"; }
  local whisper barge listen taken
  whisper=$(phase whisper) && barge=$(phase barge) && listen=$(phase sip_listen) && taken=$(phase sip_taken_over) || return 1
  echo "while sara whispered, the caller heard anna and not sara:"
  # shellcheck disable=SC2086 # two numbers
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/supervised_caller.pcap" 16180 pcma --between $whisper \
    --tone 1000 --no-tone 1700 || return 1
  echo "while sara barged in, the caller heard her:"
  # shellcheck disable=SC2086
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/supervised_caller.pcap" 16180 pcma --between $barge \
    --tone-in-mix 1700 --tone-in-mix 1000 || return 1
  echo "sara's SIP phone, listening, heard the caller and anna:"
  # shellcheck disable=SC2086
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/supervisor_phone.pcap" 16089 pcma --between $listen \
    --tone-in-mix 400 --tone-in-mix 1000 || return 1
  echo "and after taking over, the caller alone:"
  # shellcheck disable=SC2086
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/supervisor_phone.pcap" 16089 pcma --between $taken \
    --tone 400 --no-tone 1000
}

# A recorded call (PRODUCT S2, recording.test.mjs): it plays in sara's page and not for
# anna, and its WAV file holds the caller's 400 Hz and anna's 1 kHz (read with Python's
# wave module). Runs after browser_supervisor, which adds sara.
browser_recording() {
  mic_tone "$OUT/mic-tone.wav" 1000 &&
    python3 "$ROOT/tests/sipp/tone_pcap.py" "$OUT/caller-400.pcap" 400 45 || return 1
  RECORDING_OUT=$OUT/recording-id MIC_WAV=$OUT/mic-tone.wav TONE_PCAP=$OUT/caller-400.pcap \
    SUPERVISOR_USER=sara SUPERVISOR_PASSWORD=$SUPERVISOR_PASSWORD \
    browser_test recording.test.mjs || return 1
  local file
  file=$(find "$DAEMON_DIR/state/recordings" -name '*.wav' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
  [ -n "$file" ] || { echo "no recording under $DAEMON_DIR/state/recordings"; return 1; }
  echo "recording $(cat "$OUT/recording-id"): the caller's 400 Hz and anna's 1 kHz are in it:"
  python3 "$ROOT/tests/sipp/recording_tones.py" "$file" --tone 400 --tone 1000
}

browser_test() { # file
  BASE_URL=http://127.0.0.1:$HTTP_PORT ADMIN_USER=admin ADMIN_PASSWORD=$ADMIN_PASSWORD \
    OPERATOR_USER=anna OPERATOR_PASSWORD=$OPERATOR_PASSWORD OTHER_USER=bela OTHER_PASSWORD=$OTHER_PASSWORD \
    SINK_URL=http://127.0.0.1:$SINK_HTTP SIPP_DIR=$ROOT/tests/sipp PCAPS=$PCAPS SIP_ADDR=127.0.0.1:$SIP_PORT \
    DAEMON_RESTART=$DAEMON_DIR/restart.sh API_TOKEN=$API_TOKEN MIC_WAV=${MIC_WAV:-} \
    node --test --test-reporter=spec "$ROOT/tests/browser/$1"
}
if PRESTART=add_console_users start_daemon console "timeout_secs = 90
[notify]
mode = \"send\"
[notify.sms]
url = \"http://127.0.0.1:$SINK_HTTP/sms\"
[notify.email]
host = \"127.0.0.1\"
port = $SINK_SMTP
tls = \"none\"
from = \"Hotline <hotline@example.org>\"
[notify.retry]
first_backoff_ms = 200
[trunk]
address = \"127.0.0.1:15099\"
caller_id = \"+3612345678\"
[chat]
offer_timeout_secs = 5
[[chat.sites]]
key = \"demo\"
name = \"Demo shop\"
queues = [\"support\"]
greeting = \"Hello from Hotline\"
allowed_origins = [\"http://127.0.0.1:18091\"]
hmac_secret = \"test-secret\"
[web]
phone_reattach_secs = 4" 2026-11-24T16:30:00+01:00; then
  # A caller waiting in the support queue takes the callback offer: an entry for the
  # widget, with the time Hotline promised. (The flows' clock is set; the console's is not.)
  check caller_takes_offer caller_takes_offer
  # The operators' phones, for calling customers back from the widget.
  register_phone 1001 anna-secret-1 15081 >/dev/null || echo "anna's phone could not register"
  register_phone 1002 bela-secret-2 15082 >/dev/null || echo "bela's phone could not register"
  check browser_callbacks browser_test callbacks.test.mjs
  check browser_console browser_test console.test.mjs
  check browser_visual_session browser_test visual.test.mjs
  check browser_tasks browser_test tasks.test.mjs
  check browser_call_panel browser_test calls.test.mjs
  check console_transfer_recorded console_transfer_recorded
  check browser_consult_transfer browser_consult
  check browser_phone browser_phone
  check browser_live_board browser_test board.test.mjs
  check browser_supervisor browser_supervisor
  check browser_recording browser_recording
  check browser_chat browser_test chat.test.mjs
  check caller_hears_computed_promise caller_hears_computed_promise
  stop_daemon
else failed=$((failed + 1)); echo "FAIL daemon_start_console"; fi
kill $SINKS_PID 2>/dev/null

# Web chat on two daemons sharing one PostgreSQL database: anna's console on node A,
# bela's on node B, each with room for one chat; visitors on both nodes' demo pages.
chat_two_nodes_postgres() {
  local db="hotline_chat_$$" url pids=() node
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || return 1
  url="postgres://postgres@127.0.0.1:5432/$db"
  local dir=$OUT/chat_pg; rm -rf "$dir"; mkdir -p "$dir"
  for node in a b; do
    local rtp=34000-34099; [ $node = b ] && rtp=34100-34199
    printf '[store]\ndatabase_url = "%s"\n[api]\ntoken = "%s"\n[rtp]\nports = "%s"\n[chat]\noffer_timeout_secs = 10\n' \
      "$url" "$API_TOKEN" "$rtp" >"$dir/$node.toml"
  done
  local cfg=(--config "$dir/a.toml")
  { echo "anna-secret-1" | "$HOTLINE" operator add anna --sip-user 1001 --chat-capacity 1 --password-stdin "${cfg[@]}" &&
    echo "bela-secret-2" | "$HOTLINE" operator add bela --sip-user 1002 --chat-capacity 1 --password-stdin "${cfg[@]}" &&
    echo "$OPERATOR_PASSWORD" | "$HOTLINE" user add --name anna --role operator --operator anna --password-stdin "${cfg[@]}" &&
    echo "$OTHER_PASSWORD" | "$HOTLINE" user add --name bela --role operator --operator bela --password-stdin "${cfg[@]}"
  } >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log"; return 1; }
  for node in a b; do
    local sip=15460 http=18480; [ $node = b ] && { sip=15560; http=18580; }
    HOTLINE_SIP_LISTEN=127.0.0.1:$sip HOTLINE_HTTP_LISTEN=127.0.0.1:$http HOTLINE_STATE_DIR=$dir/state-$node \
      HOTLINE_FLOWS_DIR=$ROOT/ivr-flows HOTLINE_DATABASE_URL= "$HOTLINE" serve --config "$dir/$node.toml" >"$dir/$node.log" 2>&1 &
    pids+=($!)
  done
  for http in 18480 18580; do
    for _ in $(seq 1 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/healthz")" = 200 ] && break; sleep 0.1; done
  done
  BASE_A=http://127.0.0.1:18480 BASE_B=http://127.0.0.1:18580 API_TOKEN=$API_TOKEN \
    OPERATOR_USER=anna OPERATOR_PASSWORD=$OPERATOR_PASSWORD OTHER_USER=bela OTHER_PASSWORD=$OTHER_PASSWORD \
    node --test --test-reporter=spec "$ROOT/tests/browser/chat-nodes.test.mjs"
  local status=$?
  kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  [ $status = 0 ] || { echo "node A:"; tail -20 "$dir/a.log"; echo "node B:"; tail -20 "$dir/b.log"; }
  return $status
}
check browser_chat_two_nodes_postgres chat_two_nodes_postgres

# The Debian package as an admin installs it: cargo-deb builds it from the release binary;
# it is installed here, its files, conffiles, user and unit (systemd-analyze security,
# offline) checked, the installed daemon started as its user, then purged. Last, so the
# installed /etc/hotline/hotline.toml never becomes another check's default settings.
check debian_package "$ROOT/tests/package.sh"
# Licenses (AGPL-compatible), bans (no OpenSSL), sources; advisories when their database
# can be fetched (tests/deny.sh installs cargo-deny once).
check cargo_deny "$ROOT/tests/deny.sh"

echo
[ $unit_status = 0 ] || echo "unit tests: FAILED (see above)"
echo "sipp and browser checks: $passed passed, $failed failed"
[ $unit_status = 0 ] && [ $failed = 0 ]
