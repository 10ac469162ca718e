"""request-transform and response-transform (SPEC §3): header set/add/remove
both ways, JSON members removed and renamed (dotted paths, through arrays),
Content-Length right after a rewrite, anything that is not JSON untouched."""

import json

import requests

from harness import Reply, assert_problem, build_request, chunked, one_route, raw, request
from harness.rawhttp import parse_response

REQ_T = {
    "set": {"X-Env": "prod", "X-Multi": ["1", "2"]},
    "add": {"X-Tag": ["a", "b"]},
    "remove": ["X-Secret", "Cookie"],
    "remove_fields": ["password", "user.ssn", "items.internal"],
    "rename_fields": {"user.id": "user_id", "name": "full_name"},
}


def gw_with(gateway, be, plugins, **kw):
    return gateway(one_route(be, route_opts={"plugins": plugins}, **kw))


def test_request_headers_set_add_remove(gateway, backend):
    be = backend()
    gw = gw_with(gateway, be, {"request-transform": REQ_T})
    r = requests.get(gw.url("/h"), headers={"X-Env": "dev", "x-secret": "s", "Cookie": "c=1",
                                            "X-Tag": "orig", "X-Keep": "k"})
    assert r.status_code == 200
    got = be.received[0]
    assert got.headers_all("X-Env") == ["prod"], "set replaces the client's value"
    assert got.headers_all("X-Multi") == ["1", "2"], "a list sets several fields"
    assert got.headers_all("X-Tag") == ["orig", "a", "b"], "add keeps what was there"
    assert not got.has_header("X-Secret") and not got.has_header("Cookie"), "remove, any case"
    assert got.headers_all("X-Keep") == ["k"]


def test_request_json_body_rewritten_with_a_new_length(gateway, backend):
    be = backend()
    gw = gw_with(gateway, be, {"request-transform": REQ_T})
    doc = {"name": "Ann", "password": "hunter2", "n": 0.1, "big": 123456789012345678901234567890,
           "user": {"id": 7, "ssn": "123", "keep": True},
           "items": [{"internal": 1, "sku": "a"}, {"sku": "b"}]}
    body = json.dumps(doc)
    r = requests.post(gw.url("/j"), data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200
    got = be.received[0]
    assert int(got.header("Content-Length")) == len(got.body), "Content-Length matches the new body"
    assert not got.has_header("Transfer-Encoding")
    assert json.loads(got.body) == {"full_name": "Ann", "n": 0.1, "big": 123456789012345678901234567890,
                                    "user": {"user_id": 7, "keep": True},
                                    "items": [{"sku": "a"}, {"sku": "b"}]}
    assert b"123456789012345678901234567890" in got.body and b"0.1" in got.body, "numbers kept as written"


def test_request_chunked_json_body_gets_a_length(gateway, backend):
    be = backend()
    gw = gw_with(gateway, be, {"request-transform": REQ_T})
    body = b'{"password": "x", "a": [1, 2, 3]}'
    r = request(gw.port, "POST", "/c", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                chunked(body[:10], body[10:]))
    assert r.status == 200
    got = be.received[0]
    assert got.body == b'{"a": [1, 2, 3]}'
    assert got.header("Content-Length") == str(len(got.body))


def test_request_bodies_that_are_not_json_pass_unchanged(gateway, backend):
    be = backend()
    gw = gw_with(gateway, be, {"request-transform": REQ_T})
    cases = [
        ("application/json", b'{"password": "x",}'),           # invalid JSON
        ("text/plain", b'{"password": "x"}'),                  # JSON, but not declared as JSON
        ("application/x-www-form-urlencoded", b"password=x"),
    ]
    for ct, body in cases:
        r = requests.post(gw.url("/n"), data=body, headers={"Content-Type": ct})
        assert r.status_code == 200
        assert be.received[-1].body == body, ct
        assert be.received[-1].header("Content-Length") == str(len(body))
    r = requests.post(gw.url("/g"), data=b'{"password": "x"}',
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert be.received[-1].body == b'{"password": "x"}', "an encoded body is not touched"


def test_request_body_streams_when_no_field_edit_is_configured(gateway, backend):
    be = backend()
    gw = gw_with(gateway, be, {"request-transform": {"set": {"X-A": "1"}}})
    r = request(gw.port, "POST", "/s", [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                chunked(b'{"pass', b'word": 1}'))
    assert r.status == 200
    got = be.received[0]
    assert got.header("Transfer-Encoding") == "chunked", "not buffered: still chunked upstream"
    assert got.body == b'{"password": 1}'
    assert got.header("X-A") == "1"


RESP_T = {
    "set": {"X-Frame-Options": "DENY", "Cache-Control": "no-store"},
    "add": {"X-Served-By": "portico"},
    "remove": ["Server", "X-Powered-By"],
    "remove_fields": ["secret", "data.token"],
    "rename_fields": {"data.uid": "user_id"},
}


def json_reply(doc, **kw):
    return lambda req: Reply(200, json.dumps(doc).encode(), headers=[
        ("Content-Type", "application/json"), ("X-Powered-By", "php"), ("Cache-Control", "max-age=60")], **kw)


def test_response_headers_and_json_body(gateway, backend):
    doc = {"secret": "s", "data": [{"token": "t", "uid": 1, "x": "é"}, {"uid": 2}], "n": 1e400}
    be = backend(handler=lambda req: Reply(200, json.dumps(doc).replace("Infinity", "1e400").encode(),
                                           headers=[("Content-Type", "application/json"),
                                                    ("X-Powered-By", "php"), ("Cache-Control", "max-age=60")]))
    gw = gw_with(gateway, be, {"response-transform": RESP_T})
    r = request(gw.port, "GET", "/r")
    assert r.status == 200
    assert r.header("X-Frame-Options") == "DENY"
    assert r.headers_all("Cache-Control") == ["no-store"]
    assert r.header("X-Served-By") == "portico"
    assert not r.has_header("X-Powered-By") and not r.has_header("Server")
    assert int(r.header("Content-Length")) == len(r.body)
    assert r.body == b'{"data": [{"user_id": 1, "x": "\\u00e9"}, {"user_id": 2}], "n": 1e400}'


def test_response_chunked_json_gets_a_length(gateway, backend):
    body = b'{"secret": 1, "ok": true}'
    be = backend(handler=lambda req: Reply(200, iter([body[:7], body[7:]]), chunked=True,
                                           headers=[("Content-Type", "application/problem+json")]))
    gw = gw_with(gateway, be, {"response-transform": RESP_T})
    r = request(gw.port, "GET", "/c")
    assert r.status == 200
    assert not r.chunked
    assert r.body == b'{"ok": true}'
    assert r.header("Content-Length") == str(len(r.body))


def test_response_bodies_that_are_not_json_pass_unchanged(gateway, backend):
    replies = {
        "/text": Reply(200, b'{"secret": 1}', headers=[("Content-Type", "text/plain")]),
        "/bad": Reply(200, b'{"secret": 1', headers=[("Content-Type", "application/json")]),
        "/gzip": Reply(200, b'\x1f\x8b\x08', headers=[("Content-Type", "application/json"),
                                                     ("Content-Encoding", "gzip")]),
        "/none": Reply(200, b'{"secret": 1}'),
    }
    be = backend(handler=lambda req: replies[req.path])
    gw = gw_with(gateway, be, {"response-transform": RESP_T})
    for path, rep in replies.items():
        r = request(gw.port, "GET", path)
        assert r.status == 200
        assert r.body == rep.body, path
        assert r.header("X-Frame-Options") == "DENY", "headers are still edited"


def test_response_head_request_is_left_alone(gateway, backend):
    be = backend(handler=json_reply({"secret": 1}))
    gw = gw_with(gateway, be, {"response-transform": RESP_T})
    out = raw(gw.port, build_request("HEAD", "/h", [("Connection", "close")]))
    resp, _ = parse_response(bytearray(out), method="HEAD", eof=True)
    assert resp.status == 200 and resp.body == b""
    assert resp.header("X-Frame-Options") == "DENY"


def test_response_headers_apply_to_gateway_errors(gateway, backend):
    be = backend()
    gw = gw_with(gateway, be, {"response-transform": RESP_T,
                               "request-size-limit": {"max_body_bytes": 4}})
    r = request(gw.port, "POST", "/big", body=b"too long")
    assert_problem(r, 413, "payload-too-large")
    assert r.header("X-Frame-Options") == "DENY"
    assert int(r.header("Content-Length")) == len(r.body), "the problem body is not rewritten"


def test_keep_alive_after_rewrites(gateway, backend):
    be = backend(handler=json_reply({"secret": 1, "data": {"token": "t", "uid": 5}}))
    gw = gw_with(gateway, be, {"request-transform": REQ_T, "response-transform": RESP_T})
    s = requests.Session()
    for i in range(20):
        r = s.post(gw.url("/k/%d" % i), json={"password": "p", "i": i})
        assert r.status_code == 200
        assert r.json() == {"data": {"user_id": 5}}
        assert json.loads(be.received[-1].body) == {"i": i}
    assert be.connections == 1
