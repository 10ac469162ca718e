"""Admin API (SPEC §6, §10 "Admin API formats") and metrics (SPEC §8), against
the real gateway with real backends: token, /status, /ready while draining,
GET/PUT /config, CRUD on routes and services with write-back to the file,
/routes/explain, and /metrics after known traffic with two workers."""

import copy
import json
import os
import re
import signal
import socket
import threading
import time

import requests

from harness import (RawConn, Reply, assert_problem, build_request, config, port_open, raw, request,
                     route, run_portico, service)

TOKEN = "s3cret-admin-token"


def wait_admin(gw, timeout=10):
    """The admin listener opens once the workers run: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(gw.admin_port):
            return
        assert gw.running(), gw.log()
        time.sleep(0.02)
    raise AssertionError("admin API not listening on %d; log:\n%s" % (gw.admin_port, gw.log()))


def adm(gw, method, path, token=TOKEN, **kw):
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return requests.request(method, gw.admin_url(path), headers=headers, timeout=20, **kw)


def with_admin(cfg, token=True):
    cfg = dict(cfg)
    cfg["admin"] = {"listen": "127.0.0.1:@ADMIN_PORT@"}
    if token:
        cfg["admin"]["token"] = "${ADMIN_TOKEN}"
    return cfg


def start(gateway, cfg, token=True, **kw):
    env = dict(kw.pop("env", {}))
    env.setdefault("ADMIN_TOKEN", TOKEN)
    gw = gateway(with_admin(cfg, token), env=env, **kw)
    wait_admin(gw)
    return gw


def basic(be, **top):
    return config({"users": service(be)}, [route("users", ["/api/users", "/api/users/{id}"], "users")],
                  **top)


def read_config_file(gw):
    with open(gw.config_path) as f:
        return f.read()


# ---- authorisation -----------------------------------------------------------


def test_token_required_and_accepted(gateway, backend):
    gw = start(gateway, basic(backend()))
    r = adm(gw, "GET", "/status", token=None)
    assert_problem(r, 401, "unauthorized", gw)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    r = adm(gw, "GET", "/status", token="wrong")
    assert_problem(r, 401, "unauthorized", gw)
    r = adm(gw, "GET", "/status", token=TOKEN[:-1])
    assert r.status_code == 401
    r = adm(gw, "GET", "/status", token=None, headers={"Authorization": "Basic " + TOKEN})
    assert r.status_code == 401
    # unknown paths do not tell what exists without the token
    assert adm(gw, "GET", "/nothing-here", token=None).status_code == 401
    assert adm(gw, "GET", "/metrics", token=None).status_code == 401
    r = adm(gw, "GET", "/status")
    assert r.status_code == 200, r.text
    r = adm(gw, "GET", "/status", token=None, headers={"Authorization": "bearer " + TOKEN})
    assert r.status_code == 200, "the scheme is case-insensitive"
    # the dashboard page itself needs no token
    r = adm(gw, "GET", "/", token=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")


def test_no_token_configured(gateway, backend):
    gw = start(gateway, basic(backend()), token=False)
    assert adm(gw, "GET", "/status", token=None).status_code == 200
    # an empty ${VAR:-} token means "no token" too
    gw2 = gateway(basic(backend(), admin={"listen": "127.0.0.1:@ADMIN_PORT@",
                                          "token": "${NO_SUCH_TOKEN_VAR:-}"}))
    wait_admin(gw2)
    assert adm(gw2, "GET", "/status", token=None).status_code == 200


# ---- status, ready ------------------------------------------------------------


def test_status_fields(gateway, backend):
    gw = start(gateway, basic(backend()), workers=2)
    with RawConn(gw.port) as c:  # one client connection held open
        c.send(build_request("GET", "/api/users"))
        assert c.read_response().status == 200
        doc = adm(gw, "GET", "/status").json()
        assert set(doc) == {"version", "uptime_s", "config_version", "workers", "connections"}, doc
        assert isinstance(doc["version"], str) and re.match(r"^\d+\.\d+", doc["version"]), doc
        assert isinstance(doc["uptime_s"], int) and 0 <= doc["uptime_s"] < 120, doc
        assert doc["config_version"] == 1, doc
        assert doc["workers"] == 2, doc
        assert doc["connections"] >= 1, doc
    time.sleep(1.1)
    assert adm(gw, "GET", "/status").json()["uptime_s"] >= 1


def test_ready_then_503_while_draining(gateway, backend):
    release = threading.Event()

    def handler(req):
        if req.path == "/api/users/slow":
            release.wait(20)
        return Reply(200, b"done")

    be = backend(handler=handler)
    gw = start(gateway, basic(be, server={"drain_timeout": "10s"}))
    r = adm(gw, "GET", "/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}, r.text
    result = {}
    t = threading.Thread(target=lambda: result.update(r=requests.get(gw.url("/api/users/slow"), timeout=20)),
                         daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 5
        while be.active == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert be.active, "the slow request never reached the backend"
        gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        r = None
        while time.monotonic() < deadline:
            r = adm(gw, "GET", "/ready")
            if r.status_code == 503:
                break
            time.sleep(0.02)
        doc = assert_problem(r, 503, "not-ready", gw)
        assert doc["ready"] is False and "drain" in doc["detail"]
        assert gw.running()
        # the rest of the API still answers while draining, but nothing changes any more
        assert adm(gw, "GET", "/status").status_code == 200
        r = adm(gw, "PUT", "/routes/late", json={"match": {"paths": ["/late"]}, "service": "users"})
        assert_problem(r, 503, "draining", gw)
    finally:
        release.set()
    t.join(15)
    assert result["r"].status_code == 200 and result["r"].content == b"done"
    assert gw.wait_exit(10) == 0, gw.log()


# ---- configuration ------------------------------------------------------------

ENV_CONFIG = """\
# the configuration as an operator wrote it
server:
  listen: ["127.0.0.1:@PORT@"]
  workers: 1
  drain_timeout: 5s
admin:
  listen: "127.0.0.1:@ADMIN_PORT@"
  token: ${ADMIN_TOKEN}
services:
  users:
    targets: ["127.0.0.1:${USERS_PORT}"]
    timeouts: { connect: 1s, read: "${READ_TIMEOUT:-5s}" }
routes:
  - name: users
    match: { paths: ["/api/users", "/api/users/{id}"] }
    service: users
"""


def env_gateway(gateway, be, **kw):
    port = be.addr.rsplit(":", 1)[1]
    gw = gateway(ENV_CONFIG, env={"ADMIN_TOKEN": TOKEN, "USERS_PORT": port}, **kw)
    wait_admin(gw)
    return gw, port


def test_get_config_keeps_env_references(gateway, backend):
    be = backend()
    gw, port = env_gateway(gateway, be)
    r = adm(gw, "GET", "/config")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["admin"]["token"] == "${ADMIN_TOKEN}"
    assert doc["services"]["users"]["targets"] == ["127.0.0.1:${USERS_PORT}"]
    assert doc["services"]["users"]["timeouts"] == {"connect": "1s", "read": "${READ_TIMEOUT:-5s}"}
    assert doc["server"]["workers"] == 1 and doc["server"]["listen"] == ["127.0.0.1:%d" % gw.port]
    assert TOKEN not in r.text and ("127.0.0.1:%s" % port) not in r.text, "expanded values leaked"


def test_put_config_valid_applies_and_writes_back(gateway, backend):
    be, other = backend("a"), backend("b")
    gw = start(gateway, basic(be))
    assert requests.get(gw.url("/new/x"), timeout=5).status_code == 404
    cfg = copy.deepcopy(gw.config)
    cfg["services"]["other"] = service(other)
    cfg["routes"].append(route("new", ["/new/*"], "other"))
    text = "# written by the test\n" + gw.render(cfg)
    r = adm(gw, "PUT", "/config", data=text, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert r.json()["config_version"] == 2
    assert requests.get(gw.url("/new/x"), timeout=5).json()["backend"] == "b"
    assert requests.get(gw.url("/api/users"), timeout=5).json()["backend"] == "a"
    assert adm(gw, "GET", "/status").json()["config_version"] == 2
    assert read_config_file(gw) == text, "the file holds the text as sent"
    # JSON is YAML: a JSON body works too, and config_version keeps growing
    cfg = adm(gw, "GET", "/config").json()
    del cfg["routes"][1]
    r = adm(gw, "PUT", "/config", data=json.dumps(cfg), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["config_version"] == 3
    assert requests.get(gw.url("/new/x"), timeout=5).status_code == 404


def test_put_config_invalid_lists_every_error_and_changes_nothing(gateway, backend):
    be = backend()
    gw = start(gateway, basic(be))
    before = read_config_file(gw)
    cfg = copy.deepcopy(gw.config)
    cfg.setdefault("server", {})["wrokers"] = 2
    cfg["routes"].insert(0, route("broken", ["/b"], "nowhere", retires=3))
    bad = gw.render(cfg)
    r = adm(gw, "PUT", "/config", data=bad)
    doc = assert_problem(r, 400, "invalid-config", gw)
    errors = doc["errors"]
    assert len(errors) >= 3, errors
    for e in errors:
        assert re.match(r"^.+:\d+:\d+: ", e), "no FILE:LINE:COL in %r" % e
    joined = "\n".join(errors)
    assert "nowhere" in joined and "retires" in joined and "wrokers" in joined, errors
    # positions point into the text that was sent
    lines = bad.splitlines()
    for e in errors:
        m = re.match(r"^.+:(\d+):(\d+): ", e)
        line = lines[int(m.group(1)) - 1]
        assert any(w in line for w in ("nowhere", "retires", "wrokers")), (e, line)
    assert read_config_file(gw) == before
    assert adm(gw, "GET", "/status").json()["config_version"] == 1
    assert requests.get(gw.url("/api/users"), timeout=5).status_code == 200
    assert requests.get(gw.url("/b"), timeout=5).status_code == 404
    # a YAML syntax error is reported with its position too
    r = adm(gw, "PUT", "/config", data="server: [\n")
    doc = assert_problem(r, 400, "invalid-config", gw)
    assert re.match(r"^.+:\d+:\d+: ", doc["errors"][0]), doc


# ---- routes, services ---------------------------------------------------------


def check_file(gw, must_contain=()):
    """The written-back file is valid for `portico check` and keeps ${NAME} references."""
    text = read_config_file(gw)
    for s in must_contain:
        assert s in text, "%r missing from the written file:\n%s" % (s, text)
    p = run_portico("check", "-c", gw.config_path, env={"ADMIN_TOKEN": TOKEN, "USERS_PORT": "1"})
    assert p.returncode == 0, p.stderr
    return text


def test_routes_crud_with_write_back(gateway, backend):
    be = backend("users")
    gw, port = env_gateway(gateway, be)
    r = adm(gw, "GET", "/routes")
    assert r.status_code == 200
    routes = r.json()["routes"]
    assert [x["name"] for x in routes] == ["users"]
    assert routes[0]["config"]["match"]["paths"] == ["/api/users", "/api/users/{id}"]
    assert routes[0]["compiled"]["service"] == "users" and routes[0]["compiled"]["shadowed"] is False
    assert adm(gw, "GET", "/routes/users").json()["config"]["service"] == "users"
    assert_problem(adm(gw, "GET", "/routes/nope"), 404, "not-found", gw)
    assert_problem(adm(gw, "DELETE", "/routes/nope"), 404, "not-found", gw)

    new = {"match": {"paths": ["/orders/*"], "methods": ["GET"]}, "service": "users",
           "strip_prefix": "/orders"}
    r = adm(gw, "PUT", "/routes/orders", json=new)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/routes/orders"
    assert r.json()["config"]["strip_prefix"] == "/orders" and r.json()["config_version"] == 2
    got = requests.get(gw.url("/orders/7"), timeout=5).json()
    assert got["backend"] == "users" and got["path"] == "/7", got
    text = check_file(gw, ["${ADMIN_TOKEN}", "${USERS_PORT}", "${READ_TIMEOUT:-5s}", "orders"])
    assert "# the configuration" not in text  # documented: comments are not kept

    del new["strip_prefix"]
    r = adm(gw, "PUT", "/routes/orders", json=new)
    assert r.status_code == 200, r.text
    assert "strip_prefix" not in r.json()["config"]
    assert requests.get(gw.url("/orders/7"), timeout=5).json()["path"] == "/orders/7"
    # YAML bodies work too; a body naming another route is refused
    r = adm(gw, "PUT", "/routes/orders", data="name: other\nmatch: {paths: [/x]}\nservice: users\n")
    assert_problem(r, 400, "name-mismatch", gw)
    r = adm(gw, "PUT", "/routes/orders", data="name: orders\nmatch: {paths: [/x]}\nservice: nowhere\n")
    doc = assert_problem(r, 400, "invalid-config", gw)
    assert any("nowhere" in e for e in doc["errors"]), doc
    assert requests.get(gw.url("/orders/7"), timeout=5).status_code == 200, "unchanged"
    r = adm(gw, "PUT", "/routes/orders", data="{not yaml")
    doc = assert_problem(r, 400, "invalid-body", gw)
    assert re.match(r"^body:\d+:\d+: ", doc["errors"][0]), doc
    assert_problem(adm(gw, "PUT", "/routes/orders", json=[1, 2]), 400, "invalid-body", gw)

    r = adm(gw, "DELETE", "/routes/orders")
    assert r.status_code == 204 and r.content == b""
    assert_problem(adm(gw, "GET", "/routes/orders"), 404, "not-found", gw)
    assert requests.get(gw.url("/orders/7"), timeout=5).status_code == 404
    assert requests.get(gw.url("/api/users/1"), timeout=5).status_code == 200
    text = check_file(gw, ["${ADMIN_TOKEN}", "${USERS_PORT}"])
    assert "orders" not in text
    assert adm(gw, "GET", "/status").json()["config_version"] == 4
    assert_problem(adm(gw, "POST", "/routes/users"), 405, "method-not-allowed", gw)
    assert "PUT" in adm(gw, "POST", "/routes/users").headers["Allow"]


def test_services_crud_and_in_use(gateway, backend):
    be, be2 = backend("one"), backend("two")
    gw = start(gateway, basic(be))
    svcs = adm(gw, "GET", "/services").json()["services"]
    assert [s["name"] for s in svcs] == ["users"]
    assert svcs[0]["compiled"]["targets"][0]["address"] == be.addr
    assert svcs[0]["compiled"]["routes"] == ["users"]
    assert_problem(adm(gw, "GET", "/services/nope"), 404, "not-found", gw)

    r = adm(gw, "PUT", "/services/two", json={"targets": [be2.addr], "timeouts": {"read": "2s"}})
    assert r.status_code == 201, r.text
    assert r.json()["compiled"]["timeouts"]["read_ms"] == 2000
    r = adm(gw, "PUT", "/routes/two", json={"match": {"paths": ["/two/*"]}, "service": "two"})
    assert r.status_code == 201, r.text
    assert requests.get(gw.url("/two/x"), timeout=5).json()["backend"] == "two"
    h = adm(gw, "GET", "/services/two/health").json()
    assert h["service"] == "two" and h["targets"][0]["address"] == be2.addr
    assert h["targets"][0]["state"] in ("healthy", "unhealthy", "ejected", "open")

    r = adm(gw, "DELETE", "/services/two")
    doc = assert_problem(r, 409, "in-use", gw)
    assert doc["routes"] == ["two"] and '"two"' in doc["detail"]
    r = adm(gw, "PUT", "/services/two", json={"targets": [be.addr]})
    assert r.status_code == 200, r.text
    assert requests.get(gw.url("/two/x"), timeout=5).json()["backend"] == "one"
    assert adm(gw, "DELETE", "/routes/two").status_code == 204
    assert adm(gw, "DELETE", "/services/two").status_code == 204
    assert_problem(adm(gw, "GET", "/services/two"), 404, "not-found", gw)
    assert_problem(adm(gw, "DELETE", "/services/two"), 404, "not-found", gw)
    r = run_portico("check", "-c", gw.config_path, env={"ADMIN_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    assert adm(gw, "GET", "/consumers").json() == {"consumers": []}

    # a service used only by a composition's call is in use too
    assert adm(gw, "PUT", "/services/three", json={"targets": [be2.addr]}).status_code == 201
    agg = {"match": {"paths": ["/agg"]},
           "aggregate": {"calls": [{"key": "a", "service": "three", "path": "/x"}]}}
    r = adm(gw, "PUT", "/routes/agg", json=agg)
    assert r.status_code == 201, r.text
    assert r.json()["compiled"]["aggregate"]["calls"] == [{"key": "a", "service": "three"}]
    assert r.json()["compiled"]["service"] is None
    doc = assert_problem(adm(gw, "DELETE", "/services/three"), 409, "in-use", gw)
    assert doc["routes"] == ["agg"]
    assert adm(gw, "GET", "/services/three").json()["compiled"]["routes"] == ["agg"]


# ---- explain --------------------------------------------------------------------


def test_routes_explain(gateway, backend):
    be = backend()
    routes = [
        route("exact", ["/api/users"], "svc"),
        route("v2", ["/api/users/{id}"], "svc", headers={"X-Api-Version": "2"}),
        route("posts", ["/api/users/{id}"], "svc", methods=["POST"]),
        route("param", ["/api/users/{id}"], "svc", plugins={"trace": {}}),
        route("prefix", ["/api/*"], "svc"),
        route("dup", ["/api/users"], "svc"),  # shadowed by "exact"
        route("status", ["/status"], "svc", methods=["GET", "HEAD"]),
    ]
    cfg = config({"svc": service(be)}, routes, plugins={"request-id": {}})
    gw = start(gateway, cfg)
    r = adm(gw, "GET", "/routes/explain?method=GET&host=api.example.com%3A8080&path=/api/./users/42%3Fx%3D1")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["request"]["path"] == "/api/users/42" and doc["request"]["host"] == "api.example.com"
    assert doc["status"] == 200 and doc["route"] == "param" and doc["service"] == "svc"
    assert doc["captures"] == {"id": "42"}
    assert [(p["name"], p["scope"]) for p in doc["plugins"]] == [("request-id", "global"), ("trace", "route")]
    assert doc["plugins"][0]["order"] <= doc["plugins"][1]["order"]
    verdicts = {v["route"]: v for v in doc["considered"]}
    assert verdicts["param"]["verdict"] == "won"
    assert verdicts["exact"]["verdict"] == "path"
    assert verdicts["prefix"]["verdict"] == "priority" and "param" in verdicts["prefix"]["detail"]
    assert verdicts["v2"]["verdict"] == "header" and "X-Api-Version" in verdicts["v2"]["detail"]
    assert verdicts["posts"]["verdict"] == "method"
    assert verdicts["param"]["pattern"] == "/api/users/{id}"
    assert [s["route"] for s in doc["shadowed"]] == ["dup"]
    assert "exact" in doc["shadowed"][0]["reason"] and "never match" in doc["shadowed"][0]["reason"]

    doc = adm(gw, "GET", "/routes/explain?path=/api/users/42&header.x-api-version=2").json()
    assert doc["route"] == "v2", "equal priority: the earlier route wins"
    assert doc["request"]["headers"] == {"x-api-version": "2"}
    assert {v["route"]: v["verdict"] for v in doc["considered"]}["param"] == "priority"
    doc = adm(gw, "GET", "/routes/explain?method=POST&path=/api/users/42").json()
    assert doc["route"] == "posts"
    doc = adm(gw, "GET", "/routes/explain?method=DELETE&path=/api/users/42").json()
    assert doc["route"] == "param", "param accepts any method"
    doc = adm(gw, "GET", "/routes/explain?method=POST&path=/status").json()
    assert doc["status"] == 405 and doc["route"] is None and doc["allow"] == ["GET", "HEAD"], doc
    assert {v["route"]: v["verdict"] for v in doc["considered"]}["status"] == "method"
    doc = adm(gw, "GET", "/routes/explain?path=/other").json()
    assert doc["status"] == 404 and doc["route"] is None
    assert [p["name"] for p in doc["plugins"]] == ["request-id"]
    assert_problem(adm(gw, "GET", "/routes/explain?path=/a/../../etc"), 400, "bad-request", gw)
    assert_problem(adm(gw, "GET", "/routes/explain?method=GET"), 400, "bad-request", gw)
    assert_problem(adm(gw, "GET", "/routes/explain?path=/a&metod=GET"), 400, "bad-request", gw)
    # the shadowing shows on the route too
    assert adm(gw, "GET", "/routes/dup").json()["compiled"]["shadowed"] is True


# ---- metrics --------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-z_]+)(\{([^}]*)\})? (\S+)$')


def scrape(gw):
    r = adm(gw, "GET", "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    out = {}
    for line in r.text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "malformed sample line %r" % line
        labels = tuple(sorted(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_after_known_traffic(gateway, backend, dead_addr):
    def handler(req):
        if req.path.startswith("/api/users/missing"):
            return Reply(404, b"no such user")
        if req.path.startswith("/api/users/broken"):
            return Reply(502, b"upstream broke")
        return Reply(200, b"hello")

    be = backend(handler=handler)
    cfg = config({"users": service(be, retries={"attempts": 1, "on": [502]}),
                  "dead": service(dead_addr, retries={"attempts": 0})},
                 [route("users", ["/api/users/*"], "users"), route("dead", ["/dead"], "dead")])
    gw = start(gateway, cfg, workers=2, expect_errors=[r"(?i)upstream|connect|refused|502"])
    sent = received = 0
    users_sent = users_received = 0
    statuses = []
    # fresh connections, so that the kernel spreads them over both workers
    for path in ["/api/users/1", "/api/users/2", "/api/users/3", "/api/users/missing1",
                 "/api/users/missing2", "/api/users/broken", "/nowhere", "/dead"] + ["/api/users/4"] * 6:
        req = build_request("GET", path, headers=[("Connection", "close")])
        resp = raw(gw.port, req)
        assert resp.closed
        statuses.append(int(resp.split(b" ", 2)[1]))
        sent += len(req)
        received += len(resp)
        if path.startswith("/api/users/"):
            users_sent += len(req)
            users_received += len(resp)
    assert statuses == [200, 200, 200, 404, 404, 502, 404, 502] + [200] * 6, statuses
    time.sleep(0.2)  # the last exchange is recorded after its response went out
    m = scrape(gw)
    rt = "portico_requests_total"
    assert metric(m, rt, route="users", service="users", status="200") == 9
    assert metric(m, rt, route="users", service="users", status="404") == 2
    assert metric(m, rt, route="users", service="users", status="502") == 1
    assert metric(m, rt, route="", service="", status="404") == 1, "unmatched: route=\"\""
    assert metric(m, rt, route="dead", service="dead", status="502") == 1
    h = "portico_request_duration_seconds"
    assert metric(m, h + "_count", route="users", service="users") == 12
    assert metric(m, h + "_bucket", route="users", service="users", le="+Inf") == 12
    assert 0 < metric(m, h + "_sum", route="users", service="users") < 12 * 5
    buckets = [v for (n, l), v in m.items() if n == h + "_bucket" and ("route", "users") in l]
    assert len(buckets) == 14
    up = "portico_upstream_requests_total"
    assert metric(m, up, service="users", target=be.addr, status="200") == 9
    assert metric(m, up, service="users", target=be.addr, status="404") == 2
    assert metric(m, up, service="users", target=be.addr, status="502") == 2, "the retry is an attempt"
    assert metric(m, up, service="dead", target=dead_addr, status="0") == 1, "connection refused: 0"
    assert metric(m, "portico_upstream_duration_seconds_count", service="users", target=be.addr) == 13
    assert metric(m, "portico_bytes_received_total", route="users", service="users") == users_sent
    assert metric(m, "portico_bytes_sent_total", route="users", service="users") == users_received
    total_in = sum(v for (n, _), v in m.items() if n == "portico_bytes_received_total")
    total_out = sum(v for (n, _), v in m.items() if n == "portico_bytes_sent_total")
    assert (total_in, total_out) == (sent, received)
    assert metric(m, "portico_config_version") == 1
    assert metric(m, "portico_config_reloads_total", result="ok") == 0
    assert metric(m, "portico_uptime_seconds") >= 0
    assert metric(m, "portico_connections_active") == 0

    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/api/users/9"))
        assert c.read_response().status == 200
        assert metric(scrape(gw), "portico_connections_active") == 1
    # a rejected change and an applied one
    assert adm(gw, "PUT", "/config", data="server: {wrokers: 1}\n").status_code == 400
    assert adm(gw, "PUT", "/routes/extra", json={"match": {"paths": ["/x"]}, "service": "users"}).status_code == 201
    m = scrape(gw)
    assert metric(m, "portico_config_reloads_total", result="ok") == 1
    assert metric(m, "portico_config_reloads_total", result="error") == 1
    assert metric(m, "portico_config_version") == 2
    # counts survive the change (series are per label set, not per configuration)
    assert metric(m, rt, route="users", service="users", status="200") == 10


def test_metrics_malformed_request_counted(gateway, backend):
    gw = start(gateway, basic(backend()))
    resp = raw(gw.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400")
    time.sleep(0.1)
    assert metric(scrape(gw), "portico_requests_total", route="", service="", status="400") == 1


def test_cache_purge_and_metrics(gateway, backend):
    be = backend(handler=lambda req: Reply(200, b"fresh", headers=[("Cache-Control", "max-age=60")]))
    cfg = config({"users": service(be)},
                 [route("cached", ["/c/*"], "users", plugins={"cache": {"ttl": "60s"}}),
                  route("other", ["/o/*"], "users", plugins={"cache": {"ttl": "60s"}})])
    gw = start(gateway, cfg)
    for path in ("/c/1", "/c/1", "/o/1"):
        assert requests.get(gw.url(path), timeout=5).status_code == 200
    assert requests.get(gw.url("/c/1"), timeout=5).headers.get("X-Cache") == "HIT"
    time.sleep(0.1)
    m = scrape(gw)
    assert metric(m, "portico_cache_requests_total", route="cached", result="hit") == 2
    assert metric(m, "portico_cache_requests_total", route="cached", result="miss") == 1
    assert metric(m, "portico_access_log_dropped_total") == 0
    r = adm(gw, "DELETE", "/cache?route=cached")
    assert r.status_code == 200 and r.json() == {"purged": 1}, r.text
    assert requests.get(gw.url("/c/1"), timeout=5).headers.get("X-Cache") == "MISS"
    assert requests.get(gw.url("/o/1"), timeout=5).headers.get("X-Cache") == "HIT", "other route kept"
    r = adm(gw, "DELETE", "/cache?prefix=%2Fo%2F")
    assert r.json() == {"purged": 1}, r.text
    assert adm(gw, "DELETE", "/cache").json() == {"purged": 1}
    assert_problem(adm(gw, "DELETE", "/cache?rute=x"), 400, "bad-request", gw)
    assert_problem(adm(gw, "GET", "/cache"), 405, "method-not-allowed", gw)
    assert adm(gw, "DELETE", "/cache", token=None).status_code == 401


# ---- protocol details ---------------------------------------------------------------


def test_admin_http_details(gateway, backend):
    gw = start(gateway, basic(backend()))
    assert_problem(adm(gw, "POST", "/status"), 405, "method-not-allowed", gw)
    assert adm(gw, "POST", "/status").headers["Allow"] == "GET, HEAD"
    assert_problem(adm(gw, "GET", "/nope"), 404, "not-found", gw)
    assert_problem(adm(gw, "GET", "/routes/a/b/c/d/e"), 404, "not-found", gw)
    r = adm(gw, "HEAD", "/status")
    assert r.status_code == 200 and r.content == b"" and int(r.headers["Content-Length"]) > 0
    # keep-alive and pipelining on one connection
    auth = [("Authorization", "Bearer " + TOKEN)]
    with RawConn(gw.admin_port) as c:
        c.send(build_request("GET", "/ready", headers=auth) + build_request("GET", "/status", headers=auth))
        assert c.read_response().status == 200
        second = c.read_response()
        assert second.status == 200 and second.json()["workers"] == 1
        c.send(build_request("GET", "/status", headers=auth))
        assert c.read_response().status == 200
    # chunked bodies and Expect: 100-continue
    with RawConn(gw.admin_port) as c:
        body = json.dumps({"match": {"paths": ["/c"]}, "service": "users"}).encode()
        c.send(b"PUT /routes/chunky HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + TOKEN.encode()
               + b"\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        assert c.read_response().status == 100
        c.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        assert c.read_response().status == 201
    # limits: a body over 16 MiB is refused before it is read; garbage closes the connection
    resp = request(gw.admin_port, "PUT", "/config", headers=auth + [("Content-Length", str(17 << 20))])
    assert resp.status == 413
    # a client that sends the whole oversized body still reads the 413 (lingering close)
    r = adm(gw, "PUT", "/config", data=b"x" * (17 << 20))
    assert_problem(r, 413, "payload-too-large", gw)
    resp = raw(gw.admin_port, b"GET /status HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400") and resp.closed
    assert adm(gw, "GET", "/usage").status_code == 501


def test_admin_port_in_use_exits_2(gateway, backend):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        gw = gateway(basic(backend(), admin={"listen": "127.0.0.1:%d" % port}), start=False)
        gw.start(wait=False)
        assert gw.wait_exit(10) == 2
        assert "127.0.0.1:%d" % port in gw.log()
    finally:
        s.close()


def test_admin_listen_follows_config_change(gateway, backend):
    be = backend()
    gw = start(gateway, basic(be))
    from harness import free_port
    new_port = free_port()
    cfg = adm(gw, "GET", "/config").json()
    cfg["admin"]["listen"] = "127.0.0.1:%d" % new_port
    r = adm(gw, "PUT", "/config", data=json.dumps(cfg))
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while not port_open(new_port) and time.monotonic() < deadline:
        time.sleep(0.02)
    r = requests.get("http://127.0.0.1:%d/status" % new_port, headers={"Authorization": "Bearer " + TOKEN},
                     timeout=5)
    assert r.status_code == 200 and r.json()["config_version"] == 2
    assert not port_open(gw.admin_port), "the old admin address still listens"
    assert os.path.exists(gw.config_path)
