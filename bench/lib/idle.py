#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of one server.

Opens --conns client connections to HOST:PORT; on each one sends a single
HTTP/1.1 GET and reads the full response, then keeps it open and idle.  The
server's RSS (VmRSS summed over the process tree rooted at --pid) is sampled
before the connections are opened, while they are all idle, and after they
are closed.  bytes/conn = (idle - before) / conns.  Kernel socket buffers are
not part of RSS and are not counted.  Prints one JSON object.
Python standard library only (http.client keeps the socket open between
requests when the server allows keep-alive).
"""
import argparse
import http.client
import json
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proctree  # noqa: E402


def get(conn, path):
    conn.request("GET", path, headers={"User-Agent": "portico-bench-idle"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def is_open(conn):
    """True when the server has not closed the connection (no EOF pending)."""
    if conn.sock is None:  # http.client dropped it: the server said close
        return False
    conn.sock.settimeout(0)  # with a timeout set, recv would first wait for data
    try:
        return conn.sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def tree_rss(root):
    per = proctree.rss_kib(proctree.descendants(root))
    return sum(per.values()), per


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/100")
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--pid", type=int, required=True, help="root pid of the server")
    ap.add_argument("--settle", type=float, default=1.5, help="seconds before each sample")
    ap.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()

    need = a.conns + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        if min(need, hard) < need:
            sys.exit(f"idle.py: {a.conns} connections need {need} descriptors; hard limit {hard}")

    # Warm-up on one connection, so that lazily allocated per-process state
    # (buffers, pools, upstream connection) exists before the baseline.
    warm = http.client.HTTPConnection(a.host, a.port, timeout=10)
    for _ in range(20):
        get(warm, a.path)
    warm.close()
    time.sleep(a.settle)
    before, before_per = tree_rss(a.pid)

    conns, bad, t0 = [], 0, time.monotonic()
    for _ in range(a.conns):
        c = http.client.HTTPConnection(a.host, a.port, timeout=10)
        if get(c, a.path) != 200:
            bad += 1
        conns.append(c)
    open_s = time.monotonic() - t0
    time.sleep(a.settle)
    idle, idle_per = tree_rss(a.pid)
    alive = sum(is_open(c) for c in conns)

    for c in conns:
        c.close()
    time.sleep(a.settle)
    after, _ = tree_rss(a.pid)

    r = {
        "conns": a.conns, "alive": alive, "non_200": bad, "open_s": round(open_s, 2),
        "rss_before_kib": before, "rss_idle_kib": idle, "rss_after_close_kib": after,
        "rss_delta_kib": idle - before,
        "bytes_per_conn": round((idle - before) * 1024 / a.conns, 1),
        "procs": len(idle_per),
        "rss_before_per_proc_kib": {str(k): v for k, v in before_per.items()},
        "rss_idle_per_proc_kib": {str(k): v for k, v in idle_per.items()},
    }
    for kv in a.label:
        k, _, v = kv.partition("=")
        r[k] = int(v) if v.isdigit() else v
    print(json.dumps(r, sort_keys=True), flush=True)
    sys.stderr.write(f"    {r.get('target', ''):<8} {alive}/{a.conns} idle connections open:"
                     f" RSS {before} -> {idle} KiB, {r['bytes_per_conn']:.0f} B/conn"
                     f" (after close {after} KiB)\n")


if __name__ == "__main__":
    main()
