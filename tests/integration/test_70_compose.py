"""Composition (SPEC §4, §10 "Composition"; docs/composition.md): one client
request, several services, one JSON document.

Every test drives the real binary against in-process backends and checks
both what the client got and what each backend received."""

import json
import socket
import struct
import threading
import time

import pytest

from harness import Reply, assert_problem, config, parse_traceparent, request, route, run_portico, service


def agg_route(name, paths, calls, **agg):
    if isinstance(paths, str):
        paths = [paths]
    a = {"calls": calls}
    a.update(agg)
    return {"name": name, "match": {"paths": list(paths)}, "aggregate": a}


def compose(gateway, services, calls, path="/c", routes=(), **agg):
    """A gateway with one aggregate route at `path` (plus `routes`)."""
    svcs = {name: service(be) if not isinstance(be, dict) else be for name, be in services.items()}
    return gateway(config(svcs, [agg_route("agg", path, calls, **agg)] + list(routes)))


def get(gw, target, headers=(), method="GET", timeout=10.0):
    return request(gw.port, method, target, headers, timeout=timeout)


def doc(resp):
    assert resp.status == 200, (resp.status, resp.body[:500])
    assert resp.header("Content-Type") == "application/json", resp.headers
    return json.loads(resp.body)


def by_path(table):
    """A handler answering JSON from {path_prefix: body}; 404 otherwise."""
    def handler(req):
        for prefix, body in table.items():
            if req.path.startswith(prefix):
                return body(req) if callable(body) else body
        return Reply(404, {"error": "no such thing"})
    return handler


# ---- results: group and shallow ----

def test_group_puts_each_result_under_its_key(gateway, backend):
    users = backend("users", by_path({"/users/7": {"id": 7, "name": "Ada"}}))
    orders = backend("orders", by_path({"/orders/42": {"id": 42, "total": 19.99}}))
    gw = compose(gateway, {"users": users, "orders": orders}, [
        {"key": "order", "service": "orders", "path": "/orders/{id}"},
        {"key": "user", "service": "users", "path": "/users/7"},
    ], path="/c/{id}")
    r = get(gw, "/c/42")
    assert doc(r) == {"order": {"id": 42, "total": 19.99}, "user": {"id": 7, "name": "Ada"}}
    assert r.body == b'{"order":{"id":42,"total":19.99},"user":{"id":7,"name":"Ada"}}', \
        "keys in declaration order, numbers as the backend wrote them"
    assert not r.has_header("X-Portico-Partial")
    assert r.header("X-Request-Id")


def test_shallow_merge_later_calls_win_and_non_objects_go_under_their_key(gateway, backend):
    be = backend("b", by_path({
        "/a": {"id": 1, "name": "from a", "a_only": True},
        "/b": {"name": "from b", "b_only": [1]},
        "/tags": ["x", "y"],
        "/text": Reply(200, "plain", headers=[("Content-Type", "text/plain")]),
    }))
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a"},
        {"key": "b", "service": "b", "path": "/b"},
        {"key": "tags", "service": "b", "path": "/tags"},
        {"key": "text", "service": "b", "path": "/text"},
    ], merge="shallow")
    assert doc(get(gw, "/c")) == {"id": 1, "name": "from b", "a_only": True, "b_only": [1],
                                  "tags": ["x", "y"], "text": "plain"}


# ---- the dependency graph ----

def test_chain_of_three_runs_in_order_and_passes_values(gateway, backend):
    be = backend("b", by_path({
        "/orders/": lambda req: {"id": req.path.rsplit("/", 1)[1], "customer_id": "c-9"},
        "/customers/c-9": {"id": "c-9", "account": {"manager_id": 31}},
        "/managers/31": {"name": "Grace"},
    }))
    gw = compose(gateway, {"b": be}, [
        {"key": "manager", "service": "b", "path": "/managers/{customer.account.manager_id}"},
        {"key": "order", "service": "b", "path": "/orders/{id}"},
        {"key": "customer", "service": "b", "path": "/customers/{order.customer_id}"},
    ], path="/c/{id}")
    assert doc(get(gw, "/c/5")) == {"manager": {"name": "Grace"},
                                    "order": {"id": "5", "customer_id": "c-9"},
                                    "customer": {"id": "c-9", "account": {"manager_id": 31}}}
    assert be.paths() == ["/orders/5", "/customers/c-9", "/managers/31"]
    t = [r.time for r in be.received]
    assert t[0] <= t[1] <= t[2]


def test_independent_calls_run_concurrently(gateway, backend):
    """A barrier backend answers only once all three calls have arrived: a
    gateway that made them one by one would never get past the first."""
    barrier = threading.Barrier(3, timeout=5)

    def handler(req):
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return Reply(500, {"error": "calls did not arrive together"})
        return {"path": req.path}

    be = backend("barrier", handler)
    gw = compose(gateway, {"b": be}, [
        {"key": "x", "service": "b", "path": "/x"},
        {"key": "y", "service": "b", "path": "/y"},
        {"key": "z", "service": "b", "path": "/z"},
    ], timeout="8s")
    t0 = time.monotonic()
    assert doc(get(gw, "/c")) == {"x": {"path": "/x"}, "y": {"path": "/y"}, "z": {"path": "/z"}}
    assert time.monotonic() - t0 < 4
    assert be.max_active == 3


def test_dependents_wait_and_independents_do_not(gateway, backend):
    """Latency of a fan-out is the slowest call, not the sum."""
    be = backend("slow", by_path({"/": lambda req: Reply(200, {"p": req.path}, delay=0.4)}))
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a"},
        {"key": "b", "service": "b", "path": "/b"},
        {"key": "c", "service": "b", "path": "/c"},
        {"key": "d", "service": "b", "path": "/d/{a.p}"},
    ], timeout="5s")
    t0 = time.monotonic()
    d = doc(get(gw, "/c"))
    took = time.monotonic() - t0
    assert d["d"] == {"p": "/d/%2Fa"}
    assert 0.75 < took < 1.4, "two rounds of 0.4 s, got %.2f s" % took


# ---- failures ----

def test_fallback_optional_and_partial(gateway, backend):
    be = backend("b", by_path({
        "/ok": {"ok": True},
        "/broken": Reply(500, "boom"),
        "/gone": Reply(503, "later"),
    }))
    gw = compose(gateway, {"b": be}, [
        {"key": "ok", "service": "b", "path": "/ok"},
        {"key": "items", "service": "b", "path": "/broken", "fallback": []},
        {"key": "reviews", "service": "b", "path": "/gone", "optional": True},
        {"key": "extra", "service": "b", "path": "/broken", "fallback": {"n": 0, "why": "default"}},
        {"key": "nothing", "service": "b", "path": "/broken", "fallback": None},
    ])
    r = get(gw, "/c")
    assert doc(r) == {"ok": {"ok": True}, "items": [], "extra": {"n": 0, "why": "default"}, "nothing": None}
    assert r.header("X-Portico-Partial") == "true"


def test_no_partial_header_when_everything_answered(gateway, backend):
    be = backend("b", by_path({"/": {"ok": 1}}))
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a", "optional": True},
        {"key": "b", "service": "b", "path": "/b", "fallback": 0},
    ])
    r = get(gw, "/c")
    assert doc(r) == {"a": {"ok": 1}, "b": {"ok": 1}}
    assert not r.has_header("X-Portico-Partial")


@pytest.mark.parametrize("reply,why", [
    (Reply(500, "boom"), "answered 500"),
    (Reply(404, {"error": "x"}), "answered 404"),
    (Reply(302, "", headers=[("Location", "/x")]), "answered 302"),
    (Reply(200, b"{not json", headers=[("Content-Type", "application/json")]), "invalid JSON"),
])
def test_required_failure_is_502_naming_the_call(gateway, backend, reply, why):
    good = backend("good", by_path({"/": {"fine": True}}))
    bad = backend("bad", lambda req: reply)
    gw = compose(gateway, {"good": good, "bad": bad}, [
        {"key": "fine", "service": "good", "path": "/f"},
        {"key": "customer", "service": "bad", "path": "/x"},
    ])
    d = assert_problem(get(gw, "/c"), 502, "composition-call-failed", gw)
    assert '"customer"' in d["detail"] and "service bad" in d["detail"], d
    assert why in d["detail"], d


def test_route_fallback_plugin_answers_a_failed_composition(gateway, backend):
    bad = backend("bad", lambda req: Reply(500, "boom"))
    r = agg_route("agg", "/c", [{"key": "x", "service": "bad", "path": "/x"}])
    r["plugins"] = {"fallback": {"status": 200, "body": '{"degraded": true}',
                                 "headers": {"Content-Type": "application/json"}}}
    gw = gateway(config({"bad": service(bad)}, [r]))
    resp = get(gw, "/c")
    assert resp.status == 200 and json.loads(resp.body) == {"degraded": True}, resp.body


def test_unreachable_required_call_is_502(gateway, backend, dead_addr):
    good = backend("good", by_path({"/": {"fine": True}}))
    gw = compose(gateway, {"good": good, "dead": {"targets": [dead_addr], "retries": {"attempts": 0}}}, [
        {"key": "fine", "service": "good", "path": "/f"},
        {"key": "stock", "service": "dead", "path": "/x"},
    ])
    d = assert_problem(get(gw, "/c"), 502, "composition-call-failed", gw)
    assert '"stock"' in d["detail"] and "could not be reached" in d["detail"], d


def test_failed_call_cancels_the_others(gateway, backend):
    slow = backend("slow", lambda req: Reply(200, {"late": True}, delay=2.0))
    bad = backend("bad", lambda req: Reply(500, "boom"))
    gw = compose(gateway, {"slow": slow, "bad": bad}, [
        {"key": "late", "service": "slow", "path": "/late"},
        {"key": "broken", "service": "bad", "path": "/x"},
    ], timeout="10s")
    t0 = time.monotonic()
    assert_problem(get(gw, "/c"), 502, "composition-call-failed", gw)
    assert time.monotonic() - t0 < 1.5, "the answer did not wait for the slow call"


def test_dependent_of_an_omitted_call_fails_by_its_own_policy(gateway, backend):
    be = backend("b", by_path({"/order": Reply(500, "x"), "/user": {"name": "n"}}))
    gw = compose(gateway, {"b": be}, [
        {"key": "order", "service": "b", "path": "/order", "optional": True},
        {"key": "user", "service": "b", "path": "/user/{order.customer_id}", "fallback": {"name": "?"}},
    ])
    r = get(gw, "/c")
    assert doc(r) == {"user": {"name": "?"}}
    assert r.header("X-Portico-Partial") == "true"
    assert be.paths() == ["/order"], "the dependent was never sent"
    gw2 = compose(gateway, {"b": be}, [
        {"key": "order", "service": "b", "path": "/order", "optional": True},
        {"key": "user", "service": "b", "path": "/user/{order.customer_id}"},
    ])
    d = assert_problem(get(gw2, "/c"), 502, "composition-call-failed", gw2)
    assert '"user"' in d["detail"] and "{order.customer_id}" in d["detail"], d


def test_whole_timeout_is_504_naming_the_pending_calls(gateway, backend):
    fast = backend("fast", by_path({"/": {"ok": True}}))
    slow = backend("slow", lambda req: Reply(200, {"late": True}, delay=3.0))
    gw = compose(gateway, {"fast": fast, "slow": slow}, [
        {"key": "fine", "service": "fast", "path": "/f"},
        {"key": "inventory", "service": "slow", "path": "/i"},
        {"key": "pricing", "service": "slow", "path": "/p"},
        {"key": "after", "service": "fast", "path": "/a/{pricing.late}"},
        {"key": "maybe", "service": "slow", "path": "/m", "optional": True},
    ], timeout="300ms")
    t0 = time.monotonic()
    d = assert_problem(get(gw, "/c"), 504, "composition-timeout", gw)
    assert time.monotonic() - t0 < 1.5
    assert "inventory, pricing, after" in d["detail"] and "maybe" not in d["detail"], d


def test_whole_timeout_with_only_optional_calls_pending_answers_partial(gateway, backend):
    fast = backend("fast", by_path({"/": {"ok": True}}))
    slow = backend("slow", lambda req: Reply(200, {"late": True}, delay=3.0))
    gw = compose(gateway, {"fast": fast, "slow": slow}, [
        {"key": "fine", "service": "fast", "path": "/f"},
        {"key": "recs", "service": "slow", "path": "/r", "optional": True},
        {"key": "stock", "service": "slow", "path": "/s", "fallback": {"n": 0}},
    ], timeout="300ms")
    t0 = time.monotonic()
    r = get(gw, "/c")
    assert doc(r) == {"fine": {"ok": True}, "stock": {"n": 0}}
    assert r.header("X-Portico-Partial") == "true"
    assert time.monotonic() - t0 < 1.5


def test_call_timeout(gateway, backend):
    slow = backend("slow", lambda req: Reply(200, {"late": True}, delay=2.0))
    gw = compose(gateway, {"slow": slow}, [
        {"key": "a", "service": "slow", "path": "/a", "timeout": "200ms", "fallback": "timed out"},
        {"key": "b", "service": "slow", "path": "/b", "timeout": "200ms"},
    ], timeout="5s")
    t0 = time.monotonic()
    d = assert_problem(get(gw, "/c"), 502, "composition-call-failed", gw)
    assert time.monotonic() - t0 < 1.5
    assert '"b"' in d["detail"] and "timeout (200ms)" in d["detail"], d


def test_client_leaving_cancels_the_calls(gateway, backend):
    slow = backend("slow", lambda req: Reply(200, {"late": True}, delay=1.0))
    gw = compose(gateway, {"slow": slow}, [
        {"key": "a", "service": "slow", "path": "/a"},
        {"key": "b", "service": "slow", "path": "/b/{a.late}"},
    ], timeout="5s")
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        # a reset, which the gateway notices at once (a FIN alone is a half-close HTTP allows)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(1.5)
    assert all(r.path == "/a" for r in slow.received), "no dependent call after the client left"
    assert doc(get(gw, "/c")) == {"a": {"late": True}, "b": {"late": True}}


# ---- fields and bodies ----

def test_fields_with_nested_paths_and_arrays(gateway, backend):
    order = {"id": 1, "secret": "s", "customer": {"name": "Ada", "email": "a@x", "addr": {"city": "L", "zip": "1"}},
             "items": [{"sku": "a", "cost": 1}, {"sku": "b", "cost": 2, "meta": {"w": 3}}]}
    reviews = [{"rating": 5, "text": "good", "author": {"id": 1}}, {"rating": 1, "text": "bad", "ip": "x"}]
    be = backend("b", by_path({"/order": order, "/reviews": reviews}))
    gw = compose(gateway, {"b": be}, [
        {"key": "order", "service": "b", "path": "/order",
         "fields": ["id", "customer.name", "customer.addr.city", "items.sku"]},
        {"key": "reviews", "service": "b", "path": "/reviews", "fields": ["rating", "text"]},
        {"key": "raw", "service": "b", "path": "/order/{order.secret}"},
    ])
    d = doc(get(gw, "/c"))
    assert d["order"] == {"id": 1, "customer": {"name": "Ada", "addr": {"city": "L"}},
                          "items": [{"sku": "a"}, {"sku": "b"}]}
    assert d["reviews"] == [{"rating": 5, "text": "good"}, {"rating": 1, "text": "bad"}]
    assert "/order/s" in be.paths(), "dependents read the unfiltered result"


def test_non_json_bodies_are_embedded_as_strings(gateway, backend):
    be = backend("b", by_path({
        "/html": Reply(200, "<p>\"hi\"</p>\n", headers=[("Content-Type", "text/html")]),
        "/bin": Reply(200, b"a\xffb", headers=[("Content-Type", "application/octet-stream")]),
        "/bare": Reply(200, b"[1, 2]"),
        "/plain": Reply(200, b"not json"),
        "/empty": Reply(204),
    }))
    gw = compose(gateway, {"b": be}, [
        {"key": "html", "service": "b", "path": "/html"},
        {"key": "bin", "service": "b", "path": "/bin"},
        {"key": "bare", "service": "b", "path": "/bare"},
        {"key": "bare_text", "service": "b", "path": "/plain"},
        {"key": "empty", "service": "b", "path": "/empty"},
    ])
    assert doc(get(gw, "/c")) == {"html": "<p>\"hi\"</p>\n", "bin": "a\ufffdb", "bare": [1, 2],
                                  "bare_text": "not json", "empty": None}


def test_max_body_bytes(gateway, backend):
    big = {"blob": "x" * 3000}
    be = backend("b", by_path({"/big": big, "/chunked": lambda req: Reply(200, iter([json.dumps(big).encode()]), chunked=True)}))
    gw = compose(gateway, {"b": be}, [
        {"key": "small", "service": "b", "path": "/big", "max_body_bytes": "1k", "fallback": "too big"},
        {"key": "streamed", "service": "b", "path": "/chunked", "max_body_bytes": "1k", "optional": True},
        {"key": "fits", "service": "b", "path": "/big", "max_body_bytes": "4k"},
    ])
    r = get(gw, "/c")
    assert doc(r) == {"small": "too big", "fits": big}
    assert r.header("X-Portico-Partial") == "true"
    gw2 = compose(gateway, {"b": be}, [{"key": "small", "service": "b", "path": "/big", "max_body_bytes": "1k"}])
    d = assert_problem(get(gw2, "/c"), 502, "composition-call-failed", gw2)
    assert "max_body_bytes" in d["detail"], d


# ---- templates: hostile values never change the structure ----

def test_hostile_values_are_encoded_in_paths_queries_and_bodies(gateway, backend):
    evil = '../../admin?x=1#frag "q"\nline'
    be = backend("b", by_path({"/source": {"ref": evil, "n": 3}, "/": {"ok": True}}))
    gw = compose(gateway, {"b": be}, [
        {"key": "src", "service": "b", "path": "/source"},
        {"key": "bypath", "service": "b", "path": "/items/{src.ref}/x"},
        {"key": "bycap", "service": "b", "path": "/caps/{id}"},
        {"key": "byquery", "service": "b", "path": "/search?q={query.q}&ref={src.ref}&n={src.n}",
         "query": {"extra": "{query.q}", "none": "{query.absent}"}},
        {"key": "bybody", "service": "b", "path": "/post", "method": "POST",
         "body": '{"ref": {src.ref}, "q": {query.q}, "n": {src.n}, "text": "ref={src.ref}"}'},
        {"key": "byheader", "service": "b", "path": "/h", "headers": {"X-Q": "<{query.q}>"}},
    ], path="/c/{id}")
    q = "a%26b%3Dc%23d%20%22e%22"            # a&b=c#d "e"
    r = get(gw, "/c/..%2F..%2Fetc%3Fx%23y?q=" + q)
    assert r.status == 200, r.body
    got = {req.path.split("/")[1] if req.path != "/source" else "source": req for req in be.received}
    assert got["items"].target == "/items/..%2F..%2Fadmin%3Fx%3D1%23frag%20%22q%22%0Aline/x"
    assert got["caps"].target == "/caps/..%2F..%2Fetc%3Fx%23y"
    assert got["search"].target == ("/search?q=a%26b%3Dc%23d%20%22e%22"
                                    "&ref=..%2F..%2Fadmin%3Fx%3D1%23frag%20%22q%22%0Aline&n=3"
                                    "&extra=a%26b%3Dc%23d%20%22e%22"), "an absent argument is left out"
    post = got["post"]
    assert post.method == "POST" and post.header("Content-Type") == "application/json"
    assert int(post.header("Content-Length")) == len(post.body)
    assert json.loads(post.body) == {"ref": evil, "q": 'a&b=c#d "e"', "n": 3, "text": "ref=" + evil}
    assert got["h"].header("X-Q") == '<a&b=c#d "e">'


def test_values_that_cannot_be_placed_fail_the_call(gateway, backend):
    be = backend("b", by_path({"/src": {"nl": "a\r\nInjected: yes", "dots": ".."}, "/": {"ok": 1}}))
    gw = compose(gateway, {"b": be}, [
        {"key": "src", "service": "b", "path": "/src"},
        {"key": "hdr", "service": "b", "path": "/h", "headers": {"X-V": "{src.nl}"}, "optional": True},
        {"key": "dots", "service": "b", "path": "/d/{src.dots}", "optional": True},
        {"key": "q", "service": "b", "path": "/q/{query.id}", "optional": True},
    ])
    r = get(gw, "/c?id=..")
    assert doc(r) == {"src": {"nl": "a\r\nInjected: yes", "dots": ".."}}
    assert r.header("X-Portico-Partial") == "true"
    assert be.paths() == ["/src"], "nothing was sent for the refused values"
    d = assert_problem(get(compose(gateway, {"b": be}, [
        {"key": "src", "service": "b", "path": "/src"},
        {"key": "dots", "service": "b", "path": "/d/{src.dots}"}]), "/c"), 502, "composition-call-failed")
    assert "'.' or '..'" in d["detail"], d


def test_defaults_and_missing_values(gateway, backend):
    be = backend("b")
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a?page={query.page:-1}&sort={query.sort:-}"},
        {"key": "b", "service": "b", "path": "/b/{header.X-Tenant}", "optional": True},
    ])
    r = get(gw, "/c?page=3")
    assert doc(r)["a"]["target"] == "/a?page=3&sort="
    assert "b" not in doc(r)
    r = get(gw, "/c", [("X-Tenant", "t 1")])
    assert doc(r)["a"]["target"] == "/a?page=1&sort="
    assert doc(r)["b"]["target"] == "/b/t%201"


# ---- headers ----

def test_forward_and_expose_headers(gateway, backend):
    def handler(req):
        return Reply(200, {"seen": [k.lower() for k, _ in req.headers]},
                     headers=[("Cache-Control", "max-age=60"), ("X-Secret", "no"), ("Set-Cookie", "a=" + req.path[1:])])
    be = backend("b", handler)
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a", "forward_headers": ["Accept-Language"]},
        {"key": "b", "service": "b", "path": "/b", "headers": {"Authorization": "Bearer call-b"},
         "method": "POST", "body": "{}", "forward_headers": ["Content-Type"]},
    ], forward_headers=["Authorization"], expose_headers=["Cache-Control", "Set-Cookie"])
    r = get(gw, "/c", [("Authorization", "Bearer client"), ("Accept-Language", "fr"), ("Cookie", "c=1"),
                       ("X-Other", "1"), ("Content-Type", "text/plain")])
    d = doc(r)
    a, b = sorted(be.received, key=lambda q: q.path)
    assert a.header("Authorization") == "Bearer client" and a.header("Accept-Language") == "fr"
    assert b.header("Authorization") == "Bearer call-b", "the call's own header wins"
    assert b.headers_all("Content-Type") == ["application/json"], "a body's type is not forwarded"
    assert a.header("Content-Type") is None
    assert b.header("Accept-Language") is None
    for req in (a, b):
        assert req.header("Cookie") is None and req.header("X-Other") is None
    assert "cookie" not in d["a"]["seen"]
    assert r.headers_all("Cache-Control") == ["max-age=60"], "one copy of an identical field"
    assert sorted(r.headers_all("Set-Cookie")) == ["a=a", "a=b"]
    assert r.header("X-Secret") is None


def test_calls_carry_request_id_trace_and_forwarded_headers(gateway, backend):
    be = backend("b")
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a"},
        {"key": "b", "service": "b", "path": "/b"},
        {"key": "c", "service": "b", "path": "/c/{a.path}"},
    ])
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = get(gw, "/c", [("traceparent", "00-%s-00f067aa0ba902b7-01" % trace), ("X-Request-Id", "req-123"),
                       ("X-Forwarded-For", "203.0.113.9"), ("tracestate", "congo=t61rcWkgMzE")], )
    doc(r)
    assert r.header("X-Request-Id") == "req-123"
    parents = set()
    for req in be.received:
        tid, parent, flags = parse_traceparent(req.header("traceparent"))
        assert tid == trace and flags == "01"
        assert parent != "00f067aa0ba902b7"
        parents.add(parent)
        assert req.header("X-Request-Id") == "req-123"
        assert req.headers_all("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
        assert req.header("X-Forwarded-Proto") == "http"
        assert req.header("X-Forwarded-Host") == "localhost"
        assert req.header("Host") == be.addr
        assert req.headers_all("tracestate") == ["congo=t61rcWkgMzE"], "the trace context goes on whole"
    assert len(parents) == 3, "each call is its own span"

    # A tracestate without a valid traceparent belongs to no trace we continue.
    n = len(be.received)
    doc(get(gw, "/c", [("traceparent", "garbage"), ("tracestate", "congo=t61rcWkgMzE")]))
    for req in be.received[n:]:
        assert parse_traceparent(req.header("traceparent"))[0] != trace
        assert req.headers_all("tracestate") == []


def test_head_request_and_methods(gateway, backend):
    be = backend("b")
    gw = compose(gateway, {"b": be}, [
        {"key": "a", "service": "b", "path": "/a", "method": "DELETE"},
        {"key": "b", "service": "b", "path": "/b", "method": "PUT", "body": {"name": "{query.n}"}},
    ])
    r = get(gw, "/c?n=x", method="HEAD")
    assert r.status == 200 and r.body == b""
    a, b = sorted(be.received, key=lambda q: q.path)
    assert a.method == "DELETE" and a.header("Content-Length") in (None, "0") and a.body == b""
    assert b.method == "PUT" and json.loads(b.body) == {"name": "x"}


def test_composed_and_proxied_requests_share_the_pool(gateway, backend):
    be = backend("b")
    gw = gateway(config({"b": service(be)}, [
        agg_route("agg", "/c", [{"key": "a", "service": "b", "path": "/a"}]),
        route("proxy", "/p", "b"),
    ]))
    assert get(gw, "/p").status == 200
    doc(get(gw, "/c"))
    assert get(gw, "/p").status == 200
    doc(get(gw, "/c"))
    assert be.connections == 1, "one pooled connection for both kinds: %r" % [(r.target, r.conn) for r in be.received]


# ---- configuration ----

def _check(tmp_path, text):
    path = tmp_path / "portico.yaml"
    path.write_text(text)
    return run_portico("check", "-c", str(path)), str(path)


CHECK_HEAD = """\
services:
  s: {targets: ["127.0.0.1:9001"]}
routes:
  - name: agg
    match: {paths: ["/o/{id}"]}
    aggregate:
"""


def test_check_reports_max_calls_cycles_and_unknown_names(tmp_path):
    calls = "".join("        - {key: c%d, service: s, path: /x}\n" % i for i in range(17))
    p, path = _check(tmp_path, CHECK_HEAD + "      calls:\n" + calls)
    assert p.returncode == 1
    assert "%s:24:11: calls: 17 calls, more than max_calls (16)" % path in p.stderr, p.stderr

    p, path = _check(tmp_path, CHECK_HEAD + "      max_calls: 20\n      calls:\n" + calls)
    assert p.returncode == 0, p.stderr

    p, path = _check(tmp_path, CHECK_HEAD + """\
      calls:
        - {key: a, service: s, path: "/a/{b.x}"}
        - {key: b, service: s, path: "/b/{a.x}"}
        - {key: c, service: s, path: "/c/{idd}"}
""")
    assert p.returncode == 1
    assert "%s:9:43: calls form a cycle (each reads the next): a -> b -> a" % path in p.stderr, p.stderr
    assert "%s:10:43: path: unknown name \"idd\"" % path in p.stderr, p.stderr
