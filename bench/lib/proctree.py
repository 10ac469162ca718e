"""Process-tree accounting from /proc, shared by load.py and idle.py.

A proxy under test is a *tree*: nginx is a master plus worker processes,
HAProxy and Portico are one process with threads.  /proc/PID/stat of a
process already sums all of its threads, so summing over the processes of
the tree gives the CPU time of the whole server.  Python standard library only.
"""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None if gone.

    The command name is in parentheses and may itself contain spaces or
    parentheses, so split after the *last* ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("latin-1")
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def descendants(root):
    """root and every process below it (one scan of /proc), root first."""
    if not root:
        return []
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(name)
        if f is None:
            continue
        children.setdefault(int(f[1]), []).append(int(name))  # f[1] = ppid
    if _stat_fields(root) is None:
        return []
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return out


def cpu_ticks(pids):
    """{pid: (utime, stime)} in clock ticks, for the pids still alive."""
    out = {}
    for pid in pids:
        f = _stat_fields(pid)
        if f is not None:
            out[pid] = (int(f[11]), int(f[12]))  # fields 14 and 15 of stat(5)
    return out


def cpu_delta_s(before, after):
    """(user_s, sys_s) used between two cpu_ticks() samples.

    Only pids present in both samples count: a process that started or died
    in between cannot be attributed correctly, and servers here do neither.
    """
    u = s = 0
    for pid, (u0, s0) in before.items():
        if pid in after:
            u += after[pid][0] - u0
            s += after[pid][1] - s0
    return u / CLK_TCK, s / CLK_TCK


def rss_kib(pids):
    """{pid: VmRSS in KiB} for the pids still alive."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[pid] = int(line.split()[1])
                        break
        except OSError:
            pass
    return out


def machine_jiffies():
    """The aggregate 'cpu' line of /proc/stat as a dict of jiffies."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    vals += [0] * (len(names) - len(vals))
    return dict(zip(names, vals))


def _instance(info_file, pid, t0, t1, miss_status):
    """JSON line about one started server of the routes part (see run.sh)."""
    import json
    with open(info_file) as f:
        info = json.load(f)
    pids = descendants(int(pid))
    return json.dumps({
        "routes": info["routes"], "hits": info["hits"], "miss_path": info["miss_path"],
        "miss_status": int(miss_status) if miss_status.isdigit() else miss_status,
        "startup_s": round(float(t1) - float(t0), 3),
        "rss_ready_kib": sum(rss_kib(pids).values()),
    }, sort_keys=True)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 7 and sys.argv[1] == "instance":
        print(_instance(*sys.argv[2:]))
    else:
        sys.exit("usage: proctree.py instance INFO.json PID T0 T1 MISS_STATUS")
