"""The socket.io server, with what an anonymous client may make it hold
bounded at the door: binary packets refused, and every engine.io session
admitted (or refused) by ``Admission`` (transport/admission.py).

chatserver's protocol is JSON text only (docs/protocol.md, "Encodings"): no
event carries bytes. python-socketio, though, accepts socket.io *binary*
packets (types 5 and 6): the header announces how many attachment frames
follow, and every following frame is kept until that count is reached. A
header announcing a billion attachments let one anonymous connection grow the
process by ~100 MiB a second until the kernel killed it, and every live
conversation with it. So a binary header, or a bare binary frame, closes the
connection that sent it before anything is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import socketio

from chatserver.transport.admission import Admission

log = logging.getLogger(__name__)

# socket.io packet types, the first character of an encoded packet:
# 5 = BINARY_EVENT, 6 = BINARY_ACK (socket.io protocol v5).
BINARY_PACKET_TYPES = ("5", "6")


class ChatSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # socketio is untyped
    def __init__(self, *args: Any, admission: Admission | None = None,
                 address_group_of: Callable[[dict[str, Any]], str | None] | None = None,
                 node_id: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if node_id:
            # "<node_id>.<random>": a load balancer routes a long-polling
            # request (``?sid=``) to the node that holds its session, with no
            # cookie and no client address. socket.io's own sids come from the
            # same generator, so they name their node too (chatserver/live/).
            generate = self.eio.generate_id
            self.eio.generate_id = lambda: f"{node_id}.{generate()}"
        self.binary_refused = 0  # connections closed for a binary packet (metrics)
        self.admission = admission
        # The handshake's address group, or None for a session that is not
        # counted (a staff member's, with a live session cookie).
        self._address_group_of = address_group_of

    def handshake_refusal(self, environ: dict[str, Any]) -> str | None:
        """Why a handshake with this ``environ`` would be refused now, or None
        (asked by the HTTP layer before engine.io sees the request)."""
        if self.admission is None or self._address_group_of is None:
            return None
        group = self._address_group_of(environ)
        return (self.admission.refusal(self.admission.key_for(group))
                if group is not None else None)

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        # Asked again here, where the session is counted: the HTTP layer's
        # check and this one may straddle another handshake.
        if self.admission is not None and self._address_group_of is not None:
            group = self._address_group_of(environ)
            if group is not None:
                refusal = self.admission.admit(eio_sid, self.admission.key_for(group),
                                               time.monotonic())
                if refusal is not None:
                    # engine.io answers the handshake with HTTP 401 and this
                    # body, before any socket.io state exists for it.
                    return {"error": refusal}
        return await super()._handle_eio_connect(eio_sid, environ)

    def _open(self, eio_sid: str) -> bool:
        socket = self.eio.sockets.get(eio_sid)
        return socket is not None and not socket.closed and eio_sid in self.environ

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        if not self._open(eio_sid):
            return
        await super()._handle_connect(eio_sid, namespace, data)
        if self.admission is not None and \
                self.manager.sid_from_eio_sid(eio_sid, namespace or "/") is not None:
            self.admission.joined(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            if self.admission is not None:
                self.admission.gone(eio_sid)

    async def close_unjoined(self) -> int:
        """Close the sessions that joined no namespace in time (a handshake
        that is never used held its memory until engine.io's ping timeout)."""
        if self.admission is None:
            return 0
        late = self.admission.overdue(time.monotonic())
        for eio_sid in late:
            await self.close_now(eio_sid)
            self.admission.gone(eio_sid)  # also when engine.io had already let it go
        return len(late)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if not self._open(eio_sid):
            # engine.io's reader hands on frames until the socket is gone. A
            # CONNECT arriving after the session closed registered a socket.io
            # sid that nothing ever removed (~4 KB a session, for good): a
            # closing session may start nothing.
            return
        if isinstance(data, str) and data[:1] not in BINARY_PACKET_TYPES:
            await super()._handle_eio_message(eio_sid, data)
            return
        # Nothing has been kept for this packet: python-socketio only starts
        # collecting attachments in the call we skip.
        self.binary_refused += 1
        log.info("closed a connection that sent a binary packet")
        await self.close_now(eio_sid)

    async def close_now(self, eio_sid: str) -> None:
        """Disconnect and drop the transport at once.

        engine.io's own ``disconnect`` queues a CLOSE packet and waits until
        the client has read it; a hostile client never does, so a WebSocket
        stayed open until the ping timeout and a long-polling request that
        caused the close hung. Here the socket is closed without waiting,
        forgotten (a later request is an unknown session, answered 400), and
        engine.io's own ``None`` sentinel ends its WebSocket writer, which
        closes the socket.
        """
        socket = self.eio.sockets.pop(eio_sid, None)
        if socket is None:
            return
        await socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT)
        socket.queue.put_nowait(None)
