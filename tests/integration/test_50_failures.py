"""Upstream failures, timeouts and retries (SPEC §2.2, §10 "Failures")."""

import time

import requests

from harness import (UPSTREAM_ERRORS, RawConn, Reply, assert_problem, build_request, one_route, raw,
                     raw_reply, request)
from harness.rawhttp import ParseError, parse_response

RETRY = {"attempts": 1, "on": ["connect_error", "timeout", 502, 503, 504], "idempotent_only": True}


def test_unreachable_target_is_502(gateway, dead_addr):
    gw = gateway(one_route(dead_addr), expect_errors=[UPSTREAM_ERRORS])
    assert_problem(requests.get(gw.url("/"), timeout=10), 502, "bad-gateway", gw)


def test_backend_that_went_down_is_502(gateway, backend):
    be = backend()
    gw = gateway(one_route(be), expect_errors=[UPSTREAM_ERRORS])
    assert requests.get(gw.url("/up"), timeout=10).status_code == 200
    be.stop()
    assert_problem(requests.get(gw.url("/down"), timeout=10), 502, "bad-gateway", gw)


def test_read_timeout_is_504(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "late", delay=3))
    gw = gateway(one_route(be, service_opts={"timeouts": {"read": "300ms"}}), expect_errors=[UPSTREAM_ERRORS])
    t0 = time.monotonic()
    assert_problem(requests.get(gw.url("/"), timeout=10), 504, "gateway-timeout", gw)
    assert time.monotonic() - t0 < 2.5


def test_malformed_backend_response_is_502(gateway, raw_backend):
    be = raw_backend(raw_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"))
    gw = gateway(one_route(be), expect_errors=[UPSTREAM_ERRORS, r"(?i)invalid|malformed|response"])
    assert_problem(request(gw.port, "GET", "/"), 502, "bad-gateway", gw)


def test_garbage_backend_response_is_502(gateway, raw_backend):
    be = raw_backend(raw_reply(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    gw = gateway(one_route(be), expect_errors=[UPSTREAM_ERRORS, r"(?i)invalid|malformed|response"])
    assert_problem(request(gw.port, "GET", "/"), 502, "bad-gateway", gw)


def test_backend_closing_without_answer_is_502(gateway, raw_backend):
    be = raw_backend(raw_reply(b""))
    gw = gateway(one_route(be), expect_errors=[UPSTREAM_ERRORS, r"(?i)closed|response"])
    assert_problem(request(gw.port, "GET", "/"), 502, "bad-gateway", gw)


def test_truncated_backend_body_is_not_passed_off_as_complete(gateway, raw_backend):
    be = raw_backend(raw_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"))
    gw = gateway(one_route(be), expect_errors=[UPSTREAM_ERRORS, r"(?i)closed|premature|truncat|body"])
    data = raw(gw.port, build_request("GET", "/"), timeout=5)
    assert data.closed, "client connection left open after a truncated upstream body"
    try:
        resp, _ = parse_response(data, eof=True)
    except ParseError:
        return  # the client sees an incomplete message: right
    assert resp.status >= 500, "a truncated body was passed on as a complete %d: %r" % (resp.status, data)


def test_stale_pooled_connection_is_not_an_error(gateway, raw_backend):
    """The backend closes its idle keep-alive connections quietly; the next
    request must still succeed (on a new connection)."""

    def script(peer):
        if not peer.recv_head():
            return
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.1)  # then close without saying so

    be = raw_backend(script)
    gw = gateway(one_route(be))
    for i in range(3):
        r = request(gw.port, "GET", "/s/%d" % i)
        assert r.status == 200 and r.body == b"ok", r
        time.sleep(0.3)


def test_retry_goes_to_another_target(gateway, backend, dead_addr):
    live = backend("live")
    gw = gateway(one_route(dead_addr, live, service_opts={"retries": RETRY, "timeouts": {"connect": "500ms"}}),
                 expect_errors=[UPSTREAM_ERRORS])
    with requests.Session() as s:
        for i in range(20):
            r = s.get(gw.url("/r/%d" % i), timeout=10)
            assert r.status_code == 200, r.text
    assert len(live.received) == 20


def test_retry_on_timeout_goes_to_another_target(gateway, backend):
    slow = backend("slow", handler=lambda req: Reply(200, "slow", delay=2))
    fast = backend("fast")
    retries = {"attempts": 1, "on": ["timeout"]}
    gw = gateway(one_route(slow, fast, service_opts={"retries": retries, "timeouts": {"read": "300ms"}}),
                 expect_errors=[UPSTREAM_ERRORS])
    for i in range(4):
        t0 = time.monotonic()
        r = requests.get(gw.url("/t/%d" % i), timeout=10)
        assert r.status_code == 200 and r.json()["backend"] == "fast"
        assert time.monotonic() - t0 < 1.5
    assert len(fast.received) == 4


def test_all_targets_down_is_502_after_retries(gateway, dead_addr):
    from harness import free_port
    other = "127.0.0.1:%d" % free_port()
    gw = gateway(one_route(dead_addr, other, service_opts={"retries": RETRY}), expect_errors=[UPSTREAM_ERRORS])
    assert_problem(requests.get(gw.url("/"), timeout=10), 502, "bad-gateway", gw)


def test_post_not_retried_after_a_502_answer(gateway, backend):
    bad = backend("bad", handler=lambda req: Reply(502, "upstream says no"))
    good = backend("good")
    gw = gateway(one_route(bad, good, service_opts={"retries": RETRY}))
    statuses = []
    for i in range(4):
        r = request(gw.port, "POST", "/p/%d" % i, body=b"order-%d" % i)
        statuses.append(r.status)
    posts = [q for q in bad.received + good.received if q.method == "POST"]
    assert len(posts) == 4, "a POST was retried: %r" % [(q.backend.name, q.target) for q in posts]
    assert statuses.count(502) == len(bad.received) >= 1
    # The same service retries GETs.
    for i in range(4):
        assert request(gw.port, "GET", "/g/%d" % i).status == 200
    assert sum(1 for q in good.received if q.method == "GET") == 4


def test_post_retried_when_connection_refused(gateway, backend, dead_addr):
    live = backend("live")
    gw = gateway(one_route(dead_addr, live, service_opts={"retries": RETRY}), expect_errors=[UPSTREAM_ERRORS])
    for i in range(4):
        r = request(gw.port, "POST", "/p/%d" % i, body=b"body-%d" % i)
        assert r.status == 200, r
    assert [(q.target, q.body) for q in live.received] == [("/p/%d" % i, b"body-%d" % i) for i in range(4)]


def test_gateway_survives_many_failures(gateway, backend, dead_addr):
    """Failures leave no leaked state: afterwards the gateway still serves."""
    live = backend("live")
    cfg = {
        "services": {"dead": {"targets": [dead_addr]}, "live": {"targets": [live.addr]}},
        "routes": [{"name": "dead", "match": {"paths": ["/dead/*"]}, "service": "dead"},
                   {"name": "live", "match": {"paths": ["/live/*"]}, "service": "live"}],
    }
    gw = gateway(cfg, expect_errors=[UPSTREAM_ERRORS])
    for i in range(30):
        assert request(gw.port, "GET", "/dead/%d" % i).status == 502
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/live/ok"))
        assert c.read_response().status == 200
