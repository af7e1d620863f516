# Real softphones as operators' phones: baresip and linphonec, Debian's packages unmodified.
# Sourced by tests/run.sh after tests/lib.sh (needs need_pkg) and uses what run.sh sets:
# OUT, ROOT, PCAPS, HOTLINE, SIP_PORT, HTTP_PORT, MEDIA_PORT, API_TOKEN, DAEMON_DIR and
# its helpers (operator_state, caller_talks, last_call).
#
# Everything listens and talks on 127.0.0.1 only (the phones' SDP carries 127.0.0.1: they
# pick the address they reach the daemon from).
#
# baresip 1.0.0 (baresip-core), headless with a config directory:
#   - auto-answers (answermode=auto), registers every 60 s; plays a WAV (module aufile) or a
#     sine (ausine); the player is aubridge (no sound card).
#   - aufile plays the file once, then baresip ends the call: the WAV must outlast the call
#     ("aufile: end of file" in the log at the call's start only means the file is loaded).
#   - sndfile dumps what it sent and received as $OUT/NAME/dump-YYYY-MM-DD-hh-mm-ss-enc.wav
#     and ...-dec.wav, one pair per call, named by the second its audio started (two calls
#     started in one second would share a name), closed when the call ends. Both 8 kHz mono
#     for G.711: -enc is the PCM before the encoder, -dec what the decoder gave.
#   - its G.711 encoder rounds a few samples differently from Python's audioop (about
#     0.5 % of the bytes differ by one step), so what the caller hears from it is compared
#     with phones_heard's tolerant match, not heard.py's byte-exact one.
#   - ctrl_tcp takes netstring-framed JSON commands (baresip_cmd); events arrive on the same
#     connection, so the reply is the frame with "response":true.
#   - binds TLS on SIPPORT + 1 and TCP on SIPPORT: keep two baresips at least 2 ports apart.
#   - its SDP (o= and c=) carries the address of `net_interface`, by default the first
#     interface's (eth0's here), not sip_listen's: `net_interface 127.0.0.1` keeps the
#     media on loopback (`net_interface lo` fails: "could not get IPv4 address").
#   - libre 1.0 answers MD5 digest only and gives up ("Register: Function not implemented")
#     when any challenge of the set names another algorithm.
#   - prints a status line (audio bit rates) several times a second during a call to its log.
#
# linphonec 5.1 (linphone-cli), fed commands through a FIFO on stdin:
#   - wants $HOME/.local/share/linphone/: each phone has its own HOME in $OUT/NAME/home.
#   - the rc file needs register_only_when_network_is_up=0 (and ..._upnp_is_ok=0) or it
#     never sends REGISTER in a container; sip_tcp_port/sip_tls_port=0 keep it off TCP 5060
#     (it binds UDP and RTP on [::], but talks to 127.0.0.1 only and its SDP says so).
#   - auto_net_state_mon=0: else it watches the network by asking the kernel for a route
#     to 87.98.157.38 and 2a00:1450:8002::68 (UDP connect, no packet sent to them, but the
#     IPv6 one makes the kernel solicit the IPv6 gateway on eth0).
#   - no sound card: `soundcard use files` switches it to files; then `play FILE.wav` is
#     what it sends in the next calls (MSFilePlayer, 8 kHz mono goes to the G.711 encoder
#     unresampled: byte-exact with audioop, heard.py matches it) and `record FILE.wav` is
#     where it writes what it received (MSFileRec, 8 kHz mono 16-bit, decoded; the file is
#     rewritten per call and complete once the call has ended). Both must be given before
#     the call is answered.
#   - `autoanswer enable` answers at once; registration by the `register` command.
#   - commands sent before it has started are lost: wait for its first prompt in the log
#     (linphone_phone does), about 1-3 s after start.
#   - EOF on stdin ends it: a `sleep` holds the FIFO open for writing; linphone_cmd opens
#     and closes it per command.

# phones_heard SOURCE [--heard REF...] [--not-heard REF...] [--tone HZ...]: what a phone or
# a caller heard. SOURCE is CAPTURE.pcap:PORT (the RTP to PORT in a tcpdump capture) or a
# WAV (a phone's dump of what it decoded). REF is a WAV (8 kHz mono: the audio someone
# played) or a .pcap (the RTP audio someone sent, e.g. SIPp's g711a.pcap). Everything is
# compared as G.711 A-law: a 200 ms stretch of REF (from the middle, or an early one) is
# heard when at least 90 % of its bytes equal the stream's at one alignment (not heard:
# under 50 %). --steps N (before the others): bytes within N A-law steps count as equal,
# for audio Hotline converted from μ-law on its way (one more rounding). --tone: the frequency carries most of the energy in at least 10 blocks of
# 100 ms (for baresip's ausine, which is resampled from 48 kHz and so matches no bytes).
phones_heard() {
  python3 - "$@" <<'PY'
import array, math, struct, sys, wave, warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
import audioop

def rtp_alaw(path, port):
    """A-law payloads (PT 8; PT 0 converted) of the RTP to PORT (any port if None), in
    sequence order."""
    data = open(path, "rb").read()
    endian = "<" if struct.unpack("<I", data[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 113: 16, 0: 4}.get(linktype, 14)
    off, pkts = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = pkt[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4:]
        if port is not None and struct.unpack(">H", udp[2:4])[0] != port:
            continue
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or (rtp[1] & 0x7F) not in (0, 8):
            continue
        body = rtp[12 + 4 * (rtp[0] & 0x0F):]
        if rtp[1] & 0x7F == 0:
            body = audioop.lin2alaw(audioop.ulaw2lin(body, 2), 2)
        pkts.append((struct.unpack(">H", rtp[2:4])[0], body))
    if not pkts:
        return b""
    first = pkts[0][0]
    pkts.sort(key=lambda p: (p[0] - first) % 65536)
    return b"".join(p[1] for p in pkts)

def wav_alaw(path):
    with wave.open(path, "rb") as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        pcm = w.readframes(w.getnframes())
    if width != 2:
        pcm = audioop.lin2lin(pcm, width, 2)
    if ch == 2:
        pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
    if rate != 8000:
        pcm = audioop.ratecv(pcm, 2, 1, rate, 8000, None)[0]
    return audioop.lin2alaw(pcm, 2)

def load(spec):
    """CAPTURE.pcap:PORT (RTP to PORT), X.pcap (all its RTP) or X.wav, as A-law bytes."""
    if ".pcap:" in spec:
        path, port = spec.rsplit(":", 1)
        return rtp_alaw(path, int(port))
    if spec.endswith(".pcap"):
        return rtp_alaw(spec, None)
    return wav_alaw(spec)

def stretches(ref):
    """200 ms from the middle, and an early one (as heard.py)."""
    mid = len(ref) // 2
    return [ref[mid - 800:mid + 800], ref[3200:4800]]

STEP = 0  # --steps N: bytes within N A-law quantization steps count as equal

def same(a, b):
    if STEP == 0 or a == b:
        return a == b
    a, b = a ^ 0x55, b ^ 0x55
    return (a & 0x80) == (b & 0x80) and abs((a & 0x7f) - (b & 0x7f)) <= STEP

def found(chunk, stream):
    """Best share of equal bytes between CHUNK and STREAM over the alignments that 4-byte
    runs of CHUNK vote for (an encoder rounding differently changes few bytes)."""
    if len(chunk) < 1600:
        return 0.0
    if chunk in stream:
        return 1.0
    index = {}
    for i in range(len(stream) - 3):
        index.setdefault(stream[i:i + 4], []).append(i)
    votes = {}
    for i in range(0, len(chunk) - 3, 2):
        for p in index.get(chunk[i:i + 4], ())[:50]:
            votes[p - i] = votes.get(p - i, 0) + 1
    best = 0.0
    for start, _ in sorted(votes.items(), key=lambda kv: -kv[1])[:20]:
        if start < 0 or start + len(chunk) > len(stream):
            continue
        seg = stream[start:start + len(chunk)]
        best = max(best, sum(same(a, b) for a, b in zip(seg, chunk)) / len(chunk))
    return best

def tone_share(stream, freq):
    """Share of the energy at FREQ (Goertzel, +-1 bin) in the decoded stream."""
    x = array.array("h", audioop.alaw2lin(stream, 2))
    n = 800  # 100 ms blocks
    hits = 0
    blocks = 0
    for b in range(0, len(x) - n, n):
        blk = x[b:b + n]
        total = sum(v * v for v in blk) or 1
        k = round(freq * n / 8000)
        e = 0.0
        for kk in (k - 1, k, k + 1):
            w = 2 * math.pi * kk / n
            c = 2 * math.cos(w)
            s1 = s2 = 0.0
            for v in blk:
                s1, s2 = v + c * s1 - s2, s1
            e += (s1 * s1 + s2 * s2 - c * s1 * s2) * 2 / n
        blocks += 1
        if e / total > 0.5 and audioop.rms(audioop.alaw2lin(stream[b:b + n], 2), 2) > 100:
            hits += 1
    return hits, blocks

def main():
    args = sys.argv[1:]
    stream = load(args[0])
    global STEP
    mode, ok, heard, not_heard, tones = None, True, [], [], []
    for a in args[1:]:
        if a in ("--heard", "--not-heard", "--tone", "--steps"):
            mode = a
        elif mode == "--steps":
            STEP = int(a)
        elif mode == "--heard":
            heard.append(a)
        elif mode == "--not-heard":
            not_heard.append(a)
        else:
            tones.append(float(a))
    rms = audioop.rms(audioop.alaw2lin(stream, 2), 2) if stream else 0
    print(f"phones_heard: {args[0]}: {len(stream) / 8000:.2f} s of audio, rms {rms}")
    if not stream:
        return 1
    for ref in heard:
        share = max(found(c, stream) for c in stretches(load(ref)))
        good = share >= 0.9
        verdict = "heard" if good else "NOT heard, but should have been"
        ok &= good
        print(f"phones_heard: {ref}: {share:.1%} of a 200 ms stretch matched: {verdict}")
    for ref in not_heard:
        share = max(found(c, stream) for c in stretches(load(ref)))
        good = share < 0.5
        verdict = "not heard, as expected" if good else "heard, but should not have been"
        ok &= good
        print(f"phones_heard: {ref}: {share:.1%} matched: {verdict}")
    for f in tones:
        hits, blocks = tone_share(stream, f)
        good = hits >= 10
        verdict = "heard" if good else "NOT heard"
        ok &= good
        print(f"phones_heard: {f:g} Hz tone in {hits} of {blocks} blocks of 100 ms: {verdict}")
    return 0 if ok else 1

sys.exit(main())
PY
}

# phones_make_voice FILE SEED [SECONDS]: 8 kHz mono "voice" (random notes of 100 ms with a
# little noise; 20 s unless told): no two seeds alike, nothing like the prompts, and
# heard.py can find it. Longer than the call: baresip hangs up when its aufile ends.
phones_make_voice() {
  python3 - "$1" "$2" "${3:-20}" <<'PY'
import math, random, struct, sys, wave
random.seed(int(sys.argv[2]))
frames, f = bytearray(), 440
for i in range(8000 * int(sys.argv[3])):
    if i % 800 == 0:
        f = random.choice([330, 392, 440, 494, 523, 587, 659, 698, 784])
    frames += struct.pack("<h", int(8000 * math.sin(2 * math.pi * f * i / 8000) + random.randint(-500, 500)))
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(bytes(frames))
PY
}

install_phones() {
  need_pkg baresip baresip-core
  need_pkg linphonec linphone-cli
}

# operator_registered NAME [SECONDS]: waits until GET /api/operators shows NAME's phone
# registered ("phone_registered":true); prints NAME's entry.
operator_registered() {
  local name=$1 secs=${2:-10} i
  for i in $(seq 1 $((secs * 5))); do
    if curl -s -H "Authorization: Bearer $API_TOKEN" "http://127.0.0.1:$HTTP_PORT/api/operators" |
      python3 -c 'import json,sys
ops = [o for o in json.load(sys.stdin) if o.get("name") == sys.argv[1]]
print(ops[0] if ops else "no operator " + sys.argv[1])
sys.exit(0 if ops and ops[0].get("phone_registered") is True else 1)' "$name" >"$OUT/.registered.$name" 2>&1; then
      echo "registered after $(( (i - 1) * 200 )) ms: $(cat "$OUT/.registered.$name")"; return 0
    fi
    sleep 0.2
  done
  echo "$name's phone not registered after $secs s: $(cat "$OUT/.registered.$name")"; return 1
}

# --- baresip ----------------------------------------------------------------------------
# baresip_phone NAME SIPUSER PASSWORD SIPPORT CTRLPORT RTPLO-RTPHI AUDIO
# AUDIO: a WAV file (module aufile; 8 kHz mono goes out unresampled) or ausine,FREQ.
# The phone registers at 127.0.0.1:$SIP_PORT and answers every call at once. Sets
# BARESIP_PID; its log is $OUT/NAME/baresip.log, its dumps $OUT/NAME/dump-*.wav.
baresip_phone() {
  local name=$1 user=$2 pass=$3 sip=$4 ctrl=$5 rtp=$6 audio=$7
  local dir=$OUT/$name
  rm -rf "$dir" && mkdir -p "$dir"
  local source
  case "$audio" in
    ausine,*) source="audio_source $audio
ausrc_srate 48000
ausrc_channels 2" ;;
    *) [ -f "$audio" ] || { echo "baresip_phone: no such WAV: $audio"; return 1; }
       source="audio_source aufile,$audio" ;;
  esac
  cat >"$dir/config" <<EOF
sip_listen 127.0.0.1:$sip
net_interface 127.0.0.1
$source
audio_player aubridge,sink$name
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aufile.so
module aubridge.so
module sndfile.so
snd_path $dir
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:$ctrl
rtp_ports $rtp
EOF
  echo "<sip:$user@127.0.0.1:$SIP_PORT>;auth_pass=$pass;answermode=auto;regint=60" >"$dir/accounts"
  baresip -f "$dir" </dev/null >"$dir/baresip.log" 2>&1 &
  BARESIP_PID=$!
  echo "$BARESIP_PID" >"$dir/pid"
  # Ready when ctrl_tcp answers; its media address must be loopback's.
  local _
  for _ in $(seq 1 50); do
    if baresip_cmd "$ctrl" reginfo >/dev/null 2>&1; then
      grep -q 'Local network address: *IPv4=lo|127.0.0.1' "$dir/baresip.log" && return 0
      echo "baresip $name would offer media on another address:"; head -5 "$dir/baresip.log"; return 1
    fi
    kill -0 "$BARESIP_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "baresip $name did not start:"; tail -20 "$dir/baresip.log"; return 1
}

# baresip_cmd CTRLPORT COMMAND [PARAMS]: one command over ctrl_tcp; prints the reply's data
# (fails when the reply says ok:false or none comes within 5 s). E.g. hangup;
# sndcode 5; transfer sip:1002@127.0.0.1:15060; reginfo; listcalls; help.
baresip_cmd() {
  python3 - "$@" <<'PY'
import json, socket, sys
port, command = int(sys.argv[1]), sys.argv[2]
msg = {"command": command, "token": "phones.sh"}
if len(sys.argv) > 3:
    msg["params"] = " ".join(sys.argv[3:])
body = json.dumps(msg).encode()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"%d:%s," % (len(body), body))
buf = b""
while True:
    # netstrings: LEN:JSON, ... events first, then the response
    while b":" in buf:
        n, rest = buf.split(b":", 1)
        if len(rest) < int(n) + 1:
            break
        frame, buf = json.loads(rest[:int(n)]), rest[int(n) + 1:]
        if frame.get("response"):
            print(frame.get("data", ""))
            sys.exit(0 if frame.get("ok") else 1)
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("baresip_cmd: connection closed without a response")
    buf += chunk
PY
}

# baresip_dump NAME dec|enc: the newest dump of that phone (what it decoded, or sent).
baresip_dump() { ls -t "$OUT/$1"/dump-*-"$2".wav 2>/dev/null | head -1; }

# baresip_stop NAME: quits it (SIGTERM) and waits.
baresip_stop() {
  local pid; pid=$(cat "$OUT/$1/pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; return 0
}

# --- linphonec --------------------------------------------------------------------------
# linphone_phone NAME SIPUSER PASSWORD SIPPORT [WAV [RTPLO-RTPHI]]
# linphonec with HOME $OUT/NAME/home and rc file $OUT/NAME/linphonerc, reading commands
# from the FIFO $OUT/NAME/stdin (linphone_cmd); registers at 127.0.0.1:$SIP_PORT and
# answers every call at once. With WAV, it plays WAV into its calls and records what it
# receives to $OUT/NAME/received.wav; without, it sends silence. Sets LINPHONE_PID; its
# log (-d 6: SIP messages, states) is $OUT/NAME/linphonec.log.
linphone_phone() {
  local name=$1 user=$2 pass=$3 sip=$4 wav=${5:-} rtp=${6:-35100-35199}
  local dir=$OUT/$name
  rm -rf "$dir" && mkdir -p "$dir/home/.local/share/linphone"
  cat >"$dir/linphonerc" <<EOF
[sip]
sip_port=$sip
sip_tcp_port=0
sip_tls_port=0
use_ipv6=0
auto_net_state_mon=0
register_only_when_network_is_up=0
register_only_when_upnp_is_ok=0
guess_hostname=0
contact=sip:$user@127.0.0.1
inc_timeout=30

[rtp]
audio_rtp_port=$rtp
nortp_timeout=30

[video]
enabled=0
capture=0
display=0
automatically_initiate=0
automatically_accept=0

[sound]
echocancellation=0
EOF
  rm -f "$dir/stdin"; mkfifo "$dir/stdin"
  # The holder keeps a writer on the FIFO: linphonec ends at EOF on stdin.
  sleep 3600 >"$dir/stdin" &
  echo $! >"$dir/holder.pid"
  HOME=$dir/home linphonec -c "$dir/linphonerc" -d 6 <"$dir/stdin" >"$dir/linphonec.log" 2>&1 &
  LINPHONE_PID=$!
  echo "$LINPHONE_PID" >"$dir/pid"
  local _
  for _ in $(seq 1 100); do
    grep -q 'linphonec> ' "$dir/linphonec.log" 2>/dev/null && break
    kill -0 "$LINPHONE_PID" 2>/dev/null || { echo "linphonec $name died:"; tail -20 "$dir/linphonec.log"; return 1; }
    sleep 0.1
  done
  grep -q 'linphonec> ' "$dir/linphonec.log" || { echo "linphonec $name shows no prompt"; return 1; }
  if [ -n "$wav" ]; then
    [ -f "$wav" ] || { echo "linphone_phone: no such WAV: $wav"; return 1; }
    linphone_cmd "$name" "soundcard use files"
    linphone_cmd "$name" "play $wav"
    linphone_cmd "$name" "record $dir/received.wav"
  fi
  linphone_cmd "$name" "autoanswer enable"
  linphone_cmd "$name" "register sip:$user@127.0.0.1:$SIP_PORT sip:127.0.0.1:$SIP_PORT $pass"
}

# linphone_cmd NAME COMMAND...: one line to its stdin (answers show in its log).
linphone_cmd() { local name=$1; shift; echo "$*" >"$OUT/$name/stdin"; }

# linphone_stop NAME: quit, then the FIFO's holder; waits.
linphone_stop() {
  local dir=$OUT/$1 pid; pid=$(cat "$dir/pid" 2>/dev/null) || return 0
  kill -0 "$pid" 2>/dev/null && linphone_cmd "$1" quit
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$pid" 2>/dev/null
  kill "$(cat "$dir/holder.pid")" 2>/dev/null
  wait "$pid" 2>/dev/null; return 0
}

# last_call_fields COLUMN...: those columns of the newest CDR (by the CSV header's names),
# space-separated.
last_call_fields() {
  "$HOTLINE" calls --config "$DAEMON_DIR/hotline.toml" --limit 1 | python3 -c 'import csv, sys
rows = list(csv.DictReader(sys.stdin))
print(" ".join(rows[-1].get(c, "?") for c in sys.argv[1:]) if rows else "no CDR")' "$@"
}

# --- checks (run inside the `phones` daemon block of run.sh: add_operators, queue 500) ----
# Each phone's voice: 20 s of distinct notes (phones_make_voice), so what the caller hears
# can be told apart from the hold music and from the other phone.

# anna's phone is baresip: it registers on the daemon's digest defaults, anna goes online, a
# caller queues (number 500), baresip answers at once, and each hears the other through
# Hotline: the caller anna's voice (the RTP to the caller), anna the caller's g711a.pcap
# (the RTP to her phone, and what baresip decoded: its sndfile dump).
baresip_answers_queued_call() {
  _baresip_answers_queued_call; local rc=$?
  baresip_stop baresip-anna
  return $rc
}
_baresip_answers_queued_call() {
  local voice=$OUT/anna-voice.wav
  phones_make_voice "$voice" 1 || return 1
  baresip_phone baresip-anna 1001 anna-secret-1 15601 15610 35000-35099 "$voice" || return 1
  operator_registered anna 10 || { tail -20 "$OUT/baresip-anna/baresip.log"; return 1; }
  [ "$(operator_state bela offline)" = 204 ] || { echo "bela not set offline"; return 1; }
  [ "$(operator_state anna online)" = 204 ] || { echo "anna not set online"; return 1; }
  tcpdump -i lo -U -w "$OUT/baresip_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/baresip_anna.pcap" "udp and dst portrange 35000-35099" 2>/dev/null & local td2=$!
  sleep 0.5
  caller_talks 500 9000; local rc=$?
  sleep 0.3; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  [ $rc = 0 ] || { echo "caller failed"; return 1; }
  grep -q 'Call established' "$OUT/baresip-anna/baresip.log" || { echo "baresip did not answer"; return 1; }
  # sndfile closes its dumps when the call ends.
  for _ in $(seq 1 20); do grep -q 'Call with .* terminated' "$OUT/baresip-anna/baresip.log" && break; sleep 0.1; done
  local cdr call_id; cdr=$(last_call_fields call_id end_reason operator); echo "CDR: $cdr"
  call_id=${cdr%% *}
  [ "${cdr#* }" = "caller_hangup anna" ] || { echo "CDR: expected end reason caller_hangup, operator anna"; return 1; }
  grep -q "caller queued call_id=$call_id queue=support" "$DAEMON_DIR/daemon.log" || { echo "the caller was not queued"; return 1; }
  grep -q "caller connected to operator call_id=$call_id operator=anna" "$DAEMON_DIR/daemon.log" || { echo "not bridged to anna"; return 1; }
  # The phone answers at once: too little hold music to find in what the caller heard
  # (operator_bridged checks it). What the phone played: compared with tolerance, baresip's
  # G.711 encoder rounds a few samples unlike audioop.
  echo "the caller heard:"
  phones_heard "$OUT/baresip_caller.pcap:$MEDIA_PORT" --heard "$voice" || return 1
  echo "anna's phone got:"
  phones_heard "$OUT/baresip_anna.pcap" --heard "$PCAPS/g711a.pcap" --not-heard "$ROOT/ivr-flows/prompts/hold-music.wav" || return 1
  local dump; dump=$(baresip_dump baresip-anna dec)
  [ -n "$dump" ] || { echo "baresip dumped nothing"; ls "$OUT/baresip-anna"; return 1; }
  echo "anna's phone decoded:"
  phones_heard "$dump" --heard "$PCAPS/g711a.pcap" --not-heard "$voice"
}

# bela's phone is linphonec, the same way: registers on the defaults (it also answers
# SHA-256), answers the queued call, plays its voice file into it and records what it got.
linphone_answers_queued_call() {
  _linphone_answers_queued_call; local rc=$?
  linphone_stop linphone-bela
  return $rc
}
_linphone_answers_queued_call() {
  local voice=$OUT/bela-voice.wav
  phones_make_voice "$voice" 2 || return 1
  linphone_phone linphone-bela 1002 bela-secret-2 15603 "$voice" 35100-35199 || return 1
  operator_registered bela 10 || { grep -i 'registration\|error' "$OUT/linphone-bela/linphonec.log" | tail -20; return 1; }
  [ "$(operator_state anna offline)" = 204 ] || { echo "anna not set offline"; return 1; }
  [ "$(operator_state bela online)" = 204 ] || { echo "bela not set online"; return 1; }
  tcpdump -i lo -U -w "$OUT/linphone_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/linphone_bela.pcap" "udp and dst portrange 35100-35199" 2>/dev/null & local td2=$!
  sleep 0.5
  caller_talks 500 9000; local rc=$?
  sleep 0.5; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  [ $rc = 0 ] || { echo "caller failed"; return 1; }
  grep -q '^Call [0-9]* with .* connected' "$OUT/linphone-bela/linphonec.log" || { echo "linphonec did not answer"; return 1; }
  # MSFileRec completes the recording when the call ends.
  for _ in $(seq 1 20); do grep -q '^Call [0-9]* with .* ended' "$OUT/linphone-bela/linphonec.log" && break; sleep 0.1; done
  local cdr call_id; cdr=$(last_call_fields call_id end_reason operator); echo "CDR: $cdr"
  call_id=${cdr%% *}
  [ "${cdr#* }" = "caller_hangup bela" ] || { echo "CDR: expected end reason caller_hangup, operator bela"; return 1; }
  grep -q "caller queued call_id=$call_id queue=support" "$DAEMON_DIR/daemon.log" || { echo "the caller was not queued"; return 1; }
  grep -q "caller connected to operator call_id=$call_id operator=bela" "$DAEMON_DIR/daemon.log" || { echo "not bridged to bela"; return 1; }
  # linphone's file player goes to the G.711 encoder unresampled: heard.py's byte-exact match.
  echo "the caller heard:"
  python3 "$ROOT/tests/sipp/heard.py" "$OUT/linphone_caller.pcap" $MEDIA_PORT pcma \
    --heard "$voice" || return 1
  echo "bela's phone got:"
  phones_heard "$OUT/linphone_bela.pcap" --heard "$PCAPS/g711a.pcap" --not-heard "$ROOT/ivr-flows/prompts/hold-music.wav" || return 1
  echo "bela's phone recorded:"
  phones_heard "$OUT/linphone-bela/received.wav" --heard "$PCAPS/g711a.pcap" --not-heard "$voice"
}

# T6 with real phones: anna (baresip) takes a queued caller and transfers them with
# baresip's own `transfer` command (a blind REFER to bela's SIP user); bela's phone, a
# second baresip, rings and answers; the caller hears bela and bela hears the caller.
baresip_blind_transfer() {
  _baresip_blind_transfer; local rc=$?
  baresip_stop baresip-anna
  baresip_stop baresip-bela
  return $rc
}
_baresip_blind_transfer() {
  local anna_voice=$OUT/anna-voice.wav bela_voice=$OUT/bela-voice.wav
  phones_make_voice "$anna_voice" 1 || return 1
  phones_make_voice "$bela_voice" 3 || return 1
  [ "$(operator_state anna offline)" = 204 ] && [ "$(operator_state bela offline)" = 204 ] || return 1
  baresip_phone baresip-anna 1001 anna-secret-1 15601 15610 35000-35099 "$anna_voice" || return 1
  baresip_phone baresip-bela 1002 bela-secret-2 15603 15612 35200-35299 "$bela_voice" || return 1
  operator_registered anna 10 && operator_registered bela 10 || return 1
  [ "$(operator_state anna online)" = 204 ] || return 1
  tcpdump -i lo -U -w "$OUT/xfer_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/xfer_bela.pcap" "udp and dst portrange 35200-35299" 2>/dev/null & local td2=$!
  sleep 0.5
  caller_talks 500 12000 >"$OUT/baresip-xfer-caller.log" 2>&1 & local caller=$!
  sleep 2 # anna's baresip answers at once; bela comes online, idle, before the transfer
  [ "$(operator_state bela online)" = 204 ] || return 1
  sleep 0.5
  baresip_cmd 15610 transfer "sip:1002@127.0.0.1:$SIP_PORT" || { echo "baresip refused the transfer command"; return 1; }
  wait $caller; local rc=$?
  sleep 0.3; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  [ $rc = 0 ] || { echo "the caller failed:"; tail -20 "$OUT/baresip-xfer-caller.log"; return 1; }
  grep 'blind transfer\|caller connected to operator' "$DAEMON_DIR/daemon.log" | tail -3
  grep -q 'blind transfer.*operator=anna to=operator bela' "$DAEMON_DIR/daemon.log" || { echo "no blind transfer from anna to bela"; return 1; }
  grep 'caller connected to operator' "$DAEMON_DIR/daemon.log" | tail -1 | grep -q 'operator=bela' || { echo "not connected to bela"; return 1; }
  grep -q 'Call established' "$OUT/baresip-bela/baresip.log" || { echo "bela's baresip did not answer"; return 1; }
  for _ in $(seq 1 20); do grep -q 'Call with .* terminated' "$OUT/baresip-bela/baresip.log" && break; sleep 0.1; done
  local cdr; cdr=$(last_call_fields operator transfers legs); echo "CDR: $cdr"
  [[ "$cdr" == "bela 1 anna answered ring "*" to operator bela; bela answered ring "* ]] || { echo "CDR lacks the transfer"; return 1; }
  echo "the caller heard bela:"
  phones_heard "$OUT/xfer_caller.pcap:$MEDIA_PORT" --heard "$bela_voice" || return 1
  echo "bela's phone got the caller:"
  phones_heard "$OUT/xfer_bela.pcap" --heard "$PCAPS/g711a.pcap" || return 1
  local dump; dump=$(baresip_dump baresip-bela dec)
  [ -n "$dump" ] || { echo "bela's baresip dumped nothing"; return 1; }
  echo "bela's phone decoded:"
  phones_heard "$dump" --heard "$PCAPS/g711a.pcap"
}

# T6 attended, with real phones: anna (linphonec) takes a queued caller, calls bela's SIP
# user (linphone holds the caller first: music), bela's baresip answers the consultation; then
# linphonec's own attended transfer (`transfer 1 --to-call 2`: REFER with Replaces) joins
# the caller with bela. The caller hears bela, bela's phone gets the caller, and the CDRs
# show the attended transfer and the consultation call that it replaced.
linphone_attended_transfer() {
  _linphone_attended_transfer; local rc=$?
  linphone_stop linphone-anna
  baresip_stop baresip-bela
  return $rc
}
_linphone_attended_transfer() {
  local anna_voice=$OUT/anna-voice.wav bela_voice=$OUT/bela-voice.wav
  phones_make_voice "$anna_voice" 1 || return 1
  phones_make_voice "$bela_voice" 3 || return 1
  [ "$(operator_state anna offline)" = 204 ] && [ "$(operator_state bela offline)" = 204 ] || return 1
  linphone_phone linphone-anna 1001 anna-secret-1 15605 "$anna_voice" 35300-35399 || return 1
  baresip_phone baresip-bela 1002 bela-secret-2 15603 15612 35200-35299 "$bela_voice" || return 1
  operator_registered anna 10 && operator_registered bela 10 || return 1
  [ "$(operator_state anna online)" = 204 ] || return 1
  tcpdump -i lo -U -w "$OUT/attended_caller.pcap" "udp and dst port $MEDIA_PORT" 2>/dev/null & local td1=$!
  tcpdump -i lo -U -w "$OUT/attended_bela.pcap" "udp and dst portrange 35200-35299" 2>/dev/null & local td2=$!
  sleep 0.5
  caller_talks 500 16000 >"$OUT/attended-caller.log" 2>&1 & local caller=$!
  # SIPp plays the caller's g711a.pcap (about 7 s) once from the answer: the transfer is
  # done within 3 s, so bela gets its middle.
  local _
  for _ in $(seq 1 30); do grep -q '^Call 1 with .* connected' "$OUT/linphone-anna/linphonec.log" && break; sleep 0.1; done
  grep -q '^Call 1 with .* connected' "$OUT/linphone-anna/linphonec.log" || { echo "anna's linphonec did not answer"; return 1; }
  [ "$(operator_state bela online)" = 204 ] || return 1
  # linphonec places a second call only with the first on hold (a re-INVITE: music).
  linphone_cmd linphone-anna "pause 1"
  sleep 0.5
  linphone_cmd linphone-anna "call sip:1002@127.0.0.1:$SIP_PORT"
  for _ in $(seq 1 50); do grep -q '^Call 2 with .* connected' "$OUT/linphone-anna/linphonec.log" && break; sleep 0.1; done
  grep -q '^Call 2 with .* connected' "$OUT/linphone-anna/linphonec.log" || { echo "the consultation call was not answered"; grep 'consultation\|Call 2' "$DAEMON_DIR/daemon.log" "$OUT/linphone-anna/linphonec.log" | tail; return 1; }
  sleep 0.5 # anna and bela talk; the caller hears hold music
  linphone_cmd linphone-anna "transfer 1 --to-call 2"
  wait $caller; local rc=$?
  sleep 0.3; kill -INT $td1 $td2; wait $td1 $td2 2>/dev/null
  [ $rc = 0 ] || { echo "the caller failed:"; tail -20 "$OUT/attended-caller.log"; return 1; }
  grep 'consultation call\|attended transfer\|handed over\|caller connected to operator' "$DAEMON_DIR/daemon.log" | tail -5
  grep -q 'attended transfer.*operator=anna to=operator bela (attended)' "$DAEMON_DIR/daemon.log" || { echo "no attended transfer from anna to bela"; return 1; }
  # The newest two CDRs: the consultation call (started last) and the caller's.
  local cdrs; cdrs=$("$HOTLINE" calls --config "$DAEMON_DIR/hotline.toml" --limit 2 | python3 -c 'import csv, sys
for r in csv.DictReader(sys.stdin):
    print(r["end_reason"], r["operator"], r["transfers"], r["legs"], sep="|")')
  echo "CDRs:"; echo "$cdrs"
  echo "$cdrs" | grep -q '^replaced|bela|1|bela answered ring .* to the transferred caller$' || { echo "no CDR of the replaced consultation call"; return 1; }
  echo "$cdrs" | grep -q '^caller_hangup|bela|1|anna answered ring .* to operator bela (attended); bela answered ring ' || { echo "the caller's CDR lacks the attended transfer"; return 1; }
  echo "the caller heard the hold music, then bela:"
  phones_heard "$OUT/attended_caller.pcap:$MEDIA_PORT" --heard "$ROOT/ivr-flows/prompts/hold-music.wav" || return 1
  # bela's phone took the consultation call in μ-law (linphone's first codec); Hotline
  # converts it to the caller's A-law, one more rounding: within one step.
  phones_heard "$OUT/attended_caller.pcap:$MEDIA_PORT" --steps 1 --heard "$bela_voice" || return 1
  echo "bela's phone got the caller:"
  phones_heard "$OUT/attended_bela.pcap" --steps 1 --heard "$PCAPS/g711a.pcap"
}
