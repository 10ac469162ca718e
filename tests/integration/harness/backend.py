"""Fake upstream services that run inside the test process.

Backend      a threaded HTTP/1.1 server that records every request it gets
             and answers through a programmable handler.
RawBackend   a plain socket server for responses no HTTP library would send
             (malformed, close-delimited, slow).
WsBackend    a `websockets` echo server.

Every one binds 127.0.0.1 port 0, so the kernel picks a free port.
"""

import asyncio
import http.server
import json
import logging
import socket
import threading
import time
import traceback
import types
from urllib.parse import urlsplit

REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
    204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
    304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


class Request:
    """A request as the backend received it.

    method, target (the request-target exactly as sent: path and query),
    path, query, version, headers (list of (name, value) in wire order),
    body (bytes; None until read), remote_port (the gateway's side of the
    upstream connection: one value per connection), conn (a connection
    sequence number), time (monotonic arrival of the head).
    """

    def __init__(self, backend, method, target, version, headers, remote_port, conn, rfile):
        self.backend = backend
        self.method = method
        self.target = target
        parts = urlsplit(target)
        self.path = parts.path if target.startswith("/") else target
        self.query = target.split("?", 1)[1] if "?" in target else None
        self.version = version
        self.headers = headers
        self.remote_port = remote_port
        self.conn = conn
        self.time = time.monotonic()
        self.body = None
        self.body_complete = False
        self._rfile = rfile
        self._left = None  # bytes left in a Content-Length body
        self._chunked = False
        self._chunk_left = 0
        self._done = False
        te = ",".join(self.headers_all("Transfer-Encoding")).lower()
        if "chunked" in te:
            self._chunked = True
        else:
            cl = self.header("Content-Length")
            self._left = int(cl) if cl is not None else 0
            if self._left == 0:
                self._done = True

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def headers_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return bool(self.headers_all(name))

    def header_names(self):
        return [k.lower() for k, _ in self.headers]

    def json(self):
        return json.loads(self.body)

    def iter_body(self, size=65536):
        """Stream the body in pieces (when the backend does not read it first)."""
        while not self._done:
            if self._chunked:
                if self._chunk_left == 0:
                    line = self._rfile.readline(4096)
                    if not line:
                        raise ConnectionError("eof in chunk size")
                    n = int(line.split(b";")[0].strip(), 16)
                    if n == 0:
                        while True:  # trailers
                            t = self._rfile.readline(65536)
                            if t in (b"\r\n", b"\n", b""):
                                break
                        self._done = True
                        break
                    self._chunk_left = n
                piece = self._rfile.read(min(size, self._chunk_left))
                if not piece:
                    raise ConnectionError("eof in chunk")
                self._chunk_left -= len(piece)
                if self._chunk_left == 0:
                    self._rfile.readline(3)
                yield piece
            else:
                piece = self._rfile.read(min(size, self._left))
                if not piece:
                    raise ConnectionError("eof in body: %d bytes missing" % self._left)
                self._left -= len(piece)
                if self._left == 0:
                    self._done = True
                yield piece
        self.body_complete = True

    def read_body(self):
        self.body = b"".join(self.iter_body())
        self.body_complete = True
        return self.body

    def drain(self):
        for _ in self.iter_body():
            pass

    def __repr__(self):
        return "<Request %s %s conn=%s>" % (self.method, self.target, self.conn)


class Reply:
    """What a handler answers.

    body: bytes, str, a JSON-able dict/list (sent as application/json), or an
    iterable of bytes (streamed; give length= or chunked=True).
    delay: seconds to wait before the status line.  chunk_delay: between chunks.
    close: add `Connection: close` and close after the response.
    """

    def __init__(self, status=200, body=b"", headers=(), chunked=False, delay=0.0, chunk_delay=0.0,
                 close=False, length=None, reason=None, trailers=()):
        self.status = status
        self.headers = list(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            if not any(k.lower() == "content-type" for k, _ in self.headers):
                self.headers.append(("Content-Type", "application/json"))
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.chunked = chunked
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.close = close
        self.length = length
        self.reason = reason
        self.trailers = list(trailers)


def echo_reply(req):
    """The default handler: describe the request as JSON."""
    body = req.body if req.body is not None else b""
    return Reply(200, {
        "backend": req.backend.name,
        "method": req.method,
        "target": req.target,
        "path": req.path,
        "query": req.query,
        "headers": [[k, v] for k, v in req.headers],
        "body_len": len(body),
        "body": body.decode("utf-8", "replace"),
    })


def _coerce(reply):
    if reply is None or isinstance(reply, Reply):
        return reply
    if isinstance(reply, int):
        return Reply(reply)
    if isinstance(reply, (bytes, str, dict, list)):
        return Reply(200, reply)
    if isinstance(reply, tuple):
        return Reply(*reply)
    raise TypeError("handler returned %r" % (reply,))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # connections torn down by stop() or by the gateway are expected


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.owner = self.server.owner
        self.conn_no = self.owner._conn_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.owner._conn_closed(self.connection)

    def log_message(self, *args):
        pass

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.parse_request():
                return
            self.owner._serve(self)
            self.wfile.flush()
        except (OSError, ValueError, ConnectionError):
            self.close_connection = True


class Backend:
    """A programmable HTTP/1.1 upstream.

    handler(req) returns a Reply (or an int status, bytes/str/dict body, or
    None for the default echo).  With read_body=True (default) req.body is
    read before the handler runs; with False the handler may stream it with
    req.iter_body() and whatever it leaves is drained afterwards.
    """

    def __init__(self, name="backend", handler=None, read_body=True):
        self.name = name
        self.handler = handler
        self.read_body = read_body
        self.received = []
        self.errors = []
        self.lock = threading.Lock()
        self.accepted = 0
        self.open_conns = {}
        self._active = 0
        self.max_active = 0
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.stopped = False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name="backend-%s" % name)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _conn_opened(self, sock):
        with self.lock:
            self.accepted += 1
            self.open_conns[id(sock)] = sock
            return self.accepted

    def _conn_closed(self, sock):
        with self.lock:
            self.open_conns.pop(id(sock), None)

    @property
    def connections(self):
        """Distinct upstream connections that carried requests."""
        return len({r.conn for r in self.received})

    def paths(self):
        return [r.target for r in self.received]

    def wait_for(self, n=1, timeout=5.0):
        """Wait until n requests have arrived; returns the list."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.received

    @property
    def active(self):
        return self._active

    def _serve(self, h):
        req = Request(self, h.command, h.path, h.request_version, list(h.headers.items()),
                      h.client_address[1], h.conn_no, h.rfile)
        with self.lock:
            self.received.append(req)
            self._active += 1
            self.max_active = max(self.max_active, self._active)
        try:
            if self.read_body:
                req.read_body()
            try:
                reply = _coerce((self.handler or echo_reply)(req))
                if reply is None:
                    reply = echo_reply(req)
            except Exception:
                self.errors.append(traceback.format_exc())
                reply = Reply(500, "handler raised\n", close=True)
            if not req._done:
                req.drain()
            if req.body is None:
                req.body = b""
            self._write(h, req, reply)
        finally:
            with self.lock:
                self._active -= 1

    def _write(self, h, req, r):
        if r.delay:
            time.sleep(r.delay)
        reason = r.reason if r.reason is not None else REASONS.get(r.status, "Status")
        headers = list(r.headers)
        names = {k.lower() for k, _ in headers}
        no_body = req.method == "HEAD" or r.status in (204, 304) or r.status < 200
        streamed = not isinstance(r.body, (bytes, bytearray))
        if r.chunked:
            if "transfer-encoding" not in names:
                headers.append(("Transfer-Encoding", "chunked"))
        elif "content-length" not in names and r.status not in (204, 304) and r.status >= 200:
            if streamed:
                if r.length is None:
                    raise ValueError("a streamed body needs length= or chunked=True")
                headers.append(("Content-Length", str(r.length)))
            else:
                headers.append(("Content-Length", str(len(r.body))))
        if r.close:
            headers.append(("Connection", "close"))
            h.close_connection = True
        head = "HTTP/1.1 %d %s\r\n" % (r.status, reason)
        head += "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
        w = h.wfile
        w.write(head.encode("latin-1"))
        if no_body:
            return
        pieces = [r.body] if not streamed else r.body
        if r.chunked:
            first = True
            for p in pieces:
                if not first and r.chunk_delay:
                    w.flush()
                    time.sleep(r.chunk_delay)
                first = False
                if p:
                    w.write(b"%x\r\n" % len(p) + p + b"\r\n")
                    w.flush()
            w.write(b"0\r\n" + "".join("%s: %s\r\n" % kv for kv in r.trailers).encode() + b"\r\n")
        else:
            for p in pieces:
                w.write(p)
                if r.chunk_delay:
                    w.flush()
                    time.sleep(r.chunk_delay)

    def stop(self):
        """Go down: stop accepting and cut every open connection."""
        if self.stopped:
            return
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self.open_conns.values())
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self.thread.join(5)


class RawPeer:
    """The gateway's connection as seen by a RawBackend script."""

    def __init__(self, sock, backend):
        self.sock = sock
        self.backend = backend
        self.buf = bytearray()

    def recv_head(self, timeout=5.0):
        """Read up to the end of a request head; returns it (b'' on close)."""
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            got = self.sock.recv(65536)
            if not got:
                return b""
            self.buf += got
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end])
        del self.buf[:end]
        with self.backend.lock:
            self.backend.received.append(head)
        return head

    def recv_exact(self, n, timeout=5.0):
        self.sock.settimeout(timeout)
        while len(self.buf) < n:
            got = self.sock.recv(65536)
            if not got:
                break
            self.buf += got
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawBackend:
    """Each accepted connection runs script(peer) in its own thread; the
    connection is closed when the script returns.  received: request heads."""

    def __init__(self, script, name="raw"):
        self.name = name
        self.script = script
        self.received = []
        self.errors = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.peers = []
        self.thread = threading.Thread(target=self._accept, daemon=True, name="rawbackend-%s" % name)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            peer = RawPeer(conn, self)
            self.peers.append(peer)
            threading.Thread(target=self._run, args=(peer,), daemon=True).start()

    def _run(self, peer):
        try:
            self.script(peer)
        except (OSError, ConnectionError):
            pass
        except Exception:
            self.errors.append(traceback.format_exc())
        finally:
            peer.close()

    def wait_for(self, n=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.received

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for p in self.peers:
            p.close()


def raw_reply(data, delay=0.0, close=True, read_body=True):
    """A RawBackend script: read one request head (and a Content-Length
    body), wait delay, send data verbatim, then close (or wait for the peer)."""

    def script(peer):
        head = peer.recv_head()
        if not head:
            return
        if read_body:
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    peer.recv_exact(int(line.split(b":")[1]))
        if delay:
            time.sleep(delay)
        peer.send(data)
        if close:
            # A graceful close (FIN, never RST): stop sending, then wait
            # briefly for the gateway to close its side.
            peer.sock.shutdown(socket.SHUT_WR)
            peer.sock.settimeout(2)
        else:
            peer.sock.settimeout(30)
        try:
            while peer.sock.recv(65536):
                pass
        except OSError:
            pass

    return script


class WsBackend:
    """A websockets (10.x) echo server on its own event-loop thread.
    received: (path, headers) of each handshake; messages: what was echoed."""

    def __init__(self, name="ws"):
        import websockets

        self.name = name
        self.received = []
        self.messages = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ws-%s" % name)
        self.thread.start()

        # No logging from this thread: formatting a traceback here while
        # pytest formats one in the main thread trips a CPython 3.11.2 bug
        # ("AST constructor recursion depth mismatch").
        quiet = logging.getLogger("portico.test.ws")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False

        async def start():
            return await websockets.serve(self._handler, "127.0.0.1", 0, logger=quiet)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        self.stopped = False

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    async def _handler(self, ws, path=None):
        import websockets

        self.received.append(types.SimpleNamespace(path=ws.path, headers=list(ws.request_headers.raw_items())))
        try:
            async for msg in ws:
                self.messages.append(msg)
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass  # the test sees the failure on its side

    def stop(self):
        if self.stopped:
            return
        self.stopped = True

        async def close():
            self.server.close()
            await self.server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
