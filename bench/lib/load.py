#!/usr/bin/env python3
"""One measured wrk run against URL, with CPU accounting per process tree.

Prints a single JSON object on stdout: wrk's figures (requests/s, latency
percentiles, errors) plus the CPU time used during the run by
  - the proxy's process tree  (--proxy-pid, /proc/PID/stat utime+stime),
  - the backend's process tree (--backend-pid),
  - wrk itself (its exact rusage from wait4),
  - the whole machine (/proc/stat), including softirq time that loopback TCP
    charges to no process, and "other": busy time not explained by the three
    parties above (noise from unrelated processes).
CPU percentages are of ONE core, like top: a 2-core machine tops out at 200.
A one-line progress summary goes to stderr.  Python standard library only.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proctree  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = None


def on_term(signum, _frame):
    # run.sh stops us with SIGTERM on Ctrl-C or failure: take wrk along.
    if CHILD is not None and CHILD.poll() is None:
        CHILD.kill()
    sys.exit(128 + signum)


def wait_for_quiet(below, max_wait, own):
    """Wait (up to max_wait s) until processes other than ours use < `below` % of a core.

    `own` are the pids of the proxy and backend trees (idle between runs, but
    counted anyway).  Returns (seconds waited, last busy % seen).
    """
    ncpu = os.cpu_count() or 1
    t0 = time.monotonic()
    while True:
        m0, o0 = proctree.machine_jiffies(), proctree.cpu_ticks(own)
        time.sleep(0.5)
        m1, o1 = proctree.machine_jiffies(), proctree.cpu_ticks(own)
        d = {k: m1[k] - m0[k] for k in m0}
        total = sum(d.values()) or 1
        ours = sum(proctree.cpu_delta_s(o0, o1)) * proctree.CLK_TCK
        busy = 100 * ncpu * max(0, total - d["idle"] - d["iowait"] - ours) / total
        waited = time.monotonic() - t0
        if busy < below or waited >= max_wait:
            return round(waited, 1), round(busy, 1)


def parse_summary(out):
    m = re.search(r"^BENCH-SUMMARY (\{.*\})\s*$", out, re.M)
    return json.loads(m.group(1)) if m else None


def main():
    global CHILD
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--duration", type=int, default=10, help="seconds")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--script", default=os.path.join(HERE, "wrk-summary.lua"))
    ap.add_argument("--proxy-pid", type=int, default=0, help="root pid of the proxy; 0 = none")
    ap.add_argument("--backend-pid", type=int, default=0, help="root pid of the backend; 0 = none")
    ap.add_argument("--log", help="append wrk's full output here")
    ap.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    ap.add_argument("--calm-below", type=float, default=0,
                    help="first wait until other processes use less than this %% of a core (0: don't)")
    ap.add_argument("--calm-max", type=float, default=30, help="but wait at most this many seconds")
    ap.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                    help="copied into the JSON (numbers stay numbers)")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)

    cmd = [a.wrk, "-t", str(a.threads), "-c", str(a.conns), "-d", f"{a.duration}s",
           "-s", a.script, a.url]
    proxy_pids = proctree.descendants(a.proxy_pid)
    backend_pids = proctree.descendants(a.backend_pid)

    calm = None
    if a.calm_below > 0:
        calm = wait_for_quiet(a.calm_below, a.calm_max, proxy_pids + backend_pids)
    p0, b0 = proctree.cpu_ticks(proxy_pids), proctree.cpu_ticks(backend_pids)
    m0 = proctree.machine_jiffies()
    t0 = time.monotonic()
    CHILD = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out_b = CHILD.stdout.read()
    _, status, ru = os.wait4(CHILD.pid, 0)
    CHILD.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    m1 = proctree.machine_jiffies()
    p1, b1 = proctree.cpu_ticks(proxy_pids), proctree.cpu_ticks(backend_pids)

    out = out_b.decode("utf-8", "replace")
    if a.log:
        with open(a.log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + out + "\n")
    w = parse_summary(out)
    if CHILD.returncode != 0 or w is None:
        sys.stderr.write(out[-3000:])
        sys.exit(f"load.py: wrk failed (exit {CHILD.returncode}) on {a.url}")

    n = w["requests"]
    secs = w["duration_us"] / 1e6
    errors = {k[4:]: w[k] for k in w if k.startswith("err_")}
    r = {
        "url": a.url, "cmd": " ".join(cmd), "conns": a.conns, "threads": a.threads,
        "duration_s": round(secs, 3), "wall_s": round(wall, 3),
        "requests": n, "rps": round(n / secs, 1) if secs else 0.0,
        "bytes": w["bytes"], "errors": sum(errors.values()), "errors_detail": errors,
        "lat_mean_ms": w["lat_mean_us"] / 1000, "lat_max_ms": w["lat_max_us"] / 1000,
    }
    if calm is not None:
        r["calm_waited_s"], r["busy_before_pct"] = calm
    for q in ("50", "75", "90", "99", "99_9"):
        r[f"p{q}_ms"] = w[f"p{q}_us"] / 1000

    def party(name, before, after, pids):
        if not pids:
            r[f"{name}_cpu_pct"] = None
            return 0.0
        us, ss = proctree.cpu_delta_s(before, after)
        r[f"{name}_cpu_pct"] = round(100 * (us + ss) / wall, 1)
        r[f"{name}_user_s"], r[f"{name}_sys_s"] = round(us, 2), round(ss, 2)
        r[f"{name}_us_per_req"] = round((us + ss) * 1e6 / n, 2) if n else None
        r[f"{name}_user_us_per_req"] = round(us * 1e6 / n, 2) if n else None
        r[f"{name}_sys_us_per_req"] = round(ss * 1e6 / n, 2) if n else None
        r[f"{name}_procs"] = len(pids)
        return us + ss

    proxy_s = party("proxy", p0, p1, proxy_pids)
    backend_s = party("backend", b0, b1, backend_pids)
    wrk_s = ru.ru_utime + ru.ru_stime
    r["wrk_cpu_pct"] = round(100 * wrk_s / wall, 1)
    r["wrk_us_per_req"] = round(wrk_s * 1e6 / n, 2) if n else None

    d = {k: m1[k] - m0[k] for k in m0}
    total = sum(d.values())
    ncpu = os.cpu_count() or 1
    if total:
        pct = lambda j: round(100 * ncpu * j / total, 1)  # noqa: E731  (% of one core)
        busy = total - d["idle"] - d["iowait"]
        r["machine_cpu_pct"] = pct(busy)
        r["softirq_cpu_pct"] = pct(d["softirq"] + d["irq"])
        r["steal_cpu_pct"] = pct(d["steal"])
        explained = 100 * (proxy_s + backend_s + wrk_s) / wall
        r["other_cpu_pct"] = round(max(0.0, pct(busy - d["softirq"] - d["irq"]) - explained), 1)

    for kv in a.label:
        k, _, v = kv.partition("=")
        try:
            v = int(v)
        except ValueError:
            pass
        r[k] = v
    print(json.dumps(r, sort_keys=True), flush=True)

    if a.quiet:
        return
    tag = " ".join(f"{k}={r[k]}" for k in ("workers", "body", "routes", "kind", "target", "round")
                   if k in r)
    fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
    sys.stderr.write(
        f"    {tag:<44} {r['rps']:>9.0f} req/s  p50 {r['p50_ms']:6.2f}  p99 {r['p99_ms']:7.2f} ms"
        f"  proxy {fmt(r['proxy_cpu_pct'], '.0f')}% {fmt(r.get('proxy_us_per_req'), '.1f')} us/req"
        f"  machine {fmt(r.get('machine_cpu_pct'), '.0f')}%"
        + (f"  (waited {calm[0]:.0f}s, others at {calm[1]:.0f}%)" if calm and calm[0] >= 1 else "")
        + (f"  ERRORS {r['errors']} {errors}" if r["errors"] else "") + "\n")


if __name__ == "__main__":
    main()
