"""Configuration rules that show from outside (SPEC §2, §10 "Numbers"):
${NAME} / ${NAME:-default}, binary sizes, durations, JSON files."""

import json

import requests

from harness import RawConn, assert_problem, build_request, request, run_portico

ROUTES = """\
routes:
  - name: main
    match: { paths: ["/*"] }
    service: svc
"""


def test_env_reference_is_replaced(gateway, backend):
    be = backend()
    text = """\
server:
  listen: ["127.0.0.1:@PORT@"]
  workers: 1
services:
  svc:
    targets: ["${PT_TEST_TARGET}"]
""" + ROUTES
    gw = gateway(text, env={"PT_TEST_TARGET": be.addr})
    assert requests.get(gw.url("/x"), timeout=10).status_code == 200
    assert be.received[0].target == "/x"


def test_env_default_used_when_unset(gateway, backend):
    be = backend()
    text = """\
server:
  listen: ["127.0.0.1:@PORT@"]
  workers: 1
services:
  svc:
    targets: ["127.0.0.1:${PT_TEST_UNSET_PORT:-%d}"]
""" % be.port + ROUTES
    gw = gateway(text, env={"PT_TEST_UNSET_PORT": None})
    assert requests.get(gw.url("/d"), timeout=10).status_code == 200
    assert len(be.received) == 1


def test_env_value_wins_over_default(gateway, backend):
    be = backend()
    text = """\
server:
  listen: ["127.0.0.1:${PT_TEST_LISTEN_PORT:-1}"]
  workers: 1
services:
  svc:
    targets: ["127.0.0.1:${PT_TEST_BACKEND_PORT:-1}"]
""" + ROUTES
    gw = gateway(text, start=False)
    gw.env = {"PT_TEST_LISTEN_PORT": str(gw.port), "PT_TEST_BACKEND_PORT": str(be.port)}
    gw.start()
    assert requests.get(gw.url("/e"), timeout=10).status_code == 200
    assert len(be.received) == 1


def test_json_configuration_runs(gateway, backend):
    be = backend()
    text = json.dumps({
        "server": {"listen": ["127.0.0.1:@PORT@"], "workers": 1},
        "services": {"svc": {"targets": [be.addr]}},
        "routes": [{"name": "main", "match": {"paths": ["/*"]}, "service": "svc"}],
    })
    gw = gateway(text, filename="portico.json")
    assert requests.get(gw.url("/j"), timeout=10).status_code == 200


def test_sizes_are_binary_body(gateway, backend):
    """max_body_bytes: 1m is 1048576 bytes: that many pass, one more is 413."""
    be = backend()
    gw = gateway({"server": {"limits": {"max_body_bytes": "1m"}},
                  "services": {"svc": {"targets": [be.addr]}},
                  "routes": [{"name": "main", "match": {"paths": ["/*"]}, "service": "svc"}]})
    ok = request(gw.port, "POST", "/up", body=b"a" * 1048576)
    assert ok.status == 200, ok
    assert be.received[0].body == b"a" * 1048576
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/up", [("Content-Length", "1048577")]))
        assert_problem(c.read_response(), 413, "payload-too-large", gw)
    assert len(be.received) == 1


def test_sizes_are_binary_header(gateway, backend):
    """max_header_bytes: 2k: a 1 KB head passes, a 3 KB one is 431."""
    be = backend()
    gw = gateway({"server": {"limits": {"max_header_bytes": "2k"}},
                  "services": {"svc": {"targets": [be.addr]}},
                  "routes": [{"name": "main", "match": {"paths": ["/*"]}, "service": "svc"}]})
    assert request(gw.port, "GET", "/h", [("X-Pad", "p" * 1000)]).status == 200
    assert_problem(request(gw.port, "GET", "/h", [("X-Pad", "p" * 3000)]), 431,
                   "request-header-fields-too-large", gw)
    assert len(be.received) == 1


def test_every_duration_and_size_unit_is_accepted(tmp_path):
    text = """\
server:
  listen: ["127.0.0.1:18080"]
  limits: { max_header_bytes: 16k, max_body_bytes: 1g, max_connections: 512 }
  timeouts: { client_header: 250ms, client_idle: 2m }
  drain_timeout: 1h
services:
  svc:
    targets: ["127.0.0.1:9001"]
    timeouts: { connect: 1s, read: 1d, write: 10s }
routes:
  - name: main
    match: { paths: ["/*"] }
    service: svc
    max_body_bytes: 10m
"""
    p = tmp_path / "portico.yaml"
    p.write_text(text)
    r = run_portico("check", "-c", str(p))
    assert r.returncode == 0, r.stderr


def test_bad_size_is_an_error(tmp_path):
    text = """\
server:
  listen: ["127.0.0.1:18080"]
  limits: { max_body_bytes: 10 megabytes }
services:
  svc:
    targets: ["127.0.0.1:9001"]
""" + ROUTES
    p = tmp_path / "portico.yaml"
    p.write_text(text)
    r = run_portico("check", "-c", str(p))
    assert r.returncode == 1
    assert "%s:3:" % p in r.stderr, r.stderr
