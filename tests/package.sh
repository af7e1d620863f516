#!/usr/bin/env bash
# The Debian package, as a new admin gets it: builds it with cargo-deb from the release
# binary (tests/run.sh built it), installs it on this machine, checks what it installed
# and that the installed daemon starts as its own user on the installed settings, then
# purges it again. Runs without systemd (the unit is checked offline).
# Usage: tests/package.sh (run from tests/run.sh; needs root for dpkg).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/tests/out/package
rm -rf "$OUT" && mkdir -p "$OUT"
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok: $*"; }

# Never touch an installation an admin made: only one this script installed (its marker
# is left behind when a run was killed) is purged.
MARKER=/var/lib/hotline-package-test
if dpkg -s hotline >/dev/null 2>&1 && [ ! -e "$MARKER" ]; then
  echo "FAIL: hotline is installed on this machine, not by this test; not touching it"
  exit 1
fi
purge() { dpkg --purge hotline >/dev/null 2>&1 || true; rm -f "$MARKER"; }
PID=
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null
  purge
}
trap cleanup EXIT

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "installing cargo-deb (once per machine)"
  cargo install cargo-deb --locked --quiet || { echo "FAIL: cannot install cargo-deb"; exit 1; }
fi
command -v strip >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils >/dev/null

DEB=$(cargo deb -p hotline --no-build --output "$OUT" 2>"$OUT/cargo-deb.log" | tail -1)
if [ ! -f "$DEB" ]; then
  cat "$OUT/cargo-deb.log"
  echo "FAIL: cargo deb built no package"
  exit 1
fi
ok "built $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"

purge
touch "$MARKER"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB" >"$OUT/install.log" 2>&1; then
  cat "$OUT/install.log"
  echo "FAIL: the package does not install"
  exit 1
fi
ok "installed"

# What it installed.
v=$(/usr/bin/hotline --version 2>&1)
want="hotline $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
[ "$v" = "$want" ] && ok "/usr/bin/hotline --version: $v" || fail "--version said '$v', not '$want'"
for f in /lib/systemd/system/hotline.service /usr/lib/sysusers.d/hotline.conf \
  /etc/hotline/hotline.toml /etc/hotline/ivr-flows/main.toml /etc/hotline/ivr-flows/queues.toml \
  /etc/hotline/ivr-flows/calendars/hungary.toml /etc/hotline/ivr-flows/prompts/closed.wav \
  /usr/share/doc/hotline/README.md; do
  [ -f "$f" ] || fail "$f is not installed"
done
conffiles=$(dpkg-query --showformat='${Conffiles}\n' --show hotline)
for f in /etc/hotline/hotline.toml /etc/hotline/ivr-flows/main.toml /etc/hotline/ivr-flows/calendars/hungary.toml; do
  grep -q " $f " <<<"$conffiles" && ok "conffile $f" || fail "$f is not a conffile"
done
getent passwd hotline >/dev/null && ok "user hotline exists" || fail "no user hotline"
perm=$(stat -c '%U:%G %a' /etc/hotline/hotline.toml)
[ "$perm" = "root:hotline 640" ] && ok "hotline.toml is $perm" || fail "hotline.toml is $perm, not root:hotline 640"

# The unit: its exposure (systemd-analyze security, offline) must be "OK" or better.
sec=$(systemd-analyze security --offline=true /lib/systemd/system/hotline.service 2>&1 | tail -1)
echo "   $sec"
grep -Eq 'exposure level for hotline.service: [0-9.]+ (OK|SAFE)' <<<"$sec" \
  && ok "unit exposure OK or better" || fail "unit exposure: $sec"
grep -q '^AmbientCapabilities=CAP' /lib/systemd/system/hotline.service \
  && fail "the unit still grants a capability" || ok "the unit grants no capability"

# The installed daemon checks its installed flows, then starts as its user on the
# installed settings (the unit's state directory stood in for by a temporary one).
# A clean environment, as the unit gives it: no HOTLINE_* of the caller's (tests/run.sh
# exports its daemons' settings).
CLEAN=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
if runuser -u hotline -- "${CLEAN[@]}" /usr/bin/hotline flow check --config /etc/hotline/hotline.toml >"$OUT/flow-check.log" 2>&1; then
  ok "hotline flow check on /etc/hotline (as hotline)"
else
  cat "$OUT/flow-check.log"; fail "flow check of the installed flows"
fi
STATE=$(mktemp -d /tmp/hotline-package.XXXXXX)
chown hotline:hotline "$STATE"
runuser -u hotline -- "${CLEAN[@]}" STATE_DIRECTORY="$STATE" HOTLINE_SIP_LISTEN=127.0.0.1:15990 \
  HOTLINE_HTTP_LISTEN=127.0.0.1:15991 HOTLINE_RTP_PORTS=31900-31949 \
  /usr/bin/hotline serve --config /etc/hotline/hotline.toml >"$OUT/daemon.log" 2>&1 &
PID=$!
up=0
for _ in $(seq 1 100); do
  curl -sf --max-time 1 http://127.0.0.1:15991/healthz >/dev/null 2>&1 && { up=1; break; }
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.2
done
if [ "$up" = 1 ] && [ -f "$STATE/hotline.db" ]; then
  ok "the installed daemon serves /healthz, its database in \$STATE_DIRECTORY"
else
  tail -20 "$OUT/daemon.log"; fail "the installed daemon did not come up with its database in \$STATE_DIRECTORY"
fi
# The admin's live view of it, as its user.
shown=$(runuser -u hotline -- "${CLEAN[@]}" STATE_DIRECTORY="$STATE" /usr/bin/hotline show calls \
  --config /etc/hotline/hotline.toml 2>&1)
echo "$shown" | sed 's/^/   /'
grep -q "active call" <<<"$shown" && ok "hotline show calls answers" || fail "hotline show calls: $shown"
kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=
rm -rf "$STATE"

purge
[ -e /usr/bin/hotline ] && fail "purge left /usr/bin/hotline" || ok "purged"
exit $FAILED
