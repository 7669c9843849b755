"""What the transport asks of the live state, whichever backend holds it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from chatserver.domain.events import Conn, Emit, Outcome

if TYPE_CHECKING:
    from chatserver.domain.conversations import ChatService
    from chatserver.domain.sessions import SessionStore

# How the node hands events to its own connections: (outcome, is a queue round).
Deliver = Callable[[Outcome, bool], Awaitable[None]]
# Closes every connection this node holds (it was declared lost meanwhile).
DropAll = Callable[[], Awaitable[None]]


class Live(Protocol):
    chat: ChatService  # this node's copy of the state: read it, never change it directly
    sessions: SessionStore

    @property
    def replicated(self) -> bool:
        """True when the calls' events are delivered by the backend itself
        (the caller then records only the audit entries)."""
        ...

    async def start(self, deliver: Deliver, drop_all: DropAll) -> None: ...

    async def close(self) -> None: ...

    async def call(self, method: str, *args: Any) -> Outcome:
        """Apply one state-changing ChatService method; raises its ChatError."""
        ...

    async def timer(self, method: str) -> Outcome | None:
        """A periodic job (``tick``, ``queue_updates``), run by one node."""
        ...

    async def disconnect(self, conn: Conn) -> Outcome:
        """A connection of this node went away (never refused: if the state
        cannot be reached now, it is told later)."""
        ...

    async def sessions_changed(self) -> None:
        """Make the staff session changes made here known to every node
        before the caller answers (a console may reconnect anywhere)."""
        ...

    async def direct(self, emit: Emit) -> None:
        """Deliver one event that must not pass through the shared log (it
        carries a secret, e.g. a return passphrase) to connections wherever
        they are."""
        ...

    def up(self) -> bool:
        """Whether this node can reach the live state and has caught up."""
        ...
