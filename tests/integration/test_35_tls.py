"""TLS (SPEC §2 `tls` on listeners, `protocol: https` on services; docs/tls.md).

Certificates are made by the tests with the openssl CLI: a CA, server
certificates for a.example and b.example, one for the TLS backend, a client
certificate for alice, and a second CA that trusts none of them.  Clients
are curl, `openssl s_client` and Python's ssl module.
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness import Backend, Reply, config, one_route, route, run_portico, service

pytestmark = pytest.mark.skipif(subprocess.run(["which", "openssl"], capture_output=True).returncode != 0
                                or subprocess.run(["which", "curl"], capture_output=True).returncode != 0,
                                reason="needs the openssl and curl command-line tools")


def sh(*args, cwd=None):
    p = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, "%s failed:\n%s%s" % (" ".join(args), p.stdout, p.stderr)
    return p.stdout


def make_ca(d, name, cn):
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", "%s.key" % name, "-out", "%s.pem" % name, "-days", "30", "-subj", "/CN=%s" % cn,
       "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
       cwd=d)


def make_cert(d, name, subj, san=None, ca="ca", days="30"):
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", "%s.key" % name, "-out", "%s.csr" % name, "-subj", subj, cwd=d)
    ext = os.path.join(d, "%s.ext" % name)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write("subjectAltName=%s\n" % san)
    sh("openssl", "x509", "-req", "-in", "%s.csr" % name, "-CA", "%s.pem" % ca, "-CAkey", "%s.key" % ca,
       "-CAcreateserial", "-out", "%s.pem" % name, "-days", days, "-extfile", ext, cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    make_ca(d, "ca", "Portico Test CA")
    make_ca(d, "ca2", "Some Other CA")
    make_cert(d, "a", "/CN=a.example", "DNS:a.example,DNS:localhost")
    make_cert(d, "b", "/CN=b.example", "DNS:b.example")
    make_cert(d, "a2", "/O=Renewed/CN=a.example", "DNS:a.example,DNS:localhost")
    make_cert(d, "backend", "/CN=backend.example", "DNS:backend.example,IP:127.0.0.1")
    make_cert(d, "alice", "/O=Example/CN=alice")
    make_cert(d, "old", "/CN=old.example", "DNS:old.example", days="-1")
    return d


def cert(certs, name):
    return os.path.join(certs, name)


def tls_listener(gw, certs, names=("a", "b"), **extra):
    t = {"certificates": [{"cert": cert(certs, n + ".pem"), "key": cert(certs, n + ".key")} for n in names]}
    t.update(extra)
    return {"listen": [{"address": "127.0.0.1:%d" % gw.port, "tls": t}]}


def tls_gateway(gateway, certs, backend, names=("a", "b"), route_opts=None, **extra):
    gw = gateway(start=False)
    gw.config = one_route(backend, server=tls_listener(gw, certs, names, **extra), route_opts=route_opts)
    gw.start()
    return gw


def curl(gw, certs, path="/", name="a.example", *extra):
    url = "https://%s:%d%s" % (name, gw.port, path)
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cert(certs, "ca.pem"),
                        "--resolve", "%s:%d:127.0.0.1" % (name, gw.port), "-o", "-",
                        "-w", "\n%{http_code}", *extra, url], capture_output=True)
    body, _, code = p.stdout.rpartition(b"\n")
    return p.returncode, int(code or 0), body, p.stderr.decode("utf-8", "replace")


def s_client(port, *args, data=b"", timeout=10):
    """openssl s_client; returns (exit code, output text)."""
    p = subprocess.run(["openssl", "s_client", "-ign_eof", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=data, capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def subject(out):
    m = re.search(r"^subject=(.*)$", out, re.M)
    return m.group(1).replace(" = ", "=").replace(", ", ",") if m else None


GET_CLOSE = b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"


def test_https_proxying_keeps_the_body_intact(gateway, backend, certs, tmp_path):
    be = backend(handler=lambda req: Reply(200, req.body, headers=[("X-Proto", req.header("X-Forwarded-Proto"))]))
    gw = tls_gateway(gateway, certs, be)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)
    rc, code, body, err = curl(gw, certs, "/upload", "a.example", "--data-binary", "@%s" % src,
                               "-D", str(tmp_path / "head.txt"))
    assert rc == 0, err
    assert code == 200
    assert body == payload
    assert "x-proto: https" in (tmp_path / "head.txt").read_text().lower()
    # keep-alive: several requests on one TLS connection, small and large answers
    be.handler = lambda req: Reply(200, b"x" * (int(req.query or "0")))
    p = subprocess.run(["curl", "-sS", "--cacert", cert(certs, "ca.pem"), "--resolve",
                        "a.example:%d:127.0.0.1" % gw.port]
                       + ["https://a.example:%d/k?%d" % (gw.port, n) for n in (10, 100000, 0, 20000)]
                       + ["-o", "/dev/null"] * 4 + ["-w", "%{http_code} %{size_download} %{num_connects}\n"],
                       capture_output=True, text=True)
    lines = p.stdout.split("\n")
    assert lines[:4] == ["200 10 1", "200 100000 0", "200 0 0", "200 20000 0"], p.stdout + p.stderr


def test_sni_picks_the_certificate(gateway, backend, certs):
    gw = tls_gateway(gateway, certs, backend())
    for sni, want in (("a.example", "CN=a.example"), ("b.example", "CN=b.example"),
                      ("B.Example", "CN=b.example"), ("unknown.example", "CN=a.example")):
        rc, out = s_client(gw.port, "-servername", sni, data=GET_CLOSE)
        assert subject(out) == want, "SNI %s:\n%s" % (sni, out)
    rc, out = s_client(gw.port, "-noservername", data=GET_CLOSE)
    assert subject(out) == "CN=a.example", out  # no SNI: the first certificate
    assert "HTTP/1.1 200" in out


def test_alpn_offers_http11(gateway, backend, certs):
    gw = tls_gateway(gateway, certs, backend())
    rc, out = s_client(gw.port, "-servername", "a.example", "-alpn", "h2,http/1.1", data=GET_CLOSE)
    assert "ALPN protocol: http/1.1" in out, out


def test_min_version_13_refuses_tls12(gateway, backend, certs):
    gw = tls_gateway(gateway, certs, backend(), min_version="1.3")
    rc, out = s_client(gw.port, "-servername", "a.example", "-tls1_2", data=GET_CLOSE)
    assert rc != 0 and "HTTP/1.1 200" not in out, out
    rc, out = s_client(gw.port, "-servername", "a.example", "-tls1_3", data=GET_CLOSE)
    assert "HTTP/1.1 200" in out and "TLSv1.3" in out, out
    # the default (1.2) takes TLS 1.2
    gw2 = tls_gateway(gateway, certs, backend())
    rc, out = s_client(gw2.port, "-servername", "a.example", "-tls1_2", data=GET_CLOSE)
    assert "HTTP/1.1 200" in out, out


def resume(port, sess, first, *extra):
    args = ["-servername", "a.example"] + list(extra)
    args += ["-sess_out", sess] if first else ["-sess_in", sess, "-sess_out", sess]
    rc, out = s_client(port, *args, data=GET_CLOSE)
    assert "HTTP/1.1 200" in out, out
    return re.search(r"^Reused, ", out, re.M) is not None


@pytest.mark.parametrize("client", [["-tls1_3"], ["-tls1_2"], ["-tls1_2", "-no_ticket"]],
                         ids=["tls1.3-ticket", "tls1.2-ticket", "tls1.2-session-id"])
def test_session_resumption_survives_a_reload(gateway, backend, certs, tmp_path, client):
    """Tickets (keys kept by the process) and, for TLS 1.2 clients without
    ticket support, the session-id cache (also the process's)."""
    be = backend()
    gw = tls_gateway(gateway, certs, be)
    sess = str(tmp_path / "sess.pem")
    assert not resume(gw.port, sess, True, *client), "first connection: a full handshake"
    assert resume(gw.port, sess, False, *client), "second: resumed"
    gw.reload()
    wait_log(gw, r"SIGHUP: configuration 2 applied")
    assert resume(gw.port, sess, False, *client), "resumed across a reload"
    gw.reload()
    wait_log(gw, r"SIGHUP: configuration 3 applied")
    assert resume(gw.port, sess, False, *client), "and across a second one"


def test_session_id_resumption_keeps_mtls_apart(gateway, backend, certs, tmp_path):
    """A session made on a listener without client certificates must not
    resume on one that requires them, even though the cache is shared."""
    be = backend()
    plain = tls_gateway(gateway, certs, be)
    strict = tls_gateway(gateway, certs, be, client_ca=cert(certs, "ca.pem"), client_verify="require")
    sess = str(tmp_path / "sess.pem")
    assert not resume(plain.port, sess, True, "-tls1_2", "-no_ticket")
    assert resume(plain.port, sess, False, "-tls1_2", "-no_ticket")
    rc, out = s_client(strict.port, "-servername", "a.example", "-tls1_2", "-no_ticket", "-sess_in", sess,
                       data=GET_CLOSE)
    assert not re.search(r"^Reused, ", out, re.M), out
    assert "HTTP/1.1 200" not in out, "no client certificate: no answer"


def wait_log(gw, pattern, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, gw.log()):
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the log:\n%s" % (pattern, gw.log()[-3000:]))


def test_mtls_required(gateway, backend, certs):
    be = backend()
    gw = tls_gateway(gateway, certs, be, client_ca=cert(certs, "ca.pem"), client_verify="require")
    rc, code, body, err = curl(gw, certs, "/x")
    assert rc != 0 and code == 0, "no client certificate: no answer (%s)" % err
    rc, code, body, err = curl(gw, certs, "/x", "a.example", "--cert", cert(certs, "alice.pem"),
                               "--key", cert(certs, "alice.key"))
    assert rc == 0 and code == 200, err
    # a certificate from a CA the listener does not trust
    rc, code, body, err = curl(gw, certs, "/x", "a.example", "--cert", cert(certs, "ca2.pem"),
                               "--key", cert(certs, "ca2.key"))
    assert rc != 0 and code == 0, err
    assert len(be.received) == 1


def test_mtls_optional_by_default(gateway, backend, certs):
    gw = tls_gateway(gateway, certs, backend(), client_ca=cert(certs, "ca.pem"))
    rc, code, _, err = curl(gw, certs, "/x")
    assert rc == 0 and code == 200, err
    rc, code, _, err = curl(gw, certs, "/x", "a.example", "--cert", cert(certs, "alice.pem"),
                            "--key", cert(certs, "alice.key"))
    assert rc == 0 and code == 200, err


def test_plain_http_on_a_tls_port_gets_400(gateway, backend, certs):
    gw = tls_gateway(gateway, certs, backend())
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"application/problem+json" in data and b"HTTPS port" in data


def test_handshake_timeout_and_garbage(gateway, backend, certs):
    gw = gateway(start=False)
    srv = tls_listener(gw, certs)
    srv["timeouts"] = {"client_header": "300ms"}
    gw.config = one_route(backend(), server=srv)
    gw.start()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    t0 = time.monotonic()
    assert s.recv(10) == b""  # nothing sent: closed after client_header
    assert time.monotonic() - t0 < 3
    s.close()
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello")
    try:
        s.recv(100)
    except ConnectionResetError:
        pass
    s.close()
    rc, code, _, err = curl(gw, certs)
    assert rc == 0 and code == 200, err


def test_reload_serves_a_new_certificate(gateway, backend, certs, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    for ext in ("pem", "key"):
        (live / ("a." + ext)).write_bytes(open(cert(certs, "a." + ext), "rb").read())
    gw = gateway(start=False)
    gw.config = one_route(backend(), server={"listen": [{"address": "127.0.0.1:%d" % gw.port, "tls": {
        "certificates": [{"cert": "../live/a.pem", "key": "../live/a.key"}]}}]})
    gw.start()
    rc, out = s_client(gw.port, "-servername", "a.example", data=GET_CLOSE)
    assert subject(out) == "CN=a.example", out
    held = socket.create_connection(("127.0.0.1", gw.port))
    ctx = ssl.create_default_context(cafile=cert(certs, "ca.pem"))
    held = ctx.wrap_socket(held, server_hostname="a.example")
    for ext in ("pem", "key"):
        (live / ("a." + ext)).write_bytes(open(cert(certs, "a2." + ext), "rb").read())
    gw.reload()
    wait_log(gw, r"(SIGHUP|file change): configuration 2 applied")
    rc, out = s_client(gw.port, "-servername", "a.example", data=GET_CLOSE)
    assert subject(out) == "O=Renewed, CN=a.example".replace(" ", ""), out
    # the connection made before the reload goes on
    held.sendall(b"GET /still HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = held.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    held.close()


def test_renewed_certificate_files_reload_without_a_signal(gateway, backend, certs, tmp_path):
    """The file watch covers the files the configuration reads, not only itself."""
    live = tmp_path / "certs-elsewhere"
    live.mkdir()
    for ext in ("pem", "key"):
        (live / ("a." + ext)).write_bytes(open(cert(certs, "a." + ext), "rb").read())
    gw = gateway(start=False)
    gw.config = one_route(backend(), server={"listen": [{"address": "127.0.0.1:%d" % gw.port, "tls": {
        "certificates": [{"cert": str(live / "a.pem"), "key": str(live / "a.key")}]}}]})
    gw.start()
    rc, out = s_client(gw.port, "-servername", "a.example", data=GET_CLOSE)
    assert subject(out) == "CN=a.example", out
    # a renewal tool writes new files and renames them into place
    for ext in ("key", "pem"):
        tmp = live / ("a." + ext + ".new")
        tmp.write_bytes(open(cert(certs, "a2." + ext), "rb").read())
        os.replace(tmp, live / ("a." + ext))
    wait_log(gw, r"file change: configuration \d+ applied")
    rc, out = s_client(gw.port, "-servername", "a.example", data=GET_CLOSE)
    assert subject(out) == "O=Renewed,CN=a.example", out


def test_check_reports_certificate_problems(certs, tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        "server:\n"
        "  listen:\n"
        "    - address: 127.0.0.1:8443\n"
        "      tls:\n"
        "        certificates:\n"
        "          - {cert: %s/a.pem, key: %s/missing.key}\n"
        "          - {cert: %s/b.pem, key: %s/a.key}\n"
        "          - {cert: %s/old.pem, key: %s/old.key}\n"
        "services:\n"
        "  s: {targets: [\"127.0.0.1:9\"]}\n"
        "routes:\n"
        "  - {name: r, match: {paths: [\"/*\"]}, service: s}\n" % ((certs,) * 6))
    text = cfg.read_text().splitlines()

    def col(line, needle):  # 1-based column of the value that names the file
        return text[line - 1].index(needle) + 1

    p = run_portico("check", "-c", cfg)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    want = [
        "%s:6:%d: key: cannot read \"%s/missing.key\": No such file or directory"
        % (cfg, col(6, certs + "/missing.key"), certs),
        "%s:7:%d: key: the key in \"%s/a.key\" does not match the certificate \"%s/b.pem\""
        % (cfg, col(7, certs + "/a.key"), certs, certs),
    ]
    for w in want:
        assert w in lines, "%s\nnot in:\n%s" % (w, p.stderr)
    assert any(ln.startswith("%s:8:%d: warning: cert: certificate \"%s/old.pem\" expired on"
                             % (cfg, col(8, certs + "/old.pem"), certs)) for ln in lines), p.stderr
    assert lines[-1].endswith(": 2 errors"), p.stderr
    # relative paths resolve against the configuration's folder
    rel = tmp_path / "certs"
    os.symlink(certs, rel)
    cfg.write_text(
        "server:\n"
        "  listen: [{address: 127.0.0.1:8443, tls: {certificates: [{cert: certs/a.pem, key: certs/a.key}],"
        " min_version: \"1.3\", client_ca: certs/ca.pem, client_verify: require}}]\n"
        "services:\n"
        "  s: {targets: [\"https://127.0.0.1:9\"], tls: {ca: certs/ca.pem, sni: backend.example}}\n"
        "routes:\n"
        "  - {name: r, match: {paths: [\"/*\"]}, service: s}\n")
    p = run_portico("check", "-c", cfg, cwd="/")
    assert p.returncode == 0, p.stderr


# ---- upstream TLS ----------------------------------------------------------


class TlsBackend(Backend):
    """The harness Backend behind TLS (Python's ssl module), recording SNI."""

    def __init__(self, certs, name="tls-backend", handler=None, client_ca=None):
        super().__init__(name, handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert(certs, "backend.pem"), cert(certs, "backend.key"))
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        self.sni = []

        def on_sni(sock, name, c):
            self.sni.append(name)
        ctx.sni_callback = on_sni
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)


@pytest.fixture
def tls_backend(certs):
    made = []

    def make(**kw):
        b = TlsBackend(certs, **kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


def upstream_gateway(gateway, target, **svc):
    return gateway(one_route(target, service_opts=svc))


def test_upstream_https_verified(gateway, tls_backend, certs):
    be = tls_backend(handler=lambda req: Reply(200, "over tls " + req.path))
    gw = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port,
                          tls={"ca": cert(certs, "ca.pem"), "sni": "backend.example"})
    import requests
    for i in range(3):
        r = requests.get(gw.url("/hello%d" % i), timeout=10)
        assert r.status_code == 200 and r.text == "over tls /hello%d" % i
    assert be.sni[0] == "backend.example"
    assert be.connections == 1, "the TLS connection was kept alive and reused"


def test_upstream_https_by_ip_and_protocol_key(gateway, tls_backend, certs):
    be = tls_backend()
    # verification by the IP address in the certificate; no SNI for an IP
    gw = upstream_gateway(gateway, be, protocol="https", tls={"ca": cert(certs, "ca.pem")})
    import requests
    r = requests.post(gw.url("/p"), data=b"y" * 200000, timeout=10)
    assert r.status_code == 200 and r.json()["body_len"] == 200000
    assert be.sni == [None]


def test_upstream_bad_ca_is_502_and_verify_off_works(gateway, tls_backend, certs):
    import requests
    be = tls_backend()
    gw = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port,
                          tls={"ca": cert(certs, "ca2.pem")}, retries={"attempts": 0})
    r = requests.get(gw.url("/x"), timeout=10)
    assert r.status_code == 502
    assert "certificate verify failed" in gw.log()
    gw.stop()
    # the system store does not know our CA either
    gw2 = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port, retries={"attempts": 0})
    assert requests.get(gw2.url("/x"), timeout=10).status_code == 502
    gw2.stop()
    gw3 = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port,
                           tls={"verify": False, "ca": cert(certs, "ca2.pem")})
    r = requests.get(gw3.url("/x"), timeout=10)
    assert r.status_code == 200
    # a name the certificate does not have
    gw3.stop()
    gw4 = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port, retries={"attempts": 0},
                           tls={"ca": cert(certs, "ca.pem"), "sni": "wrong.example"})
    assert requests.get(gw4.url("/x"), timeout=10).status_code == 502


def test_upstream_client_certificate(gateway, tls_backend, certs):
    import requests
    be = tls_backend(client_ca=cert(certs, "ca.pem"))
    gw = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port, retries={"attempts": 0},
                          tls={"ca": cert(certs, "ca.pem"), "cert": cert(certs, "alice.pem"),
                               "key": cert(certs, "alice.key")})
    assert requests.get(gw.url("/x"), timeout=10).status_code == 200
    gw.stop()
    gw2 = upstream_gateway(gateway, "https://127.0.0.1:%d" % be.port, retries={"attempts": 0},
                           tls={"ca": cert(certs, "ca.pem")})
    assert requests.get(gw2.url("/x"), timeout=10).status_code == 502


def test_tls_both_ways(gateway, tls_backend, certs):
    """Client → TLS → gateway → TLS → backend, with a streamed download."""
    big = os.urandom(1_000_000)
    be = tls_backend(handler=lambda req: Reply(200, big))
    gw = gateway(start=False)
    gw.config = one_route("https://127.0.0.1:%d" % be.port, server=tls_listener(gw, certs),
                          service_opts={"tls": {"ca": cert(certs, "ca.pem")}})
    gw.start()
    rc, code, body, err = curl(gw, certs, "/big")
    assert rc == 0 and code == 200 and body == big, err


def test_upstream_pool_keeps_tls_settings_apart(gateway, tls_backend, certs):
    """Two services on one address with different SNI: each reuses its own connection."""
    import requests
    be = tls_backend(handler=lambda req: Reply(200, req.path))
    target = "https://127.0.0.1:%d" % be.port
    cfg = config({
        "one": service(target, tls={"ca": cert(certs, "ca.pem"), "sni": "backend.example"}),
        "two": service(target, tls={"verify": False, "sni": "other.example"}),
    }, [route("one", "/one/*", "one"), route("two", "/two/*", "two")])
    gw = gateway(cfg)
    for i in range(3):
        for svc in ("one", "two"):
            r = requests.get(gw.url("/%s/%d" % (svc, i)), timeout=10)
            assert r.status_code == 200 and r.text == "/%s/%d" % (svc, i)
    assert sorted(be.sni) == ["backend.example", "other.example"], be.sni
    assert be.connections == 2, "one kept-alive connection per TLS setting"
