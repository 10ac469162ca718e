"""Tiny keep-alive HTTP/1.1 backends for bench/compose.sh (stdlib asyncio).

    backend.py PORT:DELAY_MS:NAME [...]

Each answers every GET with a small fixed JSON body after DELAY_MS, so the
latency of a composition is meaningful.  One event loop serves all ports;
replies are scheduled with call_later (no coroutine per request).
"""
import asyncio
import json
import sys

BODIES = {
    "orders": {"id": 42, "customer_id": 7, "total": 19.99, "items": [{"sku": "a-1", "qty": 2}]},
    "users": {"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"},
    "products": [{"sku": "a-1", "name": "Analytical Engine", "price": 1843.5}],
}


class Proto(asyncio.Protocol):
    def __init__(self, loop, delay, resp):
        self.loop, self.delay, self.resp = loop, delay, resp
        self.buf = b""
        self.t = None

    def connection_made(self, t):
        self.t = t

    def data_received(self, data):
        self.buf += data
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            self.buf = self.buf[i + 4:]  # GET only: no request bodies here
            self.loop.call_later(self.delay, self.reply)

    def reply(self):
        if not self.t.is_closing():
            self.t.write(self.resp)


async def main(specs):
    loop = asyncio.get_running_loop()
    for spec in specs:
        port, delay_ms, name = spec.split(":")
        body = json.dumps(BODIES.get(name, {"name": name})).encode()
        resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(body)) + body
        d = float(delay_ms) / 1000.0
        await loop.create_server(lambda d=d, r=resp: Proto(loop, d, r), "127.0.0.1", int(port),
                                 backlog=1024, reuse_address=True)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
