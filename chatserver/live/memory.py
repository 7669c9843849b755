"""The embedded backend: the live state is this process's ChatService."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatserver.domain.events import Conn, Emit, Outcome
from chatserver.live.base import Deliver, DropAll

if TYPE_CHECKING:
    from chatserver.domain.conversations import ChatService
    from chatserver.domain.sessions import SessionStore


class MemoryLive:
    replicated = False

    def __init__(self, chat: ChatService, sessions: SessionStore) -> None:
        self.chat = chat
        self.sessions = sessions
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, drop_all: DropAll) -> None:
        self._deliver = deliver

    async def close(self) -> None:
        return None

    async def call(self, method: str, *args: Any) -> Outcome:
        # Synchronous all the way: under asyncio two calls never interleave,
        # which is what makes a claim's "first wins" hold on one node.
        result: Outcome = getattr(self.chat, method)(*args)
        return result

    async def timer(self, method: str) -> Outcome | None:
        result: Outcome = getattr(self.chat, method)()
        return result

    async def disconnect(self, conn: Conn) -> Outcome:
        return self.chat.disconnect(conn)

    async def sessions_changed(self) -> None:
        self.sessions.journal.clear()  # nobody else to tell

    async def direct(self, emit: Emit) -> None:
        if self._deliver is not None:
            out = Outcome()
            out.emits.append(emit)
            await self._deliver(out, False)

    def up(self) -> bool:
        return True
