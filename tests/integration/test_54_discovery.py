"""DNS service discovery (SPEC §2 services.*.discovery; docs/resilience.md)
against a real DNS server: dnsmasq on a loopback port, answering from a
hosts file the test edits (SIGHUP makes it read the file again)."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from harness import UPSTREAM_ERRORS, Load, config, free_port, route, run_portico, wait_until
from harness.yamlgen import to_yaml

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
pytestmark = pytest.mark.skipif(not os.access(DNSMASQ, os.X_OK),
                                reason="dnsmasq is not installed (scripts/deps.sh test)")


class Dns:
    """dnsmasq answering for the names in its hosts file (and SRV records)."""

    def __init__(self, workdir, srv=()):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.hosts_path = os.path.join(self.dir, "hosts")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.port = free_port()
        self.srv = list(srv)
        self.proc = None
        self.write_hosts("")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def write_hosts(self, text):
        tmp = self.hosts_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.hosts_path)

    def start(self):
        argv = [DNSMASQ, "--no-daemon", "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--addn-hosts=" + self.hosts_path,
                "--local-ttl=1", "--pid-file=", "--user=root", "--log-facility=-"]
        argv += ["--srv-host=" + s for s in self.srv]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq exited: %s" % open(self.log_path).read())
            if b"read " in open(self.log_path, "rb").read():
                return self
            time.sleep(0.02)
        raise AssertionError("dnsmasq did not start: %s" % open(self.log_path).read())

    def hosts(self, text):
        """Replace the hosts file and make dnsmasq read it again."""
        self.write_hosts(text)
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc is not None:
            self.log.close()


@pytest.fixture
def dns(tmp_path):
    made = []

    def make(srv=()):
        d = Dns(tmp_path / ("dns%d" % len(made)), srv)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def discovery_config(disc, **svc):
    s = {"discovery": disc}
    s.update(svc)
    cfg = config({"users": s}, [route("users", "/*", "users")])
    cfg["admin"] = {"listen": "127.0.0.1:@ADMIN_PORT@"}
    return cfg


def targets(gw):
    doc = requests.get(gw.admin_url("/services/users/health"), timeout=10).json()
    return sorted(t["address"] for t in doc["targets"])


def served(be):
    return len(be.received)


@pytest.mark.timeout_s(90)
def test_targets_follow_the_dns_answer(gateway, backend, dns):
    port = free_port()
    a = backend("a", host="127.0.0.2", port=port)
    b = backend("b", host="127.0.0.3", port=port)
    d = dns()
    d.write_hosts("127.0.0.2 users.internal\n")
    d.start()
    cfg = discovery_config({"dns": "users.internal", "port": port, "interval": "1s", "resolver": d.addr},
                           retries={"attempts": 1})
    gw = gateway(cfg)
    assert wait_until(lambda: targets(gw) == [a.addr], 5), targets(gw)
    load = Load(gw, path="/l", clients=3)
    try:
        assert wait_until(lambda: served(a) > 20, 5)
        d.hosts("127.0.0.2 users.internal\n127.0.0.3 users.internal\n")
        assert wait_until(lambda: served(b) > 20, 5), "the added target got no traffic"
        assert targets(gw) == [a.addr, b.addr]
        d.hosts("127.0.0.3 users.internal\n")
        assert wait_until(lambda: targets(gw) == [b.addr], 5), targets(gw)
        time.sleep(0.3)
        n = served(a)
        time.sleep(1.0)
        assert served(a) == n, "the removed target still got requests"
    finally:
        load.stop()
    assert load.failed == [], "%d failed of %d: %r" % (len(load.failed), load.ok, load.failed[:5])
    st = requests.get(gw.admin_url("/status"), timeout=5).json()
    assert st["config_version"] == 1, "discovery is not a configuration change"
    assert "discovery: users: users.internal gives" in gw.log()


def test_srv_records_give_ports_and_weights(gateway, backend, dns):
    a, b = backend("a"), backend("b")
    d = dns(srv=["_http._tcp.users.internal,a.internal,%d,0,3" % a.port,
                 "_http._tcp.users.internal,b.internal,%d,0,1" % b.port,
                 "_http._tcp.users.internal,c.internal,1,10,1"])  # a lower priority: unused
    d.write_hosts("127.0.0.1 a.internal\n127.0.0.1 b.internal\n127.0.0.1 c.internal\n")
    d.start()
    gw = gateway(discovery_config({"dns": "_http._tcp.users.internal", "interval": "1s", "resolver": d.addr}))
    assert wait_until(lambda: len(targets(gw)) == 2, 5), targets(gw)
    assert targets(gw) == sorted([a.addr, b.addr])
    with requests.Session() as s:
        for i in range(40):
            assert s.get(gw.url("/w/%d" % i), timeout=10).status_code == 200
    assert (served(a), served(b)) == (30, 10)


def test_last_good_answer_survives_a_resolver_outage(gateway, backend, dns):
    port = free_port()
    a = backend("a", host="127.0.0.2", port=port)
    d = dns()
    d.write_hosts("127.0.0.2 users.internal\n")
    d.start()
    gw = gateway(discovery_config({"dns": "users.internal", "port": port, "interval": "1s", "resolver": d.addr}))
    assert wait_until(lambda: targets(gw) == [a.addr], 5)
    d.hosts("")  # the name is gone: an answer without an address is not taken
    assert wait_until(lambda: "no address for users.internal" in gw.log(), 5)
    assert targets(gw) == [a.addr]
    d.stop()  # and the resolver goes away
    time.sleep(2.5)
    assert targets(gw) == [a.addr]
    for i in range(5):
        assert requests.get(gw.url("/o/%d" % i), timeout=10).status_code == 200


def test_no_answer_yet_is_503(gateway, dns):
    d = dns()
    d.write_hosts("")
    d.start()
    gw = gateway(discovery_config({"dns": "nothing.internal", "port": 9, "interval": "1s", "resolver": d.addr}),
                 expect_errors=[UPSTREAM_ERRORS])
    r = requests.get(gw.url("/"), timeout=10)
    assert r.status_code == 503
    assert targets(gw) == []
    time.sleep(1.5)
    assert "no address for nothing.internal" in gw.log()


def ready(gw):
    try:
        r = requests.get(gw.admin_url("/ready"), timeout=10)
    except requests.ConnectionError:
        return None  # the admin listener is not up yet
    return r


def test_ready_waits_for_the_first_lookup(gateway, backend, dns):
    """/ready stays 503 until each discovery service's first lookup ended,
    so a load balancer does not send traffic to a node that would answer
    503 for want of targets; a lookup that fails still ends the wait."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a resolver that never answers
    sink.bind(("127.0.0.1", 0))
    try:
        gw = gateway(discovery_config({"dns": "users.internal", "port": 9, "interval": "1s",
                                       "resolver": "127.0.0.1:%d" % sink.getsockname()[1]}),
                     expect_errors=[UPSTREAM_ERRORS])
        assert wait_until(lambda: ready(gw) is not None, 5)
        r = ready(gw)
        assert r.status_code == 503, r.text
        assert r.json()["ready"] is False
        assert "waiting for the first DNS answer for service users" in r.json()["detail"], r.text
        # c-ares gives up (2 tries of 2 s): ready, with no target for that service
        assert wait_until(lambda: ready(gw).status_code == 200, 15), ready(gw).text
        assert requests.get(gw.url("/"), timeout=10).status_code == 503
    finally:
        sink.close()

    # With a resolver that answers, ready means the answer is in use.
    port = free_port()
    a = backend("a", host="127.0.0.2", port=port)
    d = dns()
    d.write_hosts("127.0.0.2 users.internal\n")
    d.start()
    gw2 = gateway(discovery_config({"dns": "users.internal", "port": port, "interval": "1s",
                                    "resolver": d.addr}))
    assert wait_until(lambda: ready(gw2) is not None and ready(gw2).status_code == 200, 10)
    assert requests.get(gw2.url("/first"), timeout=10).status_code == 200
    assert served(a) == 1


def test_discovery_keys_are_validated(tmp_path):
    cases = [
        ({"targets": ["127.0.0.1:1"], "discovery": {"dns": "a.internal", "port": 80}}, "not both"),
        ({"discovery": {"dns": "a.internal"}}, "port is required"),
        ({"discovery": {"dns": "bad name", "port": 80}}, "is not a DNS name"),
        ({"discovery": {"dns": "a.internal", "port": 80, "resolver": "nowhere"}}, "resolver"),
        ({"discovery": {"port": 80}}, 'missing required key "dns"'),
    ]
    for svc, msg in cases:
        f = tmp_path / "c.yaml"
        f.write_text(to_yaml(config({"s": svc}, [route("r", "/*", "s")])))
        p = run_portico("check", "-c", f)
        assert p.returncode == 1 and msg in p.stderr, (svc, p.stderr)
