"""Shared pieces of the demo shop's three services (standard library only).

Each service is a table of (method, path pattern) -> handler on top of
http.server, speaking JSON over HTTP/1.1 on loopback.  Seed data lives here
so that the services agree with each other: every order names an existing
customer and existing products, and its total is the sum of their prices.
"""

import argparse
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

USERS = [
    {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"},
    {"id": 2, "name": "Alan Turing", "email": "alan@example.com"},
    {"id": 3, "name": "Grace Hopper", "email": "grace@example.com"},
]

PRODUCTS = [
    {"id": 1, "name": "Mechanical keyboard", "price": 89.0},
    {"id": 2, "name": "USB-C cable", "price": 9.5},
    {"id": 3, "name": "27\" monitor", "price": 249.0},
    {"id": 4, "name": "Desk lamp", "price": 34.9},
]


def order_total(product_ids):
    prices = {p["id"]: p["price"] for p in PRODUCTS}
    return round(sum(prices[i] for i in product_ids), 2)


ORDERS = [
    {"id": 1, "customer_id": 1, "product_ids": [1, 2]},
    {"id": 2, "customer_id": 2, "product_ids": [3]},
    {"id": 3, "customer_id": 1, "product_ids": [2, 4]},
    {"id": 4, "customer_id": 3, "product_ids": [1, 3, 4]},
]
for _o in ORDERS:
    _o["total"] = order_total(_o["product_ids"])


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Store:
    """A list of records guarded by a lock, with id allocation."""

    def __init__(self, records):
        self.records = [dict(r) for r in records]
        self.lock = threading.Lock()

    def all(self):
        with self.lock:
            return [dict(r) for r in self.records]

    def get(self, rid):
        with self.lock:
            for r in self.records:
                if r["id"] == rid:
                    return dict(r)
        raise HttpError(404, "no record with id %d" % rid)

    def add(self, record):
        with self.lock:
            record = dict(record, id=max([r["id"] for r in self.records] + [0]) + 1)
            self.records.append(record)
            return dict(record)


class Request:
    def __init__(self, handler, params):
        self.method = handler.command
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.params = params
        self.headers = handler.headers
        self._handler = handler
        self._body = None

    def json(self):
        if self._body is None:
            n = int(self.headers.get("Content-Length") or 0)
            self._body = self._handler.rfile.read(n) if n else b""
        try:
            return json.loads(self._body or b"null")
        except ValueError:
            raise HttpError(400, "body is not JSON")


def int_param(value, name="id"):
    if not re.fullmatch(r"[0-9]+", value or ""):
        raise HttpError(400, "%s must be a positive integer" % name)
    return int(value)


def require(doc, field, kind):
    if not isinstance(doc, dict) or not isinstance(doc.get(field), kind) or isinstance(doc.get(field), bool):
        raise HttpError(400, "field %r is required (%s)" % (field, kind.__name__))
    return doc[field]


def make_handler(service, routes):
    """routes: list of (method, pattern like "/users/{id}", fn(req) -> (status, doc))."""
    compiled = []
    for method, pattern, fn in routes + [("GET", "/healthz", lambda req: (200, {"status": "ok", "service": service}))]:
        rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        compiled.append((method, rx, fn))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "shop-" + service

        def log_message(self, fmt, *args):
            sys.stderr.write("%s: %s\n" % (service, fmt % args))

        def _dispatch(self):
            path = urlsplit(self.path).path
            want = "GET" if self.command == "HEAD" else self.command
            allowed = []
            for method, rx, fn in compiled:
                m = rx.match(path)
                if not m:
                    continue
                if method != want:
                    allowed.append(method)
                    continue
                req = Request(self, m.groupdict())
                try:
                    status, doc = fn(req)
                except HttpError as e:
                    status, doc = e.status, {"error": e.message}
                # Read whatever body the handler did not, to keep the connection usable.
                if req._body is None and self.headers.get("Content-Length"):
                    self.rfile.read(int(self.headers["Content-Length"]))
                return self._send(status, doc)
            if self.headers.get("Content-Length"):
                self.rfile.read(int(self.headers["Content-Length"]))
            if allowed:
                return self._send(405, {"error": "method not allowed"}, [("Allow", ", ".join(sorted(set(allowed))))])
            return self._send(404, {"error": "not found"})

        def _send(self, status, doc, headers=()):
            body = (json.dumps(doc, indent=None) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    return Handler


def serve(service, default_port, routes, argv=None):
    ap = argparse.ArgumentParser(description="demo shop: %s service" % service)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=default_port)
    args = ap.parse_args(argv)
    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(service, routes))
    httpd.daemon_threads = True
    sys.stderr.write("%s: listening on http://%s:%d\n" % (service, args.host, args.port))
    sys.stderr.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
