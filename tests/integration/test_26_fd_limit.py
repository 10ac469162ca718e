"""Running out of file descriptors (SPEC §7: never a crash or a hang).

When accept() fails with EMFILE the pending connection stays queued and the
listening socket stays readable; a loop that simply retries spins at 100 %
CPU and starves the connections it already has.  Portico stops watching its
listeners for 100 ms at a time instead, keeps serving, and accepts the queued
clients once descriptors are free again.
"""

import os
import socket
import time

from harness import RawConn, build_request, one_route, port_open, request


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served_again(port, path, timeout=10):
    """Whether a GET on a new connection gets a 200 within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", path, timeout=2).status == 200:
                return True
        except (OSError, AssertionError):
            pass
        time.sleep(0.2)
    return False


def test_out_of_descriptors_pauses_accepting_then_recovers(gateway, backend):
    be = backend()
    gw = gateway(one_route(be), nofile=64, expect_errors=[r"accept: Too many open files"])

    # A client that is already connected, with a pooled upstream connection.
    keep = RawConn(gw.port)
    keep.send(build_request("GET", "/before"))
    assert keep.read_response().status == 200

    # Far more connections than descriptors: the gateway takes what it can,
    # the rest wait in the listen backlog.
    idle = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(120)]
    try:
        time.sleep(0.5)
        assert "not accepting for 100 ms" in gw.log()

        # A spinning accept loop would burn about 2 s of CPU here.
        before = cpu_seconds(gw.pid)
        time.sleep(2.0)
        used = cpu_seconds(gw.pid) - before
        assert used < 0.5, "gateway used %.2f s of CPU in 2 s while out of descriptors" % used

        # The connection it already holds is still served meanwhile.
        keep.send(build_request("GET", "/during"))
        assert keep.read_response().status == 200
    finally:
        for s in idle:
            s.close()
        keep.close()

    # Descriptors are free again: new clients are accepted and served.
    assert served_again(gw.port, "/after"), "gateway did not accept again after descriptors were freed"
    assert "/after" in [q.target for q in be.received]
    assert gw.running()


def test_admin_listener_pauses_too(gateway, backend):
    """The admin API runs on the main thread's loop: a spin there would
    stall health checks, reloads and discovery as well."""
    cfg = one_route(backend())
    cfg["admin"] = {"listen": "127.0.0.1:@ADMIN_PORT@"}
    gw = gateway(cfg, nofile=48, expect_errors=[r"accept: Too many open files"])
    deadline = time.monotonic() + 10
    while not port_open(gw.admin_port):
        assert time.monotonic() < deadline, "admin API not listening"
        time.sleep(0.05)

    # The admin API takes at most 64 connections, more than 48 descriptors.
    idle = [socket.create_connection(("127.0.0.1", gw.admin_port), timeout=5) for _ in range(60)]
    try:
        time.sleep(0.5)
        before = cpu_seconds(gw.pid)
        time.sleep(2.0)
        used = cpu_seconds(gw.pid) - before
        assert used < 0.5, "gateway used %.2f s of CPU in 2 s while out of descriptors" % used
    finally:
        for s in idle:
            s.close()

    assert served_again(gw.admin_port, "/status"), "admin API did not accept again after descriptors were freed"
