"""A small HTTP/WebSocket load balancer that stands in for HAProxy in the
cluster tests (docs/operations.md, "Several nodes").

For each TCP connection it reads the first request head. A query string with
``sid=<node>.<rest>`` (engine.io's long-polling requests name their session,
and a node's session ids start with its ``node_id``) goes to that node; a
request without one (a new session, a WebSocket, a page, the staff login)
goes to the next backend round-robin, skipping one that refuses the connect.
Then it pipes bytes both ways until either side closes.

HAProxy routes every *request*; this routes every *connection*. To make the
two the same, a request that is not a WebSocket upgrade is sent on with
``Connection: close``: the backend answers it and closes, and the client's
next request comes on a new connection that is routed again. A request for a
node that is not running is answered ``503`` here, as HAProxy answers when a
``use-server`` target is down (the client then starts a new session
elsewhere).

Like HAProxy's ``option forwardfor`` it appends its own ``X-Forwarded-For``
line with the address it was connected from, after any the client sent: the
nodes run with ``client_addr_header = "X-Forwarded-For"`` and one trusted hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HEAD_MAX_BYTES = 64 * 1024
SID = re.compile(rb"[?&]sid=([a-z0-9]{1,12})\.")
HOP_HEADERS = (b"connection", b"keep-alive")
UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
               b"Connection: close\r\n\r\n")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
CHUNK = 65536


@dataclass
class Routed:
    """One client connection: the backend it went to and why."""

    node: str
    by_sid: bool
    upgrade: bool
    peer: str
    target: bytes = field(repr=False)


class LbProxy:
    """``backends``: node id -> port on 127.0.0.1, in round-robin order."""

    def __init__(self, backends: Mapping[str, int]) -> None:
        self.backends = dict(backends)
        self.routed: list[Routed] = []  # every connection, in arrival order
        self._next = 0
        self._pinned: str | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def __aenter__(self) -> LbProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pin_next(self, node: str) -> None:
        """Send the next connection without a sid to ``node`` (tests: put a
        youth and a counsellor on nodes of their choice)."""
        if node not in self.backends:
            raise KeyError(node)
        self._pinned = node

    @property
    def open_connections(self) -> int:
        return len(self._pipes)

    def upgrades_to(self, node: str) -> int:
        """How many WebSocket connections went to ``node`` so far."""
        return sum(1 for r in self.routed if r.upgrade and r.node == node)

    # ---------------------------------------------------------------- piping

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        backend_writer: asyncio.StreamWriter | None = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            peer = str(writer.get_extra_info("peername")[0])
            lines = head[:-4].split(b"\r\n")
            request = lines[0].split(b" ")
            if len(request) != 3 or len(head) > HEAD_MAX_BYTES:
                writer.write(BAD_REQUEST)
                return
            target = request[1]
            headers = [h for h in lines[1:] if h]
            upgrade = any(h.split(b":", 1)[0].strip().lower() == b"upgrade" for h in headers)
            if not upgrade:
                headers = [h for h in headers
                           if h.split(b":", 1)[0].strip().lower() not in HOP_HEADERS]
                headers.append(b"Connection: close")
            headers.append(b"X-Forwarded-For: " + peer.encode())
            new_head = b"\r\n".join([lines[0], *headers]) + b"\r\n\r\n"

            sid = SID.search(target.split(b"#", 1)[0])
            if sid is not None:
                node = sid.group(1).decode()
                opened = await self._open(node) if node in self.backends else None
                candidates = [node]
            else:
                candidates = self._round_robin()
                opened = None
                for node in candidates:
                    opened = await self._open(node)
                    if opened is not None:
                        break
            if opened is None:
                writer.write(UNAVAILABLE)
                return
            backend_reader, backend_writer = opened
            self.routed.append(Routed(node, sid is not None, upgrade, peer, target))
            backend_writer.write(new_head)
            await asyncio.gather(self._pipe(reader, backend_writer),
                                 self._pipe(backend_reader, writer))
        except asyncio.CancelledError:
            pass
        finally:
            for w in (backend_writer, writer):
                if w is not None:
                    w.close()
            self._pipes.discard(task)

    def _round_robin(self) -> list[str]:
        names = list(self.backends)
        if self._pinned is not None:
            pinned, self._pinned = self._pinned, None
            return [pinned]
        start = self._next % len(names)
        self._next += 1
        return names[start:] + names[:start]

    async def _open(self, node: str) -> tuple[asyncio.StreamReader,
                                              asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection("127.0.0.1", self.backends[node])
        except OSError:
            return None

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy until EOF or an error on either side, then close ``dst``: the
        other direction's copy ends when its reader sees the close."""
        try:
            while data := await src.read(CHUNK):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                dst.close()
