"""The cluster tests' load balancer (tests/helpers/lb_proxy.py) against two
tiny aiohttp apps on real sockets: round-robin for requests without a
session, ``sid=<node>.`` to its node, a backend that is down skipped (or a
503 when the sid names it), every request routed on its own even over one
keep-alive connection, its own ``X-Forwarded-For`` appended after the
client's, and WebSockets piped both ways until the backend goes away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from chatserver.transport.ratelimit import forwarded_client
from tests.conftest import free_port
from tests.helpers.lb_proxy import LbProxy
from tests.helpers.waiting import eventually


def tiny_app(name: str) -> web.Application:
    open_sockets: set[web.WebSocketResponse] = set()

    async def who(request: web.Request) -> web.Response:
        return web.json_response({"node": name,
                                  "forwarded": request.headers.getall("X-Forwarded-For", [])})

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        open_sockets.add(sock)
        async for msg in sock:
            await sock.send_str(f"{name}:{msg.data}")
        open_sockets.discard(sock)
        return sock

    async def going_away(app: web.Application) -> None:
        for sock in list(open_sockets):
            await sock.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    app = web.Application()
    app.router.add_get("/who", who)
    app.router.add_get("/ws", ws)
    app.on_shutdown.append(going_away)
    return app


class Backends:
    def __init__(self) -> None:
        self.runners: dict[str, web.AppRunner] = {}
        self.ports: dict[str, int] = {}

    async def start(self, name: str) -> None:
        runner = web.AppRunner(tiny_app(name))
        await runner.setup()
        port = self.ports.setdefault(name, free_port())
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners[name] = runner

    async def stop(self, name: str) -> None:
        await self.runners.pop(name).cleanup()


@pytest.fixture
async def two() -> AsyncIterator[tuple[Backends, LbProxy]]:
    backends = Backends()
    for name in ("a", "b"):
        await backends.start(name)
    async with LbProxy(backends.ports) as proxy:
        yield backends, proxy
    for name in list(backends.runners):
        await backends.stop(name)


async def who(http: aiohttp.ClientSession, url: str,
              **headers: str) -> tuple[int, dict[str, object]]:
    async with http.get(url, headers=headers) as resp:
        body = await resp.json() if resp.status == 200 else {}
        return resp.status, body


async def test_round_robin_without_a_sid_each_request_on_its_own(
        two: tuple[Backends, LbProxy]) -> None:
    _, proxy = two
    # One session: aiohttp would reuse a kept-alive connection; the proxy
    # closes each after its answer, so every request is routed anew.
    async with aiohttp.ClientSession() as http:
        nodes = [(await who(http, proxy.url + "/who"))[1]["node"] for _ in range(4)]
    assert nodes == ["a", "b", "a", "b"]
    assert len(proxy.routed) == 4


async def test_a_sid_goes_to_its_node_and_pin_next_picks_one(
        two: tuple[Backends, LbProxy]) -> None:
    _, proxy = two
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            status, body = await who(http, proxy.url + "/who?EIO=4&transport=polling&sid=b.x1y2")
            assert (status, body["node"]) == (200, "b")
        proxy.pin_next("a")
        assert (await who(http, proxy.url + "/who"))[1]["node"] == "a"
        proxy.pin_next("a")
        assert (await who(http, proxy.url + "/who?sid=b.q"))[1]["node"] == "b"  # sid wins
        assert (await who(http, proxy.url + "/who"))[1]["node"] == "a"  # pin used up
    assert [r.by_sid for r in proxy.routed] == [True, True, True, False, True, False]


async def test_a_backend_that_is_down_is_skipped_and_its_sid_gets_503(
        two: tuple[Backends, LbProxy]) -> None:
    backends, proxy = two
    await backends.stop("a")
    async with aiohttp.ClientSession() as http:
        nodes = [(await who(http, proxy.url + "/who"))[1]["node"] for _ in range(3)]
        assert nodes == ["b", "b", "b"]
        assert (await who(http, proxy.url + "/who?sid=a.gone"))[0] == 503
        assert (await who(http, proxy.url + "/who?sid=zz.unknown"))[0] == 503
        await backends.start("a")  # back on its port: round-robin finds it again
        nodes = {(await who(http, proxy.url + "/who"))[1]["node"] for _ in range(2)}
    assert nodes == {"a", "b"}


async def test_the_proxy_appends_the_address_it_was_connected_from(
        two: tuple[Backends, LbProxy]) -> None:
    _, proxy = two
    # A client on another loopback address, which writes its own header too.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.77", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        _, body = await who(http, proxy.url + "/who", **{"X-Forwarded-For": "192.0.2.66"})
    assert body["forwarded"] == ["192.0.2.66", "127.0.0.77"]
    # What a node with one trusted hop takes as the client: the proxy's entry.
    assert forwarded_client(body["forwarded"], 1) == "127.0.0.77"  # type: ignore[arg-type]
    assert proxy.routed[-1].peer == "127.0.0.77"


async def test_a_websocket_is_piped_both_ways_until_its_backend_goes(
        two: tuple[Backends, LbProxy]) -> None:
    backends, proxy = two
    async with aiohttp.ClientSession() as http:
        proxy.pin_next("b")
        async with http.ws_connect(proxy.url + "/ws") as sock:
            for n in range(3):
                await sock.send_str(f"m{n}")
                assert (await sock.receive_str()) == f"b:m{n}"
            assert proxy.upgrades_to("b") == 1 and proxy.upgrades_to("a") == 0
            await backends.stop("b")
            closed = await sock.receive()
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        # The backend closed its socket; the proxy closed the client's too.
        await eventually(lambda: proxy.open_connections == 0)
