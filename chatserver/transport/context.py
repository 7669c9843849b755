"""What every route and namespace shares: the services built by the composition
root (chatserver/app.py) and the one way to carry out an ``Outcome``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engineio import packet as eio_packet
from engineio.exceptions import EngineIOError
from socketio import packet as sio_packet

from chatserver.domain.conversations import STAFF_NS, ChatService
from chatserver.domain.events import Emit, Outcome
from chatserver.domain.model import StaffRef
from chatserver.settings import Settings
from chatserver.transport.ratelimit import AddressLimiter, FailureBudget, TokenBucket

if TYPE_CHECKING:
    import socketio

    from chatserver.crypto.passphrase import PassphraseKdf
    from chatserver.domain.audit import AuditLog
    from chatserver.domain.auth import LoginGuard
    from chatserver.domain.clock import Clock
    from chatserver.domain.partner_bank import PartnerBank
    from chatserver.domain.referrals import Directory
    from chatserver.domain.sessions import SessionStore
    from chatserver.domain.stats import StatsCounter
    from chatserver.live import Live
    from chatserver.storage.base import Store
    from chatserver.transport.server import ChatSocketServer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConnState:
    """Per-connection transport state. Holds no address, only its HMAC.

    The two rate-limit buckets are made on a connection's first event of each
    kind: most youth connections only wait, and every idle connection's bytes
    count (docs/performance.md, "Memory per connection")."""

    send_bucket: TokenBucket | None = None
    other_bucket: TokenBucket | None = None
    address_key: bytes | None = None
    staff: StaffRef | None = None
    session_token: str | None = field(default=None, repr=False)
    rate_trip_logged_at: float = 0.0
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
    sio: ChatSocketServer | None = None
    conns: dict[str, ConnState] = field(default_factory=dict)
    ops_watchers: set[str] = field(default_factory=set)
    websockets_opened: int = 0  # WebSocket upgrades asked for since start (gc_policy)
    # Audit entries that could not be written (metrics: an alert, since the
    # chat goes on without them and only the log line says which action).
    audit_append_failures: int = 0
    # Opened at start-up by the app's lifecycle; using them earlier is a bug
    # that fails loudly (AttributeError), never silently.
    store: Store = field(init=False)
    # How state-changing calls reach the chat's state (chatserver/live/):
    # ``chat`` above is this node's copy, read directly, changed only here.
    live: Live = field(init=False)
    _later: set[asyncio.Task[None]] = field(default_factory=set)  # held until done
    audit: AuditLog = field(init=False)
    partners: PartnerBank = field(init=False)  # the live partner directory

    @property
    def directory(self) -> Directory:
        """The partner directory as this node holds it now."""
        return self.partners.directory

    async def apply(self, outcome: Outcome, *, slice_size: int = 0, slice_pause: float = 0.0,
                    still_current: Callable[[Emit], bool] | None = None) -> None:
        """Record audit entries, then send events to their named recipients.

        ``slice_size`` > 0 (the queue round only): hand the loop back after
        every ``slice_size`` packets, for ``slice_pause`` seconds, so that
        relayed messages arriving meanwhile are not held up behind hundreds
        of queue pushes and their writes. Other
        outcomes' events may then come between this one's, which is safe only
        when each recipient gets at most one event from it (a round). An
        event that ``still_current`` rejects is dropped: the state it
        described changed while the outcome was being sent."""
        for entry in outcome.audits:
            try:
                await self.audit.record(entry.actor, entry.action, entry.conversation,
                                        **entry.detail)
            except Exception:  # the chat must go on; the failure itself is logged
                log.exception("audit append failed for action %s", entry.action)
                self.audit_append_failures += 1
        if self.sio is None or not outcome.emits:
            return
        # Not ``sio.emit``: it encodes per call and, per recipient, makes a Task
        # and waits on it (docs/performance.md). Here each event is encoded
        # once per namespace and put on each recipient's engine.io queue. That
        # queue is unbounded, so ``send_packet`` does not suspend (only when
        # engine.io finds that very socket's pings overdue does it close it,
        # and a closing socket is resumed from the server's buffer anyway): the
        # events of one outcome reach every connection in the domain's order
        # and, unless the caller asks for slices, no other outcome's events
        # come between them (a resume's redelivered boxes are never overtaken
        # by a live box). Guarded by tests/integration/test_wire.py and the
        # load tests' storm.
        sio = self.sio
        manager = sio.manager
        sent = 0
        for e in outcome.emits:
            if still_current is not None and not still_current(e):
                continue
            packets: dict[str, eio_packet.Packet] = {}
            for conn in e.to:
                eio_sid = manager.eio_sid_from_sid(conn.sid, conn.namespace)
                if eio_sid is None:
                    continue  # gone; the domain learns it from the disconnect
                pkt = packets.get(conn.namespace)
                if pkt is None:
                    pkt = packets[conn.namespace] = _encode(sio, conn.namespace, e.event,
                                                            e.payload)
                try:
                    await sio.eio.send_packet(eio_sid, pkt)
                except EngineIOError:
                    pass  # closed between lookup and send: same as gone
                sent += 1
                if slice_size and sent % slice_size == 0:
                    await asyncio.sleep(slice_pause)

    def apply_later(self, outcome: Outcome) -> None:
        """``apply`` in a task of its own (audit entries after an answer)."""
        if not outcome.audits and not outcome.emits:
            return
        task = asyncio.ensure_future(self.apply(outcome))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def staff_sids(self) -> list[str]:
        """The consoles connected now. socket.io keeps every namespace's
        sockets in its ``None`` room, so this is O(staff), not a walk over
        every youth's connection (the 5 s sweep did that at 10 000)."""
        if self.sio is None:
            return []
        return [sid for sid, _ in self.sio.manager.get_participants(STAFF_NS, None)
                if sid in self.conns]

    def take_token(self, state: ConnState, bucket: str, now: float) -> float:
        """0.0 if ``state``'s ``bucket`` ("send" or "other") allows one more
        event now, else the seconds until it would. A bucket is born full."""
        s = self.settings
        if bucket == "send":
            if state.send_bucket is None:
                state.send_bucket = TokenBucket.per_minute(s.rate_send_per_min,
                                                           s.rate_send_burst, now)
            return state.send_bucket.take(now)
        if state.other_bucket is None:
            state.other_bucket = TokenBucket.per_minute(s.rate_other_per_min,
                                                        s.rate_other_burst, now)
        return state.other_bucket.take(now)


def _encode(sio: socketio.AsyncServer, namespace: str, event: str,
            payload: dict[str, Any]) -> eio_packet.Packet:
    # binary=False: our payloads are JSON only (ciphertext is base64), so
    # socket.io's walk of the payload looking for bytes is skipped.
    pkt = sio.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, payload],
                           binary=False)
    return eio_packet.Packet(eio_packet.MESSAGE, pkt.encode())
