#!/usr/bin/env python3
"""The table of tests/bench/webrtc_legs.sh.

  summary.py RESULTS.jsonl [BRIDGED-RESULTS.jsonl]

One row per N of browser legs; with bridged.sh's results (Hotline rounds), plain SIP
bridged legs at the same N beside them, and the goals: 500 legs with relay p99 < 1 ms,
and CPU per leg no more than twice a plain bridged leg's.
"""

import json
import sys


def load(path):
    rows = []
    try:
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    except (OSError, ValueError):
        pass
    return rows


def q(flow, part, key):
    v = ((flow or {}).get(part) or {}).get(key)
    return v


def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v


def main():
    legs = load(sys.argv[1])
    bridged = {r["n"]: r for r in load(sys.argv[2])} if len(sys.argv) > 2 and sys.argv[2] else {}
    print("Browser-phone legs (browser-legs, str0m) <-> SIPp callers through Hotline.")
    print("relay = the daemon alone (capture of some legs: packet in -> its copy out, both ways);")
    print("one-way = send->receive on browser-legs' clock (daemon + loopback + browser-legs' own work).")
    print()
    head = ("N", "up", "relay p50", "relay p99", "b->c p50", "b->c p99", "c->b p50", "c->b p99",
            "iv p99 b->c", "iv p99 c->b", "lost", "CPU %", "CPU/leg", "KiB/call", "legs CPU", "others",
            "late p99")
    print("%5s %5s %9s %9s %9s %9s %9s %9s %11s %11s %6s %6s %8s %8s %8s %6s %8s" % head)
    verdict = []
    for r in legs:
        n = r["n"]
        if "browser_to_caller" not in r:
            print("%5d  %s" % (n, r.get("error", "no result")))
            continue
        bc, cb = r["browser_to_caller"], r["caller_to_browser"]
        up = min(r.get("connected", 0), r.get("browsers_hearing", 0), r.get("callers_hearing", 0))
        sent = bc["sent"] + cb["sent"]
        lost = max(0, sent - bc["received"] - cb["received"])
        cpu = r.get("daemon_cpu_pct")
        rss = r.get("daemon_rss_kib") or r.get("rss_end_kib") or 0
        kib = (rss - r["idle_rss_kib"]) / n if rss else None
        late = max(q(bc, "send_late", "p99_ms") or 0, q(cb, "send_late", "p99_ms") or 0)
        relay = ((r.get("capture") or {}).get("latency") or {})
        print("%5d %5d %9s %9s %9s %9s %9s %9s %11s %11s %6d %6s %8s %8s %8s %6s %8s" % (
            n, up, fmt(relay.get("p50_ms"), "%.3f"), fmt(relay.get("p99_ms"), "%.3f"),
            fmt(q(bc, "one_way", "p50_ms"), "%.3f"), fmt(q(bc, "one_way", "p99_ms"), "%.3f"),
            fmt(q(cb, "one_way", "p50_ms"), "%.3f"), fmt(q(cb, "one_way", "p99_ms"), "%.3f"),
            fmt(q(bc, "interval", "p99_ms")), fmt(q(cb, "interval", "p99_ms")), lost,
            fmt(cpu, "%.0f"), fmt(cpu / n if cpu is not None else None, "%.3f"), fmt(kib, "%.0f"),
            fmt(r.get("client_cpu_pct"), "%.0f"), fmt(r.get("other_cpu_pct"), "%.0f"),
            fmt(late, "%.2f")))
        b = bridged.get(n)
        p99 = max(q(bc, "one_way", "p99_ms") or 0, q(cb, "one_way", "p99_ms") or 0)
        saturated = late > 5 or (r.get("machine_cpu_pct") or 0) > 90 * (r.get("cores") or 1)
        rp99 = relay.get("p99_ms")
        line = "N=%d: %d of %d legs up both ways; relay p99 %s ms (goal < 1 ms: %s); one-way p99 %.3f ms%s" % (
            n, up, n, fmt(rp99, "%.3f"), "-" if rp99 is None else "met" if rp99 < 1 else "NOT met", p99,
            "; SATURATED (the machine or browser-legs ran short of CPU)" if saturated else "")
        if b and b.get("pid_cpu_pct") is not None and cpu is not None:
            plain = b["pid_cpu_pct"] / n
            ratio = (cpu / n) / plain if plain else float("inf")
            line += "; CPU per leg %.3f%% vs plain bridged %.3f%% of a core: x%.2f (goal <= 2: %s)" % (
                cpu / n, plain, ratio, "met" if ratio <= 2 else "NOT met")
            blat = ((b.get("capture") or {}).get("latency") or {})
            line += "; plain bridged: relay p50 %s p99 %s ms, driver transit p50 %.3f p99 %.3f ms, KiB/call %s" % (
                fmt(blat.get("p50_ms"), "%.3f"), fmt(blat.get("p99_ms"), "%.3f"),
                b.get("transit_p50_ms", 0), b.get("transit_p99_ms", 0),
                fmt((b.get("pid_rss_kib", 0) - b.get("idle_rss_kib", 0)) / n if b.get("pid_rss_kib") else None, "%.0f"))
        elif bridged:
            line += "; no plain bridged round at this N"
        if r.get("error_count"):
            line += "; browser-legs errors %d (e.g. %s)" % (r["error_count"], (r.get("errors") or ["?"])[0][:120])
        verdict.append(line)
    print()
    print("CPU: % of one core (daemon, all threads) over the window; CPU/leg = CPU / N; KiB/call = (RSS at")
    print("the window's end - RSS with N phones online, no call) / N; legs CPU = browser-legs;")
    print("others = every other process (all cores busy - daemon - browser-legs), % of one core; late p99 =")
    print("how late browser-legs sent against its 20 ms slots.")
    print()
    for v in verdict:
        print(v)


if __name__ == "__main__":
    main()
