"""Every error the gateway makes itself is RFC 9457 problem+json (SPEC §7),
one test per type slug."""

import time

import requests

from harness import (UPSTREAM_ERRORS, RawConn, Reply, assert_problem, build_request, config,
                     one_route, raw, request, route, service)
from harness.rawhttp import parse_responses


def test_404_not_found(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, paths=["/api/*"]))
    r = requests.get(gw.url("/nothing/here"), timeout=10)
    doc = assert_problem(r, 404, "not-found", gw)
    assert doc["title"] == "Not Found"
    assert be.received == []


def test_404_is_problem_json_even_for_html_clients(gateway, backend):
    gw = gateway(one_route(backend(), paths=["/api/*"]))
    r = requests.get(gw.url("/x"), headers={"Accept": "text/html"}, timeout=10)
    assert_problem(r, 404, "not-found", gw)


def test_405_method_not_allowed_with_allow(gateway, backend):
    be = backend()
    gw = gateway(config({"svc": service(be)}, [route("r", "/items", "svc", methods=["GET", "PUT"])]))
    r = requests.post(gw.url("/items"), data=b"x", timeout=10)
    assert_problem(r, 405, "method-not-allowed", gw)
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert {"GET", "PUT"} <= allow and "POST" not in allow, r.headers.get("Allow")
    assert be.received == []


def test_400_bad_request_path_escapes_root(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    r = request(gw.port, "GET", "/../etc/passwd")
    assert_problem(r, 400, "bad-request", gw)
    assert be.received == []


def test_431_header_fields_too_large(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    r = request(gw.port, "GET", "/", [("X-Big", "b" * 20000)])  # default limit 16k
    assert_problem(r, 431, "request-header-fields-too-large", gw)
    assert be.received == []


def test_413_payload_too_large(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"limits": {"max_body_bytes": "1k"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/", [("Content-Length", "5000")]))
        assert_problem(c.read_response(), 413, "payload-too-large", gw)
    assert be.received == []


def test_408_request_timeout(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"timeouts": {"client_header": "300ms"}}))
    with RawConn(gw.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert_problem(c.read_response(timeout=5), 408, "request-timeout", gw)
    assert be.received == []


def test_502_bad_gateway(gateway, dead_addr):
    gw = gateway(one_route(dead_addr, service_opts={"timeouts": {"connect": "500ms"}}),
                 expect_errors=[UPSTREAM_ERRORS])
    r = requests.get(gw.url("/"), timeout=10)
    assert_problem(r, 502, "bad-gateway", gw)


def test_504_gateway_timeout(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "late", delay=3))
    gw = gateway(one_route(be, service_opts={"timeouts": {"read": "300ms"}}), expect_errors=[UPSTREAM_ERRORS])
    t0 = time.monotonic()
    r = requests.get(gw.url("/slow"), timeout=10)
    assert_problem(r, 504, "gateway-timeout", gw)
    assert time.monotonic() - t0 < 2.5


def test_503_service_unavailable_when_no_target_is_healthy(gateway, backend):
    be = backend(handler=lambda req: Reply(500, "sick") if req.path == "/healthz" else None)
    health = {"active": {"path": "/healthz", "interval": "100ms", "timeout": "500ms", "healthy": 1, "unhealthy": 1}}
    gw = gateway(one_route(be, service_opts={"health": health}), expect_errors=[UPSTREAM_ERRORS])
    deadline = time.monotonic() + 5
    r = None
    while time.monotonic() < deadline:
        r = requests.get(gw.url("/work"), timeout=10)
        if r.status_code == 503:
            break
        time.sleep(0.1)
    assert_problem(r, 503, "service-unavailable", gw)
    assert any(q.path == "/healthz" for q in be.received)


def test_417_expectation_failed(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    r = request(gw.port, "POST", "/", [("Expect", "something-else"), ("Content-Length", "3")])
    assert_problem(r, 417, "expectation-failed", gw)
    assert be.received == []


def test_505_http_version_not_supported(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    data = raw(gw.port, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n")
    rs = parse_responses(data)
    assert rs, data
    assert_problem(rs[0], 505, "http-version-not-supported", gw)
    assert be.received == []


def test_problem_for_head_has_no_body(gateway, backend):
    gw = gateway(one_route(backend(), paths=["/api/*"]))
    with RawConn(gw.port) as c:
        c.send(build_request("HEAD", "/missing"))
        r = c.read_response(method="HEAD")
        assert r.status == 404
        assert r.body == b""
        # The connection is still usable: the HEAD answer carried no stray body.
        c.send(build_request("GET", "/missing"))
        assert_problem(c.read_response(), 404, "not-found", gw)


def test_backend_errors_are_relayed_not_rewritten(gateway, backend):
    """A 500 or 404 from the service is the service's answer, passed on as is."""
    be = backend(handler=lambda req: Reply(404, {"error": "no such user"}) if req.path == "/u"
                 else Reply(500, "boom", headers=[("Content-Type", "text/plain")]))
    gw = gateway(config({"svc": service(be)}, [route("r", "/*", "svc")]))
    r = requests.get(gw.url("/u"), timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "no such user"}
    r = requests.get(gw.url("/v"), timeout=10)
    assert r.status_code == 500 and r.text == "boom"
    assert r.headers["Content-Type"] == "text/plain"
