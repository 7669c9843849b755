"""Audit retention checkpoints on SQLite (``AuditCutStore``), mixed into
``SqliteStore``. The cut runs in ``_write()``, the same lock and transaction
kind as the audit appender, so no entry is appended between choosing the cut
and deleting up to it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from chatserver.storage.audit_cuts import COLUMNS, AuditCheckpoint, Cut, MakeCheckpoint

if TYPE_CHECKING:
    import aiosqlite

    from chatserver.storage.base import AuditEntry

_ENTRY_COLUMNS = "seq, at, actor, action, conversation, detail, prev_hash, hash, chain"


class SqliteAuditCuts:
    if TYPE_CHECKING:
        _db: aiosqlite.Connection

        def _write(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

    async def audit_checkpoints(self) -> list[AuditCheckpoint]:
        rows = await self._db.execute_fetchall(
            f"SELECT {COLUMNS} FROM audit_checkpoint ORDER BY seq")  # noqa: S608 - constant column list
        return [AuditCheckpoint(int(r[0]), r[1], r[2], r[3]) for r in rows]

    async def cut_audit(self, before_at: str, make: MakeCheckpoint) -> Cut | None:
        from chatserver.storage.base import AuditEntry  # base imports this module's protocol

        async with self._write() as db:
            # The head is never cut: the next entry chains onto it.
            rows = list(await db.execute_fetchall(
                f"SELECT {_ENTRY_COLUMNS} FROM audit WHERE at < ?"  # noqa: S608 - constant column list
                " AND seq < (SELECT MAX(seq) FROM audit) ORDER BY seq DESC LIMIT 1",
                (before_at,)))
            if not rows:
                return None
            r = rows[0]
            last: AuditEntry = AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7],
                                          int(r[8]))
            checkpoint = make(last)
            await db.execute(
                f"INSERT INTO audit_checkpoint ({COLUMNS}) VALUES (?, ?, ?, ?)",  # noqa: S608 - constant column list
                (checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.mac))
            cur = await db.execute("DELETE FROM audit WHERE seq <= ?", (checkpoint.seq,))
            removed = cur.rowcount
            await cur.close()
        return Cut(checkpoint, removed)
