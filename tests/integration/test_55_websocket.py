"""`Upgrade: websocket` is tunnelled (SPEC §2.2, §5), with a real
websockets client and server on either side of the gateway."""

import asyncio

import websockets

from harness import RawConn, build_request, config, one_route, route, service


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_websocket_echo_through_the_gateway(gateway, ws_backend):
    ws = ws_backend()
    gw = gateway(one_route(ws, paths=["/ws/*"]))

    async def client():
        async with websockets.connect("ws://127.0.0.1:%d/ws/echo?room=1" % gw.port, max_size=2 ** 22) as c:
            got = []
            for msg in ["hello", "wörld", "x" * 70000, b"\x00\x01binary\xff", b"b" * 200000]:
                await c.send(msg)
                got.append(await c.recv())
            return got

    got = run(client())
    assert got == ["hello", "wörld", "x" * 70000, b"\x00\x01binary\xff", b"b" * 200000]
    assert ws.received[0].path == "/ws/echo?room=1"
    names = {k.lower(): v for k, v in ws.received[0].headers}
    assert names.get("upgrade", "").lower() == "websocket"
    assert "x-forwarded-for" in names


def test_websocket_with_strip_prefix(gateway, ws_backend):
    ws = ws_backend()
    gw = gateway(config({"chat": service(ws)}, [route("chat", "/chat/*", "chat", strip_prefix="/chat")]))

    async def client():
        async with websockets.connect("ws://127.0.0.1:%d/chat/room/7" % gw.port) as c:
            await c.send("ping")
            return await c.recv()

    assert run(client()) == "ping"
    assert ws.received[0].path == "/room/7"


def test_several_websockets_at_once(gateway, ws_backend):
    ws = ws_backend()
    gw = gateway(one_route(ws))

    async def one(i):
        async with websockets.connect("ws://127.0.0.1:%d/s/%d" % (gw.port, i)) as c:
            out = []
            for j in range(20):
                await c.send("%d:%d" % (i, j))
                out.append(await c.recv())
            return out

    async def many():
        return await asyncio.gather(*(one(i) for i in range(8)))

    results = run(many())
    for i, out in enumerate(results):
        assert out == ["%d:%d" % (i, j) for j in range(20)]


def test_closing_from_the_client_ends_the_tunnel(gateway, ws_backend):
    ws = ws_backend()
    gw = gateway(one_route(ws))

    async def client():
        c = await websockets.connect("ws://127.0.0.1:%d/bye" % gw.port)
        await c.send("last")
        assert await c.recv() == "last"
        await c.close()
        return c.close_code

    assert run(client()) == 1000
    # The gateway is still serving websockets and plain requests after that.
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/plain"))
        r = c.read_response()
        assert r.status in (200, 400, 404, 426)  # a websocket server may refuse a plain GET


def test_upgrade_refused_by_backend_is_relayed(gateway, backend):
    """A backend that answers an upgrade request with a normal response: the
    client gets that response and the connection stays HTTP."""
    be = backend()
    gw = gateway(one_route(be))
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/no-ws", [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                               ("Sec-WebSocket-Version", "13"),
                                               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]))
        r = c.read_response()
        assert r.status == 200
        c.send(build_request("GET", "/after"))
        assert c.read_response().status == 200
