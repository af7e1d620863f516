#!/usr/bin/env python3
"""Figures of tests/bench/transfers.sh.

  analyze.py --dir STEP_DIR --rate R --step-secs S --caller-secs C --clk-tck HZ
             --t-start T --t-end T --idle-rss KIB --peak-rss KIB --active-after N --status TEXT
      one step's result as one JSON line, from the step directory: the phones' SIPp logs
      (first_logs.log: refer/accepted/refused/notified/bye-* lines; second_logs.log:
      answered lines; each "WHAT CALL DATE TIME UNIXTIME [CODE] [USER]"), the three SIPps'
      -trace_stat files, cpu.tsv / cpu-callers.tsv (Unix time and CPU ticks per second of
      Hotline and the phones' SIPps / the callers' SIPp) and daemon.log (this step's part).
  analyze.py --print RESULT_JSON
      the step's figures for people.
  analyze.py --table RESULT_JSON... [--calls CALLS_CSV]
      the final table, the call records' summary and the goal (100 transfers/s, 0 failed).

The steady part of a step: from the first 202 + 2 s to the last 202 - 2 s (transfers come
at the offered rate in between when Hotline keeps up). Transfers per second achieved = 202s in that span / its length; the
targets' answers per second likewise over their own span.
"""

import argparse
import collections
import csv
import json
import re
import sys


def q(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(p * len(v) + 0.999999) - 1))]


def log_lines(path):
    """(what, call, unix time, rest...) per line."""
    out = []
    try:
        for line in open(path, errors="replace"):
            f = line.split()
            if len(f) < 5:
                continue
            try:
                out.append((f[0], int(f[1]), float(f[4]), f[5:]))
            except ValueError:
                continue
    except OSError:
        pass
    return out


def sipp_totals(path):
    try:
        rows = list(csv.DictReader(open(path), delimiter=";"))
    except OSError:
        rows = []
    if not rows:
        return {"created": 0, "ok": 0, "failed": None, "retrans": 0, "reasons": {}}
    last = rows[-1]
    reasons = {k[len("Failed"):-3]: int(last[k]) for k in last
               if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and last[k] not in ("0", "")}
    return {"created": int(last["TotalCallCreated"]), "ok": int(last["SuccessfulCall(C)"]),
            "failed": int(last["FailedCall(C)"]), "retrans": int(last["Retransmissions(C)"]), "reasons": reasons}


def errors_of(path, limit=3):
    """The first few distinct error lines of a SIPp -error_file (without timestamps)."""
    seen = collections.Counter()
    try:
        for line in open(path, errors="replace"):
            line = re.sub(r"^\S+\t\S+\t\S+: ", "", line.strip())
            if line and not line.startswith(("-", "Last message", "UDP message", "The following events")) \
                    and len(line) < 300:
                seen[re.sub(r"[0-9]+", "N", line)[:160]] += 1
    except OSError:
        pass
    return [{"count": c, "error": e} for e, c in seen.most_common(limit)]


def cpu_series(path, clk_tck):
    """[(t, [pct per column over the previous second])]."""
    rows = []
    try:
        for line in open(path):
            f = line.split("\t")
            rows.append((float(f[0]), [None if x.strip() == "None" else int(x) for x in f[1:]]))
    except (OSError, ValueError):
        pass
    out = []
    for (t0, a), (t1, b) in zip(rows, rows[1:]):
        dt = t1 - t0
        if dt <= 0:
            continue
        out.append((t1, [None if x is None or y is None else (y - x) / clk_tck / dt * 100 for x, y in zip(a, b)]))
    return out


def analyze(a):
    d = a.dir
    first = log_lines(d + "/first_logs.log")
    second = log_lines(d + "/second_logs.log")
    by = collections.defaultdict(list)
    for what, call, t, rest in first:
        by[what].append((call, t, rest))
    refers = {c: (t, r[0] if r else "") for c, t, r in by["refer"]}
    accepted = {c: (t, r[0] if r else "") for c, t, r in by["accepted"]}
    refused = collections.Counter(r[0] if r else "?" for _, _, r in by["refused"])
    refused_targets = collections.Counter(r[1] if len(r) > 1 else "?" for _, _, r in by["refused"])
    answered = [(t, r[0] if r else "") for _, _, t, r in ((w, c, t, r) for w, c, t, r in second if w == "answered")]
    answered.sort()

    refer_to_202 = [(accepted[c][0] - refers[c][0]) * 1000 for c in accepted if c in refers]
    # The target's answer after the 202: per target, its next answer after the 202.
    answers_of = collections.defaultdict(list)
    for t, user in answered:
        answers_of[user].append(t)
    accept_to_answer, unanswered = [], 0
    for c, (t, user) in accepted.items():
        nxt = next((x for x in answers_of.get(user, []) if x >= t - 0.005), None)
        if nxt is None or nxt - t > 30:
            unanswered += 1
        else:
            accept_to_answer.append((nxt - t) * 1000)

    def rate(times):
        times = sorted(times)
        if len(times) < 10:
            return None, None, None
        lo, hi = times[0] + 2, times[-1] - 2
        inside = [t for t in times if lo <= t <= hi]
        if hi - lo < 1:
            return None, None, None
        # Per whole second inside the span: the slowest and fastest second.
        per_sec = collections.Counter(int(t - lo) for t in inside)
        secs = [per_sec.get(i, 0) for i in range(int(hi - lo))]
        return len(inside) / (hi - lo), (min(secs) if secs else None), (max(secs) if secs else None)

    acc_times = [t for t, _ in accepted.values()]
    xfer_rate, xfer_min_s, xfer_max_s = rate(acc_times)
    # What the phones asked for over the same kind of span: SIPp's -r paces the callers a
    # little under R, and the REFERs follow the callers.
    refer_rate = rate([t for t, _ in refers.values()])[0]
    ans_rate, ans_min_s, ans_max_s = rate([t for t, _ in answered])
    steady = (min(acc_times) + 2, max(acc_times) - 2) if len(acc_times) >= 10 else (a.t_start, a.t_end)

    cpu = cpu_series(d + "/cpu.tsv", a.clk_tck)
    ccpu = cpu_series(d + "/cpu-callers.tsv", a.clk_tck)
    in_steady = lambda s: [v for t, v in s if steady[0] + 1 <= t <= steady[1]]
    in_steady_t = lambda s: [(t, v) for t, v in s if steady[0] + 1 <= t <= steady[1]]
    col = lambda s, i: [v[i] for v in in_steady(s) if v[i] is not None]
    mean = lambda v: sum(v) / len(v) if v else None
    hot = col(cpu, 0)
    # Everything else on the machine: its busy time less Hotline's and the SIPps'.
    others = []
    for t, v in in_steady_t(cpu):
        callers = next((c[0] for tc, c in ccpu if abs(tc - t) < 0.6 and c[0] is not None), 0)
        if len(v) >= 4 and None not in v[:4]:
            others.append(v[3] - v[0] - v[1] - v[2] - callers)
    whole = [v[0] for t, v in cpu if v[0] is not None and a.t_start <= t <= a.t_end + 1]

    # The daemon's log of this step: WARN/ERROR kinds, and why transfers were refused.
    warn, refusals, lines = collections.Counter(), collections.Counter(), 0
    example = {}
    # Calls of this step the daemon never logged as ended (still open when the step was
    # over and every caller had hung up), with the last thing logged about each.
    started, ended, last_event = set(), set(), {}
    try:
        for line in open(d + "/daemon.log", errors="replace"):
            lines += 1
            line = re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip("\n"))
            m = re.search(r"INFO hotline::call: ([^=]*?) call_id=(\S+)", line)
            if m:
                what, cid = m.group(1).strip(), m.group(2)
                if what == "caller queued":
                    started.add(cid)
                elif what == "call ended":
                    ended.add(cid)
                last_event[cid] = what
            if "transfer refused" in line:
                m = re.search(r"transfer refused: (.*?) call_id=\S+ status=(\d+)", line)
                key = "%s %s" % (m.group(2), re.sub(r"op[0-9]+", "opN", m.group(1))) if m else line[-120:]
                refusals[key] += 1
            m = re.match(r"^\S+\s+(WARN|ERROR)\s+(.*)", line)
            if m:
                key = re.sub(r"[0-9]+(\.[0-9]+)?", "N", re.sub(r"call_id=\S+", "call_id=…", m.group(1) + " " + m.group(2)))[:110]
                warn[key] += 1
                example.setdefault(key, line[:300])
    except OSError:
        pass

    callers, first_s, second_s = (sipp_totals(d + "/%s.csv" % n) for n in ("callers", "first", "second"))
    # A target's phone that got CANCEL: the caller hung up while it rang (the transfer came
    # too late for the caller's stay).
    try:
        cancelled = open(d + "/second_errors.log", errors="replace").read().count("unexpected CANCEL")
    except OSError:
        cancelled = 0
    return {
        "rate": a.rate, "step_secs": a.step_secs, "callers_placed": callers["created"],
        "refers": len(refers), "accepted_202": len(accepted), "refused": dict(refused),
        "refused_targets_top": refused_targets.most_common(3),
        "notified_200": len(by["notified"]), "bye_from_hotline": len(by["bye-from-hotline"]),
        "bye_ourselves": len(by["bye-ourselves"]), "target_answered": len(answered),
        "target_cancelled": cancelled,
        "accepted_unanswered": unanswered,
        "transfers_per_s": xfer_rate, "refers_per_s": refer_rate, "transfers_slowest_s": xfer_min_s, "transfers_fastest_s": xfer_max_s,
        "answers_per_s": ans_rate, "answers_slowest_s": ans_min_s, "answers_fastest_s": ans_max_s,
        "steady_s": steady[1] - steady[0],
        "refer_202_ms": {"p50": q(refer_to_202, .5), "p99": q(refer_to_202, .99), "max": q(refer_to_202, 1)},
        "accept_answer_ms": {"p50": q(accept_to_answer, .5), "p99": q(accept_to_answer, .99), "max": q(accept_to_answer, 1)},
        "callers": callers, "first_phones": first_s, "second_phones": second_s,
        "callers_errors": errors_of(d + "/callers_errors.log"),
        "first_errors": errors_of(d + "/first_errors.log"),
        "second_errors": errors_of(d + "/second_errors.log"),
        "hotline_cpu_mean": mean(hot), "hotline_cpu_max_1s": max(hot) if hot else None,
        "hotline_cpu_step_mean": mean(whole),
        "sipp_first_cpu": mean(col(cpu, 1)), "sipp_second_cpu": mean(col(cpu, 2)),
        "sipp_callers_cpu": mean(col(ccpu, 0)),
        "other_cpu": mean(others),
        "idle_rss_kib": a.idle_rss, "peak_rss_kib": a.peak_rss, "active_after": a.active_after,
        "status_after": a.status,
        "daemon_log_lines": lines, "daemon_warn": [{"count": c, "line": example[k]} for k, c in warn.most_common(6)],
        "daemon_warn_total": sum(warn.values()), "daemon_refusals": dict(refusals),
        "calls_never_ended": len(started - ended),
        "never_ended_last_event": dict(collections.Counter(last_event[c] for c in started - ended)),
        "never_ended_examples": sorted(started - ended)[:3],
    }


def fmt_ms(x):
    return "-" if x is None else "%.0f" % x


def failed_total(r):
    return sum((r[k]["failed"] or 0) for k in ("callers", "first_phones", "second_phones"))


def show(r):
    p = lambda s: print("   " + s)
    refused = ", ".join("%s x%d" % kv for kv in sorted(r["refused"].items())) or "none"
    p("REFERs %d: 202 %d, refused %s; NOTIFY 200 %d; BYE from Hotline %d, phone hung up itself %d"
      % (r["refers"], r["accepted_202"], refused, r["notified_200"], r["bye_from_hotline"], r["bye_ourselves"]))
    p("targets answered %d (202s with no answer of their target: %d; targets whose ringing Hotline cancelled as the "
      "caller had hung up: %s); callers placed %d"
      % (r["target_answered"], r["accepted_unanswered"], r.get("target_cancelled", "-"), r["callers_placed"]))
    f = lambda v: "-" if v is None else "%.1f" % v
    p("transfers/s (202s, steady %.0f s): %s (slowest second %s, fastest %s); REFERs sent/s %s; targets' answers/s %s"
      % (r["steady_s"], f(r["transfers_per_s"]), r["transfers_slowest_s"], r["transfers_fastest_s"],
         f(r.get("refers_per_s")), f(r["answers_per_s"])))
    p("REFER->202 ms p50 %s p99 %s max %s; 202->target answered ms (ring %s) p50 %s p99 %s max %s"
      % (fmt_ms(r["refer_202_ms"]["p50"]), fmt_ms(r["refer_202_ms"]["p99"]), fmt_ms(r["refer_202_ms"]["max"]),
         "incl.", fmt_ms(r["accept_answer_ms"]["p50"]), fmt_ms(r["accept_answer_ms"]["p99"]),
         fmt_ms(r["accept_answer_ms"]["max"])))
    for k, name in (("callers", "callers"), ("first_phones", "first phones"), ("second_phones", "second phones")):
        s = r[k]
        p("SIPp %s: calls %d, successful %d, failed %s, retransmissions %d%s"
          % (name, s["created"], s["ok"], s["failed"], s["retrans"],
             "; " + ", ".join("%s=%d" % kv for kv in s["reasons"].items()) if s["reasons"] else ""))
        for e in r[k.replace("_phones", "") + "_errors"]:
            p("   %d x %s" % (e["count"], e["error"]))
    p("CPU %% of one core (steady part): Hotline %s (busiest second %s; whole step %s), SIPp callers %s, first %s, "
      "second %s, all other processes %s"
      % (f(r["hotline_cpu_mean"]), f(r["hotline_cpu_max_1s"]), f(r["hotline_cpu_step_mean"]), f(r["sipp_callers_cpu"]),
         f(r["sipp_first_cpu"]), f(r["sipp_second_cpu"]), f(r.get("other_cpu"))))
    p("Hotline RSS: %.1f MiB idle (operators registered), %.1f MiB at the peak; active calls after the step %s"
      % (r["idle_rss_kib"] / 1024, r["peak_rss_kib"] / 1024, r["active_after"]))
    if r.get("calls_never_ended"):
        p("calls the daemon never ended (after every caller had hung up): %d; their last event: %s; e.g. call_id %s"
          % (r["calls_never_ended"], r["never_ended_last_event"], ", ".join(r["never_ended_examples"])))
    p("daemon log: %d lines, %d WARN/ERROR; transfers refused: %s"
      % (r["daemon_log_lines"], r["daemon_warn_total"],
         ", ".join("%s x%d" % kv for kv in r["daemon_refusals"].items()) or "none"))
    for w in r["daemon_warn"]:
        p("   %d x %s" % (w["count"], w["line"]))


def table(paths, calls):
    rows = [json.load(open(p)) for p in paths]
    rows.sort(key=lambda r: r["rate"])
    fmt = "%8s %7s %7s %6s %8s %9s %8s %9s %8s %12s %10s %7s %8s %7s %7s"
    print(fmt % ("offered", "callers", "REFERs", "202", "refused", "target", "REFERs", "xfers/s", "answers",
                 "REFER->202", "failed", "Hotline", "CPU max", "never", "others"))
    print(fmt % ("/s", "", "", "", "", "answered", "sent/s", "achieved", "/s", "p50/p99 ms", "calls", "CPU %",
                 "1 s, %", "ended", "CPU %"))
    f = lambda v: "-" if v is None else "%.1f" % v
    for r in rows:
        print(fmt % (r["rate"], r["callers_placed"], r["refers"], r["accepted_202"], sum(r["refused"].values()),
                     r["target_answered"], f(r.get("refers_per_s")), f(r["transfers_per_s"]), f(r["answers_per_s"]),
                     "%s/%s" % (fmt_ms(r["refer_202_ms"]["p50"]), fmt_ms(r["refer_202_ms"]["p99"])),
                     "%d/%d/%d" % tuple((r[k]["failed"] or 0) for k in ("callers", "first_phones", "second_phones")),
                     f(r["hotline_cpu_mean"]), f(r["hotline_cpu_max_1s"]), r.get("calls_never_ended", "-"),
                     f(r.get("other_cpu"))))
    print("  failed calls: callers / first phones / second phones (SIPp); CPU: Hotline, % of one core, mean over the")
    print("  steady part of the step (first 202 + 2 s to last 202 - 2 s), and its busiest second; never ended: calls")
    print("  the daemon did not end although their caller had hung up (its BYE answered 200); others: every other")
    print("  process on the machine (not Hotline, not the SIPps), % of one core, steady part")
    for r in rows:
        if r["refused"] or r["daemon_refusals"]:
            print("  %d/s: refused %s; daemon: %s" % (r["rate"], r["refused"], r["daemon_refusals"]))
    if calls:
        try:
            recs = list(csv.DictReader(open(calls)))
        except OSError:
            recs = []
        if recs:
            cols = recs[0].keys()
            tcol = next((c for c in cols if c.lower() in ("transfers", "transfer_count")), None)
            reasons = collections.Counter(r.get("end_reason") or "(open)" for r in recs)
            with_t = sum(1 for r in recs if tcol and (r.get(tcol) or "0") not in ("", "0"))
            print("  call records: %d; with a transfer: %s; end reasons: %s"
                  % (len(recs), with_t if tcol else "(no transfers column)",
                     ", ".join("%s %d" % kv for kv in reasons.most_common())))
    goal = next((r for r in rows if r["rate"] == 100), None)
    if goal is None:
        print("goal: 100 transfers per second with 0 failed: not measured (no 100/s step)")
    else:
        # Met: every caller transferred and answered by the target, nothing failed, refused
        # or left open, and the 202s kept up with the REFERs (within 1 %), which SIPp's
        # callers (-r 100) made come at 97/s or more.
        xfers, refers = goal["transfers_per_s"] or 0, goal.get("refers_per_s") or 0
        ok = refers >= 97 and xfers >= 0.99 * refers and failed_total(goal) == 0 and not goal["refused"] \
            and goal["accepted_202"] == goal["callers_placed"] and goal["target_answered"] == goal["accepted_202"] \
            and not goal.get("calls_never_ended")
        print("goal: 100 transfers per second with 0 failed: %s/s achieved (202s) of %s/s REFERs sent, %d of %d "
              "callers transferred and answered, %d failed calls, %d refused, %s never ended -> %s"
              % (f(xfers), f(refers), min(goal["accepted_202"], goal["target_answered"]), goal["callers_placed"],
                 failed_total(goal), sum(goal["refused"].values()), goal.get("calls_never_ended", "-"),
                 "met" if ok else "NOT met"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir")
    ap.add_argument("--rate", type=int)
    ap.add_argument("--step-secs", type=int)
    ap.add_argument("--caller-secs", type=int)
    ap.add_argument("--clk-tck", type=int, default=100)
    ap.add_argument("--t-start", type=float)
    ap.add_argument("--t-end", type=float)
    ap.add_argument("--idle-rss", type=int, default=0)
    ap.add_argument("--peak-rss", type=int, default=0)
    ap.add_argument("--active-after", type=int, default=0)
    ap.add_argument("--status", default="")
    ap.add_argument("--print")
    ap.add_argument("--table", nargs="+")
    ap.add_argument("--calls")
    a = ap.parse_args()
    if a.print:
        show(json.load(open(a.print)))
    elif a.table:
        table(a.table, a.calls)
    elif a.dir:
        print(json.dumps(analyze(a)))
    else:
        sys.exit("--dir, --print or --table")


if __name__ == "__main__":
    main()
