"""Fixtures for the black-box integration suite (docs/testing.md).

    gateway(config, **kw)   start the real binary (PORTICO_BIN) on a free port
    backend(name, handler)  an in-process HTTP/1.1 upstream that records requests
    raw_backend(script)     a socket-level upstream for malformed/slow answers
    ws_backend()            a websockets echo server

Everything started through a fixture is stopped at teardown, and each
gateway's log is checked for sanitizer reports and unexpected [error] lines.
"""

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Backend, Gateway, RawBackend, WsBackend, free_port, portico_bin  # noqa: E402
from harness.gateway import tail  # noqa: E402

DEFAULT_TIMEOUT = 60  # seconds per test; @pytest.mark.timeout_s(N) to change


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(seconds): hard time limit for one test (default 60)")


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    path = portico_bin()
    if not os.access(path, os.X_OK):
        raise pytest.UsageError("PORTICO_BIN %s is not an executable; build it first (make) or set "
                                "PORTICO_BIN to an absolute path" % path)


class _TestTimeout(BaseException):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A hard per-test limit, so one hung socket never hangs the suite."""
    m = item.get_closest_marker("timeout_s")
    seconds = m.args[0] if m else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded its %ss limit" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def gateway(tmp_path):
    """Factory: gateway(config, start=True, **Gateway options) -> Gateway."""
    started = []

    def make(config=None, start=True, **kw):
        gw = Gateway(tmp_path / ("gw%d" % len(started)), config, **kw)
        started.append(gw)
        if start:
            gw.start()
        return gw

    yield make
    problems = []
    for gw in started:
        problems += gw.finish()
        if gw.proc is not None:
            print("---- gateway %d (pid %d) log tail ----\n%s" % (started.index(gw), gw.pid, tail(gw.log())))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _stop_all(items):
    errors = []
    for b in items:
        b.stop()
        errors += getattr(b, "errors", [])
    return errors


@pytest.fixture
def backend():
    """Factory: backend(name="backend", handler=None, read_body=True) -> Backend."""
    made = []

    def make(name="backend", handler=None, **kw):
        b = Backend(name, handler, **kw)
        made.append(b)
        return b

    yield make
    errors = _stop_all(made)
    if errors:
        pytest.fail("backend handler raised:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def raw_backend():
    """Factory: raw_backend(script, name="raw") -> RawBackend."""
    made = []

    def make(script, name="raw"):
        b = RawBackend(script, name)
        made.append(b)
        return b

    yield make
    errors = _stop_all(made)
    if errors:
        pytest.fail("raw backend script raised:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def ws_backend():
    made = []

    def make(name="ws"):
        b = WsBackend(name)
        made.append(b)
        return b

    yield make
    _stop_all(made)


@pytest.fixture
def dead_addr():
    """An address where nothing listens (connection refused)."""
    return "127.0.0.1:%d" % free_port()
