"""One hostile anonymous connection must not be able to make the server hold
what it likes, nor hurt anybody else (docs/threat-model.md, "Resource
exhaustion"). Raw WebSockets speaking engine.io/socket.io by hand: the attacks
are packets no well-behaved client library would send.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.conftest import LiveServer


async def _raw_youth(server: LiveServer, session: aiohttp.ClientSession
                     ) -> aiohttp.ClientWebSocketResponse:
    """A raw WebSocket through the engine.io handshake, joined to /youth."""
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(url, headers={"Origin": server.origin})
    opened = await ws.receive_str()
    assert opened.startswith("0")  # engine.io OPEN; every text frame below is
    # an engine.io MESSAGE ("4") carrying a socket.io packet
    await ws.send_str("40/youth,")
    while True:
        msg = await ws.receive_str()
        if msg.startswith("40/youth,"):
            return ws
        assert msg.startswith(("2", "42/youth,"))  # pings or a first push, no refusal


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Read until the server closes; True if it did (a reply of any kind is
    read and passed over: only the close counts)."""
    async for _msg in ws:
        pass
    return ws.closed


async def test_binary_event_header_closes_the_connection_and_keeps_nothing(
        live_server: LiveServer) -> None:
    # Given a neighbouring youth in the queue, and a hostile raw connection
    await live_server.staff_client()
    neighbour = await live_server.youth()
    await neighbour.start()
    sio = live_server.ctx.sio
    assert sio is not None
    async with aiohttp.ClientSession() as session:
        ws = await _raw_youth(live_server, session)
        # When it announces a billion attachments and starts sending them
        header = "451000000000-/youth,0" + json.dumps(["send", {"_placeholder": True, "num": 0}])
        await ws.send_str(header)
        for _ in range(5):
            if ws.closed:
                break
            try:
                await ws.send_bytes(b"\0" * 16_000)
            except ConnectionResetError:
                break
        # Then the server closes it, and kept no attachment for it
        assert await asyncio.wait_for(_closed(ws), timeout=30)
    assert sio._binary_packet == {}
    assert sio.binary_refused == 1
    # And the neighbour is untouched
    assert neighbour.connected and (await neighbour.status())["open"] is True


async def test_bare_binary_frame_closes_only_that_connection(live_server: LiveServer) -> None:
    await live_server.staff_client()
    neighbour = await live_server.youth()
    await neighbour.start()
    sio = live_server.ctx.sio
    assert sio is not None
    async with aiohttp.ClientSession() as session:
        ws = await _raw_youth(live_server, session)
        await ws.send_bytes(b"\x04" + b"x" * 100)  # engine.io binary MESSAGE
        assert await asyncio.wait_for(_closed(ws), timeout=30)
    assert sio.binary_refused == 1
    assert neighbour.connected and (await neighbour.status())["open"] is True


async def test_binary_ack_is_refused_too(live_server: LiveServer) -> None:
    sio = live_server.ctx.sio
    assert sio is not None
    async with aiohttp.ClientSession() as session:
        ws = await _raw_youth(live_server, session)
        await ws.send_str("461-/youth,7[{\"_placeholder\":true,\"num\":0}]")
        assert await asyncio.wait_for(_closed(ws), timeout=30)
    assert sio._binary_packet == {}
    assert sio.binary_refused == 1
