"""Raw HTTP/1.1 on plain sockets: exact bytes out, strict parsing in.

The gateway's answers are parsed strictly (CRLF line endings, one framing per
message) so that a sloppy response fails the test rather than being papered
over by a lenient client library.
"""

import json
import socket
import time


class ParseError(AssertionError):
    pass


class HttpResponse:
    """One parsed response.  headers is a list of (name, value) in wire order."""

    def __init__(self, version, status, reason, headers, body, raw_head, trailers=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw_head = raw_head
        self.trailers = trailers or []

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

    @property
    def content_type(self):
        return self.header("Content-Type", "")

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    @property
    def chunked(self):
        te = ",".join(self.headers_all("Transfer-Encoding")).lower()
        return "chunked" in te

    def connection_tokens(self):
        toks = []
        for v in self.headers_all("Connection"):
            toks += [t.strip().lower() for t in v.split(",") if t.strip()]
        return toks

    def __repr__(self):
        return "<HttpResponse %s %d %r %d bytes>" % (self.version, self.status, self.headers, len(self.body))


def _parse_head(head):
    lines = head.split(b"\r\n")
    for ln in lines:
        if b"\n" in ln or b"\r" in ln:
            raise ParseError("bare CR or LF in response head: %r" % head)
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ParseError("bad status line %r" % status_line)
    version = parts[0]
    if not parts[1].isdigit() or len(parts[1]) != 3:
        raise ParseError("bad status code in %r" % status_line)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ln[:1] in (b" ", b"\t"):
            raise ParseError("obsolete line folding in response: %r" % head)
        if b":" not in ln:
            raise ParseError("header line without colon: %r" % ln)
        k, v = ln.split(b":", 1)
        if not k or k != k.strip():
            raise ParseError("bad header name %r" % k)
        headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
    return version, status, reason, headers


def _decode_chunked(buf, start):
    """Returns (body, trailers, end) or None when incomplete."""
    pos = start
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        line = buf[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(line, 16)
        except ValueError:
            raise ParseError("bad chunk size line %r" % buf[pos:eol])
        pos = eol + 2
        if size == 0:
            trailers = []
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                line = buf[pos:eol]
                pos = eol + 2
                if not line:
                    return bytes(body), trailers, pos
                k, _, v = line.partition(b":")
                trailers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos:pos + size]
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise ParseError("chunk not followed by CRLF")
        pos += size + 2


def parse_response(buf, method="GET", eof=False):
    """Parse one response from the start of buf.

    Returns (HttpResponse, bytes_consumed) or None when more bytes are
    needed.  With eof=True a body delimited by the connection closing is
    complete.  1xx responses are returned on their own.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if eof and buf:
            raise ParseError("connection closed inside a response head: %r" % buf[:500])
        return None
    head = bytes(buf[:end])
    version, status, reason, headers = _parse_head(head)
    pos = end + 4
    resp = HttpResponse(version, status, reason, headers, b"", head)
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        return resp, pos
    te = [v.lower() for v in resp.headers_all("Transfer-Encoding")]
    cl = resp.headers_all("Content-Length")
    if te:
        if cl:
            raise ParseError("response with both Content-Length and Transfer-Encoding")
        if te[-1].split(",")[-1].strip() != "chunked":
            raise ParseError("unexpected response transfer-coding %r" % te)
        r = _decode_chunked(buf, pos)
        if r is None:
            if eof:
                raise ParseError("connection closed inside a chunked body")
            return None
        resp.body, resp.trailers, pos = r
        return resp, pos
    if cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise ParseError("bad Content-Length %r" % cl)
        n = int(cl[0])
        if len(buf) < pos + n:
            if eof:
                raise ParseError("connection closed after %d of %d body bytes" % (len(buf) - pos, n))
            return None
        resp.body = bytes(buf[pos:pos + n])
        return resp, pos + n
    # Delimited by close.
    if not eof:
        return None
    resp.body = bytes(buf[pos:])
    return resp, len(buf)


def parse_responses(data, methods=None):
    """Parse every response in data (read until close).  methods: per-response request method."""
    out = []
    pos = 0
    buf = bytes(data)
    i = 0
    while pos < len(buf):
        m = methods[i] if methods and i < len(methods) else "GET"
        r = parse_response(buf[pos:], method=m, eof=True)
        if r is None:
            break
        resp, n = r
        out.append(resp)
        pos += n
        if resp.status >= 200:
            i += 1
    return out


class RawBytes(bytes):
    """bytes read from a connection; .closed tells whether the peer closed it."""

    closed = False


def raw(port, data, timeout=3.0, host="127.0.0.1"):
    """Send data on a fresh connection; return everything read until the
    peer closes (or resets) the connection or timeout seconds pass."""
    s = socket.create_connection((host, port), timeout=timeout)
    deadline = time.monotonic() + timeout
    buf = bytearray()
    closed = False
    try:
        if data:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                got = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not got:
                closed = True
                break
            buf += got
    finally:
        s.close()
    out = RawBytes(bytes(buf))
    out.closed = closed
    return out


class RawConn:
    """A client connection driven byte by byte."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.timeout = timeout

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read once; returns False on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            got = self.sock.recv(262144)
        except socket.timeout:
            return False
        except ConnectionResetError:
            got = b""
        if not got:
            self.eof = True
        self.buf += got
        return True

    def read_response(self, method="GET", timeout=None):
        """Read the next response (a 1xx is returned on its own)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            r = parse_response(self.buf, method=method, eof=self.eof)
            if r is not None:
                resp, n = r
                del self.buf[:n]
                return resp
            if self.eof:
                raise ParseError("connection closed before a complete response; got %r" % bytes(self.buf[:500]))
            if not self._fill(deadline):
                raise TimeoutError("no complete response within the timeout; got %r" % bytes(self.buf[:500]))

    def read_some(self, timeout=None):
        """Return whatever arrives next (b'' on close or timeout)."""
        if self.buf:
            out = bytes(self.buf)
            self.buf.clear()
            return out
        deadline = time.monotonic() + (timeout or self.timeout)
        self._fill(deadline)
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_closed(self, timeout):
        """True when the peer closes within timeout (bytes read meanwhile stay in buf)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline):
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method, target, headers=(), body=None, version="HTTP/1.1", host="localhost"):
    """Bytes of one request.  A Host is added unless host is None or headers
    contain one; Content-Length is added for a body unless a framing header is given."""
    names = {k.lower() for k, _ in headers}
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode()
    return data


def request(port, method, target, headers=(), body=None, version="HTTP/1.1", host="localhost",
            timeout=10.0):
    """One request on a fresh connection; returns the final HttpResponse
    (interim 1xx responses are skipped and kept in .interim)."""
    with RawConn(port, timeout=timeout) as c:
        c.send(build_request(method, target, headers, body, version, host))
        interim = []
        while True:
            resp = c.read_response(method=method, timeout=timeout)
            if resp.status >= 200 or resp.status == 101:
                resp.interim = interim
                return resp
            interim.append(resp)


def chunked(*pieces, trailers=()):
    """Encode pieces as a chunked body."""
    out = b""
    for p in pieces:
        if isinstance(p, str):
            p = p.encode()
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    out += b"0\r\n"
    for k, v in trailers:
        out += ("%s: %s\r\n" % (k, v)).encode()
    return out + b"\r\n"
