"""Who may open an engine.io session, and for how long one may wait unjoined.

Every engine.io session costs memory before it has said anything: a polling
handshake that is never polled held ~6 KB for ~45 s (2 000 a second from one
client grew the process by ~550 MB), and nothing stopped one client from
holding thousands of sockets. So every anonymous session is counted by the
client's address group (``ratelimit.address_group``: an IPv6 /64, an IPv4
address; kept only as a keyed hash, never as text) and in total, and
refused at the handshake past a bound:

- ``max_connections_per_address``: open sessions of one group. A school or a
  mobile operator's carrier-grade NAT puts many youths behind one IPv4
  address, so this is generous (docs/operations.md says how to size it);
- ``max_pending_handshakes_per_address`` and ``max_pending_handshakes``:
  sessions that have not yet joined a namespace, per group and per node; a
  session still unjoined after ``handshake_join_secs`` is closed;
- ``max_anonymous_connections``: joined anonymous sessions per node. Past it
  a youth's connect is refused with ``server_full`` and the numbers to call
  (YouthNamespace), never a spinner.

With these the anonymous sessions a node holds are at most
``max_anonymous_connections + max_pending_handshakes``, whoever sends them.
Staff handshakes that carry a live session cookie are not counted: the centre's
counsellors all sit behind one office address.

This module only keeps counts and decides; transport/server.py asks it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from chatserver.crypto.tokens import keyed_hash
from chatserver.settings import Settings
from chatserver.transport.ratelimit import UNPARSED_GROUP, address_group, client_address

# Refusal codes, sent as the handshake's 401 body (docs/protocol.md, "HTTP").
TOO_MANY_FROM_ADDRESS = "too_many_connections"
TOO_MANY_PENDING = "too_many_handshakes"


@dataclass(slots=True)
class _Session:
    group: bytes
    joined: bool = False


class Admission:
    def __init__(self, settings: Settings) -> None:
        self._per_group = settings.max_connections_per_address
        self._pending_per_group = settings.max_pending_handshakes_per_address
        self._pending_max = settings.max_pending_handshakes
        self._joined_max = settings.max_anonymous_connections
        self.join_secs = settings.handshake_join_secs
        # Groups are kept only as keyed hashes (``key_for``), like every
        # per-address count: a memory dump shows no address or network.
        self._key = secrets.token_bytes(32)
        self._sessions: dict[str, _Session] = {}
        self._unjoined: dict[str, float] = {}  # sid -> born; insertion order = age
        self._open: dict[bytes, int] = {}  # group key -> open sessions
        self._pending: dict[bytes, int] = {}  # group key -> sessions not yet joined
        self.pending_total = 0
        self.joined_total = 0
        self.refused: dict[str, int] = {TOO_MANY_FROM_ADDRESS: 0, TOO_MANY_PENDING: 0}
        # Refused handshakes being held back before their answer (http.py):
        # a client that floods in a loop then gets one answer a delay, not
        # thousands a second. At most max_pending_handshakes are held (a few
        # KB each); past that the answer comes at once.
        self.refusal_delay_secs = settings.handshake_refusal_delay_secs
        self.held_max = settings.max_pending_handshakes
        self.held = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def key_for(self, group: str) -> bytes:
        """The only form in which a group is kept or compared."""
        return keyed_hash(self._key, group, "admission-group")

    def refusal(self, group: bytes) -> str | None:
        """Why a new session of ``group`` would be refused now (counted), or
        None. Changes nothing else: the HTTP layer asks before engine.io builds
        a session, so a flood is refused at the cost of an HTTP request."""
        refusal = None
        if self._open.get(group, 0) >= self._per_group:
            refusal = TOO_MANY_FROM_ADDRESS
        elif (self._pending.get(group, 0) >= self._pending_per_group
              or self.pending_total >= self._pending_max):
            refusal = TOO_MANY_PENDING
        if refusal is not None:
            self.refused[refusal] += 1
        return refusal

    def admit(self, eio_sid: str, group: bytes, now: float) -> str | None:
        """Count a new anonymous session, or return why it is refused."""
        refusal = self.refusal(group)
        if refusal is not None:
            return refusal
        self._sessions[eio_sid] = _Session(group)
        self._unjoined[eio_sid] = now
        self._open[group] = self._open.get(group, 0) + 1
        self._pending[group] = self._pending.get(group, 0) + 1
        self.pending_total += 1
        return None

    def full(self) -> bool:
        """Whether a youth's join must be refused with ``server_full``."""
        return self.joined_total >= self._joined_max

    def joined(self, eio_sid: str) -> None:
        """The session joined a namespace: it is no longer pending."""
        s = self._sessions.get(eio_sid)
        if s is None or s.joined:
            return
        s.joined = True
        del self._unjoined[eio_sid]
        self._drop_pending(s.group)
        self.joined_total += 1

    def gone(self, eio_sid: str) -> None:
        s = self._sessions.pop(eio_sid, None)
        if s is None:
            return
        if s.joined:
            self.joined_total -= 1
        else:
            del self._unjoined[eio_sid]
            self._drop_pending(s.group)
        left = self._open[s.group] - 1
        if left:
            self._open[s.group] = left
        else:
            del self._open[s.group]

    def overdue(self, now: float) -> list[str]:
        """Sessions older than ``handshake_join_secs`` that joined nothing,
        oldest first (only unjoined sessions are walked, and only the late)."""
        late: list[str] = []
        for sid, born in self._unjoined.items():
            if now - born < self.join_secs:
                break
            late.append(sid)
        return late

    def _drop_pending(self, group: bytes) -> None:
        self.pending_total -= 1
        left = self._pending[group] - 1
        if left:
            self._pending[group] = left
        else:
            del self._pending[group]


def handshake_group(environ: dict[str, Any], settings: Settings) -> str:
    """The address group a handshake is counted under."""
    request = environ.get("aiohttp.request")
    address = client_address(request, settings) if request is not None else None
    return address_group(address, settings) if address else UNPARSED_GROUP
