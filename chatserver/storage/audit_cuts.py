"""Retention checkpoints of the audit log (``AuditCutStore``): the record that
entries up to ``seq`` were pruned, with the pruned head's link and a MAC under
the audit key. Both backends keep them in ``audit_checkpoint`` (migration
0007), whose trigger lets ``audit`` rows be deleted only up to the newest
checkpoint. Design: docs/design/audit.md, "Retention"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # base.py imports this module for ``Store``
    from chatserver.storage.base import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    seq: int  # the last pruned entry
    hash: str  # its link: the first kept entry's prev_hash
    at: str  # when the cut was made, UTC ISO-8601 'Z'
    mac: str  # crypto.audit_chain.checkpoint_mac(key, seq, hash, at)


@dataclass(frozen=True, slots=True)
class Cut:
    checkpoint: AuditCheckpoint
    removed: int  # entries deleted by this cut


# Called inside the store's write transaction with the entry to cut after
# (the newest one older than the cut-off, never the head): returns the signed
# checkpoint to record.
MakeCheckpoint = Callable[["AuditEntry"], AuditCheckpoint]

COLUMNS = "seq, hash, at, mac"


class AuditCutStore(Protocol):
    async def audit_checkpoints(self) -> list[AuditCheckpoint]:
        """Every checkpoint, oldest first."""
        ...

    async def cut_audit(self, before_at: str, make: MakeCheckpoint) -> Cut | None:
        """In one transaction that also holds off appends: find the newest
        entry with ``at < before_at`` that is not the head, record
        ``make(entry)`` and delete every entry up to it. None when nothing is
        that old (nothing is written)."""
        ...
