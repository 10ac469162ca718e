"""The result tables of a benchmark run, rendered as text or markdown.

sections(doc) turns the JSON written by report.py into a list of tables;
render_text() prints them for the terminal (run.sh), render_markdown() for
docs/benchmarks.md (bench/to_markdown.py).  One definition of the columns
serves both.  Python standard library only.
"""

BODY_NAMES = {"100": "100 B", "16k": "16 KiB"}


def _num(x, fmt=",.0f"):
    return "–" if x is None else format(x, fmt)


def _range(mm, fmt=",.0f"):
    return "–" if not mm else f"{format(mm[0], fmt)}–{format(mm[1], fmt)}"


def _ratio(s):
    m = (s or {}).get("median")
    return "–" if m is None else f"{m:.2f}×"


def _kernel_share(t):
    u = t["proxy_user_us_per_req"]["median"]
    k = t["proxy_sys_us_per_req"]["median"]
    return "–" if u is None or k is None or u + k == 0 else f"{100 * k / (u + k):.0f} %"


def _machine(doc):
    m, tools, p, s = doc.get("machine", {}), doc.get("tools", {}), doc.get("portico", {}), doc.get("settings", {})
    rev = p.get("git_rev") or "?"
    if p.get("git_dirty"):
        rev += " (uncommitted changes)"
    rows = [
        ["CPU", f"{m.get('cpu_model')} — {m.get('nproc')} CPUs usable ({m.get('cpus_online')} online)"],
        ["Kernel / OS", f"Linux {m.get('kernel')} {m.get('arch')}, {m.get('os')}"],
        ["Memory", f"{_num(m.get('mem_total_mib'))} MiB"],
        ["Before the run", f"load average {' '.join(m.get('loadavg_at_start') or [])}; "
                           f"{_num(m.get('busy_at_start_pct'), '.0f')} % of a core busy "
                           f"(other processes; {100 * (m.get('nproc') or 1)} % = all cores)"],
        ["Portico", f"{p.get('version') or 'not measured'}; checkout at {rev}"],
        ["nginx / HAProxy", f"{tools.get('nginx')} / {tools.get('haproxy')}"],
        ["wrk / Python", f"{tools.get('wrk')} / {tools.get('python')}"],
        ["Run", f"{s.get('started')} → {s.get('finished')} (UTC)"],
        ["Settings", f"parts {' '.join(s.get('parts') or [])}; workers {' '.join(map(str, s.get('workers') or []))}; "
                     f"{s.get('rounds')} rounds × {s.get('duration_s')} s, warm-up {s.get('warmup_s')} s, "
                     f"wrk -t{s.get('threads')} -c{s.get('conns')}; backend: nginx, "
                     f"{s.get('backend_workers')} worker; {s.get('idle_conns')} idle connections"],
    ]
    return {"title": "Machine and run", "header": ["", ""], "rows": rows, "align": "ll", "note": None}


def _calm_note(doc, keep):
    """How many runs began while other processes were still busy."""
    s = doc.get("settings", {})
    limit = s.get("calm_below_pct") or 0
    runs = [r for r in doc.get("runs", []) if keep(r) and r.get("busy_before_pct") is not None]
    if not limit or not runs:
        return ""
    late = sum(1 for r in runs if r["busy_before_pct"] >= limit)
    return (f" Each run waited (up to {s.get('calm_max_s')} s) until other processes used less "
            f"than {limit} % of a core; {late} of {len(runs)} runs started without that calm.")


def _throughput(doc):
    out = []
    rows_all = doc.get("throughput", [])
    s = doc.get("settings", {})
    ncpu = doc.get("machine", {}).get("nproc") or 1
    for w in sorted({t["workers"] for t in rows_all}):
        rows, noise, busy = [], [], []
        for t in (t for t in rows_all if t["workers"] == w):
            noise.append(t.get("other_cpu_pct_max"))
            busy.append(t["machine_cpu_pct"]["median"])
            ref = t["target"] == t.get("ref")
            rows.append([
                BODY_NAMES.get(t["body"], t["body"]), t["target"],
                _num(t["rps"]["median"]), _range(t["rps"]["min_max"]),
                "–" if ref else _ratio(t["rps_vs_ref"]),
                _num(t["p50_ms"]["median"], ".2f"), _num(t["p99_ms"]["median"], ".2f"),
                _num(t["proxy_us_per_req"]["median"], ".1f"),
                _range(t["proxy_us_per_req"]["min_max"], ".1f"),
                "–" if ref else _ratio(t["us_per_req_vs_ref"]),
                _kernel_share(t), _num(t["proxy_cpu_pct"]["median"], ".0f"),
                str(t["errors"]),
            ])
        noise = [n for n in noise if n is not None]
        busy = [b for b in busy if b is not None]
        note = (f"Medians over {s.get('rounds')} interleaved rounds of {s.get('duration_s')} s; the "
                f"`vs nginx` columns are medians of per-round ratios. `CPU µs/req`: the proxy's "
                f"user+system CPU time per request (`kernel`: the system part); `proxy CPU %` "
                f"is of one core.")
        if busy:
            note += (f" The whole machine was {min(busy):.0f}–{max(busy):.0f} % busy "
                     f"(max {100 * ncpu})")
            note += (f"; processes outside the benchmark used up to {max(noise):.0f} % of a core."
                     if noise else ".")
        note += _calm_note(doc, lambda r: r.get("part") == "throughput" and r.get("workers") == w)
        out.append({
            "title": f"Throughput and latency, {w} worker{'s' if w > 1 else ''}",
            "header": ["body", "target", "req/s", "req/s range", "req/s vs nginx", "p50 ms",
                       "p99 ms", "CPU µs/req", "µs/req range", "CPU vs nginx", "kernel",
                       "proxy CPU %", "errors"],
            "align": "llrrrrrrrrrrr",
            "rows": rows,
            "note": note,
        })
    return out


def _memory(doc):
    mem = doc.get("memory", [])
    if not mem:
        return []
    rows = [[str(m.get("workers")), m.get("target"), f"{m['alive']}/{m['conns']}",
             _num(m["rss_before_kib"] / 1024, ".1f"), _num(m["rss_idle_kib"] / 1024, ".1f"),
             _num(m["rss_delta_kib"] / 1024, ".1f"), _num(m["bytes_per_conn"]),
             _num(m["rss_after_close_kib"] / 1024, ".1f")] for m in mem]
    return [{
        "title": "Memory per idle keep-alive connection",
        "header": ["workers", "target", "open", "RSS before MiB", "RSS idle MiB", "delta MiB",
                   "bytes/conn", "after close MiB"],
        "align": "llrrrrrr",
        "rows": rows,
        "note": "VmRSS summed over the server's processes; one request per connection, then idle. "
                "Kernel socket buffers are not in RSS.",
    }]


def _routes(doc):
    rt = doc.get("routes", [])
    if not rt:
        return []
    rows = [[_num(r["routes"]), f"{r['kind']} ({r.get('route')})",
             _num(r["rps"]["median"]), _range(r["rps"]["min_max"]),
             _ratio(r["rps_vs_ref"]), _num(r["p50_ms"]["median"], ".2f"),
             _num(r["p99_ms"]["median"], ".2f"), _num(r["proxy_us_per_req"]["median"], ".1f"),
             _range(r["proxy_us_per_req"]["min_max"], ".1f"), _ratio(r["us_per_req_vs_ref"]),
             _num(r.get("startup_s"), ".2f"), _num((r.get("rss_ready_kib") or 0) / 1024, ".1f"),
             str(r["errors"])] for r in rt]
    w = rt[0].get("workers")
    return [{
        "title": f"Route table size (Portico, {w} worker{'s' if w != 1 else ''}, 100 B body)",
        "header": ["routes", "route hit", "req/s", "req/s range", f"req/s vs {rt[0]['ref']}",
                   "p50 ms", "p99 ms", "CPU µs/req", "µs/req range", f"CPU vs {rt[0]['ref']}",
                   "ready s", "RSS MiB", "errors"],
        "align": "llrrrrrrrrrrr",
        "rows": rows,
        "note": "Routes are exact, `{param}` and prefix patterns in turn; the request hits the "
                "route of its kind nearest the middle of the list. `ready s`: from exec to the "
                "first 200; `RSS MiB`: right after that." + _calm_note(doc, lambda r: r.get("part") == "routes"),
    }]


def sections(doc):
    return [_machine(doc)] + _throughput(doc) + _memory(doc) + _routes(doc)


def render_text(secs):
    lines = []
    for s in secs:
        lines += ["", f"== {s['title']} =="]
        table = ([s["header"]] if any(s["header"]) else []) + s["rows"]
        widths = [max(len(str(r[i])) for r in table) for i in range(len(s["header"]))]
        for r in table:
            cells = [str(c).ljust(wd) if al == "l" else str(c).rjust(wd)
                     for c, wd, al in zip(r, widths, s["align"])]
            lines.append("  ".join(cells).rstrip())
        if s.get("note"):
            lines.append(s["note"].replace("`", ""))
    return "\n".join(lines)


def render_markdown(secs, level=3):
    lines = []
    for s in secs:
        lines += [f"{'#' * level} {s['title']}", ""]
        header = s["header"] if any(s["header"]) else ["", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---:" if a == "r" else "---" for a in s["align"]) + "|")
        for r in s["rows"]:
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
        if s.get("note"):
            lines += ["", s["note"]]
        lines.append("")
    return "\n".join(lines)
