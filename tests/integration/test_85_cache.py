"""The cache plugin (SPEC §3 `cache`, §10 "Cache"; docs/cache.md).

Every test uses a real backend that counts what it receives, so "served from
the cache" always means "the backend did not see it".
"""

import re
import threading
import time

import requests

from harness import UPSTREAM_ERRORS, Reply, one_route, request


def cached(be, route_opts=None, service_opts=None, **cache):
    opts = dict(route_opts or {})
    opts["plugins"] = {"cache": cache}
    return one_route(be, route_opts=opts, service_opts=service_opts)


def counting(body=b"hello", headers=(), status=200, delay=0.0):
    """A handler answering body + the request number, so each fetch is visible."""
    n = [0]
    lock = threading.Lock()

    def handler(req):
        with lock:
            n[0] += 1
            k = n[0]
        b = body if isinstance(body, bytes) else body.encode()
        return Reply(status, b + b" #%d" % k, headers=list(headers), delay=delay)

    return handler


def get(gw, path, **kw):
    kw.setdefault("timeout", 10)
    return requests.get(gw.url(path), **kw)


def test_miss_then_hit_with_age(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be, ttl="1m"))
    r1 = get(gw, "/a")
    assert r1.status_code == 200 and r1.headers["X-Cache"] == "MISS"
    assert r1.content == b"hello #1"
    r2 = get(gw, "/a")
    assert r2.status_code == 200 and r2.headers["X-Cache"] == "HIT"
    assert r2.content == b"hello #1"
    assert int(r2.headers["Age"]) >= 0
    assert len(be.received) == 1
    assert r2.headers["X-Request-Id"] != r1.headers["X-Request-Id"]


def test_age_grows_and_counts_upstream_age(gateway, backend):
    be = backend(handler=counting(headers=[("Age", "7")]))
    gw = gateway(cached(be, ttl="1m"))
    get(gw, "/a")
    time.sleep(1.1)
    r = get(gw, "/a")
    assert r.headers["X-Cache"] == "HIT"
    assert int(r.headers["Age"]) >= 8


def test_ttl_expiry_refetches(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be, ttl="500ms", stale_if_error="0s"))
    assert get(gw, "/t").headers["X-Cache"] == "MISS"
    assert get(gw, "/t").headers["X-Cache"] == "HIT"
    time.sleep(0.7)
    r = get(gw, "/t")
    assert r.headers["X-Cache"] == "MISS" and r.content == b"hello #2"
    assert len(be.received) == 2


def test_no_store_is_never_cached(gateway, backend):
    be = backend(handler=counting(headers=[("Cache-Control", "no-store")]))
    gw = gateway(cached(be))
    for i in range(3):
        r = get(gw, "/ns")
        assert r.headers["X-Cache"] == "BYPASS"
        assert r.content == b"hello #%d" % (i + 1)
    assert len(be.received) == 3


def test_private_and_no_cache_are_not_stored(gateway, backend):
    def handler(req):
        cc = "private, max-age=60" if req.path == "/private" else "no-cache"
        return Reply(200, req.path, headers=[("Cache-Control", cc)])

    be = backend(handler=handler)
    gw = gateway(cached(be))
    for path in ("/private", "/nocache"):
        assert get(gw, path).headers["X-Cache"] == "BYPASS"
        assert get(gw, path).headers["X-Cache"] == "BYPASS"
    assert len(be.received) == 4


def test_set_cookie_and_vary_star_are_not_stored(gateway, backend):
    def handler(req):
        h = ("Set-Cookie", "s=1") if req.path == "/cookie" else ("Vary", "*")
        return Reply(200, "x", headers=[h])

    be = backend(handler=handler)
    gw = gateway(cached(be))
    for path in ("/cookie", "/star"):
        get(gw, path)
        assert get(gw, path).headers["X-Cache"] == "BYPASS"
    assert len(be.received) == 4


def test_max_age_wins_over_ttl(gateway, backend):
    be = backend(handler=counting(headers=[("Cache-Control", "max-age=1")]))
    gw = gateway(cached(be, ttl="1h", stale_if_error="0s"))
    get(gw, "/m")
    assert get(gw, "/m").headers["X-Cache"] == "HIT"
    time.sleep(1.3)
    assert get(gw, "/m").headers["X-Cache"] == "MISS"


def test_s_maxage_wins_over_max_age(gateway, backend):
    be = backend(handler=counting(headers=[("Cache-Control", "max-age=0, s-maxage=60")]))
    gw = gateway(cached(be, ttl="1s"))
    get(gw, "/s")
    time.sleep(1.2)
    assert get(gw, "/s").headers["X-Cache"] == "HIT"
    assert len(be.received) == 1


def test_expires_in_the_past_is_not_stored(gateway, backend):
    be = backend(handler=counting(headers=[("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")]))
    gw = gateway(cached(be))
    get(gw, "/e")
    assert get(gw, "/e").headers["X-Cache"] == "BYPASS"


def test_uncacheable_status_is_bypassed(gateway, backend):
    be = backend(handler=counting(status=500))
    gw = gateway(cached(be, stale_if_error="0s"))
    assert get(gw, "/500").headers["X-Cache"] == "BYPASS"
    assert len(be.received) == 1
    get(gw, "/500")
    assert len(be.received) == 2


def test_404_is_cached_by_default(gateway, backend):
    be = backend(handler=counting(status=404))
    gw = gateway(cached(be))
    get(gw, "/missing")
    r = get(gw, "/missing")
    assert r.status_code == 404 and r.headers["X-Cache"] == "HIT"


def test_query_is_part_of_the_key(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be))
    assert get(gw, "/q?a=1").content == b"hello #1"
    assert get(gw, "/q?a=2").content == b"hello #2"
    assert get(gw, "/q?a=1").headers["X-Cache"] == "HIT"
    assert get(gw, "/q").content == b"hello #3"
    assert len(be.received) == 3


def test_vary_header_separates_entries(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "lang=%s" % req.header("Accept-Language")))
    gw = gateway(cached(be, vary=["Accept-Language"]))
    assert get(gw, "/v", headers={"Accept-Language": "fr"}).text == "lang=fr"
    assert get(gw, "/v", headers={"Accept-Language": "de"}).text == "lang=de"
    r = get(gw, "/v", headers={"Accept-Language": "fr"})
    assert r.text == "lang=fr" and r.headers["X-Cache"] == "HIT"
    assert len(be.received) == 2


def test_response_vary_is_honoured(gateway, backend):
    """The upstream's own Vary: a request with other values of that header misses."""
    be = backend(handler=lambda req: Reply(200, "enc=%s" % req.header("Accept-Encoding"),
                                           headers=[("Vary", "Accept-Encoding")]))
    gw = gateway(cached(be))
    assert get(gw, "/rv", headers={"Accept-Encoding": "gzip"}).text == "enc=gzip"
    r = get(gw, "/rv", headers={"Accept-Encoding": "identity"})
    assert r.text == "enc=identity" and r.headers["X-Cache"] == "MISS"
    r = get(gw, "/rv", headers={"Accept-Encoding": "identity"})
    assert r.text == "enc=identity" and r.headers["X-Cache"] == "HIT"


def test_key_parts_header_and_cookie(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "t=%s c=%s" % (req.header("X-Tenant"), req.header("Cookie"))))
    gw = gateway(cached(be, key=["header:X-Tenant", "cookie:team"]))
    assert get(gw, "/k", headers={"X-Tenant": "a"}).headers["X-Cache"] == "MISS"
    assert get(gw, "/k", headers={"X-Tenant": "b"}).headers["X-Cache"] == "MISS"
    assert get(gw, "/k", headers={"X-Tenant": "a"}).headers["X-Cache"] == "HIT"
    assert get(gw, "/k", headers={"X-Tenant": "a", "Cookie": "team=red; x=1"}).headers["X-Cache"] == "MISS"
    r = get(gw, "/k", headers={"X-Tenant": "a", "Cookie": "x=2; team=red"})
    assert r.headers["X-Cache"] == "HIT"
    assert len(be.received) == 3


def test_other_methods_bypass(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be))
    r = requests.post(gw.url("/p"), data=b"x", timeout=10)
    assert r.headers["X-Cache"] == "BYPASS"
    requests.post(gw.url("/p"), data=b"x", timeout=10)
    assert len(be.received) == 2


def test_head_is_served_from_the_get_entry(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be))
    get(gw, "/h")
    r = request(gw.port, "HEAD", "/h", host="127.0.0.1")
    assert r.status == 200 and r.header("X-Cache") == "HIT"
    assert r.header("Content-Length") == str(len(b"hello #1")) and r.body == b""
    assert len(be.received) == 1


def test_head_miss_goes_upstream_and_stores_nothing(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be))
    r = request(gw.port, "HEAD", "/h2", host="127.0.0.1")
    assert r.status == 200 and r.header("X-Cache") == "MISS"
    assert get(gw, "/h2").headers["X-Cache"] == "MISS"
    assert [q.method for q in be.received] == ["HEAD", "GET"]


def test_client_no_cache_ignored_by_default(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be))
    get(gw, "/c")
    r = get(gw, "/c", headers={"Cache-Control": "no-cache"})
    assert r.headers["X-Cache"] == "HIT"


def test_client_no_cache_honoured_when_asked(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be, honor_client_no_cache=True))
    get(gw, "/c")
    r = get(gw, "/c", headers={"Cache-Control": "no-cache"})
    assert r.headers["X-Cache"] == "BYPASS" and r.content == b"hello #2"
    r = get(gw, "/c")  # the bypass refreshed the entry
    assert r.headers["X-Cache"] == "HIT" and r.content == b"hello #2"


def test_authorization_requests_are_not_stored_without_public(gateway, backend):
    def handler(req):
        cc = "public, max-age=60" if req.path == "/pub" else "max-age=60"
        return Reply(200, req.path, headers=[("Cache-Control", cc)])

    be = backend(handler=handler)
    gw = gateway(cached(be))
    auth = {"Authorization": "Bearer x"}
    get(gw, "/priv", headers=auth)
    assert get(gw, "/priv", headers=auth).headers["X-Cache"] == "BYPASS"
    get(gw, "/pub", headers=auth)
    assert get(gw, "/pub", headers=auth).headers["X-Cache"] == "HIT"


def test_routes_do_not_share_entries(gateway, backend):
    be = backend(handler=lambda req: Reply(200, req.path))
    cfg = {
        "services": {"svc": {"targets": [be.addr]}},
        "routes": [
            {"name": "one", "match": {"paths": ["/x"], "headers": {"X-R": "1"}}, "service": "svc",
             "plugins": {"cache": {}}},
            {"name": "two", "match": {"paths": ["/x"]}, "service": "svc", "plugins": {"cache": {}}},
        ],
    }
    gw = gateway(cfg)
    get(gw, "/x", headers={"X-R": "1"})
    assert get(gw, "/x").headers["X-Cache"] == "MISS"
    assert len(be.received) == 2


def test_concurrent_misses_reach_the_backend_once(gateway, backend):
    be = backend(handler=counting(delay=0.5))
    gw = gateway(cached(be), workers=2)
    results = []
    lock = threading.Lock()

    def one():
        r = get(gw, "/slow", timeout=20)
        with lock:
            results.append((r.status_code, r.content, r.headers.get("X-Cache")))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 50
    assert all(st == 200 and body == b"hello #1" for st, body, _ in results), results[:5]
    assert sum(1 for _, _, xc in results if xc == "MISS") == 1
    assert len(be.received) == 1


def test_concurrent_misses_not_storable_all_go_upstream(gateway, backend):
    be = backend(handler=counting(delay=0.3, headers=[("Cache-Control", "no-store")]))
    gw = gateway(cached(be), workers=2)
    results = []

    def one():
        results.append(get(gw, "/ns", timeout=20).status_code)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 10
    assert len(be.received) == 10


def test_waiters_that_leave_do_not_break_the_fill(gateway, backend):
    be = backend(handler=counting(delay=0.6))
    gw = gateway(cached(be), workers=2)
    leader = threading.Thread(target=lambda: get(gw, "/w", timeout=20))
    leader.start()
    time.sleep(0.1)
    for _ in range(5):  # clients that give up while waiting
        try:
            get(gw, "/w", timeout=0.2)
        except requests.exceptions.Timeout:
            pass
    leader.join()
    r = get(gw, "/w")
    assert r.headers["X-Cache"] == "HIT" and r.content == b"hello #1"


def test_stale_if_error_when_backend_is_down(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be, ttl="300ms", stale_if_error="1m"), expect_errors=[UPSTREAM_ERRORS])
    assert get(gw, "/s").content == b"hello #1"
    be.stop()
    time.sleep(0.5)
    r = get(gw, "/s")
    assert r.status_code == 200 and r.headers["X-Cache"] == "STALE"
    assert r.content == b"hello #1"


def test_stale_if_error_on_503_answer(gateway, backend):
    state = {"fail": False}

    def handler(req):
        if state["fail"]:
            return Reply(503, "down")
        return Reply(200, "good")

    be = backend(handler=handler)
    gw = gateway(cached(be, ttl="300ms"))
    get(gw, "/s")
    state["fail"] = True
    time.sleep(0.5)
    r = get(gw, "/s")
    assert r.status_code == 200 and r.text == "good" and r.headers["X-Cache"] == "STALE"


def test_stale_if_error_window_ends(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be, ttl="200ms", stale_if_error="300ms"), expect_errors=[UPSTREAM_ERRORS])
    get(gw, "/s")
    be.stop()
    time.sleep(0.7)
    assert get(gw, "/s").status_code == 502


def test_must_revalidate_disables_stale(gateway, backend):
    be = backend(handler=counting(headers=[("Cache-Control", "max-age=1, must-revalidate")]))
    gw = gateway(cached(be, stale_if_error="1m"), expect_errors=[UPSTREAM_ERRORS])
    get(gw, "/mr")
    be.stop()
    time.sleep(1.2)
    assert get(gw, "/mr").status_code == 502


def test_stale_while_revalidate_serves_stale_then_refreshes(gateway, backend):
    be = backend(handler=counting(delay=0.2))
    gw = gateway(cached(be, ttl="500ms", stale_while_revalidate="30s"))
    assert get(gw, "/swr").content == b"hello #1"
    time.sleep(0.7)
    t0 = time.monotonic()
    r = get(gw, "/swr")
    assert r.headers["X-Cache"] == "STALE" and r.content == b"hello #1"
    assert time.monotonic() - t0 < 0.15, "stale answer waited for the refresh"
    r = get(gw, "/swr")  # the refresh is still running: stale again, no second refresh
    assert r.headers["X-Cache"] == "STALE"
    be.wait_for(2)
    time.sleep(0.3)
    r = get(gw, "/swr")
    assert r.headers["X-Cache"] == "HIT" and r.content == b"hello #2"
    assert len(be.received) == 2


def test_lru_eviction_within_max_memory(gateway, backend):
    be = backend(handler=lambda req: Reply(200, b"x" * 3000))
    gw = gateway(cached(be, max_memory="64k"))
    for i in range(60):
        get(gw, "/big/%d" % i)
    assert get(gw, "/big/59").headers["X-Cache"] == "HIT"
    assert get(gw, "/big/0").headers["X-Cache"] == "MISS"


def test_large_bodies_are_streamed_not_stored(gateway, backend):
    big = b"y" * (9 << 20)
    be = backend(handler=lambda req: Reply(200, big))
    gw = gateway(cached(be))
    r = get(gw, "/huge")
    assert r.content == big and r.headers["X-Cache"] == "BYPASS"


def test_store_redis_is_not_supported_yet(gateway, backend, tmp_path):
    from harness import run_portico
    from harness.yamlgen import to_yaml
    be = backend()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(to_yaml(cached(be, store="redis")))
    p = run_portico("check", "-c", str(cfg))
    assert p.returncode == 1
    assert re.search(r"c\.yaml:\d+:\d+: .*store: redis is not supported yet", p.stderr), p.stderr


def test_reload_keeps_the_cache(gateway, backend):
    be = backend(handler=counting())
    gw = gateway(cached(be))
    get(gw, "/r")
    gw.reload(cached(be, ttl="2m"))
    time.sleep(0.5)
    assert get(gw, "/r").headers["X-Cache"] == "HIT"
