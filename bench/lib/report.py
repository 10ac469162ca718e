#!/usr/bin/env python3
"""Collect the raw records of one bench/run.sh run into JSON and print tables.

Reads from the run's temp dir (--dir):
  machine.json    machine.py output
  load.jsonl      one line per measured wrk run (load.py)
  idle.jsonl      one line per idle-connection measurement (idle.py)
  routes.jsonl    one line per Portico instance of the routes part
  commands.jsonl  the exact command lines used
  configs/        the rendered server configurations (route tables are left
                  out: the generator command reproduces them)
and writes --out (schema in docs/benchmarks.md), then prints the tables.
Python standard library only.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tables  # noqa: E402

SCHEMA = 1


def jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def span(xs):
    xs = [x for x in xs if x is not None]
    return [min(xs), max(xs)] if xs else None


def stats(runs, key):
    xs = [r.get(key) for r in runs]
    return {"median": med(xs), "min_max": span(xs)}


def summarize_runs(runs, ref_of):
    """Figures over the rounds of one group of runs.

    ref_of(run) gives the run of the reference target in the same round (or
    None); ratios are paired per round, then the median is taken, so drift
    during the run cancels out.
    """
    out = {"rounds": len(runs), "errors": sum(r.get("errors", 0) for r in runs)}
    for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "proxy_us_per_req",
                "proxy_user_us_per_req", "proxy_sys_us_per_req", "proxy_cpu_pct",
                "backend_us_per_req", "backend_cpu_pct", "wrk_cpu_pct", "machine_cpu_pct",
                "softirq_cpu_pct"):
        out[key] = stats(runs, key)
    out["other_cpu_pct_max"] = (span([r.get("other_cpu_pct") for r in runs]) or [None, None])[1]
    out["other_cpu_pct"] = stats(runs, "other_cpu_pct")
    out["busy_before_pct"] = stats(runs, "busy_before_pct")
    rps_ratio, cpu_ratio = [], []
    for r in runs:
        ref = ref_of(r)
        if ref is None:
            continue
        if ref.get("rps"):
            rps_ratio.append(r["rps"] / ref["rps"])
        if ref.get("proxy_us_per_req") and r.get("proxy_us_per_req"):
            cpu_ratio.append(r["proxy_us_per_req"] / ref["proxy_us_per_req"])
    out["rps_vs_ref"] = {"median": med(rps_ratio), "min_max": span(rps_ratio)}
    out["us_per_req_vs_ref"] = {"median": med(cpu_ratio), "min_max": span(cpu_ratio)}
    return out


def throughput(runs, order):
    runs = [r for r in runs if r.get("part") == "throughput"]
    index = {(r["workers"], str(r["body"]), r["target"], r["round"]): r for r in runs}
    out = []
    workers = sorted({r["workers"] for r in runs})
    bodies = list(dict.fromkeys(str(r["body"]) for r in runs))
    for w in workers:
        for b in bodies:
            for t in order:
                group = [r for r in runs if (r["workers"], str(r["body"]), r["target"]) == (w, b, t)]
                if not group:
                    continue
                s = summarize_runs(group, lambda r: index.get((w, b, "nginx", r["round"])))
                s.update({"workers": w, "body": b, "target": t, "ref": "nginx"})
                out.append(s)
    return out


def routes(runs, instances):
    runs = [r for r in runs if r.get("part") == "routes"]
    sizes = sorted({r["routes"] for r in runs})
    index = {(r["routes"], r["kind"], r["round"]): r for r in runs}
    inst = {i["routes"]: i for i in instances}
    out = []
    for kind in dict.fromkeys(r["kind"] for r in runs):
        for n in sizes:
            group = [r for r in runs if (r["routes"], r["kind"]) == (n, kind)]
            if not group:
                continue
            s = summarize_runs(group, lambda r: index.get((sizes[0], kind, r["round"])))
            i = inst.get(n, {})
            s.update({"routes": n, "kind": kind, "workers": group[0]["workers"],
                      "ref": f"{sizes[0]} routes",
                      "path": (i.get("hits", {}).get(kind) or {}).get("path"),
                      "route": (i.get("hits", {}).get(kind) or {}).get("route"),
                      "startup_s": i.get("startup_s"), "rss_ready_kib": i.get("rss_ready_kib"),
                      "miss_status": i.get("miss_status")})
            out.append(s)
    return out


def configs(d):
    out = {}
    cdir = os.path.join(d, "configs")
    for name in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
        if name.startswith("portico-routes-"):
            continue
        with open(os.path.join(cdir, name)) as f:
            out[name] = f.read()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="run.sh temp dir")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="run settings; space-separated lists become lists")
    a = ap.parse_args()

    settings = {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        if k in ("parts", "targets", "workers", "bodies", "routes", "route_kinds"):
            settings[k] = [int(x) if x.isdigit() else x for x in v.split()]
        else:
            settings[k] = int(v) if v.isdigit() else v
    meta = jsonl(os.path.join(a.dir, "machine.json"))
    meta = meta[0] if meta else {}
    runs = jsonl(os.path.join(a.dir, "load.jsonl"))
    order = [t for t in settings.get("targets", [])] or list(dict.fromkeys(r["target"] for r in runs))
    doc = {
        "schema": SCHEMA,
        "settings": settings,
        "machine": meta.get("machine", {}),
        "tools": meta.get("tools", {}),
        "portico": meta.get("portico", {}),
        "commands": {c["name"]: c["cmd"] for c in jsonl(os.path.join(a.dir, "commands.jsonl"))},
        "configs": configs(a.dir),
        "throughput": throughput(runs, order),
        "memory": jsonl(os.path.join(a.dir, "idle.jsonl")),
        "routes": routes(runs, jsonl(os.path.join(a.dir, "routes.jsonl"))),
        "runs": runs,
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, a.out)
    print(tables.render_text(tables.sections(doc)))


if __name__ == "__main__":
    main()
