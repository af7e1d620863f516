#!/usr/bin/env python3
"""Relay latency from a loopback capture (tests/bench/bridged.sh).

The media driver (rtp-meter --bridge) gives every stream its own SSRC and Hotline relays
packets unchanged, so a packet going in (driver port -> Hotline's RTP range) and the same
packet coming out (Hotline's RTP range -> driver port) share SSRC and sequence number.
Latency = capture time out - capture time in, both kernel timestamps of the same capture
(taken as the packet enters loopback's receive path, in the sending process's context):
so it spans the kernel delivering the packet to Hotline's socket, the wait in that socket,
Hotline waking up, reading, deciding and sending, up to its send entering loopback.

Also: per-stream intervals of the packets going in (what the driver sent, by kernel
time) and coming out (what a receiver gets, before its own scheduling), packets that went
in but never came out (outside the first and last 100 ms of the capture), and per 100 ms slice of
the capture the largest latency (are the slow packets spread out, or a few stalls?).

Usage: relay_latency.py PCAP --driver-ports 19200,19202 --rtp-range 20000-29999
Prints one JSON line.
"""

import argparse
import json
import struct
import sys

CALLER_TAG = 0x0C
OPERATOR_TAG = 0x0E
MAGIC = b"HLbr"


def packets(path):
    """(time in ns, src port, dst port, ssrc, seq) of every bench RTP packet."""
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
            if len(udp) < 8 + 16:
                continue
            sport, dport = struct.unpack(">HH", udp[:4])
            rtp = udp[8:]
            if rtp[0] >> 6 != 2 or rtp[12:16] != MAGIC:
                continue
            seq, = struct.unpack(">H", rtp[2:4])
            ssrc, = struct.unpack(">I", rtp[8:12])
            yield t, sport, dport, ssrc, seq


def quantiles(values):
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, max(0, int(q * len(v) + 0.999999) - 1))] / 1e6
    return {"n": len(v), "p50_ms": round(at(0.5), 4), "p99_ms": round(at(0.99), 4),
            "p999_ms": round(at(0.999), 4), "max_ms": round(v[-1] / 1e6, 4)}


def intervals(times_by_stream):
    out = []
    for times in times_by_stream.values():
        times.sort()
        out.extend(b - a for a, b in zip(times, times[1:]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--driver-ports", required=True)
    ap.add_argument("--rtp-range", required=True)
    a = ap.parse_args()
    driver = {int(p) for p in a.driver_ports.split(",")}
    lo, hi = (int(p) for p in a.rtp_range.split("-"))

    inbound, outbound = {}, {}
    in_times, out_times = {}, {}
    dup_in = dup_out = 0
    first = last = None
    for t, sport, dport, ssrc, seq in packets(a.pcap):
        first = t if first is None else first
        last = t
        key = (ssrc, seq)
        if sport in driver and lo <= dport <= hi:
            if key in inbound:
                dup_in += 1
                continue
            inbound[key] = t
            in_times.setdefault(ssrc, []).append(t)
        elif dport in driver and lo <= sport <= hi:
            if key in outbound:
                dup_out += 1
                continue
            outbound[key] = t
            out_times.setdefault(ssrc, []).append(t)

    lat = {CALLER_TAG: [], OPERATOR_TAG: []}
    negative = 0
    lost = 0
    # Per 100 ms of the capture (by the time a packet went in): packets, the largest
    # latency, packets over 1 ms. Shows whether a tail is spread out or a few stalls.
    slices = {}
    for key, t_in in inbound.items():
        t_out = outbound.get(key)
        if t_out is None:
            # Not at the edges: the copy may fall outside the capture.
            if first + 100_000_000 < t_in < last - 100_000_000:
                lost += 1
            continue
        if t_out < t_in:
            negative += 1
        d = t_out - t_in
        lat.setdefault(key[0] >> 24, []).append(d)
        s = slices.setdefault((t_in - first) // 100_000_000, [0, 0, 0])
        s[0] += 1
        s[1] = max(s[1], d)
        s[2] += d > 1_000_000
    appeared = sum(1 for key, t in outbound.items() if key not in inbound and t > first + 100_000_000)
    both = lat[CALLER_TAG] + lat[OPERATOR_TAG]
    result = {
        "capture_s": round((last - first) / 1e9, 3) if first is not None else 0,
        "in_packets": len(inbound),
        "out_packets": len(outbound),
        "matched": len(both),
        "lost_in_relay": lost,
        "out_without_in": appeared,
        "negative": negative,
        "duplicates_in": dup_in,
        "duplicates_out": dup_out,
        "streams_in": len(in_times),
        "streams_out": len(out_times),
        "latency": quantiles(both),
        "latency_to_operator": quantiles(lat[CALLER_TAG]),
        "latency_to_caller": quantiles(lat[OPERATOR_TAG]),
        "interval_in": quantiles(intervals(in_times)),
        "interval_out": quantiles(intervals(out_times)),
        "slices": len(slices),
        "slices_over_1ms": sum(1 for v in slices.values() if v[1] > 1_000_000),
        "worst_slices": [{"at_s": k / 10, "max_ms": round(v[1] / 1e6, 3), "over_1ms": v[2], "packets": v[0]}
                         for k, v in sorted(slices.items(), key=lambda kv: -kv[1][1])[:3]],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
