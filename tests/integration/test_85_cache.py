"""The cache plugin (SPEC §3 `cache`, §10 "Cache"; docs/cache.md).

Every test uses a real backend that counts what it receives, so "served from
the cache" always means "the backend did not see it".
"""

import re
import threading
import signal
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


def test_refresh_still_running_when_the_drain_times_out(gateway, backend):
    """A background refresh outliving drain_timeout is cancelled and freed
    with the worker: the gateway exits 0 at the deadline, and under the
    sanitizers (make test) the teardown finds no leak report."""
    be = backend(handler=counting(delay=2.5))
    cfg = cached(be, ttl="500ms", stale_while_revalidate="30s")
    cfg["server"] = {"drain_timeout": "300ms"}
    gw = gateway(cfg)
    assert get(gw, "/swr").status_code == 200  # the fill waits for the slow backend
    time.sleep(0.7)
    assert get(gw, "/swr").headers["X-Cache"] == "STALE"  # and starts a refresh
    time.sleep(0.2)
    t0 = time.monotonic()
    gw.signal(signal.SIGTERM)
    assert gw.wait_exit(10) == 0
    assert time.monotonic() - t0 < 2.0, "the drain waited for the refresh past its deadline"
    assert "drain timeout: closing 1 remaining connection" in gw.log()


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


# ---- conditional requests (RFC 9110 §13, RFC 9111 §4.3) ----------------------------

LM = "Wed, 01 Jan 2020 00:00:00 GMT"


class Origin:
    """A service with validators: answers 304 when the request's If-None-Match
    (or If-Modified-Since) matches the current version, 200 otherwise."""

    def __init__(self, etag='"v1"', last_modified=None, cc="max-age=60", cc304=None, delay=0.0,
                 body="v1"):
        self.etag = etag
        self.last_modified = last_modified
        self.cc = cc
        self.cc304 = cc304
        self.delay = delay
        self.body = body
        self.n = 0
        self.lock = threading.Lock()
        self.seen = []  # (If-None-Match, If-Modified-Since) of every request

    def __call__(self, req):
        with self.lock:
            self.n += 1
            k = self.n
            inm, ims = req.header("If-None-Match"), req.header("If-Modified-Since")
            self.seen.append((inm, ims))
        hs = []
        if self.etag:
            hs.append(("ETag", self.etag))
        if self.last_modified:
            hs.append(("Last-Modified", self.last_modified))
        if self.cc:
            hs.append(("Cache-Control", self.cc))
        same = (inm is not None and self.etag and inm == self.etag) or \
               (inm is None and ims is not None and self.last_modified and ims == self.last_modified)
        if same:
            hs304 = [h for h in hs if h[0] != "Cache-Control"]
            hs304.append(("Cache-Control", self.cc304 or self.cc))
            return Reply(304, b"", headers=hs304, delay=self.delay)
        return Reply(200, "%s #%d" % (self.body, k), headers=hs + [("Content-Type", "text/plain")],
                     delay=self.delay)


def test_client_if_none_match_on_a_hit_gets_304(gateway, backend):
    be = backend(handler=Origin())
    gw = gateway(cached(be))
    r = get(gw, "/c")
    assert r.status_code == 200 and r.headers["X-Cache"] == "MISS"
    for inm in ('"v1"', 'W/"v1"', '"x", W/"v1"', "*", '"a",  "v1" , "b"'):
        r = request(gw.port, "GET", "/c", headers=[("If-None-Match", inm)], host="127.0.0.1")
        assert r.status == 304, (inm, r.status)
        assert r.body == b""
        assert r.header("ETag") == '"v1"' and r.header("Cache-Control") == "max-age=60"
        assert r.header("X-Cache") == "HIT" and r.header("Age") is not None
        assert r.header("X-Request-Id")
        assert r.header("Content-Type") is None and r.header("Content-Length") is None
    r = request(gw.port, "HEAD", "/c", headers=[("If-None-Match", '"v1"')], host="127.0.0.1")
    assert r.status == 304 and r.body == b""
    assert len(be.received) == 1


def test_client_if_none_match_mismatch_gets_200(gateway, backend):
    be = backend(handler=Origin())
    gw = gateway(cached(be))
    get(gw, "/c")
    for inm in ('"v2"', '"v1', "v1", '"x", garbage, "v1"'):
        r = get(gw, "/c", headers={"If-None-Match": inm})
        assert r.status_code == 200 and r.content == b"v1 #1", inm
        assert r.headers["X-Cache"] == "HIT"
    assert len(be.received) == 1


def test_client_if_modified_since(gateway, backend):
    be = backend(handler=Origin(etag=None, last_modified=LM))
    gw = gateway(cached(be))
    get(gw, "/m")
    cases = [
        (LM, 304),
        ("Thu, 02 Jan 2020 00:00:00 GMT", 304),  # after Last-Modified
        ("Tue, 31 Dec 2019 23:59:59 GMT", 200),  # before
        ("Wednesday, 01-Jan-20 00:00:00 GMT", 304),  # RFC 850 form
        ("yesterday", 200),  # not a date: ignored
        (LM + " x", 200),
    ]
    for ims, want in cases:
        r = get(gw, "/m", headers={"If-Modified-Since": ims})
        assert r.status_code == want, (ims, r.status_code)
        assert r.headers["X-Cache"] == "HIT"
        if want == 304:
            assert r.content == b"" and r.headers["Last-Modified"] == LM
        else:
            assert r.content == b"v1 #1"
    assert len(be.received) == 1


def test_if_none_match_wins_over_if_modified_since(gateway, backend):
    be = backend(handler=Origin(last_modified=LM))
    gw = gateway(cached(be))
    get(gw, "/b")
    r = get(gw, "/b", headers={"If-None-Match": '"other"', "If-Modified-Since": LM})
    assert r.status_code == 200
    r = get(gw, "/b", headers={"If-None-Match": '"v1"', "If-Modified-Since": "Tue, 31 Dec 2019 00:00:00 GMT"})
    assert r.status_code == 304
    assert "Last-Modified" not in r.headers  # a 304 with an ETag leaves it out (RFC 9110 §15.4.5)
    assert len(be.received) == 1


def test_stale_entry_is_revalidated_with_the_service(gateway, backend):
    origin = Origin(cc="max-age=1")
    be = backend(handler=origin)
    gw = gateway(cached(be))
    assert get(gw, "/r").content == b"v1 #1"
    time.sleep(1.3)
    r = get(gw, "/r")
    assert r.status_code == 200 and r.content == b"v1 #1"
    assert r.headers["X-Cache"] == "HIT"
    assert r.headers["Content-Type"] == "text/plain" and r.headers["ETag"] == '"v1"'
    assert len(be.received) == 2
    assert origin.seen[1] == ('"v1"', None)
    r = get(gw, "/r")  # fresh again: no request to the service
    assert r.headers["X-Cache"] == "HIT" and r.content == b"v1 #1"
    assert len(be.received) == 2


def test_revalidation_sends_both_validators(gateway, backend):
    origin = Origin(cc="max-age=1", last_modified=LM)
    be = backend(handler=origin)
    gw = gateway(cached(be))
    get(gw, "/r")
    time.sleep(1.3)
    assert get(gw, "/r").headers["X-Cache"] == "HIT"
    assert origin.seen[1] == ('"v1"', LM)


def test_304_with_a_new_max_age_extends_freshness(gateway, backend):
    be = backend(handler=Origin(cc="max-age=1", cc304="max-age=60"))
    gw = gateway(cached(be))
    get(gw, "/x")
    time.sleep(1.3)
    r = get(gw, "/x")
    assert r.headers["X-Cache"] == "HIT" and r.headers["Cache-Control"] == "max-age=60"
    assert len(be.received) == 2
    time.sleep(1.3)
    r = get(gw, "/x")
    assert r.headers["X-Cache"] == "HIT" and r.content == b"v1 #1"
    assert len(be.received) == 2


def test_revalidation_answered_with_200_replaces_the_entry(gateway, backend):
    origin = Origin(cc="max-age=1")
    be = backend(handler=origin)
    gw = gateway(cached(be))
    get(gw, "/n")
    origin.etag, origin.body = '"v2"', "v2"
    time.sleep(1.3)
    r = get(gw, "/n")
    assert r.status_code == 200 and r.content == b"v2 #2" and r.headers["X-Cache"] == "MISS"
    assert origin.seen[1] == ('"v1"', None)
    r = get(gw, "/n")
    assert r.content == b"v2 #2" and r.headers["X-Cache"] == "HIT" and r.headers["ETag"] == '"v2"'
    assert len(be.received) == 2


def test_client_conditional_with_a_stale_entry(gateway, backend):
    """The service sees the cache's validators, not the client's; the client's are
    evaluated on the refreshed entry."""
    origin = Origin(cc="max-age=1")
    be = backend(handler=origin)
    gw = gateway(cached(be))
    get(gw, "/s")
    time.sleep(1.3)
    r = get(gw, "/s", headers={"If-None-Match": '"v1"'})
    assert r.status_code == 304 and r.headers["X-Cache"] == "HIT"
    time.sleep(1.3)
    r = get(gw, "/s", headers={"If-None-Match": '"old"'})
    assert r.status_code == 200 and r.content == b"v1 #1"
    assert origin.seen[1:] == [('"v1"', None), ('"v1"', None)]


def test_client_conditional_on_a_miss_fills_the_cache(gateway, backend):
    origin = Origin()
    be = backend(handler=origin)
    gw = gateway(cached(be))
    r = get(gw, "/f", headers={"If-None-Match": '"v1"'})
    assert r.status_code == 304 and r.content == b"" and r.headers["X-Cache"] == "MISS"
    assert r.headers["ETag"] == '"v1"' and "Content-Type" not in r.headers
    assert origin.seen == [(None, None)]  # the client's conditional was not forwarded
    r = get(gw, "/f")
    assert r.status_code == 200 and r.content == b"v1 #1" and r.headers["X-Cache"] == "HIT"
    r = get(gw, "/g", headers={"If-None-Match": '"nope"'})
    assert r.status_code == 200 and r.content == b"v1 #2"


def test_no_cache_response_is_stored_and_revalidated_every_time(gateway, backend):
    origin = Origin(cc="no-cache")
    be = backend(handler=origin)
    gw = gateway(cached(be))
    r = get(gw, "/nc")
    assert r.headers["X-Cache"] == "MISS" and r.content == b"v1 #1"
    for i in range(3):
        r = get(gw, "/nc")
        assert r.status_code == 200 and r.content == b"v1 #1" and r.headers["X-Cache"] == "HIT"
        assert len(be.received) == i + 2
        assert origin.seen[-1] == ('"v1"', None)
    # The 304s leave their upstream connection clean: it is reused, not reopened.
    assert len({q.conn for q in be.received}) == 1, [q.conn for q in be.received]
    origin.etag, origin.body = '"v2"', "v2"
    r = get(gw, "/nc")
    assert r.content == b"v2 #5" and r.headers["X-Cache"] == "MISS"


def test_no_cache_without_validator_is_not_stored(gateway, backend):
    be = backend(handler=Origin(etag=None, cc="no-cache, max-age=60"))
    gw = gateway(cached(be))
    assert get(gw, "/nv").headers["X-Cache"] == "BYPASS"
    assert get(gw, "/nv").headers["X-Cache"] == "BYPASS"
    assert len(be.received) == 2


def test_no_cache_with_field_names_is_not_stored(gateway, backend):
    be = backend(handler=Origin(cc='no-cache="Set-Cookie2", max-age=60'))
    gw = gateway(cached(be))
    get(gw, "/nf")
    assert get(gw, "/nf").headers["X-Cache"] == "BYPASS"


def test_no_cache_entry_is_not_served_stale_when_the_service_is_down(gateway, backend):
    be = backend(handler=Origin(cc="no-cache"))
    gw = gateway(cached(be, stale_if_error="1m"), expect_errors=[UPSTREAM_ERRORS])
    get(gw, "/nd")
    be.stop()
    assert get(gw, "/nd").status_code == 502


def test_stale_if_error_when_the_revalidation_fails(gateway, backend):
    be = backend(handler=Origin(cc="max-age=1"))
    gw = gateway(cached(be, stale_if_error="1m"), expect_errors=[UPSTREAM_ERRORS])
    get(gw, "/se")
    be.stop()
    time.sleep(1.3)
    r = get(gw, "/se")
    assert r.status_code == 200 and r.headers["X-Cache"] == "STALE" and r.content == b"v1 #1"
    r = get(gw, "/se", headers={"If-None-Match": '"v1"'})
    assert r.status_code == 304 and r.headers["X-Cache"] == "STALE"


def test_revalidation_is_coalesced(gateway, backend):
    origin = Origin(cc="max-age=1", delay=0.5)
    be = backend(handler=origin)
    gw = gateway(cached(be), workers=2)
    get(gw, "/co")
    time.sleep(1.3)
    results = []
    lock = threading.Lock()

    def one():
        r = get(gw, "/co", timeout=20)
        with lock:
            results.append((r.status_code, r.content, r.headers.get("X-Cache")))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(200, b"v1 #1", "HIT")] * 20
    assert len(be.received) == 2


def test_stale_while_revalidate_refresh_is_conditional(gateway, backend):
    origin = Origin(cc="max-age=1", delay=0.2)
    be = backend(handler=origin)
    gw = gateway(cached(be, stale_while_revalidate="30s"))
    get(gw, "/sw")
    time.sleep(1.3)
    r = get(gw, "/sw")
    assert r.headers["X-Cache"] == "STALE" and r.content == b"v1 #1"
    be.wait_for(2)
    time.sleep(0.4)
    assert origin.seen[1] == ('"v1"', None)
    r = get(gw, "/sw")
    assert r.headers["X-Cache"] == "HIT" and r.content == b"v1 #1"
    assert len(be.received) == 2


def test_not_modified_in_access_log_and_metrics(gateway, backend):
    import json
    import os
    be = backend(handler=Origin())
    cfg = cached(be)
    cfg["admin"] = {"listen": "127.0.0.1:@ADMIN_PORT@"}
    cfg["routes"][0]["plugins"]["access-log"] = {"path": "access.log"}
    gw = gateway(cfg)
    get(gw, "/l")
    r = get(gw, "/l", headers={"If-None-Match": '"v1"'})
    assert r.status_code == 304
    log = os.path.join(gw.dir, "access.log")
    deadline = time.monotonic() + 5
    docs = []
    while time.monotonic() < deadline and len(docs) < 2:
        with open(log) as f:
            docs = [json.loads(ln) for ln in f.read().splitlines() if ln.strip()]
        time.sleep(0.05)
    assert [(d["status"], d["cache"]) for d in docs] == [(200, "miss"), (304, "hit")]
    m = requests.get(gw.admin_url("/metrics"), timeout=10).text
    assert re.search(r'portico_requests_total\{[^}]*status="304"[^}]*\} 1', m), m
    assert re.search(r'portico_cache_requests_total\{route="main",result="hit"\} 1', m), m


def test_entry_past_its_stale_windows_is_kept_for_revalidation(gateway, backend):
    origin = Origin(cc="max-age=1")
    be = backend(handler=origin)
    gw = gateway(cached(be, stale_if_error="0s"))
    get(gw, "/k")
    time.sleep(1.3)
    r = get(gw, "/k")
    assert r.headers["X-Cache"] == "HIT" and r.content == b"v1 #1"
    assert origin.seen[1] == ('"v1"', None)


def test_revalidate_window_zero(gateway, backend):
    origin = Origin(cc="max-age=1")
    be = backend(handler=origin)
    gw = gateway(cached(be, stale_if_error="0s", revalidate_window="0s"))
    get(gw, "/z")
    time.sleep(1.3)
    r = get(gw, "/z")
    assert r.headers["X-Cache"] == "MISS" and r.content == b"v1 #2"
    assert origin.seen[1] == (None, None)
    be2 = backend(handler=Origin(cc="no-cache"))
    gw2 = gateway(cached(be2, revalidate_window="0s"))
    assert get(gw2, "/z").headers["X-Cache"] == "BYPASS"
    assert get(gw2, "/z").headers["X-Cache"] == "BYPASS"


# ---- ranges (RFC 9110 §14) ----------------------------------------------------------

BODY100 = bytes(range(48, 48 + 50)) * 2  # 100 bytes, printable


class RangeOrigin:
    """A fixed body with validators; counts requests, remembers their Range and
    If-Range, and (like most servers) answers a Range it sees with a 206."""

    def __init__(self, body=BODY100, etag='"r1"', last_modified=None, date=None, cc="max-age=60",
                 honour_range=True):
        self.body = body
        self.etag = etag
        self.last_modified = last_modified
        self.date = date
        self.cc = cc
        self.honour_range = honour_range
        self.seen = []  # (Range, If-Range) of every request
        self.lock = threading.Lock()

    def __call__(self, req):
        rng = req.header("Range")
        with self.lock:
            self.seen.append((rng, req.header("If-Range")))
        hs = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes")]
        if self.etag:
            hs.append(("ETag", self.etag))
        if self.last_modified:
            hs.append(("Last-Modified", self.last_modified))
        if self.date:
            hs.append(("Date", self.date))
        if self.cc:
            hs.append(("Cache-Control", self.cc))
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        if self.honour_range and m:
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else len(self.body) - 1
            b = min(b, len(self.body) - 1)
            hs.append(("Content-Range", "bytes %d-%d/%d" % (a, b, len(self.body))))
            return Reply(206, self.body[a:b + 1], headers=hs)
        return Reply(200, self.body, headers=hs)


def ranged(gw, path, rng, **headers):
    headers["Range"] = rng
    return get(gw, path, headers=headers)


def assert_part(r, body, first, last, cache="HIT"):
    assert r.status_code == 206, (r.status_code, r.content[:200])
    assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (first, last, len(body))
    assert r.headers["Content-Length"] == str(last - first + 1)
    assert r.content == body[first:last + 1]
    assert r.headers["X-Cache"] == cache
    assert r.headers["Accept-Ranges"] == "bytes"


def test_range_forms_on_a_hit(gateway, backend):
    origin = RangeOrigin()
    be = backend(handler=origin)
    gw = gateway(cached(be))
    r = get(gw, "/r")
    assert r.status_code == 200 and r.content == BODY100 and r.headers["X-Cache"] == "MISS"
    assert r.headers["Accept-Ranges"] == "bytes"
    r = get(gw, "/r")
    assert r.status_code == 200 and r.headers["Accept-Ranges"] == "bytes"
    assert r.headers.get("Content-Range") is None
    cases = [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
        ("bytes=90-200", 90, 99),  # the last position is clamped
        ("bytes=-100", 0, 99),
        ("bytes=-1000", 0, 99),  # a suffix longer than the body: all of it
        ("bytes=99-99", 99, 99),
        ("BYTES=1-1", 1, 1),  # the unit is case-insensitive
        ("bytes=, 3-4", 3, 4),  # empty list elements and whitespace (the 1# rule)
        ("bytes=3-4 ,", 3, 4),
        ("bytes=000-0007", 0, 7),
        ("bytes=5-99999999999999999999999", 5, 99),  # huge: clamped, no overflow
    ]
    for rng, a, b in cases:
        r = ranged(gw, "/r", rng)
        assert_part(r, BODY100, a, b)
        assert r.headers["ETag"] == '"r1"' and r.headers["Content-Type"] == "application/octet-stream"
        assert int(r.headers["Age"]) >= 0 and r.headers["X-Request-Id"]
    raw = request(gw.port, "GET", "/r", headers=[("Range", "bytes=2-3")], host="127.0.0.1")
    assert raw.status == 206 and raw.body == BODY100[2:4]
    assert len(raw.headers_all("Accept-Ranges")) == 1 and len(raw.headers_all("Content-Range")) == 1
    assert len(be.received) == 1


def test_unsatisfiable_range_is_416(gateway, backend):
    be = backend(handler=RangeOrigin())
    gw = gateway(cached(be))
    get(gw, "/u")
    for rng in ("bytes=100-", "bytes=100-200", "bytes=5000-6000", "bytes=-0",
                "bytes=99999999999999999999999-"):
        r = ranged(gw, "/u", rng)
        assert r.status_code == 416, (rng, r.status_code)
        assert r.headers["Content-Range"] == "bytes */100"
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["status"] == 416
        assert r.headers["X-Cache"] == "HIT" and r.headers["X-Request-Id"]
    assert len(be.received) == 1


def test_ignored_ranges_get_the_whole_body(gateway, backend):
    be = backend(handler=RangeOrigin())
    gw = gateway(cached(be))
    get(gw, "/i")
    for rng in ("bytes=0-1,5-6", "bytes=0-1, -3", "bytes=0-1,100-", "items=0-5", "bytes 0-5",
                "bytes =0-5", "bytes=5-2", "bytes=abc", "bytes=", "bytes=-", "bytes=1-2-3",
                "bytes=0x1-2", "", "bytes=- 5"):
        r = ranged(gw, "/i", rng)
        assert r.status_code == 200, (rng, r.status_code)
        assert r.content == BODY100 and "Content-Range" not in r.headers
        assert r.headers["X-Cache"] == "HIT" and r.headers["Accept-Ranges"] == "bytes"
    raw = request(gw.port, "GET", "/i", headers=[("Range", "bytes=0-1"), ("Range", "bytes=2-3")],
                  host="127.0.0.1")
    assert raw.status == 200 and raw.body == BODY100  # two Range lines: ignored
    assert len(be.received) == 1


def test_if_range_with_an_entity_tag(gateway, backend):
    be = backend(handler=RangeOrigin())
    gw = gateway(cached(be))
    get(gw, "/e")
    assert_part(ranged(gw, "/e", "bytes=0-3", **{"If-Range": '"r1"'}), BODY100, 0, 3)
    for ir in ('"r2"', 'W/"r1"', '"r1', "r1", '"r1", "r2"', ""):
        r = ranged(gw, "/e", "bytes=0-3", **{"If-Range": ir})
        assert r.status_code == 200 and r.content == BODY100, ir
    # If-Range is evaluated before the range: no match means 200, even for a range past the end
    r = ranged(gw, "/e", "bytes=500-", **{"If-Range": '"r2"'})
    assert r.status_code == 200 and r.content == BODY100
    r = ranged(gw, "/e", "bytes=500-", **{"If-Range": '"r1"'})
    assert r.status_code == 416
    assert len(be.received) == 1


def test_if_range_weak_etag_never_matches(gateway, backend):
    be = backend(handler=RangeOrigin(etag='W/"w1"'))
    gw = gateway(cached(be))
    get(gw, "/w")
    assert_part(ranged(gw, "/w", "bytes=0-3"), BODY100, 0, 3)
    for ir in ('W/"w1"', '"w1"'):
        r = ranged(gw, "/w", "bytes=0-3", **{"If-Range": ir})
        assert r.status_code == 200 and r.content == BODY100, ir
    assert len(be.received) == 1


def test_if_range_with_a_date(gateway, backend):
    from email.utils import formatdate
    now = formatdate(time.time(), usegmt=True)
    be = backend(handler=RangeOrigin(etag=None, last_modified=LM, date=now))
    gw = gateway(cached(be))
    get(gw, "/d")
    assert_part(ranged(gw, "/d", "bytes=1-2", **{"If-Range": LM}), BODY100, 1, 2)
    for ir in ("Thu, 02 Jan 2020 00:00:00 GMT", "Tue, 31 Dec 2019 23:59:59 GMT", "yesterday",
               LM + " x"):
        r = ranged(gw, "/d", "bytes=1-2", **{"If-Range": ir})
        assert r.status_code == 200 and r.content == BODY100, ir
    # A Last-Modified equal to the Date is a weak validator (RFC 9110 §8.8.2.2): no match.
    be2 = backend(handler=RangeOrigin(etag=None, last_modified=now, date=now))
    gw2 = gateway(cached(be2))
    get(gw2, "/d")
    r = ranged(gw2, "/d", "bytes=1-2", **{"If-Range": now})
    assert r.status_code == 200 and r.content == BODY100
    assert_part(ranged(gw2, "/d", "bytes=1-2"), BODY100, 1, 2)


def test_if_none_match_wins_over_range(gateway, backend):
    be = backend(handler=RangeOrigin(last_modified=LM))
    gw = gateway(cached(be))
    get(gw, "/c")
    r = ranged(gw, "/c", "bytes=0-3", **{"If-None-Match": '"r1"'})
    assert r.status_code == 304 and r.content == b"" and "Content-Range" not in r.headers
    r = ranged(gw, "/c", "bytes=500-", **{"If-Modified-Since": LM})
    assert r.status_code == 304
    r = ranged(gw, "/c", "bytes=0-3", **{"If-None-Match": '"other"'})
    assert_part(r, BODY100, 0, 3)
    assert len(be.received) == 1


def test_miss_with_range_fills_the_whole_entry(gateway, backend):
    origin = RangeOrigin()
    be = backend(handler=origin)
    gw = gateway(cached(be))
    r = ranged(gw, "/m", "bytes=10-19", **{"If-Range": '"r1"'})
    # the filler's own client gets its range, cut from the full response just stored
    assert_part(r, BODY100, 10, 19, cache="MISS")
    assert origin.seen == [(None, None)]  # neither Range nor If-Range went upstream
    r = ranged(gw, "/m", "bytes=-10")
    assert_part(r, BODY100, 90, 99)
    r = get(gw, "/m")
    assert r.status_code == 200 and r.content == BODY100 and r.headers["X-Cache"] == "HIT"
    assert len(be.received) == 1


def test_miss_with_an_unsatisfiable_range(gateway, backend):
    origin = RangeOrigin()
    be = backend(handler=origin)
    gw = gateway(cached(be))
    r = ranged(gw, "/m4", "bytes=100-")
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */100"
    assert r.headers["X-Cache"] == "MISS" and r.json()["status"] == 416
    assert r.headers["Content-Type"] == "application/problem+json" and "ETag" not in r.headers
    assert origin.seen == [(None, None)]
    r = get(gw, "/m4")
    assert r.status_code == 200 and r.content == BODY100 and r.headers["X-Cache"] == "HIT"
    assert len(be.received) == 1


def test_range_on_a_miss_ignored_when_the_response_is_not_stored(gateway, backend):
    """The filler asked for the whole response; when it cannot be stored the client gets
    all of it (200), which RFC 9110 §14.2 allows."""
    origin = RangeOrigin(cc="no-store")
    be = backend(handler=origin)
    gw = gateway(cached(be))
    r = ranged(gw, "/ns", "bytes=0-3")
    assert r.status_code == 200 and r.content == BODY100 and r.headers["X-Cache"] == "BYPASS"
    assert origin.seen == [(None, None)]


def test_206_from_upstream_is_never_stored(gateway, backend):
    origin = RangeOrigin()
    be = backend(handler=origin)
    gw = gateway(cached(be, honor_client_no_cache=True, statuses=[200, 206]))
    r = ranged(gw, "/p", "bytes=0-3", **{"Cache-Control": "no-cache"})
    assert r.status_code == 206 and r.content == BODY100[:4] and r.headers["X-Cache"] == "BYPASS"
    assert r.headers["Content-Range"] == "bytes 0-3/100"  # the upstream's, passed through
    assert origin.seen == [("bytes=0-3", None)]  # a bypass forwards the client's Range
    r = get(gw, "/p")
    assert r.status_code == 200 and r.content == BODY100 and r.headers["X-Cache"] == "MISS"
    assert len(be.received) == 2


def test_head_with_range(gateway, backend):
    origin = RangeOrigin()
    be = backend(handler=origin)
    gw = gateway(cached(be))
    # a HEAD miss goes upstream as it came, Range included, and stores nothing
    r = request(gw.port, "HEAD", "/h", headers=[("Range", "bytes=0-3")], host="127.0.0.1")
    assert origin.seen == [("bytes=0-3", None)]
    get(gw, "/h")
    r = request(gw.port, "HEAD", "/h", headers=[("Range", "bytes=5-14")], host="127.0.0.1")
    assert r.status == 206 and r.body == b""
    assert r.header("Content-Range") == "bytes 5-14/100" and r.header("Content-Length") == "10"
    assert r.header("X-Cache") == "HIT"
    r = request(gw.port, "HEAD", "/h", headers=[("Range", "bytes=100-")], host="127.0.0.1")
    assert r.status == 416 and r.body == b"" and r.header("Content-Range") == "bytes */100"
    assert len(be.received) == 2


def test_large_body_sliced_at_the_end(gateway, backend):
    big = bytes((i * 7 + i // 251) & 0xFF for i in range(1 << 20))
    be = backend(handler=RangeOrigin(body=big))
    gw = gateway(cached(be))
    r = ranged(gw, "/big", "bytes=1048000-")
    assert_part(r, big, 1048000, (1 << 20) - 1, cache="MISS")
    assert_part(ranged(gw, "/big", "bytes=-1"), big, (1 << 20) - 1, (1 << 20) - 1)
    assert_part(ranged(gw, "/big", "bytes=-65536"), big, (1 << 20) - 65536, (1 << 20) - 1)
    assert_part(ranged(gw, "/big", "bytes=123457-987653"), big, 123457, 987653)
    r = get(gw, "/big")
    assert r.status_code == 200 and r.content == big
    assert len(be.received) == 1


def test_range_on_a_stale_answer(gateway, backend):
    be = backend(handler=RangeOrigin(cc="max-age=1"))
    gw = gateway(cached(be, stale_if_error="1m"), expect_errors=[UPSTREAM_ERRORS])
    get(gw, "/st")
    be.stop()
    time.sleep(1.3)
    assert_part(ranged(gw, "/st", "bytes=0-0"), BODY100, 0, 0, cache="STALE")


def test_ranges_in_access_log_and_metrics(gateway, backend):
    import json
    import os
    be = backend(handler=RangeOrigin())
    cfg = cached(be)
    cfg["admin"] = {"listen": "127.0.0.1:@ADMIN_PORT@"}
    cfg["routes"][0]["plugins"]["access-log"] = {"path": "access.log"}
    gw = gateway(cfg)
    assert ranged(gw, "/l", "bytes=0-1").status_code == 206
    assert ranged(gw, "/l", "bytes=0-1").status_code == 206
    assert ranged(gw, "/l", "bytes=200-").status_code == 416
    log = os.path.join(gw.dir, "access.log")
    deadline = time.monotonic() + 5
    docs = []
    while time.monotonic() < deadline and len(docs) < 3:
        with open(log) as f:
            docs = [json.loads(ln) for ln in f.read().splitlines() if ln.strip()]
        time.sleep(0.05)
    assert [(d["status"], d["cache"]) for d in docs] == [(206, "miss"), (206, "hit"), (416, "hit")]
    m = requests.get(gw.admin_url("/metrics"), timeout=10).text
    assert re.search(r'portico_requests_total\{[^}]*status="206"[^}]*\} 2', m), m
    assert re.search(r'portico_requests_total\{[^}]*status="416"[^}]*\} 1', m), m
    assert re.search(r'portico_cache_requests_total\{route="main",result="hit"\} 2', m), m


def test_waiters_get_their_own_ranges(gateway, backend):
    origin = RangeOrigin()
    be = backend(handler=lambda req: (time.sleep(0.5), origin(req))[1])
    gw = gateway(cached(be), workers=2)
    results = {}
    lock = threading.Lock()

    def one(i):
        r = get(gw, "/co", headers={"Range": "bytes=%d-%d" % (i, i + 2)}, timeout=20)
        with lock:
            results[i] = (r.status_code, r.content, r.headers["Content-Range"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: (206, BODY100[i:i + 3], "bytes %d-%d/100" % (i, i + 2)) for i in range(8)}
    assert origin.seen == [(None, None)]
