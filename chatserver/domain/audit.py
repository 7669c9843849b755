"""The audit log: who did what, to which conversation pseudonym, when — never
what was said. Append-only and hash-chained. Design: docs/design/audit.md.

Entries are built here (validated, timestamped, chained) and handed to an
``AuditStore``, which appends them atomically with reading the previous entry.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from chatserver.crypto.audit_chain import GENESIS, canonical_json, entry_hash
from chatserver.domain.clock import Clock
from chatserver.storage.base import AuditEntry, AuditStore

# Detail keys an entry may carry. Each holds a code, a count or a flag, so no
# free text (and therefore no content) can reach the log. Add a key here only
# together with docs/design/audit.md.
ALLOWED_DETAIL_KEYS = frozenset(
    {
        "reason",  # a code: login failure reason, end reason, ...
        "count",  # e.g. messages in a conversation (a count, never text)
        "role",
        "target",  # the username an action was about (account changes, transfers)
        "on",  # duty on/off, watch on/off
        "capacity",
        "retry_after_secs",
        "outcome",
        "partner",  # referral partner code from the directory
        "row",  # a return-code row id (never the code)
        "epoch",
        "failures",
        "setting",  # the name of a changed config key (never its value)
        "urgent",  # the youth's own urgency choice at start
        "waited_secs",  # queue wait before a claim
        "waiting",  # the conversation ended while still in the queue
        "bucket",  # which rate-limit bucket tripped
    }
)
MAX_DETAIL_STR_CHARS = 64
# Codes, usernames, partner codes: letters, digits and a few separators. No
# spaces, so no sentence (or message) fits.
_DETAIL_STR = re.compile(r"^[A-Za-z0-9_.:@+-]{0,64}$")
# Staff usernames (see domain/auth.py) and the fixed actors below.
_ACTOR = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# crypto.tokens.new_pseudonym(): "c-" + 8 hex. A 32-hex wire id does not match.
_PSEUDONYM = re.compile(r"^c-[0-9a-f]{8}$")

ACTOR_YOUTH = "youth"
ACTOR_SYSTEM = "system"
ACTOR_CLI = "cli"
ACTOR_UNKNOWN = "unknown"  # a login for a username that does not exist (never logged)


def utc_iso(t: float) -> str:
    """Unix seconds → ``2027-01-15T08:00:00.000Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def _check_detail(detail: dict[str, object]) -> str:
    for key, value in detail.items():
        if key not in ALLOWED_DETAIL_KEYS:
            raise ValueError(f"audit detail key {key!r} is not allowed")
        if isinstance(value, bool | int):
            continue
        if isinstance(value, str) and _DETAIL_STR.match(value):
            continue
        # The value itself is not echoed: it might be exactly what must not leak.
        raise ValueError(f"audit detail {key!r} must be an int, a bool or a short code")
    return canonical_json(detail)


class AuditLog:
    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def record(
        self,
        actor: str,
        action: str,
        conversation: str | None = None,
        **detail: object,
    ) -> AuditEntry:
        """Append one entry. Raises ValueError for anything outside the allowlists."""
        if not _ACTOR.match(actor):
            raise ValueError("audit actor must be a username or a fixed actor name")
        if not _ACTION.match(action):
            raise ValueError("audit action must be a lower_snake_case name")
        if conversation is not None and not _PSEUDONYM.match(conversation):
            raise ValueError("audit conversation must be a pseudonym like 'c-1a2b3c4d'")
        detail_json = _check_detail(detail)
        at = utc_iso(self._clock.now())

        def next_entry(last: AuditEntry | None) -> AuditEntry:
            seq = 1 if last is None else last.seq + 1
            prev_hash = GENESIS if last is None else last.hash
            draft = AuditEntry(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                conversation=conversation,
                detail=detail_json,
                prev_hash=prev_hash,
                hash="",
            )
            return dataclasses.replace(draft, hash=entry_hash(prev_hash, draft.hashed_fields()))

        return await self._store.append_audit(next_entry)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    rows: int  # entries checked and found good
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None  # hash of the last good entry (GENESIS when empty)


async def verify(store: AuditStore, expect_head: str | None = None) -> VerifyResult:
    """Walk the whole chain; report the first entry that breaks it.

    Detects an edited entry (its hash no longer matches), a deleted entry (a
    gap in ``seq``), and deleted-and-renumbered or reordered entries (the
    ``prev_hash`` no longer matches the entry before). Removing entries from
    the *end* leaves a valid shorter chain: pass ``expect_head``, a hash noted
    earlier with ``audit verify --print-head``, to detect that.
    """
    expected_seq = 1
    prev = GENESIS
    rows = 0
    head_seen = expect_head is None

    def bad(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, rows, seq, problem, prev)

    async for e in store.iter_audit():
        if e.seq < expected_seq:
            return bad(e.seq, f"entry {e.seq} is out of order (expected {expected_seq})")
        if e.seq > expected_seq:
            return bad(expected_seq, f"entry {expected_seq} is missing (deleted)")
        if e.prev_hash != prev:
            return bad(
                e.seq,
                f"prev_hash does not match entry {e.seq - 1}: an entry was deleted, "
                "inserted, reordered or rewritten",
            )
        try:
            recomputed = entry_hash(e.prev_hash, e.hashed_fields())
        except (ValueError, TypeError):
            return bad(e.seq, f"entry {e.seq} is malformed")
        if recomputed != e.hash:
            return bad(e.seq, f"entry {e.seq} was edited (hash mismatch)")
        prev = e.hash
        if e.hash == expect_head:
            head_seen = True
        rows += 1
        expected_seq += 1
    if not head_seen:
        return bad(
            expected_seq,
            "the expected head hash is not in the log: entries were removed from the end "
            "or the log was rewritten",
        )
    return VerifyResult(True, rows, None, None, prev)
