#!/usr/bin/env python3
"""Calls through rtpengine over its ng control protocol (tests/bench/bridged.sh, RELAYS
with rtpengine). No SIP: what a SIP proxy would ask rtpengine for, this asks directly.

The ng protocol: one UDP datagram per request, "COOKIE " + a bencoded dictionary; the
answer is "COOKIE " + a bencoded dictionary with "result" ("ok", "pong", "error" with
"error-reason").

  rtpengine_calls.py ping   NG_ADDR
  rtpengine_calls.py setup  NG_ADDR N CALLER_MEDIA OPERATOR_MEDIA LEGS_FILE [RATE]
      For call i in 0..N-1: "offer" with the caller's SDP (PCMA, c= and m= at
      CALLER_MEDIA, IP:PORT), then "answer" with the operator's SDP (at OPERATOR_MEDIA), as a
      SIP proxy does for an INVITE and its 200. The SDP rtpengine returns for the offer
      (what the operator would get) names the port the operator sends to; the one it
      returns for the answer (what the caller would get) the port the caller sends to.
      Writes "i CALLER_LEG OPERATOR_LEG" per call to LEGS_FILE (complete, then renamed
      into place: the media driver, rtp-meter --bridge --legs-file, waits for it).
      RATE: calls set up per second (0, the default: as fast as rtpengine answers).
  rtpengine_calls.py delete NG_ADDR N
      "delete" for every call.

Prints one line: how many succeeded, the failures' reasons, and the time it took.
Exit status 1 when any request failed.
"""

import os
import socket
import sys
import time


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"
    raise TypeError(type(v))


def bdecode(data, i=0):
    """(value, next index); strings come back as str."""
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    s = data[colon + 1:colon + 1 + n]
    return s.decode(errors="replace"), colon + 1 + n


class Ng:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.addr = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.n = 0

    def ask(self, msg, timeout=2.0, tries=3):
        self.n += 1
        cookie = b"%d_%d" % (os.getpid(), self.n)
        data = cookie + b" " + bencode(msg)
        for _ in range(tries):
            self.sock.send(data)
            self.sock.settimeout(timeout)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    got = self.sock.recv(65536)
                except socket.timeout:
                    break
                c, _, body = got.partition(b" ")
                if c == cookie:
                    return bdecode(body)[0]
        return {"result": "error", "error-reason": "no answer from rtpengine"}


def sdp(session, ip, port):
    return ("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n" % (session, ip, ip, port))


def media_of(text):
    """IP:PORT of the first audio stream of an SDP (the m= port, the media-level c= if any)."""
    ip = port = None
    for line in text.replace("\r", "").split("\n"):
        if line.startswith("c=IN IP4 "):
            ip = line.split()[2]
        elif line.startswith("m=audio "):
            if port is not None:
                break
            port = int(line.split()[1])
    if ip is None or port is None:
        raise ValueError("no c= or m=audio in the SDP")
    return "%s:%d" % (ip, port)


def call_id(i):
    return "bench-%d-%d" % (os.getppid(), i)


def main():
    cmd, addr = sys.argv[1], sys.argv[2]
    ng = Ng(addr)
    t0 = time.monotonic()
    if cmd == "ping":
        r = ng.ask({"command": "ping"})
        print(r.get("result"))
        sys.exit(0 if r.get("result") == "pong" else 1)
    n = int(sys.argv[3])
    errors = {}

    def failed(what, r):
        key = "%s: %s" % (what, r.get("error-reason") or r.get("result"))
        errors[key] = errors.get(key, 0) + 1

    ok = 0
    if cmd == "setup":
        cip, cport = sys.argv[4].rsplit(":", 1)
        oip, oport = sys.argv[5].rsplit(":", 1)
        path = sys.argv[6]
        rate = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
        lines = []
        for i in range(n):
            if rate > 0:
                wait = t0 + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            base = {"call-id": call_id(i), "from-tag": "c%d" % i}
            r = ng.ask(dict(base, command="offer", sdp=sdp(i, cip, int(cport))))
            if r.get("result") != "ok":
                failed("offer", r)
                continue
            try:
                operator_leg = media_of(r["sdp"])
            except (KeyError, ValueError) as e:
                failed("offer", {"result": "SDP: %s" % e})
                continue
            r = ng.ask(dict(base, command="answer", **{"to-tag": "o%d" % i},
                            sdp=sdp(i, oip, int(oport))))
            if r.get("result") != "ok":
                failed("answer", r)
                continue
            try:
                caller_leg = media_of(r["sdp"])
            except (KeyError, ValueError) as e:
                failed("answer", {"result": "SDP: %s" % e})
                continue
            lines.append("%d %s %s\n" % (i, caller_leg, operator_leg))
            ok += 1
        with open(path + ".tmp", "w") as f:
            f.writelines(lines)
        os.rename(path + ".tmp", path)
    elif cmd == "delete":
        for i in range(n):
            r = ng.ask({"command": "delete", "call-id": call_id(i), "from-tag": "c%d" % i})
            if r.get("result") == "ok":
                ok += 1
            else:
                failed("delete", r)
    else:
        sys.exit("unknown command " + cmd)
    print("%s: %d of %d in %.1f s%s" % (cmd, ok, n, time.monotonic() - t0,
          "; failed: " + ", ".join("%s (%d)" % kv for kv in errors.items()) if errors else ""))
    sys.exit(0 if ok == n else 1)


if __name__ == "__main__":
    main()
