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

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from tests.conftest import LiveServer, MakeServer
from tests.helpers.raw_socket import raw_youth
from tests.helpers.waiting import eventually


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Read until the server closes; True if it did (a reply of any kind is
    read and passed over: only the close counts)."""
    async for _msg in ws:
        pass
    return ws.closed


async def _neighbour(server: LiveServer) -> ReferenceClient:
    """A youth waiting in the queue, with a counsellor on duty."""
    await server.staff_client()
    youth = await server.youth()
    await youth.start()
    return youth


async def _untouched(youth: ReferenceClient) -> bool:
    return youth.connected and (await youth.status())["open"] is True


async def test_binary_event_header_closes_the_connection_and_keeps_nothing(
        live_server: LiveServer) -> None:
    # Given a neighbouring youth in the queue, and a hostile raw connection
    neighbour = await _neighbour(live_server)
    sio = live_server.ctx.sio
    assert sio is not None
    async with raw_youth(live_server) as (ws, _conn):
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
    assert await _untouched(neighbour)


async def test_bare_binary_frame_closes_only_that_connection(live_server: LiveServer) -> None:
    neighbour = await _neighbour(live_server)
    sio = live_server.ctx.sio
    assert sio is not None
    async with raw_youth(live_server) as (ws, _conn):
        await ws.send_bytes(b"\x04" + b"x" * 100)  # engine.io binary MESSAGE
        assert await asyncio.wait_for(_closed(ws), timeout=30)
    assert sio.binary_refused == 1
    assert await _untouched(neighbour)


async def test_binary_ack_is_refused_too(live_server: LiveServer) -> None:
    sio = live_server.ctx.sio
    assert sio is not None
    async with raw_youth(live_server) as (ws, _conn):
        await ws.send_str("461-/youth,7[{\"_placeholder\":true,\"num\":0}]")
        assert await asyncio.wait_for(_closed(ws), timeout=30)
    assert sio._binary_packet == {}
    assert sio.binary_refused == 1


# ------------------------------------------------------------------ keys at the edge

def _non_canonical(raw: bytes) -> str:
    """The same bytes with the unused trailing bits set: Python's lax decoder
    reads it as ``raw``, the pages' (as strict as libsodium's) refuses it."""
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
    neighbour = await _neighbour(live_server)
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
    assert await _untouched(neighbour)


# ------------------------------------------------------------------ connection bounds

async def _handshake(session: aiohttp.ClientSession, server: LiveServer,
                     headers: dict[str, str] | None = None) -> tuple[int, str]:
    """A long-polling engine.io handshake that is then never polled."""
    url = server.url + "/socket.io/?EIO=4&transport=polling"
    answer = await session.get(url, headers={"Origin": server.origin, **(headers or {})})
    return answer.status, await answer.text()


async def test_unused_handshakes_are_bounded_per_address_and_closed_after_the_deadline(
        make_server: MakeServer) -> None:
    server = await make_server(max_pending_handshakes_per_address=3, handshake_join_secs=1.0)
    sio = server.ctx.sio
    assert sio is not None and sio.admission is not None
    async with aiohttp.ClientSession() as session:
        statuses = [(await _handshake(session, server))[0] for _ in range(3)]
        refused, body = await _handshake(session, server)
        assert statuses == [200, 200, 200]
        assert refused == 401
        assert json.loads(body) == {"ok": False, "error": "too_many_handshakes"}
        assert len(sio.eio.sockets) == 3  # the refused one holds nothing
        # Unused, they are closed after handshake_join_secs (the sweep runs every second)
        await eventually(lambda: len(sio.eio.sockets) == 0 and len(sio.admission) == 0,
                         secs=30)
        assert (await _handshake(session, server))[0] == 200


async def test_connections_per_address_are_bounded_but_not_staff(
        make_server: MakeServer) -> None:
    server = await make_server(max_connections_per_address=3)
    for _ in range(3):
        await server.youth()
    with pytest.raises(CallFailed) as refused:
        await server.youth()
    assert refused.value.code == "connect_failed"  # engine.io's 401, below socket.io
    # A counsellor behind the same address is not counted
    counsellor = await server.staff_client()
    assert counsellor.connected


async def test_ipv6_clients_are_counted_per_64_behind_a_proxy(make_server: MakeServer) -> None:
    server = await make_server(max_pending_handshakes_per_address=2,
                               client_addr_header="X-Forwarded-For")
    async with aiohttp.ClientSession() as session:
        answers = [(await _handshake(session, server, {"X-Forwarded-For": f"2001:db8:1:2::{i}"}))[0]
                   for i in range(1, 4)]
        other_64 = (await _handshake(session, server, {"X-Forwarded-For": "2001:db8:1:3::1"}))[0]
    assert answers == [200, 200, 401] and other_64 == 200


async def test_a_full_server_tells_the_youth_whom_to_call(make_server: MakeServer) -> None:
    server = await make_server(max_anonymous_connections=2)
    await server.staff_client()  # staff are not counted
    first, second = await server.youth(), await server.youth()
    with pytest.raises(CallFailed) as full:
        await server.youth()
    assert full.value.code == "server_full"
    assert set(full.value.info) == {"hours", "alternatives", "emergency"}
    assert full.value.info["emergency"] == server.ctx.chat.status()["emergency"]
    # When one leaves, there is room again
    await first.close()
    sio = server.ctx.sio
    assert sio is not None and sio.admission is not None
    await eventually(lambda: not sio.admission.full())
    assert (await server.youth()).connected and second.connected


# ------------------------------------------------------------------ found by review

def _manager_entries(server: LiveServer) -> int:
    manager = server.ctx.sio.manager  # type: ignore[union-attr]
    return (sum(len(r) for ns in manager.rooms.values() for r in ns.values())
            + sum(len(v) for v in manager.pending_connect.values()))


async def test_connects_sent_after_the_close_register_nothing(live_server: LiveServer) -> None:
    # engine.io's reader hands on frames until the socket is gone: a CONNECT
    # after the client's own CLOSE registered a socket.io sid for good.
    before = _manager_entries(live_server)
    for _ in range(20):
        async with raw_youth(live_server) as (ws, _conn):
            await ws.send_str("1")  # engine.io CLOSE
            for ns in ("/liaison,", "", "/staff,", "/youth,"):
                await ws.send_str("40" + ns)
    sio = live_server.ctx.sio
    assert sio is not None
    await eventually(lambda: len(sio.eio.sockets) == 0 and len(live_server.ctx.conns) == 0)
    assert _manager_entries(live_server) == before


async def test_a_blank_sid_does_not_skip_the_held_refusal(make_server: MakeServer) -> None:
    # aiohttp reads "&sid=" as a sid, engine.io (parse_qs) as none: the
    # request is a new session and must meet the HTTP layer's refusal.
    server = await make_server(max_pending_handshakes_per_address=1)
    async with aiohttp.ClientSession() as session:
        assert (await _handshake(session, server))[0] == 200
        url = server.url + "/socket.io/?EIO=4&transport=polling&sid="
        answer = await session.get(url, headers={"Origin": server.origin})
        assert answer.status == 401
        # the HTTP layer's body, not engine.io's: it was refused before a session existed
        assert await answer.json() == {"ok": False, "error": "too_many_handshakes"}


async def test_the_default_namespace_is_refused(make_server: MakeServer) -> None:
    # "/" had no handler and no Origin check, and a session joined to it was
    # never swept as unjoined yet counted towards server_full.
    server = await make_server(max_anonymous_connections=1, handshake_join_secs=1.0)
    sio = server.ctx.sio
    assert sio is not None and sio.admission is not None
    url = server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, headers={"Origin": server.origin})
        assert (await ws.receive_str(timeout=10)).startswith("0")
        await ws.send_str("40")  # CONNECT to "/"
        refused = await ws.receive_str(timeout=10)
        assert refused.startswith("44")  # socket.io CONNECT_ERROR
        assert sio.admission.joined_total == 0
        # Unjoined, it is closed by the sweep like any unused handshake
        assert await asyncio.wait_for(_closed(ws), timeout=30)
    await eventually(lambda: len(sio.admission) == 0)
    assert (await server.youth()).connected  # the one place is still free


def test_a_crafted_cookie_is_no_token_and_costs_nothing() -> None:
    # SimpleCookie took ~1 s on this header (quadratic on backslashes); the
    # handshake path parses the Cookie of every anonymous request.
    from chatserver.transport.staff import session_token
    assert session_token('__Host-session="' + "\\" * 8000 + '"') is None
    assert session_token("a=b; __Host-session=" + "A" * 43) == "A" * 43
    assert session_token("__Host-session=" + "A" * 42) is None
