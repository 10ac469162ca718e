"""Waiting for a condition, and steady GET load on a gateway while a test
breaks something (a target, the DNS answer) behind it."""

import threading
import time

import requests


def wait_until(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Load:
    """GET load from a few keep-alive clients until stop(); counts every answer."""

    def __init__(self, gw, path="/load", clients=4):
        self.gw = gw
        self.path = path
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        n = 0
        with requests.Session() as s:
            while not self.stopped.is_set():
                n += 1
                try:
                    r = s.get(self.gw.url("%s/%d/%d" % (self.path, i, n)), timeout=10)
                    good = r.status_code == 200
                    what = (r.status_code, r.text[:200])
                except requests.RequestException as e:
                    good, what = False, repr(e)
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failed.append(what)

    def stop(self):
        self.stopped.set()
        for t in self.threads:
            t.join(15)
