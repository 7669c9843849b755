"""Protocols for durable state: staff accounts, the audit log and statistics.

Two backends implement them and pass the same contract tests: the embedded
default ``sqlite.SqliteStore`` and ``postgres.PostgresStore``. Backends import
this module and their driver only: hashing, sealing and validation happen in
the domain layer, which hands the store finished values.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chatserver.storage.audit_cuts import AuditCutStore
from chatserver.storage.partners import PartnerStore

STAFF_ROLES = ("counsellor", "liaison", "operator", "admin")


@dataclass(frozen=True, slots=True)
class StaffRecord:
    """One staff account as stored. Secrets are kept out of ``repr``."""

    id: int
    username: str
    password_hash: str = field(repr=False)
    totp_seed_sealed: bytes = field(repr=False)
    totp_last_timecode: int | None
    role: str
    alias: str
    capacity: int
    disabled: bool
    failed_logins: int
    locked_until: float | None  # Unix seconds (UTC); None when not locked
    created_at: str  # UTC ISO-8601 with 'Z'
    languages: tuple[str, ...] = ()  # language codes the staff member speaks, in order


def join_languages(languages: tuple[str, ...]) -> str:
    """The ``staff.languages`` column: codes joined by commas ('' for none)."""
    return ",".join(languages)


def split_languages(column: str | None) -> tuple[str, ...]:
    return tuple(code for code in (column or "").split(",") if code)


@dataclass(frozen=True, slots=True)
class NewStaff:
    """What ``add_staff`` needs; the password is already hashed and the seed sealed."""

    username: str
    password_hash: str = field(repr=False)
    totp_seed_sealed: bytes = field(repr=False)
    role: str
    alias: str
    capacity: int
    created_at: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the append-only audit log."""

    seq: int
    at: str  # UTC ISO-8601 with 'Z'
    actor: str
    action: str
    conversation: str | None  # a pseudonym ("c-1a2b3c4d"), never a wire id
    detail: str  # canonical JSON object of allowlisted keys
    prev_hash: str
    hash: str  # the link: a hash (chain 1) or a MAC under the audit key (chain 2)
    chain: int  # crypto/audit_chain.py: CHAIN_UNKEYED (old entries) or CHAIN_KEYED

    def hashed_fields(self) -> dict[str, object]:
        """The fields the link covers (everything but the links and the version:
        the version only says which function made the link)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "conversation": self.conversation,
            "detail": self.detail,
        }


# Lockout doubles the lock at most this many times past ``max_failures``: the
# lock has reached any sensible cap long before, and the shift stays in 64 bits.
MAX_LOCK_DOUBLINGS = 32


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """When failed logins lock an account (docs/design/staff-auth.md).

    The store applies it inside ``reserve_login_attempt``'s one statement,
    so it is plain integers and one formula every backend can write in SQL:
    ``MIN(base_secs << MIN(count - max_failures, 32), max_secs)``.
    """

    max_failures: int
    base_secs: int
    max_secs: int

    def lock_secs(self, failures: int) -> int:
        """Seconds to lock after ``failures`` consecutive failures (0 = no lock)."""
        if failures < self.max_failures:
            return 0
        doublings = min(failures - self.max_failures, MAX_LOCK_DOUBLINGS)
        return min(self.base_secs << doublings, self.max_secs)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What ``reserve_login_attempt`` decided.

    ``granted``: the password may be checked; ``failures`` then counts this
    attempt already, and ``locked_until`` is the lock it set (or None).
    Refused: the account is locked until ``locked_until``.
    """

    granted: bool
    failures: int
    locked_until: float | None


# Called by ``append_audit`` inside the store's write transaction with the
# current last entry (None for an empty log); returns the complete next entry.
NextEntry = Callable[[AuditEntry | None], AuditEntry]


class StaffStore(Protocol):
    async def add_staff(self, new: NewStaff) -> StaffRecord:
        """Raises ``errors.AccountExists`` if the username is taken."""
        ...

    async def get_by_username(self, username: str) -> StaffRecord | None: ...

    async def get_by_id(self, staff_id: int) -> StaffRecord | None: ...

    async def list_staff(self) -> list[StaffRecord]: ...

    async def disabled_staff_ids(self) -> set[int]:
        """One query for the running server's periodic sweep of open consoles."""
        ...

    async def set_disabled(self, staff_id: int, disabled: bool) -> None: ...

    async def set_password_hash(self, staff_id: int, password_hash: str) -> None: ...

    async def set_languages(self, staff_id: int, languages: tuple[str, ...]) -> None:
        """Replace the languages the account speaks (codes, already checked)."""
        ...

    async def reserve_login_attempt(
        self, staff_id: int, now: float, policy: LockoutPolicy
    ) -> LoginAttempt:
        """Grant one password check, or refuse it because the account is locked.

        One atomic step, across processes too: if the account is not locked at
        ``now``, add one to ``failed_logins`` and, when the new count reaches
        ``policy.max_failures``, set ``locked_until = now +
        policy.lock_secs(count)`` — before the password is checked. A login
        that then succeeds clears both (``reset_failures``). So of any number of
        concurrent attempts, at most ``max_failures`` are granted before the
        lock, and after a lock runs out exactly one is granted (it locks again
        at once). In SQL: one conditional ``UPDATE staff SET failed_logins =
        failed_logins + 1, locked_until = CASE … END WHERE id = ? AND
        (locked_until IS NULL OR locked_until <= ?) RETURNING …``.
        A missing account is refused with ``failures = 0, locked_until = None``.
        """
        ...

    async def reset_failures(self, staff_id: int) -> None:
        """Clear the failure count and any lock."""
        ...

    async def accept_totp_timecode(self, staff_id: int, timecode: int) -> bool:
        """Atomically store ``timecode`` if it is newer than the last accepted one.

        True if this call won; False if an equal or newer timecode was already
        accepted (a replay, possibly a concurrent one). Winning is the login's
        last check, so the same statement clears the failure count and lock:
        a concurrent attempt that fails after it sees the account unlocked.
        """
        ...


class AuditStore(Protocol):
    async def append_audit(self, next_entry: NextEntry) -> AuditEntry:
        """Append the entry ``next_entry(last)`` builds, atomically with reading ``last``:
        one transaction reads the head and inserts, so two appenders (two
        processes, later two nodes) can never both chain onto the same head."""
        ...

    def iter_audit(self) -> AsyncGenerator[AuditEntry, None]:
        """Every entry in ``seq`` order. A generator, so that a reader who stops
        early can close it (``contextlib.aclosing``) and release the cursor."""
        ...

    async def audit_head(self) -> AuditEntry | None: ...


class StatsStore(Protocol):
    async def add_counts(self, month: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Add ``counts`` (keyed by (dimension, value)) to ``month`` ('YYYY-MM'), atomically."""
        ...

    async def get_counts(self, month: str) -> dict[tuple[str, str], int]: ...

    async def counts_between(self, first: str, last: str
                             ) -> dict[tuple[str, str, str], int]:
        """Every count of the months ``first`` to ``last`` ('YYYY-MM', both
        included), keyed by (month, dimension, value)."""
        ...

    async def set_manual_count(self, month: str, kind: str, count: int) -> int | None:
        """Replace the hand-entered count of ``kind`` in ``month``; returns the
        value it replaced (None if there was none), read atomically with the
        write, so two concurrent corrections each see the other's result or
        none, never the same old value."""
        ...

    async def manual_counts_between(self, first: str, last: str
                                    ) -> dict[tuple[str, str], int]:
        """Hand-entered counts of the months ``first`` to ``last``, keyed by (month, kind)."""
        ...


class Pingable(Protocol):
    async def ping(self) -> bool:
        """True if the store answers (for /readyz)."""
        ...


@dataclass(frozen=True, slots=True)
class ReturnRow:
    row_id: str
    sealed: bytes = field(repr=False)
    expires_at: float


class ReturnStore(Protocol):
    """Single-use return codes. ``redeem`` must be atomic: of two concurrent
    redemptions of one lookup key, exactly one gets the row."""

    async def add_return_code(self, lookup: bytes, row_id: str, sealed: bytes,
                              expires_at: float) -> bool: ...

    async def redeem_return_code(self, lookup: bytes) -> ReturnRow | None: ...

    async def purge_return_codes(self, now: float) -> int: ...


class Store(StaffStore, AuditStore, AuditCutStore, StatsStore, ReturnStore, PartnerStore,
            Pingable, Protocol):
    """Everything the server and the CLI need from one backend."""

    async def schema_versions(self) -> list[int]:
        """The migration versions applied, in order."""
        ...

    async def close(self) -> None:
        """Finish pending audit appends, then release the connection(s)."""
        ...
