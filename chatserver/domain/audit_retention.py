"""Audit retention: entries older than ``audit_retention_days`` are removed
from the front of the chain behind a checkpoint signed with the audit key, and
the prune is itself an entry. ``audit.verify`` starts from the checkpoint.
Design: docs/design/audit.md, "Retention"; the default: docs/privacy.md."""

from __future__ import annotations

from dataclasses import dataclass

from chatserver.crypto.audit_chain import checkpoint_mac
from chatserver.domain.audit import ACTOR_SYSTEM, AuditLog, AuditNotSealed, utc_iso
from chatserver.domain.clock import Clock
from chatserver.storage.audit_cuts import AuditCheckpoint
from chatserver.storage.base import AuditEntry, Store

DAY_SECS = 24 * 3600
PRUNE_EVERY_SECS = DAY_SECS  # the server's job (app.py); the CLI prunes on demand


@dataclass(frozen=True, slots=True)
class Pruned:
    removed: int  # entries deleted (0: nothing was old enough, nothing written)
    through: int = 0  # the checkpoint's seq: entries 1..through are gone
    cutoff: str = ""  # entries older than this were eligible


async def prune(store: Store, log: AuditLog, clock: Clock, key: bytes, retention_days: int,
                actor: str = ACTOR_SYSTEM) -> Pruned:
    """Remove every entry older than ``retention_days`` except the head, behind
    a signed checkpoint, then record ``audit_pruned``. Refused (AuditNotSealed)
    on a log that still ends in unkeyed entries: nothing can be appended to it."""
    if retention_days < 1:
        raise ValueError("retention_days must be positive")
    if await log.unsealed():
        raise AuditNotSealed()
    now = clock.now()
    cutoff = utc_iso(now - retention_days * DAY_SECS)
    at = utc_iso(now)

    def make(last: AuditEntry) -> AuditCheckpoint:
        return AuditCheckpoint(last.seq, last.hash, at, checkpoint_mac(key, last.seq,
                                                                      last.hash, at))

    cut = await store.cut_audit(cutoff, make)
    if cut is None:
        return Pruned(0, cutoff=cutoff)
    await log.record(actor, "audit_pruned", count=cut.removed, through=cut.checkpoint.seq)
    return Pruned(cut.removed, cut.checkpoint.seq, cutoff)
