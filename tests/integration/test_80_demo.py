"""The demo shop (examples/shop): the services on their own, then the whole
demo as `make run` starts it, on its fixed ports, through the gateway."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from harness import REPO, assert_problem, free_port, port_open, portico_bin
from harness.gateway import sanitizer_problems, tail

SHOP = os.path.join(REPO, "examples", "shop")
DEMO_PORTS = [8080, 9901, 9101, 9102, 9103]


def wait_http(url, timeout=20, proc=None, log=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process exited with %s while waiting for %s\n%s" % (
                proc.returncode, url, log() if log else ""))
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == 200:
                return r
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("%s did not answer 200 within %ss (last: %s)\n%s" % (url, timeout, last, log() if log else ""))


@pytest.fixture
def services(tmp_path):
    """The three services on free ports: {name: base URL}."""
    procs, urls = [], {}
    log = open(tmp_path / "services.log", "wb")
    try:
        for name in ("users", "orders", "products"):
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, os.path.join(SHOP, name + ".py"), "--port", str(port)],
                                          stdout=log, stderr=log, stdin=subprocess.DEVNULL))
            urls[name] = "http://127.0.0.1:%d" % port
        for name, url in urls.items():
            wait_http(url + "/healthz", 10)
        yield urls
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def test_services_answer_json(services):
    users = requests.get(services["users"] + "/users", timeout=5).json()
    assert len(users) >= 3 and all({"id", "name", "email"} <= set(u) for u in users)
    assert requests.get(services["users"] + "/users/1", timeout=5).json()["id"] == 1
    r = requests.get(services["users"] + "/users/999", timeout=5)
    assert r.status_code == 404
    for name in services:
        h = requests.get(services[name] + "/healthz", timeout=5)
        assert h.status_code == 200 and h.json()["status"] == "ok"


def test_seed_data_is_consistent(services):
    users = {u["id"] for u in requests.get(services["users"] + "/users", timeout=5).json()}
    products = {p["id"]: p for p in requests.get(services["products"] + "/products", timeout=5).json()}
    orders = requests.get(services["orders"] + "/orders", timeout=5).json()
    assert orders
    for o in orders:
        assert set(o) == {"id", "customer_id", "product_ids", "total"}
        assert o["customer_id"] in users
        assert o["product_ids"] and all(i in products for i in o["product_ids"])
        assert abs(o["total"] - sum(products[i]["price"] for i in o["product_ids"])) < 0.005
    one = requests.get(services["orders"] + "/orders/%d" % orders[0]["id"], timeout=5).json()
    assert one == orders[0]


def test_products_by_ids(services):
    got = requests.get(services["products"] + "/products?ids=2,1", timeout=5).json()
    assert [p["id"] for p in got] == [2, 1]
    assert requests.get(services["products"] + "/products?ids=x", timeout=5).status_code == 400


def test_posts_create_records(services):
    r = requests.post(services["users"] + "/users", json={"name": "Edsger", "email": "ewd@example.com"}, timeout=5)
    assert r.status_code == 201
    new = r.json()
    assert requests.get(services["users"] + "/users/%d" % new["id"], timeout=5).json() == new
    assert requests.post(services["users"] + "/users", json={"name": "x"}, timeout=5).status_code == 400
    r = requests.post(services["orders"] + "/orders", json={"customer_id": new["id"], "product_ids": [2, 2]}, timeout=5)
    assert r.status_code == 201
    assert r.json()["total"] == 19.0
    assert requests.post(services["orders"] + "/orders", json={"customer_id": 1, "product_ids": [99]},
                         timeout=5).status_code == 400


@pytest.mark.timeout_s(120)
def test_make_run_demo_through_the_gateway(tmp_path):
    busy = [p for p in DEMO_PORTS if port_open(p)]
    assert not busy, ("the demo needs the fixed ports %s, but %s already accept connections; stop whatever "
                      "listens there and run again" % (DEMO_PORTS, busy))
    log_path = tmp_path / "run.log"
    log_f = open(log_path, "wb")

    def log():
        return tail(log_path.read_bytes().decode("utf-8", "replace"), 80)

    proc = subprocess.Popen([os.path.join(SHOP, "run.sh"), portico_bin()], cwd=REPO, stdout=log_f, stderr=log_f,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http("http://127.0.0.1:8080/api/users/1", 30, proc, log)
        base = "http://127.0.0.1:8080/api"
        user = requests.get(base + "/users/1", timeout=5).json()
        assert user["id"] == 1 and user["name"]
        assert len(requests.get(base + "/users", timeout=5).json()) >= 3
        order = requests.get(base + "/orders/1", timeout=5).json()
        assert set(order) == {"id", "customer_id", "product_ids", "total"}
        customer = requests.get(base + "/users/%d" % order["customer_id"], timeout=5)
        assert customer.status_code == 200
        ids = ",".join(str(i) for i in order["product_ids"])
        products = requests.get(base + "/products?ids=" + ids, timeout=5).json()
        assert [p["id"] for p in products] == order["product_ids"]
        assert abs(sum(p["price"] for p in products) - order["total"]) < 0.005
        details = requests.get(base + "/orders/1/details", timeout=5)
        assert details.status_code == 200 and "X-Portico-Partial" not in details.headers
        assert details.json() == {"order": order, "customer": {"id": order["customer_id"],
                                                               "name": customer.json()["name"]},
                                  "products": [{k: p[k] for k in ("id", "name", "price")} for p in products]}
        r = requests.post(base + "/users", json={"name": "Barbara Liskov", "email": "bl@example.com"}, timeout=5)
        assert r.status_code == 201
        assert requests.get(base + "/users/%d" % r.json()["id"], timeout=5).json()["name"] == "Barbara Liskov"
        assert_problem(requests.get(base + "/nothing", timeout=5), 404, "not-found")
        # the cached route: a miss, then hits
        first = requests.get(base + "/products/3", timeout=5)
        again = requests.get(base + "/products/3", timeout=5)
        assert first.headers.get("X-Cache") == "MISS" and again.headers.get("X-Cache") == "HIT"
        assert first.json() == again.json()
        # the service that is not running: the fallback answers
        rec = requests.get(base + "/recommendations", timeout=10)
        assert rec.status_code == 200 and rec.headers.get("X-Fallback") == "true"
        assert rec.json()["items"] == []
        health = requests.get("http://127.0.0.1:9901/services/products/health", timeout=5).json()
        assert health["service"] == "products" and health["targets"][0]["state"] == "healthy"
        assert "curl -s localhost:8080/api/users/1" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the script's own process group, by id
            proc.wait(5)
            rc = None
        log_f.close()
    assert rc == 0, "run.sh exited with %s\n%s" % (rc, log())
    deadline = time.monotonic() + 5
    while any(port_open(p) for p in DEMO_PORTS) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in DEMO_PORTS if port_open(p)], "run.sh left processes listening\n" + log()
    text = log_path.read_text(errors="replace")
    assert not sanitizer_problems(text), text
