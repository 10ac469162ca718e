"""Hostile or broken upstream responses (SPEC §7 applies to both sides):
each one is either refused with 502 or passed on correctly framed; never
relayed in a way that lets the backend smuggle a second response to the
client, and the client connection never desynchronises."""

import pytest

from harness import UPSTREAM_ERRORS, assert_problem, build_request, one_route, raw, raw_reply, request
from harness.rawhttp import parse_response

ERRORS = [UPSTREAM_ERRORS, r"(?i)invalid|malformed|response|chunk|closed|body|header"]

# Responses a strict proxy must not pass on: 502.
REFUSED = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
    "te-not-chunked-last-and-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\nabc",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n b\r\n\r\nok",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\x00b\r\n\r\nok",
    "bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "negative-length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
    "plus-length": b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
    "http09": b"hello world\r\n",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_malformed_upstream_response_is_502(gateway, raw_backend, name):
    be = raw_backend(raw_reply(REFUSED[name]))
    gw = gateway(one_route(be), expect_errors=ERRORS)
    data = raw(gw.port, build_request("GET", "/", [("Connection", "close")]), timeout=5)
    assert b"smuggled" not in data
    parsed = parse_response(data, eof=True)
    assert parsed is not None, data
    resp, used = parsed
    assert resp.status == 502, data
    assert used == len(data), "nothing after the problem answer: %r" % data[used:]


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",             # the head, then a close
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",      # the same, chunked
], ids=["length", "chunked"])
def test_backend_closing_after_its_head_is_502(gateway, raw_backend, reply):
    """Nothing of the response has reached the client yet (the head waits for
    the first body bytes), so the client gets a 502 problem, not an empty
    reply."""
    be = raw_backend(raw_reply(reply))
    gw = gateway(one_route(be), expect_errors=ERRORS)
    data = raw(gw.port, build_request("GET", "/", [("Connection", "close")]), timeout=5)
    parsed = parse_response(data, eof=True)
    assert parsed is not None and parsed[0].status == 502, data
    assert_problem(parsed[0], 502, "bad-gateway", gw)


def test_extra_bytes_after_a_response_are_not_a_second_response(gateway, raw_backend):
    """A backend that sends more than its Content-Length: the excess is not
    relayed, and the pooled connection is not reused for the next request."""
    junk = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
    be = raw_backend(raw_reply(junk, close=False))
    gw = gateway(one_route(be), expect_errors=ERRORS)
    data = raw(gw.port, build_request("GET", "/a") + build_request("GET", "/b", [("Connection", "close")]),
               timeout=5)
    assert b"smuggled" not in data


def test_te_chunked_response_with_trailers_is_relayed(gateway, raw_backend):
    be = raw_backend(raw_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n"))
    gw = gateway(one_route(be))
    r = request(gw.port, "GET", "/")
    assert r.status == 200 and r.body == b"hello"


def test_interim_103_then_200(gateway, raw_backend):
    be = raw_backend(raw_reply(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    gw = gateway(one_route(be), expect_errors=ERRORS)
    r = request(gw.port, "GET", "/")
    assert r.status == 200 and r.body == b"ok"
