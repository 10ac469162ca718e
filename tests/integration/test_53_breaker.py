"""Circuit breakers (SPEC §2 services.*.circuit_breaker, §10 "Failures";
docs/resilience.md): closed → open (fail fast, no upstream call) →
half-open (a few probes) → closed."""

import time

import requests

from harness import UPSTREAM_ERRORS, Reply, assert_problem, one_route

ADMIN = {"listen": "127.0.0.1:@ADMIN_PORT@"}
BREAKER = {"failure_ratio": 0.5, "min_requests": 5, "window": "10s", "open_for": "1s",
           "half_open_requests": 2}


def with_admin(cfg):
    cfg = dict(cfg)
    cfg["admin"] = ADMIN
    return cfg


def target_state(gw, addr, svc="svc"):
    doc = requests.get(gw.admin_url("/services/%s/health" % svc), timeout=10).json()
    return [t for t in doc["targets"] if t["address"] == addr][0]


def breaker_gauge(gw, addr):
    m = requests.get(gw.admin_url("/metrics"), timeout=10).text
    line = 'portico_circuit_breaker_open{service="svc",target="%s"} ' % addr
    return int(m.split(line, 1)[1].split("\n", 1)[0])


def test_breaker_opens_fails_fast_half_opens_and_closes(gateway, backend):
    sick = {"on": True}
    be = backend(handler=lambda req: Reply(503, "overloaded") if sick["on"] else None)
    opts = {"retries": {"attempts": 0}, "circuit_breaker": BREAKER}
    gw = gateway(with_admin(one_route(be, service_opts=opts)), expect_errors=[UPSTREAM_ERRORS])
    with requests.Session() as s:
        for i in range(5):
            r = s.get(gw.url("/a/%d" % i), timeout=10)
            assert r.status_code == 503 and r.text == "overloaded"  # the backend's own answer
        st = target_state(gw, be.addr)
        assert st["state"] == "open" and "5 of 5" in st["reason"], st
        assert breaker_gauge(gw, be.addr) == 1
        # open: fail fast, the backend is not called
        n = len(be.received)
        for i in range(10):
            assert_problem(s.get(gw.url("/b/%d" % i), timeout=10), 503, "service-unavailable", gw)
        assert len(be.received) == n, "an open breaker let requests through"
        # the backend recovers; after open_for the next requests are probes
        sick["on"] = False
        time.sleep(1.1)
        assert s.get(gw.url("/c/1"), timeout=10).status_code == 200
        st = target_state(gw, be.addr)
        assert st["state"] == "open" and "half-open" in st["reason"], st
        assert s.get(gw.url("/c/2"), timeout=10).status_code == 200
        assert target_state(gw, be.addr)["state"] == "healthy"
        assert breaker_gauge(gw, be.addr) == 0
        for i in range(10):
            assert s.get(gw.url("/d/%d" % i), timeout=10).status_code == 200
        assert len(be.received) == n + 12


def test_failed_probe_opens_the_breaker_again(gateway, backend):
    be = backend(handler=lambda req: Reply(502, "bad"))
    opts = {"retries": {"attempts": 0}, "circuit_breaker": BREAKER}
    gw = gateway(with_admin(one_route(be, service_opts=opts)), expect_errors=[UPSTREAM_ERRORS])
    for i in range(5):
        requests.get(gw.url("/a/%d" % i), timeout=10)
    assert target_state(gw, be.addr)["state"] == "open"
    time.sleep(1.1)
    assert requests.get(gw.url("/probe"), timeout=10).status_code == 502  # the probe, answered by the backend
    n = len(be.received)
    st = target_state(gw, be.addr)
    assert st["state"] == "open" and "half-open in" in st["reason"], st
    for i in range(5):
        assert requests.get(gw.url("/b/%d" % i), timeout=10).status_code == 503
    assert len(be.received) == n


def test_open_breaker_sends_traffic_to_the_other_targets(gateway, backend):
    bad = backend("bad", handler=lambda req: Reply(504, "slow"))
    good = backend("good")
    opts = {"retries": {"attempts": 1}, "circuit_breaker": dict(BREAKER, open_for="30s")}
    gw = gateway(with_admin(one_route(bad, good, service_opts=opts)), expect_errors=[UPSTREAM_ERRORS])
    with requests.Session() as s:
        codes = [s.get(gw.url("/x/%d" % i), timeout=10).status_code for i in range(30)]
    assert codes == [200] * 30, codes  # retries mask the failures until the breaker opens
    assert len(bad.received) == 5
    assert target_state(gw, bad.addr)["state"] == "open"


def test_every_breaker_open_uses_the_fallback(gateway, backend):
    be = backend(handler=lambda req: Reply(503, "down"))
    fallback = {"status": 200, "headers": {"Content-Type": "application/json"}, "body": '{"items": []}'}
    opts = {"retries": {"attempts": 0}, "circuit_breaker": dict(BREAKER, open_for="30s")}
    gw = gateway(one_route(be, service_opts=opts, route_opts={"plugins": {"fallback": fallback}}),
                 expect_errors=[UPSTREAM_ERRORS])
    for i in range(5):
        requests.get(gw.url("/a/%d" % i), timeout=10)
    n = len(be.received)
    r = requests.get(gw.url("/after"), timeout=10)
    assert r.status_code == 200 and r.headers.get("X-Fallback") == "true" and r.content == b'{"items": []}'
    assert len(be.received) == n
