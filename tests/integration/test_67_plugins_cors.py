"""cors (SPEC §3, the Fetch standard's CORS protocol): preflights answered by
the gateway, actual responses (the service's and the gateway's own errors)
marked for allowed origins only, credentials, wildcards, Vary."""

import requests

from harness import Reply, assert_problem, header_tokens, one_route, request

APP = "https://app.example.com"
EVIL = "https://evil.example.net"
CORS_FIELDS = ["access-control-allow-origin", "access-control-allow-credentials",
               "access-control-expose-headers", "access-control-allow-methods",
               "access-control-allow-headers", "access-control-max-age"]


def cors_fields(r):
    return {k.lower(): v for k, v in r.headers if k.lower() in CORS_FIELDS}


def upstream_with_its_own_cors(req):
    return Reply(200, b"payload", headers=[("Access-Control-Allow-Origin", "*"),
                                           ("Access-Control-Allow-Credentials", "true"),
                                           ("X-Total", "3")])


def gw_cors(gateway, backend, opts, handler=upstream_with_its_own_cors, **route_opts):
    be = backend(handler=handler)
    route_opts["plugins"] = dict({"cors": opts}, **route_opts.get("plugins", {}))
    return gateway(one_route(be, route_opts=route_opts)), be


LISTED = {"origins": [APP, "http://localhost:3000"], "methods": ["GET", "POST", "PUT"],
          "headers": ["Content-Type", "Authorization"], "expose": ["X-Total", "X-Request-Id"],
          "credentials": True, "max_age": "10m"}


def preflight(gw, origin, method="PUT", req_headers=None, path="/items"):
    h = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if req_headers:
        h.append(("Access-Control-Request-Headers", req_headers))
    return request(gw.port, "OPTIONS", path, h)


def test_preflight_from_an_allowed_origin(gateway, backend):
    gw, be = gw_cors(gateway, backend, LISTED)
    r = preflight(gw, APP, "PUT", "content-type,authorization")
    assert r.status == 204
    assert r.body == b""
    assert cors_fields(r) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, PUT",
        "access-control-allow-headers": "Content-Type, Authorization",
        "access-control-max-age": "600",
    }
    assert "origin" in header_tokens(r.headers_all("Vary"))
    assert r.header("X-Request-Id")
    assert be.received == [], "a preflight never reaches the service"


def test_preflight_from_another_origin_gets_no_cors_fields(gateway, backend):
    gw, be = gw_cors(gateway, backend, LISTED)
    r = preflight(gw, EVIL)
    assert r.status == 204
    assert cors_fields(r) == {}
    assert be.received == []


def test_actual_request_from_an_allowed_origin(gateway, backend):
    gw, be = gw_cors(gateway, backend, LISTED)
    r = requests.get(gw.url("/items"), headers={"Origin": APP})
    assert r.status_code == 200 and r.content == b"payload"
    assert r.headers["Access-Control-Allow-Origin"] == APP, "the service's * is replaced"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Expose-Headers"] == "X-Total, X-Request-Id"
    assert "Access-Control-Allow-Methods" not in r.headers, "preflight-only fields stay out"
    assert "origin" in header_tokens([r.headers["Vary"]])
    assert be.received[0].header("Origin") == APP, "the Origin still goes upstream"


def test_actual_request_from_another_origin(gateway, backend):
    gw, _ = gw_cors(gateway, backend, LISTED)
    r = request(gw.port, "GET", "/items", [("Origin", EVIL)])
    assert r.status == 200
    assert cors_fields(r) == {}, "the service's own CORS fields are dropped too"
    assert "origin" in header_tokens(r.headers_all("Vary"))


def test_request_without_origin_is_not_cors(gateway, backend):
    gw, _ = gw_cors(gateway, backend, {"origins": ["*"]})
    r = request(gw.port, "GET", "/items")
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == "*", "not a CORS request: left as the service sent it"
    assert "origin" not in header_tokens(r.headers_all("Vary")), "with * the answer does not vary"


def test_wildcard_without_credentials(gateway, backend):
    gw, _ = gw_cors(gateway, backend, {})
    r = request(gw.port, "GET", "/items", [("Origin", EVIL)])
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert not r.has_header("Access-Control-Allow-Credentials")
    p = preflight(gw, EVIL, "PATCH", "X-Custom")
    assert p.status == 204
    assert p.header("Access-Control-Allow-Origin") == "*"
    assert p.header("Access-Control-Allow-Methods") == "GET, HEAD, PUT, PATCH, POST, DELETE"
    assert p.header("Access-Control-Allow-Headers") == "X-Custom", "unset headers: what was asked"
    assert not p.has_header("Access-Control-Max-Age")


def test_wildcard_with_credentials_reflects_the_origin(gateway, backend):
    gw, _ = gw_cors(gateway, backend, {"origins": ["*"], "credentials": True, "methods": ["*"]})
    r = request(gw.port, "GET", "/items", [("Origin", EVIL)])
    assert r.header("Access-Control-Allow-Origin") == EVIL
    assert r.header("Access-Control-Allow-Credentials") == "true"
    assert "origin" in header_tokens(r.headers_all("Vary"))
    p = preflight(gw, EVIL, "DELETE")
    assert p.header("Access-Control-Allow-Methods") == "DELETE", "* is literal with credentials"
    n = request(gw.port, "GET", "/items", [("Origin", "null")])
    assert not n.has_header("Access-Control-Allow-Origin"), "the null origin must be listed explicitly"


def test_gateway_errors_carry_cors_fields(gateway, backend, dead_addr):
    from harness import UPSTREAM_ERRORS, config, route, service
    be = backend()
    gw = gateway(config({"svc": service(be), "down": service(dead_addr)},
                        [route("big", ["/big"], "svc", plugins={"cors": LISTED, "request-size-limit": {"max_body_bytes": 3}}),
                         route("gone", ["/gone"], "down", plugins={"cors": LISTED})]),
                 expect_errors=[UPSTREAM_ERRORS])
    r = request(gw.port, "POST", "/big", [("Origin", APP)], body=b"too big")
    assert_problem(r, 413, "payload-too-large")
    assert r.header("Access-Control-Allow-Origin") == APP, "the page can read the error"
    r = request(gw.port, "GET", "/gone", [("Origin", APP)])
    assert r.status == 502
    assert r.header("Access-Control-Allow-Origin") == APP
    r = request(gw.port, "GET", "/gone", [("Origin", EVIL)])
    assert r.status == 502 and not r.has_header("Access-Control-Allow-Origin")


def test_plain_options_goes_to_the_service(gateway, backend):
    gw, be = gw_cors(gateway, backend, LISTED, handler=lambda req: Reply(200, b"", headers=[("Allow", "GET")]))
    r = request(gw.port, "OPTIONS", "/items", [("Origin", APP)])  # no Access-Control-Request-Method
    assert r.status == 200 and r.header("Allow") == "GET"
    assert len(be.received) == 1
    assert r.header("Access-Control-Allow-Origin") == APP


def test_route_methods_must_list_options_for_preflights(gateway, backend):
    be = backend()
    gw = gateway(one_route(be, route_opts={"match": {"paths": ["/*"], "methods": ["GET", "OPTIONS"]},
                                           "plugins": {"cors": LISTED}}))
    r = preflight(gw, APP, "GET")
    assert r.status == 204 and r.header("Access-Control-Allow-Origin") == APP
