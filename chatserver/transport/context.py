"""What every route and namespace shares: the services built by the composition
root (chatserver/app.py) and the one way to carry out an ``Outcome``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatserver.domain.conversations import ChatService
from chatserver.domain.events import Outcome
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
        if self.sio is None:
            return
        for e in outcome.emits:
            for conn in e.to:
                await self.sio.emit(e.event, e.payload, to=conn.sid, namespace=conn.namespace)

    def new_buckets(self) -> dict[str, TokenBucket]:
        s, now = self.settings, self.clock.now()
        return {
            "send": TokenBucket.per_minute(s.rate_send_per_min, s.rate_send_burst, now),
            "other": TokenBucket.per_minute(s.rate_other_per_min, s.rate_other_burst, now),
        }

