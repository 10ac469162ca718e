"""Process lifecycle (SPEC §1, §6): SIGTERM/SIGINT drain, drain_timeout,
SIGHUP reload without dropping requests."""

import signal
import socket
import threading
import time

import requests

from harness import RawConn, Reply, build_request, config, one_route, route, service


class SlowCall:
    """A GET in a background thread whose backend answer waits for release."""

    def __init__(self, url):
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url):
        try:
            self.result = requests.get(url, timeout=20)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def join(self, timeout=15):
        self.thread.join(timeout)
        return not self.thread.is_alive()


def held_backend(backend, release, body=b"finished after the drain started"):
    def handler(req):
        if req.path.startswith("/slow"):
            release.wait(20)
        return Reply(200, body)
    return backend(handler=handler)


def wait_active(be, timeout=5):
    deadline = time.monotonic() + timeout
    while be.active == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert be.active, "the slow request never reached the backend"


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def test_sigterm_drains_in_flight_request(gateway, backend):
    release = threading.Event()
    be = held_backend(backend, release)
    gw = gateway(one_route(be, server={"drain_timeout": "10s"}))
    call = SlowCall(gw.url("/slow"))
    try:
        wait_active(be)
        gw.signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while not refused(gw.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert refused(gw.port), "new connections still accepted while draining"
        assert gw.running(), "exited without waiting for the request in flight"
        assert call.thread.is_alive()
    finally:
        release.set()
    assert call.join(), "the in-flight request never completed"
    assert call.error is None, call.error
    assert call.result.status_code == 200
    assert call.result.content == b"finished after the drain started"
    assert gw.wait_exit(10) == 0, gw.log()


def test_sigint_drains_like_sigterm(gateway, backend):
    release = threading.Event()
    be = held_backend(backend, release)
    gw = gateway(one_route(be))
    call = SlowCall(gw.url("/slow"))
    wait_active(be)
    gw.signal(signal.SIGINT)
    time.sleep(0.2)
    release.set()
    assert call.join() and call.result is not None and call.result.status_code == 200, call.error
    assert gw.wait_exit(10) == 0


def test_drain_timeout_bounds_the_wait(gateway, backend):
    release = threading.Event()
    be = held_backend(backend, release)
    gw = gateway(one_route(be, server={"drain_timeout": "500ms"}), expect_errors=[r"(?i)drain|timeout|clos|abort"])
    call = SlowCall(gw.url("/slow"))
    try:
        wait_active(be)
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        rc = gw.wait_exit(10)
        elapsed = time.monotonic() - t0
    finally:
        release.set()
    assert rc is not None
    assert elapsed < 3.0, "exit took %.1fs with drain_timeout 500ms" % elapsed
    assert elapsed >= 0.4, "exit after %.2fs: did not wait for the request in flight" % elapsed
    assert call.join()
    assert call.result is None or call.result.status_code >= 500, "a request cut by the drain looked complete"


def test_idle_connections_do_not_hold_up_the_drain(gateway, backend):
    gw = gateway(one_route(backend(), server={"drain_timeout": "10s", "timeouts": {"client_idle": "60s"}}))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/x"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        assert c.wait_closed(5), "idle keep-alive connection not closed on SIGTERM"
        assert gw.wait_exit(5) == 0
        assert time.monotonic() - t0 < 3


def _two_routes(be, names):
    return config({"svc": service(be)}, [route(n, "/%s/*" % n, "svc") for n in names])


def test_sighup_reloads_the_file(gateway, backend):
    be = backend()
    gw = gateway(_two_routes(be, ["old"]))
    assert requests.get(gw.url("/old/x"), timeout=10).status_code == 200
    gw.reload(_two_routes(be, ["new"]))
    deadline = time.monotonic() + 5
    while requests.get(gw.url("/new/x"), timeout=10).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests.get(gw.url("/new/x"), timeout=10).status_code == 200
    assert requests.get(gw.url("/old/x"), timeout=10).status_code == 404


def test_sighup_with_a_bad_file_keeps_the_old_configuration(gateway, backend):
    be = backend()
    gw = gateway(_two_routes(be, ["keep"]), expect_errors=[r"(?i)config|reload|unknown|portico\.yaml"])
    bad = _two_routes(be, ["broken"])
    bad["routes"][0]["servcie"] = "typo"
    gw.reload(bad)
    time.sleep(1.0)
    assert gw.running(), "a bad reload killed the gateway"
    assert requests.get(gw.url("/keep/x"), timeout=10).status_code == 200
    assert requests.get(gw.url("/broken/x"), timeout=10).status_code == 404
    assert "servcie" in gw.log(), "the reload error is not logged"


def test_request_in_flight_finishes_across_a_reload(gateway, backend):
    release = threading.Event()
    be = held_backend(backend, release, body=b"old config")
    gw = gateway(config({"svc": service(be)}, [route("slow", "/slow", "svc"), route("a", "/a/*", "svc")]))
    call = SlowCall(gw.url("/slow"))
    try:
        wait_active(be)
        gw.reload(config({"svc": service(be)}, [route("b", "/b/*", "svc")]))
        deadline = time.monotonic() + 5
        while requests.get(gw.url("/b/x"), timeout=10).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        release.set()
    assert call.join() and call.error is None, call.error
    assert call.result.status_code == 200 and call.result.content == b"old config"
