"""HTTP/1 strictness (SPEC §7): malformed requests are answered 400 with
problem+json, the connection is closed, and nothing reaches the backend.
Limits (431, 413) and client timeouts (408, idle close)."""

import time

import pytest

from harness import RawConn, assert_problem, build_request, config, one_route, raw, route, service
from harness.rawhttp import parse_responses

AFTER = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"  # must never be served

MALFORMED = {
    "cl-conflicting": b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl-list-differing": b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "cl-negative": b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello",
    "cl-plus-sign": b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
    "cl-not-a-number": b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: five\r\n\r\nhello",
    "cl-and-te": b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n",
    "te-chunked-chunked": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
                          b"5\r\nhello\r\n0\r\n\r\n",
    "te-chunked-twice-in-two-fields": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
                             b"5\r\nhello\r\n0\r\n\r\n",
    "te-unknown-coding": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    "te-chunked-not-last": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                           b"5\r\nhello\r\n0\r\n\r\n",
    "te-on-http10": b"POST /m HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-0x": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"1FFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    "chunk-size-empty": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
    "chunk-size-not-hex": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk-bare-lf": b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    "nul-in-value": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "ctl-in-value": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "del-in-value": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
    "bare-cr-in-value": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "nul-in-name": b"GET /m HTTP/1.1\r\nHost: x\r\nX-\x00A: 1\r\n\r\n",
    "bad-char-in-name": b"GET /m HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n",
    "empty-name": b"GET /m HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n",
    "no-colon": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A value\r\n\r\n",
    "obs-fold": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
    "obs-fold-tab": b"GET /m HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tfolded\r\n\r\n",
    "bare-lf-line-endings": b"GET /m HTTP/1.1\nHost: x\n\n",
    "bare-lf-one-line": b"GET /m HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
    "missing-host": b"GET /m HTTP/1.1\r\nX-A: 1\r\n\r\n",
    "two-hosts": b"GET /m HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "ctl-in-target": b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-method-token": b"G(T /m HTTP/1.1\r\nHost: x\r\n\r\n",
    "double-space-request-line": b"GET  /m HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage-version": b"GET /m HTTP/one\r\nHost: x\r\n\r\n",
}


@pytest.fixture
def strict_gw(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    return gw, be


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_is_400_closed_and_never_forwarded(strict_gw, name):
    gw, be = strict_gw
    data = raw(gw.port, MALFORMED[name] + AFTER, timeout=5)
    assert data.closed, "connection not closed after a malformed request (%s): %r" % (name, data)
    rs = parse_responses(data)
    assert len(rs) == 1, "want exactly one response, got %r" % rs
    assert_problem(rs[0], 400, "bad-request", gw)
    assert be.received == [], "backend received %r" % be.received
    # The gateway is still fine afterwards.
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/ok"))
        assert c.read_response().status == 200


@pytest.mark.parametrize("body", [
    b"5\r\nhello-and-more\r\n0\r\n\r\n",          # chunk longer than its size
    b"5\r\nhello\r\n5\r\nworld\r\nzz\r\n\r\n",    # a bad size line after good chunks
    b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",    # trailer field without a colon
], ids=["data-too-long", "bad-second-size", "bad-trailer"])
def test_bad_chunk_framing_after_good_data_is_400(strict_gw, body):
    """The head and the first chunk are fine, so a streaming gateway may have
    started the upstream request; it must still answer 400, close, and never
    let the backend see a complete body."""
    gw, be = strict_gw
    data = raw(gw.port, b"POST /m HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body + AFTER,
               timeout=5)
    assert data.closed, "connection not closed after a malformed chunked body: %r" % data
    rs = parse_responses(data)
    assert len(rs) == 1, rs
    assert_problem(rs[0], 400, "bad-request", gw)
    assert all(not r.body_complete for r in be.received), "the backend got a complete body"
    assert all(r.target != "/after" for r in be.received)


def test_414_on_a_request_target_longer_than_the_head_limit(strict_gw):
    """RFC 9112 section 3: a request-target longer than the server parses is 414."""
    gw, be = strict_gw
    data = raw(gw.port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    rs = parse_responses(data)
    assert rs, data
    assert_problem(rs[0], 414, "uri-too-long", gw)
    assert data.closed
    assert be.received == []


def test_431_on_one_huge_header(strict_gw):
    gw, be = strict_gw
    r = raw(gw.port, build_request("GET", "/", [("X-Big", "b" * 20000)]), timeout=5)
    rs = parse_responses(r)
    assert rs, r
    assert_problem(rs[0], 431, "request-header-fields-too-large", gw)
    assert be.received == []


def test_431_on_many_headers_adding_up(strict_gw):
    gw, be = strict_gw
    hdrs = [("X-H%03d" % i, "v" * 90) for i in range(200)]  # ~20 KB, each one small
    rs = parse_responses(raw(gw.port, build_request("GET", "/", hdrs), timeout=5))
    assert rs
    assert_problem(rs[0], 431, "request-header-fields-too-large", gw)
    assert be.received == []


def test_headers_just_under_the_limit_pass(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"limits": {"max_header_bytes": "4k"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/", [("X-Pad", "p" * 3000)]))
        assert c.read_response().status == 200
    assert be.received[0].header("X-Pad") == "p" * 3000


def test_413_content_length_over_limit(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"limits": {"max_body_bytes": "1k"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/", [("Content-Length", "1025")]))
        assert_problem(c.read_response(), 413, "payload-too-large", gw)
    assert be.received == []
    # Exactly the limit passes.
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/", body=b"x" * 1024))
        assert c.read_response().status == 200
    assert be.received[0].body == b"x" * 1024


def test_413_content_length_with_body_sent(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"limits": {"max_body_bytes": "1k"}}))
    rs = parse_responses(raw(gw.port, build_request("POST", "/", body=b"y" * 4000), timeout=5))
    assert rs
    assert_problem(rs[0], 413, "payload-too-large", gw)
    assert be.received == []


def _stream_until_answer(port, head, piece, max_pieces, gap=0.02):
    """Send head then pieces until the gateway answers or closes; return (response, pieces sent)."""
    c = RawConn(port)
    got = bytearray()
    sent = 0
    try:
        c.send(head)
        for _ in range(max_pieces):
            try:
                c.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            got += c.read_some(timeout=gap)
            if got or c.eof:
                break
        c.wait_closed(3)
        got += bytes(c.buf)
        rs = parse_responses(got)
        return (rs[0] if rs else None), sent
    finally:
        c.close()


def test_413_chunked_body_over_limit(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"limits": {"max_body_bytes": "4k"}}))
    head = build_request("POST", "/", [("Transfer-Encoding", "chunked")])
    piece = b"400\r\n" + b"z" * 1024 + b"\r\n"
    resp, sent = _stream_until_answer(gw.port, head, piece, 64)
    assert resp is not None, "no answer while streaming a too-large chunked body"
    assert_problem(resp, 413, "payload-too-large", gw)
    assert sent <= 32, "the gateway read %d KiB before refusing a 4 KiB limit" % sent
    for r in be.received:  # the backend may have seen the start, never a whole body
        assert not r.body_complete or len(r.body) <= 4096


def test_route_max_body_bytes_overrides_server(gateway, backend):
    be = backend()
    cfg = config({"svc": service(be)},
                 [route("small", "/small/*", "svc", max_body_bytes=100),
                  route("big", "/big/*", "svc")],
                 server={"limits": {"max_body_bytes": "1k"}})
    gw = gateway(cfg)
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/small/x", [("Content-Length", "200")]))
        assert_problem(c.read_response(), 413, "payload-too-large", gw)
    assert request_ok(gw.port, "/big/x", b"b" * 200)
    assert request_ok(gw.port, "/small/x", b"s" * 100)
    with RawConn(gw.port) as c:
        c.send(build_request("POST", "/big/x", [("Content-Length", "1025")]))
        assert_problem(c.read_response(), 413, "payload-too-large", gw)
    assert [r.target for r in be.received] == ["/big/x", "/small/x"]


def request_ok(port, target, body):
    with RawConn(port) as c:
        c.send(build_request("POST", target, body=body))
        return c.read_response().status == 200


def test_slow_loris_gets_408_and_close(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"timeouts": {"client_header": "500ms", "client_idle": "10s"}}))
    c = RawConn(gw.port)
    got = bytearray()
    t0 = time.monotonic()
    try:
        c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
        i = 0
        while time.monotonic() - t0 < 5:
            try:
                c.send(b"X-Trickle-%d: y\r\n" % i)  # never finishes the head
            except (BrokenPipeError, ConnectionResetError):
                break
            i += 1
            got += c.read_some(timeout=0.1)
            if got or c.eof:
                break
        elapsed = time.monotonic() - t0
        assert c.wait_closed(3), "connection left open after 408"
        got += bytes(c.buf)
    finally:
        c.close()
    rs = parse_responses(got)
    assert rs, "no 408 before the connection closed"
    assert_problem(rs[0], 408, "request-timeout", gw)
    assert 0.4 <= elapsed < 3.0, "408 after %.2fs with client_header 500ms" % elapsed
    assert be.received == []


def test_idle_keepalive_connection_is_closed(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"timeouts": {"client_idle": "500ms"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/1"))
        assert c.read_response().status == 200
        time.sleep(0.1)
        c.send(build_request("GET", "/2"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.wait_closed(4), "idle connection still open"
        elapsed = time.monotonic() - t0
        assert 0.3 <= elapsed < 3.0, "closed after %.2fs with client_idle 500ms" % elapsed
        assert bytes(c.buf) == b"", "an idle close must not send anything: %r" % bytes(c.buf)


def test_idle_between_requests_is_not_a_header_timeout(gateway, backend):
    """Waiting between keep-alive requests is governed by client_idle, not client_header."""
    be = backend()
    gw = gateway(one_route(be, server={"timeouts": {"client_header": "300ms", "client_idle": "5s"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/1"))
        assert c.read_response().status == 200
        time.sleep(0.8)
        c.send(build_request("GET", "/2"))
        assert c.read_response().status == 200
