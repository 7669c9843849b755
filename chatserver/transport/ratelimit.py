"""Token buckets per connection, and per client address for youth starts,
logins, return codes and invites.

Client addresses are never kept: they are HMAC-ed at connect under an
in-memory key that rotates daily (docs/promises.md, promise 2), and buckets older than
an hour are forgotten.

Which address: ``client_address`` reads the socket peer, or, behind a proxy,
only the forwarded-for entry the configured proxies wrote (counted from the
right, ``trusted_proxy_hops``); the entries to its left are whatever the client
sent. Which bucket: ``address_group`` — an IPv6 client holds a whole /64 (2^64
addresses), so IPv6 addresses are counted per /64 and IPv4 per address (both
prefix lengths are settings). Every per-address limit counts under
``address_group(client_address(request, settings), settings)``.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chatserver.crypto.tokens import keyed_hash
from chatserver.domain.clock import Clock
from chatserver.settings import Settings

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
    """Counts events per HMAC(rotating key, address group) in a sliding hour.

    ``key_for`` takes the group (``address_group``), never a raw address:
    otherwise one IPv6 client would hold 2^64 budgets.
    """

    def __init__(self, clock: Clock, per_hour: int) -> None:
        self._clock = clock
        self._per_hour = per_hour
        self._key = secrets.token_bytes(32)
        self._key_born = clock.now()
        self._hits: dict[bytes, deque[float]] = {}

    def key_for(self, group: str) -> bytes:
        now = self._clock.now()
        if now - self._key_born > ADDRESS_KEY_LIFETIME_SECS:
            self._key, self._key_born = secrets.token_bytes(32), now
            self._hits.clear()
        return keyed_hash(self._key, group, "client-addr")

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


# The group of anything that is not an IP address (a Unix-socket peer): one
# shared bucket, never one a client could name.
UNPARSED_GROUP = "unparsed"


def address_group(address: str, settings: Settings) -> str:
    """The rate-limit key of ``address``: its network at the configured prefix.

    IPv6 addresses count per ``/ipv6_group_prefix_len`` (64: one subscriber's
    LAN), IPv4 per ``/ipv4_group_prefix_len`` (32: the address). IPv4-mapped
    IPv6 (``::ffff:192.0.2.1``) counts as the IPv4 address. Returns the
    network in its normal text form, e.g. ``2001:db8:1:2::/64``; callers HMAC
    it at once and never log or store it.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # no IPv6 zone ("%eth0")
    except ValueError:
        return UNPARSED_GROUP
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = (settings.ipv4_group_prefix_len if ip.version == 4
              else settings.ipv6_group_prefix_len)
    return str(ipaddress.ip_network((ip, prefix), strict=False))


def forwarded_client(values: Iterable[str], hops: int) -> str | None:
    """The client address in forwarded-for header ``values``, or None.

    Each proxy appends the address it was connected from, so with ``hops``
    trusted proxies in front of us the client is the ``hops``-th entry from
    the right; everything left of it was written by the client and is
    ignored. None — fall back to the socket peer — when there are fewer
    entries than ``hops`` (the request did not pass every proxy) or that entry
    is not an IP address: a client must never be able to pick its bucket.
    Several header lines count as one list, in order (RFC 9110 §5.3).
    """
    entries = [e.strip() for value in values for e in value.split(",")]
    if len(entries) < hops:
        return None
    try:
        return str(ipaddress.ip_address(entries[-hops]))
    except ValueError:
        return None


def client_address(request: Any, settings: Settings) -> str | None:
    """The client's address: from the proxies' forwarded-for header when
    ``client_addr_header`` is set (see ``forwarded_client``), else — and when
    that header gives no usable entry — the socket peer. Callers group and
    HMAC it at once; it is never logged or stored."""
    remote = getattr(request, "remote", None)
    peer = remote if isinstance(remote, str) and remote else None
    header = settings.client_addr_header
    if not header:
        return peer
    forwarded = forwarded_client(request.headers.getall(header, ()), settings.trusted_proxy_hops)
    return forwarded if forwarded is not None else peer


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
