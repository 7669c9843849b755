"""What goes over the WebSocket itself: no permessage-deflate however hard a
client asks, and events of one outcome in the domain's order.

A real server, raw WebSocket clients speaking engine.io/socket.io by hand.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from chatserver.domain.events import Outcome
from chatserver.transport.packet_queue import PacketQueue
from tests.conftest import LiveServer, MakeServer
from tests.helpers.raw_socket import raw_youth


async def probes(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[Any]:
    """The payloads of the next ``n`` "probe" events on ``ws``."""
    got: list[Any] = []
    while len(got) < n:
        frame = await ws.receive_str(timeout=5)
        if frame.startswith('42/youth,["probe"'):
            got.append(json.loads(frame.split(",", 1)[1])[1])
    return got


async def test_websocket_compression_is_declined(live_server: LiveServer) -> None:
    # Browsers all offer permessage-deflate; accepting it costs ~100 KB of
    # server memory per connection (docs/performance.md).
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            f"{live_server.url}/socket.io/?EIO=4&transport=websocket",
            headers={"Origin": live_server.settings.public_origin}, compress=15)
        try:
            assert ws.compress == 0
            upgrade = ws._response.headers
            assert "Sec-WebSocket-Extensions" not in upgrade
            # The 101 keeps a neutral Server header and nothing a document needs.
            assert upgrade["Server"] == "web" and "Content-Security-Policy" not in upgrade
            assert (await ws.receive_str(timeout=5)).startswith("0{")
            await ws.send_str("40/youth,")
            assert (await ws.receive_str(timeout=5)).startswith("40/youth,")
            # Right behind the connect answer, unasked: the status (a slow
            # phone's page saves one round trip before its first screen).
            pushed = await ws.receive_str(timeout=5)
            assert pushed.startswith('42/youth,["status",')
            status = json.loads(pushed.split(",", 1)[1])[1]
            assert {"open", "hours", "alternatives", "emergency", "profile"} <= set(status)
            await ws.send_str('42/youth,1["status",{}]')
            reply = await ws.receive_str(timeout=5)
            assert reply.startswith("43/youth,1[") and '"ok":true' in reply
        finally:
            await ws.close()


async def test_events_of_one_outcome_are_never_interleaved(live_server: LiveServer) -> None:
    # A resume's redelivered boxes must not be overtaken by a live box that
    # another task emits meanwhile: Context.apply does not yield mid-outcome.
    async with raw_youth(live_server) as (ws, conn):
        outcomes = []
        for name in ("a", "b", "c"):
            out = Outcome()
            for i in range(40):
                out.emit("probe", {"outcome": name, "i": i}, (conn,))
            outcomes.append(out)
        await asyncio.gather(*(live_server.ctx.apply(o) for o in outcomes))
        got = await probes(ws, 120)
        runs = [got[k:k + 40] for k in (0, 40, 80)]
        for run in runs:
            assert len({p["outcome"] for p in run}) == 1
            assert [p["i"] for p in run] == list(range(40))


async def test_anonymous_connections_keep_only_what_they_need(live_server: LiveServer) -> None:
    # engine.io and socket.io hold the connect-time environ (a copy of every
    # request header) for the connection's life; /youth trims it after use.
    youth = await live_server.youth()
    assert youth.connected
    sio = live_server.ctx.sio
    assert sio is not None
    kept = [set(environ) for environ in sio.environ.values()]
    assert kept and all(keys <= {"HTTP_ORIGIN", "aiohttp.request"} for keys in kept)
    assert (await youth.call("status", {}))["ok"] is True  # still works


async def test_a_sliced_round_hands_the_loop_back_and_drops_what_went_stale(
        live_server: LiveServer) -> None:
    # The queue round (app.py) sends in slices so relayed messages are not held
    # up behind it; what changed during a pause is not sent (docs/design/queue.md).
    async with raw_youth(live_server) as (ws, conn):
        rounds = Outcome()
        for i in range(20):
            rounds.emit("probe", {"i": i}, (conn,))
        other = Outcome()
        other.emit("probe", {"i": "other"}, (conn,))
        stale = {3, 12}  # asked before each event, before and after a pause
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(
            live_server.ctx.apply(rounds, slice_size=5, slice_pause=0.05,
                                  still_current=lambda e: e.payload["i"] not in stale),
            live_server.ctx.apply(other))
        # 18 sent in slices of 5: the loop was handed back three times, for
        # at least the pause each time (spread out, not back to back).
        assert loop.time() - started >= 3 * 0.05
        got = [p["i"] for p in await probes(ws, 19)]
        assert got == [0, 1, 2, 4, 5, "other", *[i for i in range(6, 20) if i != 12]]


async def test_websockets_are_counted_for_the_gc_policy(live_server: LiveServer) -> None:
    # gc_full_collect_after_websockets counts every WebSocket engine.io serves
    # (decision 0007), also one that never joins a namespace; polling is not.
    before = live_server.ctx.websockets_opened
    youth = await live_server.youth()
    await youth.disconnect()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{live_server.url}/socket.io/?EIO=4&transport=websocket")
        await ws.close()
        async with http.get(f"{live_server.url}/socket.io/?EIO=4&transport=polling") as r:
            assert r.status == 200
    assert live_server.ctx.websockets_opened == before + 2


async def test_connections_queue_packets_in_a_packet_queue(make_server: MakeServer) -> None:
    # engine.io's per-connection queue is a PacketQueue (~3 KB less per idle
    # connection, decision 0006), it carries real traffic in order, and it
    # holds nothing once the writer has drained it. The lever switches back.
    lean = await make_server()
    async with raw_youth(lean) as (ws, conn):
        out = Outcome()
        for i in range(50):
            out.emit("probe", {"i": i}, (conn,))
        await lean.ctx.apply(out)
        assert [p["i"] for p in await probes(ws, 50)] == list(range(50))
        assert lean.ctx.sio is not None
        queues = [s.queue for s in lean.ctx.sio.eio.sockets.values()]
        assert queues and all(isinstance(q, PacketQueue) for q in queues)
        assert all(q.qsize() == 0 and q._items is None for q in queues)
    stock = await make_server(engineio_lean_queue=False)
    async with raw_youth(stock):
        assert stock.ctx.sio is not None
        queues = [s.queue for s in stock.ctx.sio.eio.sockets.values()]
        assert queues and all(type(q) is asyncio.Queue for q in queues)
