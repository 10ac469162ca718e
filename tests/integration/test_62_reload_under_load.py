"""Hot reload with zero drops (issue: running it in production, item 2).

Client threads keep sending requests, some on keep-alive connections and
some on a new connection each time, while the configuration is swapped 50
times through each of the three paths: SIGHUP, a change of the file on disk
(watched), and PUT /config.  Not one request may fail, and each new
configuration's route must serve.  An invalid configuration in between must
change nothing.
"""

import http.client
import signal
import threading
import time

import requests

from harness.config import config, route, service

TOKEN = "reload-secret"


class Load:
    """Threads hammering /stable/* until stopped; they count every failure."""

    def __init__(self, port, keepalive_threads=3, fresh_threads=2):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._keepalive, daemon=True) for _ in range(keepalive_threads)]
        self.threads += [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh_threads)]

    def _record(self, err):
        with self.lock:
            if err is None:
                self.ok += 1
            elif len(self.failures) < 20:
                self.failures.append(err)

    def _one(self, conn):
        conn.request("GET", "/stable/x")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or body != b"stable":
            return "status %d body %r" % (r.status, body[:80])
        return None

    def _keepalive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            try:
                self._record(self._one(conn))
            except Exception as e:  # a dropped keep-alive connection is a failure too
                self._record("keep-alive: %r" % e)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()

    def _fresh(self):
        while not self.stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self._record(self._one(conn))
            except Exception as e:
                self._record("new connection: %r" % e)
            finally:
                conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def make_config(be, gw, generation):
    cfg = config({"svc": service(be)},
                 [route("stable", "/stable/*", "svc"),
                  route("gen%d" % generation, "/gen%d/*" % generation, "svc")],
                 admin={"listen": "127.0.0.1:%d" % gw.admin_port, "token": TOKEN})
    return cfg


def wait_serving(gw, generation, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(gw.url("/gen%d/x" % generation), timeout=5).status_code == 200:
            return True
        time.sleep(0.01)
    return False


def test_fifty_reloads_through_each_path_drop_nothing(gateway, backend):
    be = backend("svc", lambda req: (200, b"stable" if req.path.startswith("/stable") else b"gen",
                                     [("Content-Type", "text/plain")]))
    gw = gateway(None, start=False, workers=2)
    gw.config = make_config(be, gw, 0)
    gw.start()
    gw.wait_ready(port=gw.admin_port)
    gen = 0
    with Load(gw.port) as load:
        time.sleep(0.3)
        for path in ("sighup", "file", "api"):
            for _ in range(50):
                gen += 1
                cfg = make_config(be, gw, gen)
                if path == "sighup":
                    # write without the watcher seeing a change: same content is skipped,
                    # so SIGHUP is what applies it (the watcher may also apply it: either way)
                    gw.write_config(cfg)
                    gw.signal(signal.SIGHUP)
                elif path == "file":
                    gw.write_config(cfg)
                else:
                    r = requests.put(gw.admin_url("/config"), data=gw.render(cfg),
                                     headers={"Authorization": "Bearer " + TOKEN}, timeout=10)
                    assert r.status_code == 200, r.text
                assert wait_serving(gw, gen), "generation %d (%s) never served" % (gen, path)
                # the previous generation's route is gone
                assert requests.get(gw.url("/gen%d/x" % (gen - 1)), timeout=5).status_code == 404
            # an invalid configuration changes nothing, whichever path brings it
            bad = gw.render(make_config(be, gw, gen)).replace("routes:", "routes:\n  - {match: {paths: [\"~ (\"]}, service: svc}")
            if path == "api":
                r = requests.put(gw.admin_url("/config"), data=bad,
                                 headers={"Authorization": "Bearer " + TOKEN}, timeout=10)
                assert r.status_code == 400
            else:
                with open(gw.config_path, "w") as f:
                    f.write(bad)
                if path == "sighup":
                    gw.signal(signal.SIGHUP)
                time.sleep(0.5)
                gw.write_config(make_config(be, gw, gen))  # restore the file for the next path
            assert requests.get(gw.url("/gen%d/x" % gen), timeout=5).status_code == 200
        time.sleep(0.3)
    assert not load.failures, "failed requests during reloads: %r" % load.failures
    assert load.ok > 300, "the load threads barely ran (%d requests)" % load.ok
    gw.expect_error(r"invalid|regex|not applied|keeping configuration")
    status = requests.get(gw.admin_url("/status"), headers={"Authorization": "Bearer " + TOKEN}, timeout=5).json()
    assert status["config_version"] >= 151
