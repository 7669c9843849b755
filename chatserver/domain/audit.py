"""The audit log: who did what, to which conversation pseudonym, when — never
what was said. Append-only, and chained with a key that is not in the
database. Design: docs/design/audit.md.

Entries are built here (validated, timestamped, linked with a MAC under the
audit key) and handed to an ``AuditStore``, which appends them atomically with
reading the previous entry. ``verify`` walks the chain: entries from before the
audit key existed are checked as the unkeyed hash chain they were written as.
"""

from __future__ import annotations

import dataclasses
import re
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from chatserver.crypto.audit_chain import (
    CHAIN_KEYED,
    CHAIN_UNKEYED,
    GENESIS,
    KEY_BYTES,
    canonical_json,
    checkpoint_matches,
    entry_mac,
    link_matches,
)
from chatserver.domain.clock import Clock
from chatserver.storage.audit_cuts import AuditCutStore
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
        "epoch",
        "failures",
        "setting",  # the name of a changed config key (never its value)
        "urgent",  # the youth's own urgency choice at start
        "waited_secs",  # queue wait before a claim
        "waiting",  # the conversation ended while still in the queue
        "bucket",  # which rate-limit bucket tripped
        "handover",  # a transfer offer carried a sealed handover (never its content)
        "month",  # a statistics month, 'YYYY-MM' (hand-entered counts)
        "kind",  # which hand-entered count (meeting, seminar, ...); which worklog export
        "old",  # a hand-entered count before a correction (absent for a first entry)
        "new",  # a hand-entered count after it
        "format",  # a statistics export's format: csv or json
        "languages",  # language codes joined by '+' (an account's languages)
        "fields",  # names of changed partner-directory fields joined by '+' (never values)
        "retired",  # how many directory entries an import retired
        "through",  # audit_pruned: entries up to this seq were removed behind a checkpoint
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
ACTOR_LIAISON = "liaison"
# No staff account may be called like one of these: its entries would be
# indistinguishable from the fixed actors' (domain/auth.py refuses them).
FIXED_ACTORS = frozenset({ACTOR_YOUTH, ACTOR_SYSTEM, ACTOR_CLI, ACTOR_UNKNOWN, ACTOR_LIAISON})


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
        if isinstance(value, str) and _DETAIL_STR.fullmatch(value):
            continue
        # The value itself is not echoed: it might be exactly what must not leak.
        raise ValueError(f"audit detail {key!r} must be an int, a bool or a short code")
    return canonical_json(detail)


class AuditLog:
    """Appends keyed entries. ``key`` is ``settings.require_secrets().audit_key``."""

    def __init__(self, store: AuditStore, clock: Clock, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"audit key must be {KEY_BYTES} bytes")
        self._store = store
        self._clock = clock
        self._key = key

    async def record(
        self,
        actor: str,
        action: str,
        conversation: str | None = None,
        **detail: object,
    ) -> AuditEntry:
        """Append one entry. Raises ValueError for anything outside the allowlists."""
        if not _ACTOR.fullmatch(actor):
            raise ValueError("audit actor must be a username or a fixed actor name")
        if not _ACTION.fullmatch(action):
            raise ValueError("audit action must be a lower_snake_case name")
        if conversation is not None and not _PSEUDONYM.fullmatch(conversation):
            raise ValueError("audit conversation must be a pseudonym like 'c-1a2b3c4d'")
        detail_json = _check_detail(detail)
        return await self._append(actor, action, conversation, detail_json, sealing=None)

    async def _append(self, actor: str, action: str, conversation: str | None,
                      detail_json: str, *, sealing: str | None) -> AuditEntry:
        """``sealing``: the unkeyed head this entry may chain onto (only
        ``seal`` passes one); any other append onto an unkeyed head is
        refused, because the database alone cannot tell an old log from one
        whose keyed part an attacker removed."""
        at = utc_iso(self._clock.now())
        key = self._key

        def next_entry(last: AuditEntry | None) -> AuditEntry:
            # Runs inside the store's write transaction: ``last`` is the head
            # nobody else can append after until this entry is in.
            if last is not None and last.chain == CHAIN_UNKEYED and last.hash != sealing:
                raise AuditNotSealed()
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
                chain=CHAIN_KEYED,
            )
            return dataclasses.replace(
                draft, hash=entry_mac(key, prev_hash, draft.hashed_fields()))

        return await self._store.append_audit(next_entry)

    async def seal(self, expect_head: str | None = None) -> AuditEntry | None:
        """``chatserver audit seal``: if the log ends in unkeyed entries
        (written before the audit key existed), append ``audit_keyed``, whose
        link covers the last unkeyed hash; from then on nobody without the key
        can rewrite the old part unnoticed. With ``expect_head`` (the hash
        noted before the upgrade, ``verify --print-head``) only that head is
        sealed. None when there is nothing to seal. Never automatic: a log
        whose keyed part was removed looks exactly like an old one."""
        head = await self._store.audit_head()
        if head is None or head.chain != CHAIN_UNKEYED:
            return None
        if expect_head is not None and head.hash != expect_head:
            raise ValueError("the log's last entry is not the head noted before the upgrade: "
                             "do not seal it; restore the database from a backup")
        return await self._append(ACTOR_SYSTEM, "audit_keyed", None, _check_detail({}),
                                  sealing=head.hash)

    async def unsealed(self) -> bool:
        """Whether the log ends in unkeyed entries (nothing can be appended)."""
        head = await self._store.audit_head()
        return head is not None and head.chain == CHAIN_UNKEYED


class AuditNotSealed(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "the audit log ends in entries without the audit key: if this database "
            "is from before the audit key, check it and run `chatserver audit seal` "
            "once (docs/operations.md, \"Upgrading\"); otherwise its keyed part was "
            "removed: restore it from a backup")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    rows: int  # entries checked and found good
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None  # link of the last good entry (GENESIS when empty)
    unkeyed: int = 0  # of ``rows``, how many are from before the audit key (the first ones)
    first_seq: int = 1  # the first entry checked (after a retention checkpoint, its seq + 1)
    pruned: int = 0  # entries 1..pruned were removed behind a valid checkpoint (retention)


class VerifiableStore(AuditStore, AuditCutStore, Protocol):
    """What ``verify`` reads: the entries and the retention checkpoints."""


async def verify(store: VerifiableStore, key: bytes, expect_head: str | None = None
                 ) -> VerifyResult:
    """Walk the whole chain; report the first entry that breaks it.

    Detects an edited entry (its link no longer matches), a deleted entry (a
    gap in ``seq``), deleted-and-renumbered or reordered entries (the
    ``prev_hash`` no longer matches the entry before), and — because keyed
    links need ``key`` — an entry edited and re-linked, or appended, by
    someone without the key. Unkeyed entries are accepted only as a prefix
    that a keyed entry follows: an unkeyed entry after a keyed one, or a log
    with no keyed entry at all, is what a downgrade to the public hash would
    look like. Removing entries from the *end* leaves a valid shorter chain:
    pass ``expect_head``, a link noted earlier with ``audit verify
    --print-head``, to detect that.

    After retention pruning the chain starts at a checkpoint (the last pruned
    entry's seq and link, with a MAC under ``key``): a missing front with no
    genuine checkpoint right before it, or a checkpoint that does not match
    the entry it names, breaks the chain.
    """
    expected_seq = 1
    prev = GENESIS
    rows = 0
    unkeyed = 0
    pruned = 0
    head_seen = expect_head is None

    def bad(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, rows, seq, problem, prev, unkeyed, expected_seq - rows,
                            pruned)

    checkpoints = {c.seq: c for c in await store.audit_checkpoints()}
    for c in checkpoints.values():
        try:
            genuine = checkpoint_matches(key, c.seq, c.hash, c.at, c.mac)
        except (ValueError, TypeError, AttributeError):
            genuine = False
        if not genuine:
            return bad(c.seq, f"the retention checkpoint at entry {c.seq} has a wrong MAC: "
                              "it was written or altered without the audit key")

    # aclosing: returning early must close the store's cursor now, not when
    # the event loop shuts down after the database is closed.
    async with aclosing(store.iter_audit()) as entries:
        async for e in entries:
            if rows == 0 and e.seq > 1:
                start = checkpoints.get(e.seq - 1)
                if start is None:
                    return bad(1, f"entries 1-{e.seq - 1} are missing and no retention "
                                  "checkpoint covers them: they were deleted")
                expected_seq = e.seq
                prev = start.hash
                pruned = start.seq
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
            if e.chain == CHAIN_UNKEYED and unkeyed < rows:
                return bad(e.seq, f"entry {e.seq} is unkeyed but follows keyed entries: "
                                  "it was written or rewritten without the audit key")
            try:
                good = link_matches(e.chain, key, e.prev_hash, e.hashed_fields(), e.hash)
            except (ValueError, TypeError, AttributeError):  # a column of the wrong kind
                return bad(e.seq, f"entry {e.seq} is malformed")
            if not good and e.chain == CHAIN_KEYED:
                return bad(e.seq, f"entry {e.seq} has a wrong MAC: it was edited or forged "
                                  "without the audit key, or this is not the key it was "
                                  "written with")
            if not good:
                return bad(e.seq, f"entry {e.seq} was edited (hash mismatch)")
            mark = checkpoints.get(e.seq)
            if mark is not None and mark.hash != e.hash:
                return bad(e.seq, f"entry {e.seq} is not the one its retention checkpoint "
                                  "names: the log was rewritten")
            prev = e.hash
            if e.hash == expect_head:
                head_seen = True
            rows += 1
            expected_seq += 1
            if e.chain == CHAIN_UNKEYED:
                unkeyed += 1
    if checkpoints and max(checkpoints) >= expected_seq - 1:
        # A prune always keeps the head, so entries after the newest
        # checkpoint must exist.
        return bad(expected_seq, "the entries after the last retention checkpoint are "
                                 "missing: they were deleted")
    if rows and unkeyed == rows:
        return bad(
            expected_seq,
            f"no keyed entry follows the {rows} unkeyed ones: if the log is from before "
            "the audit key, check it and run `chatserver audit seal` once; if it was "
            "sealed before, its keyed entries were removed or rewritten",
        )
    if not head_seen:
        return bad(
            expected_seq,
            "the expected head hash is not in the log: entries were removed from the end "
            "or the log was rewritten",
        )
    return VerifyResult(True, rows, None, None, prev, unkeyed, expected_seq - rows, pruned)
