#!/usr/bin/env bash
# Fuzzing (not part of tests/run.sh): runs each cargo-fuzz target of fuzz/ for FUZZ_SECS
# (default 600) and prints, per target, the executions, the corpus size and the crashes.
#
#   sip_message  one datagram: the SIP parser, its round trip, and the whole endpoint
#   sip_stream   a TCP byte stream cut at fuzzer-chosen places: the framer
#   sdp          an SDP offer: negotiation, and our answer negotiating again
#   rtp          datagrams on a media port: RTP session (RTP, RTCP, RFC 4733) and bridge
#   flows        a flow file, a calendar and queues.toml through `flow check`'s checker
#
# Seed corpora (made fresh each run in fuzz/corpus/<target>/seed-*; what the fuzzer finds is
# kept beside them between runs): the RFC 4475 torture messages, the messages of the SIPp
# scenarios in tests/sipp, their SDP bodies, and the example flows, calendar and queues.
# A crash leaves its input in fuzz/artifacts/<target>/; turn each into a unit test.
#
# Knobs: FUZZ_SECS=600, TARGETS="sip_message sip_stream sdp rtp flows", JOBS=2 (targets
# run at once; this machine has 2 cores), RSS_LIMIT_MB=2048.
# Needs nightly (rustup's) and cargo-fuzz, which it installs when missing.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ=$ROOT/fuzz
SHARED=${SHARED:-$ROOT/../shared}
FUZZ_SECS=${FUZZ_SECS:-600}
TARGETS=${TARGETS:-"sip_message sip_stream sdp rtp flows"}
JOBS=${JOBS:-2}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-2048}
OUT=$FUZZ/out
mkdir -p "$OUT"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || exit 1
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal || exit 1

# --- seed corpora ---------------------------------------------------------------------
seed() { # target name < data
  mkdir -p "$FUZZ/corpus/$1"
  cat >"$FUZZ/corpus/$1/seed-$2"
}
rm -f "$FUZZ"/corpus/*/seed-*
n=0
for f in "$SHARED"/conformance/rfc4475/*.dat; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  seed sip_message "rfc4475-$(basename "$f" .dat)" <"$f"
  # Two messages back to back, as on a stream (the 16 first bytes choose the read sizes).
  { printf '\x07\x01\x40\x03\x11\x05\x80\x02\x09\x13\x01\x01\x30\x08\x02\x0f'; cat "$f" "$f"; } |
    seed sip_stream "rfc4475-$(basename "$f" .dat)"
done
echo "seeds: $n RFC 4475 messages"
# The SIPp scenarios' messages, with their [keywords] filled in plausibly.
python3 - "$ROOT/tests/sipp" "$FUZZ/corpus" <<'PY'
import os, re, sys
src, corpus = sys.argv[1], sys.argv[2]
fill = {
    "service": "100", "remote_ip": "127.0.0.1", "remote_port": "5060", "local_ip": "127.0.0.1",
    "local_port": "5070", "transport": "UDP", "call_number": "1", "media_ip": "127.0.0.1",
    "media_port": "16000", "media_ip_type": "4", "local_ip_type": "4", "call_id": "1-1@127.0.0.1",
    "cseq": "1", "pid": "1", "len": "0", "branch": "z9hG4bK-1-1", "peer_tag_param": ";tag=abc",
    "last_Via:": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx",
    "last_From:": "From: <sip:a@127.0.0.1>;tag=1", "last_To:": "To: <sip:100@127.0.0.1>;tag=2",
    "last_Call-ID:": "Call-ID: 1-1@127.0.0.1", "last_CSeq:": "CSeq: 1 INVITE",
    "routes": "", "next_url": "sip:100@127.0.0.1:5060", "authentication": "",
}
count = 0
for name in sorted(os.listdir(src)):
    if not (name.endswith(".xml") or name.endswith(".xml.in")):
        continue
    text = open(os.path.join(src, name), encoding="utf-8", errors="replace").read()
    for i, block in enumerate(re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", text, re.S)):
        msg = re.sub(r"\[([^\]\s]+)\]", lambda m: fill.get(m.group(1), "1"), block.strip())
        msg = "\r\n".join(l.strip() for l in msg.splitlines())
        head, _, body = msg.partition("\r\n\r\n")
        body = body + "\r\n" if body else ""
        head = re.sub(r"Content-Length:.*", f"Content-Length: {len(body.encode())}", head, flags=re.I)
        data = (head + "\r\n\r\n" + body).encode()
        base = f"{name.split('.')[0]}-{i}"
        for target, blob in (("sip_message", data), ("sip_stream", b"\x10" * 16 + data + data)):
            os.makedirs(os.path.join(corpus, target), exist_ok=True)
            open(os.path.join(corpus, target, "seed-" + base), "wb").write(blob)
        if body.startswith("v=0"):
            os.makedirs(os.path.join(corpus, "sdp"), exist_ok=True)
            open(os.path.join(corpus, "sdp", "seed-" + base), "wb").write(body.encode())
        count += 1
print(f"seeds: {count} SIPp scenario messages")
PY
printf 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n' | seed sdp handmade
# RTP: a PCMA packet from the caller, an RFC 4733 '5' start and end, an RTCP RR from B.
python3 - "$FUZZ/corpus" <<'PY'
import os, struct, sys
d = os.path.join(sys.argv[1], "rtp"); os.makedirs(d, exist_ok=True)
def rtp(pt, seq, ts, payload, marker=0):
    return struct.pack("!BBHII", 0x80, (marker << 7) | pt, seq, ts, 0xCAFE) + payload
pkts = [(0x14, rtp(8, 1, 0, b"\xd5" * 160)), (0x14, rtp(101, 2, 160, struct.pack("!BBH", 5, 10, 160), 1)),
        (0x14, rtp(101, 3, 160, struct.pack("!BBH", 5, 0x8a, 800))), (0xd4, bytes([0x80, 201, 0, 1, 0, 0, 0, 1]))]
blob = b"".join(bytes([len(p), how]) + p for how, p in pkts)
open(os.path.join(d, "seed-call"), "wb").write(blob)
PY
{ cat "$ROOT/ivr-flows/main.toml"; printf '\0'; cat "$ROOT/ivr-flows/calendars/hungary.toml"; printf '\0'; cat "$ROOT/ivr-flows/queues.toml"; } | seed flows examples
{ cat "$ROOT/ivr-flows/hotline.toml"; printf '\0'; cat "$ROOT/ivr-flows/calendars/hungary.toml"; printf '\0'; cat "$ROOT/ivr-flows/queues.toml"; } | seed flows examples-hotline

# --- build once, then run ---------------------------------------------------------------
cd "$FUZZ" || exit 1
for t in $TARGETS; do
  cargo +nightly fuzz build -O "$t" >"$OUT/build-$t.log" 2>&1 || { echo "build $t failed:"; tail -30 "$OUT/build-$t.log"; exit 1; }
done

run_target() {
  local t=$1
  mkdir -p "$FUZZ/artifacts/$t"
  cargo +nightly fuzz run -O "$t" "$FUZZ/corpus/$t" -- -max_total_time="$FUZZ_SECS" \
    -rss_limit_mb="$RSS_LIMIT_MB" -print_final_stats=1 >"$OUT/run-$t.log" 2>&1
  echo $? >"$OUT/run-$t.rc"
}

# Crashes are counted from this run's artifacts only (earlier ones stay for reference).
touch "$OUT/started"
running=0
for t in $TARGETS; do
  run_target "$t" &
  running=$((running + 1))
  if [ $running -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

# --- report ---------------------------------------------------------------------------
printf '%-12s %12s %10s %8s %8s  %s\n' target executions exec/s corpus crashes result
total_crashes=0
for t in $TARGETS; do
  log=$OUT/run-$t.log
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
  corpus=$(find "$FUZZ/corpus/$t" -type f | wc -l)
  crashes=$(find "$FUZZ/artifacts/$t" -type f -newer "$OUT/started" \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  total_crashes=$((total_crashes + crashes))
  rc=$(cat "$OUT/run-$t.rc" 2>/dev/null || echo '?')
  result=ok; [ "$rc" = 0 ] || result="exit $rc (see $log)"
  printf '%-12s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" "$result"
done
echo "fuzzed $FUZZ_SECS s per target; crashes: $total_crashes"
[ "$total_crashes" = 0 ]
