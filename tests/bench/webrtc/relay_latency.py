#!/usr/bin/env python3
"""What the daemon adds to browser-phone legs, from a loopback capture (webrtc_legs.sh).

The browser side is SRTP, so a packet cannot be followed through the daemon by its
contents as bridged/relay_latency.py does. Instead, per captured leg (MAP: lines
"leg-number leg-port call-port" from browser-legs --map-file):

  caller -> browser: in  = callers' port -> call-port (plain RTP, a marked frame);
                     out = the daemon -> leg-port (SRTP media, not STUN/DTLS/RTCP);
  browser -> caller: in  = leg-port -> the daemon (SRTP media);
                     out = call-port -> callers' port (plain RTP, a marked frame).

Each stream sends one packet every 20 ms, so an "out" packet is paired with the latest
"in" packet of its leg and direction before it, and latency = capture time out - capture
time in (kernel timestamps of one capture, taken as each packet enters loopback's receive
path in the sender's context). It spans the kernel delivering the packet to the daemon,
the wait in its socket, the daemon's work (for a browser leg: the call's relay, a
loopback hop inside the daemon and the leg's SRTP), up to its send entering loopback. A
latency over 20 ms would be paired with the wrong packet (too small): see max_ms and
unpaired counts.

Usage: relay_latency.py PCAP MAP --callers-port 19600. Prints one JSON line.
"""

import argparse
import json
import struct
import sys

MARK = b"HLWB"


def packets(path):
    """(time ns, src port, dst port, udp payload) of every UDP packet."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        else:
            endian = ">"
            magic = struct.unpack(">I", head[:4])[0]
        nano = magic == 0xA1B23C4D
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        link_len = {1: 14, 113: 16, 276: 20}.get(linktype)
        if link_len is None:
            sys.exit("relay_latency.py: link type %d not handled" % linktype)
        rec = struct.Struct(endian + "IIII")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _ = rec.unpack(h)
            data = f.read(incl)
            t = sec * 1_000_000_000 + (frac if nano else frac * 1000)
            ip = data[link_len:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            udp = ip[ihl:]
            if len(udp) < 8:
                continue
            sport, dport = struct.unpack(">HH", udp[:4])
            yield t, sport, dport, udp[8:]


def is_media(p):
    """RTP media (not STUN, DTLS or RTCP), by its first two bytes (RFC 7983; muxed RTCP's
    packet types 192-223 read as payload types 64-95, RFC 5761)."""
    return len(p) >= 12 and 128 <= p[0] <= 191 and not 64 <= (p[1] & 0x7F) <= 95


def marked(p):
    if not is_media(p):
        return False
    at = 12 + 4 * (p[0] & 0x0F)
    return p[at:at + 4] == MARK


def quantiles(values):
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, max(0, int(q * len(v) + 0.999999) - 1))] / 1e6
    return {"n": len(v), "p50_ms": round(at(0.5), 4), "p99_ms": round(at(0.99), 4),
            "p999_ms": round(at(0.999), 4), "max_ms": round(v[-1] / 1e6, 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("map")
    ap.add_argument("--callers-port", type=int, required=True)
    a = ap.parse_args()
    leg_of_port, leg_of_call = {}, {}
    for line in open(a.map):
        f = line.split()
        if len(f) == 3:
            leg_of_port[int(f[1])] = int(f[0])
            leg_of_call[int(f[2])] = int(f[0])
    # Per leg and direction, the time of the last packet in (None once it was paired).
    last_in = {}
    lat = {"to_browser": [], "to_caller": []}
    unpaired = {"to_browser": 0, "to_caller": 0}
    first = last = None
    count = 0
    for t, sport, dport, p in packets(a.pcap):
        count += 1
        first = t if first is None else first
        last = t
        if sport == a.callers_port and dport in leg_of_call and marked(p):
            last_in[(leg_of_call[dport], "to_browser")] = t
        elif dport in leg_of_port and is_media(p):
            key = (leg_of_port[dport], "to_browser")
            t_in = last_in.pop(key, None)
            if t_in is None:
                unpaired["to_browser"] += 1
            else:
                lat["to_browser"].append(t - t_in)
        elif sport in leg_of_port and is_media(p):
            last_in[(leg_of_port[sport], "to_caller")] = t
        elif sport in leg_of_call and dport == a.callers_port and marked(p):
            key = (leg_of_call[sport], "to_caller")
            t_in = last_in.pop(key, None)
            if t_in is None:
                unpaired["to_caller"] += 1
            else:
                lat["to_caller"].append(t - t_in)
    both = lat["to_browser"] + lat["to_caller"]
    print(json.dumps({
        "legs": len(leg_of_port), "packets": count,
        "capture_s": round((last - first) / 1e9, 2) if count else 0,
        "latency": quantiles(both),
        "latency_to_browser": quantiles(lat["to_browser"]),
        "latency_to_caller": quantiles(lat["to_caller"]),
        "unpaired": unpaired,
    }))


if __name__ == "__main__":
    main()
