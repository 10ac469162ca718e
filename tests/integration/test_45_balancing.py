"""Load balancing and upstream connection reuse (SPEC §2 services, §2.2)."""

import collections
import threading
import time

import requests

from harness import Reply, one_route, request


def spread(gw, n, path="/lb", headers=None):
    """n sequential GETs; returns a Counter of backend names."""
    c = collections.Counter()
    with requests.Session() as s:
        for i in range(n):
            r = s.get(gw.url("%s/%d" % (path, i)), headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            c[r.json()["backend"]] += 1
    return c


def test_round_robin_even(gateway, backend):
    bes = [backend("b%d" % i) for i in range(3)]
    gw = gateway(one_route(*bes, service_opts={"balance": "round_robin"}))
    assert spread(gw, 30) == {"b0": 10, "b1": 10, "b2": 10}


def test_round_robin_is_the_default(gateway, backend):
    bes = [backend("b%d" % i) for i in range(2)]
    gw = gateway(one_route(*bes))
    assert spread(gw, 20) == {"b0": 10, "b1": 10}


def test_round_robin_weights_in_proportion(gateway, backend):
    light, heavy = backend("light"), backend("heavy")
    gw = gateway(one_route((light, 1), (heavy, 3), service_opts={"balance": "round_robin"}))
    c = spread(gw, 200)
    assert abs(c["light"] - 50) <= 2 and abs(c["heavy"] - 150) <= 2, c


def test_least_conn_avoids_the_busy_target(gateway, backend):
    release = threading.Event()

    def handler(req):
        if req.path == "/slow":
            release.wait(10)
        return None

    a, b = backend("a", handler), backend("b", handler)
    gw = gateway(one_route(a, b, service_opts={"balance": "least_conn"}))
    slow = threading.Thread(target=lambda: requests.get(gw.url("/slow"), timeout=15))
    slow.start()
    try:
        deadline = time.monotonic() + 5
        while not (a.active or b.active) and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = "a" if a.active else "b"
        assert a.active + b.active == 1
        c = spread(gw, 10, path="/fast")
        idle = "b" if busy == "a" else "a"
        assert c == {idle: 10}, c
    finally:
        release.set()
        slow.join(15)


def test_random_uses_every_target(gateway, backend):
    bes = [backend("r%d" % i) for i in range(2)]
    gw = gateway(one_route(*bes, service_opts={"balance": "random"}))
    c = spread(gw, 200)
    assert c["r0"] >= 40 and c["r1"] >= 40, c


def test_random_respects_weights(gateway, backend):
    light, heavy = backend("light"), backend("heavy")
    gw = gateway(one_route((light, 1), (heavy, 9), service_opts={"balance": "random"}))
    c = spread(gw, 300)
    assert c["heavy"] > 2 * c["light"], c


def test_hash_on_header_sticks_a_user_to_one_target(gateway, backend):
    bes = [backend("h%d" % i) for i in range(3)]
    gw = gateway(one_route(*bes, service_opts={"balance": "hash", "hash_on": "header:X-User-Id"}))
    placement = {}
    with requests.Session() as s:
        for rnd in range(4):
            for user in range(30):
                r = s.get(gw.url("/h/%d/%d" % (rnd, user)), headers={"X-User-Id": "user-%d" % user}, timeout=10)
                name = r.json()["backend"]
                assert placement.setdefault(user, name) == name, "user-%d moved from %s to %s" % (
                    user, placement[user], name)
    assert len(set(placement.values())) >= 2, placement


def test_upstream_connections_are_reused(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    for i in range(50):  # a new client connection each time
        assert request(gw.port, "GET", "/ka/%d" % i).status == 200
    assert len(be.received) == 50
    assert be.connections <= 2, "50 sequential requests used %d upstream connections" % be.connections


def test_upstream_connection_closed_by_backend_is_not_reused(gateway, backend):
    """A backend that answers `Connection: close` gets a fresh connection next time."""
    be = backend(handler=lambda req: Reply(200, "bye", close=True))
    gw = gateway(one_route(be))
    for i in range(5):
        r = request(gw.port, "GET", "/c/%d" % i)
        assert r.status == 200 and r.body == b"bye"
    assert be.connections == 5
