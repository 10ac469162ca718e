"""HTTP/1.1 connection handling (SPEC §5): keep-alive, pipelining, chunked
bodies both ways, Expect: 100-continue, HTTP/1.0 clients, HEAD."""

import threading
import time

from harness import UPSTREAM_ERRORS, RawConn, Reply, assert_problem, build_request, chunked, one_route, raw, raw_reply, request
from harness.rawhttp import parse_responses


def test_keepalive_serves_several_requests_on_one_connection(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        for i in range(5):
            c.send(build_request("GET", "/k/%d" % i))
            r = c.read_response()
            assert r.status == 200
            assert r.json()["target"] == "/k/%d" % i
            assert "close" not in r.connection_tokens()
        assert not c.wait_closed(0.3)
    assert [q.target for q in be.received] == ["/k/%d" % i for i in range(5)]


def test_client_connection_close_is_honoured(gateway, backend):
    gw = gateway(one_route(backend()))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/c", [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        assert c.wait_closed(3)


def test_pipelined_requests_are_answered_in_order(gateway, backend):
    # The first request is the slowest: answers must still come back in order.
    delays = {"/p/1": 0.4, "/p/2": 0.2, "/p/3": 0.0}
    be = backend(handler=lambda req: Reply(200, req.target + ":" + req.body.decode(), delay=delays.get(req.path, 0)))
    gw = gateway(one_route(be))
    data = (build_request("GET", "/p/1") + build_request("POST", "/p/2", body=b"two")
            + build_request("GET", "/p/3"))
    with RawConn(gw.port) as c:
        c.send(data)  # one write
        bodies = [c.read_response().body for _ in range(3)]
    assert bodies == [b"/p/1:", b"/p/2:two", b"/p/3:"]


def test_pipelined_burst(gateway, backend):
    be = backend(handler=lambda req: Reply(200, req.target))
    gw = gateway(one_route(be))
    n = 50
    with RawConn(gw.port) as c:
        c.send(b"".join(build_request("GET", "/b/%d" % i) for i in range(n)))
        bodies = [c.read_response().body for _ in range(n)]
    assert bodies == [b"/b/%d" % i for i in range(n)]


def test_chunked_request_body_is_relayed_intact(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    pieces = [b"first,", b"x" * 5000, b"", b";second;", bytes(range(256))]
    body = chunked(*pieces)
    # A chunk extension and a trailer field, both legal.
    body = body.replace(b"6\r\nfirst,", b"6;ext=1\r\nfirst,", 1)
    body = body[:-2] + b"X-Trailer: t\r\n\r\n"
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/chunky", [("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
        assert r.status == 200
    assert be.received[0].body == b"".join(pieces)


def test_chunked_request_body_sent_slowly(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/slowchunks", [("Transfer-Encoding", "chunked")]))
        for i in range(5):
            time.sleep(0.05)
            c.send(b"3\r\nab%d\r\n" % i)
        c.send(b"0\r\n\r\n")
        assert c.read_response().status == 200
    assert be.received[0].body == b"ab0ab1ab2ab3ab4"


def test_chunked_response_is_relayed_intact(gateway, backend):
    pieces = [b"alpha", b"b" * 10000, b"gamma", bytes(range(256)) * 4]
    be = backend(handler=lambda req: Reply(200, iter(pieces), chunked=True, chunk_delay=0.02))
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/stream"))
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"".join(pieces)


def test_response_streams_before_the_backend_finishes(gateway, backend):
    release = threading.Event()

    def gen():
        yield b"first-part;"
        release.wait(5)
        yield b"second-part"

    be = backend(handler=lambda req: Reply(200, gen(), chunked=True))
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/s"))
        got = b""
        deadline = time.monotonic() + 3
        while b"first-part;" not in got and time.monotonic() < deadline:
            got += c.read_some(timeout=0.2)
        early = b"first-part;" in got
        release.set()
        c.buf[:0] = got
        r = c.read_response()
    assert early, "the first chunk was held back until the backend finished"
    assert r.body == b"first-part;second-part"


def test_close_delimited_backend_response(gateway, raw_backend):
    be = raw_backend(raw_reply(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close body"))
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/"))
        r = c.read_response()
    assert r.status == 200
    assert r.body == b"until-close body"


def test_expect_100_continue(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/e", [("Expect", "100-continue"), ("Content-Length", "5")]))
        first = c.read_response(timeout=5)
        assert first.status == 100, first
        c.send(b"hello")
        final = c.read_response()
        assert final.status == 200
    assert be.received[0].body == b"hello"


def test_expect_100_continue_too_large_gets_413_without_100(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"limits": {"max_body_bytes": "1k"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/e", [("Expect", "100-continue"), ("Content-Length", "100000")]))
        first = c.read_response(timeout=5)
    assert_problem(first, 413, "payload-too-large", gw)
    assert be.received == []


def test_http10_client(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "for an old client"))
    gw = gateway(one_route(be))
    data = raw(gw.port, b"GET /old HTTP/1.0\r\n\r\n", timeout=5)  # no Host: fine in 1.0
    assert data.closed, "an HTTP/1.0 connection without keep-alive must be closed"
    rs = parse_responses(data)
    assert len(rs) == 1
    assert rs[0].status == 200 and rs[0].version in ("HTTP/1.0", "HTTP/1.1")
    assert rs[0].body == b"for an old client"
    assert not rs[0].chunked
    assert be.received[0].target == "/old"


def test_http10_client_gets_chunked_backend_response_unchunked(gateway, backend):
    be = backend(handler=lambda req: Reply(200, iter([b"one,", b"two,", b"three"]), chunked=True))
    gw = gateway(one_route(be))
    data = raw(gw.port, b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n", timeout=5)
    rs = parse_responses(data)
    assert len(rs) == 1
    assert not rs[0].chunked, "chunked sent to an HTTP/1.0 client"
    assert rs[0].body == b"one,two,three"


def test_http10_keepalive(gateway, backend):
    gw = gateway(one_route(backend(handler=lambda req: Reply(200, "ka"))))
    with RawConn(gw.port) as c:
        for _ in range(2):
            c.send(b"GET /ka HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"ka"
            assert "keep-alive" in r.connection_tokens()
            assert not r.chunked


def test_head_has_headers_but_no_body(gateway, backend):
    be = backend(handler=lambda req: Reply(200, b"0123456789"))
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("HEAD", "/h"))
        r = c.read_response(method="HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == "10"
        c.send(build_request("GET", "/h"))
        r = c.read_response()
        assert r.body == b"0123456789"
    assert [q.method for q in be.received] == ["HEAD", "GET"]


def test_204_and_304_have_no_body(gateway, backend):
    be = backend(handler=lambda req: Reply(204) if req.path == "/204" else Reply(304, headers=[("ETag", '"v1"')]))
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("DELETE", "/204") + build_request("GET", "/304"))
        a = c.read_response()
        b = c.read_response()
        assert (a.status, a.body) == (204, b"")
        assert (b.status, b.body, b.header("ETag")) == (304, b"", '"v1"')
        assert not c.wait_closed(0.2)


def test_204_from_a_backend_that_sends_a_length_and_a_body(gateway, raw_backend):
    """RFC 9110 section 8.6: no Content-Length on a 204, and the stray body
    bytes after it are not relayed (they would become the next response)."""
    be = raw_backend(raw_reply(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", close=False))
    gw = gateway(one_route(be), expect_errors=[UPSTREAM_ERRORS])
    data = raw(gw.port, build_request("GET", "/a") + build_request("GET", "/b", [("Connection", "close")]),
               timeout=5)
    rs = parse_responses(bytes(data))
    assert rs and rs[0].status == 204
    assert rs[0].header("Content-Length") is None
    assert b"hello" not in data


def test_slow_requests_do_not_block_each_other(gateway, backend):
    """One worker, 20 requests whose backend takes 0.5 s each: they overlap."""
    be = backend(handler=lambda req: Reply(200, req.target, delay=0.5))
    gw = gateway(one_route(be), workers=1)
    results = {}

    def one(i):
        results[i] = request(gw.port, "GET", "/par/%d" % i).body

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    elapsed = time.monotonic() - t0
    assert results == {i: b"/par/%d" % i for i in range(20)}
    assert elapsed < 4.0, "20 overlapping 0.5 s requests took %.1fs: the worker blocks" % elapsed
    assert be.max_active >= 10


def test_several_workers(gateway, backend):
    be = backend(handler=lambda req: Reply(200, req.target, delay=0.05))
    gw = gateway(one_route(be), workers=2)
    results = {}

    def one(i):
        with RawConn(gw.port) as c:
            for j in range(5):
                c.send(build_request("GET", "/w/%d/%d" % (i, j)))
                results[(i, j)] = c.read_response().body

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {(i, j): b"/w/%d/%d" % (i, j) for i in range(8) for j in range(5)}
