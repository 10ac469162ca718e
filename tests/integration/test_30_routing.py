"""Route matching, priorities, path normalisation and path rewriting
(SPEC §2.1, §10 "Paths").  Every route has its own backend, named after
the route, whose echo tells which route won and what path went upstream."""

import pytest

from harness import assert_problem, config, request, route, service


def routed(gateway, backend, *routes, **top):
    """routes: (name, paths, {route options}) tuples."""
    services, rs, backends = {}, [], {}
    for name, paths, opts in routes:
        backends[name] = backend(name)
        services[name] = service(backends[name])
        rs.append(route(name, paths, name, **opts))
    gw = gateway(config(services, rs, **top))
    gw.backends = backends
    return gw


def which(gw, target, method="GET", headers=(), host="localhost"):
    """The name of the route that answered, or the status when none did."""
    r = request(gw.port, method, target, headers, host=host, body=b"" if method in ("POST", "PUT") else None)
    if r.status == 200:
        return r.json()["backend"]
    return r.status


def upstream(gw, target, headers=(), host="localhost"):
    """(route, request-target as the backend received it)."""
    r = request(gw.port, "GET", target, headers, host=host)
    assert r.status == 200, (target, r.status, r.body)
    doc = r.json()
    return doc["backend"], doc["target"]


def test_exact_path(gateway, backend):
    gw = routed(gateway, backend, ("exact", "/a/b", {}))
    assert which(gw, "/a/b") == "exact"
    assert which(gw, "/a/b?q=1") == "exact"
    assert which(gw, "/a/b/") == 404
    assert which(gw, "/a/bc") == 404
    assert which(gw, "/a") == 404


def test_prefix_does_not_match_its_bare_root(gateway, backend):
    gw = routed(gateway, backend, ("prefix", "/a/*", {}))
    assert which(gw, "/a/") == "prefix"
    assert which(gw, "/a/b") == "prefix"
    assert which(gw, "/a/b/c/d") == "prefix"
    assert which(gw, "/a") == 404
    assert which(gw, "/ab") == 404


def test_param_captures_one_segment(gateway, backend):
    gw = routed(gateway, backend, ("param", "/users/{id}", {"rewrite": "/people/{id}"}))
    assert upstream(gw, "/users/42") == ("param", "/people/42")
    assert which(gw, "/users/42/x") == 404
    assert which(gw, "/users/") == 404


def test_rest_captures_the_remaining_path(gateway, backend):
    gw = routed(gateway, backend, ("files", "/files/{rest*}", {"rewrite": "/store/{rest}"}))
    assert upstream(gw, "/files/a/b/c.txt") == ("files", "/store/a/b/c.txt")
    assert upstream(gw, "/files/x") == ("files", "/store/x")


def test_regex_named_groups_in_rewrite(gateway, backend):
    gw = routed(gateway, backend,
                ("re", r"~ ^/archive/(?<year>[0-9]{4})/(?<slug>[a-z-]+)$", {"rewrite": "/posts/{slug}/{year}"}))
    assert upstream(gw, "/archive/2024/hello-world") == ("re", "/posts/hello-world/2024")
    assert which(gw, "/archive/24/hello") == 404


def test_methods_narrow_and_405_lists_allow(gateway, backend):
    gw = routed(gateway, backend,
                ("read", "/m", {"match": {"paths": ["/m"], "methods": ["GET", "POST"]}}),
                ("remove", "/m", {"match": {"paths": ["/m"], "methods": ["DELETE"]}}))
    assert which(gw, "/m") == "read"
    assert which(gw, "/m", "POST") == "read"
    assert which(gw, "/m", "DELETE") == "remove"
    r = request(gw.port, "PUT", "/m", body=b"")
    assert_problem(r, 405, "method-not-allowed", gw)
    allow = {m.strip() for m in r.header("Allow", "").split(",") if m.strip()}
    assert {"GET", "POST", "DELETE"} <= allow and "PUT" not in allow, r.header("Allow")
    assert which(gw, "/other", "PUT") == 404


def test_hosts_with_wildcards(gateway, backend):
    gw = routed(gateway, backend,
                ("api", "/h", {"match": {"paths": ["/h"], "hosts": ["api.example.com"]}}),
                ("wild", "/h", {"match": {"paths": ["/h"], "hosts": ["*.example.com"]}}),
                ("any", "/h", {}))
    assert which(gw, "/h", host="api.example.com") == "api"
    assert which(gw, "/h", host="API.Example.COM") == "api"
    assert which(gw, "/h", host="api.example.com:8080") == "api"
    assert which(gw, "/h", host="shop.example.com") == "wild"
    assert which(gw, "/h", host="a.b.example.com") == "wild"
    assert which(gw, "/h", host="example.com") == "any"
    assert which(gw, "/h", host="api.example.org") == "any"


def test_absolute_form_authority_overrides_host(gateway, backend):
    """RFC 9112 section 3.2.2: with an absolute-form request-target the
    authority is the host (the Host field is ignored) and the backend gets
    the origin form."""
    gw = routed(gateway, backend,
                ("api", "/h", {"match": {"paths": ["/h"], "hosts": ["api.example.com"]}}),
                ("any", "/h", {}))
    assert upstream(gw, "http://api.example.com/h?x=1", host="other.example.org") == ("api", "/h?x=1")
    assert upstream(gw, "http://other.example.org/h", host="api.example.com") == ("any", "/h")
    req = gw.backends["api"].received[0]
    assert req.header("X-Forwarded-Host") == "api.example.com"


def test_host_only_routes_give_404_for_other_hosts(gateway, backend):
    gw = routed(gateway, backend, ("api", "/h", {"match": {"paths": ["/h"], "hosts": ["api.example.com"]}}))
    assert which(gw, "/h", host="api.example.com") == "api"
    assert which(gw, "/h", host="other.example.com") == 404


def test_header_match(gateway, backend):
    gw = routed(gateway, backend,
                ("v2", "/v", {"match": {"paths": ["/v"], "headers": {"X-Api-Version": "2"}}}),
                ("v1", "/v", {}))
    assert which(gw, "/v", headers=[("X-Api-Version", "2")]) == "v2"
    assert which(gw, "/v", headers=[("x-api-version", "2")]) == "v2"
    assert which(gw, "/v", headers=[("X-Api-Version", "3")]) == "v1"
    assert which(gw, "/v") == "v1"


def test_header_match_without_fallback_is_404(gateway, backend):
    gw = routed(gateway, backend, ("v2", "/v", {"match": {"paths": ["/v"], "headers": {"X-Api-Version": "2"}}}))
    assert which(gw, "/v", headers=[("X-Api-Version", "2")]) == "v2"
    assert which(gw, "/v") == 404


def test_priority_exact_beats_prefix_whatever_the_order(gateway, backend):
    gw = routed(gateway, backend, ("prefix", "/a/*", {}), ("exact", "/a/b", {}))
    assert which(gw, "/a/b") == "exact"
    assert which(gw, "/a/c") == "prefix"


def test_priority_param_beats_prefix(gateway, backend):
    gw = routed(gateway, backend, ("prefix", "/u/*", {}), ("param", "/u/{id}", {}))
    assert which(gw, "/u/7") == "param"
    assert which(gw, "/u/7/orders") == "prefix"


def test_priority_more_static_segments_first(gateway, backend):
    gw = routed(gateway, backend, ("two_params", "/u/{a}/{b}", {}), ("one_param", "/u/{a}/orders", {}))
    assert which(gw, "/u/7/orders") == "one_param"
    assert which(gw, "/u/7/items") == "two_params"


def test_priority_longest_prefix_first(gateway, backend):
    gw = routed(gateway, backend, ("short", "/a/*", {}), ("long", "/a/b/*", {}))
    assert which(gw, "/a/b/c") == "long"
    assert which(gw, "/a/x/c") == "short"
    assert which(gw, "/a/b") == "short"


def test_priority_regex_comes_last(gateway, backend):
    gw = routed(gateway, backend, ("regex", "~ ^/r/.*$", {}), ("prefix", "/r/*", {}), ("regex_only", "~ ^/only/[0-9]+$", {}))
    assert which(gw, "/r/x") == "prefix"
    assert which(gw, "/only/12") == "regex_only"
    assert which(gw, "/only/ab") == 404


def test_priority_regexes_in_declaration_order(gateway, backend):
    gw = routed(gateway, backend, ("first", "~ ^/x/[a-z]+$", {}), ("second", "~ ^/x/.*$", {}))
    assert which(gw, "/x/abc") == "first"
    assert which(gw, "/x/123") == "second"


def test_priority_tie_goes_to_the_earlier_route(gateway, backend):
    gw = routed(gateway, backend, ("earlier", "/t/*", {}), ("later", "/t/*", {}))
    assert which(gw, "/t/1") == "earlier"


@pytest.mark.parametrize("sent, seen", [
    ("/n/a/./b/../c", "/n/a/c"),
    ("/n/./x", "/n/x"),
    ("/n/a/b/..", "/n/a/"),
    ("/n//x///y", "/n/x/y"),
    ("//n/x", "/n/x"),
    ("/n/%7Euser", "/n/~user"),
    ("/n/%41%62%63-%5F%2E", "/n/Abc-_."),
    ("/n/a%2Fb", "/n/a%2Fb"),
    ("/n/a%2fb", "/n/a%2Fb"),
    ("/n/sp%20ace", "/n/sp%20ace"),
    ("/n/%2e%2e/n/z", "/n/z"),
    ("/n/x/", "/n/x/"),
])
def test_path_normalisation_goes_upstream(gateway, backend, sent, seen):
    gw = routed(gateway, backend, ("n", "/n/*", {}))
    assert upstream(gw, sent) == ("n", seen)


def test_encoded_slash_never_splits_a_segment(gateway, backend):
    gw = routed(gateway, backend, ("one", "/seg/{id}", {}), ("deeper", "/seg/*", {}))
    assert upstream(gw, "/seg/a%2Fb") == ("one", "/seg/a%2Fb")
    assert upstream(gw, "/seg/a/b") == ("deeper", "/seg/a/b")


def test_normalised_path_is_what_matches(gateway, backend):
    gw = routed(gateway, backend, ("admin", "/admin/*", {}), ("public", "/public/*", {}))
    assert upstream(gw, "/public/../admin/x") == ("admin", "/admin/x")
    assert upstream(gw, "/%61dmin/x") == ("admin", "/admin/x")


@pytest.mark.parametrize("target", ["/../x", "/n/../../x", "/n/%2e%2e/%2E%2E/x", "/.."])
def test_path_escaping_the_root_is_400(gateway, backend, target):
    gw = routed(gateway, backend, ("n", "/*", {}))
    assert_problem(request(gw.port, "GET", target), 400, "bad-request", gw)
    assert gw.backends["n"].received == []


def test_strip_prefix(gateway, backend):
    gw = routed(gateway, backend, ("users", ["/api/users", "/api/users/*"], {"strip_prefix": "/api"}))
    assert upstream(gw, "/api/users") == ("users", "/users")
    assert upstream(gw, "/api/users/7") == ("users", "/users/7")
    assert upstream(gw, "/api/users/7?expand=orders") == ("users", "/users/7?expand=orders")


def test_strip_prefix_down_to_root(gateway, backend):
    gw = routed(gateway, backend, ("svc", ["/svc", "/svc/*"], {"strip_prefix": "/svc"}))
    assert upstream(gw, "/svc") == ("svc", "/")
    assert upstream(gw, "/svc/") == ("svc", "/")
    assert upstream(gw, "/svc/x") == ("svc", "/x")


def test_rewrite_from_captures_keeps_query(gateway, backend):
    gw = routed(gateway, backend, ("users", "/api/users/{id}", {"rewrite": "/v2/users/{id}"}))
    assert upstream(gw, "/api/users/7?fields=name&x=%20y") == ("users", "/v2/users/7?fields=name&x=%20y")


def test_query_string_is_passed_on_verbatim(gateway, backend):
    gw = routed(gateway, backend, ("q", "/q/*", {}))
    for query in ["a=1&b=2", "a=%20x&b=%2F&c", "x=1&x=2&y=", "q=%7E~", "empty="]:
        assert upstream(gw, "/q/p?" + query) == ("q", "/q/p?" + query)


def test_unknown_method_token_can_be_routed(gateway, backend):
    gw = routed(gateway, backend, ("any", "/any/*", {}))
    assert which(gw, "/any/x", "PATCH") == "any"
    assert which(gw, "/any/x", "PURGE") == "any"
