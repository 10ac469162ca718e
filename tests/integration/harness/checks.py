"""Assertions shared by the tests."""

import json
import re

PROBLEM_CT = "application/problem+json"
REQID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _header(resp, name):
    if hasattr(resp, "header"):  # rawhttp.HttpResponse
        return resp.header(name)
    return resp.headers.get(name)  # requests.Response


def _body(resp):
    return resp.body if hasattr(resp, "body") else resp.content


def _status(resp):
    return resp.status if hasattr(resp, "body") else resp.status_code


def assert_problem(resp, status, slug, gw=None):
    """An RFC 9457 answer made by the gateway itself (SPEC §7):
    Content-Type application/problem+json; type urn:portico:error:<slug>;
    title, status, detail, request_id; request_id equal to the X-Request-Id
    header sent back.  Returns the decoded document."""
    assert _status(resp) == status, "status %s, want %s; body %r" % (_status(resp), status, _body(resp)[:500])
    ct = (_header(resp, "Content-Type") or "").split(";")[0].strip().lower()
    assert ct == PROBLEM_CT, "Content-Type %r, want %s" % (_header(resp, "Content-Type"), PROBLEM_CT)
    try:
        doc = json.loads(_body(resp))
    except ValueError:
        raise AssertionError("problem body is not JSON: %r" % _body(resp)[:500])
    assert isinstance(doc, dict), doc
    assert doc.get("type") == "urn:portico:error:" + slug, "type %r, want urn:portico:error:%s" % (doc.get("type"), slug)
    assert doc.get("status") == status and type(doc.get("status")) is int, doc
    assert isinstance(doc.get("title"), str) and doc["title"], doc
    assert isinstance(doc.get("detail"), str), doc
    rid = doc.get("request_id")
    assert isinstance(rid, str) and rid, doc
    hdr = _header(resp, "X-Request-Id")
    assert hdr == rid, "X-Request-Id header %r differs from the problem's request_id %r" % (hdr, rid)
    if gw is not None:
        assert gw.dir not in _body(resp).decode("utf-8", "replace"), "problem leaks a file path: %r" % doc
    return doc


def header_tokens(values):
    """Comma-separated header values → lower-cased tokens."""
    out = []
    for v in values:
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def parse_traceparent(value):
    m = TRACEPARENT_RE.match(value or "")
    assert m, "not a W3C traceparent: %r" % value
    trace_id, parent_id, flags = m.groups()
    assert trace_id != "0" * 32 and parent_id != "0" * 16, value
    return trace_id, parent_id, flags
