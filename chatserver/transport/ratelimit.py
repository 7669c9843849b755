"""Token buckets per connection, and per client address for youth starts.

Client addresses are never kept: they are HMAC-ed at connect under an
in-memory key that rotates daily (DESIGN.md promise 2), and buckets older than
an hour are forgotten.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any

from chatserver.crypto.tokens import keyed_hash
from chatserver.domain.clock import Clock

ADDRESS_KEY_LIFETIME_SECS = 24 * 3600
ADDRESS_WINDOW_SECS = 3600


@dataclass(slots=True)
class TokenBucket:
    rate_per_sec: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def per_minute(cls, per_min: int, burst: int, now: float) -> TokenBucket:
        return cls(per_min / 60.0, float(burst), float(burst), now)

    def take(self, now: float, cost: float = 1.0) -> float:
        """0.0 if allowed, else seconds until it would be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_sec)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate_per_sec


class AddressLimiter:
    """Counts events per HMAC(rotating key, address) in a sliding hour."""

    def __init__(self, clock: Clock, per_hour: int) -> None:
        self._clock = clock
        self._per_hour = per_hour
        self._key = secrets.token_bytes(32)
        self._key_born = clock.now()
        self._hits: dict[bytes, deque[float]] = {}

    def key_for(self, address: str) -> bytes:
        now = self._clock.now()
        if now - self._key_born > ADDRESS_KEY_LIFETIME_SECS:
            self._key, self._key_born = secrets.token_bytes(32), now
            self._hits.clear()
        return keyed_hash(self._key, address, "client-addr")

    def hit(self, key: bytes) -> float:
        """Record one event; 0.0 if allowed, else seconds to wait."""
        now = self._clock.now()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        # Oldest first: drop what left the window. Amortised O(1) per hit; a
        # filter of the whole list was O(hits) per start, which at a lifted
        # limit behind one address (a school's NAT, the load tests) was 5 % of
        # a busy server (docs/performance.md).
        while hits and now - hits[0] >= ADDRESS_WINDOW_SECS:
            hits.popleft()
        if len(hits) >= self._per_hour:
            return ADDRESS_WINDOW_SECS - (now - hits[0])
        hits.append(now)
        return 0.0

    def sweep(self) -> None:
        now = self._clock.now()
        self._hits = {k: v for k, v in self._hits.items()
                      if v and now - v[-1] < ADDRESS_WINDOW_SECS}


def client_address(request: Any, header: str) -> str | None:
    """The client's address, from the TLS proxy's header when configured, else
    the socket peer. Callers HMAC it at once; it is never logged or stored."""
    if header:
        value = request.headers.get(header)
        if isinstance(value, str) and value:
            return value.split(",")[0].strip()
    remote = getattr(request, "remote", None)
    return remote if isinstance(remote, str) else None


class FailureBudget:
    """A global budget of failures per minute (return passphrases): past half
    of it every attempt is slowed a little more; at the budget, refused.

    Every attempt waits the same delay, hit or miss, so the delay reveals
    nothing about one attempt, only how hard the service is being guessed at.
    """

    WINDOW_SECS = 60.0
    MAX_DELAY_SECS = 3.0

    def __init__(self, clock: Clock, per_min: int) -> None:
        self._clock = clock
        self._per_min = per_min
        self._failures: deque[float] = deque()

    def _recent(self) -> int:
        now = self._clock.now()
        while self._failures and now - self._failures[0] >= self.WINDOW_SECS:
            self._failures.popleft()
        return len(self._failures)

    def retry_after(self) -> float:
        if self._recent() < self._per_min:
            return 0.0
        return self.WINDOW_SECS - (self._clock.now() - self._failures[0])

    def delay(self) -> float:
        half = self._per_min / 2
        over = self._recent() - half
        return 0.0 if over <= 0 else min(self.MAX_DELAY_SECS, over / half * self.MAX_DELAY_SECS)

    def fail(self) -> None:
        self._failures.append(self._clock.now())
