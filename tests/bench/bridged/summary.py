#!/usr/bin/env python3
"""The tables at the end of tests/bench/bridged.sh, from its results.jsonl (one JSON line
per round: the driver's window-1 figures, window 2's under "with_capture", the capture's
analysis under "capture", and the round's own figures).

  summary.py RESULTS_JSONL      (environment: CORES, DISTURBED_PCT)

Prints every round; per relay and N the median of the runs (and the range of the p99s);
the ratios Hotline/rtpengine per N; and the targets.
"""

import json
import os
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
cores = int(os.environ.get("CORES", "0") or 0)
disturbed = int(os.environ.get("DISTURBED_PCT", "25") or 25)


def figures(r):
    """The round's figures, or None when it has none."""
    if "packets" not in r:
        return None
    n = r["n"]
    cap = r.get("capture") or {}
    lat = cap.get("latency") or {}
    rss = r.get("pid_rss_kib") or 0
    return {
        "relay": r.get("relay", "hotline"), "n": n, "run": r.get("run", 1),
        "bridged": min(r.get("api_busy", 0), r.get("calls_both_ways", 0)),
        "cap_p50": lat.get("p50_ms") if lat.get("n") else None,
        "cap_p99": lat.get("p99_ms") if lat.get("n") else None,
        "cap_max": lat.get("max_ms") if lat.get("n") else None,
        "drv_p50": r["transit_p50_ms"], "drv_p99": r["transit_p99_ms"], "drv_max": r["transit_max_ms"],
        "iv_p50": r["interval_p50_ms"], "iv_p99": r["interval_p99_ms"], "iv_max": r["interval_max_ms"],
        "cpu": r.get("pid_cpu_pct"),
        "cpu_w2": (r.get("with_capture") or {}).get("pid_cpu_pct"),
        "rss_mib": rss / 1024,
        "kib_call": (rss - r["idle_rss_kib"]) / n if rss else None,
        "idle_mib": r["idle_rss_kib"] / 1024,
        "lost": r["lost"] + (cap.get("lost_in_relay", 0) if cap else 0) + ((r.get("with_capture") or {}).get("lost") or 0),
        "expected": r["expected"],
        "meter_cpu": r.get("meter_cpu_pct"),
        "machine_cpu": r.get("machine_cpu_pct"),
        # The driver could not keep its schedule: the machine ran out of CPU, and the
        # latencies measure waiting for a core more than the relay's own work.
        "saturated": r["send_late_p99_ms"] > 5 or (r.get("machine_cpu_pct") or 0) > 90 * max(cores, 1),
        "other": float(r.get("other_cpu_pct") or 0),
        "pps": r["packets"] / r["window_s"] if r.get("window_s") else 0,
        "raw": r,
    }


fmt = "%-9s %3s %5s %9s  %-22s %-22s %-18s %6s %8s %8s %11s"
print(fmt % ("relay", "run", "N", "bridged", "relay added, ms", "send->receive, ms", "interval at rcvr", "CPU %",
             "RSS MiB", "KiB/call", "lost"))
print(fmt % ("", "", "", "", "(capture) p50/p99/max", "(driver) p50/p99/max", "p50/p99/max, ms", "", "", "", ""))
three = lambda a, b, c: "-" if b is None else "%.3f / %.3f / %.2f" % (a, b, c)
ok_rows, notes = [], []
for r in rows:
    f = figures(r)
    if f is None:
        print(fmt % (r.get("relay", "?"), r.get("run", "?"), r["n"], "-", "-", "-", "-", "-", "-", "-", "-")
              + "   " + r.get("error", "?"))
        continue
    ok_rows.append(f)
    print(fmt % (f["relay"], f["run"], f["n"], "%d/%d" % (f["bridged"], f["n"]),
                 three(f["cap_p50"], f["cap_p99"], f["cap_max"]), three(f["drv_p50"], f["drv_p99"], f["drv_max"]),
                 "%.2f/%.2f/%.2f" % (f["iv_p50"], f["iv_p99"], f["iv_max"]),
                 "-" if f["cpu"] is None else "%.0f" % f["cpu"], "%.1f" % f["rss_mib"],
                 "-" if f["kib_call"] is None else "%.1f" % f["kib_call"], "%d/%d" % (f["lost"], f["expected"])))
    raw = r
    per_packet = lambda pct: (pct or 0) / 100 * 1e6 / f["pps"] if f["pps"] else float("nan")
    notes.append(
        "%s N=%d run %s: streams received %d of %d; the driver sent up to %.3f ms late (p99; max %.2f); CPU %% of "
        "one core: machine %s of %d, driver %.0f, other processes %s (window 2: %s), tcpdump %s; relay CPU in window "
        "2 %s%%; CPU per relayed packet: relay %.1f us, driver %.1f us; idle RSS %.1f MiB%s"
        % (f["relay"], f["n"], f["run"], raw["streams"], 2 * f["n"], raw["send_late_p99_ms"], raw["send_late_max_ms"],
           "-" if f["machine_cpu"] is None else "%.0f" % f["machine_cpu"], 100 * cores,
           f["meter_cpu"] or 0, raw.get("window_other_cpu_pct"), raw.get("capture_other_cpu_pct"),
           raw.get("tcpdump_cpu_pct"), "-" if f["cpu_w2"] is None else "%.0f" % f["cpu_w2"],
           per_packet(f["cpu"]), per_packet(f["meter_cpu"]), f["idle_mib"],
           "; SATURATED: the driver could not keep its 20 ms schedule, the machine was out of CPU"
           if f["saturated"] else ""))
    if raw.get("misrouted") or raw.get("duplicates") or raw.get("seq_jumps"):
        notes.append("%s N=%d run %s: misrouted %d, duplicates %d, sequence jumps %d"
                     % (f["relay"], f["n"], f["run"], raw["misrouted"], raw["duplicates"], raw["seq_jumps"]))
    if str(raw.get("callers_failed")) != "0" or str(raw.get("phones_failed")) != "0" or raw.get("active_after"):
        notes.append("%s N=%d run %s: callers failed %s, phones failed %s, active calls after the hang-ups %s"
                     % (f["relay"], f["n"], f["run"], raw.get("callers_failed"), raw.get("phones_failed"),
                        raw.get("active_after")))
    if f["other"] > disturbed:
        notes.append("%s N=%d run %s: other processes took %.0f%% of one core: figures disturbed"
                     % (f["relay"], f["n"], f["run"], f["other"]))
print()
for line in notes:
    print("  note: " + line)

# Medians per relay and N.
groups = {}
for f in ok_rows:
    groups.setdefault((f["relay"], f["n"]), []).append(f)


def med(fs, key):
    v = [f[key] for f in fs if f[key] is not None]
    return statistics.median(v) if v else None


medians = {}
print()
print("medians of the runs, per relay and N (p99 range over the runs in brackets; bridged: the worst run):")
mfmt = "%-9s %5s %4s %9s  %-24s %-24s %6s %8s %8s %14s %10s"
print(mfmt % ("relay", "N", "runs", "bridged", "relay added p99, ms", "send->receive p99, ms", "CPU %", "RSS MiB",
              "KiB/call", "lost", "saturated"))
rng = lambda fs, key: "[%.3f-%.3f]" % (min(f[key] for f in fs), max(f[key] for f in fs)) \
    if all(f[key] is not None for f in fs) else ""
for (relay, n), fs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    m = {k: med(fs, k) for k in ("cap_p99", "drv_p99", "cpu", "rss_mib", "kib_call", "lost")}
    m["bridged"] = min(f["bridged"] for f in fs)
    m["lost_total"] = sum(f["lost"] for f in fs)
    medians[(relay, n)] = m
    print(mfmt % (relay, n, len(fs), "%d/%d" % (m["bridged"], n),
                  ("-" if m["cap_p99"] is None else "%.3f" % m["cap_p99"]) + " " + rng(fs, "cap_p99"),
                  "%.3f %s" % (m["drv_p99"], rng(fs, "drv_p99")),
                  "-" if m["cpu"] is None else "%.0f" % m["cpu"], "%.1f" % m["rss_mib"],
                  "-" if m["kib_call"] is None else "%.1f" % m["kib_call"],
                  "%d (all runs)" % m["lost_total"], "%d of %d" % (sum(f["saturated"] for f in fs), len(fs))))

ns = sorted({n for (_, n) in medians})
if any(("hotline", n) in medians and ("rtpengine", n) in medians for n in ns):
    print()
    print("ratios Hotline / rtpengine (medians; below 1: Hotline lower):")
    rfmt = "%5s %20s %22s %8s %8s %9s"
    print(rfmt % ("N", "relay added p99", "send->receive p99", "CPU", "RSS", "KiB/call"))
    ratio = lambda a, b: "-" if a is None or not b else "%.2f" % (a / b)
    for n in ns:
        h, e = medians.get(("hotline", n)), medians.get(("rtpengine", n))
        if not h or not e:
            continue
        print(rfmt % (n, ratio(h["cap_p99"], e["cap_p99"]), ratio(h["drv_p99"], e["drv_p99"]),
                      ratio(h["cpu"], e["cpu"]), ratio(h["rss_mib"], e["rss_mib"]), ratio(h["kib_call"], e["kib_call"])))

print()
print("relay added: capture time of the packet the relay sent minus that of the packet it got (kernel timestamps,")
print("  window 2, with tcpdump). send->receive: the driver's own clock from before its send to after its receive")
print("  (window 1, no capture): the relay plus two loopback deliveries plus the driver's scheduling. Both are upper")
print("  bounds of what the relay adds unobserved. CPU: % of one core, all the relay's threads, window 1. KiB/call:")
print("  (RSS at the end of window 1 - RSS before the first call) / N. saturated: rounds in which the driver sent")
print("  more than 5 ms late (p99) or the machine was over 90% busy: their latencies are mostly waiting for a core.")
h = medians.get(("hotline", 1000))
if h is None:
    print("target: 1,000 bridged calls through Hotline, < 1 ms p99: not measured (no N=1000 Hotline round)")
else:
    bound = min(x for x in (h["cap_p99"], h["drv_p99"]) if x is not None)
    ok = h["bridged"] == 1000 and bound < 1.0 and h["lost_total"] == 0
    print("target: 1,000 bridged calls through Hotline on this machine (%d cores), relay adding < 1 ms p99: %d bridged, "
          "p99 at most %.3f ms (median: capture %s, send->receive %.3f), %d lost -> %s"
          % (cores, h["bridged"], bound, "-" if h["cap_p99"] is None else "%.3f" % h["cap_p99"], h["drv_p99"],
             h["lost_total"], "met" if ok else "NOT met"))
for n in ns:
    h, e = medians.get(("hotline", n)), medians.get(("rtpengine", n))
    if not h or not e or h["cap_p99"] is None or e["cap_p99"] is None:
        continue
    p99_ok = h["cap_p99"] <= e["cap_p99"]
    small = h["kib_call"] is not None and e["kib_call"] is not None and h["kib_call"] < e["kib_call"]
    print("target at N=%d: Hotline's relay-added p99 no worse than rtpengine's (%.3f vs %.3f ms: %s) while smaller "
          "per call (%.1f vs %.1f KiB: %s) -> %s"
          % (n, h["cap_p99"], e["cap_p99"], "yes" if p99_ok else "no", h["kib_call"] or 0, e["kib_call"] or 0,
             "yes" if small else "no", "met" if p99_ok and small else "NOT met"))
