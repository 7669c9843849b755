"""What every route and namespace shares: the services built by the composition
root (chatserver/app.py) and the one way to carry out an ``Outcome``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatserver.domain.conversations import ChatService
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import StaffRef
from chatserver.settings import Settings
from chatserver.transport.ratelimit import AddressLimiter, FailureBudget, TokenBucket

if TYPE_CHECKING:
    import socketio

    from chatserver.crypto.passphrase import PassphraseKdf
    from chatserver.domain.audit import AuditLog
    from chatserver.domain.auth import LoginGuard
    from chatserver.domain.clock import Clock
    from chatserver.domain.referrals import Directory
    from chatserver.domain.sessions import SessionStore
    from chatserver.domain.stats import StatsCounter
    from chatserver.storage.sqlite import SqliteStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConnState:
    """Per-connection transport state. Holds no address, only its HMAC."""

    buckets: dict[str, TokenBucket]
    address_key: bytes | None = None
    staff: StaffRef | None = None
    session_token: str | None = field(default=None, repr=False)
    rate_trip_logged_at: float = 0.0
    account_checked_at: float = float("-inf")
    return_tries: int = 0
    invite_tries: int = 0


@dataclass
class Context:
    settings: Settings
    clock: Clock
    chat: ChatService
    sessions: SessionStore
    login_guard: LoginGuard
    stats: StatsCounter
    addresses: AddressLimiter
    login_addresses: AddressLimiter
    kdf: PassphraseKdf
    return_addresses: AddressLimiter
    invite_addresses: AddressLimiter
    return_failures: FailureBudget
    directory: Directory
    sio: socketio.AsyncServer | None = None
    conns: dict[str, ConnState] = field(default_factory=dict)
    ops_watchers: set[str] = field(default_factory=set)
    emit_locks: dict[Conn, asyncio.Lock] = field(default_factory=dict)
    # Opened at start-up by the app's lifecycle; using them earlier is a bug
    # that fails loudly (AttributeError), never silently.
    store: SqliteStore = field(init=False)
    audit: AuditLog = field(init=False)

    async def apply(self, outcome: Outcome) -> None:
        """Record audit entries, then send events to their named recipients."""
        for entry in outcome.audits:
            try:
                await self.audit.record(entry.actor, entry.action, entry.conversation,
                                        **entry.detail)
            except Exception:  # the chat must go on; the failure itself is logged
                log.exception("audit append failed for action %s", entry.action)
        if self.sio is None or not outcome.emits:
            return
        # Per connection, all events of one outcome go out under that
        # connection's lock (FIFO): an emit may yield, and a resume's
        # redelivered boxes must not be overtaken by a live box from a send
        # handled meanwhile — the client would drop the older ones as replays.
        by_conn: dict[Conn, list[tuple[str, dict[str, Any]]]] = {}
        for e in outcome.emits:
            for conn in e.to:
                by_conn.setdefault(conn, []).append((e.event, e.payload))
        for conn, events in by_conn.items():
            lock = self.emit_locks.get(conn)
            if lock is None:
                lock = self.emit_locks[conn] = asyncio.Lock()
            async with lock:
                for event, payload in events:
                    await self.sio.emit(event, payload, to=conn.sid, namespace=conn.namespace)

    def forget_conn(self, conn: Conn) -> None:
        self.emit_locks.pop(conn, None)

    def new_buckets(self) -> dict[str, TokenBucket]:
        s, now = self.settings, self.clock.now()
        return {
            "send": TokenBucket.per_minute(s.rate_send_per_min, s.rate_send_burst, now),
            "other": TokenBucket.per_minute(s.rate_other_per_min, s.rate_other_burst, now),
        }

