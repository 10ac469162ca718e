#!/usr/bin/env python3
"""Describe the machine and the tools of a benchmark run, as JSON on stdout.

Python standard library only.  Every probe is best effort: a missing tool
gives null, never an error.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import time


def first_line(cmd, pattern=None):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = p.stdout.strip()
    if pattern:
        m = re.search(pattern, text)
        return m.group(1) if m else None
    return text.splitlines()[0] if text else None


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cpu_model():
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def os_name():
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)', read("/etc/os-release"), re.M)
    return m.group(1) if m else None


def mem_total_mib():
    m = re.search(r"^MemTotal:\s+(\d+) kB", read("/proc/meminfo"), re.M)
    return int(m.group(1)) // 1024 if m else None


def governor():
    g = read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip()
    return g or None


def busy_pct(seconds=1.0):
    """CPU in use right now, in % of one core (top-style), sampled over `seconds`."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    total = t1 - t0
    return round(100 * (os.cpu_count() or 1) * (total - (i1 - i0)) / total, 1) if total else None


def git(repo, *args):
    try:
        p = subprocess.run(["git", "-C", repo, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portico", help="path of the Portico binary")
    ap.add_argument("--repo", help="the Portico checkout")
    a = ap.parse_args()
    info = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpus_online": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "os": os_name(),
        "mem_total_mib": mem_total_mib(),
        "cpu_governor": governor(),
        "loadavg_at_start": read("/proc/loadavg").split()[:3],
        "busy_at_start_pct": busy_pct(),
        "clk_tck": os.sysconf("SC_CLK_TCK"),
    }
    tools = {
        "nginx": first_line(["nginx", "-v"], r"nginx/(\S+)"),
        "haproxy": first_line(["haproxy", "-v"], r"version (\S+)"),
        "wrk": first_line(["wrk", "-v"], r"wrk (\S+)"),
        "h2load": first_line(["h2load", "--version"], r"nghttp2/(\S+)"),
        "curl": first_line(["curl", "--version"], r"curl (\S+)"),
        "python": platform.python_version(),
        "bash": first_line(["bash", "--version"], r"version (\S+)"),
    }
    portico = {"binary": a.portico}
    if a.portico and os.access(a.portico, os.X_OK):
        portico["version"] = first_line([a.portico, "version"])
    if a.repo:
        portico["git_rev"] = git(a.repo, "rev-parse", "--short", "HEAD")
        portico["git_branch"] = git(a.repo, "rev-parse", "--abbrev-ref", "HEAD")
        status = git(a.repo, "status", "--porcelain", "--untracked-files=no")
        portico["git_dirty"] = bool(status) if status is not None else None
    print(json.dumps({"machine": info, "tools": tools, "portico": portico}, sort_keys=True))


if __name__ == "__main__":
    main()
