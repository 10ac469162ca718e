"""The command line (SPEC §1): version, check, run's exit codes, proxy mode."""

import os
import re
import socket

import requests

from harness import REPO, one_route, run_portico

VALID = """\
server:
  listen: ["127.0.0.1:18080"]
  workers: 1
services:
  users:
    targets: ["127.0.0.1:9001", { address: "127.0.0.1:9002", weight: 3 }]
routes:
  - name: users
    match: { paths: ["/api/users", "/api/users/*"], methods: [GET, POST] }
    service: users
    strip_prefix: /api
"""


def write(tmp_path, text, name="portico.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def pos(text, line_has, token):
    """1-based (line, column) of token on the first line containing line_has."""
    for i, line in enumerate(text.splitlines(), 1):
        if line_has in line:
            return i, line.index(token) + 1
    raise AssertionError("marker %r not in text" % line_has)


def diagnostics(path, stderr):
    """Parse `FILE:LINE:COL: message` lines for this file: [(line, col, message)]."""
    out = []
    for line in stderr.splitlines():
        m = re.match(r"^(.*):(\d+):(\d+): (.*)$", line)
        if m and m.group(1) == path:
            out.append((int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


def test_version_prints_version_and_build_options():
    p = run_portico("version")
    assert p.returncode == 0, p.stderr
    version = open(os.path.join(REPO, "VERSION")).read().strip()
    assert version in p.stdout
    low = p.stdout.lower()
    for option in ("tls", r"http/?2", "redis", "etcd"):
        assert re.search(option, low), "`portico version` does not mention build option %r: %r" % (option, p.stdout)


def test_unknown_command_prints_usage():
    p = run_portico("frobnicate")
    assert p.returncode != 0
    assert "usage" in p.stderr.lower()


def test_check_accepts_a_valid_file(tmp_path):
    path = write(tmp_path, VALID)
    p = run_portico("check", "-c", path)
    assert p.returncode == 0, p.stderr
    assert not diagnostics(path, p.stderr), p.stderr


def test_check_accepts_json(tmp_path):
    path = write(tmp_path, """{"services": {"s": {"targets": ["127.0.0.1:9001"]}},
 "routes": [{"name": "r", "match": {"paths": ["/*"]}, "service": "s"}]}
""", "portico.json")
    p = run_portico("check", "-c", path)
    assert p.returncode == 0, p.stderr


def test_check_reports_every_error_with_position(tmp_path):
    text = """\
server:
  listen: ["127.0.0.1:18080"]
  timeouts:
    client_header: 5parsecs
services:
  users:
    targets: ["127.0.0.1:9001"]
    retires: { attempts: 2 }
routes:
  - name: a
    match: { paths: ["/a"] }
    service: userz
  - name: b
    match: { paths: ["~ ^/b(/"] }
    service: users
"""
    path = write(tmp_path, text)
    p = run_portico("check", "-c", path)
    assert p.returncode == 1, (p.returncode, p.stderr)
    diags = diagnostics(path, p.stderr)
    by_line = {}
    for line, col, msg in diags:
        by_line.setdefault(line, []).append((col, msg))

    l, c = pos(text, "client_header", "5parsecs")
    assert l in by_line, "no error for the bad duration on line %d:\n%s" % (l, p.stderr)
    assert any(col == c for col, _ in by_line[l]), (c, by_line[l])

    l, c = pos(text, "retires", "retires")
    assert l in by_line, "no error for the unknown key on line %d:\n%s" % (l, p.stderr)
    assert any(col == c and "retires" in msg for col, msg in by_line[l]), (c, by_line[l])

    l, c = pos(text, "userz", "userz")
    assert l in by_line, "no error for the unknown service on line %d:\n%s" % (l, p.stderr)
    assert any(col == c and "userz" in msg for col, msg in by_line[l]), (c, by_line[l])

    l, c = pos(text, "^/b(/", '"~')
    assert l in by_line, "no error for the bad regex on line %d:\n%s" % (l, p.stderr)
    assert any(col >= c and re.search(r"(?i)regex|regular expression", msg) for col, msg in by_line[l]), by_line[l]

    assert len(diags) >= 4, p.stderr


def test_check_unknown_key_anywhere(tmp_path):
    text = VALID.replace("    strip_prefix: /api\n", "    strip_prefix: /api\n    presreve_host: true\n")
    path = write(tmp_path, text)
    p = run_portico("check", "-c", path)
    assert p.returncode == 1
    l, c = pos(text, "presreve_host", "presreve_host")
    assert (l, c) in [(d[0], d[1]) for d in diagnostics(path, p.stderr)], p.stderr


def test_check_missing_file(tmp_path):
    path = str(tmp_path / "nope.yaml")
    p = run_portico("check", "-c", path)
    assert p.returncode == 1
    assert "nope.yaml" in p.stderr


def test_check_warns_about_shadowed_route(tmp_path):
    text = VALID + """\
  - name: shadowed
    match: { paths: ["/api/users"], methods: [GET] }
    service: users
"""
    path = write(tmp_path, text)
    p = run_portico("check", "-c", path)
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    warn = [ln for ln in out.splitlines() if "never match" in ln]
    assert warn, "no 'never match' warning:\n%s" % out
    assert any("shadowed" in ln for ln in warn), warn


def test_check_uses_portico_config_env(tmp_path):
    good = write(tmp_path, VALID)
    bad = write(tmp_path, VALID.replace("service: users", "service: nobody"), "bad.yaml")
    assert run_portico("check", env={"PORTICO_CONFIG": good}).returncode == 0
    p = run_portico("check", env={"PORTICO_CONFIG": bad})
    assert p.returncode == 1
    assert diagnostics(bad, p.stderr), p.stderr


def test_run_with_bad_config_exits_1(gateway, backend):
    cfg = one_route(backend())
    cfg["routes"][0]["service"] = "nobody"
    gw = gateway(cfg, start=False, expect_errors=[""])
    gw.start(wait=False)
    assert gw.wait_exit(10) == 1, gw.log()
    assert diagnostics(gw.config_path, gw.log()), gw.log()


def test_run_uses_portico_config_env(gateway, backend):
    be = backend()
    gw = gateway(one_route(be), start=False)
    gw.write_config()
    gw.args = ["run"]
    gw.env = {"PORTICO_CONFIG": gw.config_path}
    gw.start()
    r = requests.get(gw.url("/hello"), timeout=10)
    assert r.status_code == 200
    assert be.received[0].target == "/hello"


def test_port_in_use_exits_2_with_one_line_reason(gateway, backend):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        gw = gateway(one_route(backend()), start=False, port=port, expect_errors=[""])
        gw.start(wait=False)
        assert gw.wait_exit(10) == 2, gw.log()
        lines = [ln for ln in gw.log().splitlines() if ln.strip()]
        assert lines, "no reason given"
        assert any(str(port) in ln for ln in lines), gw.log()
    finally:
        holder.close()


def test_admin_port_in_use_exits_2(gateway, backend):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        cfg = one_route(backend(), admin={"listen": "127.0.0.1:%d" % port})
        gw = gateway(cfg, start=False, expect_errors=[""])
        gw.start(wait=False)
        assert gw.wait_exit(10) == 2, gw.log()
        assert str(port) in gw.log()
    finally:
        holder.close()


def test_proxy_mode_forwards_every_path(gateway, backend):
    be = backend()
    gw = gateway(args=["proxy", "--listen", "127.0.0.1:@PORT@", "--to", be.url])
    r = requests.get(gw.url("/"), timeout=10)
    assert r.status_code == 200
    r = requests.get(gw.url("/deep/er/path?x=1&y=two"), timeout=10)
    assert r.status_code == 200
    r = requests.post(gw.url("/submit"), data=b"payload", timeout=10)
    assert r.status_code == 200
    assert [q.target for q in be.received] == ["/", "/deep/er/path?x=1&y=two", "/submit"]
    assert be.received[2].body == b"payload"
    gw.stop()
