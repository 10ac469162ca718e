"""Where plugins are set and in which order they run (SPEC §3): route over
service over global, and the fixed order ip-restriction → bot-detection →
cors → ... → request-size-limit → request-transform → upstream →
response-transform → access-log, whatever the order in the file."""

import json
import os

from harness import assert_problem, config, request, route, service
from test_65_plugins_access_log import json_lines

APP = "https://app.example.com"


def test_route_over_service_over_global(gateway, backend):
    be = backend()
    deny_all = {"ip-restriction": {"deny": ["0.0.0.0/0", "::/0"]}}
    allow_local = {"ip-restriction": {"allow": ["127.0.0.1"]}}
    gw = gateway(config(
        {"open": service(be, plugins=allow_local), "closed": service(be)},
        [route("global-only", ["/g"], "closed"),
         route("service-level", ["/s"], "open"),
         route("route-level", ["/r"], "closed", plugins=allow_local),
         route("route-beats-service", ["/rs"], "open", plugins=deny_all)],
        plugins=deny_all))
    assert_problem(request(gw.port, "GET", "/g"), 403, "forbidden")
    assert request(gw.port, "GET", "/s").status == 200, "the service's instance replaces the global one"
    assert request(gw.port, "GET", "/r").status == 200, "the route's instance replaces the global one"
    assert_problem(request(gw.port, "GET", "/rs"), 403, "forbidden")
    assert [r.path for r in be.received] == ["/s", "/r"]


def test_plugins_merge_by_name_across_levels(gateway, backend):
    be = backend()
    gw = gateway(config(
        {"svc": service(be, plugins={"response-transform": {"set": {"X-From": "service"}}})},
        [route("r", ["/*"], "svc", plugins={"request-transform": {"set": {"X-Route": "1"}}})],
        plugins={"response-transform": {"set": {"X-From": "global"}}, "cors": {}}))
    r = request(gw.port, "GET", "/m", [("Origin", APP)])
    assert r.status == 200
    assert r.header("X-From") == "service"
    assert r.header("Access-Control-Allow-Origin") == "*", "a global plugin the others do not name still runs"
    assert be.received[0].header("X-Route") == "1"


def test_ip_restriction_runs_before_cors_answers_a_preflight(gateway, backend):
    be = backend()
    # written in the opposite order on purpose
    gw = gateway(config({"svc": service(be)}, [route("r", ["/*"], "svc", plugins={
        "cors": {"origins": [APP]},
        "ip-restriction": {"deny": ["127.0.0.1"]}})]))
    r = request(gw.port, "OPTIONS", "/x", [("Origin", APP), ("Access-Control-Request-Method", "GET")])
    assert_problem(r, 403, "forbidden")
    assert r.header("Access-Control-Allow-Origin") == APP, "cors still marks the refusal for the page"
    assert be.received == []


def test_bot_detection_runs_before_cors(gateway, backend):
    be = backend()
    gw = gateway(config({"svc": service(be)}, [route("r", ["/*"], "svc", plugins={
        "cors": {}, "bot-detection": {"deny": ["evil"]}})]))
    r = request(gw.port, "OPTIONS", "/x", [("Origin", APP), ("Access-Control-Request-Method", "GET"),
                                          ("User-Agent", "evil/1")])
    assert_problem(r, 403, "forbidden")
    ok = request(gw.port, "OPTIONS", "/x", [("Origin", APP), ("Access-Control-Request-Method", "GET")])
    assert ok.status == 204


def test_size_limit_runs_before_the_request_transform_reads_the_body(gateway, backend):
    be = backend()
    gw = gateway(config({"svc": service(be)}, [route("r", ["/*"], "svc", plugins={
        "request-transform": {"remove_fields": ["a"]},
        "request-size-limit": {"max_body_bytes": 16}})]))
    r = request(gw.port, "POST", "/t", [("Content-Type", "application/json")], body=b'{"a": 1, "b": "0123456789"}')
    assert_problem(r, 413, "payload-too-large")
    assert be.received == []
    r = request(gw.port, "POST", "/t", [("Content-Type", "application/json")], body=b'{"a": 1, "b": 2}')
    assert r.status == 200 and be.received[0].body == b'{"b": 2}'


def test_access_log_sees_every_outcome(gateway, backend):
    be = backend()
    gw = gateway(config({"svc": service(be)}, [route("r", ["/*"], "svc", plugins={
        "bot-detection": {"deny": ["evil"]},
        "request-size-limit": {"max_body_bytes": 2},
        "access-log": {"path": "a.log"},
        "cors": {}})]))
    assert request(gw.port, "GET", "/fine").status == 200
    assert request(gw.port, "GET", "/bot", [("User-Agent", "evil")]).status == 403
    assert request(gw.port, "POST", "/big", body=b"abc").status == 413
    assert request(gw.port, "OPTIONS", "/pre", [("Origin", APP), ("Access-Control-Request-Method", "GET")]).status == 204
    docs = json_lines(os.path.join(gw.dir, "a.log"), 4)
    got = [(d["path"], d["status"], d["route"], d["target"] is not None) for d in docs]
    assert got == [("/fine", 200, "r", True), ("/bot", 403, "r", False), ("/big", 413, "r", False),
                   ("/pre", 204, "r", False)]
    assert docs[1]["error"] == "this User-Agent is not allowed"
    assert "exceeds 2 bytes" in docs[2]["error"]
    assert docs[0]["error"] is None and docs[3]["error"] is None
    assert all(json.dumps(d) for d in docs)
