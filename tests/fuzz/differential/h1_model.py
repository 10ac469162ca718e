#!/usr/bin/env python3
"""Differential check of src/http/h1.c and src/http/chunked.c against an
independent model of the same rules, written as regular expressions straight
from the RFC 9112 grammar plus the strictness rules of
docs/internals/http1.md.

Mutates a few seed messages at random, runs them through the C code (via
driver.c, built here with ASan+UBSan) and through the model, and reports any
disagreement on: the result code, the head length, every parsed view, and
the request and response framing analysis; for chunked bodies: error,
done/incomplete, bytes consumed and payload.

    python3 tests/fuzz/differential/h1_model.py [SEED [COUNT]]   # from the repo root

Exit status 1 on any mismatch.
"""
import os
import random
import re
import struct
import subprocess
import sys

DRIVER = "build/h1-differential"

TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = TCHAR + rb"+"
VAL = rb"((?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?)"
FIELD = rb"(" + TOKEN + rb"):[ \t]*" + VAL + rb"[ \t]*\r\n"
FIELD_RE = re.compile(FIELD)
REQ_LINE = re.compile(rb"(?:\r\n)?(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])\r\n")
REQ_09 = re.compile(rb"(?:\r\n)?" + TOKEN + rb" [\x21-\x7e]+\r\n")
REQ_HEAD = re.compile(rb"(?:\r\n)?" + TOKEN + rb" [\x21-\x7e]+ HTTP/[0-9]\.[0-9]\r\n(?:" + TCHAR + rb"+:[ \t]*" + VAL + rb"[ \t]*\r\n)*\r\n")
ST_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?\r\n")
RESP_HEAD = re.compile(rb"HTTP/[0-9]\.[0-9] [1-9][0-9][0-9](?: [\t\x20-\x7e\x80-\xff]*)?\r\n(?:" + TCHAR + rb"+:[ \t]*" + VAL + rb"[ \t]*\r\n)*\r\n")
HOSTCH = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%")
INVALID, PARTIAL, TOO_MANY, BAD_VERSION, DECLINED = -1, -2, -20, -21, -10

def fields_of(block):
    return [(m.group(1), m.group(2)) for m in FIELD_RE.finditer(block)]

def list_elems(v):
    return [e.strip(b" \t") for e in v.split(b",") if e.strip(b" \t")]

def is_token(s):
    return re.fullmatch(TOKEN, s) is not None

def req_meta(minor, fields):
    low = [(n.lower(), v) for n, v in fields]
    get = lambda name: [v for n, v in low if n == name]
    close = ka = up = other = False
    for v in get(b"connection"):
        for e in list_elems(v):
            el = e.lower()
            if el == b"close": close = True
            elif el == b"keep-alive": ka = True
            elif el == b"upgrade": up = True
            elif is_token(e): other = True
            else: return [INVALID]
    cl, te, host = get(b"content-length"), get(b"transfer-encoding"), get(b"host")
    clv = 0
    if len(cl) > 1: return [INVALID]
    if cl:
        if not re.fullmatch(rb"[0-9]+", cl[0]) or int(cl[0]) > 2**63 - 1: return [INVALID]
        clv = int(cl[0])
    if te:
        if cl or minor == 0 or len(te) > 1 or te[0].lower() != b"chunked": return [INVALID]
    if len(host) > 1: return [INVALID]
    if host and not all(c in HOSTCH for c in host[0]): return [INVALID]
    if not host and minor == 1: return [INVALID]
    body = 2 if te else 1 if cl else 0
    exp = get(b"expect")
    expect_ok = any(v.lower() == b"100-continue" for v in exp)
    expect_other = any(v.lower() != b"100-continue" for v in exp)
    if minor == 1:
        keep, upg, ec = not close, up and bool(get(b"upgrade")), expect_ok
    else:
        keep, upg, ec = ka and not close, False, False
    return [DECLINED if expect_other else 0, body, clv if body == 1 else 0, int(keep), int(ec), int(upg), int(other)]

def resp_meta(minor, status, method, fields):
    low = [(n.lower(), v) for n, v in fields]
    get = lambda name: [v for n, v in low if n == name]
    close = ka = up = other = False
    for v in get(b"connection"):
        for e in list_elems(v):
            el = e.lower()
            if el == b"close": close = True
            elif el == b"keep-alive": ka = True
            elif el == b"upgrade": up = True
            elif is_token(e): other = True
            else: return [INVALID]
    cl, te = get(b"content-length"), get(b"transfer-encoding")
    clv = 0
    if len(cl) > 1: return [INVALID]
    if cl:
        if not re.fullmatch(rb"[0-9]+", cl[0]) or int(cl[0]) > 2**63 - 1: return [INVALID]
        clv = int(cl[0])
    if te:
        if cl or minor == 0 or len(te) > 1 or te[0].lower() != b"chunked": return [INVALID]
    keep = (not close) if minor == 1 else (ka and not close)
    upg = False
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304) or (method == "CONNECT" and 200 <= status < 300):
        body = 0
        upg = status == 101 and up and bool(get(b"upgrade"))
    elif te: body = 2
    elif cl: body = 1
    else: body, keep = 3, False
    return [0, body, clv if body == 1 else 0, int(keep), int(upg), int(other)]

def expect_request(d):
    m = REQ_LINE.match(d)
    if m and not (m.group(3) == b"1" and m.group(4) in (b"0", b"1")):
        return str(BAD_VERSION)
    if REQ_09.match(d):
        return str(BAD_VERSION)
    i = d.find(b"\r\n\r\n")
    if i < 0:
        return None  # PARTIAL or INVALID: not modelled
    head = d[:i + 4]
    if not REQ_HEAD.fullmatch(head):
        return str(INVALID)
    minor = int(m.group(4))
    rest = head[m.end():]
    f = fields_of(rest)
    if len(f) > 64:
        return str(TOO_MANY)
    out = [str(len(head)), m.group(1).hex(), m.group(2).hex(), str(minor)]
    out += [n.hex() + ":" + v.hex() for n, v in f]
    out += ["|"] + [str(x) for x in req_meta(minor, f)]
    return " ".join(out)

def expect_response(d):
    m = re.match(rb"HTTP/([0-9])\.([0-9]) ", d)
    if m and not (m.group(1) == b"1" and m.group(2) in (b"0", b"1")):
        return str(BAD_VERSION)
    i = d.find(b"\r\n\r\n")
    if i < 0:
        return None
    head = d[:i + 4]
    if not RESP_HEAD.fullmatch(head):
        return str(INVALID)
    m = ST_LINE.match(head)
    f = fields_of(head[m.end():])
    if len(f) > 64:
        return str(TOO_MANY)
    out = [str(len(head)), m.group(2).decode(), m.group(3).decode(), (m.group(4) or b"").hex()]
    out += [n.hex() + ":" + v.hex() for n, v in f]
    for meth in ("GET", "HEAD", "CONNECT"):
        out += ["|"] + [str(x) for x in resp_meta(int(m.group(2)), int(m.group(3)), meth, f)]
    return " ".join(out)

QS = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
EXT = rb"(?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + QS + rb"))?)*"
SIZE_LINE = re.compile(rb"([0-9a-fA-F]{1,16})" + EXT + rb"\r\n")
TRL_PARTIAL = re.compile(rb"(?:" + TOKEN + rb"(?::[\t\x20-\x7e\x80-\xff]*\r?)?|\r)?")
TRL_LINE = re.compile(TOKEN + rb":[\t\x20-\x7e\x80-\xff]*")

def expect_chunked(d):
    """Returns a set of acceptable answers."""
    pos, out = 0, b""
    n = len(d)
    part = lambda: {"P %d %s" % (n, out.hex())}
    while True:
        j = d.find(b"\r\n", pos)
        if j < 0:
            return part() | {"E"}  # size line incomplete: not modelled precisely
        m = SIZE_LINE.fullmatch(d, pos, j + 2)
        if not m:
            return {"E"}
        size = int(m.group(1), 16)
        if size > 2**63 - 1:
            return {"E"}
        pos = j + 2
        if size == 0:
            break
        if n - pos < size:
            out += d[pos:]
            return part()
        out += d[pos:pos + size]
        pos += size
        tail = d[pos:pos + 2]
        if tail != b"\r\n"[:len(tail)]:
            return {"E"}
        if len(tail) < 2:
            return part()
        pos += 2
    while True:
        j = d.find(b"\r\n", pos)
        if j < 0:
            rest = d[pos:]
            return part() if TRL_PARTIAL.fullmatch(rest) else {"E"}
        line = d[pos:j]
        if line == b"":
            return {"D %d %s" % (j + 2, out.hex())}
        if not TRL_LINE.fullmatch(line):
            return {"E"}
        pos = j + 2

REQ_SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x?y=1 HTTP/1.1\r\nHost: example.com:80\r\nContent-Length: 5\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Foo\r\nUpgrade: websocket\r\n\r\n",
    b"\r\nOPTIONS * HTTP/1.1\r\nHost: [::1]:8\r\nX:  v a  \r\nY:\r\n\r\n",
]
RESP_SEEDS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 204\r\nX: y \t\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\n",
    b"HTTP/1.1 200 Connection established\r\nTransfer-Encoding: chunked\r\nConnection: close, X\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
]
CH_SEEDS = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"3;a=b\r\nabc\r\n0\r\nX: y\r\n\r\n",
    b"A ; n = \"q\\\"x\" ;m\r\n0123456789\r\n000\r\n\r\n",
    b"1\r\nx\r\n2\r\nyz\r\n0\r\nT:\r\nU: v\r\n\r\n",
]
PIECES = [b" ", b"\t", b"\r", b"\n", b"\r\n", b":", b",", b";", b"=", b"\"", b"\\", b"\x00", b"\x0b", b"\x7f",
          b"\x80", b"\xff", b"chunked", b"Content-Length: 5\r\n", b"content-length: 5, 5\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n", b"Host: a\r\n",
          b"Host: a b\r\n", b"Connection: close, upgrade\r\n", b"Connection: keep-alive\r\n",
          b"Connection: a b\r\n", b"Upgrade: ws\r\n", b"Expect: 100-continue\r\n", b"Expect: x\r\n",
          b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1", b"0", b"f", b"F", b"7fffffffffffffff", b"8000000000000000",
          b"\r\n\r\n", b"9223372036854775808", b"+", b"-", b"/", b"*", b"X-Y: z\r\n", b"a"]

def mutate(rng, d):
    d = bytearray(d)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        p = rng.randint(0, len(d))
        if op == 0:
            d[p:p] = rng.choice(PIECES)
        elif op == 1 and d:
            q = min(len(d), p + rng.randint(1, 4))
            del d[p:q]
        elif op == 2 and p < len(d):
            d[p] = rng.randrange(256)
        elif op == 3 and p < len(d):
            d[p] = rng.choice(b" \t\r\n:;,=\"\\0aA\x00\x7f\x80")
        else:
            d[p:p] = bytes([rng.randrange(256)])
    return bytes(d)

def build_driver():
    srcs = ["tests/fuzz/differential/driver.c", "src/http/h1.c", "src/http/chunked.c",
            "src/http/method.c"]
    if os.path.exists(DRIVER) and all(os.path.getmtime(s) < os.path.getmtime(DRIVER) for s in srcs):
        return
    os.makedirs(os.path.dirname(DRIVER), exist_ok=True)
    subprocess.run(["cc", "-O1", "-g", "-std=c17", "-D_GNU_SOURCE", "-fsanitize=address,undefined",
                    "-Iinclude", "-Isrc", *srcs, "-o", DRIVER], check=True)


def main():
    build_driver()
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    cases = []
    for i in range(count):
        kind = i % 3
        seeds = (REQ_SEEDS, RESP_SEEDS, CH_SEEDS)[kind]
        d = rng.choice(seeds)
        if rng.random() < 0.95:
            d = mutate(rng, d)
        cases.append((kind, d))
    blob = b"".join(struct.pack("<IB", len(d), k) + d for k, d in cases)
    res = subprocess.run([DRIVER], input=blob, capture_output=True, check=True)
    lines = res.stdout.decode().split("\n")
    bad = 0
    stats = {}
    for (kind, d), got in zip(cases, lines):
        if kind == 0:
            want = expect_request(d)
            ok = got in ({"-2", "-1"} if want is None else {want})
        elif kind == 1:
            want = expect_response(d)
            ok = got in ({"-2", "-1"} if want is None else {want})
        else:
            want = expect_chunked(d)
            ok = got in want
        key = (kind, got.split(" ")[0][:3])
        stats[key] = stats.get(key, 0) + 1
        if not ok:
            bad += 1
            if bad <= 15:
                print("MISMATCH kind=%d input=%r\n  got  %s\n  want %s" % (kind, d, got, want))
    print("cases:", len(cases), "mismatches:", bad)
    return 1 if bad else 0


sys.exit(main())
