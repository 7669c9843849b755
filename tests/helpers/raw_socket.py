"""A socket.io connection spoken by hand over one WebSocket, for tests that
must send what the reference client never would (malformed or hostile
frames) or read the frames exactly as the server wrote them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp

from chatserver.domain.conversations import YOUTH_NS
from chatserver.domain.events import Conn

if TYPE_CHECKING:
    from tests.conftest import LiveServer


@contextlib.asynccontextmanager
async def raw_youth(server: LiveServer) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse,
                                                               Conn]]:
    """The engine.io handshake and the socket.io CONNECT to /youth, nothing
    more. Yields the socket and how the domain names the connection."""
    url = server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url, headers={"Origin": server.origin})
        try:
            opened = await ws.receive_str(timeout=10)
            assert opened.startswith("0")  # engine.io OPEN; every text frame below is
            # an engine.io MESSAGE ("4") carrying a socket.io packet
            await ws.send_str("40/youth,")
            while True:
                msg = await ws.receive_str(timeout=10)
                if msg.startswith("40/youth,"):
                    break
                assert msg.startswith(("2", "42/youth,"))  # pings or a first push, no refusal
            yield ws, Conn(YOUTH_NS, json.loads(msg.split(",", 1)[1])["sid"])
        finally:
            await ws.close()
