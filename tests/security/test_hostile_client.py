"""One hostile anonymous connection must not be able to make the server hold
what it likes, nor hurt anybody else (docs/threat-model.md, "Resource
exhaustion"). Raw WebSockets speaking engine.io/socket.io by hand: the attacks
are packets no well-behaved client library would send.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from chatserver.client.reference import CallFailed
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from tests.conftest import LiveServer
from tests.helpers.waiting import eventually


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


# ------------------------------------------------------------------ keys at the edge

def _non_canonical(raw: bytes) -> str:
    """The same bytes with the unused trailing bits set: Python's lax decoder
    reads it as ``raw``, libsodium's in the pages refuses it."""
    text = b64e(raw)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(text[-1])
    return text[:-1] + alphabet[last | 0b11]


LOW_ORDER_POINTS = [bytes(32), (1).to_bytes(32, "little")]


@pytest.mark.parametrize("kx_pk", [
    _non_canonical(bytes(range(32))),
    *[b64e(p) for p in LOW_ORDER_POINTS],
], ids=["non-canonical", "zero-point", "order-one-point"])
async def test_a_key_no_page_can_use_is_refused_at_start_and_seats_nobody(
        live_server: LiveServer, kx_pk: str) -> None:
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    # Given a key that base64-decodes to 32 bytes but that no page can use
    with pytest.raises(CallFailed) as refused:
        await youth.call("start", {"kx_pk": kx_pk, "profile": {"urgent": True}})
    # Then the start is refused, the queue is empty, and "take next" finds nothing
    assert refused.value.code == "bad_payload"
    assert live_server.ctx.chat.conversations == {}
    with pytest.raises(CallFailed) as nothing:
        await counsellor.call("take_next", {"kx_pk": b64e(e2e.KxKeyPair.generate().public_key)})
    assert nothing.value.code == "queue_empty"


async def test_a_counsellor_key_no_page_can_use_is_refused_at_claim(
        live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]
    with pytest.raises(CallFailed) as refused:
        await counsellor.call("claim", {"conversation": conv,
                                        "kx_pk": _non_canonical(bytes(range(32)))})
    assert refused.value.code == "bad_payload"
    assert live_server.ctx.chat.conversations[conv].state.value == "waiting"


async def test_non_canonical_ciphertext_is_refused(live_server: LiveServer) -> None:
    # (A 24-byte nonce has no unused bits, so no non-canonical form.)
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    conv_id = (await youth.start())["conversation"]
    await counsellor.take_next()
    conv = youth.conversations[conv_id]
    await eventually(lambda: conv.epoch in conv.rosters and len(conv.roster.members) == 2)
    to = next(m for m in conv.roster.members if m != conv.member)
    box = {"to": to, "nonce": b64e(bytes(24)), "ct": _non_canonical(bytes(256 + 16))}
    with pytest.raises(CallFailed) as refused:
        await youth.call("send", {"conversation": conv.id, "epoch": conv.epoch, "seq": 1,
                                  "boxes": [box]})
    assert refused.value.code == "bad_payload"


# ------------------------------------------------------------------ long-polling

async def test_polling_post_over_the_size_bound_is_413_and_ends_only_that_session(
        live_server: LiveServer) -> None:
    await live_server.staff_client()
    neighbour = await live_server.youth()
    timeout = aiohttp.ClientTimeout(total=60)  # a failure bound: the old code hung here
    async with aiohttp.ClientSession(timeout=timeout) as session:
        base = live_server.url + "/socket.io/?EIO=4&transport=polling"
        headers = {"Origin": live_server.origin}
        opened = await session.get(base, headers=headers)
        sid = json.loads((await opened.text())[1:])["sid"]
        too_big = b"4" + b"x" * (live_server.settings.max_event_bytes + 1)
        answer = await session.post(f"{base}&sid={sid}", data=too_big, headers=headers)
        assert answer.status == 413
        assert await answer.json() == {"ok": False, "error": "too_large"}
        # The session is over: the next request is a clear 400, never a 500
        again = await session.post(f"{base}&sid={sid}", data=b"3", headers=headers)
        assert again.status == 400
    assert neighbour.connected and (await neighbour.status())["open"] is True
