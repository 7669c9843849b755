"""What the server puts on the wire, as a listener on each connection would see it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tests.conftest import LiveServer


class Emit(NamedTuple):
    event: str
    data: Any
    namespace: str
    sid: str  # the recipient's socket.io sid


def spy_emits(server: LiveServer) -> list[Emit]:
    """Record every event the server puts on the wire from now on, decoded from
    the engine.io packets: chatserver's Context.apply and any ``sio.emit``
    both end in ``eio.send_packet``. The server itself is unchanged; the spy
    passes every packet on."""
    sio = server.ctx.sio
    assert sio is not None
    seen: list[Emit] = []
    real = sio.eio.send_packet

    async def spy(eio_sid: str, pkt: Any) -> None:
        data = pkt.data
        if isinstance(data, str) and data.startswith("2"):  # a socket.io EVENT
            rest = data[1:]
            namespace, body = rest.split(",", 1) if rest.startswith("/") else ("/", rest)
            event, *args = json.loads(body)
            sid = sio.manager.sid_from_eio_sid(eio_sid, namespace) or ""
            seen.append(Emit(event, args[0] if args else None, namespace, sid))
        await real(eio_sid, pkt)

    sio.eio.send_packet = spy
    return seen
