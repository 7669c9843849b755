"""Protocols for durable state: staff accounts, the audit log and statistics.

The embedded default is ``sqlite.SqliteStore``; a PostgreSQL backend will
implement the same protocols and pass the same contract tests. Backends import
this module and their driver only: hashing, sealing and validation happen in
the domain layer, which hands the store finished values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

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
    hash: str

    def hashed_fields(self) -> dict[str, object]:
        """The fields the chain hash covers (everything but the hashes)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "conversation": self.conversation,
            "detail": self.detail,
        }


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

    async def record_login_failure(self, staff_id: int) -> int:
        """Atomically add one failure; returns the new count."""
        ...

    async def reset_failures(self, staff_id: int) -> None:
        """Clear the failure count and any lock."""
        ...

    async def set_locked_until(self, staff_id: int, until: float | None) -> None: ...

    async def accept_totp_timecode(self, staff_id: int, timecode: int) -> bool:
        """Atomically store ``timecode`` if it is newer than the last accepted one.

        True if this call won; False if an equal or newer timecode was already
        accepted (a replay, possibly a concurrent one).
        """
        ...


class AuditStore(Protocol):
    async def append_audit(self, next_entry: NextEntry) -> AuditEntry:
        """Append the entry ``next_entry(last)`` builds, atomically with reading ``last``."""
        ...

    def iter_audit(self) -> AsyncIterator[AuditEntry]:
        """Every entry in ``seq`` order."""
        ...

    async def audit_head(self) -> AuditEntry | None: ...


class StatsStore(Protocol):
    async def add_counts(self, month: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Add ``counts`` (keyed by (dimension, value)) to ``month`` ('YYYY-MM'), atomically."""
        ...

    async def get_counts(self, month: str) -> dict[tuple[str, str], int]: ...


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
