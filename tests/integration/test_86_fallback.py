"""The fallback plugin (SPEC §3 `fallback`, §10 "Failures"; docs/cache.md)."""

import json
import pathlib
import re
import time

import requests

from harness import UPSTREAM_ERRORS, Reply, one_route, run_portico
from harness.yamlgen import to_yaml

FALLBACK = {"status": 200, "headers": {"Content-Type": "application/json", "X-Origin": "gateway"},
            "body": '{"items": []}'}


def with_plugins(be, plugins, service_opts=None):
    return one_route(be, route_opts={"plugins": plugins}, service_opts=service_opts)


def get(gw, path="/", **kw):
    kw.setdefault("timeout", 10)
    return requests.get(gw.url(path), **kw)


def assert_fallback(r, status=200, body=b'{"items": []}'):
    assert r.status_code == status
    assert r.headers["X-Fallback"] == "true"
    assert r.content == body
    assert r.headers.get("X-Request-Id")


def test_backend_up_no_fallback(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "real"))
    gw = gateway(with_plugins(be, {"fallback": FALLBACK}))
    r = get(gw)
    assert r.text == "real" and "X-Fallback" not in r.headers


def test_backend_down(gateway, dead_addr):
    gw = gateway(with_plugins(dead_addr, {"fallback": FALLBACK}), expect_errors=[UPSTREAM_ERRORS])
    r = get(gw)
    assert_fallback(r)
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Origin"] == "gateway"


def test_backend_answers_503(gateway, backend):
    be = backend(handler=lambda req: Reply(503, "overloaded"))
    gw = gateway(with_plugins(be, {"fallback": FALLBACK}))
    assert_fallback(get(gw))


def test_backend_answers_500_is_not_a_failure_by_default(gateway, backend):
    be = backend(handler=lambda req: Reply(500, "bug"))
    gw = gateway(with_plugins(be, {"fallback": FALLBACK}))
    r = get(gw)
    assert r.status_code == 500 and r.text == "bug" and "X-Fallback" not in r.headers


def test_on_list_is_configurable(gateway, backend):
    be = backend(handler=lambda req: Reply(500 if req.path == "/500" else 503, "x"))
    gw = gateway(with_plugins(be, {"fallback": dict(FALLBACK, on=[500])}))
    assert_fallback(get(gw, "/500"))
    r = get(gw, "/503")
    assert r.status_code == 503 and "X-Fallback" not in r.headers


def test_timeout(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "late", delay=2))
    gw = gateway(with_plugins(be, {"fallback": FALLBACK}, service_opts={"timeouts": {"read": "300ms"}}),
                 expect_errors=[UPSTREAM_ERRORS])
    t0 = time.monotonic()
    assert_fallback(get(gw))
    assert time.monotonic() - t0 < 1.5


def test_status_and_default_content_type(gateway, dead_addr):
    gw = gateway(with_plugins(dead_addr, {"fallback": {"status": 503, "body": "try later"}}),
                 expect_errors=[UPSTREAM_ERRORS])
    r = get(gw)
    assert_fallback(r, 503, b"try later")
    assert r.headers["Content-Type"].startswith("text/plain")


def test_empty_fallback(gateway, dead_addr):
    gw = gateway(with_plugins(dead_addr, {"fallback": {}}), expect_errors=[UPSTREAM_ERRORS])
    assert_fallback(get(gw), 200, b"")


def test_head_request_gets_no_body(gateway, dead_addr):
    gw = gateway(with_plugins(dead_addr, {"fallback": FALLBACK}), expect_errors=[UPSTREAM_ERRORS])
    r = requests.head(gw.url("/"), timeout=10)
    assert r.status_code == 200 and r.headers["X-Fallback"] == "true" and r.content == b""


def test_body_file_relative_to_config(gateway, dead_addr, tmp_path):
    gw = gateway(with_plugins(dead_addr, {"fallback": {"body_file": "fallback/items.json"}}),
                 start=False, expect_errors=[UPSTREAM_ERRORS])
    d = pathlib.Path(gw.dir) / "fallback"
    d.mkdir(parents=True, exist_ok=True)
    (d / "items.json").write_bytes(b'{"items": ["cached"]}\n')
    gw.start()
    r = get(gw)
    assert_fallback(r, 200, b'{"items": ["cached"]}\n')
    assert r.headers["Content-Type"] == "application/json"


def test_body_file_unreadable_is_a_config_error(tmp_path, dead_addr):
    cfg = tmp_path / "portico.yaml"
    cfg.write_text(to_yaml(with_plugins(dead_addr, {"fallback": {"body_file": "nope.json"}})))
    p = run_portico("check", "-c", str(cfg))
    assert p.returncode == 1
    assert re.search(r"portico\.yaml:\d+:\d+: .*body_file.*nope\.json", p.stderr), p.stderr


def test_body_and_body_file_together_is_an_error(tmp_path, dead_addr):
    (tmp_path / "b.txt").write_text("x")
    cfg = tmp_path / "portico.yaml"
    cfg.write_text(to_yaml(with_plugins(dead_addr, {"fallback": {"body": "x", "body_file": "b.txt"}})))
    p = run_portico("check", "-c", str(cfg))
    assert p.returncode == 1 and "not both" in p.stderr


def test_stale_cache_wins_over_fallback(gateway, backend):
    state = {"down": False}

    def handler(req):
        return Reply(503, "down") if state["down"] else Reply(200, "fresh data")

    be = backend(handler=handler)
    gw = gateway(with_plugins(be, {"cache": {"ttl": "300ms"}, "fallback": FALLBACK}))
    assert get(gw, "/x").text == "fresh data"
    state["down"] = True
    time.sleep(0.5)
    r = get(gw, "/x")
    assert r.text == "fresh data" and r.headers["X-Cache"] == "STALE" and "X-Fallback" not in r.headers
    r = get(gw, "/never-cached")
    assert_fallback(r)


def test_stale_cache_wins_over_fallback_when_backend_is_gone(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "fresh data"))
    gw = gateway(with_plugins(be, {"cache": {"ttl": "300ms"}, "fallback": FALLBACK}),
                 expect_errors=[UPSTREAM_ERRORS])
    get(gw, "/x")
    be.stop()
    time.sleep(0.5)
    r = get(gw, "/x")
    assert r.text == "fresh data" and r.headers["X-Cache"] == "STALE"
    assert_fallback(get(gw, "/y"))


def test_global_fallback_applies_to_routes(gateway, dead_addr):
    cfg = one_route(dead_addr)
    cfg["plugins"] = {"fallback": {"body": json.dumps({"ok": False})}}
    gw = gateway(cfg, expect_errors=[UPSTREAM_ERRORS])
    r = get(gw)
    assert r.headers["X-Fallback"] == "true" and r.json() == {"ok": False}
