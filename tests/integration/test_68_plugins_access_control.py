"""ip-restriction, bot-detection and request-size-limit (SPEC §3): allow and
deny cases with real clients, IPv4 and IPv6, trusted proxies, 403/413
problem+json."""

import socket
import time

import requests

from harness import RawConn, assert_problem, build_request, chunked, free_port, one_route, request


def gw_plugins(gateway, backend, plugins, server=None, **kw):
    be = backend()
    return gateway(one_route(be, route_opts={"plugins": plugins}, server=server), **kw), be


# ---- ip-restriction ----

def test_ip_allow_list(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"ip-restriction": {"allow": ["127.0.0.1", "10.0.0.0/8"]}})
    assert requests.get(gw.url("/ok")).status_code == 200
    gw2, be2 = gw_plugins(gateway, backend, {"ip-restriction": {"allow": ["10.0.0.0/8", "2001:db8::/32"]}})
    r = request(gw2.port, "GET", "/no")
    doc = assert_problem(r, 403, "forbidden", gw2)
    assert "127.0.0.1" in doc["detail"]
    assert be2.received == [], "refused before the service"


def test_ip_deny_list_and_deny_wins(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"ip-restriction": {"deny": ["127.0.0.0/24"]}})
    assert_problem(request(gw.port, "GET", "/d"), 403, "forbidden")
    gw2, _ = gw_plugins(gateway, backend, {"ip-restriction": {"deny": ["192.0.2.1"]}})
    assert request(gw2.port, "GET", "/d").status == 200, "only deny: everyone else passes"
    gw3, _ = gw_plugins(gateway, backend, {"ip-restriction": {"allow": ["127.0.0.0/8"], "deny": ["127.0.0.1"]}})
    assert_problem(request(gw3.port, "GET", "/d"), 403, "forbidden")


def ipv6_get(port, path):
    s = socket.create_connection(("::1", port), timeout=5)
    try:
        s.sendall(build_request("GET", path, [("Connection", "close")], host="[::1]:%d" % port))
        data = b""
        while True:
            got = s.recv(65536)
            if not got:
                break
            data += got
    finally:
        s.close()
    return int(data.split(b" ", 2)[1]), data


def dual_stack(gateway, backend, rule):
    port = free_port()
    return gw_plugins(gateway, backend, {"ip-restriction": rule},
                      server={"listen": ["127.0.0.1:%d" % port, "[::1]:%d" % port]}, port=port)


def test_ipv6_allow(gateway, backend):
    gw, _ = dual_stack(gateway, backend, {"allow": ["::1/128"]})
    status, _ = ipv6_get(gw.port, "/v6")
    assert status == 200
    assert_problem(request(gw.port, "GET", "/v4"), 403, "forbidden")


def test_ipv6_deny(gateway, backend):
    gw, _ = dual_stack(gateway, backend, {"deny": ["::1"]})
    status, data = ipv6_get(gw.port, "/v6")
    assert status == 403 and b"urn:portico:error:forbidden" in data and b"::1" in data
    assert request(gw.port, "GET", "/v4").status == 200


def test_ip_restriction_with_trusted_proxies(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"ip-restriction": {"allow": ["203.0.113.0/24"]}},
                        server={"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"]})
    assert request(gw.port, "GET", "/p", [("X-Forwarded-For", "203.0.113.7")]).status == 200
    assert request(gw.port, "GET", "/p", [("X-Forwarded-For", "203.0.113.7, 10.0.0.2")]).status == 200, \
        "the right-most untrusted address is the client"
    assert_problem(request(gw.port, "GET", "/p", [("X-Forwarded-For", "203.0.113.7, 198.51.100.9")]),
                   403, "forbidden")
    assert_problem(request(gw.port, "GET", "/p"), 403, "forbidden")
    gw2, _ = gw_plugins(gateway, backend, {"ip-restriction": {"allow": ["203.0.113.0/24"]}})
    assert_problem(request(gw2.port, "GET", "/p", [("X-Forwarded-For", "203.0.113.7")]), 403, "forbidden",
                   ), "an untrusted peer's X-Forwarded-For is not believed"


# ---- bot-detection ----

def test_bot_deny_allow_and_builtin(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"bot-detection": {"deny": ["^python-requests/", "badbot"],
                                                             "allow": ["^Googlebot/2\\.1 \\(partner\\)"]}})
    r = requests.get(gw.url("/b"))  # python-requests/x.y
    assert r.status_code == 403
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["type"] == "urn:portico:error:forbidden"
    assert_problem(request(gw.port, "GET", "/b", [("User-Agent", "Mozilla/5.0 BadBot/1")]), 403, "forbidden")
    assert_problem(request(gw.port, "GET", "/b", [("User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)")]),
                   403, "forbidden")
    assert_problem(request(gw.port, "GET", "/b", [("User-Agent", "Mozilla/5.0 (compatible; GPTBot/1.0)")]),
                   403, "forbidden")
    assert request(gw.port, "GET", "/b", [("User-Agent", "Googlebot/2.1 (partner)")]).status == 200, \
        "allow wins over the built-in list"
    assert request(gw.port, "GET", "/b", [("User-Agent", "curl/8.0")]).status == 200
    assert request(gw.port, "GET", "/b", [("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")]).status == 200
    assert request(gw.port, "GET", "/b").status == 200, "no User-Agent passes"
    assert [r.header("User-Agent") for r in be.received] == [
        "Googlebot/2.1 (partner)", "curl/8.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", None]


def test_bot_builtin_can_be_switched_off(gateway, backend):
    gw, _ = gw_plugins(gateway, backend, {"bot-detection": {"builtin": False, "deny": ["curl"]}})
    assert request(gw.port, "GET", "/b", [("User-Agent", "Googlebot/2.1")]).status == 200
    assert_problem(request(gw.port, "GET", "/b", [("User-Agent", "CURL/8.0")]), 403, "forbidden",
                   ), "case-insensitive"


# ---- request-size-limit ----

def test_size_limit_content_length(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"request-size-limit": {"max_body_bytes": "1k"}})
    assert requests.post(gw.url("/u"), data=b"x" * 1024).status_code == 200
    r = request(gw.port, "POST", "/u", body=b"x" * 1025)
    doc = assert_problem(r, 413, "payload-too-large")
    assert "1024" in doc["detail"]
    assert len(be.received) == 1, "the large one never reached the service"


def test_size_limit_refuses_before_100_continue(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"request-size-limit": {"max_body_bytes": 10}})
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/e", [("Content-Length", "100"), ("Expect", "100-continue")]))
        r = c.read_response()
        assert r.status == 413, "no 100 Continue for a body that will be refused"
    assert be.received == []


def test_size_limit_chunked_counted_as_it_streams(gateway, backend):
    gw, be = gw_plugins(gateway, backend, {"request-size-limit": {"max_body_bytes": 100}})
    ok = request(gw.port, "POST", "/c", [("Transfer-Encoding", "chunked")], chunked(b"a" * 60, b"b" * 40))
    assert ok.status == 200
    assert be.received[0].body == b"a" * 60 + b"b" * 40
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/c", [("Transfer-Encoding", "chunked")]))
        c.send(b"40\r\n" + b"x" * 64 + b"\r\n")
        time.sleep(0.2)
        c.send(b"40\r\n" + b"y" * 64 + b"\r\n")
        r = c.read_response()
        assert_problem(r, 413, "payload-too-large")
        assert c.wait_closed(5), "the rest of the body is not read: the connection closes"


def test_size_limit_only_lowers_the_route_limit(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, route_opts={"max_body_bytes": 50,
                                           "plugins": {"request-size-limit": {"max_body_bytes": "1m"}}}))
    assert_problem(request(gw.port, "POST", "/r", body=b"z" * 51), 413, "payload-too-large")
    assert request(gw.port, "POST", "/r", body=b"z" * 50).status == 200
