"""Masking backend failures: active and passive health checks, retries with a
budget, health state across reloads, GET /services/NAME/health and the
health gauges (SPEC §2 services.*.health / retries, §6, §8, §10 "Failures";
docs/resilience.md)."""

import re
import time

import pytest
import requests

from harness import UPSTREAM_ERRORS, Load, RawBackend, Reply, config, one_route, route, service, wait_until

ADMIN = {"listen": "127.0.0.1:@ADMIN_PORT@"}


def with_admin(cfg):
    cfg = dict(cfg)
    cfg["admin"] = ADMIN
    return cfg


def health(gw, svc="svc"):
    r = requests.get(gw.admin_url("/services/%s/health" % svc), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def states(gw, svc="svc"):
    return {t["address"]: t["state"] for t in health(gw, svc)["targets"]}


@pytest.mark.timeout_s(90)
def test_killed_target_under_load_gives_no_errors(gateway, backend):
    bes = [backend("b%d" % i) for i in range(3)]
    opts = {"retries": {"attempts": 2}, "timeouts": {"connect": "500ms"},
            "health": {"passive": {"failures": 3, "ejection": "30s"}}}
    gw = gateway(with_admin(one_route(*bes, service_opts=opts)), expect_errors=[UPSTREAM_ERRORS])
    load = Load(gw)
    try:
        assert wait_until(lambda: all(len(b.received) > 20 for b in bes), 10)
        bes[1].stop()
        dead_count = len(bes[1].received)
        time.sleep(2.5)
        before = [len(b.received) for b in (bes[0], bes[2])]
        time.sleep(1.0)
        after = [len(b.received) for b in (bes[0], bes[2])]
    finally:
        load.stop()
    assert load.failed == [], "%d failed of %d: %r" % (len(load.failed), load.ok, load.failed[:5])
    assert load.ok > 200
    assert all(a > b for a, b in zip(after, before)), "the live targets kept serving"
    assert len(bes[1].received) == dead_count
    st = states(gw)
    assert st[bes[1].addr] == "ejected", st
    assert st[bes[0].addr] == st[bes[2].addr] == "healthy", st
    m = requests.get(gw.admin_url("/metrics"), timeout=10).text
    assert 'portico_upstream_target_healthy{service="svc",target="%s"} 0' % bes[1].addr in m
    assert 'portico_upstream_target_healthy{service="svc",target="%s"} 1' % bes[0].addr in m


def test_target_failing_active_checks_leaves_and_returns(gateway, backend):
    sick = {"on": False}

    def handler(req):
        if req.path == "/healthz":
            return Reply(500 if sick["on"] else 200, "hc")
        return None

    a = backend("a")
    b = backend("b", handler=handler)
    opts = {"health": {"active": {"path": "/healthz", "interval": "200ms", "timeout": "500ms",
                                  "healthy": 2, "unhealthy": 2}}}
    gw = gateway(with_admin(one_route(a, b, service_opts=opts)), expect_errors=[UPSTREAM_ERRORS])

    def b_served():
        return sum(1 for q in b.received if q.path != "/healthz")

    with requests.Session() as s:
        for i in range(10):
            assert s.get(gw.url("/x/%d" % i), timeout=10).status_code == 200
        assert b_served() > 0
        assert any(q.path == "/healthz" and q.header("User-Agent") == "portico-health-check"
                   for q in b.received)
        sick["on"] = True
        t0 = time.monotonic()
        assert wait_until(lambda: states(gw)[b.addr] == "unhealthy", 3)
        out_after = time.monotonic() - t0
        assert out_after < 2 * 0.2 + 1.0, "left rotation after %.2fs" % out_after
        doc = health(gw)
        tb = [t for t in doc["targets"] if t["address"] == b.addr][0]
        assert "HTTP 500" in tb["reason"] and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", tb["since"]), tb
        served = b_served()
        for i in range(20):
            assert s.get(gw.url("/y/%d" % i), timeout=10).status_code == 200
        assert b_served() == served, "an unhealthy target got requests"
        sick["on"] = False
        assert wait_until(lambda: states(gw)[b.addr] == "healthy", 3)
        for i in range(10):
            assert s.get(gw.url("/z/%d" % i), timeout=10).status_code == 200
        assert b_served() > served, "the target did not come back"


def test_ejected_target_stays_ejected_across_reload(gateway, backend):
    bad = backend("bad", handler=lambda req: Reply(503, "nope"))
    good = backend("good")
    opts = {"retries": {"attempts": 0}, "health": {"passive": {"failures": 3, "ejection": "30s"}}}
    cfg = with_admin(one_route(bad, good, service_opts=opts))
    gw = gateway(cfg, expect_errors=[UPSTREAM_ERRORS])
    with requests.Session() as s:
        for i in range(12):
            s.get(gw.url("/e/%d" % i), timeout=10)
    assert len(bad.received) == 3
    assert states(gw)[bad.addr] == "ejected"
    cfg2 = dict(cfg)
    cfg2["routes"] = cfg["routes"] + [route("more", ["/more/*"], "svc")]
    gw.reload(cfg2)
    assert wait_until(lambda: requests.get(gw.admin_url("/status"), timeout=5).json()["config_version"] == 2, 5)
    assert states(gw)[bad.addr] == "ejected"
    with requests.Session() as s:
        for i in range(10):
            assert s.get(gw.url("/more/%d" % i), timeout=10).status_code == 200
    assert len(bad.received) == 3, "the reload let an ejected target back in"


def test_checkers_follow_reloads(gateway, backend):
    be = backend("be")
    plain = with_admin(one_route(be))
    gw = gateway(plain)
    time.sleep(0.5)
    assert not any(q.path == "/hc" for q in be.received)
    checked = with_admin(one_route(be, service_opts={"health": {"active": {"path": "/hc", "interval": "100ms"}}}))
    gw.reload(checked)
    assert wait_until(lambda: sum(q.path == "/hc" for q in be.received) >= 3, 5)
    gw.reload(plain)
    assert wait_until(lambda: requests.get(gw.admin_url("/status"), timeout=5).json()["config_version"] == 3, 5)
    time.sleep(0.3)
    n = sum(q.path == "/hc" for q in be.received)
    time.sleep(0.6)
    assert sum(q.path == "/hc" for q in be.received) == n, "checks went on after they were removed"


def test_post_is_never_retried_when_idempotent_only(gateway, backend):
    bad = backend("bad", handler=lambda req: Reply(503, "busy"))

    def reset(peer):  # read the whole request, then drop the connection without answering
        head = peer.recv_head()
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                peer.recv_exact(int(line.split(b":")[1]))

    rst = RawBackend(reset, "reset")
    good = backend("good")
    try:
        opts = {"retries": {"attempts": 2, "on": ["connect_error", "timeout", 502, 503, 504],
                            "idempotent_only": True}}
        gw = gateway(one_route(bad, rst, good, service_opts=opts), expect_errors=[UPSTREAM_ERRORS])
        statuses = [requests.post(gw.url("/p/%d" % i), data=b"x" * 10, timeout=10).status_code
                    for i in range(12)]
        posts = [q for q in bad.received + good.received if q.method == "POST"] + rst.received
        assert len(posts) == 12, "a POST was sent twice: %d attempts for 12 requests" % len(posts)
        assert statuses.count(503) == len(bad.received) and statuses.count(502) == len(rst.received)
        assert statuses.count(200) == len([q for q in good.received if q.method == "POST"])
        # the same service retries GETs
        for i in range(9):
            assert requests.get(gw.url("/g/%d" % i), timeout=10).status_code == 200
    finally:
        rst.stop()


def _attempts_for(gateway, backend, budget, n):
    bes = [backend("sick%d" % i, handler=lambda req: Reply(503, "down")) for i in range(3)]
    retries = {"attempts": 2, "budget": budget, "budget_min": 0, "backoff": {"base": "0ms"}}
    gw = gateway(one_route(*bes, service_opts={"retries": retries}), expect_errors=[UPSTREAM_ERRORS])
    with requests.Session() as s:
        for i in range(n):
            assert s.get(gw.url("/b/%d" % i), timeout=10).status_code == 503
    return sum(len(b.received) for b in bes)


def test_retry_budget_caps_attempts_when_every_target_fails(gateway, backend):
    n = 100
    capped = _attempts_for(gateway, backend, "20%", n)
    assert n + 0.2 * n - 2 <= capped <= n + 0.2 * n + 1, capped
    unlimited = _attempts_for(gateway, backend, "1000%", 30)
    assert unlimited == 90, "without a budget each request makes 3 attempts: %d" % unlimited


def test_retry_budget_minimum_lets_low_traffic_retry(gateway, backend, dead_addr):
    live = backend("live")
    retries = {"attempts": 1, "budget": "0%", "budget_min": 2, "budget_window": "10s"}
    gw = gateway(one_route(dead_addr, live, service_opts={"retries": retries}), expect_errors=[UPSTREAM_ERRORS])
    codes = [requests.get(gw.url("/m/%d" % i), timeout=10).status_code for i in range(60)]
    # 2 retries/s x 10 s = 20 retries; the 30 requests that hit the dead target first need one each
    assert codes.count(200) == 50 and codes.count(502) == 10, codes


def test_health_endpoint_and_gauges_without_checks(gateway, backend):
    be = backend()
    gw = gateway(with_admin(one_route(be)))
    doc = health(gw)
    assert doc["service"] == "svc"
    t = doc["targets"][0]
    assert set(t) == {"address", "state", "reason", "since"} and t["state"] == "healthy"
    assert requests.get(gw.admin_url("/services/nope/health"), timeout=5).status_code == 404
    m = requests.get(gw.admin_url("/metrics"), timeout=10).text
    assert "# TYPE portico_upstream_target_healthy gauge" in m
    assert 'portico_circuit_breaker_open{service="svc",target="%s"} 0' % be.addr in m


def test_health_keys_are_validated(gateway, tmp_path):
    from harness import run_portico
    from harness.yamlgen import to_yaml
    bad = config({"s": service("127.0.0.1:1", health={"active": {"intervl": "1s"}, "passive": {"failure_ratio": "150%"}},
                               circuit_breaker={"open_for": "soon"}, retries={"budget": "lots"})},
                 [route("r", "/*", "s")])
    f = tmp_path / "bad.yaml"
    f.write_text(to_yaml(bad))
    p = run_portico("check", "-c", f)
    assert p.returncode == 1
    assert 'unknown key "intervl"' in p.stderr
    assert "failure_ratio: must be from 0 to 100%" in p.stderr
    assert "open_for" in p.stderr and "budget" in p.stderr
