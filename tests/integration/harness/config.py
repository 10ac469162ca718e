"""Building configuration dicts (SPEC §2) without repeating boilerplate."""


def addr(target):
    """A Backend-like object (with .addr) or an address string."""
    return target.addr if hasattr(target, "addr") else target


def service(*targets, **opts):
    """services.NAME: targets plus any other keys (balance=, timeouts=, ...).
    A (target, weight) tuple becomes {address, weight}."""
    out = []
    for t in targets:
        if isinstance(t, tuple):
            out.append({"address": addr(t[0]), "weight": t[1]})
        else:
            out.append(addr(t))
    d = {"targets": out}
    d.update(opts)
    return d


def route(name, paths, service, *, methods=None, hosts=None, headers=None, **opts):
    """One entry of routes: (strip_prefix=, rewrite=, preserve_host=, max_body_bytes=, ...)."""
    if isinstance(paths, str):
        paths = [paths]
    match = {"paths": list(paths)}
    if methods:
        match["methods"] = list(methods)
    if hosts:
        match["hosts"] = list(hosts)
    if headers:
        match["headers"] = dict(headers)
    d = {"name": name, "match": match, "service": service}
    d.update(opts)
    return d


def config(services, routes, server=None, **top):
    d = {}
    if server:
        d["server"] = dict(server)
    d["services"] = services
    d["routes"] = routes
    d.update(top)
    return d


def one_route(*targets, paths=("/*",), route_opts=None, service_opts=None, server=None, **top):
    """The common case: every path (or `paths`) to one service `svc`."""
    return config({"svc": service(*targets, **(service_opts or {}))},
                  [route("main", list(paths), "svc", **(route_opts or {}))], server=server, **top)
