"""What the gateway adds, keeps and drops when it forwards (SPEC §2.2, §10
"Forwarding"): X-Forwarded-*, X-Request-Id, traceparent, hop-by-hop
headers, Host."""

import pytest

from harness import (REQID_RE, RawConn, Reply, build_request, header_tokens, one_route,
                     parse_traceparent, request)

HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]


def forward(gateway, backend, headers=(), host="localhost", **route_opts):
    """One GET through a fresh gateway; returns (backend request, client response)."""
    be = backend()
    gw = gateway(one_route(be, route_opts=route_opts or None))
    resp = request(gw.port, "GET", "/fwd", headers, host=host)
    assert resp.status == 200
    return be.received[0], resp


def xff_list(req):
    values = req.headers_all("X-Forwarded-For")
    assert len(values) == 1, "want one X-Forwarded-For field upstream, got %r" % values
    return [a.strip() for a in values[0].split(",")]


def test_xff_added(gateway, backend):
    req, _ = forward(gateway, backend)
    assert xff_list(req) == ["127.0.0.1"]


def test_xff_appended(gateway, backend):
    req, _ = forward(gateway, backend, [("X-Forwarded-For", "203.0.113.7")])
    assert xff_list(req) == ["203.0.113.7", "127.0.0.1"]


def test_xff_several_incoming_fields_are_combined_in_order(gateway, backend):
    req, _ = forward(gateway, backend, [("X-Forwarded-For", "198.51.100.1, 198.51.100.2"),
                                        ("X-Forwarded-For", "203.0.113.7")])
    assert xff_list(req) == ["198.51.100.1", "198.51.100.2", "203.0.113.7", "127.0.0.1"]


def test_xff_appended_with_trusted_proxies(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, server={"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"]}))
    r = request(gw.port, "GET", "/t", [("X-Forwarded-For", "203.0.113.7, 10.1.2.3")])
    assert r.status == 200
    assert xff_list(be.received[0]) == ["203.0.113.7", "10.1.2.3", "127.0.0.1"]


def test_x_forwarded_proto_and_host(gateway, backend):
    req, _ = forward(gateway, backend, host="shop.example.com:8443")
    assert req.headers_all("X-Forwarded-Proto") == ["http"]
    assert req.headers_all("X-Forwarded-Host") == ["shop.example.com:8443"]


def test_client_x_forwarded_proto_is_not_believed(gateway, backend):
    req, _ = forward(gateway, backend, [("X-Forwarded-Proto", "https")])
    assert req.headers_all("X-Forwarded-Proto") == ["http"]


def test_host_is_the_target_authority(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    assert request(gw.port, "GET", "/h", host="api.example.com").status == 200
    assert be.received[0].headers_all("Host") == ["127.0.0.1:%d" % be.port]


def test_preserve_host(gateway, backend):
    req, _ = forward(gateway, backend, host="api.example.com", preserve_host=True)
    assert req.headers_all("Host") == ["api.example.com"]


def test_request_id_generated_and_returned(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    ids = []
    for _ in range(3):
        r = request(gw.port, "GET", "/id")
        rid = r.header("X-Request-Id")
        assert rid and REQID_RE.match(rid), rid
        ids.append(rid)
    assert [q.header("X-Request-Id") for q in be.received] == ids
    assert len(set(ids)) == 3


@pytest.mark.parametrize("sent", ["abc-123._XYZ", "a", "r" * 128, "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_sane_client_request_id_is_kept(gateway, backend, sent):
    req, resp = forward(gateway, backend, [("X-Request-Id", sent)])
    assert req.headers_all("X-Request-Id") == [sent]
    assert resp.header("X-Request-Id") == sent


@pytest.mark.parametrize("sent", ["r" * 129, "x" * 200, "has space", "semi;colon", "slash/id", "quote\"d", "ünïcode"])
def test_insane_client_request_id_is_replaced(gateway, backend, sent):
    be = backend()
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/id", [("X-Request-Id", sent)]).replace(
            sent.encode("latin-1", "replace"), sent.encode("utf-8")))
        resp = c.read_response()
    assert resp.status == 200
    got = be.received[0].headers_all("X-Request-Id")
    assert len(got) == 1 and got[0] != sent and REQID_RE.match(got[0]), got
    assert resp.header("X-Request-Id") == got[0]


def test_request_id_plugin_renames_the_header(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, plugins={"request-id": {"header": "X-Correlation-Id"}}))
    r = request(gw.port, "GET", "/id", [("X-Correlation-Id", "corr-1")])
    assert r.header("X-Correlation-Id") == "corr-1"
    assert be.received[0].header("X-Correlation-Id") == "corr-1"


def test_traceparent_started_when_absent(gateway, backend):
    be = backend()
    gw = gateway(one_route(be))
    request(gw.port, "GET", "/a")
    request(gw.port, "GET", "/b")
    t1 = parse_traceparent(be.received[0].header("traceparent"))
    t2 = parse_traceparent(be.received[1].header("traceparent"))
    assert t1[0] != t2[0], "two requests started the same trace"


def test_traceparent_propagated_with_new_parent(gateway, backend):
    sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    req, _ = forward(gateway, backend, [("traceparent", sent), ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")])
    assert len(req.headers_all("traceparent")) == 1
    trace_id, parent_id, flags = parse_traceparent(req.header("traceparent"))
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert parent_id != "00f067aa0ba902b7"
    assert flags == "01"
    assert req.headers_all("tracestate") == ["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]


@pytest.mark.parametrize("bad", ["00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                 "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                                 "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                 "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                                 "garbage"])
def test_invalid_traceparent_starts_a_new_trace(gateway, backend, bad):
    req, _ = forward(gateway, backend, [("traceparent", bad)])
    assert len(req.headers_all("traceparent")) == 1
    trace_id, _, _ = parse_traceparent(req.header("traceparent"))
    assert trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("parent", [None, "garbage"], ids=["no-traceparent", "invalid-traceparent"])
def test_tracestate_of_a_trace_not_continued_is_dropped(gateway, backend, parent):
    """W3C Trace Context: tracestate belongs to the trace in traceparent; a
    tracestate without a valid traceparent is discarded when the gateway
    starts a new trace, so vendors do not join entries to the wrong trace."""
    headers = [("tracestate", "congo=t61rcWkgMzE")]
    if parent is not None:
        headers.append(("traceparent", parent))
    req, _ = forward(gateway, backend, headers)
    assert len(req.headers_all("traceparent")) == 1
    assert req.headers_all("tracestate") == []


def test_hop_by_hop_request_headers_are_dropped(gateway, backend):
    req, _ = forward(gateway, backend, [
        ("Connection", "keep-alive, X-Custom-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "foo/2"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Custom-Hop", "drop me"),
        ("X-End-To-End", "keep me"),
    ])
    names = req.header_names()
    for h in ["keep-alive", "te", "trailer", "upgrade", "proxy-connection", "x-custom-hop"]:
        assert h not in names, "hop-by-hop %s forwarded: %r" % (h, req.headers)
    assert "x-custom-hop" not in header_tokens(req.headers_all("Connection"))
    assert req.header("X-End-To-End") == "keep me"


def test_hop_by_hop_response_headers_are_dropped(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "ok", headers=[
        ("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1"), ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"), ("Trailer", "X-T"), ("Upgrade", "foo/2"),
        ("X-End-To-End", "kept")]))
    gw = gateway(one_route(be))
    r = request(gw.port, "GET", "/r")
    names = [k.lower() for k, _ in r.headers]
    for h in ["x-resp-hop", "keep-alive", "proxy-connection", "trailer", "upgrade"]:
        assert h not in names, "hop-by-hop %s relayed: %r" % (h, r.headers)
    assert "x-resp-hop" not in r.connection_tokens()
    assert r.header("X-End-To-End") == "kept"
    assert r.body == b"ok"


def test_end_to_end_headers_keep_order_and_repeats(gateway, backend):
    be = backend(handler=lambda req: Reply(200, "c", headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"),
                                                           ("X-Multi", "one"), ("X-Multi", "two")]))
    gw = gateway(one_route(be))
    r = request(gw.port, "GET", "/m", [("X-Multi", "first"), ("X-Multi", "second"), ("X-Spaces", "a  b\tc")])
    assert be.received[0].headers_all("X-Multi") == ["first", "second"]
    assert be.received[0].header("X-Spaces") == "a  b\tc"
    assert r.headers_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert r.headers_all("X-Multi") == ["one", "two"]


def test_response_status_reason_and_body_relayed(gateway, backend):
    be = backend(handler=lambda req: Reply(201, {"id": 9}, headers=[("Location", "/things/9")], reason="Created"))
    gw = gateway(one_route(be))
    r = request(gw.port, "POST", "/things", body=b'{"name":"x"}')
    assert r.status == 201
    assert r.header("Location") == "/things/9"
    assert r.json() == {"id": 9}
    assert be.received[0].body == b'{"name":"x"}'
    assert r.header("X-Request-Id")
