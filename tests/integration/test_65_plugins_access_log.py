"""access-log (SPEC §3, §8, §10): one line per request, JSON fields checked one
by one after known traffic, the combined format, files relative to the
configuration, one writer per file, SIGUSR1 reopen, nothing lost across a
SIGTERM drain."""

import json
import os
import re
import signal
import threading
import time

import pytest

from harness import (UPSTREAM_ERRORS, Reply, build_request, config, parse_responses, raw, request, route,
                     service)

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = ["time", "request_id", "trace_id", "client_ip", "consumer", "method", "path", "route",
          "service", "target", "status", "bytes_in", "bytes_out", "duration_ms", "upstream_ms",
          "cache", "error"]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
COMBINED_RE = re.compile(r'^(\S+) - (\S+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
                         r'"([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$')


def read_lines(path, n, timeout=5.0):
    """Wait until the file holds at least n complete lines; return them all."""
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8")
            lines = data.splitlines() if data.endswith("\n") else data.splitlines()[:-1]
        except FileNotFoundError:
            lines = []
        if len(lines) >= n:
            return lines
        time.sleep(0.02)
    raise AssertionError("want %d lines in %s within %.0fs, got %d: %r" % (n, path, timeout, len(lines), lines))


def json_lines(path, n, timeout=5.0):
    docs = [json.loads(line) for line in read_lines(path, n, timeout)]
    for d in docs:
        assert list(d.keys()) == FIELDS, "fields (in the SPEC's order): %r" % list(d.keys())
    return docs


def log_cfg(be, *, path="access.log", fmt="json", **top):
    return config({"svc": service(be)}, [route("api", ["/api/*"], "svc")],
                  plugins={"access-log": {"format": fmt, "path": path}}, **top)


def test_json_fields_after_known_traffic(gateway, backend, dead_addr):
    be = backend()
    gw = gateway(config({"svc": service(be), "down": service(dead_addr)},
                        [route("api", ["/api/*"], "svc"), route("gone", ["/gone"], "down")],
                        plugins={"access-log": {"path": "access.log"}}),
                 expect_errors=[UPSTREAM_ERRORS])
    log = os.path.join(gw.dir, "access.log")
    req1 = build_request("GET", "/api/items?q=1&secret=s", [
        ("traceparent", "00-%s-00f067aa0ba902b7-01" % TRACE), ("X-Request-Id", "client-id-1"),
        ("Connection", "close")])
    out1 = raw(gw.port, req1)
    assert out1.startswith(b"HTTP/1.1 200 ")
    body = b'{"k": "v"}'
    req2 = build_request("POST", "/api/items", [("Content-Type", "application/json"), ("Connection", "close")],
                         body)
    out2 = raw(gw.port, req2)
    assert out2.startswith(b"HTTP/1.1 200 ")
    out3 = raw(gw.port, build_request("GET", "/nowhere", [("Connection", "close")]))
    assert out3.startswith(b"HTTP/1.1 404 ")
    out4 = raw(gw.port, build_request("DELETE", "/gone", [("Connection", "close")]))
    assert out4.startswith(b"HTTP/1.1 502 ")
    started = time.time()

    docs = json_lines(log, 4)
    assert len(docs) == 4
    a, b, c, d = docs
    for doc in docs:
        assert TIME_RE.match(doc["time"]), doc["time"]
        t = time.mktime(time.strptime(doc["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert abs(t - started) < 30, doc["time"]
        assert doc["client_ip"] == "127.0.0.1"
        assert doc["consumer"] is None and doc["cache"] is None
        assert isinstance(doc["duration_ms"], int) and doc["duration_ms"] >= 0
        assert re.match(r"^[0-9a-f]{32}$", doc["trace_id"]), doc
        assert isinstance(doc["request_id"], str) and doc["request_id"]

    assert a["request_id"] == "client-id-1"
    assert a["trace_id"] == TRACE, "the client's trace continues"
    assert (a["method"], a["path"], a["route"], a["service"]) == ("GET", "/api/items", "api", "svc")
    assert a["target"] == be.addr
    assert a["status"] == 200
    assert a["bytes_in"] == len(req1), "head bytes received from the client"
    assert a["bytes_out"] == len(out1), "every byte sent to the client"
    assert isinstance(a["upstream_ms"], int) and 0 <= a["upstream_ms"] <= a["duration_ms"]
    assert a["error"] is None

    assert (b["method"], b["status"]) == ("POST", 200)
    assert b["bytes_in"] == len(req2), "head and body"
    assert b["bytes_out"] == len(out2)
    assert b["trace_id"] != TRACE, "a new trace when the client sent none"

    assert (c["method"], c["path"], c["status"]) == ("GET", "/nowhere", 404)
    assert c["route"] is None and c["service"] is None and c["target"] is None
    assert c["upstream_ms"] is None
    assert "no route" in c["error"]
    problem = json.loads(out3.split(b"\r\n\r\n", 1)[1])
    assert c["request_id"] == problem["request_id"]

    assert (d["method"], d["route"], d["service"], d["status"]) == ("DELETE", "gone", "down", 502)
    assert d["target"] == dead_addr, "the target that was tried"
    assert d["upstream_ms"] is None, "no upstream answer"
    assert isinstance(d["error"], str) and d["error"], "why the gateway answered itself"


def test_bytes_in_of_pipelined_requests_with_bodies(gateway, backend):
    """bytes_in is each request's own bytes even when one read brings the
    end of a body together with the next requests (a length body, a chunked
    body with its framing, and a plain GET, pipelined in one write)."""
    be = backend()
    gw = gateway(log_cfg(be))
    log = os.path.join(gw.dir, "access.log")
    reqs = [
        build_request("POST", "/api/a", [("Content-Type", "text/plain")], b"x" * 300),
        build_request("POST", "/api/b", [("Transfer-Encoding", "chunked")], None)
        + b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        build_request("GET", "/api/c", [("Connection", "close")]),
    ]
    out = raw(gw.port, b"".join(reqs))
    assert [r.status for r in parse_responses(out, ["POST", "POST", "GET"])] == [200, 200, 200]
    docs = json_lines(log, 3)
    assert [d["path"] for d in docs] == ["/api/a", "/api/b", "/api/c"]
    assert [d["bytes_in"] for d in docs] == [len(r) for r in reqs]


def test_json_strings_are_escaped(gateway, backend):
    be = backend()
    gw = gateway(log_cfg(be))
    # a path with characters that need JSON escaping (quote and backslash arrive percent-encoded
    # in a request-target; the gateway keeps them encoded) and a hostile request id
    r = request(gw.port, "GET", "/api/%22x%5C%22?a=%0A", [("X-Request-Id", "bad id\"")])
    assert r.status == 200
    doc = json_lines(os.path.join(gw.dir, "access.log"), 1)[0]
    assert doc["path"] == "/api/%22x%5C%22"
    assert doc["request_id"] != 'bad id"', "an insane client id is replaced, not logged raw"


def test_requests_refused_before_routing_are_logged(gateway, backend):
    """A malformed head is answered by the HTTP/1 codec, yet it is logged like any request."""
    be = backend()
    gw = gateway(log_cfg(be))
    data = raw(gw.port, b"GET /api/x HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", timeout=5)
    rs = parse_responses(data)
    assert data.closed and len(rs) == 1 and rs[0].status == 400, data
    doc = json_lines(os.path.join(gw.dir, "access.log"), 1)[0]
    assert doc["status"] == 400
    assert doc["error"] == "malformed request"
    assert re.fullmatch(r"[0-9a-f]{32}", doc["request_id"])
    assert doc["route"] is None or doc["route"] == ""
    assert be.received == []


def test_lines_appear_promptly(gateway, backend):
    be = backend()
    gw = gateway(log_cfg(be))
    t0 = time.monotonic()
    assert request(gw.port, "GET", "/api/one").status == 200
    json_lines(os.path.join(gw.dir, "access.log"), 1, timeout=2.0)
    assert time.monotonic() - t0 < 2.0


def test_combined_format(gateway, backend):
    be = backend(handler=lambda req: Reply(201, b"created!"))
    gw = gateway(log_cfg(be, fmt="combined"))
    out = raw(gw.port, build_request("PUT", "/api/x?y=1", [("User-Agent", 'tool "q"/1.0'),
                                                         ("Referer", "https://ref.example/p"),
                                                         ("Connection", "close")], b"abc"))
    assert out.startswith(b"HTTP/1.1 201 ")
    line = read_lines(os.path.join(gw.dir, "access.log"), 1)[0]
    m = COMBINED_RE.match(line)
    assert m, line
    ip, user, when, req_line, status, size, referer, agent = m.groups()
    assert ip == "127.0.0.1" and user == "-"
    assert time.strptime(when, "%d/%b/%Y:%H:%M:%S +0000")
    assert req_line == "PUT /api/x?y=1 HTTP/1.1"
    assert status == "201"
    assert int(size) == len(out), "bytes sent including the head (nginx $bytes_sent)"
    assert referer == "https://ref.example/p"
    assert agent == r"tool \x22q\x22/1.0", "quotes escaped as nginx does"


def test_stderr_is_the_default(gateway, backend):
    be = backend()
    gw = gateway(config({"svc": service(be)}, [route("api", ["/api/*"], "svc")],
                        plugins={"access-log": {}}))
    r = request(gw.port, "GET", "/api/to-stderr")
    assert r.status == 200
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [ln for ln in gw.log().splitlines() if ln.startswith("{")]
        if lines:
            break
        time.sleep(0.02)
    doc = json.loads(lines[0])
    assert doc["path"] == "/api/to-stderr" and doc["request_id"] == r.header("X-Request-Id")


def test_relative_path_resolves_against_the_config_folder(gateway, backend):
    be = backend()
    gw = gateway(log_cfg(be, path="logs/access.log"), start=False, filename="conf/portico.yaml")
    os.makedirs(os.path.join(gw.dir, "conf", "logs"))
    gw.start()  # the process runs in gw.dir: a path resolved against the cwd would not open
    assert request(gw.port, "GET", "/api/rel").status == 200
    doc = json_lines(os.path.join(gw.dir, "conf", "logs", "access.log"), 1)[0]
    assert doc["path"] == "/api/rel"


def test_unwritable_path_is_a_config_error(gateway, backend, tmp_path):
    from harness import run_portico
    cfg = tmp_path / "p.yaml"
    cfg.write_text("services: {s: {targets: [\"127.0.0.1:1\"]}}\n"
                   "plugins:\n"
                   "  access-log: {path: missing-dir/a.log}\n")
    p = run_portico("check", "-c", cfg)
    assert p.returncode == 1
    assert re.search(r"p\.yaml:3:22: path: missing-dir/a\.log: cannot open: No such file or directory",
                     p.stderr), p.stderr


def test_routes_sharing_a_file_share_one_writer(gateway, backend):
    be = backend()
    gw = gateway(config({"svc": service(be)},
                        [route("a", ["/a/*"], "svc", plugins={"access-log": {"path": "./shared.log"}}),
                         route("b", ["/b/*"], "svc", plugins={"access-log": {"path": "shared.log",
                                                                           "format": "combined"}})],
                        plugins={"access-log": {"path": "shared.log"}}))
    n = 60
    errors = []

    def client(prefix):
        try:
            for i in range(n):
                assert request(gw.port, "GET", "/%s/%d" % (prefix, i)).status == 200
            assert request(gw.port, "GET", "/none/%s" % prefix).status == 404
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=client, args=(p,)) for p in ("a", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    lines = read_lines(os.path.join(gw.dir, "shared.log"), 2 * n + 2)
    assert len(lines) == 2 * n + 2
    js = [json.loads(ln) for ln in lines if ln.startswith("{")]
    combined = [ln for ln in lines if not ln.startswith("{")]
    assert sorted(d["path"] for d in js if d["route"] == "a") == sorted("/a/%d" % i for i in range(n))
    assert sum(1 for d in js if d["route"] is None) == 2, "404s logged by the global instance"
    assert len(combined) == n and all(COMBINED_RE.match(ln) for ln in combined)
    # one writer thread for the file, whatever the number of instances
    threads = os.listdir("/proc/%d/task" % gw.pid)
    names = [open("/proc/%d/task/%s/comm" % (gw.pid, t)).read().strip() for t in threads]
    assert names.count("portico-log") == 1, names


def test_sigusr1_reopens_the_file(gateway, backend):
    be = backend()
    gw = gateway(log_cfg(be))
    log = os.path.join(gw.dir, "access.log")
    for i in range(3):
        assert request(gw.port, "GET", "/api/before/%d" % i).status == 200
    json_lines(log, 3)
    os.rename(log, log + ".1")
    assert request(gw.port, "GET", "/api/between").status == 200  # still goes to the renamed file
    json_lines(log + ".1", 4)
    gw.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not os.path.exists(log) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.path.exists(log), "SIGUSR1 creates the file again"
    for i in range(2):
        assert request(gw.port, "GET", "/api/after/%d" % i).status == 200
    new = json_lines(log, 2)
    assert [d["path"] for d in new] == ["/api/after/0", "/api/after/1"]
    old = json_lines(log + ".1", 4)
    assert len(old) == 4 and all("/after/" not in d["path"] for d in old)
    assert gw.running()


@pytest.mark.timeout_s(60)
def test_no_line_lost_across_a_sigterm_drain(gateway, backend):
    def handler(req):
        if req.path.startswith("/api/slow"):
            return Reply(200, b"slow", delay=1.5)
        return Reply(200, b"fast")

    be = backend(handler=handler)
    gw = gateway(log_cfg(be))
    log = os.path.join(gw.dir, "access.log")
    n = 300
    for i in range(n):
        assert request(gw.port, "GET", "/api/fast/%d" % i).status == 200
    results = []
    t = threading.Thread(target=lambda: results.append(request(gw.port, "GET", "/api/slow")))
    t.start()
    be.wait_for(n + 1)
    gw.signal(signal.SIGTERM)  # the lines of the fast requests may still be in memory
    t.join(10)
    assert results and results[0].status == 200, "the request in flight finishes"
    assert gw.wait_exit(15) == 0
    lines = read_lines(log, n + 1, timeout=0.5)
    docs = [json.loads(ln) for ln in lines]
    assert len(docs) == n + 1
    assert sorted(d["path"] for d in docs) == sorted(["/api/fast/%d" % i for i in range(n)] + ["/api/slow"])
    assert docs[-1]["path"] == "/api/slow" and docs[-1]["status"] == 200


def writer_threads(gw):
    names = []
    for t in os.listdir("/proc/%d/task" % gw.pid):
        try:
            names.append(open("/proc/%d/task/%s/comm" % (gw.pid, t)).read().strip())
        except OSError:
            pass
    return names.count("portico-log")


def test_reload_keeps_or_moves_the_file_without_losing_lines(gateway, backend):
    be = backend()
    gw = gateway(log_cfg(be, path="one.log"))
    one, two = os.path.join(gw.dir, "one.log"), os.path.join(gw.dir, "two.log")
    for i in range(20):
        assert request(gw.port, "GET", "/api/a/%d" % i).status == 200
    # the same file in the new configuration: the writer is shared, nothing is reopened
    gw.reload(log_cfg(be, path="./one.log", fmt="json"))
    time.sleep(0.5)
    for i in range(20):
        assert request(gw.port, "GET", "/api/b/%d" % i).status == 200
    assert writer_threads(gw) == 1
    json_lines(one, 40)
    # another file: the old writer writes what it has, then goes
    gw.reload(log_cfg(be, path="two.log"))
    deadline = time.monotonic() + 5
    applied = False
    while not applied and time.monotonic() < deadline:  # until a request runs on the new one
        r = request(gw.port, "GET", "/api/probe")
        assert r.status == 200
        time.sleep(0.2)
        try:
            applied = r.header("X-Request-Id") in open(two).read()
        except FileNotFoundError:
            pass
    assert applied, "the reload was not applied"
    for i in range(20):
        assert request(gw.port, "GET", "/api/c/%d" % i).status == 200
    new = json_lines(two, 21)
    assert [d["path"] for d in new][-20:] == ["/api/c/%d" % i for i in range(20)]
    old = json_lines(one, 40)
    paths = [d["path"] for d in old]
    assert paths[:40] == ["/api/a/%d" % i for i in range(20)] + ["/api/b/%d" % i for i in range(20)]
    assert not any(p.startswith("/api/c/") for p in paths)
    deadline = time.monotonic() + 5
    while writer_threads(gw) != 1 and time.monotonic() < deadline:
        request(gw.port, "GET", "/api/tick")
        time.sleep(0.1)
    assert writer_threads(gw) == 1, "the old file's writer stopped"
