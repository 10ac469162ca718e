"""Bodies stream both ways (SPEC §2.2): 1 GiB up and 1 GiB down through the
gateway with its resident memory staying bounded, and every byte arriving
intact.  The reader pauses now and then so that a gateway that buffers
instead of applying backpressure shows it in VmRSS."""

import json
import os
import socket
import struct
import threading
import time
import zlib

import pytest

from harness import Reply, one_route

GIB = 1 << 30
BLOCK = 1 << 20
BLOCKS = GIB // BLOCK
RSS_GROWTH_LIMIT_KB = 64 * 1024
PAUSE_EVERY = 128  # blocks
PAUSE = 0.4

_BASE = os.urandom(BLOCK)


def block(i):
    """Block i of the stream: distinct per index, so reordering or
    duplication changes the checksum."""
    return struct.pack(">Q", i) + _BASE[8:]


def sanitizer_env():
    # Under ASan, keep freed memory from piling up in the quarantine so that
    # VmRSS measures what the gateway holds, not what the sanitizer keeps.
    opts = os.environ.get("ASAN_OPTIONS", "detect_leaks=1")
    return {"ASAN_OPTIONS": opts + ":quarantine_size_mb=16:thread_local_quarantine_size_kb=256"}


class RssWatch:
    def __init__(self, gw):
        self.gw = gw
        self.base = gw.rss_kb()
        self.peak = self.base
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.wait(0.02):
            v = self.gw.rss_kb()
            if v is not None:
                self.peak = max(self.peak, v)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(2)
        return self.peak - self.base


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = sock.recv(65536)
        assert got, "connection closed before the response head: %r" % buf
        buf += got
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def warm_up(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(b"GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()


@pytest.mark.timeout_s(300)
def test_1gib_upload_streams_with_bounded_memory(gateway, backend):
    def handler(req):
        if req.path == "/warm":
            return Reply(200, "warm")
        crc, n, blocks = 0, 0, 0
        for piece in req.iter_body(BLOCK):
            crc = zlib.crc32(piece, crc)
            n += len(piece)
            if n // (BLOCK * PAUSE_EVERY) > blocks:
                blocks = n // (BLOCK * PAUSE_EVERY)
                time.sleep(PAUSE)  # a slow consumer: the gateway must stop reading, not buffer
        return Reply(200, {"bytes": n, "crc": crc})

    be = backend(handler=handler, read_body=False)
    gw = gateway(one_route(be, server={"limits": {"max_body_bytes": "2g"}}), env=sanitizer_env())
    warm_up(gw)
    watch = RssWatch(gw)
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
    try:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % GIB)
        crc = 0
        for i in range(BLOCKS):
            b = block(i)
            crc = zlib.crc32(b, crc)
            sock.sendall(b)
        status, headers, rest = read_head(sock)
        body = rest
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            got = sock.recv(65536)
            if not got:
                break
            body += got
    finally:
        sock.close()
        growth = watch.stop()
    assert status == 200, body
    doc = json.loads(body)
    assert doc == {"bytes": GIB, "crc": crc}, "upload arrived damaged: %r" % doc
    assert growth <= RSS_GROWTH_LIMIT_KB, "RSS grew by %d MiB during a 1 GiB upload" % (growth // 1024)


@pytest.mark.timeout_s(300)
def test_1gib_download_streams_with_bounded_memory(gateway, backend):
    def gen():
        for i in range(BLOCKS):
            yield block(i)

    be = backend(handler=lambda req: Reply(200, "warm") if req.path == "/warm" else
                 Reply(200, gen(), length=GIB, headers=[("Content-Type", "application/octet-stream")]))
    gw = gateway(one_route(be), env=sanitizer_env())
    warm_up(gw)
    want_crc = 0
    for i in range(BLOCKS):
        want_crc = zlib.crc32(block(i), want_crc)
    watch = RssWatch(gw)
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        sock.sendall(b"GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, rest = read_head(sock)
        assert status == 200
        crc = zlib.crc32(rest)
        n = len(rest)
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        next_pause = PAUSE_EVERY * BLOCK
        assert headers.get("content-length") == str(GIB), "Content-Length not kept: %r" % headers
        while n < GIB:
            k = sock.recv_into(view, min(BLOCK, GIB - n))
            if k == 0:
                break
            crc = zlib.crc32(view[:k], crc)
            n += k
            if n >= next_pause:
                next_pause += PAUSE_EVERY * BLOCK
                time.sleep(PAUSE)  # a slow client: the gateway must stop reading upstream
    finally:
        sock.close()
        growth = watch.stop()
    assert n == GIB, "download ended after %d bytes" % n
    assert crc == want_crc, "download arrived damaged"
    assert growth <= RSS_GROWTH_LIMIT_KB, "RSS grew by %d MiB during a 1 GiB download" % (growth // 1024)
