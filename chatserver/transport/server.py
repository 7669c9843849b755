"""The socket.io server, with the one packet kind chatserver never takes refused
at the door.

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
from typing import Any

import socketio

log = logging.getLogger(__name__)

# socket.io packet types, the first character of an encoded packet:
# 5 = BINARY_EVENT, 6 = BINARY_ACK (socket.io protocol v5).
BINARY_PACKET_TYPES = ("5", "6")


class ChatSocketServer(socketio.AsyncServer):  # type: ignore[misc]  # socketio is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binary_refused = 0  # connections closed for a binary packet (metrics)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if isinstance(data, str) and data[:1] not in BINARY_PACKET_TYPES:
            await super()._handle_eio_message(eio_sid, data)
            return
        # Nothing has been kept for this packet: python-socketio only starts
        # collecting attachments in the call we skip. Frames already in flight
        # after the close are dropped the same way, and not counted again.
        if eio_sid not in self.eio.sockets:
            return
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
