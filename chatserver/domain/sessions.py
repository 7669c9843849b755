"""Staff sessions, in memory. Design: docs/design/staff-auth.md.

The browser holds a random 32-byte token in the ``__Host-session`` cookie. The
server keeps only ``keyed_hash(session_key, token, "session")``, so a memory
dump or a debugger shows no usable token. Sessions end on logout, after
``session_idle_secs`` without use, after ``session_absolute_secs`` in all, and
when the process restarts (staff log in again; nothing else is lost).

Each session has a CSRF token that the page sends in ``X-CSRF-Token`` on
state-changing HTTP routes; it is compared in constant time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatserver.crypto.tokens import equal, keyed_hash, new_secret
from chatserver.domain.clock import Clock
from chatserver.errors import CsrfFailed
from chatserver.settings import Settings
from chatserver.storage.base import StaffRecord

_PURPOSE = "session"
# Tokens are 43 base64url characters; anything much longer is not ours and is
# refused before hashing.
MAX_TOKEN_CHARS = 128


@dataclass(slots=True)
class Session:
    """One staff session. Only ``last_seen`` ever changes, in ``get``: in
    place, since a console's every event passes here (a frozen copy per
    event was ~2 µs of each relayed staff message)."""

    staff_id: int
    username: str
    role: str
    alias: str
    capacity: int
    csrf: str = field(repr=False)
    created_at: float  # Unix seconds
    last_seen: float


class SessionStore:
    def __init__(self, *, key: bytes, clock: Clock, idle_secs: int, absolute_secs: int) -> None:
        if len(key) < 32:
            raise ValueError("session key must be at least 32 bytes")
        self._key = key
        self._clock = clock
        self._idle_secs = idle_secs
        self._absolute_secs = absolute_secs
        self._by_hash: dict[bytes, Session] = {}
        # Changes for the other nodes (chatserver/live/): ("put", hash,
        # session) or ("del", hash). Only hashes travel, never a token.
        self.journal: list[tuple[str, bytes, Session | None]] = []
        # When each session's use was last told to the others (hash -> time):
        # every few minutes, not on every event.
        self._told: dict[bytes, float] = {}
        # Sessions ended here or elsewhere (hash -> when): a late "in use"
        # from another node must not bring a revoked session back.
        self._ended: dict[bytes, float] = {}

    def __repr__(self) -> str:
        return f"SessionStore(sessions={len(self._by_hash)})"

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> SessionStore:
        return cls(
            key=settings.require_secrets().session_key,
            clock=clock,
            idle_secs=settings.session_idle_secs,
            absolute_secs=settings.session_absolute_secs,
        )

    def __len__(self) -> int:
        return len(self._by_hash)

    def _hash(self, token: str | None) -> bytes | None:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        return keyed_hash(self._key, token, _PURPOSE)

    def create(self, staff: StaffRecord, *, replacing: str | None = None) -> tuple[str, str]:
        """A new session for ``staff``: returns ``(token, csrf)``.

        Always a fresh token (no session fixation); the session the browser
        presented at login, if any, is revoked.
        """
        if replacing is not None:
            self.revoke(replacing)
        token = new_secret()
        csrf = new_secret()
        now = self._clock.now()
        digest = keyed_hash(self._key, token, _PURPOSE)
        session = self._by_hash[digest] = Session(
            staff_id=staff.id,
            username=staff.username,
            role=staff.role,
            alias=staff.alias,
            capacity=staff.capacity,
            csrf=csrf,
            created_at=now,
            last_seen=now,
        )
        self.journal.append(("put", digest, session))
        self._told[digest] = now
        return token, csrf

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen >= self._idle_secs or now - s.created_at >= self._absolute_secs

    def get(self, token: str | None) -> Session | None:
        """The live session for ``token`` (and mark it used), or None."""
        digest = self._hash(token)
        if digest is None:
            return None
        session = self._by_hash.get(digest)
        if session is None:
            return None
        now = self._clock.now()
        if self._expired(session, now):
            del self._by_hash[digest]
            return None
        session.last_seen = now
        if now - self._told.get(digest, 0.0) >= self._idle_secs / 4:
            # Other nodes expire it by their own copy's last_seen: tell them
            # it is in use well before they would.
            self._told[digest] = now
            self.journal.append(("put", digest, session))
        return session

    def alive(self, token: str | None) -> bool:
        """Whether ``token`` names a live session, without marking it used
        (the periodic sweep must not keep idle sessions alive)."""
        digest = self._hash(token)
        session = self._by_hash.get(digest) if digest is not None else None
        return session is not None and not self._expired(session, self._clock.now())

    def revoke(self, token: str | None) -> bool:
        digest = self._hash(token)
        if digest is None or self._by_hash.pop(digest, None) is None:
            return False
        self.journal.append(("del", digest, None))
        self._ended[digest] = self._clock.now()
        return True

    def revoke_staff(self, staff_id: int) -> int:
        """End every session of one staff member (disabled account, role change)."""
        doomed = [d for d, s in self._by_hash.items() if s.staff_id == staff_id]
        for d in doomed:
            del self._by_hash[d]
            self.journal.append(("del", d, None))
            self._ended[d] = self._clock.now()
        return len(doomed)

    def purge_expired(self) -> int:
        """Drop expired sessions (the app calls this periodically to bound memory)."""
        now = self._clock.now()
        doomed = [d for d, s in self._by_hash.items() if self._expired(s, now)]
        for d in doomed:
            del self._by_hash[d]
        for d in [d for d in self._told if d not in self._by_hash]:
            del self._told[d]
        for d in [d for d, at in self._ended.items() if now - at >= self._absolute_secs]:
            del self._ended[d]
        return len(doomed)

    def take_journal(self) -> list[tuple[str, bytes, Session | None]]:
        taken, self.journal = self.journal, []
        return taken

    def apply_journal(self, changes: list[tuple[str, bytes, Session | None]]) -> None:
        """Another node's changes. Idempotent: a put is the whole session, so
        a newer one simply replaces it."""
        for kind, digest, session in changes:
            if kind == "put" and session is not None:
                mine = self._by_hash.get(digest)
                if digest in self._ended:
                    continue
                if mine is None or mine.last_seen <= session.last_seen:
                    self._by_hash[digest] = Session(**{
                        f: getattr(session, f) for f in Session.__slots__})
            elif kind == "del":
                self._by_hash.pop(digest, None)
                self._ended[digest] = self._clock.now()

    def snapshot(self) -> dict[bytes, Session]:
        return dict(self._by_hash)

    def restore(self, sessions: dict[bytes, Session]) -> None:
        self._by_hash = dict(sessions)

    @staticmethod
    def check_csrf(session: Session, presented: str | None) -> None:
        """Raise ``CsrfFailed`` unless ``presented`` is the session's CSRF token."""
        if not isinstance(presented, str) or len(presented) > MAX_TOKEN_CHARS:
            raise CsrfFailed()
        if not equal(presented.encode("utf-8"), session.csrf.encode("ascii")):
            raise CsrfFailed()
